/* The Prometheus remote-write exporter, otelcol-contrib's `prometheus_remote_write` (alias
 * `prometheusremotewrite`): metrics translated by prw_translate.c, packed WriteRequests
 * snappy-compressed (block format) and POSTed with the Remote-Write 1.0 headers.
 *
 * Ordering. Prometheus refuses samples older than the newest of their series, so batches must
 * reach it in order. As the reference does by default, the sending queue has a single consumer
 * (batches leave in the order they came), and remote_write_queue.num_consumers (or
 * max_batch_request_parallelism) is the number of requests of one batch sent in parallel when the
 * batch is bigger than max_batch_size_bytes: each series sits whole in one request, so parallel
 * requests never carry samples of the same series.
 *
 * Retries. The helper retries a batch as a whole; the requests of a batch that were already
 * delivered are remembered (with the translation, so that a retry does not translate again) and
 * only the others are sent again. A request refused with a 4xx is given up (the batch is then
 * counted as failed once the others are settled); 5xx, 429 and connection failures are retried. */
#include <pthread.h>
#include <snappy-c.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/exporter_helper.h"
#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "prometheusremotewrite/prw_translate.h"

#define SHUTDOWN_DEADLINE_NS (10LL * 1000000000LL)
#define PRW_DEFAULT_QUEUE_SIZE 10000
#define PRW_DEFAULT_REQUEST_PARALLELISM 5
/* A drop reason is logged at most this often (it repeats with every batch of a delta source). */
#define DROP_LOG_INTERVAL_NS (60LL * 1000000000LL)
#define MAX_PARALLELISM 256

/* --- configuration --- */

struct queue_cfg {
  bool enabled;
  int64_t queue_size;
  int64_t num_consumers;
};

struct resource_cfg {
  bool enabled;
  bool exclude_service_attributes;
  struct otc_cfg_strlist included, excluded;
};

struct enabled_cfg {
  bool enabled;
};

struct prw_config {
  struct otc_http_client_config top;
  const struct otc_cfg_node *http;
  const char *namespace_;
  const struct otc_cfg_node *external_labels;
  const struct otc_cfg_node *remote_write_queue;
  const struct otc_cfg_node *retry_on_failure;
  int64_t max_batch_size_bytes;
  int64_t max_batch_request_parallelism;
  const struct otc_cfg_node *resource_to_telemetry_conversion;
  const struct otc_cfg_node *resource_constant_labels;
  const struct otc_cfg_node *target_info;
  bool disable_scope_info;
  bool add_metric_suffixes;
  const char *translation_strategy;
  bool send_metadata;
  const char *protobuf_message;
  const struct otc_cfg_node *include_metadata_keys;
  bool convert_explicit_histograms_to_nhcb;
  bool keep_classic_histograms;
};

#define PC(m) offsetof(struct prw_config, m)

static const struct otc_cfg_field prw_own_fields[] = {
    {"http", OTC_CFGK_NODE, NULL, PC(http), 0, 0},
    {"namespace", OTC_CFGK_STRING, "", PC(namespace_), 0, 0},
    {"external_labels", OTC_CFGK_NODE, NULL, PC(external_labels), 0, 0},
    {"remote_write_queue", OTC_CFGK_NODE, NULL, PC(remote_write_queue), 0, 0},
    {"retry_on_failure", OTC_CFGK_NODE, NULL, PC(retry_on_failure), 0, 0},
    {"max_batch_size_bytes", OTC_CFGK_INT, "3000000", PC(max_batch_size_bytes), 0, 0},
    {"max_batch_request_parallelism", OTC_CFGK_INT, "0", PC(max_batch_request_parallelism), 0, 0},
    {"resource_to_telemetry_conversion", OTC_CFGK_NODE, NULL, PC(resource_to_telemetry_conversion),
     0, 0},
    {"resource_constant_labels", OTC_CFGK_NODE, NULL, PC(resource_constant_labels), 0, 0},
    {"target_info", OTC_CFGK_NODE, NULL, PC(target_info), 0, 0},
    {"disable_scope_info", OTC_CFGK_BOOL, "false", PC(disable_scope_info), 0, 0},
    {"add_metric_suffixes", OTC_CFGK_BOOL, "true", PC(add_metric_suffixes), 0, 0},
    {"translation_strategy", OTC_CFGK_STRING, "", PC(translation_strategy), 0, 0},
    {"send_metadata", OTC_CFGK_BOOL, "false", PC(send_metadata), 0, 0},
    {"protobuf_message", OTC_CFGK_STRING, "prometheus.WriteRequest", PC(protobuf_message), 0, 0},
    {"include_metadata_keys", OTC_CFGK_NODE, NULL, PC(include_metadata_keys), 0, 0},
    {"convert_explicit_histograms_to_nhcb", OTC_CFGK_BOOL, "false",
     PC(convert_explicit_histograms_to_nhcb), 0, 0},
    /* Without convert_explicit_histograms_to_nhcb it has no effect in the reference either. */
    {"keep_classic_histograms", OTC_CFGK_BOOL, "false", PC(keep_classic_histograms), 0, 0},
    /* Not implemented; ignoring them loses no data: the write-ahead log only adds durability
     * across restarts, and _created series are off by default (and gone from v0.162). */
    {"wal", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"export_created_metric", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
};

#undef PC

/* --- the exporter --- */

struct body {
  uint8_t *data; /* snappy-compressed WriteRequest */
  size_t len;
  bool done; /* delivered, or refused for good */
};

/* The batch being sent, kept across the helper's retries of it. */
struct pending {
  bool valid;
  const struct otc_batch *b;
  const uint8_t *data;
  size_t len;
  bool has_digest;
  uint64_t digest;
  struct body *bodies;
  size_t n;
  size_t charged;
  bool refused; /* some request was refused for good */
  char refused_reason[160];
};

struct prw_exporter {
  char *id;
  const char *url;
  struct otc_http_client_config http;
  char **headers; /* "Name: value" lines, NULL-terminated */
  struct otc_prw_settings settings;
  struct otc_prw_label *external;
  char **ext_names;
  size_t n_external;
  size_t parallelism;
  struct otc_queue_config q;
  struct otc_retry_config r;
  struct otc_exporter_helper *helper;
  struct otc_http_client **clients;
  pthread_mutex_t send_mu; /* one batch at a time; guards pending and scratch */
  struct pending pend;
  struct otc_prw_scratch *scratch; /* translation memory kept between batches (NULL: none) */
  pthread_mutex_t log_mu;
  int64_t last_drop_log[OTC_PRW_DROP_COUNT];
  struct otc_counter *translated_series, *sent_batches, *failed_translations;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A fast digest of the batch bytes: it only has to tell a retried batch from a new one that the
 * allocator placed at the same address with the same length. */
static uint64_t digest(const uint8_t *p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  for (; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

static void pending_clear(struct pending *p) {
  for (size_t i = 0; i < p->n; i++)
    free(p->bodies[i].data);
  free(p->bodies);
  otc_mem_release(p->charged);
  memset(p, 0, sizeof *p);
}

static bool pending_matches(struct pending *p, const struct otc_batch *b) {
  return p->valid && p->b == b && p->data == b->data && p->len == b->len && p->has_digest &&
         p->digest == digest(b->data, b->len);
}

static void log_drops(struct prw_exporter *e, const struct otc_prw_write_set *ws) {
  bool any = false;
  for (int r = 0; r < OTC_PRW_DROP_COUNT; r++) {
    if (!ws->dropped[r])
      continue;
    any = true;
    const char *reason = otc_prw_drop_reason_name((enum otc_prw_drop_reason)r);
    otc_count_dropped(e->id, OTC_SIGNAL_METRICS, reason, ws->dropped[r]);
    int64_t t = now_ns();
    pthread_mutex_lock(&e->log_mu);
    bool log = e->last_drop_log[r] == 0 || t - e->last_drop_log[r] >= DROP_LOG_INTERVAL_NS;
    if (log)
      e->last_drop_log[r] = t;
    pthread_mutex_unlock(&e->log_mu);
    if (!log)
      continue;
    if (r == OTC_PRW_DROP_DELTA_TEMPORALITY)
      otc_warn(e->id,
               "dropped %llu data points of delta temporality: remote write takes cumulative data "
               "only (convert with the deltatocumulative processor or a cumulative SDK setting); "
               "logged once a minute, counted in otelcol_dropped_items",
               (unsigned long long)ws->dropped[r]);
    else
      otc_warn(e->id, "dropped %llu data points (%s); logged once a minute",
               (unsigned long long)ws->dropped[r], reason);
  }
  if (any)
    otc_counter_add(e->failed_translations, 1);
}

/* Translates and compresses batch b into e->pend. Fills res and returns non-zero on failure. */
static int prepare(struct prw_exporter *e, const struct otc_batch *b, struct otc_send_result *res) {
  struct otc_prw_write_set ws;
  int rc = otc_prw_translate_with(e->scratch, b->data, b->len, &e->settings, &ws);
  log_drops(e, &ws);
  if (rc != 0) {
    res->err = rc == OTC_ERR_INVALID ? OTC_ERR_PERMANENT : rc;
    snprintf(res->reason, sizeof res->reason, "%s",
             rc == OTC_ERR_INVALID ? "undecodable metrics batch"
                                   : "out of memory translating metrics");
    goto cleanup;
  }
  otc_counter_add(e->translated_series, ws.series);
  struct pending *p = &e->pend;
  p->bodies = calloc(ws.n_requests ? ws.n_requests : 1, sizeof *p->bodies);
  if (!p->bodies) {
    rc = res->err = OTC_ERR_NOMEM;
    snprintf(res->reason, sizeof res->reason, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < ws.n_requests; i++) {
    size_t cap = snappy_max_compressed_length(ws.requests[i].len);
    otc_mem_charge(cap);
    p->charged += cap;
    struct body *bd = &p->bodies[p->n++];
    bd->data = malloc(cap ? cap : 1);
    bd->len = cap;
    if (!bd->data || snappy_compress((const char *)ws.requests[i].data, ws.requests[i].len,
                                     (char *)bd->data, &bd->len) != SNAPPY_OK) {
      rc = res->err = OTC_ERR_NOMEM;
      snprintf(res->reason, sizeof res->reason, "snappy compression failed");
      goto cleanup;
    }
  }
  p->valid = true;
  p->b = b;
  p->data = b->data;
  p->len = b->len;
cleanup:
  otc_prw_write_set_free(&ws);
  if (rc != 0)
    pending_clear(&e->pend);
  return rc;
}

/* One round of sending the pending requests that are not done, shared by the sending threads. */
struct round {
  struct prw_exporter *e;
  pthread_mutex_t mu;
  size_t next;
  bool stop;     /* a retryable failure: leave the rest for the next attempt */
  int retry_err; /* the first retryable error */
  int64_t retry_after_ns;
  char retry_reason[160];
};

struct worker {
  struct round *rd;
  unsigned index;
};

static const char *const rw_headers_fixed = "X-Prometheus-Remote-Write-Version: 0.1.0";

static void send_one(struct prw_exporter *e, unsigned worker, struct body *bd, struct round *rd) {
  struct otc_send_result r;
  otc_http_client_post(e->clients[worker], e->url, "application/x-protobuf", "snappy",
                       (const char *const *)e->headers, bd->data, bd->len, &r, NULL, NULL);
  otc_counter_add(e->sent_batches, 1);
  pthread_mutex_lock(&rd->mu);
  if (r.err == 0) {
    bd->done = true;
  } else if (!otc_err_retryable(r.err)) {
    bd->done = true;
    if (!e->pend.refused) {
      e->pend.refused = true;
      snprintf(e->pend.refused_reason, sizeof e->pend.refused_reason, "%s", r.reason);
    }
  } else {
    if (!rd->retry_err) {
      rd->retry_err = r.err;
      snprintf(rd->retry_reason, sizeof rd->retry_reason, "%s", r.reason);
    }
    if (r.retry_after_ns > rd->retry_after_ns)
      rd->retry_after_ns = r.retry_after_ns;
    rd->stop = true;
  }
  pthread_mutex_unlock(&rd->mu);
}

static void *round_worker(void *arg) {
  struct worker *w = arg;
  struct round *rd = w->rd;
  struct pending *p = &rd->e->pend;
  for (;;) {
    pthread_mutex_lock(&rd->mu);
    while (rd->next < p->n && p->bodies[rd->next].done)
      rd->next++;
    size_t i = rd->next;
    bool go = !rd->stop && i < p->n;
    if (go)
      rd->next++;
    pthread_mutex_unlock(&rd->mu);
    if (!go)
      break;
    send_one(rd->e, w->index, &p->bodies[i], rd);
  }
  return NULL;
}

static void send_pending(struct prw_exporter *e, struct otc_send_result *res) {
  struct pending *p = &e->pend;
  size_t todo = 0;
  for (size_t i = 0; i < p->n; i++)
    todo += !p->bodies[i].done;
  struct round rd;
  memset(&rd, 0, sizeof rd);
  rd.e = e;
  pthread_mutex_init(&rd.mu, NULL);
  size_t par = todo < e->parallelism ? todo : e->parallelism;
  pthread_t th[MAX_PARALLELISM];
  struct worker w[MAX_PARALLELISM];
  size_t started = 0;
  for (size_t i = 1; i < par; i++) {
    w[i] = (struct worker){&rd, (unsigned)i};
    if (pthread_create(&th[started + 1], NULL, round_worker, &w[i]) != 0)
      break;
    started++;
  }
  if (todo) {
    w[0] = (struct worker){&rd, 0};
    round_worker(&w[0]);
  }
  for (size_t i = 1; i <= started; i++)
    pthread_join(th[i], NULL);
  pthread_mutex_destroy(&rd.mu);

  bool all_done = true;
  for (size_t i = 0; i < p->n; i++)
    all_done = all_done && p->bodies[i].done;
  if (!all_done) {
    res->err = rd.retry_err ? rd.retry_err : OTC_ERR_RETRYABLE;
    res->retry_after_ns = rd.retry_after_ns;
    snprintf(res->reason, sizeof res->reason, "%s", rd.retry_reason);
  } else if (p->refused) {
    res->err = OTC_ERR_PERMANENT;
    snprintf(res->reason, sizeof res->reason, "%s", p->refused_reason);
  } else {
    res->err = 0;
  }
}

static void prw_send(void *ctx, unsigned worker, struct otc_batch *b, struct otc_send_result *res) {
  (void)worker; /* one batch at a time, whatever thread the helper sends from */
  struct prw_exporter *e = ctx;
  pthread_mutex_lock(&e->send_mu);
  if (!pending_matches(&e->pend, b)) {
    pending_clear(&e->pend);
    if (prepare(e, b, res) != 0)
      goto done;
  }
  send_pending(e, res);
  if (otc_err_retryable(res->err)) {
    if (!e->pend.has_digest) {
      e->pend.digest = digest(b->data, b->len);
      e->pend.has_digest = true;
    }
  } else {
    pending_clear(&e->pend);
  }
done:
  pthread_mutex_unlock(&e->send_mu);
}

/* --- configuration checks --- */

static bool reserved_header(const char *name) {
  static const char *const reserved[] = {"Content-Encoding", "Content-Type", "User-Agent",
                                         "X-Prometheus-Remote-Write-Version"};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (strcasecmp(name, reserved[i]) == 0)
      return true;
  return false;
}

/* The header lines sent with every request: the remote-write version, then the configured ones
 * except those the protocol fixes (the reference ignores those too). */
static int build_headers(struct prw_exporter *e, const struct otc_cfg_node *h,
                         struct otc_cfg_err *err) {
  size_t n = h && h->type == OTC_CFG_MAP ? h->n_children : 0;
  e->headers = calloc(n + 2, sizeof *e->headers);
  if (!e->headers || !(e->headers[0] = strdup(rw_headers_fixed)))
    return otc_cfg_error(err, h, "out of memory");
  size_t o = 1;
  for (size_t i = 0; i < n; i++) {
    const struct otc_cfg_node *c = h->children[i];
    if (reserved_header(c->key)) {
      otc_warn(e->id,
               "header %s is set by the remote-write protocol; the configured value is "
               "ignored",
               c->key);
      continue;
    }
    const char *v = c->type == OTC_CFG_SCALAR && c->value ? c->value : "";
    size_t len = strlen(c->key) + strlen(v) + 3;
    char *line = malloc(len);
    if (!line)
      return otc_cfg_error(err, h, "out of memory");
    /* "Name;" is curl's way to send a header with an empty value. */
    if (*v)
      snprintf(line, len, "%s: %s", c->key, v);
    else
      snprintf(line, len, "%s;", c->key);
    e->headers[o++] = line;
  }
  return 0;
}

static int parse_external_labels(struct prw_exporter *e, const struct otc_cfg_node *n,
                                 struct otc_cfg_err *err) {
  if (!n || n->type == OTC_CFG_NULL)
    return 0;
  if (n->type != OTC_CFG_MAP)
    return otc_cfg_error(err, n, "external_labels must be a map of label names to values");
  e->external = calloc(n->n_children ? n->n_children : 1, sizeof *e->external);
  e->ext_names = calloc(n->n_children ? n->n_children : 1, sizeof *e->ext_names);
  if (!e->external || !e->ext_names)
    return otc_cfg_error(err, n, "out of memory");
  for (size_t i = 0; i < n->n_children; i++) {
    const struct otc_cfg_node *c = n->children[i];
    if (c->type != OTC_CFG_SCALAR && c->type != OTC_CFG_NULL)
      return otc_cfg_error(err, c, "external label %s: the value must be a string", c->key);
    const char *v = c->type == OTC_CFG_SCALAR && c->value ? c->value : "";
    if (!*c->key || !*v)
      return otc_cfg_error(err, c, "external labels configuration contains an empty key or value");
    char *name = prw__label_name(c->key);
    if (!name)
      return otc_cfg_error(err, c, "external label %s: not a valid label name", c->key);
    for (size_t j = 0; j < e->n_external; j++) {
      if (strcmp(e->external[j].name, name) == 0) {
        free(name);
        return otc_cfg_error(err, c,
                             "external label %s: the same label name as another one "
                             "after sanitizing",
                             c->key);
      }
    }
    e->ext_names[e->n_external] = name;
    e->external[e->n_external++] = (struct otc_prw_label){name, v};
  }
  return 0;
}

static int parse_resource(const struct otc_cfg_node *n, struct resource_cfg *out,
                          const char *component, struct otc_cfg_err *err) {
  static const struct otc_cfg_field fields[] = {
      {"enabled", OTC_CFGK_BOOL, "false", offsetof(struct resource_cfg, enabled), 0, 0},
      {"exclude_service_attributes", OTC_CFGK_BOOL, "false",
       offsetof(struct resource_cfg, exclude_service_attributes), 0, 0},
      {"included", OTC_CFGK_STRLIST, NULL, offsetof(struct resource_cfg, included), 0, 0},
      {"excluded", OTC_CFGK_STRLIST, NULL, offsetof(struct resource_cfg, excluded), 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  memset(out, 0, sizeof *out);
  int rc = otc_cfg_apply(fields, n, out, component, err);
  if (rc != 0)
    return rc;
  if ((out->enabled || out->exclude_service_attributes) && (out->included.n || out->excluded.n))
    return otc_cfg_error(err, n,
                         "cannot configure both legacy enabled/exclude_service_attributes and "
                         "included/excluded patterns; enabled and exclude_service_attributes are "
                         "deprecated");
  return 0;
}

static bool resource_empty(const struct resource_cfg *r) {
  return !r->enabled && !r->exclude_service_attributes && !r->included.n && !r->excluded.n;
}

static void prw_destroy(void *ctx);

static void *prw_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                        struct otc_cfg_err *err) {
  const char *id = args->id ? args->id : "prometheus_remote_write";
  struct prw_exporter *e = calloc(1, sizeof *e);
  struct prw_config c;
  memset(&c, 0, sizeof c);
  if (!e || !(e->id = strdup(id))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  pthread_mutex_init(&e->send_mu, NULL);
  /* Without one (out of memory) each batch is translated into fresh memory: slower, not wrong. */
  e->scratch = otc_prw_scratch_new();
  pthread_mutex_init(&e->log_mu, NULL);

  struct otc_cfg_field fields[OTC_HTTP_CLIENT_FIELDS + 32];
  size_t nf = otc_http_client_fields(fields, offsetof(struct prw_config, top), "");
  for (size_t i = 0; i < sizeof prw_own_fields / sizeof prw_own_fields[0]; i++)
    fields[nf++] = prw_own_fields[i];
  fields[nf] = (struct otc_cfg_field){NULL, 0, NULL, 0, 0, 0};
  if (otc_cfg_apply(fields, cfg, &c, id, err) != 0)
    goto fail;

  /* The nested http block wins over the top-level client keys when it is given. */
  struct otc_http_client_config http = c.top;
  const struct otc_cfg_node *http_at = cfg;
  if (c.http && c.http->type != OTC_CFG_NULL) {
    struct otc_cfg_field hf[OTC_HTTP_CLIENT_FIELDS + 1];
    size_t nh = otc_http_client_fields(hf, 0, "");
    hf[nh] = (struct otc_cfg_field){NULL, 0, NULL, 0, 0, 0};
    memset(&http, 0, sizeof http);
    if (otc_cfg_apply(hf, c.http, &http, id, err) != 0)
      goto fail;
    http_at = c.http;
  }
  if (http.compression && *http.compression && strcmp(http.compression, "snappy") != 0) {
    otc_cfg_error(err, otc_cfg_get(http_at, "compression"),
                  "compression type must be snappy (remote write always compresses with it)");
    goto fail;
  }
  http.compression = "none";
  if (otc_http_client_setup_auth(&http, args, err) != 0 ||
      otc_http_client_validate(&http, http_at, err) != 0)
    goto fail;
  if (build_headers(e, http.headers, err) != 0)
    goto fail;
  http.headers = NULL;
  e->http = http;
  e->url = http.endpoint;

  /* remote_write_queue → the helper's queue, with one consumer (see the file comment). */
  static const struct otc_cfg_field qf[] = {
      {"enabled", OTC_CFGK_BOOL, "true", offsetof(struct queue_cfg, enabled), 0, 0},
      {"queue_size", OTC_CFGK_INT, "10000", offsetof(struct queue_cfg, queue_size), 0, 0},
      {"num_consumers", OTC_CFGK_INT, "5", offsetof(struct queue_cfg, num_consumers), 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  struct queue_cfg q;
  if (otc_cfg_apply(qf, c.remote_write_queue, &q, id, err) != 0)
    goto fail;
  if (q.queue_size < 0) {
    otc_cfg_error(err, c.remote_write_queue, "remote write queue size can't be negative");
    goto fail;
  }
  if (q.enabled && q.queue_size == 0) {
    otc_cfg_error(err, c.remote_write_queue, "a 0 size queue will drop all the data");
    goto fail;
  }
  if (q.num_consumers < 0) {
    otc_cfg_error(err, c.remote_write_queue, "remote write consumer number can't be negative");
    goto fail;
  }
  if (q.queue_size > 10000000) {
    otc_cfg_error(err, c.remote_write_queue, "remote write queue size must be at most 10000000");
    goto fail;
  }
  e->q = (struct otc_queue_config){.enabled = q.enabled,
                                   .num_consumers = 1,
                                   .queue_size = q.queue_size ? q.queue_size : 1,
                                   .block_on_overflow = false};
  int64_t par = q.num_consumers;
  const struct otc_cfg_node *mbrp = otc_cfg_get(cfg, "max_batch_request_parallelism");
  if (mbrp && mbrp->type != OTC_CFG_NULL) {
    if (c.max_batch_request_parallelism < 1) {
      otc_cfg_error(err, mbrp, "max_batch_request_parallelism can't be set to below 1");
      goto fail;
    }
    par = c.max_batch_request_parallelism;
  }
  if (par < 1)
    par = 1;
  if (par > MAX_PARALLELISM)
    par = MAX_PARALLELISM;
  e->parallelism = (size_t)par;

  /* The reference's remote write retries first after 50ms, not the exporterhelper's 5s. */
  if (otc_retry_config_parse_with(c.retry_on_failure, "50ms", &e->r, id, err) != 0)
    goto fail;

  if (c.max_batch_size_bytes < 0) {
    otc_cfg_error(err, otc_cfg_get(cfg, "max_batch_size_bytes"),
                  "max_batch_size_bytes must be greater than 0");
    goto fail;
  }

  if (c.translation_strategy && *c.translation_strategy) {
    if (strcmp(c.translation_strategy, "UnderscoreEscapingWithSuffixes") == 0) {
      c.add_metric_suffixes = true;
    } else if (strcmp(c.translation_strategy, "UnderscoreEscapingWithoutSuffixes") == 0) {
      c.add_metric_suffixes = false;
    } else if (strcmp(c.translation_strategy, "NoUTF8EscapingWithSuffixes") == 0 ||
               strcmp(c.translation_strategy, "NoTranslation") == 0) {
      otc_cfg_error(err, otc_cfg_get(cfg, "translation_strategy"),
                    "translation strategy %s requires Prometheus Remote Write 2.0 (UTF-8 "
                    "support), which this exporter does not send",
                    c.translation_strategy);
      goto fail;
    } else {
      otc_cfg_error(err, otc_cfg_get(cfg, "translation_strategy"),
                    "invalid translation_strategy: %s", c.translation_strategy);
      goto fail;
    }
  }
  if (c.protobuf_message && *c.protobuf_message &&
      strcmp(c.protobuf_message, "prometheus.WriteRequest") != 0) {
    if (strcmp(c.protobuf_message, "io.prometheus.write.v2.Request") == 0)
      otc_cfg_error(err, otc_cfg_get(cfg, "protobuf_message"),
                    "remote write 2.0 (io.prometheus.write.v2.Request) is not supported; use "
                    "prometheus.WriteRequest");
    else
      otc_cfg_error(err, otc_cfg_get(cfg, "protobuf_message"),
                    "unknown remote write protobuf message \"%s\" (prometheus.WriteRequest)",
                    c.protobuf_message);
    goto fail;
  }
  if (c.include_metadata_keys && c.include_metadata_keys->type != OTC_CFG_NULL &&
      !(c.include_metadata_keys->type == OTC_CFG_SEQ && c.include_metadata_keys->n_children == 0)) {
    /* Without it, requests meant for a tenant (X-Scope-OrgID from the client) would all go out
     * without that header: refused rather than silently misrouted. */
    otc_cfg_error(err, c.include_metadata_keys,
                  "include_metadata_keys is not supported (client metadata is not kept)");
    goto fail;
  }
  if (c.convert_explicit_histograms_to_nhcb) {
    otc_cfg_error(err, otc_cfg_get(cfg, "convert_explicit_histograms_to_nhcb"),
                  "convert_explicit_histograms_to_nhcb is not supported: explicit-bucket "
                  "histograms are sent as classic _bucket/_sum/_count series");
    goto fail;
  }

  struct resource_cfg rtt, rcl;
  if (parse_resource(c.resource_to_telemetry_conversion, &rtt, id, err) != 0 ||
      parse_resource(c.resource_constant_labels, &rcl, id, err) != 0)
    goto fail;
  if (rcl.enabled || rcl.exclude_service_attributes) {
    otc_cfg_error(err, c.resource_constant_labels,
                  "enabled and exclude_service_attributes are not supported under "
                  "resource_constant_labels; use included and excluded instead");
    goto fail;
  }
  if (!resource_empty(&rtt) && !resource_empty(&rcl)) {
    otc_cfg_error(err, c.resource_constant_labels,
                  "cannot configure both resource_to_telemetry_conversion and "
                  "resource_constant_labels; resource_to_telemetry_conversion is deprecated");
    goto fail;
  }
  const struct resource_cfg *res = !resource_empty(&rcl) ? &rcl : &rtt;
  e->settings.resource_labels = OTC_PRW_RESOURCE_NONE;
  if (res->included.n || res->excluded.n) {
    e->settings.resource_labels = OTC_PRW_RESOURCE_MATCH;
    e->settings.resource_included = res->included.items;
    e->settings.n_resource_included = res->included.n;
    e->settings.resource_excluded = res->excluded.items;
    e->settings.n_resource_excluded = res->excluded.n;
  } else if (res->enabled) {
    e->settings.resource_labels =
        res->exclude_service_attributes ? OTC_PRW_RESOURCE_NO_SERVICE : OTC_PRW_RESOURCE_ALL;
  }

  struct enabled_cfg ti;
  static const struct otc_cfg_field tf[] = {
      {"enabled", OTC_CFGK_BOOL, "true", offsetof(struct enabled_cfg, enabled), 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  if (otc_cfg_apply(tf, c.target_info, &ti, id, err) != 0)
    goto fail;
  if (parse_external_labels(e, c.external_labels, err) != 0)
    goto fail;

  e->settings.namespace_ = c.namespace_;
  e->settings.add_metric_suffixes = c.add_metric_suffixes;
  e->settings.target_info = ti.enabled;
  e->settings.scope_info = !c.disable_scope_info;
  e->settings.send_metadata = c.send_metadata;
  e->settings.max_batch_bytes =
      c.max_batch_size_bytes ? (size_t)c.max_batch_size_bytes : OTC_PRW_DEFAULT_MAX_BATCH_BYTES;
  e->settings.external_labels = e->external;
  e->settings.n_external_labels = e->n_external;

  e->helper = otc_exporter_helper_create(e->id, &e->q, &e->r, prw_send, e);
  if (!e->helper) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  char idbuf[256], epbuf[512], labels[800];
  snprintf(labels, sizeof labels, "endpoint=\"%s\",exporter=\"%s\"",
           otc_metrics_escape_label(e->url, epbuf, sizeof epbuf),
           otc_metrics_escape_label(e->id, idbuf, sizeof idbuf));
  e->translated_series =
      otc_counter_get("otelcol_exporter_prometheusremotewrite_translated_time_series",
                      "Number of Prometheus time series that were translated "
                      "from OTel metrics",
                      labels);
  e->sent_batches = otc_counter_get("otelcol_exporter_prometheusremotewrite_sent_batches",
                                    "Number of remote write request batches sent to the remote "
                                    "write endpoint regardless of success or failure",
                                    labels);
  e->failed_translations =
      otc_counter_get("otelcol_exporter_prometheusremotewrite_failed_translations",
                      "Number of translation operations that failed to translate metrics from "
                      "Otel to Prometheus",
                      labels);
  otc_gauge_set(otc_gauge_get("otelcol_exporter_prometheusremotewrite_consumers",
                              "Number of configured workers to use to fan out the outgoing "
                              "requests",
                              labels),
                (double)e->parallelism);
  return e;

fail:
  prw_destroy(e);
  return NULL;
}

static int prw_start(void *ctx) {
  struct prw_exporter *e = ctx;
  if (!e->clients) {
    e->clients = calloc(e->parallelism, sizeof *e->clients);
    if (!e->clients)
      return OTC_ERR_NOMEM;
    /* The remote-write spec: retry every 5xx with backoff. */
    e->http.retry_server_errors = true;
    for (size_t i = 0; i < e->parallelism; i++) {
      e->clients[i] = otc_http_client_create(&e->http);
      if (!e->clients[i]) {
        otc_error(e->id, "cannot create the HTTP client");
        return OTC_ERR_NOMEM;
      }
    }
  }
  otc_exporter_helper_register_signals(e->helper, OTC_SIGNAL_BIT(OTC_SIGNAL_METRICS));
  return otc_exporter_helper_start(e->helper);
}

static int prw_consume(void *ctx, struct otc_batch *b) {
  struct prw_exporter *e = ctx;
  return otc_exporter_helper_consume(e->helper, b);
}

static int prw_shutdown(void *ctx) {
  struct prw_exporter *e = ctx;
  otc_exporter_helper_shutdown(e->helper, SHUTDOWN_DEADLINE_NS);
  return 0;
}

static void prw_destroy(void *ctx) {
  struct prw_exporter *e = ctx;
  if (!e)
    return;
  otc_exporter_helper_destroy(e->helper);
  pending_clear(&e->pend);
  otc_prw_scratch_free(e->scratch);
  for (size_t i = 0; e->clients && i < e->parallelism; i++)
    otc_http_client_destroy(e->clients[i]);
  free(e->clients);
  for (size_t i = 0; e->headers && e->headers[i]; i++)
    free(e->headers[i]);
  free(e->headers);
  for (size_t i = 0; i < e->n_external; i++)
    free(e->ext_names[i]);
  free(e->ext_names);
  free(e->external);
  pthread_mutex_destroy(&e->send_mu);
  pthread_mutex_destroy(&e->log_mu);
  free(e->id);
  free(e);
}

static const char *const prw_aliases[] = {"prometheusremotewrite", NULL};

const struct otc_component_ops otc_exporter_prometheus_remote_write = {
    .type = "prometheus_remote_write",
    .aliases = prw_aliases,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNAL_BIT(OTC_SIGNAL_METRICS),
    .mutates = false,
    .create = prw_create,
    .start = prw_start,
    .consume = prw_consume,
    .shutdown = prw_shutdown,
    .destroy = prw_destroy,
};
