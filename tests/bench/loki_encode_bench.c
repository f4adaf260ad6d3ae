/* A fixed, repeatable workload for the Loki translation alone: one ExportLogsServiceRequest shaped
 * like the load generator's logs (4 resource attributes, scope name and version, a string body,
 * trace and span ids, severity, 10 attributes of mixed types per record), translated and
 * snappy-compressed N times. Wall-clock timings on a shared machine are noise, so this is meant to
 * run under `valgrind --tool=callgrind`, whose instruction counts are exact and repeatable:
 *
 *   loki_encode_bench [records=8192] [iterations=3] [out-file]
 *
 * It prints the records, the push body's size and a hash of it (to compare two builds' output),
 * and writes the body to out-file when given. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "loki/loki_encode.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;

/* Everything the request points to, freed in one go. */
struct pool {
  void **p;
  size_t n, cap;
};

static void *pool_alloc(struct pool *p, size_t n) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 1024;
    p->p = realloc(p->p, p->cap * sizeof *p->p);
    if (!p->p)
      abort();
  }
  void *m = calloc(1, n ? n : 1);
  if (!m)
    abort();
  return p->p[p->n++] = m;
}

static char *pool_str(struct pool *p, const char *s) {
  return strcpy(pool_alloc(p, strlen(s) + 1), s);
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static KeyValue *kv_new(struct pool *p, const char *key) {
  KeyValue *kv = pool_alloc(p, sizeof *kv);
  AnyValue *v = pool_alloc(p, sizeof *v);
  *kv = (KeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  *v = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  kv->key = pool_str(p, key);
  kv->value = v;
  return kv;
}

static KeyValue *kv_str(struct pool *p, const char *key, const char *val) {
  KeyValue *kv = kv_new(p, key);
  kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  kv->value->string_value = pool_str(p, val);
  return kv;
}

static void random_bytes(struct pool *p, ProtobufCBinaryData *b, size_t n, uint64_t *rng) {
  b->data = pool_alloc(p, n);
  b->len = n;
  for (size_t i = 0; i < n; i++)
    b->data[i] = (uint8_t)rng_next(rng);
}

/* The load generator's request (tests/bench/loadgen.c, encode_logs), packed. */
static uint8_t *make_request(int records, size_t *len) {
  static const char *const paths[] = {"/api/items", "/api/users", "/api/orders", "/healthz"};
  static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};
  struct pool p = {0};
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  char tmp[128];
  LogRecord **recs = pool_alloc(&p, (size_t)records * sizeof *recs);
  for (int i = 0; i < records; i++) {
    LogRecord *r = pool_alloc(&p, sizeof *r);
    *r = (LogRecord)OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    r->time_unix_nano = 1700000000000000000ULL + (uint64_t)i * 1000;
    r->observed_time_unix_nano = r->time_unix_nano;
    r->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    r->severity_text = "INFO";
    AnyValue *body = pool_alloc(&p, sizeof *body);
    *body = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    snprintf(tmp, sizeof tmp, "request handled method=GET path=%s/%u status=200 took=%ums",
             paths[i % 4], (unsigned)(rng_next(&rng) % 10000), (unsigned)(rng_next(&rng) % 500));
    body->string_value = pool_str(&p, tmp);
    r->body = body;
    random_bytes(&p, &r->trace_id, 16, &rng);
    random_bytes(&p, &r->span_id, 8, &rng);
    r->n_attributes = 10;
    r->attributes = pool_alloc(&p, 10 * sizeof *r->attributes);
    for (int k = 0; k < 10; k++) {
      snprintf(tmp, sizeof tmp, "bench.attr_%d", k);
      KeyValue *kv = kv_new(&p, tmp);
      switch (k % 4) {
      case 0:
        if (k == 0)
          snprintf(tmp, sizeof tmp, "v0-item-%d", i);
        else
          snprintf(tmp, sizeof tmp, "%s-%u", words[rng_next(&rng) % 6],
                   (unsigned)(rng_next(&rng) % 100));
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        kv->value->string_value = pool_str(&p, tmp);
        break;
      case 1:
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        kv->value->int_value = (int64_t)(rng_next(&rng) % 100000);
        break;
      case 2:
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        kv->value->double_value = (double)(rng_next(&rng) % 100000) / 100.0;
        break;
      default:
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        kv->value->bool_value = rng_next(&rng) & 1;
        break;
      }
      r->attributes[k] = kv;
    }
    recs[i] = r;
  }
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = "loadgen";
  scope.version = "1.0.0";
  KeyValue *rattrs[4] = {
      kv_str(&p, "service.name", "loadgen"), kv_str(&p, "service.namespace", "bench"),
      kv_str(&p, "service.instance.id", "loadgen-4242"), kv_str(&p, "host.name", "bench-host")};
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.n_attributes = 4;
  res.attributes = rattrs;
  Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  sl.scope = &scope;
  sl.n_log_records = (size_t)records;
  sl.log_records = recs;
  Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &sl;
  Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
      OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  rl.resource = &res;
  rl.n_scope_logs = 1;
  rl.scope_logs = &slp;
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &rl;
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  req.n_resource_logs = 1;
  req.resource_logs = &rlp;
  *len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  uint8_t *out = malloc(*len);
  if (!out)
    abort();
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, out);
  for (size_t i = 0; i < p.n; i++)
    free(p.p[i]);
  free(p.p);
  return out;
}

int main(int argc, char **argv) {
  int records = argc > 1 ? atoi(argv[1]) : 8192;
  int iterations = argc > 2 ? atoi(argv[2]) : 3;
  if (records <= 0 || iterations <= 0) {
    fprintf(stderr, "usage: %s [records] [iterations] [out-file]\n", argv[0]);
    return 2;
  }
  size_t len;
  uint8_t *req = make_request(records, &len);
  struct loki_mapping_cfg cfg = {
      .resource_labels = otc_loki_default_resource_labels,
      .n_resource_labels = otc_loki_default_resource_labels_count,
      .level_label = true,
      .structured_metadata = true,
      .now_ns = 1,
  };
  uint64_t hash = 0;
  size_t body_len = 0, zlen = 0;
  for (int it = 0; it < iterations; it++) {
    uint8_t *body;
    size_t n_entries;
    if (otc_loki__encode(req, len, &cfg, OTC_LOKI_FORMAT_PROTOBUF, &body, &body_len, &n_entries) !=
            0 ||
        n_entries != (size_t)records) {
      fprintf(stderr, "otc_loki__encode failed\n");
      return 1;
    }
    zlen = snappy_max_compressed_length(body_len);
    char *z = malloc(zlen);
    if (!z || snappy_compress((const char *)body, body_len, z, &zlen) != SNAPPY_OK) {
      fprintf(stderr, "snappy failed\n");
      return 1;
    }
    free(z);
    if (it == 0) {
      hash = 0xcbf29ce484222325ULL;
      for (size_t i = 0; i < body_len; i++)
        hash = (hash ^ body[i]) * 0x100000001b3ULL;
      if (argc > 3) {
        FILE *f = fopen(argv[3], "wb");
        if (!f || fwrite(body, 1, body_len, f) != body_len || fclose(f) != 0) {
          fprintf(stderr, "cannot write %s\n", argv[3]);
          return 1;
        }
      }
    }
    free(body);
  }
  printf("records %d request %zu bytes body %zu bytes snappy %zu bytes hash %016" PRIx64 "\n",
         records, len, body_len, zlen, hash);
  free(req);
  return 0;
}
