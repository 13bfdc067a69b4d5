/* The training objective: both flows on one batch, the six weighted loss terms and their gradient
 * into the parameters (MODEL.md section 4, objective.h). */
#include "train/objective.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "loss/loss.h"

sd_objective *sd_objective_new(void) {
    sd_objective *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->flow[0] = sd_flow_new();
    o->flow[1] = sd_flow_new();
    if (!o->flow[0] || !o->flow[1]) {
        sd_objective_free(o);
        return NULL;
    }
    return o;
}

void sd_objective_free(sd_objective *o) {
    if (!o) return;
    sd_flow_free(o->flow[0]);
    sd_flow_free(o->flow[1]);
    sd_free(o->buf);
    free(o);
}

int sd_objective_runs_missing(const sd_loss_weights *w) {
    /* Every term but w_full reads the text-missing flow: with all of them 0 (a complete-flow-only
     * baseline) the text-missing flow is not run at all. */
    return w->miss != 0.0f || w->tf != 0.0f || w->tq != 0.0f || w->f != 0.0f || w->rnc != 0.0f;
}

sd_status sd_objective_forward(sd_objective *o, const sd_model *m, const sd_flow_input *in_full,
                               const sd_flow_input *in_miss, const sd_loss_weights *w, int training,
                               sd_rng *rng, sd_error *err) {
    sd_flow *f0 = o->flow[0], *f1 = o->flow[1];
    sd_status st = sd_flow_forward(f0, m, in_full, 0, training, rng, err);
    /* Audio and video are the same tensors in both flows: their frame projections are computed
     * once (f1 borrows f0's) and get one weight-gradient GEMM on the summed frame gradients. */
    unsigned share = 0;
    for (int i = 0; i < 3; i += 2) {
        int same = in_full->x[i] == in_miss->x[i] && in_full->dtype[i] == in_miss->dtype[i] &&
                   in_full->T[i] == in_miss->T[i] && in_full->B == in_miss->B;
        for (int b = 0; same && b < in_full->B; b++) same = in_full->len[i][b] == in_miss->len[i][b];
        if (same) share |= 1u << i;
    }
    if (!st && sd_objective_runs_missing(w))
        st = share ? sd_flow_forward_shared(f1, m, in_miss, 1, training, rng, f0, share, err)
                   : sd_flow_forward(f1, m, in_miss, 1, training, rng, err);
    return st;
}

sd_status sd_objective_backward(sd_objective *o, const sd_model *m, const sd_loss_weights *w,
                                float *grads, const float *d_pred, const float *d_z,
                                const float *d_r0, const float *d_r1, const float *d_q1,
                                const float *d_c1, sd_error *err) {
    sd_flow *f0 = o->flow[0], *f1 = o->flow[1];
    const size_t B = (size_t)f0->B, C = (size_t)f0->C;
    /* f1 first: it adds its shared frame gradients into f0's, whose backward uses the sum. */
    sd_status st = SD_OK;
    if (sd_objective_runs_missing(w))
        st = sd_flow_backward(f1, m, grads, d_pred + B, d_z + B * C, d_r1, d_q1, d_c1);
    if (!st) st = sd_flow_backward(f0, m, grads, d_pred, d_z, d_r0, NULL, NULL);
    if (st) /* layer scratch missing, or an evaluation forward that borrowed branches (flow_decl.h) */
        return sd_fail(err, st, "flow backward: %s", sd_status_name(st));
    return SD_OK;
}

sd_status sd_objective_run(sd_objective *o, const sd_model *m, const sd_flow_input *in_full,
                           const sd_flow_input *in_miss, const float *labels,
                           const sd_loss_weights *w, int training, sd_rng *rng, float *grads,
                           sd_loss_terms *terms, sd_error *err) {
    sd_status st = sd_objective_forward(o, m, in_full, in_miss, w, training, rng, err);
    if (st) return st;
    sd_flow *f0 = o->flow[0], *f1 = o->flow[1];
    const size_t B = (size_t)in_full->B, H = (size_t)f0->H, C = (size_t)f0->C, R = (size_t)f0->R;
    const size_t K = SD_QUERY_VIEWS, n = 2 * B;

    /* Scratch: F [2B,R], Y [2B], dF [2B,R], RnC workspace, output gradients of both flows. */
    size_t need = n * R + n + n * R + sd_rnc_workspace_len((int)n) + 2 * B + 2 * B * C + B * H + B * K * C;
    if (need > o->buf_len) {
        sd_free(o->buf);
        o->buf = sd_alloc(need * sizeof(float));
        o->buf_len = o->buf ? need : 0;
        if (!o->buf) return sd_fail(err, SD_E_NOMEM, "out of memory: loss scratch");
    }
    float *F = o->buf, *Y = F + n * R, *dF = Y + n, *work = dF + n * R;
    float *d_pred = work + sd_rnc_workspace_len((int)n); /* [2B]: flow 0 then flow 1 */
    float *d_z = d_pred + 2 * B;                       /* [2B, C] */
    float *d_q1 = d_z + 2 * B * C;                     /* [B, H] */
    float *d_c1 = d_q1 + B * H;                        /* [B, K, C] */

    sd_loss_terms t;
    memset(&t, 0, sizeof t);
    if (w->full != 0.0f) t.full = sd_mse_forward(f0->pred, labels, B);
    if (w->miss != 0.0f) t.miss = sd_mse_forward(f1->pred, labels, B);
    if (w->tf != 0.0f) t.tf = sd_rmse_forward(sd_flow_q_t(f1), sd_flow_q_t(f0), B * H);
    if (w->tq != 0.0f) t.tq = sd_rmse_forward(f1->C_t, f0->C_t, B * K * C);
    if (w->f != 0.0f) t.f = sd_rmse_forward(f1->z, f0->z, B * C);
    if (w->rnc != 0.0f) {
        memcpy(F, f0->r, sizeof(float) * B * R);
        memcpy(F + B * R, f1->r, sizeof(float) * B * R);
        memcpy(Y, labels, sizeof(float) * B);
        memcpy(Y + B, labels, sizeof(float) * B);
        if (grads) { /* a training step: the loss and its gradient from one pass (dF [2B,R]) */
            memset(dF, 0, sizeof(float) * n * R);
            t.rnc = sd_rnc_forward_backward(dF, F, Y, (int)n, (int)R, SD_RNC_TEMPERATURE, w->rnc, work);
        } else {
            t.rnc = sd_rnc_forward(F, Y, (int)n, (int)R, SD_RNC_TEMPERATURE, work);
        }
    }
    t.total = w->full * t.full + w->miss * t.miss + w->tf * t.tf + w->tq * t.tq + w->f * t.f +
              w->rnc * t.rnc;
    *terms = t;
    if (!isfinite(t.total)) return SD_OK; /* the caller reports which term diverged */
    if (!grads) return SD_OK;

    /* The backwards add into the output gradients, so they start at 0 (dF already holds the RnC
     * gradient). */
    memset(d_pred, 0, sizeof(float) * (size_t)(o->buf + need - d_pred));
    if (w->full != 0.0f) sd_mse_backward(d_pred, f0->pred, labels, B, w->full);
    if (w->miss != 0.0f) sd_mse_backward(d_pred + B, f1->pred, labels, B, w->miss);
    if (w->tf != 0.0f) sd_rmse_backward(d_q1, NULL, sd_flow_q_t(f1), sd_flow_q_t(f0), B * H, w->tf);
    if (w->tq != 0.0f) sd_rmse_backward(d_c1, NULL, f1->C_t, f0->C_t, B * K * C, w->tq);
    if (w->f != 0.0f) sd_rmse_backward(d_z + B * C, d_z, f1->z, f0->z, B * C, w->f);
    float *d_r0 = NULL, *d_r1 = NULL;
    if (w->rnc != 0.0f) {
        d_r0 = dF;
        d_r1 = dF + B * R;
    }
    return sd_objective_backward(o, m, w, grads, d_pred, d_z, d_r0, d_r1, d_q1, d_c1, err);
}
