/* Beam search and greedy decoding with the simulated-text frames; see generate.h.
 * Legend: B beams, V vocabulary, D hidden, S max steps (max_new_tokens). */
#include "llm/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

sd_gen_params sd_gen_default_params(void) {
    sd_gen_params p = {4, 200, 1, 1.0f, SD_FEATURES_FIRST_SLOT};
    return p;
}

void sd_gen_result_free(sd_gen_result *r) {
    if (!r) return;
    free(r->tokens);
    free(r->frames);
    memset(r, 0, sizeof *r);
}

sd_status sd_gen_build_prefix(const sd_llama *m, const float *speech, size_t S, const char *prompt,
                              float **prefix, size_t *P, sd_error *err) {
    *prefix = NULL;
    *P = 0;
    const size_t D = (size_t)sd_llama_get_hparams(m)->n_embd;
    int32_t *ids = NULL;
    size_t n = 0;
    sd_status s = sd_tokenizer_encode(sd_llama_get_tokenizer(m), prompt, strlen(prompt), 1, &ids, &n, err);
    if (s) return s;
    float *x = malloc((S + n) * D * sizeof *x); /* [S + n, D] */
    if (!x) {
        free(ids);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    if (S) memcpy(x, speech, S * D * sizeof *x);
    s = sd_llama_embed(m, ids, n, x + S * D, err);
    free(ids);
    if (s) {
        free(x);
        return s;
    }
    *prefix = x;
    *P = S + n;
    return SD_OK;
}

/* lp[V] = log_softmax(z) in float32 (the sum accumulated in double). */
static void log_softmax(const float *z, float *lp, size_t V) {
    float mx = -INFINITY;
    for (size_t i = 0; i < V; i++)
        if (z[i] > mx) mx = z[i];
    double sum = 0;
    for (size_t i = 0; i < V; i++) sum += exp((double)z[i] - mx);
    float lse = mx + (float)log(sum);
    for (size_t i = 0; i < V; i++) lp[i] = z[i] - lse;
}

typedef struct {
    double score; /* Python float in HF: sum_logprobs / len ** length_penalty */
    int32_t *tokens;
    size_t n_tokens;
    float *frames;
    size_t n_frames;
    int by_eos;
} hyp;

typedef struct {
    hyp *h; /* [B + 1] in insertion order */
    int n, cap;
    double worst;
} hyp_list;

/* HF BeamHypotheses.add: keep the B best; on overflow drop the lowest (earliest among equals).
 * Takes ownership of tokens/frames (freed when not kept). */
static void hyp_add(hyp_list *L, hyp x) {
    if (!(L->n < L->cap || x.score > L->worst)) {
        free(x.tokens);
        free(x.frames);
        return;
    }
    L->h[L->n++] = x;
    if (L->n > L->cap) {
        int lo = 0;
        for (int i = 1; i < L->n; i++)
            if (L->h[i].score < L->h[lo].score) lo = i;
        free(L->h[lo].tokens);
        free(L->h[lo].frames);
        memmove(L->h + lo, L->h + lo + 1, (size_t)(L->n - lo - 1) * sizeof *L->h);
        L->n--;
        L->worst = L->h[0].score;
        for (int i = 1; i < L->n; i++)
            if (L->h[i].score < L->worst) L->worst = L->h[i].score;
    } else if (x.score < L->worst) {
        L->worst = x.score;
    }
}

typedef struct {
    float score;
    size_t index; /* b * V + token */
} cand;

/* Keeps the k best (score desc, index asc) of a stream in top[k]; n counts entries. */
static void top_push(cand *top, int k, int *n, float score, size_t index) {
    if (*n == k && !(score > top[k - 1].score)) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && score > top[i - 1].score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = (cand){score, index};
}

/* Copies the frames of a slot's history (hist [n]: the slot holding each step, see
 * sd_llama_cache_history) from the frame pool [steps, B, D] into dst[n, D]. */
static void gather_frames(const float *pool, const int *hist, size_t B, size_t D, size_t n,
                          float *dst) {
    for (size_t j = 0; j < n; j++)
        memcpy(dst + j * D, pool + (j * B + (size_t)hist[j]) * D, D * sizeof(float));
}

/* Adds beam slot b as a hypothesis: its first n_tokens tokens and n_frames frames, with HF's
 * length-normalised score. */
static sd_status hyp_add_slot(hyp_list *L, double sum_logprob, double length_penalty, const int32_t *tok,
                              size_t n_tokens, const float *pool, const sd_llama_cache *c, size_t S,
                              size_t B, size_t D, size_t b, size_t n_frames, int by_eos, sd_error *err) {
    hyp h = {sum_logprob / pow((double)n_tokens, length_penalty),
             malloc((n_tokens ? n_tokens : 1) * sizeof(int32_t)), n_tokens,
             malloc((n_frames ? n_frames : 1) * D * sizeof(float)), n_frames, by_eos};
    if (!h.tokens || !h.frames) {
        free(h.tokens);
        free(h.frames);
        return sd_fail(err, SD_E_NOMEM, "generate: out of memory");
    }
    memcpy(h.tokens, tok + b * S, n_tokens * sizeof(int32_t));
    gather_frames(pool, sd_llama_cache_history(c, b), B, D, n_frames, h.frames);
    hyp_add(L, h);
    return SD_OK;
}

static sd_status greedy(const sd_llama *m, sd_llama_cache *c, const float *prefix, size_t P,
                        const sd_gen_params *gp, sd_gen_result *res, sd_error *err) {
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    const size_t V = (size_t)hp->n_vocab, D = (size_t)hp->n_embd, S = (size_t)gp->max_new_tokens;
    const int32_t eos = sd_tokenizer_eos(sd_llama_get_tokenizer(m));
    float *logits = malloc(V * sizeof *logits), *x = malloc(D * sizeof *x);
    res->tokens = malloc(S * sizeof *res->tokens);
    res->frames = malloc(S * D * sizeof *res->frames);
    sd_status s = SD_OK;
    if (!logits || !x || !res->tokens || !res->frames) {
        s = sd_fail(err, SD_E_NOMEM, "generate: out of memory");
        goto done;
    }
    for (size_t step = 0; step < S; step++) {
        if (step == 0) {
            sd_llama_out o = {logits, 0, NULL, NULL, NULL};
            s = sd_llama_prefill(m, c, prefix, P, &o, err);
        } else {
            sd_llama_out o = {logits, 0, res->frames + res->n_frames * D, NULL, NULL};
            s = sd_llama_embed(m, &res->tokens[res->n_tokens - 1], 1, x, err);
            if (!s) s = sd_llama_step(m, c, x, 1, &o, err);
            if (!s) res->n_frames++;
        }
        if (s) goto done;
        res->steps++;
        if ((int)step < gp->min_new_tokens) logits[eos] = -INFINITY;
        size_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        if ((int32_t)best == eos) {
            res->ended_by_eos = 1;
            break;
        }
        res->tokens[res->n_tokens++] = (int32_t)best;
    }
done:
    free(logits);
    free(x);
    return s;
}

sd_status sd_generate(const sd_llama *m, sd_llama_cache *c, const float *prefix, size_t P,
                      const sd_gen_params *gp, sd_gen_result *res, sd_error *err) {
    memset(res, 0, sizeof *res);
    if (gp->n_beams < 1 || gp->max_new_tokens < 1 || gp->min_new_tokens < 0 ||
        (gp->n_beams > 1 && gp->min_new_tokens < 1))
        return sd_fail(err, SD_E_ARG, "generate: bad parameters (beams %d, max_new_tokens %d, "
                       "min_new_tokens %d; beam search needs min_new_tokens >= 1)",
                       gp->n_beams, gp->max_new_tokens, gp->min_new_tokens);
    sd_llama_cache_reset(c);
    if (gp->n_beams == 1) {
        sd_status s = greedy(m, c, prefix, P, gp, res, err);
        if (s) sd_gen_result_free(res);
        return s;
    }
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    const size_t V = (size_t)hp->n_vocab, D = (size_t)hp->n_embd, B = (size_t)gp->n_beams;
    const size_t S = (size_t)gp->max_new_tokens;
    const int32_t eos = sd_tokenizer_eos(sd_llama_get_tokenizer(m));
    const int K = 2 * gp->n_beams;
    float *logits = malloc(B * V * sizeof(float));   /* [B, V] */
    float *lp = malloc(V * sizeof(float));           /* [V] */
    float *hsum = malloc(B * D * sizeof(float));     /* [B, D] */
    float *x = malloc(B * D * sizeof(float));        /* [B, D] */
    float *pool = malloc(S * B * D * sizeof(float)); /* [S, B, D] frames by step and slot, as the
                                                         cache's keys: sd_llama_cache_history */
    float *slot0 = malloc(S * D * sizeof(float));    /* [S, D] */
    int32_t *tok = calloc(B * S, sizeof(int32_t)), *tok2 = calloc(B * S, sizeof(int32_t));
    float *score = malloc(B * sizeof(float)), *score2 = malloc(B * sizeof(float));
    int *parent = malloc(B * sizeof(int));
    cand *top = malloc((size_t)K * sizeof *top);
    hyp_list hl = {calloc(B + 1, sizeof(hyp)), 0, gp->n_beams, 1e9};
    size_t n_slot0 = 0, cur_len = 0, step = 0;
    int done = 0;
    sd_status s = SD_OK;
    if (!logits || !lp || !hsum || !x || !pool || !slot0 || !tok || !tok2 ||
        !score || !score2 || !parent || !top || !hl.h) {
        s = sd_fail(err, SD_E_NOMEM, "generate: out of memory");
        goto done;
    }
    for (size_t b = 0; b < B; b++) score[b] = b ? -1e9f : 0.0f;
    for (step = 0; step < S; step++) {
        if (step == 0) {
            sd_llama_out o = {logits, 0, NULL, NULL, NULL};
            s = sd_llama_prefill(m, c, prefix, P, &o, err);
            for (size_t b = 1; !s && b < B; b++) memcpy(logits + b * V, logits, V * sizeof(float));
        } else {
            for (size_t b = 0; !s && b < B; b++)
                s = sd_llama_embed(m, &tok[b * S + cur_len - 1], 1, x + b * D, err);
            sd_llama_out o = {logits, 0, hsum, NULL, NULL};
            if (!s) s = sd_llama_step(m, c, x, B, &o, err);
            if (!s) {
                /* frames of this step: pool[step-1][b], where the step put slot b's keys */
                memcpy(pool + (step - 1) * B * D, hsum, B * D * sizeof(float));
                memcpy(slot0 + n_slot0++ * D, hsum, D * sizeof(float));
            }
        }
        if (s) goto done;
        /* candidates: log_softmax + running score; the top 2B over B x V */
        int nt = 0;
        for (size_t b = 0; b < B; b++) {
            log_softmax(logits + b * V, lp, V);
            if ((int)cur_len < gp->min_new_tokens) lp[eos] = -INFINITY;
            for (size_t v = 0; v < V; v++) top_push(top, K, &nt, lp[v] + score[b], b * V + v);
        }
        const size_t n_hist = step; /* frames in each slot's history after this step's pass */
        int filled = 0;
        for (int rank = 0; rank < nt && filled < gp->n_beams; rank++) {
            size_t b = top[rank].index / V;
            int32_t t = (int32_t)(top[rank].index % V);
            if (t == eos) {
                if (rank >= gp->n_beams) continue;
                s = hyp_add_slot(&hl, top[rank].score, gp->length_penalty, tok, cur_len, pool, c, S, B, D, b,
                                 n_hist, 1, err);
                if (s) goto done;
            } else {
                score2[filled] = top[rank].score;
                parent[filled] = (int)b;
                memcpy(tok2 + (size_t)filled * S, tok + b * S, cur_len * sizeof(int32_t));
                tok2[(size_t)filled * S + cur_len] = t;
                filled++;
            }
        }
        if (hl.n >= gp->n_beams && !done)
            done = hl.worst >= top[0].score / pow((double)cur_len, gp->length_penalty);
        memcpy(score, score2, B * sizeof(float));
        memcpy(tok, tok2, B * S * sizeof(int32_t));
        sd_llama_cache_reorder(c, parent, B);
        cur_len++;
        if (done || cur_len >= S) break;
    }
    res->steps = step + 1;
    if (!done) {
        size_t n_hist = cur_len - 1;
        for (size_t b = 0; b < B; b++) {
            s = hyp_add_slot(&hl, score[b], gp->length_penalty, tok, cur_len, pool, c, S, B, D, b, n_hist, 0, err);
            if (s) goto done;
        }
    }
    /* best: highest score, the latest added among equals (HF sorts ascending and pops the last) */
    int best = 0;
    for (int i = 1; i < hl.n; i++)
        if (hl.h[i].score >= hl.h[best].score) best = i;
    hyp *bh = &hl.h[best];
    res->tokens = bh->tokens;
    res->n_tokens = bh->n_tokens;
    res->ended_by_eos = bh->by_eos;
    bh->tokens = NULL;
    if (gp->features == SD_FEATURES_BEST_BEAM) {
        res->frames = bh->frames;
        res->n_frames = bh->n_frames;
        bh->frames = NULL;
    } else {
        res->frames = slot0;
        res->n_frames = n_slot0;
        slot0 = NULL;
    }
done:
    for (int i = 0; hl.h && i < hl.n; i++) {
        free(hl.h[i].tokens);
        free(hl.h[i].frames);
    }
    free(hl.h);
    free(logits), free(lp), free(hsum), free(x), free(pool), free(slot0);
    free(tok), free(tok2), free(score), free(score2), free(parent), free(top);
    if (s) sd_gen_result_free(res);
    return s;
}
