/* The bearertokenauth extension: see bearertokenauth.h. The expected header values ("Bearer tok")
 * are built once per token set; a token file is checked for changes (inode, size, times) at most
 * once a second by whichever thread uses the extension next, which keeps it free of a watcher
 * thread while still following a rotated secret within a second. */
#include "extensions/bearertokenauth/bearertokenauth.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/errors.h"
#include "core/log.h"

/* A token file is a secret or a few, never this large; the bound keeps a wrong path (a log file)
 * from being read whole. */
#define MAX_TOKEN_FILE (64 * 1024)
#define MAX_TOKENS 256
#define RECHECK_NS 1000000000LL

struct bta_config {
  const char *header;
  const char *scheme;
  const char *token;
  const struct otc_cfg_node *tokens;
  const char *filename;
};

#define BO(m) offsetof(struct bta_config, m)
static const struct otc_cfg_field bta_fields[] = {
    {"header", OTC_CFGK_STRING, "Authorization", BO(header), 0, 0},
    {"scheme", OTC_CFGK_STRING, "Bearer", BO(scheme), 0, 0},
    {"token", OTC_CFGK_STRING, NULL, BO(token), 0, 0},
    {"tokens", OTC_CFGK_NODE, NULL, BO(tokens), 0, 0},
    {"filename", OTC_CFGK_STRING, NULL, BO(filename), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};
#undef BO

struct otc_bearertokenauth {
  char *id;
  const char *header; /* strings of the config tree, which outlives every component */
  const char *scheme;
  const char *filename; /* NULL: the tokens are static */
  pthread_mutex_t mu;   /* guards values and the file state */
  char **values;        /* "<scheme> <token>" per token */
  size_t n_values;
  struct stat st; /* of the file when it was last read */
  int64_t last_check_ns;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void free_values(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

/* A token goes into a header line: printable ASCII only, so that it can neither break the line
 * nor be mangled by a proxy. */
static bool token_ok(const char *t, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
      return false;
  return len > 0;
}

static bool header_name_ok(const char *s) {
  if (!s || !*s)
    return false;
  for (; *s; s++)
    if (!strchr("!#$%&'*+-.^_`|~", *s) &&
        !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
      return false;
  return true;
}

/* Builds "<scheme> <token>" (or the token alone for an empty scheme). Returns NULL when out of
 * memory. */
static char *make_value(const char *scheme, const char *tok, size_t len) {
  size_t sl = strlen(scheme);
  char *v = malloc(sl + 1 + len + 1);
  if (!v)
    return NULL;
  if (sl) {
    memcpy(v, scheme, sl);
    v[sl++] = ' ';
  }
  memcpy(v + sl, tok, len);
  v[sl + len] = '\0';
  return v;
}

/* Reads the token file: one token per line, surrounding whitespace trimmed, empty lines skipped.
 * Returns 0 with *values (caller frees) and *st, or an error with why filled. */
static int read_token_file(const char *path, const char *scheme, char ***values, size_t *n,
                           struct stat *st, char *why, size_t whycap) {
  int rc = 0;
  char *buf = NULL;
  char **v = NULL;
  size_t nv = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, whycap, "cannot read filename \"%s\": %s", path, strerror(errno));
    return OTC_ERR_IO;
  }
  if (fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode)) {
    snprintf(why, whycap, "filename \"%s\" is not a regular file", path);
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  buf = malloc(MAX_TOKEN_FILE + 1);
  v = calloc(MAX_TOKENS, sizeof *v);
  if (!buf || !v) {
    snprintf(why, whycap, "out of memory");
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  size_t len = fread(buf, 1, MAX_TOKEN_FILE + 1, f);
  if (ferror(f) || len > MAX_TOKEN_FILE) {
    snprintf(why, whycap, "cannot read filename \"%s\": %s", path,
             ferror(f) ? "read error" : "larger than 64 KiB");
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  for (size_t pos = 0; pos < len;) {
    size_t end = pos;
    while (end < len && buf[end] != '\n')
      end++;
    size_t a = pos, b = end;
    while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r'))
      a++;
    while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r'))
      b--;
    pos = end + 1;
    if (a == b)
      continue;
    if (!token_ok(buf + a, b - a)) {
      snprintf(why, whycap,
               "filename \"%s\": a token holds a character that is not printable ASCII", path);
      rc = OTC_ERR_INVALID;
      goto cleanup;
    }
    if (nv == MAX_TOKENS) {
      snprintf(why, whycap, "filename \"%s\" holds more than %d tokens", path, MAX_TOKENS);
      rc = OTC_ERR_INVALID;
      goto cleanup;
    }
    if (!(v[nv] = make_value(scheme, buf + a, b - a))) {
      snprintf(why, whycap, "out of memory");
      rc = OTC_ERR_NOMEM;
      goto cleanup;
    }
    nv++;
  }
  *values = v;
  *n = nv;
  v = NULL;
cleanup:
  free_values(v, nv);
  free(buf);
  fclose(f);
  return rc;
}

/* With a token file, reads it again when it changed; at most once per RECHECK_NS. A file that
 * cannot be read any more keeps the previous tokens (as otelcol-contrib does), with a warning.
 * Called with a->mu held. */
static void maybe_reload(struct otc_bearertokenauth *a) {
  if (!a->filename)
    return;
  int64_t now = now_ns();
  if (now - a->last_check_ns < RECHECK_NS)
    return;
  a->last_check_ns = now;
  struct stat st;
  if (stat(a->filename, &st) == 0 && st.st_ino == a->st.st_ino && st.st_dev == a->st.st_dev &&
      st.st_size == a->st.st_size && st.st_mtim.tv_sec == a->st.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == a->st.st_mtim.tv_nsec && st.st_ctim.tv_sec == a->st.st_ctim.tv_sec &&
      st.st_ctim.tv_nsec == a->st.st_ctim.tv_nsec)
    return;
  char **v = NULL;
  size_t n = 0;
  char why[300];
  if (read_token_file(a->filename, a->scheme, &v, &n, &st, why, sizeof why) != 0) {
    otc_warn(a->id, "%s; keeping the previous token(s)", why);
    return;
  }
  free_values(a->values, a->n_values);
  a->values = v;
  a->n_values = n;
  a->st = st;
  otc_info(a->id, "token file \"%s\" reloaded (%zu token%s)", a->filename, n, n == 1 ? "" : "s");
}

/* --- component --- */

static void bta_destroy(void *ctx) {
  struct otc_bearertokenauth *a = ctx;
  if (!a)
    return;
  free_values(a->values, a->n_values);
  pthread_mutex_destroy(&a->mu);
  free(a->id);
  free(a);
}

static void *bta_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                        struct otc_cfg_err *err) {
  const char *id = args->id ? args->id : "bearertokenauth";
  struct bta_config c;
  memset(&c, 0, sizeof c);
  struct otc_bearertokenauth *a = calloc(1, sizeof *a);
  if (!a || !(a->id = strdup(id))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  pthread_mutex_init(&a->mu, NULL);
  if (otc_cfg_apply(bta_fields, cfg, &c, id, err) != 0)
    goto fail;
  a->header = c.header;
  a->scheme = c.scheme ? c.scheme : "";
  if (!header_name_ok(c.header)) {
    otc_cfg_error(err, otc_cfg_get(cfg, "header") ? otc_cfg_get(cfg, "header") : cfg,
                  "header \"%s\" is not a valid header name", c.header ? c.header : "");
    goto fail;
  }
  if (!token_ok(a->scheme, strlen(a->scheme)) && a->scheme[0]) {
    otc_cfg_error(err, otc_cfg_get(cfg, "scheme"), "scheme must be printable ASCII without spaces");
    goto fail;
  }
  bool has_token = c.token && *c.token;
  bool has_tokens = c.tokens && c.tokens->type != OTC_CFG_NULL;
  bool has_file = c.filename && *c.filename;
  if (has_tokens && (c.tokens->type != OTC_CFG_SEQ || c.tokens->n_children == 0)) {
    otc_cfg_error(err, c.tokens, "tokens must be a non-empty list of strings");
    goto fail;
  }
  if (!has_token && !has_tokens && !has_file) {
    otc_cfg_error(err, cfg, "no bearer token provided (token, tokens or filename)");
    goto fail;
  }
  if (has_token && has_tokens) {
    otc_cfg_error(err, c.tokens, "either tokens or token should be provided, not both");
    goto fail;
  }
  if (has_file) {
    if (has_token || has_tokens)
      otc_warn(id, "a filename is specified: the configured token(s) are ignored");
    char why[300];
    a->filename = c.filename;
    if (read_token_file(a->filename, a->scheme, &a->values, &a->n_values, &a->st, why,
                        sizeof why) != 0) {
      otc_cfg_error(err, otc_cfg_get(cfg, "filename"), "%s", why);
      goto fail;
    }
    a->last_check_ns = now_ns();
    if (a->n_values == 0)
      otc_warn(id, "token file \"%s\" is empty: every request will be refused", a->filename);
    return a;
  }
  size_t n = has_tokens ? c.tokens->n_children : 1;
  if (n > MAX_TOKENS) {
    otc_cfg_error(err, c.tokens, "at most %d tokens are supported", MAX_TOKENS);
    goto fail;
  }
  a->values = calloc(n, sizeof *a->values);
  if (!a->values) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    const struct otc_cfg_node *t = has_tokens ? c.tokens->children[i] : otc_cfg_get(cfg, "token");
    const char *tok = has_tokens ? (t->type == OTC_CFG_SCALAR ? t->value : NULL) : c.token;
    if (!tok || !token_ok(tok, strlen(tok))) {
      otc_cfg_error(err, t, "a token must be a non-empty string of printable ASCII without spaces");
      goto fail;
    }
    if (!(a->values[i] = make_value(a->scheme, tok, strlen(tok)))) {
      otc_cfg_error(err, cfg, "out of memory");
      goto fail;
    }
    a->n_values++;
  }
  return a;

fail:
  bta_destroy(a);
  return NULL;
}

const struct otc_component_ops otc_extension_bearertokenauth = {
    .type = "bearertokenauth",
    .aliases = NULL,
    .kind = OTC_KIND_EXTENSION,
    .signals = 0,
    .mutates = false,
    .create = bta_create,
    .start = NULL,
    .consume = NULL,
    .shutdown = NULL,
    .destroy = bta_destroy,
};

/* --- use --- */

const char *otc_bearertokenauth_header(const struct otc_bearertokenauth *a) {
  return a->header;
}

const char *otc_bearertokenauth_scheme(const struct otc_bearertokenauth *a) {
  return a->scheme;
}

/* Compares in a time that depends on want's length only: every byte of want is visited whatever
 * got holds, and a length mismatch is folded into the same accumulator. */
static bool equal_const_time(const char *want, const char *got, size_t got_len) {
  size_t wl = strlen(want);
  volatile unsigned char diff = (unsigned char)(wl != got_len);
  for (size_t i = 0; i < wl; i++) {
    unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
    diff |= (unsigned char)(g ^ (unsigned char)want[i]);
  }
  return diff == 0;
}

bool otc_bearertokenauth_check(struct otc_bearertokenauth *a, const char *value, size_t len,
                               char *why, size_t whycap) {
  if (!value || len == 0) {
    if (why)
      snprintf(why, whycap, "missing or empty authorization header: %s", a->header);
    return false;
  }
  bool ok = false;
  pthread_mutex_lock(&a->mu);
  maybe_reload(a);
  /* Every expected value is compared, so that which token matched does not show in the time. */
  for (size_t i = 0; i < a->n_values; i++)
    ok |= equal_const_time(a->values[i], value, len);
  pthread_mutex_unlock(&a->mu);
  if (!ok && why)
    snprintf(why, whycap, "scheme or token does not match");
  return ok;
}

int otc_bearertokenauth_value(struct otc_bearertokenauth *a, char *buf, size_t cap) {
  int rc = 0;
  pthread_mutex_lock(&a->mu);
  maybe_reload(a);
  if (a->n_values == 0) {
    rc = OTC_ERR_IO;
  } else {
    size_t l = strlen(a->values[0]);
    if (l + 1 > cap)
      rc = OTC_ERR_TOO_LARGE;
    else
      memcpy(buf, a->values[0], l + 1);
  }
  pthread_mutex_unlock(&a->mu);
  return rc;
}

/* --- the auth map of receivers and exporters --- */

struct auth_read {
  const char *authenticator;
};

int otc_auth_resolve(const struct otc_create_args *args, const struct otc_cfg_node *auth,
                     const char *what, const char *component, struct otc_bearertokenauth **out,
                     struct otc_cfg_err *err) {
  static const struct otc_cfg_field fields[] = {
      {"authenticator", OTC_CFGK_STRING, NULL, offsetof(struct auth_read, authenticator), 0, 0},
      {"request_params", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  *out = NULL;
  if (!auth || auth->type == OTC_CFG_NULL)
    return 0;
  struct auth_read r = {0};
  int rc = otc_cfg_apply(fields, auth, &r, component, err);
  if (rc != 0)
    return rc;
  const struct otc_cfg_node *at = otc_cfg_get(auth, "authenticator");
  if (!r.authenticator || !*r.authenticator)
    return otc_cfg_error(err, at ? at : auth, "%s.authenticator: an extension id is required",
                         what);
  char type[128];
  otc_component_type_of(r.authenticator, type, sizeof type);
  if (strcmp(type, "bearertokenauth") != 0)
    return otc_cfg_error(err, at,
                         "%s.authenticator: \"%s\" is not supported (only bearertokenauth is)",
                         what, r.authenticator);
  *out = otc_find_extension(args, r.authenticator, "bearertokenauth");
  if (!*out)
    return otc_cfg_error(err, at,
                         "%s.authenticator: extension \"%s\" is not defined or not enabled in "
                         "service::extensions",
                         what, r.authenticator);
  return 0;
}
