#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/errors.h"
#include "core/log.h"

/* Limits on untrusted input. The node budget counts the copies that aliases make, so a "billion
 * laughs" document stops after MAX_NODES nodes instead of exhausting memory. */
#define MAX_INPUT_BYTES (16u << 20)
#define MAX_DEPTH 256
#define MAX_NODES 100000
#define MAX_SCALAR_BYTES (1u << 20)
#define MAX_EXPANDED_BYTES (1u << 20)
#define MAX_STRING_BYTES (64u << 20) /* all keys and values of one document, copies included */
#define MAX_ANCHORS 1000
#define MAX_ANCHOR_NAME 256
#define MAX_WARNED 64

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

/* Writes "FILE:LINE:COL: KEY: message" (parts absent when unknown) into err. */
static void verr_at(struct otc_cfg_err *err, const char *file, int line, int col, const char *key,
                    const char *fmt, va_list ap) {
  if (!err)
    return;
  size_t cap = sizeof err->msg, n = 0;
  int w = 0;
  if (file && line > 0)
    w = snprintf(err->msg, cap, "%s:%d:%d: ", file, line, col);
  else if (file)
    w = snprintf(err->msg, cap, "%s: ", file);
  n = w > 0 ? ((size_t)w < cap ? (size_t)w : cap - 1) : 0;
  if (key) {
    w = snprintf(err->msg + n, cap - n, "%s: ", key);
    n += w > 0 ? ((size_t)w < cap - n ? (size_t)w : cap - n - 1) : 0;
  }
  if (vsnprintf(err->msg + n, cap - n, fmt, ap) < 0)
    err->msg[n] = '\0';
}

static int err_at(struct otc_cfg_err *err, const char *file, int line, int col, const char *key,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int err_at(struct otc_cfg_err *err, const char *file, int line, int col, const char *key,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr_at(err, file, line, col, key, fmt, ap);
  va_end(ap);
  return OTC_ERR_CONFIG;
}

int otc_cfg_error(struct otc_cfg_err *err, const struct otc_cfg_node *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  /* A block map or sequence under a key starts on a later line; the key is where a reader looks. */
  if (n && n->key && n->key_line > 0 && n->line > n->key_line)
    verr_at(err, n->file, n->key_line, n->key_col, n->key, fmt, ap);
  else if (n)
    verr_at(err, n->file, n->line, n->col, n->key, fmt, ap);
  else
    verr_at(err, NULL, 0, 0, NULL, fmt, ap);
  va_end(ap);
  return OTC_ERR_CONFIG;
}

static const char *type_name(enum otc_cfg_type t) {
  switch (t) {
  case OTC_CFG_NULL:
    return "null";
  case OTC_CFG_SCALAR:
    return "a scalar";
  case OTC_CFG_MAP:
    return "a map";
  case OTC_CFG_SEQ:
    return "a sequence";
  }
  return "an unknown node";
}

/* ---------------------------------------------------------------------------------------------
 * Tree
 * ------------------------------------------------------------------------------------------- */

static void free_node(struct otc_cfg_node *n) {
  if (!n)
    return;
  for (size_t i = 0; i < n->n_children; i++)
    free_node(n->children[i]);
  free(n->children);
  free(n->priv_items);
  free((char *)n->key);
  free((char *)n->value);
  if (n->priv_owns_file)
    free((char *)n->file);
  free(n);
}

void otc_cfg_free(struct otc_cfg_node *root) {
  free_node(root);
}

static int append_child(struct otc_cfg_node *parent, struct otc_cfg_node *child) {
  /* The capacity is implicit: 4, then doubled whenever the count reaches a power of two. */
  size_t n = parent->n_children;
  if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
    size_t cap = n ? n * 2 : 4;
    struct otc_cfg_node **c = realloc(parent->children, cap * sizeof *c);
    if (!c)
      return OTC_ERR_NOMEM;
    parent->children = c;
  }
  parent->children[parent->n_children++] = child;
  return 0;
}

/* Builds priv_items for a sequence whose items are all scalars, so that a string list can point
 * into the tree without allocating (and without a const tree having to change later). */
static int build_items(struct otc_cfg_node *seq) {
  if (seq->type != OTC_CFG_SEQ || seq->n_children == 0)
    return 0;
  for (size_t i = 0; i < seq->n_children; i++)
    if (seq->children[i]->type != OTC_CFG_SCALAR)
      return 0;
  const char **items = malloc(seq->n_children * sizeof *items);
  if (!items)
    return OTC_ERR_NOMEM;
  for (size_t i = 0; i < seq->n_children; i++)
    items[i] = seq->children[i]->value;
  seq->priv_items = items;
  return 0;
}

const struct otc_cfg_node *otc_cfg_get(const struct otc_cfg_node *map, const char *key) {
  if (!map || map->type != OTC_CFG_MAP || !key)
    return NULL;
  for (size_t i = 0; i < map->n_children; i++)
    if (strcmp(map->children[i]->key, key) == 0)
      return map->children[i];
  return NULL;
}

const struct otc_cfg_node *otc_cfg_path(const struct otc_cfg_node *root, const char *dotted) {
  if (!dotted)
    return NULL;
  const struct otc_cfg_node *n = root;
  const char *p = dotted;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (!n || n->type != OTC_CFG_MAP || len == 0)
      return NULL;
    const struct otc_cfg_node *next = NULL;
    for (size_t i = 0; i < n->n_children; i++) {
      const char *k = n->children[i]->key;
      if (strncmp(k, p, len) == 0 && k[len] == '\0') {
        next = n->children[i];
        break;
      }
    }
    n = next;
    if (!dot)
      return n;
    p = dot + 1;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Loader
 * ------------------------------------------------------------------------------------------- */

struct anchor {
  char *name;
  struct otc_cfg_node *node;
  bool owned; /* an anchor on a map key owns a detached scalar node holding the key */
};

/* An open map or sequence. A map keeps its pending key until the value arrives. */
struct frame {
  struct otc_cfg_node *node;
  char *anchor; /* registered when the collection ends: YAML aliases see completed nodes only */
  char *key;
  int key_line, key_col;
};

struct loader {
  yaml_parser_t parser;
  const char *file;
  struct otc_cfg_err *err;
  struct otc_cfg_node *root;
  struct frame stack[MAX_DEPTH];
  int depth;
  size_t n_nodes, n_bytes;
  struct anchor *anchors;
  size_t n_anchors;
  char *warned[MAX_WARNED];
  size_t n_warned;
  int n_documents;
};

static int lerr(struct loader *ld, const yaml_mark_t *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int lerr(struct loader *ld, const yaml_mark_t *m, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr_at(ld->err, ld->file, m ? (int)m->line + 1 : 0, m ? (int)m->column + 1 : 0, key, fmt, ap);
  va_end(ap);
  return OTC_ERR_CONFIG;
}

static int nomem(struct loader *ld) {
  err_at(ld->err, ld->file, 0, 0, NULL, "out of memory");
  return OTC_ERR_NOMEM;
}

/* Charges len bytes of key or value text against the document's budget. */
static int charge_bytes(struct loader *ld, size_t len, const yaml_mark_t *m) {
  if (len > MAX_STRING_BYTES - ld->n_bytes)
    return lerr(ld, m, NULL, "the document holds more than %u bytes of text (aliases included)",
                MAX_STRING_BYTES);
  ld->n_bytes += len;
  return 0;
}

static struct otc_cfg_node *new_node(struct loader *ld, enum otc_cfg_type type, int line, int col,
                                     int *rc) {
  if (ld->n_nodes >= MAX_NODES) {
    *rc = err_at(ld->err, ld->file, line, col, NULL,
                 "the document has more than %d nodes (aliases expanded); refusing it", MAX_NODES);
    return NULL;
  }
  struct otc_cfg_node *n = calloc(1, sizeof *n);
  if (!n) {
    *rc = nomem(ld);
    return NULL;
  }
  ld->n_nodes++;
  n->type = type;
  n->file = ld->file;
  n->line = line;
  n->col = col;
  return n;
}

static char *memdup0(const char *s, size_t len) {
  char *d = malloc(len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

/* Places node (taking ownership, also on failure) as the root or as the next child of the open
 * collection, handing it the pending key when the collection is a map. */
static int attach(struct loader *ld, struct otc_cfg_node *node) {
  if (ld->depth == 0) {
    ld->root = node;
    return 0;
  }
  struct frame *f = &ld->stack[ld->depth - 1];
  if (f->node->type == OTC_CFG_MAP) {
    node->key = f->key;
    node->key_line = f->key_line;
    node->key_col = f->key_col;
    f->key = NULL;
  }
  if (append_child(f->node, node) != 0) {
    free_node(node);
    return nomem(ld);
  }
  return 0;
}

static int register_anchor(struct loader *ld, const char *name, struct otc_cfg_node *node,
                           bool owned, const yaml_mark_t *m) {
  if (ld->n_anchors >= MAX_ANCHORS) {
    if (owned)
      free_node(node);
    return lerr(ld, m, NULL, "more than %d anchors in the document", MAX_ANCHORS);
  }
  size_t n = ld->n_anchors;
  if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
    struct anchor *a = realloc(ld->anchors, (n ? n * 2 : 8) * sizeof *a);
    if (!a) {
      if (owned)
        free_node(node);
      return nomem(ld);
    }
    ld->anchors = a;
  }
  char *copy = strdup(name);
  if (!copy) {
    if (owned)
      free_node(node);
    return nomem(ld);
  }
  ld->anchors[ld->n_anchors++] = (struct anchor){copy, node, owned};
  return 0;
}

static int check_anchor_name(struct loader *ld, const yaml_char_t *anchor, const yaml_mark_t *m) {
  if (anchor && strlen((const char *)anchor) > MAX_ANCHOR_NAME)
    return lerr(ld, m, NULL, "anchor name longer than %d bytes", MAX_ANCHOR_NAME);
  return 0;
}

static const struct otc_cfg_node *find_anchor(struct loader *ld, const char *name) {
  /* The latest definition of a name wins, as YAML specifies for redefined anchors. */
  for (size_t i = ld->n_anchors; i > 0; i--)
    if (strcmp(ld->anchors[i - 1].name, name) == 0)
      return ld->anchors[i - 1].node;
  return NULL;
}

/* Deep copy of an anchored subtree for an alias. level is the nesting depth the copy would have
 * in the document (collections count), bounded like the parsed nesting. The top of the copy gets
 * its key (if any) from where the alias stands, so only the inner nodes copy theirs. */
static struct otc_cfg_node *copy_node(struct loader *ld, const struct otc_cfg_node *src, int level,
                                      bool top, int *rc) {
  if (src->type == OTC_CFG_MAP || src->type == OTC_CFG_SEQ) {
    if (level > MAX_DEPTH) {
      *rc = err_at(ld->err, ld->file, src->line, src->col, NULL,
                   "nesting deeper than %d levels (aliases expanded)", MAX_DEPTH);
      return NULL;
    }
  }
  struct otc_cfg_node *n = new_node(ld, src->type, src->line, src->col, rc);
  if (!n)
    return NULL;
  n->quoted = src->quoted;
  yaml_mark_t m = {.line = (size_t)(src->line > 0 ? src->line - 1 : 0),
                   .column = (size_t)(src->col > 0 ? src->col - 1 : 0)};
  if (src->key && !top) {
    n->key_line = src->key_line;
    n->key_col = src->key_col;
    size_t len = strlen(src->key);
    if ((*rc = charge_bytes(ld, len, &m)) != 0)
      goto fail;
    if (!(n->key = memdup0(src->key, len)))
      goto fail_nomem;
  }
  if (src->value) {
    size_t len = strlen(src->value);
    if ((*rc = charge_bytes(ld, len, &m)) != 0)
      goto fail;
    if (!(n->value = memdup0(src->value, len)))
      goto fail_nomem;
  }
  if (src->n_children) {
    n->children = malloc(src->n_children * sizeof *n->children);
    if (!n->children)
      goto fail_nomem;
    for (size_t i = 0; i < src->n_children; i++) {
      struct otc_cfg_node *c = copy_node(ld, src->children[i], level + 1, false, rc);
      if (!c)
        goto fail;
      n->children[n->n_children++] = c;
    }
  }
  if (build_items(n) != 0)
    goto fail_nomem;
  return n;
fail_nomem:
  *rc = nomem(ld);
fail:
  free_node(n);
  return NULL;
}

/* Sorts a map's keys to find duplicates in O(n log n); a map may have tens of thousands of keys. */
struct key_ref {
  const char *key;
  size_t idx;
};

static int cmp_key_ref(const void *a, const void *b) {
  const struct key_ref *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c)
    return c;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int check_duplicates(struct loader *ld, const struct otc_cfg_node *map) {
  size_t n = map->n_children;
  if (n < 2)
    return 0;
  struct key_ref *refs = malloc(n * sizeof *refs);
  if (!refs)
    return nomem(ld);
  for (size_t i = 0; i < n; i++)
    refs[i] = (struct key_ref){map->children[i]->key, i};
  qsort(refs, n, sizeof *refs, cmp_key_ref);
  /* Report the duplicate that comes first in the document. */
  size_t first = 0, second = SIZE_MAX;
  for (size_t i = 1; i < n; i++) {
    if (strcmp(refs[i - 1].key, refs[i].key) == 0 && refs[i].idx < second &&
        (i < 2 || strcmp(refs[i - 2].key, refs[i].key) != 0)) {
      first = refs[i - 1].idx;
      second = refs[i].idx;
    }
  }
  free(refs);
  if (second == SIZE_MAX)
    return 0;
  const struct otc_cfg_node *a = map->children[first], *b = map->children[second];
  return err_at(ld->err, ld->file, b->key_line, b->key_col, b->key,
                "duplicate key \"%s\" (first at line %d, again at line %d)", b->key, a->key_line,
                b->key_line);
}

static bool valid_env_name(const char *s, size_t len) {
  if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (size_t i = 1; i < len; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
      return false;
  return true;
}

static bool valid_scheme(const char *s, size_t len) {
  if (len == 0 || !isalpha((unsigned char)s[0]))
    return false;
  for (size_t i = 1; i < len; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
      return false;
  return true;
}

struct buf {
  char *p;
  size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t len) {
  if (len > MAX_EXPANDED_BYTES - b->len)
    return OTC_ERR_TOO_LARGE;
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return OTC_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, len);
  b->len += len;
  b->p[b->len] = '\0';
  return 0;
}

/* Warns once per load about each unset variable, as otelcol warns about them, without flooding
 * the log when one variable is used many times; past MAX_WARNED names a hostile file gets no more
 * warnings. */
static void warn_unset(struct loader *ld, const struct otc_cfg_node *n, const char *name) {
  for (size_t i = 0; i < ld->n_warned; i++)
    if (strcmp(ld->warned[i], name) == 0)
      return;
  char *copy = ld->n_warned < MAX_WARNED ? strdup(name) : NULL;
  if (!copy)
    return;
  ld->warned[ld->n_warned++] = copy;
  otc_warn(NULL, "%s:%d:%d: environment variable %s is not set; using \"\"", n->file, n->line,
           n->col, name);
}

/* Resolves the inside of one ${...} and appends its value to out. */
static int resolve_ref(struct loader *ld, const struct otc_cfg_node *n, const char *ref, size_t len,
                       struct buf *out) {
  const char *body = ref;
  size_t body_len = len;
  const char *colon = memchr(ref, ':', len);
  if (colon && valid_scheme(ref, (size_t)(colon - ref)) &&
      !((size_t)(colon - ref) + 1 < len && colon[1] == '-')) {
    size_t slen = (size_t)(colon - ref);
    if (slen != 3 || memcmp(ref, "env", 3) != 0)
      return otc_cfg_error(ld->err, n,
                           "unsupported config provider \"%.*s\" in \"${%.*s}\" (only ${env:NAME} "
                           "is supported)",
                           (int)slen, ref, (int)(len > 80 ? 80 : len), ref);
    body = colon + 1;
    body_len = len - slen - 1;
  }
  /* The default follows the first ":-", as in otelcol's env provider; it is taken literally. */
  size_t name_len = body_len;
  const char *def = NULL;
  size_t def_len = 0;
  for (size_t i = 0; i + 1 < body_len; i++) {
    if (body[i] == ':' && body[i + 1] == '-') {
      name_len = i;
      def = body + i + 2;
      def_len = body_len - i - 2;
      break;
    }
  }
  if (!valid_env_name(body, name_len))
    return otc_cfg_error(ld->err, n, "invalid environment variable name \"%.*s\" in \"${%.*s}\"",
                         (int)(name_len > 80 ? 80 : name_len), body, (int)(len > 80 ? 80 : len),
                         ref);
  char *name = memdup0(body, name_len);
  if (!name)
    return nomem(ld);
  const char *val = getenv(name);
  int rc = 0;
  if (val)
    rc = buf_add(out, val, strlen(val));
  else if (def)
    rc = buf_add(out, def, def_len);
  else
    warn_unset(ld, n, name);
  free(name);
  return rc;
}

/* Expands ${env:NAME}, ${env:NAME:-default}, ${NAME} and $$ in a scalar, as otelcol does. The
 * expanded text is not expanded again, so a variable's value may hold "${" safely. */
static int expand(struct loader *ld, const struct otc_cfg_node *n, const char *in, size_t len,
                  char **out) {
  struct buf b = {0};
  int rc = buf_add(&b, "", 0);
  size_t i = 0;
  while (rc == 0 && i < len) {
    const char *dollar = memchr(in + i, '$', len - i);
    size_t plain = dollar ? (size_t)(dollar - (in + i)) : len - i;
    if (plain) {
      rc = buf_add(&b, in + i, plain);
      i += plain;
      continue;
    }
    if (i + 1 < len && in[i + 1] == '$') {
      rc = buf_add(&b, "$", 1);
      i += 2;
    } else if (i + 1 < len && in[i + 1] == '{') {
      const char *close = memchr(in + i + 2, '}', len - i - 2);
      if (!close) {
        rc = otc_cfg_error(ld->err, n, "unterminated \"${\" in \"%.*s\"",
                           (int)(len > 80 ? 80 : len), in);
        break;
      }
      size_t ref_len = (size_t)(close - (in + i + 2));
      rc = resolve_ref(ld, n, in + i + 2, ref_len, &b);
      i += ref_len + 3;
    } else {
      rc = buf_add(&b, "$", 1);
      i++;
    }
  }
  if (rc == OTC_ERR_TOO_LARGE)
    rc = otc_cfg_error(ld->err, n, "value longer than %u bytes after expanding variables",
                       MAX_EXPANDED_BYTES);
  else if (rc == OTC_ERR_NOMEM)
    rc = nomem(ld);
  if (rc != 0) {
    free(b.p);
    return rc;
  }
  *out = b.p;
  return 0;
}

static bool is_null_scalar(const yaml_event_t *ev) {
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  const char *v = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  return len == 0 || (len == 1 && v[0] == '~') ||
         (len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

static bool expecting_key(struct loader *ld) {
  if (ld->depth == 0)
    return false;
  const struct frame *f = &ld->stack[ld->depth - 1];
  return f->node->type == OTC_CFG_MAP && !f->key;
}

static int set_key(struct loader *ld, const char *text, size_t len, const yaml_mark_t *m) {
  int rc = charge_bytes(ld, len, m);
  if (rc)
    return rc;
  struct frame *f = &ld->stack[ld->depth - 1];
  if (!(f->key = memdup0(text, len)))
    return nomem(ld);
  f->key_line = (int)m->line + 1;
  f->key_col = (int)m->column + 1;
  return 0;
}

static int on_scalar(struct loader *ld, const yaml_event_t *ev) {
  const yaml_mark_t *m = &ev->start_mark;
  const char *text = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  const char *anchor = (const char *)ev->data.scalar.anchor;
  int rc = check_anchor_name(ld, ev->data.scalar.anchor, m);
  if (rc)
    return rc;
  if (len > MAX_SCALAR_BYTES)
    return lerr(ld, m, NULL, "scalar longer than %u bytes", MAX_SCALAR_BYTES);
  /* Keys and values are C strings; an escaped NUL would silently cut them short. */
  if (memchr(text, '\0', len))
    return lerr(ld, m, NULL, "a NUL character in a key or value is not allowed");

  if (expecting_key(ld)) {
    if (len == 0 && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
      return lerr(ld, m, NULL, "empty map key");
    if ((rc = set_key(ld, text, len, m)) != 0)
      return rc;
    if (anchor) {
      struct otc_cfg_node *kn =
          new_node(ld, OTC_CFG_SCALAR, (int)m->line + 1, (int)m->column + 1, &rc);
      if (!kn)
        return rc;
      if (!(kn->value = memdup0(text, len))) {
        free_node(kn);
        return nomem(ld);
      }
      return register_anchor(ld, anchor, kn, true, m);
    }
    return 0;
  }

  bool null = is_null_scalar(ev);
  struct otc_cfg_node *n =
      new_node(ld, null ? OTC_CFG_NULL : OTC_CFG_SCALAR, (int)m->line + 1, (int)m->column + 1, &rc);
  if (!n)
    return rc;
  n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
  if ((rc = attach(ld, n)) != 0)
    return rc;
  /* An empty value (`debug:`) has its mark where the next token starts, often on the next line;
   * the key's position is the one a user looks for. */
  if (null && len == 0 && n->key) {
    n->line = n->key_line;
    n->col = n->key_col;
  }
  if (!null) {
    char *value = NULL;
    if ((rc = expand(ld, n, text, len, &value)) != 0)
      return rc;
    n->value = value;
    if ((rc = charge_bytes(ld, strlen(value), m)) != 0)
      return rc;
  }
  if (anchor)
    return register_anchor(ld, anchor, n, false, m);
  return 0;
}

static int on_alias(struct loader *ld, const yaml_event_t *ev) {
  const yaml_mark_t *m = &ev->start_mark;
  const char *name = (const char *)ev->data.alias.anchor;
  const struct otc_cfg_node *src = find_anchor(ld, name);
  if (!src)
    return lerr(ld, m, NULL, "undefined alias \"*%.*s\"", MAX_ANCHOR_NAME, name);
  int rc;
  if (expecting_key(ld)) {
    if (src->type != OTC_CFG_SCALAR)
      return lerr(ld, m, NULL, "map keys must be scalars, alias \"*%.*s\" is %s", MAX_ANCHOR_NAME,
                  name, type_name(src->type));
    return set_key(ld, src->value, strlen(src->value), m);
  }
  struct otc_cfg_node *n = copy_node(ld, src, ld->depth + 1, true, &rc);
  if (!n)
    return rc;
  n->line = (int)m->line + 1;
  n->col = (int)m->column + 1;
  return attach(ld, n);
}

static int on_start(struct loader *ld, const yaml_event_t *ev, enum otc_cfg_type type) {
  const yaml_mark_t *m = &ev->start_mark;
  const yaml_char_t *anchor =
      type == OTC_CFG_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
  int rc = check_anchor_name(ld, anchor, m);
  if (rc)
    return rc;
  if (expecting_key(ld))
    return lerr(ld, m, NULL, "map keys must be scalars, got %s", type_name(type));
  if (ld->depth >= MAX_DEPTH)
    return lerr(ld, m, NULL, "nesting deeper than %d levels", MAX_DEPTH);
  struct otc_cfg_node *n = new_node(ld, type, (int)m->line + 1, (int)m->column + 1, &rc);
  if (!n)
    return rc;
  if ((rc = attach(ld, n)) != 0)
    return rc;
  struct frame *f = &ld->stack[ld->depth++];
  *f = (struct frame){.node = n};
  if (anchor && !(f->anchor = strdup((const char *)anchor)))
    return nomem(ld);
  return 0;
}

static int on_end(struct loader *ld, const yaml_event_t *ev) {
  if (ld->depth == 0)
    return lerr(ld, &ev->start_mark, NULL, "unbalanced end of a collection");
  struct frame *f = &ld->stack[ld->depth - 1];
  struct otc_cfg_node *n = f->node;
  int rc = 0;
  if (n->type == OTC_CFG_MAP)
    rc = check_duplicates(ld, n);
  else if (build_items(n) != 0)
    rc = nomem(ld);
  if (rc == 0 && f->anchor)
    rc = register_anchor(ld, f->anchor, n, false, &ev->start_mark);
  free(f->anchor);
  free(f->key);
  ld->depth--;
  return rc;
}

static int yaml_failure(struct loader *ld) {
  yaml_parser_t *p = &ld->parser;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->error == YAML_MEMORY_ERROR)
    return nomem(ld);
  if (p->error == YAML_READER_ERROR)
    return err_at(ld->err, ld->file, 0, 0, NULL, "%s at byte %zu", problem, p->problem_offset);
  if (p->context)
    return lerr(ld, &p->problem_mark, NULL, "%s (%s at line %zu)", problem, p->context,
                p->context_mark.line + 1);
  return lerr(ld, &p->problem_mark, NULL, "%s", problem);
}

static int run_parser(struct loader *ld) {
  int rc = 0;
  bool done = false;
  while (!done && rc == 0) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&ld->parser, &ev))
      return yaml_failure(ld);
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (++ld->n_documents > 1)
        rc = lerr(ld, &ev.start_mark, NULL,
                  "more than one YAML document in the file; a config is one document");
      break;
    case YAML_SCALAR_EVENT:
      rc = on_scalar(ld, &ev);
      break;
    case YAML_ALIAS_EVENT:
      rc = on_alias(ld, &ev);
      break;
    case YAML_MAPPING_START_EVENT:
      rc = on_start(ld, &ev, OTC_CFG_MAP);
      break;
    case YAML_SEQUENCE_START_EVENT:
      rc = on_start(ld, &ev, OTC_CFG_SEQ);
      break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
      rc = on_end(ld, &ev);
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
  }
  return rc;
}

struct otc_cfg_node *otc_cfg_load_string(const char *yaml, size_t len, const char *name,
                                         struct otc_cfg_err *err) {
  struct otc_cfg_err scratch;
  if (!err)
    err = &scratch;
  err->msg[0] = '\0';
  struct otc_cfg_node *result = NULL;
  char *file = strdup(name ? name : "<config>");
  struct loader *ld = calloc(1, sizeof *ld);
  if (!file || !ld) {
    err_at(err, name, 0, 0, NULL, "out of memory");
    goto cleanup;
  }
  ld->file = file;
  ld->err = err;
  if (len > MAX_INPUT_BYTES) {
    err_at(err, file, 0, 0, NULL, "config larger than %u bytes", MAX_INPUT_BYTES);
    goto cleanup;
  }
  if (!yaml_parser_initialize(&ld->parser)) {
    err_at(err, file, 0, 0, NULL, "out of memory");
    goto cleanup;
  }
  yaml_parser_set_input_string(&ld->parser, (const unsigned char *)(yaml ? yaml : ""),
                               yaml ? len : 0);
  int rc = run_parser(ld);
  yaml_parser_delete(&ld->parser);
  if (rc != 0)
    goto cleanup;
  if (!ld->root && !(ld->root = new_node(ld, OTC_CFG_MAP, 1, 1, &rc)))
    goto cleanup;
  /* A document holding only "---" or "~" is empty, like an empty file. */
  if (ld->root->type == OTC_CFG_NULL)
    ld->root->type = OTC_CFG_MAP;
  if (ld->root->type != OTC_CFG_MAP) {
    otc_cfg_error(err, ld->root, "the top level of the config must be a map, got %s",
                  type_name(ld->root->type));
    goto cleanup;
  }
  result = ld->root;
  result->priv_owns_file = true;
  ld->root = NULL;
  file = NULL;

cleanup:
  if (ld) {
    /* Frames left open by an error own their anchor name and pending key; their nodes belong to
     * the tree under ld->root. */
    for (int i = 0; i < ld->depth; i++) {
      free(ld->stack[i].anchor);
      free(ld->stack[i].key);
    }
    for (size_t i = 0; i < ld->n_anchors; i++) {
      free(ld->anchors[i].name);
      if (ld->anchors[i].owned)
        free_node(ld->anchors[i].node);
    }
    free(ld->anchors);
    for (size_t i = 0; i < ld->n_warned; i++)
      free(ld->warned[i]);
    free_node(ld->root);
    free(ld);
  }
  free(file);
  return result;
}

struct otc_cfg_node *otc_cfg_load_file(const char *path, struct otc_cfg_err *err) {
  struct otc_cfg_err scratch;
  if (!err)
    err = &scratch;
  struct otc_cfg_node *root = NULL;
  char *data = NULL;
  size_t len = 0, cap = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    err_at(err, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
    goto cleanup;
  }
  for (;;) {
    if (len == cap) {
      if (cap > MAX_INPUT_BYTES) {
        err_at(err, path, 0, 0, NULL, "config file larger than %u bytes", MAX_INPUT_BYTES);
        goto cleanup;
      }
      cap = cap ? cap * 2 : 65536;
      char *d = realloc(data, cap);
      if (!d) {
        err_at(err, path, 0, 0, NULL, "out of memory");
        goto cleanup;
      }
      data = d;
    }
    size_t got = fread(data + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) {
        err_at(err, path, 0, 0, NULL, "cannot read: %s", strerror(errno));
        goto cleanup;
      }
      break;
    }
  }
  root = otc_cfg_load_string(data, len, path, err);

cleanup:
  if (f)
    fclose(f);
  free(data);
  return root;
}

/* ---------------------------------------------------------------------------------------------
 * Conversions
 * ------------------------------------------------------------------------------------------- */

static int need_scalar(const struct otc_cfg_node *n, struct otc_cfg_err *err) {
  if (!n)
    return otc_cfg_error(err, NULL, "missing value");
  if (n->type != OTC_CFG_SCALAR)
    return otc_cfg_error(err, n, "expected a scalar, got %s", type_name(n->type));
  return 0;
}

int otc_cfg_as_bool(const struct otc_cfg_node *n, bool *out, struct otc_cfg_err *err) {
  int rc = need_scalar(n, err);
  if (rc)
    return rc;
  static const char *const yes[] = {"true", "True", "TRUE"};
  static const char *const no[] = {"false", "False", "FALSE"};
  for (int i = 0; i < 3; i++) {
    if (strcmp(n->value, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcmp(n->value, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return otc_cfg_error(err, n, "expected a bool (true or false), got \"%.64s\"", n->value);
}

int otc_cfg_as_int(const struct otc_cfg_node *n, int64_t *out, struct otc_cfg_err *err) {
  int rc = need_scalar(n, err);
  if (rc)
    return rc;
  const char *s = n->value;
  /* strtoll would skip leading blanks and accept an empty string as 0. */
  const char *d = (*s == '+' || *s == '-') ? s + 1 : s;
  if (!isdigit((unsigned char)*d))
    return otc_cfg_error(err, n, "expected an integer, got \"%.64s\"", s);
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*end != '\0')
    return otc_cfg_error(err, n, "expected an integer, got \"%.64s\"", s);
  if (errno == ERANGE)
    return otc_cfg_error(err, n, "integer \"%.64s\" is out of range", s);
  *out = (int64_t)v;
  return 0;
}

int otc_cfg_as_double(const struct otc_cfg_node *n, double *out, struct otc_cfg_err *err) {
  int rc = need_scalar(n, err);
  if (rc)
    return rc;
  const char *s = n->value;
  const char *u = (*s == '+' || *s == '-') ? s + 1 : s;
  /* YAML spells infinity and NaN .inf and .nan, which strtod does not know. */
  if (!strcmp(u, ".inf") || !strcmp(u, ".Inf") || !strcmp(u, ".INF")) {
    *out = *s == '-' ? -INFINITY : INFINITY;
    return 0;
  }
  if (*s == u[0] && (!strcmp(u, ".nan") || !strcmp(u, ".NaN") || !strcmp(u, ".NAN"))) {
    *out = NAN;
    return 0;
  }
  if (*u == '\0' || isspace((unsigned char)*s) || isspace((unsigned char)*u))
    return otc_cfg_error(err, n, "expected a number, got \"%.64s\"", s);
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end != '\0')
    return otc_cfg_error(err, n, "expected a number, got \"%.64s\"", s);
  if (errno == ERANGE && isinf(v))
    return otc_cfg_error(err, n, "number \"%.64s\" is out of range", s);
  *out = v;
  return 0;
}

/* Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+, plus a bare non-negative integer as
 * nanoseconds. Returns false on bad syntax or overflow. */
static bool parse_duration(const char *s, int64_t *out) {
  static const struct {
    const char *name;
    uint64_t ns;
  } units[] = {
      {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
      {"\xce\xbcs", 1000},                                            /* U+03BC Greek mu */
      {"ms", 1000000},     {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
  const uint64_t limit = (uint64_t)1 << 63;
  const char *p = s;
  bool neg = false;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  if (*p == '\0')
    return false;

  bool bare = true;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q))
      bare = false;
  if (bare) {
    if (neg)
      return false; /* a negative duration must carry its unit, e.g. "-5s" */
    uint64_t v = 0;
    for (; *p; p++) {
      if (v > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*p - '0')) / 10)
        return false;
      v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = (int64_t)v;
    return true;
  }

  uint64_t total = 0;
  while (*p) {
    if (!(isdigit((unsigned char)*p) || *p == '.'))
      return false;
    uint64_t v = 0;
    const char *start = p;
    for (; isdigit((unsigned char)*p); p++) {
      if (v > (limit - 1) / 10)
        return false;
      v = v * 10 + (uint64_t)(*p - '0');
      if (v > limit)
        return false;
    }
    bool pre = p != start, post = false;
    uint64_t f = 0;
    double scale = 1;
    if (*p == '.') {
      p++;
      start = p;
      bool overflow = false;
      for (; isdigit((unsigned char)*p); p++) {
        /* Digits beyond what 63 bits hold cannot change the result; Go drops them too. */
        if (overflow || f > (limit - 1) / 10) {
          overflow = true;
          continue;
        }
        f = f * 10 + (uint64_t)(*p - '0');
        scale *= 10;
      }
      post = p != start;
    }
    if (!pre && !post)
      return false;
    start = p;
    while (*p && *p != '.' && !isdigit((unsigned char)*p))
      p++;
    size_t ulen = (size_t)(p - start);
    uint64_t unit = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
      if (strlen(units[i].name) == ulen && memcmp(units[i].name, start, ulen) == 0)
        unit = units[i].ns;
    if (unit == 0)
      return false;
    if (v > limit / unit)
      return false;
    v *= unit;
    if (f > 0) {
      v += (uint64_t)((double)f * ((double)unit / scale));
      if (v > limit)
        return false;
    }
    total += v;
    if (total > limit)
      return false;
  }
  if (neg) {
    *out = total == limit ? INT64_MIN : -(int64_t)total;
    return true;
  }
  if (total > limit - 1)
    return false;
  *out = (int64_t)total;
  return true;
}

int otc_cfg_as_duration_ns(const struct otc_cfg_node *n, int64_t *out, struct otc_cfg_err *err) {
  int rc = need_scalar(n, err);
  if (rc)
    return rc;
  if (!parse_duration(n->value, out))
    return otc_cfg_error(err, n,
                         "invalid duration \"%.64s\" (use e.g. 200ms, 5s, 1m30s, 1h, 100us, 10ns)",
                         n->value);
  return 0;
}

static bool parse_size(const char *s, uint64_t *out) {
  static const struct {
    const char *suffix;
    uint64_t mult;
  } units[] = {{"", 1},
               {"B", 1},
               {"k", 1000},
               {"kB", 1000},
               {"K", 1000},
               {"KB", 1000},
               {"Ki", 1024},
               {"KiB", 1024},
               {"M", 1000000},
               {"MB", 1000000},
               {"Mi", 1u << 20},
               {"MiB", 1u << 20},
               {"G", 1000000000},
               {"GB", 1000000000},
               {"Gi", 1u << 30},
               {"GiB", 1u << 30},
               {"T", 1000000000000ull},
               {"TB", 1000000000000ull},
               {"Ti", 1ull << 40},
               {"TiB", 1ull << 40}};
  const char *p = s;
  if (!isdigit((unsigned char)*p))
    return false;
  uint64_t v = 0;
  for (; isdigit((unsigned char)*p); p++) {
    if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
      return false;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(p, units[i].suffix) == 0) {
      if (v > UINT64_MAX / units[i].mult)
        return false;
      *out = v * units[i].mult;
      return true;
    }
  }
  return false;
}

int otc_cfg_as_size(const struct otc_cfg_node *n, uint64_t *out, struct otc_cfg_err *err) {
  int rc = need_scalar(n, err);
  if (rc)
    return rc;
  if (!parse_size(n->value, out))
    return otc_cfg_error(
        err, n, "invalid size \"%.64s\" (use bytes or e.g. 512KiB, 20MiB, 1GiB, 10MB)", n->value);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Declarative reading
 * ------------------------------------------------------------------------------------------- */

/* Writes a duration in the largest unit that represents it exactly, for range errors. */
static void fmt_duration(char *buf, size_t cap, double ns) {
  static const struct {
    const char *name;
    double ns;
  } units[] = {{"h", 3600e9}, {"m", 60e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (ns != 0 && fmod(ns, units[i].ns) == 0) {
      snprintf(buf, cap, "%.15g%s", ns / units[i].ns, units[i].name);
      return;
    }
  }
  snprintf(buf, cap, "%.15gns", ns);
}

/* Whether v breaks the field's range. min == max == 0 means no range; max == 0 with a positive min
 * means no upper bound, as the header documents for durations ("when max > 0"). */
static bool out_of_range(const struct otc_cfg_field *f, double v) {
  if (f->min == 0 && f->max == 0)
    return false;
  if (isnan(v) || v < f->min)
    return true;
  return !(f->max == 0 && f->min > 0) && v > f->max;
}

/* Writes a bound in the field's own units: durations as "1ms", sizes in bytes. */
static void fmt_bound(const struct otc_cfg_field *f, double v, char *buf, size_t cap) {
  if (f->kind == OTC_CFGK_DURATION)
    fmt_duration(buf, cap, v);
  else if (f->kind == OTC_CFGK_SIZE)
    snprintf(buf, cap, "%.15g bytes", v);
  else
    snprintf(buf, cap, "%.15g", v);
}

static int range_error(const struct otc_cfg_field *f, const struct otc_cfg_node *n,
                       struct otc_cfg_err *err) {
  char lo[48], hi[48];
  fmt_bound(f, f->min, lo, sizeof lo);
  if (f->max == 0 && f->min > 0)
    return otc_cfg_error(err, n, "\"%.64s\" is out of range (at least %s)", n->value, lo);
  fmt_bound(f, f->max, hi, sizeof hi);
  return otc_cfg_error(err, n, "\"%.64s\" is out of range [%s, %s]", n->value, lo, hi);
}

static int store_value(const struct otc_cfg_field *f, const struct otc_cfg_node *n, char *dst,
                       bool check_range, struct otc_cfg_err *err) {
  int rc = 0;
  switch (f->kind) {
  case OTC_CFGK_STRING: {
    if ((rc = need_scalar(n, err)) != 0)
      return rc;
    const char *s = n->value;
    memcpy(dst, &s, sizeof s);
    return 0;
  }
  case OTC_CFGK_BOOL: {
    bool b;
    if ((rc = otc_cfg_as_bool(n, &b, err)) != 0)
      return rc;
    memcpy(dst, &b, sizeof b);
    return 0;
  }
  case OTC_CFGK_INT: {
    int64_t v;
    if ((rc = otc_cfg_as_int(n, &v, err)) != 0)
      return rc;
    if (check_range && out_of_range(f, (double)v))
      return range_error(f, n, err);
    memcpy(dst, &v, sizeof v);
    return 0;
  }
  case OTC_CFGK_DOUBLE: {
    double v;
    if ((rc = otc_cfg_as_double(n, &v, err)) != 0)
      return rc;
    if (check_range && out_of_range(f, v))
      return range_error(f, n, err);
    memcpy(dst, &v, sizeof v);
    return 0;
  }
  case OTC_CFGK_DURATION: {
    int64_t v;
    if ((rc = otc_cfg_as_duration_ns(n, &v, err)) != 0)
      return rc;
    if (check_range && out_of_range(f, (double)v))
      return range_error(f, n, err);
    memcpy(dst, &v, sizeof v);
    return 0;
  }
  case OTC_CFGK_SIZE: {
    uint64_t v;
    if ((rc = otc_cfg_as_size(n, &v, err)) != 0)
      return rc;
    if (check_range && out_of_range(f, (double)v))
      return range_error(f, n, err);
    memcpy(dst, &v, sizeof v);
    return 0;
  }
  case OTC_CFGK_STRLIST: {
    struct otc_cfg_strlist l = {NULL, 0};
    if (n->type == OTC_CFG_SEQ) {
      for (size_t i = 0; i < n->n_children; i++) {
        const struct otc_cfg_node *c = n->children[i];
        if (c->type != OTC_CFG_SCALAR)
          return err_at(err, c->file, c->line, c->col, n->key,
                        "item %zu: expected a scalar, got %s", i + 1, type_name(c->type));
      }
      l.items = n->priv_items;
      l.n = n->n_children;
    } else if (n->type != OTC_CFG_NULL) {
      return otc_cfg_error(err, n, "expected a sequence of strings, got %s", type_name(n->type));
    }
    memcpy(dst, &l, sizeof l);
    return 0;
  }
  case OTC_CFGK_NODE:
    memcpy(dst, &n, sizeof n);
    return 0;
  case OTC_CFGK_UNSUPPORTED:
    return 0;
  }
  return otc_cfg_error(err, n, "unknown field kind %d", (int)f->kind);
}

static void set_zero(const struct otc_cfg_field *f, char *dst) {
  switch (f->kind) {
  case OTC_CFGK_STRING:
  case OTC_CFGK_NODE: {
    const void *p = NULL;
    memcpy(dst, &p, sizeof p);
    break;
  }
  case OTC_CFGK_BOOL: {
    bool b = false;
    memcpy(dst, &b, sizeof b);
    break;
  }
  case OTC_CFGK_INT:
  case OTC_CFGK_DURATION: {
    int64_t v = 0;
    memcpy(dst, &v, sizeof v);
    break;
  }
  case OTC_CFGK_DOUBLE: {
    double v = 0;
    memcpy(dst, &v, sizeof v);
    break;
  }
  case OTC_CFGK_SIZE: {
    uint64_t v = 0;
    memcpy(dst, &v, sizeof v);
    break;
  }
  case OTC_CFGK_STRLIST: {
    struct otc_cfg_strlist l = {NULL, 0};
    memcpy(dst, &l, sizeof l);
    break;
  }
  case OTC_CFGK_UNSUPPORTED:
    break;
  }
}

/* Applies a field's default text through the same conversion as a value from the file. Defaults
 * are written by programmers, so they are not range-checked: "0" may mean "off" below a minimum. */
static int apply_default(const struct otc_cfg_field *f, char *dst, const char *component,
                         struct otc_cfg_err *err) {
  set_zero(f, dst);
  if (!f->def || f->kind == OTC_CFGK_STRLIST || f->kind == OTC_CFGK_NODE ||
      f->kind == OTC_CFGK_UNSUPPORTED)
    return 0;
  if (f->kind == OTC_CFGK_STRING) {
    memcpy(dst, &f->def, sizeof f->def);
    return 0;
  }
  struct otc_cfg_node d = {
      .type = OTC_CFG_SCALAR, .key = f->key, .value = f->def, .file = component};
  return store_value(f, &d, dst, false, err);
}

static void known_keys(const struct otc_cfg_field *fields, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (const struct otc_cfg_field *f = fields; f->key; f++) {
    if (f->kind == OTC_CFGK_UNSUPPORTED)
      continue;
    int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", f->key);
    if (w < 0 || (size_t)w >= cap - n) {
      if (cap > 4)
        memcpy(buf + cap - 4, "...", 4);
      return;
    }
    n += (size_t)w;
  }
}

int otc_cfg_apply(const struct otc_cfg_field *fields, const struct otc_cfg_node *map, void *out,
                  const char *component, struct otc_cfg_err *err) {
  char *base = out;
  const char *who = component ? component : "config";
  int rc = 0;
  for (const struct otc_cfg_field *f = fields; f->key; f++)
    if ((rc = apply_default(f, base + f->offset, who, err)) != 0)
      return rc;
  if (!map || map->type == OTC_CFG_NULL)
    return 0;
  if (map->type != OTC_CFG_MAP)
    return otc_cfg_error(err, map, "expected a map, got %s", type_name(map->type));
  for (size_t i = 0; i < map->n_children; i++) {
    const struct otc_cfg_node *n = map->children[i];
    const struct otc_cfg_field *f = fields;
    while (f->key && strcmp(f->key, n->key) != 0)
      f++;
    if (!f->key) {
      char known[256];
      known_keys(fields, known, sizeof known);
      return err_at(err, n->file, n->key_line, n->key_col, n->key,
                    "unknown key \"%s\" in %s (known: %s)", n->key, who, known);
    }
    if (f->kind == OTC_CFGK_UNSUPPORTED) {
      otc_warn(component, "%s:%d: %s is not supported by this collector and is ignored", n->file,
               n->key_line, n->key);
      continue;
    }
    /* An empty value (`key:`) keeps the default, as it does for otelcol; lists become empty and a
     * node field receives the null node. */
    if (n->type == OTC_CFG_NULL && f->kind != OTC_CFGK_STRLIST && f->kind != OTC_CFGK_NODE)
      continue;
    if ((rc = store_value(f, n, base + f->offset, true, err)) != 0)
      return rc;
  }
  return 0;
}
