/* Numeric core: aligned allocation, the counter-based RNG, GEMM against the reference
 * kernel, the parameter table, thread control and error messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/array.h"
#include "core/gemm.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/threads.h"
#include "harness.h"

static void test_alloc_aligned(void) {
    for (size_t n = 1; n < 5000; n = n * 3 + 1) {
        void *p = sd_alloc(n);
        EXPECT(p != NULL, "alloc %zu failed", n);
        EXPECT(((uintptr_t)p % SD_ALIGN) == 0, "alloc %zu not %d-aligned", n, SD_ALIGN);
        sd_free(p);
    }
    float *z = sd_calloc(1000, sizeof(float));
    for (int i = 0; i < 1000; i++) EXPECT(z[i] == 0.0f, "calloc not zero at %d", i);
    sd_free(z);
    size_t out;
    EXPECT(!sd_mul_size(SIZE_MAX / 2, 3, &out), "overflow not detected");
    EXPECT(sd_calloc(SIZE_MAX / 2, 3) == NULL, "overflowing calloc returned memory");
}

/* Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10). */
static void test_philox_known_answers(void) {
    uint32_t out[4];
    uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    sd_philox4x32(c0, k0, out);
    EXPECT(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu &&
               out[3] == 0x9b00dbd8u,
           "philox(0,0) = %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    uint32_t k1[2] = {0xffffffffu, 0xffffffffu};
    sd_philox4x32(c1, k1, out);
    EXPECT(out[0] == 0x408f276du && out[1] == 0x41c83b0eu && out[2] == 0xa20bc7c6u &&
               out[3] == 0x6d5451fdu,
           "philox(ff..,ff..) = %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    uint32_t k2[2] = {0xa4093822u, 0x299f31d0u};
    sd_philox4x32(c2, k2, out);
    EXPECT(out[0] == 0xd16cfe09u && out[1] == 0x94fdccebu && out[2] == 0x5001e420u &&
               out[3] == 0x24126ea1u,
           "philox(pi) = %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
}

static void test_rng_reproducible_and_uniform(void) {
    sd_rng a = sd_rng_make(42, SD_STREAM_TEST), b = sd_rng_make(42, SD_STREAM_TEST);
    sd_rng c = sd_rng_make(43, SD_STREAM_TEST), d = sd_rng_make(42, SD_STREAM_TEST + 1);
    int same_c = 0, same_d = 0;
    double sum = 0, sum2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float x = sd_rng_uniform(&a);
        EXPECT(x == sd_rng_uniform(&b), "same seed differs at %d", i);
        same_c += x == sd_rng_uniform(&c);
        same_d += x == sd_rng_uniform(&d);
        EXPECT(x >= 0.0f && x < 1.0f, "uniform out of range: %g", x);
        sum += x;
        sum2 += (double)x * x;
    }
    EXPECT(same_c < 100 && same_d < 100, "seeds/streams not independent (%d, %d)", same_c, same_d);
    double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT(fabs(mean - 0.5) < 0.005, "uniform mean %g", mean);
    EXPECT(fabs(var - 1.0 / 12) < 0.003, "uniform variance %g", var);
    /* The stateless draw at index i equals the i-th sequential draw. */
    sd_rng e = sd_rng_make(7, 9);
    for (uint64_t i = 0; i < 100; i++) {
        uint32_t s = sd_rng_u32(&e);
        EXPECT(s == sd_rng_u32_at(7, 9, i), "stateless draw differs at %llu", (unsigned long long)i);
    }
    sd_rng g = sd_rng_make(1, 2);
    double m = 0, m2 = 0;
    for (int i = 0; i < n; i++) {
        double x = sd_rng_normal(&g);
        m += x;
        m2 += x * x;
    }
    m /= n;
    EXPECT(fabs(m) < 0.01 && fabs(m2 / n - 1.0) < 0.02, "normal mean %g var %g", m, m2 / n);
}

static void test_rng_shuffle_is_permutation(void) {
    int64_t idx[1000];
    for (int i = 0; i < 1000; i++) idx[i] = i;
    sd_rng r = sd_rng_make(5, SD_STREAM_SHUFFLE);
    sd_rng_shuffle(&r, idx, 1000);
    int seen[1000] = {0}, fixed = 0;
    for (int i = 0; i < 1000; i++) {
        EXPECT(idx[i] >= 0 && idx[i] < 1000 && !seen[idx[i]], "not a permutation at %d", i);
        if (idx[i] >= 0 && idx[i] < 1000) seen[idx[i]] = 1;
        fixed += idx[i] == i;
    }
    EXPECT(fixed < 20, "shuffle left %d elements in place", fixed);
    for (int i = 0; i < 10000; i++) EXPECT(sd_rng_below(&r, 7) < 7, "below out of range");
}

static void test_gemm_matches_reference(void) {
    sd_rng r = sd_rng_make(3, SD_STREAM_TEST);
    const size_t M = 37, N = 29, K = 53;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            size_t lda = ta ? M : K, ldb = tb ? K : N;
            float *A = malloc(M * K * sizeof *A), *B = malloc(K * N * sizeof *B);
            float *C1 = malloc(M * N * sizeof *C1), *C2 = malloc(M * N * sizeof *C2);
            double *dA = malloc(M * K * sizeof *dA), *dB = malloc(K * N * sizeof *dB);
            double *D1 = malloc(M * N * sizeof *D1), *D2 = malloc(M * N * sizeof *D2);
            for (size_t i = 0; i < M * K; i++) dA[i] = A[i] = sd_rng_uniform(&r) - 0.5f;
            for (size_t i = 0; i < K * N; i++) dB[i] = B[i] = sd_rng_uniform(&r) - 0.5f;
            for (size_t i = 0; i < M * N; i++) D1[i] = D2[i] = C1[i] = C2[i] = sd_rng_uniform(&r);
            sd_sgemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, C1, N);
            sd_sgemm_ref(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, C2, N);
            sd_dgemm(ta, tb, M, N, K, 0.7, dA, lda, dB, ldb, 0.3, D1, N);
            sd_dgemm_ref(ta, tb, M, N, K, 0.7, dA, lda, dB, ldb, 0.3, D2, N);
            size_t w = 0;
            double es = sd_max_rel_err_f(C1, C2, M * N, 0.1, &w); /* |C| ~ 0.5 */
            double ed = sd_max_rel_err_d(D1, D2, M * N, 1e-3, &w);
            EXPECT(es < 1e-5, "sgemm ta=%d tb=%d rel err %g", ta, tb, es);
            EXPECT(ed < 1e-12, "dgemm ta=%d tb=%d rel err %g", ta, tb, ed);
            free(A); free(B); free(C1); free(C2); free(dA); free(dB); free(D1); free(D2);
        }
}

static void test_param_table(void) {
    sd_param_table t;
    sd_params_init(&t);
    int64_t s1[2] = {256, 1024}, s2[1] = {256};
    EXPECT(sd_params_add(&t, "frame_dim_reshape_0.weight", 2, s1) == 0, "add 0");
    EXPECT(sd_params_add(&t, "frame_dim_reshape_0.bias", 1, s2) == 1, "add 1");
    EXPECT(t.total == 256 * 1024 + 256, "total %zu", t.total);
    EXPECT(t.specs[1].offset == 256 * 1024, "offset %zu", t.specs[1].offset);
    EXPECT(sd_params_find(&t, "frame_dim_reshape_0.bias") == 1, "find");
    EXPECT(sd_params_find(&t, "nope") == -1, "find missing");
    int64_t bad[2] = {-1, 3};
    EXPECT(sd_params_add(&t, "bad", 2, bad) == -1, "negative dim accepted");
    char buf[64];
    EXPECT(!strcmp(sd_shape_str(buf, sizeof buf, 2, s1), "[256, 1024]"), "shape str %s", buf);
    float *p = sd_params_alloc_buffer(&t);
    EXPECT(p && p[t.total - 1] == 0.0f, "param buffer");
    sd_free(p);
    sd_params_release(&t);
}

static void test_threads_and_errors(void) {
    EXPECT(sd_threads_set(1) == 1 && sd_threads_get() == 1, "threads 1");
    EXPECT(sd_threads_set(2) == 2, "threads 2");
    EXPECT(sd_threads_set(0) >= 1, "threads auto");
    sd_error e;
    sd_error_clear(&e);
    EXPECT(sd_fail(&e, SD_E_FORMAT, "bad magic %d", 7) == SD_E_FORMAT, "fail code");
    sd_error_prefix(&e, "%s", "x.npy");
    EXPECT(!strcmp(e.msg, "x.npy: bad magic 7"), "message '%s'", e.msg);
    EXPECT(sd_fail(NULL, SD_E_IO, "ignored") == SD_E_IO, "NULL err");
}

/* The growable-array helper: doubling from `first`, exact capacities, overflow refused with the
 * array untouched. */
static void test_array_grow(void) {
    EXPECT(sd_array_next_cap(0, 1, 16) == 16, "first capacity");
    EXPECT(sd_array_next_cap(16, 16, 16) == 16, "no growth when it fits");
    EXPECT(sd_array_next_cap(16, 17, 16) == 32, "doubling");
    EXPECT(sd_array_next_cap(4, 100, 16) == 128, "doubling until it fits");
    EXPECT(sd_array_next_cap(8, SIZE_MAX, 16) == 0, "overflow");
    EXPECT(sd_array_resize(NULL, SIZE_MAX / 2, 4) == NULL, "n * elem overflow");
    int *v = NULL;
    size_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        int *g = sd_array_grow(v, &cap, (size_t)i + 1, sizeof *v, 4);
        EXPECT(g != NULL, "grow to %d", i + 1);
        if (!g) break;
        v = g;
        v[i] = i;
    }
    EXPECT(cap == 1024, "capacity %zu after 1000 appends from 4", cap);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= v[i] == i;
    EXPECT(same, "contents kept across growth");
    size_t cap_before = cap;
    EXPECT(sd_array_grow(v, &cap, SIZE_MAX, sizeof *v, 4) == NULL && cap == cap_before,
           "overflowing growth refused, capacity untouched");
    free(v);
}

int main(void) {
    sd_test_run("core.alloc_aligned", test_alloc_aligned);
    sd_test_run("core.array_grow", test_array_grow);
    sd_test_run("core.philox_known_answers", test_philox_known_answers);
    sd_test_run("core.rng_reproducible_and_uniform", test_rng_reproducible_and_uniform);
    sd_test_run("core.rng_shuffle_is_permutation", test_rng_shuffle_is_permutation);
    sd_test_run("core.gemm_matches_reference", test_gemm_matches_reference);
    sd_test_run("core.param_table", test_param_table);
    sd_test_run("core.threads_and_errors", test_threads_and_errors);
    return sd_test_finish();
}
