/* Adam (src/optim/adam.h): closed-form first steps, untouched unused tensors, the epoch
 * schedule, a 10-step replay of torch.optim.Adam from a committed fixture
 * (tests/fixtures/adam/adam_10steps.txt, written by tests/reference/make_adam_fixture.py),
 * and least-squares problems solved to their known optimum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/params.h"
#include "core/threads.h"
#include "harness.h"
#include "optim/adam.h"

#define FIXTURE "tests/fixtures/adam/adam_10steps.txt"

/* ---- closed form ------------------------------------------------------------------------ */

/* Step 1 from zero moments: m^ = g', v^ = g'^2, so p1 = p0 - lr g' / (|g'| + eps) with
 * g' = g + wd p0 (about -lr sign(g') unless |g'| is near eps). */
static void test_first_step_closed_form(void) {
    sd_adam_config c = sd_adam_default_config();
    c.weight_decay = 0.5f;
    const float lr = 1e-3f;
    /* includes: g' sign flipped by the decay (p 1, g -0.1 -> g' 0.4), g' == 0 exactly,
     * |g'| == eps (moves by lr/2) and large gradients. */
    float p[6] = {1.0f, -0.75f, 2.0f, 0.3f, 0.0f, -4.0f};
    float g[6] = {-0.1f, 0.2f, -1.0f, 7.0f, 1e-8f, 1e3f};
    float m[6] = {0}, v[6] = {0}, p0[6];
    memcpy(p0, p, sizeof p);
    sd_adam_update(p, g, m, v, 6, &c, lr, 1);
    for (int i = 0; i < 6; i++) {
        double gp = (double)g[i] + (double)c.weight_decay * (double)p0[i];
        double expect = (double)p0[i] - (double)lr * gp / (fabs(gp) + (double)c.eps);
        /* float arithmetic: a few ulp of |p| */
        double tol = 4e-7 * fmax(fabs((double)p0[i]), 1e-3);
        EXPECT(fabs((double)p[i] - expect) <= tol, "p[%d] = %.9g, closed form %.9g (g' = %g)", i,
               (double)p[i], expect, gp);
        EXPECT(fabs((double)m[i] - 0.1 * gp) <= 1e-6 * fabs(gp) + 1e-30, "m[%d] = %g", i, (double)m[i]);
        EXPECT(fabs((double)v[i] - 0.001 * gp * gp) <= 2e-5 * gp * gp + 1e-35, "v[%d] = %g", i,
               (double)v[i]);
    }
    /* spot values: p 1, g -0.1, wd 0.5 -> g' 0.4 > 0: moves DOWN by lr (an AdamW step would
     * move it up); g' = 0: no move; |g'| = eps: half a step. */
    EXPECT(fabs(p[0] - (1.0f - lr)) < 1e-7f, "decayed sign: %.9g", (double)p[0]);
    EXPECT(fabs((double)p[4] + 0.5 * (double)lr) < 1e-9, "eps half step: %g", (double)p[4]);
    EXPECT(p[2] == 2.0f, "g' = 0 moved the parameter: %.9g", (double)p[2]);
}

/* A constant gradient keeps moving by lr per step (bias corrections exact at every t). */
static void test_constant_gradient_steps(void) {
    sd_adam_config c = sd_adam_default_config();
    c.weight_decay = 0.0f;
    float p = 0.5f, g = -0.3f, m = 0.0f, v = 0.0f;
    for (long t = 1; t <= 20; t++) {
        float before = p;
        sd_adam_update(&p, &g, &m, &v, 1, &c, 1e-2f, t);
        EXPECT(fabs((double)(p - before) - 1e-2) < 1e-6, "step %ld moved %.9g", t,
               (double)(p - before));
    }
    float q = 1.0f, mq = 0, vq = 0;
    sd_adam_update(&q, &g, &mq, &vq, 1, &c, 1e-2f, 0);
    EXPECT(q == 1.0f && mq == 0.0f && vq == 0.0f, "step 0 must do nothing");
}

static void test_unused_untouched(void) {
    sd_param_table t;
    sd_params_init(&t);
    int64_t s0[2] = {3, 4}, s1[1] = {5}, s2[1] = {2};
    EXPECT(sd_params_add(&t, "used.a", 2, s0) == 0, "add");
    EXPECT(sd_params_add(&t, "unused.mia", 1, s1) == 1, "add");
    EXPECT(sd_params_add(&t, "used.b", 1, s2) == 2, "add");
    const size_t N = t.total;
    float *p = sd_params_alloc_buffer(&t), *g = sd_params_alloc_buffer(&t);
    float *m = sd_params_alloc_buffer(&t), *v = sd_params_alloc_buffer(&t);
    float *p0 = sd_params_alloc_buffer(&t);
    for (size_t i = 0; i < N; i++) {
        p[i] = 0.1f * (float)i - 0.7f;
        g[i] = 0.05f * (float)((i * 7) % 11) - 0.2f; /* non-zero garbage in the unused slot too */
        m[i] = 0.01f * (float)i;                     /* as after earlier steps */
        v[i] = 0.001f * (float)(i + 1);
    }
    float m0[64], v0[64];
    memcpy(p0, p, N * sizeof *p);
    memcpy(m0, m, N * sizeof *m);
    memcpy(v0, v, N * sizeof *v);
    const unsigned char used[3] = {1, 0, 1};
    sd_adam_config c = sd_adam_default_config();
    sd_adam_step_table(&t, used, p, g, m, v, &c, 1e-2f, 3);
    const sd_tensor_spec *u = &t.specs[1];
    for (size_t i = 0; i < N; i++) {
        int in_unused = i >= u->offset && i < u->offset + u->numel;
        if (in_unused) {
            EXPECT(p[i] == p0[i] && m[i] == m0[i] && v[i] == v0[i], "unused element %zu touched", i);
        } else {
            EXPECT(p[i] != p0[i] && m[i] != m0[i] && v[i] != v0[i], "used element %zu not updated", i);
        }
    }
    /* the used tensors got exactly the single-tensor update */
    float q[64], mq[64], vq[64];
    memcpy(q, p0, N * sizeof *q);
    memcpy(mq, m0, N * sizeof *mq);
    memcpy(vq, v0, N * sizeof *vq);
    for (int k = 0; k < 3; k += 2) {
        size_t o = t.specs[k].offset;
        sd_adam_update(q + o, g + o, mq + o, vq + o, t.specs[k].numel, &c, 1e-2f, 3);
    }
    EXPECT(memcmp(q, p, N * sizeof *q) == 0, "table step differs from per-tensor updates");
    /* used == NULL: everything */
    memcpy(p, p0, N * sizeof *p);
    sd_adam_step_table(&t, NULL, p, g, m, v, &c, 1e-2f, 4);
    for (size_t i = u->offset; i < u->offset + u->numel; i++)
        EXPECT(p[i] != p0[i], "used == NULL skipped element %zu", i);
    sd_free(p), sd_free(g), sd_free(m), sd_free(v), sd_free(p0);
    sd_params_release(&t);
}

static void test_schedule(void) {
    /* MODEL.md: (e+1)/5 for e < 5, else 0.9 ** ((e+1-5) div 10). Hand-evaluated table. */
    static const double expect[31] = {
        0.2, 0.4, 0.6, 0.8, 1.0,                                  /* e 0..4: warm-up */
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,              /* e 5..13: (e-4) div 10 = 0 */
        0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9,         /* e 14..23: 1 */
        0.81, 0.81, 0.81, 0.81, 0.81, 0.81, 0.81};               /* e 24..30: 2 */
    for (int e = 0; e <= 30; e++) {
        double f = sd_lr_factor(e);
        EXPECT(fabs(f - expect[e]) <= 1e-15, "factor(%d) = %.17g, expected %.17g", e, f, expect[e]);
    }
    EXPECT(fabs(sd_lr_factor(34) - 0.729) < 1e-15, "factor(34) = %.17g", sd_lr_factor(34));
    EXPECT(sd_lr_factor(-1) == 0.0, "negative epoch");
    sd_adam_config c = sd_adam_default_config();
    EXPECT(c.lr == 1e-4f && c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f &&
               c.weight_decay == 1e-5f,
           "default config");
}

/* ---- torch replay ----------------------------------------------------------------------- */

typedef struct {
    char name[32];
    int count;
    double *values;
} fx_record;

typedef struct {
    fx_record *rec;
    int n, cap, cursor;
} fx_file;

static void fx_free(fx_file *f) {
    for (int i = 0; i < f->n; i++) free(f->rec[i].values);
    free(f->rec);
    memset(f, 0, sizeof *f);
}

/* Reads every "<name> <count> <values>" line; returns 0 on success. */
static int fx_load(fx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (getline(&line, &cap, fp) > 0) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 64;
            f->rec = realloc(f->rec, (size_t)f->cap * sizeof *f->rec);
            if (!f->rec) { rc = -1; break; }
        }
        fx_record *r = &f->rec[f->n];
        char *s = line, *end;
        int used = 0;
        if (sscanf(s, "%31s %d%n", r->name, &r->count, &used) != 2 || r->count < 0 ||
            r->count > 1000) { rc = -1; break; }
        s += used;
        r->values = malloc((size_t)(r->count ? r->count : 1) * sizeof(double));
        if (!r->values) { rc = -1; break; }
        f->n++;
        for (int k = 0; k < r->count; k++) {
            r->values[k] = strtod(s, &end);
            if (end == s) { rc = -1; break; }
            s = end;
        }
        if (rc) break;
    }
    free(line);
    fclose(fp);
    return rc;
}

/* The next record, which must be called name with count values. */
static const double *fx_next(fx_file *f, const char *name, int count) {
    if (f->cursor >= f->n) {
        sd_test_fail(__FILE__, __LINE__, "fixture ends before %s", name);
        return NULL;
    }
    fx_record *r = &f->rec[f->cursor++];
    if (strcmp(r->name, name) != 0 || r->count != count) {
        sd_test_fail(__FILE__, __LINE__, "fixture record %d is %s[%d], expected %s[%d]",
                     f->cursor, r->name, r->count, name, count);
        return NULL;
    }
    return r->values;
}

#define NS 8 /* samples */
#define NF 3 /* features */

/* The gradient of mean((X w + b - y)^2) in double, from the C parameters. */
static void lsq_grad(float *gw, float *gb, double *loss, const double *X, const double *y,
                     const float *w, const float *b, int ns) {
    double dw[NF] = {0}, db = 0, l = 0;
    for (int s = 0; s < ns; s++) {
        double r = (double)b[0] - y[s];
        for (int k = 0; k < NF; k++) r += X[s * NF + k] * (double)w[k];
        l += r * r;
        for (int k = 0; k < NF; k++) dw[k] += 2.0 * r * X[s * NF + k] / ns;
        db += 2.0 * r / ns;
    }
    for (int k = 0; k < NF; k++) gw[k] = (float)dw[k];
    gb[0] = (float)db;
    *loss = l / ns;
}

/* Replays one scenario with the fixture's per-step gradients (so the optimiser alone is
 * compared) and checks after every step: w, b, unused against torch (relative 1e-6); the
 * gradient the C code computes from its own parameters against torch's (1e-5); the lr the
 * fixture used (scenario 1: 1e-3 * factor(step - 1) in Python) against sd_lr_factor.
 * Returns the worst parameter error. */
static double replay_scenario(fx_file *f, int sid) {
    const double *v;
    double worst = 0.0;
    if (!(v = fx_next(f, "scenario", 1)) || v[0] != sid) return INFINITY;
    if (!(v = fx_next(f, "config", 5))) return INFINITY;
    sd_adam_config c = {(float)v[0], (float)v[1], (float)v[2], (float)v[3], (float)v[4]};
    const double base_lr = v[0];
    double X[NS * NF], y[NS];
    if (!(v = fx_next(f, "x", NS * NF))) return INFINITY;
    memcpy(X, v, sizeof X);
    if (!(v = fx_next(f, "y", NS))) return INFINITY;
    memcpy(y, v, sizeof y);

    sd_param_table t;
    sd_params_init(&t);
    int64_t sw[2] = {1, NF}, sb[1] = {1}, su[1] = {2};
    sd_params_add(&t, "w", 2, sw);
    sd_params_add(&t, "b", 1, sb);
    sd_params_add(&t, "unused", 1, su);
    float *P = sd_params_alloc_buffer(&t), *G = sd_params_alloc_buffer(&t);
    float *M = sd_params_alloc_buffer(&t), *V = sd_params_alloc_buffer(&t);
    const unsigned char used[3] = {1, 1, 0};
    const char *init_names[3] = {"init_w", "init_b", "init_unused"};
    const char *names[3] = {"w", "b", "unused"};
    for (int k = 0; k < 3; k++) {
        if (!(v = fx_next(f, init_names[k], (int)t.specs[k].numel))) goto done;
        for (size_t e = 0; e < t.specs[k].numel; e++) P[t.specs[k].offset + e] = (float)v[e];
    }
    G[t.specs[2].offset] = 3.0f; /* garbage gradient for the unused tensor: must be ignored */
    G[t.specs[2].offset + 1] = -3.0f;
    for (long step = 1; step <= 10; step++) {
        if (!(v = fx_next(f, "lr", 1))) goto done;
        const double lr = v[0];
        if (sid == 1) {
            double mine = 1e-3 * sd_lr_factor((int)step - 1);
            EXPECT(fabs(mine - lr) <= 1e-15 * lr, "scenario %d step %ld: lr %.17g, python %.17g",
                   sid, step, mine, lr);
        } else {
            EXPECT(lr == base_lr, "scenario 0 lr changes");
        }
        if (!(v = fx_next(f, "loss", 1))) goto done;
        const double torch_loss = v[0];
        float cgw[NF], cgb[1];
        double closs;
        lsq_grad(cgw, cgb, &closs, X, y, P, P + t.specs[1].offset, NS);
        EXPECT(sd_rel_err(closs, torch_loss, 1e-6) < 1e-5, "step %ld loss C %.9g torch %.9g", step,
               closs, torch_loss);
        if (!(v = fx_next(f, "grad_w", NF))) goto done;
        for (int k = 0; k < NF; k++) {
            G[k] = (float)v[k];
            EXPECT(sd_rel_err(cgw[k], v[k], 1e-3) < 1e-5, "step %ld grad_w[%d] C %.9g torch %.9g",
                   step, k, (double)cgw[k], v[k]);
        }
        if (!(v = fx_next(f, "grad_b", 1))) goto done;
        G[t.specs[1].offset] = (float)v[0];
        EXPECT(sd_rel_err(cgb[0], v[0], 1e-3) < 1e-5, "step %ld grad_b C %.9g torch %.9g", step,
               (double)cgb[0], v[0]);

        sd_adam_step_table(&t, used, P, G, M, V, &c, (float)lr, step);

        for (int k = 0; k < 3; k++) {
            if (!(v = fx_next(f, names[k], (int)t.specs[k].numel))) goto done;
            for (size_t e = 0; e < t.specs[k].numel; e++) {
                double got = P[t.specs[k].offset + e];
                double err = sd_rel_err(got, v[e], 1e-2);
                if (err > worst) worst = err;
                EXPECT(err < 1e-6, "scenario %d step %ld %s[%zu]: C %.9g torch %.9g (rel %.2e)", sid,
                       step, names[k], e, got, v[e], err);
            }
        }
    }
done:
    sd_free(P), sd_free(G), sd_free(M), sd_free(V);
    sd_params_release(&t);
    return worst;
}

static void test_torch_replay(void) {
    fx_file f;
    if (fx_load(&f, FIXTURE) != 0) {
        sd_test_fail(__FILE__, __LINE__, "cannot read %s (run from the repository root)", FIXTURE);
        fx_free(&f);
        return;
    }
    for (int sid = 0; sid < 2; sid++) {
        double worst = replay_scenario(&f, sid);
        printf("  adam vs torch, scenario %d: worst parameter rel. error over 10 steps %.3e\n", sid,
               worst);
    }
    EXPECT(f.cursor == f.n, "fixture has %d unread records", f.n - f.cursor);
    fx_free(&f);
}

/* ---- convergence ------------------------------------------------------------------------ */

/* Solves A x = r (4x4, partial pivoting). */
static void solve4(double A[4][4], double r[4], double x[4]) {
    for (int col = 0; col < 4; col++) {
        int piv = col;
        for (int i = col + 1; i < 4; i++)
            if (fabs(A[i][col]) > fabs(A[piv][col])) piv = i;
        for (int j = 0; j < 4; j++) {
            double tmp = A[col][j];
            A[col][j] = A[piv][j];
            A[piv][j] = tmp;
        }
        double tmp = r[col];
        r[col] = r[piv];
        r[piv] = tmp;
        for (int i = col + 1; i < 4; i++) {
            double fct = A[i][col] / A[col][col];
            for (int j = col; j < 4; j++) A[i][j] -= fct * A[col][j];
            r[i] -= fct * r[col];
        }
    }
    for (int i = 3; i >= 0; i--) {
        double s = r[i];
        for (int j = i + 1; j < 4; j++) s -= A[i][j] * x[j];
        x[i] = s / A[i][i];
    }
}

/* Adam on mean((X w + b - y)^2) reaches the minimiser of loss + (wd/2) |theta|^2 (L2 decay
 * in the gradient: theta* solves (2/N A^T A + wd I) theta = 2/N A^T y, A = [X 1]); with
 * wd = 0 that is the exact generating (w, b). */
static void run_regression(float wd, double *worst_out) {
    enum { N = 32 };
    const double w_true[NF] = {0.7, -1.3, 0.4}, b_true = 0.25;
    double X[N * NF], y[N];
    unsigned s = 12345u;
    for (int i = 0; i < N * NF; i++) {
        s = s * 1103515245u + 12345u; /* any fixed spread of inputs will do */
        X[i] = ((double)((s >> 8) % 2001) - 1000.0) / 500.0;
    }
    for (int i = 0; i < N; i++) {
        y[i] = b_true;
        for (int k = 0; k < NF; k++) y[i] += X[i * NF + k] * w_true[k];
    }
    double A[4][4] = {{0}}, r[4] = {0}, theta[4];
    for (int i = 0; i < N; i++) {
        double a[4] = {X[i * NF], X[i * NF + 1], X[i * NF + 2], 1.0};
        for (int p = 0; p < 4; p++) {
            for (int q = 0; q < 4; q++) A[p][q] += 2.0 * a[p] * a[q] / N;
            r[p] += 2.0 * a[p] * y[i] / N;
        }
    }
    for (int p = 0; p < 4; p++) A[p][p] += wd;
    solve4(A, r, theta);
    if (wd == 0.0f) {
        for (int k = 0; k < NF; k++) EXPECT(fabs(theta[k] - w_true[k]) < 1e-9, "normal equations");
        EXPECT(fabs(theta[3] - b_true) < 1e-9, "normal equations b");
    }

    float P[4] = {0}, G[4], M[4] = {0}, V[4] = {0};
    sd_adam_config c = sd_adam_default_config();
    c.weight_decay = wd;
    for (long step = 1; step <= 6000; step++) {
        double loss;
        lsq_grad(G, G + NF, &loss, X, y, P, P + NF, N);
        float lr = step <= 3000 ? 1e-2f : step <= 5000 ? 1e-3f : 1e-4f;
        sd_adam_update(P, G, M, V, 4, &c, lr, step);
    }
    double worst = 0;
    for (int k = 0; k < 4; k++) worst = fmax(worst, fabs((double)P[k] - theta[k]));
    *worst_out = worst;
    EXPECT(worst < 2e-4, "wd %g: |theta - theta*| = %.3e (w %g %g %g b %g, expected %g %g %g %g)",
           (double)wd, worst, (double)P[0], (double)P[1], (double)P[2], (double)P[3], theta[0],
           theta[1], theta[2], theta[3]);
}

static void test_linear_regression_recovered(void) {
    double e0, e1;
    run_regression(0.0f, &e0);
    run_regression(0.05f, &e1);
    printf("  adam least squares: max |theta - theta*| %.3e (wd 0), %.3e (wd 0.05, ridge optimum)\n",
           e0, e1);
}

/* A table large enough for the threads (one team shares every tensor's chunks): the same bits
 * as sd_adam_update on each used tensor alone, unused tensors untouched, tensors whose chunks
 * the threads split unevenly (3 and 5 chunks) and one smaller than a chunk. */
static void test_table_threads(void) {
    sd_param_table t;
    sd_params_init(&t);
    int64_t s0[2] = {300, 163}, s1[1] = {70001}, s2[1] = {7}, s3[2] = {256, 256};
    EXPECT(sd_params_add(&t, "a", 2, s0) == 0 && sd_params_add(&t, "unused", 1, s1) == 1 &&
               sd_params_add(&t, "b", 1, s2) == 2 && sd_params_add(&t, "c", 2, s3) == 3,
           "add");
    const size_t N = t.total;
    float *buf[8];
    for (int k = 0; k < 8; k++) buf[k] = sd_params_alloc_buffer(&t);
    float *p = buf[0], *g = buf[1], *m = buf[2], *v = buf[3], *q = buf[4], *mq = buf[5], *vq = buf[6];
    for (size_t i = 0; i < N; i++) {
        p[i] = q[i] = 0.001f * (float)(i % 1013) - 0.4f;
        g[i] = 0.003f * (float)((i * 7) % 101) - 0.15f;
        m[i] = mq[i] = 0.0001f * (float)(i % 97);
        v[i] = vq[i] = 0.00001f * (float)(i % 89 + 1);
    }
    memcpy(buf[7], p, N * sizeof *p);
    const unsigned char used[4] = {1, 0, 1, 1};
    sd_adam_config c = sd_adam_default_config();
    sd_adam_step_table(&t, used, p, g, m, v, &c, 1e-3f, 5);
    for (int k = 0; k < 4; k++) {
        if (!used[k]) continue;
        const size_t o = t.specs[k].offset;
        sd_adam_update(q + o, g + o, mq + o, vq + o, t.specs[k].numel, &c, 1e-3f, 5);
    }
    EXPECT(memcmp(p, q, N * sizeof *p) == 0 && memcmp(m, mq, N * sizeof *m) == 0 && memcmp(v, vq, N * sizeof *v) == 0,
           "the table step (%d threads) differs from per-tensor updates", sd_threads_get());
    const sd_tensor_spec *u = &t.specs[1];
    EXPECT(memcmp(p + u->offset, buf[7] + u->offset, u->numel * sizeof *p) == 0, "unused tensor touched");
    for (int k = 0; k < 8; k++) sd_free(buf[k]);
    sd_params_release(&t);
}

int main(void) {
    sd_test_run("adam_first_step_closed_form", test_first_step_closed_form);
    sd_test_run("adam_constant_gradient_steps", test_constant_gradient_steps);
    sd_test_run("adam_unused_untouched", test_unused_untouched);
    sd_test_run("adam_table_threads", test_table_threads);
    sd_test_run("adam_lr_schedule", test_schedule);
    sd_test_run("adam_matches_torch_10_steps", test_torch_replay);
    sd_test_run("adam_linear_regression_recovered", test_linear_regression_recovered);
    return sd_test_finish();
}
