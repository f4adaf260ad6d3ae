/* Tests of the OTLP wire validator, splitter and filter (core/otlp_wire.c). Requests are built
 * with protobuf-c and checked back with it: counts against the unpacked structure, split pieces
 * unpacked and flattened into (resource, scope, item) strings whose concatenation must equal the
 * original's. Hand-encoded bytes cover what protobuf-c would never write (wrong wire types,
 * unpacked repeated fields, deep nesting). A mutation loop checks that no input makes the code read
 * out of bounds (run it under ASan). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errors.h"
#include "core/otlp_wire.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "test.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyV;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrV;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KVList;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event SpanEvent;
typedef Opentelemetry__Proto__Trace__V1__Span__Link SpanLink;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRec;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Hist;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ExpHist;
typedef Opentelemetry__Proto__Metrics__V1__Summary Summary;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumDP;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets Buckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SumDP;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile Quantile;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar Exemplar;

/* ---- an arena for the protobuf-c structures the builders make ---- */

static void **arena;
static size_t arena_n, arena_cap;

static void *A(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (arena_n == arena_cap) {
    arena_cap = arena_cap ? arena_cap * 2 : 256;
    arena = realloc(arena, arena_cap * sizeof *arena);
  }
  arena[arena_n++] = p;
  return p;
}

static void arena_free(void) {
  for (size_t i = 0; i < arena_n; i++)
    free(arena[i]);
  free(arena);
  arena = NULL;
  arena_n = arena_cap = 0;
}

__attribute__((format(printf, 1, 2))) static char *S(const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  char *s = A(strlen(tmp) + 1);
  strcpy(s, tmp);
  return s;
}

#define NEW(T, init)                                                                               \
  ({                                                                                               \
    T *m_ = A(sizeof(T));                                                                          \
    init(m_);                                                                                      \
    m_;                                                                                            \
  })
#define ARR(T, n) ((T **)A(sizeof(T *) * (n)))

static ProtobufCBinaryData id_bytes(size_t len, unsigned seed) {
  ProtobufCBinaryData b = {len, A(len)};
  for (size_t i = 0; i < len; i++)
    b.data[i] = (uint8_t)(seed * 31 + i + 1);
  return b;
}

static AnyV *any_str(const char *v) {
  AnyV *a = NEW(AnyV, opentelemetry__proto__common__v1__any_value__init);
  a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  a->string_value = (char *)v;
  return a;
}

static KV *kv(const char *k, AnyV *v) {
  KV *x = NEW(KV, opentelemetry__proto__common__v1__key_value__init);
  x->key = (char *)k;
  x->value = v;
  return x;
}

/* An array value nesting `depth` arrays around a string (depth 0: the string itself). */
static AnyV *any_nested(int depth) {
  AnyV *v = any_str("leaf");
  for (int i = 0; i < depth; i++) {
    ArrV *arr = NEW(ArrV, opentelemetry__proto__common__v1__array_value__init);
    arr->n_values = 2;
    arr->values = ARR(AnyV, 2);
    arr->values[0] = v;
    arr->values[1] = any_str("x");
    AnyV *outer = NEW(AnyV, opentelemetry__proto__common__v1__any_value__init);
    outer->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    outer->array_value = arr;
    v = outer;
  }
  return v;
}

static AnyV *any_kvlist(void) {
  KVList *l = NEW(KVList, opentelemetry__proto__common__v1__key_value_list__init);
  l->n_values = 2;
  l->values = ARR(KV, 2);
  l->values[0] = kv("a", any_str("1"));
  l->values[1] = kv("b", any_nested(2));
  AnyV *v = NEW(AnyV, opentelemetry__proto__common__v1__any_value__init);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
  v->kvlist_value = l;
  return v;
}

static Resource *resource(int r) {
  Resource *res = NEW(Resource, opentelemetry__proto__resource__v1__resource__init);
  res->n_attributes = 2;
  res->attributes = ARR(KV, 2);
  res->attributes[0] = kv("service.name", any_str(S("res%d", r)));
  res->attributes[1] = kv("host", any_kvlist());
  res->dropped_attributes_count = (uint32_t)r;
  return res;
}

static Scope *scope(int r, int s) {
  Scope *sc = NEW(Scope, opentelemetry__proto__common__v1__instrumentation_scope__init);
  sc->name = S("scope%d.%d", r, s);
  sc->version = "1.2.3";
  sc->n_attributes = 1;
  sc->attributes = ARR(KV, 1);
  sc->attributes[0] = kv("scope.attr", any_str("v"));
  return sc;
}

/* Item counts per (resource, scope): some zero, to have empty scopes. */
static int count_at(int r, int s, int seed) {
  return (r * 7 + s * 3 + seed) % 6;
}

/* ---- traces ---- */

static Span *make_span(unsigned idx, bool invalid) {
  Span *sp = NEW(Span, opentelemetry__proto__trace__v1__span__init);
  sp->trace_id = id_bytes(invalid ? 15 : 16, idx);
  sp->span_id = id_bytes(8, idx + 1000);
  sp->name = S("span%u", idx);
  sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
  sp->start_time_unix_nano = 1000 + idx;
  sp->end_time_unix_nano = 2000 + idx;
  sp->flags = 0x301;
  sp->n_attributes = 2;
  sp->attributes = ARR(KV, 2);
  sp->attributes[0] = kv("http.method", any_str("GET"));
  sp->attributes[1] = kv("nested", any_nested((int)(idx % 4)));
  if (idx % 2 == 0) {
    SpanEvent *ev = NEW(SpanEvent, opentelemetry__proto__trace__v1__span__event__init);
    ev->name = "event";
    ev->time_unix_nano = 1500;
    ev->n_attributes = 1;
    ev->attributes = ARR(KV, 1);
    ev->attributes[0] = kv("e", any_str("x"));
    sp->n_events = 1;
    sp->events = ARR(SpanEvent, 1);
    sp->events[0] = ev;
  }
  if (idx % 3 == 1) {
    SpanLink *ln = NEW(SpanLink, opentelemetry__proto__trace__v1__span__link__init);
    ln->trace_id = id_bytes(16, idx + 7);
    ln->span_id = id_bytes(8, idx + 8);
    ln->flags = 1;
    sp->n_links = 1;
    sp->links = ARR(SpanLink, 1);
    sp->links[0] = ln;
  }
  Status *st = NEW(Status, opentelemetry__proto__trace__v1__status__init);
  st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
  st->message = "boom";
  sp->status = st;
  return sp;
}

struct built {
  uint8_t *buf;
  size_t len;
  size_t resources, scopes, items, metrics, invalid;
};

/* invalid_every: every Nth span gets a 15-byte trace id (0: none). */
static struct built build_traces(int nres, int nscope, int seed, unsigned invalid_every) {
  struct built b = {0};
  TraceReq *req =
      NEW(TraceReq, opentelemetry__proto__collector__trace__v1__export_trace_service_request__init);
  req->n_resource_spans = (size_t)nres;
  req->resource_spans = ARR(ResSpans, nres);
  unsigned idx = 0;
  for (int r = 0; r < nres; r++) {
    ResSpans *rs = NEW(ResSpans, opentelemetry__proto__trace__v1__resource_spans__init);
    rs->resource = resource(r);
    rs->schema_url = S("https://schema/%d", r);
    /* The last resource has no scopes at all. */
    int ns = r == nres - 1 && nres > 2 ? 0 : nscope;
    rs->n_scope_spans = (size_t)ns;
    rs->scope_spans = ARR(ScopeSpans, ns + 1);
    for (int s = 0; s < ns; s++) {
      ScopeSpans *ss = NEW(ScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init);
      ss->scope = scope(r, s);
      ss->schema_url = S("scope-schema-%d", s);
      int n = count_at(r, s, seed);
      ss->n_spans = (size_t)n;
      ss->spans = ARR(Span, n + 1);
      for (int i = 0; i < n; i++) {
        bool inv = invalid_every && idx % invalid_every == invalid_every - 1;
        ss->spans[i] = make_span(idx, inv);
        idx++;
        b.invalid += inv;
      }
      b.items += (size_t)n;
      rs->scope_spans[s] = ss;
      b.scopes++;
    }
    req->resource_spans[r] = rs;
    b.resources++;
  }
  b.len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      req);
  b.buf = malloc(b.len ? b.len : 1);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, b.buf);
  return b;
}

/* ---- logs ---- */

static struct built build_logs(int nres, int nscope, int seed, unsigned invalid_every) {
  struct built b = {0};
  LogsReq *req =
      NEW(LogsReq, opentelemetry__proto__collector__logs__v1__export_logs_service_request__init);
  req->n_resource_logs = (size_t)nres;
  req->resource_logs = ARR(ResLogs, nres);
  unsigned idx = 0;
  for (int r = 0; r < nres; r++) {
    ResLogs *rl = NEW(ResLogs, opentelemetry__proto__logs__v1__resource_logs__init);
    rl->resource = resource(r);
    rl->schema_url = S("https://schema/%d", r);
    rl->n_scope_logs = (size_t)nscope;
    rl->scope_logs = ARR(ScopeLogs, nscope);
    for (int s = 0; s < nscope; s++) {
      ScopeLogs *sl = NEW(ScopeLogs, opentelemetry__proto__logs__v1__scope_logs__init);
      sl->scope = scope(r, s);
      int n = count_at(r, s, seed);
      sl->n_log_records = (size_t)n;
      sl->log_records = ARR(LogRec, n + 1);
      for (int i = 0; i < n; i++, idx++) {
        LogRec *lr = NEW(LogRec, opentelemetry__proto__logs__v1__log_record__init);
        lr->time_unix_nano = 100 + idx;
        lr->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
        lr->severity_text = "INFO";
        lr->body = idx % 3 == 2 ? any_kvlist() : any_str(S("log%u", idx));
        lr->n_attributes = 1;
        lr->attributes = ARR(KV, 1);
        lr->attributes[0] = kv("idx", any_str(S("%u", idx)));
        bool inv = invalid_every && idx % invalid_every == invalid_every - 1;
        /* Ids are optional on logs: every other record has none. */
        if (idx % 2 == 0 || inv) {
          lr->trace_id = id_bytes(16, idx);
          lr->span_id = id_bytes(inv ? 5 : 8, idx);
        }
        b.invalid += inv;
        sl->log_records[i] = lr;
      }
      b.items += (size_t)n;
      rl->scope_logs[s] = sl;
      b.scopes++;
    }
    req->resource_logs[r] = rl;
    b.resources++;
  }
  b.len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(req);
  b.buf = malloc(b.len ? b.len : 1);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(req, b.buf);
  return b;
}

/* ---- metrics: every scope holds one metric of each of the five kinds ---- */

static KV **point_attrs(unsigned t) {
  KV **a = ARR(KV, 1);
  a[0] = kv("point", any_str(S("p%u", t)));
  return a;
}

static Exemplar **exemplars(unsigned t) {
  Exemplar *e = NEW(Exemplar, opentelemetry__proto__metrics__v1__exemplar__init);
  e->time_unix_nano = t;
  e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
  e->as_double = 1.5;
  e->trace_id = id_bytes(16, t);
  e->span_id = id_bytes(8, t);
  e->n_filtered_attributes = 1;
  e->filtered_attributes = ARR(KV, 1);
  e->filtered_attributes[0] = kv("f", any_str("x"));
  Exemplar **a = ARR(Exemplar, 1);
  a[0] = e;
  return a;
}

static Metric *make_metric(int kind, int npoints, unsigned *t) {
  Metric *m = NEW(Metric, opentelemetry__proto__metrics__v1__metric__init);
  m->name = S("metric.kind%d", kind);
  m->description = S("description %d", kind);
  m->unit = "ms";
  m->n_metadata = 1;
  m->metadata = ARR(KV, 1);
  m->metadata[0] = kv("meta", any_str("m"));
  switch (kind) {
  case 0:
  case 1: {
    NumDP **pts = ARR(NumDP, npoints + 1);
    for (int i = 0; i < npoints; i++) {
      NumDP *p = NEW(NumDP, opentelemetry__proto__metrics__v1__number_data_point__init);
      p->time_unix_nano = (*t)++;
      p->n_attributes = 1;
      p->attributes = point_attrs((unsigned)p->time_unix_nano);
      p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
      p->as_int = -5;
      p->n_exemplars = 1;
      p->exemplars = exemplars((unsigned)p->time_unix_nano);
      pts[i] = p;
    }
    if (kind == 0) {
      Gauge *g = NEW(Gauge, opentelemetry__proto__metrics__v1__gauge__init);
      g->n_data_points = (size_t)npoints;
      g->data_points = pts;
      m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
      m->gauge = g;
    } else {
      Sum *s = NEW(Sum, opentelemetry__proto__metrics__v1__sum__init);
      s->n_data_points = (size_t)npoints;
      s->data_points = pts;
      s->aggregation_temporality =
          OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
      s->is_monotonic = 1;
      m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
      m->sum = s;
    }
    break;
  }
  case 2: {
    Hist *h = NEW(Hist, opentelemetry__proto__metrics__v1__histogram__init);
    h->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    h->n_data_points = (size_t)npoints;
    h->data_points = ARR(HistDP, npoints + 1);
    for (int i = 0; i < npoints; i++) {
      HistDP *p = NEW(HistDP, opentelemetry__proto__metrics__v1__histogram_data_point__init);
      p->time_unix_nano = (*t)++;
      p->count = 6;
      p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
      p->sum = 12.5;
      p->n_bucket_counts = 3;
      p->bucket_counts = A(3 * sizeof(uint64_t));
      p->bucket_counts[0] = 1, p->bucket_counts[1] = 2, p->bucket_counts[2] = 3;
      p->n_explicit_bounds = 2;
      p->explicit_bounds = A(2 * sizeof(double));
      p->explicit_bounds[0] = 1.0, p->explicit_bounds[1] = 5.0;
      p->n_exemplars = 1;
      p->exemplars = exemplars((unsigned)p->time_unix_nano);
      p->n_attributes = 1;
      p->attributes = point_attrs((unsigned)p->time_unix_nano);
      h->data_points[i] = p;
    }
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = h;
    break;
  }
  case 3: {
    ExpHist *h = NEW(ExpHist, opentelemetry__proto__metrics__v1__exponential_histogram__init);
    h->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    h->n_data_points = (size_t)npoints;
    h->data_points = ARR(ExpDP, npoints + 1);
    for (int i = 0; i < npoints; i++) {
      ExpDP *p =
          NEW(ExpDP, opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init);
      p->time_unix_nano = (*t)++;
      p->count = 4;
      p->scale = -2;
      p->zero_count = 1;
      p->zero_threshold = 1e-9;
      Buckets *pos =
          NEW(Buckets,
              opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init);
      pos->offset = -3;
      pos->n_bucket_counts = 2;
      pos->bucket_counts = A(2 * sizeof(uint64_t));
      pos->bucket_counts[0] = 300, pos->bucket_counts[1] = 1;
      p->positive = pos;
      Buckets *neg =
          NEW(Buckets,
              opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init);
      neg->offset = 2;
      p->negative = neg;
      p->n_attributes = 1;
      p->attributes = point_attrs((unsigned)p->time_unix_nano);
      h->data_points[i] = p;
    }
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = h;
    break;
  }
  default: {
    Summary *s = NEW(Summary, opentelemetry__proto__metrics__v1__summary__init);
    s->n_data_points = (size_t)npoints;
    s->data_points = ARR(SumDP, npoints + 1);
    for (int i = 0; i < npoints; i++) {
      SumDP *p = NEW(SumDP, opentelemetry__proto__metrics__v1__summary_data_point__init);
      p->time_unix_nano = (*t)++;
      p->count = 10;
      p->sum = 99;
      p->n_quantile_values = 2;
      p->quantile_values = ARR(Quantile, 2);
      for (int q = 0; q < 2; q++) {
        Quantile *qv =
            NEW(Quantile,
                opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init);
        qv->quantile = q ? 0.99 : 0.5;
        qv->value = q ? 9.0 : 5.0;
        p->quantile_values[q] = qv;
      }
      p->n_attributes = 1;
      p->attributes = point_attrs((unsigned)p->time_unix_nano);
      s->data_points[i] = p;
    }
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = s;
    break;
  }
  }
  return m;
}

static struct built build_metrics(int nres, int nscope, int seed) {
  struct built b = {0};
  MetricsReq *req =
      NEW(MetricsReq,
          opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init);
  req->n_resource_metrics = (size_t)nres;
  req->resource_metrics = ARR(ResMetrics, nres);
  unsigned t = 1;
  for (int r = 0; r < nres; r++) {
    ResMetrics *rm = NEW(ResMetrics, opentelemetry__proto__metrics__v1__resource_metrics__init);
    rm->resource = resource(r);
    rm->schema_url = S("https://schema/%d", r);
    rm->n_scope_metrics = (size_t)nscope;
    rm->scope_metrics = ARR(ScopeMetrics, nscope);
    for (int s = 0; s < nscope; s++) {
      ScopeMetrics *sm = NEW(ScopeMetrics, opentelemetry__proto__metrics__v1__scope_metrics__init);
      sm->scope = scope(r, s);
      sm->schema_url = "scope-schema";
      sm->n_metrics = 5;
      sm->metrics = ARR(Metric, 5);
      for (int k = 0; k < 5; k++) {
        int n = count_at(r + k, s, seed);
        sm->metrics[k] = make_metric(k, n, &t);
        b.items += (size_t)n;
        b.metrics++;
      }
      rm->scope_metrics[s] = sm;
      b.scopes++;
    }
    req->resource_metrics[r] = rm;
    b.resources++;
  }
  b.len =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
          req);
  b.buf = malloc(b.len ? b.len : 1);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(req, b.buf);
  return b;
}

/* ---- flattening an unpacked request into one string per item ---- */

struct strlist {
  char **v;
  size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static void sl_add(struct strlist *l, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = strdup(tmp);
}

static void sl_free(struct strlist *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static bool sl_equal(const struct strlist *a, const struct strlist *b) {
  if (a->n != b->n)
    return false;
  for (size_t i = 0; i < a->n; i++) {
    if (strcmp(a->v[i], b->v[i]) != 0) {
      fprintf(stderr, "item %zu differs: %s vs %s\n", i, a->v[i], b->v[i]);
      return false;
    }
  }
  return true;
}

/* The resource as a string: its attribute count, first attribute value, dropped count. */
static const char *res_str(const Resource *r, char *buf, size_t n) {
  if (!r) {
    snprintf(buf, n, "-");
  } else {
    const char *first = r->n_attributes && r->attributes[0]->value &&
                                r->attributes[0]->value->value_case ==
                                    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                            ? r->attributes[0]->value->string_value
                            : "?";
    snprintf(buf, n, "%zu:%s:%u", r->n_attributes, first, r->dropped_attributes_count);
  }
  return buf;
}

static const char *scope_str(const Scope *s, char *buf, size_t n) {
  if (!s)
    snprintf(buf, n, "-");
  else
    snprintf(buf, n, "%s@%s:%zu", s->name, s->version, s->n_attributes);
  return buf;
}

static const char *body_str(const AnyV *v) {
  if (!v)
    return "-";
  if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
    return v->string_value;
  if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE)
    return "kvlist";
  return "other";
}

/* Unpacks buf and appends one line per item; counts what it saw into *st. Returns false when
 * protobuf-c refuses the bytes. */
static bool flatten(enum otc_signal s, const uint8_t *buf, size_t len, struct strlist *out,
                    struct otc_wire_stats *st) {
  char rb[128], sb[128];
  struct otc_wire_stats local = {0};
  if (!st)
    st = &local;
  memset(st, 0, sizeof *st);
  if (s == OTC_SIGNAL_TRACES) {
    TraceReq *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         buf);
    if (!req)
      return false;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
      ResSpans *rs = req->resource_spans[r];
      st->resources++;
      for (size_t k = 0; k < rs->n_scope_spans; k++) {
        ScopeSpans *ss = rs->scope_spans[k];
        st->scopes++;
        for (size_t i = 0; i < ss->n_spans; i++) {
          Span *sp = ss->spans[i];
          st->items++;
          if (sp->trace_id.len != 16 || sp->span_id.len != 8)
            st->invalid_items++;
          if (out)
            sl_add(out, "%s|%s|%s|%s|%s|%s|%zu|%zu", res_str(rs->resource, rb, sizeof rb),
                   rs->schema_url, scope_str(ss->scope, sb, sizeof sb), ss->schema_url, sp->name,
                   sp->status ? sp->status->message : "-", sp->n_events, sp->n_links);
        }
      }
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
  } else if (s == OTC_SIGNAL_LOGS) {
    LogsReq *req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
        NULL, len, buf);
    if (!req)
      return false;
    for (size_t r = 0; r < req->n_resource_logs; r++) {
      ResLogs *rl = req->resource_logs[r];
      st->resources++;
      for (size_t k = 0; k < rl->n_scope_logs; k++) {
        ScopeLogs *sl = rl->scope_logs[k];
        st->scopes++;
        for (size_t i = 0; i < sl->n_log_records; i++) {
          LogRec *lr = sl->log_records[i];
          st->items++;
          if ((lr->trace_id.len && lr->trace_id.len != 16) ||
              (lr->span_id.len && lr->span_id.len != 8))
            st->invalid_items++;
          if (out)
            sl_add(out, "%s|%s|%s|%s|%" PRIu64 "|%s", res_str(rl->resource, rb, sizeof rb),
                   rl->schema_url, scope_str(sl->scope, sb, sizeof sb), body_str(lr->body),
                   lr->time_unix_nano, lr->severity_text);
        }
      }
    }
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req,
                                                                                          NULL);
  } else {
    MetricsReq *req =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, len, buf);
    if (!req)
      return false;
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
      ResMetrics *rm = req->resource_metrics[r];
      st->resources++;
      for (size_t k = 0; k < rm->n_scope_metrics; k++) {
        ScopeMetrics *sm = rm->scope_metrics[k];
        st->scopes++;
        for (size_t i = 0; i < sm->n_metrics; i++) {
          Metric *m = sm->metrics[i];
          st->metrics++;
          char mb[256];
          snprintf(mb, sizeof mb, "%s|%s|%s|%s|%s|%s|%s|%zu", res_str(rm->resource, rb, sizeof rb),
                   rm->schema_url, scope_str(sm->scope, sb, sizeof sb), sm->schema_url, m->name,
                   m->description, m->unit, m->n_metadata);
          switch (m->data_case) {
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
            for (size_t p = 0; p < m->gauge->n_data_points; p++, st->items++)
              if (out)
                sl_add(out, "%s|gauge|%" PRIu64, mb, m->gauge->data_points[p]->time_unix_nano);
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
            for (size_t p = 0; p < m->sum->n_data_points; p++, st->items++)
              if (out)
                sl_add(out, "%s|sum/%d/%d|%" PRIu64, mb, (int)m->sum->aggregation_temporality,
                       (int)m->sum->is_monotonic, m->sum->data_points[p]->time_unix_nano);
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
            for (size_t p = 0; p < m->histogram->n_data_points; p++, st->items++)
              if (out)
                sl_add(out, "%s|hist/%d|%" PRIu64 "|%zu", mb,
                       (int)m->histogram->aggregation_temporality,
                       m->histogram->data_points[p]->time_unix_nano,
                       m->histogram->data_points[p]->n_bucket_counts);
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
            for (size_t p = 0; p < m->exponential_histogram->n_data_points; p++, st->items++)
              if (out)
                sl_add(out, "%s|exphist/%d|%" PRIu64, mb,
                       (int)m->exponential_histogram->aggregation_temporality,
                       m->exponential_histogram->data_points[p]->time_unix_nano);
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
            for (size_t p = 0; p < m->summary->n_data_points; p++, st->items++)
              if (out)
                sl_add(out, "%s|summary|%" PRIu64, mb, m->summary->data_points[p]->time_unix_nano);
            break;
          default:
            break;
          }
        }
      }
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        req, NULL);
  }
  return true;
}

/* ---- hand encoding, written back to front so that each wrap knows its content's length ---- */

struct rev {
  uint8_t *buf;
  size_t cap, pos; /* content is buf[pos, cap) */
};

static void rev_init(struct rev *r, size_t cap) {
  r->buf = malloc(cap);
  r->cap = cap;
  r->pos = cap;
}

static void rev_bytes(struct rev *r, const void *d, size_t n) {
  r->pos -= n;
  memcpy(r->buf + r->pos, d, n);
}

static void rev_varint(struct rev *r, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  rev_bytes(r, tmp, n);
}

/* Wraps everything written so far as field `num` (length-delimited). */
static void rev_wrap(struct rev *r, uint32_t num) {
  rev_varint(r, r->cap - r->pos);
  rev_varint(r, (uint64_t)num << 3 | 2);
}

/* Prepends field `num` holding bytes. */
static void rev_field_bytes(struct rev *r, uint32_t num, const void *d, size_t n) {
  rev_bytes(r, d, n);
  rev_varint(r, n);
  rev_varint(r, (uint64_t)num << 3 | 2);
}

static size_t rev_len(const struct rev *r) {
  return r->cap - r->pos;
}

static const uint8_t *rev_data(const struct rev *r) {
  return r->buf + r->pos;
}

/* Wraps the current content (the inside of a span) into a whole traces request with a valid
 * trace and span id. */
static void rev_span_request(struct rev *r) {
  uint8_t tid[16] = {1}, sid[8] = {2};
  rev_field_bytes(r, 2, sid, 8);
  rev_field_bytes(r, 1, tid, 16);
  rev_wrap(r, 2); /* ScopeSpans.spans */
  rev_wrap(r, 2); /* ResourceSpans.scope_spans */
  rev_wrap(r, 1); /* request.resource_spans */
}

/* A traces request whose one span has an attribute nesting `depth` array_values (or kvlist_values
 * when kvlist) around a string. */
static struct rev nested_request(int depth, bool kvlist) {
  struct rev r;
  rev_init(&r, 64 + (size_t)depth * 16);
  rev_field_bytes(&r, 1, "leaf", 4); /* AnyValue.string_value */
  for (int i = 0; i < depth; i++) {
    if (kvlist) {
      rev_wrap(&r, 2);                /* KeyValue.value */
      rev_field_bytes(&r, 1, "k", 1); /* KeyValue.key */
      rev_wrap(&r, 1);                /* KeyValueList.values */
      rev_wrap(&r, 6);                /* AnyValue.kvlist_value */
    } else {
      rev_wrap(&r, 1); /* ArrayValue.values */
      rev_wrap(&r, 5); /* AnyValue.array_value */
    }
  }
  rev_wrap(&r, 2);                   /* KeyValue.value */
  rev_field_bytes(&r, 1, "attr", 4); /* KeyValue.key */
  rev_wrap(&r, 9);                   /* Span.attributes */
  rev_span_request(&r);
  return r;
}

/* ---- tests ---- */

TEST(counts_traces) {
  struct built b = build_traces(4, 3, 0, 0);
  struct otc_wire_stats st;
  char err[128];
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, b.buf, b.len, 64, &st, err, sizeof err), 0);
  CHECK_EQ_INT(st.resources, b.resources);
  CHECK_EQ_INT(st.scopes, b.scopes);
  CHECK_EQ_INT(st.items, b.items);
  CHECK_EQ_INT(st.invalid_items, 0);
  CHECK_EQ_INT(st.metrics, 0);
  CHECK(b.items > 10);
  free(b.buf);

  b = build_traces(3, 2, 1, 4);
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, b.buf, b.len, 64, &st, err, sizeof err), 0);
  CHECK_EQ_INT(st.items, b.items);
  CHECK(b.invalid > 0);
  CHECK_EQ_INT(st.invalid_items, b.invalid);
  free(b.buf);
  arena_free();
}

TEST(counts_logs) {
  struct built b = build_logs(3, 3, 2, 5);
  struct otc_wire_stats st;
  char err[128];
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_LOGS, b.buf, b.len, 64, &st, err, sizeof err), 0);
  CHECK_EQ_INT(st.resources, 3);
  CHECK_EQ_INT(st.scopes, 9);
  CHECK_EQ_INT(st.items, b.items);
  CHECK(b.invalid > 0);
  CHECK_EQ_INT(st.invalid_items, b.invalid);
  /* The same bytes as traces are not valid spans (wrong wire types for log fields). */
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, b.buf, b.len, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  free(b.buf);
  arena_free();
}

TEST(counts_metrics) {
  struct built b = build_metrics(3, 2, 1);
  struct otc_wire_stats st, ref;
  char err[128];
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_METRICS, b.buf, b.len, 64, &st, err, sizeof err), 0);
  CHECK_EQ_INT(st.resources, 3);
  CHECK_EQ_INT(st.scopes, 6);
  CHECK_EQ_INT(st.metrics, 30);
  CHECK_EQ_INT(st.items, b.items);
  CHECK(flatten(OTC_SIGNAL_METRICS, b.buf, b.len, NULL, &ref));
  CHECK_EQ_INT(ref.items, b.items);
  free(b.buf);
  arena_free();
}

TEST(empty_request) {
  struct otc_wire_stats st;
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_LOGS, (const uint8_t *)"", 0, 64, &st, NULL, 0), 0);
  CHECK_EQ_INT(st.items, 0);
  /* An empty ResourceSpans and an empty ScopeSpans inside another. */
  const uint8_t two[] = {0x0a, 0x00, 0x0a, 0x02, 0x12, 0x00};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, two, sizeof two, 64, &st, NULL, 0), 0);
  CHECK_EQ_INT(st.resources, 2);
  CHECK_EQ_INT(st.scopes, 1);
  CHECK_EQ_INT(st.items, 0);
}

TEST(garbage_refused) {
  char err[128];
  struct otc_wire_stats st;
  const uint8_t ff[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, ff, sizeof ff, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "longer than 5 bytes");
  const char *text = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, (const uint8_t *)text, strlen(text), 64, &st, err,
                             sizeof err),
               OTC_ERR_INVALID);
  /* Field number 0. */
  const uint8_t zero[] = {0x02, 0x00};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_LOGS, zero, sizeof zero, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "invalid field number at offset 0");
  /* A length past the end. */
  const uint8_t trunc[] = {0x0a, 0x64, 0x0a, 0x00, 0x12};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_METRICS, trunc, sizeof trunc, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "truncated length at offset 1");
  /* A varint value of 11 bytes in an unknown field. */
  const uint8_t longv[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_METRICS, longv, sizeof longv, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "varint longer than 10 bytes at offset 1");
  /* A fixed64 cut short. */
  const uint8_t fixed[] = {0x09, 1, 2, 3};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_METRICS, fixed, sizeof fixed, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "truncated field at offset 1");
  /* Unknown fields of every valid wire type are skipped. */
  const uint8_t unknown[] = {0x10, 0x05, 0x19, 1,    2,    3, 4, 5, 6, 7,
                             8,    0x22, 0x01, 0x00, 0x2d, 1, 2, 3, 4};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, unknown, sizeof unknown, 64, &st, err, sizeof err),
               0);
  /* A group (wire type 3) is refused even in an unknown field. */
  const uint8_t group[] = {0x1b, 0x1c};
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, group, sizeof group, 64, &st, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "wire type 3 for field 3");
}

TEST(truncations) {
  struct built b = build_traces(2, 2, 3, 0);
  /* Cutting the last byte always breaks the last field. */
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, b.buf, b.len - 1, 64, NULL, NULL, 0),
               OTC_ERR_INVALID);
  /* Every prefix either is refused or is a request protobuf-c reads with the same counts. */
  for (size_t n = 0; n < b.len; n++) {
    uint8_t *cut = malloc(n ? n : 1);
    memcpy(cut, b.buf, n);
    struct otc_wire_stats st, ref;
    int rc = otc_wire_scan(OTC_SIGNAL_TRACES, cut, n, 64, &st, NULL, 0);
    CHECK(rc == 0 || rc == OTC_ERR_INVALID);
    if (rc == 0) {
      CHECK(flatten(OTC_SIGNAL_TRACES, cut, n, NULL, &ref));
      CHECK_EQ_INT(st.items, ref.items);
    }
    free(cut);
  }
  free(b.buf);
  arena_free();
}

TEST(wrong_wire_types) {
  char err[160];
  struct rev r;
  /* Span field 2 (span_id) as a group start. */
  rev_init(&r, 256);
  const uint8_t grp[] = {0x13, 0x14};
  rev_bytes(&r, grp, sizeof grp);
  rev_wrap(&r, 2);
  rev_wrap(&r, 2);
  rev_wrap(&r, 1);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&r), rev_len(&r), 64, NULL, err, sizeof err),
      OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "wire type 3 for field 2 of Span");
  free(r.buf);

  /* Span.name (field 5, a string) as a varint. */
  rev_init(&r, 256);
  const uint8_t name_varint[] = {0x28, 0x07};
  rev_bytes(&r, name_varint, sizeof name_varint);
  rev_span_request(&r);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&r), rev_len(&r), 64, NULL, err, sizeof err),
      OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "wire type 0 for field 5 of Span");
  free(r.buf);

  /* Span.start_time_unix_nano (fixed64) as a fixed32. */
  rev_init(&r, 256);
  const uint8_t start32[] = {0x3d, 1, 2, 3, 4};
  rev_bytes(&r, start32, sizeof start32);
  rev_span_request(&r);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&r), rev_len(&r), 64, NULL, err, sizeof err),
      OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "wire type 5 for field 7 of Span");
  free(r.buf);

  /* ResourceSpans.resource (a message) as a varint. */
  rev_init(&r, 256);
  const uint8_t res_varint[] = {0x08, 0x01};
  rev_bytes(&r, res_varint, sizeof res_varint);
  rev_wrap(&r, 1);
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_LOGS, rev_data(&r), rev_len(&r), 64, NULL, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "wire type 0 for field 1 of ResourceLogs");
  free(r.buf);

  /* A malformed message inside a string-typed field is fine (it is a string); inside a message
   * field it is refused: KeyValue.value holding a truncated AnyValue. */
  rev_init(&r, 256);
  const uint8_t bad_any[] = {0x0a, 0x05, 'a'};
  rev_bytes(&r, bad_any, sizeof bad_any);
  rev_wrap(&r, 2);
  rev_wrap(&r, 9);
  rev_span_request(&r);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&r), rev_len(&r), 64, NULL, err, sizeof err),
      OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "truncated length");
  CHECK_CONTAINS(err, "AnyValue");
  free(r.buf);
}

/* A histogram point with bucket_counts and explicit_bounds unpacked (one field per element), and
 * an exponential histogram's buckets unpacked: protobuf parsers accept both forms. */
TEST(unpacked_repeated) {
  struct rev r;
  rev_init(&r, 512);
  /* ExponentialHistogramDataPoint.positive = Buckets{offset=1, bucket_counts=3,4 unpacked}. */
  const uint8_t buckets[] = {0x08, 0x02, 0x10, 0x03, 0x10, 0x04};
  rev_bytes(&r, buckets, sizeof buckets);
  rev_wrap(&r, 8);
  rev_wrap(&r, 1);  /* ExponentialHistogram.data_points */
  rev_wrap(&r, 10); /* Metric.exponential_histogram */
  rev_field_bytes(&r, 1, "e", 1);
  size_t exp_len = rev_len(&r);
  rev_wrap(&r, 2); /* ScopeMetrics.metrics */
  (void)exp_len;
  /* A second metric: a histogram with unpacked fixed64 / double. */
  struct rev h;
  rev_init(&h, 512);
  uint8_t pt[64];
  size_t n = 0;
  for (int i = 0; i < 3; i++) {
    pt[n++] = 0x31; /* field 6, I64 */
    uint64_t v = (uint64_t)i + 1;
    memcpy(pt + n, &v, 8);
    n += 8;
  }
  for (int i = 0; i < 2; i++) {
    pt[n++] = 0x39; /* field 7, I64 */
    double d = i + 0.5;
    memcpy(pt + n, &d, 8);
    n += 8;
  }
  rev_bytes(&h, pt, n);
  rev_wrap(&h, 1); /* Histogram.data_points */
  rev_wrap(&h, 9); /* Metric.histogram */
  rev_field_bytes(&h, 1, "h", 1);
  rev_wrap(&h, 2); /* ScopeMetrics.metrics */
  rev_bytes(&r, rev_data(&h), rev_len(&h));
  rev_wrap(&r, 2); /* ResourceMetrics.scope_metrics */
  rev_wrap(&r, 1);
  struct otc_wire_stats st;
  char err[128];
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_METRICS, rev_data(&r), rev_len(&r), 64, &st, err, sizeof err), 0);
  CHECK_EQ_INT(st.metrics, 2);
  CHECK_EQ_INT(st.items, 2);
  MetricsReq *req =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
          NULL, rev_len(&r), rev_data(&r));
  CHECK(req != NULL);
  if (req) {
    Metric *m0 = req->resource_metrics[0]->scope_metrics[0]->metrics[0];
    Metric *m1 = req->resource_metrics[0]->scope_metrics[0]->metrics[1];
    CHECK_EQ_INT(m0->histogram->data_points[0]->n_bucket_counts, 3);
    CHECK_EQ_INT(m0->histogram->data_points[0]->bucket_counts[2], 3);
    CHECK_EQ_INT(m0->histogram->data_points[0]->n_explicit_bounds, 2);
    CHECK_EQ_INT(m1->exponential_histogram->data_points[0]->positive->n_bucket_counts, 2);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        req, NULL);
  }
  free(h.buf);
  free(r.buf);

  /* A packed fixed64 field whose length is not a multiple of 8 is refused. */
  rev_init(&r, 256);
  const uint8_t bad_packed[] = {0x32, 0x07, 1, 2, 3, 4, 5, 6, 7};
  rev_bytes(&r, bad_packed, sizeof bad_packed);
  rev_wrap(&r, 1);
  rev_wrap(&r, 9);
  rev_wrap(&r, 2);
  rev_wrap(&r, 2);
  rev_wrap(&r, 1);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_METRICS, rev_data(&r), rev_len(&r), 64, &st, err, sizeof err),
      OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "packed field 6 of HistogramDataPoint");
  free(r.buf);

  /* A packed varint field ending inside a varint is refused. */
  rev_init(&r, 256);
  const uint8_t bad_varints[] = {0x12, 0x02, 0x01, 0x80};
  rev_bytes(&r, bad_varints, sizeof bad_varints);
  rev_wrap(&r, 9); /* negative buckets */
  rev_wrap(&r, 1);
  rev_wrap(&r, 10);
  rev_wrap(&r, 2);
  rev_wrap(&r, 2);
  rev_wrap(&r, 1);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_METRICS, rev_data(&r), rev_len(&r), 64, &st, err, sizeof err),
      OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "packed field 2 of ExponentialHistogramDataPoint.Buckets");
  free(r.buf);
}

TEST(depth_limit) {
  char err[128];
  for (int kv = 0; kv < 2; kv++) {
    struct rev ok = nested_request(64, kv);
    CHECK_EQ_INT(
        otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&ok), rev_len(&ok), 64, NULL, err, sizeof err),
        0);
    /* protobuf-c reads the accepted request back (its recursion is fine at this depth). */
    CHECK(flatten(OTC_SIGNAL_TRACES, rev_data(&ok), rev_len(&ok), NULL, NULL));
    free(ok.buf);
    struct rev deep = nested_request(65, kv);
    CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&deep), rev_len(&deep), 64, NULL, err,
                               sizeof err),
                 OTC_ERR_INVALID);
    CHECK_CONTAINS(err, "nesting deeper than 64");
    /* A smaller limit. */
    CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&deep), rev_len(&deep), 65, NULL, err,
                               sizeof err),
                 0);
    free(deep.buf);
  }
  struct rev big = nested_request(10000, false);
  CHECK(rev_len(&big) > 40000);
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&big), rev_len(&big),
                             OTC_WIRE_DEFAULT_MAX_DEPTH, NULL, err, sizeof err),
               OTC_ERR_INVALID);
  CHECK_CONTAINS(err, "nesting deeper than 64");
  /* Even a caller asking for no limit gets a bounded recursion. */
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&big), rev_len(&big), 1 << 30, NULL, err,
                             sizeof err),
               OTC_ERR_INVALID);
  free(big.buf);
  /* Zero: no array or kvlist at all, plain values still fine. */
  struct rev flat = nested_request(0, false);
  CHECK_EQ_INT(
      otc_wire_scan(OTC_SIGNAL_TRACES, rev_data(&flat), rev_len(&flat), 0, NULL, err, sizeof err),
      0);
  free(flat.buf);
}

/* ---- split ---- */

struct collect {
  enum otc_signal s;
  size_t max;
  size_t pieces;
  size_t total;
  size_t short_pieces;
  bool last_was_short;
  bool bad;
  int stop_after; /* return non-zero after this many pieces (0: never) */
  struct strlist flat;
};

static int collect_emit(void *arg, const uint8_t *piece, size_t len, size_t items) {
  struct collect *c = arg;
  struct otc_wire_stats st;
  char err[128];
  /* Copy to an exact-size buffer so that ASan sees any read past the piece. */
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, piece, len);
  if (otc_wire_scan(c->s, copy, len, 64, &st, err, sizeof err) != 0) {
    fprintf(stderr, "piece %zu does not scan: %s\n", c->pieces, err);
    c->bad = true;
  } else if (st.items != items) {
    fprintf(stderr, "piece %zu: %zu items reported, %zu scanned\n", c->pieces, items, st.items);
    c->bad = true;
  }
  struct otc_wire_stats ref;
  if (!flatten(c->s, copy, len, &c->flat, &ref) || ref.items != items) {
    fprintf(stderr, "piece %zu: protobuf-c disagrees\n", c->pieces);
    c->bad = true;
  }
  free(copy);
  if (c->max && items > c->max)
    c->bad = true;
  if (c->last_was_short)
    c->bad = true; /* only the last piece may hold fewer than max */
  if (c->max && items < c->max)
    c->last_was_short = true;
  c->pieces++;
  c->total += items;
  if (c->stop_after && (int)c->pieces >= c->stop_after)
    return 42;
  return 0;
}

static void check_split(enum otc_signal s, const struct built *b, size_t max) {
  struct strlist orig = {0};
  CHECK(flatten(s, b->buf, b->len, &orig, NULL));
  struct collect c = {.s = s, .max = max};
  CHECK_EQ_INT(otc_wire_split(s, b->buf, b->len, max, collect_emit, &c), 0);
  CHECK(!c.bad);
  CHECK_EQ_INT(c.total, b->items);
  if (max == 0 || b->items <= max)
    CHECK_EQ_INT(c.pieces, 1);
  else
    CHECK_EQ_INT(c.pieces, (b->items + max - 1) / max);
  if (!sl_equal(&orig, &c.flat)) {
    fprintf(stderr, "split of %s at %zu changed the items\n", otc_signal_name(s), max);
    CHECK(0);
  }
  sl_free(&orig);
  sl_free(&c.flat);
}

TEST(split_traces) {
  struct built b = build_traces(5, 3, 0, 0);
  CHECK(b.items > 20);
  const size_t maxes[] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 16, 100000};
  for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++)
    check_split(OTC_SIGNAL_TRACES, &b, maxes[i]);
  check_split(OTC_SIGNAL_TRACES, &b, b.items);
  check_split(OTC_SIGNAL_TRACES, &b, b.items - 1);
  free(b.buf);
  arena_free();
}

TEST(split_logs) {
  struct built b = build_logs(4, 4, 1, 0);
  for (size_t max = 1; max <= b.items + 1; max++)
    check_split(OTC_SIGNAL_LOGS, &b, max);
  free(b.buf);
  arena_free();
}

TEST(split_metrics) {
  struct built b = build_metrics(3, 2, 2);
  CHECK(b.items > 30);
  for (size_t max = 1; max <= b.items + 1; max++)
    check_split(OTC_SIGNAL_METRICS, &b, max);
  free(b.buf);
  arena_free();
}

/* A piece's bytes: the unchanged request when nothing needs cutting. */
static int capture_emit(void *arg, const uint8_t *piece, size_t len, size_t items) {
  uint8_t **out = arg;
  *out = malloc(len + 1);
  memcpy(*out, piece, len);
  (void)items;
  return 0;
}

TEST(split_edge_cases) {
  struct built b = build_traces(2, 2, 0, 0);
  uint8_t *copy = NULL;
  CHECK_EQ_INT(otc_wire_split(OTC_SIGNAL_TRACES, b.buf, b.len, 0, capture_emit, &copy), 0);
  CHECK(copy && memcmp(copy, b.buf, b.len) == 0);
  free(copy);
  /* The emit function's non-zero value stops the split. */
  struct collect c = {.s = OTC_SIGNAL_TRACES, .max = 1, .stop_after = 2};
  CHECK_EQ_INT(otc_wire_split(OTC_SIGNAL_TRACES, b.buf, b.len, 1, collect_emit, &c), 42);
  CHECK_EQ_INT(c.pieces, 2);
  sl_free(&c.flat);
  free(b.buf);
  /* No items at all: one emit of the bytes as they are. */
  const uint8_t empty[] = {0x0a, 0x02, 0x12, 0x00, 0x0a, 0x00};
  struct collect e = {.s = OTC_SIGNAL_TRACES, .max = 1};
  CHECK_EQ_INT(otc_wire_split(OTC_SIGNAL_TRACES, empty, sizeof empty, 1, collect_emit, &e), 0);
  CHECK_EQ_INT(e.pieces, 1);
  CHECK_EQ_INT(e.total, 0);
  sl_free(&e.flat);
  /* Invalid bytes are refused, not read past. */
  const uint8_t bad[] = {0x0a, 0x10, 0x12};
  CHECK_EQ_INT(otc_wire_split(OTC_SIGNAL_TRACES, bad, sizeof bad, 1, collect_emit, &e),
               OTC_ERR_INVALID);
  arena_free();
}

/* Appends field num (length-delimited) holding content to dst; returns the bytes written. */
static size_t put_len_field(uint8_t *dst, uint32_t num, const void *content, size_t n) {
  struct rev r;
  rev_init(&r, n + 16);
  rev_bytes(&r, content, n);
  rev_wrap(&r, num);
  size_t total = rev_len(&r);
  memcpy(dst, rev_data(&r), total);
  free(r.buf);
  return total;
}

struct pieces {
  uint8_t *v[16];
  size_t len[16];
  size_t n;
};

static int keep_emit(void *arg, const uint8_t *piece, size_t len, size_t items) {
  struct pieces *p = arg;
  (void)items;
  if (p->n == 16)
    return 1;
  p->v[p->n] = malloc(len);
  memcpy(p->v[p->n], piece, len);
  p->len[p->n++] = len;
  return 0;
}

/* Scope and resource headers that come after the items, and unknown fields at every level, are
 * repeated in every piece. */
TEST(split_repeats_trailing_headers) {
  const uint8_t unknown_scope[] = {0xa0, 0x01, 0x01}; /* field 20, varint 1 */
  const uint8_t unknown_top[] = {0xf8, 0x01, 0x07};   /* field 31, varint 7 */
  const uint8_t resource_msg[] = {0x10, 0x09};        /* Resource{dropped_attributes_count=9} */
  uint8_t scope[256], rs[512], req[1024], span[16];
  size_t ns = 0, nrs = 0, nreq = 0;
  for (int i = 0; i < 4; i++) {
    char name[4];
    snprintf(name, sizeof name, "s%d", i);
    size_t n = put_len_field(span, 5, name, 2);  /* Span.name */
    ns += put_len_field(scope + ns, 2, span, n); /* ScopeSpans.spans */
  }
  memcpy(scope + ns, unknown_scope, sizeof unknown_scope);
  ns += sizeof unknown_scope;
  ns += put_len_field(scope + ns, 3, "late-schema", 11); /* schema_url after the spans */
  nrs += put_len_field(rs + nrs, 2, scope, ns);
  nrs += put_len_field(rs + nrs, 1, resource_msg, sizeof resource_msg); /* resource last */
  nreq += put_len_field(req + nreq, 1, rs, nrs);
  memcpy(req + nreq, unknown_top, sizeof unknown_top);
  nreq += sizeof unknown_top;

  struct otc_wire_stats st;
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_TRACES, req, nreq, 64, &st, NULL, 0), 0);
  CHECK_EQ_INT(st.items, 4);
  struct collect c = {.s = OTC_SIGNAL_TRACES, .max = 1};
  CHECK_EQ_INT(otc_wire_split(OTC_SIGNAL_TRACES, req, nreq, 1, collect_emit, &c), 0);
  CHECK(!c.bad);
  CHECK_EQ_INT(c.pieces, 4);
  CHECK_EQ_INT(c.flat.n, 4);
  for (size_t i = 0; i < c.flat.n; i++) {
    char want[128];
    snprintf(want, sizeof want, "0:?:9||-|late-schema|s%zu|-|0|0", i);
    CHECK_EQ_STR(c.flat.v[i], want);
  }
  sl_free(&c.flat);
  struct pieces p = {0};
  CHECK_EQ_INT(otc_wire_split(OTC_SIGNAL_TRACES, req, nreq, 3, keep_emit, &p), 0);
  CHECK_EQ_INT(p.n, 2);
  for (size_t i = 0; i < p.n; i++) {
    CHECK(memmem(p.v[i], p.len[i], unknown_top, sizeof unknown_top) != NULL);
    CHECK(memmem(p.v[i], p.len[i], unknown_scope, sizeof unknown_scope) != NULL);
    CHECK(memmem(p.v[i], p.len[i], "late-schema", 11) != NULL);
    free(p.v[i]);
  }
}

/* A Metric whose data oneof appears twice with different members keeps the last one only (as
 * every protobuf parser does): its points are what counts, and what a split carries. */
TEST(metric_oneof_last_wins) {
  uint8_t scope[512], metric[128], gauge[32], sum[64], dp[32];
  size_t ns = 0;
  for (int m = 0; m < 2; m++) {
    size_t ng = 0, nsum = 0, nm = 0;
    const uint8_t empty_dp[] = {0x0a, 0x00};
    memcpy(gauge + ng, empty_dp, 2), ng += 2;
    memcpy(gauge + ng, empty_dp, 2), ng += 2;
    dp[0] = 0x19; /* NumberDataPoint.time_unix_nano, fixed64 */
    uint64_t t = 100 + (uint64_t)m;
    memcpy(dp + 1, &t, 8);
    nsum += put_len_field(sum + nsum, 1, dp, 9);
    nm += put_len_field(metric + nm, 1, m ? "m1" : "m0", 2);
    nm += put_len_field(metric + nm, 5, gauge, ng); /* superseded */
    nm += put_len_field(metric + nm, 7, sum, nsum);
    ns += put_len_field(scope + ns, 2, metric, nm);
  }
  uint8_t rm[600], req[700];
  size_t nrm = put_len_field(rm, 2, scope, ns);
  size_t nreq = put_len_field(req, 1, rm, nrm);
  struct otc_wire_stats st, ref;
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_METRICS, req, nreq, 64, &st, NULL, 0), 0);
  CHECK_EQ_INT(st.metrics, 2);
  CHECK_EQ_INT(st.items, 2);
  CHECK(flatten(OTC_SIGNAL_METRICS, req, nreq, NULL, &ref));
  CHECK_EQ_INT(ref.items, 2);
  struct built b = {.buf = req, .len = nreq, .items = 2};
  check_split(OTC_SIGNAL_METRICS, &b, 1);

  /* The same member twice: the last occurrence replaces the first, it does not merge with it
   * (protobuf-c, and otelcol v0.162, which counts 1 data point for this). */
  uint8_t g2[8], g1[4], m2[64], s2[80], r2[96], q2[112];
  const uint8_t two_dps[] = {0x0a, 0x00, 0x0a, 0x00};
  memcpy(g2, two_dps, 4);
  memcpy(g1, two_dps, 2);
  size_t nm2 = put_len_field(m2, 1, "g", 1);
  nm2 += put_len_field(m2 + nm2, 5, g2, 4);
  nm2 += put_len_field(m2 + nm2, 5, g1, 2);
  size_t ns2 = put_len_field(s2, 2, m2, nm2);
  size_t nr2 = put_len_field(r2, 2, s2, ns2);
  size_t nq2 = put_len_field(q2, 1, r2, nr2);
  CHECK_EQ_INT(otc_wire_scan(OTC_SIGNAL_METRICS, q2, nq2, 64, &st, NULL, 0), 0);
  CHECK_EQ_INT(st.items, 1);
  CHECK(flatten(OTC_SIGNAL_METRICS, q2, nq2, NULL, &ref));
  CHECK_EQ_INT(ref.items, 1);
  struct built b2 = {.buf = q2, .len = nq2, .items = 1};
  check_split(OTC_SIGNAL_METRICS, &b2, 1);
}

/* ---- drop_invalid ---- */

static void check_drop(enum otc_signal s, const struct built *b) {
  struct strlist orig = {0}, kept = {0};
  CHECK(flatten(s, b->buf, b->len, &orig, NULL));
  uint8_t *out = malloc(b->len);
  size_t n = otc_wire_drop_invalid(s, b->buf, b->len, out);
  CHECK(n <= b->len);
  struct otc_wire_stats st, before;
  CHECK_EQ_INT(otc_wire_scan(s, b->buf, b->len, 64, &before, NULL, 0), 0);
  CHECK_EQ_INT(otc_wire_scan(s, out, n, 64, &st, NULL, 0), 0);
  CHECK_EQ_INT(st.invalid_items, 0);
  CHECK_EQ_INT(st.items, before.items - before.invalid_items);
  CHECK_EQ_INT(st.resources, before.resources);
  CHECK_EQ_INT(st.scopes, before.scopes);
  CHECK(flatten(s, out, n, &kept, NULL));
  CHECK_EQ_INT(kept.n, orig.n - before.invalid_items);
  free(out);
  sl_free(&orig);
  sl_free(&kept);
}

TEST(drop_invalid) {
  struct built t = build_traces(3, 3, 1, 3);
  CHECK(t.invalid > 0);
  check_drop(OTC_SIGNAL_TRACES, &t);
  /* The surviving spans are exactly the valid ones, in order. */
  uint8_t *out = malloc(t.len);
  size_t n = otc_wire_drop_invalid(OTC_SIGNAL_TRACES, t.buf, t.len, out);
  struct strlist kept = {0};
  CHECK(flatten(OTC_SIGNAL_TRACES, out, n, &kept, NULL));
  for (size_t i = 0; i < kept.n; i++) {
    /* Span indexes 2, 5, 8... were made invalid. */
    const char *name = strstr(kept.v[i], "|span");
    CHECK(name != NULL);
    if (name)
      CHECK(atoi(name + 5) % 3 != 2);
  }
  sl_free(&kept);
  free(out);
  free(t.buf);

  struct built l = build_logs(3, 2, 0, 4);
  CHECK(l.invalid > 0);
  check_drop(OTC_SIGNAL_LOGS, &l);
  free(l.buf);

  /* Nothing invalid: the same bytes. Metrics: always the same bytes. */
  struct built v = build_traces(2, 2, 0, 0);
  out = malloc(v.len);
  CHECK_EQ_INT(otc_wire_drop_invalid(OTC_SIGNAL_TRACES, v.buf, v.len, out), v.len);
  CHECK(memcmp(out, v.buf, v.len) == 0);
  free(out);
  free(v.buf);
  struct built m = build_metrics(1, 1, 0);
  out = malloc(m.len);
  CHECK_EQ_INT(otc_wire_drop_invalid(OTC_SIGNAL_METRICS, m.buf, m.len, out), m.len);
  CHECK(memcmp(out, m.buf, m.len) == 0);
  free(out);
  free(m.buf);
  arena_free();
}

/* ---- mutations ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

static size_t mutate(const uint8_t *src, size_t len, uint8_t *dst, size_t cap) {
  memcpy(dst, src, len);
  size_t n = len;
  int ops = 1 + (int)(rnd() % 3);
  for (int k = 0; k < ops && n > 0; k++) {
    size_t at = rnd() % n;
    switch (rnd() % 7) {
    case 0:
      dst[at] ^= (uint8_t)(1u << (rnd() % 8));
      break;
    case 1:
      dst[at] = (uint8_t)rnd();
      break;
    case 2:
      n = at; /* truncate */
      break;
    case 3: /* delete one byte */
      memmove(dst + at, dst + at + 1, n - at - 1);
      n--;
      break;
    case 4: /* insert one byte */
      if (n < cap) {
        memmove(dst + at + 1, dst + at, n - at);
        dst[at] = (uint8_t)rnd();
        n++;
      }
      break;
    case 5: /* a typical interesting value */
      dst[at] = (const uint8_t[]){0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1b}[rnd() % 7];
      break;
    default: { /* duplicate a chunk */
      size_t len2 = 1 + rnd() % 16;
      if (at + len2 <= n && n + len2 <= cap) {
        memmove(dst + at + len2, dst + at, n - at);
        n += len2;
      }
      break;
    }
    }
  }
  return n;
}

static int count_emit(void *arg, const uint8_t *piece, size_t len, size_t items) {
  size_t *total = arg;
  *total += items;
  struct otc_wire_stats st;
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, piece, len);
  int rc = otc_wire_scan(OTC_SIGNAL_TRACES, copy, len, 64, &st, NULL, 0);
  free(copy);
  (void)rc;
  return 0;
}

struct fuzz_emit {
  enum otc_signal s;
  size_t total;
  bool bad;
};

static int fuzz_emit(void *arg, const uint8_t *piece, size_t len, size_t items) {
  struct fuzz_emit *f = arg;
  f->total += items;
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, piece, len);
  struct otc_wire_stats st;
  if (otc_wire_scan(f->s, copy, len, 64, &st, NULL, 0) != 0 || st.items != items)
    f->bad = true;
  free(copy);
  return 0;
}

TEST(mutations) {
  struct built samples[3] = {build_traces(2, 2, 1, 3), build_metrics(2, 1, 0),
                             build_logs(2, 2, 1, 3)};
  const enum otc_signal sig[3] = {OTC_SIGNAL_TRACES, OTC_SIGNAL_METRICS, OTC_SIGNAL_LOGS};
  size_t accepted = 0, refused = 0, mismatched = 0, unpack_failed = 0, split_bad = 0;
  for (int i = 0; i < 20000; i++) {
    int k = i % 3;
    const struct built *b = &samples[k];
    size_t cap = b->len + 64;
    uint8_t *tmp = malloc(cap);
    size_t n = mutate(b->buf, b->len, tmp, cap);
    /* An exact-size copy, so that any read past the end is caught by ASan. */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, tmp, n);
    free(tmp);
    struct otc_wire_stats st, ref;
    char err[128];
    int rc = otc_wire_scan(sig[k], in, n, 8, &st, err, sizeof err);
    CHECK(rc == 0 || rc == OTC_ERR_INVALID);
    if (rc == 0) {
      accepted++;
      if (!flatten(sig[k], in, n, NULL, &ref)) {
        unpack_failed++;
      } else if (ref.items != st.items || ref.resources != st.resources ||
                 ref.scopes != st.scopes || ref.invalid_items != st.invalid_items) {
        mismatched++;
      }
      struct fuzz_emit fe = {.s = sig[k]};
      if (otc_wire_split(sig[k], in, n, 1 + (size_t)(i % 4), fuzz_emit, &fe) != 0 || fe.bad ||
          fe.total != st.items)
        split_bad++;
      uint8_t *out = malloc(n ? n : 1);
      size_t m = otc_wire_drop_invalid(sig[k], in, n, out);
      struct otc_wire_stats after;
      if (m > n || otc_wire_scan(sig[k], out, m, 8, &after, NULL, 0) != 0 ||
          after.invalid_items != 0 || after.items != st.items - st.invalid_items)
        split_bad++;
      free(out);
    } else {
      refused++;
      CHECK(err[0] != '\0');
      /* Whatever the split and the filter get, they stay in bounds. */
      size_t total = 0;
      (void)otc_wire_split(sig[k], in, n, 2, count_emit, &total);
      uint8_t *out = malloc(n ? n : 1);
      CHECK(otc_wire_drop_invalid(sig[k], in, n, out) <= n);
      free(out);
    }
    free(in);
  }
  fprintf(stderr, "mutations: %zu accepted, %zu refused\n", accepted, refused);
  CHECK(accepted > 100);
  CHECK(refused > 1000);
  CHECK_EQ_INT(unpack_failed, 0);
  CHECK_EQ_INT(mismatched, 0);
  CHECK_EQ_INT(split_bad, 0);
  for (int k = 0; k < 3; k++)
    free(samples[k].buf);
  arena_free();
}

/* A traces request whose spans carry attributes of every value kind and length class: the shapes
 * the fast scanner takes a shortcut on (a short key and one scalar member) and those just beside
 * them (keys and strings of 128 bytes and more, empty values, negative ints, nested values). */
static struct built build_attribute_kinds(void) {
  struct built b = build_traces(1, 1, 3, 0);
  TraceReq *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, b.len, b.buf);
  free(b.buf);
  static char long_key[200], long_str[300];
  memset(long_key, 'k', sizeof long_key - 1);
  memset(long_str, 's', sizeof long_str - 1);
  static KV kvs[10];
  static AnyV vals[10];
  static uint8_t bytes[3] = {1, 2, 3};
  static KV *ptrs[10];
  for (int i = 0; i < 10; i++) {
    opentelemetry__proto__common__v1__key_value__init(&kvs[i]);
    opentelemetry__proto__common__v1__any_value__init(&vals[i]);
    kvs[i].key = i == 7 ? long_key : (char *)"attr";
    kvs[i].value = &vals[i];
    ptrs[i] = &kvs[i];
  }
  vals[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  vals[0].string_value = "v";
  vals[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  vals[1].int_value = -5; /* a ten-byte varint */
  vals[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  vals[2].double_value = 2.5;
  vals[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
  vals[3].bool_value = 1;
  vals[4].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
  vals[4].bytes_value = (ProtobufCBinaryData){sizeof bytes, bytes};
  vals[5].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  vals[5].string_value = long_str;
  /* vals[6] stays empty (no member). */
  vals[7].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  vals[7].int_value = 300;
  vals[8] = *any_nested(2);
  vals[9] = *any_kvlist();
  kvs[6].value = NULL; /* and one KeyValue without a value at all */
  Span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];
  size_t n_orig = sp->n_attributes;
  KV **orig = sp->attributes;
  sp->n_attributes = 10;
  sp->attributes = ptrs;
  b.len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      req);
  b.buf = malloc(b.len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, b.buf);
  sp->n_attributes = n_orig; /* the static attributes are not the unpacked message's to free */
  sp->attributes = orig;
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                          NULL);
  return b;
}

static bool same_stats(const struct otc_wire_stats *a, const struct otc_wire_stats *b) {
  return a->resources == b->resources && a->scopes == b->scopes && a->items == b->items &&
         a->metrics == b->metrics && a->invalid_items == b->invalid_items;
}

/* otc_wire_scan trusts the fast scanner's "valid": it must agree with the reference scanner on
 * every input, valid or not, with the same counts, at several depth limits. */
TEST(fast_scan_matches_reference) {
  struct built samples[4] = {build_traces(2, 2, 1, 3), build_metrics(2, 1, 0),
                             build_logs(2, 2, 1, 3), build_attribute_kinds()};
  const enum otc_signal sig[4] = {OTC_SIGNAL_TRACES, OTC_SIGNAL_METRICS, OTC_SIGNAL_LOGS,
                                  OTC_SIGNAL_TRACES};
  size_t agree_ok = 0, agree_bad = 0, disagree = 0;
  for (int k = 0; k < 4; k++) {
    struct otc_wire_stats f, r;
    CHECK_EQ_INT(otc_wire__scan_fast(sig[k], samples[k].buf, samples[k].len, 64, &f), 0);
    CHECK_EQ_INT(otc_wire__scan_reference(sig[k], samples[k].buf, samples[k].len, 64, &r, NULL, 0),
                 0);
    CHECK(same_stats(&f, &r));
    CHECK_EQ_INT(f.items, samples[k].items);
  }
  for (int i = 0; i < 40000; i++) {
    int k = i % 4;
    const struct built *b = &samples[k];
    size_t cap = b->len + 64;
    uint8_t *tmp = malloc(cap);
    size_t n = mutate(b->buf, b->len, tmp, cap);
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, tmp, n);
    free(tmp);
    int depth = (int)(i % 5); /* 0..4: around the nesting of the samples */
    struct otc_wire_stats f, r;
    int rf = otc_wire__scan_fast(sig[k], in, n, depth, &f);
    int rr = otc_wire__scan_reference(sig[k], in, n, depth, &r, NULL, 0);
    if (rf != rr || (rf == 0 && !same_stats(&f, &r)))
      disagree++;
    else if (rf == 0)
      agree_ok++;
    else
      agree_bad++;
    free(in);
  }
  /* Every byte of the attribute sample set to values that turn lengths, tags and varints into
   * their neighbours, and every byte deleted: each shortcut's boundary gets hit. */
  const struct built *ab = &samples[3];
  uint8_t *in = malloc(ab->len);
  for (size_t at = 0; at < ab->len; at++) {
    const uint8_t orig = ab->buf[at];
    const uint8_t near[] = {(uint8_t)(orig + 1), (uint8_t)(orig - 1), (uint8_t)(orig ^ 0x80)};
    const uint8_t vals[] = {0x00, 0x01, 0x7f,    0x80,    0xff,   0x0a,
                            0x12, 0x21, near[0], near[1], near[2]};
    for (size_t v = 0; v <= sizeof vals; v++) {
      size_t n = ab->len;
      memcpy(in, ab->buf, n);
      if (v < sizeof vals) {
        in[at] = vals[v];
      } else {
        memmove(in + at, in + at + 1, n - at - 1);
        n--;
      }
      struct otc_wire_stats f, r;
      int rf = otc_wire__scan_fast(OTC_SIGNAL_TRACES, in, n, 2, &f);
      int rr = otc_wire__scan_reference(OTC_SIGNAL_TRACES, in, n, 2, &r, NULL, 0);
      if (rf != rr || (rf == 0 && !same_stats(&f, &r)))
        disagree++;
      else if (rf == 0)
        agree_ok++;
      else
        agree_bad++;
    }
  }
  free(in);
  /* Hand-made attribute values: each scalar member followed by a valid extra field, by an
   * invalid one, cut short, or alone; keys short and long. */
  static const uint8_t members[][10] = {
      {0x0a, 0x01, 'x'},                                            /* string_value */
      {0x3a, 0x00},                                                 /* empty bytes_value */
      {0x10, 0x01},                                                 /* bool_value */
      {0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, /* int_value -1 */
      {0x21, 1, 2, 3, 4, 5, 6, 7, 8},                               /* double_value */
  };
  static const size_t member_len[] = {3, 2, 2, 10, 9};
  static const uint8_t tails[][2] = {{0}, {0x10, 0x00}, {0x00, 0x00}, {0x0a, 0x05}, {0x21, 0}};
  static const size_t tail_len[] = {0, 2, 1, 2, 2};
  char key[200];
  memset(key, 'k', sizeof key);
  for (size_t m = 0; m < sizeof member_len / sizeof member_len[0]; m++) {
    for (size_t t = 0; t < sizeof tail_len / sizeof tail_len[0]; t++) {
      for (int cut = 0; cut <= 1; cut++) {
        for (size_t klen = 0; klen <= sizeof key; klen += 100) {
          struct rev r;
          rev_init(&r, 512);
          rev_bytes(&r, tails[t], tail_len[t]);
          rev_bytes(&r, members[m], member_len[m] - (size_t)cut);
          rev_wrap(&r, 2); /* KeyValue.value */
          rev_field_bytes(&r, 1, key, klen);
          rev_wrap(&r, 9); /* Span.attributes */
          rev_span_request(&r);
          struct otc_wire_stats f, rs;
          int rf = otc_wire__scan_fast(OTC_SIGNAL_TRACES, rev_data(&r), rev_len(&r), 64, &f);
          int rr = otc_wire__scan_reference(OTC_SIGNAL_TRACES, rev_data(&r), rev_len(&r), 64, &rs,
                                            NULL, 0);
          if (rf != rr || (rf == 0 && !same_stats(&f, &rs)))
            disagree++;
          else if (rf == 0)
            agree_ok++;
          else
            agree_bad++;
          free(r.buf);
        }
      }
    }
  }
  printf("fast vs reference: %zu valid, %zu invalid, %zu disagreements\n", agree_ok, agree_bad,
         disagree);
  CHECK_EQ_INT(disagree, 0);
  CHECK(agree_ok > 1000 && agree_bad > 1000);
  for (int k = 0; k < 4; k++)
    free(samples[k].buf);
}

/* Random bytes, not mutations of anything valid. */
TEST(random_bytes) {
  for (int i = 0; i < 5000; i++) {
    size_t n = rnd() % 64;
    uint8_t *in = malloc(n ? n : 1);
    for (size_t j = 0; j < n; j++)
      in[j] = (uint8_t)rnd();
    int rc = otc_wire_scan((enum otc_signal)(i % 3), in, n, 64, NULL, NULL, 0);
    CHECK(rc == 0 || rc == OTC_ERR_INVALID);
    free(in);
  }
}

int main(void) {
  RUN(counts_traces);
  RUN(counts_logs);
  RUN(counts_metrics);
  RUN(empty_request);
  RUN(garbage_refused);
  RUN(truncations);
  RUN(wrong_wire_types);
  RUN(unpacked_repeated);
  RUN(depth_limit);
  RUN(split_traces);
  RUN(split_logs);
  RUN(split_metrics);
  RUN(split_edge_cases);
  RUN(split_repeats_trailing_headers);
  RUN(metric_oneof_last_wins);
  RUN(drop_invalid);
  RUN(mutations);
  RUN(fast_scan_matches_reference);
  RUN(random_bytes);
  return TEST_REPORT();
}
