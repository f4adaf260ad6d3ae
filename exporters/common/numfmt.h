/* Number formatting for the exporters' hot loops (label values, log metadata), without printf:
 * decimal integers, and the shortest decimal digits of a double that read back as the same double
 * (what Go's strconv.FormatFloat(v, 'g'/'f', -1, 64) and ECMAScript's number-to-string are built
 * on). The exporters lay the digits out in their own notations. */
#ifndef OTC_NUMFMT_H
#define OTC_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any uint64/int64 in decimal with its sign and a terminating NUL. */
#define OTC_NUM_INT_BUF 24
/* Enough for the digits of otc_num__shortest and a terminating NUL. */
#define OTC_NUM_DIGITS_BUF 24

/* Writes v in decimal at out (at least OTC_NUM_INT_BUF bytes), NUL-terminated; returns the
 * length. */
size_t otc_num__u64(uint64_t v, char *out);
size_t otc_num__i64(int64_t v, char *out);

/* The shortest decimal digits that read back as a (finite and > 0), without trailing zeros, into
 * digits (at least OTC_NUM_DIGITS_BUF bytes, NUL-terminated), and the decimal exponent of the first
 * digit: a = 0.d1d2d3... * 10^(exp10 + 1). Returns the number of digits. Of two candidates of the
 * same length the one nearest to a is taken (as snprintf's correctly rounded "%.*e" does).
 * Values with at most 15 significant digits (nearly all real-world ones) take a fast path of a few
 * multiplications; the rest fall back to snprintf/strtod. */
int otc_num__shortest(double a, char *digits, int *exp10);

#endif
