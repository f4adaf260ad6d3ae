/* sink: the backend end of a benchmark. It accepts what each exporter speaks and counts what it
 * DECODES, so that a benchmark can check that every item the collector accepted arrived:
 *   - OTLP/gRPC (the three Export methods, gRPC core server; gzip is undone by gRPC itself);
 *   - OTLP/HTTP POST /v1/traces|metrics|logs (protobuf or JSON, optionally gzip);
 *   - Loki push POST /loki/api/v1/push (snappy + logproto.PushRequest, or JSON, optionally gzip);
 *   - Prometheus remote write POST /api/v1/write (snappy + prometheus.WriteRequest).
 * GET /stats answers the counts as one JSON object; --stats-file gets the same object every second
 * and at exit; SIGTERM/SIGINT print it on stderr and stop.
 *
 * Remote write turns one OTLP gauge or sum point into one sample, plus `target_info` series that
 * describe resources; those are counted apart, so `prw_points` (samples outside target_info plus
 * native histograms) is what compares with OTLP data points.
 *
 * usage: sink [--grpc HOST:PORT] [--http PORT] [--stats-file PATH] [--http-threads N] */
#include <arpa/inet.h>
#include <getopt.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/otlp_json.h"
#include "core/signal.h"
#include "loki/push.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "prometheus/remote.pb-c.h"

#define MAX_BODY (256u << 20)         /* a request body as received */
#define MAX_DECOMPRESSED (512u << 20) /* after gzip or snappy */
#define GRPC_THREADS 2
#define GRPC_PENDING 16 /* calls requested ahead per method */
#define JSON_MAX_DEPTH 64

/* Every count the sink keeps, in the order /stats prints them. */
#define COUNTERS(X)                                                                                \
  X(spans)                                                                                         \
  X(metric_points)                                                                                 \
  X(log_records)                                                                                   \
  X(loki_streams)                                                                                  \
  X(loki_entries)                                                                                  \
  X(prw_series)                                                                                    \
  X(prw_samples)                                                                                   \
  X(prw_histograms)                                                                                \
  X(prw_target_info_samples)                                                                       \
  X(prw_points)                                                                                    \
  X(requests_grpc)                                                                                 \
  X(requests_otlp_http)                                                                            \
  X(requests_loki)                                                                                 \
  X(requests_prw)                                                                                  \
  X(bytes_received)                                                                                \
  X(decode_errors)

static struct {
#define DECLARE(name) atomic_uint_fast64_t name;
  COUNTERS(DECLARE)
#undef DECLARE
} counts;

static void add(atomic_uint_fast64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Writes the counts as one JSON object into buf; returns its length. */
static size_t stats_json(char *buf, size_t cap) {
  size_t off = 0;
  off += (size_t)snprintf(buf + off, cap - off, "{");
#define PRINT(name)                                                                                \
  off +=                                                                                           \
      (size_t)snprintf(buf + off, cap - off, "%s\"" #name "\":%" PRIuFAST64, off > 1 ? "," : "",   \
                       atomic_load_explicit(&counts.name, memory_order_relaxed));
  COUNTERS(PRINT)
#undef PRINT
  off += (size_t)snprintf(buf + off, cap - off, "}");
  return off;
}

/* --- decoding and counting --- */

/* Counts the items of an OTLP Export*ServiceRequest; returns 0, or -1 if it does not decode. */
static int count_otlp(enum otc_signal s, const uint8_t *buf, size_t len) {
  uint64_t n = 0;
  switch (s) {
  case OTC_SIGNAL_TRACES: {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         buf);
    if (!r)
      return -1;
    for (size_t i = 0; i < r->n_resource_spans; i++)
      for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
        n += r->resource_spans[i]->scope_spans[j]->n_spans;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
                                                                                            NULL);
    add(&counts.spans, n);
    break;
  }
  case OTC_SIGNAL_METRICS: {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, len, buf);
    if (!r)
      return -1;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
      Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
      for (size_t j = 0; j < rm->n_scope_metrics; j++) {
        for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
          Opentelemetry__Proto__Metrics__V1__Metric *m = rm->scope_metrics[j]->metrics[k];
          switch (m->data_case) {
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
            n += m->gauge->n_data_points;
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
            n += m->sum->n_data_points;
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
            n += m->histogram->n_data_points;
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
            n += m->exponential_histogram->n_data_points;
            break;
          case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
            n += m->summary->n_data_points;
            break;
          default:
            break;
          }
        }
      }
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r, NULL);
    add(&counts.metric_points, n);
    break;
  }
  default: {
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, len,
                                                                                       buf);
    if (!r)
      return -1;
    for (size_t i = 0; i < r->n_resource_logs; i++)
      for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
        n += r->resource_logs[i]->scope_logs[j]->n_log_records;
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
    add(&counts.log_records, n);
    break;
  }
  }
  return 0;
}

static int count_loki_proto(const uint8_t *buf, size_t len) {
  Logproto__PushRequest *r = logproto__push_request__unpack(NULL, len, buf);
  if (!r)
    return -1;
  uint64_t entries = 0;
  for (size_t i = 0; i < r->n_streams; i++)
    entries += r->streams[i]->n_entries;
  add(&counts.loki_streams, r->n_streams);
  add(&counts.loki_entries, entries);
  logproto__push_request__free_unpacked(r, NULL);
  return 0;
}

/* {"streams":[{"stream":{...},"values":[["<ns>","line",{...}],...]},...]} */
static int count_loki_json(const uint8_t *buf, size_t len) {
  json_t *root = json_loadb((const char *)buf, len, 0, NULL);
  json_t *streams = root ? json_object_get(root, "streams") : NULL;
  if (!json_is_array(streams)) {
    json_decref(root);
    return -1;
  }
  uint64_t entries = 0;
  size_t i;
  json_t *st;
  json_array_foreach(streams, i, st) {
    json_t *values = json_object_get(st, "values");
    if (json_is_array(values))
      entries += json_array_size(values);
  }
  add(&counts.loki_streams, json_array_size(streams));
  add(&counts.loki_entries, entries);
  json_decref(root);
  return 0;
}

static int count_prw(const uint8_t *buf, size_t len) {
  Prometheus__WriteRequest *r = prometheus__write_request__unpack(NULL, len, buf);
  if (!r)
    return -1;
  uint64_t samples = 0, hists = 0, info = 0;
  for (size_t i = 0; i < r->n_timeseries; i++) {
    Prometheus__TimeSeries *ts = r->timeseries[i];
    bool is_info = false;
    for (size_t j = 0; j < ts->n_labels; j++) {
      if (strcmp(ts->labels[j]->name, "__name__") == 0) {
        is_info = strcmp(ts->labels[j]->value, "target_info") == 0;
        break;
      }
    }
    if (is_info) {
      info += ts->n_samples;
    } else {
      samples += ts->n_samples;
      hists += ts->n_histograms;
    }
  }
  add(&counts.prw_series, r->n_timeseries);
  add(&counts.prw_samples, samples);
  add(&counts.prw_histograms, hists);
  add(&counts.prw_target_info_samples, info);
  add(&counts.prw_points, samples + hists);
  prometheus__write_request__free_unpacked(r, NULL);
  return 0;
}

/* Inflates gzip or zlib data into a malloc'd buffer (caller frees); returns 0 or -1. */
static int gunzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK)
    return -1;
  size_t cap = len * 4 + 1024, n = 0;
  uint8_t *buf = malloc(cap);
  int rc = Z_OK;
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)len;
  while (buf && rc == Z_OK) {
    if (n == cap) {
      if (cap >= MAX_DECOMPRESSED)
        break;
      cap *= 2;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    z.next_out = buf + n;
    z.avail_out = (uInt)(cap - n);
    rc = inflate(&z, Z_NO_FLUSH);
    n = cap - z.avail_out;
  }
  inflateEnd(&z);
  if (!buf || rc != Z_STREAM_END) {
    free(buf);
    return -1;
  }
  *out = buf;
  *out_len = n;
  return 0;
}

static int unsnappy(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len) {
  size_t n = 0;
  if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK || n > MAX_DECOMPRESSED)
    return -1;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf)
    return -1;
  if (snappy_uncompress((const char *)in, len, (char *)buf, &n) != SNAPPY_OK) {
    free(buf);
    return -1;
  }
  *out = buf;
  *out_len = n;
  return 0;
}

/* --- OTLP/gRPC --- */

struct gcall {
  int method;
  grpc_call *call;
  grpc_byte_buffer *payload;
  grpc_metadata_array md;
  gpr_timespec deadline;
  grpc_byte_buffer *reply;
  grpc_slice details;
  int answering, cancelled;
};

static grpc_server *g_server;
static grpc_completion_queue *g_cq;
static void *g_methods[3];
static char g_shutdown_tag;

static void gcall_request(struct gcall *c) {
  grpc_metadata_array_init(&c->md);
  c->answering = 0;
  c->payload = NULL;
  c->reply = NULL;
  c->details = grpc_empty_slice();
  if (grpc_server_request_registered_call(g_server, g_methods[c->method], &c->call, &c->deadline,
                                          &c->md, &c->payload, g_cq, g_cq, c) != GRPC_CALL_OK)
    fprintf(stderr, "sink: grpc_server_request_registered_call failed\n");
}

static void gcall_answer(struct gcall *c) {
  grpc_status_code status = GRPC_STATUS_OK;
  add(&counts.requests_grpc, 1);
  if (c->payload) {
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, c->payload);
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    add(&counts.bytes_received, GRPC_SLICE_LENGTH(s));
    if (count_otlp((enum otc_signal)c->method, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s)) !=
        0) {
      add(&counts.decode_errors, 1);
      status = GRPC_STATUS_INVALID_ARGUMENT;
      c->details = grpc_slice_from_static_string("sink: the request does not decode");
    }
    grpc_slice_unref(s);
    grpc_byte_buffer_reader_destroy(&rd);
  }
  grpc_slice empty = grpc_empty_slice();
  c->reply = grpc_raw_byte_buffer_create(&empty, 1);
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = c->reply;
  ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[2].data.send_status_from_server.status = status;
  ops[2].data.send_status_from_server.status_details = &c->details;
  ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[3].data.recv_close_on_server.cancelled = &c->cancelled;
  c->answering = 1;
  if (grpc_call_start_batch(c->call, ops, 4, c, NULL) != GRPC_CALL_OK)
    fprintf(stderr, "sink: grpc_call_start_batch failed\n");
}

static void gcall_release(struct gcall *c) {
  grpc_byte_buffer_destroy(c->payload);
  grpc_byte_buffer_destroy(c->reply);
  grpc_metadata_array_destroy(&c->md);
  grpc_slice_unref(c->details);
  if (c->call)
    grpc_call_unref(c->call);
  c->call = NULL;
  c->payload = NULL;
  c->reply = NULL;
}

static void *grpc_thread(void *arg) {
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(g_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    if (ev.tag == &g_shutdown_tag) {
      grpc_completion_queue_shutdown(g_cq);
      continue;
    }
    struct gcall *c = ev.tag;
    if (!ev.success) {
      /* A requested call that the shutdown cancelled, or a failed answer: not requested again. */
      gcall_release(c);
      continue;
    }
    if (!c->answering) {
      gcall_answer(c);
    } else {
      gcall_release(c);
      gcall_request(c);
    }
  }
  return NULL;
}

static struct gcall *g_calls;
static pthread_t g_threads[GRPC_THREADS];

static int grpc_start(const char *addr) {
  static const char *const methods[3] = {
      "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
      "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
      "/opentelemetry.proto.collector.logs.v1.LogsService/Export"};
  grpc_init();
  grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                  .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                  .value.integer = (int)MAX_BODY};
  grpc_channel_args args = {.num_args = 1, .args = &arg};
  g_server = grpc_server_create(&args, NULL);
  g_cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(g_server, g_cq, NULL);
  for (int i = 0; i < 3; i++)
    g_methods[i] = grpc_server_register_method(g_server, methods[i], NULL,
                                               GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(g_server, addr, creds);
  grpc_server_credentials_release(creds);
  if (!port) {
    fprintf(stderr, "sink: cannot listen for gRPC on %s\n", addr);
    return -1;
  }
  grpc_server_start(g_server);
  g_calls = calloc(3 * GRPC_PENDING, sizeof *g_calls);
  for (int i = 0; i < 3 * GRPC_PENDING; i++) {
    g_calls[i].method = i / GRPC_PENDING;
    gcall_request(&g_calls[i]);
  }
  for (int i = 0; i < GRPC_THREADS; i++)
    pthread_create(&g_threads[i], NULL, grpc_thread, NULL);
  return 0;
}

static void grpc_stop(void) {
  grpc_server_shutdown_and_notify(g_server, g_cq, &g_shutdown_tag);
  grpc_server_cancel_all_calls(g_server);
  for (int i = 0; i < GRPC_THREADS; i++)
    pthread_join(g_threads[i], NULL);
  grpc_server_destroy(g_server);
  grpc_completion_queue_destroy(g_cq);
  free(g_calls);
  grpc_shutdown();
}

/* --- HTTP --- */

struct hreq {
  uint8_t *body;
  size_t len, cap;
  bool too_large;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *body) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  if (ctype)
    MHD_add_response_header(r, "Content-Type", ctype);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static bool has_prefix(const char *s, const char *prefix) {
  return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Decodes and counts one complete POST; returns the HTTP status to answer. */
static unsigned handle_post(struct MHD_Connection *conn, const char *url, struct hreq *h,
                            const char **ctype_out, const char **body_out) {
  const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
  const char *cenc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
  bool json = has_prefix(ctype, "application/json");
  uint8_t *plain = NULL;
  size_t plain_len = 0;
  const uint8_t *data = h->body;
  size_t len = h->len;
  unsigned status = 200;
  int rc = 0;
  add(&counts.bytes_received, h->len);
  *ctype_out = json ? "application/json" : "application/x-protobuf";
  *body_out = json ? "{}" : "";
  if (has_prefix(cenc, "gzip") || has_prefix(cenc, "deflate")) {
    if (gunzip(h->body, h->len, &plain, &plain_len) != 0) {
      rc = -1;
      goto done;
    }
    data = plain;
    len = plain_len;
  }
  if (strncmp(url, "/v1/", 4) == 0) {
    enum otc_signal s;
    if (otc_signal_parse(url + 4, &s) != 0) {
      status = 404;
      goto done;
    }
    add(&counts.requests_otlp_http, 1);
    if (json) {
      uint8_t *pb = NULL;
      size_t pb_len = 0;
      char err[256];
      rc = otc_json_to_proto(s, (const char *)data, len, JSON_MAX_DEPTH, &pb, &pb_len, err,
                             sizeof err);
      if (rc == 0)
        rc = count_otlp(s, pb, pb_len);
      free(pb);
    } else {
      rc = count_otlp(s, data, len);
    }
  } else if (strcmp(url, "/loki/api/v1/push") == 0) {
    add(&counts.requests_loki, 1);
    status = 204;
    *body_out = "";
    if (json) {
      rc = count_loki_json(data, len);
    } else if (!plain) {
      /* The protobuf form is always snappy-compressed (and carries no Content-Encoding). */
      rc = unsnappy(data, len, &plain, &plain_len);
      if (rc == 0)
        rc = count_loki_proto(plain, plain_len);
    } else {
      rc = count_loki_proto(data, len);
    }
  } else if (strcmp(url, "/api/v1/write") == 0) {
    add(&counts.requests_prw, 1);
    status = 204;
    *body_out = "";
    rc = unsnappy(data, len, &plain, &plain_len);
    if (rc == 0)
      rc = count_prw(plain, plain_len);
  } else {
    status = 404;
  }
done:
  free(plain);
  if (rc != 0) {
    add(&counts.decode_errors, 1);
    status = 400;
    *ctype_out = "text/plain";
    *body_out = "sink: the request does not decode\n";
  }
  return status;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **con_cls) {
  struct hreq *h = *con_cls;
  if (!h) {
    h = calloc(1, sizeof *h);
    if (!h)
      return MHD_NO;
    *con_cls = h;
    return MHD_YES;
  }
  if (strcmp(method, "GET") == 0) {
    char buf[2048];
    if (strcmp(url, "/stats") != 0)
      return reply(conn, 404, "text/plain", "not found\n");
    stats_json(buf, sizeof buf);
    return reply(conn, 200, "application/json", buf);
  }
  if (strcmp(method, "POST") != 0)
    return reply(conn, 405, "text/plain", "method not allowed\n");
  if (*upload_size) {
    if (h->len + *upload_size > MAX_BODY) {
      h->too_large = true;
    } else {
      if (h->len + *upload_size > h->cap) {
        size_t cap = (h->len + *upload_size) * 2;
        uint8_t *nb = realloc(h->body, cap);
        if (!nb)
          return MHD_NO;
        h->body = nb;
        h->cap = cap;
      }
      memcpy(h->body + h->len, upload, *upload_size);
      h->len += *upload_size;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (h->too_large)
    return reply(conn, 413, "text/plain", "too large\n");
  const char *ctype = NULL, *body = NULL;
  unsigned status = handle_post(conn, url, h, &ctype, &body);
  return reply(conn, status, ctype, body);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
  struct hreq *h = *con_cls;
  if (h) {
    free(h->body);
    free(h);
  }
  *con_cls = NULL;
}

/* --- main --- */

static void write_stats_file(const char *path) {
  char buf[2048], tmp[4096];
  size_t n = stats_json(buf, sizeof buf);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return;
  fwrite(buf, 1, n, f);
  fputc('\n', f);
  if (fclose(f) == 0)
    rename(tmp, path);
}

static void usage(FILE *f) {
  fprintf(f, "usage: sink [--grpc HOST:PORT] [--http PORT] [--stats-file PATH] [--http-threads N]\n"
             "HTTP listens on 127.0.0.1 and serves /v1/*, /loki/api/v1/push, /api/v1/write and\n"
             "GET /stats. Runs until SIGTERM or SIGINT.\n");
}

int main(int argc, char **argv) {
  const char *grpc_addr = NULL, *stats_file = NULL;
  int http_port = -1, http_threads = 2;
  static const struct option longopts[] = {{"grpc", required_argument, NULL, 'g'},
                                           {"http", required_argument, NULL, 'H'},
                                           {"stats-file", required_argument, NULL, 's'},
                                           {"http-threads", required_argument, NULL, 't'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "g:H:s:t:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'g':
      grpc_addr = optarg;
      break;
    case 'H':
      http_port = atoi(optarg);
      break;
    case 's':
      stats_file = optarg;
      break;
    case 't':
      http_threads = atoi(optarg);
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if ((!grpc_addr && http_port < 0) || http_port > 65535 || http_threads < 1 || optind != argc) {
    usage(stderr);
    return 2;
  }
  /* Signals are taken by sigtimedwait below; every thread started from here inherits the mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  struct MHD_Daemon *d = NULL;
  if (http_port >= 0) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                         http_handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)http_threads,
                         MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
      fprintf(stderr, "sink: cannot listen for HTTP on 127.0.0.1:%d\n", http_port);
      return 1;
    }
  }
  if (grpc_addr && grpc_start(grpc_addr) != 0) {
    if (d)
      MHD_stop_daemon(d);
    return 1;
  }
  fprintf(stderr, "sink: ready (grpc %s, http %d)\n", grpc_addr ? grpc_addr : "-", http_port);
  struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
  for (;;) {
    int sig = sigtimedwait(&set, NULL, &tick);
    if (stats_file)
      write_stats_file(stats_file);
    if (sig == SIGTERM || sig == SIGINT)
      break;
  }
  if (grpc_addr)
    grpc_stop();
  if (d)
    MHD_stop_daemon(d);
  char buf[2048];
  stats_json(buf, sizeof buf);
  if (stats_file)
    write_stats_file(stats_file);
  fprintf(stderr, "sink: %s\n", buf);
  return 0;
}
