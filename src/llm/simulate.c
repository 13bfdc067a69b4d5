/* The text-simulation pipeline (projector, prefix, KV sizing, generation, decoding, writing) as a
 * library; see simulate.h. */
#include "llm/simulate.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/npy.h"
#include "llm/transcripts.h"

struct sd_simtext {
    const sd_llama *m;
    const sd_projector *proj;
    sd_simtext_params p;
    sd_llama_cache *cache; /* grown when a prefix does not fit */
    size_t cache_prefix;
};

sd_simtext_params sd_simtext_default_params(void) {
    sd_simtext_params p = {sd_gen_default_params(), SD_GEN_PROMPT, SD_LLM_ARITH_LLAMACPP, 1};
    return p;
}

sd_status sd_simtext_create(const sd_llama *m, const sd_projector *p, const sd_simtext_params *params,
                            sd_simtext **out, sd_error *err) {
    *out = NULL;
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    if (sd_projector_out_dim(p) != hp->n_embd)
        return sd_fail(err, SD_E_SHAPE, "projector output dim %lld does not match the LLM's embedding "
                       "length %d", (long long)sd_projector_out_dim(p), hp->n_embd);
    sd_simtext *st = calloc(1, sizeof *st);
    if (!st) return sd_fail(err, SD_E_NOMEM, "out of memory");
    st->m = m;
    st->proj = p;
    st->p = *params;
    *out = st;
    return SD_OK;
}

void sd_simtext_free(sd_simtext *st) {
    if (!st) return;
    sd_llama_cache_free(st->cache);
    free(st);
}

void sd_simtext_result_free(sd_simtext_result *r) {
    if (!r) return;
    free(r->frames);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* A cache for a prefix of P positions: the current one, or a new one with room for 1.5 P (so that
 * a slightly longer utterance does not reallocate), within the model's context. */
static sd_status fit_cache(sd_simtext *st, size_t P, size_t steps, sd_error *err) {
    const size_t n_ctx = (size_t)sd_llama_get_hparams(st->m)->n_ctx;
    if (P + steps > n_ctx)
        return sd_fail(err, SD_E_SHAPE, "prompt (%zu positions) + %zu new tokens exceed the model's "
                       "context of %zu", P, steps + 1, n_ctx);
    if (st->cache && P <= st->cache_prefix) return SD_OK;
    sd_llama_cache_free(st->cache);
    st->cache = NULL;
    size_t want = P + P / 2 + 16;
    if (want + steps > n_ctx) want = n_ctx - steps;
    sd_llama_cache_params cp = sd_llama_cache_default_params();
    cp.max_prefix = want;
    cp.max_steps = steps;
    cp.n_beams = (size_t)st->p.gen.n_beams;
    cp.arith = st->p.arith;
    cp.kv_f16 = st->p.kv_f16;
    sd_status s = sd_llama_cache_create(st->m, &cp, &st->cache, err);
    st->cache_prefix = s ? 0 : want;
    return s;
}

sd_status sd_simtext_utterance(sd_simtext *st, const float *feats, size_t T, size_t Df,
                               sd_simtext_result *res, sd_error *err) {
    memset(res, 0, sizeof *res);
    if ((int64_t)Df != sd_projector_feat_dim(st->proj))
        return sd_fail(err, SD_E_SHAPE, "features of dim %zu, the projector expects %lld (WavLM-large "
                       "last layer: 1024)", Df, (long long)sd_projector_feat_dim(st->proj));
    float *speech = NULL, *prefix = NULL;
    size_t R = 0, P = 0;
    sd_status s = sd_projector_forward(st->proj, feats, T, Df, &speech, &R, err);
    if (s) return s;
    s = sd_gen_build_prefix(st->m, speech, R, st->p.prompt, &prefix, &P, err);
    sd_free(speech);
    if (s) return s;
    const size_t steps = (size_t)st->p.gen.max_new_tokens - 1;
    sd_gen_result g = {0};
    if ((s = fit_cache(st, P, steps, err))) {
        sd_error_prefix(err, "%zu speech frames", R);
        free(prefix);
        return s;
    }
    s = sd_generate(st->m, st->cache, prefix, P, &st->p.gen, &g, err);
    free(prefix);
    if (s) return s;
    if (g.n_frames == 0) {
        sd_gen_result_free(&g);
        return sd_fail(err, SD_E_SHAPE, "generation produced no frame (it ended after %zu step)", g.steps);
    }
    char *raw = NULL;
    size_t raw_len = 0;
    s = sd_tokenizer_decode(sd_llama_get_tokenizer(st->m), g.tokens, g.n_tokens, &raw, &raw_len, err);
    if (!s) s = sd_utf8_repair(raw, raw_len, &res->text, NULL, err);
    free(raw);
    if (s) {
        sd_gen_result_free(&g);
        return s;
    }
    res->frames = g.frames;
    res->n_frames = g.n_frames;
    res->n_tokens = g.n_tokens;
    res->n_steps = g.steps;
    g.frames = NULL;
    sd_gen_result_free(&g);
    return SD_OK;
}

/* IN/<name>.npy -> OUT/<name>.npy and the transcript row; fills the report's counts. */
static sd_status simulate_file(sd_simtext *st, const sd_simtext_job *job, const char *name,
                               sd_transcripts *done, sd_utt_report *rep, sd_error *err) {
    char *in = sd_utt_path(job->in_dir, name, ".npy"), *out = sd_utt_path(job->out_dir, name, ".npy");
    sd_npy_header h;
    float *feats = NULL;
    sd_simtext_result r = {0};
    sd_status s = !in || !out ? sd_fail(err, SD_E_NOMEM, "out of memory") : sd_npy_read(in, &h, &feats, err);
    if (!s) {
        s = sd_simtext_utterance(st, feats, (size_t)h.rows, (size_t)h.cols, &r, err);
        if (s) sd_error_prefix(err, "%s", in);
    }
    sd_free(feats);
    const size_t D = (size_t)sd_llama_get_hparams(st->m)->n_embd;
    if (!s) s = sd_npy_write(out, r.frames, 2, (int64_t)r.n_frames, (int64_t)D, SD_DTYPE_F16, err);
    if (!s) {
        rep->n_tokens = r.n_tokens;
        rep->n_frames = r.n_frames;
        rep->n_steps = r.n_steps;
        rep->n_out_of_f16 = sd_utt_count_out_of_f16(r.frames, r.n_frames * D);
        s = sd_transcripts_set(done, name, r.text, err);
        if (!s) s = sd_transcripts_write(job->csv_path, done, err);
    }
    sd_simtext_result_free(&r);
    free(in);
    free(out);
    return s;
}

sd_status sd_simtext_run(sd_simtext *st, const sd_simtext_job *job, sd_utt_counts *counts,
                         sd_error *err) {
    memset(counts, 0, sizeof *counts);
    sd_transcripts done;
    sd_status s = sd_transcripts_read(job->csv_path, "name", "text", 1, &done, err);
    if (s) return s;
    const double t0 = sd_utt_now();
    for (size_t i = 0; i < job->count; i++) {
        const char *name = job->names[job->first + i];
        sd_utt_report rep = {i, job->count, name, SD_UTT_WRITTEN, NULL, 0, 0, 0, 0, 0, 0};
        char *out = sd_utt_path(job->out_dir, name, ".npy");
        if (!out) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
            break;
        }
        int have = sd_utt_file_exists(out) && sd_transcripts_find(&done, name) >= 0;
        free(out);
        const double t1 = sd_utt_now();
        sd_error e1 = {0};
        if (have) {
            rep.outcome = SD_UTT_SKIPPED;
            counts->skipped++;
        } else if (simulate_file(st, job, name, &done, &rep, &e1)) {
            rep.outcome = SD_UTT_FAILED;
            rep.error = e1.msg;
            counts->failed++;
        } else {
            counts->written++;
        }
        rep.seconds = sd_utt_now() - t1;
        rep.elapsed = sd_utt_now() - t0;
        if (job->progress) job->progress(job->user, &rep);
    }
    sd_transcripts_free(&done);
    return s;
}
