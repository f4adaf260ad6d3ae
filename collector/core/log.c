#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"

static atomic_int min_level = OTC_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void otc_log_set_level(enum otc_log_level level) { atomic_store(&min_level, (int)level); }
enum otc_log_level otc_log_get_level(void) { return (enum otc_log_level)atomic_load(&min_level); }

int otc_log_parse_level(const char *s, enum otc_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, level_names[i]) == 0) {
      *out = (enum otc_log_level)i;
      return 0;
    }
  }
  if (strcasecmp(s, "warning") == 0) {
    *out = OTC_LOG_WARN;
    return 0;
  }
  return OTC_ERR_CONFIG;
}

/* Appends s to buf as the inside of a JSON string, never past cap - 1; returns the new length. */
static size_t json_escape(char *buf, size_t n, size_t cap, const char *s) {
  for (; *s && n + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[n++] = '\\';
      buf[n++] = (char)c;
    } else if (c == '\n') {
      buf[n++] = '\\';
      buf[n++] = 'n';
    } else if (c < 0x20) {
      n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
    } else {
      buf[n++] = (char)c;
    }
  }
  return n;
}

void otc_log(enum otc_log_level level, const char *component, const char *fmt, ...) {
  if ((int)level < atomic_load(&min_level))
    return;
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);

  char line[2048];
  size_t n = strftime(line, sizeof line, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ\",\"level\":\"%s\"",
                        ts.tv_nsec / 1000000, level_names[level]);
  if (component) {
    n += (size_t)snprintf(line + n, sizeof line - n, ",\"component\":\"");
    n = json_escape(line, n, sizeof line - 40, component);
    line[n++] = '"';
  }
  n += (size_t)snprintf(line + n, sizeof line - n, ",\"msg\":\"");
  n = json_escape(line, n, sizeof line - 4, msg);
  line[n++] = '"';
  line[n++] = '}';
  line[n++] = '\n';
  /* One write per line keeps lines whole when several threads log at once. */
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

void otc_log_limited(struct otc_log_limiter *l, enum otc_log_level level, const char *component,
                     const char *fmt, ...) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long t = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  long long last = atomic_load(&l->last_ns);
  /* One thread wins the slot of this second; the others only count themselves. */
  if ((last != 0 && t - last < 1000000000LL) ||
      !atomic_compare_exchange_strong(&l->last_ns, &last, t)) {
    atomic_fetch_add(&l->suppressed, 1);
    return;
  }
  unsigned long long held = atomic_exchange(&l->suppressed, 0);
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (held)
    otc_log(level, component, "%s (%llu similar messages suppressed)", msg, held);
  else
    otc_log(level, component, "%s", msg);
}

void otc_log_limited_flush(struct otc_log_limiter *l, enum otc_log_level level,
                           const char *component) {
  unsigned long long held = atomic_exchange(&l->suppressed, 0);
  if (held)
    otc_log(level, component, "%llu similar messages were suppressed", held);
}
