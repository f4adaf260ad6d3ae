#include "core/batch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "core/memory.h"

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct otc_batch *otc_batch_wrap(enum otc_signal signal, uint8_t *data, size_t len, size_t items,
                                 size_t charged) {
  struct otc_batch *b = malloc(sizeof *b);
  if (!b) {
    free(data);
    otc_mem_release(charged);
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->signal = signal;
  b->items = items;
  b->len = len;
  b->charged = charged;
  b->data = data;
  b->received_ns = monotonic_ns();
  return b;
}

struct otc_batch *otc_batch_copy(enum otc_signal signal, const void *data, size_t len, size_t items,
                                 bool admit, int *err) {
  /* The charge covers the struct too, so that many tiny batches are not free. */
  size_t charge = len + sizeof(struct otc_batch);
  if (admit) {
    int rc = otc_mem_reserve(charge);
    if (rc != 0) {
      if (err)
        *err = rc;
      return NULL;
    }
  } else {
    otc_mem_charge(charge);
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) {
    otc_mem_release(charge);
    if (err)
      *err = OTC_ERR_NOMEM;
    return NULL;
  }
  if (len)
    memcpy(copy, data, len);
  struct otc_batch *b = otc_batch_wrap(signal, copy, len, items, charge);
  if (!b && err)
    *err = OTC_ERR_NOMEM;
  return b;
}

struct otc_batch *otc_batch_ref(struct otc_batch *b) {
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return b;
}

void otc_batch_unref(struct otc_batch *b) {
  if (!b)
    return;
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
    return;
  otc_mem_release(b->charged);
  free(b->data);
  free(b);
}
