/* Decoder matrix kernels; see kernels.h. Legend: M input rows, K inner dim, N weight rows. */
#include "core/omp.h"
#include "llm/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gemm.h"
#include "io/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SD_HAVE_X86_SIMD 1
#include <cpuid.h>
#else
#define SD_HAVE_X86_SIMD 0
#endif

static int force_portable = 0;

int sd_llm_kernels_force_portable(int on) {
    int old = force_portable;
    force_portable = on;
    return old;
}

#if SD_HAVE_X86_SIMD
/* F16C through cpuid: clang 14's __builtin_cpu_supports does not know "f16c". */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static int use_simd(void) {
#if SD_HAVE_X86_SIMD
    return !force_portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
    return 0;
#endif
}

const char *sd_llm_kernels_name(void) { return use_simd() ? "avx2+fma+f16c" : "portable"; }

static uint16_t load_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ---- portable dot products: one weight row . x, four partial sums ------------------------- */

static float dot_f32(const void *row, const float *x, int64_t K) {
    const float *w = row;
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= K; k += 4)
        for (int j = 0; j < 4; j++) s[j] += w[k + j] * x[k + j];
    for (; k < K; k++) s[0] += w[k] * x[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_f16(const void *row, const float *x, int64_t K) {
    const unsigned char *w = row;
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= K; k += 4)
        for (int j = 0; j < 4; j++) s[j] += sd_f16_to_f32(load_u16(w + 2 * (k + j))) * x[k + j];
    for (; k < K; k++) s[0] += sd_f16_to_f32(load_u16(w + 2 * k)) * x[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_q8_0(const void *row, const float *x, int64_t K) {
    const unsigned char *p = row;
    float sum = 0;
    for (int64_t b = 0; b < K / SD_GGML_QK; b++, p += 2 + SD_GGML_QK, x += SD_GGML_QK) {
        const int8_t *q = (const int8_t *)(p + 2);
        float s[4] = {0, 0, 0, 0};
        for (int j = 0; j < SD_GGML_QK; j += 4)
            for (int i = 0; i < 4; i++) s[i] += (float)q[j + i] * x[j + i];
        sum += sd_f16_to_f32(load_u16(p)) * ((s[0] + s[1]) + (s[2] + s[3]));
    }
    return sum;
}

static float dot_q4_0(const void *row, const float *x, int64_t K) {
    const unsigned char *p = row;
    float sum = 0;
    for (int64_t b = 0; b < K / SD_GGML_QK; b++, p += 2 + SD_GGML_QK / 2, x += SD_GGML_QK) {
        const unsigned char *q = p + 2;
        float s0 = 0, s1 = 0;
        for (int j = 0; j < SD_GGML_QK / 2; j++) {
            s0 += (float)((q[j] & 0x0F) - 8) * x[j];
            s1 += (float)((q[j] >> 4) - 8) * x[j + SD_GGML_QK / 2];
        }
        sum += sd_f16_to_f32(load_u16(p)) * (s0 + s1);
    }
    return sum;
}

/* ---- AVX2 + FMA + F16C dot products ---------------------------------------------------- */

#if SD_HAVE_X86_SIMD
#define SIMD __attribute__((target("avx2,fma,f16c")))

SIMD static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SIMD static float dot_f32_avx2(const void *row, const float *x, int64_t K) {
    const float *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k + 8), _mm256_loadu_ps(x + k + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; k < K; k++) s += w[k] * x[k];
    return s;
}

SIMD static float dot_f16_avx2(const void *row, const float *x, int64_t K) {
    const uint16_t *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k + 8)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + k + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; k < K; k++) s += _cvtsh_ss(w[k]) * x[k];
    return s;
}

/* 8 int8 -> 8 floats. */
SIMD static __m256 i8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* Lane sums of one block: 32 int8 weights (lo: elements 0..15, hi: 16..31) times x[32]. */
SIMD static __m256 block_i8_dot(__m128i lo, __m128i hi, const float *x) {
    __m256 s = _mm256_mul_ps(i8x8_to_ps(lo), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(i8x8_to_ps(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(i8x8_to_ps(hi), _mm256_loadu_ps(x + 16), s);
    return _mm256_fmadd_ps(i8x8_to_ps(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s);
}

SIMD static float dot_q8_0_avx2(const void *row, const float *x, int64_t K) {
    const unsigned char *p = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / SD_GGML_QK; b++, p += 2 + SD_GGML_QK, x += SD_GGML_QK) {
        __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
        __m128i q1 = _mm_loadu_si128((const __m128i *)(p + 18));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(p))), block_i8_dot(q0, q1, x), acc);
    }
    return hsum256(acc);
}

SIMD static float dot_q4_0_avx2(const void *row, const float *x, int64_t K) {
    const unsigned char *p = row;
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / SD_GGML_QK; b++, p += 2 + SD_GGML_QK / 2, x += SD_GGML_QK) {
        __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(q, mask), eight);               /* elements 0..15 */
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), mask), eight); /* 16..31 */
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(p))), block_i8_dot(lo, hi, x), acc);
    }
    return hsum256(acc);
}
#endif

#if SD_HAVE_X86_SIMD
/* out[j] = w . x_j for 4 inputs x_j = x + j ldx: each weight load serves 4 FMAs. */
SIMD static void dot4_f32_avx2(const float *w, const float *x, size_t ldx, int64_t K, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv = _mm256_loadu_ps(w + k);
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + ldx + k), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 2 * ldx + k), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 3 * ldx + k), a3);
    }
    out[0] = hsum256(a0), out[1] = hsum256(a1), out[2] = hsum256(a2), out[3] = hsum256(a3);
    for (; k < K; k++)
        for (int j = 0; j < 4; j++) out[j] += w[k] * x[(size_t)j * ldx + (size_t)k];
}
#endif

typedef float (*dot_fn)(const void *row, const float *x, int64_t K);

/* simd: use_simd()'s answer, asked once per matmul (it runs cpuid, which a VM traps: microseconds). */
static dot_fn pick_dot(sd_ggml_type type, int simd) {
#if SD_HAVE_X86_SIMD
    if (simd) {
        switch (type) {
        case SD_GGML_F32: return dot_f32_avx2;
        case SD_GGML_F16: return dot_f16_avx2;
        case SD_GGML_Q8_0: return dot_q8_0_avx2;
        case SD_GGML_Q4_0: return dot_q4_0_avx2;
        }
    }
#endif
    switch (type) {
    case SD_GGML_F32: return dot_f32;
    case SD_GGML_F16: return dot_f16;
    case SD_GGML_Q8_0: return dot_q8_0;
    case SD_GGML_Q4_0: return dot_q4_0;
    }
    (void)simd;
    return dot_f32;
}

/* ---- matmul ------------------------------------------------------------------------------ */

void sd_llm_get_row(const sd_wmat *W, int64_t r, float *out) {
    sd_ggml_to_f32(W->type, (const char *)W->data + (size_t)r * W->row_bytes, out, W->K);
}

void sd_llm_matmul(const sd_wmat *W, const float *x, size_t M, float *y) {
    const int64_t K = W->K, N = W->N;
    const int simd = use_simd();
    if (M >= SD_LLM_GEMM_MIN_ROWS) {
        if (W->type == SD_GGML_F32) {
            sd_sgemm(0, 1, M, (size_t)N, (size_t)K, 1.0f, x, (size_t)K, W->data, (size_t)K, 0.0f, y,
                     (size_t)N);
            return;
        }
        /* Quantised weights: each thread dequantises one weight row at a time into a buffer
         * (L1/L2-resident) and multiplies it with all M inputs, 4 at a time. OpenBLAS is not used
         * here: alternating OpenMP and OpenBLAS thread pools made both spin against each other. */
        const dot_fn d32 = pick_dot(SD_GGML_F32, simd);
        int ok = 1;
SD_OMP(omp parallel)
        {
            float *row = sd_alloc((size_t)K * sizeof(float));
            if (!row) {
SD_OMP(omp atomic write)
                ok = 0;
            }
SD_OMP(omp for schedule(static))
            for (int64_t r = 0; r < N; r++) {
                if (!row) continue;
                sd_llm_get_row(W, r, row);
                size_t m = 0;
#if SD_HAVE_X86_SIMD
                if (simd)
                    for (; m + 4 <= M; m += 4) {
                        float o4[4];
                        dot4_f32_avx2(row, x + m * (size_t)K, (size_t)K, K, o4);
                        for (int j = 0; j < 4; j++) y[(m + (size_t)j) * (size_t)N + (size_t)r] = o4[j];
                    }
#endif
                for (; m < M; m++) y[m * (size_t)N + (size_t)r] = d32(row, x + m * (size_t)K, K);
            }
            sd_free(row);
        }
        if (ok) return;
        /* no memory for a row buffer: fall through to the row kernels */
    }
    dot_fn dot = pick_dot(W->type, simd);
SD_OMP(omp parallel for schedule(static))
    for (int64_t r = 0; r < N; r++) {
        const void *row = (const char *)W->data + (size_t)r * W->row_bytes;
        for (size_t m = 0; m < M; m++) y[m * (size_t)N + (size_t)r] = dot(row, x + m * (size_t)K, K);
    }
}

void sd_llm_matmul_ref(const sd_wmat *W, const float *x, size_t M, float *y) {
    float *row = malloc((size_t)W->K * sizeof *row);
    if (!row) return;
    for (int64_t r = 0; r < W->N; r++) {
        sd_llm_get_row(W, r, row);
        for (size_t m = 0; m < M; m++) {
            double s = 0;
            for (int64_t k = 0; k < W->K; k++) s += (double)row[k] * x[m * (size_t)W->K + (size_t)k];
            y[m * (size_t)W->N + (size_t)r] = (float)s;
        }
    }
    free(row);
}

void sd_llm_rmsnorm(float *out, const float *x, const float *w, size_t D, float eps) {
    double ss = 0;
    for (size_t i = 0; i < D; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)D + (double)eps));
    for (size_t i = 0; i < D; i++) out[i] = x[i] * scale * w[i];
}
