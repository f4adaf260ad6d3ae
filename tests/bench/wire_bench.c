/* Instruction-count benchmark of the receiver's per-request work, without any transport: the wire
 * validator (otc_wire_scan) on a protobuf request, or the JSON transcoder plus the validator on a
 * JSON one, repeated over one request body that `loadgen --dump FILE` wrote. Run it under
 * `valgrind --tool=callgrind` (repeatable on a noisy machine) or plainly for a rough time per item.
 *
 * usage: wire_bench traces|metrics|logs proto|json FILE [REPEAT]
 * Prints the items per request, the repetitions and the nanoseconds per item. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/otlp_json.h"
#include "core/otlp_wire.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: wire_bench traces|metrics|logs proto|json FILE [REPEAT]\n");
    return 2;
  }
  enum otc_signal sig;
  if (otc_signal_parse(argv[1], &sig) != 0) {
    fprintf(stderr, "wire_bench: unknown signal %s\n", argv[1]);
    return 2;
  }
  int json = strcmp(argv[2], "json") == 0;
  long repeat = argc == 5 ? atol(argv[4]) : 100;
  FILE *f = fopen(argv[3], "rb");
  if (!f) {
    perror(argv[3]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *body = malloc(len > 0 ? (size_t)len : 1);
  if (!body || fread(body, 1, (size_t)len, f) != (size_t)len) {
    fprintf(stderr, "wire_bench: cannot read %s\n", argv[3]);
    return 1;
  }
  fclose(f);

  struct otc_wire_stats st = {0};
  char err[256];
  double t0 = now_s();
  for (long i = 0; i < repeat; i++) {
    const uint8_t *pb = (const uint8_t *)body;
    size_t pblen = (size_t)len;
    uint8_t *conv = NULL;
    if (json) {
      if (otc_json_to_proto(sig, body, (size_t)len, OTC_WIRE_DEFAULT_MAX_DEPTH, &conv, &pblen, err,
                            sizeof err) != 0) {
        fprintf(stderr, "wire_bench: JSON refused: %s\n", err);
        return 1;
      }
      pb = conv;
    }
    if (otc_wire_scan(sig, pb, pblen, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, err, sizeof err) != 0) {
      fprintf(stderr, "wire_bench: refused: %s\n", err);
      free(conv);
      return 1;
    }
    free(conv);
  }
  double dt = now_s() - t0;
  printf("%zu items per request, %ld repetitions, %.1f ns per item\n", st.items, repeat,
         st.items && repeat ? dt * 1e9 / (double)st.items / (double)repeat : 0.0);
  free(body);
  return 0;
}
