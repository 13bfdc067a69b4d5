/* Products on the layers' OpenMP threads, OpenBLAS single-threaded per block (see nn_gemm.h).
 * Legend: M, N rows and columns of C, K the inner dim; P blocks (one per thread). */
#include "nn/nn_gemm.h"

#include "core/real.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Declared by OpenBLAS's cblas.h; repeated so this file needs no BLAS header. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* Multiply-adds below which a product stays on one thread. */
#define NN_GEMM_PAR_MIN (1u << 20)
/* Block edges are multiples of this (whole kernel tiles). */
#define NN_GEMM_ALIGN 16

#ifndef SD_REAL_DOUBLE
int sd_nn_blas_single_begin(void) {
    const int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}
void sd_nn_blas_single_end(int previous) {
    if (previous != 1) openblas_set_num_threads(previous);
}
#endif

void SD_R(sd_nn_gemm)(int trans_a, int trans_b, size_t M, size_t N, size_t K, real alpha,
                   const real *A, size_t lda, const real *B, size_t ldb, real beta, real *C,
                   size_t ldc) {
    if (M == 0 || N == 0) return;
#ifdef _OPENMP
    if (omp_in_parallel()) {
        sd_gemm_real(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int prev = sd_nn_blas_single_begin();
    const int threads = omp_get_max_threads();
    const double work = (double)M * (double)N * (double)K;
    if (threads <= 1 || work < (double)NN_GEMM_PAR_MIN) {
        sd_gemm_real(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        sd_nn_blas_single_end(prev);
        return;
    }
    /* Cut the longer side of C into P aligned blocks. */
    const int by_rows = M >= N;
    const size_t L = by_rows ? M : N;
    size_t step = (L + (size_t)threads - 1) / (size_t)threads;
    step = (step + NN_GEMM_ALIGN - 1) / NN_GEMM_ALIGN * NN_GEMM_ALIGN;
    const int P = (int)((L + step - 1) / step);
#pragma omp parallel for num_threads(P) schedule(static, 1)
    for (int p = 0; p < P; p++) {
        const size_t i0 = (size_t)p * step, n = i0 + step < L ? step : L - i0;
        if (by_rows) /* rows i0.. of op(A) and C */
            sd_gemm_real(trans_a, trans_b, n, N, K, alpha, trans_a ? A + i0 : A + i0 * lda, lda, B,
                         ldb, beta, C + i0 * ldc, ldc);
        else /* columns i0.. of op(B) and C */
            sd_gemm_real(trans_a, trans_b, M, n, K, alpha, A, lda, trans_b ? B + i0 * ldb : B + i0,
                         ldb, beta, C + i0, ldc);
    }
    sd_nn_blas_single_end(prev);
#else
    sd_gemm_real(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
