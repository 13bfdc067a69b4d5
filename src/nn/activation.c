/* Elementwise activations: ReLU and tanh.
 *
 * Legend: n elements (any shape, flattened). The forwards may run in place (y == x).
 * The backwards take the forward OUTPUT y, which is all they need. */
#include <math.h>
#include <stddef.h>

#include "core/real.h"
#include "nn/nn.h"
#include "nn/nn_omp.h"

#ifdef SD_REAL_DOUBLE
#define real_tanh tanh
#else
#define real_tanh tanhf
#endif

/* Elements below which the loops stay serial. */
#define ACT_PAR_MIN 65536

/* y [n] = max(x, 0). */
void SD_R(relu_forward)(real *y, const real *x, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : (real)0;
}

/* Forward: y = max(x, 0). Backward: dx += dy * (y > 0) (the kink at 0 gets gradient 0). */
void SD_R(relu_backward)(real *dx, const real *dy, const real *y, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++)
        if (y[i] > 0) dx[i] += dy[i];
}

/* y [n] = tanh(x). */
void SD_R(tanh_forward)(real *y, const real *x, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++) y[i] = real_tanh(x[i]);
}

/* Forward: y = tanh(x). Backward: dx += dy * (1 - y^2). */
void SD_R(tanh_backward)(real *dx, const real *dy, const real *y, size_t n) {
    const ptrdiff_t count = (ptrdiff_t)n;
    SD_OMP_PARALLEL_FOR(schedule(static) if (n >= ACT_PAR_MIN))
    for (ptrdiff_t i = 0; i < count; i++) dx[i] += dy[i] * ((real)1 - y[i] * y[i]);
}
