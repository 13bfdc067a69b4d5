/* .npy: fixtures written by Debian's numpy (tests/fixtures/npy/make_npy_fixtures.py) read value by
 * value for each version and dtype; the writer byte-identical to numpy; round trips; and malformed
 * files, each with the message it must give, never a crash or an out-of-bounds read (buffers are
 * exactly sized heap copies, so ASan sees any over-read). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "harness.h"
#include "io/half.h"
#include "io/npy.h"
#include "mutate.h"

#define FIX "tests/fixtures/npy/"

/* The fixture formulas (see make_npy_fixtures.py). */
static float expected_value(char kind, size_t k) {
    double m = (double)((k * 2654435761ull + 12345ull) % (1ull << 24));
    double sign = (k % 2) ? -1.0 : 1.0;
    switch (kind) {
    case '4': return (float)(sign * ldexp(m, (int)((7 * k) % 40) - 30));
    case '2': return sd_f16_to_f32(sd_f32_to_f16((float)(sign * ldexp(m, (int)((5 * k) % 44) - 50))));
    default: return (float)(sign * ldexp(m / 3.0, (int)((3 * k) % 20) - 10));
    }
}

static uint8_t *slurp(const char *path, size_t *n) { return sd_test_read_file(path, n); }

static char *tmp_path(const char *name) {
    static char path[4][512];
    static int which;
    which = (which + 1) % 4;
    snprintf(path[which], sizeof path[which], "%s/%s", sd_test_tmpdir(), name);
    return path[which];
}

static void test_fixtures_value_by_value(void) {
    struct {
        const char *file;
        int version, ndim;
        int64_t rows, cols;
        char kind;
        sd_dtype dtype;
    } cases[] = {
        {"v1_f4_2d.npy", 1, 2, 5, 7, '4', SD_DTYPE_F32}, {"v1_f2_2d.npy", 1, 2, 4, 6, '2', SD_DTYPE_F16},
        {"v1_f8_2d.npy", 1, 2, 3, 5, '8', SD_DTYPE_F64}, {"v1_f4_1d.npy", 1, 1, 1, 9, '4', SD_DTYPE_F32},
        {"v2_f4_2d.npy", 2, 2, 3, 4, '4', SD_DTYPE_F32}, {"v2_f2_1d.npy", 2, 1, 1, 10, '2', SD_DTYPE_F16},
        {"v3_f8_2d.npy", 3, 2, 2, 3, '8', SD_DTYPE_F64}, {"v3_f4_1d.npy", 3, 1, 1, 5, '4', SD_DTYPE_F32},
        {"v3_f2_2d.npy", 3, 2, 3, 3, '2', SD_DTYPE_F16}, {"v2_f8_1d.npy", 2, 1, 1, 6, '8', SD_DTYPE_F64},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s", cases[c].file);
        sd_npy_header h;
        float *data = NULL;
        sd_error err = {0};
        sd_status st = sd_npy_read(path, &h, &data, &err);
        EXPECT(st == SD_OK, "%s: %s (run from the repository root)", path, err.msg);
        if (st) continue;
        EXPECT(h.version == cases[c].version && h.ndim == cases[c].ndim && h.rows == cases[c].rows &&
                   h.cols == cases[c].cols && h.dtype == cases[c].dtype,
               "%s: header v%d ndim %d %lld x %lld dtype %s", path, h.version, h.ndim, (long long)h.rows,
               (long long)h.cols, sd_dtype_name(h.dtype));
        EXPECT(h.version != 1 || h.data_offset % 64 == 0, "%s: v1 data offset %zu", path, h.data_offset);
        size_t n = (size_t)(h.rows * h.cols), bad = 0, nonfinite = 0;
        for (size_t k = 0; k < n; k++) {
            float want = expected_value(cases[c].kind, k);
            if (!isfinite(want)) nonfinite++;
            if (!sd_test_same_float(data[k], want) && bad++ < 3)
                EXPECT(0, "%s[%zu] = %.9g, want %.9g", path, k, (double)data[k], (double)want);
        }
        EXPECT(bad == 0, "%s: %zu of %zu values differ", path, bad, n);
        /* read_header + read_into give the same */
        sd_npy_header h2;
        EXPECT(sd_npy_read_header(path, &h2, &err) == SD_OK, "read_header: %s", err.msg);
        float *again = calloc(n ? n : 1, sizeof(float));
        EXPECT(sd_npy_read_into(path, &h2, again, &err) == SD_OK, "read_into: %s", err.msg);
        EXPECT(memcmp(again, data, n * sizeof(float)) == 0, "%s: read_into differs", path);
        /* and the in-memory parser, from an exactly-sized copy */
        size_t size;
        uint8_t *buf = slurp(path, &size);
        float *mem = NULL;
        EXPECT(sd_npy_parse(buf, size, &h2, &mem, &err) == SD_OK, "parse: %s", err.msg);
        EXPECT(mem && memcmp(mem, data, n * sizeof(float)) == 0, "%s: sd_npy_parse differs", path);
        sd_free(mem);
        free(buf);
        free(again);
        sd_free(data);
    }
}

/* float16 specials: numpy's float32 -> float16 rounding of these inputs agrees with ours. */
static void test_f16_special_values(void) {
    const float src[] = {INFINITY, -INFINITY, NAN, -0.0f, 0.0f, 65504.0f, 65519.0f, 65520.0f, -65536.0f,
                         0x1p-24f, 0x1p-25f, -0x1p-25f, 0x1.8p-25f, 0x1p-14f, 0x1p-14f * (1 - 0x1p-11f),
                         1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1e-8f, 3.14159265f, -2.5e-6f};
    size_t n = sizeof src / sizeof src[0];
    sd_npy_header h;
    float *data = NULL;
    sd_error err = {0};
    EXPECT(sd_npy_read(FIX "v1_f2_special.npy", &h, &data, &err) == SD_OK, "%s", err.msg);
    if (!data) return;
    EXPECT(h.cols == (int64_t)n && h.rows == 1, "shape %lld x %lld", (long long)h.rows, (long long)h.cols);
    for (size_t i = 0; i < n && i < (size_t)h.cols; i++) {
        float want = sd_f16_to_f32(sd_f32_to_f16(src[i]));
        EXPECT(sd_test_same_float(data[i], want), "special[%zu] %.9g: numpy gave %.9g, we round to %.9g", i,
               (double)src[i], (double)data[i], (double)want);
    }
    sd_free(data);
    /* an empty (0, 3) array is fine */
    EXPECT(sd_npy_read(FIX "v1_f4_empty.npy", &h, &data, &err) == SD_OK && h.rows == 0 && h.cols == 3,
           "empty: %s", err.msg);
    sd_free(data);
}

static void test_writer_matches_numpy(void) {
    struct {
        const char *file;
        int ndim;
        int64_t rows, cols;
        char kind;
        sd_dtype dtype;
    } cases[] = {
        {"v1_f4_2d.npy", 2, 5, 7, '4', SD_DTYPE_F32},
        {"v1_f4_1d.npy", 1, 1, 9, '4', SD_DTYPE_F32},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = (size_t)(cases[c].rows * cases[c].cols);
        float *v = malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) v[k] = expected_value(cases[c].kind, k);
        char *out = tmp_path("w.npy");
        sd_error err = {0};
        EXPECT(sd_npy_write(out, v, cases[c].ndim, cases[c].rows, cases[c].cols, cases[c].dtype, &err) == SD_OK,
               "write: %s", err.msg);
        char ref[256];
        snprintf(ref, sizeof ref, FIX "%s", cases[c].file);
        size_t na, nb;
        uint8_t *a = slurp(out, &na), *b = slurp(ref, &nb);
        EXPECT(a && b && na == nb && memcmp(a, b, na) == 0, "%s: our bytes (%zu) differ from numpy's (%zu)",
               cases[c].file, na, nb);
        free(a);
        free(b);
        free(v);
    }
    /* float16 written from the float32 source values equals numpy's astype(float16) file */
    float src[24];
    for (size_t k = 0; k < 24; k++) {
        double m = (double)((k * 2654435761ull + 12345ull) % (1ull << 24));
        src[k] = (float)(((k % 2) ? -1.0 : 1.0) * ldexp(m, (int)((5 * k) % 44) - 50));
    }
    char *out = tmp_path("w16.npy");
    sd_error err = {0};
    EXPECT(sd_npy_write(out, src, 2, 4, 6, SD_DTYPE_F16, &err) == SD_OK, "write f16: %s", err.msg);
    size_t na, nb;
    uint8_t *a = slurp(out, &na), *b = slurp(FIX "v1_f2_2d.npy", &nb);
    EXPECT(a && b && na == nb && memcmp(a, b, na) == 0, "f16 bytes differ from numpy's");
    free(a);
    free(b);
}

static void test_round_trip(void) {
    /* header padding differs with the digits of the shape; exercise several */
    int64_t shapes[][2] = {{1, 1}, {3, 40}, {123, 7}, {1000, 3}, {1, 12345}, {0, 5}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)(rows * cols);
        float *v = malloc((n ? n : 1) * sizeof(float));
        for (size_t k = 0; k < n; k++) v[k] = (float)sin((double)k * 0.37) * 1000.0f;
        for (int f16 = 0; f16 < 2; f16++) {
            char *path = tmp_path("rt.npy");
            sd_error err = {0};
            int ndim = rows == 1 && (s % 2) ? 1 : 2;
            sd_dtype dt = f16 ? SD_DTYPE_F16 : SD_DTYPE_F32;
            EXPECT(sd_npy_write(path, v, ndim, rows, cols, dt, &err) == SD_OK, "write: %s", err.msg);
            sd_npy_header h;
            float *back = NULL;
            EXPECT(sd_npy_read(path, &h, &back, &err) == SD_OK, "read: %s", err.msg);
            if (!back) continue;
            EXPECT(h.rows == rows && h.cols == cols && h.ndim == ndim && h.dtype == dt && h.data_offset % 64 == 0,
                   "header %lld x %lld ndim %d offset %zu", (long long)h.rows, (long long)h.cols, h.ndim,
                   h.data_offset);
            size_t bad = 0;
            for (size_t k = 0; k < n; k++) {
                float want = f16 ? sd_f16_to_f32(sd_f32_to_f16(v[k])) : v[k];
                if (back[k] != want) bad++;
            }
            EXPECT(bad == 0, "%zu values changed (%lld x %lld, f16 %d)", bad, (long long)rows, (long long)cols, f16);
            sd_free(back);
        }
        free(v);
    }
    sd_error err = {0};
    float x = 1;
    EXPECT(sd_npy_write(tmp_path("bad.npy"), &x, 1, 2, 1, SD_DTYPE_F32, &err) == SD_E_ARG, "ndim 1 with 2 rows");
    EXPECT(sd_npy_write(tmp_path("bad.npy"), &x, 2, 1, 1, SD_DTYPE_F64, &err) == SD_E_UNSUPPORTED, "F64 write");
}

static void test_rejected_fixtures(void) {
    struct {
        const char *file;
        const char *msg;
    } cases[] = {
        {"bad_fortran.npy", "Fortran-order array (fortran_order: True) is not supported"},
        {"bad_int32.npy", "dtype '<i4' is not supported"},
        {"bad_bigendian.npy", "dtype '>f4' is not supported"},
        {"bad_3d.npy", "3-D array is not supported"},
        {"bad_0d.npy", "0-D array is not supported"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s", cases[c].file);
        sd_npy_header h;
        float *data = NULL;
        sd_error err = {0};
        EXPECT(sd_npy_read(path, &h, &data, &err) != SD_OK && data == NULL, "%s accepted", path);
        EXPECT(strncmp(err.msg, path, strlen(path)) == 0, "message does not start with the path: %s", err.msg);
        EXPECT(strstr(err.msg, cases[c].msg) != NULL, "%s: message '%s' lacks '%s'", path, err.msg, cases[c].msg);
    }
}

/* A hand-made v1 file: header dict text (padded to 64 like numpy) + data_bytes bytes. */
static uint8_t *make_npy(const char *dict, int major, size_t data_bytes, size_t *n) {
    size_t prefix = major == 1 ? 10 : 12;
    size_t hl = strlen(dict) + 1;
    size_t pad = (64 - (prefix + hl) % 64) % 64;
    size_t hlen = hl + pad;
    *n = prefix + hlen + data_bytes;
    uint8_t *b = calloc(*n, 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + prefix, dict, strlen(dict));
    memset(b + prefix + strlen(dict), ' ', pad);
    b[prefix + hlen - 1] = '\n';
    for (size_t i = 0; i < data_bytes; i++) b[prefix + hlen + i] = (uint8_t)i;
    return b;
}

/* Expects parse of buf to fail with msg, also via a file (message then starts with the path). */
static void expect_bad(const uint8_t *buf, size_t n, const char *msg, const char *label) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    sd_npy_header h;
    float *data = NULL;
    sd_error err = {0};
    sd_status st = sd_npy_parse(copy, n, &h, &data, &err);
    EXPECT(st != SD_OK && data == NULL, "%s: accepted", label);
    EXPECT(strstr(err.msg, msg) != NULL, "%s: message '%s' lacks '%s'", label, err.msg, msg);
    free(copy);
    char *path = tmp_path("bad.npy");
    sd_test_write_file(path, buf, n);
    sd_error ferr = {0};
    st = sd_npy_read(path, &h, &data, &ferr);
    EXPECT(st != SD_OK && data == NULL, "%s: file accepted", label);
    EXPECT(strncmp(ferr.msg, path, strlen(path)) == 0 && strstr(ferr.msg, msg) != NULL,
           "%s: file message '%s'", label, ferr.msg);
    sd_error herr = {0};
    EXPECT(sd_npy_read_header(path, &h, &herr) != SD_OK && strstr(herr.msg, msg) != NULL,
           "%s: read_header message '%s'", label, herr.msg);
}

static void test_malformed(void) {
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    size_t n;
    uint8_t *b = make_npy(good, 1, 48, &n);
    {
        uint8_t *copy = malloc(n);
        memcpy(copy, b, n);
        sd_npy_header h;
        float *d = NULL;
        sd_error err = {0};
        EXPECT(sd_npy_parse(copy, n, &h, &d, &err) == SD_OK && h.rows == 3 && h.cols == 4, "good: %s", err.msg);
        sd_free(d);
        free(copy);
    }
    expect_bad(b, n - 8, "data is truncated", "truncated");
    expect_bad(b, n - 8, "(8 bytes missing)", "truncated count");
    expect_bad(b, n - 48, "(48 bytes missing)", "no data");
    uint8_t *longer = calloc(n + 5, 1);
    memcpy(longer, b, n);
    expect_bad(longer, n + 5, "5 unexpected trailing bytes", "trailing");
    free(longer);

    uint8_t *m = malloc(n);
    memcpy(m, b, n);
    m[1] = 'X';
    expect_bad(m, n, "bad magic", "magic");
    expect_bad(b, 3, "bad magic", "3-byte file");
    expect_bad(b, 7, "truncated .npy header", "7-byte file");
    expect_bad(b, 9, "truncated .npy header", "9-byte file");
    memcpy(m, b, n);
    m[6] = 4;
    expect_bad(m, n, "unsupported .npy format version 4.0", "version");
    memcpy(m, b, n);
    m[7] = 1;
    expect_bad(m, n, "version 1.1", "minor version");
    memcpy(m, b, n);
    m[8] = 0xff, m[9] = 0x7f;
    expect_bad(m, n, "header length 32767 goes past the end of the file", "header length > file");
    expect_bad(b, 40, "goes past the end of the file (40 bytes)", "header cut");
    free(m);
    free(b);
    /* v2 with a 4 GB header length claim */
    b = make_npy(good, 2, 48, &n);
    b[8] = b[9] = b[10] = b[11] = 0xff;
    expect_bad(b, n, "exceeds the limit", "huge v2 header");
    free(b);

    struct {
        const char *dict;
        size_t data;
        const char *msg;
    } dicts[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0, "is too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 2), }", 0, "is too large"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (3037000500, 3037000500), }", 0, "is too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1), }", 0, "overflows int64"},
        {"{'descr': '<f4', 'fortran_order': False, }", 0, "missing key 'shape'"},
        {"{'descr': '<f4', 'shape': (2,), }", 8, "missing key 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", 8, "unexpected key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "appears twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, "'shape' is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, "'shape' is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, "not True or False"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }", 8, "not True or False"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured dtypes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", 8, "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8, "unexpected text after the dict"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, "malformed header"},
        {"{'descr': '|f2', 'fortran_order': False, 'shape': (2,), }", 4, "dtype '|f2' is not supported"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, "dtype '<c8' is not supported"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 8, "bad shape entry"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (02,), }", 8, "leading zero"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0-D array"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }", 8, "3-D array"},
        {"['descr', '<f4']", 8, "not a dict"},
        {"", 8, "not a dict"},
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        b = make_npy(dicts[i].dict, 1, dicts[i].data, &n);
        char label[32];
        snprintf(label, sizeof label, "dict %zu", i);
        expect_bad(b, n, dicts[i].msg, label);
        free(b);
    }
    /* accepted variations: any key order and spacing, double quotes, 'L' suffix, v3 */
    const char *ok[] = {
        "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f4\"}",
        "{ 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , 'descr' : '<f4' , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L)}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        b = make_npy(ok[i], (int)i + 1, 24, &n);
        sd_npy_header h;
        float *d = NULL;
        sd_error err = {0};
        EXPECT(sd_npy_parse(b, n, &h, &d, &err) == SD_OK && h.rows == 2 && h.cols == 3 && h.version == (int)i + 1,
               "ok[%zu]: %s", i, err.msg);
        sd_free(d);
        free(b);
    }
    sd_npy_header h;
    sd_error err = {0};
    EXPECT(sd_npy_read_header(tmp_path("does-not-exist.npy"), &h, &err) == SD_E_IO &&
               strstr(err.msg, "No such file or directory"),
           "missing file: %s", err.msg);
}

/* read_into refuses a file whose header changed since read_header. */
static void test_read_into_checks_header(void) {
    float v[6] = {1, 2, 3, 4, 5, 6};
    char *path = tmp_path("changing.npy");
    sd_error err = {0};
    sd_npy_write(path, v, 2, 2, 3, SD_DTYPE_F32, &err);
    sd_npy_header h;
    EXPECT(sd_npy_read_header(path, &h, &err) == SD_OK, "%s", err.msg);
    sd_npy_write(path, v, 2, 3, 2, SD_DTYPE_F32, &err);
    float dst[6];
    EXPECT(sd_npy_read_into(path, &h, dst, &err) == SD_E_FORMAT && strstr(err.msg, "header changed"),
           "changed header: %s", err.msg);
}

/* The reader on one mutant: parse from memory; an accepted file must have the right size. A
 * prefix is also refused when only its header parses but the data would lie past its end. */
static int npy_reads(const uint8_t *bytes, size_t n, void *ctx) {
    (void)ctx;
    sd_npy_header h;
    float *d = NULL;
    int accepted = 0;
    if (sd_npy_parse(bytes, n, &h, &d, NULL) == SD_OK) {
        accepted = 1;
        EXPECT(h.data_offset + sd_npy_data_bytes(&h) == n, "accepted a file of the wrong size");
    }
    sd_free(d);
    return accepted;
}

static int npy_header_reads(const uint8_t *bytes, size_t n, void *ctx) {
    (void)ctx;
    sd_npy_header h;
    return n >= 12 && sd_npy_parse_header(bytes, n, &h, NULL) == SD_OK && h.data_offset > n;
}

/* Every prefix, random overwrites of the header region and every bit flip in it, of a real file:
 * errors, no crash (ASan checks the reads). */
static void test_hostile_bytes(void) {
    size_t n;
    uint8_t *file = slurp(FIX "v2_f4_2d.npy", &n);
    EXPECT(file != NULL, "fixture missing");
    if (!file) return;
    const int prefixes = sd_mut_prefixes(file, n, npy_reads, NULL) + sd_mut_prefixes(file, n, npy_header_reads, NULL);
    EXPECT(prefixes == 0, "%d truncated files accepted", prefixes);
    const sd_mut_plan plan = {12345, 20000, 3, 3, 140, NULL}; /* 3 bytes of the header region */
    sd_mut_overwrites(file, n, &plan, npy_reads, NULL);
    sd_mut_bit_flips(file, n, 140, npy_reads, NULL);
    free(file);
}

int main(void) {
    sd_test_run("npy_fixtures_value_by_value", test_fixtures_value_by_value);
    sd_test_run("npy_f16_special_values_match_numpy", test_f16_special_values);
    sd_test_run("npy_writer_bytes_match_numpy", test_writer_matches_numpy);
    sd_test_run("npy_round_trip", test_round_trip);
    sd_test_run("npy_rejected_fixtures", test_rejected_fixtures);
    sd_test_run("npy_malformed", test_malformed);
    sd_test_run("npy_read_into_checks_header", test_read_into_checks_header);
    sd_test_run("npy_hostile_bytes", test_hostile_bytes);
    return sd_test_finish();
}
