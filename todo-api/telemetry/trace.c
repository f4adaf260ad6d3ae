/* Spans: start, attributes, status, end. Sampling is the specification's default,
 * ParentBased(AlwaysOn): a root span is sampled, a child follows its parent's sampled flag. */
#include "otel_internal.h"

#include <stdlib.h>
#include <string.h>

struct todo_span *todo_span_start(struct todo_tel *tel, const char *name, enum todo_span_kind kind,
                                  const struct todo_span_context *parent) {
  if (!tel || !todo_tel_enabled(tel)) {
    return NULL;
  }
  struct todo_span *span = calloc(1, sizeof(*span));
  if (!span) {
    return NULL;
  }
  span->tel = tel;
  span->kind = kind;
  span->start_ns = todo_now_ns();
  if (parent && todo_span_context_valid(parent)) {
    memcpy(span->ctx.trace_id, parent->trace_id, 16);
    memcpy(span->parent_span_id, parent->span_id, 8);
    memcpy(span->ctx.trace_state, parent->trace_state, sizeof(span->ctx.trace_state));
    span->ctx.flags = parent->flags & TODO_TRACE_FLAG_SAMPLED;
    span->has_parent = true;
  } else {
    todo_tel__random_id(span->ctx.trace_id, 16);
    span->ctx.flags = TODO_TRACE_FLAG_SAMPLED;
  }
  todo_tel__random_id(span->ctx.span_id, 8);
  span->recording = (span->ctx.flags & TODO_TRACE_FLAG_SAMPLED) != 0;
  span->name = todo_tel__arena_strndup(&span->arena, name ? name : "", 256);
  if (!span->name) {
    todo_tel__span_free(span);
    return NULL;
  }
  return span;
}

void todo_span_set_name(struct todo_span *span, const char *name) {
  if (!span || !span->recording || !name) {
    return;
  }
  char *copy = todo_tel__arena_strndup(&span->arena, name, 256);
  if (copy) {
    span->name = copy;
  }
}

void todo_span_set_attr(struct todo_span *span, struct todo_attr attr) {
  if (!span || !span->recording || !attr.key) {
    return;
  }
  /* Setting a key again replaces its value, as the specification says. */
  size_t i = 0;
  while (i < span->n_attrs && strcmp(span->attrs[i].key, attr.key) != 0) {
    i++;
  }
  if (i == TODO_SPAN_MAX_ATTRS) {
    span->dropped_attrs++;
    return;
  }
  struct todo_tel__attr copy;
  if (todo_tel__attr_copy(&span->arena, &copy, &attr) != 0) {
    span->dropped_attrs++;
    return;
  }
  span->attrs[i] = copy;
  if (i == span->n_attrs) {
    span->n_attrs++;
  }
}

void todo_span_set_status(struct todo_span *span, enum todo_status code, const char *message) {
  if (!span || !span->recording) {
    return;
  }
  /* OK is final; UNSET never overrides; a description belongs to ERROR only. */
  if (span->status == TODO_STATUS_OK || code == TODO_STATUS_UNSET) {
    return;
  }
  span->status = code;
  span->status_message = NULL;
  if (code == TODO_STATUS_ERROR && message) {
    span->status_message = todo_tel__arena_strndup(&span->arena, message, 1024);
  }
}

const struct todo_span_context *todo_span_get_context(const struct todo_span *span) {
  return span ? &span->ctx : NULL;
}

void todo_span_end(struct todo_span *span) {
  if (!span) {
    return;
  }
  if (!span->recording) {
    todo_tel__span_free(span);
    return;
  }
  span->end_ns = todo_now_ns();
  if (span->end_ns < span->start_ns) {
    span->end_ns = span->start_ns;
  }
  todo_tel__enqueue_span(span->tel, span);
}

void todo_tel__span_free(struct todo_span *span) {
  if (!span) {
    return;
  }
  todo_tel__arena_free(&span->arena);
  free(span);
}

void todo_log_emit(struct todo_tel *tel, uint64_t time_ns, enum todo_severity severity,
                   const char *body, const struct todo_span_context *ctx,
                   const struct todo_attr *attrs, size_t n_attrs) {
  if (!tel || !todo_tel_enabled(tel)) {
    return;
  }
  struct todo_tel__log *log = calloc(1, sizeof(*log));
  if (!log) {
    return;
  }
  log->observed_ns = todo_now_ns();
  log->time_ns = time_ns ? time_ns : log->observed_ns;
  log->severity = severity;
  log->body = todo_tel__arena_strndup(&log->arena, body ? body : "", TODO_TEL_MAX_STRING);
  if (!log->body) {
    todo_tel__log_free(log);
    return;
  }
  if (ctx && todo_span_context_valid(ctx)) {
    log->has_ctx = true;
    memcpy(log->trace_id, ctx->trace_id, 16);
    memcpy(log->span_id, ctx->span_id, 8);
    log->flags = ctx->flags;
  }
  for (size_t i = 0; i < n_attrs; i++) {
    /* A string attribute without a value (JSON null in the log line) is left out. */
    if (attrs[i].type == TODO_ATTR_STRING && !attrs[i].v.s) {
      continue;
    }
    if (log->n_attrs == TODO_LOG_MAX_ATTRS ||
        todo_tel__attr_copy(&log->arena, &log->attrs[log->n_attrs], &attrs[i]) != 0) {
      log->dropped_attrs++;
      continue;
    }
    log->n_attrs++;
  }
  todo_tel__enqueue_log(tel, log);
}

void todo_tel__log_free(struct todo_tel__log *log) {
  if (!log) {
    return;
  }
  todo_tel__arena_free(&log->arena);
  free(log);
}
