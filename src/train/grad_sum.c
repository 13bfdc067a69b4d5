/* Order-independent fixed-point sums of float gradients (grad_sum.h): exponent codes, the
 * rounding of each part to integers, the final conversion. Legend: n elements, K parts. */
#include "train/grad_sum.h"

#include <math.h>
#include <string.h>

/* S = 62 - ceil(log2 K): K integers of magnitude <= 2^S sum to at most 2^62. */
static int scale_bits(int parts) {
    int lg = 0;
    while (lg < 30 && (1 << lg) < parts) lg++;
    return 62 - lg;
}

static uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* The code of one value: the smallest E with |x| < 2^E (frexp's exponent), -126 for subnormals,
 * SD_GRAD_EXP_ZERO for 0, SD_GRAD_EXP_BAD for Inf, NaN and |x| >= 2^126. */
static int exponent_code(float x) {
    const uint32_t u = float_bits(x), eb = (u >> 23) & 0xffu;
    if (eb == 0) return (u & 0x7fffffu) ? -126 : SD_GRAD_EXP_ZERO;
    const int e = (int)eb - 126; /* x = 1.m 2^(eb-127) < 2^(eb-126) */
    return e >= SD_GRAD_EXP_BAD ? SD_GRAD_EXP_BAD : e;
}

void sd_grad_sum_exponents(int8_t *e, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const int c = exponent_code(x[i]);
        if (c > e[i]) e[i] = (int8_t)c;
    }
}

/* round(m 2^-r) for an integer m < 2^24 and r >= 1, ties to even. */
static int64_t shift_round(int64_t m, int r) {
    if (r > 40) return 0; /* m 2^-r < 2^-16: rounds to 0 */
    const int64_t half = (int64_t)1 << (r - 1);
    return (m + half - 1 + ((m >> r) & 1)) >> r;
}

void sd_grad_sum_add(int64_t *q, const int8_t *e, const float *x, size_t n, int parts) {
    const int S = scale_bits(parts);
    for (size_t i = 0; i < n; i++) {
        if (e[i] == SD_GRAD_EXP_BAD || e[i] == SD_GRAD_EXP_ZERO) continue;
        const uint32_t u = float_bits(x[i]), eb = (u >> 23) & 0xffu;
        /* |x| = m 2^p exactly: m the 24-bit significand (no hidden bit for subnormals). */
        const int64_t m = (int64_t)((u & 0x7fffffu) | (eb ? 0x800000u : 0u));
        const int p = (eb ? (int)eb : 1) - 150;
        if (m == 0) continue;
        /* x 2^(S - E) = m 2^(p + S - E); |x| < 2^E keeps it below 2^S. */
        const int shift = p + S - e[i];
        const int64_t v = shift >= 0 ? m << shift : shift_round(m, -shift);
        q[i] += (u >> 31) ? -v : v;
    }
}

void sd_grad_sum_result(float *out, const int64_t *q, const int8_t *e, size_t n, int parts) {
    const int S = scale_bits(parts);
    for (size_t i = 0; i < n; i++) {
        if (e[i] == SD_GRAD_EXP_BAD) {
            out[i] = NAN;
        } else if (e[i] == SD_GRAD_EXP_ZERO || q[i] == 0) {
            out[i] = 0.0f;
        } else {
            /* One rounding (int64 -> float is correctly rounded), then an exact power-of-two
             * scaling in double (E - S >= -190 stays in double's range). */
            out[i] = (float)((double)(float)q[i] * ldexp(1.0, e[i] - S));
        }
    }
}
