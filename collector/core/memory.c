#include "core/memory.h"

#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "core/errors.h"

static atomic_uint_least64_t held;
static atomic_uint_least64_t peak;
static atomic_uint_least64_t limit;      /* 0: unlimited */
static atomic_uint_least64_t soft_limit; /* limit - spike */
static atomic_uint_least64_t refused;
static atomic_bool rss_refusing;

void otc_mem_set_limits(uint64_t limit_bytes, uint64_t spike_bytes) {
  uint64_t cur = atomic_load(&limit);
  /* Several memory_limiter processors share one process: the smallest limit wins. */
  if (limit_bytes == 0 || (cur != 0 && cur <= limit_bytes))
    return;
  atomic_store(&limit, limit_bytes);
  atomic_store(&soft_limit, spike_bytes < limit_bytes ? limit_bytes - spike_bytes : 0);
}

uint64_t otc_mem_limit(void) { return atomic_load(&limit); }
uint64_t otc_mem_soft_limit(void) { return atomic_load(&soft_limit); }

static void update_peak(uint64_t now) {
  uint64_t p = atomic_load(&peak);
  while (now > p && !atomic_compare_exchange_weak(&peak, &p, now)) {
  }
}

int otc_mem_reserve(size_t bytes) {
  if (atomic_load(&rss_refusing)) {
    atomic_fetch_add(&refused, 1);
    return OTC_ERR_REFUSED;
  }
  uint64_t soft = atomic_load(&soft_limit);
  if (atomic_load(&limit) == 0) {
    update_peak(atomic_fetch_add(&held, bytes) + bytes);
    return 0;
  }
  /* Compare-and-swap so that two receivers cannot both pass the limit with one slot left. */
  uint64_t cur = atomic_load(&held);
  do {
    if (cur + bytes > soft) {
      atomic_fetch_add(&refused, 1);
      return OTC_ERR_REFUSED;
    }
  } while (!atomic_compare_exchange_weak(&held, &cur, cur + bytes));
  update_peak(cur + bytes);
  return 0;
}

void otc_mem_charge(size_t bytes) { update_peak(atomic_fetch_add(&held, bytes) + bytes); }
void otc_mem_release(size_t bytes) { atomic_fetch_sub(&held, bytes); }
uint64_t otc_mem_held(void) { return atomic_load(&held); }
uint64_t otc_mem_peak(void) { return atomic_load(&peak); }
void otc_mem_set_rss_refusing(bool r) { atomic_store(&rss_refusing, r); }
bool otc_mem_rss_refusing(void) { return atomic_load(&rss_refusing); }
uint64_t otc_mem_refused_count(void) { return atomic_load(&refused); }

uint64_t otc_process_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  if (n != 2)
    return 0;
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Reads one unsigned number from a file; 0 when absent or "max". */
static uint64_t read_u64_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  unsigned long long v = 0;
  if (fscanf(f, "%llu", &v) != 1)
    v = 0;
  fclose(f);
  return v;
}

uint64_t otc_total_memory(void) {
  uint64_t total = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
  /* In a container the cgroup's limit is what the kernel enforces, as otelcol's memory_limiter
   * takes it too. */
  uint64_t cg = read_u64_file("/sys/fs/cgroup/memory.max");
  if (cg == 0)
    cg = read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (cg > 0 && cg < total)
    total = cg;
  return total;
}
