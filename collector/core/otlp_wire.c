/* OTLP requests at the protobuf wire level (see otlp_wire.h): a table of the OTLP v1 schema drives
 * a validator whose only recursion is over that fixed schema and over AnyValue nesting, which is
 * cut at max_depth; a structural walker (request → resource → scope → [metric → aggregation] →
 * item) drives the counting, the split and the filter, copying byte ranges and re-encoding only
 * the lengths of the messages it cuts. */
#include "core/otlp_wire.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/pb_varint.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define MAX_FIELD_NUMBER 536870911u /* 2^29 - 1, the largest field number protobuf allows */
/* AnyValue nesting recurses twice a level (AnyValue → ArrayValue → AnyValue); whatever the caller
 * asks for, the recursion stays within a few hundred kilobytes of stack. */
#define DEPTH_CAP 1000

/* ---------------------------------------------------------------------------------------------
 * Reading fields */

enum rd {
  RD_OK = 0,
  RD_TRUNC_TAG,   /* the tag varint runs past the end */
  RD_TRUNC_LEN,   /* a length varint runs past the end, or the length past the message */
  RD_TRUNC_VALUE, /* a varint, fixed64 or fixed32 value runs past the end */
  RD_LONG,        /* a varint longer than 10 bytes (or overflowing 64 bits) */
  RD_LONG_TAG,    /* a tag or length varint longer than 5 bytes */
  RD_FIELDNUM,    /* field number 0 or above 2^29 - 1 */
  RD_WIRETYPE,    /* wire type 3, 4 (groups), 6 or 7 */
};

struct field {
  uint32_t num;
  unsigned wt;
  const uint8_t *start;     /* the tag's first byte */
  const uint8_t *after_tag; /* the first byte after the tag (the length varint for LEN) */
  const uint8_t *val;       /* LEN: the content; otherwise the value's first byte */
  size_t vlen;              /* bytes at val */
  const uint8_t *end;       /* one past the field */
  const uint8_t *err_at;    /* where reading failed */
};

/* Reads one varint of at most max_bytes at *pp, not past end; on success advances *pp. */
static enum rd read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out, enum rd trunc,
                           int max_bytes) {
  const uint8_t *p = *pp;
  uint64_t v = 0;
  for (int i = 0; i < max_bytes; i++) {
    if (p >= end)
      return trunc;
    uint8_t b = *p++;
    /* The tenth byte holds the 64th bit only: anything more overflows (protobuf refuses it). */
    if (i == 9 && b > 1)
      return RD_LONG;
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *pp = p;
      *out = v;
      return RD_OK;
    }
  }
  return RD_LONG;
}

/* Reads the field starting at p (p < end) and checks that its value lies within [p, end). */
static enum rd next_field(const uint8_t *p, const uint8_t *end, struct field *f) {
  uint64_t tag, v;
  enum rd rc;
  f->start = p;
  f->err_at = p;
  f->num = 0;
  f->wt = 0;
  /* Tags and lengths are 32-bit values: protobuf-c, which decodes what we accept, refuses their
   * varints beyond 5 bytes (padded encodings), so this does too. */
  if ((rc = read_varint(&p, end, &tag, RD_TRUNC_TAG, 5)) != RD_OK)
    return rc == RD_LONG ? RD_LONG_TAG : rc;
  if ((tag >> 3) == 0 || (tag >> 3) > MAX_FIELD_NUMBER)
    return RD_FIELDNUM;
  f->num = (uint32_t)(tag >> 3);
  f->wt = (unsigned)(tag & 7);
  f->after_tag = p;
  f->val = p;
  f->err_at = p;
  switch (f->wt) {
  case WT_VARINT:
    if ((rc = read_varint(&p, end, &v, RD_TRUNC_VALUE, 10)) != RD_OK)
      return rc;
    break;
  case WT_I64:
    if (end - p < 8)
      return RD_TRUNC_VALUE;
    p += 8;
    break;
  case WT_I32:
    if (end - p < 4)
      return RD_TRUNC_VALUE;
    p += 4;
    break;
  case WT_LEN:
    if ((rc = read_varint(&p, end, &v, RD_TRUNC_LEN, 5)) != RD_OK)
      return rc == RD_LONG ? RD_LONG_TAG : rc;
    if (v > (uint64_t)(end - p))
      return RD_TRUNC_LEN;
    f->val = p;
    p += v;
    break;
  default:
    return RD_WIRETYPE;
  }
  f->vlen = (size_t)(p - f->val);
  f->end = p;
  return RD_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The schema: for each message type, the kind of each field number (all OTLP v1 field numbers
 * are at most 16; larger ones are unknown fields). */

enum msg {
  M_NONE = 0,
  M_TRACE_REQ,
  M_METRICS_REQ,
  M_LOGS_REQ,
  M_RES_SPANS,
  M_SCOPE_SPANS,
  M_RES_METRICS,
  M_SCOPE_METRICS,
  M_RES_LOGS,
  M_SCOPE_LOGS,
  M_RESOURCE,
  M_ENTITY_REF,
  M_KV,
  M_ANY,
  M_ARRAY,
  M_KVLIST,
  M_SCOPE,
  M_SPAN,
  M_EVENT,
  M_LINK,
  M_STATUS,
  M_LOG,
  M_METRIC,
  M_GAUGE,
  M_SUM,
  M_HIST,
  M_EXPHIST,
  M_SUMMARY,
  M_NUMBER_DP,
  M_HIST_DP,
  M_EXPHIST_DP,
  M_BUCKETS,
  M_SUMMARY_DP,
  M_QUANTILE,
  M_EXEMPLAR,
  M_COUNT
};

static const char *const msg_names[M_COUNT] = {
    [M_NONE] = "?",
    [M_TRACE_REQ] = "ExportTraceServiceRequest",
    [M_METRICS_REQ] = "ExportMetricsServiceRequest",
    [M_LOGS_REQ] = "ExportLogsServiceRequest",
    [M_RES_SPANS] = "ResourceSpans",
    [M_SCOPE_SPANS] = "ScopeSpans",
    [M_RES_METRICS] = "ResourceMetrics",
    [M_SCOPE_METRICS] = "ScopeMetrics",
    [M_RES_LOGS] = "ResourceLogs",
    [M_SCOPE_LOGS] = "ScopeLogs",
    [M_RESOURCE] = "Resource",
    [M_ENTITY_REF] = "EntityRef",
    [M_KV] = "KeyValue",
    [M_ANY] = "AnyValue",
    [M_ARRAY] = "ArrayValue",
    [M_KVLIST] = "KeyValueList",
    [M_SCOPE] = "InstrumentationScope",
    [M_SPAN] = "Span",
    [M_EVENT] = "Span.Event",
    [M_LINK] = "Span.Link",
    [M_STATUS] = "Status",
    [M_LOG] = "LogRecord",
    [M_METRIC] = "Metric",
    [M_GAUGE] = "Gauge",
    [M_SUM] = "Sum",
    [M_HIST] = "Histogram",
    [M_EXPHIST] = "ExponentialHistogram",
    [M_SUMMARY] = "Summary",
    [M_NUMBER_DP] = "NumberDataPoint",
    [M_HIST_DP] = "HistogramDataPoint",
    [M_EXPHIST_DP] = "ExponentialHistogramDataPoint",
    [M_BUCKETS] = "ExponentialHistogramDataPoint.Buckets",
    [M_SUMMARY_DP] = "SummaryDataPoint",
    [M_QUANTILE] = "SummaryDataPoint.ValueAtQuantile",
    [M_EXEMPLAR] = "Exemplar",
};

enum fkind {
  F_UNKNOWN = 0,
  F_VARINT,    /* int, uint, sint, bool, enum */
  F_I64,       /* fixed64, sfixed64, double */
  F_I32,       /* fixed32 */
  F_BYTES,     /* string, bytes */
  F_MSG,       /* an embedded message of type .msg */
  F_PACKED_64, /* repeated fixed64 / double: packed (LEN) or not (I64) */
  F_PACKED_VI, /* repeated uint64: packed (LEN) or not (VARINT) */
};

struct fdesc {
  uint8_t kind;
  uint8_t msg;
};

#define MAX_SCHEMA_FIELD 16
#define VI                                                                                         \
  { F_VARINT, 0 }
#define I64                                                                                        \
  { F_I64, 0 }
#define I32                                                                                        \
  { F_I32, 0 }
#define BY                                                                                         \
  { F_BYTES, 0 }
#define MS(m)                                                                                      \
  { F_MSG, m }

static const struct fdesc schema[M_COUNT][MAX_SCHEMA_FIELD + 1] = {
    [M_TRACE_REQ] = {[1] = MS(M_RES_SPANS)},
    [M_METRICS_REQ] = {[1] = MS(M_RES_METRICS)},
    [M_LOGS_REQ] = {[1] = MS(M_RES_LOGS)},
    [M_RES_SPANS] = {[1] = MS(M_RESOURCE), [2] = MS(M_SCOPE_SPANS), [3] = BY},
    [M_SCOPE_SPANS] = {[1] = MS(M_SCOPE), [2] = MS(M_SPAN), [3] = BY},
    [M_RES_METRICS] = {[1] = MS(M_RESOURCE), [2] = MS(M_SCOPE_METRICS), [3] = BY},
    [M_SCOPE_METRICS] = {[1] = MS(M_SCOPE), [2] = MS(M_METRIC), [3] = BY},
    [M_RES_LOGS] = {[1] = MS(M_RESOURCE), [2] = MS(M_SCOPE_LOGS), [3] = BY},
    [M_SCOPE_LOGS] = {[1] = MS(M_SCOPE), [2] = MS(M_LOG), [3] = BY},
    [M_RESOURCE] = {[1] = MS(M_KV), [2] = VI, [3] = MS(M_ENTITY_REF)},
    [M_ENTITY_REF] = {[1] = BY, [2] = BY, [3] = BY, [4] = BY},
    [M_KV] = {[1] = BY, [2] = MS(M_ANY)},
    [M_ANY] =
        {[1] = BY, [2] = VI, [3] = VI, [4] = I64, [5] = MS(M_ARRAY), [6] = MS(M_KVLIST), [7] = BY},
    [M_ARRAY] = {[1] = MS(M_ANY)},
    [M_KVLIST] = {[1] = MS(M_KV)},
    [M_SCOPE] = {[1] = BY, [2] = BY, [3] = MS(M_KV), [4] = VI},
    [M_SPAN] = {[1] = BY,
                [2] = BY,
                [3] = BY,
                [4] = BY,
                [5] = BY,
                [6] = VI,
                [7] = I64,
                [8] = I64,
                [9] = MS(M_KV),
                [10] = VI,
                [11] = MS(M_EVENT),
                [12] = VI,
                [13] = MS(M_LINK),
                [14] = VI,
                [15] = MS(M_STATUS),
                [16] = I32},
    [M_EVENT] = {[1] = I64, [2] = BY, [3] = MS(M_KV), [4] = VI},
    [M_LINK] = {[1] = BY, [2] = BY, [3] = BY, [4] = MS(M_KV), [5] = VI, [6] = I32},
    [M_STATUS] = {[2] = BY, [3] = VI},
    [M_LOG] = {[1] = I64,
               [2] = VI,
               [3] = BY,
               [5] = MS(M_ANY),
               [6] = MS(M_KV),
               [7] = VI,
               [8] = I32,
               [9] = BY,
               [10] = BY,
               [11] = I64,
               [12] = BY},
    [M_METRIC] =
        {[1] = BY,
         [2] = BY,
         [3] = BY,
         [5] = MS(M_GAUGE),
         [7] = MS(M_SUM),
         [9] = MS(M_HIST),
         [10] = MS(M_EXPHIST),
         [11] = MS(M_SUMMARY),
         [12] = MS(M_KV)},
    [M_GAUGE] = {[1] = MS(M_NUMBER_DP)},
    [M_SUM] = {[1] = MS(M_NUMBER_DP), [2] = VI, [3] = VI},
    [M_HIST] = {[1] = MS(M_HIST_DP), [2] = VI},
    [M_EXPHIST] = {[1] = MS(M_EXPHIST_DP), [2] = VI},
    [M_SUMMARY] = {[1] = MS(M_SUMMARY_DP)},
    [M_NUMBER_DP] = {[2] = I64,
                     [3] = I64,
                     [4] = I64,
                     [5] = MS(M_EXEMPLAR),
                     [6] = I64,
                     [7] = MS(M_KV),
                     [8] = VI},
    [M_HIST_DP] =
        {[2] = I64,
         [3] = I64,
         [4] = I64,
         [5] = I64,
         [6] = {F_PACKED_64, 0},
         [7] = {F_PACKED_64, 0},
         [8] = MS(M_EXEMPLAR),
         [9] = MS(M_KV),
         [10] = VI,
         [11] = I64,
         [12] = I64},
    [M_EXPHIST_DP] = {[1] = MS(M_KV),
                      [2] = I64,
                      [3] = I64,
                      [4] = I64,
                      [5] = I64,
                      [6] = VI,
                      [7] = I64,
                      [8] = MS(M_BUCKETS),
                      [9] = MS(M_BUCKETS),
                      [10] = VI,
                      [11] = MS(M_EXEMPLAR),
                      [12] = I64,
                      [13] = I64,
                      [14] = I64},
    [M_BUCKETS] = {[1] = VI, [2] = {F_PACKED_VI, 0}},
    [M_SUMMARY_DP] = {[2] = I64,
                      [3] = I64,
                      [4] = I64,
                      [5] = I64,
                      [6] = MS(M_QUANTILE),
                      [7] = MS(M_KV),
                      [8] = VI},
    [M_QUANTILE] = {[1] = I64, [2] = I64},
    [M_EXEMPLAR] = {[2] = I64, [3] = I64, [4] = BY, [5] = BY, [6] = I64, [7] = MS(M_KV)},
};

#undef VI
#undef I64
#undef I32
#undef BY
#undef MS

static bool is_metric_data_field(uint32_t num) {
  return num == 5 || num == 7 || num == 9 || num == 10 || num == 11;
}

/* ---------------------------------------------------------------------------------------------
 * Validation and counting */

struct scan {
  const uint8_t *buf;
  int max_depth;
  struct otc_wire_stats *st;
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int scan_fail(struct scan *c, const char *fmt, ...) {
  if (c->err && c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return OTC_ERR_INVALID;
}

/* Counts one message the scanners finished: resources, scopes, metrics, items (a metric's data
 * points), and spans or log records whose ids have the wrong length. Both scanners count through
 * here so that their counts cannot drift apart. */
static void count_message(struct otc_wire_stats *st, enum msg t, size_t data_points,
                          const size_t id_len[2]) {
  switch (t) {
  case M_RES_SPANS:
  case M_RES_METRICS:
  case M_RES_LOGS:
    st->resources++;
    break;
  case M_SCOPE_SPANS:
  case M_SCOPE_METRICS:
  case M_SCOPE_LOGS:
    st->scopes++;
    break;
  case M_METRIC:
    st->metrics++;
    st->items += data_points;
    break;
  case M_SPAN:
    st->items++;
    if (id_len[0] != 16 || id_len[1] != 8)
      st->invalid_items++;
    break;
  case M_LOG:
    st->items++;
    /* An empty id is an absent one. */
    if ((id_len[0] != 0 && id_len[0] != 16) || (id_len[1] != 0 && id_len[1] != 8))
      st->invalid_items++;
    break;
  default:
    break;
  }
}

static int field_fail(struct scan *c, enum msg t, const struct field *f, enum rd rc) {
  size_t at = (size_t)(f->err_at - c->buf);
  switch (rc) {
  case RD_TRUNC_TAG:
    return scan_fail(c, "truncated tag at offset %zu in %s", at, msg_names[t]);
  case RD_TRUNC_LEN:
    return scan_fail(c, "truncated length at offset %zu (field %u of %s)", at, f->num,
                     msg_names[t]);
  case RD_TRUNC_VALUE:
    return scan_fail(c, "truncated field at offset %zu (field %u of %s)", at, f->num, msg_names[t]);
  case RD_LONG:
    return scan_fail(c, "varint longer than 10 bytes at offset %zu in %s", at, msg_names[t]);
  case RD_LONG_TAG:
    return scan_fail(c, "tag or length longer than 5 bytes at offset %zu in %s", at, msg_names[t]);
  case RD_FIELDNUM:
    return scan_fail(c, "invalid field number at offset %zu in %s", at, msg_names[t]);
  case RD_WIRETYPE:
    return scan_fail(c, "wire type %u for field %u of %s at offset %zu", f->wt, f->num,
                     msg_names[t], (size_t)(f->start - c->buf));
  case RD_OK:
    break;
  }
  return OTC_ERR_INVALID;
}

static bool wire_type_ok(enum fkind k, unsigned wt) {
  switch (k) {
  case F_VARINT:
    return wt == WT_VARINT;
  case F_I64:
    return wt == WT_I64;
  case F_I32:
    return wt == WT_I32;
  case F_BYTES:
  case F_MSG:
    return wt == WT_LEN;
  case F_PACKED_64:
    return wt == WT_I64 || wt == WT_LEN;
  case F_PACKED_VI:
    return wt == WT_VARINT || wt == WT_LEN;
  case F_UNKNOWN:
    break;
  }
  return true;
}

/* Checks that a packed field's content is a whole number of its elements. */
static bool packed_ok(enum fkind k, const struct field *f) {
  if (f->wt != WT_LEN)
    return true;
  if (k == F_PACKED_64)
    return f->vlen % 8 == 0;
  const uint8_t *p = f->val, *end = f->val + f->vlen;
  uint64_t v;
  while (p < end) {
    if (read_varint(&p, end, &v, RD_TRUNC_VALUE, 10) != RD_OK)
      return false;
  }
  return true;
}

/* Validates the message of type t at [p, p + len). depth counts the array_value and kvlist_value
 * levels above it. Aggregation messages (Gauge...Summary) add their data points to *points;
 * everything else updates c->st directly. The recursion follows the schema, whose only cycle
 * (AnyValue → ArrayValue/KeyValueList → AnyValue) is cut at max_depth. */
static int scan_msg(struct scan *c, enum msg t, const uint8_t *p, size_t len, int depth,
                    size_t *points) {
  const uint8_t *end = p + len;
  size_t id_len[2] = {0, 0}; /* trace_id and span_id of a span or log record; the last wins */
  size_t data_points = 0;    /* Metric: points of the data oneof member seen last */
  while (p < end) {
    struct field f;
    enum rd rc = next_field(p, end, &f);
    if (rc != RD_OK)
      return field_fail(c, t, &f, rc);
    p = f.end;
    const struct fdesc *d = f.num <= MAX_SCHEMA_FIELD ? &schema[t][f.num] : &schema[M_NONE][0];
    enum fkind k = (enum fkind)d->kind;
    if (k == F_UNKNOWN)
      continue;
    if (!wire_type_ok(k, f.wt))
      return scan_fail(c, "wire type %u for field %u of %s at offset %zu", f.wt, f.num,
                       msg_names[t], (size_t)(f.start - c->buf));
    if ((k == F_PACKED_64 || k == F_PACKED_VI) && !packed_ok(k, &f))
      return scan_fail(c, "malformed packed field %u of %s at offset %zu", f.num, msg_names[t],
                       (size_t)(f.start - c->buf));
    if (k == F_MSG) {
      int child_depth = depth;
      if (t == M_ANY && (f.num == 5 || f.num == 6)) {
        if (depth >= c->max_depth)
          return scan_fail(c, "nesting deeper than %d at offset %zu", c->max_depth,
                           (size_t)(f.start - c->buf));
        child_depth = depth + 1;
      }
      size_t sub = 0;
      int r = scan_msg(c, (enum msg)d->msg, f.val, f.vlen, child_depth, &sub);
      if (r != 0)
        return r;
      if (t == M_METRIC && is_metric_data_field(f.num)) {
        /* A oneof keeps the member seen last, even when the same member came before: protobuf-c
         * and otelcol's pdata replace it rather than merge the two (the reference collector
         * counts 1 data point for gauge{2 points} gauge{1 point}), so only its points count. */
        data_points = sub;
      }
    }
    switch (t) {
    case M_GAUGE:
    case M_SUM:
    case M_HIST:
    case M_EXPHIST:
    case M_SUMMARY:
      if (f.num == 1)
        (*points)++;
      break;
    case M_SPAN:
      if (f.num == 1 || f.num == 2)
        id_len[f.num - 1] = f.vlen;
      break;
    case M_LOG:
      if (f.num == 9 || f.num == 10)
        id_len[f.num - 9] = f.vlen;
      break;
    default:
      break;
    }
  }
  count_message(c->st, t, data_points, id_len);
  return 0;
}

static enum msg request_type(enum otc_signal s) {
  switch (s) {
  case OTC_SIGNAL_TRACES:
    return M_TRACE_REQ;
  case OTC_SIGNAL_METRICS:
    return M_METRICS_REQ;
  case OTC_SIGNAL_LOGS:
    return M_LOGS_REQ;
  }
  return M_NONE;
}

int otc_wire__scan_reference(enum otc_signal s, const uint8_t *buf, size_t len, int max_depth,
                             struct otc_wire_stats *st, char *errbuf, size_t errlen) {
  struct otc_wire_stats local;
  if (!st)
    st = &local;
  memset(st, 0, sizeof *st);
  if (errbuf && errlen)
    errbuf[0] = '\0';
  struct scan c = {.buf = buf, .max_depth = max_depth, .st = st, .err = errbuf, .errlen = errlen};
  if (c.max_depth < 0)
    c.max_depth = OTC_WIRE_DEFAULT_MAX_DEPTH;
  if (c.max_depth > DEPTH_CAP)
    c.max_depth = DEPTH_CAP;
  enum msg t = request_type(s);
  if (t == M_NONE)
    return scan_fail(&c, "unknown signal %d", (int)s);
  if (len == 0)
    return 0;
  if (!buf)
    return scan_fail(&c, "no data");
  size_t unused = 0;
  return scan_msg(&c, t, buf, len, 0, &unused);
}

/* ---------------------------------------------------------------------------------------------
 * The fast path of the validator. Nearly every request is valid, and the reference scan above
 * spends most of its time decoding each field into a struct and looking its kind up twice. This
 * one decides each one-byte tag (field numbers 1 to 15, all that OTLP uses) with a precomputed
 * table per message type, skips values in place, and answers only "valid" (with the counts) or
 * "not valid"; it is exactly as strict as the reference scan, and when it refuses, the reference
 * scan runs again over the request to find and describe the error. The recursion is the same as
 * the reference's: over the fixed schema, with AnyValue nesting cut at max_depth. */

enum op {
  OP_FAIL = 0, /* the reference scan refuses this tag: a wrong wire type, group or field 0 */
  OP_VARINT,
  OP_I64,
  OP_I32,
  /* Length-delimited from here on. */
  OP_LEN,       /* string, bytes or an unknown field */
  OP_ID0,       /* Span.trace_id or LogRecord.trace_id: its length is checked */
  OP_ID1,       /* Span.span_id or LogRecord.span_id */
  OP_PACKED64,  /* packed fixed64 or double: a whole number of 8-byte elements */
  OP_PACKEDVI,  /* packed varints: each one well formed */
  OP_MSG,       /* an embedded message of the field's schema type */
  OP_MSG_NEST,  /* AnyValue.array_value or kvlist_value: one nesting level deeper */
  OP_MSG_POINT, /* a Gauge's...Summary's data point, counted */
  OP_MSG_DATA,  /* a member of Metric's data oneof */
};

/* The operation for field num with wire type wt in a message of type t: the same decisions as
 * next_field, wire_type_ok and scan_msg make. */
static uint8_t op_for(enum msg t, uint32_t num, unsigned wt) {
  if (num == 0 || num > MAX_FIELD_NUMBER)
    return OP_FAIL;
  if (wt != WT_VARINT && wt != WT_I64 && wt != WT_LEN && wt != WT_I32)
    return OP_FAIL;
  const struct fdesc *d = num <= MAX_SCHEMA_FIELD ? &schema[t][num] : &schema[M_NONE][0];
  enum fkind k = (enum fkind)d->kind;
  if (k != F_UNKNOWN && !wire_type_ok(k, wt))
    return OP_FAIL;
  if (wt == WT_VARINT)
    return OP_VARINT;
  if (wt == WT_I64)
    return OP_I64;
  if (wt == WT_I32)
    return OP_I32;
  switch (k) {
  case F_PACKED_64:
    return OP_PACKED64;
  case F_PACKED_VI:
    return OP_PACKEDVI;
  case F_MSG:
    if (t == M_ANY && (num == 5 || num == 6))
      return OP_MSG_NEST;
    if (t == M_METRIC && is_metric_data_field(num))
      return OP_MSG_DATA;
    if (num == 1 && (t == M_GAUGE || t == M_SUM || t == M_HIST || t == M_EXPHIST || t == M_SUMMARY))
      return OP_MSG_POINT;
    return OP_MSG;
  case F_BYTES:
    if ((t == M_SPAN && num == 1) || (t == M_LOG && num == 9))
      return OP_ID0;
    if ((t == M_SPAN && num == 2) || (t == M_LOG && num == 10))
      return OP_ID1;
    return OP_LEN;
  default:
    return OP_LEN;
  }
}

/* op_for for every one-byte tag of every message type. */
static uint8_t op_tab[M_COUNT][128];
static pthread_once_t op_once = PTHREAD_ONCE_INIT;

static void op_init(void) {
  for (int t = 0; t < M_COUNT; t++)
    for (unsigned tag = 0; tag < 128; tag++)
      op_tab[t][tag] = op_for((enum msg)t, tag >> 3, tag & 7);
}

struct fast {
  int max_depth;
  struct otc_wire_stats *st;
};

/* Skips one varint value (at most 10 bytes) at *pp. */
static inline bool fast_skip_varint(const uint8_t **pp, const uint8_t *end) {
  const uint8_t *p = *pp;
  if (p < end && *p < 0x80) {
    *pp = p + 1;
    return true;
  }
  uint64_t v;
  return read_varint(pp, end, &v, RD_TRUNC_VALUE, 10) == RD_OK;
}

/* Reads a length (at most 5 bytes, no longer than what is left) at *pp and the value after it. */
static inline bool fast_len(const uint8_t **pp, const uint8_t *end, const uint8_t **val,
                            size_t *vlen) {
  const uint8_t *p = *pp;
  uint64_t n;
  if (p < end && *p < 0x80) {
    n = *p++;
  } else if (read_varint(&p, end, &n, RD_TRUNC_LEN, 5) != RD_OK) {
    return false;
  }
  if (n > (uint64_t)(end - p))
    return false;
  *val = p;
  *vlen = (size_t)n;
  *pp = p + n;
  return true;
}

/* The shape of nearly every attribute: a KeyValue of a key shorter than 128 bytes then a value
 * holding one scalar member (or none), the value's length in one byte. True when [p, end) is
 * exactly that; false leaves the verdict to fast_kv, which takes any KeyValue. Inlined into the
 * loop of the messages that hold attributes, so that they cost no call. */
static inline __attribute__((always_inline)) bool kv_scalar(const uint8_t *p, const uint8_t *end) {
  size_t n = (size_t)(end - p);
  if (n < 4 || p[0] != 0x0a || p[1] >= 0x80 || (size_t)p[1] + 4 > n)
    return false;
  p += 2 + p[1];
  n = (size_t)(end - p);
  if (p[0] != 0x12 || p[1] != n - 2) /* the value runs to the end; p[1] < 0x80 follows */
    return false;
  const uint8_t *v = p + 2;
  n -= 2;
  if (n == 0)
    return true;
  switch (v[0]) {
  case 0x0a: /* string_value */
  case 0x3a: /* bytes_value */
    return n >= 2 && v[1] == n - 2;
  case 0x10: /* bool_value */
  case 0x18: /* int_value */
    v++;
    return fast_skip_varint(&v, end) && v == end;
  case 0x21: /* double_value */
    return n == 9;
  default:
    return false;
  }
}

static bool fast_msg(struct fast *c, enum msg t, const uint8_t *p, const uint8_t *end, int depth,
                     size_t *points);
static bool fast_kv(struct fast *c, const uint8_t *p, const uint8_t *end, int depth);
static bool fast_any(struct fast *c, const uint8_t *p, const uint8_t *end, int depth);

/* The loop of every fast_* function; inlined into each so that the compiler specialises it for
 * the two most frequent types (KeyValue and AnyValue, most of the fields of a request). */
static inline __attribute__((always_inline)) bool fast_body(struct fast *c, enum msg t,
                                                            const uint8_t *p, const uint8_t *end,
                                                            int depth, size_t *points) {
  const uint8_t *ops = op_tab[t];
  size_t id_len[2] = {0, 0};
  size_t data_points = 0;
  while (p < end) {
    uint32_t num;
    unsigned op;
    unsigned tag = *p;
    if (tag < 0x80) {
      p++;
      num = tag >> 3;
      op = ops[tag];
    } else {
      uint64_t v;
      if (read_varint(&p, end, &v, RD_TRUNC_TAG, 5) != RD_OK)
        return false;
      if ((v >> 3) == 0 || (v >> 3) > MAX_FIELD_NUMBER)
        return false;
      num = (uint32_t)(v >> 3);
      op = op_for(t, num, (unsigned)(v & 7));
      tag = 0x100; /* no one-byte tag equals it: the attribute run below takes one */
    }
    const uint8_t *val;
    size_t vlen, sub = 0;
    switch (op) {
    case OP_VARINT:
      if (!fast_skip_varint(&p, end))
        return false;
      break;
    case OP_I64:
      if (end - p < 8)
        return false;
      p += 8;
      break;
    case OP_I32:
      if (end - p < 4)
        return false;
      p += 4;
      break;
    case OP_LEN:
      if (!fast_len(&p, end, &val, &vlen))
        return false;
      break;
    case OP_ID0:
    case OP_ID1:
      if (!fast_len(&p, end, &val, &vlen))
        return false;
      id_len[op - OP_ID0] = vlen;
      break;
    case OP_PACKED64:
      if (!fast_len(&p, end, &val, &vlen) || vlen % 8 != 0)
        return false;
      break;
    case OP_PACKEDVI: {
      if (!fast_len(&p, end, &val, &vlen))
        return false;
      const uint8_t *q = val, *qend = val + vlen;
      while (q < qend)
        if (!fast_skip_varint(&q, qend))
          return false;
      break;
    }
    case OP_MSG: {
      if (!fast_len(&p, end, &val, &vlen))
        return false;
      enum msg child = (enum msg)schema[t][num].msg;
      if (child == M_KV) {
        /* Attributes come in runs of one tag, most of them shorter than 128 bytes: the run is
         * read here, without a trip through the dispatch above for each one. */
        for (;;) {
          if (!kv_scalar(val, val + vlen) && !fast_kv(c, val, val + vlen, depth))
            return false;
          if (end - p < 2 || p[0] != tag || p[1] >= 0x80 || p[1] > (size_t)(end - p) - 2)
            break;
          vlen = p[1];
          val = p + 2;
          p = val + vlen;
        }
        break;
      }
      bool ok = child == M_ANY ? fast_any(c, val, val + vlen, depth)
                               : fast_msg(c, child, val, val + vlen, depth, &sub);
      if (!ok)
        return false;
      break;
    }
    case OP_MSG_NEST:
      if (!fast_len(&p, end, &val, &vlen) || depth >= c->max_depth)
        return false;
      if (!fast_msg(c, (enum msg)schema[t][num].msg, val, val + vlen, depth + 1, &sub))
        return false;
      break;
    case OP_MSG_POINT:
      if (!fast_len(&p, end, &val, &vlen) ||
          !fast_msg(c, (enum msg)schema[t][num].msg, val, val + vlen, depth, &sub))
        return false;
      (*points)++;
      break;
    case OP_MSG_DATA:
      if (!fast_len(&p, end, &val, &vlen) ||
          !fast_msg(c, (enum msg)schema[t][num].msg, val, val + vlen, depth, &sub))
        return false;
      data_points = sub; /* the member seen last wins, as in scan_msg */
      break;
    default: /* OP_FAIL */
      return false;
    }
  }
  count_message(c->st, t, data_points, id_len);
  return true;
}

/* Validates the message of type t at [p, end) like scan_msg; false means "not valid". */
static __attribute__((noinline)) bool fast_msg(struct fast *c, enum msg t, const uint8_t *p,
                                               const uint8_t *end, int depth, size_t *points) {
  return fast_body(c, t, p, end, depth, points);
}

static __attribute__((noinline)) bool fast_kv(struct fast *c, const uint8_t *p, const uint8_t *end,
                                              int depth) {
  size_t unused = 0;
  return fast_body(c, M_KV, p, end, depth, &unused);
}

static __attribute__((noinline)) bool fast_any(struct fast *c, const uint8_t *p, const uint8_t *end,
                                               int depth) {
  size_t unused = 0;
  return fast_body(c, M_ANY, p, end, depth, &unused);
}

int otc_wire__scan_fast(enum otc_signal s, const uint8_t *buf, size_t len, int max_depth,
                        struct otc_wire_stats *st) {
  memset(st, 0, sizeof *st);
  enum msg t = request_type(s);
  if (t == M_NONE || (len > 0 && !buf))
    return OTC_ERR_INVALID;
  pthread_once(&op_once, op_init);
  struct fast c = {.max_depth = max_depth < 0           ? OTC_WIRE_DEFAULT_MAX_DEPTH
                                : max_depth > DEPTH_CAP ? DEPTH_CAP
                                                        : max_depth,
                   .st = st};
  size_t unused = 0;
  return len == 0 || fast_msg(&c, t, buf, buf + len, 0, &unused) ? 0 : OTC_ERR_INVALID;
}

int otc_wire_scan(enum otc_signal s, const uint8_t *buf, size_t len, int max_depth,
                  struct otc_wire_stats *st, char *errbuf, size_t errlen) {
  struct otc_wire_stats local;
  if (!st)
    st = &local;
  if (errbuf && errlen)
    errbuf[0] = '\0';
  if (otc_wire__scan_fast(s, buf, len, max_depth, st) == 0)
    return 0;
  /* Not valid: the reference scan finds where and why. */
  return otc_wire__scan_reference(s, buf, len, max_depth, st, errbuf, errlen);
}

/* ---------------------------------------------------------------------------------------------
 * The structural walk shared by split and drop_invalid. Levels: 0 the request, 1 Resource*,
 * 2 Scope*, and for metrics 3 Metric and 4 the aggregation (Gauge...Summary). The children of
 * the last level are the items. */

#define MAX_LEVELS 5

struct level {
  const uint8_t *msg; /* the message's content */
  size_t len;
  uint32_t child;    /* field number of the children */
  size_t child_from; /* children start at this offset (Metric: the oneof's member seen last) */
  size_t hdr_off;    /* the non-child fields, copied into the scratch area */
  size_t hdr_len;
  size_t pos;   /* split: where the next piece resumes */
  bool partial; /* split: the child at pos was partly emitted and its level state is valid */
};

struct walker {
  enum otc_signal s;
  int leaf; /* the level whose children are items */
  struct level lv[MAX_LEVELS];
  uint8_t *out; /* the piece being built */
  size_t cap;
  size_t n;
  uint8_t *scratch; /* the header fields of the levels being walked */
  size_t scratch_cap;
  size_t budget;      /* items the piece may still take */
  size_t piece_items; /* items in the piece */
};

static bool is_metric_level(const struct walker *w, int L) {
  return w->s == OTC_SIGNAL_METRICS && L == 3;
}

static bool is_child(const struct walker *w, int L, const struct field *f) {
  const struct level *lv = &w->lv[L];
  return f->num == lv->child && (size_t)(f->start - lv->msg) >= lv->child_from;
}

/* The fields repeated around every share of the children: all but the children (and, in a
 * Metric, all but the data oneof, whose occurrences other than the last no parser keeps). */
static bool is_header(const struct walker *w, int L, const struct field *f) {
  if (is_metric_level(w, L))
    return !is_metric_data_field(f->num);
  return f->num != w->lv[L].child;
}

/* Sets up level L for the message [msg, msg + len): which fields are its children, and (when the
 * walker has a scratch area) a copy of its header fields. */
static int enter_level(struct walker *w, int L, const uint8_t *msg, size_t len) {
  struct level *lv = &w->lv[L];
  memset(lv, 0, sizeof *lv);
  lv->msg = msg;
  lv->len = len;
  lv->hdr_off = L > 0 ? w->lv[L - 1].hdr_off + w->lv[L - 1].hdr_len : 0;
  if (L == 0 || (w->s == OTC_SIGNAL_METRICS && L == 4))
    lv->child = 1;
  else if (!is_metric_level(w, L))
    lv->child = 2;
  const uint8_t *p = msg, *end = msg + len;
  struct field f;
  while (p < end) {
    if (next_field(p, end, &f) != RD_OK)
      return OTC_ERR_INVALID;
    p = f.end;
    if (is_metric_level(w, L) && is_metric_data_field(f.num)) {
      lv->child = f.num;
      lv->child_from = (size_t)(f.start - msg);
    }
    if (is_header(w, L, &f)) {
      size_t n = (size_t)(f.end - f.start);
      if (w->scratch) {
        if (lv->hdr_off + lv->hdr_len + n > w->scratch_cap)
          return OTC_ERR_INVALID;
        memcpy(w->scratch + lv->hdr_off + lv->hdr_len, f.start, n);
      }
      lv->hdr_len += n;
    } else if (is_child(w, L, &f) && f.wt != WT_LEN) {
      return OTC_ERR_INVALID;
    }
  }
  return 0;
}

/* Counts the items under level L and the largest sum of header bytes along any path (the scratch
 * area the split needs). Recursion is bounded by MAX_LEVELS. */
static int count_level(struct walker *w, int L, const uint8_t *msg, size_t len, size_t *items,
                       size_t *max_hdr) {
  int rc = enter_level(w, L, msg, len);
  if (rc != 0)
    return rc;
  size_t acc = w->lv[L].hdr_off + w->lv[L].hdr_len;
  if (acc > *max_hdr)
    *max_hdr = acc;
  const uint8_t *p = msg, *end = msg + len;
  struct field f;
  while (p < end) {
    if (next_field(p, end, &f) != RD_OK)
      return OTC_ERR_INVALID;
    p = f.end;
    if (!is_child(w, L, &f))
      continue;
    if (L == w->leaf) {
      (*items)++;
    } else {
      rc = count_level(w, L + 1, f.val, f.vlen, items, max_hdr);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

static int put(struct walker *w, const void *src, size_t n) {
  if (n > w->cap - w->n)
    return OTC_ERR_INVALID;
  memcpy(w->out + w->n, src, n);
  w->n += n;
  return 0;
}

/* Ends a length-delimited field whose content was written from content_start, after room kept
 * for its length at len_at: writes the shortest varint there and moves the content down to it. */
static int close_len(uint8_t *out, size_t len_at, size_t content_start, size_t *n) {
  size_t c = *n - content_start;
  size_t v = otc_varint_size(c);
  if (v > content_start - len_at)
    return OTC_ERR_INVALID; /* cannot happen: a share is never longer than the whole */
  if (len_at + v != content_start)
    memmove(out + len_at + v, out + content_start, c);
  otc_put_varint_n(out + len_at, c);
  *n = len_at + v + c;
  return 0;
}

/* Opens a copy of the length-delimited field f at w->out: its tag, then room for the longest
 * length its content can have (the original's). Returns the offset of that room. */
static int open_len(struct walker *w, const struct field *f, size_t *len_at) {
  int rc = put(w, f->start, (size_t)(f->after_tag - f->start));
  if (rc != 0)
    return rc;
  *len_at = w->n;
  size_t room = otc_varint_size(f->vlen);
  if (room > w->cap - w->n)
    return OTC_ERR_INVALID;
  w->n += room;
  return 0;
}

/* Writes level L's share of the current piece: its header fields, then its children from the
 * resume point, until the piece holds max_items items and another item comes. Returns 0 when the
 * message is done, 1 when the piece is full (the resume point saved), or an error. */
static int fill(struct walker *w, int L) {
  struct level *lv = &w->lv[L];
  int rc = put(w, w->scratch + lv->hdr_off, lv->hdr_len);
  if (rc != 0)
    return rc;
  const uint8_t *p = lv->msg + lv->pos, *end = lv->msg + lv->len;
  struct field f;
  while (p < end) {
    if (next_field(p, end, &f) != RD_OK)
      return OTC_ERR_INVALID;
    p = f.end;
    if (!is_child(w, L, &f))
      continue;
    size_t at = (size_t)(f.start - lv->msg);
    if (L == w->leaf) {
      if (w->budget == 0) {
        lv->pos = at;
        return 1;
      }
      if ((rc = put(w, f.start, (size_t)(f.end - f.start))) != 0)
        return rc;
      w->budget--;
      w->piece_items++;
      continue;
    }
    if (!lv->partial && (rc = enter_level(w, L + 1, f.val, f.vlen)) != 0)
      return rc;
    size_t mark = w->n, items_before = w->piece_items, len_at;
    if ((rc = open_len(w, &f, &len_at)) != 0)
      return rc;
    size_t content_start = w->n;
    int sub = fill(w, L + 1);
    if (sub < 0)
      return sub;
    if (sub == 1 && w->piece_items == items_before) {
      /* Nothing of this child fits: it starts the next piece whole, with its header. */
      w->n = mark;
      lv->partial = false;
      lv->pos = at;
      return 1;
    }
    if ((rc = close_len(w->out, len_at, content_start, &w->n)) != 0)
      return rc;
    if (sub == 1) {
      lv->partial = true;
      lv->pos = at;
      return 1;
    }
    lv->partial = false;
  }
  lv->pos = lv->len;
  return 0;
}

static int leaf_level(enum otc_signal s) {
  return s == OTC_SIGNAL_METRICS ? 4 : 2;
}

int otc_wire_split(enum otc_signal s, const uint8_t *buf, size_t len, size_t max_items,
                   otc_wire_emit_fn emit, void *arg) {
  if (request_type(s) == M_NONE)
    return OTC_ERR_INVALID;
  struct walker w = {.s = s, .leaf = leaf_level(s)};
  size_t items = 0, max_hdr = 0;
  int rc = count_level(&w, 0, buf, len, &items, &max_hdr);
  if (rc != 0)
    return rc;
  if (max_items == 0 || items <= max_items)
    return emit(arg, buf, len, items);

  /* A piece is never longer than the request (it holds a share of each message it touches, each
   * share no longer than the whole); the scratch area holds the headers of one path. */
  uint8_t *mem = malloc(len + max_hdr);
  if (!mem)
    return OTC_ERR_NOMEM;
  w.out = mem;
  w.cap = len;
  w.scratch = mem + len;
  w.scratch_cap = max_hdr;
  if ((rc = enter_level(&w, 0, buf, len)) != 0)
    goto cleanup;
  int more;
  do {
    w.n = 0;
    w.budget = max_items;
    w.piece_items = 0;
    more = fill(&w, 0);
    if (more < 0) {
      rc = more;
      goto cleanup;
    }
    if ((rc = emit(arg, w.out, w.n, w.piece_items)) != 0)
      goto cleanup;
  } while (more == 1);
cleanup:
  free(mem);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Dropping invalid items */

static bool item_valid(enum otc_signal s, const uint8_t *p, size_t len) {
  const uint8_t *end = p + len;
  uint32_t trace_num = s == OTC_SIGNAL_TRACES ? 1 : 9;
  size_t trace = 0, span = 0;
  struct field f;
  while (p < end) {
    if (next_field(p, end, &f) != RD_OK)
      return true; /* not ours to judge: the request was validated before */
    p = f.end;
    if (f.wt != WT_LEN)
      continue;
    if (f.num == trace_num)
      trace = f.vlen;
    else if (f.num == trace_num + 1)
      span = f.vlen;
  }
  if (s == OTC_SIGNAL_TRACES)
    return trace == 16 && span == 8;
  return (trace == 0 || trace == 16) && (span == 0 || span == 8);
}

/* Copies level L (a request, ResourceX or ScopeX of spans or logs) into w->out without its
 * invalid items, field order unchanged. */
static int drop_level(struct walker *w, int L, const uint8_t *msg, size_t len) {
  uint32_t child = L == 0 ? 1 : 2;
  const uint8_t *p = msg, *end = msg + len;
  struct field f;
  int rc;
  while (p < end) {
    if (next_field(p, end, &f) != RD_OK)
      return OTC_ERR_INVALID;
    p = f.end;
    if (f.num != child || f.wt != WT_LEN) {
      rc = put(w, f.start, (size_t)(f.end - f.start));
    } else if (L == w->leaf) {
      rc = item_valid(w->s, f.val, f.vlen) ? put(w, f.start, (size_t)(f.end - f.start)) : 0;
    } else {
      size_t len_at;
      if ((rc = open_len(w, &f, &len_at)) != 0)
        return rc;
      size_t content_start = w->n;
      if ((rc = drop_level(w, L + 1, f.val, f.vlen)) != 0)
        return rc;
      rc = close_len(w->out, len_at, content_start, &w->n);
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}

size_t otc_wire_drop_invalid(enum otc_signal s, const uint8_t *buf, size_t len, uint8_t *out) {
  if (len == 0)
    return 0;
  if (s == OTC_SIGNAL_TRACES || s == OTC_SIGNAL_LOGS) {
    struct walker w = {.s = s, .leaf = leaf_level(s), .out = out, .cap = len};
    if (drop_level(&w, 0, buf, len) == 0)
      return w.n;
  }
  /* Metrics have no invalid items; a request that is not valid after all is left as it is. */
  memcpy(out, buf, len);
  return len;
}
