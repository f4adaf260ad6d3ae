/* OTLP logs → Loki push body (see loki_encode.h for the mapping).
 *
 * Two translations with the same output. The default one (protobuf push body with structured
 * metadata, see "the direct translation" below) reads the wire bytes in one pass and writes each
 * entry's bytes directly. The other (JSON, logfmt lines, and input whose singular fields protobuf
 * would merge) decodes the request into an arena (protobuf-c through a ProtobufCAllocator that
 * never frees), builds every string, stream and entry in the same arena and packs the result. Both
 * drop their memory in one go at the end: no per-record malloc/free on the hot path, and the
 * working set is charged to the memory accounting while it exists.
 *
 * Values are written as pdata's Value.AsString writes them, which is what Loki's OTLP endpoint
 * stores: numbers in Go's (ES6) shortest form, bytes in base64, maps and arrays as JSON with the
 * keys sorted. That JSON is written here rather than with jansson because jansson prints doubles
 * with 17 significant digits (0.1 → 0.10000000000000001) and would need a tree per record; the
 * push body's own JSON form (format: json) does use jansson. */
#include "loki/loki_encode.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/numfmt.h"
#include "common/pb_read.h"
#include "common/pbfast.h"
#include "core/errors.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
#include "core/pb_varint.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsRequest;

/* The wire scan refuses AnyValue nesting deeper than OTC_WIRE_DEFAULT_MAX_DEPTH, so the recursive
 * writers below never see more; this second bound only keeps them safe on their own. */
#define MAX_VALUE_DEPTH 128

#define ARENA_MIN_CHUNK ((size_t)64 * 1024)
#define ARENA_MAX_CHUNK ((size_t)4 * 1024 * 1024)

const char *const otc_loki_default_resource_labels[] = {
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
};
const size_t otc_loki_default_resource_labels_count =
    sizeof otc_loki_default_resource_labels / sizeof otc_loki_default_resource_labels[0];

/* Loki's default discover_service_name: when a resource has no service.name, the first index label
 * (in attribute order) with one of these names gives service_name. */
static const char *const service_name_sources[] = {
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
};

/* --- the arena --- */

struct chunk {
  struct chunk *next;
  size_t size, used;
  max_align_t data[];
};

struct arena {
  struct chunk *head;
  size_t next_size;
  size_t charged;
  bool pb_failed; /* an allocation for the decoder failed */
};

static struct chunk *arena_chunk(struct arena *a, size_t size) {
  if (size > SIZE_MAX - sizeof(struct chunk))
    return NULL;
  struct chunk *c = malloc(sizeof *c + size);
  if (!c)
    return NULL;
  otc_mem_charge(sizeof *c + size);
  a->charged += sizeof *c + size;
  c->size = size;
  c->used = 0;
  return c;
}

/* Returns n bytes aligned for any type, or NULL when out of memory. Memory lives until
 * arena_free. */
static void *arena_alloc(struct arena *a, size_t n) {
  const size_t align = _Alignof(max_align_t);
  if (n > SIZE_MAX - align)
    return NULL;
  n = (n + align - 1) & ~(align - 1);
  if (n == 0)
    n = align;
  struct chunk *c = a->head;
  if (c && c->size - c->used >= n) {
    void *p = (unsigned char *)c->data + c->used;
    c->used += n;
    return p;
  }
  if (n >= ARENA_MIN_CHUNK / 2) {
    /* A large block gets a chunk of its own behind the current one, so that the space left in
     * the current chunk is not wasted. */
    struct chunk *big = arena_chunk(a, n);
    if (!big)
      return NULL;
    big->used = n;
    if (c) {
      big->next = c->next;
      c->next = big;
    } else {
      big->next = NULL;
      a->head = big;
    }
    return big->data;
  }
  size_t size = a->next_size < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : a->next_size;
  struct chunk *nc = arena_chunk(a, size);
  if (!nc)
    return NULL;
  nc->next = a->head;
  a->head = nc;
  if (size < ARENA_MAX_CHUNK)
    a->next_size = size * 2;
  nc->used = n;
  return nc->data;
}

static void arena_free(struct arena *a) {
  struct chunk *c = a->head;
  while (c) {
    struct chunk *next = c->next;
    free(c);
    c = next;
  }
  otc_mem_release(a->charged);
  a->head = NULL;
  a->charged = 0;
}

static void *pb_alloc(void *data, size_t size) {
  void *p = arena_alloc(data, size);
  if (!p)
    ((struct arena *)data)->pb_failed = true;
  return p;
}

static void pb_free(void *data, void *p) {
  (void)data;
  (void)p; /* freed with the arena */
}

static char *arena_strndup(struct arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* --- a growing text buffer (malloc'd, reused across records) --- */

struct buf {
  char *p;
  size_t len, cap;
  bool failed;
};

static bool buf_reserve(struct buf *b, size_t extra) {
  if (b->failed)
    return false;
  if (extra < b->cap - b->len)
    return true;
  if (extra > SIZE_MAX / 2 - b->len) {
    b->failed = true;
    return false;
  }
  size_t ncap = b->cap ? b->cap : 256;
  while (ncap - b->len <= extra)
    ncap *= 2;
  char *np = realloc(b->p, ncap);
  if (!np) {
    b->failed = true;
    return false;
  }
  b->p = np;
  b->cap = ncap;
  return true;
}

static void buf_put(struct buf *b, const void *s, size_t n) {
  if (!buf_reserve(b, n))
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s) {
  buf_put(b, s, strlen(s));
}

static void buf_putc(struct buf *b, char c) {
  buf_put(b, &c, 1);
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    b->failed = true;
    return;
  }
  buf_put(b, tmp, (size_t)n);
}

static void put_i64(struct buf *b, int64_t v) {
  char tmp[OTC_NUM_INT_BUF];
  buf_put(b, tmp, otc_num__i64(v, tmp));
}

/* --- strings --- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid, as in Go). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return len;
}

static const char replacement_char[] = "\xEF\xBF\xBD";

enum escape { ESC_NONE, ESC_JSON };

/* Appends s with each invalid UTF-8 byte replaced by U+FFFD (as Go's encoders do: every string
 * Loki receives must be valid UTF-8, and jansson refuses anything else), JSON-escaped if asked. */
static void put_text(struct buf *b, const char *s, size_t n, enum escape esc) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  if (esc == ESC_NONE) {
    /* Plain ASCII, nearly every string, is copied as it is: found eight bytes at a time. */
    uint64_t w;
    while (i + 8 <= n && (memcpy(&w, u + i, 8), (w & 0x8080808080808080ULL) == 0))
      i += 8;
    while (i < n && u[i] < 0x80)
      i++;
    buf_put(b, s, i);
  }
  while (i < n) {
    size_t run = i;
    /* Bytes that need no attention are copied in runs. */
    while (run < n && u[run] < 0x80 && u[run] >= 0x20 &&
           (esc == ESC_NONE || (u[run] != '"' && u[run] != '\\')))
      run++;
    if (esc == ESC_NONE)
      while (run < n && u[run] < 0x80)
        run++;
    buf_put(b, s + i, run - i);
    i = run;
    if (i >= n)
      break;
    unsigned c = u[i];
    if (c < 0x80) {
      /* Only reached when escaping JSON. */
      switch (c) {
      case '"':
        buf_puts(b, "\\\"");
        break;
      case '\\':
        buf_puts(b, "\\\\");
        break;
      case '\n':
        buf_puts(b, "\\n");
        break;
      case '\r':
        buf_puts(b, "\\r");
        break;
      case '\t':
        buf_puts(b, "\\t");
        break;
      case '\b':
        buf_puts(b, "\\b");
        break;
      case '\f':
        buf_puts(b, "\\f");
        break;
      default:
        buf_printf(b, "\\u%04x", c);
        break;
      }
      i++;
      continue;
    }
    size_t l = utf8_seq(u + i, n - i);
    if (l == 0) {
      buf_put(b, replacement_char, 3);
      i++;
    } else {
      buf_put(b, s + i, l);
      i += l;
    }
  }
}

/* Appends s with every character outside [A-Za-z0-9_] replaced by one `_` (per character, not per
 * byte). */
static void put_sanitized(struct buf *b, const char *s, size_t n) {
  /* One character never writes more than one byte, so one reservation covers the whole name. */
  if (!buf_reserve(b, n))
    return;
  const unsigned char *u = (const unsigned char *)s;
  char *o = b->p + b->len;
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
      *o++ = (char)c;
      i++;
      continue;
    }
    *o++ = '_';
    size_t l = c < 0x80 ? 1 : utf8_seq(u + i, n - i);
    i += l ? l : 1;
  }
  b->len = (size_t)(o - b->p);
  b->p[b->len] = '\0';
}

/* A label name as Loki's OTLP endpoint writes it (otlptranslator.NormalizeLabel): characters
 * outside [A-Za-z0-9_] become `_`, a leading digit gets the prefix `key_` and a leading `_` the
 * prefix `key`. Unlike NormalizeLabel, a leading `__` gets the prefix too, which keeps names out of
 * the `__` namespace that Loki reserves, and non-ASCII letters become `_` as well, which keeps the
 * names valid for Loki servers that check them the classic Prometheus way. */
static void put_label_name(struct buf *b, const char *s, size_t n) {
  if (n == 0)
    return;
  unsigned char c0 = (unsigned char)s[0];
  if (c0 >= '0' && c0 <= '9')
    buf_puts(b, "key_");
  else if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z')))
    buf_puts(b, "key");
  put_sanitized(b, s, n);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(struct buf *b, const uint8_t *d, size_t n) {
  if (!buf_reserve(b, (n + 2) / 3 * 4))
    return;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)d[i + 1] << 8;
    if (i + 2 < n)
      v |= d[i + 2];
    char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                 i + 2 < n ? b64[v & 63] : '='};
    buf_put(b, q, 4);
  }
}

/* A double as Go's pdata writes it (ES6 number to string): the fewest digits that read back, in
 * fixed notation from 1e-6 to 1e21, else with an unpadded exponent. Not finite: NaN, +Inf, -Inf
 * (strconv's 'g' form). */
static void put_double(struct buf *b, double v) {
  if (isnan(v)) {
    buf_puts(b, "NaN");
    return;
  }
  if (isinf(v)) {
    buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  /* Room for the sign, "0." and 5 zeros, 17 digits, or 21 integer digits. */
  char out[48];
  size_t o = 0;
  if (signbit(v))
    out[o++] = '-';
  if (v == 0) {
    out[o++] = '0';
    buf_put(b, out, o);
    return;
  }
  char d[OTC_NUM_DIGITS_BUF];
  int exp10 = 0;
  int nd = otc_num__shortest(fabs(v), d, &exp10);
  double a = fabs(v);
  if (a >= 1e-6 && a < 1e21) {
    if (exp10 >= 0) {
      for (int i = 0; i <= exp10; i++)
        out[o++] = i < nd ? d[i] : '0';
      if (nd > exp10 + 1) {
        out[o++] = '.';
        for (int i = exp10 + 1; i < nd; i++)
          out[o++] = d[i];
      }
    } else {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = 0; i < -exp10 - 1; i++)
        out[o++] = '0';
      for (int i = 0; i < nd; i++)
        out[o++] = d[i];
    }
    buf_put(b, out, o);
    return;
  }
  /* 1.5e-07 → 1.5e-7, 1e+21 stays. */
  out[o++] = d[0];
  if (nd > 1) {
    out[o++] = '.';
    for (int i = 1; i < nd; i++)
      out[o++] = d[i];
  }
  out[o++] = 'e';
  out[o++] = exp10 < 0 ? '-' : '+';
  o += otc_num__u64((uint64_t)(exp10 < 0 ? -exp10 : exp10), out + o);
  buf_put(b, out, o);
}

struct sorted_kv {
  const KeyValue *kv;
  size_t index;
};

static int cmp_sorted_kv(const void *pa, const void *pb) {
  const struct sorted_kv *a = pa, *b = pb;
  int c = strcmp(a->kv->key, b->kv->key);
  if (c)
    return c;
  return a->index < b->index ? -1 : a->index > b->index;
}

static void put_json_value(struct buf *b, struct arena *ar, const AnyValue *v, int depth);

/* A map as Go marshals map[string]any: keys sorted, a repeated key written once (the last). */
static void put_json_map(struct buf *b, struct arena *ar, KeyValue **kvs, size_t n, int depth) {
  buf_putc(b, '{');
  struct sorted_kv *s = n ? arena_alloc(ar, n * sizeof *s) : NULL;
  if (n && !s) {
    b->failed = true;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    s[i].kv = kvs[i];
    s[i].index = i;
  }
  if (n > 1)
    qsort(s, n, sizeof *s, cmp_sorted_kv);
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && strcmp(s[i].kv->key, s[i + 1].kv->key) == 0)
      continue;
    if (!first)
      buf_putc(b, ',');
    first = false;
    buf_putc(b, '"');
    put_text(b, s[i].kv->key, strlen(s[i].kv->key), ESC_JSON);
    buf_puts(b, "\":");
    put_json_value(b, ar, s[i].kv->value, depth + 1);
  }
  buf_putc(b, '}');
}

static void put_json_value(struct buf *b, struct arena *ar, const AnyValue *v, int depth) {
  if (!v || depth > MAX_VALUE_DEPTH) {
    buf_puts(b, "null");
    return;
  }
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    buf_putc(b, '"');
    put_text(b, v->string_value, strlen(v->string_value), ESC_JSON);
    buf_putc(b, '"');
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    buf_puts(b, v->bool_value ? "true" : "false");
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    put_i64(b, v->int_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    /* JSON has no NaN or infinities. */
    if (isfinite(v->double_value))
      put_double(b, v->double_value);
    else
      buf_puts(b, "null");
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    buf_putc(b, '"');
    put_base64(b, v->bytes_value.data, v->bytes_value.len);
    buf_putc(b, '"');
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    buf_putc(b, '[');
    for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
      if (i)
        buf_putc(b, ',');
      put_json_value(b, ar, v->array_value->values[i], depth + 1);
    }
    buf_putc(b, ']');
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
    put_json_map(b, ar, v->kvlist_value ? v->kvlist_value->values : NULL,
                 v->kvlist_value ? v->kvlist_value->n_values : 0, depth);
    break;
  default:
    buf_puts(b, "null");
    break;
  }
}

/* pdata's Value.AsString. */
static void put_value_string(struct buf *b, struct arena *ar, const AnyValue *v) {
  if (!v)
    return;
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    put_text(b, v->string_value, strlen(v->string_value), ESC_NONE);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    buf_puts(b, v->bool_value ? "true" : "false");
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    put_i64(b, v->int_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    put_double(b, v->double_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    put_base64(b, v->bytes_value.data, v->bytes_value.len);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
    put_json_value(b, ar, v, 0);
    break;
  default:
    break;
  }
}

/* Whether AsString of v is not empty (Loki's test for a usable service.name). */
static bool value_nonempty(const AnyValue *v) {
  if (!v)
    return false;
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    return v->string_value[0] != '\0';
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    return v->bytes_value.len > 0;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
    return false;
  default:
    return true;
  }
}

/* --- name/value pairs --- */

struct kv {
  const char *name, *value;
};

/* A growing array of pairs (malloc'd scratch, reused). */
struct kvvec {
  struct kv *v;
  size_t n, cap;
  bool failed;
};

static void kv_push(struct kvvec *kv, const char *name, const char *value) {
  if (kv->failed)
    return;
  if (!name || !value) {
    kv->failed = true;
    return;
  }
  if (kv->n == kv->cap) {
    size_t ncap = kv->cap ? kv->cap * 2 : 16;
    struct kv *nv = realloc(kv->v, ncap * sizeof *nv);
    if (!nv) {
      kv->failed = true;
      return;
    }
    kv->v = nv;
    kv->cap = ncap;
  }
  kv->v[kv->n].name = name;
  kv->v[kv->n].value = value;
  kv->n++;
}

/* A run of pairs in the arena, shared by every entry of a resource or scope; pb is its protobuf
 * form, built on first use. */
struct kvs {
  const struct kv *v;
  size_t n;
  const uint8_t *wire; /* the pairs as EntryAdapter field 3, encoded on first use */
  size_t wire_len;
};

/* An attribute key and its label name (see put_label_name_cached). */
#define NAME_CACHE_SIZE 64
struct name_cache {
  const char *key;
  size_t key_n;
  const char *name;
  size_t name_n;
};

struct enc {
  const struct loki_mapping_cfg *cfg;
  struct arena ar;
  struct buf tmp, line;
  struct kvvec scratch, own, labels;
  uint64_t now;
  bool nomem;
  /* The direct translation's scratch: a pair's name and value, one entry's bytes, the metadata
   * pairs of the current resource and scope, the resource's labels, and the lengths of the
   * configured label names. */
  struct buf name, val, ent, rmd, smd;
  struct kvvec base;
  size_t *res_label_len, *rec_label_len;
  struct name_cache names[NAME_CACHE_SIZE];
  size_t ent_charged; /* of ent's capacity, charged to the memory accounting */
  bool fallback;      /* input the direct translation leaves to the decoding one */
};

static const char *arena_buf(struct enc *e, struct buf *b, size_t from) {
  if (b->failed) {
    e->nomem = true;
    return NULL;
  }
  const char *p = arena_strndup(&e->ar, b->p ? b->p + from : "", b->len - from);
  if (!p)
    e->nomem = true;
  return p;
}

/* Adds attribute key=v to out, flattening a map into `<key>_<subkey>` pairs as Loki does; names
 * normalized, values as AsString. prefix is an already normalized name or NULL. */
static void add_attr(struct enc *e, struct kvvec *out, const char *prefix, const char *key,
                     const AnyValue *v, int depth) {
  if (depth > MAX_VALUE_DEPTH)
    return;
  struct buf *t = &e->tmp;
  t->len = 0;
  if (prefix && *prefix) {
    buf_puts(t, prefix);
    buf_putc(t, '_');
    /* The prefix already starts with a letter, so only the characters need fixing. */
    put_sanitized(t, key, strlen(key));
  } else {
    put_label_name(t, key, strlen(key));
  }
  const char *name = arena_buf(e, t, 0);
  if (!name)
    return;
  if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE) {
    for (size_t i = 0; v->kvlist_value && i < v->kvlist_value->n_values; i++) {
      const KeyValue *c = v->kvlist_value->values[i];
      add_attr(e, out, name, c->key, c->value, depth + 1);
    }
    return;
  }
  if (!*name)
    return; /* an empty key makes no valid label name */
  t->len = 0;
  put_value_string(t, &e->ar, v);
  kv_push(out, name, arena_buf(e, t, 0));
}

static bool in_list(const char *key, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (list[i] && strcmp(list[i], key) == 0)
      return true;
  return false;
}

/* v in decimal, in the arena (NULL and e->nomem set when out of memory). */
static const char *arena_u64(struct enc *e, uint64_t v) {
  char tmp[OTC_NUM_INT_BUF];
  const char *p = arena_strndup(&e->ar, tmp, otc_num__u64(v, tmp));
  if (!p)
    e->nomem = true;
  return p;
}

static const char *arena_i64(struct enc *e, int64_t v) {
  char tmp[OTC_NUM_INT_BUF];
  const char *p = arena_strndup(&e->ar, tmp, otc_num__i64(v, tmp));
  if (!p)
    e->nomem = true;
  return p;
}

/* Hex of an id, or NULL when it is not of the expected length or all zero (pdata's IsEmpty). */
static const char *hex_id(struct enc *e, ProtobufCBinaryData id, size_t want) {
  if (id.len != want)
    return NULL;
  bool zero = true;
  for (size_t i = 0; i < id.len; i++)
    zero = zero && id.data[i] == 0;
  if (zero)
    return NULL;
  char *p = arena_alloc(&e->ar, id.len * 2 + 1);
  if (!p) {
    e->nomem = true;
    return NULL;
  }
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < id.len; i++) {
    p[2 * i] = hex[id.data[i] >> 4];
    p[2 * i + 1] = hex[id.data[i] & 15];
  }
  p[id.len * 2] = '\0';
  return p;
}

static struct kvs *arena_kvs(struct enc *e, const struct kvvec *v) {
  struct kvs *k = arena_alloc(&e->ar, sizeof *k);
  struct kv *a = v->n ? arena_alloc(&e->ar, v->n * sizeof *a) : NULL;
  if (!k || (v->n && !a)) {
    e->nomem = true;
    return NULL;
  }
  if (v->n)
    memcpy(a, v->v, v->n * sizeof *a);
  k->v = a;
  k->n = v->n;
  k->wire = NULL;
  k->wire_len = 0;
  return k;
}

/* --- severity → level --- */

static const char *const level_by_range[] = {"trace", "debug", "info", "warn", "error", "fatal"};

static bool text_is(const char *lower, const char *const *names) {
  for (; *names; names++)
    if (strcmp(lower, *names) == 0)
      return true;
  return false;
}

/* The `level` label: from the severity number's range (1-4 trace ... 21-24 fatal), else from the
 * severity text (n bytes, common spellings folded to those names, anything else lowercased), else
 * "unknown". *fixed says whether the result is one of the fixed names (the same pointer for the
 * same name) rather than a lowercased text in the arena. */
static const char *level_from(struct enc *e, int num, const char *text, size_t n, bool *fixed) {
  *fixed = true;
  if (num >= 1 && num <= 24)
    return level_by_range[(num - 1) / 4];
  if (n == 0)
    return "unknown";
  static const char *const trace[] = {"trace", "trc", NULL};
  static const char *const debug[] = {"debug", "dbg", NULL};
  static const char *const info[] = {"info", "inf", "information", "informational", NULL};
  static const char *const warn[] = {"warn", "wrn", "warning", NULL};
  static const char *const error[] = {"error", "err", "eror", NULL};
  static const char *const fatal[] = {"fatal", "ftl",       "critical", "crit", "alert",
                                      "emerg", "emergency", "panic",    NULL};
  struct buf *t = &e->tmp;
  t->len = 0;
  if (!buf_reserve(t, n)) {
    e->nomem = true;
    return "unknown";
  }
  for (size_t i = 0; i < n; i++)
    t->p[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] - 'A' + 'a') : text[i];
  t->len = n;
  t->p[n] = '\0';
  if (text_is(t->p, trace))
    return level_by_range[0];
  if (text_is(t->p, debug))
    return level_by_range[1];
  if (text_is(t->p, info))
    return level_by_range[2];
  if (text_is(t->p, warn))
    return level_by_range[3];
  if (text_is(t->p, error))
    return level_by_range[4];
  if (text_is(t->p, fatal))
    return level_by_range[5];
  *fixed = false;
  struct buf *l = &e->line; /* free here: both translations finish a line before its labels */
  l->len = 0;
  put_text(l, t->p, t->len, ESC_NONE);
  const char *s = arena_buf(e, l, 0);
  return s ? s : "unknown";
}

static const char *level_of(struct enc *e, const LogRecord *r) {
  const char *text = r->severity_text ? r->severity_text : "";
  bool fixed;
  return level_from(e, (int)r->severity_number, text, strlen(text), &fixed);
}

/* --- labels and streams --- */

/* Sorts pairs by name (stably) and keeps the last of each name, unless its value is empty: an empty
 * label value means no label in Loki (as in Prometheus). */
static void sort_dedupe(struct kvvec *v) {
  for (size_t i = 1; i < v->n; i++) {
    struct kv x = v->v[i];
    size_t j = i;
    while (j > 0 && strcmp(v->v[j - 1].name, x.name) > 0) {
      v->v[j] = v->v[j - 1];
      j--;
    }
    v->v[j] = x;
  }
  size_t o = 0;
  for (size_t i = 0; i < v->n; i++) {
    if (i + 1 < v->n && strcmp(v->v[i].name, v->v[i + 1].name) == 0)
      continue;
    if (v->v[i].value[0] != '\0')
      v->v[o++] = v->v[i];
  }
  v->n = o;
}

static bool has_label(const struct kvvec *v, const char *name) {
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->v[i].name, name) == 0)
      return true;
  return false;
}

/* A label value inside the selector's double quotes, escaped as a Go string literal (Loki parses
 * the selector with its LogQL parser). */
static void put_label_value(struct buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
    case '\\':
      buf_puts(b, "\\\\");
      break;
    case '"':
      buf_puts(b, "\\\"");
      break;
    case '\n':
      buf_puts(b, "\\n");
      break;
    case '\r':
      buf_puts(b, "\\r");
      break;
    case '\t':
      buf_puts(b, "\\t");
      break;
    default:
      if (c < 0x20 || c == 0x7f)
        buf_printf(b, "\\x%02x", c);
      else
        buf_putc(b, (char)c);
    }
  }
}

struct entry {
  uint64_t ts;
  size_t seq;
  const char *line;
  const struct kv *own;
  size_t n_own;
  struct kvs *res, *scope;
  size_t size; /* packed size of the EntryAdapter, during encode_protobuf */
  /* The direct translation: the entry's own fields (timestamp, line and its own metadata pairs)
   * already encoded, at wire_off in enc.ent; res and scope add their shared pairs after them. */
  size_t wire_off, wire_len;
};

struct stream {
  const char *selector;
  struct kv *labels;
  size_t n_labels;
  uint64_t hash;
  struct entry *e;
  size_t n, cap;
};

struct streams {
  struct stream *s;
  size_t n, cap;
  uint32_t *table; /* stream index + 1, 0 = empty; open addressing */
  size_t table_cap;
};

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static bool table_grow(struct enc *e, struct streams *st) {
  size_t ncap = st->table_cap ? st->table_cap * 2 : 64;
  uint32_t *nt = arena_alloc(&e->ar, ncap * sizeof *nt);
  if (!nt)
    return false;
  memset(nt, 0, ncap * sizeof *nt);
  for (size_t i = 0; i < st->n; i++) {
    size_t k = (size_t)st->s[i].hash & (ncap - 1);
    while (nt[k])
      k = (k + 1) & (ncap - 1);
    nt[k] = (uint32_t)(i + 1);
  }
  st->table = nt;
  st->table_cap = ncap;
  return true;
}

/* The stream with the labels in e->labels (sorted), created if new. Returns its index or -1 when
 * out of memory. */
static long stream_for(struct enc *e, struct streams *st) {
  struct buf *t = &e->tmp;
  t->len = 0;
  buf_putc(t, '{');
  for (size_t i = 0; i < e->labels.n; i++) {
    if (i)
      buf_puts(t, ", ");
    buf_puts(t, e->labels.v[i].name);
    buf_puts(t, "=\"");
    put_label_value(t, e->labels.v[i].value);
    buf_putc(t, '"');
  }
  buf_putc(t, '}');
  if (t->failed)
    return -1;
  uint64_t h = fnv1a(t->p, t->len);
  if (st->table_cap) {
    for (size_t k = (size_t)h & (st->table_cap - 1); st->table[k];
         k = (k + 1) & (st->table_cap - 1)) {
      struct stream *s = &st->s[st->table[k] - 1];
      if (s->hash == h && strcmp(s->selector, t->p) == 0)
        return (long)(st->table[k] - 1);
    }
  }
  if (st->n >= UINT32_MAX - 1)
    return -1;
  if ((st->n + 1) * 2 > st->table_cap && !table_grow(e, st))
    return -1;
  if (st->n == st->cap) {
    size_t ncap = st->cap ? st->cap * 2 : 16;
    struct stream *ns = arena_alloc(&e->ar, ncap * sizeof *ns);
    if (!ns)
      return -1;
    if (st->n)
      memcpy(ns, st->s, st->n * sizeof *ns);
    st->s = ns;
    st->cap = ncap;
  }
  struct stream *s = &st->s[st->n];
  memset(s, 0, sizeof *s);
  s->hash = h;
  s->selector = arena_strndup(&e->ar, t->p, t->len);
  s->labels = arena_alloc(&e->ar, e->labels.n * sizeof *s->labels);
  if (!s->selector || !s->labels)
    return -1;
  memcpy(s->labels, e->labels.v, e->labels.n * sizeof *s->labels);
  s->n_labels = e->labels.n;
  size_t k = (size_t)h & (st->table_cap - 1);
  while (st->table[k])
    k = (k + 1) & (st->table_cap - 1);
  st->table[k] = (uint32_t)(st->n + 1);
  return (long)st->n++;
}

static struct entry *stream_add(struct enc *e, struct stream *s) {
  if (s->n == s->cap) {
    /* Old arrays stay in the arena until the end: at most as much again as the final one. */
    size_t ncap = s->cap ? s->cap * 2 : 8;
    struct entry *ne = arena_alloc(&e->ar, ncap * sizeof *ne);
    if (!ne)
      return NULL;
    if (s->n)
      memcpy(ne, s->e, s->n * sizeof *ne);
    s->e = ne;
    s->cap = ncap;
  }
  return &s->e[s->n++];
}

static int cmp_entry(const void *pa, const void *pb) {
  const struct entry *a = pa, *b = pb;
  if (a->ts != b->ts)
    return a->ts < b->ts ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* --- logfmt (structured_metadata: false) --- */

static void put_logfmt_value(struct buf *b, const char *s) {
  bool quote = false;
  for (const unsigned char *p = (const unsigned char *)s; *p && !quote; p++)
    quote = *p <= ' ' || *p == '=' || *p == '"' || *p == 0x7f ||
            (p[0] == 0xEF && p[1] == 0xBF && p[2] == 0xBD);
  if (!quote) {
    buf_puts(b, s);
    return;
  }
  buf_putc(b, '"');
  put_text(b, s, strlen(s), ESC_JSON);
  buf_putc(b, '"');
}

static void put_logfmt(struct buf *b, const struct kv *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (b->len)
      buf_putc(b, ' ');
    buf_puts(b, v[i].name);
    buf_putc(b, '=');
    put_logfmt_value(b, v[i].value);
  }
}

/* --- the translation --- */

static int add_record(struct enc *e, struct streams *st, const struct kvvec *base,
                      bool has_service_name, struct kvs *res_md, struct kvs *scope_md,
                      const LogRecord *r, size_t seq) {
  const struct loki_mapping_cfg *cfg = e->cfg;
  e->own.n = 0;
  e->labels.n = 0;
  for (size_t i = 0; i < base->n; i++)
    kv_push(&e->labels, base->v[i].name, base->v[i].value);
  for (size_t i = 0; i < r->n_attributes; i++) {
    const KeyValue *a = r->attributes[i];
    bool label = in_list(a->key, cfg->record_labels, cfg->n_record_labels);
    add_attr(e, label ? &e->labels : &e->own, NULL, a->key, a->value, 0);
  }
  if (cfg->level_label && !has_label(&e->labels, "level"))
    kv_push(&e->labels, "level", level_of(e, r));
  if (!has_service_name && !has_label(&e->labels, "service_name"))
    kv_push(&e->labels, "service_name", "unknown_service");
  sort_dedupe(&e->labels);
  if (e->labels.n == 0)
    kv_push(&e->labels, "service_name",
            "unknown_service"); /* Loki refuses a stream without labels */

  if (r->time_unix_nano && r->observed_time_unix_nano)
    kv_push(&e->own, "observed_timestamp", arena_u64(e, (uint64_t)r->observed_time_unix_nano));
  if (r->severity_number)
    kv_push(&e->own, "severity_number", arena_i64(e, (int64_t)r->severity_number));
  if (r->severity_text && *r->severity_text) {
    e->tmp.len = 0;
    put_text(&e->tmp, r->severity_text, strlen(r->severity_text), ESC_NONE);
    kv_push(&e->own, "severity_text", arena_buf(e, &e->tmp, 0));
  }
  if (r->dropped_attributes_count)
    kv_push(&e->own, "dropped_attributes_count", arena_u64(e, r->dropped_attributes_count));
  if (r->flags)
    kv_push(&e->own, "flags", arena_u64(e, r->flags));
  const char *tid = hex_id(e, r->trace_id, 16), *sid = hex_id(e, r->span_id, 8);
  if (tid)
    kv_push(&e->own, "trace_id", tid);
  if (sid)
    kv_push(&e->own, "span_id", sid);

  struct buf *l = &e->line;
  l->len = 0;
  put_value_string(l, &e->ar, r->body);
  if (!cfg->structured_metadata) {
    put_logfmt(l, e->own.v, e->own.n);
    if (res_md)
      put_logfmt(l, res_md->v, res_md->n);
    if (scope_md)
      put_logfmt(l, scope_md->v, scope_md->n);
  }
  const char *line = arena_buf(e, l, 0);
  if (e->nomem || e->own.failed || e->labels.failed || !line)
    return OTC_ERR_NOMEM;

  long si = stream_for(e, st);
  if (si < 0)
    return OTC_ERR_NOMEM;
  struct entry *en = stream_add(e, &st->s[si]);
  if (!en)
    return OTC_ERR_NOMEM;
  en->ts = r->time_unix_nano            ? r->time_unix_nano
           : r->observed_time_unix_nano ? r->observed_time_unix_nano
                                        : e->now;
  en->seq = seq;
  en->line = line;
  en->own = NULL;
  en->n_own = 0;
  en->res = en->scope = NULL;
  if (cfg->structured_metadata) {
    if (e->own.n) {
      struct kvs *own = arena_kvs(e, &e->own);
      if (!own)
        return OTC_ERR_NOMEM;
      en->own = own->v;
      en->n_own = own->n;
    }
    en->res = res_md && res_md->n ? res_md : NULL;
    en->scope = scope_md && scope_md->n ? scope_md : NULL;
  }
  return 0;
}

static int translate(struct enc *e, const LogsRequest *req, struct streams *st, size_t *count) {
  const struct loki_mapping_cfg *cfg = e->cfg;
  size_t seq = 0;
  for (size_t i = 0; i < req->n_resource_logs; i++) {
    const ResourceLogs *rl = req->resource_logs[i];
    bool any = false;
    for (size_t j = 0; j < rl->n_scope_logs && !any; j++)
      any = rl->scope_logs[j]->n_log_records > 0;
    if (!any)
      continue;
    /* The resource's labels and metadata, shared by all its records. */
    struct kvvec *base = &e->scratch;
    base->n = 0;
    struct kvvec res_md = {0};
    bool has_service_name = false;
    const size_t n_attrs = rl->resource ? rl->resource->n_attributes : 0;
    for (size_t k = 0; k < n_attrs; k++) {
      const KeyValue *a = rl->resource->attributes[k];
      if (strcmp(a->key, "service.name") == 0 && value_nonempty(a->value))
        has_service_name = true;
      bool label = in_list(a->key, cfg->resource_labels, cfg->n_resource_labels);
      add_attr(e, label ? base : &res_md, NULL, a->key, a->value, 0);
    }
    if (!has_service_name) {
      for (size_t k = 0; k < base->n && !has_service_name; k++) {
        for (size_t m = 0; m < sizeof service_name_sources / sizeof *service_name_sources; m++) {
          if (strcmp(base->v[k].name, service_name_sources[m]) == 0) {
            kv_push(base, "service_name", base->v[k].value);
            has_service_name = true;
            break;
          }
        }
      }
    }
    struct kvs *res_kvs = res_md.failed ? NULL : arena_kvs(e, &res_md);
    bool failed = res_md.failed || base->failed;
    free(res_md.v);
    if (failed || !res_kvs || e->nomem)
      return OTC_ERR_NOMEM;
    /* The base is copied because e->scratch is reused for the scope's metadata. */
    struct kvvec base_copy = {0};
    for (size_t k = 0; k < base->n; k++)
      kv_push(&base_copy, base->v[k].name, base->v[k].value);
    if (base_copy.failed) {
      free(base_copy.v);
      return OTC_ERR_NOMEM;
    }

    int rc = 0;
    for (size_t j = 0; j < rl->n_scope_logs && rc == 0; j++) {
      const ScopeLogs *sl = rl->scope_logs[j];
      if (sl->n_log_records == 0)
        continue;
      struct kvvec *smd = &e->scratch;
      smd->n = 0;
      const Scope *sc = sl->scope;
      for (size_t k = 0; sc && k < sc->n_attributes; k++)
        add_attr(e, smd, NULL, sc->attributes[k]->key, sc->attributes[k]->value, 0);
      if (sc && sc->name && *sc->name) {
        e->tmp.len = 0;
        put_text(&e->tmp, sc->name, strlen(sc->name), ESC_NONE);
        kv_push(smd, "scope_name", arena_buf(e, &e->tmp, 0));
      }
      if (sc && sc->version && *sc->version) {
        e->tmp.len = 0;
        put_text(&e->tmp, sc->version, strlen(sc->version), ESC_NONE);
        kv_push(smd, "scope_version", arena_buf(e, &e->tmp, 0));
      }
      if (sc && sc->dropped_attributes_count)
        kv_push(smd, "scope_dropped_attributes_count", arena_u64(e, sc->dropped_attributes_count));
      struct kvs *scope_kvs = smd->failed ? NULL : arena_kvs(e, smd);
      if (!scope_kvs || e->nomem) {
        rc = OTC_ERR_NOMEM;
        break;
      }
      for (size_t k = 0; k < sl->n_log_records && rc == 0; k++)
        rc = add_record(e, st, &base_copy, has_service_name, res_kvs, scope_kvs, sl->log_records[k],
                        seq++);
    }
    free(base_copy.v);
    if (rc != 0)
      return rc;
  }
  *count = seq;
  for (size_t i = 0; i < st->n; i++) {
    struct stream *s = &st->s[i];
    bool sorted = true;
    for (size_t k = 1; k < s->n && sorted; k++)
      sorted = s->e[k - 1].ts <= s->e[k].ts;
    if (!sorted)
      qsort(s->e, s->n, sizeof *s->e, cmp_entry);
  }
  return 0;
}

/* --- output --- */

/* The PushRequest is written directly rather than through protobuf-c: its object graph (an adapter,
 * a timestamp and an array per entry, a pair per metadata item) and the generic size and pack
 * passes over it cost more than the translation itself. Fields are written as protobuf-c packs
 * proto3 (ascending field numbers, empty strings and zero numbers left out, the timestamp always
 * present), so the bytes are the same. */

static size_t str_field_size(const char *s) {
  size_t n = strlen(s);
  return n ? otc_ld_size(n) : 0;
}

static uint8_t *put_str_field(uint8_t *p, unsigned field, const char *s) {
  size_t n = strlen(s);
  if (n == 0)
    return p;
  *p++ = (uint8_t)(field << 3 | 2);
  p = otc_put_varint(p, n);
  memcpy(p, s, n);
  return p + n;
}

static size_t pair_size(const struct kv *kv) {
  return str_field_size(kv->name) + str_field_size(kv->value);
}

static size_t pairs_size(const struct kv *v, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += otc_ld_size(pair_size(&v[i]));
  return total;
}

static uint8_t *put_pairs(uint8_t *p, const struct kv *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    *p++ = 3 << 3 | 2;
    p = otc_put_varint(p, pair_size(&v[i]));
    p = put_str_field(p, 1, v[i].name);
    p = put_str_field(p, 2, v[i].value);
  }
  return p;
}

/* The shared pairs of a resource or scope, encoded once for all their entries. */
static bool kvs_wire(struct enc *e, struct kvs *k) {
  if (!k || k->wire)
    return true;
  size_t n = pairs_size(k->v, k->n);
  uint8_t *w = arena_alloc(&e->ar, n);
  if (!w)
    return false;
  put_pairs(w, k->v, k->n);
  k->wire = w;
  k->wire_len = n;
  return true;
}

static size_t timestamp_size(uint64_t ts) {
  uint64_t sec = ts / 1000000000u, nanos = ts % 1000000000u;
  return (sec ? 1 + otc_varint_size(sec) : 0) + (nanos ? 1 + otc_varint_size(nanos) : 0);
}

static int encode_protobuf(struct enc *e, const struct streams *st, uint8_t **out,
                           size_t *out_len) {
  /* Pass 1: the size of every entry and stream. */
  size_t total = 0;
  for (size_t i = 0; i < st->n; i++) {
    struct stream *s = &st->s[i];
    size_t ssize = str_field_size(s->selector);
    for (size_t k = 0; k < s->n; k++) {
      struct entry *en = &s->e[k];
      if (!kvs_wire(e, en->res) || !kvs_wire(e, en->scope))
        return OTC_ERR_NOMEM;
      en->size = otc_ld_size(timestamp_size(en->ts)) + str_field_size(en->line) +
                 pairs_size(en->own, en->n_own) + (en->res ? en->res->wire_len : 0) +
                 (en->scope ? en->scope->wire_len : 0);
      ssize += otc_ld_size(en->size);
    }
    total += otc_ld_size(ssize);
  }
  uint8_t *buf = malloc(total ? total : 1);
  if (!buf)
    return OTC_ERR_NOMEM;
  /* Pass 2: the bytes. */
  uint8_t *p = buf;
  for (size_t i = 0; i < st->n; i++) {
    const struct stream *s = &st->s[i];
    size_t ssize = str_field_size(s->selector);
    for (size_t k = 0; k < s->n; k++)
      ssize += otc_ld_size(s->e[k].size);
    *p++ = 1 << 3 | 2;
    p = otc_put_varint(p, ssize);
    p = put_str_field(p, 1, s->selector);
    for (size_t k = 0; k < s->n; k++) {
      const struct entry *en = &s->e[k];
      *p++ = 2 << 3 | 2;
      p = otc_put_varint(p, en->size);
      uint64_t sec = en->ts / 1000000000u, nanos = en->ts % 1000000000u;
      *p++ = 1 << 3 | 2;
      p = otc_put_varint(p, timestamp_size(en->ts));
      if (sec) {
        *p++ = 1 << 3;
        p = otc_put_varint(p, sec);
      }
      if (nanos) {
        *p++ = 2 << 3;
        p = otc_put_varint(p, nanos);
      }
      p = put_str_field(p, 2, en->line);
      p = put_pairs(p, en->own, en->n_own);
      if (en->res) {
        memcpy(p, en->res->wire, en->res->wire_len);
        p += en->res->wire_len;
      }
      if (en->scope) {
        memcpy(p, en->scope->wire, en->scope->wire_len);
        p += en->scope->wire_len;
      }
    }
  }
  *out = buf;
  *out_len = (size_t)(p - buf);
  return 0;
}

/* --- the direct translation: OTLP wire bytes → push body, without decoding into structs --- */

/* The decoding translation above costs an allocation per field, a NUL-terminated copy of every
 * string and a kv string per pair that is copied again into the output. The push body with
 * structured metadata (the default) is instead written here in one pass over the wire bytes:
 * strings are (pointer, length) into the request, each entry's own fields are encoded once into
 * one buffer (enc.ent) and copied whole into the output, a resource's and a scope's labels and
 * metadata pairs are built once for all their records, and the stream of a record whose labels
 * come from its resource and level alone is looked up once per resource and level.
 *
 * It must write the same bytes as the decoding translation for every input. The request has passed
 * the wire scan, so tags, wire types and lengths are known to be sound (they are checked again
 * anyway: the bytes are untrusted). What it does not reproduce is protobuf's merging of a singular
 * message field given twice (a resource, scope, body, attribute value, or an AnyValue's array or
 * map, which pbfast leaves to protobuf-c); on such input it sets e->fallback and the caller runs
 * the decoding translation instead. Strings are cut at their first NUL byte, as the decoded
 * NUL-terminated ones are. */

/* Returned by the direct translation for input it leaves to the decoding one (not an error code:
 * those are negative). */
#define FALLBACK 1

/* A string field as its decoded, NUL-terminated copy reads. */
struct str {
  const char *p;
  size_t n;
};

static inline struct str wf_str(const uint8_t *data, size_t len) {
  const uint8_t *z = len ? memchr(data, 0, len) : NULL;
  return (struct str){(const char *)data, z ? (size_t)(z - data) : len};
}

static bool str_is(struct str s, const char *lit, size_t n) {
  return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Whether s is one of the configured names (lens[i] = strlen(list[i])). */
static bool in_list_n(struct str s, const char *const *list, const size_t *lens, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (list[i] && lens[i] == s.n && memcmp(list[i], s.p, s.n) == 0)
      return true;
  return false;
}

/* Fails the direct translation (see above). Returns false for the callers' convenience. */
static bool leave(struct enc *e) {
  e->fallback = true;
  return false;
}

enum { AV_NONE = 0, AV_STRING, AV_BOOL, AV_INT, AV_DOUBLE, AV_ARRAY, AV_KVLIST, AV_BYTES };

/* A read AnyValue: its case (the field number), payload and scalar bits. */
struct anyv {
  int k;
  const uint8_t *p;
  size_t n;
  uint64_t v;
};

/* Reads the AnyValue in p[0..n): the last of its fields wins, as in protobuf. An array or map
 * together with any other value field would be merged or decoded and dropped by protobuf (and may
 * hide a merge further down), so that case is left to the decoding translation. */
static bool any_read(struct enc *e, const uint8_t *p, size_t n, struct anyv *a) {
  static const int8_t want[8] = {
      -1,         OTC_WT_LEN, OTC_WT_VARINT, OTC_WT_VARINT, OTC_WT_FIXED64,
      OTC_WT_LEN, OTC_WT_LEN, OTC_WT_LEN};
  a->k = AV_NONE;
  unsigned fields = 0;
  bool message = false;
  for (const uint8_t *end = p + n; p < end;) {
    struct otc_pb_field f;
    if (!otc_pb_next(&p, end, &f))
      return leave(e);
    if (f.num > 7)
      continue;
    if (f.wt != want[f.num])
      return leave(e);
    fields++;
    message = message || f.num == AV_ARRAY || f.num == AV_KVLIST;
    a->k = (int)f.num;
    a->p = f.data;
    a->n = f.len;
    a->v = f.v;
  }
  if (message && fields > 1)
    return leave(e);
  return true;
}

/* Reads the KeyValue in p[0..n): its key, and its value's bytes (*has_v false when it has none). */
static bool kv_read(struct enc *e, const uint8_t *p, size_t n, struct str *key, const uint8_t **v,
                    size_t *vn, bool *has_v) {
  *key = (struct str){"", 0};
  *has_v = false;
  for (const uint8_t *end = p + n; p < end;) {
    struct otc_pb_field f;
    if (!otc_pb_next(&p, end, &f))
      return leave(e);
    if (f.num == 1) {
      if (f.wt != OTC_WT_LEN)
        return leave(e);
      *key = wf_str(f.data, f.len);
    } else if (f.num == 2) {
      if (f.wt != OTC_WT_LEN || *has_v)
        return leave(e);
      *has_v = true;
      *v = f.data;
      *vn = f.len;
    }
  }
  return true;
}

static void w_json_value(struct enc *e, struct buf *b, const struct anyv *a, int depth);

/* One pair of a map being written as JSON. */
struct wkv {
  struct str key;
  const uint8_t *v;
  size_t vn;
  bool has_v;
  size_t index;
};

static int cmp_wkv(const void *pa, const void *pb) {
  const struct wkv *a = pa, *b = pb;
  /* strcmp's order: the strings hold no NUL. */
  int c = memcmp(a->key.p, b->key.p, a->key.n < b->key.n ? a->key.n : b->key.n);
  if (c == 0 && a->key.n != b->key.n)
    c = a->key.n < b->key.n ? -1 : 1;
  if (c)
    return c;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* As put_json_map: keys sorted, a repeated key written once (the last). */
static void w_json_map(struct enc *e, struct buf *b, const uint8_t *p, size_t n, int depth) {
  size_t count = 0;
  for (const uint8_t *q = p, *end = p + n; q < end;) {
    struct otc_pb_field f;
    if (!otc_pb_next(&q, end, &f)) {
      leave(e);
      return;
    }
    count += f.num == 1;
  }
  struct wkv *s = count ? arena_alloc(&e->ar, count * sizeof *s) : NULL;
  if (count && !s) {
    b->failed = true;
    return;
  }
  size_t i = 0;
  for (const uint8_t *q = p, *end = p + n; q < end;) {
    struct otc_pb_field f;
    if (!otc_pb_next(&q, end, &f)) {
      leave(e);
      return;
    }
    if (f.num != 1)
      continue;
    if (f.wt != OTC_WT_LEN ||
        !kv_read(e, f.data, f.len, &s[i].key, &s[i].v, &s[i].vn, &s[i].has_v)) {
      leave(e);
      return;
    }
    s[i].index = i;
    i++;
  }
  if (count > 1)
    qsort(s, count, sizeof *s, cmp_wkv);
  buf_putc(b, '{');
  bool first = true;
  for (i = 0; i < count && !e->fallback; i++) {
    if (i + 1 < count && str_is(s[i].key, s[i + 1].key.p, s[i + 1].key.n))
      continue;
    if (!first)
      buf_putc(b, ',');
    first = false;
    buf_putc(b, '"');
    put_text(b, s[i].key.p, s[i].key.n, ESC_JSON);
    buf_puts(b, "\":");
    struct anyv a;
    if (!s[i].has_v) {
      w_json_value(e, b, NULL, depth + 1);
    } else if (any_read(e, s[i].v, s[i].vn, &a)) {
      w_json_value(e, b, &a, depth + 1);
    }
  }
  buf_putc(b, '}');
}

/* As put_json_value. */
static void w_json_value(struct enc *e, struct buf *b, const struct anyv *a, int depth) {
  if (!a || depth > MAX_VALUE_DEPTH) {
    buf_puts(b, "null");
    return;
  }
  switch (a->k) {
  case AV_STRING: {
    struct str s = wf_str(a->p, a->n);
    buf_putc(b, '"');
    put_text(b, s.p, s.n, ESC_JSON);
    buf_putc(b, '"');
    break;
  }
  case AV_BOOL:
    buf_puts(b, a->v ? "true" : "false");
    break;
  case AV_INT:
    put_i64(b, (int64_t)a->v);
    break;
  case AV_DOUBLE: {
    double d;
    memcpy(&d, &a->v, sizeof d);
    if (isfinite(d))
      put_double(b, d);
    else
      buf_puts(b, "null");
    break;
  }
  case AV_BYTES:
    buf_putc(b, '"');
    put_base64(b, a->p, a->n);
    buf_putc(b, '"');
    break;
  case AV_ARRAY: {
    buf_putc(b, '[');
    bool first = true;
    for (const uint8_t *q = a->p, *end = a->p + a->n; q < end && !e->fallback;) {
      struct otc_pb_field f;
      struct anyv c;
      if (!otc_pb_next(&q, end, &f)) {
        leave(e);
        break;
      }
      if (f.num != 1)
        continue;
      if (f.wt != OTC_WT_LEN || !any_read(e, f.data, f.len, &c)) {
        leave(e);
        break;
      }
      if (!first)
        buf_putc(b, ',');
      first = false;
      w_json_value(e, b, &c, depth + 1);
    }
    buf_putc(b, ']');
    break;
  }
  case AV_KVLIST:
    w_json_map(e, b, a->p, a->n, depth);
    break;
  default:
    buf_puts(b, "null");
    break;
  }
}

/* As put_value_string (pdata's AsString). */
static void w_value_string(struct enc *e, struct buf *b, const struct anyv *a) {
  switch (a->k) {
  case AV_STRING: {
    struct str s = wf_str(a->p, a->n);
    put_text(b, s.p, s.n, ESC_NONE);
    break;
  }
  case AV_BOOL:
    buf_puts(b, a->v ? "true" : "false");
    break;
  case AV_INT:
    put_i64(b, (int64_t)a->v);
    break;
  case AV_DOUBLE: {
    double d;
    memcpy(&d, &a->v, sizeof d);
    put_double(b, d);
    break;
  }
  case AV_BYTES:
    put_base64(b, a->p, a->n);
    break;
  case AV_ARRAY:
  case AV_KVLIST:
    w_json_value(e, b, a, 0);
    break;
  default:
    break;
  }
}

/* memcpy for the short names and values of pairs, where the call to memcpy cost more than the
 * copy: two overlapping fixed-size moves. */
static inline void copy_short(uint8_t *d, const void *src, size_t n) {
  const uint8_t *s = src;
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(d, &a, 8);
    memcpy(d + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    memcpy(d, &a, 4);
    memcpy(d + n - 4, &b, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; i++)
      d[i] = s[i];
  } else {
    memcpy(d, s, n);
  }
}

/* memcmp(a, b, n) == 0, inline for up to 16 bytes (the keys of attributes, mostly). */
static inline bool same_bytes(const void *a, const void *b, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&b0, b, 8);
    memcpy(&a1, (const char *)a + n - 8, 8);
    memcpy(&b1, (const char *)b + n - 8, 8);
    return a0 == b0 && a1 == b1;
  }
  return memcmp(a, b, n) == 0;
}

/* Appends a LabelPairAdapter (EntryAdapter field 3) to o, as put_pairs writes it. */
static void put_pair_any(struct buf *o, const char *name, size_t nl, const char *value, size_t vl) {
  size_t ps = (nl ? otc_ld_size(nl) : 0) + (vl ? otc_ld_size(vl) : 0);
  /* The tag and length of the pair take at most 11 bytes. */
  if (ps > SIZE_MAX - 16 || !buf_reserve(o, ps + 11))
    return;
  uint8_t *p = (uint8_t *)o->p + o->len;
  *p++ = 3 << 3 | 2;
  p = otc_put_varint(p, ps);
  if (nl) {
    *p++ = 1 << 3 | 2;
    p = otc_put_varint(p, nl);
    copy_short(p, name, nl);
    p += nl;
  }
  if (vl) {
    *p++ = 2 << 3 | 2;
    p = otc_put_varint(p, vl);
    copy_short(p, value, vl);
    p += vl;
  }
  o->len = (size_t)(p - (uint8_t *)o->p);
}

/* put_pair_any, inline for the usual pair: a name and value of 1 to 60 bytes (every length a
 * single byte) with room left in o. */
static inline void put_pair(struct buf *o, const char *name, size_t nl, const char *value,
                            size_t vl) {
  if (nl - 1 < 60 && vl - 1 < 60 && o->cap - o->len > 128 && !o->failed) {
    uint8_t *p = (uint8_t *)o->p + o->len;
    p[0] = 3 << 3 | 2;
    p[1] = (uint8_t)(nl + vl + 4);
    p[2] = 1 << 3 | 2;
    p[3] = (uint8_t)nl;
    copy_short(p + 4, name, nl);
    p += 4 + nl;
    p[0] = 2 << 3 | 2;
    p[1] = (uint8_t)vl;
    copy_short(p + 2, value, vl);
    o->len += 6 + nl + vl;
    return;
  }
  put_pair_any(o, name, nl, value, vl);
}

static void put_pair_u64(struct buf *o, const char *name, size_t nl, uint64_t v) {
  char tmp[OTC_NUM_INT_BUF];
  put_pair(o, name, nl, tmp, otc_num__u64(v, tmp));
}

#define PAIR_NAME(lit) lit, sizeof lit - 1

/* Where attributes go: encoded pairs (pairs) or label strings in the arena (labels). */
struct sink {
  struct buf *pairs;
  struct kvvec *labels;
};

/* The label name of the attribute key whose bytes are raw[0..n) (cut at a NUL, as a decoded key
 * is), or NULL when out of memory. The same few keys come back in every record, so their names are
 * remembered for the call in a small direct-mapped table keyed by those bytes (the keys point into
 * the request, the names into the arena). */
static const char *label_name_of(struct enc *e, const char *raw, size_t n, size_t *name_n) {
  size_t h = n ? (n * 31u + (unsigned char)raw[0] * 7u + (unsigned char)raw[n - 1] +
                  (unsigned char)raw[n / 2] * 131u) &
                     (NAME_CACHE_SIZE - 1)
               : 0;
  struct name_cache *c = &e->names[h];
  if (c->name && c->key_n == n && same_bytes(c->key, raw, n)) {
    *name_n = c->name_n;
    return c->name;
  }
  struct buf *t = &e->tmp;
  t->len = 0;
  struct str key = wf_str((const uint8_t *)raw, n);
  put_label_name(t, key.p, key.n);
  if (t->len == 0 && !t->failed) {
    *name_n = 0; /* an empty key (no valid label name): not worth remembering */
    return "";
  }
  char *copy = t->failed ? NULL : arena_alloc(&e->ar, t->len);
  if (!copy) {
    e->nomem = true;
    return NULL;
  }
  memcpy(copy, t->p, t->len);
  *c = (struct name_cache){raw, n, copy, t->len};
  *name_n = t->len;
  return copy;
}

/* Whether p[0..n) is ASCII without NUL: copied as it is into a line or value. Eight bytes at a
 * time (a byte with the high bit set, or a zero byte). */
static inline bool ascii_plain(const uint8_t *p, size_t n) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if ((w | ((w - ones) & ~w)) & highs)
      return false;
  }
  for (; i < n; i++)
    if (p[i] == 0 || p[i] >= 0x80)
      return false;
  return true;
}

/* The common record attribute, written straight into the entry's pairs o: a KeyValue of a key and
 * a scalar value (a plain string, bool, int or double), nothing else in it. Returns false, having
 * written nothing, for anything else, which goes the general way (w_attr). */
static bool w_attr_scalar(struct enc *e, struct buf *o, const uint8_t *p, size_t n) {
  const uint8_t *end = p + n, *q = p;
  struct otc_pb_field k, v, x;
  if (n >= 4 && p[0] == (1 << 3 | OTC_WT_LEN) && p[1] < 0x80 && (size_t)p[1] + 4 <= n &&
      p[2 + p[1]] == (2 << 3 | OTC_WT_LEN) && n - 4 - p[1] < 0x80 && p[3 + p[1]] == n - 4 - p[1]) {
    /* The usual layout, read at fixed places: key, then value, each length one byte. */
    k.data = p + 2;
    k.len = p[1];
    v.data = p + 4 + p[1];
    v.len = n - 4 - p[1];
  } else if (!otc_pb_next(&q, end, &k) || k.num != 1 || k.wt != OTC_WT_LEN || q >= end ||
             !otc_pb_next(&q, end, &v) || v.num != 2 || v.wt != OTC_WT_LEN || q != end) {
    return false;
  }
  if (k.len == 0)
    return false;
  const uint8_t *vd = v.data;
  if (v.len >= 2 && vd[0] == (AV_STRING << 3 | OTC_WT_LEN) && vd[1] < 0x80 && vd[1] == v.len - 2) {
    x.num = AV_STRING;
    x.wt = OTC_WT_LEN;
    x.data = vd + 2;
    x.len = v.len - 2;
  } else {
    q = vd;
    end = vd + v.len;
    if (q >= end || !otc_pb_next(&q, end, &x) || q != end)
      return false;
  }
  char tmp[OTC_NUM_INT_BUF];
  const char *value;
  size_t vl;
  struct buf *t = &e->val;
  if (x.num == AV_STRING && x.wt == OTC_WT_LEN && ascii_plain(x.data, x.len)) {
    value = (const char *)x.data;
    vl = x.len;
  } else if (x.num == AV_BOOL && x.wt == OTC_WT_VARINT) {
    value = x.v ? "true" : "false";
    vl = x.v ? 4 : 5;
  } else if (x.num == AV_INT && x.wt == OTC_WT_VARINT) {
    value = tmp;
    vl = otc_num__i64((int64_t)x.v, tmp);
  } else if (x.num == AV_DOUBLE && x.wt == OTC_WT_FIXED64) {
    double d;
    memcpy(&d, &x.v, sizeof d);
    t->len = 0;
    put_double(t, d);
    if (t->failed)
      return false;
    value = t->p;
    vl = t->len;
  } else {
    return false;
  }
  size_t nl;
  const char *name = label_name_of(e, (const char *)k.data, k.len, &nl);
  if (!name || nl == 0)
    return false; /* out of memory (seen again there) or an empty name: the general way */
  put_pair(o, name, nl, value, vl);
  return true;
}

/* As add_attr, with the name so far (already normalized) in e->name: attribute key=value into the
 * sink, a map flattened into `<name>_<key>` pairs. */
static void w_attr(struct enc *e, const struct sink *s, struct str key, const uint8_t *v, size_t vn,
                   bool has_v, int depth) {
  if (depth > MAX_VALUE_DEPTH)
    return;
  struct buf *nm = &e->name;
  size_t mark = nm->len;
  if (mark) {
    buf_putc(nm, '_');
    /* The prefix already starts with a letter, so only the characters need fixing. */
    put_sanitized(nm, key.p, key.n);
  } else {
    size_t name_n;
    const char *name = label_name_of(e, key.p, key.n, &name_n);
    if (name)
      buf_put(nm, name, name_n);
  }
  struct anyv a = {.k = AV_NONE};
  if (has_v && !any_read(e, v, vn, &a))
    goto done;
  if (a.k == AV_KVLIST) {
    for (const uint8_t *q = a.p, *end = a.p + a.n; q < end && !e->fallback;) {
      struct otc_pb_field f;
      struct str ck;
      const uint8_t *cv = NULL;
      size_t cvn = 0;
      bool has_cv;
      if (!otc_pb_next(&q, end, &f)) {
        leave(e);
        break;
      }
      if (f.num != 1)
        continue;
      if (f.wt != OTC_WT_LEN) {
        leave(e);
        break;
      }
      if (!kv_read(e, f.data, f.len, &ck, &cv, &cvn, &has_cv))
        break;
      w_attr(e, s, ck, cv, cvn, has_cv, depth + 1);
    }
    goto done;
  }
  if (nm->len == 0)
    goto done; /* an empty key makes no valid label name */
  struct buf *val = &e->val;
  val->len = 0;
  w_value_string(e, val, &a);
  if (nm->failed || val->failed) {
    e->nomem = true;
  } else if (s->pairs) {
    put_pair(s->pairs, nm->p, nm->len, val->p ? val->p : "", val->len);
  } else {
    const char *n = arena_strndup(&e->ar, nm->p, nm->len);
    const char *x = arena_strndup(&e->ar, val->p ? val->p : "", val->len);
    if (!n || !x)
      e->nomem = true;
    kv_push(s->labels, n, x);
  }
done:
  nm->len = mark;
}

/* Whether AsString of the attribute value is not empty (value_nonempty). */
static bool w_value_nonempty(struct enc *e, const uint8_t *v, size_t vn, bool has_v) {
  struct anyv a;
  if (!has_v || !any_read(e, v, vn, &a))
    return false;
  switch (a.k) {
  case AV_STRING:
    return wf_str(a.p, a.n).n > 0;
  case AV_BYTES:
    return a.n > 0;
  case AV_NONE:
    return false;
  default:
    return true;
  }
}

/* The pairs of a resource or scope in the arena, for all their entries. */
static struct kvs *w_kvs(struct enc *e, const struct buf *b) {
  struct kvs *k = arena_alloc(&e->ar, sizeof *k);
  uint8_t *w = b->len ? arena_alloc(&e->ar, b->len) : NULL;
  if (!k || (b->len && !w) || b->failed) {
    e->nomem = true;
    return NULL;
  }
  if (b->len)
    memcpy(w, b->p, b->len);
  *k = (struct kvs){.v = NULL, .n = 0, .wire = w, .wire_len = b->len};
  return k;
}

/* A resource's labels (e->base) and metadata pairs (returned), as translate builds them; r is the
 * Resource's bytes or NULL. */
static struct kvs *w_resource(struct enc *e, const uint8_t *r, size_t rn, bool *has_service_name) {
  const struct loki_mapping_cfg *cfg = e->cfg;
  struct kvvec *base = &e->base;
  base->n = 0;
  e->rmd.len = 0;
  *has_service_name = false;
  struct sink to_labels = {.labels = base}, to_pairs = {.pairs = &e->rmd};
  for (const uint8_t *q = r, *end = r ? r + rn : NULL; q < end && !e->fallback;) {
    struct otc_pb_field f;
    struct str key;
    const uint8_t *v = NULL;
    size_t vn = 0;
    bool has_v;
    if (!otc_pb_next(&q, end, &f))
      return leave(e), NULL;
    if (f.num != 1)
      continue;
    if (f.wt != OTC_WT_LEN || !kv_read(e, f.data, f.len, &key, &v, &vn, &has_v))
      return leave(e), NULL;
    if (str_is(key, PAIR_NAME("service.name")) && w_value_nonempty(e, v, vn, has_v))
      *has_service_name = true;
    bool label = in_list_n(key, cfg->resource_labels, e->res_label_len, cfg->n_resource_labels);
    e->name.len = 0;
    w_attr(e, label ? &to_labels : &to_pairs, key, v, vn, has_v, 0);
  }
  if (!*has_service_name) {
    for (size_t k = 0; k < base->n && !*has_service_name; k++) {
      for (size_t m = 0; m < sizeof service_name_sources / sizeof *service_name_sources; m++) {
        if (strcmp(base->v[k].name, service_name_sources[m]) == 0) {
          kv_push(base, "service_name", base->v[k].value);
          *has_service_name = true;
          break;
        }
      }
    }
  }
  if (base->failed)
    e->nomem = true;
  return e->fallback || e->nomem ? NULL : w_kvs(e, &e->rmd);
}

/* A scope's metadata pairs, as translate builds them; sc is the InstrumentationScope's bytes or
 * NULL. */
static struct kvs *w_scope(struct enc *e, const uint8_t *sc, size_t sn) {
  struct buf *md = &e->smd;
  md->len = 0;
  struct sink to_pairs = {.pairs = md};
  struct str name = {"", 0}, version = {"", 0};
  uint32_t dropped = 0;
  for (const uint8_t *q = sc, *end = sc ? sc + sn : NULL; q < end && !e->fallback;) {
    struct otc_pb_field f;
    if (!otc_pb_next(&q, end, &f))
      return leave(e), NULL;
    if (f.num == 1 || f.num == 2 || f.num == 3) {
      if (f.wt != OTC_WT_LEN)
        return leave(e), NULL;
      if (f.num == 1)
        name = wf_str(f.data, f.len);
      else if (f.num == 2)
        version = wf_str(f.data, f.len);
    } else if (f.num == 4) {
      if (f.wt != OTC_WT_VARINT)
        return leave(e), NULL;
      dropped = (uint32_t)f.v;
    }
  }
  /* The attributes in their order, then the name, version and count, as the decoded scope. */
  for (const uint8_t *q = sc, *end = sc ? sc + sn : NULL; q < end && !e->fallback;) {
    struct otc_pb_field f;
    struct str key;
    const uint8_t *v = NULL;
    size_t vn = 0;
    bool has_v;
    if (!otc_pb_next(&q, end, &f))
      return leave(e), NULL;
    if (f.num != 3)
      continue;
    if (!kv_read(e, f.data, f.len, &key, &v, &vn, &has_v))
      return NULL;
    e->name.len = 0;
    w_attr(e, &to_pairs, key, v, vn, has_v, 0);
  }
  struct buf *t = &e->val;
  if (name.n) {
    t->len = 0;
    put_text(t, name.p, name.n, ESC_NONE);
    put_pair(md, PAIR_NAME("scope_name"), t->p, t->len);
  }
  if (version.n) {
    t->len = 0;
    put_text(t, version.p, version.n, ESC_NONE);
    put_pair(md, PAIR_NAME("scope_version"), t->p, t->len);
  }
  if (dropped)
    put_pair_u64(md, PAIR_NAME("scope_dropped_attributes_count"), dropped);
  if (t->failed)
    e->nomem = true;
  return e->fallback || e->nomem ? NULL : w_kvs(e, md);
}

static void put_hex_pair(struct buf *o, const char *name, size_t nl, const uint8_t *id, size_t n) {
  static const uint8_t zeros[16];
  if (memcmp(id, zeros, n) == 0)
    return; /* pdata's IsEmpty */
  static const char hex[] = "0123456789abcdef";
  char tmp[32];
  for (size_t i = 0; i < n; i++) {
    tmp[2 * i] = hex[id[i] >> 4];
    tmp[2 * i + 1] = hex[id[i] & 15];
  }
  put_pair(o, name, nl, tmp, 2 * n);
}

/* The streams a resource's records go to when their labels are the resource's and a level: one
 * per fixed level name (or none), found once per resource. */
struct level_cache {
  const char *level[16];
  long stream[16];
  size_t n;
};

/* The stream of the record whose label attributes (if any) are already in e->labels after the
 * resource's, as add_record chooses it. Returns its index, or -1 when out of memory. */
static long w_stream(struct enc *e, struct streams *st, struct level_cache *lc, bool own_labels,
                     bool has_service_name, int severity, struct str severity_text) {
  const struct loki_mapping_cfg *cfg = e->cfg;
  const struct kvvec *base = &e->base;
  const char *level = NULL;
  bool fixed = true;
  if (cfg->level_label && !has_label(own_labels ? &e->labels : base, "level"))
    level = level_from(e, severity, severity_text.p, severity_text.n, &fixed);
  bool cached = !own_labels && fixed;
  if (cached) {
    for (size_t i = 0; i < lc->n; i++)
      if (lc->level[i] == level)
        return lc->stream[i];
  }
  if (!own_labels) {
    e->labels.n = 0;
    for (size_t i = 0; i < base->n; i++)
      kv_push(&e->labels, base->v[i].name, base->v[i].value);
  }
  if (level)
    kv_push(&e->labels, "level", level);
  if (!has_service_name && !has_label(&e->labels, "service_name"))
    kv_push(&e->labels, "service_name", "unknown_service");
  sort_dedupe(&e->labels);
  if (e->labels.n == 0)
    kv_push(&e->labels, "service_name", "unknown_service");
  if (e->labels.failed || e->nomem)
    return -1;
  long si = stream_for(e, st);
  if (si >= 0 && cached && lc->n < sizeof lc->level / sizeof *lc->level) {
    lc->level[lc->n] = level;
    lc->stream[lc->n++] = si;
  }
  return si;
}

/* One LogRecord (its bytes in p[0..n)) as add_record translates it. */
static int w_record(struct enc *e, struct streams *st, struct level_cache *lc,
                    bool has_service_name, struct kvs *res_md, struct kvs *scope_md,
                    const uint8_t *p, size_t n, size_t seq) {
  const struct loki_mapping_cfg *cfg = e->cfg;
  uint64_t time = 0, observed = 0;
  int32_t severity = 0;
  uint32_t dropped = 0, flags = 0;
  struct str severity_text = {"", 0};
  const uint8_t *body = NULL, *trace_id = NULL, *span_id = NULL;
  size_t body_n = 0, trace_n = 0, span_n = 0;
  static const int8_t want[12] = {
      -1,         OTC_WT_FIXED64, OTC_WT_VARINT,  OTC_WT_LEN, -1,         OTC_WT_LEN,
      OTC_WT_LEN, OTC_WT_VARINT,  OTC_WT_FIXED32, OTC_WT_LEN, OTC_WT_LEN, OTC_WT_FIXED64};
  /* The attributes are read in a second pass over the range they span. */
  const uint8_t *attrs = NULL, *attrs_end = NULL;
  for (const uint8_t *q = p, *end = p + n; q < end;) {
    struct otc_pb_field f;
    const uint8_t *at = q;
    if (!otc_pb_next(&q, end, &f) || (f.num < 12 && want[f.num] >= 0 && f.wt != want[f.num]))
      return leave(e), FALLBACK;
    switch (f.num) {
    case 6:
      attrs = attrs ? attrs : at;
      attrs_end = q;
      break;
    case 1:
      time = f.v;
      break;
    case 2:
      severity = (int32_t)(uint32_t)f.v;
      break;
    case 3:
      severity_text = wf_str(f.data, f.len);
      break;
    case 5:
      if (body)
        return leave(e), FALLBACK;
      body = f.data;
      body_n = f.len;
      break;
    case 7:
      dropped = (uint32_t)f.v;
      break;
    case 8:
      flags = (uint32_t)f.v;
      break;
    case 9:
      trace_id = f.data;
      trace_n = f.len;
      break;
    case 10:
      span_id = f.data;
      span_n = f.len;
      break;
    case 11:
      observed = f.v;
      break;
    default:
      break;
    }
  }
  uint64_t ts = time ? time : observed ? observed : e->now;

  /* The entry's own fields: the timestamp, the line, the pairs, after the entries before it. */
  struct buf *o = &e->ent;
  size_t start = o->len;
  uint64_t sec = ts / 1000000000u, nanos = ts % 1000000000u;
  if (!buf_reserve(o, 32))
    return OTC_ERR_NOMEM;
  uint8_t *w = (uint8_t *)o->p + o->len;
  *w++ = 1 << 3 | 2;
  w = otc_put_varint(w, timestamp_size(ts));
  if (sec) {
    *w++ = 1 << 3;
    w = otc_put_varint(w, sec);
  }
  if (nanos) {
    *w++ = 2 << 3;
    w = otc_put_varint(w, nanos);
  }
  o->len = (size_t)(w - (uint8_t *)o->p);
  if (body) { /* present, even when empty: its data points into the record */
    struct anyv a;
    if (!any_read(e, body, body_n, &a))
      return FALLBACK;
    const char *line;
    size_t line_n;
    if (a.k == AV_STRING && ascii_plain(a.p, a.n)) {
      /* The usual body, copied from the request as it is. */
      line = (const char *)a.p;
      line_n = a.n;
    } else {
      struct buf *l = &e->line;
      l->len = 0;
      w_value_string(e, l, &a);
      if (l->failed)
        return OTC_ERR_NOMEM;
      line = l->p;
      line_n = l->len;
    }
    if (line_n) {
      if (!buf_reserve(o, 11 + line_n))
        return OTC_ERR_NOMEM;
      w = (uint8_t *)o->p + o->len;
      *w++ = 2 << 3 | 2;
      w = otc_put_varint(w, line_n);
      memcpy(w, line, line_n);
      o->len = (size_t)(w + line_n - (uint8_t *)o->p);
    }
  }

  /* The attributes: labels when configured so, else pairs. */
  bool own_labels = false;
  struct sink to_pairs = {.pairs = o}, to_labels = {.labels = &e->labels};
  for (const uint8_t *q = attrs, *end = attrs_end; q < end && !e->fallback;) {
    struct otc_pb_field f;
    struct str key;
    const uint8_t *v = NULL;
    size_t vn = 0;
    bool has_v;
    if (!otc_pb_next(&q, end, &f))
      return leave(e), FALLBACK;
    if (f.num != 6)
      continue;
    if (cfg->n_record_labels == 0 && w_attr_scalar(e, o, f.data, f.len))
      continue;
    if (!kv_read(e, f.data, f.len, &key, &v, &vn, &has_v))
      return FALLBACK;
    bool label = cfg->n_record_labels &&
                 in_list_n(key, cfg->record_labels, e->rec_label_len, cfg->n_record_labels);
    if (label && !own_labels) {
      own_labels = true;
      e->labels.n = 0;
      for (size_t i = 0; i < e->base.n; i++)
        kv_push(&e->labels, e->base.v[i].name, e->base.v[i].value);
    }
    e->name.len = 0;
    w_attr(e, label ? &to_labels : &to_pairs, key, v, vn, has_v, 0);
  }
  if (e->fallback)
    return FALLBACK;
  if (time && observed)
    put_pair_u64(o, PAIR_NAME("observed_timestamp"), observed);
  if (severity) {
    char tmp[OTC_NUM_INT_BUF];
    put_pair(o, PAIR_NAME("severity_number"), tmp, otc_num__i64(severity, tmp));
  }
  if (severity_text.n) {
    struct buf *t = &e->val;
    t->len = 0;
    put_text(t, severity_text.p, severity_text.n, ESC_NONE);
    put_pair(o, PAIR_NAME("severity_text"), t->p, t->len);
    if (t->failed)
      return OTC_ERR_NOMEM;
  }
  if (dropped)
    put_pair_u64(o, PAIR_NAME("dropped_attributes_count"), dropped);
  if (flags)
    put_pair_u64(o, PAIR_NAME("flags"), flags);
  if (trace_n == 16)
    put_hex_pair(o, PAIR_NAME("trace_id"), trace_id, 16);
  if (span_n == 8)
    put_hex_pair(o, PAIR_NAME("span_id"), span_id, 8);
  if (o->failed || e->nomem)
    return OTC_ERR_NOMEM;

  long si = w_stream(e, st, lc, own_labels, has_service_name, severity, severity_text);
  if (si < 0)
    return OTC_ERR_NOMEM;
  if (o->cap > e->ent_charged) {
    otc_mem_charge(o->cap - e->ent_charged);
    e->ent_charged = o->cap;
  }
  struct entry *en = stream_add(e, &st->s[si]);
  if (!en)
    return OTC_ERR_NOMEM;
  /* Field by field: a memset of the whole entry showed in profiles. */
  en->ts = ts;
  en->seq = seq;
  en->wire_off = start;
  en->wire_len = o->len - start;
  en->res = res_md && res_md->wire_len ? res_md : NULL;
  en->scope = scope_md && scope_md->wire_len ? scope_md : NULL;
  return 0;
}

/* As translate, from the wire bytes. Returns 0, OTC_ERR_NOMEM, or FALLBACK (e->fallback). */
static int translate_wire(struct enc *e, const uint8_t *otlp, size_t len, struct streams *st,
                          size_t *count) {
  const struct loki_mapping_cfg *cfg = e->cfg;
  size_t seq = 0;
  size_t nl = cfg->n_resource_labels + cfg->n_record_labels;
  size_t *lens = nl ? arena_alloc(&e->ar, nl * sizeof *lens) : NULL;
  if (nl && !lens)
    return OTC_ERR_NOMEM;
  for (size_t i = 0; i < cfg->n_resource_labels; i++)
    lens[i] = cfg->resource_labels[i] ? strlen(cfg->resource_labels[i]) : 0;
  for (size_t i = 0; i < cfg->n_record_labels; i++)
    lens[cfg->n_resource_labels + i] = cfg->record_labels[i] ? strlen(cfg->record_labels[i]) : 0;
  e->res_label_len = lens;
  e->rec_label_len = lens ? lens + cfg->n_resource_labels : NULL;
  /* The entries' own bytes, all in one buffer: about one and a half times the request. */
  if (len > (SIZE_MAX - 4096) / 2 || !buf_reserve(&e->ent, len + len / 2 + 4096))
    return OTC_ERR_NOMEM;

  for (const uint8_t *q = otlp, *end = otlp + len; q < end;) {
    struct otc_pb_field rf;
    if (!otc_pb_next(&q, end, &rf))
      return leave(e), FALLBACK;
    if (rf.num != 1)
      continue;
    if (rf.wt != OTC_WT_LEN)
      return leave(e), FALLBACK;
    /* The ResourceLogs: its resource first, wherever it is; every resource and scope is read,
     * with records or not, so that a merge anywhere is seen as the decoder would see it. */
    const uint8_t *res = NULL;
    size_t res_n = 0;
    for (const uint8_t *r = rf.data, *rend = rf.data + rf.len; r < rend;) {
      struct otc_pb_field f;
      if (!otc_pb_next(&r, rend, &f) ||
          ((f.num == 1 || f.num == 2 || f.num == 3) && f.wt != OTC_WT_LEN))
        return leave(e), FALLBACK;
      if (f.num == 1) {
        if (res)
          return leave(e), FALLBACK;
        res = f.data;
        res_n = f.len;
      }
    }
    bool has_service_name;
    struct kvs *res_md = w_resource(e, res, res_n, &has_service_name);
    if (!res_md)
      return e->fallback ? FALLBACK : OTC_ERR_NOMEM;
    struct level_cache lc = {.n = 0};
    for (const uint8_t *r = rf.data, *rend = rf.data + rf.len; r < rend;) {
      struct otc_pb_field f;
      if (!otc_pb_next(&r, rend, &f))
        return leave(e), FALLBACK;
      if (f.num != 2)
        continue;
      const uint8_t *sc = NULL;
      size_t sc_n = 0;
      for (const uint8_t *s = f.data, *send = f.data + f.len; s < send;) {
        struct otc_pb_field g;
        if (!otc_pb_next(&s, send, &g) ||
            ((g.num == 1 || g.num == 2 || g.num == 3) && g.wt != OTC_WT_LEN))
          return leave(e), FALLBACK;
        if (g.num == 1) {
          if (sc)
            return leave(e), FALLBACK;
          sc = g.data;
          sc_n = g.len;
        }
      }
      struct kvs *scope_md = w_scope(e, sc, sc_n);
      if (!scope_md)
        return e->fallback ? FALLBACK : OTC_ERR_NOMEM;
      for (const uint8_t *s = f.data, *send = f.data + f.len; s < send;) {
        struct otc_pb_field g;
        if (!otc_pb_next(&s, send, &g))
          return leave(e), FALLBACK;
        if (g.num != 2)
          continue;
        int rc = w_record(e, st, &lc, has_service_name, res_md, scope_md, g.data, g.len, seq++);
        if (rc != 0)
          return rc;
      }
    }
  }
  *count = seq;
  for (size_t i = 0; i < st->n; i++) {
    struct stream *s = &st->s[i];
    bool sorted = true;
    for (size_t k = 1; k < s->n && sorted; k++)
      sorted = s->e[k - 1].ts <= s->e[k].ts;
    if (!sorted)
      qsort(s->e, s->n, sizeof *s->e, cmp_entry);
  }
  return 0;
}

/* As encode_protobuf, for the entries of translate_wire. */
static int encode_wire(const struct streams *st, const uint8_t *ent, uint8_t **out,
                       size_t *out_len) {
  size_t total = 0;
  for (size_t i = 0; i < st->n; i++) {
    struct stream *s = &st->s[i];
    size_t ssize = str_field_size(s->selector);
    for (size_t k = 0; k < s->n; k++) {
      struct entry *en = &s->e[k];
      en->size =
          en->wire_len + (en->res ? en->res->wire_len : 0) + (en->scope ? en->scope->wire_len : 0);
      ssize += otc_ld_size(en->size);
    }
    total += otc_ld_size(ssize);
  }
  uint8_t *buf = malloc(total ? total : 1);
  if (!buf)
    return OTC_ERR_NOMEM;
  uint8_t *p = buf;
  for (size_t i = 0; i < st->n; i++) {
    const struct stream *s = &st->s[i];
    size_t ssize = str_field_size(s->selector);
    for (size_t k = 0; k < s->n; k++)
      ssize += otc_ld_size(s->e[k].size);
    *p++ = 1 << 3 | 2;
    p = otc_put_varint(p, ssize);
    p = put_str_field(p, 1, s->selector);
    for (size_t k = 0; k < s->n; k++) {
      const struct entry *en = &s->e[k];
      *p++ = 2 << 3 | 2;
      p = otc_put_varint(p, en->size);
      memcpy(p, ent + en->wire_off, en->wire_len);
      p += en->wire_len;
      if (en->res) {
        memcpy(p, en->res->wire, en->res->wire_len);
        p += en->res->wire_len;
      }
      if (en->scope) {
        memcpy(p, en->scope->wire, en->scope->wire_len);
        p += en->scope->wire_len;
      }
    }
  }
  *out = buf;
  *out_len = (size_t)(p - buf);
  return 0;
}

static int json_put_pairs(json_t *obj, const struct kv *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (json_object_set_new(obj, v[i].name, json_string(v[i].value)) != 0)
      return -1;
  return 0;
}

static int encode_json(const struct streams *st, uint8_t **out, size_t *out_len) {
  int rc = OTC_ERR_NOMEM;
  json_t *root = json_object(), *streams = json_array();
  if (!root || !streams || json_object_set(root, "streams", streams) != 0)
    goto cleanup;
  /* The *_new calls take the reference they are given even when they fail (and fail on NULL),
   * so every object is owned by the tree as soon as it exists. */
  for (size_t i = 0; i < st->n; i++) {
    const struct stream *s = &st->s[i];
    json_t *so = json_object(), *labels, *values;
    if (json_array_append_new(streams, so) != 0 ||
        json_object_set_new(so, "stream", labels = json_object()) != 0 ||
        json_object_set_new(so, "values", values = json_array()) != 0)
      goto cleanup;
    if (json_put_pairs(labels, s->labels, s->n_labels) != 0)
      goto cleanup;
    for (size_t k = 0; k < s->n; k++) {
      const struct entry *en = &s->e[k];
      char ts[32];
      snprintf(ts, sizeof ts, "%" PRIu64, en->ts);
      json_t *v = json_array();
      if (!v || json_array_append_new(values, v) != 0 ||
          json_array_append_new(v, json_string(ts)) != 0 ||
          json_array_append_new(v, json_string(en->line)) != 0)
        goto cleanup;
      size_t n_md = en->n_own + (en->res ? en->res->n : 0) + (en->scope ? en->scope->n : 0);
      if (n_md) {
        json_t *md = json_object();
        if (!md || json_array_append_new(v, md) != 0 ||
            json_put_pairs(md, en->own, en->n_own) != 0 ||
            (en->res && json_put_pairs(md, en->res->v, en->res->n) != 0) ||
            (en->scope && json_put_pairs(md, en->scope->v, en->scope->n) != 0))
          goto cleanup;
      }
    }
  }
  char *s = json_dumps(root, JSON_COMPACT);
  if (!s)
    goto cleanup;
  *out = (uint8_t *)s;
  *out_len = strlen(s);
  rc = 0;
cleanup:
  json_decref(streams);
  json_decref(root);
  return rc;
}

int otc_loki__encode(const uint8_t *otlp, size_t len, const struct loki_mapping_cfg *cfg,
                     enum otc_loki_format format, uint8_t **out, size_t *out_len,
                     size_t *n_entries) {
  int rc = 0;
  struct enc e;
  memset(&e, 0, sizeof e);
  e.cfg = cfg;
  *out = NULL;
  *out_len = 0;
  *n_entries = 0;
  struct otc_wire_stats ws;
  char why[128];
  static const uint8_t empty[1] = {0};
  if (otc_wire_scan(OTC_SIGNAL_LOGS, len ? otlp : empty, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &ws, why,
                    sizeof why) != 0)
    return OTC_ERR_INVALID;
  if (cfg->now_ns > 0) {
    e.now = (uint64_t)cfg->now_ns;
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e.now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  }
  struct streams st;
  size_t count = 0;
  if (format == OTC_LOKI_FORMAT_PROTOBUF && cfg->structured_metadata) {
    /* The arena holds only streams, entry arrays and label strings here (the entries' bytes
     * have a buffer of their own): chunks start at the smallest size. */
    memset(&st, 0, sizeof st);
    rc = translate_wire(&e, len ? otlp : empty, len, &st, &count);
    if (rc == 0) {
      rc = encode_wire(&st, (const uint8_t *)e.ent.p, out, out_len);
      if (rc == 0)
        *n_entries = count;
      goto cleanup;
    }
    if (rc != FALLBACK)
      goto cleanup;
    /* Start over with the decoding translation. */
    arena_free(&e.ar);
    free(e.ent.p);
    e.ent = (struct buf){0};
    otc_mem_release(e.ent_charged);
    e.ent_charged = 0;
    e.nomem = false;
    e.fallback = false;
    rc = 0;
  }
  /* The decoded form takes a few times the wire size; starting with chunks of about that size
   * keeps their number small. */
  e.ar.next_size = len * 2 < ARENA_MAX_CHUNK ? len * 2 : ARENA_MAX_CHUNK;
  ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &e.ar};
  /* The fast decoder first; protobuf-c for what it leaves (see pbfast.h). */
  LogsRequest *req = (LogsRequest *)otc_pb__unpack(
      &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor, otlp,
      len, &alloc);
  if (!req)
    req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
        &alloc, len, len ? otlp : empty);
  if (!req) {
    /* Memory, or bytes the scan accepts and protobuf-c 1.4.1 does not: a singular message field
     * given twice whose first copy holds an unknown field fails its merge. Those are dropped, not
     * retried forever. */
    rc = e.ar.pb_failed ? OTC_ERR_NOMEM : OTC_ERR_INVALID;
    goto cleanup;
  }
  memset(&st, 0, sizeof st);
  if ((rc = translate(&e, req, &st, &count)) != 0)
    goto cleanup;
  rc = format == OTC_LOKI_FORMAT_JSON ? encode_json(&st, out, out_len)
                                      : encode_protobuf(&e, &st, out, out_len);
  if (rc == 0)
    *n_entries = count;
cleanup:
  arena_free(&e.ar);
  free(e.tmp.p);
  free(e.line.p);
  free(e.scratch.v);
  free(e.own.v);
  free(e.labels.v);
  free(e.name.p);
  free(e.val.p);
  free(e.ent.p);
  otc_mem_release(e.ent_charged);
  free(e.rmd.p);
  free(e.smd.p);
  free(e.base.v);
  return rc;
}
