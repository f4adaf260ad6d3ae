/* The Todo API's handling of untrusted request parts, as the router applies them: the method token
 * (todo_method_parse), the path and its {id} (todo_route_match, todo_uuid_normalize), the
 * Content-Type (todo_is_json_media_type), a query parameter (todo_parse_long) and the JSON body
 * (todo_body_parse in the mode of POST, PUT or PATCH, then todo_item_to_json of what it accepted).
 *
 * Input: byte 0 picks the body mode (0 create, 1 replace, 2 patch); the rest is four fields split
 * at the first three newlines: method and path separated by a space, the Content-Type, a query
 * value, and the body (which may hold newlines).
 *
 * Invariants: an accepted title is valid UTF-8 of 1 to 200 characters and not blank, an accepted
 * description valid UTF-8; create and replace always carry a title; a refusal is a 400 or 422 with
 * an error code and a message; a matched id is a lowercase canonical UUID; a parsed limit is in its
 * range; a todo made of accepted fields serializes. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "fuzz_common.h"
#include "json_body.h"
#include "routes.h"
#include "validate.h"

/* Splits off the next field, up to a newline, as a NUL-terminated copy (caller frees). */
static char *next_field(const uint8_t **p, size_t *left, bool rest) {
  const uint8_t *nl = rest ? NULL : memchr(*p, '\n', *left);
  size_t n = nl ? (size_t)(nl - *p) : *left;
  char *s = malloc(n + 1);
  FUZZ_CHECK(s != NULL);
  memcpy(s, *p, n);
  s[n] = '\0';
  *p += nl ? n + 1 : n;
  *left -= nl ? n + 1 : n;
  return s;
}

static void check_text(const char *s, bool title) {
  long chars = todo_utf8_count(s, strlen(s));
  FUZZ_CHECK(chars >= 0);
  if (title) {
    FUZZ_CHECK(chars >= 1 && chars <= TODO_TITLE_MAX_CHARS);
    FUZZ_CHECK(!todo_is_blank(s));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  enum todo_body_mode mode = (enum todo_body_mode)(data[0] % 3);
  const uint8_t *p = data + 1;
  size_t left = size - 1;
  char *line = next_field(&p, &left, false);
  char *ctype = next_field(&p, &left, false);
  char *qvalue = next_field(&p, &left, false);
  /* The body keeps its exact bytes and length, NUL bytes included. */
  size_t body_len = left;
  char *body = malloc(body_len ? body_len : 1);
  FUZZ_CHECK(body != NULL);
  memcpy(body, p, body_len);

  char *space = strchr(line, ' ');
  const char *path = space ? space + 1 : "";
  if (space)
    *space = '\0';
  enum todo_method m = todo_method_parse(line);
  FUZZ_CHECK(m >= TODO_GET && m <= TODO_METHOD_OTHER);
  FUZZ_CHECK(todo_method_label(m) != NULL);

  struct todo_route_match route;
  todo_route_match(path, &route);
  if (route.id == TODO_ROUTE_TODO && route.id_valid) {
    FUZZ_CHECK(strlen(route.todo_id) == TODO_UUID_LEN);
    for (size_t i = 0; i < TODO_UUID_LEN; i++) {
      char c = route.todo_id[i];
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      FUZZ_CHECK(dash ? c == '-' : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    }
  }
  (void)todo_route_wants_body(&route, m);
  (void)todo_is_json_media_type(ctype);

  long v = -1;
  if (todo_parse_long(qvalue, 1, 100, &v))
    FUZZ_CHECK(v >= 1 && v <= 100);

  json_t *root = NULL;
  struct todo_fields f;
  struct todo_body_error err;
  int rc = todo_body_parse(body, body_len, mode, &root, &f, &err);
  if (rc == 0) {
    FUZZ_CHECK(root != NULL);
    if (mode != TODO_BODY_PATCH)
      FUZZ_CHECK(f.has_title && f.has_description && f.has_completed);
    if (f.has_title)
      check_text(f.title, true);
    if (f.has_description && f.description)
      check_text(f.description, false);
    struct todo_item item = {
        .id = "00000000-0000-0000-0000-000000000000",
        .title = f.has_title ? (char *)f.title : "t",
        .description = f.has_description ? (char *)f.description : NULL,
        .completed = f.completed,
        .created_at = "2024-01-01T00:00:00Z",
        .updated_at = "2024-01-01T00:00:00Z",
    };
    json_t *out = todo_item_to_json(&item);
    FUZZ_CHECK(out != NULL);
    char *text = json_dumps(out, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(out);
    json_decref(root);
  } else {
    FUZZ_CHECK(rc == TODO_ERR_INVALID || rc == TODO_ERR_NOMEM);
    if (rc == TODO_ERR_INVALID) {
      FUZZ_CHECK(err.status == 400 || err.status == 422);
      FUZZ_CHECK(err.error != NULL && err.message[0] != '\0');
    }
  }
  free(line);
  free(ctype);
  free(qvalue);
  free(body);
  return 0;
}
