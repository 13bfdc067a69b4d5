/* Decoder matrix kernels: the run-time choice of kernels, the work buffers, preparing activations
 * and splitting a product over the threads; see kernels.h. Legend: M input rows, K inner dim,
 * N weight rows. */
#include "core/omp.h"
#include "llm/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/alloc.h"
#include "core/gemm.h"
#include "io/half.h"
#include "llm/kernels_impl.h"
#include "llm/kernels_repack.h"

/* ---- which kernels ---------------------------------------------------------------------- */

static sd_llm_kernel_set kernel_sets[3];
static sd_llm_isa detected = SD_LLM_ISA_PORTABLE;
static sd_llm_isa limit = SD_LLM_ISA_AVX512;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    sd_llm_portable_kernels(&kernel_sets[SD_LLM_ISA_PORTABLE]);
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               sd_llm_avx2_kernels(&kernel_sets[SD_LLM_ISA_AVX2]);
    if (avx2) detected = SD_LLM_ISA_AVX2;
    if (avx2) sd_llm_avx2_packed_kernels(&kernel_sets[SD_LLM_ISA_AVX2]);
    /* F16C is not among __builtin_cpu_supports' names in every compiler: the AVX2 kernel set
     * checks it through cpuid (sd_llm_avx2_kernels returns 0 without it). */
    kernel_sets[SD_LLM_ISA_AVX512] = kernel_sets[SD_LLM_ISA_AVX2]; /* its quantiser and exact path */
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        sd_llm_avx512_kernels(&kernel_sets[SD_LLM_ISA_AVX512])) {
        detected = SD_LLM_ISA_AVX512;
        sd_llm_avx512_packed_kernels(&kernel_sets[SD_LLM_ISA_AVX512]);
    }
#endif
}

sd_llm_isa sd_llm_isa_detect(void) {
    pthread_once(&detect_once, detect);
    return detected;
}

sd_llm_isa sd_llm_kernels_limit(sd_llm_isa isa) {
    sd_llm_isa old = limit;
    limit = isa;
    return old;
}

sd_llm_isa sd_llm_kernels_isa(void) {
    sd_llm_isa d = sd_llm_isa_detect();
    return d < limit ? d : limit;
}

const char *sd_llm_kernels_name(void) {
    static const char *names[] = {"portable", "avx2+fma+f16c", "avx512-vnni"};
    return names[sd_llm_kernels_isa()];
}

const sd_llm_kernel_set *sd_llm_kernels(void) { return &kernel_sets[sd_llm_kernels_isa()]; }

/* ---- work buffers ------------------------------------------------------------------------- */

int sd_llm_work_init(sd_llm_work *w, size_t R, size_t K, sd_llm_arith arith) {
    memset(w, 0, sizeof *w);
    w->R = R;
    w->K = K;
    w->arith = arith;
#ifdef _OPENMP
    w->n_threads = omp_get_max_threads();
#else
    w->n_threads = 1;
#endif
    const size_t nb8 = (K / SD_LLM_QK) * 8;
    size_t rk, rb, tk;
    if (!sd_mul_size(R, K, &rk) || !sd_mul_size(R, nb8 ? nb8 : 1, &rb) ||
        !sd_mul_size((size_t)w->n_threads, K, &tk) || rk > SIZE_MAX / 4 || rb > SIZE_MAX / 4)
        return -1;
    w->q = sd_alloc(rk ? rk : 1);
    w->d8 = sd_alloc((rb ? rb : 1) * sizeof(float));
    w->corr = sd_alloc((rb ? rb : 1) * sizeof(int32_t));
    w->csum = sd_alloc((rb ? rb / 8 + 1 : 1) * sizeof(int32_t));
    w->xr = sd_alloc((rk ? rk : 1) * sizeof(float));
    w->rows = sd_alloc((tk ? tk : 1) * sizeof(float));
    if (!w->q || !w->d8 || !w->corr || !w->csum || !w->xr || !w->rows) {
        sd_llm_work_free(w);
        return -1;
    }
    return 0;
}

void sd_llm_work_free(sd_llm_work *w) {
    sd_free(w->q);
    sd_free(w->d8);
    sd_free(w->corr);
    sd_free(w->csum);
    sd_free(w->xr);
    sd_free(w->rows);
    memset(w, 0, sizeof *w);
}

/* ---- preparing the activations ------------------------------------------------------------ */

enum { KIND_NONE, KIND_Q8_FOR_Q4_0, KIND_Q8_FOR_Q8_0, KIND_F16_ROUNDED, KIND_F32 };

static int kind_for(const sd_llm_work *w, sd_ggml_type t) {
    if (w->arith == SD_LLM_ARITH_EXACT || t == SD_GGML_F32) return KIND_F32;
    if (t == SD_GGML_F16) return KIND_F16_ROUNDED;
    return t == SD_GGML_Q4_0 ? KIND_Q8_FOR_Q4_0 : KIND_Q8_FOR_Q8_0;
}

void sd_llm_prepare(sd_llm_work *w, const float *x, size_t M, size_t K, sd_ggml_type t) {
    w->M = M;
    w->Kp = K;
    w->kind = kind_for(w, t);
    w->x = w->src = x;
    if (w->kind == KIND_F32) return;
    const sd_llm_kernel_set *ks = sd_llm_kernels();
    const int kind = w->kind;
    /* rows split over the threads when there are enough of them to be worth it */
SD_OMP(omp parallel for schedule(static) if (M * K >= 65536) num_threads(w->n_threads))
    for (size_t m = 0; m < M; m++) {
        if (kind == KIND_F16_ROUNDED) ks->round16(x + m * K, w->xr + m * K, K);
        else {
            ks->quant(x, m, m + 1, K, t, w);
            sd_llm_block_corr(w, m, m + 1);
        }
    }
    if (kind == KIND_F16_ROUNDED) w->x = w->xr;
}

/* ---- products ----------------------------------------------------------------------------- */

/* A product's weight rows are handed to the threads in chunks of about CHUNK_BYTES (a multiple of
 * 16 rows, at least 16; the last chunk of a matrix ends at its N), each taken by the next free
 * thread: a thread that started late (woken from sleep, or preempted on a shared machine) takes
 * fewer chunks instead of holding the others at the region's end. 256 KiB is the L2 block of
 * sd_llm_tiles, so a prompt pass's chunk is one such block. */
#define CHUNK_BYTES ((size_t)256 << 10)
#define MANY_MAX 8 /* matrices of one sd_llm_matmul_many region */

static int64_t chunk_rows(const sd_wmat *W) {
    int64_t r = (int64_t)(CHUNK_BYTES / (W->row_bytes ? W->row_bytes : 1)) / 16 * 16;
    return r < 16 ? 16 : r;
}

/* Weight rows [n0, n1) of W into y, with the prepared activations. */
static void product_range(const sd_llm_kernel_set *ks, const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1,
                          float *y, float *rowbuf) {
    const int q8 = w->kind == KIND_Q8_FOR_Q4_0 || w->kind == KIND_Q8_FOR_Q8_0;
    if (q8 && W->packed && ks->prange) ks->prange(W, w, n0, n1, y);
    else if (q8) ks->qrange(W, w, n0, n1, y);
    else if (W->type == SD_GGML_F32 || W->type == SD_GGML_F16) ks->frange(W, w->x, w->M, n0, n1, y);
    else ks->xrange(W, w->x, w->M, n0, n1, y, rowbuf);
}

void sd_llm_matmul_many(const sd_wmat *const *W, float *const *y, int n, sd_llm_work *w) {
    for (int i = 1; i < n; i++)
        if (W[i]->type != W[0]->type || W[i]->K != W[0]->K || n > MANY_MAX) {
            for (int j = 0; j < n; j++) sd_llm_matmul_many(&W[j], &y[j], 1, w);
            return;
        }
    if (w->kind != kind_for(w, W[0]->type) || w->Kp != (size_t)W[0]->K)
        sd_llm_prepare(w, w->src, w->M, (size_t)W[0]->K, W[0]->type);
    const size_t M = w->M;
    if (w->kind == KIND_F32 && W[0]->type == SD_GGML_F32 && M >= 8) {
        for (int i = 0; i < n; i++)
            sd_sgemm(0, 1, M, (size_t)W[i]->N, (size_t)W[i]->K, 1.0f, w->x, (size_t)W[i]->K, W[i]->data,
                     (size_t)W[i]->K, 0.0f, y[i], (size_t)W[i]->N);
        return;
    }
    /* the matrices' chunks laid end to end: chunk c is matrix i's chunk c - first[i] */
    int64_t rows[MANY_MAX], first[MANY_MAX + 1];
    first[0] = 0;
    for (int i = 0; i < n; i++) {
        rows[i] = chunk_rows(W[i]);
        first[i + 1] = first[i] + (W[i]->N + rows[i] - 1) / rows[i];
    }
    const int64_t n_chunks = first[n];
    const sd_llm_kernel_set *ks = sd_llm_kernels();
    /* one parallel region for all the matrices, their chunks taken in order by the next free thread */
SD_OMP(omp parallel for schedule(dynamic, 1) num_threads(w->n_threads))
    for (int64_t c = 0; c < n_chunks; c++) {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        int i = 0;
        while (c >= first[i + 1]) i++;
        const int64_t n0 = (c - first[i]) * rows[i], n1 = n0 + rows[i] < W[i]->N ? n0 + rows[i] : W[i]->N;
        product_range(ks, W[i], w, n0, n1, y[i], w->rows + (size_t)tid * w->K);
    }
}

void sd_llm_matmul_prepared(const sd_wmat *W, sd_llm_work *w, float *y) { sd_llm_matmul_many(&W, &y, 1, w); }

void sd_llm_matmul(const sd_wmat *W, const float *x, size_t M, float *y, sd_llm_work *w) {
    sd_llm_prepare(w, x, M, (size_t)W->K, W->type);
    sd_llm_matmul_prepared(W, w, y);
}

/* ---- oracles and small pieces ------------------------------------------------------------- */

void sd_llm_get_row(const sd_wmat *W, int64_t r, float *out) {
    sd_ggml_to_f32(W->type, (const char *)W->data + (size_t)r * W->row_bytes, out, W->K);
}

void sd_llm_matmul_ref(const sd_wmat *W, const float *x, size_t M, float *y) {
    float *row = malloc((size_t)W->K * sizeof *row);
    if (!row) return;
    for (int64_t r = 0; r < W->N; r++) {
        sd_llm_get_row(W, r, row);
        for (size_t m = 0; m < M; m++) {
            double s = 0;
            for (int64_t k = 0; k < W->K; k++) s += (double)row[k] * x[m * (size_t)W->K + (size_t)k];
            y[m * (size_t)W->N + (size_t)r] = (float)s;
        }
    }
    free(row);
}

void sd_llm_matmul_q8_ref(const sd_wmat *W, const sd_llm_work *w, float *y) {
    const size_t K = (size_t)W->K, nb = K / SD_LLM_QK;
    float *row = malloc(K * sizeof *row);
    if (!row) return;
    for (int64_t r = 0; r < W->N; r++) {
        sd_llm_get_row(W, r, row); /* d_w * q_w, exact in float */
        const unsigned char *blk = (const unsigned char *)W->data + (size_t)r * W->row_bytes;
        const size_t bb = W->type == SD_GGML_Q8_0 ? 2 + SD_LLM_QK : 2 + SD_LLM_QK / 2;
        for (size_t m = 0; m < w->M; m++) {
            double s = 0;
            for (size_t b = 0; b < nb; b++) {
                double dw = sd_f16_to_f32(sd_llm_load_u16(blk + b * bb)), bs = 0;
                for (size_t i = 0; i < SD_LLM_QK; i++)
                    bs += (dw != 0 ? row[b * SD_LLM_QK + i] / dw : 0) * w->q[m * K + b * SD_LLM_QK + i];
                s += dw * w->d8[(m * nb + b) * 8] * bs;
            }
            y[m * (size_t)W->N + (size_t)r] = (float)s;
        }
    }
    free(row);
}
