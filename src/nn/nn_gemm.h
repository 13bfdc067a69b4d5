/* GEMM for the layers: one thread pool at a time. Private to src/nn/ and src/model/.
 *
 * OpenBLAS (Debian's pthreads build) keeps its own threads, which busy-wait (sched_yield) after
 * every call; the layers' OpenMP threads busy-wait too. On a machine with as many cores as
 * threads the two pools then take turns stealing each other's cores (the profile of a MOSEI
 * training step showed a third of the time in libgomp spinning and sched_yield). sd_nn_gemm runs
 * every product on the OpenMP threads instead: C is cut into one block of rows (or columns) per
 * thread and each block is a single-threaded OpenBLAS call. Each element of C is computed by
 * one call with the same K order whatever the cut. Inside an OpenMP region (per-sample products)
 * it is a plain single-threaded call.
 *
 * In pool mode (the public API's calls, core/pool.h) the cut depends on the product's shape alone
 * and the blocks run on the library's pool (or one after another): OpenBLAS picks kernels by size,
 * so a product cut differently can round differently, and the API promises the same bits for every
 * thread count. (The OpenMP cut above, one block per thread, can differ in the last bits between
 * thread counts for some shapes.)
 *
 * Same arguments as sd_sgemm / sd_dgemm (core/gemm.h): row-major, C[M,N] = alpha op(A) op(B)
 * + beta C. */
#ifndef SD_NN_GEMM_H
#define SD_NN_GEMM_H

#include <stddef.h>

void sd_nn_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
             size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
void sd_nn_gemm_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                 const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
                 size_t ldc);

/* C[M,N] = bias[N] on every row + op(A) op(B): the bias written block by block inside the
 * product's own OpenMP region (a separate loop would cost a team of its own), then the product
 * added to it (beta = 1); the same bits as writing the bias first and calling sd_nn_gemm. */
void sd_nn_gemm_bias(int trans_a, int trans_b, size_t M, size_t N, size_t K, const float *A, size_t lda,
                     const float *B, size_t ldb, const float *bias, float *C, size_t ldc);
void sd_nn_gemm_bias_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, const double *A, size_t lda,
                         const double *B, size_t ldb, const double *bias, double *C, size_t ldc);

/* OpenBLAS to one thread for the calls made between begin and end (restores the count). Wrap
 * OpenMP regions whose threads call BLAS (sd_nn_gemm does it for itself). Nesting is allowed. */
int sd_nn_blas_single_begin(void);
void sd_nn_blas_single_end(int previous);

#ifdef SD_REAL_DOUBLE
#define nn_gemm_real sd_nn_gemm_f64
#define nn_gemm_bias_real sd_nn_gemm_bias_f64
#else
#define nn_gemm_real sd_nn_gemm
#define nn_gemm_bias_real sd_nn_gemm_bias
#endif

#endif
