/* The training report: one self-contained HTML file (inline SVG and CSS, no scripts, no network):
 * the run's configuration (every value, those that differ from the preset marked), a warning when
 * the selected epoch is the last one, the loss terms per epoch on readable scales (the prediction
 * and distillation terms together, Rank-N-Contrast and the weighted total each on their own axis,
 * each term named as in MODEL.md and explained in one line), the validation MAE of both flows
 * beside the training-subset MAE with the MAE of predicting the training mean as a reference line
 * and the selected epoch marked, and a predicted-versus-true scatter of the validation split for
 * both flows. */
#ifndef SD_TRAIN_REPORT_H
#define SD_TRAIN_REPORT_H

#include "train/train.h"

typedef struct {
    const sd_epoch_record *history;
    int n_epochs;
    int selected_epoch;
    const char *selection; /* why that epoch */
    const float *label;    /* [n_valid] */
    const float *pred_full, *pred_missing; /* [n_valid], the selected model */
    int64_t n_valid;
    const char *model_path;
    /* The configuration section (each may be NULL: the section then shows what it has). */
    const sd_train_options *options;
    const sd_model_config *model_config; /* the trained model's (dims, hidden, MIA, ...) */
    const sd_dataset *ds;
    int64_t n_train_subset;               /* training utterances whose MAE is shown */
} sd_report_input;

sd_status sd_report_write(const char *path, const sd_report_input *in, sd_error *err);

#endif
