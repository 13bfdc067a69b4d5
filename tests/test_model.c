/* The SDUMC network's parameters and model files: names, shapes and counts as the reference
 * module (MODEL.md appendix), initialisation, save/load round trips, PyTorch state_dicts
 * without sdumc metadata, and corrupted or mismatched files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "harness.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "model/flow.h"
#include "model/norm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static sd_model *make(int da, int dt, int dv, int hidden, int mia, uint64_t seed) {
    sd_model_config c = sd_model_default_config(da, dt, dv);
    c.hidden = hidden;
    c.mia = mia;
    c.seed = seed;
    sd_model *m = NULL;
    sd_error err;
    if (sd_model_create(&c, &m, &err)) {
        fprintf(stderr, "model: %s\n", err.msg);
        return NULL;
    }
    return m;
}

static void test_param_counts_at_mosei_dims(void) {
    sd_model *off = make(1024, 4096, 1024, 256, 0, 1), *on = make(1024, 4096, 1024, 256, 1, 1);
    EXPECT(off && on, "create");
    if (!off || !on) return;
    size_t n_off = sd_model_param_count(off, 1), n_on = sd_model_param_count(on, 1);
    size_t n_all = sd_model_param_count(on, 0);
    printf("  parameters at MOSEI dims: %zu used with MIA off, %zu with MIA on, %zu registered\n",
           n_off, n_on, n_all);
    EXPECT(n_off == 3857291, "MIA off: %zu used, MODEL.md says 3,857,291", n_off);
    EXPECT(n_on == 4268235, "MIA on: %zu used, MODEL.md says 4,268,235", n_on);
    EXPECT(n_all == 4268884, "registered: %zu, MODEL.md says 4,268,884", n_all);
    sd_model_free(off);
    sd_model_free(on);
}

/* Every line "name [d0, d1]" of the appendix of docs/MODEL.md (the repository's specification;
 * the tests run from the repository root), in order, equals our table. Never skipped: a missing
 * file or appendix fails. */
static void test_names_match_model_md_appendix(void) {
    FILE *f = fopen("docs/MODEL.md", "r");
    EXPECT(f != NULL, "docs/MODEL.md: cannot open it (run the tests from the repository root)");
    if (!f) return;
    sd_model *m = make(1024, 4096, 1024, 256, 1, 1);
    char line[512];
    int in_block = 0, seen_appendix = 0, i = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "## Appendix")) seen_appendix = 1;
        if (!seen_appendix) continue;
        if (!strncmp(line, "```", 3)) {
            if (in_block) break;
            in_block = 1;
            continue;
        }
        if (!in_block) continue;
        char name[256], dims[128];
        if (sscanf(line, "%255s [%127[^]]]", name, dims) != 2) continue;
        char ours[128];
        if (i >= m->table.count) {
            EXPECT(0, "appendix has more tensors than sdumc (%s)", name);
            break;
        }
        const sd_tensor_spec *s = &m->table.specs[i];
        sd_shape_str(ours, sizeof ours, s->ndim, s->shape);
        char theirs[160];
        snprintf(theirs, sizeof theirs, "[%s]", dims);
        EXPECT(!strcmp(name, s->name) && !strcmp(ours, theirs), "tensor %d: appendix %s %s, sdumc %s %s",
               i, name, theirs, s->name, ours);
        i++;
    }
    fclose(f);
    EXPECT(i == m->table.count, "appendix lists %d tensors, sdumc has %d", i, m->table.count);
    sd_model_free(m);
}

static void test_init_follows_pytorch_defaults(void) {
    sd_model *a = make(12, 20, 8, 32, 1, 7), *b = make(12, 20, 8, 32, 1, 7), *c = make(12, 20, 8, 32, 1, 8);
    EXPECT(!memcmp(a->params, b->params, a->table.total * sizeof(float)), "same seed, different init");
    EXPECT(memcmp(a->params, c->params, a->table.total * sizeof(float)) != 0, "seed ignored");
    for (int i = 0; i < a->table.count; i++) {
        const sd_tensor_spec *s = &a->table.specs[i];
        const float *x = a->params + s->offset;
        if (strstr(s->name, "attention_context_vector")) {
            double v = 0;
            for (size_t k = 0; k < s->numel; k++) v += (double)x[k] * x[k];
            v /= (double)s->numel;
            EXPECT(v > 0.2 * 2.0 / 33 && v < 5 * 2.0 / 33, "%s variance %g", s->name, v);
        } else if (!strcmp(s->name, "prelu.weight")) {
            EXPECT(x[0] == 0.25f, "prelu init");
        } else if (!strncmp(s->name, "layer_normali", 13)) {
            EXPECT(x[0] == (strstr(s->name, "weight") ? 1.0f : 0.0f), "layer norm init");
        } else {
            int64_t fan_in = s->ndim == 2 ? s->shape[1] : a->table.specs[i - 1].shape[1];
            double bound = 1.0 / sqrt((double)fan_in), mx = 0;
            for (size_t k = 0; k < s->numel; k++) mx = fmax(mx, fabs(x[k]));
            EXPECT(mx <= bound && (s->numel < 8 || mx > 0.5 * bound), "%s: max |w| %g, bound %g",
                   s->name, mx, bound);
        }
    }
    sd_model_free(a);
    sd_model_free(b);
    sd_model_free(c);
}

/* A small batch with padding, for predictions. */
typedef struct {
    float *x[3];
    int len[3][3];
    sd_flow_input in;
} small_batch;

static void make_batch(small_batch *sb, const sd_model *m) {
    const int B = 3, T[3] = {6, 4, 5};
    sd_rng r = sd_rng_make(11, SD_STREAM_TEST);
    memset(sb, 0, sizeof *sb);
    sb->in.B = B;
    for (int k = 0; k < 3; k++) {
        size_t n = (size_t)B * (size_t)T[k] * (size_t)m->cfg.dim[k];
        sb->x[k] = calloc(n, sizeof(float));
        for (int b = 0; b < B; b++) {
            sb->len[k][b] = T[k] - b;
            for (int t = 0; t < sb->len[k][b]; t++)
                for (int d = 0; d < m->cfg.dim[k]; d++)
                    sb->x[k][((size_t)b * (size_t)T[k] + (size_t)t) * (size_t)m->cfg.dim[k] + (size_t)d] =
                        sd_rng_uniform(&r) * 2 - 1;
        }
        sb->in.x[k] = sb->x[k];
        sb->in.T[k] = T[k];
        sb->in.len[k] = sb->len[k];
    }
}

static void free_batch(small_batch *sb) {
    for (int k = 0; k < 3; k++) free(sb->x[k]);
}

static void predict(const sd_model *m, const small_batch *sb, int missing, float *out) {
    sd_flow *f = sd_flow_new();
    sd_error err;
    EXPECT(sd_flow_forward(f, m, &sb->in, missing, 0, NULL, &err) == SD_OK, "forward: %s", err.msg);
    memcpy(out, f->pred, (size_t)sb->in.B * sizeof(float));
    sd_flow_free(f);
}

/* Evaluation of a small batch runs the three modalities' branches at the same time when there
 * are threads for it (flow.c, flow_concurrent): the outputs are the same bits as one thread's,
 * for both flows, with and without MIA, padded samples included. */
static void test_concurrent_branches_match_one_thread(void) {
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    for (int mia = 0; mia < 2; mia++) {
        sd_model *m = make(7, 9, 5, 16, mia, 5);
        small_batch sb;
        make_batch(&sb, m);
        for (int missing = 0; missing < 2; missing++) {
            float want_pred[3], want_z[3 * 8], got_z[3 * 8];
            sd_flow *f = sd_flow_new();
            sd_error err;
            omp_set_num_threads(1);
            EXPECT(sd_flow_forward(f, m, &sb.in, missing, 0, NULL, &err) == SD_OK, "%s", err.msg);
            EXPECT(!f->concurrent, "one thread ran the branches concurrently");
            memcpy(want_pred, f->pred, sizeof want_pred);
            memcpy(want_z, f->z, sizeof want_z);
            omp_set_num_threads(2);
            EXPECT(sd_flow_forward(f, m, &sb.in, missing, 0, NULL, &err) == SD_OK, "%s", err.msg);
            EXPECT(f->concurrent, "two threads, small batch: branches not concurrent");
            memcpy(got_z, f->z, sizeof got_z);
            EXPECT(memcmp(want_pred, f->pred, sizeof want_pred) == 0 && memcmp(want_z, got_z, sizeof got_z) == 0,
                   "mia %d missing %d: concurrent branches differ from one thread (pred %.9g vs %.9g)", mia,
                   missing, f->pred[0], want_pred[0]);
            sd_flow_free(f);
        }
        free_batch(&sb);
        sd_model_free(m);
    }
    omp_set_num_threads(saved);
#else
    sd_test_skip("built without OpenMP: no concurrent branches");
#endif
}

/* The inference layout (transposed frame weights) predicts what the plain layout predicts, for
 * both flows; preparing again after the weights change picks up the change. */
static void test_prepare_inference(void) {
    sd_model *m = make(7, 9, 5, 16, 1, 8);
    small_batch sb;
    make_batch(&sb, m);
    float plain[2][3], prepared[2][3];
    for (int missing = 0; missing < 2; missing++) predict(m, &sb, missing, plain[missing]);
    sd_error err;
    EXPECT(sd_model_prepare_inference(m, &err) == SD_OK, "%s", err.msg);
    size_t bad = 0;
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < m->cfg.hidden; o++)
            for (int k = 0; k < m->cfg.dim[i]; k++)
                bad += m->frame_wt[i][k * m->cfg.hidden + o] != m->p.frame[i].W[o * m->cfg.dim[i] + k];
    EXPECT(bad == 0, "%zu transposed weights differ", bad);
    double worst = 0;
    for (int missing = 0; missing < 2; missing++) {
        predict(m, &sb, missing, prepared[missing]);
        for (int b = 0; b < 3; b++)
            worst = fmax(worst, fabs((double)prepared[missing][b] - plain[missing][b]) /
                                    fmax(fabs((double)plain[missing][b]), 1e-3));
    }
    printf("  inference layout vs plain: worst relative difference %.2g\n", worst);
    EXPECT(worst < 1e-5, "inference layout differs from the plain one by %.3g", worst);
    /* Change a frame weight: stale until prepared again. */
    m->p.frame[0].W[0] += 0.5f;
    EXPECT(sd_model_prepare_inference(m, &err) == SD_OK, "%s", err.msg);
    EXPECT(m->frame_wt[0][0] == m->p.frame[0].W[0], "prepare again did not refresh the copy");
    free_batch(&sb);
    sd_model_free(m);
}

/* The frame projection of float16 / bfloat16 batches (converted chunk by chunk, model/frames.c)
 * against float32 inputs holding the same values: the forward (plain and inference layout) and the
 * weight gradient (a sum over chunks) agree to float32 rounding, the bias gradient is the same
 * numbers. 2500 rows of 2048 make three chunks. */
static void test_frames_half_inputs(void) {
    const size_t N = 2500;
    const int D = 2048, H = 16;
    sd_rng r = sd_rng_make(21, SD_STREAM_TEST);
    uint16_t *h16 = malloc(N * D * sizeof *h16), *hbf = malloc(N * D * sizeof *hbf);
    float *x16 = malloc(N * D * sizeof *x16), *xbf = malloc(N * D * sizeof *xbf);
    float *W = malloc((size_t)H * D * sizeof *W), *Wt = malloc((size_t)H * D * sizeof *Wt), b[16];
    float *dy = malloc(N * H * sizeof *dy), *y[2], *dW[2], db[2][16];
    float *work = sd_alloc(sd_frames_work_len(SD_DTYPE_F16, 0, N, D) * sizeof(float));
    for (size_t i = 0; i < N * D; i++) {
        const float v = sd_rng_uniform(&r) * 4 - 2;
        h16[i] = sd_f32_to_f16(v);
        hbf[i] = sd_f32_to_bf16(v);
        x16[i] = sd_f16_to_f32(h16[i]);
        xbf[i] = sd_bf16_to_f32(hbf[i]);
    }
    for (int o = 0; o < H; o++) {
        b[o] = sd_rng_uniform(&r) - 0.5f;
        for (int k = 0; k < D; k++) Wt[(size_t)k * H + o] = W[(size_t)o * D + k] = (sd_rng_uniform(&r) - 0.5f) / 16;
    }
    for (size_t i = 0; i < N * H; i++) dy[i] = sd_rng_uniform(&r) - 0.5f;
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(N * H * sizeof(float));
        dW[k] = malloc((size_t)H * D * sizeof(float));
    }
    EXPECT(sd_frames_work_len(SD_DTYPE_F16, 0, N, D) == 1024 * (size_t)D && sd_frames_work_len(SD_DTYPE_F32, 0, N, D) == 0 &&
               sd_frames_work_len(SD_DTYPE_F32, 1, N, D) == 1024 * (size_t)D,
           "work length");
    const sd_dtype types[2] = {SD_DTYPE_F16, SD_DTYPE_BF16};
    const void *raw[2] = {h16, hbf};
    const float *wide[2] = {x16, xbf};
    for (int t = 0; t < 2; t++)
        for (int layout = 0; layout < 2; layout++) {
            const float *wt = layout ? Wt : NULL;
            sd_frames_forward(y[0], wide[t], SD_DTYPE_F32, NULL, W, wt, b, N, D, H, NULL);
            sd_frames_forward(y[1], raw[t], types[t], NULL, W, wt, b, N, D, H, work);
            size_t at = 0;
            const double e = sd_max_rel_err_f(y[1], y[0], N * H, 1.0, &at); /* |y| ~ 1 */
            EXPECT(e <= 1e-5, "%s forward (layout %d): relative error %.3g at %zu", sd_dtype_name(types[t]), layout, e, at);
        }
    for (int t = 0; t < 2; t++) {
        memset(dW[0], 0, (size_t)H * D * sizeof(float));
        memset(dW[1], 0, (size_t)H * D * sizeof(float));
        memset(db, 0, sizeof db);
        sd_frames_backward(dW[0], db[0], dy, wide[t], SD_DTYPE_F32, NULL, N, D, H, NULL);
        sd_frames_backward(dW[1], db[1], dy, raw[t], types[t], NULL, N, D, H, work);
        size_t at = 0;
        const double e = sd_max_rel_err_f(dW[1], dW[0], (size_t)H * D, 10.0, &at); /* |dW| ~ 10 */
        EXPECT(e <= 1e-5, "%s dW: relative error %.3g at %zu", sd_dtype_name(types[t]), e, at);
        EXPECT(!memcmp(db[0], db[1], sizeof db[0]), "%s db differs", sd_dtype_name(types[t]));
    }
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(dW[k]);
    }
    free(h16);
    free(hbf);
    free(x16);
    free(xbf);
    free(W);
    free(Wt);
    free(dy);
    sd_free(work);
}

/* Standardisation as the frame projection reads its input (training with --normalize standard):
 * float32 and float16 batches give what the projection gives on a float32 copy standardised in
 * place by sd_norm_apply (the real frames only), to float32 rounding; the batch is not touched.
 * 3 samples of T = 900 frames of 2048 (lengths 900, 517, 1) make three chunks. */
static void test_frames_standardised(void) {
    const int B = 3, T = 900, D = 2048, H = 8, len[3] = {900, 517, 1};
    const size_t N = (size_t)B * T;
    sd_rng r = sd_rng_make(22, SD_STREAM_TEST);
    uint16_t *h16 = calloc(N * D, sizeof *h16), *h16_copy = malloc(N * D * sizeof *h16);
    float *x = calloc(N * D, sizeof *x), *x_copy = malloc(N * D * sizeof *x), *ref = calloc(N * D, sizeof *ref);
    float *W = malloc((size_t)H * D * sizeof *W), b[8], *dy = malloc(N * H * sizeof *dy);
    float *mean = malloc(D * sizeof *mean), *inv = malloc(D * sizeof *inv), *std = malloc(D * sizeof *std);
    float *y[2], *dW[2], db[2][8];
    float *work = sd_alloc(sd_frames_work_len(SD_DTYPE_F32, 1, N, D) * sizeof(float));
    for (int d = 0; d < D; d++) {
        mean[d] = sd_rng_uniform(&r) * 40 - 20;
        std[d] = 0.1f + sd_rng_uniform(&r) * 30;
        inv[d] = 1.0f / std[d];
    }
    for (int i = 0; i < B; i++)
        for (int t = 0; t < len[i]; t++)
            for (int d = 0; d < D; d++) {
                const size_t k = ((size_t)i * T + t) * D + d;
                h16[k] = sd_f32_to_f16(mean[d] + (sd_rng_uniform(&r) * 4 - 2) * std[d]);
                x[k] = sd_f16_to_f32(h16[k]);
            }
    memcpy(h16_copy, h16, N * D * sizeof *h16);
    memcpy(x_copy, x, N * D * sizeof *x);
    sd_norm n = {{D, D, D}, {mean, mean, mean}, {std, std, std}, {inv, inv, inv}};
    memcpy(ref, x, N * D * sizeof *x);
    for (int i = 0; i < B; i++) sd_norm_apply(&n, 0, ref + (size_t)i * T * D, len[i]);
    for (int o = 0; o < H; o++) {
        b[o] = sd_rng_uniform(&r) - 0.5f;
        for (int k = 0; k < D; k++) W[(size_t)o * D + k] = (sd_rng_uniform(&r) - 0.5f) / 16;
    }
    for (size_t i = 0; i < N * H; i++) dy[i] = sd_rng_uniform(&r) - 0.5f;
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(N * H * sizeof(float));
        dW[k] = calloc((size_t)H * D, sizeof(float));
    }
    const sd_frames_std st = {mean, inv, len, T};
    const sd_dtype types[2] = {SD_DTYPE_F32, SD_DTYPE_F16};
    const void *raw[2] = {x, h16};
    memset(db, 0, sizeof db);
    sd_frames_forward(y[0], ref, SD_DTYPE_F32, NULL, W, NULL, b, N, D, H, NULL);
    sd_frames_backward(dW[0], db[0], dy, ref, SD_DTYPE_F32, NULL, N, D, H, NULL);
    for (int t = 0; t < 2; t++) {
        memset(dW[1], 0, (size_t)H * D * sizeof(float));
        memset(db[1], 0, sizeof db[1]);
        sd_frames_forward(y[1], raw[t], types[t], &st, W, NULL, b, N, D, H, work);
        sd_frames_backward(dW[1], db[1], dy, raw[t], types[t], &st, N, D, H, work);
        size_t at = 0;
        double e = sd_max_rel_err_f(y[1], y[0], N * H, 1.0, &at);
        EXPECT(e <= 1e-5, "%s standardised forward: relative error %.3g at %zu", sd_dtype_name(types[t]), e, at);
        e = sd_max_rel_err_f(dW[1], dW[0], (size_t)H * D, 10.0, &at);
        EXPECT(e <= 1e-5, "%s standardised dW: relative error %.3g at %zu", sd_dtype_name(types[t]), e, at);
        EXPECT(!memcmp(db[0], db[1], sizeof db[0]), "%s db differs", sd_dtype_name(types[t]));
    }
    EXPECT(!memcmp(x, x_copy, N * D * sizeof *x) && !memcmp(h16, h16_copy, N * D * sizeof *h16),
           "the projection rewrote its input");
    /* Padding rows enter as zeros: the projection there is the bias alone. */
    EXPECT(y[1][((size_t)2 * T + 1) * H] == b[0], "a padding frame was standardised");
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(dW[k]);
    }
    free(h16);
    free(h16_copy);
    free(x);
    free(x_copy);
    free(ref);
    free(W);
    free(dy);
    free(mean);
    free(inv);
    free(std);
    sd_free(work);
}

/* A flow on float16 inputs predicts and differentiates as on float32 inputs of the same values;
 * an input type the flow does not take is refused. */
static void test_flow_half_inputs(void) {
    sd_model *m = make(7, 9, 5, 16, 1, 4);
    small_batch sb;
    make_batch(&sb, m);
    small_batch half = sb;
    uint16_t *h[3];
    for (int k = 0; k < 3; k++) {
        const size_t n = (size_t)sb.in.B * (size_t)sb.in.T[k] * (size_t)m->cfg.dim[k];
        h[k] = malloc(n * sizeof *h[k]);
        for (size_t i = 0; i < n; i++) {
            h[k][i] = sd_f32_to_f16(sb.x[k][i]);
            sb.x[k][i] = sd_f16_to_f32(h[k][i]);
        }
        half.in.x[k] = h[k];
        half.in.dtype[k] = SD_DTYPE_F16;
    }
    float *g[2];
    float pred[2][3];
    const float d_pred[3] = {1.0f, -0.5f, 0.25f};
    for (int k = 0; k < 2; k++) {
        const sd_flow_input *in = k ? &half.in : &sb.in;
        sd_flow *f = sd_flow_new();
        sd_rng r = sd_rng_make(3, SD_STREAM_DROPOUT);
        sd_error err;
        g[k] = sd_params_alloc_buffer(&m->table);
        EXPECT(sd_flow_forward(f, m, in, 1, 1, &r, &err) == SD_OK, "forward: %s", err.msg);
        memcpy(pred[k], f->pred, sizeof pred[k]);
        sd_flow_backward(f, m, g[k], d_pred, NULL, NULL, NULL, NULL);
        sd_flow_free(f);
    }
    size_t at = 0;
    EXPECT(!memcmp(pred[0], pred[1], sizeof pred[0]), "float16 inputs predict otherwise");
    const double e = sd_max_rel_err_f(g[1], g[0], m->table.total, 1e-3, &at);
    EXPECT(e <= 1e-5, "float16 inputs: gradient relative error %.3g at %zu", e, at);
    half.in.dtype[1] = SD_DTYPE_F64;
    sd_flow *f = sd_flow_new();
    sd_error err;
    EXPECT(sd_flow_forward(f, m, &half.in, 0, 0, NULL, &err) == SD_E_ARG && strstr(err.msg, "F64"),
           "float64 inputs accepted: %s", err.msg);
    sd_flow_free(f);
    for (int k = 0; k < 3; k++) free(h[k]);
    sd_free(g[0]);
    sd_free(g[1]);
    free_batch(&sb);
    sd_model_free(m);
}

static void test_save_load_round_trip(void) {
    sd_model *m = make(7, 9, 5, 16, 1, 3);
    m->cfg.mask = 0;
    m->cfg.p_mlp = 0.25f;
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", sd_test_tmpdir());
    sd_error err;
    EXPECT(sd_model_save(m, path, &err) == SD_OK, "save: %s", err.msg);
    sd_model *l = NULL;
    EXPECT(sd_model_load(path, &l, &err) == SD_OK, "load: %s", err.msg);
    if (!l) return;
    EXPECT(l->cfg.mask == 0 && l->cfg.mia == 1 && l->cfg.hidden == 16 && l->cfg.p_mlp == 0.25f &&
               l->cfg.dim[1] == 9 && l->cfg.seed == 3 && !strcmp(l->cfg.preset, "paper"),
           "configuration not restored");
    EXPECT(!memcmp(m->params, l->params, m->table.total * sizeof(float)), "parameters differ");
    small_batch sb;
    make_batch(&sb, m);
    float p1[3], p2[3];
    for (int missing = 0; missing < 2; missing++) {
        predict(m, &sb, missing, p1);
        predict(l, &sb, missing, p2);
        EXPECT(!memcmp(p1, p2, sizeof p1), "predictions differ after reload (flow %d)", missing);
    }
    free_batch(&sb);
    sd_model_free(m);
    sd_model_free(l);
}

/* Writes m's tensors under new names / without metadata, skipping or reshaping one. */
static void write_variant(const sd_model *m, const char *path, const char *prefix, const char *skip,
                          const char *reshape, int with_meta) {
    sd_st_writer *w = sd_st_writer_new();
    sd_error err;
    for (int i = 0; i < m->table.count; i++) {
        const sd_tensor_spec *s = &m->table.specs[i];
        if (skip && !strcmp(s->name, skip)) continue;
        char name[300];
        snprintf(name, sizeof name, "%s%s", prefix, s->name);
        int64_t shape[4];
        memcpy(shape, s->shape, sizeof shape);
        int ndim = s->ndim;
        if (reshape && !strcmp(s->name, reshape)) { /* same numel, other shape */
            shape[0] = (int64_t)s->numel;
            ndim = 1;
        }
        sd_st_writer_add(w, name, SD_DTYPE_F32, ndim, shape, m->params + s->offset, &err);
    }
    if (with_meta) sd_st_writer_set_metadata(w, "format", "sdumc", &err);
    EXPECT(sd_st_writer_write(w, path, &err) == SD_OK, "write variant: %s", err.msg);
    sd_st_writer_free(w);
}

static void test_loads_pytorch_state_dict(void) {
    sd_model *m = make(7, 9, 5, 16, 1, 4);
    m->params[m->table.specs[sd_params_find(&m->table, "fc_out_e.weight")].offset] = 42.0f;
    char path[600], path2[600];
    snprintf(path, sizeof path, "%s/converted.safetensors", sd_test_tmpdir());
    snprintf(path2, sizeof path2, "%s/resaved.safetensors", sd_test_tmpdir());
    write_variant(m, path, "module.", NULL, NULL, 0);
    sd_model *l = NULL;
    sd_error err;
    EXPECT(sd_model_load(path, &l, &err) == SD_OK, "load converted: %s", err.msg);
    if (!l) return;
    /* The MIA tensors are there (the reference module registers them), but a file without sdumc
     * metadata runs as the released code ran: MIA off, unless the loader is told otherwise. */
    EXPECT(l->cfg.dim[0] == 7 && l->cfg.dim[1] == 9 && l->cfg.dim[2] == 5 && l->cfg.hidden == 16 &&
               l->cfg.mia == 0 && l->cfg.mask == 1 && l->mia_source == SD_MIA_FROM_DEFAULT,
           "dims not inferred, or MIA not off by default (mia %d, source %d)", l->cfg.mia, l->mia_source);
    EXPECT(!memcmp(m->params, l->params, m->table.total * sizeof(float)), "values differ");
    /* Unused tensors are kept on save. */
    EXPECT(sd_model_save(l, path2, &err) == SD_OK, "resave: %s", err.msg);
    sd_model *l2 = NULL;
    EXPECT(sd_model_load(path2, &l2, &err) == SD_OK, "reload: %s", err.msg);
    if (l2) {
        EXPECT(l2->params[l2->table.specs[sd_params_find(&l2->table, "fc_out_e.weight")].offset] == 42.0f,
               "unused tensor fc_out_e not kept");
        sd_model_free(l2);
    }
    sd_model_free(l);
    sd_model_load_opts on = sd_model_default_load_opts(), no_mia = sd_model_default_load_opts();
    on.mia = 1;
    no_mia.mia = 0;
    EXPECT(sd_model_load_with(path, &on, &l, &err) == SD_OK, "load converted, MIA on: %s", err.msg);
    if (l) {
        EXPECT(l->cfg.mia == 1 && l->mia_source == SD_MIA_FROM_OVERRIDE, "MIA on not applied");
        EXPECT(!memcmp(m->params, l->params, m->table.total * sizeof(float)), "values differ (MIA on)");
        sd_model_free(l);
    }
    /* A file with sdumc metadata keeps its setting (the resaved file says MIA off) unless overridden. */
    EXPECT(sd_model_load(path2, &l, &err) == SD_OK && l->cfg.mia == 0 && l->mia_source == SD_MIA_FROM_METADATA,
           "metadata MIA setting not kept");
    sd_model_free(l);
    EXPECT(sd_model_load_with(path2, &on, &l, &err) == SD_OK && l->cfg.mia == 1 &&
               l->mia_source == SD_MIA_FROM_OVERRIDE,
           "metadata MIA setting not overridden: %s", err.msg);
    sd_model_free(l);
    EXPECT(sd_model_save(m, path2, &err) == SD_OK, "save MIA model: %s", err.msg); /* metadata MIA on */
    EXPECT(sd_model_load(path2, &l, &err) == SD_OK && l->cfg.mia == 1, "metadata MIA on not kept");
    sd_model_free(l);
    EXPECT(sd_model_load_with(path2, &no_mia, &l, &err) == SD_OK && l->cfg.mia == 0, "MIA off not applied");
    sd_model_free(l);
    /* Without the MIA tensors: MIA off, and MIA on is an error naming them. */
    sd_model *off = make(7, 9, 5, 16, 0, 4);
    sd_st_writer *w = sd_st_writer_new();
    for (int i = 0; i < off->table.count; i++) {
        const sd_tensor_spec *s = &off->table.specs[i];
        if (strstr(s->name, "imagination")) continue;
        sd_st_writer_add(w, s->name, SD_DTYPE_F32, s->ndim, s->shape, off->params + s->offset, &err);
    }
    sd_st_writer_write(w, path, &err);
    sd_st_writer_free(w);
    EXPECT(sd_model_load(path, &l, &err) == SD_OK, "load without MIA: %s", err.msg);
    if (l) {
        EXPECT(l->cfg.mia == 0, "MIA should be off");
        sd_model_free(l);
    }
    EXPECT(sd_model_load_with(path, &on, &l, &err) == SD_E_SHAPE && l == NULL, "MIA on without its tensors loaded");
    EXPECT(strstr(err.msg, "lacks 16 MIA tensors") && strstr(err.msg, "missing_text_imagination_mlp.transition.0.weight") &&
               strstr(err.msg, "missing_cross_text_query_imagination_mlp.decoder_0.0.bias") && strstr(err.msg, path),
           "message does not name the MIA tensors: %s", err.msg);
    sd_model_free(off);
    sd_model_free(m);
}

static void expect_load_error(const char *path, const char *needle1, const char *needle2) {
    sd_model *l = NULL;
    sd_error err;
    sd_status s = sd_model_load(path, &l, &err);
    EXPECT(s != SD_OK && l == NULL, "%s loaded", path);
    if (s != SD_OK) {
        EXPECT(strstr(err.msg, needle1) != NULL, "message '%s' lacks '%s'", err.msg, needle1);
        if (needle2) EXPECT(strstr(err.msg, needle2) != NULL, "message '%s' lacks '%s'", err.msg, needle2);
        EXPECT(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
    }
    sd_model_free(l);
}

static void test_bad_model_files(void) {
    sd_model *m = make(7, 9, 5, 16, 1, 5);
    char path[600];
    snprintf(path, sizeof path, "%s/bad.safetensors", sd_test_tmpdir());
    write_variant(m, path, "", "audio_mlp.3.weight", NULL, 0);
    expect_load_error(path, "missing tensor audio_mlp.3.weight", "[16, 16]");
    write_variant(m, path, "", NULL, "fc_att.weight", 0);
    expect_load_error(path, "fc_att.weight has shape [48]", "expected [3, 16]");
    /* Truncated: a good file cut short. */
    write_variant(m, path, "", NULL, NULL, 1);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    EXPECT(fread(bytes, 1, (size_t)size, f) == (size_t)size, "read back");
    fclose(f);
    sd_test_write_file(path, bytes, (size_t)size - 100);
    expect_load_error(path, path, NULL);
    /* sdumc metadata claiming a format but lacking the dims. */
    write_variant(m, path, "", NULL, NULL, 1);
    expect_load_error(path, "lacks \"dim_audio\"", NULL);
    /* Not a model at all. */
    sd_test_write_file(path, "hello", 5);
    expect_load_error(path, path, NULL);
    /* A wrong dtype: patch the first "F32" in the header to "I32". */
    write_variant(m, path, "module.", NULL, NULL, 0);
    f = fopen(path, "rb");
    size_t n = fread(bytes, 1, (size_t)size, f);
    fclose(f);
    char *hit = NULL;
    for (size_t i = 8; i + 3 < n && !hit; i++)
        if (!memcmp(bytes + i, "F32", 3)) hit = bytes + i;
    if (hit) memcpy(hit, "I32", 3);
    sd_test_write_file(path, bytes, n);
    expect_load_error(path, "I32", NULL);
    free(bytes);
    expect_load_error("/nonexistent/model.safetensors", "/nonexistent/model.safetensors", NULL);
    sd_model_free(m);
}

int main(void) {
    sd_test_run("model.param_counts_at_mosei_dims", test_param_counts_at_mosei_dims);
    sd_test_run("model.names_match_model_md_appendix", test_names_match_model_md_appendix);
    sd_test_run("model.init_follows_pytorch_defaults", test_init_follows_pytorch_defaults);
    sd_test_run("model.concurrent_branches_match_one_thread", test_concurrent_branches_match_one_thread);
    sd_test_run("model.prepare_inference", test_prepare_inference);
    sd_test_run("model.frames_half_inputs", test_frames_half_inputs);
    sd_test_run("model.frames_standardised", test_frames_standardised);
    sd_test_run("model.flow_half_inputs", test_flow_half_inputs);
    sd_test_run("model.save_load_round_trip", test_save_load_round_trip);
    sd_test_run("model.loads_pytorch_state_dict", test_loads_pytorch_state_dict);
    sd_test_run("model.bad_model_files", test_bad_model_files);
    return sd_test_finish();
}
