/* The libcurl client of the HTTP exporters against a small libmicrohttpd server started by the
 * test on a loopback port: status classification, Retry-After in both forms, response reasons,
 * gzip, pass-through encodings, headers, timeouts, connection reuse, TLS; and the config keys. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/exporter_helper.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "test.h"

#define MS 1000000LL

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- the test server --- */

struct seen {
  char path[64];
  char content_type[128], content_encoding[64], user_agent[128];
  char scope_org[64], auth[64], empty[16], rw_version[32];
  bool has_empty, has_expect;
  uint8_t *body;
  size_t len;
};

struct server {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  struct seen last;
  int requests;
  atomic_int connections;
};

struct upload {
  uint8_t *data;
  size_t len, cap;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t cap) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             const char *retry_after) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (retry_after)
    MHD_add_response_header(r, "Retry-After", retry_after);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  struct server *s = cls;
  struct upload *u = *con_cls;
  (void)method;
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
  s->requests++;
  free(s->last.body);
  memset(&s->last, 0, sizeof s->last);
  snprintf(s->last.path, sizeof s->last.path, "%s", url);
  copy_header(c, "Content-Type", s->last.content_type, sizeof s->last.content_type);
  copy_header(c, "Content-Encoding", s->last.content_encoding, sizeof s->last.content_encoding);
  copy_header(c, "User-Agent", s->last.user_agent, sizeof s->last.user_agent);
  copy_header(c, "X-Scope-OrgID", s->last.scope_org, sizeof s->last.scope_org);
  copy_header(c, "Authorization", s->last.auth, sizeof s->last.auth);
  copy_header(c, "X-Prometheus-Remote-Write-Version", s->last.rw_version,
              sizeof s->last.rw_version);
  s->last.has_empty = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Empty") != NULL;
  s->last.has_expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect") != NULL;
  s->last.body = u->data;
  s->last.len = u->len;
  u->data = NULL;
  pthread_mutex_unlock(&s->mu);

  if (strcmp(url, "/503") == 0)
    return reply(c, 503, "unavailable", "2");
  if (strcmp(url, "/503date") == 0) {
    char date[64];
    time_t t = time(NULL) + 5;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return reply(c, 503, "", date);
  }
  if (strcmp(url, "/429") == 0)
    return reply(c, 429, "slow down", NULL);
  if (strcmp(url, "/502") == 0)
    return reply(c, 502, "", NULL);
  if (strcmp(url, "/504") == 0)
    return reply(c, 504, "", NULL);
  if (strcmp(url, "/500") == 0)
    return reply(c, 500, "internal", NULL);
  if (strcmp(url, "/400") == 0)
    return reply(c, 400,
                 "\n  entry too far behind, \x01oldest acceptable timestamp is: x\nsecond line",
                 NULL);
  if (strcmp(url, "/sleep") == 0) {
    usleep(600 * 1000);
    return reply(c, 200, "", NULL);
  }
  if (strcmp(url, "/big") == 0) {
    static char big[200 * 1024 + 1];
    memset(big, 'x', sizeof big - 1);
    return reply(c, 413, big, NULL);
  }
  return reply(c, 200, "{\"partialSuccess\":{}}", NULL);
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

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code) {
  struct server *s = cls;
  (void)c;
  (void)socket_context;
  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    atomic_fetch_add(&s->connections, 1);
}

static int server_start(struct server *s, const char *cert_pem, const char *key_pem) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
  if (cert_pem)
    s->d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                            &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_conn, s, MHD_OPTION_HTTPS_MEM_CERT,
                            cert_pem, MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_END);
  else
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                            notify_conn, s, MHD_OPTION_END);
  if (!s->d)
    return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  return s->port ? 0 : -1;
}

static void server_stop(struct server *s) {
  if (s->d)
    MHD_stop_daemon(s->d);
  free(s->last.body);
  pthread_mutex_destroy(&s->mu);
}

/* --- helpers --- */

static struct otc_cfg_node *load(const char *yaml, struct otc_cfg_err *err) {
  return otc_cfg_load_string(yaml, strlen(yaml), "test.yaml", err);
}

/* An exporter's config embedding the client's, as the real exporters do. */
struct exp_config {
  int64_t something_before;
  struct otc_http_client_config http;
  const char *tenant;
};

static int parse_exp(const struct otc_cfg_node *n, struct exp_config *out,
                     struct otc_cfg_err *err) {
  struct otc_cfg_field fields[OTC_HTTP_CLIENT_FIELDS + 3];
  size_t k = otc_http_client_fields(fields, offsetof(struct exp_config, http), "gzip");
  CHECK(k <= OTC_HTTP_CLIENT_FIELDS);
  fields[k++] = (struct otc_cfg_field){
      "tenant_id", OTC_CFGK_STRING, NULL, offsetof(struct exp_config, tenant), 0, 0};
  fields[k] = (struct otc_cfg_field){NULL, 0, NULL, 0, 0, 0};
  int rc = otc_cfg_apply(fields, n, out, "exp", err);
  if (rc == 0)
    rc = otc_http_client_validate(&out->http, n, err);
  return rc;
}

static struct otc_http_client_config plain_config(const char *compression) {
  struct otc_http_client_config c = {.timeout_ns = 5000 * MS, .compression = compression};
  return c;
}

static void post(struct otc_http_client *hc, int port, const char *path, const char *body,
                 struct otc_send_result *res) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, (const uint8_t *)body,
                       strlen(body), res, NULL, NULL);
}

/* --- tests --- */

TEST(config_fields_and_validation) {
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root =
      load("good:\n  endpoint: https://tempo:4318\n  timeout: 250ms\n  compression: none\n"
           "  headers:\n    X-Scope-OrgID: t1\n    X-Empty:\n  max_idle_conns: 10\n"
           "  tls:\n    insecure_skip_verify: true\n    min_version: \"1.3\"\n"
           "    server_name_override: x\n"
           "  tenant_id: acme\n"
           "defaults:\n  endpoint: http://loki:3100/loki/api/v1/push\n"
           "zstd:\n  endpoint: http://x\n  compression: zstd\n"
           "snappy:\n  endpoint: http://x\n  compression: snappy\n"
           "auth:\n  endpoint: http://x\n  auth:\n    authenticator: bearertokenauth\n"
           "ftp:\n  endpoint: ftp://x/y\n"
           "noendpoint:\n  timeout: 1s\n"
           "garbage:\n  endpoint: \"http://\"\n"
           "cafile:\n  endpoint: https://x\n  tls:\n    ca_file: /nonexistent/ca.pem\n"
           "tlsver:\n  endpoint: https://x\n  tls:\n    min_version: \"1.5\"\n"
           "certonly:\n  endpoint: https://x\n  tls:\n    cert_file: /etc/hostname\n"
           "tlsunknown:\n  endpoint: https://x\n  tls:\n    ca_fille: x\n"
           "badheader:\n  endpoint: http://x\n  headers:\n    X-A: \"a\\r\\nInjected: 1\"\n"
           "badname:\n  endpoint: http://x\n  headers:\n    \"X A\": b\n"
           "negtimeout:\n  endpoint: http://x\n  timeout: -1s\n",
           &err);
  CHECK(root != NULL);
  if (!root) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  struct exp_config c = {0};
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(parse_exp(otc_cfg_get(root, "good"), &c, &err), 0);
  CHECK_EQ_STR(c.http.endpoint, "https://tempo:4318");
  CHECK_EQ_INT(c.http.timeout_ns, 250 * MS);
  CHECK_EQ_STR(c.http.compression, "none");
  CHECK(c.http.headers != NULL && c.http.headers->n_children == 2);
  CHECK(c.http.tls != NULL);
  CHECK_EQ_STR(c.tenant, "acme");
  CHECK(!c.http.tls_insecure_skip_verify); /* validate does not write */
  CHECK_EQ_INT(otc_http_client_parse_tls(c.http.tls, &c.http, "exp", &err), 0);
  CHECK(c.http.tls_insecure_skip_verify);
  CHECK_EQ_STR(c.http.tls_min_version, "1.3");

  CHECK_EQ_INT(parse_exp(otc_cfg_get(root, "defaults"), &c, &err), 0);
  CHECK_EQ_INT(c.http.timeout_ns, 5000 * MS);
  CHECK_EQ_STR(c.http.compression, "gzip");
  CHECK(c.http.headers == NULL && c.http.tls == NULL && c.http.auth == NULL);
  CHECK_EQ_INT(otc_http_client_parse_tls(NULL, &c.http, "exp", &err), 0);
  CHECK(!c.http.tls_insecure_skip_verify && c.http.tls_ca_file == NULL);

  struct {
    const char *name, *msg;
  } bad[] = {
      {"zstd", "unsupported compression \"zstd\""},
      {"snappy", "unsupported compression \"snappy\""},
      {"auth", "auth is not supported by this exporter"},
      {"ftp", "unsupported scheme \"ftp\""},
      {"noendpoint", "endpoint must be set"},
      {"garbage", "not a valid URL"},
      {"cafile", "cannot read ca_file \"/nonexistent/ca.pem\""},
      {"tlsver", "unsupported TLS version \"1.5\""},
      {"certonly", "provide both certificate and key"},
      {"tlsunknown", "ca_fille"},
      {"badheader", "must not contain a line break"},
      {"badname", "not a valid header name"},
      {"negtimeout", "timeout"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(parse_exp(otc_cfg_get(root, bad[i].name), &c, &err), OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, bad[i].msg);
    CHECK_CONTAINS(err.msg, "test.yaml:");
  }
  otc_cfg_free(root);
}

TEST(status_classification) {
  struct server s;
  CHECK_EQ_INT(server_start(&s, NULL, NULL), 0);
  struct otc_http_client_config cfg = plain_config("none");
  struct otc_http_client *hc = otc_http_client_create(&cfg);
  CHECK(hc != NULL);
  struct otc_send_result res;

  post(hc, s.port, "/ok", "hello", &res);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.retry_after_ns, 0);

  post(hc, s.port, "/503", "x", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_RETRYABLE);
  CHECK_EQ_INT(res.retry_after_ns, 2000 * MS);
  CHECK_EQ_STR(res.reason, "HTTP 503: unavailable");

  post(hc, s.port, "/503date", "x", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_RETRYABLE);
  CHECK(res.retry_after_ns >= 3000 * MS && res.retry_after_ns <= 6000 * MS);
  CHECK_EQ_STR(res.reason, "HTTP 503");

  post(hc, s.port, "/429", "x", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_RETRYABLE);
  CHECK_EQ_INT(res.retry_after_ns, 0);
  CHECK_EQ_STR(res.reason, "HTTP 429: slow down");

  post(hc, s.port, "/502", "x", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_RETRYABLE);
  post(hc, s.port, "/504", "x", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_RETRYABLE);
  post(hc, s.port, "/500", "x", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_PERMANENT);

  uint8_t *body = NULL;
  size_t len = 0;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/400", s.port);
  otc_http_client_post(hc, url, "application/json", NULL, NULL, (const uint8_t *)"{}", 2, &res,
                       &body, &len);
  CHECK_EQ_INT(res.err, OTC_ERR_PERMANENT);
  CHECK_EQ_STR(res.reason, "HTTP 400: entry too far behind, ?oldest acceptable timestamp is: x");
  CHECK(body != NULL && len > 20 && memmem(body, len, "second line", 11) != NULL);
  free(body);

  /* A large body is read whole (the connection stays usable) but kept only up to 64 KiB. */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/big", s.port);
  otc_http_client_post(hc, url, "application/json", NULL, NULL, (const uint8_t *)"{}", 2, &res,
                       &body, &len);
  CHECK_EQ_INT(res.err, OTC_ERR_PERMANENT);
  CHECK_EQ_INT(len, 64 * 1024);
  CHECK(strlen(res.reason) < sizeof res.reason);
  CHECK(strncmp(res.reason, "HTTP 413: xxxx", 14) == 0);
  free(body);

  post(hc, s.port, "/ok", "again", &res);
  CHECK_EQ_INT(res.err, 0);
  /* Every request above went over one kept-alive connection. */
  CHECK_EQ_INT(s.requests, 10);
  CHECK_EQ_INT(atomic_load(&s.connections), 1);
  otc_http_client_destroy(hc);
  otc_http_client_destroy(NULL);
  server_stop(&s);
}

TEST(connection_refused_is_retryable) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  CHECK_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  int port = ntohs(sa.sin_port);
  close(fd); /* nothing listens there now */
  struct otc_http_client_config cfg = plain_config("gzip");
  struct otc_http_client *hc = otc_http_client_create(&cfg);
  struct otc_send_result res;
  uint64_t held0 = otc_mem_held();
  post(hc, port, "/v1/traces", "data", &res);
  CHECK_EQ_INT(res.err, OTC_ERR_IO);
  CHECK(otc_err_retryable(res.err));
  CHECK_CONTAINS(res.reason, "onnect");
  CHECK_EQ_INT(otc_mem_held(), held0); /* the gzip buffer's charge was released */
  otc_http_client_destroy(hc);
}

/* The gzip body gz (gzlen bytes) inflates to exactly want (n bytes). */
static void check_gunzips_to(const uint8_t *gz, size_t gzlen, const uint8_t *want, size_t n) {
  uint8_t *out = malloc(n + 16);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  CHECK_EQ_INT(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = (Bytef *)gz;
  zs.avail_in = (uInt)gzlen;
  zs.next_out = out;
  zs.avail_out = (uInt)(n + 16);
  CHECK_EQ_INT(inflate(&zs, Z_FINISH), Z_STREAM_END);
  CHECK_EQ_INT(zs.total_out, n);
  CHECK(memcmp(out, want, n) == 0);
  inflateEnd(&zs);
  free(out);
}

TEST(gzip_body_arrives_decompressible) {
  struct server s;
  CHECK_EQ_INT(server_start(&s, NULL, NULL), 0);
  struct otc_http_client_config cfg = plain_config("gzip");
  struct otc_http_client *hc = otc_http_client_create(&cfg);
  size_t n = 100000;
  uint8_t *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)("telemetry"[i % 9] + (i / 1000) % 3);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/logs", s.port);
  struct otc_send_result res;
  otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, data, n, &res, NULL, NULL);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_STR(s.last.content_encoding, "gzip");
  CHECK_EQ_STR(s.last.content_type, "application/x-protobuf");
  CHECK(s.last.len > 0 && s.last.len < n / 4);
  CHECK(s.last.len >= 2 && s.last.body[0] == 0x1f && s.last.body[1] == 0x8b);
  check_gunzips_to(s.last.body, s.last.len, data, n);
  otc_http_client_destroy(hc);

  /* Uncompressed, a body over 1 MiB goes out at once, without curl's Expect: 100-continue. */
  cfg = plain_config("none");
  hc = otc_http_client_create(&cfg);
  size_t big = 2 * 1024 * 1024;
  uint8_t *large = calloc(1, big);
  otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, large, big, &res, NULL, NULL);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(s.last.len, big);
  CHECK(!s.last.has_expect);
  CHECK_EQ_STR(s.last.content_encoding, "");
  free(large);
  free(data);
  otc_http_client_destroy(hc);
  server_stop(&s);
}

/* A body in pieces (a joined batch's parts) arrives as their concatenation: gzip'ed as one stream,
 * and uncompressed through curl's reader (big enough to need several reads, with an empty piece
 * on the way), with the right Content-Length and no Expect: 100-continue. */
TEST(body_in_pieces_arrives_whole) {
  struct server s;
  CHECK_EQ_INT(server_start(&s, NULL, NULL), 0);
  size_t n = 3 * 1024 * 1024;
  uint8_t *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)("telemetry"[i % 9] + (i / 1000) % 7);
  struct iovec iov[4] = {{data, 1000},
                         {data + 1000, 0},
                         {data + 1000, 2 * 1024 * 1024},
                         {data + 1000 + 2 * 1024 * 1024, n - 1000 - 2 * 1024 * 1024}};
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", s.port);
  struct otc_send_result res;

  struct otc_http_client_config cfg = plain_config("gzip");
  struct otc_http_client *hc = otc_http_client_create(&cfg);
  otc_http_client_postv(hc, url, "application/x-protobuf", NULL, NULL, iov, 4, &res, NULL, NULL);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_STR(s.last.content_encoding, "gzip");
  check_gunzips_to(s.last.body, s.last.len, data, n);
  otc_http_client_destroy(hc);

  cfg = plain_config("none");
  hc = otc_http_client_create(&cfg);
  for (int round = 0; round < 2; round++) {
    /* The second round reuses the connection and the curl handle. */
    otc_http_client_postv(hc, url, "application/x-protobuf", NULL, NULL, iov, 4, &res, NULL, NULL);
    CHECK_EQ_INT(res.err, 0);
    CHECK_EQ_INT(s.last.len, n);
    CHECK(s.last.len == n && memcmp(s.last.body, data, n) == 0);
    CHECK(!s.last.has_expect);
    CHECK_EQ_STR(s.last.content_encoding, "");
  }
  /* One buffer after pieces on the same handle: the reader is gone, the buffer is what is sent. */
  otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, data, 5000, &res, NULL, NULL);
  CHECK_EQ_INT(res.err, 0);
  CHECK(s.last.len == 5000 && memcmp(s.last.body, data, 5000) == 0);
  otc_http_client_destroy(hc);
  free(data);
  server_stop(&s);
}

TEST(pass_through_encoding_and_headers) {
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root =
      load("endpoint: http://127.0.0.1:1\nheaders:\n  X-Scope-OrgID: tenant-1\n"
           "  Authorization: Bearer abc\n  X-Empty: \"\"\n",
           &err);
  CHECK(root != NULL);
  if (!root)
    return;
  struct server s;
  CHECK_EQ_INT(server_start(&s, NULL, NULL), 0);
  struct exp_config c = {0};
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(parse_exp(root, &c, &err), 0);
  struct otc_http_client *hc = otc_http_client_create(&c.http);
  CHECK(hc != NULL);
  static const uint8_t snappy[] = {0x0b, 0x28, 'h', 'e', 'l', 'l', 'o',
                                   ' ',  'w',  'o', 'r', 'l', 'd'};
  const char *extra[] = {"X-Prometheus-Remote-Write-Version: 0.1.0", NULL};
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", s.port);
  struct otc_send_result res;
  otc_http_client_post(hc, url, "application/x-protobuf", "snappy", extra, snappy, sizeof snappy,
                       &res, NULL, NULL);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_STR(s.last.path, "/api/v1/write");
  CHECK_EQ_STR(s.last.content_encoding, "snappy"); /* not gzipped again */
  CHECK_EQ_INT(s.last.len, sizeof snappy);
  CHECK(s.last.body && memcmp(s.last.body, snappy, sizeof snappy) == 0);
  CHECK_EQ_STR(s.last.scope_org, "tenant-1");
  CHECK_EQ_STR(s.last.auth, "Bearer abc");
  CHECK(s.last.has_empty);
  CHECK(!s.last.has_expect);
  CHECK_EQ_STR(s.last.rw_version, "0.1.0");
  CHECK(strncmp(s.last.user_agent, "otelc-collector/", 16) == 0);

  /* The per-call headers do not stick to the next request. */
  otc_http_client_post(hc, url, "application/json", NULL, NULL, (const uint8_t *)"{}", 2, &res,
                       NULL, NULL);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_STR(s.last.rw_version, "");
  CHECK_EQ_STR(s.last.content_encoding, "gzip");
  CHECK_EQ_STR(s.last.content_type, "application/json");
  CHECK_EQ_STR(s.last.scope_org, "tenant-1");
  otc_http_client_destroy(hc);
  server_stop(&s);
  otc_cfg_free(root);
}

TEST(timeout_against_slow_server) {
  struct server s;
  CHECK_EQ_INT(server_start(&s, NULL, NULL), 0);
  struct otc_http_client_config cfg = plain_config("none");
  cfg.timeout_ns = 150 * MS;
  struct otc_http_client *hc = otc_http_client_create(&cfg);
  struct otc_send_result res;
  int64_t t0 = now_ns();
  post(hc, s.port, "/sleep", "x", &res);
  int64_t took = now_ns() - t0;
  CHECK_EQ_INT(res.err, OTC_ERR_IO);
  CHECK_CONTAINS(res.reason, "imeout");
  CHECK(took >= 140 * MS);
  CHECK(took < 500 * MS);
  /* The handle recovers: the next request works on a new connection. */
  post(hc, s.port, "/ok", "x", &res);
  CHECK_EQ_INT(res.err, 0);
  otc_http_client_destroy(hc);
  server_stop(&s);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = calloc(1, 65536);
  if (buf)
    fread(buf, 1, 65535, f);
  fclose(f);
  return buf;
}

TEST(tls_verify_ca_and_skip) {
  char dir[] = "/tmp/otc_tls_XXXXXX";
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
  char *cert_pem = read_all(cert), *key_pem = read_all(key);
  CHECK(cert_pem && key_pem);
  struct server s;
  if (cert_pem && key_pem && server_start(&s, cert_pem, key_pem) == 0) {
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/v1/traces", s.port);
    struct otc_send_result res;

    /* Unknown issuer: refused (and retried later: the certificate may get fixed). */
    struct otc_http_client_config cfg = plain_config("none");
    struct otc_http_client *hc = otc_http_client_create(&cfg);
    otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, (const uint8_t *)"a", 1,
                         &res, NULL, NULL);
    CHECK_EQ_INT(res.err, OTC_ERR_IO);
    otc_http_client_destroy(hc);

    cfg.tls_ca_file = cert;
    hc = otc_http_client_create(&cfg);
    otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, (const uint8_t *)"a", 1,
                         &res, NULL, NULL);
    CHECK_EQ_INT(res.err, 0);
    otc_http_client_destroy(hc);

    cfg.tls_ca_file = NULL;
    cfg.tls_insecure_skip_verify = true;
    hc = otc_http_client_create(&cfg);
    otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, (const uint8_t *)"a", 1,
                         &res, NULL, NULL);
    CHECK_EQ_INT(res.err, 0);
    otc_http_client_destroy(hc);

    /* The tls map from the config wins over the members, without parse_tls being called. */
    char yaml[512];
    snprintf(yaml, sizeof yaml, "endpoint: %s\ntls:\n  ca_file: %s\n  min_version: \"1.2\"\n", url,
             cert);
    struct otc_cfg_err err;
    struct otc_cfg_node *root = load(yaml, &err);
    struct exp_config c = {0};
    CHECK(root && parse_exp(root, &c, &err) == 0);
    if (root) {
      hc = otc_http_client_create(&c.http);
      otc_http_client_post(hc, url, "application/x-protobuf", NULL, NULL, (const uint8_t *)"a", 1,
                           &res, NULL, NULL);
      CHECK_EQ_INT(res.err, 0);
      CHECK_EQ_STR(s.last.content_encoding, "gzip");
      otc_http_client_destroy(hc);
      otc_cfg_free(root);
    }
    server_stop(&s);
  }
  free(cert_pem);
  free(key_pem);
  unlink(cert);
  unlink(key);
  rmdir(dir);
}

/* The client under the helper, end to end: 503 with Retry-After, then 200. */
struct flaky {
  struct otc_http_client *hc;
  char url_fail[128], url_ok[128];
  atomic_int calls;
};

static void flaky_send(void *exporter, unsigned worker, struct otc_batch *b,
                       struct otc_send_result *res) {
  struct flaky *f = exporter;
  (void)worker;
  int n = atomic_fetch_add(&f->calls, 1);
  otc_http_client_post(f->hc, n == 0 ? f->url_fail : f->url_ok, "application/x-protobuf", NULL,
                       NULL, b->data, b->len, res, NULL, NULL);
}

TEST(helper_with_client_end_to_end) {
  struct server s;
  CHECK_EQ_INT(server_start(&s, NULL, NULL), 0);
  struct otc_http_client_config cfg = plain_config("gzip");
  struct flaky f = {.hc = otc_http_client_create(&cfg)};
  snprintf(f.url_fail, sizeof f.url_fail, "http://127.0.0.1:%d/503", s.port);
  snprintf(f.url_ok, sizeof f.url_ok, "http://127.0.0.1:%d/v1/traces", s.port);
  struct otc_queue_config q = {.enabled = true, .num_consumers = 1, .queue_size = 4};
  struct otc_retry_config r = {.enabled = true,
                               .initial_interval_ns = 10 * MS,
                               .max_interval_ns = 100 * MS,
                               .max_elapsed_time_ns = 10000 * MS,
                               .multiplier = 1.5};
  struct otc_exporter_helper *h = otc_exporter_helper_create("e2e", &q, &r, flaky_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  int64_t t0 = now_ns();
  CHECK_EQ_INT(otc_exporter_helper_consume(
                   h, otc_batch_copy(OTC_SIGNAL_TRACES, "abcdef", 6, 2, false, NULL)),
               0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(atomic_load(&f.calls), 2);
  CHECK(now_ns() - t0 >= 2000 * MS); /* Retry-After: 2 */
  CHECK_EQ_STR(s.last.path, "/v1/traces");
  CHECK_EQ_INT(
      otc_counter_value(otc_counter_get("otelcol_exporter_sent_spans", "", "exporter=\"e2e\"")), 2);
  otc_exporter_helper_destroy(h);
  otc_http_client_destroy(f.hc);
  server_stop(&s);
}

int main(void) {
  otc_log_set_level(OTC_LOG_WARN);
  RUN(config_fields_and_validation);
  RUN(status_classification);
  RUN(connection_refused_is_retryable);
  RUN(gzip_body_arrives_decompressible);
  RUN(body_in_pieces_arrives_whole);
  RUN(pass_through_encoding_and_headers);
  RUN(timeout_against_slow_server);
  RUN(tls_verify_ca_and_skip);
  RUN(helper_with_client_end_to_end);
  return TEST_REPORT();
}
