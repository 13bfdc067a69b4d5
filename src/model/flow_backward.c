/* Backward pass of one SDUMC flow: the steps of flow.c in reverse. Activation gradients live
 * in the flow's workspace (zeroed here); parameter gradients are ADDED into `grads`.
 * Legend: B batch, T_m padded frames, H hidden, C = H/2, R = H/4, K = 7 query views. */
#include <string.h>

#include "model/flow.h"

#include "core/real.h"

static void add(real *y, const real *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* out = MLP(x): dx += dMLP/dx^T dout; weight gradients into g. work: the flow's layer scratch
 * (sized by its forward for every MLP and MIA of the flow). A failure is kept in *st (the first
 * one); the later steps still run, the caller discards the gradients. */
static void mlp_back(real *dx, const SD_R(sd_mlp_ptrs) *g, const real *dout, const SD_R(sd_mlp_buf) *buf,
                     const real *x, const SD_R(sd_mlp_ptrs) *p, const mlp_shape *s, size_t N, real drop,
                     real *work, sd_status *st) {
    const real *W[2] = {p->l[0].W, p->l[1].W};
    real *dW[2] = {g->l[0].W, g->l[1].W};
    real *db[2] = {g->l[0].b, g->l[1].b};
    const sd_status s_mlp = SD_R(sd_mlp_backward)(dx, dW, db, dout, buf->relu, buf->drop, buf->mask, x,
                                            W, s, N, drop, work);
    if (!*st) *st = s_mlp;
}

static SD_R(mia_grads) mia_g(const SD_R(sd_mia_ptrs) *g) {
    SD_R(mia_grads) d = {g->transition0.W, g->transition0.b, g->transition2.W, g->transition2.b,
                   g->encoder.W,     g->encoder.b,     g->decoder.W,     g->decoder.b};
    return d;
}

sd_status SD_R(sd_flow_backward)(SD_R(sd_flow) *f, const SD_R(sd_model) *m, real *grads, const real *d_pred,
                           const real *d_z, const real *d_r, const real *d_q_t,
                           const real *d_c_t) {
    sd_status st = SD_OK;
    /* The MLPs' and MIAs' scratch: the layer scratch, free between the layers' calls. */
    real *work = SD_R(sd_flow_work)(f, 0);
    SD_R(sd_model_ptrs) g;
    SD_R(sd_model_bind)(m, grads, &g);
    const SD_R(sd_model_ptrs) *p = &m->p;
    const int B = f->B, H = f->H, C = f->C, R = f->R, K = SD_QUERY_VIEWS;
    const size_t nB = (size_t)B, nH = (size_t)H, nC = (size_t)C, nK = (size_t)K;
    const real p_mlp = f->training ? m->cfg.p_mlp : 0.0f;
    const real p_att = f->training ? m->cfg.p_att : 0.0f;
    const sd_mlp_shapes s = SD_R(sd_flow_mlp_shapes)(m);
    memset(f->grad_area, 0, f->grad_area_size);
    /* Frame gradients: zeroed by the first backward after the forward. A sharing flow's
     * backward comes before its owner's: it zeroes its own (unshared) ones and the owner's, and
     * adds into the owner's for the shared modalities. */
    SD_R(sd_flow) *holders[2] = {f, f->shared ? f->owner : NULL};
    for (int k = 0; k < 2; k++) {
        SD_R(sd_flow) *hf = holders[k];
        if (!hf || !hf->d_frames_dirty) continue;
        for (int i = 0; i < 3; i++)
            if (!((hf->shared >> i) & 1u))
                memset(hf->d_frames[i], 0, sizeof(real) * nB * (size_t)hf->T[i] * nH);
        hf->d_frames_dirty = 0;
    }

    /* Steps 12-13: pred = z Wv^T + bv; r = ReLU(z W0^T + b0) W2^T + b2. */
    if (d_pred) {
        memcpy(f->d_pred, d_pred, sizeof(real) * nB);
        SD_R(sd_linear_backward)(f->d_z, g.fc_out_v.W, g.fc_out_v.b, f->d_pred, f->z, p->fc_out_v.W, nB, C, 1);
    }
    if (d_r) {
        SD_R(sd_linear_backward)(f->d_r_hidden, g.rnc2.W, g.rnc2.b, d_r, f->r_hidden, p->rnc2.W, nB, R, R);
        /* sd_relu_backward ADDS into its dx; d_r_hidden is used in place, so mask it directly. */
        for (size_t i = 0; i < nB * (size_t)R; i++)
            if (!(f->r_hidden[i] > 0.0f)) f->d_r_hidden[i] = 0.0f;
        SD_R(sd_linear_backward)(f->d_z, g.rnc0.W, g.rnc0.b, f->d_r_hidden, f->z, p->rnc0.W, nB, C, R);
    }
    if (d_z) add(f->d_z, d_z, nB * nC);

    /* Step 11: z = sum_k beta_k W_k. */
    SD_R(sd_row_sum_backward)(f->d_beta, f->d_Wsum, f->d_z, f->beta, f->Wsum, B, K, C);
    /* Step 10: beta = cross_fc_att(cross_attention_mlp(W)). */
    SD_R(sd_linear_backward)(f->d_catt_out, g.cross_fc_att.W, g.cross_fc_att.b, f->d_beta,
                    f->cross_attention.out, p->cross_fc_att.W, nB, C, K);
    mlp_back(f->d_Wsum, &g.cross_attention_mlp, f->d_catt_out, &f->cross_attention, f->Wsum,
             &p->cross_attention_mlp, &s.cross_attention, nB, p_mlp, work, &st);
    /* Step 9: W = sum_m w_m C_m (the text slot is C_t, after MIA #2 when applied). */
    const real *Cm[3] = {f->cross_mlp[0].out, f->C_t, f->cross_mlp[2].out};
    real *dCm[3] = {f->d_C[0], f->d_C_t, f->d_C[2]};
    SD_R(sd_modality_sum_backward)(dCm, f->d_w, f->d_Wsum, f->w, Cm, 3, 0x7, B, K, C);
    if (d_c_t) add(f->d_C_t, d_c_t, nB * nK * nC);
    /* Step 8b: C_t = MIA2(C_a, C_t_raw, C_v), or the identity. */
    if (f->mia) {
        SD_R(mia_weights) w2 = SD_R(sd_flow_mia_weights)(&p->mia2);
        SD_R(mia_grads) g2 = mia_g(&g.mia2);
        const sd_status s_mia = SD_R(sd_mia_backward)(f->d_C[0], f->d_C[1], f->d_C[2], &g2, f->d_C_t,
                                                &f->mia2, &w2, nB * nK, C, R, work);
        if (!st) st = s_mia;
    } else {
        add(f->d_C[1], f->d_C_t, nB * nK * nC);
    }
    /* Steps 8-7: cross MLPs, then cross-attention (dQ gathers all three modalities). */
    for (int i = 0; i < 3; i++) {
        mlp_back(f->d_Y[i], &g.cross_mlp[i], f->d_C[i], &f->cross_mlp[i], f->Y[i], &p->cross_mlp[i],
                 &s.cross, nB * nK, p_mlp, work, &st);
        const int *len = m->cfg.mask ? f->in.len[i] : NULL;
        f->cross[i].work = SD_R(sd_flow_work)(f, i);
        SD_R(sd_cross_attn_backward)(f->d_frames[i], f->d_Q, g.cross[i].query.W, g.cross[i].query.b,
                            g.cross[i].input.W, g.cross[i].input.b, f->d_Y[i], &f->cross[i],
                            f->frames[i], len,
                            f->Q, p->cross[i].query.W, p->cross[i].input.W, p->cross[i].input.b,
                            B, f->T[i], K, H, p_att);
    }
    /* Step 6: unstack dQ into the seven views; the text view also gets the distillation gradient. */
    for (int q = 0; q < K; q++)
        for (int b = 0; b < B; b++)
            memcpy(f->d_q[q] + (size_t)b * nH, f->d_Q + ((size_t)b * nK + (size_t)q) * nH,
                   sizeof(real) * nH);
    if (d_q_t) add(f->d_q[5], d_q_t, nB * nH);
    const real *h[3] = {f->modality[0].out, f->h_t, f->modality[2].out};
    real *dh[3] = {f->d_h[0], f->d_h_t, f->d_h[2]};
    const real *query_in[SD_QUERY_VIEWS] = {f->fused[0], f->fused[1], f->fused[2], f->fused[3],
                                             h[0],        h[1],        h[2]};
    real *d_query_in[SD_QUERY_VIEWS] = {f->d_fused[0], f->d_fused[1], f->d_fused[2], f->d_fused[3],
                                         dh[0],         dh[1],         dh[2]};
    for (int q = 0; q < K; q++)
        mlp_back(d_query_in[q], &g.query_mlp[q], f->d_q[q], &f->query[q], query_in[q],
                 &p->query_mlp[q], &s.query, nB, p_mlp, work, &st);
    /* Step 5: fused sums. */
    static const unsigned fuse_use[4] = {0x7, 0x3, 0x6, 0x5};
    for (int i = 0; i < 4; i++)
        SD_R(sd_modality_sum_backward)(dh, f->d_w, f->d_fused[i], f->w, h, 3, fuse_use[i], B, 1, H);
    /* Step 4: w = fc_att(attention_mlp(cat[h_a, h_t, h_v])). */
    SD_R(sd_linear_backward)(f->d_att_out, g.fc_att.W, g.fc_att.b, f->d_w, f->attention.out, p->fc_att.W,
                    nB, H, 3);
    mlp_back(f->d_cat_h, &g.attention_mlp, f->d_att_out, &f->attention, f->cat_h, &p->attention_mlp,
             &s.attention, nB, p_mlp, work, &st);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 3; i++)
            add(dh[i] + (size_t)b * nH, f->d_cat_h + ((size_t)b * 3 + (size_t)i) * nH, nH);
    /* Step 3b: h_t = MIA1(h_a, h_t_raw, h_v), or the identity. */
    if (f->mia) {
        SD_R(mia_weights) w1 = SD_R(sd_flow_mia_weights)(&p->mia1);
        SD_R(mia_grads) g1 = mia_g(&g.mia1);
        const sd_status s_mia = SD_R(sd_mia_backward)(f->d_h[0], f->d_h[1], f->d_h[2], &g1, f->d_h_t,
                                                &f->mia1, &w1, nB, H, C, work);
        if (!st) st = s_mia;
    } else {
        add(f->d_h[1], f->d_h_t, nB * nH);
    }
    /* Steps 3-1: modality MLPs, pooling, frame projections (inputs need no gradient). The
     * frame weight gradient of a shared modality is left to the owner (from the summed d_frames). */
    for (int i = 0; i < 3; i++) {
        mlp_back(f->d_pooled[i], &g.modality_mlp[i], f->d_h[i], &f->modality[i], f->pooled[i],
                 &p->modality_mlp[i], &s.modality, nB, p_mlp, work, &st);
        const int *len = m->cfg.mask ? f->in.len[i] : NULL;
        f->pool[i].work = SD_R(sd_flow_work)(f, i);
        SD_R(sd_attn_pool_backward)(f->d_frames[i], g.pool[i].context, g.pool[i].proj.W, g.pool[i].proj.b,
                           f->d_pooled[i], &f->pool[i], f->frames[i], len, p->pool[i].context,
                           p->pool[i].proj.W,
                           B, f->T[i], H, p_att);
        sd_frames_std std;
        if (!((f->shared >> i) & 1u))
            SD_R(sd_frames_backward)(g.frame[i].W, g.frame[i].b, f->d_frames[i], f->in.x[i], f->in.dtype[i],
                                     sd_flow_frames_std(&f->in, i, &std),
                                     nB * (size_t)f->T[i], m->cfg.dim[i], H, SD_R(sd_flow_work)(f, i));
    }
    return st;
}
