/* LLaMA decoder: loading a GGUF model (hyperparameters, weights, tokenizer) and the token
 * embedding; see llama.h for the legend. The cache is in llama_cache.c, the forward pass in
 * llama_forward.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/kernels_repack.h"
#include "llm/llama_internal.h"


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
        sd_llama_layer *w = &m->layers[l];
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

/* The seven product matrices of a layer, into mats[7]. */
static void layer_matrices(sd_llama_layer *w, sd_wmat **mats) {
    sd_wmat *const list[7] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
    memcpy(mats, list, sizeof list);
}

/* The matrices of the products: the layers' seven and the output head. */
static size_t product_matrices(sd_llama *m, sd_wmat **all, size_t max) {
    size_t n = 0;
    for (int l = 0; l < m->hp.n_layer && n + 7 <= max; l++, n += 7) layer_matrices(&m->layers[l], all + n);
    if (n < max) all[n++] = &m->output;
    return n;
}

/* Q8_0 / Q4_0 matrices repacked for the kernels in use (kernels_repack.h), each matrix's pages of
 * the file mapping released as it is packed (a tied output head keeps the embedding's rows
 * readable: they come back from the file). */
static sd_status repack_weights(sd_llama *m, sd_error *err) {
    if (!sd_llm_packed_in_use()) return SD_OK;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const size_t max = (size_t)m->hp.n_layer * 7 + 1;
    sd_wmat **all = malloc(max * sizeof *all);
    if (!all) return sd_fail(err, SD_E_NOMEM, "out of memory");
    const size_t n = product_matrices(m, all, max);
    for (size_t i = 0; i < n; i++) {
        if (sd_llm_repack(all[i], 1)) {
            free(all);
            return sd_fail(err, SD_E_NOMEM, "%s: out of memory repacking the weights (%zu bytes so far)",
                           sd_gguf_path(m->gguf), m->packed_bytes);
        }
        if (all[i]->packed) m->packed_bytes += sd_llm_packed_bytes(all[i]);
    }
    free(all);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    m->repack_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return SD_OK;
}

sd_status sd_llama_load(const char *path, sd_llama **out, sd_error *err) {
    return sd_llama_load_for(path, SD_LLM_ARITH_LLAMACPP, out, err);
}

sd_status sd_llama_load_for(const char *path, sd_llm_arith arith, sd_llama **out, sd_error *err) {
    *out = NULL;
    sd_llama *m = calloc(1, sizeof *m);
    if (!m) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_status s = sd_gguf_open(path, &m->gguf, err);
    if (!s) s = read_hparams(m, err);
    if (!s) s = sd_tokenizer_from_gguf(m->gguf, &m->tok, err);
    if (!s) s = load_weights(m, path, err);
    if (!s && arith == SD_LLM_ARITH_LLAMACPP) s = repack_weights(m, err);
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
            sd_wmat *mats[7];
            layer_matrices(&m->layers[l], mats);
            for (int i = 0; i < 7; i++) sd_llm_unpack(mats[i]);
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
        }
    sd_llm_unpack(&m->output);
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
        const sd_llama_layer *w = &m->layers[l];
        const sd_wmat *all[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        for (int i = 0; i < 7; i++) n += (size_t)all[i]->N * all[i]->row_bytes;
    }
    return n;
}

size_t sd_llama_packed_bytes(const sd_llama *m, double *seconds) {
    if (seconds) *seconds = m->repack_s;
    return m->packed_bytes;
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

