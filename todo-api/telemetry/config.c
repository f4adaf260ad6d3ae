/* The SDK's configuration from the standard environment variables
 * (opentelemetry-specification, configuration/sdk-environment-variables.md and
 * protocol/exporter.md). */
#include "otel_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_ENDPOINT "http://localhost:4318"

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Reads a non-negative integer variable; an invalid value is reported and the default kept. */
static long env_long(const char *name, long def, long min, long max) {
  const char *v = env_nonempty(name);
  if (!v) {
    return def;
  }
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
    fprintf(stderr, "todo-api: ignoring invalid %s=%s (using %ld)\n", name, v, def);
    return def;
  }
  return n;
}

static bool env_true(const char *name) {
  const char *v = env_nonempty(name);
  return v && strcasecmp(v, "true") == 0;
}

/* "none" in OTEL_{TRACES,METRICS,LOGS}_EXPORTER turns a signal's export off; "otlp" (the default)
 * keeps it; anything else is not something this SDK can do, so it says so and keeps OTLP. */
static bool exporter_enabled(const char *name) {
  const char *v = env_nonempty(name);
  if (!v || strcasecmp(v, "otlp") == 0) {
    return true;
  }
  if (strcasecmp(v, "none") == 0) {
    return false;
  }
  fprintf(stderr, "todo-api: %s=%s is not supported, using otlp\n", name, v);
  return true;
}

static int hex_nibble(int c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = tolower(c);
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

/* Decodes %XX escapes of s[0..len) into a new string; a malformed escape is kept literally. */
static char *percent_decode(const char *s, size_t len) {
  char *out = malloc(len + 1);
  size_t o = 0;
  if (!out) {
    return NULL;
  }
  for (size_t i = 0; i < len; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < len && (hi = hex_nibble((unsigned char)s[i + 1])) >= 0 &&
        (lo = hex_nibble((unsigned char)s[i + 2])) >= 0) {
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

/* Trims spaces and tabs around s[*start..*end). */
static void trim(const char *s, size_t *start, size_t *end) {
  while (*start < *end && (s[*start] == ' ' || s[*start] == '\t')) {
    (*start)++;
  }
  while (*end > *start && (s[*end - 1] == ' ' || s[*end - 1] == '\t')) {
    (*end)--;
  }
}

void todo_tel_kv_free(struct todo_tel_kv *kv, size_t n) {
  if (!kv) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

int todo_tel_parse_kv_list(const char *s, struct todo_tel_kv **out, size_t *n_out) {
  struct todo_tel_kv *kv = NULL;
  size_t n = 0, cap = 0;
  int rc = -1;
  *out = NULL;
  *n_out = 0;
  if (!s) {
    return 0;
  }
  size_t len = strlen(s), pos = 0;
  while (pos <= len) {
    size_t end = pos;
    while (end < len && s[end] != ',') {
      end++;
    }
    const char *eq = memchr(s + pos, '=', end - pos);
    if (eq) {
      size_t ks = pos, ke = (size_t)(eq - s), vs = ke + 1, ve = end;
      trim(s, &ks, &ke);
      trim(s, &vs, &ve);
      if (ke > ks) {
        if (n == cap) {
          size_t ncap = cap ? cap * 2 : 8;
          struct todo_tel_kv *nkv = realloc(kv, ncap * sizeof(*kv));
          if (!nkv) {
            goto cleanup;
          }
          kv = nkv;
          cap = ncap;
        }
        kv[n].key = percent_decode(s + ks, ke - ks);
        kv[n].value = percent_decode(s + vs, ve - vs);
        n++;
        if (!kv[n - 1].key || !kv[n - 1].value) {
          goto cleanup;
        }
      }
    } else if (end > pos) {
      size_t ks = pos, ke = end;
      trim(s, &ks, &ke);
      if (ke > ks) {
        fprintf(stderr, "todo-api: ignoring a member without '=' in a key=value list\n");
      }
    }
    pos = end + 1;
  }
  *out = kv;
  *n_out = n;
  kv = NULL;
  n = 0;
  rc = 0;
cleanup:
  todo_tel_kv_free(kv, n);
  return rc;
}

char *todo_tel_signal_url(const char *base, const char *per_signal, const char *signal_path) {
  if (per_signal && *per_signal) {
    return strdup(per_signal);
  }
  if (!base || !*base) {
    base = DEFAULT_ENDPOINT;
  }
  size_t blen = strlen(base);
  bool slash = base[blen - 1] == '/';
  size_t n = blen + strlen(signal_path) + 2;
  char *url = malloc(n);
  if (url) {
    snprintf(url, n, "%s%s%s", base, slash ? "" : "/", signal_path);
  }
  return url;
}

void todo_tel_config_free(struct todo_tel_config *cfg) {
  if (!cfg) {
    return;
  }
  free(cfg->service_name);
  free(cfg->service_version);
  free(cfg->traces_endpoint);
  free(cfg->metrics_endpoint);
  free(cfg->logs_endpoint);
  todo_tel_kv_free(cfg->resource, cfg->n_resource);
  todo_tel_kv_free(cfg->headers, cfg->n_headers);
  memset(cfg, 0, sizeof(*cfg));
}

int todo_tel_config_from_env(struct todo_tel_config *cfg, const char *default_service_name) {
  const char *base = env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT");
  const char *service = env_nonempty("OTEL_SERVICE_NAME");
  const char *protocol = env_nonempty("OTEL_EXPORTER_OTLP_PROTOCOL");
  memset(cfg, 0, sizeof(*cfg));
  cfg->disabled = env_true("OTEL_SDK_DISABLED");
  cfg->export_timeout_ms = (int)env_long("OTEL_EXPORTER_OTLP_TIMEOUT", 5000, 1, 600000);
  cfg->metric_interval_ms = (int)env_long("OTEL_METRIC_EXPORT_INTERVAL", 60000, 10, INT_MAX);
  cfg->bsp_delay_ms = (int)env_long("OTEL_BSP_SCHEDULE_DELAY", 5000, 1, INT_MAX);
  cfg->blrp_delay_ms = (int)env_long("OTEL_BLRP_SCHEDULE_DELAY", 1000, 1, INT_MAX);
  cfg->span_queue_size = (size_t)env_long("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1 << 20);
  cfg->log_queue_size = (size_t)env_long("OTEL_BLRP_MAX_QUEUE_SIZE", 2048, 1, 1 << 20);
  cfg->max_export_batch = (size_t)env_long("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1 << 16);
  if (protocol && strcmp(protocol, "http/protobuf") != 0) {
    fprintf(stderr,
            "todo-api: OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported, using "
            "http/protobuf\n",
            protocol);
  }
  if (todo_tel_parse_kv_list(getenv("OTEL_RESOURCE_ATTRIBUTES"), &cfg->resource,
                             &cfg->n_resource) != 0 ||
      todo_tel_parse_kv_list(getenv("OTEL_EXPORTER_OTLP_HEADERS"), &cfg->headers,
                             &cfg->n_headers) != 0) {
    goto fail;
  }
  /* OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES (specification). */
  if (!service) {
    for (size_t i = 0; i < cfg->n_resource; i++) {
      if (strcmp(cfg->resource[i].key, "service.name") == 0 && *cfg->resource[i].value) {
        service = cfg->resource[i].value;
      }
    }
  }
  cfg->service_name = strdup(service ? service : default_service_name);
  if (!cfg->service_name) {
    goto fail;
  }
  if (exporter_enabled("OTEL_TRACES_EXPORTER") &&
      !(cfg->traces_endpoint = todo_tel_signal_url(
            base, env_nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "v1/traces"))) {
    goto fail;
  }
  if (exporter_enabled("OTEL_METRICS_EXPORTER") &&
      !(cfg->metrics_endpoint = todo_tel_signal_url(
            base, env_nonempty("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"), "v1/metrics"))) {
    goto fail;
  }
  if (exporter_enabled("OTEL_LOGS_EXPORTER") &&
      !(cfg->logs_endpoint = todo_tel_signal_url(
            base, env_nonempty("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"), "v1/logs"))) {
    goto fail;
  }
  return 0;
fail:
  todo_tel_config_free(cfg);
  return -1;
}
