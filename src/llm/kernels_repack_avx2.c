/* AVX2 products of repacked Q8_0 / Q4_0 weights (kernels_repack.h) with the prepared 8-bit
 * activations: a tile is RM <= 4 input rows x one half of a group (8 weight rows, one 32-bit lane
 * each; 16 ymm registers hold no more). Per block and row, pmaddubsw of the weight bytes with the
 * broadcast 4 activation codes of each chunk:
 *   Q4_0: nibbles 0..15 x codes; the 8 chunks' 16-bit pair sums (each |.| <= 2 * 15 * 128) add up
 *         in 16 bits without overflow (<= 30720), then one pmaddwd, plus the block's correction
 *         -8 sum(x) (csum);
 *   Q8_0: |w| x sign(x, w) (the signed product directly, no correction), one pmaddwd per chunk;
 * then acc += float(sum) * (d_w d_x) for the 8 rows at once. Legend as in kernels.h. */
#include "llm/kernels_impl.h"
#include "llm/kernels_repack.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* 4 activation codes from p, in every lane. */
AVX2 INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* y[m0 + i, 16 g + 8 h + r] for i < RM and the rows of the half inside [n0, n1). */
AVX2 INLINE void ptile(const sd_wmat *W, const sd_llm_work *w, size_t m0, const int RM, int64_t g, int h,
                       int64_t n0, int64_t n1, float *y, const int q4) {
    const size_t K = w->Kp, nb = K / SD_LLM_QK, N = (size_t)W->N;
    const size_t QB = q4 ? 256 : 512;
    const unsigned char *qs =
        (const unsigned char *)W->packed + (size_t)g * sd_llm_pack_group_bytes(W->type, W->K) + 32 * (size_t)h;
    const uint16_t *dd = (const uint16_t *)(qs - 32 * (size_t)h + nb * QB) + 8 * h;
    const sd_llm_pack_rows rows = sd_llm_pack_rows_at(w, m0, RM);
    const int8_t *const *xq = rows.q;
    const int32_t *const *cs = rows.csum;
    const float *const *dx = rows.d8;
    __m256 acc[4];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++) acc[i] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (size_t b = 0; b < nb; b++, qs += QB) {
        __m256i s[4];
        if (q4) {
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++) s[i] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256i v = _mm256_load_si256((const __m256i *)(qs + 64 * j));
                const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
#pragma GCC unroll 4
                for (int i = 0; i < RM; i++) {
                    s[i] = _mm256_add_epi16(s[i], _mm256_maddubs_epi16(lo, bcast4(xq[i] + b * SD_LLM_QK + 4 * j)));
                    s[i] = _mm256_add_epi16(s[i], _mm256_maddubs_epi16(hi, bcast4(xq[i] + b * SD_LLM_QK + 16 + 4 * j)));
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++)
                s[i] = _mm256_add_epi32(_mm256_madd_epi16(s[i], ones), _mm256_set1_epi32(cs[i][b]));
        } else {
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++) s[i] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                const __m256i v = _mm256_load_si256((const __m256i *)(qs + 64 * k)), a = _mm256_sign_epi8(v, v);
#pragma GCC unroll 4
                for (int i = 0; i < RM; i++) {
                    const __m256i p =
                        _mm256_maddubs_epi16(a, _mm256_sign_epi8(bcast4(xq[i] + b * SD_LLM_QK + 4 * k), v));
                    s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(p, ones));
                }
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dd + b * SD_LLM_PACK_ROWS)));
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++)
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i]), _mm256_mul_ps(dw, _mm256_set1_ps(dx[i][b * 8])), acc[i]);
    }
    const int64_t r0 = g * SD_LLM_PACK_ROWS + 8 * h;
    for (int i = 0; i < RM; i++) {
        float out[8];
        _mm256_storeu_ps(out, acc[i]);
        for (int64_t r = r0 < n0 ? n0 : r0; r < r0 + 8 && r < n1; r++) y[(m0 + (size_t)i) * N + (size_t)r] = out[r - r0];
    }
}

#define PTILE_CASE(rm)                                               \
    case rm:                                                         \
        if (q4) ptile(W, w, m0, rm, g, h, n0, n1, y, 1);             \
        else ptile(W, w, m0, rm, g, h, n0, n1, y, 0);                \
        break;

AVX2 static void ptile_any(const sd_wmat *W, const sd_llm_work *w, size_t m0, int rm, int64_t g, int h, int64_t n0,
                           int64_t n1, float *y, int q4) {
    switch (rm) { PTILE_CASE(1) PTILE_CASE(2) PTILE_CASE(3) PTILE_CASE(4) }
}

/* Rows [n0, n1) of y: the group halves they touch, in blocks of groups that stay in L2 (256 KiB)
 * while every tile of up to 4 input rows passes over them (one block and one pass when M <= 4). */
AVX2 static void prange_avx2(const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1, float *y) {
    const int q4 = W->type == SD_GGML_Q4_0;
    const int64_t h0 = n0 / 8, h1 = (n1 + 7) / 8; /* halves of groups */
    const size_t M = w->M, gb = sd_llm_pack_group_bytes(W->type, W->K);
    int64_t HB = M <= 4 ? h1 - h0 : (int64_t)((512u << 10) / gb);
    if (HB < 1) HB = 1;
    for (int64_t hbk = h0; hbk < h1; hbk += HB) {
        const int64_t hend = hbk + HB < h1 ? hbk + HB : h1;
        for (size_t m = 0; m < M; m += 4) {
            const int rm = M - m >= 4 ? 4 : (int)(M - m);
            for (int64_t hh = hbk; hh < hend; hh++) ptile_any(W, w, m, rm, hh / 2, (int)(hh % 2), n0, n1, y, q4);
        }
    }
}

int sd_llm_avx2_packed_kernels(sd_llm_kernel_set *k) {
    k->prange = prange_avx2;
    return 1;
}

#else
int sd_llm_avx2_packed_kernels(sd_llm_kernel_set *k) {
    (void)k;
    return 0;
}
#endif
