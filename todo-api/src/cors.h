/* CORS (the Fetch standard's CORS protocol) for browser clients of the API: which origins may read
 * responses, and the answer to a preflight. Off unless CORS_ALLOWED_ORIGINS lists origins. */
#ifndef TODO_CORS_H
#define TODO_CORS_H

#include <stdbool.h>

/* The request headers a preflight may ask for: the API reads Content-Type and the trace context. */
#define TODO_CORS_ALLOWED_HEADERS "Content-Type, traceparent, tracestate"
/* The response headers scripts may read besides the CORS-safelisted ones. */
#define TODO_CORS_EXPOSED_HEADERS "Location, Retry-After, traceparent, tracestate"
/* How long browsers may cache a preflight answer, in seconds. */
#define TODO_CORS_MAX_AGE "600"

/* True when origin (an Origin header, may be NULL) appears in allowed, a comma-separated list of
 * origins ("https://app.example.com, http://localhost:3000") where "*" allows any origin.
 * Origins compare exactly, scheme and host case-insensitively as browsers serialize them in
 * lowercase. NULL or empty allowed: no origin is allowed. */
bool todo_cors_origin_allowed(const char *allowed, const char *origin);

/* True when every name in a preflight's Access-Control-Request-Headers (a comma-separated list,
 * may be NULL) is one of TODO_CORS_ALLOWED_HEADERS, compared case-insensitively. */
bool todo_cors_headers_allowed(const char *requested);

#endif
