/* Losses (src/loss/loss.h): finite-difference gradient checks in double (the shared checker,
 * tests/gradcheck.h) for MSE, RMSE and Rank-N-Contrast, RnC against a naive triple-loop
 * evaluation of MODEL.md's formulas, a demonstration that the checker fails on a wrong gradient,
 * float/double agreement, thread-count independence and edge cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/threads.h"
#include "gradcheck.h"
#include "harness.h"
#include "loss/loss.h"

#define RNC_T 2.0   /* SDUMC's temperature */

/* ---- comparisons ---------------------------------------------------------------------------- */

/* Two computed gradients (the naive oracle's, the float build's) against each other: worst
 * |a - b| / max(|a|, |b|, 1e-3 max|a|). (Finite-difference checks use tests/gradcheck.h.) */
static double grad_err(const double *analytic, const double *numeric, size_t n) {
    double amax = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(analytic[i]));
    for (size_t i = 0; i < n; i++) {
        double e = sd_rel_err(analytic[i], numeric[i], fmax(1e-3 * amax, 1e-300));
        if (!(e <= worst)) worst = e; /* NaN sticks */
    }
    return worst;
}

/* A loss as a function of one flat input vector (the others fixed in ctx). */
typedef double (*loss_fn)(const double *x, void *ctx);

typedef struct {
    loss_fn f;
    const double *x;
    void *ctx;
} loss_at;

static double loss_at_x(void *v) {
    const loss_at *a = v;
    return a->f(a->x, a->ctx);
}

/* The shared finite-difference check (tests/gradcheck.h) of analytic = df/dx at x. */
static sd_fd_result check_grad(const double *analytic, loss_fn f, double *x, size_t n, void *ctx) {
    loss_at at = {f, x, ctx};
    const sd_fd_fn fn = {loss_at_x, &at, SD_FD_H, NULL, 0};
    const sd_fd_tensor t = {"x", x, analytic, n, 0};
    sd_fd_result r;
    sd_fd_check(&fn, &t, NULL, 0, 0, &r);
    return r;
}

static void fill_normal(double *x, size_t n, sd_rng *r, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * sd_rng_normal(r);
}

/* ---- MSE and RMSE ------------------------------------------------------------------------- */

typedef struct {
    const double *other; /* target (MSE) or the other argument (RMSE) */
    size_t n;
    double scale;
    int wrt_b; /* RMSE: differentiate with respect to b instead of a */
} pair_ctx;

static double mse_of(const double *x, void *vctx) {
    pair_ctx *c = vctx;
    return c->scale * sd_mse_forward_f64(x, c->other, c->n);
}

static double rmse_of(const double *x, void *vctx) {
    pair_ctx *c = vctx;
    return c->scale * (c->wrt_b ? sd_rmse_forward_f64(c->other, x, c->n) : sd_rmse_forward_f64(x, c->other, c->n));
}

static void test_mse_grad(void) {
    enum { N = 13 };
    sd_rng r = sd_rng_make(1, SD_STREAM_TEST);
    double p[N], t[N], g[N];
    fill_normal(p, N, &r, 1.0);
    fill_normal(t, N, &r, 1.0);
    double sum = 0;
    for (int i = 0; i < N; i++) sum += (p[i] - t[i]) * (p[i] - t[i]);
    EXPECT(fabs(sd_mse_forward_f64(p, t, N) - sum / N) <= 1e-15 * sum, "mse value");
    pair_ctx ctx = {t, N, 0.7, 0};
    for (int i = 0; i < N; i++) g[i] = 1.0; /* backward must ADD: start from 1 */
    sd_mse_backward_f64(g, p, t, N, 0.7);
    for (int i = 0; i < N; i++) g[i] -= 1.0;
    const sd_fd_result res = check_grad(g, mse_of, p, N, &ctx);
    printf("  mse: worst gradient rel. error %.3e\n", res.worst);
    SD_FD_EXPECT("mse", &res, 0);
    EXPECT(sd_mse_forward_f64(p, t, 0) == 0.0, "mse of nothing");
}

static void test_rmse_grad(void) {
    enum { N = 17 };
    sd_rng r = sd_rng_make(2, SD_STREAM_TEST);
    double a[N], b[N], ga[N] = {0}, gb[N] = {0}, ga2[N] = {0};
    fill_normal(a, N, &r, 1.0);
    fill_normal(b, N, &r, 1.0);
    sd_rmse_backward_f64(ga, gb, a, b, N, 1.3);
    pair_ctx ca = {b, N, 1.3, 0}, cb = {a, N, 1.3, 1};
    const sd_fd_result ra = check_grad(ga, rmse_of, a, N, &ca);
    const sd_fd_result rb = check_grad(gb, rmse_of, b, N, &cb);
    /* db == NULL (stop-gradient): da unchanged */
    sd_rmse_backward_f64(ga2, NULL, a, b, N, 1.3);
    EXPECT(memcmp(ga, ga2, sizeof ga) == 0, "da differs when db == NULL");
    printf("  rmse: worst gradient rel. error %.3e (a), %.3e (b)\n", ra.worst, rb.worst);
    SD_FD_EXPECT("rmse da", &ra, 0);
    SD_FD_EXPECT("rmse db", &rb, 0);
    /* L == 0: gradient defined as 0, nothing added (no NaN) */
    double z[N], gz[N];
    for (int i = 0; i < N; i++) gz[i] = 0.5;
    sd_rmse_backward_f64(gz, gz, a, a, N, 1.0);
    for (int i = 0; i < N; i++) EXPECT(gz[i] == 0.5, "rmse at 0 changed the gradient: %g", gz[i]);
    memcpy(z, a, sizeof z);
    EXPECT(sd_rmse_forward_f64(a, z, N) == 0.0, "rmse of equal vectors");
}

/* ---- RnC: the naive oracle ---------------------------------------------------------------- */

/* MODEL.md's formulas written out directly: O(n^3), log-sum-exp over each N_ik by its max. */
static double naive_log_S(const double *dist, const double *Y, int n, int i, int k, double t) {
    double tk = fabs(Y[i] - Y[k]) - 1e-4, mx = -INFINITY, s = 0.0;
    for (int j = 0; j < n; j++)
        if (j != i && fabs(Y[i] - Y[j]) >= tk) mx = fmax(mx, -dist[i * n + j] / t);
    for (int j = 0; j < n; j++)
        if (j != i && fabs(Y[i] - Y[j]) >= tk) s += exp(-dist[i * n + j] / t - mx);
    return mx + log(s);
}

static void naive_dist(double *dist, const double *F, int n, int d) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += (F[i * d + c] - F[j * d + c]) * (F[i * d + c] - F[j * d + c]);
            dist[i * n + j] = sqrt(s);
        }
}

static double naive_rnc(const double *F, const double *Y, int n, int d, double t) {
    double *dist = malloc((size_t)n * n * sizeof *dist), L = 0.0;
    naive_dist(dist, F, n, d);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++)
            if (k != i) L += dist[i * n + k] / t + naive_log_S(dist, Y, n, i, k, t);
    free(dist);
    return L / ((double)n * (n - 1));
}

/* dF += dL/dF by MODEL.md's G_ij formula, with every sum taken literally. */
static void naive_rnc_grad(double *dF, const double *F, const double *Y, int n, int d, double t) {
    double *dist = malloc((size_t)n * n * sizeof *dist), *logS = malloc((size_t)n * n * sizeof *logS);
    double *G = calloc((size_t)n * n, sizeof *G);
    const double c = 1.0 / ((double)n * (n - 1));
    naive_dist(dist, F, n, d);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) logS[i * n + k] = k == i ? 0 : naive_log_S(dist, Y, n, i, k, t);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (int k = 0; k < n; k++)
                if (k != i && fabs(Y[i] - Y[j]) >= fabs(Y[i] - Y[k]) - 1e-4)
                    s += exp(-dist[i * n + j] / t - logS[i * n + k]);
            G[i * n + j] = c / t * (1.0 - s);
        }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (j == i || dist[i * n + j] == 0.0) continue;
            for (int cc = 0; cc < d; cc++)
                dF[i * d + cc] += (G[i * n + j] + G[j * n + i]) * (F[i * d + cc] - F[j * d + cc]) / dist[i * n + j];
        }
    free(dist), free(logS), free(G);
}

/* ---- RnC helpers -------------------------------------------------------------------------- */

typedef struct {
    const double *Y;
    int n, d;
    double t;
    double *work;
} rnc_ctx;

static double rnc_of(const double *F, void *vctx) {
    rnc_ctx *c = vctx;
    return sd_rnc_forward_f64(F, c->Y, c->n, c->d, c->t, c->work);
}

/* Labels with ties: multiples of 1/3 drawn from `levels` values (levels 1: all equal). */
static void tied_labels(double *Y, int n, int levels, sd_rng *r) {
    for (int i = 0; i < n; i++) Y[i] = (double)((int)sd_rng_below(r, (uint64_t)levels) - 1) / 3.0;
}

static double *rnc_work_f64(int n) {
    size_t len = sd_rnc_workspace_len_f64(n);
    return len ? malloc(len * sizeof(double)) : NULL;
}

static void test_rnc_small_cases(void) {
    EXPECT(sd_rnc_workspace_len_f64(1) == 0 && sd_rnc_workspace_len(0) == 0, "workspace for n < 2");
    double F1[3] = {1, 2, 3}, Y1[1] = {0}, g1[3] = {0};
    EXPECT(sd_rnc_forward_f64(F1, Y1, 1, 3, RNC_T, NULL) == 0.0, "n = 1 loss");
    sd_rnc_backward_f64(g1, F1, Y1, 1, 3, RNC_T, 1.0, NULL);
    EXPECT(g1[0] == 0 && g1[1] == 0 && g1[2] == 0, "n = 1 gradient");
    /* n = 2: N_01 = {1}, so each term is d/t + log exp(-d/t) = 0; gradient 0. */
    double F2[6] = {0.3, -1.0, 2.0, 1.5, 0.25, -0.5}, Y2[2] = {0.0, 1.0}, g2[6] = {0};
    double *w = rnc_work_f64(2);
    double L2 = sd_rnc_forward_f64(F2, Y2, 2, 3, RNC_T, w);
    sd_rnc_backward_f64(g2, F2, Y2, 2, 3, RNC_T, 1.0, w);
    EXPECT(fabs(L2) < 1e-15, "n = 2 loss %g", L2);
    for (int i = 0; i < 6; i++) EXPECT(fabs(g2[i]) < 1e-15, "n = 2 gradient %g", g2[i]);
    free(w);
    /* Coincident rows (d_ij = 0): finite loss, that pair adds no gradient. */
    double F3[9] = {1, 1, 1, 1, 1, 1, 0, 2, -1}, Y3[3] = {0, 1.0 / 3, 2.0 / 3}, g3[9] = {0}, gn[9] = {0};
    w = rnc_work_f64(3);
    double L3 = sd_rnc_forward_f64(F3, Y3, 3, 3, RNC_T, w);
    sd_rnc_backward_f64(g3, F3, Y3, 3, 3, RNC_T, 1.0, w);
    naive_rnc_grad(gn, F3, Y3, 3, 3, RNC_T);
    EXPECT(isfinite(L3) && fabs(L3 - naive_rnc(F3, Y3, 3, 3, RNC_T)) < 1e-14, "coincident rows loss");
    EXPECT(grad_err(g3, gn, 9) < 1e-12, "coincident rows gradient");
    free(w);
}

/* FD checks over n = 2..12, d = 3, tied and all-equal labels, and the naive oracle. */
static void test_rnc_grad(void) {
    enum { D = 3, NMAX = 12 };
    sd_rng r = sd_rng_make(3, SD_STREAM_TEST);
    double F[NMAX * D], Y[NMAX], g[NMAX * D], gn[NMAX * D];
    double worst_fd = 0, worst_val = 0, worst_naive = 0;
    for (int n = 2; n <= NMAX; n++) {
        for (int levels = 1; levels <= 4; levels += (levels == 1 ? 2 : 1)) { /* 1, 3, 4 */
            fill_normal(F, (size_t)n * D, &r, 1.0);
            tied_labels(Y, n, levels, &r);
            const double scale = 0.5;
            double *w = rnc_work_f64(n);
            rnc_ctx ctx = {Y, n, D, RNC_T, w};
            double L = sd_rnc_forward_f64(F, Y, n, D, RNC_T, w);
            double Ln = naive_rnc(F, Y, n, D, RNC_T);
            worst_val = fmax(worst_val, sd_rel_err(L, Ln, 1e-12));
            for (int i = 0; i < n * D; i++) g[i] = gn[i] = 0.0;
            sd_rnc_backward_f64(g, F, Y, n, D, RNC_T, scale, w);
            naive_rnc_grad(gn, F, Y, n, D, RNC_T);
            for (int i = 0; i < n * D; i++) g[i] /= scale;
            worst_naive = fmax(worst_naive, grad_err(g, gn, (size_t)n * D));
            if (n > 2) {
                const sd_fd_result res = check_grad(g, rnc_of, F, (size_t)n * D, &ctx);
                char label[64];
                snprintf(label, sizeof label, "rnc n=%d levels=%d", n, levels);
                SD_FD_EXPECT(label, &res, 0);
                if (!(res.worst <= worst_fd)) worst_fd = res.worst;
            }
            free(w);
        }
    }
    printf("  rnc (n 2..12, d 3, tied / all-equal labels): loss vs naive %.3e, gradient vs naive "
           "%.3e, gradient vs finite differences %.3e\n", worst_val, worst_naive, worst_fd);
    EXPECT(worst_val < 1e-12, "rnc loss vs naive %.3e", worst_val);
    EXPECT(worst_naive < 1e-10, "rnc gradient vs naive %.3e", worst_naive);
}

/* Larger batches (the threaded path), other temperatures, far-apart features (exp(-d/t)
 * underflows without the max subtraction), labels close to the 1e-4 tolerance. */
static void test_rnc_vs_naive_large(void) {
    sd_rng r = sd_rng_make(4, SD_STREAM_TEST);
    const int ns[3] = {40, 64, 97};
    const double ts[3] = {2.0, 0.5, 0.05};
    const double spread[3] = {1.0, 3.0, 30.0};
    double worst_val = 0, worst_grad = 0;
    for (int c = 0; c < 3; c++) {
        int n = ns[c], d = 8 + 4 * c;
        double *F = malloc((size_t)n * d * sizeof *F), *Y = malloc((size_t)n * sizeof *Y);
        double *g = calloc((size_t)n * d, sizeof *g), *gn = calloc((size_t)n * d, sizeof *gn);
        fill_normal(F, (size_t)n * d, &r, spread[c]);
        for (int i = 0; i < n; i++) {
            Y[i] = (double)((int)sd_rng_below(&r, 7) - 3) / 3.0;
            if (c == 2 && i % 5 == 0) Y[i] += 0.5e-4 * (double)((int)sd_rng_below(&r, 3) - 1);
        }
        double *w = rnc_work_f64(n);
        double L = sd_rnc_forward_f64(F, Y, n, d, ts[c], w), Ln = naive_rnc(F, Y, n, d, ts[c]);
        EXPECT(isfinite(L), "rnc loss not finite (case %d)", c);
        worst_val = fmax(worst_val, sd_rel_err(L, Ln, 1e-12));
        sd_rnc_backward_f64(g, F, Y, n, d, ts[c], 1.0, w);
        naive_rnc_grad(gn, F, Y, n, d, ts[c]);
        worst_grad = fmax(worst_grad, grad_err(g, gn, (size_t)n * d));
        free(w), free(F), free(Y), free(g), free(gn);
    }
    printf("  rnc n 40/64/97, t 2/0.5/0.05: loss vs naive %.3e, gradient vs naive %.3e\n", worst_val,
           worst_grad);
    EXPECT(worst_val < 1e-11 && worst_grad < 1e-9, "rnc vs naive: %.3e %.3e", worst_val, worst_grad);
}

/* The checker can fail: a correct gradient passes, one flipped sign or a 1.01 scale fails. */
static void test_checker_detects_wrong_gradient(void) {
    enum { N = 7, D = 3 };
    sd_rng r = sd_rng_make(5, SD_STREAM_TEST);
    double F[N * D], Y[N], g[N * D] = {0}, bad[N * D];
    fill_normal(F, N * D, &r, 1.0);
    tied_labels(Y, N, 3, &r);
    double *w = rnc_work_f64(N);
    rnc_ctx ctx = {Y, N, D, RNC_T, w};
    sd_rnc_backward_f64(g, F, Y, N, D, RNC_T, 1.0, w);
    const sd_fd_result ok = check_grad(g, rnc_of, F, N * D, &ctx);
    int big = 0;
    for (int i = 1; i < N * D; i++)
        if (fabs(g[i]) > fabs(g[big])) big = i;
    memcpy(bad, g, sizeof bad);
    bad[big] = -bad[big];
    const sd_fd_result flipped = check_grad(bad, rnc_of, F, N * D, &ctx);
    for (int i = 0; i < N * D; i++) bad[i] = 1.01 * g[i];
    const sd_fd_result scaled = check_grad(bad, rnc_of, F, N * D, &ctx);
    double mse_g[N] = {0};
    sd_mse_backward_f64(mse_g, F, Y, N, 1.0);
    mse_g[3] = -mse_g[3];
    pair_ctx mctx = {Y, N, 1.0, 0};
    const sd_fd_result mse_flipped = check_grad(mse_g, mse_of, F, N, &mctx);
    printf("  checker: correct %.3e, one sign flipped %.3e, scaled by 1.01 %.3e (rnc); flipped %.3e (mse)\n",
           ok.worst, flipped.worst, scaled.worst, mse_flipped.worst);
    EXPECT(sd_fd_passes(&ok, 0), "correct gradient rejected (%.3e)", ok.worst);
    EXPECT(!sd_fd_passes(&flipped, 0) && !sd_fd_passes(&scaled, 0) && !sd_fd_passes(&mse_flipped, 0),
           "a wrong gradient passed the check (%.3e %.3e %.3e)", flipped.worst, scaled.worst,
           mse_flipped.worst);
    free(w);
}

/* float results equal the double ones on the same (float) inputs to ~1e-5. */
static void test_float_matches_double(void) {
    enum { N = 48, D = 16 };
    sd_rng r = sd_rng_make(6, SD_STREAM_TEST);
    float Ff[N * D], Yf[N], gf[N * D] = {0}, af[N], bf[N], daf[N] = {0}, dbf[N] = {0};
    double Fd[N * D], Yd[N], gd[N * D] = {0}, ad[N], bd[N], dad[N] = {0}, dbd[N] = {0};
    for (int i = 0; i < N * D; i++) Fd[i] = Ff[i] = (float)sd_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        Yd[i] = Yf[i] = (float)((int)sd_rng_below(&r, 13) - 6) / 3.0f;
        ad[i] = af[i] = (float)sd_rng_normal(&r);
        bd[i] = bf[i] = (float)sd_rng_normal(&r);
    }
    /* the float workspace at an odd address: the re-alignment must cope, in bounds */
    size_t lenf = sd_rnc_workspace_len(N);
    float *wf_base = malloc((lenf + 1) * sizeof(float)), *wf = wf_base + 1;
    double *wd = rnc_work_f64(N);
    double e_loss = sd_rel_err(sd_rnc_forward(Ff, Yf, N, D, 2.0f, wf), sd_rnc_forward_f64(Fd, Yd, N, D, 2.0, wd), 1e-12);
    sd_rnc_backward(gf, Ff, Yf, N, D, 2.0f, 0.5f, wf);
    sd_rnc_backward_f64(gd, Fd, Yd, N, D, 2.0, 0.5, wd);
    double gdf[N * D];
    for (int i = 0; i < N * D; i++) gdf[i] = gf[i];
    double e_grad = grad_err(gd, gdf, N * D);
    double e_mse = sd_rel_err(sd_mse_forward(af, bf, N), sd_mse_forward_f64(ad, bd, N), 1e-12);
    double e_rmse = sd_rel_err(sd_rmse_forward(af, bf, N), sd_rmse_forward_f64(ad, bd, N), 1e-12);
    sd_mse_backward(daf, af, bf, N, 0.3f);
    sd_mse_backward_f64(dad, ad, bd, N, 0.3);
    sd_rmse_backward(daf, dbf, af, bf, N, 0.7f);
    sd_rmse_backward_f64(dad, dbd, ad, bd, N, 0.7);
    double tmp_a[N], tmp_b[N];
    for (int i = 0; i < N; i++) tmp_a[i] = daf[i], tmp_b[i] = dbf[i];
    double e_pair = fmax(grad_err(dad, tmp_a, N), grad_err(dbd, tmp_b, N));
    printf("  float vs double: rnc loss %.2e grad %.2e, mse %.2e, rmse %.2e, mse+rmse grads %.2e\n",
           e_loss, e_grad, e_mse, e_rmse, e_pair);
    EXPECT(e_loss < 1e-5 && e_grad < 1e-5 && e_mse < 1e-5 && e_rmse < 1e-5 && e_pair < 1e-5,
           "float and double versions disagree");
    free(wf_base), free(wd);
}

/* The same loss and gradient, bit for bit, with 1, 2 and 3 threads. */
static void test_rnc_thread_independent(void) {
    enum { N = 70, D = 12 };
    sd_rng r = sd_rng_make(7, SD_STREAM_TEST);
    float F[N * D], Y[N], g[3][N * D];
    float L[3];
    for (int i = 0; i < N * D; i++) F[i] = (float)sd_rng_normal(&r);
    for (int i = 0; i < N; i++) Y[i] = (float)((int)sd_rng_below(&r, 9) - 4) / 3.0f;
    float *w = malloc(sd_rnc_workspace_len(N) * sizeof(float));
    int before = sd_threads_get();
    for (int k = 0; k < 3; k++) {
        sd_threads_set(k + 1);
        memset(g[k], 0, sizeof g[k]);
        L[k] = sd_rnc_forward(F, Y, N, D, 2.0f, w);
        sd_rnc_backward(g[k], F, Y, N, D, 2.0f, 1.0f, w);
    }
    sd_threads_set(before);
    for (int k = 1; k < 3; k++) {
        EXPECT(L[k] == L[0], "loss differs with %d threads", k + 1);
        EXPECT(memcmp(g[k], g[0], sizeof g[0]) == 0, "gradient differs with %d threads", k + 1);
    }
    /* The combined call of a training step gives the same loss and gradient bits. */
    float g_both[N * D];
    memset(g_both, 0, sizeof g_both);
    const float L_both = sd_rnc_forward_backward(g_both, F, Y, N, D, 2.0f, 1.0f, w);
    EXPECT(L_both == L[0] && memcmp(g_both, g[0], sizeof g_both) == 0,
           "sd_rnc_forward_backward differs from sd_rnc_forward + sd_rnc_backward");
    if (!sd_threads_have_openmp()) printf("  (built without OpenMP: one thread only)\n");
    free(w);
}

int main(void) {
    sd_test_run("loss_mse_gradient", test_mse_grad);
    sd_test_run("loss_rmse_gradient", test_rmse_grad);
    sd_test_run("loss_rnc_small_cases", test_rnc_small_cases);
    sd_test_run("loss_rnc_gradient_and_naive", test_rnc_grad);
    sd_test_run("loss_rnc_vs_naive_large", test_rnc_vs_naive_large);
    sd_test_run("loss_checker_detects_wrong_gradient", test_checker_detects_wrong_gradient);
    sd_test_run("loss_float_matches_double", test_float_matches_double);
    sd_test_run("loss_rnc_thread_independent", test_rnc_thread_independent);
    return sd_test_finish();
}
