/* The do-nothing OTLP/gRPC server of the performance issue: the transport floor. One completion
 * queue, the three Export methods registered with their payload read up front; each call's message
 * is copied out (as any real server must) and answered with an empty message and status OK.
 * Whatever a collector costs above this per request is its own overhead.
 *
 * usage: noop_grpc_server HOST:PORT   (runs until SIGTERM or SIGINT) */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NMETHODS 3
#define PENDING 8 /* calls requested ahead per method */

struct call {
  void *method;
  grpc_call *call;
  grpc_byte_buffer *payload;
  grpc_metadata_array md;
  gpr_timespec deadline;
  grpc_byte_buffer *reply;
  int answering, close_cancelled;
};

static grpc_server *server;
static grpc_completion_queue *cq;

static void request(struct call *c) {
  grpc_metadata_array_init(&c->md);
  c->answering = 0;
  grpc_server_request_registered_call(server, c->method, &c->call, &c->deadline, &c->md,
                                      &c->payload, cq, cq, c);
}

static char shutdown_tag;

/* Signals are taken by this thread (blocked everywhere else), where calling into gRPC is safe. */
static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  int sig;
  sigwait(set, &sig);
  grpc_server_shutdown_and_notify(server, cq, &shutdown_tag);
  return NULL;
}

int main(int argc, char **argv) {
  static const char *const methods[NMETHODS] = {
      "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
      "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
      "/opentelemetry.proto.collector.logs.v1.LogsService/Export"};
  if (argc != 2) {
    fprintf(stderr, "usage: noop_grpc_server HOST:PORT\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* before gRPC starts its threads, so they inherit it */
  grpc_init();
  grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                  .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                  .value.integer = 64 << 20};
  grpc_channel_args args = {.num_args = 1, .args = &arg};
  server = grpc_server_create(&args, NULL);
  cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(server, cq, NULL);
  void *handles[NMETHODS];
  for (int i = 0; i < NMETHODS; i++)
    handles[i] = grpc_server_register_method(server, methods[i], NULL,
                                             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  if (!grpc_server_add_http2_port(server, argv[1], creds)) {
    fprintf(stderr, "noop_grpc_server: cannot listen on %s\n", argv[1]);
    return 1;
  }
  grpc_server_credentials_release(creds);
  grpc_server_start(server);
  pthread_t sig_thread;
  pthread_create(&sig_thread, NULL, signal_thread, &set);
  static struct call calls[NMETHODS * PENDING];
  for (int i = 0; i < NMETHODS * PENDING; i++) {
    calls[i].method = handles[i / PENDING];
    request(&calls[i]);
  }
  unsigned long long requests = 0, bytes = 0;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE || ev.tag == &shutdown_tag)
      break;
    struct call *c = ev.tag;
    if (!ev.success) {
      if (c->call)
        grpc_call_unref(c->call);
      c->call = NULL;
      continue; /* the server is shutting down: do not request again */
    }
    if (!c->answering) {
      /* Receive and copy the message, then answer with an empty one. */
      if (c->payload) {
        grpc_byte_buffer_reader rd;
        grpc_byte_buffer_reader_init(&rd, c->payload);
        grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
        void *copy = malloc(GRPC_SLICE_LENGTH(s) + 1);
        memcpy(copy, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
        bytes += GRPC_SLICE_LENGTH(s);
        free(copy);
        grpc_slice_unref(s);
        grpc_byte_buffer_reader_destroy(&rd);
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
      }
      requests++;
      grpc_slice empty = grpc_empty_slice();
      c->reply = grpc_raw_byte_buffer_create(&empty, 1);
      grpc_op ops[4];
      memset(ops, 0, sizeof ops);
      ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
      ops[1].op = GRPC_OP_SEND_MESSAGE;
      ops[1].data.send_message.send_message = c->reply;
      ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
      ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
      ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
      ops[3].data.recv_close_on_server.cancelled = &c->close_cancelled;
      c->answering = 1;
      grpc_call_start_batch(c->call, ops, 4, c, NULL);
    } else {
      grpc_byte_buffer_destroy(c->reply);
      grpc_metadata_array_destroy(&c->md);
      grpc_call_unref(c->call);
      c->call = NULL;
      request(c);
    }
  }
  fprintf(stderr, "noop_grpc_server: %llu requests, %llu bytes\n", requests, bytes);
  grpc_server_cancel_all_calls(server);
  grpc_server_destroy(server);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  pthread_join(sig_thread, NULL);
  grpc_shutdown();
  return 0;
}
