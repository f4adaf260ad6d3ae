/* OTLP protobuf at the wire level, without protobuf-c: validating untrusted bytes with bounded
 * depth (protobuf-c's unpack recurses without limit: a 74 KB request nesting AnyValue 10,000 deep
 * overflows the stack), counting items, and merging and splitting requests by copying byte ranges.
 * Merging is concatenation: the repeated field 1 of two Export*ServiceRequests appends.
 *
 * The schema knowledge here is the OTLP v1 field numbers (proto/opentelemetry/...). */
#ifndef OTC_OTLP_WIRE_H
#define OTC_OTLP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/signal.h"

#define OTC_WIRE_DEFAULT_MAX_DEPTH 64

struct otc_wire_stats {
  size_t resources; /* Resource{Spans,Metrics,Logs} */
  size_t scopes;    /* Scope{Spans,Metrics,Logs} */
  size_t items;     /* spans, metric data points (all point kinds), log records */
  size_t metrics;   /* Metric messages (metrics only) */
  size_t invalid_items; /* spans or log records whose trace_id is not 0 or 16 bytes or whose
                           span_id is not 0 or 8 bytes (spans: trace_id must be 16, span_id 8) */
};

/* Validates buf as an Export{Trace,Metrics,Logs}ServiceRequest of signal s: every tag, wire type
 * and length of every known message nested in it, AnyValue nesting no deeper than max_depth
 * levels, and fills st. Unknown fields are skipped (as protobuf does). Returns 0, or
 * OTC_ERR_INVALID with a short reason in errbuf ("truncated field at offset 123", "nesting deeper
 * than 64"). Never allocates. */
int otc_wire_scan(enum otc_signal s, const uint8_t *buf, size_t len, int max_depth,
                  struct otc_wire_stats *st, char *errbuf, size_t errlen);

/* otc_wire_scan is two scanners with one verdict: a table-driven fast one that only says valid
 * (filling st) or not, and the reference one that, when the fast one refuses, says why. Both are
 * exposed for the tests that check they agree; use otc_wire_scan. st is required here. */
int otc_wire__scan_fast(enum otc_signal s, const uint8_t *buf, size_t len, int max_depth,
                        struct otc_wire_stats *st);
int otc_wire__scan_reference(enum otc_signal s, const uint8_t *buf, size_t len, int max_depth,
                             struct otc_wire_stats *st, char *errbuf, size_t errlen);

/* Receives one piece of a split: the wire bytes of a complete Export*ServiceRequest holding
 * `items` items. The bytes are only valid during the call. Returns 0 to go on, non-zero to stop
 * (that value is returned by the split). */
typedef int (*otc_wire_emit_fn)(void *arg, const uint8_t *piece, size_t len, size_t items);

/* Splits a valid request (one that otc_wire_scan accepted) into pieces of at most max_items items
 * each, in order, cutting between resources, then between scopes, then between items: a piece
 * that starts or ends inside a resource or scope repeats that resource's and scope's other fields
 * (resource, schema_url, scope) around its share of the items. Metrics are cut between data
 * points, repeating the metric's name, description, unit and aggregation fields. Returns 0, the
 * emit function's non-zero value, or OTC_ERR_NOMEM. */
int otc_wire_split(enum otc_signal s, const uint8_t *buf, size_t len, size_t max_items,
                   otc_wire_emit_fn emit, void *arg);

/* Writes into out a copy of the valid request buf with every invalid item (see
 * otc_wire_stats.invalid_items) removed, and empty scopes and resources left as they are.
 * out must have room for len bytes. Returns the new length. */
size_t otc_wire_drop_invalid(enum otc_signal s, const uint8_t *buf, size_t len, uint8_t *out);

#endif
