/* Public API: scores and embeddings of one utterance or a batch, in evaluation mode: the entry
 * points, which check every input before anything is computed, and the threads of a call (the
 * running itself, in groups of utterances on the context's pool, is run.c's). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *slot_name(int m, int missing) {
    return m == SD_MOD_AUDIO ? "audio" : m == SD_MOD_VIDEO ? "video" : missing ? "simulated text" : "text";
}

static sd_status check_utterance(const sd_model *m, const sdumc_utterance *u, int missing, const char *fn,
                                 const char *where, sd_error *e) {
    if (!u) return sd_fail(e, SD_E_ARG, "%s: %sthe utterance is NULL", fn, where);
    for (int k = 0; k < 3; k++) {
        const sdumc_features *x = sd_api_slot(u, k);
        const char *name = slot_name(k, missing);
        if (!x->data) return sd_fail(e, SD_E_ARG, "%s: %s%s features: data is NULL", fn, where, name);
        if (x->frames < 1)
            return sd_fail(e, SD_E_ARG, "%s: %s%s features have %lld frames (at least 1 is needed)", fn, where,
                           name, (long long)x->frames);
        if (x->frames > INT_MAX)
            return sd_fail(e, SD_E_ARG, "%s: %s%s features have %lld frames (at most %d)", fn, where, name,
                           (long long)x->frames, INT_MAX);
        if (x->dim != m->cfg.dim[k]) {
            if (k == SD_MOD_TEXT && missing)
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

/* Runs with the caller's context or a temporary one, on the context's threads or the model's: the
 * library's own (the context's pool); OpenMP and OpenBLAS stay at one thread meanwhile. */
static sd_status with_context(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *u, size_t n,
                              int missing, float *scores, float *emb, sd_error *e) {
    sdumc_context *own = NULL;
    if (!ctx) {
        sdumc_error pe;
        if (sdumc_context_new(&own, &pe)) return sd_fail(e, SD_E_NOMEM, "out of memory for a context");
        ctx = own;
    } else if (!ctx->scratch) {
        return sd_fail(e, SD_E_ARG, "the context was not made by sdumc_context_new");
    }
    const int threads = ctx->n_threads > 0 ? ctx->n_threads : model->n_threads;
    sd_threads_blas_hold();
#ifdef _OPENMP
    /* The thread count is an ICV of the calling thread: 1 for this call, then given back. */
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    sd_status st = sd_api_run(model->m, ctx, threads, u, n, missing, scores, emb, e);
#ifdef _OPENMP
    omp_set_num_threads(caller_threads);
#endif
    sd_threads_blas_release();
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
