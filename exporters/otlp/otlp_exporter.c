/* Reading OTLP servers' answers for both OTLP exporters (see otlp_exporter.h). */
#include "otlp/otlp_exporter.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"
/* A delay beyond a day is a misconfigured server, not a plan (the HTTP client caps Retry-After the
 * same way). */
#define MAX_RETRY_DELAY_NS (24LL * 3600 * 1000000000LL)

/* Copies s into out as printable ASCII (anything else becomes '?'), cut to fit. */
static void copy_printable(char *out, size_t cap, const char *s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; s && i < len && o + 1 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  out[o] = '\0';
}

int otlp_exp__partial_from_proto(enum otc_signal s, const uint8_t *buf, size_t len,
                                 struct otlp_exp_partial *out) {
  memset(out, 0, sizeof *out);
  if (len == 0)
    return 0;
  int rc = 0;
  switch (s) {
  case OTC_SIGNAL_TRACES: {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len,
                                                                                          buf);
    if (!r)
      return OTC_ERR_INVALID;
    if (r->partial_success) {
      out->rejected = r->partial_success->rejected_spans;
      const char *m = r->partial_success->error_message;
      copy_printable(out->message, sizeof out->message, m, m ? strlen(m) : 0);
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r,
                                                                                             NULL);
    break;
  }
  case OTC_SIGNAL_METRICS: {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, len, buf);
    if (!r)
      return OTC_ERR_INVALID;
    if (r->partial_success) {
      out->rejected = r->partial_success->rejected_data_points;
      const char *m = r->partial_success->error_message;
      copy_printable(out->message, sizeof out->message, m, m ? strlen(m) : 0);
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        r, NULL);
    break;
  }
  case OTC_SIGNAL_LOGS: {
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *r =
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, len,
                                                                                        buf);
    if (!r)
      return OTC_ERR_INVALID;
    if (r->partial_success) {
      out->rejected = r->partial_success->rejected_log_records;
      const char *m = r->partial_success->error_message;
      copy_printable(out->message, sizeof out->message, m, m ? strlen(m) : 0);
    }
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(r, NULL);
    break;
  }
  default:
    rc = OTC_ERR_INVALID;
  }
  return rc;
}

/* The first of the two spellings present in o. */
static json_t *get2(const json_t *o, const char *camel, const char *snake) {
  json_t *v = json_object_get(o, camel);
  return v ? v : json_object_get(o, snake);
}

/* An int64 as the JSON mapping writes it: a decimal string, or a number. */
static int64_t json_int64(const json_t *v) {
  if (json_is_integer(v))
    return (int64_t)json_integer_value(v);
  if (json_is_string(v))
    return strtoll(json_string_value(v), NULL, 10);
  if (json_is_real(v))
    return (int64_t)json_real_value(v);
  return 0;
}

int otlp_exp__partial_from_json(enum otc_signal s, const uint8_t *buf, size_t len,
                                struct otlp_exp_partial *out) {
  static const char *const camel[OTC_SIGNAL_COUNT] = {"rejectedSpans", "rejectedDataPoints",
                                                      "rejectedLogRecords"};
  static const char *const snake[OTC_SIGNAL_COUNT] = {"rejected_spans", "rejected_data_points",
                                                      "rejected_log_records"};
  memset(out, 0, sizeof *out);
  if (len == 0 || (unsigned)s >= OTC_SIGNAL_COUNT)
    return len == 0 ? 0 : OTC_ERR_INVALID;
  json_t *root = json_loadb((const char *)buf, len, 0, NULL);
  if (!json_is_object(root)) {
    json_decref(root);
    return OTC_ERR_INVALID;
  }
  json_t *ps = get2(root, "partialSuccess", "partial_success");
  if (json_is_object(ps)) {
    out->rejected = json_int64(get2(ps, camel[s], snake[s]));
    json_t *m = get2(ps, "errorMessage", "error_message");
    if (json_is_string(m))
      copy_printable(out->message, sizeof out->message, json_string_value(m),
                     json_string_length(m));
  }
  json_decref(root);
  return 0;
}

int otlp_exp__status_from_proto(const uint8_t *buf, size_t len, struct otlp_exp_status *out) {
  memset(out, 0, sizeof *out);
  out->retry_delay_ns = -1;
  if (len == 0)
    return OTC_ERR_INVALID;
  Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, buf);
  if (!st)
    return OTC_ERR_INVALID;
  out->code = st->code;
  if (st->message)
    copy_printable(out->message, sizeof out->message, st->message, strlen(st->message));
  for (size_t i = 0; i < st->n_details; i++) {
    const Google__Protobuf__Any *any = st->details[i];
    if (!any->type_url || strcmp(any->type_url, RETRY_INFO_TYPE) != 0)
      continue;
    Google__Rpc__RetryInfo *ri =
        google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
    if (!ri)
      continue;
    int64_t ns = 0;
    if (ri->retry_delay) {
      int64_t sec = ri->retry_delay->seconds;
      int32_t nanos = ri->retry_delay->nanos;
      if (sec < 0 || nanos < 0)
        ns = 0;
      else if (sec >= MAX_RETRY_DELAY_NS / 1000000000LL)
        ns = MAX_RETRY_DELAY_NS;
      else
        ns = sec * 1000000000LL + nanos;
    }
    out->retry_delay_ns = ns;
    google__rpc__retry_info__free_unpacked(ri, NULL);
    break;
  }
  google__rpc__status__free_unpacked(st, NULL);
  return 0;
}

int otlp_exp__status_from_json(const uint8_t *buf, size_t len, struct otlp_exp_status *out) {
  memset(out, 0, sizeof *out);
  out->retry_delay_ns = -1;
  json_t *root = len ? json_loadb((const char *)buf, len, 0, NULL) : NULL;
  if (!json_is_object(root)) {
    json_decref(root);
    return OTC_ERR_INVALID;
  }
  json_t *code = json_object_get(root, "code");
  json_t *msg = json_object_get(root, "message");
  if (!json_is_integer(code) && !json_is_string(msg)) {
    json_decref(root);
    return OTC_ERR_INVALID; /* some other JSON document */
  }
  out->code = (int32_t)json_int64(code);
  if (json_is_string(msg))
    copy_printable(out->message, sizeof out->message, json_string_value(msg),
                   json_string_length(msg));
  json_t *details = json_object_get(root, "details");
  size_t i;
  json_t *d;
  json_array_foreach(details, i, d) {
    json_t *type = json_object_get(d, "@type");
    json_t *delay = json_object_get(d, "retryDelay");
    if (!json_is_string(type) || strcmp(json_string_value(type), RETRY_INFO_TYPE) != 0 ||
        !json_is_string(delay))
      continue;
    /* The JSON form of a Duration: decimal seconds followed by "s". */
    char *end = NULL;
    double sec = strtod(json_string_value(delay), &end);
    if (!end || *end != 's' || !(sec >= 0))
      continue;
    out->retry_delay_ns =
        sec * 1e9 >= (double)MAX_RETRY_DELAY_NS ? MAX_RETRY_DELAY_NS : (int64_t)llround(sec * 1e9);
    break;
  }
  json_decref(root);
  return 0;
}

void otlp_exp__report_partial(const char *id, struct otc_log_limiter *rl, enum otc_signal s,
                              size_t items, const struct otlp_exp_partial *p) {
  if (p->rejected <= 0 && !p->message[0])
    return;
  /* A server may claim more rejections than there were items; only what we sent can be lost. */
  uint64_t rejected = p->rejected > 0 ? (uint64_t)p->rejected : 0;
  if (rejected > items)
    rejected = items;
  if (rejected)
    otc_count_dropped(id, s, "partial_success", rejected);
  otc_log_limited(rl, OTC_LOG_WARN, id,
                  "Partial success response: %" PRIu64 " %s rejected of %zu: %s", rejected, otc_signal_item_name(s), items,
                  p->message[0] ? p->message : "(no message)");
}
