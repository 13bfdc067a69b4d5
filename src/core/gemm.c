/* Row-major GEMM: the OpenBLAS calls and the double-accumulating reference loops (gemm.h). */
#include "gemm.h"

#include <cblas.h>

static enum CBLAS_TRANSPOSE tr(int t) { return t ? CblasTrans : CblasNoTrans; }

void sd_sgemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, tr(trans_a), tr(trans_b), (blasint)M, (blasint)N, (blasint)K,
                alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

void sd_dgemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
              const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
              size_t ldc) {
    if (M == 0 || N == 0) return;
    cblas_dgemm(CblasRowMajor, tr(trans_a), tr(trans_b), (blasint)M, (blasint)N, (blasint)K,
                alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* Element (i, k) of op(X) for a row-major X with row stride ld. */
#define OP_AT(X, t, ld, i, k) ((t) ? (X)[(size_t)(k) * (ld) + (i)] : (X)[(size_t)(i) * (ld) + (k)])

void sd_sgemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (size_t k = 0; k < K; k++)
                acc += (double)OP_AT(A, trans_a, lda, i, k) * (double)OP_AT(B, trans_b, ldb, k, j);
            double prev = beta == 0.0f ? 0.0 : (double)beta * C[i * ldc + j];
            C[i * ldc + j] = (float)((double)alpha * acc + prev);
        }
}

void sd_dgemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                  const double *A, size_t lda, const double *B, size_t ldb, double beta,
                  double *C, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (size_t k = 0; k < K; k++)
                acc += OP_AT(A, trans_a, lda, i, k) * OP_AT(B, trans_b, ldb, k, j);
            double prev = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
            C[i * ldc + j] = alpha * acc + prev;
        }
}
