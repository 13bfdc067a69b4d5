/* GGUF reader: a Python-written fixture with every tensor type and value type, and hostile files
 * (every truncation, bad magic and version, huge counts and lengths, overlapping, misaligned and
 * out-of-file tensors, unknown types, duplicates, random byte overwrites and every bit flip of
 * the header, tests/mutate.h) that must fail cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/gguf.h"
#include "mutate.h"

#define FIXTURE "tests/fixtures/llm/gguf_types.gguf"

/* ---- a byte builder for hand-made files ---------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) {
    unsigned char c[4] = {v & 255, v >> 8 & 255, v >> 16 & 255, v >> 24 & 255};
    put(b, c, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void pad_to(buf *b, size_t align) {
    while (b->n % align) put(b, "", 1);
}

/* What the hand-made file looks like; each test changes one thing. */
typedef struct {
    const char *magic;
    uint32_t version;
    uint64_t n_tensors_declared; /* 0: the real count (2) */
    uint64_t n_kv_declared;      /* 0: the real count (3) */
    uint64_t key_len;            /* 0: real */
    uint64_t arr_len;            /* 0: real (3) */
    uint32_t alignment;          /* written as general.alignment when nonzero */
    uint32_t type1;              /* tensor 1's type (default F32) */
    uint64_t off1;               /* tensor 1's offset (default 64: after tensor 0's 64 bytes) */
    uint64_t dim1;               /* tensor 1's ne[0] (default 4) */
    uint32_t ndims1;             /* default 2 */
    const char *name1;           /* default "b" */
    const char *key2;            /* default "c.arr" */
} spec;

static spec default_spec(void) {
    spec s = {"GGUF", 3, 0, 0, 0, 0, 0, 0, 64, 4, 2, "b", "c.arr"};
    return s;
}

/* Tensor "a": F32 [4,4] at 0 (64 bytes); tensor "b": F32 [dim1, 2] at off1. */
static buf build(spec s) {
    buf b = {0};
    put(&b, s.magic, 4);
    put_u32(&b, s.version);
    put_u64(&b, s.n_tensors_declared ? s.n_tensors_declared : 2);
    int nkv = s.alignment ? 4 : 3;
    put_u64(&b, s.n_kv_declared ? s.n_kv_declared : (uint64_t)nkv);
    /* kv 1: string */
    if (s.key_len) {
        put_u64(&b, s.key_len);
        put(&b, "general.architecture", 20);
    } else {
        put_str(&b, "general.architecture");
    }
    put_u32(&b, 8);
    put_str(&b, "llama");
    /* kv 2: u32 */
    put_str(&b, "llama.block_count");
    put_u32(&b, 4);
    put_u32(&b, 7);
    /* kv 3: array of f32 */
    put_str(&b, s.key2);
    put_u32(&b, 9);
    put_u32(&b, 6);
    put_u64(&b, s.arr_len ? s.arr_len : 3);
    for (int i = 0; i < 3; i++) {
        float f = (float)i + 0.5f;
        put(&b, &f, 4);
    }
    if (s.alignment) {
        put_str(&b, "general.alignment");
        put_u32(&b, 4);
        put_u32(&b, s.alignment);
    }
    size_t align = s.alignment ? s.alignment : 32;
    /* tensor infos */
    put_str(&b, "a");
    put_u32(&b, 2);
    put_u64(&b, 4);
    put_u64(&b, 4);
    put_u32(&b, 0);
    put_u64(&b, 0);
    put_str(&b, s.name1);
    put_u32(&b, s.ndims1);
    put_u64(&b, s.dim1);
    for (uint32_t d = 1; d < s.ndims1; d++) put_u64(&b, 2);
    put_u32(&b, s.type1);
    put_u64(&b, s.off1);
    if (s.alignment == 0 || (s.alignment & (s.alignment - 1)) == 0) pad_to(&b, align);
    for (int i = 0; i < 16; i++) {
        float f = (float)i;
        put(&b, &f, 4);
    }
    pad_to(&b, align > 64 ? align : 1);
    for (int i = 0; i < 8; i++) {
        float f = -(float)i;
        put(&b, &f, 4);
    }
    return b;
}

static const char *write_tmp(const char *name, const buf *b) { return sd_test_write_tmp(name, b->p, b->n); }

/* Opens b; expects failure with code and a message containing needle. */
static void expect_reject(const char *what, buf b, sd_status code, const char *needle) {
    const char *path = write_tmp("bad.gguf", &b);
    sd_gguf *g = (sd_gguf *)1;
    sd_error err = {0};
    sd_status s = sd_gguf_open(path, &g, &err);
    EXPECT(s == code, "%s: status %s, want %s (%s)", what, sd_status_name(s), sd_status_name(code),
           err.msg);
    EXPECT(g == NULL, "%s: output not cleared", what);
    EXPECT(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle);
    EXPECT(strstr(err.msg, "bad.gguf") != NULL, "%s: message '%s' does not name the file", what,
           err.msg);
    free(b.p);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_handmade_valid(void) {
    buf b = build(default_spec());
    const char *path = write_tmp("ok.gguf", &b);
    sd_gguf *g = NULL;
    sd_error err = {0};
    EXPECT(sd_gguf_open(path, &g, &err) == SD_OK, "open: %s", err.msg);
    free(b.p);
    if (!g) return;
    const char *arch = NULL;
    uint32_t blocks = 0;
    EXPECT(sd_gguf_get_str(g, "general.architecture", &arch, &err) == SD_OK && !strcmp(arch, "llama"),
           "arch");
    EXPECT(sd_gguf_get_u32(g, "llama.block_count", &blocks, &err) == SD_OK && blocks == 7, "blocks");
    EXPECT(sd_gguf_get_u32(g, "missing", &blocks, &err) == SD_E_FORMAT && strstr(err.msg, "missing"),
           "missing key");
    EXPECT(sd_gguf_get_u32(g, "general.architecture", &blocks, &err) == SD_E_FORMAT, "mistyped");
    const sd_gguf_kv *arr = sd_gguf_find_kv(g, "c.arr");
    EXPECT(arr && arr->type == SD_GGUF_ARRAY && arr->arr_type == SD_GGUF_F32 && arr->arr_n == 3 &&
               ((const float *)arr->arr)[2] == 2.5f,
           "array");
    const sd_gguf_tensor *a = sd_gguf_find_tensor(g, "a"), *t = sd_gguf_find_tensor(g, "b");
    EXPECT(a && t && !sd_gguf_find_tensor(g, "c"), "find");
    if (a && t) {
        EXPECT(((const float *)a->data)[5] == 5.0f, "a[5]");
        EXPECT(t->ne[0] == 4 && t->ne[1] == 2 && t->nbytes == 32 && ((const float *)t->data)[7] == -7.0f,
               "b");
    }
    sd_gguf_close(g);
}

/* The reader on one mutant, by path as the decoder opens models: accepted, or refused with a
 * message, as SD_E_FORMAT when format_only (the first other refusal is recorded as a failure). An
 * accepted file's tensors are read whole (ASan checks the bounds). */
typedef struct {
    int other_refusals;
    int format_only;
} gguf_mutants;

static int gguf_reads(const uint8_t *bytes, size_t n, void *ctx) {
    gguf_mutants *m = ctx;
    const char *path = sd_test_write_tmp("mutant.gguf", bytes, n);
    sd_gguf *g = NULL;
    sd_error err = {0};
    const sd_status s = sd_gguf_open(path, &g, &err);
    if (s == SD_OK) {
        for (size_t i = 0; i < sd_gguf_tensor_count(g); i++) {
            const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
            volatile unsigned char sink = 0;
            for (size_t j = 0; j < t->nbytes; j++) sink ^= ((const unsigned char *)t->data)[j];
            (void)sink;
        }
    } else if ((m->format_only && s != SD_E_FORMAT) || g || !err.msg[0]) {
        if (!m->other_refusals++)
            sd_test_fail(__FILE__, __LINE__, "%zu bytes: %s '%s'", n, sd_status_name(s), err.msg);
    }
    sd_gguf_close(g);
    return s == SD_OK;
}

/* Every proper prefix of a valid file must be rejected as SD_E_FORMAT, never crash. */
static void test_every_truncation(void) {
    buf b = build(default_spec());
    gguf_mutants m = {0, 1};
    const int accepted = sd_mut_prefixes(b.p, b.n, gguf_reads, &m);
    EXPECT(accepted == 0 && m.other_refusals == 0, "%d prefixes accepted, %d not rejected as SD_E_FORMAT",
           accepted, m.other_refusals);
    free(b.p);
}

static void test_malformed(void) {
    spec s = default_spec();
    s.magic = "GGUG";
    expect_reject("bad magic", build(s), SD_E_FORMAT, "magic");
    s = default_spec();
    s.version = 2;
    expect_reject("version 2", build(s), SD_E_UNSUPPORTED, "version 2");
    s.version = 99;
    expect_reject("version 99", build(s), SD_E_FORMAT, "version 99");
    s = default_spec();
    s.n_tensors_declared = UINT64_MAX;
    expect_reject("huge tensor count", build(s), SD_E_FORMAT, "tensor count");
    s = default_spec();
    s.n_tensors_declared = 1u << 19;
    expect_reject("large tensor count", build(s), SD_E_FORMAT, "tensor count");
    s = default_spec();
    s.n_kv_declared = (uint64_t)1 << 62;
    expect_reject("huge kv count", build(s), SD_E_FORMAT, "key-value count");
    s = default_spec();
    s.key_len = UINT64_MAX - 3;
    expect_reject("huge key length", build(s), SD_E_FORMAT, "length");
    s = default_spec();
    s.arr_len = (uint64_t)1 << 61;
    expect_reject("huge array length", build(s), SD_E_FORMAT, "does not fit");
    s = default_spec();
    s.off1 = 32;
    expect_reject("overlap", build(s), SD_E_FORMAT, "overlap");
    s = default_spec();
    s.off1 = 0;
    expect_reject("same offset", build(s), SD_E_FORMAT, "overlap");
    s = default_spec();
    s.off1 = 65;
    expect_reject("misaligned", build(s), SD_E_FORMAT, "alignment");
    s = default_spec();
    s.off1 = 96;
    expect_reject("past end", build(s), SD_E_FORMAT, "past the end");
    s = default_spec();
    s.off1 = UINT64_MAX - 31;
    expect_reject("offset wraps", build(s), SD_E_FORMAT, "past the end");
    s = default_spec();
    s.type1 = 13;
    expect_reject("unknown type", build(s), SD_E_UNSUPPORTED, "unsupported type 13");
    s = default_spec();
    s.type1 = 8; /* Q8_0 with a row of 4 */
    expect_reject("q8 row", build(s), SD_E_FORMAT, "multiple of 32");
    s = default_spec();
    s.dim1 = 0;
    expect_reject("zero dim", build(s), SD_E_FORMAT, "zero or overflows");
    s = default_spec();
    s.dim1 = (uint64_t)1 << 62;
    expect_reject("dim overflow", build(s), SD_E_FORMAT, "overflows");
    s = default_spec();
    s.ndims1 = 5;
    expect_reject("5 dims", build(s), SD_E_FORMAT, "5 dims");
    s = default_spec();
    s.name1 = "a";
    expect_reject("duplicate tensor", build(s), SD_E_FORMAT, "duplicate tensor name 'a'");
    s = default_spec();
    s.key2 = "llama.block_count";
    expect_reject("duplicate key", build(s), SD_E_FORMAT, "duplicate key");
    s = default_spec();
    s.alignment = 48;
    expect_reject("alignment not power of two", build(s), SD_E_FORMAT, "general.alignment");
    /* Not a file at all. */
    sd_gguf *g = NULL;
    sd_error err = {0};
    EXPECT(sd_gguf_open("/nonexistent/x.gguf", &g, &err) == SD_E_IO && strstr(err.msg, "x.gguf"),
           "missing file: %s", err.msg);
}

static void test_alignment_key(void) {
    spec s = default_spec();
    s.alignment = 64;
    buf b = build(s);
    const char *path = write_tmp("al.gguf", &b);
    sd_gguf *g = NULL;
    sd_error err = {0};
    EXPECT(sd_gguf_open(path, &g, &err) == SD_OK, "alignment 64: %s", err.msg);
    if (g) {
        EXPECT(sd_gguf_alignment(g) == 64, "alignment");
        const sd_gguf_tensor *t = sd_gguf_find_tensor(g, "b");
        EXPECT(t && ((const float *)t->data)[1] == -1.0f, "data with alignment 64");
    }
    sd_gguf_close(g);
    free(b.p);
}

/* Deterministic random overwrites of 1 to 4 bytes, and every bit flip of the header, in a valid
 * file: anything may happen but a crash, a leak or a refusal without a message. */
static void test_random_corruption(void) {
    buf b = build(default_spec());
    gguf_mutants m = {0, 0};
    const sd_mut_plan plan = {0x9E3779B97F4A7C15ull, 600, 1, 4, 0, NULL};
    const int opened = sd_mut_overwrites(b.p, b.n, &plan, gguf_reads, &m);
    EXPECT(opened > 0 && opened < 600, "fuzz opened %d of 600", opened);
    const size_t header = b.n - 96; /* the data: 16 floats of "a", 8 of "b" */
    const int flipped = sd_mut_bit_flips(b.p, b.n, header, gguf_reads, &m);
    printf("  %d of 600 overwritten and %d of %zu bit-flipped files opened\n", opened, flipped, 8 * header);
    EXPECT(m.other_refusals == 0, "%d refusals without a message", m.other_refusals);
    free(b.p);
}

/* The Python writer's file: every tensor type against its expected values stored beside it as
 * F32 ("<name>.expected": what the reference dequantiser computes from the stored bytes). */
static void test_python_fixture(void) {
    sd_gguf *g = NULL;
    sd_error err = {0};
    if (sd_gguf_open(FIXTURE, &g, &err) != SD_OK) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    const char *types[] = {"F32", "F16", "Q8_0", "Q4_0"};
    for (int k = 0; k < 4; k++) {
        char name[64], ename[80];
        snprintf(name, sizeof name, "x.%s", types[k]);
        snprintf(ename, sizeof ename, "%s.expected", name);
        const sd_gguf_tensor *t = sd_gguf_find_tensor(g, name), *e = sd_gguf_find_tensor(g, ename);
        EXPECT(t && e, "%s missing", name);
        if (!t || !e) continue;
        EXPECT(!strcmp(sd_ggml_type_name(t->type), types[k]), "%s type %s", name,
               sd_ggml_type_name(t->type));
        EXPECT(t->ne[0] == 64 && t->ne[1] == 3 && t->n_dims == 2, "%s shape", name);
        int64_t n = sd_gguf_tensor_numel(t);
        float *v = malloc((size_t)n * sizeof *v);
        sd_ggml_to_f32(t->type, t->data, v, n);
        size_t where = 0;
        double e_max = sd_max_rel_err_f(v, e->data, (size_t)n, 1e-30, &where);
        EXPECT(e_max == 0.0, "%s: dequantised differs at %zu (rel %g)", name, where, e_max);
        free(v);
    }
    const char *s = NULL;
    uint32_t u = 0;
    float f = 0;
    EXPECT(sd_gguf_get_str(g, "t.string", &s, &err) == SD_OK && !strcmp(s, "h\xc3\xa9llo"), "string");
    EXPECT(sd_gguf_get_u32(g, "t.u32", &u, &err) == SD_OK && u == 4000000000u, "u32");
    EXPECT(sd_gguf_get_u32(g, "t.i32", &u, &err) == SD_OK && u == 123, "i32 as u32");
    EXPECT(sd_gguf_get_f32(g, "t.f32", &f, &err) == SD_OK && f == 1e-5f, "f32");
    EXPECT(sd_gguf_get_u32(g, "t.neg", &u, &err) == SD_E_FORMAT, "negative as u32");
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, "t.bool");
    EXPECT(kv && kv->type == SD_GGUF_BOOL && kv->v.u == 1, "bool");
    kv = sd_gguf_find_kv(g, "t.strings");
    EXPECT(kv && kv->type == SD_GGUF_ARRAY && kv->arr_type == SD_GGUF_STRING && kv->arr_n == 3 &&
               !strcmp(kv->arr_str[1], "") && !strcmp(kv->arr_str[2], "<0x0A>") &&
               kv->arr_str_len[2] == 6,
           "string array");
    kv = sd_gguf_find_kv(g, "t.i32s");
    EXPECT(kv && kv->arr_type == SD_GGUF_I32 && kv->arr_n == 2 && ((const int32_t *)kv->arr)[1] == -6,
           "i32 array");
    EXPECT(sd_gguf_alignment(g) == 32 && sd_gguf_version(g) == 3, "alignment/version");
    sd_gguf_close(g);
}

/* Row sizes and the dequantisers on hand-made blocks. */
static void test_dequant_blocks(void) {
    EXPECT(sd_ggml_row_size(SD_GGML_Q8_0, 64) == 68 && sd_ggml_row_size(SD_GGML_Q4_0, 64) == 36 &&
               sd_ggml_row_size(SD_GGML_F16, 3) == 6 && sd_ggml_row_size(SD_GGML_Q8_0, 33) == 0,
           "row sizes");
    unsigned char q8[34] = {0x00, 0x40}; /* d = 2.0 */
    for (int j = 0; j < 32; j++) q8[2 + j] = (unsigned char)(int8_t)(j - 16);
    float out[32];
    sd_ggml_to_f32(SD_GGML_Q8_0, q8, out, 32);
    for (int j = 0; j < 32; j++) EXPECT(out[j] == 2.0f * (float)(j - 16), "q8 %d = %g", j, out[j]);
    unsigned char q4[18] = {0x00, 0x38}; /* d = 0.5 */
    for (int j = 0; j < 16; j++) q4[2 + j] = (unsigned char)(j | (15 - j) << 4);
    sd_ggml_to_f32(SD_GGML_Q4_0, q4, out, 32);
    for (int j = 0; j < 16; j++) {
        EXPECT(out[j] == 0.5f * (float)(j - 8), "q4 lo %d = %g", j, out[j]);
        EXPECT(out[j + 16] == 0.5f * (float)(7 - j), "q4 hi %d = %g", j, out[j + 16]);
    }
}

int main(void) {
    sd_test_run("gguf_handmade_valid", test_handmade_valid);
    sd_test_run("gguf_alignment_key", test_alignment_key);
    sd_test_run("gguf_every_truncation", test_every_truncation);
    sd_test_run("gguf_malformed", test_malformed);
    sd_test_run("gguf_random_corruption", test_random_corruption);
    sd_test_run("gguf_dequant_blocks", test_dequant_blocks);
    sd_test_run("gguf_python_fixture", test_python_fixture);
    return sd_test_finish();
}
