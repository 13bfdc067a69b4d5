/* The public API's version-1 additions (include/sdumc.h): version macros, options structs with
 * their size (defaults, older and newer callers, bad values), loading a mapped file, a copy or a
 * file held in memory (same results bit for bit), the info struct's size rule, context options,
 * and the public .npy reader (float16/32/64, errors naming the file). A small random model made
 * here (hidden 16). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"
#include "model/model.h"
#include "sdumc.h"

static char model_path[600];

static int setup(void) {
    snprintf(model_path, sizeof model_path, "%s/m.safetensors", sd_test_tmpdir());
    sd_model_config c = sd_model_default_config(12, 20, 8);
    c.hidden = 16;
    c.mia = 1;
    c.seed = 21;
    sd_model *m = NULL;
    sd_error err;
    int bad = sd_model_create(&c, &m, &err) || sd_model_save(m, model_path, &err);
    if (bad) fprintf(stderr, "setup: %s\n", err.msg);
    sd_model_free(m);
    return bad;
}

/* A fixed utterance of the model's dims. */
static float ua[6 * 12], ut[4 * 20], uv[5 * 8];
static sdumc_utterance utterance(void) {
    for (size_t i = 0; i < sizeof ua / sizeof ua[0]; i++) ua[i] = (float)((i * 7) % 11) * 0.3f - 1.0f;
    for (size_t i = 0; i < sizeof ut / sizeof ut[0]; i++) ut[i] = (float)((i * 5) % 13) * 0.2f - 1.1f;
    for (size_t i = 0; i < sizeof uv / sizeof uv[0]; i++) uv[i] = (float)((i * 3) % 7) * 0.4f - 1.2f;
    sdumc_utterance u = {{ua, 6, 12}, {ut, 4, 20}, {uv, 5, 8}};
    return u;
}

static float score_of(const sdumc_model *m, sdumc_context *ctx, sdumc_flow flow) {
    sdumc_utterance u = utterance();
    float s = -999.0f;
    sdumc_error err;
    if (sdumc_predict(m, ctx, &u, flow, &s, &err)) sd_test_fail(__FILE__, __LINE__, "predict: %s", err.message);
    return s;
}

static int has(const sdumc_error *e, sdumc_status code, const char *needle) {
    return e->code == code && strstr(e->message, needle) != NULL;
}

static void test_version(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", SDUMC_VERSION_MAJOR, SDUMC_VERSION_MINOR, SDUMC_VERSION_PATCH);
    EXPECT(!strcmp(sdumc_version(), want), "sdumc_version() '%s', header macros '%s'", sdumc_version(), want);
}

static void test_default_params(void) {
    sdumc_model_params p = sdumc_model_default_params();
    EXPECT(p.size == sizeof p && p.n_threads >= 1 && p.n_threads <= 4 && p.mia == SDUMC_MIA_FROM_FILE &&
               p.use_mmap == 1,
           "model defaults: size %zu, n_threads %d, mia %d, use_mmap %d", p.size, p.n_threads, (int)p.mia, p.use_mmap);
    sdumc_context_params c = sdumc_context_default_params();
    EXPECT(c.size == sizeof c && c.n_threads == 0, "context defaults: size %zu, n_threads %d", c.size, c.n_threads);
}

/* A file mapped in place, a read copy and the bytes in memory: the same model. */
static void test_load_mapped_copy_memory(void) {
    sdumc_error err;
    sdumc_model *mapped = NULL, *copy = NULL, *mem = NULL;
    sdumc_model_params p = sdumc_model_default_params();
    EXPECT(!sdumc_model_load_with_params(model_path, &p, &mapped, &err), "mapped: %s", err.message);
    p.use_mmap = 0;
    EXPECT(!sdumc_model_load_with_params(model_path, &p, &copy, &err), "copy: %s", err.message);
    size_t n = 0;
    void *bytes = sd_test_read_file(model_path, &n);
    EXPECT(bytes && !sdumc_model_load_from_memory(bytes, n, NULL, &mem, &err), "memory: %s", err.message);
    if (bytes) memset(bytes, 0, n); /* the model keeps no pointer into the caller's buffer */
    free(bytes);
    if (!mapped || !copy || !mem) goto done;
    sdumc_info a = {.size = sizeof a}, b = {.size = sizeof b}, c = {.size = sizeof c};
    EXPECT(!sdumc_model_info(mapped, &a, &err) && !sdumc_model_info(copy, &b, &err) && !sdumc_model_info(mem, &c, &err),
           "info: %s", err.message);
    EXPECT(a.mapped == 1 && b.mapped == 0 && c.mapped == 0, "mapped flags %d %d %d", a.mapped, b.mapped, c.mapped);
    EXPECT(a.mia == 1 && c.mia == 1 && c.dim_text == 20 && a.mia_source == SDUMC_MIA_SOURCE_METADATA, "memory info");
    for (int flow = 0; flow < 2; flow++) {
        const float s1 = score_of(mapped, NULL, (sdumc_flow)flow), s2 = score_of(copy, NULL, (sdumc_flow)flow),
                    s3 = score_of(mem, NULL, (sdumc_flow)flow);
        EXPECT(sd_test_same_float(s1, s2) && sd_test_same_float(s1, s3), "flow %d: mapped %.9g, copy %.9g, memory %.9g",
               flow, (double)s1, (double)s2, (double)s3);
    }
    /* A truncated model in memory: named as such. */
    bytes = sd_test_read_file(model_path, &n);
    sdumc_model *bad = (sdumc_model *)&err;
    EXPECT(sdumc_model_load_from_memory(bytes, n / 2, NULL, &bad, &err) == SDUMC_E_FORMAT && bad == NULL &&
               has(&err, SDUMC_E_FORMAT, "model in memory"),
           "truncated memory model: %d '%s'", (int)err.code, err.message);
    free(bytes);
    EXPECT(sdumc_model_load_from_memory(NULL, 10, NULL, &bad, &err) == SDUMC_E_ARG && has(&err, SDUMC_E_ARG, "data is NULL"),
           "NULL data: '%s'", err.message);
done:
    sdumc_model_free(mapped);
    sdumc_model_free(copy);
    sdumc_model_free(mem);
}

/* The size rule: an older caller's shorter struct gets defaults for the rest; a newer (larger)
 * one, a zero size and bad values are refused, naming the field. */
static void test_params_size_and_values(void) {
    sdumc_error err;
    sdumc_model *m = NULL;
    sdumc_model_params p = sdumc_model_default_params();
    p.size = offsetof(sdumc_model_params, mia); /* knows size and n_threads only */
    p.n_threads = 1;
    p.mia = (sdumc_mia)77; /* beyond the caller's size: ignored */
    EXPECT(!sdumc_model_load_with_params(model_path, &p, &m, &err), "older caller: %s", err.message);
    sdumc_info info = {.size = sizeof info};
    if (m && !sdumc_model_info(m, &info, &err))
        EXPECT(info.n_threads == 1 && info.mia == 1 && info.mapped == 1, "older caller: n_threads %d mia %d mapped %d",
               info.n_threads, info.mia, info.mapped);
    sdumc_model_free(m);
    struct {
        const char *what;
        size_t size;
        int n_threads, mia, use_mmap;
        const char *needle;
    } bad[] = {
        {"size 0", 0, 1, 0, 1, "params->size is 0"},
        {"newer header", sizeof p + 8, 1, 0, 1, "newer sdumc.h"},
        {"0 threads", sizeof p, 0, 0, 1, "params->n_threads is 0"},
        {"too many threads", sizeof p, 100000, 0, 1, "n_threads is 100000"},
        {"bad mia", sizeof p, 1, 3, 1, "params->mia is 3"},
        {"bad mmap", sizeof p, 1, 0, 2, "params->use_mmap is 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct {
            sdumc_model_params p;
            char tail[8];
        } big;
        memset(&big, 0, sizeof big);
        big.p = sdumc_model_default_params();
        big.p.size = bad[i].size;
        big.p.n_threads = bad[i].n_threads;
        big.p.mia = (sdumc_mia)bad[i].mia;
        big.p.use_mmap = bad[i].use_mmap;
        m = (sdumc_model *)&err;
        EXPECT(sdumc_model_load_with_params(model_path, &big.p, &m, &err) == SDUMC_E_ARG && m == NULL &&
                   has(&err, SDUMC_E_ARG, bad[i].needle),
               "%s: status %d, '%s'", bad[i].what, (int)err.code, err.message);
    }
    /* Context options. */
    sdumc_context *ctx = NULL;
    sdumc_context_params cp = sdumc_context_default_params();
    cp.n_threads = -1;
    EXPECT(sdumc_context_new_with_params(&cp, &ctx, &err) == SDUMC_E_ARG && ctx == NULL &&
               has(&err, SDUMC_E_ARG, "params->n_threads is -1"),
           "context -1 threads: '%s'", err.message);
    cp.size = 3;
    EXPECT(sdumc_context_new_with_params(&cp, &ctx, &err) == SDUMC_E_ARG && has(&err, SDUMC_E_ARG, "params->size is 3"),
           "context size 3: '%s'", err.message);
}

/* sdumc_info: the caller's size bounds what is written. */
static void test_info_size(void) {
    sdumc_error err;
    sdumc_model *m = NULL;
    EXPECT(!sdumc_model_load(model_path, &m, &err), "load: %s", err.message);
    if (!m) return;
    struct {
        sdumc_info info;
        unsigned char guard[16];
    } x;
    memset(&x, 0xA5, sizeof x);
    x.info.size = offsetof(sdumc_info, hidden); /* an older caller: size and the three dims */
    EXPECT(!sdumc_model_info(m, &x.info, &err), "short info: %s", err.message);
    EXPECT(x.info.dim_audio == 12 && x.info.dim_text == 20 && x.info.dim_video == 8, "dims not written");
    const unsigned char *after = (const unsigned char *)&x.info + offsetof(sdumc_info, hidden);
    int untouched = 1;
    for (size_t i = offsetof(sdumc_info, hidden); i < sizeof x; i++, after++) untouched &= *after == 0xA5;
    EXPECT(untouched, "bytes past info.size were written");
    sdumc_info info;
    memset(&info, 0, sizeof info);
    EXPECT(sdumc_model_info(m, &info, &err) == SDUMC_E_ARG && has(&err, SDUMC_E_ARG, "info->size"),
           "size 0: '%s'", err.message);
    info.size = sizeof info + 1;
    EXPECT(sdumc_model_info(m, &info, &err) == SDUMC_E_ARG, "size too large accepted");
    sdumc_model_free(m);
}

/* Thread counts from the model and the context: the same bits whatever they are. */
static void test_thread_counts_same_results(void) {
    sdumc_error err;
    float ref[2] = {0, 0};
    for (int threads = 1; threads <= 3; threads++) {
        sdumc_model_params p = sdumc_model_default_params();
        p.n_threads = threads;
        sdumc_model *m = NULL;
        EXPECT(!sdumc_model_load_with_params(model_path, &p, &m, &err), "load: %s", err.message);
        if (!m) return;
        sdumc_context_params cp = sdumc_context_default_params();
        cp.n_threads = 4 - threads;
        sdumc_context *ctx = NULL;
        EXPECT(!sdumc_context_new_with_params(&cp, &ctx, &err), "context: %s", err.message);
        for (int flow = 0; flow < 2; flow++) {
            const float a = score_of(m, NULL, (sdumc_flow)flow), b = score_of(m, ctx, (sdumc_flow)flow);
            if (threads == 1) ref[flow] = a;
            EXPECT(sd_test_same_float(a, ref[flow]) && sd_test_same_float(b, ref[flow]),
                   "model threads %d, context threads %d, flow %d: %.9g %.9g vs %.9g", threads, 4 - threads, flow,
                   (double)a, (double)b, (double)ref[flow]);
        }
        sdumc_context_free(ctx);
        sdumc_model_free(m);
    }
}

/* The public .npy reader: float16, float32, float64 and (D,) shapes; errors name the file. */
static void test_features_load_npy(void) {
    const char *tmp = sd_test_tmpdir();
    char p16[700], p32[700], p64[700], p1d[700], pbad[700], pmissing[700];
    snprintf(p16, sizeof p16, "%s/f16.npy", tmp);
    snprintf(p32, sizeof p32, "%s/f32.npy", tmp);
    snprintf(p64, sizeof p64, "%s/f64.npy", tmp);
    snprintf(p1d, sizeof p1d, "%s/one.npy", tmp);
    snprintf(pbad, sizeof pbad, "%s/ints.npy", tmp);
    snprintf(pmissing, sizeof pmissing, "%s/absent.npy", tmp);
    float x[3 * 4];
    for (int i = 0; i < 12; i++) x[i] = (float)i * 0.25f - 1.0f; /* exact in float16 */
    sd_error e;
    EXPECT(!sd_npy_write(p16, x, 2, 3, 4, SD_DTYPE_F16, &e) && !sd_npy_write(p32, x, 2, 3, 4, SD_DTYPE_F32, &e) &&
               !sd_npy_write(p1d, x, 1, 1, 4, SD_DTYPE_F32, &e),
           "write: %s", e.msg);
    /* float64 and int32 by hand: a version 1.0 header padded to 128 bytes. */
    char hdr[128];
    for (int kind = 0; kind < 2; kind++) {
        memset(hdr, ' ', sizeof hdr);
        memcpy(hdr, "\x93NUMPY\x01\x00\x76\x00", 10); /* header length 118 */
        const char *dict = kind ? "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }"
                                : "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
        memcpy(hdr + 10, dict, strlen(dict));
        hdr[127] = '\n';
        unsigned char file[128 + 12 * 8];
        memcpy(file, hdr, 128);
        for (int i = 0; i < 12; i++) {
            double d = (double)x[i];
            int32_t k = i;
            if (kind)
                memcpy(file + 128 + 4 * i, &k, 4);
            else
                memcpy(file + 128 + 8 * i, &d, 8);
        }
        sd_test_write_file(kind ? pbad : p64, file, 128 + 12 * (kind ? 4 : 8));
    }
    const char *paths[3] = {p16, p32, p64};
    for (int k = 0; k < 3; k++) {
        sdumc_features f;
        sdumc_error err;
        EXPECT(!sdumc_features_load_npy(paths[k], &f, &err), "%s: %s", paths[k], err.message);
        EXPECT(f.frames == 3 && f.dim == 4 && f.data && !memcmp(f.data, x, sizeof x), "%s: [%lld, %lld] or values differ",
               paths[k], (long long)f.frames, (long long)f.dim);
        sdumc_features_free(&f);
        EXPECT(f.data == NULL && f.frames == 0, "features_free does not zero");
    }
    sdumc_features f;
    sdumc_error err;
    EXPECT(!sdumc_features_load_npy(p1d, &f, &err) && f.frames == 1 && f.dim == 4, "(D,) shape: %s", err.message);
    sdumc_features_free(&f);
    EXPECT(sdumc_features_load_npy(pmissing, &f, &err) == SDUMC_E_IO && strstr(err.message, "absent.npy") && !f.data,
           "missing file: %d '%s'", (int)err.code, err.message);
    EXPECT(sdumc_features_load_npy(pbad, &f, &err) != SDUMC_OK && strstr(err.message, "ints.npy") &&
               strstr(err.message, "<i4") && !f.data,
           "int32 file: %d '%s'", (int)err.code, err.message);
    EXPECT(sdumc_features_load_npy(p32, NULL, &err) == SDUMC_E_ARG, "NULL out");
    sdumc_features_free(NULL);
}

int main(void) {
    if (setup()) {
        printf("FAIL api_v1_setup\n");
        return 1;
    }
    sd_test_run("api_v1_version_macros", test_version);
    sd_test_run("api_v1_default_params", test_default_params);
    sd_test_run("api_v1_load_mapped_copy_memory", test_load_mapped_copy_memory);
    sd_test_run("api_v1_params_size_and_values", test_params_size_and_values);
    sd_test_run("api_v1_info_size", test_info_size);
    sd_test_run("api_v1_thread_counts_same_results", test_thread_counts_same_results);
    sd_test_run("api_v1_features_load_npy", test_features_load_npy);
    return sd_test_finish();
}
