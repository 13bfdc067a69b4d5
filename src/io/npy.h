/* NumPy .npy files (format versions 1.0, 2.0, 3.0) holding one float matrix.
 *
 * Layout: "\x93NUMPY", major, minor, header length (2 bytes LE in 1.0, 4 bytes LE in 2.0/3.0),
 * then a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and '\n', then the data in C order.
 *
 * Accepted: dtypes '<f2', '<f4', '<f8' (converted to float32 on read), C order, shape (D,) (one frame:
 * rows = 1, cols = D) or (T, D) (rows = T, cols = D). Rejected with a message saying why: other
 * dtypes (named), Fortran order, 0-D or 3-D and more, structured dtypes, a malformed header, a file
 * whose size is not data_offset + rows * cols * itemsize (the message says how many bytes are missing
 * or left over).
 *
 * Messages of the functions that take a path start with the path. */
#ifndef SD_IO_NPY_H
#define SD_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/atomic_file.h"
#include "io/dtype.h"

/* Header dict limit; numpy itself refuses headers over 10000 bytes by default. */
#define SD_NPY_MAX_HEADER_LEN (1u << 20)

typedef struct {
    int version;        /* major format version: 1, 2 or 3 */
    sd_dtype dtype;     /* on disk: F16, F32 or F64 */
    int ndim;           /* 1 or 2 */
    int64_t rows, cols; /* ndim 1: 1 x D; ndim 2: T x D */
    size_t data_offset; /* first data byte */
} sd_npy_header;

/* Parses the header from the first n bytes of a file (n may be less than the whole file, but must
 * cover the header). Does not check the file size. */
sd_status sd_npy_parse_header(const uint8_t *buf, size_t n, sd_npy_header *h, sd_error *err);
/* Bytes of data the header promises: rows * cols * itemsize (cannot overflow after a successful
 * parse). */
size_t sd_npy_data_bytes(const sd_npy_header *h);

/* Reads only the header; also checks the file size matches it. */
sd_status sd_npy_read_header(const char *path, sd_npy_header *h, sd_error *err);
/* Whole file: *data is sd_alloc'ed [rows * cols] floats (row-major), freed with sd_free. */
sd_status sd_npy_read(const char *path, sd_npy_header *h, float **data, sd_error *err);
/* Into a caller buffer dst [rows * cols] floats; h from sd_npy_read_header (the file is checked to
 * still have that header). */
sd_status sd_npy_read_into(const char *path, const sd_npy_header *h, float *dst, sd_error *err);
/* A whole file held in memory (n bytes). */
sd_status sd_npy_parse(const uint8_t *buf, size_t n, sd_npy_header *h, float **data, sd_error *err);

/* Writes data [rows * cols] floats as version 1.0 with dtype SD_DTYPE_F32 ('<f4') or SD_DTYPE_F16
 * ('<f2'), shape (cols,) when ndim == 1 (rows must be 1) or (rows, cols) when ndim == 2. The header is
 * byte-for-byte what numpy 1.24 writes (data starts at a multiple of 64). Atomic replace. */
sd_status sd_npy_write(const char *path, const float *data, int ndim, int64_t rows, int64_t cols,
                       sd_dtype dtype, sd_error *err);
/* The same bytes (shape (rows, cols)) written plainly: no temporary, no fsync. For the many files
 * of a new dataset folder, made atomic and durable as a whole (data/dataset_writer.h). */
sd_status sd_npy_write_plain(const char *path, const float *data, int64_t rows, int64_t cols, sd_dtype dtype,
                             sd_error *err);

/* The same file written in pieces: open (the header, for a shape known in advance), rows in order,
 * commit (which checks that every row came). A file too large to hold in memory, or one produced
 * piece by piece, is written without a copy. Atomic: nothing appears at path before the commit. */
typedef struct {
    sd_atomic_file af;
    sd_dtype dtype;
    int64_t rows, cols, written;
} sd_npy_stream;

sd_status sd_npy_stream_open(sd_npy_stream *w, const char *path, int ndim, int64_t rows,
                             int64_t cols, sd_dtype dtype, sd_error *err);
/* rows x cols floats; on failure call sd_npy_stream_abort. */
sd_status sd_npy_stream_write(sd_npy_stream *w, const float *data, int64_t rows, sd_error *err);
/* Always releases w. */
sd_status sd_npy_stream_commit(sd_npy_stream *w, sd_error *err);
void sd_npy_stream_abort(sd_npy_stream *w);

#endif
