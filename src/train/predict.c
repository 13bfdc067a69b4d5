/* Evaluation-mode predictions of one flow over a split of a dataset. */
#include <string.h>

#include "model/flow.h"
#include "train/train.h"

sd_flow_input sd_flow_input_from_batch(const sd_batch *b, int missing) {
    int text = missing ? SD_MOD_SIM : SD_MOD_TEXT;
    sd_flow_input in = {b->B,
                        {b->x[SD_MOD_AUDIO], b->x[text], b->x[SD_MOD_VIDEO]},
                        {b->T[SD_MOD_AUDIO], b->T[text], b->T[SD_MOD_VIDEO]},
                        {b->len[SD_MOD_AUDIO], b->len[text], b->len[SD_MOD_VIDEO]},
                        {b->dtype[SD_MOD_AUDIO], b->dtype[text], b->dtype[SD_MOD_VIDEO]}};
    return in;
}

sd_status sd_predict_split(const sd_model *m, const sd_dataset *ds, sd_split split, int missing,
                           const int64_t *subset, int64_t n, int batch_size, float *pred, sd_error *err) {
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
    sd_status st = sd_batcher_open(ds, &bo, &b, err);
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
        sd_flow_input in = sd_flow_input_from_batch(batch, missing);
        st = sd_flow_forward(f, m, &in, missing, 0, NULL, err);
        if (st) break;
        memcpy(pred + done, f->pred, sizeof(float) * (size_t)batch->B);
        done += batch->B;
    }
    if (!st && r < 0) st = err ? err->code : SD_E_IO;
    sd_flow_free(f);
    sd_batcher_close(b);
    return st;
}
