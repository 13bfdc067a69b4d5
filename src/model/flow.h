/* One flow of the SDUMC network (MODEL.md section 2): forward with every activation the
 * backward needs kept in a workspace, and a backward that ADDS parameter gradients.
 *
 * The complete flow feeds real text in the text slot; the text-missing flow feeds the
 * simulated text and (when the model's MIA is on) applies MIA #1 and MIA #2. Both flows of
 * a training step use the same parameters; each has its own sd_flow workspace, and both
 * backwards accumulate into one gradient buffer.
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
    sd_dtype dtype[3]; /* elements of x[m]: SD_DTYPE_F32 (0, the default), F16 or BF16 */
    /* Training with standardised inputs (model/norm.h): the real frames of x[m] enter the frame
     * projection as (x - mean[m]) * inv[m], per dim, x itself untouched. NULL: as they are. */
    const float *mean[3], *inv[3];
} sd_flow_input;

typedef struct {
    float *relu, *drop;
    uint8_t *mask;
    float *out;
} sd_mlp_buf;

typedef struct sd_flow {
    /* shapes of the current contents */
    int B, T[3], H, C, R, missing, training, mia;
    sd_flow_input in; /* borrowed: must stay valid until backward */
    /* Frame sharing (sd_flow_forward_shared): bit m of `shared` set = modality m's step-1 frames
     * and their gradient buffer belong to `owner` (the complete flow of the same batch). */
    struct sd_flow *owner;
    unsigned shared;
    int d_frames_dirty; /* d_frames hold stale values: the first backward to touch them zeroes them */
    /* workspace */
    void *mem;
    size_t mem_size;
    float *grad_area; /* start and size (bytes) of the activation-gradient region, zeroed per backward */
    size_t grad_area_size;
    /* Scratch of the pooling and cross-attention layers (their xt, then the backward's
     * gradients) and of the MLP and MIA backwards: contents not kept between calls, so a flow that borrows frames also borrows
     * its owner's scratch (sd_flow_work). */
    float *work;
    size_t work_len; /* floats */
    size_t work_offset[3]; /* each modality's region (all 0 unless `concurrent`) */
    int concurrent;        /* the three modalities' branches run at the same time (flow.c) */

    /* ---- forward activations ---- */
    float *frames[3];              /* [B,T_m,H] step 1 */
    attn_pool_cache pool[3];
    float *pooled[3];              /* [B,H] step 2 */
    sd_mlp_buf modality[3];        /* step 3: out = h_m [B,H] */
    mia_cache mia1;
    float *h_t;                    /* [B,H] text slot after MIA #1 (== modality[1].out without) */
    float *cat_h;                  /* [B,3H] */
    sd_mlp_buf attention;          /* step 4 */
    float *w;                      /* [B,3] modality weights */
    float *fused[4];               /* [B,H] f, f_at, f_tv, f_av (step 5) */
    sd_mlp_buf query[SD_QUERY_VIEWS]; /* step 6, out [B,H] each */
    float *Q;                      /* [B,K,H] */
    cross_attn_cache cross[3];
    float *Y[3];                   /* [B,K,H] step 7 */
    sd_mlp_buf cross_mlp[3];       /* step 8, out C_m [B,K,C] */
    mia_cache mia2;
    float *C_t;                    /* [B,K,C] text cross features after MIA #2 */
    float *Wsum;                   /* [B,K,C] step 9 */
    sd_mlp_buf cross_attention;    /* step 10, out [B,C] */
    float *beta;                   /* [B,K] */
    float *z;                      /* [B,C] step 11 */
    float *pred;                   /* [B] step 12 */
    float *r_hidden;               /* [B,R] ReLU(z W^T + b) */
    float *r;                      /* [B,R] step 13 */

    /* ---- activation gradients (zeroed at the start of every backward; d_frames, kept apart,
     * are zeroed by the first backward after the forward, see d_frames_dirty) ---- */
    float *d_frames[3];
    float *d_pooled[3], *d_h[3], *d_h_t, *d_cat_h, *d_att_out, *d_w, *d_fused[4];
    float *d_q[SD_QUERY_VIEWS], *d_Q, *d_Y[3], *d_C[3], *d_C_t, *d_Wsum, *d_catt_out, *d_beta;
    float *d_z, *d_r_hidden, *d_pred;
} sd_flow;

/* Shapes of every MLP of the network (the forward and the backward use them). */
typedef struct {
    mlp_shape modality, attention, query, cross, cross_attention;
} sd_mlp_shapes;
sd_mlp_shapes sd_flow_mlp_shapes(const sd_model *m);
/* The MIA weights of p as the layer takes them. */
mia_weights sd_flow_mia_weights(const sd_mia_ptrs *p);

sd_flow *sd_flow_new(void);
/* The layers' scratch this flow uses for a modality (its own, or its owner's when it borrows
 * frames). */
float *sd_flow_work(sd_flow *f, int modality);
void sd_flow_free(sd_flow *f);

/* Forward of one flow. missing = 1 is the text-missing flow (MIA applied when the model has it
 * on). training = 1 applies dropout from rng (which advances); training = 0 is evaluation
 * (rng unused, may be NULL). Outputs: f->pred [B], f->z [B,C], f->r [B,R], q_t =
 * f->query[5].out [B,H], C_t = f->C_t [B,K,C]. */
sd_status sd_flow_forward(sd_flow *f, const sd_model *m, const sd_flow_input *in, int missing,
                          int training, sd_rng *rng, sd_error *err);

/* The text query view and text cross features, the flow's distillation embeddings. */
static inline const float *sd_flow_q_t(const sd_flow *f) { return f->query[5].out; }

/* Backward of the last forward. Gradients of the outputs (each may be NULL = zero):
 * d_pred [B], d_z [B,C], d_r [B,R], d_q_t [B,H], d_c_t [B,K,C]. Parameter gradients are ADDED
 * into grads, a buffer laid out like m->params. Allocates nothing (the forward sized the
 * workspace); a layer's failure (a status other than SD_OK, not expected after a successful
 * forward) leaves grads unusable. */
sd_status sd_flow_backward(sd_flow *f, const sd_model *m, float *grads, const float *d_pred,
                           const float *d_z, const float *d_r, const float *d_q_t,
                           const float *d_c_t);

/* sd_flow_forward, with the step-1 frames of the modalities in share_mask (bit m = modality m)
 * taken from `owner`, whose last forward ran on the same inputs of those modalities (the two
 * flows of a training step see the same audio and video): the frame projection is computed
 * once per batch, and neither its output nor its gradient is stored twice. The backward of f
 * then ADDS the frame gradients of the shared modalities into the owner's, and the owner's
 * backward, which must come after it, computes the frame weight gradient once from their sum.
 * owner must stay alive, and not run another forward, until both backwards are done. An input
 * that differs from the owner's (data pointer, frames or lengths) is an SD_E_ARG error. */
sd_status sd_flow_forward_shared(sd_flow *f, const sd_model *m, const sd_flow_input *in,
                                 int missing, int training, sd_rng *rng, sd_flow *owner,
                                 unsigned share_mask, sd_error *err);

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

/* The frame projection y [N,H] = x [N,D] W^T + b (model/frames.c) for inputs of dtype: float32
 * straight through (with Wt [D,H], the inference layout, when not NULL), float16 / bfloat16, or
 * any input standardised (std not NULL), converted chunk by chunk into work (sd_frames_work_len
 * floats). The backward ADDS dW [H,D] and db [H] (db may be NULL). */
int sd_frames_dtype_ok(sd_dtype dtype);
size_t sd_frames_work_len(sd_dtype dtype, int standardised, size_t N, int D);
void sd_frames_forward(float *y, const void *x, sd_dtype dtype, const sd_frames_std *std, const float *W,
                       const float *Wt, const float *b, size_t N, int D, int H, float *work);
void sd_frames_backward(float *dW, float *db, const float *dy, const void *x, sd_dtype dtype,
                        const sd_frames_std *std, size_t N, int D, int H, float *work);

#endif
