/* The float tanh of src/nn/activation.c (no libm call) against the double tanh, on a dense grid
 * and at the edges: it must be as accurate as libm's tanhf. Then the vectorised loops: every
 * length (whole blocks, a padded tail, the parallel split), in place, special values, and the
 * same bits as the scalar formulas, in float and double. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nn/nn.h"

static void test_tanh_float_accuracy(void) {
    const size_t n = 2400001; /* [-12, 12] in steps of 1e-5 */
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = (float)(-12.0 + 1e-5 * (double)i);
    sd_tanh_forward(y, x, n);
    double worst = 0, worst_libm = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double ref = tanh((double)x[i]), e = fabs(y[i] - ref) / fmax(fabs(ref), 1e-30);
        double el = fabs(tanhf(x[i]) - ref) / fmax(fabs(ref), 1e-30);
        if (e > worst) worst = e, at = i;
        if (el > worst_libm) worst_libm = el;
    }
    printf("  float tanh: max relative error %.3g at x = %.6g (libm tanhf %.3g)\n", worst, (double)x[at], worst_libm);
    EXPECT(worst < 2.5e-7, "float tanh relative error %g at %g", worst, (double)x[at]);
    float edge[8] = {0.0f, -0.0f, 1e-30f, -1e-8f, 0.625f, -0.62499997f, 50.0f, -1e30f};
    float out[8];
    sd_tanh_forward(out, edge, 8);
    for (int i = 0; i < 8; i++) {
        double ref = tanh((double)edge[i]);
        EXPECT(fabs(out[i] - ref) <= 2.5e-7 * fmax(fabs(ref), 1e-30), "tanh(%g) = %.9g, expected %.9g", (double)edge[i],
               (double)out[i], ref);
    }
    EXPECT(signbit(out[1]), "tanh(-0) must be -0");
    free(x);
    free(y);
}

/* NaN in, NaN out; +-inf and huge values give +-1; denormals and -0 come out unchanged. The
 * values sit at every position of a 40-element array, so each is seen by a whole vector block
 * and by the padded tail. */
static void test_tanh_special_values(void) {
    const float special[] = {NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-40f, -1e-45f, -0.0f, 0.0f, 20.0f, -10.0f};
    const int n_special = (int)(sizeof special / sizeof special[0]);
    for (int s = 0; s < n_special; s++)
        for (int at = 0; at < 40; at++) {
            float x[40], y[40];
            for (int i = 0; i < 40; i++) x[i] = 0.25f * (float)(i - 20);
            x[at] = special[s];
            sd_tanh_forward(y, x, 40);
            const float v = special[s], out = y[at];
            if (isnan(v)) EXPECT(isnan(out), "tanh(NaN) = %g at position %d, expected NaN", (double)out, at);
            else if (fabsf(v) >= 20.0f)
                EXPECT(out == (v > 0 ? 1.0f : -1.0f), "tanh(%g) = %.9g at position %d", (double)v, (double)out, at);
            else if (fabsf(v) < 1e-30f)
                EXPECT(memcmp(&out, &v, sizeof v) == 0, "tanh(%g) = %g at position %d, expected the input", (double)v,
                       (double)out, at);
        }
}

/* Deterministic inputs in [-8, 8) with special values mixed in (NaN, +-inf, +-0, denormals,
 * the series/exp switch at 0.625). */
static uint32_t lcg_next(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state;
}

static double test_value(uint32_t *state) {
    static const double special[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e-40, -1e-42, 0.625, -0.625, 0.62499997};
    const uint32_t r = lcg_next(state);
    if (r % 16 == 0) return special[(r >> 8) % (sizeof special / sizeof special[0])];
    return 16.0 * (double)(lcg_next(state) >> 8) / 16777216.0 - 8.0;
}

/* Same result: equal bits, or both NaN (which NaN comes out of dx + dy with two NaNs is up to
 * the compiler's operand order). */
static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }
static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }

/* Lengths 0..40 (whole blocks and padded tails) and above the parallel threshold (several
 * chunks and a tail), at an odd offset so the arrays are not vector-aligned. */
static const size_t test_lengths[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                                      14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
                                      28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 97,
                                      65536 + 37, 3 * 16384 + 65536 + 1};

/* The float kernels against their scalar formulas (relu, both backwards) or against tanh taken
 * one element at a time (sd_tanh_forward); in place; nothing written past n. */
static void test_float_kernels(void) {
    const float guard = 12345.0f;
    for (size_t li = 0; li < sizeof test_lengths / sizeof test_lengths[0]; li++) {
        const size_t n = test_lengths[li];
        /* [n + 2]: element 0 unused (offset 1), element n + 1 a guard */
        float *x = malloc((n + 2) * sizeof *x), *y = malloc((n + 2) * sizeof *y), *dy = malloc((n + 2) * sizeof *dy);
        float *dx = malloc((n + 2) * sizeof *dx), *dx0 = malloc((n + 2) * sizeof *dx0), *z = malloc((n + 2) * sizeof *z);
        uint32_t state = (uint32_t)(n * 7919u + 1u);
        for (size_t i = 0; i < n + 2; i++) {
            x[i] = (float)test_value(&state);
            dy[i] = (float)test_value(&state);
            dx0[i] = (float)test_value(&state);
        }
        size_t bad = 0, first_bad = 0;
#define CHECK_SAME(cond, i)             \
    if (!(cond)) {                      \
        if (bad++ == 0) first_bad = (i); \
    }
        /* sd_relu_forward, out of place and in place */
        y[n + 1] = guard;
        sd_relu_forward(y + 1, x + 1, n);
        for (size_t i = 1; i <= n; i++) CHECK_SAME(same_float(y[i], x[i] > 0 ? x[i] : 0.0f), i);
        memcpy(z, x, (n + 2) * sizeof *z);
        sd_relu_forward(z + 1, z + 1, n);
        for (size_t i = 1; i <= n; i++) CHECK_SAME(same_float(z[i], y[i]), i);
        EXPECT(bad == 0 && y[n + 1] == guard && z[n + 1] == x[n + 1], "sd_relu_forward n=%zu: %zu wrong, first at %zu", n,
               bad, first_bad);
        /* sd_relu_backward: dx untouched (bits included) where y <= 0 or y is NaN; y from x here */
        bad = 0;
        memcpy(dx, dx0, (n + 2) * sizeof *dx);
        dx[n + 1] = guard;
        sd_relu_backward(dx + 1, dy + 1, x + 1, n);
        for (size_t i = 1; i <= n; i++) CHECK_SAME(same_float(dx[i], x[i] > 0 ? dx0[i] + dy[i] : dx0[i]), i);
        EXPECT(bad == 0 && dx[n + 1] == guard, "sd_relu_backward n=%zu: %zu wrong, first at %zu", n, bad, first_bad);
        /* sd_tanh_forward: element i alone (a one-element tail) gives the same bits as in the array */
        bad = 0;
        y[n + 1] = guard;
        sd_tanh_forward(y + 1, x + 1, n);
        for (size_t i = 1; i <= n; i++) {
            float alone;
            sd_tanh_forward(&alone, x + i, 1);
            CHECK_SAME(same_float(y[i], alone), i);
            CHECK_SAME(isnan(x[i]) ? isnan(y[i]) : fabs(y[i] - tanh((double)x[i])) <= 2.5e-7 * fabs(tanh((double)x[i])),
                       i);
        }
        memcpy(z, x, (n + 2) * sizeof *z);
        sd_tanh_forward(z + 1, z + 1, n);
        for (size_t i = 1; i <= n; i++) CHECK_SAME(same_float(z[i], y[i]), i);
        EXPECT(bad == 0 && y[n + 1] == guard && z[n + 1] == x[n + 1], "sd_tanh_forward n=%zu: %zu wrong, first at %zu", n,
               bad, first_bad);
        /* sd_tanh_backward with y = tanh(x) */
        bad = 0;
        memcpy(dx, dx0, (n + 2) * sizeof *dx);
        dx[n + 1] = guard;
        sd_tanh_backward(dx + 1, dy + 1, y + 1, n);
        for (size_t i = 1; i <= n; i++) CHECK_SAME(same_float(dx[i], dx0[i] + dy[i] * (1.0f - y[i] * y[i])), i);
        EXPECT(bad == 0 && dx[n + 1] == guard, "sd_tanh_backward n=%zu: %zu wrong, first at %zu", n, bad, first_bad);
        free(x);
        free(y);
        free(dy);
        free(dx);
        free(dx0);
        free(z);
    }
}

/* The double kernels (gradient checks use them) against the scalar formulas and libm's tanh. */
static void test_double_kernels(void) {
    for (size_t li = 0; li < sizeof test_lengths / sizeof test_lengths[0]; li++) {
        const size_t n = test_lengths[li];
        double *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y), *dy = malloc((n + 1) * sizeof *dy);
        double *dx = malloc((n + 1) * sizeof *dx), *dx0 = malloc((n + 1) * sizeof *dx0);
        uint32_t state = (uint32_t)(n * 104729u + 3u);
        for (size_t i = 0; i < n + 1; i++) {
            x[i] = test_value(&state);
            dy[i] = test_value(&state);
            dx0[i] = test_value(&state);
        }
        size_t bad = 0, first_bad = 0;
        sd_relu_forward_f64(y, x, n);
        for (size_t i = 0; i < n; i++) CHECK_SAME(same_double(y[i], x[i] > 0 ? x[i] : 0.0), i);
        memcpy(dx, dx0, (n + 1) * sizeof *dx);
        sd_relu_backward_f64(dx, dy, x, n);
        for (size_t i = 0; i < n; i++) CHECK_SAME(same_double(dx[i], x[i] > 0 ? dx0[i] + dy[i] : dx0[i]), i);
        sd_tanh_forward_f64(y, x, n);
        for (size_t i = 0; i < n; i++) CHECK_SAME(same_double(y[i], tanh(x[i])), i);
        memcpy(dx, dx0, (n + 1) * sizeof *dx);
        sd_tanh_backward_f64(dx, dy, y, n);
        for (size_t i = 0; i < n; i++) CHECK_SAME(same_double(dx[i], dx0[i] + dy[i] * (1.0 - y[i] * y[i])), i);
        EXPECT(bad == 0 && dx[n] == dx0[n], "double kernels n=%zu: %zu wrong, first at %zu", n, bad, first_bad);
        free(x);
        free(y);
        free(dy);
        free(dx);
        free(dx0);
    }
#undef CHECK_SAME
}

int main(void) {
    sd_test_run("activation.tanh_float_accuracy", test_tanh_float_accuracy);
    sd_test_run("activation.tanh_special_values", test_tanh_special_values);
    sd_test_run("activation.float_kernels", test_float_kernels);
    sd_test_run("activation.double_kernels", test_double_kernels);
    return sd_test_finish();
}
