/* The otlp receiver's shared part: its configuration (otelcol's receivers.otlp layout), the
 * component operations, and the export path both transports use: validate the wire bytes, drop
 * invalid items, charge and build the batch, hand it to the signal's pipeline and count the outcome
 * in the otelcol_receiver_* self-metrics. */
#include "receivers/otlp/otlp_receiver.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/net.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
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
    {"read_timeout", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"read_header_timeout", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"write_timeout", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"idle_timeout", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
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

static int check_security(const struct security_read *sec, const char *proto,
                          struct otc_cfg_err *err) {
  if (configured(sec->tls))
    return otc_cfg_error(err, sec->tls, "protocols.%s.tls: tls is not supported yet", proto);
  if (configured(sec->auth))
    return otc_cfg_error(err, sec->auth, "protocols.%s.auth: auth is not supported yet", proto);
  if (configured(sec->middlewares))
    return otc_cfg_error(err, sec->middlewares,
                         "protocols.%s.middlewares: middlewares are not supported yet", proto);
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

static int read_grpc(struct otlp_receiver *r, const struct otc_cfg_node *n, const char *component,
                     struct otc_cfg_err *err) {
  struct grpc_read g;
  memset(&g, 0, sizeof g);
  int rc = otc_cfg_apply(grpc_fields, n, &g, component, err);
  if (rc != 0)
    return rc;
  rc = check_security(&g.sec, "grpc", err);
  if (rc != 0)
    return rc;
  if (!g.c.transport || strcmp(g.c.transport, "tcp") != 0)
    return otc_cfg_error(err, otc_cfg_get(n, "transport"),
                         "protocols.grpc.transport: only \"tcp\" is supported");
  rc = check_endpoint(g.c.endpoint, otc_cfg_get(n, "endpoint") ? otc_cfg_get(n, "endpoint") : n,
                      "grpc", err);
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

static int read_http(struct otlp_receiver *r, const struct otc_cfg_node *n, const char *component,
                     struct otc_cfg_err *err) {
  struct http_read h;
  memset(&h, 0, sizeof h);
  int rc = otc_cfg_apply(http_fields, n, &h, component, err);
  if (rc != 0)
    return rc;
  rc = check_security(&h.sec, "http", err);
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
  r->http = h.c;
  r->http.enabled = true;
  return 0;
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
  if (g && read_grpc(r, g, r->log_component, err) != 0)
    goto fail;
  if (h && read_http(r, h, r->log_component, err) != 0)
    goto fail;
  if (r->grpc.enabled)
    otc_receiver_metrics_init(&r->grpc_metrics, r->id, "grpc");
  if (r->http.enabled)
    otc_receiver_metrics_init(&r->http_metrics, r->id, "http");
  return r;

fail:
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
