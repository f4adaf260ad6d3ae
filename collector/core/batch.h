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
  size_t items;   /* spans, metric data points or log records */
  size_t len;     /* bytes at data, or in all parts */
  size_t charged; /* bytes charged to the memory accounting, released on free */
  uint8_t *data;  /* malloc'd Export*ServiceRequest wire bytes; NULL for a joined batch */
  /* A joined batch (otc_batch_join): its bytes are the parts' bytes one after the other, which is
   * one valid request since repeated fields concatenate. Only consumers that say they take such
   * batches (otc_consumer.takes_parts) are given one; every other batch has data and no parts. */
  struct otc_batch **parts; /* malloc'd; one reference held on each */
  size_t n_parts;
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

/* A batch whose bytes are those of parts[0..n-1] in order, without copying them: the batch
 * processor's merge for consumers that send a list of buffers as well as one (the OTLP exporters).
 * On success takes over the caller's reference on each part (the array itself is copied); returns
 * NULL when out of memory, the parts then still the caller's. Each part must have data (not be
 * joined itself). */
struct otc_batch *otc_batch_join(enum otc_signal signal, struct otc_batch *const *parts, size_t n);

/* Adds a reference; returns b. */
struct otc_batch *otc_batch_ref(struct otc_batch *b);
/* Drops a reference; the last one frees the bytes and releases their charge. NULL is a no-op. */
void otc_batch_unref(struct otc_batch *b);

#endif
