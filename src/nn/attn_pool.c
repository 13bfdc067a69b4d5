/* Attention pooling over time (fra2utt, MODEL.md section 2 step 2):
 *   xt = Dropout(p)(x); P = tanh(xt Wp^T + bp); s_t = P_t . c;
 *   alpha = softmax_t(0.3 s); u = sum_t alpha_t xt_t; y = Dropout(p)(u).
 *
 * Legend: B batch, T frames (padded), D feature dim, n_b = number of frames of sample b that
 * take part (len[b] in masked mode, T when len == NULL).
 * Masked mode: padded frames (t >= len[b]) are set to 0 in xt (so nothing in them, not even
 * a NaN, can reach the output), get alpha = 0 exactly, and their rows of dx are never
 * written. The projection runs as one GEMM over all B*T rows; the scores and the weighted
 * sum are per-sample loops, one sample per OpenMP iteration (no shared outputs).
 * RNG use: B*T*D draws for the input dropout, then B*D for the output dropout. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/real.h"
#include "nn/nn.h"
#include "nn/nn_gemm.h"
#include "nn/nn_omp.h"

#ifdef SD_REAL_DOUBLE
#define real_exp exp
#else
#define real_exp expf
#endif

/* The released code scales the scores by 0.3 before the softmax. */
#define ATTN_POOL_SCORE_SCALE ((real)0.3)

/* Frames of sample b that take part in the softmax (clamped to [0, T]). */
static int pool_frames(const int *len, int b, int T) {
    if (!len) return T;
    const int n = len[b];
    return n < 0 ? 0 : (n > T ? T : n);
}

void SD_R(attn_pool_forward)(real *y, SD_R(attn_pool_cache) *cache, const real *x,
                             const int *len, const real *c, const real *Wp, const real *bp,
                             int B, int T, int D, real p, sd_rng *rng) {
    if (B <= 0 || T <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T, rows = (size_t)B * Tz;
    real *xt = cache->xt;       /* [B,T,D] */
    real *P = cache->P;         /* [B,T,D] */
    real *alpha = cache->alpha; /* [B,T] */
    real *u = cache->u;         /* [B,D] */

    SD_R(dropout_forward)(xt, cache->mask_in, x, rows * Dz, p, rng);
    if (len)
        for (int b = 0; b < B; b++) {
            const size_t n = (size_t)pool_frames(len, b, T);
            memset(xt + ((size_t)b * Tz + n) * Dz, 0, (Tz - n) * Dz * sizeof *xt);
        }
    SD_R(linear_forward)(P, xt, Wp, bp, rows, D, D);
    SD_R(tanh_forward)(P, P, rows * Dz);

    SD_OMP_PARALLEL_FOR(schedule(static) if (B > 1 && (size_t)B * Tz * Dz >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        const int n = pool_frames(len, b, T);
        const real *Pb = P + (size_t)b * Tz * Dz;  /* [T,D] */
        const real *xb = xt + (size_t)b * Tz * Dz; /* [T,D] */
        real *ab = alpha + (size_t)b * Tz;         /* [T] */
        real *ub = u + (size_t)b * Dz;             /* [D] */
        /* Scores, then a softmax shifted by the max over the n frames that take part. */
        real mx = -(real)INFINITY;
        for (int t = 0; t < n; t++) {
            const real *Pt = Pb + (size_t)t * Dz;
            real s = 0;
            for (size_t d = 0; d < Dz; d++) s += Pt[d] * c[d];
            ab[t] = ATTN_POOL_SCORE_SCALE * s;
            if (ab[t] > mx) mx = ab[t];
        }
        real sum = 0;
        for (int t = 0; t < n; t++) {
            ab[t] = real_exp(ab[t] - mx);
            sum += ab[t];
        }
        for (int t = 0; t < n; t++) ab[t] /= sum;
        for (int t = n; t < T; t++) ab[t] = 0;
        /* u_b = sum_t alpha_t xt_t over the frames that take part. */
        memset(ub, 0, Dz * sizeof *ub);
        for (int t = 0; t < n; t++) {
            const real *xtt = xb + (size_t)t * Dz, a = ab[t];
            for (size_t d = 0; d < Dz; d++) ub[d] += a * xtt[d];
        }
    }
    SD_R(dropout_forward)(y, cache->mask_out, u, (size_t)B * Dz, p, rng);
}

/* Adds NaN to every gradient: how this void backward makes an allocation failure visible. */
static void pool_poison(real *g, size_t n) {
    if (g) for (size_t i = 0; i < n; i++) g[i] = (real)NAN;
}

/* Forward (restated): xt = Dropout(x); P = tanh(xt Wp^T + bp); s_t = P_t . c;
 *   alpha = softmax_{t < n_b}(0.3 s); u = sum_t alpha_t xt_t; y = Dropout(u).
 * Backward, per sample b (frames t < n_b only; the others have no gradient):
 *   du      = dy * keep_out / (1-p)                          [D]
 *   g_t     = du . xt_t                 (d alpha_t)           [T]
 *   ds_t    = 0.3 alpha_t (g_t - sum_t' alpha_t' g_t')        (softmax backward, O(T))
 *   dZ_t    = ds_t c * (1 - P_t^2)      (Z = xt Wp^T + bp)   [T,D]
 *   dc     += sum_{b,t} ds_t P_t                             (one GEMM over all rows)
 *   dxt_t   = alpha_t du + dZ_t Wp;  dWp += dZ^T xt; dbp += sum dZ   (linear_backward)
 *   dx_t   += dxt_t * keep_in / (1-p). */
void SD_R(attn_pool_backward)(real *dx, real *dc, real *dWp, real *dbp, const real *dy,
                              const SD_R(attn_pool_cache) *cache, const int *len,
                              const real *c, const real *Wp, int B, int T, int D, real p) {
    if (B <= 0 || T <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T, rows = (size_t)B * Tz;
    const real *xt = cache->xt, *P = cache->P, *alpha = cache->alpha;

    /* Scratch: du [B,D], ds [B,T], dZ [B,T,D], dxt [B,T,D] (dxt only when dx is wanted). */
    size_t n_scratch = 0;
    const int size_ok = sd_mul_size(rows, Dz, &n_scratch) &&
                        sd_mul_size(n_scratch, dx ? 2 : 1, &n_scratch) &&
                        sd_add_size(n_scratch, (size_t)B * Dz + rows, &n_scratch) &&
                        sd_mul_size(n_scratch, sizeof(real), &n_scratch);
    real *scratch = size_ok ? sd_alloc(n_scratch) : NULL;
    if (!scratch) {
        pool_poison(dx, rows * Dz);
        pool_poison(dc, Dz);
        pool_poison(dWp, Dz * Dz);
        pool_poison(dbp, Dz);
        return;
    }
    real *du = scratch;                    /* [B,D] */
    real *ds = du + (size_t)B * Dz;        /* [B,T] */
    real *dZ = ds + rows;                  /* [B,T,D] */
    real *dxt = dx ? dZ + rows * Dz : NULL; /* [B,T,D] */

    memset(du, 0, (size_t)B * Dz * sizeof *du);
    SD_R(dropout_backward)(du, dy, cache->mask_out, (size_t)B * Dz, p);

    SD_OMP_PARALLEL_FOR(schedule(static) if (B > 1 && (size_t)B * Tz * Dz >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        const int n = pool_frames(len, b, T);
        const size_t row0 = (size_t)b * Tz;
        const real *dub = du + (size_t)b * Dz; /* [D] */
        const real *ab = alpha + row0;        /* [T] */
        real *dsb = ds + row0;                /* [T] */
        real dot = 0;                          /* sum_t alpha_t g_t */
        for (int t = 0; t < n; t++) {
            const real *xtt = xt + (row0 + (size_t)t) * Dz;
            real g = 0;
            for (size_t d = 0; d < Dz; d++) g += dub[d] * xtt[d];
            dsb[t] = g;
            dot += ab[t] * g;
        }
        for (int t = 0; t < n; t++) dsb[t] = ATTN_POOL_SCORE_SCALE * ab[t] * (dsb[t] - dot);
        for (int t = n; t < T; t++) dsb[t] = 0;
        for (int t = 0; t < T; t++) {
            const size_t r = (row0 + (size_t)t) * Dz;
            real *dZt = dZ + r;
            if (t < n) {
                const real *Pt = P + r;
                for (size_t d = 0; d < Dz; d++) dZt[d] = dsb[t] * c[d] * ((real)1 - Pt[d] * Pt[d]);
            } else {
                memset(dZt, 0, Dz * sizeof *dZt);
            }
            if (dxt) {
                real *dxtt = dxt + r;
                const real a = t < n ? ab[t] : (real)0;
                for (size_t d = 0; d < Dz; d++) dxtt[d] = a * dub[d];
            }
        }
    }

    /* dc [1,D] += ds^T [1,B*T] P [B*T,D]. */
    if (dc) nn_gemm_real(1, 0, 1, Dz, rows, (real)1, ds, 1, P, Dz, (real)1, dc, Dz);
    SD_R(linear_backward)(dxt, dWp, dbp, dZ, xt, Wp, rows, D, D);

    if (dx) {
        const real scale = p > 0 ? (p < 1 ? (real)1 / ((real)1 - p) : (real)0) : (real)1;
        const uint8_t *keep = p > 0 ? cache->mask_in : NULL; /* [B,T,D] */
        SD_OMP_PARALLEL_FOR(schedule(static) if (B > 1 && (size_t)B * Tz * Dz >= NN_PAR_MIN_ELEMS))
        for (int b = 0; b < B; b++) {
            const size_t n_el = (size_t)pool_frames(len, b, T) * Dz;
            const size_t e0 = (size_t)b * Tz * Dz;
            for (size_t e = e0; e < e0 + n_el; e++)
                if (!keep || keep[e]) dx[e] += dxt[e] * scale;
        }
    }
    sd_free(scratch);
}
