/* WavLM internals shared by the loader (wavlm_load.c), the feature encoder (wavlm_conv.c) and the
 * Transformer (wavlm_encoder.c): the weights, the workspace, the kernels (wavlm_kernels.c).
 * Legend as in wavlm.h. */
#ifndef SD_WAVLM_INTERNAL_H
#define SD_WAVLM_INTERNAL_H

#include <stddef.h>

#include "wavlm/wavlm.h"

typedef struct {
    float *qkv_w, *qkv_b;     /* [3D, D] rows q, k, v (q_proj, k_proj, v_proj stacked), [3D] */
    float *o_w, *o_b;         /* [D, D], [D] */
    float *gate_w, *gate_b;   /* [2, d], [2]: gru_rel_pos_linear's rows 0-3 and 4-7 summed */
    float *gate_c;            /* [H] (gru_rel_pos_const) */
    float *ln1_w, *ln1_b;     /* [D] layer_norm */
    float *ln2_w, *ln2_b;     /* [D] final_layer_norm */
    float *ff1_w, *ff1_b;     /* [F, D], [F] */
    float *ff2_w, *ff2_b;     /* [D, F], [D] */
} sd_wavlm_layer;

struct sd_wavlm {
    sd_wavlm_config cfg;
    float *params;            /* every weight, one buffer */
    size_t n_params;
    /* Feature encoder, conv i: weights re-laid [C_out, k, C_in] so that an output frame is one dot
     * product with k consecutive input frames [k, C_in] (contiguous in a [time, C] layout). */
    float *conv_w[SD_WAVLM_MAX_CONV], *conv_b[SD_WAVLM_MAX_CONV]; /* conv_b NULL without biases */
    float *norm_w[SD_WAVLM_MAX_CONV], *norm_b[SD_WAVLM_MAX_CONV]; /* NULL where there is no norm */
    float *fp_ln_w, *fp_ln_b; /* [C_last] feature_projection.layer_norm */
    float *proj_w, *proj_b;   /* [D, C_last], [D] */
    /* Positional conv, weight norm folded in, per group g re-laid [D/G out, K, D/G in]. */
    float *pos_w, *pos_b;     /* [G, D/G, K, D/G], [D] */
    float *enc_ln_w, *enc_ln_b; /* [D] encoder.layer_norm */
    float *rel_embed;         /* [B, H] */
    sd_wavlm_layer *layers;   /* [L] */
};

/* Per-thread scratch of the feature encoder and positional conv. */
typedef struct {
    float *a, *b;             /* ping-pong [conv rows, C_max] */
    float *cols;              /* im2col [rows, k C_in] (also the positional conv's [rows, K D/G]) */
    float *scores;            /* attention scores of one block of query rows [QB, T_max] */
    double *stat;             /* [2 C_0] group-norm partial sums */
} sd_wavlm_thread_ws;

struct sd_wavlm_ws {
    size_t max_samples, max_frames;
    int threads;
    sd_wavlm_thread_ws *th;   /* [threads] */
    size_t conv_rows, cols_len;
    float *gn_mean, *gn_inv;  /* [C_0] group-norm statistics of the current input */
    float *feat;              /* [T, C_last] */
    float *x, *xn, *att;      /* [T, D] */
    float *qkv;               /* [T, 3D] */
    float *ff;                /* [T, F] */
    float *gate;              /* [T, H] */
    float *pos_bias;          /* [H, 2 T_max - 1]: P[bucket(r), h] at r + T - 1 */
    float *xpad;              /* [G, T_max + K, D/G] positional conv input, padded, per group */
};

/* Final frames per block of the feature encoder (a fixed number, so results do not depend on the
 * thread count). */
#define SD_WAVLM_CONV_BLOCK 32

/* Rows each conv layer needs at most for one block of SD_WAVLM_CONV_BLOCK final frames. */
size_t sd_wavlm_conv_block_rows(const sd_wavlm_config *c, int layer);

/* Feature encoder: wav[n] -> ws->feat [T, C_last]. */
sd_status sd_wavlm_conv_forward(const sd_wavlm *m, sd_wavlm_ws *ws, const float *wav, size_t n,
                                size_t T, sd_error *err);
/* Projection, positional conv and Transformer: ws->feat -> hidden states as sd_wavlm_forward. */
void sd_wavlm_encoder_forward(const sd_wavlm *m, sd_wavlm_ws *ws, size_t T, const int *layers,
                              int n_out, float *const *out);

/* ---- kernels (wavlm_kernels.c) ---- */

/* y[n] = x * Phi(x) (exact GELU via erfc), in place allowed; relative error below 1e-6. */
void sd_wavlm_gelu(float *y, const float *x, size_t n);
/* Rows of x[rows, D] layer-normalised into y (in place allowed), affine w, b. */
void sd_wavlm_layernorm(float *y, const float *x, size_t rows, size_t D, const float *w,
                        const float *b, float eps);
/* One row: the same (called inside parallel loops). */
void sd_wavlm_layernorm_row(float *y, const float *x, size_t D, const float *w, const float *b,
                            float eps);
/* y[n] = exp(x) for x <= 88 (x below -87.3 gives 0), relative error below 2e-7. */
void sd_wavlm_exp(float *y, const float *x, size_t n);
/* x[rows, cols] += b[cols] per row. */
void sd_wavlm_add_bias(float *x, size_t rows, size_t cols, const float *b);

#endif
