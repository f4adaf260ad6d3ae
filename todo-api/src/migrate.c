#include "migrate.h"

#include "errors.h"
#include "log.h"

#include <ctype.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MIGRATIONS 1000
#define MAX_FILE_BYTES (1 << 20)
/* pg_advisory_lock key: "todo" in ASCII, so that it is recognizable in pg_locks. */
#define LOCK_KEY "1953459311"

struct migration {
  char version[32];
  char *path;
};

static int cmp_migration(const void *a, const void *b) {
  const struct migration *x = a, *y = b;
  /* Versions are digit strings: compare by length first, so that 10 follows 9. */
  size_t lx = strlen(x->version), ly = strlen(y->version);
  return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->version, y->version);
}

static void free_migrations(struct migration *m, size_t n) {
  if (!m) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    free(m[i].path);
  }
  free(m);
}

/* Lists dir's migration files sorted by version. Returns 0 or an error; *out is owned by the
 * caller (free_migrations). */
static int list_migrations(const char *dir, struct migration **out, size_t *n_out) {
  struct migration *list = NULL;
  size_t n = 0;
  int rc = TODO_ERR_IO;
  DIR *d = opendir(dir);
  if (!d) {
    todo_logf(TODO_LOG_ERROR, "cannot open the migrations directory %s", dir);
    return TODO_ERR_IO;
  }
  list = calloc(MAX_MIGRATIONS, sizeof(*list));
  if (!list) {
    rc = TODO_ERR_NOMEM;
    goto cleanup;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    size_t len = strlen(name), digits = 0;
    if (len < 5 || strcmp(name + len - 4, ".sql") != 0) {
      continue;
    }
    while (isdigit((unsigned char)name[digits])) {
      digits++;
    }
    if (digits == 0 || digits >= sizeof(list[0].version) || name[digits] != '_') {
      todo_logf(TODO_LOG_ERROR, "migration file %s is not named <version>_<name>.sql", name);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
    if (n == MAX_MIGRATIONS) {
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
    memcpy(list[n].version, name, digits);
    list[n].version[digits] = '\0';
    size_t plen = strlen(dir) + len + 2;
    list[n].path = malloc(plen);
    if (!list[n].path) {
      rc = TODO_ERR_NOMEM;
      goto cleanup;
    }
    snprintf(list[n].path, plen, "%s/%s", dir, name);
    n++;
  }
  qsort(list, n, sizeof(*list), cmp_migration);
  for (size_t i = 1; i < n; i++) {
    if (cmp_migration(&list[i - 1], &list[i]) == 0) {
      todo_logf(TODO_LOG_ERROR, "two migrations have the version %s", list[i].version);
      rc = TODO_ERR_INVALID;
      goto cleanup;
    }
  }
  *out = list;
  *n_out = n;
  list = NULL;
  n = 0;
  rc = 0;
cleanup:
  free_migrations(list, n);
  closedir(d);
  return rc;
}

/* Reads a whole file of at most MAX_FILE_BYTES into a NUL-terminated malloc'd string. */
static int read_file(const char *path, char **out) {
  int rc = TODO_ERR_IO;
  char *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    return TODO_ERR_IO;
  }
  buf = malloc(MAX_FILE_BYTES + 1);
  if (!buf) {
    rc = TODO_ERR_NOMEM;
    goto cleanup;
  }
  size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
  if (ferror(f)) {
    goto cleanup;
  }
  if (n > MAX_FILE_BYTES) {
    rc = TODO_ERR_INVALID;
    goto cleanup;
  }
  buf[n] = '\0';
  *out = buf;
  buf = NULL;
  rc = 0;
cleanup:
  free(buf);
  fclose(f);
  return rc;
}

/* Runs a statement without parameters that must succeed; logs the error otherwise. */
static int exec_ok(PGconn *c, const char *sql, const char *what) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : TODO_ERR_DB;
  if (rc != 0) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = '\0';
    todo_logf(TODO_LOG_ERROR, "migration step failed (%s): %s", what, msg);
  }
  PQclear(r);
  return rc;
}

/* Connects, retrying every half second until timeout_s has passed. */
static PGconn *connect_with_retry(const char *conninfo, int timeout_s, int connect_timeout_s) {
  char ct[16];
  snprintf(ct, sizeof(ct), "%d", connect_timeout_s > 0 ? connect_timeout_s : 2);
  const char *keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding", NULL};
  const char *values[] = {ct, "todo-api-migrate", conninfo, "UTF8", NULL};
  time_t deadline = time(NULL) + timeout_s;
  bool logged = false;
  for (;;) {
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (c && PQstatus(c) == CONNECTION_OK) {
      return c;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    PQfinish(c);
    if (time(NULL) >= deadline) {
      todo_logf(TODO_LOG_ERROR, "database unreachable: %s", msg);
      return NULL;
    }
    if (!logged) {
      todo_logf(TODO_LOG_WARN, "waiting for the database: %s", msg);
      logged = true;
    }
    usleep(500 * 1000);
  }
}

/* Applies one migration in a transaction and records it. */
static int apply(PGconn *c, const struct migration *m) {
  char *sql = NULL;
  int rc = read_file(m->path, &sql);
  if (rc != 0) {
    todo_logf(TODO_LOG_ERROR, "cannot read migration %s: %s", m->path, todo_strerror(rc));
    return rc;
  }
  if ((rc = exec_ok(c, "BEGIN", "begin")) != 0) {
    goto cleanup;
  }
  /* The file is ours, not user input, and may hold several statements: the simple query
   * protocol runs them all in the open transaction. */
  if ((rc = exec_ok(c, sql, m->path)) != 0) {
    goto rollback;
  }
  const char *params[] = {m->version};
  PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL,
                             params, NULL, NULL, 0);
  rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : TODO_ERR_DB;
  PQclear(r);
  if (rc != 0) {
    goto rollback;
  }
  rc = exec_ok(c, "COMMIT", "commit");
  if (rc == 0) {
    todo_logf(TODO_LOG_INFO, "migration %s applied", m->version);
  }
  goto cleanup;
rollback:
  exec_ok(c, "ROLLBACK", "rollback");
cleanup:
  free(sql);
  return rc;
}

int todo_migrate(const char *conninfo, const char *dir, int wait_timeout_s, int connect_timeout_s,
                 int *applied) {
  struct migration *list = NULL;
  size_t n = 0;
  PGresult *done = NULL;
  bool locked = false;
  int count = 0;
  int rc = list_migrations(dir, &list, &n);
  if (rc != 0) {
    return rc;
  }
  PGconn *c = connect_with_retry(conninfo, wait_timeout_s, connect_timeout_s);
  if (!c) {
    rc = TODO_ERR_UNAVAILABLE;
    goto cleanup;
  }
  /* Quiet the NOTICE that IF NOT EXISTS prints when the table is there. */
  if ((rc = exec_ok(c, "SET client_min_messages = warning", "settings")) != 0 ||
      (rc = exec_ok(c, "SELECT pg_advisory_lock(" LOCK_KEY ")", "lock")) != 0) {
    goto cleanup;
  }
  locked = true;
  if ((rc = exec_ok(c,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version TEXT PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                    "schema_migrations")) != 0) {
    goto cleanup;
  }
  done = PQexec(c, "SELECT version FROM schema_migrations");
  if (PQresultStatus(done) != PGRES_TUPLES_OK) {
    rc = TODO_ERR_DB;
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) {
    bool seen = false;
    for (int r = 0; r < PQntuples(done) && !seen; r++) {
      seen = strcmp(PQgetvalue(done, r, 0), list[i].version) == 0;
    }
    if (seen) {
      continue;
    }
    if ((rc = apply(c, &list[i])) != 0) {
      goto cleanup;
    }
    count++;
  }
  if (applied) {
    *applied = count;
  }
  rc = 0;
cleanup:
  PQclear(done);
  if (locked) {
    exec_ok(c, "SELECT pg_advisory_unlock(" LOCK_KEY ")", "unlock");
  }
  PQfinish(c);
  free_migrations(list, n);
  return rc;
}
