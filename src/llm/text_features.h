/* The real-text features of MODEL.md section 6 (X_t, the complete flow's text), from the same LLM
 * and in the same space as the simulated text (docs/TEXT_SIMULATION.md, "Real-text features"):
 *
 *   tokens = BOS + tokenize(transcript)        (the model's SentencePiece tokenizer, llama.cpp's rules)
 *   one forward pass over the tokens alone, positions 0.., causal;
 *   frame t = E_{L-3} + E_{L-2} + E_{L-1} + E_L at token t, the sum of the last four entries of
 *             Hugging Face's hidden_states (outputs of blocks L-4, L-3, L-2 and the final-norm
 *             output), exactly as a simulated-text frame is made;
 *   features [tokens, D], BOS row included (drop_bos leaves it out, as MERTools'
 *   extract_text_huggingface.py does for LLaMA tokenizers).
 *
 * Utterances are packed into forward passes of up to batch_tokens positions (each sequence attends
 * only to itself, so a packed utterance gets the features it gets alone). sd_textfeat_run writes
 * OUT/<name>.npy for a range of a transcript table, resuming (an existing .npy is kept) and
 * replacing files atomically. */
#ifndef SD_LLM_TEXT_FEATURES_H
#define SD_LLM_TEXT_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/dtype.h"
#include "llm/llama.h"
#include "llm/transcripts.h"
#include "llm/utterances.h"

typedef struct {
    sd_llm_arith arith;  /* SD_LLM_ARITH_LLAMACPP (default) or SD_LLM_ARITH_EXACT */
    int kv_f16;          /* float16 KV cache (default 1, as simulate-text) */
    size_t batch_tokens; /* positions per forward pass (512); a longer utterance has its own passes */
    int drop_bos;        /* leave the BOS row out (default 0: MODEL.md keeps it) */
} sd_textfeat_params;

sd_textfeat_params sd_textfeat_default_params(void);

typedef struct sd_textfeat sd_textfeat;

/* m is borrowed (it must outlive tf). */
sd_status sd_textfeat_create(const sd_llama *m, const sd_textfeat_params *p, sd_textfeat **out, sd_error *err);
void sd_textfeat_free(sd_textfeat *tf);

/* BOS + the text's tokens (*ids malloc'd). SD_E_ARG for an empty text ("empty transcript") or one
 * longer than the model's context. */
sd_status sd_textfeat_tokenize(const sd_textfeat *tf, const char *text, int32_t **ids, size_t *n, sd_error *err);

typedef struct {
    const sd_transcripts *t; /* names and transcripts (sd_transcripts_read) */
    const char *csv_path;    /* where t came from, for messages */
    const char *out_dir;     /* <name>.npy [rows, D] (must exist) */
    sd_dtype dtype;          /* SD_DTYPE_F16 (default) or SD_DTYPE_F32 */
    size_t first, count;     /* the rows [first, first + count) of t this call does */
    sd_utt_progress progress; /* may be NULL */
    void *user;
} sd_textfeat_job;

/* Checks every transcript of the range first (empty, longer than the context: SD_E_FORMAT naming
 * the CSV file, line and utterance, nothing written); then skips the utterances whose .npy exists
 * and does the rest in packed passes. A file that cannot be written is reported and counted as
 * failed; the run goes on. */
sd_status sd_textfeat_run(sd_textfeat *tf, const sd_textfeat_job *job, sd_utt_counts *counts, sd_error *err);

/* How sd_textfeat_run packs the job's rows when none of them has its output yet: pass[count] the
 * 0-based pass of each row (nondecreasing), positions[count] each row's tokens. Checks the
 * transcripts as sd_textfeat_run does. A run over exactly one pass's rows makes that pass, so
 * workers that each run whole passes (sd_shard_select_groups) compute what one process does. */
sd_status sd_textfeat_plan(const sd_textfeat *tf, const sd_textfeat_job *job, size_t *pass, int64_t *positions,
                           sd_error *err);

#endif
