/* Robustness evaluation: corruption draws are pure functions of (seed, utterance, modality) and
 * nested across rates; the drop and noise definitions; the statistics (t quantiles against
 * published table values, AUILC, mean and sd); and sd_robust_run: rate 0, noise 0 and the
 * all-present pattern equal plain predictions bit for bit, the text-absent pattern of the
 * text-missing flow equals that flow, runs repeat exactly, and a model's results do not depend on
 * which other models are evaluated with it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "data/synth.h"
#include "eval/corrupt.h"
#include "eval/robust.h"
#include "eval/stats.h"
#include "harness.h"
#include "train/train.h"

static void test_stream_is_pure(void) {
    uint64_t a = sd_corrupt_stream("utt_001", 0, SD_CORRUPT_MISSING);
    EXPECT(a == sd_corrupt_stream("utt_001", 0, SD_CORRUPT_MISSING), "same inputs, different stream");
    EXPECT(a != sd_corrupt_stream("utt_002", 0, SD_CORRUPT_MISSING), "names do not change the stream");
    EXPECT(a != sd_corrupt_stream("utt_001", 1, SD_CORRUPT_MISSING), "modalities share a stream");
    EXPECT(a != sd_corrupt_stream("utt_001", 0, SD_CORRUPT_DROP), "kinds share a stream");
    float u1[50], u2[50], u3[50];
    sd_corrupt_frame_draws(5, a, 50, u1);
    sd_corrupt_frame_draws(5, a, 50, u2);
    sd_corrupt_frame_draws(6, a, 50, u3);
    EXPECT(!memcmp(u1, u2, sizeof u1), "frame draws differ between calls");
    EXPECT(memcmp(u1, u3, sizeof u1), "the seed has no effect");
    for (int t = 0; t < 50; t++) EXPECT(u1[t] == sd_rng_uniform_at(5, a, (uint64_t)t), "draw %d is not the RNG's", t);
    /* A prefix of a longer utterance's draws: frame t's draw does not depend on the length. */
    sd_corrupt_frame_draws(5, a, 20, u3);
    EXPECT(!memcmp(u1, u3, 20 * sizeof(float)), "draws depend on the frame count");
}

static void test_masks_nested_and_exact(void) {
    const int T = 400, D = 3;
    float u[400], x[400 * 3], y[400 * 3];
    sd_corrupt_frame_draws(1, sd_corrupt_stream("n", 2, SD_CORRUPT_MISSING), T, u);
    for (int i = 0; i < T * D; i++) x[i] = 1.0f + (float)i;
    memcpy(y, x, sizeof x);
    sd_corrupt_missing(x, T, D, u, 0.3f);
    sd_corrupt_missing(y, T, D, u, 0.6f);
    int missing3 = 0, missing6 = 0;
    for (int t = 0; t < T; t++) {
        int z3 = x[t * D] == 0.0f, z6 = y[t * D] == 0.0f;
        missing3 += z3;
        missing6 += z6;
        EXPECT(!z3 || z6, "frame %d missing at 0.3 but not at 0.6", t);
        EXPECT(z3 == (u[t] < 0.3f), "frame %d: missing %d, draw %g", t, z3, (double)u[t]);
        for (int d = 0; d < D; d++) EXPECT(z3 ? x[t * D + d] == 0.0f : x[t * D + d] == 1.0f + (float)(t * D + d), "row %d", t);
    }
    EXPECT(missing3 > 80 && missing3 < 160 && missing6 > 200 && missing6 < 280, "counts %d %d", missing3, missing6);
    /* rate 0 changes nothing, rate 1 drops everything */
    for (int i = 0; i < T * D; i++) x[i] = 2.0f;
    sd_corrupt_missing(x, T, D, u, 0.0f);
    sd_corrupt_drop(x, T, D, u, 0.0f);
    int same = 1;
    for (int i = 0; i < T * D; i++) same &= x[i] == 2.0f;
    EXPECT(same, "rate 0 changed the frames");
}

static void test_drop_runs(void) {
    /* draws chosen by hand: runs start at frames 1 and 8 (of 10) at rate 0.5 */
    const float u[10] = {0.9f, 0.1f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.2f, 0.9f};
    float x[10];
    for (int t = 0; t < 10; t++) x[t] = 1.0f;
    sd_corrupt_drop(x, 10, 1, u, 0.5f);
    const float want[10] = {1, 0, 0, 0, 1, 1, 1, 1, 0, 0};
    EXPECT(!memcmp(x, want, sizeof x), "dropped runs: %g %g %g %g %g %g %g %g %g %g", (double)x[0], (double)x[1], (double)x[2],
           (double)x[3], (double)x[4], (double)x[5], (double)x[6], (double)x[7], (double)x[8], (double)x[9]);
}

static void test_noise(void) {
    const int T = 300, D = 101; /* odd count: the last block's sine is unused */
    float *eps = malloc(sizeof(float) * T * D), *again = malloc(sizeof(float) * T * D);
    uint64_t stream = sd_corrupt_stream("noisy", 0, SD_CORRUPT_NOISE);
    sd_corrupt_noise_draws(9, stream, T, D, eps);
    sd_corrupt_noise_draws(9, stream, 7, D, again); /* a prefix */
    EXPECT(!memcmp(eps, again, sizeof(float) * 7 * D), "noise depends on the frame count");
    double s = 0, ss = 0;
    for (int i = 0; i < T * D; i++) s += eps[i], ss += (double)eps[i] * eps[i];
    double mean = s / (T * D), var = ss / (T * D) - mean * mean;
    /* 30300 standard normals: mean within 5 standard errors, variance within 5 % */
    EXPECT(fabs(mean) < 5.0 / sqrt(T * D) && fabs(var - 1.0) < 0.05, "noise mean %g variance %g", mean, var);
    /* Block layout: element 2k and 2k+1 come from the RNG's words 4k..4k+3. */
    uint32_t w[4];
    for (int j = 0; j < 4; j++) w[j] = sd_rng_u32_at(9, stream, 4 * 10 + (uint64_t)j);
    double u1 = 1.0 - (double)(((uint64_t)(w[0] >> 5) << 26) | (w[1] >> 6)) / 9007199254740992.0;
    double u2 = (double)(((uint64_t)(w[2] >> 5) << 26) | (w[3] >> 6)) / 9007199254740992.0;
    double r = sqrt(-2 * log(u1));
    EXPECT(eps[20] == (float)(r * cos(6.283185307179586 * u2)) && eps[21] == (float)(r * sin(6.283185307179586 * u2)),
           "noise block layout");
    float x[4] = {1, 2, 3, 4}, scale[2] = {0.5f, 2.0f}, e[4] = {1, -1, 0.5f, 2};
    sd_corrupt_noise(x, 2, 2, e, 0.1f, scale);
    EXPECT(x[0] == 1 + 0.1f * 0.5f * 1 && x[1] == 2 + 0.1f * 2.0f * -1 && x[3] == 4 + 0.1f * 2.0f * 2, "noise scale");
    free(eps);
    free(again);
}

static void test_stats(void) {
    /* Student t quantiles (two-sided 95 %, 99 %) from published tables. */
    const struct { double p, df, t; } q[] = {{0.975, 1, 12.706204736}, {0.975, 2, 4.302652730}, {0.975, 5, 2.570581836},
                                             {0.975, 30, 2.042272456}, {0.995, 3, 5.840909310}, {0.975, 1e6, 1.959966}};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        double t = sd_student_t_quantile(q[i].p, q[i].df);
        EXPECT(fabs(t - q[i].t) < 2e-6 * q[i].t, "t(%g, %g) = %.9f, want %.9f", q[i].p, q[i].df, t, q[i].t);
    }
    EXPECT(sd_student_t_quantile(0.025, 4) == -sd_student_t_quantile(0.975, 4), "t quantile not symmetric");
    double x[4] = {1, 2, 3, NAN}, mean, sd;
    size_t n;
    sd_mean_sd(x, 4, &mean, &sd, &n);
    EXPECT(mean == 2 && fabs(sd - 1) < 1e-15 && n == 3, "mean %g sd %g n %zu", mean, sd, n);
    double d[3] = {0.1, 0.2, 0.3}, m, lo, hi;
    sd_paired_t_interval(d, 3, 0.95, &m, &lo, &hi);
    EXPECT(fabs(m - 0.2) < 1e-15 && fabs(hi - m - 4.302652730 * 0.1 / sqrt(3)) < 1e-8 && fabs(m - lo - (hi - m)) < 1e-15,
           "paired interval [%g, %g]", lo, hi);
    sd_paired_t_interval(d, 1, 0.95, &m, &lo, &hi);
    EXPECT(isnan(lo) && isnan(hi), "one pair gives an interval");
    const double r[4] = {0, 0.1, 0.2, 0.4}, y[4] = {1, 1, 3, 3};
    /* (0.1*1 + 0.1*2 + 0.2*3) / 0.4 = 2.25 */
    EXPECT(fabs(sd_auilc(r, y, 4) - 2.25) < 1e-12, "AUILC %g", sd_auilc(r, y, 4));
    const double flat[3] = {0.7, 0.7, 0.7};
    EXPECT(fabs(sd_auilc(r, flat, 3) - 0.7) < 1e-12 && sd_auilc(r, y, 1) == 1, "AUILC of a flat curve");
}

/* ---- sd_robust_run on a small synthetic corpus with two untrained models ---- */
static sd_dataset *ds;
static sd_model *models[2];

static void setup(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data", sd_test_tmpdir());
    sd_error err;
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    o.require_sim = 1;
    if (sd_synth_write(dir, 90, 4, SD_SYNTH_SMALL, &err) || sd_dataset_open(&o, &ds, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        exit(2);
    }
    for (int k = 0; k < 2; k++) {
        sd_model_config c = sd_model_default_config(sd_dataset_dim(ds, SD_MOD_AUDIO), sd_dataset_dim(ds, SD_MOD_TEXT),
                                                    sd_dataset_dim(ds, SD_MOD_VIDEO));
        c.hidden = 16;
        c.seed = 11 + (uint64_t)k;
        c.mia = k; /* one with MIA, one without */
        if (sd_model_create(&c, &models[k], &err) || sd_model_prepare_inference(models[k], &err)) {
            fprintf(stderr, "setup: %s\n", err.msg);
            exit(2);
        }
    }
    sd_threads_set(2);
}

static const float rates[3] = {0.0f, 0.5f, 0.9f};
static const uint64_t seeds[2] = {3, 4};

static sd_robust_options small_plan(void) {
    sd_robust_options o = sd_robust_default_options();
    o.seeds = seeds;
    o.n_seeds = 2;
    o.rates = o.drop = o.noise = rates;
    o.n_rates = o.n_drop = o.n_noise = 3;
    o.batch_size = 16;
    return o;
}

static int run(const sd_model *const *ms, int n, sd_robust_result *r) {
    static const char *files[2] = {"a", "a"};
    sd_robust_model rm[2];
    const char *names[2] = {"m0", "m1"};
    for (int k = 0; k < n; k++) {
        static const sd_model *per_seed[2][2];
        per_seed[k][0] = per_seed[k][1] = ms[k];
        rm[k] = (sd_robust_model){names[ms[k] == models[1]], per_seed[k], files};
    }
    sd_robust_options o = small_plan();
    sd_error err;
    sd_status st = sd_robust_run(ds, rm, n, &o, r, &err);
    EXPECT(st == SD_OK, "robust run: %s", err.msg);
    return st;
}

/* 1 when two metric records are bitwise equal. */
static int same_metrics(const sd_metrics *a, const sd_metrics *b) { return !memcmp(a, b, sizeof *a); }

static void test_level_zero_is_plain_eval(void) {
    sd_robust_result r;
    const sd_model *ms[2] = {models[0], models[1]};
    if (run(ms, 2, &r)) return;
    const int64_t n = sd_dataset_size(ds, SD_SPLIT_TEST);
    float *p = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) y[i] = sd_dataset_label(ds, SD_SPLIT_TEST, i);
    sd_error err;
    int checked = 0;
    for (int m = 0; m < 2; m++)
        for (int flow = 0; flow < 2; flow++) {
            EXPECT(sd_predict_split(models[m], ds, SD_SPLIT_TEST, flow, NULL, n, 16, p, &err) == SD_OK, "%s", err.msg);
            sd_metrics plain;
            sd_metrics_compute(p, y, (size_t)n, &plain);
            for (int c = 0; c < r.n_conditions; c++) {
                const sd_condition *cd = &r.conditions[c];
                if (cd->missing != flow) continue;
                int unchanged = cd->kind == SD_COND_CLEAN || (cd->kind != SD_COND_PATTERN && cd->level == 0.0f) ||
                                (cd->kind == SD_COND_PATTERN && cd->slots == (flow ? 5u : 7u));
                if (!unchanged) continue;
                for (int s = 0; s < 2; s++) {
                    EXPECT(same_metrics(sd_robust_at(&r, m, c, s), &plain), "model %d flow %d condition %d (%s %g) differs from eval",
                           m, flow, c, sd_condition_kind_name(cd->kind), (double)cd->level);
                    checked++;
                }
            }
        }
    /* per model and flow: clean, 4 targets x 3 kinds at level 0, the unchanged pattern; 2 seeds */
    EXPECT(checked == 2 * 2 * (1 + 12 + 1) * 2, "checked %d conditions", checked);
    /* Corruption changes something: rate 0.9 on all slots differs from clean. */
    int differs = 0;
    for (int c = 0; c < r.n_conditions; c++)
        if (r.conditions[c].kind == SD_COND_MISSING && r.conditions[c].slots == SD_SLOTS_ALL && r.conditions[c].level > 0.8f)
            differs |= !same_metrics(sd_robust_at(&r, 0, c, 0), sd_robust_at(&r, 0, 0, 0));
    EXPECT(differs, "rate 0.9 on every modality changed no metric");
    free(p);
    free(y);
    sd_robust_result_free(&r);
}

static void test_runs_and_models_independent(void) {
    sd_robust_result a, b, c;
    const sd_model *both[2] = {models[0], models[1]}, *swapped[2] = {models[1], models[0]}, *one[1] = {models[1]};
    if (run(both, 2, &a) || run(both, 2, &b) || run(swapped, 2, &c)) return;
    size_t per_model = (size_t)a.n_conditions * (size_t)a.n_seeds;
    EXPECT(!memcmp(a.metrics, b.metrics, sizeof(sd_metrics) * 2 * per_model), "two runs differ");
    EXPECT(!memcmp(a.metrics + per_model, c.metrics, sizeof(sd_metrics) * per_model) &&
               !memcmp(a.metrics, c.metrics + per_model, sizeof(sd_metrics) * per_model),
           "a model's results depend on the order of the models");
    sd_robust_result_free(&b);
    if (!run(one, 1, &b)) {
        EXPECT(!memcmp(a.metrics + per_model, b.metrics, sizeof(sd_metrics) * per_model),
               "a model's results depend on the other models");
        sd_robust_result_free(&b);
    }
    sd_robust_result_free(&a);
    sd_robust_result_free(&c);
}

static void test_plan(void) {
    sd_robust_options o = small_plan();
    sd_condition *c = NULL;
    int n = 0;
    sd_error err;
    EXPECT(sd_robust_plan(&o, 1, &c, &n, &err) == SD_OK, "%s", err.msg);
    /* per flow: clean + 3 kinds x 4 targets x 3 levels; patterns 7 (complete) + 3 (text-missing) */
    EXPECT(n == 2 * (1 + 36) + 7 + 3, "plan has %d conditions", n);
    int text_in_missing = 0;
    for (int k = 0; k < n; k++) text_in_missing |= c[k].kind == SD_COND_PATTERN && c[k].missing && (c[k].slots & SD_SLOT_TEXT);
    EXPECT(!text_in_missing, "a text-missing pattern claims the real text");
    free(c);
    EXPECT(sd_robust_plan(&o, 0, &c, &n, &err) == SD_OK && n == 1 + 36 + 7, "without simulated text: %d", n);
    free(c);
    char buf[16];
    sd_condition p = {SD_COND_PATTERN, SD_SLOT_AUDIO | SD_SLOT_VIDEO, 0, 0};
    sd_condition_target(&p, buf, sizeof buf);
    EXPECT(!strcmp(buf, "a+v"), "pattern name '%s'", buf);
}

int main(void) {
    sd_test_run("robust.stream_is_pure", test_stream_is_pure);
    sd_test_run("robust.masks_nested_and_exact", test_masks_nested_and_exact);
    sd_test_run("robust.drop_runs", test_drop_runs);
    sd_test_run("robust.noise", test_noise);
    sd_test_run("robust.stats", test_stats);
    sd_test_run("robust.plan", test_plan);
    setup();
    sd_test_run("robust.level_zero_is_plain_eval", test_level_zero_is_plain_eval);
    sd_test_run("robust.runs_and_models_independent", test_runs_and_models_independent);
    sd_model_free(models[0]);
    sd_model_free(models[1]);
    sd_dataset_close(ds);
    return sd_test_finish();
}
