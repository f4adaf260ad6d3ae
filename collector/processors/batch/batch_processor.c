/* The batch processor, with otelcol's configuration and self-metrics. One instance per pipeline
 * keeps the batches it receives (references, no copy) in a pending list and sends them on from its
 * own thread:
 *
 * - size trigger: as soon as the pending items reach send_batch_size (at once when that is 0, or
 *   when timeout is 0), it sends them; with send_batch_max_size it sends pieces of that many items
 *   and keeps a remainder smaller than send_batch_size pending, as otelcol does;
 * - timeout trigger: otelcol's timer restarts at every send and fires every `timeout`; pending
 *   items go out at the first tick after they arrived, all of them (in pieces of at most
 *   send_batch_max_size).
 *
 * Several pending batches are merged by concatenating their bytes (the repeated field 1 of an
 * Export*ServiceRequest appends) into one new buffer charged to the memory accounting; a single
 * batch that fits is forwarded as it is. Splitting uses otc_wire_split.
 *
 * Backpressure, not loss: when the next consumer answers a retryable error (an exporter's full
 * sending queue answers OTC_ERR_REFUSED), the piece it refused and every piece formed after it are
 * kept, in order, ahead of the pending list, and the processor is blocked: the thread offers the
 * head piece again after a backoff (10 ms doubling up to 1 s or the timeout, whichever is smaller)
 * and resumes batching once all of them went through. While blocked, consume refuses new data with
 * OTC_ERR_REFUSED once the items held reach twice the largest of send_batch_size,
 * send_batch_max_size and 8192, so that the receivers answer with a retryable status and the
 * clients keep the data; below that it accepts, the memory accounting (every held batch stays
 * charged, and the memory_limiter's admission refuses at its soft limit) being the outer bound.
 * consume never blocks. Final errors of the next consumer are counted as dropped items (the batch
 * processor has nobody to return them to, as in otelcol); so is what is still refused when the
 * shutdown's retry deadline passes. */
#include <pthread.h>
#include <stdbool.h>
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
#include "core/otlp_wire.h"

struct batch_config {
  int64_t send_batch_size;
  int64_t send_batch_max_size;
  int64_t timeout_ns;
};

static const struct otc_cfg_field batch_fields[] = {
    {"send_batch_size", OTC_CFGK_INT, "8192", offsetof(struct batch_config, send_batch_size), 0,
     4294967295.0},
    {"send_batch_max_size", OTC_CFGK_INT, "0", offsetof(struct batch_config, send_batch_max_size),
     0, 4294967295.0},
    {"timeout", OTC_CFGK_DURATION, "200ms", offsetof(struct batch_config, timeout_ns), 0, 0},
    {"metadata_keys", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"metadata_cardinality_limit", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

enum trigger { TRIGGER_SIZE, TRIGGER_TIMEOUT };

/* The first wait before offering refused data again; it doubles after each refusal up to the
 * smaller of BACKOFF_MAX_NS and the timeout. */
#define BACKOFF_INITIAL_NS 10000000LL
#define BACKOFF_MAX_NS 1000000000LL
/* How long shutdown keeps offering refused data before dropping it. */
#define SHUTDOWN_RETRY_NS 5000000000LL
/* The smallest send_batch_size-like figure the refusal bound is computed from, so that a small
 * send_batch_size does not make a short hiccup of the next consumer refuse clients at once. */
#define REFUSE_BOUND_FLOOR 8192

/* Batches in order, with their total items. */
struct piece_list {
  struct otc_batch **v;
  size_t n, cap;
  size_t items;
};

struct batch_processor {
  char *id;
  enum otc_signal signal;
  struct otc_consumer next;
  size_t send_size; /* send_batch_size */
  size_t max_size;  /* send_batch_max_size, 0: unlimited */
  int64_t timeout_ns;

  pthread_mutex_t lock;
  pthread_cond_t cond; /* on CLOCK_MONOTONIC */
  bool lock_init;
  /* Under lock: */
  struct otc_batch **pending; /* in arrival order */
  size_t n_pending, cap_pending;
  size_t pending_items;
  int64_t first_pending_ns; /* when the pending list last became non-empty */
  int64_t timer_reset_ns;   /* the last send (or start): the timer's phase */
  bool running;             /* the thread takes batches; otherwise consume forwards them at once */
  bool stopping;
  bool thread_started; /* a thread to join */
  pthread_t thread;
  /* Pieces the next consumer refused with a retryable error, and those formed after them, in
   * order: they come before the pending list. The processor is blocked while there are any. Only
   * the thread changes it. */
  struct piece_list retry;
  int64_t retry_at_ns; /* when to offer the head piece again */
  int64_t backoff_ns;  /* the wait after the next refusal */

  /* Set at create. */
  size_t refuse_bound;    /* items held at which consume refuses while blocked */
  int64_t backoff_max_ns; /* the longest wait between offers */

  /* Only the thread (or, once it is gone, shutdown) touches these. */
  struct otc_log_limiter error_log, block_log;

  struct otc_histogram *send_size_hist, *send_bytes_hist;
  struct otc_counter *size_trigger, *timeout_trigger, *incoming, *outgoing, *refused;
  struct otc_gauge *cardinality;
};

static const double send_size_bounds[] = {10,   25,    50,    75,    100,   250,   500,  750,
                                          1000, 2000,  3000,  4000,  5000,  6000,  7000, 8000,
                                          9000, 10000, 20000, 30000, 50000, 100000};
static const double send_bytes_bounds[] = {128,    256,     512,     1024,    2048,    4096,
                                           8192,   16384,   32768,   65536,   131072,  262144,
                                           524288, 1048576, 2097152, 4194304, 8388608, 16777216};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------
 * Sending */

static const char *drop_reason(int rc) {
  switch (rc) {
  case OTC_ERR_REFUSED:
    return "refused";
  case OTC_ERR_SHUTDOWN:
    return "shutdown";
  case OTC_ERR_NOMEM:
    return "out_of_memory";
  default:
    return "send_failed";
  }
}

/* Counts items lost and logs it, at most once a second: a failing exporter would otherwise log a
 * line per batch. */
static void report_drop(struct batch_processor *bp, int rc, size_t items) {
  otc_count_dropped(bp->id, bp->signal, drop_reason(rc), items);
  otc_log_limited(&bp->error_log, OTC_LOG_WARN, bp->id, "Sender failed: %s (%zu %s dropped)",
                  otc_strerror(rc), items, otc_signal_item_name(bp->signal));
}

/* Appends b to l, which takes the reference. Returns false (b untouched) when l cannot grow. */
static bool list_push(struct piece_list *l, struct otc_batch *b) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct otc_batch **v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return false;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = b;
  l->items += b->items;
  return true;
}

/* Offers b (the caller's reference) to the next consumer. consume takes a reference even when it
 * fails, so an extra one is taken first: when the answer is retryable the caller's reference is
 * still there to offer b again, and this returns true with *rc set. Otherwise (delivered, or a
 * final error, counted as dropped) the caller's reference is released and this returns false. */
static bool offer(struct batch_processor *bp, struct otc_batch *b, int *rc) {
  size_t items = b->items;
  *rc = otc_consume(&bp->next, otc_batch_ref(b));
  if (*rc != 0 && otc_err_retryable(*rc))
    return true;
  if (*rc != 0)
    report_drop(bp, *rc, items);
  otc_batch_unref(b);
  return false;
}

/* What one flush did: once a piece was refused, the pieces after it are not offered but kept
 * behind it, so that the order holds. */
struct send_state {
  bool refused;
  int rc; /* the refusal */
  struct piece_list held;
};

/* Keeps b (whose reference this takes) in st->held; out of memory, it is dropped. */
static void hold(struct batch_processor *bp, struct send_state *st, struct otc_batch *b) {
  if (!list_push(&st->held, b)) {
    report_drop(bp, OTC_ERR_NOMEM, b->items);
    otc_batch_unref(b);
  }
}

/* Hands b (whose reference this takes) to the next consumer, or keeps it when the next consumer
 * refuses it or refused an earlier piece. The send metrics count a piece once, when it is formed,
 * however many offers it takes. */
static void send_batch(struct batch_processor *bp, struct otc_batch *b, enum trigger trig,
                       struct send_state *st) {
  size_t items = b->items;
  otc_histogram_observe(bp->send_size_hist, (double)items);
  otc_histogram_observe(bp->send_bytes_hist, (double)b->len);
  otc_counter_add(trig == TRIGGER_SIZE ? bp->size_trigger : bp->timeout_trigger, 1);
  otc_counter_add(bp->outgoing, items);
  if (!st->refused) {
    if (!offer(bp, b, &st->rc))
      return;
    st->refused = true;
  }
  hold(bp, st, b);
}

struct split_ctx {
  struct batch_processor *bp;
  enum trigger trig;
  bool keep_remainder;    /* a size trigger: a last piece under send_batch_size stays */
  size_t remaining;       /* items not emitted yet, this piece included */
  int64_t received_ns;    /* of the oldest input, for the pieces */
  struct otc_batch *kept; /* the remainder, if kept */
  struct send_state *st;
};

static int split_piece(void *arg, const uint8_t *piece, size_t len, size_t items) {
  struct split_ctx *c = arg;
  struct batch_processor *bp = c->bp;
  /* Pieces are full except the last, and send_batch_max_size >= send_batch_size, so only the last
   * piece can be under the trigger. */
  bool keep = c->keep_remainder && c->remaining < bp->send_size;
  c->remaining -= items;
  int err = 0;
  struct otc_batch *b = otc_batch_copy(bp->signal, piece, len, items, false, &err);
  if (!b) {
    report_drop(bp, err, items);
    return 0;
  }
  b->received_ns = c->received_ns;
  if (keep)
    c->kept = b;
  else
    send_batch(bp, b, c->trig, c->st);
  return 0;
}

/* Sends b (whose reference this takes) whole when it fits send_batch_max_size, else in pieces.
 * With keep_remainder, returns the last piece when it holds fewer than send_batch_size items
 * instead of sending it. */
static struct otc_batch *send_or_split(struct batch_processor *bp, struct otc_batch *b,
                                       enum trigger trig, bool keep_remainder,
                                       struct send_state *st) {
  if (bp->max_size == 0 || b->items <= bp->max_size) {
    send_batch(bp, b, trig, st);
    return NULL;
  }
  struct split_ctx c = {.bp = bp,
                        .trig = trig,
                        .keep_remainder = keep_remainder,
                        .remaining = b->items,
                        .received_ns = b->received_ns,
                        .st = st};
  int rc = otc_wire_split(bp->signal, b->data, b->len, bp->max_size, split_piece, &c);
  if (rc != 0) {
    /* Whatever was not emitted is lost: out of memory, or bytes that are not a valid request. */
    report_drop(bp, rc, c.remaining);
  }
  otc_batch_unref(b);
  return c.kept;
}

/* Concatenates batches into one new batch (joined or copied) and drops, or with a join takes
 * over, their references. Returns NULL (inputs untouched) when out of memory. */
static struct otc_batch *merge(struct batch_processor *bp, struct otc_batch **list, size_t n) {
  size_t len = 0, items = 0;
  int64_t oldest = list[0]->received_ns;
  for (size_t i = 0; i < n; i++) {
    len += list[i]->len;
    items += list[i]->items;
    if (list[i]->received_ns < oldest)
      oldest = list[i]->received_ns;
  }
  /* A next consumer that sends a list of buffers gets the inputs joined by reference: no copy, no
   * second charge for the same bytes. A batch that send_batch_max_size will split is copied, as
   * the split reads one buffer. */
  if (bp->next.takes_parts && (bp->max_size == 0 || items <= bp->max_size))
    return otc_batch_join(bp->signal, list, n);
  /* Internal work replacing data already held: charged unconditionally (memory.h). */
  size_t charge = len + sizeof(struct otc_batch);
  otc_mem_charge(charge);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) {
    otc_mem_release(charge);
    return NULL;
  }
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    if (list[i]->len)
      memcpy(data + off, list[i]->data, list[i]->len);
    off += list[i]->len;
  }
  struct otc_batch *m = otc_batch_wrap(bp->signal, data, len, items, charge);
  if (!m)
    return NULL;
  m->received_ns = oldest;
  for (size_t i = 0; i < n; i++)
    otc_batch_unref(list[i]);
  return m;
}

/* Puts b back at the head of the pending list (called with the lock held). Returns false when
 * the list cannot grow. */
static bool push_front(struct batch_processor *bp, struct otc_batch *b) {
  if (bp->n_pending == bp->cap_pending) {
    size_t cap = bp->cap_pending ? bp->cap_pending * 2 : 16;
    struct otc_batch **p = realloc(bp->pending, cap * sizeof *p);
    if (!p)
      return false;
    bp->pending = p;
    bp->cap_pending = cap;
  }
  memmove(bp->pending + 1, bp->pending, bp->n_pending * sizeof *bp->pending);
  bp->pending[0] = b;
  if (bp->n_pending == 0)
    bp->first_pending_ns = b->received_ns;
  bp->n_pending++;
  bp->pending_items += b->items;
  return true;
}

/* Puts the pieces held by a flush (their references taken) ahead of the retry list, which
 * blocks the processor if it was not already (called with the lock held). */
static void block(struct batch_processor *bp, struct send_state *st) {
  bool was_blocked = bp->retry.n > 0;
  if (!was_blocked) {
    free(bp->retry.v);
    bp->retry = st->held;
    st->held = (struct piece_list){0};
  } else {
    size_t n = bp->retry.n + st->held.n;
    if (n > bp->retry.cap) {
      struct otc_batch **v = realloc(bp->retry.v, n * sizeof *v);
      if (!v) {
        pthread_mutex_unlock(&bp->lock);
        for (size_t i = 0; i < st->held.n; i++) {
          report_drop(bp, OTC_ERR_NOMEM, st->held.v[i]->items);
          otc_batch_unref(st->held.v[i]);
        }
        st->held.n = st->held.items = 0;
        pthread_mutex_lock(&bp->lock);
        return;
      }
      bp->retry.v = v;
      bp->retry.cap = n;
    }
    memmove(bp->retry.v + st->held.n, bp->retry.v, bp->retry.n * sizeof *bp->retry.v);
    memcpy(bp->retry.v, st->held.v, st->held.n * sizeof *st->held.v);
    bp->retry.n = n;
    bp->retry.items += st->held.items;
    st->held.n = st->held.items = 0;
  }
  if (was_blocked)
    return;
  int64_t now = now_ns();
  bp->backoff_ns =
      BACKOFF_INITIAL_NS < bp->backoff_max_ns ? BACKOFF_INITIAL_NS : bp->backoff_max_ns;
  bp->retry_at_ns = now + bp->backoff_ns;
  /* During shutdown the outcome is logged by drop_retry, if there is a loss. */
  if (!bp->stopping)
    otc_log_limited(&bp->block_log, OTC_LOG_WARN, bp->id,
                    "The next consumer refused data (%s): holding %zu %s and retrying; new data is "
                    "refused while %zu or more are held",
                    otc_strerror(st->rc), bp->retry.items, otc_signal_item_name(bp->signal),
                    bp->refuse_bound);
}

/* Sends everything pending. Called and returns with the lock held; sends without it, so that
 * consume never waits for the next consumer. Pieces the next consumer refuses go to the retry
 * list. */
static void flush(struct batch_processor *bp, enum trigger trig) {
  struct otc_batch **list = bp->pending;
  size_t n = bp->n_pending;
  bp->pending = NULL;
  bp->n_pending = bp->cap_pending = 0;
  bp->pending_items = 0;
  bp->timer_reset_ns = now_ns();
  pthread_mutex_unlock(&bp->lock);

  struct send_state st = {0};
  bool keep = trig == TRIGGER_SIZE && bp->max_size > 0;
  struct otc_batch *kept = NULL;
  if (n == 1) {
    kept = send_or_split(bp, list[0], trig, keep, &st);
  } else if (n > 1) {
    struct otc_batch *m = merge(bp, list, n);
    if (m) {
      kept = send_or_split(bp, m, trig, keep, &st);
    } else {
      /* No memory to merge: send them as they are rather than lose them. */
      for (size_t i = 0; i < n; i++)
        send_or_split(bp, list[i], trig, false, &st);
    }
  }
  free(list);

  pthread_mutex_lock(&bp->lock);
  /* The remainder goes back to the head of the pending list, behind any refused piece. */
  if (kept && !push_front(bp, kept)) {
    pthread_mutex_unlock(&bp->lock);
    send_batch(bp, kept, trig, &st);
    pthread_mutex_lock(&bp->lock);
  }
  if (st.held.n > 0)
    block(bp, &st);
  free(st.held.v);
}

/* Offers the retry list's pieces again, in order, until one is refused (then waits longer before
 * the next try) or all went through (the processor is no longer blocked). Called and returns with
 * the lock held; only the thread calls it, so the list cannot change while the lock is released. */
static void retry_pieces(struct batch_processor *bp) {
  size_t done = 0;
  bool refused = false;
  int rc = 0;
  while (done < bp->retry.n) {
    struct otc_batch *b = bp->retry.v[done];
    size_t items = b->items;
    pthread_mutex_unlock(&bp->lock);
    refused = offer(bp, b, &rc);
    pthread_mutex_lock(&bp->lock);
    if (refused)
      break;
    /* Delivered or dropped for good: no longer held (consume's bound sees it at once). */
    bp->retry.items -= items;
    done++;
  }
  memmove(bp->retry.v, bp->retry.v + done, (bp->retry.n - done) * sizeof *bp->retry.v);
  bp->retry.n -= done;
  if (refused) {
    bp->retry_at_ns = now_ns() + bp->backoff_ns;
    bp->backoff_ns =
        bp->backoff_ns * 2 < bp->backoff_max_ns ? bp->backoff_ns * 2 : bp->backoff_max_ns;
    return;
  }
  /* What piled up meanwhile goes at once: its timer tick, if not its size, has passed. */
  otc_debug(bp->id, "The next consumer accepts data again");
}

/* Drops everything in the retry list, counted with reason "shutdown" (called with the lock
 * held, by the thread). */
static void drop_retry(struct batch_processor *bp) {
  struct piece_list l = bp->retry;
  bp->retry = (struct piece_list){0};
  pthread_mutex_unlock(&bp->lock);
  if (l.items > 0) {
    otc_count_dropped(bp->id, bp->signal, "shutdown", l.items);
    otc_warn(bp->id, "Shutting down while the next consumer still refuses: %zu %s dropped", l.items,
             otc_signal_item_name(bp->signal));
  }
  for (size_t i = 0; i < l.n; i++)
    otc_batch_unref(l.v[i]);
  free(l.v);
  pthread_mutex_lock(&bp->lock);
}

/* ---------------------------------------------------------------------------------------------
 * The thread */

static bool size_triggered(const struct batch_processor *bp) {
  return bp->n_pending > 0 && (bp->pending_items >= bp->send_size || bp->timeout_ns == 0);
}

/* The first tick of otelcol's timer (restarted at each send, firing every timeout) at or after
 * the moment the pending list became non-empty. */
static int64_t timeout_deadline(const struct batch_processor *bp) {
  int64_t d = bp->timer_reset_ns + bp->timeout_ns;
  if (d < bp->first_pending_ns) {
    int64_t k = (bp->first_pending_ns - d + bp->timeout_ns - 1) / bp->timeout_ns;
    d += k * bp->timeout_ns;
  }
  return d;
}

static void wait_until(struct batch_processor *bp, int64_t deadline) {
  struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
  pthread_cond_timedwait(&bp->cond, &bp->lock, &ts);
}

static void *batch_main(void *arg) {
  struct batch_processor *bp = arg;
  pthread_mutex_lock(&bp->lock);
  while (!bp->stopping) {
    if (bp->retry.n > 0) {
      /* Blocked: nothing else goes before the refused pieces. */
      if (now_ns() >= bp->retry_at_ns)
        retry_pieces(bp);
      else
        wait_until(bp, bp->retry_at_ns);
      continue;
    }
    if (size_triggered(bp)) {
      flush(bp, TRIGGER_SIZE);
      continue;
    }
    if (bp->n_pending == 0) {
      pthread_cond_wait(&bp->cond, &bp->lock);
      continue;
    }
    int64_t deadline = timeout_deadline(bp);
    if (now_ns() >= deadline) {
      flush(bp, TRIGGER_TIMEOUT);
      continue;
    }
    wait_until(bp, deadline);
  }
  /* Shutdown: send everything, including what arrives while sending, then let consume forward
   * directly. What the next consumer keeps refusing is offered again until the deadline, then
   * dropped. */
  int64_t deadline = now_ns() + SHUTDOWN_RETRY_NS;
  if (bp->retry.n > 0)
    otc_info(bp->id, "Shutting down: offering the %zu %s the next consumer refused again for %d s",
             bp->retry.items + bp->pending_items, otc_signal_item_name(bp->signal),
             (int)(SHUTDOWN_RETRY_NS / 1000000000));
  for (;;) {
    if (bp->retry.n > 0) {
      int64_t t = now_ns();
      if (t >= deadline)
        drop_retry(bp);
      else if (t >= bp->retry_at_ns)
        retry_pieces(bp);
      else
        wait_until(bp, bp->retry_at_ns < deadline ? bp->retry_at_ns : deadline);
      continue;
    }
    if (bp->n_pending == 0)
      break;
    flush(bp, TRIGGER_TIMEOUT);
  }
  bp->running = false;
  pthread_mutex_unlock(&bp->lock);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The component */

static void batch_destroy(void *ctx);

static void *batch_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                          struct otc_cfg_err *err) {
  struct batch_processor *bp = NULL;
  struct batch_config c = {0};
  const char *id = args->id ? args->id : "batch";
  if (otc_cfg_apply(batch_fields, cfg, &c, id, err) != 0)
    goto fail;
  if (c.send_batch_max_size > 0 && c.send_batch_max_size < c.send_batch_size) {
    const struct otc_cfg_node *n = otc_cfg_get(cfg, "send_batch_max_size");
    otc_cfg_error(err, n ? n : cfg,
                  "send_batch_max_size must be greater or equal to send_batch_size");
    goto fail;
  }
  if (c.timeout_ns < 0) {
    const struct otc_cfg_node *n = otc_cfg_get(cfg, "timeout");
    otc_cfg_error(err, n ? n : cfg, "timeout must be greater or equal to 0");
    goto fail;
  }

  bp = calloc(1, sizeof *bp);
  if (!bp || !(bp->id = strdup(id))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  bp->signal = args->signal;
  bp->next = args->next;
  bp->send_size = (size_t)c.send_batch_size;
  bp->max_size = (size_t)c.send_batch_max_size;
  bp->timeout_ns = c.timeout_ns;
  size_t bound = bp->send_size > bp->max_size ? bp->send_size : bp->max_size;
  if (bound < REFUSE_BOUND_FLOOR)
    bound = REFUSE_BOUND_FLOOR;
  bp->refuse_bound = bound * 2;
  bp->backoff_max_ns = bp->timeout_ns < BACKOFF_MAX_NS ? bp->timeout_ns : BACKOFF_MAX_NS;
  if (bp->backoff_max_ns < BACKOFF_INITIAL_NS)
    bp->backoff_max_ns = BACKOFF_INITIAL_NS;

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&bp->lock, NULL);
  pthread_cond_init(&bp->cond, &ca);
  pthread_condattr_destroy(&ca);
  bp->lock_init = true;

  char esc[256], labels[384];
  otc_metrics_escape_label(bp->id, esc, sizeof esc);
  snprintf(labels, sizeof labels, "processor=\"%s\"", esc);
  bp->send_size_hist = otc_histogram_get("otelcol_processor_batch_batch_send_size",
                                         "Number of units in the batch", labels, send_size_bounds,
                                         sizeof send_size_bounds / sizeof send_size_bounds[0]);
  bp->send_bytes_hist = otc_histogram_get(
      "otelcol_processor_batch_batch_send_size_bytes",
      "Number of bytes in batch that was sent. Only available on detailed level.", labels,
      send_bytes_bounds, sizeof send_bytes_bounds / sizeof send_bytes_bounds[0]);
  bp->size_trigger =
      otc_counter_get("otelcol_processor_batch_batch_size_trigger_send",
                      "Number of times the batch was sent due to a size trigger", labels);
  bp->timeout_trigger =
      otc_counter_get("otelcol_processor_batch_timeout_trigger_send",
                      "Number of times the batch was sent due to a timeout trigger", labels);
  /* Without metadata_keys there is exactly one combination: the empty one. */
  bp->cardinality =
      otc_gauge_get("otelcol_processor_batch_metadata_cardinality",
                    "Number of distinct metadata value combinations being processed", labels);
  otc_gauge_set(bp->cardinality, 1);
  /* Ours: what consume refused while the next consumer pushed back (never counted as incoming). */
  bp->refused =
      otc_counter_get("otelcol_processor_batch_refused_items",
                      "Number of items refused because the next consumer pushed back", labels);
  /* Labels in the order otelcol's Prometheus endpoint prints them (sorted). */
  snprintf(labels, sizeof labels, "otel_signal=\"%s\",processor=\"%s\"",
           otc_signal_name(bp->signal), esc);
  bp->incoming = otc_counter_get("otelcol_processor_incoming_items",
                                 "Number of items passed to the processor. [Alpha]", labels);
  bp->outgoing = otc_counter_get("otelcol_processor_outgoing_items",
                                 "Number of items emitted from the processor. [Alpha]", labels);
  otc_debug(bp->id, "send_batch_size %zu, send_batch_max_size %zu, timeout %lld ms", bp->send_size,
            bp->max_size, (long long)(bp->timeout_ns / 1000000));
  return bp;

fail:
  batch_destroy(bp);
  return NULL;
}

static int batch_start(void *ctx) {
  struct batch_processor *bp = ctx;
  int rc = 0;
  pthread_mutex_lock(&bp->lock);
  if (bp->thread_started)
    goto cleanup;
  bp->running = true;
  bp->stopping = false;
  bp->timer_reset_ns = now_ns();
  if (pthread_create(&bp->thread, NULL, batch_main, bp) != 0) {
    bp->running = false;
    otc_error(bp->id, "cannot start the batch thread");
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  bp->thread_started = true;
cleanup:
  pthread_mutex_unlock(&bp->lock);
  return rc;
}

/* Takes the reference to b. Before start and after shutdown there is no thread: b is forwarded
 * at once and the next consumer's answer returned. While the next consumer pushes back and the
 * items held reach the bound, b is released and OTC_ERR_REFUSED returned. */
static int batch_consume(void *ctx, struct otc_batch *b) {
  struct batch_processor *bp = ctx;
  size_t items = b->items;
  pthread_mutex_lock(&bp->lock);
  if (!bp->running) {
    pthread_mutex_unlock(&bp->lock);
    otc_counter_add(bp->incoming, items);
    otc_counter_add(bp->outgoing, items);
    return otc_consume(&bp->next, b);
  }
  if (bp->retry.n > 0 && bp->pending_items + bp->retry.items >= bp->refuse_bound) {
    pthread_mutex_unlock(&bp->lock);
    otc_counter_add(bp->refused, items);
    otc_batch_unref(b);
    return OTC_ERR_REFUSED;
  }
  otc_counter_add(bp->incoming, items);
  if (bp->n_pending == bp->cap_pending) {
    size_t cap = bp->cap_pending ? bp->cap_pending * 2 : 16;
    struct otc_batch **p = realloc(bp->pending, cap * sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&bp->lock);
      otc_batch_unref(b);
      return OTC_ERR_NOMEM;
    }
    bp->pending = p;
    bp->cap_pending = cap;
  }
  bool was_empty = bp->n_pending == 0;
  if (was_empty)
    bp->first_pending_ns = now_ns();
  bp->pending[bp->n_pending++] = b;
  bp->pending_items += b->items;
  /* The thread sleeps without a deadline while nothing is pending; while blocked it waits for its
   * next retry whatever arrives. */
  if (bp->retry.n == 0 && (was_empty || size_triggered(bp)))
    pthread_cond_signal(&bp->cond);
  pthread_mutex_unlock(&bp->lock);
  return 0;
}

/* Sends everything pending, then stops the thread; idempotent. */
static int batch_shutdown(void *ctx) {
  struct batch_processor *bp = ctx;
  if (!bp)
    return 0;
  pthread_mutex_lock(&bp->lock);
  bool join = bp->thread_started;
  bp->thread_started = false;
  bp->stopping = true;
  pthread_cond_signal(&bp->cond);
  pthread_mutex_unlock(&bp->lock);
  if (join)
    pthread_join(bp->thread, NULL);
  return 0;
}

static void batch_destroy(void *ctx) {
  struct batch_processor *bp = ctx;
  if (!bp)
    return;
  if (bp->lock_init) {
    batch_shutdown(bp);
    pthread_mutex_destroy(&bp->lock);
    pthread_cond_destroy(&bp->cond);
  }
  /* Nothing stays pending or held once the thread ran its shutdown; this only frees the lists. */
  for (size_t i = 0; i < bp->n_pending; i++)
    otc_batch_unref(bp->pending[i]);
  free(bp->pending);
  for (size_t i = 0; i < bp->retry.n; i++)
    otc_batch_unref(bp->retry.v[i]);
  free(bp->retry.v);
  free(bp->id);
  free(bp);
}

const struct otc_component_ops otc_processor_batch = {
    .type = "batch",
    .aliases = NULL,
    .kind = OTC_KIND_PROCESSOR,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = batch_create,
    .start = batch_start,
    .consume = batch_consume,
    .shutdown = batch_shutdown,
    .destroy = batch_destroy,
};
