/* UMCA cross-attention (cross_att_fra2utt, MODEL.md section 2 step 7), K queries over T frames:
 *   xt = Dropout(p)(x); Kt = tanh(xt Wi^T + bi); Qp = Q Wq^T + bq;
 *   S = 0.3 Kt Qp^T; A = softmax over t, separately per query k; O = A^T xt; y = Dropout(p)(O).
 * Single head, no 1/sqrt(D), no value projection.
 *
 * Legend: B batch, T frames (padded), K queries (7 in SDUMC), D feature dim, n_b = frames of
 * sample b that take part (len[b] in masked mode, T when len == NULL).
 * Masked mode: padded frames are set to 0 in xt, get A = 0 exactly, and their rows of dx are
 * never written. Both projections are GEMMs over all rows (B*T and B*K); the scores, the
 * softmax and the weighted sum are per-sample loops, one sample per OpenMP iteration.
 * RNG use: B*T*D draws for the input dropout, then B*K*D for the output dropout. */
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
#define CROSS_ATTN_SCORE_SCALE ((real)0.3)

/* Frames of sample b that take part in the softmax (clamped to [0, T]). */
static int cross_frames(const int *len, int b, int T) {
    if (!len) return T;
    const int n = len[b];
    return n < 0 ? 0 : (n > T ? T : n);
}

void SD_R(cross_attn_forward)(real *y, SD_R(cross_attn_cache) *cache, const real *x,
                              const int *len, const real *Q, const real *Wq, const real *bq,
                              const real *Wi, const real *bi, int B, int T, int K, int D,
                              real p, sd_rng *rng) {
    if (B <= 0 || T <= 0 || K <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T, Kz = (size_t)K;
    const size_t rows = (size_t)B * Tz, qrows = (size_t)B * Kz;
    real *xt = cache->xt; /* [B,T,D] */
    real *Kt = cache->Kt; /* [B,T,D] */
    real *Qp = cache->Qp; /* [B,K,D] */
    real *A = cache->A;   /* [B,T,K] */
    real *O = cache->O;   /* [B,K,D] */

    SD_R(dropout_forward)(xt, cache->mask_in, x, rows * Dz, p, rng);
    if (len)
        for (int b = 0; b < B; b++) {
            const size_t n = (size_t)cross_frames(len, b, T);
            memset(xt + ((size_t)b * Tz + n) * Dz, 0, (Tz - n) * Dz * sizeof *xt);
        }
    SD_R(linear_forward)(Kt, xt, Wi, bi, rows, D, D);
    SD_R(tanh_forward)(Kt, Kt, rows * Dz);
    SD_R(linear_forward)(Qp, Q, Wq, bq, qrows, D, D);

    const int blas_prev = nn_blas_single_begin(); /* per-sample products on the OpenMP threads */
    SD_OMP_PARALLEL_FOR(schedule(static) if (B > 1 && (size_t)B * Tz * Dz >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        const int n = cross_frames(len, b, T);
        const real *Ktb = Kt + (size_t)b * Tz * Dz; /* [T,D] */
        const real *Qpb = Qp + (size_t)b * Kz * Dz; /* [K,D] */
        const real *xb = xt + (size_t)b * Tz * Dz;  /* [T,D] */
        real *Ab = A + (size_t)b * Tz * Kz;         /* [T,K] */
        real *Ob = O + (size_t)b * Kz * Dz;         /* [K,D] */
        /* S [n,K] = 0.3 Kt_b [n,D] Qp_b^T [D,K], stored in A (rows t >= n are zeroed below). */
        if (n > 0) nn_gemm_real(0, 1, (size_t)n, Kz, Dz, CROSS_ATTN_SCORE_SCALE, Ktb, Dz, Qpb, Dz, (real)0, Ab, Kz);
        /* Softmax over the n frames, per column k, shifted by that column's max. */
        for (size_t k = 0; k < Kz; k++) {
            real mx = -(real)INFINITY, sum = 0;
            for (int t = 0; t < n; t++)
                if (Ab[(size_t)t * Kz + k] > mx) mx = Ab[(size_t)t * Kz + k];
            for (int t = 0; t < n; t++) {
                real *a = Ab + (size_t)t * Kz + k;
                *a = real_exp(*a - mx);
                sum += *a;
            }
            for (int t = 0; t < n; t++) Ab[(size_t)t * Kz + k] /= sum;
        }
        for (size_t e = (size_t)n * Kz; e < Tz * Kz; e++) Ab[e] = 0;
        /* O [K,D] = A_b^T [K,n] xt_b [n,D]. */
        if (n > 0) nn_gemm_real(1, 0, Kz, Dz, (size_t)n, (real)1, Ab, Kz, xb, Dz, (real)0, Ob, Dz);
        else memset(Ob, 0, Kz * Dz * sizeof *Ob);
    }
    nn_blas_single_end(blas_prev);
    SD_R(dropout_forward)(y, cache->mask_out, O, qrows * Dz, p, rng);
}

/* Adds NaN to every gradient: how this void backward makes an allocation failure visible. */
static void cross_poison(real *g, size_t n) {
    if (g) for (size_t i = 0; i < n; i++) g[i] = (real)NAN;
}

/* Forward (restated): xt = Dropout(x); Kt = tanh(xt Wi^T + bi); Qp = Q Wq^T + bq;
 *   A[:,k] = softmax_{t < n_b}(0.3 Kt Qp_k); O_k = sum_t A[t,k] xt_t; y = Dropout(O).
 * Backward, per sample b (frames t < n_b only):
 *   dO      = dy * keep_out / (1-p)                                 [K,D]
 *   dA[t,k] = dO_k . xt_t                                           [T,K]
 *   dS[t,k] = 0.3 A[t,k] (dA[t,k] - sum_t' A[t',k] dA[t',k])        (gradient of Kt Qp^T)
 *   dKt_t   = sum_k dS[t,k] Qp_k;  dZ_t = dKt_t * (1 - Kt_t^2)      [T,D]
 *   dQp_k   = sum_t dS[t,k] Kt_t                                    [K,D]
 *   dxt_t   = sum_k A[t,k] dO_k + dZ_t Wi;  dWi += dZ^T xt; dbi += sum dZ   (linear_backward)
 *   dQ += dQp Wq; dWq += dQp^T Q; dbq += sum dQp                    (linear_backward)
 *   dx_t   += dxt_t * keep_in / (1-p). */
void SD_R(cross_attn_backward)(real *dx, real *dQ, real *dWq, real *dbq, real *dWi, real *dbi,
                               const real *dy, const SD_R(cross_attn_cache) *cache,
                               const int *len, const real *Q, const real *Wq, const real *Wi,
                               int B, int T, int K, int D, real p) {
    if (B <= 0 || T <= 0 || K <= 0 || D <= 0) return;
    const size_t Dz = (size_t)D, Tz = (size_t)T, Kz = (size_t)K;
    const size_t rows = (size_t)B * Tz, qrows = (size_t)B * Kz;
    const real *xt = cache->xt, *Kt = cache->Kt, *Qp = cache->Qp, *A = cache->A;

    /* Scratch: dO [B,K,D], dQp [B,K,D], dS [B,T,K], dZ [B,T,D], dxt [B,T,D] (when dx). */
    size_t n_scratch = 0, n_frames_el = 0, n_score = 0;
    const int size_ok = sd_mul_size(rows, Dz, &n_frames_el) &&
                        sd_mul_size(rows, Kz, &n_score) &&
                        sd_mul_size(n_frames_el, dx ? 2 : 1, &n_scratch) &&
                        sd_add_size(n_scratch, n_score, &n_scratch) &&
                        sd_add_size(n_scratch, 2 * qrows * Dz, &n_scratch) &&
                        sd_mul_size(n_scratch, sizeof(real), &n_scratch);
    real *scratch = size_ok ? sd_alloc(n_scratch) : NULL;
    if (!scratch) {
        cross_poison(dx, rows * Dz);
        cross_poison(dQ, qrows * Dz);
        cross_poison(dWq, Dz * Dz);
        cross_poison(dbq, Dz);
        cross_poison(dWi, Dz * Dz);
        cross_poison(dbi, Dz);
        return;
    }
    real *dO = scratch;                            /* [B,K,D] */
    real *dQp = dO + qrows * Dz;                   /* [B,K,D] */
    real *dS = dQp + qrows * Dz;                   /* [B,T,K] */
    real *dZ = dS + n_score;                       /* [B,T,D] */
    real *dxt = dx ? dZ + n_frames_el : NULL;      /* [B,T,D] */

    memset(dO, 0, qrows * Dz * sizeof *dO);
    SD_R(dropout_backward)(dO, dy, cache->mask_out, qrows * Dz, p);

    const int blas_prev = nn_blas_single_begin(); /* per-sample products on the OpenMP threads */
    SD_OMP_PARALLEL_FOR(schedule(static) if (B > 1 && (size_t)B * Tz * Dz >= NN_PAR_MIN_ELEMS))
    for (int b = 0; b < B; b++) {
        const int n = cross_frames(len, b, T);
        const real *xb = xt + (size_t)b * Tz * Dz;   /* [T,D] */
        const real *Ktb = Kt + (size_t)b * Tz * Dz;  /* [T,D] */
        const real *Qpb = Qp + (size_t)b * Kz * Dz;  /* [K,D] */
        const real *Ab = A + (size_t)b * Tz * Kz;    /* [T,K] */
        const real *dOb = dO + (size_t)b * Kz * Dz;  /* [K,D] */
        real *dSb = dS + (size_t)b * Tz * Kz;        /* [T,K] */
        real *dQpb = dQp + (size_t)b * Kz * Dz;      /* [K,D] */
        real *dZb = dZ + (size_t)b * Tz * Dz;        /* [T,D] */
        real *dxtb = dxt ? dxt + (size_t)b * Tz * Dz : NULL; /* [T,D] */

        /* dA [n,K] = xt_b [n,D] dO_b^T [D,K], kept in dS. */
        if (n > 0) nn_gemm_real(0, 1, (size_t)n, Kz, Dz, (real)1, xb, Dz, dOb, Dz, (real)0, dSb, Kz);
        /* Softmax backward per column k: dS = 0.3 A (dA - <A, dA>). */
        for (size_t k = 0; k < Kz; k++) {
            real dot = 0;
            for (int t = 0; t < n; t++) dot += Ab[(size_t)t * Kz + k] * dSb[(size_t)t * Kz + k];
            for (int t = 0; t < n; t++) {
                const size_t e = (size_t)t * Kz + k;
                dSb[e] = CROSS_ATTN_SCORE_SCALE * Ab[e] * (dSb[e] - dot);
            }
        }
        for (size_t e = (size_t)n * Kz; e < Tz * Kz; e++) dSb[e] = 0;
        /* dZ [n,D] = (dS [n,K] Qp_b [K,D]) * (1 - Kt^2); dxt [n,D] = A_b [n,K] dO_b [K,D];
         * dQp [K,D] = dS^T [K,n] Kt_b [n,D]. Frames t >= n get zero rows. */
        memset(dZb + (size_t)n * Dz, 0, (Tz - (size_t)n) * Dz * sizeof *dZb);
        if (dxtb) memset(dxtb + (size_t)n * Dz, 0, (Tz - (size_t)n) * Dz * sizeof *dxtb);
        if (n > 0) {
            nn_gemm_real(0, 0, (size_t)n, Dz, Kz, (real)1, dSb, Kz, Qpb, Dz, (real)0, dZb, Dz);
            for (size_t e = 0; e < (size_t)n * Dz; e++) dZb[e] *= (real)1 - Ktb[e] * Ktb[e];
            if (dxtb) nn_gemm_real(0, 0, (size_t)n, Dz, Kz, (real)1, Ab, Kz, dOb, Dz, (real)0, dxtb, Dz);
            nn_gemm_real(1, 0, Kz, Dz, (size_t)n, (real)1, dSb, Kz, Ktb, Dz, (real)0, dQpb, Dz);
        } else {
            memset(dQpb, 0, Kz * Dz * sizeof *dQpb);
        }
    }
    nn_blas_single_end(blas_prev);

    SD_R(linear_backward)(dxt, dWi, dbi, dZ, xt, Wi, rows, D, D);
    SD_R(linear_backward)(dQ, dWq, dbq, dQp, Q, Wq, qrows, D, D);

    if (dx) {
        const real scale = p > 0 ? (p < 1 ? (real)1 / ((real)1 - p) : (real)0) : (real)1;
        const uint8_t *keep = p > 0 ? cache->mask_in : NULL; /* [B,T,D] */
        SD_OMP_PARALLEL_FOR(schedule(static) if (B > 1 && (size_t)B * Tz * Dz >= NN_PAR_MIN_ELEMS))
        for (int b = 0; b < B; b++) {
            const size_t n_el = (size_t)cross_frames(len, b, T) * Dz;
            const size_t e0 = (size_t)b * Tz * Dz;
            for (size_t e = e0; e < e0 + n_el; e++)
                if (!keep || keep[e]) dx[e] += dxt[e] * scale;
        }
    }
    sd_free(scratch);
}
