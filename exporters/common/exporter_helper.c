/* The sending queue and the retry loop shared by the network exporters (see exporter_helper.h).
 *
 * One bounded FIFO of batch references per helper, guarded by one mutex, drained by num_consumers
 * threads. The queued batches keep their memory charge (they are references), so a full queue
 * shows in the memory limiter as well as in OTC_ERR_REFUSED at the receiver. The backoff follows
 * otelcol's exporterhelper: the randomized interval grows by `multiplier` up to `max_interval`, a
 * throttle delay from the destination (Retry-After, RetryInfo) is taken when it is longer, and a
 * retry whose start would fall after first attempt + max_elapsed_time is not made. */
#include "common/exporter_helper.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/persistent_queue.h"
#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "extensions/file_storage/file_storage.h"

#define NS_PER_S 1000000000LL
/* Longer waits than a year are "forever" for our purpose, and keep time arithmetic in range. */
#define MAX_DELAY_NS (366LL * 24 * 3600 * NS_PER_S)

/* --- configuration --- */

static const struct otc_cfg_node *child_or(const struct otc_cfg_node *n, const char *key) {
  const struct otc_cfg_node *c = otc_cfg_get(n, key);
  return c ? c : n;
}

int otc_retry_config_parse(const struct otc_cfg_node *n, struct otc_retry_config *out,
                           const char *component, struct otc_cfg_err *err) {
  return otc_retry_config_parse_with(n, "5s", out, component, err);
}

int otc_retry_config_parse_with(const struct otc_cfg_node *n, const char *default_initial_interval,
                                struct otc_retry_config *out, const char *component,
                                struct otc_cfg_err *err) {
  struct otc_cfg_field fields[] = {
      {"enabled", OTC_CFGK_BOOL, "true", offsetof(struct otc_retry_config, enabled), 0, 0},
      {"initial_interval", OTC_CFGK_DURATION, default_initial_interval,
       offsetof(struct otc_retry_config, initial_interval_ns), 0, 0},
      {"max_interval", OTC_CFGK_DURATION, "30s", offsetof(struct otc_retry_config, max_interval_ns),
       0, 0},
      {"max_elapsed_time", OTC_CFGK_DURATION, "300s",
       offsetof(struct otc_retry_config, max_elapsed_time_ns), 0, 0},
      {"multiplier", OTC_CFGK_DOUBLE, "1.5", offsetof(struct otc_retry_config, multiplier), 0, 0},
      {"randomization_factor", OTC_CFGK_DOUBLE, "0.5",
       offsetof(struct otc_retry_config, randomization_factor), 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  int rc = otc_cfg_apply(fields, n, out, component, err);
  if (rc != 0)
    return rc;
  if (!out->enabled)
    return 0;
  /* The checks and their wording are configretry.BackOffConfig.Validate's. */
  if (out->initial_interval_ns < 0)
    return otc_cfg_error(err, child_or(n, "initial_interval"),
                         "'initial_interval' must be non-negative");
  if (!(out->randomization_factor >= 0 && out->randomization_factor <= 1))
    return otc_cfg_error(err, child_or(n, "randomization_factor"),
                         "'randomization_factor' must be within [0, 1]");
  if (!(out->multiplier >= 0))
    return otc_cfg_error(err, child_or(n, "multiplier"), "'multiplier' must be non-negative");
  if (out->max_interval_ns < 0)
    return otc_cfg_error(err, child_or(n, "max_interval"), "'max_interval' must be non-negative");
  if (out->max_elapsed_time_ns < 0)
    return otc_cfg_error(err, child_or(n, "max_elapsed_time"),
                         "'max_elapsed_time' must be non-negative");
  if (out->max_elapsed_time_ns > 0) {
    if (out->max_elapsed_time_ns < out->initial_interval_ns)
      return otc_cfg_error(err, child_or(n, "max_elapsed_time"),
                           "'max_elapsed_time' must not be less than 'initial_interval'");
    if (out->max_elapsed_time_ns < out->max_interval_ns)
      return otc_cfg_error(err, child_or(n, "max_elapsed_time"),
                           "'max_elapsed_time' must not be less than 'max_interval'");
  }
  return 0;
}

/* Bounds that keep the ring and the thread count allocatable; otelcol has none, but nobody needs
 * ten million queued batches or ten thousand senders per exporter. */
#define MAX_QUEUE_SIZE 10000000
#define MAX_CONSUMERS 10000

/* sending_queue as read: `storage` is read as a node, to check that it is a scalar id. */
struct queue_parse {
  struct otc_queue_config q;
  const struct otc_cfg_node *storage;
};

int otc_queue_config_parse(const struct otc_cfg_node *n, int64_t default_queue_size,
                           struct otc_queue_config *out, const char *component,
                           struct otc_cfg_err *err) {
  char def_size[32];
  snprintf(def_size, sizeof def_size, "%lld", (long long)default_queue_size);
  /* The integers are range-checked below, and only when the queue is enabled, as otelcol does. */
  const struct otc_cfg_field fields[] = {
      {"enabled", OTC_CFGK_BOOL, "true", offsetof(struct queue_parse, q.enabled), 0, 0},
      {"num_consumers", OTC_CFGK_INT, "10", offsetof(struct queue_parse, q.num_consumers), 0, 0},
      {"queue_size", OTC_CFGK_INT, def_size, offsetof(struct queue_parse, q.queue_size), 0, 0},
      {"block_on_overflow", OTC_CFGK_BOOL, "false",
       offsetof(struct queue_parse, q.block_on_overflow), 0, 0},
      {"storage", OTC_CFGK_NODE, NULL, offsetof(struct queue_parse, storage), 0, 0},
      {"sizer", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
      {"batch", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
      {"wait_for_result", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  struct queue_parse tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = otc_cfg_apply(fields, n, &tmp, component, err);
  if (rc != 0)
    return rc;
  *out = tmp.q;
  out->storage = NULL;
  out->storage_node = NULL;
  out->storage_ext = NULL;
  if (tmp.storage && tmp.storage->type != OTC_CFG_NULL) {
    if (tmp.storage->type != OTC_CFG_SCALAR || !tmp.storage->value || !*tmp.storage->value)
      return otc_cfg_error(err, tmp.storage, "storage must be the id of a file_storage extension");
    if (!out->enabled)
      return otc_cfg_error(err, tmp.storage,
                           "storage needs the sending queue enabled (sending_queue::enabled)");
    out->storage = tmp.storage->value;
    out->storage_node = tmp.storage;
  }
  if (!out->enabled)
    return 0;
  if (out->num_consumers <= 0)
    return otc_cfg_error(err, child_or(n, "num_consumers"), "`num_consumers` must be positive");
  if (out->num_consumers > MAX_CONSUMERS)
    return otc_cfg_error(err, child_or(n, "num_consumers"), "`num_consumers` must be at most %d",
                         MAX_CONSUMERS);
  if (out->queue_size <= 0)
    return otc_cfg_error(err, child_or(n, "queue_size"), "`queue_size` must be positive");
  if (out->queue_size > MAX_QUEUE_SIZE)
    return otc_cfg_error(err, child_or(n, "queue_size"), "`queue_size` must be at most %d",
                         MAX_QUEUE_SIZE);
  return 0;
}

/* Whether the pipeline `p` (a map with receivers/processors/exporters) sends to exporter id and
 * holds data in a batch processor on the way. */
static bool batch_before(const struct otc_cfg_node *p, const char *id) {
  const struct otc_cfg_node *ex = otc_cfg_get(p, "exporters"), *pr = otc_cfg_get(p, "processors");
  bool feeds = false;
  for (size_t i = 0; ex && ex->type == OTC_CFG_SEQ && i < ex->n_children; i++)
    feeds |= ex->children[i]->value && strcmp(ex->children[i]->value, id) == 0;
  for (size_t i = 0; feeds && pr && pr->type == OTC_CFG_SEQ && i < pr->n_children; i++) {
    char type[64];
    const char *v = pr->children[i]->value;
    if (v && strcmp(otc_component_type_of(v, type, sizeof type), "batch") == 0)
      return true;
  }
  return false;
}

int otc_queue_config_bind_storage(struct otc_queue_config *q, const struct otc_create_args *args,
                                  struct otc_cfg_err *err) {
  if (!q->storage)
    return 0;
  q->storage_ext = otc_find_extension(args, q->storage, "file_storage");
  if (!q->storage_ext)
    return otc_cfg_error(err, q->storage_node,
                         "\"%s\" is not a file_storage extension enabled in "
                         "service::extensions",
                         q->storage);
  const char *id = args->id ? args->id : "";
  const struct otc_cfg_node *pipes = otc_cfg_path(args->root, "service.pipelines");
  for (size_t i = 0; pipes && pipes->type == OTC_CFG_MAP && i < pipes->n_children; i++) {
    if (batch_before(pipes->children[i], id))
      otc_warn(id,
               "pipeline %s holds data in a batch processor before this exporter's persistent "
               "queue: that data is acknowledged to clients before it is on disk (as in otelcol); "
               "leave the batch processor out of the pipeline for acknowledged-means-persisted",
               pipes->children[i]->key);
  }
  return 0;
}

/* --- helpers --- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static struct timespec to_timespec(int64_t ns) {
  struct timespec ts = {.tv_sec = ns / NS_PER_S, .tv_nsec = ns % NS_PER_S};
  return ts;
}

/* Jitter only needs to spread retries apart, not to be unpredictable: a per-thread xorshift seeded
 * from the clock and the thread's stack address. */
static double random_unit(void) {
  static _Thread_local uint64_t state;
  if (state == 0) {
    int local;
    state = (uint64_t)now_ns() ^ ((uint64_t)(uintptr_t)&local << 17) ^ 0x9e3779b97f4a7c15ULL;
    if (state == 0)
      state = 1;
  }
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (double)(state >> 11) / (double)(1ULL << 53);
}

void otc_send_result_reasonf(struct otc_send_result *res, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->reason, sizeof res->reason, fmt, ap);
  va_end(ap);
}

/* --- the helper --- */

struct otc_exporter_helper {
  char *id;
  struct otc_queue_config q;
  struct otc_retry_config r;
  otc_send_fn send;
  void *exporter;
  struct otc_exporter_metrics m;

  pthread_mutex_t mu;       /* guards everything below */
  pthread_cond_t not_empty; /* consumers wait for work */
  pthread_cond_t not_full;  /* blocking producers wait for room */
  pthread_cond_t wake;      /* retry waits, broken by shutdown */
  pthread_cond_t idle;      /* shutdown waits for the queue and the senders to finish */
  struct otc_batch **ring;
  size_t cap, head, count;
  size_t count_by_signal[OTC_SIGNAL_COUNT];
  size_t busy;        /* consumers holding a batch */
  size_t sync_active; /* synchronous consume calls in progress (queue disabled) */
  bool started, stopping, aborting, shut;
  int64_t deadline; /* CLOCK_MONOTONIC end of the drain, once stopping */
  bool registered[OTC_SIGNAL_COUNT];
  struct otc_gauge *queue_size[OTC_SIGNAL_COUNT], *in_flight[OTC_SIGNAL_COUNT];
  struct otc_histogram *send_duration[OTC_SIGNAL_COUNT];

  pthread_t *threads;
  size_t n_threads;
  pthread_mutex_t sync_mu; /* serializes sends when the queue is disabled (worker 0's connection) */

  /* The persistent queue (sending_queue.storage), in place of the ring: opened at start, closed at
   * shutdown. Its own lock nests inside mu (mu is taken first, never the other way round). */
  bool persistent;
  char *pq_dir;
  struct otc_pqueue_options pq_opts;
  struct otc_pqueue *pq;

  struct otc_log_limiter retry_log, drop_log;
};

struct worker_arg {
  struct otc_exporter_helper *h;
  unsigned index;
};

/* Called with h->mu held. */
static void register_signal_locked(struct otc_exporter_helper *h, enum otc_signal s) {
  if (h->registered[s])
    return;
  h->registered[s] = true;
  char id[256], labels[320];
  snprintf(labels, sizeof labels, "data_type=\"%s\",exporter=\"%s\"", otc_signal_name(s),
           otc_metrics_escape_label(h->id, id, sizeof id));
  if (h->q.enabled) {
    h->queue_size[s] = otc_gauge_get("otelcol_exporter_queue_size",
                                     "Current size of the retry queue (in batches)", labels);
    otc_gauge_set(h->queue_size[s], h->pq ? (double)otc_pqueue_unread_signal(h->pq, s)
                                          : (double)h->count_by_signal[s]);
    otc_gauge_set(otc_gauge_get("otelcol_exporter_queue_capacity",
                                "Fixed capacity of the retry queue (in batches)", labels),
                  (double)h->cap);
  }
  h->in_flight[s] = otc_gauge_get("otelcol_exporter_in_flight_requests",
                                  "Number of in-flight requests from the exporter", labels);
  /* Ours: otelcol has no export latency at its default telemetry level, and a collector dashboard
   * needs one. One observation per attempt, whatever its outcome. */
  static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,  0.5,    1,     2.5,  5,     10,   30};
  h->send_duration[s] =
      otc_histogram_get("otelcol_exporter_send_duration_seconds",
                        "Duration of one export request (attempt) to the destination, in seconds",
                        labels, bounds, sizeof bounds / sizeof bounds[0]);
}

void otc_exporter_helper_register_signals(struct otc_exporter_helper *h, unsigned signals) {
  pthread_mutex_lock(&h->mu);
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    if (signals & OTC_SIGNAL_BIT(s))
      register_signal_locked(h, (enum otc_signal)s);
  pthread_mutex_unlock(&h->mu);
}

/* The drop metric's reason label for a permanent failure: "HTTP 400..." → "http_400",
 * "gRPC INVALID_ARGUMENT..." → "grpc_invalid_argument", anything else "permanent_error". Bounded in
 * cardinality whatever the destination writes after the status. */
static void permanent_label(const char *reason, char *out, size_t cap) {
  snprintf(out, cap, "permanent_error");
  if (strncmp(reason, "HTTP ", 5) == 0 && isdigit((unsigned char)reason[5]) &&
      isdigit((unsigned char)reason[6]) && isdigit((unsigned char)reason[7]) &&
      !isdigit((unsigned char)reason[8])) {
    snprintf(out, cap, "http_%.3s", reason + 5);
  } else if (strncmp(reason, "gRPC ", 5) == 0 && isupper((unsigned char)reason[5])) {
    size_t n = strlen("grpc_");
    if (cap <= n + 1)
      return;
    memcpy(out, "grpc_", n);
    for (const char *p = reason + 5; (isupper((unsigned char)*p) || *p == '_') && n + 1 < cap; p++)
      out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
  }
}

/* Counts and logs a batch given up on. In queued mode the data is lost for good (the receiver had
 * answered success), so it also goes to the dropped-items counter; in synchronous mode the caller
 * gets the error back and decides. */
static void give_up(struct otc_exporter_helper *h, const struct otc_batch *b, bool queued,
                    const char *label, const char *why) {
  if (queued && h->persistent && strcmp(label, "shutdown") == 0) {
    /* Not given up on: it stays in the persistent queue and is sent after the restart. */
    otc_log_limited(&h->drop_log, OTC_LOG_INFO, h->id,
                    "shutting down: %zu %s stay in the persistent queue (%s)", b->items,
                    otc_signal_item_name(b->signal), why);
    return;
  }
  otc_counter_add(h->m.send_failed[b->signal], b->items);
  if (queued)
    otc_count_dropped(h->id, b->signal, label, b->items);
  otc_log_limited(&h->drop_log, OTC_LOG_ERROR, h->id, "exporting failed, %s %zu %s (%s): %s",
                  queued ? "dropping" : "rejecting", b->items, otc_signal_item_name(b->signal),
                  label, why);
}

/* Waits until wake_at, or less when shutting down. Returns 0 to make the next attempt now, or
 * OTC_ERR_SHUTDOWN to give up. During shutdown a wait that ends before the drain deadline runs as
 * usual; one that would end after it is cut short for one last attempt (*last_chance records that
 * it was used), and after the deadline nothing more is attempted. */
static int wait_retry(struct otc_exporter_helper *h, int64_t wake_at, bool *last_chance) {
  int rc = 0;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    int64_t t = now_ns();
    if (h->stopping) {
      if (h->aborting || t >= h->deadline) {
        rc = OTC_ERR_SHUTDOWN;
        break;
      }
      if (wake_at > h->deadline) {
        if (*last_chance)
          rc = OTC_ERR_SHUTDOWN;
        *last_chance = true;
        break;
      }
    }
    if (t >= wake_at)
      break;
    struct timespec ts = to_timespec(wake_at);
    pthread_cond_timedwait(&h->wake, &h->mu, &ts);
  }
  pthread_mutex_unlock(&h->mu);
  return rc;
}

/* Sends b until it is delivered, permanently refused, or out of retries. Returns 0,
 * OTC_ERR_PERMANENT, OTC_ERR_SHUTDOWN, or the last retryable error. b stays borrowed. */
static int deliver(struct otc_exporter_helper *h, unsigned worker, struct otc_batch *b,
                   bool queued) {
  const int64_t first = now_ns();
  double interval = (double)h->r.initial_interval_ns;
  bool last_chance = false;
  struct otc_gauge *in_flight = h->in_flight[b->signal];
  for (;;) {
    struct otc_send_result res;
    memset(&res, 0, sizeof res);
    otc_gauge_add(in_flight, 1);
    if (!queued)
      pthread_mutex_lock(&h->sync_mu);
    const int64_t t0 = now_ns();
    h->send(h->exporter, worker, b, &res);
    const int64_t t1 = now_ns();
    if (!queued)
      pthread_mutex_unlock(&h->sync_mu);
    otc_gauge_add(in_flight, -1);
    if (h->send_duration[b->signal])
      otc_histogram_observe(h->send_duration[b->signal], (double)(t1 - t0) / 1e9);
    res.reason[sizeof res.reason - 1] = '\0';
    if (res.err == 0) {
      otc_counter_add(h->m.sent[b->signal], b->items);
      return 0;
    }
    const char *why = res.reason[0] ? res.reason : otc_strerror(res.err);
    if (!otc_err_retryable(res.err)) {
      char label[48];
      permanent_label(res.reason, label, sizeof label);
      give_up(h, b, queued, label, why);
      return OTC_ERR_PERMANENT;
    }
    if (!h->r.enabled) {
      give_up(h, b, queued, "retry_disabled", why);
      return res.err;
    }
    /* backoff.ExponentialBackOff: a random value in interval * (1 ± factor), then the interval
     * grows for next time. */
    double rf = h->r.randomization_factor;
    double delay_d = interval * (1 - rf + 2 * rf * random_unit());
    interval = fmin(interval * h->r.multiplier, (double)h->r.max_interval_ns);
    int64_t delay = delay_d > 9e18 ? INT64_MAX / 2 : (int64_t)delay_d;
    if (res.retry_after_ns > delay)
      delay = res.retry_after_ns;
    if (delay > MAX_DELAY_NS) /* keeps now + delay from overflowing */
      delay = MAX_DELAY_NS;
    int64_t t = now_ns();
    if (h->r.max_elapsed_time_ns > 0 && t - first + delay > h->r.max_elapsed_time_ns) {
      give_up(h, b, queued, "retry_exhausted", why);
      return res.err;
    }
    otc_log_limited(&h->retry_log, OTC_LOG_INFO, h->id,
                    "exporting failed, will retry %zu %s in %.3fs: %s", b->items,
                    otc_signal_item_name(b->signal), (double)delay / 1e9, why);
    if (wait_retry(h, t + delay, &last_chance) != 0) {
      give_up(h, b, queued, "shutdown", why);
      return OTC_ERR_SHUTDOWN;
    }
  }
}

/* A consumer of the persistent queue: reads the oldest unread record, sends it, and acknowledges it
 * unless the send was cut short by the shutdown (then it stays on disk). */
static void persistent_consumer(struct otc_exporter_helper *h, unsigned index) {
  pthread_mutex_lock(&h->mu);
  for (;;) {
    if (h->aborting)
      break;
    struct otc_batch *b = NULL;
    uint64_t seq = 0;
    int rc = otc_pqueue_next(h->pq, &b, &seq);
    if (rc != 0 || !b) {
      if (h->stopping)
        break;
      if (rc != 0) {
        /* Out of memory or an I/O error: try again a little later rather than spin. */
        otc_log_limited(&h->drop_log, OTC_LOG_ERROR, h->id, "cannot read the persistent queue: %s",
                        otc_strerror(rc));
        struct timespec ts = to_timespec(now_ns() + 100000000LL);
        pthread_cond_timedwait(&h->not_empty, &h->mu, &ts);
      } else {
        pthread_cond_wait(&h->not_empty, &h->mu);
      }
      continue;
    }
    register_signal_locked(h, b->signal);
    otc_gauge_set(h->queue_size[b->signal], (double)otc_pqueue_unread_signal(h->pq, b->signal));
    h->busy++;
    pthread_mutex_unlock(&h->mu);

    rc = deliver(h, index, b, true);
    otc_batch_unref(b);
    if (rc != OTC_ERR_SHUTDOWN)
      otc_pqueue_ack(h->pq, seq);

    pthread_mutex_lock(&h->mu);
    h->busy--;
    pthread_cond_broadcast(&h->not_full);
    if (h->busy == 0 && otc_pqueue_unread(h->pq) == 0)
      pthread_cond_broadcast(&h->idle);
  }
  pthread_mutex_unlock(&h->mu);
}

static void *consumer_main(void *arg) {
  struct worker_arg *wa = arg;
  struct otc_exporter_helper *h = wa->h;
  unsigned index = wa->index;
  free(wa);
  if (h->persistent) {
    persistent_consumer(h, index);
    return NULL;
  }
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (h->count == 0 && !h->stopping)
      pthread_cond_wait(&h->not_empty, &h->mu);
    if (h->count == 0 || h->aborting)
      break;
    struct otc_batch *b = h->ring[h->head];
    h->ring[h->head] = NULL;
    h->head = (h->head + 1) % h->cap;
    h->count--;
    h->count_by_signal[b->signal]--;
    otc_gauge_set(h->queue_size[b->signal], (double)h->count_by_signal[b->signal]);
    h->busy++;
    pthread_cond_signal(&h->not_full);
    pthread_mutex_unlock(&h->mu);

    deliver(h, index, b, true);
    otc_batch_unref(b);

    pthread_mutex_lock(&h->mu);
    h->busy--;
    if (h->count == 0 && h->busy == 0)
      pthread_cond_broadcast(&h->idle);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static pthread_cond_t *init_cond(pthread_cond_t *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
  return c;
}

struct otc_exporter_helper *otc_exporter_helper_create(const char *id,
                                                       const struct otc_queue_config *q,
                                                       const struct otc_retry_config *r,
                                                       otc_send_fn send, void *exporter) {
  struct otc_exporter_helper *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->id = strdup(id ? id : "exporter");
  h->q = *q;
  h->r = *r;
  h->send = send;
  h->exporter = exporter;
  h->persistent = h->q.enabled && h->q.storage;
  if (h->persistent) {
    if (!h->q.storage_ext) {
      /* The exporter did not call otc_queue_config_bind_storage. */
      free(h->id);
      free(h);
      return NULL;
    }
    char name[256];
    otc_pqueue_dir_name(h->id, name, sizeof name);
    const char *base = otc_file_storage_directory(h->q.storage_ext);
    size_t len = strlen(base) + 1 + strlen(name) + 1;
    h->pq_dir = malloc(len);
    if (!h->pq_dir) {
      free(h->id);
      free(h);
      return NULL;
    }
    snprintf(h->pq_dir, len, "%s/%s", base, name);
    h->pq_opts = (struct otc_pqueue_options){
        .dir = h->pq_dir,
        .fsync = otc_file_storage_fsync(h->q.storage_ext),
        .max_bytes = otc_file_storage_queue_max_bytes(h->q.storage_ext),
        .max_records = (uint64_t)(h->q.queue_size > 0 ? h->q.queue_size : 1),
        .segment_bytes = 0,
        .lock_timeout_ns = otc_file_storage_timeout_ns(h->q.storage_ext),
        .log_id = h->id,
    };
    if (h->q.num_consumers < 1)
      h->q.num_consumers = 1;
    h->cap = (size_t)(h->q.queue_size > 0 ? h->q.queue_size : 1);
  } else if (h->q.enabled) {
    if (h->q.queue_size < 1)
      h->q.queue_size = 1;
    if (h->q.num_consumers < 1)
      h->q.num_consumers = 1;
    h->cap = (size_t)h->q.queue_size;
    h->ring = calloc(h->cap, sizeof *h->ring);
  }
  if (!h->id || (h->q.enabled && !h->persistent && !h->ring)) {
    free(h->pq_dir);
    free(h->ring);
    free(h->id);
    free(h);
    return NULL;
  }
  pthread_mutex_init(&h->mu, NULL);
  pthread_mutex_init(&h->sync_mu, NULL);
  init_cond(&h->not_empty);
  init_cond(&h->not_full);
  init_cond(&h->wake);
  init_cond(&h->idle);
  otc_exporter_metrics_init(&h->m, h->id);
  return h;
}

int otc_exporter_helper_start(struct otc_exporter_helper *h) {
  int rc = 0;
  pthread_mutex_lock(&h->mu);
  if (h->started || h->stopping || !h->q.enabled)
    goto cleanup;
  if (h->persistent) {
    /* Opening replays: what the last run left unacknowledged is read again first. */
    if ((rc = otc_pqueue_open(&h->pq_opts, &h->pq)) != 0)
      goto cleanup;
    for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
      if (otc_pqueue_unread_signal(h->pq, (enum otc_signal)s) > 0)
        register_signal_locked(h, (enum otc_signal)s);
    otc_info(h->id, "persistent queue in %s (%s)", h->pq_dir,
             h->pq_opts.fsync ? "fsync on every write"
                              : "no fsync: survives a crash of the process, not of the machine");
  }
  h->threads = calloc((size_t)h->q.num_consumers, sizeof *h->threads);
  if (!h->threads) {
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  for (int64_t i = 0; i < h->q.num_consumers; i++) {
    struct worker_arg *wa = malloc(sizeof *wa);
    if (!wa) {
      rc = OTC_ERR_NOMEM;
      break;
    }
    wa->h = h;
    wa->index = (unsigned)i;
    if (pthread_create(&h->threads[i], NULL, consumer_main, wa) != 0) {
      free(wa);
      rc = OTC_ERR_NOMEM;
      break;
    }
    h->n_threads++;
  }
  /* Whatever threads did start serve the queue and are joined at shutdown. */
  h->started = true;
  if (rc != 0)
    otc_error(h->id, "started only %zu of %lld sending threads", h->n_threads,
              (long long)h->q.num_consumers);
cleanup:
  pthread_mutex_unlock(&h->mu);
  return rc;
}

int otc_exporter_helper_consume(struct otc_exporter_helper *h, struct otc_batch *b) {
  int rc = 0;
  enum otc_signal s = b->signal;
  pthread_mutex_lock(&h->mu);
  register_signal_locked(h, s);
  if (!h->q.enabled) {
    if (h->stopping) {
      pthread_mutex_unlock(&h->mu);
      rc = OTC_ERR_SHUTDOWN;
      goto refused;
    }
    h->sync_active++;
    pthread_mutex_unlock(&h->mu);
    rc = deliver(h, 0, b, false);
    otc_batch_unref(b);
    pthread_mutex_lock(&h->mu);
    if (--h->sync_active == 0)
      pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
    return rc;
  }
  if (h->persistent) {
    if (h->stopping || !h->pq) {
      rc = OTC_ERR_SHUTDOWN;
      pthread_mutex_unlock(&h->mu);
      goto refused;
    }
    h->sync_active++; /* keeps shutdown from closing the queue under the append */
    pthread_mutex_unlock(&h->mu);
    /* Written (and synced) before the caller hears success: the receiver acknowledges only what
     * is on disk. The write runs without mu so that consumers keep going meanwhile. */
    for (;;) {
      rc = otc_pqueue_append(h->pq, s, b->items, b->data, b->len);
      if (rc != OTC_ERR_REFUSED || !h->q.block_on_overflow)
        break;
      pthread_mutex_lock(&h->mu);
      bool stop = h->stopping;
      if (!stop) {
        struct timespec ts = to_timespec(now_ns() + 100000000LL);
        pthread_cond_timedwait(&h->not_full, &h->mu, &ts);
      }
      pthread_mutex_unlock(&h->mu);
      if (stop) {
        rc = OTC_ERR_SHUTDOWN;
        break;
      }
    }
    pthread_mutex_lock(&h->mu);
    if (--h->sync_active == 0)
      pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
    if (rc == OTC_ERR_TOO_LARGE || rc == OTC_ERR_IO)
      rc = rc == OTC_ERR_IO ? OTC_ERR_REFUSED : OTC_ERR_PERMANENT;
    if (rc != 0)
      goto refused;
    pthread_mutex_lock(&h->mu);
    if (h->pq)
      otc_gauge_set(h->queue_size[s], (double)otc_pqueue_unread_signal(h->pq, s));
    pthread_cond_signal(&h->not_empty);
    pthread_mutex_unlock(&h->mu);
    otc_batch_unref(b);
    return 0;
  }
  while (h->count == h->cap && h->q.block_on_overflow && !h->stopping)
    pthread_cond_wait(&h->not_full, &h->mu);
  if (h->stopping || h->count == h->cap) {
    rc = h->stopping ? OTC_ERR_SHUTDOWN : OTC_ERR_REFUSED;
    pthread_mutex_unlock(&h->mu);
    goto refused;
  }
  h->ring[(h->head + h->count) % h->cap] = b;
  h->count++;
  h->count_by_signal[s]++;
  otc_gauge_set(h->queue_size[s], (double)h->count_by_signal[s]);
  pthread_cond_signal(&h->not_empty);
  pthread_mutex_unlock(&h->mu);
  return 0;

refused:
  /* Not a drop: the caller gets the refusal back and retries (the batch processor) or answers its
   * client with a retryable status (a receiver). enqueue_failed counts it, as in otelcol. */
  otc_counter_add(h->m.enqueue_failed[s], b->items);
  otc_log_limited(&h->drop_log, OTC_LOG_WARN, h->id, "refusing %zu %s: %s", b->items,
                  otc_signal_item_name(s),
                  rc == OTC_ERR_SHUTDOWN    ? "the exporter is shutting down"
                  : rc == OTC_ERR_PERMANENT ? "the batch is larger than the persistent queue"
                                            : "the sending queue is full");
  otc_batch_unref(b);
  return rc;
}

void otc_exporter_helper_shutdown(struct otc_exporter_helper *h, int64_t deadline_ns) {
  pthread_mutex_lock(&h->mu);
  if (h->shut) {
    pthread_mutex_unlock(&h->mu);
    return;
  }
  h->shut = true;
  h->stopping = true;
  /* A persistent queue keeps what is not sent for the next start: no drain. */
  if (h->persistent)
    deadline_ns = 0;
  h->deadline = now_ns() + (deadline_ns <= 0             ? 0
                            : deadline_ns > MAX_DELAY_NS ? MAX_DELAY_NS
                                                         : deadline_ns);
  pthread_cond_broadcast(&h->not_empty);
  pthread_cond_broadcast(&h->not_full);
  pthread_cond_broadcast(&h->wake);
  /* Without consumers nothing would drain the queue: do not wait for it. */
  bool can_drain = h->n_threads > 0;
  for (;;) {
    bool pending = (can_drain && (h->count > 0 || h->busy > 0)) || h->sync_active > 0;
    if (!pending || now_ns() >= h->deadline)
      break;
    struct timespec ts = to_timespec(h->deadline);
    pthread_cond_timedwait(&h->idle, &h->mu, &ts);
  }
  h->aborting = true;
  struct otc_batch **left = NULL;
  size_t n_left = h->count;
  if (n_left) {
    /* Taken out under the lock, counted outside it. Without memory for the list they are counted
     * and released here, under the lock, which is only slower. */
    left = malloc(n_left * sizeof *left);
    for (size_t i = 0; i < n_left; i++) {
      struct otc_batch *b = h->ring[(h->head + i) % h->cap];
      h->ring[(h->head + i) % h->cap] = NULL;
      h->count_by_signal[b->signal]--;
      if (left) {
        left[i] = b;
      } else {
        give_up(h, b, true, "shutdown", "the exporter shut down before it was sent");
        otc_batch_unref(b);
      }
    }
    for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
      otc_gauge_set(h->queue_size[s], 0);
    h->head = 0;
    h->count = 0;
  }
  pthread_cond_broadcast(&h->not_empty);
  pthread_cond_broadcast(&h->wake);
  pthread_mutex_unlock(&h->mu);

  for (size_t i = 0; left && i < n_left; i++) {
    give_up(h, left[i], true, "shutdown", "the exporter shut down before it was sent");
    otc_batch_unref(left[i]);
  }
  free(left);
  /* A consumer in the middle of a send finishes it (bounded by the exporter's timeout); one waiting
   * to retry wakes and drops its batch. */
  for (size_t i = 0; i < h->n_threads; i++)
    pthread_join(h->threads[i], NULL);
  h->n_threads = 0;
  if (h->pq) {
    size_t n = otc_pqueue_unread(h->pq);
    uint64_t bytes = otc_pqueue_bytes(h->pq);
    if (n > 0 || bytes > 0)
      otc_info(h->id,
               "%zu batches (%llu bytes) stay in the persistent queue %s and are sent after the "
               "next start",
               n, (unsigned long long)bytes, h->pq_dir);
    pthread_mutex_lock(&h->mu);
    while (h->sync_active > 0)
      pthread_cond_wait(&h->idle, &h->mu);
    struct otc_pqueue *pq = h->pq;
    h->pq = NULL;
    pthread_mutex_unlock(&h->mu);
    otc_pqueue_close(pq);
  }
  otc_log_limited_flush(&h->retry_log, OTC_LOG_INFO, h->id);
  otc_log_limited_flush(&h->drop_log, OTC_LOG_ERROR, h->id);
}

void otc_exporter_helper_destroy(struct otc_exporter_helper *h) {
  if (!h)
    return;
  otc_exporter_helper_shutdown(h, 0);
  pthread_cond_destroy(&h->not_empty);
  pthread_cond_destroy(&h->not_full);
  pthread_cond_destroy(&h->wake);
  pthread_cond_destroy(&h->idle);
  pthread_mutex_destroy(&h->mu);
  pthread_mutex_destroy(&h->sync_mu);
  free(h->threads);
  free(h->ring);
  free(h->pq_dir);
  free(h->id);
  free(h);
}

bool otc_exporter_helper_takes_parts(const struct otc_exporter_helper *h) {
  return !h->persistent;
}

size_t otc_exporter_helper_queue_len(const struct otc_exporter_helper *h) {
  struct otc_exporter_helper *m = (struct otc_exporter_helper *)h;
  pthread_mutex_lock(&m->mu);
  size_t n = m->pq ? otc_pqueue_unread(m->pq) : m->count;
  pthread_mutex_unlock(&m->mu);
  return n;
}
