/* The remote-write exporter's translation (otc_prw_translate): OTLP metrics wire bytes in, packed
 * WriteRequests out, each decoded again to check it against the Remote-Write 1.0 rules.
 *
 * Input: byte 0 holds the options (bit 0: no metric suffixes; bit 1: no target_info; bit 2: no
 * scope labels; bit 3: metadata; bits 4-5: resource attributes as labels: none, all, all but
 * service, matching "host.*"; bit 6: batches of at most 512 bytes; bit 7: a namespace); the rest is
 * the ExportMetricsServiceRequest.
 *
 * Invariants: the translator accepts exactly what the wire scan accepts; every request decodes as
 * a WriteRequest; the counts it reports are the counts in the requests; each series has labels
 * sorted by name with no duplicates and no empty names or values, a valid __name__, valid label
 * names, and samples in strictly increasing time order; data points read equal the scan's; a
 * request over the batch size holds a single series; no memory charge outlives the write set. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/errors.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
#include "fuzz_common.h"
#include "prometheusremotewrite/prw_translate.h"

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prometheus/remote.pb-c.h"

static bool valid_name(const char *s, bool metric) {
  if (!s[0])
    return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

static void check_series(const Prometheus__TimeSeries *ts) {
  bool has_name = false;
  FUZZ_CHECK(ts->n_labels > 0);
  for (size_t i = 0; i < ts->n_labels; i++) {
    const Prometheus__Label *l = ts->labels[i];
    FUZZ_CHECK(l->name[0] != '\0' && l->value[0] != '\0');
    if (strcmp(l->name, "__name__") == 0) {
      has_name = true;
      FUZZ_CHECK(valid_name(l->value, true));
    } else {
      FUZZ_CHECK(valid_name(l->name, false));
    }
    if (i > 0)
      FUZZ_CHECK(strcmp(ts->labels[i - 1]->name, l->name) < 0);
  }
  FUZZ_CHECK(has_name);
  for (size_t i = 1; i < ts->n_samples; i++)
    FUZZ_CHECK(ts->samples[i - 1]->timestamp < ts->samples[i]->timestamp);
  for (size_t i = 1; i < ts->n_histograms; i++)
    FUZZ_CHECK(ts->histograms[i - 1]->timestamp < ts->histograms[i]->timestamp);
  FUZZ_CHECK(ts->n_samples + ts->n_histograms > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const included[] = {"host.*"};
  if (size < 1)
    return 0;
  uint8_t opt = data[0];
  size_t len = size - 1;
  uint8_t *buf = malloc(len ? len : 1);
  FUZZ_CHECK(buf != NULL);
  memcpy(buf, data + 1, len);
  uint64_t held_before = otc_mem_held();

  static const enum otc_prw_resource_labels modes[] = {OTC_PRW_RESOURCE_NONE, OTC_PRW_RESOURCE_ALL,
                                                       OTC_PRW_RESOURCE_NO_SERVICE,
                                                       OTC_PRW_RESOURCE_MATCH};
  struct otc_prw_settings s = {
      .namespace_ = (opt & 128) ? "ns" : NULL,
      .add_metric_suffixes = !(opt & 1),
      .target_info = !(opt & 2),
      .scope_info = !(opt & 4),
      .send_metadata = (opt & 8) != 0,
      .max_batch_bytes = (opt & 64) ? 512 : 0,
      .resource_labels = modes[(opt >> 4) & 3],
      .resource_included = included,
      .n_resource_included = 1,
  };

  struct otc_wire_stats st;
  char why[160];
  memset(&st, 0, sizeof st);
  bool valid = otc_wire_scan(OTC_SIGNAL_METRICS, buf, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why,
                             sizeof why) == 0;
  struct otc_prw_write_set ws;
  memset(&ws, 0, sizeof ws);
  int rc = otc_prw_translate(buf, len, &s, &ws);
  if (!valid) {
    FUZZ_CHECK(rc == OTC_ERR_INVALID);
    goto cleanup;
  }
  if (rc == OTC_ERR_INVALID) {
    /* Only for bytes protobuf-c cannot decode (see fuzz_otlp_proto.c). */
    ProtobufCMessage *m = protobuf_c_message_unpack(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        NULL, len, buf);
    FUZZ_CHECK(m == NULL);
    goto cleanup;
  }
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(ws.points == st.items);
  size_t series = 0, samples = 0, histograms = 0, metadata = 0;
  size_t limit = s.max_batch_bytes ? s.max_batch_bytes : OTC_PRW_DEFAULT_MAX_BATCH_BYTES;
  for (size_t r = 0; r < ws.n_requests; r++) {
    const struct otc_prw_request *req = &ws.requests[r];
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, req->len, req->data);
    FUZZ_CHECK(wr != NULL);
    FUZZ_CHECK(wr->n_timeseries == req->series);
    FUZZ_CHECK(wr->n_metadata == req->metadata);
    FUZZ_CHECK(req->len <= limit || wr->n_timeseries + wr->n_metadata == 1);
    size_t rs = 0, rh = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
      check_series(wr->timeseries[i]);
      rs += wr->timeseries[i]->n_samples;
      rh += wr->timeseries[i]->n_histograms;
    }
    FUZZ_CHECK(rs == req->samples && rh == req->histograms);
    for (size_t i = 0; i < wr->n_metadata; i++)
      FUZZ_CHECK(valid_name(wr->metadata[i]->metric_family_name, true));
    series += req->series;
    samples += req->samples;
    histograms += req->histograms;
    metadata += req->metadata;
    prometheus__write_request__free_unpacked(wr, NULL);
  }
  FUZZ_CHECK(series == ws.series && samples == ws.samples && histograms == ws.histograms &&
             metadata == ws.metadata);

cleanup:
  otc_prw_write_set_free(&ws);
  free(buf);
  FUZZ_CHECK(otc_mem_held() == held_before);
  return 0;
}
