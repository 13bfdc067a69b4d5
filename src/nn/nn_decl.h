/* Declarations of the layers, included by nn.h once per precision (SD_T, SD_FN). No guard
 * on purpose. Formulas are restated above each pair. */

/* ---- Linear: y[N,out] = x[N,in] W[out,in]^T + b[out] (b may be NULL). Frame-wise linear over
 * [B,T,D] is the same call with N = B*T (padded rows are computed; masking happens downstream). */
void SD_FN(sd_linear_forward)(SD_T *y, const SD_T *x, const SD_T *W, const SD_T *b, size_t N, int in,
                           int out);
/* The same product with the weight stored transposed, Wt [in,out] (inference layout). */
void SD_FN(sd_linear_forward_wt)(SD_T *y, const SD_T *x, const SD_T *Wt, const SD_T *b, size_t N,
                              int in, int out);
/* dx[N,in] += dy W; dW[out,in] += dy^T x; db[out] += sum_n dy. */
void SD_FN(sd_linear_backward)(SD_T *dx, SD_T *dW, SD_T *db, const SD_T *dy, const SD_T *x,
                            const SD_T *W, size_t N, int in, int out);

/* ---- Elementwise. y may alias x in the forwards. */
void SD_FN(sd_relu_forward)(SD_T *y, const SD_T *x, size_t n);
void SD_FN(sd_relu_backward)(SD_T *dx, const SD_T *dy, const SD_T *y, size_t n); /* dx += dy*(y>0) */
void SD_FN(sd_tanh_forward)(SD_T *y, const SD_T *x, size_t n);
void SD_FN(sd_tanh_backward)(SD_T *dx, const SD_T *dy, const SD_T *y, size_t n); /* dx += dy*(1-y^2) */

/* ---- Inverted dropout: keep_i from the draws reserved in rng (dropout.c says which bits, so
 * the mask does not depend on the thread count); y_i = x_i * keep_i / (1-p). p == 0: y = x, mask
 * untouched (may be NULL). y may alias x. */
void SD_FN(sd_dropout_forward)(SD_T *y, uint8_t *mask, const SD_T *x, size_t n, SD_T p, sd_rng *rng);
/* dx_i += dy_i * keep_i / (1-p) (p == 0: dx += dy). */
void SD_FN(sd_dropout_backward)(SD_T *dx, const SD_T *dy, const uint8_t *mask, size_t n, SD_T p);
/* Elements i0 .. i0+n-1 of a keyed mask: y[j] = x[j] * keep_{i0+j} / (1-p) (accumulate == 0),
 * or y[j] += x[j] / (1-p) where keep_{i0+j} (accumulate == 1). key->p <= 0: y = x / y += x. */
void SD_FN(sd_dropout_apply)(SD_T *y, const SD_T *x, size_t i0, size_t n, const dropout_key *key,
                          int accumulate);
/* Dropout over frames [B,T,D] as the sequence layers use it, for the samples b0 .. b0+nb-1 of
 * the batch (x and len are the whole batch's; the key covers all B*T*D elements): returns
 * xt = Dropout(x) of those samples with the rows of padded frames (t >= len[b]) set to 0,
 * written into work [nb,T,D]; or x + b0*T*D itself when that is the same thing (key->p <= 0
 * and no padded frame among them), work untouched. */
const SD_T *SD_FN(sd_frames_dropout)(SD_T *work, const SD_T *x, const int *len,
                                  const dropout_key *key, int b0, int nb, int T, int D);
/* Its backward: dx (whole batch) += dxt (the nb samples' [nb,T,D]) * keep / (1-p) on the rows
 * of frames that take part; the rows of padded frames are not written. */
void SD_FN(sd_frames_dropout_backward)(SD_T *dx, const SD_T *dxt, const int *len,
                                    const dropout_key *key, int b0, int nb, int T, int D);

/* ---- MLP block (MODEL.md "MLP(in, dims)"): for each layer l,
 *   r_l = ReLU(a_{l-1} W_l^T + b_l), a_l = Dropout(p)(r_l), a_{-1} = x; out = a_last.
 * W[l], b[l] point at each layer's weights. Caches: relu[l] and drop[l] of size N*dims[l],
 * masks of size N*dims[l], laid out layer after layer; sd_mlp_cache_len gives their length. */
size_t SD_FN(sd_mlp_cache_len)(const mlp_shape *s, size_t N);
void SD_FN(sd_mlp_forward)(SD_T *out, SD_T *relu_cache, SD_T *drop_cache, uint8_t *mask_cache,
                        const SD_T *x, const SD_T *const *W, const SD_T *const *b,
                        const mlp_shape *s, size_t N, SD_T p, sd_rng *rng);
/* dx may be NULL; dW[l], db[l] receive the weight gradients. dout: gradient of out. work:
 * scratch of sd_mlp_work_len(s, N) elements (contents not kept). Allocates nothing; SD_E_ARG
 * (nothing written) when work is NULL or its length overflows. */
size_t SD_FN(sd_mlp_work_len)(const mlp_shape *s, size_t N);
sd_status SD_FN(sd_mlp_backward)(SD_T *dx, SD_T *const *dW, SD_T *const *db, const SD_T *dout,
                              const SD_T *relu_cache, const SD_T *drop_cache,
                              const uint8_t *mask_cache, const SD_T *x, const SD_T *const *W,
                              const mlp_shape *s, size_t N, SD_T p, SD_T *work);

/* ---- Softmax in place over n values spaced stride apart, shifted by their max (n == 0: nothing).
 * Its backward is the layers' dx = y * (dy - <y, dy>). */
void SD_FN(sd_softmax_forward)(SD_T *x, size_t n, size_t stride);

/* ---- Attention pooling over time (fra2utt, MODEL.md step 2):
 *   xt = Dropout(p)(x); P = tanh(xt Wp^T + bp); s_t = P_t . c; alpha = softmax_t(0.3 s);
 *   u = sum_t alpha_t xt_t; y = Dropout(p)(u).
 * Cache (caller-owned): P [B,T,D] (the backward writes its gradients over it: one backward per
 * forward); alpha [B,T]; u [B,D]; mask_out [B,D]; key_in (set by the forward: xt is not kept,
 * passes recompute it from x and key_in); work: scratch of sd_attn_pool_work_len elements that
 * forward and backward overwrite (several caches may share one). Padded frames (t >= len[b])
 * get alpha = 0. */
typedef struct {
    SD_T *work;
    SD_T *P;
    SD_T *alpha;
    SD_T *u;
    uint8_t *mask_out;
    dropout_key key_in;
} SD_FN(attn_pool_cache);
size_t SD_FN(sd_attn_pool_work_len)(int B, int T, int D);
void SD_FN(sd_attn_pool_forward)(SD_T *y, SD_FN(attn_pool_cache) *cache, const SD_T *x,
                              const int *len, const SD_T *c, const SD_T *Wp, const SD_T *bp,
                              int B, int T, int D, SD_T p, sd_rng *rng);
/* x: the forward's input, unchanged. */
void SD_FN(sd_attn_pool_backward)(SD_T *dx, SD_T *dc, SD_T *dWp, SD_T *dbp, const SD_T *dy,
                               const SD_FN(attn_pool_cache) *cache, const SD_T *x,
                               const int *len, const SD_T *c, const SD_T *Wp, int B, int T,
                               int D, SD_T p);

/* ---- UMCA cross-attention (cross_att_fra2utt, MODEL.md step 7), K queries over T frames:
 *   xt = Dropout(p)(x); Kt = tanh(xt Wi^T + bi) [B,T,D]; Qp = Q Wq^T + bq [B,K,D];
 *   S = 0.3 Kt Qp^T [B,T,K]; A = softmax over t (per query k); O = A^T xt [B,K,D];
 *   y = Dropout(p)(O) [B,K,D].
 * Cache: Qp, O [B,K,D]; A [B,T,K]; mask_out [B,K,D]; key_in and work as in attn_pool_cache
 * (work: sd_cross_attn_work_len elements); Kt [B,T,D] or NULL: with a buffer the forward keeps Kt
 * there (the backward writes its gradients over it), without one the backward recomputes Kt
 * (one more B*T*D*D GEMM, B*T*D fewer values kept). */
typedef struct {
    SD_T *work;
    SD_T *Kt;
    SD_T *Qp;
    SD_T *A;
    SD_T *O;
    uint8_t *mask_out;
    dropout_key key_in;
} SD_FN(cross_attn_cache);
size_t SD_FN(sd_cross_attn_work_len)(int B, int T, int K, int D);
void SD_FN(sd_cross_attn_forward)(SD_T *y, SD_FN(cross_attn_cache) *cache, const SD_T *x,
                               const int *len, const SD_T *Q, const SD_T *Wq, const SD_T *bq,
                               const SD_T *Wi, const SD_T *bi, int B, int T, int K, int D,
                               SD_T p, sd_rng *rng);
/* x: the forward's input, unchanged; Wi, bi as in the forward. dx [B,T,D] and dQ [B,K,D] may
 * be NULL. */
void SD_FN(sd_cross_attn_backward)(SD_T *dx, SD_T *dQ, SD_T *dWq, SD_T *dbq, SD_T *dWi, SD_T *dbi,
                                const SD_T *dy, const SD_FN(cross_attn_cache) *cache,
                                const SD_T *x, const int *len, const SD_T *Q, const SD_T *Wq,
                                const SD_T *Wi, const SD_T *bi, int B, int T, int K, int D,
                                SD_T p);

/* ---- Weighted modality sum (MODEL.md steps 5 and 9), raw per-sample weights w [B,M]:
 *   y[b,r,:] = sum_{m in use} w[b,m] x_m[b,r,:], x_m of shape [B,R,D] (R rows per sample;
 *   R = 1 for step 5, R = 7 for step 9). use: bit m set = modality m included. */
void SD_FN(sd_modality_sum_forward)(SD_T *y, const SD_T *w, const SD_T *const *x, int M,
                                 unsigned use, int B, int R, int D);
/* dx[m] (each may be NULL) += w[b,m] dy; dw[b,m] += <dy[b], x_m[b]> (dw may be NULL). */
void SD_FN(sd_modality_sum_backward)(SD_T *const *dx, SD_T *dw, const SD_T *dy, const SD_T *w,
                                  const SD_T *const *x, int M, unsigned use, int B, int R, int D);

/* ---- Row-weighted sum (MODEL.md step 11): z[b,:] = sum_k beta[b,k] X[b,k,:], X [B,K,D]. */
void SD_FN(sd_row_sum_forward)(SD_T *z, const SD_T *beta, const SD_T *X, int B, int K, int D);
void SD_FN(sd_row_sum_backward)(SD_T *dbeta, SD_T *dX, const SD_T *dz, const SD_T *beta,
                             const SD_T *X, int B, int K, int D);

/* ---- MIA residual autoencoder (MODEL.md section 3), N rows of dim D, latent L:
 *   cat = [x_a, x_t, x_v] [N,3D]; h = ReLU(cat W0^T + b0); x_in = h W2^T + b2;
 *   lat = x_in We^T + be; y = lat Wd^T + bd + x_t. No dropout.
 * Cache: cat [N,3D], h [N,D], x_in [N,D], lat [N,L]. */
typedef struct {
    SD_T *cat;
    SD_T *h;
    SD_T *x_in;
    SD_T *lat;
} SD_FN(mia_cache);
typedef struct {
    const SD_T *W0, *b0; /* transition.0: [D,3D], [D] */
    const SD_T *W2, *b2; /* transition.2: [D,D], [D] */
    const SD_T *We, *be; /* encoder_0.0: [L,D], [L] */
    const SD_T *Wd, *bd; /* decoder_0.0: [D,L], [D] */
} SD_FN(mia_weights);
typedef struct {
    SD_T *W0, *b0, *W2, *b2, *We, *be, *Wd, *bd;
} SD_FN(mia_grads);
void SD_FN(sd_mia_forward)(SD_T *y, SD_FN(mia_cache) *cache, const SD_T *x_a, const SD_T *x_t,
                        const SD_T *x_v, const SD_FN(mia_weights) *w, size_t N, int D, int L);
/* dx_a, dx_t, dx_v may be NULL. work: scratch of sd_mia_work_len(N, D, L) elements (contents
 * not kept). Allocates nothing; SD_E_ARG (nothing written) when work is NULL or its length
 * overflows. */
size_t SD_FN(sd_mia_work_len)(size_t N, int D, int L);
sd_status SD_FN(sd_mia_backward)(SD_T *dx_a, SD_T *dx_t, SD_T *dx_v, const SD_FN(mia_grads) *g,
                              const SD_T *dy, const SD_FN(mia_cache) *cache,
                              const SD_FN(mia_weights) *w, size_t N, int D, int L, SD_T *work);
