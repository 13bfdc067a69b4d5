/* The public C API (include/sdumc.h): predictions equal what `sdumc predict` computes
 * (sd_predict_split, masked model, padded batches) for both flows; the batch call equals single
 * calls; the embedding is the z the score is computed from; contexts are reusable; every bad call
 * gets a status and a message. Works on a small synthetic corpus and randomly initialised models
 * (hidden 32), made here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/dataset.h"
#include "data/synth.h"
#include "harness.h"
#include "io/npy.h"
#include "model/model.h"
#include "sdumc.h"
#include "train/train.h"

#define N_UTT 60

static char data_dir[600], model_mia[600], model_plain[600], model_nomask[600];
static int setup_ok;

static int save_model(const char *path, int mia, int mask, uint64_t seed) {
    sd_model_config c = sd_model_default_config(32, 48, 24);
    c.hidden = 32;
    c.mia = mia;
    c.mask = mask;
    c.seed = seed;
    snprintf(c.preset, sizeof c.preset, "test");
    sd_model *m = NULL;
    sd_error err;
    int bad = sd_model_create(&c, &m, &err);
    /* With a fresh initialisation z is small and the score is mostly fc_out_v's bias; without the
     * bias and with a larger weight the score is all input-dependent, so comparisons test the
     * whole network. */
    if (!bad) {
        m->p.fc_out_v.b[0] = 0.0f;
        for (int k = 0; k < c.hidden / 2; k++) m->p.fc_out_v.W[k] *= 1000.0f;
        bad = sd_model_save(m, path, &err);
    }
    if (bad) fprintf(stderr, "setup: %s\n", err.msg);
    sd_model_free(m);
    return bad;
}

static void setup(void) {
    const char *tmp = sd_test_tmpdir();
    snprintf(data_dir, sizeof data_dir, "%s/ds", tmp);
    snprintf(model_mia, sizeof model_mia, "%s/mia.safetensors", tmp);
    snprintf(model_plain, sizeof model_plain, "%s/plain.safetensors", tmp);
    snprintf(model_nomask, sizeof model_nomask, "%s/nomask.safetensors", tmp);
    sd_error err;
    if (sd_synth_write(data_dir, N_UTT, 3, SD_SYNTH_SMALL, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return;
    }
    if (save_model(model_mia, 1, 1, 11) || save_model(model_plain, 0, 1, 12) || save_model(model_nomask, 1, 0, 13))
        return;
    setup_ok = 1;
}

/* Every utterance of a split, read from its .npy files, with the text slot of a flow. */
typedef struct {
    int64_t n;
    sdumc_utterance *u;
    float *buf[3 * 200];
} utt_set;

static int load_split(sd_dataset *ds, sd_split split, int missing, utt_set *s) {
    memset(s, 0, sizeof *s);
    s->n = sd_dataset_size(ds, split);
    if (s->n > 200) return 1;
    s->u = calloc((size_t)s->n, sizeof *s->u);
    if (!s->u) return 1;
    const int mods[3] = {SD_MOD_AUDIO, missing ? SD_MOD_SIM : SD_MOD_TEXT, SD_MOD_VIDEO};
    for (int64_t i = 0; i < s->n; i++)
        for (int k = 0; k < 3; k++) {
            char path[1200];
            sd_error err;
            sd_npy_header h;
            float *x = NULL;
            if (sd_dataset_path(ds, split, i, mods[k], path, sizeof path, &err) || sd_npy_read(path, &h, &x, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            s->buf[3 * i + k] = x;
            sdumc_features f = {x, h.rows, h.cols};
            if (k == 0) s->u[i].audio = f;
            if (k == 1) s->u[i].text = f;
            if (k == 2) s->u[i].video = f;
        }
    return 0;
}

static void free_split(utt_set *s) {
    for (int64_t i = 0; i < 3 * s->n; i++) sd_free(s->buf[i]);
    free(s->u);
}

static sd_dataset *open_data(void) {
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = data_dir;
    o.require_sim = 1;
    sd_dataset *ds = NULL;
    sd_error err;
    if (sd_dataset_open(&o, &ds, &err)) fprintf(stderr, "%s\n", err.msg);
    return ds;
}

static void test_info(void) {
    sdumc_model *m = NULL;
    sdumc_error err;
    EXPECT(sdumc_model_load(model_mia, &m, &err) == SDUMC_OK, "load: %s", err.message);
    if (!m) return;
    EXPECT(err.code == SDUMC_OK && err.message[0] == '\0', "err not cleared on success");
    sdumc_info info = {.size = sizeof info};
    EXPECT(sdumc_model_info(m, &info, &err) == SDUMC_OK, "info: %s", err.message);
    EXPECT(info.dim_audio == 32 && info.dim_text == 48 && info.dim_video == 24, "dims %d %d %d", info.dim_audio,
           info.dim_text, info.dim_video);
    EXPECT(info.hidden == 32 && info.embedding_dim == 16, "hidden %d, embedding %d", info.hidden, info.embedding_dim);
    EXPECT(info.mia == 1 && info.mask == 1, "mia %d mask %d", info.mia, info.mask);
    EXPECT(!strcmp(info.preset, "test"), "preset '%s'", info.preset);
    sd_model *ref = NULL;
    sd_error e;
    EXPECT(sd_model_load(model_mia, &ref, &e) == SD_OK, "%s", e.msg);
    if (ref) {
        EXPECT(info.param_count == (int64_t)sd_model_param_count(ref, 1), "param count %lld",
               (long long)info.param_count);
        EXPECT(info.param_count_registered == (int64_t)sd_model_param_count(ref, 0), "registered %lld",
               (long long)info.param_count_registered);
        EXPECT(info.param_count < info.param_count_registered, "MIA on still leaves unused tensors");
        sd_model_free(ref);
    }
    printf("  model: dims %d/%d/%d, H %d, embedding %d, %lld parameters (%lld registered), version %s\n",
           info.dim_audio, info.dim_text, info.dim_video, info.hidden, info.embedding_dim,
           (long long)info.param_count, (long long)info.param_count_registered, sdumc_version());
    sdumc_model_free(m);
    EXPECT(sdumc_model_load(model_plain, &m, &err) == SDUMC_OK, "load: %s", err.message);
    if (m) {
        sdumc_model_info(m, &info, NULL);
        EXPECT(info.mia == 0, "plain model has MIA");
        sdumc_model_free(m);
    }
}

/* The API on each utterance vs sd_predict_split (what `sdumc predict` computes, batches of 16,
 * so most utterances are padded) over the train split, both flows. */
static void test_matches_batch_tool(void) {
    sd_dataset *ds = open_data();
    sd_model *ref = NULL;
    sdumc_model *m = NULL;
    sd_error e;
    sdumc_error err;
    EXPECT(ds != NULL, "dataset");
    EXPECT(sd_model_load(model_mia, &ref, &e) == SD_OK, "%s", e.msg);
    EXPECT(sdumc_model_load(model_mia, &m, &err) == SDUMC_OK, "%s", err.message);
    sdumc_context *ctx = NULL;
    EXPECT(sdumc_context_new(&ctx, &err) == SDUMC_OK, "%s", err.message);
    for (int missing = 0; ds && ref && m && missing < 2; missing++) {
        utt_set s;
        if (load_split(ds, SD_SPLIT_TRAIN, missing, &s)) {
            EXPECT(0, "reading the split");
            continue;
        }
        float *want = malloc(sizeof(float) * (size_t)s.n);
        EXPECT(sd_predict_split(ref, ds, SD_SPLIT_TRAIN, missing, NULL, s.n, 16, want, &e) == SD_OK, "%s", e.msg);
        double worst = 0.0, worst_abs = 0.0, scale = 0.0;
        for (int64_t i = 0; i < s.n; i++) scale = fmax(scale, fabs(want[i]));
        for (int64_t i = 0; i < s.n; i++) {
            float got = 0.0f;
            sdumc_flow flow = missing ? SDUMC_FLOW_TEXT_MISSING_MIA : SDUMC_FLOW_COMPLETE;
            sdumc_status st = sdumc_predict(m, (i & 1) ? ctx : NULL, &s.u[i], flow, &got, &err);
            EXPECT(st == SDUMC_OK, "utterance %lld: %s", (long long)i, err.message);
            /* relative error, floored at a tenth of the largest score */
            worst = fmax(worst, sd_rel_err(got, want[i], 0.1 * scale));
            worst_abs = fmax(worst_abs, fabs((double)got - want[i]));
        }
        printf("  %s flow: %lld utterances, max |pred| %.3g, max rel err vs sdumc predict %.3g (abs %.3g)\n",
               missing ? "text-missing" : "complete", (long long)s.n, scale, worst, worst_abs);
        EXPECT(scale > 0.5, "predictions are all near 0 (%.3g): the comparison would be weak", scale);
        EXPECT(worst < 2e-5, "%s flow: API differs from sd_predict_split by %.3g relative", missing ? "missing" : "complete",
               worst);
        free(want);
        free_split(&s);
    }
    sdumc_context_free(ctx);
    sdumc_model_free(m);
    sd_model_free(ref);
    sd_dataset_close(ds);
}

/* Batch results equal single calls (to float rounding for padded groups, bitwise for the
 * unmasked model, which is never padded); embeddings equal sdumc_embed; sdumc_embed's score is
 * sdumc_predict's; the score is fc_out_v(z). */
static void check_batch(const char *name, const char *path, int exact) {
    sd_dataset *ds = open_data();
    sdumc_model *m = NULL;
    sdumc_error err;
    EXPECT(sdumc_model_load(path, &m, &err) == SDUMC_OK, "%s", err.message);
    sd_model *ref = NULL;
    sd_error e;
    EXPECT(sd_model_load(path, &ref, &e) == SD_OK, "%s", e.msg);
    utt_set s;
    if (!ds || !m || !ref || load_split(ds, SD_SPLIT_TRAIN, 1, &s)) {
        EXPECT(0, "setup");
        sd_dataset_close(ds);
        sdumc_model_free(m);
        sd_model_free(ref);
        return;
    }
    const int C = 16;
    float *scores = malloc(sizeof(float) * (size_t)s.n), *emb = malloc(sizeof(float) * (size_t)s.n * C);
    EXPECT(sdumc_predict_batch(m, NULL, s.u, (size_t)s.n, SDUMC_FLOW_TEXT_MISSING, scores, emb, &err) == SDUMC_OK,
           "batch: %s", err.message);
    double worst = 0.0, worst_z = 0.0, worst_lin = 0.0, scale = 0.0;
    int bit_diff = 0;
    for (int64_t i = 0; i < s.n; i++) scale = fmax(scale, fabs(scores[i]));
    for (int64_t i = 0; i < s.n; i++) {
        float one = 0.0f, one_e = 0.0f, z[16];
        EXPECT(sdumc_predict(m, NULL, &s.u[i], SDUMC_FLOW_TEXT_MISSING, &one, &err) == SDUMC_OK, "%s", err.message);
        EXPECT(sdumc_embed(m, NULL, &s.u[i], SDUMC_FLOW_TEXT_MISSING, z, 16, &one_e, &err) == SDUMC_OK, "%s",
               err.message);
        EXPECT(one == one_e, "utterance %lld: sdumc_embed's score %.9g, sdumc_predict's %.9g", (long long)i,
               (double)one_e, (double)one);
        worst = fmax(worst, sd_rel_err(scores[i], one, 0.1 * scale));
        size_t where;
        double rz = sd_max_rel_err_f(emb + i * C, z, (size_t)C, 1e-2, &where);
        if (rz > worst_z) worst_z = rz;
        bit_diff += scores[i] != one || memcmp(emb + i * C, z, sizeof z) != 0;
        /* score = fc_out_v.weight . z + fc_out_v.bias, error relative to the sum of |terms| */
        double lin = ref->p.fc_out_v.b[0], mag = fabs(lin);
        for (int c = 0; c < C; c++) {
            lin += (double)ref->p.fc_out_v.W[c] * z[c];
            mag += fabs((double)ref->p.fc_out_v.W[c] * z[c]);
        }
        worst_lin = fmax(worst_lin, fabs(lin - one) / fmax(mag, 1e-30));
    }
    printf("  %s: batch vs single: max rel err %.3g (score), %.3g (embedding), %d of %lld not bitwise equal; "
           "score vs fc_out_v(z): %.3g\n",
           name, worst, worst_z, bit_diff, (long long)s.n, worst_lin);
    EXPECT(worst < 2e-5 && worst_z < 2e-5, "batch differs from single calls: %.3g / %.3g", worst, worst_z);
    if (exact) EXPECT(bit_diff == 0, "unmasked model: %d batch results differ from single calls", bit_diff);
    EXPECT(worst_lin < 1e-5, "the score is not fc_out_v(embedding): %.3g", worst_lin);
    free(scores);
    free(emb);
    free_split(&s);
    sd_model_free(ref);
    sdumc_model_free(m);
    sd_dataset_close(ds);
}

static void test_batch_masked(void) { check_batch("masked model", model_mia, 0); }
static void test_batch_unmasked(void) { check_batch("unmasked model", model_nomask, 1); }

/* One context reused across models, flows and sizes gives what a fresh workspace gives, bitwise. */
static void test_context_reuse(void) {
    sd_dataset *ds = open_data();
    sdumc_model *a = NULL, *b = NULL;
    sdumc_context *ctx = NULL;
    sdumc_error err;
    utt_set s;
    if (!ds || sdumc_model_load(model_mia, &a, &err) || sdumc_model_load(model_plain, &b, &err) ||
        sdumc_context_new(&ctx, &err) || load_split(ds, SD_SPLIT_VALID, 0, &s)) {
        EXPECT(0, "setup");
    } else {
        int diff = 0, calls = 0;
        for (int64_t i = 0; i < s.n; i++)
            for (int k = 0; k < 4; k++) {
                sdumc_model *m = (k & 1) ? b : a;
                sdumc_flow flow = (k & 2) ? SDUMC_FLOW_TEXT_MISSING : SDUMC_FLOW_COMPLETE;
                float x = 0, y = 1;
                EXPECT(!sdumc_predict(m, ctx, &s.u[i], flow, &x, &err), "%s", err.message);
                EXPECT(!sdumc_predict(m, NULL, &s.u[i], flow, &y, &err), "%s", err.message);
                diff += x != y;
                calls++;
            }
        /* The batch call through the same context, after single calls. */
        float *sc = malloc(sizeof(float) * (size_t)s.n), *sc2 = malloc(sizeof(float) * (size_t)s.n);
        EXPECT(!sdumc_predict_batch(a, ctx, s.u, (size_t)s.n, SDUMC_FLOW_COMPLETE, sc, NULL, &err), "%s", err.message);
        EXPECT(!sdumc_predict_batch(a, NULL, s.u, (size_t)s.n, SDUMC_FLOW_COMPLETE, sc2, NULL, &err), "%s",
               err.message);
        diff += memcmp(sc, sc2, sizeof(float) * (size_t)s.n) != 0;
        /* And the models disagree (the comparison above is not trivial). */
        float pa = 0, pb = 0;
        sdumc_predict(a, ctx, &s.u[0], SDUMC_FLOW_COMPLETE, &pa, NULL);
        sdumc_predict(b, ctx, &s.u[0], SDUMC_FLOW_COMPLETE, &pb, NULL);
        EXPECT(pa != pb, "two different models give the same score");
        EXPECT(diff == 0, "%d of %d context results differ from a fresh workspace", diff, calls + 1);
        free(sc);
        free(sc2);
        free_split(&s);
    }
    sdumc_context_free(ctx);
    sdumc_model_free(a);
    sdumc_model_free(b);
    sd_dataset_close(ds);
}

/* ---- bad calls ---- */

static int fails(sdumc_status got, sdumc_status want, const sdumc_error *err, const char *needle, const char *what) {
    int ok = got == want && err->code == want && err->message[0] && (!needle || strstr(err->message, needle));
    if (!ok)
        sd_test_fail(__FILE__, __LINE__, "%s: status %d (%s), want %d; message '%s' (expected to contain '%s')", what,
                     (int)got, sdumc_status_name(got), (int)want, err->message, needle ? needle : "");
    return ok;
}

static void test_bad_calls(void) {
    sdumc_model *m = NULL, *plain = NULL;
    sdumc_error err;
    EXPECT(!sdumc_model_load(model_mia, &m, &err) && !sdumc_model_load(model_plain, &plain, &err), "%s", err.message);
    if (!m || !plain) return;
    /* A valid utterance: audio [5,32], text [4,48], video [3,24]. */
    static float a[5 * 32], t[4 * 48], v[3 * 24], big[5 * 64];
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) t[i] = (float)(i % 5) * 0.1f;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] = (float)(i % 3) * 0.1f;
    const sdumc_utterance good = {{a, 5, 32}, {t, 4, 48}, {v, 3, 24}};
    float score = 12345.0f, z[16];
    EXPECT(!sdumc_predict(m, NULL, &good, SDUMC_FLOW_COMPLETE, &score, &err), "good call: %s", err.message);
    EXPECT(score != 12345.0f, "score not written");
    EXPECT(!sdumc_predict(m, NULL, &good, SDUMC_FLOW_COMPLETE, &score, NULL), "err may be NULL");

    sdumc_utterance u;
    float before = score;
    fails(sdumc_predict(NULL, NULL, &good, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_ARG, &err, "model is NULL", "NULL model");
    fails(sdumc_predict(m, NULL, NULL, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_ARG, &err, "utt is NULL", "NULL utt");
    fails(sdumc_predict(m, NULL, &good, SDUMC_FLOW_COMPLETE, NULL, &err), SDUMC_E_ARG, &err, "score is NULL", "NULL score");
    fails(sdumc_predict(m, NULL, &good, (sdumc_flow)7, &score, &err), SDUMC_E_ARG, &err, "unknown flow 7", "bad flow");
    fails(sdumc_predict(m, NULL, &good, (sdumc_flow)-1, &score, &err), SDUMC_E_ARG, &err, "unknown flow", "flow -1");
    u = good, u.audio.data = NULL;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_ARG, &err, "audio features: data is NULL", "NULL audio");
    u = good, u.text.data = NULL;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_TEXT_MISSING, &score, &err), SDUMC_E_ARG, &err, "simulated text features: data is NULL", "NULL sim");
    u = good, u.video.frames = 0;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_ARG, &err, "video features have 0 frames", "zero frames");
    u = good, u.text.frames = -3;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_ARG, &err, "-3 frames", "negative frames");
    u = good, u.audio.frames = (int64_t)1 << 40;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_ARG, &err, "at most", "huge frames");
    u = good, u.audio.data = big, u.audio.dim = 64;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_SHAPE, &err, "audio features have dim 64, the model expects 32", "audio dim");
    u = good, u.video.dim = 0;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_SHAPE, &err, "dim 0", "video dim 0");
    u = good, u.text.dim = 40;
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_SHAPE, &err, "text features have dim 40", "text dim");
    /* Text-missing calls the model file cannot do: simulated text of another dim; MIA required but absent. */
    fails(sdumc_predict(m, NULL, &u, SDUMC_FLOW_TEXT_MISSING, &score, &err), SDUMC_E_SHAPE, &err,
          "cannot run the text-missing flow", "sim dim");
    fails(sdumc_predict(plain, NULL, &good, SDUMC_FLOW_TEXT_MISSING_MIA, &score, &err), SDUMC_E_UNSUPPORTED, &err,
          "no Modality Imagination Autoencoder", "MIA required");
    EXPECT(!sdumc_predict(plain, NULL, &good, SDUMC_FLOW_TEXT_MISSING, &score, &err), "plain text-missing: %s", err.message);
    EXPECT(!sdumc_predict(m, NULL, &good, SDUMC_FLOW_TEXT_MISSING_MIA, &score, &err), "MIA flow: %s", err.message);
    /* NaN and Inf, located. */
    score = before;
    t[2 * 48 + 3] = NAN;
    fails(sdumc_predict(m, NULL, &good, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_NUMERIC, &err,
          "text features: NaN at frame 2, column 3", "NaN");
    t[2 * 48 + 3] = 0.0f;
    v[3 * 24 - 1] = -INFINITY;
    fails(sdumc_predict(m, NULL, &good, SDUMC_FLOW_COMPLETE, &score, &err), SDUMC_E_NUMERIC, &err,
          "video features: Inf at frame 2, column 23", "Inf");
    v[3 * 24 - 1] = 0.0f;
    EXPECT(score == before, "score written by a failed call");
    /* Embedding. */
    fails(sdumc_embed(m, NULL, &good, SDUMC_FLOW_COMPLETE, NULL, 16, NULL, &err), SDUMC_E_ARG, &err, "embedding is NULL", "NULL embedding");
    fails(sdumc_embed(m, NULL, &good, SDUMC_FLOW_COMPLETE, z, 15, NULL, &err), SDUMC_E_ARG, &err, "holds 15 floats", "short embedding");
    EXPECT(!sdumc_embed(m, NULL, &good, SDUMC_FLOW_COMPLETE, z, 16, NULL, &err), "embed, no score: %s", err.message);
    /* Batch: the bad utterance is named; n = 0 is fine. */
    sdumc_utterance three[3] = {good, good, good};
    three[2].audio.frames = 0;
    float sc[3];
    fails(sdumc_predict_batch(m, NULL, three, 3, SDUMC_FLOW_COMPLETE, sc, NULL, &err), SDUMC_E_ARG, &err,
          "utterance 2: audio features have 0 frames", "batch zero frames");
    fails(sdumc_predict_batch(m, NULL, NULL, 3, SDUMC_FLOW_COMPLETE, sc, NULL, &err), SDUMC_E_ARG, &err, "utts is NULL", "batch NULL");
    fails(sdumc_predict_batch(m, NULL, three, 2, SDUMC_FLOW_COMPLETE, NULL, NULL, &err), SDUMC_E_ARG, &err, "scores is NULL", "batch NULL scores");
    fails(sdumc_predict_batch(plain, NULL, three, 2, SDUMC_FLOW_TEXT_MISSING_MIA, sc, NULL, &err), SDUMC_E_UNSUPPORTED, &err, "MIA", "batch MIA");
    EXPECT(!sdumc_predict_batch(m, NULL, NULL, 0, SDUMC_FLOW_COMPLETE, NULL, NULL, &err), "empty batch: %s", err.message);
    EXPECT(!sdumc_predict_batch(m, NULL, three, 2, SDUMC_FLOW_COMPLETE, sc, NULL, &err), "batch: %s", err.message);
    /* Info, load, context. */
    sdumc_info info = {.size = sizeof info};
    fails(sdumc_model_info(NULL, &info, &err), SDUMC_E_ARG, &err, "model is NULL", "info NULL model");
    fails(sdumc_model_info(m, NULL, &err), SDUMC_E_ARG, &err, "info is NULL", "info NULL");
    sdumc_model *x = (sdumc_model *)&err;
    char path[700];
    snprintf(path, sizeof path, "%s/no-such.safetensors", sd_test_tmpdir());
    fails(sdumc_model_load(path, &x, &err), SDUMC_E_IO, &err, "no-such.safetensors", "missing file");
    EXPECT(x == NULL, "*out not NULLed on failure");
    snprintf(path, sizeof path, "%s/garbage.safetensors", sd_test_tmpdir());
    sd_test_write_file(path, "this is not a model file at all, but it is long enough", 55);
    fails(sdumc_model_load(path, &x, &err), SDUMC_E_FORMAT, &err, "garbage.safetensors", "garbage file");
    fails(sdumc_model_load(NULL, &x, &err), SDUMC_E_ARG, &err, "path is NULL", "NULL path");
    fails(sdumc_model_load(model_mia, NULL, &err), SDUMC_E_ARG, &err, "out is NULL", "NULL out");
    fails(sdumc_context_new(NULL, &err), SDUMC_E_ARG, &err, "out is NULL", "context NULL out");
    sdumc_model_free(NULL);
    sdumc_context_free(NULL);
    /* Status names. */
    EXPECT(!strcmp(sdumc_status_name(SDUMC_OK), "ok") && !strcmp(sdumc_status_name(SDUMC_E_NUMERIC), "non-finite value"),
           "status names");
    EXPECT(!strcmp(sdumc_status_name((sdumc_status)99), "unknown error"), "unknown status name");
    sdumc_model_free(m);
    sdumc_model_free(plain);
}

int main(void) {
    setup();
    if (!setup_ok) {
        printf("FAIL api_setup (could not write the corpus or the models)\n");
        return 1;
    }
    sd_test_run("api_info", test_info);
    sd_test_run("api_matches_sdumc_predict_both_flows", test_matches_batch_tool);
    sd_test_run("api_batch_equals_single_masked", test_batch_masked);
    sd_test_run("api_batch_equals_single_unmasked_bitwise", test_batch_unmasked);
    sd_test_run("api_context_reuse", test_context_reuse);
    sd_test_run("api_bad_calls", test_bad_calls);
    return sd_test_finish();
}
