/* What the per-utterance LLM jobs (simulate-text, text-features) share: the list of utterance
 * names of a feature folder, output paths, and the report each utterance gives the caller (the
 * library prints nothing; the command line prints the reports). */
#ifndef SD_LLM_UTTERANCES_H
#define SD_LLM_UTTERANCES_H

#include <stddef.h>

#include "core/status.h"

typedef enum { SD_UTT_WRITTEN, SD_UTT_SKIPPED, SD_UTT_FAILED } sd_utt_outcome;

/* One utterance's outcome, handed to the progress callback as soon as it is known. */
typedef struct {
    size_t index, total;    /* position in the job's range, 0-based, and the range's size */
    const char *name;
    sd_utt_outcome outcome;
    const char *error;      /* SD_UTT_FAILED: the message */
    size_t n_tokens;        /* tokens generated (simulate-text) or read (text-features) */
    size_t n_frames;        /* rows written */
    size_t n_steps;         /* forward passes (simulate-text) */
    size_t n_out_of_f16;    /* values outside the float16 range (written as +-inf) */
    double seconds;         /* this utterance (for a batch: its share) */
    double elapsed;         /* since the job started */
} sd_utt_report;

typedef void (*sd_utt_progress)(void *user, const sd_utt_report *r);

typedef struct {
    size_t written, skipped, failed;
} sd_utt_counts;

/* Sorted names (without ".npy") of the .npy files in dir (hidden files skipped). *names and each
 * name are malloc'd (sd_utt_names_free). SD_E_IO naming dir when it cannot be read. */
sd_status sd_utt_list_npy(const char *dir, char ***names, size_t *n, sd_error *err);
void sd_utt_names_free(char **names, size_t n);
/* The same for the files of dir named prefix...suffix (longer than both), sorted; strip_suffix: the
 * names without the suffix. */
sd_status sd_utt_list_files(const char *dir, const char *prefix, const char *suffix, int strip_suffix,
                            char ***names, size_t *n, sd_error *err);

/* malloc'd "dir/name.ext", or NULL. */
char *sd_utt_path(const char *dir, const char *name, const char *ext);
int sd_utt_file_exists(const char *path);
double sd_utt_now(void); /* monotonic seconds */
/* Values of x[n] that float16 cannot hold (|v| > 65504 or NaN). */
size_t sd_utt_count_out_of_f16(const float *x, size_t n);

/* The reports of a job that is part of a longer one (a worker's passes run one at a time), passed
 * on to progress(user) with the index counted from done and the total of the whole:
 * sd_utt_offset_report is the job's progress callback, an sd_utt_offset its user. */
typedef struct {
    sd_utt_progress progress;
    void *user;
    size_t done, total;
} sd_utt_offset;
void sd_utt_offset_report(void *offset, const sd_utt_report *r);

#endif
