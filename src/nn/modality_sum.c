/* Weighted sums with per-sample raw weights (no softmax, weights may be negative):
 *   modality_sum (MODEL.md steps 5 and 9): y[b,r,:] = sum_{m in use} w[b,m] x_m[b,r,:]
 *   row_sum      (MODEL.md step 11):       z[b,:]   = sum_k beta[b,k] X[b,k,:]
 *
 * Legend: B batch, M modalities (3), R rows per sample (1 for step 5, 7 for step 9),
 * K rows summed by row_sum (7), D feature dim. `use` bit m set = modality m included;
 * x[m] of a modality not in use is never read (may be NULL). One sample per OpenMP
 * iteration: every output element has one writer and a fixed summation order. */
#include <string.h>

#include "core/real.h"
#include "nn/nn.h"
#include "nn/nn_omp.h"

static int in_use(unsigned use, int m) { return m < 32 && ((use >> m) & 1u); }

/* y [B,R,D] = sum_{m in use} w[b,m] x_m [B,R,D]; w [B,M]. */
void SD_R(sd_modality_sum_forward)(real *y, const real *w, const real *const *x, int M,
                                unsigned use, int B, int R, int D) {
    if (B <= 0 || R <= 0 || D <= 0) return;
    const size_t per = (size_t)R * (size_t)D; /* elements per sample */
    SD_OMP(omp parallel for schedule(static) if ((size_t)B * per >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        real *yb = y + (size_t)b * per; /* [R,D] */
        memset(yb, 0, per * sizeof *yb);
        for (int m = 0; m < M; m++) {
            if (!in_use(use, m)) continue;
            const real wm = w[(size_t)b * (size_t)M + (size_t)m];
            const real *xb = x[m] + (size_t)b * per; /* [R,D] */
            for (size_t e = 0; e < per; e++) yb[e] += wm * xb[e];
        }
    }
}

/* Forward: y[b] = sum_{m in use} w[b,m] x_m[b]. Backward (m in use only):
 *   dx_m[b] += w[b,m] dy[b]            [R,D]   (dx or dx[m] may be NULL)
 *   dw[b,m] += <dy[b], x_m[b]>         over R*D (dw may be NULL) */
void SD_R(sd_modality_sum_backward)(real *const *dx, real *dw, const real *dy, const real *w,
                                 const real *const *x, int M, unsigned use, int B, int R,
                                 int D) {
    if (B <= 0 || R <= 0 || D <= 0) return;
    const size_t per = (size_t)R * (size_t)D;
    SD_OMP(omp parallel for schedule(static) if ((size_t)B * per >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        const real *dyb = dy + (size_t)b * per; /* [R,D] */
        for (int m = 0; m < M; m++) {
            if (!in_use(use, m)) continue;
            const size_t bm = (size_t)b * (size_t)M + (size_t)m;
            if (dx && dx[m]) {
                real *dxb = dx[m] + (size_t)b * per; /* [R,D] */
                for (size_t e = 0; e < per; e++) dxb[e] += w[bm] * dyb[e];
            }
            if (dw) {
                const real *xb = x[m] + (size_t)b * per;
                real acc = 0;
                for (size_t e = 0; e < per; e++) acc += dyb[e] * xb[e];
                dw[bm] += acc;
            }
        }
    }
}

/* z [B,D] = sum_k beta[b,k] X[b,k,:]; beta [B,K], X [B,K,D]. */
void SD_R(sd_row_sum_forward)(real *z, const real *beta, const real *X, int B, int K, int D) {
    if (B <= 0 || D <= 0) return;
    const size_t Kz = (size_t)(K > 0 ? K : 0), Dz = (size_t)D;
    SD_OMP(omp parallel for schedule(static) if ((size_t)B * Kz * Dz >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        real *zb = z + (size_t)b * Dz; /* [D] */
        memset(zb, 0, Dz * sizeof *zb);
        for (size_t k = 0; k < Kz; k++) {
            const real bk = beta[(size_t)b * Kz + k];
            const real *Xk = X + ((size_t)b * Kz + k) * Dz; /* [D] */
            for (size_t d = 0; d < Dz; d++) zb[d] += bk * Xk[d];
        }
    }
}

/* Forward: z[b] = sum_k beta[b,k] X[b,k]. Backward (either output may be NULL):
 *   dbeta[b,k] += <dz[b], X[b,k]>;  dX[b,k] += beta[b,k] dz[b]. */
void SD_R(sd_row_sum_backward)(real *dbeta, real *dX, const real *dz, const real *beta,
                            const real *X, int B, int K, int D) {
    if (B <= 0 || K <= 0 || D <= 0) return;
    const size_t Kz = (size_t)K, Dz = (size_t)D;
    SD_OMP(omp parallel for schedule(static) if ((size_t)B * Kz * Dz >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        const real *dzb = dz + (size_t)b * Dz; /* [D] */
        for (size_t k = 0; k < Kz; k++) {
            const size_t bk = (size_t)b * Kz + k;
            const real *Xk = X + bk * Dz;
            if (dbeta) {
                real acc = 0;
                for (size_t d = 0; d < Dz; d++) acc += dzb[d] * Xk[d];
                dbeta[bk] += acc;
            }
            if (dX) {
                real *dXk = dX + bk * Dz;
                for (size_t d = 0; d < Dz; d++) dXk[d] += beta[bk] * dzb[d];
            }
        }
    }
}
