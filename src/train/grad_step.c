/* Training-step gradients over gradient chunks and MPI ranks (grad_step.h): the whole-batch step,
 * the chunks' forwards, the loss terms put together from every chunk, the chunks' backwards and
 * the order-independent sum of their gradients.
 * Legend: B the batch (all chunks), Bc one chunk, K chunks, H hidden, C = H/2, R = H/4, V = 7
 * query views, P parameters. */
#include "train/grad_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/dist.h"
#include "loss/loss.h"
#include "train/grad_sum.h"
#include "train/train.h"

#define DROPOUT_ROOM_BITS 36

/* A chunk's record: its size and its sums of squares of the five MSE/RMSE terms. */
enum { REC_B, REC_FULL, REC_MISS, REC_TF, REC_TQ, REC_F, REC_LEN };

struct sd_grad_step {
    int chunks, first, count, ranks, rank;
    size_t P;
    sd_batcher *batcher;
    sd_objective *whole;   /* chunks == 1 */
    const sd_batch *batch; /* chunks == 1: the step's batch */
    sd_objective **obj;    /* [count] one per chunk of this rank */
    const sd_batch **part; /* [count] the step's chunks */
    float **g;             /* [count][P] the chunks' parameter gradients */
    int8_t *e;             /* [P] exponent codes (grad_sum.h) */
    int64_t *q;            /* [P] fixed-point sums */
    double *rec;           /* [K, REC_LEN] every chunk's record */
    size_t *bytes;         /* [ranks] per-rank sizes of a gather */
    float *buf;            /* loss-side scratch, grown on demand */
    size_t buf_len;
    const sd_norm *norm;   /* inputs standardised with it (NULL: as read) */
};

void sd_grad_step_chunks_of(int chunks, int rank, int ranks, int *first, int *count) {
    *first = (int)((int64_t)rank * chunks / ranks);
    *count = (int)((int64_t)(rank + 1) * chunks / ranks) - *first;
}

sd_rng sd_grad_chunk_rng(uint64_t seed, int64_t step, int chunk) {
    sd_rng r = sd_rng_make(seed, (uint64_t)SD_STREAM_DROPOUT + ((uint64_t)(chunk + 1) << 32));
    r.index = (uint64_t)step << DROPOUT_ROOM_BITS;
    return r;
}

void sd_grad_step_free(sd_grad_step *g) {
    if (!g) return;
    sd_batcher_close(g->batcher);
    sd_objective_free(g->whole);
    for (int j = 0; j < g->count; j++) {
        if (g->obj) sd_objective_free(g->obj[j]);
        if (g->g) sd_free(g->g[j]);
    }
    free(g->obj);
    free(g->part);
    free(g->g);
    free(g->e);
    free(g->q);
    free(g->rec);
    free(g->bytes);
    sd_free(g->buf);
    free(g);
}

sd_status sd_grad_step_new(int chunks, size_t params, sd_grad_step **out, sd_error *err) {
    *out = NULL;
    const int ranks = sd_dist_size();
    if (chunks < 1 || chunks < ranks)
        return sd_fail(err, SD_E_ARG, "%d gradient chunks cannot be shared by %d ranks", chunks, ranks);
    sd_grad_step *g = calloc(1, sizeof *g);
    if (!g) return sd_fail(err, SD_E_NOMEM, "out of memory");
    g->chunks = chunks;
    g->ranks = ranks;
    g->rank = sd_dist_rank();
    g->P = params;
    int ok;
    if (chunks == 1) {
        ok = (g->whole = sd_objective_new()) != NULL;
    } else {
        sd_grad_step_chunks_of(chunks, g->rank, ranks, &g->first, &g->count);
        g->obj = calloc((size_t)g->count, sizeof *g->obj);
        g->part = calloc((size_t)g->count, sizeof *g->part);
        g->g = calloc((size_t)g->count, sizeof *g->g);
        g->e = malloc(params + 1);
        g->q = malloc(sizeof *g->q * (params + 1));
        g->rec = calloc((size_t)chunks * REC_LEN, sizeof *g->rec);
        g->bytes = calloc((size_t)ranks, sizeof *g->bytes);
        ok = g->obj && g->part && g->g && g->e && g->q && g->rec && g->bytes;
        for (int j = 0; ok && j < g->count; j++)
            ok = (g->obj[j] = sd_objective_new()) != NULL && (g->g[j] = sd_alloc(sizeof(float) * (params + 1))) != NULL;
    }
    if (!ok) {
        sd_grad_step_free(g);
        return sd_fail(err, SD_E_NOMEM, "out of memory for %d gradient chunks of %zu parameters", chunks, params);
    }
    *out = g;
    return SD_OK;
}

sd_status sd_grad_step_open_epoch(sd_grad_step *g, const sd_dataset *ds, const sd_batcher_options *bo,
                                  int64_t *steps, sd_error *err) {
    sd_grad_step_close_epoch(g);
    sd_batcher_options o = *bo;
    o.chunks = g->chunks;
    o.chunk_first = g->first;
    o.chunk_count = g->count;
    o.hold = g->chunks > 1 ? g->count : 1;
    sd_status st = g->batcher ? sd_batcher_reuse(g->batcher, &o, err) : sd_batcher_open(ds, &o, &g->batcher, err);
    if (g->chunks > 1) st = sd_dist_agree(st, err);
    if (st) return st;
    *steps = sd_batcher_num_batches(g->batcher) / (g->chunks > 1 ? g->count : 1);
    return SD_OK;
}

void sd_grad_step_close_epoch(sd_grad_step *g) {
    g->batch = NULL;
    for (int j = 0; g->part && j < g->count; j++) g->part[j] = NULL;
}

sd_eval_reuse sd_grad_step_eval_reuse(sd_grad_step *g) {
    sd_eval_reuse r = {&g->batcher, g->chunks == 1 ? g->whole : g->obj[0]};
    return r;
}

void sd_grad_step_set_norm(sd_grad_step *g, const sd_norm *n) { g->norm = n; }

int sd_grad_step_next(sd_grad_step *g, sd_error *err) {
    if (g->chunks == 1) {
        return sd_batcher_next(g->batcher, &g->batch, err);
    }
    int r = 1;
    for (int j = 0; r == 1 && j < g->count; j++)
        r = sd_batcher_next(g->batcher, &g->part[j], err);
    sd_status st = r < 0 ? (err && err->code ? err->code : SD_E_IO) : SD_OK;
    if (sd_dist_agree(st, err)) return -1;
    return r;
}

/* The two flows' inputs of batch b, standardised as they are read when the run standardises (the
 * simulated text with the text's statistics: both flows share the text projection). */
static void flow_inputs(const sd_grad_step *g, const sd_batch *b, sd_flow_input *full, sd_flow_input *miss) {
    *full = sd_flow_input_from_batch(b, 0);
    *miss = sd_flow_input_from_batch(b, 1);
    for (int k = 0; g->norm && k < 3; k++) {
        full->mean[k] = miss->mean[k] = g->norm->mean[k];
        full->inv[k] = miss->inv[k] = g->norm->inv[k];
    }
}

/* chunks == 1: the batch at once, as the single-process training always ran. */
static sd_status whole_step(sd_grad_step *g, const sd_model *m, const sd_loss_weights *w, sd_rng *rng,
                            float *grads, sd_loss_terms *t, int *batch, sd_error *err) {
    const sd_batch *b = g->batch;
    sd_flow_input in_full, in_miss;
    flow_inputs(g, b, &in_full, &in_miss);
    memset(grads, 0, sizeof(float) * g->P);
    *batch = b->B;
    return sd_objective_run(g->whole, m, &in_full, &in_miss, b->label, w, 1, rng, grads, t, err);
}

/* Forward of chunk j with its own dropout stream, and its record. */
static sd_status chunk_forward(sd_grad_step *g, int j, const sd_model *m, const sd_loss_weights *w,
                               uint64_t seed, int64_t step, double *rec, sd_error *err) {
    const sd_batch *b = g->part[j];
    memset(rec, 0, sizeof(double) * REC_LEN);
    rec[REC_B] = b->B;
    if (b->B == 0) return SD_OK;
    sd_flow_input in_full, in_miss;
    flow_inputs(g, b, &in_full, &in_miss);
    sd_rng rng = sd_grad_chunk_rng(seed, step, g->first + j);
    const uint64_t base = rng.index;
    sd_status st = sd_objective_forward(g->obj[j], m, &in_full, &in_miss, w, 1, &rng, err);
    if (st) return st;
    if (rng.index - base > ((uint64_t)1 << DROPOUT_ROOM_BITS))
        return sd_fail(err, SD_E_ARG, "a gradient chunk drew more dropout numbers than its stream has room for "
                                      "(2^%d): use more gradient chunks", DROPOUT_ROOM_BITS);
    const sd_flow *f0 = g->obj[j]->flow[0], *f1 = g->obj[j]->flow[1];
    const size_t Bc = (size_t)b->B, H = (size_t)f0->H, C = (size_t)f0->C;
    if (w->full != 0.0f) rec[REC_FULL] = sd_sq_diff_sum(f0->pred, b->label, Bc);
    if (w->miss != 0.0f) rec[REC_MISS] = sd_sq_diff_sum(f1->pred, b->label, Bc);
    if (w->tf != 0.0f) rec[REC_TF] = sd_sq_diff_sum(sd_flow_q_t(f1), sd_flow_q_t(f0), Bc * H);
    if (w->tq != 0.0f) rec[REC_TQ] = sd_sq_diff_sum(f1->C_t, f0->C_t, Bc * SD_QUERY_VIEWS * C);
    if (w->f != 0.0f) rec[REC_F] = sd_sq_diff_sum(f1->z, f0->z, Bc * C);
    return SD_OK;
}

static sd_status reserve(sd_grad_step *g, size_t floats, sd_error *err) {
    if (floats <= g->buf_len) return SD_OK;
    sd_free(g->buf);
    g->buf = sd_alloc(sizeof(float) * floats);
    g->buf_len = g->buf ? floats : 0;
    return g->buf ? SD_OK : sd_fail(err, SD_E_NOMEM, "out of memory: loss scratch of %zu floats", floats);
}

/* Samples in chunks [c0, c0 + n) (from the records). */
static int64_t samples_in(const sd_grad_step *g, int c0, int n) {
    int64_t s = 0;
    for (int c = c0; c < c0 + n; c++) s += (int64_t)g->rec[(size_t)c * REC_LEN + REC_B];
    return s;
}

/* Gathers rows [rows of this rank, width] of every rank into all, in rank (= chunk) order. */
static sd_status gather_rows(sd_grad_step *g, const float *mine, float *all, size_t width, sd_error *err) {
    for (int r = 0; r < g->ranks; r++) {
        int first, count;
        sd_grad_step_chunks_of(g->chunks, r, g->ranks, &first, &count);
        g->bytes[r] = (size_t)samples_in(g, first, count) * width * sizeof(float);
    }
    return sd_dist_allgatherv(mine, all, g->bytes, err);
}

/* Rank-N-Contrast over the 2B rows of every chunk: dF [2B,R] (gradient of every row, scaled by
 * w_rnc) and the loss. F, Y: [2B,R], [2B]; scratch for this rank's rows follows them. */
static sd_status rnc_all_chunks(sd_grad_step *g, const sd_loss_weights *w, int64_t B, size_t R, float *F,
                                float *Y, float *dF, float *work, float *mine, double *loss, sd_error *err) {
    const int64_t n_mine = samples_in(g, g->first, g->count);
    float *r0 = mine, *r1 = r0 + n_mine * R, *y = r1 + n_mine * R; /* [n_mine,R] x2, [n_mine] */
    size_t o = 0;
    for (int j = 0; j < g->count; j++) {
        const size_t Bc = (size_t)g->part[j]->B;
        if (!Bc) continue;
        memcpy(r0 + o * R, g->obj[j]->flow[0]->r, sizeof(float) * Bc * R);
        memcpy(r1 + o * R, g->obj[j]->flow[1]->r, sizeof(float) * Bc * R);
        memcpy(y + o, g->part[j]->label, sizeof(float) * Bc);
        o += Bc;
    }
    sd_status st = gather_rows(g, r0, F, R, err);
    if (!st) st = gather_rows(g, r1, F + (size_t)B * R, R, err);
    if (!st) st = gather_rows(g, y, Y, 1, err);
    if (st) return st;
    memcpy(Y + B, Y, sizeof(float) * (size_t)B);
    memset(dF, 0, sizeof(float) * 2 * (size_t)B * R);
    *loss = sd_rnc_forward_backward(dF, F, Y, (int)(2 * B), (int)R, SD_RNC_TEMPERATURE, w->rnc, work);
    return SD_OK;
}

/* RMSE over the batch from its sum of squares (0 when the weight is 0). */
static double rmse_of(float weight, double sum, double count) { return weight != 0.0f ? sqrt(sum / count) : 0.0; }

/* Backward of chunk j into its own gradient buffer, from the batch's loss values. d: scratch of
 * 2Bc + 2Bc C + Bc H + Bc V C floats. dF: the RnC gradient of every row (NULL: w_rnc = 0). */
static sd_status chunk_backward(sd_grad_step *g, int j, const sd_model *m, const sd_loss_weights *w,
                                int64_t B, const double L[3], const float *dF, int64_t offset,
                                float *d, sd_error *err) {
    const sd_batch *b = g->part[j];
    const sd_flow *f0 = g->obj[j]->flow[0], *f1 = g->obj[j]->flow[1];
    const size_t Bc = (size_t)b->B, H = (size_t)f0->H, C = (size_t)f0->C, R = (size_t)f0->R;
    const size_t V = SD_QUERY_VIEWS;
    const double nB = (double)B;
    float *d_pred = d, *d_z = d_pred + 2 * Bc, *d_q1 = d_z + 2 * Bc * C, *d_c1 = d_q1 + Bc * H;
    memset(d, 0, sizeof(float) * (2 * Bc + 2 * Bc * C + Bc * H + Bc * V * C));
    /* MSE: 2 w (p - y) / B; RMSE: w (a - b) / (n L) with n and L the batch's. */
    if (w->full != 0.0f) sd_sq_diff_backward(d_pred, NULL, f0->pred, b->label, Bc, 2.0 * (double)w->full / nB);
    if (w->miss != 0.0f) sd_sq_diff_backward(d_pred + Bc, NULL, f1->pred, b->label, Bc, 2.0 * (double)w->miss / nB);
    if (w->tf != 0.0f && L[0] != 0.0)
        sd_sq_diff_backward(d_q1, NULL, sd_flow_q_t(f1), sd_flow_q_t(f0), Bc * H, (double)w->tf / (nB * (double)H * L[0]));
    if (w->tq != 0.0f && L[1] != 0.0)
        sd_sq_diff_backward(d_c1, NULL, f1->C_t, f0->C_t, Bc * V * C, (double)w->tq / (nB * (double)(V * C) * L[1]));
    if (w->f != 0.0f && L[2] != 0.0)
        sd_sq_diff_backward(d_z + Bc * C, d_z, f1->z, f0->z, Bc * C, (double)w->f / (nB * (double)C * L[2]));
    const float *d_r0 = dF ? dF + (size_t)offset * R : NULL, *d_r1 = dF ? dF + (size_t)(B + offset) * R : NULL;
    float *grad = g->g[j];
    memset(grad, 0, sizeof(float) * g->P);
    return sd_objective_backward(g->obj[j], m, w, grad, d_pred, d_z, d_r0, d_r1, d_q1, d_c1, err);
}

/* grads = the sum of every chunk's gradient, the same bits whichever ranks hold which chunks. */
static sd_status sum_chunks(sd_grad_step *g, float *grads, sd_error *err) {
    memset(g->e, (unsigned char)SD_GRAD_EXP_ZERO, g->P);
    for (int j = 0; j < g->count; j++)
        if (g->part[j]->B) sd_grad_sum_exponents(g->e, g->g[j], g->P);
    sd_status st = sd_dist_allreduce_max_i8(g->e, g->P, err);
    if (st) return st;
    memset(g->q, 0, sizeof *g->q * g->P);
    for (int j = 0; j < g->count; j++)
        if (g->part[j]->B) sd_grad_sum_add(g->q, g->e, g->g[j], g->P, g->chunks);
    if ((st = sd_dist_allreduce_sum_i64(g->q, g->P, err))) return st;
    sd_grad_sum_result(grads, g->q, g->e, g->P, g->chunks);
    return SD_OK;
}

sd_status sd_grad_step_run(sd_grad_step *g, const sd_model *m, const sd_loss_weights *w, sd_rng *rng,
                           uint64_t seed, int64_t step, float *grads, sd_loss_terms *terms, int *batch,
                           sd_error *err) {
    if (g->chunks == 1) return whole_step(g, m, w, rng, grads, terms, batch, err);
    /* 1. This rank's chunks forward; every rank learns whether all succeeded. */
    double *mine = g->rec + (size_t)g->first * REC_LEN;
    sd_status st = SD_OK;
    for (int j = 0; !st && j < g->count; j++) st = chunk_forward(g, j, m, w, seed, step, mine + (size_t)j * REC_LEN, err);
    if ((st = sd_dist_agree(st, err))) return st;
    for (int r = 0; r < g->ranks; r++) {
        int first, count;
        sd_grad_step_chunks_of(g->chunks, r, g->ranks, &first, &count);
        g->bytes[r] = (size_t)count * REC_LEN * sizeof(double);
    }
    if ((st = sd_dist_allgatherv(mine, g->rec, g->bytes, err))) return st;

    /* 2. The batch's loss terms from every chunk's record, in chunk order. */
    double sum[REC_LEN] = {0};
    for (int c = 0; c < g->chunks; c++)
        for (int k = 0; k < REC_LEN; k++) sum[k] += g->rec[(size_t)c * REC_LEN + k];
    const int64_t B = (int64_t)sum[REC_B];
    const size_t H = (size_t)m->cfg.hidden, C = H / 2, R = H / 4, V = SD_QUERY_VIEWS;
    const double nB = (double)B;
    const double L[3] = {rmse_of(w->tf, sum[REC_TF], nB * (double)H),
                         rmse_of(w->tq, sum[REC_TQ], nB * (double)(V * C)), rmse_of(w->f, sum[REC_F], nB * (double)C)};
    sd_loss_terms t;
    memset(&t, 0, sizeof t);
    if (w->full != 0.0f) t.full = (float)(sum[REC_FULL] / nB);
    if (w->miss != 0.0f) t.miss = (float)(sum[REC_MISS] / nB);
    t.tf = (float)L[0];
    t.tq = (float)L[1];
    t.f = (float)L[2];

    /* Scratch: F [2B,R], Y [2B], dF [2B,R], RnC workspace, this rank's rows [n_mine, 2R+1], the
     * output gradients of its largest chunk. */
    int64_t Bc_max = 0;
    for (int j = 0; j < g->count; j++) Bc_max = g->part[j]->B > Bc_max ? g->part[j]->B : Bc_max;
    const size_t n2 = 2 * (size_t)B, rnc_work = w->rnc != 0.0f ? sd_rnc_workspace_len((int)n2) : 0;
    const size_t n_mine = (size_t)samples_in(g, g->first, g->count);
    const size_t rnc_floats = w->rnc != 0.0f ? 2 * n2 * R + n2 + rnc_work + n_mine * (2 * R + 1) : 0;
    const size_t d_floats = 2 * (size_t)Bc_max + 2 * (size_t)Bc_max * C + (size_t)Bc_max * H + (size_t)Bc_max * V * C;
    if ((st = sd_dist_agree(reserve(g, rnc_floats + d_floats, err), err))) return st;
    float *dF = NULL, *d = g->buf + rnc_floats;
    if (w->rnc != 0.0f) {
        float *F = g->buf, *Y = F + n2 * R, *work = Y + n2 + n2 * R;
        dF = Y + n2;
        double rnc = 0;
        if ((st = rnc_all_chunks(g, w, B, R, F, Y, dF, work, work + rnc_work, &rnc, err))) return st;
        t.rnc = rnc;
    }
    t.total = w->full * t.full + w->miss * t.miss + w->tf * t.tf + w->tq * t.tq + w->f * t.f + w->rnc * t.rnc;
    *terms = t;
    *batch = (int)B;
    if (!isfinite(t.total)) return SD_OK; /* the caller reports which term diverged (every rank alike) */

    /* 3. This rank's chunks backward, each into its own buffer; 4. their exact sum. */
    int64_t offset = samples_in(g, 0, g->first);
    for (int j = 0; j < g->count; j++) {
        if (g->part[j]->B && (st = chunk_backward(g, j, m, w, B, L, dF, offset, d, err))) return st;
        offset += g->part[j]->B;
    }
    return sum_chunks(g, grads, err);
}

sd_status sd_grad_step_predictions(sd_grad_step *g, float *full, float *miss, float *y, sd_error *err) {
    if (g->chunks == 1) {
        const sd_batch *b = g->batch;
        const size_t B = (size_t)b->B;
        memcpy(full, g->whole->flow[0]->pred, sizeof(float) * B);
        if (miss) memcpy(miss, g->whole->flow[1]->pred, sizeof(float) * B);
        memcpy(y, b->label, sizeof(float) * B);
        return SD_OK;
    }
    /* Rows of 3 (complete, text-missing, label) per item of this rank's chunks, gathered. */
    const size_t B = (size_t)samples_in(g, 0, g->chunks), n_mine = (size_t)samples_in(g, g->first, g->count);
    sd_status st = sd_dist_agree(reserve(g, 3 * (n_mine + B), err), err);
    if (st) return st;
    float *mine = g->buf, *all = mine + 3 * n_mine;
    size_t o = 0;
    for (int j = 0; j < g->count; j++)
        for (int i = 0; i < g->part[j]->B; i++, o++) {
            mine[3 * o] = g->obj[j]->flow[0]->pred[i];
            mine[3 * o + 1] = miss ? g->obj[j]->flow[1]->pred[i] : 0.0f;
            mine[3 * o + 2] = g->part[j]->label[i];
        }
    if ((st = gather_rows(g, mine, all, 3, err))) return st;
    for (size_t i = 0; i < B; i++) {
        full[i] = all[3 * i];
        if (miss) miss[i] = all[3 * i + 1];
        y[i] = all[3 * i + 2];
    }
    return SD_OK;
}
