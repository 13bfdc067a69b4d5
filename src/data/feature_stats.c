/* Per-dimension feature statistics in one streamed pass over the batches (feature_stats.h). */
#include "data/feature_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Running sums of one modality, shifted by the first frame seen (K): sum (x - K), sum (x - K)^2.
 * The variance is then exact to double rounding whatever the mean (F0 near 150 Hz with a std of 3
 * loses nothing). */
typedef struct {
    int D;
    int64_t n;
    double *shift, *s1, *s2;
    double max_abs;
} accum;

static void accum_frame(accum *a, const float *x) {
    if (a->n == 0)
        for (int d = 0; d < a->D; d++) a->shift[d] = x[d];
    for (int d = 0; d < a->D; d++) {
        double v = (double)x[d] - a->shift[d];
        a->s1[d] += v;
        a->s2[d] += v * v;
        double m = fabs((double)x[d]);
        if (m > a->max_abs) a->max_abs = m;
    }
    a->n++;
}

void sd_feature_stats_free(sd_feature_stats *s) {
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        free(s->m[m].mean);
        free(s->m[m].std);
    }
    memset(s, 0, sizeof *s);
}

sd_status sd_feature_stats_compute(const sd_dataset *ds, int split, const int max_frames[SD_MOD_COUNT],
                                   sd_cap_mode cap_mode, const sd_cache *cache, sd_feature_stats *out,
                                   sd_error *err) {
    memset(out, 0, sizeof *out);
    accum acc[SD_MOD_COUNT];
    memset(acc, 0, sizeof acc);
    sd_status st = SD_OK;
    for (int m = 0; m < SD_MOD_COUNT && !st; m++) {
        if (m == SD_MOD_SIM && !sd_dataset_has_sim(ds)) continue;
        acc[m].D = sd_dataset_dim(ds, m);
        acc[m].shift = calloc((size_t)acc[m].D + 1, sizeof(double));
        acc[m].s1 = calloc((size_t)acc[m].D + 1, sizeof(double));
        acc[m].s2 = calloc((size_t)acc[m].D + 1, sizeof(double));
        if (!acc[m].shift || !acc[m].s1 || !acc[m].s2) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    for (int s = 0; s < SD_SPLIT_COUNT && !st; s++) {
        if ((split >= 0 && s != split) || sd_dataset_size(ds, (sd_split)s) == 0) continue;
        sd_batcher_options bo = sd_batcher_default_options();
        bo.split = (sd_split)s;
        bo.batch_size = 64;
        bo.shuffle = 0;
        bo.modalities = SD_MODS_ALL;
        if (max_frames) memcpy(bo.max_frames, max_frames, sizeof bo.max_frames);
        bo.cap_mode = cap_mode;
        bo.cache = cache;
        sd_batcher *b = NULL;
        if ((st = sd_batcher_open(ds, &bo, &b, err))) break;
        const sd_batch *batch;
        int r;
        while ((r = sd_batcher_next(b, &batch, err)) == 1)
            for (int m = 0; m < SD_MOD_COUNT; m++) {
                if (!batch->x[m] || !acc[m].D) continue;
                for (int i = 0; i < batch->B; i++)
                    for (int t = 0; t < batch->len[m][i]; t++) /* real frames only, never padding */
                        accum_frame(&acc[m], (const float *)batch->x[m] + ((size_t)i * (size_t)batch->T[m] + (size_t)t) * (size_t)acc[m].D);
            }
        if (r < 0) st = err && err->code ? err->code : SD_E_IO;
        sd_batcher_close(b);
    }
    for (int m = 0; m < SD_MOD_COUNT && !st; m++) {
        accum *a = &acc[m];
        if (!a->D) continue;
        sd_modality_stats *o = &out->m[m];
        o->dim = a->D;
        o->frames = a->n;
        o->max_abs = a->max_abs;
        o->mean = malloc(sizeof(double) * (size_t)a->D);
        o->std = malloc(sizeof(double) * (size_t)a->D);
        if (!o->mean || !o->std) {
            st = sd_fail(err, SD_E_NOMEM, "out of memory");
            break;
        }
        for (int d = 0; d < a->D; d++) {
            double n = a->n ? (double)a->n : 1.0, m1 = a->s1[d] / n;
            double var = a->s2[d] / n - m1 * m1;
            o->mean[d] = a->shift[d] + m1;
            o->std[d] = var > 0.0 ? sqrt(var) : 0.0;
        }
    }
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        free(acc[m].shift);
        free(acc[m].s1);
        free(acc[m].s2);
    }
    if (st) sd_feature_stats_free(out);
    return st;
}

void sd_feature_scale_summary(const sd_modality_stats *s, char *buf, size_t size, int *warn) {
    double lo = INFINITY, hi = 0.0;
    int constant = 0;
    for (int d = 0; d < s->dim; d++) {
        /* constant up to float rounding of the values */
        if (s->std[d] <= 1e-6 * fmax(fabs(s->mean[d]), 1e-30)) {
            constant++;
            continue;
        }
        lo = fmin(lo, s->std[d]);
        hi = fmax(hi, s->std[d]);
    }
    int n = 0;
    if (hi > 0.0)
        n = snprintf(buf, size, "std %.3g .. %.3g (%.0fx), |x| up to %.3g", lo, hi, hi / lo, s->max_abs);
    else
        n = snprintf(buf, size, "every dim constant, |x| up to %.3g", s->max_abs);
    if (constant && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", %d constant dim%s", constant, constant == 1 ? "" : "s");
    *warn = (hi > 0.0 && hi / lo > 100.0) || s->max_abs > 100.0;
}
