/* Internals shared by the telemetry SDK's files: the arena, owned attributes, span and log
 * records, metric snapshots and the protobuf encoders. Not for the application. */
#ifndef TODO_OTEL_INTERNAL_H
#define TODO_OTEL_INTERNAL_H

#include "otel.h"

#include <pthread.h>

#define TODO_SPAN_MAX_ATTRS 32
#define TODO_LOG_MAX_ATTRS 16
#define TODO_TEL_MAX_INSTRUMENTS 64
/* Strings kept in telemetry are cut at this many bytes (at a UTF-8 boundary): a span attribute
 * holding a 64 KiB request body would make the export, not the request, the bottleneck. */
#define TODO_TEL_MAX_STRING 4096

/* ---------- arena: many small allocations freed in one call ---------- */

struct todo_tel__chunk;
struct todo_tel__arena {
  struct todo_tel__chunk *head;
};

/* Returns zeroed memory owned by the arena, or NULL when out of memory. */
void *todo_tel__arena_alloc(struct todo_tel__arena *a, size_t n);
/* Copies s (at most max bytes, cut at a UTF-8 boundary) into the arena; NULL s gives NULL. */
char *todo_tel__arena_strndup(struct todo_tel__arena *a, const char *s, size_t max);
/* Frees every allocation; the arena can be reused afterwards. */
void todo_tel__arena_free(struct todo_tel__arena *a);

/* ---------- owned attributes ---------- */

struct todo_tel__attr {
  char *key;
  enum todo_attr_type type;
  union {
    char *s;
    int64_t i;
    double d;
    bool b;
  } v;
};

/* Copies src into dst with strings allocated in a. Returns 0 or -1 when out of memory. */
int todo_tel__attr_copy(struct todo_tel__arena *a, struct todo_tel__attr *dst,
                        const struct todo_attr *src);

/* ---------- records ---------- */

struct todo_span {
  struct todo_tel *tel;
  struct todo_span_context ctx;
  uint8_t parent_span_id[8];
  bool has_parent;
  bool recording;
  enum todo_span_kind kind;
  enum todo_status status;
  char *name;
  char *status_message;
  uint64_t start_ns, end_ns;
  size_t n_attrs;
  uint32_t dropped_attrs;
  struct todo_tel__attr attrs[TODO_SPAN_MAX_ATTRS];
  struct todo_tel__arena arena;
};

struct todo_tel__log {
  uint64_t time_ns, observed_ns;
  enum todo_severity severity;
  char *body;
  bool has_ctx;
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t flags;
  size_t n_attrs;
  uint32_t dropped_attrs;
  struct todo_tel__attr attrs[TODO_LOG_MAX_ATTRS];
  struct todo_tel__arena arena;
};

/* Frees a span or log record; NULL is a no-op. */
void todo_tel__span_free(struct todo_span *span);
void todo_tel__log_free(struct todo_tel__log *log);

/* Hands an ended span or a log record to the exporter queue. Takes ownership either way: when the
 * queue is full or the signal is not exported, the record is freed (and counted as dropped). */
void todo_tel__enqueue_span(struct todo_tel *tel, struct todo_span *span);
void todo_tel__enqueue_log(struct todo_tel *tel, struct todo_tel__log *log);

/* Fills n random bytes, never all zero (a zero id is invalid). Thread safe and cheap. */
void todo_tel__random_id(uint8_t *out, size_t n);

/* ---------- metrics ---------- */

enum todo_tel__kind {
  TODO_TEL_COUNTER,
  TODO_TEL_UPDOWN,
  TODO_TEL_HISTOGRAM,
  TODO_TEL_OBS_GAUGE,
  TODO_TEL_OBS_UPDOWN,
  TODO_TEL_OBS_COUNTER,
};

struct todo_tel__point {
  size_t n_attrs;
  struct todo_tel__attr attrs[TODO_METRIC_MAX_ATTRS + 1]; /* sorted by key; +1 for overflow */
  double value;                                           /* sums and gauges */
  uint64_t count;                                         /* histograms */
  double sum, min, max;
  uint64_t *buckets; /* n_bounds + 1 counts */
};

/* One instrument's points at collection time, deep-copied into the snapshot's arena. */
struct todo_tel__metric {
  const char *name, *unit, *description; /* the instrument's, immutable */
  enum todo_tel__kind kind;
  const double *bounds;
  size_t n_bounds;
  struct todo_tel__point *points;
  size_t n_points;
};

struct todo_tel__snapshot {
  uint64_t start_ns, time_ns;
  struct todo_tel__metric *metrics;
  size_t n_metrics;
  struct todo_tel__arena arena;
};

/* Collects every instrument (running the observable callbacks) into out, which the caller frees
 * with todo_tel__snapshot_free. Returns 0 or -1 when out of memory. */
int todo_tel__meter_collect(struct todo_meter *m, struct todo_tel__snapshot *out);
void todo_tel__snapshot_free(struct todo_tel__snapshot *snap);

/* ---------- encoding (protobuf, OTLP v1) ---------- */

struct todo_tel__resource {
  struct todo_tel__attr *attrs;
  size_t n_attrs;
};

/* Each encoder packs an Export*ServiceRequest into *out (malloc'd, the caller frees) and sets
 * *out_len. The records are borrowed. Returns 0 or -1 when out of memory. */
int todo_tel__encode_spans(const struct todo_tel__resource *res, struct todo_span *const *spans,
                           size_t n, uint8_t **out, size_t *out_len);
int todo_tel__encode_logs(const struct todo_tel__resource *res, struct todo_tel__log *const *logs,
                          size_t n, uint8_t **out, size_t *out_len);
int todo_tel__encode_metrics(const struct todo_tel__resource *res,
                             const struct todo_tel__snapshot *snap, uint8_t **out, size_t *out_len);

#define TODO_TEL_SCOPE_NAME "todo-api"
#define TODO_TEL_SDK_NAME "todo-api-otel-c"
#define TODO_TEL_SDK_VERSION "0.1.0"

#endif
