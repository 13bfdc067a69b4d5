/* Importing an MMSA feature pickle (aligned_50.pkl / unaligned_50.pkl of CMU-MOSI, CMU-MOSEI,
 * CH-SIMS, or what MMSA-FET writes) into the dataset layout of data/dataset.h.
 *
 * The pickle is a dict of splits "train", "valid", "test" (a missing split is an empty one), each a
 * dict with "id" (names, e.g. "03bSnISJMiM$_$1"), "audio" [N, T_a, D_a], "vision" [N, T_v, D_v],
 * "text" [N, T_t, D_t] feature arrays, "regression_labels" [N] (or [N, 1]), and optionally
 * "audio_lengths" / "vision_lengths" [N] and "text_bert" [N, 3, T_t] (BERT input ids, attention
 * mask, segment ids: only its mask row is used). Other keys (raw_text, annotations, ...) are read
 * by the pickle parser but not used.
 *
 * Each utterance becomes audio/<id>.npy, text/<id>.npy, video/<id>.npy (float32), trimmed to its
 * true length: frames [0, length) for audio and vision when their lengths are given, the frames
 * whose attention mask is set for text when text_bert is given, else the frames that are not all
 * zero (MMSA pads with zero rows). A length of 0 (or no frame left) writes one zero frame, a
 * length beyond the padded frames is clamped; both are counted. -inf, +inf and NaN become 0 and are
 * counted per modality. labels.csv gets the ids, regression_labels and the split; dataset.json
 * the label range. With sim = SD_MMSA_SIM_ZEROS, text_sim/<id>.npy holds one zero frame (a lower
 * bound for the text-missing flow, docs/DATASET.md). */
#ifndef SD_DATA_MMSA_H
#define SD_DATA_MMSA_H

#include <stdint.h>

#include "core/modality.h"
#include "core/status.h"
#include "data/dataset.h"
#include "io/pickle.h"

enum { SD_MMSA_SIM_NONE = 0, SD_MMSA_SIM_ZEROS = 1 };

typedef struct {
    double label_lo, label_hi; /* accepted label range (default -3, 3) */
    int sim;                   /* SD_MMSA_SIM_NONE or SD_MMSA_SIM_ZEROS */
} sd_mmsa_options;

sd_mmsa_options sd_mmsa_default_options(void);

/* What an import found and did (for the command's summary). The [3] arrays are indexed by the
 * pickle's modalities SD_MOD_AUDIO, SD_MOD_TEXT, SD_MOD_VIDEO (core/modality.h). */
typedef struct {
    int64_t n[SD_SPLIT_COUNT];
    int dim[3];                 /* D_a, D_t, D_v */
    int64_t padded[3];          /* T of the arrays (the largest over the splits) */
    int lengths_given[3];       /* audio_lengths / text_bert mask / vision_lengths present */
    int64_t frames_kept[3], frames_padded[3];
    int64_t nonfinite[3];       /* -inf, +inf and NaN values set to 0 (in the frames kept) */
    int64_t clamped[3];         /* lengths beyond the padded frames */
    int64_t empty[3];           /* utterances with no frame left: one zero frame written */
} sd_mmsa_report;

/* Checks the structure of a parsed pickle (splits, keys, types, shapes, ids, labels in range,
 * lengths) without reading the features; fills report->n, dim, padded, lengths_given. Messages
 * name the split and key ("train/audio: ...") and, for labels and ids, the utterance. */
sd_status sd_mmsa_check(const sd_pk_obj *root, const sd_mmsa_options *o, sd_mmsa_report *report, sd_error *err);

/* Reads FILE.pkl with the restricted parser, checks it, and writes the dataset folder out_dir
 * (which must not exist or be empty) through a temporary folder renamed into place: a failure
 * leaves nothing. */
sd_status sd_mmsa_import(const char *pkl_path, const char *out_dir, const sd_mmsa_options *o,
                         sd_mmsa_report *report, sd_error *err);

#endif
