/* Generation against the Python reference search (tests/reference/llama_ref.py: HF beam-search /
 * greedy semantics, full recomputation per step in float64): the same tokens and the same
 * simulated-text frames (beam slot 0, and along the best beam) for 4 beams, 2 beams (ends by EOS
 * and the "done" rule) and greedy, on the tiny F32 and Q8_0 models. Also the projector against a
 * hand computation and its shape errors, and the text-simulation pipeline over a subset of a
 * folder's utterances (what a sharded run calls). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/threads.h"
#include "harness.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "io/npy.h"
#include "llm/generate.h"
#include "llm/kernels.h"
#include "llm/projector.h"
#include "llm/simulate.h"
#include "llm/transcripts.h"
#include "llm_fixture.h"

static const sd_gguf_kv *kv_i32(const sd_gguf *g, const char *key) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv || kv->type != SD_GGUF_ARRAY || kv->arr_type != SD_GGUF_I32) {
        sd_test_fail(__FILE__, __LINE__, "fixture key %s missing", key);
        return NULL;
    }
    return kv;
}

static void check_case(const sd_llama *m, sd_llama_cache *c, const float *prefix, size_t P,
                       const sd_gguf *e, const char *model, const char *name, int beams) {
    char key[64];
    snprintf(key, sizeof key, "gen.%s.tokens", name);
    const sd_gguf_kv *want_tok = kv_i32(e, key);
    snprintf(key, sizeof key, "gen.%s.steps", name);
    const sd_gguf_kv *steps = kv_i32(e, key);
    if (!want_tok || !steps) return;
    const int32_t *st = steps->arr; /* steps, slot-0 frames, best-beam frames */
    const size_t D = 64;
    for (int feat = 0; feat < 2; feat++) {
        sd_gen_params gp = sd_gen_default_params();
        gp.n_beams = beams;
        gp.max_new_tokens = 16;
        gp.features = feat ? SD_FEATURES_BEST_BEAM : SD_FEATURES_FIRST_SLOT;
        sd_gen_result r;
        sd_error err = {0};
        if (sd_generate(m, c, prefix, P, &gp, &r, &err)) {
            sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
            return;
        }
        int same = r.n_tokens == want_tok->arr_n &&
                   !memcmp(r.tokens, want_tok->arr, r.n_tokens * sizeof(int32_t));
        EXPECT(same, "%s %s: tokens differ (%zu vs %llu)", model, name, r.n_tokens,
               (unsigned long long)want_tok->arr_n);
        EXPECT(r.steps == (size_t)st[0], "%s %s: %zu steps, want %d", model, name, r.steps, st[0]);
        EXPECT(r.n_frames == (size_t)st[1 + feat], "%s %s: %zu frames, want %d", model, name,
               r.n_frames, st[1 + feat]);
        snprintf(key, sizeof key, "gen.%s.%s", name, feat ? "best" : "slot0");
        const sd_gguf_tensor *t = sd_gguf_find_tensor(e, key);
        EXPECT(t != NULL, "%s: fixture tensor %s missing", model, key);
        if (t && r.n_frames == (size_t)st[1 + feat] && r.n_frames > 0) {
            double er = scaled_err(r.frames, t->data, r.n_frames * D);
            printf("  %s %s %s: %zu tokens, %zu steps, %zu frames, frame error %.2e\n", model, name,
                   feat ? "best-beam" : "slot-0", r.n_tokens, r.steps, r.n_frames, er);
            /* exact: 1e-4; llama.cpp's arithmetic against its emulation: 3e-2 (8-bit rounding flips,
             * see test_llama.c) */
            const double tol = strncmp(name, "llamacpp.", 9) ? 1e-4 : 3e-2;
            EXPECT(er < tol, "%s %s frames error %g", model, name, er);
        }
        sd_gen_result_free(&r);
    }
}

/* The model's generation cases in one arithmetic: exact ("beam4", "beam2", "greedy") or llama.cpp's
 * ("llamacpp.beam4", "llamacpp.greedy", against the reference emulating its rounding). */
static void check_model(const char *model, sd_llm_arith arith) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.gguf", model);
    sd_llama *m = NULL;
    sd_gguf *e = NULL;
    sd_error err = {0};
    if (sd_llama_load(path, &m, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    snprintf(path, sizeof path, DIR "%s.expect.gguf", model);
    if (sd_gguf_open(path, &e, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        sd_llama_free(m);
        return;
    }
    const sd_gguf_tensor *embd = sd_gguf_find_tensor(e, "input.embd");
    const sd_gguf_kv *prompt = kv_i32(e, "gen.prompt");
    float *prefix = NULL;
    size_t P = 0;
    EXPECT(sd_gen_build_prefix(m, embd->data, (size_t)embd->ne[1], SD_GEN_PROMPT, &prefix, &P, &err) == SD_OK,
           "%s", err.msg);
    /* The prompt tokenises as the reference tokenizer did. */
    int32_t *ids = NULL;
    size_t n = 0;
    sd_tokenizer_encode(sd_llama_get_tokenizer(m), SD_GEN_PROMPT, strlen(SD_GEN_PROMPT), 1, &ids, &n, &err);
    EXPECT(prompt && n == prompt->arr_n && !memcmp(ids, prompt->arr, n * sizeof *ids) && ids[0] == 1,
           "prompt tokens differ");
    EXPECT(P == (size_t)embd->ne[1] + n, "prefix length %zu", P);
    free(ids);
    sd_llama_cache *c = NULL;
    EXPECT(sd_llama_cache_create(m, &(sd_llama_cache_params){P, 15, 4, 0, arith, 0}, &c, &err) == SD_OK, "%s", err.msg);
    if (c && prefix && arith == SD_LLM_ARITH_EXACT) {
        check_case(m, c, prefix, P, e, model, "beam4", 4);
        check_case(m, c, prefix, P, e, model, "beam2", 2);
        check_case(m, c, prefix, P, e, model, "greedy", 1);
    } else if (c && prefix) {
        check_case(m, c, prefix, P, e, model, "llamacpp.beam4", 4);
        if (sd_gguf_find_kv(e, "gen.llamacpp.greedy.tokens")) check_case(m, c, prefix, P, e, model, "llamacpp.greedy", 1);
    }
    sd_llama_cache_free(c);
    free(prefix);
    sd_gguf_close(e);
    sd_llama_free(m);
}

static void test_generate_f32(void) { check_model("tiny_f32", SD_LLM_ARITH_EXACT); }
static void test_generate_q8_0(void) { check_model("tiny_q8_0", SD_LLM_ARITH_EXACT); }
/* With every kernel set the CPU has (their float sums differ in order, so their 8-bit rounding
 * flips could too). */
static void test_generate_llamacpp(void) {
    for (int isa = SD_LLM_ISA_PORTABLE; isa <= (int)sd_llm_isa_detect(); isa++) {
        sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)isa);
        printf("  kernels %s\n", sd_llm_kernels_name());
        check_model("tiny_q8_0", SD_LLM_ARITH_LLAMACPP);
        check_model("tiny_q4_0", SD_LLM_ARITH_LLAMACPP);
        sd_llm_kernels_limit(old);
    }
}

/* A projector file: linear1 [dh, 5 df] (F32), linear2 [do, dh] stored as w2_type. */
static void write_projector(const char *path, int64_t df, int64_t dh, int64_t dout, const float *w1,
                            const float *b1, const float *w2, const float *b2, sd_dtype w2_type) {
    sd_error err = {0};
    sd_st_writer *w = sd_st_writer_new();
    int64_t s1[2] = {dh, 5 * df}, s1b[1] = {dh}, s2[2] = {dout, dh}, s2b[1] = {dout};
    EXPECT(!sd_st_writer_add(w, "encoder_projector.linear1.weight", SD_DTYPE_F32, 2, s1, w1, &err) &&
               !sd_st_writer_add(w, "encoder_projector.linear1.bias", SD_DTYPE_F32, 1, s1b, b1, &err) &&
               !sd_st_writer_add(w, "encoder_projector.linear2.weight", w2_type, 2, s2, w2, &err) &&
               !sd_st_writer_add(w, "encoder_projector.linear2.bias", SD_DTYPE_F32, 1, s2b, b2, &err) &&
               !sd_st_writer_write(w, path, &err),
           "write: %s", err.msg);
    sd_st_writer_free(w);
}

/* Projector: a file written with the safetensors writer, checked against loops. */
static void test_projector(void) {
    enum { DF = 3, K = 5, DH = 4, DO = 2, T = 12 };
    float w1[DH * K * DF], b1[DH], w2[DO * DH], b2[DO], feats[T * DF];
    for (int i = 0; i < DH * K * DF; i++) w1[i] = sinf(0.7f * (float)i);
    for (int i = 0; i < DH; i++) b1[i] = 0.1f * (float)(i - 2);
    for (int i = 0; i < DO * DH; i++) w2[i] = cosf(0.3f * (float)i);
    for (int i = 0; i < DO; i++) b2[i] = (float)i;
    for (int i = 0; i < T * DF; i++) feats[i] = sinf(0.11f * (float)i * (float)i);
    char path[512];
    snprintf(path, sizeof path, "%s/proj.safetensors", sd_test_tmpdir());
    sd_error err = {0};
    write_projector(path, DF, DH, DO, w1, b1, w2, b2, SD_DTYPE_F16);
    sd_projector *p = NULL;
    if (sd_projector_load(path, K, &p, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    EXPECT(sd_projector_feat_dim(p) == DF && sd_projector_out_dim(p) == DO, "dims");
    float *y = NULL;
    size_t R = 0;
    EXPECT(sd_projector_forward(p, feats, T, DF, &y, &R, &err) == SD_OK && R == T / K, "forward %s", err.msg);
    double e = 0;
    for (size_t r = 0; y && r < R; r++) {
        double h[DH];
        for (int j = 0; j < DH; j++) {
            double a = b1[j];
            for (int i = 0; i < K * DF; i++) a += (double)w1[j * K * DF + i] * feats[r * K * DF + i];
            h[j] = a > 0 ? a : 0;
        }
        for (int o = 0; o < DO; o++) {
            double a = b2[o];
            /* linear2 was stored as F16 */
            for (int j = 0; j < DH; j++) a += (double)sd_f16_to_f32(sd_f32_to_f16(w2[o * DH + j])) * h[j];
            double d = fabs(a - y[r * DO + o]) / (fabs(a) > 1 ? fabs(a) : 1);
            if (d > e) e = d;
        }
    }
    EXPECT(e < 1e-5, "projector error %g", e);
    sd_free(y);
    EXPECT(sd_projector_forward(p, feats, T, DF + 1, &y, &R, &err) == SD_E_SHAPE &&
               strstr(err.msg, "dim 4"), "wrong dim: %s", err.msg);
    EXPECT(sd_projector_forward(p, feats, K - 1, DF, &y, &R, &err) == SD_E_SHAPE, "too short");
    sd_projector_free(p);
    EXPECT(sd_projector_load(path, 4, &p, &err) == SD_E_SHAPE && strstr(err.msg, "multiple"),
           "k=4: %s", err.msg);
}


typedef struct {
    int calls, failed;
} progress_log;

static void count_progress(void *user, const sd_utt_report *r) {
    progress_log *l = user;
    l->calls++;
    if (r->outcome == SD_UTT_FAILED) l->failed++;
}

/* sd_simtext_run over names[1..2) writes only that utterance; a second run over all three writes
 * the other two (one of which fails: too few frames) and skips the first; the written frames are
 * the in-memory pipeline's, rounded to float16. */
static void test_simtext_run_range(void) {
    char dir[512], in[600], out[600], csv[700], proj_path[700];
    snprintf(dir, sizeof dir, "%s/simtext", sd_test_tmpdir());
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(csv, sizeof csv, "%s/part.csv", out);
    snprintf(proj_path, sizeof proj_path, "%s/proj.safetensors", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", in, out);
    EXPECT(system(cmd) == 0, "mkdir");
    {
        enum { DF = 4, K = 5, DH = 8, DO = 64 };
        static float w1[DH * K * DF], b1[DH], w2[DO * DH], b2[DO];
        for (int i = 0; i < DH * K * DF; i++) w1[i] = 0.3f * sinf(0.7f * (float)i);
        for (int i = 0; i < DH; i++) b1[i] = 0.1f * (float)(i - 2);
        for (int i = 0; i < DO * DH; i++) w2[i] = 0.4f * cosf(0.3f * (float)i);
        for (int i = 0; i < DO; i++) b2[i] = 0.01f * (float)i;
        write_projector(proj_path, DF, DH, DO, w1, b1, w2, b2, SD_DTYPE_F32);
    }
    const char *names[] = {"u0", "u1", "u2"};
    size_t T[] = {12, 17, 3}; /* u2: fewer than 5 frames */
    float feats[17 * 4];
    sd_error err = {0};
    for (int u = 0; u < 3; u++) {
        for (size_t i = 0; i < T[u] * 4; i++) feats[i] = sinf(0.21f * (float)(i + 7 * (size_t)u));
        char *p = sd_utt_path(in, names[u], ".npy");
        EXPECT(sd_npy_write(p, feats, 2, (int64_t)T[u], 4, SD_DTYPE_F32, &err) == SD_OK, "%s", err.msg);
        free(p);
    }
    sd_llama *m = NULL;
    sd_projector *proj = NULL;
    sd_simtext *st = NULL;
    sd_simtext_params sp = sd_simtext_default_params();
    sp.gen.max_new_tokens = 6;
    if (sd_llama_load(DIR "tiny_f32.gguf", &m, &err) || sd_projector_load(proj_path, 5, &proj, &err) ||
        sd_simtext_create(m, proj, &sp, &st, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        goto end;
    }
    progress_log log = {0, 0};
    sd_utt_counts counts;
    sd_simtext_job job = {in, out, csv, (char *const *)names, 1, 1, count_progress, &log};
    EXPECT(sd_simtext_run(st, &job, &counts, &err) == SD_OK && counts.written == 1 && log.calls == 1,
           "range run: %s", err.msg);
    char *p0 = sd_utt_path(out, "u0", ".npy"), *p1 = sd_utt_path(out, "u1", ".npy");
    EXPECT(!sd_utt_file_exists(p0) && sd_utt_file_exists(p1), "only u1 written");
    /* the file holds the in-memory result */
    sd_simtext_result r;
    for (size_t i = 0; i < T[1] * 4; i++) feats[i] = sinf(0.21f * (float)(i + 7));
    EXPECT(sd_simtext_utterance(st, feats, T[1], 4, &r, &err) == SD_OK, "%s", err.msg);
    sd_npy_header h;
    float *got = NULL;
    if (sd_npy_read(p1, &h, &got, &err) == SD_OK) {
        EXPECT((size_t)h.rows == r.n_frames && h.cols == 64, "shape %lld", (long long)h.rows);
        double e = 0;
        for (size_t i = 0; (size_t)h.rows == r.n_frames && i < r.n_frames * 64; i++) {
            double d = fabs(got[i] - sd_f16_to_f32(sd_f32_to_f16(r.frames[i])));
            if (d > e) e = d;
        }
        EXPECT(e == 0, "file differs from the in-memory frames by %g", e);
        sd_free(got);
    }
    sd_transcripts t;
    EXPECT(sd_transcripts_read(csv, "name", "text", 0, &t, &err) == SD_OK && t.n == 1 &&
               !strcmp(t.name[0], "u1") && !strcmp(t.text[0], r.text),
           "csv: %s", err.msg);
    sd_transcripts_free(&t);
    sd_simtext_result_free(&r);
    job.first = 0;
    job.count = 3;
    log.calls = 0;
    EXPECT(sd_simtext_run(st, &job, &counts, &err) == SD_OK && counts.written == 1 && counts.skipped == 1 &&
               counts.failed == 1 && log.calls == 3 && log.failed == 1,
           "full run: %zu %zu %zu", counts.written, counts.skipped, counts.failed);
    EXPECT(sd_utt_file_exists(p0), "u0 written");
    free(p0);
    free(p1);
end:
    sd_simtext_free(st);
    sd_projector_free(proj);
    sd_llama_free(m);
}

int main(void) {
    sd_threads_set(2);
    sd_test_run("generate_tiny_f32", test_generate_f32);
    sd_test_run("generate_tiny_q8_0", test_generate_q8_0);
    sd_test_run("generate_llamacpp_arithmetic", test_generate_llamacpp);
    sd_test_run("projector", test_projector);
    sd_test_run("simtext_run_range", test_simtext_run_range);
    return sd_test_finish();
}
