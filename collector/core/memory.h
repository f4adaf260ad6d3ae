/* Process-wide accounting of the bytes that telemetry data holds (batches, queues), the ground
 * truth of the memory_limiter. Every byte a batch holds is charged before it is allocated and
 * released when the batch is freed. Admission (otc_mem_reserve) refuses new data above the soft
 * limit (limit - spike); internal work that replaces data already held (a merge, a split) charges
 * unconditionally, the spike margin being its headroom. With no memory_limiter configured the limit
 * is unlimited. All functions are thread safe (atomics). */
#ifndef OTC_MEMORY_H
#define OTC_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sets the hard limit and spike margin in bytes; limit 0 means unlimited. When several
 * memory_limiter processors are configured the smallest limit wins. */
void otc_mem_set_limits(uint64_t limit_bytes, uint64_t spike_bytes);
uint64_t otc_mem_limit(void);
uint64_t otc_mem_soft_limit(void);

/* Admission: charges bytes and returns 0, or returns OTC_ERR_REFUSED (nothing charged) when the
 * charge would pass the soft limit or the RSS guard is refusing. */
int otc_mem_reserve(size_t bytes);
/* Charges bytes unconditionally. */
void otc_mem_charge(size_t bytes);
void otc_mem_release(size_t bytes);
uint64_t otc_mem_held(void);
/* Peak of otc_mem_held() since start. */
uint64_t otc_mem_peak(void);

/* The second guard, set by the memory_limiter's periodic RSS check: while true, every
 * otc_mem_reserve() refuses. */
void otc_mem_set_rss_refusing(bool refusing);
bool otc_mem_rss_refusing(void);
/* Counts of admissions refused since start (for self-metrics). */
uint64_t otc_mem_refused_count(void);

/* Resident set size of this process in bytes, read from /proc/self/statm; 0 if unknown. */
uint64_t otc_process_rss(void);
/* Total memory of the machine (or the cgroup limit if smaller), for limit_percentage. */
uint64_t otc_total_memory(void);

#endif
