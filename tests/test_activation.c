/* The float tanh of src/nn/activation.c (no libm call) against the double tanh, on a dense grid
 * and at the edges: it must be as accurate as libm's tanhf. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "nn/nn.h"

static void test_tanh_float_accuracy(void) {
    const size_t n = 2400001; /* [-12, 12] in steps of 1e-5 */
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = (float)(-12.0 + 1e-5 * (double)i);
    tanh_forward(y, x, n);
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
    tanh_forward(out, edge, 8);
    for (int i = 0; i < 8; i++) {
        double ref = tanh((double)edge[i]);
        EXPECT(fabs(out[i] - ref) <= 2.5e-7 * fmax(fabs(ref), 1e-30), "tanh(%g) = %.9g, expected %.9g", (double)edge[i],
               (double)out[i], ref);
    }
    EXPECT(signbit(out[1]), "tanh(-0) must be -0");
    free(x);
    free(y);
}

int main(void) {
    sd_test_run("activation.tanh_float_accuracy", test_tanh_float_accuracy);
    return sd_test_finish();
}
