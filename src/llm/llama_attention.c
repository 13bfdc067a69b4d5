/* LLaMA attention over the KV cache: one job per (block of rows, KV head) runs every query of the
 * block's rows x the heads that share the KV head against each key once, so a key (and value) is
 * read once per job whatever the number of rows and beams: in a generation step all beams share
 * the prefix keys, which are the bulk of the cache. Legend as in llama.h; G = H / Hkv heads per
 * KV head. */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/omp.h"
#include "llm/kernels_impl.h"
#include "llm/llama_internal.h"

/* Key or value vector of kv head hk at layer l: prefix index j, or step s of slot. */
static const void *kv_pre(const sd_llama_cache *c, const void *base, size_t l, size_t j, int hk, int d) {
    return (const char *)base + ((l * c->max_prefix + j) * c->KV + (size_t)hk * (size_t)d) * c->es;
}
static const void *kv_gen(const sd_llama_cache *c, const void *base, size_t l, size_t s, size_t slot, int hk,
                          int d) {
    return (const char *)base + (((l * c->max_steps + s) * c->n_beams + slot) * c->KV + (size_t)hk * (size_t)d) * c->es;
}

typedef struct {
    int step;    /* the pass is a generation step (else a prefill) */
    int round16; /* llama.cpp arithmetic with a float16 cache: q and p rounded to float16 */
} att_pass;

/* Keys [lo, hi) that query row r of the pass sees (prefix indices; a step's rows also see their
 * own generated keys, n_steps + 1 of them after the prefix). */
static void key_range(const sd_llama_cache *c, const att_pass *a, size_t r, size_t *lo, size_t *hi) {
    *lo = !a->step && c->s.use_seg ? c->s.seg[r] : 0;
    *hi = a->step ? c->n_prefix : c->n_prefix + r + 1;
}

/* The rows r0 + [*first, *end) that see key j: ranges only move forward with the rows (rows are in
 * position order, a batch's sequences one after the other), so both ends only grow with j. */
static void rows_seeing(const sd_llama_cache *c, const att_pass *a, size_t r0, size_t nr, size_t j, size_t *first,
                        size_t *end) {
    size_t lo, hi;
    for (; *first < nr; ++*first) {
        key_range(c, a, r0 + *first, &lo, &hi);
        if (hi > j) break;
    }
    if (*end < *first) *end = *first;
    for (; *end < nr; ++*end) {
        key_range(c, a, r0 + *end, &lo, &hi);
        if (lo > j) break;
    }
}

/* Rows [r0, r1) of the pass against kv head hk of layer l, with thread tid's buffers. */
static void attend(const sd_llama *m, const sd_llama_cache *c, const att_pass *a, size_t l, int hk, size_t r0,
                   size_t r1, int tid) {
    const sd_llm_kernel_set *ks = sd_llm_kernels();
    const sd_llama_scratch *s = &c->s;
    const int d = m->hp.head_dim, G = m->hp.n_head / m->hp.n_head_kv, f16 = c->kv_f16;
    const size_t D = (size_t)m->hp.n_embd, T = s->T, nr = r1 - r0, nq = nr * (size_t)G;
    const float scale = 1.0f / sqrtf((float)d);
    float *qb = s->qbuf + (size_t)tid * s->QB * (size_t)d;   /* [nq, d]: row-major (row, head) */
    float *ob = s->obuf + (size_t)tid * s->QB * (size_t)d;   /* [nq, d] */
    float *sc = s->scores + (size_t)tid * s->QB * T;         /* [nq, T] */
    for (size_t r = 0; r < nr; r++) {
        const float *src = s->q + (r0 + r) * D + (size_t)hk * (size_t)G * (size_t)d;
        float *dst = qb + r * (size_t)G * (size_t)d;
        if (a->round16) ks->round16(src, dst, (size_t)G * (size_t)d);
        else memcpy(dst, src, (size_t)G * (size_t)d * sizeof *dst);
    }
    /* scores: prefix keys in order, each against the rows that see it (a contiguous range: rows are
     * in position order), then a step's own keys per beam */
    size_t lo0, hi0, lo1, hi1; /* keys of the block's first and last rows: the walk covers [lo0, hi1) */
    key_range(c, a, r0, &lo0, &hi0);
    key_range(c, a, r1 - 1, &lo1, &hi1);
    size_t first = 0, end = 0; /* the rows (relative) that see key j */
    for (size_t j = lo0; j < hi1; j++) {
        rows_seeing(c, a, r0, nr, j, &first, &end);
        const void *k = kv_pre(c, c->k_pre, l, j, hk, d);
        ks->dot_rows(qb + first * (size_t)G * (size_t)d, (size_t)d, (end - first) * (size_t)G, k, d, f16,
                     sc + first * (size_t)G * T + j, T);
    }
    const size_t n_own = a->step ? c->n_steps + 1 : 0;
    for (size_t r = 0; r < nr && a->step; r++)
        for (size_t st = 0; st < n_own; st++) {
            const size_t slot = (size_t)c->anc[(r0 + r) * c->max_steps + st];
            ks->dot_rows(qb + r * (size_t)G * (size_t)d, (size_t)d, (size_t)G, kv_gen(c, c->k_gen, l, st, slot, hk, d),
                         d, f16, sc + r * (size_t)G * T + c->n_prefix + st, T);
        }
    for (size_t i = 0; i < nq; i++) {
        size_t lo, hi;
        key_range(c, a, r0 + i / (size_t)G, &lo, &hi);
        sd_llm_softmax(sc + i * T + lo, hi + n_own - lo, scale, a->round16, c->arith);
    }
    /* outputs: the same walk over the values */
    memset(ob, 0, nq * (size_t)d * sizeof(float));
    first = end = 0;
    for (size_t j = lo0; j < hi1; j++) {
        rows_seeing(c, a, r0, nr, j, &first, &end);
        const void *v = kv_pre(c, c->v_pre, l, j, hk, d);
        ks->axpy_rows(ob + first * (size_t)G * (size_t)d, (size_t)d, (end - first) * (size_t)G,
                      sc + first * (size_t)G * T + j, T, v, d, f16);
    }
    for (size_t r = 0; r < nr && a->step; r++)
        for (size_t st = 0; st < n_own; st++) {
            const size_t slot = (size_t)c->anc[(r0 + r) * c->max_steps + st];
            ks->axpy_rows(ob + r * (size_t)G * (size_t)d, (size_t)d, (size_t)G, sc + r * (size_t)G * T + c->n_prefix + st,
                          T, kv_gen(c, c->v_gen, l, st, slot, hk, d), d, f16);
        }
    for (size_t r = 0; r < nr; r++)
        memcpy(s->att + (r0 + r) * D + (size_t)hk * (size_t)G * (size_t)d, ob + r * (size_t)G * (size_t)d,
               (size_t)G * (size_t)d * sizeof(float));
}

void sd_llama_attention(const sd_llama *m, sd_llama_cache *c, size_t M, int step, size_t l) {
    att_pass a = {step, c->kv_f16 && c->arith == SD_LLM_ARITH_LLAMACPP};
    const int Hkv = m->hp.n_head_kv;
    const size_t rows = step ? M : SD_LLAMA_ATT_ROWS, n_blocks = (M + rows - 1) / rows;
    const int64_t jobs = (int64_t)n_blocks * Hkv;
SD_OMP(omp parallel for schedule(dynamic, 1) num_threads(c->s.n_threads))
    for (int64_t job = 0; job < jobs; job++) {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        const size_t blk = (size_t)job / (size_t)Hkv, r0 = blk * rows, r1 = r0 + rows < M ? r0 + rows : M;
        attend(m, c, &a, l, (int)(job % Hkv), r0, r1, tid);
    }
}
