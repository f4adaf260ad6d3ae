/* OTLP JSON <-> protobuf. Both directions walk protobuf-c's message descriptors instead of
 * hand-written code per message: the descriptors already know every field's number, type, label,
 * offset and oneof, so the JSON mapping needs only its own rules (camelCase names, hex ids,
 * 64-bit integers as strings, enums as integers, NaN/Infinity as strings). JSON is read with
 * yajl's streaming parser and written straight as protobuf wire bytes (see "JSON -> protobuf");
 * protobuf is read by protobuf-c and written as JSON with a string builder. */
#include "core/otlp_json.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "core/errors.h"
#include "core/pb_varint.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* The JSON nesting depth refused as invalid JSON: jansson's JSON_PARSER_MAX_DEPTH, the limit this
 * transcoder had when it used jansson. */
#define MAX_JSON_DEPTH 2048

/* The protobuf-to-JSON direction does not take a depth limit: its input passed otc_wire_scan. This
 * bound only keeps our own recursion finite should that promise be broken. Each AnyValue level is
 * three JSON levels ({"arrayValue":{"values":[...]}}), so nothing deeper could be parsed back
 * anyway. */
#define P2J_MAX_ANYVALUE_DEPTH (MAX_JSON_DEPTH / 3)

/* Numeric strings longer than this are refused: no integer or double needs more characters, and
 * the bound keeps the exact integer conversion in a fixed buffer. */
#define MAX_NUMBER_STRING 128

/* Protobuf field names in OTLP are short; camelCase conversion writes into a buffer this big. */
#define MAX_FIELD_NAME 64

static const ProtobufCMessageDescriptor *request_descriptor(enum otc_signal s) {
  const ProtobufCMessageDescriptor *d = NULL;
  switch (s) {
  case OTC_SIGNAL_TRACES:
    d = &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    break;
  case OTC_SIGNAL_METRICS:
    d = &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    break;
  case OTC_SIGNAL_LOGS:
    d = &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    break;
  }
  return d;
}

/* "parent_span_id" -> "parentSpanId": the proto3 JSON name of a field. */
static void camel_name(const char *snake, char *out, size_t outlen) {
  size_t o = 0;
  bool upper = false;
  for (const char *p = snake; *p && o + 1 < outlen; p++) {
    if (*p == '_') {
      upper = o > 0;
      continue;
    }
    out[o++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    upper = false;
  }
  out[o] = '\0';
}

/* The OTLP bytes fields that the JSON mapping writes as hex, with their length in bytes; every
 * other bytes field (AnyValue.bytes_value) is base64 as in proto3 JSON. */
static size_t hex_id_length(const ProtobufCFieldDescriptor *f) {
  if (strcmp(f->name, "trace_id") == 0)
    return 16;
  if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0)
    return 8;
  return 0;
}

/* The size of one element of a repeated field in protobuf-c's C layout. */
static size_t element_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return sizeof(uint64_t);
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  default: /* the 32-bit integers and enums */
    return sizeof(uint32_t);
  }
}

/* ---------------------------------------------------------------------------------------------
 * Numbers in text: proto3 JSON accepts integers as JSON numbers or as strings holding a JSON
 * number, which may have a fraction or an exponent as long as the value is an integer. */

struct number_text {
  bool negative;
  const char *int_digits, *frac_digits;
  size_t n_int, n_frac;
  long exponent;
};

/* Checks that s[0..n) is a JSON number (no spaces, no "+", no hex, no "inf") and splits it. */
static bool scan_number(const char *s, size_t n, struct number_text *t) {
  size_t i = 0;
  memset(t, 0, sizeof *t);
  if (n > MAX_NUMBER_STRING)
    return false;
  if (i < n && s[i] == '-') {
    t->negative = true;
    i++;
  }
  t->int_digits = s + i;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++, t->n_int++;
  if (t->n_int == 0)
    return false;
  if (i < n && s[i] == '.') {
    i++;
    t->frac_digits = s + i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++, t->n_frac++;
    if (t->n_frac == 0)
      return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    bool eneg = false;
    size_t ndig = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      eneg = s[i++] == '-';
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      /* The string is at most MAX_NUMBER_STRING long, so clamping keeps the value meaningful:
       * no digit sequence that short can make up for an exponent this large. */
      if (t->exponent < 100000)
        t->exponent = t->exponent * 10 + (s[i] - '0');
      i++, ndig++;
    }
    if (ndig == 0)
      return false;
    if (eneg)
      t->exponent = -t->exponent;
  }
  return i == n;
}

/* Converts a scanned number exactly to sign and magnitude. Returns NULL or the reason. */
static const char *number_to_integer(const struct number_text *t, bool *negative, uint64_t *mag) {
  char digits[2 * MAX_NUMBER_STRING + 1];
  size_t nd = 0;
  /* The usual case, plain digits that cannot overflow, without the copy. */
  if (t->n_frac == 0 && t->exponent == 0 && t->n_int <= 19) {
    uint64_t v = 0;
    for (size_t i = 0; i < t->n_int; i++)
      v = v * 10 + (uint64_t)(t->int_digits[i] - '0');
    *negative = t->negative;
    *mag = v;
    return NULL;
  }
  for (size_t i = 0; i < t->n_int; i++)
    if (nd > 0 || t->int_digits[i] != '0')
      digits[nd++] = t->int_digits[i];
  for (size_t i = 0; i < t->n_frac; i++)
    if (nd > 0 || t->frac_digits[i] != '0')
      digits[nd++] = t->frac_digits[i];
  *negative = t->negative;
  *mag = 0;
  if (nd == 0)
    return NULL; /* zero, whatever the exponent */
  /* The value is digits[0..nd) times ten to the power e, with digits[0] not zero. */
  long e = t->exponent - (long)t->n_frac;
  if (e < 0) {
    if ((unsigned long)-e >= nd)
      return "not an integer";
    for (size_t i = nd - (size_t)-e; i < nd; i++)
      if (digits[i] != '0')
        return "not an integer";
    nd -= (size_t)-e;
  } else if (e > 0) {
    if (nd + (unsigned long)e > 20)
      return "integer out of range";
    memset(digits + nd, '0', (size_t)e);
    nd += (size_t)e;
  }
  if (nd > 20)
    return "integer out of range";
  uint64_t v = 0;
  for (size_t i = 0; i < nd; i++) {
    unsigned d = (unsigned)(digits[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return "integer out of range";
    v = v * 10 + d;
  }
  *mag = v;
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * JSON -> protobuf, in one streaming pass: yajl's callbacks write protobuf wire bytes straight
 * into the output buffer, with no tree of JSON values and no protobuf-c structs in between. On a
 * 512-span request of the benchmark, building and freeing a jansson tree cost 174,000
 * instructions per span, yajl's tokenizer 23,000 and this whole transcoder 46,000.
 *
 * Each message reserves one byte for its length and moves its content up when the length needs
 * more. Fields are written in the order the keys come; when a message closes, its fields are put
 * back in field-number order if they came in another order, were repeated (the last key wins) or
 * were null (absent), so that the bytes are exactly what protobuf-c would pack from the same
 * message. */

/* Bounds of the schema tables; the OTLP messages are well within them (checked when they are
 * built). */
#define MAX_FIELDS 48
#define NAME_SLOTS 128 /* more than twice MAX_FIELDS, so that a probe always ends */
#define MAX_TABLES 64
#define MAX_FENTS 512

struct mtab;

/* One field of a message, with what the transcoder needs precomputed. */
struct fent {
  const ProtobufCFieldDescriptor *f;
  const struct mtab *child; /* the table of a message field's type */
  char camel[MAX_FIELD_NAME];
  size_t camel_len, name_len;
  uint8_t tag[5], tag_len; /* the field's key on the wire (length-delimited when packed) */
  uint8_t hex_len;         /* 16 or 8 for the ids the OTLP mapping writes in hex, else 0 */
  uint8_t oneof;           /* 1 + the index of the field's oneof within the message, or 0 */
  bool packed;
  bool omit_default; /* a proto3 scalar without presence: left out when it holds the default */
};

struct mtab {
  const ProtobufCMessageDescriptor *d;
  const struct fent *f;
  unsigned n;
  bool any_value;
  /* Both names of every field, hashed: 1 + the field's index, with 0x80 set for the original
   * name; 0 for an empty slot. */
  uint8_t slot[NAME_SLOTS];
};

static unsigned name_hash(const char *s, size_t n) {
  return (unsigned)(n * 151 + (unsigned char)s[0] * 31 + (unsigned char)s[n - 1] * 7 +
                    (unsigned char)s[n / 2]) %
         NAME_SLOTS;
}

static void add_name(struct mtab *t, const char *name, size_t n, unsigned fi, bool original) {
  unsigned h = name_hash(name, n);
  while (t->slot[h])
    h = (h + 1) % NAME_SLOTS;
  t->slot[h] = (uint8_t)((fi + 1) | (original ? 0x80 : 0));
}

static struct mtab g_tabs[MAX_TABLES];
static struct fent g_fents[MAX_FENTS];
static unsigned g_ntabs, g_nfents;
static const struct mtab *g_roots[3];
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static unsigned wire_type(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 1;
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return 5;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return 2;
  default:
    return 0;
  }
}

/* Builds (once) the table of d and of every message type reachable from it; NULL if a bound is
 * exceeded. A recursive type (AnyValue -> ArrayValue -> AnyValue) finds its own table, which is
 * registered before its fields are filled. */
static const struct mtab *table_for(const ProtobufCMessageDescriptor *d) {
  for (unsigned i = 0; i < g_ntabs; i++)
    if (g_tabs[i].d == d)
      return &g_tabs[i];
  if (g_ntabs == MAX_TABLES || d->n_fields > MAX_FIELDS || g_nfents + d->n_fields > MAX_FENTS)
    return NULL;
  struct mtab *t = &g_tabs[g_ntabs++];
  struct fent *fe = &g_fents[g_nfents];
  g_nfents += d->n_fields;
  t->d = d;
  t->f = fe;
  t->n = d->n_fields;
  t->any_value = d == &opentelemetry__proto__common__v1__any_value__descriptor;
  unsigned oneof_offsets[MAX_FIELDS], noneofs = 0;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    struct fent *e = &fe[i];
    e->f = f;
    e->name_len = strlen(f->name);
    if (e->name_len >= MAX_FIELD_NAME || f->id > (UINT32_MAX >> 3))
      return NULL;
    camel_name(f->name, e->camel, sizeof e->camel);
    e->camel_len = strlen(e->camel);
    e->packed = f->label == PROTOBUF_C_LABEL_REPEATED && (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED);
    e->tag_len = (uint8_t)otc_put_varint_n(e->tag, (uint64_t)f->id << 3 |
                                                       (e->packed ? 2 : wire_type(f->type)));
    e->hex_len = f->type == PROTOBUF_C_TYPE_BYTES ? (uint8_t)hex_id_length(f) : 0;
    e->omit_default =
        f->label == PROTOBUF_C_LABEL_NONE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      unsigned k = 0;
      while (k < noneofs && oneof_offsets[k] != f->quantifier_offset)
        k++;
      if (k == noneofs)
        oneof_offsets[noneofs++] = f->quantifier_offset;
      if (k >= 31)
        return NULL;
      e->oneof = (uint8_t)(k + 1);
    }
    add_name(t, e->camel, e->camel_len, i, false);
    if (e->camel_len != e->name_len)
      add_name(t, f->name, e->name_len, i, true);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && !(e->child = table_for(f->descriptor)))
      return NULL;
  }
  return t;
}

static void build_tables(void) {
  for (int s = 0; s < 3; s++) {
    const ProtobufCMessageDescriptor *d = request_descriptor((enum otc_signal)s);
    g_roots[s] = d ? table_for(d) : NULL;
  }
}

/* The table of a signal's request, or NULL. */
static const struct mtab *root_table(enum otc_signal s) {
  pthread_once(&g_tables_once, build_tables);
  return (unsigned)s < 3 ? g_roots[s] : NULL;
}

/* The field of t named by the key s[0..n), under its camelCase (*variant 0) or original (1) name;
 * NULL when unknown. */
/* memcmp(a, b, n) == 0 for the short keys of OTLP, eight bytes at a time. */
static bool same_text(const char *a, const char *b, size_t n) {
  uint64_t x, y;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    if (x != y)
      return false;
  }
  if (n >= 8) { /* the last eight bytes, overlapping what was compared */
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  for (; i < n; i++)
    if (a[i] != b[i])
      return false;
  return true;
}

static const struct fent *find_field(const struct mtab *t, unsigned hint, const char *s, size_t n,
                                     uint8_t *variant) {
  /* Keys usually come in field order, so the field after the last one found is tried first. */
  if (hint < t->n && t->f[hint].camel_len == n && same_text(t->f[hint].camel, s, n)) {
    *variant = 0;
    return &t->f[hint];
  }
  for (unsigned h = name_hash(s, n); t->slot[h]; h = (h + 1) % NAME_SLOTS) {
    const struct fent *e = &t->f[(t->slot[h] & 0x7f) - 1];
    bool original = t->slot[h] & 0x80;
    const char *name = original ? e->f->name : e->camel;
    if ((original ? e->name_len : e->camel_len) == n && same_text(name, s, n)) {
      *variant = original;
      return e;
    }
  }
  return NULL;
}

/* A message being written, or a repeated field's array. */
struct frame {
  const struct mtab *t;   /* message: its type */
  const struct fent *via; /* the field whose value this is; NULL for an element of an array */
  size_t tag_pos;         /* where the field's bytes begin */
  size_t start;           /* where the content begins, after the byte reserved for the length */
  size_t entry_base;      /* message: its first entry */
  size_t index;           /* array: elements begun so far */
  uint64_t seen[2];       /* message: fields given by camelCase [0] and original [1] name */
  int last_field;         /* message: the field recorded last, to tell whether keys are in order */
  int any_depth;          /* AnyValue levels around and including this message */
  uint8_t variant;        /* the name `via` was given by */
  bool array, has_len;
  bool dirty; /* message: keys out of order, repeated or null, so fields need sorting */
};

/* Where the bytes of one field of an open message are. */
struct entry {
  size_t start, end;
  uint8_t field, variant;
  bool null;
};

enum jkind { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_OBJECT, J_ARRAY };

struct jval {
  enum jkind kind;
  const char *s;
  size_t n;
  bool b;
};

struct j2p {
  const char *in;
  size_t in_len;
  yajl_handle h;
  uint8_t *buf;
  size_t len, cap, cap_bound;
  struct frame *fr;
  size_t nfr, fr_cap;
  struct entry *ent;
  size_t nent, ent_cap;
  uint8_t *scratch;
  size_t scratch_cap;
  const struct mtab *root;
  const struct fent *key; /* the field of the key just read; NULL for an unknown key */
  uint8_t key_variant;
  size_t skip; /* nesting inside a value that is ignored */
  int json_depth, max_depth;
  bool root_done;
  size_t top_end; /* the offset just after the top-level value, once it has been read */
  int rc;
  bool syntax; /* the error recorded is invalid JSON, which no other error replaces */
  char *err;
  size_t errlen;
};

enum leaf { LEAF_NONE, LEAF_FIELD, LEAF_INDEX };

static void path_add(char *p, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void path_add(char *p, size_t cap, size_t *n, const char *fmt, ...) {
  if (*n + 1 >= cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(p + *n, cap - *n, fmt, ap);
  va_end(ap);
  if (k > 0)
    *n = *n + (size_t)k < cap ? *n + (size_t)k : cap - 1;
}

/* The field path of the value being read ("resourceSpans[0].scopeSpans[1].spans[3].traceId"),
 * built from the open frames only when an error is reported. A path longer than the buffer is cut
 * short. */
static size_t build_path(const struct j2p *c, char *p, size_t cap, enum leaf leaf,
                         const struct fent *field) {
  size_t n = 0;
  p[0] = '\0';
  for (size_t k = 1; k < c->nfr; k++) {
    const struct frame *f = &c->fr[k], *up = &c->fr[k - 1];
    if (!f->array && up->array)
      path_add(p, cap, &n, "[%zu]", up->index - 1);
    else
      path_add(p, cap, &n, "%s%s", n ? "." : "", f->via->camel);
  }
  if (leaf == LEAF_FIELD && field)
    path_add(p, cap, &n, "%s%s", n ? "." : "", field->camel);
  else if (leaf == LEAF_INDEX && c->nfr > 0)
    path_add(p, cap, &n, "[%zu]", c->fr[c->nfr - 1].index - 1);
  return n;
}

/* Records the first error (an invalid-JSON error replaces any other), with the field path of
 * the value in front. Returns what a yajl callback returns: 1 goes on parsing, only to find out
 * whether the rest is valid JSON (that error would win); 0 stops. */
static int fail_at(struct j2p *c, int rc, enum leaf leaf, const struct fent *field, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
static int fail_at(struct j2p *c, int rc, enum leaf leaf, const struct fent *field, const char *fmt,
                   ...) {
  if (c->rc)
    return rc == OTC_ERR_NOMEM ? 0 : 1;
  c->rc = rc;
  if (c->err && c->errlen) {
    char msg[160], path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (build_path(c, path, sizeof path, leaf, field))
      snprintf(c->err, c->errlen, "%s: %s", path, msg);
    else
      snprintf(c->err, c->errlen, "%s", msg);
  }
  return rc == OTC_ERR_NOMEM ? 0 : 1;
}

#define FAIL_FIELD(c, fe, ...) fail_at(c, OTC_ERR_INVALID, LEAF_FIELD, fe, __VA_ARGS__)
#define FIELD_ONEOF_FAIL(c, fe) FAIL_FIELD(c, fe, "more than one field of a oneof is set")

/* Records an invalid value; returns false for the caller to return. */
static bool bad(struct j2p *c, enum leaf leaf, const struct fent *fe, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool bad(struct j2p *c, enum leaf leaf, const struct fent *fe, const char *fmt, ...) {
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fail_at(c, OTC_ERR_INVALID, leaf, fe, "%s", msg);
  return false;
}

/* Invalid JSON at the parser's current offset, or at `offset` when not SIZE_MAX. Returns 0. */
static int fail_syntax(struct j2p *c, size_t offset, const char *what) {
  if (c->syntax)
    return 0;
  if (offset == SIZE_MAX)
    offset = c->h ? yajl_get_bytes_consumed(c->h) : 0;
  if (offset > c->in_len)
    offset = c->in_len;
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; i++)
    if (c->in[i] == '\n')
      line++, line_start = i + 1;
  c->rc = OTC_ERR_INVALID;
  c->syntax = true;
  if (c->err && c->errlen)
    snprintf(c->err, c->errlen, "invalid JSON at line %d column %zu: %s", line,
             offset - line_start + 1, what);
  return 0;
}

static int fail_nomem(struct j2p *c) {
  if (!c->syntax) {
    c->rc = OTC_ERR_NOMEM;
    c->syntax = true; /* nothing replaces it either */
    if (c->err && c->errlen)
      snprintf(c->err, c->errlen, "out of memory");
  }
  return 0;
}

/* Makes room for n more output bytes. The capacity grows by half, but not past four times the
 * input, the most that OTLP JSON can expand to (an array of 8-byte numbers written "0,"), so that
 * the receiver's memory accounting holds. */
static bool reserve(struct j2p *c, size_t n) {
  if (c->cap - c->len >= n)
    return true;
  if (n > SIZE_MAX / 4 - c->len) {
    fail_nomem(c);
    return false;
  }
  size_t need = c->len + n, cap = c->cap + c->cap / 2;
  if (cap > c->cap_bound)
    cap = c->cap_bound;
  if (cap < need)
    cap = need;
  uint8_t *p = realloc(c->buf, cap);
  if (!p) {
    fail_nomem(c);
    return false;
  }
  c->buf = p;
  c->cap = cap;
  return true;
}

static bool grow(void **p, size_t *cap, size_t n, size_t elem, struct j2p *c) {
  if (n < *cap)
    return true;
  size_t ncap = *cap ? *cap * 2 : 16;
  void *q = ncap <= SIZE_MAX / elem ? realloc(*p, ncap * elem) : NULL;
  if (!q) {
    fail_nomem(c);
    return false;
  }
  *p = q;
  *cap = ncap;
  return true;
}

/* ---- scalar values ---- */

/* The number text s[0..n) as a double, exactly as strtod reads it. */
static double text_to_double(const char *s, size_t n) {
  /* Clinger's fast path: up to 15 significant digits and 22 decimals, the digits and the power
   * of ten are both exact doubles and one correctly rounded division gives strtod's result. */
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  size_t i = s[0] == '-', nd = 0, nfrac = 0;
  uint64_t m = 0;
  bool frac = false;
  for (; i < n && nd <= 15; i++) {
    if (s[i] == '.' && !frac) {
      frac = true;
      continue;
    }
    if (s[i] < '0' || s[i] > '9')
      break;
    m = m * 10 + (uint64_t)(s[i] - '0');
    nd += m != 0;
    nfrac += frac;
  }
  if (i == n && nd <= 15 && nfrac <= 22 && (m != 0 || s[0] != '-')) {
    double d = (double)m / pow10[nfrac];
    return s[0] == '-' ? -d : d;
  }
  char tmp[MAX_NUMBER_STRING + 1];
  if (n < sizeof tmp) {
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return strtod(tmp, NULL);
  }
  char *h = malloc(n + 1);
  if (!h)
    return NAN;
  memcpy(h, s, n);
  h[n] = '\0';
  double d = strtod(h, NULL);
  free(h);
  return d;
}

static bool is_integer_literal(const char *s, size_t n) {
  return !memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n);
}

/* What jansson refused as invalid JSON among valid JSON numbers, refused the same way: integers
 * beyond int64 and reals beyond double. Returns NULL or the reason. */
static const char *number_refused(const char *s, size_t n) {
  size_t i = 0;
  bool neg = n > 0 && s[0] == '-';
  if (neg)
    i++;
  size_t int_start = i;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++;
  size_t n_int = i - int_start;
  if (i == n) {
    if (n_int < 19)
      return NULL;
    if (n_int > 19 ||
        memcmp(s + int_start, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0)
      return neg ? "too big negative integer" : "too big integer";
    return NULL;
  }
  /* A real: its magnitude is below 10^(n_int + exponent), and only from 10^308 on can it
   * overflow a double, so strtod is needed only for rare inputs. */
  long exp = 0;
  const char *e = memchr(s, 'e', n);
  if (!e)
    e = memchr(s, 'E', n);
  if (e) {
    size_t j = (size_t)(e - s) + 1;
    bool eneg = j < n && s[j] == '-';
    if (j < n && (s[j] == '-' || s[j] == '+'))
      j++;
    for (; j < n; j++)
      if (exp < 1000000)
        exp = exp * 10 + (s[j] - '0');
    if (eneg)
      exp = -exp;
  }
  if ((long)n_int + exp <= 308)
    return NULL;
  return isinf(text_to_double(s, n)) ? "real number overflow" : NULL;
}

/* Reads an integer as sign and magnitude from a JSON number or numeric string. */
static bool get_integer(struct j2p *c, const struct jval *v, enum leaf leaf, const struct fent *fe,
                        bool *negative, uint64_t *mag) {
  struct number_text t;
  if (v->kind == J_NUMBER || v->kind == J_STRING) {
    if (!scan_number(v->s, v->n, &t)) {
      fail_at(c, OTC_ERR_INVALID, leaf, fe,
              v->kind == J_STRING ? "invalid integer string" : "not an integer");
      return false;
    }
    const char *why = number_to_integer(&t, negative, mag);
    if (why) {
      fail_at(c, OTC_ERR_INVALID, leaf, fe, "%s", why);
      return false;
    }
    return true;
  }
  fail_at(c, OTC_ERR_INVALID, leaf, fe, "expected an integer");
  return false;
}

static bool get_signed(struct j2p *c, const struct jval *v, enum leaf leaf, const struct fent *fe,
                       int64_t min, int64_t max, int64_t *out) {
  bool neg;
  uint64_t mag;
  if (!get_integer(c, v, leaf, fe, &neg, &mag))
    return false;
  if (neg && mag != 0) {
    if (mag - 1 > (uint64_t)(-(min + 1)))
      return bad(c, leaf, fe, "integer out of range");
    *out = -(int64_t)(mag - 1) - 1;
  } else {
    if (mag > (uint64_t)max)
      return bad(c, leaf, fe, "integer out of range");
    *out = (int64_t)mag;
  }
  return true;
}

static bool get_unsigned(struct j2p *c, const struct jval *v, enum leaf leaf, const struct fent *fe,
                         uint64_t max, uint64_t *out) {
  bool neg;
  uint64_t mag;
  if (!get_integer(c, v, leaf, fe, &neg, &mag))
    return false;
  if ((neg && mag != 0) || mag > max)
    return bad(c, leaf, fe, "integer out of range");
  *out = mag;
  return true;
}

static bool text_is(const struct jval *v, const char *lit) {
  size_t n = strlen(lit);
  return v->n == n && memcmp(v->s, lit, n) == 0;
}

static bool get_double(struct j2p *c, const struct jval *v, enum leaf leaf, const struct fent *fe,
                       double *out) {
  struct number_text t;
  if (v->kind == J_NUMBER) {
    if (is_integer_literal(v->s, v->n)) {
      /* As jansson did: an integer literal is an int64 (the parser checked the range), made a
       * double; so "-0" is 0. */
      bool neg;
      uint64_t mag;
      if (scan_number(v->s, v->n, &t) && !number_to_integer(&t, &neg, &mag)) {
        *out = neg ? (double)(-(int64_t)(mag - 1) - 1) : (double)(int64_t)mag;
        if (neg && mag == 0)
          *out = 0;
        return true;
      }
    }
    *out = text_to_double(v->s, v->n);
    return true;
  }
  if (v->kind != J_STRING)
    return bad(c, leaf, fe, "expected a number");
  if (text_is(v, "NaN"))
    *out = NAN;
  else if (text_is(v, "Infinity"))
    *out = INFINITY;
  else if (text_is(v, "-Infinity"))
    *out = -INFINITY;
  else if (scan_number(v->s, v->n, &t)) {
    *out = text_to_double(v->s, v->n);
    if (isinf(*out))
      return bad(c, leaf, fe, "number out of range");
  } else
    return bad(c, leaf, fe, "invalid number string");
  return true;
}

static bool get_enum(struct j2p *c, const struct jval *v, enum leaf leaf, const struct fent *fe,
                     int64_t *out) {
  if (v->kind == J_STRING) {
    const ProtobufCEnumDescriptor *e = fe->f->descriptor;
    for (unsigned i = 0; i < e->n_values; i++) {
      if (text_is(v, e->values[i].name)) {
        *out = e->values[i].value;
        return true;
      }
    }
    struct number_text t;
    if (!scan_number(v->s, v->n, &t))
      return bad(c, leaf, fe, "unknown enum value");
  } else if (v->kind != J_NUMBER) {
    return bad(c, leaf, fe, "expected an enum number or name");
  }
  /* Proto3 enums are open: any int32 is kept, known or not. */
  return get_signed(c, v, leaf, fe, INT32_MIN, INT32_MAX, out);
}

static int hex_value(unsigned char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

static int base64_value(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+' || ch == '-')
    return 62;
  if (ch == '/' || ch == '_')
    return 63;
  return -1;
}

/* Writes a bytes field (key when with_key) from its hex or base64 text; an empty value of a field
 * that omits defaults writes nothing. */
static bool put_bytes(struct j2p *c, const struct fent *fe, const struct jval *v, enum leaf leaf,
                      bool with_key) {
  if (v->kind != J_STRING)
    return bad(c, leaf, fe, "expected a string");
  const unsigned char *s = (const unsigned char *)v->s;
  size_t n = v->n, len;
  if (fe->hex_len) {
    for (size_t i = 0; i < n; i++)
      if (hex_value(s[i]) < 0)
        return bad(c, leaf, fe, "invalid hex");
    if (n != 0 && n != 2u * fe->hex_len)
      return bad(c, leaf, fe, "wrong length: %zu hex digits, want %u", n, 2u * fe->hex_len);
    len = n / 2;
  } else {
    /* Base64, standard or URL-safe, padded or not (as proto3 JSON parsers accept). */
    size_t m = n;
    while (m > 0 && n - m < 2 && s[m - 1] == '=')
      m--;
    if ((m != n && n % 4 != 0) || m % 4 == 1)
      return bad(c, leaf, fe, "invalid base64");
    for (size_t i = 0; i < m; i++)
      if (base64_value(s[i]) < 0)
        return bad(c, leaf, fe, "invalid base64");
    n = m;
    len = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
  }
  if (len == 0 && fe->omit_default)
    return true;
  if (!reserve(c, 5 + 10 + len))
    return false;
  uint8_t *o = c->buf + c->len;
  if (with_key) {
    memcpy(o, fe->tag, fe->tag_len);
    o += fe->tag_len;
  }
  o += otc_put_varint_n(o, len);
  if (fe->hex_len) {
    for (size_t i = 0; i < len; i++)
      o[i] = (uint8_t)(hex_value(s[2 * i]) << 4 | hex_value(s[2 * i + 1]));
  } else {
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
      acc = (acc << 6 | (uint32_t)base64_value(s[i])) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        o[k++] = (uint8_t)(acc >> bits);
      }
    }
  }
  c->len = (size_t)(o + len - c->buf);
  return true;
}

/* Writes one scalar value of field fe: a singular field (with its key, left out when it is a
 * proto3 default) or one element of a repeated one (with_key false when packed). Returns false on
 * error, recorded in c. */
static bool put_scalar(struct j2p *c, const struct fent *fe, const struct jval *v, enum leaf leaf,
                       bool with_key) {
  const ProtobufCFieldDescriptor *f = fe->f;
  bool omit = fe->omit_default && leaf == LEAF_FIELD;
  int64_t s = 0;
  uint64_t u = 0, bits = 0;
  double x = 0;
  enum { VARINT, FIXED32, FIXED64 } enc = VARINT;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_INT64:
    if (!get_signed(c, v, leaf, fe, f->type == PROTOBUF_C_TYPE_INT32 ? INT32_MIN : INT64_MIN,
                    f->type == PROTOBUF_C_TYPE_INT32 ? INT32_MAX : INT64_MAX, &s))
      return false;
    bits = (uint64_t)s; /* negative int32 values take ten bytes, sign-extended */
    break;
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SINT64:
    if (!get_signed(c, v, leaf, fe, f->type == PROTOBUF_C_TYPE_SINT32 ? INT32_MIN : INT64_MIN,
                    f->type == PROTOBUF_C_TYPE_SINT32 ? INT32_MAX : INT64_MAX, &s))
      return false;
    bits = ((uint64_t)s << 1) ^ (uint64_t)(s >> 63);
    break;
  case PROTOBUF_C_TYPE_SFIXED32:
    if (!get_signed(c, v, leaf, fe, INT32_MIN, INT32_MAX, &s))
      return false;
    bits = (uint32_t)(int32_t)s;
    enc = FIXED32;
    break;
  case PROTOBUF_C_TYPE_SFIXED64:
    if (!get_signed(c, v, leaf, fe, INT64_MIN, INT64_MAX, &s))
      return false;
    bits = (uint64_t)s;
    enc = FIXED64;
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if (!get_unsigned(c, v, leaf, fe, UINT32_MAX, &u))
      return false;
    bits = u;
    enc = f->type == PROTOBUF_C_TYPE_FIXED32 ? FIXED32 : VARINT;
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (!get_unsigned(c, v, leaf, fe, UINT64_MAX, &u))
      return false;
    bits = u;
    enc = f->type == PROTOBUF_C_TYPE_FIXED64 ? FIXED64 : VARINT;
    break;
  case PROTOBUF_C_TYPE_FLOAT: {
    if (!get_double(c, v, leaf, fe, &x))
      return false;
    if (isfinite(x) && fabs(x) > FLT_MAX)
      return bad(c, leaf, fe, "number out of range");
    float fl = (float)x;
    uint32_t b32;
    memcpy(&b32, &fl, sizeof b32);
    bits = b32;
    omit = omit && fl == 0; /* as protobuf-c: -0 is a default too */
    enc = FIXED32;
    break;
  }
  case PROTOBUF_C_TYPE_DOUBLE:
    if (!get_double(c, v, leaf, fe, &x))
      return false;
    memcpy(&bits, &x, sizeof bits);
    omit = omit && x == 0;
    enc = FIXED64;
    break;
  case PROTOBUF_C_TYPE_BOOL:
    if (v->kind != J_BOOL)
      return bad(c, leaf, fe, "expected true or false");
    bits = v->b;
    break;
  case PROTOBUF_C_TYPE_ENUM:
    if (!get_enum(c, v, leaf, fe, &s))
      return false;
    bits = (uint64_t)s;
    break;
  case PROTOBUF_C_TYPE_STRING:
    if (v->kind != J_STRING)
      return bad(c, leaf, fe, "expected a string");
    if (omit && v->n == 0)
      return true;
    if (!reserve(c, 5 + 10 + v->n))
      return false;
    if (with_key) {
      memcpy(c->buf + c->len, fe->tag, fe->tag_len);
      c->len += fe->tag_len;
    }
    c->len += otc_put_varint_n(c->buf + c->len, v->n);
    memcpy(c->buf + c->len, v->s, v->n);
    c->len += v->n;
    return true;
  case PROTOBUF_C_TYPE_BYTES:
    return put_bytes(c, fe, v, leaf, with_key);
  default:
    return bad(c, leaf, fe, "unsupported field type");
  }
  if (f->type != PROTOBUF_C_TYPE_FLOAT && f->type != PROTOBUF_C_TYPE_DOUBLE)
    omit = omit && bits == 0;
  if (omit)
    return true;
  if (!reserve(c, 5 + 10))
    return false;
  uint8_t *o = c->buf + c->len;
  if (with_key) {
    memcpy(o, fe->tag, fe->tag_len);
    o += fe->tag_len;
  }
  if (enc == VARINT) {
    o += otc_put_varint_n(o, bits);
  } else {
    int nb = enc == FIXED32 ? 4 : 8;
    for (int i = 0; i < nb; i++)
      *o++ = (uint8_t)(bits >> (8 * i));
  }
  c->len = (size_t)(o - c->buf);
  return true;
}

/* ---- structure ---- */

/* Records where field fe of message frame m was written (a null records its absence). A key
 * given again replaces what it gave before: the last one wins, as in protobuf's parsers. */
static int add_entry(struct j2p *c, struct frame *m, const struct fent *fe, uint8_t variant,
                     size_t start, bool null) {
  unsigned fi = (unsigned)(fe - m->t->f);
  uint64_t bit = (uint64_t)1 << fi;
  struct entry e = {
      .start = start, .end = c->len, .field = (uint8_t)fi, .variant = variant, .null = null};
  if (m->seen[variant] & bit) {
    for (size_t i = m->entry_base; i < c->nent; i++) {
      if (c->ent[i].field == fi && c->ent[i].variant == variant) {
        c->ent[i] = e;
        break;
      }
    }
    m->dirty = true;
    return 1;
  }
  if (!grow((void **)&c->ent, &c->ent_cap, c->nent, sizeof *c->ent, c))
    return 0;
  m->seen[variant] |= bit;
  if (null || (int)fi <= m->last_field)
    m->dirty = true;
  m->last_field = (int)fi;
  c->ent[c->nent++] = e;
  return 1;
}

static struct frame *push_frame(struct j2p *c) {
  if (!grow((void **)&c->fr, &c->fr_cap, c->nfr, sizeof *c->fr, c))
    return NULL;
  struct frame *f = &c->fr[c->nfr++];
  memset(f, 0, sizeof *f);
  f->last_field = -1;
  return f;
}

/* Opens a message: the root, or the value of field fe (an element of its array when the top
 * frame is an array). */
static int open_message(struct j2p *c, const struct fent *fe, uint8_t variant) {
  if (!fe) {
    struct frame *f = push_frame(c);
    if (!f)
      return 0;
    f->t = c->root;
    f->entry_base = c->nent;
    return 1;
  }
  const struct frame *up = &c->fr[c->nfr - 1];
  int depth = up->any_depth + (fe->child->any_value ? 1 : 0);
  if (depth > c->max_depth)
    return fail_at(c, OTC_ERR_INVALID, up->array ? LEAF_INDEX : LEAF_FIELD, fe,
                   "nesting deeper than %d", c->max_depth);
  size_t tag_pos = c->len;
  if (!reserve(c, fe->tag_len + 1u))
    return 0;
  memcpy(c->buf + c->len, fe->tag, fe->tag_len);
  c->len += fe->tag_len + 1u;
  bool element = up->array;
  struct frame *f = push_frame(c);
  if (!f)
    return 0;
  f->t = fe->child;
  f->via = element ? NULL : fe;
  f->variant = variant;
  f->tag_pos = tag_pos;
  f->start = c->len;
  f->entry_base = c->nent;
  f->any_depth = depth;
  f->has_len = true;
  return 1;
}

static int open_array(struct j2p *c, const struct fent *fe, uint8_t variant) {
  size_t tag_pos = c->len;
  if (fe->packed) {
    if (!reserve(c, fe->tag_len + 1u))
      return 0;
    memcpy(c->buf + c->len, fe->tag, fe->tag_len);
    c->len += fe->tag_len + 1u;
  }
  int depth = c->fr[c->nfr - 1].any_depth;
  struct frame *f = push_frame(c);
  if (!f)
    return 0;
  f->array = true;
  f->via = fe;
  f->variant = variant;
  f->tag_pos = tag_pos;
  f->start = c->len;
  f->any_depth = depth;
  return 1;
}

/* Writes the length of the content that begins at start into the byte reserved before it,
 * moving the content up when the length needs more than one byte. */
static bool finish_length(struct j2p *c, size_t start) {
  size_t n = c->len - start, k = otc_varint_size(n);
  if (k > 1) {
    if (!reserve(c, k - 1))
      return false;
    memmove(c->buf + start + k - 1, c->buf + start, n);
    c->len += k - 1;
  }
  otc_put_varint_n(c->buf + start - 1, n);
  return true;
}

/* Checks the fields of the message closing and puts them in field-number order, without the
 * ones given again later or given as null. */
static int order_fields(struct j2p *c, struct frame *m) {
  const struct mtab *t = m->t;
  /* No entry array yet (an empty message): offsetting a null pointer, even by 0, is undefined. */
  struct entry *e = c->ent ? c->ent + m->entry_base : NULL;
  size_t n = c->nent - m->entry_base;
  uint32_t oneofs = 0;
  if (!m->dirty) {
    for (size_t i = 0; i < n; i++) {
      const struct fent *fe = &t->f[e[i].field];
      if (fe->oneof) {
        if (oneofs & (1u << fe->oneof))
          return FIELD_ONEOF_FAIL(c, fe);
        oneofs |= 1u << fe->oneof;
      }
    }
    return 1;
  }
  int by[MAX_FIELDS][2];
  for (unsigned fi = 0; fi < t->n; fi++)
    by[fi][0] = by[fi][1] = -1;
  for (size_t i = 0; i < n; i++)
    by[e[i].field][e[i].variant] = (int)i;
  int sel[MAX_FIELDS];
  size_t total = 0;
  for (unsigned fi = 0; fi < t->n; fi++) {
    const struct fent *fe = &t->f[fi];
    int a = by[fi][0], b = by[fi][1];
    bool la = a >= 0 && !e[a].null, lb = b >= 0 && !e[b].null;
    if (la && lb)
      return FAIL_FIELD(c, fe, "set both as %s and as %s", fe->camel, fe->f->name);
    sel[fi] = la ? a : lb ? b : -1;
    if (sel[fi] < 0)
      continue;
    if (fe->oneof) {
      if (oneofs & (1u << fe->oneof))
        return FIELD_ONEOF_FAIL(c, fe);
      oneofs |= 1u << fe->oneof;
    }
    total += e[sel[fi]].end - e[sel[fi]].start;
  }
  if (total > c->scratch_cap) {
    uint8_t *p = realloc(c->scratch, total);
    if (!p)
      return fail_nomem(c);
    c->scratch = p;
    c->scratch_cap = total;
  }
  size_t o = 0;
  for (unsigned fi = 0; fi < t->n; fi++) {
    if (sel[fi] < 0)
      continue;
    const struct entry *s = &e[sel[fi]];
    /* A field left out as its default has an empty entry; with nothing else to move, scratch may
     * still be NULL, and offsetting a null pointer is undefined even by 0. */
    if (s->end == s->start)
      continue;
    memcpy(c->scratch + o, c->buf + s->start, s->end - s->start);
    o += s->end - s->start;
  }
  if (total)
    memcpy(c->buf + m->start, c->scratch, total);
  c->len = m->start + total;
  return 1;
}

static int close_message(struct j2p *c) {
  struct frame *m = &c->fr[c->nfr - 1];
  if (!order_fields(c, m) || c->rc)
    return c->rc == OTC_ERR_NOMEM ? 0 : 1;
  c->nent = m->entry_base;
  if (m->has_len && !finish_length(c, m->start))
    return 0;
  struct frame done = *m;
  c->nfr--;
  if (c->nfr == 0) {
    c->root_done = true;
    return 1;
  }
  struct frame *up = &c->fr[c->nfr - 1];
  if (up->array)
    return 1;
  return add_entry(c, up, done.via, done.variant, done.tag_pos, false);
}

static int close_array(struct j2p *c) {
  struct frame a = c->fr[c->nfr - 1];
  if (a.via->packed) {
    if (a.index == 0)
      c->len = a.tag_pos; /* protobuf-c writes nothing for an empty repeated field */
    else if (!finish_length(c, a.start))
      return 0;
  }
  c->nfr--;
  return add_entry(c, &c->fr[c->nfr - 1], a.via, a.variant, a.tag_pos, false);
}

static int on_value_in(struct j2p *c, const struct jval *v);

/* One JSON value, in whatever frame is open. */
static int on_value(struct j2p *c, const struct jval *v) {
  int r = on_value_in(c, v);
  if (c->json_depth == 0)
    c->top_end = yajl_get_bytes_consumed(c->h);
  return r;
}

static int on_value_in(struct j2p *c, const struct jval *v) {
  bool container = v->kind == J_OBJECT || v->kind == J_ARRAY;
  if (c->rc)
    return 1;
  if (c->skip) {
    c->skip += container;
    return 1;
  }
  if (c->nfr == 0) {
    if (v->kind != J_OBJECT)
      return fail_at(c, OTC_ERR_INVALID, LEAF_NONE, NULL, "the request is not a JSON object");
    return open_message(c, NULL, 0);
  }
  struct frame *top = &c->fr[c->nfr - 1];
  if (!top->array) {
    const struct fent *fe = c->key;
    uint8_t variant = c->key_variant;
    c->key = NULL;
    if (!fe) {
      c->skip = container; /* an unknown key: its value is ignored */
      return 1;
    }
    if (v->kind == J_NULL) /* null means absent in proto3 JSON */
      return add_entry(c, top, fe, variant, c->len, true);
    if (fe->f->label == PROTOBUF_C_LABEL_REPEATED) {
      if (v->kind != J_ARRAY)
        return FAIL_FIELD(c, fe, "expected an array");
      return open_array(c, fe, variant);
    }
    if (fe->f->type == PROTOBUF_C_TYPE_MESSAGE) {
      if (v->kind != J_OBJECT)
        return FAIL_FIELD(c, fe, "expected an object");
      return open_message(c, fe, variant);
    }
    size_t start = c->len;
    if (!put_scalar(c, fe, v, LEAF_FIELD, true))
      return c->rc == OTC_ERR_NOMEM ? 0 : 1;
    return add_entry(c, top, fe, variant, start, false);
  }
  const struct fent *fe = top->via;
  top->index++;
  if (v->kind == J_NULL)
    return fail_at(c, OTC_ERR_INVALID, LEAF_INDEX, NULL, "null in an array");
  if (fe->f->type == PROTOBUF_C_TYPE_MESSAGE) {
    if (v->kind != J_OBJECT)
      return fail_at(c, OTC_ERR_INVALID, LEAF_INDEX, NULL, "expected an object");
    return open_message(c, fe, 0);
  }
  if (!put_scalar(c, fe, v, LEAF_INDEX, !fe->packed))
    return c->rc == OTC_ERR_NOMEM ? 0 : 1;
  return 1;
}

/* The length of the valid UTF-8 sequence at s (n > 0 bytes available), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c0 = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c0 < 0x80)
    return 1;
  if (c0 >= 0xc2 && c0 <= 0xdf)
    len = 2;
  else if (c0 >= 0xe0 && c0 <= 0xef) {
    len = 3;
    if (c0 == 0xe0)
      lo = 0xa0;
    else if (c0 == 0xed)
      hi = 0x9f; /* no UTF-16 surrogates */
  } else if (c0 >= 0xf0 && c0 <= 0xf4) {
    len = 4;
    if (c0 == 0xf0)
      lo = 0x90;
    else if (c0 == 0xf4)
      hi = 0x8f;
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return len;
}

/* What jansson refused in strings: NUL characters (protobuf-c strings end at the first NUL) and
 * anything but valid UTF-8 (overlong forms, surrogates, beyond U+10FFFF), which yajl's own check
 * lets through. A string that yajl hands over in place (it had no escapes, and so no NUL: yajl
 * refuses control characters) and is all ASCII is done with one pass of ORs. */
static const char *text_refused(const struct j2p *c, const unsigned char *s, size_t n) {
  const uint64_t high = 0x8080808080808080ull, ones = 0x0101010101010101ull;
  size_t i = 0;
  uintptr_t p = (uintptr_t)s, in = (uintptr_t)c->in;
  if (p >= in && p - in <= c->in_len) {
    uint64_t acc = 0, w;
    for (; i + 8 <= n; i += 8) {
      memcpy(&w, s + i, sizeof w);
      acc |= w;
    }
    if (n >= 8) { /* the last eight bytes, overlapping what was read */
      memcpy(&w, s + n - 8, sizeof w);
      acc |= w;
    } else {
      for (; i < n; i++)
        acc |= s[i];
    }
    if (!(acc & high))
      return NULL;
    i = 0;
  }
  while (i < n) {
    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, sizeof w);
      if (((w | ((w - ones) & ~w)) & high) == 0) {
        i += 8;
        continue;
      }
    }
    if ((unsigned char)(s[i] - 1) < 0x7f) { /* ASCII but NUL, the common case */
      i++;
      continue;
    }
    if (s[i] == 0)
      return "\\u0000 is not allowed";
    size_t l = utf8_sequence(s + i, n - i);
    if (!l)
      return "invalid UTF-8 in a string";
    i += l;
  }
  return NULL;
}

static int cb_null(void *ctx) {
  struct jval v = {.kind = J_NULL};
  return on_value(ctx, &v);
}

static int cb_boolean(void *ctx, int b) {
  struct jval v = {.kind = J_BOOL, .b = b != 0};
  return on_value(ctx, &v);
}

static int cb_number(void *ctx, const char *s, size_t n) {
  struct j2p *c = ctx;
  const char *why = number_refused(s, n);
  if (why)
    return fail_syntax(c, SIZE_MAX, why);
  struct jval v = {.kind = J_NUMBER, .s = s, .n = n};
  return on_value(c, &v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n) {
  struct j2p *c = ctx;
  const char *why = text_refused(c, s, n);
  if (why)
    return fail_syntax(c, SIZE_MAX, why);
  struct jval v = {.kind = J_STRING, .s = (const char *)s, .n = n};
  return on_value(c, &v);
}

static int cb_start_map(void *ctx) {
  struct j2p *c = ctx;
  if (++c->json_depth > MAX_JSON_DEPTH)
    return fail_syntax(c, SIZE_MAX, "maximum parsing depth reached");
  struct jval v = {.kind = J_OBJECT};
  return on_value(c, &v);
}

static int cb_start_array(void *ctx) {
  struct j2p *c = ctx;
  if (++c->json_depth > MAX_JSON_DEPTH)
    return fail_syntax(c, SIZE_MAX, "maximum parsing depth reached");
  struct jval v = {.kind = J_ARRAY};
  return on_value(c, &v);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t n) {
  struct j2p *c = ctx;
  const char *why = text_refused(c, s, n);
  if (why)
    return fail_syntax(c, SIZE_MAX, why);
  if (c->rc || c->skip || n == 0)
    return 1;
  const struct frame *m = &c->fr[c->nfr - 1];
  c->key = find_field(m->t, (unsigned)(m->last_field + 1), (const char *)s, n, &c->key_variant);
  return 1;
}

static int cb_end_map(void *ctx) {
  struct j2p *c = ctx;
  if (--c->json_depth == 0)
    c->top_end = yajl_get_bytes_consumed(c->h);
  c->key = NULL;
  if (c->rc)
    return 1;
  if (c->skip) {
    c->skip--;
    return 1;
  }
  return close_message(c);
}

static int cb_end_array(void *ctx) {
  struct j2p *c = ctx;
  if (--c->json_depth == 0)
    c->top_end = yajl_get_bytes_consumed(c->h);
  if (c->rc)
    return 1;
  if (c->skip) {
    c->skip--;
    return 1;
  }
  return close_array(c);
}

static const yajl_callbacks j2p_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* Records yajl's own syntax error, its message without the trailing newline. */
static void yajl_failure(struct j2p *c) {
  unsigned char *e = yajl_get_error(c->h, 0, (const unsigned char *)c->in, c->in_len);
  char what[160];
  snprintf(what, sizeof what, "%s", e ? (const char *)e : "syntax error");
  size_t n = strlen(what);
  while (n > 0 && (what[n - 1] == '\n' || what[n - 1] == ' '))
    what[--n] = '\0';
  if (e)
    yajl_free_error(c->h, e);
  if (strstr(what, "memory"))
    fail_nomem(c);
  else
    fail_syntax(c, yajl_get_bytes_consumed(c->h), what);
}

int otc_json_to_proto(enum otc_signal s, const char *json, size_t len, int max_depth, uint8_t **out,
                      size_t *out_len, char *errbuf, size_t errlen) {
  struct j2p c = {.in = json ? json : "",
                  .in_len = len,
                  .max_depth = max_depth,
                  .err = errbuf,
                  .errlen = errlen};

  *out = NULL;
  *out_len = 0;
  if (errbuf && errlen)
    errbuf[0] = '\0';
  if (!request_descriptor(s)) {
    fail_at(&c, OTC_ERR_INVALID, LEAF_NONE, NULL, "unknown signal");
    goto cleanup;
  }
  c.root = root_table(s);
  if (!c.root) {
    fail_at(&c, OTC_ERR_INVALID, LEAF_NONE, NULL, "schema beyond the transcoder's bounds");
    goto cleanup;
  }
  if (!json && len) {
    fail_at(&c, OTC_ERR_INVALID, LEAF_NONE, NULL, "no input");
    goto cleanup;
  }
  /* The protobuf form of OTLP JSON is usually under half its size. */
  c.cap_bound = len <= (SIZE_MAX - 256) / 4 ? 4 * len + 256 : SIZE_MAX;
  c.cap = len / 2 + 256;
  c.buf = malloc(c.cap);
  c.h = yajl_alloc(&j2p_callbacks, NULL, &c);
  if (!c.buf || !c.h) {
    fail_nomem(&c);
    goto cleanup;
  }
  /* UTF-8 is checked by text_refused, more strictly than yajl would. */
  yajl_config(c.h, yajl_dont_validate_strings, 1);
  yajl_status st = yajl_parse(c.h, (const unsigned char *)c.in, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(c.h);
  if (st == yajl_status_error)
    yajl_failure(&c);
  /* yajl lets an unterminated string after the value pass as the end of the input. */
  for (size_t i = c.top_end; !c.syntax && c.top_end && i < len; i++)
    if (c.in[i] != ' ' && c.in[i] != '\t' && c.in[i] != '\n' && c.in[i] != '\r')
      fail_syntax(&c, i, "trailing garbage");
  if (!c.rc && !c.root_done)
    fail_syntax(&c, len, "no JSON value");
  if (c.rc)
    goto cleanup;
  /* The buffer is handed over, so a large unused tail is given back first. */
  if (c.cap - c.len > 4096) {
    uint8_t *p = realloc(c.buf, c.len ? c.len : 1);
    if (p)
      c.buf = p;
  }
  *out = c.buf;
  *out_len = c.len;
  c.buf = NULL;

cleanup:
  if (c.h)
    yajl_free(c.h);
  free(c.buf);
  free(c.fr);
  free(c.ent);
  free(c.scratch);
  return c.rc;
}

/* ---------------------------------------------------------------------------------------------
 * protobuf -> JSON, written with a string builder: the output format is fixed and small, and a
 * jansson tree would only add an allocation per value. */

struct sb {
  char *buf;
  size_t len, cap;
  bool oom;
};

static bool sb_reserve(struct sb *b, size_t n) {
  if (b->oom)
    return false;
  if (b->cap - b->len >= n)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) {
      b->oom = true;
      return false;
    }
    cap *= 2;
  }
  char *p = realloc(b->buf, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->buf = p;
  b->cap = cap;
  return true;
}

static void sb_putn(struct sb *b, const char *s, size_t n) {
  if (n && sb_reserve(b, n)) {
    memcpy(b->buf + b->len, s, n);
    b->len += n;
  }
}

static void sb_puts(struct sb *b, const char *s) {
  sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sb *b, char ch) {
  sb_putn(b, &ch, 1);
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Writes s as a JSON string. Protobuf-c does not check that strings are UTF-8; an invalid byte
 * becomes U+FFFD so that the output is always valid JSON (the alternative, failing the whole
 * request, would lose every other item with it). */
static void put_string(struct sb *b, const char *str) {
  const unsigned char *s = (const unsigned char *)(str ? str : "");
  size_t n = strlen((const char *)s), run = 0, i = 0;
  sb_putc(b, '"');
  while (i < n) {
    unsigned char ch = s[i];
    size_t l = ch >= 0x20 && ch != '"' && ch != '\\' ? utf8_sequence(s + i, n - i) : 0;
    if (l > 0) {
      i += l;
      run += l;
      continue;
    }
    sb_putn(b, (const char *)s + i - run, run);
    run = 0;
    switch (ch) {
    case '"':
      sb_puts(b, "\\\"");
      break;
    case '\\':
      sb_puts(b, "\\\\");
      break;
    case '\n':
      sb_puts(b, "\\n");
      break;
    case '\r':
      sb_puts(b, "\\r");
      break;
    case '\t':
      sb_puts(b, "\\t");
      break;
    case '\b':
      sb_puts(b, "\\b");
      break;
    case '\f':
      sb_puts(b, "\\f");
      break;
    default:
      if (ch < 0x20)
        sb_printf(b, "\\u%04x", ch);
      else
        sb_puts(b, "\xef\xbf\xbd");
    }
    i++;
  }
  sb_putn(b, (const char *)s + i - run, run);
  sb_putc(b, '"');
}

/* Writes the shortest decimal form that reads back as the same double (or float). */
static void put_double(struct sb *b, double x, bool is_float) {
  if (isnan(x)) {
    sb_puts(b, "\"NaN\"");
    return;
  }
  if (isinf(x)) {
    sb_puts(b, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  if (x == 0) {
    /* "-0" would read back as the integer 0; "-0.0" keeps the sign. */
    sb_puts(b, signbit(x) ? "-0.0" : "0");
    return;
  }
  char tmp[40];
  int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
  for (int prec = lo; prec <= hi; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, x);
    if (prec == hi || (is_float ? strtof(tmp, NULL) == (float)x : strtod(tmp, NULL) == x))
      break;
  }
  sb_puts(b, tmp);
}

static void put_hex(struct sb *b, const ProtobufCBinaryData *d) {
  static const char digits[] = "0123456789abcdef";
  sb_putc(b, '"');
  if (sb_reserve(b, 2 * d->len)) {
    for (size_t i = 0; i < d->len; i++) {
      b->buf[b->len++] = digits[d->data[i] >> 4];
      b->buf[b->len++] = digits[d->data[i] & 15];
    }
  }
  sb_putc(b, '"');
}

static void put_base64(struct sb *b, const ProtobufCBinaryData *d) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  sb_putc(b, '"');
  if (d->len <= SIZE_MAX / 2 && sb_reserve(b, (d->len + 2) / 3 * 4)) {
    size_t i = 0;
    char *o = b->buf + b->len;
    for (; i + 3 <= d->len; i += 3) {
      uint32_t v = (uint32_t)d->data[i] << 16 | (uint32_t)d->data[i + 1] << 8 | d->data[i + 2];
      *o++ = alphabet[v >> 18];
      *o++ = alphabet[(v >> 12) & 63];
      *o++ = alphabet[(v >> 6) & 63];
      *o++ = alphabet[v & 63];
    }
    if (i < d->len) {
      uint32_t v = (uint32_t)d->data[i] << 16;
      if (i + 1 < d->len)
        v |= (uint32_t)d->data[i + 1] << 8;
      *o++ = alphabet[v >> 18];
      *o++ = alphabet[(v >> 12) & 63];
      *o++ = i + 1 < d->len ? alphabet[(v >> 6) & 63] : '=';
      *o++ = '=';
    }
    b->len = (size_t)(o - b->buf);
  }
  sb_putc(b, '"');
}

/* Whether a proto3 singular field holds its default, i.e. whether protobuf-c leaves it out when
 * packing (the same tests as its own, so that JSON and protobuf agree on what is present). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *member) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)member == 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return *(const uint64_t *)member == 0;
  case PROTOBUF_C_TYPE_FLOAT:
    return *(const float *)member == 0;
  case PROTOBUF_C_TYPE_DOUBLE:
    return *(const double *)member == 0;
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)member;
    return !s || !*s;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *d = member;
    return !d->data || d->len == 0;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return *(const ProtobufCMessage *const *)member == NULL;
  default: /* the 32-bit integers and enums */
    return *(const uint32_t *)member == 0;
  }
}

static int p2j_message(struct sb *b, const ProtobufCMessage *m, int depth);

static int p2j_value(struct sb *b, const ProtobufCFieldDescriptor *f, const void *member,
                     int depth) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    sb_printf(b, "%" PRId32, *(const int32_t *)member);
    break;
  case PROTOBUF_C_TYPE_ENUM:
    sb_printf(b, "%d", *(const int *)member);
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    sb_printf(b, "%" PRIu32, *(const uint32_t *)member);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    sb_printf(b, "\"%" PRId64 "\"", *(const int64_t *)member);
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    sb_printf(b, "\"%" PRIu64 "\"", *(const uint64_t *)member);
    break;
  case PROTOBUF_C_TYPE_FLOAT:
    put_double(b, *(const float *)member, true);
    break;
  case PROTOBUF_C_TYPE_DOUBLE:
    put_double(b, *(const double *)member, false);
    break;
  case PROTOBUF_C_TYPE_BOOL:
    sb_puts(b, *(const protobuf_c_boolean *)member ? "true" : "false");
    break;
  case PROTOBUF_C_TYPE_STRING:
    put_string(b, *(const char *const *)member);
    break;
  case PROTOBUF_C_TYPE_BYTES:
    if (hex_id_length(f))
      put_hex(b, member);
    else
      put_base64(b, member);
    break;
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
    if (!sub) {
      sb_puts(b, "{}");
      break;
    }
    return p2j_message(b, sub, depth);
  }
  }
  return b->oom ? OTC_ERR_NOMEM : 0;
}

static void put_key(struct sb *b, const ProtobufCFieldDescriptor *f, bool *first) {
  char camel[MAX_FIELD_NAME];
  camel_name(f->name, camel, sizeof camel);
  if (!*first)
    sb_putc(b, ',');
  *first = false;
  sb_putc(b, '"');
  sb_puts(b, camel);
  sb_puts(b, "\":");
}

/* Writes m as a JSON object; depth counts the AnyValue levels around m. */
static int p2j_message(struct sb *b, const ProtobufCMessage *m, int depth) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  bool first = true;
  if (d == &opentelemetry__proto__common__v1__any_value__descriptor &&
      ++depth > P2J_MAX_ANYVALUE_DEPTH)
    return OTC_ERR_INVALID;
  sb_putc(b, '{');
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *member = base + f->offset;
    int rc;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset), esz = element_size(f->type);
      const char *arr = *(const char *const *)member;
      if (n == 0)
        continue;
      put_key(b, f, &first);
      sb_putc(b, '[');
      for (size_t j = 0; j < n; j++) {
        if (j)
          sb_putc(b, ',');
        if ((rc = p2j_value(b, f, arr + j * esz, depth)) != 0)
          return rc;
      }
      sb_putc(b, ']');
      continue;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
        continue;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
      if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
        continue;
    } else if (is_default(f, member)) {
      continue;
    }
    put_key(b, f, &first);
    if ((rc = p2j_value(b, f, member, depth)) != 0)
      return rc;
  }
  sb_putc(b, '}');
  return b->oom ? OTC_ERR_NOMEM : 0;
}

int otc_proto_to_json(enum otc_signal s, const uint8_t *buf, size_t len, char **out,
                      size_t *out_len) {
  static const uint8_t empty[1];
  int rc = OTC_ERR_INVALID;
  ProtobufCMessage *m = NULL;
  struct sb b = {0};
  const ProtobufCMessageDescriptor *d = request_descriptor(s);

  *out = NULL;
  if (out_len)
    *out_len = 0;
  if (!d || (!buf && len))
    goto cleanup;
  m = protobuf_c_message_unpack(d, NULL, len, buf ? buf : empty);
  if (!m)
    goto cleanup; /* protobuf-c does not tell bad input from a failed allocation */
  rc = p2j_message(&b, m, 0);
  if (rc)
    goto cleanup;
  sb_putc(&b, '\0');
  if (b.oom) {
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  *out = b.buf;
  if (out_len)
    *out_len = b.len - 1;
  b.buf = NULL;

cleanup:
  free(b.buf);
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}
