/* The file_storage extension (otelcol-contrib's extension/storage/filestorage, by its keys): a
 * directory on the local file system where other components keep state that must survive a
 * restart. Here its user is the exporters' persistent sending queue (`sending_queue.storage:
 * file_storage/NAME`), which keeps one segment log per exporter in a subdirectory of it
 * (exporters/common/persistent_queue.h).
 *
 * Other components find an instance with otc_find_extension(args, id, "file_storage") and read its
 * settings through the functions below; the instance lives until the service is destroyed, after
 * every component that uses it. */
#ifndef OTC_FILE_STORAGE_H
#define OTC_FILE_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

struct otc_file_storage;

/* The storage directory (absolute or relative to the working directory, as configured). It existed
 * and was writable when the extension was created. Owned by the extension. */
const char *otc_file_storage_directory(const struct otc_file_storage *fs);
/* `fsync`: true to fsync every write (survives a power loss), false to rely on the page cache
 * (survives the process being killed, not the machine losing power). */
bool otc_file_storage_fsync(const struct otc_file_storage *fs);
/* `timeout`: how long a user waits for another process's lock on its files before giving up. */
int64_t otc_file_storage_timeout_ns(const struct otc_file_storage *fs);
/* `queue_max_bytes` (ours; default 1 GiB): the bound on the unacknowledged bytes of each
 * persistent sending queue kept in the directory. */
uint64_t otc_file_storage_queue_max_bytes(const struct otc_file_storage *fs);
/* The extension's id ("file_storage/queue"), for log lines. */
const char *otc_file_storage_id(const struct otc_file_storage *fs);

#endif
