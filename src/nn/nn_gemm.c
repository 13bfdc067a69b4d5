/* Products on the layers' threads, OpenBLAS single-threaded per block (see nn_gemm.h).
 * Legend: M, N rows and columns of C, K the inner dim; P blocks. */
#include "nn/nn_gemm.h"

#include <string.h>

#include "core/omp.h"
#include "core/pool.h"
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
/* A product cut by its shape alone (the library's pool, see below) has at most this many
 * blocks, each at least NN_GEMM_SHAPE_MIN_EDGE rows or columns long: smaller blocks would each
 * pack the whole other operand again. */
#define NN_GEMM_SHAPE_BLOCKS 8
#define NN_GEMM_SHAPE_MIN_EDGE 256

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

/* A product's arguments, and C cut along its longer side into blocks of `step` rows (by_rows) or
 * columns; P blocks (make_cut). */
typedef struct {
    int trans_a, trans_b;
    size_t M, N, K;
    real alpha, beta;
    const real *A, *B;
    real *C;
    size_t lda, ldb, ldc;
    const real *bias; /* [N] written into every row of the block first (then beta = 1), or NULL */
    int by_rows;
    size_t L, step;
    int P;
} gemm_cut;

/* The product of args cut into (at most) `blocks` aligned blocks. */
static gemm_cut make_cut(const gemm_cut *args, int blocks) {
    gemm_cut g = *args;
    g.by_rows = g.M >= g.N;
    g.L = g.by_rows ? g.M : g.N;
    g.step = (g.L + (size_t)blocks - 1) / (size_t)blocks;
    g.step = (g.step + NN_GEMM_ALIGN - 1) / NN_GEMM_ALIGN * NN_GEMM_ALIGN;
    g.P = (int)((g.L + g.step - 1) / g.step);
    return g;
}

/* Rows [r0, r0 + rows) x columns [c0, c0 + cols) of C = the bias's columns. */
static void fill_bias(const gemm_cut *g, size_t r0, size_t rows, size_t c0, size_t cols) {
    for (size_t r = r0; r < r0 + rows; r++) memcpy(g->C + r * g->ldc + c0, g->bias + c0, cols * sizeof *g->C);
}

/* Block p of the cut: one single-threaded product (after its part of the bias). */
static void gemm_block(const gemm_cut *g, int p) {
    const size_t i0 = (size_t)p * g->step, n = i0 + g->step < g->L ? g->step : g->L - i0;
    if (g->bias) {
        if (g->by_rows) fill_bias(g, i0, n, 0, g->N);
        else fill_bias(g, 0, g->M, i0, n);
    }
    if (g->by_rows) /* rows i0.. of op(A) and C */
        sd_gemm_real(g->trans_a, g->trans_b, n, g->N, g->K, g->alpha, g->trans_a ? g->A + i0 : g->A + i0 * g->lda,
                     g->lda, g->B, g->ldb, g->beta, g->C + i0 * g->ldc, g->ldc);
    else /* columns i0.. of op(B) and C */
        sd_gemm_real(g->trans_a, g->trans_b, g->M, n, g->K, g->alpha, g->A, g->lda,
                     g->trans_b ? g->B + i0 * g->ldb : g->B + i0, g->ldb, g->beta, g->C + i0, g->ldc);
}

static void gemm_block_task(void *arg, int p, int worker) {
    (void)worker;
    gemm_block(arg, p);
}

/* The whole product in one call on this thread: the cut of one block. */
static void gemm_whole(const gemm_cut *args) {
    const gemm_cut g = make_cut(args, 1);
    gemm_block(&g, 0);
}

/* The product of args, with the bias (beta = 1 after it) when args->bias is set. */
static void gemm_run(const gemm_cut *args) {
    const size_t M = args->M, N = args->N;
    if (M == 0 || N == 0) return;
    const double work = (double)M * (double)N * (double)args->K;
    /* Inference through the public API (core/pool.h): the cut depends on the shape alone, never on
     * the thread count, because OpenBLAS picks its kernels by size and a product cut in two can
     * round differently from the whole (seen with small N: a [2240, 32] x [32, 16] product). The
     * blocks then run on whatever threads the pool has, or one after the other. */
    if (sd_pool_active()) {
        const size_t edge = M >= N ? M : N;
        size_t blocks = edge / NN_GEMM_SHAPE_MIN_EDGE;
        if (blocks > NN_GEMM_SHAPE_BLOCKS) blocks = NN_GEMM_SHAPE_BLOCKS;
        if (blocks < 1 || work < (double)NN_GEMM_PAR_MIN) blocks = 1;
        const gemm_cut g = make_cut(args, (int)blocks);
        const int prev = sd_nn_blas_single_begin();
        sd_pool_run(sd_pool_current(), g.P, gemm_block_task, (void *)&g);
        sd_nn_blas_single_end(prev);
        return;
    }
#ifdef _OPENMP
    if (omp_in_parallel()) {
        gemm_whole(args);
        return;
    }
    const int prev = sd_nn_blas_single_begin();
    const int threads = omp_get_max_threads();
    if (threads <= 1 || work < (double)NN_GEMM_PAR_MIN) {
        gemm_whole(args);
        sd_nn_blas_single_end(prev);
        return;
    }
    /* One aligned block per thread. */
    const gemm_cut g = make_cut(args, threads);
    SD_OMP(omp parallel for num_threads(g.P) schedule(static, 1))
    for (int p = 0; p < g.P; p++) gemm_block(&g, p);
    sd_nn_blas_single_end(prev);
#else
    gemm_whole(args);
#endif
}

void SD_R(sd_nn_gemm)(int trans_a, int trans_b, size_t M, size_t N, size_t K, real alpha,
                   const real *A, size_t lda, const real *B, size_t ldb, real beta, real *C,
                   size_t ldc) {
    const gemm_cut g = {trans_a, trans_b, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc, NULL, 0, 0, 0, 0};
    gemm_run(&g);
}

void SD_R(sd_nn_gemm_bias)(int trans_a, int trans_b, size_t M, size_t N, size_t K, const real *A, size_t lda,
                        const real *B, size_t ldb, const real *bias, real *C, size_t ldc) {
    const gemm_cut g = {trans_a, trans_b, M, N, K, (real)1, (real)1, A, B, C, lda, ldb, ldc, bias, 0, 0, 0, 0};
    gemm_run(&g);
}
