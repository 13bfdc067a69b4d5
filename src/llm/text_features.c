/* Real-text features from the LLM's hidden states: tokenising, packing utterances into forward
 * passes, writing the files; see text_features.h. Legend: D hidden, N positions of a pass. */
#include "llm/text_features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "io/npy.h"

struct sd_textfeat {
    const sd_llama *m;
    sd_textfeat_params p;
    sd_llama_cache *cache; /* room for max(batch_tokens, the longest utterance seen) positions */
    size_t cache_prefix;
    float *x, *hs;         /* [cap, D] the pass's embeddings and hidden-state sums */
    size_t cap;
};

sd_textfeat_params sd_textfeat_default_params(void) {
    sd_textfeat_params p = {SD_LLM_ARITH_LLAMACPP, 1, 512, 0};
    return p;
}

sd_status sd_textfeat_create(const sd_llama *m, const sd_textfeat_params *p, sd_textfeat **out, sd_error *err) {
    *out = NULL;
    if (p->batch_tokens == 0) return sd_fail(err, SD_E_ARG, "text features: batch_tokens must be at least 1");
    sd_textfeat *tf = calloc(1, sizeof *tf);
    if (!tf) return sd_fail(err, SD_E_NOMEM, "out of memory");
    tf->m = m;
    tf->p = *p;
    const size_t n_ctx = (size_t)sd_llama_get_hparams(m)->n_ctx;
    if (tf->p.batch_tokens > n_ctx) tf->p.batch_tokens = n_ctx;
    *out = tf;
    return SD_OK;
}

void sd_textfeat_free(sd_textfeat *tf) {
    if (!tf) return;
    sd_llama_cache_free(tf->cache);
    free(tf->x);
    free(tf->hs);
    free(tf);
}

sd_status sd_textfeat_tokenize(const sd_textfeat *tf, const char *text, int32_t **ids, size_t *n, sd_error *err) {
    *ids = NULL;
    *n = 0;
    if (!text[0]) return sd_fail(err, SD_E_ARG, "empty transcript (no tokens to take hidden states of)");
    sd_status s = sd_tokenizer_encode(sd_llama_get_tokenizer(tf->m), text, strlen(text), 1, ids, n, err);
    if (s) return s;
    const size_t n_ctx = (size_t)sd_llama_get_hparams(tf->m)->n_ctx;
    if (*n > n_ctx) {
        free(*ids);
        *ids = NULL;
        return sd_fail(err, SD_E_ARG, "transcript of %zu tokens (BOS included) is longer than the model's context "
                       "of %zu", *n, n_ctx);
    }
    return SD_OK;
}

/* Room for passes of N positions: the cache (positions, rows per pass) and the buffers. */
static sd_status fit(sd_textfeat *tf, size_t N, sd_error *err) {
    const size_t D = (size_t)sd_llama_get_hparams(tf->m)->n_embd;
    size_t want = N > tf->p.batch_tokens ? N : tf->p.batch_tokens;
    if (!tf->cache || want > tf->cache_prefix) {
        sd_llama_cache_free(tf->cache);
        tf->cache = NULL;
        sd_llama_cache_params cp = sd_llama_cache_default_params();
        cp.max_prefix = want;
        cp.max_rows = tf->p.batch_tokens;
        cp.arith = tf->p.arith;
        cp.kv_f16 = tf->p.kv_f16;
        sd_status s = sd_llama_cache_create(tf->m, &cp, &tf->cache, err);
        tf->cache_prefix = s ? 0 : want;
        if (s) return s;
    }
    if (want > tf->cap) { /* rows of D floats; sd_array_resize checks want * D * 4 for overflow */
        const size_t row = D * sizeof(float);
        float *x = sd_array_resize(tf->x, want, row), *hs = x ? sd_array_resize(tf->hs, want, row) : NULL;
        if (x) tf->x = x;
        if (hs) tf->hs = hs;
        if (!x || !hs) return sd_fail(err, SD_E_NOMEM, "text features: out of memory for %zu positions", want);
        tf->cap = want;
    }
    return SD_OK;
}

/* One pass over k sequences ids[i] (n[i] tokens each): the hidden-state sums land in tf->hs [N, D]. */
static sd_status run_pass(sd_textfeat *tf, int32_t *const *ids, const size_t *n, size_t k, sd_error *err) {
    const size_t D = (size_t)sd_llama_get_hparams(tf->m)->n_embd;
    size_t N = 0;
    for (size_t i = 0; i < k; i++) N += n[i];
    sd_status s = fit(tf, N, err);
    for (size_t i = 0, r = 0; !s && i < k; r += n[i++]) s = sd_llama_embed(tf->m, ids[i], n[i], tf->x + r * D, err);
    if (s) return s;
    sd_llama_cache_reset(tf->cache);
    sd_llama_out o = {NULL, 0, tf->hs, NULL, NULL};
    return sd_llama_prefill_batch(tf->m, tf->cache, tf->x, n, k, &o, err);
}

/* Tokenises every transcript of the job; the first problems (up to 5) make one message naming the
 * CSV file, lines and utterances. */
static sd_status tokenize_job(const sd_textfeat *tf, const sd_textfeat_job *job, int32_t **ids, size_t *len,
                              sd_error *err) {
    size_t bad = 0;
    char msg[SD_ERROR_MSG_MAX] = "";
    for (size_t i = 0; i < job->count; i++) {
        const size_t row = job->first + i;
        sd_error e1 = {0};
        sd_status s = sd_textfeat_tokenize(tf, job->t->text[row], &ids[i], &len[i], &e1);
        if (s == SD_E_NOMEM) return sd_fail(err, s, "%s", e1.msg);
        if (s && ++bad <= 5) {
            size_t used = strlen(msg);
            snprintf(msg + used, sizeof msg - used, "%s line %zu, '%.64s': %.160s", bad > 1 ? ";" : "", job->t->line[row],
                     job->t->name[row], e1.msg);
        }
    }
    if (bad)
        return sd_fail(err, SD_E_FORMAT, "%s: %zu transcript%s cannot be used (nothing was written):%s%s", job->csv_path,
                       bad, bad > 1 ? "s" : "", msg, bad > 5 ? "; ..." : "");
    return SD_OK;
}

/* Writes the utterances [i, i + k) of the job still to do from the pass just run (tf->hs) and
 * reports them. */
static void write_pass(sd_textfeat *tf, const sd_textfeat_job *job, size_t i, size_t k, const size_t *len,
                       const int *todo, double pass_s, double t0, sd_utt_counts *counts) {
    const size_t D = (size_t)sd_llama_get_hparams(tf->m)->n_embd;
    size_t N = 0;
    for (size_t j = 0; j < k; j++) N += len[i + j];
    for (size_t j = 0, r0 = 0; j < k; r0 += len[i + j++]) {
        if (!todo[i + j]) continue; /* already written, by an earlier run of the same pass */
        const size_t row = job->first + i + j, skip = tf->p.drop_bos ? 1 : 0, rows = len[i + j] - skip;
        const float *f = tf->hs + (r0 + skip) * D;
        sd_utt_report rep = {i + j, job->count, job->t->name[row], SD_UTT_WRITTEN, NULL, len[i + j], rows, 1,
                             sd_utt_count_out_of_f16(f, rows * D), pass_s * (double)len[i + j] / (double)N, 0};
        sd_error e1 = {0};
        char *path = sd_utt_path(job->out_dir, job->t->name[row], ".npy");
        sd_status s = path ? sd_npy_write(path, f, 2, (int64_t)rows, (int64_t)D, job->dtype, &e1)
                           : sd_fail(&e1, SD_E_NOMEM, "out of memory");
        free(path);
        if (s) {
            rep.outcome = SD_UTT_FAILED;
            rep.error = e1.msg;
            counts->failed++;
        } else {
            counts->written++;
        }
        rep.elapsed = sd_utt_now() - t0;
        if (job->progress) job->progress(job->user, &rep);
    }
}

/* The rows in the pass that starts at row i: the next rows while their positions fit in
 * batch_tokens (at least one). A complete run's passes, whatever is already written. */
static size_t pass_rows(const sd_textfeat *tf, const size_t *len, size_t i, size_t n) {
    size_t k = 1, used = len[i];
    while (i + k < n && used + len[i + k] <= tf->p.batch_tokens) used += len[i + k++];
    return k;
}

sd_status sd_textfeat_plan(const sd_textfeat *tf, const sd_textfeat_job *job, size_t *pass, int64_t *positions,
                           sd_error *err) {
    const size_t n = job->count;
    int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    size_t *len = calloc(n ? n : 1, sizeof *len);
    sd_status s = !ids || !len ? sd_fail(err, SD_E_NOMEM, "out of memory") : tokenize_job(tf, job, ids, len, err);
    for (size_t i = 0, p = 0; !s && i < n; p++) {
        const size_t k = pass_rows(tf, len, i, n);
        for (size_t j = i; j < i + k; j++) {
            pass[j] = p;
            positions[j] = (int64_t)len[j];
        }
        i += k;
    }
    for (size_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(len);
    return s;
}

sd_status sd_textfeat_run(sd_textfeat *tf, const sd_textfeat_job *job, sd_utt_counts *counts, sd_error *err) {
    memset(counts, 0, sizeof *counts);
    const size_t n = job->count;
    int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    size_t *len = calloc(n ? n : 1, sizeof *len);
    int *todo = calloc(n ? n : 1, sizeof *todo);
    sd_status s = !ids || !len || !todo ? sd_fail(err, SD_E_NOMEM, "out of memory") : tokenize_job(tf, job, ids, len, err);
    const double t0 = sd_utt_now();
    for (size_t i = 0; !s && i < n; i++) { /* what is already there is reported and kept */
        char *path = sd_utt_path(job->out_dir, job->t->name[job->first + i], ".npy");
        if (!path) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
            break;
        }
        todo[i] = !sd_utt_file_exists(path);
        free(path);
        if (!todo[i]) {
            counts->skipped++;
            sd_utt_report rep = {i, n, job->t->name[job->first + i], SD_UTT_SKIPPED, NULL, len[i], 0, 0, 0, 0,
                                 sd_utt_now() - t0};
            if (job->progress) job->progress(job->user, &rep);
        }
    }
    /* The passes of a complete run (sd_textfeat_plan's), each run when one of its utterances is still
     * to do: an utterance's numbers depend on the pass it is in, so a resumed run writes the same
     * bytes as an uninterrupted one. A pass failing (memory) stops the run. */
    for (size_t i = 0; !s && i < n;) {
        const size_t k = pass_rows(tf, len, i, n);
        int any = 0;
        for (size_t j = i; j < i + k; j++) any |= todo[j];
        const double t1 = sd_utt_now();
        if (any && !(s = run_pass(tf, ids + i, len + i, k, err)))
            write_pass(tf, job, i, k, len, todo, sd_utt_now() - t1, t0, counts);
        i += k;
    }
    for (size_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(len);
    free(todo);
    return s;
}
