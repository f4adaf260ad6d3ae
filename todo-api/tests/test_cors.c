/* CORS decisions of the Todo API (cors.c): which origins and preflight headers are allowed. */
#include "test.h"

#include "cors.h"

TEST(origins) {
  const char *list = "https://app.example.com, http://localhost:3000 ,https://b.example";
  CHECK(todo_cors_origin_allowed(list, "https://app.example.com"));
  CHECK(todo_cors_origin_allowed(list, "http://localhost:3000"));
  CHECK(todo_cors_origin_allowed(list, "https://b.example"));
  CHECK(todo_cors_origin_allowed(list, "HTTPS://APP.EXAMPLE.COM"));
  /* Prefixes, suffixes and other ports are other origins. */
  CHECK(!todo_cors_origin_allowed(list, "https://app.example.com.evil.net"));
  CHECK(!todo_cors_origin_allowed(list, "https://app.example.co"));
  CHECK(!todo_cors_origin_allowed(list, "http://localhost:30000"));
  CHECK(!todo_cors_origin_allowed(list, "http://localhost"));
  CHECK(!todo_cors_origin_allowed(list, ""));
  CHECK(!todo_cors_origin_allowed(list, NULL));
  /* Off: nothing is allowed. */
  CHECK(!todo_cors_origin_allowed(NULL, "https://app.example.com"));
  CHECK(!todo_cors_origin_allowed("", "https://app.example.com"));
  CHECK(!todo_cors_origin_allowed(" , ", "https://app.example.com"));
  /* "*" allows any origin but the opaque "null". */
  CHECK(todo_cors_origin_allowed("*", "https://anything.example"));
  CHECK(!todo_cors_origin_allowed("*", "null"));
}

TEST(preflight_headers) {
  CHECK(todo_cors_headers_allowed(NULL));
  CHECK(todo_cors_headers_allowed(""));
  CHECK(todo_cors_headers_allowed("content-type"));
  CHECK(todo_cors_headers_allowed("Content-Type, Traceparent,tracestate"));
  CHECK(!todo_cors_headers_allowed("content-type, x-api-key"));
  CHECK(!todo_cors_headers_allowed("authorization"));
  CHECK(!todo_cors_headers_allowed("content-typex"));
}

int main(void) {
  RUN(origins);
  RUN(preflight_headers);
  return TEST_REPORT();
}
