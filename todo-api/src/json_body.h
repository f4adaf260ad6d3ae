/* Request bodies in, todos out: parsing and validating JSON with jansson. */
#ifndef TODO_JSON_BODY_H
#define TODO_JSON_BODY_H

#include "store.h"

#include <jansson.h>

enum todo_body_mode {
  TODO_BODY_CREATE,  /* POST: title required; description and completed optional */
  TODO_BODY_REPLACE, /* PUT: the same rules as a create; absent fields take their defaults */
  TODO_BODY_PATCH,   /* PATCH: every field optional, present ones validated */
};

/* Why a body was refused: the HTTP status (400 or 422), an error code for the JSON error body,
 * and a message fit for users (never the parser's internals beyond position). */
struct todo_body_error {
  int status;
  const char *error;
  const char *field; /* NULL unless one field is at fault */
  char message[200];
};

/* Parses body[0..len) and fills f. On success returns 0 and *root holds the parsed document,
 * which owns the strings f points to: json_decref(*root) after f's last use. On failure returns
 * TODO_ERR_INVALID with err filled, or TODO_ERR_NOMEM. */
int todo_body_parse(const char *body, size_t len, enum todo_body_mode mode, json_t **root,
                    struct todo_fields *f, struct todo_body_error *err);

/* A todo as a JSON object (new reference), or NULL when out of memory. */
json_t *todo_item_to_json(const struct todo_item *item);

#endif
