/* Training of the double-flow self-distillation framework (MODEL.md section 4) with honest
 * model selection on the validation split, checkpoints at every epoch end and bit-identical
 * resume.
 *
 * Files written next to the model (all atomically: temporary file, fsync, rename):
 *   OUT                 the selected model (safetensors, reference tensor names)
 *   OUT.state           training state: parameters, Adam moments, step, next epoch, dropout RNG
 *                       position, best criterion so far, per-epoch history
 *   OUT.log.jsonl       one JSON object per epoch: loss terms, validation metrics of both flows,
 *                       wall seconds, training samples/s, learning rate, and a last line naming the
 *                       selected epoch and the criterion
 *   OUT.report.html     the training report (train/report.h)
 * The test split is never read here. */
#ifndef SD_TRAIN_TRAIN_H
#define SD_TRAIN_TRAIN_H

#include "data/batch.h"
#include "data/dataset.h"
#include "model/flow.h"
#include "model/model.h"
#include "train/metrics.h"
#include "train/objective.h"

typedef enum { SD_SELECT_MEAN = 0, SD_SELECT_MISSING = 1, SD_SELECT_FULL = 2, SD_SELECT_LAST = 3 } sd_select;
const char *sd_select_name(sd_select s);

typedef struct {
    int epoch;          /* 0-based */
    double lr;
    sd_loss_terms loss; /* means over the epoch's batches */
    sd_metrics valid_full, valid_miss;
    double seconds, samples_per_s;
    int64_t samples;
} sd_epoch_record;

typedef struct {
    int epoch, epochs;
    int64_t batch, batches;
    double samples_per_s, running_loss, eta_s;
} sd_train_progress;

typedef struct {
    const char *out;         /* model path; the other files derive from it */
    const char *init;        /* optional: start from these weights (dims must match the dataset) */
    const char *resume;      /* optional: a state file written by an earlier run */
    sd_model_config model;   /* architecture and dropout (dims are taken from the dataset) */
    int epochs, batch_size;
    float lr, weight_decay;
    sd_loss_weights w;
    sd_select select;
    int shuffle;
    uint64_t seed;
    int max_frames[SD_MOD_COUNT];
    sd_cap_mode cap_mode;
    int prefetch;            /* batches read ahead (SD_PREFETCH_AUTO: as many as fit in prefetch_bytes) */
    size_t prefetch_bytes;
    const sd_cache *cache; /* optional packed feature cache of the dataset (data/cache.h) */
    int eval_batch_size;
    /* The fraction given to sd_dataset_carve_valid when the caller carved the validation split
     * out of train (0: the dataset's own valid split); recorded with the options a resume must
     * keep. */
    float valid_fraction;
    /* Called after every batch and every epoch (record != NULL then); may be NULL. */
    void (*on_progress)(const sd_train_progress *p, const sd_epoch_record *record, void *user);
    void *user;
} sd_train_options;

typedef struct {
    int best_epoch;
    double best_criterion;
    int epochs_run;
    char state_path[1024], log_path[1024], report_path[1024];
} sd_train_result;

/* The paper preset (MODEL.md section 4); sd_train_apply_preset switches between presets. */
sd_train_options sd_train_default_options(void);
/* name: "paper" or "release". Returns SD_E_ARG for another name. */
sd_status sd_train_apply_preset(sd_train_options *o, const char *name, sd_error *err);

sd_status sd_train(const sd_dataset *ds, const sd_train_options *o, sd_train_result *result, sd_error *err);

/* Flow input from a batch: audio, the text slot (missing = 1: simulated text), video. */
sd_flow_input sd_flow_input_from_batch(const sd_batch *b, int missing);

/* Predictions of one flow (missing = 1: simulated text) for every utterance of a split (or of
 * `subset`, indices within the split), in that order, in evaluation mode. */
sd_status sd_predict_split(const sd_model *m, const sd_dataset *ds, sd_split split, int missing,
                           const int64_t *subset, int64_t n, int batch_size, float *pred, sd_error *err);

#endif
