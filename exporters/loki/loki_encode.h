/* The translation of the loki exporter, kept free of I/O so that unit tests and a fuzz target can
 * drive it: the wire bytes of an ExportLogsServiceRequest in, the body of a Loki push request out
 * (a logproto.PushRequest, not yet snappy-compressed, or the JSON form of the push API).
 *
 * The mapping follows what Loki's own OTLP endpoint (/otlp/v1/logs) stores, so that the same logs
 * sent either way land in the same streams:
 * - stream labels: the resource attributes named in resource_labels (by default Loki's list of
 *   index labels), the record attributes named in record_labels, and `level` from the severity;
 *   names normalized as Loki does (every character outside [A-Za-z0-9_] becomes `_`, a leading
 *   digit gets `key_`, a leading `_` gets `key`), map values flattened into `<name>_<key>` labels;
 *   `service_name` discovered from other labels or set to "unknown_service" when the resource has
 *   no service.name; the selector `{a="x", b="y"}` sorted by name;
 * - the line: the body, a string as is, anything else as pdata's AsString writes it (JSON for maps
 *   and arrays, base64 for bytes);
 * - structured metadata: the other record attributes, observed_timestamp, severity_number,
 *   severity_text, dropped_attributes_count, flags, trace_id and span_id in hex, then the other
 *   resource attributes, then the scope's attributes, scope_name and scope_version; or, with
 *   structured_metadata off, the same pairs appended to the line as logfmt;
 * - timestamp: time_unix_nano, else observed_time_unix_nano, else now;
 * - entries with the same labels share one stream across the whole request, in timestamp order
 *   (stable). */
#ifndef OTC_LOKI_ENCODE_H
#define OTC_LOKI_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Log records per push: the exporter pushes a larger batch in pieces of this many records. About
 * 0.5-1 MB of push body at typical record sizes, the batch size Loki's own clients use, and it
 * bounds the translation's memory to a few MB instead of tens for a batch of 8192. A piece that
 * fails fails the batch, whose retry pushes the pieces already delivered again; Loki drops those
 * as duplicates (same stream, timestamp and line). */
#define OTC_LOKI_MAX_RECORDS_PER_PUSH 1024

enum otc_loki_format { OTC_LOKI_FORMAT_PROTOBUF = 0, OTC_LOKI_FORMAT_JSON = 1 };

struct loki_mapping_cfg {
  /* Attribute names (as written in OTLP, e.g. "service.name") promoted to stream labels. The arrays
   * are borrowed for the duration of each call. */
  const char *const *resource_labels;
  size_t n_resource_labels;
  const char *const *record_labels;
  size_t n_record_labels;
  bool level_label; /* severity → label `level` (trace, debug, info, warn, error, fatal) */
  bool structured_metadata; /* false: the metadata pairs go into the line as logfmt */
  int64_t now_ns;           /* the time of records without timestamps; 0: the wall clock */
};

/* Loki's default index labels for OTLP resource attributes (its otlp_config defaults), plus
 * deployment.environment.name, the current semantic-convention name of deployment.environment. */
extern const char *const otc_loki_default_resource_labels[];
extern const size_t otc_loki_default_resource_labels_count;

/* Translates otlp (len bytes, untrusted: checked with a bounded scan before decoding) into a push
 * body in `format`. On success returns 0 with *out malloc'd (the caller frees it with free()),
 * *out_len its size and *n_entries the number of log entries in it (0 for a request without log
 * records: the body is then an empty PushRequest). Returns OTC_ERR_INVALID for bytes that are not
 * a valid ExportLogsServiceRequest and OTC_ERR_NOMEM when out of memory; *out is NULL then. The
 * temporary memory is charged to the memory accounting while the call runs. */
int otc_loki__encode(const uint8_t *otlp, size_t len, const struct loki_mapping_cfg *cfg,
                     enum otc_loki_format format, uint8_t **out, size_t *out_len,
                     size_t *n_entries);

#endif
