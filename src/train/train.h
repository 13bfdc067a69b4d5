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
#include "data/feature_stats.h"
#include "train/objective.h"

typedef enum { SD_SELECT_MEAN = 0, SD_SELECT_MISSING = 1, SD_SELECT_FULL = 2, SD_SELECT_LAST = 3 } sd_select;

/* Input standardisation (model/norm.h). AUTO: standard for a new model; for --init, what the file
 * carries (standard when it has statistics, none for a foreign checkpoint); none with mask off (the
 * fold would move padded frames, which the released no-mask mode lets take part). */
typedef enum { SD_NORMALIZE_AUTO = 0, SD_NORMALIZE_NONE = 1, SD_NORMALIZE_STANDARD = 2 } sd_normalize;
const char *sd_normalize_name(sd_normalize n);
const char *sd_select_name(sd_select s);

/* The small-corpus rule of `--preset auto` (and of the hint without it): the paper's schedule
 * (batch 128, lr 1e-4) assumes tens of thousands of utterances. When it would take fewer than
 * SD_AUTO_MIN_STEPS optimiser steps in all, or fewer than SD_AUTO_MIN_EPOCH_STEPS per epoch, the
 * largest batch of 64, 32, 16, 8 that gives both is chosen (8 if none does), with lr 3e-4 at 64 and
 * 1e-3 below: what make demo found for 1,200 utterances. */
#define SD_AUTO_MIN_STEPS 300
#define SD_AUTO_MIN_EPOCH_STEPS 10
typedef struct {
    int chosen;                 /* 1: the batch and lr below replace the paper's */
    int batch;
    float lr;
    int64_t steps, paper_steps; /* optimiser steps in all with the choice and with the paper's */
} sd_auto_schedule;
/* The rule for n_train utterances and `epochs` epochs from (batch, lr); chosen = 0 when the given
 * schedule already has enough steps. */
sd_auto_schedule sd_train_auto_schedule(int64_t n_train, int epochs, int batch, float lr);

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
    int prefetch;
    const sd_cache *cache; /* optional packed feature cache of the dataset (data/cache.h) */
    int eval_batch_size;
    /* The fraction given to sd_dataset_carve_valid when the caller carved the validation split
     * out of train (0: the dataset's own valid split); recorded with the options a resume must
     * keep. */
    float valid_fraction;
    sd_normalize normalize;
    /* Training-split statistics already computed by the caller (data/feature_stats.h, the same
     * split, frame caps and cache); NULL: sd_train computes them when it standardises. */
    const sd_feature_stats *stats;
    /* --preset auto's choice, recorded in the log and the report (chosen = 0: none). */
    sd_auto_schedule schedule;
    /* Called after every batch and every epoch (record != NULL then); may be NULL. */
    void (*on_progress)(const sd_train_progress *p, const sd_epoch_record *record, void *user);
    void *user;
} sd_train_options;

typedef struct {
    int best_epoch;
    double best_criterion;
    int epochs_run;
    sd_normalize normalize; /* what the run used (NONE or STANDARD) */
    char state_path[1024], log_path[1024], report_path[1024];
} sd_train_result;

/* What SD_NORMALIZE_AUTO means for these options; init_has_stats: whether --init's file carries
 * standardisation statistics (sd_norm_file_has_stats). */
sd_normalize sd_train_resolve_normalize(const sd_train_options *o, int init_has_stats);

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
