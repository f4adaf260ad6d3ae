/* Self-telemetry: counters, gauges and histograms kept in process and rendered in the Prometheus
 * text format on the service.telemetry metrics endpoint, named as the OpenTelemetry Collector names
 * its own (otelcol_receiver_accepted_spans{receiver,transport}...) so that Collector dashboards
 * work unchanged. Registration is idempotent (same name and labels → same instrument) and thread
 * safe; updates are lock-free atomics. Instruments live until process exit (otc_metrics_reset frees
 * them, for tests). */
#ifndef OTC_METRICS_H
#define OTC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/signal.h"

struct otc_counter;
struct otc_gauge;
struct otc_histogram;

/* name without any _total suffix (the renderer adds it when asked); labels is the inside of the
 * braces, already escaped, e.g. `receiver="otlp",transport="grpc"`, or "" for none. */
struct otc_counter *otc_counter_get(const char *name, const char *help, const char *labels);
void otc_counter_add(struct otc_counter *c, uint64_t v); /* NULL is a no-op */
uint64_t otc_counter_value(const struct otc_counter *c);

struct otc_gauge *otc_gauge_get(const char *name, const char *help, const char *labels);
void otc_gauge_set(struct otc_gauge *g, double v);
void otc_gauge_add(struct otc_gauge *g, double v);
double otc_gauge_value(const struct otc_gauge *g);
/* A gauge read at render time: fn(arg) is called with no lock held by the caller's data. */
void otc_gauge_func(const char *name, const char *help, const char *labels, double (*fn)(void *),
                    void *arg);

/* bounds: ascending upper bounds (the +Inf bucket is implied). */
struct otc_histogram *otc_histogram_get(const char *name, const char *help, const char *labels,
                                        const double *bounds, size_t n_bounds);
void otc_histogram_observe(struct otc_histogram *h, double v);

struct otc_metrics_render_opts {
  int total_suffix; /* append _total to counter names (otelcol's without_type_suffix: false) */
  int unit_suffix;  /* keep unit suffixes (without_units: false); reserved, names carry none now */
};
/* Renders every instrument in the Prometheus text exposition format (0.0.4). *out is malloc'd and
 * NUL-terminated; the caller frees it. */
int otc_metrics_render(const struct otc_metrics_render_opts *opts, char **out, size_t *len);
/* Frees every instrument (tests only; no instrument pointer may be used after). */
void otc_metrics_reset(void);

/* The standard instruments of a receiver, per signal (otelcol_receiver_{accepted,refused,failed}_*
 * with receiver and transport labels). */
struct otc_receiver_metrics {
  struct otc_counter *accepted[OTC_SIGNAL_COUNT];
  struct otc_counter *refused[OTC_SIGNAL_COUNT];
  struct otc_counter *failed[OTC_SIGNAL_COUNT];
  struct otc_counter *requests_rejected; /* ours: otelcol_receiver_rejected_requests (bad input) */
};
void otc_receiver_metrics_init(struct otc_receiver_metrics *m, const char *receiver_id,
                               const char *transport);

/* The standard instruments of an exporter, per signal (otelcol_exporter_{sent,send_failed,
 * enqueue_failed}_* with the exporter label). */
struct otc_exporter_metrics {
  struct otc_counter *sent[OTC_SIGNAL_COUNT];
  struct otc_counter *send_failed[OTC_SIGNAL_COUNT];
  struct otc_counter *enqueue_failed[OTC_SIGNAL_COUNT];
};
void otc_exporter_metrics_init(struct otc_exporter_metrics *m, const char *exporter_id);

/* Items dropped inside the collector, by component and reason (ours:
 * otelcol_dropped_items{component,otel_signal,reason}). */
void otc_count_dropped(const char *component_id, enum otc_signal s, const char *reason,
                       uint64_t items);

/* The telemetry HTTP server: GET /metrics on host:port. Returns 0 or an error code. */
int otc_telemetry_server_start(const char *host, int port,
                               const struct otc_metrics_render_opts *opts);
void otc_telemetry_server_stop(void);

/* Additions by the telemetry unit. */

/* A counter read at render time (for values the process keeps elsewhere, such as CPU time):
 * rendered with TYPE counter like otc_counter_get's, fn(arg) called outside the registry lock. */
void otc_counter_func(const char *name, const char *help, const char *labels, double (*fn)(void *),
                      void *arg);

/* Escapes a label value for the text format (backslash, double quote and newline) into out, which
 * has room for cap bytes; the result is always NUL-terminated and cut short if it does not fit.
 * Returns out, so that callers can build label strings with snprintf in one expression. */
char *otc_metrics_escape_label(const char *value, char *out, size_t cap);

/* The process instruments, read at render time: otelcol_process_uptime (seconds, a counter as in
 * otelcol), otelcol_process_memory_rss (bytes), otelcol_process_cpu_seconds (a counter), and ours:
 * otelcol_memory_limiter_held_bytes, otelcol_memory_limiter_limit_bytes and
 * otelcol_memory_limiter_admission_refused (a counter). Idempotent. */
void otc_metrics_register_process(void);

/* The port the telemetry server listens on (useful when started on port 0), or 0 if not running. */
int otc_telemetry_server_port(void);

#endif
