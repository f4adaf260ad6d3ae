/* The sending queue and retry loop, against a scripted fake `send` (no network): exact counts,
 * backoff timing, Retry-After, permanent errors, max_elapsed_time, a full queue, blocking on
 * overflow, shutdown, memory, and many consumers at once. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common/exporter_helper.h"
#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "test.h"

#define MS 1000000LL
#define MAX_BATCHES 4096

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms) {
  usleep((useconds_t)ms * 1000);
}

/* What the fake destination answers to one attempt of one batch. */
enum script {
  OK_ALWAYS,
  RETRY_N_THEN_OK,  /* retryable for the first `n` attempts of each batch */
  RETRY_AFTER_ONCE, /* retryable with retry_after_ns on the first attempt */
  PERMANENT,        /* permanent with `reason` */
  RETRY_ALWAYS,     /* retryable forever */
  GATED_OK,         /* waits until the gate opens, then succeeds */
  RANDOM_FAILURES,  /* retryable on about a third of the attempts */
  SLOW_OK,          /* sleeps `delay_ms`, then succeeds */
};

struct fake {
  enum script script;
  int n;
  int64_t retry_after_ns;
  int delay_ms;
  const char *reason;

  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool gate_open;
  int calls;
  int in_send, max_in_send;
  unsigned max_worker;
  uint32_t workers_seen; /* bit per worker index */
  uint64_t delivered_items;
  int attempts[MAX_BATCHES];
  int delivered[MAX_BATCHES];
  int64_t times[64]; /* of the first attempts, in order */
  int n_times;
};

static void fake_init(struct fake *f, enum script s) {
  memset(f, 0, sizeof *f);
  f->script = s;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cond, NULL);
}

static void fake_fini(struct fake *f) {
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cond);
}

static void fake_open_gate(struct fake *f) {
  pthread_mutex_lock(&f->mu);
  f->gate_open = true;
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->mu);
}

static int fake_in_send(struct fake *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->in_send;
  pthread_mutex_unlock(&f->mu);
  return n;
}

static int fake_calls(struct fake *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->calls;
  pthread_mutex_unlock(&f->mu);
  return n;
}

/* A batch's id is in its first 4 bytes. */
static uint32_t batch_id(const struct otc_batch *b) {
  uint32_t id;
  memcpy(&id, b->data, sizeof id);
  return id;
}

static void fake_send(void *exporter, unsigned worker, struct otc_batch *b,
                      struct otc_send_result *res) {
  struct fake *f = exporter;
  uint32_t id = batch_id(b);
  pthread_mutex_lock(&f->mu);
  int attempt = f->attempts[id % MAX_BATCHES]++;
  f->calls++;
  if (f->n_times < 64)
    f->times[f->n_times++] = now_ns();
  if (++f->in_send > f->max_in_send)
    f->max_in_send = f->in_send;
  if (worker > f->max_worker)
    f->max_worker = worker;
  f->workers_seen |= 1u << (worker % 32);
  if (f->script == GATED_OK)
    while (!f->gate_open)
      pthread_cond_wait(&f->cond, &f->mu);
  pthread_mutex_unlock(&f->mu);

  if (f->script == SLOW_OK)
    sleep_ms(f->delay_ms);
  res->err = 0;
  switch (f->script) {
  case RETRY_N_THEN_OK:
    if (attempt < f->n)
      res->err = OTC_ERR_RETRYABLE;
    break;
  case RETRY_AFTER_ONCE:
    if (attempt == 0) {
      res->err = OTC_ERR_RETRYABLE;
      res->retry_after_ns = f->retry_after_ns;
    }
    break;
  case PERMANENT:
    res->err = OTC_ERR_PERMANENT;
    snprintf(res->reason, sizeof res->reason, "%s", f->reason);
    break;
  case RETRY_ALWAYS:
    res->err = attempt % 2 ? OTC_ERR_IO : OTC_ERR_RETRYABLE;
    break;
  case RANDOM_FAILURES:
    /* A third of the first three attempts fail, chosen by a hash of (batch, attempt). */
    if (attempt < 3 && ((id * 2654435761u) ^ ((uint32_t)attempt * 0x85ebca6bu)) % 3 == 0)
      res->err = OTC_ERR_RETRYABLE;
    break;
  default:
    break;
  }
  if (res->err != 0 && !res->reason[0])
    snprintf(res->reason, sizeof res->reason, "HTTP 503");

  pthread_mutex_lock(&f->mu);
  f->in_send--;
  if (res->err == 0) {
    f->delivered_items += b->items;
    f->delivered[id % MAX_BATCHES]++;
  }
  pthread_mutex_unlock(&f->mu);
}

static struct otc_batch *make_batch(uint32_t id, size_t items, enum otc_signal s) {
  uint8_t data[64];
  memset(data, 0xab, sizeof data);
  memcpy(data, &id, sizeof id);
  return otc_batch_copy(s, data, sizeof data, items, false, NULL);
}

static struct otc_retry_config fast_retry(int64_t initial_ms, double multiplier, int64_t max_ms,
                                          int64_t max_elapsed_ms) {
  struct otc_retry_config r = {.enabled = true,
                               .initial_interval_ns = initial_ms * MS,
                               .max_interval_ns = max_ms * MS,
                               .max_elapsed_time_ns = max_elapsed_ms * MS,
                               .multiplier = multiplier,
                               .randomization_factor = 0};
  return r;
}

static struct otc_queue_config queue(int64_t consumers, int64_t size, bool block) {
  struct otc_queue_config q = {
      .enabled = true, .num_consumers = consumers, .queue_size = size, .block_on_overflow = block};
  return q;
}

static uint64_t counter(const char *name, const char *exporter) {
  char labels[256];
  snprintf(labels, sizeof labels, "exporter=\"%s\"", exporter);
  return otc_counter_value(otc_counter_get(name, "", labels));
}

static uint64_t dropped(const char *exporter, const char *signal, const char *reason) {
  char labels[256];
  snprintf(labels, sizeof labels, "component=\"%s\",otel_signal=\"%s\",reason=\"%s\"", exporter,
           signal, reason);
  return otc_counter_value(otc_counter_get("otelcol_dropped_items", "", labels));
}

static double gauge(const char *name, const char *exporter, const char *data_type) {
  char labels[256];
  snprintf(labels, sizeof labels, "data_type=\"%s\",exporter=\"%s\"", data_type, exporter);
  return otc_gauge_value(otc_gauge_get(name, "", labels));
}

static struct otc_cfg_node *load(const char *yaml, struct otc_cfg_err *err) {
  return otc_cfg_load_string(yaml, strlen(yaml), "test.yaml", err);
}

TEST(config_defaults) {
  struct otc_cfg_err err = {{0}};
  struct otc_retry_config r;
  struct otc_queue_config q;
  CHECK_EQ_INT(otc_retry_config_parse(NULL, &r, "otlp", &err), 0);
  CHECK(r.enabled);
  CHECK_EQ_INT(r.initial_interval_ns, 5000 * MS);
  CHECK_EQ_INT(r.max_interval_ns, 30000 * MS);
  CHECK_EQ_INT(r.max_elapsed_time_ns, 300000 * MS);
  CHECK(r.multiplier == 1.5);
  CHECK(r.randomization_factor == 0.5);
  CHECK_EQ_INT(otc_queue_config_parse(NULL, 1000, &q, "otlp", &err), 0);
  CHECK(q.enabled);
  CHECK_EQ_INT(q.num_consumers, 10);
  CHECK_EQ_INT(q.queue_size, 1000);
  CHECK(!q.block_on_overflow);
  CHECK_EQ_INT(otc_queue_config_parse(NULL, 10000, &q, "prw", &err), 0);
  CHECK_EQ_INT(q.queue_size, 10000);
}

TEST(config_values_and_errors) {
  struct otc_cfg_err err = {{0}};
  struct otc_retry_config r;
  struct otc_queue_config q;
  struct otc_cfg_node *root = load("r:\n  enabled: true\n  initial_interval: 1s\n"
                                   "  max_interval: 2s\n  max_elapsed_time: 0\n  multiplier: 2\n"
                                   "  randomization_factor: 0\n"
                                   "q:\n  num_consumers: 3\n  queue_size: 7\n"
                                   "  block_on_overflow: true\n  sizer: requests\n"
                                   "  wait_for_result: false\n  batch:\n    min_size: 10\n"
                                   "bad_size:\n  queue_size: 0\n"
                                   "off:\n  enabled: false\n  queue_size: 0\n"
                                   "bad_consumers:\n  num_consumers: 0\n"
                                   "storage:\n  storage: file_storage\n"
                                   "unknown:\n  queue_sise: 5\n"
                                   "rf:\n  randomization_factor: 1.5\n"
                                   "elapsed:\n  max_interval: 10s\n  max_elapsed_time: 5s\n"
                                   "neg:\n  initial_interval: -1s\n"
                                   "roff:\n  enabled: false\n  randomization_factor: 7\n",
                                   &err);
  CHECK(root != NULL);
  if (!root) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  CHECK_EQ_INT(otc_retry_config_parse(otc_cfg_get(root, "r"), &r, "otlp", &err), 0);
  CHECK_EQ_INT(r.initial_interval_ns, 1000 * MS);
  CHECK_EQ_INT(r.max_interval_ns, 2000 * MS);
  CHECK_EQ_INT(r.max_elapsed_time_ns, 0);
  CHECK(r.multiplier == 2);
  CHECK(r.randomization_factor == 0);
  CHECK_EQ_INT(otc_queue_config_parse(otc_cfg_get(root, "q"), 1000, &q, "otlp", &err), 0);
  CHECK_EQ_INT(q.num_consumers, 3);
  CHECK_EQ_INT(q.queue_size, 7);
  CHECK(q.block_on_overflow);

  CHECK_EQ_INT(otc_queue_config_parse(otc_cfg_get(root, "bad_size"), 1000, &q, "otlp", &err),
               OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "`queue_size` must be positive");
  CHECK_CONTAINS(err.msg, "test.yaml:");
  CHECK_EQ_INT(otc_queue_config_parse(otc_cfg_get(root, "off"), 1000, &q, "otlp", &err), 0);
  CHECK(!q.enabled);
  CHECK_EQ_INT(otc_queue_config_parse(otc_cfg_get(root, "bad_consumers"), 1000, &q, "otlp", &err),
               OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "`num_consumers` must be positive");
  /* storage is read as an extension id; binding it needs that extension enabled in the service,
   * which a component built alone has not. */
  CHECK_EQ_INT(otc_queue_config_parse(otc_cfg_get(root, "storage"), 1000, &q, "otlp", &err), 0);
  CHECK_EQ_STR(q.storage, "file_storage");
  struct otc_create_args alone = {.id = "otlp"};
  CHECK_EQ_INT(otc_queue_config_bind_storage(&q, &alone, &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "is not a file_storage extension enabled in service::extensions");
  CHECK_EQ_INT(otc_queue_config_parse(otc_cfg_get(root, "unknown"), 1000, &q, "otlp", &err),
               OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "queue_sise");

  CHECK_EQ_INT(otc_retry_config_parse(otc_cfg_get(root, "rf"), &r, "otlp", &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "'randomization_factor' must be within [0, 1]");
  CHECK_EQ_INT(otc_retry_config_parse(otc_cfg_get(root, "elapsed"), &r, "otlp", &err),
               OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "'max_elapsed_time' must not be less than 'max_interval'");
  CHECK_EQ_INT(otc_retry_config_parse(otc_cfg_get(root, "neg"), &r, "otlp", &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "'initial_interval' must be non-negative");
  CHECK_EQ_INT(otc_retry_config_parse(otc_cfg_get(root, "roff"), &r, "otlp", &err), 0);
  CHECK(!r.enabled);
  otc_cfg_free(root);
}

TEST(delivered_counts_exact) {
  uint64_t held0 = otc_mem_held();
  struct fake f;
  fake_init(&f, OK_ALWAYS);
  struct otc_queue_config q = queue(4, 200, false);
  struct otc_retry_config r = fast_retry(10, 2, 100, 1000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("ok/exact", &q, &r, fake_send, &f);
  CHECK(h != NULL);
  otc_exporter_helper_register_signals(h, OTC_SIGNAL_BIT(OTC_SIGNAL_TRACES));
  CHECK(gauge("otelcol_exporter_queue_capacity", "ok/exact", "traces") == 200);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  for (uint32_t i = 0; i < 100; i++)
    CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(i, 3, OTC_SIGNAL_TRACES)), 0);
  for (uint32_t i = 100; i < 110; i++)
    CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(i, 2, OTC_SIGNAL_LOGS)), 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.delivered_items, 320);
  CHECK_EQ_INT(f.calls, 110);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "ok/exact"), 300);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "ok/exact"), 20);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_spans", "ok/exact"), 0);
  CHECK(f.max_worker < 4);
  CHECK_EQ_INT(otc_exporter_helper_queue_len(h), 0);
  CHECK(gauge("otelcol_exporter_queue_size", "ok/exact", "traces") == 0);
  CHECK(gauge("otelcol_exporter_queue_capacity", "ok/exact", "logs") == 200);
  otc_exporter_helper_shutdown(h, 5000 * MS); /* idempotent */
  otc_exporter_helper_destroy(h);
  otc_exporter_helper_destroy(NULL);
  CHECK_EQ_INT(otc_mem_held(), held0);
  fake_fini(&f);
}

TEST(retry_then_success_with_backoff) {
  uint64_t held0 = otc_mem_held();
  struct fake f;
  fake_init(&f, RETRY_N_THEN_OK);
  f.n = 3;
  struct otc_queue_config q = queue(1, 10, false);
  struct otc_retry_config r = fast_retry(20, 2, 1000, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("retry/ok", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 5, OTC_SIGNAL_METRICS)), 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.calls, 4);
  CHECK_EQ_INT(f.delivered_items, 5);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_metric_points", "retry/ok"), 5);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_metric_points", "retry/ok"), 0);
  /* Intervals of 20, 40 and 80 ms (no jitter), each honoured, none wildly overshot. */
  int64_t want[3] = {20, 40, 80};
  for (int i = 0; i < 3 && f.n_times == 4; i++) {
    int64_t gap = (f.times[i + 1] - f.times[i]) / MS;
    CHECK(gap >= want[i]);
    CHECK(gap < want[i] + 500); /* loose: loaded machines oversleep */
  }
  otc_exporter_helper_destroy(h);
  CHECK_EQ_INT(otc_mem_held(), held0);
  fake_fini(&f);
}

TEST(backoff_jitter_and_cap) {
  struct fake f;
  fake_init(&f, RETRY_N_THEN_OK);
  f.n = 5;
  struct otc_queue_config q = queue(1, 10, false);
  struct otc_retry_config r = fast_retry(20, 3, 40, 5000);
  r.randomization_factor = 0.5;
  struct otc_exporter_helper *h = otc_exporter_helper_create("retry/jit", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 1, OTC_SIGNAL_TRACES)), 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.calls, 6);
  /* Interval 20, then capped at 40, each within ±50%. */
  for (int i = 0; i < 5 && f.n_times == 6; i++) {
    int64_t base = i == 0 ? 20 : 40;
    int64_t gap = (f.times[i + 1] - f.times[i]) / MS;
    CHECK(gap >= base / 2 - 1);
    CHECK(gap < base * 3 / 2 + 500);
  }
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(retry_after_honoured) {
  struct fake f;
  fake_init(&f, RETRY_AFTER_ONCE);
  f.retry_after_ns = 200 * MS;
  struct otc_queue_config q = queue(2, 10, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("retry/after", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 2, OTC_SIGNAL_LOGS)), 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.calls, 2);
  CHECK_EQ_INT(f.delivered_items, 2);
  if (f.n_times == 2) {
    CHECK(f.times[1] - f.times[0] >= 200 * MS);
    CHECK(f.times[1] - f.times[0] < 400 * MS);
  }
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(permanent_dropped_once_and_logged_rate_limited) {
  struct fake f;
  fake_init(&f, PERMANENT);
  f.reason = "HTTP 400: bad request: line too long";
  struct otc_queue_config q = queue(4, 100, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("perm", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);

  /* The log goes to stderr: capture it to count the lines. */
  fflush(stderr);
  FILE *cap = tmpfile();
  int saved = dup(STDERR_FILENO);
  dup2(fileno(cap), STDERR_FILENO);
  for (uint32_t i = 0; i < 50; i++)
    otc_exporter_helper_consume(h, make_batch(i, 4, OTC_SIGNAL_TRACES));
  otc_exporter_helper_shutdown(h, 5000 * MS);
  dup2(saved, STDERR_FILENO);
  close(saved);

  CHECK_EQ_INT(f.calls, 50); /* one attempt per batch: no retry storm */
  for (int i = 0; i < 50; i++)
    CHECK_EQ_INT(f.attempts[i], 1);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_spans", "perm"), 200);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "perm"), 0);
  CHECK_EQ_INT(dropped("perm", "traces", "http_400"), 200);

  char buf[8192];
  rewind(cap);
  size_t n = fread(buf, 1, sizeof buf - 1, cap);
  buf[n] = '\0';
  fclose(cap);
  int lines = 0;
  for (char *p = buf; (p = strstr(p, "exporting failed")) != NULL; p++)
    lines++;
  /* 50 failures within well under a second: one line, then at most the suppressed-count summary. */
  CHECK(lines >= 1);
  CHECK(lines <= 2);
  CHECK_CONTAINS(buf, "HTTP 400: bad request");
  CHECK_CONTAINS(buf, "similar messages");
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(permanent_grpc_reason_label) {
  struct fake f;
  fake_init(&f, PERMANENT);
  f.reason = "gRPC INVALID_ARGUMENT: bad data";
  struct otc_queue_config q = queue(1, 10, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("perm/grpc", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 3, OTC_SIGNAL_METRICS)), 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(dropped("perm/grpc", "metrics", "grpc_invalid_argument"), 3);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(max_elapsed_time_exhausted) {
  struct fake f;
  fake_init(&f, RETRY_ALWAYS);
  struct otc_queue_config q = queue(1, 10, false);
  struct otc_retry_config r = fast_retry(20, 1, 20, 100);
  struct otc_exporter_helper *h = otc_exporter_helper_create("exhaust", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  int64_t t0 = now_ns();
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 7, OTC_SIGNAL_LOGS)), 0);
  while (counter("otelcol_exporter_send_failed_log_records", "exhaust") == 0 &&
         now_ns() - t0 < 2000 * MS)
    sleep_ms(5);
  int64_t took = now_ns() - t0;
  otc_exporter_helper_shutdown(h, 5000 * MS);
  /* Attempts at about 0, 20, 40, 60, 80 (and 100) ms; the next would start past 100 ms. */
  CHECK(f.calls >= 4);
  CHECK(f.calls <= 6);
  CHECK(took >= 80 * MS);
  CHECK(took < 500 * MS);
  CHECK_EQ_INT(dropped("exhaust", "logs", "retry_exhausted"), 7);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_log_records", "exhaust"), 7);
  CHECK_EQ_INT(f.delivered_items, 0);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(retry_disabled_drops_at_first_failure) {
  struct fake f;
  fake_init(&f, RETRY_ALWAYS);
  struct otc_queue_config q = queue(1, 10, false);
  struct otc_retry_config r = fast_retry(20, 1, 20, 100);
  r.enabled = false;
  struct otc_exporter_helper *h = otc_exporter_helper_create("noretry", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 2, OTC_SIGNAL_LOGS)), 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.calls, 1);
  CHECK_EQ_INT(dropped("noretry", "logs", "retry_disabled"), 2);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(queue_full_refused) {
  uint64_t held0 = otc_mem_held();
  struct fake f;
  fake_init(&f, GATED_OK);
  struct otc_queue_config q = queue(1, 2, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("full", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(0, 1, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 200 && fake_in_send(&f) == 0; i++)
    sleep_ms(5);
  CHECK_EQ_INT(fake_in_send(&f), 1); /* the consumer holds batch 0 */
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 1, OTC_SIGNAL_TRACES)), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(2, 1, OTC_SIGNAL_TRACES)), 0);
  CHECK_EQ_INT(otc_exporter_helper_queue_len(h), 2);
  CHECK(gauge("otelcol_exporter_queue_size", "full", "traces") == 2);
  CHECK(otc_mem_held() > held0); /* the queued batches stay charged */
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(3, 9, OTC_SIGNAL_TRACES)),
               OTC_ERR_REFUSED);
  CHECK_EQ_INT(counter("otelcol_exporter_enqueue_failed_spans", "full"), 9);
  /* Refused back to the caller, which retries or answers its client: not a drop. */
  CHECK_EQ_INT(dropped("full", "traces", "queue_full"), 0);
  fake_open_gate(&f);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.delivered_items, 3);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "full"), 3);
  CHECK(gauge("otelcol_exporter_queue_size", "full", "traces") == 0);
  /* After shutdown nothing is accepted. */
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(4, 1, OTC_SIGNAL_TRACES)),
               OTC_ERR_SHUTDOWN);
  otc_exporter_helper_destroy(h);
  CHECK_EQ_INT(otc_mem_held(), held0);
  fake_fini(&f);
}

struct producer {
  struct otc_exporter_helper *h;
  uint32_t first, count;
  size_t items;
  int rc;
  atomic_int done;
};

static void *produce(void *arg) {
  struct producer *p = arg;
  p->rc = 0;
  for (uint32_t i = p->first; i < p->first + p->count; i++) {
    int rc = otc_exporter_helper_consume(p->h, make_batch(i, p->items, OTC_SIGNAL_TRACES));
    if (rc != 0)
      p->rc = rc;
  }
  atomic_store(&p->done, 1);
  return NULL;
}

TEST(block_on_overflow_waits_for_room) {
  struct fake f;
  fake_init(&f, GATED_OK);
  struct otc_queue_config q = queue(1, 1, true);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("block", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(0, 1, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 200 && fake_in_send(&f) == 0; i++)
    sleep_ms(5);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 1, OTC_SIGNAL_TRACES)), 0);
  struct producer p = {.h = h, .first = 2, .count = 3, .items = 1};
  pthread_t t;
  pthread_create(&t, NULL, produce, &p);
  sleep_ms(100);
  CHECK_EQ_INT(atomic_load(&p.done), 0); /* blocked, not refused */
  fake_open_gate(&f);
  pthread_join(t, NULL);
  CHECK_EQ_INT(p.rc, 0);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.delivered_items, 5);
  CHECK_EQ_INT(counter("otelcol_exporter_enqueue_failed_spans", "block"), 0);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

static void *open_gate_later(void *arg) {
  sleep_ms(300);
  fake_open_gate(arg);
  return NULL;
}

TEST(block_on_overflow_released_by_shutdown) {
  struct fake f;
  fake_init(&f, GATED_OK);
  struct otc_queue_config q = queue(1, 1, true);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("block/stop", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(0, 1, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 200 && fake_in_send(&f) == 0; i++)
    sleep_ms(5);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 1, OTC_SIGNAL_TRACES)), 0);
  struct producer p = {.h = h, .first = 2, .count = 1, .items = 4};
  pthread_t t, g;
  pthread_create(&t, NULL, produce, &p);
  sleep_ms(50);
  CHECK_EQ_INT(atomic_load(&p.done), 0);
  /* The send in progress ends only when the gate opens; shutdown must free the producer first. */
  pthread_create(&g, NULL, open_gate_later, &f);
  int64_t t0 = now_ns();
  otc_exporter_helper_shutdown(h, 100 * MS);
  pthread_join(t, NULL);
  pthread_join(g, NULL);
  CHECK_EQ_INT(p.rc, OTC_ERR_SHUTDOWN);
  CHECK_EQ_INT(counter("otelcol_exporter_enqueue_failed_spans", "block/stop"), 4);
  /* Batch 0 was being sent and completes; batch 1 was queued past the deadline and is dropped; the
   * producer's batch was refused back to it (enqueue_failed), not dropped here. */
  CHECK_EQ_INT(f.delivered_items, 1);
  CHECK_EQ_INT(dropped("block/stop", "traces", "shutdown"), 1);
  CHECK(now_ns() - t0 < 2000 * MS);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(shutdown_drains_until_deadline_then_drops) {
  uint64_t held0 = otc_mem_held();
  struct fake f;
  fake_init(&f, SLOW_OK);
  f.delay_ms = 20;
  struct otc_queue_config q = queue(1, 100, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("drain", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  for (uint32_t i = 0; i < 50; i++)
    CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(i, 2, OTC_SIGNAL_LOGS)), 0);
  int64_t t0 = now_ns();
  otc_exporter_helper_shutdown(h, 150 * MS);
  int64_t took = now_ns() - t0;
  CHECK(took >= 140 * MS);
  CHECK(took < 400 * MS);
  uint64_t sent = counter("otelcol_exporter_sent_log_records", "drain");
  uint64_t lost = dropped("drain", "logs", "shutdown");
  CHECK(sent >= 2 * 3);
  CHECK(sent < 100);
  CHECK_EQ_INT(sent + lost, 100);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_log_records", "drain"), lost);
  CHECK_EQ_INT(f.delivered_items, sent);
  CHECK_EQ_INT(otc_exporter_helper_queue_len(h), 0);
  otc_exporter_helper_destroy(h);
  CHECK_EQ_INT(otc_mem_held(), held0);
  fake_fini(&f);
}

TEST(shutdown_gives_retrying_batch_one_last_attempt) {
  struct fake f;
  fake_init(&f, RETRY_N_THEN_OK);
  f.n = 1; /* fails once, then would succeed: the last attempt delivers it */
  struct otc_queue_config q = queue(1, 10, false);
  struct otc_retry_config r = fast_retry(10000, 1.5, 30000, 300000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("last", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 3, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 200 && fake_calls(&f) == 0; i++)
    sleep_ms(5);
  sleep_ms(20);
  int64_t t0 = now_ns();
  otc_exporter_helper_shutdown(h, 500 * MS);
  CHECK(now_ns() - t0 < 200 * MS); /* no waiting for the 10 s backoff */
  CHECK_EQ_INT(f.calls, 2);
  CHECK_EQ_INT(f.delivered_items, 3);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);

  /* Failing again, it is dropped and counted at once. */
  fake_init(&f, RETRY_ALWAYS);
  h = otc_exporter_helper_create("last/fail", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 3, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 200 && fake_calls(&f) == 0; i++)
    sleep_ms(5);
  sleep_ms(20);
  t0 = now_ns();
  otc_exporter_helper_shutdown(h, 500 * MS);
  CHECK(now_ns() - t0 < 200 * MS);
  CHECK_EQ_INT(f.calls, 2);
  CHECK_EQ_INT(dropped("last/fail", "traces", "shutdown"), 3);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);

  /* With no time left, there is no last attempt. */
  fake_init(&f, RETRY_ALWAYS);
  h = otc_exporter_helper_create("last/none", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 3, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 200 && fake_calls(&f) == 0; i++)
    sleep_ms(5);
  sleep_ms(20);
  otc_exporter_helper_shutdown(h, 0);
  CHECK_EQ_INT(f.calls, 1);
  CHECK_EQ_INT(dropped("last/none", "traces", "shutdown"), 3);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

TEST(destroy_without_start_releases_queued) {
  uint64_t held0 = otc_mem_held();
  struct fake f;
  fake_init(&f, OK_ALWAYS);
  struct otc_queue_config q = queue(2, 10, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("nostart", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 3, OTC_SIGNAL_TRACES)), 0);
  CHECK(otc_mem_held() > held0);
  int64_t t0 = now_ns();
  otc_exporter_helper_shutdown(h, 1000 * MS);
  CHECK(now_ns() - t0 < 100 * MS); /* nothing could drain it: no waiting */
  CHECK_EQ_INT(dropped("nostart", "traces", "shutdown"), 3);
  otc_exporter_helper_destroy(h);
  CHECK_EQ_INT(otc_mem_held(), held0);
  CHECK_EQ_INT(f.calls, 0);
  fake_fini(&f);
}

TEST(many_consumers_exact) {
  uint64_t held0 = otc_mem_held();
  static struct fake f;
  fake_init(&f, RANDOM_FAILURES);
  struct otc_queue_config q = queue(8, 64, true);
  struct otc_retry_config r = fast_retry(1, 1.5, 3, 5000);
  r.randomization_factor = 0.5;
  struct otc_exporter_helper *h = otc_exporter_helper_create("many", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  struct producer p[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    p[i] = (struct producer){.h = h, .first = (uint32_t)i * 500, .count = 500, .items = 1 + i};
    pthread_create(&t[i], NULL, produce, &p[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    CHECK_EQ_INT(p[i].rc, 0);
  }
  otc_exporter_helper_shutdown(h, 10000 * MS);
  uint64_t want = 500 * (1 + 2 + 3 + 4);
  CHECK_EQ_INT(f.delivered_items, want);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "many"), want);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_spans", "many"), 0);
  int dup = 0, missing = 0;
  for (int i = 0; i < 2000; i++) {
    dup += f.delivered[i] > 1;
    missing += f.delivered[i] == 0;
  }
  CHECK_EQ_INT(dup, 0);
  CHECK_EQ_INT(missing, 0);
  CHECK(f.calls > 2000); /* some attempts failed and were retried */
  CHECK(f.max_worker < 8);
  otc_exporter_helper_destroy(h);
  CHECK_EQ_INT(otc_mem_held(), held0);
  fake_fini(&f);
}

TEST(consumers_send_in_parallel) {
  struct fake f;
  fake_init(&f, GATED_OK);
  struct otc_queue_config q = queue(8, 16, false);
  struct otc_retry_config r = fast_retry(10, 1.5, 50, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("parallel", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  for (uint32_t i = 0; i < 10; i++)
    CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(i, 1, OTC_SIGNAL_TRACES)), 0);
  for (int i = 0; i < 400 && fake_in_send(&f) < 8; i++)
    sleep_ms(5);
  /* Eight sends at once, one per worker index, and the other two batches wait in the queue. */
  CHECK_EQ_INT(fake_in_send(&f), 8);
  CHECK_EQ_INT(f.workers_seen, 0xff);
  CHECK_EQ_INT(otc_exporter_helper_queue_len(h), 2);
  CHECK(gauge("otelcol_exporter_in_flight_requests", "parallel", "traces") == 8);
  fake_open_gate(&f);
  otc_exporter_helper_shutdown(h, 5000 * MS);
  CHECK_EQ_INT(f.delivered_items, 10);
  CHECK(gauge("otelcol_exporter_in_flight_requests", "parallel", "traces") == 0);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
}

struct sync_caller {
  struct otc_exporter_helper *h;
  uint32_t first;
  int rc;
};

static void *sync_call(void *arg) {
  struct sync_caller *c = arg;
  c->rc = 0;
  for (uint32_t i = c->first; i < c->first + 20; i++) {
    int rc = otc_exporter_helper_consume(c->h, make_batch(i, 1, OTC_SIGNAL_METRICS));
    if (rc != 0)
      c->rc = rc;
  }
  return NULL;
}

TEST(queue_disabled_sends_in_caller_thread) {
  uint64_t held0 = otc_mem_held();
  struct fake f;
  fake_init(&f, RETRY_N_THEN_OK);
  f.n = 1;
  struct otc_queue_config q = {.enabled = false};
  struct otc_retry_config r = fast_retry(5, 1.5, 10, 5000);
  struct otc_exporter_helper *h = otc_exporter_helper_create("sync", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  struct sync_caller c[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    c[i] = (struct sync_caller){.h = h, .first = (uint32_t)i * 100};
    pthread_create(&t[i], NULL, sync_call, &c[i]);
  }
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    CHECK_EQ_INT(c[i].rc, 0);
  }
  CHECK_EQ_INT(f.delivered_items, 60); /* delivered before consume returned */
  CHECK_EQ_INT(f.calls, 120);
  CHECK_EQ_INT(f.max_in_send, 1); /* serialized */
  CHECK_EQ_INT(f.max_worker, 0);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_metric_points", "sync"), 60);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);

  fake_init(&f, PERMANENT);
  f.reason = "HTTP 413";
  h = otc_exporter_helper_create("sync/perm", &q, &r, fake_send, &f);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(1, 2, OTC_SIGNAL_METRICS)),
               OTC_ERR_PERMANENT);
  CHECK_EQ_INT(f.calls, 1);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_metric_points", "sync/perm"), 2);
  /* The caller got the error back: the data is not counted as dropped by the exporter. */
  CHECK_EQ_INT(dropped("sync/perm", "metrics", "http_413"), 0);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);

  fake_init(&f, RETRY_ALWAYS);
  r = fast_retry(10, 1, 10, 50);
  h = otc_exporter_helper_create("sync/exhaust", &q, &r, fake_send, &f);
  int rc = otc_exporter_helper_consume(h, make_batch(1, 2, OTC_SIGNAL_METRICS));
  CHECK(otc_err_retryable(rc));
  CHECK(f.calls >= 3);
  otc_exporter_helper_shutdown(h, 0);
  CHECK_EQ_INT(otc_exporter_helper_consume(h, make_batch(2, 2, OTC_SIGNAL_METRICS)),
               OTC_ERR_SHUTDOWN);
  otc_exporter_helper_destroy(h);
  fake_fini(&f);
  CHECK_EQ_INT(otc_mem_held(), held0);
}

int main(void) {
  otc_log_set_level(OTC_LOG_INFO);
  RUN(config_defaults);
  RUN(config_values_and_errors);
  RUN(delivered_counts_exact);
  RUN(retry_then_success_with_backoff);
  RUN(backoff_jitter_and_cap);
  RUN(retry_after_honoured);
  RUN(permanent_dropped_once_and_logged_rate_limited);
  RUN(permanent_grpc_reason_label);
  RUN(max_elapsed_time_exhausted);
  RUN(retry_disabled_drops_at_first_failure);
  RUN(queue_full_refused);
  RUN(block_on_overflow_waits_for_room);
  RUN(block_on_overflow_released_by_shutdown);
  RUN(shutdown_drains_until_deadline_then_drops);
  RUN(shutdown_gives_retrying_batch_one_last_attempt);
  RUN(destroy_without_start_releases_queued);
  RUN(consumers_send_in_parallel);
  RUN(many_consumers_exact);
  RUN(queue_disabled_sends_in_caller_thread);
  return TEST_REPORT();
}
