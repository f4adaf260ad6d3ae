/* The API's routes and handlers, independent of the HTTP library: the server turns a request
 * into a struct todo_request, the router fills a struct todo_response. */
#ifndef TODO_ROUTES_H
#define TODO_ROUTES_H

#include "otel.h"
#include "store.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>

enum todo_method {
  TODO_GET,
  TODO_HEAD,
  TODO_POST,
  TODO_PUT,
  TODO_PATCH,
  TODO_DELETE,
  TODO_OPTIONS,
  TODO_TRACE,
  TODO_CONNECT,
  TODO_METHOD_OTHER,
};

/* The method for a request line's method token (case-sensitive, as HTTP methods are). */
enum todo_method todo_method_parse(const char *name);
/* The method's name for telemetry: the token, or "_OTHER" for an unknown one (semantic
 * conventions: unbounded method names must not reach attributes). */
const char *todo_method_label(enum todo_method m);

enum todo_route_id {
  TODO_ROUTE_NONE,
  TODO_ROUTE_TODOS,
  TODO_ROUTE_TODO,
  TODO_ROUTE_HEALTH,
  TODO_ROUTE_METRICS,
  TODO_ROUTE_OPENAPI,
};

struct todo_route_match {
  enum todo_route_id id;
  const char *template; /* e.g. "/api/v1/todos/{id}"; NULL when no route matched */
  bool id_valid;        /* for TODO_ROUTE_TODO: the {id} segment is a UUID */
  char todo_id[TODO_UUID_LEN + 1];
};

/* Matches a request path (without the query string). */
void todo_route_match(const char *path, struct todo_route_match *out);

/* Whether the body of a request to this route and method is read (POST, PUT, PATCH). */
bool todo_route_wants_body(const struct todo_route_match *route, enum todo_method m);
/* Whether the route takes method m (HEAD goes with GET). */
bool todo_route_allows(const struct todo_route_match *route, enum todo_method m);
/* The route's methods as an Allow header value ("GET, HEAD, POST"); "" for no route. */
const char *todo_route_allow_header(const struct todo_route_match *route);

struct todo_app {
  struct todo_store *store; /* borrowed */
  struct todo_meter *meter; /* borrowed, for /metrics */
  size_t max_body_bytes;
};

struct todo_request {
  enum todo_method method;
  const char *method_name;
  const char *path;
  const struct todo_route_match *route;
  const char *content_type; /* NULL when absent */
  const char *body;         /* NULL when none */
  size_t body_len;
  bool body_too_large;
  const struct todo_span_context *ctx; /* the server span's, may be NULL */
  /* Looks up a query parameter (decoded), NULL when absent. */
  const char *(*query)(void *arg, const char *key);
  void *query_arg;
};

struct todo_response {
  int status;
  char *body; /* malloc'd, owned by the response; NULL for no body */
  size_t body_len;
  const char *content_type; /* static */
  const char *allow;        /* static, for 405 */
  char location[64];        /* for 201 */
  bool retry_after;         /* 503: add Retry-After */
};

/* Handles one request. Always fills resp (a 500 when even the error body cannot be built); the
 * caller frees resp->body. */
void todo_route_handle(struct todo_app *app, const struct todo_request *req,
                       struct todo_response *resp);

/* Fills resp with a JSON error {"error": code, "message": message}. */
void todo_response_error(struct todo_response *resp, int status, const char *code,
                         const char *message);

/* The OpenAPI 3 document of the API (a static string). */
extern const char todo_openapi_json[];

#endif
