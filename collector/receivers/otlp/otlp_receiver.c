/* The otlp receiver's shared part: its configuration (otelcol's receivers.otlp layout), the
 * component operations, and the export path both transports use: validate the wire bytes, drop
 * invalid items, charge and build the batch, hand it to the signal's pipeline and count the outcome
 * in the otelcol_receiver_* self-metrics. */
#include "receivers/otlp/otlp_receiver.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "core/net.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
#include "extensions/bearertokenauth/bearertokenauth.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define DEFAULT_MAX_BODY (20u * 1024u * 1024u)

/* ---- configuration ---- */

struct top_read {
  const struct otc_cfg_node *protocols;
};

static const struct otc_cfg_field top_fields[] = {
    {"protocols", OTC_CFGK_NODE, NULL, offsetof(struct top_read, protocols), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct protocols_read {
  const struct otc_cfg_node *grpc;
  const struct otc_cfg_node *http;
};

static const struct otc_cfg_field protocols_fields[] = {
    {"grpc", OTC_CFGK_NODE, NULL, offsetof(struct protocols_read, grpc), 0, 0},
    {"http", OTC_CFGK_NODE, NULL, offsetof(struct protocols_read, http), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

/* The keys that would change who may connect or how: accepting them and serving plaintext to
 * anyone would be unsafe, so they are errors until implemented. */
struct security_read {
  const struct otc_cfg_node *tls;
  const struct otc_cfg_node *auth;
  const struct otc_cfg_node *middlewares;
};

struct grpc_read {
  struct otlp_grpc_config c;
  struct security_read sec;
};

#define GRPC_OFF(m) offsetof(struct grpc_read, m)
static const struct otc_cfg_field grpc_fields[] = {
    {"endpoint", OTC_CFGK_STRING, "0.0.0.0:4317", GRPC_OFF(c.endpoint), 0, 0},
    /* gRPC core takes the limit as an int of bytes, hence the upper bound. */
    {"max_recv_msg_size_mib", OTC_CFGK_INT, "4", GRPC_OFF(c.max_recv_msg_size_mib), 1, 2047},
    {"max_concurrent_streams", OTC_CFGK_INT, "0", GRPC_OFF(c.max_concurrent_streams), 0,
     4294967295.0},
    {"transport", OTC_CFGK_STRING, "tcp", GRPC_OFF(c.transport), 0, 0},
    {"tls", OTC_CFGK_NODE, NULL, GRPC_OFF(sec.tls), 0, 0},
    {"auth", OTC_CFGK_NODE, NULL, GRPC_OFF(sec.auth), 0, 0},
    {"middlewares", OTC_CFGK_NODE, NULL, GRPC_OFF(sec.middlewares), 0, 0},
    {"read_buffer_size", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"write_buffer_size", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"keepalive", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"include_metadata", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct http_read {
  struct otlp_http_config c;
  struct security_read sec;
  const struct otc_cfg_node *cors;
};

#define HTTP_OFF(m) offsetof(struct http_read, m)
static const struct otc_cfg_field http_fields[] = {
    {"endpoint", OTC_CFGK_STRING, "0.0.0.0:4318", HTTP_OFF(c.endpoint), 0, 0},
    {"traces_url_path", OTC_CFGK_STRING, "/v1/traces", HTTP_OFF(c.traces_url_path), 0, 0},
    {"metrics_url_path", OTC_CFGK_STRING, "/v1/metrics", HTTP_OFF(c.metrics_url_path), 0, 0},
    {"logs_url_path", OTC_CFGK_STRING, "/v1/logs", HTTP_OFF(c.logs_url_path), 0, 0},
    {"max_request_body_size", OTC_CFGK_SIZE, "20971520", HTTP_OFF(c.max_request_body_size), 0, 0},
    {"cors", OTC_CFGK_NODE, NULL, HTTP_OFF(cors), 0, 0},
    {"tls", OTC_CFGK_NODE, NULL, HTTP_OFF(sec.tls), 0, 0},
    {"auth", OTC_CFGK_NODE, NULL, HTTP_OFF(sec.auth), 0, 0},
    {"middlewares", OTC_CFGK_NODE, NULL, HTTP_OFF(sec.middlewares), 0, 0},
    {"include_metadata", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"compression_algorithms", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"read_timeout", OTC_CFGK_DURATION, "0", HTTP_OFF(c.read_timeout_ns), 0, 0},
    {"read_header_timeout", OTC_CFGK_DURATION, "1m", HTTP_OFF(c.read_header_timeout_ns), 0, 0},
    {"write_timeout", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"idle_timeout", OTC_CFGK_DURATION, "1m", HTTP_OFF(c.idle_timeout_ns), 0, 0},
    {"max_connections", OTC_CFGK_INT, "1024", HTTP_OFF(c.max_connections), 2, 1000000},
    {"response_headers", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"keep_alives_enabled", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

#define CORS_OFF(m) offsetof(struct otlp_http_config, m)
static const struct otc_cfg_field cors_fields[] = {
    {"allowed_origins", OTC_CFGK_STRLIST, NULL, CORS_OFF(cors_allowed_origins), 0, 0},
    {"allowed_headers", OTC_CFGK_STRLIST, NULL, CORS_OFF(cors_allowed_headers), 0, 0},
    {"max_age", OTC_CFGK_INT, "0", CORS_OFF(cors_max_age), 0, 2147483647.0},
    {NULL, 0, NULL, 0, 0, 0},
};

/* A key written with no value (`tls:`) configures nothing, as in otelcol. */
static bool configured(const struct otc_cfg_node *n) {
  return n && n->type != OTC_CFG_NULL;
}

/* ---- tls and auth ---- */

/* PEM files larger than this are not certificates or keys. */
#define MAX_PEM_BYTES (1024 * 1024)

struct tls_read {
  struct otlp_tls_config c;
  const struct otc_cfg_node *ca_file;
  const struct otc_cfg_node *pem[3]; /* ca_pem, cert_pem, key_pem */
};

#define TLS_OFF(m) offsetof(struct tls_read, m)
static const struct otc_cfg_field tls_fields[] = {
    {"cert_file", OTC_CFGK_STRING, NULL, TLS_OFF(c.cert_file), 0, 0},
    {"key_file", OTC_CFGK_STRING, NULL, TLS_OFF(c.key_file), 0, 0},
    {"client_ca_file", OTC_CFGK_STRING, NULL, TLS_OFF(c.client_ca_file), 0, 0},
    {"min_version", OTC_CFGK_STRING, "1.2", TLS_OFF(c.min_version), 0, 0},
    {"max_version", OTC_CFGK_STRING, NULL, TLS_OFF(c.max_version), 0, 0},
    {"ca_file", OTC_CFGK_NODE, NULL, TLS_OFF(ca_file), 0, 0},
    {"ca_pem", OTC_CFGK_NODE, NULL, TLS_OFF(pem[0]), 0, 0},
    {"cert_pem", OTC_CFGK_NODE, NULL, TLS_OFF(pem[1]), 0, 0},
    {"key_pem", OTC_CFGK_NODE, NULL, TLS_OFF(pem[2]), 0, 0},
    {"reload_interval", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"client_ca_file_reload", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"cipher_suites", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"curve_preferences", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"include_system_ca_certs_pool", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};
#undef TLS_OFF

/* "1.0".."1.3" as 10..13; -1 for anything else. */
static int tls_version_number(const char *v) {
  if (!v || strlen(v) != 3 || v[0] != '1' || v[1] != '.' || v[2] < '0' || v[2] > '3')
    return -1;
  return 10 + (v[2] - '0');
}

int otlp_receiver__tls_version(const char *v, int def) {
  int n = tls_version_number(v);
  return n < 0 ? def : n;
}

/* Reads a PEM file whole (bounded). Returns a malloc'd NUL-terminated text, or NULL with err
 * filled at node at. */
static char *read_pem(const char *path, const char *key, const struct otc_cfg_node *at,
                      struct otc_cfg_err *err) {
  char *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    otc_cfg_error(err, at, "cannot read %s \"%s\": %s", key, path, strerror(errno));
    return NULL;
  }
  buf = malloc(MAX_PEM_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MAX_PEM_BYTES + 1, f) : 0;
  if (!buf || ferror(f) || n == 0 || n > MAX_PEM_BYTES) {
    otc_cfg_error(err, at, "cannot read %s \"%s\": %s", key, path,
                  !buf     ? "out of memory"
                  : n == 0 ? "empty or unreadable"
                           : "larger than 1 MiB");
    free(buf);
    buf = NULL;
  } else {
    buf[n] = '\0';
  }
  fclose(f);
  return buf;
}

void otlp_receiver__tls_free(struct otlp_tls_config *t) {
  free(t->cert_pem);
  free(t->key_pem);
  free(t->client_ca_pem);
  t->cert_pem = t->key_pem = t->client_ca_pem = NULL;
}

/* Reads protocols.<proto>.tls into out and loads its files: the certificate must parse and match
 * its key, the client CA must hold at least one certificate (GnuTLS checks both here, before any
 * port is bound, so that `validate` reports them with the file names). */
static int read_tls(const struct otc_cfg_node *n, const char *proto, const char *component,
                    struct otlp_tls_config *out, struct otc_cfg_err *err) {
  struct tls_read t;
  memset(&t, 0, sizeof t);
  int rc = otc_cfg_apply(tls_fields, n, &t, component, err);
  if (rc != 0)
    return rc;
  static const char *const pem_keys[3] = {"ca_pem", "cert_pem", "key_pem"};
  for (int i = 0; i < 3; i++)
    if (configured(t.pem[i]))
      return otc_cfg_error(err, t.pem[i],
                           "protocols.%s.tls.%s: inline PEM is not supported, use the *_file keys",
                           proto, pem_keys[i]);
  if (configured(t.ca_file))
    otc_warn(component,
             "protocols.%s.tls.ca_file is not used by a server (client_ca_file requires and "
             "verifies client certificates)",
             proto);
  const struct otc_cfg_node *cert_at = otc_cfg_get(n, "cert_file");
  const struct otc_cfg_node *key_at = otc_cfg_get(n, "key_file");
  const struct otc_cfg_node *ca_at = otc_cfg_get(n, "client_ca_file");
  if (!t.c.cert_file || !*t.c.cert_file || !t.c.key_file || !*t.c.key_file)
    return otc_cfg_error(err,
                         cert_at  ? cert_at
                         : key_at ? key_at
                                  : n,
                         "protocols.%s.tls: a server needs both cert_file and key_file", proto);
  int minv = tls_version_number(t.c.min_version);
  int maxv = t.c.max_version && *t.c.max_version ? tls_version_number(t.c.max_version) : 13;
  if (minv < 0)
    return otc_cfg_error(err, otc_cfg_get(n, "min_version"),
                         "protocols.%s.tls.min_version: unsupported TLS version \"%s\" (one of "
                         "1.0, 1.1, 1.2, 1.3)",
                         proto, t.c.min_version);
  if (maxv < 0)
    return otc_cfg_error(err, otc_cfg_get(n, "max_version"),
                         "protocols.%s.tls.max_version: unsupported TLS version \"%s\" (one of "
                         "1.0, 1.1, 1.2, 1.3)",
                         proto, t.c.max_version);
  if (strcmp(proto, "grpc") == 0 && maxv < 12)
    return otc_cfg_error(err, otc_cfg_get(n, "max_version"),
                         "protocols.grpc.tls.max_version: gRPC serves TLS 1.2 and 1.3 only");
  if (maxv < minv)
    return otc_cfg_error(err, otc_cfg_get(n, "max_version"),
                         "protocols.%s.tls: max_version %s is below min_version %s", proto,
                         t.c.max_version, t.c.min_version);
  rc = OTC_ERR_CONFIG;
  gnutls_certificate_credentials_t cred = NULL;
  if (!(t.c.cert_pem = read_pem(t.c.cert_file, "cert_file", cert_at, err)) ||
      !(t.c.key_pem = read_pem(t.c.key_file, "key_file", key_at, err)))
    goto cleanup;
  if (t.c.client_ca_file && *t.c.client_ca_file &&
      !(t.c.client_ca_pem = read_pem(t.c.client_ca_file, "client_ca_file", ca_at, err)))
    goto cleanup;
  if (gnutls_certificate_allocate_credentials(&cred) < 0) {
    otc_cfg_error(err, n, "out of memory");
    cred = NULL;
    goto cleanup;
  }
  gnutls_datum_t cert = {(unsigned char *)t.c.cert_pem, (unsigned)strlen(t.c.cert_pem)};
  gnutls_datum_t key = {(unsigned char *)t.c.key_pem, (unsigned)strlen(t.c.key_pem)};
  int g = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
  if (g < 0) {
    otc_cfg_error(err, cert_at, "protocols.%s.tls: cert_file \"%s\" and key_file \"%s\": %s", proto,
                  t.c.cert_file, t.c.key_file, gnutls_strerror(g));
    goto cleanup;
  }
  if (t.c.client_ca_pem) {
    gnutls_datum_t ca = {(unsigned char *)t.c.client_ca_pem, (unsigned)strlen(t.c.client_ca_pem)};
    g = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
    if (g <= 0) {
      otc_cfg_error(err, ca_at, "protocols.%s.tls: client_ca_file \"%s\": %s", proto,
                    t.c.client_ca_file, g < 0 ? gnutls_strerror(g) : "no certificate in it");
      goto cleanup;
    }
  }
  t.c.enabled = true;
  *out = t.c;
  memset(&t.c, 0, sizeof t.c); /* the PEM texts now belong to out */
  rc = 0;
cleanup:
  if (cred)
    gnutls_certificate_free_credentials(cred);
  otlp_receiver__tls_free(&t.c);
  return rc;
}

/* Reads tls and auth into out_tls and out_auth; middlewares stay an error until implemented. */
static int read_security(const struct otc_create_args *args, const struct security_read *sec,
                         const char *proto, const char *component, struct otlp_tls_config *out_tls,
                         struct otc_bearertokenauth **out_auth, struct otc_cfg_err *err) {
  int rc;
  char what[64];
  if (configured(sec->middlewares))
    return otc_cfg_error(err, sec->middlewares,
                         "protocols.%s.middlewares: middlewares are not supported yet", proto);
  snprintf(what, sizeof what, "protocols.%s.auth", proto);
  if ((rc = otc_auth_resolve(args, sec->auth, what, component, out_auth, err)) != 0)
    return rc;
  if (configured(sec->tls) && (rc = read_tls(sec->tls, proto, component, out_tls, err)) != 0)
    return rc;
  return 0;
}

static int check_endpoint(const char *endpoint, const struct otc_cfg_node *where, const char *proto,
                          struct otc_cfg_err *err) {
  char host[256];
  int port;
  if (otc_parse_hostport(endpoint, host, sizeof host, &port) != 0)
    return otc_cfg_error(err, where,
                         "protocols.%s.endpoint: \"%s\" is not host:port (IPv6 hosts in brackets)",
                         proto, endpoint ? endpoint : "");
  return 0;
}

static int read_grpc(struct otlp_receiver *r, const struct otc_create_args *args,
                     const struct otc_cfg_node *n, const char *component, struct otc_cfg_err *err) {
  struct grpc_read g;
  memset(&g, 0, sizeof g);
  int rc = otc_cfg_apply(grpc_fields, n, &g, component, err);
  if (rc != 0)
    return rc;
  if (!g.c.transport || strcmp(g.c.transport, "tcp") != 0)
    return otc_cfg_error(err, otc_cfg_get(n, "transport"),
                         "protocols.grpc.transport: only \"tcp\" is supported");
  rc = check_endpoint(g.c.endpoint, otc_cfg_get(n, "endpoint") ? otc_cfg_get(n, "endpoint") : n,
                      "grpc", err);
  if (rc != 0)
    return rc;
  /* Last, so that no later check has to free the PEM texts it loads. */
  rc = read_security(args, &g.sec, "grpc", component, &g.c.tls, &g.c.auth, err);
  if (rc != 0)
    return rc;
  r->grpc = g.c;
  r->grpc.enabled = true;
  return 0;
}

static int check_url_path(const char *path, const struct otc_cfg_node *n, const char *key,
                          struct otc_cfg_err *err) {
  if (!path || path[0] != '/')
    return otc_cfg_error(err, otc_cfg_get(n, key) ? otc_cfg_get(n, key) : n,
                         "protocols.http.%s: the path must start with \"/\"", key);
  return 0;
}

static int read_http(struct otlp_receiver *r, const struct otc_create_args *args,
                     const struct otc_cfg_node *n, const char *component, struct otc_cfg_err *err) {
  struct http_read h;
  memset(&h, 0, sizeof h);
  int rc = otc_cfg_apply(http_fields, n, &h, component, err);
  if (rc != 0)
    return rc;
  rc = check_endpoint(h.c.endpoint, otc_cfg_get(n, "endpoint") ? otc_cfg_get(n, "endpoint") : n,
                      "http", err);
  if (rc != 0)
    return rc;
  if ((rc = check_url_path(h.c.traces_url_path, n, "traces_url_path", err)) != 0 ||
      (rc = check_url_path(h.c.metrics_url_path, n, "metrics_url_path", err)) != 0 ||
      (rc = check_url_path(h.c.logs_url_path, n, "logs_url_path", err)) != 0)
    return rc;
  /* otelcol's confighttp treats a limit of 0 as "use the default". */
  if (h.c.max_request_body_size == 0)
    h.c.max_request_body_size = DEFAULT_MAX_BODY;
  if (configured(h.cors)) {
    rc = otc_cfg_apply(cors_fields, h.cors, &h.c, component, err);
    if (rc != 0)
      return rc;
  }
  rc = read_security(args, &h.sec, "http", component, &h.c.tls, &h.c.auth, err);
  if (rc != 0)
    return rc;
  r->http = h.c;
  r->http.enabled = true;
  return 0;
}

static struct otc_counter *unauthenticated_counter(const char *id, const char *transport) {
  char eid[256], labels[320];
  snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\"",
           otc_metrics_escape_label(id, eid, sizeof eid), transport);
  return otc_counter_get("otelcol_receiver_unauthenticated_requests",
                         "Number of requests refused for a missing or wrong bearer token (not an "
                         "otelcol metric).",
                         labels);
}

static void *otlp_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                         struct otc_cfg_err *err) {
  const char *id = args->id ? args->id : "otlp";
  size_t idlen = strlen(id);
  /* The id strings live in the same allocation, so that the receiver does not depend on the
   * lifetime of the caller's copy. */
  struct otlp_receiver *r = calloc(1, sizeof *r + 2 * idlen + sizeof "receiver/" + 1);
  if (!r) {
    otc_cfg_error(err, cfg, "out of memory");
    return NULL;
  }
  char *idcopy = (char *)(r + 1);
  memcpy(idcopy, id, idlen + 1);
  char *logname = idcopy + idlen + 1;
  snprintf(logname, idlen + sizeof "receiver/", "receiver/%s", id);
  r->id = idcopy;
  r->log_component = logname;
  r->max_depth = OTC_WIRE_DEFAULT_MAX_DEPTH;
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    r->next[s] = args->next_by_signal[s];

  struct top_read top = {0};
  struct protocols_read pr = {0};
  if (otc_cfg_apply(top_fields, cfg, &top, r->log_component, err) != 0)
    goto fail;
  if (!configured(top.protocols)) {
    otc_cfg_error(err, top.protocols ? top.protocols : cfg,
                  "must specify at least one protocol when using the OTLP receiver");
    goto fail;
  }
  if (otc_cfg_apply(protocols_fields, top.protocols, &pr, r->log_component, err) != 0)
    goto fail;
  /* Presence of the key enables a protocol, even written as `grpc:` with no value. */
  const struct otc_cfg_node *g = otc_cfg_get(top.protocols, "grpc");
  const struct otc_cfg_node *h = otc_cfg_get(top.protocols, "http");
  if (!g && !h) {
    otc_cfg_error(err, top.protocols,
                  "must specify at least one protocol when using the OTLP receiver");
    goto fail;
  }
  if (g && read_grpc(r, args, g, r->log_component, err) != 0)
    goto fail;
  if (h && read_http(r, args, h, r->log_component, err) != 0)
    goto fail;
  if (r->grpc.enabled)
    otc_receiver_metrics_init(&r->grpc_metrics, r->id, "grpc");
  if (r->http.enabled)
    otc_receiver_metrics_init(&r->http_metrics, r->id, "http");
  if (r->grpc.auth)
    r->grpc_unauthenticated = unauthenticated_counter(r->id, "grpc");
  if (r->http.auth)
    r->http_unauthenticated = unauthenticated_counter(r->id, "http");
  return r;

fail:
  otlp_receiver__tls_free(&r->grpc.tls);
  otlp_receiver__tls_free(&r->http.tls);
  free(r);
  return NULL;
}

static int otlp_start(void *ctx) {
  struct otlp_receiver *r = ctx;
  int rc = 0;
  if (r->grpc.enabled && (rc = otlp_grpc__start(r)) != 0)
    goto cleanup;
  if (r->http.enabled && (rc = otlp_http__start(r)) != 0)
    goto cleanup;
cleanup:
  if (rc != 0) {
    /* A half-started receiver would hold a port that the next attempt needs. */
    if (r->grpc.enabled)
      otlp_grpc__stop(r);
    if (r->http.enabled)
      otlp_http__stop(r);
  }
  return rc;
}

static int otlp_shutdown(void *ctx) {
  struct otlp_receiver *r = ctx;
  if (r->http.enabled)
    otlp_http__stop(r);
  if (r->grpc.enabled)
    otlp_grpc__stop(r);
  return 0;
}

static void otlp_destroy(void *ctx) {
  if (!ctx)
    return;
  otlp_shutdown(ctx);
  struct otlp_receiver *r = ctx;
  otlp_receiver__tls_free(&r->grpc.tls);
  otlp_receiver__tls_free(&r->http.tls);
  free(ctx);
}

const struct otc_component_ops otc_receiver_otlp = {
    .type = "otlp",
    .aliases = NULL,
    .kind = OTC_KIND_RECEIVER,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = otlp_create,
    .start = otlp_start,
    .consume = NULL,
    .shutdown = otlp_shutdown,
    .destroy = otlp_destroy,
};

/* ---- export ---- */

static const char *const rejected_what[OTC_SIGNAL_COUNT] = {"spans", "data points", "log records"};

void otlp_receiver__export(struct otlp_receiver *r, enum otc_signal s,
                           struct otc_receiver_metrics *m, uint8_t *data, size_t len, bool adopt,
                           size_t charged, struct otlp_export_result *res) {
  /* owned/owned_charge: the buffer this function must free (and its charge) if it does not reach
   * a batch. */
  uint8_t *owned = adopt ? data : NULL;
  size_t owned_charge = adopt ? charged : 0;
  const uint8_t *bytes = data;
  size_t blen = len;
  struct otc_batch *b = NULL;
  struct otc_wire_stats st;
  char why[160] = "";

  memset(res, 0, sizeof *res);
  if (!r->next[s].consume) {
    /* The transports answer unwired signals themselves; this is a defensive backstop. */
    res->err = OTC_ERR_PERMANENT;
    snprintf(res->message, sizeof res->message, "no pipeline takes %s from this receiver",
             otc_signal_name(s));
    goto cleanup;
  }
  memset(&st, 0, sizeof st);
  /* An empty body may come as a NULL buffer; the scan gets a valid pointer either way. */
  if (otc_wire_scan(s, data ? data : (const uint8_t *)"", len, r->max_depth, &st, why,
                    sizeof why) != 0) {
    res->err = OTC_ERR_INVALID;
    snprintf(res->message, sizeof res->message, "bad request: %s", why[0] ? why : "invalid data");
    otc_counter_add(m->requests_rejected, 1);
    goto cleanup;
  }
  size_t items = st.items;
  if (st.invalid_items > 0) {
    uint8_t *clean = malloc(len ? len : 1);
    if (!clean) {
      res->err = OTC_ERR_NOMEM;
      snprintf(res->message, sizeof res->message, "out of memory");
      otc_counter_add(m->failed[s], items);
      goto cleanup;
    }
    blen = otc_wire_drop_invalid(s, data, len, clean);
    res->rejected = st.invalid_items;
    items = st.invalid_items < items ? items - st.invalid_items : 0;
    snprintf(res->message, sizeof res->message, "%zu %s rejected: invalid trace or span id",
             st.invalid_items, rejected_what[s]);
    /* The cleaned copy replaces the original; an adopted charge covers it since it is smaller. */
    free(owned);
    owned = clean;
    bytes = clean;
    if (!adopt) {
      if (otc_mem_reserve(blen + sizeof(struct otc_batch)) != 0) {
        res->err = OTC_ERR_REFUSED;
        snprintf(res->message, sizeof res->message, "data refused due to high memory usage");
        otc_counter_add(m->refused[s], items);
        goto cleanup;
      }
      owned_charge = blen + sizeof(struct otc_batch);
    }
  }
  if (items == 0)
    goto cleanup; /* an empty request is a success, with nothing for the pipeline */

  int err = 0;
  if (owned) {
    b = otc_batch_wrap(s, owned, blen, items, owned_charge);
    owned = NULL; /* the batch took it, or freed it and released its charge */
    owned_charge = 0;
    if (!b)
      err = OTC_ERR_NOMEM;
  } else {
    b = otc_batch_copy(s, bytes, blen, items, true, &err);
  }
  if (!b) {
    res->err = err;
    if (err == OTC_ERR_REFUSED) {
      snprintf(res->message, sizeof res->message, "data refused due to high memory usage");
      otc_counter_add(m->refused[s], items);
    } else {
      snprintf(res->message, sizeof res->message, "%s", otc_strerror(err));
      otc_counter_add(m->failed[s], items);
    }
    goto cleanup;
  }
  int rc = otc_consume(&r->next[s], b); /* takes the reference in every case */
  b = NULL;
  if (rc == 0) {
    res->items = items;
    otc_counter_add(m->accepted[s], items);
    goto cleanup;
  }
  /* otelcol counts every error of the next consumer as refused data. */
  otc_counter_add(m->refused[s], items);
  res->err = rc;
  if (rc == OTC_ERR_REFUSED)
    snprintf(res->message, sizeof res->message, "data refused due to high memory usage");
  else
    snprintf(res->message, sizeof res->message, "%s", otc_strerror(rc));

cleanup:
  if (owned) {
    free(owned);
    otc_mem_release(owned_charge);
  }
}

/* ---- responses ---- */

int otlp_receiver__encode_response(enum otc_signal s, const struct otlp_export_result *res,
                                   uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (res->rejected == 0)
    return 0; /* the empty message encodes to zero bytes */
  char *msg = (char *)res->message;
  const ProtobufCMessage *top = NULL;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse tr =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess tp =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse mr =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess mp =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse lr =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess lp =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
  switch (s) {
  case OTC_SIGNAL_TRACES:
    tp.rejected_spans = (int64_t)res->rejected;
    tp.error_message = msg;
    tr.partial_success = &tp;
    top = &tr.base;
    break;
  case OTC_SIGNAL_METRICS:
    mp.rejected_data_points = (int64_t)res->rejected;
    mp.error_message = msg;
    mr.partial_success = &mp;
    top = &mr.base;
    break;
  case OTC_SIGNAL_LOGS:
    lp.rejected_log_records = (int64_t)res->rejected;
    lp.error_message = msg;
    lr.partial_success = &lp;
    top = &lr.base;
    break;
  }
  if (!top)
    return OTC_ERR_INVALID;
  size_t n = protobuf_c_message_get_packed_size(top);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf)
    return OTC_ERR_NOMEM;
  *len = protobuf_c_message_pack(top, buf);
  *out = buf;
  return 0;
}
