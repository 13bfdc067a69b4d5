/* Elementwise activations: ReLU and tanh.
 *
 * Legend: n elements (any shape, flattened). The forwards may run in place (y == x).
 * The backwards take the forward OUTPUT y, which is all they need. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/real.h"
#include "nn/nn.h"
#include "nn/nn_omp.h"

#ifdef SD_REAL_DOUBLE
#define real_tanh tanh
#else
#define real_tanh sd_tanhf

/* e^y for y in [0, 20], without libm: y = k ln2 + r, |r| <= ln2/2 (ln2 split in a part exact in
 * float and a correction), e^r by its Taylor series to r^7 (truncation < 3e-9), times 2^k built
 * in the exponent bits. */
static inline float exp_nonneg(float y) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-6f;
    float k = (float)(int32_t)(y * log2e + 0.5f);
    float r = (y - k * ln2_hi) - k * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } two_k = {((int32_t)k + 127) << 23};
    return p * two_k.f;
}

/* tanh in float, about 1.5x faster than libm's tanhf here and as accurate (max relative error
 * 1.4e-7 against the double tanh over [-12, 12], libm's 1.6e-7; tests/test_activation.c):
 * |x| < 0.625: the odd Taylor series of tanh to x^19 (terms shrink by ~0.16 each);
 * otherwise: sign(x) (1 - 2 / (e^{2|x|} + 1)), with 2|x| clamped at 20 (tanh = 1 in float). */
static inline float sd_tanhf(float x) {
    float a = x < 0 ? -x : x, x2 = x * x;
    if (a < 0.625f) {
        float p = -443861162.0f / 1856156927625.0f;
        p = p * x2 + 6404582.0f / 10854718875.0f;
        p = p * x2 - 929569.0f / 638512875.0f;
        p = p * x2 + 21844.0f / 6081075.0f;
        p = p * x2 - 1382.0f / 155925.0f;
        p = p * x2 + 62.0f / 2835.0f;
        p = p * x2 - 17.0f / 315.0f;
        p = p * x2 + 2.0f / 15.0f;
        p = p * x2 - 1.0f / 3.0f;
        return x * (1.0f + x2 * p);
    }
    float big = 1.0f - 2.0f / (exp_nonneg(2.0f * a < 20.0f ? 2.0f * a : 20.0f) + 1.0f);
    return x < 0 ? -big : big;
}
#endif

/* Elements below which the loops stay serial. */
#define ACT_PAR_MIN 65536

/* y [n] = max(x, 0). */
void SD_R(relu_forward)(real *y, const real *x, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : (real)0;
}

/* Forward: y = max(x, 0). Backward: dx += dy * (y > 0) (the kink at 0 gets gradient 0). */
void SD_R(relu_backward)(real *dx, const real *dy, const real *y, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++)
        if (y[i] > 0) dx[i] += dy[i];
}

/* y [n] = tanh(x). */
void SD_R(tanh_forward)(real *y, const real *x, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++) y[i] = real_tanh(x[i]);
}

/* Forward: y = tanh(x). Backward: dx += dy * (1 - y^2). */
void SD_R(tanh_backward)(real *dx, const real *dy, const real *y, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++) dx[i] += dy[i] * ((real)1 - y[i] * y[i]);
}
