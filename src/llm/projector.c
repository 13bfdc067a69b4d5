/* Speech projector; see projector.h for the legend. */
#include "llm/projector.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gemm.h"
#include "io/safetensors.h"

struct sd_projector {
    int k;
    int64_t Df, Dh, Do;
    float *w1, *b1; /* [Dh, k Df], [Dh] */
    float *w2, *b2; /* [Do, Dh], [Do] */
};

/* The tensor whose name is `suffix` or ends in "." suffix; NULL when none or several. */
static const sd_st_tensor *find_suffix(const sd_safetensors *st, const char *suffix, int *count) {
    const sd_st_tensor *found = NULL;
    size_t ls = strlen(suffix);
    *count = 0;
    for (int i = 0; i < sd_st_count(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        size_t ln = strlen(t->name);
        if (ln == ls ? !strcmp(t->name, suffix)
                     : ln > ls && !strcmp(t->name + ln - ls, suffix) && t->name[ln - ls - 1] == '.') {
            found = t;
            ++*count;
        }
    }
    return *count == 1 ? found : NULL;
}

static sd_status load_tensor(const char *path, const sd_safetensors *st, const char *suffix, int ndim,
                             int64_t d0, int64_t d1, float **out, const sd_st_tensor **tout,
                             sd_error *err) {
    int count;
    const sd_st_tensor *t = find_suffix(st, suffix, &count);
    if (!t)
        return sd_fail(err, SD_E_SHAPE, "%s: %s tensor '*%s' in the projector", path,
                       count ? "more than one" : "no", suffix);
    if (t->ndim != ndim || (d0 >= 0 && t->shape[0] != d0) || (ndim == 2 && d1 >= 0 && t->shape[1] != d1))
        return sd_fail(err, SD_E_SHAPE, "%s: projector tensor '%s' has an unexpected shape", path,
                       t->name);
    if (!(*out = sd_alloc(t->numel * sizeof(float)))) return sd_fail(err, SD_E_NOMEM, "out of memory");
    if (tout) *tout = t;
    return sd_st_read_f32(st, t, *out, err);
}

sd_status sd_projector_load(const char *path, int k, sd_projector **out, sd_error *err) {
    *out = NULL;
    if (k < 1) return sd_fail(err, SD_E_ARG, "projector: k = %d", k);
    sd_safetensors *st = NULL;
    sd_status s = sd_st_open(path, &st, err);
    if (s) return s;
    sd_projector *p = calloc(1, sizeof *p);
    if (!p) {
        sd_st_close(st);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    p->k = k;
    const sd_st_tensor *t1 = NULL, *t2 = NULL;
    s = load_tensor(path, st, "linear1.weight", 2, -1, -1, &p->w1, &t1, err);
    if (!s) {
        p->Dh = t1->shape[0];
        if (t1->shape[1] % k)
            s = sd_fail(err, SD_E_SHAPE, "%s: linear1.weight input dim %lld is not a multiple of k = %d",
                        path, (long long)t1->shape[1], k);
        p->Df = t1->shape[1] / k;
    }
    if (!s) s = load_tensor(path, st, "linear1.bias", 1, p->Dh, 0, &p->b1, NULL, err);
    if (!s) s = load_tensor(path, st, "linear2.weight", 2, -1, p->Dh, &p->w2, &t2, err);
    if (!s) p->Do = t2->shape[0];
    if (!s) s = load_tensor(path, st, "linear2.bias", 1, p->Do, 0, &p->b2, NULL, err);
    sd_st_close(st);
    if (s) {
        sd_projector_free(p);
        return s;
    }
    *out = p;
    return SD_OK;
}

void sd_projector_free(sd_projector *p) {
    if (!p) return;
    sd_free(p->w1);
    sd_free(p->b1);
    sd_free(p->w2);
    sd_free(p->b2);
    free(p);
}

int64_t sd_projector_feat_dim(const sd_projector *p) { return p->Df; }
int64_t sd_projector_out_dim(const sd_projector *p) { return p->Do; }
int sd_projector_k(const sd_projector *p) { return p->k; }

sd_status sd_projector_forward(const sd_projector *p, const float *feats, size_t T, size_t Df,
                               float **out, size_t *n_out, sd_error *err) {
    *out = NULL;
    *n_out = 0;
    if ((int64_t)Df != p->Df)
        return sd_fail(err, SD_E_SHAPE, "features have dim %zu, the projector expects %lld", Df,
                       (long long)p->Df);
    size_t R = T / (size_t)p->k; /* output frames; the last T mod k input frames are dropped */
    if (R == 0)
        return sd_fail(err, SD_E_SHAPE, "%zu feature frames: fewer than the %d one projected frame needs",
                       T, p->k);
    size_t Kin = (size_t)p->k * Df, Dh = (size_t)p->Dh, Do = (size_t)p->Do;
    /* Row r of the concatenated input is feats rows kr..kr+k-1, contiguous in memory already:
     * feats viewed as [R, k Df] with row stride k Df. */
    float *hid = sd_alloc(R * Dh * sizeof(float)); /* [R, Dh] */
    float *y = sd_alloc(R * Do * sizeof(float));   /* [R, Do] */
    if (!hid || !y) {
        sd_free(hid);
        sd_free(y);
        return sd_fail(err, SD_E_NOMEM, "projector: out of memory for %zu frames", R);
    }
    for (size_t r = 0; r < R; r++) memcpy(hid + r * Dh, p->b1, Dh * sizeof(float));
    sd_sgemm(0, 1, R, Dh, Kin, 1.0f, feats, Kin, p->w1, Kin, 1.0f, hid, Dh);
    for (size_t i = 0; i < R * Dh; i++)
        if (hid[i] < 0) hid[i] = 0;
    for (size_t r = 0; r < R; r++) memcpy(y + r * Do, p->b2, Do * sizeof(float));
    sd_sgemm(0, 1, R, Do, Dh, 1.0f, hid, Dh, p->w2, Dh, 1.0f, y, Do);
    sd_free(hid);
    *out = y;
    *n_out = R;
    return SD_OK;
}
