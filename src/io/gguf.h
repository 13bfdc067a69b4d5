/* GGUF (version 3) reader: the file format llama.cpp models come in.
 *
 * Layout (all little-endian):
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x  { string key, u32 value_type, value }          (string = u64 length + bytes, no NUL)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml_type,
 *                 u64 offset (from the start of the data section) }
 *   padding to general.alignment (default 32), then the data section.
 *
 * The file is hostile input: the header is read with bounds checks on every count, every string
 * length and every size product; tensor extents are checked against the data section, the
 * alignment and each other (no overlap) and names/keys must be unique. Only then is the file
 * memory-mapped (read-only) and the tensor data pointers set. */
#ifndef SD_IO_GGUF_H
#define SD_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Value types of the metadata key-value pairs (GGUF spec numbering). */
typedef enum {
    SD_GGUF_U8 = 0,
    SD_GGUF_I8 = 1,
    SD_GGUF_U16 = 2,
    SD_GGUF_I16 = 3,
    SD_GGUF_U32 = 4,
    SD_GGUF_I32 = 5,
    SD_GGUF_F32 = 6,
    SD_GGUF_BOOL = 7,
    SD_GGUF_STRING = 8,
    SD_GGUF_ARRAY = 9,
    SD_GGUF_U64 = 10,
    SD_GGUF_I64 = 11,
    SD_GGUF_F64 = 12
} sd_gguf_vtype;

/* Tensor element types supported (ggml numbering). Q4_0 / Q8_0 are blocks of 32 elements:
 *   Q4_0: f16 scale d, 16 bytes of nibbles; x[j] = (lo(q[j]) - 8) d, x[j+16] = (hi(q[j]) - 8) d
 *   Q8_0: f16 scale d, 32 int8;            x[j] = q[j] d */
typedef enum {
    SD_GGML_F32 = 0,
    SD_GGML_F16 = 1,
    SD_GGML_Q4_0 = 2,
    SD_GGML_Q8_0 = 8
} sd_ggml_type;

#define SD_GGUF_MAX_DIMS 4
#define SD_GGML_QK 32 /* elements per Q4_0 / Q8_0 block */

typedef struct {
    const char *name;              /* NUL-terminated copy */
    uint32_t n_dims;               /* 1..4 */
    int64_t ne[SD_GGUF_MAX_DIMS];  /* extents, innermost (contiguous) first; unused dims are 1 */
    sd_ggml_type type;
    uint64_t offset;               /* from the start of the data section */
    size_t nbytes;
    const void *data;              /* into the read-only mapping */
} sd_gguf_tensor;

typedef struct {
    const char *key;               /* NUL-terminated copy */
    sd_gguf_vtype type;
    /* scalars: */
    union {
        uint64_t u;  /* U8/U16/U32/U64/BOOL */
        int64_t i;   /* I8/I16/I32/I64 */
        double f;    /* F32/F64 */
    } v;
    /* STRING: str (NUL-terminated copy, str_len bytes; may hold NULs). */
    const char *str;
    size_t str_len;
    /* ARRAY: element type, count; numeric arrays as raw little-endian bytes, string arrays as
     * pointers + lengths. Nested arrays are rejected. */
    sd_gguf_vtype arr_type;
    uint64_t arr_n;
    const void *arr;               /* numeric elements */
    const char *const *arr_str;    /* string elements (each NUL-terminated) */
    const uint32_t *arr_str_len;
} sd_gguf_kv;

typedef struct sd_gguf sd_gguf;

/* Opens and validates path; *out is NULL on failure. Errors name the file and what is wrong. */
sd_status sd_gguf_open(const char *path, sd_gguf **out, sd_error *err);
void sd_gguf_close(sd_gguf *g);

uint32_t sd_gguf_version(const sd_gguf *g);
size_t sd_gguf_alignment(const sd_gguf *g);
const char *sd_gguf_path(const sd_gguf *g);

size_t sd_gguf_kv_count(const sd_gguf *g);
const sd_gguf_kv *sd_gguf_kv_at(const sd_gguf *g, size_t i);
const sd_gguf_kv *sd_gguf_find_kv(const sd_gguf *g, const char *key);

/* Typed getters. Integer getters accept any integer (or bool) value type whose value fits;
 * float getters accept F32/F64 and integers. SD_E_FORMAT when the key is missing or mistyped
 * (message names file and key). */
sd_status sd_gguf_get_u32(const sd_gguf *g, const char *key, uint32_t *out, sd_error *err);
sd_status sd_gguf_get_f32(const sd_gguf *g, const char *key, float *out, sd_error *err);
sd_status sd_gguf_get_str(const sd_gguf *g, const char *key, const char **out, sd_error *err);
/* Like get_u32 but *out = def when the key is absent (a present but mistyped key still fails). */
sd_status sd_gguf_get_u32_or(const sd_gguf *g, const char *key, uint32_t def, uint32_t *out,
                             sd_error *err);
sd_status sd_gguf_get_f32_or(const sd_gguf *g, const char *key, float def, float *out,
                             sd_error *err);

size_t sd_gguf_tensor_count(const sd_gguf *g);
const sd_gguf_tensor *sd_gguf_tensor_at(const sd_gguf *g, size_t i);
const sd_gguf_tensor *sd_gguf_find_tensor(const sd_gguf *g, const char *name);

/* Element count of a tensor (product of ne). */
int64_t sd_gguf_tensor_numel(const sd_gguf_tensor *t);
/* "F32", "F16", "Q4_0", "Q8_0", or "?". */
const char *sd_ggml_type_name(sd_ggml_type type);
/* Bytes of one row of n elements of type (n a multiple of the block size for quantised types);
 * 0 for an unknown type or a bad n. */
size_t sd_ggml_row_size(sd_ggml_type type, int64_t n);

/* Dequantises / converts n elements (n a multiple of the block size for quantised types). */
void sd_ggml_to_f32(sd_ggml_type type, const void *src, float *dst, int64_t n);

#endif
