/* Inverted dropout with a counter-based mask.
 *
 * Legend: n elements (any shape, flattened).
 * The forward reserves n consecutive draws of the caller's rng and gives element i the
 * draw at index base + i, so the mask is a pure function of (seed, stream, index): the same
 * for any thread count, and for the float and double builds alike. p == 0 touches neither
 * the rng nor the mask, so a p = 0 run and an evaluation run are the same computation. */
#include <stddef.h>
#include <string.h>

#include "core/real.h"
#include "core/rng.h"
#include "nn/nn.h"
#include "core/omp.h"
#include "nn/nn_omp.h"

/* Elements below which the loops stay serial. */
#define DROPOUT_PAR_MIN 32768

/* One Philox block = four consecutive draws: index j is word j % 4 of block j / 4, the layout
 * of sd_rng_u32_at (core/rng.c). The forward computes PHILOX_LANES blocks at a time, each Philox
 * round written as a loop over the lanes so the compiler can use vector multiplies; the result is
 * the same Philox4x32-10 as core/rng.c (the test checks the mask against
 * sd_rng_uniform_at(seed, stream, base + i) element by element). */
#define PHILOX_LANES 8

static void philox_lanes(uint64_t seed, uint64_t stream, uint64_t first_block,
                         uint32_t out[4][PHILOX_LANES]) {
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
    for (int l = 0; l < PHILOX_LANES; l++) {
        const uint64_t block = first_block + (uint64_t)l;
        c0[l] = (uint32_t)block;
        c1[l] = (uint32_t)(block >> 32);
        c2[l] = (uint32_t)stream;
        c3[l] = (uint32_t)(stream >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        SD_OMP(omp simd)
        for (int l = 0; l < PHILOX_LANES; l++) {
            const uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int l = 0; l < PHILOX_LANES; l++) {
        out[0][l] = c0[l];
        out[1][l] = c1[l];
        out[2][l] = c2[l];
        out[3][l] = c3[l];
    }
}

/* y [n] = x * keep / (1-p), keep = (u >= p), u uniform in [0,1) with 24 bits (as in
 * sd_rng_uniform_at); mask [n] = keep. The comparison is made in float (u is a float, p is
 * rounded to float) so both precisions draw the same mask. p >= 1 drops everything. */
void SD_R(dropout_forward)(real *y, uint8_t *mask, const real *x, size_t n, real p, sd_rng *rng) {
    if (!(p > 0)) {
        if (y != x && n) memmove(y, x, n * sizeof *y);
        return;
    }
    if (n == 0) return;
    const uint64_t base = sd_rng_reserve(rng, (uint64_t)n);
    const uint64_t seed = rng->seed, stream = rng->stream;
    const float p_f = (float)p;
    const real scale = p < 1 ? (real)1 / ((real)1 - p) : (real)0;
    const uint64_t first_block = base / 4, n_blocks = (base + n - 1) / 4 - first_block + 1;
    const ptrdiff_t count = (ptrdiff_t)((n_blocks + PHILOX_LANES - 1) / PHILOX_LANES);
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= DROPOUT_PAR_MIN))
    for (ptrdiff_t k = 0; k < count; k++) {
        const uint64_t block0 = first_block + (uint64_t)k * PHILOX_LANES;
        uint32_t words[4][PHILOX_LANES];
        philox_lanes(seed, stream, block0, words);
        for (int l = 0; l < PHILOX_LANES; l++)
            for (int w = 0; w < 4; w++) {
                const uint64_t j = (block0 + (uint64_t)l) * 4 + (uint64_t)w; /* draw index */
                if (j < base || j - base >= n) continue;
                const size_t i = (size_t)(j - base); /* element */
                const float u = (float)(words[w][l] >> 8) * (1.0f / 16777216.0f);
                const uint8_t keep = u >= p_f;
                mask[i] = keep;
                y[i] = keep ? x[i] * scale : (real)0;
            }
    }
}

/* Forward: y = x * keep / (1-p). Backward: dx += dy * keep / (1-p); p == 0: dx += dy. */
void SD_R(dropout_backward)(real *dx, const real *dy, const uint8_t *mask, size_t n, real p) {
    const ptrdiff_t count = (ptrdiff_t)n;
    if (!(p > 0)) {
        SD_OMP_PARALLEL_FOR(schedule(static) if (n >= DROPOUT_PAR_MIN))
        for (ptrdiff_t i = 0; i < count; i++) dx[i] += dy[i];
        return;
    }
    const real scale = p < 1 ? (real)1 / ((real)1 - p) : (real)0;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= DROPOUT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++)
        if (mask[i]) dx[i] += dy[i] * scale;
}
