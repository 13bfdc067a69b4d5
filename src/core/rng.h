/* Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
 *
 * A value is a pure function of (seed, stream, index): nothing depends on the
 * order in which threads draw, so initialisation, dropout and shuffling are
 * reproducible from one seed whatever the thread count. Each consumer owns a
 * stream id (see the SD_STREAM_* constants) and advances its own index. */
#ifndef SD_CORE_RNG_H
#define SD_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;
    uint64_t stream;
    uint64_t index; /* next unused counter value, in units of one 32-bit draw */
} sd_rng;

/* Stream ids: one per independent consumer. */
enum {
    SD_STREAM_INIT = 1,     /* parameter initialisation */
    SD_STREAM_DROPOUT = 2,  /* dropout masks during training */
    SD_STREAM_SHUFFLE = 3,  /* data order */
    SD_STREAM_SYNTH = 4,    /* synthetic corpus generator */
    SD_STREAM_VALID_SPLIT = 5, /* validation split carved out of train (--valid-fraction) */
    SD_STREAM_TRAIN_EVAL = 6, /* the training subset evaluated each epoch (train/train.h) */
    SD_STREAM_TEST = 100    /* tests */
};

sd_rng sd_rng_make(uint64_t seed, uint64_t stream);

/* Pure draws at an explicit index (thread-safe, no state). */
uint32_t sd_rng_u32_at(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform in [0, 1) with 24 random bits (exactly representable in float). */
float sd_rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t index);

/* Sequential draws from a stateful generator (advances r->index). */
uint32_t sd_rng_u32(sd_rng *r);
float sd_rng_uniform(sd_rng *r);          /* [0, 1), 24 bits */
double sd_rng_uniform_double(sd_rng *r);  /* [0, 1), 53 bits */
double sd_rng_normal(sd_rng *r);          /* N(0, 1), Box-Muller */
uint64_t sd_rng_below(sd_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
/* Fisher-Yates shuffle of idx[0..n). */
void sd_rng_shuffle(sd_rng *r, int64_t *idx, size_t n);

/* Reserves n consecutive indices and returns the first: a parallel loop can then
 * use sd_rng_uniform_at(r->seed, r->stream, base + i) for element i. */
uint64_t sd_rng_reserve(sd_rng *r, uint64_t n);

/* The raw Philox4x32-10 block function: 4 words from a 128-bit counter and 64-bit key. */
void sd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif
