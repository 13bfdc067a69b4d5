/* WavLM model files: tensor names (prefixes stripped), the configuration from shapes and metadata,
 * the weights converted to float32 and re-laid for the GEMMs (wavlm_internal.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "wavlm/wavlm_internal.h"

/* ---- names --------------------------------------------------------------------------------- */

typedef struct {
    const char *name; /* stripped; points into the tensor's own name */
    const sd_st_tensor *t;
} named;

typedef struct {
    const sd_safetensors *st;
    const char *path;
    named *tab;
    size_t n;
} tensors;

static int cmp_named(const void *a, const void *b) {
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static const char *strip(const char *name) {
    for (;;) {
        if (!strncmp(name, "module.", 7)) name += 7;
        else if (!strncmp(name, "wavlm.", 6)) name += 6;
        else return name;
    }
}

static sd_status index_tensors(tensors *ts, sd_error *err) {
    int count = sd_st_count(ts->st);
    ts->tab = calloc((size_t)(count > 0 ? count : 1), sizeof *ts->tab);
    if (!ts->tab) return sd_fail(err, SD_E_NOMEM, "%s: out of memory", ts->path);
    for (int i = 0; i < count; i++) {
        const sd_st_tensor *t = sd_st_tensor_at(ts->st, i);
        ts->tab[ts->n++] = (named){strip(t->name), t};
    }
    qsort(ts->tab, ts->n, sizeof *ts->tab, cmp_named);
    for (size_t i = 1; i < ts->n; i++)
        if (!strcmp(ts->tab[i].name, ts->tab[i - 1].name))
            return sd_fail(err, SD_E_FORMAT, "%s: tensors '%s' and '%s' have the same name once the "
                           "'module.'/'wavlm.' prefixes are removed", ts->path, ts->tab[i - 1].t->name,
                           ts->tab[i].t->name);
    return SD_OK;
}

static const sd_st_tensor *find(const tensors *ts, const char *name) {
    named key = {name, NULL};
    const named *hit = ts->n ? bsearch(&key, ts->tab, ts->n, sizeof *ts->tab, cmp_named) : NULL;
    return hit ? hit->t : NULL;
}

static const sd_st_tensor *findf(const tensors *ts, const char *fmt, int i) {
    char name[160];
    snprintf(name, sizeof name, fmt, i);
    return find(ts, name);
}

/* Shape as "[a, b, c]" for messages. */
static const char *shape_str(const sd_st_tensor *t, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- metadata -------------------------------------------------------------------------------- */

/* An integer, a boolean ("true"/"false", any case, or 1/0) or a list of integers ("[5, 2]" or
 * "5,2") from __metadata__. Returns 1 when present and parsed, 0 when absent, -1 on a bad value. */
static int meta_ints(const sd_safetensors *st, const char *key, int *vals, int max, int *count) {
    const char *v = sd_st_metadata_get(st, key);
    if (!v) return 0;
    char buf[512];
    size_t len = strlen(v);
    if (len + 3 > sizeof buf) return -1;
    if (v[0] == '[') snprintf(buf, sizeof buf, "%s", v);
    else snprintf(buf, sizeof buf, "[%s]", v);
    for (char *p = buf; *p; p++) /* Python's True/False as JSON */
        if (!strncmp(p, "True", 4) || !strncmp(p, "true", 4)) memcpy(p, "1   ", 4);
        else if (!strncmp(p, "False", 5) || !strncmp(p, "false", 5)) memcpy(p, "0    ", 5);
    sd_json *j = NULL;
    if (sd_json_parse(buf, strlen(buf), &j, NULL)) return -1;
    int ok = j->type == SD_JSON_ARRAY && j->len >= 1 && (int)j->len <= max;
    for (size_t i = 0; ok && i < j->len; i++) {
        int64_t x;
        ok = !sd_json_get_i64(&j->items[i], &x) && x >= 0 && x <= 1000000;
        if (ok) vals[i] = (int)x;
    }
    if (ok) *count = (int)j->len;
    sd_json_free(j);
    return ok ? 1 : -1;
}

static sd_status meta_int(const sd_safetensors *st, const char *path, const char *key, int *out,
                          int *given, sd_error *err) {
    int n = 0, v = 0, r = meta_ints(st, key, &v, 1, &n);
    if (r < 0)
        return sd_fail(err, SD_E_FORMAT, "%s: metadata %s = '%s' is not a whole number (or true/false)",
                       path, key, sd_st_metadata_get(st, key));
    if (r > 0) *out = v;
    if (given) *given = r > 0;
    return SD_OK;
}

/* ---- configuration ------------------------------------------------------------------------- */

static sd_status need(const tensors *ts, const sd_st_tensor *t, const char *name, sd_error *err) {
    if (t) return SD_OK;
    return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' is missing", ts->path, name);
}

static sd_status infer_config(const tensors *ts, sd_wavlm_config *c, sd_error *err) {
    const char *path = ts->path;
    const sd_safetensors *st = ts->st;
    char sb[96];
    memset(c, 0, sizeof *c);
    /* Feature encoder. */
    if (!find(ts, "feature_extractor.conv_layers.0.conv.weight")) {
        if (find(ts, "feature_extractor.conv_layers.0.0.weight") || find(ts, "post_extract_proj.weight"))
            return sd_fail(err, SD_E_FORMAT, "%s: fairseq/unilm tensor names (a WavLM-Large.pt "
                           "checkpoint?): convert it with tools/wavlm2safetensors.py", path);
        return sd_fail(err, SD_E_FORMAT, "%s: not a WavLM model: tensor "
                       "'feature_extractor.conv_layers.0.conv.weight' is missing", path);
    }
    int in = 1;
    while (c->n_conv < SD_WAVLM_MAX_CONV) {
        const sd_st_tensor *w = findf(ts, "feature_extractor.conv_layers.%d.conv.weight", c->n_conv);
        if (!w) break;
        if (w->ndim != 3 || w->shape[1] != in || w->shape[0] < 1 || w->shape[0] > 65536 ||
            w->shape[2] < 1 || w->shape[2] > 4096)
            return sd_fail(err, SD_E_SHAPE, "%s: feature_extractor.conv_layers.%d.conv.weight has "
                           "shape %s, expected [C_out, %d, kernel]", path, c->n_conv,
                           shape_str(w, sb, sizeof sb), in);
        c->conv_dim[c->n_conv] = (int)w->shape[0];
        c->conv_kernel[c->n_conv] = (int)w->shape[2];
        in = (int)w->shape[0];
        c->n_conv++;
    }
    if (findf(ts, "feature_extractor.conv_layers.%d.conv.weight", c->n_conv))
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: more than %d conv layers", path, SD_WAVLM_MAX_CONV);
    c->conv_bias = find(ts, "feature_extractor.conv_layers.0.conv.bias") != NULL;
    if (find(ts, "feature_extractor.conv_layers.1.layer_norm.weight") ||
        (c->n_conv == 1 && find(ts, "feature_extractor.conv_layers.0.layer_norm.weight") &&
         sd_st_metadata_get(st, "feat_extract_norm") &&
         !strcmp(sd_st_metadata_get(st, "feat_extract_norm"), "layer")))
        c->conv_norm = SD_WAVLM_CONV_NORM_LAYER;
    else if (find(ts, "feature_extractor.conv_layers.0.layer_norm.weight"))
        c->conv_norm = SD_WAVLM_CONV_NORM_GROUP;
    else
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: the feature encoder has no normalisation layer "
                       "(feature_extractor.conv_layers.0.layer_norm.weight missing): neither "
                       "WavLM-Large's \"layer\" nor Base's \"group\" form", path);
    const char *fen = sd_st_metadata_get(st, "feat_extract_norm");
    if (fen && strcmp(fen, c->conv_norm == SD_WAVLM_CONV_NORM_LAYER ? "layer" : "group"))
        return sd_fail(err, SD_E_FORMAT, "%s: metadata feat_extract_norm = '%s' but the tensors hold "
                       "the \"%s\" form", path, fen,
                       c->conv_norm == SD_WAVLM_CONV_NORM_LAYER ? "layer" : "group");
    static const int std_kernel[7] = {10, 3, 3, 3, 3, 2, 2}, std_stride[7] = {5, 2, 2, 2, 2, 2, 2};
    int n_stride = 0;
    int r = meta_ints(st, "conv_stride", c->conv_stride, SD_WAVLM_MAX_CONV, &n_stride);
    if (r < 0 || (r > 0 && n_stride != c->n_conv))
        return sd_fail(err, SD_E_FORMAT, "%s: metadata conv_stride = '%s' is not a list of %d whole "
                       "numbers", path, sd_st_metadata_get(st, "conv_stride"), c->n_conv);
    if (r == 0) {
        int standard = c->n_conv == 7;
        for (int i = 0; standard && i < 7; i++) standard = c->conv_kernel[i] == std_kernel[i];
        if (!standard)
            return sd_fail(err, SD_E_FORMAT, "%s: the conv strides cannot be read from the tensors "
                           "and the kernels are not WavLM's 10,3,3,3,3,2,2: give conv_stride in the "
                           "metadata", path);
        memcpy(c->conv_stride, std_stride, sizeof std_stride);
    }
    c->hop = 1;
    c->receptive = 1;
    for (int i = 0; i < c->n_conv; i++) {
        if (c->conv_stride[i] < 1 || c->conv_stride[i] > 64)
            return sd_fail(err, SD_E_FORMAT, "%s: conv stride %d of layer %d is outside 1..64", path,
                           c->conv_stride[i], i);
        c->receptive += (c->conv_kernel[i] - 1) * c->hop;
        c->hop *= c->conv_stride[i];
        if (c->hop > 1000000 || c->receptive > 1000000)
            return sd_fail(err, SD_E_FORMAT, "%s: the conv stack spans more than 10^6 samples", path);
    }
    /* Projection, Transformer. */
    const sd_st_tensor *pw = find(ts, "feature_projection.projection.weight");
    sd_status s = need(ts, pw, "feature_projection.projection.weight", err);
    if (s) return s;
    if (pw->ndim != 2 || pw->shape[1] != in || pw->shape[0] < 1 || pw->shape[0] > 65536)
        return sd_fail(err, SD_E_SHAPE, "%s: feature_projection.projection.weight has shape %s, "
                       "expected [hidden, %d]", path, shape_str(pw, sb, sizeof sb), in);
    c->hidden = (int)pw->shape[0];
    while (c->n_layers < 1000 && findf(ts, "encoder.layers.%d.attention.q_proj.weight", c->n_layers))
        c->n_layers++;
    if (c->n_layers == 0)
        return sd_fail(err, SD_E_SHAPE, "%s: tensor 'encoder.layers.0.attention.q_proj.weight' is "
                       "missing (no Transformer layer)", path);
    const sd_st_tensor *gc = find(ts, "encoder.layers.0.attention.gru_rel_pos_const");
    const sd_st_tensor *re = find(ts, "encoder.layers.0.attention.rel_attn_embed.weight");
    if (!gc || !re)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: no gated relative position bias (tensor '%s' is "
                       "missing): a wav2vec2 or HuBERT model, not WavLM", path,
                       gc ? "encoder.layers.0.attention.rel_attn_embed.weight"
                          : "encoder.layers.0.attention.gru_rel_pos_const");
    if (gc->numel < 1 || gc->numel > 4096 || c->hidden % (int)gc->numel)
        return sd_fail(err, SD_E_SHAPE, "%s: encoder.layers.0.attention.gru_rel_pos_const has shape "
                       "%s: heads must divide the hidden size %d", path, shape_str(gc, sb, sizeof sb),
                       c->hidden);
    c->n_heads = (int)gc->numel;
    if (re->ndim != 2 || re->shape[1] != c->n_heads || re->shape[0] < 4 || re->shape[0] > 65536)
        return sd_fail(err, SD_E_SHAPE, "%s: encoder.layers.0.attention.rel_attn_embed.weight has "
                       "shape %s, expected [buckets >= 4, %d]", path, shape_str(re, sb, sizeof sb),
                       c->n_heads);
    c->num_buckets = (int)re->shape[0];
    const sd_st_tensor *f1 = find(ts, "encoder.layers.0.feed_forward.intermediate_dense.weight");
    if ((s = need(ts, f1, "encoder.layers.0.feed_forward.intermediate_dense.weight", err))) return s;
    if (f1->ndim != 2 || f1->shape[1] != c->hidden || f1->shape[0] < 1 || f1->shape[0] > 262144)
        return sd_fail(err, SD_E_SHAPE, "%s: encoder.layers.0.feed_forward.intermediate_dense.weight "
                       "has shape %s, expected [ffn, %d]", path, shape_str(f1, sb, sizeof sb), c->hidden);
    c->ffn = (int)f1->shape[0];
    const char *pv_names[3] = {"encoder.pos_conv_embed.conv.weight_v",
                               "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
                               "encoder.pos_conv_embed.conv.weight"};
    const sd_st_tensor *pv = NULL;
    for (int i = 0; i < 3 && !pv; i++) pv = find(ts, pv_names[i]);
    if (!pv)
        return sd_fail(err, SD_E_SHAPE, "%s: the positional conv's weight is missing (looked for "
                       "encoder.pos_conv_embed.conv.weight_v, .parametrizations.weight.original1 "
                       "and .weight)", path);
    if (pv->ndim != 3 || pv->shape[0] != c->hidden || pv->shape[1] < 1 || c->hidden % pv->shape[1] ||
        pv->shape[2] < 1 || pv->shape[2] > 4096)
        return sd_fail(err, SD_E_SHAPE, "%s: the positional conv's weight has shape %s, expected "
                       "[%d, %d / groups, kernel]", path, shape_str(pv, sb, sizeof sb), c->hidden,
                       c->hidden);
    c->pos_kernel = (int)pv->shape[2];
    c->pos_groups = c->hidden / (int)pv->shape[1];
    /* Metadata for what shapes do not show. */
    int v, given;
    c->max_distance = 800;
    if ((s = meta_int(st, path, "max_bucket_distance", &c->max_distance, NULL, err))) return s;
    if (c->max_distance < c->num_buckets / 4 + 1)
        return sd_fail(err, SD_E_FORMAT, "%s: max_bucket_distance %d must exceed buckets / 4 = %d",
                       path, c->max_distance, c->num_buckets / 4);
    c->stable_layer_norm = c->conv_norm == SD_WAVLM_CONV_NORM_LAYER;
    if ((s = meta_int(st, path, "do_stable_layer_norm", &c->stable_layer_norm, NULL, err))) return s;
    c->normalize = c->conv_norm == SD_WAVLM_CONV_NORM_LAYER;
    if ((s = meta_int(st, path, "do_normalize", &c->normalize, &given, err))) return s;
    if (!given && (s = meta_int(st, path, "normalize", &c->normalize, NULL, err))) return s;
    c->stable_layer_norm = c->stable_layer_norm != 0;
    c->normalize = c->normalize != 0;
    c->eps = 1e-5f;
    const char *e = sd_st_metadata_get(st, "layer_norm_eps");
    if (e) {
        char *end;
        double d = strtod(e, &end);
        if (end == e || *end || !(d > 0 && d < 1))
            return sd_fail(err, SD_E_FORMAT, "%s: metadata layer_norm_eps = '%s' is not a number in "
                           "(0, 1)", path, e);
        c->eps = (float)d;
    }
    /* Metadata that repeats what the shapes say must agree with them. */
    struct { const char *key; int have; } same[] = {
        {"num_hidden_layers", c->n_layers}, {"hidden_size", c->hidden},
        {"num_attention_heads", c->n_heads}, {"intermediate_size", c->ffn},
        {"num_buckets", c->num_buckets}, {"num_conv_pos_embeddings", c->pos_kernel},
        {"num_conv_pos_embedding_groups", c->pos_groups}, {"conv_bias", c->conv_bias},
        {"num_feat_extract_layers", c->n_conv}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        if ((s = meta_int(st, path, same[i].key, &v, &given, err))) return s;
        if (given && v != same[i].have)
            return sd_fail(err, SD_E_FORMAT, "%s: metadata %s = %d but the tensors say %d", path,
                           same[i].key, v, same[i].have);
    }
    return SD_OK;
}

/* ---- weights ----------------------------------------------------------------------------- */

typedef struct {
    const tensors *ts;
    float *next;  /* next free float in the parameter buffer (NULL while counting) */
    size_t count; /* floats taken */
    float *tmp;   /* conversion scratch, large enough for any tensor */
} loader;

static float *take(loader *ld, size_t n) {
    float *p = ld->next ? ld->next + ld->count : NULL;
    const size_t padded = (n + 15) & ~(size_t)15; /* 64-byte aligned pieces */
    if (p) memset(p + n, 0, (padded - n) * sizeof *p); /* the padding is read by the final check */
    ld->count += padded;
    return p;
}

/* Tensor name (printf with one int) with exactly numel elements and the given dims (-1: any). */
static sd_status get(loader *ld, const char *fmt, int idx, int ndim, const int64_t *dims, size_t numel,
                     const sd_st_tensor **out, sd_error *err) {
    char name[160];
    snprintf(name, sizeof name, fmt, idx);
    const sd_st_tensor *t = find(ld->ts, name);
    if (!t) return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' is missing", ld->ts->path, name);
    int ok = t->numel == numel && (ndim < 0 || t->ndim == ndim);
    for (int i = 0; ok && ndim > 0 && i < ndim; i++) ok = t->shape[i] == dims[i];
    if (!ok) {
        char sb[96], want[96];
        size_t k = (size_t)snprintf(want, sizeof want, "[");
        for (int i = 0; i < ndim && k < sizeof want; i++)
            k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
        if (k < sizeof want) snprintf(want + k, sizeof want - k, "]");
        return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' has shape %s, expected %s", ld->ts->path,
                       name, shape_str(t, sb, sizeof sb), ndim < 0 ? "(other)" : want);
    }
    *out = t;
    return SD_OK;
}

/* Copies tensor (fmt, idx) of shape dims into a new piece; *dst NULL while counting. */
static sd_status copy(loader *ld, float **dst, const char *fmt, int idx, int ndim, const int64_t *dims,
                      sd_error *err) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)dims[i];
    const sd_st_tensor *t;
    sd_status s = get(ld, fmt, idx, ndim, dims, numel, &t, err);
    if (s) return s;
    *dst = take(ld, numel);
    if (*dst) return sd_st_read_f32(ld->ts->st, t, *dst, err);
    return SD_OK;
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})

/* Conv i: PyTorch [C_out, C_in, k] -> [C_out, k, C_in]. */
static sd_status load_conv(loader *ld, sd_wavlm *m, int i, int c_in, sd_error *err) {
    const sd_wavlm_config *c = &m->cfg;
    const int64_t co = c->conv_dim[i], k = c->conv_kernel[i];
    const sd_st_tensor *t;
    sd_status s = get(ld, "feature_extractor.conv_layers.%d.conv.weight", i, 3, DIMS(co, c_in, k),
                      (size_t)(co * c_in * k), &t, err);
    if (s) return s;
    m->conv_w[i] = take(ld, (size_t)(co * c_in * k));
    if (m->conv_w[i]) {
        if ((s = sd_st_read_f32(ld->ts->st, t, ld->tmp, err))) return s;
        for (int64_t o = 0; o < co; o++)
            for (int64_t ci = 0; ci < c_in; ci++)
                for (int64_t j = 0; j < k; j++)
                    m->conv_w[i][(o * k + j) * c_in + ci] = ld->tmp[(o * c_in + ci) * k + j];
    }
    if (c->conv_bias &&
        (s = copy(ld, &m->conv_b[i], "feature_extractor.conv_layers.%d.conv.bias", i, 1, DIMS(co), err)))
        return s;
    if (c->conv_norm == SD_WAVLM_CONV_NORM_LAYER || i == 0) {
        if ((s = copy(ld, &m->norm_w[i], "feature_extractor.conv_layers.%d.layer_norm.weight", i, 1, DIMS(co), err)) ||
            (s = copy(ld, &m->norm_b[i], "feature_extractor.conv_layers.%d.layer_norm.bias", i, 1, DIMS(co), err)))
            return s;
    }
    return SD_OK;
}

/* Positional conv: weight = g v / ||v|| (norm over all but the kernel axis, dim=2 weight norm),
 * stored per group as [D/G out, K, D/G in]. */
static sd_status load_pos_conv(loader *ld, sd_wavlm *m, sd_error *err) {
    const sd_wavlm_config *c = &m->cfg;
    const int64_t D = c->hidden, G = c->pos_groups, Dg = D / G, K = c->pos_kernel;
    const tensors *ts = ld->ts;
    const char *vn = "encoder.pos_conv_embed.conv.weight_v", *gn = "encoder.pos_conv_embed.conv.weight_g";
    if (!find(ts, vn)) {
        vn = "encoder.pos_conv_embed.conv.parametrizations.weight.original1";
        gn = "encoder.pos_conv_embed.conv.parametrizations.weight.original0";
    }
    const int fused = !find(ts, vn);
    if (fused) vn = "encoder.pos_conv_embed.conv.weight";
    const sd_st_tensor *tv, *tg = NULL;
    sd_status s = get(ld, vn, 0, 3, DIMS(D, Dg, K), (size_t)(D * Dg * K), &tv, err);
    if (!s && !fused) s = get(ld, gn, 0, -1, NULL, (size_t)K, &tg, err);
    if (s) return s;
    if (tg && !(tg->ndim == 3 && tg->shape[0] == 1 && tg->shape[1] == 1) && tg->ndim != 1)
        return sd_fail(err, SD_E_SHAPE, "%s: tensor '%s' should have shape [1, 1, %lld]", ts->path, gn,
                       (long long)K);
    m->pos_w = take(ld, (size_t)(D * Dg * K));
    if (m->pos_w) {
        float *v = ld->tmp, *g = ld->tmp + D * Dg * K;
        if ((s = sd_st_read_f32(ts->st, tv, v, err)) || (tg && (s = sd_st_read_f32(ts->st, tg, g, err))))
            return s;
        double *scale = calloc((size_t)K, sizeof *scale); /* g_j / ||v[:, :, j]|| */
        if (!scale) return sd_fail(err, SD_E_NOMEM, "out of memory");
        for (int64_t i = 0; i < D * Dg; i++)
            for (int64_t j = 0; j < K; j++) scale[j] += (double)v[i * K + j] * v[i * K + j];
        for (int64_t j = 0; j < K; j++) scale[j] = !tg ? 1.0 : scale[j] > 0 ? g[j] / sqrt(scale[j]) : 0.0;
        for (int64_t o = 0; o < D; o++) {
            const int64_t grp = o / Dg, oo = o % Dg;
            for (int64_t ci = 0; ci < Dg; ci++)
                for (int64_t j = 0; j < K; j++)
                    m->pos_w[((grp * Dg + oo) * K + j) * Dg + ci] = (float)(v[(o * Dg + ci) * K + j] * scale[j]);
        }
        free(scale);
    }
    return copy(ld, &m->pos_b, "encoder.pos_conv_embed.conv.bias", 0, 1, DIMS(D), err);
}

static sd_status load_layer(loader *ld, sd_wavlm *m, int l, sd_error *err) {
    const sd_wavlm_config *c = &m->cfg;
    const int64_t D = c->hidden, F = c->ffn, H = c->n_heads, d = D / H;
    sd_wavlm_layer *w = &m->layers[l];
    sd_status s;
    /* q, k, v stacked into one [3D, D] matrix and one [3D] bias. */
    w->qkv_w = take(ld, (size_t)(3 * D * D));
    w->qkv_b = take(ld, (size_t)(3 * D));
    static const char *const qkv[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        char fw[96], fb[96];
        snprintf(fw, sizeof fw, "encoder.layers.%%d.attention.%s_proj.weight", qkv[i]);
        snprintf(fb, sizeof fb, "encoder.layers.%%d.attention.%s_proj.bias", qkv[i]);
        const sd_st_tensor *tw, *tb;
        if ((s = get(ld, fw, l, 2, DIMS(D, D), (size_t)(D * D), &tw, err)) ||
            (s = get(ld, fb, l, 1, DIMS(D), (size_t)D, &tb, err)))
            return s;
        if (w->qkv_w && ((s = sd_st_read_f32(ld->ts->st, tw, w->qkv_w + i * D * D, err)) ||
                         (s = sd_st_read_f32(ld->ts->st, tb, w->qkv_b + i * D, err))))
            return s;
    }
    const sd_st_tensor *tc;
    if ((s = copy(ld, &w->o_w, "encoder.layers.%d.attention.out_proj.weight", l, 2, DIMS(D, D), err)) ||
        (s = copy(ld, &w->o_b, "encoder.layers.%d.attention.out_proj.bias", l, 1, DIMS(D), err)) ||
        (s = get(ld, "encoder.layers.%d.attention.gru_rel_pos_const", l, -1, NULL, (size_t)H, &tc, err)) ||
        (s = copy(ld, &w->ln1_w, "encoder.layers.%d.layer_norm.weight", l, 1, DIMS(D), err)) ||
        (s = copy(ld, &w->ln1_b, "encoder.layers.%d.layer_norm.bias", l, 1, DIMS(D), err)) ||
        (s = copy(ld, &w->ln2_w, "encoder.layers.%d.final_layer_norm.weight", l, 1, DIMS(D), err)) ||
        (s = copy(ld, &w->ln2_b, "encoder.layers.%d.final_layer_norm.bias", l, 1, DIMS(D), err)) ||
        (s = copy(ld, &w->ff1_w, "encoder.layers.%d.feed_forward.intermediate_dense.weight", l, 2, DIMS(F, D), err)) ||
        (s = copy(ld, &w->ff1_b, "encoder.layers.%d.feed_forward.intermediate_dense.bias", l, 1, DIMS(F), err)) ||
        (s = copy(ld, &w->ff2_w, "encoder.layers.%d.feed_forward.output_dense.weight", l, 2, DIMS(D, F), err)) ||
        (s = copy(ld, &w->ff2_b, "encoder.layers.%d.feed_forward.output_dense.bias", l, 1, DIMS(D), err)))
        return s;
    w->gate_c = take(ld, (size_t)H);
    if (w->gate_c && (s = sd_st_read_f32(ld->ts->st, tc, w->gate_c, err))) return s;
    /* The gate uses only the sums of outputs 0..3 and 4..7 of gru_rel_pos_linear: keep the summed
     * rows [2, d] and biases [2]. */
    const sd_st_tensor *gw, *gb;
    if ((s = get(ld, "encoder.layers.%d.attention.gru_rel_pos_linear.weight", l, 2, DIMS(8, d),
                 (size_t)(8 * d), &gw, err)) ||
        (s = get(ld, "encoder.layers.%d.attention.gru_rel_pos_linear.bias", l, 1, DIMS(8), 8, &gb, err)))
        return s;
    w->gate_w = take(ld, (size_t)(2 * d));
    w->gate_b = take(ld, 2);
    if (w->gate_w) {
        float *tw = ld->tmp, *tb = ld->tmp + 8 * d;
        if ((s = sd_st_read_f32(ld->ts->st, gw, tw, err)) || (s = sd_st_read_f32(ld->ts->st, gb, tb, err)))
            return s;
        for (int half = 0; half < 2; half++) {
            double b = 0;
            for (int o = 4 * half; o < 4 * half + 4; o++) b += tb[o];
            w->gate_b[half] = (float)b;
            for (int64_t i = 0; i < d; i++) {
                double acc = 0;
                for (int o = 4 * half; o < 4 * half + 4; o++) acc += tw[o * d + i];
                w->gate_w[half * d + i] = (float)acc;
            }
        }
    }
    return SD_OK;
}

/* Every weight: a counting pass (ld->next NULL) sizes the buffer, a second pass fills it. */
static sd_status load_weights(loader *ld, sd_wavlm *m, sd_error *err) {
    const sd_wavlm_config *c = &m->cfg;
    const int64_t D = c->hidden, Cl = c->conv_dim[c->n_conv - 1];
    sd_status s = SD_OK;
    int c_in = 1;
    for (int i = 0; !s && i < c->n_conv; i++) {
        s = load_conv(ld, m, i, c_in, err);
        c_in = c->conv_dim[i];
    }
    if (!s) s = copy(ld, &m->fp_ln_w, "feature_projection.layer_norm.weight", 0, 1, DIMS(Cl), err);
    if (!s) s = copy(ld, &m->fp_ln_b, "feature_projection.layer_norm.bias", 0, 1, DIMS(Cl), err);
    if (!s) s = copy(ld, &m->proj_w, "feature_projection.projection.weight", 0, 2, DIMS(D, Cl), err);
    if (!s) s = copy(ld, &m->proj_b, "feature_projection.projection.bias", 0, 1, DIMS(D), err);
    if (!s) s = load_pos_conv(ld, m, err);
    if (!s) s = copy(ld, &m->enc_ln_w, "encoder.layer_norm.weight", 0, 1, DIMS(D), err);
    if (!s) s = copy(ld, &m->enc_ln_b, "encoder.layer_norm.bias", 0, 1, DIMS(D), err);
    if (!s) s = copy(ld, &m->rel_embed, "encoder.layers.0.attention.rel_attn_embed.weight", 0, 2,
                     DIMS(c->num_buckets, c->n_heads), err);
    for (int l = 0; !s && l < c->n_layers; l++) s = load_layer(ld, m, l, err);
    return s;
}

/* Largest tensor the loader converts through its scratch (conv and positional conv weights). */
static size_t scratch_floats(const sd_wavlm_config *c) {
    size_t mx = (size_t)c->hidden * (size_t)(c->hidden / c->pos_groups) * (size_t)c->pos_kernel +
                (size_t)c->pos_kernel;
    if ((size_t)(9 * c->hidden / c->n_heads + 8) > mx) mx = (size_t)(9 * c->hidden / c->n_heads + 8);
    int in = 1;
    for (int i = 0; i < c->n_conv; i++) {
        size_t n = (size_t)c->conv_dim[i] * (size_t)in * (size_t)c->conv_kernel[i];
        if (n > mx) mx = n;
        in = c->conv_dim[i];
    }
    return mx;
}

/* Asks for transparent huge pages over the 2 MB-aligned part of a large buffer: the 1.3 GB of
 * WavLM-Large's weights are then mapped in 2 MB pages instead of 4 KB ones (first-touch page
 * faults are slow in virtual machines). Only advice: nothing changes when the kernel declines. */
static void advise_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20, a = ((uintptr_t)p + huge - 1) & ~(huge - 1),
                    e = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}

static sd_status load(const sd_safetensors *st, const char *path, sd_wavlm **out, sd_error *err) {
    tensors ts = {st, path, NULL, 0};
    sd_wavlm *m = calloc(1, sizeof *m);
    sd_status s = m ? index_tensors(&ts, err) : sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    if (!s) s = infer_config(&ts, &m->cfg, err);
    if (!s && !(m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers)))
        s = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    loader ld = {&ts, NULL, 0, NULL};
    if (!s) s = load_weights(&ld, m, err); /* counts, checks every shape before allocating */
    if (!s) {
        m->n_params = ld.count;
        m->params = sd_alloc(ld.count * sizeof(float));
        if (m->params) advise_huge_pages(m->params, ld.count * sizeof(float));
        ld.tmp = sd_alloc(scratch_floats(&m->cfg) * sizeof(float));
        if (!m->params || !ld.tmp)
            s = sd_fail(err, SD_E_NOMEM, "%s: out of memory for %zu parameters", path, ld.count);
    }
    if (!s) {
        ld.next = m->params;
        ld.count = 0;
        s = load_weights(&ld, m, err);
    }
    for (size_t i = 0; !s && i < m->n_params; i++)
        if (!isfinite(m->params[i])) s = sd_fail(err, SD_E_NUMERIC, "%s: a weight is NaN or infinite", path);
    sd_free(ld.tmp);
    free(ts.tab);
    if (s) {
        sd_wavlm_free(m);
        return s;
    }
    *out = m;
    return SD_OK;
}

sd_status sd_wavlm_load(const char *path, sd_wavlm **out, sd_error *err) {
    *out = NULL;
    sd_safetensors *st = NULL;
    sd_status s = sd_st_open(path, &st, err);
    if (!s) s = load(st, path, out, err);
    sd_st_close(st);
    return s;
}

sd_status sd_wavlm_load_memory(const uint8_t *buf, size_t size, const char *name, sd_wavlm **out,
                               sd_error *err) {
    *out = NULL;
    sd_safetensors *st = NULL;
    sd_status s = sd_st_parse(buf, size, &st, err);
    if (s) sd_error_prefix(err, "%s", name);
    if (!s) s = load(st, name, out, err);
    sd_st_close(st);
    return s;
}

void sd_wavlm_free(sd_wavlm *m) {
    if (!m) return;
    sd_free(m->params);
    free(m->layers);
    free(m);
}

const sd_wavlm_config *sd_wavlm_get_config(const sd_wavlm *m) { return &m->cfg; }
size_t sd_wavlm_param_count(const sd_wavlm *m) { return m->n_params; }

size_t sd_wavlm_frames(const sd_wavlm_config *c, size_t n) {
    for (int i = 0; i < c->n_conv; i++) {
        if (n < (size_t)c->conv_kernel[i]) return 0;
        n = (n - (size_t)c->conv_kernel[i]) / (size_t)c->conv_stride[i] + 1;
    }
    return n;
}

void sd_wavlm_describe(const sd_wavlm *m, char *out, size_t cap) {
    const sd_wavlm_config *c = &m->cfg;
    snprintf(out, cap, "WavLM: %d layers, hidden %d, %d heads, ffn %d, %s, %s conv norm%s, %zu parameters",
             c->n_layers, c->hidden, c->n_heads, c->ffn, c->stable_layer_norm ? "pre-LN" : "post-LN",
             c->conv_norm == SD_WAVLM_CONV_NORM_LAYER ? "layer" : "group",
             c->normalize ? ", waveform normalised" : "", m->n_params);
}
