/* The training state file (OUT.state): everything a resumed run needs to continue exactly where
 * an uninterrupted one would be. A safetensors file:
 *   tensors  params, adam_m, adam_v, best_params: [P] float32 each (the flat buffers, table
 *            order; best_params: the selected epoch's parameters so far)
 *   metadata format = "sdumc-train-state"; the model configuration (as in model files);
 *            step (Adam steps taken), next_epoch, rng_index (dropout stream position),
 *            data_position (items of next_epoch already consumed: 0, states are written at epoch
 *            ends), best_epoch, best_criterion, settings (the options that must not change
 *            across a resume), history (JSON array of epoch records); with standardised inputs
 *            the statistics (model/norm.h), params and best_params in the standardised space. */
#ifndef SD_TRAIN_CHECKPOINT_H
#define SD_TRAIN_CHECKPOINT_H

#include "model/norm.h"
#include "train/train.h"

typedef struct {
    sd_model *model;   /* owned */
    float *adam_m, *adam_v;
    float *best_params; /* parameters of best_epoch (what OUT holds) */
    int64_t step;
    int next_epoch;
    uint64_t rng_index;
    int best_epoch;    /* -1: none yet */
    double best_criterion;
    char settings[1024];
    sd_epoch_record *history; /* [n_history], malloc'ed */
    int n_history;
    sd_norm norm;             /* the input standardisation (unset: none); params live in its space */
} sd_train_state;

sd_status sd_train_state_save(const sd_train_state *s, const char *path, sd_error *err);
/* Loads a state; *s is zeroed first. sd_train_state_release frees what it holds. */
sd_status sd_train_state_load(const char *path, sd_train_state *s, sd_error *err);
void sd_train_state_release(sd_train_state *s);

#endif
