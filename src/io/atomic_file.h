/* Crash-safe file replacement. The new content goes to a temporary file in the same folder
 * ("<path>.tmp.XXXXXX", from mkstemp), which is flushed, fsync'ed and renamed over <path>; the folder
 * is then fsync'ed so the rename itself is durable. A reader therefore sees the old file or the new
 * one, never a mix. On any failure the temporary is removed and an earlier file at <path> is left
 * untouched.
 *
 *     sd_atomic_file af;
 *     if (sd_atomic_open(&af, path, err)) return err->code;
 *     if (sd_atomic_write(&af, buf, n, err)) { sd_atomic_abort(&af); return err->code; }
 *     return sd_atomic_commit(&af, err);   // closes af whether or not it succeeds
 *
 * The new file gets the permission bits of the file it replaces, or 0666 less the umask when there
 * is none. The temporary is created with O_EXCL and locked (flock, LOCK_EX) while it is open, which
 * tells a later run that it belongs to a live process (sd_atomic_remove_stale). */
#ifndef SD_IO_ATOMIC_FILE_H
#define SD_IO_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "core/status.h"

typedef struct {
    FILE *f;        /* the temporary, open for writing (callers may fprintf into it directly, then
                       check with sd_atomic_commit, which reports a failed flush) */
    char *tmp_path; /* "<path>.tmp.XXXXXX" */
    char *path;     /* the target */
} sd_atomic_file;

/* Creates the temporary. On failure af is left zeroed (nothing to abort) and the message reads
 * "<path>: cannot create <path>.tmp.XXXXXX: <strerror>". Every message starts with the target path. */
sd_status sd_atomic_open(sd_atomic_file *af, const char *path, sd_error *err);
/* Writes n bytes. On failure ("<path>: write failed: No space left on device") the caller should
 * call sd_atomic_abort. */
sd_status sd_atomic_write(sd_atomic_file *af, const void *buf, size_t n, sd_error *err);
/* Flushes, fsyncs, closes, renames over the target, fsyncs the folder. Always releases af: on
 * failure the temporary is removed. */
sd_status sd_atomic_commit(sd_atomic_file *af, sd_error *err);
/* Closes and removes the temporary; af is released. Safe on a zeroed or already released af. */
void sd_atomic_abort(sd_atomic_file *af);

/* One call: atomically replaces path with n bytes from buf. */
sd_status sd_atomic_write_file(const char *path, const void *buf, size_t n, sd_error *err);

/* Whether path, and its temporary, fit the system's limits (PATH_MAX for the path, NAME_MAX for its
 * last component): SD_E_ARG naming the limit otherwise. Call it for every output before any work,
 * so that a long path fails at once instead of after hours. */
sd_status sd_atomic_check_path(const char *path, sd_error *err);

/* Removes what an earlier, dead process left while writing path: the temporaries
 * "<path>.tmp.XXXXXX" (files) and "<path>.tmp-XXXXXX" (folders, sd_atomic_make_temp_dir) that were
 * last modified before `before` and that no live process holds locked. (A file temporary taken
 * between its creation and its lock is made again by its writer, so for files any `before` is
 * safe for live writers: time(NULL) + 1 removes every unlocked one.) A path ending in '/' (a
 * folder of outputs) means the temporaries of every file in that folder. Best effort; returns how
 * many it removed. */
int sd_atomic_remove_stale(const char *path, time_t before);

/* A new folder "<path>.tmp-XXXXXX" (mode 0777 less the umask) for an output folder written in
 * place and renamed at the end, locked while *lock_fd stays open (close it after the rename);
 * tmp receives its path (at least strlen(path) + 12 bytes). */
sd_status sd_atomic_make_temp_dir(const char *path, char *tmp, size_t tmp_size, int *lock_fd, sd_error *err);
/* Removes a folder of files and folders (depth levels deep), best effort. */
void sd_remove_tree(const char *path, int depth);

#endif
