/* Tests of the batch processor (processors/batch/batch_processor.c) through its component
 * interface, with a next consumer that captures what it receives: the size and timeout triggers,
 * send_batch_max_size splitting, pass-through of a single batch, the flush at shutdown, the
 * self-metrics, backpressure from a next consumer that refuses (kept and retried in order, new data
 * refused at the bound, dropped only at the shutdown deadline), and that memory accounting returns
 * to where it was. Requests are built with protobuf-c and the captured ones unpacked to compare
 * span names in order. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/component.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "test.h"

extern const struct otc_component_ops otc_processor_batch;

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

/* ---- the capturing next consumer ---- */

#define CAPTURE_MAX 256

struct capture {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct otc_batch *got[CAPTURE_MAX];
  int64_t at_ns[CAPTURE_MAX];
  size_t n;
  size_t items; /* in got */
  int rc;       /* what consume answers */
  /* The next refuse_first calls answer OTC_ERR_REFUSED, as an exporter with a full queue does
   * (after releasing the reference, as the contract says). */
  int refuse_first;
  size_t refusals;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int capture_consume(void *ctx, struct otc_batch *b) {
  struct capture *c = ctx;
  pthread_mutex_lock(&c->lock);
  int rc = c->rc;
  if (c->refuse_first > 0) {
    c->refuse_first--;
    c->refusals++;
    rc = OTC_ERR_REFUSED;
  }
  if (rc != 0) {
    otc_batch_unref(b);
  } else if (c->n < CAPTURE_MAX) {
    c->at_ns[c->n] = now_ns();
    c->items += b->items;
    c->got[c->n++] = b;
  } else {
    otc_batch_unref(b);
  }
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

static void capture_init(struct capture *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->cond, NULL);
}

/* Waits until n batches arrived or timeout_ms passed; returns how many arrived. */
static size_t capture_wait(struct capture *c, size_t n, int timeout_ms) {
  int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
  pthread_mutex_lock(&c->lock);
  while (c->n < n && now_ns() < deadline) {
    pthread_mutex_unlock(&c->lock);
    usleep(2000);
    pthread_mutex_lock(&c->lock);
  }
  size_t got = c->n;
  pthread_mutex_unlock(&c->lock);
  return got;
}

static size_t capture_count(struct capture *c) {
  pthread_mutex_lock(&c->lock);
  size_t n = c->n;
  pthread_mutex_unlock(&c->lock);
  return n;
}

/* Waits until the captured batches hold n items or timeout_ms passed; returns the items. */
static size_t capture_wait_items(struct capture *c, size_t n, int timeout_ms) {
  int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
  pthread_mutex_lock(&c->lock);
  while (c->items < n && now_ns() < deadline) {
    pthread_mutex_unlock(&c->lock);
    usleep(2000);
    pthread_mutex_lock(&c->lock);
  }
  size_t got = c->items;
  pthread_mutex_unlock(&c->lock);
  return got;
}

/* Waits until the next consumer refused n times or timeout_ms passed; returns the refusals. */
static size_t capture_wait_refusals(struct capture *c, size_t n, int timeout_ms) {
  int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
  pthread_mutex_lock(&c->lock);
  while (c->refusals < n && now_ns() < deadline) {
    pthread_mutex_unlock(&c->lock);
    usleep(1000);
    pthread_mutex_lock(&c->lock);
  }
  size_t got = c->refusals;
  pthread_mutex_unlock(&c->lock);
  return got;
}

static size_t capture_refusals(struct capture *c) {
  pthread_mutex_lock(&c->lock);
  size_t n = c->refusals;
  pthread_mutex_unlock(&c->lock);
  return n;
}

static void capture_set_refuse(struct capture *c, int refuse_first) {
  pthread_mutex_lock(&c->lock);
  c->refuse_first = refuse_first;
  pthread_mutex_unlock(&c->lock);
}

static void capture_free(struct capture *c) {
  for (size_t i = 0; i < c->n; i++)
    otc_batch_unref(c->got[i]);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->cond);
}

/* ---- requests ---- */

/* A traces request of `spans` spans named "<prefix>-<i>", over two resources when spans > 1. */
static struct otc_batch *make_traces(const char *prefix, int spans) {
  TraceReq req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  ResSpans rs[2] = {OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT,
                    OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT};
  ScopeSpans ss[2] = {OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT,
                      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT};
  ResSpans *rsp[2] = {&rs[0], &rs[1]};
  ScopeSpans *ssp[2][1] = {{&ss[0]}, {&ss[1]}};
  Span *sp = calloc((size_t)spans + 1, sizeof *sp);
  Span **spp = calloc((size_t)spans + 1, sizeof *spp);
  char(*names)[32] = calloc((size_t)spans + 1, sizeof *names);
  uint8_t tid[16] = {1, 2, 3}, sid[8] = {4, 5, 6};
  for (int i = 0; i < spans; i++) {
    Span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    sp[i] = init;
    snprintf(names[i], sizeof names[i], "%s-%d", prefix, i);
    sp[i].name = names[i];
    sp[i].trace_id.data = tid;
    sp[i].trace_id.len = 16;
    sp[i].span_id.data = sid;
    sp[i].span_id.len = 8;
    spp[i] = &sp[i];
  }
  int first = spans > 1 ? spans / 2 : spans;
  ss[0].n_spans = (size_t)first;
  ss[0].spans = spp;
  ss[1].n_spans = (size_t)(spans - first);
  ss[1].spans = spp + first;
  for (int r = 0; r < 2; r++) {
    rs[r].n_scope_spans = 1;
    rs[r].scope_spans = ssp[r];
    rs[r].schema_url = r ? "resource-b" : "resource-a";
  }
  req.n_resource_spans = spans > 1 ? 2 : 1;
  req.resource_spans = rsp;
  size_t len =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
          &req);
  uint8_t *buf = malloc(len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
  struct otc_batch *b = otc_batch_copy(OTC_SIGNAL_TRACES, buf, len, (size_t)spans, false, NULL);
  free(buf);
  free(sp);
  free(spp);
  free(names);
  return b;
}

/* Appends "resource/span-name" of every span in b to names (a space-separated string). */
static void span_names(const struct otc_batch *b, char *names, size_t cap) {
  /* A joined batch's bytes are its parts' one after the other. */
  uint8_t *joined = NULL;
  if (b->n_parts) {
    joined = malloc(b->len ? b->len : 1);
    size_t off = 0;
    for (size_t i = 0; joined && i < b->n_parts; i++) {
      memcpy(joined + off, b->parts[i]->data, b->parts[i]->len);
      off += b->parts[i]->len;
    }
  }
  TraceReq *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, b->len, joined ? joined : b->data);
  free(joined);
  if (!req) {
    strncat(names, "UNPACK-FAILED ", cap - strlen(names) - 1);
    return;
  }
  for (size_t r = 0; r < req->n_resource_spans; r++)
    for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
      for (size_t i = 0; i < req->resource_spans[r]->scope_spans[s]->n_spans; i++) {
        char one[96];
        snprintf(one, sizeof one, "%s/%s ", req->resource_spans[r]->schema_url,
                 req->resource_spans[r]->scope_spans[s]->spans[i]->name);
        strncat(names, one, cap - strlen(names) - 1);
      }
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                          NULL);
}

/* Checks that the captured batches hold exactly the spans of make_traces("<prefix><k>", counts[k])
 * for k < n, each once and in that order, in batches of at most max_items (0: any). Returns the
 * number of mismatches (0 when all is well). */
static int check_sequence(struct capture *c, const char *prefix, const int *counts, int n,
                          size_t max_items) {
  int bad = 0, k = 0, i = 0;
  pthread_mutex_lock(&c->lock);
  for (size_t b = 0; b < c->n; b++) {
    if (max_items && c->got[b]->items > max_items)
      bad++;
    TraceReq *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, c->got[b]->len, c->got[b]->data);
    if (!req) {
      bad++;
      continue;
    }
    for (size_t r = 0; r < req->n_resource_spans; r++)
      for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
        for (size_t j = 0; j < req->resource_spans[r]->scope_spans[s]->n_spans; j++) {
          while (k < n && i >= counts[k]) {
            k++;
            i = 0;
          }
          char want[64];
          snprintf(want, sizeof want, "%s%d-%d", prefix, k, i);
          const char *got = req->resource_spans[r]->scope_spans[s]->spans[j]->name;
          if (k >= n || strcmp(got, want) != 0) {
            if (bad < 5)
              fprintf(stderr, "sequence: got %s, want %s\n", got, k < n ? want : "(end)");
            bad++;
          }
          i++;
        }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
  }
  pthread_mutex_unlock(&c->lock);
  /* Everything arrived: the last input is complete and none is missing. */
  if (k != n - 1 || i != counts[n - 1]) {
    fprintf(stderr, "sequence: ended at %s%d-%d\n", prefix, k, i);
    bad++;
  }
  return bad;
}

/* ---- the processor ---- */

struct proc {
  struct otc_cfg_node *cfg;
  void *ctx;
  struct capture cap;
};

/* Creates and starts a batch processor with the YAML config text; NULL on a config error (err
 * filled). */
static void *proc_open_next(struct proc *p, const char *id, const char *yaml, bool takes_parts,
                            struct otc_cfg_err *err) {
  memset(p, 0, sizeof *p);
  capture_init(&p->cap);
  p->cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", err);
  if (!p->cfg)
    return NULL;
  struct otc_create_args args = {
      .id = id,
      .pipeline = "traces",
      .signal = OTC_SIGNAL_TRACES,
      .next = {.consume = capture_consume, .ctx = &p->cap, .takes_parts = takes_parts}};
  p->ctx = otc_processor_batch.create(&args, p->cfg, err);
  if (p->ctx && otc_processor_batch.start(p->ctx) != 0) {
    otc_processor_batch.destroy(p->ctx);
    p->ctx = NULL;
  }
  return p->ctx;
}

static void *proc_open(struct proc *p, const char *id, const char *yaml, struct otc_cfg_err *err) {
  return proc_open_next(p, id, yaml, false, err);
}

static void proc_close(struct proc *p) {
  if (p->ctx) {
    otc_processor_batch.shutdown(p->ctx);
    otc_processor_batch.destroy(p->ctx);
  }
  capture_free(&p->cap);
  otc_cfg_free(p->cfg);
}

static int feed(struct proc *p, const char *prefix, int spans) {
  return otc_processor_batch.consume(p->ctx, make_traces(prefix, spans));
}

static uint64_t counter(const char *name, const char *labels) {
  return otc_counter_value(otc_counter_get(name, "", labels));
}

/* ---- tests ---- */

TEST(config) {
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch", "send_batch_size: 100\nsend_batch_max_size: 50\n", &err) == NULL);
  CHECK_CONTAINS(err.msg, "send_batch_max_size must be greater or equal to send_batch_size");
  CHECK_CONTAINS(err.msg, "<test>:2");
  proc_close(&p);
  CHECK(proc_open(&p, "batch", "send_batch_size: -1\n", &err) == NULL);
  proc_close(&p);
  CHECK(proc_open(&p, "batch", "sned_batch_size: 1\n", &err) == NULL);
  CHECK_CONTAINS(err.msg, "sned_batch_size");
  proc_close(&p);
  CHECK(proc_open(&p, "batch", "timeout: soon\n", &err) == NULL);
  proc_close(&p);
  /* Unsupported otelcol keys are accepted (with a warning). */
  CHECK(proc_open(&p, "batch", "metadata_keys: [tenant]\nmetadata_cardinality_limit: 10\n", &err) !=
        NULL);
  proc_close(&p);
  /* max equal to size is fine; max 0 is unlimited whatever the size. */
  CHECK(proc_open(&p, "batch", "send_batch_size: 10\nsend_batch_max_size: 10\n", &err) != NULL);
  proc_close(&p);
  CHECK(proc_open(&p, "batch", "send_batch_size: 10\nsend_batch_max_size: 0\n", &err) != NULL);
  proc_close(&p);
  /* An empty config (`batch:`) takes the defaults. */
  struct otc_create_args args = {.id = "batch", .signal = OTC_SIGNAL_LOGS};
  void *ctx = otc_processor_batch.create(&args, NULL, &err);
  CHECK(ctx != NULL);
  otc_processor_batch.destroy(ctx);
  otc_processor_batch.destroy(NULL);
  CHECK(otc_processor_batch.kind == OTC_KIND_PROCESSOR);
  CHECK(otc_processor_batch.signals == OTC_SIGNALS_ALL);
  CHECK(!otc_processor_batch.mutates);
  CHECK_EQ_STR(otc_processor_batch.type, "batch");
}

TEST(size_trigger) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/size", "send_batch_size: 10\ntimeout: 10s\n", &err) != NULL);
  if (!p.ctx)
    return;
  CHECK_EQ_INT(feed(&p, "a", 4), 0);
  CHECK_EQ_INT(feed(&p, "b", 4), 0);
  usleep(50000);
  CHECK_EQ_INT(capture_count(&p.cap), 0); /* 8 < 10: nothing yet */
  CHECK_EQ_INT(feed(&p, "c", 4), 0);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  usleep(20000);
  CHECK_EQ_INT(capture_count(&p.cap), 1);
  if (p.cap.n >= 1) {
    CHECK_EQ_INT(p.cap.got[0]->items, 12);
    char names[1024] = "";
    span_names(p.cap.got[0], names, sizeof names);
    CHECK_EQ_STR(names, "resource-a/a-0 resource-a/a-1 resource-b/a-2 resource-b/a-3 "
                        "resource-a/b-0 resource-a/b-1 resource-b/b-2 resource-b/b-3 "
                        "resource-a/c-0 resource-a/c-1 resource-b/c-2 resource-b/c-3 ");
  }
  CHECK_EQ_INT(
      counter("otelcol_processor_batch_batch_size_trigger_send", "processor=\"batch/size\""), 1);
  CHECK_EQ_INT(counter("otelcol_processor_batch_timeout_trigger_send", "processor=\"batch/size\""),
               0);
  CHECK_EQ_INT(counter("otelcol_processor_incoming_items",
                       "otel_signal=\"traces\",processor=\"batch/size\""),
               12);
  CHECK_EQ_INT(counter("otelcol_processor_outgoing_items",
                       "otel_signal=\"traces\",processor=\"batch/size\""),
               12);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

/* A next consumer that takes joined batches gets the inputs by reference (no copy, no second
 * charge), in order; one that will be split by send_batch_max_size is still copied. */
TEST(size_trigger_joined) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open_next(&p, "batch/joined", "send_batch_size: 10\ntimeout: 10s\n", true, &err) !=
        NULL);
  if (!p.ctx)
    return;
  CHECK_EQ_INT(feed(&p, "a", 4), 0);
  CHECK_EQ_INT(feed(&p, "b", 4), 0);
  CHECK_EQ_INT(feed(&p, "c", 4), 0);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  if (p.cap.n >= 1) {
    struct otc_batch *b = p.cap.got[0];
    CHECK_EQ_INT(b->items, 12);
    CHECK(b->data == NULL);
    CHECK_EQ_INT(b->n_parts, 3);
    size_t len = 0;
    for (size_t i = 0; i < b->n_parts; i++) {
      CHECK(b->parts[i]->data != NULL);
      CHECK_EQ_INT(b->parts[i]->items, 4);
      len += b->parts[i]->len;
    }
    CHECK_EQ_INT(b->len, len);
    char names[1024] = "";
    span_names(b, names, sizeof names);
    CHECK_EQ_STR(names, "resource-a/a-0 resource-a/a-1 resource-b/a-2 resource-b/a-3 "
                        "resource-a/b-0 resource-a/b-1 resource-b/b-2 resource-b/b-3 "
                        "resource-a/c-0 resource-a/c-1 resource-b/c-2 resource-b/c-3 ");
  }
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);

  CHECK(proc_open_next(&p, "batch/joined_max",
                       "send_batch_size: 10\nsend_batch_max_size: 10\ntimeout: 100ms\n", true,
                       &err) != NULL);
  if (!p.ctx)
    return;
  feed(&p, "a", 4);
  feed(&p, "b", 4);
  feed(&p, "c", 4);
  CHECK_EQ_INT(capture_wait(&p.cap, 2, 3000), 2);
  for (size_t i = 0; i < p.cap.n; i++)
    CHECK(p.cap.got[i]->data != NULL && p.cap.got[i]->n_parts == 0);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

TEST(size_trigger_with_max) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/max", "send_batch_size: 10\nsend_batch_max_size: 10\ntimeout: 150ms\n",
                  &err) != NULL);
  if (!p.ctx)
    return;
  int64_t t0 = now_ns();
  feed(&p, "a", 4);
  feed(&p, "b", 4);
  feed(&p, "c", 4);
  /* 10 at once; the remaining 2 stay pending until the timeout. */
  CHECK(capture_wait(&p.cap, 1, 2000) >= 1);
  CHECK_EQ_INT(capture_wait(&p.cap, 2, 3000), 2);
  if (p.cap.n == 2) {
    CHECK_EQ_INT(p.cap.got[0]->items, 10);
    CHECK_EQ_INT(p.cap.got[1]->items, 2);
    /* The remainder waited for the timer (restarted by the first send). */
    CHECK(p.cap.at_ns[1] - p.cap.at_ns[0] >= 50 * 1000000LL);
    CHECK(p.cap.at_ns[0] - t0 < 100 * 1000000LL);
    char names[1024] = "";
    span_names(p.cap.got[0], names, sizeof names);
    span_names(p.cap.got[1], names, sizeof names);
    CHECK_EQ_STR(names, "resource-a/a-0 resource-a/a-1 resource-b/a-2 resource-b/a-3 "
                        "resource-a/b-0 resource-a/b-1 resource-b/b-2 resource-b/b-3 "
                        "resource-a/c-0 resource-a/c-1 resource-b/c-2 resource-b/c-3 ");
  }
  CHECK_EQ_INT(
      counter("otelcol_processor_batch_batch_size_trigger_send", "processor=\"batch/max\""), 1);
  CHECK_EQ_INT(counter("otelcol_processor_batch_timeout_trigger_send", "processor=\"batch/max\""),
               1);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

TEST(timeout_trigger) {
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/timeout", "send_batch_size: 100\ntimeout: 50ms\n", &err) != NULL);
  if (!p.ctx)
    return;
  struct otc_batch *b = make_traces("t", 3);
  int64_t t0 = now_ns();
  CHECK_EQ_INT(otc_processor_batch.consume(p.ctx, b), 0);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  if (p.cap.n == 1) {
    /* One batch that fits: forwarded as it is. */
    CHECK(p.cap.got[0] == b);
    CHECK_EQ_INT(p.cap.got[0]->items, 3);
    /* At the first tick of a 50 ms timer started at start(): within one period (plus slack). */
    CHECK(p.cap.at_ns[0] - t0 < 1000 * 1000000LL);
  }
  CHECK_EQ_INT(
      counter("otelcol_processor_batch_timeout_trigger_send", "processor=\"batch/timeout\""), 1);
  /* A second one, later: again one timer period at most. */
  usleep(120000);
  feed(&p, "u", 2);
  CHECK_EQ_INT(capture_wait(&p.cap, 2, 2000), 2);
  CHECK_EQ_INT(
      counter("otelcol_processor_batch_timeout_trigger_send", "processor=\"batch/timeout\""), 2);
  proc_close(&p);
}

TEST(max_split_exact) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  /* Size trigger: 23 items with max 5 → 5,5,5,5 now; the 3 left wait (timeout 10s) until
   * shutdown flushes them. */
  CHECK(proc_open(&p, "batch/exact", "send_batch_size: 5\nsend_batch_max_size: 5\ntimeout: 10s\n",
                  &err) != NULL);
  if (!p.ctx)
    return;
  feed(&p, "x", 23);
  CHECK_EQ_INT(capture_wait(&p.cap, 4, 2000), 4);
  usleep(30000);
  CHECK_EQ_INT(capture_count(&p.cap), 4);
  otc_processor_batch.shutdown(p.ctx);
  CHECK_EQ_INT(capture_count(&p.cap), 5);
  const size_t want[] = {5, 5, 5, 5, 3};
  char names[2048] = "", expect[2048] = "";
  for (size_t i = 0; i < p.cap.n && i < 5; i++) {
    CHECK_EQ_INT(p.cap.got[i]->items, want[i]);
    span_names(p.cap.got[i], names, sizeof names);
  }
  for (int i = 0; i < 23; i++) {
    char one[48];
    snprintf(one, sizeof one, "%s/x-%d ", i < 11 ? "resource-a" : "resource-b", i);
    strcat(expect, one);
  }
  CHECK_EQ_STR(names, expect);
  CHECK_EQ_INT(
      counter("otelcol_processor_batch_batch_size_trigger_send", "processor=\"batch/exact\""), 4);
  CHECK_EQ_INT(counter("otelcol_processor_batch_timeout_trigger_send", "processor=\"batch/exact\""),
               1);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);

  /* Merged batches are cut too: 4 + 4 (+ 4) items with size and max 7 → 7 now, the rest (5)
   * at shutdown, whether the thread saw 8 or 12 items first. */
  CHECK(proc_open(&p, "batch/exact2", "send_batch_size: 7\nsend_batch_max_size: 7\ntimeout: 10s\n",
                  &err) != NULL);
  if (!p.ctx)
    return;
  feed(&p, "a", 4);
  feed(&p, "b", 4);
  feed(&p, "c", 4);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  usleep(50000);
  CHECK_EQ_INT(capture_count(&p.cap), 1);
  otc_processor_batch.shutdown(p.ctx);
  CHECK_EQ_INT(capture_count(&p.cap), 2);
  if (p.cap.n == 2) {
    CHECK_EQ_INT(p.cap.got[0]->items, 7);
    CHECK_EQ_INT(p.cap.got[1]->items, 5);
    names[0] = '\0';
    span_names(p.cap.got[0], names, sizeof names);
    span_names(p.cap.got[1], names, sizeof names);
    CHECK_EQ_STR(names, "resource-a/a-0 resource-a/a-1 resource-b/a-2 resource-b/a-3 "
                        "resource-a/b-0 resource-a/b-1 resource-b/b-2 resource-b/b-3 "
                        "resource-a/c-0 resource-a/c-1 resource-b/c-2 resource-b/c-3 ");
  }
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

TEST(shutdown_flushes) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/shut", "send_batch_size: 1000\ntimeout: 10s\n", &err) != NULL);
  if (!p.ctx)
    return;
  feed(&p, "a", 3);
  feed(&p, "b", 2);
  usleep(20000);
  CHECK_EQ_INT(capture_count(&p.cap), 0);
  CHECK_EQ_INT(otc_processor_batch.shutdown(p.ctx), 0);
  CHECK_EQ_INT(capture_count(&p.cap), 1);
  if (p.cap.n == 1) {
    CHECK_EQ_INT(p.cap.got[0]->items, 5);
    char names[512] = "";
    span_names(p.cap.got[0], names, sizeof names);
    CHECK_EQ_STR(names, "resource-a/a-0 resource-b/a-1 resource-b/a-2 resource-a/b-0 "
                        "resource-b/b-1 ");
  }
  /* Idempotent; after shutdown a batch is forwarded at once. */
  CHECK_EQ_INT(otc_processor_batch.shutdown(p.ctx), 0);
  CHECK_EQ_INT(feed(&p, "late", 1), 0);
  CHECK_EQ_INT(capture_count(&p.cap), 2);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

TEST(pass_through) {
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/pass", "send_batch_size: 5\nsend_batch_max_size: 8\ntimeout: 10s\n",
                  &err) != NULL);
  if (!p.ctx)
    return;
  struct otc_batch *b = make_traces("p", 5);
  CHECK_EQ_INT(otc_processor_batch.consume(p.ctx, b), 0);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  if (p.cap.n == 1)
    CHECK(p.cap.got[0] == b);
  /* send_batch_size 0: every batch goes at once, as it is. */
  proc_close(&p);
  CHECK(proc_open(&p, "batch/zero", "send_batch_size: 0\n", &err) != NULL);
  if (!p.ctx)
    return;
  struct otc_batch *c = make_traces("q", 2);
  CHECK_EQ_INT(otc_processor_batch.consume(p.ctx, c), 0);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  if (p.cap.n == 1)
    CHECK(p.cap.got[0] == c);
  proc_close(&p);
  /* timeout 0: no timer, every batch goes at once (otelcol counts it as a size trigger). */
  CHECK(proc_open(&p, "batch/notimer", "send_batch_size: 100\ntimeout: 0s\n", &err) != NULL);
  if (!p.ctx)
    return;
  struct otc_batch *d = make_traces("r", 2);
  CHECK_EQ_INT(otc_processor_batch.consume(p.ctx, d), 0);
  CHECK_EQ_INT(capture_wait(&p.cap, 1, 2000), 1);
  if (p.cap.n == 1)
    CHECK(p.cap.got[0] == d);
  CHECK_EQ_INT(
      counter("otelcol_processor_batch_batch_size_trigger_send", "processor=\"batch/notimer\""), 1);
  proc_close(&p);
}

TEST(next_fails) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/fail", "send_batch_size: 4\n", &err) != NULL);
  if (!p.ctx)
    return;
  /* A final error: nothing to retry, the data is dropped and counted. */
  p.cap.rc = OTC_ERR_PERMANENT;
  const char *labels = "component=\"batch/fail\",otel_signal=\"traces\",reason=\"send_failed\"";
  uint64_t before = counter("otelcol_dropped_items", labels);
  CHECK_EQ_INT(feed(&p, "f", 4), 0); /* accepted: the failure comes later */
  for (int i = 0; i < 200 && counter("otelcol_dropped_items", labels) == before; i++)
    usleep(5000);
  CHECK_EQ_INT(counter("otelcol_dropped_items", labels) - before, 4);
  feed(&p, "g", 6);
  for (int i = 0; i < 200 && counter("otelcol_dropped_items", labels) == before + 4; i++)
    usleep(5000);
  CHECK_EQ_INT(counter("otelcol_dropped_items", labels) - before, 10);
  /* Offered once each, never again, and the processor is not blocked: new data is accepted. */
  usleep(50000);
  CHECK_EQ_INT(capture_refusals(&p.cap), 0);
  CHECK_EQ_INT(feed(&p, "h", 2), 0);
  proc_close(&p);
  CHECK_EQ_INT(counter("otelcol_dropped_items", labels) - before, 12);
  CHECK_EQ_INT(otc_mem_held(), held);
}

static uint64_t dropped_any(const char *id) {
  static const char *const reasons[] = {"refused", "send_failed", "shutdown", "out_of_memory"};
  uint64_t sum = 0;
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
    char labels[160];
    snprintf(labels, sizeof labels, "component=\"%s\",otel_signal=\"traces\",reason=\"%s\"", id,
             reasons[i]);
    sum += counter("otelcol_dropped_items", labels);
  }
  return sum;
}

/* A next consumer that refuses the first three offers, then accepts: the refused piece and those
 * after it are kept and offered again in order, new data queues behind them, nothing is lost or
 * duplicated, nothing counted as dropped. */
TEST(refused_then_accepted) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/retry", "send_batch_size: 5\nsend_batch_max_size: 5\ntimeout: 30ms\n",
                  &err) != NULL);
  if (!p.ctx)
    return;
  capture_set_refuse(&p.cap, 3);
  const int counts[] = {23, 4, 6};
  int64_t t0 = now_ns();
  CHECK_EQ_INT(feed(&p, "s0", counts[0]), 0);
  CHECK(capture_wait_refusals(&p.cap, 1, 2000) >= 1);
  /* Accepted while blocked (far under the bound): they wait behind the refused pieces. */
  CHECK_EQ_INT(feed(&p, "s1", counts[1]), 0);
  CHECK_EQ_INT(feed(&p, "s2", counts[2]), 0);
  CHECK_EQ_INT(capture_wait_items(&p.cap, 33, 3000), 33);
  /* Three refusals at 10, 20, 40 ms of backoff: well under a second. */
  CHECK(now_ns() - t0 < 1000 * 1000000LL);
  usleep(50000);
  CHECK_EQ_INT(capture_refusals(&p.cap), 3);
  CHECK_EQ_INT(check_sequence(&p.cap, "s", counts, 3, 5), 0);
  CHECK_EQ_INT(counter("otelcol_processor_incoming_items",
                       "otel_signal=\"traces\",processor=\"batch/retry\""),
               33);
  /* A piece counts once as outgoing, however many offers it took. */
  CHECK_EQ_INT(counter("otelcol_processor_outgoing_items",
                       "otel_signal=\"traces\",processor=\"batch/retry\""),
               33);
  CHECK_EQ_INT(counter("otelcol_processor_batch_refused_items", "processor=\"batch/retry\""), 0);
  proc_close(&p);
  CHECK_EQ_INT(dropped_any("batch/retry"), 0);
  CHECK_EQ_INT(otc_mem_held(), held);
}

/* A next consumer that refuses until told otherwise: the processor keeps accepting until it holds
 * 2 x 8192 items, then refuses (counted as refused, not incoming) without busy-looping on the next
 * consumer; once that recovers, everything accepted arrives in order and new data is accepted
 * again. */
TEST(refused_until_bound) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/bound", "send_batch_size: 10\ntimeout: 50ms\n", &err) != NULL);
  if (!p.ctx)
    return;
  capture_set_refuse(&p.cap, 1 << 30);
  enum { SPANS = 2000 };
  int counts[16];
  char prefix[16];
  CHECK_EQ_INT(feed(&p, "b0", SPANS), 0);
  CHECK(capture_wait_refusals(&p.cap, 1, 2000) >= 1);
  usleep(20000);
  int accepted = 1, rc = 0;
  while (accepted < 16) {
    snprintf(prefix, sizeof prefix, "b%d", accepted);
    rc = feed(&p, prefix, SPANS);
    if (rc != 0)
      break;
    accepted++;
  }
  /* 9 x 2000 = 18000: the ninth was accepted at 16000 held, the tenth refused at 18000. */
  CHECK_EQ_INT(rc, OTC_ERR_REFUSED);
  CHECK_EQ_INT(accepted, 9);
  CHECK_EQ_INT(feed(&p, "again", SPANS), OTC_ERR_REFUSED);
  CHECK_EQ_INT(counter("otelcol_processor_batch_refused_items", "processor=\"batch/bound\""),
               2 * SPANS);
  CHECK_EQ_INT(counter("otelcol_processor_incoming_items",
                       "otel_signal=\"traces\",processor=\"batch/bound\""),
               accepted * SPANS);
  /* A backoff, not a busy loop: 10, 20, 40, then 50 ms (the timeout) between offers. */
  size_t r0 = capture_refusals(&p.cap);
  usleep(300000);
  size_t r1 = capture_refusals(&p.cap);
  CHECK(r1 - r0 >= 2);
  CHECK(r1 - r0 <= 15);
  CHECK_EQ_INT(capture_count(&p.cap), 0);

  capture_set_refuse(&p.cap, 0);
  CHECK_EQ_INT(capture_wait_items(&p.cap, (size_t)accepted * SPANS, 3000),
               (size_t)accepted * SPANS);
  for (int i = 0; i < accepted; i++)
    counts[i] = SPANS;
  CHECK_EQ_INT(check_sequence(&p.cap, "b", counts, accepted, 0), 0);
  /* No longer blocked: accepted again. */
  CHECK_EQ_INT(feed(&p, "after", 3), 0);
  CHECK_EQ_INT(capture_wait_items(&p.cap, (size_t)accepted * SPANS + 3, 3000),
               (size_t)accepted * SPANS + 3);
  proc_close(&p);
  CHECK_EQ_INT(dropped_any("batch/bound"), 0);
  CHECK_EQ_INT(otc_mem_held(), held);
}

/* Shutdown with a next consumer that never accepts: offered again until the 5 s deadline, then
 * dropped and counted as "shutdown"; afterwards consume forwards and returns the refusal. */
TEST(shutdown_while_refused) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  CHECK(proc_open(&p, "batch/shutref", "send_batch_size: 1000\ntimeout: 20ms\n", &err) != NULL);
  if (!p.ctx)
    return;
  capture_set_refuse(&p.cap, 1 << 30);
  const char *labels = "component=\"batch/shutref\",otel_signal=\"traces\",reason=\"shutdown\"";
  CHECK_EQ_INT(feed(&p, "z", 7), 0);
  CHECK(capture_wait_refusals(&p.cap, 1, 2000) >= 1);
  CHECK_EQ_INT(feed(&p, "w", 3), 0); /* pending behind the refused piece */
  size_t r0 = capture_refusals(&p.cap);
  int64_t t0 = now_ns();
  CHECK_EQ_INT(otc_processor_batch.shutdown(p.ctx), 0);
  int64_t took = now_ns() - t0;
  CHECK(took >= 4500 * 1000000LL);
  CHECK(took < 6500 * 1000000LL);
  /* Offered every 20 ms at most (the timeout caps the backoff), not in a busy loop. */
  CHECK(capture_refusals(&p.cap) - r0 >= 10);
  CHECK(capture_refusals(&p.cap) - r0 <= 300);
  CHECK_EQ_INT(counter("otelcol_dropped_items", labels), 10);
  CHECK_EQ_INT(capture_count(&p.cap), 0);
  /* After shutdown a batch goes straight through, and the refusal comes back to the caller. */
  CHECK_EQ_INT(feed(&p, "late", 1), OTC_ERR_REFUSED);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

TEST(self_metrics_rendered) {
  char *text = NULL;
  size_t len = 0;
  struct otc_metrics_render_opts opts = {0};
  CHECK_EQ_INT(otc_metrics_render(&opts, &text, &len), 0);
  CHECK_CONTAINS(text, "otelcol_processor_batch_batch_send_size_bucket{processor=\"batch/size\"");
  CHECK_CONTAINS(text, "otelcol_processor_batch_batch_send_size_bytes_bucket");
  CHECK_CONTAINS(text, "otelcol_processor_batch_metadata_cardinality{processor=\"batch/size\"} 1");
  /* The size-trigger test sent one batch of 12 items: bucket le=25 holds it, le=10 does not. */
  CHECK_CONTAINS(
      text, "otelcol_processor_batch_batch_send_size_bucket{processor=\"batch/size\",le=\"10\"} 0");
  CHECK_CONTAINS(
      text, "otelcol_processor_batch_batch_send_size_bucket{processor=\"batch/size\",le=\"25\"} 1");
  free(text);
}

/* Logs go through the same code: a merge of log requests stays a valid logs request. */
TEST(logs_merge) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct capture cap;
  capture_init(&cap);
  struct otc_cfg_node *cfg = otc_cfg_load_string("send_batch_size: 3\n", 19, "<test>", &err);
  struct otc_create_args args = {.id = "batch/logs",
                                 .signal = OTC_SIGNAL_LOGS,
                                 .next = {.consume = capture_consume, .ctx = &cap}};
  void *ctx = otc_processor_batch.create(&args, cfg, &err);
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  CHECK_EQ_INT(otc_processor_batch.start(ctx), 0);
  for (int i = 0; i < 3; i++) {
    Opentelemetry__Proto__Logs__V1__LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    Opentelemetry__Proto__Logs__V1__LogRecord *lrp = &lr;
    lr.severity_text = i == 0 ? "A" : i == 1 ? "B" : "C";
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &sl;
    sl.n_log_records = 1;
    sl.log_records = &lrp;
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &rl;
    rl.n_scope_logs = 1;
    rl.scope_logs = &slp;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.n_resource_logs = 1;
    req.resource_logs = &rlp;
    uint8_t buf[256];
    size_t n =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, buf);
    otc_processor_batch.consume(ctx, otc_batch_copy(OTC_SIGNAL_LOGS, buf, n, 1, false, NULL));
  }
  CHECK_EQ_INT(capture_wait(&cap, 1, 2000), 1);
  if (cap.n == 1) {
    CHECK_EQ_INT(cap.got[0]->items, 3);
    CHECK(cap.got[0]->signal == OTC_SIGNAL_LOGS);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
            NULL, cap.got[0]->len, cap.got[0]->data);
    CHECK(req && req->n_resource_logs == 3);
    if (req) {
      CHECK_EQ_STR(req->resource_logs[2]->scope_logs[0]->log_records[0]->severity_text, "C");
      opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req,
                                                                                            NULL);
    }
  }
  otc_processor_batch.shutdown(ctx);
  otc_processor_batch.destroy(ctx);
  capture_free(&cap);
  otc_cfg_free(cfg);
  CHECK_EQ_INT(otc_mem_held(), held);
}

/* Many producers at once: every item arrives exactly once, in batches of at most max. */
struct producer {
  struct proc *p;
  int id;
};

static void *produce(void *arg) {
  struct producer *pr = arg;
  char prefix[16];
  snprintf(prefix, sizeof prefix, "t%d", pr->id);
  for (int i = 0; i < 50; i++)
    feed(pr->p, prefix, 1 + (i % 3));
  return NULL;
}

static size_t total_items;
static int count_consume(void *ctx, struct otc_batch *b) {
  size_t max = *(size_t *)ctx;
  if (b->items > max)
    __atomic_add_fetch(&total_items, 1000000, __ATOMIC_RELAXED); /* flags a batch over max */
  __atomic_add_fetch(&total_items, b->items, __ATOMIC_RELAXED);
  otc_batch_unref(b);
  return 0;
}

TEST(concurrent_producers) {
  uint64_t held = otc_mem_held();
  struct otc_cfg_err err;
  struct proc p;
  memset(&p, 0, sizeof p);
  capture_init(&p.cap);
  const char *yaml = "send_batch_size: 16\nsend_batch_max_size: 20\ntimeout: 5ms\n";
  p.cfg = otc_cfg_load_string(yaml, strlen(yaml), "<test>", &err);
  size_t max = 20;
  struct otc_create_args args = {.id = "batch/conc",
                                 .signal = OTC_SIGNAL_TRACES,
                                 .next = {.consume = count_consume, .ctx = &max}};
  p.ctx = otc_processor_batch.create(&args, p.cfg, &err);
  CHECK(p.ctx != NULL);
  if (!p.ctx)
    return;
  CHECK_EQ_INT(otc_processor_batch.start(p.ctx), 0);
  total_items = 0;
  pthread_t th[4];
  struct producer pr[4];
  for (int i = 0; i < 4; i++) {
    pr[i] = (struct producer){&p, i};
    pthread_create(&th[i], NULL, produce, &pr[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  otc_processor_batch.shutdown(p.ctx);
  /* Each producer sends 50 batches of 1, 2, 3, 1, 2, 3... items: 99 items. */
  CHECK_EQ_INT(__atomic_load_n(&total_items, __ATOMIC_RELAXED), 4 * 99);
  proc_close(&p);
  CHECK_EQ_INT(otc_mem_held(), held);
}

int main(void) {
  RUN(config);
  RUN(size_trigger);
  RUN(size_trigger_with_max);
  RUN(size_trigger_joined);
  RUN(timeout_trigger);
  RUN(max_split_exact);
  RUN(shutdown_flushes);
  RUN(pass_through);
  RUN(next_fails);
  RUN(refused_then_accepted);
  RUN(refused_until_bound);
  RUN(shutdown_while_refused);
  RUN(self_metrics_rendered);
  RUN(logs_merge);
  RUN(concurrent_producers);
  otc_metrics_reset();
  return TEST_REPORT();
}
