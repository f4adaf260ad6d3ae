/* The OTLP protobuf receive path, as both transports run it on a request body: the bounded scan
 * (otc_wire_scan), the removal of invalid items, the batch built by otlp_receiver__export and
 * handed to a pipeline, and the batch processor's split (otc_wire_split).
 *
 * Input: byte 0 picks the signal (bits 0-1: traces, metrics, logs; 3 is traces again) and the
 * split size (bits 2-7: 1 to 64 items); the rest is the request body.
 *
 * Invariants: the fast and the reference scanner agree; cleaning keeps exactly the valid items and
 * yields bytes the scan accepts; the pieces of a split are valid requests of at most the asked size
 * whose items add up to the whole; the receiver accepts a valid request with the same counts and
 * hands on bytes the scan accepts; JSON made from accepted bytes transcodes back to the same JSON;
 * no memory charge outlives the input.
 */
#include <stdint.h>
#include <string.h>

#include "core/memory.h"
#include "core/metrics.h"
#include "core/otlp_json.h"
#include "core/otlp_wire.h"
#include "fuzz_common.h"
#include "receivers/otlp/otlp_receiver.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

static const ProtobufCMessageDescriptor *const descriptors[OTC_SIGNAL_COUNT] = {
    &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
    &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
};

struct split_check {
  enum otc_signal s;
  size_t max_items;
  size_t items;
};

static int check_piece(void *arg, const uint8_t *piece, size_t len, size_t items) {
  struct split_check *c = arg;
  struct otc_wire_stats st;
  char why[160];
  memset(&st, 0, sizeof st);
  FUZZ_CHECK(items <= c->max_items);
  FUZZ_CHECK(otc_wire_scan(c->s, piece, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why, sizeof why) ==
             0);
  FUZZ_CHECK(st.items == items);
  c->items += items;
  return 0;
}

/* What the pipeline saw: the receiver's batch. */
static size_t consumed_items;
static int consumed_batches;

static int consume(void *ctx, struct otc_batch *b) {
  struct otc_wire_stats st;
  char why[160];
  memset(&st, 0, sizeof st);
  FUZZ_CHECK(otc_wire_scan(b->signal, b->data, b->len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why,
                           sizeof why) == 0);
  FUZZ_CHECK(st.items == b->items);
  FUZZ_CHECK(st.invalid_items == 0);
  consumed_items += b->items;
  consumed_batches++;
  otc_batch_unref(b);
  return 0;
}

static struct otlp_receiver receiver;
static struct otc_receiver_metrics metrics;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  receiver.id = "otlp";
  receiver.log_component = "receiver/otlp";
  receiver.max_depth = OTC_WIRE_DEFAULT_MAX_DEPTH;
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    receiver.next[s] = (struct otc_consumer){.consume = consume, .ctx = NULL};
  otc_receiver_metrics_init(&metrics, "otlp", "http");
  return 0;
}

/* JSON made from accepted bytes, when it transcodes back, must come out the same a second time:
 * nothing is lost or changed by the JSON mapping beyond what the first pass normalized. */
static void check_json_round_trip(enum otc_signal s, const uint8_t *buf, size_t len) {
  char *j1 = NULL, *j2 = NULL;
  size_t j1len = 0, j2len = 0, plen = 0;
  uint8_t *p = NULL;
  char why[256];
  if (otc_proto_to_json(s, buf, len, &j1, &j1len) != 0)
    goto cleanup;
  /* The JSON mapping is stricter than protobuf (ids of the wrong length, for one), so a refusal
   * here is allowed; a different result is not. */
  if (otc_json_to_proto(s, j1, j1len, OTC_WIRE_DEFAULT_MAX_DEPTH, &p, &plen, why, sizeof why) != 0)
    goto cleanup;
  FUZZ_CHECK(otc_proto_to_json(s, p, plen, &j2, &j2len) == 0);
  FUZZ_CHECK(j1len == j2len && memcmp(j1, j2, j1len) == 0);
cleanup:
  free(j1);
  free(j2);
  free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  enum otc_signal s = (enum otc_signal)((data[0] & 3) == 3 ? 0 : (data[0] & 3));
  size_t max_items = (size_t)(data[0] >> 2) + 1;
  size_t len = size - 1;
  uint64_t held_before = otc_mem_held();
  /* An exact-size copy, so that AddressSanitizer sees any read past the end. */
  uint8_t *buf = malloc(len ? len : 1);
  uint8_t *clean = malloc(len ? len : 1);
  FUZZ_CHECK(buf && clean);
  memcpy(buf, data + 1, len);

  /* The validator's two scanners (the fast one and the one that explains a refusal) agree on
   * every input: the verdict, and on valid input every count. */
  struct otc_wire_stats fst, rst;
  int rf = otc_wire__scan_fast(s, buf, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &fst);
  int rr = otc_wire__scan_reference(s, buf, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &rst, NULL, 0);
  FUZZ_CHECK(rf == rr);
  FUZZ_CHECK(rf != 0 || memcmp(&fst, &rst, sizeof fst) == 0);

  struct otc_wire_stats st;
  char why[160];
  memset(&st, 0, sizeof st);
  why[0] = '\0';
  if (otc_wire_scan(s, buf, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why, sizeof why) != 0) {
    FUZZ_CHECK(why[0] != '\0');
    /* The receiver refuses the same bytes as bad data. */
    struct otlp_export_result res;
    otlp_receiver__export(&receiver, s, &metrics, buf, len, false, 0, &res);
    FUZZ_CHECK(res.err == OTC_ERR_INVALID);
    goto cleanup;
  }
  FUZZ_CHECK(st.invalid_items <= st.items);

  /* protobuf-c 1.4.1 refuses one valid form the scan accepts (a singular message field given
   * twice whose first copy holds an unknown field: its merge fails); the exporters that decode
   * with it drop such a request as invalid. Any other refusal would be a scan bug, but telling
   * them apart needs a second decoder, so a refusal is tolerated here and the rest still runs. */
  ProtobufCMessage *m = protobuf_c_message_unpack(descriptors[s], NULL, len, buf);
  protobuf_c_message_free_unpacked(m, NULL);

  size_t clen = otc_wire_drop_invalid(s, buf, len, clean);
  FUZZ_CHECK(clen <= len);
  struct otc_wire_stats cst;
  memset(&cst, 0, sizeof cst);
  FUZZ_CHECK(otc_wire_scan(s, clean, clen, OTC_WIRE_DEFAULT_MAX_DEPTH, &cst, why, sizeof why) == 0);
  FUZZ_CHECK(cst.items == st.items - st.invalid_items);
  FUZZ_CHECK(cst.invalid_items == 0);

  struct split_check sc = {.s = s, .max_items = max_items, .items = 0};
  FUZZ_CHECK(otc_wire_split(s, clean, clen, max_items, check_piece, &sc) == 0);
  FUZZ_CHECK(sc.items == cst.items);

  consumed_items = 0;
  consumed_batches = 0;
  struct otlp_export_result res;
  otlp_receiver__export(&receiver, s, &metrics, buf, len, false, 0, &res);
  FUZZ_CHECK(res.err == 0);
  FUZZ_CHECK(res.items == cst.items);
  FUZZ_CHECK(res.rejected == st.invalid_items);
  FUZZ_CHECK(consumed_items == cst.items);
  FUZZ_CHECK(consumed_batches == (cst.items > 0 ? 1 : 0));

  check_json_round_trip(s, clean, clen);

cleanup:
  free(buf);
  free(clean);
  FUZZ_CHECK(otc_mem_held() == held_before);
  return 0;
}
