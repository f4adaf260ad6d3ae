/* OTLP JSON <-> protobuf. Both directions walk protobuf-c's message descriptors instead of
 * hand-written code per message: the descriptors already know every field's number, type, label,
 * offset and oneof, so the JSON mapping needs only its own rules (camelCase names, hex ids,
 * 64-bit integers as strings, enums as integers, NaN/Infinity as strings). jansson parses the
 * input; the request is built as protobuf-c structs in an arena and packed by protobuf-c. */
#include "core/otlp_json.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* The protobuf-to-JSON direction does not take a depth limit: its input passed otc_wire_scan. This
 * bound only keeps our own recursion finite should that promise be broken. Each AnyValue level is
 * three JSON levels ({"arrayValue":{"values":[...]}}), so nothing deeper could be parsed back by
 * jansson anyway. */
#define P2J_MAX_ANYVALUE_DEPTH (JSON_PARSER_MAX_DEPTH / 3)

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
 * Arena: the request's structs, arrays and decoded bytes live until it is packed, then go in one
 * call, so a bump allocator over a chain of malloc'd blocks is all that is needed. */

#define ARENA_BLOCK_SIZE 65536

struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  max_align_t data[];
};

struct arena {
  struct arena_block *head;
};

/* Returns zeroed memory owned by the arena, or NULL when out of memory. */
static void *arena_alloc(struct arena *a, size_t size) {
  const size_t align = _Alignof(max_align_t);
  if (size > SIZE_MAX / 2)
    return NULL;
  size = (size + align - 1) & ~(align - 1);
  struct arena_block *b = a->head;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
    b = malloc(sizeof *b + cap);
    if (!b)
      return NULL;
    b->used = 0;
    b->cap = cap;
    /* A large allocation gets a block of its own behind the current one, so that the space left
     * in the current block is still used by the small allocations that follow. */
    if (a->head && cap > ARENA_BLOCK_SIZE) {
      b->next = a->head->next;
      a->head->next = b;
    } else {
      b->next = a->head;
      a->head = b;
    }
  }
  void *p = (unsigned char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

static void arena_free(struct arena *a) {
  struct arena_block *b = a->head;
  while (b) {
    struct arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
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
 * JSON -> protobuf. */

struct j2p {
  struct arena arena;
  int max_depth;
  int rc;
  char *err;
  size_t errlen;
  char path[256]; /* the field path of the value being read, for error messages */
  size_t plen;
};

/* Records the first error with the current field path in front; returns 0 for the caller to
 * return. */
static int fail(struct j2p *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct j2p *c, int rc, const char *fmt, ...) {
  if (c->rc)
    return 0;
  c->rc = rc;
  if (c->err && c->errlen) {
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->plen)
      snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    else
      snprintf(c->err, c->errlen, "%s", msg);
  }
  return 0;
}

/* Appends to the path; returns the length to restore with path_pop. A path longer than the buffer
 * is cut short, which only shortens error messages. */
static size_t path_push(struct j2p *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct j2p *c, const char *fmt, ...) {
  size_t old = c->plen;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(c->path + c->plen, sizeof c->path - c->plen, fmt, ap);
  va_end(ap);
  if (n > 0)
    c->plen = c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n : sizeof c->path - 1;
  return old;
}

static void path_pop(struct j2p *c, size_t old) {
  c->plen = old;
  c->path[old] = '\0';
}

/* Reads an integer as sign and magnitude from a JSON number or numeric string. */
static int get_integer(struct j2p *c, const json_t *v, bool *negative, uint64_t *mag) {
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    *negative = i < 0;
    *mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    return 1;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d != floor(d))
      return fail(c, OTC_ERR_INVALID, "not an integer");
    if (fabs(d) >= 18446744073709551616.0)
      return fail(c, OTC_ERR_INVALID, "integer out of range");
    *negative = d < 0;
    *mag = (uint64_t)fabs(d);
    return 1;
  }
  if (json_is_string(v)) {
    struct number_text t;
    if (!scan_number(json_string_value(v), json_string_length(v), &t))
      return fail(c, OTC_ERR_INVALID, "invalid integer string");
    const char *why = number_to_integer(&t, negative, mag);
    if (why)
      return fail(c, OTC_ERR_INVALID, "%s", why);
    return 1;
  }
  return fail(c, OTC_ERR_INVALID, "expected an integer");
}

static int get_signed(struct j2p *c, const json_t *v, int64_t min, int64_t max, int64_t *out) {
  bool neg;
  uint64_t mag;
  if (!get_integer(c, v, &neg, &mag))
    return 0;
  if (neg && mag != 0) {
    if (mag - 1 > (uint64_t)(-(min + 1)))
      return fail(c, OTC_ERR_INVALID, "integer out of range");
    *out = -(int64_t)(mag - 1) - 1;
  } else {
    if (mag > (uint64_t)max)
      return fail(c, OTC_ERR_INVALID, "integer out of range");
    *out = (int64_t)mag;
  }
  return 1;
}

static int get_unsigned(struct j2p *c, const json_t *v, uint64_t max, uint64_t *out) {
  bool neg;
  uint64_t mag;
  if (!get_integer(c, v, &neg, &mag))
    return 0;
  if ((neg && mag != 0) || mag > max)
    return fail(c, OTC_ERR_INVALID, "integer out of range");
  *out = mag;
  return 1;
}

static int get_double(struct j2p *c, const json_t *v, double *out) {
  if (json_is_integer(v)) {
    *out = (double)json_integer_value(v);
    return 1;
  }
  if (json_is_real(v)) {
    *out = json_real_value(v);
    return 1;
  }
  if (!json_is_string(v))
    return fail(c, OTC_ERR_INVALID, "expected a number");
  const char *s = json_string_value(v);
  struct number_text t;
  if (strcmp(s, "NaN") == 0)
    *out = NAN;
  else if (strcmp(s, "Infinity") == 0)
    *out = INFINITY;
  else if (strcmp(s, "-Infinity") == 0)
    *out = -INFINITY;
  else if (scan_number(s, json_string_length(v), &t)) {
    /* The grammar was checked, so strtod reads the whole string; jansson strings end in NUL. */
    *out = strtod(s, NULL);
    if (isinf(*out))
      return fail(c, OTC_ERR_INVALID, "number out of range");
  } else
    return fail(c, OTC_ERR_INVALID, "invalid number string");
  return 1;
}

static int get_enum(struct j2p *c, const ProtobufCFieldDescriptor *f, const json_t *v, int *out) {
  if (json_is_string(v)) {
    const ProtobufCEnumDescriptor *e = f->descriptor;
    const char *s = json_string_value(v);
    for (unsigned i = 0; i < e->n_values; i++) {
      if (strcmp(e->values[i].name, s) == 0) {
        *out = e->values[i].value;
        return 1;
      }
    }
    struct number_text t;
    if (!scan_number(s, json_string_length(v), &t))
      return fail(c, OTC_ERR_INVALID, "unknown enum value");
  } else if (!json_is_number(v)) {
    return fail(c, OTC_ERR_INVALID, "expected an enum number or name");
  }
  /* Proto3 enums are open: any int32 is kept, known or not. */
  int64_t x;
  if (!get_signed(c, v, INT32_MIN, INT32_MAX, &x))
    return 0;
  *out = (int)x;
  return 1;
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

static int get_bytes(struct j2p *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                     ProtobufCBinaryData *out) {
  if (!json_is_string(v))
    return fail(c, OTC_ERR_INVALID, "expected a string");
  const unsigned char *s = (const unsigned char *)json_string_value(v);
  size_t n = json_string_length(v);
  /* protobuf-c packs a bytes field whenever data is not NULL, so empty stays NULL to be omitted
   * like any proto3 default. */
  out->data = NULL;
  out->len = 0;
  if (n == 0)
    return 1;
  size_t id_len = hex_id_length(f);
  if (id_len) {
    for (size_t i = 0; i < n; i++)
      if (hex_value(s[i]) < 0)
        return fail(c, OTC_ERR_INVALID, "invalid hex");
    if (n != 2 * id_len)
      return fail(c, OTC_ERR_INVALID, "wrong length: %zu hex digits, want %zu", n, 2 * id_len);
    out->data = arena_alloc(&c->arena, id_len);
    if (!out->data)
      return fail(c, OTC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < id_len; i++)
      out->data[i] = (uint8_t)(hex_value(s[2 * i]) << 4 | hex_value(s[2 * i + 1]));
    out->len = id_len;
    return 1;
  }
  /* Base64, standard or URL-safe, padded or not (as proto3 JSON parsers accept). */
  size_t m = n;
  while (m > 0 && n - m < 2 && s[m - 1] == '=')
    m--;
  if ((m != n && n % 4 != 0) || m % 4 == 1)
    return fail(c, OTC_ERR_INVALID, "invalid base64");
  size_t len = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
  uint8_t *d = arena_alloc(&c->arena, len ? len : 1);
  if (!d)
    return fail(c, OTC_ERR_NOMEM, "out of memory");
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < m; i++) {
    int x = base64_value(s[i]);
    if (x < 0)
      return fail(c, OTC_ERR_INVALID, "invalid base64");
    acc = (acc << 6 | (uint32_t)x) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      d[o++] = (uint8_t)(acc >> bits);
    }
  }
  out->data = len ? d : NULL;
  out->len = o;
  return 1;
}

static ProtobufCMessage *j2p_message(struct j2p *c, const ProtobufCMessageDescriptor *d,
                                     const json_t *v, int depth);

/* Reads one value (a singular field or one element of a repeated one) into dst. */
static int j2p_value(struct j2p *c, const ProtobufCFieldDescriptor *f, const json_t *v, void *dst,
                     int depth) {
  int64_t s;
  uint64_t u;
  double x;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if (!get_signed(c, v, INT32_MIN, INT32_MAX, &s))
      return 0;
    *(int32_t *)dst = (int32_t)s;
    return 1;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if (!get_signed(c, v, INT64_MIN, INT64_MAX, &s))
      return 0;
    *(int64_t *)dst = s;
    return 1;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if (!get_unsigned(c, v, UINT32_MAX, &u))
      return 0;
    *(uint32_t *)dst = (uint32_t)u;
    return 1;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (!get_unsigned(c, v, UINT64_MAX, &u))
      return 0;
    *(uint64_t *)dst = u;
    return 1;
  case PROTOBUF_C_TYPE_FLOAT:
    if (!get_double(c, v, &x))
      return 0;
    if (isfinite(x) && fabs(x) > FLT_MAX)
      return fail(c, OTC_ERR_INVALID, "number out of range");
    *(float *)dst = (float)x;
    return 1;
  case PROTOBUF_C_TYPE_DOUBLE:
    if (!get_double(c, v, &x))
      return 0;
    *(double *)dst = x;
    return 1;
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(v))
      return fail(c, OTC_ERR_INVALID, "expected true or false");
    *(protobuf_c_boolean *)dst = json_is_true(v);
    return 1;
  case PROTOBUF_C_TYPE_ENUM:
    return get_enum(c, f, v, (int *)dst);
  case PROTOBUF_C_TYPE_STRING:
    if (!json_is_string(v))
      return fail(c, OTC_ERR_INVALID, "expected a string");
    /* The JSON tree outlives the packing, and packing only reads, so the string is not copied. */
    *(char **)dst = (char *)json_string_value(v);
    return 1;
  case PROTOBUF_C_TYPE_BYTES:
    return get_bytes(c, f, v, (ProtobufCBinaryData *)dst);
  case PROTOBUF_C_TYPE_MESSAGE: {
    ProtobufCMessage *sub = j2p_message(c, f->descriptor, v, depth);
    if (!sub)
      return 0;
    *(ProtobufCMessage **)dst = sub;
    return 1;
  }
  }
  return fail(c, OTC_ERR_INVALID, "unsupported field type");
}

static int j2p_field(struct j2p *c, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                     const json_t *v, int depth) {
  char *base = (char *)m;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    if (!json_is_array(v))
      return fail(c, OTC_ERR_INVALID, "expected an array");
    size_t n = json_array_size(v), esz = element_size(f->type);
    char *arr = NULL;
    if (n > 0) {
      if (n > SIZE_MAX / esz || !(arr = arena_alloc(&c->arena, n * esz)))
        return fail(c, OTC_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
      const json_t *e = json_array_get(v, i);
      size_t mark = path_push(c, "[%zu]", i);
      int ok = json_is_null(e) ? fail(c, OTC_ERR_INVALID, "null in an array")
                               : j2p_value(c, f, e, arr + i * esz, depth);
      path_pop(c, mark);
      if (!ok)
        return 0;
    }
    *(size_t *)(base + f->quantifier_offset) = n;
    *(void **)(base + f->offset) = arr;
    return 1;
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
    if (*which != 0 && *which != f->id)
      return fail(c, OTC_ERR_INVALID, "more than one field of a oneof is set");
    if (!j2p_value(c, f, v, base + f->offset, depth))
      return 0;
    *which = f->id;
    return 1;
  }
  if (!j2p_value(c, f, v, base + f->offset, depth))
    return 0;
  /* Proto2 and proto3 "optional" scalars carry a has_ flag (strings and messages use NULL). */
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
      f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
  return 1;
}

/* Builds a message of type d from the JSON object v; NULL on error (c->rc set). depth counts the
 * AnyValue levels around v. */
static ProtobufCMessage *j2p_message(struct j2p *c, const ProtobufCMessageDescriptor *d,
                                     const json_t *v, int depth) {
  if (d == &opentelemetry__proto__common__v1__any_value__descriptor && ++depth > c->max_depth) {
    fail(c, OTC_ERR_INVALID, "nesting deeper than %d", c->max_depth);
    return NULL;
  }
  if (!json_is_object(v)) {
    fail(c, OTC_ERR_INVALID, "expected an object");
    return NULL;
  }
  ProtobufCMessage *m = arena_alloc(&c->arena, d->sizeof_message);
  if (!m) {
    fail(c, OTC_ERR_NOMEM, "out of memory");
    return NULL;
  }
  d->message_init(m);
  /* Walking the schema's fields and looking each up (rather than walking the object's keys)
   * ignores unknown keys for free and finds a field under either of its two names. */
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    char camel[MAX_FIELD_NAME];
    camel_name(f->name, camel, sizeof camel);
    const json_t *fv = json_object_get(v, camel);
    if (strcmp(camel, f->name) != 0) {
      const json_t *sv = json_object_get(v, f->name);
      if (sv && !json_is_null(sv)) {
        if (fv && !json_is_null(fv)) {
          size_t mark = path_push(c, "%s%s", c->plen ? "." : "", camel);
          fail(c, OTC_ERR_INVALID, "set both as %s and as %s", camel, f->name);
          path_pop(c, mark);
          return NULL;
        }
        fv = sv;
      }
    }
    if (!fv || json_is_null(fv))
      continue; /* null means absent in proto3 JSON */
    size_t mark = path_push(c, "%s%s", c->plen ? "." : "", camel);
    int ok = j2p_field(c, f, m, fv, depth);
    path_pop(c, mark);
    if (!ok)
      return NULL;
  }
  return m;
}

int otc_json_to_proto(enum otc_signal s, const char *json, size_t len, int max_depth, uint8_t **out,
                      size_t *out_len, char *errbuf, size_t errlen) {
  int rc = OTC_ERR_INVALID;
  json_t *root = NULL;
  uint8_t *buf = NULL;
  struct j2p c = {.max_depth = max_depth, .err = errbuf, .errlen = errlen};
  const ProtobufCMessageDescriptor *d = request_descriptor(s);

  *out = NULL;
  *out_len = 0;
  if (errbuf && errlen)
    errbuf[0] = '\0';
  if (!d) {
    fail(&c, OTC_ERR_INVALID, "unknown signal");
    goto cleanup;
  }
  if (!json && len) {
    fail(&c, OTC_ERR_INVALID, "no input");
    goto cleanup;
  }
  json_error_t jerr;
  /* Default flags: duplicate keys are accepted and the last one wins, as in protobuf's parsers;
   * NUL characters in strings are refused, since protobuf-c strings end at the first NUL. */
  root = json_loadb(json ? json : "", len, JSON_DECODE_ANY, &jerr);
  if (!root) {
    fail(&c, json_error_code(&jerr) == json_error_out_of_memory ? OTC_ERR_NOMEM : OTC_ERR_INVALID,
         "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    goto cleanup;
  }
  if (!json_is_object(root)) {
    fail(&c, OTC_ERR_INVALID, "the request is not a JSON object");
    goto cleanup;
  }
  ProtobufCMessage *m = j2p_message(&c, d, root, 0);
  if (!m)
    goto cleanup;
  size_t n = protobuf_c_message_get_packed_size(m);
  buf = malloc(n ? n : 1);
  if (!buf) {
    fail(&c, OTC_ERR_NOMEM, "out of memory");
    goto cleanup;
  }
  protobuf_c_message_pack(m, buf);
  *out = buf;
  *out_len = n;
  buf = NULL;
  rc = 0;

cleanup:
  if (c.rc)
    rc = c.rc;
  free(buf);
  arena_free(&c.arena);
  json_decref(root);
  return rc;
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
