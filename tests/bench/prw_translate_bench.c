/* A repeatable cost measure of the remote-write translation, for callgrind: CPU timings on a shared
 * machine are too noisy to compare two versions, instruction counts are not.
 *
 * Builds one ExportMetricsServiceRequest shaped like the load generator's (4 resource attributes,
 * a scope with name and version, gauges and cumulative monotonic sums in turn, one point per
 * metric with 10 attributes of mixed types, the first one unique per point), then translates it
 * --rounds times and snappy-compresses the requests as the exporter does. Translation and
 * compression are separate functions so that a profile counts them apart:
 *
 *   valgrind --tool=callgrind --toggle-collect=translate_round ./prw_translate_bench
 *   valgrind --tool=callgrind --toggle-collect=compress_round ./prw_translate_bench
 *
 * Prints the request size, the points, series and packed bytes per round, and a checksum of the
 * packed requests (equal checksums: equal output). */
#include <inttypes.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prometheusremotewrite/prw_translate.h"

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

static uint64_t rng_next(uint64_t *s) {
  /* xorshift64*: fixed seed, so every run builds the same request. */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

/* Every allocation of the request's structs, freed together once it is packed. */
static void **allocs;
static size_t n_allocs, cap_allocs;

static void die_nomem(void) {
  fprintf(stderr, "out of memory\n");
  exit(1);
}

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p)
    die_nomem();
  if (n_allocs == cap_allocs) {
    cap_allocs = cap_allocs ? cap_allocs * 2 : 1024;
    void **na = realloc(allocs, cap_allocs * sizeof *na);
    if (!na)
      die_nomem();
    allocs = na;
  }
  allocs[n_allocs++] = p;
  return p;
}

static void free_allocs(void) {
  for (size_t i = 0; i < n_allocs; i++)
    free(allocs[i]);
  free(allocs);
  allocs = NULL;
  n_allocs = cap_allocs = 0;
}

static char *xprintf(const char *fmt, int a, int b) {
  char *s = xcalloc(1, 64);
  snprintf(s, 64, fmt, a, b);
  return s;
}

static KeyValue *kv_new(const char *key) {
  KeyValue *kv = xcalloc(1, sizeof *kv);
  AnyValue *v = xcalloc(1, sizeof *v);
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(v);
  kv->key = (char *)key;
  kv->value = v;
  return kv;
}

static KeyValue *kv_str(const char *key, const char *val) {
  KeyValue *kv = kv_new(key);
  kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  kv->value->string_value = (char *)val;
  return kv;
}

/* The request's wire bytes (malloc'd) and length. */
static uint8_t *build_request(int points, int n_attrs, size_t *len) {
  static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};
  uint64_t rng = 0x9E3779B97F4A7C15ULL;
  uint64_t now = 1700000000000000000ULL;
  Opentelemetry__Proto__Metrics__V1__Metric **metrics = xcalloc((size_t)points, sizeof *metrics);
  for (int i = 0; i < points; i++) {
    Opentelemetry__Proto__Metrics__V1__Metric *m = xcalloc(1, sizeof *m);
    opentelemetry__proto__metrics__v1__metric__init(m);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp = xcalloc(1, sizeof *dp);
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    dp->start_time_unix_nano = now - 60000000000ULL;
    dp->time_unix_nano = now + (uint64_t)i * 1000;
    dp->n_attributes = (size_t)n_attrs;
    dp->attributes = xcalloc((size_t)n_attrs, sizeof *dp->attributes);
    for (int a = 0; a < n_attrs; a++) {
      KeyValue *kv = kv_new(xprintf("bench.attr_%d", a, 0));
      switch (a % 4) {
      case 0:
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        kv->value->string_value =
            a == 0 ? xprintf("v%d-item-%d", 0, i)
                   : xprintf(words[rng_next(&rng) % 6][0] == 'a' ? "alpha-%d" : "echo-%d",
                             (int)(rng_next(&rng) % 100), 0);
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
      dp->attributes[a] = kv;
    }
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint **dps = xcalloc(1, sizeof *dps);
    dps[0] = dp;
    m->unit = "";
    if (i % 2 == 0) {
      m->name = xprintf("bench.gauge.%d", i % 8, 0);
      Opentelemetry__Proto__Metrics__V1__Gauge *g = xcalloc(1, sizeof *g);
      opentelemetry__proto__metrics__v1__gauge__init(g);
      dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
      dp->as_double = (double)(rng_next(&rng) % 100000) / 10.0;
      g->n_data_points = 1;
      g->data_points = dps;
      m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
      m->gauge = g;
    } else {
      m->name = xprintf("bench.requests.%d", i % 8, 0);
      Opentelemetry__Proto__Metrics__V1__Sum *s = xcalloc(1, sizeof *s);
      opentelemetry__proto__metrics__v1__sum__init(s);
      dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
      dp->as_int = (int64_t)(rng_next(&rng) % 1000000);
      s->n_data_points = 1;
      s->data_points = dps;
      s->is_monotonic = 1;
      s->aggregation_temporality =
          OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
      m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
      m->sum = s;
    }
    metrics[i] = m;
  }
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = "loadgen";
  scope.version = "1.0.0";
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm =
      OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
  sm.scope = &scope;
  sm.n_metrics = (size_t)points;
  sm.metrics = metrics;
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp = &sm;
  KeyValue *rattrs[4] = {kv_str("service.name", "loadgen"), kv_str("service.namespace", "bench"),
                         kv_str("service.instance.id", "loadgen-4242"),
                         kv_str("host.name", "bench-host")};
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.n_attributes = 4;
  res.attributes = rattrs;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm =
      OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
  rm.resource = &res;
  rm.n_scope_metrics = 1;
  rm.scope_metrics = &smp;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp = &rm;
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  req.n_resource_metrics = 1;
  req.resource_metrics = &rmp;
  *len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          &req);
  uint8_t *buf = calloc(1, *len ? *len : 1);
  if (!buf)
    die_nomem();
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, buf);
  free_allocs();
  return buf;
}

/* noinline keeps both as their own entries in a profile (--toggle-collect names them). */
__attribute__((noinline)) int translate_round(struct otc_prw_scratch *sc, const uint8_t *req,
                                              size_t len, const struct otc_prw_settings *s,
                                              struct otc_prw_write_set *ws) {
  return otc_prw_translate_with(sc, req, len, s, ws);
}

__attribute__((noinline)) size_t compress_round(const struct otc_prw_write_set *ws, char *out,
                                                size_t cap) {
  size_t total = 0;
  for (size_t i = 0; i < ws->n_requests; i++) {
    size_t olen = cap;
    if (snappy_compress((const char *)ws->requests[i].data, ws->requests[i].len, out, &olen) !=
        SNAPPY_OK) {
      fprintf(stderr, "snappy failed\n");
      exit(1);
    }
    total += olen;
  }
  return total;
}

int main(int argc, char **argv) {
  int points = 8192, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--points") == 0)
      points = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[i + 1]);
  }
  if (points <= 0 || rounds <= 0) {
    fprintf(stderr, "usage: %s [--points N] [--rounds N]\n", argv[0]);
    return 2;
  }
  size_t len;
  uint8_t *req = build_request(points, 10, &len);
  /* The exporter's defaults (prw_exporter.c): suffixes, target_info, scope labels. */
  struct otc_prw_settings s = {
      .add_metric_suffixes = true, .target_info = true, .scope_info = true};
  size_t cap = snappy_max_compressed_length(OTC_PRW_DEFAULT_MAX_BATCH_BYTES * 2);
  char *out = malloc(cap);
  if (!out)
    die_nomem();
  /* As the exporter translates: with working memory kept from one batch to the next. */
  struct otc_prw_scratch *sc = otc_prw_scratch_new();
  if (!sc)
    die_nomem();
  uint64_t sum = 0;
  size_t series = 0, bytes = 0, compressed = 0;
  for (int r = 0; r < rounds; r++) {
    struct otc_prw_write_set ws;
    if (translate_round(sc, req, len, &s, &ws) != 0) {
      fprintf(stderr, "translate failed\n");
      return 1;
    }
    series = ws.series;
    bytes = 0;
    for (size_t i = 0; i < ws.n_requests; i++) {
      bytes += ws.requests[i].len;
      for (size_t j = 0; j < ws.requests[i].len; j++)
        sum = (sum ^ ws.requests[i].data[j]) * 0x100000001b3ULL;
    }
    compressed = compress_round(&ws, out, cap);
    otc_prw_write_set_free(&ws);
  }
  printf("request_bytes=%zu points=%d rounds=%d series=%zu packed_bytes=%zu snappy_bytes=%zu "
         "checksum=%016" PRIx64 "\n",
         len, points, rounds, series, bytes, compressed, sum);
  otc_prw_scratch_free(sc);
  free(out);
  free(req);
  return 0;
}
