/* Seed file names and the validation/test summary over training seeds. */
#include "eval/seeds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/stats.h"
#include "io/atomic_file.h"
#include "io/csv.h"
#include "io/json.h"
#include "train/metrics.h"
#include "train/train.h"

static const char ext[] = ".safetensors";

/* Length of out without the .safetensors ending. */
static size_t stem_len(const char *out) {
    size_t n = strlen(out), e = sizeof ext - 1;
    return n > e && !strcmp(out + n - e, ext) ? n - e : n;
}

sd_status sd_seed_model_path(const char *out, uint64_t seed, char *buf, size_t n, sd_error *err) {
    size_t s = stem_len(out);
    int w = snprintf(buf, n, "%.*s.seed%llu%s", (int)s, out, (unsigned long long)seed, s < strlen(out) ? ext : "");
    return w >= 0 && (size_t)w < n ? SD_OK : sd_fail(err, SD_E_ARG, "%s: path too long", out);
}

sd_status sd_seed_summary_path(const char *out, const char *suffix, char *buf, size_t n, sd_error *err) {
    int w = snprintf(buf, n, "%.*s%s", (int)stem_len(out), out, suffix);
    return w >= 0 && (size_t)w < n ? SD_OK : sd_fail(err, SD_E_ARG, "%s: path too long", out);
}

sd_status sd_seed_summary(const sd_dataset *const *dss, const char *name, const uint64_t *seeds, const sd_model *const *models,
                          int n_seeds, const char *csv_path, const char *txt_path, char **table, sd_error *err) {
    const sd_split splits[2] = {SD_SPLIT_VALID, SD_SPLIT_TEST};
    const sd_dataset *ds = dss[0];
    const int flows = sd_dataset_has_sim(ds) ? 2 : 1;
    sd_metrics *met = calloc((size_t)(4 * n_seeds), sizeof *met); /* [split][flow][seed] */
    int64_t nmax = 1;
    for (int s = 0; s < n_seeds; s++)
        for (int sp = 0; sp < 2; sp++)
            if (sd_dataset_size(dss[s], splits[sp]) > nmax) nmax = sd_dataset_size(dss[s], splits[sp]);
    float *pred = malloc(sizeof(float) * (size_t)nmax), *y = malloc(sizeof(float) * (size_t)nmax);
    sd_status st = met && pred && y ? SD_OK : sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int sp = 0; sp < 2 && !st; sp++)
        for (int s = 0; s < n_seeds && !st; s++) {
            const int64_t n = sd_dataset_size(dss[s], splits[sp]);
            for (int64_t i = 0; i < n; i++) y[i] = sd_dataset_label(dss[s], splits[sp], i);
            for (int f = 0; f < flows && n > 0 && !st; f++) {
                st = sd_predict_split(models[s], dss[s], splits[sp], f, NULL, n, 64, pred, err);
                if (!st) sd_metrics_compute(pred, y, (size_t)n, &met[(sp * 2 + f) * n_seeds + s]);
            }
        }
    sd_atomic_file af;
    if (!st) st = sd_atomic_open(&af, csv_path, err);
    if (!st) {
        fprintf(af.f, "model,condition,target,flow,rate,seed," SD_METRICS_CSV_COLUMNS "\n");
        for (int sp = 0; sp < 2; sp++)
            for (int f = 0; f < flows && sd_dataset_size(ds, splits[sp]) > 0; f++)
                for (int s = 0; s < n_seeds; s++) {
                    sd_csv_write_field(af.f, name); /* the --out file's name: quoted when it needs it */
                    fprintf(af.f, ",%s,,%s,,%llu,", sd_split_name(splits[sp]), f ? "missing" : "full",
                            (unsigned long long)seeds[s]);
                    sd_metrics_write_csv_fields(af.f, &met[(sp * 2 + f) * n_seeds + s]);
                    fprintf(af.f, "\n");
                }
        st = sd_atomic_commit(&af, err);
    }
    sd_strbuf t = {0};
    if (!st) {
        sd_strbuf_printf(&t, "%s: mean +- sd over %d seeds (", name, n_seeds);
        for (int s = 0; s < n_seeds; s++) sd_strbuf_printf(&t, "%s%llu", s ? ", " : "", (unsigned long long)seeds[s]);
        sd_strbuf_printf(&t, ")\n%-14s", "split / flow");
        for (int k = 0; k < SD_METRIC_COUNT; k++) sd_strbuf_printf(&t, " %17s", sd_metric_labels[k]);
        sd_strbuf_puts(&t, "\n");
        for (int sp = 0; sp < 2; sp++)
            for (int f = 0; f < flows && sd_dataset_size(ds, splits[sp]) > 0; f++) {
                sd_strbuf_printf(&t, "%-14s", f ? (sp ? "test missing" : "valid missing") : (sp ? "test full" : "valid full"));
                for (int k = 0; k < SD_METRIC_COUNT; k++) {
                    double v[256], mean, sd;
                    int n = n_seeds < 256 ? n_seeds : 256;
                    for (int s = 0; s < n; s++) v[s] = sd_metric_value(&met[(sp * 2 + f) * n_seeds + s], k);
                    sd_mean_sd(v, (size_t)n, &mean, &sd, NULL);
                    char cell[48];
                    if (!isfinite(mean))
                        snprintf(cell, sizeof cell, "n/a");
                    else if (isfinite(sd))
                        snprintf(cell, sizeof cell, "%.4f+-%.4f", mean, sd);
                    else
                        snprintf(cell, sizeof cell, "%.4f", mean);
                    sd_strbuf_printf(&t, " %17s", cell);
                }
                sd_strbuf_puts(&t, "\n");
            }
        st = t.failed ? sd_fail(err, SD_E_NOMEM, "out of memory") : sd_atomic_write_file(txt_path, t.data, t.len, err);
    }
    if (!st && table) {
        *table = t.data;
        t.data = NULL;
    }
    sd_strbuf_free(&t);
    free(met);
    free(pred);
    free(y);
    return st;
}
