/* MIA, the Modality Imagination Autoencoder (MODEL.md section 3), a residual autoencoder:
 *   cat = [x_a, x_t, x_v]; h = ReLU(cat W0^T + b0); x_in = h W2^T + b2;
 *   lat = x_in We^T + be; y = lat Wd^T + bd + x_t.   No dropout.
 *
 * Legend: N rows (B for MIA #1, B*7 for MIA #2), D feature dim, L latent dim.
 * Cache: cat [N,3D], h [N,D], x_in [N,D], lat [N,L]. Every product is one GEMM over N rows
 * (linear.c); the backward allocates its scratch per call. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/real.h"
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

static void mia_poison(real *g, size_t n) {
    if (g) for (size_t i = 0; i < n; i++) g[i] = (real)NAN;
}

/* Forward (restated): cat = [x_a, x_t, x_v]; h = ReLU(cat W0^T + b0); x_in = h W2^T + b2;
 *   lat = x_in We^T + be; y = lat Wd^T + bd + x_t.
 * Backward (every linear step is sd_linear_backward: dX += dY W, dW += dY^T X, db += sum dY):
 *   dlat = dy Wd  [N,L];  dx_in = dlat We  [N,D];  dh = dx_in W2  [N,D];
 *   dpre = dh * (h > 0);  dcat = dpre W0  [N,3D] split into dx_a, dx_t, dx_v;  dx_t += dy.
 * g (or any of its members) may be NULL: those weight gradients are skipped. */
void SD_R(sd_mia_backward)(real *dx_a, real *dx_t, real *dx_v, const SD_R(mia_grads) *g,
                        const real *dy, const SD_R(mia_cache) *cache,
                        const SD_R(mia_weights) *w, size_t N, int D, int L) {
    if (N == 0 || D <= 0 || L <= 0) return;
    const size_t Dz = (size_t)D, Lz = (size_t)L;
    const SD_R(mia_grads) none = {0};
    if (!g) g = &none;
    const int want_dx = dx_a || dx_t || dx_v;

    /* Scratch: dlat [N,L], dx_in [N,D], dh [N,D], dpre [N,D], dcat [N,3D] (when a dx is wanted). */
    size_t n_scratch = 0;
    const int size_ok = sd_mul_size(N, Lz + 3 * Dz + (want_dx ? 3 * Dz : 0), &n_scratch) &&
                        sd_mul_size(n_scratch, sizeof(real), &n_scratch);
    real *scratch = size_ok ? sd_calloc(n_scratch / sizeof(real), sizeof(real)) : NULL;
    if (!scratch) {
        mia_poison(dx_a, N * Dz);
        mia_poison(dx_t, N * Dz);
        mia_poison(dx_v, N * Dz);
        mia_poison(g->W0, Dz * 3 * Dz);
        mia_poison(g->b0, Dz);
        mia_poison(g->W2, Dz * Dz);
        mia_poison(g->b2, Dz);
        mia_poison(g->We, Lz * Dz);
        mia_poison(g->be, Lz);
        mia_poison(g->Wd, Dz * Lz);
        mia_poison(g->bd, Dz);
        return;
    }
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
    sd_free(scratch);
}
