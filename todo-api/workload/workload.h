/* The workload generator's pure parts: configuration from flags and environment, the request mix,
 * latency histograms and W3C trace context ids. workload.c drives the Todo API with them; the unit
 * tests (todo-api/tests/test_workload.c) exercise them without a network. */
#ifndef TODO_WORKLOAD_H
#define TODO_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The operations of the mix. The ones that need an existing todo fall back to WL_CREATE while
 * none is known (see wl_pick_op). */
enum wl_op {
  WL_CREATE,    /* POST a valid todo: 201 */
  WL_LIST,      /* GET the list with random limit/offset/completed: 200 */
  WL_GET,       /* GET a known todo: 200 (404 if another worker deleted it) */
  WL_PUT,       /* PUT a whole todo: 200 */
  WL_PATCH,     /* PATCH one field: 200 */
  WL_COMPLETE,  /* PATCH completed=true: 200 */
  WL_DELETE,    /* DELETE a known todo: 204 */
  WL_NOT_FOUND, /* GET/PATCH/DELETE an unknown id: 404 */
  WL_INVALID,   /* a body or parameter that fails validation: 422 */
  WL_MALFORMED, /* a body that is not JSON: 400 */
  WL_SLOW,      /* the largest list page the API serves (limit=100): the slow tail */
  WL_OP_COUNT
};

/* Weights of the operations, per thousand requests (they sum to 1000). */
extern const unsigned wl_op_weights[WL_OP_COUNT];

/* The operation's name as the summary prints it ("create", "list"...). */
const char *wl_op_name(enum wl_op op);

/* Maps a uniform random number to an operation by wl_op_weights. Without a known todo
 * (have_ids false), the operations that need one become WL_CREATE. */
enum wl_op wl_pick_op(uint32_t r, bool have_ids);

struct wl_config {
  char url[512];            /* base URL without a trailing slash */
  double rate;              /* requests per second in total; 0 = as fast as the workers go */
  double duration_s;        /* 0 = until SIGINT/SIGTERM */
  int concurrency;          /* worker threads, each with its own connection */
  double traceparent_ratio; /* share of requests that carry a W3C traceparent */
  double timeout_s;         /* per request */
  uint64_t seed;            /* 0 = from the clock */
  bool quiet;               /* no start-up line */
  bool help;                /* --help was given: print the usage and exit 0 */
};

/* Defaults, then the environment (TODO_API_URL, WORKLOAD_RATE, WORKLOAD_DURATION,
 * WORKLOAD_CONCURRENCY, WORKLOAD_TRACEPARENT_RATIO, WORKLOAD_SEED) read through env (getenv in the
 * program, a fake in the tests; may be NULL), then the flags, which win. Returns 0, or
 * TODO_ERR_INVALID with a message in err (errlen bytes) naming the bad flag or variable. */
int wl_parse_args(int argc, char **argv, const char *(*env)(const char *), struct wl_config *cfg,
                  char *err, size_t errlen);

/* The usage text. */
extern const char wl_usage[];

/* Parses a duration: a number of seconds with an optional unit ms, s, m or h ("30", "1.5m").
 * Returns 0 and *out in seconds, or TODO_ERR_INVALID for anything else or a negative value. */
int wl_parse_duration(const char *s, double *out);

/* A latency histogram with logarithmic buckets about 5% wide, from 1 us to about 100 s (larger
 * values land in the last bucket), so that memory stays fixed however long the run is. */
#define WL_HIST_BUCKETS 400
struct wl_hist {
  uint64_t counts[WL_HIST_BUCKETS];
  uint64_t total;
};

void wl_hist_add(struct wl_hist *h, double seconds);
void wl_hist_merge(struct wl_hist *into, const struct wl_hist *from);
/* The q-quantile (0..1) in seconds: the upper bound of the bucket that holds it; 0 when empty. */
double wl_hist_quantile(const struct wl_hist *h, double q);

/* xorshift64*: a small per-thread generator; *state must not be 0. */
uint64_t wl_rand(uint64_t *state);

/* Writes a sampled W3C traceparent "00-<32 hex>-<16 hex>-01" (55 characters and a NUL) made of
 * three random words; all-zero ids, which the specification forbids, are avoided. */
void wl_traceparent(uint64_t a, uint64_t b, uint64_t c, char out[56]);

/* Writes the query string of a list request ("?limit=20&offset=40&completed=true", or "" for the
 * defaults) chosen by r into buf (len bytes). */
void wl_list_query(uint64_t r, char *buf, size_t len);

#endif
