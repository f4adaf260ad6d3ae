/* The bearertokenauth extension (tokens, token files and their reload, the server check and the
 * client value, config errors), resolving `auth.authenticator`, and the otlp receiver's tls and
 * auth config errors (certificates made here with openssl). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/component.h"
#include "core/config.h"
#include "core/errors.h"
#include "extensions/bearertokenauth/bearertokenauth.h"
#include "test.h"

extern const struct otc_component_ops otc_receiver_otlp;

static char tmpdir[] = "/tmp/otc-bta-XXXXXX";

/* Creates a bearertokenauth from YAML text; NULL with err filled on a config error. The tree is
 * kept in *root (freed by the caller after the extension). */
static struct otc_bearertokenauth *make(const char *yaml, struct otc_cfg_node **root,
                                        struct otc_cfg_err *err) {
  *root = otc_cfg_load_string(yaml, strlen(yaml), "test.yaml", err);
  if (!*root)
    return NULL;
  struct otc_create_args args = {.id = "bearertokenauth/t"};
  return otc_extension_bearertokenauth.create(&args, *root, err);
}

static bool check(struct otc_bearertokenauth *a, const char *v) {
  return otc_bearertokenauth_check(a, v, v ? strlen(v) : 0, NULL, 0);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

TEST(token_check_and_value) {
  struct otc_cfg_node *root;
  struct otc_cfg_err err = {{0}};
  struct otc_bearertokenauth *a = make("token: s3cret\n", &root, &err);
  CHECK(a != NULL);
  if (!a)
    return;
  CHECK_EQ_STR(otc_bearertokenauth_header(a), "Authorization");
  CHECK_EQ_STR(otc_bearertokenauth_scheme(a), "Bearer");
  CHECK(check(a, "Bearer s3cret"));
  CHECK(!check(a, "Bearer s3cre"));   /* a prefix */
  CHECK(!check(a, "Bearer s3cret2")); /* longer */
  CHECK(!check(a, "bearer s3cret"));  /* the scheme compares exactly, as in otelcol */
  CHECK(!check(a, "s3cret"));
  CHECK(!check(a, ""));
  char why[160] = "";
  CHECK(!otc_bearertokenauth_check(a, NULL, 0, why, sizeof why));
  CHECK(strstr(why, "missing or empty authorization header") != NULL);
  CHECK(!otc_bearertokenauth_check(a, "Bearer wrong", 12, why, sizeof why));
  CHECK(strstr(why, "does not match") != NULL);
  CHECK(strstr(why, "wrong") == NULL); /* the message does not echo what the client sent */
  /* Not NUL-terminated input (gRPC metadata) is compared by its length only. */
  CHECK(otc_bearertokenauth_check(a, "Bearer s3cretXYZ", 13, NULL, 0));
  char buf[64];
  CHECK_EQ_INT(otc_bearertokenauth_value(a, buf, sizeof buf), 0);
  CHECK_EQ_STR(buf, "Bearer s3cret");
  CHECK_EQ_INT(otc_bearertokenauth_value(a, buf, 5), OTC_ERR_TOO_LARGE);
  otc_extension_bearertokenauth.destroy(a);
  otc_cfg_free(root);
}

TEST(tokens_scheme_header) {
  struct otc_cfg_node *root;
  struct otc_cfg_err err = {{0}};
  struct otc_bearertokenauth *a =
      make("scheme: \"\"\nheader: X-Api-Key\ntokens: [one, two]\n", &root, &err);
  CHECK(a != NULL);
  if (!a)
    return;
  CHECK_EQ_STR(otc_bearertokenauth_header(a), "X-Api-Key");
  CHECK(check(a, "one"));
  CHECK(check(a, "two"));
  CHECK(!check(a, "Bearer one"));
  CHECK(!check(a, "three"));
  char buf[64];
  CHECK_EQ_INT(otc_bearertokenauth_value(a, buf, sizeof buf), 0);
  CHECK_EQ_STR(buf, "one"); /* a client sends the first */
  otc_extension_bearertokenauth.destroy(a);
  otc_cfg_free(root);
}

TEST(token_file_and_reload) {
  char path[256], yaml[400];
  snprintf(path, sizeof path, "%s/token", tmpdir);
  write_file(path, "  first \n\nsecond\r\n");
  snprintf(yaml, sizeof yaml, "token: ignored\nfilename: %s\n", path);
  struct otc_cfg_node *root;
  struct otc_cfg_err err = {{0}};
  struct otc_bearertokenauth *a = make(yaml, &root, &err);
  CHECK(a != NULL);
  if (!a)
    return;
  CHECK(check(a, "Bearer first"));
  CHECK(check(a, "Bearer second"));
  CHECK(!check(a, "Bearer ignored")); /* the file wins over token */
  /* A rotated secret is picked up within a second. */
  write_file(path, "third-and-longer\n");
  usleep(1100 * 1000);
  CHECK(check(a, "Bearer third-and-longer"));
  CHECK(!check(a, "Bearer first"));
  char buf[64];
  CHECK_EQ_INT(otc_bearertokenauth_value(a, buf, sizeof buf), 0);
  CHECK_EQ_STR(buf, "Bearer third-and-longer");
  /* A file that disappears keeps the last tokens rather than refusing everyone. */
  unlink(path);
  usleep(1100 * 1000);
  CHECK(check(a, "Bearer third-and-longer"));
  otc_extension_bearertokenauth.destroy(a);
  otc_cfg_free(root);
}

static void expect_error(const char *yaml, const char *want) {
  struct otc_cfg_node *root;
  struct otc_cfg_err err = {{0}};
  struct otc_bearertokenauth *a = make(yaml, &root, &err);
  CHECK(a == NULL);
  if (!strstr(err.msg, want))
    fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err.msg, want);
  CHECK(strstr(err.msg, want) != NULL);
  otc_extension_bearertokenauth.destroy(a);
  otc_cfg_free(root);
}

TEST(config_errors) {
  expect_error("scheme: Bearer\n", "no bearer token provided");
  expect_error("token: a\ntokens: [b]\n", "either tokens or token");
  expect_error("filename: /nonexistent/otc-token\n", "/nonexistent/otc-token");
  expect_error("token: a\nheader: \"Bad Header\"\n", "not a valid header name");
  expect_error("token: \"has space\"\n", "printable ASCII");
  expect_error("tokens: []\n", "non-empty list");
  expect_error("token: a\nsecret: b\n", "secret");
}

/* --- auth.authenticator --- */

static int fake_ext;

static void *fake_find(const void *svc, const char *id, const char *type) {
  return strcmp(id, "bearertokenauth/in") == 0 && strcmp(type, "bearertokenauth") == 0 ? &fake_ext
                                                                                       : NULL;
}

static int resolve(const char *yaml, struct otc_bearertokenauth **out, struct otc_cfg_err *err) {
  struct otc_cfg_node *root = otc_cfg_load_string(yaml, strlen(yaml), "test.yaml", err);
  struct otc_create_args args = {.id = "otlp", .find_extension = fake_find};
  int rc = root ? otc_auth_resolve(&args, otc_cfg_get(root, "auth"), "protocols.grpc.auth",
                                   "receiver/otlp", out, err)
                : OTC_ERR_CONFIG;
  otc_cfg_free(root);
  return rc;
}

TEST(auth_resolve) {
  struct otc_bearertokenauth *a = NULL;
  struct otc_cfg_err err = {{0}};
  CHECK_EQ_INT(resolve("auth:\n  authenticator: bearertokenauth/in\n", &a, &err), 0);
  CHECK(a == (void *)&fake_ext);
  CHECK_EQ_INT(resolve("other: 1\n", &a, &err), 0);
  CHECK(a == NULL);
  CHECK_EQ_INT(resolve("auth:\n  authenticator: bearertokenauth/nope\n", &a, &err), OTC_ERR_CONFIG);
  CHECK(strstr(err.msg, "not defined or not enabled") != NULL);
  CHECK_EQ_INT(resolve("auth:\n  authenticator: oidc\n", &a, &err), OTC_ERR_CONFIG);
  CHECK(strstr(err.msg, "only bearertokenauth") != NULL);
  CHECK_EQ_INT(resolve("auth:\n  nothing: x\n", &a, &err), OTC_ERR_CONFIG);
}

/* --- the otlp receiver's tls and auth keys --- */

static char *receiver_error(const char *yaml) {
  static struct otc_cfg_err err;
  memset(&err, 0, sizeof err);
  struct otc_cfg_node *root = otc_cfg_load_string(yaml, strlen(yaml), "test.yaml", &err);
  if (!root)
    return err.msg;
  struct otc_create_args args = {.id = "otlp", .find_extension = fake_find};
  void *r = otc_receiver_otlp.create(&args, root, &err);
  otc_receiver_otlp.destroy(r);
  otc_cfg_free(root);
  return r ? NULL : err.msg;
}

static void expect_receiver_error(const char *tls, const char *want) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    tls:\n%s", tls);
  const char *msg = receiver_error(yaml);
  CHECK(msg != NULL);
  if (msg && !strstr(msg, want))
    fprintf(stderr, "error \"%s\" lacks \"%s\"\n", msg, want);
  CHECK(msg && strstr(msg, want) != NULL);
}

TEST(receiver_tls_config) {
  char cmd[1024], tls[1024];
  snprintf(cmd, sizeof cmd,
           "cd %s && for n in a b; do openssl req -x509 -newkey ec -pkeyopt "
           "ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.crt -days 1 -subj /CN=$n "
           ">/dev/null 2>&1 || exit 1; done; echo garbage > junk.pem",
           tmpdir);
  int sys = system(cmd);
  CHECK_EQ_INT(sys, 0);
  if (sys != 0)
    return;
  /* Valid: cert and key, a client CA, versions. */
  snprintf(tls, sizeof tls,
           "      cert_file: %s/a.crt\n      key_file: %s/a.key\n      client_ca_file: %s/b.crt\n"
           "      min_version: \"1.3\"\n",
           tmpdir, tmpdir, tmpdir);
  char yaml[2048];
  snprintf(yaml, sizeof yaml, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    tls:\n%s", tls);
  CHECK(receiver_error(yaml) == NULL);
  snprintf(yaml, sizeof yaml, "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n    tls:\n%s", tls);
  CHECK(receiver_error(yaml) == NULL);

  snprintf(tls, sizeof tls, "      cert_file: %s/a.crt\n", tmpdir);
  expect_receiver_error(tls, "both cert_file and key_file");
  snprintf(tls, sizeof tls, "      cert_file: %s/missing.crt\n      key_file: %s/a.key\n", tmpdir,
           tmpdir);
  expect_receiver_error(tls, "missing.crt");
  /* A key that is not the certificate's: both names in the message. */
  snprintf(tls, sizeof tls, "      cert_file: %s/a.crt\n      key_file: %s/b.key\n", tmpdir,
           tmpdir);
  expect_receiver_error(tls, "b.key");
  snprintf(tls, sizeof tls, "      cert_file: %s/junk.pem\n      key_file: %s/a.key\n", tmpdir,
           tmpdir);
  expect_receiver_error(tls, "junk.pem");
  snprintf(
      tls, sizeof tls,
      "      cert_file: %s/a.crt\n      key_file: %s/a.key\n      client_ca_file: %s/junk.pem\n",
      tmpdir, tmpdir, tmpdir);
  expect_receiver_error(tls, "client_ca_file");
  snprintf(tls, sizeof tls,
           "      cert_file: %s/a.crt\n      key_file: %s/a.key\n      min_version: \"1.4\"\n",
           tmpdir, tmpdir);
  expect_receiver_error(tls, "unsupported TLS version");
  snprintf(tls, sizeof tls,
           "      cert_file: %s/a.crt\n      key_file: %s/a.key\n      min_version: \"1.3\"\n"
           "      max_version: \"1.2\"\n",
           tmpdir, tmpdir);
  expect_receiver_error(tls, "below min_version");
  expect_receiver_error("      cert_pem: x\n", "inline PEM");
  expect_receiver_error("      insecure: true\n", "insecure");
}

TEST(receiver_auth_config) {
  CHECK(receiver_error("protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n    auth:\n"
                       "      authenticator: bearertokenauth/in\n") == NULL);
  const char *msg = receiver_error("protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    auth:\n"
                                   "      authenticator: bearertokenauth/other\n");
  CHECK(msg && strstr(msg, "protocols.http.auth.authenticator") != NULL);
  msg = receiver_error("protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    middlewares: [x]\n");
  CHECK(msg && strstr(msg, "not supported") != NULL);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(token_check_and_value);
  RUN(tokens_scheme_header);
  RUN(token_file_and_reload);
  RUN(config_errors);
  RUN(auth_resolve);
  RUN(receiver_tls_config);
  RUN(receiver_auth_config);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", tmpdir);
  return TEST_REPORT();
}
