/* MSE and RMSE (MODEL.md section 4), in `real` precision, sums in double.
 * Legend: n number of elements (batch for MSE, batch * feature dim for RMSE). */
#include <math.h>

#include "core/real.h"
#include "loss/loss.h"

/* S = sum (a - b)^2 in double */
double SD_R(sd_sq_diff_sum)(const real *a, const real *b, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - (double)b[i];
        sum += e * e;
    }
    return sum;
}

/* da += k (a - b), db -= k (a - b) */
void SD_R(sd_sq_diff_backward)(real *da, real *db, const real *a, const real *b, size_t n, double k) {
    for (size_t i = 0; i < n; i++) {
        double g = k * ((double)a[i] - (double)b[i]);
        if (da) da[i] += (real)g;
        if (db) db[i] -= (real)g;
    }
}

/* L = (1/n) sum (p - t)^2 */
real SD_R(sd_mse_forward)(const real *pred, const real *target, size_t n) {
    if (n == 0) return 0;
    return (real)(SD_R(sd_sq_diff_sum)(pred, target, n) / (double)n);
}

/* dpred += scale * 2 (p - t) / n */
void SD_R(sd_mse_backward)(real *dpred, const real *pred, const real *target, size_t n,
                        real scale) {
    if (n == 0) return;
    SD_R(sd_sq_diff_backward)(dpred, NULL, pred, target, n, 2.0 * (double)scale / (double)n);
}

/* sqrt(mean (a-b)^2) in double, shared by the forward and the backward. */
static double rmse_value(const real *a, const real *b, size_t n) {
    if (n == 0) return 0.0;
    return sqrt(SD_R(sd_sq_diff_sum)(a, b, n) / (double)n);
}

real SD_R(sd_rmse_forward)(const real *a, const real *b, size_t n) {
    return (real)rmse_value(a, b, n);
}

/* L = sqrt(m), m = (1/n) sum e_i^2, e = a - b: dL/da_i = (1/(2L)) (2 e_i / n) = e_i / (n L),
 * dL/db_i = -e_i / (n L). At L == 0 the gradient is defined as 0 (see loss_decl.h). */
void SD_R(sd_rmse_backward)(real *da, real *db, const real *a, const real *b, size_t n,
                         real scale) {
    double L = rmse_value(a, b, n);
    if (L == 0.0) return;
    SD_R(sd_sq_diff_backward)(da, db, a, b, n, (double)scale / ((double)n * L));
}
