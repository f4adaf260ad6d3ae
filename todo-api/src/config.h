/* The service's configuration, from environment variables (the OTEL_* ones are read by the
 * telemetry SDK, see telemetry/otel.h). */
#ifndef TODO_CONFIG_H
#define TODO_CONFIG_H

#include <stddef.h>

#define TODO_DEFAULT_DATABASE_URL "postgresql://postgres@localhost:5432/todos"

struct todo_config {
  char *database_url;    /* DATABASE_URL: a libpq conninfo string or postgresql:// URL */
  char *host;            /* HOST: the address to listen on, default 0.0.0.0 */
  int port;              /* PORT, default 8000 */
  size_t pool_size;      /* DB_POOL_SIZE, default 10 */
  int pool_timeout_ms;   /* DB_POOL_TIMEOUT_MS: wait for a free connection, default 2000 */
  int connect_timeout_s; /* DB_CONNECT_TIMEOUT: libpq connect_timeout, default 2 */
  int startup_timeout_s; /* DB_STARTUP_TIMEOUT: how long start-up waits for the database, 30 */
  size_t max_body_bytes; /* MAX_BODY_BYTES, default 65536 */
  char *migrations_dir;  /* TODO_MIGRATIONS_DIR, else found next to the binary */
  int max_connections;   /* MAX_CONNECTIONS: concurrent HTTP connections, default 256 */
  char *cors_allowed_origins; /* CORS_ALLOWED_ORIGINS: comma-separated origins or "*"; NULL: none */
};

/* Fills cfg from the environment. Returns 0, TODO_ERR_INVALID (a message on stderr) for a value
 * that cannot be used, or TODO_ERR_NOMEM. The caller frees cfg with todo_config_free. */
int todo_config_from_env(struct todo_config *cfg);
void todo_config_free(struct todo_config *cfg);

/* Returns a copy of a libpq conninfo string or URL with any password replaced by "****", for
 * logs. The caller frees it. NULL when out of memory. */
char *todo_mask_conninfo(const char *conninfo);

/* Finds the migrations directory: TODO_MIGRATIONS_DIR, else "migrations" next to the executable,
 * else ../share/todo-api/migrations relative to it, else the source tree's. Returns a malloc'd path
 * (caller frees) or NULL when none exists. */
char *todo_find_migrations_dir(const char *configured);

#endif
