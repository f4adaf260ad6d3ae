/* A batch: one signal's data as the wire bytes of an Export{Trace,Metrics,Logs}ServiceRequest,
 * with its item count (spans, data points, log records). Reference counted and read-only once
 * built: a fan-out hands the same batch to every consumer. Its bytes are charged to the memory
 * accounting (memory.h) for as long as it lives. */
#ifndef OTC_BATCH_H
#define OTC_BATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/signal.h"

struct otc_batch {
  atomic_int refs;
  enum otc_signal signal;
  size_t items;     /* spans, metric data points or log records */
  size_t len;       /* bytes at data */
  size_t charged;   /* bytes charged to the memory accounting, released on free */
  uint8_t *data;    /* malloc'd Export*ServiceRequest wire bytes */
  int64_t received_ns; /* CLOCK_MONOTONIC time the data entered the collector */
};

/* Adopts data (malloc'd, ownership passes to the batch even on failure) whose `charged` bytes the
 * caller already charged with otc_mem_reserve/otc_mem_charge. Returns a batch with one reference,
 * or NULL (data freed, charge released) when out of memory. */
struct otc_batch *otc_batch_wrap(enum otc_signal signal, uint8_t *data, size_t len, size_t items,
                                 size_t charged);

/* Copies len bytes into a new batch. With admit, the bytes go through admission control and the
 * call fails with *err = OTC_ERR_REFUSED above the limit; without, they are charged
 * unconditionally. Returns NULL on failure with *err set (err may be NULL). */
struct otc_batch *otc_batch_copy(enum otc_signal signal, const void *data, size_t len, size_t items,
                                 bool admit, int *err);

/* Adds a reference; returns b. */
struct otc_batch *otc_batch_ref(struct otc_batch *b);
/* Drops a reference; the last one frees the bytes and releases their charge. NULL is a no-op. */
void otc_batch_unref(struct otc_batch *b);

#endif
