#include "routes.h"

#include "errors.h"
#include "json_body.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100
#define LIST_MAX_OFFSET 1000000000L

static const char *const method_names[] = {
    [TODO_GET] = "GET",         [TODO_HEAD] = "HEAD",
    [TODO_POST] = "POST",       [TODO_PUT] = "PUT",
    [TODO_PATCH] = "PATCH",     [TODO_DELETE] = "DELETE",
    [TODO_OPTIONS] = "OPTIONS", [TODO_TRACE] = "TRACE",
    [TODO_CONNECT] = "CONNECT", [TODO_METHOD_OTHER] = "_OTHER",
};

enum todo_method todo_method_parse(const char *name) {
  for (int m = TODO_GET; m < TODO_METHOD_OTHER; m++) {
    if (name && strcmp(name, method_names[m]) == 0) {
      return (enum todo_method)m;
    }
  }
  return TODO_METHOD_OTHER;
}

const char *todo_method_label(enum todo_method m) {
  return method_names[m];
}

void todo_route_match(const char *path, struct todo_route_match *out) {
  static const char todos[] = "/api/v1/todos";
  memset(out, 0, sizeof(*out));
  if (strcmp(path, todos) == 0) {
    out->id = TODO_ROUTE_TODOS;
    out->template = "/api/v1/todos";
  } else if (strncmp(path, todos, sizeof(todos) - 1) == 0 && path[sizeof(todos) - 1] == '/' &&
             path[sizeof(todos)] != '\0' && !strchr(path + sizeof(todos), '/')) {
    /* One more segment: the id. A malformed one still names this route (its requests answer
     * 404 as an unknown todo would), which keeps the span name and metrics bounded. */
    out->id = TODO_ROUTE_TODO;
    out->template = "/api/v1/todos/{id}";
    out->id_valid = todo_uuid_normalize(path + sizeof(todos), out->todo_id);
  } else if (strcmp(path, "/health") == 0) {
    out->id = TODO_ROUTE_HEALTH;
    out->template = "/health";
  } else if (strcmp(path, "/metrics") == 0) {
    out->id = TODO_ROUTE_METRICS;
    out->template = "/metrics";
  } else if (strcmp(path, "/openapi.json") == 0) {
    out->id = TODO_ROUTE_OPENAPI;
    out->template = "/openapi.json";
  }
}

/* The methods each route allows; HEAD goes with GET. */
static const char *allowed(enum todo_route_id id) {
  switch (id) {
  case TODO_ROUTE_TODOS:
    return "GET, HEAD, POST";
  case TODO_ROUTE_TODO:
    return "GET, HEAD, PUT, PATCH, DELETE";
  case TODO_ROUTE_HEALTH:
  case TODO_ROUTE_METRICS:
  case TODO_ROUTE_OPENAPI:
    return "GET, HEAD";
  case TODO_ROUTE_NONE:
    break;
  }
  return "";
}

static bool method_allowed(enum todo_route_id id, enum todo_method m) {
  if (m == TODO_GET || m == TODO_HEAD) {
    return id != TODO_ROUTE_NONE;
  }
  switch (id) {
  case TODO_ROUTE_TODOS:
    return m == TODO_POST;
  case TODO_ROUTE_TODO:
    return m == TODO_PUT || m == TODO_PATCH || m == TODO_DELETE;
  default:
    return false;
  }
}

bool todo_route_allows(const struct todo_route_match *route, enum todo_method m) {
  return method_allowed(route->id, m);
}

const char *todo_route_allow_header(const struct todo_route_match *route) {
  return allowed(route->id);
}

bool todo_route_wants_body(const struct todo_route_match *route, enum todo_method m) {
  return method_allowed(route->id, m) && (m == TODO_POST || m == TODO_PUT || m == TODO_PATCH);
}

/* ---------- responses ---------- */

/* Serializes doc (consumed) into resp as JSON with the given status. */
static void respond_json(struct todo_response *resp, int status, json_t *doc) {
  char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(doc);
  free(resp->body);
  resp->body = NULL;
  resp->content_type = "application/json";
  if (!text) {
    static const char fallback[] = "{\"error\":\"internal_error\",\"message\":\"out of memory\"}";
    resp->status = 500;
    resp->body = strdup(fallback);
    resp->body_len = resp->body ? sizeof(fallback) - 1 : 0;
    return;
  }
  resp->status = status;
  resp->body = text;
  resp->body_len = strlen(text);
}

void todo_response_error(struct todo_response *resp, int status, const char *code,
                         const char *message) {
  json_t *doc = json_pack("{s:s, s:s}", "error", code, "message", message);
  respond_json(resp, status, doc);
  resp->retry_after = status == 503;
}

/* Maps a store error to its response. */
static void store_error(struct todo_response *resp, int rc) {
  switch (rc) {
  case TODO_ERR_NOT_FOUND:
    todo_response_error(resp, 404, "not_found", "todo not found");
    return;
  case TODO_ERR_UNAVAILABLE:
    todo_response_error(resp, 503, "database_unavailable",
                        "the database is unavailable, please retry later");
    return;
  case TODO_ERR_INVALID:
    todo_response_error(resp, 422, "validation_error", "the database refused a field's value");
    return;
  default:
    todo_response_error(resp, 500, "internal_error", "internal error");
    return;
  }
}

static void respond_item(struct todo_response *resp, int status, const struct todo_item *item) {
  json_t *doc = todo_item_to_json(item);
  respond_json(resp, status, doc);
}

/* ---------- handlers ---------- */

/* Reads limit, offset and completed from the query string. Returns false with resp filled (422)
 * when one is invalid. */
static bool list_params(const struct todo_request *req, struct todo_list_query *q,
                        struct todo_response *resp) {
  const char *limit = req->query ? req->query(req->query_arg, "limit") : NULL;
  const char *offset = req->query ? req->query(req->query_arg, "offset") : NULL;
  const char *completed = req->query ? req->query(req->query_arg, "completed") : NULL;
  q->limit = LIST_DEFAULT_LIMIT;
  q->offset = 0;
  q->completed = -1;
  if (limit && !todo_parse_long(limit, 1, LIST_MAX_LIMIT, &q->limit)) {
    todo_response_error(resp, 422, "validation_error", "limit must be an integer from 1 to 100");
    return false;
  }
  if (offset && !todo_parse_long(offset, 0, LIST_MAX_OFFSET, &q->offset)) {
    todo_response_error(resp, 422, "validation_error", "offset must be a non-negative integer");
    return false;
  }
  if (completed) {
    if (strcmp(completed, "true") == 0) {
      q->completed = 1;
    } else if (strcmp(completed, "false") == 0) {
      q->completed = 0;
    } else {
      todo_response_error(resp, 422, "validation_error", "completed must be true or false");
      return false;
    }
  }
  return true;
}

static void handle_list(struct todo_app *app, const struct todo_request *req,
                        struct todo_response *resp) {
  struct todo_list_query q;
  struct todo_item *items = NULL;
  size_t n = 0;
  if (!list_params(req, &q, resp)) {
    return;
  }
  int rc = todo_store_list(app->store, req->ctx, &q, &items, &n);
  if (rc != 0) {
    store_error(resp, rc);
    return;
  }
  json_t *array = json_array();
  for (size_t i = 0; array && i < n; i++) {
    if (json_array_append_new(array, todo_item_to_json(&items[i])) != 0) {
      json_decref(array);
      array = NULL;
    }
  }
  todo_items_free(items, n);
  json_t *doc = array ? json_pack("{s:o, s:I, s:I}", "items", array, "limit", (json_int_t)q.limit,
                                  "offset", (json_int_t)q.offset)
                      : NULL;
  respond_json(resp, 200, doc);
}

/* Checks what a body-carrying request must satisfy before it is parsed: size and media type.
 * Returns false with resp filled otherwise. */
static bool body_acceptable(const struct todo_request *req, struct todo_response *resp) {
  if (req->body_too_large) {
    todo_response_error(resp, 413, "payload_too_large", "the request body is too large");
    return false;
  }
  if (!todo_is_json_media_type(req->content_type)) {
    todo_response_error(resp, 415, "unsupported_media_type",
                        "the request body must be application/json");
    return false;
  }
  return true;
}

static void handle_write(struct todo_app *app, const struct todo_request *req,
                         struct todo_response *resp) {
  enum todo_body_mode mode = req->method == TODO_POST  ? TODO_BODY_CREATE
                             : req->method == TODO_PUT ? TODO_BODY_REPLACE
                                                       : TODO_BODY_PATCH;
  struct todo_fields f;
  struct todo_body_error err;
  struct todo_item item;
  json_t *root = NULL;
  memset(&item, 0, sizeof(item));
  if (!body_acceptable(req, resp)) {
    return;
  }
  int rc = todo_body_parse(req->body, req->body_len, mode, &root, &f, &err);
  if (rc == TODO_ERR_INVALID) {
    json_t *doc = json_pack("{s:s, s:s}", "error", err.error, "message", err.message);
    if (doc && err.field) {
      json_object_set_new(doc, "field", json_string(err.field));
    }
    respond_json(resp, err.status, doc);
    return;
  }
  if (rc != 0) {
    store_error(resp, rc);
    return;
  }
  switch (mode) {
  case TODO_BODY_CREATE:
    rc = todo_store_insert(app->store, req->ctx, &f, &item);
    break;
  case TODO_BODY_REPLACE:
    rc = todo_store_replace(app->store, req->ctx, req->route->todo_id, &f, &item);
    break;
  case TODO_BODY_PATCH:
    rc = todo_store_patch(app->store, req->ctx, req->route->todo_id, &f, &item);
    break;
  }
  json_decref(root);
  if (rc != 0) {
    store_error(resp, rc);
    return;
  }
  if (mode == TODO_BODY_CREATE) {
    snprintf(resp->location, sizeof(resp->location), "/api/v1/todos/%s", item.id);
  }
  respond_item(resp, mode == TODO_BODY_CREATE ? 201 : 200, &item);
  todo_item_clear(&item);
}

static void handle_todo(struct todo_app *app, const struct todo_request *req,
                        struct todo_response *resp) {
  struct todo_item item;
  memset(&item, 0, sizeof(item));
  if (!req->route->id_valid) {
    todo_response_error(resp, 404, "not_found", "todo not found");
    return;
  }
  if (req->method == TODO_PUT || req->method == TODO_PATCH) {
    handle_write(app, req, resp);
    return;
  }
  if (req->method == TODO_DELETE) {
    int rc = todo_store_delete(app->store, req->ctx, req->route->todo_id);
    if (rc != 0) {
      store_error(resp, rc);
      return;
    }
    resp->status = 204;
    return;
  }
  int rc = todo_store_get(app->store, req->ctx, req->route->todo_id, &item);
  if (rc != 0) {
    store_error(resp, rc);
    return;
  }
  respond_item(resp, 200, &item);
  todo_item_clear(&item);
}

static void handle_health(struct todo_app *app, const struct todo_request *req,
                          struct todo_response *resp) {
  int rc = todo_store_ping(app->store, req->ctx);
  if (rc == 0) {
    respond_json(resp, 200, json_pack("{s:s, s:s}", "status", "ok", "database", "ok"));
    return;
  }
  respond_json(resp, 503,
               json_pack("{s:s, s:s, s:s, s:s}", "status", "unavailable", "database", "unreachable",
                         "error", "database_unavailable", "message",
                         "the database is unavailable"));
  resp->retry_after = true;
}

static void handle_metrics(struct todo_app *app, struct todo_response *resp) {
  char *text = todo_meter_render_prometheus(app->meter);
  if (!text) {
    todo_response_error(resp, 500, "internal_error", "out of memory");
    return;
  }
  resp->status = 200;
  resp->body = text;
  resp->body_len = strlen(text);
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void handle_openapi(struct todo_response *resp) {
  resp->body = strdup(todo_openapi_json);
  if (!resp->body) {
    todo_response_error(resp, 500, "internal_error", "out of memory");
    return;
  }
  resp->status = 200;
  resp->body_len = strlen(resp->body);
  resp->content_type = "application/json";
}

void todo_route_handle(struct todo_app *app, const struct todo_request *req,
                       struct todo_response *resp) {
  memset(resp, 0, sizeof(*resp));
  const struct todo_route_match *route = req->route;
  if (route->id == TODO_ROUTE_NONE) {
    todo_response_error(resp, 404, "not_found", "no such resource");
    return;
  }
  if (!method_allowed(route->id, req->method)) {
    char msg[128];
    snprintf(msg, sizeof(msg), "method %.16s is not allowed here", todo_method_label(req->method));
    todo_response_error(resp, 405, "method_not_allowed", msg);
    resp->allow = allowed(route->id);
    return;
  }
  switch (route->id) {
  case TODO_ROUTE_TODOS:
    if (req->method == TODO_POST) {
      handle_write(app, req, resp);
    } else {
      handle_list(app, req, resp);
    }
    return;
  case TODO_ROUTE_TODO:
    handle_todo(app, req, resp);
    return;
  case TODO_ROUTE_HEALTH:
    handle_health(app, req, resp);
    return;
  case TODO_ROUTE_METRICS:
    handle_metrics(app, resp);
    return;
  case TODO_ROUTE_OPENAPI:
    handle_openapi(resp);
    return;
  case TODO_ROUTE_NONE:
    break;
  }
}
