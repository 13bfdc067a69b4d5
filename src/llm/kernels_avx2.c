/* AVX2 + FMA + F16C kernels of the LLaMA decoder (compiled for those instructions only here; the
 * caller checks the CPU first): llama.cpp's 8-bit activation quantisation, 8-bit block products in
 * tiles (pmaddubsw), float tiles for F16/F32 weights, and the exact path's dot products.
 * Legend as in kernels.h; a tile is RM <= 4 input rows x RN <= 2 weight rows. */
#include "llm/kernels_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* Software prefetch distance of the float tiles' weight rows (bytes). */
#define PF_AHEAD 1024
/* The float tiles of a prompt pass (more than 4 input rows): 6 input rows x 2 weight rows (12
 * accumulators of the 16 registers), the inner dim in slices of 1024 (6 input rows of it, 24 KiB,
 * stay in L1), as in kernels_avx512.c. */
#define FTILE_RM 6
#define FTILE_KC 1024
/* One input row against the weights (frow1) streams them once from memory: prefetched into L2
 * 3 KiB ahead, as the AVX-512 frow1 (kernels_avx512.c). */
#define FROW1_PF_BYTES 3072

AVX2 static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- 8-bit activations: llama.cpp's AVX2 quantize_row_q8_0 ---------------------------------- */

AVX2 static void quant_avx2(const float *x, size_t m0, size_t m1, size_t K, sd_ggml_type t, sd_llm_work *w) {
    const size_t nb = K / SD_LLM_QK;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i neg_off = _mm256_set1_epi32(-sd_llm_corr_offset(t)), ones8 = _mm256_set1_epi8(1),
                  ones16 = _mm256_set1_epi16(1), perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t m = m0; m < m1; m++)
        for (size_t b = 0; b < nb; b++) {
            const float *xb = x + m * K + b * SD_LLM_QK;
            __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
                   v3 = _mm256_loadu_ps(xb + 24);
            __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                      _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
            __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float amax = _mm_cvtss_f32(m4);
            const float d16 = _cvtsh_ss(_cvtss_sh(amax / 127.0f, 0));
            const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
            /* round half to even (the MXCSR default), as _mm256_round_ps(_MM_ROUND_NEAREST) */
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
            __m256i q = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            q = _mm256_permutevar8x32_epi32(q, perm);
            _mm256_storeu_si256((__m256i *)(w->q + m * K + b * SD_LLM_QK), q);
            /* sums of 4 consecutive codes: |q| . 1 with q's signs, then pairs of pairs */
            __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
            _mm256_storeu_si256((__m256i *)(w->corr + (m * nb + b) * 8), _mm256_mullo_epi32(s4, neg_off));
            _mm256_storeu_ps(w->d8 + (m * nb + b) * 8, _mm256_set1_ps(d16));
        }
}

/* ---- float16-rounded activations (F16C, round to nearest even as sd_f32_to_f16) ---------- */

AVX2 static void round16_avx2(const float *x, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) out[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

/* ---- 8-bit products ----------------------------------------------------------------------- */

/* The RM x RN tile at input rows m0.. and weight rows n..: per block, the integer sums of
 * pmaddubsw (unsigned x signed bytes: |w| x sign(x, w) for Q8_0, the nibbles 0..15 x x for Q4_0
 * with the -8 sum(x) correction), converted to float and scaled by d_w d_x. */
AVX2 INLINE void qtile(const sd_wmat *W, const sd_llm_work *w, size_t m0, const int RM, int64_t n,
                       const int RN, float *y, const int q4) {
    const size_t K = w->Kp, nb = K / SD_LLM_QK, N = (size_t)W->N;
    const size_t bb = q4 ? 2 + SD_LLM_QK / 2 : 2 + SD_LLM_QK;
    const unsigned char *wr[2];
    for (int j = 0; j < RN; j++) wr[j] = (const unsigned char *)W->data + (size_t)(n + j) * W->row_bytes;
    const __m256i ones16 = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0F);
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 2
        for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        __m256i wq[2], wa[2];
        __m256 dw[2];
#pragma GCC unroll 2
        for (int j = 0; j < RN; j++) {
            const unsigned char *p = wr[j] + b * bb;
            dw[j] = _mm256_set1_ps(_cvtsh_ss(sd_llm_load_u16(p)));
            if (q4) {
                __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
                wq[j] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
            } else {
                wq[j] = _mm256_loadu_si256((const __m256i *)(p + 2));
                wa[j] = _mm256_sign_epi8(wq[j], wq[j]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++) {
            const size_t mb = (m0 + (size_t)i) * nb + b;
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(w->q + (m0 + (size_t)i) * K + b * SD_LLM_QK));
            const __m256 dx = _mm256_loadu_ps(w->d8 + mb * 8);
#pragma GCC unroll 2
            for (int j = 0; j < RN; j++) {
                __m256i t;
                if (q4) {
                    t = _mm256_madd_epi16(_mm256_maddubs_epi16(wq[j], xv), ones16);
                    t = _mm256_add_epi32(t, _mm256_loadu_si256((const __m256i *)(w->corr + mb * 8)));
                } else {
                    t = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[j], _mm256_sign_epi8(xv, wq[j])), ones16);
                }
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(dw[j], dx), acc[i][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 2
        for (int j = 0; j < RN; j++) y[(m0 + (size_t)i) * N + (size_t)n + (size_t)j] = hsum256(acc[i][j]);
}

#define QTILE_CASE(rm, rn)                                                  \
    case (rm) * 4 + (rn):                                                  \
        if (q4) qtile(W, w, m0, rm, n, rn, y, 1);                          \
        else qtile(W, w, m0, rm, n, rn, y, 0);                             \
        break;

AVX2 static void qtile_any(const sd_wmat *W, const sd_llm_work *w, size_t m0, int rm, int64_t n, int rn,
                           float *y, int q4) {
    switch (rm * 4 + rn) {
        QTILE_CASE(1, 1) QTILE_CASE(2, 1) QTILE_CASE(3, 1) QTILE_CASE(4, 1)
        QTILE_CASE(1, 2) QTILE_CASE(2, 2) QTILE_CASE(3, 2) QTILE_CASE(4, 2)
    }
}


typedef struct {
    const sd_wmat *W;
    const sd_llm_work *w;
    float *y;
} qtile_ctx;

AVX2 static void qtile_q4(const void *ctx, size_t m0, int rm, int64_t n, int rn) {
    const qtile_ctx *c = ctx;
    qtile_any(c->W, c->w, m0, rm, n, rn, c->y, 1);
}

AVX2 static void qtile_q8(const void *ctx, size_t m0, int rm, int64_t n, int rn) {
    const qtile_ctx *c = ctx;
    qtile_any(c->W, c->w, m0, rm, n, rn, c->y, 0);
}

AVX2 static void qrange_avx2(const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1, float *y) {
    const qtile_ctx c = {W, w, y};
    sd_llm_tiles(n0, n1, w->M, W->row_bytes, 2, W->type == SD_GGML_Q4_0 ? qtile_q4 : qtile_q8, &c);
}

/* ---- float products (F16 / F32 weights) ---------------------------------------------------- */

AVX2 INLINE __m256 load_w8(const void *row, size_t k, const int f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
    return _mm256_loadu_ps((const float *)row + k);
}

AVX2 INLINE float w_at(const void *row, size_t k, const int f16) {
    return f16 ? _cvtsh_ss(((const uint16_t *)row)[k]) : ((const float *)row)[k];
}

/* The RM x RN tile at input rows m0.. and weight rows n.., over the inner indices [k0, k1) (k0 a
 * multiple of 8): its sums are stored into y when k0 = 0, else added to what y holds. pf:
 * prefetch the weight rows PF_AHEAD bytes ahead (the first pass over a block's rows, the one that
 * brings them from memory). */
AVX2 INLINE void ftile(const sd_wmat *W, const float *x, size_t m0, const int RM, int64_t n, const int RN,
                       size_t k0, size_t k1, float *y, const int f16, const int pf) {
    const size_t K = (size_t)W->K, N = (size_t)W->N;
    const void *wr[2];
    for (int j = 0; j < RN; j++) wr[j] = (const char *)W->data + (size_t)(n + j) * W->row_bytes;
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 2
        for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
    size_t k = k0;
    for (; k + 8 <= k1; k += 8) {
        __m256 wv[2];
#pragma GCC unroll 2
        for (int j = 0; j < RN; j++) {
            if (pf) _mm_prefetch((const char *)wr[j] + (k << (2 - f16)) + PF_AHEAD, _MM_HINT_T0);
            wv[j] = load_w8(wr[j], k, f16);
        }
#pragma GCC unroll 6
        for (int i = 0; i < RM; i++) {
            const __m256 xv = _mm256_loadu_ps(x + (m0 + (size_t)i) * K + k);
#pragma GCC unroll 2
            for (int j = 0; j < RN; j++) acc[i][j] = _mm256_fmadd_ps(wv[j], xv, acc[i][j]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 2
        for (int j = 0; j < RN; j++) {
            float s = hsum256(acc[i][j]);
            for (size_t kk = k; kk < k1; kk++) s += w_at(wr[j], kk, f16) * x[(m0 + (size_t)i) * K + kk];
            float *yr = y + (m0 + (size_t)i) * N + (size_t)n + (size_t)j;
            *yr = k0 ? *yr + s : s;
        }
}

#define FTILE_CASE(rm, rn)                                                  \
    case (rm) * 4 + (rn):                                                  \
        if (f16) {                                                         \
            if (m0 == 0) ftile(W, x, m0, rm, n, rn, k0, k1, y, 1, 1);      \
            else ftile(W, x, m0, rm, n, rn, k0, k1, y, 1, 0);              \
        } else {                                                           \
            if (m0 == 0) ftile(W, x, m0, rm, n, rn, k0, k1, y, 0, 1);      \
            else ftile(W, x, m0, rm, n, rn, k0, k1, y, 0, 0);              \
        }                                                                  \
        break;

AVX2 static void ftile_any(const sd_wmat *W, const float *x, size_t m0, int rm, int64_t n, int rn, size_t k0,
                           size_t k1, float *y, int f16) {
    switch (rm * 4 + rn) {
        FTILE_CASE(1, 1) FTILE_CASE(2, 1) FTILE_CASE(3, 1) FTILE_CASE(4, 1) FTILE_CASE(5, 1) FTILE_CASE(6, 1)
        FTILE_CASE(1, 2) FTILE_CASE(2, 2) FTILE_CASE(3, 2) FTILE_CASE(4, 2) FTILE_CASE(5, 2) FTILE_CASE(6, 2)
    }
}

typedef struct {
    const sd_wmat *W;
    const float *x;
    float *y;
} ftile_ctx;

AVX2 static void ftile_f16(const void *ctx, size_t m0, int rm, int64_t n, int rn, size_t k0, size_t k1) {
    const ftile_ctx *c = ctx;
    ftile_any(c->W, c->x, m0, rm, n, rn, k0, k1, c->y, 1);
}

AVX2 static void ftile_f32(const void *ctx, size_t m0, int rm, int64_t n, int rn, size_t k0, size_t k1) {
    const ftile_ctx *c = ctx;
    ftile_any(c->W, c->x, m0, rm, n, rn, k0, k1, c->y, 0);
}

/* One input row (a generation step of one sequence) against weight rows [n0, n1), a weight row at
 * a time into four accumulators: the weights stream in file order, one sequential stream that the
 * hardware prefetchers follow best; the input row stays in L1, so the tiles' reuse of it buys
 * nothing here (bench/README.md, "LLM"). */
AVX2 INLINE void frow1(const sd_wmat *W, const float *x, int64_t n0, int64_t n1, float *y, const int f16) {
    const size_t K = (size_t)W->K;
    for (int64_t n = n0; n < n1; n++) {
        const void *wr = (const char *)W->data + (size_t)n * W->row_bytes;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= K; k += 32) {
            const char *pf = (const char *)wr + (k << (2 - f16)) + FROW1_PF_BYTES;
            _mm_prefetch(pf, _MM_HINT_T1);
            if (!f16) _mm_prefetch(pf + 64, _MM_HINT_T1);
            a0 = _mm256_fmadd_ps(load_w8(wr, k, f16), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(load_w8(wr, k + 8, f16), _mm256_loadu_ps(x + k + 8), a1);
            a2 = _mm256_fmadd_ps(load_w8(wr, k + 16, f16), _mm256_loadu_ps(x + k + 16), a2);
            a3 = _mm256_fmadd_ps(load_w8(wr, k + 24, f16), _mm256_loadu_ps(x + k + 24), a3);
        }
        for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(load_w8(wr, k, f16), _mm256_loadu_ps(x + k), a0);
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; k < K; k++) s += w_at(wr, k, f16) * x[k];
        y[n] = s;
    }
}

AVX2 static void frange_avx2(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1, float *y) {
    if (M == 1) {
        if (W->type == SD_GGML_F16) frow1(W, x, n0, n1, y, 1);
        else frow1(W, x, n0, n1, y, 0);
        return;
    }
    const ftile_ctx c = {W, x, y};
    sd_llm_tiles_k(n0, n1, M, W->row_bytes, FTILE_RM, 2, (size_t)W->K, FTILE_KC,
                   W->type == SD_GGML_F16 ? ftile_f16 : ftile_f32, &c);
}

/* ---- the exact path: quantised weights . float32 rows -------------------------------------- */

/* 8 int8 -> 8 floats. */
AVX2 static __m256 i8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* Lane sums of one block: 32 int8 weights (lo: elements 0..15, hi: 16..31) times x[32]. */
AVX2 static __m256 block_i8_dot(__m128i lo, __m128i hi, const float *x) {
    __m256 s = _mm256_mul_ps(i8x8_to_ps(lo), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(i8x8_to_ps(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(i8x8_to_ps(hi), _mm256_loadu_ps(x + 16), s);
    return _mm256_fmadd_ps(i8x8_to_ps(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s);
}

AVX2 static float dot_q8_0_avx2(const unsigned char *p, const float *x, int64_t K) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / SD_LLM_QK; b++, p += 2 + SD_LLM_QK, x += SD_LLM_QK) {
        __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
        __m128i q1 = _mm_loadu_si128((const __m128i *)(p + 18));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(sd_llm_load_u16(p))), block_i8_dot(q0, q1, x), acc);
    }
    return hsum256(acc);
}

AVX2 static float dot_q4_0_avx2(const unsigned char *p, const float *x, int64_t K) {
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / SD_LLM_QK; b++, p += 2 + SD_LLM_QK / 2, x += SD_LLM_QK) {
        __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(q, mask), eight);                    /* elements 0..15 */
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), mask), eight); /* 16..31 */
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(sd_llm_load_u16(p))), block_i8_dot(lo, hi, x), acc);
    }
    return hsum256(acc);
}

/* Few rows: each weight row's dot products straight from its blocks. Four or more: the row is
 * dequantised once into rowbuf and tiled with the rows as an F32 weight row. */
AVX2 static void xrange_avx2(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1, float *y,
                             float *rowbuf) {
    const size_t K = (size_t)W->K, N = (size_t)W->N;
    const sd_wmat row = {SD_GGML_F32, rowbuf, W->K, 1, K * sizeof(float), NULL};
    for (int64_t n = n0; n < n1; n++) {
        const unsigned char *p = (const unsigned char *)W->data + (size_t)n * W->row_bytes;
        if (M < 4) {
            for (size_t m = 0; m < M; m++)
                y[m * N + (size_t)n] = W->type == SD_GGML_Q8_0 ? dot_q8_0_avx2(p, x + m * K, W->K)
                                                               : dot_q4_0_avx2(p, x + m * K, W->K);
            continue;
        }
        sd_llm_get_row(W, n, rowbuf);
        float out[4];
        for (size_t m = 0; m < M; m += 4) {
            const int rm = M - m >= 4 ? 4 : (int)(M - m);
            /* a one-row "matrix" whose outputs land in out[i] (row stride 1) */
            ftile_any(&row, x + m * K, 0, rm, 0, 1, 0, K, out, 0);
            for (int i = 0; i < rm; i++) y[(m + (size_t)i) * N + (size_t)n] = out[i];
        }
    }
}

/* ---- attention pieces ---------------------------------------------------------------------- */

AVX2 static void dot_rows_avx2(const float *q, size_t ldq, size_t nq, const void *k, int d, int f16, float *out,
                               size_t ldo) {
    for (size_t r = 0; r < nq; r++) {
        const float *qr = q + r * ldq;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int i = 0;
        for (; i + 16 <= d; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + i), load_w8(k, (size_t)i, f16), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + i + 8), load_w8(k, (size_t)i + 8, f16), a1);
        }
        float s = hsum256(_mm256_add_ps(a0, a1));
        for (; i < d; i++) s += qr[i] * w_at(k, (size_t)i, f16);
        out[r * ldo] = s;
    }
}

AVX2 static void axpy_rows_avx2(float *o, size_t ldo, size_t nq, const float *p, size_t ldp, const void *v,
                                int d, int f16) {
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        const __m256 vv = load_w8(v, (size_t)i, f16);
        for (size_t r = 0; r < nq; r++) {
            float *orow = o + r * ldo + i;
            _mm256_storeu_ps(orow, _mm256_fmadd_ps(_mm256_set1_ps(p[r * ldp]), vv, _mm256_loadu_ps(orow)));
        }
    }
    for (; i < d; i++)
        for (size_t r = 0; r < nq; r++) o[r * ldo + (size_t)i] += p[r * ldp] * w_at(v, (size_t)i, f16);
}

/* ---- llama.cpp's elementwise exponentials ------------------------------------------------- */

/* e^x in 8 lanes as llama.cpp's AVX2 ggml_v_expf (ARM optimized-routines' expf; the scalar form and
 * the steps: kernels_portable.c). */
AVX2 static __m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f), z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 c = _mm256_cmp_ps(absn, _mm256_set1_ps(126.0f), _CMP_GT_OQ), u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    const __m256 plain = _mm256_fmadd_ps(j, k, k);
    if (!_mm256_movemask_ps(c)) return plain;
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 far = _mm256_cmp_ps(absn, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 scaled = _mm256_blendv_ps(plain, _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1), c);
    return _mm256_blendv_ps(scaled, _mm256_mul_ps(s1, s1), far);
}

AVX2 static void silu_mul_avx2(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), v_expf(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

AVX2 static double exp_sum_avx2(float *x, size_t n, float mx) {
    double sum = 0;
    const __m256 m = _mm256_set1_ps(mx);
    for (size_t i = 0; i < n; i += 8) {
        __m256 v;
        if (i + 8 <= n) {
            v = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
            _mm256_storeu_ps(x + i, v);
        } else { /* the padding's lanes are 0 */
            const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            v = _mm256_and_ps(v_expf(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), m)), _mm256_castsi256_ps(mask));
            _mm256_maskstore_ps(x + i, mask, v);
        }
        sum += (double)hsum256(v);
    }
    return sum;
}

static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

int sd_llm_avx2_kernels(sd_llm_kernel_set *k) {
    if (!cpu_has_f16c()) return 0;
    k->qrange = qrange_avx2;
    k->frange = frange_avx2;
    k->xrange = xrange_avx2;
    k->quant = quant_avx2;
    k->round16 = round16_avx2;
    k->dot_rows = dot_rows_avx2;
    k->axpy_rows = axpy_rows_avx2;
    k->silu_mul = silu_mul_avx2;
    k->exp_sum = exp_sum_avx2;
    return 1;
}

#else
int sd_llm_avx2_kernels(sd_llm_kernel_set *k) {
    (void)k;
    return 0;
}
#endif
