/* Backward pass of one SDUMC flow: the steps of flow.c in reverse. Activation gradients live
 * in the flow's workspace (zeroed here); parameter gradients are ADDED into `grads`.
 * Legend: B batch, T_m padded frames, H hidden, C = H/2, R = H/4, K = 7 query views. */
#include <string.h>

#include "model/flow.h"

#include "core/real.h"

static void add(real *y, const real *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* What every step of the backward needs: the flow, the model's parameters p and their gradients
 * g (views into `grads`), the MLP shapes, the dropout rates in effect, the layer scratch, and the
 * first failure of an MLP or MIA backward (the later steps still run; the caller discards the
 * gradients). */
typedef struct {
    SD_R(sd_flow) *f;
    const SD_R(sd_model) *m;
    const SD_R(sd_model_ptrs) *p;
    SD_R(sd_model_ptrs) g;
    sd_mlp_shapes s;
    real p_mlp, p_att;
    real *work; /* the MLPs' and MIAs' scratch: the layer scratch, free between the layers' calls */
    sd_status st;
} back_ctx;

/* out = MLP(x) over N rows: dx += dMLP/dx^T dout; weight gradients into gr. A failure is kept in
 * c->st (the first one). */
static void mlp_back(back_ctx *c, real *dx, const SD_R(sd_mlp_ptrs) *gr, const real *dout, const SD_R(sd_mlp_buf) *buf,
                     const real *x, const SD_R(sd_mlp_ptrs) *pr, const mlp_shape *shape, size_t N) {
    const real *W[2] = {pr->l[0].W, pr->l[1].W};
    real *dW[2] = {gr->l[0].W, gr->l[1].W};
    real *db[2] = {gr->l[0].b, gr->l[1].b};
    const sd_status s_mlp = SD_R(sd_mlp_backward)(dx, dW, db, dout, buf->relu, buf->drop, buf->mask, x,
                                            W, shape, N, c->p_mlp, c->work);
    if (!c->st) c->st = s_mlp;
}

static SD_R(mia_grads) mia_g(const SD_R(sd_mia_ptrs) *g) {
    SD_R(mia_grads) d = {g->transition0.W, g->transition0.b, g->transition2.W, g->transition2.b,
                   g->encoder.W,     g->encoder.b,     g->decoder.W,     g->decoder.b};
    return d;
}

/* out = MIA(x_a, x_t, x_v) over N rows of D (bottleneck L): gradients into dx_a, dx_t, dx_v and
 * the MIA's weights. A failure is kept in c->st (the first one). */
static void mia_back(back_ctx *c, real *dx_a, real *dx_t, real *dx_v, const SD_R(sd_mia_ptrs) *gr,
                     const SD_R(sd_mia_ptrs) *pr, const real *dout, const SD_R(mia_cache) *cache, size_t N, int D,
                     int L) {
    SD_R(mia_weights) w = SD_R(sd_flow_mia_weights)(pr);
    SD_R(mia_grads) gm = mia_g(gr);
    const sd_status s_mia = SD_R(sd_mia_backward)(dx_a, dx_t, dx_v, &gm, dout, cache, &w, N, D, L, c->work);
    if (!c->st) c->st = s_mia;
}

/* Zeroes the activation gradients, and the frame gradients on the first backward after the
 * forward. A sharing flow's backward comes before its owner's: it zeroes its own (unshared) ones
 * and the owner's, and adds into the owner's for the shared modalities. */
static void zero_activation_grads(SD_R(sd_flow) *f) {
    const size_t nB = (size_t)f->B, nH = (size_t)f->H;
    memset(f->grad_area, 0, f->grad_area_size);
    SD_R(sd_flow) *holders[2] = {f, f->shared ? f->owner : NULL};
    for (int k = 0; k < 2; k++) {
        SD_R(sd_flow) *hf = holders[k];
        if (!hf || !hf->d_frames_dirty) continue;
        for (int i = 0; i < 3; i++)
            if (!((hf->shared >> i) & 1u))
                memset(hf->d_frames[i], 0, sizeof(real) * nB * (size_t)hf->T[i] * nH);
        hf->d_frames_dirty = 0;
    }
}

/* Steps 12-13: pred = z Wv^T + bv; r = ReLU(z W0^T + b0) W2^T + b2; then d_z from outside. */
static void heads_back(back_ctx *c, const real *d_pred, const real *d_z, const real *d_r) {
    SD_R(sd_flow) *f = c->f;
    const SD_R(sd_model_ptrs) *p = c->p;
    const size_t nB = (size_t)f->B, nC = (size_t)f->C;
    const int C = f->C, R = f->R;
    if (d_pred) {
        memcpy(f->d_pred, d_pred, sizeof(real) * nB);
        SD_R(sd_linear_backward)(f->d_z, c->g.fc_out_v.W, c->g.fc_out_v.b, f->d_pred, f->z, p->fc_out_v.W, nB, C, 1);
    }
    if (d_r) {
        SD_R(sd_linear_backward)(f->d_r_hidden, c->g.rnc2.W, c->g.rnc2.b, d_r, f->r_hidden, p->rnc2.W, nB, R, R);
        /* sd_relu_backward ADDS into its dx; d_r_hidden is used in place, so mask it directly. */
        for (size_t i = 0; i < nB * (size_t)R; i++)
            if (!(f->r_hidden[i] > 0.0f)) f->d_r_hidden[i] = 0.0f;
        SD_R(sd_linear_backward)(f->d_z, c->g.rnc0.W, c->g.rnc0.b, f->d_r_hidden, f->z, p->rnc0.W, nB, C, R);
    }
    if (d_z) add(f->d_z, d_z, nB * nC);
}

/* Steps 11-9 (z = sum_k beta_k W_k; beta = cross_fc_att(cross_attention_mlp(W)); W = sum_m w_m C_m,
 * the text slot C_t after MIA #2 when applied), then d_C_t from outside. */
static void fusion_back(back_ctx *c, const real *d_c_t) {
    SD_R(sd_flow) *f = c->f;
    const SD_R(sd_model_ptrs) *p = c->p;
    const int B = f->B, C = f->C, K = SD_QUERY_VIEWS;
    const size_t nB = (size_t)B, nC = (size_t)C, nK = (size_t)K;
    SD_R(sd_row_sum_backward)(f->d_beta, f->d_Wsum, f->d_z, f->beta, f->Wsum, B, K, C);
    SD_R(sd_linear_backward)(f->d_catt_out, c->g.cross_fc_att.W, c->g.cross_fc_att.b, f->d_beta,
                    f->cross_attention.out, p->cross_fc_att.W, nB, C, K);
    mlp_back(c, f->d_Wsum, &c->g.cross_attention_mlp, f->d_catt_out, &f->cross_attention, f->Wsum,
             &p->cross_attention_mlp, &c->s.cross_attention, nB);
    const real *Cm[3] = {f->cross_mlp[0].out, f->C_t, f->cross_mlp[2].out};
    real *dCm[3] = {f->d_C[0], f->d_C_t, f->d_C[2]};
    SD_R(sd_modality_sum_backward)(dCm, f->d_w, f->d_Wsum, f->w, Cm, 3, 0x7, B, K, C);
    if (d_c_t) add(f->d_C_t, d_c_t, nB * nK * nC);
}

/* Step 8b: C_t = MIA2(C_a, C_t_raw, C_v), or the identity; steps 8-7: the cross MLPs, then
 * cross-attention (dQ gathers all three modalities). */
static void cross_back(back_ctx *c) {
    SD_R(sd_flow) *f = c->f;
    const SD_R(sd_model_ptrs) *p = c->p;
    const int B = f->B, H = f->H, C = f->C, R = f->R, K = SD_QUERY_VIEWS;
    const size_t nB = (size_t)B, nC = (size_t)C, nK = (size_t)K;
    if (f->mia)
        mia_back(c, f->d_C[0], f->d_C[1], f->d_C[2], &c->g.mia2, &p->mia2, f->d_C_t, &f->mia2, nB * nK, C, R);
    else
        add(f->d_C[1], f->d_C_t, nB * nK * nC);
    for (int i = 0; i < 3; i++) {
        mlp_back(c, f->d_Y[i], &c->g.cross_mlp[i], f->d_C[i], &f->cross_mlp[i], f->Y[i], &p->cross_mlp[i],
                 &c->s.cross, nB * nK);
        const int *len = c->m->cfg.mask ? f->in.len[i] : NULL;
        f->cross[i].work = SD_R(sd_flow_work)(f, i);
        SD_R(sd_cross_attn_backward)(f->d_frames[i], f->d_Q, c->g.cross[i].query.W, c->g.cross[i].query.b,
                            c->g.cross[i].input.W, c->g.cross[i].input.b, f->d_Y[i], &f->cross[i],
                            f->frames[i], len,
                            f->Q, p->cross[i].query.W, p->cross[i].input.W, p->cross[i].input.b,
                            B, f->T[i], K, H, c->p_att);
    }
}

/* Step 6: dQ unstacked into the seven views (the text view also gets the distillation gradient
 * d_q_t) and through the query MLPs; step 5: the fused sums. Their inputs are h (h[1] = h_t). */
static void queries_back(back_ctx *c, const real *d_q_t, const real *const h[3], real *const dh[3]) {
    SD_R(sd_flow) *f = c->f;
    const SD_R(sd_model_ptrs) *p = c->p;
    const int B = f->B, H = f->H, K = SD_QUERY_VIEWS;
    const size_t nB = (size_t)B, nH = (size_t)H, nK = (size_t)K;
    for (int q = 0; q < K; q++)
        for (int b = 0; b < B; b++)
            memcpy(f->d_q[q] + (size_t)b * nH, f->d_Q + ((size_t)b * nK + (size_t)q) * nH,
                   sizeof(real) * nH);
    if (d_q_t) add(f->d_q[5], d_q_t, nB * nH);
    const real *query_in[SD_QUERY_VIEWS] = {f->fused[0], f->fused[1], f->fused[2], f->fused[3],
                                             h[0],        h[1],        h[2]};
    real *d_query_in[SD_QUERY_VIEWS] = {f->d_fused[0], f->d_fused[1], f->d_fused[2], f->d_fused[3],
                                         dh[0],         dh[1],         dh[2]};
    for (int q = 0; q < K; q++)
        mlp_back(c, d_query_in[q], &c->g.query_mlp[q], f->d_q[q], &f->query[q], query_in[q],
                 &p->query_mlp[q], &c->s.query, nB);
    static const unsigned fuse_use[4] = {0x7, 0x3, 0x6, 0x5};
    for (int i = 0; i < 4; i++)
        SD_R(sd_modality_sum_backward)(dh, f->d_w, f->d_fused[i], f->w, h, 3, fuse_use[i], B, 1, H);
}

/* Step 4: w = fc_att(attention_mlp(cat[h_a, h_t, h_v])), its gradient added into dh. */
static void weights_back(back_ctx *c, real *const dh[3]) {
    SD_R(sd_flow) *f = c->f;
    const SD_R(sd_model_ptrs) *p = c->p;
    const int B = f->B, H = f->H;
    const size_t nB = (size_t)B, nH = (size_t)H;
    SD_R(sd_linear_backward)(f->d_att_out, c->g.fc_att.W, c->g.fc_att.b, f->d_w, f->attention.out, p->fc_att.W,
                    nB, H, 3);
    mlp_back(c, f->d_cat_h, &c->g.attention_mlp, f->d_att_out, &f->attention, f->cat_h, &p->attention_mlp,
             &c->s.attention, nB);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 3; i++)
            add(dh[i] + (size_t)b * nH, f->d_cat_h + ((size_t)b * 3 + (size_t)i) * nH, nH);
}

/* Step 3b: h_t = MIA1(h_a, h_t_raw, h_v), or the identity; steps 3-1: the modality MLPs, pooling
 * and frame projections (inputs need no gradient). The frame weight gradient of a shared modality
 * is left to the owner (from the summed d_frames). */
static void branches_back(back_ctx *c) {
    SD_R(sd_flow) *f = c->f;
    const SD_R(sd_model) *m = c->m;
    const SD_R(sd_model_ptrs) *p = c->p;
    const int B = f->B, H = f->H, C = f->C;
    const size_t nB = (size_t)B, nH = (size_t)H;
    if (f->mia)
        mia_back(c, f->d_h[0], f->d_h[1], f->d_h[2], &c->g.mia1, &p->mia1, f->d_h_t, &f->mia1, nB, H, C);
    else
        add(f->d_h[1], f->d_h_t, nB * nH);
    for (int i = 0; i < 3; i++) {
        mlp_back(c, f->d_pooled[i], &c->g.modality_mlp[i], f->d_h[i], &f->modality[i], f->pooled[i],
                 &p->modality_mlp[i], &c->s.modality, nB);
        const int *len = m->cfg.mask ? f->in.len[i] : NULL;
        f->pool[i].work = SD_R(sd_flow_work)(f, i);
        SD_R(sd_attn_pool_backward)(f->d_frames[i], c->g.pool[i].context, c->g.pool[i].proj.W, c->g.pool[i].proj.b,
                           f->d_pooled[i], &f->pool[i], f->frames[i], len, p->pool[i].context,
                           p->pool[i].proj.W,
                           B, f->T[i], H, c->p_att);
        sd_frames_std std;
        if (!((f->shared >> i) & 1u))
            SD_R(sd_frames_backward)(c->g.frame[i].W, c->g.frame[i].b, f->d_frames[i], f->in.x[i], f->in.dtype[i],
                                     sd_flow_frames_std(&f->in, i, &std),
                                     nB * (size_t)f->T[i], m->cfg.dim[i], H, SD_R(sd_flow_work)(f, i));
    }
}

sd_status SD_R(sd_flow_backward)(SD_R(sd_flow) *f, const SD_R(sd_model) *m, real *grads, const real *d_pred,
                           const real *d_z, const real *d_r, const real *d_q_t,
                           const real *d_c_t) {
    if (f->borrowed) return SD_E_ARG; /* an evaluation forward that copied branches: none to go back through */
    back_ctx c;
    c.f = f;
    c.m = m;
    c.p = &m->p;
    SD_R(sd_model_bind)(m, grads, &c.g);
    c.s = SD_R(sd_flow_mlp_shapes)(m);
    c.p_mlp = f->training ? m->cfg.p_mlp : 0.0f;
    c.p_att = f->training ? m->cfg.p_att : 0.0f;
    c.work = SD_R(sd_flow_work)(f, 0);
    c.st = SD_OK;
    zero_activation_grads(f);
    heads_back(&c, d_pred, d_z, d_r);
    fusion_back(&c, d_c_t);
    cross_back(&c);
    real *const dh[3] = {f->d_h[0], f->d_h_t, f->d_h[2]};
    const real *const h[3] = {f->modality[0].out, f->h_t, f->modality[2].out};
    queries_back(&c, d_q_t, h, dh);
    weights_back(&c, dh);
    branches_back(&c);
    return c.st;
}
