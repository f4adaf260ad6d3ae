/* Tests of the OTLP JSON transcoder: the opentelemetry-proto examples and richer requests per
 * signal, the JSON mapping's alternatives (names, strings for numbers, snake_case), error messages
 * with field paths, depth limits, round trips protobuf -> JSON -> protobuf, and mutation loops
 * that must never crash. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>

#include "core/errors.h"
#include "core/otlp_json.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "test.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

#define DEPTH 64

static uint64_t rng(void);

static char err[512];

/* Transcodes json; returns the wire bytes (caller frees) or NULL with the reason in err. */
static uint8_t *to_proto(enum otc_signal s, const char *json, size_t *len) {
  uint8_t *out = NULL;
  *len = 0;
  int rc = otc_json_to_proto(s, json, strlen(json), DEPTH, &out, len, err, sizeof err);
  if (rc != 0) {
    CHECK(out == NULL);
    return NULL;
  }
  return out;
}

static int to_proto_rc(enum otc_signal s, const char *json, int depth) {
  uint8_t *out = NULL;
  size_t len = 0;
  int rc = otc_json_to_proto(s, json, strlen(json), depth, &out, &len, err, sizeof err);
  free(out);
  return rc;
}

static TraceReq *traces(const char *json) {
  size_t len;
  uint8_t *buf = to_proto(OTC_SIGNAL_TRACES, json, &len);
  if (!buf) {
    fprintf(stderr, "transcoding failed: %s\n", err);
    return NULL;
  }
  TraceReq *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, len, buf);
  free(buf);
  return r;
}

static MetricsReq *metrics(const char *json) {
  size_t len;
  uint8_t *buf = to_proto(OTC_SIGNAL_METRICS, json, &len);
  if (!buf) {
    fprintf(stderr, "transcoding failed: %s\n", err);
    return NULL;
  }
  MetricsReq *r =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
          NULL, len, buf);
  free(buf);
  return r;
}

static LogsReq *logs(const char *json) {
  size_t len;
  uint8_t *buf = to_proto(OTC_SIGNAL_LOGS, json, &len);
  if (!buf) {
    fprintf(stderr, "transcoding failed: %s\n", err);
    return NULL;
  }
  LogsReq *r = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
      NULL, len, buf);
  free(buf);
  return r;
}

static bool bytes_eq(ProtobufCBinaryData d, const char *hex) {
  size_t n = strlen(hex) / 2;
  if (d.len != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1 || d.data[i] != v)
      return false;
  }
  return true;
}

/* ---- the official examples, extended ---- */

static const char TRACE_JSON[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"my.service\"}}],\"droppedAttributesCount\":1},"
    "\"schemaUrl\":\"https://opentelemetry.io/schemas/1.21.0\","
    "\"scopeSpans\":[{\"scope\":{\"name\":\"my.library\",\"version\":\"1.0.0\",\"attributes\":"
    "[{\"key\":\"my.scope.attribute\",\"value\":{\"stringValue\":\"some scope attribute\"}}]},"
    "\"spans\":[{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
    "\"parentSpanId\":\"EEE19B7EC3C1B173\",\"name\":\"I'm a server span\","
    "\"startTimeUnixNano\":1544712660000000000,\"endTimeUnixNano\":\"1544712661000000000\","
    "\"kind\":2,\"traceState\":\"k=v\",\"flags\":257,\"droppedAttributesCount\":\"3\","
    "\"attributes\":[{\"key\":\"my.span.attr\",\"value\":{\"stringValue\":\"some value\"}}],"
    "\"events\":[{\"timeUnixNano\":\"1544712660500000000\",\"name\":\"ev\",\"attributes\":"
    "[{\"key\":\"n\",\"value\":{\"intValue\":\"-42\"}}],\"droppedAttributesCount\":2}],"
    "\"droppedEventsCount\":4,"
    "\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"1112131415161718\","
    "\"traceState\":\"a=b\",\"flags\":1,\"attributes\":[{\"key\":\"l\",\"value\":{\"boolValue\":"
    "true}}]}],\"droppedLinksCount\":5,"
    "\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"message\":\"boom\"}},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"name\":\"client\",\"kind\":\"SPAN_KIND_CLIENT\",\"status\":{}}]}]}]}";

TEST(trace_example) {
  TraceReq *r = traces(TRACE_JSON);
  CHECK(r != NULL);
  if (!r)
    return;
  CHECK_EQ_INT(r->n_resource_spans, 1);
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
  CHECK_EQ_STR(rs->schema_url, "https://opentelemetry.io/schemas/1.21.0");
  CHECK_EQ_INT(rs->resource->n_attributes, 1);
  CHECK_EQ_INT(rs->resource->dropped_attributes_count, 1);
  CHECK_EQ_STR(rs->resource->attributes[0]->key, "service.name");
  CHECK_EQ_INT(rs->resource->attributes[0]->value->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
  CHECK_EQ_STR(rs->resource->attributes[0]->value->string_value, "my.service");
  CHECK_EQ_INT(rs->n_scope_spans, 1);
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
  CHECK_EQ_STR(ss->scope->name, "my.library");
  CHECK_EQ_STR(ss->scope->version, "1.0.0");
  CHECK_EQ_STR(ss->scope->attributes[0]->value->string_value, "some scope attribute");
  CHECK_EQ_INT(ss->n_spans, 2);
  Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[0];
  CHECK(bytes_eq(sp->trace_id, "5b8efff798038103d269b633813fc60c"));
  CHECK(bytes_eq(sp->span_id, "eee19b7ec3c1b174"));
  CHECK(bytes_eq(sp->parent_span_id, "eee19b7ec3c1b173"));
  CHECK_EQ_STR(sp->name, "I'm a server span");
  CHECK(sp->start_time_unix_nano == 1544712660000000000ull);
  CHECK(sp->end_time_unix_nano == 1544712661000000000ull);
  CHECK_EQ_INT(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
  CHECK_EQ_STR(sp->trace_state, "k=v");
  CHECK_EQ_INT(sp->flags, 257);
  CHECK_EQ_INT(sp->dropped_attributes_count, 3);
  CHECK_EQ_INT(sp->n_attributes, 1);
  CHECK_EQ_STR(sp->attributes[0]->value->string_value, "some value");
  CHECK_EQ_INT(sp->n_events, 1);
  CHECK(sp->events[0]->time_unix_nano == 1544712660500000000ull);
  CHECK_EQ_STR(sp->events[0]->name, "ev");
  CHECK_EQ_INT(sp->events[0]->dropped_attributes_count, 2);
  CHECK_EQ_INT(sp->events[0]->attributes[0]->value->int_value, -42);
  CHECK_EQ_INT(sp->dropped_events_count, 4);
  CHECK_EQ_INT(sp->n_links, 1);
  CHECK(bytes_eq(sp->links[0]->trace_id, "0102030405060708090a0b0c0d0e0f10"));
  CHECK(bytes_eq(sp->links[0]->span_id, "1112131415161718"));
  CHECK_EQ_STR(sp->links[0]->trace_state, "a=b");
  CHECK_EQ_INT(sp->links[0]->flags, 1);
  CHECK_EQ_INT(sp->links[0]->attributes[0]->value->bool_value, 1);
  CHECK_EQ_INT(sp->dropped_links_count, 5);
  CHECK(sp->status != NULL);
  CHECK_EQ_INT(sp->status->code,
               OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
  CHECK_EQ_STR(sp->status->message, "boom");
  sp = ss->spans[1];
  CHECK(bytes_eq(sp->trace_id, "5b8efff798038103d269b633813fc60c"));
  CHECK_EQ_INT(sp->parent_span_id.len, 0);
  CHECK_EQ_INT(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
  CHECK(sp->status != NULL); /* an empty object is a present, empty message */
  CHECK_EQ_INT(sp->status->code, 0);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

static const char LOGS_JSON[] =
    "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"my.service\"}}]},\"scopeLogs\":[{\"scope\":{\"name\":\"my.library\","
    "\"version\":\"1.0.0\"},\"schemaUrl\":\"s\",\"logRecords\":[{"
    "\"timeUnixNano\":\"1544712660300000000\",\"observedTimeUnixNano\":1544712660300000001,"
    "\"severityNumber\":\"SEVERITY_NUMBER_INFO\",\"severityText\":\"Information\","
    "\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
    "\"flags\":1,\"eventName\":\"my.event\",\"droppedAttributesCount\":7,"
    "\"body\":{\"stringValue\":\"Example log record\"},\"attributes\":["
    "{\"key\":\"string.attribute\",\"value\":{\"stringValue\":\"some string\"}},"
    "{\"key\":\"boolean.attribute\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"int.attribute\",\"value\":{\"intValue\":10}},"
    "{\"key\":\"int.string\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
    "{\"key\":\"double.attribute\",\"value\":{\"doubleValue\":637.704}},"
    "{\"key\":\"bytes.attribute\",\"value\":{\"bytesValue\":\"aGVsbG8=\"}},"
    "{\"key\":\"bytes.urlsafe\",\"value\":{\"bytesValue\":\"-_8\"}},"
    "{\"key\":\"empty\",\"value\":{}},"
    "{\"key\":\"array.attribute\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":"
    "\"many\"},{\"stringValue\":\"values\"},{\"arrayValue\":{}}]}}},"
    "{\"key\":\"map.attribute\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":"
    "\"some.map.key\",\"value\":{\"stringValue\":\"some value\"}}]}}}]},"
    "{\"severityNumber\":17,\"body\":{\"kvlistValue\":{\"values\":[]}}}]}]}]}";

TEST(logs_example) {
  LogsReq *r = logs(LOGS_JSON);
  CHECK(r != NULL);
  if (!r)
    return;
  Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = r->resource_logs[0]->scope_logs[0];
  CHECK_EQ_STR(sl->schema_url, "s");
  CHECK_EQ_INT(sl->n_log_records, 2);
  Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[0];
  CHECK(lr->time_unix_nano == 1544712660300000000ull);
  CHECK(lr->observed_time_unix_nano == 1544712660300000001ull);
  CHECK_EQ_INT(lr->severity_number,
               OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO);
  CHECK_EQ_STR(lr->severity_text, "Information");
  CHECK(bytes_eq(lr->trace_id, "5b8efff798038103d269b633813fc60c"));
  CHECK(bytes_eq(lr->span_id, "eee19b7ec3c1b174"));
  CHECK_EQ_INT(lr->flags, 1);
  CHECK_EQ_STR(lr->event_name, "my.event");
  CHECK_EQ_INT(lr->dropped_attributes_count, 7);
  CHECK_EQ_STR(lr->body->string_value, "Example log record");
  CHECK_EQ_INT(lr->n_attributes, 10);
  if (lr->n_attributes == 10) {
    KeyValue **a = lr->attributes;
    CHECK_EQ_STR(a[0]->value->string_value, "some string");
    CHECK_EQ_INT(a[1]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    CHECK_EQ_INT(a[1]->value->bool_value, 1);
    CHECK_EQ_INT(a[2]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    CHECK_EQ_INT(a[2]->value->int_value, 10);
    CHECK(a[3]->value->int_value == INT64_MIN);
    CHECK_EQ_INT(a[4]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    CHECK(a[4]->value->double_value == 637.704);
    CHECK_EQ_INT(a[5]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    CHECK(a[5]->value->bytes_value.len == 5 &&
          memcmp(a[5]->value->bytes_value.data, "hello", 5) == 0);
    CHECK(bytes_eq(a[6]->value->bytes_value, "fbff"));
    CHECK(a[7]->value != NULL);
    CHECK_EQ_INT(a[7]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    Opentelemetry__Proto__Common__V1__ArrayValue *av = a[8]->value->array_value;
    CHECK(av != NULL && av->n_values == 3);
    if (av && av->n_values == 3) {
      CHECK_EQ_STR(av->values[0]->string_value, "many");
      CHECK_EQ_STR(av->values[1]->string_value, "values");
      CHECK(av->values[2]->array_value != NULL && av->values[2]->array_value->n_values == 0);
    }
    Opentelemetry__Proto__Common__V1__KeyValueList *kv = a[9]->value->kvlist_value;
    CHECK(kv != NULL && kv->n_values == 1);
    if (kv && kv->n_values == 1) {
      CHECK_EQ_STR(kv->values[0]->key, "some.map.key");
      CHECK_EQ_STR(kv->values[0]->value->string_value, "some value");
    }
  }
  lr = sl->log_records[1];
  CHECK_EQ_INT(lr->severity_number, 17);
  CHECK_EQ_INT(lr->body->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
  CHECK_EQ_INT(lr->trace_id.len, 0);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
}

static const char METRICS_JSON[] =
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"my.service\"}}]},\"scopeMetrics\":[{\"scope\":{\"name\":\"my.library\"},"
    "\"metrics\":["
    /* 0: sum */
    "{\"name\":\"my.counter\",\"unit\":\"1\",\"description\":\"I`m a Counter\",\"sum\":"
    "{\"aggregationTemporality\":1,\"isMonotonic\":true,\"dataPoints\":[{\"asDouble\":5,"
    "\"startTimeUnixNano\":1544712660300000000,\"timeUnixNano\":\"1544712660300000000\","
    "\"attributes\":[{\"key\":\"my.counter.attr\",\"value\":{\"stringValue\":\"some value\"}}]},"
    "{\"asInt\":\"-5\",\"flags\":1,\"exemplars\":[{\"timeUnixNano\":\"7\",\"asInt\":3,"
    "\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
    "\"filteredAttributes\":[{\"key\":\"f\",\"value\":{\"stringValue\":\"x\"}}]}]}]},"
    "\"metadata\":[{\"key\":\"m\",\"value\":{\"stringValue\":\"meta\"}}]},"
    /* 1: gauge */
    "{\"name\":\"my.gauge\",\"gauge\":{\"dataPoints\":[{\"asDouble\":10.5,"
    "\"timeUnixNano\":1544712660300000000},{\"asDouble\":\"NaN\"},{\"asDouble\":\"-Infinity\"},"
    "{\"asInt\":0}]}},"
    /* 2: histogram */
    "{\"name\":\"my.histogram\",\"histogram\":{\"aggregationTemporality\":"
    "\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"dataPoints\":[{\"startTimeUnixNano\":"
    "1544712660300000000,\"timeUnixNano\":1544712660300000000,\"count\":3,\"sum\":3,"
    "\"bucketCounts\":[1,\"1\",1],\"explicitBounds\":[1,2.5],\"min\":0,\"max\":1}"
    ",{\"count\":\"2\",\"bucketCounts\":[\"2\"]}]}},"
    /* 3: exponential histogram */
    "{\"name\":\"my.exphist\",\"exponentialHistogram\":{\"aggregationTemporality\":2,"
    "\"dataPoints\":[{\"count\":\"10\",\"sum\":12.5,\"scale\":-2,\"zeroCount\":\"1\","
    "\"zeroThreshold\":1e-9,\"positive\":{\"offset\":-3,\"bucketCounts\":[\"1\",2,3]},"
    "\"negative\":{\"offset\":2,\"bucketCounts\":[4]},\"min\":-1.5,\"max\":9}]}},"
    /* 4: summary */
    "{\"name\":\"my.summary\",\"summary\":{\"dataPoints\":[{\"count\":\"4\",\"sum\":10,"
    "\"quantileValues\":[{\"quantile\":0.5,\"value\":2},{\"quantile\":1,\"value\":4}]}]}}"
    "]}]}]}";

TEST(metrics_example) {
  MetricsReq *r = metrics(METRICS_JSON);
  CHECK(r != NULL);
  if (!r)
    return;
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
  CHECK_EQ_INT(sm->n_metrics, 5);
  if (sm->n_metrics != 5)
    goto done;
  Opentelemetry__Proto__Metrics__V1__Metric **m = sm->metrics;

  CHECK_EQ_STR(m[0]->name, "my.counter");
  CHECK_EQ_STR(m[0]->unit, "1");
  CHECK_EQ_STR(m[0]->description, "I`m a Counter");
  CHECK_EQ_INT(m[0]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
  CHECK_EQ_INT(m[0]->sum->aggregation_temporality, 1);
  CHECK_EQ_INT(m[0]->sum->is_monotonic, 1);
  CHECK_EQ_INT(m[0]->sum->n_data_points, 2);
  Opentelemetry__Proto__Metrics__V1__NumberDataPoint *np = m[0]->sum->data_points[0];
  CHECK_EQ_INT(np->value_case,
               OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
  CHECK(np->as_double == 5.0);
  CHECK(np->start_time_unix_nano == 1544712660300000000ull);
  CHECK(np->time_unix_nano == 1544712660300000000ull);
  CHECK_EQ_STR(np->attributes[0]->key, "my.counter.attr");
  np = m[0]->sum->data_points[1];
  CHECK_EQ_INT(np->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
  CHECK_EQ_INT(np->as_int, -5);
  CHECK_EQ_INT(np->flags, 1);
  CHECK_EQ_INT(np->n_exemplars, 1);
  Opentelemetry__Proto__Metrics__V1__Exemplar *ex = np->exemplars[0];
  CHECK_EQ_INT(ex->time_unix_nano, 7);
  CHECK_EQ_INT(ex->value_case, OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT);
  CHECK_EQ_INT(ex->as_int, 3);
  CHECK(bytes_eq(ex->trace_id, "5b8efff798038103d269b633813fc60c"));
  CHECK(bytes_eq(ex->span_id, "eee19b7ec3c1b174"));
  CHECK_EQ_STR(ex->filtered_attributes[0]->value->string_value, "x");
  CHECK_EQ_INT(m[0]->n_metadata, 1);
  CHECK_EQ_STR(m[0]->metadata[0]->value->string_value, "meta");

  CHECK_EQ_INT(m[1]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
  CHECK_EQ_INT(m[1]->gauge->n_data_points, 4);
  CHECK(m[1]->gauge->data_points[0]->as_double == 10.5);
  CHECK(isnan(m[1]->gauge->data_points[1]->as_double));
  CHECK(isinf(m[1]->gauge->data_points[2]->as_double) &&
        m[1]->gauge->data_points[2]->as_double < 0);
  /* A oneof member set to its default is still present. */
  CHECK_EQ_INT(m[1]->gauge->data_points[3]->value_case,
               OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);

  CHECK_EQ_INT(m[2]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
  CHECK_EQ_INT(m[2]->histogram->aggregation_temporality, 2);
  CHECK_EQ_INT(m[2]->histogram->n_data_points, 2);
  Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp = m[2]->histogram->data_points[0];
  CHECK_EQ_INT(hp->count, 3);
  CHECK_EQ_INT(hp->_sum_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
  CHECK(hp->sum == 3.0);
  CHECK_EQ_INT(hp->_min_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN);
  CHECK(hp->min == 0.0);
  CHECK_EQ_INT(hp->_max_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX);
  CHECK(hp->max == 1.0);
  CHECK_EQ_INT(hp->n_bucket_counts, 3);
  CHECK(hp->bucket_counts[0] == 1 && hp->bucket_counts[1] == 1 && hp->bucket_counts[2] == 1);
  CHECK_EQ_INT(hp->n_explicit_bounds, 2);
  CHECK(hp->explicit_bounds[0] == 1.0 && hp->explicit_bounds[1] == 2.5);
  hp = m[2]->histogram->data_points[1];
  CHECK_EQ_INT(hp->count, 2);
  CHECK_EQ_INT(hp->_sum_case,
               OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM__NOT_SET);
  CHECK_EQ_INT(hp->_min_case,
               OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN__NOT_SET);
  CHECK_EQ_INT(hp->_max_case,
               OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX__NOT_SET);

  CHECK_EQ_INT(m[3]->data_case,
               OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
  Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *ep =
      m[3]->exponential_histogram->data_points[0];
  CHECK_EQ_INT(m[3]->exponential_histogram->aggregation_temporality, 2);
  CHECK_EQ_INT(ep->count, 10);
  CHECK(ep->_sum_case && ep->sum == 12.5);
  CHECK_EQ_INT(ep->scale, -2);
  CHECK_EQ_INT(ep->zero_count, 1);
  CHECK(ep->zero_threshold == 1e-9);
  CHECK_EQ_INT(ep->positive->offset, -3);
  CHECK_EQ_INT(ep->positive->n_bucket_counts, 3);
  CHECK(ep->positive->bucket_counts[2] == 3);
  CHECK_EQ_INT(ep->negative->offset, 2);
  CHECK(ep->negative->n_bucket_counts == 1 && ep->negative->bucket_counts[0] == 4);
  CHECK(ep->_min_case && ep->min == -1.5);
  CHECK(ep->_max_case && ep->max == 9.0);

  CHECK_EQ_INT(m[4]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY);
  Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *sp = m[4]->summary->data_points[0];
  CHECK_EQ_INT(sp->count, 4);
  CHECK(sp->sum == 10.0);
  CHECK_EQ_INT(sp->n_quantile_values, 2);
  CHECK(sp->quantile_values[0]->quantile == 0.5 && sp->quantile_values[0]->value == 2.0);
  CHECK(sp->quantile_values[1]->quantile == 1.0 && sp->quantile_values[1]->value == 4.0);
done:
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(r,
                                                                                              NULL);
}

/* ---- the mapping's alternatives ---- */

static Opentelemetry__Proto__Logs__V1__LogRecord *first_record(LogsReq *r) {
  if (!r || !r->n_resource_logs || !r->resource_logs[0]->n_scope_logs ||
      !r->resource_logs[0]->scope_logs[0]->n_log_records)
    return NULL;
  return r->resource_logs[0]->scope_logs[0]->log_records[0];
}

/* Transcodes one log record given as a JSON object and returns its time_unix_nano, or -1. */
static long long record_time(const char *record) {
  char json[1024];
  snprintf(json, sizeof json, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[%s]}]}]}",
           record);
  /* Not through logs(): failures are expected here, and their reason is checked in err. */
  size_t len;
  uint8_t *buf = to_proto(OTC_SIGNAL_LOGS, json, &len);
  LogsReq *r = buf ? opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
                         NULL, len, buf)
                   : NULL;
  free(buf);
  Opentelemetry__Proto__Logs__V1__LogRecord *lr = first_record(r);
  long long t = lr ? (long long)lr->time_unix_nano : -1;
  if (r)
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
  return t;
}

TEST(integer_forms) {
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":123}"), 123);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"123\"}"), 123);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"1e3\"}"), 1000);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":1e3}"), 1000);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"1.5e1\"}"), 15);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"2.000\"}"), 2);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"-0\"}"), 0);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"9223372036854775807\"}"), INT64_MAX);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":null}"), 0);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":1.5}"), -1);
  CHECK_CONTAINS(err, "not an integer");
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"1.5\"}"), -1);
  CHECK_CONTAINS(err, "not an integer");
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\" 12\"}"), -1);
  CHECK_CONTAINS(err, "invalid integer");
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"0x10\"}"), -1);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"\"}"), -1);
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":true}"), -1);
  CHECK_CONTAINS(err, "expected an integer");
  CHECK_EQ_INT(record_time("{\"timeUnixNano\":\"1e400\"}"), -1);
  CHECK_CONTAINS(err, "out of range");

  /* fixed64 accepts the whole unsigned range as a string. */
  LogsReq *r = logs("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
                    "\"18446744073709551615\",\"flags\":\"4294967295\"}]}]}]}");
  Opentelemetry__Proto__Logs__V1__LogRecord *lr = first_record(r);
  CHECK(lr != NULL);
  if (lr) {
    CHECK(lr->time_unix_nano == UINT64_MAX);
    CHECK(lr->flags == UINT32_MAX);
  }
  if (r)
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
}

TEST(names_and_unknown_keys) {
  /* snake_case names, enum names, unknown keys (with nested content) and nulls. */
  TraceReq *r =
      traces("{\"resource_spans\":[{\"unknown\":{\"deep\":[1,{\"x\":null}]},\"scope_spans\":[{"
             "\"spans\":[{\"trace_id\":\"0102030405060708090a0b0c0d0e0f10\",\"span_id\":"
             "\"0102030405060708\",\"parent_span_id\":\"\",\"start_time_unix_nano\":\"5\","
             "\"kind\":\"SPAN_KIND_PRODUCER\",\"dropped_attributes_count\":9,\"name\":\"n\","
             "\"status\":{\"code\":\"STATUS_CODE_OK\"},\"nope\":1,\"links\":null,"
             "\"name_\":2,\"Name\":\"ignored\"}]}]}],\"extra\":true}");
  CHECK(r != NULL);
  if (!r)
    return;
  Opentelemetry__Proto__Trace__V1__Span *sp = r->resource_spans[0]->scope_spans[0]->spans[0];
  CHECK(bytes_eq(sp->trace_id, "0102030405060708090a0b0c0d0e0f10"));
  CHECK(bytes_eq(sp->span_id, "0102030405060708"));
  CHECK_EQ_INT(sp->parent_span_id.len, 0);
  CHECK_EQ_INT(sp->start_time_unix_nano, 5);
  CHECK_EQ_INT(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER);
  CHECK_EQ_INT(sp->dropped_attributes_count, 9);
  CHECK_EQ_STR(sp->name, "n");
  CHECK_EQ_INT(sp->status->code,
               OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK);
  CHECK_EQ_INT(sp->n_links, 0);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);

  /* Duplicate keys: the last one wins, as in protobuf's parsers. */
  r = traces(
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\",\"name\":\"b\"}]}]}]}");
  CHECK(r != NULL);
  if (r) {
    CHECK_EQ_STR(r->resource_spans[0]->scope_spans[0]->spans[0]->name, "b");
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
                                                                                            NULL);
  }

  /* An empty request is valid and packs to nothing. */
  size_t len = 99;
  uint8_t *buf = to_proto(OTC_SIGNAL_METRICS, "{}", &len);
  CHECK(buf != NULL);
  CHECK_EQ_INT(len, 0);
  free(buf);
  buf = to_proto(OTC_SIGNAL_LOGS, " {\"resourceLogs\":[]} ", &len);
  CHECK(buf != NULL);
  CHECK_EQ_INT(len, 0);
  free(buf);

  /* Unknown enum numbers are kept (proto3 enums are open). */
  r = traces("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":77}]}]}]}");
  CHECK(r != NULL);
  if (r) {
    CHECK_EQ_INT(r->resource_spans[0]->scope_spans[0]->spans[0]->kind, 77);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
                                                                                            NULL);
  }
}

TEST(double_forms) {
  MetricsReq *r =
      metrics("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":["
              "{\"asDouble\":\"Infinity\"},{\"asDouble\":\"-2.5e-3\"},{\"asDouble\":7},"
              "{\"asDouble\":-0.0}]}}]}]}]}");
  CHECK(r != NULL);
  if (!r)
    return;
  Opentelemetry__Proto__Metrics__V1__NumberDataPoint **dp =
      r->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points;
  CHECK(isinf(dp[0]->as_double) && dp[0]->as_double > 0);
  CHECK(dp[1]->as_double == -2.5e-3);
  CHECK(dp[2]->as_double == 7.0);
  CHECK(dp[3]->as_double == 0 && signbit(dp[3]->as_double));
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(r,
                                                                                              NULL);

  const char *bad[] = {"\"nan\"", "\"inf\"", "\"1e999\"", "\"1.\"", "\"abc\"", "true", "{}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char json[256];
    snprintf(json, sizeof json,
             "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":"
             "[{\"asDouble\":%s}]}}]}]}]}",
             bad[i]);
    CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_METRICS, json, DEPTH), OTC_ERR_INVALID);
    CHECK_CONTAINS(err,
                   "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asDouble: ");
  }
}

/* ---- errors ---- */

struct bad_case {
  enum otc_signal s;
  const char *json;
  const char *message;
};

TEST(errors) {
  static const struct bad_case cases[] = {
      {OTC_SIGNAL_TRACES, "[]", "not a JSON object"},
      {OTC_SIGNAL_TRACES, "\"resourceSpans\"", "not a JSON object"},
      {OTC_SIGNAL_TRACES, "42", "not a JSON object"},
      {OTC_SIGNAL_TRACES, "null", "not a JSON object"},
      {OTC_SIGNAL_TRACES, "", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":[", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{} {}", "invalid JSON"},
      {OTC_SIGNAL_TRACES,
       "{\"resourceSpans\":[{\"scopeSpans\":[{},{\"spans\":[{},{},{},{\"traceId\":"
       "\"5B8EFFF798038103D269B633813FC6XX\"}]}]}]}",
       "resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid hex"},
      {OTC_SIGNAL_TRACES,
       "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"0102\"}]}]}]}",
       "resourceSpans[0].scopeSpans[0].spans[0].spanId: wrong length"},
      {OTC_SIGNAL_TRACES,
       "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708\"}]}]}]}",
       "traceId: wrong length"},
      {OTC_SIGNAL_TRACES,
       "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"links\":[{\"spanId\":"
       "\"01020304050607080\"}]}]}]}]}",
       "spans[0].links[0].spanId: wrong length"},
      {OTC_SIGNAL_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":42}]}]}]}",
       "traceId: expected a string"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"a$b=\"}}]}]"
       "}]}",
       "logRecords[0].body.bytesValue: invalid base64"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"QUJDR\"}}]}"
       "]}]}",
       "invalid base64"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"QQ=\"}}]}]}"
       "]}",
       "invalid base64"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":"
       "\"9223372036854775808\"}}]}]}]}",
       "body.intValue: integer out of range"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":"
       "\"-9223372036854775809\"}}]}]}]}",
       "integer out of range"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":"
       "9223372036854775808}}]}]}]}",
       "invalid JSON"}, /* jansson refuses integers beyond int64 itself */
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
       "\"18446744073709551616\"}]}]}]}",
       "timeUnixNano: integer out of range"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":-1}]}]}]}",
       "timeUnixNano: integer out of range"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"flags\":4294967296}]}]}]}",
       "flags: integer out of range"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":"
       "\"SEVERITY_NUMBER_LOUD\"}]}]}]}",
       "severityNumber: unknown enum value"},
      {OTC_SIGNAL_LOGS, "{\"resourceLogs\":[{\"resource\":\"x\"}]}",
       "resourceLogs[0].resource: expected an object"},
      {OTC_SIGNAL_LOGS, "{\"resourceLogs\":{}}", "resourceLogs: expected an array"},
      {OTC_SIGNAL_LOGS, "{\"resourceLogs\":[\"x\"]}", "resourceLogs[0]: expected an object"},
      {OTC_SIGNAL_LOGS, "{\"resourceLogs\":[null]}", "resourceLogs[0]: null in an array"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityText\":5}]}]}]}",
       "severityText: expected a string"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"boolValue\":1}}]}]}]}",
       "body.boolValue: expected true or false"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"a\","
       "\"intValue\":1}}]}]}]}",
       "more than one field of a oneof"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":1,"
       "\"time_unix_nano\":2}]}]}]}",
       "timeUnixNano: set both"},
      {OTC_SIGNAL_LOGS,
       "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityText\":\"a\\u0000b\"}]}]}]}",
       "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"resourceLogs\":[{\"schemaUrl\":\"\xff\"}]}", "invalid JSON"},
      {OTC_SIGNAL_METRICS,
       "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{},\"sum\":{}}]}]}]}",
       "metrics[0].sum: more than one field of a oneof"},
      {OTC_SIGNAL_METRICS,
       "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{\"dataPoints\":"
       "[{\"bucketCounts\":[1,-2]}]}}]}]}]}",
       "histogram.dataPoints[0].bucketCounts[1]: integer out of range"},
      {OTC_SIGNAL_METRICS,
       "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"exponentialHistogram\":"
       "{\"dataPoints\":[{\"scale\":2147483648}]}}]}]}]}",
       "scale: integer out of range"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    err[0] = '\0';
    int rc = to_proto_rc(cases[i].s, cases[i].json, DEPTH);
    if (rc != OTC_ERR_INVALID || !strstr(err, cases[i].message))
      fprintf(stderr, "case %zu: rc %d, \"%s\"\n", i, rc, err);
    CHECK_EQ_INT(rc, OTC_ERR_INVALID);
    CHECK_CONTAINS(err, cases[i].message);
  }

  /* The output arguments are cleared on failure; a NULL error buffer is allowed. */
  uint8_t *out = (uint8_t *)err;
  size_t len = 7;
  CHECK_EQ_INT(otc_json_to_proto(OTC_SIGNAL_TRACES, "[", 1, DEPTH, &out, &len, NULL, 0),
               OTC_ERR_INVALID);
  CHECK(out == NULL);
  CHECK_EQ_INT(len, 0);
  CHECK_EQ_INT(otc_json_to_proto((enum otc_signal)9, "{}", 2, DEPTH, &out, &len, err, sizeof err),
               OTC_ERR_INVALID);
  /* The length is honoured: the JSON need not be NUL-terminated. */
  CHECK_EQ_INT(
      otc_json_to_proto(OTC_SIGNAL_TRACES, "{}garbage", 2, DEPTH, &out, &len, err, sizeof err), 0);
  free(out);
  /* A small error buffer is truncated, never overrun. */
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  CHECK_EQ_INT(otc_json_to_proto(OTC_SIGNAL_TRACES, "[]", 2, DEPTH, &out, &len, tiny, 5),
               OTC_ERR_INVALID);
  CHECK(tiny[4] == '\0' && tiny[5] == 'x');
}

/* A log body of arrays nested `levels` AnyValues deep. */
static char *nested_body(int levels) {
  size_t cap = (size_t)levels * 40 + 200;
  char *s = malloc(cap);
  size_t n =
      (size_t)snprintf(s, cap, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
  for (int i = 1; i < levels; i++)
    n += (size_t)snprintf(s + n, cap - n, "{\"arrayValue\":{\"values\":[");
  n += (size_t)snprintf(s + n, cap - n, "{\"intValue\":1}");
  for (int i = 1; i < levels; i++)
    n += (size_t)snprintf(s + n, cap - n, "]}}");
  snprintf(s + n, cap - n, "}]}]}]}");
  return s;
}

TEST(depth) {
  char *ok = nested_body(8), *deep = nested_body(9);
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, ok, 8), 0);
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, deep, 8), OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "nesting deeper than 8");
  CHECK_CONTAINS(err, "resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue.values[0]");
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, deep, 9), 0);
  free(ok);
  free(deep);

  /* kvlists count too. */
  const char *kv = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"kvlistValue\":"
                   "{\"values\":[{\"key\":\"a\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":"
                   "\"b\",\"value\":{\"intValue\":1}}]}}}]}}}]}]}]}";
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, kv, 3), 0);
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, kv, 2), OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "nesting deeper than 2");

  /* 400 levels, within jansson's limit but over ours. */
  char *big = nested_body(400);
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, big, DEPTH), OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "nesting deeper than 64");
  free(big);

  /* 5,000 nested arrays under an unknown key: jansson's own depth limit refuses them. */
  size_t n = 5000;
  char *arr = malloc(2 * n + 32);
  size_t o = (size_t)sprintf(arr, "{\"x\":");
  memset(arr + o, '[', n);
  o += n;
  memset(arr + o, ']', n);
  o += n;
  strcpy(arr + o, "}");
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_TRACES, arr, DEPTH), OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "invalid JSON");
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_TRACES, arr + 5, DEPTH), OTC_ERR_INVALID);
  free(arr);
}

/* ---- canonical bytes: the transcoder writes protobuf itself, and must write exactly what
 * protobuf-c would pack from the same message, whatever the order, repetition or names of the
 * keys. ---- */

static const ProtobufCMessageDescriptor *req_descriptor(enum otc_signal s) {
  return s == OTC_SIGNAL_TRACES
             ? &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor
         : s == OTC_SIGNAL_METRICS
             ? &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor
             : &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
}

/* Whether buf is what protobuf-c packs after unpacking it: field order, no repeated or default
 * fields, minimal lengths. */
static bool is_canonical(enum otc_signal s, const uint8_t *buf, size_t len) {
  static const uint8_t empty[1];
  ProtobufCMessage *m = protobuf_c_message_unpack(req_descriptor(s), NULL, len, len ? buf : empty);
  if (!m)
    return false;
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *p = malloc(n ? n : 1);
  protobuf_c_message_pack(m, p);
  bool same = n == len && (n == 0 || memcmp(p, buf, n) == 0);
  free(p);
  protobuf_c_message_free_unpacked(m, NULL);
  return same;
}

/* Transcodes json and checks that the bytes are canonical and equal to those of want (NULL: no
 * comparison). */
static void check_same_bytes(enum otc_signal s, const char *json, const char *want) {
  size_t len = 0, wlen = 0;
  uint8_t *p = to_proto(s, json, &len);
  CHECK(p != NULL);
  if (!p) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  CHECK(is_canonical(s, p, len));
  if (want) {
    uint8_t *w = to_proto(s, want, &wlen);
    CHECK(w != NULL);
    CHECK(w && wlen == len && memcmp(w, p, len) == 0);
    free(w);
  }
  free(p);
}

TEST(key_order_and_repeats) {
  const char *seeds[3] = {TRACE_JSON, METRICS_JSON, LOGS_JSON};
  const enum otc_signal sig[3] = {OTC_SIGNAL_TRACES, OTC_SIGNAL_METRICS, OTC_SIGNAL_LOGS};
  for (int k = 0; k < 3; k++) {
    check_same_bytes(sig[k], seeds[k], NULL);
    /* The same request with every object's keys sorted by name, an order unrelated to the field
     * numbers, gives the same bytes. */
    json_t *tree = json_loads(seeds[k], 0, NULL);
    CHECK(tree != NULL);
    char *sorted = tree ? json_dumps(tree, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(tree);
    CHECK(sorted != NULL);
    if (sorted)
      check_same_bytes(sig[k], sorted, seeds[k]);
    free(sorted);
  }

  /* Repeated keys (the last wins, whatever it replaces), nulls, both names, defaults. */
  check_same_bytes(OTC_SIGNAL_TRACES,
                   "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\",\"kind\":2,"
                   "\"name\":\"b\",\"kind\":null,\"attributes\":[{\"key\":\"x\"}],\"flags\":0,"
                   "\"attributes\":[],\"status\":{\"code\":1},\"status\":{\"message\":\"m\"},"
                   "\"start_time_unix_nano\":\"7\",\"trace_id\":null,\"traceId\":"
                   "\"0102030405060708090a0b0c0d0e0f10\",\"parentSpanId\":\"\"}]}]}]}",
                   "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                   "\"0102030405060708090a0b0c0d0e0f10\",\"name\":\"b\",\"startTimeUnixNano\":"
                   "\"7\",\"status\":{\"message\":\"m\"}}]}]}]}");
  check_same_bytes(OTC_SIGNAL_LOGS,
                   "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":1,"
                   "\"timeUnixNano\":null,\"time_unix_nano\":2,\"body\":{\"intValue\":1},"
                   "\"body\":{\"stringValue\":\"s\"}}]}]}]}",
                   "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":2,"
                   "\"body\":{\"stringValue\":\"s\"}}]}]}]}");
  /* A oneof member replaced by null lets another one be set. */
  check_same_bytes(OTC_SIGNAL_LOGS,
                   "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":1,"
                   "\"intValue\":null,\"boolValue\":true}}]}]}]}",
                   "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"boolValue\":"
                   "true}}]}]}]}");

  /* Zeros: left out as proto3 defaults, kept in oneofs and optional fields, -0.0 included. */
  check_same_bytes(OTC_SIGNAL_METRICS,
                   "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"\","
                   "\"histogram\":{\"dataPoints\":[{\"count\":0,\"sum\":-0.0,\"min\":0,"
                   "\"bucketCounts\":[0,0],\"explicitBounds\":[-0.0]},{\"bucketCounts\":[],"
                   "\"explicitBounds\":[]}],\"aggregationTemporality\":0}},{\"gauge\":{"
                   "\"dataPoints\":[{\"asDouble\":-0.0},{\"asDouble\":0},{\"asInt\":\"0\"},"
                   "{\"asInt\":-1,\"timeUnixNano\":0}]}},{\"exponentialHistogram\":{"
                   "\"dataPoints\":[{\"scale\":-3,\"positive\":{\"offset\":-5,\"bucketCounts\":"
                   "[1,0,300]},\"negative\":{}}]}}]}]}]}",
                   NULL);
  check_same_bytes(OTC_SIGNAL_LOGS,
                   "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":-1,"
                   "\"body\":{\"bytesValue\":\"\"},\"attributes\":[{\"key\":\"\",\"value\":{"
                   "\"stringValue\":\"\"}},{\"key\":\"k\",\"value\":{\"doubleValue\":-0.0}},"
                   "{\"key\":\"b\",\"value\":{\"boolValue\":false}}],\"droppedAttributesCount\":0,"
                   "\"traceId\":\"\",\"spanId\":\"\"}]}]}]}",
                   NULL);

  /* Lengths of one, two and three bytes, nested, and packed arrays over 127 bytes. */
  enum { SPANS = 300, NAME = 200 };
  size_t cap = SPANS * (NAME + 200) + 200, n = 0;
  char *big = malloc(cap);
  n += (size_t)snprintf(big + n, cap - n, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
  for (int i = 0; i < SPANS; i++) {
    n += (size_t)snprintf(big + n, cap - n, "%s{\"name\":\"", i ? "," : "");
    for (int j = 0; j < NAME + i; j++)
      big[n++] = (char)('a' + (i + j) % 26);
    n += (size_t)snprintf(big + n, cap - n, "\",\"kind\":%d}", i % 6);
  }
  snprintf(big + n, cap - n, "]}]}]}");
  check_same_bytes(OTC_SIGNAL_TRACES, big, NULL);
  n = (size_t)snprintf(big, cap,
                       "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{"
                       "\"histogram\":{\"dataPoints\":[{\"bucketCounts\":[");
  for (int i = 0; i < 2100; i++)
    n += (size_t)snprintf(big + n, cap - n, "%s%d", i ? "," : "", i);
  snprintf(big + n, cap - n, "]}]}}]}]}]}");
  check_same_bytes(OTC_SIGNAL_METRICS, big, NULL);
  free(big);
}

TEST(parser_strictness) {
  static const struct bad_case cases[] = {
      /* Something after the request, even an unterminated string. */
      {OTC_SIGNAL_TRACES, "{} \"abc", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{}x", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{},{}", "invalid JSON"},
      /* Invalid JSON wins over any other error, wherever it is. */
      {OTC_SIGNAL_TRACES, "3\"abc", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{\"resourceSpans\":{}} x", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":7}],\"x\":[1,}", "invalid JSON"},
      /* Numbers beyond int64 or double, anywhere. */
      {OTC_SIGNAL_TRACES, "{\"x\":99999999999999999999}", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{\"x\":-9223372036854775809}", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{\"x\":[1e400]}", "invalid JSON"},
      {OTC_SIGNAL_TRACES, "{\"x\":-923.4e306}", "invalid JSON"},
      /* Not UTF-8, or a NUL, in values and keys, known or not. */
      {OTC_SIGNAL_LOGS, "{\"x\":\"\xc0\x80\"}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":\"\xed\xa0\x80\"}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":\"\xf4\x90\x80\x80\"}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":\"\xe2\x82\"}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\\u0000\":1}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"resource\xff\":1}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":\"\\udc00\"}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":\"a\\u0000\"}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":1}/* comment */", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":01}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":[1,]}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, "{\"x\":'a'}", "invalid JSON"},
      {OTC_SIGNAL_LOGS, " ", "invalid JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    err[0] = '\0';
    int rc = to_proto_rc(cases[i].s, cases[i].json, DEPTH);
    if (rc != OTC_ERR_INVALID || !strstr(err, cases[i].message))
      fprintf(stderr, "case %zu: rc %d, \"%s\"\n", i, rc, err);
    CHECK_EQ_INT(rc, OTC_ERR_INVALID);
    CHECK_CONTAINS(err, cases[i].message);
  }
  /* The error says where. */
  CHECK_EQ_INT(to_proto_rc(OTC_SIGNAL_LOGS, "{\n\"x\": [1,\n  2,,3]}", DEPTH), OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "invalid JSON at line 3");

  /* What is valid: the largest integers, tiny reals, escapes, surrogate pairs, 4-byte UTF-8. */
  size_t len;
  uint8_t *p = to_proto(OTC_SIGNAL_LOGS,
                        "{\"x\":[9223372036854775807,-9223372036854775808,1e-400,1.7e308],"
                        "\"resourceLogs\":[{\"schemaUrl\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80 "
                        "\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}]} \n\t",
                        &len);
  CHECK(p != NULL);
  LogsReq *r = p ? opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
                       NULL, len, p)
                 : NULL;
  CHECK(r != NULL && r->n_resource_logs == 1);
  if (r && r->n_resource_logs == 1)
    CHECK_EQ_STR(r->resource_logs[0]->schema_url,
                 "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80 \"\\/\b\f\n\r\t\xc3\xa9");
  if (r)
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
  free(p);
}

/* Doubles read from JSON numbers and strings are exactly what strtod reads, on the fast path
 * (up to 15 digits) and off it. */
TEST(double_text_exact) {
  char num[64], json[256];
  int bad = 0;
  for (int i = 0; i < 4000; i++) {
    uint64_t m = rng() % 10000000000000000ull; /* up to 16 digits */
    int digits = snprintf(num, sizeof num, "%s%" PRIu64, rng() % 2 ? "-" : "", m);
    int point = (int)(rng() % (uint64_t)(digits + 2));
    if (point > 0 && point < digits && num[point - 1] != '-') {
      memmove(num + point + 1, num + point, (size_t)(digits - point + 1));
      num[point] = '.';
    }
    if (i % 5 == 0)
      snprintf(num + strlen(num), sizeof num - strlen(num), "e%d", (int)(rng() % 40) - 20);
    if (i % 7 == 0)
      snprintf(num, sizeof num, "%.17g", (double)(rng() >> 11) / (double)(1ull << 53) * 1e10);
    double want = strtod(num, NULL);
    bool quoted = i % 2;
    snprintf(json, sizeof json,
             "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":"
             "[{\"asDouble\":%s%s%s}]}}]}]}]}",
             quoted ? "\"" : "", num, quoted ? "\"" : "");
    MetricsReq *r = metrics(json);
    double got =
        r ? r->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points[0]->as_double
          : NAN;
    bool integer_literal = !strpbrk(num, ".eE");
    /* An integer literal is read as an int64 first, as jansson did: "-0" is 0. */
    if (integer_literal && want == 0)
      want = 0;
    if (memcmp(&got, &want, sizeof got) != 0) {
      if (bad++ < 5)
        fprintf(stderr, "  %s: got %.17g, want %.17g\n", num, got, want);
    }
    if (r)
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
          r, NULL);
  }
  CHECK_EQ_INT(bad, 0);
}

/* ---- protobuf -> JSON ---- */

static char *to_json(enum otc_signal s, const uint8_t *buf, size_t len) {
  char *out = NULL;
  size_t out_len = 0;
  int rc = otc_proto_to_json(s, buf, len, &out, &out_len);
  CHECK_EQ_INT(rc, 0);
  if (rc)
    return NULL;
  CHECK_EQ_INT(strlen(out), out_len);
  return out;
}

TEST(canonical_output) {
  const char *in =
      "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":"
      "7}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":[{\"traceId\":"
      "\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\",\"name\":"
      "\"s\\n\\\"q\\\"\","
      "\"kind\":\"SPAN_KIND_SERVER\",\"startTimeUnixNano\":1544712660000000000,"
      "\"endTimeUnixNano\":\"1544712661000000000\",\"droppedLinksCount\":0,\"flags\":0,"
      "\"status\":{\"code\":2,\"message\":\"boom\"}}]}]}]}";
  const char *want =
      "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":"
      "\"7\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":[{\"traceId\":"
      "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\",\"name\":"
      "\"s\\n\\\"q\\\"\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
      "\"endTimeUnixNano\":\"1544712661000000000\",\"status\":{\"message\":\"boom\",\"code\":2}}]}"
      "]}]}";
  size_t len;
  uint8_t *buf = to_proto(OTC_SIGNAL_TRACES, in, &len);
  CHECK(buf != NULL);
  char *json = buf ? to_json(OTC_SIGNAL_TRACES, buf, len) : NULL;
  CHECK_EQ_STR(json, want);
  free(json);
  free(buf);

  /* Empty requests and values. */
  json = to_json(OTC_SIGNAL_LOGS, NULL, 0);
  CHECK_EQ_STR(json, "{}");
  free(json);
  buf = to_proto(OTC_SIGNAL_LOGS,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{}},"
                 "{\"body\":{\"stringValue\":\"\"}},{\"attributes\":[{\"key\":\"\"}]}]}]}]}",
                 &len);
  CHECK(buf != NULL);
  json = buf ? to_json(OTC_SIGNAL_LOGS, buf, len) : NULL;
  CHECK_EQ_STR(json, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{}},"
                     "{\"body\":{\"stringValue\":\"\"}},{\"attributes\":[{}]}]}]}]}");
  free(json);
  free(buf);

  /* Doubles: shortest form, presence of oneof zeros, non-finite values as strings. */
  buf = to_proto(OTC_SIGNAL_METRICS,
                 "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{"
                 "\"dataPoints\":[{\"sum\":0,\"min\":-0.0,\"max\":0.1,\"explicitBounds\":[1e300,"
                 "\"NaN\",\"Infinity\",\"-Infinity\",-2.5,0]}]}}]}]}]}",
                 &len);
  CHECK(buf != NULL);
  json = buf ? to_json(OTC_SIGNAL_METRICS, buf, len) : NULL;
  CHECK_EQ_STR(json, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{"
                     "\"dataPoints\":[{\"sum\":0,\"explicitBounds\":[1e+300,\"NaN\",\"Infinity\","
                     "\"-Infinity\",-2.5,0],\"min\":-0.0,\"max\":0.1}]}}]}]}]}");
  free(json);
  free(buf);

  /* Undecodable protobuf is refused. */
  char *out = (char *)1;
  size_t out_len = 5;
  const uint8_t junk[] = {0x0a, 0x05, 0x01};
  CHECK_EQ_INT(otc_proto_to_json(OTC_SIGNAL_TRACES, junk, sizeof junk, &out, &out_len),
               OTC_ERR_INVALID);
  CHECK(out == NULL);
  CHECK_EQ_INT(out_len, 0);
}

/* json -> proto -> json -> proto: the protobuf bytes must be identical, and the JSON stable. */
static void round_trip_json(enum otc_signal s, const char *json) {
  size_t len1, len2;
  uint8_t *p1 = to_proto(s, json, &len1);
  CHECK(p1 != NULL);
  if (!p1)
    return;
  CHECK(len1 > 0);
  char *j1 = to_json(s, p1, len1);
  uint8_t *p2 = j1 ? to_proto(s, j1, &len2) : NULL;
  CHECK(p2 != NULL);
  if (p2) {
    CHECK_EQ_INT(len1, len2);
    CHECK(len1 == len2 && memcmp(p1, p2, len1) == 0);
    char *j2 = to_json(s, p2, len2);
    CHECK_EQ_STR(j1, j2);
    free(j2);
  }
  free(j1);
  free(p1);
  free(p2);
}

TEST(round_trip_examples) {
  round_trip_json(OTC_SIGNAL_TRACES, TRACE_JSON);
  round_trip_json(OTC_SIGNAL_METRICS, METRICS_JSON);
  round_trip_json(OTC_SIGNAL_LOGS, LOGS_JSON);
}

/* A log request built with protobuf-c directly, with the values JSON finds hardest. */
TEST(round_trip_from_protobuf) {
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
      OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  Opentelemetry__Proto__Logs__V1__LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &rl;
  Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &sl;
  Opentelemetry__Proto__Logs__V1__LogRecord *lrp = &lr;
  req.n_resource_logs = 1;
  req.resource_logs = &rlp;
  rl.n_scope_logs = 1;
  rl.scope_logs = &slp;
  sl.n_log_records = 1;
  sl.log_records = &lrp;

  enum { NV = 12 };
  AnyValue v[NV];
  KeyValue kv[NV];
  KeyValue *kvp[NV];
  uint8_t all_bytes[256], tid[16], sid[8];
  for (int i = 0; i < 256; i++)
    all_bytes[i] = (uint8_t)i;
  for (int i = 0; i < 16; i++)
    tid[i] = (uint8_t)(0xf0 + i);
  for (int i = 0; i < 8; i++)
    sid[i] = (uint8_t)(0xa0 + i);
  char keys[NV][8];
  for (int i = 0; i < NV; i++) {
    opentelemetry__proto__common__v1__any_value__init(&v[i]);
    opentelemetry__proto__common__v1__key_value__init(&kv[i]);
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    kv[i].key = keys[i];
    kv[i].value = &v[i];
    kvp[i] = &kv[i];
  }
  v[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[0].double_value = NAN;
  v[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[1].double_value = -INFINITY;
  v[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[2].double_value = -0.0;
  v[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[3].double_value = 0.1 + 0.2; /* needs 17 digits */
  v[4].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  v[4].int_value = INT64_MIN;
  v[5].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v[5].string_value = "ctl \x01\x1f\t \"q\" \\ / h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f";
  v[6].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
  v[6].bytes_value.data = all_bytes;
  v[6].bytes_value.len = sizeof all_bytes;
  v[7].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
  v[7].bytes_value.data = all_bytes + 1;
  v[7].bytes_value.len = 2; /* base64 with one '=' */
  v[8].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
  v[8].bool_value = 0;
  v[9].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[9].double_value = 5e-324;
  v[10].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[10].double_value = -1.7976931348623157e308;
  /* v[11] stays an empty AnyValue. */
  lr.n_attributes = NV;
  lr.attributes = kvp;
  lr.time_unix_nano = UINT64_MAX;
  lr.severity_number = 24;
  lr.trace_id.data = tid;
  lr.trace_id.len = sizeof tid;
  lr.span_id.data = sid;
  lr.span_id.len = sizeof sid;
  lr.flags = 0xffffffffu;
  lr.body = &v[5];

  size_t len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  uint8_t *p1 = malloc(len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, p1);
  char *json = to_json(OTC_SIGNAL_LOGS, p1, len);
  CHECK(json != NULL);
  if (json) {
    CHECK_CONTAINS(json, "\"traceId\":\"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\"");
    CHECK_CONTAINS(json, "\"spanId\":\"a0a1a2a3a4a5a6a7\"");
    CHECK_CONTAINS(json, "\"timeUnixNano\":\"18446744073709551615\"");
    CHECK_CONTAINS(json, "{\"doubleValue\":\"NaN\"}");
    CHECK_CONTAINS(json, "{\"doubleValue\":\"-Infinity\"}");
    CHECK_CONTAINS(json, "{\"doubleValue\":-0.0}");
    CHECK_CONTAINS(json, "{\"doubleValue\":0.30000000000000004}");
    CHECK_CONTAINS(json, "{\"intValue\":\"-9223372036854775808\"}");
    CHECK_CONTAINS(json, "ctl \\u0001\\u001f\\t \\\"q\\\" \\\\ / h\xc3\xa9");
    CHECK_CONTAINS(json, "{\"bytesValue\":\"AAECAwQF");
    CHECK_CONTAINS(json, "{\"bytesValue\":\"AQI=\"}");
    CHECK_CONTAINS(json, "{\"boolValue\":false}");
    CHECK_CONTAINS(json, "{\"key\":\"k11\",\"value\":{}}");
    size_t len2;
    uint8_t *p2 = to_proto(OTC_SIGNAL_LOGS, json, &len2);
    CHECK(p2 != NULL);
    if (!p2)
      fprintf(stderr, "%s\n", err);
    CHECK(p2 && len2 == len && memcmp(p1, p2, len) == 0);
    free(p2);
  }
  free(json);

  /* Invalid UTF-8 from protobuf still gives valid JSON. */
  v[5].string_value = "a\xff\xc3(b\xed\xa0\x80";
  len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  p1 = realloc(p1, len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, p1);
  json = to_json(OTC_SIGNAL_LOGS, p1, len);
  CHECK(json != NULL);
  if (json) {
    CHECK_CONTAINS(json, "\"a\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    json_error_t jerr;
    json_t *parsed = json_loads(json, 0, &jerr);
    CHECK(parsed != NULL);
    json_decref(parsed);
  }
  free(json);
  free(p1);
}

TEST(proto_depth_guard) {
  /* AnyValue nested beyond what JSON could carry back (2048 / 3 levels) is refused. */
  enum { LEVELS = 2100 };
  AnyValue *vals = calloc(LEVELS, sizeof *vals);
  Opentelemetry__Proto__Common__V1__ArrayValue *arrs = calloc(LEVELS, sizeof *arrs);
  AnyValue **ptrs = calloc(LEVELS, sizeof *ptrs);
  for (int i = 0; i < LEVELS; i++) {
    opentelemetry__proto__common__v1__any_value__init(&vals[i]);
    opentelemetry__proto__common__v1__array_value__init(&arrs[i]);
  }
  for (int i = 0; i + 1 < LEVELS; i++) {
    vals[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    vals[i].array_value = &arrs[i];
    ptrs[i] = &vals[i + 1];
    arrs[i].n_values = 1;
    arrs[i].values = &ptrs[i];
  }
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
      OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  Opentelemetry__Proto__Logs__V1__LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &rl;
  Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &sl;
  Opentelemetry__Proto__Logs__V1__LogRecord *lrp = &lr;
  req.n_resource_logs = 1;
  req.resource_logs = &rlp;
  rl.n_scope_logs = 1;
  rl.scope_logs = &slp;
  sl.n_log_records = 1;
  sl.log_records = &lrp;
  lr.body = &vals[0];
  size_t len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
  char *out = NULL;
  size_t out_len = 0;
  CHECK_EQ_INT(otc_proto_to_json(OTC_SIGNAL_LOGS, buf, len, &out, &out_len), OTC_ERR_INVALID);
  CHECK(out == NULL);
  free(buf);

  /* The bound is exact. */
  lr.body = &vals[LEVELS - 683];
  len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  buf = malloc(len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
  CHECK_EQ_INT(otc_proto_to_json(OTC_SIGNAL_LOGS, buf, len, &out, &out_len), OTC_ERR_INVALID);
  free(buf);
  lr.body = &vals[LEVELS - 682];
  len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  buf = malloc(len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
  CHECK_EQ_INT(otc_proto_to_json(OTC_SIGNAL_LOGS, buf, len, &out, &out_len), 0);
  free(out);
  free(buf);

  /* 100 levels are fine, and come back through JSON with a deep enough limit. */
  lr.body = &vals[LEVELS - 100];
  len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  buf = malloc(len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
  CHECK_EQ_INT(otc_proto_to_json(OTC_SIGNAL_LOGS, buf, len, &out, &out_len), 0);
  if (out) {
    uint8_t *back = NULL;
    size_t back_len = 0;
    CHECK_EQ_INT(
        otc_json_to_proto(OTC_SIGNAL_LOGS, out, out_len, 100, &back, &back_len, err, sizeof err),
        0);
    CHECK(back_len == len && back && memcmp(back, buf, len) == 0);
    free(back);
    CHECK_EQ_INT(
        otc_json_to_proto(OTC_SIGNAL_LOGS, out, out_len, 99, &back, &back_len, err, sizeof err),
        OTC_ERR_INVALID);
    free(back);
  }
  free(out);
  free(buf);
  free(vals);
  free(arrs);
  free(ptrs);
}

/* ---- mutation loops ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random edits that keep some structure: flips, JSON punctuation, deletions, duplications and
 * truncation. Returns the new length (buf has room for cap bytes). */
static size_t mutate(char *buf, size_t len, size_t cap) {
  static const char punct[] = "{}[]\",:-0123456789.eE\\ntfu\x80\xff";
  int edits = 1 + (int)(rng() % 4);
  for (int e = 0; e < edits && len > 0; e++) {
    size_t at = rng() % len;
    switch (rng() % 6) {
    case 0:
      buf[at] = (char)(rng() & 0xff);
      break;
    case 1:
      buf[at] = punct[rng() % (sizeof punct - 1)];
      break;
    case 2: /* delete a run */ {
      size_t n = 1 + rng() % 8;
      if (n > len - at)
        n = len - at;
      memmove(buf + at, buf + at + n, len - at - n);
      len -= n;
      break;
    }
    case 3: /* duplicate a run */ {
      size_t n = 1 + rng() % 16;
      if (n > len - at)
        n = len - at;
      if (len + n <= cap) {
        memmove(buf + at + n, buf + at, len - at);
        len += n;
      }
      break;
    }
    case 4:
      len = at;
      break;
    default:
      buf[at] ^= (char)(1u << (rng() % 8));
    }
  }
  return len;
}

TEST(mutation_loop) {
  const char *seeds[3] = {TRACE_JSON, METRICS_JSON, LOGS_JSON};
  const enum otc_signal sig[3] = {OTC_SIGNAL_TRACES, OTC_SIGNAL_METRICS, OTC_SIGNAL_LOGS};
  size_t cap = 8192;
  char *buf = malloc(cap);
  int accepted = 0, refused = 0;
  for (int it = 0; it < 20000; it++) {
    int k = it % 3;
    size_t len = strlen(seeds[k]);
    memcpy(buf, seeds[k], len);
    len = mutate(buf, len, cap);
    uint8_t *p = NULL;
    size_t plen = 0;
    /* A random signal sometimes, so that one signal's JSON meets another's schema. */
    enum otc_signal s = rng() % 8 == 0 ? (enum otc_signal)(rng() % 3) : sig[k];
    int rc = otc_json_to_proto(s, buf, len, 1 + (int)(rng() % 6), &p, &plen, err, sizeof err);
    if (rc != 0) {
      CHECK_EQ_INT(rc, OTC_ERR_INVALID);
      CHECK(p == NULL && err[0] != '\0');
      refused++;
      continue;
    }
    accepted++;
    CHECK(is_canonical(s, p, plen));
    /* What was accepted must survive the round trip unchanged. */
    char *j = NULL;
    size_t jlen = 0;
    CHECK_EQ_INT(otc_proto_to_json(s, p, plen, &j, &jlen), 0);
    uint8_t *p2 = NULL;
    size_t p2len = 0;
    CHECK_EQ_INT(otc_json_to_proto(s, j, jlen, 64, &p2, &p2len, err, sizeof err), 0);
    CHECK(p2len == plen && (plen == 0 || memcmp(p, p2, plen) == 0));
    free(j);
    free(p);
    free(p2);
  }
  fprintf(stderr, "  mutations: %d accepted, %d refused\n", accepted, refused);
  CHECK(accepted > 100 && refused > 100);
  free(buf);
}

TEST(proto_mutation_loop) {
  /* protobuf-c decides what is decodable; the writer must cope with whatever it decodes. */
  const char *seeds[3] = {TRACE_JSON, METRICS_JSON, LOGS_JSON};
  const enum otc_signal sig[3] = {OTC_SIGNAL_TRACES, OTC_SIGNAL_METRICS, OTC_SIGNAL_LOGS};
  uint8_t *wire[3];
  size_t wlen[3];
  for (int k = 0; k < 3; k++) {
    wire[k] = to_proto(sig[k], seeds[k], &wlen[k]);
    CHECK(wire[k] != NULL);
    if (!wire[k])
      return;
  }
  size_t cap = 8192;
  char *buf = malloc(cap);
  int decoded = 0;
  for (int it = 0; it < 5000; it++) {
    int k = it % 3;
    memcpy(buf, wire[k], wlen[k]);
    size_t len = mutate(buf, wlen[k], cap);
    char *j = NULL;
    size_t jlen = 0;
    int rc = otc_proto_to_json(sig[k], (const uint8_t *)buf, len, &j, &jlen);
    if (rc == 0) {
      decoded++;
      json_error_t jerr;
      json_t *parsed = json_loadb(j, jlen, 0, &jerr);
      CHECK(parsed != NULL && json_is_object(parsed));
      json_decref(parsed);
    } else {
      CHECK_EQ_INT(rc, OTC_ERR_INVALID);
      CHECK(j == NULL);
    }
    free(j);
  }
  fprintf(stderr, "  protobuf mutations: %d decoded\n", decoded);
  CHECK(decoded > 100);
  free(buf);
  for (int k = 0; k < 3; k++)
    free(wire[k]);
}

int main(void) {
  RUN(trace_example);
  RUN(logs_example);
  RUN(metrics_example);
  RUN(integer_forms);
  RUN(names_and_unknown_keys);
  RUN(double_forms);
  RUN(errors);
  RUN(depth);
  RUN(key_order_and_repeats);
  RUN(parser_strictness);
  RUN(double_text_exact);
  RUN(canonical_output);
  RUN(round_trip_examples);
  RUN(round_trip_from_protobuf);
  RUN(proto_depth_guard);
  RUN(mutation_loop);
  RUN(proto_mutation_loop);
  return TEST_REPORT();
}
