/* Corruption of one utterance's frames for the robustness evaluation (docs/ROBUSTNESS.md).
 *
 * Every draw is a pure function of (seed, utterance name, modality, kind, frame, column): the
 * counter-based RNG (core/rng.h) is keyed by the seed, its stream is sd_corrupt_stream(name,
 * modality, kind), and its index is the frame (or element). So every model, every run and every
 * batch size sees the same corrupted inputs, and the masks are nested across rates: a frame missing
 * at rate 0.3 is missing at rate 0.5 too (it is missing when its draw u_t < rate).
 *
 * Only the utterance's real frames (the first `T` rows) are touched; the batch's zero padding is
 * left as it is. Legend: T real frames of the utterance, D feature dim. */
#ifndef SD_EVAL_CORRUPT_H
#define SD_EVAL_CORRUPT_H

#include <stdint.h>

typedef enum {
    SD_CORRUPT_MISSING = 0, /* random frame missing (LNLN): frame t replaced by zeros when u_t < rate */
    SD_CORRUPT_NOISE = 1,   /* Gaussian noise: x[t,d] += level * scale[d] * eps[t,d], eps ~ N(0, 1) */
    SD_CORRUPT_DROP = 2     /* dropped runs: a run of SD_DROP_RUN frames from t zeroed when u_t < rate */
} sd_corrupt_kind;

/* Frames in a dropped run (MultiBench's structured drop uses 3). */
#define SD_DROP_RUN 3

/* The RNG stream of one utterance, modality and kind: 64-bit FNV-1a over the name's bytes, a 0
 * byte, the modality and the kind (so the same name gives the same stream in any split or order). */
uint64_t sd_corrupt_stream(const char *name, int modality, sd_corrupt_kind kind);

/* u[t] in [0, 1) for t < T: sd_rng_uniform_at(seed, stream, t). */
void sd_corrupt_frame_draws(uint64_t seed, uint64_t stream, int T, float *u);
/* eps [T, D], N(0, 1): element e = t*D + d takes Box-Muller of the Philox block e/2 of (seed,
 * stream), the cosine for even e and the sine for odd e (one block gives two normals). */
void sd_corrupt_noise_draws(uint64_t seed, uint64_t stream, int T, int D, float *eps);

/* In place on x [T, D]. missing: rows with u[t] < rate become zero. drop: for every t with
 * u[t] < rate, rows t .. t+SD_DROP_RUN-1 (cut at T) become zero. noise: x += level * scale[d] *
 * eps (scale [D]: each dimension's standard deviation, see sd_robust_run). A rate or level of 0
 * changes nothing. */
void sd_corrupt_missing(float *x, int T, int D, const float *u, float rate);
void sd_corrupt_drop(float *x, int T, int D, const float *u, float rate);
void sd_corrupt_noise(float *x, int T, int D, const float *eps, float level, const float *scale);

#endif
