/* The service graph: config validation at the service level (every error names file:line and the
 * offending id) and the data path through receivers' consumers, processors and fan-out. */
#include "test.h"

#include "core/component.h"
#include "core/config.h"
#include "core/memory.h"
#include "core/service.h"

/* Creates a service from YAML text; returns it or NULL with the error copied to errbuf. */
static struct otc_service *make(const char *yaml, struct otc_cfg_node **root, char *errbuf) {
  struct otc_cfg_err err = {{0}};
  *root = otc_cfg_load_string(yaml, strlen(yaml), "test.yaml", &err);
  if (!*root) {
    snprintf(errbuf, 512, "%s", err.msg);
    return NULL;
  }
  struct otc_service *svc = otc_service_create(*root, &err);
  snprintf(errbuf, 512, "%s", err.msg);
  return svc;
}

/* Expects creation to fail with an error that contains each of the given substrings. */
static void expect_error(const char *yaml, const char *want1, const char *want2) {
  struct otc_cfg_node *root = NULL;
  char msg[512] = "";
  struct otc_service *svc = make(yaml, &root, msg);
  CHECK(svc == NULL);
  CHECK_CONTAINS(msg, want1);
  if (want2)
    CHECK_CONTAINS(msg, want2);
  otc_service_destroy(svc);
  otc_cfg_free(root);
}

#define BASE_COMPONENTS                                                                            \
  "receivers:\n"                                                                                   \
  "  otlp:\n"                                                                                      \
  "    protocols:\n"                                                                               \
  "      http:\n"                                                                                  \
  "        endpoint: 127.0.0.1:0\n"                                                                \
  "processors:\n"                                                                                  \
  "  batch:\n"                                                                                     \
  "exporters:\n"                                                                                   \
  "  nop:\n"                                                                                       \
  "  debug:\n"

TEST(valid_config_builds) {
  struct otc_cfg_node *root = NULL;
  char msg[512];
  struct otc_service *svc = make(BASE_COMPONENTS "service:\n"
                                                 "  pipelines:\n"
                                                 "    traces:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [nop, debug]\n"
                                                 "    traces/2:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      exporters: [nop]\n"
                                                 "    logs:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      exporters: [debug]\n",
                                 &root, msg);
  CHECK(svc != NULL);
  if (!svc)
    fprintf(stderr, "error: %s\n", msg);
  otc_service_destroy(svc);
  otc_cfg_free(root);
}

/* Joined batches (the batch processor's merge by reference) go only where every exporter sends
 * them as they are: the OTLP exporters with an in-memory queue, not JSON, not a persistent queue,
 * not a fan-out that includes another exporter. */
TEST(joined_batches_only_where_taken) {
  struct otc_cfg_node *root = NULL;
  char msg[512];
  struct otc_service *svc = make(BASE_COMPONENTS "  otlp:\n"
                                                 "    endpoint: 127.0.0.1:9\n"
                                                 "  otlphttp:\n"
                                                 "    endpoint: http://127.0.0.1:9\n"
                                                 "  otlphttp/json:\n"
                                                 "    endpoint: http://127.0.0.1:9\n"
                                                 "    encoding: json\n"
                                                 "  otlp/disk:\n"
                                                 "    endpoint: 127.0.0.1:9\n"
                                                 "    sending_queue:\n"
                                                 "      storage: file_storage\n"
                                                 "extensions:\n"
                                                 "  file_storage:\n"
                                                 "    directory: /tmp\n"
                                                 "service:\n"
                                                 "  extensions: [file_storage]\n"
                                                 "  pipelines:\n"
                                                 "    traces:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [otlp]\n"
                                                 "    traces/both:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [otlp, otlphttp]\n"
                                                 "    traces/debug:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [otlp, debug]\n"
                                                 "    logs:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [otlp/disk]\n"
                                                 "    metrics:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [otlphttp/json]\n",
                                 &root, msg);
  CHECK(svc != NULL);
  if (!svc) {
    fprintf(stderr, "error: %s\n", msg);
  } else {
    CHECK(otc_service__pipeline_takes_parts(svc, "traces"));
    CHECK(otc_service__pipeline_takes_parts(svc, "traces/both"));
    CHECK(!otc_service__pipeline_takes_parts(svc, "traces/debug"));
    CHECK(!otc_service__pipeline_takes_parts(svc, "logs"));
    CHECK(!otc_service__pipeline_takes_parts(svc, "metrics"));
    CHECK(!otc_service__pipeline_takes_parts(svc, "traces/none"));
  }
  otc_service_destroy(svc);
  otc_cfg_free(root);
}

TEST(undefined_reference) {
  expect_error(BASE_COMPONENTS "service:\n"
                               "  pipelines:\n"
                               "    traces:\n"
                               "      receivers: [otlp]\n"
                               "      exporters: [otlp/tempo]\n",
               "test.yaml:15:", "references exporter \"otlp/tempo\" which is not configured");
}

TEST(unknown_type) {
  expect_error("receivers:\n  zipkin:\nexporters:\n  nop:\n"
               "service:\n  pipelines:\n    traces:\n      receivers: [zipkin]\n"
               "      exporters: [nop]\n",
               "test.yaml:2:", "unknown receiver type \"zipkin\"");
}

TEST(unknown_top_level_key) {
  expect_error(BASE_COMPONENTS "servce:\n  pipelines: {}\n", "test.yaml:11:", "servce");
}

TEST(pipeline_without_receivers) {
  expect_error(BASE_COMPONENTS "service:\n"
                               "  pipelines:\n"
                               "    traces:\n"
                               "      exporters: [nop]\n",
               "traces", "at least one receiver");
}

TEST(unknown_pipeline_type) {
  expect_error(BASE_COMPONENTS "service:\n"
                               "  pipelines:\n"
                               "    profiles:\n"
                               "      receivers: [otlp]\n"
                               "      exporters: [nop]\n",
               "test.yaml:13:", "unknown pipeline type \"profiles\"");
}

TEST(duplicate_reference) {
  expect_error(BASE_COMPONENTS "service:\n"
                               "  pipelines:\n"
                               "    traces:\n"
                               "      receivers: [otlp]\n"
                               "      processors: [batch, batch]\n"
                               "      exporters: [nop]\n",
               "test.yaml:15:", "twice");
}

TEST(no_pipelines) {
  expect_error(BASE_COMPONENTS "service:\n  telemetry:\n    logs:\n      level: info\n",
               "at least one pipeline", NULL);
}

TEST(component_config_error_has_position) {
  expect_error("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n"
               "exporters:\n  debug:\n    verbosityy: detailed\n"
               "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
               "      exporters: [debug]\n",
               "test.yaml:8:", "verbosityy");
}

TEST(unused_component_is_validated) {
  expect_error(BASE_COMPONENTS "  file/unused:\n    format: json\n"
                               "service:\n"
                               "  pipelines:\n"
                               "    traces:\n"
                               "      receivers: [otlp]\n"
                               "      exporters: [nop]\n",
               "file/unused", NULL);
}

TEST(telemetry_forms) {
  /* The legacy address form and the readers form are both accepted; a bad level is refused. */
  const char *ok[] = {
      BASE_COMPONENTS
      "service:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:0\n"
      "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nop]\n",
      BASE_COMPONENTS
      "service:\n  telemetry:\n    metrics:\n      level: detailed\n"
      "      readers:\n        - pull:\n            exporter:\n"
      "              prometheus:\n                host: 127.0.0.1\n"
      "                port: 0\n                without_type_suffix: false\n"
      "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nop]\n",
  };
  for (size_t i = 0; i < 2; i++) {
    struct otc_cfg_node *root = NULL;
    char msg[512];
    struct otc_service *svc = make(ok[i], &root, msg);
    CHECK(svc != NULL);
    if (!svc)
      fprintf(stderr, "error: %s\n", msg);
    otc_service_destroy(svc);
    otc_cfg_free(root);
  }
  expect_error(BASE_COMPONENTS "service:\n  telemetry:\n    metrics:\n      level: verbose\n"
                               "  pipelines:\n    traces:\n      receivers: [otlp]\n"
                               "      exporters: [nop]\n",
               "test.yaml:14:", "unknown metrics level");
}

TEST(start_and_shutdown) {
  struct otc_cfg_node *root = NULL;
  char msg[512];
  struct otc_service *svc = make(BASE_COMPONENTS "service:\n"
                                                 "  telemetry:\n"
                                                 "    metrics:\n"
                                                 "      level: none\n"
                                                 "  pipelines:\n"
                                                 "    traces:\n"
                                                 "      receivers: [otlp]\n"
                                                 "      processors: [batch]\n"
                                                 "      exporters: [nop]\n",
                                 &root, msg);
  CHECK(svc != NULL);
  if (svc) {
    CHECK(!otc_service_ready());
    CHECK_EQ_INT(otc_service_start(svc), 0);
    CHECK(otc_service_ready());
    otc_service_shutdown(svc);
    CHECK(!otc_service_ready());
    otc_service_shutdown(svc); /* idempotent */
  }
  otc_service_destroy(svc);
  otc_cfg_free(root);
}

int main(void) {
  RUN(valid_config_builds);
  RUN(joined_batches_only_where_taken);
  RUN(undefined_reference);
  RUN(unknown_type);
  RUN(unknown_top_level_key);
  RUN(pipeline_without_receivers);
  RUN(unknown_pipeline_type);
  RUN(duplicate_reference);
  RUN(no_pipelines);
  RUN(component_config_error_has_position);
  RUN(unused_component_is_validated);
  RUN(telemetry_forms);
  RUN(start_and_shutdown);
  return TEST_REPORT();
}
