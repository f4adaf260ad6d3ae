/* exporters/common/pbfast.c: the fast decoder must give what protobuf-c's unpack gives (compared by
 * packing both results with protobuf-c), on OTLP metrics and logs with every value and point kind,
 * on packed and unpacked repeated scalars, and on mutated input; and it must leave to protobuf-c
 * (return NULL) what it does not handle: a singular message twice, groups, truncation. */
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/pbfast.h"
#include "core/otlp_json.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "test.h"

/* --- an arena for the decoder: a list of blocks freed at once --- */

struct block {
  struct block *next;
  max_align_t data[];
};

static void *t_alloc(void *ctx, size_t n) {
  struct block **head = ctx;
  struct block *b = malloc(sizeof *b + (n ? n : 1));
  if (!b)
    return NULL;
  b->next = *head;
  *head = b;
  return b->data;
}

static void t_free(void *ctx, void *p) {
  (void)ctx;
  (void)p;
}

static void arena_drop(struct block **head) {
  while (*head) {
    struct block *n = (*head)->next;
    free(*head);
    *head = n;
  }
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *p = malloc(*len ? *len : 1);
  if (p)
    protobuf_c_message_pack(m, p);
  return p;
}

/* Decodes buf both ways. Returns 1 when the fast decoder took it (and the results match), 0 when
 * it left it to protobuf-c, -1 on a mismatch. */
static int compare(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                   bool allow_unknown) {
  struct block *head = NULL;
  ProtobufCAllocator a = {t_alloc, t_free, &head};
  ProtobufCMessage *fast = otc_pb__unpack(d, buf, len, &a);
  ProtobufCMessage *ref = protobuf_c_message_unpack(d, NULL, len, buf);
  int r = 0;
  if (fast && !ref) {
    r = -1;
  } else if (fast) {
    size_t fl, rl;
    uint8_t *fp = pack(fast, &fl), *rp = pack(ref, &rl);
    r = fp && rp && fl == rl && memcmp(fp, rp, fl) == 0 ? 1 : -1;
    if (r < 0 && allow_unknown && rp) {
      /* protobuf-c keeps unknown fields and packs them again; the fast decoder drops them. The
       * reference without them is its own packing decoded once more by the fast decoder. */
      struct block *h2 = NULL;
      ProtobufCAllocator a2 = {t_alloc, t_free, &h2};
      ProtobufCMessage *again = otc_pb__unpack(d, rp, rl, &a2);
      size_t al = 0;
      uint8_t *ap = again ? pack(again, &al) : NULL;
      r = ap && al == fl && memcmp(ap, fp, fl) == 0 ? 1 : -1;
      free(ap);
      arena_drop(&h2);
    }
    free(fp);
    free(rp);
  }
  if (ref)
    protobuf_c_message_free_unpacked(ref, NULL);
  arena_drop(&head);
  return r;
}

static uint8_t *from_json(enum otc_signal s, const char *q, size_t *len) {
  char *j = strdup(q);
  for (char *p = j; *p; p++)
    if (*p == '\'')
      *p = '"';
  uint8_t *out = NULL;
  char why[256] = "";
  int rc = otc_json_to_proto(s, j, strlen(j), 64, &out, len, why, sizeof why);
  if (rc != 0)
    fprintf(stderr, "bad test JSON: %s\n", why);
  CHECK(rc == 0);
  free(j);
  return out;
}

/* clang-format off */
#define ATTRS                                                                                      \
  "'attributes':[{'key':'s','value':{'stringValue':'v\\u00e9'}},"                                  \
  "{'key':'i','value':{'intValue':'-42'}},{'key':'d','value':{'doubleValue':-0.25}},"              \
  "{'key':'b','value':{'boolValue':true}},{'key':'y','value':{'bytesValue':'AQID'}},"              \
  "{'key':'e','value':{}},{'key':'','value':{'stringValue':''}},"                                  \
  "{'key':'a','value':{'arrayValue':{'values':[{'intValue':'1'},{'arrayValue':{}},"                \
  "{'kvlistValue':{'values':[{'key':'k','value':{'boolValue':false}}]}}]}}}]"

static const char METRICS[] =
  "{'resourceMetrics':[{'resource':{" ATTRS ",'droppedAttributesCount':3},"
  "'schemaUrl':'https://x','scopeMetrics':[{'scope':{'name':'lib','version':'1'," ATTRS "},"
  "'metrics':["
  "{'name':'g','unit':'1','description':'d','gauge':{'dataPoints':[{'timeUnixNano':'17',"
    "'startTimeUnixNano':'3','asDouble':0.5,'flags':1," ATTRS ",'exemplars':[{'timeUnixNano':'5',"
    "'asInt':'-3','spanId':'0102030405060708','traceId':'0102030405060708090a0b0c0d0e0f10',"
    "'filteredAttributes':[{'key':'f','value':{'intValue':'1'}}]}]},{'asInt':'-9'}]}},"
  "{'name':'s','sum':{'aggregationTemporality':2,'isMonotonic':true,'dataPoints':["
    "{'timeUnixNano':'18446744073709551615','asInt':'9223372036854775807'}]}},"
  "{'name':'h','histogram':{'aggregationTemporality':1,'dataPoints':[{'count':'6','sum':-1.5,"
    "'min':-2,'max':0,'bucketCounts':['1','2','3'],'explicitBounds':[-1,0.5]},{'count':'0'}]}},"
  "{'name':'e','exponentialHistogram':{'aggregationTemporality':2,'dataPoints':[{'count':'4',"
    "'scale':-3,'zeroCount':'1','zeroThreshold':1e-9,'sum':2.5,"
    "'positive':{'offset':-2,'bucketCounts':['1','300','0']},'negative':{'offset':5,"
    "'bucketCounts':['2']}}]}},"
  "{'name':'q','summary':{'dataPoints':[{'count':'2','sum':3,'quantileValues':["
    "{'quantile':0.5,'value':1},{'quantile':1,'value':2}]}]}},"
  "{'name':'empty'}]}]}]}";

static const char LOGS[] =
  "{'resourceLogs':[{'resource':{" ATTRS "},'scopeLogs':[{'scope':{'name':'l'},'logRecords':["
    "{'timeUnixNano':'1','observedTimeUnixNano':'2','severityNumber':9,'severityText':'INFO',"
    "'body':{'kvlistValue':{'values':[{'key':'m','value':{'stringValue':'x'}}]}}," ATTRS ","
    "'droppedAttributesCount':1,'flags':1,'traceId':'0102030405060708090a0b0c0d0e0f10',"
    "'spanId':'0102030405060708','eventName':'ev'},"
    "{'body':{'stringValue':'plain'}},{}]},{}]},{}]}";
/* clang-format on */

TEST(otlp_metrics_and_logs) {
  size_t len = 0;
  uint8_t *m = from_json(OTC_SIGNAL_METRICS, METRICS, &len);
  if (m)
    CHECK_EQ_INT(
        compare(
            &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
            m, len, false),
        1);
  free(m);
  uint8_t *l = from_json(OTC_SIGNAL_LOGS, LOGS, &len);
  if (l)
    CHECK_EQ_INT(
        compare(&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
                l, len, false),
        1);
  free(l);
  /* The empty message. */
  CHECK_EQ_INT(
      compare(&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
              (const uint8_t *)"", 0, false),
      1);
}

TEST(packed_and_unpacked_repeated) {
  const ProtobufCMessageDescriptor *h =
      &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor;
  /* bucket_counts (6, fixed64) twice unpacked then packed; explicit_bounds (7, double) unpacked;
   * count (4, fixed64). */
  static const uint8_t hist[] = {0x31, 1,  0, 0, 0, 0, 0, 0,    0,    0x31, 2, 0, 0, 0, 0, 0, 0, 0,
                                 0x32, 16, 3, 0, 0, 0, 0, 0,    0,    0,    4, 0, 0, 0, 0, 0, 0, 0,
                                 0x39, 0,  0, 0, 0, 0, 0, 0xf0, 0x3f, 0x21, 9, 0, 0, 0, 0, 0, 0, 0};
  CHECK_EQ_INT(compare(h, hist, sizeof hist, false), 1);
  /* Buckets: offset (1, sint32) = -3, bucket_counts (2, uint64) packed varints then one unpacked.
   */
  const ProtobufCMessageDescriptor *b =
      &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor;
  static const uint8_t buckets[] = {0x08, 0x05, 0x12, 0x04, 0x01, 0xac, 0x02, 0x00, 0x10, 0x07};
  CHECK_EQ_INT(compare(b, buckets, sizeof buckets, false), 1);
  /* A packed run cut inside a varint is malformed for both. */
  static const uint8_t cut[] = {0x12, 0x02, 0x01, 0xac};
  CHECK_EQ_INT(compare(b, cut, sizeof cut, false), 0);
}

TEST(left_to_protobuf_c) {
  const ProtobufCMessageDescriptor *kv = &opentelemetry__proto__common__v1__key_value__descriptor;
  struct block *head = NULL;
  ProtobufCAllocator a = {t_alloc, t_free, &head};
  /* value (2, AnyValue) twice: protobuf merges them; the fast decoder declines. */
  static const uint8_t twice[] = {0x0a, 0x01, 'k', 0x12, 0x02, 0x10, 0x01, 0x12, 0x02, 0x18, 0x05};
  CHECK(otc_pb__unpack(kv, twice, sizeof twice, &a) == NULL);
  CHECK_EQ_INT(compare(kv, twice, sizeof twice, false), 0);
  /* A group (wire type 3), a truncated string, a zero field number. */
  static const uint8_t group[] = {0x0b, 0x0c};
  static const uint8_t trunc[] = {0x0a, 0x05, 'a', 'b'};
  static const uint8_t zero[] = {0x00, 0x01};
  CHECK(otc_pb__unpack(kv, group, sizeof group, &a) == NULL);
  CHECK(otc_pb__unpack(kv, trunc, sizeof trunc, &a) == NULL);
  CHECK(otc_pb__unpack(kv, zero, sizeof zero, &a) == NULL);
  /* A known field with the wrong wire type: key (1, string) as a varint. */
  static const uint8_t wrong[] = {0x08, 0x01};
  CHECK(otc_pb__unpack(kv, wrong, sizeof wrong, &a) == NULL);
  /* Unknown fields are skipped: the result is the message without them. */
  static const uint8_t unknown[] = {0x0a, 0x01, 'k', 0x78, 0x05, 0x12, 0x02, 0x10, 0x01};
  static const uint8_t known[] = {0x0a, 0x01, 'k', 0x12, 0x02, 0x10, 0x01};
  ProtobufCMessage *m = otc_pb__unpack(kv, unknown, sizeof unknown, &a);
  CHECK(m != NULL);
  if (m) {
    size_t n;
    uint8_t *p = pack(m, &n);
    CHECK(p && n == sizeof known && memcmp(p, known, n) == 0);
    free(p);
  }
  arena_drop(&head);
}

TEST(mutated_input_agrees) {
  size_t len = 0;
  uint8_t *m = from_json(OTC_SIGNAL_METRICS, METRICS, &len);
  if (!m)
    return;
  uint8_t *buf = malloc(len);
  uint64_t x = 0x2545f4914f6cdd1dULL;
  int taken = 0, mismatches = 0;
  for (int it = 0; it < 20000 && buf; it++) {
    memcpy(buf, m, len);
    int flips = 1 + it % 3;
    for (int k = 0; k < flips; k++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[x % len] ^= (uint8_t)(1u << (x >> 32) % 8);
    }
    int r = compare(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        buf, len, true);
    if (r < 0 && mismatches++ < 5)
      fprintf(stderr, "mismatch at iteration %d\n", it);
    taken += r > 0;
  }
  CHECK_EQ_INT(mismatches, 0);
  CHECK(taken > 1000); /* the comparison did run on decodable input */
  free(buf);
  free(m);
}

int main(void) {
  RUN(otlp_metrics_and_logs);
  RUN(packed_and_unpacked_repeated);
  RUN(left_to_protobuf_c);
  RUN(mutated_input_agrees);
  return TEST_REPORT();
}
