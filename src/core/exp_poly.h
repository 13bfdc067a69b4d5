/* Pieces of branch-free float exponentials, for elementwise loops that GCC vectorises (a libm call
 * would stop it): each caller does its own range reduction y = k ln2 + r and then computes
 * e^y = sd_exp_poly7(r) * sd_pow2i(k). Used by the activations (nn/activation.c) and by WavLM's
 * GELU, exp and softmax (wavlm/wavlm_kernels.c). */
#ifndef SD_CORE_EXP_POLY_H
#define SD_CORE_EXP_POLY_H

#include <stdint.h>
#include <string.h>

/* e^r for |r| <= ln2/2: the Taylor series to r^7 by Horner's rule (truncation below 6e-9). */
static inline float sd_exp_poly7(float r) {
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p;
}

/* 2^k for -126 <= k <= 127, built in the exponent bits. */
static inline float sd_pow2i(int32_t k) {
    const uint32_t bits = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif
