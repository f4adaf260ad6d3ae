/* What the two OTLP exporters (otlp_grpc_exporter.c, otlp_http_exporter.c) share: reading the
 * answers of an OTLP server. Both transports carry the same messages: an
 * Export{Trace,Metrics,Logs}ServiceResponse whose partial_success counts what the server
 * rejected, and, on failure, a google.rpc.Status that may hold a RetryInfo. Internal to this
 * folder.
 *
 * The server is untrusted: the bodies are bounded by the transport (gRPC's receive limit, the HTTP
 * client's response cap), and the messages read here are flat (no recursive fields), so protobuf-c
 * may unpack them without a depth check. */
#ifndef OTC_OTLP_EXPORTER_H
#define OTC_OTLP_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/signal.h"

/* A partial_success as read from a response. */
struct otlp_exp_partial {
  int64_t rejected; /* rejected_spans / rejected_data_points / rejected_log_records */
  char message[256];
};

/* Reads the partial_success of a protobuf Export*ServiceResponse of signal s. An empty body is a
 * valid empty response. Returns 0 (out filled, zero when absent) or OTC_ERR_INVALID. */
int otlp_exp__partial_from_proto(enum otc_signal s, const uint8_t *buf, size_t len,
                                 struct otlp_exp_partial *out);
/* The same from the OTLP JSON form ({"partialSuccess":{"rejectedSpans":"2","errorMessage":..}}),
 * accepting the snake_case names and 64-bit integers as strings or numbers. */
int otlp_exp__partial_from_json(enum otc_signal s, const uint8_t *buf, size_t len,
                                struct otlp_exp_partial *out);

/* A google.rpc.Status as read from an error answer. */
struct otlp_exp_status {
  int32_t code;
  char message[256];      /* printable ASCII only: it goes into logs and reasons */
  int64_t retry_delay_ns; /* from a google.rpc.RetryInfo detail; -1 when there is none */
};

/* Reads a protobuf google.rpc.Status. Returns 0 or OTC_ERR_INVALID (not a Status). */
int otlp_exp__status_from_proto(const uint8_t *buf, size_t len, struct otlp_exp_status *out);
/* Reads the JSON form {"code":3,"message":"...","details":[{"@type":"...RetryInfo",
 * "retryDelay":"1.5s"}]}. Returns 0 or OTC_ERR_INVALID. */
int otlp_exp__status_from_json(const uint8_t *buf, size_t len, struct otlp_exp_status *out);

/* Accounts for a partial success of a batch of `items` items of signal s: the rejected items
 * (at most `items`) are counted in otelcol_dropped_items{reason="partial_success"} and the
 * server's message is logged through the limiter rl under component id (a server that rejects
 * part of every request must not flood the log). */
void otlp_exp__report_partial(const char *id, struct otc_log_limiter *rl, enum otc_signal s,
                              size_t items, const struct otlp_exp_partial *p);

#endif
