#include "config.h"

#include "errors.h"
#include "validate.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TODO_SOURCE_MIGRATIONS_DIR
#define TODO_SOURCE_MIGRATIONS_DIR ""
#endif

static const char *env_or(const char *name, const char *def) {
  const char *v = getenv(name);
  return v && *v ? v : def;
}

/* Reads an integer variable in [min, max]; *ok is cleared (and a message printed) when set but
 * invalid, because a typo in PORT should stop start-up rather than listen somewhere unexpected. */
static long env_int(const char *name, long def, long min, long max, bool *ok) {
  const char *v = getenv(name);
  long n;
  if (!v || !*v) {
    return def;
  }
  if (!todo_parse_long(v, min, max, &n)) {
    fprintf(stderr, "todo-api: %s=%s is not an integer in [%ld, %ld]\n", name, v, min, max);
    *ok = false;
    return def;
  }
  return n;
}

void todo_config_free(struct todo_config *cfg) {
  if (!cfg) {
    return;
  }
  free(cfg->database_url);
  free(cfg->host);
  free(cfg->migrations_dir);
  free(cfg->cors_allowed_origins);
  memset(cfg, 0, sizeof(*cfg));
}

int todo_config_from_env(struct todo_config *cfg) {
  bool ok = true;
  memset(cfg, 0, sizeof(*cfg));
  cfg->port = (int)env_int("PORT", 8000, 0, 65535, &ok);
  cfg->pool_size = (size_t)env_int("DB_POOL_SIZE", 10, 1, 1000, &ok);
  cfg->pool_timeout_ms = (int)env_int("DB_POOL_TIMEOUT_MS", 2000, 1, 600000, &ok);
  cfg->connect_timeout_s = (int)env_int("DB_CONNECT_TIMEOUT", 2, 1, 600, &ok);
  cfg->startup_timeout_s = (int)env_int("DB_STARTUP_TIMEOUT", 30, 0, 3600, &ok);
  cfg->max_body_bytes = (size_t)env_int("MAX_BODY_BYTES", 65536, 256, 64L << 20, &ok);
  cfg->max_connections = (int)env_int("MAX_CONNECTIONS", 256, 1, 65536, &ok);
  cfg->database_url = strdup(env_or("DATABASE_URL", TODO_DEFAULT_DATABASE_URL));
  cfg->host = strdup(env_or("HOST", "0.0.0.0"));
  const char *origins = getenv("CORS_ALLOWED_ORIGINS");
  if (origins && *origins) {
    cfg->cors_allowed_origins = strdup(origins);
    if (!cfg->cors_allowed_origins) {
      goto nomem;
    }
  }
  const char *dir = getenv("TODO_MIGRATIONS_DIR");
  if (dir && *dir) {
    cfg->migrations_dir = strdup(dir);
    if (!cfg->migrations_dir) {
      goto nomem;
    }
  }
  if (!cfg->database_url || !cfg->host) {
    goto nomem;
  }
  if (!ok) {
    todo_config_free(cfg);
    return TODO_ERR_INVALID;
  }
  return TODO_OK;
nomem:
  todo_config_free(cfg);
  return TODO_ERR_NOMEM;
}

/* ---------- password masking ---------- */

static bool starts_with_ci(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Appends n bytes of s to out at *len (out has room: the result is never longer than the input
 * plus the mask per password). */
static void put(char *out, size_t *len, const char *s, size_t n) {
  memcpy(out + *len, s, n);
  *len += n;
}

#define MASK "****"

/* Masks the password of a postgresql:// URL: in the user info (user:password@) and in a
 * password= query parameter. */
static void mask_url(const char *url, char *out) {
  size_t len = 0;
  const char *scheme_end = strstr(url, "://");
  const char *auth = scheme_end + 3;
  size_t auth_len = strcspn(auth, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < auth_len; i++) {
    if (auth[i] == '@') {
      at = auth + i; /* the last '@' ends the user info */
    }
  }
  put(out, &len, url, (size_t)(auth - url));
  const char *p = auth;
  if (at) {
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon) {
      put(out, &len, auth, (size_t)(colon - auth) + 1);
      put(out, &len, MASK, strlen(MASK));
      p = at;
    }
  }
  /* The rest, with password=... in the query replaced. */
  while (*p) {
    bool at_param = (p > url) && (p[-1] == '?' || p[-1] == '&');
    if (at_param && starts_with_ci(p, "password=")) {
      put(out, &len, p, 9);
      put(out, &len, MASK, strlen(MASK));
      p += 9;
      p += strcspn(p, "&#");
      continue;
    }
    put(out, &len, p, 1);
    p++;
  }
  out[len] = '\0';
}

/* Masks password=value in a keyword/value conninfo string, where a value is either a run of
 * non-space characters or a single-quoted string with backslash escapes. */
static void mask_keywords(const char *s, char *out) {
  size_t len = 0;
  const char *p = s;
  while (*p) {
    bool word_start = p == s || isspace((unsigned char)p[-1]);
    if (word_start && starts_with_ci(p, "password")) {
      const char *q = p + 8;
      while (isspace((unsigned char)*q)) {
        q++;
      }
      if (*q == '=') {
        q++;
        while (isspace((unsigned char)*q)) {
          q++;
        }
        put(out, &len, p, (size_t)(q - p));
        put(out, &len, MASK, strlen(MASK));
        if (*q == '\'') {
          q++;
          while (*q && *q != '\'') {
            q += (*q == '\\' && q[1]) ? 2 : 1;
          }
          if (*q == '\'') {
            q++;
          }
        } else {
          while (*q && !isspace((unsigned char)*q)) {
            q++;
          }
        }
        p = q;
        continue;
      }
    }
    put(out, &len, p, 1);
    p++;
  }
  out[len] = '\0';
}

char *todo_mask_conninfo(const char *conninfo) {
  if (!conninfo) {
    return strdup("");
  }
  /* Each password can grow by at most the mask; a password needs at least "password=" or ":@"
   * around it, so the input length bounds the number of passwords. */
  size_t n = strlen(conninfo);
  char *out = malloc(n + (n / 2 + 1) * strlen(MASK) + 1);
  if (!out) {
    return NULL;
  }
  if (starts_with_ci(conninfo, "postgresql://") || starts_with_ci(conninfo, "postgres://")) {
    mask_url(conninfo, out);
  } else {
    mask_keywords(conninfo, out);
  }
  return out;
}

/* ---------- migrations directory ---------- */

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *todo_find_migrations_dir(const char *configured) {
  char exe[PATH_MAX], candidate[PATH_MAX + 64];
  if (configured && *configured) {
    return is_dir(configured) ? strdup(configured) : NULL;
  }
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      snprintf(candidate, sizeof(candidate), "%s/migrations", exe);
      if (is_dir(candidate)) {
        return strdup(candidate);
      }
      snprintf(candidate, sizeof(candidate), "%s/../share/todo-api/migrations", exe);
      if (is_dir(candidate)) {
        return strdup(candidate);
      }
    }
  }
  if (*TODO_SOURCE_MIGRATIONS_DIR && is_dir(TODO_SOURCE_MIGRATIONS_DIR)) {
    return strdup(TODO_SOURCE_MIGRATIONS_DIR);
  }
  return NULL;
}
