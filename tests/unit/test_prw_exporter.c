/* The prometheus_remote_write exporter end to end against a libmicrohttpd server started by the
 * test on a loopback port, which checks the remote-write headers, snappy-decompresses and unpacks
 * each WriteRequest with our schema, and answers from a script of statuses: delivery and content,
 * 503 then 200 (delivered once), 500 retried, 400 dropped once and counted, 429 with Retry-After,
 * a split batch whose second request fails (only the rest is sent again), parallel requests,
 * delta-only batches (dropped, counted, nothing sent), the synchronous mode, and the config
 * checks. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <snappy-c.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/component.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/otlp_json.h"
#include "test.h"

#include "prometheus/remote.pb-c.h"

extern const struct otc_component_ops otc_exporter_prometheus_remote_write;

#define MAX_STATUS 16
#define MAX_KEYS 4096

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the remote-write server --- */

struct server {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  int statuses[MAX_STATUS]; /* the answer to the i-th request; 200 after the script */
  int n_statuses;
  const char *retry_after;
  int requests, accepted, bad_bodies, bad_headers;
  int64_t request_ms[64];
  char content_type[128], encoding[64], version[32], user_agent[128], tenant[64];
  char *keys[MAX_KEYS]; /* series delivered (in 2xx answers), as name="value",... */
  double values[MAX_KEYS];
  size_t n_keys;
  size_t samples;
};

struct upload {
  uint8_t *data;
  size_t len, cap;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t cap) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  snprintf(out, cap, "%s", v ? v : "");
}

static char *series_key(const Prometheus__TimeSeries *ts) {
  size_t cap = 64;
  for (size_t i = 0; i < ts->n_labels; i++)
    cap += strlen(ts->labels[i]->name) + strlen(ts->labels[i]->value) + 4;
  char *k = malloc(cap);
  size_t o = 0;
  k[0] = '\0';
  for (size_t i = 0; i < ts->n_labels; i++)
    o += (size_t)snprintf(k + o, cap - o, "%s%s=\"%s\"", i ? "," : "", ts->labels[i]->name,
                          ts->labels[i]->value);
  return k;
}

/* Decodes a request as Prometheus would: snappy block, then prometheus.WriteRequest. Returns NULL
 * when it is not one. */
static Prometheus__WriteRequest *decode(const uint8_t *body, size_t len) {
  size_t raw_len = 0;
  if (snappy_uncompressed_length((const char *)body, len, &raw_len) != SNAPPY_OK ||
      raw_len > 64 * 1024 * 1024)
    return NULL;
  char *raw = malloc(raw_len ? raw_len : 1);
  Prometheus__WriteRequest *w = NULL;
  if (raw && snappy_uncompress((const char *)body, len, raw, &raw_len) == SNAPPY_OK)
    w = prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
  free(raw);
  return w;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  struct server *s = cls;
  struct upload *u = *con_cls;
  (void)url;
  (void)version;
  if (!u) {
    u = calloc(1, sizeof *u);
    *con_cls = u;
    return u ? MHD_YES : MHD_NO;
  }
  if (*upload_data_size) {
    if (u->len + *upload_data_size > u->cap) {
      size_t cap = (u->len + *upload_data_size) * 2;
      uint8_t *p = realloc(u->data, cap);
      if (!p)
        return MHD_NO;
      u->data = p;
      u->cap = cap;
    }
    memcpy(u->data + u->len, upload_data, *upload_data_size);
    u->len += *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&s->mu);
  int i = s->requests++;
  if (i < 64)
    s->request_ms[i] = now_ms();
  int status = i < s->n_statuses ? s->statuses[i] : 200;
  copy_header(c, "Content-Type", s->content_type, sizeof s->content_type);
  copy_header(c, "Content-Encoding", s->encoding, sizeof s->encoding);
  copy_header(c, "X-Prometheus-Remote-Write-Version", s->version, sizeof s->version);
  copy_header(c, "User-Agent", s->user_agent, sizeof s->user_agent);
  copy_header(c, "X-Scope-OrgID", s->tenant, sizeof s->tenant);
  if (strcmp(method, "POST") != 0 || strcmp(s->content_type, "application/x-protobuf") != 0 ||
      strcmp(s->encoding, "snappy") != 0 || strcmp(s->version, "0.1.0") != 0)
    s->bad_headers++;
  Prometheus__WriteRequest *w = decode(u->data, u->len);
  if (!w) {
    s->bad_bodies++;
    status = 400;
  }
  if (w && status >= 200 && status < 300) {
    s->accepted++;
    for (size_t j = 0; j < w->n_timeseries && s->n_keys < MAX_KEYS; j++) {
      const Prometheus__TimeSeries *ts = w->timeseries[j];
      s->values[s->n_keys] = ts->n_samples ? ts->samples[ts->n_samples - 1]->value : 0;
      s->keys[s->n_keys++] = series_key(ts);
      s->samples += ts->n_samples;
    }
  }
  const char *retry_after = s->retry_after;
  pthread_mutex_unlock(&s->mu);
  if (w)
    prometheus__write_request__free_unpacked(w, NULL);
  struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (status == 429 && retry_after)
    MHD_add_response_header(r, "Retry-After", retry_after);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
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

static int server_start(struct server *s, const int *statuses, int n) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  for (int i = 0; i < n && i < MAX_STATUS; i++)
    s->statuses[i] = statuses[i];
  s->n_statuses = n;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                          NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                          completed, s, MHD_OPTION_END);
  if (!s->d)
    return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  return s->port ? 0 : -1;
}

static void server_stop(struct server *s) {
  if (s->d)
    MHD_stop_daemon(s->d);
  for (size_t i = 0; i < s->n_keys; i++)
    free(s->keys[i]);
  pthread_mutex_destroy(&s->mu);
}

static int requests(struct server *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->requests;
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* Waits up to ms for at least n requests. */
static bool wait_requests(struct server *s, int n, int ms) {
  for (int64_t end = now_ms() + ms; now_ms() < end; usleep(10 * 1000))
    if (requests(s) >= n)
      return true;
  return requests(s) >= n;
}

/* How often the server accepted a series with these labels. */
static int delivered(struct server *s, const char *key, double *value) {
  int n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n_keys; i++)
    if (strcmp(s->keys[i], key) == 0) {
      n++;
      if (value)
        *value = s->values[i];
    }
  pthread_mutex_unlock(&s->mu);
  return n;
}

static size_t duplicates(struct server *s) {
  size_t d = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n_keys; i++)
    for (size_t j = i + 1; j < s->n_keys; j++)
      d += strcmp(s->keys[i], s->keys[j]) == 0;
  pthread_mutex_unlock(&s->mu);
  return d;
}

/* --- the exporter --- */

/* OTLP JSON with ' for ", as a metrics batch of `items` data points. */
static struct otc_batch *batch(const char *q, size_t items) {
  char *j = strdup(q);
  for (char *p = j; *p; p++)
    if (*p == '\'')
      *p = '"';
  uint8_t *buf = NULL;
  size_t len = 0;
  char why[256] = "";
  int rc = otc_json_to_proto(OTC_SIGNAL_METRICS, j, strlen(j), 64, &buf, &len, why, sizeof why);
  if (rc)
    fprintf(stderr, "bad test JSON: %s\n", why);
  CHECK(rc == 0);
  free(j);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_METRICS, buf, len, items, false, NULL);
  free(buf);
  return b;
}

struct exp {
  struct otc_cfg_node *root;
  void *ctx;
  char err[512];
};

/* Creates and starts exporter `id` with the YAML config (PORT replaced by the server's port). */
static bool exp_start(struct exp *x, const char *id, const char *yaml, int port) {
  char text[4096], portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  size_t o = 0;
  for (const char *p = yaml; *p && o + 16 < sizeof text;) {
    if (strncmp(p, "PORT", 4) == 0) {
      o += (size_t)snprintf(text + o, sizeof text - o, "%s", portstr);
      p += 4;
    } else {
      text[o++] = *p++;
    }
  }
  text[o] = '\0';
  memset(x, 0, sizeof *x);
  struct otc_cfg_err err = {{0}};
  x->root = otc_cfg_load_string(text, strlen(text), "test.yaml", &err);
  if (!x->root) {
    snprintf(x->err, sizeof x->err, "%s", err.msg);
    return false;
  }
  struct otc_create_args args;
  memset(&args, 0, sizeof args);
  args.id = id;
  x->ctx = otc_exporter_prometheus_remote_write.create(&args, x->root, &err);
  if (!x->ctx) {
    snprintf(x->err, sizeof x->err, "%s", err.msg);
    return false;
  }
  return otc_exporter_prometheus_remote_write.start(x->ctx) == 0;
}

static void exp_stop(struct exp *x) {
  if (x->ctx) {
    otc_exporter_prometheus_remote_write.shutdown(x->ctx);
    otc_exporter_prometheus_remote_write.destroy(x->ctx);
  }
  otc_cfg_free(x->root);
}

static uint64_t counter(const char *name, const char *labels) {
  return otc_counter_value(otc_counter_get(name, "", labels));
}

static uint64_t sent(const char *id) {
  char l[256];
  snprintf(l, sizeof l, "exporter=\"%s\"", id);
  return counter("otelcol_exporter_sent_metric_points", l);
}

static uint64_t failed(const char *id) {
  char l[256];
  snprintf(l, sizeof l, "exporter=\"%s\"", id);
  return counter("otelcol_exporter_send_failed_metric_points", l);
}

static uint64_t dropped(const char *id, const char *reason) {
  char l[256];
  snprintf(l, sizeof l, "component=\"%s\",otel_signal=\"metrics\",reason=\"%s\"", id, reason);
  return counter("otelcol_dropped_items", l);
}

#define RES                                                                                        \
  "{'resourceMetrics':[{'resource':{'attributes':[{'key':'service.name','value':{'stringValue':'"  \
  "svc'}}]},'scopeMetrics':[{'scope':{'name':'lib','version':'1.0'},'metrics':["
#define END "]}]}]}"
#define COUNTER                                                                                    \
  "{'name':'http.requests','sum':{'aggregationTemporality':2,'isMonotonic':true,'dataPoints':[{'"  \
  "timeUnixNano':'1700000000000000000','asInt':'42'}]}}"
#define GAUGE                                                                                      \
  "{'name':'temp','unit':'Cel','gauge':{'dataPoints':[{'timeUnixNano':'1700000000000000000','"     \
  "asDouble':21.5}]}}"
#define KEY_COUNTER                                                                                \
  "__name__=\"http_requests_total\",cluster=\"c1\",job=\"svc\",otel_scope_name=\"lib\",otel_"      \
  "scope_version=\"1.0\""
#define KEY_GAUGE                                                                                  \
  "__name__=\"temp_celsius\",cluster=\"c1\",job=\"svc\",otel_scope_name=\"lib\",otel_scope_"       \
  "version=\"1.0\""

/* --- tests --- */

TEST(delivers_with_headers) {
  struct server s;
  CHECK(server_start(&s, NULL, 0) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/e2e";
  bool ok = exp_start(&x, id,
                      "endpoint: http://127.0.0.1:PORT/api/v1/write\n"
                      "headers:\n  X-Scope-OrgID: tenant-1\n  Content-Type: text/plain\n"
                      "external_labels:\n  cluster: c1\n",
                      s.port);
  if (!ok)
    fprintf(stderr, "%s\n", x.err);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(
        otc_exporter_prometheus_remote_write.consume(x.ctx, batch(RES COUNTER "," GAUGE END, 2)),
        0);
    CHECK(wait_requests(&s, 1, 5000));
  }
  exp_stop(&x);
  CHECK_EQ_INT(s.requests, 1);
  CHECK_EQ_INT(s.bad_headers, 0);
  CHECK_EQ_INT(s.bad_bodies, 0);
  CHECK_EQ_STR(s.content_type, "application/x-protobuf");
  CHECK_EQ_STR(s.encoding, "snappy");
  CHECK_EQ_STR(s.version, "0.1.0");
  CHECK(s.user_agent[0] != '\0');
  CHECK_EQ_STR(s.tenant, "tenant-1");
  double v = 0;
  CHECK_EQ_INT(delivered(&s, KEY_COUNTER, &v), 1);
  CHECK(v == 42);
  CHECK_EQ_INT(delivered(&s, KEY_GAUGE, &v), 1);
  CHECK(v == 21.5);
  CHECK_EQ_INT(s.n_keys, 2);
  CHECK_EQ_INT(sent(id), 2);
  CHECK_EQ_INT(failed(id), 0);
  server_stop(&s);
}

TEST(retries_503_then_delivers_once) {
  int script[] = {503};
  struct server s;
  CHECK(server_start(&s, script, 1) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/503";
  bool ok = exp_start(&x, id,
                      "endpoint: http://127.0.0.1:PORT/api/v1/write\n"
                      "external_labels: {cluster: c1}\n",
                      s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, batch(RES COUNTER END, 1)), 0);
    CHECK(wait_requests(&s, 2, 5000));
  }
  exp_stop(&x);
  CHECK_EQ_INT(s.requests, 2);
  CHECK_EQ_INT(s.accepted, 1);
  CHECK_EQ_INT(delivered(&s, KEY_COUNTER, NULL), 1);
  CHECK_EQ_INT(sent(id), 1);
  CHECK_EQ_INT(failed(id), 0);
  server_stop(&s);
}

TEST(retries_500) {
  int script[] = {500, 500};
  struct server s;
  CHECK(server_start(&s, script, 2) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/500";
  bool ok = exp_start(&x, id,
                      "endpoint: http://127.0.0.1:PORT/api/v1/write\n"
                      "external_labels: {cluster: c1}\n",
                      s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, batch(RES COUNTER END, 1)), 0);
    CHECK(wait_requests(&s, 3, 5000));
  }
  exp_stop(&x);
  CHECK_EQ_INT(s.requests, 3);
  CHECK_EQ_INT(delivered(&s, KEY_COUNTER, NULL), 1);
  CHECK_EQ_INT(sent(id), 1);
  server_stop(&s);
}

TEST(drops_400_once_and_counts) {
  int script[] = {400, 400, 400, 400};
  struct server s;
  CHECK(server_start(&s, script, 4) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/400";
  bool ok = exp_start(&x, id, "endpoint: http://127.0.0.1:PORT/api/v1/write\n", s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(
        otc_exporter_prometheus_remote_write.consume(x.ctx, batch(RES COUNTER "," GAUGE END, 2)),
        0);
    CHECK(wait_requests(&s, 1, 5000));
    usleep(400 * 1000); /* a retry would come after 50 ms */
  }
  exp_stop(&x);
  CHECK_EQ_INT(s.requests, 1);
  CHECK_EQ_INT(s.accepted, 0);
  CHECK_EQ_INT(sent(id), 0);
  CHECK_EQ_INT(failed(id), 2);
  CHECK_EQ_INT(dropped(id, "http_400"), 2);
  server_stop(&s);
}

TEST(honours_retry_after_on_429) {
  int script[] = {429};
  struct server s;
  CHECK(server_start(&s, script, 1) == 0);
  s.retry_after = "1";
  struct exp x;
  const char *id = "prometheus_remote_write/429";
  bool ok = exp_start(&x, id, "endpoint: http://127.0.0.1:PORT/api/v1/write\n", s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, batch(RES COUNTER END, 1)), 0);
    CHECK(wait_requests(&s, 2, 5000));
  }
  exp_stop(&x);
  CHECK_EQ_INT(s.requests, 2);
  CHECK(s.request_ms[1] - s.request_ms[0] >= 900);
  CHECK_EQ_INT(sent(id), 1);
  server_stop(&s);
}

/* 40 series in requests of at most 400 bytes. */
static struct otc_batch *many_series(int n) {
  size_t cap = (size_t)n * 200 + 1024, o = 0;
  char *json = malloc(cap);
  o += (size_t)snprintf(json + o, cap - o, "%s{'name':'g','gauge':{'dataPoints':[", RES);
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(json + o, cap - o,
                          "%s{'timeUnixNano':'1000000','asDouble':%d,'attributes':[{'key':'i',"
                          "'value':{'intValue':'%d'}}]}",
                          i ? "," : "", i, i);
  snprintf(json + o, cap - o, "]}}%s", END);
  struct otc_batch *b = batch(json, (size_t)n);
  free(json);
  return b;
}

TEST(split_batch_resends_only_what_failed) {
  int script[] = {200, 503};
  struct server s;
  CHECK(server_start(&s, script, 2) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/split";
  bool ok = exp_start(&x, id,
                      "endpoint: http://127.0.0.1:PORT/api/v1/write\n"
                      "max_batch_size_bytes: 400\n"
                      "remote_write_queue: {num_consumers: 1}\n",
                      s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, many_series(40)), 0);
    for (int64_t end = now_ms() + 5000; now_ms() < end && sent(id) == 0;)
      usleep(10 * 1000);
  }
  exp_stop(&x);
  CHECK(s.accepted >= 3);
  /* Every request but the refused one once, that one twice. */
  CHECK_EQ_INT(s.requests, s.accepted + 1);
  CHECK_EQ_INT(s.n_keys, 40);
  CHECK_EQ_INT(duplicates(&s), 0);
  CHECK_EQ_INT(s.bad_bodies, 0);
  CHECK_EQ_INT(sent(id), 40);
  server_stop(&s);
}

TEST(parallel_requests_of_one_batch) {
  struct server s;
  CHECK(server_start(&s, NULL, 0) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/parallel";
  bool ok = exp_start(&x, id,
                      "endpoint: http://127.0.0.1:PORT/api/v1/write\n"
                      "max_batch_size_bytes: 300\n"
                      "max_batch_request_parallelism: 4\n",
                      s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, many_series(100)), 0);
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, many_series(100)), 0);
    for (int64_t end = now_ms() + 5000; now_ms() < end && sent(id) < 200;)
      usleep(10 * 1000);
  }
  exp_stop(&x);
  CHECK(s.requests > 10);
  CHECK_EQ_INT(s.requests, s.accepted);
  /* The second batch repeats the same series and timestamps: each series twice. */
  CHECK_EQ_INT(s.n_keys, 200);
  CHECK_EQ_INT(sent(id), 200);
  server_stop(&s);
}

TEST(delta_batch_dropped_and_counted) {
  struct server s;
  CHECK(server_start(&s, NULL, 0) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/delta";
  bool ok = exp_start(&x, id, "endpoint: http://127.0.0.1:PORT/api/v1/write\n", s.port);
  CHECK(ok);
  if (ok) {
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(
                     x.ctx, batch(RES "{'name':'d','sum':{'aggregationTemporality':1,'isMonotonic':"
                                      "true,'dataPoints':[{'timeUnixNano':'1000000','asInt':'1'},{"
                                      "'timeUnixNano':'2000000','asInt':'1'}]}}" END,
                                  2)),
                 0);
    for (int64_t end = now_ms() + 5000; now_ms() < end && sent(id) == 0;)
      usleep(10 * 1000);
    usleep(100 * 1000);
  }
  exp_stop(&x);
  CHECK_EQ_INT(s.requests, 0);
  CHECK_EQ_INT(dropped(id, "delta_temporality"), 2);
  server_stop(&s);
}

TEST(synchronous_without_queue) {
  int script[] = {503};
  struct server s;
  CHECK(server_start(&s, script, 1) == 0);
  struct exp x;
  const char *id = "prometheus_remote_write/sync";
  bool ok = exp_start(&x, id,
                      "http:\n  endpoint: http://127.0.0.1:PORT/api/v1/write\n"
                      "external_labels: {cluster: c1}\n"
                      "remote_write_queue: {enabled: false}\n",
                      s.port);
  if (!ok)
    fprintf(stderr, "%s\n", x.err);
  CHECK(ok);
  if (ok) {
    /* The call returns once delivered, after the retry. */
    CHECK_EQ_INT(otc_exporter_prometheus_remote_write.consume(x.ctx, batch(RES COUNTER END, 1)), 0);
    CHECK_EQ_INT(requests(&s), 2);
  }
  exp_stop(&x);
  CHECK_EQ_INT(delivered(&s, KEY_COUNTER, NULL), 1);
  server_stop(&s);
}

TEST(config_checks) {
  static const struct {
    const char *yaml;
    const char *want; /* NULL: accepted */
  } cases[] = {
      {"endpoint: http://127.0.0.1:9/w\n", NULL},
      {"http:\n  endpoint: http://127.0.0.1:9/w\n  timeout: 2s\n", NULL},
      {"endpoint: http://127.0.0.1:9/w\ncompression: snappy\nwal:\n  directory: /tmp\n", NULL},
      {"endpoint: http://127.0.0.1:9/w\nretry_on_failure:\n  max_interval: 500ms\n"
       "  max_elapsed_time: 1s\n",
       NULL},
      {"endpoint: http://127.0.0.1:9/w\ntranslation_strategy: UnderscoreEscapingWithoutSuffixes\n"
       "resource_constant_labels:\n  included: ['k8s.*']\ntarget_info: {enabled: false}\n"
       "protobuf_message: prometheus.WriteRequest\ninclude_metadata_keys: []\n",
       NULL},
      {"namespace: x\n", "endpoint"},
      {"endpoint: http://127.0.0.1:9/w\ncompression: gzip\n", "snappy"},
      {"endpoint: http://127.0.0.1:9/w\nprotobuf_message: io.prometheus.write.v2.Request\n",
       "not supported"},
      {"endpoint: http://127.0.0.1:9/w\nexternal_labels: {a: ''}\n", "empty key or value"},
      {"endpoint: http://127.0.0.1:9/w\nexternal_labels: {'_': x}\n", "not a valid label name"},
      {"endpoint: http://127.0.0.1:9/w\nexternal_labels: {a.b: x, a_b: y}\n", "same label name"},
      {"endpoint: http://127.0.0.1:9/w\nremote_write_queue: {queue_size: 0}\n", "0 size queue"},
      {"endpoint: http://127.0.0.1:9/w\nremote_write_queue: {num_consumers: -1}\n",
       "can't be negative"},
      {"endpoint: http://127.0.0.1:9/w\ninclude_metadata_keys: [x-tenant]\n", "not supported"},
      {"endpoint: http://127.0.0.1:9/w\ntranslation_strategy: NoTranslation\n", "Remote Write 2.0"},
      {"endpoint: http://127.0.0.1:9/w\ntranslation_strategy: Bogus\n",
       "invalid translation_strategy"},
      {"endpoint: http://127.0.0.1:9/w\nmax_batch_request_parallelism: 0\n", "below 1"},
      {"endpoint: http://127.0.0.1:9/w\nmax_batch_size_bytes: -1\n", "greater than 0"},
      {"endpoint: http://127.0.0.1:9/w\nresource_constant_labels: {enabled: true}\n",
       "resource_constant_labels"},
      {"endpoint: http://127.0.0.1:9/w\nresource_to_telemetry_conversion: {enabled: true}\n"
       "resource_constant_labels: {included: [a]}\n",
       "cannot configure both"},
      {"endpoint: http://127.0.0.1:9/w\nconvert_explicit_histograms_to_nhcb: true\n",
       "not supported"},
      {"endpoint: http://127.0.0.1:9/w\nsending_queue: {enabled: true}\n", "sending_queue"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct otc_cfg_err err = {{0}};
    struct otc_cfg_node *root =
        otc_cfg_load_string(cases[i].yaml, strlen(cases[i].yaml), "test.yaml", &err);
    CHECK(root != NULL);
    struct otc_create_args args;
    memset(&args, 0, sizeof args);
    args.id = "prometheus_remote_write/cfg";
    void *ctx = root ? otc_exporter_prometheus_remote_write.create(&args, root, &err) : NULL;
    if (cases[i].want) {
      if (ctx)
        fprintf(stderr, "case %zu accepted\n", i);
      CHECK(ctx == NULL);
      CHECK_CONTAINS(err.msg, cases[i].want);
    } else {
      if (!ctx)
        fprintf(stderr, "case %zu: %s\n", i, err.msg);
      CHECK(ctx != NULL);
    }
    otc_exporter_prometheus_remote_write.destroy(ctx);
    otc_cfg_free(root);
  }
  CHECK_EQ_STR(otc_exporter_prometheus_remote_write.type, "prometheus_remote_write");
  CHECK_EQ_STR(otc_exporter_prometheus_remote_write.aliases[0], "prometheusremotewrite");
  CHECK(otc_exporter_prometheus_remote_write.signals == OTC_SIGNAL_BIT(OTC_SIGNAL_METRICS));
}

int main(void) {
  otc_log_set_level(OTC_LOG_ERROR);
  RUN(delivers_with_headers);
  RUN(retries_503_then_delivers_once);
  RUN(retries_500);
  RUN(drops_400_once_and_counts);
  RUN(honours_retry_after_on_429);
  RUN(split_batch_resends_only_what_failed);
  RUN(parallel_requests_of_one_batch);
  RUN(delta_batch_dropped_and_counted);
  RUN(synchronous_without_queue);
  RUN(config_checks);
  return TEST_REPORT();
}
