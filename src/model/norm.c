/* Input standardisation and its fold into the frame projections (norm.h). */
#include "model/norm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "io/json.h"
#include "io/safetensors.h"

static const char *const slot_name[3] = {"audio", "text", "video"};
static const int slot_modality[3] = {SD_MOD_AUDIO, SD_MOD_TEXT, SD_MOD_VIDEO};

int sd_norm_active(const sd_norm *n) { return n && n->dim[0] > 0; }

void sd_norm_free(sd_norm *n) {
    for (int k = 0; k < 3; k++) {
        free(n->mean[k]);
        free(n->std[k]);
        free(n->inv[k]);
    }
    memset(n, 0, sizeof *n);
}

static sd_status norm_alloc(sd_norm *n, const int dim[3], sd_error *err) {
    memset(n, 0, sizeof *n);
    for (int k = 0; k < 3; k++) {
        n->dim[k] = dim[k];
        n->mean[k] = calloc((size_t)dim[k] + 1, sizeof(float));
        n->std[k] = calloc((size_t)dim[k] + 1, sizeof(float));
        n->inv[k] = calloc((size_t)dim[k] + 1, sizeof(float));
        if (!n->mean[k] || !n->std[k] || !n->inv[k]) {
            sd_norm_free(n);
            return sd_fail(err, SD_E_NOMEM, "out of memory");
        }
    }
    return SD_OK;
}

static void set_inverse(sd_norm *n) {
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < n->dim[k]; d++) n->inv[k][d] = 1.0f / n->std[k][d];
}

sd_status sd_norm_from_stats(sd_norm *n, const sd_feature_stats *s, sd_error *err) {
    int dim[3];
    for (int k = 0; k < 3; k++) dim[k] = s->m[slot_modality[k]].dim;
    if (!dim[0] || !dim[1] || !dim[2]) return sd_fail(err, SD_E_ARG, "statistics of every modality are needed");
    sd_status st = norm_alloc(n, dim, err);
    if (st) return st;
    for (int k = 0; k < 3; k++) {
        const sd_modality_stats *m = &s->m[slot_modality[k]];
        double ms = 0.0;
        for (int d = 0; d < m->dim; d++) ms += m->std[d] * m->std[d];
        const double floor_k = 1e-4 * sqrt(ms / m->dim);
        for (int d = 0; d < m->dim; d++) {
            int constant = m->std[d] <= 1e-6 * fabs(m->mean[d]) || m->std[d] <= 0.0;
            n->mean[k][d] = (float)m->mean[d];
            n->std[k][d] = constant ? 1.0f : (float)fmax(m->std[d], floor_k);
        }
    }
    set_inverse(n);
    return SD_OK;
}

void sd_norm_apply(const sd_norm *n, int slot, float *x, int64_t T) {
    const int D = n->dim[slot];
    const float *mu = n->mean[slot], *inv = n->inv[slot];
    for (int64_t t = 0; t < T; t++) sd_norm_row(x + t * D, mu, inv, D);
}

/* fold = 1: W' = W inv, b' = b - W' mean; fold = 0: the inverse. In double, rounded once. */
static void transform(const sd_norm *n, const sd_model *m, const float *params, float *out, int fold) {
    if (out != params) memcpy(out, params, sizeof(float) * m->table.total);
    sd_model_ptrs in, o;
    sd_model_bind(m, (float *)params, &in);
    sd_model_bind(m, out, &o);
    const int H = m->cfg.hidden;
    for (int k = 0; k < 3; k++) {
        const int D = n->dim[k];
        const float *mu = n->mean[k], *inv = n->inv[k];
        for (int h = 0; h < H; h++) {
            const float *w = in.frame[k].W + (size_t)h * D;
            float *wo = o.frame[k].W + (size_t)h * D;
            double shift = 0.0; /* sum_d W'[h,d] mean[d] */
            for (int d = 0; d < D; d++) {
                double wf = fold ? (double)w[d] * inv[d] : (double)w[d]; /* the folded weight */
                shift += wf * mu[d];
                wo[d] = fold ? (float)wf : (float)((double)w[d] / inv[d]);
            }
            o.frame[k].b[h] = (float)((double)in.frame[k].b[h] + (fold ? -shift : shift));
        }
    }
}

void sd_norm_fold(const sd_norm *n, const sd_model *m, const float *params, float *out) {
    transform(n, m, params, out, 1);
}

void sd_norm_unfold(const sd_norm *n, const sd_model *m, const float *params, float *out) {
    transform(n, m, params, out, 0);
}

/* ---- metadata: "v0,v1,..." with %.9g (floats round-trip) ---- */

static sd_status put_list(sd_st_writer *w, const char *key, const float *v, int n, sd_error *err) {
    sd_strbuf b = {0};
    for (int i = 0; i < n; i++) sd_strbuf_printf(&b, "%s%.9g", i ? "," : "", (double)v[i]);
    sd_status st = b.failed ? sd_fail(err, SD_E_NOMEM, "out of memory") : sd_st_writer_set_metadata(w, key, b.data, err);
    sd_strbuf_free(&b);
    return st;
}

sd_status sd_norm_write_metadata(sd_st_writer *w, const void *norm, sd_error *err) {
    const sd_norm *n = norm;
    sd_status st = sd_st_writer_set_metadata(w, "normalize", "standard", err);
    for (int k = 0; k < 3 && !st; k++) {
        char key[64];
        snprintf(key, sizeof key, "norm_mean_%s", slot_name[k]);
        st = put_list(w, key, n->mean[k], n->dim[k], err);
        snprintf(key, sizeof key, "norm_std_%s", slot_name[k]);
        if (!st) st = put_list(w, key, n->std[k], n->dim[k], err);
    }
    return st;
}

static sd_status get_list(const sd_safetensors *st, const char *path, const char *key, float *v, int n, int positive,
                          sd_error *err) {
    const char *s = sd_st_metadata_get(st, key);
    if (!s) return sd_fail(err, SD_E_FORMAT, "%s: metadata lacks \"%s\"", path, key);
    for (int i = 0; i < n; i++) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || !isfinite(x) || (positive && !(x > 0.0)) || fabs(x) > 3.4e38)
            return sd_fail(err, SD_E_FORMAT, "%s: metadata \"%s\": value %d is not a %snumber", path, key, i,
                           positive ? "positive " : "");
        v[i] = (float)x;
        s = end;
        if (i + 1 < n && *s++ != ',')
            return sd_fail(err, SD_E_FORMAT, "%s: metadata \"%s\" holds %d values, the model's dim is %d", path, key,
                           i + 1, n);
    }
    if (*s) return sd_fail(err, SD_E_FORMAT, "%s: metadata \"%s\" holds more than %d values", path, key, n);
    return SD_OK;
}

sd_status sd_norm_read_metadata(const sd_safetensors *st, const char *path, const int dim[3], sd_norm *n,
                                int *present, sd_error *err) {
    *present = 0;
    const char *mode = sd_st_metadata_get(st, "normalize");
    if (!mode || !strcmp(mode, "none")) return SD_OK;
    if (strcmp(mode, "standard"))
        return sd_fail(err, SD_E_FORMAT, "%s: metadata \"normalize\" = \"%s\" (known: standard, none)", path, mode);
    sd_norm tmp;
    sd_status s = norm_alloc(&tmp, dim, err);
    for (int k = 0; k < 3 && !s; k++) {
        char key[64];
        snprintf(key, sizeof key, "norm_mean_%s", slot_name[k]);
        s = get_list(st, path, key, tmp.mean[k], dim[k], 0, err);
        snprintf(key, sizeof key, "norm_std_%s", slot_name[k]);
        if (!s) s = get_list(st, path, key, tmp.std[k], dim[k], 1, err);
    }
    if (s) {
        sd_norm_free(&tmp);
        return s;
    }
    set_inverse(&tmp);
    *n = tmp;
    *present = 1;
    return SD_OK;
}

int sd_norm_file_has_stats(const char *path) {
    sd_safetensors *st = NULL;
    if (sd_st_open(path, &st, NULL)) return 0;
    const char *mode = sd_st_metadata_get(st, "normalize");
    int yes = mode && !strcmp(mode, "standard");
    sd_st_close(st);
    return yes;
}

sd_status sd_norm_read_file(const char *path, const int dim[3], sd_norm *n, int *present, sd_error *err) {
    sd_safetensors *st = NULL;
    sd_status s = sd_st_open(path, &st, err);
    if (!s) s = sd_norm_read_metadata(st, path, dim, n, present, err);
    sd_st_close(st);
    return s;
}
