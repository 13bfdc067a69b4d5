/* Philox4x32-10 counter-based random numbers: raw draws, uniform and normal values, shuffles,
 * reserving ranges of a stream (rng.h). */
#include "rng.h"

#include <math.h>

/* Philox4x32 round constants (Salmon et al. 2011, table 2). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void sd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* One Philox block yields four 32-bit words: index i uses word i % 4 of block i / 4. */
uint32_t sd_rng_u32_at(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t block = index >> 2;
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    sd_philox4x32(ctr, key, out);
    return out[index & 3];
}

float sd_rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)(sd_rng_u32_at(seed, stream, index) >> 8) * (1.0f / 16777216.0f);
}

sd_rng sd_rng_make(uint64_t seed, uint64_t stream) {
    sd_rng r = {seed, stream, 0};
    return r;
}

uint32_t sd_rng_u32(sd_rng *r) { return sd_rng_u32_at(r->seed, r->stream, r->index++); }

float sd_rng_uniform(sd_rng *r) { return (float)(sd_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

double sd_rng_uniform_double(sd_rng *r) {
    uint64_t hi = sd_rng_u32(r) >> 5; /* 27 bits */
    uint64_t lo = sd_rng_u32(r) >> 6; /* 26 bits */
    return (double)((hi << 26) | lo) * (1.0 / 9007199254740992.0);
}

double sd_rng_normal(sd_rng *r) {
    double u1 = sd_rng_uniform_double(r);
    double u2 = sd_rng_uniform_double(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint64_t sd_rng_below(sd_rng *r, uint64_t n) {
    /* Rejection sampling on 64-bit draws: accept x < limit, a multiple of n. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = ((uint64_t)sd_rng_u32(r) << 32) | sd_rng_u32(r);
        if (x < limit) return x % n;
    }
}

void sd_rng_shuffle(sd_rng *r, int64_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)sd_rng_below(r, i);
        int64_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

uint64_t sd_rng_reserve(sd_rng *r, uint64_t n) {
    uint64_t base = r->index;
    r->index += n;
    return base;
}
