/* Evaluation-mode predictions of one flow over a split of a dataset, on one rank or shared by the
 * ranks of an MPI job. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/interrupt.h"
#include "model/flow.h"
#include "train/train.h"

sd_flow_input sd_flow_input_from_batch(const sd_batch *b, int missing) {
    int text = missing ? SD_MOD_SIM : SD_MOD_TEXT;
    sd_flow_input in = {b->B,
                        {b->x[SD_MOD_AUDIO], b->x[text], b->x[SD_MOD_VIDEO]},
                        {b->T[SD_MOD_AUDIO], b->T[text], b->T[SD_MOD_VIDEO]},
                        {b->len[SD_MOD_AUDIO], b->len[text], b->len[SD_MOD_VIDEO]},
                        {b->dtype[SD_MOD_AUDIO], b->dtype[text], b->dtype[SD_MOD_VIDEO]},
                        {NULL, NULL, NULL},
                        {NULL, NULL, NULL}};
    return in;
}

sd_status sd_check_model_inputs(const sd_model *m, const sd_dataset *ds, int missing, sd_error *err) {
    if (missing && !sd_dataset_has_sim(ds))
        return sd_fail(err, SD_E_ARG,
                       "%s: the dataset has no simulated-text folder (%s), which the text-missing flow needs",
                       sd_dataset_dir(ds), sd_dataset_folder(ds, SD_MOD_SIM));
    for (int k = 0; k < 3; k++) {
        int mod = k == 1 ? (missing ? SD_MOD_SIM : SD_MOD_TEXT) : k;
        if (sd_dataset_dim(ds, mod) != m->cfg.dim[k])
            return sd_fail(err, SD_E_SHAPE, "%s: %s features have dim %d, the model expects %d",
                           sd_dataset_dir(ds), sd_modality_name(mod), sd_dataset_dim(ds, mod), m->cfg.dim[k]);
    }
    return SD_OK;
}

sd_status sd_check_predictions(const sd_dataset *ds, sd_split split, const sd_batch *batch, int missing,
                               const float *pred, sd_error *err) {
    for (int j = 0; j < batch->B; j++)
        if (!isfinite(pred[j]))
            return sd_fail(err, SD_E_NUMERIC, "%s: the %s flow's prediction for '%s' is not finite (%s): its "
                           "features are too large for the model in float32", sd_dataset_dir(ds),
                           missing ? "text-missing" : "complete", sd_dataset_name(ds, split, batch->index[j]),
                           isnan(pred[j]) ? "NaN" : "Inf");
    return SD_OK;
}

sd_status sd_predict_split(const sd_model *m, const sd_dataset *ds, sd_split split, int missing,
                           const int64_t *subset, int64_t n, int batch_size, float *pred, sd_error *err) {
    sd_status st = sd_check_model_inputs(m, ds, missing, err);
    if (st) return st;
    sd_batcher_options bo = sd_batcher_default_options();
    bo.split = split;
    bo.batch_size = batch_size > 0 ? batch_size : 64;
    bo.shuffle = 0;
    bo.modalities = SD_MOD_BIT(SD_MOD_AUDIO) | SD_MOD_BIT(SD_MOD_VIDEO) |
                    SD_MOD_BIT(missing ? SD_MOD_SIM : SD_MOD_TEXT);
    bo.keep_dtype = 1; /* float16 files stay float16 (the frame projection converts them) */
    bo.subset = subset;
    bo.subset_n = subset ? n : 0;
    sd_batcher *b = NULL;
    st = sd_batcher_open(ds, &bo, &b, err);
    if (st) return st;
    sd_flow *f = sd_flow_new();
    if (!f) {
        sd_batcher_close(b);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    const sd_batch *batch;
    int64_t done = 0;
    int r;
    while ((r = sd_batcher_next(b, &batch, err)) == 1) {
        if ((st = sd_interrupt_check(err, "while predicting"))) break;
        sd_flow_input in = sd_flow_input_from_batch(batch, missing);
        st = sd_flow_forward(f, m, &in, missing, 0, NULL, err);
        if (!st) st = sd_check_predictions(ds, split, batch, missing, f->pred, err);
        if (st) break;
        memcpy(pred + done, f->pred, sizeof(float) * (size_t)batch->B);
        done += batch->B;
    }
    if (!st && r < 0) st = err ? err->code : SD_E_IO;
    sd_flow_free(f);
    sd_batcher_close(b);
    return st;
}

/* Items [*i0, *i1) of rank r: whole batches r*nb/N .. (r+1)*nb/N - 1 of the nb batches. */
static void rank_items(int64_t n, int batch, int r, int ranks, int64_t *i0, int64_t *i1) {
    const int64_t nb = (n + batch - 1) / batch;
    *i0 = nb * r / ranks * batch;
    *i1 = nb * (r + 1) / ranks * batch;
    if (*i0 > n) *i0 = n;
    if (*i1 > n) *i1 = n;
}

sd_status sd_predict_split_ranks(const sd_model *m, const sd_dataset *ds, sd_split split, int missing,
                                 const int64_t *subset, int64_t n, int batch_size, float *pred, sd_error *err) {
    const int ranks = sd_dist_size(), rank = sd_dist_rank();
    const int batch = batch_size > 0 ? batch_size : 64;
    if (ranks == 1) return sd_predict_split(m, ds, split, missing, subset, n, batch, pred, err);
    int64_t i0, i1;
    rank_items(n, batch, rank, ranks, &i0, &i1);
    int64_t *idx = malloc(sizeof *idx * (size_t)(i1 - i0 + 1));
    size_t *bytes = malloc(sizeof *bytes * (size_t)ranks);
    sd_status st = idx && bytes ? SD_OK : sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int64_t i = i0; !st && i < i1; i++) idx[i - i0] = subset ? subset[i] : i;
    if (!st && i1 > i0) st = sd_predict_split(m, ds, split, missing, idx, i1 - i0, batch, pred + i0, err);
    st = sd_dist_agree(st, err);
    for (int r = 0; !st && r < ranks; r++) {
        int64_t a, b;
        rank_items(n, batch, r, ranks, &a, &b);
        bytes[r] = sizeof(float) * (size_t)(b - a);
    }
    if (!st) st = sd_dist_allgatherv(pred + i0, pred, bytes, err);
    free(idx);
    free(bytes);
    return st;
}
