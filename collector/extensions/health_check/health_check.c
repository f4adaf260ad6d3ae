/* The health_check extension (otelcol-contrib's `health_check`, formerly `healthcheck`): an HTTP
 * endpoint for orchestrators' probes. GET on the configured path answers 200 with
 * {"status":"Server available","upSince":...,"uptime":...} once the service has started every
 * component, 503 with "Server not available" before that and while shutting down; other paths
 * are 404. Served by libmicrohttpd on one internal thread. */
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "core/net.h"
#include "core/component.h"
#include "core/log.h"

struct hc_config {
  const char *endpoint;
  const char *path;
  const struct otc_cfg_node *tls;
};

static const struct otc_cfg_field hc_fields[] = {
    /* otelcol's default is localhost:13133; ours listens on every interface, for containers. */
    {"endpoint", OTC_CFGK_STRING, "0.0.0.0:13133", offsetof(struct hc_config, endpoint), 0, 0},
    {"path", OTC_CFGK_STRING, "/", offsetof(struct hc_config, path), 0, 0},
    {"tls", OTC_CFGK_NODE, NULL, offsetof(struct hc_config, tls), 0, 0},
    {"check_collector_pipeline", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"response_body", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct health_check {
  char *id;
  char *host; /* NULL: every interface */
  int port;
  char *path;
  struct MHD_Daemon *daemon;
  struct timespec up_since;   /* CLOCK_REALTIME at start */
  struct timespec started_at; /* CLOCK_MONOTONIC at start */
};

/* Splits the endpoint into a malloc'd host (NULL for an empty host: every interface) and a port.
 * Returns 0 or -1 when malformed. */
static int split_endpoint(const char *ep, char **host, int *port) {
  char h[256];
  *host = NULL;
  if (otc_parse_hostport(ep, h, sizeof h, port) != 0)
    return -1;
  if (h[0] && !(*host = strdup(h)))
    return -1;
  return 0;
}

/* Go's time.Duration.String(): "1h2m3.5s", "1m0s", "2.5s", "150ms", "3µs", "0s". */
static void go_duration(int64_t ns, char *buf, size_t cap) {
  uint64_t u = ns < 0 ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
  const char *sign = ns < 0 ? "-" : "";
  char frac[16] = "";
  if (u == 0) {
    snprintf(buf, cap, "0s");
    return;
  }
  if (u < 1000000000u) {
    uint64_t div = u < 1000u ? 1 : u < 1000000u ? 1000u : 1000000u;
    const char *unit = div == 1 ? "ns" : div == 1000u ? "\xc2\xb5s" : "ms";
    int digits = div == 1 ? 0 : div == 1000u ? 3 : 6;
    if (digits) {
      snprintf(frac, sizeof frac, ".%0*llu", digits, (unsigned long long)(u % div));
      size_t l = strlen(frac);
      while (l > 1 && frac[l - 1] == '0')
        frac[--l] = '\0';
      if (l == 1)
        frac[0] = '\0';
    }
    snprintf(buf, cap, "%s%llu%s%s", sign, (unsigned long long)(u / div), frac, unit);
    return;
  }
  uint64_t secs = u / 1000000000u, rest = u % 1000000000u;
  if (rest) {
    snprintf(frac, sizeof frac, ".%09llu", (unsigned long long)rest);
    size_t l = strlen(frac);
    while (frac[l - 1] == '0')
      frac[--l] = '\0';
  }
  uint64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
  if (h)
    snprintf(buf, cap, "%s%lluh%llum%llu%ss", sign, (unsigned long long)h, (unsigned long long)m,
             (unsigned long long)s, frac);
  else if (m)
    snprintf(buf, cap, "%s%llum%llu%ss", sign, (unsigned long long)m, (unsigned long long)s, frac);
  else
    snprintf(buf, cap, "%s%llu%ss", sign, (unsigned long long)s, frac);
}

/* RFC 3339 with nanoseconds and no trailing zeros, in UTC: Go's JSON form of a time.Time. */
static void rfc3339(struct timespec ts, char *buf, size_t cap) {
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  if (ts.tv_nsec) {
    char frac[16];
    snprintf(frac, sizeof frac, ".%09ld", ts.tv_nsec);
    size_t l = strlen(frac);
    while (frac[l - 1] == '0')
      frac[--l] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "%s", frac);
  }
  snprintf(buf + n, cap - n, "Z");
}

/* Routes libmicrohttpd's own messages (a bind failure's reason) to the log. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  struct health_check *hc = cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  otc_warn(hc->id, "%s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  enum MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result hc_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
  struct health_check *hc = cls;
  (void)version;
  (void)upload_data;
  (void)con_cls;
  *upload_data_size = 0;
  bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  if (!get || strcmp(url, hc->path) != 0) {
    static char not_found[] = "404 page not found\n";
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", not_found,
                 sizeof not_found - 1, MHD_RESPMEM_PERSISTENT);
  }
  bool ready = otc_service_ready();
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t up_ns = (int64_t)(now.tv_sec - hc->started_at.tv_sec) * 1000000000 +
                  (now.tv_nsec - hc->started_at.tv_nsec);
  char since[64], uptime[64], body[256];
  rfc3339(hc->up_since, since, sizeof since);
  go_duration(up_ns, uptime, sizeof uptime);
  int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"upSince\":\"%s\",\"uptime\":\"%s\"}",
                   ready ? "Server available" : "Server not available", since, uptime);
  return reply(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body,
               (size_t)n, MHD_RESPMEM_MUST_COPY);
}

static void hc_destroy(void *ctx);

static void *hc_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                       struct otc_cfg_err *err) {
  struct health_check *hc = NULL;
  struct hc_config c = {0};
  if (otc_cfg_apply(hc_fields, cfg, &c, args->id, err) != 0)
    goto fail;
  if (c.tls && c.tls->type != OTC_CFG_NULL) {
    otc_cfg_error(err, c.tls, "tls is not supported yet by health_check");
    goto fail;
  }
  if (!c.path || c.path[0] != '/') {
    otc_cfg_error(err, otc_cfg_get(cfg, "path"), "path must start with \"/\"");
    goto fail;
  }
  hc = calloc(1, sizeof *hc);
  if (!hc || !(hc->id = strdup(args->id ? args->id : "health_check")) ||
      !(hc->path = strdup(c.path))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  if (split_endpoint(c.endpoint, &hc->host, &hc->port) != 0) {
    otc_cfg_error(err, otc_cfg_get(cfg, "endpoint"), "invalid endpoint \"%s\" (want host:port)",
                  c.endpoint);
    goto fail;
  }
  return hc;
fail:
  hc_destroy(hc);
  return NULL;
}

static int hc_start(void *ctx) {
  struct health_check *hc = ctx;
  int rc = OTC_ERR_IO;
  struct addrinfo *ai = NULL;
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  char port[16];
  snprintf(port, sizeof port, "%d", hc->port);
  int gai = getaddrinfo(hc->host, port, &hints, &ai);
  if (gai != 0) {
    otc_error(hc->id, "cannot resolve %s: %s", hc->host ? hc->host : "", gai_strerror(gai));
    goto cleanup;
  }
  clock_gettime(CLOCK_REALTIME, &hc->up_since);
  clock_gettime(CLOCK_MONOTONIC, &hc->started_at);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  hc->daemon = MHD_start_daemon(flags, (uint16_t)hc->port, NULL, NULL, hc_handle, hc,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, hc, MHD_OPTION_SOCK_ADDR,
                                ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_END);
  if (!hc->daemon) {
    otc_error(hc->id, "cannot listen on %s:%d", hc->host ? hc->host : "", hc->port);
    goto cleanup;
  }
  otc_info(hc->id, "health check listening on %s:%d%s", hc->host ? hc->host : "", hc->port,
           hc->path);
  rc = 0;
cleanup:
  if (ai)
    freeaddrinfo(ai);
  return rc;
}

static int hc_shutdown(void *ctx) {
  struct health_check *hc = ctx;
  if (hc && hc->daemon) {
    MHD_stop_daemon(hc->daemon);
    hc->daemon = NULL;
  }
  return 0;
}

static void hc_destroy(void *ctx) {
  struct health_check *hc = ctx;
  if (!hc)
    return;
  hc_shutdown(hc);
  free(hc->id);
  free(hc->host);
  free(hc->path);
  free(hc);
}

static const char *const hc_aliases[] = {"healthcheck", NULL};

const struct otc_component_ops otc_extension_health_check = {
    .type = "health_check",
    .aliases = hc_aliases,
    .kind = OTC_KIND_EXTENSION,
    .signals = 0,
    .mutates = false,
    .create = hc_create,
    .start = hc_start,
    .consume = NULL,
    .shutdown = hc_shutdown,
    .destroy = hc_destroy,
};
