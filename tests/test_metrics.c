/* MMSA metrics against numpy-computed values (tests/fixtures/metrics/metrics_cases.txt, written
 * by tests/reference/make_metrics_fixture.py): ties at .5 (round half to even), zero labels,
 * a constant prediction (Corr undefined), one class only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/metrics.h"

static void test_metrics_match_numpy(void) {
    FILE *f = fopen("tests/fixtures/metrics/metrics_cases.txt", "r");
    if (!f) {
        EXPECT(0, "fixture missing");
        return;
    }
    char line[512];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n;
        if (sscanf(line, "case %zu", &n) != 1) continue;
        float *p = malloc(n * sizeof *p), *y = malloc(n * sizeof *y);
        for (size_t i = 0; i < n; i++)
            if (!fgets(line, sizeof line, f) || sscanf(line, "%f %f", &p[i], &y[i]) != 2) EXPECT(0, "bad fixture line");
        double e[11];
        char nums[11][64];
        if (!fgets(line, sizeof line, f) ||
            sscanf(line, "%63s %63s %63s %63s %63s %63s %63s %63s %63s %63s %63s", nums[0], nums[1], nums[2],
                   nums[3], nums[4], nums[5], nums[6], nums[7], nums[8], nums[9], nums[10]) != 11) {
            EXPECT(0, "bad expected line");
            break;
        }
        for (int k = 0; k < 11; k++) e[k] = strtod(nums[k], NULL);
        sd_metrics m;
        sd_metrics_compute(p, y, n, &m);
        double got[11] = {m.mae, m.mse, m.corr, m.acc7, m.acc5, m.acc2_has0, m.f1_has0, m.acc2_non0,
                          m.f1_non0, (double)m.n, (double)m.n_non0};
        const char *names[11] = {"mae", "mse", "corr", "acc7", "acc5", "acc2_has0", "f1_has0",
                                 "acc2_non0", "f1_non0", "n", "n_non0"};
        for (int k = 0; k < 11; k++) {
            if (k == 2 && isnan(e[2])) {
                EXPECT(!m.corr_defined, "case %d: Corr should be undefined", cases);
                continue;
            }
            EXPECT(fabs(got[k] - e[k]) <= 1e-9 * fmax(1.0, fabs(e[k])), "case %d: %s = %.12g, numpy %.12g",
                   cases, names[k], got[k], e[k]);
        }
        free(p);
        free(y);
        cases++;
    }
    fclose(f);
    EXPECT(cases == 5, "read %d cases, expected 5", cases);
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
    return sd_test_finish();
}
