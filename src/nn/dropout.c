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

/* Elements below which the loops stay serial. */
#define DROPOUT_PAR_MIN 32768

/* y [n] = x * keep / (1-p), keep = (u >= p), u uniform in [0,1) with 24 bits; mask [n] = keep.
 * The comparison is made in float (u is a float, p is rounded to float) so both precisions
 * draw the same mask. p >= 1 drops everything. */
void SD_R(dropout_forward)(real *y, uint8_t *mask, const real *x, size_t n, real p, sd_rng *rng) {
    if (!(p > 0)) {
        if (y != x && n) memmove(y, x, n * sizeof *y);
        return;
    }
    const uint64_t base = sd_rng_reserve(rng, (uint64_t)n);
    const uint64_t seed = rng->seed, stream = rng->stream;
    const float p_f = (float)p;
    const real scale = p < 1 ? (real)1 / ((real)1 - p) : (real)0;
    const ptrdiff_t count = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= DROPOUT_PAR_MIN)
    for (ptrdiff_t i = 0; i < count; i++) {
        const uint8_t keep = sd_rng_uniform_at(seed, stream, base + (uint64_t)i) >= p_f;
        mask[i] = keep;
        y[i] = keep ? x[i] * scale : (real)0;
    }
}

/* Forward: y = x * keep / (1-p). Backward: dx += dy * keep / (1-p); p == 0: dx += dy. */
void SD_R(dropout_backward)(real *dx, const real *dy, const uint8_t *mask, size_t n, real p) {
    const ptrdiff_t count = (ptrdiff_t)n;
    if (!(p > 0)) {
#pragma omp parallel for schedule(static) if (n >= DROPOUT_PAR_MIN)
        for (ptrdiff_t i = 0; i < count; i++) dx[i] += dy[i];
        return;
    }
    const real scale = p < 1 ? (real)1 / ((real)1 - p) : (real)0;
#pragma omp parallel for schedule(static) if (n >= DROPOUT_PAR_MIN)
    for (ptrdiff_t i = 0; i < count; i++)
        if (mask[i]) dx[i] += dy[i] * scale;
}
