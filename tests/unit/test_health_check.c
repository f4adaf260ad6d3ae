/* The health_check extension: config errors, 503 before the service is ready, 200 once a real
 * service (otlp on a loopback port → nop) has started, 404 elsewhere, and a bind failure. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/component.h"
#include "core/errors.h"
#include "core/metrics.h"
#include "core/service.h"
#include "test.h"

extern const struct otc_component_ops otc_extension_health_check;

/* A loopback port that was free a moment ago. */
static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(s, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
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

static int fetch(int port, const char *path, struct fetched *f) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
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

static void *make(const char *yaml, struct otc_cfg_node **root, char *msg) {
  struct otc_cfg_err err = {{0}};
  msg[0] = '\0';
  *root = otc_cfg_load_string(yaml, strlen(yaml), "hc.yaml", &err);
  if (!*root) {
    snprintf(msg, 512, "load: %.400s", err.msg);
    return NULL;
  }
  struct otc_create_args args = {.id = "health_check", .root = *root};
  void *ctx = otc_extension_health_check.create(&args, *root, &err);
  if (!ctx)
    snprintf(msg, 512, "%s", err.msg);
  return ctx;
}

TEST(config_errors) {
  char msg[512];
  struct otc_cfg_node *root;
  CHECK(make("endpoint: 127.0.0.1:1\ntls:\n  cert_file: x.pem\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "hc.yaml:2:1: tls:");
  CHECK_CONTAINS(msg, "tls is not supported yet");
  otc_cfg_free(root);
  CHECK(make("endpoint: nocolon\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "invalid endpoint");
  otc_cfg_free(root);
  CHECK(make("endpoint: 127.0.0.1:99999\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "invalid endpoint");
  otc_cfg_free(root);
  CHECK(make("port: 13133\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "port");
  otc_cfg_free(root);
  /* Known otelcol keys we do not implement are accepted with a warning. */
  void *hc = make("check_collector_pipeline:\n  enabled: false\n", &root, msg);
  CHECK(hc != NULL);
  otc_extension_health_check.destroy(hc);
  otc_cfg_free(root);
  otc_extension_health_check.destroy(NULL);
  CHECK(otc_component_find(OTC_KIND_EXTENSION, "healthcheck") == &otc_extension_health_check);
}

TEST(not_ready_and_not_found) {
  char yaml[128], msg[512];
  int port = free_port();
  snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\npath: /health\n", port);
  struct otc_cfg_node *root;
  void *hc = make(yaml, &root, msg);
  CHECK(hc != NULL);
  if (!hc)
    return;
  CHECK_EQ_INT(otc_extension_health_check.start(hc), 0);
  CHECK(!otc_service_ready());
  struct fetched f;
  CHECK_EQ_INT(fetch(port, "/health", &f), 0);
  CHECK_EQ_INT(f.status, 503);
  CHECK_CONTAINS(f.content_type, "application/json");
  json_error_t jerr;
  json_t *j = json_loads(f.body ? f.body : "", 0, &jerr);
  CHECK(j != NULL);
  CHECK_EQ_STR(json_string_value(json_object_get(j, "status")), "Server not available");
  const char *since = json_string_value(json_object_get(j, "upSince"));
  CHECK(since && strlen(since) >= 20 && since[4] == '-' && since[10] == 'T' &&
        since[strlen(since) - 1] == 'Z');
  json_decref(j);
  free(f.body);

  CHECK_EQ_INT(fetch(port, "/", &f), 0);
  CHECK_EQ_INT(f.status, 404);
  free(f.body);

  /* A second instance cannot take the same port. */
  struct otc_cfg_node *root2;
  void *hc2 = make(yaml, &root2, msg);
  CHECK(hc2 != NULL);
  CHECK_EQ_INT(otc_extension_health_check.start(hc2), OTC_ERR_IO);
  otc_extension_health_check.destroy(hc2);
  otc_cfg_free(root2);

  CHECK_EQ_INT(otc_extension_health_check.shutdown(hc), 0);
  CHECK_EQ_INT(otc_extension_health_check.shutdown(hc), 0);
  CHECK(fetch(port, "/health", &f) != 0); /* nobody listens any more */
  free(f.body);
  otc_extension_health_check.destroy(hc);
  otc_cfg_free(root);
}

TEST(ready_with_a_running_service) {
  int port = free_port();
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n"
           "exporters:\n  nop:\n"
           "extensions:\n  healthcheck:\n    endpoint: 127.0.0.1:%d\n"
           "service:\n  extensions: [healthcheck]\n"
           "  telemetry:\n    metrics:\n      level: none\n"
           "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nop]\n",
           port);
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = otc_cfg_load_string(yaml, strlen(yaml), "svc.yaml", &err);
  CHECK(root != NULL);
  struct otc_service *svc = root ? otc_service_create(root, &err) : NULL;
  CHECK(svc != NULL);
  if (!svc) {
    fprintf(stderr, "%s\n", err.msg);
    otc_cfg_free(root);
    return;
  }
  CHECK_EQ_INT(otc_service_start(svc), 0);
  CHECK(otc_service_ready());
  struct fetched f;
  CHECK_EQ_INT(fetch(port, "/", &f), 0);
  CHECK_EQ_INT(f.status, 200);
  json_error_t jerr;
  json_t *j = json_loads(f.body ? f.body : "", 0, &jerr);
  CHECK(j != NULL);
  CHECK_EQ_STR(json_string_value(json_object_get(j, "status")), "Server available");
  const char *uptime = json_string_value(json_object_get(j, "uptime"));
  /* A Go duration: digits then a unit, e.g. "1.234ms" or "2.5s". */
  CHECK(uptime && uptime[0] >= '0' && uptime[0] <= '9' && uptime[strlen(uptime) - 1] == 's');
  json_decref(j);
  free(f.body);
  otc_service_shutdown(svc);
  otc_service_destroy(svc);
  otc_cfg_free(root);
  otc_metrics_reset();
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  RUN(config_errors);
  RUN(not_ready_and_not_found);
  RUN(ready_with_a_running_service);
  curl_global_cleanup();
  return TEST_REPORT();
}
