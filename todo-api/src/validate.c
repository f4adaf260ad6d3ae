#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool todo_uuid_normalize(const char *s, char out[TODO_UUID_LEN + 1]) {
  char tmp[TODO_UUID_LEN + 1];
  if (!s || strlen(s) != TODO_UUID_LEN) {
    return false;
  }
  for (size_t i = 0; i < TODO_UUID_LEN; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') {
        return false;
      }
    } else if (!isxdigit((unsigned char)c)) {
      return false;
    }
    tmp[i] = (char)tolower((unsigned char)c);
  }
  tmp[TODO_UUID_LEN] = '\0';
  memcpy(out, tmp, sizeof(tmp));
  return true;
}

long todo_utf8_count(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  long count = 0;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c == 0) {
      return -1;
    }
    if (c < 0x80) {
      i++;
      count++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return -1; /* a continuation byte, an overlong lead (C0, C1) or above U+10FFFF (F5..FF) */
    }
    if (len - i <= n) {
      return -1;
    }
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) {
        return -1;
      }
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return -1;
    }
    i += n + 1;
    count++;
  }
  return count;
}

bool todo_is_blank(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f') {
      p++;
    } else if (p[0] == 0xC2 && p[1] == 0xA0) { /* U+00A0 no-break space */
      p += 2;
    } else if (p[0] == 0xE2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xAF)) {
      p += 3;                                                  /* U+2000..U+200A and U+202F */
    } else if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) { /* U+3000 ideographic space */
      p += 3;
    } else {
      return false;
    }
  }
  return true;
}

bool todo_parse_long(const char *s, long min, long max, long *out) {
  if (!s || !*s) {
    return false;
  }
  for (const char *p = s; *p; p++) {
    if (!(isdigit((unsigned char)*p) || (p == s && *p == '-'))) {
      return false;
    }
  }
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

/* Skips optional white space (RFC 9110 OWS). */
static const char *skip_ows(const char *p) {
  while (*p == ' ' || *p == '\t') {
    p++;
  }
  return p;
}

bool todo_is_json_media_type(const char *ct) {
  static const char json[] = "application/json";
  if (!ct) {
    return false;
  }
  ct = skip_ows(ct);
  if (strncasecmp(ct, json, sizeof(json) - 1) != 0) {
    return false;
  }
  const char *p = skip_ows(ct + sizeof(json) - 1);
  while (*p == ';') {
    p = skip_ows(p + 1);
    const char *name = p;
    while (*p && *p != '=' && *p != ';') {
      p++;
    }
    size_t name_len = (size_t)(p - name);
    while (name_len > 0 && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t')) {
      name_len--;
    }
    if (*p != '=') {
      return false;
    }
    p = skip_ows(p + 1);
    const char *value = p;
    bool quoted = *p == '"';
    if (quoted) {
      value = ++p;
      while (*p && *p != '"') {
        p++;
      }
      if (*p != '"') {
        return false;
      }
    } else {
      while (*p && *p != ';' && *p != ' ' && *p != '\t') {
        p++;
      }
    }
    size_t value_len = (size_t)(p - value);
    if (quoted) {
      p++;
    }
    if (name_len == 7 && strncasecmp(name, "charset", 7) == 0 &&
        !((value_len == 5 && strncasecmp(value, "utf-8", 5) == 0) ||
          (value_len == 4 && strncasecmp(value, "utf8", 4) == 0))) {
      return false;
    }
    p = skip_ows(p);
  }
  return *p == '\0';
}
