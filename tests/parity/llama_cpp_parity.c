/* Logit parity with llama.cpp (built only with LLAMA_CPP_DIR set: `make test-llama-cpp`; CI does
 * not have llama.cpp). On the committed tiny models (F32, F16, Q8_0, Q4_0) and with a float32 and
 * a float16 KV cache, both programs decode the same tokens (BOS + the MODEL.md prompt):
 *   1. all positions in one batch: the logits of every position;
 *   2. then 16 greedy tokens, one decode per token: the tokens, and the logits of each step.
 * sdumc runs llama.cpp's arithmetic (its default); the exact arithmetic's distance to llama.cpp is
 * printed for the record. Error = max |sdumc - llama.cpp| / max |llama.cpp| per pass.
 *
 * F32 weights with a float32 cache round nothing: bound 1e-5. Everywhere else values are rounded
 * (8-bit or float16 activations, float16 keys, values, queries and attention weights), identically
 * in both programs, but their float32 sums run in different orders, so now and then a value falls
 * on the other side of a rounding boundary in one of them (one 8-bit code or one float16 ulp); on
 * the random tiny model such a flip moves every later position's logits by up to ~6e-2 of their
 * scale (PARITY_ROWS=1 prints the errors by position: ~1e-7 up to the flip). Bound 1e-1 and
 * identical greedy tokens. Prints PASS/FAIL lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "ggml.h"
#include "llama.h"
#include "llm/generate.h"
#include "llm/kernels.h"
#include "llm/kernels_repack.h"
#include "llm/llama.h"
#include "llm_fixture.h"

enum { N_GEN = 16 };

static int failures = 0;

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}


static int32_t argmax(const float *v, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* llama.cpp: the prompt as one batch (logits of every position), then N_GEN greedy tokens.
 * logits [n_prompt + N_GEN, V]: rows n_prompt.. are the steps' logits. */
static int run_llama_cpp(const char *path, enum ggml_type kv, const int32_t *prompt, int n_prompt, int V,
                         float *logits, int32_t *gen) {
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) return -1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = cp.n_ubatch = 128;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = kv;
    cp.flash_attn = false;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        llama_model_free(model);
        return -1;
    }
    struct llama_batch b = llama_batch_init(n_prompt, 0, 1);
    for (int i = 0; i < n_prompt; i++) {
        b.token[i] = prompt[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n_prompt;
    int rc = llama_decode(ctx, b);
    for (int i = 0; !rc && i < n_prompt; i++) memcpy(logits + (size_t)i * V, llama_get_logits_ith(ctx, i), V * sizeof(float));
    int32_t tok = rc ? 0 : argmax(logits + (size_t)(n_prompt - 1) * V, V);
    for (int s = 0; !rc && s < N_GEN; s++) {
        gen[s] = tok;
        b.n_tokens = 1;
        b.token[0] = tok;
        b.pos[0] = n_prompt + s;
        b.logits[0] = 1;
        rc = llama_decode(ctx, b);
        if (!rc) {
            memcpy(logits + (size_t)(n_prompt + s) * V, llama_get_logits_ith(ctx, 0), V * sizeof(float));
            tok = argmax(logits + (size_t)(n_prompt + s) * V, V);
        }
    }
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    return rc ? -1 : 0;
}

/* sdumc: the same passes. */
static int run_sdumc(const char *path, sd_llm_arith arith, int kv_f16, const int32_t *prompt, int n_prompt, float *logits,
                     int32_t *gen) {
    sd_llama *m = NULL;
    sd_llama_cache *c = NULL;
    sd_error err = {0};
    if (sd_llama_load(path, &m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const size_t D = (size_t)sd_llama_get_hparams(m)->n_embd, V = (size_t)sd_llama_get_hparams(m)->n_vocab;
    sd_llama_cache_params cp = sd_llama_cache_default_params();
    cp.max_prefix = (size_t)n_prompt;
    cp.max_steps = N_GEN;
    cp.arith = arith;
    cp.kv_f16 = kv_f16;
    float *x = malloc((size_t)n_prompt * D * sizeof *x);
    int rc = -1;
    if (!x || sd_llama_cache_create(m, &cp, &c, &err) || sd_llama_embed(m, prompt, (size_t)n_prompt, x, &err)) goto end;
    sd_llama_out o = {logits, 1, NULL, NULL, NULL};
    if (sd_llama_prefill(m, c, x, (size_t)n_prompt, &o, &err)) goto end;
    int32_t tok = argmax(logits + (size_t)(n_prompt - 1) * V, (int)V);
    for (int s = 0; s < N_GEN; s++) {
        gen[s] = tok;
        sd_llama_out os = {logits + (size_t)(n_prompt + s) * V, 0, NULL, NULL, NULL};
        if (sd_llama_embed(m, &tok, 1, x, &err) || sd_llama_step(m, c, x, 1, &os, &err)) goto end;
        sd_llama_cache_reorder(c, (const int[]){0}, 1);
        tok = argmax(logits + (size_t)(n_prompt + s) * V, (int)V);
    }
    rc = 0;
end:
    if (rc) fprintf(stderr, "%s\n", err.msg);
    free(x);
    sd_llama_cache_free(c);
    sd_llama_free(m);
    return rc;
}

static void check(const char *model, int kv_f16) {
    char path[256], name[96];
    snprintf(path, sizeof path, DIR "%s.gguf", model);
    snprintf(name, sizeof name, "llama_cpp_parity_%s_kv_%s", model + 5, kv_f16 ? "f16" : "f32");
    sd_llama *m = NULL;
    sd_error err = {0};
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    if (sd_llama_load(path, &m, &err) ||
        sd_tokenizer_encode(sd_llama_get_tokenizer(m), SD_GEN_PROMPT, strlen(SD_GEN_PROMPT), 1, &prompt, &n_prompt, &err)) {
        printf("FAIL %s (%s)\n", name, err.msg);
        failures++;
        sd_llama_free(m);
        return;
    }
    const int V = sd_llama_get_hparams(m)->n_vocab, n = (int)n_prompt, rows = n + N_GEN;
    sd_llama_free(m);
    float *ref = malloc((size_t)rows * V * sizeof *ref), *got = malloc((size_t)rows * V * sizeof *got),
          *ex = malloc((size_t)rows * V * sizeof *ex);
    int32_t gref[N_GEN], ggot[N_GEN], gex[N_GEN];
    if (run_llama_cpp(path, kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, prompt, n, V, ref, gref) ||
        run_sdumc(path, SD_LLM_ARITH_LLAMACPP, kv_f16, prompt, n, got, ggot) ||
        run_sdumc(path, SD_LLM_ARITH_EXACT, kv_f16, prompt, n, ex, gex)) {
        printf("FAIL %s (a run failed)\n", name);
        failures++;
    } else {
        /* the step rows are compared only as far as both fed the same tokens */
        int same = 0;
        while (same < N_GEN && gref[same] == ggot[same]) same++;
        double e_prompt = scaled_err(got, ref, (size_t)n * V), e_steps = 0, x_prompt = scaled_err(ex, ref, (size_t)n * V);
        for (int s = 0; s < same; s++) {
            double e = scaled_err(got + (size_t)(n + s) * V, ref + (size_t)(n + s) * V, (size_t)V);
            if (e > e_steps) e_steps = e;
        }
        if (getenv("PARITY_ROWS")) { /* per-position errors, to tell rounding flips from a systematic difference */
            for (int r = 0; r < n + same; r++)
                printf("%s%.0e", r ? " " : "    rows: ", scaled_err(got + (size_t)r * V, ref + (size_t)r * V, (size_t)V));
            printf("\n");
        }
        const double tol = !strcmp(model, "tiny_f32") && !kv_f16 ? 1e-5 : 1e-1;
        int ok = e_prompt <= tol && e_steps <= tol && same == N_GEN;
        printf("  %s: %d-token prompt logits %.2e, %d greedy steps logits %.2e, tokens %s (exact arithmetic: "
               "prompt logits %.2e, tokens %s)\n",
               name + 17, n, e_prompt, same, e_steps, same == N_GEN ? "identical" : "DIFFER", x_prompt,
               memcmp(gex, gref, sizeof gex) ? "differ" : "identical");
        printf("%s %s\n", ok ? "PASS" : "FAIL", name);
        if (!ok) failures++;
    }
    free(ref), free(got), free(ex), free(prompt);
}

/* ---- every weight product of llama.cpp's prompt pass, redone by sdumc on llama.cpp's own inputs -- */

typedef struct {
    sd_gguf *g;        /* the model file, for the weights by name */
    sd_llm_work work;  /* sdumc's activation buffers */
    float *y;          /* sdumc's product */
    double worst;      /* largest scaled error over the products */
    int n;             /* products compared */
    const char *worst_name;
    char worst_buf[96];
} product_check;

/* The eval callback: asks for every product of a model weight with float32 activations, and when
 * it has run, recomputes it with sdumc's kernels (llama.cpp's arithmetic) from the same input. */
static bool on_node(struct ggml_tensor *t, bool ask, void *user) {
    product_check *pc = user;
    if (t->op != GGML_OP_MUL_MAT || !t->src[0] || !t->src[1]) return ask ? false : true;
    const sd_gguf_tensor *w = sd_gguf_find_tensor(pc->g, t->src[0]->name);
    if (ask) return w && t->src[1]->type == GGML_TYPE_F32 && ggml_is_contiguous(t->src[1]) && ggml_is_contiguous(t);
    const size_t K = (size_t)t->src[1]->ne[0], M = (size_t)t->src[1]->ne[1], N = (size_t)t->ne[0];
    if (!w || (size_t)w->ne[0] != K || (size_t)w->ne[1] != N || M > pc->work.R) return true;
    sd_wmat W = {w->type, w->data, (int64_t)K, (int64_t)N, sd_ggml_row_size(w->type, (int64_t)K), NULL};
    sd_llm_matmul(&W, (const float *)t->src[1]->data, M, pc->y, &pc->work);
    double e = scaled_err(pc->y, (const float *)t->data, M * N);
    /* and from the weights repacked as sd_llama_load repacks them (kernels_repack.h) */
    if (!sd_llm_repack(&W, 0) && W.packed) {
        sd_llm_matmul(&W, (const float *)t->src[1]->data, M, pc->y, &pc->work);
        const double ep = scaled_err(pc->y, (const float *)t->data, M * N);
        if (ep > e) e = ep;
        sd_llm_unpack(&W);
    }
    if (e > pc->worst) {
        pc->worst = e;
        snprintf(pc->worst_buf, sizeof pc->worst_buf, "%s", t->src[0]->name);
        pc->worst_name = pc->worst_buf;
    }
    pc->n++;
    return true;
}

static void check_products(const char *model, int kv_f16) {
    char path[256], name[96];
    snprintf(path, sizeof path, DIR "%s.gguf", model);
    snprintf(name, sizeof name, "llama_cpp_products_%s_kv_%s", model + 5, kv_f16 ? "f16" : "f32");
    product_check pc = {0};
    sd_error err = {0};
    sd_llama *m = NULL;
    int32_t *prompt = NULL;
    size_t n = 0;
    struct llama_model *lm = NULL;
    struct llama_context *ctx = NULL;
    int ok = 0;
    if (sd_gguf_open(path, &pc.g, &err) || sd_llama_load(path, &m, &err) ||
        sd_tokenizer_encode(sd_llama_get_tokenizer(m), SD_GEN_PROMPT, strlen(SD_GEN_PROMPT), 1, &prompt, &n, &err) ||
        sd_llm_work_init(&pc.work, n, 1024, SD_LLM_ARITH_LLAMACPP) || !(pc.y = malloc(n * 1024 * sizeof(float))))
        goto end;
    lm = llama_model_load_from_file(path, llama_model_default_params());
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 128;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.cb_eval = on_node;
    cp.cb_eval_user_data = &pc;
    if (!lm || !(ctx = llama_init_from_model(lm, cp))) goto end;
    struct llama_batch b = llama_batch_get_one(prompt, (int32_t)n);
    ok = llama_decode(ctx, b) == 0;
end:
    /* 7 products per block and the output head */
    ok = ok && pc.n == 7 * sd_llama_get_hparams(m)->n_layer + 1 && pc.worst <= 1e-5;
    printf("  products %s: %d weight products of the %zu-token prompt pass on llama.cpp's inputs, worst %.2e (%s)\n",
           name + 19, pc.n, n, pc.worst, pc.worst_name ? pc.worst_name : "-");
    printf("%s %s\n", ok ? "PASS" : "FAIL", name);
    if (!ok) failures++;
    if (ctx) llama_free(ctx);
    if (lm) llama_model_free(lm);
    free(prompt);
    free(pc.y);
    sd_llm_work_free(&pc.work);
    sd_llama_free(m);
    sd_gguf_close(pc.g);
}

int main(void) {
    sd_threads_set(2);
    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    const char *models[] = {"tiny_f32", "tiny_f16", "tiny_q8_0", "tiny_q4_0"};
    for (int i = 0; i < 4; i++)
        for (int kv = 0; kv < 2; kv++) {
            check(models[i], kv);
            check_products(models[i], kv);
        }
    llama_backend_free();
    return failures ? 1 : 0;
}
