/* The OTLP/HTTP receiver end to end on loopback: a receiver created from YAML through
 * otc_receiver_otlp, capturing consumers behind it, and libcurl as the client. Every status the
 * OTLP/HTTP specification and otelcol give (200, 400, 404, 405, 413, 415, 500, 503) is checked with
 * its body, as are the item counts that reach the pipeline, gzip, JSON, partial success, memory
 * refusal and CORS. */
#include <curl/curl.h>
#include <pthread.h>
#include <time.h>
#include <zlib.h>

#include "core/net.h"
#include "core/component.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "receivers/otlp/otlp_receiver.h"
#include "test.h"

extern const struct otc_component_ops otc_receiver_otlp;

/* ---- capturing consumers ---- */

struct capture {
  pthread_mutex_t mu;
  size_t items[OTC_SIGNAL_COUNT];
  size_t batches[OTC_SIGNAL_COUNT];
  int rc;       /* what consume returns */
  int delay_ms; /* how long consume takes */
};

static struct capture cap = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0, 0};

static int capture_consume(void *ctx, struct otc_batch *b) {
  struct capture *c = ctx;
  pthread_mutex_lock(&c->mu);
  c->items[b->signal] += b->items;
  c->batches[b->signal]++;
  int rc = c->rc;
  int delay = c->delay_ms;
  pthread_mutex_unlock(&c->mu);
  otc_batch_unref(b);
  if (delay > 0) {
    struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  return rc;
}

static size_t captured(enum otc_signal s) {
  pthread_mutex_lock(&cap.mu);
  size_t n = cap.items[s];
  pthread_mutex_unlock(&cap.mu);
  return n;
}

static size_t captured_batches(enum otc_signal s) {
  pthread_mutex_lock(&cap.mu);
  size_t n = cap.batches[s];
  pthread_mutex_unlock(&cap.mu);
  return n;
}

static void set_consume_rc(int rc) {
  pthread_mutex_lock(&cap.mu);
  cap.rc = rc;
  pthread_mutex_unlock(&cap.mu);
}

/* ---- receivers ---- */

struct rcv {
  struct otc_cfg_node *cfg;
  struct otlp_receiver *r;
  int port;
};

/* Creates and starts a receiver from YAML (the receiver's own node), with consumers for the
 * signals in mask. */
static int rcv_start(struct rcv *v, const char *yaml, unsigned mask) {
  struct otc_cfg_err err = {{0}};
  memset(v, 0, sizeof *v);
  v->cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", &err);
  if (!v->cfg) {
    fprintf(stderr, "config: %s\n", err.msg);
    return -1;
  }
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "otlp/test";
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    if (mask & OTC_SIGNAL_BIT(s))
      args.next_by_signal[s] = (struct otc_consumer){.consume = capture_consume, .ctx = &cap};
  v->r = otc_receiver_otlp.create(&args, v->cfg, &err);
  if (!v->r) {
    fprintf(stderr, "create: %s\n", err.msg);
    return -1;
  }
  if (otc_receiver_otlp.start(v->r) != 0)
    return -1;
  v->port = otlp_http__port(v->r);
  return v->port > 0 ? 0 : -1;
}

static void rcv_stop(struct rcv *v) {
  if (v->r) {
    CHECK_EQ_INT(otc_receiver_otlp.shutdown(v->r), 0);
    CHECK_EQ_INT(otc_receiver_otlp.shutdown(v->r), 0); /* idempotent */
    CHECK_EQ_INT(otlp_http__port(v->r), -1);
    otc_receiver_otlp.destroy(v->r);
  }
  otc_cfg_free(v->cfg);
  memset(v, 0, sizeof *v);
}

/* Creates from YAML and expects failure; returns the error text. */
static const char *create_error(const char *yaml, struct otc_cfg_err *err) {
  memset(err, 0, sizeof *err);
  struct otc_cfg_node *cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", err);
  if (!cfg)
    return err->msg;
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "otlp";
  void *r = otc_receiver_otlp.create(&args, otc_cfg_get(cfg, "otlp"), err);
  if (r) {
    otc_receiver_otlp.destroy(r);
    otc_cfg_free(cfg);
    return NULL;
  }
  otc_cfg_free(cfg);
  return err->msg;
}

/* ---- HTTP client ---- */

struct resp {
  long status;
  char *body;
  size_t len;
  char headers[4096];
  size_t hlen;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  struct resp *r = arg;
  size_t add = size * n;
  char *nb = realloc(r->body, r->len + add + 1);
  if (!nb)
    return 0;
  memcpy(nb + r->len, p, add);
  r->body = nb;
  r->len += add;
  r->body[r->len] = '\0';
  return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg) {
  struct resp *r = arg;
  size_t add = size * n;
  if (r->hlen + add < sizeof r->headers) {
    memcpy(r->headers + r->hlen, p, add);
    r->hlen += add;
    r->headers[r->hlen] = '\0';
  }
  return add;
}

/* The value of response header name (case-insensitive), copied into out; "" when absent. */
static const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *line = r->headers; *line;) {
    const char *eol = strstr(line, "\r\n");
    size_t ll = eol ? (size_t)(eol - line) : strlen(line);
    if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ')
        v++;
      size_t vl = ll - (size_t)(v - line);
      if (vl >= cap)
        vl = cap - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return out;
    }
    if (!eol)
      break;
    line = eol + 2;
  }
  return out;
}

static void resp_free(struct resp *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

static const char *http_host = "127.0.0.1";

/* Feeds a chunked upload in small pieces, so that the server sees many of them. */
struct reader {
  const uint8_t *p;
  size_t left;
};

static size_t on_read(char *out, size_t size, size_t n, void *arg) {
  struct reader *rd = arg;
  size_t k = size * n;
  if (k > 1000)
    k = 1000;
  if (k > rd->left)
    k = rd->left;
  memcpy(out, rd->p, k);
  rd->p += k;
  rd->left -= k;
  return k;
}

/* Sends method to path with the given headers (NULL-terminated) and body; chunked sends the body
 * without Content-Length. Returns 0 when a response arrived. */
static int http_do(int port, const char *method, const char *path, const char *const *headers,
                   const void *body, size_t len, bool chunked, struct resp *out) {
  memset(out, 0, sizeof *out);
  CURL *h = curl_easy_init();
  if (!h)
    return -1;
  char url[256];
  snprintf(url, sizeof url, "http://%s:%d%s", http_host, port, path);
  struct curl_slist *hl = NULL;
  for (const char *const *p = headers; p && *p; p++)
    hl = curl_slist_append(hl, *p);
  if (chunked)
    hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
  hl = curl_slist_append(hl, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  struct reader rd = {body, len};
  if (strcmp(method, "POST") == 0 && chunked) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &rd);
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
  else
    fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
  curl_slist_free_all(hl);
  curl_easy_cleanup(h);
  return rc == CURLE_OK ? 0 : -1;
}

static long post(int port, const char *path, const char *ctype, const void *body, size_t len,
                 struct resp *out) {
  char ct[128];
  snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
  const char *hdrs[] = {ct, NULL};
  http_do(port, "POST", path, hdrs, body, len, false, out);
  return out->status;
}

/* ---- request bodies ---- */

static void fill_id(uint8_t *id, size_t n, int seed) {
  for (size_t i = 0; i < n; i++)
    id[i] = (uint8_t)(seed * 31 + (int)i + 1);
}

/* An ExportTraceServiceRequest of n spans; the span at index bad (if < n) has a 4-byte span id. */
static uint8_t *make_traces(size_t n, size_t bad, size_t *len) {
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[1] = {&rs};
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[1] = {&ss};
  Opentelemetry__Proto__Trace__V1__Span spans[16];
  Opentelemetry__Proto__Trace__V1__Span *sp[16];
  uint8_t tid[16][16], sid[16][8];
  for (size_t i = 0; i < n && i < 16; i++) {
    opentelemetry__proto__trace__v1__span__init(&spans[i]);
    fill_id(tid[i], 16, (int)i);
    fill_id(sid[i], 8, (int)i + 100);
    spans[i].trace_id.data = tid[i];
    spans[i].trace_id.len = 16;
    spans[i].span_id.data = sid[i];
    spans[i].span_id.len = i == bad ? 4 : 8;
    spans[i].name = (char *)"op";
    spans[i].start_time_unix_nano = 1000;
    spans[i].end_time_unix_nano = 2000;
    sp[i] = &spans[i];
  }
  ss.n_spans = n;
  ss.spans = sp;
  rs.n_scope_spans = 1;
  rs.scope_spans = ssp;
  req.n_resource_spans = 1;
  req.resource_spans = rsp;
  *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      &req);
  uint8_t *buf = malloc(*len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
  return buf;
}

/* An ExportMetricsServiceRequest with one gauge of n data points. */
static uint8_t *make_metrics(size_t n, size_t *len) {
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm =
      OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm =
      OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
  Opentelemetry__Proto__Metrics__V1__Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
  Opentelemetry__Proto__Metrics__V1__Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp[1] = {&rm};
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp[1] = {&sm};
  Opentelemetry__Proto__Metrics__V1__Metric *mp[1] = {&m};
  Opentelemetry__Proto__Metrics__V1__NumberDataPoint pts[16];
  Opentelemetry__Proto__Metrics__V1__NumberDataPoint *pp[16];
  for (size_t i = 0; i < n && i < 16; i++) {
    opentelemetry__proto__metrics__v1__number_data_point__init(&pts[i]);
    pts[i].time_unix_nano = 1000 + i;
    pts[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    pts[i].as_int = (int64_t)i;
    pp[i] = &pts[i];
  }
  g.n_data_points = n;
  g.data_points = pp;
  m.name = (char *)"requests";
  m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
  m.gauge = &g;
  sm.n_metrics = 1;
  sm.metrics = mp;
  rm.n_scope_metrics = 1;
  rm.scope_metrics = smp;
  req.n_resource_metrics = 1;
  req.resource_metrics = rmp;
  *len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          &req);
  uint8_t *buf = malloc(*len);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, buf);
  return buf;
}

/* An ExportLogsServiceRequest of n log records. */
static uint8_t *make_logs(size_t n, size_t *len) {
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
      OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp[1] = {&rl};
  Opentelemetry__Proto__Logs__V1__ScopeLogs *slp[1] = {&sl};
  Opentelemetry__Proto__Logs__V1__LogRecord recs[16];
  Opentelemetry__Proto__Logs__V1__LogRecord *rp[16];
  for (size_t i = 0; i < n && i < 16; i++) {
    opentelemetry__proto__logs__v1__log_record__init(&recs[i]);
    recs[i].time_unix_nano = 1000 + i;
    recs[i].severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    rp[i] = &recs[i];
  }
  sl.n_log_records = n;
  sl.log_records = rp;
  rl.n_scope_logs = 1;
  rl.scope_logs = slp;
  req.n_resource_logs = 1;
  req.resource_logs = rlp;
  *len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  uint8_t *buf = malloc(*len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
  return buf;
}

static const char json_traces[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":["
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"name\":\"a\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
    "\"endTimeUnixNano\":\"1544712661000000000\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"name\":\"b\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b176\","
    "\"name\":\"c\"}]}]}]}";

static const char json_metrics[] =
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"gauge\":"
    "{\"dataPoints\":[{\"asInt\":\"1\",\"timeUnixNano\":\"1\"},{\"asDouble\":2.5}]}}]}]}]}";

static const char json_logs[] =
    "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1\",\"body\":"
    "{\"stringValue\":\"hello\"}},{\"severityNumber\":9},{},{}]}]}]}";

/* gzip of len bytes (windowBits 15 + 16). */
static uint8_t *gzip(const void *data, size_t len, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  size_t cap = deflateBound(&z, len) + 64;
  uint8_t *out = malloc(cap);
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  deflate(&z, Z_FINISH);
  *out_len = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

/* Unpacks a google.rpc.Status body and checks its code; returns whether the message is set. */
static void check_status_body(const struct resp *r, int code) {
  Google__Rpc__Status *st = google__rpc__status__unpack(NULL, r->len, (const uint8_t *)r->body);
  CHECK(st != NULL);
  if (st) {
    CHECK_EQ_INT(st->code, code);
    CHECK(st->message && st->message[0]);
    google__rpc__status__free_unpacked(st, NULL);
  }
}

static char hbuf[1024];
#define HDR(r, name) resp_header((r), (name), hbuf, sizeof hbuf)

/* ---- tests ---- */

static struct rcv main_rcv; /* all three signals, defaults but the endpoint */
static uint8_t *good;       /* 3 valid spans */
static size_t good_len;

/* A good request still succeeds: a bad one before it left nothing broken. */
static void check_still_serving(void) {
  struct resp r;
  size_t before = captured(OTC_SIGNAL_TRACES);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len, &r),
               200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  resp_free(&r);
}

TEST(config_errors) {
  struct otc_cfg_err err;
  CHECK_CONTAINS(create_error("otlp:\n", &err), "must specify at least one protocol");
  CHECK_CONTAINS(create_error("otlp:\n  protocols:\n", &err), "must specify at least one protocol");
  CHECK_CONTAINS(
      create_error("otlp:\n  protocols:\n    grpc:\n      tls:\n        cert_file: a\n", &err),
      "needs both cert_file and key_file");
  /* Only an enabled bearertokenauth extension can authenticate (none is, built alone). */
  CHECK_CONTAINS(create_error("otlp:\n  protocols:\n    http:\n      auth:\n        authenticator: "
                              "x\n",
                              &err),
                 "only bearertokenauth");
  CHECK_CONTAINS(create_error("otlp:\n  protocols:\n    http:\n      endpoint: localhost\n", &err),
                 "endpoint");
  CHECK_CONTAINS(
      create_error("otlp:\n  protocols:\n    http:\n      endpoint: \"::1:4318\"\n", &err),
      "endpoint");
  CHECK_CONTAINS(
      create_error("otlp:\n  protocols:\n    grpc:\n      endpoint: \"h:99999\"\n", &err),
      "endpoint");
  CHECK_CONTAINS(create_error("otlp:\n  protocols:\n    grpc:\n      transport: unix\n", &err),
                 "tcp");
  CHECK_CONTAINS(
      create_error("otlp:\n  protocols:\n    grpc:\n      max_recv_msg_size_mib: 0\n", &err),
      "max_recv_msg_size_mib");
  CHECK_CONTAINS(
      create_error("otlp:\n  protocols:\n    http:\n      traces_url_path: v1/t\n", &err),
      "must start with");
  CHECK_CONTAINS(create_error("otlp:\n  protocols:\n    http:\n      bogus: 1\n", &err), "bogus");
  CHECK_CONTAINS(create_error("otlp:\n  protocols:\n    websocket:\n", &err), "websocket");

  /* Defaults, and `grpc:` with no value enabling gRPC. */
  const char *yaml = "otlp:\n  protocols:\n    grpc:\n    http:\n      endpoint: \"[::1]:0\"\n"
                     "      read_timeout: 5s\n";
  struct otc_cfg_node *cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", &err);
  CHECK(cfg != NULL);
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = "otlp";
  struct otlp_receiver *r = otc_receiver_otlp.create(&args, otc_cfg_get(cfg, "otlp"), &err);
  CHECK(r != NULL);
  if (r) {
    CHECK(r->grpc.enabled && r->http.enabled);
    CHECK_EQ_STR(r->grpc.endpoint, "0.0.0.0:4317");
    CHECK_EQ_INT(r->grpc.max_recv_msg_size_mib, 4);
    CHECK_EQ_STR(r->grpc.transport, "tcp");
    CHECK_EQ_STR(r->http.endpoint, "[::1]:0");
    CHECK_EQ_STR(r->http.traces_url_path, "/v1/traces");
    CHECK_EQ_STR(r->http.logs_url_path, "/v1/logs");
    CHECK_EQ_INT(r->http.max_request_body_size, 20971520);
    CHECK_EQ_STR(r->log_component, "receiver/otlp");
    otc_receiver_otlp.destroy(r);
  }
  otc_cfg_free(cfg);

  char host[64];
  int port = -1;
  CHECK_EQ_INT(otc_parse_hostport("[::]:4318", host, sizeof host, &port), 0);
  CHECK_EQ_STR(host, "::");
  CHECK_EQ_INT(port, 4318);
  CHECK_EQ_INT(otc_parse_hostport(":4317", host, sizeof host, &port), 0);
  CHECK_EQ_STR(host, "");
  CHECK_EQ_INT(otc_parse_hostport("localhost:", host, sizeof host, &port), OTC_ERR_CONFIG);
}

TEST(protobuf_all_signals) {
  struct resp r;
  char ct[128];
  size_t before = captured(OTC_SIGNAL_TRACES);
  uint64_t acc_before = otc_counter_value(main_rcv.r->http_metrics.accepted[OTC_SIGNAL_TRACES]);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len, &r),
               200);
  CHECK_EQ_STR(resp_header(&r, "Content-Type", ct, sizeof ct), "application/x-protobuf");
  /* A full success is the empty ExportTraceServiceResponse. */
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *tr =
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
          NULL, r.len, (const uint8_t *)r.body);
  CHECK(tr != NULL && tr->partial_success == NULL);
  if (tr)
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr,
                                                                                             NULL);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  CHECK_EQ_INT(otc_counter_value(main_rcv.r->http_metrics.accepted[OTC_SIGNAL_TRACES]),
               acc_before + 3);
  resp_free(&r);

  size_t len;
  uint8_t *m = make_metrics(5, &len);
  before = captured(OTC_SIGNAL_METRICS);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/metrics", "application/x-protobuf", m, len, &r), 200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_METRICS), before + 5);
  resp_free(&r);
  free(m);

  uint8_t *l = make_logs(7, &len);
  before = captured(OTC_SIGNAL_LOGS);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/logs", "application/x-protobuf", l, len, &r), 200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_LOGS), before + 7);
  resp_free(&r);
  free(l);
}

TEST(json_all_signals) {
  struct resp r;
  char ct[128];
  size_t before = captured(OTC_SIGNAL_TRACES);
  CHECK_EQ_INT(
      post(main_rcv.port, "/v1/traces", "application/json", json_traces, strlen(json_traces), &r),
      200);
  CHECK_EQ_STR(resp_header(&r, "Content-Type", ct, sizeof ct), "application/json");
  CHECK_EQ_STR(r.body, "{}");
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  resp_free(&r);

  before = captured(OTC_SIGNAL_METRICS);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/metrics", "application/json; charset=utf-8", json_metrics,
                    strlen(json_metrics), &r),
               200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_METRICS), before + 2);
  resp_free(&r);

  before = captured(OTC_SIGNAL_LOGS);
  CHECK_EQ_INT(
      post(main_rcv.port, "/v1/logs", "Application/JSON", json_logs, strlen(json_logs), &r), 200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_LOGS), before + 4);
  resp_free(&r);
}

TEST(gzip_bodies) {
  struct resp r;
  size_t zlen;
  uint8_t *z = gzip(good, good_len, &zlen);
  const char *hdrs[] = {"Content-Type: application/x-protobuf", "Content-Encoding: gzip", NULL};
  size_t before = captured(OTC_SIGNAL_TRACES);
  http_do(main_rcv.port, "POST", "/v1/traces", hdrs, z, zlen, false, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  resp_free(&r);

  /* The same, sent chunked, and JSON gzipped. */
  http_do(main_rcv.port, "POST", "/v1/traces", hdrs, z, zlen, true, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 6);
  resp_free(&r);
  free(z);

  z = gzip(json_traces, strlen(json_traces), &zlen);
  const char *jh[] = {"Content-Type: application/json", "Content-Encoding: gzip", NULL};
  http_do(main_rcv.port, "POST", "/v1/traces", jh, z, zlen, false, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(r.body, "{}");
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 9);
  resp_free(&r);

  /* A corrupt stream: the gzip header intact, the deflate data garbled. */
  for (size_t i = 12; i < zlen - 8; i++)
    z[i] ^= 0x5a;
  http_do(main_rcv.port, "POST", "/v1/traces", jh, z, zlen, false, &r);
  CHECK_EQ_INT(r.status, 400);
  CHECK_CONTAINS(r.body, "\"code\":3");
  resp_free(&r);
  /* A stream cut short. */
  free(z);
  z = gzip(good, good_len, &zlen);
  http_do(main_rcv.port, "POST", "/v1/traces", hdrs, z, zlen / 2, false, &r);
  CHECK_EQ_INT(r.status, 400);
  check_status_body(&r, 3);
  resp_free(&r);
  free(z);
  check_still_serving();

  /* A client's bytes quoted in the message keep the JSON body valid. */
  const char *weird[] = {"Content-Type: application/json", "Content-Encoding: br\xff\xfe\"", NULL};
  http_do(main_rcv.port, "POST", "/v1/traces", weird, json_traces, strlen(json_traces), false, &r);
  CHECK_EQ_INT(r.status, 400);
  CHECK_CONTAINS(r.body, "{\"code\":3,\"message\":\"unsupported Content-Encoding: br??\\\"\"}");
  resp_free(&r);

  const char *zs[] = {"Content-Type: application/x-protobuf", "Content-Encoding: zstd", NULL};
  http_do(main_rcv.port, "POST", "/v1/traces", zs, good, good_len, false, &r);
  CHECK_EQ_INT(r.status, 400);
  check_status_body(&r, 3);
  resp_free(&r);
  check_still_serving();
}

TEST(bad_requests) {
  struct resp r;
  char ct[128];
  size_t before = captured(OTC_SIGNAL_TRACES);
  uint64_t rej = otc_counter_value(main_rcv.r->http_metrics.requests_rejected);

  /* Garbage: a field with wire type 7 does not exist. */
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x13, 0x37};
  CHECK_EQ_INT(
      post(main_rcv.port, "/v1/traces", "application/x-protobuf", garbage, sizeof garbage, &r),
      400);
  CHECK_EQ_STR(resp_header(&r, "Content-Type", ct, sizeof ct), "application/x-protobuf");
  check_status_body(&r, 3);
  resp_free(&r);
  check_still_serving();

  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len - 3, &r),
               400);
  check_status_body(&r, 3);
  resp_free(&r);
  check_still_serving();

  static const char bad_json[] = "{\"resourceSpans\":[{\"scopeSpans\":[";
  CHECK_EQ_INT(
      post(main_rcv.port, "/v1/traces", "application/json", bad_json, strlen(bad_json), &r), 400);
  CHECK_EQ_STR(resp_header(&r, "Content-Type", ct, sizeof ct), "application/json");
  CHECK_CONTAINS(r.body, "\"code\":3");
  CHECK_CONTAINS(r.body, "\"message\":");
  resp_free(&r);
  check_still_serving();

  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "text/plain", good, good_len, &r), 415);
  CHECK_CONTAINS(r.body, "application/x-protobuf");
  resp_free(&r);
  const char *none[] = {"Content-Type:", NULL};
  http_do(main_rcv.port, "POST", "/v1/traces", none, good, good_len, false, &r);
  CHECK_EQ_INT(r.status, 415);
  resp_free(&r);
  check_still_serving();

  CHECK_EQ_INT(post(main_rcv.port, "/v1/spans", "application/x-protobuf", good, good_len, &r), 404);
  resp_free(&r);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces/", "application/x-protobuf", good, good_len, &r),
               404);
  resp_free(&r);
  check_still_serving();

  http_do(main_rcv.port, "GET", "/v1/traces", NULL, NULL, 0, false, &r);
  CHECK_EQ_INT(r.status, 405);
  CHECK_EQ_STR(HDR(&r, "Allow"), "POST");
  resp_free(&r);
  http_do(main_rcv.port, "PUT", "/v1/logs", NULL, "x", 1, false, &r);
  CHECK_EQ_INT(r.status, 405);
  resp_free(&r);
  /* Without CORS configured, OPTIONS is just another method. */
  http_do(main_rcv.port, "OPTIONS", "/v1/traces", NULL, NULL, 0, false, &r);
  CHECK_EQ_INT(r.status, 405);
  resp_free(&r);
  check_still_serving();

  /* None of the bad requests reached the pipeline; five of them counted as rejected (garbage,
   * truncated, bad JSON and the two 415s). */
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3 * 6);
  CHECK_EQ_INT(otc_counter_value(main_rcv.r->http_metrics.requests_rejected), rej + 5);
}

TEST(empty_request) {
  struct resp r;
  size_t batches = captured_batches(OTC_SIGNAL_TRACES);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", NULL, 0, &r), 200);
  CHECK_EQ_INT(r.len, 0);
  resp_free(&r);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/logs", "application/json", "{}", 2, &r), 200);
  CHECK_EQ_STR(r.body, "{}");
  resp_free(&r);
  /* An empty request is a success that reaches no pipeline. */
  CHECK_EQ_INT(captured_batches(OTC_SIGNAL_TRACES), batches);
}

TEST(partial_success) {
  struct resp r;
  size_t len;
  uint8_t *t = make_traces(4, 2, &len);
  size_t before = captured(OTC_SIGNAL_TRACES);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", t, len, &r), 200);
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *tr =
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
          NULL, r.len, (const uint8_t *)r.body);
  CHECK(tr != NULL && tr->partial_success != NULL);
  if (tr && tr->partial_success) {
    CHECK_EQ_INT(tr->partial_success->rejected_spans, 1);
    CHECK_CONTAINS(tr->partial_success->error_message, "invalid trace or span id");
  }
  if (tr)
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr,
                                                                                             NULL);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  resp_free(&r);
  free(t);

  /* Every span invalid: nothing for the pipeline, still a (partial) success. */
  size_t batches = captured_batches(OTC_SIGNAL_TRACES);
  t = make_traces(1, 0, &len);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", t, len, &r), 200);
  CHECK(r.len > 0);
  CHECK_EQ_INT(captured_batches(OTC_SIGNAL_TRACES), batches);
  resp_free(&r);
  free(t);

  /* JSON: an empty spanId makes an invalid span; int64 counts are strings. */
  static const char js[] =
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
      "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"},"
      "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"\"}]}]}]}";
  before = captured(OTC_SIGNAL_TRACES);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/json", js, strlen(js), &r), 200);
  CHECK_CONTAINS(r.body, "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"");
  CHECK_CONTAINS(r.body, "invalid trace or span id");
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 1);
  resp_free(&r);
}

TEST(encode_response) {
  /* The metrics and logs responses, straight from the encoder (HTTP tests send traces). */
  struct otlp_export_result res;
  memset(&res, 0, sizeof res);
  uint8_t *out = NULL;
  size_t len = 99;
  CHECK_EQ_INT(otlp_receiver__encode_response(OTC_SIGNAL_LOGS, &res, &out, &len), 0);
  CHECK(out == NULL && len == 0);
  res.rejected = 2;
  snprintf(res.message, sizeof res.message, "2 log records rejected");
  CHECK_EQ_INT(otlp_receiver__encode_response(OTC_SIGNAL_LOGS, &res, &out, &len), 0);
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *lr =
      opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, len,
                                                                                      out);
  CHECK(lr && lr->partial_success && lr->partial_success->rejected_log_records == 2);
  if (lr)
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(lr,
                                                                                           NULL);
  free(out);
  CHECK_EQ_INT(otlp_receiver__encode_response(OTC_SIGNAL_METRICS, &res, &out, &len), 0);
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *mr =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
          NULL, len, out);
  CHECK(mr && mr->partial_success && mr->partial_success->rejected_data_points == 2);
  if (mr)
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        mr, NULL);
  free(out);
}

TEST(pipeline_errors) {
  struct resp r;
  char ra[32];
  uint64_t refused = otc_counter_value(main_rcv.r->http_metrics.refused[OTC_SIGNAL_TRACES]);
  set_consume_rc(OTC_ERR_REFUSED);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len, &r),
               503);
  CHECK_EQ_STR(resp_header(&r, "Retry-After", ra, sizeof ra), "1");
  check_status_body(&r, 14);
  resp_free(&r);
  CHECK_EQ_INT(
      post(main_rcv.port, "/v1/traces", "application/json", json_traces, strlen(json_traces), &r),
      503);
  CHECK_CONTAINS(r.body, "\"code\":14");
  CHECK_CONTAINS(r.body, "RetryInfo");
  resp_free(&r);
  set_consume_rc(OTC_ERR_PERMANENT);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len, &r),
               500);
  check_status_body(&r, 13);
  resp_free(&r);
  set_consume_rc(0);
  CHECK_EQ_INT(otc_counter_value(main_rcv.r->http_metrics.refused[OTC_SIGNAL_TRACES]), refused + 9);
  check_still_serving();
}

TEST(memory_refusal_rss_guard) {
  struct resp r;
  char ra[32];
  otc_mem_set_rss_refusing(true);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len, &r),
               503);
  CHECK_EQ_STR(resp_header(&r, "Retry-After", ra, sizeof ra), "1");
  check_status_body(&r, 14);
  resp_free(&r);
  /* Chunked: the refusal happens while the body streams in. */
  const char *hdrs[] = {"Content-Type: application/json", NULL};
  http_do(main_rcv.port, "POST", "/v1/traces", hdrs, json_traces, strlen(json_traces), true, &r);
  CHECK_EQ_INT(r.status, 503);
  CHECK_CONTAINS(r.body, "high memory usage");
  resp_free(&r);
  otc_mem_set_rss_refusing(false);
  check_still_serving();
}

TEST(body_limits) {
  struct rcv small;
  const char *yaml = "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n"
                     "    max_request_body_size: 16384\n";
  CHECK_EQ_INT(rcv_start(&small, yaml, OTC_SIGNALS_ALL), 0);
  if (!small.r)
    return;
  struct resp r;
  size_t big_len = 40000;
  uint8_t *big = calloc(1, big_len);
  size_t before = captured(OTC_SIGNAL_TRACES);

  /* Declared too large: answered from the headers. */
  CHECK_EQ_INT(post(small.port, "/v1/traces", "application/x-protobuf", big, big_len, &r), 413);
  check_status_body(&r, 8);
  resp_free(&r);
  const char *exp100[] = {"Content-Type: application/x-protobuf", "Expect: 100-continue", NULL};
  http_do(small.port, "POST", "/v1/traces", exp100, big, big_len, false, &r);
  CHECK_EQ_INT(r.status, 413);
  resp_free(&r);
  /* Streamed too large. */
  const char *pb[] = {"Content-Type: application/x-protobuf", NULL};
  http_do(small.port, "POST", "/v1/traces", pb, big, big_len, true, &r);
  CHECK_EQ_INT(r.status, 413);
  check_status_body(&r, 8);
  resp_free(&r);

  /* A client that streams on and on past the limit is cut off rather than read forever. */
  size_t endless_len = 12u * 1024u * 1024u;
  uint8_t *endless = calloc(1, endless_len);
  http_do(small.port, "POST", "/v1/traces", pb, endless, endless_len, true, &r);
  CHECK(r.status != 200);
  resp_free(&r);
  free(endless);

  /* A gzip bomb: 10 MiB of zeros in about 10 KB inflates no further than the limit. */
  size_t bomb_plain = 10u * 1024u * 1024u, zlen;
  uint8_t *zeros = calloc(1, bomb_plain);
  uint8_t *bomb = gzip(zeros, bomb_plain, &zlen);
  free(zeros);
  CHECK(zlen < 16384);
  const char *gz[] = {"Content-Type: application/x-protobuf", "Content-Encoding: gzip", NULL};
  uint64_t held = otc_mem_held();
  http_do(small.port, "POST", "/v1/traces", gz, bomb, zlen, false, &r);
  CHECK_EQ_INT(r.status, 413);
  check_status_body(&r, 8);
  resp_free(&r);
  CHECK(otc_mem_peak() < 1024 * 1024);
  CHECK_EQ_INT(otc_mem_held(), held);
  free(bomb);

  /* Just under the limit still passes, gzipped too. */
  size_t zg;
  uint8_t *zgood = gzip(good, good_len, &zg);
  http_do(small.port, "POST", "/v1/traces", gz, zgood, zg, false, &r);
  CHECK_EQ_INT(r.status, 200);
  resp_free(&r);
  free(zgood);
  CHECK_EQ_INT(post(small.port, "/v1/traces", "application/x-protobuf", good, good_len, &r), 200);
  resp_free(&r);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 6);
  free(big);
  rcv_stop(&small);
}

TEST(custom_paths) {
  struct rcv only;
  const char *yaml = "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n"
                     "    traces_url_path: /custom/traces\n";
  CHECK_EQ_INT(rcv_start(&only, yaml, OTC_SIGNAL_BIT(OTC_SIGNAL_TRACES)), 0);
  if (!only.r)
    return;
  struct resp r;
  size_t before = captured(OTC_SIGNAL_TRACES);
  const char *pb[] = {"Content-Type: application/x-protobuf", NULL};
  http_do(only.port, "POST", "/custom/traces", pb, good, good_len, false, &r);
  CHECK_EQ_INT(r.status, 200);
  resp_free(&r);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  http_do(only.port, "POST", "/v1/traces", pb, good, good_len, false, &r);
  CHECK_EQ_INT(r.status, 404);
  resp_free(&r);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  rcv_stop(&only);
}

TEST(ipv6_endpoint) {
  struct rcv v6;
  /* Loopback IPv6 may be missing in a container; then there is nothing to check. */
  if (rcv_start(&v6, "protocols:\n  http:\n    endpoint: \"[::1]:0\"\n", OTC_SIGNALS_ALL) != 0) {
    fprintf(stderr, "note: no IPv6 loopback here, ipv6_endpoint skipped\n");
    rcv_stop(&v6);
    return;
  }
  struct resp r;
  size_t before = captured(OTC_SIGNAL_TRACES);
  const char *pb[] = {"Content-Type: application/x-protobuf", NULL};
  http_host = "[::1]";
  http_do(v6.port, "POST", "/v1/traces", pb, good, good_len, false, &r);
  http_host = "127.0.0.1";
  CHECK_EQ_INT(r.status, 200);
  resp_free(&r);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before + 3);
  rcv_stop(&v6);
}

TEST(unwired_signal) {
  struct rcv only;
  const char *yaml = "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n";
  CHECK_EQ_INT(rcv_start(&only, yaml, OTC_SIGNAL_BIT(OTC_SIGNAL_METRICS)), 0);
  if (!only.r)
    return;
  struct resp r;
  const char *pb[] = {"Content-Type: application/x-protobuf", NULL};
  size_t len;
  uint8_t *l = make_logs(2, &len);
  size_t before = captured(OTC_SIGNAL_LOGS);
  http_do(only.port, "POST", "/v1/logs", pb, l, len, false, &r);
  CHECK_EQ_INT(r.status, 404);
  resp_free(&r);
  free(l);
  CHECK_EQ_INT(captured(OTC_SIGNAL_LOGS), before);
  uint8_t *m = make_metrics(3, &len);
  http_do(only.port, "POST", "/v1/metrics", pb, m, len, false, &r);
  CHECK_EQ_INT(r.status, 200);
  resp_free(&r);
  free(m);
  rcv_stop(&only);
}

TEST(cors) {
  struct rcv c;
  const char *yaml = "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    cors:\n"
                     "      allowed_origins: [\"https://*.example.com\", \"http://app.test\"]\n"
                     "      allowed_headers: [\"X-Custom\"]\n      max_age: 600\n";
  CHECK_EQ_INT(rcv_start(&c, yaml, OTC_SIGNALS_ALL), 0);
  if (!c.r)
    return;
  struct resp r;
  const char *pre[] = {"Origin: https://web.example.com", "Access-Control-Request-Method: POST",
                       "Access-Control-Request-Headers: content-type, x-custom", NULL};
  http_do(c.port, "OPTIONS", "/v1/traces", pre, NULL, 0, false, &r);
  CHECK(r.status == 204);
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Origin"), "https://web.example.com");
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Methods"), "POST");
  CHECK_CONTAINS(HDR(&r, "Access-Control-Allow-Headers"), "x-custom");
  CHECK_EQ_STR(HDR(&r, "Access-Control-Max-Age"), "600");
  CHECK_CONTAINS(HDR(&r, "Vary"), "Origin");
  resp_free(&r);

  /* A header outside the allowed ones fails the preflight: no CORS headers. */
  const char *badh[] = {"Origin: http://app.test", "Access-Control-Request-Method: POST",
                        "Access-Control-Request-Headers: X-Other", NULL};
  http_do(c.port, "OPTIONS", "/v1/traces", badh, NULL, 0, false, &r);
  CHECK(r.status == 204);
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Origin"), "");
  resp_free(&r);

  const char *evil[] = {"Origin: https://example.com.evil.test",
                        "Access-Control-Request-Method: POST", NULL};
  http_do(c.port, "OPTIONS", "/v1/traces", evil, NULL, 0, false, &r);
  CHECK(r.status == 204);
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Origin"), "");
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Methods"), "");
  resp_free(&r);

  /* The actual request carries the allowed origin back. */
  const char *post_ok[] = {"Origin: http://app.test", "Content-Type: application/x-protobuf", NULL};
  http_do(c.port, "POST", "/v1/traces", post_ok, good, good_len, false, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Origin"), "http://app.test");
  resp_free(&r);
  const char *post_bad[] = {"Origin: http://other.test", "Content-Type: application/x-protobuf",
                            NULL};
  http_do(c.port, "POST", "/v1/traces", post_bad, good, good_len, false, &r);
  CHECK_EQ_INT(r.status, 200); /* the browser, not the server, enforces CORS */
  CHECK_EQ_STR(HDR(&r, "Access-Control-Allow-Origin"), "");
  resp_free(&r);
  rcv_stop(&c);
}

struct bg_post {
  int port;
  long status;
};

static void *bg_post_run(void *arg) {
  struct bg_post *bp = arg;
  struct resp r;
  post(bp->port, "/v1/traces", "application/x-protobuf", good, good_len, &r);
  bp->status = r.status;
  resp_free(&r);
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

TEST(shutdown_drains_in_flight) {
  struct rcv v;
  CHECK_EQ_INT(rcv_start(&v, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n", OTC_SIGNALS_ALL),
               0);
  if (!v.r)
    return;
  pthread_mutex_lock(&cap.mu);
  cap.delay_ms = 300;
  pthread_mutex_unlock(&cap.mu);
  struct bg_post bp = {v.port, 0};
  pthread_t t;
  pthread_create(&t, NULL, bg_post_run, &bp);
  /* Let the request reach the slow consumer, then shut down under it. */
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  double t0 = now_ms();
  CHECK_EQ_INT(otc_receiver_otlp.shutdown(v.r), 0);
  double waited = now_ms() - t0;
  pthread_join(t, NULL);
  pthread_mutex_lock(&cap.mu);
  cap.delay_ms = 0;
  pthread_mutex_unlock(&cap.mu);
  CHECK_EQ_INT(bp.status, 200); /* the request in flight finished normally */
  CHECK(waited > 100 && waited < 3000);
  /* Nothing listens any more. */
  struct resp r;
  CHECK(post(v.port, "/v1/traces", "application/x-protobuf", good, good_len, &r) == 0);
  resp_free(&r);
  rcv_stop(&v);
}

TEST(memory_limit_refusal) {
  /* Last: a limit once set can only go down. */
  struct resp r;
  char ra[32];
  otc_mem_set_limits(otc_mem_held() + 64, 0);
  size_t before = captured(OTC_SIGNAL_TRACES);
  CHECK_EQ_INT(post(main_rcv.port, "/v1/traces", "application/x-protobuf", good, good_len, &r),
               503);
  CHECK_EQ_STR(resp_header(&r, "Retry-After", ra, sizeof ra), "1");
  check_status_body(&r, 14);
  resp_free(&r);
  CHECK_EQ_INT(captured(OTC_SIGNAL_TRACES), before);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  good = make_traces(3, 99, &good_len);
  if (rcv_start(&main_rcv, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n", OTC_SIGNALS_ALL) !=
      0) {
    fprintf(stderr, "cannot start the receiver\n");
    return 1;
  }
  RUN(config_errors);
  RUN(protobuf_all_signals);
  RUN(json_all_signals);
  RUN(gzip_bodies);
  RUN(bad_requests);
  RUN(empty_request);
  RUN(partial_success);
  RUN(encode_response);
  RUN(pipeline_errors);
  RUN(memory_refusal_rss_guard);
  RUN(body_limits);
  RUN(custom_paths);
  RUN(ipv6_endpoint);
  RUN(unwired_signal);
  RUN(cors);
  RUN(shutdown_drains_in_flight);
  RUN(memory_limit_refusal);
  rcv_stop(&main_rcv);
  free(good);
  curl_global_cleanup();
  otc_metrics_reset();
  return TEST_REPORT();
}
