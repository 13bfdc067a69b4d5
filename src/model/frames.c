/* The frame projection (MODEL.md step 1) on batches of any element type: float32 frames go to
 * the linear layer as they are; float16 and bfloat16 ones are converted one chunk of rows at a
 * time into scratch, so a float32 copy of the batch is never held (data/batch.h keep_dtype).
 * Also compiled in double (core/real.h) for the flows' double build.
 * Legend: N rows (B*T frames), D feature dim, H hidden. */
#include "model/flow.h"

#include "core/omp.h"
#include "core/real.h"
#include "io/half.h"
#include "nn/nn.h"

/* Floats of one converted chunk: rows per chunk = this / D (at least one). 8 MiB keeps the weight
 * gradient's chunk products long enough in their inner dimension (512 rows at D = 4096). */
#define FRAMES_CHUNK_FLOATS ((size_t)1 << 21)

static size_t chunk_rows(int D) {
    size_t r = FRAMES_CHUNK_FLOATS / (size_t)D;
    return r > 0 ? r : 1;
}

#ifndef SD_REAL_DOUBLE /* precision-independent: in the float build only */
int sd_frames_dtype_ok(sd_dtype dtype) {
    return dtype == SD_DTYPE_F32 || dtype == SD_DTYPE_F16 || dtype == SD_DTYPE_BF16;
}

size_t sd_frames_work_len(sd_dtype dtype, size_t N, int D) {
    if (dtype == SD_DTYPE_F32) return 0;
    size_t r = chunk_rows(D);
    return (N < r ? N : r) * (size_t)D;
}
#endif

/* dst [n] = the n values of dtype at src, as float32 (then real); split over the threads when
 * large. */
static void convert(real *dst, const void *src, sd_dtype dtype, size_t n) {
    const size_t block = 1 << 14;
    const ptrdiff_t nb = (ptrdiff_t)((n + block - 1) / block);
    SD_OMP(omp parallel for schedule(static) if (nb > 4))
    for (ptrdiff_t k = 0; k < nb; k++) {
        const size_t i0 = (size_t)k * block, len = i0 + block < n ? block : n - i0;
        const uint16_t *s = (const uint16_t *)src + i0;
#ifdef SD_REAL_DOUBLE
        for (size_t j = 0; j < len; j++)
            dst[i0 + j] = dtype == SD_DTYPE_F16 ? sd_f16_to_f32(s[j]) : sd_bf16_to_f32(s[j]);
#else
        if (dtype == SD_DTYPE_F16) sd_f16_to_f32_n(s, dst + i0, len);
        else sd_bf16_to_f32_n(s, dst + i0, len);
#endif
    }
}

void SD_R(sd_frames_forward)(real *y, const void *x, sd_dtype dtype, const real *W, const real *Wt,
                       const real *b, size_t N, int D, int H, real *work) {
    if (dtype == SD_DTYPE_F32) {
        if (Wt) SD_R(sd_linear_forward_wt)(y, x, Wt, b, N, D, H);
        else SD_R(sd_linear_forward)(y, x, W, b, N, D, H);
        return;
    }
    const size_t rows = chunk_rows(D), esize = 2;
    for (size_t r0 = 0; r0 < N; r0 += rows) {
        const size_t n = r0 + rows < N ? rows : N - r0;
        convert(work, (const unsigned char *)x + r0 * (size_t)D * esize, dtype, n * (size_t)D);
        if (Wt) SD_R(sd_linear_forward_wt)(y + r0 * (size_t)H, work, Wt, b, n, D, H);
        else SD_R(sd_linear_forward)(y + r0 * (size_t)H, work, W, b, n, D, H);
    }
}

void SD_R(sd_frames_backward)(real *dW, real *db, const real *dy, const void *x, sd_dtype dtype,
                        size_t N, int D, int H, real *work) {
    if (dtype == SD_DTYPE_F32) {
        SD_R(sd_linear_backward)(NULL, dW, db, dy, x, NULL, N, D, H);
        return;
    }
    SD_R(sd_linear_backward)(NULL, NULL, db, dy, NULL, NULL, N, D, H);
    const size_t rows = chunk_rows(D), esize = 2;
    for (size_t r0 = 0; r0 < N; r0 += rows) { /* dW += dy[r0:r0+n]^T x[r0:r0+n] */
        const size_t n = r0 + rows < N ? rows : N - r0;
        convert(work, (const unsigned char *)x + r0 * (size_t)D * esize, dtype, n * (size_t)D);
        SD_R(sd_linear_backward)(NULL, dW, NULL, dy + r0 * (size_t)H, work, NULL, n, D, H);
    }
}
