/* Row-major GEMM: C[M,N] = alpha * op(A) op(B) + beta * C, with op(X) = X or X^T.
 *
 * sd_sgemm / sd_dgemm call Debian's OpenBLAS (cblas); the _ref kernels are plain
 * triple loops that accumulate in double, kept as the oracle for tests.
 * lda/ldb/ldc are the row strides of A, B, C as stored (before transposition). */
#ifndef SD_CORE_GEMM_H
#define SD_CORE_GEMM_H

#include <stddef.h>

void sd_sgemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc);
void sd_dgemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
              const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
              size_t ldc);

void sd_sgemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc);
void sd_dgemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                  const double *A, size_t lda, const double *B, size_t ldb, double beta,
                  double *C, size_t ldc);

#endif
