/* The OTLP JSON path: otc_json_to_proto on an untrusted body, then otc_proto_to_json and back.
 *
 * Input: byte 0 picks the signal (bits 0-1: traces, metrics, logs; 3 is traces again); the rest is
 * the JSON body.
 *
 * Invariants: what the transcoder accepts it turns into bytes the wire scan accepts and protobuf-c
 * decodes; those bytes turn into JSON that transcodes back to the same bytes' JSON (a fixed point
 * after one pass); a refusal always comes with a reason. */
#include <stdint.h>
#include <string.h>

#include "core/errors.h"
#include "core/otlp_json.h"
#include "core/otlp_wire.h"
#include "fuzz_common.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

static const ProtobufCMessageDescriptor *const descriptors[OTC_SIGNAL_COUNT] = {
    &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
    &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  enum otc_signal s = (enum otc_signal)((data[0] & 3) == 3 ? 0 : (data[0] & 3));
  size_t len = size - 1;
  char *json = malloc(len ? len : 1);
  uint8_t *p1 = NULL, *p2 = NULL;
  char *j1 = NULL, *j2 = NULL;
  size_t p1len = 0, p2len = 0, j1len = 0, j2len = 0;
  char why[256];
  FUZZ_CHECK(json != NULL);
  memcpy(json, data + 1, len);
  why[0] = '\0';

  int rc =
      otc_json_to_proto(s, json, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &p1, &p1len, why, sizeof why);
  if (rc != 0) {
    FUZZ_CHECK(rc == OTC_ERR_INVALID || rc == OTC_ERR_NOMEM);
    FUZZ_CHECK(rc == OTC_ERR_NOMEM || why[0] != '\0');
    FUZZ_CHECK(p1 == NULL);
    goto cleanup;
  }
  struct otc_wire_stats st;
  memset(&st, 0, sizeof st);
  FUZZ_CHECK(otc_wire_scan(s, p1 ? p1 : (const uint8_t *)"", p1len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st,
                           why, sizeof why) == 0);
  ProtobufCMessage *m = protobuf_c_message_unpack(descriptors[s], NULL, p1len, p1);
  FUZZ_CHECK(m != NULL);
  protobuf_c_message_free_unpacked(m, NULL);

  FUZZ_CHECK(otc_proto_to_json(s, p1 ? p1 : (const uint8_t *)"", p1len, &j1, &j1len) == 0);
  FUZZ_CHECK(strlen(j1) == j1len);
  FUZZ_CHECK(otc_json_to_proto(s, j1, j1len, OTC_WIRE_DEFAULT_MAX_DEPTH, &p2, &p2len, why,
                               sizeof why) == 0);
  struct otc_wire_stats st2;
  memset(&st2, 0, sizeof st2);
  FUZZ_CHECK(otc_wire_scan(s, p2 ? p2 : (const uint8_t *)"", p2len, OTC_WIRE_DEFAULT_MAX_DEPTH,
                           &st2, why, sizeof why) == 0);
  FUZZ_CHECK(st2.items == st.items);
  FUZZ_CHECK(otc_proto_to_json(s, p2 ? p2 : (const uint8_t *)"", p2len, &j2, &j2len) == 0);
  FUZZ_CHECK(j1len == j2len && memcmp(j1, j2, j1len) == 0);

cleanup:
  free(json);
  free(p1);
  free(p2);
  free(j1);
  free(j2);
  return 0;
}
