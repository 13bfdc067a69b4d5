/* AVX-512 VNNI products of repacked Q8_0 / Q4_0 weights (kernels_repack.h) with the prepared
 * 8-bit activations: a tile is RM <= 8 input rows x one group of 16 weight rows, one 32-bit lane
 * per weight row. Per block, each row's integer sum starts from the block's correction (csum) and
 * takes 8 vpdpbusd (weights as unsigned bytes: Q4_0 nibbles 0..15, Q8_0 codes + 128, times the
 * broadcast 4 activation codes of a chunk), then acc += float(sum) * (d_w d_x): 16 rows' blocks
 * scaled by one instruction. Legend as in kernels.h. */
#include "llm/kernels_impl.h"
#include "llm/kernels_repack.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* Software prefetch of the weight codes, bytes ahead. A product of at most 8 input rows
 * (generation) streams its weights once from memory: prefetched into L2 (prefetcht1, which holds
 * many more misses in flight than the L1 fill buffers that a prefetcht0 waits for) 3 KiB ahead (4
 * KiB, the same offset within a page as the loads, ran slower). Measured on a Sapphire Rapids Xeon,
 * 7B Q4_0 generation on 1 thread: 3.9 -> 4.2-4.3 tokens/s, 2 threads 6.8 -> 7.0-7.2 (Q8_0 3.8 ->
 * 4.0). A prompt pass reuses blocks of groups from L2 and keeps prefetcht0 2 KiB ahead, which its
 * first pass over a block measured best. */
#define PF_STREAM_BYTES 3072
#define PF_BYTES 2048

/* 4 activation codes from p, in every lane. */
AVX512 INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* y[m0 + i, 16 g + r] for i < RM and the rows r of the group inside [n0, n1). */
AVX512 INLINE void ptile(const sd_wmat *W, const sd_llm_work *w, size_t m0, const int RM, int64_t g, int64_t n0,
                         int64_t n1, float *y, const int q4, const int stream) {
    const size_t K = w->Kp, nb = K / SD_LLM_QK, N = (size_t)W->N;
    const size_t QB = q4 ? 256 : 512;
    const unsigned char *qs = (const unsigned char *)W->packed + (size_t)g * sd_llm_pack_group_bytes(W->type, W->K);
    const uint16_t *dd = (const uint16_t *)(qs + nb * QB);
    const sd_llm_pack_rows rows = sd_llm_pack_rows_at(w, m0, RM);
    const int8_t *const *xq = rows.q;
    const int32_t *const *cs = rows.csum;
    const float *const *dx = rows.d8;
    __m512 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++) acc[i] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    for (size_t b = 0; b < nb; b++, qs += QB) {
        /* the weights a few blocks ahead (the stream runs past a group's end into the next) */
        if (stream) {
#pragma GCC unroll 8
            for (size_t l = 0; l < QB; l += 64) _mm_prefetch((const char *)qs + PF_STREAM_BYTES + l, _MM_HINT_T1);
            if (b % 2 == 0) _mm_prefetch((const char *)(dd + b * SD_LLM_PACK_ROWS) + PF_STREAM_BYTES / 8, _MM_HINT_T1);
        } else {
#pragma GCC unroll 8
            for (size_t l = 0; l < QB; l += 64) _mm_prefetch((const char *)qs + PF_BYTES + l, _MM_HINT_T0);
            if (b % 2 == 0) _mm_prefetch((const char *)(dd + b * SD_LLM_PACK_ROWS) + PF_BYTES / 8, _MM_HINT_T0);
        }
        __m512i s[8];
#pragma GCC unroll 8
        for (int i = 0; i < RM; i++) s[i] = _mm512_set1_epi32(cs[i][b]);
        if (q4) {
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m512i v = _mm512_load_si512((const void *)(qs + 64 * j));
                const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
#pragma GCC unroll 8
                for (int i = 0; i < RM; i++) {
                    s[i] = _mm512_dpbusd_epi32(s[i], lo, bcast4(xq[i] + b * SD_LLM_QK + 4 * j));
                    s[i] = _mm512_dpbusd_epi32(s[i], hi, bcast4(xq[i] + b * SD_LLM_QK + 16 + 4 * j));
                }
            }
        } else {
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                const __m512i v = _mm512_xor_si512(_mm512_load_si512((const void *)(qs + 64 * k)), flip);
#pragma GCC unroll 8
                for (int i = 0; i < RM; i++) s[i] = _mm512_dpbusd_epi32(s[i], v, bcast4(xq[i] + b * SD_LLM_QK + 4 * k));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(dd + b * SD_LLM_PACK_ROWS)));
#pragma GCC unroll 8
        for (int i = 0; i < RM; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i]), _mm512_mul_ps(dw, _mm512_set1_ps(dx[i][b * 8])), acc[i]);
    }
    const int64_t r0 = g * SD_LLM_PACK_ROWS, lo = n0 > r0 ? n0 - r0 : 0,
                  hi = n1 - r0 < SD_LLM_PACK_ROWS ? n1 - r0 : SD_LLM_PACK_ROWS;
    const __mmask16 mask = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++) _mm512_mask_storeu_ps(y + (m0 + (size_t)i) * N + (size_t)r0, mask, acc[i]);
}

#define PTILE_CASE(rm)                                               \
    case rm:                                                         \
        if (q4) ptile(W, w, m0, rm, g, n0, n1, y, 1, stream);        \
        else ptile(W, w, m0, rm, g, n0, n1, y, 0, stream);           \
        break;

AVX512 static void ptile_any(const sd_wmat *W, const sd_llm_work *w, size_t m0, int rm, int64_t g, int64_t n0,
                             int64_t n1, float *y, int q4, int stream) {
    switch (rm) { PTILE_CASE(1) PTILE_CASE(2) PTILE_CASE(3) PTILE_CASE(4) PTILE_CASE(5) PTILE_CASE(6) PTILE_CASE(7) PTILE_CASE(8) }
}

/* Rows [n0, n1) of y: the groups they touch, in blocks of groups that stay in L2 (256 KiB) while
 * every tile of up to 8 input rows passes over them (one block and one pass when M <= 8). */
AVX512 static void prange_avx512(const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1, float *y) {
    const int q4 = W->type == SD_GGML_Q4_0;
    const int64_t g0 = n0 / SD_LLM_PACK_ROWS, g1 = (n1 + SD_LLM_PACK_ROWS - 1) / SD_LLM_PACK_ROWS;
    const size_t M = w->M, gb = sd_llm_pack_group_bytes(W->type, W->K);
    int64_t GB = M <= 8 ? g1 - g0 : (int64_t)((256u << 10) / gb);
    if (GB < 1) GB = 1;
    for (int64_t gbk = g0; gbk < g1; gbk += GB) {
        const int64_t gend = gbk + GB < g1 ? gbk + GB : g1;
        for (size_t m = 0; m < M; m += 8) {
            const int rm = M - m >= 8 ? 8 : (int)(M - m);
            for (int64_t g = gbk; g < gend; g++) ptile_any(W, w, m, rm, g, n0, n1, y, q4, M <= 8);
        }
    }
}

int sd_llm_avx512_packed_kernels(sd_llm_kernel_set *k) {
    k->prange = prange_avx512;
    return 1;
}

#else
int sd_llm_avx512_packed_kernels(sd_llm_kernel_set *k) {
    (void)k;
    return 0;
}
#endif
