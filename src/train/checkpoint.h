/* The training state file (OUT.state): everything a resumed run needs to continue exactly where
 * an uninterrupted one would be. A safetensors file:
 *   tensors  params, adam_m, adam_v, best_params: [P] float32 each (the flat buffers, table
 *            order; best_params: the selected epoch's parameters so far)
 *   metadata format = "sdumc-train-state"; the model configuration (as in model files);
 *            step (Adam steps taken), next_epoch, rng_index (dropout stream position),
 *            data_position (items of next_epoch already consumed: 0, states are written at epoch
 *            ends), best_epoch, best_criterion, epochs (the epochs the run was asked for: the state
 *            is unfinished while next_epoch < epochs), grad_chunks (1 when absent), settings (the options that affect the
 *            result, "name=value" lines as the caller gave them: sd_train_options.settings),
 *            dataset (sd_dataset_fingerprint of the data it trained on), history (JSON array of
 *            epoch records). */
#ifndef SD_TRAIN_CHECKPOINT_H
#define SD_TRAIN_CHECKPOINT_H

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
    int epochs;        /* the epochs asked for when the state was written */
    int grad_chunks;   /* gradient chunks per batch (train/grad_step.h): part of the result */
    char *settings;    /* malloc'ed */
    char *dataset;     /* malloc'ed */
    sd_epoch_record *history; /* [n_history], malloc'ed */
    int n_history;
} sd_train_state;

sd_status sd_train_state_save(const sd_train_state *s, const char *path, sd_error *err);
/* Loads a state; *s is zeroed first. sd_train_state_release frees what it holds. */
sd_status sd_train_state_load(const char *path, sd_train_state *s, sd_error *err);
void sd_train_state_release(sd_train_state *s);
/* Reads only what says whether path holds an unfinished run: *next_epoch and *epochs. */
sd_status sd_train_state_peek(const char *path, int *next_epoch, int *epochs, sd_error *err);

#endif
