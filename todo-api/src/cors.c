#include "cors.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Calls match(item, len) for each comma-separated item of list with white space trimmed; returns
 * true as soon as one matches. */
static bool any_item(const char *list, bool (*match)(const char *item, size_t len, const void *arg),
                     const void *arg) {
  const char *p = list;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *s = p;
    while (n > 0 && (*s == ' ' || *s == '\t')) {
      s++;
      n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
      n--;
    }
    if (n > 0 && match(s, n, arg)) {
      return true;
    }
    p = end ? end + 1 : NULL;
  }
  return false;
}

static bool origin_matches(const char *item, size_t len, const void *arg) {
  const char *origin = arg;
  if (len == 1 && item[0] == '*') {
    return true;
  }
  return strlen(origin) == len && strncasecmp(item, origin, len) == 0;
}

bool todo_cors_origin_allowed(const char *allowed, const char *origin) {
  /* "null" is the origin of sandboxed and file: documents: never trusted by name. */
  if (!allowed || !origin || !*origin || strcmp(origin, "null") == 0) {
    return false;
  }
  return any_item(allowed, origin_matches, origin);
}

static bool header_known(const char *item, size_t len, const void *arg) {
  (void)arg;
  static const char *const known[] = {"content-type", "traceparent", "tracestate"};
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
    if (strlen(known[i]) == len && strncasecmp(known[i], item, len) == 0) {
      return true;
    }
  }
  return false;
}

static bool header_unknown(const char *item, size_t len, const void *arg) {
  return !header_known(item, len, arg);
}

bool todo_cors_headers_allowed(const char *requested) {
  return !any_item(requested, header_unknown, NULL);
}
