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

/* A run whose checks passed and whose folders exist (sd_prepare_open): the work it lists can be
 * done by one process (a share of everything) or shared among workers (docs/SCALE_OUT.md). */
typedef struct sd_prepare sd_prepare;

/* Everything that can be checked is checked before the first folder is made; then OUT and its
 * folders are made and the temporaries that killed writers left in text/ and text_sim/ removed
 * (those a live writer holds are kept: several workers may open one folder). The models and o
 * are borrowed (they must outlive *out). */
sd_status sd_prepare_open(const sd_wavlm *wavlm, const sd_llama *llm, const sd_projector *proj,
                          const sd_prepare_options *o, sd_prepare **out, sd_error *err);
void sd_prepare_free(sd_prepare *p);

/* The work of an opened run (borrowed from it). */
typedef struct {
    char **paths, **names;       /* the recordings (stages 1 and 3), sorted by name */
    size_t n;
    const sd_transcripts *text;  /* the transcripts of recordings (stage 2; text->n may be 0) */
    const size_t *text_pass;     /* [text->n] each row's forward pass in a complete run (sd_textfeat_plan) */
    const int64_t *text_tokens;  /* [text->n] each row's tokens */
    const char *audio_dir, *last_dir, *text_dir, *sim_dir; /* text_dir NULL without transcripts */
    size_t transcripts_unused;   /* transcript rows without a recording (left out) */
} sd_prepare_work;

const sd_prepare_work *sd_prepare_get_work(const sd_prepare *p);

/* A worker's share: recordings (indices into names, ascending) for stages 1 and 3, transcript rows
 * (indices into text, ascending, whole passes) for stage 2, and the transcripts file stage 3
 * writes (sim_dir/transcripts.csv, or the worker's part: llm/shard.h). A share of every row runs
 * stage 2 as one job; a share of some runs each of its passes alone, so that every pass is the
 * one a complete run makes (the same bytes). */
typedef struct {
    const size_t *rec;
    size_t n_rec;
    const size_t *text;
    size_t n_text;
    const char *sim_csv;
} sd_prepare_share;

/* Runs the three stages on a share: stage 3 on the share's recordings whose last layer exists.
 * Returns non-OK when a stage cannot go on (no memory, an output folder that cannot be made);
 * failures of single utterances are reported and counted, and the run goes on. Progress indices
 * and totals count the share's utterances of each stage. */
sd_status sd_prepare_run(sd_prepare *p, const sd_prepare_share *share, const sd_prepare_progress *pg,
                         sd_prepare_counts *counts, sd_error *err);

#endif
