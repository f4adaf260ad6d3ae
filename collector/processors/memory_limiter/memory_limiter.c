/* The memory_limiter processor, with otelcol's configuration. It guards memory in two ways:
 *
 * - Accounting: create() sets the process-wide limits (memory.h) that the receivers' admission
 *   control checks before they allocate a batch, so data over the soft limit (limit - spike) is
 *   refused at the edge with a retryable status.
 * - RSS: a thread reads the resident set size every check_interval. Above the hard limit it makes
 *   admission refuse everything (and this processor refuse what reaches it) until the RSS is back
 *   under the soft limit, and hands freed heap back to the kernel with malloc_trim.
 *
 * One instance exists per pipeline; the RSS check runs in one thread for the whole process (the
 * limits are process-wide, the smallest configured wins), owned by the first instance started. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/component.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/metrics.h"

#define MIB (1024ull * 1024ull)

struct ml_config {
  int64_t check_interval_ns;
  int64_t limit_mib;
  int64_t spike_limit_mib;
  int64_t limit_percentage;
  int64_t spike_limit_percentage;
};

static const struct otc_cfg_field ml_fields[] = {
    {"check_interval", OTC_CFGK_DURATION, NULL, offsetof(struct ml_config, check_interval_ns), 0,
     0},
    {"limit_mib", OTC_CFGK_INT, NULL, offsetof(struct ml_config, limit_mib), 0, 4294967295.0},
    {"spike_limit_mib", OTC_CFGK_INT, NULL, offsetof(struct ml_config, spike_limit_mib), 0,
     4294967295.0},
    {"limit_percentage", OTC_CFGK_INT, NULL, offsetof(struct ml_config, limit_percentage), 0,
     4294967295.0},
    {"spike_limit_percentage", OTC_CFGK_INT, NULL,
     offsetof(struct ml_config, spike_limit_percentage), 0, 4294967295.0},
    /* Tuning of Go's garbage collector: nothing to tune here. */
    {"min_gc_interval_when_soft_limited", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"min_gc_interval_when_hard_limited", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"max_gc_interval_when_soft_limited", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"max_gc_interval_when_hard_limited", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct memory_limiter {
  char *id;
  enum otc_signal signal;
  struct otc_consumer next;
  int64_t check_interval_ns;
  uint64_t limit_bytes, spike_bytes;

  struct otc_counter *accepted, *refused, *incoming, *outgoing;

  /* The RSS checker, when this instance owns it. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool lock_init;
  bool running;  /* the thread exists (joined in shutdown) */
  bool stopping; /* shutdown asked the thread to stop; under lock */
  pthread_t thread;
};

/* Which instance runs the process's RSS checker, if any. */
static _Atomic(struct memory_limiter *) checker_owner;

static void *checker_main(void *arg) {
  struct memory_limiter *ml = arg;
  bool refusing = false;
  struct timespec last_trim = {0, 0};
  pthread_mutex_lock(&ml->lock);
  while (!ml->stopping) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    int64_t ns = deadline.tv_nsec + ml->check_interval_ns % 1000000000;
    deadline.tv_sec += (time_t)(ml->check_interval_ns / 1000000000 + ns / 1000000000);
    deadline.tv_nsec = (long)(ns % 1000000000);
    while (!ml->stopping) {
      if (pthread_cond_timedwait(&ml->cond, &ml->lock, &deadline) == ETIMEDOUT)
        break;
    }
    if (ml->stopping)
      break;
    pthread_mutex_unlock(&ml->lock);

    /* The process-wide limits, so that the smallest configured limit is the one enforced. */
    uint64_t rss = otc_process_rss(), hard = otc_mem_limit(), soft = otc_mem_soft_limit();
    if (hard > 0 && rss > hard) {
      if (!refusing) {
        refusing = true;
        otc_mem_set_rss_refusing(true);
        otc_warn(ml->id,
                 "Memory usage is above hard limit. Refusing data. (rss %llu MiB, limit %llu MiB)",
                 (unsigned long long)(rss / MIB), (unsigned long long)(hard / MIB));
      }
      /* Freed heap stays in the process until trimmed; at most once a second, as it walks the
       * heap. */
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - last_trim.tv_sec >= 1) {
        malloc_trim(0);
        last_trim = now;
      }
    } else if (refusing && rss <= soft) {
      refusing = false;
      otc_mem_set_rss_refusing(false);
      otc_info(ml->id, "Memory usage back within limits. Resuming normal operation. (rss %llu MiB)",
               (unsigned long long)(rss / MIB));
    }
    pthread_mutex_lock(&ml->lock);
  }
  pthread_mutex_unlock(&ml->lock);
  /* Nobody checks once the owner stops: leave admission to the byte accounting. */
  if (refusing)
    otc_mem_set_rss_refusing(false);
  return NULL;
}

static void ml_destroy(void *ctx);

/* The node an error is about: the key when present, else the processor's map. */
static const struct otc_cfg_node *node_or(const struct otc_cfg_node *cfg, const char *key) {
  const struct otc_cfg_node *n = otc_cfg_get(cfg, key);
  return n ? n : cfg;
}

static void *ml_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                       struct otc_cfg_err *err) {
  struct memory_limiter *ml = NULL;
  struct ml_config c = {0};
  if (otc_cfg_apply(ml_fields, cfg, &c, args->id, err) != 0)
    goto fail;
  /* The checks and messages are otelcol's, in its order. */
  if (c.check_interval_ns <= 0) {
    otc_cfg_error(err, node_or(cfg, "check_interval"),
                  "'check_interval' must be greater than zero");
    goto fail;
  }
  if (c.limit_mib == 0 && c.limit_percentage == 0) {
    otc_cfg_error(err, cfg, "'limit_mib' or 'limit_percentage' must be greater than zero");
    goto fail;
  }
  if (c.limit_percentage > 100 || c.spike_limit_percentage > 100) {
    otc_cfg_error(err, node_or(cfg, "limit_percentage"),
                  "'limit_percentage' and 'spike_limit_percentage' must be greater than zero and "
                  "less than or equal to hundred");
    goto fail;
  }
  if (c.limit_mib > 0 && c.limit_mib <= c.spike_limit_mib) {
    otc_cfg_error(err, node_or(cfg, "spike_limit_mib"),
                  "'spike_limit_mib' must be smaller than 'limit_mib'");
    goto fail;
  }
  if (c.limit_percentage > 0 && c.limit_percentage <= c.spike_limit_percentage) {
    otc_cfg_error(err, node_or(cfg, "spike_limit_percentage"),
                  "'spike_limit_percentage' must be smaller than 'limit_percentage'");
    goto fail;
  }

  ml = calloc(1, sizeof *ml);
  if (!ml || !(ml->id = strdup(args->id ? args->id : "memory_limiter"))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  ml->signal = args->signal;
  ml->next = args->next;
  ml->check_interval_ns = c.check_interval_ns;
  /* limit_mib takes precedence over limit_percentage, as in otelcol; a spike of 0 means 20%. */
  if (c.limit_mib > 0) {
    ml->limit_bytes = (uint64_t)c.limit_mib * MIB;
    ml->spike_bytes = (uint64_t)c.spike_limit_mib * MIB;
  } else {
    uint64_t total = otc_total_memory();
    ml->limit_bytes = total / 100 * (uint64_t)c.limit_percentage;
    ml->spike_bytes = total / 100 * (uint64_t)c.spike_limit_percentage;
  }
  if (ml->spike_bytes == 0)
    ml->spike_bytes = ml->limit_bytes / 5;

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&ml->lock, NULL);
  pthread_cond_init(&ml->cond, &ca);
  pthread_condattr_destroy(&ca);
  ml->lock_init = true;

  char id[256], labels[384];
  otc_metrics_escape_label(ml->id, id, sizeof id);
  snprintf(labels, sizeof labels, "processor=\"%s\"", id);
  const char *item = otc_signal_item_name(ml->signal);
  char name[128];
  snprintf(name, sizeof name, "otelcol_processor_memory_limiter_accepted_%s", item);
  ml->accepted = otc_counter_get(
      name, "Number of items successfully pushed into the next component in the pipeline.", labels);
  snprintf(name, sizeof name, "otelcol_processor_memory_limiter_refused_%s", item);
  ml->refused = otc_counter_get(
      name, "Number of items that were rejected by the next component in the pipeline.", labels);
  snprintf(labels, sizeof labels, "otel_signal=\"%s\",processor=\"%s\"",
           otc_signal_name(ml->signal), id);
  ml->incoming = otc_counter_get("otelcol_processor_incoming_items",
                                 "Number of items passed to the processor. [Alpha]", labels);
  ml->outgoing = otc_counter_get("otelcol_processor_outgoing_items",
                                 "Number of items emitted from the processor. [Alpha]", labels);

  /* Admission at the receivers uses these from now on. */
  otc_mem_set_limits(ml->limit_bytes, ml->spike_bytes);
  otc_debug(ml->id, "limit %llu MiB, spike %llu MiB, check every %lld ms",
            (unsigned long long)(ml->limit_bytes / MIB),
            (unsigned long long)(ml->spike_bytes / MIB),
            (long long)(ml->check_interval_ns / 1000000));
  return ml;
fail:
  ml_destroy(ml);
  return NULL;
}

static int ml_start(void *ctx) {
  struct memory_limiter *ml = ctx;
  struct memory_limiter *expected = NULL;
  if (!atomic_compare_exchange_strong(&checker_owner, &expected, ml))
    return 0; /* another instance already watches the process */
  ml->stopping = false;
  if (pthread_create(&ml->thread, NULL, checker_main, ml) != 0) {
    atomic_store(&checker_owner, NULL);
    otc_error(ml->id, "cannot start the memory check thread");
    return OTC_ERR_IO;
  }
  ml->running = true;
  return 0;
}

static int ml_consume(void *ctx, struct otc_batch *b) {
  struct memory_limiter *ml = ctx;
  size_t items = b->items;
  otc_counter_add(ml->incoming, items);
  if (otc_mem_rss_refusing()) {
    otc_counter_add(ml->refused, items);
    otc_batch_unref(b);
    return OTC_ERR_REFUSED;
  }
  otc_counter_add(ml->accepted, items);
  otc_counter_add(ml->outgoing, items);
  return otc_consume(&ml->next, b);
}

static int ml_shutdown(void *ctx) {
  struct memory_limiter *ml = ctx;
  if (!ml || !ml->running)
    return 0;
  pthread_mutex_lock(&ml->lock);
  ml->stopping = true;
  pthread_cond_signal(&ml->cond);
  pthread_mutex_unlock(&ml->lock);
  pthread_join(ml->thread, NULL);
  ml->running = false;
  atomic_store(&checker_owner, NULL);
  return 0;
}

static void ml_destroy(void *ctx) {
  struct memory_limiter *ml = ctx;
  if (!ml)
    return;
  ml_shutdown(ml);
  if (ml->lock_init) {
    pthread_mutex_destroy(&ml->lock);
    pthread_cond_destroy(&ml->cond);
  }
  free(ml->id);
  free(ml);
}

const struct otc_component_ops otc_processor_memory_limiter = {
    .type = "memory_limiter",
    .aliases = NULL,
    .kind = OTC_KIND_PROCESSOR,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = ml_create,
    .start = ml_start,
    .consume = ml_consume,
    .shutdown = ml_shutdown,
    .destroy = ml_destroy,
};
