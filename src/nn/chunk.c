/* How many samples the sequence layers (pooling, cross-attention) process at a time. They
 * work through the batch in chunks of whole samples so that their scratch (the dropped-out
 * frames, recomputed projections) is one chunk, not the batch: peak memory stays flat in B,
 * and a chunk's frames are still in cache when the next pass reads them. */
#include "nn/nn.h"

#ifndef SD_REAL_DOUBLE
static size_t chunk_floats = NN_CHUNK_FLOATS_DEFAULT;

void sd_nn_set_chunk_floats(size_t floats) { chunk_floats = floats ? floats : NN_CHUNK_FLOATS_DEFAULT; }

int sd_nn_chunk_samples(int B, int T, int D) {
    if (B <= 1 || T <= 0 || D <= 0) return B < 1 ? 1 : B;
    const size_t per_sample = (size_t)T * (size_t)D;
    const size_t n = chunk_floats / per_sample;
    if (n < 1) return 1;
    if (n >= (size_t)B) return B;
    /* As many chunks as the budget needs, of even size (96 by 81 would give 81 + 15). */
    const size_t chunks = ((size_t)B + n - 1) / n;
    return (int)(((size_t)B + chunks - 1) / chunks);
}
#endif
