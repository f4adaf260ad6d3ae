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

#include "core/errors.h"
#include "core/log.h"

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

/* sending_queue as read: `storage` has a member here only, so that it can be refused. */
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
  int rc = otc_cfg_apply(fields, n, &tmp, component, err);
  if (rc != 0)
    return rc;
  if (tmp.storage && tmp.storage->type != OTC_CFG_NULL)
    return otc_cfg_error(err, tmp.storage, "persistent queue (storage) is not supported yet");
  *out = tmp.q;
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

  pthread_t *threads;
  size_t n_threads;
  pthread_mutex_t sync_mu; /* serializes sends when the queue is disabled (worker 0's connection) */

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
    otc_gauge_set(h->queue_size[s], (double)h->count_by_signal[s]);
    otc_gauge_set(otc_gauge_get("otelcol_exporter_queue_capacity",
                                "Fixed capacity of the retry queue (in batches)", labels),
                  (double)h->cap);
  }
  h->in_flight[s] = otc_gauge_get("otelcol_exporter_in_flight_requests",
                                  "Number of in-flight requests from the exporter", labels);
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
  otc_counter_add(h->m.send_failed[b->signal], b->items);
  if (queued)
    otc_count_dropped(h->id, b->signal, label, b->items);
  otc_log_limited(&h->drop_log, OTC_LOG_ERROR, h->id, "exporting failed, %s %zu %s (%s): %s",
           queued ? "dropping" : "rejecting", b->items, otc_signal_item_name(b->signal), label,
           why);
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
    h->send(h->exporter, worker, b, &res);
    if (!queued)
      pthread_mutex_unlock(&h->sync_mu);
    otc_gauge_add(in_flight, -1);
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
                    "exporting failed, will retry %zu %s in %.3fs: %s",
             b->items, otc_signal_item_name(b->signal), (double)delay / 1e9, why);
    if (wait_retry(h, t + delay, &last_chance) != 0) {
      give_up(h, b, queued, "shutdown", why);
      return OTC_ERR_SHUTDOWN;
    }
  }
}

static void *consumer_main(void *arg) {
  struct worker_arg *wa = arg;
  struct otc_exporter_helper *h = wa->h;
  unsigned index = wa->index;
  free(wa);
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
  if (h->q.enabled) {
    if (h->q.queue_size < 1)
      h->q.queue_size = 1;
    if (h->q.num_consumers < 1)
      h->q.num_consumers = 1;
    h->cap = (size_t)h->q.queue_size;
    h->ring = calloc(h->cap, sizeof *h->ring);
  }
  if (!h->id || (h->q.enabled && !h->ring)) {
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
           rc == OTC_ERR_SHUTDOWN ? "the exporter is shutting down" : "the sending queue is full");
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
  free(h->id);
  free(h);
}

size_t otc_exporter_helper_queue_len(const struct otc_exporter_helper *h) {
  struct otc_exporter_helper *m = (struct otc_exporter_helper *)h;
  pthread_mutex_lock(&m->mu);
  size_t n = m->count;
  pthread_mutex_unlock(&m->mu);
  return n;
}
