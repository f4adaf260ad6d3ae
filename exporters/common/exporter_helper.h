/* The machinery every network exporter shares, in the shape of the OpenTelemetry Collector's
 * exporterhelper: a bounded sending queue (`sending_queue`) drained by consumer threads, each
 * sending through the exporter's `send` with retries and exponential backoff
 * (`retry_on_failure`), and the standard self-metrics. An exporter supplies only how to send one
 * batch; this file owns queueing, retry, backpressure and counting.
 *
 * Outcomes of `send`: 0 delivered; OTC_ERR_RETRYABLE (or OTC_ERR_IO: connection failures) retried
 * with backoff, honouring a Retry-After the exporter reports; OTC_ERR_PERMANENT dropped at once
 * and counted with the reason. */
#ifndef OTC_EXPORTER_HELPER_H
#define OTC_EXPORTER_HELPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/batch.h"
#include "core/config.h"
#include "core/metrics.h"

/* retry_on_failure, otelcol's names and defaults. */
struct otc_retry_config {
  bool enabled;                /* true */
  int64_t initial_interval_ns; /* 5s */
  int64_t max_interval_ns;     /* 30s */
  int64_t max_elapsed_time_ns; /* 300s; 0 = retry forever */
  double multiplier;           /* 1.5 */
  double randomization_factor; /* 0.5 */
};

struct otc_file_storage;
struct otc_create_args;

/* sending_queue. */
struct otc_queue_config {
  bool enabled;           /* true */
  int64_t num_consumers;  /* 10 */
  int64_t queue_size;     /* batches; 1000 (remote write: 10000) */
  bool block_on_overflow; /* false: a full queue refuses (retryable) at once */
  /* `storage`: the id of a file_storage extension ("file_storage/queue") for a persistent queue,
   * NULL for the in-memory one (points into the config tree). otc_queue_config_bind_storage
   * resolves it into storage_ext; a helper created with storage set and storage_ext NULL fails. */
  const char *storage;
  const struct otc_cfg_node *storage_node; /* for error positions */
  const struct otc_file_storage *storage_ext;
};

/* Reads retry_on_failure and sending_queue nodes (either may be NULL: defaults). */
int otc_retry_config_parse(const struct otc_cfg_node *n, struct otc_retry_config *out,
                           const char *component, struct otc_cfg_err *err);
/* The same with another default for initial_interval (remote write's is 50ms, not 5s). */
int otc_retry_config_parse_with(const struct otc_cfg_node *n, const char *default_initial_interval,
                                struct otc_retry_config *out, const char *component,
                                struct otc_cfg_err *err);
int otc_queue_config_parse(const struct otc_cfg_node *n, int64_t default_queue_size,
                           struct otc_queue_config *out, const char *component,
                           struct otc_cfg_err *err);
/* Resolves q->storage (when set) through otc_find_extension(args, id, "file_storage") into
 * q->storage_ext: an error names the storage key when the extension is not defined or not enabled
 * in service::extensions. Warns when a pipeline feeding this exporter holds data in a batch
 * processor first (that data is acknowledged before it is persisted, as in otelcol). Every
 * exporter that calls otc_queue_config_parse calls this from its create. Returns 0 or
 * OTC_ERR_CONFIG. */
int otc_queue_config_bind_storage(struct otc_queue_config *q, const struct otc_create_args *args,
                                  struct otc_cfg_err *err);

/* What an exporter says about one send attempt. */
struct otc_send_result {
  int err;                /* 0, OTC_ERR_RETRYABLE, OTC_ERR_IO, OTC_ERR_PERMANENT */
  int64_t retry_after_ns; /* > 0 when the destination asked for a delay (Retry-After, RetryInfo) */
  char reason[160];       /* for logs and the drop metric: "HTTP 400", "connection refused" */
  int http_status;        /* the HTTP status when a response arrived, else 0 (for exporters whose
                             protocol retries more than OTLP does, e.g. every 5xx) */
};
/* The drop metric's reason label must stay bounded in cardinality, so the helper derives it from
 * `reason` rather than using the free text: a reason that starts with "HTTP <status>" is counted as
 * "http_<status>" (the issue asks for the status as the reason), one that starts with
 * "gRPC <CODE_NAME>" as "grpc_<code_name>", any other permanent failure as "permanent_error". The
 * other labels are "retry_exhausted", "retry_disabled", "shutdown" and "queue_full". */

/* Formats res->reason, cut short to fit (a printf into the fixed array without the compiler's
 * truncation warnings). */
void otc_send_result_reasonf(struct otc_send_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sends one batch (borrowed: do not unref). Called from a consumer thread; `worker` is that
 * thread's index (0..num_consumers-1) so an exporter can keep one connection per thread. */
typedef void (*otc_send_fn)(void *exporter, unsigned worker, struct otc_batch *b,
                            struct otc_send_result *res);

struct otc_exporter_helper;

/* Creates the helper for exporter `id` (self-metrics labelled exporter="<id>"). send and exporter
 * are called from the helper's threads. Returns NULL on allocation failure. */
struct otc_exporter_helper *otc_exporter_helper_create(const char *id,
                                                       const struct otc_queue_config *q,
                                                       const struct otc_retry_config *r,
                                                       otc_send_fn send, void *exporter);
/* Starts the consumer threads. */
int otc_exporter_helper_start(struct otc_exporter_helper *h);
/* The component's consume: takes ownership of b. With a persistent queue (sending_queue.storage),
 * appends b to the queue's log on disk (synced with the extension's fsync) before returning 0, and
 * refuses with OTC_ERR_REFUSED when the log is at queue_size batches or the extension's
 * queue_max_bytes. With the in-memory queue enabled, enqueues and returns 0,
 * or OTC_ERR_REFUSED when the queue is full (counted in enqueue_failed and as dropped with reason
 * "queue_full"; the receiver answers retryable); with block_on_overflow it waits for room instead,
 * until shutdown. After shutdown began: OTC_ERR_SHUTDOWN. With the queue disabled, sends
 * synchronously with retries in the caller's thread (sends serialized, worker 0) and returns the
 * final outcome: 0, OTC_ERR_PERMANENT, OTC_ERR_SHUTDOWN or the last retryable error; such failures
 * count in send_failed but not as dropped, since the caller gets the error back. */
int otc_exporter_helper_consume(struct otc_exporter_helper *h, struct otc_batch *b);
/* With a persistent queue: stops taking new batches and stops the consumers without draining (as
 * otelcol's persistent queue does): a send in progress finishes, a batch waiting for a retry and
 * everything not sent yet stay on disk for the next start, and nothing is counted as dropped.
 * Otherwise: stops taking new batches, lets the consumers drain the queue until deadline_ns from
 * now (each send still bounded by its own timeout), then drops what is left, counting it.
 * Idempotent. A batch waiting to be retried keeps waiting if its retry falls before the deadline;
 * otherwise it gets one immediate last attempt while the deadline has not passed, and is then
 * dropped ("shutdown"). */
void otc_exporter_helper_shutdown(struct otc_exporter_helper *h, int64_t deadline_ns);
void otc_exporter_helper_destroy(struct otc_exporter_helper *h); /* NULL is a no-op */
/* Whether the helper can hold joined batches (batch.h) for its send function: true unless the
 * queue is persistent, whose log records take one buffer. An exporter whose send takes joined
 * batches answers its takes_parts op with this. */
bool otc_exporter_helper_takes_parts(const struct otc_exporter_helper *h);
/* Batches currently queued, not yet handed to a consumer (for tests). */
size_t otc_exporter_helper_queue_len(const struct otc_exporter_helper *h);
/* Registers the gauges otelcol_exporter_queue_size, otelcol_exporter_queue_capacity and
 * otelcol_exporter_in_flight_requests {data_type, exporter} for each signal of the mask
 * (OTC_SIGNAL_BIT), so that they show from the start. Optional: the helper registers a signal's
 * gauges by itself when its first batch arrives. One queue serves every signal of the exporter:
 * queue_size{data_type} counts the queued batches of that signal, and queue_capacity is the shared
 * capacity (the queue gauges are absent when the queue is disabled). */
void otc_exporter_helper_register_signals(struct otc_exporter_helper *h, unsigned signals);

/* --- The HTTP client every HTTP exporter uses (libcurl) --- */

/* confighttp's client keys: endpoint, headers, timeout, compression, tls. */
struct otc_http_client_config {
  const char *endpoint;
  const struct otc_cfg_node *headers; /* map of header name → value, or NULL */
  int64_t timeout_ns;                 /* 5s (otelcol's default for HTTP exporters) */
  const char *compression;            /* "gzip" (default for otlphttp), "none", "" */
  bool tls_insecure;                  /* tls.insecure: plain http:// allowed (it always is) */
  bool tls_insecure_skip_verify;      /* tls.insecure_skip_verify */
  const char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_min_version;
  /* Filled by the field table: the `tls` map as written, and `auth` (refused by validate: "auth is
   * not supported yet"). When tls is set it wins over the tls_* members: validate and create read
   * it themselves, and otc_http_client_parse_tls copies it into the tls_* members for exporters
   * that need them (the gRPC one). */
  const struct otc_cfg_node *tls;
  const struct otc_cfg_node *auth;
  /* Set by the exporter, not the config: treat every 5xx as retryable. OTLP retries only 502, 503
   * and 504; remote write and the Loki clients retry every server error. */
  bool retry_server_errors;
  /* Set by otc_http_client_setup_auth from `auth`: the bearertokenauth extension whose token
   * every request carries (NULL: none), and whether the exporter resolved `auth` at all. */
  struct otc_bearertokenauth *auth_ext;
  bool auth_resolved;
};

struct otc_create_args;
/* Resolves c->auth (`authenticator: bearertokenauth/NAME`) through the service's extensions into
 * c->auth_ext. Exporters call it before otc_http_client_validate, which refuses an `auth` that was
 * not resolved (so that an exporter that does not support it never ignores it silently). Returns
 * 0 or OTC_ERR_CONFIG with err filled. */
int otc_http_client_setup_auth(struct otc_http_client_config *c, const struct otc_create_args *args,
                               struct otc_cfg_err *err);

/* Reads a configtls client map (insecure, insecure_skip_verify, ca_file, cert_file, key_file,
 * min_version "1.0".."1.3"; max_version, reload_interval, server_name_override,
 * include_system_ca_certs_pool, cipher_suites, ca_pem, cert_pem, key_pem and curve_preferences are
 * accepted with a warning and ignored) into the tls_* members of c; tls may be NULL (defaults:
 * all off). Checks the values (min_version, the files readable, cert_file and key_file together).
 * Strings point into the config tree. Returns 0 or OTC_ERR_CONFIG with err filled. */
int otc_http_client_parse_tls(const struct otc_cfg_node *tls, struct otc_http_client_config *c,
                              const char *component, struct otc_cfg_err *err);
/* Checks that url is an absolute http:// or https:// URL with a host; `at` and `key` place the
 * error (for exporters with per-signal endpoints such as traces_endpoint). */
int otc_http_client_check_url(const char *url, const struct otc_cfg_node *at, const char *key,
                              struct otc_cfg_err *err);

/* The field table entries for these keys, to embed in an exporter's own table: the exporter's
 * config struct must hold a struct otc_http_client_config at `base_offset`, zeroed before
 * otc_cfg_apply (the table does not write the tls_* members; with no tls map they stay as set).
 * Returns the number of entries written to out (at most OTC_HTTP_CLIENT_FIELDS): endpoint, headers,
 * timeout ("5s"), compression (default_compression), tls, auth, and confighttp's other client keys
 * as unsupported (a warning): read_buffer_size, write_buffer_size, max_idle_conns,
 * max_idle_conns_per_host, max_conns_per_host, idle_conn_timeout, disable_keep_alives, proxy_url,
 * cookies, http2_read_idle_timeout, http2_ping_timeout, compression_params, force_attempt_http2. */
#define OTC_HTTP_CLIENT_FIELDS 19
size_t otc_http_client_fields(struct otc_cfg_field *out, size_t base_offset,
                              const char *default_compression);
/* Checks what the table cannot: endpoint present and http(s), headers a map of scalars without
 * line breaks, compression "gzip", "none" or "" (others: "unsupported compression"), auth only
 * when otc_http_client_setup_auth resolved it, the
 * tls map (as otc_http_client_parse_tls, warning about its ignored keys; HTTP exporters need not
 * call parse_tls themselves). `at` is the exporter's config map (for error positions and the
 * component in warnings; may be NULL). */
int otc_http_client_validate(const struct otc_http_client_config *c, const struct otc_cfg_node *at,
                             struct otc_cfg_err *err);

struct otc_http_client; /* one per consumer thread: a curl easy handle with keep-alive */

/* c is read here and not kept (curl copies what it needs). Returns NULL on allocation or libcurl
 * failure. A client is used by one thread at a time. */
struct otc_http_client *otc_http_client_create(const struct otc_http_client_config *c);
void otc_http_client_destroy(struct otc_http_client *hc); /* NULL is a no-op */

/* POSTs body to url with content_type and extra headers ("Name: value" strings, may be NULL),
 * compressing with the configured compression unless content_encoding is given (the body is then
 * sent as is with that Content-Encoding, e.g. "snappy"). Classifies the outcome into res: 2xx → 0;
 * 429, 502, 503, 504 → OTC_ERR_RETRYABLE (Retry-After parsed into retry_after_ns); connection
 * errors and timeouts → OTC_ERR_IO (retryable), except a malformed URL or an unreadable client
 * certificate or CA file (OTC_ERR_PERMANENT);
 * other statuses → permanent ("HTTP 400: <first line of the body>"). If resp_body is not NULL the
 * response body is returned malloc'd (caller frees; at most its first 64 KiB, NULL when empty).
 * Redirects are not followed (a 3xx is permanent). A Content-Type in the configured headers
 * replaces content_type. gzip uses level 1 (speed); its buffer is charged to the memory accounting
 * for the duration of the call. */
void otc_http_client_post(struct otc_http_client *hc, const char *url, const char *content_type,
                          const char *content_encoding, const char *const *extra_headers,
                          const uint8_t *body, size_t len, struct otc_send_result *res,
                          uint8_t **resp_body, size_t *resp_len);
/* otc_http_client_post of a body in n_iov pieces sent one after the other (a joined batch's parts)
 * without joining them first: gzip reads them as one stream, and an uncompressed body is read by
 * curl piece by piece. */
void otc_http_client_postv(struct otc_http_client *hc, const char *url, const char *content_type,
                           const char *content_encoding, const char *const *extra_headers,
                           const struct iovec *iov, size_t n_iov, struct otc_send_result *res,
                           uint8_t **resp_body, size_t *resp_len);

#endif
