/* A multimodal sentiment dataset on disk, in the layout of MERTools feature folders:
 *
 *   DIR/labels.csv          header name,label,split (any column order, extra columns ignored);
 *                           label a float in [-3, 3] (or the range of dataset.json), split train,
 *                           valid or test
 *   DIR/dataset.json        optional: {"label_range": [LO, HI]} (e.g. CH-SIMS's [-1, 1])
 *   DIR/<audio>/<name>.npy  [T_a, D_a]
 *   DIR/<text>/<name>.npy   [T_t, D_t]   real transcript features
 *   DIR/<video>/<name>.npy  [T_v, D_v]
 *   DIR/<sim>/<name>.npy    [T_s, D_t]   simulated text from the audio (text-missing flow); optional
 *
 * Folder names default to audio, text, video and text_sim. Feature files may be float16, float32 or
 * float64, C order, [T, D] (a 1-D file [D] counts as one frame). Opening a dataset validates all of it (see sd_dataset_open) but keeps only
 * the metadata in memory (names, labels, frame counts): features are read batch by batch
 * (src/data/batch.h), so memory does not grow with the dataset.
 *
 * Legend: T frames of one utterance and modality, D feature dim of a modality. */
#ifndef SD_DATA_DATASET_H
#define SD_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/modality.h"
#include "core/status.h"
#include "io/file.h"

typedef enum { SD_SPLIT_TRAIN = 0, SD_SPLIT_VALID = 1, SD_SPLIT_TEST = 2 } sd_split;
#define SD_SPLIT_COUNT 3

#define SD_LABEL_MIN (-3.0f)
#define SD_LABEL_MAX 3.0f

typedef struct {
    const char *dir;                     /* the dataset folder (holds labels.csv) */
    const char *folder[SD_MOD_COUNT];    /* feature folder per modality; NULL = default name */
    int skip_bad;     /* 1: drop utterances with problems (listed by sd_dataset_warnings) */
    int require_sim;  /* 1: the simulated-text folder must exist (text-missing flow needed) */
    int check_values; /* 1: read every feature file and reject NaN / Inf (default 1) */
    int nonfinite_zero; /* 1: NaN / Inf feature values are read as 0 and counted (sd_dataset_nonfinite),
                         * not problems: MMSA's choice for COVAREP's -inf (default 0) */
    unsigned need_splits; /* splits that must not be empty (SD_SPLIT_BIT); default all three. An
                           * empty split outside this set is not a problem (e.g. a test-only
                           * folder for prediction); the dataset must hold one utterance anyway. */
} sd_dataset_options;

#define SD_SPLIT_BIT(s) (1u << (s))
#define SD_SPLITS_ALL ((1u << SD_SPLIT_COUNT) - 1u)

typedef struct sd_dataset sd_dataset;

/* dir NULL, default folders, skip_bad 0, require_sim 0, check_values 1, need_splits all. */
sd_dataset_options sd_dataset_default_options(void);

/* "audio", "text", "video", "sim" (for messages), and the default folder names
 * "audio", "text", "video", "text_sim". NULL outside [0, SD_MOD_COUNT). */
const char *sd_modality_name(int modality);
const char *sd_modality_default_folder(int modality);
/* "train", "valid", "test"; NULL for another value. */
const char *sd_split_name(sd_split split);
/* 0 on success, -1 if name is not one of the three. */
int sd_split_from_name(const char *name, sd_split *out);

/* Reads labels.csv and the header of every feature file, and (with check_values) every value, and
 * checks everything before anything else happens. Problems found:
 *   a missing labels.csv, header column or feature folder; an unparsable row; a name that is not a
 *   plain file name; duplicate names; a label that is not a number or lies outside the label range
 *   ([-3, 3], or dataset.json's "label_range"); a malformed dataset.json; an
 *   unknown split; a missing or malformed feature file; a feature file whose dim differs from the
 *   others of its modality (or, for the simulated text, from the text dim); zero frames; NaN or Inf
 *   (file, frame and column); an empty split among need_splits; no utterance at all.
 * Without skip_bad any problem fails the open (SD_E_FORMAT) and err->msg holds the report: a first
 * line with the count, then one problem per line, cut short to fit err->msg with a last line saying
 * how many were left out (sd_dataset_open_report returns the whole report). With skip_bad an
 * utterance with problems is dropped and listed in sd_dataset_warnings; problems that concern the
 * dataset as a whole (no labels.csv, a missing folder, an empty needed split) still fail.
 * A missing simulated-text folder is a problem only with require_sim; otherwise the dataset has no
 * simulated text (sd_dataset_has_sim() == 0) and serves the complete flow only. */
sd_status sd_dataset_open(const sd_dataset_options *o, sd_dataset **out, sd_error *err);
/* Same, and *report receives the full report (problems, or with skip_bad the warnings), malloc'ed,
 * to free(); NULL when there is nothing to report. */
sd_status sd_dataset_open_report(const sd_dataset_options *o, sd_dataset **out, char **report,
                                 sd_error *err);
void sd_dataset_close(sd_dataset *ds);

/* The utterances skipped with skip_bad, one per line with their problems; "" when none. */
const char *sd_dataset_warnings(const sd_dataset *ds);
int64_t sd_dataset_skipped(const sd_dataset *ds);

int64_t sd_dataset_size(const sd_dataset *ds, sd_split split);
/* Total kept utterances (all splits). */
int64_t sd_dataset_total(const sd_dataset *ds);
/* D_a, D_t, D_v, and D_t again for the simulated text; 0 for SIM when there is none. */
int sd_dataset_dim(const sd_dataset *ds, int modality);
int sd_dataset_has_sim(const sd_dataset *ds);
/* With nonfinite_zero: NaN / Inf values of a modality found by validation (read as 0). */
int64_t sd_dataset_nonfinite(const sd_dataset *ds, int modality);
/* The labels' range: dataset.json's "label_range", [-3, 3] without one. Validation checks every
 * label against it; the metrics follow it (train/metrics.h). */
void sd_dataset_label_range(const sd_dataset *ds, double *lo, double *hi);
const char *sd_dataset_dir(const sd_dataset *ds);
const char *sd_dataset_folder(const sd_dataset *ds, int modality);

/* Utterance i (0 <= i < size) of a split, in labels.csv order. */
const char *sd_dataset_name(const sd_dataset *ds, sd_split split, int64_t i);
float sd_dataset_label(const sd_dataset *ds, sd_split split, int64_t i);
/* Frames on disk of one utterance and modality (0 for SIM without simulated text). */
int64_t sd_dataset_frames(const sd_dataset *ds, sd_split split, int64_t i, int modality);
/* Longest utterance of a modality over the kept utterances of all splits. */
int64_t sd_dataset_max_frames(const sd_dataset *ds, int modality);
/* Writes "<dir>/<folder>/<name>.npy" into buf; SD_E_ARG if it does not fit. */
sd_status sd_dataset_path(const sd_dataset *ds, sd_split split, int64_t i, int modality, char *buf,
                          size_t size, sd_error *err);

/* What training reads from the dataset, as one line: the train and valid splits' sizes, the dims,
 * and an FNV-1a 64 hash over each of their utterances in order (name, split, label bits, frame
 * count of every modality): "train 42, valid 6, dims 32/48/24/48, hash 0123456789abcdef".
 * malloc'ed (free it); NULL when out of memory. A resumed run must see the same line. */
char *sd_dataset_fingerprint(const sd_dataset *ds);

/* Refuses an output path that would touch the dataset (its labels.csv, or inside a feature folder) or
 * one of `more` inputs: sd_output_check (io/file.h) with the dataset's inputs added. */
sd_status sd_dataset_check_output(const sd_dataset *ds, const char *out, const char *what, const sd_input *more,
                                  int n_more, sd_error *err);

/* Moves a seeded random fraction of the train split into the (empty) valid split, in memory
 * (labels.csv is not touched): round(fraction x train) utterances, at least 1, leaving at least 1
 * in train. The choice is a pure function of (seed, the train split's names in order, fraction),
 * so a resumed run carves the same split. Both splits keep labels.csv order. SD_E_ARG when the
 * dataset already has a valid split, the fraction is not in (0, 1) or train has fewer than 2
 * utterances. *carved receives the count moved. */
sd_status sd_dataset_carve_valid(sd_dataset *ds, double fraction, uint64_t seed, int64_t *carved,
                                 sd_error *err);

/* Lookup by name (for `predict --names FILE`): the index within its split, *split set; -1 when the
 * dataset has no such (kept) utterance. */
int64_t sd_dataset_find(const sd_dataset *ds, const char *name, sd_split *split);

#endif
