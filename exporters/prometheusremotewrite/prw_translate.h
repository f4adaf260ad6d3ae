/* OTLP metrics → Prometheus Remote-Write 1.0, as a pure function: the wire bytes of an
 * ExportMetricsServiceRequest in, one or more packed (uncompressed) prometheus.WriteRequest
 * messages out, with counts of what was made and of the data points that could not be translated,
 * by reason. No I/O, no global state beyond the memory accounting, so that unit tests and a fuzz
 * target can call it directly.
 *
 * The rules are those of the OpenTelemetry specification (compatibility/
 * prometheus_and_openmetrics.md) as the reference collector (contrib prometheusremotewriteexporter
 * v0.162.0 with its default feature gates) applies them:
 *   - metric names: with suffixes, the name is cut into tokens at every character outside
 *     [a-zA-Z0-9:] (so runs of '_' collapse and leading/trailing ones go), the unit suffix
 *     (ms → milliseconds, By → bytes, "a/b" → a_per_b, {braces} dropped) is added unless a token
 *     already is that unit, `_total` ends monotonic cumulative sums, `_ratio` gauges of unit "1",
 *     the namespace goes in front, and a leading digit gets a '_' prefix; without suffixes the
 *     invalid characters become '_' and nothing is added;
 *   - label names: every character outside [a-zA-Z0-9] becomes '_' (runs are kept, as the
 *     reference's default PermissiveLabelSanitization gate does), a leading digit gets "key_";
 *     attributes whose names collide after that are joined with ';' in the order of their original
 *     names; empty values are dropped;
 *   - job = service.namespace/service.name, instance = service.instance.id, otel_scope_name,
 *     otel_scope_version and otel_scope_<attribute> on every series (unless disabled), external
 *     labels where no attribute has the name, and one target_info gauge per resource with its other
 *     attributes;
 *   - gauge → gauge; monotonic cumulative sum → counter; non-monotonic cumulative sum → gauge;
 *     histogram → _bucket{le} (cumulative, with +Inf), _sum (when present), _count; exponential
 *     histogram → native histogram (scale above 8 merged down to 8, below -4 dropped); summary →
 *     {quantile} series, _sum, _count. Delta and unspecified temporalities are dropped and counted:
 *     the reference does not convert them either, and a delta sent as a cumulative would be wrong;
 *   - the no-recorded-value flag becomes the stale marker NaN (0x7ff0000000000002);
 *   - samples of one series are sorted by time, and of two samples with the same timestamp the
 *     later one in the input is kept (Prometheus refuses a duplicate timestamp with another value).
 */
#ifndef OTC_PRW_TRANSLATE_H
#define OTC_PRW_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTC_PRW_DEFAULT_MAX_BATCH_BYTES 3000000

/* Why data points were not translated. */
enum otc_prw_drop_reason {
  OTC_PRW_DROP_DELTA_TEMPORALITY = 0,   /* "delta_temporality" */
  OTC_PRW_DROP_UNSPECIFIED_TEMPORALITY, /* "unspecified_temporality" */
  OTC_PRW_DROP_INVALID_NAME,            /* "invalid_metric_name": nothing left after sanitizing */
  OTC_PRW_DROP_INVALID_LABEL,     /* "invalid_label_name": an attribute key empty or all '_' */
  OTC_PRW_DROP_UNSUPPORTED_SCALE, /* "unsupported_scale": exponential histogram scale < -4 */
  OTC_PRW_DROP_COUNT
};

/* The drop reason's label value, e.g. "delta_temporality". */
const char *otc_prw_drop_reason_name(enum otc_prw_drop_reason r);

struct otc_prw_label {
  const char *name;
  const char *value;
};

/* Which resource attributes become labels of every series (resource_to_telemetry_conversion,
 * resource_constant_labels). */
enum otc_prw_resource_labels {
  OTC_PRW_RESOURCE_NONE = 0,
  OTC_PRW_RESOURCE_ALL,        /* enabled: true */
  OTC_PRW_RESOURCE_NO_SERVICE, /* enabled, exclude_service_attributes: true */
  OTC_PRW_RESOURCE_MATCH,      /* included / excluded patterns ('*' and '?' wildcards) */
};

struct otc_prw_settings {
  const char *namespace_; /* metric name prefix (sanitized here); NULL or "" for none */
  bool add_metric_suffixes;
  bool target_info;
  bool scope_info; /* otel_scope_* labels (disable_scope_info: false) */
  bool send_metadata;
  size_t max_batch_bytes; /* 0: OTC_PRW_DEFAULT_MAX_BATCH_BYTES */
  /* Names already sanitized and unique, values non-empty (the exporter checks its config). */
  const struct otc_prw_label *external_labels;
  size_t n_external_labels;
  enum otc_prw_resource_labels resource_labels;
  const char *const *resource_included; /* OTC_PRW_RESOURCE_MATCH */
  size_t n_resource_included;
  const char *const *resource_excluded;
  size_t n_resource_excluded;
};

/* One packed WriteRequest. */
struct otc_prw_request {
  uint8_t *data; /* malloc'd, owned by the write set */
  size_t len;
  size_t series, samples, histograms, exemplars, metadata;
};

struct otc_prw_write_set {
  struct otc_prw_request *requests; /* malloc'd array, owned */
  size_t n_requests;
  size_t series, samples, histograms, exemplars, metadata; /* totals over the requests */
  uint64_t points;                                         /* data points read */
  uint64_t dropped[OTC_PRW_DROP_COUNT];                    /* data points not translated */
  size_t charged; /* bytes of the requests charged to the memory accounting */
};

/* Translates the ExportMetricsServiceRequest at otlp (untrusted bytes: validated with a bounded
 * nesting depth before decoding). Fills *out, which the caller releases with
 * otc_prw_write_set_free (also after a failure). Series are cut into requests of at most
 * max_batch_bytes packed bytes each (a single series larger than that goes alone); metadata, when
 * asked for, follows in requests of its own. Nothing to send gives zero requests. Returns 0,
 * OTC_ERR_INVALID (undecodable input, nothing translated) or OTC_ERR_NOMEM. */
int otc_prw_translate(const uint8_t *otlp, size_t len, const struct otc_prw_settings *s,
                      struct otc_prw_write_set *out);

/* Working memory kept from one translation to the next, for one thread at a time: translating
 * every batch into freshly allocated memory faulted in every page of it again. What is kept stays
 * charged to the memory accounting, and is bounded (OTC_PRW_SCRATCH_KEEP bytes). */
struct otc_prw_scratch;

#define OTC_PRW_SCRATCH_KEEP (16 * 1024 * 1024)

/* A new, empty scratch (malloc'd; the caller frees it with otc_prw_scratch_free), or NULL when out
 * of memory. */
struct otc_prw_scratch *otc_prw_scratch_new(void);

/* Frees sc and the memory it keeps, releasing its charge. NULL is a no-op. */
void otc_prw_scratch_free(struct otc_prw_scratch *sc);

/* otc_prw_translate taking its working memory from sc and leaving it there afterwards; sc NULL
 * keeps nothing. The output is the same either way. */
int otc_prw_translate_with(struct otc_prw_scratch *sc, const uint8_t *otlp, size_t len,
                           const struct otc_prw_settings *s, struct otc_prw_write_set *out);

/* Frees the requests and releases their memory charge; resets *ws. NULL is a no-op. */
void otc_prw_write_set_free(struct otc_prw_write_set *ws);

/* --- the naming rules, exposed for tests and for the exporter's config checks --- */

enum otc_prw_metric_kind {
  OTC_PRW_KIND_GAUGE,        /* an OTLP gauge */
  OTC_PRW_KIND_COUNTER,      /* a monotonic sum */
  OTC_PRW_KIND_NONMONOTONIC, /* a non-monotonic sum (written as a gauge, but no _ratio) */
  OTC_PRW_KIND_HISTOGRAM,
  OTC_PRW_KIND_EXP_HISTOGRAM,
  OTC_PRW_KIND_SUMMARY,
};

/* The Prometheus name of a metric. Returns a malloc'd string (caller frees), or NULL when nothing
 * valid is left of the name (or out of memory). */
char *prw__metric_name(const char *name, const char *unit, enum otc_prw_metric_kind kind,
                       const char *namespace_, bool add_suffixes);
/* The Prometheus label name for an attribute key. Returns a malloc'd string (caller frees), or
 * NULL for a key that is empty or nothing but underscores after sanitizing. */
char *prw__label_name(const char *key);
/* The unit as metadata carries it ("ms" → "milliseconds", "By/s" → "bytes_per_second"); malloc'd.
 */
char *prw__unit_name(const char *unit);
/* A double as Go's strconv.FormatFloat(v, 'f', -1, 64) writes it (the le and quantile labels):
 * the fewest digits that read back, never an exponent. Returns buf. */
const char *prw__format_float(double v, char *buf, size_t cap);

#endif
