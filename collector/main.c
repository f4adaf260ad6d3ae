/* The collector's command line: run (the default), validate, components, --version, --help. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/component.h"
#include "core/config.h"
#include "core/log.h"
#include "core/service.h"

#include "core/version.h"

/* How long a graceful shutdown may take before the process gives up on flushing. */
#define SHUTDOWN_DEADLINE_S 30

/* The config used without --config: OTLP in on both transports, memory_limiter and batch, the
 * debug exporter for every signal, and the health check. Endpoints and the log verbosity can be
 * moved with environment variables without writing a file. */
static const char default_config[] =
    "receivers:\n"
    "  otlp:\n"
    "    protocols:\n"
    "      grpc:\n"
    "        endpoint: ${env:OTC_GRPC_ENDPOINT:-0.0.0.0:4317}\n"
    "      http:\n"
    "        endpoint: ${env:OTC_HTTP_ENDPOINT:-0.0.0.0:4318}\n"
    "processors:\n"
    "  memory_limiter:\n"
    "    check_interval: 1s\n"
    "    limit_mib: 512\n"
    "    spike_limit_mib: 128\n"
    "  batch:\n"
    "exporters:\n"
    "  debug:\n"
    "    verbosity: ${env:OTC_DEBUG_VERBOSITY:-basic}\n"
    "extensions:\n"
    "  health_check:\n"
    "    endpoint: ${env:OTC_HEALTH_ENDPOINT:-0.0.0.0:13133}\n"
    "service:\n"
    "  extensions: [health_check]\n"
    "  telemetry:\n"
    "    metrics:\n"
    "      address: ${env:OTC_METRICS_ENDPOINT:-127.0.0.1:8888}\n"
    "  pipelines:\n"
    "    traces:\n"
    "      receivers: [otlp]\n"
    "      processors: [memory_limiter, batch]\n"
    "      exporters: [debug]\n"
    "    metrics:\n"
    "      receivers: [otlp]\n"
    "      processors: [memory_limiter, batch]\n"
    "      exporters: [debug]\n"
    "    logs:\n"
    "      receivers: [otlp]\n"
    "      processors: [memory_limiter, batch]\n"
    "      exporters: [debug]\n";

static void usage(FILE *out) {
  fprintf(out,
          "usage: collector [--config FILE]           run (without --config: the default config)\n"
          "       collector validate --config FILE    check a config and exit 0 (valid) or 1\n"
          "       collector components                list the component types built in\n"
          "       collector print-default-config      print the default config\n"
          "       collector --version | --help\n"
          "FILE may be written file:FILE, as the OpenTelemetry Collector accepts it.\n");
}

static void list_components(void) {
  static const char *const kinds[] = {"receivers", "processors", "exporters", "extensions"};
  for (int k = OTC_KIND_RECEIVER; k <= OTC_KIND_EXTENSION; k++) {
    printf("%s:\n", kinds[k]);
    for (size_t i = 0; otc_components[i]; i++) {
      const struct otc_component_ops *ops = otc_components[i];
      if ((int)ops->kind != k)
        continue;
      printf("  - %s", ops->type);
      for (size_t j = 0; ops->aliases && ops->aliases[j]; j++)
        printf(" (alias %s)", ops->aliases[j]);
      printf("\n");
    }
  }
}

static struct otc_cfg_node *load_config(const char *path, struct otc_cfg_err *err) {
  if (!path)
    return otc_cfg_load_string(default_config, sizeof default_config - 1, "<default config>", err);
  if (strncmp(path, "file:", 5) == 0)
    path += 5;
  return otc_cfg_load_file(path, err);
}

/* The signals the service stops on; static because the watchdog thread reads it after run()'s
 * frame may be gone. */
static sigset_t stop_signals;

/* Waits out the shutdown deadline; if the process is still flushing by then, or a second signal
 * arrives, it exits at once. */
static void *shutdown_watchdog(void *arg) {
  (void)arg;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += SHUTDOWN_DEADLINE_S;
  for (;;) {
    struct timespec now, left;
    clock_gettime(CLOCK_MONOTONIC, &now);
    left.tv_sec = deadline.tv_sec - now.tv_sec;
    left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
    if (left.tv_nsec < 0) {
      left.tv_sec--;
      left.tv_nsec += 1000000000L;
    }
    if (left.tv_sec < 0)
      break;
    int sig = sigtimedwait(&stop_signals, NULL, &left);
    if (sig > 0) {
      otc_warn(NULL, "second signal %d: exiting without finishing the shutdown", sig);
      _exit(1);
    }
    /* EINTR (a sanitizer's exit handler, a debugger) is not the deadline: wait again. */
    if (errno != EINTR)
      break;
  }
  otc_error(NULL, "shutdown took longer than %ds: exiting without finishing it",
            SHUTDOWN_DEADLINE_S);
  _exit(1);
  return NULL;
}

/* How long after start the pages touched only by start-up are released: by then every
 * component's threads run their steady-state loops. */
#define SETTLE_S 2
#define MAX_TRIM_RANGES 1024

/* Releases from the resident set the pages of the executable and shared libraries that start-up
 * touched once and idling does not use: the dynamic linker's symbol lookups and relocations
 * through a dozen C and C++ libraries (gRPC, libstdc++, OpenSSL, GnuTLS...) leave some 15 MiB of
 * their clean file pages mapped, three quarters of the idle RSS. Only read-only mappings of files
 * with no private (copy-on-write) page are released, so nothing is lost: a page used again is
 * mapped back from the page cache by a minor fault. */
static void release_startup_pages(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f)
    return;
  static struct { uintptr_t start, end; } ranges[MAX_TRIM_RANGES];
  size_t n = 0;
  char line[512];
  uintptr_t start = 0, end = 0;
  bool candidate = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perms[8];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path_at) == 3) {
      start = a;
      end = b;
      /* A file (not [heap], [stack], [vdso]...) mapped without write permission. */
      candidate = path_at > 0 && line[path_at] == '/' && perms[1] != 'w';
      continue;
    }
    unsigned long anon;
    if (candidate && sscanf(line, "Anonymous: %lu kB", &anon) == 1) {
      if (anon == 0 && n < MAX_TRIM_RANGES) {
        ranges[n].start = start;
        ranges[n].end = end;
        n++;
      }
      candidate = false;
    }
  }
  fclose(f);
  for (size_t i = 0; i < n; i++)
    madvise((void *)ranges[i].start, ranges[i].end - ranges[i].start, MADV_DONTNEED);
}

static int run(const char *config_path, bool validate_only) {
  /* glibc gives each thread that allocates its own 64 MiB heap arena; with gRPC's, libcurl's and
   * libmicrohttpd's threads each holding freed memory in its own arena, the Loki path peaked at
   * 131 MiB at 100k records/s, and at 64 MiB with two arenas, for no measurable CPU. A user's
   * MALLOC_ARENA_MAX still wins. */
  if (!getenv("MALLOC_ARENA_MAX"))
    mallopt(M_ARENA_MAX, 2);
  /* Every thread the components start inherits this mask, so the signals reach sigwait here. */
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *root = load_config(config_path, &err);
  if (!root) {
    otc_error(NULL, "invalid configuration: %s", err.msg);
    return 1;
  }
  struct otc_service *svc = otc_service_create(root, &err);
  if (!svc) {
    otc_error(NULL, "invalid configuration: %s", err.msg);
    otc_cfg_free(root);
    return 1;
  }
  if (validate_only) {
    otc_service_destroy(svc);
    otc_cfg_free(root);
    printf("configuration %s is valid\n", config_path ? config_path : "<default config>");
    return 0;
  }

  otc_info(NULL, "starting collector %s with %s", OTC_VERSION,
           config_path ? config_path : "the default config");
  int rc = otc_service_start(svc);
  if (rc != 0) {
    otc_service_destroy(svc);
    otc_cfg_free(root);
    return 1;
  }
  struct timespec settle = {.tv_sec = SETTLE_S, .tv_nsec = 0};
  int sig = sigtimedwait(&stop_signals, NULL, &settle);
  if (sig < 0) {
    release_startup_pages();
    while (sigwait(&stop_signals, &sig) != 0) {
    }
  }
  otc_info(NULL, "received signal %d, shutting down", sig);
  pthread_t watchdog;
  pthread_create(&watchdog, NULL, shutdown_watchdog, NULL);
  pthread_detach(watchdog);
  otc_service_shutdown(svc);
  otc_service_destroy(svc);
  otc_cfg_free(root);
  otc_info(NULL, "shutdown complete");
  return 0;
}

int main(int argc, char **argv) {
  const char *config = NULL;
  bool validate = false;
  int i = 1;
  if (i < argc && strcmp(argv[i], "validate") == 0) {
    validate = true;
    i++;
  } else if (i < argc && strcmp(argv[i], "components") == 0) {
    list_components();
    return 0;
  } else if (i < argc && strcmp(argv[i], "print-default-config") == 0) {
    fputs(default_config, stdout);
    return 0;
  }
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
      printf("collector version %s\n", OTC_VERSION);
      return 0;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "collector: --config needs a file\n");
        return 2;
      }
      if (config) {
        fprintf(stderr, "collector: only one --config is supported\n");
        return 2;
      }
      config = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      if (config) {
        fprintf(stderr, "collector: only one --config is supported\n");
        return 2;
      }
      config = a + 9;
    } else {
      fprintf(stderr, "collector: unknown argument \"%s\"\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (validate && !config) {
    fprintf(stderr, "collector: validate needs --config FILE\n");
    return 2;
  }
  return run(config, validate);
}
