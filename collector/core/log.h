/* Logging: one JSON object a line on stderr, with a level and the component id, e.g.
 * {"ts":"2026-11-23T10:00:00.123Z","level":"info","component":"receiver/otlp","msg":"listening"}.
 * Thread safe: a line is written with one write(2). */
#ifndef OTC_LOG_H
#define OTC_LOG_H

enum otc_log_level { OTC_LOG_DEBUG = 0, OTC_LOG_INFO = 1, OTC_LOG_WARN = 2, OTC_LOG_ERROR = 3 };

void otc_log_set_level(enum otc_log_level level);
enum otc_log_level otc_log_get_level(void);
/* Parses "debug", "info", "warn", "error" (otelcol's service.telemetry.logs.level). */
int otc_log_parse_level(const char *s, enum otc_log_level *out);

/* component may be NULL (the service itself). msg is JSON-escaped. */
void otc_log(enum otc_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At most one line a second per limiter, with the count of lines held back since the last one, so
 * that a destination or consumer failing every request cannot flood the log. Lock-free; a zeroed
 * limiter (static, calloc) is ready to use and needs no cleanup. */
struct otc_log_limiter {
  _Atomic long long last_ns;
  _Atomic unsigned long long suppressed;
};

void otc_log_limited(struct otc_log_limiter *l, enum otc_log_level level, const char *component,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Logs how many lines were held back since the last one, if any (at shutdown). */
void otc_log_limited_flush(struct otc_log_limiter *l, enum otc_log_level level,
                           const char *component);

#define otc_debug(c, ...) otc_log(OTC_LOG_DEBUG, c, __VA_ARGS__)
#define otc_info(c, ...) otc_log(OTC_LOG_INFO, c, __VA_ARGS__)
#define otc_warn(c, ...) otc_log(OTC_LOG_WARN, c, __VA_ARGS__)
#define otc_error(c, ...) otc_log(OTC_LOG_ERROR, c, __VA_ARGS__)

#endif
