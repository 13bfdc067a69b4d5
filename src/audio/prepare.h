/* `sdumc prepare`: from a folder of recordings (and the transcripts that exist) to the dataset
 * layout of docs/DATASET.md, in three resumable stages:
 *
 *   1. audio-features (audio_features.h): OUT/audio/<name>.npy, WavLM hidden state audio_layer (20),
 *      and OUT/wavlm_last/<name>.npy, the last layer, from one pass per recording;
 *   2. text-features (llm/text_features.h): OUT/text/<name>.npy, the LLM's states of the transcript,
 *      for every recording with a row in the transcripts CSV;
 *   3. simulate-text (llm/simulate.h): OUT/text_sim/<name>.npy and OUT/text_sim/transcripts.csv,
 *      from OUT/wavlm_last, for every recording.
 *
 * Every file is written atomically and an existing output is kept, so a run that was stopped (even
 * killed) and started again with the same options redoes at most the utterance it was on in each
 * stage. Everything that can be checked is checked before the first file is written: the
 * recordings (a folder of unique names), the transcripts (readable, unique names, none empty or
 * longer than the LLM's context), the WavLM layer, the chunking, and that the three models fit
 * together (projector input = 5 x WavLM's hidden size, projector output = the LLM's). The video
 * features and labels.csv are not made here: they are the user's (docs/DATASET.md). */
#ifndef SD_AUDIO_PREPARE_H
#define SD_AUDIO_PREPARE_H

#include "audio/audio_features.h"
#include "llm/llama.h"
#include "llm/projector.h"
#include "llm/simulate.h"
#include "llm/text_features.h"

typedef struct {
    const char *wav_dir;          /* recordings */
    const char *transcripts;      /* CSV with a header (NULL: no transcripts, no text folder) */
    const char *name_col, *text_col; /* its columns ("name", "text") */
    const char *out_dir;          /* the dataset folder (created when missing) */
    int audio_layer;              /* WavLM hidden state of the audio folder (20) */
    double chunk_seconds, overlap_seconds;
    int threads;
    sd_simtext_params sim;        /* simulate-text's settings (sd_simtext_default_params) */
    sd_textfeat_params text;      /* text-features' settings (sd_textfeat_default_params) */
} sd_prepare_options;

sd_prepare_options sd_prepare_default_options(void);

/* Reports (all members may be NULL): a stage starts with `count` utterances (1, 2, 3 as above),
 * then one report per utterance. */
typedef struct {
    void (*stage)(void *user, int stage, const char *what, size_t count);
    sd_af_progress audio;
    sd_utt_progress text, sim;
    void *user;
} sd_prepare_progress;

typedef struct {
    sd_utt_counts audio, text, sim;
    size_t recordings, with_transcript; /* recordings, and those with a transcript */
    size_t transcripts_unused;          /* transcript rows without a recording (left out) */
} sd_prepare_counts;

/* Runs the three stages. Returns non-OK when a check fails before any work or a stage cannot go
 * on (no memory, an output folder that cannot be made); failures of single utterances are
 * reported and counted, and the run goes on. */
sd_status sd_prepare_run(const sd_wavlm *wavlm, const sd_llama *llm, const sd_projector *proj,
                         const sd_prepare_options *o, const sd_prepare_progress *p, sd_prepare_counts *counts,
                         sd_error *err);

#endif
