/* Input validation, body parsing, routing and configuration of the Todo API: the pure parts,
 * without a database or a socket. */
#include "test.h"

#include "config.h"
#include "errors.h"
#include "json_body.h"
#include "routes.h"
#include "validate.h"

#include <stdlib.h>

TEST(uuid) {
  char out[TODO_UUID_LEN + 1] = "untouched";
  CHECK(todo_uuid_normalize("123e4567-e89b-12d3-a456-426614174000", out));
  CHECK_EQ_STR(out, "123e4567-e89b-12d3-a456-426614174000");
  CHECK(todo_uuid_normalize("123E4567-E89B-12D3-A456-426614174ABC", out));
  CHECK_EQ_STR(out, "123e4567-e89b-12d3-a456-426614174abc");
  strcpy(out, "untouched");
  CHECK(!todo_uuid_normalize("123e4567e89b12d3a456426614174000", out));
  CHECK(!todo_uuid_normalize("123e4567-e89b-12d3-a456-42661417400", out));
  CHECK(!todo_uuid_normalize("123e4567-e89b-12d3-a456-4266141740000", out));
  CHECK(!todo_uuid_normalize("g23e4567-e89b-12d3-a456-426614174000", out));
  CHECK(!todo_uuid_normalize("123e4567-e89b-12d3-a456_426614174000", out));
  CHECK(!todo_uuid_normalize("", out));
  CHECK(!todo_uuid_normalize(NULL, out));
  CHECK_EQ_STR(out, "untouched");
}

TEST(utf8_count) {
  CHECK_EQ_INT(todo_utf8_count("abc", 3), 3);
  CHECK_EQ_INT(todo_utf8_count("", 0), 0);
  CHECK_EQ_INT(todo_utf8_count("\xc3\xa9", 2), 1);         /* é */
  CHECK_EQ_INT(todo_utf8_count("\xe2\x82\xac", 3), 1);     /* € */
  CHECK_EQ_INT(todo_utf8_count("\xf0\x9f\x98\x80", 4), 1); /* 😀 */
  CHECK_EQ_INT(todo_utf8_count("a\xc3\xa9\xf0\x9f\x98\x80z", 8), 4);
  CHECK_EQ_INT(todo_utf8_count("\xf4\x8f\xbf\xbf", 4), 1);  /* U+10FFFF */
  CHECK_EQ_INT(todo_utf8_count("\xc3\x28", 2), -1);         /* bad continuation */
  CHECK_EQ_INT(todo_utf8_count("\xc3", 1), -1);             /* truncated */
  CHECK_EQ_INT(todo_utf8_count("\xe2\x82", 2), -1);         /* truncated */
  CHECK_EQ_INT(todo_utf8_count("\xc0\xaf", 2), -1);         /* overlong '/' */
  CHECK_EQ_INT(todo_utf8_count("\xe0\x80\xaf", 3), -1);     /* overlong */
  CHECK_EQ_INT(todo_utf8_count("\xf0\x80\x80\xaf", 4), -1); /* overlong */
  CHECK_EQ_INT(todo_utf8_count("\xed\xa0\x80", 3), -1);     /* surrogate U+D800 */
  CHECK_EQ_INT(todo_utf8_count("\xf4\x90\x80\x80", 4), -1); /* above U+10FFFF */
  CHECK_EQ_INT(todo_utf8_count("\xff", 1), -1);
  CHECK_EQ_INT(todo_utf8_count("\x80", 1), -1); /* lone continuation */
  CHECK_EQ_INT(todo_utf8_count("a\0b", 3), -1); /* NUL */
}

TEST(blank) {
  CHECK(todo_is_blank(""));
  CHECK(todo_is_blank(" \t\r\n"));
  CHECK(todo_is_blank("\xc2\xa0"));      /* NBSP */
  CHECK(todo_is_blank("\xe2\x80\x83 ")); /* EM SPACE */
  CHECK(todo_is_blank("\xe3\x80\x80"));  /* ideographic space */
  CHECK(!todo_is_blank(" a "));
  CHECK(!todo_is_blank("\xc3\xa9"));
  CHECK(!todo_is_blank("\xe2\x80\x8b")); /* zero width space is not in the list: kept */
  CHECK(!todo_is_blank("\xe2\x80"));     /* truncated sequence, not read past the end */
}

TEST(parse_long) {
  long v = 0;
  CHECK(todo_parse_long("20", 1, 100, &v));
  CHECK_EQ_INT(v, 20);
  CHECK(todo_parse_long("0", 0, 10, &v));
  CHECK(!todo_parse_long("0", 1, 100, &v));
  CHECK(!todo_parse_long("101", 1, 100, &v));
  CHECK(!todo_parse_long("", 1, 100, &v));
  CHECK(!todo_parse_long("1.5", 1, 100, &v));
  CHECK(!todo_parse_long(" 5", 1, 100, &v));
  CHECK(!todo_parse_long("5 ", 1, 100, &v));
  CHECK(!todo_parse_long("+5", 1, 100, &v));
  CHECK(!todo_parse_long("0x10", 0, 100, &v));
  CHECK(!todo_parse_long("99999999999999999999999", 0, 100, &v));
  CHECK(todo_parse_long("-3", -5, 5, &v));
  CHECK_EQ_INT(v, -3);
}

TEST(json_media_type) {
  CHECK(todo_is_json_media_type("application/json"));
  CHECK(todo_is_json_media_type("Application/JSON"));
  CHECK(todo_is_json_media_type("application/json; charset=utf-8"));
  CHECK(todo_is_json_media_type("application/json;charset=\"UTF-8\""));
  CHECK(todo_is_json_media_type("application/json ; foo=bar"));
  CHECK(!todo_is_json_media_type(NULL));
  CHECK(!todo_is_json_media_type(""));
  CHECK(!todo_is_json_media_type("text/plain"));
  CHECK(!todo_is_json_media_type("application/jsonp"));
  CHECK(!todo_is_json_media_type("application/json; charset=latin1"));
  CHECK(!todo_is_json_media_type("application/json; charset"));
  CHECK(!todo_is_json_media_type("application/json, text/plain"));
}

/* Parses body in mode; returns the status (0 on success) and leaves f filled. */
static int parse(const char *body, enum todo_body_mode mode, struct todo_fields *f,
                 struct todo_body_error *err, json_t **root) {
  *root = NULL;
  int rc = todo_body_parse(body, strlen(body), mode, root, f, err);
  return rc == 0 ? 0 : err->status;
}

TEST(body_create) {
  struct todo_fields f;
  struct todo_body_error err;
  json_t *root;
  CHECK_EQ_INT(parse("{\"title\":\"a\",\"description\":\"d\",\"completed\":true}", TODO_BODY_CREATE,
                     &f, &err, &root),
               0);
  CHECK_EQ_STR(f.title, "a");
  CHECK_EQ_STR(f.description, "d");
  CHECK(f.completed && f.has_completed && f.has_description);
  json_decref(root);
  CHECK_EQ_INT(parse("{\"title\":\"a\"}", TODO_BODY_CREATE, &f, &err, &root), 0);
  CHECK(f.has_description && f.description == NULL && f.has_completed && !f.completed);
  json_decref(root);
  CHECK_EQ_INT(parse("{}", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_EQ_STR(err.field, "title");
  CHECK_EQ_INT(parse("{\"title\":\"\"}", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_EQ_INT(parse("{\"title\":\" \\t\"}", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_EQ_INT(parse("{\"title\":1}", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_EQ_INT(parse("{\"title\":\"a\",\"completed\":\"true\"}", TODO_BODY_CREATE, &f, &err, &root),
               422);
  CHECK_EQ_STR(err.field, "completed");
  CHECK_EQ_INT(parse("{\"title\":\"a\",\"description\":1}", TODO_BODY_CREATE, &f, &err, &root),
               422);
  CHECK_EQ_INT(parse("{\"title\":\"a\",\"extra\":1}", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_CONTAINS(err.message, "extra");
  CHECK_EQ_INT(parse("[1]", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_EQ_INT(parse("\"x\"", TODO_BODY_CREATE, &f, &err, &root), 422);
  CHECK_EQ_INT(parse("{", TODO_BODY_CREATE, &f, &err, &root), 400);
  CHECK_EQ_INT(parse("", TODO_BODY_CREATE, &f, &err, &root), 400);
  CHECK_EQ_INT(parse("{\"title\":\"a\",\"title\":\"b\"}", TODO_BODY_CREATE, &f, &err, &root), 400);
  CHECK_EQ_INT(parse("{\"title\":\"a\\u0000\"}", TODO_BODY_CREATE, &f, &err, &root), 400);
  CHECK_EQ_INT(parse("{\"title\":\"\xc3\x28\"}", TODO_BODY_CREATE, &f, &err, &root), 400);
  CHECK_CONTAINS(err.message, "UTF-8");
}

TEST(body_title_length) {
  struct todo_fields f;
  struct todo_body_error err;
  json_t *root;
  char body[2048];
  char title[1024];
  /* 200 two-byte characters fit, 201 do not. */
  for (int n = 199; n <= 201; n++) {
    title[0] = '\0';
    for (int i = 0; i < n; i++) {
      strcat(title, "\xc3\xa9");
    }
    snprintf(body, sizeof(body), "{\"title\":\"%s\"}", title);
    int status = parse(body, TODO_BODY_CREATE, &f, &err, &root);
    CHECK_EQ_INT(status, n <= 200 ? 0 : 422);
    if (status == 0) {
      json_decref(root);
    }
  }
}

TEST(body_patch) {
  struct todo_fields f;
  struct todo_body_error err;
  json_t *root;
  CHECK_EQ_INT(parse("{}", TODO_BODY_PATCH, &f, &err, &root), 0);
  CHECK(!f.has_title && !f.has_description && !f.has_completed);
  json_decref(root);
  CHECK_EQ_INT(parse("{\"description\":null}", TODO_BODY_PATCH, &f, &err, &root), 0);
  CHECK(f.has_description && !f.description && !f.has_title);
  json_decref(root);
  CHECK_EQ_INT(parse("{\"completed\":false,\"id\":\"x\",\"created_at\":1}", TODO_BODY_PATCH, &f,
                     &err, &root),
               0);
  CHECK(f.has_completed && !f.completed);
  json_decref(root);
  CHECK_EQ_INT(parse("{\"title\":null}", TODO_BODY_PATCH, &f, &err, &root), 422);
}

TEST(item_json) {
  struct todo_item item = {.id = "123e4567-e89b-12d3-a456-426614174000",
                           .completed = true,
                           .created_at = "2026-01-01T00:00:00.000000Z",
                           .updated_at = "2026-01-01T00:00:01.000000Z"};
  item.title = "t\"q";
  item.description = NULL;
  json_t *o = todo_item_to_json(&item);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  CHECK_EQ_STR(s, "{\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"title\":\"t\\\"q\","
                  "\"description\":null,\"completed\":true,"
                  "\"created_at\":\"2026-01-01T00:00:00.000000Z\","
                  "\"updated_at\":\"2026-01-01T00:00:01.000000Z\"}");
  free(s);
  json_decref(o);
}

TEST(routes) {
  struct todo_route_match m;
  todo_route_match("/api/v1/todos", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_TODOS);
  CHECK_EQ_STR(m.template, "/api/v1/todos");
  todo_route_match("/api/v1/todos/123E4567-e89b-12d3-a456-426614174000", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_TODO);
  CHECK(m.id_valid);
  CHECK_EQ_STR(m.todo_id, "123e4567-e89b-12d3-a456-426614174000");
  todo_route_match("/api/v1/todos/nope", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_TODO);
  CHECK(!m.id_valid);
  CHECK_EQ_STR(m.template, "/api/v1/todos/{id}");
  todo_route_match("/api/v1/todos/", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_NONE);
  CHECK(m.template == NULL);
  todo_route_match("/api/v1/todos/a/b", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_NONE);
  todo_route_match("/api/v1/todosx", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_NONE);
  todo_route_match("/health", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_HEALTH);
  todo_route_match("/metrics", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_METRICS);
  todo_route_match("/openapi.json", &m);
  CHECK_EQ_INT(m.id, TODO_ROUTE_OPENAPI);
  CHECK_EQ_INT(todo_method_parse("GET"), TODO_GET);
  CHECK_EQ_INT(todo_method_parse("get"), TODO_METHOD_OTHER);
  CHECK_EQ_INT(todo_method_parse("BREW"), TODO_METHOD_OTHER);
  CHECK_EQ_STR(todo_method_label(TODO_METHOD_OTHER), "_OTHER");
  todo_route_match("/api/v1/todos", &m);
  CHECK(todo_route_wants_body(&m, TODO_POST));
  CHECK(!todo_route_wants_body(&m, TODO_GET));
  CHECK(!todo_route_wants_body(&m, TODO_PUT));
}

/* The router answers without touching the store for everything refused before the database. */
TEST(route_refusals) {
  struct todo_app app = {.store = NULL, .meter = NULL, .max_body_bytes = 65536};
  struct todo_route_match m;
  struct todo_response resp;
  struct todo_request req = {.method = TODO_DELETE, .route = &m};
  todo_route_match("/api/v1/todos", &m);
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 405);
  CHECK_EQ_STR(resp.allow, "GET, HEAD, POST");
  CHECK_CONTAINS(resp.body, "\"error\":\"method_not_allowed\"");
  free(resp.body);

  req.method = TODO_POST;
  req.content_type = "text/plain";
  req.body = "{}";
  req.body_len = 2;
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 415);
  free(resp.body);

  req.body_too_large = true;
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 413);
  free(resp.body);

  req.body_too_large = false;
  req.content_type = "application/json";
  req.body = "{\"title\":\"\"}";
  req.body_len = strlen(req.body);
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 422);
  CHECK_CONTAINS(resp.body, "\"field\":\"title\"");
  free(resp.body);

  todo_route_match("/api/v1/todos/bad", &m);
  req.method = TODO_GET;
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 404);
  free(resp.body);

  todo_route_match("/elsewhere", &m);
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 404);
  CHECK_CONTAINS(resp.body, "\"message\"");
  free(resp.body);

  todo_route_match("/openapi.json", &m);
  todo_route_handle(&app, &req, &resp);
  CHECK_EQ_INT(resp.status, 200);
  json_error_t jerr;
  json_t *doc = json_loads(resp.body, 0, &jerr);
  CHECK(doc != NULL);
  CHECK_EQ_STR(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
  json_decref(doc);
  free(resp.body);
}

TEST(mask_conninfo) {
  struct {
    const char *in, *out;
  } cases[] = {
      {"postgresql://user:secret@db:5432/todos", "postgresql://user:****@db:5432/todos"},
      {"postgres://user:p%40ss@db/todos?sslmode=disable",
       "postgres://user:****@db/todos?sslmode=disable"},
      {"postgresql://user@db/todos", "postgresql://user@db/todos"},
      {"postgresql://db/todos?user=u&password=secret&sslmode=require",
       "postgresql://db/todos?user=u&password=****&sslmode=require"},
      {"postgresql://u:a@b@db/todos", "postgresql://u:****@db/todos"},
      {"host=db user=u password=secret dbname=todos", "host=db user=u password=**** dbname=todos"},
      {"host=db password = 'sec ret\\' x' dbname=todos", "host=db password = **** dbname=todos"},
      {"host=db dbname=todos", "host=db dbname=todos"},
      {"mypassword=x host=db", "mypassword=x host=db"},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *m = todo_mask_conninfo(cases[i].in);
    CHECK_EQ_STR(m, cases[i].out);
    free(m);
  }
}

TEST(strerror) {
  CHECK_EQ_STR(todo_strerror(TODO_ERR_UNAVAILABLE), "database unavailable");
  CHECK_EQ_STR(todo_strerror(12345), "unknown error");
}

int main(void) {
  RUN(uuid);
  RUN(utf8_count);
  RUN(blank);
  RUN(parse_long);
  RUN(json_media_type);
  RUN(body_create);
  RUN(body_title_length);
  RUN(body_patch);
  RUN(item_json);
  RUN(routes);
  RUN(route_refusals);
  RUN(mask_conninfo);
  RUN(strerror);
  return TEST_REPORT();
}
