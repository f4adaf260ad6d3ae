/* Number formatting without printf (see numfmt.h).
 *
 * The shortest digits. For a decimal D = m / 10^k with m < 10^15 that reads back as a, the product
 * a * 10^k lies within 0.22 of m (a's own rounding is at most 2^-53 relative, the product's another
 * 2^-53), so rounding the floating product finds m; and m / 10^k in IEEE arithmetic is correctly
 * rounded from the exact quotient, just as strtod rounds the decimal string, so comparing it with
 * a is the round-trip test itself. The smallest k that passes gives the fewest significant digits,
 * and with at most 15 of them there is only one such decimal (DBL_DIG is 15: distinct decimals of
 * 15 digits or fewer are distinct doubles), which is the correctly rounded one snprintf would
 * print. Anything longer goes the slow, obviously right way. */
#include "common/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 10^0 .. 10^22: every one exactly representable as a double. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define FAST_LIMIT 1e15

/* "00" to "99": two digits per division (attribute and label values are mostly numbers). */
static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

size_t otc_num__u64(uint64_t v, char *out) {
  char tmp[OTC_NUM_INT_BUF];
  char *end = tmp + sizeof tmp, *p = end;
  while (v >= 100) {
    p -= 2;
    memcpy(p, digit_pairs + 2 * (v % 100), 2);
    v /= 100;
  }
  if (v >= 10) {
    p -= 2;
    memcpy(p, digit_pairs + 2 * v, 2);
  } else {
    *--p = (char)('0' + v);
  }
  size_t n = (size_t)(end - p);
  memcpy(out, p, n);
  out[n] = '\0';
  return n;
}

size_t otc_num__i64(int64_t v, char *out) {
  if (v >= 0)
    return otc_num__u64((uint64_t)v, out);
  out[0] = '-';
  return 1 + otc_num__u64((uint64_t)0 - (uint64_t)v, out + 1);
}

static int slow_shortest(double a, char *digits, int *exp10) {
  char buf[48];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*e", prec - 1, a);
    if (strtod(buf, NULL) == a)
      break;
  }
  int n = 0;
  const char *p = buf;
  for (; *p && *p != 'e'; p++)
    if (*p != '.')
      digits[n++] = *p;
  while (n > 1 && digits[n - 1] == '0')
    n--;
  digits[n] = '\0';
  *exp10 = *p == 'e' ? atoi(p + 1) : 0;
  return n;
}

int otc_num__shortest(double a, char *digits, int *exp10) {
  for (int k = 0; k < (int)(sizeof pow10_exact / sizeof pow10_exact[0]); k++) {
    double x = a * pow10_exact[k];
    if (x >= FAST_LIMIT)
      break;
    /* x < 2^50, so adding one half is exact and the cast rounds to the nearest integer. */
    uint64_t m = (uint64_t)(x + 0.5);
    if (m == 0 || (double)m / pow10_exact[k] != a)
      continue;
    char tmp[OTC_NUM_INT_BUF];
    int n = (int)otc_num__u64(m, tmp);
    *exp10 = n - 1 - k;
    while (n > 1 && tmp[n - 1] == '0')
      n--;
    memcpy(digits, tmp, (size_t)n);
    digits[n] = '\0';
    return n;
  }
  return slow_shortest(a, digits, exp10);
}
