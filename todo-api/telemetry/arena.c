/* A bump allocator in chunks: a span, a log record or an export request is built from many small
 * pieces that all die together, so they are freed in one call. */
#include "otel_internal.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN 2048

struct todo_tel__chunk {
  struct todo_tel__chunk *next;
  size_t used, size;
  max_align_t data[];
};

void *todo_tel__arena_alloc(struct todo_tel__arena *a, size_t n) {
  const size_t align = sizeof(max_align_t);
  size_t need = (n + align - 1) / align * align;
  struct todo_tel__chunk *c = a->head;
  if (need == 0) {
    need = align;
  }
  if (!c || c->size - c->used < need) {
    size_t size = need > CHUNK_MIN ? need : CHUNK_MIN;
    c = malloc(sizeof(*c) + size);
    if (!c) {
      return NULL;
    }
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += need;
  memset(p, 0, n);
  return p;
}

/* Returns how many of the first max bytes of s can be kept without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max) {
  if (len <= max) {
    return len;
  }
  size_t n = max;
  /* Step back over continuation bytes (10xxxxxx) to the start of the cut character. */
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
    n--;
  }
  return n;
}

char *todo_tel__arena_strndup(struct todo_tel__arena *a, const char *s, size_t max) {
  if (!s) {
    return NULL;
  }
  size_t len = utf8_cut(s, strlen(s), max);
  char *p = todo_tel__arena_alloc(a, len + 1);
  if (!p) {
    return NULL;
  }
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void todo_tel__arena_free(struct todo_tel__arena *a) {
  struct todo_tel__chunk *c = a->head;
  while (c) {
    struct todo_tel__chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
}

int todo_tel__attr_copy(struct todo_tel__arena *a, struct todo_tel__attr *dst,
                        const struct todo_attr *src) {
  dst->key = todo_tel__arena_strndup(a, src->key ? src->key : "", 256);
  if (!dst->key) {
    return -1;
  }
  dst->type = src->type;
  switch (src->type) {
  case TODO_ATTR_STRING:
    dst->v.s = todo_tel__arena_strndup(a, src->v.s ? src->v.s : "", TODO_TEL_MAX_STRING);
    return dst->v.s ? 0 : -1;
  case TODO_ATTR_INT:
    dst->v.i = src->v.i;
    return 0;
  case TODO_ATTR_DOUBLE:
    dst->v.d = src->v.d;
    return 0;
  case TODO_ATTR_BOOL:
    dst->v.b = src->v.b;
    return 0;
  }
  return -1;
}
