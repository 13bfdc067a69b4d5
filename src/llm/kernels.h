/* Matrix kernels of the LLaMA decoder over GGUF weights (F32, F16, Q8_0, Q4_0), dequantising on
 * the fly.
 *
 * Legend: M input rows (positions or beams), K inner dim (weight row length, ne[0]),
 *         N output dim (weight rows, ne[1]).
 * A weight matrix is stored as N rows of K elements (PyTorch Linear [out, in]); y = x W^T.
 *
 * Paths:
 *   M < SD_LLM_GEMM_MIN_ROWS: each thread takes a range of weight rows (OpenMP over rows), reads a
 *     row once and dots it with the M inputs (AVX2/FMA/F16C kernels when the CPU has them, chosen
 *     at run time; portable C otherwise).
 *   M >= SD_LLM_GEMM_MIN_ROWS (the prompt pass): F32 weights go to OpenBLAS sgemm directly; other
 *     types are dequantised one weight row at a time (per thread) and that row is dotted with all
 *     M inputs (4 at a time with AVX2). */
#ifndef SD_LLM_KERNELS_H
#define SD_LLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "io/gguf.h"

#define SD_LLM_GEMM_MIN_ROWS 8

typedef struct {
    sd_ggml_type type;
    const void *data;   /* N rows, each sd_ggml_row_size(type, K) bytes */
    int64_t K, N;
    size_t row_bytes;
} sd_wmat;

/* y[M, N] = x[M, K] W^T. */
void sd_llm_matmul(const sd_wmat *W, const float *x, size_t M, float *y);
/* The oracle: dequantise each row, accumulate in double, one thread. */
void sd_llm_matmul_ref(const sd_wmat *W, const float *x, size_t M, float *y);
/* Row r of W as float32 (K values). */
void sd_llm_get_row(const sd_wmat *W, int64_t r, float *out);

/* 1: use the portable C kernels even where SIMD ones exist (tests compare both). Returns the old
 * setting. Not thread-safe; set it before running anything. */
int sd_llm_kernels_force_portable(int on);
/* "avx2+fma+f16c" or "portable": what sd_llm_matmul will use. */
const char *sd_llm_kernels_name(void);

/* out[D] = x / sqrt(mean(x^2) + eps) * w. */
void sd_llm_rmsnorm(float *out, const float *x, const float *w, size_t D, float eps);

#endif
