#include "core/metrics.h"

#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_COUNTER_FUNC, K_GAUGE_FUNC };

/* One series: a name and its label set. Counters keep an integer, gauges the bits of a double, so
 * that every update is a single atomic operation and rendering never blocks an update. */
struct instrument {
  enum kind kind;
  char *name;
  char *help;
  char *labels;
  atomic_uint_least64_t value; /* counter value, or gauge value as double bits */
  double (*fn)(void *);        /* K_*_FUNC: read at render time */
  void *arg;
  size_t n_bounds; /* histograms: bounds[n_bounds], buckets[n_bounds + 1] (the last is +Inf) */
  double *bounds;
  atomic_uint_least64_t *buckets;
  atomic_uint_least64_t sum_bits;
  atomic_uint_least64_t count;
  struct instrument *next;
};

/* The public handle types are the instrument itself; each wraps it as its only member so that a
 * pointer converts both ways. */
struct otc_counter {
  struct instrument in;
};
struct otc_gauge {
  struct instrument in;
};
struct otc_histogram {
  struct instrument in;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct instrument *registry;

static uint64_t double_bits(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static double bits_double(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* The family a kind renders as: a name may carry several series, all of one TYPE. */
static const char *kind_type(enum kind k) {
  switch (k) {
  case K_COUNTER:
  case K_COUNTER_FUNC:
    return "counter";
  case K_HISTOGRAM:
    return "histogram";
  default:
    return "gauge";
  }
}

static void instrument_free(struct instrument *in) {
  if (!in)
    return;
  free(in->name);
  free(in->help);
  free(in->labels);
  free(in->bounds);
  free((void *)in->buckets);
  free(in);
}

/* Finds or creates the series (name, labels) of kind k. Returns it, or NULL when out of memory or
 * when the name is already registered as a different TYPE (which the text format cannot express).
 * The caller holds registry_lock. */
static struct instrument *lookup_locked(enum kind k, const char *name, const char *help,
                                        const char *labels, const double *bounds, size_t n_bounds) {
  struct instrument *in = NULL;
  if (!labels)
    labels = "";
  for (struct instrument *it = registry; it; it = it->next) {
    if (strcmp(it->name, name) != 0)
      continue;
    if (strcmp(kind_type(it->kind), kind_type(k)) != 0) {
      otc_error(NULL, "metric %s registered as %s and as %s", name, kind_type(it->kind),
                kind_type(k));
      return NULL;
    }
    if (strcmp(it->labels, labels) == 0)
      return it;
  }
  in = calloc(1, sizeof *in);
  if (!in)
    goto fail;
  in->kind = k;
  in->name = strdup(name);
  in->help = strdup(help ? help : "");
  in->labels = strdup(labels);
  if (!in->name || !in->help || !in->labels)
    goto fail;
  if (k == K_HISTOGRAM) {
    in->n_bounds = n_bounds;
    in->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof *in->bounds);
    in->buckets = calloc(n_bounds + 1, sizeof *in->buckets);
    if (!in->bounds || !in->buckets)
      goto fail;
    if (n_bounds)
      memcpy(in->bounds, bounds, n_bounds * sizeof *bounds);
    atomic_store(&in->sum_bits, double_bits(0.0));
  }
  if (k == K_GAUGE)
    atomic_store(&in->value, double_bits(0.0));
  in->next = registry;
  registry = in;
  return in;
fail:
  instrument_free(in);
  return NULL;
}

static struct instrument *lookup(enum kind k, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t n_bounds) {
  pthread_mutex_lock(&registry_lock);
  struct instrument *in = lookup_locked(k, name, help, labels, bounds, n_bounds);
  pthread_mutex_unlock(&registry_lock);
  return in;
}

struct otc_counter *otc_counter_get(const char *name, const char *help, const char *labels) {
  return (struct otc_counter *)lookup(K_COUNTER, name, help, labels, NULL, 0);
}

void otc_counter_add(struct otc_counter *c, uint64_t v) {
  if (c)
    atomic_fetch_add_explicit(&c->in.value, v, memory_order_relaxed);
}

uint64_t otc_counter_value(const struct otc_counter *c) {
  return c ? atomic_load_explicit(&((struct otc_counter *)c)->in.value, memory_order_relaxed) : 0;
}

struct otc_gauge *otc_gauge_get(const char *name, const char *help, const char *labels) {
  return (struct otc_gauge *)lookup(K_GAUGE, name, help, labels, NULL, 0);
}

void otc_gauge_set(struct otc_gauge *g, double v) {
  if (g)
    atomic_store_explicit(&g->in.value, double_bits(v), memory_order_relaxed);
}

/* Adds v to the double stored as bits in *a, with compare-and-swap since no atomic adds doubles. */
static void atomic_add_double(atomic_uint_least64_t *a, double v) {
  uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(a, &cur, double_bits(bits_double(cur) + v),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

void otc_gauge_add(struct otc_gauge *g, double v) {
  if (g)
    atomic_add_double(&g->in.value, v);
}

double otc_gauge_value(const struct otc_gauge *g) {
  if (!g)
    return 0;
  return bits_double(
      atomic_load_explicit(&((struct otc_gauge *)g)->in.value, memory_order_relaxed));
}

/* Registers (or re-points) a series computed at render time. */
static void register_func(enum kind k, const char *name, const char *help, const char *labels,
                          double (*fn)(void *), void *arg) {
  pthread_mutex_lock(&registry_lock);
  struct instrument *in = lookup_locked(k, name, help, labels, NULL, 0);
  if (in && in->kind == k) {
    in->fn = fn;
    in->arg = arg;
  }
  pthread_mutex_unlock(&registry_lock);
}

void otc_gauge_func(const char *name, const char *help, const char *labels, double (*fn)(void *),
                    void *arg) {
  register_func(K_GAUGE_FUNC, name, help, labels, fn, arg);
}

void otc_counter_func(const char *name, const char *help, const char *labels, double (*fn)(void *),
                      void *arg) {
  register_func(K_COUNTER_FUNC, name, help, labels, fn, arg);
}

struct otc_histogram *otc_histogram_get(const char *name, const char *help, const char *labels,
                                        const double *bounds, size_t n_bounds) {
  return (struct otc_histogram *)lookup(K_HISTOGRAM, name, help, labels, bounds, n_bounds);
}

void otc_histogram_observe(struct otc_histogram *h, double v) {
  if (!h)
    return;
  struct instrument *in = &h->in;
  /* Buckets are kept per bucket (not cumulative) so that one observation is one increment; the
   * renderer accumulates. A value equal to a bound belongs to that bound's bucket (le). */
  size_t lo = 0, hi = in->n_bounds;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v <= in->bounds[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  atomic_fetch_add_explicit(&in->buckets[lo], 1, memory_order_relaxed);
  atomic_add_double(&in->sum_bits, v);
  atomic_fetch_add_explicit(&in->count, 1, memory_order_relaxed);
}

char *otc_metrics_escape_label(const char *value, char *out, size_t cap) {
  size_t n = 0;
  if (cap == 0)
    return out;
  for (const char *p = value ? value : ""; *p; p++) {
    const char *rep = NULL;
    if (*p == '\\')
      rep = "\\\\";
    else if (*p == '"')
      rep = "\\\"";
    else if (*p == '\n')
      rep = "\\n";
    size_t need = rep ? 2 : 1;
    /* An escape is written whole or not at all, so a cut never leaves a lone backslash. */
    if (n + need >= cap)
      break;
    if (rep) {
      out[n++] = rep[0];
      out[n++] = rep[1];
    } else {
      out[n++] = *p;
    }
  }
  out[n] = '\0';
  return out;
}

/* --- rendering --- */

struct sbuf {
  char *p;
  size_t len, cap;
  bool failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = true;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t ncap = b->cap * 2;
    while (ncap - b->len <= (size_t)n)
      ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) {
      b->failed = true;
      return;
    }
    b->p = np;
    b->cap = ncap;
  }
}

/* Formats a sample value as Prometheus parses it: integers exactly and without exponent, other
 * values with the fewest digits that read back to the same double. */
static const char *fmt_value(double v, char *buf, size_t cap) {
  if (isnan(v)) {
    snprintf(buf, cap, "NaN");
  } else if (isinf(v)) {
    snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
  } else if (v == trunc(v) && fabs(v) < 1e17) {
    snprintf(buf, cap, "%.0f", v == 0 ? 0.0 : v);
  } else {
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, cap, "%.*g", prec, v);
      if (strtod(buf, NULL) == v)
        break;
    }
  }
  return buf;
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static void sb_help(struct sbuf *b, const char *help) {
  for (const char *p = help; *p; p++) {
    if (*p == '\\')
      sb_printf(b, "\\\\");
    else if (*p == '\n')
      sb_printf(b, "\\n");
    else
      sb_printf(b, "%c", *p);
  }
}

struct snapshot {
  struct instrument *in;
  double (*fn)(void *);
  void *arg;
};

static int snapshot_cmp(const void *a, const void *b) {
  const struct snapshot *x = a, *y = b;
  int c = strcmp(x->in->name, y->in->name);
  return c ? c : strcmp(x->in->labels, y->in->labels);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Writes `name{labels[,extra]} ` (the braces only when there is a label). */
static void sb_series(struct sbuf *b, const char *name, const char *suffix, const char *labels,
                      const char *extra) {
  sb_printf(b, "%s%s", name, suffix);
  bool has_labels = labels[0] != '\0', has_extra = extra && extra[0];
  if (has_labels || has_extra)
    sb_printf(b, "{%s%s%s}", labels, has_labels && has_extra ? "," : "", has_extra ? extra : "");
  sb_printf(b, " ");
}

static void render_one(struct sbuf *b, const struct snapshot *s, const char *suffix) {
  const struct instrument *in = s->in;
  char num[64];
  switch (in->kind) {
  case K_COUNTER:
    sb_series(b, in->name, suffix, in->labels, NULL);
    sb_printf(b, "%llu\n", (unsigned long long)atomic_load(&((struct instrument *)in)->value));
    break;
  case K_GAUGE:
    sb_series(b, in->name, suffix, in->labels, NULL);
    sb_printf(
        b, "%s\n",
        fmt_value(bits_double(atomic_load(&((struct instrument *)in)->value)), num, sizeof num));
    break;
  case K_COUNTER_FUNC:
  case K_GAUGE_FUNC:
    sb_series(b, in->name, suffix, in->labels, NULL);
    sb_printf(b, "%s\n", fmt_value(s->fn ? s->fn(s->arg) : 0, num, sizeof num));
    break;
  case K_HISTOGRAM: {
    struct instrument *h = (struct instrument *)in;
    uint64_t cum = 0;
    char le[96];
    for (size_t i = 0; i <= h->n_bounds; i++) {
      cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
      if (i < h->n_bounds)
        snprintf(le, sizeof le, "le=\"%s\"", fmt_value(h->bounds[i], num, sizeof num));
      else
        snprintf(le, sizeof le, "le=\"+Inf\"");
      sb_series(b, in->name, "_bucket", in->labels, le);
      sb_printf(b, "%llu\n", (unsigned long long)cum);
    }
    sb_series(b, in->name, "_sum", in->labels, NULL);
    sb_printf(b, "%s\n", fmt_value(bits_double(atomic_load(&h->sum_bits)), num, sizeof num));
    /* The count is the +Inf bucket's, so that the two agree even while observations race. */
    sb_series(b, in->name, "_count", in->labels, NULL);
    sb_printf(b, "%llu\n", (unsigned long long)cum);
    break;
  }
  }
}

int otc_metrics_render(const struct otc_metrics_render_opts *opts, char **out, size_t *len) {
  int rc = OTC_ERR_NOMEM;
  struct snapshot *snaps = NULL;
  size_t n = 0;
  struct sbuf b = {.p = malloc(4096), .len = 0, .cap = 4096};
  *out = NULL;
  if (len)
    *len = 0;
  if (!b.p)
    goto cleanup;
  b.p[0] = '\0';

  /* Take the list and the render-time callbacks under the lock, then call them without it: a
   * callback may itself register or read instruments. */
  pthread_mutex_lock(&registry_lock);
  size_t count = 0;
  for (struct instrument *it = registry; it; it = it->next)
    count++;
  snaps = calloc(count ? count : 1, sizeof *snaps);
  if (snaps) {
    for (struct instrument *it = registry; it; it = it->next)
      snaps[n++] = (struct snapshot){it, it->fn, it->arg};
  }
  pthread_mutex_unlock(&registry_lock);
  if (!snaps)
    goto cleanup;
  qsort(snaps, n, sizeof *snaps, snapshot_cmp);

  bool total = opts && opts->total_suffix;
  for (size_t i = 0; i < n; i++) {
    const struct instrument *in = snaps[i].in;
    bool is_counter = in->kind == K_COUNTER || in->kind == K_COUNTER_FUNC;
    const char *suffix = is_counter && total && !ends_with(in->name, "_total") ? "_total" : "";
    if (i == 0 || strcmp(snaps[i - 1].in->name, in->name) != 0) {
      sb_printf(&b, "# HELP %s%s ", in->name, suffix);
      sb_help(&b, in->help);
      sb_printf(&b, "\n# TYPE %s%s %s\n", in->name, suffix, kind_type(in->kind));
    }
    render_one(&b, &snaps[i], suffix);
  }
  if (b.failed)
    goto cleanup;
  *out = b.p;
  if (len)
    *len = b.len;
  b.p = NULL;
  rc = 0;
cleanup:
  free(b.p);
  free(snaps);
  return rc;
}

void otc_metrics_reset(void) {
  pthread_mutex_lock(&registry_lock);
  struct instrument *it = registry;
  registry = NULL;
  pthread_mutex_unlock(&registry_lock);
  while (it) {
    struct instrument *next = it->next;
    instrument_free(it);
    it = next;
  }
}

/* --- the standard instruments --- */

/* "spans", "metric points", "log records": the item names as otelcol's help texts spell them. */
static const char *item_words(enum otc_signal s) {
  static const char *const words[OTC_SIGNAL_COUNT] = {"spans", "metric points", "log records"};
  return (unsigned)s < OTC_SIGNAL_COUNT ? words[s] : "items";
}

static struct otc_counter *signal_counter(const char *prefix, enum otc_signal s,
                                          const char *help_fmt, const char *labels) {
  char name[128], help[256];
  snprintf(name, sizeof name, "%s_%s", prefix, otc_signal_item_name(s));
  snprintf(help, sizeof help, help_fmt, item_words(s));
  return otc_counter_get(name, help, labels);
}

void otc_receiver_metrics_init(struct otc_receiver_metrics *m, const char *receiver_id,
                               const char *transport) {
  char id[256], tr[64], labels[384];
  snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\"",
           otc_metrics_escape_label(receiver_id, id, sizeof id),
           otc_metrics_escape_label(transport, tr, sizeof tr));
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
    m->accepted[s] =
        signal_counter("otelcol_receiver_accepted", (enum otc_signal)s,
                       "Number of %s successfully pushed into the pipeline. [Alpha]", labels);
    m->refused[s] = signal_counter("otelcol_receiver_refused", (enum otc_signal)s,
                                   "Number of %s that could not be pushed into the pipeline. "
                                   "[Alpha]",
                                   labels);
    m->failed[s] = signal_counter("otelcol_receiver_failed", (enum otc_signal)s,
                                  "The number of %s that failed to be processed by the receiver "
                                  "due to internal errors. [Alpha]",
                                  labels);
  }
  m->requests_rejected =
      otc_counter_get("otelcol_receiver_rejected_requests",
                      "Number of requests rejected as undecodable or invalid by the receiver "
                      "(not an otelcol metric).",
                      labels);
}

void otc_exporter_metrics_init(struct otc_exporter_metrics *m, const char *exporter_id) {
  char id[256], labels[300];
  snprintf(labels, sizeof labels, "exporter=\"%s\"",
           otc_metrics_escape_label(exporter_id, id, sizeof id));
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
    m->sent[s] = signal_counter("otelcol_exporter_sent", (enum otc_signal)s,
                                "Number of %s successfully sent to destination. [Alpha]", labels);
    m->send_failed[s] = signal_counter("otelcol_exporter_send_failed", (enum otc_signal)s,
                                       "Number of %s in failed attempts to send to destination. "
                                       "[Alpha]",
                                       labels);
    m->enqueue_failed[s] = signal_counter("otelcol_exporter_enqueue_failed", (enum otc_signal)s,
                                          "Number of %s failed to be added to the sending queue. "
                                          "[Alpha]",
                                          labels);
  }
}

void otc_count_dropped(const char *component_id, enum otc_signal s, const char *reason,
                       uint64_t items) {
  char id[256], rs[128], labels[512];
  snprintf(labels, sizeof labels, "component=\"%s\",otel_signal=\"%s\",reason=\"%s\"",
           otc_metrics_escape_label(component_id, id, sizeof id), otc_signal_name(s),
           otc_metrics_escape_label(reason, rs, sizeof rs));
  otc_counter_add(otc_counter_get("otelcol_dropped_items",
                                  "Number of items dropped inside the collector, by component "
                                  "and reason (not an otelcol metric).",
                                  labels),
                  items);
}

/* --- process instruments --- */

static struct timespec process_start;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void record_start(void) {
  clock_gettime(CLOCK_MONOTONIC, &process_start);
}

static double read_uptime(void *arg) {
  (void)arg;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - process_start.tv_sec) +
         (double)(now.tv_nsec - process_start.tv_nsec) / 1e9;
}

static double read_rss(void *arg) {
  (void)arg;
  return (double)otc_process_rss();
}

static double read_cpu(void *arg) {
  (void)arg;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double read_held(void *arg) {
  (void)arg;
  return (double)otc_mem_held();
}

static double read_limit(void *arg) {
  (void)arg;
  return (double)otc_mem_limit();
}

static double read_refused(void *arg) {
  (void)arg;
  return (double)otc_mem_refused_count();
}

void otc_metrics_register_process(void) {
  pthread_once(&process_once, record_start);
  otc_counter_func("otelcol_process_uptime", "Uptime of the process [Alpha]", "", read_uptime,
                   NULL);
  otc_gauge_func("otelcol_process_memory_rss", "Total physical memory (resident set size) [Alpha]",
                 "", read_rss, NULL);
  otc_counter_func("otelcol_process_cpu_seconds",
                   "Total CPU user and system time in seconds [Alpha]", "", read_cpu, NULL);
  otc_gauge_func("otelcol_memory_limiter_held_bytes",
                 "Bytes of telemetry data held by the collector, as the memory limiter counts "
                 "them (not an otelcol metric).",
                 "", read_held, NULL);
  otc_gauge_func("otelcol_memory_limiter_limit_bytes",
                 "Hard memory limit of the memory limiter in bytes, 0 when unlimited (not an "
                 "otelcol metric).",
                 "", read_limit, NULL);
  otc_counter_func("otelcol_memory_limiter_admission_refused",
                   "Number of requests refused at admission for memory (not an otelcol metric).",
                   "", read_refused, NULL);
}

/* --- the telemetry HTTP server --- */

static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;
static struct MHD_Daemon *server;
static struct otc_metrics_render_opts server_opts;

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  otc_warn("telemetry", "%s", msg);
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, char *body,
                                  size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
  if (!resp) {
    if (mode == MHD_RESPMEM_MUST_FREE)
      free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                                : "text/plain; charset=utf-8");
  enum MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
  (void)cls;
  (void)version;
  (void)upload_data;
  (void)con_cls;
  /* Any request body is ignored: the answer does not depend on it. */
  *upload_data_size = 0;
  bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  if (!get || strcmp(url, "/metrics") != 0) {
    static char not_found[] = "404 page not found\n";
    return queue_text(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof not_found - 1,
                      MHD_RESPMEM_PERSISTENT);
  }
  char *text = NULL;
  size_t len = 0;
  if (otc_metrics_render(&server_opts, &text, &len) != 0) {
    static char failed[] = "out of memory\n";
    return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, failed, sizeof failed - 1,
                      MHD_RESPMEM_PERSISTENT);
  }
  return queue_text(conn, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE);
}

static int bound_port(struct MHD_Daemon *d) {
  const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  return info ? (int)info->port : 0;
}

int otc_telemetry_server_start(const char *host, int port,
                               const struct otc_metrics_render_opts *opts) {
  int rc = OTC_ERR_IO;
  struct addrinfo *ai = NULL;
  pthread_mutex_lock(&server_lock);
  if (server) {
    otc_error("telemetry", "telemetry server already running");
    goto cleanup;
  }
  if (port < 0 || port > 65535) {
    rc = OTC_ERR_CONFIG;
    otc_error("telemetry", "invalid port %d", port);
    goto cleanup;
  }
  server_opts = opts ? *opts : (struct otc_metrics_render_opts){0};
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  const char *h = host && host[0] ? host : NULL;
  int gai = getaddrinfo(h, portstr, &hints, &ai);
  if (gai != 0) {
    otc_error("telemetry", "cannot resolve %s: %s", host ? host : "", gai_strerror(gai));
    goto cleanup;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  /* The logger goes first so that MHD reports everything through it. */
  server = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle_request, NULL,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                            ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
  if (!server) {
    otc_error("telemetry", "cannot listen on %s:%d", host ? host : "", port);
    goto cleanup;
  }
  otc_info("telemetry", "serving metrics on %s:%d/metrics", host ? host : "", bound_port(server));
  rc = 0;
cleanup:
  pthread_mutex_unlock(&server_lock);
  if (ai)
    freeaddrinfo(ai);
  return rc;
}

void otc_telemetry_server_stop(void) {
  pthread_mutex_lock(&server_lock);
  struct MHD_Daemon *d = server;
  server = NULL;
  pthread_mutex_unlock(&server_lock);
  if (d)
    MHD_stop_daemon(d);
}

int otc_telemetry_server_port(void) {
  pthread_mutex_lock(&server_lock);
  int port = bound_port(server);
  pthread_mutex_unlock(&server_lock);
  return port;
}
