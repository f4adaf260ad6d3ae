/* Network addresses as the OpenTelemetry Collector's configs write them. */
#ifndef OTC_NET_H
#define OTC_NET_H

#include <stddef.h>

/* Splits an endpoint "host:port" ("[::1]:4318" for IPv6; an empty host, ":4318", means every
 * interface) into host (without brackets, copied into host, which has hostlen bytes) and port
 * (0-65535). An unbracketed IPv6 address is refused as ambiguous, as Go's net.SplitHostPort does.
 * Returns 0 or OTC_ERR_CONFIG. */
int otc_parse_hostport(const char *endpoint, char *host, size_t hostlen, int *port);

#endif
