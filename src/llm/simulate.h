/* The text simulation of MODEL.md section 6 as a library (docs/TEXT_SIMULATION.md):
 *
 *   WavLM features [T, Df] -> projector -> [T/5, D] speech embeddings; prefix = speech + BOS +
 *   prompt; generation (4 beams) -> frames [steps - 1, D] and the decoded transcript.
 *
 * sd_simtext_utterance does one utterance in memory; sd_simtext_run does a range of a folder's
 * utterances with files: IN/<name>.npy -> OUT/<name>.npy (float16) and a row of the transcripts
 * CSV, resuming (an utterance with both is skipped) and replacing every file atomically, the .npy
 * before the CSV row. A run over a subset (first, count) lets several processes share a folder,
 * each with its own transcripts CSV. */
#ifndef SD_LLM_SIMULATE_H
#define SD_LLM_SIMULATE_H

#include <stddef.h>

#include "core/status.h"
#include "llm/generate.h"
#include "llm/llama.h"
#include "llm/projector.h"
#include "llm/utterances.h"

typedef struct {
    sd_gen_params gen;  /* sd_gen_default_params(): 4 beams, 200 new tokens, slot-0 frames */
    const char *prompt; /* SD_GEN_PROMPT */
    sd_llm_arith arith; /* SD_LLM_ARITH_LLAMACPP (default) or SD_LLM_ARITH_EXACT */
    int kv_f16;         /* float16 KV cache (default 1, as llama.cpp) */
} sd_simtext_params;

sd_simtext_params sd_simtext_default_params(void);

/* Model, projector and a KV cache that grows to the longest prefix seen. */
typedef struct sd_simtext sd_simtext;

/* SD_E_SHAPE when the projector's output dim is not the LLM's embedding length. m and p are
 * borrowed (they must outlive st); params is copied (the prompt string is borrowed). */
sd_status sd_simtext_create(const sd_llama *m, const sd_projector *p, const sd_simtext_params *params,
                            sd_simtext **out, sd_error *err);
void sd_simtext_free(sd_simtext *st);

typedef struct {
    float *frames;       /* [n_frames, D] (malloc'd) */
    size_t n_frames;
    char *text;          /* the best hypothesis, decoded, valid UTF-8 (malloc'd) */
    size_t n_tokens, n_steps;
} sd_simtext_result;

void sd_simtext_result_free(sd_simtext_result *r);

/* One utterance: feats [T, Df] (Df the projector's input dim, T >= 5). Errors: a feature dim the
 * projector does not take, too few frames, a prefix + new tokens longer than the model's
 * context, no frame generated. */
sd_status sd_simtext_utterance(sd_simtext *st, const float *feats, size_t T, size_t Df,
                               sd_simtext_result *res, sd_error *err);

typedef struct {
    const char *in_dir;   /* WavLM features <name>.npy [T, Df] */
    const char *out_dir;  /* <name>.npy [frames, D] float16 (must exist) */
    const char *csv_path; /* transcripts (name,text): read to resume, rewritten after each utterance */
    char *const *names;   /* sorted utterance names (sd_utt_list_npy of in_dir) */
    size_t first, count;  /* the range names[first .. first + count) this call does */
    sd_utt_progress progress; /* may be NULL */
    void *user;
} sd_simtext_job;

/* The job's utterances one after the other; one that fails (its file, its generation, writing its
 * outputs) is reported, counted, and the run goes on. Returns an error only when the job cannot
 * start (the transcripts CSV cannot be read) or memory runs out. */
sd_status sd_simtext_run(sd_simtext *st, const sd_simtext_job *job, sd_utt_counts *counts,
                         sd_error *err);

#endif
