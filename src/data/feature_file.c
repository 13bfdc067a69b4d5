/* Reading one feature file's frames into float32 (or the file's own dtype), with the frame cap
 * (feature_file.h). Legend: T frames in the file, D feature dim, C frame cap, K frames kept
 * (min(T, C)). */
#include "feature_file.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/simd.h"
#include "io/dtype.h"
#include "io/file.h"
#include "io/half.h"
#include "io/npy.h"

int64_t sd_cap_frames(int64_t T, int64_t cap) { return (cap > 0 && T > cap) ? cap : T; }

int64_t sd_cap_frame_index(int64_t T, int64_t cap, sd_cap_mode mode, int64_t k) {
    if (cap <= 0 || T <= cap || mode == SD_CAP_TRUNCATE) return k;
    /* Centre of segment k of C equal segments; T > C makes these strictly increasing. */
    return (2 * k + 1) * T / (2 * cap);
}

int64_t sd_feature_convert(int dtype, const void *src, float *dst, int64_t n) {
    switch ((sd_dtype)dtype) {
    case SD_DTYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case SD_DTYPE_F16: sd_f16_to_f32_n(src, dst, (size_t)n); break;
    case SD_DTYPE_BF16: sd_bf16_to_f32_n(src, dst, (size_t)n); break;
    case SD_DTYPE_F64: {
        const double *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    }
    default: return 0;
    }
    return sd_feature_first_nonfinite(SD_DTYPE_F32, dst, n);
}

/* The largest |x| of n float32 values as bits (sign cleared): Inf and NaN are those >= 0x7f800000.
 * Branch-free, so it vectorises. */
SD_VECTOR_CLONES static uint32_t max_magnitude_bits_f32(const void *src, int64_t n) {
    const unsigned char *p = src;
    uint32_t mx = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, sizeof u);
        u &= 0x7fffffffu;
        mx = u > mx ? u : mx;
    }
    return mx;
}

int64_t sd_feature_first_nonfinite(int dtype, const void *src, int64_t n) {
    switch ((sd_dtype)dtype) {
    case SD_DTYPE_F16: return sd_f16_first_nonfinite(src, (size_t)n);
    case SD_DTYPE_BF16: return sd_bf16_first_nonfinite(src, (size_t)n);
    case SD_DTYPE_F32: {
        const float *x = src;
        if (max_magnitude_bits_f32(src, n) < 0x7f800000u) return -1; /* all finite */
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) return i;
        return -1;
    }
    case SD_DTYPE_F64: {
        const double *x = src;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) return i;
        return -1;
    }
    }
    return 0;
}

/* Stores n values of the file's dtype at raw as dst_dtype (the same dtype, or float32) at dst;
 * returns the index of the first non-finite value, or -1. */
static int64_t store_values(int file_dtype, const void *raw, int dst_dtype, void *dst, int64_t n) {
    if (dst_dtype == SD_DTYPE_F32) return sd_feature_convert(file_dtype, raw, dst, n);
    memcpy(dst, raw, (size_t)n * sd_dtype_size((sd_dtype)file_dtype));
    return sd_feature_first_nonfinite(file_dtype, dst, n);
}

/* Sets the non-finite values among n of dtype at p to 0 (all bits zero); returns how many. */
static int64_t zero_nonfinite(int dtype, void *p, int64_t n) {
    size_t esize = sd_dtype_size((sd_dtype)dtype);
    unsigned char *b = p;
    int64_t count = 0, i;
    while ((i = sd_feature_first_nonfinite(dtype, b, n)) >= 0) {
        memset(b + (size_t)i * esize, 0, esize);
        count++;
        b += (size_t)(i + 1) * esize;
        n -= i + 1;
    }
    return count;
}

/* pread exactly n bytes at off. */
static sd_status pread_all(int fd, void *buf, size_t n, off_t off, const char *path, sd_error *err) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return sd_fail(err, SD_E_IO, "%s: read failed: %s", path, strerror(errno));
        }
        if (r == 0) return sd_fail(err, SD_E_FORMAT, "%s: truncated (changed since validation?)", path);
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return SD_OK;
}

/* A non-finite value found at element `bad` of the rows starting at file row `first`. */
static sd_status nonfinite_error(const char *path, int file_dtype, const void *rows, int64_t first,
                                 int64_t cols, int64_t bad, sd_error *err) {
    float v;
    sd_feature_convert(file_dtype, (const unsigned char *)rows + (size_t)bad * sd_dtype_size((sd_dtype)file_dtype),
                       &v, 1);
    return sd_fail(err, SD_E_NUMERIC, "%s: %s at frame %lld, column %lld", path, isnan(v) ? "NaN" : "Inf",
                   (long long)(first + bad / cols), (long long)(bad % cols));
}

/* Reads the K kept frames into dst [K, D] stored as dst_dtype (float32, or the file's own dtype;
 * dst NULL: read and check only). Kept frames that are the file's first K rows in the file's dtype
 * are read straight into dst; otherwise runs of rows go through the scratch buffer. With
 * nonfinite != NULL, NaN and Inf are counted there and read as 0 instead of failing. */
static sd_status read_kept(const char *path, int64_t expect_T, int64_t expect_D, int64_t cap,
                           sd_cap_mode mode, void *dst, int dst_dtype, void *scratch, int64_t *nonfinite,
                           sd_error *err) {
    sd_npy_header h;
    if (sd_npy_read_header(path, &h, err)) return err ? err->code : SD_E_IO;
    if (h.rows != expect_T || h.cols != expect_D)
        return sd_fail(err, SD_E_FORMAT,
                       "%s: shape [%lld, %lld] differs from [%lld, %lld] seen at validation (the file "
                       "changed since the dataset was opened)",
                       path, (long long)h.rows, (long long)h.cols, (long long)expect_T,
                       (long long)expect_D);
    size_t esize = sd_dtype_size(h.dtype);
    if (esize == 0) return sd_fail(err, SD_E_UNSUPPORTED, "%s: unsupported dtype", path);
    if (dst && dst_dtype != SD_DTYPE_F32 && dst_dtype != (int)h.dtype)
        return sd_fail(err, SD_E_FORMAT, "%s: now holds %s values, %s at validation (the file changed since the "
                       "dataset was opened)", path, sd_dtype_name(h.dtype), sd_dtype_name((sd_dtype)dst_dtype));
    size_t row_bytes = (size_t)h.cols * esize;
    const size_t dst_row_bytes = (size_t)h.cols * (dst_dtype == SD_DTYPE_F32 ? sizeof(float) : esize);
    int64_t rows_per_chunk = (int64_t)(SD_FEATURE_SCRATCH_BYTES / (row_bytes > 0 ? row_bytes : 1));
    if (rows_per_chunk < 1)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: a frame of %lld values exceeds the read buffer",
                       path, (long long)h.cols);
    unsigned char *raw = scratch; /* [rows_per_chunk, D] as stored */
    int fd;
    if (sd_file_open(path, &fd, NULL, err)) return err ? err->code : SD_E_IO;
    int64_t K = sd_cap_frames(h.rows, cap);
    sd_status st = SD_OK;
    if (dst && dst_dtype == (int)h.dtype && sd_cap_frame_index(h.rows, cap, mode, K - 1) == K - 1) {
        /* The kept frames are rows 0..K-1, stored as they are in the file: one read into dst. */
        st = pread_all(fd, dst, (size_t)K * row_bytes, (off_t)h.data_offset, path, err);
        int64_t bad = st ? -1 : sd_feature_first_nonfinite(h.dtype, dst, K * h.cols);
        if (bad >= 0 && nonfinite) *nonfinite += zero_nonfinite(h.dtype, dst, K * h.cols);
        else if (bad >= 0) st = nonfinite_error(path, h.dtype, dst, 0, h.cols, bad, err);
        close(fd);
        return st;
    }
    int64_t k = 0;
    while (k < K && st == SD_OK) {
        /* One chunk: the run of file rows [first, last] holding kept frames k..k_end-1. */
        int64_t first = sd_cap_frame_index(h.rows, cap, mode, k);
        int64_t k_end = k + 1;
        while (k_end < K && sd_cap_frame_index(h.rows, cap, mode, k_end) - first < rows_per_chunk)
            k_end++;
        int64_t last = sd_cap_frame_index(h.rows, cap, mode, k_end - 1);
        int64_t nrows = last - first + 1;
        off_t off = (off_t)h.data_offset + (off_t)first * (off_t)row_bytes;
        st = pread_all(fd, raw, (size_t)nrows * row_bytes, off, path, err);
        if (st) break;
        /* Every row read is checked, kept or not; a kept row again after conversion (a float64
         * beyond the float32 range becomes Inf). */
        int64_t bad = sd_feature_first_nonfinite(h.dtype, raw, nrows * h.cols);
        if (bad >= 0 && nonfinite) *nonfinite += zero_nonfinite(h.dtype, raw, nrows * h.cols);
        else if (bad >= 0) st = nonfinite_error(path, h.dtype, raw, first, h.cols, bad, err);
        for (int64_t j = k; dst && j < k_end && !st; j++) {
            int64_t r = sd_cap_frame_index(h.rows, cap, mode, j) - first;
            const unsigned char *src = raw + (size_t)r * row_bytes;
            unsigned char *row = (unsigned char *)dst + (size_t)j * dst_row_bytes;
            bad = store_values(h.dtype, src, dst_dtype, row, h.cols);
            if (bad >= 0 && nonfinite) *nonfinite += zero_nonfinite(dst_dtype, row, h.cols);
            else if (bad >= 0) st = nonfinite_error(path, h.dtype, src, first + r, h.cols, bad, err);
        }
        k = k_end;
    }
    close(fd);
    return st;
}

sd_status sd_feature_read(const char *path, int64_t expect_T, int64_t expect_D, int64_t cap,
                          sd_cap_mode mode, int zero_nonfinite_values, void *dst, int dst_dtype, void *scratch,
                          sd_error *err) {
    if (!dst || !scratch) return sd_fail(err, SD_E_ARG, "sd_feature_read: NULL buffer");
    int64_t count = 0;
    return read_kept(path, expect_T, expect_D, cap, mode, dst, dst_dtype, scratch,
                     zero_nonfinite_values ? &count : NULL, err);
}

sd_status sd_feature_check(const char *path, int64_t expect_T, int64_t expect_D, void *scratch,
                           int64_t *nonfinite, sd_error *err) {
    if (!scratch) return sd_fail(err, SD_E_ARG, "sd_feature_check: NULL buffer");
    return read_kept(path, expect_T, expect_D, 0, SD_CAP_TRUNCATE, NULL, SD_DTYPE_F32, scratch, nonfinite, err);
}
