/* UMCA cross-attention (cross_att_fra2utt, MODEL.md section 2 step 7), K queries over T frames:
 *   xt = Dropout(p)(x); Kt = tanh(xt Wi^T + bi); Qp = Q Wq^T + bq;
 *   S = 0.3 Kt Qp^T; A = softmax over t, separately per query k; O = A^T xt; y = Dropout(p)(O).
 * Single head, no 1/sqrt(D), no value projection.
 *
 * Legend: B batch, T frames (padded), K queries (7 in SDUMC), D feature dim, n_b = frames of
 * sample b that take part (len[b] in masked mode, T when len == NULL); Bc samples per chunk.
 * Masked mode: padded frames are set to 0 in xt, get A = 0 exactly, and their rows of dx are
 * never written. The frame projection is a GEMM over the rows of a chunk of samples; the
 * scores, the softmax and the weighted sum are per-sample loops, one sample per OpenMP
 * iteration.
 * Memory: xt (as large as the input) is never kept. The layer works through the batch in
 * chunks of whole samples (sd_nn_chunk_samples); the backward recomputes a chunk's xt from x and
 * the dropout key (sd_frames_dropout), in cache->work. Kt is kept in cache->Kt when the caller
 * gives that buffer; with cache->Kt == NULL the backward recomputes it too (one more B*T*D*D
 * GEMM, B*T*D values less to keep: the caller's trade of memory for time).
 * RNG use: the draws of B*T*D input dropout elements (key_in), then B*K*D for the output. */
#include <math.h>
#include <string.h>

#include "core/real.h"
#include "core/simd.h"
#include "nn/nn.h"
#include "nn/nn_gemm.h"
#include "nn/nn_omp.h"

/* The released code scales the scores by 0.3 before the softmax. */
#define CROSS_ATTN_SCORE_SCALE ((real)0.3)
/* Features per block when dZ is written over Kt row by row. */
#define CROSS_ATTN_ROW_BLOCK 64

/* ---- Per-sample products with K (7) queries. They are too thin for BLAS (OpenBLAS ran them at
 * a fifth of its speed on wide products): plain loops over the feature dim, which vectorise
 * (per-CPU clones, core/simd.h) and sum in a fixed order. ---- */

/* Partial sums of a dot product: lane j adds the elements j, j + DOT_LANES, ...; the lanes are
 * then added pairwise. */
#define DOT_LANES 16

/* C [n,K] = alpha X [n,D] Y [K,D]^T. */
static SD_VECTOR_CLONES void rows_dot(real *C, real alpha, const real *X, int n, const real *Y, size_t K,
                                      size_t D) {
    for (int t = 0; t < n; t++) {
        const real *x = X + (size_t)t * D; /* [D] */
        for (size_t k = 0; k < K; k++) {
            const real *y = Y + k * D; /* [D] */
            real acc[DOT_LANES] = {0};
            size_t d = 0;
            for (; d + DOT_LANES <= D; d += DOT_LANES)
                for (int j = 0; j < DOT_LANES; j++) acc[j] += x[d + j] * y[d + j];
            for (int j = 0; d < D; d++, j++) acc[j] += x[d] * y[d];
            for (int w = DOT_LANES / 2; w >= 1; w /= 2)
                for (int j = 0; j < w; j++) acc[j] += acc[j + w];
            C[(size_t)t * K + k] = alpha * acc[0];
        }
    }
}

/* O [K,D] = A [n,K]^T X [n,D] (the rows of X weighted by each column of A, summed over t). */
static SD_VECTOR_CLONES void rows_tsum(real *O, const real *A, const real *X, int n, size_t K, size_t D) {
    memset(O, 0, K * D * sizeof *O);
    for (int t = 0; t < n; t++) {
        const real *x = X + (size_t)t * D; /* [D] */
        for (size_t k = 0; k < K; k++) {
            const real a = A[(size_t)t * K + k];
            real *o = O + k * D; /* [D] */
            for (size_t d = 0; d < D; d++) o[d] += a * x[d];
        }
    }
}

/* Y [n,D] = A [n,K] Z [K,D]. */
static SD_VECTOR_CLONES void rows_mix(real *Y, const real *A, const real *Z, int n, size_t K, size_t D) {
    for (int t = 0; t < n; t++) {
        real *y = Y + (size_t)t * D; /* [D] */
        memset(y, 0, D * sizeof *y);
        for (size_t k = 0; k < K; k++) {
            const real a = A[(size_t)t * K + k], *z = Z + k * D;
            for (size_t d = 0; d < D; d++) y[d] += a * z[d];
        }
    }
}

/* work: xt of one chunk [Bc,T,D] (then its dxt), Kt of one chunk [Bc,T,D] (then dZ; unused
 * when the cache keeps Kt), dS of one chunk [Bc,T,K], dO [B,K,D], dQp [B,K,D]. */
size_t SD_R(sd_cross_attn_work_len)(int B, int T, int K, int D) {
    const size_t Bc = (size_t)sd_nn_chunk_samples(B, T, D), Tz = (size_t)T;
    return 2 * Bc * Tz * (size_t)D + Bc * Tz * (size_t)K + 2 * (size_t)B * (size_t)K * (size_t)D;
}

/* Kt = tanh(xt Wi^T + bi) of nb samples ([nb,T,D]). */
static void project_frames(real *Kt, const real *xt, const real *Wi, const real *bi, int nb, int T,
                           int D) {
    const size_t rows = (size_t)nb * (size_t)T;
    SD_R(sd_linear_forward)(Kt, xt, Wi, bi, rows, D, D);
    SD_R(sd_tanh_forward)(Kt, Kt, rows * (size_t)D);
}

void SD_R(sd_cross_attn_forward)(real *y, SD_R(cross_attn_cache) *cache, const real *x,
                              const int *len, const real *Q, const real *Wq, const real *bq,
                              const real *Wi, const real *bi, int B, int T, int K, int D,
                              real p, sd_rng *rng) {
    if (B <= 0 || T <= 0 || K <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T, Kz = (size_t)K, qrows = (size_t)B * Kz;
    const int Bc = sd_nn_chunk_samples(B, T, D);
    real *Qp = cache->Qp;                           /* [B,K,D] */
    real *xt_buf = cache->work;                     /* [Bc,T,D] */
    real *Kt_chunk = xt_buf + (size_t)Bc * Tz * Dz; /* [Bc,T,D] when the cache keeps no Kt */

    cache->key_in = sd_dropout_key_reserve(rng, (size_t)B * Tz * Dz, (double)p);
    SD_R(sd_linear_forward)(Qp, Q, Wq, bq, qrows, D, D);
    for (int b0 = 0; b0 < B; b0 += Bc) {
        const int nb = B - b0 < Bc ? B - b0 : Bc;
        const real *xt = SD_R(sd_frames_dropout)(xt_buf, x, len, &cache->key_in, b0, nb, T, D);
        real *Kt = cache->Kt ? cache->Kt + (size_t)b0 * Tz * Dz : Kt_chunk; /* [nb,T,D] */
        project_frames(Kt, xt, Wi, bi, nb, T, D);
        SD_OMP(omp parallel for schedule(static) if (nb > 1 && (size_t)nb * Tz * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int b = b0 + i, n = nn_frames(len, b, T);
            const real *Ktb = Kt + (size_t)i * Tz * Dz;        /* [T,D] */
            const real *xb = xt + (size_t)i * Tz * Dz;         /* [T,D] */
            const real *Qpb = Qp + (size_t)b * Kz * Dz;        /* [K,D] */
            real *Ab = cache->A + (size_t)b * Tz * Kz;          /* [T,K] */
            real *Ob = cache->O + (size_t)b * Kz * Dz;          /* [K,D] */
            /* S [n,K] = 0.3 Kt_b [n,D] Qp_b^T [D,K], stored in A (rows t >= n are zeroed below). */
            rows_dot(Ab, CROSS_ATTN_SCORE_SCALE, Ktb, n, Qpb, Kz, Dz);
            /* Softmax over the n frames, per column k. */
            for (size_t k = 0; k < Kz; k++) SD_R(sd_softmax_forward)(Ab + k, (size_t)n, Kz);
            for (size_t e = (size_t)n * Kz; e < Tz * Kz; e++) Ab[e] = 0;
            /* O [K,D] = A_b^T [K,n] xt_b [n,D]. */
            rows_tsum(Ob, Ab, xb, n, Kz, Dz);
        }
    }
    SD_R(sd_dropout_forward)(y, cache->mask_out, cache->O, qrows * Dz, p, rng);
}

/* Forward (restated): xt = Dropout(x); Kt = tanh(xt Wi^T + bi); Qp = Q Wq^T + bq;
 *   A[:,k] = softmax_{t < n_b}(0.3 Kt Qp_k); O_k = sum_t A[t,k] xt_t; y = Dropout(O).
 * Backward, per chunk of samples (xt recomputed; Kt too unless kept), per sample b (frames
 * t < n_b only):
 *   dO      = dy * keep_out / (1-p)                                 [K,D]
 *   dA[t,k] = dO_k . xt_t                                           [T,K]
 *   dS[t,k] = 0.3 A[t,k] (dA[t,k] - sum_t' A[t',k] dA[t',k])        (gradient of Kt Qp^T)
 *   dQp_k   = sum_t dS[t,k] Kt_t                                    [K,D]
 *   dZ_t    = (sum_k dS[t,k] Qp_k) * (1 - Kt_t^2)   (written over Kt_t)   [T,D]
 *   dWi += dZ^T xt; dbi += sum dZ                                   (sd_linear_backward)
 *   dxt_t   = dZ_t Wi + sum_k A[t,k] dO_k   (written over xt, no longer needed)
 *   dx_t   += dxt_t * keep_in / (1-p);
 * then dQ += dQp Wq; dWq += dQp^T Q; dbq += sum dQp                 (sd_linear_backward). */
void SD_R(sd_cross_attn_backward)(real *dx, real *dQ, real *dWq, real *dbq, real *dWi, real *dbi,
                               const real *dy, const SD_R(cross_attn_cache) *cache, const real *x,
                               const int *len, const real *Q, const real *Wq, const real *Wi,
                               const real *bi, int B, int T, int K, int D, real p) {
    if (B <= 0 || T <= 0 || K <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T, Kz = (size_t)K, qrows = (size_t)B * Kz;
    const int Bc = sd_nn_chunk_samples(B, T, D);
    const real *Qp = cache->Qp, *A = cache->A;
    real *xt_buf = cache->work;                    /* [Bc,T,D] xt, then dxt */
    real *Kt_chunk = xt_buf + (size_t)Bc * Tz * Dz; /* [Bc,T,D] when the cache keeps no Kt */
    real *dS = Kt_chunk + (size_t)Bc * Tz * Dz;     /* [Bc,T,K] */
    real *dO = dS + (size_t)Bc * Tz * Kz;          /* [B,K,D] */
    real *dQp = dO + qrows * Dz;                   /* [B,K,D] */

    memset(dO, 0, qrows * Dz * sizeof *dO);
    SD_R(sd_dropout_backward)(dO, dy, cache->mask_out, qrows * Dz, p);

    for (int b0 = 0; b0 < B; b0 += Bc) {
        const int nb = B - b0 < Bc ? B - b0 : Bc;
        const size_t rows = (size_t)nb * Tz;
        const real *xt = SD_R(sd_frames_dropout)(xt_buf, x, len, &cache->key_in, b0, nb, T, D);
        real *KZ = cache->Kt ? cache->Kt + (size_t)b0 * Tz * Dz : Kt_chunk; /* [nb,T,D] Kt, then dZ */
        if (!cache->Kt) project_frames(KZ, xt, Wi, bi, nb, T, D);
        SD_OMP(omp parallel for schedule(static) if (nb > 1 && rows * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int b = b0 + i, n = nn_frames(len, b, T);
            const real *xb = xt + (size_t)i * Tz * Dz;    /* [T,D] */
            const real *Qpb = Qp + (size_t)b * Kz * Dz;   /* [K,D] */
            const real *Ab = A + (size_t)b * Tz * Kz;     /* [T,K] */
            const real *dOb = dO + (size_t)b * Kz * Dz;   /* [K,D] */
            real *KZb = KZ + (size_t)i * Tz * Dz;         /* [T,D] Kt_b, then dZ_b */
            real *dSb = dS + (size_t)i * Tz * Kz;         /* [T,K] */
            real *dQpb = dQp + (size_t)b * Kz * Dz;       /* [K,D] */

            /* dA [n,K] = xt_b [n,D] dO_b^T [D,K], kept in dS. */
            rows_dot(dSb, (real)1, xb, n, dOb, Kz, Dz);
            /* Softmax backward per column k: dS = 0.3 A (dA - <A, dA>). */
            for (size_t k = 0; k < Kz; k++) {
                real dot = 0;
                for (int t = 0; t < n; t++) dot += Ab[(size_t)t * Kz + k] * dSb[(size_t)t * Kz + k];
                for (int t = 0; t < n; t++) {
                    const size_t e = (size_t)t * Kz + k;
                    dSb[e] = CROSS_ATTN_SCORE_SCALE * Ab[e] * (dSb[e] - dot);
                }
            }
            /* dQp [K,D] = dS^T [K,n] Kt_b [n,D], then dZ over Kt row by row. Frames t >= n get
             * zero rows. */
            rows_tsum(dQpb, dSb, KZb, n, Kz, Dz);
            for (int t = 0; t < n; t++) {
                real *row = KZb + (size_t)t * Dz;
                const real *dSt = dSb + (size_t)t * Kz;
                for (size_t d0 = 0; d0 < Dz; d0 += CROSS_ATTN_ROW_BLOCK) {
                    const size_t w = Dz - d0 < CROSS_ATTN_ROW_BLOCK ? Dz - d0 : CROSS_ATTN_ROW_BLOCK;
                    real dkt[CROSS_ATTN_ROW_BLOCK] = {0}; /* dKt_t [d0, d0+w) = sum_k dS[t,k] Qp_k */
                    for (size_t k = 0; k < Kz; k++)
                        for (size_t d = 0; d < w; d++) dkt[d] += dSt[k] * Qpb[k * Dz + d0 + d];
                    for (size_t d = 0; d < w; d++)
                        row[d0 + d] = dkt[d] * ((real)1 - row[d0 + d] * row[d0 + d]);
                }
            }
            memset(KZb + (size_t)n * Dz, 0, (Tz - (size_t)n) * Dz * sizeof *KZb);
        }
        SD_R(sd_linear_backward)(NULL, dWi, dbi, KZ, xt, Wi, rows, D, D);
        if (!dx) continue;

        /* dxt = A_b dO_b, then += dZ Wi in the GEMM (no separate zeroing pass), over xt's
         * buffer (xt may also be x itself: then the buffer was not used and x is left alone).
         * Rows of padded frames are 0. */
        real *dxt = xt_buf;
        SD_OMP(omp parallel for schedule(static) if (nb > 1 && rows * Dz >= NN_PAR_MIN_ELEMS))
        for (int i = 0; i < nb; i++) {
            const int b = b0 + i, n = nn_frames(len, b, T);
            real *dxtb = dxt + (size_t)i * Tz * Dz; /* [T,D] */
            rows_mix(dxtb, A + (size_t)b * Tz * Kz, dO + (size_t)b * Kz * Dz, n, Kz, Dz);
            memset(dxtb + (size_t)n * Dz, 0, (Tz - (size_t)n) * Dz * sizeof *dxtb);
        }
        nn_gemm_real(0, 0, rows, Dz, Dz, (real)1, KZ, Dz, Wi, Dz, (real)1, dxt, Dz);
        SD_R(sd_frames_dropout_backward)(dx, dxt, len, &cache->key_in, b0, nb, T, D);
    }
    SD_R(sd_linear_backward)(dQ, dWq, dbq, dQp, Q, Wq, qrows, D, D);
}
