/* Inverted dropout with a counter-based mask.
 *
 * Legend: n elements (any shape, flattened); k random bits per element; E = 128 / k elements
 * per Philox block (4 words of 32 bits).
 *
 * Which bits decide element i. sd_dropout_key_reserve takes whole Philox blocks from the caller's
 * rng, starting at a block boundary (the rng index is first rounded up to a multiple of 4):
 * element i reads k bits at bit position i*k of the reserved bits, i.e. bits (i*k) % 32 ..
 * + k-1 of draw base + (i*k) / 32 (sd_rng_u32_at). The mask is therefore a pure function of
 * (seed, stream, base, i, p): the same for any thread count and for the float and double
 * builds, and it can be recomputed instead of stored (sd_dropout_apply with an offset i0).
 *
 * How many bits: a Bernoulli(1 - p) draw needs few bits when p is a multiple of 2^-k. For the
 * smallest k in {1, 2, 4, 8} with p * 2^k an integer (p = 0.5: one bit; 0.25: two), keep_i =
 * (value of the k bits >= p * 2^k): exactly probability 1 - p. Any other p (0.3) uses a whole
 * draw per element, keep_i = (u >= p) with u = draw / 2^32 cut to 24 bits as in
 * sd_rng_uniform_at, p compared in float. p >= 1 keeps nothing; p == 0 touches neither the
 * rng nor the mask, so a p = 0 run and an evaluation run are the same computation. */
#include <stddef.h>
#include <string.h>

#include "core/omp.h"
#include "core/real.h"
#include "core/rng.h"
#include "core/simd.h"
#include "nn/nn.h"
#include "nn/nn_omp.h"

/* Elements below which the loops stay serial. */
#define DROPOUT_PAR_MIN 32768

/* Philox blocks computed together: each round is a loop over the lanes, so the compiler uses
 * vector multiplies. The result is the Philox4x32-10 of core/rng.c (the tests compare the mask
 * with sd_rng_u32_at draw by draw). */
#define PHILOX_LANES 8
/* Elements decided by one batch of PHILOX_LANES blocks, at most (k = 1). */
#define BATCH_MAX (128 * PHILOX_LANES)

/* Bits per element for drop probability p (see the header). */
static int dropout_bits(double p) {
    const double pf = (double)(float)p;
    for (int k = 1; k <= 8; k *= 2) {
        const double scaled = pf * (double)(1u << k);
        if (scaled == (double)(uint32_t)scaled) return k;
    }
    return 32;
}

#ifndef SD_REAL_DOUBLE
dropout_key sd_dropout_key_reserve(sd_rng *rng, size_t n, double p) {
    dropout_key key = {0, 0, 0, p};
    if (!(p > 0)) return key; /* no mask: rng untouched (and may be NULL, as in evaluation) */
    key.seed = rng->seed;
    key.stream = rng->stream;
    key.base = rng->index;
    if (n == 0) return key;
    const uint64_t k = (uint64_t)dropout_bits(p);
    const uint64_t blocks = ((uint64_t)n * k + 127) / 128;
    key.base = (rng->index + 3) / 4 * 4;
    rng->index = key.base + 4 * blocks;
    return key;
}
#endif

static inline void philox_lanes(uint64_t seed, uint64_t stream, uint64_t first_block,
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

/* keep [PHILOX_LANES * 128 / k]: the keep flags of the elements decided by Philox blocks
 * first_block .. first_block + PHILOX_LANES - 1, in element order. */
static SD_VECTOR_CLONES void keep_batch(uint8_t *keep, uint64_t seed, uint64_t stream,
                                        uint64_t first_block, int k, uint32_t threshold, float p_f) {
    uint32_t words[4][PHILOX_LANES];
    philox_lanes(seed, stream, first_block, words);
    if (k == 32) {
        for (int l = 0; l < PHILOX_LANES; l++)
            for (int w = 0; w < 4; w++)
                keep[l * 4 + w] = (float)(words[w][l] >> 8) * (1.0f / 16777216.0f) >= p_f;
        return;
    }
    const int per_word = 32 / k;
    const uint32_t value_mask = (1u << k) - 1u;
    for (int l = 0; l < PHILOX_LANES; l++)
        for (int w = 0; w < 4; w++) {
            const uint32_t word = words[w][l];
            uint8_t *kw = keep + (l * 4 + w) * per_word;
            for (int e = 0; e < per_word; e++) kw[e] = ((word >> (e * k)) & value_mask) >= threshold;
        }
}

/* y = keep ? x * scale : 0, or y += x * scale where kept (y untouched where dropped).
 * Branch-free selects on bits, so the loops vectorise (core/real.h). */
static SD_VECTOR_CLONES void scale_kept(real *y, const real *x, const uint8_t *keep, size_t n,
                                        real scale, int accumulate) {
    if (accumulate)
        for (size_t i = 0; i < n; i++) {
            const real_bits m = bits_mask(keep[i] != 0);
            y[i] = real_of((bits_of(y[i] + x[i] * scale) & m) | (bits_of(y[i]) & ~m));
        }
    else
        for (size_t i = 0; i < n; i++) y[i] = real_of(bits_of(x[i] * scale) & bits_mask(keep[i] != 0));
}

static SD_VECTOR_CLONES void add_span(real *y, const real *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* Rows of [B,T,D] frames whose elements a call touches: those of frames t < len[b]. */
typedef struct {
    const int *len;
    size_t T, D;
} frame_rows;

/* Elements [i0, i0 + n) of the mask of key (only those in rows taking part, when rows is not
 * NULL): y (and mask, when not NULL) from x. */
static void dropout_run(real *y, uint8_t *mask, const real *x, size_t i0, size_t n,
                        const dropout_key *key, int accumulate, const frame_rows *rows) {
    if (n == 0) return;
    const int k = dropout_bits(key->p);
    const size_t per_batch = (size_t)PHILOX_LANES * (k == 32 ? 4 : 128 / (size_t)k);
    const float p_f = (float)key->p;
    const uint32_t threshold = k == 32 ? 0u : (key->p >= 1 ? 0xFFFFFFFFu : (uint32_t)(p_f * (float)(1u << k)));
    const real scale = key->p < 1 ? (real)1 / ((real)1 - (real)key->p) : (real)0;
    const size_t first = i0 / per_batch, last = (i0 + n - 1) / per_batch;
    const ptrdiff_t count = (ptrdiff_t)(last - first + 1);
    SD_OMP(omp parallel for schedule(static) if (n >= DROPOUT_PAR_MIN))
    for (ptrdiff_t j = 0; j < count; j++) {
        const size_t batch = first + (size_t)j, e0 = batch * per_batch;
        const size_t lo = e0 > i0 ? e0 : i0, hi = e0 + per_batch < i0 + n ? e0 + per_batch : i0 + n;
        uint8_t keep[BATCH_MAX];
        keep_batch(keep, key->seed, key->stream, key->base / 4 + (uint64_t)batch * PHILOX_LANES, k,
                   threshold, p_f);
        if (!rows) {
            scale_kept(y + (lo - i0), x + (lo - i0), keep + (lo - e0), hi - lo, scale, accumulate);
            if (mask) memcpy(mask + (lo - i0), keep + (lo - e0), hi - lo);
            continue;
        }
        for (size_t r = lo / rows->D; r * rows->D < hi; r++) { /* frame rows overlapping the batch */
            const size_t t = r % rows->T, b = r / rows->T;
            if ((int)t >= nn_frames(rows->len, (int)b, (int)rows->T)) continue;
            const size_t a = r * rows->D > lo ? r * rows->D : lo;
            const size_t z = (r + 1) * rows->D < hi ? (r + 1) * rows->D : hi;
            scale_kept(y + (a - i0), x + (a - i0), keep + (a - e0), z - a, scale, accumulate);
        }
    }
}

void SD_R(sd_dropout_apply)(real *y, const real *x, size_t i0, size_t n, const dropout_key *key,
                         int accumulate) {
    if (!(key->p > 0)) {
        if (accumulate) add_span(y, x, n);
        else if (y != x && n) memmove(y, x, n * sizeof *y);
        return;
    }
    dropout_run(y, NULL, x, i0, n, key, accumulate, NULL);
}

/* 1 when some frame of the batch is padding. */
static int has_padding(const int *len, int B, int T) {
    for (int b = 0; len && b < B; b++)
        if (nn_frames(len, b, T) < T) return 1;
    return 0;
}

const real *SD_R(sd_frames_dropout)(real *work, const real *x, const int *len, const dropout_key *key,
                                 int b0, int nb, int T, int D) {
    const size_t Tz = (size_t)T, Dz = (size_t)D, e0 = (size_t)b0 * Tz * Dz;
    const int padded = has_padding(len ? len + b0 : NULL, nb, T);
    if (!(key->p > 0) && !padded) return x + e0;
    SD_R(sd_dropout_apply)(work, x + e0, e0, (size_t)nb * Tz * Dz, key, 0);
    for (int b = 0; padded && b < nb; b++) {
        const size_t n = (size_t)nn_frames(len, b0 + b, T);
        memset(work + ((size_t)b * Tz + n) * Dz, 0, (Tz - n) * Dz * sizeof *work);
    }
    return work;
}

void SD_R(sd_frames_dropout_backward)(real *dx, const real *dxt, const int *len, const dropout_key *key,
                                   int b0, int nb, int T, int D) {
    const size_t Tz = (size_t)T, Dz = (size_t)D, n = (size_t)nb * Tz * Dz, e0 = (size_t)b0 * Tz * Dz;
    if (!has_padding(len ? len + b0 : NULL, nb, T)) {
        SD_R(sd_dropout_apply)(dx + e0, dxt, e0, n, key, 1);
        return;
    }
    if (!(key->p > 0)) {
        for (int b = 0; b < nb; b++) {
            const size_t off = (size_t)b * Tz * Dz;
            add_span(dx + e0 + off, dxt + off, (size_t)nn_frames(len, b0 + b, T) * Dz);
        }
        return;
    }
    const frame_rows rows = {len, Tz, Dz}; /* len of the whole batch: rows are absolute */
    dropout_run(dx + e0, NULL, dxt, e0, n, key, 1, &rows);
}

void SD_R(sd_dropout_forward)(real *y, uint8_t *mask, const real *x, size_t n, real p, sd_rng *rng) {
    if (!(p > 0)) {
        if (y != x && n) memmove(y, x, n * sizeof *y);
        return;
    }
    const dropout_key key = sd_dropout_key_reserve(rng, n, (double)p);
    dropout_run(y, mask, x, 0, n, &key, 0, NULL);
}

/* Forward: y = x * keep / (1-p). Backward: dx += dy * keep / (1-p); p == 0: dx += dy. */
void SD_R(sd_dropout_backward)(real *dx, const real *dy, const uint8_t *mask, size_t n, real p) {
    if (!(p > 0)) {
        add_span(dx, dy, n);
        return;
    }
    const real scale = p < 1 ? (real)1 / ((real)1 - p) : (real)0;
    scale_kept(dx, dy, mask, n, scale, 1);
}
