/* The SDK instance and its exporter thread: bounded queues of ended spans and log records, a
 * periodic metric reader, and OTLP/HTTP protobuf requests sent with libcurl.
 *
 * Request threads only take `mu` to push a pointer; the exporter thread swaps out a batch under
 * `mu` and encodes and sends it without the lock. A full queue drops the newest item and counts
 * it: the API request that produced it never waits for the collector. */
#include "otel_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct queue {
  void **items;
  size_t cap, head, len;
};

struct todo_tel {
  bool enabled;
  struct todo_tel_config cfg; /* strings owned */
  struct todo_meter *meter;   /* borrowed */
  struct todo_tel__resource resource;
  struct todo_tel__arena resource_arena;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop, started, shut_down;
  pthread_t thread;
  struct queue spans, logs;
  struct todo_tel_stats stats; /* under mu */

  CURL *curl; /* the exporter thread's only */
  struct curl_slist *headers;
};

bool todo_tel_enabled(const struct todo_tel *tel) {
  return tel && tel->enabled;
}

/* ---------- queues ---------- */

static int queue_init(struct queue *q, size_t cap) {
  q->items = calloc(cap, sizeof(void *));
  q->cap = cap;
  q->head = q->len = 0;
  return q->items ? 0 : -1;
}

static bool queue_push(struct queue *q, void *item) {
  if (q->len == q->cap) {
    return false;
  }
  q->items[(q->head + q->len) % q->cap] = item;
  q->len++;
  return true;
}

/* Moves up to max items into out; returns how many. */
static size_t queue_pop_many(struct queue *q, void **out, size_t max) {
  size_t n = 0;
  while (n < max && q->len > 0) {
    out[n++] = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
  }
  return n;
}

void todo_tel__enqueue_span(struct todo_tel *tel, struct todo_span *span) {
  bool queued = false;
  if (tel->cfg.traces_endpoint) {
    pthread_mutex_lock(&tel->mu);
    queued = !tel->shut_down && queue_push(&tel->spans, span);
    if (!queued) {
      tel->stats.spans_dropped++;
    } else if (tel->spans.len >= tel->cfg.max_export_batch) {
      /* A full batch is ready: wake the exporter now rather than at the next tick. */
      pthread_cond_signal(&tel->cv);
    }
    pthread_mutex_unlock(&tel->mu);
  }
  if (!queued) {
    todo_tel__span_free(span);
  }
}

void todo_tel__enqueue_log(struct todo_tel *tel, struct todo_tel__log *log) {
  bool queued = false;
  if (tel->cfg.logs_endpoint) {
    pthread_mutex_lock(&tel->mu);
    queued = !tel->shut_down && queue_push(&tel->logs, log);
    if (!queued) {
      tel->stats.logs_dropped++;
    } else if (tel->logs.len >= tel->cfg.max_export_batch) {
      pthread_cond_signal(&tel->cv);
    }
    pthread_mutex_unlock(&tel->mu);
  }
  if (!queued) {
    todo_tel__log_free(log);
  }
}

void todo_tel_get_stats(struct todo_tel *tel, struct todo_tel_stats *out) {
  memset(out, 0, sizeof(*out));
  if (!tel || !tel->enabled) {
    return;
  }
  pthread_mutex_lock(&tel->mu);
  *out = tel->stats;
  pthread_mutex_unlock(&tel->mu);
}

/* ---------- HTTP ---------- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg) {
  (void)ptr;
  (void)arg;
  return size * nmemb;
}

/* POSTs one encoded request. Returns 0 when the collector accepted it (2xx), -1 otherwise. */
static int post(struct todo_tel *tel, const char *url, const uint8_t *body, size_t len) {
  long status = 0;
  curl_easy_setopt(tel->curl, CURLOPT_URL, url);
  curl_easy_setopt(tel->curl, CURLOPT_POSTFIELDS, (const char *)body);
  curl_easy_setopt(tel->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  CURLcode rc = curl_easy_perform(tel->curl);
  if (rc != CURLE_OK) {
    return -1;
  }
  curl_easy_getinfo(tel->curl, CURLINFO_RESPONSE_CODE, &status);
  return status >= 200 && status < 300 ? 0 : -1;
}

static int setup_curl(struct todo_tel *tel) {
  tel->curl = curl_easy_init();
  if (!tel->curl) {
    return -1;
  }
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
  for (size_t i = 0; h && i < tel->cfg.n_headers; i++) {
    char line[1024];
    snprintf(line, sizeof(line), "%s: %s", tel->cfg.headers[i].key, tel->cfg.headers[i].value);
    /* A header value with a line break would split the request: refuse it. */
    if (strpbrk(line, "\r\n")) {
      continue;
    }
    struct curl_slist *nh = curl_slist_append(h, line);
    if (!nh) {
      curl_slist_free_all(h);
      h = NULL;
      break;
    }
    h = nh;
  }
  if (!h) {
    return -1;
  }
  tel->headers = h;
  curl_easy_setopt(tel->curl, CURLOPT_HTTPHEADER, tel->headers);
  curl_easy_setopt(tel->curl, CURLOPT_TIMEOUT_MS, (long)tel->cfg.export_timeout_ms);
  curl_easy_setopt(tel->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)tel->cfg.export_timeout_ms);
  curl_easy_setopt(tel->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(tel->curl, CURLOPT_USERAGENT,
                   "OTel-OTLP-Exporter-C/" TODO_TEL_SDK_VERSION " (" TODO_TEL_SDK_NAME ")");
  curl_easy_setopt(tel->curl, CURLOPT_WRITEFUNCTION, discard_body);
  return 0;
}

/* ---------- export steps (exporter thread) ---------- */

/* Exports everything queued for spans, in batches. */
static void export_spans(struct todo_tel *tel) {
  size_t max = tel->cfg.max_export_batch;
  void **batch = malloc(max * sizeof(void *));
  if (!batch) {
    return;
  }
  for (;;) {
    pthread_mutex_lock(&tel->mu);
    size_t n = queue_pop_many(&tel->spans, batch, max);
    pthread_mutex_unlock(&tel->mu);
    if (n == 0) {
      break;
    }
    uint8_t *body = NULL;
    size_t len = 0;
    int rc =
        todo_tel__encode_spans(&tel->resource, (struct todo_span *const *)batch, n, &body, &len);
    if (rc == 0) {
      rc = post(tel, tel->cfg.traces_endpoint, body, len);
    }
    free(body);
    for (size_t i = 0; i < n; i++) {
      todo_tel__span_free(batch[i]);
    }
    pthread_mutex_lock(&tel->mu);
    if (rc == 0) {
      tel->stats.spans_exported += n;
    } else {
      tel->stats.spans_failed += n;
    }
    pthread_mutex_unlock(&tel->mu);
  }
  free(batch);
}

static void export_logs(struct todo_tel *tel) {
  size_t max = tel->cfg.max_export_batch;
  void **batch = malloc(max * sizeof(void *));
  if (!batch) {
    return;
  }
  for (;;) {
    pthread_mutex_lock(&tel->mu);
    size_t n = queue_pop_many(&tel->logs, batch, max);
    pthread_mutex_unlock(&tel->mu);
    if (n == 0) {
      break;
    }
    uint8_t *body = NULL;
    size_t len = 0;
    int rc =
        todo_tel__encode_logs(&tel->resource, (struct todo_tel__log *const *)batch, n, &body, &len);
    if (rc == 0) {
      rc = post(tel, tel->cfg.logs_endpoint, body, len);
    }
    free(body);
    for (size_t i = 0; i < n; i++) {
      todo_tel__log_free(batch[i]);
    }
    pthread_mutex_lock(&tel->mu);
    if (rc == 0) {
      tel->stats.logs_exported += n;
    } else {
      tel->stats.logs_failed += n;
    }
    pthread_mutex_unlock(&tel->mu);
  }
  free(batch);
}

static void export_metrics(struct todo_tel *tel) {
  struct todo_tel__snapshot snap;
  uint8_t *body = NULL;
  size_t len = 0;
  int rc = -1;
  if (todo_tel__meter_collect(tel->meter, &snap) != 0) {
    goto cleanup;
  }
  rc = todo_tel__encode_metrics(&tel->resource, &snap, &body, &len);
  todo_tel__snapshot_free(&snap);
  if (rc == 0) {
    rc = post(tel, tel->cfg.metrics_endpoint, body, len);
  }
cleanup:
  free(body);
  pthread_mutex_lock(&tel->mu);
  if (rc == 0) {
    tel->stats.metric_exports++;
  } else {
    tel->stats.metrics_failed++;
  }
  pthread_mutex_unlock(&tel->mu);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *exporter_main(void *arg) {
  struct todo_tel *tel = arg;
  uint64_t now = mono_ms();
  uint64_t next_spans = now + (uint64_t)tel->cfg.bsp_delay_ms;
  uint64_t next_logs = now + (uint64_t)tel->cfg.blrp_delay_ms;
  uint64_t next_metrics = now + (uint64_t)tel->cfg.metric_interval_ms;
  pthread_mutex_lock(&tel->mu);
  while (!tel->stop) {
    now = mono_ms();
    bool spans_due = now >= next_spans || tel->spans.len >= tel->cfg.max_export_batch;
    bool logs_due = now >= next_logs || tel->logs.len >= tel->cfg.max_export_batch;
    bool metrics_due = now >= next_metrics;
    if (!spans_due && !logs_due && !metrics_due) {
      uint64_t wake = next_spans < next_logs ? next_spans : next_logs;
      wake = wake < next_metrics ? wake : next_metrics;
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t wait_ms = wake - now;
      ts.tv_sec += (time_t)(wait_ms / 1000);
      ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&tel->cv, &tel->mu, &ts);
      continue;
    }
    pthread_mutex_unlock(&tel->mu);
    if (spans_due) {
      export_spans(tel);
      next_spans = mono_ms() + (uint64_t)tel->cfg.bsp_delay_ms;
    }
    if (logs_due) {
      export_logs(tel);
      next_logs = mono_ms() + (uint64_t)tel->cfg.blrp_delay_ms;
    }
    if (metrics_due) {
      if (tel->cfg.metrics_endpoint) {
        export_metrics(tel);
      }
      next_metrics = mono_ms() + (uint64_t)tel->cfg.metric_interval_ms;
    }
    pthread_mutex_lock(&tel->mu);
  }
  pthread_mutex_unlock(&tel->mu);
  /* The final flush: what is queued, and the metrics as they stand at shutdown. */
  export_spans(tel);
  export_logs(tel);
  if (tel->cfg.metrics_endpoint) {
    export_metrics(tel);
  }
  return NULL;
}

/* ---------- life cycle ---------- */

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

/* Copies cfg's strings into dst. Returns 0 or -1 when out of memory. */
static int copy_config(struct todo_tel_config *dst, const struct todo_tel_config *src) {
  *dst = *src;
  dst->service_name = dup_or_null(src->service_name ? src->service_name : "unknown_service");
  dst->service_version = dup_or_null(src->service_version);
  dst->traces_endpoint = dup_or_null(src->traces_endpoint);
  dst->metrics_endpoint = dup_or_null(src->metrics_endpoint);
  dst->logs_endpoint = dup_or_null(src->logs_endpoint);
  dst->resource = NULL;
  dst->headers = NULL;
  dst->n_resource = dst->n_headers = 0;
  if (!dst->service_name || (src->service_version && !dst->service_version) ||
      (src->traces_endpoint && !dst->traces_endpoint) ||
      (src->metrics_endpoint && !dst->metrics_endpoint) ||
      (src->logs_endpoint && !dst->logs_endpoint)) {
    return -1;
  }
  if (src->n_headers) {
    dst->headers = calloc(src->n_headers, sizeof(*dst->headers));
    if (!dst->headers) {
      return -1;
    }
    for (size_t i = 0; i < src->n_headers; i++) {
      dst->headers[i].key = strdup(src->headers[i].key);
      dst->headers[i].value = strdup(src->headers[i].value);
      dst->n_headers++;
      if (!dst->headers[i].key || !dst->headers[i].value) {
        return -1;
      }
    }
  }
  if (dst->max_export_batch == 0) {
    dst->max_export_batch = 512;
  }
  return 0;
}

/* Adds one string attribute to the resource unless its key is already there. */
static int resource_add(struct todo_tel *tel, size_t cap, const char *key, const char *value) {
  for (size_t i = 0; i < tel->resource.n_attrs; i++) {
    if (strcmp(tel->resource.attrs[i].key, key) == 0) {
      return 0;
    }
  }
  if (tel->resource.n_attrs == cap) {
    return 0;
  }
  struct todo_attr a = TODO_ATTR_STR(key, value);
  return todo_tel__attr_copy(&tel->resource_arena, &tel->resource.attrs[tel->resource.n_attrs++],
                             &a);
}

/* The resource: service.name first (it wins over OTEL_RESOURCE_ATTRIBUTES), then the user's
 * attributes, then what the SDK knows about itself and the process. */
static int build_resource(struct todo_tel *tel, const struct todo_tel_config *cfg) {
  size_t cap = cfg->n_resource + 10;
  char host[256] = "", instance[37];
  uint8_t id[16];
  tel->resource.attrs =
      todo_tel__arena_alloc(&tel->resource_arena, cap * sizeof(struct todo_tel__attr));
  if (!tel->resource.attrs) {
    return -1;
  }
  if (resource_add(tel, cap, "service.name", tel->cfg.service_name) != 0) {
    return -1;
  }
  if (cfg->service_version &&
      resource_add(tel, cap, "service.version", cfg->service_version) != 0) {
    return -1;
  }
  for (size_t i = 0; i < cfg->n_resource; i++) {
    if (resource_add(tel, cap, cfg->resource[i].key, cfg->resource[i].value) != 0) {
      return -1;
    }
  }
  todo_tel__random_id(id, sizeof(id));
  id[6] = (uint8_t)((id[6] & 0x0F) | 0x40); /* a version 4 UUID */
  id[8] = (uint8_t)((id[8] & 0x3F) | 0x80);
  snprintf(instance, sizeof(instance),
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
           id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
           id[14], id[15]);
  gethostname(host, sizeof(host) - 1);
  if (resource_add(tel, cap, "service.instance.id", instance) != 0 ||
      resource_add(tel, cap, "telemetry.sdk.name", TODO_TEL_SDK_NAME) != 0 ||
      resource_add(tel, cap, "telemetry.sdk.language", "c") != 0 ||
      resource_add(tel, cap, "telemetry.sdk.version", TODO_TEL_SDK_VERSION) != 0 ||
      (host[0] && resource_add(tel, cap, "host.name", host) != 0)) {
    return -1;
  }
  /* process.pid is an int in the semantic conventions. */
  if (tel->resource.n_attrs < cap) {
    struct todo_attr a = TODO_ATTR_INT("process.pid", (int64_t)getpid());
    if (todo_tel__attr_copy(&tel->resource_arena, &tel->resource.attrs[tel->resource.n_attrs++],
                            &a) != 0) {
      return -1;
    }
  }
  return 0;
}

struct todo_tel *todo_tel_create(const struct todo_tel_config *cfg, struct todo_meter *meter) {
  struct todo_tel *tel = calloc(1, sizeof(*tel));
  if (!tel) {
    return NULL;
  }
  pthread_mutex_init(&tel->mu, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&tel->cv, &attr);
  pthread_condattr_destroy(&attr);
  tel->meter = meter;
  if (cfg->disabled) {
    return tel;
  }
  if (copy_config(&tel->cfg, cfg) != 0 || build_resource(tel, cfg) != 0 ||
      queue_init(&tel->spans, cfg->span_queue_size ? cfg->span_queue_size : 2048) != 0 ||
      queue_init(&tel->logs, cfg->log_queue_size ? cfg->log_queue_size : 2048) != 0 ||
      setup_curl(tel) != 0) {
    goto fail;
  }
  if (tel->cfg.metric_interval_ms <= 0) {
    tel->cfg.metric_interval_ms = 60000;
  }
  if (tel->cfg.bsp_delay_ms <= 0) {
    tel->cfg.bsp_delay_ms = 5000;
  }
  if (tel->cfg.blrp_delay_ms <= 0) {
    tel->cfg.blrp_delay_ms = 1000;
  }
  if (!meter) {
    free(tel->cfg.metrics_endpoint);
    tel->cfg.metrics_endpoint = NULL;
  }
  if (pthread_create(&tel->thread, NULL, exporter_main, tel) != 0) {
    goto fail;
  }
  tel->started = true;
  tel->enabled = true;
  return tel;
fail:
  todo_tel_destroy(tel);
  return NULL;
}

void todo_tel_shutdown(struct todo_tel *tel) {
  if (!tel) {
    return;
  }
  pthread_mutex_lock(&tel->mu);
  bool join = tel->started && !tel->stop;
  tel->stop = true;
  pthread_cond_signal(&tel->cv);
  pthread_mutex_unlock(&tel->mu);
  if (join) {
    pthread_join(tel->thread, NULL);
  }
  pthread_mutex_lock(&tel->mu);
  /* From now on spans and logs are dropped rather than queued for a thread that is gone. */
  tel->shut_down = true;
  pthread_mutex_unlock(&tel->mu);
}

void todo_tel_destroy(struct todo_tel *tel) {
  if (!tel) {
    return;
  }
  todo_tel_shutdown(tel);
  void *item;
  while (queue_pop_many(&tel->spans, &item, 1) == 1) {
    todo_tel__span_free(item);
  }
  while (queue_pop_many(&tel->logs, &item, 1) == 1) {
    todo_tel__log_free(item);
  }
  free(tel->spans.items);
  free(tel->logs.items);
  if (tel->curl) {
    curl_easy_cleanup(tel->curl);
  }
  curl_slist_free_all(tel->headers);
  todo_tel__arena_free(&tel->resource_arena);
  todo_tel_config_free(&tel->cfg);
  pthread_cond_destroy(&tel->cv);
  pthread_mutex_destroy(&tel->mu);
  free(tel);
}
