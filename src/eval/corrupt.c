/* Corruption of one utterance's frames: pure draws from the counter-based RNG and the three
 * in-place corruptions (frame missing, dropped runs, Gaussian noise). */
#include "eval/corrupt.h"

#include <math.h>
#include <string.h>

#include "core/hash.h"
#include "core/rng.h"

uint64_t sd_corrupt_stream(const char *name, int modality, sd_corrupt_kind kind) {
    /* FNV-1a over the name, its NUL, the modality byte and the kind byte */
    const unsigned char tail[3] = {0, (unsigned char)modality, (unsigned char)kind};
    return sd_fnv1a(sd_fnv1a_str(SD_FNV1A_BASIS, name), tail, sizeof tail);
}

void sd_corrupt_frame_draws(uint64_t seed, uint64_t stream, int T, float *u) {
    for (int t = 0; t < T; t++) u[t] = sd_rng_uniform_at(seed, stream, (uint64_t)t);
}

void sd_corrupt_noise_draws(uint64_t seed, uint64_t stream, int T, int D, float *eps) {
    const uint64_t n = (uint64_t)T * (uint64_t)D;
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (uint64_t block = 0; 2 * block < n; block++) {
        /* The counter layout of sd_rng_u32_at: (block, stream). */
        const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
        uint32_t w[4];
        sd_philox4x32(ctr, key, w);
        /* Two uniforms with 53 bits each, u1 in (0, 1] so the logarithm is finite. */
        double u1 = 1.0 - (double)(((uint64_t)(w[0] >> 5) << 26) | (w[1] >> 6)) * (1.0 / 9007199254740992.0);
        double u2 = (double)(((uint64_t)(w[2] >> 5) << 26) | (w[3] >> 6)) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        eps[2 * block] = (float)(r * cos(a));
        if (2 * block + 1 < n) eps[2 * block + 1] = (float)(r * sin(a));
    }
}

void sd_corrupt_missing(float *x, int T, int D, const float *u, float rate) {
    for (int t = 0; t < T; t++)
        if (u[t] < rate) memset(x + (size_t)t * (size_t)D, 0, sizeof(float) * (size_t)D);
}

void sd_corrupt_drop(float *x, int T, int D, const float *u, float rate) {
    for (int t = 0; t < T; t++) {
        if (!(u[t] < rate)) continue;
        int end = t + SD_DROP_RUN < T ? t + SD_DROP_RUN : T;
        memset(x + (size_t)t * (size_t)D, 0, sizeof(float) * (size_t)(end - t) * (size_t)D);
    }
}

void sd_corrupt_noise(float *x, int T, int D, const float *eps, float level, const float *scale) {
    if (level == 0.0f) return;
    for (int t = 0; t < T; t++) {
        float *row = x + (size_t)t * (size_t)D;
        const float *e = eps + (size_t)t * (size_t)D;
        for (int d = 0; d < D; d++) row[d] += level * scale[d] * e[d];
    }
}
