#include "core/net.h"

#include <ctype.h>
#include <string.h>

#include "core/errors.h"

int otc_parse_hostport(const char *endpoint, char *host, size_t hostlen, int *port) {
  if (!endpoint)
    return OTC_ERR_CONFIG;
  const char *colon;
  const char *h = endpoint;
  size_t hlen;
  if (endpoint[0] == '[') {
    const char *close = strchr(endpoint, ']');
    if (!close || close[1] != ':')
      return OTC_ERR_CONFIG;
    h = endpoint + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
    if (hlen == 0)
      return OTC_ERR_CONFIG;
  } else {
    colon = strrchr(endpoint, ':');
    if (!colon)
      return OTC_ERR_CONFIG;
    hlen = (size_t)(colon - endpoint);
    /* An unbracketed IPv6 address is ambiguous ("::1:4318"), as Go's net.SplitHostPort says. */
    if (memchr(endpoint, ':', hlen))
      return OTC_ERR_CONFIG;
  }
  const char *p = colon + 1;
  if (*p == '\0')
    return OTC_ERR_CONFIG;
  long v = 0;
  for (; *p; p++) {
    if (!isdigit((unsigned char)*p))
      return OTC_ERR_CONFIG;
    v = v * 10 + (*p - '0');
    if (v > 65535)
      return OTC_ERR_CONFIG;
  }
  for (size_t i = 0; i < hlen; i++) {
    unsigned char c = (unsigned char)h[i];
    if (isspace(c) || c == '/' || c == '[' || c == ']')
      return OTC_ERR_CONFIG;
  }
  if (hlen + 1 > hostlen)
    return OTC_ERR_CONFIG;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = (int)v;
  return 0;
}
