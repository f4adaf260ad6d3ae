/* The loki exporter's translation (otc_loki__encode): OTLP logs wire bytes in, a Loki push body
 * out, decoded again to check it.
 *
 * Input: byte 0 holds the options (bit 0: JSON instead of protobuf; bit 1: structured metadata
 * off, so pairs go into the line as logfmt; bit 2: no level label; bit 3: the record attributes
 * "user" and "http.method" promoted to labels; bit 4: no resource labels at all); the rest is the
 * ExportLogsServiceRequest.
 *
 * Invariants: the encoder accepts what the wire scan accepts (but for what protobuf-c cannot
 * decode, refused as invalid, never as out of memory); a protobuf body decodes as a
 * PushRequest with as many entries as were reported and as there are log records, each stream's
 * labels a well-formed selector `{name="value", ...}` with valid, sorted, distinct names and its
 * entries in timestamp order; a JSON body parses with the same counts; no memory charge outlives
 * the call. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/errors.h"
#include "core/memory.h"
#include "core/otlp_wire.h"
#include "fuzz_common.h"
#include "loki/loki_encode.h"

#include "loki/push.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

static bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

/* Parses a selector {a="x", b="y"} (values escaped as Go's %q does: backslash escapes) and checks
 * the names. */
static void check_selector(const char *sel) {
  size_t n = strlen(sel);
  char prev[1024] = "";
  FUZZ_CHECK(n >= 2 && sel[0] == '{' && sel[n - 1] == '}');
  size_t i = 1;
  int labels = 0;
  while (i < n - 1) {
    if (labels > 0) {
      FUZZ_CHECK(sel[i] == ',' && sel[i + 1] == ' ');
      i += 2;
    }
    size_t start = i;
    while (i < n - 1 && name_char(sel[i], i == start))
      i++;
    size_t nlen = i - start;
    FUZZ_CHECK(nlen > 0 && nlen < sizeof prev);
    FUZZ_CHECK(sel[i] == '=' && sel[i + 1] == '"');
    char name[1024];
    memcpy(name, sel + start, nlen);
    name[nlen] = '\0';
    FUZZ_CHECK(labels == 0 || strcmp(prev, name) < 0); /* sorted and distinct */
    memcpy(prev, name, nlen + 1);
    i += 2;
    while (i < n - 1 && sel[i] != '"') {
      if (sel[i] == '\\') {
        FUZZ_CHECK(i + 1 < n - 1);
        i++;
      }
      i++;
    }
    FUZZ_CHECK(i < n - 1 && sel[i] == '"');
    i++;
    labels++;
  }
  FUZZ_CHECK(labels > 0); /* at least service_name */
}

static uint64_t ts_ns(const Google__Protobuf__Timestamp *t) {
  return t ? (uint64_t)t->seconds * 1000000000ull + (uint64_t)t->nanos : 0;
}

static void check_protobuf(const uint8_t *out, size_t out_len, size_t n_entries) {
  Logproto__PushRequest *pr = logproto__push_request__unpack(NULL, out_len, out);
  FUZZ_CHECK(pr != NULL);
  size_t entries = 0;
  for (size_t i = 0; i < pr->n_streams; i++) {
    const Logproto__StreamAdapter *st = pr->streams[i];
    check_selector(st->labels);
    FUZZ_CHECK(st->n_entries > 0);
    for (size_t k = 0; k < pr->n_streams; k++)
      FUZZ_CHECK(k == i || strcmp(pr->streams[k]->labels, st->labels) != 0);
    for (size_t e = 0; e < st->n_entries; e++) {
      const Logproto__EntryAdapter *en = st->entries[e];
      FUZZ_CHECK(en->timestamp != NULL);
      FUZZ_CHECK(en->timestamp->nanos >= 0 && en->timestamp->nanos < 1000000000);
      if (e > 0)
        FUZZ_CHECK(ts_ns(st->entries[e - 1]->timestamp) <= ts_ns(en->timestamp));
      for (size_t m = 0; m < en->n_structuredmetadata; m++)
        FUZZ_CHECK(en->structuredmetadata[m]->name[0] != '\0');
    }
    entries += st->n_entries;
  }
  FUZZ_CHECK(entries == n_entries);
  logproto__push_request__free_unpacked(pr, NULL);
}

static void check_json(const uint8_t *out, size_t out_len, size_t n_entries) {
  json_error_t jerr;
  json_t *doc = json_loadb((const char *)out, out_len, 0, &jerr);
  FUZZ_CHECK(doc != NULL);
  json_t *streams = json_object_get(doc, "streams");
  FUZZ_CHECK(json_is_array(streams));
  size_t entries = 0, i;
  json_t *st;
  json_array_foreach(streams, i, st) {
    FUZZ_CHECK(json_is_object(json_object_get(st, "stream")));
    json_t *values = json_object_get(st, "values");
    FUZZ_CHECK(json_is_array(values) && json_array_size(values) > 0);
    size_t k;
    json_t *v;
    json_array_foreach(values, k, v) {
      FUZZ_CHECK(json_is_array(v) && json_array_size(v) >= 2);
      FUZZ_CHECK(json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1)));
    }
    entries += json_array_size(values);
  }
  FUZZ_CHECK(entries == n_entries);
  json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const record_labels[] = {"user", "http.method"};
  if (size < 1)
    return 0;
  uint8_t opt = data[0];
  size_t len = size - 1;
  uint8_t *buf = malloc(len ? len : 1);
  FUZZ_CHECK(buf != NULL);
  memcpy(buf, data + 1, len);
  uint64_t held_before = otc_mem_held();

  struct loki_mapping_cfg cfg = {
      .resource_labels = (opt & 16) ? NULL : otc_loki_default_resource_labels,
      .n_resource_labels = (opt & 16) ? 0 : otc_loki_default_resource_labels_count,
      .record_labels = (opt & 8) ? record_labels : NULL,
      .n_record_labels = (opt & 8) ? 2 : 0,
      .level_label = !(opt & 4),
      .structured_metadata = !(opt & 2),
      .now_ns = 1700000000000000000ll,
  };
  enum otc_loki_format format = (opt & 1) ? OTC_LOKI_FORMAT_JSON : OTC_LOKI_FORMAT_PROTOBUF;

  struct otc_wire_stats st;
  char why[160];
  memset(&st, 0, sizeof st);
  bool valid = otc_wire_scan(OTC_SIGNAL_LOGS, buf, len, OTC_WIRE_DEFAULT_MAX_DEPTH, &st, why,
                             sizeof why) == 0;
  uint8_t *out = NULL;
  size_t out_len = 0, n_entries = 0;
  int rc = otc_loki__encode(buf, len, &cfg, format, &out, &out_len, &n_entries);
  if (!valid) {
    FUZZ_CHECK(rc == OTC_ERR_INVALID);
    FUZZ_CHECK(out == NULL);
    goto cleanup;
  }
  if (rc == OTC_ERR_INVALID) {
    /* Only for bytes protobuf-c cannot decode (see fuzz_otlp_proto.c). */
    ProtobufCMessage *m = protobuf_c_message_unpack(
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor, NULL,
        len, buf);
    FUZZ_CHECK(m == NULL);
    goto cleanup;
  }
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(n_entries == st.items);
  if (format == OTC_LOKI_FORMAT_PROTOBUF)
    check_protobuf(out, out_len, n_entries);
  else
    check_json(out, out_len, n_entries);

cleanup:
  free(out);
  free(buf);
  FUZZ_CHECK(otc_mem_held() == held_before);
  return 0;
}
