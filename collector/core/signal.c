#include "core/signal.h"

#include <string.h>

#include "core/errors.h"

static const char *const signal_names[OTC_SIGNAL_COUNT] = {"traces", "metrics", "logs"};
static const char *const item_names[OTC_SIGNAL_COUNT] = {"spans", "metric_points", "log_records"};

const char *otc_signal_name(enum otc_signal s) {
  return (unsigned)s < OTC_SIGNAL_COUNT ? signal_names[s] : "unknown";
}

const char *otc_signal_item_name(enum otc_signal s) {
  return (unsigned)s < OTC_SIGNAL_COUNT ? item_names[s] : "items";
}

int otc_signal_parse(const char *name, enum otc_signal *out) {
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++) {
    if (strcmp(name, signal_names[i]) == 0) {
      *out = (enum otc_signal)i;
      return 0;
    }
  }
  return OTC_ERR_CONFIG;
}

const char *otc_strerror(int err) {
  switch (err) {
  case OTC_OK: return "ok";
  case OTC_ERR_NOMEM: return "out of memory";
  case OTC_ERR_INVALID: return "invalid data";
  case OTC_ERR_REFUSED: return "refused: over the memory limit or queue full";
  case OTC_ERR_CONFIG: return "invalid configuration";
  case OTC_ERR_IO: return "input/output error";
  case OTC_ERR_PERMANENT: return "rejected permanently by the destination";
  case OTC_ERR_RETRYABLE: return "transient failure of the destination";
  case OTC_ERR_TOO_LARGE: return "too large";
  case OTC_ERR_SHUTDOWN: return "shutting down";
  default: return "unknown error";
  }
}
