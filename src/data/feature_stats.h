/* Per-dimension statistics of a dataset's features, streamed through the batcher in one pass over
 * one split (or all): mean and standard deviation per dimension (accumulated in double, shifted by
 * the first frame so that large means do not cost precision), the largest magnitude, the frame
 * count. Padding is never counted: only the real (capped) frames of each utterance.
 *
 * Uses: the standardisation of `train --normalize standard` (model/norm.h) and the scale checks of
 * `validate` and `train` (sd_feature_scale_summary). Legend: D a modality's feature dim. */
#ifndef SD_DATA_FEATURE_STATS_H
#define SD_DATA_FEATURE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/batch.h"
#include "data/dataset.h"

typedef struct {
    int dim;           /* D (0: the modality was not read) */
    int64_t frames;    /* frames counted */
    double *mean;      /* [D] */
    double *std;       /* [D] population standard deviation (ddof 0, as sklearn's StandardScaler) */
    double max_abs;    /* largest |x| */
} sd_modality_stats;

typedef struct {
    sd_modality_stats m[SD_MOD_COUNT];
} sd_feature_stats;

/* One pass over `split` (all splits when split < 0) with the frame caps and cache of the training
 * run (max_frames/cap_mode/cache as in sd_batcher_options; cache may be NULL). Every modality the
 * dataset has is read (the simulated text only when present). */
sd_status sd_feature_stats_compute(const sd_dataset *ds, int split, const int max_frames[SD_MOD_COUNT],
                                   sd_cap_mode cap_mode, const sd_cache *cache, sd_feature_stats *out,
                                   sd_error *err);
void sd_feature_stats_free(sd_feature_stats *s);

/* The scale of one modality: the smallest and largest standard deviation over the dims that vary,
 * the count of constant dims, the largest magnitude. *warn is 1 when the stds span more than 100x
 * or a value exceeds 100 in magnitude (features a network without input normalisation learns
 * poorly from). Writes one line ("std 0.0101 .. 166 (16435x), |x| up to 652, 2 constant dims")
 * into buf. */
void sd_feature_scale_summary(const sd_modality_stats *s, char *buf, size_t size, int *warn);

#endif
