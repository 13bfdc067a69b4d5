/* IEEE 754 binary16 (float16) and bfloat16 conversions to and from float32.
 *
 * float16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
 *          Largest finite 65504; smallest normal 2^-14; smallest subnormal 2^-24.
 * bfloat16: the top 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits). */
#ifndef SD_IO_HALF_H
#define SD_IO_HALF_H

#include <stddef.h>
#include <stdint.h>

/* Exact (every float16 is a float32). A NaN comes out quiet with its payload kept (a signalling
 * one gets the quiet bit), as IEEE 754's conversion and the F16C instruction give it. */
float sd_f16_to_f32(uint16_t h);
/* Round to nearest, ties to even, as IEEE 754 and numpy's astype(float16) do: values at or above
 * 65520 in magnitude become +-inf, tiny values become subnormals or signed zero. NaN stays NaN (quiet,
 * the top mantissa bits kept). */
uint16_t sd_f32_to_f16(float f);
/* Exact. */
float sd_bf16_to_f32(uint16_t b);
/* Round to nearest, ties to even (as torch does); NaN stays NaN (quiet). */
uint16_t sd_f32_to_bf16(float f);

/* n values at once (native-endian, src and dst not overlapping), the same bits as the scalar
 * conversions; vectorised for the CPU it runs on. */
void sd_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
/* The portable loop behind sd_f16_to_f32_n where the CPU lacks F16C (AVX's vcvtph2ps): for tests. */
void sd_f16_to_f32_n_portable(const uint16_t *src, float *dst, size_t n);
/* dst[i] = (src[i] as float32 - sub[i]) * mul[i], in one pass: the same bits as sd_f16_to_f32_n
 * followed by that subtraction and product in float32 (no fused multiply-add), as a standardised
 * frame needs (model/norm.h). */
void sd_f16_to_f32_affine_n(const uint16_t *src, float *dst, size_t n, const float *sub, const float *mul);
void sd_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);
/* Index of the first Inf or NaN among n float16 / bfloat16 values, or -1 (bit tests, no conversion). */
int64_t sd_f16_first_nonfinite(const uint16_t *src, size_t n);
int64_t sd_bf16_first_nonfinite(const uint16_t *src, size_t n);

#endif
