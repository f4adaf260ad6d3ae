/* The HTTP server (libmicrohttpd, a thread per connection): reads requests within the body
 * limit, hands them to the router, and instruments each one: a SERVER span continuing the
 * caller's W3C trace context, the HTTP server metrics, and one log record. */
#ifndef TODO_SERVER_H
#define TODO_SERVER_H

#include "otel.h"
#include "routes.h"

struct todo_server;

struct todo_server_options {
  const char *host; /* IPv4 or IPv6 literal to bind */
  int port;         /* 0: any free port (see todo_server_port) */
  int max_connections;
  const char *cors_allowed_origins; /* copied; NULL or "": CORS off (see cors.h) */
  struct todo_app *app;     /* borrowed */
  struct todo_tel *tel;     /* borrowed, may be NULL */
  struct todo_meter *meter; /* borrowed, may be NULL */
};

/* Starts listening. Returns NULL (and logs why) when the address cannot be bound or memory runs
 * out. Stop and free with todo_server_stop. */
struct todo_server *todo_server_start(const struct todo_server_options *opts);
int todo_server_port(const struct todo_server *s);
/* Stops accepting, waits for the requests in flight, frees the server. NULL is a no-op. */
void todo_server_stop(struct todo_server *s);

#endif
