/* The otlp_grpc and otlp_http exporters end to end on loopback, in process: our own otlp receiver
 * (gRPC and HTTP) with a capturing consumer behind it is the server, so the tests see exactly the
 * bytes that arrived. Scripted servers cover what the receiver never answers: a raw gRPC core
 * server (RetryInfo on RESOURCE_EXHAUSTED, deadlines, metadata, TLS) and a libmicrohttpd server
 * (400 with a google.rpc.Status body, 429 with Retry-After, request headers). Retry intervals are
 * short so that everything finishes in seconds. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <microhttpd.h>
#include <zlib.h>

#include "core/batch.h"
#include "core/component.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/metrics.h"
#include "core/otlp_json.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "test.h"

extern const struct otc_component_ops otc_receiver_otlp;
extern const struct otc_component_ops otc_exporter_otlp_grpc;
extern const struct otc_component_ops otc_exporter_otlp_http;

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

#define RETRY_FAST                                                                                 \
  "retry_on_failure:\n  initial_interval: 50ms\n  max_interval: 200ms\n  max_elapsed_time: 20s\n"

/* For destinations that never accept: give up soon, so that shutdown has nothing to drain. */
#define RETRY_SHORT                                                                                \
  "retry_on_failure:\n  initial_interval: 50ms\n  max_interval: 200ms\n"                           \
  "  max_elapsed_time: 600ms\n"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on right now. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* ---- request bytes ---- */

struct bytes {
  uint8_t *data;
  size_t len;
};

/* n spans; the first `bad` of them get a 3-byte span id (the receiver rejects those as a partial
 * success); the first span's name is padded to name_len bytes when name_len > 0. */
static struct bytes make_traces(size_t n, size_t bad, size_t name_len) {
  static uint8_t trace_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static uint8_t span_id[8] = {1, 1, 2, 3, 5, 8, 13, 21};
  Span *spans = calloc(n, sizeof *spans);
  Span **sp = calloc(n, sizeof *sp);
  char *big = NULL;
  if (name_len) {
    big = malloc(name_len + 1);
    for (size_t i = 0; i < name_len; i++)
      big[i] = (char)('a' + (i * 7919 + i / 13) % 26); /* not too compressible */
    big[name_len] = 0;
  }
  KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  av.string_value = "checkout";
  kv.key = "service.name";
  kv.value = &av;
  KeyValue *kvp = &kv;
  for (size_t i = 0; i < n; i++) {
    Span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    spans[i] = init;
    spans[i].trace_id.data = trace_id;
    spans[i].trace_id.len = 16;
    spans[i].span_id.data = span_id;
    spans[i].span_id.len = i < bad ? 3 : 8;
    spans[i].name = (i == 0 && big) ? big : "GET /orders";
    spans[i].kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    spans[i].start_time_unix_nano = 1700000000000000000ull + i;
    spans[i].end_time_unix_nano = 1700000000000001000ull + i;
    sp[i] = &spans[i];
  }
  ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.n_spans = n;
  ss.spans = sp;
  ScopeSpans *ssp = &ss;
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.n_attributes = 1;
  res.attributes = &kvp;
  ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = &ssp;
  ResourceSpans *rsp = &rs;
  TraceReq req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.n_resource_spans = 1;
  req.resource_spans = &rsp;
  struct bytes b;
  b.len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      &req);
  b.data = malloc(b.len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, b.data);
  free(big);
  free(sp);
  free(spans);
  return b;
}

static struct bytes make_metrics(size_t points) {
  NumberDataPoint *dps = calloc(points, sizeof *dps);
  NumberDataPoint **dpp = calloc(points, sizeof *dpp);
  for (size_t i = 0; i < points; i++) {
    NumberDataPoint init = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    dps[i] = init;
    dps[i].start_time_unix_nano = 1700000000000000000ull;
    dps[i].time_unix_nano = 1700000000000000000ull + i;
    dps[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    dps[i].as_int = (int64_t)(i * 3);
    dpp[i] = &dps[i];
  }
  Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
  sum.n_data_points = points;
  sum.data_points = dpp;
  sum.is_monotonic = 1;
  sum.aggregation_temporality =
      OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
  Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
  m.name = "http.server.requests";
  m.unit = "1";
  m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
  m.sum = &sum;
  Metric *mp = &m;
  ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
  sm.n_metrics = 1;
  sm.metrics = &mp;
  ScopeMetrics *smp = &sm;
  ResourceMetrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
  rm.n_scope_metrics = 1;
  rm.scope_metrics = &smp;
  ResourceMetrics *rmp = &rm;
  MetricsReq req =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  req.n_resource_metrics = 1;
  req.resource_metrics = &rmp;
  struct bytes b;
  b.len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          &req);
  b.data = malloc(b.len);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, b.data);
  free(dpp);
  free(dps);
  return b;
}

static struct bytes make_logs(size_t n) {
  LogRecord *lrs = calloc(n, sizeof *lrs);
  LogRecord **lrp = calloc(n, sizeof *lrp);
  AnyValue body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  body.string_value = "order created";
  for (size_t i = 0; i < n; i++) {
    LogRecord init = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    lrs[i] = init;
    lrs[i].time_unix_nano = 1700000000000000000ull + i;
    lrs[i].severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    lrs[i].severity_text = "INFO";
    lrs[i].body = &body;
    lrp[i] = &lrs[i];
  }
  ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  sl.n_log_records = n;
  sl.log_records = lrp;
  ScopeLogs *slp = &sl;
  ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  rl.n_scope_logs = 1;
  rl.scope_logs = &slp;
  ResourceLogs *rlp = &rl;
  LogsReq req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  req.n_resource_logs = 1;
  req.resource_logs = &rlp;
  struct bytes b;
  b.len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  b.data = malloc(b.len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, b.data);
  free(lrp);
  free(lrs);
  return b;
}

/* The three signals' requests, with 3 spans, 4 points and 5 log records. */
struct sample {
  struct bytes b[OTC_SIGNAL_COUNT];
  size_t items[OTC_SIGNAL_COUNT];
};

static void sample_make(struct sample *s) {
  s->b[OTC_SIGNAL_TRACES] = make_traces(3, 0, 0);
  s->items[OTC_SIGNAL_TRACES] = 3;
  s->b[OTC_SIGNAL_METRICS] = make_metrics(4);
  s->items[OTC_SIGNAL_METRICS] = 4;
  s->b[OTC_SIGNAL_LOGS] = make_logs(5);
  s->items[OTC_SIGNAL_LOGS] = 5;
}

static void sample_free(struct sample *s) {
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++)
    free(s->b[i].data);
}

static struct otc_batch *batch_of(enum otc_signal s, const struct bytes *b, size_t items) {
  return otc_batch_copy(s, b->data, b->len, items, false, NULL);
}

/* ---- the capturing consumer behind our receiver ---- */

static struct {
  pthread_mutex_t mu;
  int calls[OTC_SIGNAL_COUNT];     /* consume calls, failed ones included */
  int delivered[OTC_SIGNAL_COUNT]; /* accepted batches */
  size_t items[OTC_SIGNAL_COUNT];
  uint8_t *last[OTC_SIGNAL_COUNT]; /* bytes of the last accepted batch */
  size_t last_len[OTC_SIGNAL_COUNT];
  int fail_left; /* the next fail_left calls return fail_rc */
  int fail_rc;
} cap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int capture_consume(void *ctx, struct otc_batch *b) {
  (void)ctx;
  int rc = 0;
  pthread_mutex_lock(&cap.mu);
  cap.calls[b->signal]++;
  if (cap.fail_left > 0) {
    cap.fail_left--;
    rc = cap.fail_rc;
  } else {
    cap.delivered[b->signal]++;
    cap.items[b->signal] += b->items;
    free(cap.last[b->signal]);
    cap.last[b->signal] = malloc(b->len ? b->len : 1);
    memcpy(cap.last[b->signal], b->data, b->len);
    cap.last_len[b->signal] = b->len;
  }
  pthread_mutex_unlock(&cap.mu);
  otc_batch_unref(b);
  return rc;
}

static void cap_reset(int fail_left, int fail_rc) {
  pthread_mutex_lock(&cap.mu);
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
    free(cap.last[s]);
    cap.last[s] = NULL;
    cap.last_len[s] = 0;
    cap.calls[s] = cap.delivered[s] = 0;
    cap.items[s] = 0;
  }
  cap.fail_left = fail_left;
  cap.fail_rc = fail_rc;
  pthread_mutex_unlock(&cap.mu);
}

static int cap_delivered(enum otc_signal s) {
  pthread_mutex_lock(&cap.mu);
  int n = cap.delivered[s];
  pthread_mutex_unlock(&cap.mu);
  return n;
}

static int cap_calls(enum otc_signal s) {
  pthread_mutex_lock(&cap.mu);
  int n = cap.calls[s];
  pthread_mutex_unlock(&cap.mu);
  return n;
}

static size_t cap_items(enum otc_signal s) {
  pthread_mutex_lock(&cap.mu);
  size_t n = cap.items[s];
  pthread_mutex_unlock(&cap.mu);
  return n;
}

/* Whether the last accepted batch of s has exactly these bytes. */
static bool cap_same(enum otc_signal s, const struct bytes *b) {
  pthread_mutex_lock(&cap.mu);
  bool same = cap.last[s] && cap.last_len[s] == b->len && memcmp(cap.last[s], b->data, b->len) == 0;
  pthread_mutex_unlock(&cap.mu);
  return same;
}

/* The OTLP JSON of the last accepted batch of s (malloc'd), to compare content across encodings. */
static char *cap_json(enum otc_signal s) {
  char *json = NULL;
  size_t len = 0;
  pthread_mutex_lock(&cap.mu);
  if (cap.last[s] && otc_proto_to_json(s, cap.last[s], cap.last_len[s], &json, &len) != 0)
    json = NULL;
  pthread_mutex_unlock(&cap.mu);
  return json;
}

static bool wait_delivered(enum otc_signal s, int n, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (cap_delivered(s) < n && now_ms() < end)
    sleep_ms(10);
  return cap_delivered(s) >= n;
}

/* ---- our receiver ---- */

struct rx {
  struct otc_cfg_node *cfg;
  void *r;
  int grpc_port, http_port;
};

/* Starts the otlp receiver with both transports; a port of 0 picks a free one. */
static bool rx_start(struct rx *x, int grpc_port, int http_port) {
  memset(x, 0, sizeof *x);
  x->grpc_port = grpc_port ? grpc_port : free_port();
  x->http_port = http_port ? http_port : free_port();
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "protocols:\n  grpc:\n    endpoint: \"127.0.0.1:%d\"\n    max_recv_msg_size_mib: 1\n"
           "  http:\n    endpoint: \"127.0.0.1:%d\"\n",
           x->grpc_port, x->http_port);
  struct otc_cfg_err err = {{0}};
  x->cfg = otc_cfg_load_string(yaml, strlen(yaml), "<rx>", &err);
  if (!x->cfg)
    return false;
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "otlp";
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    args.next_by_signal[s].consume = capture_consume;
  x->r = otc_receiver_otlp.create(&args, x->cfg, &err);
  if (!x->r) {
    fprintf(stderr, "receiver: %s\n", err.msg);
    return false;
  }
  return otc_receiver_otlp.start(x->r) == 0;
}

static void rx_stop(struct rx *x) {
  if (x->r) {
    otc_receiver_otlp.shutdown(x->r);
    otc_receiver_otlp.destroy(x->r);
  }
  otc_cfg_free(x->cfg);
  memset(x, 0, sizeof *x);
}

/* ---- the exporter under test ---- */

struct ex {
  struct otc_cfg_node *cfg;
  const struct otc_component_ops *ops;
  void *e;
};

static bool ex_start(struct ex *x, const struct otc_component_ops *ops, const char *id,
                     const char *yaml) {
  memset(x, 0, sizeof *x);
  x->ops = ops;
  struct otc_cfg_err err = {{0}};
  x->cfg = otc_cfg_load_string(yaml, strlen(yaml), "<exporter>", &err);
  if (!x->cfg) {
    fprintf(stderr, "config: %s\n", err.msg);
    return false;
  }
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = id;
  args.root = x->cfg;
  x->e = ops->create(&args, x->cfg, &err);
  if (!x->e) {
    fprintf(stderr, "create: %s\n", err.msg);
    return false;
  }
  return ops->start(x->e) == 0;
}

static int ex_send(struct ex *x, enum otc_signal s, const struct bytes *b, size_t items) {
  return x->ops->consume(x->e, batch_of(s, b, items));
}

static void ex_stop(struct ex *x) {
  if (x->e) {
    CHECK_EQ_INT(x->ops->shutdown(x->e), 0);
    CHECK_EQ_INT(x->ops->shutdown(x->e), 0); /* idempotent */
    x->ops->destroy(x->e);
  }
  otc_cfg_free(x->cfg);
  memset(x, 0, sizeof *x);
}

/* Creates from YAML and expects failure; copies the error into msg. */
static bool create_fails(const struct otc_component_ops *ops, const char *yaml, char *msg,
                         size_t cap_) {
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *cfg = otc_cfg_load_string(yaml, strlen(yaml), "<exporter>", &err);
  msg[0] = '\0';
  if (!cfg) {
    snprintf(msg, cap_, "%s", err.msg);
    return true;
  }
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "exp";
  void *e = ops->create(&args, cfg, &err);
  bool failed = e == NULL;
  if (e)
    ops->destroy(e);
  else
    snprintf(msg, cap_, "%s", err.msg);
  otc_cfg_free(cfg);
  return failed;
}

/* ---- self-metrics ---- */

static uint64_t exporter_counter(const char *what, const char *id, enum otc_signal s) {
  char name[128], labels[128];
  snprintf(name, sizeof name, "otelcol_exporter_%s_%s", what, otc_signal_item_name(s));
  snprintf(labels, sizeof labels, "exporter=\"%s\"", id);
  return otc_counter_value(otc_counter_get(name, "", labels));
}

static uint64_t dropped(const char *id, enum otc_signal s, const char *reason) {
  char labels[256];
  snprintf(labels, sizeof labels, "component=\"%s\",otel_signal=\"%s\",reason=\"%s\"", id,
           otc_signal_name(s), reason);
  return otc_counter_value(otc_counter_get("otelcol_dropped_items", "", labels));
}

static bool wait_counter(uint64_t (*fn)(const char *, enum otc_signal, const char *),
                         const char *id, enum otc_signal s, const char *arg, uint64_t want,
                         int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (fn(id, s, arg) < want && now_ms() < end)
    sleep_ms(10);
  return fn(id, s, arg) >= want;
}

static uint64_t dropped_fn(const char *id, enum otc_signal s, const char *reason) {
  return dropped(id, s, reason);
}

static uint64_t sent_fn(const char *id, enum otc_signal s, const char *unused) {
  (void)unused;
  return exporter_counter("sent", id, s);
}

/* ---- stderr capture, to read what the exporter logged ---- */

struct errcap {
  int saved;
  char path[64];
};

static void errcap_begin(struct errcap *c) {
  snprintf(c->path, sizeof c->path, "/tmp/otc_otlpexp_log_XXXXXX");
  fflush(stderr);
  c->saved = dup(2);
  int fd = mkstemp(c->path);
  dup2(fd, 2);
  close(fd);
}

/* Whether the captured log contains needle, waiting up to timeout_ms for it to be written. */
static bool errcap_wait(struct errcap *c, const char *needle, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    FILE *f = fopen(c->path, "r");
    bool found = false;
    if (f) {
      char line[4096];
      while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
      fclose(f);
    }
    if (found || now_ms() >= end)
      return found;
    sleep_ms(20);
  }
}

static void errcap_end(struct errcap *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  unlink(c->path);
}

/* ---- a scripted raw gRPC server ---- */

#define TAG_CALL ((void *)1)
#define TAG_OP ((void *)2)
#define TAG_SHUTDOWN ((void *)3)

struct gstep {
  grpc_status_code code;
  int retry_info_ms; /* >= 0: a RetryInfo with this delay in grpc-status-details-bin */
  int delay_ms;      /* sleep before answering */
  int64_t rejected;  /* OK answers: partial_success.rejected_spans */
};

struct gsrv {
  grpc_server *server;
  grpc_completion_queue *cq;
  pthread_t thread;
  int port;
  bool seen_shutdown;
  pthread_mutex_t mu;
  struct gstep script[8];
  int script_n;
  int calls;
  int64_t call_ms[8];
  uint8_t *last;
  size_t last_len;
  char method[128];
  char tenant[64];
  char user_agent[128];
  grpc_compression_algorithm compression; /* of the last request message, as it came */
};

static void gsrv_wait(struct gsrv *g, void *tag) {
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      return;
    if (ev.tag == TAG_SHUTDOWN)
      g->seen_shutdown = true;
    if (ev.tag == tag)
      return;
  }
}

static void copy_md(const grpc_metadata_array *md, const char *key, char *out, size_t cap_) {
  for (size_t i = 0; i < md->count; i++) {
    if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) {
      size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
      if (n >= cap_)
        n = cap_ - 1;
      memcpy(out, GRPC_SLICE_START_PTR(md->metadata[i].value), n);
      out[n] = '\0';
    }
  }
}

/* Inflates a gzip message (the scripted server keeps messages as sent). Returns a malloc'd copy
 * in *out, or NULL when the data is not gzip. */
static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len) {
  size_t cap_ = len * 4 + 1024;
  uint8_t *out = malloc(cap_);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (!out || inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    free(out);
    return NULL;
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.total_out == cap_) {
      uint8_t *p = realloc(out, cap_ * 2);
      if (!p)
        break;
      out = p;
      cap_ *= 2;
    }
    zs.next_out = out + zs.total_out;
    zs.avail_out = (uInt)(cap_ - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
  }
  *out_len = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    free(out);
    return NULL;
  }
  return out;
}

static void gsrv_answer(struct gsrv *g, grpc_call *call, const grpc_call_details *det,
                        const grpc_metadata_array *md) {
  grpc_byte_buffer *req = NULL;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &req;
  if (grpc_call_start_batch(call, &op, 1, TAG_OP, NULL) != GRPC_CALL_OK)
    return;
  gsrv_wait(g, TAG_OP);
  grpc_slice body = grpc_empty_slice();
  grpc_compression_algorithm compression = GRPC_COMPRESS_NONE;
  if (req) {
    compression = req->data.raw.compression;
    grpc_byte_buffer_reader r;
    if (grpc_byte_buffer_reader_init(&r, req)) {
      body = grpc_byte_buffer_reader_readall(&r);
      grpc_byte_buffer_reader_destroy(&r);
    }
    grpc_byte_buffer_destroy(req);
  }
  pthread_mutex_lock(&g->mu);
  struct gstep step = {GRPC_STATUS_OK, -1, 0, 0};
  if (g->calls < g->script_n)
    step = g->script[g->calls];
  if (g->calls < 8)
    g->call_ms[g->calls] = now_ms();
  g->calls++;
  free(g->last);
  g->last = NULL;
  if (compression == GRPC_COMPRESS_GZIP)
    g->last = gunzip(GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body), &g->last_len);
  if (!g->last) {
    g->last_len = GRPC_SLICE_LENGTH(body);
    g->last = malloc(g->last_len ? g->last_len : 1);
    memcpy(g->last, GRPC_SLICE_START_PTR(body), g->last_len);
  }
  char *m = grpc_slice_to_c_string(det->method);
  snprintf(g->method, sizeof g->method, "%s", m);
  gpr_free(m);
  g->compression = compression;
  copy_md(md, "x-tenant", g->tenant, sizeof g->tenant);
  copy_md(md, "user-agent", g->user_agent, sizeof g->user_agent);
  pthread_mutex_unlock(&g->mu);
  grpc_slice_unref(body);
  if (step.delay_ms)
    sleep_ms(step.delay_ms);

  /* The answer: the response message on OK, RetryInfo details on request. */
  uint8_t resp_buf[256], st_buf[256];
  grpc_byte_buffer *resp = NULL;
  if (step.code == GRPC_STATUS_OK) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse rs =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    if (step.rejected) {
      ps.rejected_spans = step.rejected;
      ps.error_message = "span too old";
      rs.partial_success = &ps;
    }
    size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(
        &rs, resp_buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)resp_buf, n);
    resp = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
  }
  grpc_metadata trailer;
  size_t n_trailers = 0;
  if (step.retry_info_ms >= 0) {
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = step.retry_info_ms / 1000;
    d.nanos = (step.retry_info_ms % 1000) * 1000000;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    ri.retry_delay = &d;
    uint8_t ri_buf[64];
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
    any.value.len = google__rpc__retry_info__pack(&ri, ri_buf);
    any.value.data = ri_buf;
    Google__Protobuf__Any *details[1] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = (int32_t)step.code;
    st.message = "scripted";
    st.n_details = 1;
    st.details = details;
    size_t n = google__rpc__status__pack(&st, st_buf);
    trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
    trailer.value = grpc_slice_from_copied_buffer((const char *)st_buf, n);
    n_trailers = 1;
  }
  grpc_slice details = grpc_slice_from_static_string("scripted answer");
  int cancelled = 0;
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t k = 0;
  ops[k++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (resp) {
    ops[k].op = GRPC_OP_SEND_MESSAGE;
    ops[k++].data.send_message.send_message = resp;
  }
  ops[k].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[k].data.send_status_from_server.status = step.code;
  ops[k].data.send_status_from_server.status_details = &details;
  ops[k].data.send_status_from_server.trailing_metadata_count = n_trailers;
  ops[k++].data.send_status_from_server.trailing_metadata = n_trailers ? &trailer : NULL;
  ops[k].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[k++].data.recv_close_on_server.cancelled = &cancelled;
  if (grpc_call_start_batch(call, ops, k, TAG_OP, NULL) == GRPC_CALL_OK)
    gsrv_wait(g, TAG_OP);
  if (n_trailers)
    grpc_slice_unref(trailer.value);
  if (resp)
    grpc_byte_buffer_destroy(resp);
}

static void *gsrv_main(void *arg) {
  struct gsrv *g = arg;
  for (;;) {
    grpc_call *call = NULL;
    grpc_call_details det;
    grpc_metadata_array md;
    grpc_call_details_init(&det);
    grpc_metadata_array_init(&md);
    bool served = false;
    if (grpc_server_request_call(g->server, &call, &det, &md, g->cq, g->cq, TAG_CALL) ==
        GRPC_CALL_OK) {
      for (;;) {
        grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
          break;
        if (ev.tag == TAG_SHUTDOWN)
          g->seen_shutdown = true;
        if (ev.tag == TAG_CALL) {
          served = ev.success;
          break;
        }
      }
    }
    if (served && call)
      gsrv_answer(g, call, &det, &md);
    if (call)
      grpc_call_unref(call);
    grpc_call_details_destroy(&det);
    grpc_metadata_array_destroy(&md);
    if (!served)
      break;
  }
  if (!g->seen_shutdown)
    gsrv_wait(g, TAG_SHUTDOWN);
  return NULL;
}

/* Starts the scripted server on a loopback port, with TLS when cert and key are given. */
static bool gsrv_start(struct gsrv *g, const char *cert_pem, const char *key_pem) {
  memset(g, 0, sizeof *g);
  pthread_mutex_init(&g->mu, NULL);
  g->cq = grpc_completion_queue_create_for_next(NULL);
  /* Messages arrive as sent, so that the test sees whether they were compressed. */
  grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                  .key = GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION,
                  .value.integer = 0};
  grpc_channel_args args = {.num_args = 1, .args = &arg};
  g->server = grpc_server_create(&args, NULL);
  grpc_server_register_completion_queue(g->server, g->cq, NULL);
  grpc_server_credentials *creds;
  if (cert_pem) {
    grpc_ssl_pem_key_cert_pair pair = {key_pem, cert_pem};
    creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
  } else {
    creds = grpc_insecure_server_credentials_create();
  }
  g->port = grpc_server_add_http2_port(g->server, "127.0.0.1:0", creds);
  grpc_server_credentials_release(creds);
  if (g->port <= 0)
    return false;
  grpc_server_start(g->server);
  return pthread_create(&g->thread, NULL, gsrv_main, g) == 0;
}

static void gsrv_stop(struct gsrv *g) {
  grpc_server_shutdown_and_notify(g->server, g->cq, TAG_SHUTDOWN);
  grpc_server_cancel_all_calls(g->server);
  pthread_join(g->thread, NULL);
  grpc_server_destroy(g->server);
  grpc_completion_queue_shutdown(g->cq);
  while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(g->cq);
  free(g->last);
  pthread_mutex_destroy(&g->mu);
}

static int gsrv_calls(struct gsrv *g) {
  pthread_mutex_lock(&g->mu);
  int n = g->calls;
  pthread_mutex_unlock(&g->mu);
  return n;
}

static bool gsrv_wait_calls(struct gsrv *g, int n, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (gsrv_calls(g) < n && now_ms() < end)
    sleep_ms(10);
  return gsrv_calls(g) >= n;
}

/* ---- a scripted HTTP server (libmicrohttpd) ---- */

struct hstep {
  unsigned status;
  const char *retry_after; /* Retry-After header, or NULL */
  bool status_body;        /* answer with a protobuf google.rpc.Status */
  const char *json;        /* otherwise, a JSON body (or none) */
};

struct hsrv {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  struct hstep script[8];
  int script_n;
  int hits;
  int64_t hit_ms[8];
  char path[128], content_type[64], content_encoding[32], tenant[64];
  uint8_t *body;
  size_t body_len;
};

struct upload {
  uint8_t *data;
  size_t len, cap;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t cap_) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  snprintf(out, cap_, "%s", v ? v : "");
}

static enum MHD_Result hsrv_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls) {
  struct hsrv *h = cls;
  (void)method;
  (void)version;
  struct upload *u = *con_cls;
  if (!u) {
    u = calloc(1, sizeof *u);
    *con_cls = u;
    return u ? MHD_YES : MHD_NO;
  }
  if (*upload_data_size) {
    if (u->len + *upload_data_size > u->cap) {
      size_t ncap = (u->len + *upload_data_size) * 2;
      uint8_t *p = realloc(u->data, ncap);
      if (!p)
        return MHD_NO;
      u->data = p;
      u->cap = ncap;
    }
    memcpy(u->data + u->len, upload_data, *upload_data_size);
    u->len += *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&h->mu);
  struct hstep step = {200, NULL, false, NULL};
  if (h->hits < h->script_n)
    step = h->script[h->hits];
  if (h->hits < 8)
    h->hit_ms[h->hits] = now_ms();
  h->hits++;
  snprintf(h->path, sizeof h->path, "%s", url);
  copy_header(c, "Content-Type", h->content_type, sizeof h->content_type);
  copy_header(c, "Content-Encoding", h->content_encoding, sizeof h->content_encoding);
  copy_header(c, "X-Tenant", h->tenant, sizeof h->tenant);
  free(h->body);
  h->body = u->data;
  h->body_len = u->len;
  u->data = NULL;
  pthread_mutex_unlock(&h->mu);

  uint8_t buf[256];
  size_t n = 0;
  if (step.status_body) {
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "span data rejected by policy";
    n = google__rpc__status__pack(&st, buf);
  } else if (step.json) {
    n = strlen(step.json);
    memcpy(buf, step.json, n);
  }
  struct MHD_Response *resp = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, "Content-Type",
                          step.json ? "application/json" : "application/x-protobuf");
  if (step.retry_after)
    MHD_add_response_header(resp, "Retry-After", step.retry_after);
  enum MHD_Result r = MHD_queue_response(c, step.status, resp);
  MHD_destroy_response(resp);
  return r;
}

static void hsrv_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct upload *u = *con_cls;
  if (u) {
    free(u->data);
    free(u);
    *con_cls = NULL;
  }
}

static bool hsrv_start(struct hsrv *h) {
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->mu, NULL);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                          NULL, hsrv_handle, h, MHD_OPTION_SOCK_ADDR, &sa,
                          MHD_OPTION_NOTIFY_COMPLETED, hsrv_completed, h, MHD_OPTION_END);
  if (!h->d)
    return false;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? info->port : 0;
  return h->port > 0;
}

static void hsrv_stop(struct hsrv *h) {
  if (h->d)
    MHD_stop_daemon(h->d);
  free(h->body);
  pthread_mutex_destroy(&h->mu);
}

static int hsrv_hits(struct hsrv *h) {
  pthread_mutex_lock(&h->mu);
  int n = h->hits;
  pthread_mutex_unlock(&h->mu);
  return n;
}

static bool hsrv_wait_hits(struct hsrv *h, int n, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (hsrv_hits(h) < n && now_ms() < end)
    sleep_ms(10);
  return hsrv_hits(h) >= n;
}

/* ================= tests ================= */

TEST(registry_names_and_aliases) {
  CHECK(otc_component_find(OTC_KIND_EXPORTER, "otlp_grpc") == &otc_exporter_otlp_grpc);
  CHECK(otc_component_find(OTC_KIND_EXPORTER, "otlp") == &otc_exporter_otlp_grpc);
  CHECK(otc_component_find(OTC_KIND_EXPORTER, "otlp_http") == &otc_exporter_otlp_http);
  CHECK(otc_component_find(OTC_KIND_EXPORTER, "otlphttp") == &otc_exporter_otlp_http);
  CHECK_EQ_INT(otc_exporter_otlp_grpc.signals, OTC_SIGNALS_ALL);
  CHECK_EQ_INT(otc_exporter_otlp_http.signals, OTC_SIGNALS_ALL);
}

/* Every signal's bytes reach the receiver unchanged, with and without gzip, and a shutdown right
 * after the sends still delivers them (the queue drains). */
static void grpc_roundtrip(const char *id, const char *endpoint_fmt, const char *extra) {
  struct rx x;
  struct ex e;
  struct sample s;
  sample_make(&s);
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[1024];
  char ep[128];
  snprintf(ep, sizeof ep, endpoint_fmt, x.grpc_port);
  snprintf(yaml, sizeof yaml, "endpoint: \"%s\"\n%s" RETRY_FAST, ep, extra);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  for (int i = 0; e.e && i < OTC_SIGNAL_COUNT; i++)
    CHECK_EQ_INT(ex_send(&e, (enum otc_signal)i, &s.b[i], s.items[i]), 0);
  ex_stop(&e);
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++) {
    CHECK_EQ_INT(cap_delivered((enum otc_signal)i), 1);
    CHECK_EQ_INT(cap_items((enum otc_signal)i), s.items[i]);
    CHECK(cap_same((enum otc_signal)i, &s.b[i]));
    CHECK_EQ_INT(exporter_counter("sent", id, (enum otc_signal)i), s.items[i]);
    CHECK_EQ_INT(exporter_counter("send_failed", id, (enum otc_signal)i), 0);
  }
  rx_stop(&x);
  sample_free(&s);
}

TEST(grpc_bytes_arrive_unchanged_gzip) {
  grpc_roundtrip("otlp_grpc/gzip", "127.0.0.1:%d", "tls:\n  insecure: true\n");
}

TEST(grpc_bytes_arrive_unchanged_plain_http_scheme) {
  /* http:// means plaintext without tls.insecure (the OTLP exporter specification). */
  grpc_roundtrip("otlp/none", "http://127.0.0.1:%d", "compression: none\n");
}

TEST(grpc_unavailable_is_retried_until_delivered) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(2, 0, 0);
  cap_reset(2, OTC_ERR_REFUSED); /* the receiver answers UNAVAILABLE + RetryInfo twice */
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\n" RETRY_FAST,
           x.grpc_port);
  const char *id = "otlp_grpc/retry";
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  int64_t t0 = now_ms();
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), 0);
  CHECK(wait_delivered(OTC_SIGNAL_TRACES, 1, 10000));
  /* The receiver's RetryInfo (1 s) is longer than our backoff, so it sets the pace. */
  CHECK(now_ms() - t0 >= 1900);
  sleep_ms(200);
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_TRACES), 3);
  CHECK_EQ_INT(cap_delivered(OTC_SIGNAL_TRACES), 1);
  CHECK(cap_same(OTC_SIGNAL_TRACES, &b));
  CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_TRACES, NULL, 2, 2000));
  CHECK_EQ_INT(exporter_counter("send_failed", id, OTC_SIGNAL_TRACES), 0);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

TEST(grpc_permanent_failure_dropped_once) {
  struct rx x;
  struct ex e;
  struct bytes b = make_logs(4);
  cap_reset(100, OTC_ERR_PERMANENT); /* the receiver answers INTERNAL */
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\n" RETRY_FAST,
           x.grpc_port);
  const char *id = "otlp_grpc/perm";
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 4), 0);
  CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_LOGS, "grpc_internal", 4, 5000));
  sleep_ms(400); /* long enough for several retries, were there any */
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_LOGS), 1);
  CHECK_EQ_INT(exporter_counter("send_failed", id, OTC_SIGNAL_LOGS), 4);
  CHECK_EQ_INT(exporter_counter("sent", id, OTC_SIGNAL_LOGS), 0);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

TEST(grpc_too_large_is_not_retried) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(1, 0, 1024 * 1024 + 100); /* over the receiver's 1 MiB */
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "endpoint: 127.0.0.1:%d\ncompression: none\ntls:\n  insecure: true\n" RETRY_FAST,
           x.grpc_port);
  const char *id = "otlp_grpc/large";
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 1), 0);
  /* RESOURCE_EXHAUSTED without RetryInfo: permanent. */
  CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "grpc_resource_exhausted", 1, 5000));
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_TRACES), 0);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

TEST(grpc_endpoint_down_then_up) {
  struct rx x;
  struct ex e;
  struct bytes b = make_metrics(6);
  cap_reset(0, 0);
  int port = free_port();
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\n" RETRY_FAST, port);
  const char *id = "otlp_grpc/down";
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_METRICS, &b, 6), 0);
  sleep_ms(700); /* connection refused, retried */
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_METRICS), 0);
  CHECK(rx_start(&x, port, 0));
  CHECK(wait_delivered(OTC_SIGNAL_METRICS, 1, 10000));
  CHECK(cap_same(OTC_SIGNAL_METRICS, &b));
  CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_METRICS, NULL, 6, 2000));
  CHECK_EQ_INT(exporter_counter("send_failed", id, OTC_SIGNAL_METRICS), 0);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

TEST(grpc_partial_success_counted) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(5, 2, 0); /* two spans with bad ids: rejected by the receiver */
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\n" RETRY_FAST,
           x.grpc_port);
  const char *id = "otlp_grpc/partial";
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 5), 0);
  CHECK(wait_delivered(OTC_SIGNAL_TRACES, 1, 5000));
  CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "partial_success", 2, 5000));
  CHECK_EQ_INT(dropped(id, OTC_SIGNAL_TRACES, "partial_success"), 2);
  CHECK_EQ_INT(cap_items(OTC_SIGNAL_TRACES), 3);
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_TRACES), 1); /* a partial success is not retried */
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

/* Against the scripted server: metadata from headers, the exact bytes on the right method,
 * RESOURCE_EXHAUSTED with RetryInfo retried after the delay it names, a
 * partial success from the server counted, INVALID_ARGUMENT and UNAUTHENTICATED dropped. */
TEST(grpc_scripted_statuses) {
  struct gsrv g;
  struct ex e;
  CHECK(gsrv_start(&g, NULL, NULL));
  g.script[0] = (struct gstep){GRPC_STATUS_RESOURCE_EXHAUSTED, 300, 0, 0};
  g.script[1] = (struct gstep){GRPC_STATUS_OK, -1, 0, 1}; /* partial success: 1 rejected */
  g.script[2] = (struct gstep){GRPC_STATUS_INVALID_ARGUMENT, -1, 0, 0};
  g.script[3] = (struct gstep){GRPC_STATUS_UNAUTHENTICATED, -1, 0, 0};
  g.script_n = 4;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\ntimeout: 250ms\n"
           "headers:\n  X-Tenant: acme\nsending_queue:\n  num_consumers: 1\n"
           "keepalive:\n  time: 30s\n  timeout: 5s\nwait_for_ready: false\n" RETRY_FAST,
           g.port);
  const char *id = "otlp_grpc/scripted";
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  struct bytes b = make_traces(3, 0, 0);
  if (e.e) {
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 3), 0);
    CHECK(gsrv_wait_calls(&g, 2, 10000));
    CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "partial_success", 1, 5000));
    pthread_mutex_lock(&g.mu);
    CHECK(g.call_ms[1] - g.call_ms[0] >= 290); /* RetryInfo's 300 ms honoured */
    CHECK_EQ_STR(g.method, "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    CHECK_EQ_STR(g.tenant, "acme");
    CHECK_EQ_INT(g.compression, GRPC_COMPRESS_GZIP); /* the default */
    CHECK_CONTAINS(g.user_agent, "otelc-collector/");
    CHECK(g.last_len == b.len && memcmp(g.last, b.data, b.len) == 0);
    pthread_mutex_unlock(&g.mu);
    CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_TRACES, NULL, 3, 2000));

    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 3), 0);
    CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "grpc_invalid_argument", 3, 5000));
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 3), 0);
    CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "grpc_unauthenticated", 3, 5000));
    sleep_ms(300);
    CHECK_EQ_INT(gsrv_calls(&g), 4); /* neither was retried */
    CHECK_EQ_INT(exporter_counter("send_failed", id, OTC_SIGNAL_TRACES), 6);
  }
  ex_stop(&e);
  gsrv_stop(&g);
  free(b.data);
}

/* A server slower than the timeout: DEADLINE_EXCEEDED, retried. The retry waits until the
 * single-threaded server is free again (initial_interval 1s, no jitter). */
TEST(grpc_deadline_is_retried) {
  struct gsrv g;
  struct ex e;
  CHECK(gsrv_start(&g, NULL, NULL));
  g.script[0] = (struct gstep){GRPC_STATUS_OK, -1, 700, 0};
  g.script_n = 1;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\ntimeout: 200ms\ncompression: none\n"
           "retry_on_failure:\n  initial_interval: 1s\n  randomization_factor: 0\n",
           g.port);
  const char *id = "otlp_grpc/deadline";
  struct bytes b = make_traces(2, 0, 0);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, id, yaml));
  int64_t t0 = now_ms();
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), 0);
  CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_TRACES, NULL, 2, 5000));
  CHECK(now_ms() - t0 >= 1100);
  CHECK_EQ_INT(gsrv_calls(&g), 2);
  pthread_mutex_lock(&g.mu);
  CHECK_EQ_INT(g.compression, GRPC_COMPRESS_NONE);
  CHECK(g.last_len == b.len && memcmp(g.last, b.data, b.len) == 0);
  pthread_mutex_unlock(&g.mu);
  ex_stop(&e);
  gsrv_stop(&g);
  free(b.data);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = calloc(1, 65536);
  if (buf)
    fread(buf, 1, 65535, f);
  fclose(f);
  return buf;
}

/* TLS by default: against a TLS server the exporter needs the CA (ca_file); `https://` keeps TLS
 * even with tls.insecure; a plaintext exporter cannot talk to a TLS server. */
TEST(grpc_tls) {
  char dir[] = "/tmp/otc_otlpexp_tls_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char cmd[1024], cert[128], key[128];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
           ">/dev/null 2>&1",
           key, cert);
  CHECK_EQ_INT(system(cmd), 0);
  char *cert_pem = read_file(cert), *key_pem = read_file(key);
  struct gsrv g;
  struct bytes b = make_logs(2);
  if (!cert_pem || !key_pem || !gsrv_start(&g, cert_pem, key_pem)) {
    CHECK(false);
    goto out;
  }
  char yaml[512];
  struct ex e;
  /* Unknown issuer: retried (the certificate may get fixed), never delivered. */
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\n" RETRY_SHORT, g.port);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, "otlp_grpc/tls0", yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 2), 0);
  CHECK(wait_counter(dropped_fn, "otlp_grpc/tls0", OTC_SIGNAL_LOGS, "retry_exhausted", 2, 3000));
  CHECK_EQ_INT(gsrv_calls(&g), 0);
  ex_stop(&e);
  /* Plaintext against TLS: never delivered. */
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\n" RETRY_SHORT,
           g.port);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, "otlp_grpc/tls1", yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 2), 0);
  CHECK(wait_counter(dropped_fn, "otlp_grpc/tls1", OTC_SIGNAL_LOGS, "retry_exhausted", 2, 3000));
  CHECK_EQ_INT(gsrv_calls(&g), 0);
  ex_stop(&e);
  /* The CA given: delivered. */
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls:\n  ca_file: %s\n" RETRY_FAST, g.port,
           cert);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, "otlp_grpc/tls2", yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 2), 0);
  CHECK(gsrv_wait_calls(&g, 1, 5000));
  ex_stop(&e);
  /* https:// wins over insecure: true. */
  snprintf(yaml, sizeof yaml,
           "endpoint: https://127.0.0.1:%d\ntls:\n  insecure: true\n  ca_file: %s\n" RETRY_FAST,
           g.port, cert);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, "otlp_grpc/tls3", yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 2), 0);
  CHECK(gsrv_wait_calls(&g, 2, 5000));
  ex_stop(&e);
  pthread_mutex_lock(&g.mu);
  CHECK(g.last_len == b.len && memcmp(g.last, b.data, b.len) == 0);
  CHECK_EQ_STR(g.method, "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
  pthread_mutex_unlock(&g.mu);
  gsrv_stop(&g);
out:
  free(b.data);
  free(cert_pem);
  free(key_pem);
  unlink(cert);
  unlink(key);
  rmdir(dir);
}

TEST(grpc_config_errors) {
  char msg[512];
  const struct otc_component_ops *g = &otc_exporter_otlp_grpc;
  CHECK(create_fails(g, "tls:\n  insecure: true\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "endpoint");
  CHECK(create_fails(g, "endpoint: localhost\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "host:port");
  CHECK(create_fails(g, "endpoint: localhost:http\n", msg, sizeof msg));
  CHECK(create_fails(g, "endpoint: \"localhost:4317/\"\n", msg, sizeof msg));
  CHECK(create_fails(g, "endpoint: \"::1:4317\"\n", msg, sizeof msg));
  CHECK(create_fails(g, "endpoint: localhost:4317\ncompression: zstd\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "unsupported compression");
  CHECK(create_fails(g, "endpoint: localhost:4317\nauth:\n  authenticator: bearertokenauth\n", msg,
                     sizeof msg));
  CHECK_CONTAINS(msg, "not defined or not enabled"); /* built alone, no extension is enabled */
  CHECK(create_fails(g, "endpoint: localhost:4317\ntls:\n  insecure_skip_verify: true\n", msg,
                     sizeof msg));
  CHECK_CONTAINS(msg, "not supported for gRPC yet");
  CHECK(
      create_fails(g, "endpoint: localhost:4317\ntls:\n  min_version: \"1.3\"\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "not supported for gRPC yet");
  CHECK(create_fails(g, "endpoint: localhost:4317\nheaders:\n  \"bad key\": x\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "metadata key");
  CHECK(
      create_fails(g, "endpoint: localhost:4317\nheaders:\n  grpc-timeout: 1S\n", msg, sizeof msg));
  CHECK(create_fails(g, "endpoint: localhost:4317\nheaders:\n  x-a: \"caf\xc3\xa9\"\n", msg,
                     sizeof msg));
  CHECK(create_fails(g, "endpoint: localhost:4317\nbalancer_name: magic\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "balancer_name");
  CHECK(create_fails(g, "endpoint: localhost:4317\nsending_queue:\n  queue_size: 0\n", msg,
                     sizeof msg));
  CHECK(create_fails(g, "endpoint: localhost:4317\nretry_on_failure:\n  multiplier: -1\n", msg,
                     sizeof msg));
  CHECK(create_fails(g, "endpoint: localhost:4317\nnonsense: 1\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "nonsense");
  /* Accepted: the forms otelcol accepts, insecure_skip_verify without TLS, unsupported keys. */
  CHECK(!create_fails(g, "endpoint: https://collector.example:4317\n", msg, sizeof msg));
  CHECK(!create_fails(g,
                      "endpoint: \"[::1]:4317\"\ntls:\n  insecure: true\n  "
                      "insecure_skip_verify: true\n",
                      msg, sizeof msg));
  CHECK(!create_fails(g,
                      "endpoint: dns:///collector:4317\nwrite_buffer_size: 1024\n"
                      "balancer_name: round_robin\nauthority: otel.example\n"
                      "headers:\n  x-scope-orgid: tenant1\n  trace-bin: \"\\x01\"\n",
                      msg, sizeof msg));
}

/* ---- HTTP ---- */

static void http_roundtrip(const char *id, const char *extra) {
  struct rx x;
  struct ex e;
  struct sample s;
  sample_make(&s);
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[1024];
  snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n%s" RETRY_FAST, x.http_port, extra);
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  for (int i = 0; e.e && i < OTC_SIGNAL_COUNT; i++)
    CHECK_EQ_INT(ex_send(&e, (enum otc_signal)i, &s.b[i], s.items[i]), 0);
  ex_stop(&e);
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++) {
    CHECK_EQ_INT(cap_delivered((enum otc_signal)i), 1);
    CHECK_EQ_INT(cap_items((enum otc_signal)i), s.items[i]);
    CHECK(cap_same((enum otc_signal)i, &s.b[i]));
    CHECK_EQ_INT(exporter_counter("sent", id, (enum otc_signal)i), s.items[i]);
  }
  rx_stop(&x);
  sample_free(&s);
}

TEST(http_bytes_arrive_unchanged_gzip) {
  http_roundtrip("otlp_http/gzip", "");
}

TEST(http_bytes_arrive_unchanged_none) {
  http_roundtrip("otlphttp/none", "compression: none\n");
}

/* A joined batch (the batch processor's merge by reference) arrives as the one request its parts
 * make end to end: three requests of each signal, one of them empty, sent as one. */
static void joined_roundtrip(const struct otc_component_ops *ops, const char *id,
                             const char *endpoint_fmt, const char *extra) {
  struct rx x;
  struct ex e;
  struct sample s;
  sample_make(&s);
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char ep[128], yaml[1024];
  snprintf(ep, sizeof ep, endpoint_fmt, ops == &otc_exporter_otlp_grpc ? x.grpc_port : x.http_port);
  snprintf(yaml, sizeof yaml, "endpoint: \"%s\"\n%s" RETRY_FAST, ep, extra);
  CHECK(ex_start(&e, ops, id, yaml));
  CHECK(e.e && ops->takes_parts && ops->takes_parts(e.e));
  for (int i = 0; e.e && i < OTC_SIGNAL_COUNT; i++) {
    enum otc_signal sig = (enum otc_signal)i;
    struct bytes empty = {NULL, 0};
    struct otc_batch *parts[3] = {batch_of(sig, &s.b[i], s.items[i]), batch_of(sig, &empty, 0),
                                  batch_of(sig, &s.b[i], s.items[i])};
    struct otc_batch *j = otc_batch_join(sig, parts, 3);
    CHECK(j != NULL);
    CHECK_EQ_INT(j->items, 2 * s.items[i]);
    CHECK_EQ_INT(j->len, 2 * s.b[i].len);
    CHECK_EQ_INT(e.ops->consume(e.e, j), 0);
  }
  ex_stop(&e);
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++) {
    enum otc_signal sig = (enum otc_signal)i;
    struct bytes both = {malloc(2 * s.b[i].len), 2 * s.b[i].len};
    memcpy(both.data, s.b[i].data, s.b[i].len);
    memcpy(both.data + s.b[i].len, s.b[i].data, s.b[i].len);
    CHECK_EQ_INT(cap_delivered(sig), 1);
    CHECK_EQ_INT(cap_items(sig), 2 * s.items[i]);
    CHECK(cap_same(sig, &both));
    CHECK_EQ_INT(exporter_counter("sent", id, sig), 2 * s.items[i]);
    free(both.data);
  }
  rx_stop(&x);
  sample_free(&s);
}

TEST(grpc_joined_batch_arrives_as_one_request) {
  joined_roundtrip(&otc_exporter_otlp_grpc, "otlp_grpc/joined_gzip", "127.0.0.1:%d",
                   "tls:\n  insecure: true\n");
  joined_roundtrip(&otc_exporter_otlp_grpc, "otlp_grpc/joined_none", "http://127.0.0.1:%d",
                   "compression: none\n");
}

TEST(http_joined_batch_arrives_as_one_request) {
  joined_roundtrip(&otc_exporter_otlp_http, "otlp_http/joined_gzip", "http://127.0.0.1:%d", "");
  joined_roundtrip(&otc_exporter_otlp_http, "otlp_http/joined_none", "http://127.0.0.1:%d",
                   "compression: none\n");
}

/* The JSON encoding needs the bytes in one buffer: such an exporter is not given joined batches. */
TEST(http_json_takes_no_joined_batches) {
  struct ex e;
  CHECK(ex_start(&e, &otc_exporter_otlp_http, "otlp_http/json_parts",
                 "endpoint: http://127.0.0.1:9\nencoding: json\n"));
  CHECK(e.e && !otc_exporter_otlp_http.takes_parts(e.e));
  ex_stop(&e);
}

TEST(http_json_encoding_same_data) {
  struct rx x;
  struct ex e;
  struct sample s;
  sample_make(&s);
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d/\nencoding: json\n" RETRY_FAST,
           x.http_port);
  CHECK(ex_start(&e, &otc_exporter_otlp_http, "otlp_http/json", yaml));
  for (int i = 0; e.e && i < OTC_SIGNAL_COUNT; i++)
    CHECK_EQ_INT(ex_send(&e, (enum otc_signal)i, &s.b[i], s.items[i]), 0);
  ex_stop(&e);
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++) {
    CHECK_EQ_INT(cap_items((enum otc_signal)i), s.items[i]);
    char *want = NULL, *got = cap_json((enum otc_signal)i);
    size_t wl = 0;
    CHECK_EQ_INT(otc_proto_to_json((enum otc_signal)i, s.b[i].data, s.b[i].len, &want, &wl), 0);
    CHECK_EQ_STR(got, want);
    free(want);
    free(got);
  }
  rx_stop(&x);
  sample_free(&s);
}

TEST(http_503_is_retried_until_delivered) {
  struct rx x;
  struct ex e;
  struct bytes b = make_logs(3);
  cap_reset(2, OTC_ERR_REFUSED); /* 503 with Retry-After: 1, twice */
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n" RETRY_FAST, x.http_port);
  const char *id = "otlp_http/retry";
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  int64_t t0 = now_ms();
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 3), 0);
  CHECK(wait_delivered(OTC_SIGNAL_LOGS, 1, 10000));
  CHECK(now_ms() - t0 >= 1900); /* Retry-After honoured */
  sleep_ms(200);
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_LOGS), 3);
  CHECK_EQ_INT(cap_delivered(OTC_SIGNAL_LOGS), 1);
  CHECK(cap_same(OTC_SIGNAL_LOGS, &b));
  CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_LOGS, NULL, 3, 2000));
  CHECK_EQ_INT(exporter_counter("send_failed", id, OTC_SIGNAL_LOGS), 0);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

TEST(http_500_from_receiver_is_permanent) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(2, 0, 0);
  cap_reset(100, OTC_ERR_PERMANENT);
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n" RETRY_FAST, x.http_port);
  const char *id = "otlp_http/500";
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), 0);
  CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "http_500", 2, 5000));
  sleep_ms(300);
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_TRACES), 1);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

/* A 400 with a google.rpc.Status body: dropped once, counted as http_400, its message in the log;
 * the request carried the configured header, gzip and the protobuf content type. A 429 with
 * Retry-After is honoured. A per-signal endpoint is used as is, and a signal without one is
 * dropped. */
TEST(http_scripted_server) {
  struct hsrv h;
  struct ex e;
  struct errcap ec;
  struct bytes b = make_traces(3, 0, 0);
  CHECK(hsrv_start(&h));
  h.script[0] = (struct hstep){400, NULL, true, NULL};
  h.script[1] = (struct hstep){429, "1", false, NULL};
  h.script[2] = (struct hstep){200, NULL, false, NULL};
  h.script_n = 3;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "traces_endpoint: http://127.0.0.1:%d/custom/path\nheaders:\n  X-Tenant: acme\n"
           "sending_queue:\n  num_consumers: 1\n" RETRY_FAST,
           h.port);
  const char *id = "otlp_http/scripted";
  errcap_begin(&ec);
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  if (e.e) {
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 3), 0);
    CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "http_400", 3, 5000));
    CHECK(errcap_wait(&ec, "HTTP 400: span data rejected by policy", 2000));
    sleep_ms(300);
    CHECK_EQ_INT(hsrv_hits(&h), 1);
    pthread_mutex_lock(&h.mu);
    CHECK_EQ_STR(h.path, "/custom/path");
    CHECK_EQ_STR(h.content_type, "application/x-protobuf");
    CHECK_EQ_STR(h.content_encoding, "gzip");
    CHECK_EQ_STR(h.tenant, "acme");
    pthread_mutex_unlock(&h.mu);

    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 3), 0);
    CHECK(hsrv_wait_hits(&h, 3, 5000));
    pthread_mutex_lock(&h.mu);
    CHECK(h.hit_ms[2] - h.hit_ms[1] >= 950); /* Retry-After: 1 */
    pthread_mutex_unlock(&h.mu);
    CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_TRACES, NULL, 3, 2000));
    CHECK_EQ_INT(dropped(id, OTC_SIGNAL_TRACES, "http_400"), 3); /* no more drops */

    /* No endpoint for logs. */
    struct bytes l = make_logs(2);
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &l, 2), 0);
    CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_LOGS, "permanent_error", 2, 5000));
    CHECK_EQ_INT(hsrv_hits(&h), 3);
    free(l.data);
  }
  ex_stop(&e);
  errcap_end(&ec);
  hsrv_stop(&h);
  free(b.data);
}

TEST(http_endpoint_down_then_up) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(4, 0, 0);
  cap_reset(0, 0);
  int port = free_port();
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n" RETRY_FAST, port);
  const char *id = "otlp_http/down";
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 4), 0);
  sleep_ms(500);
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_TRACES), 0);
  CHECK(rx_start(&x, 0, port));
  CHECK(wait_delivered(OTC_SIGNAL_TRACES, 1, 10000));
  CHECK(cap_same(OTC_SIGNAL_TRACES, &b));
  CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_TRACES, NULL, 4, 2000));
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

TEST(http_partial_success_proto) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(6, 1, 0); /* one span with a bad id: rejected by the receiver */
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n" RETRY_FAST, x.http_port);
  const char *id = "otlp_http/partial";
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 6), 0);
  CHECK(wait_delivered(OTC_SIGNAL_TRACES, 1, 5000));
  CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_TRACES, "partial_success", 1, 5000));
  CHECK_EQ_INT(dropped(id, OTC_SIGNAL_TRACES, "partial_success"), 1);
  CHECK_EQ_INT(cap_items(OTC_SIGNAL_TRACES), 5);
  CHECK_EQ_INT(cap_calls(OTC_SIGNAL_TRACES), 1);
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

/* Our receiver refuses a bad id in JSON as a whole (400), so the JSON partial success comes from
 * the scripted server; the request is OTLP JSON. */
TEST(http_partial_success_json) {
  struct hsrv h;
  struct ex e;
  struct bytes b = make_logs(4);
  CHECK(hsrv_start(&h));
  h.script[0] = (struct hstep){
      200, NULL, false,
      "{\"partialSuccess\":{\"rejectedLogRecords\":\"3\",\"errorMessage\":\"old\"}}"};
  h.script_n = 1;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "endpoint: http://127.0.0.1:%d/otlp\nencoding: json\ncompression: none\n" RETRY_FAST,
           h.port);
  const char *id = "otlp_http/partial_json";
  CHECK(ex_start(&e, &otc_exporter_otlp_http, id, yaml));
  CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_LOGS, &b, 4), 0);
  CHECK(wait_counter(dropped_fn, id, OTC_SIGNAL_LOGS, "partial_success", 3, 5000));
  CHECK(wait_counter(sent_fn, id, OTC_SIGNAL_LOGS, NULL, 4, 2000));
  CHECK_EQ_INT(hsrv_hits(&h), 1);
  pthread_mutex_lock(&h.mu);
  CHECK_EQ_STR(h.path, "/otlp/v1/logs");
  CHECK_EQ_STR(h.content_type, "application/json");
  CHECK_EQ_STR(h.content_encoding, "");
  CHECK(h.body_len > 16 && memcmp(h.body, "{\"resourceLogs\":", 16) == 0);
  pthread_mutex_unlock(&h.mu);
  ex_stop(&e);
  hsrv_stop(&h);
  free(b.data);
}

TEST(http_config_errors) {
  char msg[512];
  const struct otc_component_ops *h = &otc_exporter_otlp_http;
  CHECK(create_fails(h, "compression: gzip\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "at least one endpoint");
  CHECK(create_fails(h, "endpoint: http://x:4318\ncompression: lz4\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "unsupported compression");
  CHECK(create_fails(h, "endpoint: http://x:4318\nauth:\n  authenticator: a\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "only bearertokenauth");
  CHECK(create_fails(h, "endpoint: http://x:4318\nencoding: xml\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "invalid encoding");
  CHECK(create_fails(h, "endpoint: x:4318\n", msg, sizeof msg));
  CHECK(create_fails(h, "traces_endpoint: ftp://x/v1/traces\n", msg, sizeof msg));
  CHECK_CONTAINS(msg, "traces_endpoint");
  CHECK(create_fails(h, "endpoint: http://x:4318\nbogus: 1\n", msg, sizeof msg));
  /* Accepted. */
  CHECK(!create_fails(h, "logs_endpoint: https://loki.example/otlp/v1/logs\n", msg, sizeof msg));
  CHECK(!create_fails(h,
                      "endpoint: https://x:4318\nwrite_buffer_size: 1024\n"
                      "profiles_endpoint: https://x/p\nsending_queue:\n  enabled: false\n",
                      msg, sizeof msg));
}

/* With the queue disabled the send happens in the caller's thread and its outcome is returned. */
TEST(queue_disabled_sync_outcomes) {
  struct rx x;
  struct ex e;
  struct bytes b = make_traces(2, 0, 0);
  cap_reset(0, 0);
  CHECK(rx_start(&x, 0, 0));
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "endpoint: 127.0.0.1:%d\ntls:\n  insecure: true\nsending_queue:\n  enabled: false\n"
           "retry_on_failure:\n  enabled: false\n",
           x.grpc_port);
  CHECK(ex_start(&e, &otc_exporter_otlp_grpc, "otlp_grpc/sync", yaml));
  if (e.e) {
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), 0);
    CHECK_EQ_INT(cap_delivered(OTC_SIGNAL_TRACES), 1);
    cap_reset(1, OTC_ERR_PERMANENT);
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), OTC_ERR_PERMANENT);
    cap_reset(1, OTC_ERR_REFUSED);
    CHECK(otc_err_retryable(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2)));
  }
  ex_stop(&e);
  snprintf(yaml, sizeof yaml,
           "endpoint: http://127.0.0.1:%d\nsending_queue:\n  enabled: false\n"
           "retry_on_failure:\n  enabled: false\n",
           x.http_port);
  cap_reset(0, 0);
  CHECK(ex_start(&e, &otc_exporter_otlp_http, "otlp_http/sync", yaml));
  if (e.e) {
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), 0);
    CHECK_EQ_INT(cap_delivered(OTC_SIGNAL_TRACES), 1);
    CHECK(cap_same(OTC_SIGNAL_TRACES, &b));
    cap_reset(1, OTC_ERR_PERMANENT);
    CHECK_EQ_INT(ex_send(&e, OTC_SIGNAL_TRACES, &b, 2), OTC_ERR_PERMANENT);
  }
  ex_stop(&e);
  rx_stop(&x);
  free(b.data);
}

int main(void) {
  grpc_init();
  RUN(registry_names_and_aliases);
  RUN(grpc_bytes_arrive_unchanged_gzip);
  RUN(grpc_bytes_arrive_unchanged_plain_http_scheme);
  RUN(grpc_unavailable_is_retried_until_delivered);
  RUN(grpc_permanent_failure_dropped_once);
  RUN(grpc_too_large_is_not_retried);
  RUN(grpc_endpoint_down_then_up);
  RUN(grpc_partial_success_counted);
  RUN(grpc_scripted_statuses);
  RUN(grpc_deadline_is_retried);
  RUN(grpc_tls);
  RUN(grpc_config_errors);
  RUN(http_bytes_arrive_unchanged_gzip);
  RUN(http_bytes_arrive_unchanged_none);
  RUN(http_json_encoding_same_data);
  RUN(http_503_is_retried_until_delivered);
  RUN(http_500_from_receiver_is_permanent);
  RUN(http_scripted_server);
  RUN(http_endpoint_down_then_up);
  RUN(http_partial_success_proto);
  RUN(http_partial_success_json);
  RUN(http_config_errors);
  RUN(queue_disabled_sync_outcomes);
  RUN(grpc_joined_batch_arrives_as_one_request);
  RUN(http_joined_batch_arrives_as_one_request);
  RUN(http_json_takes_no_joined_batches);
  cap_reset(0, 0);
  grpc_shutdown();
  otc_metrics_reset();
  return TEST_REPORT();
}
