/* The training report: one self-contained HTML file (inline SVG, no scripts, no network) with
 * the loss terms and both flows' validation MAE per epoch, the selected epoch marked, and a
 * predicted-versus-true scatter of the validation split for both flows. */
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
    const char *note; /* a paragraph about inputs and schedule, or NULL */
} sd_report_input;

sd_status sd_report_write(const char *path, const sd_report_input *in, sd_error *err);

#endif
