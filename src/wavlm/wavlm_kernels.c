/* Elementwise and row kernels of WavLM: exact GELU (through erfc), exp, LayerNorm, bias rows.
 * The span loops are branch-free so that GCC vectorises them, and compiled per CPU level
 * (SD_VECTOR_CLONES, core/simd.h); selects are done on bits (core/real.h). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/exp_poly.h"
#include "core/omp.h"
#include "core/real.h"
#include "core/simd.h"
#include "wavlm/wavlm_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#define WL_IVDEP _Pragma("GCC ivdep")
#else
#define WL_IVDEP
#endif

/* Elements per OpenMP work item, and the count below which loops stay serial. */
#define WL_CHUNK 16384
#define WL_PAR_MIN 65536

/* e^y for y <= 88; y below -87.3 (where 2^k would leave the normal range) gives 0. y = k ln2 + r
 * with k = round(y / ln2) (the 1.5 * 2^23 trick rounds to nearest), |r| <= ln2/2, ln2 split in a
 * part exact in float and a correction; e^r and 2^k from core/exp_poly.h. */
static inline float exp_le88(float y) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f,
                ln2_lo = 1.428606820309417232e-6f, lo = -87.3f, round_magic = 12582912.0f;
    const uint32_t keep = bits_mask(y >= lo);
    const float yc = real_of((bits_of(y) & keep) | (bits_of(lo) & ~keep));
    const float kf = (yc * log2e + round_magic) - round_magic;
    const int32_t ki = (int32_t)kf;
    const float r = (yc - kf * ln2_hi) - kf * ln2_lo;
    return real_of(bits_of(sd_exp_poly7(r) * sd_pow2i(ki)) & keep);
}

/* erfc(z) = t exp(-z^2 + P(u)), t = 1 / (1 + z/2), u = t c1 - c0 in [-1, 1] for z in [0, 9.5].
 * P: degree-10 least-squares fit, tests/reference/fit_erfc.py (max error 1.4e-7 evaluated in
 * float, i.e. that relative error in erfc). */
static const float erfc_p[11] = {-2.001807334e-05f, 4.991000910e-05f, 1.227530053e-04f,
                                 -4.961289930e-04f, -2.905110302e-04f, 3.535919573e-03f,
                                 -8.549943878e-04f, -2.874126893e-02f, 1.471659882e-02f,
                                 5.656127508e-01f, -5.536349920e-01f};

/* GELU(x) = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2: with z = |x| / sqrt 2 (clamped to 9.5, where
 * erfc is below float's range), half = erfc(z) / 2 = Phi(-|x|); Phi(x) = 1 - half for x >= 0, half
 * otherwise. Both tails keep full relative accuracy (no 1 - erf cancellation for x < 0). The
 * exponent -z^2 + P(u) reaches -90, where float rounding of z^2 alone would cost 1e-5 relative: z^2
 * = x^2 / 2 is kept as the float h = xx / 2 plus its rounding error (from an fma), and the range
 * reduction subtracts k ln2 from h first (exact: the two are within a factor of 2), as exp_le88. */
static inline float gelu1(float x) {
    const float t0 = 0.17391304347826086f, c1 = 2.0f / (1.0f - t0), c0 = (1.0f + t0) / (1.0f - t0);
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f,
                ln2_lo = 1.428606820309417232e-6f, round_magic = 12582912.0f;
    const uint32_t sign = bits_of(x) & 0x80000000u;
    const float ax = real_of(bits_of(x) & 0x7FFFFFFFu), xmax = 13.435f; /* 9.5 sqrt 2 */
    const float a = real_of(bits_of(ax) < bits_of(xmax) ? bits_of(ax) : bits_of(xmax));
    const float z = a * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    const float u = t * c1 - c0;
    float p = erfc_p[0];
    for (int i = 1; i < 11; i++) p = p * u + erfc_p[i];
    const float xx = a * a, h = 0.5f * xx, hl = 0.5f * fmaf(a, a, -xx); /* z^2 = h + hl */
    const float kf = ((p - h) * log2e + round_magic) - round_magic;
    const int32_t ki = (int32_t)kf;
    const float r = (((-h - kf * ln2_hi) + p) - kf * ln2_lo) - hl;
    /* a <= 13.435 keeps the exponent above -91 (k >= -132, below 2^k's normal range): 2^k is
     * applied in two halves. */
    const int32_t k1 = ki / 2, k2 = ki - k1;
    const float half = 0.5f * t * sd_exp_poly7(r) * sd_pow2i(k1) * sd_pow2i(k2);
    const uint32_t neg = bits_mask(sign != 0);
    const float phi = real_of((bits_of(half) & neg) | (bits_of(1.0f - half) & ~neg));
    return x * phi;
}

static SD_VECTOR_CLONES void gelu_span(float *y, const float *x, size_t n) {
    WL_IVDEP
    for (size_t i = 0; i < n; i++) y[i] = gelu1(x[i]);
}

static SD_VECTOR_CLONES void exp_span(float *y, const float *x, size_t n) {
    WL_IVDEP
    for (size_t i = 0; i < n; i++) y[i] = exp_le88(x[i]);
}

void sd_wavlm_gelu(float *y, const float *x, size_t n) {
    if (n < WL_PAR_MIN) {
        gelu_span(y, x, n);
        return;
    }
    const ptrdiff_t chunks = (ptrdiff_t)((n + WL_CHUNK - 1) / WL_CHUNK);
    SD_OMP(omp parallel for schedule(static))
    for (ptrdiff_t c = 0; c < chunks; c++) {
        const size_t lo = (size_t)c * WL_CHUNK, len = n - lo < WL_CHUNK ? n - lo : WL_CHUNK;
        gelu_span(y + lo, x + lo, len);
    }
}

void sd_wavlm_exp(float *y, const float *x, size_t n) { exp_span(y, x, n); }

/* Sum of x[n] in 8 interleaved double lanes (a loop GCC vectorises; a single running sum would
 * be one long dependency chain). */
static SD_VECTOR_CLONES double sum8(const float *x, size_t n) {
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += (double)x[i + j];
    for (; i < n; i++) lane[0] += (double)x[i];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static SD_VECTOR_CLONES double sumsq8(const float *x, size_t n, double mean) {
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const double d = (double)x[i + j] - mean;
            lane[j] += d * d;
        }
    for (; i < n; i++) {
        const double d = (double)x[i] - mean;
        lane[0] += d * d;
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static SD_VECTOR_CLONES void affine_span(float *y, const float *x, size_t D, float mean, float inv,
                                         const float *w, const float *b) {
    WL_IVDEP
    for (size_t i = 0; i < D; i++) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

/* y = (x - mean) / sqrt(var + eps) * w + b, mean and (population) variance in double, two passes. */
void sd_wavlm_layernorm_row(float *y, const float *x, size_t D, const float *w, const float *b,
                            float eps) {
    const double mean = sum8(x, D) / (double)D;
    const double var = sumsq8(x, D, mean) / (double)D;
    affine_span(y, x, D, (float)mean, (float)(1.0 / sqrt(var + (double)eps)), w, b);
}

void sd_wavlm_layernorm(float *y, const float *x, size_t rows, size_t D, const float *w,
                        const float *b, float eps) {
    SD_OMP(omp parallel for schedule(static) if (rows * D >= WL_PAR_MIN))
    for (ptrdiff_t r = 0; r < (ptrdiff_t)rows; r++)
        sd_wavlm_layernorm_row(y + (size_t)r * D, x + (size_t)r * D, D, w, b, eps);
}

static SD_VECTOR_CLONES void add_span(float *x, const float *b, size_t n) {
    WL_IVDEP
    for (size_t i = 0; i < n; i++) x[i] += b[i];
}

void sd_wavlm_add_bias(float *x, size_t rows, size_t cols, const float *b) {
    SD_OMP(omp parallel for schedule(static) if (rows * cols >= WL_PAR_MIN))
    for (ptrdiff_t r = 0; r < (ptrdiff_t)rows; r++) add_span(x + (size_t)r * cols, b, cols);
}

void sd_wavlm_normalize(const float *x, size_t n, float *y) {
    if (n == 0) return;
    const double mean = sum8(x, n) / (double)n;
    const double var = sumsq8(x, n, mean) / (double)n;
    const double inv = 1.0 / sqrt(var + 1e-5);
    for (size_t i = 0; i < n; i++) y[i] = (float)(((double)x[i] - mean) * inv);
}
