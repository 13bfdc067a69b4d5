/* Layers of the SDUMC network as forward/backward pairs on raw, batch-major pointers.
 *
 * Every function exists in two precisions: float (the product) and double (suffix _f64,
 * used by the gradient checks). nn_decl.h holds the declarations once, written with SD_T
 * for the scalar type and SD_FN(name) for the name; this header includes it twice.
 *
 * Conventions (all layers):
 * - Outputs and caches first, then inputs, then weights, then dims.
 * - Backward ADDS into every gradient buffer; a NULL gradient pointer means "not needed".
 * - Linear weights are [out, in] row-major (PyTorch layout): y = x W^T + b.
 * - Sequences are [B, T, D] right-padded to T; len[b] (1 <= len[b] <= T) is the number of
 *   real frames of sample b. Padded frames get no attention weight and no gradient.
 *   Passing len == NULL is the no-mask mode of the released code: every one of the T
 *   frames (padding included) takes part in the softmax and the sum.
 * - Dropout draws from the caller's counter-based RNG; p == 0 (or evaluation) is identity.
 *
 * Dimension letters: B batch, T frames (padded), D feature dim, K queries (7 in SDUMC),
 * M modalities (3), N rows of a plain (frame-wise or per-sample) linear. */
#ifndef SD_NN_H
#define SD_NN_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

#define SD_MLP_MAX_LAYERS 4

/* Shape of an MLP block: n_layers x (Linear -> ReLU -> Dropout). */
typedef struct {
    int in;
    int n_layers;
    int dims[SD_MLP_MAX_LAYERS];
} mlp_shape;

/* Frames of sample b that take part in a sequence layer: len[b] clamped to [0, T], or T when
 * len == NULL (no-mask mode). */
static inline int nn_frames(const int *len, int b, int T) {
    if (!len) return T;
    const int n = len[b];
    return n < 0 ? 0 : (n > T ? T : n);
}

/* Samples per chunk of the sequence layers (chunk.c): their scratch holds about
 * NN_CHUNK_FLOATS_DEFAULT floats of frames. sd_nn_set_chunk_floats changes that budget for the
 * whole process (tests force several chunks on small shapes with it); 0 restores the default.
 * Depends on the shapes only, never on the thread count. */
#define NN_CHUNK_FLOATS_DEFAULT ((size_t)1 << 20)
int sd_nn_chunk_samples(int B, int T, int D);
void sd_nn_set_chunk_floats(size_t floats);

/* A dropout mask kept as the position of its random draws instead of a stored array: keep_i is
 * a pure function of (seed, stream, base, i, p) (rules in dropout.c), so a backward recomputes
 * it. sd_dropout_key_reserve takes the draws for n elements from rng (nothing when p <= 0; rng
 * may then be NULL). */
typedef struct {
    uint64_t seed, stream, base;
    double p;
} dropout_key;
dropout_key sd_dropout_key_reserve(sd_rng *rng, size_t n, double p);

#define SD_REAL_DECL "nn/nn_decl.h"
#include "core/real_decl.h"

#endif
