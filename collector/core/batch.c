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
  b->parts = NULL;
  b->n_parts = 0;
  b->received_ns = monotonic_ns();
  return b;
}

struct otc_batch *otc_batch_join(enum otc_signal signal, struct otc_batch *const *parts, size_t n) {
  /* The parts stay charged for their bytes; the join adds only its own bookkeeping. */
  size_t charge = sizeof(struct otc_batch) + n * sizeof *parts;
  otc_mem_charge(charge);
  struct otc_batch *b = malloc(sizeof *b);
  struct otc_batch **v = malloc((n ? n : 1) * sizeof *v);
  if (!b || !v) {
    free(b);
    free(v);
    otc_mem_release(charge);
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->signal = signal;
  b->items = 0;
  b->len = 0;
  b->charged = charge;
  b->data = NULL;
  b->parts = v;
  b->n_parts = n;
  b->received_ns = n ? parts[0]->received_ns : monotonic_ns();
  for (size_t i = 0; i < n; i++) {
    v[i] = parts[i];
    b->items += parts[i]->items;
    b->len += parts[i]->len;
    if (parts[i]->received_ns < b->received_ns)
      b->received_ns = parts[i]->received_ns;
  }
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
  for (size_t i = 0; i < b->n_parts; i++)
    otc_batch_unref(b->parts[i]);
  free(b->parts);
  free(b);
}
