/* Validation of untrusted input: UUIDs in paths, UTF-8 text, query parameters, media types. */
#ifndef TODO_VALIDATE_H
#define TODO_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define TODO_UUID_LEN 36

/* Copies s into out in lowercase when it is a UUID in the canonical 8-4-4-4-12 hex form (either
 * case). Returns true when it is, false (out untouched) otherwise. */
bool todo_uuid_normalize(const char *s, char out[TODO_UUID_LEN + 1]);

/* Counts the code points of s[0..len) when it is valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF, no NUL). Returns the count, or -1 when s is not valid. */
long todo_utf8_count(const char *s, size_t len);

/* True when s consists only of Unicode white space that users cannot see (ASCII space, tab, line
 * breaks, NBSP and the U+2000 block's spaces): a title like that is as good as empty. */
bool todo_is_blank(const char *s);

/* Parses a decimal integer in [min, max] with nothing else around it. Returns true on success. */
bool todo_parse_long(const char *s, long min, long max, long *out);

/* True for "application/json" (any case), optionally with parameters, where a charset, when
 * present, is utf-8. */
bool todo_is_json_media_type(const char *content_type);

#endif
