/* The OTLP/HTTP exporter, otelcol's `otlp_http` (called `otlphttp` before v0.162; both names
 * work): each batch is POSTed to the signal's URL, `endpoint` + /v1/traces, /v1/metrics or
 * /v1/logs unless traces_endpoint, metrics_endpoint or logs_endpoint give a URL to use as is.
 * With `encoding: proto` (the default) the batch's bytes are the body, unchanged; with `json` they
 * are transcoded to the OTLP JSON mapping. Queueing and retries are the exporter helper's; the HTTP
 * client classifies statuses as the OTLP/HTTP specification says (429, 502, 503, 504 retryable
 * with Retry-After, other non-2xx permanent). This file adds reading the answer: a partial success
 * on 2xx, the google.rpc.Status message on failures. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exporter_helper.h"
#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/otlp_json.h"
#include "otlp/otlp_exporter.h"

#define SHUTDOWN_DRAIN_NS (10LL * 1000000000LL)

static const char *const signal_paths[OTC_SIGNAL_COUNT] = {"v1/traces", "v1/metrics", "v1/logs"};
static const char *const signal_keys[OTC_SIGNAL_COUNT] = {"traces_endpoint", "metrics_endpoint",
                                                          "logs_endpoint"};

struct http_exp_config {
  struct otc_http_client_config http;
  const char *signal_endpoint[OTC_SIGNAL_COUNT];
  const char *encoding;
  const struct otc_cfg_node *sending_queue;
  const struct otc_cfg_node *retry_on_failure;
};

struct otlp_http_exporter {
  char *id;
  struct http_exp_config cfg;
  char *url[OTC_SIGNAL_COUNT]; /* NULL: no endpoint for that signal */
  bool json;
  struct otc_exporter_helper *helper;
  struct otc_log_limiter partial_log;
  /* One client (one keep-alive connection) per consumer thread, created by that thread on its
   * first send; with the queue disabled, callers share index 0 under the helper's lock. */
  struct otc_http_client **clients;
  size_t n_clients;
};

/* --- configuration --- */

static const struct otc_cfg_node *child_or(const struct otc_cfg_node *n, const char *key) {
  const struct otc_cfg_node *c = otc_cfg_get(n, key);
  return c ? c : n;
}

static int apply_fields(struct otlp_http_exporter *e, const struct otc_cfg_node *cfg,
                        struct otc_cfg_err *err) {
  struct otc_cfg_field fields[OTC_HTTP_CLIENT_FIELDS + 8];
  size_t n = otc_http_client_fields(fields, offsetof(struct http_exp_config, http), "gzip");
  /* otlphttp's request time limit is 30 s (the client table's default is exporterhelper's 5 s). */
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].key, "timeout") == 0)
      fields[i].def = "30s";
#define HE(m) offsetof(struct http_exp_config, m)
  fields[n++] = (struct otc_cfg_field){
      "traces_endpoint", OTC_CFGK_STRING, NULL, HE(signal_endpoint[OTC_SIGNAL_TRACES]), 0, 0};
  fields[n++] = (struct otc_cfg_field){
      "metrics_endpoint", OTC_CFGK_STRING, NULL, HE(signal_endpoint[OTC_SIGNAL_METRICS]), 0, 0};
  fields[n++] = (struct otc_cfg_field){
      "logs_endpoint", OTC_CFGK_STRING, NULL, HE(signal_endpoint[OTC_SIGNAL_LOGS]), 0, 0};
  fields[n++] = (struct otc_cfg_field){"encoding", OTC_CFGK_STRING, "proto", HE(encoding), 0, 0};
  fields[n++] =
      (struct otc_cfg_field){"sending_queue", OTC_CFGK_NODE, NULL, HE(sending_queue), 0, 0};
  fields[n++] =
      (struct otc_cfg_field){"retry_on_failure", OTC_CFGK_NODE, NULL, HE(retry_on_failure), 0, 0};
  fields[n++] = (struct otc_cfg_field){"profiles_endpoint", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0};
  fields[n++] = (struct otc_cfg_field){NULL, 0, NULL, 0, 0, 0};
#undef HE
  return otc_cfg_apply(fields, cfg, &e->cfg, e->id, err);
}

/* endpoint + "/v1/<signal>", without doubling a trailing slash (otelcol's composeSignalURL). */
static char *compose_url(const char *base, const char *path) {
  size_t bl = strlen(base);
  bool slash = bl > 0 && base[bl - 1] == '/';
  size_t len = bl + 1 + strlen(path) + 1;
  char *u = malloc(len);
  if (u)
    snprintf(u, len, "%s%s%s", base, slash ? "" : "/", path);
  return u;
}

static int parse_config(struct otlp_http_exporter *e, const struct otc_create_args *args,
                        const struct otc_cfg_node *cfg, struct otc_queue_config *q,
                        struct otc_retry_config *r, struct otc_cfg_err *err) {
  int rc = apply_fields(e, cfg, err);
  if (rc != 0)
    return rc;
  const char *base = e->cfg.http.endpoint;
  bool has_base = base && *base;
  const char *first = NULL;
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
    const char *u = e->cfg.signal_endpoint[s];
    if (!u || !*u)
      continue;
    if ((rc = otc_http_client_check_url(u, cfg, signal_keys[s], err)) != 0)
      return rc;
    if (!first)
      first = u;
  }
  if (!has_base && !first)
    return otc_cfg_error(err, cfg, "at least one endpoint must be specified");
  /* The client's checks want an endpoint; with per-signal URLs only, any of them stands in. */
  if ((rc = otc_http_client_setup_auth(&e->cfg.http, args, err)) != 0)
    return rc;
  struct otc_http_client_config check = e->cfg.http;
  if (!has_base)
    check.endpoint = first;
  if ((rc = otc_http_client_validate(&check, cfg, err)) != 0)
    return rc;
  const char *enc = e->cfg.encoding;
  if (!enc || (strcmp(enc, "proto") != 0 && strcmp(enc, "json") != 0))
    return otc_cfg_error(err, child_or(cfg, "encoding"),
                         "invalid encoding type: %s (proto or json)", enc ? enc : "");
  e->json = strcmp(enc, "json") == 0;
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
    const char *u = e->cfg.signal_endpoint[s];
    if (u && *u)
      e->url[s] = strdup(u);
    else if (has_base)
      e->url[s] = compose_url(base, signal_paths[s]);
    else
      continue;
    if (!e->url[s])
      return otc_cfg_error(err, cfg, "out of memory");
  }
  if ((rc = otc_queue_config_parse(e->cfg.sending_queue, 1000, q, e->id, err)) != 0)
    return rc;
  return otc_retry_config_parse(e->cfg.retry_on_failure, r, e->id, err);
}

/* --- sending --- */

/* Replaces the text after "HTTP <status>" in res->reason with the message of the google.rpc.Status
 * the server answered with, when the body is one (otherwise the client's first line of the body
 * stays). */
static void reason_from_status(struct otlp_http_exporter *e, const uint8_t *body, size_t len,
                               struct otc_send_result *res) {
  struct otlp_exp_status st;
  int rc = OTC_ERR_INVALID;
  /* Servers answer in the request's encoding, but proxies write JSON or text whatever was sent. */
  if (len > 0 && body[0] == '{')
    rc = otlp_exp__status_from_json(body, len, &st);
  else if (!e->json)
    rc = otlp_exp__status_from_proto(body, len, &st);
  if (rc != 0 || !st.message[0])
    return;
  if (strncmp(res->reason, "HTTP ", 5) != 0)
    return;
  char status[8];
  size_t n = strspn(res->reason + 5, "0123456789");
  if (n == 0 || n >= sizeof status)
    return;
  memcpy(status, res->reason + 5, n);
  status[n] = '\0';
  snprintf(res->reason, sizeof res->reason, "HTTP %s: %.*s", status, (int)(sizeof res->reason - 16),
           st.message);
}

static void http_send(void *ctx, unsigned worker, struct otc_batch *b,
                      struct otc_send_result *res) {
  struct otlp_http_exporter *e = ctx;
  char *json = NULL;
  size_t json_len = 0, charged = 0;
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  const char *url = (unsigned)b->signal < OTC_SIGNAL_COUNT ? e->url[b->signal] : NULL;
  if (!url) {
    res->err = OTC_ERR_PERMANENT;
    snprintf(res->reason, sizeof res->reason, "no endpoint is configured for %s",
             otc_signal_name(b->signal));
    goto cleanup;
  }
  size_t i = worker < e->n_clients ? worker : 0;
  if (!e->clients[i] && !(e->clients[i] = otc_http_client_create(&e->cfg.http))) {
    res->err = OTC_ERR_NOMEM;
    snprintf(res->reason, sizeof res->reason, "cannot create the HTTP client");
    goto cleanup;
  }
  const uint8_t *body = b->data;
  size_t len = b->len;
  const char *content_type = "application/x-protobuf";
  if (e->json) {
    int rc = otc_proto_to_json(b->signal, b->data, b->len, &json, &json_len);
    if (rc != 0) {
      /* The batch came from our receiver, which validated it: this is a bug or no memory. */
      res->err = rc == OTC_ERR_NOMEM ? OTC_ERR_NOMEM : OTC_ERR_PERMANENT;
      snprintf(res->reason, sizeof res->reason, "cannot encode the batch as JSON: %s",
               otc_strerror(rc));
      goto cleanup;
    }
    /* The JSON copy is data the collector holds, so it counts like the batch does. */
    charged = json_len;
    otc_mem_charge(charged);
    body = (const uint8_t *)json;
    len = json_len;
    content_type = "application/json";
  }
  if (b->n_parts) {
    /* A joined batch (never JSON: see http_exp_takes_parts) goes out part by part. */
    struct iovec local[32];
    struct iovec *iov = b->n_parts <= 32 ? local : malloc(b->n_parts * sizeof *iov);
    if (!iov) {
      res->err = OTC_ERR_NOMEM;
      snprintf(res->reason, sizeof res->reason, "out of memory");
      goto cleanup;
    }
    for (size_t k = 0; k < b->n_parts; k++)
      iov[k] = (struct iovec){.iov_base = b->parts[k]->data, .iov_len = b->parts[k]->len};
    otc_http_client_postv(e->clients[i], url, content_type, NULL, NULL, iov, b->n_parts, res, &resp,
                          &resp_len);
    if (iov != local)
      free(iov);
  } else {
    otc_http_client_post(e->clients[i], url, content_type, NULL, NULL, body, len, res, &resp,
                         &resp_len);
  }
  if (res->err == 0) {
    struct otlp_exp_partial p;
    int rc = e->json ? otlp_exp__partial_from_json(b->signal, resp, resp_len, &p)
                     : otlp_exp__partial_from_proto(b->signal, resp, resp_len, &p);
    if (rc == 0)
      otlp_exp__report_partial(e->id, &e->partial_log, b->signal, b->items, &p);
    else
      otc_debug(e->id, "the server's response body is not an Export response; ignored");
  } else if (resp_len > 0) {
    reason_from_status(e, resp, resp_len, res);
  }

cleanup:
  free(resp);
  free(json);
  otc_mem_release(charged);
}

/* --- the component --- */

static int http_exp_start(void *ctx) {
  struct otlp_http_exporter *e = ctx;
  return otc_exporter_helper_start(e->helper);
}

static int http_exp_consume(void *ctx, struct otc_batch *b) {
  struct otlp_http_exporter *e = ctx;
  return otc_exporter_helper_consume(e->helper, b);
}

/* Joined batches are sent part by part (otc_http_client_postv); the JSON encoding reads one
 * buffer. */
static bool http_exp_takes_parts(void *ctx) {
  struct otlp_http_exporter *e = ctx;
  return !e->json && otc_exporter_helper_takes_parts(e->helper);
}

static int http_exp_shutdown(void *ctx) {
  struct otlp_http_exporter *e = ctx;
  otc_exporter_helper_shutdown(e->helper, SHUTDOWN_DRAIN_NS);
  return 0;
}

static void http_exp_destroy(void *ctx) {
  struct otlp_http_exporter *e = ctx;
  if (!e)
    return;
  otc_exporter_helper_destroy(e->helper); /* joins the threads that use the clients */
  for (size_t i = 0; e->clients && i < e->n_clients; i++)
    otc_http_client_destroy(e->clients[i]);
  free(e->clients);
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    free(e->url[s]);
  free(e->id);
  free(e);
}

static void *http_exp_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                             struct otc_cfg_err *err) {
  struct otlp_http_exporter *e = calloc(1, sizeof *e);
  if (!e) {
    otc_cfg_error(err, cfg, "out of memory");
    return NULL;
  }
  e->id = strdup(args->id ? args->id : "otlp_http");
  struct otc_queue_config q;
  struct otc_retry_config r;
  if (!e->id) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  if (parse_config(e, args, cfg, &q, &r, err) != 0 ||
      otc_queue_config_bind_storage(&q, args, err) != 0)
    goto fail;
  e->n_clients = q.enabled ? (size_t)q.num_consumers : 1;
  e->clients = calloc(e->n_clients, sizeof *e->clients);
  e->helper = otc_exporter_helper_create(e->id, &q, &r, http_send, e);
  if (!e->clients || !e->helper) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  return e;
fail:
  http_exp_destroy(e);
  return NULL;
}

static const char *const http_aliases[] = {"otlphttp", NULL};

const struct otc_component_ops otc_exporter_otlp_http = {
    .type = "otlp_http",
    .aliases = http_aliases,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = http_exp_create,
    .start = http_exp_start,
    .consume = http_exp_consume,
    .takes_parts = http_exp_takes_parts,
    .shutdown = http_exp_shutdown,
    .destroy = http_exp_destroy,
};
