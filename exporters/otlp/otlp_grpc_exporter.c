/* The OTLP/gRPC exporter, otelcol's `otlp_grpc` (called `otlp` before v0.162; both names work):
 * each batch, already the wire bytes of an Export*ServiceRequest, is sent unchanged as the
 * message of one unary call to the signal's Export method, through gRPC core's C API over one
 * channel kept for the exporter's life. Queueing and retries are the exporter helper's; this file
 * sends one attempt and classifies the outcome as the OTLP specification says: OK (with a possible
 * partial success), retryable (CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
 * DATA_LOSS, and RESOURCE_EXHAUSTED when the status carries a RetryInfo), or permanent.
 *
 * Transport security follows otelcol's configgrpc and the OTLP exporter specification: TLS unless
 * `tls.insecure` is true; an `https://` endpoint always means TLS, an `http://` one plaintext. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "common/exporter_helper.h"
#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "extensions/bearertokenauth/bearertokenauth.h"
#include "otlp/otlp_exporter.h"

#ifndef OTC_VERSION
#define OTC_VERSION "0.1.0"
#endif

/* How long shutdown lets the queue drain, so that the batch processor's final flush still goes
 * out. */
#define SHUTDOWN_DRAIN_NS (10LL * 1000000000LL)
/* PEM files larger than this are not certificates. */
#define MAX_PEM_BYTES (1024 * 1024)
/* Configured metadata entries: far more than anyone sends. */
#define MAX_HEADERS 64

static const char *const methods[OTC_SIGNAL_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

struct grpc_keepalive_config {
  int64_t time_ns;
  int64_t timeout_ns;
  bool permit_without_stream;
};

struct grpc_exp_config {
  const char *endpoint;
  const char *compression;
  const struct otc_cfg_node *tls;
  const struct otc_cfg_node *headers;
  const struct otc_cfg_node *keepalive;
  const char *balancer_name;
  const char *authority;
  bool wait_for_ready;
  const struct otc_cfg_node *auth;
  int64_t timeout_ns;
  const struct otc_cfg_node *sending_queue;
  const struct otc_cfg_node *retry_on_failure;
};

#define GC(m) offsetof(struct grpc_exp_config, m)
static const struct otc_cfg_field grpc_fields[] = {
    {"endpoint", OTC_CFGK_STRING, NULL, GC(endpoint), 0, 0},
    {"compression", OTC_CFGK_STRING, "gzip", GC(compression), 0, 0},
    {"tls", OTC_CFGK_NODE, NULL, GC(tls), 0, 0},
    {"headers", OTC_CFGK_NODE, NULL, GC(headers), 0, 0},
    {"keepalive", OTC_CFGK_NODE, NULL, GC(keepalive), 0, 0},
    {"balancer_name", OTC_CFGK_STRING, NULL, GC(balancer_name), 0, 0},
    {"authority", OTC_CFGK_STRING, NULL, GC(authority), 0, 0},
    {"wait_for_ready", OTC_CFGK_BOOL, "false", GC(wait_for_ready), 0, 0},
    {"auth", OTC_CFGK_NODE, NULL, GC(auth), 0, 0},
    /* exporterhelper's timeout: each call's deadline; 0 means none. */
    {"timeout", OTC_CFGK_DURATION, "5s", GC(timeout_ns), 0, 1e18},
    {"sending_queue", OTC_CFGK_NODE, NULL, GC(sending_queue), 0, 0},
    {"retry_on_failure", OTC_CFGK_NODE, NULL, GC(retry_on_failure), 0, 0},
    {"read_buffer_size", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"write_buffer_size", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"compression_params", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};
#undef GC

#define KC(m) offsetof(struct grpc_keepalive_config, m)
static const struct otc_cfg_field keepalive_fields[] = {
    {"time", OTC_CFGK_DURATION, "0s", KC(time_ns), 0, 1e18},
    {"timeout", OTC_CFGK_DURATION, "0s", KC(timeout_ns), 0, 1e18},
    {"permit_without_stream", OTC_CFGK_BOOL, "false", KC(permit_without_stream), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};
#undef KC

/* What one consumer thread owns: its completion queue (calls on it are plucked by that thread
 * only) and its copy of the call metadata, which gRPC scribbles on during a call. */
struct grpc_worker {
  grpc_completion_queue *cq;
  grpc_metadata *md;     /* n_md entries, plus one for the token */
  char auth_value[4096]; /* this call's "<scheme> <token>" */
};

struct otlp_grpc_exporter {
  char *id;
  struct grpc_exp_config cfg;
  char *target; /* the endpoint without its http:// or https:// */
  bool use_tls;
  struct otc_http_client_config tls; /* the tls_* members, from the tls map */
  bool keepalive_set;
  struct grpc_keepalive_config keepalive;
  struct otc_bearertokenauth *auth; /* auth.authenticator; NULL: none. Borrowed */
  char auth_key[128];               /* its header as a gRPC metadata key (lowercase) */
  char **md_keys;                   /* lowercased header names (gRPC metadata keys are lowercase) */
  const char **md_values;
  size_t n_md;

  struct otc_exporter_helper *helper;
  struct otc_log_limiter partial_log;
  bool grpc_inited;
  grpc_channel *channel;
  struct grpc_worker *workers;
  size_t n_workers;
};

/* --- configuration --- */

static const struct otc_cfg_node *child_or(const struct otc_cfg_node *n, const char *key) {
  const struct otc_cfg_node *c = otc_cfg_get(n, key);
  return c ? c : n;
}

/* Checks that rest is "host:port" as Go's net.SplitHostPort reads it (IPv6 in brackets) with a
 * numeric port, which is what otelcol's otlp exporter validates. */
static bool host_port_ok(const char *rest) {
  const char *colon;
  if (rest[0] == '[') {
    const char *close = strchr(rest, ']');
    if (!close || close == rest + 1 || close[1] != ':')
      return false;
    colon = close + 1;
  } else {
    colon = strrchr(rest, ':');
    if (!colon || colon == rest || memchr(rest, ':', (size_t)(colon - rest)))
      return false;
  }
  const char *port = colon + 1;
  if (!*port || strlen(port) > 5)
    return false;
  for (const char *p = port; *p; p++)
    if (!isdigit((unsigned char)*p))
      return false;
  long v = strtol(port, NULL, 10);
  return v >= 1 && v <= 65535;
}

/* Splits the endpoint into the gRPC target and its scheme: "http://h:p" and "https://h:p" as
 * otelcol accepts them, "dns:///h:p" as gRPC names it, or plain "h:p". */
static int parse_endpoint(struct otlp_grpc_exporter *e, const struct otc_cfg_node *cfg,
                          bool *scheme_http, bool *scheme_https, struct otc_cfg_err *err) {
  const char *ep = e->cfg.endpoint;
  const struct otc_cfg_node *at = child_or(cfg, "endpoint");
  *scheme_http = *scheme_https = false;
  if (!ep || !*ep)
    return otc_cfg_error(err, at, "requires a non-empty \"endpoint\"");
  const char *rest = ep;
  if (strncmp(ep, "http://", 7) == 0) {
    *scheme_http = true;
    rest = ep + 7;
  } else if (strncmp(ep, "https://", 8) == 0) {
    *scheme_https = true;
    rest = ep + 8;
  }
  const char *check = rest;
  if (strncmp(rest, "dns:///", 7) == 0)
    check = rest + 7;
  if (!host_port_ok(check))
    return otc_cfg_error(
        err, at, "endpoint \"%s\" must be host:port (optionally with http:// or https://)", ep);
  e->target = strdup(rest);
  return e->target ? 0 : otc_cfg_error(err, at, "out of memory");
}

/* gRPC metadata keys: lowercase letters, digits, '-', '_' and '.'; values of keys that do not
 * end in "-bin" printable ASCII. Keys that gRPC itself sets are refused rather than silently
 * overridden or clashing. */
static int parse_headers(struct otlp_grpc_exporter *e, struct otc_cfg_err *err) {
  static const char *const reserved[] = {"content-type",         "te",           "grpc-encoding",
                                         "grpc-accept-encoding", "grpc-timeout", "user-agent"};
  const struct otc_cfg_node *h = e->cfg.headers;
  if (!h || h->type == OTC_CFG_NULL)
    return 0;
  if (h->type != OTC_CFG_MAP)
    return otc_cfg_error(err, h, "headers must be a map of header names to values");
  if (h->n_children > MAX_HEADERS)
    return otc_cfg_error(err, h, "at most %d headers are supported", MAX_HEADERS);
  e->md_keys = calloc(h->n_children ? h->n_children : 1, sizeof *e->md_keys);
  e->md_values = calloc(h->n_children ? h->n_children : 1, sizeof *e->md_values);
  if (!e->md_keys || !e->md_values)
    return otc_cfg_error(err, h, "out of memory");
  for (size_t i = 0; i < h->n_children; i++) {
    const struct otc_cfg_node *c = h->children[i];
    if (c->type != OTC_CFG_SCALAR && c->type != OTC_CFG_NULL)
      return otc_cfg_error(err, c, "the value of header %s must be a string", c->key);
    char *k = strdup(c->key);
    if (!k)
      return otc_cfg_error(err, c, "out of memory");
    e->md_keys[e->n_md] = k;
    e->md_values[e->n_md] = c->type == OTC_CFG_SCALAR ? c->value : "";
    e->n_md++;
    bool ok = *k != '\0';
    for (char *p = k; *p; p++) {
      *p = (char)tolower((unsigned char)*p);
      if (!(isdigit((unsigned char)*p) || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_' ||
            *p == '.'))
        ok = false;
    }
    if (!ok)
      return otc_cfg_error(err, c, "\"%s\" is not a valid gRPC metadata key", c->key);
    if (strncmp(k, "grpc-", 5) == 0)
      return otc_cfg_error(err, c, "header %s is reserved by gRPC", c->key);
    for (size_t j = 0; j < sizeof reserved / sizeof reserved[0]; j++)
      if (strcmp(k, reserved[j]) == 0)
        return otc_cfg_error(err, c, "header %s is set by gRPC and cannot be configured", c->key);
    size_t kl = strlen(k);
    bool binary = kl > 4 && strcmp(k + kl - 4, "-bin") == 0;
    for (const char *p = e->md_values[i]; !binary && *p; p++)
      if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
        return otc_cfg_error(err, c, "the value of header %s must be printable ASCII", c->key);
  }
  return 0;
}

/* Decides plaintext or TLS and checks the TLS settings that gRPC core can honour. */
static int parse_tls(struct otlp_grpc_exporter *e, const struct otc_cfg_node *cfg, bool http,
                     bool https, struct otc_cfg_err *err) {
  int rc = otc_http_client_parse_tls(e->cfg.tls, &e->tls, e->id, err);
  if (rc != 0)
    return rc;
  e->use_tls = https || (!http && !e->tls.tls_insecure);
  if (!e->use_tls)
    return 0;
  const struct otc_cfg_node *tls = e->cfg.tls ? e->cfg.tls : cfg;
  /* Silently verifying anyway would break the connection; silently not verifying is what the
   * user asked for but gRPC core's plain SSL credentials cannot do it. */
  if (e->tls.tls_insecure_skip_verify)
    return otc_cfg_error(err, child_or(tls, "insecure_skip_verify"),
                         "tls.insecure_skip_verify is not supported for gRPC yet");
  /* gRPC core negotiates TLS 1.2 or later: a minimum up to 1.2 holds, 1.3 cannot be enforced. */
  if (e->tls.tls_min_version && strcmp(e->tls.tls_min_version, "1.3") == 0)
    return otc_cfg_error(err, child_or(tls, "min_version"),
                         "tls.min_version 1.3 is not supported for gRPC yet");
  return 0;
}

static int parse_config(struct otlp_grpc_exporter *e, const struct otc_create_args *args,
                        const struct otc_cfg_node *cfg, struct otc_queue_config *q,
                        struct otc_retry_config *r, struct otc_cfg_err *err) {
  int rc = otc_cfg_apply(grpc_fields, cfg, &e->cfg, e->id, err);
  if (rc != 0)
    return rc;
  bool http = false, https = false;
  if ((rc = parse_endpoint(e, cfg, &http, &https, err)) != 0)
    return rc;
  const char *comp = e->cfg.compression;
  if (comp && *comp && strcmp(comp, "gzip") != 0 && strcmp(comp, "none") != 0)
    return otc_cfg_error(err, child_or(cfg, "compression"),
                         "unsupported compression \"%s\" (supported: gzip, none)", comp);
  if ((rc = otc_auth_resolve(args, e->cfg.auth, "auth", e->id, &e->auth, err)) != 0)
    return rc;
  if ((rc = parse_tls(e, cfg, http, https, err)) != 0)
    return rc;
  if (e->auth) {
    /* As otelcol's gRPC client, which refuses to send per-call credentials in plaintext. */
    if (!e->use_tls)
      return otc_cfg_error(err, e->cfg.auth,
                           "auth: bearertokenauth requires transport security (TLS), but the "
                           "connection is insecure");
    const char *h = otc_bearertokenauth_header(e->auth);
    size_t i = 0;
    for (; h[i] && i + 1 < sizeof e->auth_key; i++)
      e->auth_key[i] = (char)tolower((unsigned char)h[i]);
    e->auth_key[i] = '\0';
    if (h[i])
      return otc_cfg_error(err, e->cfg.auth, "auth: the header name is too long");
  }
  if ((rc = parse_headers(e, err)) != 0)
    return rc;
  if (e->cfg.keepalive && e->cfg.keepalive->type != OTC_CFG_NULL) {
    if ((rc = otc_cfg_apply(keepalive_fields, e->cfg.keepalive, &e->keepalive, e->id, err)) != 0)
      return rc;
    e->keepalive_set = true;
  }
  const char *lb = e->cfg.balancer_name;
  if (lb && *lb && strcmp(lb, "pick_first") != 0 && strcmp(lb, "round_robin") != 0)
    return otc_cfg_error(err, child_or(cfg, "balancer_name"),
                         "invalid balancer_name: %s (pick_first or round_robin)", lb);
  if ((rc = otc_queue_config_parse(e->cfg.sending_queue, 1000, q, e->id, err)) != 0)
    return rc;
  return otc_retry_config_parse(e->cfg.retry_on_failure, r, e->id, err);
}

/* --- the exporter --- */

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *status_name(grpc_status_code c) {
  return (unsigned)c < sizeof status_names / sizeof status_names[0] ? status_names[c] : "UNKNOWN";
}

/* The OTLP specification's retryable codes; RESOURCE_EXHAUSTED only when the server said when to
 * come back (otherwise it is a permanent "too large" or a quota that will not recover). */
static bool status_retryable(grpc_status_code c, bool has_retry_info) {
  switch (c) {
  case GRPC_STATUS_CANCELLED:
  case GRPC_STATUS_DEADLINE_EXCEEDED:
  case GRPC_STATUS_ABORTED:
  case GRPC_STATUS_OUT_OF_RANGE:
  case GRPC_STATUS_UNAVAILABLE:
  case GRPC_STATUS_DATA_LOSS:
    return true;
  case GRPC_STATUS_RESOURCE_EXHAUSTED:
    return has_retry_info;
  default:
    return false;
  }
}

/* Reads a whole byte buffer into one slice (decompressed by gRPC). */
static grpc_slice read_all(grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader reader;
  if (!bb || !grpc_byte_buffer_reader_init(&reader, bb))
    return grpc_empty_slice();
  grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  return s;
}

/* The status details a server attached (grpc-status-details-bin: a google.rpc.Status, which gRPC
 * core has already base64-decoded). Returns true when st was filled. */
static bool find_status_details(const grpc_metadata_array *md, struct otlp_exp_status *st) {
  for (size_t i = 0; i < md->count; i++) {
    if (!grpc_slice_str_cmp(md->metadata[i].key, "grpc-status-details-bin"))
      return otlp_exp__status_from_proto(GRPC_SLICE_START_PTR(md->metadata[i].value),
                                         GRPC_SLICE_LENGTH(md->metadata[i].value), st) == 0;
  }
  return false;
}

/* The batch's bytes go to gRPC without a copy: the slice holds a reference to the batch, which
 * gRPC drops (from whichever thread) when it is done with the message. */
static void unref_batch(void *arg) {
  otc_batch_unref(arg);
}

static void classify(struct otlp_grpc_exporter *e, struct otc_batch *b, grpc_status_code status,
                     grpc_slice details, const grpc_metadata_array *trailers,
                     grpc_byte_buffer *response, struct otc_send_result *res) {
  if (status == GRPC_STATUS_OK) {
    res->err = 0;
    grpc_slice body = read_all(response);
    struct otlp_exp_partial p;
    if (otlp_exp__partial_from_proto(b->signal, GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body),
                                     &p) == 0)
      otlp_exp__report_partial(e->id, &e->partial_log, b->signal, b->items, &p);
    else
      otc_warn(e->id, "the server's Export response is not a valid protobuf message");
    grpc_slice_unref(body);
    return;
  }
  struct otlp_exp_status st;
  bool has_details = find_status_details(trailers, &st);
  bool has_retry_info = has_details && st.retry_delay_ns >= 0;
  bool retry = status_retryable(status, has_retry_info);
  res->err = retry ? OTC_ERR_RETRYABLE : OTC_ERR_PERMANENT;
  if (retry && has_retry_info)
    res->retry_after_ns = st.retry_delay_ns;
  char msg[256];
  size_t n = GRPC_SLICE_LENGTH(details);
  if (n == 0 && has_details) {
    snprintf(msg, sizeof msg, "%s", st.message);
  } else {
    if (n >= sizeof msg)
      n = sizeof msg - 1;
    memcpy(msg, GRPC_SLICE_START_PTR(details), n);
    msg[n] = '\0';
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] > 0x7e)
        msg[i] = '?';
  }
  /* "gRPC <CODE>" first: the helper derives the drop reason label from it. The rest is for people
   * and logs, so a long message is cut to fit. */
  snprintf(res->reason, sizeof res->reason, "gRPC %s: %.*s", status_name(status),
           (int)(sizeof res->reason - 32), msg[0] ? msg : "(no message)");
}

/* The request message over the batch's bytes without copying them: one slice, or one per part of
 * a joined batch, each holding a reference to the batch it points into. Returns NULL when out of
 * memory. */
static grpc_byte_buffer *request_message(struct otc_batch *b) {
  struct otc_batch *one[1] = {b};
  struct otc_batch *const *parts = b->n_parts ? b->parts : one;
  size_t n = b->n_parts ? b->n_parts : 1;
  grpc_slice local[32];
  grpc_slice *slices = n <= 32 ? local : malloc(n * sizeof *slices);
  if (!slices)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (parts[i]->len)
      slices[k++] = grpc_slice_new_with_user_data(parts[i]->data, parts[i]->len, unref_batch,
                                                  otc_batch_ref(parts[i]));
  if (k == 0)
    slices[k++] = grpc_empty_slice();
  /* The byte buffer takes its own reference on each slice. */
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, k);
  for (size_t i = 0; i < k; i++)
    grpc_slice_unref(slices[i]);
  if (slices != local)
    free(slices);
  return bb;
}

static void grpc_send(void *ctx, unsigned worker, struct otc_batch *b,
                      struct otc_send_result *res) {
  struct otlp_grpc_exporter *e = ctx;
  grpc_call *call = NULL;
  grpc_byte_buffer *request = NULL, *response = NULL;
  grpc_metadata_array initial, trailers;
  grpc_slice details = grpc_empty_slice();
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  const char *error_string = NULL;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailers);

  if (!e->channel || (unsigned)b->signal >= OTC_SIGNAL_COUNT) {
    res->err = OTC_ERR_PERMANENT;
    snprintf(res->reason, sizeof res->reason, "the exporter is not started");
    goto cleanup;
  }
  struct grpc_worker *w = &e->workers[worker < e->n_workers ? worker : 0];
  if (!w->cq && !(w->cq = grpc_completion_queue_create_for_pluck(NULL))) {
    res->err = OTC_ERR_NOMEM;
    snprintf(res->reason, sizeof res->reason, "cannot create a completion queue");
    goto cleanup;
  }
  gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  if (e->cfg.timeout_ns > 0)
    deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                            gpr_time_from_nanos(e->cfg.timeout_ns, GPR_TIMESPAN));
  grpc_slice method = grpc_slice_from_static_string(methods[b->signal]);
  call = grpc_channel_create_call(e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, method, NULL,
                                  deadline, NULL);
  if (!call) {
    res->err = OTC_ERR_IO;
    snprintf(res->reason, sizeof res->reason, "cannot create a gRPC call");
    goto cleanup;
  }
  request = request_message(b);
  if (!request) {
    res->err = OTC_ERR_NOMEM;
    snprintf(res->reason, sizeof res->reason, "cannot build the request message");
    goto cleanup;
  }

  for (size_t i = 0; i < e->n_md; i++) {
    w->md[i].key = grpc_slice_from_static_string(e->md_keys[i]);
    w->md[i].value = grpc_slice_from_static_string(e->md_values[i]);
  }
  size_t n_md = e->n_md;
  if (e->auth) {
    /* Read per call: a token file may have been rotated since the last one. */
    int arc = otc_bearertokenauth_value(e->auth, w->auth_value, sizeof w->auth_value);
    if (arc != 0) {
      res->err = arc == OTC_ERR_IO ? OTC_ERR_RETRYABLE : OTC_ERR_PERMANENT;
      snprintf(res->reason, sizeof res->reason, "no bearer token to send: %s",
               arc == OTC_ERR_IO ? "the token file is empty" : "token too long");
      goto cleanup;
    }
    w->md[n_md].key = grpc_slice_from_static_string(e->auth_key);
    w->md[n_md].value = grpc_slice_from_static_string(w->auth_value);
    n_md++;
  }
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = n_md;
  ops[0].data.send_initial_metadata.metadata = n_md ? w->md : NULL;
  if (e->cfg.wait_for_ready)
    ops[0].flags =
        GRPC_INITIAL_METADATA_WAIT_FOR_READY | GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &response;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailers;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  ops[5].data.recv_status_on_client.error_string = &error_string;
  grpc_call_error ce = grpc_call_start_batch(call, ops, 6, w, NULL);
  if (ce != GRPC_CALL_OK) {
    res->err = OTC_ERR_IO;
    snprintf(res->reason, sizeof res->reason, "cannot start the gRPC call (error %d)", (int)ce);
    goto cleanup;
  }
  /* The call's deadline bounds the wait (with timeout 0 the server's answer does). */
  grpc_event ev = grpc_completion_queue_pluck(w->cq, w, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
    res->err = OTC_ERR_IO;
    snprintf(res->reason, sizeof res->reason, "the gRPC call failed");
    goto cleanup;
  }
  classify(e, b, status, details, &trailers, response, res);

cleanup:
  if (res->err != 0 && error_string)
    otc_debug(e->id, "gRPC call failed: %s", error_string);
  gpr_free((void *)error_string);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailers);
  if (request)
    grpc_byte_buffer_destroy(request);
  if (response)
    grpc_byte_buffer_destroy(response);
  if (call)
    grpc_call_unref(call);
}

/* Reads a PEM file into a NUL-terminated malloc'd string (caller frees); NULL on failure. */
static char *read_pem(const char *id, const char *path) {
  char *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    otc_error(id, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || sb.st_size <= 0 || sb.st_size > MAX_PEM_BYTES) {
    otc_error(id, "%s is empty or larger than %d bytes", path, MAX_PEM_BYTES);
    goto cleanup;
  }
  buf = malloc((size_t)sb.st_size + 1);
  if (!buf)
    goto cleanup;
  size_t n = fread(buf, 1, (size_t)sb.st_size, f);
  buf[n] = '\0';
  if (n == 0) {
    otc_error(id, "cannot read %s", path);
    free(buf);
    buf = NULL;
  }
cleanup:
  fclose(f);
  return buf;
}

static grpc_channel_credentials *make_credentials(struct otlp_grpc_exporter *e) {
  if (!e->use_tls)
    return grpc_insecure_credentials_create();
  grpc_channel_credentials *creds = NULL;
  char *roots = NULL, *cert = NULL, *key = NULL;
  const char *ca = e->tls.tls_ca_file, *cf = e->tls.tls_cert_file, *kf = e->tls.tls_key_file;
  if (ca && *ca && !(roots = read_pem(e->id, ca)))
    goto cleanup;
  if (cf && *cf && kf && *kf && (!(cert = read_pem(e->id, cf)) || !(key = read_pem(e->id, kf))))
    goto cleanup;
  grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
  /* NULL roots: gRPC's default roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH or the system's). The
   * strings are copied by gRPC. */
  creds = grpc_ssl_credentials_create(roots, cert ? &pair : NULL, NULL, NULL);
cleanup:
  free(roots);
  free(cert);
  free(key);
  return creds;
}

static int grpc_exp_start(void *ctx) {
  struct otlp_grpc_exporter *e = ctx;
  int rc = 0;
  grpc_channel_credentials *creds = NULL;
  if (e->channel)
    return 0;
  /* One grpc_init per exporter, balanced by the grpc_shutdown in destroy. */
  if (!e->grpc_inited)
    grpc_init();
  e->grpc_inited = true;
  creds = make_credentials(e);
  if (!creds) {
    otc_error(e->id, "cannot set up the TLS credentials");
    rc = OTC_ERR_CONFIG;
    goto cleanup;
  }
  grpc_arg args[8];
  size_t n = 0;
  args[n].type = GRPC_ARG_STRING;
  args[n].key = GRPC_ARG_PRIMARY_USER_AGENT_STRING;
  args[n++].value.string = "otelc-collector/" OTC_VERSION;
  if (e->cfg.compression && strcmp(e->cfg.compression, "gzip") == 0) {
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
    args[n++].value.integer = GRPC_COMPRESS_GZIP;
  }
  if (e->cfg.authority && *e->cfg.authority) {
    args[n].type = GRPC_ARG_STRING;
    args[n].key = GRPC_ARG_DEFAULT_AUTHORITY;
    args[n++].value.string = (char *)e->cfg.authority;
  }
  if (e->cfg.balancer_name && *e->cfg.balancer_name) {
    args[n].type = GRPC_ARG_STRING;
    args[n].key = GRPC_ARG_LB_POLICY_NAME;
    args[n++].value.string = (char *)e->cfg.balancer_name;
  }
  if (e->keepalive_set && e->keepalive.time_ns > 0) {
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    args[n++].value.integer =
        (int)(e->keepalive.time_ns / 1000000 > INT32_MAX ? INT32_MAX
                                                         : e->keepalive.time_ns / 1000000);
  }
  if (e->keepalive_set && e->keepalive.timeout_ns > 0) {
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[n++].value.integer =
        (int)(e->keepalive.timeout_ns / 1000000 > INT32_MAX ? INT32_MAX
                                                            : e->keepalive.timeout_ns / 1000000);
  }
  if (e->keepalive_set && e->keepalive.permit_without_stream) {
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
    args[n++].value.integer = 1;
  }
  grpc_channel_args cargs = {.num_args = n, .args = args};
  e->channel = grpc_channel_create(e->target, creds, &cargs);
  if (!e->channel) {
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  for (size_t i = 0; i < e->n_workers; i++) {
    e->workers[i].md = calloc(e->n_md + 1, sizeof *e->workers[i].md);
    if (!e->workers[i].md) {
      rc = OTC_ERR_NOMEM;
      goto cleanup;
    }
  }
  rc = otc_exporter_helper_start(e->helper);
cleanup:
  if (creds)
    grpc_channel_credentials_release(creds);
  return rc;
}

static int grpc_exp_consume(void *ctx, struct otc_batch *b) {
  struct otlp_grpc_exporter *e = ctx;
  return otc_exporter_helper_consume(e->helper, b);
}

static int grpc_exp_shutdown(void *ctx) {
  struct otlp_grpc_exporter *e = ctx;
  otc_exporter_helper_shutdown(e->helper, SHUTDOWN_DRAIN_NS);
  return 0;
}

static void grpc_exp_destroy(void *ctx) {
  struct otlp_grpc_exporter *e = ctx;
  if (!e)
    return;
  /* The helper joins the consumer threads first: no call is in flight after this. */
  otc_exporter_helper_destroy(e->helper);
  for (size_t i = 0; e->workers && i < e->n_workers; i++) {
    grpc_completion_queue *cq = e->workers[i].cq;
    if (cq) {
      grpc_completion_queue_shutdown(cq);
      /* Nothing is pending, so this returns the shutdown event at once. */
      grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
      grpc_completion_queue_destroy(cq);
    }
    free(e->workers[i].md);
  }
  if (e->channel)
    grpc_channel_destroy(e->channel);
  if (e->grpc_inited)
    grpc_shutdown();
  for (size_t i = 0; i < e->n_md; i++)
    free(e->md_keys[i]);
  free(e->md_keys);
  free(e->md_values);
  free(e->workers);
  free(e->target);
  free(e->id);
  free(e);
}

static void *grpc_exp_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                             struct otc_cfg_err *err) {
  struct otlp_grpc_exporter *e = calloc(1, sizeof *e);
  if (!e) {
    otc_cfg_error(err, cfg, "out of memory");
    return NULL;
  }
  e->id = strdup(args->id ? args->id : "otlp_grpc");
  struct otc_queue_config q;
  struct otc_retry_config r;
  if (!e->id) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  if (parse_config(e, args, cfg, &q, &r, err) != 0 ||
      otc_queue_config_bind_storage(&q, args, err) != 0)
    goto fail;
  /* With the queue disabled, sends run in the callers' threads as worker 0, serialized. */
  e->n_workers = q.enabled ? (size_t)q.num_consumers : 1;
  e->workers = calloc(e->n_workers, sizeof *e->workers);
  e->helper = otc_exporter_helper_create(e->id, &q, &r, grpc_send, e);
  if (!e->workers || !e->helper) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  return e;
fail:
  grpc_exp_destroy(e);
  return NULL;
}

/* Joined batches go out as one slice per part (request_message). */
static bool grpc_exp_takes_parts(void *ctx) {
  struct otlp_grpc_exporter *e = ctx;
  return otc_exporter_helper_takes_parts(e->helper);
}

static const char *const grpc_aliases[] = {"otlp", NULL};

const struct otc_component_ops otc_exporter_otlp_grpc = {
    .type = "otlp_grpc",
    .aliases = grpc_aliases,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = grpc_exp_create,
    .start = grpc_exp_start,
    .consume = grpc_exp_consume,
    .takes_parts = grpc_exp_takes_parts,
    .shutdown = grpc_exp_shutdown,
    .destroy = grpc_exp_destroy,
};
