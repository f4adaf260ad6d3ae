/* todo-api: the Todo service. `todo-api [serve]` migrates the database and serves HTTP until
 * SIGINT or SIGTERM; `todo-api migrate` only applies the migrations. */
#include "config.h"
#include "errors.h"
#include "log.h"
#include "migrate.h"
#include "otel.h"
#include "routes.h"
#include "server.h"
#include "store.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TODO_API_VERSION "1.0.0"

static void usage(FILE *f) {
  fprintf(f, "usage: todo-api [serve|migrate|version|help]\n"
             "  serve    apply pending migrations, then serve HTTP (the default)\n"
             "  migrate  apply pending migrations and exit\n"
             "Configuration comes from the environment: DATABASE_URL, HOST, PORT, the OTEL_*\n"
             "variables and more; see todo-api/README.md.\n");
}

static enum todo_level level_from_env(void) {
  const char *v = getenv("LOG_LEVEL");
  if (!v || !*v || strcasecmp(v, "info") == 0) {
    return TODO_LOG_INFO;
  }
  if (strcasecmp(v, "debug") == 0) {
    return TODO_LOG_DEBUG;
  }
  if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0) {
    return TODO_LOG_WARN;
  }
  if (strcasecmp(v, "error") == 0) {
    return TODO_LOG_ERROR;
  }
  return TODO_LOG_INFO;
}

/* ---------- gauges from the database ---------- */

/* The todo count and completed ratio come from one query, cached for a second so that the two
 * gauges (and a scrape racing an export) cost one statement. */
struct todo_counts {
  struct todo_store *store;
  pthread_mutex_t mu;
  uint64_t at_ms;
  bool ok;
  int64_t total, completed;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool read_counts(struct todo_counts *c, int64_t *total, int64_t *completed) {
  pthread_mutex_lock(&c->mu);
  uint64_t now = mono_ms();
  if (c->at_ms == 0 || now - c->at_ms >= 1000) {
    c->ok = todo_store_counts(c->store, &c->total, &c->completed) == 0;
    c->at_ms = now;
  }
  bool ok = c->ok;
  *total = c->total;
  *completed = c->completed;
  pthread_mutex_unlock(&c->mu);
  return ok;
}

static void observe_count(struct todo_observer *obs, void *arg) {
  int64_t total, completed;
  if (read_counts(arg, &total, &completed)) {
    todo_observe(obs, (double)total, NULL, 0);
  }
}

static void observe_ratio(struct todo_observer *obs, void *arg) {
  int64_t total, completed;
  if (read_counts(arg, &total, &completed)) {
    todo_observe(obs, total > 0 ? (double)completed / (double)total : 0.0, NULL, 0);
  }
}

/* ---------- the SDK's own counters ---------- */

static void observe_dropped(struct todo_observer *obs, void *arg) {
  struct todo_tel_stats st;
  todo_tel_get_stats(arg, &st);
  struct todo_attr a[2] = {TODO_ATTR_STR("signal", "spans"), TODO_ATTR_STR("reason", "queue_full")};
  todo_observe(obs, (double)st.spans_dropped, a, 2);
  a[0].v.s = "logs";
  todo_observe(obs, (double)st.logs_dropped, a, 2);
}

static void observe_exported(struct todo_observer *obs, void *arg) {
  struct todo_tel_stats st;
  todo_tel_get_stats(arg, &st);
  struct todo_attr a = TODO_ATTR_STR("signal", "spans");
  todo_observe(obs, (double)st.spans_exported, &a, 1);
  a.v.s = "logs";
  todo_observe(obs, (double)st.logs_exported, &a, 1);
  a.v.s = "metrics";
  todo_observe(obs, (double)st.metric_exports, &a, 1);
}

static void observe_failed(struct todo_observer *obs, void *arg) {
  struct todo_tel_stats st;
  todo_tel_get_stats(arg, &st);
  struct todo_attr a = TODO_ATTR_STR("signal", "spans");
  todo_observe(obs, (double)st.spans_failed, &a, 1);
  a.v.s = "logs";
  todo_observe(obs, (double)st.logs_failed, &a, 1);
  a.v.s = "metrics";
  todo_observe(obs, (double)st.metrics_failed, &a, 1);
}

/* ---------- commands ---------- */

static int run_migrations(const struct todo_config *cfg) {
  int applied = 0;
  char *dir = todo_find_migrations_dir(cfg->migrations_dir);
  if (!dir) {
    todo_logf(TODO_LOG_ERROR, "no migrations directory found (set TODO_MIGRATIONS_DIR)");
    return TODO_ERR_IO;
  }
  int rc = todo_migrate(cfg->database_url, dir, cfg->startup_timeout_s, cfg->connect_timeout_s,
                        &applied);
  if (rc == 0) {
    todo_logf(TODO_LOG_INFO, "database schema up to date (%d migration%s applied from %s)", applied,
              applied == 1 ? "" : "s", dir);
  } else {
    todo_logf(TODO_LOG_ERROR, "migrations failed: %s", todo_strerror(rc));
  }
  free(dir);
  return rc;
}

static int serve(const struct todo_config *cfg, const sigset_t *signals) {
  struct todo_tel_config tcfg;
  struct todo_meter *meter = NULL;
  struct todo_tel *tel = NULL;
  struct todo_store *store = NULL;
  struct todo_server *server = NULL;
  struct todo_counts counts = {0};
  int rc = TODO_ERR_NOMEM;
  pthread_mutex_init(&counts.mu, NULL);

  meter = todo_meter_create();
  if (!meter || todo_tel_config_from_env(&tcfg, "todo-api") != 0) {
    goto cleanup;
  }
  tcfg.service_version = strdup(TODO_API_VERSION);
  tel = todo_tel_create(&tcfg, meter);
  if (!tel) {
    todo_tel_config_free(&tcfg);
    goto cleanup;
  }
  todo_log_init(tel, level_from_env());
  char *masked = todo_mask_conninfo(cfg->database_url);
  todo_logf(TODO_LOG_INFO, "todo-api %s starting: database %s, telemetry %s%s%s", TODO_API_VERSION,
            masked ? masked : "?", todo_tel_enabled(tel) ? "to " : "disabled",
            todo_tel_enabled(tel) && tcfg.traces_endpoint ? tcfg.traces_endpoint : "",
            todo_tel_enabled(tel) ? " (and the metrics and logs endpoints)" : "");
  free(masked);
  todo_tel_config_free(&tcfg);

  if ((rc = run_migrations(cfg)) != 0) {
    goto cleanup;
  }
  struct todo_store_options so = {
      .conninfo = cfg->database_url,
      .pool_size = cfg->pool_size,
      .acquire_timeout_ms = cfg->pool_timeout_ms,
      .connect_timeout_s = cfg->connect_timeout_s,
      .tel = tel,
      .meter = meter,
  };
  rc = TODO_ERR_NOMEM;
  store = todo_store_create(&so);
  if (!store) {
    goto cleanup;
  }
  counts.store = store;
  todo_meter_observable_gauge(meter, "todo.count", "{todo}", "The number of todos.", observe_count,
                              &counts);
  todo_meter_observable_gauge(meter, "todo.completed.ratio", "1",
                              "The fraction of todos that are completed.", observe_ratio, &counts);
  todo_meter_observable_counter(meter, "todo.telemetry.dropped", "{item}",
                                "Spans and log records dropped because the export queue was full.",
                                observe_dropped, tel);
  todo_meter_observable_counter(
      meter, "todo.telemetry.exported", "{item}",
      "Spans and log records (and metric exports) the collector accepted.", observe_exported, tel);
  todo_meter_observable_counter(meter, "todo.telemetry.export.failed", "{item}",
                                "Spans and log records (and metric exports) that failed to export.",
                                observe_failed, tel);

  struct todo_app app = {.store = store, .meter = meter, .max_body_bytes = cfg->max_body_bytes};
  struct todo_server_options opts = {
      .host = cfg->host,
      .port = cfg->port,
      .max_connections = cfg->max_connections,
      .cors_allowed_origins = cfg->cors_allowed_origins,
      .app = &app,
      .tel = tel,
      .meter = meter,
  };
  server = todo_server_start(&opts);
  if (!server) {
    rc = TODO_ERR_IO;
    goto cleanup;
  }
  todo_logf(TODO_LOG_INFO, "listening on http://%s:%d", cfg->host, todo_server_port(server));

  int sig = 0;
  sigwait(signals, &sig);
  todo_logf(TODO_LOG_INFO, "received signal %d, shutting down", sig);
  rc = 0;
cleanup:
  /* Stop taking requests first, then flush telemetry while the pool (which the gauges read) is
   * still there. */
  todo_server_stop(server);
  todo_tel_shutdown(tel);
  todo_log_init(NULL, level_from_env());
  todo_store_destroy(store);
  todo_tel_destroy(tel);
  todo_meter_destroy(meter);
  pthread_mutex_destroy(&counts.mu);
  return rc;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "serve";
  struct todo_config cfg;
  sigset_t signals;
  int rc;
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("todo-api %s\n", TODO_API_VERSION);
    return 0;
  }
  if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0) {
    usage(stderr);
    return 2;
  }
  /* Signals are taken by sigwait in the main thread only: block them before any thread starts,
   * so that every thread inherits the mask. A peer closing a socket must not kill us either. */
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  todo_log_init(NULL, level_from_env());
  rc = todo_config_from_env(&cfg);
  if (rc != 0) {
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    todo_config_free(&cfg);
    return 1;
  }
  if (strcmp(cmd, "migrate") == 0) {
    char *masked = todo_mask_conninfo(cfg.database_url);
    todo_logf(TODO_LOG_INFO, "migrating %s", masked ? masked : "?");
    free(masked);
    rc = run_migrations(&cfg);
  } else {
    rc = serve(&cfg, &signals);
  }
  todo_config_free(&cfg);
  curl_global_cleanup();
  return rc == 0 ? 0 : 1;
}
