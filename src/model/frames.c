/* The frame projection (MODEL.md step 1) on batches of any element type: float32 frames go to
 * the linear layer as they are; float16 and bfloat16 ones are converted one chunk of rows at a
 * time into scratch, so a float32 copy of the batch is never held (data/batch.h keep_dtype).
 * Training with standardised inputs (model/norm.h) standardises each chunk in that scratch too, so
 * the batch itself stays as read (float16 included) and is never rewritten.
 * Also compiled in double (core/real.h) for the flows' double build.
 * Legend: N rows (B*T frames), D feature dim, H hidden. */
#include "model/flow.h"

#include <string.h>

#include "core/omp.h"
#include "core/real.h"
#include "io/half.h"
#include "model/norm.h"
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

size_t sd_frames_work_len(sd_dtype dtype, int standardised, size_t N, int D) {
    if (dtype == SD_DTYPE_F32 && !standardised) return 0;
    size_t r = chunk_rows(D);
    return (N < r ? N : r) * (size_t)D;
}
#endif

/* Bytes of one element of x: SD_DTYPE_F32 means real (double in the _f64 build). */
static size_t elem_size(sd_dtype dtype) { return dtype == SD_DTYPE_F32 ? sizeof(real) : 2; }

/* dst [len] = the len values of dtype at src, as real. */
static void convert(real *dst, const void *src, sd_dtype dtype, size_t len) {
    if (dtype == SD_DTYPE_F32) {
        memcpy(dst, src, sizeof(real) * len);
        return;
    }
    const uint16_t *s = src;
#ifdef SD_REAL_DOUBLE
    for (size_t j = 0; j < len; j++) dst[j] = dtype == SD_DTYPE_F16 ? sd_f16_to_f32(s[j]) : sd_bf16_to_f32(s[j]);
#else
    if (dtype == SD_DTYPE_F16) sd_f16_to_f32_n(s, dst, len);
    else sd_bf16_to_f32_n(s, dst, len);
#endif
}

/* (row - mean) * inv, per dim: model/norm.h's formula in this build's precision. */
static void standardise_row(real *row, const sd_frames_std *std, int D) {
#ifdef SD_REAL_DOUBLE
    for (int d = 0; d < D; d++) row[d] = (row[d] - std->mean[d]) * std->inv[d];
#else
    sd_norm_row(row, std->mean, std->inv, D);
#endif
}

/* Row r of a batch of T-frame samples is a padding frame (frame r % T of sample r / T, past its
 * length). */
static int padding_row(const sd_frames_std *std, size_t r) {
    return (int)(r % (size_t)std->T) >= std->len[r / (size_t)std->T];
}

/* dst [n rows, D] = rows [r0, r0 + n) of x as real, standardised when std is set:
 * (x - mean) * inv on the real frames (row r is frame r % T of sample r / T), padding left as it is
 * (zero), exactly as model/norm.c standardises a float32 batch in place. Split over the threads
 * when large. */
static void load_rows(real *dst, const void *x, sd_dtype dtype, size_t r0, size_t n, int D,
                      const sd_frames_std *std) {
    const size_t block = (size_t)1 << 14, rows_per = block / (size_t)D > 0 ? block / (size_t)D : 1;
    const ptrdiff_t nb = (ptrdiff_t)((n + rows_per - 1) / rows_per);
    SD_OMP(omp parallel for schedule(static) if (nb > 4))
    for (ptrdiff_t k = 0; k < nb; k++) {
        const size_t i0 = (size_t)k * rows_per, rows = i0 + rows_per < n ? rows_per : n - i0;
        const unsigned char *src = (const unsigned char *)x + (r0 + i0) * (size_t)D * elem_size(dtype);
        real *out = dst + i0 * (size_t)D;
#ifndef SD_REAL_DOUBLE
        if (std && dtype == SD_DTYPE_F16) { /* conversion and standardisation in one pass per row */
            for (size_t i = 0; i < rows; i++) {
                const uint16_t *h = (const uint16_t *)src + i * (size_t)D;
                if (padding_row(std, r0 + i0 + i)) convert(out + i * (size_t)D, h, dtype, (size_t)D);
                else sd_f16_to_f32_affine_n(h, out + i * (size_t)D, (size_t)D, std->mean, std->inv);
            }
            continue;
        }
#endif
        convert(out, src, dtype, rows * (size_t)D);
        if (!std) continue;
        for (size_t i = 0; i < rows; i++)
            if (!padding_row(std, r0 + i0 + i)) standardise_row(out + i * (size_t)D, std, D);
    }
}

void SD_R(sd_frames_forward)(real *y, const void *x, sd_dtype dtype, const sd_frames_std *std,
                             const real *W, const real *Wt, const real *b, size_t N, int D, int H,
                             real *work) {
    if (dtype == SD_DTYPE_F32 && !std) {
        if (Wt) SD_R(sd_linear_forward_wt)(y, x, Wt, b, N, D, H);
        else SD_R(sd_linear_forward)(y, x, W, b, N, D, H);
        return;
    }
    const size_t rows = chunk_rows(D);
    for (size_t r0 = 0; r0 < N; r0 += rows) {
        const size_t n = r0 + rows < N ? rows : N - r0;
        load_rows(work, x, dtype, r0, n, D, std);
        if (Wt) SD_R(sd_linear_forward_wt)(y + r0 * (size_t)H, work, Wt, b, n, D, H);
        else SD_R(sd_linear_forward)(y + r0 * (size_t)H, work, W, b, n, D, H);
    }
}

void SD_R(sd_frames_backward)(real *dW, real *db, const real *dy, const void *x, sd_dtype dtype,
                              const sd_frames_std *std, size_t N, int D, int H, real *work) {
    if (dtype == SD_DTYPE_F32 && !std) {
        SD_R(sd_linear_backward)(NULL, dW, db, dy, x, NULL, N, D, H);
        return;
    }
    SD_R(sd_linear_backward)(NULL, NULL, db, dy, NULL, NULL, N, D, H);
    const size_t rows = chunk_rows(D);
    for (size_t r0 = 0; r0 < N; r0 += rows) { /* dW += dy[r0:r0+n]^T x[r0:r0+n] */
        const size_t n = r0 + rows < N ? rows : N - r0;
        load_rows(work, x, dtype, r0, n, D, std);
        SD_R(sd_linear_backward)(NULL, dW, NULL, dy + r0 * (size_t)H, work, NULL, n, D, H);
    }
}
