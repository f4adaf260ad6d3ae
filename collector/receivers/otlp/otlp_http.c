/* The OTLP/HTTP transport of the otlp receiver, on libmicrohttpd: POST of protobuf or JSON on the
 * three signal paths, gzip/zlib bodies inflated with a bound, bodies charged to the memory
 * accounting as they arrive, statuses and bodies as the OTLP specification and otelcol's
 * receiver answer them, and CORS as otelcol's confighttp (rs/cors) does it. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <gnutls/gnutls.h>

#include "core/net.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/otlp_json.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "extensions/bearertokenauth/bearertokenauth.h"
#include "receivers/otlp/otlp_receiver.h"

/* The most memory transcoding a JSON body takes, per body byte: the protobuf being built (at most
 * 4x the body, for arrays of 8-byte numbers; about 0.45x on usual OTLP requests, see otlp_json.c). */
#define JSON_DECODE_FACTOR 4
#define CT_PROTOBUF "application/x-protobuf"
#define CT_JSON "application/json"
#define INITIAL_BODY_CAP (64u * 1024u)
#define DRAIN_TIMEOUT_MS 5000
/* After a refusal mid-body, how much more is read and dropped (at least) so that the client can
 * get its status; beyond max(this, max_request_body_size) the connection is closed instead. */
#define DISCARD_ALLOWANCE (8u * 1024u * 1024u)
#define RETRY_AFTER_SECONDS "1"

/* google.rpc.Code values used in Status bodies. */
enum {
  RPC_INVALID_ARGUMENT = 3,
  RPC_RESOURCE_EXHAUSTED = 8,
  RPC_INTERNAL = 13,
  RPC_UNAVAILABLE = 14,
};

struct otlp_http_server {
  struct otlp_receiver *r;
  struct MHD_Daemon *daemon;
  int port;
  atomic_int in_flight; /* requests between the first handler call and their completion */
  atomic_bool stopping;
  char priorities[96]; /* GnuTLS priority string, kept for the daemon's life */
};

enum body_encoding { ENC_IDENTITY, ENC_ZLIB };

/* One request's state, from its first handler call to MHD's completion notice. */
struct http_req {
  enum otc_signal signal;
  bool json;
  bool responded; /* a response was queued at the first call */
  enum body_encoding enc;
  bool z_init, z_end;
  z_stream z;
  uint8_t *buf; /* the body (decompressed), charged by `charged` bytes */
  size_t len, cap, charged;
  uint64_t raw;         /* bytes received on the wire */
  uint64_t discarded;   /* bytes read and dropped after fail was set */
  int fail;             /* an OTC_ERR_* that decided the answer while the body was still arriving */
  bool unauthenticated; /* answered 401: the body that may follow is dropped, within a bound */
  char why[160];
};

/* ---- helpers ---- */

static bool header_is(const char *value, const char *want) {
  /* Media types compare without their parameters ("; charset=utf-8") and case. */
  while (*value == ' ' || *value == '\t')
    value++;
  size_t n = strcspn(value, ";");
  while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
    n--;
  return n == strlen(want) && strncasecmp(value, want, n) == 0;
}

static void free_body(struct http_req *q) {
  free(q->buf);
  otc_mem_release(q->charged);
  q->buf = NULL;
  q->len = q->cap = q->charged = 0;
}

/* Grows the body buffer to hold need bytes, never beyond maxcap, charging the growth first.
 * Returns 0, OTC_ERR_TOO_LARGE, OTC_ERR_REFUSED or OTC_ERR_NOMEM. */
static int body_reserve(struct http_req *q, size_t need, size_t maxcap) {
  if (need <= q->cap)
    return 0;
  if (need > maxcap)
    return OTC_ERR_TOO_LARGE;
  size_t ncap = q->cap ? q->cap : INITIAL_BODY_CAP;
  while (ncap < need && ncap <= maxcap / 2)
    ncap *= 2;
  if (ncap < need || ncap > maxcap)
    ncap = maxcap;
  size_t grow = ncap - q->cap;
  if (otc_mem_reserve(grow) != 0)
    return OTC_ERR_REFUSED;
  uint8_t *nb = realloc(q->buf, ncap);
  if (!nb) {
    otc_mem_release(grow);
    return OTC_ERR_NOMEM;
  }
  q->buf = nb;
  q->cap = ncap;
  q->charged += grow;
  return 0;
}

static bool origin_matches(const char *pattern, const char *origin) {
  if (strcmp(pattern, "*") == 0)
    return true;
  const char *star = strchr(pattern, '*');
  if (!star)
    return strcasecmp(pattern, origin) == 0;
  /* One wildcard, as rs/cors allows: "https://" and ".example.com" around the star of a pattern
   * for every subdomain are a prefix and a suffix of the origin. */
  size_t pre = (size_t)(star - pattern), suf = strlen(star + 1), olen = strlen(origin);
  return olen >= pre + suf && strncasecmp(origin, pattern, pre) == 0 &&
         strcasecmp(origin + olen - suf, star + 1) == 0;
}

static bool cors_enabled(const struct otlp_receiver *r) {
  return r->http.cors_allowed_origins.n > 0;
}

static bool origin_allowed(const struct otlp_receiver *r, const char *origin) {
  if (!origin || !*origin)
    return false;
  for (size_t i = 0; i < r->http.cors_allowed_origins.n; i++)
    if (r->http.cors_allowed_origins.items[i] &&
        origin_matches(r->http.cors_allowed_origins.items[i], origin))
      return true;
  return false;
}

static bool header_allowed(const struct otlp_receiver *r, const char *name, size_t len) {
  static const char *const always[] = {"Origin", "Accept", "Content-Type", "Content-Encoding",
                                       "X-Requested-With"};
  for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
    if (strlen(always[i]) == len && strncasecmp(always[i], name, len) == 0)
      return true;
  for (size_t i = 0; i < r->http.cors_allowed_headers.n; i++) {
    const char *h = r->http.cors_allowed_headers.items[i];
    if (h && (strcmp(h, "*") == 0 || (strlen(h) == len && strncasecmp(h, name, len) == 0)))
      return true;
  }
  return false;
}

/* Whether every header of a comma-separated Access-Control-Request-Headers list is allowed. */
static bool headers_allowed(const struct otlp_receiver *r, const char *list) {
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (!*p)
      break;
    size_t n = strcspn(p, ",");
    size_t t = n;
    while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
      t--;
    if (t > 0 && !header_allowed(r, p, t))
      return false;
    p += n;
  }
  return true;
}

/* Adds the CORS headers of an actual (non-preflight) request, as rs/cors does. */
static void add_cors_headers(struct otlp_receiver *r, struct MHD_Connection *c,
                             struct MHD_Response *resp) {
  if (!cors_enabled(r))
    return;
  MHD_add_response_header(resp, "Vary", "Origin");
  const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  if (origin_allowed(r, origin)) {
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
  }
}

/* Queues resp (which it destroys) with status; returns what the handler must return. */
static enum MHD_Result send_response(struct otlp_http_server *srv, struct MHD_Connection *c,
                                     struct MHD_Response *resp, unsigned status) {
  if (!resp)
    return MHD_NO;
  add_cors_headers(srv->r, c, resp);
  if (atomic_load(&srv->stopping))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static struct MHD_Response *buffer_response(void *data, size_t len, const char *content_type) {
  struct MHD_Response *resp =
      data ? MHD_create_response_from_buffer_with_free_callback(len, data, free)
           : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(data);
    return NULL;
  }
  if (content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  return resp;
}

/* Plain text answers for requests that are not OTLP at all, worded as otelcol's. */
static enum MHD_Result send_text(struct otlp_http_server *srv, struct MHD_Connection *c,
                                 unsigned status, const char *text, const char *allow) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  if (allow)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  return send_response(srv, c, resp, status);
}

/* Copies msg into out with every byte outside printable ASCII replaced: messages may quote client
 * bytes or be cut mid-character, and both JSON and proto3 strings must be valid UTF-8. */
static const char *ascii_message(const char *msg, char *out, size_t cap) {
  size_t i = 0;
  for (; msg[i] && i + 1 < cap; i++) {
    unsigned char ch = (unsigned char)msg[i];
    out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  out[i] = '\0';
  return out;
}

/* A google.rpc.Status body in the request's encoding; retry adds a RetryInfo detail and the
 * Retry-After header (OTLP/HTTP throttling). */
static enum MHD_Result send_status(struct otlp_http_server *srv, struct MHD_Connection *c,
                                   bool json, unsigned http_status, int code, const char *raw_msg,
                                   bool retry) {
  void *body = NULL;
  size_t len = 0;
  char msg[320];
  ascii_message(raw_msg, msg, sizeof msg);
  if (json) {
    json_t *o = json_pack("{s:i, s:s}", "code", code, "message", msg);
    if (o && retry) {
      json_t *d = json_pack("[{s:s, s:s}]", "@type", "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay", RETRY_AFTER_SECONDS "s");
      if (d)
        json_object_set_new(o, "details", d);
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text) {
      body = text;
      len = strlen(text);
    }
  } else {
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Any *details[1] = {&any};
    uint8_t ribuf[32];
    st.code = code;
    st.message = (char *)msg;
    if (retry) {
      delay.seconds = atoi(RETRY_AFTER_SECONDS);
      ri.retry_delay = &delay;
      any.type_url = (char *)"type.googleapis.com/google.rpc.RetryInfo";
      any.value.len = google__rpc__retry_info__pack(&ri, ribuf);
      any.value.data = ribuf;
      st.n_details = 1;
      st.details = details;
    }
    size_t n = google__rpc__status__get_packed_size(&st);
    uint8_t *b = malloc(n ? n : 1);
    if (b) {
      len = google__rpc__status__pack(&st, b);
      body = b;
    }
  }
  if (!body)
    return MHD_NO; /* out of memory: dropping the connection is all that is left */
  struct MHD_Response *resp = buffer_response(body, len, json ? CT_JSON : CT_PROTOBUF);
  if (resp && retry)
    MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_SECONDS);
  return send_response(srv, c, resp, http_status);
}

/* The answer for a failure code decided before or instead of an export. */
static enum MHD_Result send_error(struct otlp_http_server *srv, struct MHD_Connection *c,
                                  struct http_req *q, int err, const char *msg) {
  switch (err) {
  case OTC_ERR_INVALID:
    return send_status(srv, c, q->json, MHD_HTTP_BAD_REQUEST, RPC_INVALID_ARGUMENT, msg, false);
  case OTC_ERR_TOO_LARGE:
    return send_status(srv, c, q->json, MHD_HTTP_CONTENT_TOO_LARGE, RPC_RESOURCE_EXHAUSTED, msg,
                       false);
  default:
    if (otc_err_retryable(err))
      return send_status(srv, c, q->json, MHD_HTTP_SERVICE_UNAVAILABLE, RPC_UNAVAILABLE, msg, true);
    return send_status(srv, c, q->json, MHD_HTTP_INTERNAL_SERVER_ERROR, RPC_INTERNAL, msg, false);
  }
}

static const char *too_large_msg(struct otlp_receiver *r, char *buf, size_t cap) {
  snprintf(buf, cap, "request body too large: over max_request_body_size (%llu bytes)",
           (unsigned long long)r->http.max_request_body_size);
  return buf;
}

static const char *const partial_keys[OTC_SIGNAL_COUNT] = {"rejectedSpans", "rejectedDataPoints",
                                                           "rejectedLogRecords"};

/* 200 with the Export*ServiceResponse, in the request's encoding. */
static enum MHD_Result send_success(struct otlp_http_server *srv, struct MHD_Connection *c,
                                    struct http_req *q, const struct otlp_export_result *res) {
  void *body = NULL;
  size_t len = 0;
  if (q->json) {
    char *text = NULL;
    if (res->rejected == 0) {
      text = strdup("{}");
    } else {
      char count[24], msg[320];
      snprintf(count, sizeof count, "%zu", res->rejected);
      /* int64 fields are strings in the OTLP JSON mapping. */
      json_t *o = json_pack("{s:{s:s, s:s}}", "partialSuccess", partial_keys[q->signal], count,
                            "errorMessage", ascii_message(res->message, msg, sizeof msg));
      text = o ? json_dumps(o, JSON_COMPACT) : NULL;
      json_decref(o);
    }
    if (!text)
      return MHD_NO;
    body = text;
    len = strlen(text);
  } else {
    uint8_t *out = NULL;
    if (otlp_receiver__encode_response(q->signal, res, &out, &len) != 0)
      return MHD_NO;
    body = out;
  }
  return send_response(srv, c, buffer_response(body, len, q->json ? CT_JSON : CT_PROTOBUF),
                       MHD_HTTP_OK);
}

/* ---- CORS preflight ---- */

static enum MHD_Result send_preflight(struct otlp_http_server *srv, struct MHD_Connection *c) {
  struct otlp_receiver *r = srv->r;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, "Vary",
                          "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  const char *method =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
  const char *hdrs =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
  /* A preflight that fails any check gets no CORS headers: the browser then refuses the request. */
  if (origin_allowed(r, origin) && method && strcasecmp(method, "POST") == 0 &&
      (!hdrs || headers_allowed(r, hdrs))) {
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST");
    if (hdrs && *hdrs)
      MHD_add_response_header(resp, "Access-Control-Allow-Headers", hdrs);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    if (r->http.cors_max_age > 0) {
      char age[24];
      snprintf(age, sizeof age, "%lld", (long long)r->http.cors_max_age);
      MHD_add_response_header(resp, "Access-Control-Max-Age", age);
    }
  }
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- request handling ---- */

static bool signal_for_path(const struct otlp_receiver *r, const char *url, enum otc_signal *s) {
  const char *paths[OTC_SIGNAL_COUNT] = {r->http.traces_url_path, r->http.metrics_url_path,
                                         r->http.logs_url_path};
  for (int i = 0; i < OTC_SIGNAL_COUNT; i++) {
    if (paths[i] && strcmp(paths[i], url) == 0) {
      *s = (enum otc_signal)i;
      return true;
    }
  }
  return false;
}

/* ---- auth ---- */

/* 401 with a google.rpc.Status (UNAUTHENTICATED) in the request's encoding, or text for other
 * content types, and WWW-Authenticate naming the scheme, as RFC 9110 asks of a 401. */
static enum MHD_Result send_unauthenticated(struct otlp_http_server *srv, struct MHD_Connection *c,
                                            const char *why) {
  enum { RPC_UNAUTHENTICATED = 16 };
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  void *body = NULL;
  size_t len = 0;
  const char *rct = "text/plain; charset=utf-8";
  if (ct && header_is(ct, CT_JSON)) {
    json_t *o = json_pack("{s:i, s:s}", "code", RPC_UNAUTHENTICATED, "message", why);
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    len = body ? strlen(body) : 0;
    rct = CT_JSON;
  } else if (ct && header_is(ct, CT_PROTOBUF)) {
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = RPC_UNAUTHENTICATED;
    st.message = (char *)why;
    size_t n = google__rpc__status__get_packed_size(&st);
    if ((body = malloc(n ? n : 1)))
      len = google__rpc__status__pack(&st, body);
    rct = CT_PROTOBUF;
  } else if (asprintf((char **)&body, "%s\n", why) >= 0) {
    len = strlen(body);
  } else {
    body = NULL;
  }
  if (!body)
    return MHD_NO;
  struct MHD_Response *resp = buffer_response(body, len, rct);
  if (resp) {
    const char *scheme = otc_bearertokenauth_scheme(srv->r->http.auth);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, *scheme ? scheme : "Bearer");
  }
  return send_response(srv, c, resp, MHD_HTTP_UNAUTHORIZED);
}

/* Whether the request carries a right token (true without an authenticator). */
static bool http_authenticated(struct otlp_http_server *srv, struct MHD_Connection *c, char *why,
                               size_t whycap) {
  struct otc_bearertokenauth *a = srv->r->http.auth;
  if (!a)
    return true;
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, otc_bearertokenauth_header(a));
  return otc_bearertokenauth_check(a, v, v ? strlen(v) : 0, why, whycap);
}

/* The first call, with the headers only: everything that can be answered without the body is. */
static void fail(struct http_req *q, int err, const char *why);

static enum MHD_Result begin_request(struct otlp_http_server *srv, struct MHD_Connection *c,
                                     struct http_req *q, const char *url, const char *method) {
  struct otlp_receiver *r = srv->r;
  char msg[160];
  q->responded = true; /* every branch below but the last answers now */

  if (cors_enabled(r) && strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0 &&
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method"))
    return send_preflight(srv, c);
  /* Authentication comes before routing, as otelcol's interceptor wraps every route; a CORS
   * preflight, which browsers send without credentials, is answered before it. */
  if (!http_authenticated(srv, c, msg, sizeof msg)) {
    otc_counter_add(r->http_unauthenticated, 1);
    otc_debug(r->log_component, "HTTP request refused: %s", msg);
    q->unauthenticated = true;
    return send_unauthenticated(srv, c, msg);
  }
  /* otelcol registers no route for a signal without a pipeline. */
  if (!signal_for_path(r, url, &q->signal) || !r->next[q->signal].consume)
    return send_text(srv, c, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
  if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
    return send_text(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED,
                     "405 method not allowed, supported: [POST]", "POST");

  struct otc_receiver_metrics *m = &r->http_metrics;
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (ct && header_is(ct, CT_JSON)) {
    q->json = true;
  } else if (!ct || !header_is(ct, CT_PROTOBUF)) {
    otc_counter_add(m->requests_rejected, 1);
    return send_text(srv, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                     "415 unsupported media type, supported: [application/json, "
                     "application/x-protobuf]",
                     NULL);
  }
  if (atomic_load(&srv->stopping))
    return send_error(srv, c, q, OTC_ERR_SHUTDOWN, "the receiver is shutting down");

  const char *ce =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
  if (!ce || header_is(ce, "") || header_is(ce, "identity")) {
    q->enc = ENC_IDENTITY;
  } else if (header_is(ce, "gzip") || header_is(ce, "x-gzip") || header_is(ce, "deflate") ||
             header_is(ce, "zlib")) {
    q->enc = ENC_ZLIB;
  } else {
    otc_counter_add(m->requests_rejected, 1);
    snprintf(msg, sizeof msg, "unsupported Content-Encoding: %.100s", ce);
    return send_error(srv, c, q, OTC_ERR_INVALID, msg);
  }

  uint64_t limit = r->http.max_request_body_size;
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl) {
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno == 0 && end != cl && n > limit) {
      /* A client that waits for 100 Continue gets the 413 before it sends anything. One that
       * sends its body anyway, as the SDKs do, would see the connection reset instead of the
       * status if we answered now and closed; so a body within the discard allowance is read and
       * dropped first, and the 413 comes after it (finish_request). */
      const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
      uint64_t allowance = limit < DISCARD_ALLOWANCE ? DISCARD_ALLOWANCE : limit;
      if ((expect && strcasecmp(expect, "100-continue") == 0) || n - limit > allowance) {
        otc_counter_add(m->requests_rejected, 1);
        return send_error(srv, c, q, OTC_ERR_TOO_LARGE, too_large_msg(r, msg, sizeof msg));
      }
      fail(q, OTC_ERR_TOO_LARGE, "");
      q->responded = false;
      return MHD_YES;
    }
    /* A declared plain body is charged whole up front, so that a refusal costs no reading. */
    if (errno == 0 && end != cl && n > 0 && q->enc == ENC_IDENTITY) {
      int rc = body_reserve(q, (size_t)n, (size_t)n);
      if (rc != 0)
        return send_error(srv, c, q, rc,
                          rc == OTC_ERR_REFUSED ? "data refused due to high memory usage"
                                                : otc_strerror(rc));
    }
  }
  if (q->enc == ENC_ZLIB) {
    memset(&q->z, 0, sizeof q->z);
    /* 15 + 32: a zlib or gzip header, detected automatically ("deflate" means zlib in HTTP). */
    if (inflateInit2(&q->z, 15 + 32) != Z_OK)
      return send_error(srv, c, q, OTC_ERR_NOMEM, "out of memory");
    q->z_init = true;
  }
  q->responded = false;
  return MHD_YES;
}

static void fail(struct http_req *q, int err, const char *why) {
  if (q->fail)
    return;
  q->fail = err;
  snprintf(q->why, sizeof q->why, "%s", why);
  /* What was received so far is of no use any more; give its memory back at once. */
  free_body(q);
}

static void feed_inflate(struct otlp_receiver *r, struct http_req *q, const char *data,
                         size_t size) {
  size_t limit = (size_t)r->http.max_request_body_size;
  q->z.next_in = (Bytef *)data;
  q->z.avail_in = (uInt)size;
  while (q->z.avail_in > 0 && !q->fail) {
    if (q->z_end) {
      /* Another gzip member follows (concatenated gzip files are one stream, as in Go). */
      if (inflateReset(&q->z) != Z_OK) {
        fail(q, OTC_ERR_INVALID, "corrupt compressed body");
        break;
      }
      q->z_end = false;
    }
    if (q->len == q->cap && q->cap < limit) {
      int rc = body_reserve(q, q->len + 1, limit);
      if (rc != 0) {
        fail(q, rc,
             rc == OTC_ERR_REFUSED ? "data refused due to high memory usage" : otc_strerror(rc));
        break;
      }
    }
    /* At the limit, one scratch byte tells whether the stream has more to give. */
    uint8_t scratch;
    bool at_limit = q->len == q->cap;
    size_t room = at_limit ? 1 : q->cap - q->len;
    q->z.next_out = at_limit ? &scratch : q->buf + q->len;
    q->z.avail_out = (uInt)room;
    uInt in_before = q->z.avail_in;
    int zr = inflate(&q->z, Z_NO_FLUSH);
    size_t produced = room - q->z.avail_out;
    if (at_limit && produced > 0) {
      fail(q, OTC_ERR_TOO_LARGE, "");
      break;
    }
    q->len += produced;
    if (zr == Z_STREAM_END) {
      q->z_end = true;
    } else if (zr == Z_BUF_ERROR) {
      if (produced == 0 && q->z.avail_in == in_before)
        break; /* no progress possible with this input: wait for more */
    } else if (zr != Z_OK) {
      char why[160];
      snprintf(why, sizeof why, "corrupt compressed body: %s",
               q->z.msg ? q->z.msg : "inflate failed");
      fail(q, OTC_ERR_INVALID, why);
    }
  }
}

static void feed(struct otlp_receiver *r, struct http_req *q, const char *data, size_t size) {
  uint64_t limit = r->http.max_request_body_size;
  if (q->fail) {
    q->discarded += size;
    return;
  }
  q->raw += size;
  if (q->raw > limit) {
    fail(q, OTC_ERR_TOO_LARGE, "");
    return;
  }
  if (q->enc == ENC_ZLIB) {
    feed_inflate(r, q, data, size);
    return;
  }
  int rc = body_reserve(q, q->len + size, (size_t)limit);
  if (rc != 0) {
    fail(q, rc, rc == OTC_ERR_REFUSED ? "data refused due to high memory usage" : otc_strerror(rc));
    return;
  }
  memcpy(q->buf + q->len, data, size);
  q->len += size;
}

/* The last call: the whole body is in; decode, export and answer. */
static enum MHD_Result finish_request(struct otlp_http_server *srv, struct MHD_Connection *c,
                                      struct http_req *q) {
  struct otlp_receiver *r = srv->r;
  struct otc_receiver_metrics *m = &r->http_metrics;
  char msg[256];
  q->responded = true;
  if (!q->fail && q->enc == ENC_ZLIB && q->raw > 0 && !q->z_end)
    fail(q, OTC_ERR_INVALID, "corrupt compressed body: unexpected end of stream");
  if (q->fail) {
    if (q->fail == OTC_ERR_INVALID || q->fail == OTC_ERR_TOO_LARGE)
      otc_counter_add(m->requests_rejected, 1);
    if (q->fail == OTC_ERR_TOO_LARGE)
      return send_error(srv, c, q, q->fail, too_large_msg(r, msg, sizeof msg));
    return send_error(srv, c, q, q->fail, q->why);
  }

  uint8_t *data = q->buf;
  size_t len = q->len, charged = q->charged;
  q->buf = NULL;
  q->len = q->cap = q->charged = 0;
  if (q->json) {
    /* The protobuf being built while a JSON body is transcoded is bounded by four times the body
     * (usually under half of it); that transient memory goes through admission like the data, or
     * a JSON flood would pass the limit that protobuf respects. */
    size_t transient = len * JSON_DECODE_FACTOR;
    if (otc_mem_reserve(transient) != 0) {
      free(data);
      otc_mem_release(charged);
      return send_error(srv, c, q, OTC_ERR_REFUSED, "data refused due to high memory usage");
    }
    uint8_t *pb = NULL;
    size_t pblen = 0;
    char why[200] = "";
    int rc = otc_json_to_proto(q->signal, data ? (const char *)data : "", len, r->max_depth, &pb,
                               &pblen, why, sizeof why);
    free(data);
    otc_mem_release(charged + transient);
    data = NULL;
    if (rc != 0) {
      free(pb);
      if (rc == OTC_ERR_INVALID) {
        otc_counter_add(m->requests_rejected, 1);
        snprintf(msg, sizeof msg, "bad request: %s", why[0] ? why : "invalid JSON");
        return send_error(srv, c, q, rc, msg);
      }
      return send_error(srv, c, q, rc, otc_strerror(rc));
    }
    if (otc_mem_reserve(pblen) != 0) {
      free(pb);
      return send_error(srv, c, q, OTC_ERR_REFUSED, "data refused due to high memory usage");
    }
    data = pb;
    len = pblen;
    charged = pblen;
  }

  struct otlp_export_result res;
  otlp_receiver__export(r, q->signal, m, data, len, true, charged, &res);
  if (res.err != 0)
    return send_error(srv, c, q, res.err, res.message);
  return send_success(srv, c, q, &res);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct otlp_http_server *srv = cls;
  struct http_req *q = *con_cls;
  if (!q) {
    q = calloc(1, sizeof *q);
    if (!q)
      return MHD_NO;
    *con_cls = q;
    atomic_fetch_add(&srv->in_flight, 1);
    return begin_request(srv, c, q, url, method);
  }
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (q->responded) {
      /* An unauthenticated client does not get to stream an unbounded body. */
      q->discarded += n;
      if (q->unauthenticated && q->discarded > DISCARD_ALLOWANCE)
        return MHD_NO;
      return MHD_YES;
    }
    feed(srv->r, q, upload_data, n);
    /* After a refusal the rest is read and dropped so that the client gets its status; a client
     * that keeps sending far beyond the limit loses the connection instead. */
    uint64_t allowance = srv->r->http.max_request_body_size;
    if (allowance < DISCARD_ALLOWANCE)
      allowance = DISCARD_ALLOWANCE;
    if (q->discarded > allowance)
      return MHD_NO;
    return MHD_YES;
  }
  if (q->responded)
    return MHD_YES;
  return finish_request(srv, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct otlp_http_server *srv = cls;
  struct http_req *q = *con_cls;
  if (!q)
    return;
  free_body(q);
  if (q->z_init)
    inflateEnd(&q->z);
  free(q);
  *con_cls = NULL;
  atomic_fetch_sub(&srv->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  struct otlp_receiver *r = cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  otc_warn(r->log_component, "http server: %s", line);
}

/* ---- lifecycle ---- */

/* GnuTLS priorities that allow exactly the configured TLS versions. */
static void tls_priorities(const struct otlp_tls_config *t, char *buf, size_t cap) {
  int minv = otlp_receiver__tls_version(t->min_version, 12);
  int maxv = otlp_receiver__tls_version(t->max_version, 13);
  size_t n = (size_t)snprintf(buf, cap, "NORMAL:-VERS-ALL");
  for (int v = maxv; v >= minv && n < cap; v--)
    n += (size_t)snprintf(buf + n, cap - n, ":+VERS-TLS1.%d", v - 10);
}

/* With client_ca_file, every connection's TLS session is told to require a client certificate
 * and verify it against the client CAs during the handshake, as Go's RequireAndVerifyClientCert
 * does. libmicrohttpd only requests one (GNUTLS_CERT_REQUEST) and verifies nothing; its session
 * exists, before the handshake, when this notification comes. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  struct otlp_http_server *srv = cls;
  if (code != MHD_CONNECTION_NOTIFY_STARTED || !srv->r->http.tls.client_ca_pem)
    return;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!ci || !ci->tls_session)
    return;
  gnutls_session_t s = (gnutls_session_t)ci->tls_session;
  gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  gnutls_session_set_verify_cert(s, NULL, 0);
}

/* Fills sa with the address to listen on; returns 0 or OTC_ERR_CONFIG/OTC_ERR_IO. */
static int resolve(const char *host, int port, struct sockaddr_storage *sa, bool *v6, bool *dual) {
  memset(sa, 0, sizeof *sa);
  *dual = false;
  if (!*host) {
    /* An empty host is every interface of both families, as Go listens on ":4318". */
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_any;
    s6->sin6_port = htons((uint16_t)port);
    *v6 = true;
    *dual = true;
    return 0;
  }
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
    return OTC_ERR_IO;
  /* A name with both families listens on IPv4, as Go does for "localhost". */
  const struct addrinfo *pick = NULL;
  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
    if (ai->ai_family == AF_INET6 && !pick)
      pick = ai;
  }
  int rc = OTC_ERR_IO;
  if (pick && pick->ai_addrlen <= sizeof *sa) {
    memcpy(sa, pick->ai_addr, pick->ai_addrlen);
    *v6 = pick->ai_family == AF_INET6;
    if (*v6)
      *dual = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)sa)->sin6_addr);
    rc = 0;
  }
  freeaddrinfo(res);
  return rc;
}

/* libmicrohttpd closes a connection after a stretch of inactivity, whatever it is waiting for
 * (headers, body, the next request): the closest it has to Go's read_header_timeout, read_timeout
 * and idle_timeout is that one timeout set to the smallest of them that is set, in whole seconds
 * rounded up. 0: no timeout. */
static unsigned connection_timeout_s(const struct otlp_http_config *h) {
  const int64_t t[] = {h->read_timeout_ns, h->read_header_timeout_ns, h->idle_timeout_ns};
  int64_t min = 0;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i] > 0 && (min == 0 || t[i] < min))
      min = t[i];
  int64_t s = (min + 999999999) / 1000000000;
  return s > 86400 ? 86400u : (unsigned)s;
}

int otlp_http__start(struct otlp_receiver *r) {
  if (r->http_srv)
    return 0;
  char host[256];
  int port;
  struct sockaddr_storage sa;
  bool v6 = false, dual = false;
  int rc = 0;
  struct otlp_http_server *srv = NULL;
  if (otc_parse_hostport(r->http.endpoint, host, sizeof host, &port) != 0) {
    rc = OTC_ERR_CONFIG;
    goto cleanup;
  }
  if (resolve(host, port, &sa, &v6, &dual) != 0) {
    otc_error(r->log_component, "cannot resolve the http endpoint %s", r->http.endpoint);
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  srv = calloc(1, sizeof *srv);
  if (!srv) {
    rc = OTC_ERR_NOMEM;
    goto cleanup;
  }
  srv->r = r;
  atomic_init(&srv->in_flight, 0);
  atomic_init(&srv->stopping, false);
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
  /* TLS options go in an array, which stays empty for plaintext. MHD keeps pointers to the PEM
   * texts, which the receiver holds until it is destroyed. */
  struct MHD_OptionItem tls_opts[6];
  size_t nt = 0;
  const struct otlp_tls_config *t = &r->http.tls;
  if (t->enabled) {
    flags |= MHD_USE_TLS;
    tls_priorities(t, srv->priorities, sizeof srv->priorities);
    tls_opts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key_pem};
    tls_opts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert_pem};
    tls_opts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, srv->priorities};
    if (t->client_ca_pem) {
      tls_opts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, t->client_ca_pem};
      tls_opts[nt++] =
          (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv};
    }
  }
  tls_opts[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  if (v6)
    flags |= dual ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
  srv->daemon = MHD_start_daemon(
      flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, r,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)r->http.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      connection_timeout_s(&r->http), MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
  if (!srv->daemon) {
    otc_error(r->log_component, "cannot listen on %s for OTLP/HTTP: %s", r->http.endpoint,
              strerror(errno));
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = info ? (int)info->port : port;
  r->http_srv = srv;
  srv = NULL;
  otc_info(r->log_component, "OTLP/HTTP listening on %s (port %d)%s", r->http.endpoint,
           r->http_srv->port,
           r->http.tls.enabled ? (r->http.tls.client_ca_pem ? " with mutual TLS" : " with TLS")
                               : "");
cleanup:
  free(srv);
  return rc;
}

void otlp_http__stop(struct otlp_receiver *r) {
  struct otlp_http_server *srv = r->http_srv;
  if (!srv)
    return;
  atomic_store(&srv->stopping, true);
  /* Let the requests in flight finish before the connections close; a request that starts now is
   * answered 503 (retryable) with "Connection: close". MHD_quiesce_daemon is not used: with a
   * thread pool on epoll it races the workers' own listen-socket bookkeeping and libmicrohttpd
   * 0.9.75 aborts the process ("Failed to remove listen FD from epoll set"). */
  for (int waited = 0; atomic_load(&srv->in_flight) > 0 && waited < DRAIN_TIMEOUT_MS;
       waited += 10) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  MHD_stop_daemon(srv->daemon);
  free(srv);
  r->http_srv = NULL;
}

int otlp_http__port(const struct otlp_receiver *r) {
  return r->http_srv ? r->http_srv->port : -1;
}
