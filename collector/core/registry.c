/* The registry: every component type the collector knows. Adding a component is a folder and one
 * line here. */
#include <string.h>

#include "core/component.h"

extern const struct otc_component_ops otc_receiver_otlp;
extern const struct otc_component_ops otc_processor_batch;
extern const struct otc_component_ops otc_processor_memory_limiter;
extern const struct otc_component_ops otc_exporter_debug;
extern const struct otc_component_ops otc_exporter_file;
extern const struct otc_component_ops otc_exporter_nop;
extern const struct otc_component_ops otc_extension_health_check;
/* registry: extension externs (one line each, kept in this order) */
extern const struct otc_component_ops otc_extension_bearertokenauth;
extern const struct otc_component_ops otc_extension_file_storage;
/* registry: exporter externs (one line each, kept in this order) */
extern const struct otc_component_ops otc_exporter_prometheus_remote_write;
extern const struct otc_component_ops otc_exporter_loki;
extern const struct otc_component_ops otc_exporter_otlp_grpc, otc_exporter_otlp_http;

const struct otc_component_ops *const otc_components[] = {
    &otc_receiver_otlp,
    &otc_processor_batch,
    &otc_processor_memory_limiter,
    &otc_exporter_debug,
    &otc_exporter_file,
    &otc_exporter_nop,
    &otc_extension_health_check,
    /* registry: extension entries (one line each, kept in this order) */
    &otc_extension_bearertokenauth,
    &otc_extension_file_storage,
    /* registry: exporter entries (one line each, kept in this order) */
    &otc_exporter_prometheus_remote_write,
    &otc_exporter_loki,
    &otc_exporter_otlp_grpc, &otc_exporter_otlp_http,
    NULL,
};

const struct otc_component_ops *otc_component_find(enum otc_kind kind, const char *type) {
  for (size_t i = 0; otc_components[i]; i++) {
    const struct otc_component_ops *ops = otc_components[i];
    if (ops->kind != kind)
      continue;
    if (strcmp(ops->type, type) == 0)
      return ops;
    for (size_t j = 0; ops->aliases && ops->aliases[j]; j++) {
      if (strcmp(ops->aliases[j], type) == 0)
        return ops;
    }
  }
  return NULL;
}

const char *otc_component_type_of(const char *id, char *buf, size_t buflen) {
  size_t n = strcspn(id, "/");
  if (n >= buflen)
    n = buflen - 1;
  memcpy(buf, id, n);
  buf[n] = '\0';
  return buf;
}
