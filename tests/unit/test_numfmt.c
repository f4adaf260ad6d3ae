/* exporters/common/numfmt.c: the integer writers, and the shortest-digits fast path checked against
 * the slow snprintf/strtod search (slow_shortest) on values of every shape the exporters meet:
 * decimal fractions, integers, tiny and huge magnitudes, random bit patterns. */
#include <float.h>
#include <math.h>

#include "../../exporters/common/numfmt.c"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) {
  /* xorshift64*: deterministic, so a failure reproduces. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

static int mismatches;

static void check_same(double a) {
  char fast[OTC_NUM_DIGITS_BUF], slow[OTC_NUM_DIGITS_BUF];
  int ef = 0, es = 0;
  int nf = otc_num__shortest(a, fast, &ef);
  int ns = slow_shortest(a, slow, &es);
  if (nf != ns || ef != es || strcmp(fast, slow) != 0) {
    if (mismatches++ < 10)
      fprintf(stderr, "%.17g: fast %s e%d, slow %s e%d\n", a, fast, ef, slow, es);
  }
}

TEST(integers) {
  char b[OTC_NUM_INT_BUF];
  CHECK_EQ_INT(otc_num__u64(0, b), 1);
  CHECK_EQ_STR(b, "0");
  CHECK_EQ_INT(otc_num__u64(UINT64_MAX, b), 20);
  CHECK_EQ_STR(b, "18446744073709551615");
  CHECK_EQ_INT(otc_num__i64(INT64_MIN, b), 20);
  CHECK_EQ_STR(b, "-9223372036854775808");
  CHECK_EQ_INT(otc_num__i64(-42, b), 3);
  CHECK_EQ_STR(b, "-42");
  CHECK_EQ_INT(otc_num__i64(1234567890123LL, b), 13);
  CHECK_EQ_STR(b, "1234567890123");
}

TEST(known_values) {
  static const struct {
    double v;
    const char *digits;
    int exp10;
  } cases[] = {
      {0.1, "1", -1},
      {0.3, "3", -1},
      {0.1 + 0.2, "30000000000000004", -1},
      {1.0, "1", 0},
      {123.45, "12345", 2},
      {1e21, "1", 21},
      {1.5e-7, "15", -7},
      {5e-324, "5", -324},
      {DBL_MAX, "17976931348623157", 308},
      {1e15, "1", 15},
      {999999999999999.0, "999999999999999", 14},
      {9007199254740993.0, "9007199254740992", 15},
      {2.5, "25", 0},
      {1e-6, "1", -6},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char d[OTC_NUM_DIGITS_BUF];
    int e = 0;
    int n = otc_num__shortest(cases[i].v, d, &e);
    CHECK_EQ_STR(d, cases[i].digits);
    CHECK_EQ_INT(e, cases[i].exp10);
    CHECK_EQ_INT(n, (int)strlen(cases[i].digits));
  }
}

TEST(fast_path_matches_slow) {
  mismatches = 0;
  /* Decimal fractions as instruments and load generators produce them. */
  for (int i = 0; i < 20000; i++) {
    uint64_t r = rng();
    check_same((double)(r % 10000000) / 100.0);
    check_same((double)(r % 1000003) / 1000.0 + 1.0);
    check_same((double)(r >> 11) / 9007199254740992.0); /* [0,1) with 53 bits */
    check_same((double)(r % 1000000000000ULL) * 1e-9);
  }
  /* Every decimal exponent, with short and long mantissas. */
  for (int e = -20; e <= 25; e++) {
    for (int i = 1; i < 200; i++) {
      double m = (double)(rng() % 100000) + 1;
      check_same(m * pow(10.0, e));
      check_same((double)i * pow(10.0, e));
      check_same(nextafter((double)i * pow(10.0, e), INFINITY));
      check_same(nextafter((double)i * pow(10.0, e), 0));
    }
  }
  /* Random finite positive bit patterns. */
  for (int i = 0; i < 20000; i++) {
    uint64_t bits = rng() & 0x7fffffffffffffffULL;
    double a;
    memcpy(&a, &bits, sizeof a);
    if (isfinite(a) && a > 0)
      check_same(a);
  }
  CHECK_EQ_INT(mismatches, 0);
}

int main(void) {
  RUN(integers);
  RUN(known_values);
  RUN(fast_path_matches_slow);
  return TEST_REPORT();
}
