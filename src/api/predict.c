/* Public API: scores and embeddings of one utterance or a batch, in evaluation mode.
 *
 * Every call checks all of its inputs before computing anything, then runs the flow on groups of
 * utterances: one utterance alone borrows the caller's arrays as they are; a group of several is
 * copied into zero-padded buffers [B, T_m, D_m] with per-utterance frame counts, which the masked
 * network ignores beyond each utterance's length (so a group gives each utterance's single result
 * to float rounding). Models without masking never see padding: their groups hold one utterance.
 *
 * Legend: B utterances in a group, T_m the longest frame count of slot m (audio, text, video) in
 * the group, D_m the slot's feature dim, C = H/2 the embedding size. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/alloc.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* A group holds at most this many utterances and (unless one utterance alone exceeds it) this
 * many padded floats over the three slots, which bounds the scratch memory of a batch call. */
#define GROUP_MAX_UTTS 32
#define GROUP_MAX_FLOATS ((size_t)16 << 20)

static const sdumc_features *slot_of(const sdumc_utterance *u, int m) {
    return m == SD_AUDIO ? &u->audio : m == SD_TEXT ? &u->text : &u->video;
}

static const char *slot_name(int m, int missing) {
    return m == SD_AUDIO ? "audio" : m == SD_VIDEO ? "video" : missing ? "simulated text" : "text";
}

static sd_status check_utterance(const sd_model *m, const sdumc_utterance *u, int missing, const char *fn,
                                 const char *where, sd_error *e) {
    if (!u) return sd_fail(e, SD_E_ARG, "%s: %sthe utterance is NULL", fn, where);
    for (int k = 0; k < 3; k++) {
        const sdumc_features *x = slot_of(u, k);
        const char *name = slot_name(k, missing);
        if (!x->data) return sd_fail(e, SD_E_ARG, "%s: %s%s features: data is NULL", fn, where, name);
        if (x->frames < 1)
            return sd_fail(e, SD_E_ARG, "%s: %s%s features have %lld frames (at least 1 is needed)", fn, where,
                           name, (long long)x->frames);
        if (x->frames > INT_MAX)
            return sd_fail(e, SD_E_ARG, "%s: %s%s features have %lld frames (at most %d)", fn, where, name,
                           (long long)x->frames, INT_MAX);
        if (x->dim != m->cfg.dim[k]) {
            if (k == SD_TEXT && missing)
                return sd_fail(e, SD_E_SHAPE,
                               "%s: %ssimulated text has dim %lld, but this model's text dim is %d: it cannot "
                               "run the text-missing flow on these features (simulate text of dim %d)",
                               fn, where, (long long)x->dim, m->cfg.dim[k], m->cfg.dim[k]);
            return sd_fail(e, SD_E_SHAPE, "%s: %s%s features have dim %lld, the model expects %d", fn, where,
                           name, (long long)x->dim, m->cfg.dim[k]);
        }
        /* frames <= INT_MAX and dim <= 2^24 (model files): the product fits in size_t. */
        const size_t n = (size_t)x->frames * (size_t)x->dim; /* [T, D] */
        for (size_t i = 0; i < n; i++)
            if (!isfinite(x->data[i]))
                return sd_fail(e, SD_E_NUMERIC, "%s: %s%s features: %s at frame %zu, column %zu", fn, where,
                               name, isnan(x->data[i]) ? "NaN" : "Inf", i / (size_t)x->dim,
                               i % (size_t)x->dim);
    }
    return SD_OK;
}

static sd_status grow_floats(float **p, size_t *cap, size_t need, sd_error *e) {
    if (need <= *cap) return SD_OK;
    size_t bytes;
    if (!sd_mul_size(need, sizeof(float), &bytes)) return sd_fail(e, SD_E_NOMEM, "padded batch too large");
    float *q = realloc(*p, bytes);
    if (!q) return sd_fail(e, SD_E_NOMEM, "out of memory for a padded batch of %zu floats", need);
    *p = q;
    *cap = need;
    return SD_OK;
}

/* Runs utterances [first, first + B) as one forward; results into scores / emb (row stride C). */
static sd_status run_group(const sd_model *m, sdumc_context *ctx, const sdumc_utterance *u, size_t first,
                           int B, int missing, float *scores, float *emb, sd_error *e) {
    sd_flow_input in;
    memset(&in, 0, sizeof in);
    in.B = B;
    if ((size_t)B > ctx->len_cap) {
        for (int k = 0; k < 3; k++) {
            int *l = realloc(ctx->len[k], sizeof(int) * (size_t)B);
            if (!l) return sd_fail(e, SD_E_NOMEM, "out of memory");
            ctx->len[k] = l;
        }
        ctx->len_cap = (size_t)B;
    }
    for (int k = 0; k < 3; k++) {
        const size_t D = (size_t)m->cfg.dim[k];
        int T = 0;
        for (int b = 0; b < B; b++) {
            ctx->len[k][b] = (int)slot_of(&u[first + (size_t)b], k)->frames;
            if (ctx->len[k][b] > T) T = ctx->len[k][b];
        }
        in.T[k] = T;
        in.len[k] = ctx->len[k];
        if (B == 1) { /* no padding: borrow the caller's array */
            in.x[k] = slot_of(&u[first], k)->data;
            continue;
        }
        size_t n = (size_t)B * (size_t)T * D; /* [B, T, D] */
        sd_status st = grow_floats(&ctx->pad[k], &ctx->pad_cap[k], n, e);
        if (st) return st;
        for (int b = 0; b < B; b++) {
            const sdumc_features *x = slot_of(&u[first + (size_t)b], k);
            float *dst = ctx->pad[k] + (size_t)b * (size_t)T * D; /* [T, D] */
            size_t used = (size_t)x->frames * D;
            memcpy(dst, x->data, sizeof(float) * used);
            memset(dst + used, 0, sizeof(float) * ((size_t)T * D - used));
        }
        in.x[k] = ctx->pad[k];
    }
    sd_status st = sd_flow_forward(ctx->flow, m, &in, missing, 0, NULL, e);
    if (st) return st;
    const size_t C = (size_t)ctx->flow->C;
    /* Finite inputs can still overflow float32 inside the network: never a NaN with SDUMC_OK. */
    for (size_t i = 0; i < (size_t)B * (emb ? C + 1 : 1); i++) {
        float v = i < (size_t)B ? ctx->flow->pred[i] : ctx->flow->z[i - (size_t)B];
        if (!isfinite(v))
            return sd_fail(e, SD_E_NUMERIC, "utterance %zu: the output is not finite (an overflow inside the "
                           "network: the features are too large for this model)",
                           first + (i < (size_t)B ? i : (i - (size_t)B) / C));
    }
    for (int b = 0; b < B; b++) {
        if (scores) scores[first + (size_t)b] = ctx->flow->pred[b];
        if (emb) memcpy(emb + (first + (size_t)b) * C, ctx->flow->z + (size_t)b * C, sizeof(float) * C);
    }
    return SD_OK;
}

/* The shared body of every predict call, after the argument checks of each entry point. */
static sd_status run_all(const sd_model *m, sdumc_context *ctx, const sdumc_utterance *u, size_t n,
                         int missing, float *scores, float *emb, sd_error *e) {
    const size_t group_max = m->cfg.mask ? GROUP_MAX_UTTS : 1;
    size_t first = 0;
    while (first < n) {
        /* Grow the group while the padded size stays within budget. T: the group's longest frame
         * counts; t: the same with the next utterance added. */
        size_t B = 1;
        int64_t T[3];
        for (int k = 0; k < 3; k++) T[k] = slot_of(&u[first], k)->frames;
        while (B < group_max && first + B < n) {
            const sdumc_utterance *next = &u[first + B];
            int64_t t[3];
            size_t padded = 0;
            for (int k = 0; k < 3; k++) {
                t[k] = slot_of(next, k)->frames > T[k] ? slot_of(next, k)->frames : T[k];
                padded += (B + 1) * (size_t)t[k] * (size_t)m->cfg.dim[k];
            }
            if (padded > GROUP_MAX_FLOATS) break;
            memcpy(T, t, sizeof T);
            B++;
        }
        sd_status st = run_group(m, ctx, u, first, (int)B, missing, scores, emb, e);
        if (st) return st;
        first += B;
    }
    return SD_OK;
}

/* Checks common to every entry point; *missing is the flow's text-missing switch. */
static sd_status check_call(const sdumc_model *model, sdumc_flow flow, const char *fn, int *missing,
                            sd_error *e) {
    if (!model || !model->m) return sd_fail(e, SD_E_ARG, "%s: model is NULL", fn);
    if ((int)flow < (int)SDUMC_FLOW_COMPLETE || (int)flow > (int)SDUMC_FLOW_TEXT_MISSING_MIA)
        return sd_fail(e, SD_E_ARG, "%s: unknown flow %d (SDUMC_FLOW_COMPLETE, SDUMC_FLOW_TEXT_MISSING or "
                                    "SDUMC_FLOW_TEXT_MISSING_MIA)", fn, (int)flow);
    if (flow == SDUMC_FLOW_TEXT_MISSING_MIA && !model->m->cfg.mia)
        return sd_fail(e, SD_E_UNSUPPORTED,
                       "%s: the text-missing flow with MIA was requested, but this model file has no Modality "
                       "Imagination Autoencoder (trained with --mia off or converted from the released code); "
                       "use SDUMC_FLOW_TEXT_MISSING for its text-missing flow without MIA", fn);
    *missing = flow != SDUMC_FLOW_COMPLETE;
    return SD_OK;
}

/* Ends an entry point: on failure names fn in the message (once) and fills the public record. */
static sdumc_status finish(sdumc_error *err, sd_error *e, sd_status st, const char *fn) {
    if (!st) {
        sd_api_ok(err);
        return SDUMC_OK;
    }
    if (!strstr(e->msg, fn)) sd_error_prefix(e, "%s", fn);
    return sd_api_error(err, e, st);
}

/* Runs with the caller's context or a temporary one, on the context's threads or the model's. */
static sd_status with_context(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *u, size_t n,
                              int missing, float *scores, float *emb, sd_error *e) {
    sdumc_context *own = NULL;
    if (!ctx) {
        sdumc_error pe;
        if (sdumc_context_new(&own, &pe)) return sd_fail(e, SD_E_NOMEM, "out of memory for a context");
        ctx = own;
    } else if (!ctx->flow) {
        return sd_fail(e, SD_E_ARG, "the context was not made by sdumc_context_new");
    }
    const int threads = ctx->n_threads > 0 ? ctx->n_threads : model->n_threads;
#ifdef _OPENMP
    /* The thread count is an ICV of the calling thread: set for this call, then given back. */
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    sd_status st = run_all(model->m, ctx, u, n, missing, scores, emb, e);
#ifdef _OPENMP
    omp_set_num_threads(caller_threads);
#endif
    sdumc_context_free(own);
    return st;
}

static sdumc_status predict_one(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *utt,
                                sdumc_flow flow, float *embedding, size_t embedding_len, float *score,
                                const char *fn, sdumc_error *err) {
    sd_error e;
    int missing = 0;
    sd_status st = check_call(model, flow, fn, &missing, &e);
    if (!st && !utt) st = sd_fail(&e, SD_E_ARG, "%s: utt is NULL", fn);
    if (!st && embedding && embedding_len < (size_t)(model->m->cfg.hidden / 2))
        st = sd_fail(&e, SD_E_ARG, "%s: the embedding buffer holds %zu floats, the model's embedding has %d", fn,
                     embedding_len, model->m->cfg.hidden / 2);
    if (!st) st = check_utterance(model->m, utt, missing, fn, "", &e);
    float s = 0.0f;
    if (!st) st = with_context(model, ctx, utt, 1, missing, &s, embedding, &e);
    if (!st && score) *score = s;
    return finish(err, &e, st, fn);
}

sdumc_status sdumc_predict(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *utt,
                           sdumc_flow flow, float *score, sdumc_error *err) {
    if (!score) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_predict: score is NULL");
    return predict_one(model, ctx, utt, flow, NULL, 0, score, "sdumc_predict", err);
}

sdumc_status sdumc_embed(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *utt,
                         sdumc_flow flow, float *embedding, size_t embedding_len, float *score,
                         sdumc_error *err) {
    if (!embedding) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_embed: embedding is NULL");
    return predict_one(model, ctx, utt, flow, embedding, embedding_len, score, "sdumc_embed", err);
}

sdumc_status sdumc_predict_batch(const sdumc_model *model, sdumc_context *ctx,
                                 const sdumc_utterance *utts, size_t n, sdumc_flow flow,
                                 float *scores, float *embeddings, sdumc_error *err) {
    static const char fn[] = "sdumc_predict_batch";
    sd_error e;
    int missing = 0;
    sd_status st = check_call(model, flow, fn, &missing, &e);
    if (!st && n > 0 && !utts) st = sd_fail(&e, SD_E_ARG, "%s: utts is NULL", fn);
    if (!st && n > 0 && !scores) st = sd_fail(&e, SD_E_ARG, "%s: scores is NULL", fn);
    if (!st && n > (size_t)INT_MAX) st = sd_fail(&e, SD_E_ARG, "%s: %zu utterances (at most %d)", fn, n, INT_MAX);
    for (size_t i = 0; !st && i < n; i++) {
        char where[48]; /* "utterance 3: " */
        snprintf(where, sizeof where, "utterance %zu: ", i);
        st = check_utterance(model->m, &utts[i], missing, fn, where, &e);
    }
    if (!st && n > 0) st = with_context(model, ctx, utts, n, missing, scores, embeddings, &e);
    return finish(err, &e, st, fn);
}
