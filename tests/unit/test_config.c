#include "core/config.h"

#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <unistd.h>

#include "core/errors.h"
#include "test.h"

/* Loads a YAML text under the name "t.yaml"; err receives the error when loading fails. */
static struct otc_cfg_node *load(const char *yaml, struct otc_cfg_err *err) {
  return otc_cfg_load_string(yaml, strlen(yaml), "t.yaml", err);
}

/* Loads text that must fail and checks that the error contains each of up to three fragments. */
static void check_load_fails(const char *yaml, const char *want1, const char *want2,
                             const char *want3) {
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load(yaml, &err);
  CHECK(root == NULL);
  CHECK_CONTAINS(err.msg, want1);
  if (want2)
    CHECK_CONTAINS(err.msg, want2);
  if (want3)
    CHECK_CONTAINS(err.msg, want3);
  otc_cfg_free(root);
}

/* Captures what the code under test logs to stderr while a function runs. */
struct capture {
  int saved_fd;
  FILE *tmp;
};

static void capture_start(struct capture *c) {
  fflush(stderr);
  c->tmp = tmpfile();
  c->saved_fd = dup(2);
  dup2(fileno(c->tmp), 2);
}

static char *capture_end(struct capture *c) {
  fflush(stderr);
  dup2(c->saved_fd, 2);
  close(c->saved_fd);
  long len = ftell(c->tmp);
  char *text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
  rewind(c->tmp);
  if (len > 0 && fread(text, 1, (size_t)len, c->tmp) != (size_t)len)
    text[0] = '\0';
  fclose(c->tmp);
  return text;
}

static int count_occurrences(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

TEST(tree_positions_and_lookup) {
  const char *yaml = "receivers:\n"
                     "  otlp:\n"
                     "    protocols:\n"
                     "      grpc:\n"
                     "        endpoint: \"0.0.0.0:4317\"\n"
                     "      http:\n"
                     "service:\n"
                     "  pipelines:\n"
                     "    traces:\n"
                     "      receivers: [otlp]\n"
                     "      exporters:\n"
                     "        - debug\n"
                     "        - 'file'\n"
                     "  flag: true\n"
                     "  nothing: ~\n";
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load(yaml, &err);
  CHECK(root != NULL);
  if (!root)
    return;
  CHECK_EQ_INT(root->type, OTC_CFG_MAP);
  CHECK_EQ_STR(root->file, "t.yaml");
  CHECK_EQ_INT(root->n_children, 2);

  const struct otc_cfg_node *ep = otc_cfg_path(root, "receivers.otlp.protocols.grpc.endpoint");
  CHECK(ep != NULL);
  if (ep) {
    CHECK_EQ_INT(ep->type, OTC_CFG_SCALAR);
    CHECK_EQ_STR(ep->value, "0.0.0.0:4317");
    CHECK_EQ_STR(ep->key, "endpoint");
    CHECK(ep->quoted);
    CHECK_EQ_INT(ep->line, 5);
    CHECK_EQ_INT(ep->col, 19);
    CHECK_EQ_INT(ep->key_line, 5);
    CHECK_EQ_INT(ep->key_col, 9);
    CHECK_EQ_STR(ep->file, "t.yaml");
  }
  const struct otc_cfg_node *http = otc_cfg_path(root, "receivers.otlp.protocols.http");
  CHECK(http != NULL && http->type == OTC_CFG_NULL && http->value == NULL);
  CHECK(http != NULL && http->line == 6 && http->col == 7);

  const struct otc_cfg_node *traces = otc_cfg_path(root, "service.pipelines.traces");
  const struct otc_cfg_node *recv = otc_cfg_get(traces, "receivers");
  CHECK(recv != NULL && recv->type == OTC_CFG_SEQ && recv->n_children == 1);
  if (recv && recv->n_children == 1) {
    CHECK_EQ_STR(recv->children[0]->value, "otlp");
    CHECK(recv->children[0]->key == NULL);
    CHECK(!recv->children[0]->quoted);
  }
  const struct otc_cfg_node *exp = otc_cfg_get(traces, "exporters");
  CHECK(exp != NULL && exp->n_children == 2);
  if (exp && exp->n_children == 2) {
    CHECK_EQ_STR(exp->children[1]->value, "file");
    CHECK(exp->children[1]->quoted);
    CHECK_EQ_INT(exp->children[1]->line, 13);
    CHECK_EQ_INT(exp->children[1]->col, 11);
  }
  const struct otc_cfg_node *nothing = otc_cfg_path(root, "service.nothing");
  CHECK(nothing != NULL && nothing->type == OTC_CFG_NULL);
  CHECK_EQ_STR(otc_cfg_path(root, "service.flag")->value, "true");

  /* Lookups that must find nothing. */
  CHECK(otc_cfg_get(root, "missing") == NULL);
  CHECK(otc_cfg_get(NULL, "receivers") == NULL);
  CHECK(otc_cfg_get(ep, "x") == NULL);
  CHECK(otc_cfg_path(root, "receivers.otlp.nope") == NULL);
  CHECK(otc_cfg_path(root, "receivers..otlp") == NULL);
  CHECK(otc_cfg_path(root, "service.flag.deeper") == NULL);
  CHECK(otc_cfg_path(root, "") == NULL);
  otc_cfg_free(root);
  otc_cfg_free(NULL);
}

TEST(empty_documents_are_empty_maps) {
  const char *texts[] = {"", "# only a comment\n", "---\n", "~\n"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    struct otc_cfg_err err = {{0}};
    struct otc_cfg_node *root = load(texts[i], &err);
    CHECK(root != NULL);
    if (root) {
      CHECK_EQ_INT(root->type, OTC_CFG_MAP);
      CHECK_EQ_INT(root->n_children, 0);
    }
    otc_cfg_free(root);
  }
}

TEST(structural_errors) {
  check_load_fails("- a\n- b\n", "t.yaml:1:1: ", "must be a map, got a sequence", NULL);
  check_load_fails("just text\n", "t.yaml:1:1: ", "must be a map, got a scalar", NULL);
  check_load_fails("a: 1\n---\nb: 2\n", "t.yaml:2:1: ", "more than one YAML document", NULL);
  check_load_fails("? [a, b]\n: x\n", "t.yaml:1:3: ", "map keys must be scalars", NULL);
  check_load_fails("{[a]: 1}\n", "t.yaml:1:2: ", "map keys must be scalars", NULL);
  check_load_fails("a: 1\nb: \"x\\0y\"\n", "t.yaml:2:4: ", "NUL", NULL);
  check_load_fails("a: *nope\n", "t.yaml:1:4: ", "undefined alias \"*nope\"", NULL);
}

TEST(yaml_syntax_error_has_line) {
  /* libyaml's own problem text, positioned at the offending token. */
  check_load_fails("a: 1\nb: [1, 2\nc: 3\n", "t.yaml:", "flow sequence", NULL);
  check_load_fails("a: 1\nb:\n  c: 1\n d: 2\n", "t.yaml:4:", "did not find expected key", NULL);
  check_load_fails("a: 1\nb: c: d\n", "t.yaml:2:5: ", "mapping values are not allowed", NULL);
  check_load_fails("a: \"unterminated\n", "t.yaml:", "found unexpected end of stream", NULL);
  check_load_fails("a: @x\n", "t.yaml:1:4: ", "cannot start any token", NULL);
  /* Invalid UTF-8 is a reader error, reported with its byte offset. */
  check_load_fails("a: \xff\xfe\xfd\n", "t.yaml: ", "invalid", "at byte 3");
}

TEST(duplicate_key) {
  check_load_fails("exporters:\n  debug:\n  file:\n    path: x\n  debug:\n    verbosity: basic\n",
                   "t.yaml:5:3: debug: duplicate key \"debug\"", "first at line 2",
                   "again at line 5");
  check_load_fails("{a: 1, b: 2, a: 3}\n", "t.yaml:1:14: a: duplicate key", "first at line 1",
                   NULL);
  /* The same key in different maps is fine. */
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load("x: {a: 1}\ny: {a: 2}\n", &err);
  CHECK(root != NULL);
  otc_cfg_free(root);
}

/* ---- otc_cfg_apply ---- */

struct demo_cfg {
  const char *endpoint;
  bool enabled;
  int64_t workers;
  double ratio;
  int64_t timeout_ns;
  uint64_t max_bytes;
  struct otc_cfg_strlist tags;
  const struct otc_cfg_node *tls;
  const char *no_default;
};

static const struct otc_cfg_field demo_fields[] = {
    {"endpoint", OTC_CFGK_STRING, "localhost:4317", offsetof(struct demo_cfg, endpoint), 0, 0},
    {"enabled", OTC_CFGK_BOOL, "true", offsetof(struct demo_cfg, enabled), 0, 0},
    {"workers", OTC_CFGK_INT, "4", offsetof(struct demo_cfg, workers), 1, 64},
    {"ratio", OTC_CFGK_DOUBLE, "0.5", offsetof(struct demo_cfg, ratio), 0, 1},
    {"timeout", OTC_CFGK_DURATION, "5s", offsetof(struct demo_cfg, timeout_ns), 1e6, 3600e9},
    {"max_bytes", OTC_CFGK_SIZE, "20MiB", offsetof(struct demo_cfg, max_bytes), 0, 0},
    {"tags", OTC_CFGK_STRLIST, NULL, offsetof(struct demo_cfg, tags), 0, 0},
    {"tls", OTC_CFGK_NODE, NULL, offsetof(struct demo_cfg, tls), 0, 0},
    {"no_default", OTC_CFGK_STRING, NULL, offsetof(struct demo_cfg, no_default), 0, 0},
    {"compression_level", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

/* Loads "c:\n" + body and applies demo_fields to the map under c. Returns apply's result; *rootp
 * receives the tree (NULL when loading failed, which fails the test). */
static int apply_demo(const char *yaml, struct demo_cfg *out, struct otc_cfg_err *err,
                      struct otc_cfg_node **rootp) {
  memset(out, 0xa5, sizeof *out);
  *rootp = load(yaml, err);
  CHECK(*rootp != NULL);
  if (!*rootp) {
    fprintf(stderr, "load failed: %s\n", err->msg);
    return -100;
  }
  return otc_cfg_apply(demo_fields, otc_cfg_get(*rootp, "c"), out, "receiver/demo", err);
}

static void check_demo_defaults(const struct demo_cfg *c) {
  CHECK_EQ_STR(c->endpoint, "localhost:4317");
  CHECK(c->enabled);
  CHECK_EQ_INT(c->workers, 4);
  CHECK(c->ratio == 0.5);
  CHECK_EQ_INT(c->timeout_ns, 5000000000LL);
  CHECK_EQ_INT(c->max_bytes, 20 << 20);
  CHECK(c->tags.items == NULL && c->tags.n == 0);
  CHECK(c->tls == NULL);
  CHECK(c->no_default == NULL);
}

TEST(apply_defaults_null_and_absent_map) {
  struct demo_cfg c;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = NULL;
  /* `c:` with nothing after it: a null node, defaults only. */
  CHECK_EQ_INT(apply_demo("c:\n", &c, &err, &root), 0);
  check_demo_defaults(&c);
  otc_cfg_free(root);
  /* No map at all. */
  memset(&c, 0xa5, sizeof c);
  CHECK_EQ_INT(otc_cfg_apply(demo_fields, NULL, &c, "receiver/demo", &err), 0);
  check_demo_defaults(&c);
  /* An empty map. */
  CHECK_EQ_INT(apply_demo("c: {}\n", &c, &err, &root), 0);
  check_demo_defaults(&c);
  otc_cfg_free(root);
  /* Empty values keep their defaults. */
  CHECK_EQ_INT(apply_demo("c:\n  workers:\n  endpoint:\n", &c, &err, &root), 0);
  check_demo_defaults(&c);
  otc_cfg_free(root);
}

TEST(apply_values) {
  struct demo_cfg c;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = NULL;
  const char *yaml = "c:\n"
                     "  endpoint: 0.0.0.0:9999\n"
                     "  enabled: \"False\"\n"
                     "  workers: 16\n"
                     "  ratio: 0.25\n"
                     "  timeout: 1m30s\n"
                     "  max_bytes: 512KiB\n"
                     "  tags: [a, \"b c\", '']\n"
                     "  tls:\n"
                     "    insecure: true\n"
                     "  no_default: here\n";
  int rc = apply_demo(yaml, &c, &err, &root);
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    CHECK_EQ_STR(c.endpoint, "0.0.0.0:9999");
    CHECK(!c.enabled);
    CHECK_EQ_INT(c.workers, 16);
    CHECK(c.ratio == 0.25);
    CHECK_EQ_INT(c.timeout_ns, 90000000000LL);
    CHECK_EQ_INT(c.max_bytes, 512 * 1024);
    CHECK_EQ_INT(c.tags.n, 3);
    if (c.tags.n == 3) {
      CHECK_EQ_STR(c.tags.items[0], "a");
      CHECK_EQ_STR(c.tags.items[1], "b c");
      CHECK_EQ_STR(c.tags.items[2], "");
    }
    CHECK(c.tls != NULL && c.tls->type == OTC_CFG_MAP);
    CHECK_EQ_STR(otc_cfg_get(c.tls, "insecure")->value, "true");
    CHECK_EQ_STR(c.no_default, "here");
  }
  otc_cfg_free(root);
}

TEST(apply_strlist_and_node_forms) {
  struct demo_cfg c;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = NULL;
  /* Block sequence, and a NODE that is a scalar. */
  CHECK_EQ_INT(apply_demo("c:\n  tags:\n    - x\n    - y\n  tls: plain\n", &c, &err, &root), 0);
  CHECK_EQ_INT(c.tags.n, 2);
  if (c.tags.n == 2)
    CHECK_EQ_STR(c.tags.items[1], "y");
  CHECK(c.tls != NULL && c.tls->type == OTC_CFG_SCALAR && strcmp(c.tls->value, "plain") == 0);
  otc_cfg_free(root);
  /* Null list → empty; null node → the null node itself; empty sequence → empty. */
  CHECK_EQ_INT(apply_demo("c:\n  tags:\n  tls:\n", &c, &err, &root), 0);
  CHECK(c.tags.n == 0 && c.tags.items == NULL);
  CHECK(c.tls != NULL && c.tls->type == OTC_CFG_NULL);
  otc_cfg_free(root);
  CHECK_EQ_INT(apply_demo("c:\n  tags: []\n  tls: [1, 2]\n", &c, &err, &root), 0);
  CHECK_EQ_INT(c.tags.n, 0);
  CHECK(c.tls != NULL && c.tls->type == OTC_CFG_SEQ && c.tls->n_children == 2);
  otc_cfg_free(root);
  /* A list item that is not a scalar, and a list that is a scalar. */
  CHECK_EQ_INT(apply_demo("c:\n  tags:\n    - a\n    - {k: v}\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:4:7: tags: item 2: expected a scalar, got a map");
  otc_cfg_free(root);
  CHECK_EQ_INT(apply_demo("c:\n  tags: one\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:2:9: tags: expected a sequence of strings, got a scalar");
  otc_cfg_free(root);
}

TEST(apply_unknown_key) {
  struct demo_cfg c;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = NULL;
  CHECK_EQ_INT(apply_demo("c:\n  workers: 2\n  endpiont: x\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:3:3: endpiont: unknown key \"endpiont\" in receiver/demo "
                          "(known: endpoint, enabled, workers, ratio, timeout, max_bytes, tags, "
                          "tls, no_default)");
  otc_cfg_free(root);
}

TEST(apply_wrong_type) {
  struct demo_cfg c;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = NULL;
  CHECK_EQ_INT(apply_demo("c:\n  endpoint:\n    host: x\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:2:3: endpoint: expected a scalar, got a map");
  otc_cfg_free(root);
  CHECK_EQ_INT(apply_demo("c:\n  workers: [1]\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:2:12: workers: expected a scalar, got a sequence");
  otc_cfg_free(root);
  /* The component's map itself of the wrong type. */
  CHECK_EQ_INT(apply_demo("c: 5\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:1:4: c: expected a map, got a scalar");
  otc_cfg_free(root);
  CHECK_EQ_INT(apply_demo("c: [a]\n", &c, &err, &root), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:1:4: c: expected a map, got a sequence");
  otc_cfg_free(root);
}

TEST(apply_range_and_bad_values) {
  struct {
    const char *yaml;
    const char *want;
  } cases[] = {
      {"c:\n  workers: 65\n", "t.yaml:2:12: workers: \"65\" is out of range [1, 64]"},
      {"c:\n  workers: 0\n", "t.yaml:2:12: workers: \"0\" is out of range [1, 64]"},
      {"c:\n  workers: 4x\n", "t.yaml:2:12: workers: expected an integer, got \"4x\""},
      {"c:\n  workers: 99999999999999999999\n", "t.yaml:2:12: workers: integer"},
      {"c:\n  ratio: 1.5\n", "t.yaml:2:10: ratio: \"1.5\" is out of range [0, 1]"},
      {"c:\n  ratio: .nan\n", "t.yaml:2:10: ratio: \".nan\" is out of range"},
      {"c:\n  ratio: half\n", "t.yaml:2:10: ratio: expected a number, got \"half\""},
      {"c:\n  enabled: yes\n",
       "t.yaml:2:12: enabled: expected a bool (true or false), got \"yes\""},
      {"c:\n  enabled: 1\n", "t.yaml:2:12: enabled: expected a bool"},
      {"c:\n  timeout: 5sec\n", "t.yaml:2:12: timeout: invalid duration \"5sec\""},
      {"c:\n  timeout: 100us\n", "t.yaml:2:12: timeout: \"100us\" is out of range [1ms, 1h]"},
      {"c:\n  timeout: 2h\n", "t.yaml:2:12: timeout: \"2h\" is out of range [1ms, 1h]"},
      {"c:\n  max_bytes: 20 MiB\n", "t.yaml:2:14: max_bytes: invalid size \"20 MiB\""},
      {"c:\n  max_bytes: -1\n", "t.yaml:2:14: max_bytes: invalid size \"-1\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct demo_cfg c;
    struct otc_cfg_err err = {{0}};
    struct otc_cfg_node *root = NULL;
    CHECK_EQ_INT(apply_demo(cases[i].yaml, &c, &err, &root), OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, cases[i].want);
    otc_cfg_free(root);
  }
}

TEST(apply_range_without_upper_bound) {
  /* max 0 with a positive min: at least min, no upper bound. */
  static const struct otc_cfg_field f[] = {
      {"interval", OTC_CFGK_DURATION, "1s", 0, 1e6, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  int64_t v = 0;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load("c:\n  interval: 1000h\nd:\n  interval: 10us\n", &err);
  CHECK(root != NULL);
  CHECK_EQ_INT(otc_cfg_apply(f, otc_cfg_get(root, "c"), &v, "x", &err), 0);
  CHECK_EQ_INT(v, 3600000000000000LL);
  CHECK_EQ_INT(otc_cfg_apply(f, otc_cfg_get(root, "d"), &v, "x", &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "t.yaml:4:13: interval: \"10us\" is out of range (at least 1ms)");
  otc_cfg_free(root);
}

TEST(apply_bad_default_names_component) {
  static const struct otc_cfg_field bad[] = {
      {"interval", OTC_CFGK_DURATION, "5 seconds", 0, 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  int64_t v;
  struct otc_cfg_err err = {{0}};
  CHECK_EQ_INT(otc_cfg_apply(bad, NULL, &v, "processor/x", &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "processor/x: interval: invalid duration \"5 seconds\"");
}

TEST(apply_unsupported_key_warns) {
  struct demo_cfg c;
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = NULL;
  struct capture cap;
  capture_start(&cap);
  int rc = apply_demo("c:\n  workers: 3\n  compression_level: 9\n", &c, &err, &root);
  char *log = capture_end(&cap);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(c.workers, 3);
  CHECK_CONTAINS(log, "\"level\":\"warn\"");
  CHECK_CONTAINS(log, "\"component\":\"receiver/demo\"");
  CHECK_CONTAINS(log, "t.yaml:3: compression_level is not supported by this collector and is "
                      "ignored");
  free(log);
  otc_cfg_free(root);
}

/* ---- conversions ---- */

static struct otc_cfg_node scalar(const char *v) {
  return (struct otc_cfg_node){
      .type = OTC_CFG_SCALAR, .value = v, .file = "s.yaml", .line = 7, .col = 3, .key = "k"};
}

TEST(durations_table) {
  static const struct {
    const char *text;
    int64_t ns;
  } good[] = {
      {"0", 0},
      {"300ms", 300000000LL},
      {"1.5s", 1500000000LL},
      {"1m30s", 90000000000LL},
      {"2h", 7200000000000LL},
      {"100us", 100000LL},
      {"100\xc2\xb5s", 100000LL},
      {"100\xce\xbcs", 100000LL},
      {"10ns", 10},
      {"1500", 1500},
      {"5", 5},
      {"-5s", -5000000000LL},
      {"+5s", 5000000000LL},
      {".5s", 500000000LL},
      {"1.s", 1000000000LL},
      {"1h2m3s4ms5us6ns", 3723004005006LL},
      {"2562047h47m16.854775807s", INT64_MAX},
      {"-2562047h47m16.854775808s", INT64_MIN},
      {"9223372036854775807", INT64_MAX},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    struct otc_cfg_node n = scalar(good[i].text);
    struct otc_cfg_err err = {{0}};
    int64_t v = -1;
    int rc = otc_cfg_as_duration_ns(&n, &v, &err);
    if (rc != 0 || v != good[i].ns)
      fprintf(stderr, "duration \"%s\": rc %d value %" PRId64 " (%s)\n", good[i].text, rc, v,
              err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(v == good[i].ns);
  }
  static const char *const bad[] = {"",
                                    "x",
                                    "5 s",
                                    "5sec",
                                    "s",
                                    "-5",
                                    "-",
                                    ".",
                                    ".s",
                                    "5s ",
                                    " 5s",
                                    "1m30",
                                    "5S",
                                    "1d",
                                    "2562047h47m16.854775808s",
                                    "9223372036854775808",
                                    "99999999999h",
                                    "5s-3s",
                                    "--5s"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct otc_cfg_node n = scalar(bad[i]);
    struct otc_cfg_err err = {{0}};
    int64_t v = 0;
    int rc = otc_cfg_as_duration_ns(&n, &v, &err);
    if (rc == 0)
      fprintf(stderr, "duration \"%s\" was accepted as %" PRId64 "\n", bad[i], v);
    CHECK_EQ_INT(rc, OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "s.yaml:7:3: k: invalid duration");
  }
}

TEST(sizes_table) {
  static const struct {
    const char *text;
    uint64_t bytes;
  } good[] = {
      {"0", 0},
      {"1024", 1024},
      {"20MiB", 20ull << 20},
      {"512KiB", 512ull << 10},
      {"1GiB", 1ull << 30},
      {"10MB", 10000000},
      {"1kB", 1000},
      {"2KB", 2000},
      {"3K", 3000},
      {"4Mi", 4ull << 20},
      {"7B", 7},
      {"2TiB", 2ull << 40},
      {"18446744073709551615", UINT64_MAX},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    struct otc_cfg_node n = scalar(good[i].text);
    struct otc_cfg_err err = {{0}};
    uint64_t v = 1;
    int rc = otc_cfg_as_size(&n, &v, &err);
    if (rc != 0 || v != good[i].bytes)
      fprintf(stderr, "size \"%s\": rc %d value %" PRIu64 " (%s)\n", good[i].text, rc, v, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(v == good[i].bytes);
  }
  static const char *const bad[] = {"",
                                    "MiB",
                                    "-1",
                                    "+1",
                                    "1.5MiB",
                                    "20 MiB",
                                    "20mib",
                                    "20MIB",
                                    "20Mb",
                                    "1iB",
                                    "0x10",
                                    " 1",
                                    "1 ",
                                    "18446744073709551616",
                                    "17179869184GiB"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct otc_cfg_node n = scalar(bad[i]);
    struct otc_cfg_err err = {{0}};
    uint64_t v = 0;
    int rc = otc_cfg_as_size(&n, &v, &err);
    if (rc == 0)
      fprintf(stderr, "size \"%s\" was accepted as %" PRIu64 "\n", bad[i], v);
    CHECK_EQ_INT(rc, OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "s.yaml:7:3: k: invalid size");
  }
}

TEST(scalar_conversions) {
  struct otc_cfg_err err = {{0}};
  bool b;
  const char *trues[] = {"true", "True", "TRUE"}, *falses[] = {"false", "False", "FALSE"};
  for (int i = 0; i < 3; i++) {
    struct otc_cfg_node t = scalar(trues[i]), f = scalar(falses[i]);
    b = false;
    CHECK_EQ_INT(otc_cfg_as_bool(&t, &b, &err), 0);
    CHECK(b);
    CHECK_EQ_INT(otc_cfg_as_bool(&f, &b, &err), 0);
    CHECK(!b);
  }
  const char *notbools[] = {"yes", "on", "1", "tRUE", "", "true "};
  for (size_t i = 0; i < sizeof notbools / sizeof notbools[0]; i++) {
    struct otc_cfg_node n = scalar(notbools[i]);
    CHECK_EQ_INT(otc_cfg_as_bool(&n, &b, &err), OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "s.yaml:7:3: k: expected a bool");
  }

  int64_t i64;
  struct {
    const char *text;
    int64_t v;
  } ints[] = {{"0", 0},
              {"-12", -12},
              {"+7", 7},
              {"9223372036854775807", INT64_MAX},
              {"-9223372036854775808", INT64_MIN}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    struct otc_cfg_node n = scalar(ints[i].text);
    CHECK_EQ_INT(otc_cfg_as_int(&n, &i64, &err), 0);
    CHECK(i64 == ints[i].v);
  }
  const char *notints[] = {"", " 1", "1 ", "1.0", "0x10", "12abc", "-", "+", "1e3"};
  for (size_t i = 0; i < sizeof notints / sizeof notints[0]; i++) {
    struct otc_cfg_node n = scalar(notints[i]);
    CHECK_EQ_INT(otc_cfg_as_int(&n, &i64, &err), OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "s.yaml:7:3: k: expected an integer");
  }
  struct otc_cfg_node big = scalar("9223372036854775808");
  CHECK_EQ_INT(otc_cfg_as_int(&big, &i64, &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "s.yaml:7:3: k: integer \"9223372036854775808\" is out of range");

  double d;
  struct otc_cfg_node n = scalar("2.5e3");
  CHECK_EQ_INT(otc_cfg_as_double(&n, &d, &err), 0);
  CHECK(d == 2500.0);
  n = scalar("-.inf");
  CHECK_EQ_INT(otc_cfg_as_double(&n, &d, &err), 0);
  CHECK(isinf(d) && d < 0);
  n = scalar(".Inf");
  CHECK_EQ_INT(otc_cfg_as_double(&n, &d, &err), 0);
  CHECK(isinf(d) && d > 0);
  n = scalar(".NaN");
  CHECK_EQ_INT(otc_cfg_as_double(&n, &d, &err), 0);
  CHECK(isnan(d));
  const char *notdoubles[] = {"", "abc", "1.5x", " 1", "1e999", "-.nan"};
  for (size_t i = 0; i < sizeof notdoubles / sizeof notdoubles[0]; i++) {
    n = scalar(notdoubles[i]);
    CHECK_EQ_INT(otc_cfg_as_double(&n, &d, &err), OTC_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "s.yaml:7:3: k: ");
  }

  /* Non-scalars and a missing node. */
  struct otc_cfg_node m = {.type = OTC_CFG_MAP, .file = "s.yaml", .line = 2, .col = 5, .key = "m"};
  CHECK_EQ_INT(otc_cfg_as_int(&m, &i64, &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "s.yaml:2:5: m: expected a scalar, got a map");
  struct otc_cfg_node z = {.type = OTC_CFG_NULL, .file = "s.yaml", .line = 2, .col = 5, .key = "z"};
  CHECK_EQ_INT(otc_cfg_as_bool(&z, &b, &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "s.yaml:2:5: z: expected a scalar, got null");
  CHECK_EQ_INT(otc_cfg_as_size(NULL, NULL, &err), OTC_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "missing value");
}

TEST(error_formatting) {
  struct otc_cfg_err err;
  CHECK_EQ_INT(otc_cfg_error(&err, NULL, "plain %d", 42), OTC_ERR_CONFIG);
  CHECK_EQ_STR(err.msg, "plain 42");
  struct otc_cfg_node n = scalar("v");
  otc_cfg_error(&err, &n, "bad %s", "thing");
  CHECK_EQ_STR(err.msg, "s.yaml:7:3: k: bad thing");
  n.key = NULL;
  otc_cfg_error(&err, &n, "bad");
  CHECK_EQ_STR(err.msg, "s.yaml:7:3: bad");
  /* An over-long message is cut, never overflowed. */
  char longtext[2000];
  memset(longtext, 'x', sizeof longtext - 1);
  longtext[sizeof longtext - 1] = '\0';
  otc_cfg_error(&err, &n, "%s", longtext);
  CHECK_EQ_INT(strlen(err.msg), sizeof err.msg - 1);
  CHECK_EQ_INT(otc_cfg_error(NULL, &n, "no err"), OTC_ERR_CONFIG);
}

/* ---- environment variables ---- */

TEST(env_expansion) {
  setenv("OTC_T_HOST", "collector.local", 1);
  setenv("OTC_T_PORT", "4318", 1);
  setenv("OTC_T_EMPTY", "", 1);
  setenv("OTC_T_TRICKY", "${env:OTC_T_HOST}$$", 1);
  unsetenv("OTC_T_UNSET");
  const char *yaml = "a: ${env:OTC_T_HOST}\n"
                     "b: ${env:OTC_T_UNSET:-fallback}\n"
                     "c: ${OTC_T_PORT}\n"
                     "d: price $$5, $${env:OTC_T_PORT} and $$${OTC_T_PORT}\n"
                     "e: http://${env:OTC_T_HOST}:${OTC_T_PORT}/v1\n"
                     "f: \"x${env:OTC_T_UNSET}y\"\n"
                     "g: ${env:OTC_T_EMPTY:-notused}\n"
                     "h: ${env:OTC_T_TRICKY}\n"
                     "i: a $ alone and $x\n"
                     "j: ${env:OTC_T_UNSET:-a:b-c}\n"
                     "k: ${env:OTC_T_UNSET:-}\n"
                     "l: ${OTC_T_UNSET}${OTC_T_UNSET}\n"
                     "m: ${env:OTC_T_PORT}\n";
  struct otc_cfg_err err = {{0}};
  struct capture cap;
  capture_start(&cap);
  struct otc_cfg_node *root = load(yaml, &err);
  char *log = capture_end(&cap);
  CHECK(root != NULL);
  if (!root) {
    fprintf(stderr, "%s\n", err.msg);
    free(log);
    return;
  }
  CHECK_EQ_STR(otc_cfg_get(root, "a")->value, "collector.local");
  CHECK_EQ_STR(otc_cfg_get(root, "b")->value, "fallback");
  CHECK_EQ_STR(otc_cfg_get(root, "c")->value, "4318");
  CHECK_EQ_STR(otc_cfg_get(root, "d")->value, "price $5, ${env:OTC_T_PORT} and $4318");
  CHECK_EQ_STR(otc_cfg_get(root, "e")->value, "http://collector.local:4318/v1");
  CHECK_EQ_STR(otc_cfg_get(root, "f")->value, "xy");
  /* The default applies only to an unset variable, as in otelcol's env provider. */
  CHECK_EQ_STR(otc_cfg_get(root, "g")->value, "");
  /* No recursion into the value. */
  CHECK_EQ_STR(otc_cfg_get(root, "h")->value, "${env:OTC_T_HOST}$$");
  CHECK_EQ_STR(otc_cfg_get(root, "i")->value, "a $ alone and $x");
  CHECK_EQ_STR(otc_cfg_get(root, "j")->value, "a:b-c");
  CHECK_EQ_STR(otc_cfg_get(root, "k")->value, "");
  CHECK_EQ_STR(otc_cfg_get(root, "l")->value, "");
  CHECK_EQ_INT(otc_cfg_get(root, "l")->type, OTC_CFG_SCALAR);
  /* An expanded value converts like a literal one. */
  int64_t port = 0;
  CHECK_EQ_INT(otc_cfg_as_int(otc_cfg_get(root, "m"), &port, &err), 0);
  CHECK_EQ_INT(port, 4318);
  /* One warning for OTC_T_UNSET although it is used unset three times. */
  CHECK_EQ_INT(count_occurrences(log, "OTC_T_UNSET is not set"), 1);
  CHECK_CONTAINS(log, "t.yaml:6:4: environment variable OTC_T_UNSET is not set");
  free(log);
  otc_cfg_free(root);
}

TEST(env_expansion_errors) {
  check_load_fails("a: 1\nb: ${file:/etc/secret}\n", "t.yaml:2:4: b: unsupported config provider",
                   "\"file\"", NULL);
  check_load_fails("b: x${http://example.com/c.yaml}\n",
                   "t.yaml:1:4: b: unsupported config "
                   "provider \"http\"",
                   NULL, NULL);
  check_load_fails("b: \"${yaml:a: 1}\"\n", "t.yaml:1:4: b: unsupported config provider", NULL,
                   NULL);
  check_load_fails("list:\n  - ok\n  - ${env:OTC_T_HOST\n", "t.yaml:3:5: unterminated \"${\"", NULL,
                   NULL);
  check_load_fails("b: ${env:1BAD}\n", "t.yaml:1:4: b: invalid environment variable name \"1BAD\"",
                   NULL, NULL);
  check_load_fails("b: ${MY-VAR}\n", "t.yaml:1:4: b: invalid environment variable name", NULL,
                   NULL);
  check_load_fails("b: ${}\n", "t.yaml:1:4: b: invalid environment variable name \"\"", NULL, NULL);
  check_load_fails("b: ${env:}\n", "t.yaml:1:4: b: invalid environment variable name", NULL, NULL);
}

TEST(env_expansion_is_bounded) {
  /* 64 KiB times 17 references is over the 1 MiB limit of one expanded value. */
  size_t big = 64 * 1024;
  char *v = malloc(big + 1);
  memset(v, 'z', big);
  v[big] = '\0';
  setenv("OTC_T_BIG", v, 1);
  free(v);
  char yaml[1024] = "a: ";
  for (int i = 0; i < 17; i++)
    strcat(yaml, "${OTC_T_BIG}");
  strcat(yaml, "\n");
  check_load_fails(yaml, "t.yaml:1:4: a: value longer than", NULL, NULL);
  /* 15 of them fit. */
  strcpy(yaml, "a: ");
  for (int i = 0; i < 15; i++)
    strcat(yaml, "${OTC_T_BIG}");
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load(yaml, &err);
  CHECK(root != NULL);
  if (root)
    CHECK_EQ_INT(strlen(otc_cfg_get(root, "a")->value), 15 * big);
  otc_cfg_free(root);
  unsetenv("OTC_T_BIG");
}

/* ---- anchors, limits ---- */

TEST(alias_expansion) {
  const char *yaml = "base: &base\n"
                     "  endpoint: x:1\n"
                     "  tags: [a, b]\n"
                     "one: *base\n"
                     "two:\n"
                     "  inner: *base\n"
                     "word: &w hello\n"
                     "again: *w\n"
                     "&k keyname: 1\n"
                     "*k : 2\n";
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load(yaml, &err);
  CHECK(root == NULL);
  /* The alias used as a key repeats "keyname": a duplicate. */
  CHECK_CONTAINS(err.msg, "t.yaml:10:1: keyname: duplicate key");
  otc_cfg_free(root);

  root = load("base: &base\n"
              "  endpoint: x:1\n"
              "  tags: [a, b]\n"
              "one: *base\n"
              "two:\n"
              "  inner: *base\n"
              "word: &w hello\n"
              "again: *w\n"
              "&k keyname: 1\n"
              "other:\n"
              "  *k : 2\n",
              &err);
  CHECK(root != NULL);
  if (!root) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  const struct otc_cfg_node *one = otc_cfg_get(root, "one");
  CHECK(one != NULL && one->type == OTC_CFG_MAP && one->n_children == 2);
  CHECK_EQ_STR(otc_cfg_path(root, "one.endpoint")->value, "x:1");
  CHECK_EQ_STR(otc_cfg_path(root, "two.inner.endpoint")->value, "x:1");
  CHECK_EQ_STR(one->key, "one");
  CHECK_EQ_INT(one->line, 4);
  /* The copy is independent of the original and its string list works. */
  CHECK(otc_cfg_path(root, "one.endpoint") != otc_cfg_path(root, "base.endpoint"));
  static const struct otc_cfg_field f[] = {
      {"endpoint", OTC_CFGK_STRING, NULL, 0, 0, 0},
      {"tags", OTC_CFGK_STRLIST, NULL, sizeof(const char *), 0, 0},
      {NULL, 0, NULL, 0, 0, 0},
  };
  struct {
    const char *endpoint;
    struct otc_cfg_strlist tags;
  } out;
  CHECK_EQ_INT(otc_cfg_apply(f, otc_cfg_path(root, "two.inner"), &out, "x", &err), 0);
  CHECK_EQ_INT(out.tags.n, 2);
  if (out.tags.n == 2)
    CHECK_EQ_STR(out.tags.items[1], "b");
  CHECK_EQ_STR(otc_cfg_get(root, "again")->value, "hello");
  CHECK_EQ_STR(otc_cfg_path(root, "other.keyname")->value, "2");
  otc_cfg_free(root);

  /* An anchor is visible only once its node is complete, so a node cannot contain itself. */
  check_load_fails("a: &a [1, *a]\n", "t.yaml:1:11: undefined alias \"*a\"", NULL, NULL);
  check_load_fails("a: &a {x: 1}\nb: {*a : 1}\n", "t.yaml:2:5: ", "map keys must be scalars", NULL);
}

TEST(billion_laughs_refused) {
  const char *yaml = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                     "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
  check_load_fails(yaml, "t.yaml:", "more than 100000 nodes", NULL);
}

TEST(deep_nesting_refused) {
  /* 300 nested flow sequences, then the same depth written as block maps. */
  char flow[700];
  memset(flow, 0, sizeof flow);
  strcpy(flow, "a: ");
  for (int i = 0; i < 300; i++)
    strcat(flow, "[");
  strcat(flow, "\n");
  check_load_fails(flow, "t.yaml:1:", "nesting deeper than 256 levels", NULL);

  size_t cap = 300 * 300 + 16;
  char *block = calloc(1, cap);
  size_t n = 0;
  for (int i = 0; i < 300; i++) {
    for (int j = 0; j < i; j++)
      block[n++] = ' ';
    n += (size_t)snprintf(block + n, cap - n, "k:\n");
  }
  check_load_fails(block, "t.yaml:", "nesting deeper than 256 levels", NULL);
  free(block);

  /* 200 levels are fine. */
  char ok[700] = "a: ";
  for (int i = 0; i < 200; i++)
    strcat(ok, "[");
  for (int i = 0; i < 200; i++)
    strcat(ok, "]");
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load(ok, &err);
  CHECK(root != NULL);
  otc_cfg_free(root);

  /* An alias that would push an anchored subtree past the limit is refused too. */
  char *deep = calloc(1, 4096);
  strcpy(deep, "a: &a ");
  for (int i = 0; i < 200; i++)
    strcat(deep, "[");
  for (int i = 0; i < 200; i++)
    strcat(deep, "]");
  strcat(deep, "\nb: ");
  for (int i = 0; i < 100; i++)
    strcat(deep, "[");
  strcat(deep, "*a");
  for (int i = 0; i < 100; i++)
    strcat(deep, "]");
  strcat(deep, "\n");
  check_load_fails(deep, "t.yaml:", "nesting deeper than 256 levels", NULL);
  free(deep);
}

TEST(garbage_inputs_do_not_crash) {
  /* A few hostile shapes; each must either load or fail with a message. */
  const char *inputs[] = {"\x00\x01\x02",
                          "{{{{",
                          "]]]]",
                          "a: !!binary AAAA\n",
                          "%YAML 1.1\n---\na: 1\n",
                          "a: &x\nb: *x\n",
                          "? a\n? b\n",
                          "a:\n- 1\n- 2\n",
                          "'a': 1\n\"a\": 2\n",
                          "a: |\n  text\n",
                          ": x\n",
                          "a: ${\n",
                          "a: $",
                          "a: ${env:X:-${env:Y}}\n",
                          "&a a: &b b\n*a : *b\n"};
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    struct otc_cfg_err err = {{0}};
    size_t len = i == 0 ? 3 : strlen(inputs[i]);
    struct otc_cfg_node *root = otc_cfg_load_string(inputs[i], len, "g.yaml", &err);
    CHECK(root != NULL || err.msg[0] != '\0');
    otc_cfg_free(root);
  }
}

/* ---- files ---- */

TEST(load_file) {
  char path[] = "/tmp/otc_test_config_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  const char *yaml = "exporters:\n  debug:\n    verbosity: detailed\n";
  CHECK_EQ_INT(write(fd, yaml, strlen(yaml)), (long long)strlen(yaml));
  close(fd);
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = otc_cfg_load_file(path, &err);
  CHECK(root != NULL);
  if (root) {
    const struct otc_cfg_node *v = otc_cfg_path(root, "exporters.debug.verbosity");
    CHECK(v != NULL);
    if (v) {
      CHECK_EQ_STR(v->value, "detailed");
      CHECK_EQ_STR(v->file, path);
      CHECK_EQ_INT(v->line, 3);
    }
  }
  otc_cfg_free(root);

  /* An error in a file names the file. */
  fd = open(path, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0);
  const char *bad = "a: 1\na: 2\n";
  CHECK_EQ_INT(write(fd, bad, strlen(bad)), (long long)strlen(bad));
  close(fd);
  root = otc_cfg_load_file(path, &err);
  CHECK(root == NULL);
  char want[128];
  snprintf(want, sizeof want, "%s:2:1: a: duplicate key", path);
  CHECK_CONTAINS(err.msg, want);
  unlink(path);

  root = otc_cfg_load_file("/nonexistent/otc/config.yaml", &err);
  CHECK(root == NULL);
  CHECK_CONTAINS(err.msg, "/nonexistent/otc/config.yaml: cannot open: No such file or directory");
}

int main(void) {
  RUN(tree_positions_and_lookup);
  RUN(empty_documents_are_empty_maps);
  RUN(structural_errors);
  RUN(yaml_syntax_error_has_line);
  RUN(duplicate_key);
  RUN(apply_defaults_null_and_absent_map);
  RUN(apply_values);
  RUN(apply_strlist_and_node_forms);
  RUN(apply_unknown_key);
  RUN(apply_wrong_type);
  RUN(apply_range_and_bad_values);
  RUN(apply_range_without_upper_bound);
  RUN(apply_bad_default_names_component);
  RUN(apply_unsupported_key_warns);
  RUN(durations_table);
  RUN(sizes_table);
  RUN(scalar_conversions);
  RUN(error_formatting);
  RUN(env_expansion);
  RUN(env_expansion_errors);
  RUN(env_expansion_is_bounded);
  RUN(alias_expansion);
  RUN(billion_laughs_refused);
  RUN(deep_nesting_refused);
  RUN(garbage_inputs_do_not_crash);
  RUN(load_file);
  return TEST_REPORT();
}
