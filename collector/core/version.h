/* The collector's version, in one place (--version, User-Agent of the exporters). */
#ifndef OTC_VERSION_H
#define OTC_VERSION_H

#define OTC_VERSION "0.1.0"
#define OTC_USER_AGENT "otelc-collector/" OTC_VERSION

#endif
