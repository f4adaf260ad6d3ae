/* The file_storage extension: see file_storage.h. It owns no files itself; it checks its directory
 * (exists, is a directory, is writable and searchable, as otelcol's Validate does) and hands the
 * settings to the components that keep their state there. */
#include "extensions/file_storage/file_storage.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/component.h"
#include "core/log.h"

struct fs_config {
  const char *directory;
  bool fsync;
  int64_t timeout_ns;
  bool create_directory;
  const char *directory_permissions;
  uint64_t queue_max_bytes;
};

static const struct otc_cfg_field fs_fields[] = {
    {"directory", OTC_CFGK_STRING, NULL, offsetof(struct fs_config, directory), 0, 0},
    {"fsync", OTC_CFGK_BOOL, "false", offsetof(struct fs_config, fsync), 0, 0},
    {"timeout", OTC_CFGK_DURATION, "1s", offsetof(struct fs_config, timeout_ns), 0, 0},
    {"create_directory", OTC_CFGK_BOOL, "false", offsetof(struct fs_config, create_directory), 0,
     0},
    {"directory_permissions", OTC_CFGK_STRING, "0750",
     offsetof(struct fs_config, directory_permissions), 0, 0},
    /* Ours: the byte bound of each persistent sending queue kept in the directory. */
    {"queue_max_bytes", OTC_CFGK_SIZE, "1GiB", offsetof(struct fs_config, queue_max_bytes), 0, 0},
    /* Compaction rewrites otelcol's bbolt database; the segment log here frees space by deleting
     * delivered segments, so there is nothing to compact. */
    {"compaction", OTC_CFGK_UNSUPPORTED, NULL, 0, 0, 0},
    {NULL, 0, NULL, 0, 0, 0},
};

struct otc_file_storage {
  char *id;
  char *directory;
  bool fsync;
  int64_t timeout_ns;
  bool create_directory;
  mode_t mode;
  uint64_t queue_max_bytes;
};

const char *otc_file_storage_directory(const struct otc_file_storage *fs) {
  return fs->directory;
}
bool otc_file_storage_fsync(const struct otc_file_storage *fs) {
  return fs->fsync;
}
int64_t otc_file_storage_timeout_ns(const struct otc_file_storage *fs) {
  return fs->timeout_ns;
}
const char *otc_file_storage_id(const struct otc_file_storage *fs) {
  return fs->id;
}
uint64_t otc_file_storage_queue_max_bytes(const struct otc_file_storage *fs) {
  return fs->queue_max_bytes;
}

static void fs_destroy(void *ctx) {
  struct otc_file_storage *fs = ctx;
  if (!fs)
    return;
  free(fs->directory);
  free(fs->id);
  free(fs);
}

/* Checks that dir is a directory this process can create files in. Returns 0 or an errno. */
static int check_directory(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return errno;
  if (!S_ISDIR(st.st_mode))
    return ENOTDIR;
  if (access(dir, W_OK | X_OK) != 0)
    return errno;
  return 0;
}

static void *fs_create(const struct otc_create_args *args, const struct otc_cfg_node *cfg,
                       struct otc_cfg_err *err) {
  struct otc_file_storage *fs = NULL;
  struct fs_config c = {0};
  const char *id = args->id ? args->id : "file_storage";
  if (otc_cfg_apply(fs_fields, cfg, &c, id, err) != 0)
    goto fail;
  if (!c.directory || !*c.directory) {
    otc_cfg_error(err, cfg, "directory is required");
    goto fail;
  }
  if (c.queue_max_bytes < 4096) {
    otc_cfg_error(err, otc_cfg_get(cfg, "queue_max_bytes"),
                  "queue_max_bytes must be at least 4KiB");
    goto fail;
  }
  if (c.timeout_ns < 0) {
    otc_cfg_error(err, otc_cfg_get(cfg, "timeout"), "timeout must not be negative");
    goto fail;
  }
  char *end = NULL;
  unsigned long mode = strtoul(c.directory_permissions, &end, 8);
  if (!*c.directory_permissions || *end || mode > 07777) {
    otc_cfg_error(err, otc_cfg_get(cfg, "directory_permissions"),
                  "directory_permissions must be an octal mode such as 0750");
    goto fail;
  }
  /* otelcol refuses a missing directory at validation unless it is to be created at start. */
  if (!c.create_directory) {
    int e = check_directory(c.directory);
    if (e != 0) {
      otc_cfg_error(err, otc_cfg_get(cfg, "directory"), "directory \"%s\" is not usable: %s",
                    c.directory, strerror(e));
      goto fail;
    }
  }
  fs = calloc(1, sizeof *fs);
  if (!fs || !(fs->id = strdup(id)) || !(fs->directory = strdup(c.directory))) {
    otc_cfg_error(err, cfg, "out of memory");
    goto fail;
  }
  fs->fsync = c.fsync;
  fs->timeout_ns = c.timeout_ns;
  fs->create_directory = c.create_directory;
  fs->mode = (mode_t)mode;
  fs->queue_max_bytes = c.queue_max_bytes;
  return fs;
fail:
  fs_destroy(fs);
  return NULL;
}

/* mkdir -p with the configured mode for the directories it makes. Returns 0 or an errno. */
static int make_dirs(const char *path, mode_t mode) {
  int rc = 0;
  char *p = strdup(path);
  if (!p)
    return ENOMEM;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, mode) != 0 && errno != EEXIST) {
      rc = errno;
      goto cleanup;
    }
    *s = '/';
  }
  if (mkdir(p, mode) != 0 && errno != EEXIST)
    rc = errno;
cleanup:
  free(p);
  return rc;
}

static int fs_start(void *ctx) {
  struct otc_file_storage *fs = ctx;
  if (fs->create_directory) {
    int e = make_dirs(fs->directory, fs->mode);
    if (e != 0) {
      otc_error(fs->id, "cannot create directory %s: %s", fs->directory, strerror(e));
      return OTC_ERR_IO;
    }
  }
  int e = check_directory(fs->directory);
  if (e != 0) {
    otc_error(fs->id, "directory %s is not usable: %s", fs->directory, strerror(e));
    return OTC_ERR_IO;
  }
  otc_info(fs->id, "storage directory %s (fsync %s)", fs->directory, fs->fsync ? "on" : "off");
  return 0;
}

const struct otc_component_ops otc_extension_file_storage = {
    .type = "file_storage",
    .aliases = NULL,
    .kind = OTC_KIND_EXTENSION,
    .signals = 0,
    .mutates = false,
    .create = fs_create,
    .start = fs_start,
    .consume = NULL,
    .shutdown = NULL,
    .destroy = fs_destroy,
};
