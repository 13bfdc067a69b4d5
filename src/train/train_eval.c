/* What training measures besides the loss: both flows' metrics on a split or a subset of it (the
 * validation split; a fixed subset of the training split), and the reference MAE of predicting
 * the training mean. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "train/train.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t sd_train_subset(const sd_dataset *ds, uint64_t seed, int64_t want, int64_t **idx) {
    const int64_t n = sd_dataset_size(ds, SD_SPLIT_TRAIN), nv = sd_dataset_size(ds, SD_SPLIT_VALID);
    int64_t k = want >= 0 ? want : nv > 256 ? nv : 256;
    if (k > n) k = n;
    *idx = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!*idx) return -1;
    for (int64_t i = 0; i < n; i++) (*idx)[i] = i;
    /* The first k steps of a Fisher-Yates shuffle choose k distinct indices uniformly. */
    sd_rng r = sd_rng_make(seed, SD_STREAM_TRAIN_EVAL);
    for (int64_t i = 0; i < k && k < n; i++) {
        int64_t j = i + (int64_t)sd_rng_below(&r, (uint64_t)(n - i)), t = (*idx)[i];
        (*idx)[i] = (*idx)[j];
        (*idx)[j] = t;
    }
    qsort(*idx, (size_t)k, sizeof(int64_t), cmp_i64);
    return k;
}

/* Both flows' predictions on this rank, one pass over the batches (see train.h): p [n] complete,
 * p + n [n] text-missing. */
static sd_status predict_both(const sd_model *m, const sd_dataset *ds, sd_split split, const int64_t *subset,
                              int64_t n, int batch, float *p, sd_eval_reuse *reuse, sd_error *err) {
    sd_status st = sd_check_model_inputs(m, ds, 0, err);
    if (!st) st = sd_check_model_inputs(m, ds, 1, err);
    if (st) return st;
    sd_batcher_options bo = sd_batcher_default_options();
    bo.split = split;
    bo.batch_size = batch > 0 ? batch : 64;
    bo.shuffle = 0;
    bo.keep_dtype = 1;
    bo.subset = subset;
    bo.subset_n = subset ? n : 0;
    sd_batcher *own = NULL, **b = reuse && reuse->batcher ? reuse->batcher : &own;
    st = *b ? sd_batcher_reuse(*b, &bo, err) : sd_batcher_open(ds, &bo, b, err);
    sd_objective *own_obj = NULL, *obj = reuse && reuse->obj ? reuse->obj : (own_obj = sd_objective_new());
    if (!st && !obj) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    const sd_batch *bt;
    int64_t done = 0;
    int r = 1;
    while (!st && (r = sd_batcher_next(*b, &bt, err)) == 1) {
        if ((st = sd_interrupt_check(err, "while evaluating"))) break;
        sd_flow_input in_full = sd_flow_input_from_batch(bt, 0), in_miss = sd_flow_input_from_batch(bt, 1);
        /* flow inputs 0 and 2, with their pooling and modality MLP (no backward follows) */
        const unsigned audio_video = (1u << 0) | (1u << 2) | SD_FLOW_SHARE_BRANCHES;
        st = sd_flow_forward(obj->flow[0], m, &in_full, 0, 0, NULL, err);
        if (!st) st = sd_flow_forward_shared(obj->flow[1], m, &in_miss, 1, 0, NULL, obj->flow[0], audio_video, err);
        if (!st) st = sd_check_predictions(ds, split, bt, 0, obj->flow[0]->pred, err);
        if (!st) st = sd_check_predictions(ds, split, bt, 1, obj->flow[1]->pred, err);
        if (st) break;
        memcpy(p + done, obj->flow[0]->pred, sizeof(float) * (size_t)bt->B);
        memcpy(p + n + done, obj->flow[1]->pred, sizeof(float) * (size_t)bt->B);
        done += bt->B;
    }
    if (!st && r < 0) st = err && err->code ? err->code : SD_E_IO;
    sd_objective_free(own_obj);
    sd_batcher_close(own);
    return st;
}

/* split_ranks: the predictions shared by the MPI ranks (collective) or made by this rank alone. */
static sd_status eval_both(const sd_model *m, const sd_dataset *ds, sd_split split, const int64_t *subset, int64_t n,
                           int batch, const float *y, sd_metrics *full, sd_metrics *miss, float **preds_out,
                           int split_ranks, sd_eval_reuse *reuse, sd_error *err) {
    float *p = malloc(sizeof(float) * (size_t)(2 * n + 1));
    if (!p) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_status st;
    if (split_ranks && sd_dist_size() > 1) {
        st = sd_predict_split_ranks(m, ds, split, 0, subset, n, batch, p, err);
        if (!st) st = sd_predict_split_ranks(m, ds, split, 1, subset, n, batch, p + n, err);
    } else {
        st = predict_both(m, ds, split, subset, n, batch, p, reuse, err);
    }
    if (!st) {
        const sd_metrics_scheme scheme = sd_dataset_metrics_scheme(ds);
        sd_metrics_compute_scheme(p, y, (size_t)n, scheme, full);
        sd_metrics_compute_scheme(p + n, y, (size_t)n, scheme, miss);
    }
    if (preds_out && !st)
        *preds_out = p;
    else
        free(p);
    return st;
}

sd_status sd_eval_both_flows(const sd_model *m, const sd_dataset *ds, sd_split split, const int64_t *subset, int64_t n,
                             int batch, const float *y, sd_metrics *full, sd_metrics *miss, float **preds_out,
                             sd_eval_reuse *reuse, sd_error *err) {
    return eval_both(m, ds, split, subset, n, batch, y, full, miss, preds_out, 0, reuse, err);
}

sd_status sd_eval_both_flows_ranks(const sd_model *m, const sd_dataset *ds, sd_split split, const int64_t *subset,
                                   int64_t n, int batch, const float *y, sd_metrics *full, sd_metrics *miss,
                                   float **preds_out, sd_eval_reuse *reuse, sd_error *err) {
    return eval_both(m, ds, split, subset, n, batch, y, full, miss, preds_out, 1, reuse, err);
}

sd_metrics_scheme sd_dataset_metrics_scheme(const sd_dataset *ds) {
    double lo, hi;
    sd_dataset_label_range(ds, &lo, &hi);
    return sd_metrics_scheme_for(lo, hi);
}

double sd_train_mean_mae(const sd_dataset *ds, double *train_mean) {
    const int64_t nt = sd_dataset_size(ds, SD_SPLIT_TRAIN), nv = sd_dataset_size(ds, SD_SPLIT_VALID);
    double mean = 0.0, mae = 0.0;
    for (int64_t i = 0; i < nt; i++) mean += sd_dataset_label(ds, SD_SPLIT_TRAIN, i);
    mean = nt > 0 ? mean / (double)nt : 0.0;
    for (int64_t i = 0; i < nv; i++) mae += fabs((double)sd_dataset_label(ds, SD_SPLIT_VALID, i) - mean);
    if (train_mean) *train_mean = mean;
    return nv > 0 ? mae / (double)nv : NAN;
}
