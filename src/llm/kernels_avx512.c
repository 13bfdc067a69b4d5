/* AVX-512 VNNI kernels of the LLaMA decoder (AVX512F/BW/VL + VNNI; the caller checks the CPU):
 * 8-bit block products with vpdpbusd over two blocks per instruction, and float tiles for F16/F32
 * weights. The activation quantisation and the exact path are the AVX2 ones. Legend as in
 * kernels.h; a tile is RM <= 4 input rows x RN <= 4 weight rows. */
#include "llm/kernels_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* Software prefetch distance of the float tiles' weight rows (bytes). */
#define PF_AHEAD 1024
/* One input row against the weights (frow1) streams them once from memory: prefetched into L2
 * (prefetcht1) 3 KiB ahead. Measured on a Sapphire Rapids Xeon, 7B F16 generation on 2 threads:
 * 1.85-1.88 -> 2.17-2.19 tokens/s (2 KiB: 2.05-2.07, 6 KiB: 2.08-2.10; see kernels_repack_avx512.c
 * for the same choice there). */
#define FROW1_PF_BYTES 3072
/* The float tiles of a prompt pass (more than 4 input rows): 6 input rows x 4 weight rows (24
 * accumulators: each float16 weight vector converted once serves 6 FMAs), the inner dim in
 * chunks of 1024 (6 input rows of it, 24 KiB, stay in L1). Measured on a Sapphire Rapids Xeon, 7B
 * F16 pp64 on 2 threads: 4 x 4 tiles 16.2-16.7 tokens/s, 6 x 4 17.3-18.4, 8 x 3 13.4-15.0;
 * chunks of 512: 16.4, 2048: 17.6. */
#define FTILE_KC 1024
#define FTILE_RM 6
#define FTILE_RN 4

AVX512 static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- 8-bit products ----------------------------------------------------------------------- */

/* Weight blocks b and b + 1 of a row as 64 unsigned bytes (Q4_0: the nibbles 0..15, element
 * order; Q8_0: w + 128) and their scales, each repeated over the block's 8 lanes. */
AVX512 INLINE __m512i load_w2(const unsigned char *p, size_t bb, const int q4, __m512 *dw) {
    const __m512 d0 = _mm512_set1_ps(_cvtsh_ss(sd_llm_load_u16(p)));
    const __m256 d1 = _mm256_set1_ps(_cvtsh_ss(sd_llm_load_u16(p + bb)));
    *dw = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(d0), _mm256_castps_pd(d1), 1));
    if (q4) {
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(p + bb + 2));
        /* 128-bit lanes [q0, q0, q1, q1]; lanes 1 and 3 take the high nibbles */
        __m512i v = _mm512_inserti32x4(_mm512_castsi128_si512(q0), q0, 1);
        v = _mm512_inserti32x4(_mm512_inserti32x4(v, q1, 2), q1, 3);
        v = _mm512_mask_blend_epi64(0xCC, v, _mm512_srli_epi16(v, 4));
        return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
    }
    const __m256i a0 = _mm256_loadu_si256((const __m256i *)(p + 2));
    const __m256i a1 = _mm256_loadu_si256((const __m256i *)(p + bb + 2));
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a0), a1, 1), _mm512_set1_epi8((char)0x80));
}

/* The RM x RN tile at input rows m0.. and weight rows n..: per pair of blocks one vpdpbusd
 * starting from the activations' correction (-c sum q_x), so the integer sums are the signed
 * block products; then converted to float and scaled by d_w d_x. An odd last block goes through
 * the 256-bit form. */
AVX512 INLINE void qtile(const sd_wmat *W, const sd_llm_work *w, size_t m0, const int RM, int64_t n,
                         const int RN, float *y, const int q4) {
    const size_t K = w->Kp, nb = K / SD_LLM_QK, N = (size_t)W->N;
    const size_t bb = q4 ? 2 + SD_LLM_QK / 2 : 2 + SD_LLM_QK;
    const unsigned char *wr[4];
    for (int j = 0; j < RN; j++) wr[j] = (const unsigned char *)W->data + (size_t)(n + j) * W->row_bytes;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m512i wq[4];
        __m512 dw[4];
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) wq[j] = load_w2(wr[j] + b * bb, bb, q4, &dw[j]);
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++) {
            const size_t mb = (m0 + (size_t)i) * nb + b;
            const __m512i xv = _mm512_loadu_si512(w->q + (m0 + (size_t)i) * K + b * SD_LLM_QK);
            const __m512 dx = _mm512_loadu_ps(w->d8 + mb * 8);
            const __m512i cr = _mm512_loadu_si512(w->corr + mb * 8);
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                const __m512i t = _mm512_dpbusd_epi32(cr, wq[j], xv);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dw[j], dx), acc[i][j]);
            }
        }
    }
    float tail[4][4] = {{0}};
    if (b < nb) {
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            const unsigned char *p = wr[j] + b * bb;
            const __m256 dwj = _mm256_set1_ps(_cvtsh_ss(sd_llm_load_u16(p)));
            __m256i wq;
            if (q4) {
                const __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
                wq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
            } else {
                wq = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), _mm256_set1_epi8((char)0x80));
            }
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++) {
                const size_t mb = (m0 + (size_t)i) * nb + b;
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(w->q + (m0 + (size_t)i) * K + b * SD_LLM_QK));
                const __m256i t = _mm256_dpbusd_epi32(_mm256_loadu_si256((const __m256i *)(w->corr + mb * 8)), wq, xv);
                const __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(dwj, _mm256_loadu_ps(w->d8 + mb * 8)));
                tail[i][j] = hsum256(s);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++)
            y[(m0 + (size_t)i) * N + (size_t)n + (size_t)j] = _mm512_reduce_add_ps(acc[i][j]) + tail[i][j];
}
#define QTILE_CASE(rm, rn)                                                  \
    case (rm) * 8 + (rn):                                                  \
        if (q4) qtile(W, w, m0, rm, n, rn, y, 1);                          \
        else qtile(W, w, m0, rm, n, rn, y, 0);                             \
        break;

AVX512 static void qtile_any(const sd_wmat *W, const sd_llm_work *w, size_t m0, int rm, int64_t n, int rn,
                             float *y, int q4) {
    switch (rm * 8 + rn) {
        QTILE_CASE(1, 1) QTILE_CASE(2, 1) QTILE_CASE(3, 1) QTILE_CASE(4, 1)
        QTILE_CASE(1, 2) QTILE_CASE(2, 2) QTILE_CASE(3, 2) QTILE_CASE(4, 2)
        QTILE_CASE(1, 3) QTILE_CASE(2, 3) QTILE_CASE(3, 3) QTILE_CASE(4, 3)
        QTILE_CASE(1, 4) QTILE_CASE(2, 4) QTILE_CASE(3, 4) QTILE_CASE(4, 4)
    }
}


typedef struct {
    const sd_wmat *W;
    const sd_llm_work *w;
    float *y;
} qtile_ctx;

AVX512 static void qtile_q4(const void *ctx, size_t m0, int rm, int64_t n, int rn) {
    const qtile_ctx *c = ctx;
    qtile_any(c->W, c->w, m0, rm, n, rn, c->y, 1);
}

AVX512 static void qtile_q8(const void *ctx, size_t m0, int rm, int64_t n, int rn) {
    const qtile_ctx *c = ctx;
    qtile_any(c->W, c->w, m0, rm, n, rn, c->y, 0);
}

AVX512 static void qrange_avx512(const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1, float *y) {
    const qtile_ctx c = {W, w, y};
    sd_llm_tiles(n0, n1, w->M, W->row_bytes, 4, W->type == SD_GGML_Q4_0 ? qtile_q4 : qtile_q8, &c);
}

/* ---- float products (F16 / F32 weights) ---------------------------------------------------- */

/* 16 weights from k (fewer under mask: the rest 0). */
AVX512 INLINE __m512 load_w16(const void *row, size_t k, __mmask16 mask, const int f16) {
    if (f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + k));
    return _mm512_maskz_loadu_ps(mask, (const float *)row + k);
}

/* 16 weights from k, all present. */
AVX512 INLINE __m512 load_w16_full(const void *row, size_t k, const int f16) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k)));
    return _mm512_loadu_ps((const float *)row + k);
}

/* The four sums of a0..a3's lanes, in that order. */
AVX512 INLINE __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    /* per 128-bit lane: [a0, a1, a0, a1] and [a2, a3, a2, a3] partial sums, then [a0, a1, a2, a3] */
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 v = _mm256_add_ps(_mm512_castps512_ps256(u),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
}

/* One step of a tile: the 16 inner indices from k (those under mask unless full) of RN weight rows
 * wr and RM input rows from x (row stride K) into acc; pf: prefetch the weight rows PF_AHEAD
 * bytes ahead. */
AVX512 INLINE void ftile_step(__m512 acc[6][4], const void *const wr[4], const float *x, size_t K, const int RM,
                              const int RN, size_t k, __mmask16 mask, const int full, const int f16, const int pf) {
    __m512 wv[4];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
        if (pf) _mm_prefetch((const char *)wr[j] + (k << (2 - f16)) + PF_AHEAD, _MM_HINT_T0);
        wv[j] = full ? load_w16_full(wr[j], k, f16) : load_w16(wr[j], k, mask, f16);
    }
#pragma GCC unroll 6
    for (int i = 0; i < RM; i++) {
        const float *xi = x + (size_t)i * K + k;
        const __m512 xv = full ? _mm512_loadu_ps(xi) : _mm512_maskz_loadu_ps(mask, xi);
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) acc[i][j] = _mm512_fmadd_ps(wv[j], xv, acc[i][j]);
    }
}

/* The RM x RN tile at input rows m0.. and weight rows n.., over the inner indices [k0, k1) (k0 a
 * multiple of 16): its sums are stored into y when k0 = 0, else added to what y holds. pf:
 * prefetch the weight rows PF_AHEAD bytes ahead (the first pass over a block's rows, the one that
 * brings them from memory). */
AVX512 INLINE void ftile(const sd_wmat *W, const float *x, size_t m0, const int RM, int64_t n, const int RN,
                         size_t k0, size_t k1, float *y, const int f16, const int pf) {
    const size_t K = (size_t)W->K, N = (size_t)W->N;
    const void *wr[4];
    for (int j = 0; j < RN; j++) wr[j] = (const char *)W->data + (size_t)(n + j) * W->row_bytes;
    __m512 acc[6][4]; /* all 4 columns zeroed: hsum4 below takes 4 */
#pragma GCC unroll 6
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
    /* whole vectors with plain loads (a masked load costs a vector-port operation beside the
     * FMAs, measured: 44% of the FMA peak with masked loads throughout), then the masked rest */
    size_t k = k0;
    for (; k + 16 <= k1; k += 16) ftile_step(acc, wr, x + m0 * K, K, RM, RN, k, 0xFFFF, 1, f16, pf);
    if (k < k1) ftile_step(acc, wr, x + m0 * K, K, RM, RN, k, (__mmask16)((1u << (k1 - k)) - 1), 0, f16, 0);
#pragma GCC unroll 6
    for (int i = 0; i < RM; i++) {
        float *yr = y + (m0 + (size_t)i) * N + (size_t)n;
        __m128 s = hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        if (RN == 4) {
            _mm_storeu_ps(yr, k0 ? _mm_add_ps(_mm_loadu_ps(yr), s) : s);
        } else {
            float t[4];
            _mm_storeu_ps(t, s);
            for (int j = 0; j < RN; j++) yr[j] = k0 ? yr[j] + t[j] : t[j];
        }
    }
}

#define FTILE_CASE(rm, rn)                                                  \
    case (rm) * 8 + (rn):                                                  \
        if (f16) {                                                         \
            if (m0 == 0) ftile(W, x, m0, rm, n, rn, k0, k1, y, 1, 1);      \
            else ftile(W, x, m0, rm, n, rn, k0, k1, y, 1, 0);              \
        } else {                                                           \
            if (m0 == 0) ftile(W, x, m0, rm, n, rn, k0, k1, y, 0, 1);      \
            else ftile(W, x, m0, rm, n, rn, k0, k1, y, 0, 0);              \
        }                                                                  \
        break;

AVX512 static void ftile_any(const sd_wmat *W, const float *x, size_t m0, int rm, int64_t n, int rn, size_t k0,
                             size_t k1, float *y, int f16) {
    switch (rm * 8 + rn) {
        FTILE_CASE(1, 1) FTILE_CASE(2, 1) FTILE_CASE(3, 1) FTILE_CASE(4, 1)
        FTILE_CASE(1, 2) FTILE_CASE(2, 2) FTILE_CASE(3, 2) FTILE_CASE(4, 2)
        FTILE_CASE(1, 3) FTILE_CASE(2, 3) FTILE_CASE(3, 3) FTILE_CASE(4, 3)
        FTILE_CASE(1, 4) FTILE_CASE(2, 4) FTILE_CASE(3, 4) FTILE_CASE(4, 4)
        FTILE_CASE(5, 1) FTILE_CASE(6, 1) FTILE_CASE(5, 2) FTILE_CASE(6, 2)
        FTILE_CASE(5, 3) FTILE_CASE(6, 3) FTILE_CASE(5, 4) FTILE_CASE(6, 4)
    }
}

typedef struct {
    const sd_wmat *W;
    const float *x;
    float *y;
} ftile_ctx;

AVX512 static void ftile_f16(const void *ctx, size_t m0, int rm, int64_t n, int rn, size_t k0, size_t k1) {
    const ftile_ctx *c = ctx;
    ftile_any(c->W, c->x, m0, rm, n, rn, k0, k1, c->y, 1);
}

AVX512 static void ftile_f32(const void *ctx, size_t m0, int rm, int64_t n, int rn, size_t k0, size_t k1) {
    const ftile_ctx *c = ctx;
    ftile_any(c->W, c->x, m0, rm, n, rn, k0, k1, c->y, 0);
}

/* One input row (a generation step of one sequence) against weight rows [n0, n1), a weight row at
 * a time into four accumulators: the weights stream in file order, one sequential stream that the
 * hardware prefetchers follow best; the input row stays in L1, so the tiles' reuse of it buys
 * nothing here (measured: bench/README.md, "LLM"). */
AVX512 INLINE void frow1(const sd_wmat *W, const float *x, int64_t n0, int64_t n1, float *y, const int f16) {
    const size_t K = (size_t)W->K;
    for (int64_t n = n0; n < n1; n++) {
        const void *wr = (const char *)W->data + (size_t)n * W->row_bytes;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 64 <= K; k += 64) {
            const char *pf = (const char *)wr + (k << (2 - f16)) + FROW1_PF_BYTES;
            _mm_prefetch(pf, _MM_HINT_T1);
            _mm_prefetch(pf + 64, _MM_HINT_T1);
            if (!f16) {
                _mm_prefetch(pf + 128, _MM_HINT_T1);
                _mm_prefetch(pf + 192, _MM_HINT_T1);
            }
            a0 = _mm512_fmadd_ps(load_w16_full(wr, k, f16), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(load_w16_full(wr, k + 16, f16), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(load_w16_full(wr, k + 32, f16), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(load_w16_full(wr, k + 48, f16), _mm512_loadu_ps(x + k + 48), a3);
        }
        for (; k < K; k += 16) {
            const __mmask16 mask = K - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (K - k)) - 1);
            a0 = _mm512_fmadd_ps(load_w16(wr, k, mask, f16), _mm512_maskz_loadu_ps(mask, x + k), a0);
        }
        y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

AVX512 static void frange_avx512(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1, float *y) {
    if (M == 1) {
        if (W->type == SD_GGML_F16) frow1(W, x, n0, n1, y, 1);
        else frow1(W, x, n0, n1, y, 0);
        return;
    }
    const ftile_ctx c = {W, x, y};
    sd_llm_tiles_k(n0, n1, M, W->row_bytes, FTILE_RM, FTILE_RN, (size_t)W->K, FTILE_KC,
                   W->type == SD_GGML_F16 ? ftile_f16 : ftile_f32, &c);
}

/* ---- llama.cpp's elementwise exponentials ------------------------------------------------- */

/* e^x in 16 lanes as llama.cpp's AVX-512 ggml_v_expf: the AVX2 variant's reduction and polynomial
 * (kernels_portable.c), with 1 added inside the polynomial and 2^n applied by vscalefps, which
 * rounds differently from the AVX2 variant's k + j k; |n| > 192 gives 0 or infinity. */
AVX512 static __m512 v_expf16(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f), z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __mmask16 far = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (!far) return res;
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                            _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
    return _mm512_mask_blend_ps(far, res, alt);
}

AVX512 static void silu_mul_avx512(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 s = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), v_expf16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

AVX512 static double exp_sum_avx512(float *x, size_t n, float mx) {
    double sum = 0;
    const __m512 m = _mm512_set1_ps(mx);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        /* the padding's lanes are 0 */
        const __m512 v = _mm512_maskz_mov_ps(mask, v_expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), m)));
        _mm512_mask_storeu_ps(x + i, mask, v);
        sum += (double)_mm512_reduce_add_ps(v);
    }
    return sum;
}

int sd_llm_avx512_kernels(sd_llm_kernel_set *k) {
    k->silu_mul = silu_mul_avx512;
    k->exp_sum = exp_sum_avx512;
    k->qrange = qrange_avx512;
    k->frange = frange_avx512;
    return 1;
}

#else
int sd_llm_avx512_kernels(sd_llm_kernel_set *k) {
    (void)k;
    return 0;
}
#endif
