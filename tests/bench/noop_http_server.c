/* The do-nothing OTLP/HTTP server of the performance issue: the transport floor over HTTP. One
 * libmicrohttpd internal polling thread; every POST body is gathered, copied once (as any real
 * server must) and answered with 200 and an empty body.
 *
 * usage: noop_http_server PORT   (listens on 127.0.0.1; runs until SIGTERM or SIGINT) */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BODY (64u << 20)

struct body {
  char *data;
  size_t len, cap;
};

static unsigned long long requests, bytes;

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
  struct body *b = *con_cls;
  if (!b) {
    *con_cls = b = calloc(1, sizeof *b);
    return b ? MHD_YES : MHD_NO;
  }
  if (*upload_size) {
    if (b->len + *upload_size > MAX_BODY)
      return MHD_NO;
    if (b->len + *upload_size > b->cap) {
      b->cap = (b->len + *upload_size) * 2;
      char *n = realloc(b->data, b->cap);
      if (!n)
        return MHD_NO;
      b->data = n;
    }
    memcpy(b->data + b->len, upload, *upload_size);
    b->len += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  /* The body is complete: copy it out as a server handing it on would, and answer. */
  char *copy = malloc(b->len + 1);
  if (copy && b->len)
    memcpy(copy, b->data, b->len);
  free(copy);
  requests++;
  bytes += b->len;
  struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Content-Type", "application/x-protobuf");
  enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  struct body *b = *con_cls;
  if (b) {
    free(b->data);
    free(b);
  }
  *con_cls = NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: noop_http_server PORT\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the polling thread */
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d =
      MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handle, NULL,
                       MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                       MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "noop_http_server: cannot listen on 127.0.0.1:%s\n", argv[1]);
    return 1;
  }
  int sig;
  sigwait(&set, &sig);
  MHD_stop_daemon(d);
  fprintf(stderr, "noop_http_server: %llu requests, %llu bytes\n", requests, bytes);
  return 0;
}
