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
#include "nn/nn_omp.h"

/* Elements below which the loops stay serial. */
#define DROPOUT_PAR_MIN 32768

/* One Philox block = four consecutive draws: index j is word j % 4 of block j / 4, the layout
 * of sd_rng_u32_at (core/rng.c). Computing each block once for its four words is 4x cheaper
 * than calling sd_rng_uniform_at per element; the test checks the mask against
 * sd_rng_uniform_at(seed, stream, base + i) element by element. */
static void philox_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t words[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    sd_philox4x32(ctr, key, words);
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
    const ptrdiff_t count = (ptrdiff_t)n_blocks;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= DROPOUT_PAR_MIN))
    for (ptrdiff_t k = 0; k < count; k++) {
        const uint64_t block = first_block + (uint64_t)k;
        uint32_t words[4];
        philox_block(seed, stream, block, words);
        for (uint64_t w = 0; w < 4; w++) {
            const uint64_t j = block * 4 + w; /* draw index */
            if (j < base || j - base >= n) continue;
            const size_t i = (size_t)(j - base); /* element */
            const float u = (float)(words[w] >> 8) * (1.0f / 16777216.0f);
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
