/* The OTLP/gRPC transport of the otlp receiver, on the gRPC core C API (libgrpc 1.51).
 *
 * One server and one completion queue served by a few threads. Each wired signal's Export method
 * is registered with its request message read up front (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER),
 * and a fixed number of calls is kept requested per method so that concurrent clients are matched
 * at once. A call is one context that cycles: requested → answered (one batch of initial metadata,
 * message, status and close) → requested again. gRPC core does not answer methods nobody asked
 * for (such a call waits for its deadline), so generic calls are requested too and answered
 * UNIMPLEMENTED: that covers unknown methods and the signals this receiver has no pipeline for. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "receivers/otlp/otlp_receiver.h"
#include "extensions/bearertokenauth/bearertokenauth.h"

/* Threads serving the completion queue: one per two CPUs, at most GRPC_MAX_THREADS. Each one also
 * polls the sockets; on a small machine a second thread mostly adds wake-ups and lock handoffs (one
 * thread did 1.2-1.3M spans per CPU-second where two did 1.0M, on 2 CPUs), while one thread
 * validates several thousand 512-span requests a second. */
#define GRPC_MAX_THREADS 4
#define CALLS_PER_METHOD 8 /* requested calls kept outstanding per registered method */
#define GENERIC_CALLS 2    /* requested calls kept outstanding for unregistered methods */
#define STOP_GRACE_SEC 5   /* how long stop lets calls in flight finish before cancelling them */
#define RETRY_DELAY_SEC 1  /* RetryInfo.retry_delay sent with UNAVAILABLE */
#define GENERIC_METHOD (-1)

static const char *const method_paths[OTC_SIGNAL_COUNT] = {
    [OTC_SIGNAL_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [OTC_SIGNAL_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    [OTC_SIGNAL_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

enum call_state { CALL_REQUESTED, CALL_ANSWERING };

/* One requested call and, once matched, its answer. Everything the answer batch points to lives
 * here until that batch completes. */
struct call_ctx {
  struct otlp_grpc_server *srv;
  struct call_ctx *prev, *next; /* srv->calls */
  int method;                   /* an enum otc_signal, or GENERIC_METHOD */
  enum call_state state;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array request_md;
  grpc_call_details details; /* generic calls only */
  grpc_byte_buffer *payload; /* registered calls: the request message, NULL if none was sent */
  grpc_byte_buffer *response;
  grpc_slice status_msg;
  grpc_metadata trailer; /* grpc-status-details-bin */
  size_t n_trailers;
  int cancelled; /* RECV_CLOSE_ON_SERVER's output, required by the op */
};

struct otlp_grpc_server {
  struct otlp_receiver *r;
  grpc_server *server;
  grpc_completion_queue *cq;
  void *methods[OTC_SIGNAL_COUNT]; /* registered method handles, NULL where not wired */
  pthread_t threads[GRPC_MAX_THREADS];
  int n_threads;
  pthread_mutex_t mu; /* guards everything below */
  pthread_cond_t cond;
  bool shutting_down; /* no call is requested once set */
  bool shutdown_done; /* the shutdown tag completed */
  struct call_ctx *calls;
  char shutdown_tag; /* its address is the tag of grpc_server_shutdown_and_notify */
};

/* The component name of the receiver's log lines ("receiver/otlp"). */
static const char *log_name(const struct otlp_receiver *r) {
  return r->log_component ? r->log_component : r->id;
}

/* Releases what the previous call of ctx held so that ctx can be requested again. */
static void call_reset(struct call_ctx *c) {
  if (c->call) {
    grpc_call_unref(c->call);
    c->call = NULL;
  }
  grpc_metadata_array_destroy(&c->request_md);
  grpc_metadata_array_init(&c->request_md);
  if (c->method == GENERIC_METHOD) {
    grpc_call_details_destroy(&c->details);
    grpc_call_details_init(&c->details);
  }
  grpc_byte_buffer_destroy(c->payload); /* NULL is accepted */
  c->payload = NULL;
  grpc_byte_buffer_destroy(c->response);
  c->response = NULL;
  grpc_slice_unref(c->status_msg);
  c->status_msg = grpc_empty_slice();
  if (c->n_trailers) {
    grpc_slice_unref(c->trailer.key);
    grpc_slice_unref(c->trailer.value);
    c->n_trailers = 0;
  }
  c->cancelled = 0;
  c->state = CALL_REQUESTED;
}

/* Unlinks and frees c (its call included). */
static void call_free(struct call_ctx *c) {
  struct otlp_grpc_server *srv = c->srv;
  pthread_mutex_lock(&srv->mu);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->calls = c->next;
  if (c->next)
    c->next->prev = c->prev;
  pthread_mutex_unlock(&srv->mu);
  call_reset(c);
  grpc_metadata_array_destroy(&c->request_md);
  if (c->method == GENERIC_METHOD)
    grpc_call_details_destroy(&c->details);
  free(c);
}

/* Asks gRPC for the next call of c's method. Returns 0, or OTC_ERR_SHUTDOWN when the server is
 * stopping (or gRPC refused the request), in which case the caller frees c. The lock keeps a
 * request from racing past grpc_server_shutdown_and_notify. */
static int call_request(struct call_ctx *c) {
  struct otlp_grpc_server *srv = c->srv;
  grpc_call_error rc = GRPC_CALL_ERROR;
  pthread_mutex_lock(&srv->mu);
  if (!srv->shutting_down) {
    c->state = CALL_REQUESTED;
    if (c->method == GENERIC_METHOD)
      rc = grpc_server_request_call(srv->server, &c->call, &c->details, &c->request_md, srv->cq,
                                    srv->cq, c);
    else
      rc = grpc_server_request_registered_call(srv->server, srv->methods[c->method], &c->call,
                                               &c->deadline, &c->request_md, &c->payload, srv->cq,
                                               srv->cq, c);
  }
  pthread_mutex_unlock(&srv->mu);
  if (rc != GRPC_CALL_OK)
    return OTC_ERR_SHUTDOWN;
  return 0;
}

/* Creates a context for method and requests its first call. Returns 0 or an error code. */
static int call_spawn(struct otlp_grpc_server *srv, int method) {
  struct call_ctx *c = calloc(1, sizeof *c);
  if (!c)
    return OTC_ERR_NOMEM;
  c->srv = srv;
  c->method = method;
  grpc_metadata_array_init(&c->request_md);
  if (method == GENERIC_METHOD)
    grpc_call_details_init(&c->details);
  c->status_msg = grpc_empty_slice();
  pthread_mutex_lock(&srv->mu);
  c->next = srv->calls;
  if (srv->calls)
    srv->calls->prev = c;
  srv->calls = c;
  pthread_mutex_unlock(&srv->mu);
  int rc = call_request(c);
  if (rc != 0)
    call_free(c);
  return rc;
}

/* Sets c's trailing metadata to grpc-status-details-bin carrying a google.rpc.Status with code
 * UNAVAILABLE, msg and a RetryInfo detail, which is what OTLP clients look for to back off. Leaves
 * no trailer when out of memory: the status alone is still retryable. */
static void set_retry_info(struct call_ctx *c, const char *msg) {
  Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
  delay.seconds = RETRY_DELAY_SEC;
  Google__Rpc__RetryInfo info = GOOGLE__RPC__RETRY_INFO__INIT;
  info.retry_delay = &delay;
  uint8_t info_buf[32];
  size_t info_len = google__rpc__retry_info__pack(&info, info_buf);

  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
  any.value.data = info_buf;
  any.value.len = info_len;
  Google__Protobuf__Any *details[1] = {&any};
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  st.code = GRPC_STATUS_UNAVAILABLE;
  st.message = (char *)msg;
  st.n_details = 1;
  st.details = details;

  size_t len = google__rpc__status__get_packed_size(&st);
  uint8_t *buf = malloc(len);
  if (!buf)
    return;
  google__rpc__status__pack(&st, buf);
  c->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
  c->trailer.value = grpc_slice_new(buf, len, free); /* the slice owns buf */
  c->n_trailers = 1;
}

/* Copies the request message into a malloc'd buffer charged through admission control, in one
 * copy from gRPC's slices. Returns 0 with *out (caller owns it, `*charged` bytes charged),
 * OTC_ERR_REFUSED (nothing charged) or OTC_ERR_NOMEM. */
static int read_payload(grpc_byte_buffer *bb, uint8_t **out, size_t *len, size_t *charged) {
  grpc_byte_buffer_reader reader;
  int rc = 0;
  bool reader_ok = false;
  uint8_t *buf = NULL;
  /* gRPC core hands the message over decompressed, so its length is exact. The charge covers the
   * batch struct too, as otc_batch_copy's does. */
  size_t n = grpc_byte_buffer_length(bb);
  size_t charge = n + sizeof(struct otc_batch);
  rc = otc_mem_reserve(charge);
  if (rc != 0)
    goto cleanup;
  buf = malloc(n ? n : 1);
  if (!buf) {
    otc_mem_release(charge);
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  if (!grpc_byte_buffer_reader_init(&reader, bb)) {
    rc = OTC_ERR_INVALID;
    goto fail;
  }
  reader_ok = true;
  size_t off = 0;
  grpc_slice s;
  while (grpc_byte_buffer_reader_next(&reader, &s)) {
    size_t sl = GRPC_SLICE_LENGTH(s);
    if (sl > n - off) {
      grpc_slice_unref(s);
      rc = OTC_ERR_INVALID;
      goto fail;
    }
    memcpy(buf + off, GRPC_SLICE_START_PTR(s), sl);
    off += sl;
    grpc_slice_unref(s);
  }
  if (off != n) {
    rc = OTC_ERR_INVALID;
    goto fail;
  }
  *out = buf;
  *len = n;
  *charged = charge;
  buf = NULL;
  goto cleanup;
fail:
  free(buf);
  buf = NULL;
  otc_mem_release(charge);
cleanup:
  if (reader_ok)
    grpc_byte_buffer_reader_destroy(&reader);
  return rc;
}

/* Maps an export outcome onto the call's status, message and trailers. */
static grpc_status_code answer_export(struct call_ctx *c, const struct otlp_export_result *res) {
  if (res->err == 0) {
    uint8_t *out = NULL;
    size_t len = 0;
    grpc_slice body = grpc_empty_slice();
    /* The data is accepted at this point: if the response cannot be encoded, an empty response
     * (a valid one, with no partial_success) is better than an error the client would retry. */
    if (otlp_receiver__encode_response((enum otc_signal)c->method, res, &out, &len) == 0 && out)
      body = grpc_slice_new(out, len, free);
    c->response = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    return GRPC_STATUS_OK;
  }
  c->status_msg =
      grpc_slice_from_copied_string(res->message[0] ? res->message : otc_strerror(res->err));
  if (res->err == OTC_ERR_INVALID)
    return GRPC_STATUS_INVALID_ARGUMENT;
  if (res->err == OTC_ERR_TOO_LARGE)
    return GRPC_STATUS_RESOURCE_EXHAUSTED; /* without RetryInfo: the client does not retry */
  if (otc_err_retryable(res->err)) {
    set_retry_info(c, res->message[0] ? res->message : otc_strerror(res->err));
    return GRPC_STATUS_UNAVAILABLE;
  }
  /* A permanent failure downstream: otelcol answers INTERNAL for such errors. */
  return GRPC_STATUS_INTERNAL;
}

/* Handles a matched Export call: reads, exports and decides the answer. */
static grpc_status_code handle_export(struct call_ctx *c) {
  struct otlp_receiver *r = c->srv->r;
  struct otlp_export_result res;
  memset(&res, 0, sizeof res);
  if (!c->payload) {
    c->status_msg = grpc_slice_from_static_string("missing request message");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  uint8_t *data = NULL;
  size_t len = 0, charged = 0;
  int rc = read_payload(c->payload, &data, &len, &charged);
  /* The request bytes are in data now (or refused); gRPC's copy can go at once. */
  grpc_byte_buffer_destroy(c->payload);
  c->payload = NULL;
  if (rc != 0) {
    res.err = rc;
    snprintf(res.message, sizeof res.message, "%s",
             rc == OTC_ERR_REFUSED ? "data refused due to high memory usage" : otc_strerror(rc));
    return answer_export(c, &res);
  }
  otlp_receiver__export(r, (enum otc_signal)c->method, &r->grpc_metrics, data, len, true, charged,
                        &res);
  return answer_export(c, &res);
}

/* Starts the one batch that answers c. Returns 0, or an error when gRPC refused the batch (the
 * call is then dead and c can be recycled). */
static int call_answer(struct call_ctx *c, grpc_status_code status) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  n++;
  if (c->response) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->response;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = status;
  ops[n].data.send_status_from_server.status_details =
      GRPC_SLICE_LENGTH(c->status_msg) ? &c->status_msg : NULL;
  ops[n].data.send_status_from_server.trailing_metadata_count = c->n_trailers;
  ops[n].data.send_status_from_server.trailing_metadata = c->n_trailers ? &c->trailer : NULL;
  n++;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
  n++;
  c->state = CALL_ANSWERING;
  if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
    return OTC_ERR_IO;
  return 0;
}

/* Recycles c for its method's next call, or frees it when the server is stopping. */
static void call_recycle(struct call_ctx *c) {
  call_reset(c);
  if (call_request(c) != 0)
    call_free(c);
}

/* With an authenticator, whether the call's metadata carries a right token; answered before the
 * request message is copied or decoded. On false, c's status message says why. */
static bool call_authenticated(struct call_ctx *c) {
  struct otlp_receiver *r = c->srv->r;
  if (!r->grpc.auth)
    return true;
  const char *hdr = otc_bearertokenauth_header(r->grpc.auth);
  size_t hl = strlen(hdr);
  const char *value = NULL;
  size_t vlen = 0;
  /* gRPC metadata keys arrive lowercased; the configured header may be written in any case.
   * The slices are used in place: a short one holds its bytes inline, so a copy's would not
   * outlive the copy. */
  for (size_t i = 0; i < c->request_md.count; i++) {
    const grpc_slice *k = &c->request_md.metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) == hl &&
        strncasecmp((const char *)GRPC_SLICE_START_PTR(*k), hdr, hl) == 0) {
      const grpc_slice *v = &c->request_md.metadata[i].value;
      value = (const char *)GRPC_SLICE_START_PTR(*v);
      vlen = GRPC_SLICE_LENGTH(*v);
      break;
    }
  }
  char why[160];
  if (otc_bearertokenauth_check(r->grpc.auth, value, vlen, why, sizeof why))
    return true;
  otc_counter_add(r->grpc_unauthenticated, 1);
  otc_debug(log_name(r), "gRPC call refused: %s", why);
  c->status_msg = grpc_slice_from_copied_string(why);
  return false;
}

static void on_call_event(struct call_ctx *c, bool success) {
  if (c->state == CALL_ANSWERING) {
    call_recycle(c);
    return;
  }
  /* A requested call that completes without success was never matched: the server is shutting
   * down and no further request is made. */
  if (!success) {
    call_free(c);
    return;
  }
  grpc_status_code status;
  if (!call_authenticated(c)) {
    status = GRPC_STATUS_UNAUTHENTICATED;
  } else if (c->method == GENERIC_METHOD) {
    char *method = grpc_slice_to_c_string(c->details.method);
    otc_debug(log_name(c->srv->r), "gRPC call to unimplemented method %s", method);
    char msg[300];
    snprintf(msg, sizeof msg, "unknown service or method %s", method);
    gpr_free(method);
    c->status_msg = grpc_slice_from_copied_string(msg);
    status = GRPC_STATUS_UNIMPLEMENTED;
  } else {
    status = handle_export(c);
  }
  if (call_answer(c, status) != 0)
    call_recycle(c);
}

static void *serve_thread(void *arg) {
  struct otlp_grpc_server *srv = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    if (ev.tag == &srv->shutdown_tag) {
      pthread_mutex_lock(&srv->mu);
      srv->shutdown_done = true;
      pthread_cond_broadcast(&srv->cond);
      pthread_mutex_unlock(&srv->mu);
      continue;
    }
    on_call_event(ev.tag, ev.success != 0);
  }
  return NULL;
}

/* Destroys a server that was never started (so never shut down) and drains its queue. */
static void destroy_unstarted(struct otlp_grpc_server *srv) {
  if (srv->server)
    grpc_server_destroy(srv->server);
  if (srv->cq) {
    grpc_completion_queue_shutdown(srv->cq);
    while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
      ;
    grpc_completion_queue_destroy(srv->cq);
  }
  pthread_cond_destroy(&srv->cond);
  pthread_mutex_destroy(&srv->mu);
  free(srv);
  grpc_shutdown();
}

/* gRPC 1.51's C API sets no TLS version bounds (grpc_tls_version exists, its setters are C++
 * only): these are the C++ setters of the SSL server credentials that
 * grpc_ssl_server_credentials_create_with_options returns, a non-virtual member of a class whose
 * only base is grpc_server_credentials, so `this` is that pointer. Declared by their mangled
 * names, they tie the build to that class: a gRPC without them fails to link instead of silently
 * serving versions the configuration excludes. */
extern void otlp_grpc__set_min_tls(grpc_server_credentials *creds, grpc_tls_version v) __asm__(
    "_ZN27grpc_ssl_server_credentials19set_min_tls_versionE16grpc_tls_version");
extern void otlp_grpc__set_max_tls(grpc_server_credentials *creds, grpc_tls_version v) __asm__(
    "_ZN27grpc_ssl_server_credentials19set_max_tls_versionE16grpc_tls_version");

/* The listening credentials: plaintext, or TLS from the PEM texts read at create, requiring and
 * verifying a client certificate when client_ca_file is set. Returns NULL when gRPC refused the
 * key material. */
static grpc_server_credentials *server_credentials(struct otlp_receiver *r) {
  const struct otlp_tls_config *t = &r->grpc.tls;
  if (!t->enabled)
    return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {.private_key = t->key_pem, .cert_chain = t->cert_pem};
  /* Each call copies what it is given and takes ownership of the previous step's object. */
  grpc_ssl_server_certificate_config *cc =
      grpc_ssl_server_certificate_config_create(t->client_ca_pem, &pair, 1);
  grpc_ssl_server_credentials_options *opts =
      cc ? grpc_ssl_server_credentials_create_options_using_config(
               t->client_ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
               cc)
         : NULL;
  grpc_server_credentials *creds =
      opts ? grpc_ssl_server_credentials_create_with_options(opts) : NULL;
  if (!creds)
    return NULL;
  /* gRPC speaks TLS 1.2 and 1.3 only: a lower min_version is 1.2 (read_tls refuses a lower
   * max_version). */
  int minv = otlp_receiver__tls_version(t->min_version, 12);
  int maxv = otlp_receiver__tls_version(t->max_version, 13);
  otlp_grpc__set_min_tls(creds, minv >= 13 ? TLS1_3 : TLS1_2);
  otlp_grpc__set_max_tls(creds, maxv >= 13 ? TLS1_3 : TLS1_2);
  return creds;
}

/* The address gRPC binds for an otelcol endpoint. gRPC refuses an empty host (":4317"), which
 * otelcol reads as every interface, so that becomes "[::]" (both IPv6 and IPv4). Returns a malloc'd
 * string or NULL when out of memory. */
static char *grpc_address(const char *endpoint) {
  char *out = NULL;
  if (asprintf(&out, "%s%s", endpoint[0] == ':' ? "[::]" : "", endpoint) < 0)
    return NULL;
  return out;
}

/* gRPC core writes its own log lines to stderr in its own format; routed through otc_log they
 * become JSON lines like every other. gRPC's log function is process wide, hence the once. */
static void grpc_log_to_otc(gpr_log_func_args *a) {
  enum otc_log_level level = a->severity == GPR_LOG_SEVERITY_ERROR  ? OTC_LOG_ERROR
                             : a->severity == GPR_LOG_SEVERITY_INFO ? OTC_LOG_INFO
                                                                    : OTC_LOG_DEBUG;
  otc_log(level, "grpc", "%s (%s:%d)", a->message, a->file, a->line);
}

static void grpc_log_setup(void) {
  gpr_set_log_function(grpc_log_to_otc);
}

int otlp_grpc__start(struct otlp_receiver *r) {
  if (r->grpc_srv)
    return 0;
  int rc = 0;
  char *address = NULL;
  struct otlp_grpc_server *srv = calloc(1, sizeof *srv);
  if (!srv)
    return OTC_ERR_NOMEM;
  srv->r = r;
  pthread_mutex_init(&srv->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&srv->cond, &ca);
  pthread_condattr_destroy(&ca);
  static pthread_once_t log_once = PTHREAD_ONCE_INIT;
  pthread_once(&log_once, grpc_log_setup);
  grpc_init();

  /* gRPC answers RESOURCE_EXHAUSTED itself for a message over this limit. */
  int64_t mib = r->grpc.max_recv_msg_size_mib > 0 ? r->grpc.max_recv_msg_size_mib : 4;
  int max_recv = mib >= INT_MAX / (1024 * 1024) ? INT_MAX : (int)(mib * 1024 * 1024);
  grpc_arg args[5];
  size_t n_args = 0;
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[n_args].value.integer = max_recv;
  n_args++;
  if (r->grpc.max_concurrent_streams > 0) {
    args[n_args].type = GRPC_ARG_INTEGER;
    args[n_args].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[n_args].value.integer =
        r->grpc.max_concurrent_streams > INT_MAX ? INT_MAX : (int)r->grpc.max_concurrent_streams;
    n_args++;
  }
  /* gRPC sets SO_REUSEPORT by default, which would let a second collector share the port
   * silently; otelcol fails to start instead, and so do we. */
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = GRPC_ARG_ALLOW_REUSEPORT;
  args[n_args].value.integer = 0;
  n_args++;
  /* OTLP requests are a few hundred kilobytes. With HTTP/2's defaults (16 KiB frames, a 64 KiB
   * stream window) each one arrives as dozens of frames and window updates, every round a wake-up
   * on both sides; larger frames and a window that holds a whole request let it arrive in a few
   * reads. Memory stays bounded by max_recv_msg_size and admission control. */
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = GRPC_ARG_HTTP2_MAX_FRAME_SIZE;
  args[n_args].value.integer = 1 << 20;
  n_args++;
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
  args[n_args].value.integer = 4 << 20;
  n_args++;
  grpc_channel_args chargs = {.num_args = n_args, .args = args};

  srv->cq = grpc_completion_queue_create_for_next(NULL);
  srv->server = grpc_server_create(&chargs, NULL);
  if (!srv->cq || !srv->server) {
    rc = OTC_ERR_NOMEM;
    goto fail_unstarted;
  }
  grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++) {
    if (!r->next[s].consume)
      continue;
    srv->methods[s] = grpc_server_register_method(srv->server, method_paths[s], NULL,
                                                  GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (!srv->methods[s]) {
      otc_error(log_name(r), "cannot register gRPC method %s", method_paths[s]);
      rc = OTC_ERR_IO;
      goto fail_unstarted;
    }
  }

  const char *endpoint = r->grpc.endpoint ? r->grpc.endpoint : "0.0.0.0:4317";
  address = grpc_address(endpoint);
  if (!address) {
    rc = OTC_ERR_NOMEM;
    goto fail_unstarted;
  }
  grpc_server_credentials *creds = server_credentials(r);
  if (!creds) {
    otc_error(log_name(r), "cannot set up TLS for OTLP/gRPC with cert_file \"%s\"",
              r->grpc.tls.cert_file ? r->grpc.tls.cert_file : "");
    rc = OTC_ERR_CONFIG;
    goto fail_unstarted;
  }
  int port = grpc_server_add_http2_port(srv->server, address, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    otc_error(log_name(r), "cannot listen for OTLP/gRPC on %s (address in use or invalid)",
              endpoint);
    rc = OTC_ERR_IO;
    goto fail_unstarted;
  }
  grpc_server_start(srv->server);
  r->grpc_srv = srv;

  /* From here on a failure goes through otlp_grpc__stop, which knows a started server. */
  for (int s = 0; s < OTC_SIGNAL_COUNT && rc == 0; s++)
    for (int i = 0; srv->methods[s] && i < CALLS_PER_METHOD && rc == 0; i++)
      rc = call_spawn(srv, s);
  for (int i = 0; i < GENERIC_CALLS && rc == 0; i++)
    rc = call_spawn(srv, GENERIC_METHOD);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int n_threads = cpus >= 2 * GRPC_MAX_THREADS ? GRPC_MAX_THREADS : cpus >= 4 ? (int)(cpus / 2) : 1;
  for (int i = 0; i < n_threads && rc == 0; i++) {
    if (pthread_create(&srv->threads[i], NULL, serve_thread, srv) != 0)
      rc = OTC_ERR_NOMEM;
    else
      srv->n_threads++;
  }
  if (rc != 0) {
    otc_error(log_name(r), "cannot start the OTLP/gRPC server: %s", otc_strerror(rc));
    otlp_grpc__stop(r);
    goto cleanup;
  }
  size_t elen = strlen(endpoint);
  if (elen > 2 && strcmp(endpoint + elen - 2, ":0") == 0)
    otc_info(log_name(r), "OTLP/gRPC receiver listening on %s (port %d)%s", endpoint, port,
             r->grpc.tls.enabled ? " with TLS" : "");
  else
    otc_info(log_name(r), "OTLP/gRPC receiver listening on %s%s", address,
             r->grpc.tls.enabled ? " with TLS" : "");
  goto cleanup;

fail_unstarted:
  destroy_unstarted(srv);
cleanup:
  free(address);
  return rc;
}

void otlp_grpc__stop(struct otlp_receiver *r) {
  struct otlp_grpc_server *srv = r->grpc_srv;
  if (!srv)
    return;
  pthread_mutex_lock(&srv->mu);
  srv->shutting_down = true;
  pthread_mutex_unlock(&srv->mu);
  /* Unmatched requested calls fail at once; calls in flight get STOP_GRACE_SEC to finish. */
  grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
  if (srv->n_threads == 0) {
    /* Only when start failed before any thread ran: serve the queue here until the tag. */
    while (!srv->shutdown_done) {
      grpc_event ev =
          grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
      if (ev.type != GRPC_OP_COMPLETE)
        continue;
      if (ev.tag == &srv->shutdown_tag)
        srv->shutdown_done = true;
      else
        on_call_event(ev.tag, ev.success != 0);
    }
  } else {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += STOP_GRACE_SEC;
    pthread_mutex_lock(&srv->mu);
    while (!srv->shutdown_done) {
      if (pthread_cond_timedwait(&srv->cond, &srv->mu, &until) == ETIMEDOUT)
        break;
    }
    bool done = srv->shutdown_done;
    pthread_mutex_unlock(&srv->mu);
    if (!done) {
      otc_warn(log_name(r), "OTLP/gRPC calls still in flight after %ds: cancelling them",
               STOP_GRACE_SEC);
      grpc_server_cancel_all_calls(srv->server);
      pthread_mutex_lock(&srv->mu);
      while (!srv->shutdown_done)
        pthread_cond_wait(&srv->cond, &srv->mu);
      pthread_mutex_unlock(&srv->mu);
    }
  }
  grpc_server_destroy(srv->server);
  /* The threads exit on GRPC_QUEUE_SHUTDOWN, once every pending event has been delivered. */
  grpc_completion_queue_shutdown(srv->cq);
  for (int i = 0; i < srv->n_threads; i++)
    pthread_join(srv->threads[i], NULL);
  if (srv->n_threads == 0) {
    while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
      ;
  }
  grpc_completion_queue_destroy(srv->cq);
  /* Every context was freed by its failed request or its last answer; these are leftovers that
   * gRPC never reported, which cannot happen after a drained queue but must not leak. */
  while (srv->calls)
    call_free(srv->calls);
  pthread_cond_destroy(&srv->cond);
  pthread_mutex_destroy(&srv->mu);
  free(srv);
  r->grpc_srv = NULL;
  grpc_shutdown();
  otc_info(log_name(r), "OTLP/gRPC receiver stopped");
}
