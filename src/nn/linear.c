/* Linear layer: y = x W^T + b, PyTorch weight layout W [out, in].
 *
 * Legend: N rows (B*T frames or B samples), I = in features, O = out features.
 * Every product is one BLAS GEMM over all N rows; the bias terms are plain loops whose
 * summation order does not depend on the thread count. */
#include <stddef.h>

#include "core/real.h"
#include "nn/nn.h"
#include "nn/nn_gemm.h"
#include "nn/nn_omp.h"

/* Rows per OpenMP chunk below which the loops stay serial (the work is too small to share). */
#define LINEAR_PAR_MIN 4096

/* y [N,O] = x [N,I] W[O,I]^T + b[O]; b may be NULL. The bias is written first and the product
 * added to it (beta = 1): one pass over y where "clear, multiply, add the bias" takes three; each
 * block of the product writes its own part of the bias (sd_nn_gemm_bias). */
void SD_R(sd_linear_forward)(real *y, const real *x, const real *W, const real *b, size_t N, int in,
                          int out) {
    if (N == 0 || out <= 0) return;
    const size_t I = (size_t)in, O = (size_t)out;
    if (b) nn_gemm_bias_real(0, 1, N, O, I, x, I, W, I, b, y, O);
    else nn_gemm_real(0, 1, N, O, I, (real)1, x, I, W, I, (real)0, y, O);
}

/* The same with the weight stored transposed: y [N,O] = x [N,I] Wt [I,O] + b [O]. */
void SD_R(sd_linear_forward_wt)(real *y, const real *x, const real *Wt, const real *b, size_t N,
                             int in, int out) {
    if (N == 0 || out <= 0) return;
    const size_t I = (size_t)in, O = (size_t)out;
    if (b) nn_gemm_bias_real(0, 0, N, O, I, x, I, Wt, O, b, y, O);
    else nn_gemm_real(0, 0, N, O, I, (real)1, x, I, Wt, O, (real)0, y, O);
}

/* Forward: y = x W^T + b. Backward (each gradient pointer may be NULL, all ADD):
 *   dx [N,I] += dy [N,O] W [O,I]
 *   dW [O,I] += dy^T [O,N] x [N,I]
 *   db [O]   += sum_n dy[n,:]   (column sums: each output column is owned by one thread and
 *                                summed over n in order, so the result is thread-count free) */
void SD_R(sd_linear_backward)(real *dx, real *dW, real *db, const real *dy, const real *x,
                           const real *W, size_t N, int in, int out) {
    if (N == 0 || out <= 0 || in < 0) return;
    const size_t I = (size_t)in, O = (size_t)out;
    if (dx) nn_gemm_real(0, 0, N, I, O, (real)1, dy, O, W, I, (real)1, dx, I);
    if (dW) nn_gemm_real(1, 0, O, I, N, (real)1, dy, O, x, I, (real)1, dW, I);
    if (!db) return;
    /* Blocks of 16 columns: contiguous reads inside a row, one owner per column. */
    const ptrdiff_t n_blocks = (ptrdiff_t)((O + 15) / 16);
    SD_OMP(omp parallel for schedule(static) if (N * O >= LINEAR_PAR_MIN * 16))
    for (ptrdiff_t blk = 0; blk < n_blocks; blk++) {
        const size_t o0 = (size_t)blk * 16, o1 = o0 + 16 < O ? o0 + 16 : O;
        real acc[16] = {0};
        for (size_t n = 0; n < N; n++) {
            const real *dyr = dy + n * O; /* [O] */
            for (size_t o = o0; o < o1; o++) acc[o - o0] += dyr[o];
        }
        for (size_t o = o0; o < o1; o++) db[o] += acc[o - o0];
    }
}
