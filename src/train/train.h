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
 * The test split is never read here.
 *
 * Under MPI (core/dist.h) every rank calls sd_train with the same options: each batch and the
 * validation split are split over the ranks, every rank holds the same model, and rank 0 alone
 * writes the files. */
#ifndef SD_TRAIN_TRAIN_H
#define SD_TRAIN_TRAIN_H

#include <limits.h>

#include "data/batch.h"
#include "data/dataset.h"
#include "model/flow.h"
#include "model/model.h"
#include "train/metrics.h"
#include "data/feature_stats.h"
#include "train/objective.h"

/* The files beside OUT are OUT followed by these. */
#define SD_TRAIN_STATE_SUFFIX ".state"
#define SD_TRAIN_LOG_SUFFIX ".log.jsonl"
#define SD_TRAIN_REPORT_SUFFIX ".report.html"

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
    /* Both flows in evaluation mode on a fixed subset of the training split (sd_train_subset);
     * n = 0 in records of older logs, which did not measure it. */
    sd_metrics train_full, train_miss;
    /* Both flows' predictions as the epoch's training steps made them (training mode, dropout on,
     * the parameters of each step), over every training utterance of the epoch: the training
     * metrics MMSA logs, at no extra cost. n = 0 in records of older logs. */
    sd_metrics pass_full, pass_miss;
    double seconds, samples_per_s;
    double eval_seconds; /* validation and the training-subset evaluation */
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
    /* The options that affect the result, one "name=value" line each, as the caller was given them
     * (the command line builds it from its option table: README, "Resume"). Stored in the state
     * and compared line by line on resume. NULL is "". */
    const char *settings;
    int overwrite;           /* 1: start afresh even when OUT.state holds an unfinished run */
    sd_model_config model;   /* architecture and dropout (dims are taken from the dataset; hidden 0
                                with init: the init model's, without: 256) */
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
    /* Training utterances measured (both flows, evaluation mode) after each epoch, beside the
     * validation split (sd_train_subset): 0 (default) none (the training metrics are then the
     * training pass's own, sd_epoch_record.pass_*); -1 as many as the validation split has, at
     * least 256; n: n of them. */
    int64_t train_subset;
    /* The fraction given to sd_dataset_carve_valid when the caller carved the validation split
     * out of train (0: the dataset's own valid split); recorded with the options a resume must
     * keep. */
    float valid_fraction;
    /* Gradient chunks per batch (train/grad_step.h): 1 the batch at once; K > 1 the batch in K
     * chunks summed exactly, the same model on any number of MPI ranks up to K; 0 (default): the
     * number of ranks, or the interrupted run's value when resuming. Recorded with the options a
     * resume must keep. */
    int grad_chunks;
    /* Input standardisation (AUTO: sd_train_resolve_normalize). A resumed run keeps the state's
     * statistics; they must still be the training split's, and a NONE/STANDARD given must agree. */
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
    int64_t steps_run; /* optimiser steps this call took (a resumed run: since the resume) */
    char state_path[PATH_MAX], log_path[PATH_MAX], report_path[PATH_MAX];
    int resumable; /* on failure: 1 when `resume = state_path` continues the run (it was interrupted
                      with a state written, or an unfinished state is in the way of a fresh start) */
} sd_train_result;

/* The value of the line "name=value" of a settings string (sd_train_options.settings) into value;
 * 0 when there is none. */
int sd_train_settings_get(const char *settings, const char *name, char *value, size_t size);

/* What SD_NORMALIZE_AUTO means for these options; init_has_stats: whether --init's file carries
 * standardisation statistics (sd_norm_file_has_stats). */
sd_normalize sd_train_resolve_normalize(const sd_train_options *o, int init_has_stats);

/* The paper preset (MODEL.md section 4); sd_train_apply_preset switches between presets. */
sd_train_options sd_train_default_options(void);
/* name: "paper", "release" or "auto" (the paper's; the caller adapts batch and lr with
 * sd_train_auto_schedule). Returns SD_E_ARG for another name. */
sd_status sd_train_apply_preset(sd_train_options *o, const char *name, sd_error *err);

/* Before any work: the paths of OUT and the files beside it fit the system's limits, none of them
 * is an input (the dataset, init, resume, the cache), stale temporaries of a killed run are removed,
 * and without resume or overwrite no unfinished run's state is in the way. Then the epochs, with a
 * stop request (core/interrupt.h) honoured between batches: SD_E_INTERRUPTED, the last state kept. */
sd_status sd_train(const sd_dataset *ds, const sd_train_options *o, sd_train_result *result, sd_error *err);

/* The training utterances whose MAE the log and report show beside the validation MAE: `want` of
 * them, or with want < 0 as many as the validation split has (at least 256), at most the whole
 * training split, drawn once from the seed (stream SD_STREAM_TRAIN_EVAL, so the training draws are
 * unchanged), in ascending order. Returns the count; *idx is malloc'ed (NULL with a count of -1
 * when out of memory). */
int64_t sd_train_subset(const sd_dataset *ds, uint64_t seed, int64_t want, int64_t **idx);

/* What an evaluation may borrow from the training run (sd_eval_both_flows): its batcher (reused
 * with the evaluation's options, data/batch.h: the buffers stay allocated and touched) and its
 * objective's two flows (their activations). Either may be NULL: the evaluation then opens or
 * makes its own. */
typedef struct {
    sd_batcher **batcher;
    sd_objective *obj;
} sd_eval_reuse;

/* Metrics of both flows (evaluation mode) on a split, or on `subset` of it (n indices; NULL = the
 * whole split, n its size); y [n] the labels in that order. *preds_out, when not NULL, receives the
 * predictions [2n] (complete flow, then text-missing flow), malloc'ed. One pass over the batches:
 * the text-missing flow borrows the complete flow's audio and video frames, pooling and modality
 * MLP outputs (the same numbers sd_predict_split gives for each flow alone, tested). reuse may be NULL. This rank alone. */
sd_status sd_eval_both_flows(const sd_model *m, const sd_dataset *ds, sd_split split, const int64_t *subset, int64_t n,
                             int batch, const float *y, sd_metrics *full, sd_metrics *miss, float **preds_out,
                             sd_eval_reuse *reuse, sd_error *err);
/* The same with the predictions shared by the ranks of an MPI job (sd_predict_split_ranks; every
 * rank gets the same metrics; collective). On one process: sd_eval_both_flows. */
sd_status sd_eval_both_flows_ranks(const sd_model *m, const sd_dataset *ds, sd_split split, const int64_t *subset,
                                   int64_t n, int batch, const float *y, sd_metrics *full, sd_metrics *miss,
                                   float **preds_out, sd_eval_reuse *reuse, sd_error *err);
/* MAE on the validation split of always predicting the mean training label (the floor a model must
 * beat); *train_mean receives that mean when not NULL. */
double sd_train_mean_mae(const sd_dataset *ds, double *train_mean);
/* The metrics a dataset's label range calls for (sd_metrics_scheme_for of its labels' range). */
sd_metrics_scheme sd_dataset_metrics_scheme(const sd_dataset *ds);

/* SD_E_NUMERIC naming the first utterance of the batch whose prediction (pred [B], flow `missing`)
 * is not finite. */
sd_status sd_check_predictions(const sd_dataset *ds, sd_split split, const sd_batch *batch, int missing,
                               const float *pred, sd_error *err);

/* Flow input from a batch: audio, the text slot (missing = 1: simulated text), video. */
sd_flow_input sd_flow_input_from_batch(const sd_batch *b, int missing);

/* The dataset can feed the model's flow (missing = 1: the simulated text exists): every input dim
 * matches, or an error naming the modality and both dims. */
sd_status sd_check_model_inputs(const sd_model *m, const sd_dataset *ds, int missing, sd_error *err);

/* Predictions of one flow (missing = 1: simulated text) for every utterance of a split (or of
 * `subset`, indices within the split), in that order, in evaluation mode. */
sd_status sd_predict_split(const sd_model *m, const sd_dataset *ds, sd_split split, int missing,
                           const int64_t *subset, int64_t n, int batch_size, float *pred, sd_error *err);
/* The same predictions, their batches shared by the MPI ranks (rank r predicts a contiguous run of
 * whole batches, so every batch is the one a single process predicts) and gathered on every rank
 * (collective; one rank: sd_predict_split). */
sd_status sd_predict_split_ranks(const sd_model *m, const sd_dataset *ds, sd_split split, int missing,
                                 const int64_t *subset, int64_t n, int batch_size, float *pred, sd_error *err);

#endif
