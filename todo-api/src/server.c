#include "server.h"

#include "cors.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct todo_server {
  struct MHD_Daemon *daemon;
  struct todo_app *app;
  struct todo_tel *tel;
  struct todo_instrument *duration;
  struct todo_instrument *active;
  int port;
  char *cors_origins; /* CORS_ALLOWED_ORIGINS, owned; NULL: CORS off */
};

/* One request's state, from its first callback to its completion notice. */
struct request {
  uint64_t start_mono_ns;
  enum todo_method method;
  struct todo_route_match route;
  struct todo_span *span;
  char *path;
  char *body;
  size_t body_len;
  bool too_large;
  bool wants_body;
  bool responded;
  int status;
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *query_param(void *arg, const char *key) {
  return MHD_lookup_connection_value(arg, MHD_GET_ARGUMENT_KIND, key);
}

/* The span's name, "{method} {route}" per the HTTP semantic conventions; "HTTP" stands for an
 * unknown method, and an unmatched request is named by its method alone. */
static void span_name(const struct request *r, char *out, size_t n) {
  const char *m = r->method == TODO_METHOD_OTHER ? "HTTP" : todo_method_label(r->method);
  if (r->route.template) {
    snprintf(out, n, "%s %s", m, r->route.template);
  } else {
    snprintf(out, n, "%s", m);
  }
}

/* Splits a Host header into server.address and server.port ("[::1]:8000", "example:80"). */
static void set_server_address(struct todo_span *span, const char *host, int default_port) {
  char addr[256];
  int port = default_port;
  if (!host || !*host) {
    return;
  }
  snprintf(addr, sizeof(addr), "%s", host);
  char *colon = NULL;
  if (addr[0] == '[') {
    char *close = strchr(addr, ']');
    if (close) {
      colon = close[1] == ':' ? close + 1 : NULL;
      *close = '\0';
      memmove(addr, addr + 1, strlen(addr + 1) + 1);
    }
  } else {
    colon = strrchr(addr, ':');
  }
  if (colon) {
    *colon = '\0';
    port = atoi(colon + 1);
  }
  todo_span_set_attr(span, TODO_ATTR_STR("server.address", addr));
  if (port > 0) {
    todo_span_set_attr(span, TODO_ATTR_INT("server.port", port));
  }
}

static void set_client_address(struct todo_span *span, struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char addr[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (!info || !info->client_addr) {
    return;
  }
  if (info->client_addr->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)info->client_addr;
    inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
    port = ntohs(in->sin_port);
  } else if (info->client_addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)info->client_addr;
    inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
    port = ntohs(in6->sin6_port);
  }
  if (addr[0]) {
    todo_span_set_attr(span, TODO_ATTR_STR("client.address", addr));
    todo_span_set_attr(span, TODO_ATTR_INT("client.port", port));
  }
}

/* First callback of a request: match the route, start the span, count it active. */
static struct request *begin(struct todo_server *s, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version) {
  struct request *r = calloc(1, sizeof(*r));
  if (!r) {
    return NULL;
  }
  r->start_mono_ns = mono_ns();
  r->method = todo_method_parse(method);
  r->path = strdup(url ? url : "/");
  if (!r->path) {
    free(r);
    return NULL;
  }
  todo_route_match(r->path, &r->route);
  r->wants_body = todo_route_wants_body(&r->route, r->method);

  struct todo_span_context parent;
  bool has_parent =
      todo_traceparent_parse(header(c, "traceparent"), header(c, "tracestate"), &parent) == 0;
  char name[96];
  span_name(r, name, sizeof(name));
  r->span = todo_span_start(s->tel, name, TODO_SPAN_SERVER, has_parent ? &parent : NULL);
  if (r->span) {
    struct todo_span *sp = r->span;
    const char *ua = header(c, "User-Agent");
    todo_span_set_attr(sp, TODO_ATTR_STR("http.request.method", todo_method_label(r->method)));
    if (r->method == TODO_METHOD_OTHER) {
      todo_span_set_attr(sp, TODO_ATTR_STR("http.request.method_original", method));
    }
    todo_span_set_attr(sp, TODO_ATTR_STR("url.path", r->path));
    todo_span_set_attr(sp, TODO_ATTR_STR("url.scheme", "http"));
    if (r->route.template) {
      todo_span_set_attr(sp, TODO_ATTR_STR("http.route", r->route.template));
    }
    if (version && strncmp(version, "HTTP/", 5) == 0) {
      todo_span_set_attr(sp, TODO_ATTR_STR("network.protocol.version", version + 5));
    }
    if (ua) {
      todo_span_set_attr(sp, TODO_ATTR_STR("user_agent.original", ua));
    }
    set_server_address(sp, header(c, "Host"), s->port);
    set_client_address(sp, c);
  }
  struct todo_attr a[2] = {TODO_ATTR_STR("http.request.method", todo_method_label(r->method)),
                           TODO_ATTR_STR("url.scheme", "http")};
  todo_counter_add(s->active, 1, a, 2);
  return r;
}

/* Completion: end the span, record the duration, write the log line, uncount. */
static void finish(struct todo_server *s, struct request *r, enum MHD_RequestTerminationCode toe) {
  double seconds = (double)(mono_ns() - r->start_mono_ns) / 1e9;
  const char *method = todo_method_label(r->method);
  char status_text[16];
  snprintf(status_text, sizeof(status_text), "%d", r->status);
  if (r->span) {
    if (r->status) {
      todo_span_set_attr(r->span, TODO_ATTR_INT("http.response.status_code", r->status));
    }
    if (r->status >= 500) {
      /* 4xx are the client's errors: a server span stays UNSET for them (semantic conventions). */
      todo_span_set_attr(r->span, TODO_ATTR_STR("error.type", status_text));
      todo_span_set_status(r->span, TODO_STATUS_ERROR, NULL);
    } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
      todo_span_set_attr(r->span, TODO_ATTR_STR("error.type", "aborted"));
      todo_span_set_status(r->span, TODO_STATUS_ERROR, "the connection ended before the response");
    }
  }
  struct todo_attr m[4];
  size_t n = 0;
  m[n++] = TODO_ATTR_STR("http.request.method", method);
  m[n++] = TODO_ATTR_INT("http.response.status_code", r->status);
  if (r->route.template) {
    m[n++] = TODO_ATTR_STR("http.route", r->route.template);
  }
  if (r->status >= 500) {
    m[n++] = TODO_ATTR_STR("error.type", status_text);
  }
  if (r->status) {
    todo_histogram_record(s->duration, seconds, m, n);
  }
  struct todo_attr a[2] = {TODO_ATTR_STR("http.request.method", method),
                           TODO_ATTR_STR("url.scheme", "http")};
  todo_counter_add(s->active, -1, a, 2);

  char message[512];
  snprintf(message, sizeof(message), "%s %.400s %d", method, r->path, r->status);
  struct todo_attr fields[] = {
      TODO_ATTR_STR("method", method),
      TODO_ATTR_STR("route", r->route.template),
      TODO_ATTR_INT("status", r->status),
      TODO_ATTR_DBL("duration_ms", (double)((int64_t)(seconds * 1e6)) / 1e3),
  };
  enum todo_level level = r->status >= 500 || r->status == 0 ? TODO_LOG_ERROR
                          : r->status >= 400                 ? TODO_LOG_WARN
                                                             : TODO_LOG_INFO;
  todo_log(level, todo_span_get_context(r->span), message, fields, 4);
  todo_span_end(r->span);
  r->span = NULL;
}

static void free_request(struct request *r) {
  if (!r) {
    return;
  }
  todo_span_end(r->span);
  free(r->path);
  free(r->body);
  free(r);
}

/* The CORS response headers: for an allowed Origin, who may read the response (and, on a
 * preflight, with which method and headers it may be sent). Responses vary by Origin whenever CORS
 * is on, so that caches do not hand one origin's answer to another. */
static void add_cors_headers(const struct todo_server *s, struct MHD_Connection *c,
                             const struct request *r, int status, struct MHD_Response *mr) {
  if (!s->cors_origins) {
    return;
  }
  MHD_add_response_header(mr, "Vary", "Origin");
  const char *origin = header(c, "Origin");
  bool preflight = r->method == TODO_OPTIONS && header(c, "Access-Control-Request-Method");
  /* A refused preflight gets no CORS headers at all, so the browser does not send the request. */
  if (!todo_cors_origin_allowed(s->cors_origins, origin) || (preflight && status != 204)) {
    return;
  }
  MHD_add_response_header(mr, "Access-Control-Allow-Origin", origin);
  if (preflight) {
    MHD_add_response_header(mr, "Access-Control-Allow-Methods", todo_route_allow_header(&r->route));
    MHD_add_response_header(mr, "Access-Control-Allow-Headers", TODO_CORS_ALLOWED_HEADERS);
    MHD_add_response_header(mr, "Access-Control-Max-Age", TODO_CORS_MAX_AGE);
  } else {
    MHD_add_response_header(mr, "Access-Control-Expose-Headers", TODO_CORS_EXPOSED_HEADERS);
  }
}

/* A preflight that CORS allows: OPTIONS on a known route from an allowed origin, asking for a
 * method the route takes and only headers the API reads. Anything else goes to the router, which
 * answers OPTIONS with 405 and no CORS headers, so the browser does not send the real request. */
static bool is_preflight(const struct todo_server *s, struct MHD_Connection *c,
                         const struct request *r) {
  const char *method = header(c, "Access-Control-Request-Method");
  if (r->method != TODO_OPTIONS || !method || r->route.id == TODO_ROUTE_NONE ||
      !todo_cors_origin_allowed(s->cors_origins, header(c, "Origin")) ||
      !todo_cors_headers_allowed(header(c, "Access-Control-Request-Headers"))) {
    return false;
  }
  return todo_route_allows(&r->route, todo_method_parse(method));
}

/* Queues resp (whose body the response takes) with the headers every answer carries. */
static enum MHD_Result send_response(const struct todo_server *s, struct MHD_Connection *c,
                                     struct request *r, struct todo_response *resp) {
  struct MHD_Response *mr;
  if (resp->body) {
    mr = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
  } else {
    mr = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  }
  if (!mr) {
    free(resp->body);
    resp->body = NULL;
    return MHD_NO;
  }
  resp->body = NULL;
  if (resp->body_len || resp->content_type) {
    MHD_add_response_header(mr, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
  }
  if (resp->allow) {
    MHD_add_response_header(mr, "Allow", resp->allow);
  }
  if (resp->location[0]) {
    MHD_add_response_header(mr, "Location", resp->location);
  }
  if (resp->retry_after) {
    MHD_add_response_header(mr, "Retry-After", "1");
  }
  add_cors_headers(s, c, r, resp->status, mr);
  const struct todo_span_context *ctx = todo_span_get_context(r->span);
  if (ctx) {
    char tp[TODO_TRACEPARENT_LEN + 1];
    todo_traceparent_format(ctx, tp);
    MHD_add_response_header(mr, "traceparent", tp);
    if (ctx->trace_state[0]) {
      MHD_add_response_header(mr, "tracestate", ctx->trace_state);
    }
  }
  r->status = resp->status;
  r->responded = true;
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, mr);
  MHD_destroy_response(mr);
  return ret;
}

/* Appends a chunk of body, keeping at most max_body bytes; beyond that the request is marked too
 * large and the rest is discarded as it arrives. */
static void append_body(struct request *r, const char *data, size_t n, size_t max_body) {
  if (r->too_large || !r->wants_body) {
    return;
  }
  if (r->body_len + n > max_body) {
    r->too_large = true;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    return;
  }
  char *nb = realloc(r->body, r->body_len + n + 1);
  if (!nb) {
    r->too_large = true; /* refused rather than half-read */
    return;
  }
  memcpy(nb + r->body_len, data, n);
  r->body = nb;
  r->body_len += n;
  r->body[r->body_len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct todo_server *s = cls;
  struct request *r = *con_cls;
  struct todo_response resp = {0};
  if (!r) {
    r = begin(s, c, url, method, version);
    if (!r) {
      return MHD_NO;
    }
    *con_cls = r;
    /* A declared length over the limit is refused before any of the body is read, whatever the
     * route: nothing here takes a body that large. */
    const char *cl = header(c, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->app->max_body_bytes) {
      r->too_large = true;
      todo_response_error(&resp, 413, "payload_too_large", "the request body is too large");
      return send_response(s, c, r, &resp);
    }
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    append_body(r, upload_data, *upload_data_size, s->app->max_body_bytes);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->responded) {
    return MHD_YES;
  }
  struct todo_request req = {
      .method = r->method,
      .method_name = method,
      .path = r->path,
      .route = &r->route,
      .content_type = header(c, "Content-Type"),
      .body = r->body,
      .body_len = r->body_len,
      .body_too_large = r->too_large,
      .ctx = todo_span_get_context(r->span),
      .query = query_param,
      .query_arg = c,
  };
  if (is_preflight(s, c, r)) {
    return send_response(s, c, r, &(struct todo_response){.status = 204});
  }
  todo_route_handle(s->app, &req, &resp);
  return send_response(s, c, r, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)c;
  struct request *r = *con_cls;
  if (!r) {
    return;
  }
  finish(cls, r, toe);
  free_request(r);
  *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  msg[strcspn(msg, "\n")] = '\0';
  todo_log(TODO_LOG_DEBUG, NULL, msg, NULL, 0);
}

struct todo_server *todo_server_start(const struct todo_server_options *o) {
  static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                  0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
  if (strchr(o->host, ':')) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET6, o->host, &in6->sin6_addr) != 1) {
      todo_logf(TODO_LOG_ERROR, "HOST=%s is not an IP address", o->host);
      return NULL;
    }
    flags |= MHD_USE_IPv6;
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &in->sin_addr) != 1) {
      todo_logf(TODO_LOG_ERROR, "HOST=%s is not an IP address", o->host);
      return NULL;
    }
  }
  struct todo_server *s = calloc(1, sizeof(*s));
  if (!s) {
    return NULL;
  }
  s->app = o->app;
  s->tel = o->tel;
  s->port = o->port;
  if (o->cors_allowed_origins && *o->cors_allowed_origins) {
    s->cors_origins = strdup(o->cors_allowed_origins);
    if (!s->cors_origins) {
      free(s);
      return NULL;
    }
  }
  if (o->meter) {
    s->duration = todo_meter_histogram(o->meter, "http.server.request.duration", "s",
                                       "Duration of HTTP server requests.", bounds,
                                       sizeof(bounds) / sizeof(bounds[0]));
    s->active = todo_meter_updown_counter(o->meter, "http.server.active_requests", "{request}",
                                          "Number of active HTTP server requests.");
  }
  s->daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, s,
                               MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                               s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
  if (!s->daemon) {
    todo_logf(TODO_LOG_ERROR, "cannot listen on %s:%d", o->host, o->port);
    free(s->cors_origins);
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  if (info && info->port) {
    s->port = info->port;
  }
  return s;
}

int todo_server_port(const struct todo_server *s) {
  return s->port;
}

void todo_server_stop(struct todo_server *s) {
  if (!s) {
    return;
  }
  MHD_stop_daemon(s->daemon);
  free(s->cors_origins);
  free(s);
}
