/* Finite-difference check of the assembled network's backward, in double (the flows built with
 * _f64, src/model/flow.h): both flows of a training step on one small batch (B = 3, H = 12, three
 * modalities of 4-6 dims and 3-5 padded frames), the text-missing flow with MIA on and sharing the
 * complete flow's audio and video frames, and a loss with the six terms of the training
 * objective. Every parameter tensor the network uses is checked, on a random sample of its
 * coordinates plus its largest derivative, against the central differences of that loss by the
 * shared checker (tests/gradcheck.h, its one acceptance rule); the tensors it never uses must get
 * no gradient at all, and the gradients are added onto a prefilled buffer (backward ADDS).
 *
 * The loss, in the objective's terms (src/train/objective.c), with distinct weights so that a term
 * lost or counted twice shows:
 *   L = w_full MSE(pred_0, y) + w_miss MSE(pred_1, y) + w_tf RMSE(q_t1, Q*) + w_tq RMSE(C_t1, C*)
 *       + w_f RMSE(z_1, z_0) + w_rnc RnC([r_0; r_1], [y; y]).
 * The objective stops the gradient of the two text distillation terms at the complete flow's q_t
 * and C_t; here their targets Q*, C* are fixed tensors, which gives the same backward paths (into
 * the text-missing flow only) with a loss whose true gradient that is.
 *
 * Dropout is on, its masks fixed: every evaluation draws them from the same seed (the draws depend
 * on the shapes only), so the network is the same smooth function of its parameters. A second
 * case runs without dropout in the no-mask mode (padded frames take part); a third feeds raw-scale
 * inputs that the frame projection standardises (mean/inv). A coordinate whose
 * perturbed evaluations switch a ReLU on or off (any MLP, MIA or RnC-head unit) is skipped; the
 * test counts them and requires them to be few.
 *
 * The point of the check, and why. The acceptance rule is absolute below 1e-6 and asks for
 * derivatives above 1e-3 (non-vacuity), so the problem must have gradients of order 1e-3 to 1
 * while each evaluation of L rounds at ~1e-16 |L|. Hence: labels and distillation targets near
 * what the network gives at the start (the loss terms are then ~0.05, RnC's ~1), the loss weights
 * times 30, and PyTorch's initialisation times 1.5 (at 1.0 and H = 12 the cross-attention queries
 * get gradients ~1e-7 of the others: the attention is nearly uniform). The step is h = 1e-3: the
 * measured rounding noise of the difference at h = 3e-4 (~1e-14 absolute per term, unscaled) gave
 * relative errors up to 4e-6 on the smallest derivatives, 1e-3 brings the worst to ~2e-7; the
 * truncation error stays far below (h^4 = 1e-12). The point is fixed (seeds 11 and 12). At other
 * points tried while writing this test (PyTorch's scale, larger scales, other seeds) the check met
 * places where the loss is barely smooth or flat, not errors of the backward: two rows of RnC's
 * features almost equal (the distance's square root has huge higher derivatives there: the
 * difference converged to the analytic value only as h went down to 1e-4), whole branches with
 * every ReLU off at H = 12 (tensors without any gradient), or a network whose outputs reach 1e5.
 *
 * Legend: B batch, T_m padded frames, D_m input dims, H hidden, C = H/2, R = H/4, K = 7 views. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "harness.h"
#include "loss/loss.h"
#include "model/flow.h"
#include "train/objective.h"

#define FLOW_B 3
#define FLOW_H 12
#define PARAM_SCALE 1.5        /* the initialisation's values times this (see the header) */
#define FLOW_FD_H 1e-3         /* the difference's step (the layers' SD_FD_H is 3e-4; see the header) */
/* The relative error's floor (gradcheck.h): L carries the terms' weights (x30), so one evaluation
 * rounds by ~1e-14 and the difference's noise 1.5 e / h reaches ~1e-11 absolute; measured: 2.4e-12
 * as the numerical derivative of an exactly zero one (orgin_linear_change.0.bias, AVX-512 OpenBLAS).
 * 1e-5 accepts an absolute error of 1e-11 below derivatives of 1e-5; a wrong term is still of
 * order 1 relative, and a tensor's largest derivative must still exceed SD_FD_MIN_GRAD. */
#define FLOW_FD_FLOOR 1e-5
#define SAMPLE_PER_TENSOR 8    /* coordinates drawn per tensor, plus its largest derivative */
#define MAX_KINK_FRACTION 0.05 /* coordinates skipped for a ReLU switch, at most this share */
#define PREFILL 0.375          /* the gradients are added onto this (backward ADDS) */

/* The terms' weights (full, miss, tf, tq, f, rnc): distinct, and times 30 (see the header). */
static const double weights[6] = {30, 21, 15, 12, 9, 6};

typedef struct {
    sd_model_f64 m;
    const sd_param_table *table;
    const unsigned char *use; /* sd_param_use of each tensor (MIA on: all but SD_USE_NEVER used) */
    sd_flow_f64 *flow[2];
    sd_flow_input in[2]; /* complete, text-missing */
    float mean[4][8], inv[4][8]; /* per-dim standardisation of each input (standardised case) */
    double *x[4];        /* audio, text, video, simulated text: [B, T_m, D_m] */
    int len[4][FLOW_B];
    double y[FLOW_B];
    double *Qstar, *Cstar; /* [B,H], [B,K,C] */
    double *F, *Y, *work;  /* RnC rows [2B,R], labels [2B], workspace */
    uint64_t dropout_seed;
    int failed;            /* a forward failed: the case fails once */
} flow_case;

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_grad_flow: out of memory\n");
        abort();
    }
    return p;
}

/* Both forwards on the current parameters, dropout masks from the case's fixed seed. */
static int run_forwards(flow_case *c) {
    sd_rng rng = sd_rng_make(c->dropout_seed, SD_STREAM_DROPOUT);
    sd_error err = {0};
    const int training = 1;
    sd_status st = sd_flow_forward_f64(c->flow[0], &c->m, &c->in[0], 0, training, &rng, &err);
    if (!st) st = sd_flow_forward_shared_f64(c->flow[1], &c->m, &c->in[1], 1, training, &rng, c->flow[0], 0x5, &err);
    if (st && !c->failed++) sd_test_fail(__FILE__, __LINE__, "flow forward: %s", err.msg);
    return st == SD_OK;
}

static void gather_rnc(flow_case *c) {
    const size_t B = FLOW_B, R = (size_t)c->flow[0]->R;
    memcpy(c->F, c->flow[0]->r, B * R * sizeof(double));
    memcpy(c->F + B * R, c->flow[1]->r, B * R * sizeof(double));
}

static double flow_loss(void *v) {
    flow_case *c = v;
    if (!run_forwards(c)) return NAN;
    const sd_flow_f64 *f0 = c->flow[0], *f1 = c->flow[1];
    const size_t B = FLOW_B, H = (size_t)f0->H, C = (size_t)f0->C, R = (size_t)f0->R, K = SD_QUERY_VIEWS;
    gather_rnc(c);
    return weights[0] * sd_mse_forward_f64(f0->pred, c->y, B) + weights[1] * sd_mse_forward_f64(f1->pred, c->y, B) +
           weights[2] * sd_rmse_forward_f64(sd_flow_q_t_f64(f1), c->Qstar, B * H) +
           weights[3] * sd_rmse_forward_f64(f1->C_t, c->Cstar, B * K * C) +
           weights[4] * sd_rmse_forward_f64(f1->z, f0->z, B * C) +
           weights[5] * sd_rnc_forward_f64(c->F, c->Y, 2 * FLOW_B, (int)R, SD_RNC_TEMPERATURE, c->work);
}

static uint64_t mlp_signs(uint64_t h, const sd_mlp_buf_f64 *b, const mlp_shape *s, size_t N) {
    return sd_fd_sign_state(h, b->relu, sd_mlp_cache_len_f64(s, N));
}

/* The on/off state of every ReLU unit of both flows (sd_fd_sign_state). */
static uint64_t flow_relu_state(void *v) {
    const flow_case *c = v;
    uint64_t h = SD_FNV1A_INIT;
    const sd_mlp_shapes s = sd_flow_mlp_shapes_f64(&c->m);
    const size_t B = FLOW_B, K = SD_QUERY_VIEWS;
    for (int k = 0; k < 2; k++) {
        const sd_flow_f64 *f = c->flow[k];
        for (int i = 0; i < 3; i++) {
            h = mlp_signs(h, &f->modality[i], &s.modality, B);
            h = mlp_signs(h, &f->cross_mlp[i], &s.cross, B * K);
        }
        h = mlp_signs(h, &f->attention, &s.attention, B);
        for (size_t q = 0; q < K; q++) h = mlp_signs(h, &f->query[q], &s.query, B);
        h = mlp_signs(h, &f->cross_attention, &s.cross_attention, B);
        if (f->mia) {
            h = sd_fd_sign_state(h, f->mia1.h, B * (size_t)f->H);
            h = sd_fd_sign_state(h, f->mia2.h, B * K * (size_t)f->C);
        }
        h = sd_fd_sign_state(h, f->r_hidden, B * (size_t)f->R);
    }
    return h;
}

/* grads += dL/dparams by the flows' backwards (the text-missing flow's first: it adds its shared
 * frame gradients into the complete flow's). */
static int flow_gradient(flow_case *c, double *grads) {
    if (!run_forwards(c)) return 0;
    const sd_flow_f64 *f0 = c->flow[0], *f1 = c->flow[1];
    const size_t B = FLOW_B, H = (size_t)f0->H, C = (size_t)f0->C, R = (size_t)f0->R, K = SD_QUERY_VIEWS;
    double *d_pred0 = dalloc(B), *d_pred1 = dalloc(B), *d_z0 = dalloc(B * C), *d_z1 = dalloc(B * C);
    double *d_q1 = dalloc(B * H), *d_c1 = dalloc(B * K * C), *dF = dalloc(2 * B * R);
    sd_mse_backward_f64(d_pred0, f0->pred, c->y, B, weights[0]);
    sd_mse_backward_f64(d_pred1, f1->pred, c->y, B, weights[1]);
    sd_rmse_backward_f64(d_q1, NULL, sd_flow_q_t_f64(f1), c->Qstar, B * H, weights[2]);
    sd_rmse_backward_f64(d_c1, NULL, f1->C_t, c->Cstar, B * K * C, weights[3]);
    sd_rmse_backward_f64(d_z1, d_z0, f1->z, f0->z, B * C, weights[4]);
    gather_rnc(c);
    sd_rnc_backward_f64(dF, c->F, c->Y, 2 * FLOW_B, (int)R, SD_RNC_TEMPERATURE, weights[5], c->work);
    sd_status st = sd_flow_backward_f64(c->flow[1], &c->m, grads, d_pred1, d_z1, dF + B * R, d_q1, d_c1);
    EXPECT(st == SD_OK, "text-missing flow backward: %s", sd_status_name(st));
    st = sd_flow_backward_f64(c->flow[0], &c->m, grads, d_pred0, d_z0, dF, NULL, NULL);
    EXPECT(st == SD_OK, "complete flow backward: %s", sd_status_name(st));
    free(d_pred0), free(d_pred1), free(d_z0), free(d_z1), free(d_q1), free(d_c1), free(dF);
    return 1;
}

/* A model of the small configuration, its parameters in double, and a batch: modality m has T_m
 * padded frames, sample b len[m][b] real ones (the others zero, as batches hold them). */
static void case_setup(flow_case *c, sd_model **fm, int mask, float p_mlp, float p_att, uint64_t seed,
                       int standardise) {
    memset(c, 0, sizeof *c);
    static const int dims[4] = {5, 6, 4, 6}, T[4] = {4, 3, 5, 4};
    static const int len[4][FLOW_B] = {{4, 2, 3}, {3, 1, 2}, {5, 4, 1}, {2, 4, 3}};
    sd_model_config cfg = sd_model_default_config(dims[0], dims[1], dims[2]);
    cfg.hidden = FLOW_H;
    cfg.mia = 1;
    cfg.mask = mask;
    cfg.p_mlp = p_mlp;
    cfg.p_att = p_att;
    cfg.seed = seed;
    sd_error err = {0};
    EXPECT(sd_model_create(&cfg, fm, &err) == SD_OK, "model: %s", err.msg);
    if (!*fm) abort();
    const sd_model *m = *fm;
    c->m.cfg = m->cfg;
    c->m.table = m->table;
    c->table = &m->table;
    c->use = m->use;
    c->m.params = dalloc(m->table.total);
    for (size_t i = 0; i < m->table.total; i++) c->m.params[i] = PARAM_SCALE * m->params[i];
    sd_model_bind_f64(&c->m, c->m.params, &c->m.p);

    sd_rng r = sd_rng_make(seed + 1000, SD_STREAM_TEST);
    for (int k = 0; k < 4; k++) {
        c->x[k] = dalloc((size_t)FLOW_B * T[k] * dims[k]);
        for (int b = 0; b < FLOW_B; b++) {
            c->len[k][b] = len[k][b];
            for (int t = 0; t < len[k][b]; t++)
                for (int d = 0; d < dims[k]; d++)
                    c->x[k][((size_t)b * T[k] + t) * dims[k] + d] = sd_rng_normal(&r);
        }
        if (!standardise) continue;
        /* raw-scale features, mean + normal / inv per dim, which the frame projection standardises
         * back ((x - mean) * inv on the real frames, model/frames.c) */
        for (int d = 0; d < dims[k]; d++) {
            c->mean[k][d] = (float)(2.0 + d - 0.5 * k);
            c->inv[k][d] = (float)(0.25 * (1 + d % 3));
        }
        for (int b = 0; b < FLOW_B; b++)
            for (int t = 0; t < len[k][b]; t++)
                for (int d = 0; d < dims[k]; d++) {
                    double *v = &c->x[k][((size_t)b * T[k] + t) * dims[k] + d];
                    *v = c->mean[k][d] + *v / c->inv[k][d];
                }
    }
    for (int f = 0; f < 2; f++) {
        sd_flow_input *in = &c->in[f];
        in->B = FLOW_B;
        for (int i = 0; i < 3; i++) {
            const int k = (i == 1 && f == 1) ? 3 : i; /* the text-missing flow reads simulated text */
            in->x[i] = c->x[k];
            in->T[i] = T[k];
            in->len[i] = c->len[k];
            in->dtype[i] = SD_DTYPE_F32; /* elements of the flow's precision: double */
            in->mean[i] = standardise ? c->mean[k] : NULL;
            in->inv[i] = standardise ? c->inv[k] : NULL;
        }
        c->flow[f] = sd_flow_new_f64();
        if (!c->flow[f]) abort();
    }
    const size_t H = FLOW_H, C = H / 2, R = H / 4, K = SD_QUERY_VIEWS;
    c->Qstar = dalloc(FLOW_B * H);
    c->Cstar = dalloc(FLOW_B * K * C);
    c->F = dalloc(2 * FLOW_B * R);
    c->Y = dalloc(2 * FLOW_B);
    c->work = dalloc(sd_rnc_workspace_len_f64(2 * FLOW_B));
    c->dropout_seed = seed + 7;
    /* Labels and distillation targets near what the network gives at the start (see the header). */
    if (!run_forwards(c)) return;
    static const double label_offset[FLOW_B] = {-0.3, 0.1, 0.2};
    for (int b = 0; b < FLOW_B; b++)
        c->y[b] = c->Y[b] = c->Y[b + FLOW_B] = c->flow[0]->pred[b] + label_offset[b];
    const double *q_t = sd_flow_q_t_f64(c->flow[1]);
    for (size_t i = 0; i < FLOW_B * H; i++) c->Qstar[i] = q_t[i] + 0.1 * sd_rng_normal(&r);
    for (size_t i = 0; i < FLOW_B * K * C; i++) c->Cstar[i] = c->flow[1]->C_t[i] + 0.1 * sd_rng_normal(&r);
}

static void case_free(flow_case *c, sd_model *fm) {
    for (int f = 0; f < 2; f++) sd_flow_free_f64(c->flow[f]);
    for (int k = 0; k < 4; k++) free(c->x[k]);
    free(c->m.params), free(c->Qstar), free(c->Cstar), free(c->F), free(c->Y), free(c->work);
    sd_model_free(fm);
}

/* Checks every tensor of the case; returns the coordinates checked. */
static size_t check_flow(const char *label, int mask, float p_mlp, float p_att, uint64_t seed, int standardise) {
    flow_case c;
    sd_model *fm = NULL;
    case_setup(&c, &fm, mask, p_mlp, p_att, seed, standardise);
    const size_t total = c.table->total;
    double *grads = dalloc(total);
    for (size_t i = 0; i < total; i++) grads[i] = PREFILL;
    if (!flow_gradient(&c, grads)) {
        free(grads);
        case_free(&c, fm);
        return 0;
    }
    for (size_t i = 0; i < total; i++) grads[i] -= PREFILL;

    const sd_fd_fn f = {flow_loss, &c, FLOW_FD_H, flow_relu_state, FLOW_FD_FLOOR};
    size_t checked = 0, kinks = 0, unused = 0;
    double worst = 0;
    for (int t = 0; t < c.table->count; t++) {
        const sd_tensor_spec *spec = &c.table->specs[t];
        double *g = grads + spec->offset;
        if (c.use[t] == SD_USE_NEVER) { /* registered by the reference module, never used */
            for (size_t i = 0; i < spec->numel; i++)
                EXPECT(g[i] == 0.0, "%s: unused tensor got gradient %g at %zu", spec->name, g[i], i);
            unused++;
            continue;
        }
        /* RnC sees only the distances between the rows of r: moving every row alike (the bias of
         * orgin_linear_change.2; of .0 when every unit of the head is on) changes nothing. */
        const int may_be_zero = strstr(spec->name, "orgin_linear_change") && strstr(spec->name, ".bias");
        const sd_fd_tensor ten = {spec->name, c.m.params + spec->offset, g, spec->numel, may_be_zero};
        sd_fd_result r;
        sd_fd_check(&f, &ten, NULL, SAMPLE_PER_TENSOR, seed * 1000 + (uint64_t)t, &r);
        char name[200];
        snprintf(name, sizeof name, "%s d%s", label, spec->name);
        SD_FD_EXPECT(name, &r, may_be_zero);
        checked += r.checked;
        kinks += r.skipped;
        if (!(r.worst <= worst)) worst = r.worst;
    }
    printf("  %s: %d tensors (%zu unused, no gradient), %zu coordinates checked, worst rel err %.1e, "
           "%zu skipped for a ReLU switch\n",
           label, c.table->count, unused, checked, worst, kinks);
    EXPECT(checked > 0 && (double)kinks <= MAX_KINK_FRACTION * (double)(checked + kinks),
           "%s: %zu of %zu coordinates switched a ReLU", label, kinks, checked + kinks);
    free(grads);
    case_free(&c, fm);
    return checked;
}

static void test_flow_backward_dropout_masks(void) {
    check_flow("flow[mia, dropout masks fixed, padding masked]", 1, 0.3f, 0.5f, 11, 0);
}

static void test_flow_backward_no_dropout_no_mask(void) {
    check_flow("flow[mia, no dropout, no-mask mode]", 0, 0.0f, 0.0f, 12, 0);
}

/* Training on raw-scale features standardised inside the frame projection (sd_flow_input
 * mean/inv): the projection's weight gradient must see the standardised frames too. */
static void test_flow_backward_standardised(void) {
    check_flow("flow[mia, dropout masks fixed, standardised raw-scale inputs]", 1, 0.3f, 0.5f, 11, 1);
}

int main(void) {
    sd_test_run("grad_flow_backward_dropout_masks", test_flow_backward_dropout_masks);
    sd_test_run("grad_flow_backward_no_dropout_no_mask", test_flow_backward_no_dropout_no_mask);
    sd_test_run("grad_flow_backward_standardised", test_flow_backward_standardised);
    return sd_test_finish();
}
