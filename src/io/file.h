/* Opening input files without hanging. Every file sdumc reads (features, labels.csv, models,
 * states, caches, GGUF, CSV) is opened through here: open(2) with O_NONBLOCK, so that a FIFO or a
 * device in place of a file cannot block the open, then fstat(2) on the descriptor, and anything
 * but a regular file is refused with a message naming what it is ("is a FIFO (named pipe)", "is a
 * folder", ...). O_NONBLOCK is cleared again before the descriptor is returned. */
#ifndef SD_IO_FILE_H
#define SD_IO_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/status.h"

/* Opens path read-only; *fd is the descriptor (close it), st (may be NULL) its fstat. On failure
 * *fd is -1 and the message reads "<path>: cannot open: <strerror>" or "<path>: is a FIFO (named
 * pipe), not a regular file". */
sd_status sd_file_open(const char *path, int *fd, struct stat *st, sd_error *err);
/* The same as a stdio stream ("rb"). */
sd_status sd_file_fopen(const char *path, FILE **f, struct stat *st, sd_error *err);
/* The whole file, malloc'ed with a NUL after the last byte (free it); *len its size. A file
 * larger than max_bytes is refused ("<path>: larger than N bytes"). */
sd_status sd_file_read_all(const char *path, size_t max_bytes, char **buf, size_t *len, sd_error *err);
/* What st describes, for messages: "a folder", "a FIFO (named pipe)", "a character device" ... */
const char *sd_file_kind(const struct stat *st);

#endif
