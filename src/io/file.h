/* Opening input files without hanging. Every file sdumc reads (features, labels.csv, models,
 * states, caches, GGUF, CSV) is opened through here: open(2) with O_NONBLOCK, so that a FIFO or a
 * device in place of a file cannot block the open, then fstat(2) on the descriptor, and anything
 * but a regular file is refused with a message naming what it is ("is a FIFO (named pipe)", "is a
 * folder", ...). O_NONBLOCK is cleared again before the descriptor is returned. */
#ifndef SD_IO_FILE_H
#define SD_IO_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

struct stat; /* <sys/stat.h>: not included here, its names (stat) would leak into every includer */

/* Opens path read-only; *fd is the descriptor (close it), st (may be NULL) its fstat. On failure
 * *fd is -1 and the message reads "<path>: cannot open: <strerror>" or "<path>: is a FIFO (named
 * pipe), not a regular file". */
sd_status sd_file_open(const char *path, int *fd, struct stat *st, sd_error *err);
/* The same as a stdio stream ("rb"). */
sd_status sd_file_fopen(const char *path, FILE **f, struct stat *st, sd_error *err);
/* The whole file, malloc'ed with a NUL after the last byte (free it); *len its size. A file
 * larger than max_bytes is refused ("<path>: larger than N bytes"). */
sd_status sd_file_read_all(const char *path, size_t max_bytes, char **buf, size_t *len, sd_error *err);
/* An input of a command, for sd_output_check: a file or a folder, and how the command calls it in
 * messages ("--model", "labels.csv", "the audio feature folder"). */
typedef struct {
    const char *path; /* NULL: skipped */
    const char *what;
} sd_input;

/* Refuses to write `out` (a file or a folder about to be created or replaced; `what` names it, e.g.
 * "--out") when that would touch an input: out is an input file (the same path once resolved, or
 * the same device and inode), or an input folder, or lies inside one. SD_E_ARG with a message
 * naming both. Every command that writes calls it for each of its outputs before any work. */
sd_status sd_output_check(const char *out, const char *what, const sd_input *in, int n, sd_error *err);

/* What st describes, for messages: "a folder", "a FIFO (named pipe)", "a character device" ... */
const char *sd_file_kind(const struct stat *st);

#endif
