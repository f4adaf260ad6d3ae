/* The todos in PostgreSQL: a small connection pool and one function per statement. Every
 * statement is a parameterized query (PQexecParams) whose text is a constant, and every one made
 * for a request is traced as a CLIENT span under the caller's span.
 *
 * The pool survives a database restart: a connection found broken before or after use is closed
 * and reopened on the next acquire; while the database is down, acquiring fails fast with
 * TODO_ERR_UNAVAILABLE (one connect attempt per backoff period, the others fail at once). */
#ifndef TODO_STORE_H
#define TODO_STORE_H

#include "otel.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TODO_TITLE_MAX_CHARS 200

struct todo_store;

struct todo_store_options {
  const char *conninfo;     /* libpq conninfo or URL; copied */
  size_t pool_size;         /* connections at most */
  int acquire_timeout_ms;   /* wait for a free connection this long, then UNAVAILABLE */
  int connect_timeout_s;    /* libpq connect_timeout */
  struct todo_tel *tel;     /* borrowed, may be NULL: spans */
  struct todo_meter *meter; /* borrowed, may be NULL: pool usage and statement durations */
};

/* Creates the pool without connecting (connections open on first use). Returns NULL when out of
 * memory. Free with todo_store_destroy, after every user is gone. */
struct todo_store *todo_store_create(const struct todo_store_options *opts);
void todo_store_destroy(struct todo_store *s);

/* A row. Strings are owned by the item; free them with todo_item_clear. */
struct todo_item {
  char id[37];
  char *title;
  char *description; /* NULL for SQL NULL */
  bool completed;
  char created_at[40]; /* RFC 3339, UTC, microseconds */
  char updated_at[40];
};
void todo_item_clear(struct todo_item *item);
void todo_items_free(struct todo_item *items, size_t n);

/* Fields of a create or an update; strings are borrowed. For a create or a replace, has_* are all
 * set by the caller (absent description: NULL; absent completed: false). */
struct todo_fields {
  bool has_title, has_description, has_completed;
  const char *title;
  const char *description; /* NULL: set to NULL */
  bool completed;
};

struct todo_list_query {
  long limit, offset;
  int completed; /* -1: any, 0: false, 1: true */
};

/* Each returns 0, TODO_ERR_NOT_FOUND (no such id), TODO_ERR_UNAVAILABLE (no connection),
 * TODO_ERR_DB (the statement failed) or TODO_ERR_NOMEM. parent may be NULL. Output items are owned
 * by the caller. ids must be canonical lowercase UUIDs (see validate.h). */
int todo_store_list(struct todo_store *s, const struct todo_span_context *parent,
                    const struct todo_list_query *q, struct todo_item **items, size_t *n_items);
int todo_store_get(struct todo_store *s, const struct todo_span_context *parent, const char *id,
                   struct todo_item *out);
int todo_store_insert(struct todo_store *s, const struct todo_span_context *parent,
                      const struct todo_fields *f, struct todo_item *out);
/* Replaces every field (PUT). */
int todo_store_replace(struct todo_store *s, const struct todo_span_context *parent, const char *id,
                       const struct todo_fields *f, struct todo_item *out);
/* Changes the fields whose has_* is set, in one statement (PATCH): concurrent partial updates of
 * different fields do not overwrite each other. */
int todo_store_patch(struct todo_store *s, const struct todo_span_context *parent, const char *id,
                     const struct todo_fields *f, struct todo_item *out);
int todo_store_delete(struct todo_store *s, const struct todo_span_context *parent, const char *id);
/* SELECT 1 through the pool. */
int todo_store_ping(struct todo_store *s, const struct todo_span_context *parent);
/* The number of todos and of completed ones, for the gauges; not traced (it runs on the metric
 * reader's schedule, not for a request). */
int todo_store_counts(struct todo_store *s, int64_t *total, int64_t *completed);

/* Connections open and in use, idle, and the pool size. */
void todo_store_pool_usage(struct todo_store *s, size_t *used, size_t *idle, size_t *max);

#endif
