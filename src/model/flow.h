/* One flow of the SDUMC network (MODEL.md section 2): forward with every activation the
 * backward needs kept in a workspace, and a backward that ADDS parameter gradients.
 *
 * The complete flow feeds real text in the text slot; the text-missing flow feeds the
 * simulated text and (when the model's MIA is on) applies MIA #1 and MIA #2. Both flows of
 * a training step use the same parameters; each has its own sd_flow workspace, and both
 * backwards accumulate into one gradient buffer.
 *
 * Like the layers, the flows are also built in double (sd_flow_f64 on an sd_model_f64, names
 * with _f64; core/real.h) for the finite-difference check of the assembled network.
 *
 * Dimension letters: B batch, T_m padded frames of modality m, H hidden, C = H/2, R = H/4,
 * K = 7 query views. */
#ifndef SD_MODEL_FLOW_H
#define SD_MODEL_FLOW_H

#include "core/rng.h"
#include "io/dtype.h"
#include "model/model.h"
#include "nn/nn.h"

typedef struct {
    int B;
    const void *x[3];  /* [B, T_m, D_m] zero-padded: audio, text (real or simulated), video */
    int T[3];          /* padded frames per modality */
    const int *len[3]; /* [B] real frames per sample (1 <= len <= T) */
    sd_dtype dtype[3]; /* elements of x[m]: SD_DTYPE_F32 (0, the default; double for the _f64
                          flow), F16 or BF16 */
    /* Training with standardised inputs (model/norm.h): the real frames of x[m] enter the frame
     * projection as (x - mean[m]) * inv[m], per dim, x itself untouched. NULL: as they are. */
    const float *mean[3], *inv[3];
} sd_flow_input;

/* Shapes of every MLP of the network (the forward and the backward use them). */
typedef struct {
    mlp_shape modality, attention, query, cross, cross_attention;
} sd_mlp_shapes;

/* The standardisation of the frame projection's input (sd_flow_input mean/inv): rows are B
 * samples of T frames, of which the first len[b] are real. */
typedef struct {
    const float *mean, *inv; /* [D] */
    const int *len;          /* [B] */
    int T;
} sd_frames_std;
/* Modality m's standardisation in in, set into *s (NULL when in has none). */
static inline const sd_frames_std *sd_flow_frames_std(const sd_flow_input *in, int m, sd_frames_std *s) {
    if (!in->mean[m]) return NULL;
    s->mean = in->mean[m];
    s->inv = in->inv[m];
    s->len = in->len[m];
    s->T = in->T[m];
    return s;
}

/* Whether the frame projection takes inputs of dtype; the scratch elements it needs for N rows
 * of D (0 for float32 not standardised). */
int sd_frames_dtype_ok(sd_dtype dtype);
size_t sd_frames_work_len(sd_dtype dtype, int standardised, size_t N, int D);

/* A bit of sd_flow_forward_shared's share_mask beside the modality bits: an evaluation that also
 * takes the shared modalities' pooling and modality MLP outputs from the owner (flow_decl.h). */
#define SD_FLOW_SHARE_BRANCHES 8u

/* sd_flow (float) and sd_flow_f64 (double), their functions and the frame projection. */
#define SD_REAL_DECL "model/flow_decl.h"
#include "core/real_decl.h"

#endif
