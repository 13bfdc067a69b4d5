/* The bits of a float32 / float64 and back. memcpy is the type pun C allows and the one the
 * compilers turn into a register move (also inside loops they vectorise). */
#ifndef SD_CORE_BITS_H
#define SD_CORE_BITS_H

#include <stdint.h>
#include <string.h>

static inline uint32_t sd_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float sd_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint64_t sd_f64_bits(double f) {
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline double sd_bits_f64(uint64_t u) {
    double f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
