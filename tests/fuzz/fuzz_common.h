/* Shared by the fuzz targets: an invariant check that stops the run with a message (libFuzzer
 * then saves the input as a crash), and the signal selector every OTLP target reads from its
 * first input byte. */
#ifndef OTC_FUZZ_COMMON_H
#define OTC_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
