/* The persistent sending queue (see persistent_queue.h).
 *
 * In memory the queue keeps only positions, never payloads: the list of segments (first sequence
 * number and end offset of each), the write position (the last segment), the read cursor, and the
 * records handed to consumers and not acknowledged yet (at most one per consumer), in sequence
 * order. The checkpoint is the sequence number of the first of those, or the read cursor's when
 * none is out. Records a consumer acknowledges out of order stay in the list until every record
 * before them is done, so a crash replays them too (a duplicate, never a loss). */
#include "common/persistent_queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"

#define REC_MAGIC 0x3151544fu  /* "OTQ1" read as a little-endian u32 */
#define HEAD_MAGIC 0x4851544fu /* "OTQH" */
#define HEAD_SIZE 16
#define DEFAULT_MAX_BYTES (1ULL << 30)
#define DEFAULT_SEGMENT_BYTES (8ULL << 20)
/* The largest payload a record may declare: bounds the allocation a corrupt length could ask for.
 */
#define MAX_PAYLOAD (1ULL << 30)
#define SEG_NAME_LEN 24 /* 20 digits + ".seg" */

struct segment {
  uint64_t first_seq;
  uint64_t end; /* bytes of valid records in the file */
};

struct inflight {
  uint64_t seq;
  uint64_t bytes;
  bool done;
};

struct otc_pqueue {
  pthread_mutex_t mu;
  char *dir, *id;
  int dir_fd, lock_fd, head_fd;
  bool fsync;
  uint64_t max_bytes, max_records, segment_bytes;

  struct segment *segs;
  size_t n_segs, cap_segs;
  int write_fd; /* the last segment, open for writing at segs[n_segs-1].end */
  uint64_t next_seq;

  int read_fd; /* the segment the cursor is in (-1: none open) */
  size_t read_seg;
  uint64_t read_off, read_seq;

  struct inflight *out; /* handed out, not yet checkpointed, in sequence order */
  size_t n_out, cap_out;

  uint64_t head;         /* the checkpoint as last written */
  uint64_t unread_bytes; /* bytes from the read cursor to the write end */
  uint64_t out_bytes;    /* bytes of the records in out */
  size_t unread_by_signal[OTC_SIGNAL_COUNT];
  size_t unread;
  uint8_t *scratch; /* for validation at open */
  size_t scratch_cap;
};

/* --- small helpers --- */

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The record CRC: header bytes 12..31, then the payload. */
static uint32_t record_crc(const uint8_t *hdr, const uint8_t *payload, size_t len) {
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, hdr + 12, OTC_PQ_HEADER_SIZE - 12);
  /* zlib's length is a uInt: feed large payloads in pieces. */
  while (len > 0) {
    uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
    c = crc32(c, payload, n);
    payload += n;
    len -= n;
  }
  return (uint32_t)c;
}

static void seg_name(uint64_t first_seq, char *out, size_t cap) {
  snprintf(out, cap, "%020" PRIu64 ".seg", first_seq);
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = pread(fd, p, len, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void otc_pqueue_dir_name(const char *exporter_id, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = (size_t)snprintf(out, cap, "exporter_");
  const size_t limit = cap < 256 ? cap : 256;
  const size_t room = limit - 1 - 9; /* what a "~%08x" suffix needs */
  bool cut = false;
  for (const unsigned char *p = (const unsigned char *)exporter_id; *p; p++) {
    bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '_' || *p == '-';
    size_t need = plain ? 1 : 3;
    if (n + need > 200 || n + need > room) {
      cut = true;
      break;
    }
    if (plain) {
      out[n++] = (char)*p;
    } else {
      out[n++] = '%';
      out[n++] = hex[*p >> 4];
      out[n++] = hex[*p & 15];
    }
  }
  out[n] = '\0';
  if (cut) {
    uint32_t c = (uint32_t)crc32(0L, (const Bytef *)exporter_id, (uInt)strlen(exporter_id));
    snprintf(out + n, cap - n, "~%08x", c);
  }
}

/* --- segments and the checkpoint --- */

/* fsyncs the queue's directory (after a create, rename or unlink) when fsync is on. */
static void sync_dir(struct otc_pqueue *q) {
  if (q->fsync && fsync(q->dir_fd) != 0)
    otc_warn(q->id, "fsync of %s failed: %s", q->dir, strerror(errno));
}

/* Rewrites the checkpoint in place: one 16-byte pwrite at offset 0, which a crash of the process
 * cannot tear and which lies within one disk sector. It is never synced: a checkpoint lost with
 * the page cache is an older one, and an older checkpoint only sends delivered records again. */
static int write_head(struct otc_pqueue *q, uint64_t head) {
  uint8_t buf[HEAD_SIZE];
  put64(buf, head);
  put32(buf + 8, (uint32_t)crc32(0L, buf, 8));
  put32(buf + 12, HEAD_MAGIC);
  if (pwrite(q->head_fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
    otc_log(OTC_LOG_ERROR, q->id, "cannot write the queue checkpoint in %s: %s", q->dir,
            strerror(errno));
    return OTC_ERR_IO;
  }
  q->head = head;
  return 0;
}

/* Reads the checkpoint; a missing or empty one is 0 (nothing acknowledged), a damaged one is 0 too,
 * logged: everything on disk is then sent again, which duplicates rather than loses. */
static uint64_t read_head(struct otc_pqueue *q) {
  uint8_t buf[HEAD_SIZE];
  ssize_t n = pread(q->head_fd, buf, sizeof buf, 0);
  if (n == 0)
    return 0;
  if (n != (ssize_t)sizeof buf || get32(buf + 12) != HEAD_MAGIC ||
      get32(buf + 8) != (uint32_t)crc32(0L, buf, 8)) {
    otc_warn(q->id, "the queue checkpoint in %s is damaged: every record on disk is sent again",
             q->dir);
    return 0;
  }
  return get64(buf);
}

static int push_segment(struct otc_pqueue *q, uint64_t first_seq, uint64_t end) {
  if (q->n_segs == q->cap_segs) {
    size_t cap = q->cap_segs ? q->cap_segs * 2 : 16;
    struct segment *v = realloc(q->segs, cap * sizeof *v);
    if (!v)
      return OTC_ERR_NOMEM;
    q->segs = v;
    q->cap_segs = cap;
  }
  q->segs[q->n_segs].first_seq = first_seq;
  q->segs[q->n_segs].end = end;
  q->n_segs++;
  return 0;
}

static int open_segment(struct otc_pqueue *q, uint64_t first_seq, int flags) {
  char name[SEG_NAME_LEN + 8];
  seg_name(first_seq, name, sizeof name);
  return openat(q->dir_fd, name, flags | O_CLOEXEC, 0640);
}

/* Starts a new segment at next_seq and makes it the write segment. */
static int new_segment(struct otc_pqueue *q) {
  int fd = open_segment(q, q->next_seq, O_RDWR | O_CREAT | O_TRUNC);
  if (fd < 0) {
    otc_error(q->id, "cannot create a queue segment in %s: %s", q->dir, strerror(errno));
    return OTC_ERR_IO;
  }
  int rc = push_segment(q, q->next_seq, 0);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  sync_dir(q);
  if (q->write_fd >= 0)
    close(q->write_fd);
  q->write_fd = fd;
  return 0;
}

/* Deletes the leading segments whose records all come before the checkpoint. The write segment
 * and the reader's segment always stay. */
static void drop_passed_segments(struct otc_pqueue *q) {
  size_t k = 0;
  while (k + 1 < q->n_segs && q->segs[k + 1].first_seq <= q->head && k < q->read_seg) {
    char name[SEG_NAME_LEN + 8];
    seg_name(q->segs[k].first_seq, name, sizeof name);
    if (unlinkat(q->dir_fd, name, 0) != 0 && errno != ENOENT)
      otc_warn(q->id, "cannot delete delivered segment %s/%s: %s", q->dir, name, strerror(errno));
    k++;
  }
  if (k == 0)
    return;
  memmove(q->segs, q->segs + k, (q->n_segs - k) * sizeof *q->segs);
  q->n_segs -= k;
  q->read_seg -= k;
  sync_dir(q);
}

/* --- open: validation and replay --- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Lists the segment files' first sequence numbers, sorted. *out is malloc'd. */
static int list_segments(struct otc_pqueue *q, uint64_t **out, size_t *n_out) {
  int rc = 0;
  size_t n = 0, cap = 0;
  uint64_t *v = NULL;
  int fd = dup(q->dir_fd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close(fd);
    return OTC_ERR_IO;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *s = e->d_name;
    if (strlen(s) != SEG_NAME_LEN || strcmp(s + 20, ".seg") != 0 || strspn(s, "0123456789") != 20)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      uint64_t *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        rc = OTC_ERR_NOMEM;
        goto cleanup;
      }
      v = nv;
    }
    v[n++] = strtoull(s, NULL, 10);
  }
  if (n > 1)
    qsort(v, n, sizeof *v, cmp_u64);
cleanup:
  closedir(d);
  if (rc != 0) {
    free(v);
    return rc;
  }
  *out = v;
  *n_out = n;
  return 0;
}

static int grow_scratch(struct otc_pqueue *q, size_t len) {
  if (len <= q->scratch_cap)
    return 0;
  uint8_t *p = realloc(q->scratch, len);
  if (!p)
    return OTC_ERR_NOMEM;
  q->scratch = p;
  q->scratch_cap = len;
  return 0;
}

/* Validates one header read at off of a file of `size` bytes: returns the payload length, or -1
 * when the header cannot start a valid record there. */
static int64_t check_header(const uint8_t *h, uint64_t off, uint64_t size, uint64_t want_seq) {
  if (get32(h) != REC_MAGIC)
    return -1;
  uint64_t len = get32(h + 4);
  if (len > MAX_PAYLOAD || off + OTC_PQ_HEADER_SIZE + len > size)
    return -1;
  if (h[12] >= OTC_SIGNAL_COUNT || get64(h + 16) != want_seq)
    return -1;
  return (int64_t)len;
}

/* Scans one segment: validates its records in order, counts those at or after the checkpoint as
 * unread, notes where the reader starts, and cuts the file after the last valid record. Returns the
 * number of valid records in *count. */
static int scan_segment(struct otc_pqueue *q, uint64_t first_seq, bool last, uint64_t *count) {
  int rc = 0;
  int fd = open_segment(q, first_seq, O_RDWR);
  char name[SEG_NAME_LEN + 8];
  seg_name(first_seq, name, sizeof name);
  if (fd < 0) {
    otc_error(q->id, "cannot open queue segment %s/%s: %s", q->dir, name, strerror(errno));
    return OTC_ERR_IO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  uint64_t size = (uint64_t)st.st_size, off = 0, seq = first_seq;
  const char *why = NULL;
  while (off < size) {
    uint8_t h[OTC_PQ_HEADER_SIZE];
    if (size - off < OTC_PQ_HEADER_SIZE) {
      why = "a partial record header";
      break;
    }
    if (pread_full(fd, h, sizeof h, off) != 0) {
      rc = OTC_ERR_IO;
      goto cleanup;
    }
    int64_t len = check_header(h, off, size, seq);
    if (len < 0) {
      why = "a partial or invalid record";
      break;
    }
    if ((rc = grow_scratch(q, (size_t)len + 1)) != 0)
      goto cleanup;
    if (pread_full(fd, q->scratch, (size_t)len, off + OTC_PQ_HEADER_SIZE) != 0) {
      rc = OTC_ERR_IO;
      goto cleanup;
    }
    if (record_crc(h, q->scratch, (size_t)len) != get32(h + 8)) {
      why = "a record with a bad CRC";
      break;
    }
    uint64_t rec = OTC_PQ_HEADER_SIZE + (uint64_t)len;
    if (seq >= q->head) {
      if (q->read_fd == -1) {
        /* The first record not acknowledged: the reader starts here. */
        q->read_seg = q->n_segs;
        q->read_off = off;
        q->read_seq = seq;
        q->read_fd = -2; /* opened once the segment list is complete */
      }
      q->unread_bytes += rec;
      q->unread_by_signal[h[12]]++;
      q->unread++;
    }
    off += rec;
    seq++;
  }
  if (why) {
    /* A crash mid-append leaves a torn tail in the last segment; anything else is damage. Either
     * way the bytes from here on are not records we can trust, and are cut. */
    otc_log(last ? OTC_LOG_WARN : OTC_LOG_ERROR, q->id,
            "queue segment %s/%s: %s at offset %" PRIu64 "; cutting %" PRIu64 " bytes%s", q->dir,
            name, why, off, size - off,
            last ? " (a write interrupted by a crash)" : " (records in them are lost)");
    if (ftruncate(fd, (off_t)off) != 0 || (q->fsync && fdatasync(fd) != 0)) {
      otc_error(q->id, "cannot truncate %s/%s: %s", q->dir, name, strerror(errno));
      rc = OTC_ERR_IO;
      goto cleanup;
    }
  }
  if ((rc = push_segment(q, first_seq, off)) != 0)
    goto cleanup;
  *count = seq - first_seq;
  if (last) {
    q->write_fd = fd;
    fd = -1;
  }
cleanup:
  if (fd >= 0)
    close(fd);
  return rc;
}

static int take_lock(struct otc_pqueue *q, int64_t timeout_ns) {
  q->lock_fd = openat(q->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (q->lock_fd < 0)
    goto fail;
  int64_t until = mono_ns() + (timeout_ns > 0 ? timeout_ns : 0);
  for (;;) {
    if (flock(q->lock_fd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK || mono_ns() >= until)
      goto fail;
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
fail:
  otc_error(q->id, "cannot lock the queue in %s: %s", q->dir,
            errno == EWOULDBLOCK ? "another process uses it" : strerror(errno));
  return OTC_ERR_IO;
}

static int load(struct otc_pqueue *q) {
  uint64_t *firsts = NULL;
  size_t n = 0;
  int rc = list_segments(q, &firsts, &n);
  if (rc != 0)
    goto cleanup;
  q->head = read_head(q);
  for (size_t i = 0; i < n; i++) {
    uint64_t count = 0;
    bool last = i + 1 == n;
    if ((rc = scan_segment(q, firsts[i], last, &count)) != 0)
      goto cleanup;
    q->next_seq = firsts[i] + count;
  }
  if (n == 0) {
    /* A fresh queue (or every segment gone): numbering continues after the checkpoint. */
    q->next_seq = q->head;
    if ((rc = new_segment(q)) != 0)
      goto cleanup;
  }
  if (q->head > q->next_seq) {
    otc_warn(q->id, "the queue checkpoint in %s is past the last record; starting after it",
             q->dir);
    q->head = q->next_seq;
  }
  if (q->head < q->segs[0].first_seq)
    q->head = q->segs[0].first_seq;
  if (q->read_fd == -2) {
    q->read_fd = open_segment(q, q->segs[q->read_seg].first_seq, O_RDONLY);
    if (q->read_fd < 0) {
      rc = OTC_ERR_IO;
      goto cleanup;
    }
  } else {
    /* Nothing pending: the reader waits at the write end. */
    q->read_seg = q->n_segs - 1;
    q->read_off = q->segs[q->read_seg].end;
    q->read_seq = q->next_seq;
    q->read_fd = open_segment(q, q->segs[q->read_seg].first_seq, O_RDONLY);
    if (q->read_fd < 0) {
      rc = OTC_ERR_IO;
      goto cleanup;
    }
  }
  if ((rc = write_head(q, q->read_seq)) != 0)
    goto cleanup;
  drop_passed_segments(q);
  if (q->unread > 0)
    otc_info(q->id,
             "persistent queue %s: %zu batches (%" PRIu64 " bytes) from before the restart "
             "will be sent",
             q->dir, q->unread, q->unread_bytes);
cleanup:
  free(firsts);
  free(q->scratch);
  q->scratch = NULL;
  q->scratch_cap = 0;
  return rc;
}

int otc_pqueue_open(const struct otc_pqueue_options *o, struct otc_pqueue **out) {
  int rc = OTC_ERR_NOMEM;
  *out = NULL;
  struct otc_pqueue *q = calloc(1, sizeof *q);
  if (!q)
    return OTC_ERR_NOMEM;
  q->dir_fd = q->lock_fd = q->head_fd = q->write_fd = q->read_fd = -1;
  pthread_mutex_init(&q->mu, NULL);
  q->dir = strdup(o->dir);
  q->id = strdup(o->log_id ? o->log_id : "persistent_queue");
  if (!q->dir || !q->id)
    goto fail;
  q->fsync = o->fsync;
  q->max_bytes = o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
  q->max_records = o->max_records;
  q->segment_bytes = o->segment_bytes ? o->segment_bytes : DEFAULT_SEGMENT_BYTES;
  rc = OTC_ERR_IO;
  if (mkdir(q->dir, 0750) != 0 && errno != EEXIST) {
    otc_error(q->id, "cannot create the queue directory %s: %s", q->dir, strerror(errno));
    goto fail;
  }
  q->dir_fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (q->dir_fd < 0) {
    otc_error(q->id, "cannot open the queue directory %s: %s", q->dir, strerror(errno));
    goto fail;
  }
  if ((rc = take_lock(q, o->lock_timeout_ns)) != 0)
    goto fail;
  q->head_fd = openat(q->dir_fd, "head", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (q->head_fd < 0) {
    otc_error(q->id, "cannot open the queue checkpoint in %s: %s", q->dir, strerror(errno));
    rc = OTC_ERR_IO;
    goto fail;
  }
  if ((rc = load(q)) != 0)
    goto fail;
  *out = q;
  return 0;
fail:
  otc_pqueue_close(q);
  return rc;
}

void otc_pqueue_close(struct otc_pqueue *q) {
  if (!q)
    return;
  if (q->write_fd >= 0)
    close(q->write_fd);
  if (q->read_fd >= 0)
    close(q->read_fd);
  if (q->head_fd >= 0)
    close(q->head_fd);
  if (q->lock_fd >= 0)
    close(q->lock_fd); /* releases the flock */
  if (q->dir_fd >= 0)
    close(q->dir_fd);
  pthread_mutex_destroy(&q->mu);
  free(q->scratch);
  free(q->segs);
  free(q->out);
  free(q->dir);
  free(q->id);
  free(q);
}

/* --- append --- */

int otc_pqueue_append(struct otc_pqueue *q, enum otc_signal s, size_t items, const uint8_t *data,
                      size_t len) {
  int rc = 0;
  uint64_t rec = OTC_PQ_HEADER_SIZE + (uint64_t)len;
  if ((uint64_t)len > MAX_PAYLOAD || rec > q->max_bytes)
    return OTC_ERR_TOO_LARGE;
  pthread_mutex_lock(&q->mu);
  uint64_t used = q->unread_bytes + q->out_bytes;
  uint64_t records = q->next_seq - q->head;
  if (used + rec > q->max_bytes || (q->max_records && records + 1 > q->max_records)) {
    rc = OTC_ERR_REFUSED;
    goto cleanup;
  }
  struct segment *w = &q->segs[q->n_segs - 1];
  if (w->end > 0 && w->end + rec > q->segment_bytes) {
    if ((rc = new_segment(q)) != 0)
      goto cleanup;
    w = &q->segs[q->n_segs - 1];
  }
  uint8_t h[OTC_PQ_HEADER_SIZE] = {0};
  put32(h, REC_MAGIC);
  put32(h + 4, (uint32_t)len);
  h[12] = (uint8_t)s;
  put64(h + 16, q->next_seq);
  put32(h + 24, items > UINT32_MAX ? UINT32_MAX : (uint32_t)items);
  put32(h + 8, record_crc(h, data, len));
  struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
  uint64_t off = w->end, left = rec;
  int iovcnt = 2;
  struct iovec *v = iov;
  while (left > 0) {
    ssize_t n = pwritev(q->write_fd, v, iovcnt, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      otc_error(q->id, "cannot append to the persistent queue in %s: %s", q->dir, strerror(e));
      /* Nothing of a failed record may stay: the next append writes over it, and an open cuts it
       * as a torn tail even if this truncate fails. */
      if (ftruncate(q->write_fd, (off_t)w->end) != 0)
        otc_warn(q->id, "cannot cut the failed write: %s", strerror(errno));
      rc = OTC_ERR_IO;
      goto cleanup;
    }
    off += (uint64_t)n;
    left -= (uint64_t)n;
    while (n > 0 && iovcnt > 0) {
      if ((size_t)n >= v->iov_len) {
        n -= (ssize_t)v->iov_len;
        v++;
        iovcnt--;
      } else {
        v->iov_base = (uint8_t *)v->iov_base + n;
        v->iov_len -= (size_t)n;
        n = 0;
      }
    }
  }
  if (q->fsync && fdatasync(q->write_fd) != 0) {
    otc_error(q->id, "fdatasync of the persistent queue in %s failed: %s", q->dir, strerror(errno));
    if (ftruncate(q->write_fd, (off_t)w->end) != 0)
      otc_warn(q->id, "cannot cut the unsynced write: %s", strerror(errno));
    rc = OTC_ERR_IO;
    goto cleanup;
  }
  w->end += rec;
  q->next_seq++;
  q->unread_bytes += rec;
  q->unread_by_signal[s]++;
  q->unread++;
cleanup:
  pthread_mutex_unlock(&q->mu);
  return rc;
}

/* --- read and acknowledge --- */

/* Moves the reader to the start of the next segment. Called with the lock held. */
static int next_read_segment(struct otc_pqueue *q) {
  int fd = open_segment(q, q->segs[q->read_seg + 1].first_seq, O_RDONLY);
  if (fd < 0) {
    otc_error(q->id, "cannot open a queue segment in %s: %s", q->dir, strerror(errno));
    return OTC_ERR_IO;
  }
  close(q->read_fd);
  q->read_fd = fd;
  q->read_seg++;
  q->read_off = 0;
  q->read_seq = q->segs[q->read_seg].first_seq;
  return 0;
}

static void recount_unread(struct otc_pqueue *q);

/* Gives up on the rest of the reader's segment (its bytes failed their check on the way back) and
 * moves the reader to the next segment. When that was the write segment, writing continues in a
 * new one, so that no segment ever holds a gap in its sequence numbers (an open would cut at the
 * gap). Called with the lock held. */
static int skip_rest(struct otc_pqueue *q, const char *why) {
  struct segment *sg = &q->segs[q->read_seg];
  otc_error(q->id,
            "queue segment %020" PRIu64 ".seg in %s: %s at offset %" PRIu64
            "; skipping the rest of it",
            sg->first_seq, q->dir, why, q->read_off);
  q->unread_bytes -= sg->end - q->read_off;
  sg->end = q->read_off;
  int rc = 0;
  if (q->read_seg + 1 >= q->n_segs && (rc = new_segment(q)) != 0)
    return rc;
  rc = next_read_segment(q);
  recount_unread(q);
  return rc;
}

/* Recounts the unread records after a skip, when the skipped records' signals are unknown. */
static void recount_unread(struct otc_pqueue *q) {
  uint64_t n = q->next_seq > q->read_seq ? q->next_seq - q->read_seq : 0;
  q->unread = (size_t)n;
  /* The per-signal split of what was skipped is not known; clamp so that the gauges never show
   * more than there is. */
  size_t sum = 0;
  for (int s = 0; s < OTC_SIGNAL_COUNT; s++)
    sum += q->unread_by_signal[s];
  for (int s = 0; s < OTC_SIGNAL_COUNT && sum > q->unread; s++) {
    size_t d = sum - q->unread < q->unread_by_signal[s] ? sum - q->unread : q->unread_by_signal[s];
    q->unread_by_signal[s] -= d;
    sum -= d;
  }
}

int otc_pqueue_next(struct otc_pqueue *q, struct otc_batch **b, uint64_t *seq) {
  int rc = 0;
  uint8_t *data = NULL;
  size_t charge = 0;
  *b = NULL;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    if (q->read_seq >= q->next_seq)
      goto cleanup; /* nothing unread */
    if (q->read_off >= q->segs[q->read_seg].end) {
      if (q->read_seg + 1 >= q->n_segs)
        goto cleanup;
      if ((rc = next_read_segment(q)) != 0)
        goto cleanup;
      continue;
    }
    uint8_t h[OTC_PQ_HEADER_SIZE];
    const struct segment *sg = &q->segs[q->read_seg];
    int64_t len = -1;
    if (sg->end - q->read_off >= OTC_PQ_HEADER_SIZE &&
        pread_full(q->read_fd, h, sizeof h, q->read_off) == 0)
      len = check_header(h, q->read_off, sg->end, q->read_seq);
    if (len < 0) {
      if ((rc = skip_rest(q, "an unreadable record")) != 0)
        goto cleanup;
      continue;
    }
    charge = (size_t)len + sizeof(struct otc_batch);
    otc_mem_charge(charge);
    data = malloc(len ? (size_t)len : 1);
    if (!data) {
      otc_mem_release(charge);
      rc = OTC_ERR_NOMEM;
      goto cleanup;
    }
    if (pread_full(q->read_fd, data, (size_t)len, q->read_off + OTC_PQ_HEADER_SIZE) != 0 ||
        record_crc(h, data, (size_t)len) != get32(h + 8)) {
      free(data);
      data = NULL;
      otc_mem_release(charge);
      if ((rc = skip_rest(q, "a record with a bad CRC")) != 0)
        goto cleanup;
      continue;
    }
    if (q->n_out == q->cap_out) {
      size_t cap = q->cap_out ? q->cap_out * 2 : 16;
      struct inflight *v = realloc(q->out, cap * sizeof *v);
      if (!v) {
        free(data);
        otc_mem_release(charge);
        rc = OTC_ERR_NOMEM;
        goto cleanup;
      }
      q->out = v;
      q->cap_out = cap;
    }
    enum otc_signal s = (enum otc_signal)h[12];
    uint64_t rec = OTC_PQ_HEADER_SIZE + (uint64_t)len;
    /* otc_batch_wrap frees data and releases the charge when it fails. */
    struct otc_batch *nb = otc_batch_wrap(s, data, (size_t)len, get32(h + 24), charge);
    data = NULL;
    if (!nb) {
      rc = OTC_ERR_NOMEM;
      goto cleanup;
    }
    q->out[q->n_out++] = (struct inflight){.seq = q->read_seq, .bytes = rec, .done = false};
    q->out_bytes += rec;
    q->unread_bytes -= rec;
    if (q->unread_by_signal[s] > 0)
      q->unread_by_signal[s]--;
    if (q->unread > 0)
      q->unread--;
    *seq = q->read_seq;
    q->read_seq++;
    q->read_off += rec;
    *b = nb;
    goto cleanup;
  }
cleanup:
  pthread_mutex_unlock(&q->mu);
  return rc;
}

int otc_pqueue_ack(struct otc_pqueue *q, uint64_t seq) {
  int rc = 0;
  pthread_mutex_lock(&q->mu);
  size_t i = 0;
  while (i < q->n_out && q->out[i].seq != seq)
    i++;
  if (i == q->n_out)
    goto cleanup; /* not handed out (or acknowledged twice): nothing to do */
  q->out[i].done = true;
  size_t k = 0;
  while (k < q->n_out && q->out[k].done) {
    q->out_bytes -= q->out[k].bytes;
    k++;
  }
  if (k == 0)
    goto cleanup;
  memmove(q->out, q->out + k, (q->n_out - k) * sizeof *q->out);
  q->n_out -= k;
  uint64_t head = q->n_out ? q->out[0].seq : q->read_seq;
  if (head != q->head) {
    rc = write_head(q, head);
    if (rc == 0)
      drop_passed_segments(q);
  }
cleanup:
  pthread_mutex_unlock(&q->mu);
  return rc;
}

/* --- figures --- */

size_t otc_pqueue_unread(struct otc_pqueue *q) {
  pthread_mutex_lock(&q->mu);
  size_t n = q->unread;
  pthread_mutex_unlock(&q->mu);
  return n;
}

size_t otc_pqueue_unread_signal(struct otc_pqueue *q, enum otc_signal s) {
  pthread_mutex_lock(&q->mu);
  size_t n = q->unread_by_signal[s];
  pthread_mutex_unlock(&q->mu);
  return n;
}

uint64_t otc_pqueue_bytes(struct otc_pqueue *q) {
  pthread_mutex_lock(&q->mu);
  uint64_t n = q->unread_bytes + q->out_bytes;
  pthread_mutex_unlock(&q->mu);
  return n;
}

uint64_t otc_pqueue_records(struct otc_pqueue *q) {
  pthread_mutex_lock(&q->mu);
  uint64_t n = q->next_seq - q->head;
  pthread_mutex_unlock(&q->mu);
  return n;
}

size_t otc_pqueue_segments(struct otc_pqueue *q) {
  pthread_mutex_lock(&q->mu);
  size_t n = q->n_segs;
  pthread_mutex_unlock(&q->mu);
  return n;
}
