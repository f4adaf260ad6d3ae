/* The debug, file and nop exporters: the debug exporter's text at each verbosity (captured from
 * its file descriptor), the file exporter's JSON lines and length-prefixed protobuf, and the
 * counts every exporter reports. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/component.h"
#include "core/errors.h"
#include "core/metrics.h"
#include "test.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

extern const struct otc_component_ops otc_exporter_debug;
extern const struct otc_component_ops otc_exporter_file;
extern const struct otc_component_ops otc_exporter_nop;

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

/* --- known batches, built with protobuf-c --- */

static uint8_t trace_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t span_a[8] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
static uint8_t span_b[8] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28};

static void str_kv(KeyValue *kv, AnyValue *v, const char *k, const char *s) {
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(v);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v->string_value = (char *)s;
  kv->key = (char *)k;
  kv->value = v;
}

static void int_kv(KeyValue *kv, AnyValue *v, const char *k, int64_t i) {
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(v);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  v->int_value = i;
  kv->key = (char *)k;
  kv->value = v;
}

/* One resource (service.name=svc), one scope (lib 1.0), two spans. */
static struct otc_batch *trace_batch(void) {
  KeyValue rkv, akv[2];
  AnyValue rv, av[2];
  str_kv(&rkv, &rv, "service.name", "svc");
  str_kv(&akv[0], &av[0], "http.method", "GET");
  int_kv(&akv[1], &av[1], "n", 42);
  KeyValue *rattrs[] = {&rkv}, *sattrs[] = {&akv[0], &akv[1]};

  Opentelemetry__Proto__Resource__V1__Resource res;
  opentelemetry__proto__resource__v1__resource__init(&res);
  res.n_attributes = 1;
  res.attributes = rattrs;
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
  opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
  scope.name = "lib";
  scope.version = "1.0";

  Opentelemetry__Proto__Trace__V1__Status st;
  opentelemetry__proto__trace__v1__status__init(&st);
  st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
  st.message = "boom";
  Opentelemetry__Proto__Trace__V1__Span sa, sb;
  opentelemetry__proto__trace__v1__span__init(&sa);
  sa.trace_id = (ProtobufCBinaryData){16, trace_id};
  sa.span_id = (ProtobufCBinaryData){8, span_a};
  sa.name = "op-a";
  sa.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
  sa.start_time_unix_nano = 1581452772000000321ull;
  sa.end_time_unix_nano = 1581452773000000789ull;
  sa.n_attributes = 2;
  sa.attributes = sattrs;
  sa.status = &st;
  opentelemetry__proto__trace__v1__span__init(&sb);
  sb.trace_id = (ProtobufCBinaryData){16, trace_id};
  sb.span_id = (ProtobufCBinaryData){8, span_b};
  sb.parent_span_id = (ProtobufCBinaryData){8, span_a};
  sb.name = "op-b";
  sb.start_time_unix_nano = 1581452772500000000ull;
  sb.end_time_unix_nano = 1581452773000000000ull;
  Opentelemetry__Proto__Trace__V1__Span *spans[] = {&sa, &sb};

  Opentelemetry__Proto__Trace__V1__ScopeSpans ss;
  opentelemetry__proto__trace__v1__scope_spans__init(&ss);
  ss.scope = &scope;
  ss.n_spans = 2;
  ss.spans = spans;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs;
  opentelemetry__proto__trace__v1__resource_spans__init(&rs);
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = sss;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
  req.n_resource_spans = 1;
  req.resource_spans = rss;

  size_t len =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
          &req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_TRACES, buf, len, 2, false, NULL);
  free(buf);
  return b;
}

/* One log record: body "hello world", severity Info, attribute app=server. */
static struct otc_batch *log_batch(void) {
  KeyValue kv;
  AnyValue v, body;
  str_kv(&kv, &v, "app", "server");
  KeyValue *attrs[] = {&kv};
  opentelemetry__proto__common__v1__any_value__init(&body);
  body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  body.string_value = "hello world";
  Opentelemetry__Proto__Logs__V1__LogRecord lr;
  opentelemetry__proto__logs__v1__log_record__init(&lr);
  lr.time_unix_nano = 1581452773000000789ull;
  lr.severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
  lr.severity_text = "Info";
  lr.body = &body;
  lr.n_attributes = 1;
  lr.attributes = attrs;
  lr.trace_id = (ProtobufCBinaryData){16, trace_id};
  lr.span_id = (ProtobufCBinaryData){8, span_a};
  Opentelemetry__Proto__Logs__V1__LogRecord *lrs[] = {&lr};
  Opentelemetry__Proto__Logs__V1__ScopeLogs sl;
  opentelemetry__proto__logs__v1__scope_logs__init(&sl);
  sl.n_log_records = 1;
  sl.log_records = lrs;
  Opentelemetry__Proto__Logs__V1__ScopeLogs *sls[] = {&sl};
  Opentelemetry__Proto__Logs__V1__ResourceLogs rl;
  opentelemetry__proto__logs__v1__resource_logs__init(&rl);
  rl.n_scope_logs = 1;
  rl.scope_logs = sls;
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rls[] = {&rl};
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req;
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(&req);
  req.n_resource_logs = 1;
  req.resource_logs = rls;
  size_t len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_LOGS, buf, len, 1, false, NULL);
  free(buf);
  return b;
}

/* Two metrics: a gauge "queue" with two int points, a cumulative monotonic sum "bytes" with one
 * double point. */
static struct otc_batch *metric_batch(void) {
  KeyValue kv[2];
  AnyValue v[2];
  str_kv(&kv[0], &v[0], "q", "a");
  str_kv(&kv[1], &v[1], "q", "b");
  KeyValue *a0[] = {&kv[0]}, *a1[] = {&kv[1]};
  Opentelemetry__Proto__Metrics__V1__NumberDataPoint p[3];
  for (int i = 0; i < 3; i++) {
    opentelemetry__proto__metrics__v1__number_data_point__init(&p[i]);
    p[i].time_unix_nano = 1581452773000000789ull;
  }
  p[0].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
  p[0].as_int = 123;
  p[0].n_attributes = 1;
  p[0].attributes = a0;
  p[1].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
  p[1].as_int = 456;
  p[1].n_attributes = 1;
  p[1].attributes = a1;
  p[2].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
  p[2].as_double = 1.5;
  Opentelemetry__Proto__Metrics__V1__NumberDataPoint *gp[] = {&p[0], &p[1]}, *sp[] = {&p[2]};
  Opentelemetry__Proto__Metrics__V1__Gauge gauge;
  opentelemetry__proto__metrics__v1__gauge__init(&gauge);
  gauge.n_data_points = 2;
  gauge.data_points = gp;
  Opentelemetry__Proto__Metrics__V1__Sum sum;
  opentelemetry__proto__metrics__v1__sum__init(&sum);
  sum.n_data_points = 1;
  sum.data_points = sp;
  sum.is_monotonic = 1;
  sum.aggregation_temporality =
      OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
  Opentelemetry__Proto__Metrics__V1__Metric m[2];
  opentelemetry__proto__metrics__v1__metric__init(&m[0]);
  m[0].name = "queue";
  m[0].unit = "1";
  m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
  m[0].gauge = &gauge;
  opentelemetry__proto__metrics__v1__metric__init(&m[1]);
  m[1].name = "bytes";
  m[1].unit = "By";
  m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
  m[1].sum = &sum;
  Opentelemetry__Proto__Metrics__V1__Metric *ms[] = {&m[0], &m[1]};
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm;
  opentelemetry__proto__metrics__v1__scope_metrics__init(&sm);
  sm.n_metrics = 2;
  sm.metrics = ms;
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sms[] = {&sm};
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm;
  opentelemetry__proto__metrics__v1__resource_metrics__init(&rm);
  rm.n_scope_metrics = 1;
  rm.scope_metrics = sms;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rms[] = {&rm};
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req;
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&req);
  req.n_resource_metrics = 1;
  req.resource_metrics = rms;
  size_t len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          &req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, buf);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_METRICS, buf, len, 3, false, NULL);
  free(buf);
  return b;
}

/* A span with events, links and structured attributes, and the other metric point kinds: the
 * less common paths of the detailed dump. */
static struct otc_batch *rich_trace_batch(void) {
  AnyValue inner[3], arr, kvl, dbl[4], bytes;
  KeyValue kvs[2], attrs[7];
  opentelemetry__proto__common__v1__any_value__init(&inner[0]);
  inner[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  inner[0].int_value = 1;
  opentelemetry__proto__common__v1__any_value__init(&inner[1]);
  inner[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
  inner[1].bool_value = 1;
  opentelemetry__proto__common__v1__any_value__init(&inner[2]);
  inner[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  inner[2].string_value = "x\"y";
  AnyValue *items[] = {&inner[0], &inner[1], &inner[2]};
  Opentelemetry__Proto__Common__V1__ArrayValue av;
  opentelemetry__proto__common__v1__array_value__init(&av);
  av.n_values = 3;
  av.values = items;
  opentelemetry__proto__common__v1__any_value__init(&arr);
  arr.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
  arr.array_value = &av;
  /* Keys out of order: the dump sorts them, as Go's JSON encoding of a map does. */
  opentelemetry__proto__common__v1__key_value__init(&kvs[0]);
  kvs[0].key = "zeta";
  kvs[0].value = &inner[0];
  opentelemetry__proto__common__v1__key_value__init(&kvs[1]);
  kvs[1].key = "alpha";
  kvs[1].value = &arr;
  KeyValue *kvp[] = {&kvs[0], &kvs[1]};
  Opentelemetry__Proto__Common__V1__KeyValueList kl;
  opentelemetry__proto__common__v1__key_value_list__init(&kl);
  kl.n_values = 2;
  kl.values = kvp;
  opentelemetry__proto__common__v1__any_value__init(&kvl);
  kvl.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
  kvl.kvlist_value = &kl;
  double dv[4] = {1.5, 1e-7, 1e21, 123456.789};
  for (int i = 0; i < 4; i++) {
    opentelemetry__proto__common__v1__any_value__init(&dbl[i]);
    dbl[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    dbl[i].double_value = dv[i];
  }
  opentelemetry__proto__common__v1__any_value__init(&bytes);
  bytes.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
  bytes.bytes_value = (ProtobufCBinaryData){4, (uint8_t *)"abcd"};
  const char *names[] = {"map", "d1", "d2", "d3", "d4", "raw", "list"};
  AnyValue *vals[] = {&kvl, &dbl[0], &dbl[1], &dbl[2], &dbl[3], &bytes, &arr};
  KeyValue *ap[7];
  for (int i = 0; i < 7; i++) {
    opentelemetry__proto__common__v1__key_value__init(&attrs[i]);
    attrs[i].key = (char *)names[i];
    attrs[i].value = vals[i];
    ap[i] = &attrs[i];
  }
  Opentelemetry__Proto__Trace__V1__Span__Event ev;
  opentelemetry__proto__trace__v1__span__event__init(&ev);
  ev.name = "retry";
  ev.time_unix_nano = 1000000000ull;
  ev.n_attributes = 1;
  ev.attributes = ap;
  Opentelemetry__Proto__Trace__V1__Span__Event *evs[] = {&ev};
  Opentelemetry__Proto__Trace__V1__Span__Link ln;
  opentelemetry__proto__trace__v1__span__link__init(&ln);
  ln.trace_id = (ProtobufCBinaryData){16, trace_id};
  ln.span_id = (ProtobufCBinaryData){8, span_b};
  ln.trace_state = "k=v";
  Opentelemetry__Proto__Trace__V1__Span__Link *lns[] = {&ln};
  Opentelemetry__Proto__Trace__V1__Span sp;
  opentelemetry__proto__trace__v1__span__init(&sp);
  sp.trace_id = (ProtobufCBinaryData){16, trace_id};
  sp.span_id = (ProtobufCBinaryData){8, span_a};
  sp.name = "rich";
  sp.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER;
  sp.trace_state = "ot=th:0";
  sp.n_attributes = 7;
  sp.attributes = ap;
  sp.n_events = 1;
  sp.events = evs;
  sp.n_links = 1;
  sp.links = lns;
  sp.dropped_links_count = 3;
  Opentelemetry__Proto__Trace__V1__Span *spans[] = {&sp};
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss;
  opentelemetry__proto__trace__v1__scope_spans__init(&ss);
  ss.n_spans = 1;
  ss.spans = spans;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs;
  opentelemetry__proto__trace__v1__resource_spans__init(&rs);
  rs.n_scope_spans = 1;
  rs.scope_spans = sss;
  rs.schema_url = "https://opentelemetry.io/schemas/1.4.0";
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
  req.n_resource_spans = 1;
  req.resource_spans = rss;
  size_t len =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
          &req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_TRACES, buf, len, 1, false, NULL);
  free(buf);
  return b;
}

/* A histogram, an exponential histogram and a summary, one point each. */
static struct otc_batch *rich_metric_batch(void) {
  uint64_t counts[] = {0, 1};
  double bounds[] = {1};
  Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hp;
  opentelemetry__proto__metrics__v1__histogram_data_point__init(&hp);
  hp.count = 1;
  hp._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
  hp.sum = 15;
  hp._min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
  hp.min = 15;
  hp.n_bucket_counts = 2;
  hp.bucket_counts = counts;
  hp.n_explicit_bounds = 1;
  hp.explicit_bounds = bounds;
  Opentelemetry__Proto__Metrics__V1__Exemplar ex;
  opentelemetry__proto__metrics__v1__exemplar__init(&ex);
  ex.value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
  ex.as_double = 15;
  ex.trace_id = (ProtobufCBinaryData){16, trace_id};
  Opentelemetry__Proto__Metrics__V1__Exemplar *exs[] = {&ex};
  hp.n_exemplars = 1;
  hp.exemplars = exs;
  Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hps[] = {&hp};
  Opentelemetry__Proto__Metrics__V1__Histogram h;
  opentelemetry__proto__metrics__v1__histogram__init(&h);
  h.n_data_points = 1;
  h.data_points = hps;
  h.aggregation_temporality =
      OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;

  uint64_t pos[] = {1, 1}, neg[] = {1, 1};
  Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets pb, nb;
  opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(&pb);
  pb.offset = 1;
  pb.n_bucket_counts = 2;
  pb.bucket_counts = pos;
  opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(&nb);
  nb.offset = -1;
  nb.n_bucket_counts = 2;
  nb.bucket_counts = neg;
  Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ep;
  opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(&ep);
  ep.count = 5;
  ep.scale = 1;
  ep.zero_count = 1;
  ep.positive = &pb;
  ep.negative = &nb;
  Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *eps[] = {&ep};
  Opentelemetry__Proto__Metrics__V1__ExponentialHistogram eh;
  opentelemetry__proto__metrics__v1__exponential_histogram__init(&eh);
  eh.n_data_points = 1;
  eh.data_points = eps;

  Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile q;
  opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(&q);
  q.quantile = 0.01;
  q.value = 15;
  Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *qs[] = {&q};
  Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sdp;
  opentelemetry__proto__metrics__v1__summary_data_point__init(&sdp);
  sdp.count = 1;
  sdp.sum = 15;
  sdp.n_quantile_values = 1;
  sdp.quantile_values = qs;
  Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *sdps[] = {&sdp};
  Opentelemetry__Proto__Metrics__V1__Summary sum;
  opentelemetry__proto__metrics__v1__summary__init(&sum);
  sum.n_data_points = 1;
  sum.data_points = sdps;

  Opentelemetry__Proto__Metrics__V1__Metric m[3];
  const char *names[] = {"hist", "exphist", "summ"};
  for (int i = 0; i < 3; i++) {
    opentelemetry__proto__metrics__v1__metric__init(&m[i]);
    m[i].name = (char *)names[i];
  }
  m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
  m[0].histogram = &h;
  m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
  m[1].exponential_histogram = &eh;
  m[2].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
  m[2].summary = &sum;
  Opentelemetry__Proto__Metrics__V1__Metric *ms[] = {&m[0], &m[1], &m[2]};
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm;
  opentelemetry__proto__metrics__v1__scope_metrics__init(&sm);
  sm.n_metrics = 3;
  sm.metrics = ms;
  Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sms[] = {&sm};
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm;
  opentelemetry__proto__metrics__v1__resource_metrics__init(&rm);
  rm.n_scope_metrics = 1;
  rm.scope_metrics = sms;
  Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rms[] = {&rm};
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req;
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&req);
  req.n_resource_metrics = 1;
  req.resource_metrics = rms;
  size_t len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          &req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, buf);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_METRICS, buf, len, 3, false, NULL);
  free(buf);
  return b;
}

/* --- helpers --- */

static void *make(const struct otc_component_ops *ops, const char *id, const char *yaml,
                  struct otc_cfg_node **root, char *msg) {
  struct otc_cfg_err err = {{0}};
  msg[0] = '\0';
  *root = otc_cfg_load_string(yaml, strlen(yaml), "exp.yaml", &err);
  if (!*root) {
    snprintf(msg, 512, "load: %.400s", err.msg);
    return NULL;
  }
  struct otc_create_args args = {.id = id, .root = *root};
  void *ctx = ops->create(&args, *root, &err);
  if (!ctx)
    snprintf(msg, 512, "%s", err.msg);
  return ctx;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = '\0';
  if (len)
    *len = got;
  return buf;
}

/* Runs consume with the file descriptor fd redirected into a temporary file; returns what was
 * written there (malloc'd). */
static char *capture(int fd, void *ctx, struct otc_batch *b, int *rc) {
  char path[] = "/tmp/otc_test_capture_XXXXXX";
  int tmp = mkstemp(path);
  fflush(NULL);
  int saved = dup(fd);
  dup2(tmp, fd);
  *rc = otc_exporter_debug.consume(ctx, b);
  fflush(NULL);
  dup2(saved, fd);
  close(saved);
  close(tmp);
  char *out = read_file(path, NULL);
  unlink(path);
  return out;
}

static uint64_t counter(const char *name, const char *labels) {
  return otc_counter_value(otc_counter_get(name, "", labels));
}

/* --- debug --- */

TEST(debug_basic) {
  otc_metrics_reset();
  char msg[512];
  struct otc_cfg_node *root;
  void *d = make(&otc_exporter_debug, "debug", "use_internal_logger: false\n", &root, msg);
  CHECK(d != NULL);
  if (!d)
    return;
  int rc;
  char *out = capture(STDOUT_FILENO, d, trace_batch(), &rc);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_STR(out, "Traces {\"resource spans\": 1, \"spans\": 2}\n");
  free(out);
  out = capture(STDOUT_FILENO, d, metric_batch(), &rc);
  CHECK_EQ_STR(out, "Metrics {\"resource metrics\": 1, \"metrics\": 2, \"data points\": 3}\n");
  free(out);
  out = capture(STDOUT_FILENO, d, log_batch(), &rc);
  CHECK_EQ_STR(out, "Logs {\"resource logs\": 1, \"log records\": 1}\n");
  free(out);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "exporter=\"debug\""), 2);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_metric_points", "exporter=\"debug\""), 3);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "exporter=\"debug\""), 1);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);

  /* Through the internal logger: a JSON log line on stderr. */
  d = make(&otc_exporter_debug, "debug/2", "", &root, msg);
  CHECK(d != NULL);
  out = capture(STDERR_FILENO, d, trace_batch(), &rc);
  CHECK_CONTAINS(out, "\"component\":\"debug/2\"");
  CHECK_CONTAINS(out, "\"msg\":\"Traces {\\\"resource spans\\\": 1, \\\"spans\\\": 2}\"");
  CHECK(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
  free(out);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);
  otc_metrics_reset();
}

TEST(debug_normal) {
  char msg[512];
  struct otc_cfg_node *root;
  void *d = make(&otc_exporter_debug, "debug", "verbosity: normal\nuse_internal_logger: false\n",
                 &root, msg);
  CHECK(d != NULL);
  if (!d)
    return;
  int rc;
  char *out = capture(STDOUT_FILENO, d, trace_batch(), &rc);
  CHECK_EQ_STR(out, "Traces {\"resource spans\": 1, \"spans\": 2}\n"
                    "op-a 0102030405060708090a0b0c0d0e0f10 1112131415161718 http.method=GET n=42\n"
                    "op-b 0102030405060708090a0b0c0d0e0f10 2122232425262728\n");
  free(out);
  out = capture(STDOUT_FILENO, d, log_batch(), &rc);
  CHECK_EQ_STR(out, "Logs {\"resource logs\": 1, \"log records\": 1}\nhello world app=server\n");
  free(out);
  out = capture(STDOUT_FILENO, d, metric_batch(), &rc);
  CHECK_CONTAINS(out, "\nqueue{q=a} 123\nqueue{q=b} 456\nbytes{} 1.5\n");
  free(out);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);
  otc_metrics_reset();
}

TEST(debug_detailed) {
  char msg[512];
  struct otc_cfg_node *root;
  void *d = make(&otc_exporter_debug, "debug", "verbosity: Detailed\nuse_internal_logger: false\n",
                 &root, msg);
  CHECK(d != NULL);
  if (!d)
    return;
  int rc;
  char *out = capture(STDOUT_FILENO, d, trace_batch(), &rc);
  const char *want = "Traces {\"resource spans\": 1, \"spans\": 2}\n"
                     "ResourceSpans #0\n"
                     "Resource SchemaURL: \n"
                     "Resource attributes:\n"
                     "     -> service.name: Str(svc)\n"
                     "ScopeSpans #0\n"
                     "ScopeSpans SchemaURL: \n"
                     "InstrumentationScope lib 1.0\n"
                     "Span #0\n"
                     "    Trace ID       : 0102030405060708090a0b0c0d0e0f10\n"
                     "    Parent ID      : \n"
                     "    ID             : 1112131415161718\n"
                     "    Name           : op-a\n"
                     "    Kind           : Server\n"
                     "    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC\n"
                     "    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC\n"
                     "    Status code    : Error\n"
                     "    Status message : boom\n"
                     "    DroppedAttributesCount: 0\n"
                     "    DroppedEventsCount: 0\n"
                     "    DroppedLinksCount: 0\n"
                     "Attributes:\n"
                     "     -> http.method: Str(GET)\n"
                     "     -> n: Int(42)\n"
                     "Span #1\n"
                     "    Trace ID       : 0102030405060708090a0b0c0d0e0f10\n"
                     "    Parent ID      : 1112131415161718\n"
                     "    ID             : 2122232425262728\n"
                     "    Name           : op-b\n"
                     "    Kind           : Unspecified\n"
                     "    Start time     : 2020-02-11 20:26:12.5 +0000 UTC\n"
                     "    End time       : 2020-02-11 20:26:13 +0000 UTC\n"
                     "    Status code    : Unset\n"
                     "    Status message : \n"
                     "    DroppedAttributesCount: 0\n"
                     "    DroppedEventsCount: 0\n"
                     "    DroppedLinksCount: 0\n";
  CHECK_EQ_STR(out, want);
  free(out);

  out = capture(STDOUT_FILENO, d, log_batch(), &rc);
  CHECK_EQ_STR(out, "Logs {\"resource logs\": 1, \"log records\": 1}\n"
                    "ResourceLog #0\n"
                    "Resource SchemaURL: \n"
                    "ScopeLogs #0\n"
                    "ScopeLogs SchemaURL: \n"
                    "InstrumentationScope  \n"
                    "LogRecord #0\n"
                    "ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC\n"
                    "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC\n"
                    "SeverityText: Info\n"
                    "SeverityNumber: Info(9)\n"
                    "Body: Str(hello world)\n"
                    "Attributes:\n"
                    "     -> app: Str(server)\n"
                    "Trace ID: 0102030405060708090a0b0c0d0e0f10\n"
                    "Span ID: 1112131415161718\n"
                    "Flags: 0\n");
  free(out);

  out = capture(STDOUT_FILENO, d, metric_batch(), &rc);
  CHECK_CONTAINS(out, "Metric #0\nDescriptor:\n     -> Name: queue\n     -> Description: \n"
                      "     -> Unit: 1\n     -> DataType: Gauge\nNumberDataPoints #0\n"
                      "Data point attributes:\n     -> q: Str(a)\n"
                      "StartTimestamp: 1970-01-01 00:00:00 +0000 UTC\n"
                      "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC\nValue: 123\n");
  CHECK_CONTAINS(out, "Metric #1\nDescriptor:\n     -> Name: bytes\n     -> Description: \n"
                      "     -> Unit: By\n     -> DataType: Sum\n     -> IsMonotonic: true\n"
                      "     -> AggregationTemporality: Cumulative\nNumberDataPoints #0\n");
  CHECK_CONTAINS(out, "Value: 1.500000\n");
  free(out);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);
  otc_metrics_reset();
}

TEST(debug_detailed_rich) {
  char msg[512];
  struct otc_cfg_node *root;
  void *d = make(&otc_exporter_debug, "debug", "verbosity: detailed\nuse_internal_logger: false\n",
                 &root, msg);
  CHECK(d != NULL);
  if (!d)
    return;
  int rc;
  char *out = capture(STDOUT_FILENO, d, rich_trace_batch(), &rc);
  CHECK_EQ_INT(rc, 0);
  CHECK_CONTAINS(out, "Resource SchemaURL: https://opentelemetry.io/schemas/1.4.0\n");
  CHECK_CONTAINS(out, "    Kind           : Consumer\n    TraceState     : ot=th:0\n");
  CHECK_CONTAINS(out, "    DroppedLinksCount: 3\n");
  CHECK_CONTAINS(out, "     -> map: Map({\"alpha\":[1,true,\"x\\\"y\"],\"zeta\":1})\n");
  CHECK_CONTAINS(out, "     -> d1: Double(1.5)\n");
  CHECK_CONTAINS(out, "     -> d2: Double(1e-7)\n");
  CHECK_CONTAINS(out, "     -> d3: Double(1e+21)\n");
  CHECK_CONTAINS(out, "     -> d4: Double(123456.789)\n");
  CHECK_CONTAINS(out, "     -> raw: Bytes(YWJjZA==)\n");
  CHECK_CONTAINS(out, "     -> list: Slice([1,true,\"x\\\"y\"])\n");
  CHECK_CONTAINS(out, "Events:\nSpanEvent #0\n     -> Name: retry\n"
                      "     -> Timestamp: 1970-01-01 00:00:01 +0000 UTC\n"
                      "     -> DroppedAttributesCount: 0\n     -> Attributes::\n"
                      "          -> map: Map(");
  CHECK_CONTAINS(out, "Links:\nSpanLink #0\n     -> Trace ID: 0102030405060708090a0b0c0d0e0f10\n"
                      "     -> ID: 2122232425262728\n     -> TraceState: k=v\n"
                      "     -> DroppedAttributesCount: 0\n");
  free(out);

  out = capture(STDOUT_FILENO, d, rich_metric_batch(), &rc);
  CHECK_EQ_INT(rc, 0);
  CHECK_CONTAINS(out, "     -> DataType: Histogram\n     -> AggregationTemporality: Delta\n"
                      "HistogramDataPoints #0\n");
  CHECK_CONTAINS(out, "Count: 1\nSum: 15.000000\nMin: 15.000000\nExplicitBounds #0: 1.000000\n"
                      "Buckets #0, Count: 0\nBuckets #1, Count: 1\nExemplars:\nExemplar #0\n"
                      "     -> Trace ID: 0102030405060708090a0b0c0d0e0f10\n     -> Span ID: \n");
  CHECK_CONTAINS(out, "     -> Value: 15.000000\n");
  /* Scale 1: bucket i is (2^(i/2), 2^((i+1)/2)]. */
  CHECK_CONTAINS(out, "Count: 5\nBucket [-1.414214, -1.000000), Count: 1\n"
                      "Bucket [-1.000000, -0.707107), Count: 1\nBucket [0, 0], Count: 1\n"
                      "Bucket (1.414214, 2.000000], Count: 1\n"
                      "Bucket (2.000000, 2.828427], Count: 1\n");
  CHECK_CONTAINS(out, "SummaryDataPoints #0\n");
  CHECK_CONTAINS(out, "QuantileValue #0: Quantile 0.010000, Value 15.000000\n");
  free(out);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);

  /* Normal verbosity over the same data. */
  d = make(&otc_exporter_debug, "debug", "verbosity: normal\nuse_internal_logger: false\n", &root,
           msg);
  out = capture(STDOUT_FILENO, d, rich_metric_batch(), &rc);
  CHECK_CONTAINS(out, "\nhist{} count=1 sum=15 le1=0 1\n");
  CHECK_CONTAINS(out, "\nsumm{} count=1 sum=15.000000 q0.01=15\n");
  free(out);
  out = capture(STDOUT_FILENO, d, rich_trace_batch(), &rc);
  CHECK_CONTAINS(out, "\nrich 0102030405060708090a0b0c0d0e0f10 1112131415161718 map={");
  free(out);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);
  otc_metrics_reset();
}

TEST(debug_sampling) {
  char msg[512];
  struct otc_cfg_node *root;
  void *d = make(&otc_exporter_debug, "debug", "sampling_initial: 2\nsampling_thereafter: 3\n",
                 &root, msg);
  CHECK(d != NULL);
  if (!d)
    return;
  /* Start just after a second boundary so that all five batches fall in one window. */
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  time_t sec = now.tv_sec;
  while (now.tv_sec == sec)
    clock_gettime(CLOCK_MONOTONIC, &now);
  int logged = 0, rc;
  for (int i = 0; i < 5; i++) {
    char *out = capture(STDERR_FILENO, d, log_batch(), &rc);
    CHECK_EQ_INT(rc, 0);
    logged += strstr(out, "Logs {") != NULL;
    free(out);
  }
  CHECK_EQ_INT(logged, 3); /* batches 1, 2 and 5 */
  /* Sampled out still means delivered. */
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "exporter=\"debug\""), 5);
  otc_exporter_debug.destroy(d);
  otc_cfg_free(root);
  otc_metrics_reset();
}

TEST(debug_config_errors) {
  char msg[512];
  struct otc_cfg_node *root;
  CHECK(make(&otc_exporter_debug, "debug", "verbosity: loud\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "exp.yaml:1:");
  CHECK_CONTAINS(msg, "loud");
  otc_cfg_free(root);
  CHECK(make(&otc_exporter_debug, "debug", "verbosityy: basic\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "verbosityy");
  otc_cfg_free(root);
  otc_exporter_debug.destroy(NULL);
}

/* --- file --- */

TEST(file_json_lines) {
  otc_metrics_reset();
  char path[] = "/tmp/otc_test_file_XXXXXX";
  int fd = mkstemp(path);
  CHECK(write(fd, "old content\n", 12) == 12); /* truncated at start: append is false */
  close(fd);
  char yaml[256], msg[512];
  snprintf(yaml, sizeof yaml, "path: %s\n", path);
  struct otc_cfg_node *root;
  void *f = make(&otc_exporter_file, "file/out", yaml, &root, msg);
  CHECK(f != NULL);
  if (!f) {
    fprintf(stderr, "%s\n", msg);
    return;
  }
  CHECK_EQ_INT(otc_exporter_file.start(f), 0);
  CHECK_EQ_INT(otc_exporter_file.consume(f, trace_batch()), 0);
  CHECK_EQ_INT(otc_exporter_file.consume(f, log_batch()), 0);
  CHECK_EQ_INT(otc_exporter_file.consume(f, metric_batch()), 0);
  CHECK_EQ_INT(otc_exporter_file.shutdown(f), 0);
  CHECK_EQ_INT(otc_exporter_file.shutdown(f), 0);
  /* After shutdown nothing is written. */
  CHECK_EQ_INT(otc_exporter_file.consume(f, log_batch()), OTC_ERR_SHUTDOWN);

  char *text = read_file(path, NULL);
  CHECK(text != NULL);
  char *save = NULL, *lines[4] = {0};
  int n = 0;
  for (char *l = strtok_r(text, "\n", &save); l && n < 4; l = strtok_r(NULL, "\n", &save))
    lines[n++] = l;
  CHECK_EQ_INT(n, 3);
  json_error_t jerr;
  json_t *t = n > 0 ? json_loads(lines[0], 0, &jerr) : NULL;
  CHECK(t != NULL);
  json_t *spans = json_object_get(
      json_array_get(
          json_object_get(json_array_get(json_object_get(t, "resourceSpans"), 0), "scopeSpans"), 0),
      "spans");
  CHECK_EQ_INT(json_array_size(spans), 2);
  CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(spans, 0), "name")), "op-a");
  CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(spans, 0), "traceId")),
               "0102030405060708090a0b0c0d0e0f10");
  json_decref(t);
  json_t *l = n > 1 ? json_loads(lines[1], 0, &jerr) : NULL;
  CHECK(l != NULL);
  json_t *recs = json_object_get(
      json_array_get(
          json_object_get(json_array_get(json_object_get(l, "resourceLogs"), 0), "scopeLogs"), 0),
      "logRecords");
  CHECK_EQ_INT(json_array_size(recs), 1);
  json_decref(l);
  json_t *m = n > 2 ? json_loads(lines[2], 0, &jerr) : NULL;
  CHECK(m != NULL && json_object_get(m, "resourceMetrics") != NULL);
  json_decref(m);
  free(text);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "exporter=\"file/out\""), 2);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "exporter=\"file/out\""), 1);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_log_records", "exporter=\"file/out\""), 1);
  otc_exporter_file.destroy(f);
  otc_cfg_free(root);
  unlink(path);
  otc_metrics_reset();
}

TEST(file_proto_framing) {
  char path[] = "/tmp/otc_test_file_XXXXXX";
  close(mkstemp(path));
  char yaml[256], msg[512];
  snprintf(yaml, sizeof yaml, "path: %s\nformat: proto\nappend: true\n", path);
  struct otc_cfg_node *root;
  void *f = make(&otc_exporter_file, "file", yaml, &root, msg);
  CHECK(f != NULL);
  if (!f)
    return;
  struct otc_batch *b1 = trace_batch(), *b2 = log_batch();
  size_t want_len = 8 + b1->len + b2->len;
  uint8_t *want = malloc(want_len);
  size_t off = 0;
  struct otc_batch *bs[] = {b1, b2};
  for (int i = 0; i < 2; i++) {
    uint32_t n = (uint32_t)bs[i]->len;
    want[off++] = (uint8_t)(n >> 24);
    want[off++] = (uint8_t)(n >> 16);
    want[off++] = (uint8_t)(n >> 8);
    want[off++] = (uint8_t)n;
    memcpy(want + off, bs[i]->data, bs[i]->len);
    off += bs[i]->len;
  }
  CHECK_EQ_INT(otc_exporter_file.start(f), 0);
  CHECK_EQ_INT(otc_exporter_file.consume(f, b1), 0);
  CHECK_EQ_INT(otc_exporter_file.consume(f, b2), 0);
  otc_exporter_file.destroy(f); /* shuts down */
  otc_cfg_free(root);
  size_t got_len = 0;
  char *got = read_file(path, &got_len);
  CHECK_EQ_INT(got_len, want_len);
  CHECK(got && memcmp(got, want, want_len) == 0);
  free(got);
  free(want);
  unlink(path);
  otc_metrics_reset();
}

TEST(file_config_errors) {
  char msg[512];
  struct otc_cfg_node *root;
  CHECK(make(&otc_exporter_file, "file", "format: json\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "path must be non-empty");
  otc_cfg_free(root);
  CHECK(make(&otc_exporter_file, "file", "path: /tmp/x\nformat: xml\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "exp.yaml:2:");
  CHECK_CONTAINS(msg, "xml");
  otc_cfg_free(root);
  /* A directory that does not exist fails at start, not at create. */
  void *f = make(&otc_exporter_file, "file", "path: /nonexistent-dir/x.json\n", &root, msg);
  CHECK(f != NULL);
  CHECK_EQ_INT(otc_exporter_file.start(f), OTC_ERR_IO);
  otc_exporter_file.destroy(f);
  otc_cfg_free(root);
  otc_exporter_file.destroy(NULL);
  otc_metrics_reset();
}

/* --- nop --- */

TEST(nop_counts) {
  otc_metrics_reset();
  char msg[512];
  struct otc_cfg_node *root;
  void *n = make(&otc_exporter_nop, "nop", "", &root, msg);
  CHECK(n != NULL);
  if (!n)
    return;
  CHECK_EQ_INT(otc_exporter_nop.consume(n, trace_batch()), 0);
  CHECK_EQ_INT(otc_exporter_nop.consume(n, trace_batch()), 0);
  CHECK_EQ_INT(otc_exporter_nop.consume(n, metric_batch()), 0);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_spans", "exporter=\"nop\""), 4);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_metric_points", "exporter=\"nop\""), 3);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "exporter=\"nop\""), 0);
  otc_exporter_nop.destroy(n);
  otc_cfg_free(root);
  CHECK(make(&otc_exporter_nop, "nop", "anything: 1\n", &root, msg) == NULL);
  CHECK_CONTAINS(msg, "anything");
  otc_cfg_free(root);
  otc_metrics_reset();
}

int main(void) {
  RUN(debug_basic);
  RUN(debug_normal);
  RUN(debug_detailed);
  RUN(debug_detailed_rich);
  RUN(debug_sampling);
  RUN(debug_config_errors);
  RUN(file_json_lines);
  RUN(file_proto_framing);
  RUN(file_config_errors);
  RUN(nop_counts);
  return TEST_REPORT();
}
