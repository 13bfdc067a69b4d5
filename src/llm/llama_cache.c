/* LLaMA KV cache: the shared prefix, the per-step beam slots and their histories, and the scratch
 * of the forward pass, all allocated once when the cache is created. See llama.h for the layout. */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/alloc.h"
#include "llm/llama_internal.h"

sd_llama_cache_params sd_llama_cache_default_params(void) {
    sd_llama_cache_params p = {0, 0, 1, 0, SD_LLM_ARITH_LLAMACPP, 0};
    return p;
}

static void *alloc_elems(size_t a, size_t b, size_t es, int *ok);
static void *alloc_floats(size_t a, size_t b, int *ok) { return alloc_elems(a, b, sizeof(float), ok); }

static int scratch_alloc(sd_llama_scratch *s, const sd_llama *m, size_t R, size_t T, size_t n_beams,
                         sd_llm_arith arith) {
    const size_t D = (size_t)m->hp.n_embd, F = (size_t)m->hp.n_ff, d = (size_t)m->hp.head_dim;
    const size_t KV = (size_t)m->hp.n_head_kv * d, G = (size_t)(m->hp.n_head / m->hp.n_head_kv);
    int ok = 1;
    s->R = R;
    s->T = T;
    s->QB = (n_beams > SD_LLAMA_ATT_ROWS ? n_beams : SD_LLAMA_ATT_ROWS) * G;
#ifdef _OPENMP
    s->n_threads = omp_get_max_threads();
#else
    s->n_threads = 1;
#endif
    s->x = alloc_floats(R, D, &ok);
    s->xn = alloc_floats(R, D, &ok);
    s->q = alloc_floats(R, D, &ok);
    s->att = alloc_floats(R, D, &ok);
    s->k = alloc_floats(R, KV, &ok);
    s->v = alloc_floats(R, KV, &ok);
    s->g = alloc_floats(R, F, &ok);
    s->u = alloc_floats(R, F, &ok);
    s->scores = alloc_floats((size_t)s->n_threads * s->QB, T, &ok);
    s->qbuf = alloc_floats((size_t)s->n_threads * s->QB, d, &ok);
    s->obuf = alloc_floats((size_t)s->n_threads * s->QB, d, &ok);
    s->seg = alloc_elems(R, 1, sizeof(size_t), &ok);
    return ok && sd_llm_work_init(&s->work, R, D > F ? D : F, arith) == 0;
}

static void scratch_free(sd_llama_scratch *s) {
    float *all[] = {s->x, s->xn, s->q, s->att, s->k, s->v, s->g, s->u, s->scores, s->qbuf, s->obuf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sd_free(all[i]);
    sd_free(s->seg);
    sd_llm_work_free(&s->work);
}

/* n elements of es bytes, or NULL (and *ok cleared). */
static void *alloc_elems(size_t a, size_t b, size_t es, int *ok) {
    size_t n;
    if (!sd_mul_size(a, b, &n) || !sd_mul_size(n, es, &n)) {
        *ok = 0;
        return NULL;
    }
    void *p = sd_alloc(n ? n : es);
    if (!p) *ok = 0;
    return p;
}

sd_status sd_llama_cache_create(const sd_llama *m, const sd_llama_cache_params *p,
                                sd_llama_cache **out, sd_error *err) {
    *out = NULL;
    const size_t max_prefix = p->max_prefix, max_steps = p->max_steps, n_beams = p->n_beams;
    if (n_beams == 0 || max_prefix == 0)
        return sd_fail(err, SD_E_ARG, "cache: need at least one beam and one prefix position");
    if (max_prefix + max_steps > (size_t)m->hp.n_ctx)
        return sd_fail(err, SD_E_ARG, "cache: %zu prefix positions + %zu steps exceed the model's "
                       "context length %d", max_prefix, max_steps, m->hp.n_ctx);
    size_t R = p->max_rows ? p->max_rows : (max_prefix < 512 ? max_prefix : 512);
    if (R < n_beams) R = n_beams;
    sd_llama_cache *c = calloc(1, sizeof *c);
    if (!c) return sd_fail(err, SD_E_NOMEM, "out of memory");
    c->L = (size_t)m->hp.n_layer;
    c->KV = (size_t)m->hp.n_head_kv * (size_t)m->hp.head_dim;
    c->max_prefix = max_prefix;
    c->max_steps = max_steps;
    c->n_beams = n_beams;
    c->arith = p->arith;
    c->kv_f16 = p->kv_f16 != 0;
    c->es = c->kv_f16 ? 2 : 4;
    const size_t S = max_steps ? max_steps : 1;
    int ok = 1;
    c->k_pre = alloc_elems(c->L * c->KV, max_prefix, c->es, &ok);
    c->v_pre = alloc_elems(c->L * c->KV, max_prefix, c->es, &ok);
    c->k_gen = alloc_elems(c->L * c->KV * S, n_beams, c->es, &ok);
    c->v_gen = alloc_elems(c->L * c->KV * S, n_beams, c->es, &ok);
    c->anc = sd_alloc(n_beams * S * sizeof(int));
    c->anc_tmp = sd_alloc(n_beams * S * sizeof(int));
    ok = ok && c->anc && c->anc_tmp && scratch_alloc(&c->s, m, R, max_prefix + max_steps, n_beams, p->arith);
    if (!ok) {
        sd_llama_cache_free(c);
        return sd_fail(err, SD_E_NOMEM, "cache: out of memory for %zu + %zu positions x %zu beams",
                       max_prefix, max_steps, n_beams);
    }
    *out = c;
    return SD_OK;
}

void sd_llama_cache_free(sd_llama_cache *c) {
    if (!c) return;
    sd_free(c->k_pre);
    sd_free(c->v_pre);
    sd_free(c->k_gen);
    sd_free(c->v_gen);
    sd_free(c->anc);
    sd_free(c->anc_tmp);
    scratch_free(&c->s);
    free(c);
}

void sd_llama_cache_reset(sd_llama_cache *c) {
    c->n_prefix = c->n_steps = 0;
    c->batched = 0;
}
size_t sd_llama_cache_prefix_len(const sd_llama_cache *c) { return c->n_prefix; }
size_t sd_llama_cache_steps(const sd_llama_cache *c) { return c->n_steps; }

void sd_llama_cache_reorder(sd_llama_cache *c, const int *parent, size_t n) {
    size_t S = c->max_steps;
    if (n > c->n_beams) n = c->n_beams;
    for (size_t b = 0; b < n; b++)
        memcpy(c->anc_tmp + b * S, c->anc + (size_t)parent[b] * S, c->n_steps * sizeof(int));
    memcpy(c->anc, c->anc_tmp, n * S * sizeof(int));
}

const int *sd_llama_cache_history(const sd_llama_cache *c, size_t b) {
    return c->anc + b * c->max_steps;
}
