/* OTLP v1 protobuf encoding of spans, logs and metrics with the protobuf-c generated code. Every
 * message of a request is allocated in one arena and freed with it once packed. */
#include "otel_internal.h"

#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceRequest;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsRequest;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsRequest;

#define NEW(a, type) ((type *)todo_tel__arena_alloc((a), sizeof(type)))
#define NEW_ARRAY(a, type, n) ((type *)todo_tel__arena_alloc((a), ((n) + 1) * sizeof(type)))

/* Builds the KeyValue array of n owned attributes. Returns NULL when out of memory. */
static KeyValue **make_attrs(struct todo_tel__arena *a, const struct todo_tel__attr *attrs,
                             size_t n) {
  KeyValue **out = NEW_ARRAY(a, KeyValue *, n);
  if (!out) {
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    KeyValue *kv = NEW(a, KeyValue);
    AnyValue *v = NEW(a, AnyValue);
    if (!kv || !v) {
      return NULL;
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = attrs[i].key;
    kv->value = v;
    switch (attrs[i].type) {
    case TODO_ATTR_STRING:
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
      v->string_value = attrs[i].v.s;
      break;
    case TODO_ATTR_INT:
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      v->int_value = attrs[i].v.i;
      break;
    case TODO_ATTR_DOUBLE:
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
      v->double_value = attrs[i].v.d;
      break;
    case TODO_ATTR_BOOL:
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
      v->bool_value = attrs[i].v.b;
      break;
    }
    out[i] = kv;
  }
  return out;
}

static Resource *make_resource(struct todo_tel__arena *a, const struct todo_tel__resource *res) {
  Resource *r = NEW(a, Resource);
  if (!r) {
    return NULL;
  }
  opentelemetry__proto__resource__v1__resource__init(r);
  r->attributes = make_attrs(a, res->attrs, res->n_attrs);
  r->n_attributes = res->n_attrs;
  return r->attributes ? r : NULL;
}

static Scope *make_scope(struct todo_tel__arena *a) {
  Scope *s = NEW(a, Scope);
  if (!s) {
    return NULL;
  }
  opentelemetry__proto__common__v1__instrumentation_scope__init(s);
  s->name = TODO_TEL_SCOPE_NAME;
  s->version = TODO_TEL_SDK_VERSION;
  return s;
}

/* Packs msg into a malloc'd buffer. Returns 0 or -1 when out of memory. */
static int pack(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    return -1;
  }
  *out_len = protobuf_c_message_pack(msg, buf);
  *out = buf;
  return 0;
}

static ProtobufCBinaryData bytes(uint8_t *data, size_t len) {
  ProtobufCBinaryData b = {.len = len, .data = data};
  return b;
}

int todo_tel__encode_spans(const struct todo_tel__resource *res, struct todo_span *const *spans,
                           size_t n, uint8_t **out, size_t *out_len) {
  struct todo_tel__arena a = {0};
  int rc = -1;
  TraceRequest req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ResourceSpans *rs_list[1] = {&rs};
  ScopeSpans *ss_list[1] = {&ss};
  req.n_resource_spans = 1;
  req.resource_spans = rs_list;
  rs.n_scope_spans = 1;
  rs.scope_spans = ss_list;
  if (!(rs.resource = make_resource(&a, res)) || !(ss.scope = make_scope(&a)) ||
      !(ss.spans = NEW_ARRAY(&a, Span *, n))) {
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) {
    struct todo_span *src = spans[i];
    Span *s = NEW(&a, Span);
    Status *st = NEW(&a, Status);
    if (!s || !st) {
      goto cleanup;
    }
    opentelemetry__proto__trace__v1__span__init(s);
    opentelemetry__proto__trace__v1__status__init(st);
    s->trace_id = bytes(src->ctx.trace_id, 16);
    s->span_id = bytes(src->ctx.span_id, 8);
    if (src->has_parent) {
      s->parent_span_id = bytes(src->parent_span_id, 8);
    }
    s->trace_state = src->ctx.trace_state;
    /* Bits 8 and 9 of flags say whether the parent is known and remote (OTLP 1.x). */
    s->flags = src->ctx.flags | 0x100u | (src->has_parent ? 0x200u : 0u);
    s->name = src->name;
    s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)src->kind;
    s->start_time_unix_nano = src->start_ns;
    s->end_time_unix_nano = src->end_ns;
    if (!(s->attributes = make_attrs(&a, src->attrs, src->n_attrs))) {
      goto cleanup;
    }
    s->n_attributes = src->n_attrs;
    s->dropped_attributes_count = src->dropped_attrs;
    st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)src->status;
    if (src->status_message) {
      st->message = src->status_message;
    }
    s->status = st;
    ss.spans[i] = s;
  }
  ss.n_spans = n;
  rc = pack(&req.base, out, out_len);
cleanup:
  todo_tel__arena_free(&a);
  return rc;
}

static const char *severity_text(enum todo_severity s) {
  switch (s) {
  case TODO_SEV_DEBUG:
    return "DEBUG";
  case TODO_SEV_INFO:
    return "INFO";
  case TODO_SEV_WARN:
    return "WARN";
  case TODO_SEV_ERROR:
    return "ERROR";
  case TODO_SEV_FATAL:
    return "FATAL";
  }
  return "";
}

int todo_tel__encode_logs(const struct todo_tel__resource *res, struct todo_tel__log *const *logs,
                          size_t n, uint8_t **out, size_t *out_len) {
  struct todo_tel__arena a = {0};
  int rc = -1;
  LogsRequest req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
  ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
  ResourceLogs *rl_list[1] = {&rl};
  ScopeLogs *sl_list[1] = {&sl};
  req.n_resource_logs = 1;
  req.resource_logs = rl_list;
  rl.n_scope_logs = 1;
  rl.scope_logs = sl_list;
  if (!(rl.resource = make_resource(&a, res)) || !(sl.scope = make_scope(&a)) ||
      !(sl.log_records = NEW_ARRAY(&a, LogRecord *, n))) {
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) {
    struct todo_tel__log *src = logs[i];
    LogRecord *r = NEW(&a, LogRecord);
    AnyValue *body = NEW(&a, AnyValue);
    if (!r || !body) {
      goto cleanup;
    }
    opentelemetry__proto__logs__v1__log_record__init(r);
    opentelemetry__proto__common__v1__any_value__init(body);
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value = src->body;
    r->time_unix_nano = src->time_ns;
    r->observed_time_unix_nano = src->observed_ns;
    r->severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)src->severity;
    r->severity_text = (char *)severity_text(src->severity);
    r->body = body;
    if (src->has_ctx) {
      r->trace_id = bytes(src->trace_id, 16);
      r->span_id = bytes(src->span_id, 8);
      r->flags = src->flags;
    }
    if (!(r->attributes = make_attrs(&a, src->attrs, src->n_attrs))) {
      goto cleanup;
    }
    r->n_attributes = src->n_attrs;
    r->dropped_attributes_count = src->dropped_attrs;
    sl.log_records[i] = r;
  }
  sl.n_log_records = n;
  rc = pack(&req.base, out, out_len);
cleanup:
  todo_tel__arena_free(&a);
  return rc;
}

/* Builds one Metric from a collected instrument. Returns NULL when out of memory. */
static Metric *make_metric(struct todo_tel__arena *a, const struct todo_tel__snapshot *snap,
                           const struct todo_tel__metric *src) {
  Metric *m = NEW(a, Metric);
  if (!m) {
    return NULL;
  }
  opentelemetry__proto__metrics__v1__metric__init(m);
  m->name = (char *)src->name;
  m->unit = (char *)src->unit;
  m->description = (char *)src->description;
  if (src->kind == TODO_TEL_HISTOGRAM) {
    Histogram *h = NEW(a, Histogram);
    HistogramDataPoint **pts = NEW_ARRAY(a, HistogramDataPoint *, src->n_points);
    if (!h || !pts) {
      return NULL;
    }
    opentelemetry__proto__metrics__v1__histogram__init(h);
    h->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    for (size_t i = 0; i < src->n_points; i++) {
      const struct todo_tel__point *p = &src->points[i];
      HistogramDataPoint *dp = NEW(a, HistogramDataPoint);
      if (!dp) {
        return NULL;
      }
      opentelemetry__proto__metrics__v1__histogram_data_point__init(dp);
      dp->start_time_unix_nano = snap->start_ns;
      dp->time_unix_nano = snap->time_ns;
      dp->count = p->count;
      dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
      dp->sum = p->sum;
      if (p->count > 0) {
        dp->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
        dp->min = p->min;
        dp->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
        dp->max = p->max;
      }
      dp->n_bucket_counts = src->n_bounds + 1;
      dp->bucket_counts = p->buckets;
      dp->n_explicit_bounds = src->n_bounds;
      dp->explicit_bounds = (double *)src->bounds;
      if (!(dp->attributes = make_attrs(a, p->attrs, p->n_attrs))) {
        return NULL;
      }
      dp->n_attributes = p->n_attrs;
      pts[i] = dp;
    }
    h->data_points = pts;
    h->n_data_points = src->n_points;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = h;
    return m;
  }
  NumberDataPoint **pts = NEW_ARRAY(a, NumberDataPoint *, src->n_points);
  if (!pts) {
    return NULL;
  }
  bool gauge = src->kind == TODO_TEL_OBS_GAUGE;
  bool is_int = src->kind == TODO_TEL_COUNTER || src->kind == TODO_TEL_UPDOWN;
  for (size_t i = 0; i < src->n_points; i++) {
    const struct todo_tel__point *p = &src->points[i];
    NumberDataPoint *dp = NEW(a, NumberDataPoint);
    if (!dp) {
      return NULL;
    }
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    /* A gauge's points have no meaningful start; cumulative sums start with the meter. */
    dp->start_time_unix_nano = gauge ? 0 : snap->start_ns;
    dp->time_unix_nano = snap->time_ns;
    if (is_int) {
      dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
      dp->as_int = (int64_t)p->value;
    } else {
      dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
      dp->as_double = p->value;
    }
    if (!(dp->attributes = make_attrs(a, p->attrs, p->n_attrs))) {
      return NULL;
    }
    dp->n_attributes = p->n_attrs;
    pts[i] = dp;
  }
  if (gauge) {
    Gauge *g = NEW(a, Gauge);
    if (!g) {
      return NULL;
    }
    opentelemetry__proto__metrics__v1__gauge__init(g);
    g->data_points = pts;
    g->n_data_points = src->n_points;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = g;
    return m;
  }
  Sum *s = NEW(a, Sum);
  if (!s) {
    return NULL;
  }
  opentelemetry__proto__metrics__v1__sum__init(s);
  s->data_points = pts;
  s->n_data_points = src->n_points;
  s->aggregation_temporality =
      OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
  s->is_monotonic = src->kind == TODO_TEL_COUNTER || src->kind == TODO_TEL_OBS_COUNTER;
  m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
  m->sum = s;
  return m;
}

int todo_tel__encode_metrics(const struct todo_tel__resource *res,
                             const struct todo_tel__snapshot *snap, uint8_t **out,
                             size_t *out_len) {
  struct todo_tel__arena a = {0};
  int rc = -1;
  MetricsRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  ResourceMetrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
  ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
  ResourceMetrics *rm_list[1] = {&rm};
  ScopeMetrics *sm_list[1] = {&sm};
  req.n_resource_metrics = 1;
  req.resource_metrics = rm_list;
  rm.n_scope_metrics = 1;
  rm.scope_metrics = sm_list;
  if (!(rm.resource = make_resource(&a, res)) || !(sm.scope = make_scope(&a)) ||
      !(sm.metrics = NEW_ARRAY(&a, Metric *, snap->n_metrics))) {
    goto cleanup;
  }
  for (size_t i = 0; i < snap->n_metrics; i++) {
    /* An instrument without points (an observable whose source is down) is left out: an empty
     * metric carries nothing and some backends reject it. */
    if (snap->metrics[i].n_points == 0) {
      continue;
    }
    Metric *m = make_metric(&a, snap, &snap->metrics[i]);
    if (!m) {
      goto cleanup;
    }
    sm.metrics[sm.n_metrics++] = m;
  }
  rc = pack(&req.base, out, out_len);
cleanup:
  todo_tel__arena_free(&a);
  return rc;
}
