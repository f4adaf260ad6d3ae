/* The memory_limiter processor: otelcol's config errors, the limits it sets, pass-through and
 * refusal, and the RSS checker thread (which stops promptly). The process-wide limits can only go
 * down, so the tests run from the largest limit to the smallest. */
#include <time.h>

#include "core/component.h"
#include "core/errors.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "test.h"

extern const struct otc_component_ops otc_processor_memory_limiter;

#define MIB (1024ull * 1024ull)

struct sink {
  int calls;
  size_t items;
};

static int sink_consume(void *ctx, struct otc_batch *b) {
  struct sink *s = ctx;
  s->calls++;
  s->items += b->items;
  otc_batch_unref(b);
  return 0;
}

/* Creates a memory_limiter from YAML; returns the instance or NULL with the message in msg. */
static void *create(const char *yaml, struct sink *sink, char *msg, size_t cap) {
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = otc_cfg_load_string(yaml, strlen(yaml), "ml.yaml", &err);
  void *ml = NULL;
  msg[0] = '\0';
  if (!root) {
    snprintf(msg, cap, "load: %.400s", err.msg);
    return NULL;
  }
  struct otc_create_args args = {.id = "memory_limiter/test",
                                 .pipeline = "traces",
                                 .signal = OTC_SIGNAL_TRACES,
                                 .next = {sink_consume, sink}};
  ml = otc_processor_memory_limiter.create(&args, root, &err);
  if (!ml)
    snprintf(msg, cap, "%s", err.msg);
  /* The tree must outlive what the component keeps from it; the limiter copies what it needs. */
  otc_cfg_free(root);
  return ml;
}

static void expect_error(const char *yaml, const char *want) {
  char msg[512];
  struct sink s = {0};
  void *ml = create(yaml, &s, msg, sizeof msg);
  CHECK(ml == NULL);
  CHECK_CONTAINS(msg, want);
  otc_processor_memory_limiter.destroy(ml);
}

TEST(config_errors) {
  expect_error("limit_mib: 100\n", "'check_interval' must be greater than zero");
  expect_error("check_interval: 0s\nlimit_mib: 100\n",
               "'check_interval' must be greater than zero");
  expect_error("check_interval: 1s\n",
               "'limit_mib' or 'limit_percentage' must be greater than zero");
  expect_error("check_interval: 1s\nlimit_mib: 100\nspike_limit_mib: 100\n",
               "'spike_limit_mib' must be smaller than 'limit_mib'");
  expect_error("check_interval: 1s\nlimit_mib: 100\nspike_limit_mib: 200\n", "ml.yaml:3:");
  expect_error("check_interval: 1s\nlimit_percentage: 120\n", "less than or equal to hundred");
  expect_error("check_interval: 1s\nlimit_percentage: 50\nspike_limit_percentage: 50\n",
               "'spike_limit_percentage' must be smaller than 'limit_percentage'");
  expect_error("check_interval: 1s\nlimit_mib: 100\nlimit_mb: 5\n", "limit_mb");
  expect_error("check_interval: 1s\nlimit_mib: -1\n", "limit_mib");
}

TEST(sets_limits_and_passes_through) {
  otc_metrics_reset();
  char msg[512];
  struct sink s = {0};
  /* 64 GiB, far above this process: admission and the RSS guard stay open. */
  void *ml = create("check_interval: 1s\nlimit_mib: 65536\n", &s, msg, sizeof msg);
  CHECK(ml != NULL);
  if (!ml) {
    fprintf(stderr, "%s\n", msg);
    return;
  }
  CHECK_EQ_INT(otc_mem_limit(), 65536 * MIB);
  /* spike_limit_mib defaults to 20% of the limit. */
  CHECK_EQ_INT(otc_mem_soft_limit(), 65536 * MIB - 65536 * MIB / 5);
  CHECK(!otc_mem_rss_refusing());
  for (int i = 0; i < 3; i++) {
    struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_TRACES, "abc", 3, 10, false, NULL);
    CHECK_EQ_INT(otc_processor_memory_limiter.consume(ml, b), 0);
  }
  CHECK_EQ_INT(s.calls, 3);
  CHECK_EQ_INT(s.items, 30);

  char *out = NULL;
  size_t len;
  CHECK_EQ_INT(otc_metrics_render(NULL, &out, &len), 0);
  CHECK_CONTAINS(out, "otelcol_processor_memory_limiter_accepted_spans{processor=\"memory_limiter/"
                      "test\"} 30\n");
  CHECK_CONTAINS(out, "otelcol_processor_incoming_items{otel_signal=\"traces\",processor=\""
                      "memory_limiter/test\"} 30\n");
  CHECK_CONTAINS(out, "otelcol_processor_outgoing_items{otel_signal=\"traces\",processor=\""
                      "memory_limiter/test\"} 30\n");
  free(out);
  CHECK_EQ_INT(otc_processor_memory_limiter.shutdown(ml), 0); /* never started: a no-op */
  otc_processor_memory_limiter.destroy(ml);
  otc_metrics_reset();
}

TEST(refuses_while_rss_guard_refuses) {
  otc_metrics_reset();
  char msg[512];
  struct sink s = {0};
  void *ml =
      create("check_interval: 1s\nlimit_mib: 65536\nspike_limit_mib: 1024\n", &s, msg, sizeof msg);
  CHECK(ml != NULL);
  if (!ml)
    return;
  otc_mem_set_rss_refusing(true);
  uint64_t held = otc_mem_held();
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_TRACES, "abcdef", 6, 7, false, NULL);
  CHECK(otc_mem_held() > held);
  CHECK_EQ_INT(otc_processor_memory_limiter.consume(ml, b), OTC_ERR_REFUSED);
  /* The batch was released (consume owns it even on failure) and never reached the next stage. */
  CHECK_EQ_INT(otc_mem_held(), held);
  CHECK_EQ_INT(s.calls, 0);
  otc_mem_set_rss_refusing(false);
  b = otc_batch_copy(OTC_SIGNAL_TRACES, "abcdef", 6, 7, false, NULL);
  CHECK_EQ_INT(otc_processor_memory_limiter.consume(ml, b), 0);
  CHECK_EQ_INT(s.calls, 1);

  char *out = NULL;
  size_t len;
  CHECK_EQ_INT(otc_metrics_render(NULL, &out, &len), 0);
  CHECK_CONTAINS(out, "otelcol_processor_memory_limiter_refused_spans{processor=\"memory_limiter/"
                      "test\"} 7\n");
  CHECK_CONTAINS(out, "otelcol_processor_memory_limiter_accepted_spans{processor=\"memory_limiter/"
                      "test\"} 7\n");
  free(out);
  otc_processor_memory_limiter.destroy(ml);
  otc_metrics_reset();
}

static double elapsed_ms(struct timespec a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

TEST(shutdown_is_prompt) {
  char msg[512];
  struct sink s = {0};
  void *ml = create("check_interval: 1h\nlimit_mib: 65536\n", &s, msg, sizeof msg);
  CHECK(ml != NULL);
  if (!ml)
    return;
  CHECK_EQ_INT(otc_processor_memory_limiter.start(ml), 0);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ_INT(otc_processor_memory_limiter.shutdown(ml), 0);
  CHECK(elapsed_ms(t0) < 1000);
  CHECK_EQ_INT(otc_processor_memory_limiter.shutdown(ml), 0); /* idempotent */
  otc_processor_memory_limiter.destroy(ml);
}

TEST(rss_checker_trips) {
  otc_metrics_reset();
  char msg[512];
  struct sink s = {0}, s2 = {0};
  /* 1 MiB: this process is far above it, so the checker must start refusing. */
  void *ml = create("check_interval: 10ms\nlimit_mib: 1\n", &s, msg, sizeof msg);
  void *ml2 = create("check_interval: 10ms\nlimit_mib: 2\n", &s2, msg, sizeof msg);
  CHECK(ml != NULL && ml2 != NULL);
  if (!ml || !ml2)
    return;
  CHECK_EQ_INT(otc_mem_limit(), 1 * MIB); /* the smallest limit wins */
  CHECK_EQ_INT(otc_processor_memory_limiter.start(ml), 0);
  CHECK_EQ_INT(otc_processor_memory_limiter.start(ml2), 0); /* shares the one checker */
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (!otc_mem_rss_refusing() && elapsed_ms(t0) < 3000) {
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  CHECK(otc_mem_rss_refusing());
  /* Admission refuses too, through the shared flag. */
  int err = 0;
  CHECK(otc_batch_copy(OTC_SIGNAL_LOGS, "x", 1, 1, true, &err) == NULL);
  CHECK_EQ_INT(err, OTC_ERR_REFUSED);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_TRACES, "x", 1, 1, false, NULL);
  CHECK_EQ_INT(otc_processor_memory_limiter.consume(ml2, b), OTC_ERR_REFUSED);
  CHECK_EQ_INT(s2.calls, 0);
  otc_processor_memory_limiter.shutdown(ml2);
  CHECK_EQ_INT(otc_processor_memory_limiter.shutdown(ml), 0);
  /* With no checker left, nothing would ever lift the guard: shutdown lifts it. */
  CHECK(!otc_mem_rss_refusing());
  otc_processor_memory_limiter.destroy(ml);
  otc_processor_memory_limiter.destroy(ml2);
  otc_metrics_reset();
}

TEST(limit_percentage) {
  char msg[512];
  struct sink s = {0};
  /* The process-wide limit is already 1 MiB (smallest wins); check the component accepts it. */
  void *ml = create("check_interval: 1s\nlimit_percentage: 50\nspike_limit_percentage: 10\n", &s,
                    msg, sizeof msg);
  CHECK(ml != NULL);
  CHECK_EQ_INT(otc_mem_limit(), 1 * MIB);
  otc_processor_memory_limiter.destroy(ml);
  otc_metrics_reset();
}

int main(void) {
  RUN(config_errors);
  RUN(sets_limits_and_passes_through);
  RUN(refuses_while_rss_guard_refuses);
  RUN(shutdown_is_prompt);
  RUN(rss_checker_trips);
  RUN(limit_percentage);
  return TEST_REPORT();
}
