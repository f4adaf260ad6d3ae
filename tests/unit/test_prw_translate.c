/* The OTLP → Prometheus remote-write translation: naming tables (vectors from the reference's
 * otlptranslator tests and the specification), labels (sanitizing, collisions, job/instance,
 * scope, external, resource conversion), every metric type including native histograms with
 * downscaling and negative buckets, staleness, delta temporality dropped and counted, merged and
 * sorted series, batch splitting and metadata. Inputs are OTLP JSON (quotes written as '),
 * transcoded by the collector's own JSON transcoder; outputs are unpacked with protobuf-c. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errors.h"
#include "core/memory.h"
#include "core/otlp_json.h"
#include "prometheusremotewrite/prw_translate.h"
#include "test.h"

#include "prometheus/remote.pb-c.h"

#define STALE_BITS 0x7ff0000000000002ULL

static uint64_t bits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

/* --- running a translation --- */

#define MAX_REQ 512

struct result {
  int rc;
  struct otc_prw_write_set ws;
  Prometheus__WriteRequest *req[MAX_REQ];
  size_t n;
};

/* OTLP JSON with ' for " (so that the tests stay readable) → protobuf. Returns malloc'd bytes. */
static uint8_t *otlp(const char *q, size_t *len) {
  char *j = strdup(q);
  for (char *p = j; *p; p++)
    if (*p == '\'')
      *p = '"';
  uint8_t *out = NULL;
  char why[256] = "";
  int rc = otc_json_to_proto(OTC_SIGNAL_METRICS, j, strlen(j), 64, &out, len, why, sizeof why);
  if (rc != 0)
    fprintf(stderr, "bad test JSON: %s\n", why);
  CHECK(rc == 0);
  free(j);
  return out;
}

static bool valid_label_name(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9'))
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return false;
  return true;
}

static bool valid_metric_name(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9'))
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == ':'))
      return false;
  return true;
}

/* What remote write requires of every series, whatever the test. */
static void check_series(const Prometheus__TimeSeries *ts) {
  bool has_name = false;
  for (size_t i = 0; i < ts->n_labels; i++) {
    const Prometheus__Label *l = ts->labels[i];
    CHECK(valid_label_name(l->name));
    CHECK(l->value[0] != '\0');
    if (i)
      CHECK(strcmp(ts->labels[i - 1]->name, l->name) < 0);
    if (strcmp(l->name, "__name__") == 0) {
      has_name = true;
      CHECK(valid_metric_name(l->value));
    }
  }
  CHECK(has_name);
  CHECK(ts->n_samples + ts->n_histograms > 0);
  for (size_t i = 1; i < ts->n_samples; i++)
    CHECK(ts->samples[i - 1]->timestamp < ts->samples[i]->timestamp);
  for (size_t i = 1; i < ts->n_histograms; i++)
    CHECK(ts->histograms[i - 1]->timestamp < ts->histograms[i]->timestamp);
}

static void run_bytes(const uint8_t *buf, size_t len, const struct otc_prw_settings *s,
                      struct result *r) {
  memset(r, 0, sizeof *r);
  r->rc = otc_prw_translate(buf, len, s, &r->ws);
  for (size_t i = 0; i < r->ws.n_requests && r->n < MAX_REQ; i++) {
    Prometheus__WriteRequest *w =
        prometheus__write_request__unpack(NULL, r->ws.requests[i].len, r->ws.requests[i].data);
    CHECK(w != NULL);
    if (!w)
      continue;
    CHECK(w->n_timeseries == r->ws.requests[i].series);
    /* The series are written directly, not by protobuf-c: the bytes must be what it packs. */
    size_t n = prometheus__write_request__get_packed_size(w);
    uint8_t *again = malloc(n ? n : 1);
    CHECK(again != NULL);
    if (again) {
      CHECK(prometheus__write_request__pack(w, again) == r->ws.requests[i].len);
      CHECK(n == r->ws.requests[i].len && memcmp(again, r->ws.requests[i].data, n) == 0);
    }
    free(again);
    for (size_t j = 0; j < w->n_timeseries; j++)
      check_series(w->timeseries[j]);
    r->req[r->n++] = w;
  }
}

static void run(const char *json, const struct otc_prw_settings *s, struct result *r) {
  size_t len = 0;
  uint8_t *buf = otlp(json, &len);
  run_bytes(buf, len, s, r);
  free(buf);
}

static void result_free(struct result *r) {
  for (size_t i = 0; i < r->n; i++)
    prometheus__write_request__free_unpacked(r->req[i], NULL);
  otc_prw_write_set_free(&r->ws);
}

static struct otc_prw_settings defaults(void) {
  struct otc_prw_settings s;
  memset(&s, 0, sizeof s);
  s.add_metric_suffixes = true;
  s.target_info = true;
  s.scope_info = true;
  return s;
}

/* name="value",... in the series' (sorted) order. */
static const char *key_of(const Prometheus__TimeSeries *ts, char *buf, size_t cap) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < ts->n_labels && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%s=\"%s\"", i ? "," : "", ts->labels[i]->name,
                          ts->labels[i]->value);
  return buf;
}

static size_t n_series(const struct result *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n; i++)
    n += r->req[i]->n_timeseries;
  return n;
}

/* The one series with exactly these labels (a second one would be a failed merge). */
static const Prometheus__TimeSeries *find(const struct result *r, const char *key) {
  const Prometheus__TimeSeries *found = NULL;
  int hits = 0;
  char buf[4096];
  for (size_t i = 0; i < r->n; i++)
    for (size_t j = 0; j < r->req[i]->n_timeseries; j++)
      if (strcmp(key_of(r->req[i]->timeseries[j], buf, sizeof buf), key) == 0) {
        found = r->req[i]->timeseries[j];
        hits++;
      }
  if (hits != 1) {
    fprintf(stderr, "series %s found %d times; the series are:\n", key, hits);
    for (size_t i = 0; i < r->n; i++)
      for (size_t j = 0; j < r->req[i]->n_timeseries; j++)
        fprintf(stderr, "  %s\n", key_of(r->req[i]->timeseries[j], buf, sizeof buf));
  }
  CHECK(hits == 1);
  return hits == 1 ? found : NULL;
}

/* The value of the single sample of a series (NAN when absent). */
static double value_of(const struct result *r, const char *key, int64_t want_ts) {
  const Prometheus__TimeSeries *ts = find(r, key);
  if (!ts)
    return NAN;
  CHECK_EQ_INT(ts->n_samples, 1);
  if (ts->n_samples != 1)
    return NAN;
  CHECK_EQ_INT(ts->samples[0]->timestamp, want_ts);
  return ts->samples[0]->value;
}

/* clang-format off */
#define RES(attrs) "{'resource':{'attributes':[" attrs "]},"                                     \
  "'scopeMetrics':[{'scope':{'name':'lib','version':'1.0'},'metrics':["
#define STR(k, v) "{'key':'" k "','value':{'stringValue':'" v "'}}"
#define INT(k, v) "{'key':'" k "','value':{'intValue':'" #v "'}}"
/* clang-format on */
#define SCOPE "otel_scope_name=\"lib\",otel_scope_version=\"1.0\""

/* clang-format off */
static const char IN_BASIC[] =
  "{'resourceMetrics':["
  RES(STR("service.name", "api") "," STR("service.namespace", "shop") ","
      STR("service.instance.id", "i-1") "," STR("host.name", "h1"))
  "{'name':'process.cpu.utilization','unit':'1','gauge':{'dataPoints':["
    "{'timeUnixNano':'1700000000123456789','asDouble':0.5,'attributes':[" INT("cpu", 0) "]}]}},"
  "{'name':'http.requests','unit':'{request}','sum':{'aggregationTemporality':2,"
    "'isMonotonic':true,'dataPoints':[{'timeUnixNano':'1700000000000000000','asInt':'42',"
    "'attributes':[" STR("http.method", "GET") "," INT("http.status_code", 200) "]}]}},"
  "{'name':'queue.size','unit':'{item}','sum':{'aggregationTemporality':2,'dataPoints':["
    "{'timeUnixNano':'1700000001000000000','asInt':'7'}]}}"
  "]}]}]}";

static const char IN_NO_TARGET[] =
  "{'resourceMetrics':[" RES(STR("service.name", "api") "," STR("host.name", "h1"))
  "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000','asDouble':1}]}}]}]}]}";

static const char IN_SERVICE_ONLY[] =
  "{'resourceMetrics':[" RES(STR("service.name", "api") "," STR("service.instance.id", "x"))
  "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000','asDouble':1}]}}]}]}]}";

static const char IN_NO_JOB[] =
  "{'resourceMetrics':[" RES(STR("host.name", "h"))
  "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000','asDouble':1}]}}]}]}]}";

static const char IN_LABELS[] =
  "{'resourceMetrics':[" RES(STR("service.name", "svc"))
  "{'name':'m','gauge':{'dataPoints':[{'timeUnixNano':'2000000','asDouble':1,'attributes':["
    STR("a_b", "2") "," STR("a.b", "1") "," STR("a-b", "2") ","
    STR("x.y", "v") "," STR("x_y", "v") "," STR("0day", "z") "," STR("empty", "") ","
    "{'key':'flag','value':{'boolValue':true}},"
    "{'key':'ratio','value':{'doubleValue':1.5}},"
    "{'key':'big','value':{'doubleValue':1e21}},"
    "{'key':'tiny','value':{'doubleValue':1e-7}},"
    "{'key':'arr','value':{'arrayValue':{'values':["
      "{'intValue':'1'},{'stringValue':'a\\u0022'},{'boolValue':true}]}}},"
    "{'key':'map','value':{'kvlistValue':{'values':["
      "{'key':'b','value':{'intValue':'1'}},{'key':'a','value':{'stringValue':'x'}}]}}},"
    "{'key':'raw','value':{'bytesValue':'AQID'}},"
    STR("job", "attr-job") "," STR("otel_scope_name", "attr-scope")
  "]}]}}]}]}]}";

static const char IN_BAD_UTF8[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'m','gauge':{'dataPoints':["
  "{'timeUnixNano':'2000000','asDouble':1,'attributes':[" STR("k", "abXc") "]}]}}]}]}]}";

static const char IN_SCOPE[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'scope':{'name':'lib','version':'2','attributes':["
  STR("lib.kind", "x") "," STR("name", "ignored") "]},'metrics':["
  "{'name':'m','gauge':{'dataPoints':[{'timeUnixNano':'2000000','asDouble':1}]}}]}]}]}";

static const char IN_INVALID_LABEL[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'m','gauge':{'dataPoints':["
  "{'timeUnixNano':'2000000','asDouble':1,'attributes':[" STR(".", "v") "]},"
  "{'timeUnixNano':'2000000','asDouble':2,'attributes':[" STR("ok", "v") "]}]}},"
  "{'name':'@@@','gauge':{'dataPoints':[{'timeUnixNano':'2000000','asDouble':1}]}}]}]}]}";

static const char IN_HISTOGRAM[] =
  "{'resourceMetrics':[" RES(STR("service.name", "svc"))
  "{'name':'http.server.duration','unit':'ms','histogram':{'aggregationTemporality':2,"
  "'dataPoints':["
    "{'timeUnixNano':'5000000000','count':'10','sum':123.5,'bucketCounts':['2','3','5','0'],"
     "'explicitBounds':[5,10,25.5],'attributes':[" STR("route", "/a") "],"
     "'exemplars':[{'timeUnixNano':'4000000000','asDouble':7,"
       "'traceId':'0102030405060708090a0b0c0d0e0f10','spanId':'1112131415161718',"
       "'filteredAttributes':[" STR("user", "u1") "]},"
       "{'timeUnixNano':'4000000000','asDouble':100}]},"
    "{'timeUnixNano':'5000000000','count':'1','bucketCounts':['1'],'explicitBounds':[],"
     "'attributes':[" STR("route", "/b") "]},"
    "{'timeUnixNano':'5000000000','count':'4','sum':1,'bucketCounts':['4','0'],"
     "'explicitBounds':[1],'flags':1,'attributes':[" STR("route", "/c") "]}"
  "]}}]}]}]}";

static const char IN_SUMMARY[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':["
  "{'name':'rpc.latency','unit':'s','summary':{'dataPoints':[{'timeUnixNano':'3000000000',"
   "'count':'8','sum':2.5,'quantileValues':[{'quantile':0.5,'value':0.2},"
   "{'quantile':0.99,'value':0.9},{'quantile':1,'value':1.1}]}]}},"
  "{'name':'temp','gauge':{'dataPoints':[{'timeUnixNano':'3000000000','asDouble':20,'flags':1}]}}"
  "]}]}]}";

static const char IN_EXP_EDGES[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'lat','exponentialHistogram':{"
  "'aggregationTemporality':2,'dataPoints':["
    "{'timeUnixNano':'9000000','count':'1','scale':-5,'positive':{'bucketCounts':['1']},"
     "'attributes':[" STR("p", "a") "]},"
    "{'timeUnixNano':'9000000','count':'2','scale':0,'zeroThreshold':0.001,'flags':1,"
     "'attributes':[" STR("p", "b") "]},"
    "{'timeUnixNano':'9000000','count':'0','scale':2,'attributes':[" STR("p", "c") "]}"
  "]}}]}]}]}";

static const char IN_DELTA[] =
  "{'resourceMetrics':[" RES(STR("service.name", "svc"))
  "{'name':'d.sum','sum':{'aggregationTemporality':1,'isMonotonic':true,'dataPoints':["
    "{'timeUnixNano':'1000000','asInt':'1'},{'timeUnixNano':'2000000','asInt':'1'},"
    "{'timeUnixNano':'3000000','asInt':'1'}]}},"
  "{'name':'d.updown','sum':{'aggregationTemporality':1,'dataPoints':["
    "{'timeUnixNano':'1000000','asInt':'1'}]}},"
  "{'name':'d.hist','histogram':{'aggregationTemporality':1,'dataPoints':["
    "{'timeUnixNano':'1000000','count':'1','bucketCounts':['1']},"
    "{'timeUnixNano':'1000000','count':'1','bucketCounts':['1']}]}},"
  "{'name':'d.exp','exponentialHistogram':{'aggregationTemporality':1,'dataPoints':["
    "{'timeUnixNano':'1000000','count':'1'}]}},"
  "{'name':'u.sum','sum':{'isMonotonic':true,'dataPoints':["
    "{'timeUnixNano':'1000000','asInt':'1'}]}}"
  "]}]}]}";

static const char IN_EXTERNAL[] =
  "{'resourceMetrics':["
  RES(STR("service.name", "svc") "," STR("host.name", "h"))
    "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000','asDouble':1,"
    "'attributes':[" STR("region", "us") "]}]}}]}]},"
  RES(STR("host.name", "h2"))
    "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000','asDouble':2}]}}]}]}"
  "]}";

static const char IN_RESOURCE[] =
  "{'resourceMetrics':["
  RES(STR("service.name", "svc") "," STR("host.name", "h1") "," STR("k8s.pod.name", "p"))
  "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000','asDouble':1,"
  "'attributes':[" STR("host.name", "point") "]}]}}]}]}]}";

static const char IN_NO_SUFFIX[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'http.requests','unit':'ms',"
  "'sum':{'aggregationTemporality':2,'isMonotonic':true,'dataPoints':["
  "{'timeUnixNano':'1000000','asInt':'3'}]}}]}]}]}";

static const char IN_MERGE[] =
  "{'resourceMetrics':["
  RES(STR("service.name", "svc") "," STR("host.name", "h"))
    "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'3000000000','asDouble':3}]}}]}]},"
  RES(STR("service.name", "svc") "," STR("host.name", "h"))
    "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'1000000000','asDouble':1},"
    "{'timeUnixNano':'3000000000','asDouble':30},{'timeUnixNano':'2000000000','asDouble':2}]}}"
  "]}]}]}";

static const char IN_ONE_GAUGE[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'g','gauge':{'dataPoints':["
  "{'timeUnixNano':'1000000','asDouble':1}]}}]}]}]}";

static const char IN_METADATA[] =
  "{'resourceMetrics':[{'scopeMetrics':[{'metrics':["
  "{'name':'http.requests','description':'All requests','sum':{'aggregationTemporality':2,"
   "'isMonotonic':true,'dataPoints':[{'timeUnixNano':'1000000','asInt':'3'}]}},"
  "{'name':'lat','unit':'ms','histogram':{'aggregationTemporality':2,'dataPoints':["
   "{'timeUnixNano':'1000000','count':'1','bucketCounts':['1']}]}},"
  "{'name':'lat','unit':'ms','histogram':{'aggregationTemporality':2,'dataPoints':["
   "{'timeUnixNano':'2000000','count':'1','bucketCounts':['1']}]}}"
  "]}]}]}";

/* clang-format on */

/* --- naming --- */

struct name_case {
  const char *name, *unit;
  enum otc_prw_metric_kind kind;
  const char *ns;
  bool suffixes;
  const char *want; /* NULL: refused */
};

TEST(metric_names) {
  static const struct name_case cases[] = {
      /* The reference's otlptranslator vectors. */
      {"simple_metric", "", OTC_PRW_KIND_GAUGE, NULL, false, "simple_metric"},
      {"metric@with#special$chars", "", OTC_PRW_KIND_GAUGE, NULL, false,
       "metric_with_special_chars"},
      {"123metric", "", OTC_PRW_KIND_GAUGE, NULL, false, "_123metric"},
      {"simple_metric", "", OTC_PRW_KIND_GAUGE, "test_namespace", false,
       "test_namespace_simple_metric"},
      {"", "", OTC_PRW_KIND_GAUGE, NULL, false, NULL},
      {"metric@@##$$name", "", OTC_PRW_KIND_GAUGE, NULL, false, "metric_name"},
      {"@#$%", "", OTC_PRW_KIND_GAUGE, NULL, false, NULL},
      {"@_#_$_%", "", OTC_PRW_KIND_GAUGE, NULL, false, NULL},
      {"metric", "", OTC_PRW_KIND_GAUGE, "test@namespace!!??", false, "test_namespace_metric"},
      {"requests", "", OTC_PRW_KIND_COUNTER, NULL, true, "requests_total"},
      {"cpu_usage", "1", OTC_PRW_KIND_GAUGE, NULL, true, "cpu_usage_ratio"},
      {"items", "1", OTC_PRW_KIND_COUNTER, NULL, true, "items_total"},
      {"response_time", "ms", OTC_PRW_KIND_GAUGE, NULL, true, "response_time_milliseconds"},
      {"memory_usage", "By", OTC_PRW_KIND_GAUGE, NULL, true, "memory_usage_bytes"},
      {"requests", "1/s", OTC_PRW_KIND_GAUGE, NULL, true, "requests_per_second"},
      {"throughput", "By/s", OTC_PRW_KIND_GAUGE, NULL, true, "throughput_bytes_per_second"},
      {"custom_metric", "custom_unit", OTC_PRW_KIND_GAUGE, NULL, true, "custom_metric_custom_unit"},
      {"custom_metric", "{custom}", OTC_PRW_KIND_GAUGE, NULL, true, "custom_metric"},
      {"custom_metric", "By/{custom}", OTC_PRW_KIND_GAUGE, NULL, true, "custom_metric_bytes"},
      {"requests_total", "", OTC_PRW_KIND_COUNTER, NULL, true, "requests_total"},
      {"cpu_usage_ratio", "1", OTC_PRW_KIND_GAUGE, NULL, true, "cpu_usage_ratio"},
      {"response_time_seconds", "s", OTC_PRW_KIND_GAUGE, NULL, true, "response_time_seconds"},
      {"requests", "1/s", OTC_PRW_KIND_COUNTER, "app", true, "app_requests_per_second_total"},
      {"123_requests", "", OTC_PRW_KIND_COUNTER, "app", true, "app_123_requests_total"},
      {"___", "", OTC_PRW_KIND_GAUGE, NULL, false, "___"},
      {"metric__with__multiple__underscores", "unit__multiple__underscores", OTC_PRW_KIND_GAUGE,
       NULL, true, "metric_with_multiple_underscores_unit_multiple_underscores"},
      {"custom_metric", "unit@with#special/chars", OTC_PRW_KIND_GAUGE, NULL, true,
       "custom_metric_unit_with_special_per_chars"},
      {"@#$%", "", OTC_PRW_KIND_GAUGE, NULL, true, NULL},
      /* Units and types from the specification's table. */
      {"http.server.duration", "s", OTC_PRW_KIND_HISTOGRAM, NULL, true,
       "http_server_duration_seconds"},
      {"heap", "KiBy", OTC_PRW_KIND_GAUGE, NULL, true, "heap_kibibytes"},
      {"uptime", "min", OTC_PRW_KIND_COUNTER, NULL, true, "uptime_minutes_total"},
      {"speed", "m/s", OTC_PRW_KIND_GAUGE, NULL, true, "speed_meters_per_second"},
      {"rate", "1/h", OTC_PRW_KIND_GAUGE, NULL, true, "rate_per_hour"},
      {"volume", "By/d", OTC_PRW_KIND_COUNTER, NULL, true, "volume_bytes_per_day_total"},
      {"reqs", "{request}/s", OTC_PRW_KIND_GAUGE, NULL, true, "reqs_per_second"},
      {"ratio_of_things", "1", OTC_PRW_KIND_NONMONOTONIC, NULL, true, "ratio_of_things"},
      {"up.down", "1", OTC_PRW_KIND_NONMONOTONIC, NULL, true, "up_down"},
      {"_leading", "", OTC_PRW_KIND_GAUGE, NULL, true, "leading"},
      {"2xx.responses", "", OTC_PRW_KIND_COUNTER, NULL, true, "_2xx_responses_total"},
      {"total.requests", "", OTC_PRW_KIND_COUNTER, NULL, true, "requests_total"},
      {"sys:cpu", "ms", OTC_PRW_KIND_GAUGE, NULL, true, "sys:cpu_milliseconds"},
      {"time", "ms", OTC_PRW_KIND_COUNTER, NULL, false, "time"},
      {"temp", "Cel", OTC_PRW_KIND_GAUGE, NULL, true, "temp_celsius"},
      {"load", "%", OTC_PRW_KIND_GAUGE, NULL, true, "load_percent"},
      /* The reference's behaviour: a per-unit already in the name is a token pair, not one token,
       * so it is added again. */
      {"throughput_bytes_per_second", "By/s", OTC_PRW_KIND_GAUGE, NULL, true,
       "throughput_bytes_per_second_per_second"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct name_case *c = &cases[i];
    char *got = prw__metric_name(c->name, c->unit, c->kind, c->ns, c->suffixes);
    if (c->want) {
      if (!got || strcmp(got, c->want) != 0)
        fprintf(stderr, "case %zu: %s [%s]\n", i, c->name, c->unit);
      CHECK_EQ_STR(got, c->want);
    } else {
      if (got)
        fprintf(stderr, "case %zu: %s gave %s\n", i, c->name, got);
      CHECK(got == NULL);
    }
    free(got);
  }
}

TEST(label_and_unit_names) {
  static const char *const cases[][2] = {
      {"http.method", "http_method"},
      {"0day", "key_0day"},
      {"_private", "_private"}, /* PermissiveLabelSanitization, on by default in the reference */
      {"a..b", "a__b"},         /* runs are kept in label names */
      {"aé", "a_"},             /* one '_' per rune */
      {"__name__", "__name__"},
      {"k8s.pod.name", "k8s_pod_name"},
      {"", NULL},
      {"_", NULL},
      {"..", NULL},
      {"é", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = prw__label_name(cases[i][0]);
    if (cases[i][1])
      CHECK_EQ_STR(got, cases[i][1]);
    else
      CHECK(got == NULL);
    free(got);
  }
  static const char *const units[][2] = {
      {"ms", "milliseconds"}, {"By/s", "bytes_per_second"}, {"1", ""},
      {"{item}", ""},         {"1/s", "per_second"},        {"foo bar", "foo_bar"},
  };
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    char *got = prw__unit_name(units[i][0]);
    CHECK_EQ_STR(got, units[i][1]);
    free(got);
  }
}

TEST(float_format) {
  static const struct {
    double v;
    const char *want;
  } cases[] = {
      {1, "1"},
      {0.005, "0.005"},
      {2.5, "2.5"},
      {100, "100"},
      {0.1, "0.1"},
      {1e21, "1000000000000000000000"},
      {1e23, "100000000000000000000000"},
      {1e-7, "0.0000001"},
      {1.0 / 3, "0.3333333333333333"},
      {-0.0, "-0"},
      {-2.75, "-2.75"},
      {123456789.125, "123456789.125"},
  };
  char buf[400];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_EQ_STR(prw__format_float(cases[i].v, buf, sizeof buf), cases[i].want);
  CHECK_EQ_STR(prw__format_float(INFINITY, buf, sizeof buf), "+Inf");
  CHECK_EQ_STR(prw__format_float(-INFINITY, buf, sizeof buf), "-Inf");
  CHECK_EQ_STR(prw__format_float(NAN, buf, sizeof buf), "NaN");
  prw__format_float(1.7976931348623157e308, buf, sizeof buf);
  CHECK_EQ_INT(strlen(buf), 309);
}

/* --- series --- */

TEST(gauge_counter_updown_and_target_info) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_BASIC, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(r.ws.points, 3);
  CHECK_EQ_INT(n_series(&r), 4);
  CHECK(value_of(&r,
                 "__name__=\"process_cpu_utilization_ratio\",cpu=\"0\",instance=\"i-1\","
                 "job=\"shop/api\"," SCOPE,
                 1700000000123) == 0.5);
  CHECK(value_of(&r,
                 "__name__=\"http_requests_total\",http_method=\"GET\",http_status_code=\"200\","
                 "instance=\"i-1\",job=\"shop/api\"," SCOPE,
                 1700000000000) == 42);
  CHECK(value_of(&r, "__name__=\"queue_size\",instance=\"i-1\",job=\"shop/api\"," SCOPE,
                 1700000001000) == 7);
  /* target_info: the other resource attributes, the latest timestamp of the resource. */
  CHECK(value_of(&r, "__name__=\"target_info\",host_name=\"h1\",instance=\"i-1\",job=\"shop/api\"",
                 1700000001000) == 1);
  CHECK_EQ_INT(r.ws.series, 4);
  CHECK_EQ_INT(r.ws.samples, 4);
  result_free(&r);

  /* target_info off; a resource of service attributes only has none anyway. */
  s.target_info = false;
  run(IN_NO_TARGET, &s, &r);
  CHECK_EQ_INT(n_series(&r), 1);
  result_free(&r);
  s.target_info = true;
  run(IN_SERVICE_ONLY, &s, &r);
  CHECK_EQ_INT(n_series(&r), 1);
  result_free(&r);
  /* Without job or instance there is nothing to join target_info on. */
  run(IN_NO_JOB, &s, &r);
  CHECK_EQ_INT(n_series(&r), 1);
  find(&r, "__name__=\"g\"," SCOPE);
  result_free(&r);
}

TEST(label_rules) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_LABELS, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  /* Collisions join in the order of the original keys (a-b < a.b < a_b), equal values once; job
   * and the scope labels win over attributes of the same name. */
  find(&r, "__name__=\"m\",a_b=\"2;1;2\",arr=\"[1,\"a\\\"\",true]\",big=\"1e+21\",flag=\"true\","
           "job=\"svc\",key_0day=\"z\",map=\"{\"a\":\"x\",\"b\":1}\","
           "otel_scope_name=\"lib\",otel_scope_version=\"1.0\",ratio=\"1.5\",raw=\"AQID\","
           "tiny=\"1e-7\",x_y=\"v\"");
  result_free(&r);
}

TEST(json_and_invalid_utf8_values) {
  struct otc_prw_settings s = defaults();
  struct result r;
  size_t len;
  uint8_t *buf = otlp(IN_BAD_UTF8, &len);
  uint8_t *x = memmem(buf, len, "abXc", 4);
  CHECK(x != NULL);
  if (x)
    x[2] = 0xff; /* invalid UTF-8: Prometheus would refuse the whole request */
  run_bytes(buf, len, &s, &r);
  free(buf);
  find(&r, "__name__=\"m\",k=\"ab\xEF\xBF\xBD"
           "c\"");
  result_free(&r);
}

TEST(scope_attributes_and_disable_scope_info) {
  struct otc_prw_settings s = defaults();
  struct result r;
  const char *in = IN_SCOPE;
  run(in, &s, &r);
  find(&r,
       "__name__=\"m\",otel_scope_lib_kind=\"x\",otel_scope_name=\"lib\",otel_scope_version=\"2\"");
  result_free(&r);
  s.scope_info = false;
  run(in, &s, &r);
  find(&r, "__name__=\"m\"");
  result_free(&r);
}

TEST(invalid_label_drops_point) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_INVALID_LABEL, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(r.ws.points, 3);
  CHECK_EQ_INT(r.ws.dropped[OTC_PRW_DROP_INVALID_LABEL], 1);
  CHECK_EQ_INT(r.ws.dropped[OTC_PRW_DROP_INVALID_NAME], 1);
  CHECK_EQ_INT(n_series(&r), 1);
  CHECK(value_of(&r, "__name__=\"m\",ok=\"v\"", 2) == 2);
  result_free(&r);
}

TEST(histogram) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_HISTOGRAM, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  const char *l = ",job=\"svc\"," SCOPE ",route=\"/a\"";
#define HK(name, extra) "__name__=\"http_server_duration_milliseconds_" name "\"" extra
  CHECK(value_of(&r, HK("bucket", ",job=\"svc\",le=\"5\"," SCOPE ",route=\"/a\""), 5000) == 2);
  CHECK(value_of(&r, HK("bucket", ",job=\"svc\",le=\"10\"," SCOPE ",route=\"/a\""), 5000) == 5);
  CHECK(value_of(&r, HK("bucket", ",job=\"svc\",le=\"25.5\"," SCOPE ",route=\"/a\""), 5000) == 10);
  CHECK(value_of(&r, HK("bucket", ",job=\"svc\",le=\"+Inf\"," SCOPE ",route=\"/a\""), 5000) == 10);
  char key[512];
  snprintf(key, sizeof key, HK("sum", "%s"), l);
  CHECK(value_of(&r, key, 5000) == 123.5);
  snprintf(key, sizeof key, HK("count", "%s"), l);
  CHECK(value_of(&r, key, 5000) == 10);
  /* The exemplar of 7 sits on le="10", the one of 100 on +Inf. */
  const Prometheus__TimeSeries *b10 =
      find(&r, HK("bucket", ",job=\"svc\",le=\"10\"," SCOPE ",route=\"/a\""));
  const Prometheus__TimeSeries *inf =
      find(&r, HK("bucket", ",job=\"svc\",le=\"+Inf\"," SCOPE ",route=\"/a\""));
  CHECK(b10 && b10->n_exemplars == 1);
  CHECK(inf && inf->n_exemplars == 1);
  if (b10 && b10->n_exemplars == 1) {
    const Prometheus__Exemplar *e = b10->exemplars[0];
    CHECK(e->value == 7);
    CHECK_EQ_INT(e->timestamp, 4000);
    CHECK_EQ_INT(e->n_labels, 3);
    if (e->n_labels == 3) {
      CHECK_EQ_STR(e->labels[0]->name, "trace_id");
      CHECK_EQ_STR(e->labels[0]->value, "0102030405060708090a0b0c0d0e0f10");
      CHECK_EQ_STR(e->labels[1]->name, "span_id");
      CHECK_EQ_STR(e->labels[1]->value, "1112131415161718");
      CHECK_EQ_STR(e->labels[2]->name, "user");
    }
  }
  /* No sum: no _sum series; no bounds: only +Inf. */
  CHECK(value_of(&r, HK("bucket", ",job=\"svc\",le=\"+Inf\"," SCOPE ",route=\"/b\""), 5000) == 1);
  CHECK(value_of(&r, HK("count", ",job=\"svc\"," SCOPE ",route=\"/b\""), 5000) == 1);
  /* No recorded value: every series of the point carries the stale marker. */
  const Prometheus__TimeSeries *st =
      find(&r, HK("bucket", ",job=\"svc\",le=\"1\"," SCOPE ",route=\"/c\""));
  CHECK(st && bits(st->samples[0]->value) == STALE_BITS);
  st = find(&r, HK("sum", ",job=\"svc\"," SCOPE ",route=\"/c\""));
  CHECK(st && bits(st->samples[0]->value) == STALE_BITS);
  st = find(&r, HK("count", ",job=\"svc\"," SCOPE ",route=\"/c\""));
  CHECK(st && bits(st->samples[0]->value) == STALE_BITS);
  /* a: 3 buckets + Inf + sum + count; b: Inf + count; c: 1 bucket + Inf + sum + count. */
  CHECK_EQ_INT(n_series(&r), 6 + 2 + 4);
#undef HK
  result_free(&r);
}

TEST(summary_and_staleness) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_SUMMARY, &s, &r);
  CHECK(value_of(&r, "__name__=\"rpc_latency_seconds_sum\"", 3000) == 2.5);
  CHECK(value_of(&r, "__name__=\"rpc_latency_seconds_count\"", 3000) == 8);
  CHECK(value_of(&r, "__name__=\"rpc_latency_seconds\",quantile=\"0.5\"", 3000) == 0.2);
  CHECK(value_of(&r, "__name__=\"rpc_latency_seconds\",quantile=\"0.99\"", 3000) == 0.9);
  CHECK(value_of(&r, "__name__=\"rpc_latency_seconds\",quantile=\"1\"", 3000) == 1.1);
  CHECK(bits(value_of(&r, "__name__=\"temp\"", 3000)) == STALE_BITS);
  result_free(&r);
}

/* --- native histograms --- */

struct layout_case {
  int scale;
  int offset;
  const char *counts;
  int want_schema;
  int n_spans;
  int span_off[3], span_len[3];
  int n_deltas;
  int64_t deltas[8];
};

static void check_layout(size_t n_spans, Prometheus__BucketSpan **spans, size_t n_deltas,
                         const int64_t *deltas, const struct layout_case *c) {
  CHECK_EQ_INT(n_spans, c->n_spans);
  for (size_t i = 0; i < n_spans && i < (size_t)c->n_spans; i++) {
    CHECK_EQ_INT(spans[i]->offset, c->span_off[i]);
    CHECK_EQ_INT(spans[i]->length, c->span_len[i]);
  }
  CHECK_EQ_INT(n_deltas, c->n_deltas);
  for (size_t i = 0; i < n_deltas && i < (size_t)c->n_deltas; i++)
    CHECK_EQ_INT(deltas[i], c->deltas[i]);
}

TEST(exponential_histogram_layouts) {
  /* The reference's convertBucketsLayout vectors: scale 8, 9 and 10 merge 1, 2 and 4 buckets. */
  static const struct layout_case cases[] = {
      {8, 0, "'4','3','2','1'", 8, 1, {1}, {4}, 4, {4, -1, -1, -1}},
      {9, 0, "'4','3','2','1'", 8, 1, {1}, {2}, 2, {7, -4}},
      {10, 0, "'4','3','2','1'", 8, 1, {1}, {1}, 1, {10}},
      {8, 1, "'4','3','2','1'", 8, 1, {2}, {4}, 4, {4, -1, -1, -1}},
      {9, 1, "'4','3','2','1'", 8, 1, {1}, {3}, 3, {4, 1, -4}},
      {10, 1, "'4','3','2','1'", 8, 1, {1}, {2}, 2, {9, -8}},
      {8,
       4,
       "'4','2','0','2','0','0','0','0','0','0','0','0','0','0','0','0','1'",
       8,
       2,
       {5, 12},
       {4, 1},
       5,
       {4, -2, -2, 2, -1}},
      {9,
       4,
       "'4','2','0','2','0','0','0','0','0','0','0','0','0','0','0','0','1'",
       8,
       2,
       {3, 6},
       {2, 1},
       3,
       {6, -4, -1}},
      {10,
       4,
       "'4','2','0','2','0','0','0','0','0','0','0','0','0','0','0','0','1'",
       8,
       2,
       {2, 3},
       {1, 1},
       2,
       {8, -7}},
      {10,
       4,
       "'4','2','0','2','0','0','0','0','0','0','0','0','1'",
       8,
       1,
       {2},
       {4},
       4,
       {8, -8, 0, 1}},
      {8, -2, "'3','1','0','0','0','1'", 8, 2, {-1, 3}, {2, 1}, 3, {3, -2, 0}},
      {9, -2, "'3','1','0','0','0','1'", 8, 1, {0}, {3}, 3, {4, -4, 1}},
      {10, -2, "'3','1','0','0','0','1'", 8, 1, {0}, {2}, 2, {4, -3}},
      {8, -2, "'3','1','0','1','0','1'", 8, 1, {-1}, {6}, 6, {3, -2, -1, 1, -1, 1}},
      {3, 0, "'1'", 3, 1, {1}, {1}, 1, {1}},
      {-4, 0, "'1'", -4, 1, {1}, {1}, 1, {1}},
  };
  struct otc_prw_settings s = defaults();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct layout_case *c = &cases[i];
    char json[1024];
    /* The same buckets on both sides: negative buckets use the same layout. */
    snprintf(json, sizeof json,
             "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'lat','unit':'s',"
             "'exponentialHistogram':{'aggregationTemporality':2,'dataPoints':[{'timeUnixNano':"
             "'9000000','count':'40','sum':12.5,'scale':%d,'zeroCount':'3','positive':{'offset':"
             "%d,'bucketCounts':[%s]},'negative':{'offset':%d,'bucketCounts':[%s]}}]}}]}]}]}",
             c->scale, c->offset, c->counts, c->offset, c->counts);
    struct result r;
    run(json, &s, &r);
    CHECK_EQ_INT(r.rc, 0);
    const Prometheus__TimeSeries *ts = find(&r, "__name__=\"lat_seconds\"");
    CHECK(ts && ts->n_histograms == 1 && ts->n_samples == 0);
    if (ts && ts->n_histograms == 1) {
      const Prometheus__Histogram *h = ts->histograms[0];
      CHECK_EQ_INT(h->schema, c->want_schema);
      CHECK_EQ_INT(h->timestamp, 9);
      CHECK(h->sum == 12.5);
      CHECK(h->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT && h->count_int == 40);
      CHECK(h->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT &&
            h->zero_count_int == 3);
      CHECK(h->zero_threshold == 1e-128);
      CHECK(h->reset_hint == PROMETHEUS__HISTOGRAM__RESET_HINT__RESET_HINT_UNKNOWN);
      check_layout(h->n_positive_spans, h->positive_spans, h->n_positive_deltas, h->positive_deltas,
                   c);
      check_layout(h->n_negative_spans, h->negative_spans, h->n_negative_deltas, h->negative_deltas,
                   c);
    }
    result_free(&r);
  }
}

TEST(exponential_histogram_edges) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_EXP_EDGES, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(r.ws.dropped[OTC_PRW_DROP_UNSUPPORTED_SCALE], 1);
  CHECK_EQ_INT(n_series(&r), 2);
  const Prometheus__TimeSeries *ts = find(&r, "__name__=\"lat\",p=\"b\"");
  if (ts && ts->n_histograms == 1) {
    CHECK(bits(ts->histograms[0]->sum) == STALE_BITS);
    CHECK(ts->histograms[0]->zero_threshold == 0.001);
  }
  ts = find(&r, "__name__=\"lat\",p=\"c\"");
  if (ts && ts->n_histograms == 1) {
    CHECK_EQ_INT(ts->histograms[0]->n_positive_spans, 0);
    CHECK_EQ_INT(ts->histograms[0]->schema, 2);
  }
  result_free(&r);
}

/* --- temporality --- */

TEST(delta_and_unspecified_are_dropped_and_counted) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_DELTA, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(r.ws.points, 8);
  CHECK_EQ_INT(r.ws.dropped[OTC_PRW_DROP_DELTA_TEMPORALITY], 7);
  CHECK_EQ_INT(r.ws.dropped[OTC_PRW_DROP_UNSPECIFIED_TEMPORALITY], 1);
  CHECK_EQ_INT(n_series(&r), 0);
  CHECK_EQ_INT(r.ws.n_requests, 0);
  result_free(&r);
}

/* --- settings --- */

TEST(external_labels_and_namespace) {
  struct otc_prw_label ext[] = {{"cluster", "c1"}, {"job", "ext-job"}, {"region", "eu"}};
  struct otc_prw_settings s = defaults();
  s.external_labels = ext;
  s.n_external_labels = 3;
  s.namespace_ = "my-ns";
  struct result r;
  run(IN_EXTERNAL, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  /* An attribute of the same name wins over an external label; job from service.name too. */
  CHECK(value_of(&r, "__name__=\"my_ns_g\",cluster=\"c1\",job=\"svc\"," SCOPE ",region=\"us\"",
                 1) == 1);
  CHECK(value_of(&r, "__name__=\"my_ns_g\",cluster=\"c1\",job=\"ext-job\"," SCOPE ",region=\"eu\"",
                 1) == 2);
  CHECK(value_of(&r,
                 "__name__=\"my_ns_target_info\",cluster=\"c1\",host_name=\"h\",job=\"svc\","
                 "region=\"eu\"",
                 1) == 1);
  /* An external job label identifies the second resource's target_info as well. */
  CHECK(value_of(&r,
                 "__name__=\"my_ns_target_info\",cluster=\"c1\",host_name=\"h2\","
                 "job=\"ext-job\",region=\"eu\"",
                 1) == 1);
  CHECK_EQ_INT(n_series(&r), 4);
  result_free(&r);
}

TEST(resource_to_telemetry_conversion) {
  const char *in = IN_RESOURCE;
  struct otc_prw_settings s = defaults();
  s.target_info = false;
  struct result r;
  s.resource_labels = OTC_PRW_RESOURCE_ALL;
  run(in, &s, &r);
  /* The resource's value wins over the point's, as the reference's conversion copies it over. */
  find(&r, "__name__=\"g\",host_name=\"h1\",job=\"svc\",k8s_pod_name=\"p\"," SCOPE
           ",service_name=\"svc\"");
  result_free(&r);
  s.resource_labels = OTC_PRW_RESOURCE_NO_SERVICE;
  run(in, &s, &r);
  find(&r, "__name__=\"g\",host_name=\"h1\",job=\"svc\",k8s_pod_name=\"p\"," SCOPE);
  result_free(&r);
  const char *inc[] = {"k8s.*"}, *exc[] = {"host.?ame"};
  s.resource_labels = OTC_PRW_RESOURCE_MATCH;
  s.resource_included = inc;
  s.n_resource_included = 1;
  run(in, &s, &r);
  find(&r, "__name__=\"g\",host_name=\"point\",job=\"svc\",k8s_pod_name=\"p\"," SCOPE);
  result_free(&r);
  s.n_resource_included = 0;
  s.resource_excluded = exc;
  s.n_resource_excluded = 1;
  run(in, &s, &r);
  find(&r, "__name__=\"g\",host_name=\"point\",job=\"svc\",k8s_pod_name=\"p\"," SCOPE
           ",service_name=\"svc\"");
  result_free(&r);
}

TEST(without_suffixes) {
  struct otc_prw_settings s = defaults();
  s.add_metric_suffixes = false;
  struct result r;
  run(IN_NO_SUFFIX, &s, &r);
  CHECK(value_of(&r, "__name__=\"http_requests\"", 1) == 3);
  result_free(&r);
}

/* --- series merging, ordering, splitting --- */

TEST(series_merge_sorted_and_deduplicated) {
  struct otc_prw_settings s = defaults();
  struct result r;
  run(IN_MERGE, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(n_series(&r), 2);
  const Prometheus__TimeSeries *ts = find(&r, "__name__=\"g\",job=\"svc\"," SCOPE);
  CHECK(ts && ts->n_samples == 3);
  if (ts && ts->n_samples == 3) {
    CHECK_EQ_INT(ts->samples[0]->timestamp, 1000);
    CHECK(ts->samples[0]->value == 1);
    CHECK_EQ_INT(ts->samples[1]->timestamp, 2000);
    CHECK(ts->samples[1]->value == 2);
    /* Two samples at 3000: the later one in the input is kept. */
    CHECK_EQ_INT(ts->samples[2]->timestamp, 3000);
    CHECK(ts->samples[2]->value == 30);
  }
  /* One target_info sample for the two copies of the resource: the latest. */
  CHECK(value_of(&r, "__name__=\"target_info\",host_name=\"h\",job=\"svc\"", 3000) == 1);
  result_free(&r);
}

TEST(batch_splitting) {
  /* 300 series of ~60 bytes each, cut at 1000 bytes. */
  size_t cap = 300 * 200 + 512, o = 0;
  char *json = malloc(cap);
  o += (size_t)snprintf(json + o, cap - o,
                        "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'g','gauge':{"
                        "'dataPoints':[");
  for (int i = 0; i < 300; i++)
    o += (size_t)snprintf(json + o, cap - o,
                          "%s{'timeUnixNano':'1000000','asDouble':%d,'attributes':[{'key':'i',"
                          "'value':{'intValue':'%d'}}]}",
                          i ? "," : "", i, i);
  snprintf(json + o, cap - o, "]}}]}]}]}");
  struct otc_prw_settings s = defaults();
  s.max_batch_bytes = 1000;
  struct result r;
  run(json, &s, &r);
  free(json);
  CHECK_EQ_INT(r.rc, 0);
  CHECK(r.ws.n_requests > 10);
  CHECK_EQ_INT(n_series(&r), 300);
  CHECK_EQ_INT(r.ws.series, 300);
  for (size_t i = 0; i < r.ws.n_requests; i++) {
    CHECK(r.ws.requests[i].len <= 1000);
    CHECK(r.ws.requests[i].series > 0);
  }
  /* Every series exactly once, whole. */
  bool seen[300] = {false};
  for (size_t i = 0; i < r.n; i++)
    for (size_t j = 0; j < r.req[i]->n_timeseries; j++) {
      const Prometheus__TimeSeries *ts = r.req[i]->timeseries[j];
      CHECK_EQ_INT(ts->n_samples, 1);
      int v = (int)ts->samples[0]->value;
      CHECK(v >= 0 && v < 300 && !seen[v]);
      if (v >= 0 && v < 300)
        seen[v] = true;
    }
  result_free(&r);

  /* The default limit keeps them in one request. */
  s.max_batch_bytes = 0;
  run(IN_ONE_GAUGE, &s, &r);
  CHECK_EQ_INT(r.ws.n_requests, 1);
  result_free(&r);
}

TEST(metadata) {
  struct otc_prw_settings s = defaults();
  s.send_metadata = true;
  struct result r;
  run(IN_METADATA, &s, &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(r.ws.metadata, 2);
  CHECK_EQ_INT(r.n, 2);
  if (r.n == 2) {
    const Prometheus__WriteRequest *m = r.req[1];
    CHECK_EQ_INT(m->n_timeseries, 0);
    CHECK_EQ_INT(m->n_metadata, 2);
    if (m->n_metadata == 2) {
      CHECK_EQ_STR(m->metadata[0]->metric_family_name, "http_requests_total");
      CHECK(m->metadata[0]->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
      CHECK_EQ_STR(m->metadata[0]->help, "All requests");
      CHECK_EQ_STR(m->metadata[1]->metric_family_name, "lat_milliseconds");
      CHECK(m->metadata[1]->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);
      CHECK_EQ_STR(m->metadata[1]->unit, "milliseconds");
    }
  }
  result_free(&r);
}

TEST(invalid_input_and_memory) {
  uint64_t before = otc_mem_held();
  struct otc_prw_settings s = defaults();
  struct otc_prw_write_set ws;
  const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};
  CHECK_EQ_INT(otc_prw_translate(junk, sizeof junk, &s, &ws), OTC_ERR_INVALID);
  CHECK_EQ_INT(ws.n_requests, 0);
  otc_prw_write_set_free(&ws);
  /* An empty request translates to nothing. */
  CHECK_EQ_INT(otc_prw_translate((const uint8_t *)"", 0, &s, &ws), 0);
  CHECK_EQ_INT(ws.n_requests, 0);
  otc_prw_write_set_free(&ws);
  /* Memory charged for the requests is released with them. */
  struct result r;
  run(IN_ONE_GAUGE, &s, &r);
  CHECK(otc_mem_held() > before);
  result_free(&r);
  CHECK_EQ_INT(otc_mem_held(), before);
}

int main(void) {
  RUN(metric_names);
  RUN(label_and_unit_names);
  RUN(float_format);
  RUN(gauge_counter_updown_and_target_info);
  RUN(label_rules);
  RUN(json_and_invalid_utf8_values);
  RUN(scope_attributes_and_disable_scope_info);
  RUN(invalid_label_drops_point);
  RUN(histogram);
  RUN(summary_and_staleness);
  RUN(exponential_histogram_layouts);
  RUN(exponential_histogram_edges);
  RUN(delta_and_unspecified_are_dropped_and_counted);
  RUN(external_labels_and_namespace);
  RUN(resource_to_telemetry_conversion);
  RUN(without_suffixes);
  RUN(series_merge_sorted_and_deduplicated);
  RUN(batch_splitting);
  RUN(metadata);
  RUN(invalid_input_and_memory);
  return TEST_REPORT();
}
