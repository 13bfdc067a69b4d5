/* Generation as the SDUMC text simulation uses it (MODEL.md section 6), with Hugging Face
 * transformers semantics for a decoder-only model fed inputs_embeds (so the "current length" counts
 * generated tokens only):
 *
 *   prefix = [projected speech frames][BOS][prompt tokens], one prefill pass (step 0);
 *   beam search, n_beams slots: log_softmax of each slot's logits + the slot's running score
 *   (float32; slot 0 starts at 0, the others at -1e9), the top 2 n_beams of n_beams x V candidates
 *   in order: EOS candidates among the first n_beams close a hypothesis (score / len^length_penalty,
 *   len = tokens before EOS), others fill the next n_beams slots; the search is done once n_beams
 *   hypotheses are closed and the worst of them is >= best candidate score / cur_len^length_penalty,
 *   or after max_new_tokens; open slots are then closed too, and the best hypothesis is returned.
 *   EOS is banned while fewer than min_new_tokens tokens exist (HF min_length = 1 => first step).
 *   Greedy (n_beams = 1): argmax of the logits until EOS or max_new_tokens.
 *
 * Simulated-text frames: at every step after the first (each forward pass of one token per slot)
 * the sum of HF's last four hidden_states entries (blocks L-4, L-3, L-2 and the final-norm output,
 * see llama.h) at the fed token's position.
 *   SD_FEATURES_FIRST_SLOT (default, what MODEL.md describes and the released features hold):
 *     the frame of beam slot 0 at each step, whichever hypothesis slot 0 holds at that step; one
 *     frame per step after the first, so steps - 1 frames.
 *   SD_FEATURES_BEST_BEAM: the frames along the returned hypothesis' own history (one per token of
 *     it that was fed back: its tokens minus the last one, or all of them when it ended with EOS).
 * For greedy decoding both are the same. */
#ifndef SD_LLM_GENERATE_H
#define SD_LLM_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "llm/llama.h"

#define SD_GEN_PROMPT                                                                          \
    "USER: Transcribe speech to text. Output the transcription directly without redundant "   \
    "content. Ensure that the output is not duplicated. \n ASSISTANT:"

typedef enum { SD_FEATURES_FIRST_SLOT = 0, SD_FEATURES_BEST_BEAM = 1 } sd_gen_features;

typedef struct {
    int n_beams;          /* 4; 1 = greedy */
    int max_new_tokens;   /* 200 */
    int min_new_tokens;   /* 1 */
    float length_penalty; /* 1.0 */
    sd_gen_features features;
} sd_gen_params;

sd_gen_params sd_gen_default_params(void);

typedef struct {
    int32_t *tokens;      /* best hypothesis, without EOS (malloc'd) */
    size_t n_tokens;
    float *frames;        /* [n_frames, D] (malloc'd) */
    size_t n_frames;
    size_t steps;         /* forward passes, the prefill included */
    int ended_by_eos;     /* the returned hypothesis closed with EOS */
} sd_gen_result;

void sd_gen_result_free(sd_gen_result *r);

/* prefix [P, D] = speech [S, D] followed by the embeddings of BOS + tokenize(prompt).
 * *prefix is malloc'd. */
sd_status sd_gen_build_prefix(const sd_llama *m, const float *speech, size_t S, const char *prompt,
                              float **prefix, size_t *P, sd_error *err);

/* The cache must hold >= P prefix positions, >= max_new_tokens - 1 steps and >= n_beams beams;
 * it is reset first. */
sd_status sd_generate(const sd_llama *m, sd_llama_cache *c, const float *prefix, size_t P,
                      const sd_gen_params *gp, sd_gen_result *res, sd_error *err);

#endif
