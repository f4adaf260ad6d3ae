/* The debug exporter, otelcol's `debug`: writes what it receives to the console. verbosity basic
 * prints one summary line per batch (counted from the wire, without decoding), normal one line per
 * span, log record or data point, detailed a full dump in the text layout of otelcol's debug
 * exporter (ResourceSpans #0, Resource attributes:, Span #0, ...). Batches were validated by the
 * receiver (bounded nesting), so protobuf-c may unpack them. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/component.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/otlp_wire.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpHistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SummaryDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar Exemplar;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceRequest;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsRequest;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsRequest;

/* Deeper AnyValue nesting is printed as "..." (the receiver refuses deeper data anyway). */
#define MAX_VALUE_DEPTH 128

enum verbosity { V_BASIC, V_NORMAL, V_DETAILED };

struct debug_config {
  const char *verbosity;
  int64_t sampling_initial;
  int64_t sampling_thereafter;
  bool use_internal_logger;
};

static const struct otc_cfg_field debug_fields[] = {
    {"verbosity", OTC_CFGK_STRING, "basic", offsetof(struct debug_config, verbosity), 0, 0},
    {"sampling_initial", OTC_CFGK_INT, "2", offsetof(struct debug_config, sampling_initial), 0,
     1e9},
    {"sampling_thereafter", OTC_CFGK_INT, "1", offsetof(struct debug_config, sampling_thereafter),
     0, 1e9},
    {"use_internal_logger", OTC_CFGK_BOOL, "true",
     offsetof(struct debug_config, use_internal_logger), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct debug_exporter {
  char *id;
  enum verbosity verbosity;
  uint64_t sampling_initial, sampling_thereafter;
  bool use_internal_logger;
  struct otc_exporter_metrics metrics;
  pthread_mutex_t lock; /* the sampling window */
  time_t window;
  uint64_t window_count;
};

/* --- a growing text buffer --- */

struct text {
  char *p;
  size_t len, cap;
  bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...) {
  if (t->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = true;
      return;
    }
    if (t->p && (size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    while (ncap - t->len <= (size_t)n)
      ncap *= 2;
    char *np = realloc(t->p, ncap);
    if (!np) {
      t->failed = true;
      return;
    }
    t->p = np;
    t->cap = ncap;
  }
}

/* --- value formatting, as pdata's String()/AsString() write them --- */

/* Hex of an id, or "" when it is empty or all zero (pdata's TraceID.String()). */
static const char *hex_id(ProtobufCBinaryData id, char *buf, size_t cap) {
  bool zero = true;
  for (size_t i = 0; i < id.len; i++)
    zero = zero && id.data[i] == 0;
  buf[0] = '\0';
  if (zero || id.len * 2 + 1 > cap)
    return buf;
  for (size_t i = 0; i < id.len; i++)
    snprintf(buf + 2 * i, 3, "%02x", id.data[i]);
  return buf;
}

/* Go's time.Time.String() in UTC: "2020-02-11 20:26:13.000000789 +0000 UTC", the fraction
 * without trailing zeros. */
static const char *fmt_time(uint64_t ns, char *buf, size_t cap) {
  time_t sec = (time_t)(ns / 1000000000u);
  unsigned frac = (unsigned)(ns % 1000000000u);
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
  if (frac) {
    char f[16];
    snprintf(f, sizeof f, ".%09u", frac);
    size_t l = strlen(f);
    while (f[l - 1] == '0')
      f[--l] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "%s", f);
  }
  snprintf(buf + n, cap - n, " +0000 UTC");
  return buf;
}

/* A double as Go's pdata prints it (ES6 number to string): the fewest digits that read back,
 * in fixed notation unless tiny or huge. */
static const char *fmt_double(double v, char *buf, size_t cap) {
  if (isnan(v))
    return snprintf(buf, cap, "NaN"), buf;
  if (isinf(v))
    return snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf"), buf;
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*e", prec - 1, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  double a = fabs(v);
  if (a == 0 || (a >= 1e-6 && a < 1e21)) {
    int exp10 = (int)floor(log10(a == 0 ? 1 : a));
    /* log10 can be off by one near powers of ten; the %e form knows the true exponent. */
    const char *e = strchr(buf, 'e');
    if (e)
      exp10 = atoi(e + 1);
    int decimals = prec - 1 - exp10;
    snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, v);
  } else {
    /* Go writes 1e+21 and 1e-07: no zero padding of the exponent. */
    char *e = strchr(buf, 'e');
    if (e && (e[2] == '0') && e[3]) {
      memmove(e + 2, e + 3, strlen(e + 3) + 1);
    }
  }
  return buf;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(struct text *t, const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)d[i + 1] << 8;
    if (i + 2 < n)
      v |= d[i + 2];
    put(t, "%c%c%c%c", b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
        i + 1 < n ? b64chars[(v >> 6) & 63] : '=', i + 2 < n ? b64chars[v & 63] : '=');
  }
}

/* The JSON form of a value, for maps and slices (as pdata's AsString marshals them: keys sorted).
 */
static json_t *value_json(const AnyValue *v, int depth) {
  if (!v || depth > MAX_VALUE_DEPTH)
    return json_null();
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    return json_string(v->string_value);
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    return json_boolean(v->bool_value);
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    return json_integer((json_int_t)v->int_value);
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    return json_real(v->double_value);
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
    struct text t = {0};
    put(&t, "%s", "");
    put_base64(&t, v->bytes_value.data, v->bytes_value.len);
    json_t *j = json_string(t.failed ? "" : t.p);
    free(t.p);
    return j;
  }
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
    json_t *a = json_array();
    for (size_t i = 0; a && v->array_value && i < v->array_value->n_values; i++)
      json_array_append_new(a, value_json(v->array_value->values[i], depth + 1));
    return a;
  }
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
    json_t *o = json_object();
    for (size_t i = 0; o && v->kvlist_value && i < v->kvlist_value->n_values; i++) {
      const KeyValue *kv = v->kvlist_value->values[i];
      json_object_set_new(o, kv->key, value_json(kv->value, depth + 1));
    }
    return o;
  }
  default:
    return json_null();
  }
}

/* pdata's Value.AsString(). */
static void put_value_string(struct text *t, const AnyValue *v) {
  char num[64];
  if (!v)
    return;
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    put(t, "%s", v->string_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    put(t, "%s", v->bool_value ? "true" : "false");
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    put(t, "%" PRId64, v->int_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    put(t, "%s", fmt_double(v->double_value, num, sizeof num));
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    put_base64(t, v->bytes_value.data, v->bytes_value.len);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
    json_t *j = value_json(v, 0);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    put(t, "%s", s ? s : "");
    free(s);
    json_decref(j);
    break;
  }
  default:
    break;
  }
}

static const char *value_type_name(const AnyValue *v) {
  switch (v ? v->value_case : 0) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    return "Str";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    return "Bool";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    return "Int";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    return "Double";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    return "Slice";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
    return "Map";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    return "Bytes";
  default:
    return "Empty";
  }
}

/* "Str(value)": the detailed form of a value. */
static void put_typed_value(struct text *t, const AnyValue *v) {
  put(t, "%s(", value_type_name(v));
  put_value_string(t, v);
  put(t, ")");
}

/* An attribute block: "header:" then one "     -> key: Type(value)" line each. A header that
 * itself starts with an arrow indents its attributes one level deeper, as otelcol does. */
static void put_attributes(struct text *t, const char *header, KeyValue **kv, size_t n) {
  if (n == 0)
    return;
  put(t, "%s:\n", header);
  const char *arrow = strstr(header, "->");
  int indent = arrow ? (int)(arrow - header) : 0;
  for (size_t i = 0; i < n; i++) {
    put(t, "%*s     -> %s: ", indent, "", kv[i]->key);
    put_typed_value(t, kv[i]->value);
    put(t, "\n");
  }
}

/* "k=v k2=v2" with a leading separator, for normal verbosity. */
static void put_flat_attributes(struct text *t, KeyValue **kv, size_t n, const char *sep) {
  for (size_t i = 0; i < n; i++) {
    put(t, "%s%s=", i ? sep : "", kv[i]->key);
    put_value_string(t, kv[i]->value);
  }
}

static void put_field(struct text *t, const char *name, const char *value) {
  put(t, "    %-15s: %s\n", name, value);
}

static void put_resource(struct text *t, const Resource *r, const char *schema_url) {
  put(t, "Resource SchemaURL: %s\n", schema_url ? schema_url : "");
  if (r)
    put_attributes(t, "Resource attributes", r->attributes, r->n_attributes);
}

static void put_scope(struct text *t, const char *kind, size_t j, const Scope *s,
                      const char *schema_url) {
  put(t, "%s #%zu\n", kind, j);
  put(t, "%s SchemaURL: %s\n", kind, schema_url ? schema_url : "");
  put(t, "InstrumentationScope %s %s\n", s ? s->name : "", s ? s->version : "");
  if (s)
    put_attributes(t, "InstrumentationScope attributes", s->attributes, s->n_attributes);
}

/* --- traces --- */

static const char *span_kind_name(int k) {
  static const char *const names[] = {"Unspecified", "Internal", "Server",
                                      "Client",      "Producer", "Consumer"};
  return k >= 0 && k < 6 ? names[k] : "Unspecified";
}

static const char *status_code_name(int c) {
  static const char *const names[] = {"Unset", "Ok", "Error"};
  return c >= 0 && c < 3 ? names[c] : "Unset";
}

static void detailed_span(struct text *t, const Span *sp) {
  char a[64], ts[64];
  put_field(t, "Trace ID", hex_id(sp->trace_id, a, sizeof a));
  put_field(t, "Parent ID", hex_id(sp->parent_span_id, a, sizeof a));
  put_field(t, "ID", hex_id(sp->span_id, a, sizeof a));
  put_field(t, "Name", sp->name);
  put_field(t, "Kind", span_kind_name(sp->kind));
  if (sp->trace_state && sp->trace_state[0])
    put_field(t, "TraceState", sp->trace_state);
  put_field(t, "Start time", fmt_time(sp->start_time_unix_nano, ts, sizeof ts));
  put_field(t, "End time", fmt_time(sp->end_time_unix_nano, ts, sizeof ts));
  put_field(t, "Status code", status_code_name(sp->status ? (int)sp->status->code : 0));
  put_field(t, "Status message", sp->status ? sp->status->message : "");
  put(t, "    DroppedAttributesCount: %u\n", sp->dropped_attributes_count);
  put(t, "    DroppedEventsCount: %u\n", sp->dropped_events_count);
  put(t, "    DroppedLinksCount: %u\n", sp->dropped_links_count);
  put_attributes(t, "Attributes", sp->attributes, sp->n_attributes);
  if (sp->n_events)
    put(t, "Events:\n");
  for (size_t i = 0; i < sp->n_events; i++) {
    const Opentelemetry__Proto__Trace__V1__Span__Event *e = sp->events[i];
    put(t, "SpanEvent #%zu\n", i);
    put(t, "     -> Name: %s\n", e->name);
    put(t, "     -> Timestamp: %s\n", fmt_time(e->time_unix_nano, ts, sizeof ts));
    put(t, "     -> DroppedAttributesCount: %u\n", e->dropped_attributes_count);
    put_attributes(t, "     -> Attributes:", e->attributes, e->n_attributes);
  }
  if (sp->n_links)
    put(t, "Links:\n");
  for (size_t i = 0; i < sp->n_links; i++) {
    const Opentelemetry__Proto__Trace__V1__Span__Link *l = sp->links[i];
    put(t, "SpanLink #%zu\n", i);
    put(t, "     -> Trace ID: %s\n", hex_id(l->trace_id, a, sizeof a));
    put(t, "     -> ID: %s\n", hex_id(l->span_id, a, sizeof a));
    put(t, "     -> TraceState: %s\n", l->trace_state);
    put(t, "     -> DroppedAttributesCount: %u\n", l->dropped_attributes_count);
    put_attributes(t, "     -> Attributes:", l->attributes, l->n_attributes);
  }
}

static int dump_traces(struct text *t, enum verbosity v, const uint8_t *data, size_t len) {
  TraceRequest *req =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                       data);
  if (!req)
    return OTC_ERR_INVALID;
  char a[64];
  for (size_t i = 0; i < req->n_resource_spans; i++) {
    const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
    if (v == V_DETAILED) {
      put(t, "ResourceSpans #%zu\n", i);
      put_resource(t, rs->resource, rs->schema_url);
    }
    for (size_t j = 0; j < rs->n_scope_spans; j++) {
      const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
      if (v == V_DETAILED)
        put_scope(t, "ScopeSpans", j, ss->scope, ss->schema_url);
      for (size_t k = 0; k < ss->n_spans; k++) {
        const Span *sp = ss->spans[k];
        if (v == V_DETAILED) {
          put(t, "Span #%zu\n", k);
          detailed_span(t, sp);
          continue;
        }
        put(t, "%s %s", sp->name, hex_id(sp->trace_id, a, sizeof a));
        put(t, " %s", hex_id(sp->span_id, a, sizeof a));
        if (sp->n_attributes)
          put(t, " ");
        put_flat_attributes(t, sp->attributes, sp->n_attributes, " ");
        put(t, "\n");
      }
    }
  }
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                          NULL);
  return 0;
}

/* --- logs --- */

/* pdata's SeverityNumber.String(): "Info", "Info2"... "Fatal4", "Unspecified". */
static const char *severity_name(int n, char *buf, size_t cap) {
  static const char *const base[] = {"Trace", "Debug", "Info", "Warn", "Error", "Fatal"};
  if (n < 1 || n > 24)
    return snprintf(buf, cap, "Unspecified"), buf;
  int k = (n - 1) % 4;
  if (k == 0)
    snprintf(buf, cap, "%s", base[(n - 1) / 4]);
  else
    snprintf(buf, cap, "%s%d", base[(n - 1) / 4], k + 1);
  return buf;
}

static void detailed_log(struct text *t, const LogRecord *lr) {
  char ts[64], a[64];
  put(t, "ObservedTimestamp: %s\n", fmt_time(lr->observed_time_unix_nano, ts, sizeof ts));
  put(t, "Timestamp: %s\n", fmt_time(lr->time_unix_nano, ts, sizeof ts));
  put(t, "SeverityText: %s\n", lr->severity_text);
  put(t, "SeverityNumber: %s(%d)\n", severity_name(lr->severity_number, a, sizeof a),
      (int)lr->severity_number);
  if (lr->event_name && lr->event_name[0])
    put(t, "EventName: %s\n", lr->event_name);
  put(t, "Body: ");
  put_typed_value(t, lr->body);
  put(t, "\n");
  put_attributes(t, "Attributes", lr->attributes, lr->n_attributes);
  put(t, "Trace ID: %s\n", hex_id(lr->trace_id, a, sizeof a));
  put(t, "Span ID: %s\n", hex_id(lr->span_id, a, sizeof a));
  put(t, "Flags: %u\n", lr->flags);
}

static int dump_logs(struct text *t, enum verbosity v, const uint8_t *data, size_t len) {
  LogsRequest *req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
      NULL, len, data);
  if (!req)
    return OTC_ERR_INVALID;
  for (size_t i = 0; i < req->n_resource_logs; i++) {
    const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];
    if (v == V_DETAILED) {
      put(t, "ResourceLog #%zu\n", i);
      put_resource(t, rl->resource, rl->schema_url);
    }
    for (size_t j = 0; j < rl->n_scope_logs; j++) {
      const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
      if (v == V_DETAILED)
        put_scope(t, "ScopeLogs", j, sl->scope, sl->schema_url);
      for (size_t k = 0; k < sl->n_log_records; k++) {
        const LogRecord *lr = sl->log_records[k];
        if (v == V_DETAILED) {
          put(t, "LogRecord #%zu\n", k);
          detailed_log(t, lr);
          continue;
        }
        put_value_string(t, lr->body);
        if (lr->n_attributes)
          put(t, " ");
        put_flat_attributes(t, lr->attributes, lr->n_attributes, " ");
        put(t, "\n");
      }
    }
  }
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req, NULL);
  return 0;
}

/* --- metrics --- */

static const char *temporality_name(int a) {
  static const char *const names[] = {"Unspecified", "Delta", "Cumulative"};
  return a >= 0 && a < 3 ? names[a] : "Unspecified";
}

static void put_exemplars(struct text *t, Exemplar **ex, size_t n) {
  char a[64], ts[64];
  if (n == 0)
    return;
  put(t, "Exemplars:\n");
  for (size_t i = 0; i < n; i++) {
    const Exemplar *e = ex[i];
    put(t, "Exemplar #%zu\n", i);
    put(t, "     -> Trace ID: %s\n", hex_id(e->trace_id, a, sizeof a));
    put(t, "     -> Span ID: %s\n", hex_id(e->span_id, a, sizeof a));
    put(t, "     -> Timestamp: %s\n", fmt_time(e->time_unix_nano, ts, sizeof ts));
    if (e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT)
      put(t, "     -> Value: %" PRId64 "\n", e->as_int);
    else if (e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE)
      put(t, "     -> Value: %f\n", e->as_double);
    put_attributes(t, "     -> FilteredAttributes", e->filtered_attributes,
                   e->n_filtered_attributes);
  }
}

static void put_point_header(struct text *t, const char *kind, size_t i, KeyValue **attrs,
                             size_t n_attrs, uint64_t start, uint64_t ts) {
  char b[64];
  put(t, "%s #%zu\n", kind, i);
  put_attributes(t, "Data point attributes", attrs, n_attrs);
  put(t, "StartTimestamp: %s\n", fmt_time(start, b, sizeof b));
  put(t, "Timestamp: %s\n", fmt_time(ts, b, sizeof b));
}

static void detailed_number_points(struct text *t, NumberDataPoint **pts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const NumberDataPoint *p = pts[i];
    put_point_header(t, "NumberDataPoints", i, p->attributes, p->n_attributes,
                     p->start_time_unix_nano, p->time_unix_nano);
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
      put(t, "Value: %" PRId64 "\n", p->as_int);
    else if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
      put(t, "Value: %f\n", p->as_double);
    put_exemplars(t, p->exemplars, p->n_exemplars);
  }
}

static void detailed_histogram_points(struct text *t, HistogramDataPoint **pts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const HistogramDataPoint *p = pts[i];
    put_point_header(t, "HistogramDataPoints", i, p->attributes, p->n_attributes,
                     p->start_time_unix_nano, p->time_unix_nano);
    put(t, "Count: %" PRIu64 "\n", p->count);
    if (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM)
      put(t, "Sum: %f\n", p->sum);
    if (p->_min_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN)
      put(t, "Min: %f\n", p->min);
    if (p->_max_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX)
      put(t, "Max: %f\n", p->max);
    for (size_t j = 0; j < p->n_explicit_bounds; j++)
      put(t, "ExplicitBounds #%zu: %f\n", j, p->explicit_bounds[j]);
    for (size_t j = 0; j < p->n_bucket_counts; j++)
      put(t, "Buckets #%zu, Count: %" PRIu64 "\n", j, p->bucket_counts[j]);
    put_exemplars(t, p->exemplars, p->n_exemplars);
  }
}

static void detailed_exp_histogram_points(struct text *t, ExpHistogramDataPoint **pts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const ExpHistogramDataPoint *p = pts[i];
    put_point_header(t, "ExponentialHistogramDataPoints", i, p->attributes, p->n_attributes,
                     p->start_time_unix_nano, p->time_unix_nano);
    put(t, "Count: %" PRIu64 "\n", p->count);
    if (p->_sum_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM)
      put(t, "Sum: %f\n", p->sum);
    if (p->_min_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN)
      put(t, "Min: %f\n", p->min);
    if (p->_max_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX)
      put(t, "Max: %f\n", p->max);
    /* Bucket index i covers (base^i, base^(i+1)] with base = 2^(2^-scale). */
    double factor = ldexp(M_LN2, -p->scale);
    if (p->negative) {
      for (size_t k = p->negative->n_bucket_counts; k-- > 0;) {
        double index = (double)p->negative->offset + (double)k;
        put(t, "Bucket [%f, %f), Count: %" PRIu64 "\n", -exp((index + 1) * factor),
            -exp(index * factor), p->negative->bucket_counts[k]);
      }
    }
    if (p->zero_count)
      put(t, "Bucket [0, 0], Count: %" PRIu64 "\n", p->zero_count);
    if (p->positive) {
      for (size_t k = 0; k < p->positive->n_bucket_counts; k++) {
        double index = (double)p->positive->offset + (double)k;
        put(t, "Bucket (%f, %f], Count: %" PRIu64 "\n", exp(index * factor),
            exp((index + 1) * factor), p->positive->bucket_counts[k]);
      }
    }
    put_exemplars(t, p->exemplars, p->n_exemplars);
  }
}

static void detailed_summary_points(struct text *t, SummaryDataPoint **pts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const SummaryDataPoint *p = pts[i];
    put_point_header(t, "SummaryDataPoints", i, p->attributes, p->n_attributes,
                     p->start_time_unix_nano, p->time_unix_nano);
    put(t, "Count: %" PRIu64 "\n", p->count);
    put(t, "Sum: %f\n", p->sum);
    for (size_t j = 0; j < p->n_quantile_values; j++)
      put(t, "QuantileValue #%zu: Quantile %f, Value %f\n", j, p->quantile_values[j]->quantile,
          p->quantile_values[j]->value);
  }
}

static void detailed_metric(struct text *t, const Metric *m) {
  static const char *const type_names[] = {
      [OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE] = "Gauge",
      [OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM] = "Sum",
      [OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM] = "Histogram",
      [OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM] =
          "ExponentialHistogram",
      [OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY] = "Summary",
  };
  unsigned dc = (unsigned)m->data_case;
  const char *type =
      dc < sizeof type_names / sizeof *type_names && type_names[dc] ? type_names[dc] : "Empty";
  put(t, "Descriptor:\n");
  put(t, "     -> Name: %s\n", m->name);
  put(t, "     -> Description: %s\n", m->description);
  put(t, "     -> Unit: %s\n", m->unit);
  put(t, "     -> DataType: %s\n", type);
  switch (m->data_case) {
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    detailed_number_points(t, m->gauge->data_points, m->gauge->n_data_points);
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
    put(t, "     -> IsMonotonic: %s\n", m->sum->is_monotonic ? "true" : "false");
    put(t, "     -> AggregationTemporality: %s\n",
        temporality_name(m->sum->aggregation_temporality));
    detailed_number_points(t, m->sum->data_points, m->sum->n_data_points);
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
    put(t, "     -> AggregationTemporality: %s\n",
        temporality_name(m->histogram->aggregation_temporality));
    detailed_histogram_points(t, m->histogram->data_points, m->histogram->n_data_points);
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
    put(t, "     -> AggregationTemporality: %s\n",
        temporality_name(m->exponential_histogram->aggregation_temporality));
    detailed_exp_histogram_points(t, m->exponential_histogram->data_points,
                                  m->exponential_histogram->n_data_points);
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
    detailed_summary_points(t, m->summary->data_points, m->summary->n_data_points);
    break;
  default:
    break;
  }
}

/* Normal verbosity: one line per data point, `name{k=v,...} value` as otelcol writes them. */
static void normal_metric(struct text *t, const Metric *m) {
  char num[64];
  switch (m->data_case) {
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
    bool gauge = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    size_t n = gauge ? m->gauge->n_data_points : m->sum->n_data_points;
    NumberDataPoint **pts = gauge ? m->gauge->data_points : m->sum->data_points;
    for (size_t i = 0; i < n; i++) {
      put(t, "%s{", m->name);
      put_flat_attributes(t, pts[i]->attributes, pts[i]->n_attributes, ",");
      if (pts[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        put(t, "} %" PRId64 "\n", pts[i]->as_int);
      else
        put(t, "} %s\n", fmt_double(pts[i]->as_double, num, sizeof num));
    }
    break;
  }
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
    for (size_t i = 0; i < m->histogram->n_data_points; i++) {
      const HistogramDataPoint *p = m->histogram->data_points[i];
      put(t, "%s{", m->name);
      put_flat_attributes(t, p->attributes, p->n_attributes, ",");
      put(t, "} count=%" PRIu64, p->count);
      if (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM)
        put(t, " sum=%s", fmt_double(p->sum, num, sizeof num));
      for (size_t j = 0; j < p->n_bucket_counts; j++) {
        if (j < p->n_explicit_bounds)
          put(t, " le%s=", fmt_double(p->explicit_bounds[j], num, sizeof num));
        else
          put(t, " ");
        put(t, "%" PRIu64, p->bucket_counts[j]);
      }
      put(t, "\n");
    }
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
    for (size_t i = 0; i < m->exponential_histogram->n_data_points; i++) {
      const ExpHistogramDataPoint *p = m->exponential_histogram->data_points[i];
      put(t, "%s{", m->name);
      put_flat_attributes(t, p->attributes, p->n_attributes, ",");
      put(t, "} count=%" PRIu64 " scale=%d zero_count=%" PRIu64 "\n", p->count, p->scale,
          p->zero_count);
    }
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
    for (size_t i = 0; i < m->summary->n_data_points; i++) {
      const SummaryDataPoint *p = m->summary->data_points[i];
      put(t, "%s{", m->name);
      put_flat_attributes(t, p->attributes, p->n_attributes, ",");
      put(t, "} count=%" PRIu64 " sum=%f", p->count, p->sum);
      for (size_t j = 0; j < p->n_quantile_values; j++)
        put(t, " q%s=%s", fmt_double(p->quantile_values[j]->quantile, num, sizeof num),
            fmt_double(p->quantile_values[j]->value, num + 32, sizeof num - 32));
      put(t, "\n");
    }
    break;
  default:
    break;
  }
}

static int dump_metrics(struct text *t, enum verbosity v, const uint8_t *data, size_t len) {
  MetricsRequest *req =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
          NULL, len, data);
  if (!req)
    return OTC_ERR_INVALID;
  for (size_t i = 0; i < req->n_resource_metrics; i++) {
    const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
    if (v == V_DETAILED) {
      put(t, "ResourceMetrics #%zu\n", i);
      put_resource(t, rm->resource, rm->schema_url);
    }
    for (size_t j = 0; j < rm->n_scope_metrics; j++) {
      const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
      if (v == V_DETAILED)
        put_scope(t, "ScopeMetrics", j, sm->scope, sm->schema_url);
      for (size_t k = 0; k < sm->n_metrics; k++) {
        if (v == V_DETAILED) {
          put(t, "Metric #%zu\n", k);
          detailed_metric(t, sm->metrics[k]);
        } else {
          normal_metric(t, sm->metrics[k]);
        }
      }
    }
  }
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(req,
                                                                                              NULL);
  return 0;
}

/* --- the component --- */

/* Writes all of buf to fd in as few writes as the kernel allows (one, for a pipe or a file). */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    buf += w;
    len -= (size_t)w;
  }
}

/* zap's sampler, simplified to whole batches: in each second the first sampling_initial batches
 * are written, then every sampling_thereafter-th. */
static bool sampled_in(struct debug_exporter *d) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  pthread_mutex_lock(&d->lock);
  if (now.tv_sec != d->window) {
    d->window = now.tv_sec;
    d->window_count = 0;
  }
  uint64_t n = ++d->window_count;
  pthread_mutex_unlock(&d->lock);
  if (n <= d->sampling_initial)
    return true;
  return d->sampling_thereafter > 0 && (n - d->sampling_initial) % d->sampling_thereafter == 0;
}

static void debug_destroy(void *ctx);

static void *debug_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                          struct otc_cfg_err *err) {
  struct debug_exporter *d = NULL;
  struct debug_config c = {0};
  if (otc_cfg_apply(debug_fields, cfg, &c, args->id, err) != 0)
    goto fail;
  enum verbosity v;
  if (strcasecmp(c.verbosity, "basic") == 0) {
    v = V_BASIC;
  } else if (strcasecmp(c.verbosity, "normal") == 0) {
    v = V_NORMAL;
  } else if (strcasecmp(c.verbosity, "detailed") == 0) {
    v = V_DETAILED;
  } else {
    otc_cfg_error(err, otc_cfg_get(cfg, "verbosity"),
                  "unknown verbosity level \"%s\" (basic, normal, detailed)", c.verbosity);
    goto fail;
  }
  d = calloc(1, sizeof *d);
  if (!d || !(d->id = strdup(args->id ? args->id : "debug"))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  d->verbosity = v;
  d->sampling_initial = (uint64_t)c.sampling_initial;
  d->sampling_thereafter = (uint64_t)c.sampling_thereafter;
  d->use_internal_logger = c.use_internal_logger;
  d->window = (time_t)-1;
  pthread_mutex_init(&d->lock, NULL);
  otc_exporter_metrics_init(&d->metrics, d->id);
  return d;
fail:
  free(d);
  return NULL;
}

static int debug_consume(void *ctx, struct otc_batch *b) {
  struct debug_exporter *d = ctx;
  struct text t = {0};
  int rc = 0;
  enum otc_signal s = b->signal;
  /* Sampling applies to the internal logger only, as in otelcol; stdout gets everything. */
  if (d->use_internal_logger && !sampled_in(d))
    goto done;

  struct otc_wire_stats st = {0};
  char why[128];
  if (otc_wire_scan(s, b->data, b->len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why, sizeof why) != 0) {
    otc_warn(d->id, "cannot read a %s batch: %s", otc_signal_name(s), why);
    rc = OTC_ERR_PERMANENT;
    goto done;
  }
  char summary[192];
  if (s == OTC_SIGNAL_TRACES)
    snprintf(summary, sizeof summary, "Traces {\"resource spans\": %zu, \"spans\": %zu}",
             st.resources, st.items);
  else if (s == OTC_SIGNAL_METRICS)
    snprintf(summary, sizeof summary,
             "Metrics {\"resource metrics\": %zu, \"metrics\": %zu, \"data points\": %zu}",
             st.resources, st.metrics, st.items);
  else
    snprintf(summary, sizeof summary, "Logs {\"resource logs\": %zu, \"log records\": %zu}",
             st.resources, st.items);

  if (d->use_internal_logger)
    otc_info(d->id, "%s", summary);
  else
    put(&t, "%s\n", summary);
  if (d->verbosity != V_BASIC) {
    int r = s == OTC_SIGNAL_TRACES    ? dump_traces(&t, d->verbosity, b->data, b->len)
            : s == OTC_SIGNAL_METRICS ? dump_metrics(&t, d->verbosity, b->data, b->len)
                                      : dump_logs(&t, d->verbosity, b->data, b->len);
    if (r != 0) {
      otc_warn(d->id, "cannot decode a %s batch", otc_signal_name(s));
      rc = OTC_ERR_PERMANENT;
      goto done;
    }
  }
  if (t.failed) {
    rc = OTC_ERR_NOMEM;
    goto done;
  }
  if (t.len)
    write_all(d->use_internal_logger ? STDERR_FILENO : STDOUT_FILENO, t.p, t.len);
done:
  if ((unsigned)s < OTC_SIGNAL_COUNT)
    otc_counter_add(rc == 0 ? d->metrics.sent[s] : d->metrics.send_failed[s], b->items);
  free(t.p);
  otc_batch_unref(b);
  return rc;
}

static void debug_destroy(void *ctx) {
  struct debug_exporter *d = ctx;
  if (!d)
    return;
  pthread_mutex_destroy(&d->lock);
  free(d->id);
  free(d);
}

const struct otc_component_ops otc_exporter_debug = {
    .type = "debug",
    .aliases = NULL,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = debug_create,
    .start = NULL,
    .consume = debug_consume,
    .shutdown = NULL,
    .destroy = debug_destroy,
};
