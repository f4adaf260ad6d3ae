/* The service: the whole running collector built from a config tree — extensions, the telemetry
 * endpoint, and the pipelines (receivers → processors → fan-out → exporters). */
#ifndef OTC_SERVICE_H
#define OTC_SERVICE_H

#include "core/config.h"

#include <stdbool.h>

struct otc_service;

/* Validates the config and creates every component (no port bound, no thread started). root must
 * outlive the service. Returns NULL with err filled on any config error. */
struct otc_service *otc_service_create(const struct otc_cfg_node *root, struct otc_cfg_err *err);
/* Starts extensions, the telemetry endpoint, exporters, processors and receivers, in that order.
 * On failure what was started is shut down again and an error code is returned. */
int otc_service_start(struct otc_service *svc);
/* Stops accepting (receivers first), flushes processors into exporters, then stops exporters and
 * extensions. Idempotent. */
void otc_service_shutdown(struct otc_service *svc);
/* Frees everything; NULL is a no-op. Calls otc_service_shutdown if needed. */
void otc_service_destroy(struct otc_service *svc);

/* For tests: whether what the processors of pipeline `id` ("traces", "logs/2") hand on, the
 * pipeline's exporters or their fan-out, takes joined batches (component.h). False for an unknown
 * id. */
bool otc_service__pipeline_takes_parts(const struct otc_service *svc, const char *id);

#endif
