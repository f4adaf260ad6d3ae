#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct todo_tel *log_tel;
static enum todo_level log_min = TODO_LOG_INFO;

void todo_log_init(struct todo_tel *tel, enum todo_level min_level) {
  log_tel = tel;
  log_min = min_level;
}

static const char *level_name(enum todo_level level) {
  switch (level) {
  case TODO_LOG_DEBUG:
    return "debug";
  case TODO_LOG_INFO:
    return "info";
  case TODO_LOG_WARN:
    return "warn";
  case TODO_LOG_ERROR:
    return "error";
  }
  return "info";
}

static enum todo_severity severity(enum todo_level level) {
  switch (level) {
  case TODO_LOG_DEBUG:
    return TODO_SEV_DEBUG;
  case TODO_LOG_INFO:
    return TODO_SEV_INFO;
  case TODO_LOG_WARN:
    return TODO_SEV_WARN;
  case TODO_LOG_ERROR:
    return TODO_SEV_ERROR;
  }
  return TODO_SEV_INFO;
}

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-23T10:00:00.123Z. */
static void format_time(uint64_t ns, char out[32]) {
  time_t secs = (time_t)(ns / 1000000000u);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ns / 1000000u % 1000u));
}

static json_t *attr_json(const struct todo_attr *a) {
  switch (a->type) {
  case TODO_ATTR_STRING:
    return a->v.s ? json_string(a->v.s) : json_null();
  case TODO_ATTR_INT:
    return json_integer((json_int_t)a->v.i);
  case TODO_ATTR_DOUBLE:
    return json_real(a->v.d);
  case TODO_ATTR_BOOL:
    return json_boolean(a->v.b);
  }
  return json_null();
}

/* Writes the whole line with one write(2), so that lines from concurrent threads never mix;
 * a short write is continued. */
static void write_line(const char *s, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, s, len);
    if (n <= 0) {
      return;
    }
    s += n;
    len -= (size_t)n;
  }
}

void todo_log(enum todo_level level, const struct todo_span_context *ctx, const char *message,
              const struct todo_attr *fields, size_t n_fields) {
  char ts[32], trace_id[33], span_id[17];
  json_t *obj = NULL;
  char *line = NULL;
  bool has_ctx = ctx && todo_span_context_valid(ctx);
  if (level < log_min) {
    return;
  }
  uint64_t now = todo_now_ns();
  format_time(now, ts);
  obj = json_object();
  if (!obj) {
    goto cleanup;
  }
  json_object_set_new(obj, "timestamp", json_string(ts));
  json_object_set_new(obj, "level", json_string(level_name(level)));
  json_object_set_new(obj, "message", json_string(message ? message : ""));
  if (has_ctx) {
    todo_hex_encode(ctx->trace_id, 16, trace_id);
    todo_hex_encode(ctx->span_id, 8, span_id);
    json_object_set_new(obj, "trace_id", json_string(trace_id));
    json_object_set_new(obj, "span_id", json_string(span_id));
  }
  for (size_t i = 0; i < n_fields; i++) {
    if (fields[i].key) {
      json_object_set_new(obj, fields[i].key, attr_json(&fields[i]));
    }
  }
  /* JSON_ENSURE_ASCII keeps a line ASCII whatever a message holds; invalid UTF-8 in a message
   * makes json_string fail, which leaves the key out rather than the line. */
  line = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER |
                             JSON_REAL_PRECISION(12));
  if (line) {
    size_t len = strlen(line);
    line[len] = '\n';
    write_line(line, len + 1);
    line[len] = '\0';
  }
  todo_log_emit(log_tel, now, severity(level), message, has_ctx ? ctx : NULL, fields, n_fields);
cleanup:
  free(line);
  json_decref(obj);
}

void todo_logf(enum todo_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  if (level < log_min) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  todo_log(level, NULL, msg, NULL, 0);
}
