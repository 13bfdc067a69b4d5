/* The public API's threads (src/api/run.c, core/pool.h): every call gives the same bits whatever
 * n_threads the model or context has (1 to 4), with or without a context, for utterances that run
 * alone, spread their branches, split their products, or come in batches of several groups; and a
 * call adds no threads but its context's pool (n_threads - 1 workers): no OpenMP team, no more
 * than it was given. A random model (hidden 64) made here. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "harness.h"
#include "model/model.h"
#include "sdumc.h"

static char path_masked[600], path_unmasked[600];
static const int dims[3] = {64, 96, 48};

static int save(const char *path, int mask) {
    sd_model_config c = sd_model_default_config(dims[0], dims[1], dims[2]);
    c.hidden = 64;
    c.mia = 1;
    c.mask = mask;
    c.seed = 31;
    sd_model *m = NULL;
    sd_error e;
    int bad = sd_model_create(&c, &m, &e) || sd_model_save(m, path, &e);
    if (bad) fprintf(stderr, "setup: %s\n", e.msg);
    sd_model_free(m);
    return bad;
}

/* n utterances whose frame counts cycle through frames[k] (k = utterance % count). */
typedef struct {
    sdumc_utterance *u;
    size_t n;
} set;

static set make_set(size_t n, const int (*frames)[3], size_t count, uint64_t seed) {
    set s = {calloc(n, sizeof(sdumc_utterance)), n};
    sd_rng rng = sd_rng_make(seed, 0);
    for (size_t i = 0; s.u && i < n; i++)
        for (int k = 0; k < 3; k++) {
            const int T = frames[i % count][k];
            float *x = malloc(sizeof(float) * (size_t)T * (size_t)dims[k]);
            for (size_t j = 0; x && j < (size_t)T * (size_t)dims[k]; j++) x[j] = (float)sd_rng_normal(&rng);
            sdumc_features f = {x, T, dims[k]};
            if (k == 0) s.u[i].audio = f;
            if (k == 1) s.u[i].text = f;
            if (k == 2) s.u[i].video = f;
        }
    return s;
}

static void free_set(set *s) {
    for (size_t i = 0; s->u && i < s->n; i++) {
        free((void *)s->u[i].audio.data);
        free((void *)s->u[i].text.data);
        free((void *)s->u[i].video.data);
    }
    free(s->u);
}

/* Scores and embeddings of a set (a batch call when n > 1) on n_threads, with a context or not. */
static int run(const char *path, const set *s, int threads, int with_ctx, float *scores, float *emb) {
    sdumc_model_params p = sdumc_model_default_params();
    p.n_threads = threads;
    sdumc_model *m = NULL;
    sdumc_context *ctx = NULL;
    sdumc_error err;
    int bad = sdumc_model_load_with_params(path, &p, &m, &err) || (with_ctx && sdumc_context_new(&ctx, &err));
    for (int flow = 0; !bad && flow < 2; flow++) {
        float *sc = scores + (size_t)flow * s->n, *z = emb + (size_t)flow * s->n * 32;
        if (s->n == 1)
            bad = sdumc_embed(m, ctx, s->u, (sdumc_flow)flow, z, 32, sc, &err);
        else
            bad = sdumc_predict_batch(m, ctx, s->u, s->n, (sdumc_flow)flow, sc, z, &err);
    }
    if (bad) sd_test_fail(__FILE__, __LINE__, "threads %d: %s", threads, err.message);
    sdumc_context_free(ctx);
    sdumc_model_free(m);
    return bad;
}

static void check_invariant(const char *what, const char *path, set s) {
    const size_t n = s.n;
    float *ref_s = malloc(sizeof(float) * 2 * n), *ref_z = malloc(sizeof(float) * 2 * n * 32);
    float *got_s = malloc(sizeof(float) * 2 * n), *got_z = malloc(sizeof(float) * 2 * n * 32);
    if (s.u && ref_s && ref_z && got_s && got_z && !run(path, &s, 1, 1, ref_s, ref_z)) {
        int differ = 0, runs = 0;
        for (int threads = 1; threads <= 4; threads++)
            for (int with_ctx = 0; with_ctx < 2; with_ctx++) {
                if (run(path, &s, threads, with_ctx, got_s, got_z)) continue;
                runs++;
                const int d = memcmp(got_s, ref_s, sizeof(float) * 2 * n) || memcmp(got_z, ref_z, sizeof(float) * 2 * n * 32);
                if (d) printf("  %s: %d threads, %s context: results differ from 1 thread\n", what, threads,
                              with_ctx ? "own" : "no");
                differ += d;
            }
        EXPECT(differ == 0 && runs == 8, "%s: %d of %d runs differ from one thread", what, differ, runs);
        printf("  %s: %zu utterance(s), both flows, scores and embeddings: 1-4 threads x context or not, bit for bit\n",
               what, n);
    } else {
        EXPECT(0, "%s: setup failed", what);
    }
    free(ref_s);
    free(ref_z);
    free(got_s);
    free(got_z);
    free_set(&s);
}

static void test_results_do_not_depend_on_threads(void) {
    static const int tiny[1][3] = {{5, 3, 4}};
    static const int medium[1][3] = {{800, 200, 300}}; /* branches spread (rows <= 1024, work above the cut) */
    static const int longer[1][3] = {{3000, 100, 600}}; /* products split by shape (rows > 1024) */
    static const int varied[5][3] = {{5, 3, 4}, {60, 20, 30}, {17, 9, 2}, {40, 40, 40}, {1, 1, 1}};
    check_invariant("tiny utterance", path_masked, make_set(1, tiny, 1, 1));
    check_invariant("medium utterance", path_masked, make_set(1, medium, 1, 2));
    check_invariant("long utterance", path_masked, make_set(1, longer, 1, 3));
    check_invariant("batch of 40 (2 groups)", path_masked, make_set(40, varied, 5, 4));
    check_invariant("batch of 100 (4 groups)", path_masked, make_set(100, varied, 5, 5));
    check_invariant("unmasked batch of 7 (7 groups)", path_unmasked, make_set(7, varied, 5, 6));
}

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* A call adds exactly its context's workers, and a call without a context leaves none behind. */
static void test_threads_used(void) {
    static const int medium[1][3] = {{800, 200, 300}};
    set s = make_set(1, medium, 1, 7);
    sdumc_model_params p = sdumc_model_default_params();
    p.n_threads = 3;
    sdumc_model *m = NULL;
    sdumc_context *ctx = NULL;
    sdumc_error err;
    float score;
    if (sdumc_model_load_with_params(path_masked, &p, &m, &err) || sdumc_context_new(&ctx, &err)) {
        EXPECT(0, "%s", err.message);
        free_set(&s);
        return;
    }
    const int before = count_threads();
    EXPECT(!sdumc_predict(m, NULL, s.u, SDUMC_FLOW_TEXT_MISSING, &score, &err), "%s", err.message);
    const int after_no_ctx = count_threads();
    EXPECT(!sdumc_predict(m, ctx, s.u, SDUMC_FLOW_TEXT_MISSING, &score, &err), "%s", err.message);
    EXPECT(!sdumc_predict(m, ctx, s.u, SDUMC_FLOW_COMPLETE, &score, &err), "%s", err.message);
    const int after_ctx = count_threads();
    sdumc_context_free(ctx);
    const int after_free = count_threads();
    EXPECT(before > 0 && after_no_ctx == before && after_ctx == before + 2 && after_free == before,
           "threads: %d before, %d after a call without context, %d with a 3-thread context, %d after freeing it",
           before, after_no_ctx, after_ctx, after_free);
    printf("  threads of the process: %d before, %d after a call without a context, %d with a 3-thread context, %d "
           "after freeing it\n", before, after_no_ctx, after_ctx, after_free);
    sdumc_model_free(m);
    free_set(&s);
}

int main(void) {
    snprintf(path_masked, sizeof path_masked, "%s/masked.safetensors", sd_test_tmpdir());
    snprintf(path_unmasked, sizeof path_unmasked, "%s/unmasked.safetensors", sd_test_tmpdir());
    if (save(path_masked, 1) || save(path_unmasked, 0)) {
        printf("FAIL api_pool_setup\n");
        return 1;
    }
    sd_test_run("api_pool_threads_used", test_threads_used);
    sd_test_run("api_pool_results_do_not_depend_on_threads", test_results_do_not_depend_on_threads);
    return sd_test_finish();
}
