#include "store.h"

#include "errors.h"
#include "log.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* After a failed connect, further attempts wait this long: during an outage most requests get
 * their 503 at once instead of each paying for a connect attempt. */
#define RECONNECT_BACKOFF_MS 250
/* Connection failures are logged at most this often. */
#define FAILURE_LOG_INTERVAL_MS 5000

#define COLUMNS "id, title, description, completed, created_at, updated_at"

static const char SQL_LIST[] = "SELECT " COLUMNS " FROM todos ORDER BY created_at DESC, id "
                               "LIMIT $1 OFFSET $2";
static const char SQL_LIST_FILTERED[] = "SELECT " COLUMNS " FROM todos WHERE completed = $1 "
                                        "ORDER BY created_at DESC, id LIMIT $2 OFFSET $3";
static const char SQL_GET[] = "SELECT " COLUMNS " FROM todos WHERE id = $1";
static const char SQL_INSERT[] = "INSERT INTO todos (title, description, completed) "
                                 "VALUES ($1, $2, $3) RETURNING " COLUMNS;
static const char SQL_REPLACE[] = "UPDATE todos SET title = $2, description = $3, completed = $4, "
                                  "updated_at = now() WHERE id = $1 RETURNING " COLUMNS;
static const char SQL_PATCH[] =
    "UPDATE todos SET title = COALESCE($2, title), "
    "description = CASE WHEN $3::boolean THEN $4 ELSE description END, "
    "completed = COALESCE($5::boolean, completed), updated_at = now() WHERE id = $1 "
    "RETURNING " COLUMNS;
static const char SQL_DELETE[] = "DELETE FROM todos WHERE id = $1";
static const char SQL_COUNTS[] = "SELECT count(*), count(*) FILTER (WHERE completed) FROM todos";
static const char SQL_PING[] = "SELECT 1";

struct slot {
  PGconn *conn;
  bool busy;
};

struct todo_store {
  char *conninfo;
  char connect_timeout[16];
  size_t size;
  int acquire_timeout_ms;
  struct todo_tel *tel;
  struct todo_instrument *duration;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct slot *slots;
  size_t busy;
  uint64_t retry_after_ms;   /* no connect attempt before this (monotonic), under mu */
  uint64_t last_failure_log; /* under mu */
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double mono_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- pool metrics ---------- */

static void observe_pool(struct todo_observer *obs, void *arg) {
  size_t used, idle, max;
  todo_store_pool_usage(arg, &used, &idle, &max);
  struct todo_attr a[2] = {TODO_ATTR_STR("db.client.connection.pool.name", "todo-api"),
                           TODO_ATTR_STR("db.client.connection.state", "used")};
  todo_observe(obs, (double)used, a, 2);
  a[1].v.s = "idle";
  todo_observe(obs, (double)idle, a, 2);
}

static void observe_pool_max(struct todo_observer *obs, void *arg) {
  size_t used, idle, max;
  todo_store_pool_usage(arg, &used, &idle, &max);
  struct todo_attr a = TODO_ATTR_STR("db.client.connection.pool.name", "todo-api");
  todo_observe(obs, (double)max, &a, 1);
}

struct todo_store *todo_store_create(const struct todo_store_options *opts) {
  static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
  struct todo_store *s = calloc(1, sizeof(*s));
  if (!s) {
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &attr);
  pthread_condattr_destroy(&attr);
  s->size = opts->pool_size ? opts->pool_size : 1;
  s->acquire_timeout_ms = opts->acquire_timeout_ms > 0 ? opts->acquire_timeout_ms : 2000;
  snprintf(s->connect_timeout, sizeof(s->connect_timeout), "%d",
           opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 2);
  s->tel = opts->tel;
  s->conninfo = strdup(opts->conninfo ? opts->conninfo : "");
  s->slots = calloc(s->size, sizeof(*s->slots));
  if (!s->conninfo || !s->slots) {
    todo_store_destroy(s);
    return NULL;
  }
  if (opts->meter) {
    s->duration = todo_meter_histogram(opts->meter, "db.client.operation.duration", "s",
                                       "Duration of database client operations.", bounds,
                                       sizeof(bounds) / sizeof(bounds[0]));
    todo_meter_observable_updown_counter(
        opts->meter, "db.client.connection.count", "{connection}",
        "The number of connections that are currently in the state described by the state "
        "attribute.",
        observe_pool, s);
    todo_meter_observable_updown_counter(opts->meter, "db.client.connection.max", "{connection}",
                                         "The maximum number of open connections allowed.",
                                         observe_pool_max, s);
  }
  return s;
}

void todo_store_destroy(struct todo_store *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; s->slots && i < s->size; i++) {
    if (s->slots[i].conn) {
      PQfinish(s->slots[i].conn);
    }
  }
  free(s->slots);
  free(s->conninfo);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

void todo_store_pool_usage(struct todo_store *s, size_t *used, size_t *idle, size_t *max) {
  pthread_mutex_lock(&s->mu);
  *used = s->busy;
  *idle = 0;
  for (size_t i = 0; i < s->size; i++) {
    if (!s->slots[i].busy && s->slots[i].conn) {
      (*idle)++;
    }
  }
  *max = s->size;
  pthread_mutex_unlock(&s->mu);
}

/* ---------- connections ---------- */

/* Opens a connection. The user's conninfo comes after our defaults so that it can override them
 * (libpq keeps the last value of a repeated keyword), except the client encoding, which must be
 * UTF-8 for the title rules to hold. Returns NULL on failure, with *err set to libpq's message
 * (copied into err_buf). */
static PGconn *connect_db(struct todo_store *s, char *err_buf, size_t err_size) {
  const char *keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding", NULL};
  const char *values[] = {s->connect_timeout, "todo-api", s->conninfo, "UTF8", NULL};
  PGconn *c = PQconnectdbParams(keys, values, 1);
  if (!c) {
    snprintf(err_buf, err_size, "out of memory");
    return NULL;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(err_buf, err_size, "%s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  /* Timestamps are rendered in UTC, ISO style, whatever the server's defaults. */
  PGresult *r = PQexec(c, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'");
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) {
    snprintf(err_buf, err_size, "%s", PQerrorMessage(c));
  }
  PQclear(r);
  if (!ok) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* True when an idle pooled connection is still usable: reading pending input notices a server
 * that terminated it (a restart sends FATAL 57P01 and closes), without a round trip. */
static bool conn_alive(PGconn *c) {
  if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
    return false;
  }
  if (PQconsumeInput(c) == 0) {
    return false;
  }
  return PQstatus(c) == CONNECTION_OK;
}

static void release(struct todo_store *s, struct slot *slot) {
  if (slot->conn &&
      (PQstatus(slot->conn) != CONNECTION_OK || PQtransactionStatus(slot->conn) != PQTRANS_IDLE)) {
    PQfinish(slot->conn);
    slot->conn = NULL;
  }
  pthread_mutex_lock(&s->mu);
  slot->busy = false;
  s->busy--;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* Takes a free slot, waiting up to the acquire timeout, and makes sure it holds a live
 * connection. Returns 0 with *out set, or TODO_ERR_UNAVAILABLE. */
static int acquire(struct todo_store *s, struct slot **out) {
  struct slot *slot = NULL;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += s->acquire_timeout_ms / 1000;
  deadline.tv_nsec += (long)(s->acquire_timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  for (;;) {
    /* Prefer a slot with an open connection. */
    for (size_t i = 0; i < s->size; i++) {
      if (!s->slots[i].busy && (!slot || (!slot->conn && s->slots[i].conn))) {
        slot = &s->slots[i];
      }
    }
    if (slot) {
      break;
    }
    if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != 0) {
      pthread_mutex_unlock(&s->mu);
      todo_logf(TODO_LOG_WARN, "database pool exhausted: no connection free within %d ms",
                s->acquire_timeout_ms);
      return TODO_ERR_UNAVAILABLE;
    }
  }
  slot->busy = true;
  s->busy++;
  pthread_mutex_unlock(&s->mu);

  if (slot->conn && !conn_alive(slot->conn)) {
    PQfinish(slot->conn);
    slot->conn = NULL;
  }
  if (!slot->conn) {
    char err[512];
    pthread_mutex_lock(&s->mu);
    bool wait = mono_ms() < s->retry_after_ms;
    pthread_mutex_unlock(&s->mu);
    if (wait || !(slot->conn = connect_db(s, err, sizeof(err)))) {
      pthread_mutex_lock(&s->mu);
      uint64_t now = mono_ms();
      bool log_it = !wait && now - s->last_failure_log >= FAILURE_LOG_INTERVAL_MS;
      if (!wait) {
        s->retry_after_ms = now + RECONNECT_BACKOFF_MS;
      }
      if (log_it) {
        s->last_failure_log = now;
      }
      pthread_mutex_unlock(&s->mu);
      if (log_it) {
        /* libpq's message names the host and the reason, never the password. */
        err[strcspn(err, "\n")] = '\0';
        todo_logf(TODO_LOG_ERROR, "database connection failed: %s", err);
      }
      release(s, slot);
      return TODO_ERR_UNAVAILABLE;
    }
  }
  *out = slot;
  return 0;
}

/* ---------- statements ---------- */

/* Runs one parameterized statement on c, traced as a CLIENT span under parent (none when parent
 * is NULL) and timed in db.client.operation.duration. On success *out holds the result (the
 * caller PQclears it). Returns 0, TODO_ERR_UNAVAILABLE (the connection broke), TODO_ERR_INVALID
 * (the database refused the data, SQLSTATE class 22 or 23) or TODO_ERR_DB. */
static int run(struct todo_store *s, PGconn *c, const struct todo_span_context *parent,
               const char *operation, const char *sql, int n_params, const char *const *params,
               PGresult **out) {
  char name[64];
  int rc = 0;
  snprintf(name, sizeof(name), "%s todos", operation);
  struct todo_span *span =
      parent ? todo_span_start(s->tel, strcmp(sql, SQL_PING) == 0 ? operation : name,
                               TODO_SPAN_CLIENT, parent)
             : NULL;
  if (span) {
    const char *port = PQport(c);
    todo_span_set_attr(span, TODO_ATTR_STR("db.system.name", "postgresql"));
    todo_span_set_attr(span, TODO_ATTR_STR("db.system", "postgresql"));
    todo_span_set_attr(span, TODO_ATTR_STR("db.operation.name", operation));
    if (strcmp(sql, SQL_PING) != 0) {
      todo_span_set_attr(span, TODO_ATTR_STR("db.collection.name", "todos"));
    }
    todo_span_set_attr(span, TODO_ATTR_STR("db.query.text", sql));
    todo_span_set_attr(span, TODO_ATTR_STR("db.namespace", PQdb(c)));
    todo_span_set_attr(span, TODO_ATTR_STR("server.address", PQhost(c)));
    if (port && *port) {
      todo_span_set_attr(span, TODO_ATTR_INT("server.port", atoi(port)));
    }
  }
  double t0 = mono_seconds();
  PGresult *res = PQexecParams(c, sql, n_params, NULL, params, NULL, NULL, 0);
  double elapsed = mono_seconds() - t0;
  ExecStatusType st = PQresultStatus(res);
  const char *error_type = NULL;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (PQstatus(c) != CONNECTION_OK) {
      rc = TODO_ERR_UNAVAILABLE;
      error_type = "connection_error";
    } else if (sqlstate && (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)) {
      rc = TODO_ERR_INVALID;
      error_type = sqlstate;
    } else {
      rc = TODO_ERR_DB;
      error_type = sqlstate ? sqlstate : "db_error";
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", primary ? primary : PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = '\0';
    if (span) {
      if (sqlstate) {
        todo_span_set_attr(span, TODO_ATTR_STR("db.response.status_code", sqlstate));
      }
      todo_span_set_attr(span, TODO_ATTR_STR("error.type", error_type));
      todo_span_set_status(span, TODO_STATUS_ERROR, msg);
    }
    struct todo_attr fields[] = {TODO_ATTR_STR("db.operation.name", operation),
                                 TODO_ATTR_STR("error.type", error_type)};
    todo_log(TODO_LOG_ERROR, todo_span_get_context(span) ? todo_span_get_context(span) : parent,
             msg, fields, 2);
    PQclear(res);
    res = NULL;
  }
  if (s->duration) {
    struct todo_attr a[4] = {TODO_ATTR_STR("db.system.name", "postgresql"),
                             TODO_ATTR_STR("db.operation.name", operation),
                             TODO_ATTR_STR("db.collection.name", "todos"),
                             TODO_ATTR_STR("error.type", error_type)};
    todo_histogram_record(s->duration, elapsed, a, error_type ? 4 : 3);
  }
  todo_span_end(span);
  *out = res;
  return rc;
}

/* Converts PostgreSQL's ISO output in UTC ("2026-11-23 10:00:00.5+00") to RFC 3339 with six
 * fractional digits ("2026-11-23T10:00:00.500000Z"), so that clients can compare them as strings.
 */
static void format_timestamp(const char *pg, char out[40]) {
  size_t n = strcspn(pg, "+-Z");
  /* The date's own '-' come first: find the zone sign after the time. */
  const char *space = strchr(pg, ' ');
  if (space) {
    n = (size_t)(space - pg) + 1 + strcspn(space + 1, "+-Z");
  }
  if (n > 30) {
    n = 30;
  }
  char base[32];
  memcpy(base, pg, n);
  base[n] = '\0';
  if (space) {
    base[space - pg] = 'T';
  }
  char *dot = strchr(base, '.');
  char frac[7] = "000000";
  if (dot) {
    size_t k = strlen(dot + 1);
    memcpy(frac, dot + 1, k < 6 ? k : 6);
    *dot = '\0';
  }
  snprintf(out, 40, "%.19s.%sZ", base, frac);
}

/* Copies row i of res into item. Returns 0 or TODO_ERR_NOMEM. */
static int read_item(const PGresult *res, int i, struct todo_item *item) {
  memset(item, 0, sizeof(*item));
  snprintf(item->id, sizeof(item->id), "%s", PQgetvalue(res, i, 0));
  item->title = strdup(PQgetvalue(res, i, 1));
  if (!PQgetisnull(res, i, 2)) {
    item->description = strdup(PQgetvalue(res, i, 2));
    if (!item->description) {
      todo_item_clear(item);
      return TODO_ERR_NOMEM;
    }
  }
  item->completed = PQgetvalue(res, i, 3)[0] == 't';
  format_timestamp(PQgetvalue(res, i, 4), item->created_at);
  format_timestamp(PQgetvalue(res, i, 5), item->updated_at);
  if (!item->title) {
    todo_item_clear(item);
    return TODO_ERR_NOMEM;
  }
  return 0;
}

void todo_item_clear(struct todo_item *item) {
  if (!item) {
    return;
  }
  free(item->title);
  free(item->description);
  memset(item, 0, sizeof(*item));
}

void todo_items_free(struct todo_item *items, size_t n) {
  if (!items) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    todo_item_clear(&items[i]);
  }
  free(items);
}

/* Runs a statement that returns at most one row into out (when out is not NULL). Returns 0,
 * TODO_ERR_NOT_FOUND when no row came back, or run()'s errors. */
static int one_row(struct todo_store *s, const struct todo_span_context *parent,
                   const char *operation, const char *sql, int n_params, const char *const *params,
                   struct todo_item *out) {
  struct slot *slot = NULL;
  PGresult *res = NULL;
  int rc = acquire(s, &slot);
  if (rc != 0) {
    goto cleanup;
  }
  rc = run(s, slot->conn, parent, operation, sql, n_params, params, &res);
  if (rc != 0) {
    goto cleanup;
  }
  if (PQresultStatus(res) == PGRES_COMMAND_OK) {
    rc = strcmp(PQcmdTuples(res), "0") == 0 ? TODO_ERR_NOT_FOUND : 0;
    goto cleanup;
  }
  if (PQntuples(res) == 0) {
    rc = TODO_ERR_NOT_FOUND;
    goto cleanup;
  }
  if (out) {
    rc = read_item(res, 0, out);
  }
cleanup:
  PQclear(res);
  if (slot) {
    release(s, slot);
  }
  return rc;
}

int todo_store_list(struct todo_store *s, const struct todo_span_context *parent,
                    const struct todo_list_query *q, struct todo_item **items, size_t *n_items) {
  struct slot *slot = NULL;
  PGresult *res = NULL;
  struct todo_item *list = NULL;
  size_t n = 0;
  char limit[24], offset[24];
  snprintf(limit, sizeof(limit), "%ld", q->limit);
  snprintf(offset, sizeof(offset), "%ld", q->offset);
  int rc = acquire(s, &slot);
  if (rc != 0) {
    goto cleanup;
  }
  if (q->completed < 0) {
    const char *params[] = {limit, offset};
    rc = run(s, slot->conn, parent, "SELECT", SQL_LIST, 2, params, &res);
  } else {
    const char *params[] = {q->completed ? "true" : "false", limit, offset};
    rc = run(s, slot->conn, parent, "SELECT", SQL_LIST_FILTERED, 3, params, &res);
  }
  if (rc != 0) {
    goto cleanup;
  }
  int rows = PQntuples(res);
  list = calloc((size_t)rows + 1, sizeof(*list));
  if (!list) {
    rc = TODO_ERR_NOMEM;
    goto cleanup;
  }
  for (int i = 0; i < rows; i++) {
    rc = read_item(res, i, &list[i]);
    if (rc != 0) {
      goto cleanup;
    }
    n++;
  }
  *items = list;
  *n_items = n;
  list = NULL;
  n = 0;
cleanup:
  todo_items_free(list, n);
  PQclear(res);
  if (slot) {
    release(s, slot);
  }
  return rc;
}

int todo_store_get(struct todo_store *s, const struct todo_span_context *parent, const char *id,
                   struct todo_item *out) {
  const char *params[] = {id};
  return one_row(s, parent, "SELECT", SQL_GET, 1, params, out);
}

int todo_store_insert(struct todo_store *s, const struct todo_span_context *parent,
                      const struct todo_fields *f, struct todo_item *out) {
  const char *params[] = {f->title, f->description, f->completed ? "true" : "false"};
  return one_row(s, parent, "INSERT", SQL_INSERT, 3, params, out);
}

int todo_store_replace(struct todo_store *s, const struct todo_span_context *parent, const char *id,
                       const struct todo_fields *f, struct todo_item *out) {
  const char *params[] = {id, f->title, f->description, f->completed ? "true" : "false"};
  return one_row(s, parent, "UPDATE", SQL_REPLACE, 4, params, out);
}

int todo_store_patch(struct todo_store *s, const struct todo_span_context *parent, const char *id,
                     const struct todo_fields *f, struct todo_item *out) {
  const char *params[] = {
      id,
      f->has_title ? f->title : NULL,
      f->has_description ? "true" : "false",
      f->has_description ? f->description : NULL,
      f->has_completed ? (f->completed ? "true" : "false") : NULL,
  };
  return one_row(s, parent, "UPDATE", SQL_PATCH, 5, params, out);
}

int todo_store_delete(struct todo_store *s, const struct todo_span_context *parent,
                      const char *id) {
  const char *params[] = {id};
  return one_row(s, parent, "DELETE", SQL_DELETE, 1, params, NULL);
}

int todo_store_ping(struct todo_store *s, const struct todo_span_context *parent) {
  struct slot *slot = NULL;
  PGresult *res = NULL;
  int rc = acquire(s, &slot);
  if (rc == 0) {
    rc = run(s, slot->conn, parent, "SELECT", SQL_PING, 0, NULL, &res);
  }
  PQclear(res);
  if (slot) {
    release(s, slot);
  }
  return rc;
}

int todo_store_counts(struct todo_store *s, int64_t *total, int64_t *completed) {
  struct slot *slot = NULL;
  PGresult *res = NULL;
  int rc = acquire(s, &slot);
  if (rc != 0) {
    goto cleanup;
  }
  rc = run(s, slot->conn, NULL, "SELECT", SQL_COUNTS, 0, NULL, &res);
  if (rc != 0) {
    goto cleanup;
  }
  *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  *completed = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
cleanup:
  PQclear(res);
  if (slot) {
    release(s, slot);
  }
  return rc;
}
