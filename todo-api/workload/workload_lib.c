/* The workload generator's pure parts (see workload.h). */
#include "workload.h"

#include "errors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mostly reads and writes that succeed, with the errors a real client population produces: a
 * few requests for todos that are gone, some that fail validation, rare malformed bodies. */
const unsigned wl_op_weights[WL_OP_COUNT] = {
    [WL_CREATE] = 180, [WL_LIST] = 200,     [WL_GET] = 200,    [WL_PUT] = 60,
    [WL_PATCH] = 60,   [WL_COMPLETE] = 60,  [WL_DELETE] = 100, [WL_NOT_FOUND] = 60,
    [WL_INVALID] = 45, [WL_MALFORMED] = 20, [WL_SLOW] = 15,
};

static const char *const op_names[WL_OP_COUNT] = {
    [WL_CREATE] = "create",       [WL_LIST] = "list",           [WL_GET] = "get",
    [WL_PUT] = "update_put",      [WL_PATCH] = "update_patch",  [WL_COMPLETE] = "complete",
    [WL_DELETE] = "delete",       [WL_NOT_FOUND] = "not_found", [WL_INVALID] = "invalid",
    [WL_MALFORMED] = "malformed", [WL_SLOW] = "slow_list",
};

const char *wl_op_name(enum wl_op op) {
  return (unsigned)op < WL_OP_COUNT ? op_names[op] : "?";
}

enum wl_op wl_pick_op(uint32_t r, bool have_ids) {
  unsigned x = r % 1000u;
  unsigned acc = 0;
  enum wl_op op = WL_CREATE;
  for (int i = 0; i < WL_OP_COUNT; i++) {
    acc += wl_op_weights[i];
    if (x < acc) {
      op = (enum wl_op)i;
      break;
    }
  }
  if (!have_ids &&
      (op == WL_GET || op == WL_PUT || op == WL_PATCH || op == WL_COMPLETE || op == WL_DELETE))
    op = WL_CREATE;
  return op;
}

const char wl_usage[] =
    "usage: todo-workload [options]\n"
    "Drives the Todo API with a realistic mix of requests and prints a summary on exit.\n"
    "  --url URL            base URL of the API (TODO_API_URL, default http://127.0.0.1:8000)\n"
    "  --rate N             requests per second in total, 0 = unthrottled (WORKLOAD_RATE, 10)\n"
    "  --duration D         how long: 30, 30s, 5m, 1h; 0 = until SIGINT/SIGTERM\n"
    "                       (WORKLOAD_DURATION, 0)\n"
    "  --concurrency N      parallel connections, 1..256 (WORKLOAD_CONCURRENCY, 4)\n"
    "  --traceparent-ratio F  share of requests sent with a W3C traceparent, 0..1\n"
    "                       (WORKLOAD_TRACEPARENT_RATIO, 0.3)\n"
    "  --timeout D          per request (10s)\n"
    "  --seed N             random seed, 0 = from the clock (WORKLOAD_SEED, 0)\n"
    "  --quiet              no start-up line\n"
    "  --help               this text\n"
    "Exit status: 0, 1 when the API never answered, 2 for bad arguments.\n";

int wl_parse_duration(const char *s, double *out) {
  if (!s || !*s)
    return TODO_ERR_INVALID;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || end == s || !isfinite(v) || v < 0)
    return TODO_ERR_INVALID;
  double mult;
  if (*end == '\0' || strcmp(end, "s") == 0)
    mult = 1;
  else if (strcmp(end, "ms") == 0)
    mult = 0.001;
  else if (strcmp(end, "m") == 0)
    mult = 60;
  else if (strcmp(end, "h") == 0)
    mult = 3600;
  else
    return TODO_ERR_INVALID;
  *out = v * mult;
  return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
  if (!s || !*s)
    return TODO_ERR_INVALID;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v) || v < lo || v > hi)
    return TODO_ERR_INVALID;
  *out = v;
  return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9')
    return TODO_ERR_INVALID;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end)
    return TODO_ERR_INVALID;
  *out = v;
  return 0;
}

static int set_url(struct wl_config *cfg, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n >= sizeof cfg->url ||
      (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0))
    return TODO_ERR_INVALID;
  memcpy(cfg->url, s, n + 1);
  while (n > 0 && cfg->url[n - 1] == '/')
    cfg->url[--n] = '\0';
  return 0;
}

/* Applies one setting by its name; the flags and the environment share it. */
static int apply(struct wl_config *cfg, const char *name, const char *val) {
  double d;
  if (strcmp(name, "url") == 0)
    return set_url(cfg, val);
  if (strcmp(name, "rate") == 0)
    return parse_double(val, 0, 1e6, &cfg->rate);
  if (strcmp(name, "duration") == 0)
    return wl_parse_duration(val, &cfg->duration_s);
  if (strcmp(name, "concurrency") == 0) {
    if (parse_double(val, 1, 256, &d) != 0 || d != (int)d)
      return TODO_ERR_INVALID;
    cfg->concurrency = (int)d;
    return 0;
  }
  if (strcmp(name, "traceparent-ratio") == 0)
    return parse_double(val, 0, 1, &cfg->traceparent_ratio);
  if (strcmp(name, "timeout") == 0) {
    if (wl_parse_duration(val, &d) != 0 || d <= 0)
      return TODO_ERR_INVALID;
    cfg->timeout_s = d;
    return 0;
  }
  if (strcmp(name, "seed") == 0)
    return parse_u64(val, &cfg->seed);
  return TODO_ERR_INVALID;
}

int wl_parse_args(int argc, char **argv, const char *(*env)(const char *), struct wl_config *cfg,
                  char *err, size_t errlen) {
  static const struct {
    const char *var, *name;
  } envs[] = {
      {"TODO_API_URL", "url"},
      {"WORKLOAD_RATE", "rate"},
      {"WORKLOAD_DURATION", "duration"},
      {"WORKLOAD_CONCURRENCY", "concurrency"},
      {"WORKLOAD_TRACEPARENT_RATIO", "traceparent-ratio"},
      {"WORKLOAD_SEED", "seed"},
  };
  int rc = 0;
  memset(cfg, 0, sizeof *cfg);
  strcpy(cfg->url, "http://127.0.0.1:8000");
  cfg->rate = 10;
  cfg->concurrency = 4;
  cfg->traceparent_ratio = 0.3;
  cfg->timeout_s = 10;
  if (err && errlen)
    err[0] = '\0';

  for (size_t i = 0; env && i < sizeof envs / sizeof envs[0]; i++) {
    const char *v = env(envs[i].var);
    if (v && *v && apply(cfg, envs[i].name, v) != 0) {
      snprintf(err, errlen, "invalid %s=%s", envs[i].var, v);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      cfg->help = true;
      continue;
    }
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      cfg->quiet = true;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) {
      snprintf(err, errlen, "unexpected argument %s", a);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
    /* Both --name value and --name=value. */
    char name[32];
    const char *val;
    const char *eq = strchr(a + 2, '=');
    size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
    if (nlen == 0 || nlen >= sizeof name) {
      snprintf(err, errlen, "unknown option %s", a);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
    memcpy(name, a + 2, nlen);
    name[nlen] = '\0';
    if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      snprintf(err, errlen, "%s needs a value", a);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
    static const char *const known[] = {
        "url", "rate", "duration", "concurrency", "traceparent-ratio", "timeout", "seed"};
    bool found = false;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
      found = found || strcmp(name, known[k]) == 0;
    if (!found) {
      snprintf(err, errlen, "unknown option --%s", name);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
    if (apply(cfg, name, val) != 0) {
      snprintf(err, errlen, "invalid value for --%s: %s", name, val);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
  }
cleanup:
  return rc;
}

/* Bucket i holds latencies in [1.05^(i-1), 1.05^i) microseconds; bucket 0 everything below 1 us. */
static const double hist_base = 1.05;

void wl_hist_add(struct wl_hist *h, double seconds) {
  double us = seconds * 1e6;
  int i = 0;
  if (us >= 1) {
    double b = floor(log(us) / log(hist_base)) + 1;
    i = b >= WL_HIST_BUCKETS ? WL_HIST_BUCKETS - 1 : (int)b;
  }
  h->counts[i]++;
  h->total++;
}

void wl_hist_merge(struct wl_hist *into, const struct wl_hist *from) {
  for (int i = 0; i < WL_HIST_BUCKETS; i++)
    into->counts[i] += from->counts[i];
  into->total += from->total;
}

double wl_hist_quantile(const struct wl_hist *h, double q) {
  if (h->total == 0)
    return 0;
  /* The rank of the quantile, 1-based, as the nearest-rank method defines it. */
  uint64_t rank = (uint64_t)ceil(q * (double)h->total);
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  int i = 0;
  for (; i < WL_HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank)
      break;
  }
  if (i >= WL_HIST_BUCKETS)
    i = WL_HIST_BUCKETS - 1;
  return pow(hist_base, i) / 1e6;
}

uint64_t wl_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

void wl_traceparent(uint64_t a, uint64_t b, uint64_t c, char out[56]) {
  if (a == 0 && b == 0)
    b = 1;
  if (c == 0)
    c = 1;
  snprintf(out, 56, "00-%016llx%016llx-%016llx-01", (unsigned long long)a, (unsigned long long)b,
           (unsigned long long)c);
}

void wl_list_query(uint64_t r, char *buf, size_t len) {
  static const int limits[] = {0, 5, 10, 20, 50};
  static const int offsets[] = {0, 0, 0, 10, 20, 40};
  int limit = limits[r % 5];
  int offset = offsets[(r / 5) % 6];
  unsigned completed = (unsigned)((r / 30) % 4); /* 0, 1: absent; 2: true; 3: false */
  size_t n = 0;
  buf[0] = '\0';
  if (limit)
    n += (size_t)snprintf(buf + n, len - n, "%slimit=%d", n ? "&" : "?", limit);
  if (offset && n < len)
    n += (size_t)snprintf(buf + n, len - n, "%soffset=%d", n ? "&" : "?", offset);
  if (completed >= 2 && n < len)
    snprintf(buf + n, len - n, "%scompleted=%s", n ? "&" : "?", completed == 2 ? "true" : "false");
}
