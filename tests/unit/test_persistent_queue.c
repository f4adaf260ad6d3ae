/* The persistent queue: append, read back and acknowledge; a reopen replays exactly what was not
 * acknowledged (out-of-order acknowledgements included); a torn tail (a record cut short) and a
 * corrupted byte are cut at open, never replayed; the record and byte bounds refuse; delivered
 * segments are deleted; a second opener is locked out; the directory names of exporter ids. Then
 * the exporter helper over a file_storage extension: batches accepted while the destination is
 * down survive the helper's shutdown and are delivered, exactly, by the next one. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/exporter_helper.h"
#include "common/persistent_queue.h"
#include "core/component.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/memory.h"
#include "extensions/file_storage/file_storage.h"
#include "test.h"

/* --- temporary directories --- */

static char *make_tmpdir(void) {
  char tmpl[] = "/tmp/otc-pq-XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

/* Removes dir and everything under it (two levels are all the tests create). */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char p[1024];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
        remove_tree(p);
      else
        unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static size_t count_segment_files(const char *dir) {
  size_t n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strstr(e->d_name, ".seg") != NULL;
  closedir(d);
  return n;
}

/* The path of the only (or first, by name) segment file of dir. */
static void first_segment(const char *dir, char *out, size_t cap) {
  out[0] = '\0';
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char best[256] = "";
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".seg") && (!best[0] || strcmp(e->d_name, best) < 0))
      snprintf(best, sizeof best, "%.200s", e->d_name);
  closedir(d);
  if (best[0])
    snprintf(out, cap, "%.700s/%.200s", dir, best);
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* --- helpers over the queue --- */

static struct otc_pqueue_options opts(const char *dir) {
  struct otc_pqueue_options o = {
      .dir = dir, .fsync = false, .lock_timeout_ns = 50000000, .log_id = "test"};
  return o;
}

static struct otc_pqueue *open_q(const struct otc_pqueue_options *o) {
  struct otc_pqueue *q = NULL;
  int rc = otc_pqueue_open(o, &q);
  CHECK_EQ_INT(rc, 0);
  return q;
}

/* A payload whose bytes say which record it is: "rec-<n>" padded with n's low byte to len. */
static void payload(int n, uint8_t *buf, size_t len) {
  memset(buf, n & 0xff, len);
  char tag[16];
  int t = snprintf(tag, sizeof tag, "rec-%d", n);
  memcpy(buf, tag, (size_t)t < len ? (size_t)t : len);
}

static int append_n(struct otc_pqueue *q, int n, size_t len) {
  uint8_t buf[4096];
  payload(n, buf, len);
  return otc_pqueue_append(q, (enum otc_signal)(n % OTC_SIGNAL_COUNT), (size_t)n + 1, buf, len);
}

/* Reads the next record and checks it is record n of length len; returns its ticket. */
static uint64_t expect_next(struct otc_pqueue *q, int n, size_t len) {
  struct otc_batch *b = NULL;
  uint64_t seq = UINT64_MAX;
  CHECK_EQ_INT(otc_pqueue_next(q, &b, &seq), 0);
  CHECK(b != NULL);
  if (!b)
    return seq;
  uint8_t want[4096];
  payload(n, want, len);
  CHECK_EQ_INT(b->len, len);
  CHECK(b->len == len && memcmp(b->data, want, len) == 0);
  CHECK_EQ_INT(b->items, n + 1);
  CHECK_EQ_INT(b->signal, n % OTC_SIGNAL_COUNT);
  otc_batch_unref(b);
  return seq;
}

static void expect_empty(struct otc_pqueue *q) {
  struct otc_batch *b = NULL;
  uint64_t seq;
  CHECK_EQ_INT(otc_pqueue_next(q, &b, &seq), 0);
  CHECK(b == NULL);
  otc_batch_unref(b);
}

/* --- the queue --- */

TEST(append_read_ack) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(append_n(q, i, 100 + (size_t)i), 0);
  CHECK_EQ_INT(otc_pqueue_unread(q), 3);
  CHECK_EQ_INT(otc_pqueue_unread_signal(q, OTC_SIGNAL_METRICS), 1);
  CHECK_EQ_INT(otc_pqueue_records(q), 3);
  CHECK_EQ_INT(otc_pqueue_bytes(q), 3 * OTC_PQ_HEADER_SIZE + 100 + 101 + 102);
  uint64_t s0 = expect_next(q, 0, 100);
  uint64_t s1 = expect_next(q, 1, 101);
  CHECK_EQ_INT(otc_pqueue_unread(q), 1);
  /* Read but not acknowledged: still counted against the bounds. */
  CHECK_EQ_INT(otc_pqueue_records(q), 3);
  CHECK_EQ_INT(otc_pqueue_ack(q, s1), 0);
  CHECK_EQ_INT(otc_pqueue_records(q), 3); /* s0 is still out: the checkpoint cannot pass it */
  CHECK_EQ_INT(otc_pqueue_ack(q, s0), 0);
  CHECK_EQ_INT(otc_pqueue_records(q), 1);
  uint64_t s2 = expect_next(q, 2, 102);
  expect_empty(q);
  CHECK_EQ_INT(otc_pqueue_ack(q, s2), 0);
  CHECK_EQ_INT(otc_pqueue_records(q), 0);
  CHECK_EQ_INT(otc_pqueue_bytes(q), 0);
  CHECK_EQ_INT(otc_pqueue_ack(q, s2), 0); /* twice: harmless */
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(reopen_replays_unacknowledged) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 6; i++)
    CHECK_EQ_INT(append_n(q, i, 64), 0);
  uint64_t s0 = expect_next(q, 0, 64);
  uint64_t s1 = expect_next(q, 1, 64);
  uint64_t s2 = expect_next(q, 2, 64);
  (void)s1;
  /* 0 and 2 delivered, 1 still out when the process stops: 1 and 2 come back (2 is a duplicate),
   * 0 does not. */
  CHECK_EQ_INT(otc_pqueue_ack(q, s0), 0);
  CHECK_EQ_INT(otc_pqueue_ack(q, s2), 0);
  otc_pqueue_close(q);

  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 5);
  CHECK_EQ_INT(otc_pqueue_records(q), 5);
  uint64_t t[5];
  for (int i = 1; i < 6; i++)
    t[i - 1] = expect_next(q, i, 64);
  expect_empty(q);
  for (int i = 0; i < 5; i++)
    CHECK_EQ_INT(otc_pqueue_ack(q, t[i]), 0);
  /* Appends continue the numbering after a reopen. */
  CHECK_EQ_INT(append_n(q, 6, 64), 0);
  otc_pqueue_close(q);

  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 1);
  expect_next(q, 6, 64);
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(torn_tail_is_cut) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(append_n(q, i, 200), 0);
  otc_pqueue_close(q);
  char seg[1024];
  first_segment(dir, seg, sizeof seg);
  const off_t rec = OTC_PQ_HEADER_SIZE + 200;
  CHECK_EQ_INT(file_size(seg), 3 * rec);
  /* A crash in the middle of the third record's write: half of it reached the file. */
  CHECK_EQ_INT(truncate(seg, 2 * rec + rec / 2), 0);

  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(file_size(seg), 2 * rec); /* cut back to the last whole record */
  CHECK_EQ_INT(otc_pqueue_unread(q), 2);
  /* Appending goes on where the valid data ends. */
  CHECK_EQ_INT(append_n(q, 7, 200), 0);
  otc_pqueue_close(q);

  /* A tail shorter than a header is cut too. */
  int fd = open(seg, O_WRONLY | O_APPEND);
  CHECK(fd >= 0);
  CHECK_EQ_INT(write(fd, "OTQ", 3), 3);
  close(fd);
  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(file_size(seg), 3 * rec);
  expect_next(q, 0, 200);
  expect_next(q, 1, 200);
  expect_next(q, 7, 200);
  expect_empty(q);
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(corrupt_byte_is_cut) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(append_n(q, i, 100), 0);
  otc_pqueue_close(q);
  char seg[1024];
  first_segment(dir, seg, sizeof seg);
  const off_t rec = OTC_PQ_HEADER_SIZE + 100;
  /* One flipped payload byte in the third record: its CRC fails, it and what follows are cut. */
  int fd = open(seg, O_RDWR);
  CHECK(fd >= 0);
  uint8_t byte;
  CHECK_EQ_INT(pread(fd, &byte, 1, 2 * rec + OTC_PQ_HEADER_SIZE + 50), 1);
  byte ^= 0x40;
  CHECK_EQ_INT(pwrite(fd, &byte, 1, 2 * rec + OTC_PQ_HEADER_SIZE + 50), 1);
  close(fd);

  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 2);
  CHECK_EQ_INT(file_size(seg), 2 * rec);
  expect_next(q, 0, 100);
  expect_next(q, 1, 100);
  expect_empty(q);
  otc_pqueue_close(q);

  /* A damaged length field (a huge value) is refused, not allocated. */
  fd = open(seg, O_RDWR);
  CHECK(fd >= 0);
  uint8_t big[4] = {0xff, 0xff, 0xff, 0x7f};
  CHECK_EQ_INT(pwrite(fd, big, 4, rec + 4), 4);
  close(fd);
  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 1);
  CHECK_EQ_INT(file_size(seg), rec);
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(damaged_checkpoint_replays_everything) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(append_n(q, i, 50), 0);
  CHECK_EQ_INT(otc_pqueue_ack(q, expect_next(q, 0, 50)), 0);
  CHECK_EQ_INT(otc_pqueue_ack(q, expect_next(q, 1, 50)), 0);
  otc_pqueue_close(q);
  /* A checkpoint that fails its CRC cannot be trusted: every record still on disk is sent again
   * (duplicates), none is skipped (a loss). */
  char p[1024];
  snprintf(p, sizeof p, "%s/head", dir);
  int fd = open(p, O_RDWR);
  CHECK(fd >= 0);
  CHECK_EQ_INT(pwrite(fd, "\x07", 1, 0), 1);
  close(fd);
  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 3);
  expect_next(q, 0, 50);
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(bounds_refuse) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  o.max_records = 3;
  o.max_bytes = 10 * (OTC_PQ_HEADER_SIZE + 100);
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(append_n(q, i, 100), 0);
  CHECK_EQ_INT(append_n(q, 3, 100), OTC_ERR_REFUSED);
  uint64_t s = expect_next(q, 0, 100);
  CHECK_EQ_INT(append_n(q, 3, 100), OTC_ERR_REFUSED); /* read, not acknowledged: still held */
  CHECK_EQ_INT(otc_pqueue_ack(q, s), 0);
  CHECK_EQ_INT(append_n(q, 3, 100), 0);
  CHECK_EQ_INT(otc_pqueue_records(q), 3);
  otc_pqueue_close(q);
  /* The refused record left nothing behind: a reopen finds exactly 1, 2, 3. */
  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 3);
  otc_pqueue_close(q);
  remove_tree(dir);
  free(dir);

  /* The byte bound. */
  dir = make_tmpdir();
  o = opts(dir);
  o.max_bytes = 3 * (OTC_PQ_HEADER_SIZE + 1000) + 40;
  q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(append_n(q, i, 1000), 0);
  CHECK_EQ_INT(append_n(q, 3, 1000), OTC_ERR_REFUSED);
  CHECK_EQ_INT(append_n(q, 3, 5), 0);                    /* a small one still fits */
  CHECK_EQ_INT(append_n(q, 4, 4000), OTC_ERR_TOO_LARGE); /* never fits */
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(delivered_segments_are_deleted) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  o.segment_bytes = 300; /* two 100-byte records per segment */
  struct otc_pqueue *q = open_q(&o);
  if (!q)
    goto out;
  for (int i = 0; i < 7; i++)
    CHECK_EQ_INT(append_n(q, i, 100), 0);
  CHECK_EQ_INT(otc_pqueue_segments(q), 4);
  CHECK_EQ_INT(count_segment_files(dir), 4);
  uint64_t t[7];
  for (int i = 0; i < 3; i++)
    t[i] = expect_next(q, i, 100);
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(otc_pqueue_ack(q, t[i]), 0);
  /* The first segment (records 0, 1) is done; the second still holds record 3. */
  CHECK_EQ_INT(count_segment_files(dir), 3);
  otc_pqueue_close(q);

  /* A reopen reads across the remaining segments in order. */
  q = open_q(&o);
  if (!q)
    goto out;
  CHECK_EQ_INT(otc_pqueue_unread(q), 4);
  for (int i = 3; i < 7; i++)
    t[i] = expect_next(q, i, 100);
  expect_empty(q);
  for (int i = 3; i < 7; i++)
    CHECK_EQ_INT(otc_pqueue_ack(q, t[i]), 0);
  /* Only the write segment is left. */
  CHECK_EQ_INT(count_segment_files(dir), 1);
  CHECK_EQ_INT(otc_pqueue_segments(q), 1);
  otc_pqueue_close(q);
out:
  remove_tree(dir);
  free(dir);
}

TEST(second_opener_is_locked_out) {
  char *dir = make_tmpdir();
  struct otc_pqueue_options o = opts(dir);
  struct otc_pqueue *q = open_q(&o), *q2 = NULL;
  CHECK_EQ_INT(otc_pqueue_open(&o, &q2), OTC_ERR_IO);
  CHECK(q2 == NULL);
  otc_pqueue_close(q);
  CHECK_EQ_INT(otc_pqueue_open(&o, &q2), 0);
  otc_pqueue_close(q2);
  remove_tree(dir);
  free(dir);
}

TEST(dir_names) {
  char a[256], b[256];
  otc_pqueue_dir_name("otlp_http/tempo", a, sizeof a);
  CHECK_EQ_STR(a, "exporter_otlp_http%2Ftempo");
  otc_pqueue_dir_name("a/b_c", a, sizeof a);
  otc_pqueue_dir_name("a_b/c", b, sizeof b);
  CHECK(strcmp(a, b) != 0);
  otc_pqueue_dir_name("../../etc", a, sizeof a);
  CHECK(strchr(a, '/') == NULL);
  CHECK_EQ_STR(a, "exporter_%2E%2E%2F%2E%2E%2Fetc");
  char longid[400];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = '\0';
  otc_pqueue_dir_name(longid, a, sizeof a);
  longid[300] = 'y';
  otc_pqueue_dir_name(longid, b, sizeof b);
  CHECK(strlen(a) <= 210);
  CHECK(strchr(a, '~') != NULL);
  CHECK(strcmp(a, b) != 0); /* the CRC of the whole id tells them apart */
}

/* --- the exporter helper over a file_storage extension --- */

extern const struct otc_component_ops otc_extension_file_storage;

struct dest {
  atomic_bool up;
  atomic_int delivered;
  pthread_mutex_t mu;
  int seen[64]; /* deliveries per batch index (the first payload byte) */
};

static void dest_send(void *exporter, unsigned worker, struct otc_batch *b,
                      struct otc_send_result *res) {
  (void)worker;
  struct dest *d = exporter;
  if (!atomic_load(&d->up)) {
    res->err = OTC_ERR_IO;
    otc_send_result_reasonf(res, "connection refused");
    return;
  }
  pthread_mutex_lock(&d->mu);
  if (b->len > 0 && b->data[0] < 64)
    d->seen[b->data[0]]++;
  pthread_mutex_unlock(&d->mu);
  atomic_fetch_add(&d->delivered, 1);
  res->err = 0;
}

static struct otc_batch *numbered_batch(int i) {
  uint8_t data[300];
  memset(data, 0xab, sizeof data);
  data[0] = (uint8_t)i;
  return otc_batch_copy(OTC_SIGNAL_TRACES, data, sizeof data, 5, false, NULL);
}

TEST(helper_persists_across_restart) {
  char *dir = make_tmpdir();
  char yaml[512];
  snprintf(yaml, sizeof yaml, "directory: %s\n", dir);
  struct otc_cfg_err err = {{0}};
  struct otc_cfg_node *cfg = otc_cfg_load_string(yaml, strlen(yaml), "fs.yaml", &err);
  CHECK(cfg != NULL);
  struct otc_create_args args = {.id = "file_storage/q"};
  void *fs = cfg ? otc_extension_file_storage.create(&args, cfg, &err) : NULL;
  CHECK(fs != NULL);
  if (!fs)
    goto out;
  CHECK_EQ_INT(otc_extension_file_storage.start(fs), 0);

  struct otc_queue_config q = {.enabled = true,
                               .num_consumers = 2,
                               .queue_size = 10,
                               .storage = "file_storage/q",
                               .storage_ext = fs};
  struct otc_retry_config r = {.enabled = true,
                               .initial_interval_ns = 5000000,
                               .max_interval_ns = 20000000,
                               .max_elapsed_time_ns = 0,
                               .multiplier = 1.5,
                               .randomization_factor = 0};
  struct dest d = {0};
  pthread_mutex_init(&d.mu, NULL);

  /* Run 1: the destination is down. Every accepted batch is on disk when consume returns; the
   * queue's bound (10 batches) refuses the rest with a retryable error. */
  struct otc_exporter_helper *h = otc_exporter_helper_create("otlp/pq", &q, &r, dest_send, &d);
  CHECK(h != NULL);
  if (!h)
    goto out;
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 12; i++) {
    int rc = otc_exporter_helper_consume(h, numbered_batch(i));
    if (rc == 0)
      accepted++;
    else if (rc == OTC_ERR_REFUSED)
      refused++;
  }
  CHECK_EQ_INT(accepted, 10);
  CHECK_EQ_INT(refused, 2);
  otc_exporter_helper_shutdown(h, 1000000000LL);
  otc_exporter_helper_destroy(h);
  CHECK_EQ_INT(atomic_load(&d.delivered), 0);

  /* Run 2: the destination is back; the new helper replays all ten, each exactly once. */
  atomic_store(&d.up, true);
  h = otc_exporter_helper_create("otlp/pq", &q, &r, dest_send, &d);
  CHECK(h != NULL);
  if (!h)
    goto out;
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  for (int i = 0; i < 400 && atomic_load(&d.delivered) < 10; i++)
    usleep(5000);
  usleep(20000);
  CHECK_EQ_INT(atomic_load(&d.delivered), 10);
  for (int i = 0; i < 10; i++)
    CHECK_EQ_INT(d.seen[i], 1);
  CHECK_EQ_INT(d.seen[10] + d.seen[11], 0);
  CHECK_EQ_INT(otc_exporter_helper_queue_len(h), 0);
  otc_exporter_helper_shutdown(h, 1000000000LL);
  otc_exporter_helper_destroy(h);

  /* Run 3: nothing is left to replay. */
  h = otc_exporter_helper_create("otlp/pq", &q, &r, dest_send, &d);
  CHECK_EQ_INT(otc_exporter_helper_start(h), 0);
  usleep(20000);
  CHECK_EQ_INT(atomic_load(&d.delivered), 10);
  otc_exporter_helper_shutdown(h, 1000000000LL);
  otc_exporter_helper_destroy(h);

  /* A helper whose storage was never bound (storage_ext NULL) is not created. */
  q.storage_ext = NULL;
  CHECK(otc_exporter_helper_create("otlp/pq", &q, &r, dest_send, &d) == NULL);
out:
  pthread_mutex_destroy(&d.mu);
  otc_extension_file_storage.destroy(fs);
  otc_cfg_free(cfg);
  remove_tree(dir);
  free(dir);
}

TEST(file_storage_config) {
  struct otc_cfg_err err = {{0}};
  struct otc_create_args args = {.id = "file_storage"};
  const char *bad[] = {
      "fsync: true\n",                         /* no directory */
      "directory: /nonexistent/otc-pq-test\n", /* missing */
      "directory: /etc/passwd\n",              /* not a directory */
      "directory: /tmp\nqueue_max_bytes: 10\n",
  };
  const char *want[] = {"directory is required", "No such file or directory", "Not a directory",
                        "at least 4KiB"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct otc_cfg_node *cfg = otc_cfg_load_string(bad[i], strlen(bad[i]), "fs.yaml", &err);
    CHECK(cfg != NULL);
    memset(&err, 0, sizeof err);
    void *fs = otc_extension_file_storage.create(&args, cfg, &err);
    CHECK(fs == NULL);
    CHECK_CONTAINS(err.msg, want[i]);
    otc_extension_file_storage.destroy(fs);
    otc_cfg_free(cfg);
  }
  /* create_directory makes it at start; compaction is accepted with a warning. */
  char *dir = make_tmpdir();
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "directory: %s/a/b\ncreate_directory: true\nfsync: true\ntimeout: 2s\n"
           "compaction:\n  on_start: true\n",
           dir);
  struct otc_cfg_node *cfg = otc_cfg_load_string(yaml, strlen(yaml), "fs.yaml", &err);
  struct otc_file_storage *fs = otc_extension_file_storage.create(&args, cfg, &err);
  CHECK(fs != NULL);
  if (fs) {
    CHECK_EQ_INT(otc_extension_file_storage.start(fs), 0);
    CHECK(otc_file_storage_fsync(fs));
    CHECK_EQ_INT(otc_file_storage_timeout_ns(fs), 2000000000LL);
    CHECK_EQ_INT(otc_file_storage_queue_max_bytes(fs), 1LL << 30);
    char p[600];
    snprintf(p, sizeof p, "%s/a/b", dir);
    struct stat st;
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
  }
  otc_extension_file_storage.destroy(fs);
  otc_cfg_free(cfg);
  remove_tree(dir);
  free(dir);
}

int main(void) {
  otc_log_set_level(OTC_LOG_ERROR);
  RUN(append_read_ack);
  RUN(reopen_replays_unacknowledged);
  RUN(torn_tail_is_cut);
  RUN(corrupt_byte_is_cut);
  RUN(damaged_checkpoint_replays_everything);
  RUN(bounds_refuse);
  RUN(delivered_segments_are_deleted);
  RUN(second_opener_is_locked_out);
  RUN(dir_names);
  RUN(helper_persists_across_restart);
  RUN(file_storage_config);
  return TEST_REPORT();
}
