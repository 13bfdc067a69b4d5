/* The public API from many threads: 8 threads score the same utterances concurrently on one
 * shared model (each with its own context, of 1 or 3 threads, or none, or the batch call) and every
 * result equals, bit for bit, the single-threaded result. Every group spreads over its call's
 * threads here (the work cut is set to 0), so the library's own pool runs under the load too.
 * tests/scripts/test_api_tsan.sh builds this file with ThreadSanitizer (and without OpenMP) and
 * runs it. Self-contained: a random model and random features, no dataset. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/rng.h"
#include "harness.h"
#include "model/model.h"
#include "sdumc.h"

#define N_THREADS 8
#define N_UTT 12
#define ROUNDS 2
#define D_A 20
#define D_T 28
#define D_V 12

static sdumc_model *model;
static sdumc_utterance utt[N_UTT];
static float *feat[N_UTT][3];
static float want[2][N_UTT];      /* [flow][utterance] single-threaded scores */
static float want_z[2][N_UTT][8]; /* embeddings (C = 8) */
static float batch_want[N_UTT];   /* the batch call (padded groups), text-missing flow */
static sdumc_utterance four[4 * N_UTT]; /* utt four times over: a batch of 2 groups */
static float four_want[4 * N_UTT];

typedef struct {
    int id;
    int mismatches, failures;
    char msg[SDUMC_ERROR_MAX];
} worker;

static void *work(void *arg) {
    worker *w = arg;
    sdumc_context *ctx = NULL;
    sdumc_error err;
    sdumc_context_params cp = sdumc_context_default_params();
    cp.n_threads = w->id % 4 == 0 ? 3 : 1; /* contexts of their own thread counts */
    if (w->id % 2 == 0 && sdumc_context_new_with_params(&cp, &ctx, &err)) {
        w->failures++;
        return NULL;
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int j = 0; j < 2 * N_UTT; j++) {
            /* Each thread walks the (flow, utterance) pairs from its own starting point. */
            int k = (j + w->id * 5) % (2 * N_UTT), flow = k / N_UTT, i = k % N_UTT;
            float s = 0.0f, z[8];
            sdumc_status st = (w->id % 4 == 1)
                                  ? sdumc_embed(model, ctx, &utt[i], (sdumc_flow)flow, z, 8, &s, &err)
                                  : sdumc_predict(model, ctx, &utt[i], (sdumc_flow)flow, &s, &err);
            if (st) {
                w->failures++;
                memcpy(w->msg, err.message, sizeof w->msg);
                continue;
            }
            w->mismatches += s != want[flow][i];
            if (w->id % 4 == 1) w->mismatches += memcmp(z, want_z[flow][i], sizeof z) != 0;
        }
    sdumc_context_free(ctx);
    return NULL;
}

/* The batch call, and the same utterances four times over (2 groups, run at once on the model's
 * threads). */
static void *work_batch(void *arg) {
    worker *w = arg;
    float s[N_UTT + 4 * N_UTT];
    sdumc_error err;
    for (int round = 0; round < ROUNDS; round++) {
        if (sdumc_predict_batch(model, NULL, utt, N_UTT, SDUMC_FLOW_TEXT_MISSING, s, NULL, &err) ||
            sdumc_predict_batch(model, NULL, four, 4 * N_UTT, SDUMC_FLOW_TEXT_MISSING, s + N_UTT, NULL, &err)) {
            w->failures++;
            memcpy(w->msg, err.message, sizeof w->msg);
            continue;
        }
        w->mismatches += memcmp(s, batch_want, sizeof batch_want) != 0;
        w->mismatches += memcmp(s + N_UTT, four_want, sizeof four_want) != 0;
    }
    return NULL;
}

static int setup(void) {
    sd_model_config c = sd_model_default_config(D_A, D_T, D_V);
    c.hidden = 16;
    c.mia = 1;
    c.seed = 5;
    sd_model *m = NULL;
    sd_error e;
    char path[700];
    snprintf(path, sizeof path, "%s/threads.safetensors", sd_test_tmpdir());
    if (sd_model_create(&c, &m, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    /* No bias, larger weight: the score depends on the input everywhere (see test_api.c). */
    m->p.fc_out_v.b[0] = 0.0f;
    for (int k = 0; k < 8; k++) m->p.fc_out_v.W[k] *= 1000.0f;
    int bad = sd_model_save(m, path, &e) != SD_OK;
    sd_model_free(m);
    if (bad) return fprintf(stderr, "%s\n", e.msg), 1;
    sdumc_error err;
    sdumc_model_params p = sdumc_model_default_params();
    p.n_threads = 2;
    if (sdumc_model_load_with_params(path, &p, &model, &err)) return fprintf(stderr, "%s\n", err.message), 1;
    sd_api_group_par_min_work = 0.0; /* every group spreads over its threads (run.c) */
    sd_rng rng = sd_rng_make(9, 0);
    const int dims[3] = {D_A, D_T, D_V};
    for (int i = 0; i < N_UTT; i++) {
        for (int k = 0; k < 3; k++) {
            int T = 1 + (int)(sd_rng_uniform(&rng) * 30.0f);
            feat[i][k] = malloc(sizeof(float) * (size_t)T * (size_t)dims[k]);
            if (!feat[i][k]) return 1;
            for (int x = 0; x < T * dims[k]; x++) feat[i][k][x] = (float)sd_rng_normal(&rng);
            sdumc_features f = {feat[i][k], T, dims[k]};
            if (k == 0) utt[i].audio = f;
            if (k == 1) utt[i].text = f;
            if (k == 2) utt[i].video = f;
        }
        for (int flow = 0; flow < 2; flow++)
            if (sdumc_embed(model, NULL, &utt[i], (sdumc_flow)flow, want_z[flow][i], 8, &want[flow][i], &err))
                return fprintf(stderr, "%s\n", err.message), 1;
    }
    if (sdumc_predict_batch(model, NULL, utt, N_UTT, SDUMC_FLOW_TEXT_MISSING, batch_want, NULL, &err))
        return fprintf(stderr, "%s\n", err.message), 1;
    for (int i = 0; i < 4 * N_UTT; i++) four[i] = utt[i % N_UTT];
    if (sdumc_predict_batch(model, NULL, four, 4 * N_UTT, SDUMC_FLOW_TEXT_MISSING, four_want, NULL, &err))
        return fprintf(stderr, "%s\n", err.message), 1;
    return 0;
}

static void test_threads_match_single_thread(void) {
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    memset(w, 0, sizeof w);
    int started = 0;
    for (int t = 0; t < N_THREADS; t++) {
        w[t].id = t;
        void *(*fn)(void *) = t == N_THREADS - 1 ? work_batch : work;
        if (pthread_create(&th[t], NULL, fn, &w[t]) != 0) break;
        started++;
    }
    EXPECT(started == N_THREADS, "started %d threads", started);
    int mism = 0, fail = 0;
    for (int t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        mism += w[t].mismatches;
        fail += w[t].failures;
        EXPECT(w[t].failures == 0, "thread %d: %d failed calls (%s)", t, w[t].failures, w[t].msg);
    }
    printf("  %d threads x %d rounds x %d calls on one model: %d results differ from one thread, %d failed\n",
           started, ROUNDS, 2 * N_UTT, mism, fail);
    EXPECT(mism == 0, "%d results differ from the single-threaded ones", mism);
    /* The comparison is not trivial: scores differ between utterances and flows. */
    EXPECT(want[0][0] != want[0][1] && want[0][0] != want[1][0], "scores do not depend on the input");
}

int main(void) {
    if (setup()) {
        printf("FAIL api_threads_setup\n");
        return 1;
    }
    sd_test_run("api_threads_8_match_single_thread", test_threads_match_single_thread);
    sdumc_model_free(model);
    for (int i = 0; i < N_UTT; i++)
        for (int k = 0; k < 3; k++) free(feat[i][k]);
    return sd_test_finish();
}
