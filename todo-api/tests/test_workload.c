/* The workload generator's pure parts: argument and environment parsing, the request mix, the
 * latency histogram, trace context ids and list queries. */
#include "test.h"

#include "errors.h"
#include "workload.h"

#include <math.h>

static const char *fake_env_vars[8][2];

static const char *fake_env(const char *name) {
  for (int i = 0; i < 8 && fake_env_vars[i][0]; i++)
    if (strcmp(fake_env_vars[i][0], name) == 0)
      return fake_env_vars[i][1];
  return NULL;
}

static void set_env(int i, const char *k, const char *v) {
  fake_env_vars[i][0] = k;
  fake_env_vars[i][1] = v;
  if (i + 1 < 8)
    fake_env_vars[i + 1][0] = NULL;
}

TEST(defaults) {
  struct wl_config c;
  char err[128];
  char *argv[] = {"todo-workload", NULL};
  CHECK_EQ_INT(wl_parse_args(1, argv, NULL, &c, err, sizeof err), 0);
  CHECK_EQ_STR(c.url, "http://127.0.0.1:8000");
  CHECK(c.rate == 10);
  CHECK(c.duration_s == 0);
  CHECK_EQ_INT(c.concurrency, 4);
  CHECK(c.traceparent_ratio > 0.29 && c.traceparent_ratio < 0.31);
  CHECK(!c.help);
}

TEST(env_then_flags) {
  struct wl_config c;
  char err[128];
  set_env(0, "TODO_API_URL", "http://api:9000/");
  set_env(1, "WORKLOAD_RATE", "25.5");
  set_env(2, "WORKLOAD_DURATION", "2m");
  set_env(3, "WORKLOAD_CONCURRENCY", "8");
  char *argv[] = {"w", NULL};
  CHECK_EQ_INT(wl_parse_args(1, argv, fake_env, &c, err, sizeof err), 0);
  CHECK_EQ_STR(c.url, "http://api:9000"); /* trailing slash dropped */
  CHECK(c.rate == 25.5);
  CHECK(c.duration_s == 120);
  CHECK_EQ_INT(c.concurrency, 8);

  /* Flags win over the environment; both --k v and --k=v. */
  char *argv2[] = {"w",
                   "--rate",
                   "3",
                   "--duration=1500ms",
                   "--url",
                   "https://x.example",
                   "--concurrency=2",
                   "--seed",
                   "42",
                   "--quiet",
                   NULL};
  CHECK_EQ_INT(wl_parse_args(10, argv2, fake_env, &c, err, sizeof err), 0);
  CHECK(c.rate == 3);
  CHECK(fabs(c.duration_s - 1.5) < 1e-9);
  CHECK_EQ_STR(c.url, "https://x.example");
  CHECK_EQ_INT(c.concurrency, 2);
  CHECK_EQ_INT(c.seed, 42);
  CHECK(c.quiet);
  set_env(0, NULL, NULL);
}

TEST(bad_arguments) {
  struct wl_config c;
  char err[128];
  char *a1[] = {"w", "--rate", "-1", NULL};
  CHECK_EQ_INT(wl_parse_args(3, a1, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  CHECK_CONTAINS(err, "--rate");
  char *a2[] = {"w", "--concurrency", "0", NULL};
  CHECK_EQ_INT(wl_parse_args(3, a2, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  char *a3[] = {"w", "--concurrency", "2.5", NULL};
  CHECK_EQ_INT(wl_parse_args(3, a3, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  char *a4[] = {"w", "--bogus", "1", NULL};
  CHECK_EQ_INT(wl_parse_args(3, a4, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  CHECK_CONTAINS(err, "unknown option --bogus");
  char *a5[] = {"w", "--rate", NULL};
  CHECK_EQ_INT(wl_parse_args(2, a5, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  CHECK_CONTAINS(err, "needs a value");
  char *a6[] = {"w", "--url", "ftp://x", NULL};
  CHECK_EQ_INT(wl_parse_args(3, a6, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  char *a7[] = {"w", "positional", NULL};
  CHECK_EQ_INT(wl_parse_args(2, a7, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  char *a8[] = {"w", "--traceparent-ratio", "1.5", NULL};
  CHECK_EQ_INT(wl_parse_args(3, a8, NULL, &c, err, sizeof err), TODO_ERR_INVALID);
  set_env(0, "WORKLOAD_RATE", "fast");
  char *a9[] = {"w", NULL};
  CHECK_EQ_INT(wl_parse_args(1, a9, fake_env, &c, err, sizeof err), TODO_ERR_INVALID);
  CHECK_CONTAINS(err, "WORKLOAD_RATE=fast");
  set_env(0, NULL, NULL);
  char *a10[] = {"w", "--help", NULL};
  CHECK_EQ_INT(wl_parse_args(2, a10, NULL, &c, err, sizeof err), 0);
  CHECK(c.help);
}

TEST(durations) {
  double d = -1;
  CHECK_EQ_INT(wl_parse_duration("0", &d), 0);
  CHECK(d == 0);
  CHECK_EQ_INT(wl_parse_duration("30", &d), 0);
  CHECK(d == 30);
  CHECK_EQ_INT(wl_parse_duration("30s", &d), 0);
  CHECK(d == 30);
  CHECK_EQ_INT(wl_parse_duration("250ms", &d), 0);
  CHECK(fabs(d - 0.25) < 1e-12);
  CHECK_EQ_INT(wl_parse_duration("1.5m", &d), 0);
  CHECK(d == 90);
  CHECK_EQ_INT(wl_parse_duration("1h", &d), 0);
  CHECK(d == 3600);
  CHECK_EQ_INT(wl_parse_duration("", &d), TODO_ERR_INVALID);
  CHECK_EQ_INT(wl_parse_duration("-1", &d), TODO_ERR_INVALID);
  CHECK_EQ_INT(wl_parse_duration("5 days", &d), TODO_ERR_INVALID);
  CHECK_EQ_INT(wl_parse_duration("nan", &d), TODO_ERR_INVALID);
}

/* Every operation is reachable, in proportion to its weight, and the weights are a whole. */
TEST(mix) {
  unsigned sum = 0;
  for (int i = 0; i < WL_OP_COUNT; i++) {
    CHECK(wl_op_weights[i] > 0);
    sum += wl_op_weights[i];
  }
  CHECK_EQ_INT(sum, 1000);
  unsigned counts[WL_OP_COUNT] = {0};
  for (uint32_t r = 0; r < 1000; r++)
    counts[wl_pick_op(r, true)]++;
  for (int i = 0; i < WL_OP_COUNT; i++)
    CHECK_EQ_INT(counts[i], wl_op_weights[i]);

  /* A random stream lands within a few percent of the weights. */
  uint64_t s = 12345;
  unsigned rc[WL_OP_COUNT] = {0};
  for (int i = 0; i < 100000; i++)
    rc[wl_pick_op((uint32_t)(wl_rand(&s) >> 32), true)]++;
  for (int i = 0; i < WL_OP_COUNT; i++) {
    double expect = wl_op_weights[i] * 100.0;
    CHECK(fabs(rc[i] - expect) < expect * 0.15 + 50);
  }

  /* Without a known todo, the operations that need one become creates. */
  unsigned creates = 0;
  for (uint32_t r = 0; r < 1000; r++) {
    enum wl_op op = wl_pick_op(r, false);
    CHECK(op != WL_GET && op != WL_PUT && op != WL_PATCH && op != WL_COMPLETE && op != WL_DELETE);
    creates += op == WL_CREATE;
  }
  CHECK_EQ_INT(creates, wl_op_weights[WL_CREATE] + wl_op_weights[WL_GET] + wl_op_weights[WL_PUT] +
                            wl_op_weights[WL_PATCH] + wl_op_weights[WL_COMPLETE] +
                            wl_op_weights[WL_DELETE]);
  CHECK_EQ_STR(wl_op_name(WL_NOT_FOUND), "not_found");
  CHECK_EQ_STR(wl_op_name(WL_OP_COUNT), "?");
}

TEST(histogram) {
  struct wl_hist h = {0};
  CHECK(wl_hist_quantile(&h, 0.5) == 0);
  /* 1..100 ms: p50 ≈ 50 ms, p99 ≈ 99 ms, within the 5% bucket width. */
  for (int i = 1; i <= 100; i++)
    wl_hist_add(&h, i / 1000.0);
  CHECK_EQ_INT(h.total, 100);
  double p50 = wl_hist_quantile(&h, 0.5), p99 = wl_hist_quantile(&h, 0.99);
  CHECK(p50 >= 0.050 && p50 <= 0.050 * 1.06);
  CHECK(p99 >= 0.099 && p99 <= 0.099 * 1.06);
  CHECK(wl_hist_quantile(&h, 1.0) >= 0.100);
  /* Out-of-range values are clamped into the end buckets, never out of bounds. */
  struct wl_hist g = {0};
  wl_hist_add(&g, 1e9);
  wl_hist_add(&g, 0);
  CHECK_EQ_INT(g.counts[WL_HIST_BUCKETS - 1], 1);
  CHECK_EQ_INT(g.counts[0], 1);
  wl_hist_merge(&h, &g);
  CHECK_EQ_INT(h.total, 102);
}

TEST(traceparent) {
  char tp[56];
  wl_traceparent(0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1122334455667788ULL, tp);
  CHECK_EQ_STR(tp, "00-0123456789abcdeffedcba9876543210-1122334455667788-01");
  wl_traceparent(0, 0, 0, tp);
  CHECK_EQ_INT(strlen(tp), 55);
  CHECK_EQ_STR(tp, "00-00000000000000000000000000000001-0000000000000001-01");
}

TEST(list_queries) {
  char q[64];
  bool seen_limit = false, seen_offset = false, seen_true = false, seen_false = false,
       seen_empty = false;
  for (uint64_t r = 0; r < 200; r++) {
    wl_list_query(r, q, sizeof q);
    CHECK(q[0] == '\0' || q[0] == '?');
    seen_empty |= q[0] == '\0';
    seen_limit |= strstr(q, "limit=") != NULL;
    seen_offset |= strstr(q, "offset=") != NULL;
    seen_true |= strstr(q, "completed=true") != NULL;
    seen_false |= strstr(q, "completed=false") != NULL;
    CHECK(strstr(q, "?&") == NULL && strstr(q, "&&") == NULL);
  }
  CHECK(seen_limit && seen_offset && seen_true && seen_false && seen_empty);
  /* A short buffer truncates instead of overflowing. */
  char small[8];
  wl_list_query(4 + 5 * 5 + 30 * 2, small, sizeof small);
  CHECK(strlen(small) < sizeof small);
}

int main(void) {
  RUN(defaults);
  RUN(env_then_flags);
  RUN(bad_arguments);
  RUN(durations);
  RUN(mix);
  RUN(histogram);
  RUN(traceparent);
  RUN(list_queries);
  return TEST_REPORT();
}
