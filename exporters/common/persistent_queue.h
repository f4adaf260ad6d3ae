/* A persistent sending queue: one crash-safe, append-only segment log in a directory of its own.
 * The exporter helper uses it when `sending_queue.storage` names a file_storage extension: every
 * batch an exporter accepts is appended here (and, with fsync, on stable storage) before the
 * exporter answers success, consumers read records back, and a record is acknowledged once it was
 * delivered or given up on for good. What was not acknowledged when the process stopped (killed or
 * shut down) is read again at the next open: duplicates are possible, losses are not.
 *
 * Layout of the directory:
 *   <first seq, 20 digits>.seg  segments, in order; a segment is named by the sequence number of
 *                               its first record, and holds consecutive records
 *   head                        the checkpoint: the sequence number of the oldest record not
 *                               acknowledged yet (16 bytes: seq, CRC32, magic), rewritten in place
 *                               and never synced: a stale or damaged one only means that records
 *                               already delivered are sent again
 *   lock                        flock()ed while open, so that two processes never share a queue
 *
 * A record is a 32-byte header then the payload (an Export*ServiceRequest's wire bytes), all
 * integers little-endian: magic "OTQ1", payload length (u32), CRC32 (zlib) over header bytes 12..31
 * and the payload, signal (u8) and 3 zero bytes, sequence number (u64), item count (u32), 4 zero
 * bytes. Opening validates every record: the first bad one (short, wrong magic, length over the
 * bound, CRC mismatch, sequence out of order) ends its segment, which is truncated there and the
 * cut logged, so a torn tail after a crash is never replayed as data.
 *
 * Bounds: the bytes (headers included) and the number of records not yet acknowledged; an append
 * past either is refused with OTC_ERR_REFUSED (retryable), as a full in-memory queue is.
 *
 * Thread safe: one mutex guards the queue; appends and reads do their I/O under it. */
#ifndef OTC_PERSISTENT_QUEUE_H
#define OTC_PERSISTENT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/signal.h"

#define OTC_PQ_HEADER_SIZE 32

struct otc_pqueue_options {
  const char *dir;         /* the queue's own directory, created (one level) if missing */
  bool fsync;              /* fdatasync every append and checkpoint (fsync the directory too) */
  uint64_t max_bytes;      /* bound on unacknowledged bytes, headers included; 0: 1 GiB */
  uint64_t max_records;    /* bound on unacknowledged records; 0: no bound */
  uint64_t segment_bytes;  /* a new segment starts when a record would pass this; 0: 8 MiB */
  int64_t lock_timeout_ns; /* how long to wait for another process's lock */
  const char *log_id;      /* component id for log lines (copied) */
};

struct otc_pqueue;

/* Opens (or creates) the queue in o->dir: takes the lock, validates every segment (cutting a torn
 * tail), reads the checkpoint and positions the reader at the oldest unacknowledged record, so
 * that everything pending is read again. Returns 0 with *out set (close with otc_pqueue_close), or
 * OTC_ERR_IO (logged; e.g. the directory is locked by another process) or OTC_ERR_NOMEM. */
int otc_pqueue_open(const struct otc_pqueue_options *o, struct otc_pqueue **out);
/* Closes the files and frees q; records not acknowledged stay on disk. NULL is a no-op. */
void otc_pqueue_close(struct otc_pqueue *q);

/* Appends one record (data is borrowed). Returns 0 once it is written (and synced with fsync),
 * OTC_ERR_REFUSED when a bound would be passed, OTC_ERR_TOO_LARGE when the record alone is over
 * the byte bound, OTC_ERR_IO when the write failed (nothing of it is kept). */
int otc_pqueue_append(struct otc_pqueue *q, enum otc_signal s, size_t items, const uint8_t *data,
                      size_t len);

/* Takes the oldest record not read yet: returns 0 with *b (a new batch holding one reference, its
 * bytes charged to the memory accounting; the caller unrefs it) and *seq (the ticket for
 * otc_pqueue_ack), or 0 with *b NULL when there is nothing to read. OTC_ERR_NOMEM or OTC_ERR_IO
 * on failure (a record that fails its CRC on the way back is skipped with the rest of its segment
 * and logged). */
int otc_pqueue_next(struct otc_pqueue *q, struct otc_batch **b, uint64_t *seq);
/* Marks a record read by otc_pqueue_next as done (delivered or given up on for good). The
 * checkpoint advances over every leading done record and fully passed segments are deleted.
 * Returns 0 or OTC_ERR_IO (the checkpoint could not be written; the records will be read again
 * after a restart). A record read but never acknowledged is read again only after a reopen. */
int otc_pqueue_ack(struct otc_pqueue *q, uint64_t seq);

/* Records appended and not read yet, in total and of one signal. */
size_t otc_pqueue_unread(struct otc_pqueue *q);
size_t otc_pqueue_unread_signal(struct otc_pqueue *q, enum otc_signal s);
/* Unacknowledged bytes (headers included) and records: what the bounds compare. */
uint64_t otc_pqueue_bytes(struct otc_pqueue *q);
uint64_t otc_pqueue_records(struct otc_pqueue *q);
/* Segment files currently on disk (for tests). */
size_t otc_pqueue_segments(struct otc_pqueue *q);

/* The directory name of an exporter's queue: "exporter_" then the id with every byte outside
 * [A-Za-z0-9_-] written %XX (so "otlp_http/tempo" → "exporter_otlp_http%2Ftempo" and distinct ids
 * never share a directory); an id whose name would pass 200 bytes is cut and suffixed with the
 * CRC32 of the whole id. Writes a NUL-terminated name into out (cap >= 256). */
void otc_pqueue_dir_name(const char *exporter_id, char *out, size_t cap);

#endif
