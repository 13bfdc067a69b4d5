/* LLaMA decoder forward pass: a prefill (prompt rows) or one generation step (one row per beam),
 * on the scratch the cache holds; see llama.h for the formulas and the cache layout. */
#include <math.h>
#include <string.h>

#include "io/half.h"
#include "llm/llama_internal.h"

/* One pass: M rows. step = 0: prefix positions n_prefix..n_prefix+M-1; step = 1: beams at
 * position n_prefix + n_steps. Outputs go to row r0 + r of out (layers: [L, n_out, D]). */
typedef struct {
    size_t M;
    int step;
    const sd_llama_out *out;
    size_t r0, n_out;
} pass;

/* Position of row r of the pass (in a batch of sequences: within its sequence). */
static size_t row_pos(const sd_llama_cache *c, const pass *p, size_t r) {
    if (p->step) return c->n_prefix + c->n_steps;
    return c->n_prefix + r - (c->s.use_seg ? c->s.seg[r] : 0);
}

/* n values of src into the cache at dst (float32, or float16 in a float16 cache). */
static void put_kv(const sd_llama_cache *c, void *dst, const float *src, size_t n) {
    if (!c->kv_f16) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *h = dst;
    for (size_t i = 0; i < n; i++) h[i] = sd_f32_to_f16(src[i]);
}

/* RoPE on this pass's queries and keys, and its keys/values into the cache. */
static void store_kv(const sd_llama *m, sd_llama_cache *c, const pass *p, size_t l) {
    const sd_llama_hparams *hp = &m->hp;
    sd_llama_scratch *s = &c->s;
    const size_t D = (size_t)hp->n_embd, KV = c->KV;
    for (size_t r = 0; r < p->M; r++) {
        size_t pos = row_pos(c, p, r);
        sd_llm_rope(s->q + r * D, hp->n_head, hp->head_dim, pos, hp->rope_base, c->arith);
        sd_llm_rope(s->k + r * KV, hp->n_head_kv, hp->head_dim, pos, hp->rope_base, c->arith);
        size_t off = (p->step ? ((l * c->max_steps + c->n_steps) * c->n_beams + r) * KV
                              : (l * c->max_prefix + c->n_prefix + r) * KV) * c->es;
        put_kv(c, (char *)(p->step ? c->k_gen : c->k_pre) + off, s->k + r * KV, KV);
        put_kv(c, (char *)(p->step ? c->v_gen : c->v_pre) + off, s->v + r * KV, KV);
    }
}

/* x += Wo attention(rms(x)) for block l. */
static void attention_block(const sd_llama *m, sd_llama_cache *c, const pass *p, size_t l) {
    const sd_llama_layer *w = &m->layers[l];
    sd_llama_scratch *s = &c->s;
    const size_t D = (size_t)m->hp.n_embd, M = p->M;
    for (size_t r = 0; r < M; r++) sd_llm_rmsnorm(s->xn + r * D, s->x + r * D, w->attn_norm, D, m->hp.rms_eps, c->arith);
    sd_llm_prepare(&s->work, s->xn, M, D, w->q.type); /* one preparation for the three products */
    const sd_wmat *qkv[3] = {&w->q, &w->k, &w->v};
    float *const out_qkv[3] = {s->q, s->k, s->v};
    sd_llm_matmul_many(qkv, out_qkv, 3, &s->work);
    store_kv(m, c, p, l);
    sd_llama_attention(m, c, M, p->step, l);
    sd_llm_matmul(&w->o, s->att, M, s->xn, &s->work);
    for (size_t i = 0; i < M * D; i++) s->x[i] += s->xn[i];
}

/* x += Wd (silu(Wg f) * Wu f), f = rms(x), for block l. */
static void ffn_block(const sd_llama *m, sd_llama_cache *c, const pass *p, size_t l) {
    const sd_llama_layer *w = &m->layers[l];
    sd_llama_scratch *s = &c->s;
    const size_t D = (size_t)m->hp.n_embd, F = (size_t)m->hp.n_ff, M = p->M;
    for (size_t r = 0; r < M; r++) sd_llm_rmsnorm(s->xn + r * D, s->x + r * D, w->ffn_norm, D, m->hp.rms_eps, c->arith);
    sd_llm_prepare(&s->work, s->xn, M, D, w->gate.type);
    const sd_wmat *gu[2] = {&w->gate, &w->up};
    float *const out_gu[2] = {s->g, s->u};
    sd_llm_matmul_many(gu, out_gu, 2, &s->work);
    for (size_t r = 0; r < M; r++) sd_llm_silu_mul(s->g + r * F, s->u + r * F, F, c->arith);
    sd_llm_matmul(&w->down, s->g, M, s->xn, &s->work);
    for (size_t i = 0; i < M * D; i++) s->x[i] += s->xn[i];
}

/* dst[M, D] (rows r0.. of an output) += or = src. */
static void put_rows(float *dst, const float *src, size_t n, int add) {
    if (add)
        for (size_t i = 0; i < n; i++) dst[i] += src[i];
    else
        memcpy(dst, src, n * sizeof(float));
}

static void forward(const sd_llama *m, sd_llama_cache *c, const float *x_in, const pass *p) {
    const sd_llama_hparams *hp = &m->hp;
    sd_llama_scratch *s = &c->s;
    const size_t D = (size_t)hp->n_embd, M = p->M, L = (size_t)hp->n_layer;
    const sd_llama_out *out = p->out;
    float *hs = out && out->hidden_sum ? out->hidden_sum + p->r0 * D : NULL;
    memcpy(s->x, x_in, M * D * sizeof(float));
    if (hs) memset(hs, 0, M * D * sizeof(float));
    /* HF hidden_states entries: E_0 = input, E_i = output of block i-1 (i < L), E_L = final norm.
     * The sum takes E_{L-3}, E_{L-2}, E_{L-1} and E_L. */
    if (hs && L == 3) put_rows(hs, s->x, M * D, 1);
    for (size_t l = 0; l < L; l++) {
        attention_block(m, c, p, l);
        ffn_block(m, c, p, l);
        if (out && out->layers) memcpy(out->layers + (l * p->n_out + p->r0) * D, s->x, M * D * sizeof(float));
        if (hs && l + 4 >= L && l + 2 <= L) put_rows(hs, s->x, M * D, 1);
    }
    for (size_t r = 0; r < M; r++) sd_llm_rmsnorm(s->xn + r * D, s->x + r * D, m->output_norm, D, hp->rms_eps, c->arith);
    if (hs) put_rows(hs, s->xn, M * D, 1);
    if (out && out->normed) memcpy(out->normed + p->r0 * D, s->xn, M * D * sizeof(float));
}

/* The output head over the final-norm rows the pass left in xn. */
static void logits(const sd_llama *m, sd_llama_cache *c, const pass *p, int last_only) {
    const size_t D = (size_t)m->hp.n_embd, V = (size_t)m->hp.n_vocab;
    if (last_only) sd_llm_matmul(&m->output, c->s.xn + (p->M - 1) * D, 1, p->out->logits, &c->s.work);
    else sd_llm_matmul(&m->output, c->s.xn, p->M, p->out->logits + p->r0 * V, &c->s.work);
}

sd_status sd_llama_prefill(const sd_llama *m, sd_llama_cache *c, const float *x, size_t N,
                           sd_llama_out *out, sd_error *err) {
    if (N == 0) return sd_fail(err, SD_E_ARG, "llama: empty prefill");
    if (c->n_steps) return sd_fail(err, SD_E_ARG, "llama: prefill after generation steps");
    if (c->batched) return sd_fail(err, SD_E_ARG, "llama: prefill after a batch of sequences (reset first)");
    if (N > c->max_prefix - c->n_prefix)
        return sd_fail(err, SD_E_ARG, "llama: prefix of %zu + %zu positions exceeds the cache's %zu",
                       c->n_prefix, N, c->max_prefix);
    const size_t D = (size_t)m->hp.n_embd;
    for (size_t r0 = 0; r0 < N; r0 += c->s.R) {
        pass p = {N - r0 < c->s.R ? N - r0 : c->s.R, 0, out, r0, N};
        forward(m, c, x + r0 * D, &p);
        if (out && out->logits && (out->all_logits || r0 + p.M == N)) logits(m, c, &p, !out->all_logits);
        c->n_prefix += p.M;
    }
    return SD_OK;
}

sd_status sd_llama_prefill_batch(const sd_llama *m, sd_llama_cache *c, const float *x, const size_t *lens,
                                 size_t n_seq, sd_llama_out *out, sd_error *err) {
    size_t N = 0;
    for (size_t i = 0; i < n_seq; i++) {
        if (lens[i] == 0) return sd_fail(err, SD_E_ARG, "llama: sequence %zu of the batch is empty", i);
        N += lens[i];
    }
    if (c->n_prefix || c->n_steps) return sd_fail(err, SD_E_ARG, "llama: a batch needs an empty cache");
    if (n_seq == 1) return sd_llama_prefill(m, c, x, N, out, err);
    if (N > c->s.R || N > c->max_prefix)
        return sd_fail(err, SD_E_ARG, "llama: a batch of %zu positions exceeds the cache's %zu rows per pass",
                       N, c->s.R < c->max_prefix ? c->s.R : c->max_prefix);
    for (size_t i = 0, r = 0; i < n_seq; r += lens[i++])
        for (size_t j = 0; j < lens[i]; j++) c->s.seg[r + j] = r;
    c->s.use_seg = 1;
    pass p = {N, 0, out, 0, N};
    forward(m, c, x, &p);
    if (out && out->logits) logits(m, c, &p, !out->all_logits);
    c->s.use_seg = 0;
    c->n_prefix = N;
    c->batched = 1;
    return SD_OK;
}

sd_status sd_llama_step(const sd_llama *m, sd_llama_cache *c, const float *x, size_t B,
                        sd_llama_out *out, sd_error *err) {
    if (c->batched) return sd_fail(err, SD_E_ARG, "llama: step after a batch of sequences (reset first)");
    if (B == 0 || B > c->n_beams)
        return sd_fail(err, SD_E_ARG, "llama: step with %zu beams (cache holds %zu)", B, c->n_beams);
    if (c->n_prefix == 0) return sd_fail(err, SD_E_ARG, "llama: step before any prefill");
    if (c->n_steps >= c->max_steps)
        return sd_fail(err, SD_E_ARG, "llama: more than %zu steps", c->max_steps);
    for (size_t b = 0; b < c->n_beams; b++) c->anc[b * c->max_steps + c->n_steps] = (int)b;
    pass p = {B, 1, out, 0, B};
    forward(m, c, x, &p);
    if (out && out->logits) logits(m, c, &p, 0);
    c->n_steps++;
    return SD_OK;
}
