/* The loki exporter: logs to Loki's push API (POST /loki/api/v1/push), as a snappy-compressed
 * logproto.PushRequest or, with `format: json`, as the API's JSON form (gzip-compressed if asked).
 * The translation is loki_encode.c; this file reads the configuration and sends through the shared
 * sending queue, retry loop and libcurl client (common/exporter_helper.h), one client per consumer
 * thread. A batch of more than OTC_LOKI_MAX_RECORDS_PER_PUSH records goes as several pushes (cut
 * between records with otc_wire_split), which bounds the translation's memory.
 *
 * Loki answers a refused push with a plain-text reason ("entry too far behind", "stream limit
 * exceeded"); the HTTP client puts its first line into the drop reason. 429 and every 5xx are
 * retried (as Loki's own clients do), other 4xx dropped at once. */
#include <snappy-c.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exporter_helper.h"
#include "core/component.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
#include "loki/loki_encode.h"

#define NS_PER_S 1000000000LL
/* How long shutdown lets the queue drain, so that the batch processor's final flush still gets
 * delivered. */
#define SHUTDOWN_DRAIN_NS (10 * NS_PER_S)
/* Loki's exporter in otelcol-contrib waited 30s for a push, not confighttp's 5s: a push of a large
 * batch to a busy distributor can take that long. */
#define DEFAULT_TIMEOUT_NS (30 * NS_PER_S)
#define DEFAULT_QUEUE_SIZE 1000

struct loki_config {
  struct otc_http_client_config http;
  const char *tenant_id;
  const char *format;
  struct otc_cfg_strlist resource_labels;
  struct otc_cfg_strlist record_labels;
  bool level_label;
  bool structured_metadata;
  const struct otc_cfg_node *sending_queue;
  const struct otc_cfg_node *retry_on_failure;
};

struct loki_exporter {
  char *id;
  struct otc_http_client_config http; /* strings point into the config tree */
  enum otc_loki_format format;
  struct loki_mapping_cfg mapping;
  char *tenant_header; /* "X-Scope-OrgID: <tenant>", or NULL */
  const char *extra_headers[2];
  struct otc_queue_config queue;
  struct otc_retry_config retry;
  struct otc_exporter_helper *helper;
  struct otc_http_client **clients; /* one per consumer thread, created at start */
  size_t n_clients;
};

static int check_names(const struct otc_cfg_node *cfg, const char *key,
                       const struct otc_cfg_strlist *l, struct otc_cfg_err *err) {
  for (size_t i = 0; i < l->n; i++)
    if (!l->items[i] || !*l->items[i])
      return otc_cfg_error(err, otc_cfg_get(cfg, key), "item %zu: an attribute name is required",
                           i + 1);
  return 0;
}

/* Translates and pushes one request's worth of logs (the wire bytes at data). Fills res. */
static void push_piece(struct loki_exporter *x, unsigned worker, const uint8_t *data, size_t len,
                       struct otc_send_result *res) {
  uint8_t *body = NULL;
  char *compressed = NULL;
  size_t blen = 0, n_entries = 0, charged = 0;
  memset(res, 0, sizeof *res);
  int rc = otc_loki__encode(data, len, &x->mapping, x->format, &body, &blen, &n_entries);
  if (rc != 0) {
    /* Invalid data will never translate; a lack of memory may pass. */
    res->err = rc == OTC_ERR_INVALID ? OTC_ERR_PERMANENT : rc;
    snprintf(res->reason, sizeof res->reason, "cannot translate the logs to a Loki push: %s",
             otc_strerror(rc));
    goto cleanup;
  }
  if (n_entries == 0)
    goto cleanup; /* nothing to push: delivered */
  otc_mem_charge(blen);
  charged += blen;
  if (x->format == OTC_LOKI_FORMAT_JSON) {
    otc_http_client_post(x->clients[worker], x->http.endpoint, "application/json", NULL,
                         x->extra_headers, body, blen, res, NULL, NULL);
    goto cleanup;
  }
  size_t zlen = snappy_max_compressed_length(blen);
  otc_mem_charge(zlen);
  charged += zlen;
  compressed = malloc(zlen ? zlen : 1);
  if (!compressed || snappy_compress((const char *)body, blen, compressed, &zlen) != SNAPPY_OK) {
    res->err = OTC_ERR_NOMEM;
    snprintf(res->reason, sizeof res->reason, "snappy compression failed");
    goto cleanup;
  }
  /* The uncompressed body is not needed during the request. */
  free(body);
  body = NULL;
  otc_http_client_post(x->clients[worker], x->http.endpoint, "application/x-protobuf", "snappy",
                       x->extra_headers, (const uint8_t *)compressed, zlen, res, NULL, NULL);
cleanup:
  free(body);
  free(compressed);
  otc_mem_release(charged);
}

struct piece_ctx {
  struct loki_exporter *x;
  unsigned worker;
  struct otc_send_result *res;
};

static int push_split_piece(void *arg, const uint8_t *piece, size_t len, size_t items) {
  struct piece_ctx *c = arg;
  (void)items;
  push_piece(c->x, c->worker, piece, len, c->res);
  /* The first failure ends the batch: the helper retries or drops it as a whole. */
  return c->res->err != 0 ? 1 : 0;
}

static void loki_send(void *exporter, unsigned worker, struct otc_batch *b,
                      struct otc_send_result *res) {
  struct loki_exporter *x = exporter;
  memset(res, 0, sizeof *res);
  if (worker >= x->n_clients || !x->clients[worker]) {
    res->err = OTC_ERR_IO;
    snprintf(res->reason, sizeof res->reason, "no HTTP client for sender %u", worker);
    return;
  }
  if (b->items <= OTC_LOKI_MAX_RECORDS_PER_PUSH) {
    push_piece(x, worker, b->data, b->len, res);
    return;
  }
  /* A large batch goes as several pushes, so that the translation's working set (a few times
   * the wire size) stays small. */
  struct piece_ctx c = {x, worker, res};
  int rc = otc_wire_split(OTC_SIGNAL_LOGS, b->data, b->len, OTC_LOKI_MAX_RECORDS_PER_PUSH,
                          push_split_piece, &c);
  if (rc != 0 && res->err == 0) {
    res->err = rc == OTC_ERR_NOMEM ? OTC_ERR_NOMEM : OTC_ERR_PERMANENT;
    snprintf(res->reason, sizeof res->reason, "cannot split the logs batch: %s", otc_strerror(rc));
  }
}

static void loki_destroy(void *ctx);

static void *loki_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                         struct otc_cfg_err *err) {
  struct loki_exporter *x = NULL;
  struct loki_config c;
  memset(&c, 0, sizeof c);
  const char *id = args->id ? args->id : "loki";
  struct otc_cfg_field fields[OTC_HTTP_CLIENT_FIELDS + 12];
  size_t n = otc_http_client_fields(fields, offsetof(struct loki_config, http), "none");
#define F(key, kind, def, member)                                                                  \
  fields[n++] = (struct otc_cfg_field){key, kind, def, offsetof(struct loki_config, member), 0, 0}
  F("tenant_id", OTC_CFGK_STRING, NULL, tenant_id);
  F("format", OTC_CFGK_STRING, "protobuf", format);
  F("resource_labels", OTC_CFGK_STRLIST, NULL, resource_labels);
  F("record_labels", OTC_CFGK_STRLIST, NULL, record_labels);
  F("level_label", OTC_CFGK_BOOL, "true", level_label);
  F("structured_metadata", OTC_CFGK_BOOL, "true", structured_metadata);
  F("sending_queue", OTC_CFGK_NODE, NULL, sending_queue);
  F("retry_on_failure", OTC_CFGK_NODE, NULL, retry_on_failure);
#undef F
  /* The contrib exporter's switch for its own job/instance/exporter labels; ours never adds them.
   */
  fields[n++] =
      (struct otc_cfg_field){"default_labels_enabled", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0};
  fields[n] = (struct otc_cfg_field){NULL, 0, NULL, 0, 0, 0};

  if (otc_cfg_apply(fields, cfg, &c, id, err) != 0)
    goto fail;
  if (!otc_cfg_get(cfg, "timeout"))
    c.http.timeout_ns = DEFAULT_TIMEOUT_NS;
  if (otc_http_client_setup_auth(&c.http, args, err) != 0 ||
      otc_http_client_validate(&c.http, cfg, err) != 0)
    goto fail;
  enum otc_loki_format format;
  if (strcmp(c.format, "protobuf") == 0) {
    format = OTC_LOKI_FORMAT_PROTOBUF;
  } else if (strcmp(c.format, "json") == 0) {
    format = OTC_LOKI_FORMAT_JSON;
  } else {
    otc_cfg_error(err, otc_cfg_get(cfg, "format"), "unknown format \"%s\" (protobuf, json)",
                  c.format);
    goto fail;
  }
  if (c.tenant_id && strpbrk(c.tenant_id, "\r\n")) {
    otc_cfg_error(err, otc_cfg_get(cfg, "tenant_id"), "tenant_id must not contain line breaks");
    goto fail;
  }
  if (check_names(cfg, "resource_labels", &c.resource_labels, err) != 0 ||
      check_names(cfg, "record_labels", &c.record_labels, err) != 0)
    goto fail;
  struct otc_retry_config retry;
  struct otc_queue_config queue;
  if (otc_retry_config_parse(c.retry_on_failure, &retry, id, err) != 0 ||
      otc_queue_config_parse(c.sending_queue, DEFAULT_QUEUE_SIZE, &queue, id, err) != 0 ||
      otc_queue_config_bind_storage(&queue, args, err) != 0)
    goto fail;
  if (format == OTC_LOKI_FORMAT_PROTOBUF && c.http.compression &&
      strcmp(c.http.compression, "gzip") == 0)
    otc_warn(id, "compression: gzip applies to format: json only; a protobuf push is always "
                 "snappy-compressed");

  x = calloc(1, sizeof *x);
  if (!x || !(x->id = strdup(id))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  x->http = c.http;
  x->format = format;
  x->queue = queue;
  x->retry = retry;
  const struct otc_cfg_node *rl = otc_cfg_get(cfg, "resource_labels");
  if (rl && rl->type != OTC_CFG_NULL) {
    x->mapping.resource_labels = c.resource_labels.items;
    x->mapping.n_resource_labels = c.resource_labels.n;
  } else {
    x->mapping.resource_labels = otc_loki_default_resource_labels;
    x->mapping.n_resource_labels = otc_loki_default_resource_labels_count;
  }
  x->mapping.record_labels = c.record_labels.items;
  x->mapping.n_record_labels = c.record_labels.n;
  x->mapping.level_label = c.level_label;
  x->mapping.structured_metadata = c.structured_metadata;
  if (c.tenant_id && *c.tenant_id) {
    size_t hl = strlen("X-Scope-OrgID: ") + strlen(c.tenant_id) + 1;
    x->tenant_header = malloc(hl);
    if (!x->tenant_header) {
      otc_cfg_error(err, cfg, "out of memory");
      goto fail;
    }
    snprintf(x->tenant_header, hl, "X-Scope-OrgID: %s", c.tenant_id);
    x->extra_headers[0] = x->tenant_header;
  }
  x->helper = otc_exporter_helper_create(x->id, &x->queue, &x->retry, loki_send, x);
  if (!x->helper) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  otc_exporter_helper_register_signals(x->helper, OTC_SIGNAL_BIT(OTC_SIGNAL_LOGS));
  return x;
fail:
  loki_destroy(x);
  return NULL;
}

static int loki_start(void *ctx) {
  struct loki_exporter *x = ctx;
  if (x->clients)
    return 0;
  size_t n = x->queue.enabled ? (size_t)x->queue.num_consumers : 1;
  x->clients = calloc(n, sizeof *x->clients);
  if (!x->clients)
    return OTC_ERR_NOMEM;
  x->n_clients = n;
  /* Loki answers 500 for transient ingester trouble (too few live replicas, a flush in progress),
   * and its own clients retry every 5xx. */
  x->http.retry_server_errors = true;
  for (size_t i = 0; i < n; i++) {
    x->clients[i] = otc_http_client_create(&x->http);
    if (!x->clients[i]) {
      otc_error(x->id, "cannot create the HTTP client for %s", x->http.endpoint);
      return OTC_ERR_NOMEM;
    }
  }
  return otc_exporter_helper_start(x->helper);
}

static int loki_consume(void *ctx, struct otc_batch *b) {
  struct loki_exporter *x = ctx;
  return otc_exporter_helper_consume(x->helper, b);
}

static int loki_shutdown(void *ctx) {
  struct loki_exporter *x = ctx;
  otc_exporter_helper_shutdown(x->helper, SHUTDOWN_DRAIN_NS);
  return 0;
}

static void loki_destroy(void *ctx) {
  struct loki_exporter *x = ctx;
  if (!x)
    return;
  /* The helper's threads use the clients: it goes first. */
  otc_exporter_helper_destroy(x->helper);
  for (size_t i = 0; x->clients && i < x->n_clients; i++)
    otc_http_client_destroy(x->clients[i]);
  free(x->clients);
  free(x->tenant_header);
  free(x->id);
  free(x);
}

const struct otc_component_ops otc_exporter_loki = {
    .type = "loki",
    .aliases = NULL,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNAL_BIT(OTC_SIGNAL_LOGS),
    .mutates = false,
    .create = loki_create,
    .start = loki_start,
    .consume = loki_consume,
    .shutdown = loki_shutdown,
    .destroy = loki_destroy,
};
