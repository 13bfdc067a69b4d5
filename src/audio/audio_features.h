/* From a folder of recordings to WavLM feature files (`sdumc audio-features`): every recording is
 * decoded to 16 kHz mono (audio.h), run through WavLM once for all the layers asked for, whole or
 * in overlapping windows (the chunking policy of wavlm.h), and each layer written as
 * OUT_k/<name>.npy, [frames, D] float16, atomically (temporary file, fsync, rename). A recording
 * whose every output file exists is skipped, so an interrupted run resumes where it stopped and
 * redoes at most the recording it was working on (removing the temporary files a killed run left
 * for that recording).
 *
 * sd_af_run works on any list of recordings, so a caller can give each process of a larger job its
 * own share (e.g. every k-th file); outputs never collide as long as the names are unique. */
#ifndef SD_AUDIO_AUDIO_FEATURES_H
#define SD_AUDIO_AUDIO_FEATURES_H

#include <stddef.h>

#include "core/status.h"
#include "llm/utterances.h"
#include "wavlm/wavlm.h"

#define SD_AF_MAX_OUT 4

typedef struct {
    const char *out_dir[SD_AF_MAX_OUT]; /* one folder per output (created when missing) */
    int layer[SD_AF_MAX_OUT];           /* hidden state per output, 0..L (wavlm.h) */
    int n_out;
    double chunk_seconds, overlap_seconds;
    int threads;                        /* OpenMP threads of the model (0: all) */
} sd_af_options;

/* Defaults: no output yet, chunks of SD_WAVLM_CHUNK_SECONDS overlapping by
 * SD_WAVLM_OVERLAP_SECONDS, all threads. */
sd_af_options sd_af_default_options(void);

/* What happened to one recording, for progress reports: the report of the other per-utterance jobs
 * (llm/utterances.h: index, total, name, outcome, error, n_frames, n_out_of_f16, seconds, elapsed)
 * and what the audio file was. */
typedef struct {
    sd_utt_report r;
    const char *path;
    double audio_seconds; /* duration at 16 kHz */
    int rate, channels;   /* of the file */
} sd_af_report;

typedef void (*sd_af_progress)(void *user, const sd_af_report *p);

/* The audio files of dir (sd_audio_is_audio_name), sorted by file name; names[i] is the file name
 * without its extension. Two files with one name (a.wav, a.flac) are an error naming both.
 * *n_other counts the other entries (not audio, hidden, folders). Free with sd_af_list_free. */
sd_status sd_af_list(const char *dir, char ***paths, char ***names, size_t *n, size_t *n_other,
                     sd_error *err);
void sd_af_list_free(char **paths, char **names, size_t n);

/* Runs recordings paths[i] (written as names[i]) for i < n. A recording that fails (unreadable,
 * too short, a write error) is reported through progress (may be NULL) and counted, and the run
 * goes on. Returns non-OK only when nothing can be done (bad options, an output folder that cannot
 * be made, no memory for the model's workspace). */
sd_status sd_af_run(const sd_wavlm *m, const sd_af_options *o, char *const *paths, char *const *names,
                    size_t n, sd_af_progress progress, void *user, sd_utt_counts *counts, sd_error *err);

#endif
