/* The OTLP JSON mapping (opentelemetry-proto docs/specification.md, "JSON Protobuf Encoding"):
 * lowerCamelCase keys (the original snake_case accepted too), trace and span ids as hex, enums as
 * integers (names accepted too), 64-bit integers as decimal strings or numbers, bytes as base64,
 * unknown fields ignored. Transcoding happens once, at the receiver: the rest of the collector sees
 * only protobuf. */
#ifndef OTC_OTLP_JSON_H
#define OTC_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/signal.h"

/* Transcodes a JSON Export{Trace,Metrics,Logs}ServiceRequest to protobuf wire bytes. Nesting of
 * AnyValue deeper than max_depth is refused. On success *out is malloc'd (caller frees) and 0 is
 * returned; otherwise OTC_ERR_INVALID (or OTC_ERR_NOMEM) with the reason in errbuf. */
int otc_json_to_proto(enum otc_signal s, const char *json, size_t len, int max_depth,
                      uint8_t **out, size_t *out_len, char *errbuf, size_t errlen);

/* Transcodes valid protobuf wire bytes of an Export*ServiceRequest (as otc_wire_scan accepts) to
 * its OTLP JSON form, compact, on one line. *out is malloc'd and NUL-terminated. Returns 0,
 * OTC_ERR_INVALID or OTC_ERR_NOMEM. */
int otc_proto_to_json(enum otc_signal s, const uint8_t *buf, size_t len, char **out,
                      size_t *out_len);

#endif
