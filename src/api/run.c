/* Public API: running utterances that passed the entry points' checks, on the threads the call
 * was given.
 *
 * Utterances are cut into groups: one utterance alone borrows the caller's arrays as they are; a
 * group of several is copied into zero-padded buffers [B, T_m, D_m] with per-utterance frame
 * counts, which the masked network ignores beyond each utterance's length (so a group gives each
 * utterance's single result to float rounding). Models without masking never see padding: their
 * groups hold one utterance. The groups depend only on the inputs, never on the thread count.
 *
 * Threads come from the context's pool (core/pool.h: workers that sleep between jobs, never
 * spin). With at least as many groups as threads, whole groups run at once, one per thread, each
 * with its own scratch; otherwise the groups run one after another and the pool serves inside the
 * forward (the three modality branches at once, large products split). A group too small to gain
 * from a second thread runs on the caller's thread alone. Every way gives the same bits.
 *
 * Legend: B utterances in a group, T_m the longest frame count of slot m (audio, text, video) in
 * the group, D_m the slot's feature dim, C = H/2 the embedding size, G groups. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/array.h"
#include "core/pool.h"

/* A group holds at most this many utterances and (unless one utterance alone exceeds it) this
 * many padded floats over the three slots, which bounds the scratch memory of a batch call. */
#define GROUP_MAX_UTTS 32
#define GROUP_MAX_FLOATS ((size_t)16 << 20)

/* Multiply-adds of a group's frame projections (B sum_m T_m D_m H) below which its forward stays
 * on one thread. Spreading costs two wake-ups of a sleeping worker per forward (tens of
 * microseconds each, with a cache-cold start) and saves at most the shorter branches' time; at
 * 4 M multiply-adds the projections alone take ~0.15 ms on one core, the branches about three
 * times that, so below it the saving is of the order of the cost. An estimate: bench_api --sweep
 * measures the crossover on a quiet machine (on this project's shared 2-core machines, at load
 * 12-20, its figures were noise). A variable so that the sweep can move it. */
double sd_api_group_par_min_work = (double)(4 << 20);

const sdumc_features *sd_api_slot(const sdumc_utterance *u, int m) {
    return m == SD_MOD_AUDIO ? &u->audio : m == SD_MOD_TEXT ? &u->text : &u->video;
}

sd_status sd_api_scratch_init(sd_api_scratch *s, sd_error *e) {
    memset(s, 0, sizeof *s);
    s->flow = sd_flow_new();
    return s->flow ? SD_OK : sd_fail(e, SD_E_NOMEM, "out of memory for a context");
}

void sd_api_scratch_release(sd_api_scratch *s) {
    sd_flow_free(s->flow);
    for (int m = 0; m < 3; m++) {
        free(s->pad[m]);
        free(s->len[m]);
    }
    memset(s, 0, sizeof *s);
}

/* Runs utterances [first, first + B) as one forward with scratch s; results into scores / emb
 * (row stride C). */
static sd_status run_group(const sd_model *m, sd_api_scratch *s, const sdumc_utterance *u, size_t first, int B,
                           int missing, float *scores, float *emb, sd_error *e) {
    sd_flow_input in;
    memset(&in, 0, sizeof in);
    in.B = B;
    /* The scratch is sized exactly to the largest group seen (no doubling), so that the group
     * bounds above bound its memory. */
    if ((size_t)B > s->len_cap) {
        for (int k = 0; k < 3; k++) {
            int *l = sd_array_resize(s->len[k], (size_t)B, sizeof *l);
            if (!l) return sd_fail(e, SD_E_NOMEM, "out of memory");
            s->len[k] = l;
        }
        s->len_cap = (size_t)B;
    }
    for (int k = 0; k < 3; k++) {
        const size_t D = (size_t)m->cfg.dim[k];
        int T = 0;
        for (int b = 0; b < B; b++) {
            s->len[k][b] = (int)sd_api_slot(&u[first + (size_t)b], k)->frames;
            if (s->len[k][b] > T) T = s->len[k][b];
        }
        in.T[k] = T;
        in.len[k] = s->len[k];
        if (B == 1) { /* no padding: borrow the caller's array */
            in.x[k] = sd_api_slot(&u[first], k)->data;
            continue;
        }
        size_t n = (size_t)B * (size_t)T * D; /* [B, T, D] */
        if (n > s->pad_cap[k]) {
            float *p = sd_array_resize(s->pad[k], n, sizeof *p);
            if (!p) return sd_fail(e, SD_E_NOMEM, "out of memory for a padded batch of %zu floats", n);
            s->pad[k] = p;
            s->pad_cap[k] = n;
        }
        for (int b = 0; b < B; b++) {
            const sdumc_features *x = sd_api_slot(&u[first + (size_t)b], k);
            float *dst = s->pad[k] + (size_t)b * (size_t)T * D; /* [T, D] */
            size_t used = (size_t)x->frames * D;
            memcpy(dst, x->data, sizeof(float) * used);
            memset(dst + used, 0, sizeof(float) * ((size_t)T * D - used));
        }
        in.x[k] = s->pad[k];
    }
    sd_status st = sd_flow_forward(s->flow, m, &in, missing, 0, NULL, e);
    if (st) return st;
    const size_t C = (size_t)s->flow->C;
    /* Finite inputs can still overflow float32 inside the network: never a NaN with SDUMC_OK. */
    for (size_t i = 0; i < (size_t)B * (emb ? C + 1 : 1); i++) {
        float v = i < (size_t)B ? s->flow->pred[i] : s->flow->z[i - (size_t)B];
        if (!isfinite(v))
            return sd_fail(e, SD_E_NUMERIC, "utterance %zu: the output is not finite (an overflow inside the "
                           "network: the features are too large for this model)",
                           first + (i < (size_t)B ? i : (i - (size_t)B) / C));
    }
    for (int b = 0; b < B; b++) {
        if (scores) scores[first + (size_t)b] = s->flow->pred[b];
        if (emb) memcpy(emb + (first + (size_t)b) * C, s->flow->z + (size_t)b * C, sizeof(float) * C);
    }
    return SD_OK;
}

/* Cuts [0, n) into groups: group g is [first[g], first[g + 1]). Returns G. Each group grows while
 * its padded size stays within budget (T: the group's longest frame counts; t: the same with the
 * next utterance added). */
static size_t make_groups(const sd_model *m, const sdumc_utterance *u, size_t n, size_t *first) {
    const size_t group_max = m->cfg.mask ? GROUP_MAX_UTTS : 1;
    size_t G = 0, at = 0;
    while (at < n) {
        first[G++] = at;
        size_t B = 1;
        int64_t T[3];
        for (int k = 0; k < 3; k++) T[k] = sd_api_slot(&u[at], k)->frames;
        while (B < group_max && at + B < n) {
            const sdumc_utterance *next = &u[at + B];
            int64_t t[3];
            size_t padded = 0;
            for (int k = 0; k < 3; k++) {
                t[k] = sd_api_slot(next, k)->frames > T[k] ? sd_api_slot(next, k)->frames : T[k];
                padded += (B + 1) * (size_t)t[k] * (size_t)m->cfg.dim[k];
            }
            if (padded > GROUP_MAX_FLOATS) break;
            memcpy(T, t, sizeof T);
            B++;
        }
        at += B;
    }
    first[G] = n;
    return G;
}

/* Multiply-adds of the frame projections of group [a, b): B sum_m T_m D_m H. */
static double group_work(const sd_model *m, const sdumc_utterance *u, size_t a, size_t b) {
    double work = 0.0;
    for (int k = 0; k < 3; k++) {
        int64_t T = 0;
        for (size_t i = a; i < b; i++)
            if (sd_api_slot(&u[i], k)->frames > T) T = sd_api_slot(&u[i], k)->frames;
        work += (double)(b - a) * (double)T * (double)m->cfg.dim[k] * (double)m->cfg.hidden;
    }
    return work;
}

/* The context's pool with `threads` threads and as much scratch. */
static sd_status ensure_threads(sdumc_context *ctx, int threads, sd_error *e) {
    if (ctx->scratch_n < threads) {
        sd_api_scratch *s = sd_array_resize(ctx->scratch, (size_t)threads, sizeof *s);
        if (!s) return sd_fail(e, SD_E_NOMEM, "out of memory for the scratch of %d threads", threads);
        ctx->scratch = s;
        for (; ctx->scratch_n < threads; ctx->scratch_n++) {
            sd_status st = sd_api_scratch_init(&s[ctx->scratch_n], e);
            if (st) return st;
        }
    }
    if (ctx->pool && sd_pool_threads(ctx->pool) != threads) {
        sd_pool_free(ctx->pool);
        ctx->pool = NULL;
    }
    return ctx->pool ? SD_OK : sd_pool_new(threads, &ctx->pool, e);
}

typedef struct {
    const sd_model *m;
    sdumc_context *ctx;
    const sdumc_utterance *u;
    const size_t *first;
    int missing;
    float *scores, *emb;
    sd_status *status; /* [threads]: the first failure of each thread */
    sd_error *err;     /* [threads] */
} group_job;

static void group_task(void *arg, int g, int worker) {
    group_job *j = arg;
    if (j->status[worker]) return;
    j->status[worker] = run_group(j->m, &j->ctx->scratch[worker], j->u, j->first[g],
                                  (int)(j->first[g + 1] - j->first[g]), j->missing, j->scores, j->emb,
                                  &j->err[worker]);
}

/* Whole groups at once, one per thread. */
static sd_status run_groups_parallel(group_job *j, size_t G, int threads, sd_error *e) {
    j->status = calloc((size_t)threads, sizeof *j->status);
    j->err = malloc(sizeof *j->err * (size_t)threads);
    sd_status st = j->status && j->err ? SD_OK : sd_fail(e, SD_E_NOMEM, "out of memory");
    if (!st) sd_pool_run(j->ctx->pool, (int)G, group_task, j);
    for (int w = 0; !st && w < threads; w++)
        if (j->status[w]) {
            st = j->status[w];
            *e = j->err[w];
        }
    free(j->status);
    free(j->err);
    return st;
}

sd_status sd_api_run(const sd_model *m, sdumc_context *ctx, int threads, const sdumc_utterance *u, size_t n,
                     int missing, float *scores, float *emb, sd_error *e) {
    size_t one[2] = {0, 1}, *first = one, G = 1;
    if (n > 1) {
        first = malloc(sizeof *first * (n + 1));
        if (!first) return sd_fail(e, SD_E_NOMEM, "out of memory");
        G = make_groups(m, u, n, first);
    }
    sd_status st = SD_OK;
    if (threads >= 2 && G >= (size_t)threads && G <= (size_t)INT32_MAX) {
        st = ensure_threads(ctx, threads, e);
        group_job j = {m, ctx, u, first, missing, scores, emb, NULL, NULL};
        if (!st) st = run_groups_parallel(&j, G, threads, e);
    } else {
        for (size_t g = 0; !st && g < G; g++) {
            const int spread = threads >= 2 && group_work(m, u, first[g], first[g + 1]) >= sd_api_group_par_min_work;
            if (spread) st = ensure_threads(ctx, threads, e);
            if (st) break;
            const sd_pool_scope previous = sd_pool_enter(spread ? ctx->pool : NULL);
            st = run_group(m, &ctx->scratch[0], u, first[g], (int)(first[g + 1] - first[g]), missing, scores, emb, e);
            sd_pool_leave(previous);
        }
    }
    if (first != one) free(first);
    return st;
}
