/* The otlp receiver: one component with two transports, gRPC (otlp_grpc.c, gRPC core) and HTTP
 * (otlp_http.c, libmicrohttpd), sharing the config, the self-metrics and the export path
 * (otlp_receiver.c): validate → batch → pipeline → status. Internal to this folder. */
#ifndef OTC_OTLP_RECEIVER_H
#define OTC_OTLP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/component.h"
#include "core/metrics.h"

struct otc_bearertokenauth;

/* protocols.*.tls: otelcol's configtls server keys. enabled when the map is given; the PEM texts
 * are read (and checked) at create, so that a bad file is a config error, and freed by destroy. */
struct otlp_tls_config {
  bool enabled;
  const char *cert_file, *key_file, *client_ca_file; /* client_ca_file: mutual TLS */
  const char *min_version;                           /* "1.0".."1.3", default "1.2" */
  const char *max_version;                           /* NULL: the newest (1.3) */
  char *cert_pem, *key_pem, *client_ca_pem;          /* malloc'd file contents */
};

/* receivers.otlp.protocols.grpc, with otelcol's names and defaults. */
struct otlp_grpc_config {
  bool enabled;                   /* the key `grpc:` is present */
  const char *endpoint;           /* "0.0.0.0:4317" */
  int64_t max_recv_msg_size_mib;  /* 4 */
  int64_t max_concurrent_streams; /* 0: gRPC's default */
  const char *transport;          /* "tcp" */
  struct otlp_tls_config tls;
  struct otc_bearertokenauth *auth; /* auth.authenticator; NULL: none. Borrowed from the service */
};

/* receivers.otlp.protocols.http. */
struct otlp_http_config {
  bool enabled;
  const char *endpoint;           /* "0.0.0.0:4318" */
  const char *traces_url_path;    /* "/v1/traces" */
  const char *metrics_url_path;   /* "/v1/metrics" */
  const char *logs_url_path;      /* "/v1/logs" */
  uint64_t max_request_body_size; /* 20 MiB, bounding the body after decompression too */
  struct otc_cfg_strlist cors_allowed_origins; /* cors.allowed_origins ("*", wildcard hosts) */
  struct otc_cfg_strlist cors_allowed_headers; /* cors.allowed_headers */
  int64_t cors_max_age;                        /* cors.max_age, seconds; 0 = unset */
  /* Slow and idle clients (confighttp's read_timeout 0, read_header_timeout 1m, idle_timeout 1m):
   * libmicrohttpd has one inactivity timeout per connection, set to the smallest non-zero one. */
  int64_t read_timeout_ns, read_header_timeout_ns, idle_timeout_ns;
  int64_t max_connections; /* ours: open connections at most (1024); more wait in the backlog */
  struct otlp_tls_config tls;
  struct otc_bearertokenauth *auth; /* auth.authenticator; NULL: none. Borrowed from the service */
};

struct otlp_grpc_server; /* otlp_grpc.c */
struct otlp_http_server; /* otlp_http.c */

struct otlp_receiver {
  const char *id;
  const char *log_component; /* "receiver/<id>", the component name in otc_log lines */
  struct otc_consumer next[OTC_SIGNAL_COUNT]; /* .consume NULL: signal not wired */
  struct otlp_grpc_config grpc;
  struct otlp_http_config http;
  int max_depth; /* AnyValue nesting limit, OTC_WIRE_DEFAULT_MAX_DEPTH */
  struct otc_receiver_metrics grpc_metrics; /* transport="grpc" */
  struct otc_receiver_metrics http_metrics; /* transport="http" */
  /* ours: otelcol_receiver_unauthenticated_requests{receiver,transport}, requests refused for a
   * missing or wrong token (otelcol refuses them before its receiver metrics see them). */
  struct otc_counter *grpc_unauthenticated, *http_unauthenticated;
  struct otlp_grpc_server *grpc_srv;
  struct otlp_http_server *http_srv;
};

/* What became of one Export request. */
struct otlp_export_result {
  int err;          /* 0; OTC_ERR_INVALID: bad data (400 / INVALID_ARGUMENT); OTC_ERR_REFUSED and
                       other retryable codes: retry later (503 / UNAVAILABLE + RetryInfo). A
                       signal with no pipeline is answered by the transport, never exported. */
  size_t items;     /* items handed to the pipeline */
  size_t rejected;  /* items dropped as invalid (partial_success.rejected_*) */
  char message[256];
};

/* Validates protobuf wire bytes of signal s, charges and builds the batch, and hands it to that
 * signal's pipeline, counting the outcome in m. With adopt, data is a malloc'd buffer of which
 * `charged` bytes were already charged (otc_mem_reserve) and ownership passes in every case;
 * without, data is borrowed and copied through admission control. Fills res. */
void otlp_receiver__export(struct otlp_receiver *r, enum otc_signal s,
                           struct otc_receiver_metrics *m, uint8_t *data, size_t len, bool adopt,
                           size_t charged, struct otlp_export_result *res);

/* Encodes the Export{Trace,Metrics,Logs}ServiceResponse for res (partial_success set when
 * res->rejected > 0) as protobuf wire bytes; *out malloc'd (may be NULL with *len 0 for an empty
 * response). Returns 0 or OTC_ERR_NOMEM. */
int otlp_receiver__encode_response(enum otc_signal s, const struct otlp_export_result *res,
                                   uint8_t **out, size_t *len);


/* Frees the PEM texts of t (which stays otherwise as is); safe on a zeroed config. */
void otlp_receiver__tls_free(struct otlp_tls_config *t);
/* A configtls version string ("1.0".."1.3") as 10..13, or def when v is NULL or unknown. */
int otlp_receiver__tls_version(const char *v, int def);

/* Transports: start binds and serves; stop stops accepting, finishes calls in flight, frees. */
int otlp_grpc__start(struct otlp_receiver *r);
void otlp_grpc__stop(struct otlp_receiver *r);
int otlp_http__start(struct otlp_receiver *r);
void otlp_http__stop(struct otlp_receiver *r);
/* The TCP port the HTTP server listens on (useful with port 0), or -1 when it is not running. */
int otlp_http__port(const struct otlp_receiver *r);

#endif
