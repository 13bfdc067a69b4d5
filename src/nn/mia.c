/* MIA, the Modality Imagination Autoencoder (MODEL.md section 3), a residual autoencoder:
 *   cat = [x_a, x_t, x_v]; h = ReLU(cat W0^T + b0); x_in = h W2^T + b2;
 *   lat = x_in We^T + be; y = lat Wd^T + bd + x_t.   No dropout.
 *
 * Legend: N rows (B for MIA #1, B*7 for MIA #2), D feature dim, L latent dim.
 * Cache: cat [N,3D], h [N,D], x_in [N,D], lat [N,L]. Every product is one GEMM over N rows
 * (linear.c); the backward's scratch is the caller's (sd_mia_work_len elements). */
#include <string.h>

#include "core/alloc.h"
#include "core/real.h"
#include "core/status.h"
#include "nn/nn.h"

void SD_R(sd_mia_forward)(real *y, SD_R(mia_cache) *cache, const real *x_a, const real *x_t,
                       const real *x_v, const SD_R(mia_weights) *w, size_t N, int D, int L) {
    if (N == 0 || D <= 0) return;
    const size_t Dz = (size_t)D;
    real *cat = cache->cat; /* [N,3D] */
    const real *parts[3] = {x_a, x_t, x_v};
    for (size_t n = 0; n < N; n++)
        for (int m = 0; m < 3; m++)
            memcpy(cat + n * 3 * Dz + (size_t)m * Dz, parts[m] + n * Dz, Dz * sizeof *cat);
    SD_R(sd_linear_forward)(cache->h, cat, w->W0, w->b0, N, 3 * D, D);
    SD_R(sd_relu_forward)(cache->h, cache->h, N * Dz);
    SD_R(sd_linear_forward)(cache->x_in, cache->h, w->W2, w->b2, N, D, D);
    SD_R(sd_linear_forward)(cache->lat, cache->x_in, w->We, w->be, N, D, L);
    SD_R(sd_linear_forward)(y, cache->lat, w->Wd, w->bd, N, L, D);
    for (size_t e = 0; e < N * Dz; e++) y[e] += x_t[e];
}

/* Scratch of the backward: dlat [N,L], dx_in, dh, dpre [N,D] each, dcat [N,3D]; SIZE_MAX when
 * that overflows. */
size_t SD_R(sd_mia_work_len)(size_t N, int D, int L) {
    size_t len;
    if (D < 0 || L < 0 || !sd_mul_size(N, (size_t)L + 6 * (size_t)D, &len)) return SIZE_MAX;
    return len;
}

/* Forward (restated): cat = [x_a, x_t, x_v]; h = ReLU(cat W0^T + b0); x_in = h W2^T + b2;
 *   lat = x_in We^T + be; y = lat Wd^T + bd + x_t.
 * Backward (every linear step is sd_linear_backward: dX += dY W, dW += dY^T X, db += sum dY):
 *   dlat = dy Wd  [N,L];  dx_in = dlat We  [N,D];  dh = dx_in W2  [N,D];
 *   dpre = dh * (h > 0);  dcat = dpre W0  [N,3D] split into dx_a, dx_t, dx_v;  dx_t += dy.
 * g (or any of its members) may be NULL: those weight gradients are skipped. */
sd_status SD_R(sd_mia_backward)(real *dx_a, real *dx_t, real *dx_v, const SD_R(mia_grads) *g,
                             const real *dy, const SD_R(mia_cache) *cache,
                             const SD_R(mia_weights) *w, size_t N, int D, int L, real *work) {
    if (N == 0 || D <= 0 || L <= 0) return SD_OK;
    const size_t Dz = (size_t)D, Lz = (size_t)L;
    const SD_R(mia_grads) none = {0};
    if (!g) g = &none;
    const int want_dx = dx_a || dx_t || dx_v;

    /* Scratch: dlat [N,L], dx_in [N,D], dh [N,D], dpre [N,D], dcat [N,3D] (when a dx is
     * wanted), zeroed: the linear backwards add into them. */
    const size_t work_len = SD_R(sd_mia_work_len)(N, D, L);
    if (!work || work_len == SIZE_MAX) return SD_E_ARG;
    real *scratch = work;
    memset(scratch, 0, (want_dx ? work_len : work_len - N * 3 * Dz) * sizeof *scratch);
    real *dlat = scratch;                         /* [N,L] */
    real *dx_in = dlat + N * Lz;                  /* [N,D] */
    real *dh = dx_in + N * Dz;                    /* [N,D] */
    real *dpre = dh + N * Dz;                     /* [N,D] */
    real *dcat = want_dx ? dpre + N * Dz : NULL;  /* [N,3D] */

    SD_R(sd_linear_backward)(dlat, g->Wd, g->bd, dy, cache->lat, w->Wd, N, L, D);
    SD_R(sd_linear_backward)(dx_in, g->We, g->be, dlat, cache->x_in, w->We, N, D, L);
    SD_R(sd_linear_backward)(dh, g->W2, g->b2, dx_in, cache->h, w->W2, N, D, D);
    SD_R(sd_relu_backward)(dpre, dh, cache->h, N * Dz);
    SD_R(sd_linear_backward)(dcat, g->W0, g->b0, dpre, cache->cat, w->W0, N, 3 * D, D);

    if (want_dx) {
        real *outs[3] = {dx_a, dx_t, dx_v};
        for (size_t n = 0; n < N; n++)
            for (int m = 0; m < 3; m++) {
                if (!outs[m]) continue;
                real *dst = outs[m] + n * Dz;
                const real *src = dcat + n * 3 * Dz + (size_t)m * Dz;
                for (size_t d = 0; d < Dz; d++) dst[d] += src[d];
            }
    }
    if (dx_t)
        for (size_t e = 0; e < N * Dz; e++) dx_t[e] += dy[e];
    return SD_OK;
}
