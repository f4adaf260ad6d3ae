/* loadgen: an OTLP load generator, the equivalent of telemetrygen but cheap enough per request to
 * load a collector that is itself cheap. A few distinct requests are encoded once at start
 * (protobuf through protobuf-c, JSON through the collector's own otc_proto_to_json) and then sent
 * over and over, so the generator spends its time in the transport, not in building data.
 *
 * Transports: OTLP/gRPC through the gRPC core C API (one channel, a completion queue per worker,
 * unary calls, one in flight per worker) and OTLP/HTTP through libcurl (one keep-alive easy handle
 * per worker). The offered rate is paced per worker: each worker owns rate/workers items per second
 * and sends a request whenever its schedule says so (an open loop, so a slow server shows up as
 * latency and a missed rate, not as a silently lower offer).
 *
 * At the end it prints one JSON line on stdout (for scripts) and one human line on stderr. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/otlp_json.h"
#include "core/signal.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

enum protocol { PROTO_GRPC, PROTO_HTTP, PROTO_HTTP_JSON };

struct options {
  enum protocol protocol;
  enum otc_signal signal;
  const char *endpoint;
  int items;      /* items per request */
  double rate;    /* items per second over all workers; 0 = as fast as possible */
  int64_t dur_ns; /* how long to send */
  int workers;
  int attributes; /* attributes per item */
  int distinct;   /* how many distinct requests to pre-encode */
  int timeout_ms; /* per request */
  bool gzip;
};

/* A timestamp inside an encoded request, rewritten before every send: where it is and how far
 * from the send time it should be. */
struct patch {
  size_t off;
  int64_t delta_ns;
};

/* One pre-encoded request: the bytes as they go on the wire, how many items they carry, and where
 * its timestamps are (fixed64 in protobuf, 19-digit strings in JSON: both keep their length). */
struct payload {
  uint8_t *data;
  size_t len;
  size_t items;
  struct patch *patches;
  size_t npatches;
  bool json;
  uint64_t last_base; /* the send time last written, so that each send moves forward */
};

struct worker {
  int id;
  pthread_t thread;
  const struct options *opt;
  struct payload *payloads; /* this worker's own: they are rewritten before each send */
  int npayloads;
  int64_t start_ns, end_ns;
  /* Results. */
  uint64_t sent, ok, refused, failed;
  uint64_t items_sent, items_accepted;
  uint32_t *lat_us; /* one entry per completed request */
  size_t nlat, caplat;
  char last_error[160];
  /* Transport state. */
  grpc_completion_queue *cq;
  CURL *curl;
  struct curl_slist *headers;
  char *url;
  char *resp;
  size_t resp_len, resp_cap;
};

static grpc_channel *g_channel;

/* --- small helpers --- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a fast, seedable generator; the data only has to look varied, not be random. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static void die(const char *msg) {
  fprintf(stderr, "loadgen: %s\n", msg);
  exit(2);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    die("out of memory");
  return p;
}

/* Parses 10s, 500ms, 2m, 1h or a plain number of seconds. */
static int parse_duration(const char *s, int64_t *out) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || v < 0)
    return -1;
  double mul = 1e9;
  if (strcmp(end, "ms") == 0)
    mul = 1e6;
  else if (strcmp(end, "us") == 0)
    mul = 1e3;
  else if (strcmp(end, "m") == 0)
    mul = 60e9;
  else if (strcmp(end, "h") == 0)
    mul = 3600e9;
  else if (*end != '\0' && strcmp(end, "s") != 0)
    return -1;
  *out = (int64_t)(v * mul);
  return 0;
}

/* --- building the requests: protobuf-c structs whose memory is kept in one list and freed after
 * packing (the process is short-lived, but a clean free keeps leak checkers quiet). --- */

struct pool {
  void **ptrs;
  size_t n, cap;
};

static void *pool_alloc(struct pool *p, size_t size) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 1024;
    p->ptrs = realloc(p->ptrs, p->cap * sizeof *p->ptrs);
    if (!p->ptrs)
      die("out of memory");
  }
  void *m = xcalloc(1, size);
  p->ptrs[p->n++] = m;
  return m;
}

static char *pool_printf(struct pool *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *pool_printf(struct pool *p, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *s = pool_alloc(p, strlen(buf) + 1);
  memcpy(s, buf, strlen(buf) + 1);
  return s;
}

static void pool_free(struct pool *p) {
  for (size_t i = 0; i < p->n; i++)
    free(p->ptrs[i]);
  free(p->ptrs);
  memset(p, 0, sizeof *p);
}

/* Timestamps are encoded as sentinels, found again in the packed bytes and rewritten at each send,
 * so that a series never carries the same timestamp twice (remote write and Loki backends drop or
 * refuse such duplicates, and an exporter may fold them). The sentinel's top five bytes are 0x5A;
 * its low three bytes index the intended offset from the send time. As a decimal it has 19
 * digits, like any current time in nanoseconds, so the JSON form can be patched in place too. */
#define SENTINEL_MASK 0xFFFFFFFFFF000000ULL
#define SENTINEL_BASE 0x5A5A5A5A5A000000ULL
#define SENTINEL_MAX 0x1000000u

struct stamps {
  int64_t *delta;
  size_t n, cap;
};

static uint64_t stamp(struct stamps *st, int64_t delta_ns) {
  if (st->n == st->cap) {
    st->cap = st->cap ? st->cap * 2 : 1024;
    st->delta = realloc(st->delta, st->cap * sizeof *st->delta);
    if (!st->delta)
      die("out of memory");
  }
  if (st->n >= SENTINEL_MAX)
    die("too many timestamps in one request");
  st->delta[st->n] = delta_ns;
  return SENTINEL_BASE | st->n++;
}

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

static KeyValue *kv_new(struct pool *p, const char *key) {
  KeyValue *kv = pool_alloc(p, sizeof *kv);
  AnyValue *v = pool_alloc(p, sizeof *v);
  *kv = (KeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  *v = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  kv->key = (char *)key;
  kv->value = v;
  return kv;
}

static KeyValue *kv_str(struct pool *p, const char *key, const char *val) {
  KeyValue *kv = kv_new(p, key);
  kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  kv->value->string_value = (char *)val;
  return kv;
}

/* n attributes of mixed types (string, int, double, bool in turn). The first one is unique per
 * item of a request (and per request variant), so that each metric data point is its own series
 * downstream and no exporter can fold two items into one. */
static KeyValue **item_attrs(struct pool *p, int n, int variant, int item, uint64_t *rng) {
  static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};
  KeyValue **a = pool_alloc(p, (size_t)(n ? n : 1) * sizeof *a);
  for (int i = 0; i < n; i++) {
    const char *key = pool_printf(p, "bench.attr_%d", i);
    KeyValue *kv = kv_new(p, key);
    switch (i % 4) {
    case 0:
      kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
      kv->value->string_value = i == 0 ? pool_printf(p, "v%d-item-%d", variant, item)
                                       : pool_printf(p, "%s-%u", words[rng_next(rng) % 6],
                                                     (unsigned)(rng_next(rng) % 100));
      break;
    case 1:
      kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      kv->value->int_value = (int64_t)(rng_next(rng) % 100000);
      break;
    case 2:
      kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
      kv->value->double_value = (double)(rng_next(rng) % 100000) / 100.0;
      break;
    default:
      kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
      kv->value->bool_value = rng_next(rng) & 1;
      break;
    }
    a[i] = kv;
  }
  return a;
}

static Opentelemetry__Proto__Resource__V1__Resource *make_resource(struct pool *p) {
  Opentelemetry__Proto__Resource__V1__Resource *r = pool_alloc(p, sizeof *r);
  *r = (Opentelemetry__Proto__Resource__V1__Resource)
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  r->n_attributes = 4;
  r->attributes = pool_alloc(p, 4 * sizeof *r->attributes);
  r->attributes[0] = kv_str(p, "service.name", "loadgen");
  r->attributes[1] = kv_str(p, "service.namespace", "bench");
  r->attributes[2] = kv_str(p, "service.instance.id", pool_printf(p, "loadgen-%d", (int)getpid()));
  r->attributes[3] = kv_str(p, "host.name", "bench-host");
  return r;
}

static Opentelemetry__Proto__Common__V1__InstrumentationScope *make_scope(struct pool *p) {
  Opentelemetry__Proto__Common__V1__InstrumentationScope *s = pool_alloc(p, sizeof *s);
  *s = (Opentelemetry__Proto__Common__V1__InstrumentationScope)
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  s->name = "loadgen";
  s->version = "1.0.0";
  return s;
}

static void random_bytes(struct pool *p, ProtobufCBinaryData *b, size_t n, uint64_t *rng) {
  b->data = pool_alloc(p, n);
  b->len = n;
  for (size_t i = 0; i < n; i++)
    b->data[i] = (uint8_t)rng_next(rng);
}

static void encode_traces(const struct options *o, int variant, uint64_t *rng, struct stamps *st,
                          struct payload *out) {
  struct pool p = {0};
  Opentelemetry__Proto__Trace__V1__Span **spans = pool_alloc(&p, (size_t)o->items * sizeof *spans);
  for (int i = 0; i < o->items; i++) {
    Opentelemetry__Proto__Trace__V1__Span *s = pool_alloc(&p, sizeof *s);
    *s = (Opentelemetry__Proto__Trace__V1__Span)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    random_bytes(&p, &s->trace_id, 16, rng);
    random_bytes(&p, &s->span_id, 8, rng);
    s->name = pool_printf(&p, "GET /api/items/%d", i % 16);
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s->start_time_unix_nano = stamp(st, -1000000 - (int64_t)(rng_next(rng) % 1000000));
    s->end_time_unix_nano = stamp(st, 0);
    s->n_attributes = (size_t)o->attributes;
    s->attributes = item_attrs(&p, o->attributes, variant, i, rng);
    spans[i] = s;
  }
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.scope = make_scope(&p);
  ss.n_spans = (size_t)o->items;
  ss.spans = spans;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  rs.resource = make_resource(&p);
  rs.n_scope_spans = 1;
  rs.scope_spans = &ssp;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.n_resource_spans = 1;
  req.resource_spans = &rsp;
  out->len =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
          &req);
  out->data = xcalloc(1, out->len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out->data);
  out->items = (size_t)o->items;
  pool_free(&p);
}

static void encode_logs(const struct options *o, int variant, uint64_t *rng, struct stamps *st,
                        struct payload *out) {
  static const char *const paths[] = {"/api/items", "/api/users", "/api/orders", "/healthz"};
  struct pool p = {0};
  Opentelemetry__Proto__Logs__V1__LogRecord **recs =
      pool_alloc(&p, (size_t)o->items * sizeof *recs);
  for (int i = 0; i < o->items; i++) {
    Opentelemetry__Proto__Logs__V1__LogRecord *r = pool_alloc(&p, sizeof *r);
    *r =
        (Opentelemetry__Proto__Logs__V1__LogRecord)OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    /* Increasing timestamps inside a request, as a real log stream has them. */
    r->time_unix_nano = stamp(st, (int64_t)i * 1000);
    r->observed_time_unix_nano = stamp(st, (int64_t)i * 1000);
    r->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    r->severity_text = "INFO";
    AnyValue *body = pool_alloc(&p, sizeof *body);
    *body = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value =
        pool_printf(&p, "request handled method=GET path=%s/%u status=200 took=%ums", paths[i % 4],
                    (unsigned)(rng_next(rng) % 10000), (unsigned)(rng_next(rng) % 500));
    r->body = body;
    random_bytes(&p, &r->trace_id, 16, rng);
    random_bytes(&p, &r->span_id, 8, rng);
    r->n_attributes = (size_t)o->attributes;
    r->attributes = item_attrs(&p, o->attributes, variant, i, rng);
    recs[i] = r;
  }
  Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  sl.scope = make_scope(&p);
  sl.n_log_records = (size_t)o->items;
  sl.log_records = recs;
  Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &sl;
  Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
      OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  rl.resource = make_resource(&p);
  rl.n_scope_logs = 1;
  rl.scope_logs = &slp;
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &rl;
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  req.n_resource_logs = 1;
  req.resource_logs = &rlp;
  out->len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  out->data = xcalloc(1, out->len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, out->data);
  out->items = (size_t)o->items;
  pool_free(&p);
}

/* Metrics: one data point per metric, gauges (double) and cumulative monotonic sums (int) in turn,
 * so that every item becomes exactly one sample in remote write and counts compare exactly. */
static void encode_metrics(const struct options *o, int variant, uint64_t *rng, struct stamps *st,
                           uint64_t start_ns, struct payload *out) {
  struct pool p = {0};
  Opentelemetry__Proto__Metrics__V1__Metric **metrics =
      pool_alloc(&p, (size_t)o->items * sizeof *metrics);
  for (int i = 0; i < o->items; i++) {
    Opentelemetry__Proto__Metrics__V1__Metric *m = pool_alloc(&p, sizeof *m);
    *m = (Opentelemetry__Proto__Metrics__V1__Metric)OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp = pool_alloc(&p, sizeof *dp);
    *dp = (Opentelemetry__Proto__Metrics__V1__NumberDataPoint)
        OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    /* The start of a cumulative series stays put; only the point's time moves. */
    dp->start_time_unix_nano = start_ns;
    dp->time_unix_nano = stamp(st, 0);
    dp->n_attributes = (size_t)o->attributes;
    dp->attributes = item_attrs(&p, o->attributes, variant, i, rng);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint **dps = pool_alloc(&p, sizeof *dps);
    dps[0] = dp;
    if (i % 2 == 0) {
      m->name = pool_printf(&p, "bench.gauge.%d", i % 8);
      m->unit = "";
      Opentelemetry__Proto__Metrics__V1__Gauge *g = pool_alloc(&p, sizeof *g);
      *g = (Opentelemetry__Proto__Metrics__V1__Gauge)OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
      dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
      dp->as_double = (double)(rng_next(rng) % 100000) / 10.0;
      g->n_data_points = 1;
      g->data_points = dps;
      m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
      m->gauge = g;
    } else {
      m->name = pool_printf(&p, "bench.requests.%d", i % 8);
      m->unit = "";
      Opentelemetry__Proto__Metrics__V1__Sum *s = pool_alloc(&p, sizeof *s);
      *s = (Opentelemetry__Proto__Metrics__V1__Sum)OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
      dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
      dp->as_int = (int64_t)(rng_next(rng) % 1000000);
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
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm =
      OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
  sm.scope = make_scope(&p);
  sm.n_metrics = (size_t)o->items;
  sm.metrics = metrics;
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp = &sm;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm =
      OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
  rm.resource = make_resource(&p);
  rm.n_scope_metrics = 1;
  rm.scope_metrics = &smp;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp = &rm;
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  req.n_resource_metrics = 1;
  req.resource_metrics = &rmp;
  out->len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          &req);
  out->data = xcalloc(1, out->len);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req,
                                                                                     out->data);
  out->items = (size_t)o->items;
  pool_free(&p);
}

/* Replaces the payload's bytes with their gzip form. */
static void gzip_payload(struct payload *pl) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    die("deflateInit2 failed");
  uLong cap = deflateBound(&z, (uLong)pl->len) + 32;
  uint8_t *out = xcalloc(1, cap);
  z.next_in = pl->data;
  z.avail_in = (uInt)pl->len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END)
    die("gzip compression failed");
  free(pl->data);
  pl->data = out;
  pl->len = z.total_out;
  deflateEnd(&z);
}

/* Finds the sentinels in the encoded bytes: little-endian fixed64 in protobuf, 19-digit decimal
 * strings in JSON. */
static void find_patches(struct payload *pl, const struct stamps *st) {
  size_t cap = st->n ? st->n : 1;
  pl->patches = xcalloc(cap, sizeof *pl->patches);
  pl->npatches = 0;
  for (size_t i = 0; pl->len >= 8 && i + 8 <= pl->len && pl->npatches < cap; i++) {
    uint64_t v = 0;
    size_t width = 8;
    if (pl->json) {
      if (pl->data[i] < '0' || pl->data[i] > '9' ||
          (i > 0 && pl->data[i - 1] >= '0' && pl->data[i - 1] <= '9'))
        continue;
      size_t n = 0;
      while (i + n < pl->len && pl->data[i + n] >= '0' && pl->data[i + n] <= '9')
        n++;
      if (n != 19)
        continue;
      for (size_t k = 0; k < 19; k++)
        v = v * 10 + (uint64_t)(pl->data[i + k] - '0');
      width = 19;
    } else {
      for (int k = 7; k >= 0; k--)
        v = (v << 8) | pl->data[i + (size_t)k];
    }
    if ((v & SENTINEL_MASK) != SENTINEL_BASE || (v & ~SENTINEL_MASK) >= st->n)
      continue;
    pl->patches[pl->npatches].off = i;
    pl->patches[pl->npatches].delta_ns = st->delta[v & ~SENTINEL_MASK];
    pl->npatches++;
    i += width - 1;
  }
  if (pl->npatches != st->n)
    die("could not find every timestamp in an encoded request");
}

/* Writes the send time into the payload's timestamps; each call moves forward by at least 1 ms
 * from the previous one, as remote write keeps milliseconds. */
static void stamp_payload(struct payload *pl) {
  uint64_t base = wall_ns();
  if (base < pl->last_base + 1000000)
    base = pl->last_base + 1000000;
  pl->last_base = base;
  for (size_t i = 0; i < pl->npatches; i++) {
    uint64_t v = base + (uint64_t)pl->patches[i].delta_ns;
    uint8_t *d = pl->data + pl->patches[i].off;
    if (pl->json) {
      for (int k = 18; k >= 0; k--) {
        d[k] = (uint8_t)('0' + v % 10);
        v /= 10;
      }
    } else {
      for (int k = 0; k < 8; k++)
        d[k] = (uint8_t)(v >> (8 * k));
    }
  }
}

/* Encodes the worker's distinct requests. Variants are numbered per worker, so that no two
 * workers send the same series. */
static void build_payloads(const struct options *o, int worker, struct payload *pls) {
  uint64_t rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)getpid() << 16) ^ (uint64_t)worker;
  uint64_t start_ns = wall_ns() - 60000000000ull;
  for (int v = 0; v < o->distinct; v++) {
    struct payload *pl = &pls[v];
    struct stamps st = {0};
    int variant = worker * o->distinct + v;
    switch (o->signal) {
    case OTC_SIGNAL_TRACES:
      encode_traces(o, variant, &rng, &st, pl);
      break;
    case OTC_SIGNAL_METRICS:
      encode_metrics(o, variant, &rng, &st, start_ns, pl);
      break;
    default:
      encode_logs(o, variant, &rng, &st, pl);
      break;
    }
    if (o->protocol == PROTO_HTTP_JSON) {
      char *json = NULL;
      size_t json_len = 0;
      if (otc_proto_to_json(o->signal, pl->data, pl->len, &json, &json_len) != 0)
        die("otc_proto_to_json failed on a generated request");
      free(pl->data);
      pl->data = (uint8_t *)json;
      pl->len = json_len;
      pl->json = true;
    }
    find_patches(pl, &st);
    free(st.delta);
    stamp_payload(pl);
    /* gRPC compresses in the channel (grpc-encoding). An HTTP body is compressed here, once, so
     * its timestamps stay those of the start. */
    if (o->gzip && o->protocol != PROTO_GRPC) {
      gzip_payload(pl);
      pl->npatches = 0;
    }
  }
}

/* --- response parsing: a success may still be partial (rejected items in partial_success) --- */

static int64_t rejected_from_proto(enum otc_signal s, const uint8_t *buf, size_t len) {
  int64_t rej = 0;
  if (len == 0)
    return 0;
  switch (s) {
  case OTC_SIGNAL_TRACES: {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len,
                                                                                          buf);
    if (r && r->partial_success)
      rej = r->partial_success->rejected_spans;
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r,
                                                                                             NULL);
    break;
  }
  case OTC_SIGNAL_METRICS: {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, len, buf);
    if (r && r->partial_success)
      rej = r->partial_success->rejected_data_points;
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        r, NULL);
    break;
  }
  default: {
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *r =
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, len,
                                                                                        buf);
    if (r && r->partial_success)
      rej = r->partial_success->rejected_log_records;
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(r, NULL);
    break;
  }
  }
  return rej;
}

static int64_t rejected_from_json(enum otc_signal s, const char *buf, size_t len) {
  static const char *const keys[] = {"rejectedSpans", "rejectedDataPoints", "rejectedLogRecords"};
  int64_t rej = 0;
  if (len == 0)
    return 0;
  json_t *root = json_loadb(buf, len, 0, NULL);
  json_t *ps = root ? json_object_get(root, "partialSuccess") : NULL;
  json_t *v = ps ? json_object_get(ps, keys[s]) : NULL;
  if (json_is_integer(v))
    rej = json_integer_value(v);
  else if (json_is_string(v))
    rej = strtoll(json_string_value(v), NULL, 10);
  json_decref(root);
  return rej;
}

static void record(struct worker *w, int64_t t0, int outcome, size_t items, int64_t rejected) {
  int64_t us = (now_ns() - t0) / 1000;
  if (w->nlat == w->caplat) {
    w->caplat = w->caplat ? w->caplat * 2 : 4096;
    w->lat_us = realloc(w->lat_us, w->caplat * sizeof *w->lat_us);
    if (!w->lat_us)
      die("out of memory");
  }
  w->lat_us[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  w->sent++;
  w->items_sent += items;
  if (outcome == 0) {
    w->ok++;
    if (rejected < 0)
      rejected = 0;
    if ((uint64_t)rejected > items)
      rejected = (int64_t)items;
    w->items_accepted += items - (uint64_t)rejected;
  } else if (outcome == 1) {
    w->refused++;
  } else {
    w->failed++;
  }
}

/* --- gRPC --- */

static const char *const grpc_methods[] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

/* The OTLP specification's retryable gRPC codes: the client would try again later. */
static bool grpc_retryable(grpc_status_code c) {
  return c == GRPC_STATUS_CANCELLED || c == GRPC_STATUS_DEADLINE_EXCEEDED ||
         c == GRPC_STATUS_ABORTED || c == GRPC_STATUS_OUT_OF_RANGE ||
         c == GRPC_STATUS_UNAVAILABLE || c == GRPC_STATUS_DATA_LOSS ||
         c == GRPC_STATUS_RESOURCE_EXHAUSTED;
}

static void grpc_send(struct worker *w, const struct payload *pl) {
  const struct options *o = w->opt;
  int64_t t0 = now_ns();
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(o->timeout_ms, GPR_TIMESPAN));
  grpc_slice method = grpc_slice_from_static_string(grpc_methods[o->signal]);
  grpc_call *call = grpc_channel_create_call(g_channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                             method, NULL, deadline, NULL);
  grpc_slice body = grpc_slice_from_static_buffer(pl->data, pl->len);
  grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&body, 1);
  grpc_byte_buffer *resp = NULL;
  grpc_metadata_array initial_md, trailing_md;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &resp;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  int outcome = 2;
  int64_t rejected = 0;
  if (!call || grpc_call_start_batch(call, ops, 6, w, NULL) != GRPC_CALL_OK) {
    snprintf(w->last_error, sizeof w->last_error, "grpc_call_start_batch failed");
  } else {
    grpc_event ev =
        grpc_completion_queue_pluck(w->cq, w, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
      snprintf(w->last_error, sizeof w->last_error, "grpc batch did not complete");
    } else if (status == GRPC_STATUS_OK) {
      outcome = 0;
      if (resp) {
        grpc_byte_buffer_reader rd;
        if (grpc_byte_buffer_reader_init(&rd, resp)) {
          grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
          rejected = rejected_from_proto(o->signal, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
          grpc_slice_unref(s);
          grpc_byte_buffer_reader_destroy(&rd);
        }
      }
    } else {
      outcome = grpc_retryable(status) ? 1 : 2;
      char *msg = grpc_slice_to_c_string(details);
      snprintf(w->last_error, sizeof w->last_error, "grpc status %d: %s", (int)status, msg);
      gpr_free(msg);
    }
  }
  record(w, t0, outcome, pl->items, rejected);
  if (call)
    grpc_call_unref(call);
  grpc_byte_buffer_destroy(req);
  grpc_byte_buffer_destroy(resp);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  grpc_slice_unref(details);
}

/* --- HTTP --- */

static size_t curl_write(char *ptr, size_t size, size_t nmemb, void *arg) {
  struct worker *w = arg;
  size_t n = size * nmemb;
  /* The response of an Export is small; anything past 1 MiB is not worth keeping. */
  if (w->resp_len + n > (1u << 20))
    return n;
  if (w->resp_len + n > w->resp_cap) {
    w->resp_cap = (w->resp_len + n) * 2;
    w->resp = realloc(w->resp, w->resp_cap);
    if (!w->resp)
      die("out of memory");
  }
  memcpy(w->resp + w->resp_len, ptr, n);
  w->resp_len += n;
  return n;
}

static void http_setup(struct worker *w) {
  static const char *const paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
  const struct options *o = w->opt;
  size_t n = strlen(o->endpoint) + 32;
  w->url = xcalloc(1, n);
  if (strncmp(o->endpoint, "http://", 7) == 0 || strncmp(o->endpoint, "https://", 8) == 0)
    snprintf(w->url, n, "%s%s", o->endpoint, paths[o->signal]);
  else
    snprintf(w->url, n, "http://%s%s", o->endpoint, paths[o->signal]);
  w->curl = curl_easy_init();
  if (!w->curl)
    die("curl_easy_init failed");
  w->headers = curl_slist_append(NULL, o->protocol == PROTO_HTTP_JSON
                                           ? "Content-Type: application/json"
                                           : "Content-Type: application/x-protobuf");
  /* curl would otherwise wait for a 100-continue on every body over 1 KiB. */
  w->headers = curl_slist_append(w->headers, "Expect:");
  if (o->gzip)
    w->headers = curl_slist_append(w->headers, "Content-Encoding: gzip");
  curl_easy_setopt(w->curl, CURLOPT_URL, w->url);
  curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers);
  curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
  curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(w->curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
  curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, curl_write);
  curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
}

static void http_send(struct worker *w, const struct payload *pl) {
  const struct options *o = w->opt;
  int64_t t0 = now_ns();
  w->resp_len = 0;
  curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, (const char *)pl->data);
  curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)pl->len);
  CURLcode rc = curl_easy_perform(w->curl);
  int outcome = 2;
  int64_t rejected = 0;
  if (rc != CURLE_OK) {
    snprintf(w->last_error, sizeof w->last_error, "curl: %s", curl_easy_strerror(rc));
  } else {
    long code = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
      outcome = 0;
      rejected = o->protocol == PROTO_HTTP_JSON
                     ? rejected_from_json(o->signal, w->resp, w->resp_len)
                     : rejected_from_proto(o->signal, (const uint8_t *)w->resp, w->resp_len);
    } else {
      outcome = (code == 429 || code == 502 || code == 503 || code == 504) ? 1 : 2;
      snprintf(w->last_error, sizeof w->last_error, "HTTP %ld", code);
    }
  }
  record(w, t0, outcome, pl->items, rejected);
}

/* --- the workers --- */

static void sleep_until(int64_t t) {
  struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  const struct options *o = w->opt;
  if (o->protocol == PROTO_GRPC)
    w->cq = grpc_completion_queue_create_for_pluck(NULL);
  else
    http_setup(w);
  /* Each worker paces its share; the start times are staggered so that workers do not fire in
   * lockstep. */
  int64_t interval = 0;
  if (o->rate > 0)
    interval = (int64_t)((double)o->items * 1e9 * o->workers / o->rate);
  int64_t next = w->start_ns + (interval * w->id) / o->workers;
  int k = w->id;
  for (;;) {
    int64_t now = now_ns();
    if (now >= w->end_ns)
      break;
    if (interval > 0) {
      if (next >= w->end_ns)
        break;
      if (now < next)
        sleep_until(next);
      else if (now - next > 1000000000)
        next = now; /* more than a second behind: do not burst to catch up */
      next += interval;
    }
    struct payload *pl = &w->payloads[k % w->npayloads];
    k++;
    stamp_payload(pl);
    if (o->protocol == PROTO_GRPC)
      grpc_send(w, pl);
    else
      http_send(w, pl);
  }
  if (w->cq) {
    grpc_completion_queue_shutdown(w->cq);
    while (
        grpc_completion_queue_pluck(w->cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
        GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(w->cq);
    w->cq = NULL;
  }
  if (w->curl) {
    curl_easy_cleanup(w->curl);
    curl_slist_free_all(w->headers);
    w->curl = NULL;
  }
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void usage(FILE *f) {
  fprintf(f, "usage: loadgen [--protocol grpc|http|http-json] [--signal traces|metrics|logs]\n"
             "               [--endpoint HOST:PORT] [--items-per-request N] [--rate ITEMS_PER_S]\n"
             "               [--duration 10s] [--workers N] [--attributes N] [--distinct N]\n"
             "               [--timeout-ms N] [--gzip] [--dump FILE]\n"
             "--rate 0 sends as fast as the workers can (one request in flight per worker).\n"
             "Prints one JSON line of results on stdout and a summary on stderr.\n"
             "--dump FILE writes the first request body (as it would be sent) to FILE and exits:\n"
             "input for the instruction-count benchmarks (tests/bench/wire_bench.c).\n");
}

int main(int argc, char **argv) {
  struct options o = {
      .protocol = PROTO_GRPC,
      .signal = OTC_SIGNAL_TRACES,
      .endpoint = NULL,
      .items = 512,
      .rate = 50000,
      .dur_ns = 10000000000LL,
      .workers = 1,
      .attributes = 10,
      .distinct = 8,
      .timeout_ms = 10000,
      .gzip = false,
  };
  static const struct option longopts[] = {
      {"protocol", required_argument, NULL, 'p'},
      {"signal", required_argument, NULL, 's'},
      {"endpoint", required_argument, NULL, 'e'},
      {"items-per-request", required_argument, NULL, 'i'},
      {"rate", required_argument, NULL, 'r'},
      {"duration", required_argument, NULL, 'd'},
      {"workers", required_argument, NULL, 'w'},
      {"attributes", required_argument, NULL, 'a'},
      {"distinct", required_argument, NULL, 'D'},
      {"timeout-ms", required_argument, NULL, 't'},
      {"gzip", no_argument, NULL, 'z'},
      {"dump", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *dump = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "p:s:e:i:r:d:w:a:D:t:zo:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (strcmp(optarg, "grpc") == 0)
        o.protocol = PROTO_GRPC;
      else if (strcmp(optarg, "http") == 0 || strcmp(optarg, "http-proto") == 0)
        o.protocol = PROTO_HTTP;
      else if (strcmp(optarg, "http-json") == 0)
        o.protocol = PROTO_HTTP_JSON;
      else
        die("--protocol must be grpc, http or http-json");
      break;
    case 's':
      if (otc_signal_parse(optarg, &o.signal) != 0)
        die("--signal must be traces, metrics or logs");
      break;
    case 'e':
      o.endpoint = optarg;
      break;
    case 'i':
      o.items = atoi(optarg);
      break;
    case 'r':
      o.rate = atof(optarg);
      break;
    case 'd':
      if (parse_duration(optarg, &o.dur_ns) != 0)
        die("--duration: expected e.g. 10s, 500ms, 1m");
      break;
    case 'w':
      o.workers = atoi(optarg);
      break;
    case 'a':
      o.attributes = atoi(optarg);
      break;
    case 'D':
      o.distinct = atoi(optarg);
      break;
    case 't':
      o.timeout_ms = atoi(optarg);
      break;
    case 'z':
      o.gzip = true;
      break;
    case 'o':
      dump = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  if (!o.endpoint)
    o.endpoint = o.protocol == PROTO_GRPC ? "127.0.0.1:4317" : "127.0.0.1:4318";
  if (o.items < 1 || o.items > 1000000 || o.workers < 1 || o.workers > 1024 || o.attributes < 0 ||
      o.attributes > 1000 || o.distinct < 1 || o.distinct > 1024 || o.rate < 0 || o.timeout_ms < 1)
    die("an option is out of range (see --help)");

  struct payload *pls = xcalloc((size_t)o.distinct * (size_t)o.workers, sizeof *pls);
  size_t total_bytes = 0;
  for (int w = 0; w < o.workers; w++)
    build_payloads(&o, w, pls + (size_t)w * (size_t)o.distinct);
  for (int i = 0; i < o.distinct * o.workers; i++)
    total_bytes += pls[i].len;
  if (dump) {
    FILE *f = fopen(dump, "wb");
    if (!f || fwrite(pls[0].data, 1, pls[0].len, f) != pls[0].len || fclose(f) != 0)
      die("cannot write the request to --dump FILE");
    return 0;
  }

  if (o.protocol == PROTO_GRPC) {
    grpc_init();
    grpc_arg args[3];
    size_t nargs = 0;
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[nargs++].value.integer = 256 << 20;
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[nargs++].value.integer = 64 << 20;
    if (o.gzip) {
      args[nargs].type = GRPC_ARG_INTEGER;
      args[nargs].key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
      args[nargs++].value.integer = GRPC_COMPRESS_GZIP;
    }
    grpc_channel_args chargs = {.num_args = nargs, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    g_channel = grpc_channel_create(o.endpoint, creds, &chargs);
    grpc_channel_credentials_release(creds);
    if (!g_channel)
      die("grpc_channel_create failed");
  } else {
    curl_global_init(CURL_GLOBAL_DEFAULT);
  }

  struct worker *ws = xcalloc((size_t)o.workers, sizeof *ws);
  int64_t start = now_ns() + 20000000; /* 20 ms for the threads to start */
  for (int i = 0; i < o.workers; i++) {
    ws[i].id = i;
    ws[i].opt = &o;
    ws[i].payloads = pls + (size_t)i * (size_t)o.distinct;
    ws[i].npayloads = o.distinct;
    ws[i].start_ns = start;
    ws[i].end_ns = start + o.dur_ns;
    if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
      die("pthread_create failed");
  }
  uint64_t sent = 0, ok = 0, refused = 0, failed = 0, items_sent = 0, items_accepted = 0;
  size_t nlat = 0;
  const char *last_error = "";
  for (int i = 0; i < o.workers; i++) {
    pthread_join(ws[i].thread, NULL);
    sent += ws[i].sent;
    ok += ws[i].ok;
    refused += ws[i].refused;
    failed += ws[i].failed;
    items_sent += ws[i].items_sent;
    items_accepted += ws[i].items_accepted;
    nlat += ws[i].nlat;
    if (ws[i].last_error[0])
      last_error = ws[i].last_error;
  }
  double elapsed = (double)(now_ns() - start) / 1e9;
  uint32_t *lat = xcalloc(nlat, sizeof *lat);
  size_t off = 0;
  for (int i = 0; i < o.workers; i++) {
    if (ws[i].nlat)
      memcpy(lat + off, ws[i].lat_us, ws[i].nlat * sizeof *lat);
    off += ws[i].nlat;
  }
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  uint32_t p50 = nlat ? lat[(nlat - 1) / 2] : 0;
  uint32_t p99 = nlat ? lat[(size_t)((double)(nlat - 1) * 0.99)] : 0;
  uint32_t max = nlat ? lat[nlat - 1] : 0;
  static const char *const proto_names[] = {"grpc", "http", "http-json"};
  double rate_sent = elapsed > 0 ? (double)items_sent / elapsed : 0;
  double rate_ok = elapsed > 0 ? (double)items_accepted / elapsed : 0;

  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:i, s:f, s:i, s:i, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
      "s:{s:i, s:i, s:i}, s:I, s:s}",
      "protocol", proto_names[o.protocol], "signal", otc_signal_name(o.signal), "endpoint",
      o.endpoint, "items_per_request", o.items, "offered_rate", o.rate, "workers", o.workers,
      "attributes", o.attributes, "gzip", o.gzip, "requests_sent", (json_int_t)sent, "requests_ok",
      (json_int_t)ok, "requests_refused", (json_int_t)refused, "requests_failed",
      (json_int_t)failed, "items_sent", (json_int_t)items_sent, "items_accepted",
      (json_int_t)items_accepted, "elapsed_s", elapsed, "items_per_s", rate_ok, "items_sent_per_s",
      rate_sent, "latency_us", "p50", (int)p50, "p99", (int)p99, "max", (int)max,
      "request_bytes_avg", (json_int_t)(total_bytes / ((size_t)o.distinct * (size_t)o.workers)),
      "last_error", last_error);
  char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (line)
    printf("%s\n", line);
  fflush(stdout);
  free(line);
  json_decref(j);
  fprintf(stderr,
          "loadgen: %s %s: %" PRIu64 " requests (%" PRIu64 " ok, %" PRIu64 " refused, %" PRIu64
          " failed), %" PRIu64 "/%" PRIu64 " items accepted in %.2f s = %.0f items/s; latency "
          "p50 %u us, p99 %u us, max %u us%s%s\n",
          proto_names[o.protocol], otc_signal_name(o.signal), sent, ok, refused, failed,
          items_accepted, items_sent, elapsed, rate_ok, p50, p99, max,
          last_error[0] ? "; last error: " : "", last_error);

  for (int i = 0; i < o.workers; i++) {
    free(ws[i].lat_us);
    free(ws[i].url);
    free(ws[i].resp);
  }
  free(ws);
  free(lat);
  for (int i = 0; i < o.distinct * o.workers; i++) {
    free(pls[i].data);
    free(pls[i].patches);
  }
  free(pls);
  if (o.protocol == PROTO_GRPC) {
    grpc_channel_destroy(g_channel);
    grpc_shutdown();
  } else {
    curl_global_cleanup();
  }
  return 0;
}
