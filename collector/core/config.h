/* Configuration: YAML (libyaml) loaded into a tree of nodes that remember their file, line and
 * column, with ${env:VAR}, ${env:VAR:-default} and ${VAR} expanded in scalars. The layout and the
 * names are the OpenTelemetry Collector's. Components read their part of the tree through a table
 * of fields (otc_cfg_apply), which also refuses unknown keys, so every error names file:line:key.
 *
 * The tree is immutable once loaded and outlives every component: strings that components take from
 * it (const char *) stay valid until otc_cfg_free() of the root, which happens after all components
 * are destroyed. */
#ifndef OTC_CONFIG_H
#define OTC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum otc_cfg_type { OTC_CFG_NULL = 0, OTC_CFG_SCALAR, OTC_CFG_MAP, OTC_CFG_SEQ };

struct otc_cfg_node {
  enum otc_cfg_type type;
  const char *key;   /* key in the parent map; NULL in a sequence and at the root */
  const char *value; /* scalar text after env expansion; NULL unless OTC_CFG_SCALAR */
  bool quoted;       /* the scalar was quoted in the YAML (so "true" is a string) */
  const char *file;  /* file name, shared by every node of a document */
  int line, col;     /* 1-based position of the value (of the key for map entries' errors) */
  int key_line, key_col;
  struct otc_cfg_node **children; /* map entries (each with key) or sequence items, in order */
  size_t n_children;
  /* Private to config.c. For a non-empty sequence of scalars, the array of their values, built at
   * load time so that OTC_CFGK_STRLIST can point into the tree without modifying it. */
  const char **priv_items;
  bool priv_owns_file; /* set on the root, which frees file */
};

/* Error text: "FILE:LINE:COL: KEY: what is wrong". */
struct otc_cfg_err {
  char msg[512];
};

/* Loads a YAML file. Returns the root (a map) or NULL with err filled. Caller frees with
 * otc_cfg_free. */
struct otc_cfg_node *otc_cfg_load_file(const char *path, struct otc_cfg_err *err);
/* Same from memory; name is used in error messages (e.g. "<default>"). */
struct otc_cfg_node *otc_cfg_load_string(const char *yaml, size_t len, const char *name,
                                         struct otc_cfg_err *err);
void otc_cfg_free(struct otc_cfg_node *root); /* NULL is a no-op */

/* Child of a map by key, or NULL (also when map is NULL or not a map). */
const struct otc_cfg_node *otc_cfg_get(const struct otc_cfg_node *map, const char *key);
/* Follows a dotted path of map keys: otc_cfg_path(root, "service.telemetry.metrics"). */
const struct otc_cfg_node *otc_cfg_path(const struct otc_cfg_node *root, const char *dotted);

/* Formats an error at node n (n may be NULL: no position) and returns OTC_ERR_CONFIG. The position
 * is the value's, or the key's when the value starts on a later line (a block map or list). */
int otc_cfg_error(struct otc_cfg_err *err, const struct otc_cfg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Scalar conversions. Each returns 0 or OTC_ERR_CONFIG with an error that names the node. */
int otc_cfg_as_bool(const struct otc_cfg_node *n, bool *out, struct otc_cfg_err *err);
int otc_cfg_as_int(const struct otc_cfg_node *n, int64_t *out, struct otc_cfg_err *err);
int otc_cfg_as_double(const struct otc_cfg_node *n, double *out, struct otc_cfg_err *err);
/* Go duration syntax as otelcol writes it: "200ms", "5s", "1m30s", "1h", "100us", "10ns"; a bare
 * integer is nanoseconds (as Go's time.Duration decodes from YAML numbers). */
int otc_cfg_as_duration_ns(const struct otc_cfg_node *n, int64_t *out, struct otc_cfg_err *err);
/* Byte sizes: a bare integer is bytes; also "20MiB", "512KiB", "1GiB", "10MB", "1kB". */
int otc_cfg_as_size(const struct otc_cfg_node *n, uint64_t *out, struct otc_cfg_err *err);

/* Declarative reading of one map: a table of fields ended by an entry with key NULL. */
enum otc_cfg_kind {
  OTC_CFGK_STRING,   /* const char * (NULL when absent and no default) */
  OTC_CFGK_BOOL,     /* bool */
  OTC_CFGK_INT,      /* int64_t, checked against [min, max] */
  OTC_CFGK_DOUBLE,   /* double, checked against [min, max] */
  OTC_CFGK_DURATION, /* int64_t nanoseconds, checked against [min, max] when max > 0 */
  OTC_CFGK_SIZE,     /* uint64_t bytes */
  OTC_CFGK_STRLIST,  /* struct otc_cfg_strlist (a sequence of scalars) */
  OTC_CFGK_NODE,     /* const struct otc_cfg_node * handed over as is (a map to read further) */
  OTC_CFGK_UNSUPPORTED, /* a key otelcol knows that we do not implement: a warning, not an error */
};

struct otc_cfg_strlist {
  const char **items; /* points into the tree; the array itself is owned by the tree */
  size_t n;
};

struct otc_cfg_field {
  const char *key;
  enum otc_cfg_kind kind;
  const char *def; /* default as YAML scalar text ("4", "200ms", "true"), or NULL */
  size_t offset;   /* offsetof(struct your_config, member) */
  double min, max; /* range for INT/DOUBLE/DURATION(ns); ignored when min == max == 0 */
};

/* Fills out (a struct) from map according to fields: defaults first, then the map's values.
 * A key of map that no field names is an error ("unknown key"), as is a value of the wrong type or
 * out of range. component names the owner in warnings. map may be NULL (all defaults) or a null
 * node (a component written as `debug:` with nothing after it). */
int otc_cfg_apply(const struct otc_cfg_field *fields, const struct otc_cfg_node *map, void *out,
                  const char *component, struct otc_cfg_err *err);

#endif
