/* LLaMA decoder: loading and the forward pass; see llama.h for the legend and the cache layout. */
#include "core/omp.h"
#include "llm/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "llm/kernels.h"

typedef struct {
    float *attn_norm, *ffn_norm; /* [D] */
    sd_wmat q, k, v, o;          /* [D,D] [KV,D] [KV,D] [D,D] as N x K */
    sd_wmat gate, up, down;      /* [F,D] [F,D] [D,F] */
} layer_w;

struct sd_llama {
    sd_gguf *gguf;
    sd_llama_hparams hp;
    sd_tokenizer *tok;
    sd_wmat embd, output; /* [V, D] each */
    float *output_norm;   /* [D] */
    layer_w *layers;      /* [L] */
};

struct sd_llama_cache {
    size_t L, KV, max_prefix, max_steps, n_beams;
    size_t n_prefix, n_steps;
    float *k_pre, *v_pre; /* [L, max_prefix, KV] */
    float *k_gen, *v_gen; /* [L, max_steps, n_beams, KV] */
    int *anc, *anc_tmp;   /* [n_beams, max_steps]: slot holding beam b's step s */
};

/* ---- loading -------------------------------------------------------------------------------- */

static sd_status get_matrix(const sd_llama *m, const char *name, int64_t K, int64_t N, sd_wmat *w,
                            int optional, sd_error *err) {
    const char *path = sd_gguf_path(m->gguf);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional) {
            w->data = NULL;
            return SD_OK;
        }
        return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' is missing", path, name);
    }
    if (t->ne[0] != K || t->ne[1] != N || t->ne[2] != 1 || t->ne[3] != 1)
        return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' has ne [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                       path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)K, (long long)N);
    w->type = t->type;
    w->data = t->data;
    w->K = K;
    w->N = N;
    w->row_bytes = sd_ggml_row_size(t->type, K);
    return SD_OK;
}

static sd_status get_vector(const sd_llama *m, const char *name, int64_t D, float **out,
                            sd_error *err) {
    const char *path = sd_gguf_path(m->gguf);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(m->gguf, name);
    if (!t) return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' is missing", path, name);
    if (sd_gguf_tensor_numel(t) != D || t->ne[0] != D)
        return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' has %lld elements, expected %lld", path,
                       name, (long long)sd_gguf_tensor_numel(t), (long long)D);
    if (!(*out = malloc((size_t)D * sizeof **out)))
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_ggml_to_f32(t->type, t->data, *out, D);
    return SD_OK;
}

static sd_status read_hparams(sd_llama *m, sd_error *err) {
    const sd_gguf *g = m->gguf;
    const char *path = sd_gguf_path(g), *arch = NULL;
    sd_status s = sd_gguf_get_str(g, "general.architecture", &arch, err);
    if (s) return s;
    if (strcmp(arch, "llama"))
        return sd_fail(err, SD_E_UNSUPPORTED,
                       "%s: model architecture '%s' is not supported: simulate-text runs "
                       "LLaMA-architecture models (general.architecture = llama, e.g. Vicuna-7B v1.5)",
                       path, arch);
    uint32_t D, L, H, Hkv, F, ctx, rope_dim;
    float eps, base;
    if ((s = sd_gguf_get_u32(g, "llama.embedding_length", &D, err)) ||
        (s = sd_gguf_get_u32(g, "llama.block_count", &L, err)) ||
        (s = sd_gguf_get_u32(g, "llama.attention.head_count", &H, err)) ||
        (s = sd_gguf_get_u32_or(g, "llama.attention.head_count_kv", H, &Hkv, err)) ||
        (s = sd_gguf_get_u32(g, "llama.feed_forward_length", &F, err)) ||
        (s = sd_gguf_get_u32_or(g, "llama.context_length", 4096, &ctx, err)) ||
        (s = sd_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, err)) ||
        (s = sd_gguf_get_f32_or(g, "llama.rope.freq_base", 10000.0f, &base, err)))
        return s;
    if (D == 0 || D > (1u << 16) || H == 0 || D % H || (D / H) % 2 || Hkv == 0 || H % Hkv ||
        F == 0 || F > (1u << 20) || L < 3 || L > 1024 || ctx == 0 || !(eps > 0) || !(base > 0))
        return sd_fail(err, SD_E_FORMAT,
                       "%s: bad hyperparameters (embedding %u, blocks %u (>= 3 needed), heads %u/%u, "
                       "ff %u, context %u, eps %g, rope base %g)",
                       path, D, L, H, Hkv, F, ctx, (double)eps, (double)base);
    if ((s = sd_gguf_get_u32_or(g, "llama.rope.dimension_count", D / H, &rope_dim, err))) return s;
    if (rope_dim != D / H)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: partial RoPE (dimension %u of head dim %u) is not "
                       "supported", path, rope_dim, D / H);
    const sd_gguf_kv *scaling = sd_gguf_find_kv(g, "llama.rope.scaling.type");
    if (scaling && scaling->type == SD_GGUF_STRING && strcmp(scaling->str, "none"))
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: RoPE scaling '%s' is not supported", path,
                       scaling->str);
    m->hp = (sd_llama_hparams){0, (int32_t)D, (int32_t)L, (int32_t)H, (int32_t)Hkv,
                               (int32_t)(D / H), (int32_t)F, (int32_t)ctx, base, eps};
    return SD_OK;
}

/* Every weight, after read_hparams and the tokenizer (which gives n_vocab). */
static sd_status load_weights(sd_llama *m, const char *path, sd_error *err) {
    sd_llama_hparams *hp = &m->hp;
    const sd_gguf_tensor *te = sd_gguf_find_tensor(m->gguf, "token_embd.weight");
    hp->n_vocab = sd_tokenizer_n_vocab(m->tok);
    if (te && te->ne[1] != hp->n_vocab)
        return sd_fail(err, SD_E_SHAPE, "%s: token_embd.weight has %lld rows but the vocabulary %d tokens",
                       path, (long long)te->ne[1], hp->n_vocab);
    int64_t D = hp->n_embd, KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff,
            V = hp->n_vocab;
    sd_status s = get_matrix(m, "token_embd.weight", D, V, &m->embd, 0, err);
    if (!s) s = get_matrix(m, "output.weight", D, V, &m->output, 1, err);
    if (!s && !m->output.data) m->output = m->embd; /* tied embeddings */
    if (!s) s = get_vector(m, "output_norm.weight", D, &m->output_norm, err);
    if (!s && !(m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers)))
        s = sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int l = 0; !s && l < hp->n_layer; l++) {
        layer_w *w = &m->layers[l];
        char name[96];
#define NAME(x) (snprintf(name, sizeof name, "blk.%d." x ".weight", l), name)
        if ((s = get_vector(m, NAME("attn_norm"), D, &w->attn_norm, err)) ||
            (s = get_vector(m, NAME("ffn_norm"), D, &w->ffn_norm, err)) ||
            (s = get_matrix(m, NAME("attn_q"), D, D, &w->q, 0, err)) ||
            (s = get_matrix(m, NAME("attn_k"), D, KV, &w->k, 0, err)) ||
            (s = get_matrix(m, NAME("attn_v"), D, KV, &w->v, 0, err)) ||
            (s = get_matrix(m, NAME("attn_output"), D, D, &w->o, 0, err)) ||
            (s = get_matrix(m, NAME("ffn_gate"), D, F, &w->gate, 0, err)) ||
            (s = get_matrix(m, NAME("ffn_up"), D, F, &w->up, 0, err)) ||
            (s = get_matrix(m, NAME("ffn_down"), F, D, &w->down, 0, err)))
            break;
#undef NAME
    }
    return s;
}

sd_status sd_llama_load(const char *path, sd_llama **out, sd_error *err) {
    *out = NULL;
    sd_llama *m = calloc(1, sizeof *m);
    if (!m) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_status s = sd_gguf_open(path, &m->gguf, err);
    if (!s) s = read_hparams(m, err);
    if (!s) s = sd_tokenizer_from_gguf(m->gguf, &m->tok, err);
    if (!s) s = load_weights(m, path, err);
    if (s) {
        sd_llama_free(m);
        return s;
    }
    *out = m;
    return SD_OK;
}

void sd_llama_free(sd_llama *m) {
    if (!m) return;
    if (m->layers)
        for (int l = 0; l < m->hp.n_layer; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
        }
    free(m->layers);
    free(m->output_norm);
    sd_tokenizer_free(m->tok);
    sd_gguf_close(m->gguf);
    free(m);
}

const sd_llama_hparams *sd_llama_get_hparams(const sd_llama *m) { return &m->hp; }
const sd_tokenizer *sd_llama_get_tokenizer(const sd_llama *m) { return m->tok; }
const char *sd_llama_weight_type(const sd_llama *m) {
    return sd_ggml_type_name(m->layers[0].q.type);
}

size_t sd_llama_weight_bytes(const sd_llama *m) {
    size_t n = (size_t)m->output.N * m->output.row_bytes;
    for (int l = 0; l < m->hp.n_layer; l++) {
        const layer_w *w = &m->layers[l];
        const sd_wmat *all[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        for (int i = 0; i < 7; i++) n += (size_t)all[i]->N * all[i]->row_bytes;
    }
    return n;
}

sd_status sd_llama_embed(const sd_llama *m, const int32_t *ids, size_t n, float *out,
                         sd_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->hp.n_vocab)
            return sd_fail(err, SD_E_ARG, "token id %d outside the vocabulary [0, %d)", ids[i],
                           m->hp.n_vocab);
        sd_llm_get_row(&m->embd, ids[i], out + i * (size_t)m->hp.n_embd);
    }
    return SD_OK;
}

/* ---- cache ---------------------------------------------------------------------------------- */

sd_status sd_llama_cache_create(const sd_llama *m, size_t max_prefix, size_t max_steps,
                                size_t n_beams, sd_llama_cache **out, sd_error *err) {
    *out = NULL;
    if (n_beams == 0 || max_prefix == 0)
        return sd_fail(err, SD_E_ARG, "cache: need at least one beam and one prefix position");
    if (max_prefix + max_steps > (size_t)m->hp.n_ctx)
        return sd_fail(err, SD_E_ARG, "cache: %zu prefix positions + %zu steps exceed the model's "
                       "context length %d", max_prefix, max_steps, m->hp.n_ctx);
    sd_llama_cache *c = calloc(1, sizeof *c);
    if (!c) return sd_fail(err, SD_E_NOMEM, "out of memory");
    c->L = (size_t)m->hp.n_layer;
    c->KV = (size_t)m->hp.n_head_kv * (size_t)m->hp.head_dim;
    c->max_prefix = max_prefix;
    c->max_steps = max_steps;
    c->n_beams = n_beams;
    size_t pre, gen, anc;
    int ok = sd_mul_size(c->L * c->KV, max_prefix, &pre) && sd_mul_size(pre, sizeof(float), &pre) &&
             sd_mul_size(c->L * c->KV, max_steps ? max_steps : 1, &gen) &&
             sd_mul_size(gen, n_beams * sizeof(float), &gen) &&
             sd_mul_size(n_beams, (max_steps ? max_steps : 1) * sizeof(int), &anc);
    if (ok) {
        c->k_pre = sd_alloc(pre);
        c->v_pre = sd_alloc(pre);
        c->k_gen = sd_alloc(gen);
        c->v_gen = sd_alloc(gen);
        c->anc = sd_alloc(anc);
        c->anc_tmp = sd_alloc(anc);
    }
    if (!ok || !c->k_pre || !c->v_pre || !c->k_gen || !c->v_gen || !c->anc || !c->anc_tmp) {
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
    free(c);
}

void sd_llama_cache_reset(sd_llama_cache *c) { c->n_prefix = c->n_steps = 0; }
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

/* Key (or value) vector of layer l at absolute position j for beam b; positions below n_pre are
 * in the prefix (during a prefill n_pre counts the rows being added). */
static const float *kv_at(const sd_llama_cache *c, const float *pre, const float *gen, size_t l,
                          size_t b, size_t j, size_t n_pre) {
    if (j < n_pre) return pre + (l * c->max_prefix + j) * c->KV;
    size_t s = j - n_pre;
    size_t slot = (size_t)c->anc[b * c->max_steps + s];
    return gen + ((l * c->max_steps + s) * c->n_beams + slot) * c->KV;
}

/* ---- forward -------------------------------------------------------------------------------- */

/* Rotates adjacent pairs of each head of v[n_heads * d] for position pos. */
static void rope(float *v, int n_heads, int d, size_t pos, float base) {
    for (int i = 0; i < d / 2; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / d);
        float cs = (float)cos(theta), sn = (float)sin(theta);
        for (int h = 0; h < n_heads; h++) {
            float *p = v + (size_t)h * d + 2 * i;
            float a = p[0], b = p[1];
            p[0] = a * cs - b * sn;
            p[1] = a * sn + b * cs;
        }
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* rows = M; step = 0: rows are prefix positions n_prefix..n_prefix+M-1; step = 1: rows are beams
 * at position n_prefix + n_steps. */
static sd_status forward(const sd_llama *m, sd_llama_cache *c, const float *x_in, size_t M,
                         int step, sd_llama_out *out, sd_error *err) {
    const sd_llama_hparams *hp = &m->hp;
    const size_t D = (size_t)hp->n_embd, KV = c->KV, F = (size_t)hp->n_ff;
    const int H = hp->n_head, Hkv = hp->n_head_kv, d = hp->head_dim, L = hp->n_layer;
    const size_t T = c->n_prefix + (step ? c->n_steps + 1 : M); /* keys seen by the last row */
    const size_t n_pre = step ? c->n_prefix : c->n_prefix + M;  /* prefix positions, these rows' included */
    float *x = sd_alloc(M * D * sizeof(float));     /* [M, D] residual stream */
    float *xn = sd_alloc(M * D * sizeof(float));    /* [M, D] normed */
    float *q = sd_alloc(M * D * sizeof(float));     /* [M, H d] */
    float *kk = sd_alloc(M * KV * sizeof(float));   /* [M, KV] */
    float *vv = sd_alloc(M * KV * sizeof(float));   /* [M, KV] */
    float *att = sd_alloc(M * D * sizeof(float));   /* [M, H d] */
    float *g = sd_alloc(M * F * sizeof(float));     /* [M, F] */
    float *u = sd_alloc(M * F * sizeof(float));     /* [M, F] */
    float *sc = sd_alloc(M * (size_t)H * T * sizeof(float)); /* [M, H, T] attention weights */
    float *hs = out && out->hidden_sum ? out->hidden_sum : NULL;
    sd_status s = SD_OK;
    if (!x || !xn || !q || !kk || !vv || !att || !g || !u || !sc) {
        s = sd_fail(err, SD_E_NOMEM, "llama: out of memory for %zu rows", M);
        goto done;
    }
    memcpy(x, x_in, M * D * sizeof(float));
    if (hs) memset(hs, 0, M * D * sizeof(float));
    /* HF hidden_states entries: E_0 = input, E_i = output of block i-1 (i < L), E_L = final norm.
     * The sum takes E_{L-3}, E_{L-2}, E_{L-1} and E_L. */
    if (hs && L - 3 == 0)
        for (size_t i = 0; i < M * D; i++) hs[i] += x[i];
    const float scale = 1.0f / sqrtf((float)d);
    for (int l = 0; l < L; l++) {
        const layer_w *w = &m->layers[l];
        for (size_t r = 0; r < M; r++) sd_llm_rmsnorm(xn + r * D, x + r * D, w->attn_norm, D, hp->rms_eps);
        sd_llm_matmul(&w->q, xn, M, q);
        sd_llm_matmul(&w->k, xn, M, kk);
        sd_llm_matmul(&w->v, xn, M, vv);
        for (size_t r = 0; r < M; r++) {
            size_t pos = step ? c->n_prefix + c->n_steps : c->n_prefix + r;
            rope(q + r * D, H, d, pos, hp->rope_base);
            rope(kk + r * KV, Hkv, d, pos, hp->rope_base);
            float *kdst, *vdst;
            if (step) {
                size_t off = (((size_t)l * c->max_steps + c->n_steps) * c->n_beams + r) * KV;
                kdst = c->k_gen + off;
                vdst = c->v_gen + off;
            } else {
                size_t off = ((size_t)l * c->max_prefix + pos) * KV;
                kdst = c->k_pre + off;
                vdst = c->v_pre + off;
            }
            memcpy(kdst, kk + r * KV, KV * sizeof(float));
            memcpy(vdst, vv + r * KV, KV * sizeof(float));
        }
        /* Attention, one (row, head) per iteration. */
SD_OMP(omp parallel for schedule(dynamic, 1))
        for (int64_t rh = 0; rh < (int64_t)M * H; rh++) {
            size_t r = (size_t)rh / (size_t)H;
            int h = (int)(rh % H), hk = h / (H / Hkv);
            size_t n_keys = step ? c->n_prefix + c->n_steps + 1 : c->n_prefix + r + 1;
            size_t b = step ? r : 0;
            const float *qh = q + r * D + (size_t)h * d;
            float *p = sc + (size_t)rh * T;
            float mx = -INFINITY;
            for (size_t j = 0; j < n_keys; j++) {
                const float *kj = kv_at(c, c->k_pre, c->k_gen, (size_t)l, b, j, n_pre) + (size_t)hk * d;
                float dot = 0;
                for (int i = 0; i < d; i++) dot += qh[i] * kj[i];
                p[j] = dot * scale;
                if (p[j] > mx) mx = p[j];
            }
            double sum = 0;
            for (size_t j = 0; j < n_keys; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            float inv = (float)(1.0 / sum);
            float *o = att + r * D + (size_t)h * d;
            for (int i = 0; i < d; i++) o[i] = 0;
            for (size_t j = 0; j < n_keys; j++) {
                const float *vj = kv_at(c, c->v_pre, c->v_gen, (size_t)l, b, j, n_pre) + (size_t)hk * d;
                float pj = p[j] * inv;
                for (int i = 0; i < d; i++) o[i] += pj * vj[i];
            }
        }
        sd_llm_matmul(&w->o, att, M, xn);
        for (size_t i = 0; i < M * D; i++) x[i] += xn[i];
        for (size_t r = 0; r < M; r++) sd_llm_rmsnorm(xn + r * D, x + r * D, w->ffn_norm, D, hp->rms_eps);
        sd_llm_matmul(&w->gate, xn, M, g);
        sd_llm_matmul(&w->up, xn, M, u);
        for (size_t i = 0; i < M * F; i++) g[i] = silu(g[i]) * u[i];
        sd_llm_matmul(&w->down, g, M, xn);
        for (size_t i = 0; i < M * D; i++) x[i] += xn[i];
        if (out && out->layers) memcpy(out->layers + (size_t)l * M * D, x, M * D * sizeof(float));
        if (hs && l >= L - 4 && l <= L - 2)
            for (size_t i = 0; i < M * D; i++) hs[i] += x[i];
    }
    for (size_t r = 0; r < M; r++) sd_llm_rmsnorm(xn + r * D, x + r * D, m->output_norm, D, hp->rms_eps);
    if (hs)
        for (size_t i = 0; i < M * D; i++) hs[i] += xn[i];
    if (out && out->normed) memcpy(out->normed, xn, M * D * sizeof(float));
    if (out && out->logits) {
        if (step || out->all_logits) sd_llm_matmul(&m->output, xn, M, out->logits);
        else sd_llm_matmul(&m->output, xn + (M - 1) * D, 1, out->logits);
    }
done:
    sd_free(x);
    sd_free(xn);
    sd_free(q);
    sd_free(kk);
    sd_free(vv);
    sd_free(att);
    sd_free(g);
    sd_free(u);
    sd_free(sc);
    return s;
}

sd_status sd_llama_prefill(const sd_llama *m, sd_llama_cache *c, const float *x, size_t N,
                           sd_llama_out *out, sd_error *err) {
    if (N == 0) return sd_fail(err, SD_E_ARG, "llama: empty prefill");
    if (c->n_steps) return sd_fail(err, SD_E_ARG, "llama: prefill after generation steps");
    if (N > c->max_prefix - c->n_prefix)
        return sd_fail(err, SD_E_ARG, "llama: prefix of %zu + %zu positions exceeds the cache's %zu",
                       c->n_prefix, N, c->max_prefix);
    sd_status s = forward(m, c, x, N, 0, out, err);
    if (!s) c->n_prefix += N;
    return s;
}

sd_status sd_llama_step(const sd_llama *m, sd_llama_cache *c, const float *x, size_t B,
                        sd_llama_out *out, sd_error *err) {
    if (B == 0 || B > c->n_beams)
        return sd_fail(err, SD_E_ARG, "llama: step with %zu beams (cache holds %zu)", B, c->n_beams);
    if (c->n_prefix == 0) return sd_fail(err, SD_E_ARG, "llama: step before any prefill");
    if (c->n_steps >= c->max_steps)
        return sd_fail(err, SD_E_ARG, "llama: more than %zu steps", c->max_steps);
    for (size_t b = 0; b < c->n_beams; b++) c->anc[b * c->max_steps + c->n_steps] = (int)b;
    sd_status s = forward(m, c, x, B, 1, out, err);
    if (!s) c->n_steps++;
    return s;
}
