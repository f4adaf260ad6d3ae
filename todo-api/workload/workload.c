/* todo-workload: drives the Todo API at a configured rate with a realistic mix of requests
 * (workload.h lists it) from a few worker threads, each with its own libcurl handle and
 * keep-alive connection, and prints a summary on exit: requests per status class and per
 * operation, latency p50/p99. Exit status 1 when the API never answered. */
#include "workload.h"

#include "errors.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Status classes of the summary: 0 = no HTTP response (connection refused, timeout). */
enum { CLASS_ERR, CLASS_1XX, CLASS_2XX, CLASS_3XX, CLASS_4XX, CLASS_5XX, CLASS_COUNT };

/* Known todo ids, shared by the workers: at most POOL_MAX, the oldest replaced at random. */
#define POOL_MAX 1024
#define ID_LEN 36
/* A response body is kept only to read a created todo's id; the rest is discarded. */
#define BODY_MAX (256 * 1024)

struct stats {
  uint64_t counts[WL_OP_COUNT][CLASS_COUNT];
  struct wl_hist hist[WL_OP_COUNT];
};

struct shared {
  struct wl_config cfg;
  pthread_mutex_t mu;
  char ids[POOL_MAX][ID_LEN + 1];
  int nids;
  double next_slot; /* monotonic seconds of the next request the rate allows */
  double start, end;
  uint64_t seq;
};

struct worker {
  struct shared *sh;
  pthread_t thread;
  uint64_t rng;
  struct stats st;
  char *body;
  size_t body_len;
};

static volatile sig_atomic_t stop_flag;
static atomic_bool stop_atomic;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static bool stopping(void) {
  return stop_flag || atomic_load(&stop_atomic);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until the monotonic time t, in steps short enough to notice a stop request. */
static void sleep_until(double t) {
  for (;;) {
    double left = t - now_s();
    if (left <= 0 || stopping())
      return;
    if (left > 0.1)
      left = 0.1;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(left * 1e9)};
    nanosleep(&ts, NULL);
  }
}

/* Waits for this worker's turn under the rate: the shared schedule hands out one slot per
 * 1/rate seconds. A schedule that fell behind (the API slower than the rate) restarts from now
 * instead of bursting to catch up. Returns false when the run is over. */
static bool take_slot(struct shared *sh) {
  double t;
  pthread_mutex_lock(&sh->mu);
  double now = now_s();
  if (sh->cfg.rate > 0) {
    if (sh->next_slot < now - 1)
      sh->next_slot = now;
    t = sh->next_slot;
    sh->next_slot += 1.0 / sh->cfg.rate;
  } else {
    t = now;
  }
  pthread_mutex_unlock(&sh->mu);
  if (sh->end > 0 && t >= sh->end)
    return false;
  sleep_until(t);
  return !stopping() && !(sh->end > 0 && now_s() >= sh->end);
}

static void pool_add(struct shared *sh, const char *id, uint64_t r) {
  if (strlen(id) != ID_LEN)
    return;
  pthread_mutex_lock(&sh->mu);
  int slot = sh->nids < POOL_MAX ? sh->nids++ : (int)(r % POOL_MAX);
  memcpy(sh->ids[slot], id, ID_LEN + 1);
  pthread_mutex_unlock(&sh->mu);
}

/* Copies a random known id into out; with take, removes it from the pool (delete). Returns false
 * when none is known. */
static bool pool_pick(struct shared *sh, uint64_t r, bool take, char out[ID_LEN + 1]) {
  bool ok = false;
  pthread_mutex_lock(&sh->mu);
  if (sh->nids > 0) {
    int i = (int)(r % (uint64_t)sh->nids);
    memcpy(out, sh->ids[i], ID_LEN + 1);
    if (take) {
      sh->nids--;
      memcpy(sh->ids[i], sh->ids[sh->nids], ID_LEN + 1);
    }
    ok = true;
  }
  pthread_mutex_unlock(&sh->mu);
  return ok;
}

static bool pool_empty(struct shared *sh) {
  pthread_mutex_lock(&sh->mu);
  bool empty = sh->nids == 0;
  pthread_mutex_unlock(&sh->mu);
  return empty;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
  struct worker *w = userp;
  size_t n = size * nmemb;
  size_t room = BODY_MAX - w->body_len;
  size_t keep = n < room ? n : room;
  memcpy(w->body + w->body_len, data, keep);
  w->body_len += keep;
  w->body[w->body_len] = '\0';
  return n;
}

/* Aborts a transfer in flight when the run is stopped, so that Ctrl-C is prompt. */
static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)p, (void)dt, (void)dn, (void)ut, (void)un;
  return stopping() ? 1 : 0;
}

static const char *const words[] = {"milk",   "report", "invoice", "garden", "dentist", "taxes",
                                    "car",    "email",  "backup",  "slides", "review",  "trip",
                                    "laptop", "rent",   "gym",     "books"};

/* A JSON body built with jansson (so quoting is right); the caller frees it. */
static char *todo_body(uint64_t r, bool full, bool completed) {
  char title[96];
  snprintf(title, sizeof title, "%s the %s #%u", (r & 1) ? "Check" : "Do",
           words[(r >> 1) % (sizeof words / sizeof words[0])], (unsigned)((r >> 8) % 10000));
  json_t *o = json_object();
  json_object_set_new(o, "title", json_string(title));
  if (full || (r >> 20) % 2) {
    if ((r >> 21) % 3 == 0)
      json_object_set_new(o, "description", json_null());
    else
      json_object_set_new(o, "description", json_string("Created by todo-workload"));
  }
  if (full)
    json_object_set_new(o, "completed", json_boolean(completed));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

/* One PATCH body: a title, a description or the completed flag. */
static char *patch_body(uint64_t r) {
  json_t *o = json_object();
  switch (r % 3) {
  case 0:
    json_object_set_new(o, "title", json_string("Renamed by todo-workload"));
    break;
  case 1:
    json_object_set_new(o, "description", json_string("Edited"));
    break;
  default:
    json_object_set_new(o, "completed", json_boolean((r >> 2) & 1));
    break;
  }
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

/* Bodies and parameters the API must refuse with 422, one per request. */
static const char *const invalid_bodies[] = {
    "{\"title\":\"\"}",
    "{\"title\":\"   \"}",
    "{\"title\":42}",
    "{\"title\":\"ok\",\"completed\":\"yes\"}",
    "{\"title\":\"ok\",\"owner\":\"bob\"}",
    "[\"not\",\"an\",\"object\"]",
    "{\"description\":\"no title\"}",
};
/* Bodies that are not JSON at all: 400. */
static const char *const malformed_bodies[] = {"{\"title\": \"oops\"", "title=oops", "{\"a\":1,}",
                                               "{\"title\":\"x\",\"title\":\"y\"}"};

static void random_uuid(uint64_t a, uint64_t b, char out[ID_LEN + 1]) {
  snprintf(out, ID_LEN + 1, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32),
           (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
           (unsigned long long)(b & 0xffffffffffffULL));
}

/* Performs one operation and records it. */
static void do_request(struct worker *w, CURL *curl, enum wl_op op) {
  struct shared *sh = w->sh;
  uint64_t r = wl_rand(&w->rng);
  char url[sizeof sh->cfg.url + 128];
  char id[ID_LEN + 1];
  char *owned = NULL;
  const char *body = NULL;
  const char *method = "GET";
  struct curl_slist *headers = NULL;

  switch (op) {
  case WL_CREATE:
    method = "POST";
    body = owned = todo_body(r, false, false);
    snprintf(url, sizeof url, "%s/api/v1/todos", sh->cfg.url);
    break;
  case WL_LIST: {
    char q[64];
    wl_list_query(r, q, sizeof q);
    snprintf(url, sizeof url, "%s/api/v1/todos%s", sh->cfg.url, q);
    break;
  }
  case WL_SLOW:
    snprintf(url, sizeof url, "%s/api/v1/todos?limit=100", sh->cfg.url);
    break;
  case WL_GET:
  case WL_PUT:
  case WL_PATCH:
  case WL_COMPLETE:
  case WL_DELETE:
    if (!pool_pick(sh, r >> 7, op == WL_DELETE, id)) {
      op = WL_CREATE;
      method = "POST";
      body = owned = todo_body(r, false, false);
      snprintf(url, sizeof url, "%s/api/v1/todos", sh->cfg.url);
      break;
    }
    snprintf(url, sizeof url, "%s/api/v1/todos/%s", sh->cfg.url, id);
    if (op == WL_PUT) {
      method = "PUT";
      body = owned = todo_body(r, true, (r >> 30) & 1);
    } else if (op == WL_PATCH) {
      method = "PATCH";
      body = owned = patch_body(r >> 9);
    } else if (op == WL_COMPLETE) {
      method = "PATCH";
      body = "{\"completed\":true}";
    } else if (op == WL_DELETE) {
      method = "DELETE";
    }
    break;
  case WL_NOT_FOUND:
    random_uuid(r, wl_rand(&w->rng), id);
    snprintf(url, sizeof url, "%s/api/v1/todos/%s", sh->cfg.url, id);
    method = (r >> 60) % 3 == 0 ? "DELETE" : (r >> 60) % 3 == 1 ? "PATCH" : "GET";
    if (strcmp(method, "PATCH") == 0)
      body = "{\"completed\":true}";
    break;
  case WL_INVALID:
    if ((r >> 3) % 5 == 0) {
      /* A bad query parameter is a validation error too. */
      snprintf(url, sizeof url, "%s/api/v1/todos?limit=%s", sh->cfg.url,
               (r >> 6) & 1 ? "1000" : "zero");
    } else {
      method = "POST";
      body = invalid_bodies[(r >> 6) % (sizeof invalid_bodies / sizeof invalid_bodies[0])];
      snprintf(url, sizeof url, "%s/api/v1/todos", sh->cfg.url);
    }
    break;
  case WL_MALFORMED:
    method = "POST";
    body = malformed_bodies[(r >> 6) % (sizeof malformed_bodies / sizeof malformed_bodies[0])];
    snprintf(url, sizeof url, "%s/api/v1/todos", sh->cfg.url);
    break;
  default:
    return;
  }

  if (body)
    headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  double u = (double)(wl_rand(&w->rng) >> 11) / 9007199254740992.0;
  if (u < sh->cfg.traceparent_ratio) {
    char tp[56], hdr[80];
    wl_traceparent(wl_rand(&w->rng), wl_rand(&w->rng), wl_rand(&w->rng), tp);
    snprintf(hdr, sizeof hdr, "traceparent: %s", tp);
    headers = curl_slist_append(headers, hdr);
  }

  w->body_len = 0;
  w->body[0] = '\0';
  /* The handle is reused: reset it to a plain GET, then name the method (a body makes it a POST
   * underneath, which the custom method renames). */
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  double t0 = now_s();
  CURLcode cc = curl_easy_perform(curl);
  double elapsed = now_s() - t0;
  if (cc == CURLE_ABORTED_BY_CALLBACK)
    goto cleanup; /* stopped mid-request: not a result */

  long status = 0;
  if (cc == CURLE_OK)
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  int cls = status >= 100 && status < 600 ? (int)(status / 100) : CLASS_ERR;
  w->st.counts[op][cls]++;
  if (cls != CLASS_ERR)
    wl_hist_add(&w->st.hist[op], elapsed);

  if (op == WL_CREATE && status == 201) {
    json_t *root = json_loadb(w->body, w->body_len, 0, NULL);
    const char *nid = json_string_value(json_object_get(root, "id"));
    if (nid)
      pool_add(sh, nid, wl_rand(&w->rng));
    json_decref(root);
  }

cleanup:
  curl_slist_free_all(headers);
  free(owned);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct shared *sh = w->sh;
  CURL *curl = curl_easy_init();
  if (!curl)
    return NULL;
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(sh->cfg.timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "todo-workload/1.0");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, w);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  while (take_slot(sh)) {
    enum wl_op op = wl_pick_op((uint32_t)(wl_rand(&w->rng) >> 32), !pool_empty(sh));
    do_request(w, curl, op);
  }
  curl_easy_cleanup(curl);
  return NULL;
}

static void print_summary(const struct shared *sh, struct worker *ws, int n, double elapsed) {
  struct stats *all = calloc(1, sizeof *all);
  if (!all)
    return;
  struct wl_hist total_hist = {0};
  uint64_t by_class[CLASS_COUNT] = {0};
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    for (int op = 0; op < WL_OP_COUNT; op++) {
      for (int c = 0; c < CLASS_COUNT; c++)
        all->counts[op][c] += ws[i].st.counts[op][c];
      wl_hist_merge(&all->hist[op], &ws[i].st.hist[op]);
    }
  }
  for (int op = 0; op < WL_OP_COUNT; op++) {
    wl_hist_merge(&total_hist, &all->hist[op]);
    for (int c = 0; c < CLASS_COUNT; c++) {
      by_class[c] += all->counts[op][c];
      total += all->counts[op][c];
    }
  }
  printf("todo-workload summary: %llu requests in %.1f s (%.1f req/s) against %s\n",
         (unsigned long long)total, elapsed, elapsed > 0 ? (double)total / elapsed : 0.0,
         sh->cfg.url);
  printf("status: 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, no response %llu\n",
         (unsigned long long)by_class[CLASS_2XX], (unsigned long long)by_class[CLASS_3XX],
         (unsigned long long)by_class[CLASS_4XX], (unsigned long long)by_class[CLASS_5XX],
         (unsigned long long)by_class[CLASS_ERR]);
  printf("%-13s %9s %7s %7s %7s %7s %9s %9s\n", "operation", "requests", "2xx", "4xx", "5xx",
         "no-resp", "p50 ms", "p99 ms");
  for (int op = 0; op < WL_OP_COUNT; op++) {
    uint64_t sum = 0;
    for (int c = 0; c < CLASS_COUNT; c++)
      sum += all->counts[op][c];
    printf("%-13s %9llu %7llu %7llu %7llu %7llu %9.2f %9.2f\n", wl_op_name(op),
           (unsigned long long)sum, (unsigned long long)all->counts[op][CLASS_2XX],
           (unsigned long long)all->counts[op][CLASS_4XX],
           (unsigned long long)all->counts[op][CLASS_5XX],
           (unsigned long long)all->counts[op][CLASS_ERR],
           wl_hist_quantile(&all->hist[op], 0.5) * 1e3,
           wl_hist_quantile(&all->hist[op], 0.99) * 1e3);
  }
  printf("%-13s %9llu %7llu %7llu %7llu %7llu %9.2f %9.2f\n", "all", (unsigned long long)total,
         (unsigned long long)by_class[CLASS_2XX], (unsigned long long)by_class[CLASS_4XX],
         (unsigned long long)by_class[CLASS_5XX], (unsigned long long)by_class[CLASS_ERR],
         wl_hist_quantile(&total_hist, 0.5) * 1e3, wl_hist_quantile(&total_hist, 0.99) * 1e3);
  fflush(stdout);
  free(all);
}

static const char *env_get(const char *name) {
  return getenv(name);
}

int main(int argc, char **argv) {
  int status = 2;
  char err[256];
  struct shared *sh = calloc(1, sizeof *sh);
  struct worker *ws = NULL;
  int started = 0;
  bool curl_ready = false;
  if (!sh) {
    fprintf(stderr, "todo-workload: out of memory\n");
    goto cleanup;
  }
  if (wl_parse_args(argc, argv, env_get, &sh->cfg, err, sizeof err) != 0) {
    fprintf(stderr, "todo-workload: %s\n%s", err, wl_usage);
    goto cleanup;
  }
  if (sh->cfg.help) {
    fputs(wl_usage, stdout);
    status = 0;
    goto cleanup;
  }
  status = 1;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "todo-workload: curl_global_init failed\n");
    goto cleanup;
  }
  curl_ready = true;

  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  pthread_mutex_init(&sh->mu, NULL);
  sh->start = now_s();
  sh->next_slot = sh->start;
  sh->end = sh->cfg.duration_s > 0 ? sh->start + sh->cfg.duration_s : 0;
  uint64_t seed = sh->cfg.seed;
  if (seed == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
  }
  if (!sh->cfg.quiet) {
    fprintf(stderr, "todo-workload: %s, %g req/s, %d connections, duration %s\n", sh->cfg.url,
            sh->cfg.rate, sh->cfg.concurrency, sh->cfg.duration_s > 0 ? "limited" : "until signal");
  }

  ws = calloc((size_t)sh->cfg.concurrency, sizeof *ws);
  if (!ws) {
    fprintf(stderr, "todo-workload: out of memory\n");
    goto cleanup;
  }
  for (int i = 0; i < sh->cfg.concurrency; i++) {
    ws[i].sh = sh;
    ws[i].rng = (seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)) | 1;
    ws[i].body = malloc(BODY_MAX + 1);
    if (!ws[i].body) {
      fprintf(stderr, "todo-workload: out of memory\n");
      atomic_store(&stop_atomic, true);
      break;
    }
    if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
      fprintf(stderr, "todo-workload: cannot start a thread\n");
      atomic_store(&stop_atomic, true);
      break;
    }
    started++;
  }
  for (int i = 0; i < started; i++)
    pthread_join(ws[i].thread, NULL);

  print_summary(sh, ws, started, now_s() - sh->start);
  uint64_t answered = 0;
  for (int i = 0; i < started; i++)
    for (int op = 0; op < WL_OP_COUNT; op++)
      for (int c = CLASS_1XX; c < CLASS_COUNT; c++)
        answered += ws[i].st.counts[op][c];
  if (answered > 0) {
    status = 0;
  } else {
    fprintf(stderr, "todo-workload: the API at %s never answered\n", sh->cfg.url);
  }
  pthread_mutex_destroy(&sh->mu);

cleanup:
  if (ws) {
    for (int i = 0; i < (sh ? sh->cfg.concurrency : 0); i++)
      free(ws[i].body);
    free(ws);
  }
  if (curl_ready)
    curl_global_cleanup();
  free(sh);
  return status;
}
