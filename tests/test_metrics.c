/* MMSA metrics against numpy-computed values (tests/fixtures/metrics/metrics_cases.txt, and
 * CH-SIMS's in sims_cases.txt, written by tests/reference/make_metrics_fixture.py): ties at .5
 * (round half to even), zero labels, a constant prediction (Corr undefined), one class only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/metrics.h"

/* Next case of a fixture file: *n pairs (malloc'ed *p, *y; free them) and the k expected values
 * (a "nan" Corr reads as NaN). 0 on success, -1 at the end or on a malformed case. */
static int read_case(FILE *f, size_t *n, float **p, float **y, double *e, int k) {
    char line[512];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "case %zu", n) == 1) {
            *p = malloc(*n * sizeof **p);
            *y = malloc(*n * sizeof **y);
            for (size_t i = 0; i < *n; i++)
                if (!fgets(line, sizeof line, f) || sscanf(line, "%f %f", &(*p)[i], &(*y)[i]) != 2) return -1;
            if (!fgets(line, sizeof line, f)) return -1;
            char *s = line;
            for (int j = 0; j < k; j++) {
                char *end;
                e[j] = strtod(s, &end);
                if (end == s) return -1;
                s = end;
            }
            return 0;
        }
    return -1;
}

/* The values a fixture line lists, in its order. */
static int values_of(const sd_metrics *m, double *v, const char **names) {
    static const char *const mosi[] = {"mae", "mse", "corr", "acc7", "acc5", "acc2_has0", "f1_has0",
                                       "acc2_non0", "f1_non0", "n", "n_non0"};
    static const char *const sims[] = {"mae", "mse", "corr", "acc2", "acc3", "acc5", "f1", "n"};
    if (m->scheme == SD_METRICS_SIMS) {
        double x[8] = {m->mae, m->mse, m->corr, m->acc2, m->acc3, m->acc5, m->f1, (double)m->n};
        memcpy(v, x, sizeof x);
        memcpy(names, sims, sizeof sims);
        return 8;
    }
    double x[11] = {m->mae, m->mse, m->corr, m->acc7, m->acc5, m->acc2_has0, m->f1_has0, m->acc2_non0,
                    m->f1_non0, (double)m->n, (double)m->n_non0};
    memcpy(v, x, sizeof x);
    memcpy(names, mosi, sizeof mosi);
    return 11;
}

/* Every case of a fixture: MAE, MSE and Corr within reg_tol (relative), the rest within 1e-9. */
static void match_fixture(const char *path, sd_metrics_scheme scheme, int want_cases, double reg_tol) {
    FILE *f = fopen(path, "r");
    if (!f) {
        EXPECT(0, "fixture %s missing", path);
        return;
    }
    int cases = 0, k = scheme == SD_METRICS_SIMS ? 8 : 11;
    size_t n;
    float *p = NULL, *y = NULL;
    double e[11];
    while (!read_case(f, &n, &p, &y, e, k)) {
        sd_metrics m;
        sd_metrics_compute_scheme(p, y, n, scheme, &m);
        double got[11];
        const char *names[11];
        values_of(&m, got, names);
        for (int j = 0; j < k; j++) {
            if (j == 2 && isnan(e[2])) {
                EXPECT(!m.corr_defined, "%s case %d: Corr should be undefined", path, cases);
                continue;
            }
            double tol = (j < 3 ? reg_tol : 1e-9) * fmax(1.0, fabs(e[j]));
            EXPECT(fabs(got[j] - e[j]) <= tol, "%s case %d: %s = %.12g, numpy %.12g", path, cases, names[j], got[j], e[j]);
        }
        free(p);
        free(y);
        p = y = NULL;
        cases++;
    }
    free(p);
    free(y);
    fclose(f);
    EXPECT(cases == want_cases, "%s: read %d cases, expected %d", path, cases, want_cases);
}

static void test_metrics_match_numpy(void) {
    match_fixture("tests/fixtures/metrics/metrics_cases.txt", SD_METRICS_MOSI, 5, 1e-9);
}

/* MMSA's CH-SIMS metrics (labels in [-1, 1]) against the numpy re-implementation of
 * tests/reference/make_sims_metrics_fixture.py: class metrics exactly (bin edges in float32), MAE,
 * MSE and Corr to float32 rounding (numpy averages float32 values). */
static void test_sims_metrics_match_numpy(void) {
    match_fixture("tests/fixtures/metrics/sims_cases.txt", SD_METRICS_SIMS, 4, 2e-6);
    EXPECT(sd_metrics_scheme_for(-1, 1) == SD_METRICS_SIMS && sd_metrics_scheme_for(-3, 3) == SD_METRICS_MOSI &&
               sd_metrics_scheme_for(0, 10) == SD_METRICS_RANGE,
           "schemes of label ranges");
    char buf[1024];
    FILE *o = fmemopen(buf, sizeof buf, "w");
    float pp[3] = {0.2f, -0.5f, 0.9f}, yy[3] = {0.4f, -0.2f, 1.0f};
    sd_metrics m;
    sd_metrics_compute_scheme(pp, yy, 3, SD_METRICS_SIMS, &m);
    sd_metrics_write_json(o, &m, NULL);
    sd_metrics_compute_scheme(pp, yy, 3, SD_METRICS_RANGE, &m);
    sd_metrics_write_json(o, &m, NULL);
    fclose(o);
    EXPECT(strstr(buf, "\"acc3\"") && strstr(buf, "\"scheme\": \"sims\"") && strstr(buf, "\"scheme\": \"range\"") &&
               !strstr(buf, "acc7"),
           "json: %s", buf);
}

static void test_round_half_even_and_json(void) {
    float p[4] = {0.5f, 1.5f, 2.5f, -0.5f}, y[4] = {0.0f, 2.0f, 2.0f, -0.0f};
    sd_metrics m;
    sd_metrics_compute(p, y, 4, &m);
    EXPECT(m.acc7 == 1.0, "rint is round half to even: acc7 %g", m.acc7);
    char buf[1024];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    float c[3] = {1, 1, 1}, l[3] = {0, 1, 2};
    sd_metrics_compute(c, l, 3, &m);
    sd_metrics_write_json(f, &m, "missing");
    fclose(f);
    EXPECT(strstr(buf, "\"corr\": null") && strstr(buf, "\"flow\": \"missing\"") && strstr(buf, "\"n_non0\": 2"),
           "json: %s", buf);
    sd_metrics_compute(NULL, NULL, 0, &m);
    EXPECT(m.n == 0 && !m.corr_defined, "empty input");
}

int main(void) {
    sd_test_run("metrics.match_numpy", test_metrics_match_numpy);
    sd_test_run("metrics.round_half_even_and_json", test_round_half_even_and_json);
    sd_test_run("metrics.sims_match_numpy", test_sims_metrics_match_numpy);
    return sd_test_finish();
}
