/* safetensors: a file written by a numpy-only Python script (every readable dtype, metadata with
 * escapes, data in another order than the header) read value by value; the writer byte-identical to
 * the script's file; round trips; and malformed files, each with the message it must give (hand-made
 * here, parsed from exactly-sized heap buffers so ASan sees any over-read). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "mutate.h"

#define FIX "tests/fixtures/safetensors/"

/* The fixture formulas (make_safetensors_fixtures.py). */
static float expected_value(const char *dtype, size_t k) {
    uint64_t mi = (k * 2654435761ull + 12345ull) % (1ull << 24);
    double m = (double)mi, sign = (k % 2) ? -1.0 : 1.0;
    if (!strcmp(dtype, "F32")) return (float)(sign * ldexp(m, (int)((7 * k) % 40) - 30));
    if (!strcmp(dtype, "F16")) return sd_f16_to_f32(sd_f32_to_f16((float)(sign * ldexp(m, (int)((5 * k) % 44) - 50))));
    if (!strcmp(dtype, "BF16")) return (float)(sign * ldexp((double)(mi % 256), (int)((3 * k) % 30) - 15));
    return (float)(sign * ldexp(m / 3.0, (int)((3 * k) % 20) - 10));
}

static uint8_t *slurp(const char *path, size_t *n) { return sd_test_read_file(path, n); }

static char *tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", sd_test_tmpdir(), name);
    return path;
}

static void check_values(const sd_safetensors *st, const char *name, const char *dtype_name, sd_dtype dtype,
                         int ndim, const int64_t *shape) {
    const sd_st_tensor *t = sd_st_find(st, name);
    EXPECT(t != NULL, "tensor %s missing", name);
    if (!t) return;
    EXPECT(t->dtype == dtype && t->ndim == ndim, "%s: dtype %s ndim %d", name, sd_dtype_name(t->dtype), t->ndim);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        EXPECT(t->shape[d] == shape[d], "%s: shape[%d] = %lld", name, d, (long long)t->shape[d]);
        numel *= (size_t)shape[d];
    }
    EXPECT(t->numel == numel && t->end - t->begin == numel * sd_dtype_size(dtype), "%s: numel %zu bytes %zu", name,
           t->numel, t->end - t->begin);
    float *v = malloc((numel ? numel : 1) * sizeof(float));
    sd_error err = {0};
    EXPECT(sd_st_read_f32(st, t, v, &err) == SD_OK, "%s: %s", name, err.msg);
    size_t bad = 0;
    for (size_t k = 0; k < numel; k++) {
        float want = expected_value(dtype_name, k);
        if (!sd_test_same_float(v[k], want) && bad++ < 3)
            EXPECT(0, "%s[%zu] = %.9g, want %.9g", name, k, (double)v[k], (double)want);
    }
    EXPECT(bad == 0, "%s: %zu values differ", name, bad);
    free(v);
}

static void check_reference(const sd_safetensors *st) {
    const char *order[] = {"w.f32", "h.f16", "b.bf16", "d.f64", "s.scalar", "z.empty"};
    EXPECT(sd_st_count(st) == 6, "count %d", sd_st_count(st));
    for (int i = 0; i < 6 && i < sd_st_count(st); i++)
        EXPECT(strcmp(sd_st_tensor_at(st, i)->name, order[i]) == 0, "tensor %d is %s", i, sd_st_tensor_at(st, i)->name);
    EXPECT(sd_st_tensor_at(st, 6) == NULL && sd_st_tensor_at(st, -1) == NULL, "out-of-range index");
    check_values(st, "w.f32", "F32", SD_DTYPE_F32, 2, (int64_t[]){2, 3});
    check_values(st, "h.f16", "F16", SD_DTYPE_F16, 1, (int64_t[]){7});
    check_values(st, "b.bf16", "BF16", SD_DTYPE_BF16, 2, (int64_t[]){2, 2});
    check_values(st, "d.f64", "F64", SD_DTYPE_F64, 2, (int64_t[]){3, 1});
    check_values(st, "s.scalar", "F32", SD_DTYPE_F32, 0, NULL);
    check_values(st, "z.empty", "F32", SD_DTYPE_F32, 2, (int64_t[]){0, 4});
    EXPECT(sd_st_find(st, "nope") == NULL && sd_st_find(st, "w.f3") == NULL, "find of absent names");
    /* data was laid out sorted by name: b.bf16 first */
    const sd_st_tensor *b = sd_st_find(st, "b.bf16");
    EXPECT(b && b->begin == 0 && b->end == 8, "b.bf16 offsets");
    EXPECT(b && ((uintptr_t)sd_st_data(st, b) % 64) == 0, "data section not 64-byte aligned");
    uint16_t raw0;
    if (b) memcpy(&raw0, sd_st_data(st, b), 2);
    EXPECT(b && sd_bf16_to_f32(raw0) == expected_value("BF16", 0), "raw bytes");
    EXPECT(sd_st_metadata_count(st) == 2, "metadata count %d", sd_st_metadata_count(st));
    EXPECT(strcmp(sd_st_metadata_key(st, 0), "format") == 0 && strcmp(sd_st_metadata_value(st, 0), "pt") == 0,
           "metadata 0");
    const char *note = sd_st_metadata_get(st, "note");
    EXPECT(note && strcmp(note, "h\xc3\xa9llo \"q\"\n\xe2\x82\xac") == 0, "note = %s", note ? note : "(null)");
    EXPECT(sd_st_metadata_get(st, "absent") == NULL && sd_st_metadata_key(st, 2) == NULL, "absent metadata");
}

static void test_reference_file(void) {
    sd_safetensors *st = NULL;
    sd_error err = {0};
    sd_status s = sd_st_open(FIX "reference.safetensors", &st, &err);
    EXPECT(s == SD_OK, "open: %s (run from the repository root)", err.msg);
    if (st) check_reference(st);
    sd_st_close(st);
    size_t n;
    uint8_t *buf = slurp(FIX "reference.safetensors", &n);
    st = NULL;
    EXPECT(buf && sd_st_parse(buf, n, &st, &err) == SD_OK, "parse: %s", err.msg);
    free(buf); /* sd_st_parse copied it */
    if (st) check_reference(st);
    sd_st_close(st);
}

static void test_writer_matches_script(void) {
    float w[6], bias_src[5], scale;
    for (size_t k = 0; k < 6; k++) w[k] = expected_value("F32", k);
    for (size_t k = 0; k < 5; k++) {
        uint64_t mi = (k * 2654435761ull + 12345ull) % (1ull << 24);
        bias_src[k] = (float)(((k % 2) ? -1.0 : 1.0) * ldexp((double)mi, (int)((5 * k) % 44) - 50));
    }
    scale = expected_value("F32", 0);
    sd_st_writer *wr = sd_st_writer_new();
    sd_error err = {0};
    EXPECT(sd_st_writer_set_metadata(wr, "model", "placeholder", &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_st_writer_add(wr, "enc.weight", SD_DTYPE_F32, 2, (int64_t[]){3, 2}, w, &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_st_writer_set_metadata(wr, "text", "tab\there \xc3\xa9 \"q\" \\ \x01", &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_st_writer_add(wr, "enc.bias", SD_DTYPE_F16, 1, (int64_t[]){5}, bias_src, &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_st_writer_add(wr, "scale", SD_DTYPE_F32, 0, NULL, &scale, &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_st_writer_set_metadata(wr, "model", "sdumc", &err) == SD_OK, "replace: %s", err.msg);
    EXPECT(sd_st_writer_add(wr, "scale", SD_DTYPE_F32, 0, NULL, &scale, &err) == SD_E_ARG &&
               strstr(err.msg, "duplicate tensor name 'scale'"),
           "duplicate add: %s", err.msg);
    EXPECT(sd_st_writer_add(wr, "__metadata__", SD_DTYPE_F32, 0, NULL, &scale, &err) == SD_E_ARG, "reserved name");
    EXPECT(sd_st_writer_add(wr, "neg", SD_DTYPE_F32, 1, (int64_t[]){-1}, &scale, &err) == SD_E_ARG, "negative dim");
    char *path = tmp_path("w.safetensors");
    EXPECT(sd_st_writer_write(wr, path, &err) == SD_OK, "write: %s", err.msg);
    sd_st_writer_free(wr);
    size_t na, nb;
    uint8_t *a = slurp(path, &na), *b = slurp(FIX "writer_expected.safetensors", &nb);
    EXPECT(a && b && na == nb && memcmp(a, b, na) == 0, "writer bytes (%zu) differ from the script's (%zu)", na, nb);
    if (a && b && na == nb)
        for (size_t i = 0; i < na; i++)
            if (a[i] != b[i]) {
                EXPECT(0, "first difference at byte %zu: 0x%02x vs 0x%02x", i, a[i], b[i]);
                break;
            }
    free(a);
    free(b);
}

static void test_round_trip(void) {
    enum { NT = 20 };
    float *data[NT];
    int64_t shapes[NT][3];
    sd_st_writer *w = sd_st_writer_new();
    sd_error err = {0};
    for (int i = 0; i < NT; i++) {
        shapes[i][0] = 1 + i % 5, shapes[i][1] = 1 + (i * 7) % 11, shapes[i][2] = i % 4;
        size_t n = 1;
        for (int d = 0; d < 1 + i % 3; d++) n *= (size_t)shapes[i][d];
        data[i] = malloc((n ? n : 1) * sizeof(float));
        for (size_t k = 0; k < n; k++) data[i][k] = (float)cos((double)(k + 1) * (i + 1)) * (float)(i + 1);
        char name[32];
        snprintf(name, sizeof name, "layer.%02d.%s", NT - i, i % 2 ? "f16" : "f32");
        EXPECT(sd_st_writer_add(w, name, i % 2 ? SD_DTYPE_F16 : SD_DTYPE_F32, 1 + i % 3, shapes[i], data[i], &err) ==
                   SD_OK,
               "%s", err.msg);
    }
    char *path = tmp_path("rt.safetensors");
    EXPECT(sd_st_writer_write(w, path, &err) == SD_OK, "write: %s", err.msg);
    sd_st_writer_free(w);
    size_t n;
    uint8_t *file = slurp(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | file[i];
    EXPECT(hlen % 8 == 0 && n >= 8 + hlen && file[8] == '{', "header length %llu not padded to 8",
           (unsigned long long)hlen);
    free(file);
    sd_safetensors *st = NULL;
    EXPECT(sd_st_open(path, &st, &err) == SD_OK, "open: %s", err.msg);
    if (!st) return;
    EXPECT(sd_st_count(st) == NT && sd_st_metadata_count(st) == 0, "count %d", sd_st_count(st));
    size_t expected_begin = 0;
    for (int i = 0; i < NT && i < sd_st_count(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        int ndim = 1 + i % 3;
        size_t numel = 1;
        for (int d = 0; d < ndim; d++) numel *= (size_t)shapes[i][d];
        EXPECT(t->ndim == ndim && t->numel == numel && t->begin == expected_begin, "tensor %d layout", i);
        EXPECT(sd_st_find(st, t->name) == t, "find %s", t->name);
        expected_begin = t->end;
        float *v = malloc((numel ? numel : 1) * sizeof(float));
        sd_st_read_f32(st, t, v, &err);
        size_t bad = 0;
        for (size_t k = 0; k < numel; k++) {
            float want = i % 2 ? sd_f16_to_f32(sd_f32_to_f16(data[i][k])) : data[i][k];
            if (v[k] != want) bad++;
        }
        EXPECT(bad == 0, "tensor %d: %zu values changed", i, bad);
        free(v);
    }
    sd_st_close(st);
    for (int i = 0; i < NT; i++) free(data[i]);
}

/* A hand-made file: 8-byte length (of header, unless hlen_override), header, data_bytes bytes. */
static uint8_t *make_st(const char *header, size_t data_bytes, uint64_t hlen_override, size_t *n) {
    size_t h = strlen(header);
    *n = 8 + h + data_bytes;
    uint8_t *b = calloc(*n, 1);
    uint64_t len = hlen_override ? hlen_override : h;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(len >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

static void expect_bad_buf(const uint8_t *buf, size_t n, const char *msg, const char *label) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    sd_safetensors *st = NULL;
    sd_error err = {0};
    sd_status s = sd_st_parse(copy, n, &st, &err);
    EXPECT(s != SD_OK && st == NULL, "%s: accepted", label);
    EXPECT(strstr(err.msg, msg) != NULL, "%s: message '%s' lacks '%s'", label, err.msg, msg);
    /* the same without an sd_error */
    s = sd_st_parse(copy, n, &st, NULL);
    EXPECT(s != SD_OK && st == NULL, "%s: accepted when err is NULL", label);
    sd_st_close(st);
    free(copy);
}

static void expect_bad(const char *header, size_t data_bytes, const char *msg) {
    size_t n;
    uint8_t *b = make_st(header, data_bytes, 0, &n);
    expect_bad_buf(b, n, msg, header);
    free(b);
}

#define T32(name, shape, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_malformed(void) {
    expect_bad("{" T32("a", "[2]", 0, 8) "," T32("b", "[2]", 12, 20) "}", 20, "leave a hole: bytes 8..12");
    expect_bad("{" T32("a", "[2]", 0, 8) "," T32("b", "[2]", 4, 12) "}", 12, "overlap tensor 'a' (which ends at 8)");
    expect_bad("{" T32("a", "[2]", 4, 12) "}", 12, "leave a hole: bytes 0..4");
    expect_bad("{" T32("a", "[2]", 0, 8) "}", 11, "3 unexpected trailing bytes");
    expect_bad("{" T32("a", "[2]", 0, 8) "}", 5, "file is truncated");
    expect_bad("{" T32("a", "[2]", 0, 8) "," T32("a", "[2]", 8, 16) "}", 16, "duplicate key \"a\"");
    expect_bad("{" T32("a", "[3]", 0, 8) "}", 8, "hold 8 bytes but 3 elements of F32 need 12");
    expect_bad("{" T32("a", "[2]", 8, 0) "}", 8, "invalid data_offsets [8, 0]");
    expect_bad("{" T32("a", "[4294967296,4294967296]", 0, 8) "}", 8, "shape product overflows");
    expect_bad("{" T32("a", "[4611686018427387904]", 0, 8) "}", 8, "overflows (byte size)");
    expect_bad("{" T32("a", "[18446744073709551616]", 0, 8) "}", 8, "not a non-negative integer");
    expect_bad("{" T32("a", "[-2]", 0, 8) "}", 8, "not a non-negative integer");
    expect_bad("{" T32("a", "[2.0]", 0, 8) "}", 8, "not a non-negative integer");
    expect_bad("{" T32("a", "[1,1,1,1,1,1,1,1,2]", 0, 8) "}", 8, "9 dimensions");
    expect_bad("{\"a\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'F17'");
    expect_bad("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'f32'");
    expect_bad("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "dtype I64 is not supported");
    expect_bad("{\"a\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype is not a string");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing field 'data_offsets'");
    expect_bad("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing field 'dtype'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "not [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "shape is not an array");
    expect_bad("{\"a\":[1]}", 0, "entry is not an object");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "value of 'k' is not a string");
    expect_bad("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    expect_bad("[1,2]", 0, "header is not a JSON object (found array)");
    expect_bad("\"text\"", 0, "header is not a JSON object (found string)");
    expect_bad(" {}", 0, "does not start with '{'");
    expect_bad("{\"a\":", 0, "invalid header: JSON: unexpected end of input");
    expect_bad("{\"a\":{}} junk", 0, "trailing characters");
    expect_bad("{\"a\x01\":{}}", 0, "control character");
    expect_bad("", 0, "empty input");
    /* the length prefix */
    size_t n;
    uint8_t *b = make_st("{}", 0, 0, &n);
    expect_bad_buf(b, 7, "file too small (7 bytes)", "7 bytes");
    expect_bad_buf(b, 0, "file too small (0 bytes)", "0 bytes");
    free(b);
    b = make_st("{}", 0, 100000001ull, &n);
    expect_bad_buf(b, n, "header length 100000001 exceeds the 100000000-byte limit", "101 MB");
    free(b);
    b = make_st("{}", 0, UINT64_MAX, &n);
    expect_bad_buf(b, n, "exceeds the 100000000-byte limit", "2^64-1");
    free(b);
    b = make_st("{}  ", 0, 5000, &n);
    expect_bad_buf(b, n, "header length 5000 goes past the end of the file (12 bytes)", "past EOF");
    free(b);
    /* via a file: the message starts with the path */
    b = make_st("{" T32("a", "[2]", 0, 8) "," T32("b", "[2]", 4, 12) "}", 12, 0, &n);
    char *path = tmp_path("bad.safetensors");
    sd_test_write_file(path, b, n);
    free(b);
    sd_safetensors *st = NULL;
    sd_error err = {0};
    EXPECT(sd_st_open(path, &st, &err) == SD_E_FORMAT && st == NULL, "bad file opened");
    EXPECT(strncmp(err.msg, path, strlen(path)) == 0 && strstr(err.msg, "overlap"), "file message: %s", err.msg);
    b = make_st("{}", 0, 100000001ull, &n);
    sd_test_write_file(path, b, n);
    free(b);
    EXPECT(sd_st_open(path, &st, &err) == SD_E_FORMAT && strncmp(err.msg, path, strlen(path)) == 0 &&
               strstr(err.msg, "exceeds"),
           "file message: %s", err.msg);
    EXPECT(sd_st_open(tmp_path("absent.safetensors"), &st, &err) == SD_E_IO && strstr(err.msg, "No such file"),
           "missing file: %s", err.msg);
    /* accepted edge cases: empty header object, zero-size tensors anywhere, unknown extra fields */
    const char *ok[] = {
        "{}",
        "{" T32("e", "[0]", 0, 0) "," T32("a", "[2]", 0, 8) "," T32("z", "[3,0]", 8, 8) "}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":[1,{}]}}    ",
    };
    size_t data[] = {0, 8, 8};
    for (size_t i = 0; i < 3; i++) {
        b = make_st(ok[i], data[i], 0, &n);
        st = NULL;
        EXPECT(sd_st_parse(b, n, &st, &err) == SD_OK, "ok[%zu]: %s", i, err.msg);
        sd_st_close(st);
        free(b);
    }
}

/* The reader on one mutant: parse from memory; whatever is accepted must be self-consistent and
 * readable. */
static int st_reads(const uint8_t *bytes, size_t n, void *ctx) {
    (void)ctx;
    sd_safetensors *st = NULL;
    if (sd_st_parse(bytes, n, &st, NULL) != SD_OK) return 0;
    for (int i = 0; i < sd_st_count(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        EXPECT(t->end - t->begin == t->numel * sd_dtype_size(t->dtype),
               "tensor %d holds %zu bytes for %zu elements of %s", i, t->end - t->begin, t->numel,
               sd_dtype_name(t->dtype));
        float *v = malloc((t->numel ? t->numel : 1) * sizeof(float));
        EXPECT(sd_st_read_f32(st, t, v, NULL) == SD_OK, "tensor %d unreadable", i);
        free(v);
    }
    sd_st_close(st);
    return 1;
}

/* Every prefix, random overwrites (half with JSON syntax) and every bit flip in the header of the
 * reference file: errors, never a crash. */
static void test_hostile_bytes(void) {
    size_t n;
    uint8_t *file = slurp(FIX "reference.safetensors", &n);
    EXPECT(file != NULL, "fixture missing");
    if (!file) return;
    const int prefixes = sd_mut_prefixes(file, n, st_reads, NULL);
    EXPECT(prefixes == 0, "%d truncated files accepted", prefixes);
    const sd_mut_plan plan = {99, 5000, 2, 2, 0, "0123456789[]{},:\" -"};
    sd_mut_overwrites(file, n, &plan, st_reads, NULL);
    uint64_t header = 0; /* the 8-byte length and the JSON header */
    for (int i = 7; i >= 0; i--) header = header << 8 | file[i];
    sd_mut_bit_flips(file, n, header + 8 < n ? (size_t)header + 8 : n, st_reads, NULL);
    free(file);
}

int main(void) {
    sd_test_run("safetensors_reference_file", test_reference_file);
    sd_test_run("safetensors_writer_matches_script", test_writer_matches_script);
    sd_test_run("safetensors_round_trip", test_round_trip);
    sd_test_run("safetensors_malformed", test_malformed);
    sd_test_run("safetensors_hostile_bytes", test_hostile_bytes);
    return sd_test_finish();
}
