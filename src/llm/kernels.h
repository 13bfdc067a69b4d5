/* Matrix kernels of the LLaMA decoder over GGUF weights (F32, F16, Q8_0, Q4_0).
 *
 * Legend: M input rows (positions or beams), K inner dim (weight row length, ne[0]),
 *         N output dim (weight rows, ne[1]), nb = K / 32 blocks of a row.
 * A weight matrix is stored as N rows of K elements (PyTorch Linear [out, in]); y = x W^T.
 *
 * Two arithmetics (docs/TEXT_SIMULATION.md, "Arithmetic"):
 *   SD_LLM_ARITH_LLAMACPP (the default): the activations are rounded as llama.cpp rounds them
 *     before a product: for Q8_0 and Q4_0 weights each row is quantised per block of 32 to 8 bits
 *     (d = max|x| / 127 stored as float16, q = round-half-even(x * 127 / max|x|)) and the block
 *     products are exact integer sums scaled by d_w d_x in float32; for F16 weights the
 *     activations are rounded to float16; F32 weights take float32 activations.
 *   SD_LLM_ARITH_EXACT (--exact): float32 activations against the dequantised weights.
 *
 * Every product is a tiled matrix-matrix kernel over all M rows: the weight rows are cut into
 * chunks of ~256 KiB (multiples of 16 rows) that the threads take one at a time as they come free
 * (so the weights stream through once per call, whatever M is, and a late thread does not hold the
 * others up), and within a chunk tiles of RN weight rows x RM input rows whose partial sums stay in
 * registers; a single input row (F16/F32 weights) goes a weight row at a time instead. Kernels: AVX-512
 * VNNI (two 8-bit blocks per instruction), AVX2 (+FMA, F16C), and portable C, chosen at run time;
 * scalar reference kernels are kept as the oracle of the tests. F32 weights with M >= 8 rows go to
 * OpenBLAS sgemm. */
#ifndef SD_LLM_KERNELS_H
#define SD_LLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "io/gguf.h"

typedef struct {
    sd_ggml_type type;
    const void *data; /* N rows, each sd_ggml_row_size(type, K) bytes */
    int64_t K, N;
    size_t row_bytes;
    void *packed; /* NULL, or the rows repacked for the 8-bit products (kernels_repack.h) */
} sd_wmat;

typedef enum { SD_LLM_ARITH_LLAMACPP = 0, SD_LLM_ARITH_EXACT = 1 } sd_llm_arith;

typedef enum { SD_LLM_ISA_PORTABLE = 0, SD_LLM_ISA_AVX2 = 1, SD_LLM_ISA_AVX512 = 2 } sd_llm_isa;

/* Activations of one product, prepared for the weight type (sd_llm_prepare), and the buffers to
 * hold them for up to R rows of up to K inputs: allocated once (with the cache), never per call. */
typedef struct {
    size_t R, K;
    sd_llm_arith arith;
    int8_t *q;      /* [R, K] 8-bit activations */
    float *d8;      /* [R, K/32, 8] block scales (float16 values), each repeated in 8 lanes */
    int32_t *corr;  /* [R, K/32, 8] -c * (sum of each 4 consecutive q): c = 8 for Q4_0 weights, 128
                       for Q8_0 weights; the starting sums of the unsigned-times-signed dot products */
    int32_t *csum;  /* [R, K/32] each block's 8 corr entries summed (the repacked weights' kernels) */
    float *xr;      /* [R, K] float16-rounded activations (F16 weights) */
    float *rows;    /* [n_threads, K] dequantised weight rows (the exact path) */
    int n_threads;
    /* what the buffers hold now (set by sd_llm_prepare) */
    size_t M, Kp;
    int kind;       /* 0 none, 1 8-bit for Q4_0, 2 8-bit for Q8_0, 3 float16-rounded, 4 float32 */
    const float *x; /* the float32 rows, for kinds 3 and 4 (xr or the caller's) */
    const float *src; /* the caller's rows (a product with another weight type prepares them again) */
} sd_llm_work;

/* 0 on success, -1 out of memory. */
int sd_llm_work_init(sd_llm_work *w, size_t R, size_t K, sd_llm_arith arith);
void sd_llm_work_free(sd_llm_work *w);

/* Prepares x[M, K] (M <= R) for products with weights of type t; the pointer x must stay valid
 * until the last product that uses it. */
void sd_llm_prepare(sd_llm_work *w, const float *x, size_t M, size_t K, sd_ggml_type t);
/* y[M, N] = (prepared x) W^T; W->type must be of the prepared kind and W->K the prepared K. */
void sd_llm_matmul_prepared(const sd_wmat *W, sd_llm_work *w, float *y);
/* y[i] = (prepared x) W[i]^T for n matrices of one inner dim (Q, K, V; gate, up) in one parallel
 * region: the threads take the chunks of all of them in turn (fewer thread start-ups and
 * barriers per layer, which matter most when the cores are shared). Matrices of different types
 * (a file may mix them) are done one after the other. */
void sd_llm_matmul_many(const sd_wmat *const *W, float *const *y, int n, sd_llm_work *w);
/* Both. */
void sd_llm_matmul(const sd_wmat *W, const float *x, size_t M, float *y, sd_llm_work *w);

/* Oracles, one thread, sums in double: the exact product with the dequantised weights, and the
 * 8-bit product (weights dequantised block by block times the prepared 8-bit activations). */
void sd_llm_matmul_ref(const sd_wmat *W, const float *x, size_t M, float *y);
void sd_llm_matmul_q8_ref(const sd_wmat *W, const sd_llm_work *w, float *y);
/* Row r of W as float32 (K values). */
void sd_llm_get_row(const sd_wmat *W, int64_t r, float *out);

/* The best kernels this CPU runs. */
sd_llm_isa sd_llm_isa_detect(void);
/* Use at most isa (tests compare the kernels); returns the old limit. Not thread-safe; set it
 * before running anything. */
sd_llm_isa sd_llm_kernels_limit(sd_llm_isa isa);
/* The kernels sd_llm_matmul uses now: "avx512-vnni", "avx2+fma+f16c" or "portable". */
const char *sd_llm_kernels_name(void);
sd_llm_isa sd_llm_kernels_isa(void);

/* The elementwise steps (elementwise.c). In llama.cpp's arithmetic each is llama.cpp's CPU operation
 * value for value (its order of float operations and roundings, its vectorised exponential); in
 * the exact one float32 with sums in double and libm.
 * out[D] = x / sqrt(mean(x^2) + eps) * w. */
void sd_llm_rmsnorm(float *out, const float *x, const float *w, size_t D, float eps, sd_llm_arith a);
/* RoPE on v[n_heads * d] for position pos: adjacent pairs (2i, 2i+1) rotated by pos base^(-2i/d). */
void sd_llm_rope(float *v, int n_heads, int d, size_t pos, float base, sd_llm_arith a);
/* g[i] = silu(g[i]) u[i] over one row of n. */
void sd_llm_silu_mul(float *g, const float *u, size_t n, sd_llm_arith a);
/* sc[0, n) = softmax(scale sc) in place (r16: the weights rounded to float16). */
void sd_llm_softmax(float *sc, size_t n, float scale, int r16, sd_llm_arith a);

#endif
