/* Prometheus text exposition (format 0.0.4) of the meter, with names converted as
 * opentelemetry-specification compatibility/prometheus_and_openmetrics.md says, so that the
 * series scraped from /metrics and those that reach Prometheus through the collector match. */
#include "otel_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
  char *data;
  size_t len, cap;
  bool failed;
};

static void buf_reserve(struct buf *b, size_t extra) {
  if (b->failed || b->len + extra + 1 <= b->cap) {
    return;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) {
    cap *= 2;
  }
  char *nd = realloc(b->data, cap);
  if (!nd) {
    b->failed = true;
    return;
  }
  b->data = nd;
  b->cap = cap;
}

static void buf_append(struct buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  if (b->failed) {
    return;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s) {
  buf_append(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = true;
    return;
  }
  buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Appends s with every character outside [a-zA-Z0-9_:] (or [a-zA-Z0-9_] for label names) turned
 * into '_' and runs of '_' collapsed. */
static void put_sanitized(struct buf *b, const char *s, bool label) {
  bool last_underscore = false;
  if (*s >= '0' && *s <= '9') {
    buf_puts(b, "_");
    last_underscore = true;
  }
  for (; *s; s++) {
    char c = *s;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (!label && c == ':');
    if (!ok) {
      c = '_';
    }
    if (c == '_' && last_underscore) {
      continue;
    }
    last_underscore = c == '_';
    buf_append(b, &c, 1);
  }
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Writes the metric family name: the sanitized name, the unit's suffix, and _total for monotonic
 * counters, into out (NUL-terminated, cut at out_size). */
static void family_name(const struct todo_tel__metric *m, char *out, size_t out_size) {
  struct buf b = {0};
  const char *unit = m->unit;
  const char *suffix = NULL;
  put_sanitized(&b, m->name, false);
  if (strcmp(unit, "s") == 0) {
    suffix = "seconds";
  } else if (strcmp(unit, "ms") == 0) {
    suffix = "milliseconds";
  } else if (strcmp(unit, "By") == 0) {
    suffix = "bytes";
  } else if (strcmp(unit, "1") == 0 && m->kind == TODO_TEL_OBS_GAUGE) {
    suffix = "ratio";
  } else if (*unit && unit[0] != '{' && strcmp(unit, "1") != 0) {
    suffix = unit;
  }
  if (suffix && b.data && !ends_with(b.data, suffix)) {
    buf_puts(&b, "_");
    put_sanitized(&b, suffix, false);
  }
  if ((m->kind == TODO_TEL_COUNTER || m->kind == TODO_TEL_OBS_COUNTER) && b.data &&
      !ends_with(b.data, "_total")) {
    buf_puts(&b, "_total");
  }
  snprintf(out, out_size, "%s", b.failed || !b.data ? "invalid" : b.data);
  free(b.data);
}

static void put_escaped(struct buf *b, const char *s, bool quote) {
  for (; *s; s++) {
    if (*s == '\\') {
      buf_puts(b, "\\\\");
    } else if (*s == '\n') {
      buf_puts(b, "\\n");
    } else if (quote && *s == '"') {
      buf_puts(b, "\\\"");
    } else {
      buf_append(b, s, 1);
    }
  }
}

/* The shortest of %.15g..%.17g that reads back as the same double: 0.005, not
 * 0.0050000000000000001. */
static void format_double(double v, char *out, size_t n) {
  if (isinf(v)) {
    snprintf(out, n, "%s", v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (isnan(v)) {
    snprintf(out, n, "NaN");
    return;
  }
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(out, n, "%.*g", precision, v);
    if (strtod(out, NULL) == v) {
      return;
    }
  }
}

static void put_value(struct buf *b, double v) {
  char tmp[64];
  format_double(v, tmp, sizeof(tmp));
  buf_puts(b, tmp);
}

/* Writes {k="v",...} for the point's attributes plus an optional extra label (le). */
static void put_labels(struct buf *b, const struct todo_tel__point *p, const char *extra_key,
                       const char *extra_value) {
  if (p->n_attrs == 0 && !extra_key) {
    return;
  }
  buf_puts(b, "{");
  for (size_t i = 0; i < p->n_attrs; i++) {
    const struct todo_tel__attr *a = &p->attrs[i];
    if (i > 0) {
      buf_puts(b, ",");
    }
    put_sanitized(b, a->key, true);
    buf_puts(b, "=\"");
    switch (a->type) {
    case TODO_ATTR_STRING:
      put_escaped(b, a->v.s, true);
      break;
    case TODO_ATTR_INT:
      buf_printf(b, "%lld", (long long)a->v.i);
      break;
    case TODO_ATTR_DOUBLE:
      put_value(b, a->v.d);
      break;
    case TODO_ATTR_BOOL:
      buf_puts(b, a->v.b ? "true" : "false");
      break;
    }
    buf_puts(b, "\"");
  }
  if (extra_key) {
    buf_printf(b, "%s%s=\"%s\"", p->n_attrs ? "," : "", extra_key, extra_value);
  }
  buf_puts(b, "}");
}

static void render_metric(struct buf *b, const struct todo_tel__metric *m) {
  char name[256];
  const char *type;
  if (m->n_points == 0) {
    return;
  }
  family_name(m, name, sizeof(name));
  switch (m->kind) {
  case TODO_TEL_COUNTER:
  case TODO_TEL_OBS_COUNTER:
    type = "counter";
    break;
  case TODO_TEL_HISTOGRAM:
    type = "histogram";
    break;
  default:
    type = "gauge";
    break;
  }
  if (*m->description) {
    buf_printf(b, "# HELP %s ", name);
    put_escaped(b, m->description, false);
    buf_puts(b, "\n");
  }
  buf_printf(b, "# TYPE %s %s\n", name, type);
  for (size_t i = 0; i < m->n_points; i++) {
    const struct todo_tel__point *p = &m->points[i];
    if (m->kind != TODO_TEL_HISTOGRAM) {
      buf_puts(b, name);
      put_labels(b, p, NULL, NULL);
      buf_puts(b, " ");
      put_value(b, p->value);
      buf_puts(b, "\n");
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t k = 0; k <= m->n_bounds; k++) {
      char le[64];
      cumulative += p->buckets[k];
      if (k < m->n_bounds) {
        format_double(m->bounds[k], le, sizeof(le));
      } else {
        snprintf(le, sizeof(le), "+Inf");
      }
      buf_printf(b, "%s_bucket", name);
      put_labels(b, p, "le", le);
      buf_printf(b, " %llu\n", (unsigned long long)cumulative);
    }
    buf_printf(b, "%s_sum", name);
    put_labels(b, p, NULL, NULL);
    buf_puts(b, " ");
    put_value(b, p->sum);
    buf_printf(b, "\n%s_count", name);
    put_labels(b, p, NULL, NULL);
    buf_printf(b, " %llu\n", (unsigned long long)p->count);
  }
}

char *todo_meter_render_prometheus(struct todo_meter *m) {
  struct todo_tel__snapshot snap;
  struct buf b = {0};
  if (!m || todo_tel__meter_collect(m, &snap) != 0) {
    return NULL;
  }
  buf_reserve(&b, 4096);
  if (b.data) {
    b.data[0] = '\0';
  }
  for (size_t i = 0; i < snap.n_metrics; i++) {
    render_metric(&b, &snap.metrics[i]);
  }
  todo_tel__snapshot_free(&snap);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data;
}
