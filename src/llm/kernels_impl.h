/* The per-ISA pieces behind kernels.h: each file (kernels_portable.c, kernels_avx2.c,
 * kernels_avx512.c) provides the same set, and kernels.c picks one at run time.
 *
 * A "range" function computes y[m, n] (row stride N) for all prepared rows m < M and the weight
 * rows n in [n0, n1): one chunk of a product (kernels.c: n0 a multiple of 16, n1 - n0 a multiple of
 * 16 or n1 = N; a thread may run several chunks of one product, not necessarily adjacent). */
#ifndef SD_LLM_KERNELS_IMPL_H
#define SD_LLM_KERNELS_IMPL_H

#include "llm/kernels.h"

#define SD_LLM_QK 32 /* elements of a Q8_0 / Q4_0 block */

static inline uint16_t sd_llm_load_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* 8-bit weights (Q8_0, Q4_0) x the prepared 8-bit activations. */
typedef void (*sd_llm_qrange_fn)(const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1, float *y);
/* F16 or F32 weights x float32 rows x[M, K]. */
typedef void (*sd_llm_frange_fn)(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1,
                                 float *y);
/* Q8_0 or Q4_0 weights x float32 rows (the exact path); rowbuf [K] is the thread's scratch. */
typedef void (*sd_llm_xrange_fn)(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1,
                                 float *y, float *rowbuf);
/* Rows x[M, K] -> the work's 8-bit blocks for weights of type t (q, d8, corr). */
typedef void (*sd_llm_quant_fn)(const float *x, size_t m0, size_t m1, size_t K, sd_ggml_type t,
                                sd_llm_work *w);

/* out[i] = x[i] rounded to float16 and back, for n values (the activations of F16 weights in
 * llama.cpp's arithmetic); the same bits as sd_f32_to_f16 / sd_f16_to_f32. */
typedef void (*sd_llm_round16_fn)(const float *x, float *out, size_t n);

/* Attention pieces: out[i ldo] = q_i . k for nq rows q_i = q + i ldq; o_i += p[i ldp] v for nq rows
 * o_i = o + i ldo. k and v hold d float32 values, or float16 ones when f16. */
typedef void (*sd_llm_dot_rows_fn)(const float *q, size_t ldq, size_t nq, const void *k, int d, int f16,
                                   float *out, size_t ldo);
typedef void (*sd_llm_axpy_rows_fn)(float *o, size_t ldo, size_t nq, const float *p, size_t ldp,
                                    const void *v, int d, int f16);

/* llama.cpp's vectorised elementwise pieces (its ggml_vec_silu_f32 and ggml_vec_soft_max_f32, whose
 * exponential is ggml_v_expf, the ARM optimized-routines expf, in the variant llama.cpp's build
 * compiles for the same instructions): rows in chunks of the vector width from their start, the
 * exponential of the vector variant on every full chunk.
 * silu_mul: g[i] = silu(g[i]) u[i] over one row of n (a partial last chunk takes libm's expf, as in
 * llama.cpp). exp_sum: x[i] = e^(x[i] - mx) over one row of n, returning the sum of the chunks'
 * float sums (the lanes added in the vector's order) in double; the row is taken as llama.cpp sees
 * it, padded with masked keys (exponential 0) to whole chunks (its KV cache's padding of 32). */
typedef void (*sd_llm_silu_mul_fn)(float *g, const float *u, size_t n);
typedef double (*sd_llm_exp_sum_fn)(float *x, size_t n, float mx);

typedef struct {
    sd_llm_qrange_fn qrange;
    sd_llm_qrange_fn prange; /* the same over repacked weights (W->packed); NULL: the set has none */
    sd_llm_frange_fn frange;
    sd_llm_xrange_fn xrange;
    sd_llm_quant_fn quant;
    sd_llm_round16_fn round16;
    sd_llm_dot_rows_fn dot_rows;
    sd_llm_axpy_rows_fn axpy_rows;
    sd_llm_silu_mul_fn silu_mul;
    sd_llm_exp_sum_fn exp_sum;
} sd_llm_kernel_set;

/* One tile: input rows [m0, m0 + rm) x weight rows [n, n + rn), over the whole inner dim. */
typedef void (*sd_llm_tile_fn)(const void *ctx, size_t m0, int rm, int64_t n, int rn);

/* Weight rows of a block that stays in L2 (256 KiB of weights), a multiple of RN. */
static inline int64_t sd_llm_block_rows(size_t row_bytes, int RN) {
    const int64_t NB = (int64_t)((256u << 10) / (row_bytes ? row_bytes : 1));
    return NB < RN ? RN : NB / RN * RN;
}

/* Walks a thread's weight rows [n0, n1) in blocks that stay in L2 while every tile of up to 4
 * input rows passes over them, in tiles of up to RN weight rows. */
static inline void sd_llm_tiles(int64_t n0, int64_t n1, size_t M, size_t row_bytes, int RN, sd_llm_tile_fn tile,
                                const void *ctx) {
    const int64_t NB = sd_llm_block_rows(row_bytes, RN);
    for (int64_t nbk = n0; nbk < n1; nbk += NB) {
        const int64_t nend = nbk + NB < n1 ? nbk + NB : n1;
        for (size_t m = 0; m < M; m += 4) {
            const int rm = M - m >= 4 ? 4 : (int)(M - m);
            for (int64_t n = nbk; n < nend; n += RN) tile(ctx, m, rm, n, nend - n >= RN ? RN : (int)(nend - n));
        }
    }
}

/* A tile over the inner indices [k0, k1) only: it stores its sums into y when k0 = 0 and adds
 * them to y's otherwise. */
typedef void (*sd_llm_tile_k_fn)(const void *ctx, size_t m0, int rm, int64_t n, int rn, size_t k0, size_t k1);

/* sd_llm_tiles with tiles of up to RM input rows and the inner dim K cut into chunks of KC (a
 * multiple of 16): within a block of weight rows, the chunk of a tile's RM input rows (RM KC
 * floats) stays in L1 while every tile of the block's weight rows passes over it, where whole rows
 * (RM K floats, 96 KiB for 6 rows at K = 4096) would come from L2 again for every tile.
 * Up to 4 input rows (generation steps of up to 4 sequences) make one tile of 4 rows over whole
 * rows instead: no other tile would reuse a chunk, and whole rows keep the weights' streams long
 * (AVX-512 F16, 4 sequences: 1.69-1.71 steps/s with chunks, 1.75-1.78 without). */
static inline void sd_llm_tiles_k(int64_t n0, int64_t n1, size_t M, size_t row_bytes, int RM, int RN, size_t K,
                                  size_t KC, sd_llm_tile_k_fn tile, const void *ctx) {
    if (M <= 4) RM = 4, KC = K;
    const int64_t NB = sd_llm_block_rows(row_bytes, RN);
    for (int64_t nbk = n0; nbk < n1; nbk += NB) {
        const int64_t nend = nbk + NB < n1 ? nbk + NB : n1;
        for (size_t k0 = 0; k0 < K; k0 += KC) {
            const size_t k1 = K - k0 > KC ? k0 + KC : K;
            for (size_t m = 0; m < M; m += (size_t)RM) {
                const int rm = M - m >= (size_t)RM ? RM : (int)(M - m);
                for (int64_t n = nbk; n < nend; n += RN)
                    tile(ctx, m, rm, n, nend - n >= RN ? RN : (int)(nend - n), k0, k1);
            }
        }
    }
}

/* The kernels in use (kernels.c). */
const sd_llm_kernel_set *sd_llm_kernels(void);

void sd_llm_portable_kernels(sd_llm_kernel_set *k);
/* 0 when the build has no such kernels (not x86-64 GCC/clang). */
int sd_llm_avx2_kernels(sd_llm_kernel_set *k);
int sd_llm_avx512_kernels(sd_llm_kernel_set *k);
/* Sets k->prange (kernels_repack_*.c); 0 when the build has no such kernels. */
int sd_llm_avx512_packed_kernels(sd_llm_kernel_set *k);
int sd_llm_avx2_packed_kernels(sd_llm_kernel_set *k);

/* The block correction of the 8-bit products: 8 for Q4_0 (nibbles 0..15 stand for -8..7), 128 for
 * Q8_0 (weights offset to 0..255 for the unsigned-times-signed instructions). */
static inline int32_t sd_llm_corr_offset(sd_ggml_type t) { return t == SD_GGML_Q4_0 ? 8 : 128; }

#endif
