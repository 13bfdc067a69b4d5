/* LLaMA decoder inference over a GGUF model (llama.cpp's "llama" architecture: LLaMA, LLaMA-2,
 * Vicuna), CPU, float32 activations, weights dequantised on the fly.
 *
 * Legend: D n_embd, H heads, Hkv key/value heads (grouped-query: head h reads kv head
 *         h / (H / Hkv)), d head dim (D / H), KV = Hkv d, F feed-forward dim, V vocabulary,
 *         L layers, N positions of a prefill, B beams of a step, P prefix length, S steps.
 *
 * Block l:  h += Wo attn(rope(Wq rms(h)), rope(Wk rms(h)), Wv rms(h));  h += Wd (silu(Wg f) * Wu f),
 * f = rms(h); logits = Wout rms(h). RoPE rotates adjacent pairs (2i, 2i+1) by pos * base^(-2i/d),
 * the convention of GGUF files, whose Q/K rows llama.cpp's converter permuted from the HF layout.
 *
 * Attention: softmax(q . k / sqrt(d)) over the keys a row sees, in float32 (the norms, RoPE, gate
 * and softmax of each arithmetic: kernels.h, elementwise.c). With a float16 KV cache in llama.cpp's
 * arithmetic, q and the softmax weights are rounded to float16
 * before their products with the keys and values, as llama.cpp does; in the exact arithmetic only
 * the stored keys and values are rounded.
 *
 * Generation cache: one prefix (speech embeddings + prompt) shared by B beams, then per step one
 * position per beam. The keys/values a beam computed at step s stay where they were written; each
 * beam slot keeps the list of slots (one per step) that hold its history, so reordering the beams
 * after a search step copies S small integers per beam, not the cache. */
#ifndef SD_LLM_LLAMA_H
#define SD_LLM_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "llm/kernels.h"
#include "llm/tokenizer.h"

typedef struct {
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rope_base, rms_eps;
} sd_llama_hparams;

typedef struct sd_llama sd_llama;

/* Opens path (GGUF v3) and checks everything before use: architecture "llama" (SD_E_UNSUPPORTED
 * otherwise, naming the architecture found), hyperparameters, every tensor's presence, shape and
 * type (output.weight may be absent: the embedding is then tied), the tokenizer. */
sd_status sd_llama_load(const char *path, sd_llama **out, sd_error *err);
/* The same for one arithmetic: for llama.cpp's (what sd_llama_load loads for) the Q8_0 / Q4_0
 * product matrices are repacked (src/llm/kernels_repack.h, when the kernels in use have products
 * over repacked weights), for the exact one they are not (its products read the stored blocks, so
 * the model keeps only the file mapping). Either model runs either arithmetic; the other one then
 * takes the kernels over the stored blocks. */
sd_status sd_llama_load_for(const char *path, sd_llm_arith arith, sd_llama **out, sd_error *err);
void sd_llama_free(sd_llama *m);

const sd_llama_hparams *sd_llama_get_hparams(const sd_llama *m);
const sd_tokenizer *sd_llama_get_tokenizer(const sd_llama *m);
/* Type name of the attention weights of block 0 ("Q8_0", ...), for messages. */
const char *sd_llama_weight_type(const sd_llama *m);
/* Bytes of weights read per decoded token (all matrices but the embedding, plus the output head). */
size_t sd_llama_weight_bytes(const sd_llama *m);

/* The weights repacked at load for the 8-bit products (src/llm/kernels_repack.h; Q8_0 and Q4_0
 * matrices, when the kernels in use have products over them): their bytes (0: none) and the
 * seconds the repacking took. */
size_t sd_llama_packed_bytes(const sd_llama *m, double *seconds);

/* out[n, D] = embedding rows of ids; SD_E_ARG for an id outside [0, V). */
sd_status sd_llama_embed(const sd_llama *m, const int32_t *ids, size_t n, float *out, sd_error *err);

typedef struct sd_llama_cache sd_llama_cache;

/* What a cache holds room for. It also holds the scratch of the forward pass (allocated once,
 * here, not per call): a prefill longer than max_rows runs in pieces of max_rows rows. */
typedef struct {
    size_t max_prefix;  /* prefix positions (speech frames + prompt) */
    size_t max_steps;   /* generation steps after the prefill */
    size_t n_beams;     /* rows of a step */
    size_t max_rows;    /* rows per forward pass; 0: min(max_prefix, 512), at least n_beams */
    sd_llm_arith arith; /* SD_LLM_ARITH_LLAMACPP (default) or SD_LLM_ARITH_EXACT (kernels.h) */
    int kv_f16;         /* keys and values stored as float16 (half the memory) */
} sd_llama_cache_params;

/* All 0 but n_beams = 1: llama.cpp's arithmetic, float32 KV cache. */
sd_llama_cache_params sd_llama_cache_default_params(void);

sd_status sd_llama_cache_create(const sd_llama *m, const sd_llama_cache_params *p,
                                sd_llama_cache **out, sd_error *err);
void sd_llama_cache_free(sd_llama_cache *c);
/* Forget everything (a new utterance). */
void sd_llama_cache_reset(sd_llama_cache *c);
size_t sd_llama_cache_prefix_len(const sd_llama_cache *c);
size_t sd_llama_cache_steps(const sd_llama_cache *c);

/* What a forward pass writes (NULL members are skipped). rows = N (prefill) or B (step). */
typedef struct {
    float *logits;     /* step: [B, V]; prefill: [N, V] when all_logits, else [V] of the last row */
    int all_logits;
    float *hidden_sum; /* [rows, D]: the sum of the last four entries of HF's hidden_states, i.e.
                          outputs of blocks L-4, L-3, L-2 and the final-norm output (MODEL.md 6) */
    float *layers;     /* [L, rows, D] outputs of every block (tests) */
    float *normed;     /* [rows, D] final-norm outputs */
} sd_llama_out;

/* Appends N positions with input embeddings x[N, D] to the prefix (may be called repeatedly, but
 * only before the first step). */
sd_status sd_llama_prefill(const sd_llama *m, sd_llama_cache *c, const float *x, size_t N,
                           sd_llama_out *out, sd_error *err);
/* A batch of n_seq independent sequences in one pass (their rows one after the other in x, lens[i]
 * rows each; each starts at position 0 and attends only to itself), into an empty cache; outputs
 * by row as for a prefill. One sequence is a plain prefill; several must fit in one pass (max_rows
 * and max_prefix). The cache then takes no steps or prefills until it is reset. */
sd_status sd_llama_prefill_batch(const sd_llama *m, sd_llama_cache *c, const float *x, const size_t *lens,
                                 size_t n_seq, sd_llama_out *out, sd_error *err);
/* One step: beam b feeds x[b] (x [B, D], B = the cache's n_beams or fewer) at position
 * prefix + steps, attending to the prefix and to its own history. */
sd_status sd_llama_step(const sd_llama *m, sd_llama_cache *c, const float *x, size_t B,
                        sd_llama_out *out, sd_error *err);
/* After a step: beam slot b continues the history of slot parent[b], for b < n (parent [n],
 * n <= the cache's n_beams, each parent < n). */
void sd_llama_cache_reorder(sd_llama_cache *c, const int *parent, size_t n);
/* Beam slot b's history [steps]: entry s is the slot whose step-s keys/values (and anything else a
 * caller stores by (step, slot)) belong to the hypothesis slot b holds now. */
const int *sd_llama_cache_history(const sd_llama_cache *c, size_t b);

#endif
