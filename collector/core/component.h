/* The one interface of every receiver, processor, exporter and extension: a const struct of
 * operations, one instance per component type, listed in the registry (registry.c). Adding a
 * component is a folder and one line in that table.
 *
 * Lifecycle: create (validate config, allocate; binds no port and starts no thread, so that
 * `collector validate` can create everything) → start → consume... → shutdown (stop accepting,
 * flush what is held; idempotent) → destroy. The service starts exporters first and receivers last,
 * and shuts down in the reverse order. */
#ifndef OTC_COMPONENT_H
#define OTC_COMPONENT_H

#include <stdbool.h>

#include "core/batch.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/signal.h"

/* Where a component sends its output. consume takes ownership of the batch reference, on success
 * and on failure, and returns 0 or an error code (errors.h): OTC_ERR_REFUSED and other retryable
 * codes push back to the client, the rest are final. */
struct otc_consumer {
  int (*consume)(void *ctx, struct otc_batch *b);
  void *ctx;
  /* The consumer accepts joined batches (batch.h: parts instead of data). The service sets it for
   * an exporter whose ops say so, and for a fan-out when all of its consumers do; a producer that
   * joins (the batch processor) reads it from its next consumer. */
  bool takes_parts;
};

static inline int otc_consume(const struct otc_consumer *c, struct otc_batch *b) {
  return c->consume(c->ctx, b);
}

enum otc_kind { OTC_KIND_RECEIVER, OTC_KIND_PROCESSOR, OTC_KIND_EXPORTER, OTC_KIND_EXTENSION };

struct otc_create_args {
  const char *id;           /* the component id as configured: "batch", "batch/2", "otlp/in" */
  const char *pipeline;     /* processors: the pipeline id ("traces/2"); NULL for other kinds */
  enum otc_signal signal;   /* processors: their pipeline's signal */
  struct otc_consumer next; /* processors: the next stage of their pipeline */
  /* receivers: the consumer for each signal; .consume is NULL where no pipeline takes that signal
   * from this receiver (the receiver then answers that signal's requests with 404/UNIMPLEMENTED).
   */
  struct otc_consumer next_by_signal[OTC_SIGNAL_COUNT];
  const struct otc_cfg_node *root; /* the whole config, for references to extensions */
  /* Finds an extension that service::extensions enables (extensions are created before every other
   * component) by its id, e.g. "bearertokenauth/in" or "file_storage": returns its instance ctx
   * when the id is enabled and its type (or an alias of it) is `type`, else NULL. The ctx lives
   * until the service is destroyed, after every other component. NULL when a component is built
   * alone (unit tests); call it through otc_find_extension. */
  void *(*find_extension)(const void *svc, const char *id, const char *type);
  const void *svc;
};

/* args->find_extension(args->svc, id, type), or NULL when the component was built alone. */
static inline void *otc_find_extension(const struct otc_create_args *args, const char *id,
                                       const char *type) {
  return args->find_extension ? args->find_extension(args->svc, id, type) : NULL;
}

struct otc_component_ops {
  const char *type;           /* the config type name: "otlp", "batch", "debug" */
  const char *const *aliases; /* other accepted type names (NULL-terminated), or NULL */
  enum otc_kind kind;
  unsigned signals; /* OTC_SIGNAL_BIT mask of supported signals */
  bool mutates;     /* processors that change data get their own copy in a fan-out */

  /* Validates cfg (which may be NULL or a null node for an empty config) and returns a new
   * instance, or NULL with err filled. Must not bind ports or start threads. */
  void *(*create)(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                  struct otc_cfg_err *err);
  int (*start)(void *ctx);                        /* may be NULL */
  int (*consume)(void *ctx, struct otc_batch *b); /* processors and exporters */
  /* Exporters: true when this instance sends joined batches (batch.h) as they are, without
   * needing their bytes in one buffer. May be NULL (false). Asked once, after create. */
  bool (*takes_parts)(void *ctx);
  int (*shutdown)(void *ctx); /* may be NULL; idempotent; flushes */
  void (*destroy)(void *ctx); /* may be NULL; destroy(NULL) is a no-op */
};

/* The registry: every component type, NULL-terminated. */
extern const struct otc_component_ops *const otc_components[];
/* Finds a component type by kind and type name or alias; NULL if unknown. */
const struct otc_component_ops *otc_component_find(enum otc_kind kind, const char *type);

/* Splits an id "type/name" into its type (copied into buf) and returns buf; "otlp" → "otlp". */
const char *otc_component_type_of(const char *id, char *buf, size_t buflen);

/* True once every component started and the service serves (for health_check). */
bool otc_service_ready(void);

#endif
