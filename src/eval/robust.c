/* The robustness sweep: the plan of conditions, the noise scale, and one pass over the split in
 * which each batch is corrupted once per (seed, condition) and fed to every model. */
#include "eval/robust.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "data/batch.h"
#include "model/flow.h"
#include "train/train.h"

const char *sd_condition_kind_name(sd_condition_kind k) {
    switch (k) {
    case SD_COND_CLEAN: return "clean";
    case SD_COND_MISSING: return "missing";
    case SD_COND_DROP: return "drop";
    case SD_COND_NOISE: return "noise";
    case SD_COND_PATTERN: return "pattern";
    }
    return "?";
}

const char *sd_flow_name(int missing) { return missing ? "missing" : "full"; }

void sd_condition_target(const sd_condition *c, char *buf, size_t n) {
    static const char *sweep[8] = {"", "audio", "text", "", "video", "", "", "all"};
    if (c->kind == SD_COND_CLEAN) {
        snprintf(buf, n, "%s", "");
    } else if (c->kind != SD_COND_PATTERN) {
        snprintf(buf, n, "%s", sweep[c->slots & 7u]);
    } else {
        const char *names[3] = {"a", "t", "v"};
        size_t used = 0;
        buf[0] = '\0';
        for (int k = 0; k < 3; k++)
            if ((c->slots >> k) & 1u)
                used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s%s", used ? "+" : "", names[k]);
    }
}

static const float default_levels[10] = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
static const uint64_t default_seeds[3] = {1, 2, 3};

sd_robust_options sd_robust_default_options(void) {
    sd_robust_options o;
    memset(&o, 0, sizeof o);
    o.split = SD_SPLIT_TEST;
    o.seeds = default_seeds;
    o.n_seeds = 3;
    o.rates = o.drop = o.noise = default_levels;
    o.n_rates = o.n_drop = o.n_noise = 10;
    o.targets = 15u;
    o.patterns = 127u;
    o.flows = 3;
    o.batch_size = 64;
    return o;
}

/* Sweep targets in order: audio, text, video, all. */
static const unsigned target_slots[4] = {SD_SLOT_AUDIO, SD_SLOT_TEXT, SD_SLOT_VIDEO, SD_SLOTS_ALL};

sd_status sd_robust_plan(const sd_robust_options *o, int has_sim, sd_condition **out, int *n, sd_error *err) {
    const int per_flow = 1 + 4 * (o->n_rates + o->n_drop + o->n_noise) + 7;
    sd_condition *c = malloc(sizeof *c * (size_t)(2 * per_flow));
    if (!c) return sd_fail(err, SD_E_NOMEM, "out of memory");
    const sd_condition_kind kinds[3] = {SD_COND_MISSING, SD_COND_DROP, SD_COND_NOISE};
    const float *levels[3] = {o->rates, o->drop, o->noise};
    const int counts[3] = {o->n_rates, o->n_drop, o->n_noise};
    int k = 0;
    for (int flow = 0; flow < 2; flow++) {
        if (!((o->flows >> flow) & 1) || (flow == 1 && !has_sim)) continue;
        c[k++] = (sd_condition){SD_COND_CLEAN, 0, 0.0f, flow};
        for (int kind = 0; kind < 3; kind++)
            for (int t = 0; t < 4; t++) {
                if (!((o->targets >> t) & 1u)) continue;
                for (int l = 0; l < counts[kind]; l++)
                    c[k++] = (sd_condition){kinds[kind], target_slots[t], levels[kind][l], flow};
            }
        for (unsigned p = 1; p <= 7; p++)
            if (((o->patterns >> (p - 1)) & 1u) && !(flow == 1 && (p & SD_SLOT_TEXT)))
                c[k++] = (sd_condition){SD_COND_PATTERN, p, 0.0f, flow};
    }
    if (k == 0) {
        free(c);
        return sd_fail(err, SD_E_ARG, "nothing to evaluate: no flow (the text-missing flow needs simulated text)");
    }
    *out = c;
    *n = k;
    return SD_OK;
}

static sd_batcher_options split_batcher(sd_split split, int batch_size, unsigned modalities) {
    sd_batcher_options bo = sd_batcher_default_options();
    bo.split = split;
    bo.batch_size = batch_size > 0 ? batch_size : 64;
    bo.shuffle = 0;
    bo.modalities = modalities;
    return bo;
}

sd_status sd_feature_std(const sd_dataset *ds, sd_split split, int modality, float *scale, sd_error *err) {
    const int D = sd_dataset_dim(ds, modality);
    double *acc = calloc((size_t)(2 * D + 1), sizeof *acc); /* [2][D]: sum, sum of squares */
    if (!acc) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_batcher_options bo = split_batcher(split, 64, SD_MOD_BIT(modality));
    sd_batcher *b = NULL;
    sd_status st = sd_batcher_open(ds, &bo, &b, err);
    double frames = 0.0;
    const sd_batch *batch;
    int r = 0;
    while (!st && (r = sd_batcher_next(b, &batch, err)) == 1) {
        for (int i = 0; i < batch->B; i++) {
            const float *x = (const float *)batch->x[modality] + (size_t)i * (size_t)batch->T[modality] * (size_t)D;
            for (int t = 0; t < batch->len[modality][i]; t++)
                for (int d = 0; d < D; d++) {
                    double v = x[(size_t)t * (size_t)D + (size_t)d];
                    acc[d] += v;
                    acc[D + d] += v * v;
                }
            frames += batch->len[modality][i];
        }
    }
    if (!st && r < 0) st = err ? err->code : SD_E_IO;
    sd_batcher_close(b);
    for (int d = 0; !st && d < D; d++) {
        double mean = frames > 0 ? acc[d] / frames : 0.0, var = frames > 0 ? acc[D + d] / frames - mean * mean : 0.0;
        scale[d] = (float)sqrt(var > 0 ? var : 0.0);
    }
    free(acc);
    return st;
}

/* Scratch of one batch: the draws of one seed per modality and the corrupted copies per slot. */
typedef struct {
    float *u[3][SD_MOD_COUNT]; /* [kind][modality] [B*T] frame draws (missing, noise unused, drop) */
    float *eps[SD_MOD_COUNT];  /* [B*T*D] noise draws */
    float *work[3];            /* [B*T*D] corrupted copy of each slot */
    size_t cap_u[3][SD_MOD_COUNT], cap_eps[SD_MOD_COUNT], cap_work[3];
} batch_scratch;

static float *grow(float **p, size_t *cap, size_t n) {
    if (n <= *cap && *p) return *p;
    sd_free(*p);
    *p = sd_alloc((n ? n : 1) * sizeof(float));
    *cap = *p ? n : 0;
    return *p;
}

static void scratch_free(batch_scratch *s) {
    for (int k = 0; k < 3; k++) {
        for (int m = 0; m < SD_MOD_COUNT; m++) sd_free(s->u[k][m]);
        sd_free(s->work[k]);
    }
    for (int m = 0; m < SD_MOD_COUNT; m++) sd_free(s->eps[m]);
}

/* The draws of one seed for the loaded modalities of a batch, for the kinds the plan uses. */
static sd_status draw_batch(batch_scratch *s, const sd_dataset *ds, sd_split split, const sd_batch *b,
                            uint64_t seed, const int need_kind[3], sd_error *err) {
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        if (!b->x[m]) continue;
        const size_t T = (size_t)b->T[m], D = (size_t)b->D[m];
        for (int kind = 0; kind < 3; kind++) {
            if (!need_kind[kind]) continue;
            float *dst = kind == SD_CORRUPT_NOISE ? grow(&s->eps[m], &s->cap_eps[m], (size_t)b->B * T * D)
                                                   : grow(&s->u[kind][m], &s->cap_u[kind][m], (size_t)b->B * T);
            if (!dst) return sd_fail(err, SD_E_NOMEM, "out of memory");
            for (int i = 0; i < b->B; i++) {
                uint64_t stream = sd_corrupt_stream(sd_dataset_name(ds, split, b->index[i]), m, (sd_corrupt_kind)kind);
                if (kind == SD_CORRUPT_NOISE)
                    sd_corrupt_noise_draws(seed, stream, b->len[m][i], (int)D, dst + (size_t)i * T * D);
                else
                    sd_corrupt_frame_draws(seed, stream, b->len[m][i], dst + (size_t)i * T);
            }
        }
    }
    return SD_OK;
}

/* 1 when condition c changes slot k (whose modality is mod) of flow c->missing. */
static int slot_changed(const sd_condition *c, int k) {
    const unsigned bit = 1u << k;
    switch (c->kind) {
    case SD_COND_CLEAN: return 0;
    case SD_COND_PATTERN: {
        unsigned present = c->slots;
        /* The simulated text comes from the audio: present exactly when the audio is. */
        if (c->missing && (present & SD_SLOT_AUDIO)) present |= SD_SLOT_TEXT;
        return !(present & bit);
    }
    default: return (c->slots & bit) && c->level != 0.0f;
    }
}

/* The input of flow c->missing under condition c: untouched slots point at the batch, changed
 * slots at their corrupted copy in s->work. */
static sd_status build_input(batch_scratch *s, const sd_batch *b, const sd_condition *c, float *const *scale,
                             sd_flow_input *in, sd_error *err) {
    *in = sd_flow_input_from_batch(b, c->missing);
    for (int k = 0; k < 3; k++) {
        if (!slot_changed(c, k)) continue;
        const int m = k == 1 ? (c->missing ? SD_MOD_SIM : SD_MOD_TEXT) : k;
        const size_t T = (size_t)b->T[m], D = (size_t)b->D[m], n = (size_t)b->B * T * D;
        float *x = grow(&s->work[k], &s->cap_work[k], n);
        if (!x) return sd_fail(err, SD_E_NOMEM, "out of memory");
        if (c->kind == SD_COND_PATTERN) {
            memset(x, 0, sizeof(float) * n);
        } else {
            memcpy(x, b->x[m], sizeof(float) * n);
            for (int i = 0; i < b->B; i++) {
                float *xi = x + (size_t)i * T * D;
                const int len = b->len[m][i];
                if (c->kind == SD_COND_MISSING)
                    sd_corrupt_missing(xi, len, (int)D, s->u[SD_CORRUPT_MISSING][m] + (size_t)i * T, c->level);
                else if (c->kind == SD_COND_DROP)
                    sd_corrupt_drop(xi, len, (int)D, s->u[SD_CORRUPT_DROP][m] + (size_t)i * T, c->level);
                else
                    sd_corrupt_noise(xi, len, (int)D, s->eps[m] + (size_t)i * T * D, c->level, scale[m]);
            }
        }
        in->x[k] = x;
    }
    return SD_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Names, files and seeds copied into the result (it outlives the caller's arrays). */
static sd_status result_init(sd_robust_result *r, const sd_robust_model *models, int n_models,
                             const sd_robust_options *o, sd_error *err) {
    r->n_models = n_models;
    r->n_seeds = o->n_seeds;
    r->model_names = calloc((size_t)n_models, sizeof(char *));
    r->files = calloc((size_t)n_models * (size_t)o->n_seeds, sizeof(char *));
    r->seeds = malloc(sizeof(uint64_t) * (size_t)o->n_seeds);
    int ok = r->model_names && r->files && r->seeds;
    for (int m = 0; ok && m < n_models; m++) {
        ok = (r->model_names[m] = dup_str(models[m].name)) != NULL;
        for (int s = 0; ok && s < o->n_seeds; s++)
            ok = (r->files[(size_t)m * (size_t)o->n_seeds + (size_t)s] = dup_str(models[m].files[s])) != NULL;
    }
    if (ok) memcpy(r->seeds, o->seeds, sizeof(uint64_t) * (size_t)o->n_seeds);
    r->split = sd_split_name(o->split);
    return ok ? SD_OK : sd_fail(err, SD_E_NOMEM, "out of memory");
}

sd_status sd_robust_run(const sd_dataset *ds, const sd_robust_model *models, int n_models,
                        const sd_robust_options *o, sd_robust_result *res, sd_error *err) {
    memset(res, 0, sizeof *res);
    if (n_models < 1 || o->n_seeds < 1) return sd_fail(err, SD_E_ARG, "robustness: no model or no seed");
    for (int m = 0; m < n_models; m++)
        if (!models[m].name[0] || strpbrk(models[m].name, "\r\n")) /* commas and quotes: results.csv quotes them */
            return sd_fail(err, SD_E_ARG, "model name '%s': it must be non-empty, without line breaks", models[m].name);
    const double t0 = now_s();
    const int has_sim = sd_dataset_has_sim(ds) && ((o->flows >> 1) & 1);
    sd_status st = result_init(res, models, n_models, o, err);
    if (!st) st = sd_robust_plan(o, has_sim, &res->conditions, &res->n_conditions, err);
    if (st) {
        sd_robust_result_free(res);
        return st;
    }
    res->has_sim = has_sim;
    const int C = res->n_conditions, S = o->n_seeds;
    int need_kind[3] = {0, 0, 0}, flows_used[2] = {0, 0};
    for (int c = 0; c < C; c++) {
        const sd_condition *cd = &res->conditions[c];
        flows_used[cd->missing] = 1;
        if (cd->kind == SD_COND_MISSING) need_kind[SD_CORRUPT_MISSING] = 1;
        if (cd->kind == SD_COND_DROP) need_kind[SD_CORRUPT_DROP] = 1;
        if (cd->kind == SD_COND_NOISE) need_kind[SD_CORRUPT_NOISE] = 1;
    }
    for (int m = 0; m < n_models && !st; m++)
        for (int s = 0; s < S && !st; s++)
            for (int f = 0; f < 2 && !st; f++)
                if (flows_used[f] && (st = sd_check_model_inputs(models[m].per_seed[s], ds, f, err)))
                    sd_error_prefix(err, "%s", models[m].files[s]);
    unsigned mods = SD_MOD_BIT(SD_MOD_AUDIO) | SD_MOD_BIT(SD_MOD_VIDEO);
    if (flows_used[0]) mods |= SD_MOD_BIT(SD_MOD_TEXT);
    if (flows_used[1]) mods |= SD_MOD_BIT(SD_MOD_SIM);
    const int64_t n = sd_dataset_size(ds, o->split);
    res->n = n;
    float *scale[SD_MOD_COUNT] = {NULL, NULL, NULL, NULL};
    for (int m = 0; m < SD_MOD_COUNT && !st; m++) {
        if (!need_kind[SD_CORRUPT_NOISE] || !((mods >> m) & 1u)) continue;
        scale[m] = malloc(sizeof(float) * (size_t)sd_dataset_dim(ds, m));
        st = scale[m] ? sd_feature_std(ds, o->split, m, scale[m], err) : sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    /* preds [n_models][C][S][n] */
    const size_t per_run = (size_t)(n > 0 ? n : 1);
    float *preds = st ? NULL : malloc(sizeof(float) * (size_t)n_models * (size_t)C * (size_t)S * per_run);
    float *y = st ? NULL : malloc(sizeof(float) * per_run);
    res->metrics = st ? NULL : calloc((size_t)n_models * (size_t)C * (size_t)S, sizeof(sd_metrics));
    sd_flow *flow = st ? NULL : sd_flow_new();
    if (!st && (!preds || !y || !res->metrics || !flow)) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    batch_scratch scratch;
    memset(&scratch, 0, sizeof scratch);
    sd_batcher *batcher = NULL;
    sd_batcher_options bo = split_batcher(o->split, o->batch_size, mods);
    if (!st) st = sd_batcher_open(ds, &bo, &batcher, err);
    const sd_batch *b;
    int r = 0;
    int64_t done = 0;
    while (!st && (r = sd_batcher_next(batcher, &b, err)) == 1) {
        for (int i = 0; i < b->B; i++) y[b->index[i]] = b->label[i];
        for (int s = 0; s < S && !st; s++) {
            st = draw_batch(&scratch, ds, o->split, b, o->seeds[s], need_kind, err);
            for (int c = 0; c < C && !st; c++) {
                const sd_condition *cd = &res->conditions[c];
                sd_flow_input in;
                if ((st = build_input(&scratch, b, cd, scale, &in, err))) break;
                for (int m = 0; m < n_models && !st; m++) {
                    if ((st = sd_flow_forward(flow, models[m].per_seed[s], &in, cd->missing, 0, NULL, err))) break;
                    float *p = preds + (((size_t)m * (size_t)C + (size_t)c) * (size_t)S + (size_t)s) * per_run;
                    for (int i = 0; i < b->B; i++) p[b->index[i]] = flow->pred[i];
                }
            }
        }
        done += b->B;
        if (!st && o->on_progress) o->on_progress(done, n, o->user);
    }
    if (!st && r < 0) st = err ? err->code : SD_E_IO;
    for (size_t k = 0; !st && k < (size_t)n_models * (size_t)C * (size_t)S; k++)
        sd_metrics_compute(preds + k * per_run, y, (size_t)n, &res->metrics[k]);
    sd_batcher_close(batcher);
    scratch_free(&scratch);
    sd_flow_free(flow);
    for (int m = 0; m < SD_MOD_COUNT; m++) free(scale[m]);
    free(preds);
    free(y);
    res->seconds = now_s() - t0;
    if (st) sd_robust_result_free(res);
    return st;
}

void sd_robust_result_free(sd_robust_result *r) {
    for (int m = 0; r->model_names && m < r->n_models; m++) free(r->model_names[m]);
    for (size_t k = 0; r->files && k < (size_t)r->n_models * (size_t)r->n_seeds; k++) free(r->files[k]);
    free(r->model_names);
    free(r->files);
    free(r->seeds);
    free(r->conditions);
    free(r->metrics);
    memset(r, 0, sizeof *r);
}
