/* The bearertokenauth extension (otelcol-contrib's `bearertokenauth`): static bearer tokens that
 * receivers require from their clients and exporters send to their backends. Components name it
 * in their `auth: {authenticator: bearertokenauth/NAME}` map and find it with otc_auth_resolve.
 *
 * Config: `token` (one token) or `tokens` (a list; the server accepts any of them, a client sends
 * the first), or `filename` (a file with one token per line, which wins over token(s) and is read
 * again when it changes, checked at most once a second); `scheme` ("Bearer") is put in front of
 * the token with one space, unless empty; `header` ("Authorization") is the HTTP header or gRPC
 * metadata key (lowercased for gRPC) that carries it.
 *
 * An instance is thread safe: receivers check and exporters read it from any thread. It lives
 * until the service is destroyed, after every component that uses it. */
#ifndef OTC_BEARERTOKENAUTH_H
#define OTC_BEARERTOKENAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/component.h"

extern const struct otc_component_ops otc_extension_bearertokenauth;

struct otc_bearertokenauth;

/* Reads a configauth map (`authenticator: <extension id>`; `request_params` is accepted with a
 * warning) and finds the bearertokenauth extension it names among those service::extensions
 * enables. auth NULL or a null node: *out = NULL and 0 (no authentication). An id that is not an
 * enabled bearertokenauth extension is an error at the authenticator key. what names the place in
 * messages ("protocols.grpc.auth"). The result is borrowed from the service. Returns 0 or
 * OTC_ERR_CONFIG with err filled. */
int otc_auth_resolve(const struct otc_create_args *args, const struct otc_cfg_node *auth,
                     const char *what, const char *component, struct otc_bearertokenauth **out,
                     struct otc_cfg_err *err);

/* The header (HTTP) or metadata key (gRPC, compared without case) that carries the token. */
const char *otc_bearertokenauth_header(const struct otc_bearertokenauth *a);
/* The scheme as configured ("Bearer" by default; may be empty), for WWW-Authenticate. */
const char *otc_bearertokenauth_scheme(const struct otc_bearertokenauth *a);

/* Server side: whether value (len bytes, not necessarily NUL-terminated; NULL when the request
 * carries no such header) is "<scheme> <token>" for one of the tokens. Each comparison takes a
 * time that depends on the expected value only, never on how much of it the client got right.
 * On false, why (may be NULL) gets a message for the client that does not echo what it sent. */
bool otc_bearertokenauth_check(struct otc_bearertokenauth *a, const char *value, size_t len,
                               char *why, size_t whycap);

/* Client side: writes "<scheme> <token>" (the first token) into buf. Returns 0, OTC_ERR_TOO_LARGE
 * when it does not fit, or OTC_ERR_IO when no token is available (an empty token file). */
int otc_bearertokenauth_value(struct otc_bearertokenauth *a, char *buf, size_t cap);

#endif
