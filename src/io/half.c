/* float16 and bfloat16 conversions to and from float32 (round to nearest even). */
#include "half.h"

#include <string.h>

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float sd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf, NaN */
    if (exp != 0) return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13)); /* 127-15 */
    if (mant == 0) return bits_to_f32(sign);                                       /* +-0 */
    /* Subnormal: mant * 2^-24, exactly representable as a float32 normal. Normalise by shifting the
     * leading one up to bit 10. */
    int shift = 0;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        shift++;
    }
    uint32_t e32 = (uint32_t)(113 - shift); /* biased: 2^(-14 - shift) */
    return bits_to_f32(sign | (e32 << 23) | ((mant & 0x3ffu) << 13));
}

uint16_t sd_f32_to_f16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        if (ax == 0x7f800000u) return sign | 0x7c00u;                       /* inf */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));          /* quiet NaN */
    }
    if (ax >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 = 65504 + half an ulp: rounds to inf */
    if (ax < 0x38800000u) {
        /* Below 2^-14: the result is a subnormal (or zero) counting units of 2^-24. */
        if (ax < 0x33000000u) return sign; /* < 2^-25 = half the smallest subnormal: zero */
        uint32_t e = ax >> 23;             /* 102..112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        /* value = m * 2^(e - 150) = (m >> (126 - e)) units of 2^-24, plus a remainder to round */
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (q & 1u))) q++; /* may carry into the smallest normal */
        return (uint16_t)(sign | q);
    }
    /* Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits, rounding to even. A carry out
     * of the mantissa correctly bumps the exponent. */
    uint32_t q = (ax - 0x38000000u) >> 13;
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

float sd_bf16_to_f32(uint16_t b) { return bits_to_f32((uint32_t)b << 16); }

uint16_t sd_f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u); /* quiet NaN */
    /* add just under half an ulp, plus one more when the kept part is odd: ties go to even */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}
