/* The flow's workspace, its functions and the frame projection, included by flow.h once per
 * precision (SD_T, SD_FN): float for the product, double (_f64) for the finite-difference check of
 * the assembled flows (tests/test_grad_flow.c). No guard on purpose. Legend in flow.h. */

typedef struct {
    SD_T *relu, *drop;
    uint8_t *mask;
    SD_T *out;
} SD_FN(sd_mlp_buf);

typedef struct SD_FN(sd_flow) {
    /* shapes of the current contents */
    int B, T[3], H, C, R, missing, training, mia;
    sd_flow_input in; /* borrowed: must stay valid until backward */
    /* Frame sharing (sd_flow_forward_shared): bit m of `shared` set = modality m's step-1 frames
     * and their gradient buffer belong to `owner` (the complete flow of the same batch). */
    struct SD_FN(sd_flow) *owner;
    unsigned shared;
    /* Evaluation only: bit m set = modality m's pooling and modality MLP (steps 2-3) were not run
     * but copied from the owner's (same model, same frames, no dropout: the same numbers). Such
     * a flow has no backward. */
    unsigned borrowed;
    const void *model; /* the model of the last forward */
    int d_frames_dirty; /* d_frames hold stale values: the first backward to touch them zeroes them */
    /* workspace */
    void *mem;
    size_t mem_size;
    SD_T *grad_area; /* start and size (bytes) of the activation-gradient region, zeroed per backward */
    size_t grad_area_size;
    /* Scratch of the pooling and cross-attention layers (their xt, then the backward's
     * gradients) and of the MLP and MIA backwards: contents not kept between calls, so a flow
     * that borrows frames also borrows its owner's scratch (sd_flow_work). */
    SD_T *work;
    size_t work_len; /* elements */
    size_t work_offset[3]; /* each modality's region (all 0 unless `concurrent`) */
    int concurrent;        /* the three modalities' branches run at the same time (flow.c) */

    /* ---- forward activations ---- */
    SD_T *frames[3];              /* [B,T_m,H] step 1 */
    SD_FN(attn_pool_cache) pool[3];
    SD_T *pooled[3];              /* [B,H] step 2 */
    SD_FN(sd_mlp_buf) modality[3];        /* step 3: out = h_m [B,H] */
    SD_FN(mia_cache) mia1;
    SD_T *h_t;                    /* [B,H] text slot after MIA #1 (== modality[1].out without) */
    SD_T *cat_h;                  /* [B,3H] */
    SD_FN(sd_mlp_buf) attention;          /* step 4 */
    SD_T *w;                      /* [B,3] modality weights */
    SD_T *fused[4];               /* [B,H] f, f_at, f_tv, f_av (step 5) */
    SD_FN(sd_mlp_buf) query[SD_QUERY_VIEWS]; /* step 6, out [B,H] each */
    SD_T *Q;                      /* [B,K,H] */
    SD_FN(cross_attn_cache) cross[3];
    SD_T *Y[3];                   /* [B,K,H] step 7 */
    SD_FN(sd_mlp_buf) cross_mlp[3];       /* step 8, out C_m [B,K,C] */
    SD_FN(mia_cache) mia2;
    SD_T *C_t;                    /* [B,K,C] text cross features after MIA #2 */
    SD_T *Wsum;                   /* [B,K,C] step 9 */
    SD_FN(sd_mlp_buf) cross_attention;    /* step 10, out [B,C] */
    SD_T *beta;                   /* [B,K] */
    SD_T *z;                      /* [B,C] step 11 */
    SD_T *pred;                   /* [B] step 12 */
    SD_T *r_hidden;               /* [B,R] ReLU(z W^T + b) */
    SD_T *r;                      /* [B,R] step 13 */

    /* ---- activation gradients (zeroed at the start of every backward; d_frames, kept apart,
     * are zeroed by the first backward after the forward, see d_frames_dirty) ---- */
    SD_T *d_frames[3];
    SD_T *d_pooled[3], *d_h[3], *d_h_t, *d_cat_h, *d_att_out, *d_w, *d_fused[4];
    SD_T *d_q[SD_QUERY_VIEWS], *d_Q, *d_Y[3], *d_C[3], *d_C_t, *d_Wsum, *d_catt_out, *d_beta;
    SD_T *d_z, *d_r_hidden, *d_pred;
} SD_FN(sd_flow);

sd_mlp_shapes SD_FN(sd_flow_mlp_shapes)(const SD_FN(sd_model) *m);
/* The MIA weights of p as the layer takes them. */
SD_FN(mia_weights) SD_FN(sd_flow_mia_weights)(const SD_FN(sd_mia_ptrs) *p);

SD_FN(sd_flow) *SD_FN(sd_flow_new)(void);
/* The layers' scratch this flow uses for a modality (its own, or its owner's when it borrows
 * frames). */
SD_T *SD_FN(sd_flow_work)(SD_FN(sd_flow) *f, int modality);
void SD_FN(sd_flow_free)(SD_FN(sd_flow) *f);

/* Forward of one flow. missing = 1 is the text-missing flow (MIA applied when the model has it
 * on). training = 1 applies dropout from rng (which advances); training = 0 is evaluation
 * (rng unused, may be NULL). Outputs: f->pred [B], f->z [B,C], f->r [B,R], q_t =
 * f->query[5].out [B,H], C_t = f->C_t [B,K,C]. */
sd_status SD_FN(sd_flow_forward)(SD_FN(sd_flow) *f, const SD_FN(sd_model) *m, const sd_flow_input *in, int missing,
                          int training, sd_rng *rng, sd_error *err);

/* The text query view and text cross features, the flow's distillation embeddings. */
static inline const SD_T *SD_FN(sd_flow_q_t)(const SD_FN(sd_flow) *f) { return f->query[5].out; }

/* Backward of the last forward. Gradients of the outputs (each may be NULL = zero):
 * d_pred [B], d_z [B,C], d_r [B,R], d_q_t [B,H], d_c_t [B,K,C]. Parameter gradients are ADDED
 * into grads, a buffer laid out like m->params. Allocates nothing (the forward sized the
 * workspace); a layer's failure (a status other than SD_OK, not expected after a successful
 * forward) leaves grads unusable. */
sd_status SD_FN(sd_flow_backward)(SD_FN(sd_flow) *f, const SD_FN(sd_model) *m, SD_T *grads, const SD_T *d_pred,
                           const SD_T *d_z, const SD_T *d_r, const SD_T *d_q_t,
                           const SD_T *d_c_t);

/* sd_flow_forward, with the step-1 frames of the modalities in share_mask (bit m = modality m)
 * taken from `owner`, whose last forward ran on the same inputs of those modalities (the two
 * flows of a training step see the same audio and video): the frame projection is computed
 * once per batch, and neither its output nor its gradient is stored twice. The backward of f
 * then ADDS the frame gradients of the shared modalities into the owner's, and the owner's
 * backward, which must come after it, computes the frame weight gradient once from their sum.
 * owner must stay alive, and not run another forward, until both backwards are done. An input
 * that differs from the owner's (data pointer, frames or lengths) is an SD_E_ARG error.
 * With SD_FLOW_SHARE_BRANCHES in share_mask, for an evaluation with no backward to follow
 * (training = 0, the owner's forward too, same model): the shared modalities' pooling and
 * modality MLP are not run again either, their outputs are copied from the owner's (`borrowed`;
 * without dropout the same numbers), and the flow has no backward (SD_E_ARG). */
sd_status SD_FN(sd_flow_forward_shared)(SD_FN(sd_flow) *f, const SD_FN(sd_model) *m, const sd_flow_input *in,
                                 int missing, int training, sd_rng *rng, SD_FN(sd_flow) *owner,
                                 unsigned share_mask, sd_error *err);

/* The frame projection y [N,H] = x [N,D] W^T + b (model/frames.c) for inputs of dtype: float32
 * (elements of SD_T: double in the _f64 build) straight through (with Wt [D,H], the inference
 * layout, when not NULL), float16 / bfloat16, or any input standardised (std not NULL), converted
 * chunk by chunk into work (sd_frames_work_len elements). The backward ADDS dW [H,D] and db [H]
 * (db may be NULL). */
void SD_FN(sd_frames_forward)(SD_T *y, const void *x, sd_dtype dtype, const sd_frames_std *std,
                              const SD_T *W, const SD_T *Wt, const SD_T *b, size_t N, int D, int H,
                              SD_T *work);
void SD_FN(sd_frames_backward)(SD_T *dW, SD_T *db, const SD_T *dy, const void *x, sd_dtype dtype,
                               const sd_frames_std *std, size_t N, int D, int H, SD_T *work);
