/* The loki exporter: the OTLP → push translation (labels, name sanitizing, level, line, structured
 * metadata, logfmt mode, streams, order, timestamps, JSON form) through otc_loki__encode, and the
 * component end to end against a libmicrohttpd "Loki" in this test that snappy-decompresses and
 * unpacks each PushRequest (or parses the JSON form), including 429-then-200 and 400. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <snappy-c.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/batch.h"
#include "core/component.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "loki/loki_encode.h"
#include "test.h"

#include "loki/push.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

extern const struct otc_component_ops otc_exporter_loki;

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;

#define MS 1000000LL

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* --- building OTLP requests (everything freed by tfree at the end of a test) --- */

static void **allocs;
static size_t n_allocs, cap_allocs;

static void *talloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p)
    abort();
  if (n_allocs == cap_allocs) {
    cap_allocs = cap_allocs ? cap_allocs * 2 : 256;
    allocs = realloc(allocs, cap_allocs * sizeof *allocs);
    if (!allocs)
      abort();
  }
  allocs[n_allocs++] = p;
  return p;
}

static void tfree(void) {
  for (size_t i = 0; i < n_allocs; i++)
    free(allocs[i]);
  free(allocs);
  allocs = NULL;
  n_allocs = cap_allocs = 0;
}

static char *tstr(const char *s) {
  char *p = talloc(strlen(s) + 1);
  memcpy(p, s, strlen(s) + 1);
  return p;
}

static void *tcopy(const void *src, size_t n) {
  void *p = talloc(n);
  if (n)
    memcpy(p, src, n);
  return p;
}

static AnyValue *v_new(int c) {
  AnyValue *v = talloc(sizeof *v);
  opentelemetry__proto__common__v1__any_value__init(v);
  v->value_case = c;
  return v;
}

static AnyValue *v_str(const char *s) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
  v->string_value = tstr(s);
  return v;
}

static AnyValue *v_int(int64_t i) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
  v->int_value = i;
  return v;
}

static AnyValue *v_double(double d) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
  v->double_value = d;
  return v;
}

static AnyValue *v_bool(bool b) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
  v->bool_value = b;
  return v;
}

static AnyValue *v_bytes(const void *d, size_t n) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
  v->bytes_value.data = tcopy(d, n);
  v->bytes_value.len = n;
  return v;
}

static AnyValue *v_arr(size_t n, AnyValue **items) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
  v->array_value = talloc(sizeof *v->array_value);
  opentelemetry__proto__common__v1__array_value__init(v->array_value);
  v->array_value->n_values = n;
  v->array_value->values = tcopy(items, n * sizeof *items);
  return v;
}

static AnyValue *v_map(size_t n, KeyValue **kvs) {
  AnyValue *v = v_new(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
  v->kvlist_value = talloc(sizeof *v->kvlist_value);
  opentelemetry__proto__common__v1__key_value_list__init(v->kvlist_value);
  v->kvlist_value->n_values = n;
  v->kvlist_value->values = tcopy(kvs, n * sizeof *kvs);
  return v;
}

static KeyValue *kv(const char *k, AnyValue *v) {
  KeyValue *p = talloc(sizeof *p);
  opentelemetry__proto__common__v1__key_value__init(p);
  p->key = tstr(k);
  p->value = v;
  return p;
}

#define LIST(T, ...)                                                                               \
  (sizeof((T[]){__VA_ARGS__}) / sizeof(T)), (T[]) {                                                \
    __VA_ARGS__                                                                                    \
  }
#define KVS(...) LIST(KeyValue *, __VA_ARGS__)
#define ATTRS(...)                                                                                 \
  .n_attrs = sizeof((KeyValue *[]){__VA_ARGS__}) / sizeof(KeyValue *), .attrs = (KeyValue *[]) {   \
    __VA_ARGS__                                                                                    \
  }
#define VALS(...) LIST(AnyValue *, __VA_ARGS__)
#define RECS(...) LIST(LogRecord *, __VA_ARGS__)
#define SCOPES(...) LIST(ScopeLogs *, __VA_ARGS__)
#define RESOURCES(...) LIST(ResourceLogs *, __VA_ARGS__)

struct rspec {
  uint64_t ts, obs;
  int sev;
  const char *sevtext;
  AnyValue *body;
  size_t n_attrs;
  KeyValue **attrs;
  const uint8_t *trace_id, *span_id;
  uint32_t flags;
};

static LogRecord *rec(struct rspec s) {
  LogRecord *r = talloc(sizeof *r);
  opentelemetry__proto__logs__v1__log_record__init(r);
  r->time_unix_nano = s.ts;
  r->observed_time_unix_nano = s.obs;
  r->severity_number = s.sev;
  if (s.sevtext)
    r->severity_text = tstr(s.sevtext);
  r->body = s.body;
  r->n_attributes = s.n_attrs;
  r->attributes = s.n_attrs ? tcopy(s.attrs, s.n_attrs * sizeof *s.attrs) : NULL;
  if (s.trace_id) {
    r->trace_id.data = tcopy(s.trace_id, 16);
    r->trace_id.len = 16;
  }
  if (s.span_id) {
    r->span_id.data = tcopy(s.span_id, 8);
    r->span_id.len = 8;
  }
  r->flags = s.flags;
  return r;
}

static ScopeLogs *scope(const char *name, const char *version, size_t n_attrs, KeyValue **attrs,
                        size_t n, LogRecord **recs) {
  ScopeLogs *sl = talloc(sizeof *sl);
  opentelemetry__proto__logs__v1__scope_logs__init(sl);
  if (name || n_attrs) {
    sl->scope = talloc(sizeof *sl->scope);
    opentelemetry__proto__common__v1__instrumentation_scope__init(sl->scope);
    if (name)
      sl->scope->name = tstr(name);
    if (version)
      sl->scope->version = tstr(version);
    sl->scope->n_attributes = n_attrs;
    sl->scope->attributes = n_attrs ? tcopy(attrs, n_attrs * sizeof *attrs) : NULL;
  }
  sl->n_log_records = n;
  sl->log_records = n ? tcopy(recs, n * sizeof *recs) : NULL;
  return sl;
}

static ResourceLogs *resource(size_t n_attrs, KeyValue **attrs, size_t n, ScopeLogs **scopes) {
  ResourceLogs *rl = talloc(sizeof *rl);
  opentelemetry__proto__logs__v1__resource_logs__init(rl);
  rl->resource = talloc(sizeof *rl->resource);
  opentelemetry__proto__resource__v1__resource__init(rl->resource);
  rl->resource->n_attributes = n_attrs;
  rl->resource->attributes = n_attrs ? tcopy(attrs, n_attrs * sizeof *attrs) : NULL;
  rl->n_scope_logs = n;
  rl->scope_logs = n ? tcopy(scopes, n * sizeof *scopes) : NULL;
  return rl;
}

static uint8_t *request(size_t n, ResourceLogs **rls, size_t *len) {
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req;
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(&req);
  req.n_resource_logs = n;
  req.resource_logs = rls;
  *len =
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
  uint8_t *p = talloc(*len);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, p);
  return p;
}

/* A request of one resource with one scope "lib" holding the given records. */
static uint8_t *simple(size_t n_res_attrs, KeyValue **res_attrs, size_t n, LogRecord **recs,
                       size_t *len) {
  ScopeLogs *sl = scope(NULL, NULL, 0, NULL, n, recs);
  ResourceLogs *rl = resource(n_res_attrs, res_attrs, 1, &sl);
  return request(1, &rl, len);
}

/* --- decoding what the encoder wrote --- */

static struct loki_mapping_cfg mapping(void) {
  struct loki_mapping_cfg m = {
      .resource_labels = otc_loki_default_resource_labels,
      .n_resource_labels = otc_loki_default_resource_labels_count,
      .level_label = true,
      .structured_metadata = true,
      .now_ns = 0,
  };
  return m;
}

static Logproto__PushRequest *encode_pb(const uint8_t *req, size_t len,
                                        const struct loki_mapping_cfg *m, size_t *n_entries) {
  uint8_t *out = NULL;
  size_t out_len = 0;
  int rc = otc_loki__encode(req, len, m, OTC_LOKI_FORMAT_PROTOBUF, &out, &out_len, n_entries);
  CHECK_EQ_INT(rc, 0);
  if (rc != 0)
    return NULL;
  Logproto__PushRequest *p = logproto__push_request__unpack(NULL, out_len, out);
  CHECK(p != NULL);
  /* The encoder writes the wire form itself: it must be byte for byte what protobuf-c packs. */
  if (p) {
    size_t n = logproto__push_request__get_packed_size(p);
    uint8_t *again = malloc(n ? n : 1);
    CHECK(again != NULL);
    if (again) {
      CHECK_EQ_INT(logproto__push_request__pack(p, again), out_len);
      CHECK(n == out_len && memcmp(again, out, n) == 0);
    }
    free(again);
  }
  free(out);
  return p;
}

static void pb_free(Logproto__PushRequest *p) {
  if (p)
    logproto__push_request__free_unpacked(p, NULL);
}

static Logproto__StreamAdapter *find_stream(const Logproto__PushRequest *p, const char *labels) {
  for (size_t i = 0; p && i < p->n_streams; i++)
    if (strcmp(p->streams[i]->labels, labels) == 0)
      return p->streams[i];
  return NULL;
}

/* The stream selector of the entry whose line is `line`, and the entry itself. */
static const char *stream_of_line(const Logproto__PushRequest *p, const char *line,
                                  const Logproto__EntryAdapter **entry) {
  for (size_t i = 0; p && i < p->n_streams; i++)
    for (size_t k = 0; k < p->streams[i]->n_entries; k++)
      if (strcmp(p->streams[i]->entries[k]->line, line) == 0) {
        if (entry)
          *entry = p->streams[i]->entries[k];
        return p->streams[i]->labels;
      }
  return NULL;
}

static const char *md(const Logproto__EntryAdapter *e, const char *name) {
  for (size_t i = 0; e && i < e->n_structuredmetadata; i++)
    if (strcmp(e->structuredmetadata[i]->name, name) == 0)
      return e->structuredmetadata[i]->value;
  return NULL;
}

static uint64_t ts_of(const Logproto__EntryAdapter *e) {
  return e && e->timestamp
             ? (uint64_t)e->timestamp->seconds * 1000000000u + (uint64_t)e->timestamp->nanos
             : 0;
}

static const uint8_t trace_id[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                     0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t span_id[8] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18};

/* --- translation --- */

TEST(default_labels_and_structured_metadata) {
  LogRecord *r = rec((struct rspec){
      .ts = 1700000000123456789ULL,
      .obs = 1700000000999999999ULL,
      .sev = 17,
      .sevtext = "ERROR",
      .body = v_str("boom"),
      ATTRS(kv("http.method", v_str("GET")), kv("user.id", v_int(7))),
      .trace_id = trace_id,
      .span_id = span_id,
      .flags = 1,
  });
  ScopeLogs *sl = scope("lib", "1.2", KVS(kv("scope.attr", v_str("s"))), 1, &r);
  ResourceLogs *rl =
      resource(KVS(kv("service.name", v_str("api")), kv("service.namespace", v_str("shop")),
                   kv("deployment.environment", v_str("prod")), kv("k8s.pod.name", v_str("pod-1")),
                   kv("host.name", v_str("h1")), kv("process.pid", v_int(42))),
               1, &sl);
  size_t len, n = 0;
  uint8_t *req = request(1, &rl, &len);
  struct loki_mapping_cfg m = mapping();
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(p ? p->n_streams : 0, 1);
  Logproto__StreamAdapter *s =
      find_stream(p, "{deployment_environment=\"prod\", k8s_pod_name=\"pod-1\", level=\"error\", "
                     "service_name=\"api\", service_namespace=\"shop\"}");
  CHECK(s != NULL);
  if (s && s->n_entries == 1) {
    const Logproto__EntryAdapter *e = s->entries[0];
    CHECK_EQ_STR(e->line, "boom");
    CHECK_EQ_INT(e->timestamp->seconds, 1700000000);
    CHECK_EQ_INT(e->timestamp->nanos, 123456789);
    /* Loki's order: record attributes, record fields, resource attributes, scope. */
    CHECK_EQ_INT(e->n_structuredmetadata, 13);
    CHECK_EQ_STR(e->structuredmetadata[0]->name, "http_method");
    CHECK_EQ_STR(md(e, "http_method"), "GET");
    CHECK_EQ_STR(md(e, "user_id"), "7");
    CHECK_EQ_STR(md(e, "observed_timestamp"), "1700000000999999999");
    CHECK_EQ_STR(md(e, "severity_number"), "17");
    CHECK_EQ_STR(md(e, "severity_text"), "ERROR");
    CHECK_EQ_STR(md(e, "flags"), "1");
    CHECK_EQ_STR(md(e, "trace_id"), "0102030405060708090a0b0c0d0e0f10");
    CHECK_EQ_STR(md(e, "span_id"), "a1b2c3d4e5f60718");
    CHECK_EQ_STR(e->structuredmetadata[8]->name, "host_name");
    CHECK_EQ_STR(md(e, "host_name"), "h1");
    CHECK_EQ_STR(md(e, "process_pid"), "42");
    CHECK_EQ_STR(md(e, "scope_attr"), "s");
    CHECK_EQ_STR(md(e, "scope_name"), "lib");
    CHECK_EQ_STR(md(e, "scope_version"), "1.2");
    CHECK(md(e, "service_name") == NULL);
    CHECK(md(e, "k8s_pod_name") == NULL);
  }
  pb_free(p);
  tfree();
}

TEST(label_name_sanitizing) {
  LogRecord *r = rec((struct rspec){.ts = 1, .body = v_str("x")});
  size_t len, n;
  uint8_t *req =
      simple(KVS(kv("my.label-x", v_str("v")), kv("1abc", v_str("v")), kv("_priv", v_str("v")),
                 kv("__reserved", v_str("v")), kv("\xc3\xbcn\xc3\xaf", v_str("v")),
                 kv("a/b c", v_str("v")), kv("not.listed", v_str("v"))),
             1, &r, &len);
  static const char *const names[] = {"my.label-x",        "1abc", "_priv", "__reserved",
                                      "\xc3\xbcn\xc3\xaf", "a/b c"};
  struct loki_mapping_cfg m = mapping();
  m.resource_labels = names;
  m.n_resource_labels = 6;
  m.level_label = false;
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_STR(p && p->n_streams ? p->streams[0]->labels : NULL,
               "{a_b_c=\"v\", key_1abc=\"v\", key__reserved=\"v\", key_n_=\"v\", key_priv=\"v\", "
               "my_label_x=\"v\", service_name=\"unknown_service\"}");
  const Logproto__EntryAdapter *e = p && p->n_streams ? p->streams[0]->entries[0] : NULL;
  CHECK_EQ_STR(md(e, "not_listed"), "v");
  pb_free(p);
  tfree();
}

TEST(label_values_stringified_and_escaped) {
  LogRecord *r = rec((struct rspec){.ts = 1, .body = v_str("x")});
  size_t len, n;
  uint8_t *req = simple(
      KVS(kv("i", v_int(-5)), kv("d", v_double(1.5)), kv("b", v_bool(true)),
          kv("arr", v_arr(VALS(v_int(1), v_str("a")))),
          kv("m", v_map(KVS(kv("x", v_str("1")), kv("y", v_map(KVS(kv("z", v_int(2)))))))),
          kv("bytes", v_bytes("hi", 2)), kv("q", v_str("say \"hi\"\\\n")), kv("e", v_str(""))),
      1, &r, &len);
  static const char *const names[] = {"i", "d", "b", "arr", "m", "bytes", "q", "e"};
  struct loki_mapping_cfg m = mapping();
  m.resource_labels = names;
  m.n_resource_labels = 8;
  m.level_label = false;
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  /* Maps are flattened as Loki does; the empty value makes no label. */
  CHECK_EQ_STR(p && p->n_streams ? p->streams[0]->labels : NULL,
               "{arr=\"[1,\\\"a\\\"]\", b=\"true\", bytes=\"aGk=\", d=\"1.5\", i=\"-5\", "
               "m_x=\"1\", m_y_z=\"2\", q=\"say \\\"hi\\\"\\\\\\n\", "
               "service_name=\"unknown_service\"}");
  pb_free(p);
  tfree();
}

TEST(service_name_discovery_and_fallback) {
  LogRecord *r1 = rec((struct rspec){.ts = 1, .body = v_str("a")});
  LogRecord *r2 = rec((struct rspec){.ts = 2, .body = v_str("b")});
  LogRecord *r3 = rec((struct rspec){.ts = 3, .body = v_str("c")});
  ScopeLogs *s1 = scope(NULL, NULL, 0, NULL, 1, &r1);
  ScopeLogs *s2 = scope(NULL, NULL, 0, NULL, 1, &r2);
  ScopeLogs *s3 = scope(NULL, NULL, 0, NULL, 1, &r3);
  size_t len, n;
  uint8_t *req = request(
      RESOURCES(resource(KVS(kv("k8s.container.name", v_str("web"))), 1, &s1),
                resource(KVS(kv("service.name", v_str("")), kv("host.name", v_str("h"))), 1, &s2),
                resource(0, NULL, 1, &s3)),
      &len);
  struct loki_mapping_cfg m = mapping();
  m.level_label = false;
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(n, 3);
  CHECK_EQ_STR(stream_of_line(p, "a", NULL), "{k8s_container_name=\"web\", service_name=\"web\"}");
  /* An empty service.name counts as none; both other resources share the fallback stream. */
  CHECK_EQ_STR(stream_of_line(p, "b", NULL), "{service_name=\"unknown_service\"}");
  CHECK_EQ_STR(stream_of_line(p, "c", NULL), "{service_name=\"unknown_service\"}");
  CHECK_EQ_INT(p ? p->n_streams : 0, 2);
  pb_free(p);
  tfree();
}

TEST(level_mapping) {
  struct {
    int sev;
    const char *text, *line, *level;
  } cases[] = {
      {1, NULL, "s1", "trace"},       {4, NULL, "s4", "trace"},
      {5, NULL, "s5", "debug"},       {9, "whatever", "s9", "info"},
      {13, NULL, "s13", "warn"},      {17, NULL, "s17", "error"},
      {21, NULL, "s21", "fatal"},     {24, NULL, "s24", "fatal"},
      {0, "WARNING", "t1", "warn"},   {0, "Err", "t2", "error"},
      {0, "CRITICAL", "t3", "fatal"}, {0, "Notice", "t4", "notice"},
      {0, "dbg", "t5", "debug"},      {0, NULL, "t6", "unknown"},
      {30, NULL, "t7", "unknown"},    {0, "Information", "t8", "info"},
  };
  size_t nc = sizeof cases / sizeof cases[0];
  LogRecord *recs[sizeof cases / sizeof cases[0]];
  for (size_t i = 0; i < nc; i++)
    recs[i] = rec((struct rspec){
        .ts = i + 1, .sev = cases[i].sev, .sevtext = cases[i].text, .body = v_str(cases[i].line)});
  size_t len, n;
  uint8_t *req = simple(KVS(kv("service.name", v_str("svc"))), nc, recs, &len);
  struct loki_mapping_cfg m = mapping();
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(n, nc);
  for (size_t i = 0; i < nc; i++) {
    char want[128];
    snprintf(want, sizeof want, "{level=\"%s\", service_name=\"svc\"}", cases[i].level);
    CHECK_EQ_STR(stream_of_line(p, cases[i].line, NULL), want);
  }
  pb_free(p);

  /* Off: no level label, and all records share one stream. */
  m.level_label = false;
  p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(p ? p->n_streams : 0, 1);
  CHECK_EQ_STR(stream_of_line(p, "s1", NULL), "{service_name=\"svc\"}");
  pb_free(p);
  tfree();
}

TEST(record_labels) {
  LogRecord *r = rec((struct rspec){
      .ts = 1,
      .sev = 9,
      .body = v_str("x"),
      ATTRS(kv("tenant", v_str("acme")), kv("level", v_str("custom")), kv("other", v_str("o"))),
  });
  size_t len, n;
  uint8_t *req = simple(KVS(kv("service.name", v_str("svc"))), 1, &r, &len);
  static const char *const names[] = {"tenant", "level"};
  struct loki_mapping_cfg m = mapping();
  m.record_labels = names;
  m.n_record_labels = 2;
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  const Logproto__EntryAdapter *e = NULL;
  /* A record attribute named level wins over the severity. */
  CHECK_EQ_STR(stream_of_line(p, "x", &e),
               "{level=\"custom\", service_name=\"svc\", tenant=\"acme\"}");
  CHECK_EQ_STR(md(e, "other"), "o");
  CHECK(md(e, "tenant") == NULL);
  CHECK(md(e, "level") == NULL);
  pb_free(p);
  tfree();
}

TEST(line_from_body) {
  static const uint8_t raw[] = {0xff, 0x00};
  AnyValue *bodies[] = {
      v_str("plain \"text\""),
      v_int(42),
      v_double(0.1),
      v_double(1e21),
      v_double(1.5e-7),
      v_double(100.0),
      v_bool(false),
      v_map(KVS(kv("b", v_int(1)), kv("a", v_str("x\n")),
                kv("n", v_map(KVS(kv("z", v_bool(true))))), kv("e", v_arr(0, NULL)))),
      v_arr(VALS(v_int(1), v_double(2.5), v_str("s"), v_new(0), v_bytes(raw, 2))),
      v_bytes(raw, 2),
      NULL,
      v_str("a\xff"
            "b"),
  };
  static const char *const want[] = {
      "plain \"text\"",
      "42",
      "0.1",
      "1e+21",
      "1.5e-7",
      "100",
      "false",
      "{\"a\":\"x\\n\",\"b\":1,\"e\":[],\"n\":{\"z\":true}}",
      "[1,2.5,\"s\",null,\"/wA=\"]",
      "/wA=",
      "",
      "a\xEF\xBF\xBD"
      "b",
  };
  size_t nb = sizeof bodies / sizeof bodies[0];
  LogRecord *recs[sizeof bodies / sizeof bodies[0]];
  for (size_t i = 0; i < nb; i++)
    recs[i] = rec((struct rspec){.ts = 100 + i, .body = bodies[i]});
  size_t len, n;
  uint8_t *req = simple(KVS(kv("service.name", v_str("svc"))), nb, recs, &len);
  struct loki_mapping_cfg m = mapping();
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(p ? p->n_streams : 0, 1);
  if (p && p->n_streams == 1 && p->streams[0]->n_entries == nb) {
    for (size_t i = 0; i < nb; i++) {
      CHECK_EQ_STR(p->streams[0]->entries[i]->line, want[i]);
      CHECK_EQ_INT(ts_of(p->streams[0]->entries[i]), 100 + i);
    }
  } else {
    CHECK(false);
  }
  pb_free(p);
  tfree();
}

TEST(logfmt_mode) {
  LogRecord *r1 = rec((struct rspec){
      .ts = 1,
      .sev = 9,
      .body = v_str("hello"),
      ATTRS(kv("user", v_str("a b")), kv("n", v_int(1)), kv("eq", v_str("x=y")),
            kv("empty", v_str(""))),
      .trace_id = trace_id,
  });
  LogRecord *r2 = rec((struct rspec){.ts = 2, .sev = 9, ATTRS(kv("only", v_str("q\"t")))});
  ScopeLogs *sl = scope("lib", NULL, 0, NULL, RECS(r1, r2));
  size_t len, n;
  uint8_t *req =
      request(RESOURCES(resource(KVS(kv("service.name", v_str("svc")), kv("host.name", v_str("h"))),
                                 1, &sl)),
              &len);
  struct loki_mapping_cfg m = mapping();
  m.structured_metadata = false;
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  const Logproto__EntryAdapter *e = NULL;
  CHECK(stream_of_line(p,
                       "hello user=\"a b\" n=1 eq=\"x=y\" empty= severity_number=9 "
                       "trace_id=0102030405060708090a0b0c0d0e0f10 host_name=h scope_name=lib",
                       &e) != NULL);
  CHECK_EQ_INT(e ? e->n_structuredmetadata : 99, 0);
  /* Without a body the pairs start the line. */
  CHECK(stream_of_line(p, "only=\"q\\\"t\" severity_number=9 host_name=h scope_name=lib", &e) !=
        NULL);
  pb_free(p);
  tfree();
}

TEST(streams_grouped_and_entries_ordered) {
  LogRecord *a = rec((struct rspec){.ts = 30, .sev = 9, .body = v_str("a30")});
  LogRecord *b = rec((struct rspec){.ts = 10, .sev = 9, .body = v_str("a10")});
  LogRecord *c = rec((struct rspec){.ts = 20, .sev = 17, .body = v_str("err")});
  LogRecord *d = rec((struct rspec){.ts = 20, .sev = 9, .body = v_str("a20")});
  LogRecord *e = rec((struct rspec){.ts = 20, .sev = 10, .body = v_str("b20")});
  LogRecord *f = rec((struct rspec){.ts = 5, .sev = 11, .body = v_str("b5")});
  ScopeLogs *s1 = scope("one", NULL, 0, NULL, RECS(a, b, c, d));
  ScopeLogs *s2 = scope("two", NULL, 0, NULL, RECS(e));
  ScopeLogs *s3 = scope("three", NULL, 0, NULL, RECS(f));
  size_t len, n;
  uint8_t *req =
      request(RESOURCES(resource(KVS(kv("service.name", v_str("api"))), SCOPES(s1, s2)),
                        resource(KVS(kv("service.name", v_str("api")), kv("host.name", v_str("x"))),
                                 SCOPES(s3))),
              &len);
  struct loki_mapping_cfg m = mapping();
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(n, 6);
  CHECK_EQ_INT(p ? p->n_streams : 0, 2);
  Logproto__StreamAdapter *info = find_stream(p, "{level=\"info\", service_name=\"api\"}");
  Logproto__StreamAdapter *err = find_stream(p, "{level=\"error\", service_name=\"api\"}");
  CHECK(info && err);
  if (info && info->n_entries == 5) {
    static const char *const order[] = {"b5", "a10", "a20", "b20", "a30"};
    for (size_t i = 0; i < 5; i++)
      CHECK_EQ_STR(info->entries[i]->line, order[i]);
    /* Metadata stays with its entry through the sort. */
    CHECK_EQ_STR(md(info->entries[0], "host_name"), "x");
    CHECK_EQ_STR(md(info->entries[0], "scope_name"), "three");
    CHECK_EQ_STR(md(info->entries[3], "scope_name"), "two");
    CHECK(md(info->entries[3], "host_name") == NULL);
  } else {
    CHECK(false);
  }
  CHECK_EQ_INT(err ? err->n_entries : 0, 1);
  pb_free(p);
  tfree();
}

TEST(timestamp_fallbacks) {
  LogRecord *a = rec((struct rspec){.ts = 0, .obs = 77, .body = v_str("obs")});
  LogRecord *b = rec((struct rspec){.ts = 0, .obs = 0, .body = v_str("now")});
  LogRecord *c = rec((struct rspec){.ts = 55, .obs = 0, .body = v_str("ts")});
  size_t len, n;
  uint8_t *req = simple(KVS(kv("service.name", v_str("svc"))), RECS(a, b, c), &len);
  struct loki_mapping_cfg m = mapping();
  m.now_ns = 1234567890123456789LL;
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  const Logproto__EntryAdapter *e = NULL;
  stream_of_line(p, "obs", &e);
  CHECK_EQ_INT(ts_of(e), 77);
  CHECK(md(e, "observed_timestamp") == NULL);
  e = NULL;
  stream_of_line(p, "now", &e);
  CHECK_EQ_INT(ts_of(e), 1234567890123456789LL);
  e = NULL;
  stream_of_line(p, "ts", &e);
  CHECK_EQ_INT(ts_of(e), 55);
  CHECK(md(e, "observed_timestamp") == NULL);
  pb_free(p);

  /* With the wall clock: between the times before and after the call. */
  m.now_ns = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_REALTIME, &t0);
  p = encode_pb(req, len, &m, &n);
  clock_gettime(CLOCK_REALTIME, &t1);
  e = NULL;
  stream_of_line(p, "now", &e);
  uint64_t lo = (uint64_t)t0.tv_sec * 1000000000u + (uint64_t)t0.tv_nsec;
  uint64_t hi = (uint64_t)t1.tv_sec * 1000000000u + (uint64_t)t1.tv_nsec;
  CHECK(ts_of(e) >= lo && ts_of(e) <= hi);
  pb_free(p);
  tfree();
}

TEST(invalid_and_empty_input) {
  struct loki_mapping_cfg m = mapping();
  uint8_t *out = (uint8_t *)1;
  size_t out_len = 1, n = 1;
  static const uint8_t garbage[] = {0x0a, 0x10, 0x01};
  CHECK_EQ_INT(
      otc_loki__encode(garbage, sizeof garbage, &m, OTC_LOKI_FORMAT_PROTOBUF, &out, &out_len, &n),
      OTC_ERR_INVALID);
  CHECK(out == NULL);

  /* An empty request and one without records give an empty push. */
  CHECK_EQ_INT(otc_loki__encode(NULL, 0, &m, OTC_LOKI_FORMAT_PROTOBUF, &out, &out_len, &n), 0);
  CHECK_EQ_INT(n, 0);
  Logproto__PushRequest *p = logproto__push_request__unpack(NULL, out_len, out);
  CHECK(p && p->n_streams == 0);
  pb_free(p);
  free(out);
  size_t len;
  uint8_t *req = simple(KVS(kv("service.name", v_str("svc"))), 0, NULL, &len);
  CHECK_EQ_INT(otc_loki__encode(req, len, &m, OTC_LOKI_FORMAT_PROTOBUF, &out, &out_len, &n), 0);
  CHECK_EQ_INT(n, 0);
  free(out);

  /* Nesting past the wire scan's limit is refused before protobuf-c sees it. */
  AnyValue *deep = v_str("leaf");
  for (int i = 0; i < 200; i++)
    deep = v_arr(1, &deep);
  LogRecord *r = rec((struct rspec){.ts = 1, .body = deep});
  req = simple(0, NULL, 1, &r, &len);
  CHECK_EQ_INT(otc_loki__encode(req, len, &m, OTC_LOKI_FORMAT_PROTOBUF, &out, &out_len, &n),
               OTC_ERR_INVALID);
  CHECK(out == NULL);
  tfree();
}

TEST(memory_released) {
  uint64_t held0 = otc_mem_held();
  LogRecord *recs[300];
  for (int i = 0; i < 300; i++)
    recs[i] = rec((struct rspec){.ts = (uint64_t)(300 - i),
                                 .sev = 1 + i % 24,
                                 .body = v_str("a somewhat longer line to fill the arena"),
                                 ATTRS(kv("i", v_int(i)), kv("k", v_str("v")))});
  size_t len, n;
  uint8_t *req = simple(KVS(kv("service.name", v_str("svc"))), 300, recs, &len);
  struct loki_mapping_cfg m = mapping();
  Logproto__PushRequest *p = encode_pb(req, len, &m, &n);
  CHECK_EQ_INT(n, 300);
  CHECK_EQ_INT(p ? p->n_streams : 0, 6);
  CHECK_EQ_INT(otc_mem_held(), held0);
  pb_free(p);
  tfree();
}

TEST(json_format) {
  LogRecord *r1 = rec((struct rspec){
      .ts = 1700000000000000001ULL,
      .sev = 13,
      .body = v_map(KVS(kv("msg", v_str("hi")))),
      ATTRS(kv("k", v_str("v"))),
      .trace_id = trace_id,
  });
  LogRecord *r2 = rec((struct rspec){.ts = 1700000000000000000ULL, .sev = 13, .body = v_str("l2")});
  size_t len, n;
  uint8_t *req = simple(KVS(kv("service.name", v_str("api"))), RECS(r1, r2), &len);
  struct loki_mapping_cfg m = mapping();
  uint8_t *out = NULL;
  size_t out_len = 0;
  CHECK_EQ_INT(otc_loki__encode(req, len, &m, OTC_LOKI_FORMAT_JSON, &out, &out_len, &n), 0);
  CHECK_EQ_INT(n, 2);
  json_error_t jerr;
  json_t *root = out ? json_loadb((const char *)out, out_len, 0, &jerr) : NULL;
  CHECK(root != NULL);
  json_t *streams = json_object_get(root, "streams");
  CHECK_EQ_INT(json_array_size(streams), 1);
  json_t *s = json_array_get(streams, 0);
  json_t *labels = json_object_get(s, "stream");
  CHECK_EQ_INT(json_object_size(labels), 2);
  CHECK_EQ_STR(json_string_value(json_object_get(labels, "service_name")), "api");
  CHECK_EQ_STR(json_string_value(json_object_get(labels, "level")), "warn");
  json_t *values = json_object_get(s, "values");
  CHECK_EQ_INT(json_array_size(values), 2);
  json_t *v0 = json_array_get(values, 0), *v1 = json_array_get(values, 1);
  CHECK_EQ_STR(json_string_value(json_array_get(v0, 0)), "1700000000000000000");
  CHECK_EQ_STR(json_string_value(json_array_get(v0, 1)), "l2");
  CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(v0, 2), "severity_number")), "13");
  CHECK_EQ_STR(json_string_value(json_array_get(v1, 0)), "1700000000000000001");
  CHECK_EQ_STR(json_string_value(json_array_get(v1, 1)), "{\"msg\":\"hi\"}");
  json_t *md1 = json_array_get(v1, 2);
  CHECK_EQ_STR(json_string_value(json_object_get(md1, "k")), "v");
  CHECK_EQ_STR(json_string_value(json_object_get(md1, "trace_id")),
               "0102030405060708090a0b0c0d0e0f10");
  json_decref(root);
  free(out);

  /* Without metadata an entry is the two-element form. */
  m.structured_metadata = false;
  CHECK_EQ_INT(otc_loki__encode(req, len, &m, OTC_LOKI_FORMAT_JSON, &out, &out_len, &n), 0);
  root = out ? json_loadb((const char *)out, out_len, 0, &jerr) : NULL;
  values = json_object_get(json_array_get(json_object_get(root, "streams"), 0), "values");
  CHECK_EQ_INT(json_array_size(json_array_get(values, 0)), 2);
  CHECK_EQ_STR(json_string_value(json_array_get(json_array_get(values, 0), 1)),
               "l2 severity_number=13");
  json_decref(root);
  free(out);
  tfree();
}

/* --- end to end: a Loki push endpoint in this process --- */

struct loki_server {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  int statuses[8]; /* the answer to the i-th request; 200 past the end */
  int n_statuses;
  int requests;
  int decode_errors;
  char path[128], content_type[64], content_encoding[32], org[64];
  Logproto__PushRequest *last_pb; /* of the last request answered 2xx */
  json_t *last_json;
  size_t delivered_entries; /* over requests answered 2xx */
};

struct upload {
  uint8_t *data;
  size_t len, cap;
};

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    return NULL;
  size_t cap = len * 4 + 1024;
  uint8_t *out = malloc(cap);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  int rc = Z_OK;
  while (out && rc == Z_OK) {
    if (zs.total_out == cap) {
      cap *= 2;
      uint8_t *n = realloc(out, cap);
      if (!n) {
        free(out);
        out = NULL;
        break;
      }
      out = n;
    }
    zs.next_out = out + zs.total_out;
    zs.avail_out = (uInt)(cap - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
  }
  *out_len = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    free(out);
    return NULL;
  }
  return out;
}

static size_t count_entries_pb(const Logproto__PushRequest *p) {
  size_t n = 0;
  for (size_t i = 0; i < p->n_streams; i++)
    n += p->streams[i]->n_entries;
  return n;
}

static size_t count_entries_json(json_t *root) {
  size_t n = 0, i;
  json_t *s;
  json_array_foreach(json_object_get(root, "streams"), i, s) n +=
      json_array_size(json_object_get(s, "values"));
  return n;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  struct loki_server *s = cls;
  struct upload *u = *con_cls;
  (void)method;
  (void)version;
  if (!u) {
    u = calloc(1, sizeof *u);
    *con_cls = u;
    return u ? MHD_YES : MHD_NO;
  }
  if (*upload_data_size) {
    if (u->len + *upload_data_size > u->cap) {
      size_t ncap = (u->len + *upload_data_size) * 2;
      uint8_t *n = realloc(u->data, ncap);
      if (!n)
        return MHD_NO;
      u->data = n;
      u->cap = ncap;
    }
    memcpy(u->data + u->len, upload_data, *upload_data_size);
    u->len += *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
  const char *org = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Scope-OrgID");
  /* Decode as Loki does: snappy protobuf, or JSON (plain or gzip). */
  Logproto__PushRequest *pb = NULL;
  json_t *js = NULL;
  if (ce && strcmp(ce, "snappy") == 0) {
    size_t n = 0;
    if (snappy_uncompressed_length((const char *)u->data, u->len, &n) == SNAPPY_OK) {
      char *raw = malloc(n ? n : 1);
      if (raw && snappy_uncompress((const char *)u->data, u->len, raw, &n) == SNAPPY_OK)
        pb = logproto__push_request__unpack(NULL, n, (const uint8_t *)raw);
      free(raw);
    }
  } else {
    size_t n = u->len;
    uint8_t *raw = NULL;
    if (ce && strcmp(ce, "gzip") == 0)
      raw = gunzip(u->data, u->len, &n);
    json_error_t jerr;
    js = json_loadb((const char *)(raw ? raw : u->data), n, 0, &jerr);
    free(raw);
  }
  pthread_mutex_lock(&s->mu);
  int status = s->requests < s->n_statuses ? s->statuses[s->requests] : 200;
  s->requests++;
  snprintf(s->path, sizeof s->path, "%s", url);
  snprintf(s->content_type, sizeof s->content_type, "%s", ct ? ct : "");
  snprintf(s->content_encoding, sizeof s->content_encoding, "%s", ce ? ce : "");
  snprintf(s->org, sizeof s->org, "%s", org ? org : "");
  if (!pb && !js)
    s->decode_errors++;
  if (status / 100 == 2) {
    s->delivered_entries += pb ? count_entries_pb(pb) : js ? count_entries_json(js) : 0;
    if (pb) {
      pb_free(s->last_pb);
      s->last_pb = pb;
      pb = NULL;
    }
    if (js) {
      json_decref(s->last_json);
      s->last_json = js;
      js = NULL;
    }
  }
  pthread_mutex_unlock(&s->mu);
  pb_free(pb);
  json_decref(js);
  const char *body = status == 400 ? "entry for stream '{service_name=\"api\"}' has timestamp too "
                                     "old: entry too far behind\nsecond line"
                     : status == 429 ? "Ingestion rate limit exceeded"
                                     : "";
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct upload *u = *con_cls;
  if (u) {
    free(u->data);
    free(u);
  }
  *con_cls = NULL;
}

static int server_start(struct loki_server *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                          NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                          completed, s, MHD_OPTION_END);
  if (!s->d)
    return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  return s->port > 0 ? 0 : -1;
}

static void server_stop(struct loki_server *s) {
  if (s->d)
    MHD_stop_daemon(s->d);
  pb_free(s->last_pb);
  json_decref(s->last_json);
  pthread_mutex_destroy(&s->mu);
}

static int server_requests(struct loki_server *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->requests;
  pthread_mutex_unlock(&s->mu);
  return n;
}

static bool wait_requests(struct loki_server *s, int n) {
  for (int i = 0; i < 500; i++) {
    if (server_requests(s) >= n)
      return true;
    sleep_ms(10);
  }
  return false;
}

static uint64_t counter(const char *name, const char *exporter) {
  char labels[256];
  snprintf(labels, sizeof labels, "exporter=\"%s\"", exporter);
  return otc_counter_value(otc_counter_get(name, "", labels));
}

static uint64_t dropped(const char *component, const char *reason) {
  char labels[256];
  snprintf(labels, sizeof labels, "component=\"%s\",otel_signal=\"logs\",reason=\"%s\"", component,
           reason);
  return otc_counter_value(otc_counter_get("otelcol_dropped_items", "", labels));
}

/* Creates and starts the exporter `id` from a YAML body (with %d for the server's port). */
static void *exporter_up(const char *id, const char *yaml_fmt, int port,
                         struct otc_cfg_node **root) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml, yaml_fmt, port);
  struct otc_cfg_err err = {{0}};
  *root = otc_cfg_load_string(yaml, strlen(yaml), "<test>", &err);
  CHECK(*root != NULL);
  if (!*root) {
    fprintf(stderr, "%s\n", err.msg);
    return NULL;
  }
  struct otc_create_args args = {.id = id};
  void *x = otc_exporter_loki.create(&args, *root, &err);
  if (!x)
    fprintf(stderr, "create: %s\n", err.msg);
  CHECK(x != NULL);
  if (x)
    CHECK_EQ_INT(otc_exporter_loki.start(x), 0);
  return x;
}

static void exporter_down(void *x, struct otc_cfg_node *root) {
  if (x) {
    otc_exporter_loki.shutdown(x);
    otc_exporter_loki.destroy(x);
  }
  otc_cfg_free(root);
}

/* Two records of service "api" (one with a trace id) and one of "db", as a batch. */
static struct otc_batch *sample_batch(void) {
  LogRecord *a1 = rec((struct rspec){.ts = 2000,
                                     .sev = 9,
                                     .body = v_str("second"),
                                     ATTRS(kv("user", v_str("u1"))),
                                     .trace_id = trace_id,
                                     .span_id = span_id});
  LogRecord *a2 = rec((struct rspec){.ts = 1000, .sev = 9, .body = v_str("first")});
  LogRecord *d1 = rec((struct rspec){.ts = 1500, .sev = 17, .body = v_str("db down")});
  ScopeLogs *sa = scope("app", "1.0", 0, NULL, RECS(a1, a2));
  ScopeLogs *sd = scope(NULL, NULL, 0, NULL, RECS(d1));
  size_t len;
  uint8_t *req = request(
      RESOURCES(
          resource(KVS(kv("service.name", v_str("api")), kv("host.name", v_str("h1"))), 1, &sa),
          resource(KVS(kv("service.name", v_str("db"))), 1, &sd)),
      &len);
  int err = 0;
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_LOGS, req, len, 3, false, &err);
  CHECK(b != NULL);
  return b;
}

TEST(end_to_end_protobuf) {
  struct loki_server s;
  CHECK_EQ_INT(server_start(&s), 0);
  char fmt[512];
  snprintf(fmt, sizeof fmt,
           "endpoint: http://127.0.0.1:%%d/loki/api/v1/push\n"
           "tenant_id: team-a\n"
           "headers:\n  X-Extra: yes\n"
           "sending_queue:\n  num_consumers: 2\n%s",
           "retry_on_failure:\n  initial_interval: 10ms\n  max_interval: 50ms\n");
  struct otc_cfg_node *root = NULL;
  void *x = exporter_up("loki/e2e", fmt, s.port, &root);
  if (x)
    CHECK_EQ_INT(otc_exporter_loki.consume(x, sample_batch()), 0);
  CHECK(wait_requests(&s, 1));
  exporter_down(x, root);
  pthread_mutex_lock(&s.mu);
  CHECK_EQ_INT(s.requests, 1);
  CHECK_EQ_INT(s.decode_errors, 0);
  CHECK_EQ_STR(s.path, "/loki/api/v1/push");
  CHECK_EQ_STR(s.content_type, "application/x-protobuf");
  CHECK_EQ_STR(s.content_encoding, "snappy");
  CHECK_EQ_STR(s.org, "team-a");
  Logproto__PushRequest *p = s.last_pb;
  CHECK_EQ_INT(p ? p->n_streams : 0, 2);
  Logproto__StreamAdapter *api = find_stream(p, "{level=\"info\", service_name=\"api\"}");
  Logproto__StreamAdapter *db = find_stream(p, "{level=\"error\", service_name=\"db\"}");
  CHECK(api && db);
  if (api && api->n_entries == 2) {
    CHECK_EQ_STR(api->entries[0]->line, "first");
    CHECK_EQ_INT(ts_of(api->entries[0]), 1000);
    CHECK_EQ_STR(api->entries[1]->line, "second");
    CHECK_EQ_INT(ts_of(api->entries[1]), 2000);
    CHECK_EQ_STR(md(api->entries[1], "trace_id"), "0102030405060708090a0b0c0d0e0f10");
    CHECK_EQ_STR(md(api->entries[1], "span_id"), "a1b2c3d4e5f60718");
    CHECK_EQ_STR(md(api->entries[1], "user"), "u1");
    CHECK_EQ_STR(md(api->entries[1], "host_name"), "h1");
    CHECK_EQ_STR(md(api->entries[1], "scope_name"), "app");
    CHECK_EQ_STR(md(api->entries[0], "host_name"), "h1");
    CHECK(md(api->entries[0], "trace_id") == NULL);
  } else {
    CHECK(false);
  }
  if (db && db->n_entries == 1) {
    CHECK_EQ_STR(db->entries[0]->line, "db down");
    CHECK_EQ_INT(ts_of(db->entries[0]), 1500);
  }
  pthread_mutex_unlock(&s.mu);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "loki/e2e"), 3);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_log_records", "loki/e2e"), 0);
  server_stop(&s);
  tfree();
}

/* A batch above OTC_LOKI_MAX_RECORDS_PER_PUSH goes as several pushes, every record once, in order.
 */
TEST(large_batch_pushed_in_pieces) {
  struct loki_server s;
  CHECK_EQ_INT(server_start(&s), 0);
  const size_t n = 2 * OTC_LOKI_MAX_RECORDS_PER_PUSH + 5;
  LogRecord **recs = talloc(n * sizeof *recs);
  for (size_t i = 0; i < n; i++) {
    char line[32];
    snprintf(line, sizeof line, "line %zu", i);
    recs[i] = rec((struct rspec){.ts = 1000 + i, .sev = 9, .body = v_str(line)});
  }
  size_t len;
  uint8_t *req = simple(KVS(kv("service.name", v_str("big"))), n, recs, &len);
  int err = 0;
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_LOGS, req, len, n, false, &err);
  CHECK(b != NULL);
  struct otc_cfg_node *root = NULL;
  void *x =
      exporter_up("loki/big", "endpoint: http://127.0.0.1:%d/loki/api/v1/push\n", s.port, &root);
  if (x && b)
    CHECK_EQ_INT(otc_exporter_loki.consume(x, b), 0);
  CHECK(wait_requests(&s, 3));
  exporter_down(x, root);
  pthread_mutex_lock(&s.mu);
  CHECK_EQ_INT(s.requests, 3);
  CHECK_EQ_INT(s.decode_errors, 0);
  CHECK_EQ_INT(s.delivered_entries, n);
  /* The last push holds the last 5 records. */
  Logproto__StreamAdapter *st = find_stream(s.last_pb, "{level=\"info\", service_name=\"big\"}");
  CHECK_EQ_INT(st ? st->n_entries : 0, 5);
  if (st && st->n_entries == 5)
    CHECK_EQ_STR(st->entries[4]->line, "line 2052");
  pthread_mutex_unlock(&s.mu);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "loki/big"), n);
  server_stop(&s);
  tfree();
}

TEST(end_to_end_json_gzip) {
  struct loki_server s;
  CHECK_EQ_INT(server_start(&s), 0);
  struct otc_cfg_node *root = NULL;
  void *x = exporter_up("loki/json",
                        "endpoint: http://127.0.0.1:%d/loki/api/v1/push\n"
                        "format: json\n"
                        "compression: gzip\n"
                        "structured_metadata: false\n"
                        "level_label: false\n"
                        "sending_queue:\n  enabled: false\n",
                        s.port, &root);
  /* With the queue disabled, consume returns the outcome of the send. */
  if (x)
    CHECK_EQ_INT(otc_exporter_loki.consume(x, sample_batch()), 0);
  exporter_down(x, root);
  pthread_mutex_lock(&s.mu);
  CHECK_EQ_INT(s.requests, 1);
  CHECK_EQ_INT(s.decode_errors, 0);
  CHECK_EQ_STR(s.content_type, "application/json");
  CHECK_EQ_STR(s.content_encoding, "gzip");
  CHECK_EQ_STR(s.org, "");
  json_t *streams = json_object_get(s.last_json, "streams");
  CHECK_EQ_INT(json_array_size(streams), 2);
  size_t i;
  json_t *st;
  bool found = false;
  json_array_foreach(streams, i, st) {
    json_t *labels = json_object_get(st, "stream");
    if (strcmp(json_string_value(json_object_get(labels, "service_name")) ?: "", "api") != 0)
      continue;
    found = true;
    CHECK_EQ_INT(json_object_size(labels), 1);
    json_t *values = json_object_get(st, "values");
    CHECK_EQ_INT(json_array_size(values), 2);
    json_t *v0 = json_array_get(values, 0), *v1 = json_array_get(values, 1);
    CHECK_EQ_STR(json_string_value(json_array_get(v0, 0)), "1000");
    CHECK_EQ_STR(json_string_value(json_array_get(v0, 1)),
                 "first severity_number=9 host_name=h1 scope_name=app scope_version=1.0");
    CHECK_EQ_STR(json_string_value(json_array_get(v1, 0)), "2000");
    CHECK_EQ_STR(json_string_value(json_array_get(v1, 1)),
                 "second user=u1 severity_number=9 trace_id=0102030405060708090a0b0c0d0e0f10 "
                 "span_id=a1b2c3d4e5f60718 host_name=h1 scope_name=app scope_version=1.0");
    CHECK_EQ_INT(json_array_size(v1), 2);
  }
  CHECK(found);
  pthread_mutex_unlock(&s.mu);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "loki/json"), 3);
  server_stop(&s);
  tfree();
}

TEST(retry_429_and_500_then_200_delivers_once) {
  struct loki_server s;
  CHECK_EQ_INT(server_start(&s), 0);
  s.statuses[0] = 429;
  s.statuses[1] = 500;
  s.n_statuses = 2;
  char fmt[512];
  snprintf(fmt, sizeof fmt, "endpoint: http://127.0.0.1:%%d/loki/api/v1/push\n%s",
           "retry_on_failure:\n  initial_interval: 10ms\n  max_interval: 50ms\n");
  struct otc_cfg_node *root = NULL;
  void *x = exporter_up("loki/retry", fmt, s.port, &root);
  if (x)
    CHECK_EQ_INT(otc_exporter_loki.consume(x, sample_batch()), 0);
  CHECK(wait_requests(&s, 3));
  sleep_ms(100);
  exporter_down(x, root);
  pthread_mutex_lock(&s.mu);
  CHECK_EQ_INT(s.requests, 3);
  CHECK_EQ_INT(s.delivered_entries, 3);
  CHECK_EQ_INT(s.decode_errors, 0);
  pthread_mutex_unlock(&s.mu);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "loki/retry"), 3);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_log_records", "loki/retry"), 0);
  server_stop(&s);
  tfree();
}

TEST(status_400_dropped_once_and_counted) {
  struct loki_server s;
  CHECK_EQ_INT(server_start(&s), 0);
  s.statuses[0] = 400;
  s.n_statuses = 1;
  char fmt[512];
  snprintf(fmt, sizeof fmt, "endpoint: http://127.0.0.1:%%d/loki/api/v1/push\n%s",
           "retry_on_failure:\n  initial_interval: 10ms\n  max_interval: 50ms\n");
  struct otc_cfg_node *root = NULL;
  void *x = exporter_up("loki/bad", fmt, s.port, &root);
  if (x)
    CHECK_EQ_INT(otc_exporter_loki.consume(x, sample_batch()), 0);
  CHECK(wait_requests(&s, 1));
  sleep_ms(200); /* time for retries, were there any */
  exporter_down(x, root);
  CHECK_EQ_INT(server_requests(&s), 1);
  CHECK_EQ_INT(s.delivered_entries, 0);
  CHECK_EQ_INT(counter("otelcol_exporter_sent_log_records", "loki/bad"), 0);
  CHECK_EQ_INT(counter("otelcol_exporter_send_failed_log_records", "loki/bad"), 3);
  CHECK_EQ_INT(dropped("loki/bad", "http_400"), 3);
  server_stop(&s);
  tfree();
}

TEST(config_errors) {
  static const struct {
    const char *yaml, *want;
  } cases[] = {
      {"tenant_id: x\n", "endpoint"},
      {"endpoint: http://h:3100/loki/api/v1/push\nformat: xml\n", "unknown format"},
      {"endpoint: http://h:3100/loki/api/v1/push\ntenant_id: \"a\\nb\"\n", "line breaks"},
      {"endpoint: http://h:3100/loki/api/v1/push\nnope: 1\n", "nope"},
      {"endpoint: http://h:3100/loki/api/v1/push\nresource_labels: [\"\"]\n", "attribute name"},
      {"endpoint: http://h:3100/loki/api/v1/push\ncompression: zstd\n", "compression"},
      {"endpoint: ftp://h/x\n", "endpoint"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct otc_cfg_err err = {{0}};
    struct otc_cfg_node *root =
        otc_cfg_load_string(cases[i].yaml, strlen(cases[i].yaml), "<test>", &err);
    CHECK(root != NULL);
    struct otc_create_args args = {.id = "loki/cfg"};
    void *x = root ? otc_exporter_loki.create(&args, root, &err) : NULL;
    CHECK(x == NULL);
    CHECK_CONTAINS(err.msg, cases[i].want);
    otc_exporter_loki.destroy(x);
    otc_cfg_free(root);
  }
  /* A full configuration, with the contrib exporter's key accepted with a warning. */
  const char *ok = "endpoint: https://loki.example:3100/loki/api/v1/push\n"
                   "timeout: 10s\n"
                   "format: json\n"
                   "resource_labels: [service.name, host.name]\n"
                   "record_labels: [tenant]\n"
                   "default_labels_enabled:\n  exporter: false\n"
                   "tls:\n  insecure_skip_verify: true\n";
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = otc_cfg_load_string(ok, strlen(ok), "<test>", &err);
  struct otc_create_args args = {.id = "loki/ok"};
  void *x = root ? otc_exporter_loki.create(&args, root, &err) : NULL;
  if (!x)
    fprintf(stderr, "%s\n", err.msg);
  CHECK(x != NULL);
  otc_exporter_loki.destroy(x);
  otc_cfg_free(root);
  CHECK(otc_exporter_loki.signals == OTC_SIGNAL_BIT(OTC_SIGNAL_LOGS));
  CHECK_EQ_STR(otc_exporter_loki.type, "loki");
}

int main(void) {
  otc_log_set_level(OTC_LOG_ERROR);
  RUN(default_labels_and_structured_metadata);
  RUN(label_name_sanitizing);
  RUN(label_values_stringified_and_escaped);
  RUN(service_name_discovery_and_fallback);
  RUN(level_mapping);
  RUN(record_labels);
  RUN(line_from_body);
  RUN(logfmt_mode);
  RUN(streams_grouped_and_entries_ordered);
  RUN(timestamp_fallbacks);
  RUN(invalid_and_empty_input);
  RUN(memory_released);
  RUN(json_format);
  RUN(end_to_end_protobuf);
  RUN(large_batch_pushed_in_pieces);
  RUN(end_to_end_json_gzip);
  RUN(retry_429_and_500_then_200_delivers_once);
  RUN(status_400_dropped_once_and_counted);
  RUN(config_errors);
  return TEST_REPORT();
}
