/* The SDUMC parameter list, in the reference module's state_dict order (MODEL.md appendix).
 *
 * One walk over the architecture serves two purposes: building the table (names, shapes,
 * which tensors are used) and binding named pointers into a flat buffer. Keeping both in
 * one function means the list exists once. The Makefile also compiles this file in double
 * (core/real.h): that build holds only sd_model_bind_f64, for the flows' double build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "core/array.h"
#include "core/real.h"
#include "model/model.h"

typedef struct {
    sd_param_table *build;        /* build mode: append here */
    unsigned char *use;           /* build mode: use of each tensor (grown with the table) */
    size_t use_cap;
    const sd_param_table *table;  /* bind mode: read offsets here */
    real *base;                   /* bind mode: buffer */
    int next;                     /* bind mode: next tensor index */
    int failed;
} walker;

static real *tensor(walker *w, const char *name, int ndim, int64_t d0, int64_t d1, sd_param_use use) {
    int64_t shape[2] = {d0, d1};
    if (w->build) {
        int i = sd_params_add(w->build, name, ndim, shape);
        if (i < 0) {
            w->failed = 1;
            return NULL;
        }
        if ((size_t)i >= w->use_cap) {
            unsigned char *u = sd_array_grow(w->use, &w->use_cap, (size_t)i + 1, 1, 128);
            if (!u) {
                w->failed = 1;
                return NULL;
            }
            w->use = u;
        }
        w->use[i] = (unsigned char)use;
        return NULL;
    }
    return w->base + w->table->specs[w->next++].offset;
}

static void linear(walker *w, const char *prefix, int out, int in, sd_param_use use, SD_R(sd_linear_ptrs) *dst) {
    char name[3 * SD_PARAM_NAME_MAX]; /* prefix + suffix, checked by sd_params_add */
    snprintf(name, sizeof name, "%s.weight", prefix);
    dst->W = tensor(w, name, 2, out, in, use);
    snprintf(name, sizeof name, "%s.bias", prefix);
    dst->b = tensor(w, name, 1, out, 0, use);
}

/* MLP(in, "d0[,d1]"): Sequential(Linear, ReLU, Dropout, ...), so linears are .0 and .3. */
static void mlp(walker *w, const char *prefix, int in, int n, int d0, int d1, SD_R(sd_mlp_ptrs) *dst) {
    char name[2 * SD_PARAM_NAME_MAX];
    dst->n = n;
    snprintf(name, sizeof name, "%s.0", prefix);
    linear(w, name, d0, in, SD_USE_ALWAYS, &dst->l[0]);
    if (n == 2) {
        snprintf(name, sizeof name, "%s.3", prefix);
        linear(w, name, d1, d0, SD_USE_ALWAYS, &dst->l[1]);
    }
}

static void mia(walker *w, const char *prefix, int D, int L, SD_R(sd_mia_ptrs) *dst) {
    char name[2 * SD_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.transition.0", prefix);
    linear(w, name, D, 3 * D, SD_USE_MIA, &dst->transition0);
    snprintf(name, sizeof name, "%s.transition.2", prefix);
    linear(w, name, D, D, SD_USE_MIA, &dst->transition2);
    snprintf(name, sizeof name, "%s.encoder_0.0", prefix);
    linear(w, name, L, D, SD_USE_MIA, &dst->encoder);
    snprintf(name, sizeof name, "%s.decoder_0.0", prefix);
    linear(w, name, D, L, SD_USE_MIA, &dst->decoder);
}

static const char *const query_names[SD_QUERY_VIEWS] = {"fused", "at", "tv", "av",
                                                         "audio", "text", "video"};
static const char *const modality_names[3] = {"audio", "text", "video"};

static void walk(walker *w, const sd_model_config *cfg, SD_R(sd_model_ptrs) *p) {
    const int H = cfg->hidden, C = H / 2, R = H / 4;
    char name[SD_PARAM_NAME_MAX];
    SD_R(sd_linear_ptrs) unused;
    for (int m = 0; m < 3; m++) {
        snprintf(name, sizeof name, "frame_dim_reshape_%d", m);
        linear(w, name, H, cfg->dim[m], SD_USE_ALWAYS, &p->frame[m]);
    }
    mia(w, "missing_text_imagination_mlp", H, C, &p->mia1);
    mia(w, "missing_cross_text_query_imagination_mlp", C, R, &p->mia2);
    for (int m = 0; m < 3; m++) {
        snprintf(name, sizeof name, "fra2utt_%d.attention_context_vector", m);
        p->pool[m].context = tensor(w, name, 2, 1, H, SD_USE_ALWAYS);
        snprintf(name, sizeof name, "fra2utt_%d.input_proj", m);
        linear(w, name, H, H, SD_USE_ALWAYS, &p->pool[m].proj);
    }
    for (int m = 0; m < 3; m++) {
        snprintf(name, sizeof name, "%s_mlp", modality_names[m]);
        mlp(w, name, H, 2, H, H, &p->modality_mlp[m]);
    }
    mlp(w, "attention_mlp", 3 * H, 2, H, H, &p->attention_mlp);
    linear(w, "fc_att", 3, H, SD_USE_ALWAYS, &p->fc_att);
    for (int q = 0; q < SD_QUERY_VIEWS; q++) {
        snprintf(name, sizeof name, "cross_%s_query_mlp", query_names[q]);
        mlp(w, name, H, 1, H, 0, &p->query_mlp[q]);
    }
    for (int m = 0; m < 3; m++) {
        snprintf(name, sizeof name, "cross_att_fra2utt_%d.query_proj", m);
        linear(w, name, H, H, SD_USE_ALWAYS, &p->cross[m].query);
        snprintf(name, sizeof name, "cross_att_fra2utt_%d.input_proj", m);
        linear(w, name, H, H, SD_USE_ALWAYS, &p->cross[m].input);
    }
    for (int m = 0; m < 3; m++) {
        snprintf(name, sizeof name, "cross_%s_mlp", modality_names[m]);
        mlp(w, name, H, 2, H, C, &p->cross_mlp[m]);
    }
    mlp(w, "cross_attention_mlp", SD_QUERY_VIEWS * C, 2, H, C, &p->cross_attention_mlp);
    linear(w, "cross_fc_att", SD_QUERY_VIEWS, C, SD_USE_ALWAYS, &p->cross_fc_att);
    linear(w, "fc_out_e", 1, C, SD_USE_NEVER, &unused);
    linear(w, "fc_out_v", 1, C, SD_USE_ALWAYS, &p->fc_out_v);
    linear(w, "fc_out_ev", 1, 1, SD_USE_NEVER, &unused);
    linear(w, "orgin_linear_change.0", R, C, SD_USE_ALWAYS, &p->rnc0);
    linear(w, "orgin_linear_change.2", R, R, SD_USE_ALWAYS, &p->rnc2);
    tensor(w, "prelu.weight", 1, 6, 0, SD_USE_NEVER);
    tensor(w, "layer_normali.weight", 1, H, 0, SD_USE_NEVER);
    tensor(w, "layer_normali.bias", 1, H, 0, SD_USE_NEVER);
}

#ifndef SD_REAL_DOUBLE /* the double build holds sd_model_bind_f64 only */
sd_model_config sd_model_default_config(int dim_a, int dim_t, int dim_v) {
    sd_model_config c;
    memset(&c, 0, sizeof c);
    c.dim[0] = dim_a;
    c.dim[1] = dim_t;
    c.dim[2] = dim_v;
    c.hidden = 256;
    c.mia = 1;
    c.mask = 1;
    c.p_mlp = 0.3f;
    c.p_att = 0.5f;
    c.seed = 0;
    snprintf(c.preset, sizeof c.preset, "paper");
    return c;
}

static sd_status check_config(const sd_model_config *cfg, sd_error *err) {
    for (int m = 0; m < 3; m++)
        if (cfg->dim[m] <= 0 || cfg->dim[m] > (1 << 24))
            return sd_fail(err, SD_E_ARG, "%s input dim %d is out of range", modality_names[m],
                           cfg->dim[m]);
    if (cfg->hidden < 4 || cfg->hidden % 4 != 0 || cfg->hidden > 65536)
        return sd_fail(err, SD_E_ARG, "hidden dim %d must be a positive multiple of 4", cfg->hidden);
    if (!(cfg->p_mlp >= 0.0f && cfg->p_mlp < 1.0f) || !(cfg->p_att >= 0.0f && cfg->p_att < 1.0f))
        return sd_fail(err, SD_E_ARG, "dropout rates must lie in [0, 1) (got %g and %g)",
                       (double)cfg->p_mlp, (double)cfg->p_att);
    return SD_OK;
}

#endif

void SD_R(sd_model_bind)(const SD_R(sd_model) *m, real *buffer, SD_R(sd_model_ptrs) *out) {
    walker w;
    memset(&w, 0, sizeof w);
    w.table = &m->table;
    w.base = buffer;
    walk(&w, &m->cfg, out);
}

#ifndef SD_REAL_DOUBLE
sd_status sd_model_alloc(const sd_model_config *cfg, sd_model **out, sd_error *err) {
    *out = NULL;
    sd_status st = check_config(cfg, err);
    if (st) return st;
    sd_model *m = calloc(1, sizeof *m);
    if (!m) return sd_fail(err, SD_E_NOMEM, "out of memory creating the model");
    m->cfg = *cfg;
    sd_params_init(&m->table);
    walker w;
    memset(&w, 0, sizeof w);
    w.build = &m->table;
    sd_model_ptrs scratch;
    walk(&w, cfg, &scratch);
    m->use = w.use;
    if (w.failed || !(m->params = sd_params_alloc_buffer(&m->table))) {
        sd_model_free(m);
        return sd_fail(err, SD_E_NOMEM, "out of memory creating the model's parameter table");
    }
    sd_model_bind(m, m->params, &m->p);
    *out = m;
    return SD_OK;
}

sd_status sd_model_create(const sd_model_config *cfg, sd_model **out, sd_error *err) {
    sd_status st = sd_model_alloc(cfg, out, err);
    if (st) return st;
    sd_model_init_params(*out, cfg->seed);
    return SD_OK;
}

sd_status sd_model_prepare_inference(sd_model *m, sd_error *err) {
    const size_t H = (size_t)m->cfg.hidden;
    for (int i = 0; i < 3; i++) {
        const size_t D = (size_t)m->cfg.dim[i];
        if (!m->frame_wt[i]) {
            size_t bytes = 0;
            if (!sd_mul_size(D, H, &bytes) || !sd_mul_size(bytes, sizeof(float), &bytes) ||
                !(m->frame_wt[i] = sd_alloc(bytes)))
                return sd_fail(err, SD_E_NOMEM, "out of memory: transposed frame weights");
        }
        const float *W = m->p.frame[i].W; /* [H, D] */
        float *Wt = m->frame_wt[i];       /* [D, H] */
        for (size_t o = 0; o < H; o++)
            for (size_t k = 0; k < D; k++) Wt[k * H + o] = W[o * D + k];
    }
    return SD_OK;
}

void sd_model_free(sd_model *m) {
    if (!m) return;
    for (int i = 0; i < 3; i++) sd_free(m->frame_wt[i]);
    sd_params_release(&m->table);
    free(m->use);
    if (m->mapping)
        munmap(m->mapping, m->mapping_size); /* params pointed into it */
    else
        sd_free(m->params);
    free(m);
}

int sd_model_tensor_used(const sd_model *m, int i) {
    switch ((sd_param_use)m->use[i]) {
    case SD_USE_ALWAYS: return 1;
    case SD_USE_MIA: return m->cfg.mia;
    case SD_USE_NEVER: return 0;
    }
    return 0;
}

size_t sd_model_param_count(const sd_model *m, int used_only) {
    size_t n = 0;
    for (int i = 0; i < m->table.count; i++)
        if (!used_only || sd_model_tensor_used(m, i)) n += m->table.specs[i].numel;
    return n;
}
#endif
