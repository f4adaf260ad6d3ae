/* Metric instruments and their cumulative aggregation. Each instrument has its own mutex, held
 * only to find a point and add to it, so request threads contend per instrument, briefly. */
#include "otel_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct todo_observer {
  struct todo_tel__arena *arena;
  struct todo_tel__point *points;
  size_t n, cap;
  bool failed;
};

struct todo_instrument {
  enum todo_tel__kind kind;
  char *name, *unit, *description;
  double *bounds;
  size_t n_bounds;
  todo_observe_fn fn;
  void *fn_arg;
  pthread_mutex_t mu;
  struct todo_tel__point *points; /* strings in arena */
  size_t n_points, cap_points;
  struct todo_tel__arena arena;
};

struct todo_meter {
  pthread_mutex_t mu;
  uint64_t start_ns;
  struct todo_instrument *instruments[TODO_TEL_MAX_INSTRUMENTS];
  size_t n_instruments;
};

struct todo_meter *todo_meter_create(void) {
  struct todo_meter *m = calloc(1, sizeof(*m));
  if (!m) {
    return NULL;
  }
  pthread_mutex_init(&m->mu, NULL);
  m->start_ns = todo_now_ns();
  return m;
}

static void instrument_free(struct todo_instrument *inst) {
  if (!inst) {
    return;
  }
  for (size_t i = 0; i < inst->n_points; i++) {
    free(inst->points[i].buckets);
  }
  free(inst->points);
  todo_tel__arena_free(&inst->arena);
  pthread_mutex_destroy(&inst->mu);
  free(inst->name);
  free(inst->unit);
  free(inst->description);
  free(inst->bounds);
  free(inst);
}

void todo_meter_destroy(struct todo_meter *m) {
  if (!m) {
    return;
  }
  for (size_t i = 0; i < m->n_instruments; i++) {
    instrument_free(m->instruments[i]);
  }
  pthread_mutex_destroy(&m->mu);
  free(m);
}

/* Creates and registers an instrument; bounds are copied. Returns NULL when out of memory or when
 * the meter is full. */
static struct todo_instrument *add_instrument(struct todo_meter *m, enum todo_tel__kind kind,
                                              const char *name, const char *unit, const char *desc,
                                              const double *bounds, size_t n_bounds,
                                              todo_observe_fn fn, void *arg) {
  struct todo_instrument *inst = NULL;
  if (!m || !name) {
    return NULL;
  }
  inst = calloc(1, sizeof(*inst));
  if (!inst) {
    return NULL;
  }
  pthread_mutex_init(&inst->mu, NULL);
  inst->kind = kind;
  inst->fn = fn;
  inst->fn_arg = arg;
  inst->name = strdup(name);
  inst->unit = strdup(unit ? unit : "");
  inst->description = strdup(desc ? desc : "");
  if (!inst->name || !inst->unit || !inst->description) {
    goto fail;
  }
  if (n_bounds > 0) {
    inst->bounds = malloc(n_bounds * sizeof(double));
    if (!inst->bounds) {
      goto fail;
    }
    memcpy(inst->bounds, bounds, n_bounds * sizeof(double));
    inst->n_bounds = n_bounds;
  }
  pthread_mutex_lock(&m->mu);
  if (m->n_instruments == TODO_TEL_MAX_INSTRUMENTS) {
    pthread_mutex_unlock(&m->mu);
    goto fail;
  }
  m->instruments[m->n_instruments++] = inst;
  pthread_mutex_unlock(&m->mu);
  return inst;
fail:
  instrument_free(inst);
  return NULL;
}

struct todo_instrument *todo_meter_counter(struct todo_meter *m, const char *name, const char *unit,
                                           const char *description) {
  return add_instrument(m, TODO_TEL_COUNTER, name, unit, description, NULL, 0, NULL, NULL);
}

struct todo_instrument *todo_meter_updown_counter(struct todo_meter *m, const char *name,
                                                  const char *unit, const char *description) {
  return add_instrument(m, TODO_TEL_UPDOWN, name, unit, description, NULL, 0, NULL, NULL);
}

struct todo_instrument *todo_meter_histogram(struct todo_meter *m, const char *name,
                                             const char *unit, const char *description,
                                             const double *bounds, size_t n_bounds) {
  for (size_t i = 1; i < n_bounds; i++) {
    if (!(bounds[i] > bounds[i - 1])) {
      return NULL;
    }
  }
  return add_instrument(m, TODO_TEL_HISTOGRAM, name, unit, description, bounds, n_bounds, NULL,
                        NULL);
}

struct todo_instrument *todo_meter_observable_gauge(struct todo_meter *m, const char *name,
                                                    const char *unit, const char *description,
                                                    todo_observe_fn fn, void *arg) {
  return fn ? add_instrument(m, TODO_TEL_OBS_GAUGE, name, unit, description, NULL, 0, fn, arg)
            : NULL;
}

struct todo_instrument *todo_meter_observable_updown_counter(struct todo_meter *m, const char *name,
                                                             const char *unit,
                                                             const char *description,
                                                             todo_observe_fn fn, void *arg) {
  return fn ? add_instrument(m, TODO_TEL_OBS_UPDOWN, name, unit, description, NULL, 0, fn, arg)
            : NULL;
}

struct todo_instrument *todo_meter_observable_counter(struct todo_meter *m, const char *name,
                                                      const char *unit, const char *description,
                                                      todo_observe_fn fn, void *arg) {
  return fn ? add_instrument(m, TODO_TEL_OBS_COUNTER, name, unit, description, NULL, 0, fn, arg)
            : NULL;
}

/* ---------- attribute sets ---------- */

static int attr_cmp_key(const void *a, const void *b) {
  const struct todo_attr *x = *(const struct todo_attr *const *)a;
  const struct todo_attr *y = *(const struct todo_attr *const *)b;
  return strcmp(x->key, y->key);
}

/* Sorts up to TODO_METRIC_MAX_ATTRS borrowed attributes by key into sorted (pointers), so that the
 * same set given in another order finds the same point. Returns how many were kept. */
static size_t sort_attrs(const struct todo_attr *attrs, size_t n,
                         const struct todo_attr *sorted[TODO_METRIC_MAX_ATTRS]) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < TODO_METRIC_MAX_ATTRS; i++) {
    if (attrs[i].key) {
      sorted[k++] = &attrs[i];
    }
  }
  qsort(sorted, k, sizeof(sorted[0]), attr_cmp_key);
  return k;
}

static bool attr_equal(const struct todo_tel__attr *a, const struct todo_attr *b) {
  if (a->type != b->type || strcmp(a->key, b->key) != 0) {
    return false;
  }
  switch (a->type) {
  case TODO_ATTR_STRING:
    return strcmp(a->v.s, b->v.s ? b->v.s : "") == 0;
  case TODO_ATTR_INT:
    return a->v.i == b->v.i;
  case TODO_ATTR_DOUBLE:
    return a->v.d == b->v.d;
  case TODO_ATTR_BOOL:
    return a->v.b == b->v.b;
  }
  return false;
}

static bool point_matches(const struct todo_tel__point *p, const struct todo_attr *const *sorted,
                          size_t n) {
  if (p->n_attrs != n) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (!attr_equal(&p->attrs[i], sorted[i])) {
      return false;
    }
  }
  return true;
}

static const struct todo_attr overflow_attr = {
    .key = "otel.metric.overflow", .type = TODO_ATTR_BOOL, .v.b = true};

/* Finds or creates the point for the attribute set, with inst->mu held. Returns NULL when out of
 * memory. When the instrument is at its cardinality limit, the overflow point is returned. */
static struct todo_tel__point *find_point(struct todo_instrument *inst,
                                          const struct todo_attr *attrs, size_t n_attrs) {
  const struct todo_attr *sorted[TODO_METRIC_MAX_ATTRS];
  size_t n = sort_attrs(attrs, n_attrs, sorted);
  for (size_t i = 0; i < inst->n_points; i++) {
    if (point_matches(&inst->points[i], sorted, n)) {
      return &inst->points[i];
    }
  }
  if (inst->n_points >= TODO_METRIC_MAX_POINTS - 1) {
    sorted[0] = &overflow_attr;
    n = 1;
    for (size_t i = 0; i < inst->n_points; i++) {
      if (point_matches(&inst->points[i], sorted, n)) {
        return &inst->points[i];
      }
    }
  }
  /* The points array grows by doubling; it is never shrunk, and points are addressed by index
   * only while the mutex is held. */
  if (inst->n_points == inst->cap_points) {
    size_t cap = inst->cap_points ? inst->cap_points * 2 : 4;
    struct todo_tel__point *np = realloc(inst->points, cap * sizeof(*np));
    if (!np) {
      return NULL;
    }
    inst->points = np;
    inst->cap_points = cap;
  }
  struct todo_tel__point *p = &inst->points[inst->n_points];
  memset(p, 0, sizeof(*p));
  for (size_t i = 0; i < n; i++) {
    if (todo_tel__attr_copy(&inst->arena, &p->attrs[i], sorted[i]) != 0) {
      return NULL;
    }
  }
  p->n_attrs = n;
  if (inst->kind == TODO_TEL_HISTOGRAM) {
    p->buckets = calloc(inst->n_bounds + 1, sizeof(uint64_t));
    if (!p->buckets) {
      return NULL;
    }
    p->min = INFINITY;
    p->max = -INFINITY;
  }
  inst->n_points++;
  return p;
}

void todo_counter_add(struct todo_instrument *inst, int64_t delta, const struct todo_attr *attrs,
                      size_t n_attrs) {
  if (!inst || (inst->kind != TODO_TEL_COUNTER && inst->kind != TODO_TEL_UPDOWN)) {
    return;
  }
  /* A monotonic counter ignores negative increments, as the API specification requires. */
  if (inst->kind == TODO_TEL_COUNTER && delta < 0) {
    return;
  }
  pthread_mutex_lock(&inst->mu);
  struct todo_tel__point *p = find_point(inst, attrs, n_attrs);
  if (p) {
    p->value += (double)delta;
  }
  pthread_mutex_unlock(&inst->mu);
}

void todo_histogram_record(struct todo_instrument *inst, double value,
                           const struct todo_attr *attrs, size_t n_attrs) {
  if (!inst || inst->kind != TODO_TEL_HISTOGRAM || !isfinite(value)) {
    return;
  }
  /* Buckets are (previous bound, bound]: the first bound not below the value. */
  size_t b = 0;
  while (b < inst->n_bounds && value > inst->bounds[b]) {
    b++;
  }
  pthread_mutex_lock(&inst->mu);
  struct todo_tel__point *p = find_point(inst, attrs, n_attrs);
  if (p) {
    p->buckets[b]++;
    p->count++;
    p->sum += value;
    if (value < p->min) {
      p->min = value;
    }
    if (value > p->max) {
      p->max = value;
    }
  }
  pthread_mutex_unlock(&inst->mu);
}

void todo_observe(struct todo_observer *obs, double value, const struct todo_attr *attrs,
                  size_t n_attrs) {
  if (!obs || obs->failed || !isfinite(value) || obs->n >= TODO_METRIC_MAX_POINTS) {
    return;
  }
  if (obs->n == obs->cap) {
    size_t cap = obs->cap ? obs->cap * 2 : 8;
    struct todo_tel__point *np = todo_tel__arena_alloc(obs->arena, cap * sizeof(*np));
    if (!np) {
      obs->failed = true;
      return;
    }
    if (obs->n) {
      memcpy(np, obs->points, obs->n * sizeof(*np));
    }
    obs->points = np;
    obs->cap = cap;
  }
  const struct todo_attr *sorted[TODO_METRIC_MAX_ATTRS];
  size_t n = sort_attrs(attrs, n_attrs, sorted);
  struct todo_tel__point *p = &obs->points[obs->n];
  memset(p, 0, sizeof(*p));
  for (size_t i = 0; i < n; i++) {
    if (todo_tel__attr_copy(obs->arena, &p->attrs[i], sorted[i]) != 0) {
      obs->failed = true;
      return;
    }
  }
  p->n_attrs = n;
  p->value = value;
  obs->n++;
}

/* ---------- collection ---------- */

/* Deep-copies one synchronous instrument's points into the snapshot arena, with its mutex held.
 * Returns 0 or -1 when out of memory. */
static int copy_points(struct todo_instrument *inst, struct todo_tel__arena *a,
                       struct todo_tel__metric *out) {
  int rc = -1;
  pthread_mutex_lock(&inst->mu);
  out->n_points = inst->n_points;
  out->points = todo_tel__arena_alloc(a, (inst->n_points + 1) * sizeof(*out->points));
  if (!out->points) {
    goto cleanup;
  }
  for (size_t i = 0; i < inst->n_points; i++) {
    const struct todo_tel__point *src = &inst->points[i];
    struct todo_tel__point *dst = &out->points[i];
    *dst = *src;
    for (size_t k = 0; k < src->n_attrs; k++) {
      struct todo_attr borrowed = {.key = src->attrs[k].key, .type = src->attrs[k].type};
      if (src->attrs[k].type == TODO_ATTR_STRING) {
        borrowed.v.s = src->attrs[k].v.s;
      } else {
        memcpy(&borrowed.v, &src->attrs[k].v, sizeof(borrowed.v));
      }
      if (todo_tel__attr_copy(a, &dst->attrs[k], &borrowed) != 0) {
        goto cleanup;
      }
    }
    if (src->buckets) {
      dst->buckets = todo_tel__arena_alloc(a, (inst->n_bounds + 1) * sizeof(uint64_t));
      if (!dst->buckets) {
        goto cleanup;
      }
      memcpy(dst->buckets, src->buckets, (inst->n_bounds + 1) * sizeof(uint64_t));
    }
  }
  rc = 0;
cleanup:
  pthread_mutex_unlock(&inst->mu);
  return rc;
}

int todo_tel__meter_collect(struct todo_meter *m, struct todo_tel__snapshot *out) {
  struct todo_instrument *insts[TODO_TEL_MAX_INSTRUMENTS];
  size_t n;
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&m->mu);
  n = m->n_instruments;
  memcpy(insts, m->instruments, n * sizeof(insts[0]));
  pthread_mutex_unlock(&m->mu);
  out->start_ns = m->start_ns;
  out->time_ns = todo_now_ns();
  out->metrics = todo_tel__arena_alloc(&out->arena, (n + 1) * sizeof(*out->metrics));
  if (!out->metrics) {
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    struct todo_instrument *inst = insts[i];
    struct todo_tel__metric *dst = &out->metrics[out->n_metrics];
    dst->name = inst->name;
    dst->unit = inst->unit;
    dst->description = inst->description;
    dst->kind = inst->kind;
    dst->bounds = inst->bounds;
    dst->n_bounds = inst->n_bounds;
    if (inst->fn) {
      /* Callbacks run without any SDK lock held: they may query a database or take their own
       * locks. */
      struct todo_observer obs = {.arena = &out->arena};
      inst->fn(&obs, inst->fn_arg);
      if (obs.failed) {
        goto fail;
      }
      dst->points = obs.points;
      dst->n_points = obs.n;
    } else if (copy_points(inst, &out->arena, dst) != 0) {
      goto fail;
    }
    out->n_metrics++;
  }
  return 0;
fail:
  todo_tel__snapshot_free(out);
  return -1;
}

void todo_tel__snapshot_free(struct todo_tel__snapshot *snap) {
  if (!snap) {
    return;
  }
  todo_tel__arena_free(&snap->arena);
  memset(snap, 0, sizeof(*snap));
}
