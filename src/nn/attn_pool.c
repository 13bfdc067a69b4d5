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
 * Memory: the layer works through the batch in chunks of whole samples (sd_nn_chunk_samples);
 * xt, as large as the input, is never kept: each pass recomputes a chunk of it from x and the
 * dropout key (sd_frames_dropout) in cache->work. The backward writes dZ over P (the cache is
 * used up: one backward per forward).
 * RNG use: the draws of B*T*D input dropout elements (key_in), then B*D for the output. */
#include <math.h>
#include <string.h>

#include "core/real.h"
#include "nn/nn.h"
#include "nn/nn_gemm.h"
#include "nn/nn_omp.h"

/* The released code scales the scores by 0.3 before the softmax. */
#define ATTN_POOL_SCORE_SCALE ((real)0.3)

/* work: xt of one chunk [Bc,T,D] (then its dxt), du [B,D], ds of one chunk [Bc,T]. */
size_t SD_R(sd_attn_pool_work_len)(int B, int T, int D) {
    const size_t Bc = (size_t)sd_nn_chunk_samples(B, T, D);
    return Bc * (size_t)T * (size_t)D + (size_t)B * (size_t)D + Bc * (size_t)T;
}

/* Scores, softmax and weighted sum of sample b (MODEL.md step 2), xb its frames [T,D]. */
static void pool_sample(real *ab, real *ub, const real *Pb, const real *xb, const real *c, int n,
                        int T, size_t Dz) {
    /* Scores, then their softmax over the n frames that take part. */
    for (int t = 0; t < n; t++) {
        const real *Pt = Pb + (size_t)t * Dz;
        real s = 0;
        for (size_t d = 0; d < Dz; d++) s += Pt[d] * c[d];
        ab[t] = ATTN_POOL_SCORE_SCALE * s;
    }
    if (n > 0) SD_R(sd_softmax_forward)(ab, (size_t)n, 1);
    for (int t = n; t < T; t++) ab[t] = 0;
    /* u_b = sum_t alpha_t xt_t over the frames that take part. */
    memset(ub, 0, Dz * sizeof *ub);
    for (int t = 0; t < n; t++) {
        const real *xtt = xb + (size_t)t * Dz, a = ab[t];
        for (size_t d = 0; d < Dz; d++) ub[d] += a * xtt[d];
    }
}

void SD_R(sd_attn_pool_forward)(real *y, SD_R(attn_pool_cache) *cache, const real *x,
                             const int *len, const real *c, const real *Wp, const real *bp,
                             int B, int T, int D, real p, sd_rng *rng) {
    if (B <= 0 || T <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T;
    const int Bc = sd_nn_chunk_samples(B, T, D);
    cache->key_in = sd_dropout_key_reserve(rng, (size_t)B * Tz * Dz, (double)p);
    for (int b0 = 0; b0 < B; b0 += Bc) {
        const int nb = B - b0 < Bc ? B - b0 : Bc;
        const size_t rows = (size_t)nb * Tz;
        const real *xt = SD_R(sd_frames_dropout)(cache->work, x, len, &cache->key_in, b0, nb, T, D);
        real *P = cache->P + (size_t)b0 * Tz * Dz; /* [nb,T,D] */
        SD_R(sd_linear_forward)(P, xt, Wp, bp, rows, D, D);
        SD_R(sd_tanh_forward)(P, P, rows * Dz);
        SD_OMP(omp parallel for schedule(static) if (nb > 1 && rows * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int b = b0 + i;
            pool_sample(cache->alpha + (size_t)b * Tz, cache->u + (size_t)b * Dz,
                        P + (size_t)i * Tz * Dz, xt + (size_t)i * Tz * Dz, c, nn_frames(len, b, T),
                        T, Dz);
        }
    }
    SD_R(sd_dropout_forward)(y, cache->mask_out, cache->u, (size_t)B * Dz, p, rng);
}

/* Forward (restated): xt = Dropout(x); P = tanh(xt Wp^T + bp); s_t = P_t . c;
 *   alpha = softmax_{t < n_b}(0.3 s); u = sum_t alpha_t xt_t; y = Dropout(u).
 * Backward, per sample b (frames t < n_b only; the others have no gradient):
 *   du      = dy * keep_out / (1-p)                          [D]
 *   g_t     = du . xt_t                 (d alpha_t)           [T]
 *   ds_t    = 0.3 alpha_t (g_t - sum_t' alpha_t' g_t')        (softmax backward, O(T))
 *   dc     += sum_{b,t} ds_t P_t                             (one GEMM per chunk)
 *   dZ_t    = ds_t c * (1 - P_t^2)      (Z = xt Wp^T + bp; written over P_t)
 *   dWp += dZ^T xt; dbp += sum dZ                            (sd_linear_backward)
 *   dxt_t   = dZ_t Wp + alpha_t du      (written over xt, no longer needed)
 *   dx_t   += dxt_t * keep_in / (1-p). */
void SD_R(sd_attn_pool_backward)(real *dx, real *dc, real *dWp, real *dbp, const real *dy,
                              const SD_R(attn_pool_cache) *cache, const real *x, const int *len,
                              const real *c, const real *Wp, int B, int T, int D, real p) {
    if (B <= 0 || T <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T;
    const int Bc = sd_nn_chunk_samples(B, T, D);
    const real *alpha = cache->alpha;
    real *xt_buf = cache->work;                 /* [Bc,T,D] xt, then dxt */
    real *du = xt_buf + (size_t)Bc * Tz * Dz;   /* [B,D] */
    real *ds = du + (size_t)B * Dz;             /* [Bc,T] */

    memset(du, 0, (size_t)B * Dz * sizeof *du);
    SD_R(sd_dropout_backward)(du, dy, cache->mask_out, (size_t)B * Dz, p);

    for (int b0 = 0; b0 < B; b0 += Bc) {
        const int nb = B - b0 < Bc ? B - b0 : Bc;
        const size_t rows = (size_t)nb * Tz;
        const real *xt = SD_R(sd_frames_dropout)(xt_buf, x, len, &cache->key_in, b0, nb, T, D);
        real *PZ = cache->P + (size_t)b0 * Tz * Dz; /* [nb,T,D]: P, then dZ */

        SD_OMP(omp parallel for schedule(static) if (nb > 1 && rows * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int b = b0 + i, n = nn_frames(len, b, T);
            const real *dub = du + (size_t)b * Dz;        /* [D] */
            const real *ab = alpha + (size_t)b * Tz;      /* [T] */
            const real *xb = xt + (size_t)i * Tz * Dz;    /* [T,D] */
            real *dsb = ds + (size_t)i * Tz;              /* [T] */
            real dot = 0;                                  /* sum_t alpha_t g_t */
            for (int t = 0; t < n; t++) {
                const real *xtt = xb + (size_t)t * Dz;
                real g = 0;
                for (size_t d = 0; d < Dz; d++) g += dub[d] * xtt[d];
                dsb[t] = g;
                dot += ab[t] * g;
            }
            for (int t = 0; t < n; t++) dsb[t] = ATTN_POOL_SCORE_SCALE * ab[t] * (dsb[t] - dot);
            for (int t = n; t < T; t++) dsb[t] = 0;
        }
        /* dc [1,D] += ds^T [1,rows] P [rows,D], before P becomes dZ. */
        if (dc) nn_gemm_real(1, 0, 1, Dz, rows, (real)1, ds, 1, PZ, Dz, (real)1, dc, Dz);
        SD_OMP(omp parallel for schedule(static) if (nb > 1 && rows * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int n = nn_frames(len, b0 + i, T);
            const real *dsb = ds + (size_t)i * Tz;
            real *Zb = PZ + (size_t)i * Tz * Dz;
            for (int t = 0; t < n; t++) {
                real *Zt = Zb + (size_t)t * Dz;
                for (size_t d = 0; d < Dz; d++) Zt[d] = dsb[t] * c[d] * ((real)1 - Zt[d] * Zt[d]);
            }
            memset(Zb + (size_t)n * Dz, 0, (Tz - (size_t)n) * Dz * sizeof *Zb);
        }
        SD_R(sd_linear_backward)(NULL, dWp, dbp, PZ, xt, Wp, rows, D, D);
        if (!dx) continue;

        /* dxt = alpha_t du, then += dZ Wp in the GEMM (no separate zeroing pass), over xt's
         * buffer (xt may also be x itself: then the buffer was not used and x is left alone).
         * Padded frames have alpha = 0 and dZ = 0: their rows are 0. */
        real *dxt = xt_buf;
        SD_OMP(omp parallel for schedule(static) if (nb > 1 && rows * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int b = b0 + i;
            const real *dub = du + (size_t)b * Dz, *ab = alpha + (size_t)b * Tz;
            for (int t = 0; t < T; t++) {
                real *dxtt = dxt + ((size_t)i * Tz + (size_t)t) * Dz;
                for (size_t d = 0; d < Dz; d++) dxtt[d] = ab[t] * dub[d];
            }
        }
        nn_gemm_real(0, 0, rows, Dz, Dz, (real)1, PZ, Dz, Wp, Dz, (real)1, dxt, Dz);
        SD_R(sd_frames_dropout_backward)(dx, dxt, len, &cache->key_in, b0, nb, T, D);
    }
}
