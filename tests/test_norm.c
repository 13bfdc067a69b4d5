/* Input standardisation (issue 21): the training split's statistics against a direct computation,
 * padding untouched; the floor on tiny deviations; the fold into the frame projections (the folded
 * model on raw features predicts what the unfolded network predicts on standardised features,
 * <= 1e-5 relative, both flows, after real training on a raw-scale synthetic corpus); fold and
 * unfold are inverse; the statistics round-trip through the model file; resume with
 * normalisation is bit-identical, and refused when the option or the features changed; --normalize standard is refused with mask off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/threads.h"
#include "data/feature_stats.h"
#include "data/synth.h"
#include "harness.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/norm.h"
#include "train/checkpoint.h"
#include "train/train.h"
#include "train_fixture.h"

static char data_dir[600];
static sd_dataset *ds;

static sd_dataset *open_ds(const char *dir) {
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    o.require_sim = 1;
    o.nonfinite_zero = 1;
    sd_dataset *d = NULL;
    sd_error err;
    if (sd_dataset_open(&o, &d, &err)) fprintf(stderr, "dataset %s: %s\n", dir, err.msg);
    return d;
}

static void setup(void) {
    snprintf(data_dir, sizeof data_dir, "%s/raw", sd_test_tmpdir());
    sd_error err;
    if (sd_synth_write(data_dir, 160, 5, SD_SYNTH_SMALL | SD_SYNTH_RAW_SCALES, &err)) {
        fprintf(stderr, "synth: %s\n", err.msg);
        exit(2);
    }
    if (!(ds = open_ds(data_dir))) exit(2);
    sd_threads_set(2);
}

/* Mean and population std of one dim of a modality over the train split, read file by file. */
static void direct_stats(int m, int d, double *mean, double *std, double *max_abs) {
    double s1 = 0, s2 = 0;
    int64_t n = 0;
    *max_abs = 0;
    for (int64_t i = 0; i < sd_dataset_size(ds, SD_SPLIT_TRAIN); i++) {
        char path[1000];
        sd_error err;
        sd_dataset_path(ds, SD_SPLIT_TRAIN, i, m, path, sizeof path, &err);
        sd_npy_header h;
        float *x = NULL;
        if (sd_npy_read(path, &h, &x, &err)) continue;
        for (int64_t t = 0; t < h.rows; t++) {
            double v = x[t * h.cols + d];
            if (!isfinite(v)) v = 0.0; /* --nonfinite zero */
            s1 += v;
            s2 += v * v;
            *max_abs = fmax(*max_abs, fabs(v));
            n++;
        }
        sd_free(x);
    }
    *mean = s1 / (double)n;
    *std = sqrt(fmax(s2 / (double)n - *mean * *mean, 0.0));
}

static void test_stats_match_direct(void) {
    sd_feature_stats fs;
    sd_error err;
    int max_frames[SD_MOD_COUNT] = {0};
    EXPECT(sd_feature_stats_compute(ds, SD_SPLIT_TRAIN, max_frames, SD_CAP_SUBSAMPLE, NULL, &fs, &err) == SD_OK,
           "stats: %s", err.msg);
    /* Batches pad every modality; the stats must equal per-file ones (padding never counted). */
    for (int m = 0; m < SD_MOD_COUNT; m++)
        for (int d = 0; d < fs.m[m].dim; d += 5) {
            double mean, std, max_abs;
            direct_stats(m, d, &mean, &std, &max_abs);
            EXPECT(fabs(fs.m[m].mean[d] - mean) <= 1e-9 * fmax(1.0, fabs(mean)), "%s dim %d mean %.12g vs %.12g",
                   sd_modality_name(m), d, fs.m[m].mean[d], mean);
            EXPECT(fabs(fs.m[m].std[d] - std) <= 1e-6 * fmax(1e-3, std), "%s dim %d std %.12g vs %.12g",
                   sd_modality_name(m), d, fs.m[m].std[d], std);
        }
    char line[256];
    int warn = 0;
    sd_feature_scale_summary(&fs.m[SD_MOD_AUDIO], line, sizeof line, &warn);
    EXPECT(warn && strstr(line, "std ") && strstr(line, "|x| up to"), "audio of raw scales must warn: %s", line);
    /* The floor: a constant dim divides by 1, a tiny one by at least 1e-4 of the modality's RMS std. */
    fs.m[SD_MOD_AUDIO].std[3] = 0.0;
    fs.m[SD_MOD_AUDIO].mean[3] = 7.0;
    fs.m[SD_MOD_AUDIO].std[4] = 1e-12;
    sd_norm n;
    memset(&n, 0, sizeof n);
    EXPECT(sd_norm_from_stats(&n, &fs, &err) == SD_OK, "norm: %s", err.msg);
    EXPECT(n.std[0][3] == 1.0f && n.mean[0][3] == 7.0f, "constant dim: std %g", (double)n.std[0][3]);
    EXPECT(n.std[0][4] > 1e-6f, "tiny dim floored: %g", (double)n.std[0][4]);
    EXPECT(n.inv[1][0] == 1.0f / n.std[1][0], "inverse");
    sd_norm_free(&n);
    sd_feature_stats_free(&fs);
}

/* A copy of the dataset with every feature file standardised as training does it (non-finite
 * values read as 0 first, the simulated text with the text's statistics). */
static void write_standardised_copy(const char *dir, const sd_norm *n) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", data_dir, dir);
    EXPECT(system(cmd) == 0, "copy");
    static const int slot_of[SD_MOD_COUNT] = {0, 1, 2, 1};
    for (int s = 0; s < SD_SPLIT_COUNT; s++)
        for (int64_t i = 0; i < sd_dataset_size(ds, (sd_split)s); i++)
            for (int m = 0; m < SD_MOD_COUNT; m++) {
                char path[1000], out[1200];
                sd_error err;
                sd_dataset_path(ds, (sd_split)s, i, m, path, sizeof path, &err);
                snprintf(out, sizeof out, "%s%s", dir, path + strlen(data_dir));
                sd_npy_header h;
                float *x = NULL;
                if (sd_npy_read(path, &h, &x, &err)) {
                    EXPECT(0, "read %s: %s", path, err.msg);
                    continue;
                }
                for (int64_t k = 0; k < h.rows * h.cols; k++)
                    if (!isfinite(x[k])) x[k] = 0.0f;
                sd_norm_apply(n, slot_of[m], x, h.rows);
                EXPECT(sd_npy_write(out, x, 2, h.rows, h.cols, SD_DTYPE_F32, &err) == SD_OK, "write: %s", err.msg);
                sd_free(x);
            }
}

static void test_fold_equals_standardised_network(void) {
    char model[700], std_dir[700];
    snprintf(model, sizeof model, "%s/fold.safetensors", sd_test_tmpdir());
    snprintf(std_dir, sizeof std_dir, "%s/standardised", sd_test_tmpdir());
    sd_train_options o = small_train_options(model, 11);
    sd_train_result r;
    sd_error err;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "train: %s", err.msg);
    EXPECT(r.normalize == SD_NORMALIZE_STANDARD, "the default for a new model is standard");
    sd_train_state s;
    EXPECT(sd_train_state_load(r.state_path, &s, &err) == SD_OK, "state: %s", err.msg);
    if (!s.model) return;
    EXPECT(sd_norm_active(&s.norm), "the state keeps the statistics");
    /* The unfolded network: the state's best parameters (what the model file holds, folded). */
    memcpy(s.model->params, s.best_params, sizeof(float) * s.model->table.total);
    write_standardised_copy(std_dir, &s.norm);
    sd_dataset *sds = open_ds(std_dir);
    sd_model *folded = NULL;
    EXPECT(sd_model_load(model, &folded, &err) == SD_OK, "load: %s", err.msg);
    if (!sds || !folded) return;
    /* The file's statistics are the state's, bit for bit. */
    sd_norm from_file;
    int present = 0;
    EXPECT(sd_norm_read_file(model, folded->cfg.dim, &from_file, &present, &err) == SD_OK && present, "file stats");
    for (int k = 0; present && k < 3; k++)
        EXPECT(!memcmp(from_file.mean[k], s.norm.mean[k], sizeof(float) * (size_t)s.norm.dim[k]) &&
                   !memcmp(from_file.std[k], s.norm.std[k], sizeof(float) * (size_t)s.norm.dim[k]),
               "statistics of slot %d differ between file and state", k);
    sd_norm_free(&from_file);
    for (int split = 0; split < SD_SPLIT_COUNT; split++) {
        int64_t n = sd_dataset_size(ds, (sd_split)split);
        float *a = malloc(sizeof(float) * (size_t)n * 2), *b = malloc(sizeof(float) * (size_t)n * 2);
        for (int flow = 0; flow < 2; flow++) {
            EXPECT(sd_predict_split(folded, ds, (sd_split)split, flow, NULL, n, 8, a + flow * n, &err) == SD_OK,
                   "folded: %s", err.msg);
            EXPECT(sd_predict_split(s.model, sds, (sd_split)split, flow, NULL, n, 8, b + flow * n, &err) == SD_OK,
                   "unfolded: %s", err.msg);
        }
        size_t where = 0;
        double worst = sd_max_rel_err_f(a, b, (size_t)(2 * n), 1e-2, &where);
        EXPECT(worst <= 1e-5, "split %d: folded on raw vs unfolded on standardised: %.3g relative at %zu (%g vs %g)",
               split, worst, where, (double)a[where], (double)b[where]);
        printf("  %s: folded on raw vs unfolded on standardised, %lld utterances x 2 flows: worst %.2g relative\n",
               sd_split_name((sd_split)split), (long long)n, worst);
        free(a);
        free(b);
    }
    /* unfold(fold(P)) = P to float rounding. */
    float *f = malloc(sizeof(float) * s.model->table.total), *u = malloc(sizeof(float) * s.model->table.total);
    sd_norm_fold(&s.norm, s.model, s.model->params, f);
    sd_norm_unfold(&s.norm, s.model, f, u);
    size_t where = 0;
    double back = sd_max_rel_err_f(u, s.model->params, s.model->table.total, 1e-3, &where);
    EXPECT(back <= 1e-5, "unfold(fold(P)) differs from P by %.3g at %zu", back, where);
    EXPECT(!memcmp(f, folded->params, sizeof(float) * s.model->table.total), "the file holds fold(best params)");
    free(f);
    free(u);
    sd_model_free(folded);
    sd_dataset_close(sds);
    sd_train_state_release(&s);
}

static void test_resume_with_normalisation_bit_identical(void) {
    char a[700], b[700], state_a[720];
    snprintf(a, sizeof a, "%s/norm_full.safetensors", sd_test_tmpdir());
    snprintf(b, sizeof b, "%s/norm_resumed.safetensors", sd_test_tmpdir());
    snprintf(state_a, sizeof state_a, "%s.state", a);
    snprintf(snapshot, sizeof snapshot, "%s/norm_after1.state", sd_test_tmpdir());
    sd_error err;
    sd_train_result r;
    sd_train_options o = small_train_options(a, 11);
    o.on_progress = snapshot_after_first_epoch;
    o.user = state_a;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "uninterrupted: %s", err.msg);
    sd_train_options o2 = small_train_options(b, 11);
    o2.resume = snapshot;
    EXPECT(sd_train(ds, &o2, &r, &err) == SD_OK, "resumed: %s", err.msg);
    EXPECT(same_file(a, b), "resumed model differs from the uninterrupted one");
    /* The statistics come from the state, and the option must agree with it. */
    o2.normalize = SD_NORMALIZE_NONE;
    EXPECT(sd_train(ds, &o2, &r, &err) == SD_E_ARG &&
               strstr(err.msg, "normalize: standard when the run started, none now"),
           "a resume with another --normalize: %s", err.msg);
    /* Feature values changed under the same names and frame counts (the dataset's fingerprint is the
     * same): the statistics tell, and the resume is refused. */
    char changed[700], cmd[2200], path[1000];
    snprintf(changed, sizeof changed, "%s/raw_changed", sd_test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", changed, data_dir, changed);
    EXPECT(system(cmd) == 0, "copy");
    sd_dataset_path(ds, SD_SPLIT_TRAIN, 0, SD_MOD_VIDEO, path, sizeof path, &err);
    char target[1200];
    snprintf(target, sizeof target, "%s%s", changed, path + strlen(data_dir));
    sd_npy_header h;
    float *x = NULL;
    EXPECT(sd_npy_read(target, &h, &x, &err) == SD_OK, "read %s: %s", target, err.msg);
    if (!x) return;
    x[0] += 1.0f;
    EXPECT(sd_npy_write(target, x, 2, h.rows, h.cols, SD_DTYPE_F32, &err) == SD_OK, "write: %s", err.msg);
    sd_free(x);
    sd_dataset *ds2 = open_ds(changed);
    if (!ds2) return;
    sd_train_options o3 = small_train_options(b, 11);
    o3.resume = snapshot;
    EXPECT(sd_train(ds2, &o3, &r, &err) == SD_E_ARG && strstr(err.msg, "training split's video features differ"),
           "a resume on changed features: %s", err.msg);
    sd_dataset_close(ds2);
}

static void test_refusals_and_init(void) {
    char out[700];
    snprintf(out, sizeof out, "%s/nomask.safetensors", sd_test_tmpdir());
    sd_train_options o = small_train_options(out, 11);
    o.model.mask = 0;
    o.normalize = SD_NORMALIZE_STANDARD;
    sd_train_result r;
    sd_error err;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "--mask on"), "mask off: %s", err.msg);
    o.normalize = SD_NORMALIZE_AUTO;
    o.epochs = 1;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK && r.normalize == SD_NORMALIZE_NONE, "mask off, auto -> none: %s",
           err.msg);
    /* --init from a normalised model: its statistics, the same function at the start. */
    char first[700], second[700];
    snprintf(first, sizeof first, "%s/fold.safetensors", sd_test_tmpdir());
    snprintf(second, sizeof second, "%s/init.safetensors", sd_test_tmpdir());
    sd_train_options oi = small_train_options(second, 11);
    oi.init = first;
    oi.epochs = 1;
    oi.lr = 1e-12f; /* (almost) no step: the saved model must be the init file's function */
    EXPECT(sd_train(ds, &oi, &r, &err) == SD_OK && r.normalize == SD_NORMALIZE_STANDARD, "init: %s", err.msg);
    sd_model *m1 = NULL, *m2 = NULL;
    EXPECT(sd_model_load(first, &m1, &err) == SD_OK && sd_model_load(second, &m2, &err) == SD_OK, "load");
    if (m1 && m2) {
        size_t where = 0;
        double d = sd_max_rel_err_f(m1->params, m2->params, m1->table.total, 1e-2, &where);
        EXPECT(d <= 1e-4, "init from a normalised model moved the function: %.3g at %zu", d, where);
    }
    sd_model_free(m1);
    sd_model_free(m2);
}

int main(void) {
    setup();
    sd_test_run("norm.stats_match_direct", test_stats_match_direct);
    sd_test_run("norm.fold_equals_standardised_network", test_fold_equals_standardised_network);
    sd_test_run("norm.resume_bit_identical", test_resume_with_normalisation_bit_identical);
    sd_test_run("norm.refusals_and_init", test_refusals_and_init);
    sd_dataset_close(ds);
    return sd_test_finish();
}
