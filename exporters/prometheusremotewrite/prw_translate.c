/* OTLP metrics → Prometheus Remote-Write 1.0 (see prw_translate.h for the rules).
 *
 * Reading: gauges and sums, nearly all points, are read straight from the wire bytes; the rest is
 * decoded one message at a time (see "reading the wire" below).
 *
 * Memory: everything the translation builds (the messages it decodes, label names, series with
 * their packed labels, native histograms) lives in one arena, so that the whole batch is freed (or
 * kept for the next batch, with a scratch) in one call. Per data point scratch (attribute strings,
 * label arrays) goes into a second arena that is rewound after every point. Both are charged to the
 * memory accounting while they live. */
#include "prometheusremotewrite/prw_translate.h"

#include <endian.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/numfmt.h"
#include "common/pb_read.h"
#include "common/pbfast.h"
#include "core/errors.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
#include "core/pb_varint.h"

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prometheus/remote.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpHistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets ExpBuckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SummaryDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar Exemplar;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ExpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__Summary Summary;

#define TEMPORALITY_DELTA                                                                          \
  OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMPORALITY_CUMULATIVE                                                                     \
  OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define NO_RECORDED_VALUE 1u

/* Prometheus's stale marker (model/value.StaleNaN). */
#define STALE_NAN_BITS 0x7ff0000000000002ULL
/* The zero threshold Prometheus assumes when OTLP leaves it 0. */
#define DEFAULT_ZERO_THRESHOLD 1e-128
/* Exemplar labels beyond this many runes drop the filtered attributes (OpenMetrics' limit). */
#define MAX_EXEMPLAR_RUNES 128
/* 'f' formatting of the largest double needs 309 digits, of the smallest 326 characters. */
#define FLOAT_BUF 400

/* Label priorities when names meet: a higher one wins. External labels only fill a name nobody
 * else set; job and instance replace attributes; scope labels replace both; the series' own labels
 * (__name__, le, quantile) replace everything. This is the order in which the reference writes its
 * label map. */
enum { PRIO_EXTERNAL = 0, PRIO_ATTR = 1, PRIO_JOB = 2, PRIO_SCOPE = 3, PRIO_SERIES = 4 };

static double stale_nan(void) {
  uint64_t bits = STALE_NAN_BITS;
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static int64_t to_ms(uint64_t ns) {
  return (int64_t)(ns / 1000000u);
}

/* --- arena --- */

#define ARENA_FIRST (64 * 1024)
#define ARENA_MAX (4 * 1024 * 1024)

struct chunk {
  struct chunk *next;
  size_t cap, used, charged;
  alignas(16) unsigned char data[];
};

struct arena {
  struct chunk *head;
  size_t next_size;
  bool failed;
  struct chunk **spare; /* chunks kept from earlier translations (a scratch's), or NULL */
};

struct otc_prw_scratch {
  struct chunk *spare; /* charged while kept */
};

static struct chunk *chunk_new(struct arena *a, size_t cap) {
  if (a->spare) {
    /* The smallest kept chunk that is big enough: its pages are already mapped. */
    struct chunk **best = NULL;
    for (struct chunk **pp = a->spare; *pp; pp = &(*pp)->next)
      if ((*pp)->cap >= cap && (!best || (*pp)->cap < (*best)->cap))
        best = pp;
    if (best) {
      struct chunk *c = *best;
      *best = c->next;
      c->next = NULL;
      c->used = 0;
      return c;
    }
  }
  struct chunk *c = malloc(sizeof *c + cap);
  if (!c) {
    a->failed = true;
    return NULL;
  }
  c->cap = cap;
  c->used = 0;
  c->charged = sizeof *c + cap;
  c->next = NULL;
  otc_mem_charge(c->charged);
  return c;
}

static void *arena_alloc(struct arena *a, size_t n) {
  if (n > SIZE_MAX / 4) {
    a->failed = true;
    return NULL;
  }
  n = (n + 15) & ~(size_t)15;
  if (n == 0)
    n = 16;
  struct chunk *c = a->head;
  if (c && c->cap - c->used >= n) {
    void *p = c->data + c->used;
    c->used += n;
    return p;
  }
  size_t std = a->next_size ? a->next_size : ARENA_FIRST;
  if (n > std / 4) {
    /* A large block gets a chunk of its own, linked behind the head so that the head's free space
     * stays in use. */
    struct chunk *big = chunk_new(a, n);
    if (!big)
      return NULL;
    big->used = n;
    if (c) {
      big->next = c->next;
      c->next = big;
    } else {
      a->head = big;
    }
    return big->data;
  }
  c = chunk_new(a, std);
  if (!c)
    return NULL;
  c->next = a->head;
  a->head = c;
  if (std < ARENA_MAX)
    a->next_size = std * 2;
  else
    a->next_size = std;
  c->used = n;
  return c->data;
}

static void *arena_zalloc(struct arena *a, size_t n) {
  void *p = arena_alloc(a, n);
  if (p)
    memset(p, 0, n);
  return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static char *arena_strdup(struct arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

static void arena_free(struct arena *a) {
  struct chunk *c = a->head;
  while (c) {
    struct chunk *next = c->next;
    otc_mem_release(c->charged);
    free(c);
    c = next;
  }
  a->head = NULL;
  a->next_size = 0;
}

/* Hands every chunk of a over to the spare list (charges and all). */
static void arena_keep(struct arena *a, struct chunk **spare) {
  while (a->head) {
    struct chunk *c = a->head;
    a->head = c->next;
    c->next = *spare;
    *spare = c;
  }
  a->next_size = 0;
}

/* Frees the smallest spare chunks until what is left fits OTC_PRW_SCRATCH_KEEP. */
static void scratch_trim(struct otc_prw_scratch *sc) {
  for (;;) {
    size_t total = 0;
    struct chunk **smallest = NULL;
    for (struct chunk **pp = &sc->spare; *pp; pp = &(*pp)->next) {
      total += (*pp)->charged;
      if (!smallest || (*pp)->cap < (*smallest)->cap)
        smallest = pp;
    }
    if (total <= OTC_PRW_SCRATCH_KEEP || !smallest)
      return;
    struct chunk *c = *smallest;
    *smallest = c->next;
    otc_mem_release(c->charged);
    free(c);
  }
}

struct otc_prw_scratch *otc_prw_scratch_new(void) {
  return calloc(1, sizeof(struct otc_prw_scratch));
}

void otc_prw_scratch_free(struct otc_prw_scratch *sc) {
  if (!sc)
    return;
  struct arena a = {sc->spare, 0, false, NULL};
  arena_free(&a);
  free(sc);
}

/* Forgets everything but keeps the largest chunk's memory for the next round. */
static void arena_rewind(struct arena *a) {
  struct chunk *keep = NULL;
  for (struct chunk *c = a->head; c; c = c->next)
    if (!keep || c->cap > keep->cap)
      keep = c;
  struct chunk *c = a->head;
  while (c) {
    struct chunk *next = c->next;
    if (c != keep) {
      otc_mem_release(c->charged);
      free(c);
    }
    c = next;
  }
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
  }
  a->head = keep;
}

/* Grows an arena array of elem-sized items holding n to at least n + 1 items. */
static void *arena_grow(struct arena *a, void *old, size_t n, size_t *cap, size_t elem) {
  if (n < *cap)
    return old;
  size_t ncap = *cap ? *cap * 2 : 4;
  void *p = arena_alloc(a, ncap * elem);
  if (!p)
    return NULL;
  if (n)
    memcpy(p, old, n * elem);
  *cap = ncap;
  return p;
}

static void *pb_alloc(void *data, size_t n) {
  return arena_alloc(data, n);
}

static void pb_free(void *data, void *p) {
  (void)data;
  (void)p;
}

/* --- a growable string, for names (malloc'd; the caller copies the result where it belongs) --- */

struct sb {
  char *p;
  size_t len, cap;
  bool failed;
};

static void sb_putn(struct sb *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < b->len + n + 1)
      ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) {
      b->failed = true;
      return;
    }
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s) {
  sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sb *b, char c) {
  sb_putn(b, &c, 1);
}

static const char *sb_str(struct sb *b) {
  if (!b->p)
    sb_putn(b, "", 0);
  return b->failed ? NULL : b->p;
}

/* --- UTF-8, as Go's range over a string reads it --- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when the byte there does not
 * start one (an invalid byte counts as a rune of its own). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[2] & 0xC0) != 0x80)
      return 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return s[1] >= lo && s[1] <= hi ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return s[1] >= lo && s[1] <= hi ? 4 : 0;
  }
  return 0;
}

static size_t rune_count(const char *s) {
  size_t n = strlen(s), runes = 0;
  for (size_t i = 0; i < n; runes++) {
    size_t l = utf8_seq((const unsigned char *)s + i, n - i);
    i += l ? l : 1;
  }
  return runes;
}

/* Label values must be valid UTF-8 or Prometheus refuses the whole request; an invalid byte
 * becomes U+FFFD (as Go's strings.ToValidUTF8 would write it, one per byte). Returns s itself when
 * it is valid, else a NUL-terminated copy in a; *out_n is the result's length. */
static const char *valid_utf8n(struct arena *a, const char *s, size_t n, size_t *out_n) {
  size_t i = 0;
  /* ASCII eight bytes at a time first: values are nearly always ASCII. */
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    if (w & 0x8080808080808080ULL)
      break;
  }
  while (i < n) {
    if ((unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    size_t l = utf8_seq((const unsigned char *)s + i, n - i);
    if (!l)
      break;
    i += l;
  }
  *out_n = n;
  if (i == n)
    return s;
  char *out = arena_alloc(a, n * 3 + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (i = 0; i < n;) {
    size_t l = utf8_seq((const unsigned char *)s + i, n - i);
    if (l) {
      memcpy(out + o, s + i, l);
      o += l;
      i += l;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    }
  }
  out[o] = '\0';
  *out_n = o;
  return out;
}

static const char *valid_utf8(struct arena *a, const char *s) {
  size_t n;
  return valid_utf8n(a, s, strlen(s), &n);
}

/* --- number formatting, as Go's strconv writes it --- */

/* The shortest decimal digits that read back as |v| (finite, non-zero), and the decimal exponent
 * of the first digit. */
static void shortest_digits(double v, char *digits, int *exp10) {
  otc_num__shortest(fabs(v), digits, exp10);
}

/* strconv.FormatFloat(v, 'f', -1, 64). buf has at least FLOAT_BUF bytes. */
static const char *fmt_f(double v, char *buf) {
  if (isnan(v))
    return strcpy(buf, "NaN");
  if (isinf(v))
    return strcpy(buf, v > 0 ? "+Inf" : "-Inf");
  size_t o = 0;
  if (signbit(v))
    buf[o++] = '-';
  if (v == 0) {
    buf[o++] = '0';
    buf[o] = '\0';
    return buf;
  }
  char d[24];
  int e;
  shortest_digits(v, d, &e);
  int nd = (int)strlen(d);
  if (e >= 0) {
    for (int i = 0; i <= e; i++)
      buf[o++] = i < nd ? d[i] : '0';
    if (nd > e + 1) {
      buf[o++] = '.';
      for (int i = e + 1; i < nd; i++)
        buf[o++] = d[i];
    }
  } else {
    buf[o++] = '0';
    buf[o++] = '.';
    for (int i = 0; i < -e - 1; i++)
      buf[o++] = '0';
    for (int i = 0; i < nd; i++)
      buf[o++] = d[i];
  }
  buf[o] = '\0';
  return buf;
}

const char *prw__format_float(double v, char *buf, size_t cap) {
  char tmp[FLOAT_BUF];
  snprintf(buf, cap, "%s", fmt_f(v, tmp));
  return buf;
}

/* ECMAScript's number-to-string as pdata's Value.AsString writes a double (and encoding/json a
 * float64): 'f' form between 1e-6 and 1e21, else the shortest 'e' form with no exponent padding. */
static const char *fmt_es6(double v, char *buf) {
  if (isnan(v))
    return strcpy(buf, "NaN");
  if (isinf(v))
    return strcpy(buf, v > 0 ? "Infinity" : "-Infinity");
  double a = fabs(v);
  if (a == 0 || (a >= 1e-6 && a < 1e21))
    return fmt_f(v, buf);
  char d[24];
  int e;
  shortest_digits(v, d, &e);
  size_t o = 0;
  if (v < 0)
    buf[o++] = '-';
  buf[o++] = d[0];
  if (d[1]) {
    buf[o++] = '.';
    for (size_t i = 1; d[i]; i++)
      buf[o++] = d[i];
  }
  snprintf(buf + o, 16, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  return buf;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void sb_base64(struct sb *b, const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)d[i + 1] << 8;
    if (i + 2 < n)
      v |= d[i + 2];
    char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                 i + 2 < n ? b64[v & 63] : '='};
    sb_putn(b, q, 4);
  }
}

/* --- attribute values as strings (pdata's Value.AsString) --- */

/* A JSON string as Go's encoding/json writes it without HTML escaping. */
static void json_string(struct sb *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t n = strlen(s);
  sb_putc(b, '"');
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        char e[2] = {'\\', (char)c};
        sb_putn(b, e, 2);
      } else if (c >= 0x20) {
        sb_putc(b, (char)c);
      } else if (c == '\n') {
        sb_puts(b, "\\n");
      } else if (c == '\r') {
        sb_puts(b, "\\r");
      } else if (c == '\t') {
        sb_puts(b, "\\t");
      } else if (c == '\b') {
        sb_puts(b, "\\b");
      } else if (c == '\f') {
        sb_puts(b, "\\f");
      } else {
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        sb_putn(b, e, 6);
      }
      i++;
      continue;
    }
    size_t l = utf8_seq((const unsigned char *)s + i, n - i);
    if (!l) {
      sb_puts(b, "\\ufffd");
      i++;
    } else if (l == 3 && c == 0xE2 && (unsigned char)s[i + 1] == 0x80 &&
               ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
      sb_puts(b, (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
      i += 3;
    } else {
      sb_putn(b, s + i, l);
      i += l;
    }
  }
  sb_putc(b, '"');
}

static int cmp_kv_key(const void *x, const void *y) {
  const KeyValue *a = *(KeyValue *const *)x, *b = *(KeyValue *const *)y;
  int c = strcmp(a->key, b->key);
  /* Equal keys keep their order, so that the last one wins below (a Go map keeps the last). */
  return c ? c : (a < b ? -1 : a > b);
}

/* Go's json.Marshal of Value.AsRaw(): maps with sorted keys, bytes as base64, NaN and infinities
 * unencodable (then the whole value is "", as pdata returns). Nesting is bounded by the wire scan
 * before decoding. Returns false when the value cannot be encoded. */
static bool json_value(struct sb *b, const AnyValue *v) {
  char num[FLOAT_BUF];
  if (!v) {
    sb_puts(b, "null");
    return true;
  }
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    json_string(b, v->string_value);
    return true;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    sb_puts(b, v->bool_value ? "true" : "false");
    return true;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    snprintf(num, sizeof num, "%lld", (long long)v->int_value);
    sb_puts(b, num);
    return true;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    if (!isfinite(v->double_value))
      return false;
    sb_puts(b, fmt_es6(v->double_value, num));
    return true;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    sb_putc(b, '"');
    sb_base64(b, v->bytes_value.data, v->bytes_value.len);
    sb_putc(b, '"');
    return true;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
    sb_putc(b, '[');
    size_t n = v->array_value ? v->array_value->n_values : 0;
    for (size_t i = 0; i < n; i++) {
      if (i)
        sb_putc(b, ',');
      if (!json_value(b, v->array_value->values[i]))
        return false;
    }
    sb_putc(b, ']');
    return true;
  }
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
    size_t n = v->kvlist_value ? v->kvlist_value->n_values : 0;
    KeyValue **kv = n ? malloc(n * sizeof *kv) : NULL;
    if (n && !kv) {
      b->failed = true;
      return false;
    }
    if (n) {
      memcpy(kv, v->kvlist_value->values, n * sizeof *kv);
      qsort(kv, n, sizeof *kv, cmp_kv_key);
    }
    bool ok = true, first = true;
    sb_putc(b, '{');
    for (size_t i = 0; i < n && ok; i++) {
      if (i + 1 < n && strcmp(kv[i]->key, kv[i + 1]->key) == 0)
        continue;
      if (!first)
        sb_putc(b, ',');
      first = false;
      json_string(b, kv[i]->key);
      sb_putc(b, ':');
      ok = json_value(b, kv[i]->value);
    }
    sb_putc(b, '}');
    free(kv);
    return ok;
  }
  default:
    sb_puts(b, "null");
    return true;
  }
}

/* A signed decimal into buf (at least 21 bytes); returns buf. */
static const char *fmt_int(int64_t v, char *buf) {
  otc_num__i64(v, buf);
  return buf;
}

/* The string form of an attribute value, in arena a (string values are returned as they are).
 * Returns NULL only when out of memory. */
static const char *value_string(struct arena *a, const AnyValue *v) {
  char num[FLOAT_BUF];
  if (!v)
    return "";
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    return v->string_value ? v->string_value : "";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    return v->bool_value ? "true" : "false";
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    return arena_strdup(a, fmt_int(v->int_value, num));
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    return arena_strdup(a, fmt_es6(v->double_value, num));
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
    struct sb b = {0};
    bool ok;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE) {
      sb_base64(&b, v->bytes_value.data, v->bytes_value.len);
      ok = true;
    } else {
      ok = json_value(&b, v);
    }
    const char *s = sb_str(&b);
    const char *r = s ? arena_strdup(a, ok ? s : "") : NULL;
    free(b.p);
    return r;
  }
  default:
    return "";
  }
}

/* --- names --- */

static bool is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_metric_char(unsigned char c) {
  return is_alnum(c) || c == ':';
}

static bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static bool all_underscores(const char *s) {
  for (; *s; s++)
    if (*s != '_')
      return false;
  return true;
}

/* The label name for an attribute key into b: every rune outside [a-zA-Z0-9] becomes '_' (runs
 * kept), a leading digit gets "key_". Returns false for a key that yields no valid name. */
static bool label_name_into(struct sb *b, const char *key, size_t n) {
  if (n == 0)
    return false;
  if (is_digit((unsigned char)key[0]))
    sb_puts(b, "key_");
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)key[i];
    if (is_alnum(c)) {
      sb_putc(b, (char)c);
      i++;
    } else {
      size_t l = utf8_seq((const unsigned char *)key + i, n - i);
      sb_putc(b, '_');
      i += l ? l : 1;
    }
  }
  const char *s = sb_str(b);
  return s && !all_underscores(s);
}

char *prw__label_name(const char *key) {
  struct sb b = {0};
  if (!label_name_into(&b, key, strlen(key)) || b.failed) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

struct unit_map {
  const char *otel, *prom;
};

static const struct unit_map unit_names[] = {
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"s", "seconds"},
    {"ms", "milliseconds"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"By", "bytes"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"1", ""},
    {"%", "percent"},
    {NULL, NULL},
};

static const struct unit_map per_unit_names[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"}, {NULL, NULL},
};

static const char *map_unit(const struct unit_map *m, const char *u) {
  for (; m->otel; m++)
    if (strcmp(m->otel, u) == 0)
      return m->prom;
  return u;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Copies s[0..n) without leading and trailing white space into b. */
static void put_trimmed(struct sb *b, const char *s, size_t n) {
  while (n && is_space(*s))
    s++, n--;
  while (n && is_space(s[n - 1]))
    n--;
  sb_putn(b, s, n);
}

/* The unit's main and per-unit suffixes ("By/s" → "bytes", "per_second"), as buildUnitSuffixes. */
static void unit_suffixes(const char *unit, struct sb *main_u, struct sb *per_u) {
  const char *slash = strchr(unit, '/');
  size_t main_len = slash ? (size_t)(slash - unit) : strlen(unit);
  struct sb t = {0};
  put_trimmed(&t, unit, main_len);
  const char *m = sb_str(&t);
  if (m && *m && !strpbrk(m, "{}"))
    sb_puts(main_u, map_unit(unit_names, m));
  if (slash && slash[1]) {
    t.len = 0;
    put_trimmed(&t, slash + 1, strlen(slash + 1));
    const char *p = sb_str(&t);
    if (p && *p && !strpbrk(p, "{}")) {
      const char *pu = map_unit(per_unit_names, p);
      if (*pu) {
        sb_puts(per_u, "per_");
        sb_puts(per_u, pu);
      }
    }
  }
  if (t.failed)
    main_u->failed = true;
  free(t.p);
  sb_str(main_u);
  sb_str(per_u);
}

/* cleanUpUnit: invalid characters become '_', runs of '_' collapse, one leading '_' goes. */
static void clean_unit(const char *u, struct sb *out) {
  bool prev_us = false;
  for (; *u; u++) {
    char c = is_metric_char((unsigned char)*u) ? *u : '_';
    if (c == '_' && prev_us)
      continue;
    prev_us = c == '_';
    if (c == '_' && out->len == 0)
      continue;
    sb_putc(out, c);
  }
  sb_str(out);
}

char *prw__unit_name(const char *unit) {
  struct sb m = {0}, p = {0}, cm = {0}, cp = {0}, out = {0};
  unit_suffixes(unit ? unit : "", &m, &p);
  clean_unit(m.p ? m.p : "", &cm);
  clean_unit(p.p ? p.p : "", &cp);
  const char *a = sb_str(&cm), *b = sb_str(&cp);
  if (a && b) {
    if (*a && *b) {
      sb_puts(&out, a);
      sb_putc(&out, '_');
      sb_puts(&out, b);
    } else {
      sb_puts(&out, *a ? a : b);
    }
  }
  sb_str(&out);
  char *r = NULL;
  if (!out.failed && !m.failed && !p.failed && !cm.failed && !cp.failed) {
    size_t n = out.len;
    const char *s = out.p;
    if (n && s[0] == '_')
      s++, n--;
    if (n && s[n - 1] == '_')
      n--;
    r = strndup(s, n);
  }
  free(m.p), free(p.p), free(cm.p), free(cp.p), free(out.p);
  return r;
}

/* The namespace with every run of invalid characters (other than '_') turned into one '_', and
 * those at the ends dropped (strings.FieldsFunc joined by "_"). */
static void fields_join(const char *s, struct sb *out) {
  bool pending = false;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (is_metric_char(c) || c == '_') {
      if (pending && out->len)
        sb_putc(out, '_');
      pending = false;
      sb_putc(out, (char)c);
    } else {
      pending = true;
    }
  }
  sb_str(out);
}

struct token {
  const char *s;
  size_t n;
};

static bool tokens_contain(const struct token *t, size_t n, const char *s) {
  size_t l = strlen(s);
  for (size_t i = 0; i < n; i++)
    if (t[i].n == l && memcmp(t[i].s, s, l) == 0)
      return true;
  return false;
}

static size_t tokens_remove(struct token *t, size_t n, const char *s) {
  size_t l = strlen(s), o = 0;
  for (size_t i = 0; i < n; i++)
    if (!(t[i].n == l && memcmp(t[i].s, s, l) == 0))
      t[o++] = t[i];
  return o;
}

/* normalizeName of the reference, with suffixes: see the header. ns is already sanitized. */
static void metric_name_suffixed(const char *name, const char *unit, enum otc_prw_metric_kind kind,
                                 const char *ns, struct sb *out) {
  size_t len = strlen(name);
  /* At most one token per two bytes, plus unit, per unit, total, ratio and the namespace. */
  struct token *tok = malloc((len / 2 + 6) * sizeof *tok);
  struct sb m = {0}, p = {0}, cm = {0}, cp = {0};
  if (!tok) {
    out->failed = true;
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    if (!is_metric_char((unsigned char)name[i])) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < len && is_metric_char((unsigned char)name[j]))
      j++;
    tok[n++] = (struct token){name + i, j - i};
    i = j;
  }
  unit_suffixes(unit, &m, &p);
  clean_unit(m.p ? m.p : "", &cm);
  clean_unit(p.p ? p.p : "", &cp);
  /* clean_unit always leaves a NUL-terminated string unless memory ran out. */
  char *mu = cm.p ? cm.p : (char *)"", *pu = cp.p ? cp.p : (char *)"";
  size_t mu_n = strlen(mu), pu_n = strlen(pu);
  if (tokens_contain(tok, n, mu))
    mu_n = 0;
  if (strcmp(pu, "per_") == 0) {
    pu_n = 0;
  } else {
    if (pu_n && pu[pu_n - 1] == '_')
      pu[--pu_n] = '\0';
    if (tokens_contain(tok, n, pu))
      pu_n = 0;
  }
  if (pu_n && mu_n && mu[mu_n - 1] == '_')
    mu_n--;
  if (mu_n)
    tok[n++] = (struct token){mu, mu_n};
  if (pu_n)
    tok[n++] = (struct token){pu, pu_n};
  if (kind == OTC_PRW_KIND_COUNTER) {
    n = tokens_remove(tok, n, "total");
    tok[n++] = (struct token){"total", 5};
  }
  if (strcmp(unit, "1") == 0 && kind == OTC_PRW_KIND_GAUGE) {
    n = tokens_remove(tok, n, "ratio");
    tok[n++] = (struct token){"ratio", 5};
  }
  struct sb joined = {0};
  if (ns && *ns) {
    sb_puts(&joined, ns);
    if (n)
      sb_putc(&joined, '_');
  }
  for (size_t i = 0; i < n; i++) {
    if (i)
      sb_putc(&joined, '_');
    sb_putn(&joined, tok[i].s, tok[i].n);
  }
  const char *j = sb_str(&joined);
  if (j && is_digit((unsigned char)j[0]))
    sb_putc(out, '_');
  if (j)
    sb_puts(out, j);
  if (joined.failed || m.failed || p.failed || cm.failed || cp.failed)
    out->failed = true;
  free(joined.p), free(m.p), free(p.p), free(cm.p), free(cp.p);
  free(tok);
}

/* The metric name into out; false when nothing valid is left. */
static bool metric_name_into(const char *name, const char *unit, enum otc_prw_metric_kind kind,
                             const char *ns, bool suffixes, struct sb *out) {
  if (suffixes) {
    metric_name_suffixed(name, unit ? unit : "", kind, ns, out);
  } else {
    struct sb base = {0};
    fields_join(name, &base);
    const char *b = sb_str(&base);
    if (b && ns && *ns) {
      sb_puts(out, ns);
      sb_putc(out, '_');
    } else if (b && is_digit((unsigned char)b[0])) {
      sb_putc(out, '_');
    }
    if (b)
      sb_puts(out, b);
    if (base.failed)
      out->failed = true;
    free(base.p);
  }
  const char *s = sb_str(out);
  if (!s || !*s)
    return false;
  if (strcmp(s, name) != 0 && all_underscores(s))
    return false;
  return true;
}

char *prw__metric_name(const char *name, const char *unit, enum otc_prw_metric_kind kind,
                       const char *namespace_, bool add_suffixes) {
  struct sb ns = {0}, out = {0};
  if (namespace_)
    fields_join(namespace_, &ns);
  bool ok = metric_name_into(name, unit, kind, ns.p, add_suffixes, &out);
  free(ns.p);
  if (!ok || out.failed) {
    free(out.p);
    return NULL;
  }
  return out.p;
}

/* --- glob patterns of resource_constant_labels ('*' any run, '?' any one character) --- */

/* Bytes of the character at s: '?' stands for one rune, as in the reference's regular
 * expression. */
static size_t rune_len(const char *s) {
  size_t l = utf8_seq((const unsigned char *)s, strnlen(s, 4));
  return l ? l : 1;
}

static bool glob_match(const char *p, const char *s) {
  const char *star = NULL, *retry = NULL;
  while (*s) {
    if (*p == '*') {
      star = ++p;
      retry = s;
    } else if (*p == '?') {
      p++;
      s += rune_len(s);
    } else if (*p && *p == *s) {
      p++;
      s++;
    } else if (star) {
      p = star;
      retry += rune_len(retry);
      s = retry;
    } else {
      return false;
    }
  }
  while (*p == '*')
    p++;
  return *p == '\0';
}

/* --- translation state --- */

/* A label, or an attribute on its way to being one (name = the original key). Strings carry their
 * lengths: they are compared, hashed and copied far more often than they are made. None holds a
 * NUL byte (protobuf strings are read up to the first one, as protobuf-c's C strings end there). */
struct lbl {
  const char *name, *value;
  size_t name_len, value_len;
  uint32_t prio, order;
  uint32_t src; /* a point's label: SRC_CTX | context index, or attribute index */
  bool ascii;   /* the value is known to be ASCII (a formatted number or bool) */
  /* The label as a TimeSeries field (a packed Label), where made ahead: context and __name__
   * labels, the same in many series. */
  const uint8_t *packed;
  size_t packed_len;
};

#define SRC_CTX 0x80000000u

static struct lbl lbl_make(const char *name, const char *value, uint32_t prio, uint32_t order) {
  return (struct lbl){name, value, strlen(name), strlen(value), prio, order, 0, false, NULL, 0};
}

struct sample {
  double v;
  int64_t ts;
};

struct series {
  const uint8_t *labels; /* the TimeSeries' label fields, packed: its identity */
  size_t labels_len;
  struct sample *samples;
  size_t n_samples, cap_samples;
  Prometheus__Histogram **hists;
  size_t n_hists, cap_hists;
  Prometheus__Exemplar **exemplars;
  size_t n_exemplars, cap_exemplars;
  bool target_info; /* keeps its latest sample only */
};

/* An open-addressing map from a byte string to a pointer (attribute key → label name, metric →
 * its Prometheus name, family → metadata). */
struct smap_entry {
  const char *key;
  size_t key_len;
  const void *val;
  uint64_t hash;
};

struct smap {
  struct smap_entry *e;
  size_t cap, n;
};

/* The label layout of the last point whose labels were worked out in full: its attribute keys,
 * their label names, and where each of its labels came from (an attribute or a context label).
 * Points of a batch nearly all have the same keys in the same order under the same scope, and then
 * the same layout: they skip the sorting, the name lookups and the merge. */
#define LAYOUT_MAX 32

struct label_layout {
  bool valid;
  const struct lbl *ctx; /* the scope context it was made under (lives for the batch) */
  size_t n_ctx, n_attrs, n_out;
  const char *key[LAYOUT_MAX]; /* copies in the batch arena */
  size_t key_len[LAYOUT_MAX];
  const struct lname *name[LAYOUT_MAX];
  uint32_t src[2 * LAYOUT_MAX];
};

/* A series table entry: the hash beside the pointer, so that a probe past other series does not
 * read them (a batch's series table is far bigger than the caches). */
struct slot {
  uint64_t hash;
  struct series *s;
};

struct tr {
  const struct otc_prw_settings *s;
  struct otc_prw_write_set *out;
  struct arena a;   /* everything that lives until the requests are packed */
  struct arena tmp; /* per data point */
  const char *ns;   /* sanitized namespace, or NULL */
  struct smap names;
  struct smap metric_names;
  struct slot *table; /* hash table of series */
  size_t table_cap;
  struct series **list; /* in order of creation */
  size_t n_series, cap_series;
  Prometheus__MetricMetadata **meta;
  size_t n_meta, cap_meta;
  struct smap meta_seen;

  struct label_layout layout;
  bool nomem;
  bool invalid; /* bytes that do not decode (the wire scan let them through) */
};

/* The resource-level context of a ResourceMetrics. */
struct res_ctx {
  const char *job, *instance;
  struct lbl *conv; /* resource attributes that become labels (name = original key) */
  size_t n_conv;
  uint64_t latest_ns; /* for target_info */
};

/* A multiplicative hash eight bytes at a time. Only speed depends on it: equal keys are always
 * compared in full. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++)
    w |= (uint64_t)s[i] << (8 * i);
  h = (h ^ w ^ ((uint64_t)n << 59)) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 32);
}

#define HASH_SEED 0xcbf29ce484222325ULL

static bool bytes_eq(const char *a, size_t na, const char *b, size_t nb) {
  return na == nb && memcmp(a, b, na) == 0;
}

static const void *smap_get(const struct smap *m, const char *key, size_t n, uint64_t h) {
  if (!m->cap)
    return NULL;
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    const struct smap_entry *e = &m->e[i];
    if (!e->key)
      return NULL;
    if (e->hash == h && bytes_eq(e->key, e->key_len, key, n))
      return e->val;
  }
}

/* Adds key (which must live as long as the map: the caller copies it where needed). */
static bool smap_put(struct tr *t, struct smap *m, const char *key, size_t n, uint64_t h,
                     const void *val) {
  if ((m->n + 1) * 10 > m->cap * 7) {
    size_t ncap = m->cap ? m->cap * 2 : 64;
    struct smap_entry *ne = arena_zalloc(&t->a, ncap * sizeof *ne);
    if (!ne)
      return false;
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->e[i].key)
        continue;
      size_t j = m->e[i].hash & (ncap - 1);
      while (ne[j].key)
        j = (j + 1) & (ncap - 1);
      ne[j] = m->e[i];
    }
    m->e = ne;
    m->cap = ncap;
  }
  size_t i = h & (m->cap - 1);
  while (m->e[i].key)
    i = (i + 1) & (m->cap - 1);
  m->e[i] = (struct smap_entry){key, n, val, h};
  m->n++;
  return true;
}

/* A sanitized label name and its length, as the names map holds it. */
struct lname {
  const char *s;
  size_t n;
};

static const struct lname invalid_name_marker = {"", 0};

/* The label name of an attribute key, cached for the batch (the same few keys come with every
 * point). Returns NULL for an invalid key (and sets t->nomem when out of memory). */
static const struct lname *label_name(struct tr *t, const char *key, size_t key_len) {
  uint64_t h = hash_bytes(HASH_SEED, key, key_len);
  const struct lname *v = smap_get(&t->names, key, key_len, h);
  if (v)
    return v == &invalid_name_marker ? NULL : v;
  struct sb b = {0};
  bool ok = label_name_into(&b, key, key_len);
  const struct lname *name = &invalid_name_marker;
  /* The key may live in scratch memory: the map keeps its own copy. */
  char *kc = arena_strndup(&t->a, key, key_len);
  if (b.failed || !kc) {
    t->nomem = true;
  } else if (ok) {
    struct lname *ln = arena_alloc(&t->a, sizeof *ln);
    if (ln && (ln->s = arena_strndup(&t->a, b.p, b.len)) != NULL) {
      ln->n = b.len;

      name = ln;
    } else {
      t->nomem = true;
    }
  }
  free(b.p);
  if (t->nomem || !smap_put(t, &t->names, kc, key_len, h, name)) {
    t->nomem = true;
    return NULL;
  }
  return name == &invalid_name_marker ? NULL : name;
}

/* strcmp's order (bytes as unsigned, a prefix first) on strings with lengths. */
static inline int name_cmp(const struct lbl *a, const struct lbl *b) {
  /* Names mostly differ in their first byte. */
  if (a->name_len && b->name_len && a->name[0] != b->name[0])
    return (unsigned char)a->name[0] < (unsigned char)b->name[0] ? -1 : 1;
  size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
  int c = memcmp(a->name, b->name, n);
  if (c)
    return c;
  return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static bool name_eq(const struct lbl *a, const struct lbl *b) {
  return bytes_eq(a->name, a->name_len, b->name, b->name_len);
}

static int cmp_name_order(const void *x, const void *y) {
  const struct lbl *a = x, *b = y;
  int c = name_cmp(a, b);
  return c ? c : (a->order > b->order) - (a->order < b->order);
}

static int cmp_name_prio_order(const void *x, const void *y) {
  const struct lbl *a = x, *b = y;
  int c = name_cmp(a, b);
  if (c)
    return c;
  if (a->prio != b->prio)
    return a->prio < b->prio ? -1 : 1;
  return (a->order > b->order) - (a->order < b->order);
}

/* Sorts small arrays by insertion (labels are usually a handful, and mostly in order already),
 * larger ones with qsort; the comparators break ties by `order`, so both are stable. */
static void lbl_sort(struct lbl *v, size_t n, int (*cmp)(const void *, const void *)) {
  if (n > 16) {
    qsort(v, n, sizeof *v, cmp);
    return;
  }
  for (size_t i = 1; i < n; i++) {
    if (cmp(&v[i - 1], &v[i]) <= 0)
      continue;
    struct lbl x = v[i];
    size_t j = i;
    while (j > 0 && cmp(&v[j - 1], &x) > 0) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = x;
  }
}

/* Sorts by (name, prio, order) and keeps the last entry of each name: the winner. Drops empty
 * values (Prometheus reads an empty label as an absent one). Returns the new count. */
static size_t lbl_resolve(struct lbl *v, size_t n) {
  lbl_sort(v, n, cmp_name_prio_order);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && name_eq(&v[i], &v[i + 1]))
      continue;
    if (!v[i].value_len)
      continue;
    v[o++] = v[i];
  }
  return o;
}

/* The next label of the merge of two arrays sorted by name with unique names (*i, *j: the
 * positions reached); of two labels with the same name the one of higher priority wins. NULL at
 * the end. */
static inline const struct lbl *merge_next(const struct lbl *a, size_t na, size_t *i,
                                           const struct lbl *b, size_t nb, size_t *j) {
  if (*i == na)
    return *j < nb ? &b[(*j)++] : NULL;
  if (*j == nb)
    return &a[(*i)++];
  int c = name_cmp(&a[*i], &b[*j]);
  if (c < 0)
    return &a[(*i)++];
  if (c > 0)
    return &b[(*j)++];
  const struct lbl *pick = a[*i].prio >= b[*j].prio ? &a[*i] : &b[*j];
  (*i)++;
  (*j)++;
  return pick;
}

/* Merges a and b (see merge_next) into out (room for na + nb), dropping empty values. Returns the
 * count. */
static size_t lbl_merge(const struct lbl *a, size_t na, const struct lbl *b, size_t nb,
                        struct lbl *out) {
  size_t i = 0, j = 0, o = 0;
  const struct lbl *pick;
  while ((pick = merge_next(a, na, &i, b, nb, &j)) != NULL)
    if (pick->value_len)
      out[o++] = *pick;
  return o;
}

/* --- series --- */

/* A label's size as a TimeSeries field 1: the Label message, empty strings left out as protobuf-c
 * leaves them out. */
static size_t label_field_size(const struct lbl *l) {
  if (l->packed)
    return l->packed_len;
  size_t body =
      (l->name_len ? otc_ld_size(l->name_len) : 0) + (l->value_len ? otc_ld_size(l->value_len) : 0);
  return otc_ld_size(body);
}

static uint8_t *put_string_field(uint8_t *p, unsigned field, const char *s, size_t n) {
  if (n == 0)
    return p;
  *p++ = (uint8_t)(field << 3 | 2);
  p = otc_put_varint(p, n);
  memcpy(p, s, n);
  return p + n;
}

static uint8_t *put_label(uint8_t *p, const struct lbl *l) {
  if (l->packed) {
    memcpy(p, l->packed, l->packed_len);
    return p + l->packed_len;
  }
  *p++ = 1 << 3 | 2;
  p = otc_put_varint(p, (l->name_len ? otc_ld_size(l->name_len) : 0) +
                            (l->value_len ? otc_ld_size(l->value_len) : 0));
  p = put_string_field(p, 1, l->name, l->name_len);
  return put_string_field(p, 2, l->value, l->value_len);
}

/* Makes l's packed form ahead, in arena a (for a label that many series share). */
static bool prepack(struct arena *a, struct lbl *l) {
  size_t n = label_field_size(l);
  uint8_t *p = arena_alloc(a, n);
  if (!p)
    return false;
  put_label(p, l);
  l->packed = p;
  l->packed_len = n;
  return true;
}

/* The series whose labels pack to buf[0..len) (any storage). A series is known by the packed bytes
 * of its labels: made once, hashed and compared whole, and copied into the request as they are.
 * NULL when out of memory. */
static struct series *get_series(struct tr *t, const uint8_t *buf, size_t len) {
  uint64_t h = hash_bytes(HASH_SEED, buf, len);
  if (t->table_cap) {
    for (size_t i = h & (t->table_cap - 1);; i = (i + 1) & (t->table_cap - 1)) {
      const struct slot *sl = &t->table[i];
      if (!sl->s)
        break;
      if (sl->hash == h && sl->s->labels_len == len && memcmp(sl->s->labels, buf, len) == 0)
        return sl->s;
    }
  }
  if ((t->n_series + 1) * 10 > t->table_cap * 7) {
    size_t ncap = t->table_cap ? t->table_cap * 2 : 256;
    struct slot *nt = arena_zalloc(&t->a, ncap * sizeof *nt);
    if (!nt)
      goto nomem;
    for (size_t i = 0; i < t->table_cap; i++) {
      if (!t->table[i].s)
        continue;
      size_t j = t->table[i].hash & (ncap - 1);
      while (nt[j].s)
        j = (j + 1) & (ncap - 1);
      nt[j] = t->table[i];
    }
    t->table = nt;
    t->table_cap = ncap;
  }
  struct series *s = arena_zalloc(&t->a, sizeof *s);
  uint8_t *copy = arena_alloc(&t->a, len ? len : 1);
  struct series **list = arena_grow(&t->a, t->list, t->n_series, &t->cap_series, sizeof *list);
  if (!s || !copy || !list)
    goto nomem;
  t->list = list;
  memcpy(copy, buf, len);
  s->labels = copy;
  s->labels_len = len;
  size_t j = h & (t->table_cap - 1);
  while (t->table[j].s)
    j = (j + 1) & (t->table_cap - 1);
  t->table[j] = (struct slot){h, s};
  t->list[t->n_series++] = s;
  return s;
nomem:
  t->nomem = true;
  return NULL;
}

static void add_sample(struct tr *t, struct series *s, int64_t ts, double v) {
  if (s->target_info && s->n_samples) {
    /* One target_info sample per resource and batch: the latest. */
    if (ts >= s->samples[0].ts)
      s->samples[0] = (struct sample){v, ts};
    return;
  }
  struct sample *ns = arena_grow(&t->a, s->samples, s->n_samples, &s->cap_samples, sizeof *ns);
  if (!ns) {
    t->nomem = true;
    return;
  }
  s->samples = ns;
  s->samples[s->n_samples++] = (struct sample){v, ts};
}

static void add_histogram(struct tr *t, struct series *s, Prometheus__Histogram *h) {
  Prometheus__Histogram **nh = arena_grow(&t->a, s->hists, s->n_hists, &s->cap_hists, sizeof *nh);
  if (!nh) {
    t->nomem = true;
    return;
  }
  s->hists = nh;
  s->hists[s->n_hists++] = h;
}

static void add_exemplar(struct tr *t, struct series *s, Prometheus__Exemplar *e) {
  Prometheus__Exemplar **ne =
      arena_grow(&t->a, s->exemplars, s->n_exemplars, &s->cap_exemplars, sizeof *ne);
  if (!ne) {
    t->nomem = true;
    return;
  }
  s->exemplars = ne;
  s->exemplars[s->n_exemplars++] = e;
}

/* A series of base labels (sorted, unique) plus the series' own (prio PRIO_SERIES) name label and,
 * optionally, one more pair (le, quantile). */
static struct series *series_with(struct tr *t, const struct lbl *base, size_t n_base,
                                  const struct lbl *name, const char *k, const char *v) {
  struct lbl extra[2];
  size_t ne = 0;
  extra[ne++] = *name;
  if (k) {
    extra[ne] = lbl_make(k, v, PRIO_SERIES, 1);
    if (name_cmp(&extra[1], &extra[0]) < 0) {
      struct lbl x = extra[0];
      extra[0] = extra[1];
      extra[1] = x;
    }
    ne++;
  }
  /* Merged straight into their packed form (room for all: the merge only leaves labels out). */
  size_t cap = 0;
  for (size_t i = 0; i < n_base; i++)
    cap += label_field_size(&base[i]);
  for (size_t j = 0; j < ne; j++)
    cap += label_field_size(&extra[j]);
  uint8_t *buf = arena_alloc(&t->tmp, cap ? cap : 1), *p = buf;
  if (!buf) {
    t->nomem = true;
    return NULL;
  }
  size_t i = 0, j = 0;
  const struct lbl *pick;
  while ((pick = merge_next(base, n_base, &i, extra, ne, &j)) != NULL)
    if (pick->value_len)
      p = put_label(p, pick);
  return get_series(t, buf, (size_t)(p - buf));
}

/* The __name__ label of name. */
static struct lbl name_label(const char *name) {
  return lbl_make("__name__", name, PRIO_SERIES, 0);
}

/* series_with for a name not prepared (a suffixed one); NULL name: out of memory. */
static struct series *series_for(struct tr *t, const struct lbl *base, size_t n_base,
                                 const char *name, const char *k, const char *v) {
  if (!name) {
    t->nomem = true;
    return NULL;
  }
  struct lbl nl = name_label(name);
  return series_with(t, base, n_base, &nl, k, v);
}

/* --- labels of a data point --- */

/* The base labels of a point from the layout of the previous one, when its attributes have the
 * same keys (all with values) under the same scope context; false when they do not. */
static bool labels_from_layout(struct tr *t, const struct lbl *ctx, size_t n_ctx,
                               const struct lbl *attrs, size_t n_attrs, struct lbl **out,
                               size_t *n_out) {
  const struct label_layout *lo = &t->layout;
  if (!lo->valid || lo->ctx != ctx || lo->n_ctx != n_ctx || lo->n_attrs != n_attrs)
    return false;
  for (size_t i = 0; i < n_attrs; i++)
    if (!attrs[i].value_len ||
        !bytes_eq(attrs[i].name, attrs[i].name_len, lo->key[i], lo->key_len[i]))
      return false;
  struct lbl *res = arena_alloc(&t->tmp, (lo->n_out ? lo->n_out : 1) * sizeof *res);
  if (!res) {
    t->nomem = true;
    return true;
  }
  for (size_t k = 0; k < lo->n_out; k++) {
    uint32_t src = lo->src[k];
    if (src & SRC_CTX) {
      res[k] = ctx[src & ~SRC_CTX];
    } else {
      const struct lname *ln = lo->name[src];
      struct lbl *l = &res[k];
      *l = attrs[src];
      l->name = ln->s;
      l->name_len = ln->n;
      l->prio = PRIO_ATTR;
      l->packed = NULL;
      if (!l->ascii && !(l->value = valid_utf8n(&t->tmp, attrs[src].value, attrs[src].value_len,
                                                &l->value_len))) {
        t->nomem = true;
        return true;
      }
    }
  }
  *out = res;
  *n_out = lo->n_out;
  return true;
}

/* The base labels of a point: its attributes (name = key, value = the value's string form; and
 * the resource's, when converted) sanitized and merged, then the scope context (hashed, from
 * scope_ctx). *out is in the tmp arena. Returns 0, 1 when an attribute key is invalid (the point is
 * dropped, as the reference drops it), or -1 when out of memory. r is NULL for target_info, which
 * has no layout to share. */
static int point_labels(struct tr *t, const struct res_ctx *r, const struct lbl *ctx, size_t n_ctx,
                        const struct lbl *attrs, size_t n_attrs, struct lbl **out, size_t *n_out) {
  bool cacheable =
      r && r->n_conv == 0 && n_attrs <= LAYOUT_MAX && n_attrs + n_ctx <= 2 * LAYOUT_MAX;
  if (cacheable && labels_from_layout(t, ctx, n_ctx, attrs, n_attrs, out, n_out))
    return t->nomem ? -1 : 0;
  size_t cap = n_attrs + (r ? r->n_conv : 0) + n_ctx;
  struct lbl *v = arena_alloc(&t->tmp, (cap ? cap : 1) * sizeof *v);
  const struct lname **names = arena_alloc(&t->tmp, (n_attrs ? n_attrs : 1) * sizeof *names);
  if (!v || !names)
    return -1;
  size_t n = 0;
  for (size_t i = 0; i < n_attrs; i++) {
    bool overridden = false;
    for (size_t j = 0; r && j < r->n_conv && !overridden; j++)
      overridden = name_eq(&r->conv[j], &attrs[i]);
    if (overridden || !attrs[i].value_len)
      continue;
    v[n] = attrs[i];
    v[n].prio = PRIO_ATTR;
    v[n].order = (uint32_t)n;
    v[n].src = (uint32_t)i;
    v[n].packed = NULL;
    n++;
  }
  cacheable = cacheable && n == n_attrs;
  for (size_t j = 0; r && j < r->n_conv; j++)
    if (r->conv[j].value_len) {
      v[n] = r->conv[j];
      v[n].prio = PRIO_ATTR;
      v[n].order = (uint32_t)n;
      n++;
    }
  /* Collisions are joined in the order of the original keys. */
  lbl_sort(v, n, cmp_name_order);
  for (size_t i = 0; i < n; i++) {
    const struct lname *name = label_name(t, v[i].name, v[i].name_len);
    if (!name)
      return t->nomem ? -1 : 1;
    if (cacheable)
      names[v[i].src] = name;
    v[i].name = name->s;
    v[i].name_len = name->n;
    v[i].order = (uint32_t)i;
  }
  lbl_sort(v, n, cmp_name_order);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o && name_eq(&v[o - 1], &v[i])) {
      if (!bytes_eq(v[o - 1].value, v[o - 1].value_len, v[i].value, v[i].value_len)) {
        size_t a = v[o - 1].value_len, b = v[i].value_len;
        char *j = arena_alloc(&t->tmp, a + b + 2);
        if (!j)
          return -1;
        memcpy(j, v[o - 1].value, a);
        j[a] = ';';
        memcpy(j + a + 1, v[i].value, b);
        j[a + 1 + b] = '\0';
        v[o - 1].value = j;
        v[o - 1].value_len = a + 1 + b;
      }
      continue;
    }
    v[o++] = v[i];
  }
  cacheable = cacheable && o == n;
  n = o;
  for (size_t i = 0; i < n; i++) {
    const char *val = valid_utf8n(&t->tmp, v[i].value, v[i].value_len, &v[i].value_len);
    if (!val)
      return -1;
    v[i].value = val;
  }
  struct lbl *res = arena_alloc(&t->tmp, (n + n_ctx + 1) * sizeof *res);
  if (!res)
    return -1;
  n = lbl_merge(v, n, ctx, n_ctx, res);
  if (cacheable) {
    /* Remember this layout for the next points (keys copied: they may be in scratch memory). */
    struct label_layout *lo = &t->layout;
    lo->valid = false;
    for (size_t i = 0; i < n_attrs; i++) {
      char *k = arena_strndup(&t->a, attrs[i].name, attrs[i].name_len);
      if (!k)
        return -1;
      lo->key[i] = k;
      lo->key_len[i] = attrs[i].name_len;
      lo->name[i] = names[i];
    }
    for (size_t k = 0; k < n; k++)
      lo->src[k] = res[k].src;
    lo->ctx = ctx;
    lo->n_ctx = n_ctx;
    lo->n_attrs = n_attrs;
    lo->n_out = n;
    lo->valid = true;
  }
  *out = res;
  *n_out = n;
  return 0;
}

/* The attributes of a decoded message as point_labels takes them (in the tmp arena). Returns
 * NULL when out of memory. */
static struct lbl *kv_attrs(struct tr *t, KeyValue *const *kv, size_t n) {
  struct lbl *v = arena_alloc(&t->tmp, (n ? n : 1) * sizeof *v);
  if (!v)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *val = value_string(&t->tmp, kv[i]->value);
    if (!val)
      return NULL;
    v[i] = lbl_make(kv[i]->key, val, PRIO_ATTR, (uint32_t)i);
  }
  return v;
}

/* --- exemplars --- */

static bool all_zero(ProtobufCBinaryData d) {
  for (size_t i = 0; i < d.len; i++)
    if (d.data[i])
      return false;
  return true;
}

static char *hex(struct arena *a, ProtobufCBinaryData d) {
  static const char digits[] = "0123456789abcdef";
  char *s = arena_alloc(a, d.len * 2 + 1);
  if (!s)
    return NULL;
  for (size_t i = 0; i < d.len; i++) {
    s[2 * i] = digits[d.data[i] >> 4];
    s[2 * i + 1] = digits[d.data[i] & 15];
  }
  s[d.len * 2] = '\0';
  return s;
}

/* trace_id and span_id, then the filtered attributes unless they push the labels past 128 runes
 * (as the reference does). */
static Prometheus__Exemplar *make_exemplar(struct tr *t, const Exemplar *e) {
  Prometheus__Exemplar *x = arena_alloc(&t->a, sizeof *x);
  size_t cap = 2 + e->n_filtered_attributes;
  Prometheus__Label *lab = arena_alloc(&t->a, cap * sizeof *lab);
  Prometheus__Label **ptr = arena_alloc(&t->a, cap * sizeof *ptr);
  if (!x || !lab || !ptr)
    goto nomem;
  prometheus__exemplar__init(x);
  x->value =
      e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT ? (double)e->as_int
      : e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE ? e->as_double
                                                                                      : 0;
  x->timestamp = to_ms(e->time_unix_nano);
  size_t n = 0, runes = 0;
  if (e->trace_id.len && !all_zero(e->trace_id)) {
    prometheus__label__init(&lab[n]);
    lab[n].name = "trace_id";
    if (!(lab[n].value = hex(&t->a, e->trace_id)))
      goto nomem;
    runes += strlen("trace_id") + e->trace_id.len * 2;
    n++;
  }
  if (e->span_id.len && !all_zero(e->span_id)) {
    prometheus__label__init(&lab[n]);
    lab[n].name = "span_id";
    if (!(lab[n].value = hex(&t->a, e->span_id)))
      goto nomem;
    runes += strlen("span_id") + e->span_id.len * 2;
    n++;
  }
  size_t fixed = n;
  for (size_t i = 0; i < e->n_filtered_attributes; i++) {
    const KeyValue *kv = e->filtered_attributes[i];
    const char *val = value_string(&t->a, kv->value);
    if (!val || !(val = valid_utf8(&t->a, val)))
      goto nomem;
    runes += rune_count(kv->key) + rune_count(val);
    if (!*kv->key || !*val)
      continue;
    prometheus__label__init(&lab[n]);
    lab[n].name = (char *)valid_utf8(&t->a, kv->key);
    lab[n].value = (char *)val;
    if (!lab[n].name)
      goto nomem;
    n++;
  }
  if (runes > MAX_EXEMPLAR_RUNES)
    n = fixed;
  for (size_t i = 0; i < n; i++)
    ptr[i] = &lab[i];
  x->n_labels = n;
  x->labels = ptr;
  return x;
nomem:
  t->nomem = true;
  return NULL;
}

static void add_exemplars(struct tr *t, struct series *s, Exemplar *const *ex, size_t n) {
  for (size_t i = 0; s && i < n && !t->nomem; i++) {
    Prometheus__Exemplar *x = make_exemplar(t, ex[i]);
    if (x)
      add_exemplar(t, s, x);
  }
}

/* --- reading the wire ---
 *
 * Gauges and sums, nearly all of the points, are read straight from the request's wire bytes:
 * decoding every point into protobuf-c structs first cost more than translating it. The rarer
 * messages (resources, scopes, histograms, summaries, exemplars, structured attribute values) are
 * decoded one message at a time with pbfast, falling back to protobuf-c, so that they read exactly
 * as a whole-request decode would (protobuf decoding is compositional). Reads follow pbfast's: a
 * varint of up to ten bytes, a string up to its first NUL (protobuf-c's C strings end there), the
 * last occurrence of a scalar or of a oneof's member winning. Every read is checked against the end
 * of its message; the nesting here is fixed (request, resource, scope, metric, data, point,
 * attribute, value), and what nests further goes through the decoders, under the wire scan's
 * depth limit. */

struct wire {
  const uint8_t *p, *end;
};

static inline bool w_varint(struct wire *w, uint64_t *out) {
  return otc_pb_varint(&w->p, w->end, out);
}

/* The next field: 1, 0 at the end of the message, -1 for bytes that do not decode. */
static inline int w_next(struct wire *w, struct otc_pb_field *f) {
  if (w->p >= w->end)
    return 0;
  return otc_pb_next(&w->p, w->end, f) ? 1 : -1;
}

/* A string field's bytes up to the first NUL. */
static void w_str(const struct otc_pb_field *f, const char **s, size_t *n) {
  const uint8_t *z = f->len ? memchr(f->data, 0, f->len) : NULL;
  *s = (const char *)f->data;
  *n = z ? (size_t)(z - f->data) : f->len;
}

/* Decodes one message of descriptor d from p[0..n) into arena a (pbfast, else protobuf-c). NULL
 * with t->nomem or t->invalid set on failure. */
static void *unpack_msg(struct tr *t, struct arena *a, const ProtobufCMessageDescriptor *d,
                        const uint8_t *p, size_t n) {
  ProtobufCAllocator alloc = {pb_alloc, pb_free, a};
  ProtobufCMessage *m = otc_pb__unpack(d, p, n, &alloc);
  if (!m && !a->failed)
    m = protobuf_c_message_unpack(d, &alloc, n, p);
  if (!m) {
    if (a->failed)
      t->nomem = true;
    else
      t->invalid = true;
  }
  return m;
}

/* Decodes the message at p[0..n) of descriptor d with every field numbered skip left out (the
 * copy lives in t->a: decoded bytes fields point into it). The other fields read as they would in
 * the whole message. */
static void *unpack_without(struct tr *t, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                            size_t n, uint32_t skip) {
  /* Sized first: the fields left out (a resource's metrics) are nearly all of the bytes. */
  size_t o = 0;
  struct wire w = {p, p + n};
  struct otc_pb_field f;
  int rc;
  for (const uint8_t *start = w.p; (rc = w_next(&w, &f)) > 0; start = w.p)
    if (f.num != skip)
      o += (size_t)(w.p - start);
  if (rc < 0) {
    t->invalid = true;
    return NULL;
  }
  uint8_t *copy = arena_alloc(&t->a, o ? o : 1);
  if (!copy) {
    t->nomem = true;
    return NULL;
  }
  o = 0;
  w = (struct wire){p, p + n};
  for (const uint8_t *start = w.p; w_next(&w, &f) > 0; start = w.p) {
    if (f.num != skip) {
      memcpy(copy + o, start, (size_t)(w.p - start));
      o += (size_t)(w.p - start);
    }
  }
  return unpack_msg(t, &t->a, d, copy, o);
}

/* The string form of an AnyValue's wire bytes into *out (in the tmp arena when formatted). */
static bool any_value_wire(struct tr *t, const uint8_t *p, size_t n, const char **s, size_t *len) {
  char num[FLOAT_BUF];
  struct wire w = {p, p + n};
  struct otc_pb_field f, last = {0};
  int rc;
  while ((rc = w_next(&w, &f)) > 0)
    if (f.num >= 1 && f.num <= 7)
      last = f;
  if (rc < 0) {
    t->invalid = true;
    return false;
  }
  const char *v;
  switch (last.num) {
  case 0:
    *s = "";
    *len = 0;
    return true;
  case 1:
    if (last.wt != OTC_WT_LEN)
      break;
    w_str(&last, s, len);
    return true;
  case 2:
    if (last.wt != OTC_WT_VARINT)
      break;
    *s = last.v ? "true" : "false";
    *len = strlen(*s);
    return true;
  case 3:
  case 4: {
    if (last.wt != (last.num == 3 ? OTC_WT_VARINT : OTC_WT_FIXED64))
      break;
    if (last.num == 3) {
      v = fmt_int((int64_t)last.v, num);
    } else {
      double d;
      memcpy(&d, &last.v, sizeof d);
      v = fmt_es6(d, num);
    }
    *len = strlen(v);
    char *c = arena_strndup(&t->tmp, v, *len);
    if (!c) {
      t->nomem = true;
      return false;
    }
    *s = c;
    return true;
  }
  default: {
    /* Bytes, arrays and maps: rare, and their string forms are the decoded path's. */
    const AnyValue *av =
        unpack_msg(t, &t->tmp, &opentelemetry__proto__common__v1__any_value__descriptor, p, n);
    if (!av || !(v = value_string(&t->tmp, av))) {
      if (av)
        t->nomem = true;
      return false;
    }
    *s = v;
    *len = strlen(v);
    return true;
  }
  }
  t->invalid = true; /* a known field of the wrong wire type */
  return false;
}

/* The usual KeyValue: one-byte tags and lengths, the key, then a value holding one string, bool,
 * int or double. Returns false for any other shape (key_value_wire reads those in full). */
static bool key_value_simple(struct tr *t, const uint8_t *p, size_t n, struct lbl *out) {
  if (n < 6 || p[0] != 0x0a || p[1] >= 0x80 || (size_t)p[1] + 4 > n)
    return false;
  const uint8_t *q = p + 2 + p[1], *v = q + 2;
  size_t vl = q[1];
  if (q[0] != 0x12 || vl >= 0x80 || vl < 2 || (size_t)(v + vl - p) != n)
    return false;
  struct otc_pb_field f = {.data = p + 2, .len = p[1]};
  const char *s;
  size_t sl;
  char num[FLOAT_BUF];
  switch (v[0]) {
  case 0x0a: /* string_value */
    if (v[1] >= 0x80 || (size_t)v[1] + 2 != vl)
      return false;
    f = (struct otc_pb_field){.data = v + 2, .len = v[1]};
    w_str(&f, &s, &sl);
    break;
  case 0x10: /* bool_value */
    if (vl != 2 || v[1] >= 0x80)
      return false;
    s = v[1] ? "true" : "false";
    sl = v[1] ? 4 : 5;
    break;
  case 0x18:   /* int_value */
  case 0x21: { /* double_value */
    struct wire w = {v + 1, v + vl};
    uint64_t x;
    if (v[0] == 0x18) {
      if (!w_varint(&w, &x) || w.p != w.end)
        return false;
      s = fmt_int((int64_t)x, num);
    } else {
      if (vl != 9)
        return false;
      double d;
      memcpy(&x, v + 1, 8);
      x = le64toh(x);
      memcpy(&d, &x, sizeof d);
      s = fmt_es6(d, num);
    }
    sl = strlen(s);
    char *c = arena_strndup(&t->tmp, s, sl);
    if (!c) {
      t->nomem = true;
      return false;
    }
    s = c;
    break;
  }
  default:
    return false;
  }
  *out = lbl_make("", "", PRIO_ATTR, 0);
  f = (struct otc_pb_field){.data = p + 2, .len = p[1]};
  w_str(&f, &out->name, &out->name_len);
  out->value = s;
  out->value_len = sl;
  out->ascii = v[0] != 0x0a;
  return true;
}

/* A KeyValue's wire bytes as an attribute (name = key). */
static bool key_value_wire(struct tr *t, const uint8_t *p, size_t n, struct lbl *out) {
  if (key_value_simple(t, p, n, out))
    return true;
  if (t->nomem)
    return false;
  struct wire w = {p, p + n};
  struct otc_pb_field f;
  const uint8_t *val = NULL;
  size_t val_len = 0, n_val = 0;
  int rc;
  *out = lbl_make("", "", PRIO_ATTR, 0);
  while ((rc = w_next(&w, &f)) > 0) {
    if (f.num == 1 || f.num == 2) {
      if (f.wt != OTC_WT_LEN) {
        t->invalid = true;
        return false;
      }
      if (f.num == 1) {
        w_str(&f, &out->name, &out->name_len);
      } else {
        val = f.data;
        val_len = f.len;
        n_val++;
      }
    }
  }
  if (rc < 0) {
    t->invalid = true;
    return false;
  }
  if (n_val > 1) {
    /* The value given twice: protobuf merges the two, as the decoder does. */
    const KeyValue *kv =
        unpack_msg(t, &t->tmp, &opentelemetry__proto__common__v1__key_value__descriptor, p, n);
    const char *v = kv ? value_string(&t->tmp, kv->value) : NULL;
    if (!v) {
      if (kv)
        t->nomem = true;
      return false;
    }
    *out = lbl_make(kv->key, v, PRIO_ATTR, 0);
    return true;
  }
  if (n_val == 0)
    return true;
  return any_value_wire(t, val, val_len, &out->value, &out->value_len);
}

/* --- metrics --- */

struct metric_ctx {
  struct tr *t;
  const struct res_ctx *r;
  const struct lbl *ctx;
  size_t n_ctx;
  const char *name;    /* the Prometheus name */
  struct lbl name_l;   /* its __name__ label, packed ahead */
  uint64_t *latest_ns; /* the resource's, for target_info: number_point keeps it */
  /* The le values of the last bounds seen: the points of a histogram almost always share them,
   * and formatting a double is the costly part of a bucket. */
  const double *le_bounds;
  size_t le_n;
  const char **le;
};

/* A NumberDataPoint's wire bytes. Returns 0, 1 (point dropped: invalid label) or -1 (out of
 * memory or undecodable). */
static int number_point(const struct metric_ctx *m, const uint8_t *p, size_t len, bool counter) {
  struct tr *t = m->t;
  struct wire w = {p, p + len};
  struct otc_pb_field f;
  /* Room for the usual attribute count without an allocation. */
  struct lbl stack_attrs[16];
  size_t n_attrs = 0, cap_attrs = 16, n_ex = 0;
  struct lbl *attrs = stack_attrs;
  uint64_t time = 0, bits = 0;
  uint32_t flags = 0, value_field = 0;
  int rc;
  while ((rc = w_next(&w, &f)) > 0) {
    switch (f.num) {
    case 7:
      if (f.wt != OTC_WT_LEN)
        goto invalid;
      attrs = arena_grow(&t->tmp, attrs, n_attrs, &cap_attrs, sizeof *attrs);
      if (!attrs) {
        t->nomem = true;
        return -1;
      }
      if (!key_value_wire(t, f.data, f.len, &attrs[n_attrs]))
        return -1;
      attrs[n_attrs].order = (uint32_t)n_attrs;
      n_attrs++;
      break;
    case 3:
    case 4:
    case 6:
      if (f.wt != OTC_WT_FIXED64)
        goto invalid;
      if (f.num == 3) {
        time = f.v;
      } else {
        value_field = f.num;
        bits = f.v;
      }
      break;
    case 8:
      if (f.wt != OTC_WT_VARINT)
        goto invalid;
      flags = (uint32_t)f.v;
      break;
    case 5:
      if (f.wt != OTC_WT_LEN)
        goto invalid;
      n_ex++;
      break;
    default:
      break;
    }
  }
  if (rc < 0)
    goto invalid;
  /* Every point counts for target_info's time, dropped or not. */
  if (time > *m->latest_ns)
    *m->latest_ns = time;
  struct lbl *base;
  size_t n;
  rc = point_labels(t, m->r, m->ctx, m->n_ctx, attrs, n_attrs, &base, &n);
  if (rc)
    return rc;
  struct series *s = series_with(t, base, n, &m->name_l, NULL, NULL);
  if (!s)
    return -1;
  double v = 0;
  if (flags & NO_RECORDED_VALUE)
    v = stale_nan();
  else if (value_field == 4)
    memcpy(&v, &bits, sizeof v);
  else if (value_field == 6)
    v = (double)(int64_t)bits;
  add_sample(t, s, to_ms(time), v);
  if (counter && n_ex) {
    w = (struct wire){p, p + len};
    while (w_next(&w, &f) > 0 && !t->nomem && !t->invalid) {
      if (f.num != 5)
        continue;
      const Exemplar *e = unpack_msg(
          t, &t->a, &opentelemetry__proto__metrics__v1__exemplar__descriptor, f.data, f.len);
      Prometheus__Exemplar *x = e ? make_exemplar(t, e) : NULL;
      if (x)
        add_exemplar(t, s, x);
    }
  }
  return t->nomem || t->invalid ? -1 : 0;
invalid:
  t->invalid = true;
  return -1;
}

static char *suffixed(struct tr *t, const char *name, const char *suffix) {
  size_t a = strlen(name), b = strlen(suffix);
  char *s = arena_alloc(&t->tmp, a + b + 1);
  if (s) {
    memcpy(s, name, a);
    memcpy(s + a, suffix, b + 1);
  } else {
    t->nomem = true;
  }
  return s;
}

struct bound {
  double bound;
  struct series *s;
};

static int cmp_bound(const void *x, const void *y) {
  const struct bound *a = x, *b = y;
  return (a->bound > b->bound) - (a->bound < b->bound);
}

static int histogram_point(struct metric_ctx *m, const HistogramDataPoint *p) {
  struct tr *t = m->t;
  struct lbl *base;
  size_t n;
  struct lbl *attrs = kv_attrs(t, p->attributes, p->n_attributes);
  if (!attrs)
    return -1;
  int rc = point_labels(t, m->r, m->ctx, m->n_ctx, attrs, p->n_attributes, &base, &n);
  if (rc)
    return rc;
  bool stale = p->flags & NO_RECORDED_VALUE;
  int64_t ts = to_ms(p->time_unix_nano);
  if (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM) {
    struct series *s = series_for(t, base, n, suffixed(t, m->name, "_sum"), NULL, NULL);
    if (!s)
      return -1;
    add_sample(t, s, ts, stale ? stale_nan() : p->sum);
  }
  struct series *cs = series_for(t, base, n, suffixed(t, m->name, "_count"), NULL, NULL);
  if (!cs)
    return -1;
  add_sample(t, cs, ts, stale ? stale_nan() : (double)p->count);
  const char *bucket = suffixed(t, m->name, "_bucket");
  size_t nb = p->n_explicit_bounds < p->n_bucket_counts ? p->n_explicit_bounds : p->n_bucket_counts;
  struct bound *bounds = arena_alloc(&t->tmp, (nb + 1) * sizeof *bounds);
  if (!bucket || !bounds)
    return -1;
  if (!m->le || m->le_n != nb ||
      (nb && memcmp(m->le_bounds, p->explicit_bounds, nb * sizeof(double)) != 0)) {
    m->le = arena_alloc(&t->a, (nb + 1) * sizeof *m->le);
    if (!m->le)
      return -1;
    for (size_t i = 0; i < nb; i++) {
      char le[FLOAT_BUF];
      if (!(m->le[i] = arena_strdup(&t->a, fmt_f(p->explicit_bounds[i], le))))
        return -1;
    }
    m->le_bounds = p->explicit_bounds;
    m->le_n = nb;
  }
  uint64_t cumulative = 0;
  for (size_t i = 0; i < nb; i++) {
    cumulative += p->bucket_counts[i];
    struct series *s = series_for(t, base, n, bucket, "le", m->le[i]);
    if (!s)
      return -1;
    add_sample(t, s, ts, stale ? stale_nan() : (double)cumulative);
    bounds[i] = (struct bound){p->explicit_bounds[i], s};
  }
  struct series *inf = series_for(t, base, n, bucket, "le", "+Inf");
  if (!inf)
    return -1;
  add_sample(t, inf, ts, stale ? stale_nan() : (double)p->count);
  bounds[nb] = (struct bound){INFINITY, inf};
  if (p->n_exemplars) {
    /* Each exemplar goes to the first bucket (by bound) that holds its value. */
    qsort(bounds, nb + 1, sizeof *bounds, cmp_bound);
    for (size_t i = 0; i < p->n_exemplars && !t->nomem; i++) {
      Prometheus__Exemplar *x = make_exemplar(t, p->exemplars[i]);
      if (!x)
        break;
      for (size_t j = 0; j <= nb; j++) {
        if (x->value <= bounds[j].bound) {
          add_exemplar(t, bounds[j].s, x);
          break;
        }
      }
    }
  }
  return t->nomem ? -1 : 0;
}

static int summary_point(const struct metric_ctx *m, const SummaryDataPoint *p) {
  struct tr *t = m->t;
  struct lbl *base;
  size_t n;
  struct lbl *attrs = kv_attrs(t, p->attributes, p->n_attributes);
  if (!attrs)
    return -1;
  int rc = point_labels(t, m->r, m->ctx, m->n_ctx, attrs, p->n_attributes, &base, &n);
  if (rc)
    return rc;
  bool stale = p->flags & NO_RECORDED_VALUE;
  int64_t ts = to_ms(p->time_unix_nano);
  struct series *s = series_for(t, base, n, suffixed(t, m->name, "_sum"), NULL, NULL);
  if (!s)
    return -1;
  add_sample(t, s, ts, stale ? stale_nan() : p->sum);
  s = series_for(t, base, n, suffixed(t, m->name, "_count"), NULL, NULL);
  if (!s)
    return -1;
  add_sample(t, s, ts, stale ? stale_nan() : (double)p->count);
  for (size_t i = 0; i < p->n_quantile_values; i++) {
    const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
        p->quantile_values[i];
    char qs[FLOAT_BUF];
    s = series_with(t, base, n, &m->name_l, "quantile", fmt_f(q->quantile, qs));
    if (!s)
      return -1;
    add_sample(t, s, ts, stale ? stale_nan() : q->value);
  }
  return t->nomem ? -1 : 0;
}

/* floor(v / 2^s), whatever the sign. */
static int64_t shr_floor(int64_t v, int s) {
  return v >= 0 ? v >> s : -((-v - 1) >> s) - 1;
}

struct layout {
  Prometheus__BucketSpan **spans;
  size_t n_spans, cap_spans;
  int64_t *deltas;
  size_t n_deltas, cap_deltas;
  uint64_t prev; /* counts are unsigned; a delta wraps like Go's int64(count - prev) */
};

static bool layout_span(struct tr *t, struct layout *l, int64_t offset) {
  Prometheus__BucketSpan *sp = arena_alloc(&t->a, sizeof *sp);
  Prometheus__BucketSpan **ns = arena_grow(&t->a, l->spans, l->n_spans, &l->cap_spans, sizeof *ns);
  if (!sp || !ns)
    return false;
  prometheus__bucket_span__init(sp);
  sp->offset = (int32_t)offset;
  l->spans = ns;
  l->spans[l->n_spans++] = sp;
  return true;
}

static bool layout_delta(struct tr *t, struct layout *l, uint64_t count) {
  int64_t *nd = arena_grow(&t->a, l->deltas, l->n_deltas, &l->cap_deltas, sizeof *nd);
  if (!nd)
    return false;
  l->deltas = nd;
  l->spans[l->n_spans - 1]->length++;
  l->deltas[l->n_deltas++] = (int64_t)(count - l->prev);
  l->prev = count;
  return true;
}

/* A gap of more than two buckets opens a new span; a smaller one is filled with empty buckets
 * (client_golang's rule, which the reference copies). */
static bool layout_gap(struct tr *t, struct layout *l, int64_t gap) {
  if (gap > 2)
    return layout_span(t, l, gap);
  for (int64_t i = 0; i < gap; i++)
    if (!layout_delta(t, l, 0))
      return false;
  return true;
}

/* OTLP's dense buckets to spans and deltas, merging 2^scale_down buckets into one, with the index
 * shifted by one: OTLP bucket 0 is (1, base], Prometheus's is (base^-1, 1]... (convertBucketsLayout
 * of the reference). */
static bool convert_buckets(struct tr *t, const ExpBuckets *b, int scale_down, struct layout *l) {
  memset(l, 0, sizeof *l);
  size_t n = b ? b->n_bucket_counts : 0;
  if (n == 0)
    return true;
  int64_t offset = b->offset;
  int64_t idx = shr_floor(offset, scale_down) + 1;
  if (!layout_span(t, l, idx))
    return false;
  uint64_t count = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t next = shr_floor((int64_t)i + offset, scale_down) + 1;
    if (idx == next) {
      count += b->bucket_counts[i];
      continue;
    }
    if (count == 0) {
      count = b->bucket_counts[i];
      continue;
    }
    if (!layout_gap(t, l, next - idx - 1) || !layout_delta(t, l, count))
      return false;
    count = b->bucket_counts[i];
    idx = next;
  }
  int64_t gap = shr_floor((int64_t)n + offset - 1, scale_down) + 1 - idx;
  return layout_gap(t, l, gap) && layout_delta(t, l, count);
}

static int exp_histogram_point(const struct metric_ctx *m, const ExpHistogramDataPoint *p) {
  struct tr *t = m->t;
  if (p->scale < -4)
    return 2;
  struct lbl *base;
  size_t n;
  struct lbl *attrs = kv_attrs(t, p->attributes, p->n_attributes);
  if (!attrs)
    return -1;
  int rc = point_labels(t, m->r, m->ctx, m->n_ctx, attrs, p->n_attributes, &base, &n);
  if (rc)
    return rc;
  int scale = p->scale, down = 0;
  if (scale > 8) {
    down = scale - 8;
    scale = 8;
  }
  Prometheus__Histogram *h = arena_alloc(&t->a, sizeof *h);
  struct layout pos, neg;
  if (!h || !convert_buckets(t, p->positive, down, &pos) ||
      !convert_buckets(t, p->negative, down, &neg))
    return -1;
  prometheus__histogram__init(h);
  h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__RESET_HINT_UNKNOWN;
  h->schema = scale;
  h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
  h->zero_count_int = p->zero_count;
  h->n_positive_spans = pos.n_spans;
  h->positive_spans = pos.spans;
  h->n_positive_deltas = pos.n_deltas;
  h->positive_deltas = pos.deltas;
  h->n_negative_spans = neg.n_spans;
  h->negative_spans = neg.spans;
  h->n_negative_deltas = neg.n_deltas;
  h->negative_deltas = neg.deltas;
  h->timestamp = to_ms(p->time_unix_nano);
  h->zero_threshold = p->zero_threshold != 0 ? p->zero_threshold : DEFAULT_ZERO_THRESHOLD;
  h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
  if (p->flags & NO_RECORDED_VALUE) {
    /* The reference marks a stale native histogram with the stale NaN as the sum and the same
     * bits as the integer count. */
    h->sum = stale_nan();
    h->count_int = STALE_NAN_BITS;
  } else {
    if (p->_sum_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM)
      h->sum = p->sum;
    h->count_int = p->count;
  }
  struct series *s = series_with(t, base, n, &m->name_l, NULL, NULL);
  if (!s)
    return -1;
  add_histogram(t, s, h);
  add_exemplars(t, s, p->exemplars, p->n_exemplars);
  return t->nomem ? -1 : 0;
}

/* What translation reads of a Metric, from its wire bytes. */
struct metric_head {
  const char *name, *desc, *unit; /* not NUL-terminated */
  size_t name_len, desc_len, unit_len;
  uint32_t data; /* the field number of the data (the last one given: a oneof), 0 for none */
  const uint8_t *data_p;
  size_t data_len;
  const uint8_t *p; /* the whole Metric, for its metadata */
  size_t len;
};

static bool read_metric_head(struct tr *t, const uint8_t *p, size_t len, struct metric_head *h) {
  memset(h, 0, sizeof *h);
  h->name = h->desc = h->unit = "";
  h->p = p;
  h->len = len;
  struct wire w = {p, p + len};
  struct otc_pb_field f;
  int rc;
  while ((rc = w_next(&w, &f)) > 0) {
    switch (f.num) {
    case 1:
    case 2:
    case 3:
    case 5:
    case 7:
    case 9:
    case 10:
    case 11:
    case 12:
      if (f.wt != OTC_WT_LEN)
        goto invalid;
      if (f.num == 1) {
        w_str(&f, &h->name, &h->name_len);
      } else if (f.num == 2) {
        w_str(&f, &h->desc, &h->desc_len);
      } else if (f.num == 3) {
        w_str(&f, &h->unit, &h->unit_len);
      } else if (f.num != 12) {
        h->data = f.num;
        h->data_p = f.data;
        h->data_len = f.len;
      }
      break;
    default:
      break;
    }
  }
  if (rc == 0)
    return true;
invalid:
  t->invalid = true;
  return false;
}

/* A Gauge's or Sum's wire bytes: the point count, and a sum's temporality and monotonicity. */
struct number_data {
  size_t points;
  int temporality;
  bool monotonic;
};

static bool read_number_data(struct tr *t, const struct metric_head *h, struct number_data *d) {
  memset(d, 0, sizeof *d);
  struct wire w = {h->data_p, h->data_p + h->data_len};
  struct otc_pb_field f;
  int rc;
  while ((rc = w_next(&w, &f)) > 0) {
    if (f.num == 1) {
      if (f.wt != OTC_WT_LEN)
        goto invalid;
      d->points++;
    } else if (h->data == 7 && (f.num == 2 || f.num == 3)) {
      if (f.wt != OTC_WT_VARINT)
        goto invalid;
      if (f.num == 2)
        d->temporality = (int32_t)(uint32_t)f.v;
      else
        d->monotonic = f.v != 0;
    }
  }
  if (rc == 0)
    return true;
invalid:
  t->invalid = true;
  return false;
}

/* The latest point time of a Gauge or Sum whose points are not translated (number_point reads it
 * of the others). */
static uint64_t number_latest(struct tr *t, const struct metric_head *h) {
  uint64_t latest = 0;
  struct wire w = {h->data_p, h->data_p + h->data_len};
  struct otc_pb_field f;
  while (w_next(&w, &f) > 0) {
    if (f.num != 1)
      continue;
    struct wire pw = {f.data, f.data + f.len};
    struct otc_pb_field pf;
    uint64_t time = 0;
    int rc;
    while ((rc = w_next(&pw, &pf)) > 0) {
      if (pf.num != 3)
        continue;
      if (pf.wt != OTC_WT_FIXED64)
        t->invalid = true;
      time = pf.v;
    }
    if (rc < 0)
      t->invalid = true;
    if (time > latest)
      latest = time;
  }
  return latest;
}

static Prometheus__MetricMetadata__MetricType metadata_type(struct tr *t,
                                                            const struct metric_head *h, int kind) {
  /* The first metadata entry named prometheus.type; its value when a string, else "". */
  const char *pt = NULL;
  struct wire w = {h->p, h->p + h->len};
  struct otc_pb_field f;
  while (!pt && w_next(&w, &f) > 0) {
    if (f.num != 12)
      continue;
    const KeyValue *kv = unpack_msg(
        t, &t->tmp, &opentelemetry__proto__common__v1__key_value__descriptor, f.data, f.len);
    if (!kv)
      break;
    if (strcmp(kv->key, "prometheus.type") == 0)
      pt = kv->value && kv->value->value_case ==
                            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
               ? kv->value->string_value
               : "";
  }
  switch (kind) {
  case OTC_PRW_KIND_GAUGE:
    return pt && strcmp(pt, "unknown") == 0 ? PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN
                                            : PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
  case OTC_PRW_KIND_COUNTER:
    return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
  case OTC_PRW_KIND_NONMONOTONIC:
    if (pt && strcmp(pt, "info") == 0)
      return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO;
    if (pt && strcmp(pt, "stateset") == 0)
      return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET;
    return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
  case OTC_PRW_KIND_HISTOGRAM:
  case OTC_PRW_KIND_EXP_HISTOGRAM:
    return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM;
  case OTC_PRW_KIND_SUMMARY:
    return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY;
  default:
    return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN;
  }
}

/* One metadata entry per metric family of the batch (the first one seen). */
static void add_metadata(struct tr *t, const struct metric_head *h, int kind, const char *family) {
  size_t flen = strlen(family);
  uint64_t hh = hash_bytes(HASH_SEED, family, flen);
  if (smap_get(&t->meta_seen, family, flen, hh))
    return;
  Prometheus__MetricMetadata *md = arena_alloc(&t->a, sizeof *md);
  Prometheus__MetricMetadata **nm = arena_grow(&t->a, t->meta, t->n_meta, &t->cap_meta, sizeof *nm);
  char *unit_in = arena_strndup(&t->tmp, h->unit, h->unit_len);
  char *desc = arena_strndup(&t->a, h->desc, h->desc_len);
  char *unit = unit_in ? prw__unit_name(unit_in) : NULL;
  if (!md || !nm || !unit || !desc) {
    free(unit);
    t->nomem = true;
    return;
  }
  t->meta = nm;
  prometheus__metric_metadata__init(md);
  md->type = metadata_type(t, h, kind);
  md->metric_family_name = (char *)family;
  md->unit = arena_strdup(&t->a, unit);
  md->help = (char *)valid_utf8(&t->a, desc);
  free(unit);
  if (t->invalid)
    return;
  if (!md->unit || !md->help || !smap_put(t, &t->meta_seen, family, flen, hh, md)) {
    t->nomem = true;
    return;
  }
  t->meta[t->n_meta++] = md;
}

/* A metric's Prometheus name and its __name__ label (packed ahead). */
struct pname {
  const char *s;
  struct lbl l;
};

static const struct pname invalid_metric_marker;

/* The Prometheus name of the metric, cached by (kind, name, unit): a batch holds many metrics of
 * few names. NULL with *dropped set when nothing valid is left of the name, NULL alone when out of
 * memory. */
static const struct pname *prom_name(struct tr *t, const struct metric_head *h, int kind,
                                     bool *dropped) {
  *dropped = false;
  size_t klen = 1 + h->name_len + 1 + h->unit_len;
  char *key = arena_alloc(&t->tmp, klen + 1);
  if (!key) {
    t->nomem = true;
    return NULL;
  }
  key[0] = (char)kind;
  memcpy(key + 1, h->name, h->name_len);
  key[1 + h->name_len] = '\0';
  memcpy(key + 2 + h->name_len, h->unit, h->unit_len);
  key[klen] = '\0';
  uint64_t hh = hash_bytes(HASH_SEED, key, klen);
  const struct pname *v = smap_get(&t->metric_names, key, klen, hh);
  if (!v) {
    struct sb nb = {0};
    bool ok = metric_name_into(key + 1, key + 2 + h->name_len, (enum otc_prw_metric_kind)kind,
                               t->ns, t->s->add_metric_suffixes, &nb);
    struct pname *pn = NULL;
    if (!nb.failed && ok && (pn = arena_alloc(&t->a, sizeof *pn)) != NULL &&
        (pn->s = arena_strdup(&t->a, nb.p)) != NULL) {
      pn->l = name_label(pn->s);
      if (!prepack(&t->a, &pn->l))
        pn = NULL;
    }
    v = nb.failed ? NULL : ok ? pn : &invalid_metric_marker;
    free(nb.p);
    char *kc = arena_alloc(&t->a, klen);
    if (!v || !kc) {
      t->nomem = true;
      return NULL;
    }
    memcpy(kc, key, klen);
    if (!smap_put(t, &t->metric_names, kc, klen, hh, v)) {
      t->nomem = true;
      return NULL;
    }
  }
  if (v == &invalid_metric_marker) {
    *dropped = true;
    return NULL;
  }
  return v;
}

/* Translates one metric's points (its wire bytes); counts drops. */
static void translate_metric(struct tr *t, struct res_ctx *r, const struct lbl *ctx, size_t n_ctx,
                             const uint8_t *p, size_t len) {
  struct metric_head h;
  if (!read_metric_head(t, p, len, &h))
    return;
  size_t points = 0;
  uint64_t latest = 0;
  int kind = -1, temporality = 0;
  const void *data = NULL; /* histograms and summaries: decoded */
  switch (h.data) {
  case 5:
  case 7: {
    struct number_data d;
    if (!read_number_data(t, &h, &d))
      return;
    points = d.points;
    temporality = d.temporality;
    if (h.data == 5)
      kind = OTC_PRW_KIND_GAUGE;
    else if (temporality == TEMPORALITY_CUMULATIVE)
      kind = d.monotonic ? OTC_PRW_KIND_COUNTER : OTC_PRW_KIND_NONMONOTONIC;
    break;
  }
  case 9: {
    const Histogram *m = data = unpack_msg(
        t, &t->a, &opentelemetry__proto__metrics__v1__histogram__descriptor, h.data_p, h.data_len);
    if (!m)
      return;
    points = m->n_data_points;
    for (size_t i = 0; i < points; i++)
      if (m->data_points[i]->time_unix_nano > latest)
        latest = m->data_points[i]->time_unix_nano;
    temporality = (int)m->aggregation_temporality;
    if (temporality == TEMPORALITY_CUMULATIVE)
      kind = OTC_PRW_KIND_HISTOGRAM;
    break;
  }
  case 10: {
    const ExpHistogram *m = data =
        unpack_msg(t, &t->a, &opentelemetry__proto__metrics__v1__exponential_histogram__descriptor,
                   h.data_p, h.data_len);
    if (!m)
      return;
    points = m->n_data_points;
    for (size_t i = 0; i < points; i++)
      if (m->data_points[i]->time_unix_nano > latest)
        latest = m->data_points[i]->time_unix_nano;
    temporality = (int)m->aggregation_temporality;
    if (temporality == TEMPORALITY_CUMULATIVE)
      kind = OTC_PRW_KIND_EXP_HISTOGRAM;
    break;
  }
  case 11: {
    const Summary *m = data = unpack_msg(
        t, &t->a, &opentelemetry__proto__metrics__v1__summary__descriptor, h.data_p, h.data_len);
    if (!m)
      return;
    points = m->n_data_points;
    for (size_t i = 0; i < points; i++)
      if (m->data_points[i]->time_unix_nano > latest)
        latest = m->data_points[i]->time_unix_nano;
    kind = OTC_PRW_KIND_SUMMARY;
    break;
  }
  default:
    break;
  }
  t->out->points += points;
  bool number = h.data == 5 || h.data == 7;
  if (kind < 0) {
    if (number)
      latest = number_latest(t, &h);
    if (latest > r->latest_ns)
      r->latest_ns = latest;
    t->out->dropped[temporality == TEMPORALITY_DELTA ? OTC_PRW_DROP_DELTA_TEMPORALITY
                                                     : OTC_PRW_DROP_UNSPECIFIED_TEMPORALITY] +=
        points;
    return;
  }
  bool dropped;
  const struct pname *pn = prom_name(t, &h, kind, &dropped);
  if (!pn) {
    if (number)
      latest = number_latest(t, &h);
    if (latest > r->latest_ns)
      r->latest_ns = latest;
    if (dropped)
      t->out->dropped[OTC_PRW_DROP_INVALID_NAME] += points;
    return;
  }
  if (latest > r->latest_ns)
    r->latest_ns = latest;
  if (t->s->send_metadata && points)
    add_metadata(t, &h, kind, pn->s);
  struct metric_ctx mc = {t, r, ctx, n_ctx, pn->s, pn->l, &r->latest_ns, NULL, 0, NULL};
  struct wire w = {h.data_p, h.data_p + h.data_len};
  for (size_t i = 0; i < points && !t->nomem && !t->invalid; i++) {
    int rc = 0;
    switch (kind) {
    case OTC_PRW_KIND_GAUGE:
    case OTC_PRW_KIND_NONMONOTONIC:
    case OTC_PRW_KIND_COUNTER: {
      /* The next data point (read_number_data checked every field). */
      struct otc_pb_field f;
      do {
        if (w_next(&w, &f) <= 0) {
          t->invalid = true;
          return;
        }
      } while (f.num != 1);
      rc = number_point(&mc, f.data, f.len, kind == OTC_PRW_KIND_COUNTER);
      break;
    }
    case OTC_PRW_KIND_HISTOGRAM:
      rc = histogram_point(&mc, ((const Histogram *)data)->data_points[i]);
      break;
    case OTC_PRW_KIND_EXP_HISTOGRAM:
      rc = exp_histogram_point(&mc, ((const ExpHistogram *)data)->data_points[i]);
      break;
    case OTC_PRW_KIND_SUMMARY:
      rc = summary_point(&mc, ((const Summary *)data)->data_points[i]);
      break;
    default:
      break;
    }
    arena_rewind(&t->tmp);
    if (rc < 0 && !t->invalid)
      t->nomem = true;
    else if (rc == 1)
      t->out->dropped[OTC_PRW_DROP_INVALID_LABEL]++;
    else if (rc == 2)
      t->out->dropped[OTC_PRW_DROP_UNSUPPORTED_SCALE]++;
  }
}

static bool is_service_key(const char *k) {
  return strcmp(k, "service.name") == 0 || strcmp(k, "service.namespace") == 0 ||
         strcmp(k, "service.instance.id") == 0;
}

static bool resource_attr_selected(const struct otc_prw_settings *s, const char *key) {
  switch (s->resource_labels) {
  case OTC_PRW_RESOURCE_ALL:
    return true;
  case OTC_PRW_RESOURCE_NO_SERVICE:
    return !is_service_key(key);
  case OTC_PRW_RESOURCE_MATCH:
    for (size_t i = 0; i < s->n_resource_excluded; i++)
      if (glob_match(s->resource_excluded[i], key))
        return false;
    if (s->n_resource_included == 0)
      return s->n_resource_excluded > 0;
    for (size_t i = 0; i < s->n_resource_included; i++)
      if (glob_match(s->resource_included[i], key))
        return true;
    return false;
  default:
    return false;
  }
}

/* job, instance and the converted attributes of a resource, in the arena. */
static bool resource_ctx(struct tr *t, const Resource *res, struct res_ctx *r) {
  memset(r, 0, sizeof *r);
  KeyValue *const *kv = res ? res->attributes : NULL;
  size_t n = res ? res->n_attributes : 0;
  const KeyValue *name = NULL, *ns = NULL, *inst = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!name && strcmp(kv[i]->key, "service.name") == 0)
      name = kv[i];
    else if (!ns && strcmp(kv[i]->key, "service.namespace") == 0)
      ns = kv[i];
    else if (!inst && strcmp(kv[i]->key, "service.instance.id") == 0)
      inst = kv[i];
  }
  if (name) {
    const char *v = value_string(&t->a, name->value);
    if (!v)
      return false;
    if (*v && ns) {
      const char *nsv = value_string(&t->a, ns->value);
      if (!nsv)
        return false;
      size_t a = strlen(nsv), b = strlen(v);
      char *j = arena_alloc(&t->a, a + b + 2);
      if (!j)
        return false;
      memcpy(j, nsv, a);
      j[a] = '/';
      memcpy(j + a + 1, v, b + 1);
      v = j;
    }
    if (*v && !(r->job = valid_utf8(&t->a, v)))
      return false;
  }
  if (inst) {
    const char *v = value_string(&t->a, inst->value);
    if (!v)
      return false;
    if (*v && !(r->instance = valid_utf8(&t->a, v)))
      return false;
  }
  if (t->s->resource_labels != OTC_PRW_RESOURCE_NONE && n) {
    r->conv = arena_alloc(&t->a, n * sizeof *r->conv);
    if (!r->conv)
      return false;
    for (size_t i = 0; i < n; i++) {
      if (!resource_attr_selected(t->s, kv[i]->key))
        continue;
      /* A key given twice: the later value wins, as a map would keep it. */
      size_t j = 0;
      while (j < r->n_conv && strcmp(r->conv[j].name, kv[i]->key) != 0)
        j++;
      const char *v = value_string(&t->a, kv[i]->value);
      if (!v)
        return false;
      r->conv[j] = lbl_make(kv[i]->key, v, PRIO_ATTR, (uint32_t)j);
      if (j == r->n_conv)
        r->n_conv++;
    }
  }
  return true;
}

/* The labels every point of a scope shares: job, instance, external labels and the scope's. */
static struct lbl *scope_ctx(struct tr *t, const struct res_ctx *r, const Scope *scope,
                             size_t *n_out) {
  size_t n_attrs = scope && t->s->scope_info ? scope->n_attributes : 0;
  size_t cap = 4 + t->s->n_external_labels + n_attrs;
  struct lbl *v = arena_alloc(&t->a, cap * sizeof *v);
  if (!v)
    return NULL;
  size_t n = 0;
  uint32_t order = 0;
  if (r->job)
    v[n++] = lbl_make("job", r->job, PRIO_JOB, order++);
  if (r->instance)
    v[n++] = lbl_make("instance", r->instance, PRIO_JOB, order++);
  for (size_t i = 0; i < t->s->n_external_labels; i++)
    v[n++] = lbl_make(t->s->external_labels[i].name, t->s->external_labels[i].value, PRIO_EXTERNAL,
                      order++);
  if (scope && t->s->scope_info) {
    if (scope->name && *scope->name) {
      const char *val = valid_utf8(&t->a, scope->name);
      if (!val)
        return NULL;
      v[n++] = lbl_make("otel_scope_name", val, PRIO_SCOPE, order++);
    }
    if (scope->version && *scope->version) {
      const char *val = valid_utf8(&t->a, scope->version);
      if (!val)
        return NULL;
      v[n++] = lbl_make("otel_scope_version", val, PRIO_SCOPE, order++);
    }
    for (size_t i = 0; i < n_attrs; i++) {
      const KeyValue *kv = scope->attributes[i];
      if (!strcmp(kv->key, "name") || !strcmp(kv->key, "version") || !strcmp(kv->key, "schema_url"))
        continue;
      struct sb b = {0};
      sb_puts(&b, "otel_scope_");
      sb_puts(&b, kv->key);
      char *ln = b.failed ? NULL : prw__label_name(b.p);
      free(b.p);
      const char *val = value_string(&t->a, kv->value);
      if (!ln || !val) {
        free(ln);
        return NULL;
      }
      const char *name = arena_strdup(&t->a, ln);
      val = valid_utf8(&t->a, val);
      free(ln);
      if (!name || !val)
        return NULL;
      v[n++] = lbl_make(name, val, PRIO_SCOPE, order++);
    }
  }
  *n_out = lbl_resolve(v, n);
  /* Packed once here for every series of the scope. */
  for (size_t i = 0; i < *n_out; i++) {
    v[i].src = SRC_CTX | (uint32_t)i;
    if (!prepack(&t->a, &v[i]))
      return NULL;
  }
  return v;
}

/* target_info: the resource's non-identifying attributes, with job and instance. */
static void add_target_info(struct tr *t, const Resource *res, const struct res_ctx *r) {
  if (!t->s->target_info || r->latest_ns == 0 || !res)
    return;
  size_t others = 0;
  for (size_t i = 0; i < res->n_attributes; i++)
    others += !is_service_key(res->attributes[i]->key);
  if (others == 0)
    return;
  KeyValue **attrs = arena_alloc(&t->tmp, others * sizeof *attrs);
  struct lbl ctx[2];
  size_t n_ctx = 0, n = 0;
  if (!attrs) {
    t->nomem = true;
    return;
  }
  for (size_t i = 0; i < res->n_attributes; i++)
    if (!is_service_key(res->attributes[i]->key))
      attrs[n++] = res->attributes[i];
  if (r->job)
    ctx[n_ctx++] = lbl_make("job", r->job, PRIO_JOB, 0);
  if (r->instance)
    ctx[n_ctx++] = lbl_make("instance", r->instance, PRIO_JOB, 1);
  struct lbl *ext = arena_alloc(&t->tmp, (n_ctx + t->s->n_external_labels) * sizeof *ext + 1);
  if (!ext) {
    t->nomem = true;
    return;
  }
  memcpy(ext, ctx, n_ctx * sizeof *ext);
  for (size_t i = 0; i < t->s->n_external_labels; i++)
    ext[n_ctx + i] = lbl_make(t->s->external_labels[i].name, t->s->external_labels[i].value,
                              PRIO_EXTERNAL, (uint32_t)(n_ctx + i));
  struct lbl *base;
  size_t nb;
  size_t n_ext = lbl_resolve(ext, n_ctx + t->s->n_external_labels);

  struct lbl *al = kv_attrs(t, attrs, n);
  if (!al) {
    t->nomem = true;
    return;
  }
  int rc = point_labels(t, NULL, ext, n_ext, al, n, &base, &nb);
  if (rc < 0)
    t->nomem = true;
  if (rc != 0)
    return;
  /* At least one identifying label, whoever set it (an attribute or external label named job
   * counts, as in the reference). */
  bool identified = false;
  for (size_t i = 0; i < nb && !identified; i++)
    identified = bytes_eq(base[i].name, base[i].name_len, "job", 3) ||
                 bytes_eq(base[i].name, base[i].name_len, "instance", 8);
  if (!identified)
    return;
  const char *name = "target_info";
  if (t->ns && *t->ns) {
    char *s = arena_alloc(&t->tmp, strlen(t->ns) + sizeof "_target_info");
    if (!s) {
      t->nomem = true;
      return;
    }
    sprintf(s, "%s_target_info", t->ns);
    name = s;
  }
  struct series *s = series_for(t, base, nb, name, NULL, NULL);
  if (!s)
    return;
  s->target_info = true;
  add_sample(t, s, to_ms(r->latest_ns), 1);
}

/* One ResourceMetrics (its wire bytes). The resource and each scope are decoded without their
 * scopes and metrics (once each, and small); the metrics are read from the wire. */
static void translate_resource(struct tr *t, const uint8_t *p, size_t len) {
  const ResourceMetrics *rm = unpack_without(
      t, &opentelemetry__proto__metrics__v1__resource_metrics__descriptor, p, len, 2);
  if (!rm)
    return;
  struct res_ctx r;
  if (!resource_ctx(t, rm->resource, &r)) {
    t->nomem = true;
    return;
  }
  struct wire w = {p, p + len};
  struct otc_pb_field f;
  int rc = 0;
  while (!t->nomem && !t->invalid && (rc = w_next(&w, &f)) > 0) {
    if (f.num != 2)
      continue;
    if (f.wt != OTC_WT_LEN) {
      t->invalid = true;
      return;
    }
    const ScopeMetrics *sm = unpack_without(
        t, &opentelemetry__proto__metrics__v1__scope_metrics__descriptor, f.data, f.len, 2);
    if (!sm)
      return;
    size_t n_ctx = 0;
    struct lbl *ctx = scope_ctx(t, &r, sm->scope, &n_ctx);
    if (!ctx) {
      t->nomem = true;
      return;
    }
    struct wire mw = {f.data, f.data + f.len};
    struct otc_pb_field mf;
    while (!t->nomem && !t->invalid && (rc = w_next(&mw, &mf)) > 0) {
      if (mf.num != 2)
        continue;
      if (mf.wt != OTC_WT_LEN) {
        t->invalid = true;
        return;
      }
      translate_metric(t, &r, ctx, n_ctx, mf.data, mf.len);
    }
    if (rc < 0)
      t->invalid = true;
  }
  if (rc < 0)
    t->invalid = true;
  if (!t->nomem && !t->invalid)
    add_target_info(t, rm->resource, &r);
  arena_rewind(&t->tmp);
}

/* --- output --- */

static int cmp_sample(const void *x, const void *y) {
  const struct sample *a = x, *b = y;
  return (a->ts > b->ts) - (a->ts < b->ts);
}

/* Sorts samples by time keeping the input order of equal timestamps (merge sort), then keeps the
 * last of each timestamp. Returns the new count. */
static size_t sort_samples(struct tr *t, struct sample *v, size_t n) {
  bool sorted = true;
  for (size_t i = 1; i < n && sorted; i++)
    sorted = v[i - 1].ts < v[i].ts;
  if (sorted)
    return n;
  struct sample *tmp = arena_alloc(&t->tmp, n * sizeof *tmp);
  if (!tmp) {
    t->nomem = true;
    return n;
  }
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        tmp[k++] = cmp_sample(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
      while (i < mid)
        tmp[k++] = v[i++];
      while (j < hi)
        tmp[k++] = v[j++];
    }
    memcpy(v, tmp, n * sizeof *v);
  }
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o && v[o - 1].ts == v[i].ts)
      v[o - 1] = v[i];
    else
      v[o++] = v[i];
  }
  return o;
}

static size_t sort_histograms(Prometheus__Histogram **v, size_t n) {
  /* Insertion sort: stable, and native histograms of one series are few per batch. */
  for (size_t i = 1; i < n; i++) {
    Prometheus__Histogram *x = v[i];
    size_t j = i;
    while (j > 0 && v[j - 1]->timestamp > x->timestamp) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = x;
  }
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o && v[o - 1]->timestamp == v[i]->timestamp)
      v[o - 1] = v[i];
    else
      v[o++] = v[i];
  }
  return o;
}

/* A series is written directly rather than through protobuf-c's generic size and pack passes,
 * which cost more than the translation: labels as get_series packed them, samples field by
 * field, and only the rare histograms and exemplars through protobuf-c. The fields come as
 * protobuf-c packs proto3 (in field order, zero numbers and empty strings left out), so the bytes
 * are the same. */

static size_t sample_len(const struct sample *sm) {
  /* protobuf-c leaves out a double that compares equal to 0 (so -0 too). */
  return (sm->v != 0 ? 9 : 0) + (sm->ts != 0 ? 1 + otc_varint_size((uint64_t)sm->ts) : 0);
}

/* The packed size of the TimeSeries of s. */
static size_t series_len(const struct series *s) {
  size_t n = 0;
  n += s->labels_len;
  for (size_t i = 0; i < s->n_samples; i++)
    n += otc_ld_size(sample_len(&s->samples[i]));
  for (size_t i = 0; i < s->n_exemplars; i++)
    n += otc_ld_size(prometheus__exemplar__get_packed_size(s->exemplars[i]));
  for (size_t i = 0; i < s->n_hists; i++)
    n += otc_ld_size(prometheus__histogram__get_packed_size(s->hists[i]));
  return n;
}

/* Writes s as WriteRequest field 1 (len: series_len(s)). */
static uint8_t *put_series(uint8_t *p, const struct series *s, size_t len) {
  *p++ = 1 << 3 | 2;
  p = otc_put_varint(p, len);
  memcpy(p, s->labels, s->labels_len);
  p += s->labels_len;
  for (size_t i = 0; i < s->n_samples; i++) {
    const struct sample *sm = &s->samples[i];
    *p++ = 2 << 3 | 2;
    p = otc_put_varint(p, sample_len(sm));
    if (sm->v != 0) {
      uint64_t bits;
      memcpy(&bits, &sm->v, sizeof bits);
      *p++ = 1 << 3 | 1;
      for (int b = 0; b < 8; b++)
        *p++ = (uint8_t)(bits >> (8 * b));
    }
    if (sm->ts != 0) {
      *p++ = 2 << 3;
      p = otc_put_varint(p, (uint64_t)sm->ts);
    }
  }
  for (size_t i = 0; i < s->n_exemplars; i++) {
    *p++ = 3 << 3 | 2;
    p = otc_put_varint(p, prometheus__exemplar__get_packed_size(s->exemplars[i]));
    p += prometheus__exemplar__pack(s->exemplars[i], p);
  }
  for (size_t i = 0; i < s->n_hists; i++) {
    *p++ = 4 << 3 | 2;
    p = otc_put_varint(p, prometheus__histogram__get_packed_size(s->hists[i]));
    p += prometheus__histogram__pack(s->hists[i], p);
  }
  return p;
}

/* Packs one request of len bytes (the sum of its entries, known from the split). */
static int add_request(struct tr *t, struct series **ts, const size_t *ts_len, size_t n_ts,
                       Prometheus__MetricMetadata **md, size_t n_md, size_t len) {
  struct otc_prw_write_set *out = t->out;
  if (out->n_requests % 8 == 0) {
    struct otc_prw_request *nr = realloc(out->requests, (out->n_requests + 8) * sizeof *nr);
    if (!nr)
      return OTC_ERR_NOMEM;
    out->requests = nr;
  }
  otc_mem_charge(len ? len : 1);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) {
    otc_mem_release(len ? len : 1);
    return OTC_ERR_NOMEM;
  }
  if (n_ts) {
    uint8_t *p = data;
    for (size_t i = 0; i < n_ts; i++)
      p = put_series(p, ts[i], ts_len[i]);
  } else {
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_metadata = n_md;
    wr.metadata = md;
    prometheus__write_request__pack(&wr, data);
  }
  struct otc_prw_request *r = &out->requests[out->n_requests++];
  memset(r, 0, sizeof *r);
  r->data = data;
  r->len = len;
  r->metadata = n_md;
  for (size_t i = 0; i < n_ts; i++) {
    r->series++;
    r->samples += ts[i]->n_samples;
    r->histograms += ts[i]->n_hists;
    r->exemplars += ts[i]->n_exemplars;
  }
  out->charged += len ? len : 1;
  out->series += r->series;
  out->samples += r->samples;
  out->histograms += r->histograms;
  out->exemplars += r->exemplars;
  out->metadata += n_md;
  return 0;
}

/* Builds the protobuf-c messages of every series and packs them into requests of at most
 * max_batch_bytes each. */
static int emit(struct tr *t) {
  size_t max = t->s->max_batch_bytes ? t->s->max_batch_bytes : OTC_PRW_DEFAULT_MAX_BATCH_BYTES;
  struct series **all = arena_alloc(&t->a, (t->n_series + 1) * sizeof *all);
  size_t *entry = arena_alloc(&t->a, (t->n_series + 1) * sizeof *entry);
  size_t *body = arena_alloc(&t->a, (t->n_series + 1) * sizeof *body);
  if (!all || !entry || !body)
    return OTC_ERR_NOMEM;
  size_t n = 0;
  for (size_t i = 0; i < t->n_series; i++) {
    struct series *s = t->list[i];
    s->n_samples = sort_samples(t, s->samples, s->n_samples);
    s->n_hists = sort_histograms(s->hists, s->n_hists);
    arena_rewind(&t->tmp);
    if (t->nomem)
      return OTC_ERR_NOMEM;
    if (s->n_samples == 0 && s->n_hists == 0)
      continue;
    body[n] = series_len(s);
    entry[n] = otc_ld_size(body[n]);
    all[n++] = s;
  }
  int rc;
  size_t start = 0, size = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > start && size + entry[i] > max) {
      if ((rc = add_request(t, all + start, body + start, i - start, NULL, 0, size)) != 0)
        return rc;
      start = i;
      size = 0;
    }
    size += entry[i];
  }
  if (n > start && (rc = add_request(t, all + start, body + start, n - start, NULL, 0, size)) != 0)
    return rc;
  /* Metadata goes in requests of its own, after the series, as the reference sends it; none when
   * there is no series (nothing would be sent). */
  if (n == 0)
    return 0;
  start = 0;
  size = 0;
  for (size_t i = 0; i < t->n_meta; i++) {
    size_t sz = prometheus__metric_metadata__get_packed_size(t->meta[i]);
    size_t e = 1 + otc_varint_size(sz) + sz;
    if (i > start && size + e > max) {
      if ((rc = add_request(t, NULL, NULL, 0, t->meta + start, i - start, size)) != 0)
        return rc;
      start = i;
      size = 0;
    }
    size += e;
  }
  if (t->n_meta > start &&
      (rc = add_request(t, NULL, NULL, 0, t->meta + start, t->n_meta - start, size)) != 0)
    return rc;
  return 0;
}

const char *otc_prw_drop_reason_name(enum otc_prw_drop_reason r) {
  switch (r) {
  case OTC_PRW_DROP_DELTA_TEMPORALITY:
    return "delta_temporality";
  case OTC_PRW_DROP_UNSPECIFIED_TEMPORALITY:
    return "unspecified_temporality";
  case OTC_PRW_DROP_INVALID_NAME:
    return "invalid_metric_name";
  case OTC_PRW_DROP_INVALID_LABEL:
    return "invalid_label_name";
  case OTC_PRW_DROP_UNSUPPORTED_SCALE:
    return "unsupported_scale";
  default:
    return "unknown";
  }
}

int otc_prw_translate(const uint8_t *otlp, size_t len, const struct otc_prw_settings *s,
                      struct otc_prw_write_set *out) {
  return otc_prw_translate_with(NULL, otlp, len, s, out);
}

int otc_prw_translate_with(struct otc_prw_scratch *sc, const uint8_t *otlp, size_t len,
                           const struct otc_prw_settings *s, struct otc_prw_write_set *out) {
  int rc = 0;
  struct tr t;
  memset(&t, 0, sizeof t);
  memset(out, 0, sizeof *out);
  if (sc)
    t.a.spare = t.tmp.spare = &sc->spare;
  t.s = s;
  t.out = out;
  struct otc_wire_stats st;
  char why[128];
  if (otc_wire_scan(OTC_SIGNAL_METRICS, otlp, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why,
                    sizeof why) != 0) {
    rc = OTC_ERR_INVALID;
    goto cleanup;
  }
  if (s->namespace_ && *s->namespace_) {
    struct sb ns = {0};
    fields_join(s->namespace_, &ns);
    t.ns = ns.failed ? NULL : arena_strdup(&t.a, ns.p);
    free(ns.p);
    if (!t.ns) {
      rc = OTC_ERR_NOMEM;
      goto cleanup;
    }
  }
  struct wire w = {otlp, otlp + len};
  struct otc_pb_field f;
  int wrc = 0;
  while (!t.nomem && !t.invalid && (wrc = w_next(&w, &f)) > 0) {
    if (f.num != 1)
      continue;
    if (f.wt != OTC_WT_LEN) {
      t.invalid = true;
      break;
    }
    translate_resource(&t, f.data, f.len);
  }
  if (wrc < 0)
    t.invalid = true;
  if (t.nomem || t.a.failed || t.tmp.failed) {
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  if (t.invalid) {
    rc = OTC_ERR_INVALID;
    goto cleanup;
  }
  rc = emit(&t);
cleanup:
  if (sc) {
    arena_keep(&t.tmp, &sc->spare);
    arena_keep(&t.a, &sc->spare);
    scratch_trim(sc);
  } else {
    arena_free(&t.tmp);
    arena_free(&t.a);
  }
  if (rc != 0) {
    /* Counts of what was read stay for the caller's logs; no request survives a failure. Bytes
     * that do not decode count nothing, as when they were all decoded before translating. */
    uint64_t points = out->points, dropped[OTC_PRW_DROP_COUNT];
    memcpy(dropped, out->dropped, sizeof dropped);
    if (rc == OTC_ERR_INVALID) {
      points = 0;
      memset(dropped, 0, sizeof dropped);
    }
    otc_prw_write_set_free(out);
    out->points = points;
    memcpy(out->dropped, dropped, sizeof dropped);
  }
  return rc;
}

void otc_prw_write_set_free(struct otc_prw_write_set *ws) {
  if (!ws)
    return;
  for (size_t i = 0; i < ws->n_requests; i++)
    free(ws->requests[i].data);
  free(ws->requests);
  otc_mem_release(ws->charged);
  memset(ws, 0, sizeof *ws);
}
