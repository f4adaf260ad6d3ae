/* The nop exporter, otelcol's `nop`: accepts every batch and drops it, counting it as sent. It lets
 * a benchmark measure the receivers and the pipeline without any exporter cost. */
#include <stdlib.h>

#include "core/component.h"
#include "core/metrics.h"

struct nop_exporter {
  struct otc_exporter_metrics metrics;
};

static void *nop_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                        struct otc_cfg_err *err) {
  static const struct otc_cfg_field fields[] = {{NULL, 0, NULL, 0, 0, 0}};
  struct nop_exporter *n = NULL;
  /* No keys: an empty table refuses any, as otelcol's nop has no configuration. */
  if (otc_cfg_apply(fields, cfg, NULL, args->id, err) != 0)
    return NULL;
  n = calloc(1, sizeof *n);
  if (!n) {
    otc_cfg_error(err, cfg, "out of memory");
    return NULL;
  }
  otc_exporter_metrics_init(&n->metrics, args->id ? args->id : "nop");
  return n;
}

static int nop_consume(void *ctx, struct otc_batch *b) {
  struct nop_exporter *n = ctx;
  if ((unsigned)b->signal < OTC_SIGNAL_COUNT)
    otc_counter_add(n->metrics.sent[b->signal], b->items);
  otc_batch_unref(b);
  return 0;
}

static void nop_destroy(void *ctx) {
  free(ctx);
}

const struct otc_component_ops otc_exporter_nop = {
    .type = "nop",
    .aliases = NULL,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = nop_create,
    .start = NULL,
    .consume = nop_consume,
    .shutdown = NULL,
    .destroy = nop_destroy,
};
