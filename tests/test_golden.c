/* Golden parity with the independent PyTorch implementation (tests/reference/sdumc_ref.py):
 * predictions, the four embeddings of both flows, the six loss terms, every parameter
 * gradient of the full training loss, and the parameters after one Adam step, for MIA on/off x
 * masked/no-mask. Fixtures: tests/fixtures/golden/ (see its README).
 *
 * Usage: test_golden [--model MODEL.safetensors] [FIXTURE.safetensors ...]  (default: the four
 * committed fixtures). With --model, the parameters come from that model file (e.g. a PyTorch
 * checkpoint converted by tools/pt2safetensors.py) instead of the fixture's param.* tensors.
 * Comparison: per element |c - r| / max(|r|, 1e-2 * max|r| over the tensor, floor); the limit is
 * 1e-4. floor is 0 except for gradients, where it is 1e-3 * the largest gradient element of the
 * whole model: some gradients are analytically zero (the RnC loss is translation invariant, so
 * orgin_linear_change.2.bias gets none), PyTorch stores ~1e-18 and float32 ~1e-9 there, and a
 * relative error of such a tensor against itself means nothing.
 * The parameters after one Adam step are compared against the tensor's own scale (max|r|): the
 * first Adam step is sign-like (-lr g'/(|g'| + eps)), so wherever |g'| is within a few orders of
 * eps it amplifies the float32 rounding of the gradient (seen at hidden 256: 1e-7 absolute on
 * parameters of scale 6e-2, i.e. 2e-6 of the tensor, but 1e-3 of a parameter that is near 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "harness.h"
#include "io/safetensors.h"
#include "model/flow.h"
#include "optim/adam.h"
#include "train/objective.h"

#define GOLDEN_TOL 1e-4

static const char *fixture_path;
static double worst_seen;
static double abs_floor;            /* see the comparison rule above */
static double scale_floor = 1e-2;   /* fraction of max|r| below which |r| is not the denominator */

/* Compares n floats with the fixture tensor `name` (any float dtype); reports the first miss. */
static void compare(const sd_safetensors *st, const char *name, const float *got, size_t n) {
    const sd_st_tensor *t = sd_st_find(st, name);
    if (!t) {
        EXPECT(0, "%s: fixture has no tensor %s", fixture_path, name);
        return;
    }
    if (t->numel != n) {
        EXPECT(0, "%s: %s has %zu elements, C computed %zu", fixture_path, name, t->numel, n);
        return;
    }
    float *ref = malloc(n * sizeof *ref);
    sd_error err;
    if (sd_st_read_f32(st, t, ref, &err)) {
        EXPECT(0, "%s", err.msg);
        free(ref);
        return;
    }
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) /
                   fmax(fabs(ref[i]), fmax(fmax(scale_floor * scale, abs_floor), 1e-30));
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    if (worst > worst_seen) worst_seen = worst;
    EXPECT(worst <= GOLDEN_TOL, "%s: %s differs: element %zu is %.9g, PyTorch %.9g (rel err %.3g)",
           fixture_path, name, at, (double)got[at], (double)ref[at], worst);
    free(ref);
}

static int meta_i(const sd_safetensors *st, const char *key) {
    const char *v = sd_st_metadata_get(st, key);
    return v ? atoi(v) : -1;
}
static float meta_f(const sd_safetensors *st, const char *key) {
    const char *v = sd_st_metadata_get(st, key);
    return v ? strtof(v, NULL) : 0.0f;
}

/* Reads an input tensor into a fresh float buffer; *shape gets its dims. */
static float *input(const sd_safetensors *st, const char *name, int64_t *shape) {
    const sd_st_tensor *t = sd_st_find(st, name);
    if (!t) return NULL;
    float *x = sd_alloc(t->numel * sizeof *x + 1);
    sd_error err;
    if (sd_st_read_f32(st, t, x, &err)) {
        sd_free(x);
        return NULL;
    }
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    return x;
}

typedef struct {
    float *x[4]; /* audio, text, video, sim */
    int *len[4];
    int T[4];
    float *label;
    int B;
} golden_inputs;

static int load_inputs(const sd_safetensors *st, golden_inputs *g) {
    const char *names[4] = {"in.audio", "in.text", "in.video", "in.sim"};
    const char *lens[4] = {"in.audio_len", "in.text_len", "in.video_len", "in.sim_len"};
    int64_t shape[4];
    for (int i = 0; i < 4; i++) {
        g->x[i] = input(st, names[i], shape);
        if (!g->x[i]) return -1;
        g->B = (int)shape[0];
        g->T[i] = (int)shape[1];
        float *l = input(st, lens[i], shape);
        if (!l) return -1;
        g->len[i] = malloc((size_t)g->B * sizeof(int));
        for (int b = 0; b < g->B; b++) g->len[i][b] = (int)l[b];
        sd_free(l);
    }
    g->label = input(st, "in.label", shape);
    return g->label ? 0 : -1;
}

static void free_inputs(golden_inputs *g) {
    for (int i = 0; i < 4; i++) {
        sd_free(g->x[i]);
        free(g->len[i]);
    }
    sd_free(g->label);
}

static sd_flow_input flow_input(const golden_inputs *g, int text_slot) {
    sd_flow_input in = {g->B, {g->x[0], g->x[text_slot], g->x[2]}, {g->T[0], g->T[text_slot], g->T[2]},
                        {g->len[0], g->len[text_slot], g->len[2]},
                        {SD_DTYPE_F32, SD_DTYPE_F32, SD_DTYPE_F32}};
    return in;
}

static const char *model_override; /* --model */

/* The fixture's model: its configuration, dropout 0, and the param.* tensors (or the --model file). */
static sd_model *fixture_model(const sd_safetensors *st, const char *path) {
    sd_error err;
    sd_model_config cfg = sd_model_default_config(meta_i(st, "dim_a"), meta_i(st, "dim_t"), meta_i(st, "dim_v"));
    cfg.hidden = meta_i(st, "hidden");
    cfg.mia = meta_i(st, "mia");
    cfg.mask = meta_i(st, "mask");
    sd_model *m = NULL;
    if (model_override) {
        if (sd_model_load(model_override, &m, &err)) {
            EXPECT(0, "%s", err.msg);
            return NULL;
        }
        EXPECT(m->cfg.hidden == cfg.hidden && m->cfg.mia == cfg.mia && m->cfg.dim[0] == cfg.dim[0] &&
                   m->cfg.dim[1] == cfg.dim[1] && m->cfg.dim[2] == cfg.dim[2],
               "%s: configuration inferred from %s differs from the fixture's", path, model_override);
        m->cfg.mask = cfg.mask;
        m->cfg.p_mlp = m->cfg.p_att = 0.0f;
        return m;
    }
    cfg.p_mlp = cfg.p_att = 0.0f;
    if (sd_model_alloc(&cfg, &m, &err)) {
        EXPECT(0, "%s: %s", path, err.msg);
        return NULL;
    }
    char name[256];
    for (int i = 0; i < m->table.count; i++) {
        const sd_tensor_spec *s = &m->table.specs[i];
        snprintf(name, sizeof name, "param.%s", s->name);
        const sd_st_tensor *t = sd_st_find(st, name);
        EXPECT(t && t->numel == s->numel, "%s: fixture lacks %s or its size differs", path, name);
        if (t && t->numel == s->numel) sd_st_read_f32(st, t, m->params + s->offset, &err);
    }
    return m;
}

static void check_fixture(const char *path) {
    fixture_path = path;
    sd_error err;
    sd_safetensors *st = NULL;
    if (sd_st_open(path, &st, &err)) {
        EXPECT(0, "cannot open fixture: %s", err.msg);
        return;
    }
    sd_model *m = fixture_model(st, path);
    if (!m) {
        sd_st_close(st);
        return;
    }
    const sd_model_config cfg = m->cfg;
    char name[256];
    golden_inputs g;
    memset(&g, 0, sizeof g);
    if (load_inputs(st, &g)) {
        EXPECT(0, "%s: missing inputs", path);
        goto done;
    }
    sd_flow_input full = flow_input(&g, 1), miss = flow_input(&g, 3);
    sd_loss_weights w = {meta_f(st, "w_full"), meta_f(st, "w_miss"), meta_f(st, "w_tf"),
                         meta_f(st, "w_tq"),   meta_f(st, "w_f"),    meta_f(st, "w_rnc")};
    sd_objective *o = sd_objective_new();
    float *grads = sd_params_alloc_buffer(&m->table);
    sd_loss_terms terms;
    sd_status s = sd_objective_run(o, m, &full, &miss, g.label, &w, 0, NULL, grads, &terms, &err);
    EXPECT(s == SD_OK, "%s: objective failed: %s", path, err.msg);
    if (s == SD_OK) {
        const size_t B = (size_t)g.B, H = (size_t)cfg.hidden, C = H / 2, R = H / 4, K = SD_QUERY_VIEWS;
        const char *flow_name[2] = {"full", "miss"};
        for (int f = 0; f < 2; f++) {
            sd_flow *fl = o->flow[f];
            snprintf(name, sizeof name, "out.%s.pred", flow_name[f]);
            compare(st, name, fl->pred, B);
            snprintf(name, sizeof name, "out.%s.z", flow_name[f]);
            compare(st, name, fl->z, B * C);
            snprintf(name, sizeof name, "out.%s.r", flow_name[f]);
            compare(st, name, fl->r, B * R);
            snprintf(name, sizeof name, "out.%s.q_t", flow_name[f]);
            compare(st, name, sd_flow_q_t(fl), B * H);
            snprintf(name, sizeof name, "out.%s.c_t", flow_name[f]);
            compare(st, name, fl->C_t, B * K * C);
        }
        const char *term_name[7] = {"loss.full", "loss.miss", "loss.tf", "loss.tq",
                                    "loss.f",    "loss.rnc",  "loss.total"};
        double term_value[7] = {terms.full, terms.miss, terms.tf, terms.tq, terms.f, terms.rnc, terms.total};
        for (int k = 0; k < 7; k++) {
            float v = (float)term_value[k];
            compare(st, term_name[k], &v, 1);
        }
        unsigned char *used = calloc((size_t)m->table.count, 1);
        double grad_scale = 0.0;
        for (size_t k = 0; k < m->table.total; k++) grad_scale = fmax(grad_scale, fabs(grads[k]));
        abs_floor = 1e-3 * grad_scale;
        for (int i = 0; i < m->table.count; i++) {
            const sd_tensor_spec *sp = &m->table.specs[i];
            used[i] = (unsigned char)sd_model_tensor_used(m, i);
            snprintf(name, sizeof name, "grad.%s", sp->name);
            int has = sd_st_find(st, name) != NULL;
            EXPECT(has == used[i], "%s: %s: PyTorch %s a gradient, sdumc says it is %sused", path,
                   sp->name, has ? "has" : "has no", used[i] ? "" : "un");
            if (has) {
                compare(st, name, grads + sp->offset, sp->numel);
            } else {
                for (size_t k = 0; k < sp->numel; k++)
                    if (grads[sp->offset + k] != 0.0f) {
                        EXPECT(0, "%s: unused tensor %s got a gradient", path, sp->name);
                        break;
                    }
            }
        }
        abs_floor = 0.0;
        /* One Adam step on that gradient. */
        sd_adam_config ac = sd_adam_default_config();
        ac.weight_decay = meta_f(st, "adam_weight_decay");
        float lr = meta_f(st, "adam_lr");
        float *am = sd_params_alloc_buffer(&m->table), *av = sd_params_alloc_buffer(&m->table);
        sd_adam_step_table(&m->table, used, m->params, grads, am, av, &ac, lr, 1);
        scale_floor = 1.0;
        for (int i = 0; i < m->table.count; i++) {
            if (!used[i]) continue;
            snprintf(name, sizeof name, "adam.%s", m->table.specs[i].name);
            compare(st, name, m->params + m->table.specs[i].offset, m->table.specs[i].numel);
        }
        scale_floor = 1e-2;
        sd_free(am);
        sd_free(av);
        free(used);
    }
    sd_free(grads);
    sd_objective_free(o);
done:
    free_inputs(&g);
    sd_model_free(m);
    sd_st_close(st);
}

/* Masked mode: each sample alone (B = 1, no padding) predicts what it predicts inside the padded
 * batch; no-mask mode: at least one sample's prediction changes (the released code's behaviour). */
static void check_alone_vs_batch(const char *path, int expect_equal) {
    sd_error err;
    sd_safetensors *st = NULL;
    if (sd_st_open(path, &st, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    sd_model *m = fixture_model(st, path);
    golden_inputs g;
    memset(&g, 0, sizeof g);
    if (!m || load_inputs(st, &g)) {
        EXPECT(0, "%s: cannot set up", path);
        goto done;
    }
    const sd_model_config cfg = m->cfg;
    sd_flow *batch = sd_flow_new(), *alone = sd_flow_new();
    double worst = 0.0;
    for (int text_slot = 1; text_slot <= 3; text_slot += 2) {
        sd_flow_input in = flow_input(&g, text_slot);
        int missing = text_slot == 3;
        EXPECT(sd_flow_forward(batch, m, &in, missing, 0, NULL, &err) == SD_OK, "%s", err.msg);
        for (int b = 0; b < g.B; b++) {
            sd_flow_input one;
            memset(&one, 0, sizeof one);
            one.B = 1;
            int mods[3] = {0, text_slot, 2};
            for (int k = 0; k < 3; k++) {
                int D = cfg.dim[k];
                one.T[k] = g.len[mods[k]][b];
                one.len[k] = &g.len[mods[k]][b];
                one.x[k] = g.x[mods[k]] + (size_t)b * (size_t)g.T[mods[k]] * (size_t)D;
            }
            EXPECT(sd_flow_forward(alone, m, &one, missing, 0, NULL, &err) == SD_OK, "%s", err.msg);
            worst = fmax(worst, sd_rel_err(alone->pred[0], batch->pred[b], 1e-3));
        }
    }
    if (expect_equal)
        EXPECT(worst < 1e-5, "%s: masked mode: a sample alone differs from the batch (rel %g)", path, worst);
    else
        EXPECT(worst > 1e-3, "%s: no-mask mode: padding should change predictions (rel %g)", path, worst);
    sd_flow_free(batch);
    sd_flow_free(alone);
done:
    free_inputs(&g);
    sd_model_free(m);
    sd_st_close(st);
}

static const char *default_fixtures[4] = {
    "tests/fixtures/golden/golden_mia0_mask0.safetensors", "tests/fixtures/golden/golden_mia0_mask1.safetensors",
    "tests/fixtures/golden/golden_mia1_mask0.safetensors", "tests/fixtures/golden/golden_mia1_mask1.safetensors"};
static const char **fixtures = default_fixtures;
static int n_fixtures = 4;
static int current;

static void test_fixture(void) {
    worst_seen = 0.0;
    check_fixture(fixtures[current]);
    printf("  %s: worst relative error %.3g (limit %g)\n", fixtures[current], worst_seen, GOLDEN_TOL);
}

static void test_alone_vs_batch(void) {
    check_alone_vs_batch(default_fixtures[1], 1);
    check_alone_vs_batch(default_fixtures[3], 1);
    check_alone_vs_batch(default_fixtures[0], 0);
    check_alone_vs_batch(default_fixtures[2], 0);
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--model")) {
        model_override = argv[2];
        first = 3;
    }
    if (argc > first) {
        fixtures = (const char **)(argv + first);
        n_fixtures = argc - first;
    }
    for (current = 0; current < n_fixtures; current++) {
        char name[300];
        const char *base = strrchr(fixtures[current], '/');
        snprintf(name, sizeof name, "golden.%s", base ? base + 1 : fixtures[current]);
        sd_test_run(name, test_fixture);
    }
    if (argc == first) sd_test_run("golden.alone_vs_padded_batch", test_alone_vs_batch);
    return sd_test_finish();
}
