/* Element types of tensors stored in files (.npy, safetensors). In memory sdumc computes in float32
 * (or double for the gradient checks); these name what is on disk. */
#ifndef SD_IO_DTYPE_H
#define SD_IO_DTYPE_H

#include <stddef.h>

typedef enum { SD_DTYPE_F32, SD_DTYPE_F16, SD_DTYPE_BF16, SD_DTYPE_F64 } sd_dtype;

/* Bytes per element: 4, 2, 2, 8; 0 for a value outside the enum. */
size_t sd_dtype_size(sd_dtype dtype);
/* The safetensors spelling: "F32", "F16", "BF16", "F64"; "?" for a value outside the enum. */
const char *sd_dtype_name(sd_dtype dtype);
/* Inverse of sd_dtype_name (exact, case-sensitive). Returns 0 on success, -1 if unknown. */
int sd_dtype_from_name(const char *name, sd_dtype *out);

/* n little-endian elements of dtype at src (any alignment) -> float32 (F64 rounds to nearest). */
void sd_dtype_decode_f32(sd_dtype dtype, const void *src, size_t n, float *dst);
/* n floats -> little-endian dtype elements at dst (any alignment); F16/BF16 round to nearest even. */
void sd_dtype_encode_f32(sd_dtype dtype, const float *src, size_t n, void *dst);

#endif
