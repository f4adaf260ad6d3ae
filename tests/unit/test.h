/* A minimal unit-test harness: each tests/unit/test_*.c is one binary (one ctest test) that
 * includes this header, defines TEST(name) functions and lists them in main with RUN(name).
 * A failed CHECK prints file:line and the expression and marks the test failed; the binary exits
 * non-zero if any test failed and prints "N passed, N failed". Unit tests of static functions
 * #include the .c file under test (as h2o's t/00unit does). */
#ifndef OTC_TEST_H
#define OTC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks;
static int tests_passed, tests_failed;

#define TEST(name) static void test_##name(void)

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
      test_failed_checks++;                                                                        \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
  do {                                                                                             \
    long long a_ = (long long)(a), b_ = (long long)(b);                                            \
    if (a_ != b_) {                                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a,    \
              #b, a_, b_);                                                                         \
      test_failed_checks++;                                                                        \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
  do {                                                                                             \
    const char *a_ = (a), *b_ = (b);                                                               \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__,    \
              #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                     \
      test_failed_checks++;                                                                        \
    }                                                                                              \
  } while (0)

/* Substring check, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                                                \
  do {                                                                                             \
    const char *h_ = (hay), *n_ = (needle);                                                        \
    if (!h_ || !strstr(h_, n_)) {                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: \"%s\" contains \"%s\"\n", __FILE__, __LINE__,         \
              h_ ? h_ : "(null)", n_);                                                             \
      test_failed_checks++;                                                                        \
    }                                                                                              \
  } while (0)

#define RUN(name)                                                                                  \
  do {                                                                                             \
    int before_ = test_failed_checks;                                                              \
    test_##name();                                                                                 \
    if (test_failed_checks == before_) {                                                           \
      tests_passed++;                                                                              \
      fprintf(stderr, "ok   %s\n", #name);                                                         \
    } else {                                                                                       \
      tests_failed++;                                                                              \
      fprintf(stderr, "FAIL %s\n", #name);                                                         \
    }                                                                                              \
  } while (0)

#define TEST_REPORT()                                                                              \
  (fprintf(stderr, "%d passed, %d failed\n", tests_passed, tests_failed), tests_failed ? 1 : 0)

#endif
