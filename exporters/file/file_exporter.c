/* The file exporter, otelcol's `file`: appends every batch to one file, as a line of OTLP JSON
 * (format: json, the default) or as its protobuf bytes behind a 4-byte big-endian length
 * (format: proto), the two framings otelcol's file exporter writes. Each batch is written whole
 * under a lock, so that a reader never sees two batches interleaved. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/component.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/otlp_json.h"

struct file_config {
  const char *path;
  const char *format;
  bool append;
};

static const struct otc_cfg_field file_fields[] = {
    {"path", OTC_CFGK_STRING, NULL, offsetof(struct file_config, path), 0, 0},
    {"format", OTC_CFGK_STRING, "json", offsetof(struct file_config, format), 0, 0},
    {"append", OTC_CFGK_BOOL, "false", offsetof(struct file_config, append), 0, 0},
    {"rotation", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"compression", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"flush_interval", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"group_by", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {"encoding", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct file_exporter {
  char *id;
  char *path;
  bool proto;
  bool append;
  struct otc_exporter_metrics metrics;
  pthread_mutex_t lock;
  int fd; /* -1 until started and after shutdown */
};

/* Writes every byte of the iovecs, resuming after short writes. Returns 0 or OTC_ERR_IO. */
static int writev_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return OTC_ERR_IO;
    size_t left = (size_t)w;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

static void *file_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                         struct otc_cfg_err *err) {
  struct file_exporter *f = NULL;
  struct file_config c = {0};
  if (otc_cfg_apply(file_fields, cfg, &c, args->id, err) != 0)
    goto fail;
  if (!c.path || !c.path[0]) {
    otc_cfg_error(err, cfg, "path must be non-empty");
    goto fail;
  }
  bool proto;
  if (strcmp(c.format, "json") == 0) {
    proto = false;
  } else if (strcmp(c.format, "proto") == 0) {
    proto = true;
  } else {
    otc_cfg_error(err, otc_cfg_get(cfg, "format"),
                  "format type is not supported: \"%s\" (json, proto)", c.format);
    goto fail;
  }
  f = calloc(1, sizeof *f);
  if (!f || !(f->id = strdup(args->id ? args->id : "file")) || !(f->path = strdup(c.path))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  f->proto = proto;
  f->append = c.append;
  f->fd = -1;
  pthread_mutex_init(&f->lock, NULL);
  otc_exporter_metrics_init(&f->metrics, f->id);
  return f;
fail:
  if (f) {
    free(f->id);
    free(f->path);
    free(f);
  }
  return NULL;
}

static int file_start(void *ctx) {
  struct file_exporter *f = ctx;
  /* As otelcol: the file is truncated unless `append: true`. */
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (f->append ? O_APPEND : O_TRUNC);
  int fd = open(f->path, flags, 0644);
  if (fd < 0) {
    otc_error(f->id, "cannot open %s: %s", f->path, strerror(errno));
    return OTC_ERR_IO;
  }
  pthread_mutex_lock(&f->lock);
  if (f->fd >= 0)
    close(f->fd);
  f->fd = fd;
  pthread_mutex_unlock(&f->lock);
  return 0;
}

static int file_consume(void *ctx, struct otc_batch *b) {
  struct file_exporter *f = ctx;
  char *json = NULL;
  size_t json_len = 0;
  int rc;
  struct iovec iov[2];
  int n_iov;
  uint8_t hdr[4];
  if (f->proto) {
    uint32_t n = (uint32_t)b->len;
    hdr[0] = (uint8_t)(n >> 24);
    hdr[1] = (uint8_t)(n >> 16);
    hdr[2] = (uint8_t)(n >> 8);
    hdr[3] = (uint8_t)n;
    iov[0] = (struct iovec){hdr, 4};
    iov[1] = (struct iovec){b->data, b->len};
    n_iov = 2;
  } else {
    /* Transcoded outside the lock: only the write is serialized. */
    rc = otc_proto_to_json(b->signal, b->data, b->len, &json, &json_len);
    if (rc != 0) {
      otc_warn(f->id, "cannot write a %s batch as JSON: %s", otc_signal_name(b->signal),
               otc_strerror(rc));
      goto done;
    }
    /* The transcoder NUL-terminates: that byte becomes the line's end, so one write suffices. */
    json[json_len] = '\n';
    iov[0] = (struct iovec){json, json_len + 1};
    n_iov = 1;
  }
  pthread_mutex_lock(&f->lock);
  if (f->fd < 0)
    rc = OTC_ERR_SHUTDOWN;
  else
    rc = writev_all(f->fd, iov, n_iov);
  pthread_mutex_unlock(&f->lock);
  if (rc == OTC_ERR_IO)
    otc_warn(f->id, "cannot write to %s: %s", f->path, strerror(errno));
done:
  if ((unsigned)b->signal < OTC_SIGNAL_COUNT)
    otc_counter_add(rc == 0 ? f->metrics.sent[b->signal] : f->metrics.send_failed[b->signal],
                    b->items);
  free(json);
  otc_batch_unref(b);
  return rc;
}

static int file_shutdown(void *ctx) {
  struct file_exporter *f = ctx;
  int rc = 0;
  pthread_mutex_lock(&f->lock);
  if (f->fd >= 0 && close(f->fd) != 0) {
    otc_warn(f->id, "closing %s: %s", f->path, strerror(errno));
    rc = OTC_ERR_IO;
  }
  f->fd = -1;
  pthread_mutex_unlock(&f->lock);
  return rc;
}

static void file_destroy(void *ctx) {
  struct file_exporter *f = ctx;
  if (!f)
    return;
  file_shutdown(f);
  pthread_mutex_destroy(&f->lock);
  free(f->id);
  free(f->path);
  free(f);
}

const struct otc_component_ops otc_exporter_file = {
    .type = "file",
    .aliases = NULL,
    .kind = OTC_KIND_EXPORTER,
    .signals = OTC_SIGNALS_ALL,
    .mutates = false,
    .create = file_create,
    .start = file_start,
    .consume = file_consume,
    .shutdown = file_shutdown,
    .destroy = file_destroy,
};
