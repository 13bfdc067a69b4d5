/* Reading frames of one feature file (.npy, [T, D], float16 / bfloat16 / float32 / float64) into
 * float32 (or kept in the file's dtype), through a bounded scratch buffer: memory does not depend
 * on the file's size.
 *
 * Frame caps. When a modality is capped at C frames and an utterance has T > C:
 *   SD_CAP_SUBSAMPLE keeps C frames spread uniformly over the utterance, frame
 *                    floor((2i + 1) T / (2C)) for i = 0..C-1 (the centre of each of C equal
 *                    segments), so the whole utterance is still seen;
 *   SD_CAP_TRUNCATE  keeps the first C frames.
 * With T <= C (or C = 0, no cap) every frame is kept. */
#ifndef SD_DATA_FEATURE_FILE_H
#define SD_DATA_FEATURE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum { SD_CAP_SUBSAMPLE = 0, SD_CAP_TRUNCATE = 1 } sd_cap_mode;

/* Frames kept from an utterance of T frames under cap C (0 = none). */
int64_t sd_cap_frames(int64_t T, int64_t cap);
/* The k-th kept frame (0 <= k < sd_cap_frames(T, cap)). */
int64_t sd_cap_frame_index(int64_t T, int64_t cap, sd_cap_mode mode, int64_t k);

/* Scratch bytes sd_feature_read uses (a multiple of any row size up to this). */
#define SD_FEATURE_SCRATCH_BYTES ((size_t)1 << 20)

/* Reads the kept frames of path into dst [n_kept, D] (row-major), stored as dst_dtype: SD_DTYPE_F32
 * (converted), or the file's own dtype (copied as stored; the file must still hold that dtype).
 * The file must still have the shape validation saw (expect_T x expect_D): otherwise SD_E_FORMAT
 * "changed since validation". Every value is checked: NaN or Inf gives SD_E_NUMERIC naming the
 * file, frame and column, or, with zero_nonfinite, is read as 0 (the dataset option nonfinite_zero).
 * scratch: at least SD_FEATURE_SCRATCH_BYTES, 64-byte aligned (sd_alloc). */
sd_status sd_feature_read(const char *path, int64_t expect_T, int64_t expect_D, int64_t cap,
                          sd_cap_mode mode, int zero_nonfinite, void *dst, int dst_dtype, void *scratch,
                          sd_error *err);

/* Scans a whole file for NaN / Inf (and reads it, so a truncated file is found too). With
 * nonfinite != NULL they are counted there instead of failing. */
sd_status sd_feature_check(const char *path, int64_t expect_T, int64_t expect_D, void *scratch,
                           int64_t *nonfinite, sd_error *err);

/* Converts n values of dtype (an sd_dtype) at src to float32; returns the index of the first
 * non-finite result, or -1. */
int64_t sd_feature_convert(int dtype, const void *src, float *dst, int64_t n);
/* Index of the first NaN or Inf among n values of dtype at src, or -1. */
int64_t sd_feature_first_nonfinite(int dtype, const void *src, int64_t n);

#endif
