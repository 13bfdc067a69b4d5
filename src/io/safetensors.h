/* safetensors files: an 8-byte little-endian header length N, N bytes of JSON, then the data.
 *
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 *
 * Offsets are relative to the data section (which starts at 8 + N). The reader validates as the
 * reference implementation (huggingface/safetensors) does: N <= 100,000,000 and 8 + N <= file size;
 * the header is valid JSON (UTF-8, no duplicate keys) and an object starting with '{'; every tensor
 * has a dtype, a shape of non-negative integers and data_offsets [begin, end] with
 * end - begin == numel * dtype size (overflow-checked); the offsets, sorted, tile the data section
 * from 0 with no hole or overlap, and the last one ends at the end of the file.
 *
 * Readable dtypes: F32, F16, BF16, F64 (converted to float32 by sd_st_read_f32). Other dtypes of
 * the format (I64, U8, BOOL, ...) are reported as unsupported, unknown ones as unknown; both fail
 * the open, naming the tensor and the dtype. At most 8 dimensions.
 *
 * sd_st_open and sd_st_parse keep the data section in memory (64-byte aligned), so sd_st_data(st, t)
 * is aligned whenever t->begin is a multiple of the alignment needed; sd_st_map and sd_st_view leave
 * it where it is (8 + header length bytes into the file). Messages from sd_st_open and
 * sd_st_writer_write start with the path. */
#ifndef SD_IO_SAFETENSORS_H
#define SD_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/dtype.h"

#define SD_ST_MAX_DIMS 8
#define SD_ST_MAX_HEADER 100000000u

typedef struct {
    char *name;
    sd_dtype dtype;
    int ndim;                        /* 0 (a scalar) .. SD_ST_MAX_DIMS */
    int64_t shape[SD_ST_MAX_DIMS];   /* [ndim]; unused entries are 0 */
    size_t numel;                    /* product of shape (1 for a scalar) */
    size_t begin, end;               /* byte offsets within the data section */
} sd_st_tensor;

typedef struct sd_safetensors sd_safetensors;

/* Reads and validates a file: the header is checked before the data is read. */
sd_status sd_st_open(const char *path, sd_safetensors **out, sd_error *err);
/* The same from a whole file in memory (n bytes); the data is copied. */
sd_status sd_st_parse(const uint8_t *buf, size_t n, sd_safetensors **out, sd_error *err);
/* The same without copying: the data stays in buf, which must outlive *out and not change. */
sd_status sd_st_view(const uint8_t *buf, size_t n, sd_safetensors **out, sd_error *err);
/* sd_st_open through mmap (private, copy-on-write): the data section stays in the mapped file,
 * read as it is touched. The file must not be changed in place while mapped (replacing it by
 * rename, as sd_atomic_write does, is safe). */
sd_status sd_st_map(const char *path, sd_safetensors **out, sd_error *err);
/* Hands the mapping of an sd_st_map file to the caller (munmap(map, *size) when done), who then
 * keeps sd_st_data pointers valid after sd_st_close. NULL for a file that is not mapped. */
void *sd_st_take_map(sd_safetensors *st, size_t *size);
void sd_st_close(sd_safetensors *st);

int sd_st_count(const sd_safetensors *st);
const sd_st_tensor *sd_st_tensor_at(const sd_safetensors *st, int i); /* header order; NULL if out of range */
const sd_st_tensor *sd_st_find(const sd_safetensors *st, const char *name); /* NULL if absent */
/* dst [t->numel] floats. */
sd_status sd_st_read_f32(const sd_safetensors *st, const sd_st_tensor *t, float *dst, sd_error *err);
/* Raw little-endian bytes [t->end - t->begin]. */
const void *sd_st_data(const sd_safetensors *st, const sd_st_tensor *t);

/* __metadata__ (string -> string), in header order. */
int sd_st_metadata_count(const sd_safetensors *st);
const char *sd_st_metadata_key(const sd_safetensors *st, int i);
const char *sd_st_metadata_value(const sd_safetensors *st, int i);
const char *sd_st_metadata_get(const sd_safetensors *st, const char *key); /* NULL if absent */

/* Writer: tensors are written in the order added, the header padded with spaces to a multiple of
 * 8 bytes as the reference does. */
typedef struct sd_st_writer sd_st_writer;

sd_st_writer *sd_st_writer_new(void); /* NULL when out of memory */
/* data [numel] floats is borrowed until sd_st_writer_write, and converted there to dtype (F32 or
 * F16; BF16 (rounded to nearest even) and F64 work too). ndim 0..8 (0: a scalar, shape may be NULL).
 * Names must be unique and not "__metadata__"; any bytes are escaped as JSON needs. */
sd_status sd_st_writer_add(sd_st_writer *w, const char *name, sd_dtype dtype, int ndim,
                           const int64_t *shape, const float *data, sd_error *err);
/* Sets (or replaces) a metadata entry. */
sd_status sd_st_writer_set_metadata(sd_st_writer *w, const char *key, const char *value, sd_error *err);
/* Atomic replace of path. */
sd_status sd_st_writer_write(sd_st_writer *w, const char *path, sd_error *err);
void sd_st_writer_free(sd_st_writer *w);

#endif
