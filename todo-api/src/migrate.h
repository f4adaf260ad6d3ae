/* Schema migrations: ordered SQL files named <version>_<name>.sql (e.g. 0001_create_todos.sql),
 * each applied once, in its own transaction, and recorded in schema_migrations(version,
 * applied_at). An advisory lock serializes instances that start together. A file must not contain
 * its own BEGIN/COMMIT. */
#ifndef TODO_MIGRATE_H
#define TODO_MIGRATE_H

/* Applies the pending migrations of dir to the database at conninfo, waiting up to
 * wait_timeout_s seconds for the database to accept connections. Returns 0 (with how many were
 * applied in *applied, when not NULL), TODO_ERR_UNAVAILABLE, TODO_ERR_IO (the directory or a file
 * cannot be read), TODO_ERR_INVALID (a file name or size) or TODO_ERR_DB (a migration failed; it
 * was rolled back). */
int todo_migrate(const char *conninfo, const char *dir, int wait_timeout_s, int connect_timeout_s,
                 int *applied);

#endif
