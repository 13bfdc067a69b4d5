/* Reading one feature file's frames into float32, with the frame cap (feature_file.h).
 * Legend: T frames in the file, D feature dim, C frame cap, K frames kept (min(T, C)). */
#include "feature_file.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

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
    int64_t bad = -1;
    switch ((sd_dtype)dtype) {
    case SD_DTYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case SD_DTYPE_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = sd_f16_to_f32(s[i]);
        break;
    }
    case SD_DTYPE_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = sd_bf16_to_f32(s[i]);
        break;
    }
    case SD_DTYPE_F64: {
        const double *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    }
    default: return 0;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) {
            bad = i;
            break;
        }
    return bad;
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

/* Reads the K kept frames into dst [K, D] (dst NULL: read and check only). */
static sd_status read_kept(const char *path, int64_t expect_T, int64_t expect_D, int64_t cap,
                           sd_cap_mode mode, float *dst, void *scratch, sd_error *err) {
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
    size_t row_bytes = (size_t)h.cols * esize;
    /* Scratch: raw rows as stored in the first half, the same rows as float32 in the second. */
    size_t half = SD_FEATURE_SCRATCH_BYTES / 2;
    int64_t rows_per_chunk = (int64_t)(half / (row_bytes > 0 ? row_bytes : 1));
    int64_t conv_rows = (int64_t)(half / (h.cols > 0 ? (size_t)h.cols * sizeof(float) : 1));
    if (conv_rows < rows_per_chunk) rows_per_chunk = conv_rows;
    if (rows_per_chunk < 1)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: a frame of %lld values exceeds the read buffer",
                       path, (long long)h.cols);
    unsigned char *raw = scratch;                              /* [rows_per_chunk, D] on disk */
    float *conv = (float *)((unsigned char *)scratch + half);  /* [rows_per_chunk, D] float32 */
    int fd;
    if (sd_file_open(path, &fd, NULL, err)) return err ? err->code : SD_E_IO;
    int64_t K = sd_cap_frames(h.rows, cap);
    sd_status st = SD_OK;
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
        int64_t bad = sd_feature_convert(h.dtype, raw, conv, nrows * h.cols);
        if (bad >= 0) {
            float v = conv[bad];
            st = sd_fail(err, SD_E_NUMERIC, "%s: %s at frame %lld, column %lld", path,
                         isnan(v) ? "NaN" : "Inf", (long long)(first + bad / h.cols),
                         (long long)(bad % h.cols));
            break;
        }
        if (dst)
            for (int64_t j = k; j < k_end; j++) {
                int64_t r = sd_cap_frame_index(h.rows, cap, mode, j) - first;
                memcpy(dst + (size_t)j * (size_t)h.cols, conv + (size_t)r * (size_t)h.cols,
                       (size_t)h.cols * sizeof(float));
            }
        k = k_end;
    }
    close(fd);
    return st;
}

sd_status sd_feature_read(const char *path, int64_t expect_T, int64_t expect_D, int64_t cap,
                          sd_cap_mode mode, float *dst, void *scratch, sd_error *err) {
    if (!dst || !scratch) return sd_fail(err, SD_E_ARG, "sd_feature_read: NULL buffer");
    return read_kept(path, expect_T, expect_D, cap, mode, dst, scratch, err);
}

sd_status sd_feature_check(const char *path, int64_t expect_T, int64_t expect_D, void *scratch,
                           sd_error *err) {
    if (!scratch) return sd_fail(err, SD_E_ARG, "sd_feature_check: NULL buffer");
    return read_kept(path, expect_T, expect_D, 0, SD_CAP_TRUNCATE, NULL, scratch, err);
}
