/* The service's log: one JSON object a line on stdout, {"timestamp","level","message",...}, with
 * trace_id and span_id when a span is active, and the same record sent as an OTLP log through
 * the telemetry SDK. Thread safe: a line is written with one write(2). */
#ifndef TODO_LOG_H
#define TODO_LOG_H

#include "otel.h"

enum todo_level { TODO_LOG_DEBUG, TODO_LOG_INFO, TODO_LOG_WARN, TODO_LOG_ERROR };

/* Sets the SDK that receives a copy of every record (borrowed; NULL stops forwarding) and the
 * lowest level written. */
void todo_log_init(struct todo_tel *tel, enum todo_level min_level);

/* Writes one record: message and fields are copied into the line; ctx may be NULL. */
void todo_log(enum todo_level level, const struct todo_span_context *ctx, const char *message,
              const struct todo_attr *fields, size_t n_fields);

/* A record without span or fields, the message formatted like printf. */
void todo_logf(enum todo_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
