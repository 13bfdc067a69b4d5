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
 * The new file gets the permission bits of the file it replaces, or 0644 when there is none. */
#ifndef SD_IO_ATOMIC_FILE_H
#define SD_IO_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

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

#endif
