/* WavLM against the float64 PyTorch reference (tests/reference/wavlm_ref.py, fixtures from
 * make_wavlm_fixtures.py): every hidden state (0..L) for several waveform lengths, including ones
 * that are not a multiple of the 320-sample hop and ones long enough for the logarithmic and
 * saturated relative-position buckets, on WavLM-Large-shaped (layer-norm conv, pre-LN, waveform
 * normalisation), Base+-shaped (group-norm conv with biases, post-LN, configuration inferred from
 * the shapes alone) and non-standard conv stacks; whole recordings through the chunking policy.
 * Error: max |C - ref| / max |ref| per tensor, bound 1e-4.
 * Also: results independent of the thread count; stopping at a layer; the loader's name
 * variants (prefixes, weight-norm spellings) and its errors; the chunk plan's invariants; the
 * bucket function against the float32 formula of the released code; GELU and exp accuracy.
 *
 * Usage: test_wavlm [FIXTURE_DIR CONFIG ...] (default: tests/fixtures/wavlm tiny_large tiny_base
 * odd_conv, plus the unit tests). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/threads.h"
#include "harness.h"
#include "io/safetensors.h"
#include "llm_fixture.h" /* scaled_err: the error measure of the LLM tests, used here too */
#include "wavlm/wavlm.h"
#include "wavlm/wavlm_internal.h"

#define TOL 1e-4

static const char *fixture_dir = "tests/fixtures/wavlm";
static const char *config_name;


static float *read_tensor(const sd_safetensors *st, const char *name, size_t *numel) {
    const sd_st_tensor *t = sd_st_find(st, name);
    if (!t) return NULL;
    float *x = sd_alloc((t->numel ? t->numel : 1) * sizeof *x);
    sd_error err = {0};
    if (x && sd_st_read_f32(st, t, x, &err)) {
        sd_free(x);
        return NULL;
    }
    *numel = t->numel;
    return x;
}

static sd_wavlm *load_model(const char *path) {
    sd_wavlm *m = NULL;
    sd_error err = {0};
    if (sd_wavlm_load(path, &m, &err)) EXPECT(0, "%s", err.msg);
    return m;
}

/* Runs wav[n] (normalised as the model wants) and returns hidden_states 0..L, [L+1][T, D]. */
static float **run_all(const sd_wavlm *m, const float *wav, size_t n, int threads) {
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    const size_t T = sd_wavlm_frames(c, n), D = (size_t)c->hidden;
    const int L = c->n_layers;
    float *x = sd_alloc(n * sizeof *x);
    if (c->normalize) sd_wavlm_normalize(wav, n, x);
    else memcpy(x, wav, n * sizeof *x);
    float **out = calloc((size_t)L + 1, sizeof *out);
    int layers[64];
    for (int l = 0; l <= L; l++) {
        out[l] = sd_alloc(T * D * sizeof(float));
        layers[l] = L - l; /* any order */
    }
    float *ptrs[64];
    for (int l = 0; l <= L; l++) ptrs[l] = out[L - l];
    sd_wavlm_ws *ws = NULL;
    sd_error err = {0};
    sd_threads_set(threads);
    EXPECT(sd_wavlm_ws_create(m, n, threads, &ws, &err) == SD_OK, "%s", err.msg);
    EXPECT(ws && sd_wavlm_forward(m, ws, x, n, layers, L + 1, ptrs, &err) == SD_OK, "%s", err.msg);
    sd_wavlm_ws_free(ws);
    sd_free(x);
    return out;
}

static void free_all(float **h, int L) {
    for (int l = 0; l <= L; l++) sd_free(h[l]);
    free(h);
}

typedef struct {
    float *data;
    size_t rows[SD_WAVLM_MAX_OUT], D;
} collect;

static sd_status collect_sink(void *user, int k, const float *rows, size_t n_rows, sd_error *err) {
    (void)err;
    collect *c = user;
    memcpy(c[k].data + c[k].rows[0] * c[k].D, rows, n_rows * c[k].D * sizeof(float));
    c[k].rows[0] += n_rows;
    return SD_OK;
}

static void test_fixture(void) {
    char path[512], epath[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", fixture_dir, config_name);
    snprintf(epath, sizeof epath, "%s/%s.expect.safetensors", fixture_dir, config_name);
    sd_safetensors *ex = NULL;
    sd_error err = {0};
    if (sd_st_open(epath, &ex, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    sd_wavlm *m = load_model(path);
    if (!m) {
        sd_st_close(ex);
        return;
    }
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    const int L = c->n_layers, n_wavs = atoi(sd_st_metadata_get(ex, "n_wavs"));
    const size_t D = (size_t)c->hidden;
    EXPECT(L == atoi(sd_st_metadata_get(ex, "n_layers")), "layers %d", L);
    double worst = 0;
    for (int i = 0; i < n_wavs; i++) {
        char name[64];
        size_t n = 0, numel = 0;
        snprintf(name, sizeof name, "wav.%d", i);
        float *wav = read_tensor(ex, name, &n);
        EXPECT(wav != NULL, "%s missing", name);
        if (!wav) continue;
        const size_t T = sd_wavlm_frames(c, n);
        float **h = run_all(m, wav, n, 2);
        for (int l = 0; l <= L; l++) {
            snprintf(name, sizeof name, "hidden.%d.%d", i, l);
            float *want = read_tensor(ex, name, &numel);
            EXPECT(want && numel == T * D, "%s: %zu values, expected %zu x %zu", name, numel, T, D);
            if (!want) continue;
            double e = scaled_err(h[l], want, numel);
            if (e > worst) worst = e;
            EXPECT(e <= TOL, "%s (n = %zu, T = %zu): error %.2e", name, n, T, e);
            sd_free(want);
        }
        /* The same numbers on 1 and 3 threads, bit for bit. */
        for (int threads = 1; threads <= 3; threads += 2) {
            float **h2 = run_all(m, wav, n, threads);
            for (int l = 0; l <= L; l++)
                EXPECT(!memcmp(h[l], h2[l], T * D * sizeof(float)), "wav %d layer %d differs on %d threads",
                       i, l, threads);
            free_all(h2, L);
        }
        free_all(h, L);
        sd_free(wav);
    }
    printf("  %s: %d layers, hidden %zu, %d waveforms: worst error %.2e\n", config_name, L, D, n_wavs, worst);
    /* A whole recording through the chunking policy. */
    size_t n = 0;
    float *wav = read_tensor(ex, "chunked.wav", &n);
    if (wav) {
        const double chunk = atof(sd_st_metadata_get(ex, "chunk_seconds")),
                     overlap = atof(sd_st_metadata_get(ex, "overlap_seconds"));
        int layers[2] = {L / 2, L};
        const size_t F = sd_wavlm_frames(c, n);
        EXPECT(sd_wavlm_plan(c, n, chunk, overlap, NULL, 0) ==
                   (size_t)atoi(sd_st_metadata_get(ex, "chunked_windows")), "window count");
        collect col[2];
        for (int k = 0; k < 2; k++) col[k] = (collect){sd_alloc(F * D * sizeof(float)), {0}, D};
        sd_wavlm_runner *r = NULL;
        EXPECT(sd_wavlm_runner_create(m, chunk, overlap, 2, &r, &err) == SD_OK, "%s", err.msg);
        EXPECT(r && sd_wavlm_run(r, wav, n, layers, 2, collect_sink, col, &err) == SD_OK, "%s", err.msg);
        for (int k = 0; k < 2; k++) {
            char name[64];
            size_t numel = 0;
            snprintf(name, sizeof name, "chunked.%d", layers[k]);
            float *want = read_tensor(ex, name, &numel);
            EXPECT(want && numel == F * D && col[k].rows[0] == F, "%s: %zu rows of %zu", name, col[k].rows[0], F);
            if (want && numel == F * D) {
                double e = scaled_err(col[k].data, want, numel);
                EXPECT(e <= TOL, "%s: error %.2e", name, e);
                printf("  %s: chunked recording (%zu samples, %s windows), layer %d: error %.2e\n", config_name,
                       n, sd_st_metadata_get(ex, "chunked_windows"), layers[k], e);
            }
            sd_free(want);
            sd_free(col[k].data);
        }
        sd_wavlm_runner_free(r);
        sd_free(wav);
    }
    sd_wavlm_free(m);
    sd_st_close(ex);
}

/* ---- loader: names and errors ---------------------------------------------------------------- */

typedef const char *(*rename_fn)(const char *name, char *buf, size_t cap);

/* Writes a copy of src with every tensor renamed by fn (NULL: dropped), optionally one tensor's
 * shape changed (its data cut), and metadata key=value pairs (NULL ends). */
static int rewrite(const char *src, const char *dst, rename_fn fn, const char *const *meta, int keep_meta) {
    sd_safetensors *st = NULL;
    sd_error err = {0};
    if (sd_st_open(src, &st, &err)) return -1;
    sd_st_writer *w = sd_st_writer_new();
    float **bufs = calloc((size_t)sd_st_count(st), sizeof *bufs);
    int rc = 0;
    for (int i = 0; i < sd_st_count(st) && !rc; i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        char nb[256];
        const char *name = fn ? fn(t->name, nb, sizeof nb) : t->name;
        if (!name) continue;
        bufs[i] = sd_alloc((t->numel ? t->numel : 1) * sizeof(float));
        rc = sd_st_read_f32(st, t, bufs[i], &err) ||
             sd_st_writer_add(w, name, SD_DTYPE_F32, t->ndim, t->shape, bufs[i], &err);
    }
    if (keep_meta)
        for (int i = 0; i < sd_st_metadata_count(st) && !rc; i++)
            rc = sd_st_writer_set_metadata(w, sd_st_metadata_key(st, i), sd_st_metadata_value(st, i), &err);
    for (int i = 0; meta && meta[i] && !rc; i += 2) rc = sd_st_writer_set_metadata(w, meta[i], meta[i + 1], &err);
    if (!rc) rc = sd_st_writer_write(w, dst, &err) != SD_OK;
    sd_st_writer_free(w);
    for (int i = 0; i < sd_st_count(st); i++) sd_free(bufs[i]);
    free(bufs);
    sd_st_close(st);
    return rc ? -1 : 0;
}

static const char *prefix_module_wavlm(const char *n, char *buf, size_t cap) {
    snprintf(buf, cap, "module.wavlm.%s", n);
    return buf;
}

static const char *parametrizations(const char *n, char *buf, size_t cap) {
    const char *p = strstr(n, "pos_conv_embed.conv.weight_");
    if (!p) return n;
    snprintf(buf, cap, "%.*spos_conv_embed.conv.parametrizations.weight.original%c", (int)(p - n), n,
             p[strlen("pos_conv_embed.conv.weight_")] == 'g' ? '0' : '1');
    return buf;
}

static const char *with_head(const char *n, char *buf, size_t cap) {
    if (!strcmp(n, "masked_spec_embed")) return "lm_head.weight"; /* an unrelated tensor: ignored */
    snprintf(buf, cap, "wavlm.%s", n);
    return buf;
}

static const char *drop_gate(const char *n, char *buf, size_t cap) {
    (void)buf, (void)cap;
    return strstr(n, "gru_rel_pos") || strstr(n, "rel_attn_embed") ? NULL : n;
}

static const char *drop_ffn_bias(const char *n, char *buf, size_t cap) {
    (void)buf, (void)cap;
    return !strcmp(n, "encoder.layers.1.feed_forward.output_dense.bias") ? NULL : n;
}

static const char *fairseq_names(const char *n, char *buf, size_t cap) {
    if (strncmp(n, "feature_extractor.conv_layers.", 30)) return n;
    snprintf(buf, cap, "feature_extractor.conv_layers.%c.0.weight%s", n[30], strstr(n, ".conv.weight") ? "" : "x");
    return strstr(n, ".conv.weight") ? buf : NULL;
}

/* Same outputs, bit for bit, as the plain file. */
static void expect_same_model(const char *path, const float *const *ref, const float *wav, size_t n) {
    sd_wavlm *m = load_model(path);
    if (!m) return;
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    const size_t T = sd_wavlm_frames(c, n), D = (size_t)c->hidden;
    float **h = run_all(m, wav, n, 2);
    for (int l = 0; l <= c->n_layers; l++)
        EXPECT(!memcmp(h[l], ref[l], T * D * sizeof(float)), "%s: layer %d differs", path, l);
    free_all(h, c->n_layers);
    sd_wavlm_free(m);
}

static void expect_load_error(const char *path, const char *want) {
    sd_wavlm *m = NULL;
    sd_error err = {0};
    sd_status s = sd_wavlm_load(path, &m, &err);
    EXPECT(s != SD_OK && m == NULL, "%s: loaded, expected an error with '%s'", path, want);
    EXPECT(s == SD_OK || (strstr(err.msg, want) && strstr(err.msg, path)), "%s: message '%s' lacks '%s'",
           path, err.msg, want);
    sd_wavlm_free(m);
}

static void test_loader(void) {
    char src[512], p[512];
    const char *tmp = sd_test_tmpdir();
    snprintf(src, sizeof src, "%s/tiny_large.safetensors", fixture_dir);
    sd_wavlm *m = load_model(src);
    if (!m) return;
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    EXPECT(c->n_conv == 7 && c->conv_dim[0] == 16 && c->conv_kernel[0] == 10 && c->conv_stride[0] == 5 &&
               c->hop == 320 && c->receptive == 400 && !c->conv_bias && c->conv_norm == SD_WAVLM_CONV_NORM_LAYER &&
               c->hidden == 32 && c->n_layers == 3 && c->n_heads == 4 && c->ffn == 64 && c->pos_kernel == 16 &&
               c->pos_groups == 4 && c->num_buckets == 32 && c->max_distance == 40 && c->stable_layer_norm &&
               c->normalize && c->eps == 1e-5f,
           "tiny_large configuration");
    const size_t n = 5000;
    float *wav = sd_alloc(n * sizeof *wav);
    for (size_t i = 0; i < n; i++) wav[i] = 0.1f * sinf(0.01f * (float)(i * i % 7919)) + 0.02f * cosf(0.3f * (float)i);
    float **ref = run_all(m, wav, n, 2);
    const int L = c->n_layers;
    sd_wavlm_free(m);
    /* Accepted variants: prefixes, newer PyTorch's weight-norm names, unrelated tensors. */
    snprintf(p, sizeof p, "%s/prefixed.safetensors", tmp);
    EXPECT(!rewrite(src, p, prefix_module_wavlm, NULL, 1), "write %s", p);
    expect_same_model(p, (const float *const *)ref, wav, n);
    snprintf(p, sizeof p, "%s/parametrizations.safetensors", tmp);
    EXPECT(!rewrite(src, p, parametrizations, NULL, 1), "write %s", p);
    expect_same_model(p, (const float *const *)ref, wav, n);
    snprintf(p, sizeof p, "%s/head.safetensors", tmp);
    EXPECT(!rewrite(src, p, with_head, NULL, 1), "write %s", p);
    expect_same_model(p, (const float *const *)ref, wav, n);
    /* Errors. */
    snprintf(p, sizeof p, "%s/nogate.safetensors", tmp);
    EXPECT(!rewrite(src, p, drop_gate, NULL, 1), "write");
    expect_load_error(p, "wav2vec2 or HuBERT");
    snprintf(p, sizeof p, "%s/nobias.safetensors", tmp);
    EXPECT(!rewrite(src, p, drop_ffn_bias, NULL, 1), "write");
    expect_load_error(p, "'encoder.layers.1.feed_forward.output_dense.bias' is missing");
    snprintf(p, sizeof p, "%s/fairseq.safetensors", tmp);
    EXPECT(!rewrite(src, p, fairseq_names, NULL, 1), "write");
    expect_load_error(p, "tools/wavlm2safetensors.py");
    static const char *const bad_heads[] = {"num_attention_heads", "8", NULL};
    snprintf(p, sizeof p, "%s/heads.safetensors", tmp);
    EXPECT(!rewrite(src, p, NULL, bad_heads, 1), "write");
    expect_load_error(p, "num_attention_heads = 8 but the tensors say 4");
    static const char *const bad_stride[] = {"conv_stride", "[5, 2, 2]", NULL};
    snprintf(p, sizeof p, "%s/stride.safetensors", tmp);
    EXPECT(!rewrite(src, p, NULL, bad_stride, 1), "write");
    expect_load_error(p, "conv_stride");
    static const char *const bad_norm[] = {"feat_extract_norm", "group", NULL};
    snprintf(p, sizeof p, "%s/norm.safetensors", tmp);
    EXPECT(!rewrite(src, p, NULL, bad_norm, 1), "write");
    expect_load_error(p, "feat_extract_norm = 'group'");
    snprintf(src, sizeof src, "%s/odd_conv.safetensors", fixture_dir);
    snprintf(p, sizeof p, "%s/nostride.safetensors", tmp);
    EXPECT(!rewrite(src, p, NULL, NULL, 0), "write");
    expect_load_error(p, "give conv_stride in the metadata");
    snprintf(p, sizeof p, "%s/missing.safetensors", tmp);
    expect_load_error(p, "No such file");
    free_all(ref, L);
    sd_free(wav);
}

/* ---- unit tests ------------------------------------------------------------------------------ */

static void test_plan(void) {
    sd_wavlm *m = load_model("tests/fixtures/wavlm/tiny_large.safetensors");
    if (!m) return;
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    sd_error err = {0};
    EXPECT(sd_wavlm_check_chunking(c, 30, 5, &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_wavlm_check_chunking(c, 10, 6, &err) != SD_OK && strstr(err.msg, "--overlap-seconds"), "overlap > chunk/2");
    EXPECT(sd_wavlm_check_chunking(c, 0.02, 0, &err) != SD_OK && strstr(err.msg, "--chunk-seconds"), "tiny chunk");
    const double chunks[] = {0.5, 1.0, 2.0, 30.0}, overlaps[] = {0.0, 0.1, 0.25, 5.0};
    sd_wavlm_window w[4096];
    int checked = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int oi = 0; oi < 4; oi++) {
            if (overlaps[oi] > chunks[ci] / 2) continue;
            const size_t Fw = sd_wavlm_frames(c, (size_t)llround(chunks[ci] * 16000)),
                         O = (size_t)llround(overlaps[oi] * 50);
            for (size_t n = 350; n < 2000000; n = n * 5 / 4 + 77) {
                const size_t F = sd_wavlm_frames(c, n), nw = sd_wavlm_plan(c, n, chunks[ci], overlaps[oi], w, 4096);
                if (F == 0) {
                    EXPECT(nw == 0, "n %zu: %zu windows for no frame", n, nw);
                    continue;
                }
                size_t next = 0;
                for (size_t i = 0; i < nw; i++) {
                    const size_t wf = sd_wavlm_frames(c, w[i].sample_end - w[i].sample_begin);
                    EXPECT(w[i].keep_begin == next && w[i].keep_end > w[i].keep_begin, "n %zu window %zu: keeps [%zu, %zu) after %zu",
                           n, i, w[i].keep_begin, w[i].keep_end, next);
                    EXPECT(w[i].sample_begin == w[i].frame_begin * 320 && w[i].sample_end <= n, "n %zu window %zu: samples", n, i);
                    EXPECT(w[i].keep_begin >= w[i].frame_begin && w[i].keep_end <= w[i].frame_begin + wf,
                           "n %zu window %zu: keeps frames it does not have", n, i);
                    EXPECT(nw == 1 || wf == Fw, "n %zu window %zu: %zu frames, not %zu", n, i, wf, Fw);
                    EXPECT(w[i].sample_end - w[i].sample_begin <= (size_t)llround(chunks[ci] * 16000) + 320 || nw == 1,
                           "n %zu window %zu too long", n, i);
                    /* context: at least O/2 frames inside the window on each inner side */
                    if (i > 0) EXPECT(w[i].keep_begin - w[i].frame_begin >= O / 2, "n %zu window %zu: left context", n, i);
                    if (i + 1 < nw) EXPECT(w[i].frame_begin + Fw - w[i].keep_end >= O / 2, "n %zu window %zu: right context", n, i);
                    next = w[i].keep_end;
                }
                EXPECT(next == F, "n %zu: frames covered %zu of %zu", n, next, F);
                EXPECT(nw > 1 || (w[0].sample_begin == 0 && w[0].sample_end == n), "n %zu: a single window is the whole", n);
                checked++;
            }
        }
    printf("  %d plans checked\n", checked);
    sd_wavlm_free(m);
}

/* The released code's bucket formula, in float32 with truncation. */
static int bucket_f32(int64_t r, int B, int maxd) {
    const int half = B / 2, exact = half / 2;
    int base = r > 0 ? half : 0;
    int64_t a = r < 0 ? -r : r;
    if (a < exact) return base + (int)a;
    float v = logf((float)a / (float)exact) / (float)log((double)maxd / exact) * (float)(half - exact);
    int64_t b = (int64_t)((float)exact + v);
    return base + (int)(b < half - 1 ? b : half - 1);
}

static void test_buckets(void) {
    const int cfgs[][2] = {{320, 800}, {320, 1280}, {32, 40}, {16, 20}};
    for (int k = 0; k < 4; k++) {
        int differ = 0;
        for (int64_t r = -200000; r <= 200000; r++)
            differ += sd_wavlm_bucket(r, cfgs[k][0], cfgs[k][1]) != bucket_f32(r, cfgs[k][0], cfgs[k][1]);
        EXPECT(differ == 0, "buckets %d / %d: %d positions differ from the float32 formula", cfgs[k][0], cfgs[k][1], differ);
    }
    /* Landmarks of WavLM-Large's table: exact below 80, half 160 for positive offsets, last bucket
     * of each half from 800 on. */
    EXPECT(sd_wavlm_bucket(0, 320, 800) == 0 && sd_wavlm_bucket(79, 320, 800) == 160 + 79 &&
               sd_wavlm_bucket(-79, 320, 800) == 79 && sd_wavlm_bucket(80, 320, 800) == 240 &&
               sd_wavlm_bucket(160, 320, 800) == 264 && sd_wavlm_bucket(799, 320, 800) == 319 &&
               sd_wavlm_bucket(-700, 320, 800) == 155 &&
               sd_wavlm_bucket(-100000, 320, 800) == 159,
           "landmarks");
}

static void test_gelu_exp(void) {
    const size_t n = 2400001;
    float *x = sd_alloc(n * sizeof *x), *y = sd_alloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
    sd_wavlm_gelu(y, x, n);
    double worst = 0, worst_abs = 0;
    for (size_t i = 0; i < n; i++) {
        const double g = 0.5 * x[i] * erfc(-x[i] / sqrt(2.0)); /* 1 + erf(x) would cancel for x << 0 */
        const double e = fabs(y[i] - g);
        if (fabs(g) > 1e-30 && e / fabs(g) > worst) worst = e / fabs(g);
        if (e > worst_abs) worst_abs = e;
    }
    printf("  GELU on [-12, 12]: max relative error %.2e, max absolute %.2e\n", worst, worst_abs);
    EXPECT(worst < 2e-6, "GELU relative error %.2e", worst);
    const float special[] = {0.0f, -0.0f, INFINITY, 1e-30f, -1e-30f, 30.0f, -30.0f};
    sd_wavlm_gelu(y, special, 7);
    EXPECT(y[0] == 0 && y[1] == 0 && y[2] == INFINITY && fabsf(y[3] - 0.5e-30f) < 1e-36f && y[5] == 30.0f &&
               y[6] <= 0.0f && y[6] > -1e-38f,
           "GELU special values %g %g %g %g %g %g", y[0], y[1], y[2], y[3], y[5], y[6]);
    for (size_t i = 0; i < n; i++) x[i] = -100.0f + 188.0f * (float)i / (float)(n - 1);
    sd_wavlm_exp(y, x, n);
    worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] < -87.3f) {
            EXPECT(y[i] == 0 || i == 0, "exp(%g) = %g, expected 0", x[i], y[i]);
            if (y[i] != 0) break;
            continue;
        }
        const double e = fabs(y[i] - exp((double)x[i])) / exp((double)x[i]);
        if (e > worst) worst = e;
    }
    printf("  exp on [-87.3, 88]: max relative error %.2e\n", worst);
    EXPECT(worst < 3e-7, "exp relative error %.2e", worst);
    sd_free(x);
    sd_free(y);
}

static void test_errors(void) {
    sd_wavlm *m = load_model("tests/fixtures/wavlm/tiny_base.safetensors");
    if (!m) return;
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    EXPECT(c->conv_norm == SD_WAVLM_CONV_NORM_GROUP && !c->stable_layer_norm && !c->normalize && c->conv_bias &&
               c->max_distance == 800 && c->pos_kernel == 15,
           "tiny_base configuration inferred from shapes");
    sd_wavlm_ws *ws = NULL;
    sd_error err = {0};
    float wav[2000] = {0}, *out[1];
    float buf[8 * 24];
    out[0] = buf;
    int layer = 1, bad = 3;
    EXPECT(sd_wavlm_ws_create(m, 100, 1, &ws, &err) != SD_OK && strstr(err.msg, "no frame"), "tiny workspace");
    EXPECT(sd_wavlm_ws_create(m, 1000, 1, &ws, &err) == SD_OK, "%s", err.msg);
    EXPECT(sd_wavlm_forward(m, ws, wav, 399, &layer, 1, out, &err) == SD_E_SHAPE && strstr(err.msg, "at least 400"),
           "short input: %s", err.msg);
    EXPECT(sd_wavlm_forward(m, ws, wav, 2000, &layer, 1, out, &err) == SD_E_ARG, "input over the workspace");
    EXPECT(sd_wavlm_forward(m, ws, wav, 1000, &bad, 1, out, &err) == SD_E_ARG && strstr(err.msg, "0..2"),
           "layer out of range: %s", err.msg);
    sd_wavlm_ws_free(ws);
    sd_wavlm_free(m);
}

int main(int argc, char **argv) {
    static const char *defaults[] = {"tiny_large", "tiny_base", "odd_conv"};
    const char **configs = defaults;
    int n_configs = 3;
    if (argc > 2) {
        fixture_dir = argv[1];
        configs = (const char **)(argv + 2);
        n_configs = argc - 2;
    }
    for (int i = 0; i < n_configs; i++) {
        char name[128];
        config_name = configs[i];
        snprintf(name, sizeof name, "wavlm.parity.%s", configs[i]);
        sd_test_run(name, test_fixture);
    }
    if (argc <= 2) {
        sd_test_run("wavlm.loader_names_and_errors", test_loader);
        sd_test_run("wavlm.chunk_plan", test_plan);
        sd_test_run("wavlm.buckets", test_buckets);
        sd_test_run("wavlm.gelu_exp", test_gelu_exp);
        sd_test_run("wavlm.forward_errors", test_errors);
    }
    return sd_test_finish();
}
