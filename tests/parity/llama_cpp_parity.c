/* Parity with llama.cpp (built only with LLAMA_CPP_DIR set: `make test-llama-cpp`; CI does not
 * have llama.cpp), on the committed tiny models (F32, F16, Q8_0, Q4_0) with a float32 and a
 * float16 KV cache:
 *   1. ops: every operation of llama.cpp's prompt pass (caught with its graph callback) is redone
 *      by sdumc's code from llama.cpp's own inputs: the embeddings, RMSnorms, RoPEs, softmaxes and
 *      SiLU gates must be bit-identical (sdumc's llama.cpp arithmetic performs llama.cpp's
 *      operations; this needs sdumc's best kernel set to be the one llama.cpp's -march=native
 *      build has, as on the machine that built it), the weight products within 1e-6 (the same
 *      exact block products; only the order of their float32 sums differs);
 *   2. logits: both programs decode BOS + the MODEL.md prompt in one batch (the logits of every
 *      position), then 16 greedy tokens one decode at a time (the tokens and each step's logits).
 *      Error = max |sdumc - llama.cpp| / max |llama.cpp| per pass.
 * F32 weights with a float32 cache round nothing: bound 1e-5. Elsewhere values are rounded (8-bit
 * or float16 activations; float16 keys, values, queries and attention weights) the same way in
 * both, but the float32 sums of products and attention run in different orders, so now and then a
 * value falls on the other side of a rounding boundary in one of them, and the random 4-block model
 * carries one such flip to the logits at up to ~2e-2 of their scale. The test prints what shows
 * this: the block outputs of the prompt pass against llama.cpp's (~1e-7 until the block of the
 * first flip), and sdumc against itself with its other kernel set (the summation order alone
 * moves the logits as much). Bounds: float16 roundings only 2e-3, 8-bit activations 3e-2, and
 * identical greedy tokens. PARITY_ROWS=1 prints the errors by position; PARITY_ISA=0|1|2 caps
 * sdumc's kernel set. Prints PASS/FAIL lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "ggml-cpu.h"
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
                     int32_t *gen, float *layers) {
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
    sd_llama_out o = {logits, 1, NULL, layers, NULL};
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

/* "name" of a model path (its file name without .gguf) and the type of its weights. */
static void model_label(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    snprintf(out, n, "%s", b ? b + 1 : path);
    char *dot = strstr(out, ".gguf");
    if (dot) *dot = 0;
    if (!strncmp(out, "tiny_", 5)) memmove(out, out + 5, strlen(out + 5) + 1);
}

static sd_ggml_type weight_type(const char *path) {
    sd_gguf *g = NULL;
    sd_error err = {0};
    sd_ggml_type t = SD_GGML_F32;
    if (sd_gguf_open(path, &g, &err)) return t;
    const sd_gguf_tensor *w = sd_gguf_find_tensor(g, "blk.0.attn_q.weight");
    if (w) t = w->type;
    sd_gguf_close(g);
    return t;
}

static void check(const char *path, int kv_f16) {
    char name[160], label[96];
    model_label(path, label, sizeof label);
    snprintf(name, sizeof name, "llama_cpp_parity_%s_kv_%s", label, kv_f16 ? "f16" : "f32");
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
        run_sdumc(path, SD_LLM_ARITH_LLAMACPP, kv_f16, prompt, n, got, ggot, NULL) ||
        run_sdumc(path, SD_LLM_ARITH_EXACT, kv_f16, prompt, n, ex, gex, NULL)) {
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
        /* sdumc against itself: its other kernel set, whose float32 sums run in another order */
        const sd_llm_isa best = sd_llm_kernels_isa();
        if (best > SD_LLM_ISA_PORTABLE) {
            sd_llm_isa old = sd_llm_kernels_limit((sd_llm_isa)(best - 1));
            const char *other = sd_llm_kernels_name();
            float *own = malloc((size_t)rows * V * sizeof *own);
            int32_t gown[N_GEN];
            int ok_run = own && !run_sdumc(path, SD_LLM_ARITH_LLAMACPP, kv_f16, prompt, n, own, gown, NULL);
            sd_llm_kernels_limit(old);
            int same_own = 0;
            while (ok_run && same_own < N_GEN && gown[same_own] == ggot[same_own]) same_own++;
            double o_steps = 0;
            for (int s = 0; s < same_own; s++) {
                double e = scaled_err(own + (size_t)(n + s) * V, got + (size_t)(n + s) * V, (size_t)V);
                if (e > o_steps) o_steps = e;
            }
            if (ok_run)
                printf("    sdumc's %s vs %s kernels (summation order alone): prompt logits %.2e, steps logits %.2e, "
                       "tokens %s\n", other, sd_llm_kernels_name(), scaled_err(own, got, (size_t)n * V), o_steps,
                       same_own == N_GEN ? "identical" : "differ");
            free(own);
        }
        const sd_ggml_type wt = weight_type(path);
        const double tol = wt == SD_GGML_F32 && !kv_f16 ? 1e-5 : wt == SD_GGML_F32 || wt == SD_GGML_F16 ? 2e-3 : 3e-2;
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

/* ---- every operation of llama.cpp's prompt pass, redone by sdumc on llama.cpp's own inputs ---- */

enum { OP_EMBED, OP_NORM, OP_ROPE, OP_SOFTMAX, OP_SILU_MUL, OP_PRODUCT, OP_PACKED, N_OPS };
static const char *const op_names[N_OPS] = {"embedding", "rmsnorm", "rope", "softmax", "silu*up", "weight product",
                                            "  repacked"};

typedef struct {
    const struct ggml_tensor *t;
    float *data; /* a copy taken right after the node ran (later nodes may reuse its memory) */
} saved_node;

typedef struct {
    sd_gguf *g;        /* the model file, for the weights by name */
    sd_llama *m;       /* sdumc's model (embeddings) */
    sd_llm_work work;  /* sdumc's activation buffers */
    float *y;          /* sdumc's result */
    saved_node *saved;
    int n_saved, cap;
    long n[N_OPS], differ[N_OPS]; /* values compared, values not bit-identical */
    int count[N_OPS];             /* nodes compared */
    double worst[N_OPS];          /* largest scaled error over the nodes of a kind */
    char worst_name[N_OPS][64];
} op_check;

static int is_contiguous_f32(const struct ggml_tensor *t) { return t->type == GGML_TYPE_F32 && ggml_is_contiguous(t); }

/* A node's values as they were when it ran, or a leaf's (inputs and weights stay put). */
static const float *values(const op_check *oc, const struct ggml_tensor *t) {
    for (int i = oc->n_saved - 1; i >= 0; i--)
        if (oc->saved[i].t == t) return oc->saved[i].data;
    return t->op == GGML_OP_NONE && is_contiguous_f32(t) ? (const float *)t->data : NULL;
}

static void record(op_check *oc, int op, const struct ggml_tensor *t, const float *ref, size_t n) {
    long differ = 0;
    for (size_t i = 0; i < n; i++) differ += memcmp(&oc->y[i], &ref[i], sizeof(float)) != 0;
    const double e = scaled_err(oc->y, ref, n);
    oc->n[op] += (long)n;
    oc->differ[op] += differ;
    oc->count[op]++;
    if (e > oc->worst[op] || !oc->worst_name[op][0]) {
        oc->worst[op] = e;
        snprintf(oc->worst_name[op], sizeof oc->worst_name[op], "%s", t->name);
    }
}

/* Recomputes node t (just run) with sdumc's code from the node's inputs, if it is one of the kinds. */
static void redo(op_check *oc, const struct ggml_tensor *t) {
    const struct ggml_tensor *a = t->src[0], *b = t->src[1];
    const float *out = (const float *)t->data;
    const size_t ne0 = (size_t)t->ne[0], rows = (size_t)ggml_nrows(t), n = ne0 * rows;
    if (!is_contiguous_f32(t) || !a || n > oc->work.R * oc->work.K) return;
    if (t->op == GGML_OP_GET_ROWS && b && b->type == GGML_TYPE_I32) {
        sd_error err = {0};
        if (!sd_gguf_find_tensor(oc->g, a->name) || sd_llama_embed(oc->m, (const int32_t *)b->data, rows, oc->y, &err)) return;
        record(oc, OP_EMBED, t, out, n);
    } else if (t->op == GGML_OP_MUL && a->op == GGML_OP_RMS_NORM && b && sd_gguf_find_tensor(oc->g, b->name)) {
        const float *x = values(oc, a->src[0]), *w = values(oc, b);
        float eps;
        memcpy(&eps, a->op_params, sizeof eps);
        if (!x || !w) return;
        for (size_t r = 0; r < rows; r++) sd_llm_rmsnorm(oc->y + r * ne0, x + r * ne0, w, ne0, eps, SD_LLM_ARITH_LLAMACPP);
        record(oc, OP_NORM, t, out, n);
    } else if (t->op == GGML_OP_ROPE && b && b->type == GGML_TYPE_I32) {
        const float *x = values(oc, a);
        float base;
        memcpy(&base, (const int32_t *)t->op_params + 5, sizeof base);
        if (!x) return;
        const size_t per = (size_t)t->ne[0] * (size_t)t->ne[1]; /* one position: heads x head dim */
        memcpy(oc->y, x, n * sizeof(float));
        for (int64_t i = 0; i < t->ne[2]; i++)
            sd_llm_rope(oc->y + (size_t)i * per, (int)t->ne[1], (int)t->ne[0], (size_t)((const int32_t *)b->data)[i], base,
                        SD_LLM_ARITH_LLAMACPP);
        record(oc, OP_ROPE, t, out, n);
    } else if (t->op == GGML_OP_SOFT_MAX && b && is_contiguous_f32(b)) {
        /* rows: (position, head); the keys a position sees are those its mask row leaves at 0 */
        const float *x = values(oc, a), *mask = (const float *)b->data;
        float scale;
        memcpy(&scale, t->op_params, sizeof scale);
        if (!x) return;
        for (size_t r = 0; r < rows; r++) {
            const float *mrow = mask + (r % (size_t)t->ne[1]) * ne0;
            size_t seen = 0;
            while (seen < ne0 && mrow[seen] == 0.0f) seen++;
            memcpy(oc->y + r * ne0, x + r * ne0, ne0 * sizeof(float));
            sd_llm_softmax(oc->y + r * ne0, seen, scale, 0, SD_LLM_ARITH_LLAMACPP);
            for (size_t j = seen; j < ne0; j++) oc->y[r * ne0 + j] = 0.0f;
        }
        record(oc, OP_SOFTMAX, t, out, n);
    } else if (t->op == GGML_OP_MUL && a->op == GGML_OP_UNARY && ggml_get_unary_op(a) == GGML_UNARY_OP_SILU && b) {
        const float *g = values(oc, a->src[0]), *u = values(oc, b);
        if (!g || !u) return;
        memcpy(oc->y, g, n * sizeof(float));
        for (size_t r = 0; r < rows; r++) sd_llm_silu_mul(oc->y + r * ne0, u + r * ne0, ne0, SD_LLM_ARITH_LLAMACPP);
        record(oc, OP_SILU_MUL, t, out, n);
    } else if (t->op == GGML_OP_MUL_MAT && b && is_contiguous_f32(b)) {
        const sd_gguf_tensor *w = sd_gguf_find_tensor(oc->g, a->name);
        const size_t K = (size_t)b->ne[0], M = (size_t)b->ne[1];
        if (!w || (size_t)w->ne[0] != K || (size_t)w->ne[1] != ne0 || M > oc->work.R) return;
        sd_wmat W = {w->type, w->data, (int64_t)K, (int64_t)ne0, sd_ggml_row_size(w->type, (int64_t)K), NULL};
        const float *x = values(oc, b) ? values(oc, b) : (const float *)b->data;
        sd_llm_matmul(&W, x, M, oc->y, &oc->work);
        record(oc, OP_PRODUCT, t, out, n);
        /* and from the weights repacked as sd_llama_load repacks them (kernels_repack.h) */
        if (!sd_llm_repack(&W, 0) && W.packed) {
            sd_llm_matmul(&W, x, M, oc->y, &oc->work);
            record(oc, OP_PACKED, t, out, n);
            sd_llm_unpack(&W);
        }
    }
}

/* The eval callback: every node, so that each runs alone and its values can be kept. */
static bool on_node(struct ggml_tensor *t, bool ask, void *user) {
    op_check *oc = user;
    if (ask) return true;
    redo(oc, t);
    if (is_contiguous_f32(t) && t->data) {
        if (oc->n_saved == oc->cap) {
            int cap = oc->cap ? 2 * oc->cap : 256;
            saved_node *s = realloc(oc->saved, (size_t)cap * sizeof *s);
            if (!s) return false;
            oc->saved = s;
            oc->cap = cap;
        }
        const size_t bytes = ggml_nbytes(t);
        float *copy = malloc(bytes);
        if (!copy) return false;
        memcpy(copy, t->data, bytes);
        oc->saved[oc->n_saved++] = (saved_node){t, copy};
    }
    return true;
}

/* Per kind: the nodes and values compared, how many values are not bit-identical, the worst
 * scaled error. Every elementwise kind must be bit-identical (sdumc runs llama.cpp's operations);
 * the weight products differ only in their float32 summation order (bound 1e-5). */
static void check_ops(const char *path, int kv_f16) {
    char name[160], label[96];
    model_label(path, label, sizeof label);
    snprintf(name, sizeof name, "llama_cpp_ops_%s_kv_%s", label, kv_f16 ? "f16" : "f32");
    op_check oc = {0};
    sd_error err = {0};
    int32_t *prompt = NULL;
    size_t n = 0;
    struct llama_model *lm = NULL;
    struct llama_context *ctx = NULL;
    int ok = 0;
    if (sd_gguf_open(path, &oc.g, &err) || sd_llama_load(path, &oc.m, &err) ||
        sd_tokenizer_encode(sd_llama_get_tokenizer(oc.m), SD_GEN_PROMPT, strlen(SD_GEN_PROMPT), 1, &prompt, &n, &err) ||
        sd_llm_work_init(&oc.work, 128, 4096, SD_LLM_ARITH_LLAMACPP) || !(oc.y = malloc(128 * 4096 * sizeof(float))))
        goto end;
    lm = llama_model_load_from_file(path, llama_model_default_params());
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 128;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.flash_attn = false;
    cp.cb_eval = on_node;
    cp.cb_eval_user_data = &oc;
    if (!lm || !(ctx = llama_init_from_model(lm, cp))) goto end;
    struct llama_batch b = llama_batch_get_one(prompt, (int32_t)n);
    ok = llama_decode(ctx, b) == 0;
end:;
    const int L = oc.m ? sd_llama_get_hparams(oc.m)->n_layer : 0;
    /* the block outputs of sdumc's own prompt pass against llama.cpp's (l_out-i; the last block
     * only at the last position, the only one whose logits llama.cpp computes here) */
    const size_t D = oc.m ? (size_t)sd_llama_get_hparams(oc.m)->n_embd : 0;
    float *layers = ok ? malloc((size_t)L * n * D * sizeof *layers) : NULL, *lg = ok ? malloc(n * 4096 * sizeof *lg) : NULL;
    int32_t gen[N_GEN];
    if (layers && lg && !run_sdumc(path, SD_LLM_ARITH_LLAMACPP, kv_f16, prompt, (int)n, lg, gen, layers)) {
        printf("    block outputs of sdumc's pass vs llama.cpp's:");
        for (int l = 0; l < L; l++) {
            char nm[32];
            snprintf(nm, sizeof nm, "l_out-%d", l);
            const float *ref = NULL;
            size_t rows = 0;
            for (int i = oc.n_saved - 1; i >= 0 && !ref; i--)
                if (!strcmp(oc.saved[i].t->name, nm)) ref = oc.saved[i].data, rows = (size_t)ggml_nrows(oc.saved[i].t);
            if (ref) printf(" %.1e", scaled_err(layers + ((size_t)l * n + n - rows) * D, ref, rows * D));
        }
        printf("\n");
    }
    free(layers);
    free(lg);
    /* nodes expected per kind: 1 embedding, 2 norms per block + the final one, 2 ropes and 1
     * softmax and 1 gate per block, 7 products per block and the output head, the same products
     * again from repacked weights for Q8_0 / Q4_0 */
    const sd_ggml_type wt = weight_type(path);
    const int quantised = wt == SD_GGML_Q8_0 || wt == SD_GGML_Q4_0;
    const int expect[N_OPS] = {1, 2 * L + 1, 2 * L, L, L, 7 * L + 1, quantised ? 7 * L + 1 : 0};
    printf("  ops %s (%zu-token prompt pass on llama.cpp's inputs):\n", name + 14, n);
    for (int k = 0; k < N_OPS; k++) {
        const int good = oc.count[k] == expect[k] && (k >= OP_PRODUCT ? oc.worst[k] <= 1e-6 : oc.differ[k] == 0);
        ok = ok && good;
        printf("    %-14s %2d nodes, %7ld values, %5ld not bit-identical, worst %.2e (%s)%s\n", op_names[k], oc.count[k], oc.n[k],
               oc.differ[k], oc.worst[k], oc.worst_name[k][0] ? oc.worst_name[k] : "-", good ? "" : "  <- FAIL");
    }
    printf("%s %s\n", ok ? "PASS" : "FAIL", name);
    if (!ok) failures++;
    if (ctx) llama_free(ctx);
    if (lm) llama_model_free(lm);
    for (int i = 0; i < oc.n_saved; i++) free(oc.saved[i].data);
    free(oc.saved);
    free(prompt);
    free(oc.y);
    sd_llm_work_free(&oc.work);
    sd_llama_free(oc.m);
    sd_gguf_close(oc.g);
}

int main(void) {
    sd_threads_set(2);
    if (getenv("PARITY_ISA")) sd_llm_kernels_limit((sd_llm_isa)atoi(getenv("PARITY_ISA")));
    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    if (ggml_cpu_has_amx_int8())
        printf("  NOTE: this llama.cpp was built with AMX (a native build on an AMX CPU): its Q8_0/Q4_0 products run\n"
               "  on AMX kernels and its F16 products keep float32 activations, which is not the arithmetic sdumc\n"
               "  reproduces; those cases are expected to fail. For this test build llama.cpp without AMX\n"
               "  (bench/README.md, \"Getting llama.cpp\").\n");
    /* the committed fixtures, or the GGUF files PARITY_MODELS names (space-separated) */
    char list[4096] = DIR "tiny_f32.gguf " DIR "tiny_f16.gguf " DIR "tiny_q8_0.gguf " DIR "tiny_q4_0.gguf";
    if (getenv("PARITY_MODELS")) snprintf(list, sizeof list, "%s", getenv("PARITY_MODELS"));
    for (char *save = NULL, *path = strtok_r(list, " ", &save); path; path = strtok_r(NULL, " ", &save))
        for (int kv = 0; kv < 2; kv++) {
            check(path, kv);
            check_ops(path, kv);
        }
    llama_backend_free();
    return failures ? 1 : 0;
}
