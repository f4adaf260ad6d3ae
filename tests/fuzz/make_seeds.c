/* Writes a protobuf seed for the fuzz targets from an OTLP JSON file: the option byte given on the
 * command line, then the request's protobuf wire bytes (made by the receiver's own transcoder).
 * Usage: fuzz_make_seeds traces|metrics|logs IN.json OPTION-BYTE OUT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/otlp_json.h"
#include "core/otlp_wire.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s traces|metrics|logs IN.json OPTION-BYTE OUT\n", argv[0]);
    return 2;
  }
  enum otc_signal s = strcmp(argv[1], "metrics") == 0 ? OTC_SIGNAL_METRICS
                      : strcmp(argv[1], "logs") == 0  ? OTC_SIGNAL_LOGS
                                                      : OTC_SIGNAL_TRACES;
  FILE *in = fopen(argv[2], "rb");
  if (!in) {
    perror(argv[2]);
    return 1;
  }
  static char json[1 << 20];
  size_t n = fread(json, 1, sizeof json, in);
  fclose(in);
  uint8_t *pb = NULL;
  size_t pblen = 0;
  char why[256];
  if (otc_json_to_proto(s, json, n, OTC_WIRE_DEFAULT_MAX_DEPTH, &pb, &pblen, why, sizeof why) !=
      0) {
    fprintf(stderr, "%s: %s\n", argv[2], why);
    return 1;
  }
  FILE *out = fopen(argv[4], "wb");
  if (!out) {
    perror(argv[4]);
    free(pb);
    return 1;
  }
  uint8_t opt = (uint8_t)strtoul(argv[3], NULL, 0);
  fwrite(&opt, 1, 1, out);
  fwrite(pb, 1, pblen, out);
  fclose(out);
  free(pb);
  return 0;
}
