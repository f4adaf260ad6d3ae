/* A small OpenTelemetry SDK for C: spans, metrics and logs, exported over OTLP/HTTP protobuf from
 * one background thread.
 *
 * There is no official OpenTelemetry SDK for C, so the Todo API carries this one. It keeps to the
 * parts of the specification that a request/response service needs:
 *   - traces: W3C trace context, parent-based always-on sampling, a bounded queue of ended spans;
 *   - metrics: counters, up-down counters, explicit-bucket histograms and observable gauges, all
 *     cumulative, collected periodically and rendered in Prometheus text on demand;
 *   - logs: records correlated with the active span;
 *   - configuration from the standard OTEL_* environment variables.
 *
 * Threading: every function may be called from any thread. Recording (span end, log emit, metric
 * update) takes one short mutex and never waits for the network: when a queue is full the item is
 * dropped and counted. All network I/O happens on the exporter thread.
 *
 * Ownership: strings passed in are copied unless a comment says otherwise. A NULL struct todo_tel
 * or NULL span is accepted everywhere and means "telemetry disabled". */
#ifndef TODO_OTEL_H
#define TODO_OTEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------- attributes ---------- */

enum todo_attr_type { TODO_ATTR_STRING, TODO_ATTR_INT, TODO_ATTR_DOUBLE, TODO_ATTR_BOOL };

/* A borrowed key/value pair, used to pass attributes in; the SDK copies what it keeps. */
struct todo_attr {
  const char *key;
  enum todo_attr_type type;
  union {
    const char *s;
    int64_t i;
    double d;
    bool b;
  } v;
};

#define TODO_ATTR_STR(k, val)                                                                      \
  ((struct todo_attr){.key = (k), .type = TODO_ATTR_STRING, .v.s = (val)})
#define TODO_ATTR_INT(k, val) ((struct todo_attr){.key = (k), .type = TODO_ATTR_INT, .v.i = (val)})
#define TODO_ATTR_DBL(k, val)                                                                      \
  ((struct todo_attr){.key = (k), .type = TODO_ATTR_DOUBLE, .v.d = (val)})
#define TODO_ATTR_BOOL(k, val)                                                                     \
  ((struct todo_attr){.key = (k), .type = TODO_ATTR_BOOL, .v.b = (val)})

/* ---------- trace context (W3C Trace Context level 1) ---------- */

#define TODO_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TODO_TRACESTATE_MAX 512 /* the W3C limit is 32 members; longer headers are dropped */
#define TODO_TRACE_FLAG_SAMPLED 0x01

struct todo_span_context {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t flags;
  bool remote;
  char trace_state[TODO_TRACESTATE_MAX + 1];
};

/* True when both ids are non-zero. */
bool todo_span_context_valid(const struct todo_span_context *ctx);

/* Parses a traceparent header (and an optional tracestate header, which may be NULL) into out.
 * Returns 0, or -1 when the traceparent is absent or invalid per W3C Trace Context (the caller then
 * starts a new trace). A tracestate that is too long or malformed is dropped, not an error. */
int todo_traceparent_parse(const char *traceparent, const char *tracestate,
                           struct todo_span_context *out);

/* Writes "00-<trace id>-<span id>-<flags>" and a terminating NUL into out. */
void todo_traceparent_format(const struct todo_span_context *ctx,
                             char out[TODO_TRACEPARENT_LEN + 1]);

/* Lowercase hex of n bytes into out (2n characters and a NUL). */
void todo_hex_encode(const uint8_t *bytes, size_t n, char *out);

/* ---------- configuration ---------- */

struct todo_tel_config {
  bool disabled;         /* OTEL_SDK_DISABLED=true */
  char *service_name;    /* OTEL_SERVICE_NAME, else service.name from the resource, else default */
  char *service_version; /* may be NULL */
  struct todo_tel_kv *resource; /* OTEL_RESOURCE_ATTRIBUTES, percent-decoded, owned */
  size_t n_resource;
  char *traces_endpoint; /* full URLs; NULL disables that signal's export */
  char *metrics_endpoint;
  char *logs_endpoint;
  struct todo_tel_kv *headers; /* OTEL_EXPORTER_OTLP_HEADERS, owned */
  size_t n_headers;
  int export_timeout_ms;   /* OTEL_EXPORTER_OTLP_TIMEOUT, default 5000 */
  int metric_interval_ms;  /* OTEL_METRIC_EXPORT_INTERVAL, default 60000 */
  int bsp_delay_ms;        /* OTEL_BSP_SCHEDULE_DELAY, default 5000 */
  int blrp_delay_ms;       /* OTEL_BLRP_SCHEDULE_DELAY, default 1000 */
  size_t span_queue_size;  /* OTEL_BSP_MAX_QUEUE_SIZE, default 2048 */
  size_t log_queue_size;   /* OTEL_BLRP_MAX_QUEUE_SIZE, default 2048 */
  size_t max_export_batch; /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512 */
};

struct todo_tel_kv {
  char *key;
  char *value;
};

/* Fills cfg from the environment, with default_service_name used when neither OTEL_SERVICE_NAME
 * nor service.name is set. Invalid values are reported on stderr and replaced by defaults: a
 * misconfigured exporter must not stop the service. Returns 0, or -1 when out of memory.
 * The caller owns cfg's strings and releases them with todo_tel_config_free. */
int todo_tel_config_from_env(struct todo_tel_config *cfg, const char *default_service_name);
void todo_tel_config_free(struct todo_tel_config *cfg);

/* Parses "k=v,k=v" with percent-decoded values (the OTEL_RESOURCE_ATTRIBUTES syntax). Invalid
 * members are skipped. Returns 0 or -1 when out of memory; *out (owned by the caller, freed with
 * todo_tel_kv_free) may be empty. */
int todo_tel_parse_kv_list(const char *s, struct todo_tel_kv **out, size_t *n_out);
void todo_tel_kv_free(struct todo_tel_kv *kv, size_t n);

/* Builds the URL of one signal: the per-signal variable as is, else the base endpoint with
 * "v1/<signal>" appended. Returns a malloc'd string (caller frees) or NULL when out of memory. */
char *todo_tel_signal_url(const char *base, const char *per_signal, const char *signal_path);

/* ---------- metrics ---------- */

struct todo_meter;
struct todo_instrument;
struct todo_observer;

/* An observable instrument's callback: calls todo_observe for each point it reports. It runs on
 * the collecting thread (the exporter, or a /metrics request) and must be thread safe. */
typedef void (*todo_observe_fn)(struct todo_observer *obs, void *arg);

/* Creates an empty registry. It exists without an exporter so that Prometheus text can be served
 * when the SDK is disabled. Returns NULL when out of memory. Free with todo_meter_destroy. */
struct todo_meter *todo_meter_create(void);
void todo_meter_destroy(struct todo_meter *m);

/* Instruments live as long as the meter and are freed with it. name, unit and description are
 * copied. Creating returns NULL when out of memory or when the meter holds too many instruments. */
struct todo_instrument *todo_meter_counter(struct todo_meter *m, const char *name, const char *unit,
                                           const char *description);
struct todo_instrument *todo_meter_updown_counter(struct todo_meter *m, const char *name,
                                                  const char *unit, const char *description);
/* bounds: n_bounds strictly increasing upper bounds, copied. */
struct todo_instrument *todo_meter_histogram(struct todo_meter *m, const char *name,
                                             const char *unit, const char *description,
                                             const double *bounds, size_t n_bounds);
struct todo_instrument *todo_meter_observable_gauge(struct todo_meter *m, const char *name,
                                                    const char *unit, const char *description,
                                                    todo_observe_fn fn, void *arg);
struct todo_instrument *todo_meter_observable_updown_counter(struct todo_meter *m, const char *name,
                                                             const char *unit,
                                                             const char *description,
                                                             todo_observe_fn fn, void *arg);
struct todo_instrument *todo_meter_observable_counter(struct todo_meter *m, const char *name,
                                                      const char *unit, const char *description,
                                                      todo_observe_fn fn, void *arg);

/* Recording. attrs are borrowed for the call. Each instrument keeps at most TODO_METRIC_MAX_POINTS
 * attribute sets; further sets are folded into one point marked otel.metric.overflow=true, as the
 * specification's cardinality limit does. */
#define TODO_METRIC_MAX_POINTS 500
#define TODO_METRIC_MAX_ATTRS 8
void todo_counter_add(struct todo_instrument *inst, int64_t delta, const struct todo_attr *attrs,
                      size_t n_attrs);
void todo_histogram_record(struct todo_instrument *inst, double value,
                           const struct todo_attr *attrs, size_t n_attrs);
void todo_observe(struct todo_observer *obs, double value, const struct todo_attr *attrs,
                  size_t n_attrs);

/* Renders every instrument in Prometheus text exposition format 0.0.4 (names converted as the
 * OpenTelemetry to Prometheus compatibility specification says). Returns a malloc'd string that
 * the caller frees, or NULL when out of memory. */
char *todo_meter_render_prometheus(struct todo_meter *m);

/* ---------- the SDK instance ---------- */

struct todo_tel;

/* Creates the SDK from cfg (copied) and meter (borrowed; it must outlive the SDK). When
 * cfg->disabled, a valid but inert instance is returned. Starts the exporter thread. Returns NULL
 * when out of memory or when the thread cannot start. Free with todo_tel_destroy, which flushes. */
struct todo_tel *todo_tel_create(const struct todo_tel_config *cfg, struct todo_meter *meter);

/* Exports what is queued, a last collection of metrics included, within the export timeout, then
 * stops the thread. Idempotent. */
void todo_tel_shutdown(struct todo_tel *tel);
void todo_tel_destroy(struct todo_tel *tel);

bool todo_tel_enabled(const struct todo_tel *tel);

struct todo_tel_stats {
  uint64_t spans_dropped, logs_dropped; /* queue full */
  uint64_t spans_exported, logs_exported, metric_exports;
  uint64_t spans_failed, logs_failed, metrics_failed; /* the collector refused or was unreachable */
};
void todo_tel_get_stats(struct todo_tel *tel, struct todo_tel_stats *out);

/* ---------- spans ---------- */

enum todo_span_kind {
  TODO_SPAN_INTERNAL = 1,
  TODO_SPAN_SERVER = 2,
  TODO_SPAN_CLIENT = 3,
  TODO_SPAN_PRODUCER = 4,
  TODO_SPAN_CONSUMER = 5,
};

enum todo_status { TODO_STATUS_UNSET = 0, TODO_STATUS_OK = 1, TODO_STATUS_ERROR = 2 };

struct todo_span;

/* Starts a span as a child of parent (NULL or invalid: a new trace). A parent that is not sampled
 * yields a non-recording span that still carries a context to propagate. Returns NULL when tel is
 * NULL or disabled, or when out of memory; every span function accepts NULL. */
struct todo_span *todo_span_start(struct todo_tel *tel, const char *name, enum todo_span_kind kind,
                                  const struct todo_span_context *parent);
void todo_span_set_name(struct todo_span *span, const char *name);
void todo_span_set_attr(struct todo_span *span, struct todo_attr attr);
void todo_span_set_status(struct todo_span *span, enum todo_status code, const char *message);
/* The span's own context; NULL for a NULL span. Valid until todo_span_end. */
const struct todo_span_context *todo_span_get_context(const struct todo_span *span);
/* Ends the span and takes it: it is queued for export (or dropped and counted when the queue is
 * full) and must not be used afterwards. */
void todo_span_end(struct todo_span *span);

/* ---------- logs ---------- */

enum todo_severity {
  TODO_SEV_DEBUG = 5,
  TODO_SEV_INFO = 9,
  TODO_SEV_WARN = 13,
  TODO_SEV_ERROR = 17,
  TODO_SEV_FATAL = 21,
};

/* Queues a log record with the given body and attributes (copied), correlated with ctx (may be
 * NULL). time_ns 0 means now. Drops and counts when the queue is full. */
void todo_log_emit(struct todo_tel *tel, uint64_t time_ns, enum todo_severity severity,
                   const char *body, const struct todo_span_context *ctx,
                   const struct todo_attr *attrs, size_t n_attrs);

/* Wall-clock time in nanoseconds since the epoch. */
uint64_t todo_now_ns(void);

#endif
