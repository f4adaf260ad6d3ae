/* The config path: YAML from otc_cfg_load_string, then every component created from it by
 * otc_service_create (which validates the whole config as `collector validate` does) and destroyed
 * again, without starting anything (create binds no port and starts no thread).
 *
 * Invariants: a refusal always names a reason; loading the same text twice gives the same
 * outcome; nothing is left behind but the self-metrics registry, which is reset after each input.
 */
#include <stdint.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/service.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  /* Warnings (unsupported keys) would be logged for most inputs, which slows the run for nothing.
   */
  otc_log_set_level(OTC_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct otc_cfg_err err;
  memset(&err, 0, sizeof err);
  struct otc_cfg_node *root = otc_cfg_load_string((const char *)data, size, "fuzz.yaml", &err);
  if (!root) {
    FUZZ_CHECK(err.msg[0] != '\0');
    return 0;
  }
  struct otc_cfg_err err2;
  memset(&err2, 0, sizeof err2);
  struct otc_cfg_node *again = otc_cfg_load_string((const char *)data, size, "fuzz.yaml", &err2);
  FUZZ_CHECK(again != NULL);
  otc_cfg_free(again);

  memset(&err, 0, sizeof err);
  struct otc_service *svc = otc_service_create(root, &err);
  if (!svc)
    FUZZ_CHECK(err.msg[0] != '\0');
  otc_service_destroy(svc);
  otc_cfg_free(root);
  otc_metrics_reset();
  return 0;
}
