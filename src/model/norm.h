/* Input standardisation of `train --normalize standard`, and its fold into the model file.
 *
 * Each modality's frames are standardised per dimension, x' = (x - mean) * (1 / std), with the
 * training split's statistics (data/feature_stats.h); the simulated text uses the real text's, since
 * both flows share the text projection. Padding is not touched (it is masked). Training runs on x'.
 * A saved model file folds the standardisation into each modality's first linear layer,
 * frame_dim_reshape_m: W' = W diag(1/std), b' = b - W (mean / std) (in double), so the file holds the
 * reference module's tensors, loads into it strictly, and predicts from raw features: eval,
 * predict, predict-one, the C API and Python need nothing else. The statistics are kept in the
 * file's metadata ("normalize" = "standard", "norm_mean_<modality>", "norm_std_<modality>") and in
 * the training state, so that training can resume, or start again from the file (--init), in the
 * standardised space (sd_norm_unfold).
 *
 * std is the divisor after a floor: a dim constant up to float rounding (std <= 1e-6 |mean|) gets
 * 1 (centred only, as sklearn leaves constant features unscaled), any other at least 1e-4 times the
 * modality's root-mean-square std, so a nearly constant dim cannot be blown up by 1/std.
 *
 * Legend: H general dim, D_m input dim of modality slot m (audio 0, text 1, video 2). */
#ifndef SD_MODEL_NORM_H
#define SD_MODEL_NORM_H

#include "core/status.h"
#include "data/feature_stats.h"
#include "model/model.h"

/* One frame standardised in place: row [D] = (row - mean) * inv, per dim. The one formula of both
 * places that standardise (sd_norm_apply and the frame projection's chunks, model/frames.c), so
 * their results are the same bits; float16 frames take the same float32 subtraction and product
 * fused with their conversion (sd_f16_to_f32_affine_n, io/half.h, tested against it). */
static inline void sd_norm_row(float *row, const float *mean, const float *inv, int D) {
    for (int d = 0; d < D; d++) row[d] = (row[d] - mean[d]) * inv[d];
}

typedef struct {
    int dim[3];      /* D_a, D_t, D_v; 0 when unset */
    float *mean[3];  /* [D_m] */
    float *std[3];   /* [D_m], the divisor (after the floor) */
    float *inv[3];   /* [D_m], 1.0f / std: what standardisation multiplies by (and the fold uses) */
} sd_norm;

/* The standardisation of the statistics of a training split (audio, text, video slots). */
sd_status sd_norm_from_stats(sd_norm *n, const sd_feature_stats *s, sd_error *err);
void sd_norm_free(sd_norm *n);
/* 1 when set. */
int sd_norm_active(const sd_norm *n);

/* Standardises frames [T, D_m] of one utterance of network slot m in place (the simulated text:
 * slot 1). Training does not rewrite its batches: the frame projection standardises each chunk it
 * reads with the same formula (model/frames.c, sd_flow_input mean/inv). */
void sd_norm_apply(const sd_norm *n, int slot, float *x, int64_t T);

/* out = params with each frame projection folded (out may equal params). m gives the layout. */
void sd_norm_fold(const sd_norm *n, const sd_model *m, const float *params, float *out);
/* The inverse: the parameters of the standardised-space network that folds to params. */
void sd_norm_unfold(const sd_norm *n, const sd_model *m, const float *params, float *out);

/* Metadata, both ways. read: *present = 0 (and n untouched) when the file has no statistics;
 * dims are checked against the model's. */
struct sd_st_writer;
struct sd_safetensors;
sd_status sd_norm_write_metadata(struct sd_st_writer *w, const void *norm, sd_error *err);
sd_status sd_norm_read_metadata(const struct sd_safetensors *st, const char *path, const int dim[3], sd_norm *n,
                                int *present, sd_error *err);
/* 1 when the model file at path carries standardisation statistics ("normalize" = "standard"). */
int sd_norm_file_has_stats(const char *path);
/* The statistics a model file carries (*present = 0 when none). */
sd_status sd_norm_read_file(const char *path, const int dim[3], sd_norm *n, int *present, sd_error *err);

#endif
