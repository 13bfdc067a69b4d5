/* The LLaMA model and cache structures, shared by llama.c (loading), llama_cache.c (the cache and
 * its forward-pass scratch) and llama_forward.c (the forward pass). Not for other modules: they
 * use llama.h. Legend as in llama.h. */
#ifndef SD_LLM_LLAMA_INTERNAL_H
#define SD_LLM_LLAMA_INTERNAL_H

#include "io/gguf.h"
#include "llm/kernels.h"
#include "llm/llama.h"

typedef struct {
    float *attn_norm, *ffn_norm; /* [D] */
    sd_wmat q, k, v, o;          /* [D,D] [KV,D] [KV,D] [D,D] as N x K */
    sd_wmat gate, up, down;      /* [F,D] [F,D] [D,F] */
} sd_llama_layer;

struct sd_llama {
    sd_gguf *gguf;
    sd_llama_hparams hp;
    sd_tokenizer *tok;
    sd_wmat embd, output; /* [V, D] each */
    float *output_norm;   /* [D] */
    sd_llama_layer *layers; /* [L] */
    size_t packed_bytes;  /* the repacked weights (kernels_repack.h) */
    double repack_s;      /* and the seconds repacking took */
};

/* Buffers of one forward pass over at most R rows, allocated with the cache (none per call). */
typedef struct {
    size_t R;                   /* rows */
    float *x, *xn, *q, *att;    /* [R, D] residual stream, normed input, queries, attention out */
    float *k, *v;               /* [R, KV] this pass's keys and values */
    float *g, *u;               /* [R, F] gate and up projections */
    sd_llm_work work;           /* the products' prepared activations */
    /* attention, per thread: QB query rows (a block of rows x the heads of one KV head) */
    int n_threads;
    size_t T, QB;               /* T = max_prefix + max_steps: the most keys a row sees */
    float *scores;              /* [n_threads, QB, T] */
    float *qbuf, *obuf;         /* [n_threads, QB, d] the block's queries and outputs */
    size_t *seg;                /* [R] a batch of sequences (sd_llama_prefill_batch): the prefix index
                                   where row r's sequence starts */
    int use_seg;                /* the pass is such a batch */
} sd_llama_scratch;

/* Rows of a prefill that one attention job takes (times the heads of a KV head). */
#define SD_LLAMA_ATT_ROWS 32

struct sd_llama_cache {
    size_t L, KV, max_prefix, max_steps, n_beams;
    size_t n_prefix, n_steps;
    int batched;          /* the prefix holds a batch of sequences: no steps until a reset */
    sd_llm_arith arith;
    int kv_f16;
    size_t es;            /* bytes per stored key/value element: 2 or 4 */
    void *k_pre, *v_pre;  /* [L, max_prefix, KV] */
    void *k_gen, *v_gen;  /* [L, max_steps, n_beams, KV] */
    int *anc, *anc_tmp;   /* [n_beams, max_steps]: slot holding beam b's step s */
    sd_llama_scratch s;
};

/* Attention of layer l for the pass's rows (llama_attention.c): att from q and the cache.
 * step = 0: rows are prefix positions n_prefix.. (their keys already stored); step = 1: rows are
 * beams at position n_prefix + n_steps. */
void sd_llama_attention(const sd_llama *m, sd_llama_cache *c, size_t M, int step, size_t l);

#endif
