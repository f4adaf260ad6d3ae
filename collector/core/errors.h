/* Error codes shared by every unit of the collector. Functions return 0 on success or one of these
 * negative codes; otc_strerror() names them. Exporters and receivers map them onto protocol
 * statuses: INVALID and TOO_LARGE are the client's fault (never retried), REFUSED and RETRYABLE are
 * transient (the client or the sender retries), PERMANENT is a downstream rejection not worth
 * retrying. */
#ifndef OTC_ERRORS_H
#define OTC_ERRORS_H

enum {
  OTC_OK = 0,
  OTC_ERR_NOMEM = -1,     /* allocation failed */
  OTC_ERR_INVALID = -2,   /* undecodable or invalid input data */
  OTC_ERR_REFUSED = -3,   /* admission refused (memory limit, full queue): retry later */
  OTC_ERR_CONFIG = -4,    /* invalid configuration */
  OTC_ERR_IO = -5,        /* system call or network failure */
  OTC_ERR_PERMANENT = -6, /* the destination rejected the data for good */
  OTC_ERR_RETRYABLE = -7, /* the destination failed transiently */
  OTC_ERR_TOO_LARGE = -8, /* input over a size limit */
  OTC_ERR_SHUTDOWN = -9,  /* the component is shutting down */
};

const char *otc_strerror(int err);

/* Whether a client or sender should try the same data again later. */
static inline int otc_err_retryable(int err) {
  return err == OTC_ERR_REFUSED || err == OTC_ERR_RETRYABLE || err == OTC_ERR_IO ||
         err == OTC_ERR_SHUTDOWN || err == OTC_ERR_NOMEM;
}

#endif
