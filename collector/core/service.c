/* The service: builds the component graph from the config tree and runs its lifecycle.
 *
 * Graph: each pipeline gets its own processor instances (as in the OpenTelemetry Collector);
 * receivers and exporters are created once per id and shared by every pipeline that names them.
 * A pipeline ends in a fan-out to its exporters; a receiver feeding several pipelines of a signal
 * feeds a fan-out over their first stages. A fan-out hands the same batch to every consumer (one
 * reference each) and copies only for consumers that mutate data. */
#include "core/service.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/net.h"
#include "core/metrics.h"

#define MAX_ID 128

static atomic_bool service_ready;

bool otc_service_ready(void) {
  return atomic_load(&service_ready);
}

struct instance {
  const struct otc_component_ops *ops;
  void *ctx;
  const char *id; /* points into the config tree */
  bool started;
};

struct fanout {
  size_t n;
  struct otc_consumer *out;
  bool *copy; /* out[i] mutates data: it gets a private copy */
};

struct pipeline {
  const char *id;
  enum otc_signal signal;
  const struct otc_cfg_node *receivers, *processors, *exporters; /* sequences of ids */
  struct instance *procs;                                        /* in config order */
  size_t n_procs;
  struct otc_consumer head; /* what receivers feed: the first processor, or the exporters */
  struct otc_consumer tail; /* what the last processor feeds: the exporters, or their fan-out */
};

struct otc_service {
  const struct otc_cfg_node *root;
  struct instance *extensions, *exporters, *receivers;
  size_t n_extensions, n_exporters, n_receivers;
  struct pipeline *pipelines;
  size_t n_pipelines;
  struct fanout **fanouts; /* every fan-out built, to free */
  size_t n_fanouts;
  bool metrics_enabled;
  char metrics_host[256];
  int metrics_port;
  struct otc_metrics_render_opts metrics_opts;
  bool telemetry_started, started, shut_down;
};

static const char *const kind_section[] = {"receivers", "processors", "exporters", "extensions"};
static const char *const kind_name[] = {"receiver", "processor", "exporter", "extension"};

/* --- fan-out --- */

static int fanout_consume(void *ctx, struct otc_batch *b) {
  struct fanout *f = ctx;
  int rc = 0;
  for (size_t i = 0; i < f->n; i++) {
    struct otc_batch *x;
    if (f->copy[i]) {
      int err = 0;
      x = otc_batch_copy(b->signal, b->data, b->len, b->items, false, &err);
      if (!x) {
        rc = rc ? rc : err;
        continue;
      }
    } else {
      x = otc_batch_ref(b);
    }
    /* Every consumer gets the data even when an earlier one failed; the first error is what the
     * caller sees (a retrying client may then duplicate into the consumers that succeeded, as with
     * the OpenTelemetry Collector's fan-out). */
    int r = otc_consume(&f->out[i], x);
    if (r != 0 && rc == 0)
      rc = r;
  }
  otc_batch_unref(b);
  return rc;
}

/* Returns the consumer for a list of consumers: the consumer itself when there is one that does not
 * need a copy, else a fan-out over them (registered in svc for freeing). */
static int make_fanout(struct otc_service *svc, struct otc_consumer *outs, bool *copy, size_t n,
                       struct otc_consumer *result) {
  if (n == 1 && !copy[0]) {
    *result = outs[0];
    return 0;
  }
  /* A fan-out hands the same batch on, so it takes joined batches when every consumer does (a
   * consumer that mutates gets a copy of the bytes, which needs them in one buffer). */
  bool takes_parts = true;
  for (size_t i = 0; i < n; i++)
    takes_parts = takes_parts && outs[i].takes_parts && !copy[i];
  struct fanout *f = calloc(1, sizeof *f);
  struct fanout **grown = realloc(svc->fanouts, (svc->n_fanouts + 1) * sizeof *grown);
  if (!f || !grown) {
    free(f);
    if (grown)
      svc->fanouts = grown;
    return OTC_ERR_NOMEM;
  }
  svc->fanouts = grown;
  f->out = malloc(n * sizeof *f->out);
  f->copy = malloc(n * sizeof *f->copy);
  if (!f->out || !f->copy) {
    free(f->out);
    free(f->copy);
    free(f);
    return OTC_ERR_NOMEM;
  }
  memcpy(f->out, outs, n * sizeof *outs);
  memcpy(f->copy, copy, n * sizeof *copy);
  f->n = n;
  svc->fanouts[svc->n_fanouts++] = f;
  result->consume = fanout_consume;
  result->ctx = f;
  result->takes_parts = takes_parts;
  return 0;
}

/* --- config helpers --- */

/* Finds the definition node of id in section (e.g. "exporters"), or NULL. */
static const struct otc_cfg_node *find_def(const struct otc_cfg_node *root, enum otc_kind kind,
                                           const char *id, bool *defined) {
  const struct otc_cfg_node *sec = otc_cfg_get(root, kind_section[kind]);
  for (size_t i = 0; sec && sec->type == OTC_CFG_MAP && i < sec->n_children; i++) {
    if (strcmp(sec->children[i]->key, id) == 0) {
      *defined = true;
      return sec->children[i];
    }
  }
  *defined = false;
  return NULL;
}

/* Checks an id's syntax ("type" or "type/name") and finds its type in the registry. */
static const struct otc_component_ops *lookup_type(enum otc_kind kind, const char *id,
                                                   const struct otc_cfg_node *at,
                                                   struct otc_cfg_err *err) {
  char type[MAX_ID];
  const char *slash = strchr(id, '/');
  if (strlen(id) >= MAX_ID || id[0] == '\0' || id[0] == '/' || (slash && slash[1] == '\0')) {
    otc_cfg_error(err, at, "invalid component id \"%s\" (want type or type/name)", id);
    return NULL;
  }
  otc_component_type_of(id, type, sizeof type);
  const struct otc_component_ops *ops = otc_component_find(kind, type);
  if (!ops) {
    char known[512] = "";
    size_t n = 0;
    for (size_t i = 0; otc_components[i]; i++) {
      if (otc_components[i]->kind == kind && n < sizeof known)
        n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", n ? ", " : "",
                              otc_components[i]->type);
    }
    otc_cfg_error(err, at, "unknown %s type \"%s\" for id \"%s\" (known: %s)", kind_name[kind],
                  type, id, known);
  }
  return ops;
}

/* Checks that every entry of a section names a known component type. */
static int check_section(const struct otc_cfg_node *root, enum otc_kind kind,
                         struct otc_cfg_err *err) {
  const struct otc_cfg_node *sec = otc_cfg_get(root, kind_section[kind]);
  if (!sec || sec->type == OTC_CFG_NULL)
    return 0;
  if (sec->type != OTC_CFG_MAP)
    return otc_cfg_error(err, sec, "expected a map of components");
  for (size_t i = 0; i < sec->n_children; i++) {
    const struct otc_cfg_node *c = sec->children[i];
    if (!lookup_type(kind, c->key, c, err))
      return OTC_ERR_CONFIG;
  }
  return 0;
}

/* --- instances --- */

static void *find_extension(const void *svcp, const char *id, const char *type) {
  const struct otc_service *svc = svcp;
  for (size_t i = 0; svc && i < svc->n_extensions; i++) {
    const struct instance *e = &svc->extensions[i];
    if (strcmp(e->id, id) != 0)
      continue;
    if (strcmp(e->ops->type, type) == 0)
      return e->ctx;
    for (size_t j = 0; e->ops->aliases && e->ops->aliases[j]; j++) {
      if (strcmp(e->ops->aliases[j], type) == 0)
        return e->ctx;
    }
    return NULL;
  }
  return NULL;
}

static int create_instance(struct instance *inst, enum otc_kind kind, const char *id,
                           const struct otc_cfg_node *cfg, const struct otc_create_args *base,
                           const struct otc_cfg_node *at, struct otc_cfg_err *err) {
  const struct otc_component_ops *ops = lookup_type(kind, id, at, err);
  if (!ops)
    return OTC_ERR_CONFIG;
  struct otc_create_args args = *base;
  args.id = id;
  args.find_extension = find_extension;
  void *ctx = ops->create(&args, cfg, err);
  if (!ctx) {
    if (err->msg[0] == '\0')
      otc_cfg_error(err, at, "%s \"%s\": invalid configuration", kind_name[kind], id);
    return OTC_ERR_CONFIG;
  }
  inst->ops = ops;
  inst->ctx = ctx;
  inst->id = id;
  inst->started = false;
  return 0;
}

static void destroy_instance(struct instance *inst) {
  if (inst->ops && inst->ops->destroy)
    inst->ops->destroy(inst->ctx);
  inst->ops = NULL;
  inst->ctx = NULL;
}

static struct instance *find_instance(struct instance *arr, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(arr[i].id, id) == 0)
      return &arr[i];
  }
  return NULL;
}

/* Validates a component that no pipeline uses by creating and destroying it, as the Collector
 * validates every configured component. */
static int validate_unused(const struct otc_service *svc, enum otc_kind kind, struct instance *used,
                           size_t n_used, struct otc_cfg_err *err) {
  const struct otc_cfg_node *root = svc->root;
  const struct otc_cfg_node *sec = otc_cfg_get(root, kind_section[kind]);
  for (size_t i = 0; sec && sec->type == OTC_CFG_MAP && i < sec->n_children; i++) {
    const struct otc_cfg_node *c = sec->children[i];
    if (kind != OTC_KIND_PROCESSOR && find_instance(used, n_used, c->key))
      continue;
    struct otc_create_args args = {.root = root, .signal = OTC_SIGNAL_TRACES, .svc = svc};
    struct instance tmp = {0};
    if (create_instance(&tmp, kind, c->key, c, &args, c, err) != 0)
      return OTC_ERR_CONFIG;
    destroy_instance(&tmp);
  }
  return 0;
}

/* --- service.telemetry --- */

struct telemetry_logs_cfg {
  const char *level, *encoding;
};
static const struct otc_cfg_field telemetry_logs_fields[] = {
    {"level", OTC_CFGK_STRING, "info", offsetof(struct telemetry_logs_cfg, level), 0, 0},
    {"encoding", OTC_CFGK_STRING, "json", offsetof(struct telemetry_logs_cfg, encoding), 0, 0},
    {"development", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"disable_caller", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"disable_stacktrace", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"sampling", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"output_paths", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"error_output_paths", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"initial_fields", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"processors", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct telemetry_metrics_cfg {
  const char *level, *address;
  const struct otc_cfg_node *readers;
};
static const struct otc_cfg_field telemetry_metrics_fields[] = {
    {"level", OTC_CFGK_STRING, "normal", offsetof(struct telemetry_metrics_cfg, level), 0, 0},
    {"address", OTC_CFGK_STRING, NULL, offsetof(struct telemetry_metrics_cfg, address), 0, 0},
    {"readers", OTC_CFGK_NODE, NULL, offsetof(struct telemetry_metrics_cfg, readers), 0, 0},
    {"views", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct prometheus_reader_cfg {
  const char *host;
  int64_t port;
  bool without_type_suffix, without_units, without_scope_info;
};
static const struct otc_cfg_field prometheus_reader_fields[] = {
    {"host", OTC_CFGK_STRING, "127.0.0.1", offsetof(struct prometheus_reader_cfg, host), 0, 0},
    {"port", OTC_CFGK_INT, "8888", offsetof(struct prometheus_reader_cfg, port), 0, 65535},
    {"without_type_suffix", OTC_CFGK_BOOL, "true",
     offsetof(struct prometheus_reader_cfg, without_type_suffix), 0, 0},
    {"without_units", OTC_CFGK_BOOL, "true", offsetof(struct prometheus_reader_cfg, without_units),
     0, 0},
    {"without_scope_info", OTC_CFGK_BOOL, "true",
     offsetof(struct prometheus_reader_cfg, without_scope_info), 0, 0},
    {"with_resource_constant_labels", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"translation_strategy", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

static int parse_telemetry(struct otc_service *svc, const struct otc_cfg_node *tel,
                           struct otc_cfg_err *err) {
  static const struct otc_cfg_field fields[] = {
      {"logs", OTC_CFGK_NODE, NULL, 0, 0, 0},
      {"metrics", OTC_CFGK_NODE, NULL, sizeof(void *), 0, 0},
      {"resource", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
      {"traces", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  const struct otc_cfg_node *parts[2] = {NULL, NULL};
  if (otc_cfg_apply(fields, tel, parts, "service::telemetry", err) != 0)
    return OTC_ERR_CONFIG;

  struct telemetry_logs_cfg logs;
  if (otc_cfg_apply(telemetry_logs_fields, parts[0], &logs, "service::telemetry::logs", err) != 0)
    return OTC_ERR_CONFIG;
  enum otc_log_level level;
  if (otc_log_parse_level(logs.level, &level) != 0)
    return otc_cfg_error(err, otc_cfg_get(parts[0], "level"),
                         "unknown log level \"%s\" (debug, info, warn, error)", logs.level);
  otc_log_set_level(level);
  if (strcmp(logs.encoding, "json") != 0)
    otc_warn(NULL, "service::telemetry::logs::encoding \"%s\": logs are always JSON lines",
             logs.encoding);

  struct telemetry_metrics_cfg m;
  if (otc_cfg_apply(telemetry_metrics_fields, parts[1], &m, "service::telemetry::metrics", err) !=
      0)
    return OTC_ERR_CONFIG;
  const char *levels[] = {"none", "basic", "normal", "detailed"};
  bool level_ok = false;
  for (size_t i = 0; i < 4; i++)
    level_ok |= strcmp(m.level, levels[i]) == 0;
  if (!level_ok)
    return otc_cfg_error(err, otc_cfg_get(parts[1], "level"),
                         "unknown metrics level \"%s\" (none, basic, normal, detailed)", m.level);
  svc->metrics_enabled = strcmp(m.level, "none") != 0;
  snprintf(svc->metrics_host, sizeof svc->metrics_host, "127.0.0.1");
  svc->metrics_port = 8888;
  svc->metrics_opts.total_suffix = 0;
  svc->metrics_opts.unit_suffix = 0;
  if (m.address) {
    /* The pre-v0.123 form, still common in configs in the wild. */
    if (otc_parse_hostport(m.address, svc->metrics_host, sizeof svc->metrics_host,
                           &svc->metrics_port) != 0)
      return otc_cfg_error(err, otc_cfg_get(parts[1], "address"),
                           "invalid address \"%s\" (want host:port)", m.address);
  }
  if (m.readers && m.readers->type != OTC_CFG_NULL) {
    if (m.readers->type != OTC_CFG_SEQ)
      return otc_cfg_error(err, m.readers, "expected a list of readers");
    bool have_pull = false;
    for (size_t i = 0; i < m.readers->n_children; i++) {
      const struct otc_cfg_node *r = m.readers->children[i];
      const struct otc_cfg_node *prom = otc_cfg_path(r, "pull.exporter.prometheus");
      if (!prom) {
        otc_warn(NULL,
                 "%s:%d: service::telemetry::metrics::readers: only pull readers with a "
                 "prometheus exporter are supported; this reader is ignored",
                 r->file, r->line);
        continue;
      }
      if (have_pull)
        return otc_cfg_error(err, r, "only one prometheus pull reader is supported");
      have_pull = true;
      struct prometheus_reader_cfg pc;
      if (otc_cfg_apply(prometheus_reader_fields, prom, &pc, "service::telemetry::metrics", err) !=
          0)
        return OTC_ERR_CONFIG;
      snprintf(svc->metrics_host, sizeof svc->metrics_host, "%s", pc.host);
      svc->metrics_port = (int)pc.port;
      svc->metrics_opts.total_suffix = !pc.without_type_suffix;
      svc->metrics_opts.unit_suffix = !pc.without_units;
    }
  }
  return 0;
}

/* --- building --- */

struct service_cfg {
  const struct otc_cfg_node *extensions;
  const struct otc_cfg_node *pipelines, *telemetry;
};

static const struct otc_cfg_field service_fields[] = {
    {"extensions", OTC_CFGK_NODE, NULL, offsetof(struct service_cfg, extensions), 0, 0},
    {"pipelines", OTC_CFGK_NODE, NULL, offsetof(struct service_cfg, pipelines), 0, 0},
    {"telemetry", OTC_CFGK_NODE, NULL, offsetof(struct service_cfg, telemetry), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct pipeline_cfg {
  const struct otc_cfg_node *receivers, *processors, *exporters;
};
static const struct otc_cfg_field pipeline_fields[] = {
    {"receivers", OTC_CFGK_NODE, NULL, offsetof(struct pipeline_cfg, receivers), 0, 0},
    {"processors", OTC_CFGK_NODE, NULL, offsetof(struct pipeline_cfg, processors), 0, 0},
    {"exporters", OTC_CFGK_NODE, NULL, offsetof(struct pipeline_cfg, exporters), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

/* Checks that list is a sequence of ids each defined in its section, without repeats. */
static int check_refs(const struct otc_cfg_node *root, const char *pipeline,
                      const struct otc_cfg_node *list, enum otc_kind kind, bool required,
                      struct otc_cfg_err *err) {
  if (!list || list->type == OTC_CFG_NULL || (list->type == OTC_CFG_SEQ && list->n_children == 0)) {
    if (required)
      return otc_cfg_error(err, list, "service::pipelines::%s: must have at least one %s", pipeline,
                           kind_name[kind]);
    return 0;
  }
  if (list->type != OTC_CFG_SEQ)
    return otc_cfg_error(err, list, "expected a list of %s ids", kind_name[kind]);
  for (size_t i = 0; i < list->n_children; i++) {
    const struct otc_cfg_node *c = list->children[i];
    if (c->type != OTC_CFG_SCALAR)
      return otc_cfg_error(err, c, "expected a %s id", kind_name[kind]);
    bool defined;
    find_def(root, kind, c->value, &defined);
    if (!defined)
      return otc_cfg_error(err, c,
                           "service::pipelines::%s: references %s \"%s\" which is not configured",
                           pipeline, kind_name[kind], c->value);
    for (size_t j = 0; j < i; j++) {
      if (strcmp(list->children[j]->value, c->value) == 0)
        return otc_cfg_error(err, c, "service::pipelines::%s: references %s \"%s\" twice", pipeline,
                             kind_name[kind], c->value);
    }
  }
  return 0;
}

static int build_pipelines(struct otc_service *svc, const struct otc_cfg_node *pipelines,
                           struct otc_cfg_err *err) {
  const struct otc_cfg_node *root = svc->root;
  if (!pipelines || pipelines->type != OTC_CFG_MAP || pipelines->n_children == 0)
    return otc_cfg_error(err, pipelines ? pipelines : otc_cfg_get(root, "service"),
                         "service must have at least one pipeline");
  svc->pipelines = calloc(pipelines->n_children, sizeof *svc->pipelines);
  if (!svc->pipelines)
    return OTC_ERR_NOMEM;

  /* Pass 1: validate every pipeline and create the exporters it names (shared by id). */
  for (size_t i = 0; i < pipelines->n_children; i++) {
    const struct otc_cfg_node *pn = pipelines->children[i];
    struct pipeline *p = &svc->pipelines[svc->n_pipelines++];
    p->id = pn->key;
    char type[MAX_ID];
    otc_component_type_of(p->id, type, sizeof type);
    if (otc_signal_parse(type, &p->signal) != 0)
      return otc_cfg_error(err, pn, "unknown pipeline type \"%s\" (traces, metrics, logs)", type);
    struct pipeline_cfg pc;
    char where[160];
    snprintf(where, sizeof where, "service::pipelines::%s", p->id);
    if (otc_cfg_apply(pipeline_fields, pn, &pc, where, err) != 0)
      return OTC_ERR_CONFIG;
    p->receivers = pc.receivers;
    p->processors = pc.processors;
    p->exporters = pc.exporters;
    if (check_refs(root, p->id, pc.receivers, OTC_KIND_RECEIVER, true, err) ||
        check_refs(root, p->id, pc.processors, OTC_KIND_PROCESSOR, false, err) ||
        check_refs(root, p->id, pc.exporters, OTC_KIND_EXPORTER, true, err))
      return OTC_ERR_CONFIG;

    for (size_t j = 0; j < p->exporters->n_children; j++) {
      const struct otc_cfg_node *ref = p->exporters->children[j];
      struct instance *e = find_instance(svc->exporters, svc->n_exporters, ref->value);
      if (!e) {
        bool defined;
        const struct otc_cfg_node *def = find_def(root, OTC_KIND_EXPORTER, ref->value, &defined);
        struct instance *grown =
            realloc(svc->exporters, (svc->n_exporters + 1) * sizeof *svc->exporters);
        if (!grown)
          return OTC_ERR_NOMEM;
        svc->exporters = grown;
        struct otc_create_args args = {.root = root, .svc = svc};
        if (create_instance(&svc->exporters[svc->n_exporters], OTC_KIND_EXPORTER, ref->value, def,
                            &args, ref, err) != 0)
          return OTC_ERR_CONFIG;
        e = &svc->exporters[svc->n_exporters++];
      }
      if (!(e->ops->signals & OTC_SIGNAL_BIT(p->signal)))
        return otc_cfg_error(err, ref, "exporter \"%s\" does not support %s", ref->value,
                             otc_signal_name(p->signal));
    }
  }

  /* Pass 2: each pipeline's tail (a fan-out to its exporters), then its processors built from
   * the last to the first, each pointing at the next. */
  for (size_t i = 0; i < svc->n_pipelines; i++) {
    struct pipeline *p = &svc->pipelines[i];
    size_t ne = p->exporters->n_children;
    struct otc_consumer outs[ne];
    bool copy[ne];
    for (size_t j = 0; j < ne; j++) {
      struct instance *e =
          find_instance(svc->exporters, svc->n_exporters, p->exporters->children[j]->value);
      outs[j] = (struct otc_consumer){e->ops->consume, e->ctx,
                                      e->ops->takes_parts && e->ops->takes_parts(e->ctx)};
      copy[j] = e->ops->mutates && ne > 1;
    }
    struct otc_consumer next;
    int rc = make_fanout(svc, outs, copy, ne, &next);
    if (rc != 0)
      return rc;
    p->tail = next;

    size_t np = p->processors && p->processors->type == OTC_CFG_SEQ ? p->processors->n_children : 0;
    p->procs = calloc(np ? np : 1, sizeof *p->procs);
    if (!p->procs)
      return OTC_ERR_NOMEM;
    /* Entries are filled from the last; destroy_instance skips the ones never created. */
    p->n_procs = np;
    for (size_t k = np; k-- > 0;) {
      const struct otc_cfg_node *ref = p->processors->children[k];
      bool defined;
      const struct otc_cfg_node *def = find_def(root, OTC_KIND_PROCESSOR, ref->value, &defined);
      struct otc_create_args args = {
          .root = root, .pipeline = p->id, .signal = p->signal, .next = next, .svc = svc};
      if (create_instance(&p->procs[k], OTC_KIND_PROCESSOR, ref->value, def, &args, ref, err) != 0)
        return OTC_ERR_CONFIG;
      if (!(p->procs[k].ops->signals & OTC_SIGNAL_BIT(p->signal)))
        return otc_cfg_error(err, ref, "processor \"%s\" does not support %s", ref->value,
                             otc_signal_name(p->signal));
      next = (struct otc_consumer){p->procs[k].ops->consume, p->procs[k].ctx, false};
    }
    p->head = next;
  }

  /* Pass 3: receivers, once per id, each signal feeding the heads of the pipelines naming it. */
  for (size_t i = 0; i < svc->n_pipelines; i++) {
    for (size_t j = 0; j < svc->pipelines[i].receivers->n_children; j++) {
      const struct otc_cfg_node *ref = svc->pipelines[i].receivers->children[j];
      if (find_instance(svc->receivers, svc->n_receivers, ref->value))
        continue;
      struct otc_create_args args = {.root = root, .svc = svc};
      for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
        size_t n = 0;
        struct otc_consumer outs[svc->n_pipelines];
        bool copy[svc->n_pipelines];
        for (size_t k = 0; k < svc->n_pipelines; k++) {
          struct pipeline *q = &svc->pipelines[k];
          if ((int)q->signal != s)
            continue;
          for (size_t r = 0; r < q->receivers->n_children; r++) {
            if (strcmp(q->receivers->children[r]->value, ref->value) == 0) {
              outs[n] = q->head;
              copy[n] = false;
              n++;
            }
          }
        }
        if (n > 0) {
          int rc = make_fanout(svc, outs, copy, n, &args.next_by_signal[s]);
          if (rc != 0)
            return rc;
        }
      }
      bool defined;
      const struct otc_cfg_node *def = find_def(root, OTC_KIND_RECEIVER, ref->value, &defined);
      struct instance *grown =
          realloc(svc->receivers, (svc->n_receivers + 1) * sizeof *svc->receivers);
      if (!grown)
        return OTC_ERR_NOMEM;
      svc->receivers = grown;
      if (create_instance(&svc->receivers[svc->n_receivers], OTC_KIND_RECEIVER, ref->value, def,
                          &args, ref, err) != 0)
        return OTC_ERR_CONFIG;
      struct instance *rcv = &svc->receivers[svc->n_receivers++];
      for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
        if (args.next_by_signal[s].consume && !(rcv->ops->signals & OTC_SIGNAL_BIT(s)))
          return otc_cfg_error(err, ref, "receiver \"%s\" does not support %s", ref->value,
                               otc_signal_name((enum otc_signal)s));
      }
    }
  }
  return 0;
}

static int build_extensions(struct otc_service *svc, const struct otc_cfg_node *list,
                            struct otc_cfg_err *err) {
  if (!list || list->type == OTC_CFG_NULL)
    return 0;
  if (list->type != OTC_CFG_SEQ)
    return otc_cfg_error(err, list, "expected a list of extension ids");
  svc->extensions = calloc(list->n_children ? list->n_children : 1, sizeof *svc->extensions);
  if (!svc->extensions)
    return OTC_ERR_NOMEM;
  for (size_t i = 0; i < list->n_children; i++) {
    const struct otc_cfg_node *ref = list->children[i];
    if (ref->type != OTC_CFG_SCALAR)
      return otc_cfg_error(err, ref, "expected an extension id");
    bool defined;
    const struct otc_cfg_node *def = find_def(svc->root, OTC_KIND_EXTENSION, ref->value, &defined);
    if (!defined)
      return otc_cfg_error(err, ref,
                           "service::extensions: references extension \"%s\" which is "
                           "not configured",
                           ref->value);
    if (find_instance(svc->extensions, svc->n_extensions, ref->value))
      return otc_cfg_error(err, ref, "service::extensions: references extension \"%s\" twice",
                           ref->value);
    struct otc_create_args args = {.root = svc->root, .svc = svc};
    if (create_instance(&svc->extensions[svc->n_extensions], OTC_KIND_EXTENSION, ref->value, def,
                        &args, ref, err) != 0)
      return OTC_ERR_CONFIG;
    svc->n_extensions++;
  }
  return 0;
}

struct top_cfg {
  const struct otc_cfg_node *receivers, *processors, *exporters, *extensions, *connectors, *service;
};
static const struct otc_cfg_field top_fields[] = {
    {"receivers", OTC_CFGK_NODE, NULL, offsetof(struct top_cfg, receivers), 0, 0},
    {"processors", OTC_CFGK_NODE, NULL, offsetof(struct top_cfg, processors), 0, 0},
    {"exporters", OTC_CFGK_NODE, NULL, offsetof(struct top_cfg, exporters), 0, 0},
    {"extensions", OTC_CFGK_NODE, NULL, offsetof(struct top_cfg, extensions), 0, 0},
    {"connectors", OTC_CFGK_NODE, NULL, offsetof(struct top_cfg, connectors), 0, 0},
    {"service", OTC_CFGK_NODE, NULL, offsetof(struct top_cfg, service), 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct otc_service *otc_service_create(const struct otc_cfg_node *root, struct otc_cfg_err *err) {
  err->msg[0] = '\0';
  struct top_cfg top;
  if (otc_cfg_apply(top_fields, root, &top, "config", err) != 0)
    return NULL;
  if (top.connectors && top.connectors->type == OTC_CFG_MAP && top.connectors->n_children > 0) {
    otc_cfg_error(err, top.connectors, "connectors are not supported by this collector");
    return NULL;
  }
  for (int k = OTC_KIND_RECEIVER; k <= OTC_KIND_EXTENSION; k++) {
    if (check_section(root, (enum otc_kind)k, err) != 0)
      return NULL;
  }
  const struct otc_cfg_node *service = top.service;
  if (!service) {
    otc_cfg_error(err, root, "missing \"service\" section");
    return NULL;
  }

  struct otc_service *svc = calloc(1, sizeof *svc);
  if (!svc) {
    otc_cfg_error(err, NULL, "out of memory");
    return NULL;
  }
  svc->root = root;
  struct service_cfg sc;
  if (otc_cfg_apply(service_fields, service, &sc, "service", err) != 0)
    goto fail;
  if (parse_telemetry(svc, sc.telemetry, err) != 0)
    goto fail;
  /* Extensions first: receivers and exporters look up the ones they use while they are created. */
  int rc = build_extensions(svc, sc.extensions, err);
  if (rc == 0)
    rc = build_pipelines(svc, sc.pipelines, err);
  if (rc == 0)
    rc = validate_unused(svc, OTC_KIND_RECEIVER, svc->receivers, svc->n_receivers, err);
  if (rc == 0)
    rc = validate_unused(svc, OTC_KIND_PROCESSOR, NULL, 0, err);
  if (rc == 0)
    rc = validate_unused(svc, OTC_KIND_EXPORTER, svc->exporters, svc->n_exporters, err);
  if (rc == 0)
    rc = validate_unused(svc, OTC_KIND_EXTENSION, svc->extensions, svc->n_extensions, err);
  if (rc != 0) {
    if (err->msg[0] == '\0')
      otc_cfg_error(err, NULL, "%s", otc_strerror(rc));
    goto fail;
  }
  return svc;
fail:
  otc_service_destroy(svc);
  return NULL;
}

/* --- lifecycle --- */

static int start_instance(struct instance *inst, enum otc_kind kind) {
  if (inst->ops->start) {
    int rc = inst->ops->start(inst->ctx);
    if (rc != 0) {
      otc_error(inst->id, "failed to start %s: %s", kind_name[kind], otc_strerror(rc));
      return rc;
    }
  }
  inst->started = true;
  return 0;
}

static void shutdown_instance(struct instance *inst) {
  if (inst->started && inst->ops->shutdown)
    inst->ops->shutdown(inst->ctx);
  inst->started = false;
}

int otc_service_start(struct otc_service *svc) {
  int rc = 0;
  for (size_t i = 0; i < svc->n_extensions && rc == 0; i++)
    rc = start_instance(&svc->extensions[i], OTC_KIND_EXTENSION);
  if (rc == 0 && svc->metrics_enabled) {
    otc_metrics_register_process();
    rc = otc_telemetry_server_start(svc->metrics_host, svc->metrics_port, &svc->metrics_opts);
    if (rc != 0)
      otc_error(NULL, "cannot serve self-metrics on %s:%d: %s", svc->metrics_host,
                svc->metrics_port, otc_strerror(rc));
    else
      svc->telemetry_started = true;
  }
  for (size_t i = 0; i < svc->n_exporters && rc == 0; i++)
    rc = start_instance(&svc->exporters[i], OTC_KIND_EXPORTER);
  for (size_t i = 0; i < svc->n_pipelines && rc == 0; i++) {
    struct pipeline *p = &svc->pipelines[i];
    for (size_t k = p->n_procs; k-- > 0 && rc == 0;)
      rc = start_instance(&p->procs[k], OTC_KIND_PROCESSOR);
  }
  for (size_t i = 0; i < svc->n_receivers && rc == 0; i++)
    rc = start_instance(&svc->receivers[i], OTC_KIND_RECEIVER);
  svc->started = true;
  if (rc != 0) {
    otc_service_shutdown(svc);
    return rc;
  }
  atomic_store(&service_ready, true);
  otc_info(NULL, "everything is ready: %zu pipelines, %zu receivers, %zu exporters",
           svc->n_pipelines, svc->n_receivers, svc->n_exporters);
  return 0;
}

void otc_service_shutdown(struct otc_service *svc) {
  if (!svc || svc->shut_down)
    return;
  svc->shut_down = true;
  atomic_store(&service_ready, false);
  /* Receivers first so nothing new arrives; then each pipeline's processors from the first to the
   * last, so that what a batch processor flushes still has somewhere to go; exporters last. */
  for (size_t i = 0; i < svc->n_receivers; i++)
    shutdown_instance(&svc->receivers[i]);
  for (size_t i = 0; i < svc->n_pipelines; i++) {
    for (size_t k = 0; k < svc->pipelines[i].n_procs; k++)
      shutdown_instance(&svc->pipelines[i].procs[k]);
  }
  for (size_t i = 0; i < svc->n_exporters; i++)
    shutdown_instance(&svc->exporters[i]);
  if (svc->telemetry_started) {
    otc_telemetry_server_stop();
    svc->telemetry_started = false;
  }
  for (size_t i = svc->n_extensions; i-- > 0;)
    shutdown_instance(&svc->extensions[i]);
}

void otc_service_destroy(struct otc_service *svc) {
  if (!svc)
    return;
  if (svc->started)
    otc_service_shutdown(svc);
  for (size_t i = 0; i < svc->n_receivers; i++)
    destroy_instance(&svc->receivers[i]);
  for (size_t i = 0; i < svc->n_pipelines; i++) {
    for (size_t k = 0; k < svc->pipelines[i].n_procs; k++)
      destroy_instance(&svc->pipelines[i].procs[k]);
    free(svc->pipelines[i].procs);
  }
  for (size_t i = 0; i < svc->n_exporters; i++)
    destroy_instance(&svc->exporters[i]);
  for (size_t i = 0; i < svc->n_extensions; i++)
    destroy_instance(&svc->extensions[i]);
  for (size_t i = 0; i < svc->n_fanouts; i++) {
    free(svc->fanouts[i]->out);
    free(svc->fanouts[i]->copy);
    free(svc->fanouts[i]);
  }
  free(svc->fanouts);
  free(svc->receivers);
  free(svc->exporters);
  free(svc->extensions);
  free(svc->pipelines);
  free(svc);
}

bool otc_service__pipeline_takes_parts(const struct otc_service *svc, const char *id) {
  for (size_t i = 0; svc && i < svc->n_pipelines; i++)
    if (strcmp(svc->pipelines[i].id, id) == 0)
      return svc->pipelines[i].tail.takes_parts;
  return false;
}
