/* The OTLP/gRPC transport end to end on loopback: the otlp receiver created from YAML, served by
 * otlp_grpc.c, called by a gRPC core client with protobuf bytes built by protobuf-c, its output
 * captured by a consumer that counts items. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>

#include "core/batch.h"
#include "core/component.h"
#include "core/config.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "test.h"

extern const struct otc_component_ops otc_receiver_otlp;

#define TRACES_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define METRICS_METHOD "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define LOGS_METHOD "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse TraceResp;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;

/* ---- the capturing consumer ---- */

static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t cap_items[OTC_SIGNAL_COUNT];
static size_t cap_batches[OTC_SIGNAL_COUNT];
static atomic_int cap_delay_ms;   /* consume sleeps this long, to hold a call in flight */
static atomic_int cap_entered;    /* consume calls started */
static atomic_int cap_return_err; /* what consume returns */

static int capture_consume(void *ctx, struct otc_batch *b) {
  atomic_fetch_add(&cap_entered, 1);
  int delay = atomic_load(&cap_delay_ms);
  if (delay > 0)
    usleep((useconds_t)delay * 1000);
  pthread_mutex_lock(&cap_mu);
  cap_items[b->signal] += b->items;
  cap_batches[b->signal]++;
  pthread_mutex_unlock(&cap_mu);
  otc_batch_unref(b);
  return atomic_load(&cap_return_err);
}

static void cap_reset(void) {
  pthread_mutex_lock(&cap_mu);
  memset(cap_items, 0, sizeof cap_items);
  memset(cap_batches, 0, sizeof cap_batches);
  pthread_mutex_unlock(&cap_mu);
  atomic_store(&cap_delay_ms, 0);
  atomic_store(&cap_entered, 0);
  atomic_store(&cap_return_err, 0);
}

static size_t cap_get(enum otc_signal s) {
  pthread_mutex_lock(&cap_mu);
  size_t n = cap_items[s];
  pthread_mutex_unlock(&cap_mu);
  return n;
}

/* ---- request bytes ---- */

struct bytes {
  uint8_t *data;
  size_t len;
};

/* n spans, each with a valid trace id; bad_span_ids of them get a 3-byte span id. name_len pads
 * the first span's name to grow the request. */
static struct bytes make_traces(size_t n, size_t bad_span_ids, size_t name_len) {
  static uint8_t trace_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static uint8_t span_id[8] = {1, 1, 2, 3, 5, 8, 13, 21};
  Span *spans = calloc(n, sizeof *spans);
  Span **sp = calloc(n, sizeof *sp);
  char *big = NULL;
  if (name_len) {
    big = malloc(name_len + 1);
    memset(big, 'x', name_len);
    big[name_len] = 0;
  }
  for (size_t i = 0; i < n; i++) {
    Span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    spans[i] = init;
    spans[i].trace_id.data = trace_id;
    spans[i].trace_id.len = 16;
    spans[i].span_id.data = span_id;
    spans[i].span_id.len = i < bad_span_ids ? 3 : 8;
    spans[i].name = (i == 0 && big) ? big : "op";
    spans[i].start_time_unix_nano = 1700000000000000000ull;
    spans[i].end_time_unix_nano = 1700000000000001000ull;
    sp[i] = &spans[i];
  }
  ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.n_spans = n;
  ss.spans = sp;
  ScopeSpans *ssp = &ss;
  ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
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
    dps[i].time_unix_nano = 1700000000000000000ull + i;
    dps[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    dps[i].as_double = (double)i;
    dpp[i] = &dps[i];
  }
  Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
  g.n_data_points = points;
  g.data_points = dpp;
  Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
  m.name = "queue_depth";
  m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
  m.gauge = &g;
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
  for (size_t i = 0; i < n; i++) {
    LogRecord init = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    lrs[i] = init;
    lrs[i].time_unix_nano = 1700000000000000000ull + i;
    lrs[i].severity_text = "INFO";
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

/* ---- the receiver under test ---- */

struct fixture {
  struct otc_cfg_node *cfg;
  void *rx;
  char addr[64];
  grpc_channel *ch;
  grpc_completion_queue *cq;
};

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

static grpc_channel *client_channel(const char *addr, bool gzip) {
  grpc_arg arg;
  arg.type = GRPC_ARG_INTEGER;
  arg.key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
  arg.value.integer = GRPC_COMPRESS_GZIP;
  grpc_channel_args args = {.num_args = 1, .args = &arg};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(addr, creds, gzip ? &args : NULL);
  grpc_channel_credentials_release(creds);
  return ch;
}

/* Creates and starts a receiver on a free port with the signals in mask wired to the capturing
 * consumer. extra is YAML for protocols.grpc (indented by 6). Returns false on failure. */
static bool fixture_start_on(struct fixture *f, const char *host, const char *extra,
                             unsigned mask) {
  memset(f, 0, sizeof *f);
  int port = free_port();
  if (port <= 0)
    return false;
  snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", port);
  char yaml[512];
  snprintf(yaml, sizeof yaml, "protocols:\n  grpc:\n    endpoint: \"%s:%d\"\n%s", host, port,
           extra ? extra : "");
  struct otc_cfg_err err = {{0}};
  f->cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", &err);
  if (!f->cfg) {
    fprintf(stderr, "config: %s\n", err.msg);
    return false;
  }
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "otlp";
  args.root = f->cfg;
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    if (mask & OTC_SIGNAL_BIT(s))
      args.next_by_signal[s].consume = capture_consume;
  f->rx = otc_receiver_otlp.create(&args, f->cfg, &err);
  if (!f->rx) {
    fprintf(stderr, "create: %s\n", err.msg);
    return false;
  }
  if (otc_receiver_otlp.start(f->rx) != 0)
    return false;
  f->ch = client_channel(f->addr, false);
  f->cq = grpc_completion_queue_create_for_next(NULL);
  return true;
}

static bool fixture_start(struct fixture *f, const char *extra, unsigned mask) {
  return fixture_start_on(f, "127.0.0.1", extra, mask);
}

static void fixture_stop(struct fixture *f) {
  if (f->ch)
    grpc_channel_destroy(f->ch);
  if (f->cq) {
    grpc_completion_queue_shutdown(f->cq);
    while (grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
      ;
    grpc_completion_queue_destroy(f->cq);
  }
  if (f->rx) {
    if (otc_receiver_otlp.shutdown)
      otc_receiver_otlp.shutdown(f->rx);
    if (otc_receiver_otlp.destroy)
      otc_receiver_otlp.destroy(f->rx);
  }
  otc_cfg_free(f->cfg);
  memset(f, 0, sizeof *f);
}

/* ---- the client ---- */

struct client_call {
  grpc_call *call;
  grpc_byte_buffer *request;
  grpc_byte_buffer *response;
  grpc_metadata_array initial_md, trailing_md;
  grpc_status_code status;
  grpc_slice details;
  bool done, ok;
};

struct result {
  grpc_status_code status;
  char details[512];
  bool has_response;
  uint8_t *response;
  size_t response_len;
  uint8_t *status_bin; /* grpc-status-details-bin, if any */
  size_t status_bin_len;
};

static uint8_t *buffer_bytes(grpc_byte_buffer *bb, size_t *len) {
  grpc_byte_buffer_reader reader;
  grpc_byte_buffer_reader_init(&reader, bb);
  grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  *len = GRPC_SLICE_LENGTH(s);
  uint8_t *out = malloc(*len + 1);
  memcpy(out, GRPC_SLICE_START_PTR(s), *len);
  grpc_slice_unref(s);
  return out;
}

/* Starts one unary call on cq. With data NULL the client sends no message at all. */
static void call_start(struct client_call *cc, grpc_channel *ch, grpc_completion_queue *cq,
                       const char *method, const uint8_t *data, size_t len) {
  memset(cc, 0, sizeof *cc);
  grpc_metadata_array_init(&cc->initial_md);
  grpc_metadata_array_init(&cc->trailing_md);
  grpc_slice m = grpc_slice_from_static_string(method);
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(10, GPR_TIMESPAN));
  cc->call =
      grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL, deadline, NULL);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (data) {
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)data, len);
    cc->request = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = cc->request;
  }
  ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[n++].data.recv_initial_metadata.recv_initial_metadata = &cc->initial_md;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &cc->response;
  ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[n].data.recv_status_on_client.status = &cc->status;
  ops[n].data.recv_status_on_client.status_details = &cc->details;
  ops[n++].data.recv_status_on_client.trailing_metadata = &cc->trailing_md;
  grpc_call_error rc = grpc_call_start_batch(cc->call, ops, n, cc, NULL);
  CHECK_EQ_INT(rc, GRPC_CALL_OK);
}

/* Waits until every call in ccs completed (their tags are the calls). */
static void calls_wait(grpc_completion_queue *cq, struct client_call *ccs, size_t n) {
  size_t pending = n;
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(15, GPR_TIMESPAN));
  while (pending) {
    grpc_event ev = grpc_completion_queue_next(cq, deadline, NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
      CHECK(!"client call timed out");
      return;
    }
    struct client_call *cc = ev.tag;
    cc->done = true;
    cc->ok = ev.success;
    pending--;
  }
}

/* Extracts the outcome of a completed call into res and frees the call. */
static void call_finish(struct client_call *cc, struct result *res) {
  memset(res, 0, sizeof *res);
  res->status = cc->status;
  char *d = grpc_slice_to_c_string(cc->details);
  snprintf(res->details, sizeof res->details, "%s", d);
  gpr_free(d);
  if (cc->response) {
    res->has_response = true;
    res->response = buffer_bytes(cc->response, &res->response_len);
  }
  for (size_t i = 0; i < cc->trailing_md.count; i++) {
    grpc_metadata *md = &cc->trailing_md.metadata[i];
    if (grpc_slice_str_cmp(md->key, "grpc-status-details-bin") == 0) {
      res->status_bin_len = GRPC_SLICE_LENGTH(md->value);
      res->status_bin = malloc(res->status_bin_len + 1);
      memcpy(res->status_bin, GRPC_SLICE_START_PTR(md->value), res->status_bin_len);
    }
  }
  grpc_slice_unref(cc->details);
  grpc_metadata_array_destroy(&cc->initial_md);
  grpc_metadata_array_destroy(&cc->trailing_md);
  grpc_byte_buffer_destroy(cc->request);
  grpc_byte_buffer_destroy(cc->response);
  grpc_call_unref(cc->call);
}

static void result_free(struct result *res) {
  free(res->response);
  free(res->status_bin);
}

/* One unary call, start to finish. */
static void unary(grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                  const uint8_t *data, size_t len, struct result *res) {
  struct client_call cc;
  call_start(&cc, ch, cq, method, data, len);
  calls_wait(cq, &cc, 1);
  call_finish(&cc, res);
}

/* A small valid trace request that must succeed with its 2 spans delivered. */
static void check_good_call(struct fixture *f) {
  struct bytes b = make_traces(2, 0, 0);
  size_t before = cap_get(OTC_SIGNAL_TRACES);
  struct result res;
  unary(f->ch, f->cq, TRACES_METHOD, b.data, b.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES) - before, 2);
  result_free(&res);
  free(b.data);
}

/* ---- tests ---- */

TEST(accepts_all_signals) {
  struct fixture f;
  cap_reset();
  uint64_t held_before = otc_mem_held();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  struct bytes t = make_traces(3, 0, 0), m = make_metrics(4), l = make_logs(5);
  struct result res;

  unary(f.ch, f.cq, TRACES_METHOD, t.data, t.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  CHECK(res.has_response);
  if (res.has_response) {
    TraceResp *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, res.response_len, res.response);
    CHECK(resp != NULL);
    if (resp) {
      CHECK(resp->partial_success == NULL || resp->partial_success->rejected_spans == 0);
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(
          resp, NULL);
    }
  }
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 3);

  unary(f.ch, f.cq, METRICS_METHOD, m.data, m.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  CHECK(res.has_response);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_METRICS), 4);

  unary(f.ch, f.cq, LOGS_METHOD, l.data, l.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  CHECK(res.has_response);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_LOGS), 5);

  /* An empty request is a success with nothing delivered. */
  unary(f.ch, f.cq, LOGS_METHOD, (const uint8_t *)"", 0, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_LOGS), 5);

  free(t.data);
  free(m.data);
  free(l.data);
out:
  fixture_stop(&f);
  /* Every byte charged for the requests was released with their batches. */
  CHECK_EQ_INT(otc_mem_held(), held_before);
}

TEST(bad_data_is_invalid_argument) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  struct result res;
  const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x13, 0x37, 0x00, 0x42};
  unary(f.ch, f.cq, TRACES_METHOD, garbage, sizeof garbage, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_INVALID_ARGUMENT);
  CHECK(res.details[0] != 0);
  CHECK(!res.has_response);
  CHECK(res.status_bin == NULL);
  result_free(&res);
  check_good_call(&f);

  struct bytes t = make_traces(3, 0, 0);
  unary(f.ch, f.cq, TRACES_METHOD, t.data, t.len - 5, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_INVALID_ARGUMENT);
  result_free(&res);
  free(t.data);
  check_good_call(&f);

  struct bytes m = make_metrics(3);
  unary(f.ch, f.cq, METRICS_METHOD, m.data, m.len - 1, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_INVALID_ARGUMENT);
  result_free(&res);
  free(m.data);

  /* A call that sends no message at all. */
  unary(f.ch, f.cq, LOGS_METHOD, NULL, 0, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_INVALID_ARGUMENT);
  result_free(&res);
  check_good_call(&f);

  /* Only the good calls got through: 3 of them with 2 spans each. */
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 6);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_METRICS), 0);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_LOGS), 0);
out:
  fixture_stop(&f);
}

TEST(oversized_message_is_resource_exhausted) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, "    max_recv_msg_size_mib: 1\n", OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  struct result res;
  /* Just under the limit passes; just over is refused by gRPC before we see it. */
  struct bytes small = make_traces(1, 0, 1024 * 1024 - 200);
  CHECK(small.len <= 1024 * 1024);
  unary(f.ch, f.cq, TRACES_METHOD, small.data, small.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 1);
  free(small.data);

  struct bytes big = make_traces(1, 0, 1024 * 1024 + 10);
  unary(f.ch, f.cq, TRACES_METHOD, big.data, big.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
  result_free(&res);
  free(big.data);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 1);
  check_good_call(&f);
out:
  fixture_stop(&f);
}

/* Checks that res is UNAVAILABLE with a google.rpc.Status carrying RetryInfo. */
static void check_retry_info(const struct result *res) {
  CHECK_EQ_INT(res->status, GRPC_STATUS_UNAVAILABLE);
  CHECK(!res->has_response);
  CHECK(res->status_bin != NULL);
  if (!res->status_bin)
    return;
  Google__Rpc__Status *st = google__rpc__status__unpack(NULL, res->status_bin_len, res->status_bin);
  CHECK(st != NULL);
  if (!st)
    return;
  CHECK_EQ_INT(st->code, 14);
  CHECK(st->message[0] != 0);
  CHECK_EQ_INT(st->n_details, 1);
  if (st->n_details == 1) {
    CHECK_EQ_STR(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, st->details[0]->value.len,
                                                                 st->details[0]->value.data);
    CHECK(ri != NULL && ri->retry_delay != NULL);
    if (ri && ri->retry_delay)
      CHECK_EQ_INT(ri->retry_delay->seconds, 1);
    google__rpc__retry_info__free_unpacked(ri, NULL);
  }
  google__rpc__status__free_unpacked(st, NULL);
}

TEST(memory_refusal_is_unavailable_with_retry_info) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  struct result res;
  struct bytes t = make_traces(3, 0, 0);
  otc_mem_set_rss_refusing(true);
  unary(f.ch, f.cq, TRACES_METHOD, t.data, t.len, &res);
  otc_mem_set_rss_refusing(false);
  check_retry_info(&res);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 0);
  CHECK_EQ_INT(atomic_load(&cap_entered), 0);
  free(t.data);
  check_good_call(&f);
out:
  fixture_stop(&f);
}

TEST(retryable_pipeline_error_is_unavailable) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  struct result res;
  struct bytes l = make_logs(2);
  atomic_store(&cap_return_err, OTC_ERR_REFUSED);
  unary(f.ch, f.cq, LOGS_METHOD, l.data, l.len, &res);
  check_retry_info(&res);
  result_free(&res);
  /* A permanent downstream failure is not worth retrying: INTERNAL, without RetryInfo. */
  atomic_store(&cap_return_err, OTC_ERR_PERMANENT);
  unary(f.ch, f.cq, LOGS_METHOD, l.data, l.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_INTERNAL);
  CHECK(res.status_bin == NULL);
  result_free(&res);
  atomic_store(&cap_return_err, 0);
  free(l.data);
  check_good_call(&f);
out:
  fixture_stop(&f);
}

TEST(gzip_request_accepted) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  grpc_channel *gz = client_channel(f.addr, true);
  struct result res;
  struct bytes t = make_traces(7, 0, 4000); /* compressible */
  unary(gz, f.cq, TRACES_METHOD, t.data, t.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  CHECK(res.has_response);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 7);
  struct bytes l = make_logs(9);
  unary(gz, f.cq, LOGS_METHOD, l.data, l.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_LOGS), 9);
  free(t.data);
  free(l.data);
  grpc_channel_destroy(gz);
out:
  fixture_stop(&f);
}

/* The size limit holds after decompression too: a small gzip body that inflates past it is
 * refused, not decompressed whole. */
TEST(gzip_bomb_is_bounded) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, "    max_recv_msg_size_mib: 1\n", OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  grpc_channel *gz = client_channel(f.addr, true);
  struct result res;
  struct bytes big = make_traces(1, 0, 3 * 1024 * 1024); /* 3 MiB of 'x', a few KB gzipped */
  unary(gz, f.cq, TRACES_METHOD, big.data, big.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
  result_free(&res);
  free(big.data);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 0);
  grpc_channel_destroy(gz);
  check_good_call(&f);
out:
  fixture_stop(&f);
}

/* otelcol reads an endpoint without a host as every interface; gRPC needs it spelled out. */
TEST(empty_host_listens_everywhere) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start_on(&f, "", NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  check_good_call(&f);
out:
  fixture_stop(&f);
}

TEST(partial_success_reports_rejected_spans) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  struct result res;
  struct bytes t = make_traces(5, 2, 0); /* two of five spans have a 3-byte span id */
  unary(f.ch, f.cq, TRACES_METHOD, t.data, t.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  CHECK(res.has_response);
  if (res.has_response) {
    TraceResp *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, res.response_len, res.response);
    CHECK(resp != NULL && resp->partial_success != NULL);
    if (resp && resp->partial_success) {
      CHECK_EQ_INT(resp->partial_success->rejected_spans, 2);
      CHECK(resp->partial_success->error_message[0] != 0);
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);
  }
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 3);
  free(t.data);
out:
  fixture_stop(&f);
}

TEST(unwired_signal_is_unimplemented) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNAL_BIT(OTC_SIGNAL_TRACES)));
  if (!f.rx)
    goto out;
  struct result res;
  struct bytes l = make_logs(2), m = make_metrics(2);
  unary(f.ch, f.cq, LOGS_METHOD, l.data, l.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_UNIMPLEMENTED);
  result_free(&res);
  unary(f.ch, f.cq, METRICS_METHOD, m.data, m.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_UNIMPLEMENTED);
  result_free(&res);
  unary(f.ch, f.cq, "/no.such.Service/Method", l.data, l.len, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_UNIMPLEMENTED);
  result_free(&res);
  /* More unimplemented calls than the server keeps requested, to see them recycled. */
  for (int i = 0; i < 5; i++) {
    unary(f.ch, f.cq, LOGS_METHOD, l.data, l.len, &res);
    CHECK_EQ_INT(res.status, GRPC_STATUS_UNIMPLEMENTED);
    result_free(&res);
  }
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_LOGS), 0);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_METRICS), 0);
  free(l.data);
  free(m.data);
  check_good_call(&f);
out:
  fixture_stop(&f);
}

TEST(concurrent_calls) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  /* More calls at once than calls requested per method, each consume slow enough to overlap. */
  enum { N = 24 };
  atomic_store(&cap_delay_ms, 20);
  struct bytes t = make_traces(2, 0, 0);
  struct client_call *ccs = calloc(N, sizeof *ccs);
  for (int i = 0; i < N; i++)
    call_start(&ccs[i], f.ch, f.cq, TRACES_METHOD, t.data, t.len);
  calls_wait(f.cq, ccs, N);
  int ok = 0;
  for (int i = 0; i < N; i++) {
    struct result res;
    call_finish(&ccs[i], &res);
    if (res.status == GRPC_STATUS_OK)
      ok++;
    result_free(&res);
  }
  CHECK_EQ_INT(ok, N);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 2 * N);
  free(ccs);
  free(t.data);
out:
  fixture_stop(&f);
}

TEST(stop_finishes_call_in_flight) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  atomic_store(&cap_delay_ms, 300);
  struct bytes t = make_traces(4, 0, 0);
  struct client_call cc;
  call_start(&cc, f.ch, f.cq, TRACES_METHOD, t.data, t.len);
  for (int i = 0; i < 500 && atomic_load(&cap_entered) == 0; i++)
    usleep(2000);
  CHECK_EQ_INT(atomic_load(&cap_entered), 1);
  /* Shutting down while the call is being exported: the call still completes OK. */
  CHECK_EQ_INT(otc_receiver_otlp.shutdown(f.rx), 0);
  CHECK_EQ_INT(otc_receiver_otlp.shutdown(f.rx), 0); /* idempotent */
  calls_wait(f.cq, &cc, 1);
  struct result res;
  call_finish(&cc, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_OK);
  result_free(&res);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 4);
  free(t.data);

  /* After the stop, nothing listens: a new call fails as unavailable. */
  unary(f.ch, f.cq, TRACES_METHOD, (const uint8_t *)"", 0, &res);
  CHECK_EQ_INT(res.status, GRPC_STATUS_UNAVAILABLE);
  result_free(&res);
out:
  fixture_stop(&f);
}

TEST(port_in_use_fails_start) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  char yaml[256];
  snprintf(yaml, sizeof yaml, "protocols:\n  grpc:\n    endpoint: %s\n", f.addr);
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", &err);
  CHECK(cfg != NULL);
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "otlp/second";
  args.root = cfg;
  args.next_by_signal[OTC_SIGNAL_TRACES].consume = capture_consume;
  void *rx2 = cfg ? otc_receiver_otlp.create(&args, cfg, &err) : NULL;
  CHECK(rx2 != NULL);
  if (rx2) {
    CHECK(otc_receiver_otlp.start(rx2) != 0);
    otc_receiver_otlp.shutdown(rx2);
    otc_receiver_otlp.destroy(rx2);
  }
  otc_cfg_free(cfg);
  check_good_call(&f);
out:
  fixture_stop(&f);
}

/* Last, because a memory limit once set can only be lowered for the rest of the process. */
TEST(memory_limit_refuses_large_request) {
  struct fixture f;
  cap_reset();
  CHECK(fixture_start(&f, NULL, OTC_SIGNALS_ALL));
  if (!f.rx)
    goto out;
  otc_mem_set_limits(64 * 1024, 0);
  struct result res;
  struct bytes big = make_traces(1, 0, 100 * 1024);
  unary(f.ch, f.cq, TRACES_METHOD, big.data, big.len, &res);
  check_retry_info(&res);
  result_free(&res);
  free(big.data);
  CHECK_EQ_INT(cap_get(OTC_SIGNAL_TRACES), 0);
  check_good_call(&f); /* a small request still fits */
out:
  fixture_stop(&f);
}

int main(void) {
  grpc_init();
  RUN(accepts_all_signals);
  RUN(bad_data_is_invalid_argument);
  RUN(oversized_message_is_resource_exhausted);
  RUN(memory_refusal_is_unavailable_with_retry_info);
  RUN(retryable_pipeline_error_is_unavailable);
  RUN(gzip_request_accepted);
  RUN(gzip_bomb_is_bounded);
  RUN(empty_host_listens_everywhere);
  RUN(partial_success_reports_rejected_spans);
  RUN(unwired_signal_is_unimplemented);
  RUN(concurrent_calls);
  RUN(stop_finishes_call_in_flight);
  RUN(port_in_use_fails_start);
  RUN(memory_limit_refuses_large_request);
  grpc_shutdown();
  otc_metrics_reset();
  return TEST_REPORT();
}
