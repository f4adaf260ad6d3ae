/* Self-telemetry: the registry, the Prometheus text rendering (exact bytes), concurrent updates,
 * the standard instruments and the telemetry HTTP server. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/errors.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "test.h"

static char *render(int total) {
  struct otc_metrics_render_opts opts = {.total_suffix = total};
  char *out = NULL;
  size_t len = 0;
  CHECK_EQ_INT(otc_metrics_render(&opts, &out, &len), 0);
  CHECK(out && strlen(out) == len);
  return out;
}

TEST(render_exact) {
  otc_metrics_reset();
  char esc[64], labels[128];
  snprintf(labels, sizeof labels, "path=\"%s\"",
           otc_metrics_escape_label("a\"b\\c\nd", esc, sizeof esc));
  struct otc_counter *c1 = otc_counter_get("t_requests", "Requests served.", "code=\"500\"");
  struct otc_counter *c0 = otc_counter_get("t_requests", "Requests served.", "code=\"200\"");
  struct otc_counter *ce = otc_counter_get("t_escaped", "Help with \\ and\nnewline.", labels);
  struct otc_gauge *g = otc_gauge_get("t_temperature", "A gauge.", "");
  double bounds[] = {1, 2.5};
  struct otc_histogram *h = otc_histogram_get("t_latency", "A histogram.", "op=\"x\"", bounds, 2);
  otc_counter_add(c0, 7);
  otc_counter_add(c1, 1);
  otc_counter_add(ce, 3);
  otc_gauge_set(g, 1.5);
  otc_histogram_observe(h, 0.5);
  otc_histogram_observe(h, 1); /* on the bound: counted in le="1" */
  otc_histogram_observe(h, 2);
  otc_histogram_observe(h, 10);

  const char *want_plain = "# HELP t_escaped Help with \\\\ and\\nnewline.\n"
                           "# TYPE t_escaped counter\n"
                           "t_escaped{path=\"a\\\"b\\\\c\\nd\"} 3\n"
                           "# HELP t_latency A histogram.\n"
                           "# TYPE t_latency histogram\n"
                           "t_latency_bucket{op=\"x\",le=\"1\"} 2\n"
                           "t_latency_bucket{op=\"x\",le=\"2.5\"} 3\n"
                           "t_latency_bucket{op=\"x\",le=\"+Inf\"} 4\n"
                           "t_latency_sum{op=\"x\"} 13.5\n"
                           "t_latency_count{op=\"x\"} 4\n"
                           "# HELP t_requests Requests served.\n"
                           "# TYPE t_requests counter\n"
                           "t_requests{code=\"200\"} 7\n"
                           "t_requests{code=\"500\"} 1\n"
                           "# HELP t_temperature A gauge.\n"
                           "# TYPE t_temperature gauge\n"
                           "t_temperature 1.5\n";
  char *out = render(0);
  CHECK_EQ_STR(out, want_plain);
  free(out);

  out = render(1);
  CHECK_CONTAINS(out, "# HELP t_requests_total Requests served.\n# TYPE t_requests_total counter\n"
                      "t_requests_total{code=\"200\"} 7\nt_requests_total{code=\"500\"} 1\n");
  CHECK_CONTAINS(out, "t_escaped_total{");
  /* Only counters take the suffix. */
  CHECK(!strstr(out, "t_temperature_total"));
  CHECK(!strstr(out, "t_latency_total"));
  CHECK_CONTAINS(out, "t_latency_bucket{op=\"x\",le=\"+Inf\"} 4\n");
  free(out);
  otc_metrics_reset();
}

TEST(value_formatting) {
  otc_metrics_reset();
  otc_gauge_set(otc_gauge_get("v_a_int", "", ""), 12345678901234.0);
  otc_gauge_set(otc_gauge_get("v_b_tenth", "", ""), 0.1);
  otc_gauge_set(otc_gauge_get("v_c_neg", "", ""), -2);
  otc_gauge_set(otc_gauge_get("v_d_nan", "", ""), NAN);
  otc_gauge_set(otc_gauge_get("v_e_inf", "", ""), -INFINITY);
  otc_counter_add(otc_counter_get("v_f_big", "", ""), UINT64_MAX);
  char *out = render(0);
  CHECK_CONTAINS(out, "\nv_a_int 12345678901234\n");
  CHECK_CONTAINS(out, "\nv_b_tenth 0.1\n");
  CHECK_CONTAINS(out, "\nv_c_neg -2\n");
  CHECK_CONTAINS(out, "\nv_d_nan NaN\n");
  CHECK_CONTAINS(out, "\nv_e_inf -Inf\n");
  CHECK_CONTAINS(out, "\nv_f_big 18446744073709551615\n");
  CHECK(!strstr(out, "e+"));
  free(out);
  otc_metrics_reset();
}

TEST(registration_idempotent) {
  otc_metrics_reset();
  struct otc_counter *a = otc_counter_get("r_x", "h", "k=\"1\"");
  struct otc_counter *b = otc_counter_get("r_x", "h", "k=\"1\"");
  struct otc_counter *c = otc_counter_get("r_x", "h", "k=\"2\"");
  CHECK(a && a == b);
  CHECK(c && c != a);
  /* The same name as another TYPE cannot be rendered: refused. */
  CHECK(otc_gauge_get("r_x", "h", "k=\"3\"") == NULL);
  otc_counter_add(NULL, 1); /* no-op */
  otc_gauge_set(NULL, 1);
  otc_histogram_observe(NULL, 1);
  CHECK_EQ_INT(otc_counter_value(NULL), 0);
  otc_counter_add(a, 2);
  CHECK_EQ_INT(otc_counter_value(b), 2);
  CHECK_EQ_INT(otc_counter_value(c), 0);
  struct otc_gauge *g = otc_gauge_get("r_g", "", "");
  otc_gauge_add(g, 2.5);
  otc_gauge_add(g, -1);
  CHECK(otc_gauge_value(g) == 1.5);
  otc_metrics_reset();
}

#define THREADS 4
#define ADDS 100000

struct worker_args {
  struct otc_counter *c;
  struct otc_gauge *g;
  struct otc_histogram *h;
};

static void *worker(void *p) {
  struct worker_args *a = p;
  for (int i = 0; i < ADDS; i++) {
    otc_counter_add(a->c, 1);
    otc_gauge_add(a->g, 1);
    otc_histogram_observe(a->h, (double)(i % 3));
  }
  return NULL;
}

static void *registering_worker(void *p) {
  (void)p;
  for (int i = 0; i < 1000; i++)
    otc_counter_add(otc_counter_get("c_reg", "", "k=\"v\""), 1);
  return NULL;
}

TEST(concurrency_exact) {
  otc_metrics_reset();
  double bounds[] = {0.5, 1.5};
  struct worker_args a = {otc_counter_get("c_total_adds", "", ""), otc_gauge_get("c_g", "", ""),
                          otc_histogram_get("c_h", "", "", bounds, 2)};
  pthread_t t[THREADS], r[THREADS];
  for (int i = 0; i < THREADS; i++) {
    pthread_create(&t[i], NULL, worker, &a);
    pthread_create(&r[i], NULL, registering_worker, NULL);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    pthread_join(r[i], NULL);
  }
  CHECK_EQ_INT(otc_counter_value(a.c), THREADS * ADDS);
  CHECK(otc_gauge_value(a.g) == (double)(THREADS * ADDS));
  CHECK_EQ_INT(otc_counter_value(otc_counter_get("c_reg", "", "k=\"v\"")), THREADS * 1000);
  char *out = render(0);
  CHECK_CONTAINS(out, "c_h_count 400000\n");
  /* i % 3 over 100000 values: 33334 zeros, 33333 ones, 33333 twos per thread. */
  CHECK_CONTAINS(out, "c_h_bucket{le=\"0.5\"} 133336\n");
  CHECK_CONTAINS(out, "c_h_bucket{le=\"1.5\"} 266668\n");
  CHECK_CONTAINS(out, "c_h_sum 399996\n");
  /* One series only, however many threads registered it. */
  CHECK_CONTAINS(out, "\nc_reg{k=\"v\"} 4000\n");
  CHECK(strstr(strstr(out, "c_reg{") + 1, "c_reg{") == NULL);
  free(out);
  otc_metrics_reset();
}

TEST(standard_instruments) {
  otc_metrics_reset();
  struct otc_receiver_metrics rm;
  otc_receiver_metrics_init(&rm, "otlp/\"in\"", "grpc");
  otc_counter_add(rm.accepted[OTC_SIGNAL_TRACES], 5);
  otc_counter_add(rm.refused[OTC_SIGNAL_LOGS], 2);
  otc_counter_add(rm.requests_rejected, 1);
  struct otc_exporter_metrics em;
  otc_exporter_metrics_init(&em, "debug");
  otc_counter_add(em.sent[OTC_SIGNAL_METRICS], 9);
  otc_count_dropped("exporter/otlp", OTC_SIGNAL_TRACES, "queue_full", 4);
  otc_count_dropped("exporter/otlp", OTC_SIGNAL_TRACES, "queue_full", 1);
  char *out = render(0);
  CHECK_CONTAINS(out, "otelcol_receiver_accepted_spans{receiver=\"otlp/\\\"in\\\"\","
                      "transport=\"grpc\"} 5\n");
  CHECK_CONTAINS(out, "otelcol_receiver_refused_log_records{receiver=\"otlp/\\\"in\\\"\","
                      "transport=\"grpc\"} 2\n");
  CHECK_CONTAINS(out, "otelcol_receiver_failed_metric_points{");
  CHECK_CONTAINS(out, "otelcol_receiver_rejected_requests{receiver=");
  CHECK_CONTAINS(out, "# HELP otelcol_receiver_accepted_spans Number of spans successfully "
                      "pushed into the pipeline.");
  CHECK_CONTAINS(out, "otelcol_exporter_sent_metric_points{exporter=\"debug\"} 9\n");
  CHECK_CONTAINS(out, "otelcol_exporter_send_failed_spans{exporter=\"debug\"} 0\n");
  CHECK_CONTAINS(out, "otelcol_exporter_enqueue_failed_log_records{exporter=\"debug\"} 0\n");
  CHECK_CONTAINS(out, "otelcol_dropped_items{component=\"exporter/otlp\",otel_signal=\"traces\","
                      "reason=\"queue_full\"} 5\n");
  free(out);
  otc_metrics_reset();
}

TEST(process_instruments) {
  otc_metrics_reset();
  otc_metrics_register_process();
  otc_metrics_register_process(); /* idempotent */
  char *out = render(1);
  CHECK_CONTAINS(out, "# TYPE otelcol_process_uptime_total counter\notelcol_process_uptime_total ");
  CHECK_CONTAINS(out, "# TYPE otelcol_process_memory_rss gauge\notelcol_process_memory_rss ");
  CHECK_CONTAINS(out, "# TYPE otelcol_process_cpu_seconds_total counter\n");
  CHECK_CONTAINS(out, "otelcol_memory_limiter_held_bytes ");
  CHECK_CONTAINS(out, "otelcol_memory_limiter_limit_bytes ");
  CHECK_CONTAINS(out, "otelcol_memory_limiter_admission_refused_total ");
  const char *rss = strstr(out, "\notelcol_process_memory_rss ");
  CHECK(rss && strtod(rss + strlen("\notelcol_process_memory_rss "), NULL) > 1e6);
  /* Once each, whatever the number of registrations. */
  const char *first = strstr(out, "# HELP otelcol_process_memory_rss");
  CHECK(first && !strstr(first + 1, "# HELP otelcol_process_memory_rss"));
  free(out);
  otc_metrics_reset();
}

struct fetched {
  long status;
  char content_type[128];
  char *body;
  size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  struct fetched *f = arg;
  char *nb = realloc(f->body, f->len + size * n + 1);
  if (!nb)
    return 0;
  memcpy(nb + f->len, p, size * n);
  f->len += size * n;
  nb[f->len] = '\0';
  f->body = nb;
  return size * n;
}

static int fetch(const char *url, struct fetched *f) {
  memset(f, 0, sizeof *f);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
  CURLcode rc = curl_easy_perform(c);
  char *ct = NULL;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if (ct)
    snprintf(f->content_type, sizeof f->content_type, "%s", ct);
  curl_easy_cleanup(c);
  return rc == CURLE_OK ? 0 : -1;
}

TEST(telemetry_server) {
  otc_metrics_reset();
  otc_counter_add(otc_counter_get("srv_hits", "Hits.", "k=\"v\""), 3);
  struct otc_metrics_render_opts opts = {.total_suffix = 1};
  CHECK_EQ_INT(otc_telemetry_server_start("127.0.0.1", 0, &opts), 0);
  int port = otc_telemetry_server_port();
  CHECK(port > 0);
  /* A second server is refused while one runs. */
  CHECK(otc_telemetry_server_start("127.0.0.1", 0, &opts) != 0);

  char url[128];
  struct fetched f;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
  CHECK_EQ_INT(fetch(url, &f), 0);
  CHECK_EQ_INT(f.status, 200);
  CHECK_CONTAINS(f.content_type, "text/plain; version=0.0.4");
  CHECK_CONTAINS(f.body, "# TYPE srv_hits_total counter\nsrv_hits_total{k=\"v\"} 3\n");
  free(f.body);

  snprintf(url, sizeof url, "http://127.0.0.1:%d/other", port);
  CHECK_EQ_INT(fetch(url, &f), 0);
  CHECK_EQ_INT(f.status, 404);
  free(f.body);

  otc_telemetry_server_stop();
  otc_telemetry_server_stop(); /* idempotent */
  CHECK_EQ_INT(otc_telemetry_server_port(), 0);
  otc_metrics_reset();
}

TEST(telemetry_server_bind_failure) {
  /* Hold a port, then ask the server for it. */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ_INT(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  CHECK_EQ_INT(listen(s, 1), 0);
  socklen_t alen = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &alen);
  int port = ntohs(a.sin_port);
  CHECK_EQ_INT(otc_telemetry_server_start("127.0.0.1", port, NULL), OTC_ERR_IO);
  CHECK_EQ_INT(otc_telemetry_server_port(), 0);
  close(s);
  CHECK_EQ_INT(otc_telemetry_server_start("127.0.0.1", 70000, NULL), OTC_ERR_CONFIG);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  RUN(render_exact);
  RUN(value_formatting);
  RUN(registration_idempotent);
  RUN(concurrency_exact);
  RUN(standard_instruments);
  RUN(process_instruments);
  RUN(telemetry_server);
  RUN(telemetry_server_bind_failure);
  curl_global_cleanup();
  return TEST_REPORT();
}
