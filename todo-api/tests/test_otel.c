/* The telemetry SDK: trace context, configuration, metric aggregation and Prometheus text, OTLP
 * protobuf encoding (checked by decoding it back), and the bounded queues. */
#include "test.h"

#include "otel_internal.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdlib.h>
#include <unistd.h>

TEST(traceparent_parse) {
  struct todo_span_context c;
  const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  CHECK_EQ_INT(todo_traceparent_parse(tp, "a=b,c=d", &c), 0);
  char out[TODO_TRACEPARENT_LEN + 1];
  todo_traceparent_format(&c, out);
  CHECK_EQ_STR(out, tp);
  CHECK_EQ_STR(c.trace_state, "a=b,c=d");
  CHECK(c.remote);
  CHECK_EQ_INT(c.flags, 1);
  /* Surrounding whitespace is optional whitespace of the header. */
  CHECK_EQ_INT(
      todo_traceparent_parse(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ", NULL, &c),
      0);
  CHECK_EQ_INT(c.flags, 0);
  CHECK_EQ_STR(c.trace_state, "");
  /* A later version may append fields. */
  CHECK_EQ_INT(todo_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",
                                      NULL, &c),
               0);
  const char *bad[] = {
      NULL,
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK_EQ_INT(todo_traceparent_parse(bad[i], NULL, &c), -1);
  }
  /* A tracestate with control characters or too long is dropped, the traceparent kept. */
  CHECK_EQ_INT(todo_traceparent_parse(tp, "a=b\r\nx: y", &c), 0);
  CHECK_EQ_STR(c.trace_state, "");
  char long_state[TODO_TRACESTATE_MAX + 10];
  memset(long_state, 'a', sizeof(long_state) - 1);
  long_state[sizeof(long_state) - 1] = '\0';
  CHECK_EQ_INT(todo_traceparent_parse(tp, long_state, &c), 0);
  CHECK_EQ_STR(c.trace_state, "");
}

TEST(random_ids) {
  uint8_t a[16], b[16];
  todo_tel__random_id(a, 16);
  todo_tel__random_id(b, 16);
  CHECK(memcmp(a, b, 16) != 0);
  uint8_t s[8];
  static const uint8_t zero[8];
  for (int i = 0; i < 1000; i++) {
    todo_tel__random_id(s, 8);
    CHECK(memcmp(s, zero, 8) != 0);
  }
}

TEST(kv_list) {
  struct todo_tel_kv *kv;
  size_t n;
  CHECK_EQ_INT(todo_tel_parse_kv_list(" a = 1 ,b=x%2Cy%3Dz,,bad, c=%zz,d=", &kv, &n), 0);
  CHECK_EQ_INT(n, 4);
  CHECK_EQ_STR(kv[0].key, "a");
  CHECK_EQ_STR(kv[0].value, "1");
  CHECK_EQ_STR(kv[1].key, "b");
  CHECK_EQ_STR(kv[1].value, "x,y=z");
  CHECK_EQ_STR(kv[2].value, "%zz"); /* a malformed escape stays literal */
  CHECK_EQ_STR(kv[3].key, "d");
  CHECK_EQ_STR(kv[3].value, "");
  todo_tel_kv_free(kv, n);
  CHECK_EQ_INT(todo_tel_parse_kv_list(NULL, &kv, &n), 0);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(todo_tel_parse_kv_list("%4", &kv, &n), 0);
  CHECK_EQ_INT(n, 0);
  todo_tel_kv_free(kv, n);
}

TEST(signal_url) {
  char *u = todo_tel_signal_url("http://c:4318", NULL, "v1/traces");
  CHECK_EQ_STR(u, "http://c:4318/v1/traces");
  free(u);
  u = todo_tel_signal_url("http://c:4318/base/", NULL, "v1/logs");
  CHECK_EQ_STR(u, "http://c:4318/base/v1/logs");
  free(u);
  u = todo_tel_signal_url("http://c:4318", "http://x/custom", "v1/metrics");
  CHECK_EQ_STR(u, "http://x/custom");
  free(u);
  u = todo_tel_signal_url(NULL, NULL, "v1/traces");
  CHECK_EQ_STR(u, "http://localhost:4318/v1/traces");
  free(u);
}

TEST(config_from_env) {
  struct todo_tel_config cfg;
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://col:4318", 1);
  setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:9/x", 1);
  setenv("OTEL_METRICS_EXPORTER", "none", 1);
  setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,env=dev", 1);
  setenv("OTEL_METRIC_EXPORT_INTERVAL", "250", 1);
  setenv("OTEL_BSP_SCHEDULE_DELAY", "not a number", 1);
  unsetenv("OTEL_SERVICE_NAME");
  unsetenv("OTEL_SDK_DISABLED");
  CHECK_EQ_INT(todo_tel_config_from_env(&cfg, "dflt"), 0);
  CHECK(!cfg.disabled);
  CHECK_EQ_STR(cfg.service_name, "from-attrs");
  CHECK_EQ_STR(cfg.traces_endpoint, "http://col:4318/v1/traces");
  CHECK_EQ_STR(cfg.logs_endpoint, "http://logs:9/x");
  CHECK(cfg.metrics_endpoint == NULL);
  CHECK_EQ_INT(cfg.metric_interval_ms, 250);
  CHECK_EQ_INT(cfg.bsp_delay_ms, 5000);
  CHECK_EQ_INT(cfg.span_queue_size, 2048);
  CHECK_EQ_INT(cfg.n_resource, 2);
  todo_tel_config_free(&cfg);
  setenv("OTEL_SERVICE_NAME", "svc", 1);
  setenv("OTEL_SDK_DISABLED", "TRUE", 1);
  CHECK_EQ_INT(todo_tel_config_from_env(&cfg, "dflt"), 0);
  CHECK(cfg.disabled);
  CHECK_EQ_STR(cfg.service_name, "svc");
  todo_tel_config_free(&cfg);
  unsetenv("OTEL_SERVICE_NAME");
  unsetenv("OTEL_SDK_DISABLED");
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
  unsetenv("OTEL_METRICS_EXPORTER");
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
  unsetenv("OTEL_METRIC_EXPORT_INTERVAL");
  unsetenv("OTEL_BSP_SCHEDULE_DELAY");
  CHECK_EQ_INT(todo_tel_config_from_env(&cfg, "dflt"), 0);
  CHECK_EQ_STR(cfg.service_name, "dflt");
  todo_tel_config_free(&cfg);
}

static void observe_two(struct todo_observer *obs, void *arg) {
  (void)arg;
  struct todo_attr a = TODO_ATTR_STR("state", "idle");
  todo_observe(obs, 3, &a, 1);
  a.v.s = "used";
  todo_observe(obs, 1, &a, 1);
}

TEST(metrics_and_prometheus) {
  static const double bounds[] = {0.1, 1, 10};
  struct todo_meter *m = todo_meter_create();
  struct todo_instrument *h =
      todo_meter_histogram(m, "http.server.request.duration", "s", "Duration.", bounds, 3);
  struct todo_instrument *c = todo_meter_counter(m, "app.requests", "{request}", "Requests.");
  struct todo_instrument *u = todo_meter_updown_counter(m, "app.active", "{request}", "Active.");
  todo_meter_observable_updown_counter(m, "db.client.connection.count", "{connection}", "",
                                       observe_two, NULL);
  CHECK(todo_meter_histogram(m, "bad", "s", "", (const double[]){2, 1}, 2) == NULL);
  struct todo_attr a1[2] = {TODO_ATTR_STR("route", "/a"), TODO_ATTR_INT("status", 200)};
  struct todo_attr a2[2] = {TODO_ATTR_INT("status", 200), TODO_ATTR_STR("route", "/a")};
  todo_histogram_record(h, 0.1, a1, 2); /* the bound itself: first bucket */
  todo_histogram_record(h, 0.5, a2, 2); /* same set in another order */
  todo_histogram_record(h, 100, a1, 2); /* +Inf */
  todo_counter_add(c, 2, NULL, 0);
  todo_counter_add(c, -5, NULL, 0); /* ignored: monotonic */
  todo_counter_add(u, 1, NULL, 0);
  todo_counter_add(u, -1, NULL, 0);
  char *text = todo_meter_render_prometheus(m);
  CHECK_CONTAINS(text, "# HELP http_server_request_duration_seconds Duration.\n"
                       "# TYPE http_server_request_duration_seconds histogram\n");
  CHECK_CONTAINS(text, "http_server_request_duration_seconds_bucket{route=\"/a\",status=\"200\","
                       "le=\"0.1\"} 1\n");
  CHECK_CONTAINS(text, "http_server_request_duration_seconds_bucket{route=\"/a\",status=\"200\","
                       "le=\"1\"} 2\n");
  CHECK_CONTAINS(text, "http_server_request_duration_seconds_bucket{route=\"/a\",status=\"200\","
                       "le=\"10\"} 2\n");
  CHECK_CONTAINS(text, "le=\"+Inf\"} 3\n");
  CHECK_CONTAINS(text,
                 "http_server_request_duration_seconds_sum{route=\"/a\",status=\"200\"} 100.6\n");
  CHECK_CONTAINS(text,
                 "http_server_request_duration_seconds_count{route=\"/a\",status=\"200\"} 3\n");
  CHECK_CONTAINS(text, "# TYPE app_requests_total counter\napp_requests_total 2\n");
  CHECK_CONTAINS(text, "# TYPE app_active gauge\napp_active 0\n");
  CHECK_CONTAINS(text, "db_client_connection_count{state=\"idle\"} 3\n");
  CHECK_CONTAINS(text, "db_client_connection_count{state=\"used\"} 1\n");
  free(text);
  todo_meter_destroy(m);
}

TEST(metric_cardinality_limit) {
  struct todo_meter *m = todo_meter_create();
  struct todo_instrument *c = todo_meter_counter(m, "c", "", "");
  char v[32];
  for (int i = 0; i < TODO_METRIC_MAX_POINTS + 50; i++) {
    snprintf(v, sizeof(v), "%d", i);
    struct todo_attr a = TODO_ATTR_STR("k", v);
    todo_counter_add(c, 1, &a, 1);
  }
  struct todo_tel__snapshot snap;
  CHECK_EQ_INT(todo_tel__meter_collect(m, &snap), 0);
  CHECK_EQ_INT(snap.n_metrics, 1);
  CHECK_EQ_INT(snap.metrics[0].n_points, TODO_METRIC_MAX_POINTS);
  const struct todo_tel__point *last = &snap.metrics[0].points[TODO_METRIC_MAX_POINTS - 1];
  CHECK_EQ_STR(last->attrs[0].key, "otel.metric.overflow");
  CHECK_EQ_INT((long long)last->value, 51);
  todo_tel__snapshot_free(&snap);
  todo_meter_destroy(m);
}

/* A resource with one attribute, for the encoders. */
static struct todo_tel__attr res_attr = {
    .key = "service.name", .type = TODO_ATTR_STRING, .v.s = "svc"};
static const struct todo_tel__resource resource = {.attrs = &res_attr, .n_attrs = 1};

/* A configuration whose exports go nowhere (port 9 on loopback refuses at once). */
static void dead_config(struct todo_tel_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->service_name = "t";
  cfg->traces_endpoint = "http://127.0.0.1:9/v1/traces";
  cfg->logs_endpoint = "http://127.0.0.1:9/v1/logs";
  cfg->export_timeout_ms = 200;
  cfg->metric_interval_ms = 600000;
  cfg->bsp_delay_ms = 600000;
  cfg->blrp_delay_ms = 600000;
  cfg->span_queue_size = 4;
  cfg->log_queue_size = 4;
  cfg->max_export_batch = 512;
}

TEST(spans_encode) {
  struct todo_tel_config cfg;
  dead_config(&cfg);
  struct todo_tel *tel = todo_tel_create(&cfg, NULL);
  CHECK(todo_tel_enabled(tel));
  struct todo_span_context parent;
  CHECK_EQ_INT(todo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                      "k=v", &parent),
               0);
  struct todo_span *server = todo_span_start(tel, "GET /x", TODO_SPAN_SERVER, &parent);
  todo_span_set_attr(server, TODO_ATTR_STR("http.route", "/x"));
  todo_span_set_attr(server, TODO_ATTR_INT("http.response.status_code", 200));
  todo_span_set_attr(server, TODO_ATTR_INT("http.response.status_code", 503)); /* replaces */
  todo_span_set_attr(server, TODO_ATTR_BOOL("b", true));
  todo_span_set_attr(server, TODO_ATTR_DBL("d", 1.5));
  todo_span_set_status(server, TODO_STATUS_ERROR, "boom");
  struct todo_span *child =
      todo_span_start(tel, "SELECT todos", TODO_SPAN_CLIENT, todo_span_get_context(server));
  CHECK(memcmp(todo_span_get_context(child)->trace_id, parent.trace_id, 16) == 0);
  /* Encode the two spans directly, then decode and compare. */
  server->end_ns = server->start_ns + 1000;
  child->end_ns = child->start_ns + 10;
  struct todo_span *list[2] = {server, child};
  uint8_t *buf = NULL;
  size_t len = 0;
  CHECK_EQ_INT(todo_tel__encode_spans(&resource, list, 2, &buf, &len), 0);
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                       buf);
  CHECK(req != NULL);
  if (req) {
    CHECK_EQ_INT(req->n_resource_spans, 1);
    CHECK_EQ_STR(req->resource_spans[0]->resource->attributes[0]->value->string_value, "svc");
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = req->resource_spans[0]->scope_spans[0];
    CHECK_EQ_STR(ss->scope->name, "todo-api");
    CHECK_EQ_INT(ss->n_spans, 2);
    Opentelemetry__Proto__Trace__V1__Span *s = ss->spans[0];
    CHECK_EQ_STR(s->name, "GET /x");
    CHECK_EQ_INT(s->kind, TODO_SPAN_SERVER);
    CHECK(memcmp(s->trace_id.data, parent.trace_id, 16) == 0);
    CHECK(memcmp(s->parent_span_id.data, parent.span_id, 8) == 0);
    CHECK_EQ_STR(s->trace_state, "k=v");
    CHECK_EQ_INT(s->n_attributes, 4);
    CHECK_EQ_STR(s->attributes[1]->key, "http.response.status_code");
    CHECK_EQ_INT(s->attributes[1]->value->int_value, 503);
    CHECK_EQ_INT(s->attributes[2]->value->bool_value, 1);
    CHECK(s->attributes[3]->value->double_value == 1.5);
    CHECK_EQ_INT(s->status->code, 2);
    CHECK_EQ_STR(s->status->message, "boom");
    CHECK_EQ_INT(s->end_time_unix_nano - s->start_time_unix_nano, 1000);
    CHECK_EQ_INT(s->flags & 0x300, 0x300); /* parent known to be remote */
    Opentelemetry__Proto__Trace__V1__Span *c = ss->spans[1];
    CHECK(memcmp(c->parent_span_id.data, s->span_id.data, 8) == 0);
    CHECK_EQ_INT(c->kind, TODO_SPAN_CLIENT);
    CHECK_EQ_INT(c->flags & 0x300, 0x300);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
  }
  free(buf);
  todo_tel__span_free(server);
  todo_tel__span_free(child);
  todo_tel_destroy(tel);
}

TEST(unsampled_and_disabled) {
  struct todo_tel_config cfg;
  dead_config(&cfg);
  struct todo_tel *tel = todo_tel_create(&cfg, NULL);
  struct todo_span_context parent;
  todo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", NULL, &parent);
  struct todo_span *s = todo_span_start(tel, "x", TODO_SPAN_SERVER, &parent);
  CHECK(s != NULL);
  CHECK(!s->recording);
  CHECK_EQ_INT(todo_span_get_context(s)->flags, 0);
  CHECK(memcmp(todo_span_get_context(s)->trace_id, parent.trace_id, 16) == 0);
  todo_span_end(s);
  struct todo_tel_stats st;
  todo_tel_get_stats(tel, &st);
  CHECK_EQ_INT(st.spans_dropped, 0); /* not recorded is not dropped */
  todo_tel_destroy(tel);

  cfg.disabled = true;
  tel = todo_tel_create(&cfg, NULL);
  CHECK(tel != NULL);
  CHECK(!todo_tel_enabled(tel));
  CHECK(todo_span_start(tel, "x", TODO_SPAN_SERVER, NULL) == NULL);
  todo_span_set_attr(NULL, TODO_ATTR_INT("a", 1));
  todo_span_end(NULL);
  todo_log_emit(tel, 0, TODO_SEV_INFO, "x", NULL, NULL, 0);
  todo_tel_destroy(tel);
  todo_tel_destroy(NULL);
}

TEST(queue_full_drops_and_counts) {
  struct todo_tel_config cfg;
  dead_config(&cfg);
  struct todo_tel *tel = todo_tel_create(&cfg, NULL);
  for (int i = 0; i < 10; i++) {
    todo_span_end(todo_span_start(tel, "s", TODO_SPAN_INTERNAL, NULL));
    todo_log_emit(tel, 0, TODO_SEV_INFO, "l", NULL, NULL, 0);
  }
  struct todo_tel_stats st;
  todo_tel_get_stats(tel, &st);
  CHECK_EQ_INT(st.spans_dropped, 6);
  CHECK_EQ_INT(st.logs_dropped, 6);
  /* Shutdown tries to export what is queued; the endpoint refuses, and that is counted. */
  todo_tel_shutdown(tel);
  todo_tel_get_stats(tel, &st);
  CHECK_EQ_INT(st.spans_failed, 4);
  CHECK_EQ_INT(st.logs_failed, 4);
  CHECK_EQ_INT(st.spans_exported, 0);
  todo_tel_destroy(tel);
}

TEST(logs_encode) {
  struct todo_tel_config cfg;
  dead_config(&cfg);
  cfg.log_queue_size = 8;
  struct todo_tel *tel = todo_tel_create(&cfg, NULL);
  struct todo_span_context ctx;
  todo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL, &ctx);
  struct todo_tel__log *log = calloc(1, sizeof(*log));
  log->time_ns = 42;
  log->severity = TODO_SEV_WARN;
  log->body = "hello";
  log->has_ctx = true;
  memcpy(log->trace_id, ctx.trace_id, 16);
  memcpy(log->span_id, ctx.span_id, 8);
  struct todo_attr a = TODO_ATTR_INT("status", 404);
  todo_tel__attr_copy(&log->arena, &log->attrs[0], &a);
  log->n_attrs = 1;
  uint8_t *buf = NULL;
  size_t len = 0;
  struct todo_tel__log *list[1] = {log};
  CHECK_EQ_INT(todo_tel__encode_logs(&resource, list, 1, &buf, &len), 0);
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, len,
                                                                                     buf);
  CHECK(req != NULL);
  if (req) {
    Opentelemetry__Proto__Logs__V1__LogRecord *r =
        req->resource_logs[0]->scope_logs[0]->log_records[0];
    CHECK_EQ_STR(r->body->string_value, "hello");
    CHECK_EQ_INT(r->severity_number, 13);
    CHECK_EQ_STR(r->severity_text, "WARN");
    CHECK_EQ_INT(r->time_unix_nano, 42);
    CHECK(memcmp(r->trace_id.data, ctx.trace_id, 16) == 0);
    CHECK(memcmp(r->span_id.data, ctx.span_id, 8) == 0);
    CHECK_EQ_STR(r->attributes[0]->key, "status");
    CHECK_EQ_INT(r->attributes[0]->value->int_value, 404);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req,
                                                                                          NULL);
  }
  free(buf);
  todo_tel__log_free(log);
  todo_tel_destroy(tel);
}

TEST(metrics_encode) {
  static const double bounds[] = {1, 2};
  struct todo_meter *m = todo_meter_create();
  struct todo_instrument *h = todo_meter_histogram(m, "h", "s", "", bounds, 2);
  struct todo_instrument *c = todo_meter_counter(m, "c", "", "");
  todo_meter_observable_gauge(m, "g", "1", "", observe_two, NULL);
  todo_meter_counter(m, "empty", "", ""); /* no points: left out */
  todo_histogram_record(h, 1.5, NULL, 0);
  todo_histogram_record(h, 0.5, NULL, 0);
  todo_counter_add(c, 7, NULL, 0);
  struct todo_tel__snapshot snap;
  CHECK_EQ_INT(todo_tel__meter_collect(m, &snap), 0);
  uint8_t *buf = NULL;
  size_t len = 0;
  CHECK_EQ_INT(todo_tel__encode_metrics(&resource, &snap, &buf, &len), 0);
  todo_tel__snapshot_free(&snap);
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
          NULL, len, buf);
  CHECK(req != NULL);
  if (req) {
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        req->resource_metrics[0]->scope_metrics[0];
    CHECK_EQ_INT(sm->n_metrics, 3);
    Opentelemetry__Proto__Metrics__V1__Metric *mh = sm->metrics[0];
    CHECK_EQ_STR(mh->name, "h");
    CHECK_EQ_INT(mh->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    CHECK_EQ_INT(mh->histogram->aggregation_temporality, 2);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = mh->histogram->data_points[0];
    CHECK_EQ_INT(p->count, 2);
    CHECK(p->sum == 2.0);
    CHECK(p->min == 0.5 && p->max == 1.5);
    CHECK_EQ_INT(p->n_bucket_counts, 3);
    CHECK_EQ_INT(p->bucket_counts[0], 1);
    CHECK_EQ_INT(p->bucket_counts[1], 1);
    CHECK_EQ_INT(p->bucket_counts[2], 0);
    CHECK(p->start_time_unix_nano > 0 && p->time_unix_nano >= p->start_time_unix_nano);
    Opentelemetry__Proto__Metrics__V1__Metric *mc = sm->metrics[1];
    CHECK_EQ_INT(mc->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    CHECK(mc->sum->is_monotonic);
    CHECK_EQ_INT(mc->sum->aggregation_temporality, 2);
    CHECK_EQ_INT(mc->sum->data_points[0]->as_int, 7);
    Opentelemetry__Proto__Metrics__V1__Metric *mg = sm->metrics[2];
    CHECK_EQ_INT(mg->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    CHECK_EQ_INT(mg->gauge->n_data_points, 2);
    CHECK(mg->gauge->data_points[0]->as_double == 3.0);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        req, NULL);
  }
  free(buf);
  todo_meter_destroy(m);
}

TEST(arena_utf8_cut) {
  struct todo_tel__arena a = {0};
  char *s = todo_tel__arena_strndup(&a, "ab\xc3\xa9", 3); /* would split é */
  CHECK_EQ_STR(s, "ab");
  s = todo_tel__arena_strndup(&a, "ab\xc3\xa9", 4);
  CHECK_EQ_STR(s, "ab\xc3\xa9");
  char *big = todo_tel__arena_alloc(&a, 100000);
  CHECK(big != NULL);
  todo_tel__arena_free(&a);
  CHECK(a.head == NULL);
}

int main(void) {
  RUN(traceparent_parse);
  RUN(random_ids);
  RUN(kv_list);
  RUN(signal_url);
  RUN(config_from_env);
  RUN(metrics_and_prometheus);
  RUN(metric_cardinality_limit);
  RUN(spans_encode);
  RUN(unsampled_and_disabled);
  RUN(queue_full_drops_and_counts);
  RUN(logs_encode);
  RUN(metrics_encode);
  RUN(arena_utf8_cut);
  return TEST_REPORT();
}
