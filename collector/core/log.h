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

#define otc_debug(c, ...) otc_log(OTC_LOG_DEBUG, c, __VA_ARGS__)
#define otc_info(c, ...) otc_log(OTC_LOG_INFO, c, __VA_ARGS__)
#define otc_warn(c, ...) otc_log(OTC_LOG_WARN, c, __VA_ARGS__)
#define otc_error(c, ...) otc_log(OTC_LOG_ERROR, c, __VA_ARGS__)

#endif
