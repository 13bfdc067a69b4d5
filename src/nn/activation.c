/* Elementwise activations: ReLU and tanh.
 *
 * Legend: n elements (any shape, flattened). The forwards may run in place (y == x).
 * The backwards take the forward OUTPUT y, which is all they need.
 *
 * How the loops vectorise. The span functions are plain loops marked ACT_IVDEP (element i only
 * reads and writes index i, so y == x is fine; the arrays must not overlap otherwise): without
 * it GCC would version the loop on a run-time overlap check, which in-place calls fail. The
 * Makefile's -fvect-cost-model=dynamic lets GCC vectorise loops of any length (the scalar
 * remainder performs the same operations, so the bits do not depend on an element's position).
 * The spans are compiled per CPU (SD_VECTOR_CLONES, core/simd.h) and give the same bits on each:
 * the same IEEE operations per element, no FMA contraction. The OpenMP loops hand each thread a
 * contiguous run of ACT_CHUNK-element chunks and call the span function on each. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/exp_poly.h"
#include "core/real.h"
#include "core/simd.h"
#include "nn/nn.h"
#include "nn/nn_omp.h"

/* Elements per OpenMP work item. */
#define ACT_CHUNK 16384
/* Elements below which the loops stay serial. */
#define ACT_PAR_MIN 65536

/* The loop that follows has no dependence between iterations: GCC may vectorise it without
 * checking at run time that the arrays do not overlap. */
#if defined(__GNUC__) && !defined(__clang__)
#define ACT_IVDEP _Pragma("GCC ivdep")
#else
#define ACT_IVDEP
#endif

/* Selects on bits: bits_of, real_of, bits_mask (core/real.h). */

#ifdef SD_REAL_DOUBLE
#define real_tanh tanh
#else
#define real_tanh sd_tanhf

/* e^y for y in [0, 20], without libm: y = k ln2 + r, |r| <= ln2/2 (ln2 split in a part exact in
 * float and a correction), e^r by its Taylor series to r^7 (truncation < 3e-9), times 2^k built
 * in the exponent bits (k <= 29). */
static inline float exp_nonneg(float y) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-6f;
    const int32_t ki = (int32_t)(y * log2e + 0.5f);
    const float k = (float)ki;
    float r = (y - k * ln2_hi) - k * ln2_lo;
    return sd_exp_poly7(r) * sd_pow2i(ki);
}

/* tanh in float, as accurate as libm's tanhf (max relative error 1.4e-7 against the double tanh
 * over [-12, 12], libm's 1.6e-7; tests/test_activation.c):
 * |x| < 0.625: the odd Taylor series of tanh to x^19 (terms shrink by ~0.16 each); exact for
 * denormals and keeps the sign of -0;
 * otherwise: sign(x) (1 - 2 / (e^{2|x|} + 1)), with 2|x| clamped at 20 (tanh = 1 in float), so
 * +-inf give +-1. NaN fails the test |x| >= 0.625 and takes the series: NaN out.
 * Branch-free, so that loops of it vectorise: both forms are computed for every x, and the clamp,
 * the sign and the choice are done on the bits. (Written with ?: on floats, GCC turns them into
 * branches, moves each form into its own branch, and then cannot vectorise.) */
static inline float sd_tanhf(float x) {
    const uint32_t sign = bits_of(x) & 0x80000000u;
    const float a = real_of(bits_of(x) & 0x7FFFFFFFu), x2 = x * x;
    float p = -443861162.0f / 1856156927625.0f;
    p = p * x2 + 6404582.0f / 10854718875.0f;
    p = p * x2 - 929569.0f / 638512875.0f;
    p = p * x2 + 21844.0f / 6081075.0f;
    p = p * x2 - 1382.0f / 155925.0f;
    p = p * x2 + 62.0f / 2835.0f;
    p = p * x2 - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    const float series = x * (1.0f + x2 * p);
    /* min(2|x|, 20): the bits of floats >= +0 order as unsigned integers, NaN above inf. */
    const uint32_t two_a = bits_of(2.0f * a), twenty = bits_of(20.0f);
    const float big = 1.0f - 2.0f / (exp_nonneg(real_of(two_a < twenty ? two_a : twenty)) + 1.0f);
    const uint32_t use_big = bits_mask(a >= 0.625f);
    return real_of(((bits_of(big) | sign) & use_big) | (bits_of(series) & ~use_big));
}
#endif

/* Span kernels: n elements. */

typedef void unary_span_fn(real *y, const real *x, size_t n);
typedef void binary_span_fn(real *dx, const real *dy, const real *y, size_t n);

static SD_VECTOR_CLONES void relu_forward_span(real *y, const real *x, size_t n) {
    ACT_IVDEP
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : (real)0;
}

/* dx is left untouched where y <= 0 (not dx + 0, which would turn -0 into +0). */
static SD_VECTOR_CLONES void relu_backward_span(real *dx, const real *dy, const real *y, size_t n) {
    ACT_IVDEP
    for (size_t i = 0; i < n; i++) {
        const real_bits pass = bits_mask(y[i] > 0);
        dx[i] = real_of((bits_of(dx[i] + dy[i]) & pass) | (bits_of(dx[i]) & ~pass));
    }
}

static SD_VECTOR_CLONES void tanh_forward_span(real *y, const real *x, size_t n) {
    ACT_IVDEP
    for (size_t i = 0; i < n; i++) y[i] = real_tanh(x[i]);
}

static SD_VECTOR_CLONES void tanh_backward_span(real *dx, const real *dy, const real *y, size_t n) {
    ACT_IVDEP
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * ((real)1 - y[i] * y[i]);
}

/* span over [0, n): serial below ACT_PAR_MIN, else ACT_CHUNK-element chunks over the threads. */
static void run_unary(unary_span_fn *span, real *y, const real *x, size_t n) {
    if (n < ACT_PAR_MIN) {
        span(y, x, n);
        return;
    }
    const ptrdiff_t chunks = (ptrdiff_t)((n + ACT_CHUNK - 1) / ACT_CHUNK);
    SD_OMP(omp parallel for schedule(static))
    for (ptrdiff_t c = 0; c < chunks; c++) {
        const size_t lo = (size_t)c * ACT_CHUNK, len = n - lo < ACT_CHUNK ? n - lo : ACT_CHUNK;
        span(y + lo, x + lo, len);
    }
}

static void run_binary(binary_span_fn *span, real *dx, const real *dy, const real *y, size_t n) {
    if (n < ACT_PAR_MIN) {
        span(dx, dy, y, n);
        return;
    }
    const ptrdiff_t chunks = (ptrdiff_t)((n + ACT_CHUNK - 1) / ACT_CHUNK);
    SD_OMP(omp parallel for schedule(static))
    for (ptrdiff_t c = 0; c < chunks; c++) {
        const size_t lo = (size_t)c * ACT_CHUNK, len = n - lo < ACT_CHUNK ? n - lo : ACT_CHUNK;
        span(dx + lo, dy + lo, y + lo, len);
    }
}

/* y [n] = max(x, 0). */
void SD_R(sd_relu_forward)(real *y, const real *x, size_t n) { run_unary(relu_forward_span, y, x, n); }

/* Forward: y = max(x, 0). Backward: dx += dy * (y > 0) (the kink at 0 gets gradient 0). */
void SD_R(sd_relu_backward)(real *dx, const real *dy, const real *y, size_t n) {
    run_binary(relu_backward_span, dx, dy, y, n);
}

/* y [n] = tanh(x). */
void SD_R(sd_tanh_forward)(real *y, const real *x, size_t n) { run_unary(tanh_forward_span, y, x, n); }

/* Forward: y = tanh(x). Backward: dx += dy * (1 - y^2). */
void SD_R(sd_tanh_backward)(real *dx, const real *dy, const real *y, size_t n) {
    run_binary(tanh_backward_span, dx, dy, y, n);
}
