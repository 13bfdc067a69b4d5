/* The decoder's matrix and attention kernels against the scalar oracles, for every kernel set this
 * CPU runs (portable, AVX2, AVX-512 VNNI): exact float32 products with each weight type; the
 * 8-bit products of llama.cpp's arithmetic against the double-precision 8-bit oracle; the 8-bit
 * activation codes identical in every set and equal to llama.cpp's quantize_row_q8_0 on a hand
 * case; float16-rounded activations for F16 weights. Shapes cover partial tiles (M = 1..9 input
 * rows, N = 37 weight rows) and an odd number of blocks (K = 96), and matrices of several of the
 * threads' chunks (the last one partial). Weights repacked into 16-row groups (kernels_repack.h)
 * give the oracle's values in every kernel set with products over them, through partial groups,
 * thread shares that start inside a group and a loaded model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/threads.h"
#include "harness.h"
#include "io/half.h"
#include "llm/kernels.h"
#include "llm/kernels_impl.h"
#include "llm/kernels_repack.h"
#include "llm/llama.h"
#include "llm_fixture.h"

enum { N = 37, KQ = 96, KF = 100, MMAX = 9 };

static unsigned rng_state = 12345u;
static unsigned rnd(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}
static float frand(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

/* A random weight matrix of type t, rows x K (blocks with random scales and codes). */
static void *make_weights_rows(sd_ggml_type t, int64_t K, size_t rows, sd_wmat *W) {
    size_t rb = sd_ggml_row_size(t, K);
    unsigned char *data = malloc(rb * rows);
    if (!data) return NULL;
    for (size_t r = 0; r < rows; r++) {
        unsigned char *row = data + r * rb;
        if (t == SD_GGML_F32) {
            for (int64_t k = 0; k < K; k++) ((float *)row)[k] = frand();
        } else if (t == SD_GGML_F16) {
            for (int64_t k = 0; k < K; k++) {
                uint16_t h = sd_f32_to_f16(frand());
                memcpy(row + 2 * k, &h, 2);
            }
        } else {
            size_t bb = t == SD_GGML_Q8_0 ? 34 : 18;
            for (int64_t b = 0; b < K / 32; b++) {
                unsigned char *blk = row + (size_t)b * bb;
                uint16_t d = sd_f32_to_f16(0.01f + 0.02f * (frand() + 1.0f));
                memcpy(blk, &d, 2);
                for (size_t i = 2; i < bb; i++) blk[i] = (unsigned char)rnd();
                if (t == SD_GGML_Q8_0)
                    for (size_t i = 2; i < bb; i++)
                        if (blk[i] == 0x80) blk[i] = 0x81; /* -128 is not a Q8_0 code */
            }
        }
    }
    *W = (sd_wmat){t, data, K, (int64_t)rows, rb, NULL};
    return data;
}

static void *make_weights(sd_ggml_type t, int64_t K, sd_wmat *W) { return make_weights_rows(t, K, N, W); }

static void fill_x(float *x, size_t n, int variant) {
    for (size_t i = 0; i < n; i++) x[i] = sinf(0.37f * (float)i + (float)variant) * (1.0f + (float)(i % 7));
    x[5] = 0;
    if (n > 64)
        for (size_t i = 32; i < 64; i++) x[i] = 0; /* an all-zero block */
}

static void test_products(void) {
    const sd_ggml_type types[] = {SD_GGML_F32, SD_GGML_F16, SD_GGML_Q8_0, SD_GGML_Q4_0};
    const size_t Ms[] = {1, 2, 3, 4, 5, 8, 9};
    float x[MMAX * KF], xr[MMAX * KF], y[MMAX * N], yr[MMAX * N];
    sd_llm_work w;
    if (sd_llm_work_init(&w, MMAX, KF, SD_LLM_ARITH_LLAMACPP)) {
        sd_test_fail(__FILE__, __LINE__, "work");
        return;
    }
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = SD_LLM_ISA_PORTABLE; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        double worst_exact = 0, worst_8bit = 0, worst_f16 = 0;
        for (int ti = 0; ti < 4; ti++) {
            sd_wmat W;
            const int64_t K = types[ti] == SD_GGML_Q8_0 || types[ti] == SD_GGML_Q4_0 ? KQ : KF;
            void *data = make_weights(types[ti], K, &W);
            for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
                const size_t M = Ms[mi];
                fill_x(x, M * (size_t)K, (int)mi);
                /* exact: float32 activations */
                w.arith = SD_LLM_ARITH_EXACT;
                sd_llm_matmul(&W, x, M, y, &w);
                sd_llm_matmul_ref(&W, x, M, yr);
                double e = scaled_err(y, yr, M * N);
                if (e > worst_exact) worst_exact = e;
                EXPECT(e < 1e-6, "%s exact %s M=%zu: %g", sd_llm_kernels_name(), sd_ggml_type_name(W.type), M, e);
                /* llama.cpp's arithmetic */
                w.arith = SD_LLM_ARITH_LLAMACPP;
                sd_llm_matmul(&W, x, M, y, &w);
                if (W.type == SD_GGML_Q8_0 || W.type == SD_GGML_Q4_0) {
                    sd_llm_matmul_q8_ref(&W, &w, yr);
                    e = scaled_err(y, yr, M * N);
                    if (e > worst_8bit) worst_8bit = e;
                } else {
                    for (size_t i = 0; i < M * (size_t)K; i++)
                        xr[i] = W.type == SD_GGML_F16 ? sd_f16_to_f32(sd_f32_to_f16(x[i])) : x[i];
                    sd_llm_matmul_ref(&W, xr, M, yr);
                    e = scaled_err(y, yr, M * N);
                    if (W.type == SD_GGML_F16 && e > worst_f16) worst_f16 = e;
                }
                EXPECT(e < 1e-6, "%s llama.cpp %s M=%zu: %g", sd_llm_kernels_name(), sd_ggml_type_name(W.type), M, e);
            }
            free(data);
        }
        printf("  %s: exact %.1e, 8-bit %.1e, f16-rounded %.1e (max scaled error against the oracles)\n",
               sd_llm_kernels_name(), worst_exact, worst_8bit, worst_f16);
        sd_llm_kernels_limit(old);
    }
    sd_llm_work_free(&w);
}

/* The float16 rounding of the activations (F16 weights) gives the bits of sd_f32_to_f16 /
 * sd_f16_to_f32 in every kernel set: ordinary values, ties, the overflow edge, subnormals, zeros,
 * infinities and NaN; a count that is not a multiple of the vector width. */
static void test_round16_sets_agree(void) {
    enum { NV = 1003 };
    static float x[NV], out[NV];
    const float edge[] = {65504.0f, 65519.99f, 65520.0f, -65520.0f, 6.0e-8f, 2.98e-8f, 2.9802322e-8f, 1.0e-8f,
                          -0.0f, 0.0f, 6.1035156e-5f, 6.1e-5f, 1.0009766f, 1.0004883f, 1.0014648f, INFINITY,
                          -INFINITY, NAN};
    for (size_t i = 0; i < NV; i++) x[i] = frand() * (float)(1u << (i % 24)) * 1e-6f;
    memcpy(x, edge, sizeof edge);
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = SD_LLM_ISA_PORTABLE; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        sd_llm_kernels()->round16(x, out, NV);
        int bad = 0;
        for (size_t i = 0; i < NV; i++) {
            const float want = sd_f16_to_f32(sd_f32_to_f16(x[i]));
            if (isnan(want) ? !isnan(out[i]) : memcmp(&want, &out[i], sizeof want)) {
                if (!bad)
                    sd_test_fail(__FILE__, __LINE__, "%s: round16(%.9g) = %.9g, want %.9g", sd_llm_kernels_name(),
                                 (double)x[i], (double)out[i], (double)want);
                bad = 1;
            }
        }
        sd_llm_kernels_limit(old);
    }
}

/* The 8-bit codes, scales and block corrections are the same in every kernel set. */
static void test_quantiser_sets_agree(void) {
    enum { M = 3, K = 256 };
    static float x[M * K];
    fill_x(x, M * K, 3);
    x[100] = 127.5f / 127.0f * 2.0f; /* values that land on .5 after scaling exercise the rounding */
    sd_llm_work w[3];
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = 0; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        sd_llm_work_init(&w[isa], M, K, SD_LLM_ARITH_LLAMACPP);
        sd_llm_prepare(&w[isa], x, M, K, SD_GGML_Q4_0);
        sd_llm_kernels_limit(old);
    }
    for (int isa = 1; isa <= (int)best; isa++) {
        EXPECT(!memcmp(w[isa].q, w[0].q, M * K) && !memcmp(w[isa].d8, w[0].d8, M * K / 32 * 8 * sizeof(float)) &&
                   !memcmp(w[isa].corr, w[0].corr, M * K / 32 * 8 * sizeof(int32_t)),
               "kernel set %d quantises differently", isa);
    }
    for (int isa = 0; isa <= (int)best; isa++) sd_llm_work_free(&w[isa]);
}

/* llama.cpp's quantize_row_q8_0 on one block worked by hand: amax 127 -> d = 1, id = 1; the
 * halves round to even (2.5 -> 2, -1.5 -> -2, 0.5 -> 0, 3.5 -> 4), not away from zero. */
static void test_quantiser_hand_case(void) {
    float x[32] = {0};
    x[0] = 127.0f;
    x[1] = -100.25f;
    x[2] = 2.5f;
    x[3] = -1.5f;
    x[4] = 0.5f;
    x[5] = 3.5f;
    x[6] = 126.6f;
    sd_llm_work w;
    sd_llm_work_init(&w, 1, 32, SD_LLM_ARITH_LLAMACPP);
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = 0; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        sd_llm_prepare(&w, x, 1, 32, SD_GGML_Q8_0);
        const int8_t want[8] = {127, -100, 2, -2, 0, 4, 127, 0};
        EXPECT(!memcmp(w.q, want, 8), "%s codes %d %d %d %d %d %d %d", sd_llm_kernels_name(), w.q[0], w.q[1],
               w.q[2], w.q[3], w.q[4], w.q[5], w.q[6]);
        EXPECT(w.d8[0] == 1.0f && w.d8[7] == 1.0f, "scale %g", w.d8[0]);
        EXPECT(w.corr[0] == -128 * (127 - 100 + 2 - 2) && w.corr[1] == -128 * (0 + 4 + 127 + 0), "corrections %d %d",
               w.corr[0], w.corr[1]);
        sd_llm_kernels_limit(old);
    }
    sd_llm_work_free(&w);
}

/* Attention pieces: dot_rows and axpy_rows against loops, float32 and float16 keys. */
static void test_attention_pieces(void) {
    enum { NQ = 5, D = 24 };
    float q[NQ * D], k32[D], out[NQ * 3], o[NQ * D], o_ref[NQ * D], p[NQ * 2];
    uint16_t k16[D];
    for (int i = 0; i < NQ * D; i++) q[i] = frand();
    for (int i = 0; i < D; i++) {
        k32[i] = frand();
        k16[i] = sd_f32_to_f16(k32[i]);
    }
    for (int i = 0; i < NQ * 2; i++) p[i] = frand();
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = 0; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        const sd_llm_kernel_set *ks = sd_llm_kernels();
        for (int f16 = 0; f16 < 2; f16++) {
            ks->dot_rows(q, D, NQ, f16 ? (const void *)k16 : k32, D, f16, out, 3);
            for (int r = 0; r < NQ; r++) {
                double s = 0;
                for (int i = 0; i < D; i++) s += (double)q[r * D + i] * (f16 ? sd_f16_to_f32(k16[i]) : k32[i]);
                EXPECT(fabs(out[r * 3] - s) < 1e-5, "dot_rows %s f16=%d row %d: %g vs %g", sd_llm_kernels_name(), f16, r,
                       out[r * 3], s);
            }
            for (int i = 0; i < NQ * D; i++) o[i] = o_ref[i] = 0.5f * q[i];
            ks->axpy_rows(o, D, NQ, p, 2, f16 ? (const void *)k16 : k32, D, f16);
            for (int r = 0; r < NQ; r++)
                for (int i = 0; i < D; i++) o_ref[r * D + i] += p[r * 2] * (f16 ? sd_f16_to_f32(k16[i]) : k32[i]);
            EXPECT(scaled_err(o, o_ref, NQ * D) < 1e-6, "axpy_rows %s f16=%d", sd_llm_kernels_name(), f16);
        }
        sd_llm_kernels_limit(old);
    }
}

/* Three matrices in one region (sd_llm_matmul_many) give what three products give, for 8-bit and
 * float weights and row counts whose shares straddle the matrices. */
static void test_many(void) {
    const sd_ggml_type types[] = {SD_GGML_Q8_0, SD_GGML_F16};
    float x[5 * KQ], y[3][5 * N], yr[5 * N];
    sd_llm_work w;
    if (sd_llm_work_init(&w, 5, KQ, SD_LLM_ARITH_LLAMACPP)) return;
    fill_x(x, 5 * KQ, 1);
    for (int ti = 0; ti < 2; ti++) {
        sd_wmat W[3];
        void *data[3];
        for (int i = 0; i < 3; i++) data[i] = make_weights(types[ti], KQ, &W[i]);
        W[1].N = 5; /* matrices of 37, 5 and 37 rows */
        const sd_wmat *Wp[3] = {&W[0], &W[1], &W[2]};
        float *const yp[3] = {y[0], y[1], y[2]};
        for (size_t M = 1; M <= 5; M += 4) {
            sd_llm_prepare(&w, x, M, KQ, types[ti]);
            sd_llm_matmul_many(Wp, yp, 3, &w);
            for (int i = 0; i < 3; i++) {
                sd_llm_matmul(&W[i], x, M, yr, &w);
                EXPECT(!memcmp(y[i], yr, M * (size_t)W[i].N * sizeof(float)), "%s matrix %d M=%zu differs",
                       sd_ggml_type_name(types[ti]), i, M);
            }
        }
        for (int i = 0; i < 3; i++) free(data[i]);
    }
    /* mixed types (Q4_0, F16, Q8_0): one after the other, each from the caller's rows */
    sd_wmat W[3];
    void *data[3] = {make_weights(SD_GGML_Q4_0, KQ, &W[0]), make_weights(SD_GGML_F16, KQ, &W[1]),
                     make_weights(SD_GGML_Q8_0, KQ, &W[2])};
    const sd_wmat *Wp[3] = {&W[0], &W[1], &W[2]};
    float *const yp[3] = {y[0], y[1], y[2]};
    sd_llm_prepare(&w, x, 5, KQ, SD_GGML_Q4_0);
    sd_llm_matmul_many(Wp, yp, 3, &w);
    for (int i = 0; i < 3; i++) {
        sd_llm_matmul(&W[i], x, 5, yr, &w);
        EXPECT(!memcmp(y[i], yr, 5 * N * sizeof(float)), "mixed types: matrix %d differs", i);
        free(data[i]);
    }
    sd_llm_work_free(&w);
}

/* llama.cpp's vectorised SiLU gate and softmax exponentials (the kernel sets' silu_mul, exp_sum):
 * within 2 ulp of libm's expf (ggml_v_expf's documented bound is 1.45 + 0.5 ulp) over the whole
 * range, including the rescaled |n| > 126 and flushed |n| > 192 ones; the partial last chunk
 * (libm for silu, padding 0 for the sum); the portable set gives the AVX2 set's bits (both are
 * llama.cpp's AVX2 variant). */
static void test_exponentials(void) {
    enum { NE = 203 }; /* not a multiple of 8 or 16 */
    float x[NE], u[NE], g[3][NE], e[3][NE];
    double sums[3];
    for (int i = 0; i < NE; i++) {
        x[i] = -110.0f + 200.0f * (float)i / (NE - 1) + 0.01f * frand(); /* -110 .. 90 */
        u[i] = 1.0f + 0.5f * frand();
    }
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = 0; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        const sd_llm_kernel_set *ks = sd_llm_kernels();
        memcpy(g[isa], x, sizeof x);
        ks->silu_mul(g[isa], u, NE);
        memcpy(e[isa], x, sizeof x);
        for (int i = 0; i < NE; i++) e[isa][i] = x[i] > 0 ? x[i] - 200.0f : x[i]; /* softmax: x - max <= 0 */
        sums[isa] = ks->exp_sum(e[isa], NE, 0.0f);
        double ref_sum = 0;
        for (int i = 0; i < NE; i++) {
            const float xi = x[i] > 0 ? x[i] - 200.0f : x[i], ex = expf(xi);
            const float silu = x[i] / (1.0f + expf(-x[i])) * u[i];
            ref_sum += ex;
            EXPECT(fabsf(e[isa][i] - ex) <= 2.0f * (nextafterf(ex, INFINITY) - ex), "%s exp(%g) = %.9g vs %.9g",
                   sd_llm_kernels_name(), xi, e[isa][i], ex);
            EXPECT(fabsf(g[isa][i] - silu) <= 4.0f * (nextafterf(fabsf(silu), INFINITY) - fabsf(silu)) || fabsf(silu) < 1e-30f,
                   "%s silu(%g) u = %.9g vs %.9g", sd_llm_kernels_name(), x[i], g[isa][i], silu);
        }
        EXPECT(fabs(sums[isa] - ref_sum) <= 1e-6 * ref_sum, "%s exp sum %.9g vs %.9g", sd_llm_kernels_name(), sums[isa], ref_sum);
        sd_llm_kernels_limit(old);
    }
    if (best >= SD_LLM_ISA_AVX2)
        EXPECT(!memcmp(g[0], g[1], sizeof g[0]) && !memcmp(e[0], e[1], sizeof e[0]) && sums[0] == sums[1],
               "the portable set differs from the AVX2 set");
}

/* Matrices of several threads' chunks (kernels.c: ~256 KiB each, the last partial): every kernel
 * set and weight type against the oracles, one input row (F16/F32: the row-at-a-time kernel) and
 * five, alone and two in one region (sd_llm_matmul_many, bit-identical to the single products). */
static void test_chunks(void) {
    enum { KC = 256, NC = 4000, MC = 5 };
    const sd_ggml_type types[] = {SD_GGML_F32, SD_GGML_F16, SD_GGML_Q8_0, SD_GGML_Q4_0};
    float *x = malloc(MC * KC * sizeof *x), *xr = malloc(MC * KC * sizeof *xr);
    float *y = malloc(MC * NC * sizeof *y), *yr = malloc(MC * NC * sizeof *yr), *y2 = malloc(MC * NC * sizeof *y2);
    sd_llm_work w;
    if (!x || !xr || !y || !yr || !y2 || sd_llm_work_init(&w, MC, KC, SD_LLM_ARITH_LLAMACPP)) {
        sd_test_fail(__FILE__, __LINE__, "memory");
        free(x), free(xr), free(y), free(yr), free(y2);
        return;
    }
    fill_x(x, MC * KC, 3);
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = SD_LLM_ISA_PORTABLE; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        for (int ti = 0; ti < 4; ti++) {
            sd_wmat W;
            void *data = make_weights_rows(types[ti], KC, NC, &W);
            if (!data) continue;
            EXPECT((size_t)NC * W.row_bytes > ((size_t)512 << 10), "%s: %d rows are fewer than 3 chunks",
                   sd_ggml_type_name(W.type), NC);
            for (size_t M = 1; M <= MC; M += MC - 1) {
                sd_llm_matmul(&W, x, M, y, &w);
                if (W.type == SD_GGML_Q8_0 || W.type == SD_GGML_Q4_0) {
                    sd_llm_matmul_q8_ref(&W, &w, yr);
                } else {
                    for (size_t i = 0; i < M * KC; i++)
                        xr[i] = W.type == SD_GGML_F16 ? sd_f16_to_f32(sd_f32_to_f16(x[i])) : x[i];
                    sd_llm_matmul_ref(&W, xr, M, yr);
                }
                double e = scaled_err(y, yr, M * NC);
                EXPECT(e < 1e-6, "%s %s M=%zu, %d rows: %g", sd_llm_kernels_name(), sd_ggml_type_name(W.type), M,
                       NC, e);
                /* two in one region: the same matrix twice, its second copy ending mid-chunk */
                sd_wmat W2 = W;
                W2.N = NC - 17;
                const sd_wmat *Wp[2] = {&W, &W2};
                float *const yp[2] = {yr, y2};
                sd_llm_prepare(&w, x, M, KC, W.type);
                sd_llm_matmul_many(Wp, yp, 2, &w);
                EXPECT(!memcmp(y, yr, M * NC * sizeof *y), "%s %s M=%zu: many != one", sd_llm_kernels_name(),
                       sd_ggml_type_name(W.type), M);
                int same = 1;
                for (size_t m = 0; m < M; m++)
                    same &= !memcmp(y + m * NC, y2 + m * (size_t)W2.N, (size_t)W2.N * sizeof *y);
                EXPECT(same, "%s %s M=%zu: the shorter matrix differs", sd_llm_kernels_name(),
                       sd_ggml_type_name(W.type), M);
            }
            free(data);
        }
        sd_llm_kernels_limit(old);
    }
    sd_llm_work_free(&w);
    free(x), free(xr), free(y), free(yr), free(y2);
}

/* Float weights with rows longer than the float tiles' inner-dim chunk (1024 in kernels_avx2.c and
 * kernels_avx512.c), ending mid-vector, with 5 and 8 input rows (chunked tiles; 2 rows take whole
 * rows): the chunks' sums added up in y, against the oracle, every kernel set. */
static void test_long_rows(void) {
    enum { KL = 2 * 1024 + 100, ML = 9 };
    const sd_ggml_type types[] = {SD_GGML_F32, SD_GGML_F16};
    float *x = malloc(ML * KL * sizeof *x), *xr = malloc(ML * KL * sizeof *xr);
    float *y = malloc(ML * N * sizeof *y), *yr = malloc(ML * N * sizeof *yr);
    sd_llm_work w;
    if (!x || !xr || !y || !yr || sd_llm_work_init(&w, ML, KL, SD_LLM_ARITH_LLAMACPP)) {
        sd_test_fail(__FILE__, __LINE__, "memory");
        free(x), free(xr), free(y), free(yr);
        return;
    }
    fill_x(x, ML * KL, 5);
    const sd_llm_isa best = sd_llm_isa_detect();
    for (int isa = SD_LLM_ISA_PORTABLE; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        for (int ti = 0; ti < 2; ti++) {
            sd_wmat W;
            void *data = make_weights(types[ti], KL, &W);
            if (!data) continue;
            for (size_t M = 2; M <= ML; M += 3) {
                sd_llm_matmul(&W, x, M, y, &w);
                for (size_t i = 0; i < M * KL; i++)
                    xr[i] = W.type == SD_GGML_F16 ? sd_f16_to_f32(sd_f32_to_f16(x[i])) : x[i];
                sd_llm_matmul_ref(&W, xr, M, yr);
                const double e = scaled_err(y, yr, M * N);
                EXPECT(e < 1e-6, "%s %s M=%zu, K=%d: %g", sd_llm_kernels_name(), sd_ggml_type_name(W.type), M, KL, e);
            }
            free(data);
        }
        sd_llm_kernels_limit(old);
    }
    sd_llm_work_free(&w);
    free(x), free(xr), free(y), free(yr);
}

/* Repacked Q8_0 / Q4_0 weights against the 8-bit oracle and the unpacked kernels: M up to 17 (tiles
 * of 8 rows and more than one tile), N = 37 (two groups and 5 rows of a third), K = 96 (3 blocks);
 * a range [5, 29) writes only its rows; three matrices in one region give what three products do. */
static void test_packed(void) {
    enum { MP = 17 };
    const sd_ggml_type types[] = {SD_GGML_Q8_0, SD_GGML_Q4_0};
    const size_t Ms[] = {1, 2, 3, 4, 5, 8, 9, 17};
    static float x[MP * KQ], y[MP * N], yr[MP * N], yu[MP * N], yp[3][MP * N];
    sd_llm_work w;
    if (sd_llm_work_init(&w, MP, KQ, SD_LLM_ARITH_LLAMACPP)) {
        sd_test_fail(__FILE__, __LINE__, "work");
        return;
    }
    const sd_llm_isa best = sd_llm_isa_detect();
    int sets = 0;
    for (int isa = SD_LLM_ISA_PORTABLE; isa <= (int)best; isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        if (!sd_llm_packed_in_use()) {
            sd_llm_kernels_limit(old);
            continue;
        }
        sets++;
        double worst = 0;
        for (int ti = 0; ti < 2; ti++) {
            sd_wmat W[3], P[3];
            void *data[3];
            for (int i = 0; i < 3; i++) {
                data[i] = make_weights(types[ti], KQ, &W[i]);
                P[i] = W[i];
            }
            W[1].N = P[1].N = 5;
            for (int i = 0; i < 3; i++) EXPECT(!sd_llm_repack(&P[i], 0) && P[i].packed, "repack %d", i);
            EXPECT(sd_llm_packed_bytes(&P[0]) == 3 * sd_llm_pack_group_bytes(types[ti], KQ), "packed bytes %zu",
                   sd_llm_packed_bytes(&P[0]));
            for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
                const size_t M = Ms[mi];
                fill_x(x, M * KQ, (int)mi);
                sd_llm_prepare(&w, x, M, KQ, types[ti]);
                sd_llm_matmul_prepared(&P[0], &w, y);
                sd_llm_matmul_q8_ref(&W[0], &w, yr);
                double e = scaled_err(y, yr, M * N);
                if (e > worst) worst = e;
                EXPECT(e < 1e-6, "%s packed %s M=%zu: %g", sd_llm_kernels_name(), sd_ggml_type_name(types[ti]), M, e);
                sd_llm_matmul_prepared(&W[0], &w, yu);
                EXPECT(scaled_err(y, yu, M * N) < 1e-6, "%s packed vs unpacked %s M=%zu", sd_llm_kernels_name(),
                       sd_ggml_type_name(types[ti]), M);
                /* one thread's share that starts and ends inside groups */
                for (size_t i = 0; i < M * N; i++) yu[i] = -1e30f;
                sd_llm_kernels()->prange(&P[0], &w, 5, 29, yu);
                int ok = 1;
                for (size_t m = 0; m < M; m++)
                    for (size_t n = 0; n < N; n++)
                        ok &= n >= 5 && n < 29 ? yu[m * N + n] == y[m * N + n] : yu[m * N + n] == -1e30f;
                EXPECT(ok, "%s packed range [5, 29) %s M=%zu", sd_llm_kernels_name(), sd_ggml_type_name(types[ti]), M);
                /* matrices of 37, 5 and 37 rows in one region: the shares straddle them */
                const sd_wmat *Pp[3] = {&P[0], &P[1], &P[2]};
                float *const ypp[3] = {yp[0], yp[1], yp[2]};
                sd_llm_matmul_many(Pp, ypp, 3, &w);
                for (int i = 0; i < 3; i++) {
                    sd_llm_matmul_prepared(&P[i], &w, y);
                    EXPECT(!memcmp(yp[i], y, M * (size_t)P[i].N * sizeof(float)), "%s packed matrix %d M=%zu differs",
                           sd_ggml_type_name(types[ti]), i, M);
                }
            }
            for (int i = 0; i < 3; i++) {
                sd_llm_unpack(&P[i]);
                free(data[i]);
            }
        }
        printf("  %s: repacked 8-bit %.1e (max scaled error against the oracle)\n", sd_llm_kernels_name(), worst);
        sd_llm_kernels_limit(old);
    }
    if (!sets) printf("  no kernel set with repacked products on this CPU\n");
    sd_llm_work_free(&w);
}

/* A Q8_0 / Q4_0 model is repacked at load when the kernels have products over repacked weights
 * (every product matrix, the bytes of the stored ones) and not otherwise, nor when it is loaded for
 * the exact arithmetic. */
static void test_load_repacks(void) {
    const char *files[] = {DIR "tiny_q8_0.gguf", DIR "tiny_q4_0.gguf", DIR "tiny_f16.gguf"};
    for (int f = 0; f < 3; f++) {
        sd_llama *m = NULL;
        sd_error err = {0};
        if (sd_llama_load(files[f], &m, &err)) {
            sd_test_fail(__FILE__, __LINE__, err.msg);
            continue;
        }
        double sec = -1;
        const size_t packed = sd_llama_packed_bytes(m, &sec);
        if (f < 2 && sd_llm_packed_in_use())
            EXPECT(packed >= sd_llama_weight_bytes(m) && packed < sd_llama_weight_bytes(m) * 2 && sec >= 0,
                   "%s: %zu bytes repacked of %zu", files[f], packed, sd_llama_weight_bytes(m));
        else
            EXPECT(packed == 0, "%s: %zu bytes repacked", files[f], packed);
        sd_llama_free(m);
    }
    /* loaded for the exact arithmetic: nothing repacked */
    sd_llama *m = NULL;
    sd_error err = {0};
    if (sd_llama_load_for(files[0], SD_LLM_ARITH_EXACT, &m, &err) == SD_OK) {
        EXPECT(sd_llama_packed_bytes(m, NULL) == 0, "exact: %zu bytes repacked", sd_llama_packed_bytes(m, NULL));
        sd_llama_free(m);
    } else {
        sd_test_fail(__FILE__, __LINE__, err.msg);
    }
}

int main(void) {
    sd_threads_set(2);
    printf("  kernel sets on this CPU: up to %s\n",
           (const char *[]){"portable", "avx2+fma+f16c", "avx512-vnni"}[sd_llm_isa_detect()]);
    sd_test_run("llm_kernels_products", test_products);
    sd_test_run("llm_kernels_quantiser_sets_agree", test_quantiser_sets_agree);
    sd_test_run("llm_kernels_round16_sets_agree", test_round16_sets_agree);
    sd_test_run("llm_kernels_quantiser_hand_case", test_quantiser_hand_case);
    sd_test_run("llm_kernels_attention_pieces", test_attention_pieces);
    sd_test_run("llm_kernels_many_in_one_region", test_many);
    sd_test_run("llm_kernels_exponentials", test_exponentials);
    sd_test_run("llm_kernels_chunks", test_chunks);
    sd_test_run("llm_kernels_long_rows", test_long_rows);
    sd_test_run("llm_kernels_repacked_products", test_packed);
    sd_test_run("llm_kernels_load_repacks", test_load_repacks);
    return sd_test_finish();
}
