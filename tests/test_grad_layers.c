/* Finite-difference gradient checks of every layer in src/nn/ (double build, _f64), plus:
 * the checker can fail, masked versus no-mask padding, float versus double, dropout
 * statistics and thread-count invariance.
 *
 * The checks: for a fixed random G and L = sum(G * output), the analytic gradient (the
 * layer's backward with dy = G, added onto a prefilled buffer so that "backward ADDS" is
 * checked too) is compared, for every element of every input and parameter, with the
 * numerical derivative of L by the shared checker (tests/gradcheck.h: the fourth-order
 * central difference with h = 3e-4, and its one acceptance rule, written and explained there).
 *
 * ReLU kinks: a difference across a ReLU kink is meaningless. The relu test skips
 * coordinates whose pre-activation (x itself) is within GC_KINK = 2e-3 of 0 (the stencil
 * reaches +-2h = 6e-4). For mlp and mia, whose pre-activations are internal, the biases
 * are first nudged until every pre-activation is at least 1e-2 away from 0, and any
 * coordinate whose perturbed forwards flip a ReLU on/off state is skipped (counted, and
 * required to be 0 there).
 *
 * Legend: B batch, T frames, D feature dim, K queries, M modalities, R rows per sample,
 * N rows, L latent dim. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/hash.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "harness.h"
#include "nn/nn.h"

#define GC_KINK 2e-3   /* relu test: coordinates this close to the kink are skipped */
#define KINK_MARGIN 1e-2 /* mlp, mia: pre-activations are moved at least this far from 0 */
#define GC_PREFILL 0.375 /* value the analytic gradients are added onto */
#define FLOAT_DOUBLE_TOL 1e-5    /* float versus double, relative to the tensor's largest magnitude */

/* ---- Scratch memory: every allocation of a case, released together at its end. */
#define ARENA_MAX 1024
static void *arena[ARENA_MAX];
static int arena_n;

static void *talloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || arena_n == ARENA_MAX) {
        fprintf(stderr, "test_grad_layers: out of scratch memory\n");
        abort();
    }
    arena[arena_n++] = p;
    return p;
}
static double *dvec(size_t n) { return talloc(n * sizeof(double)); }
static float *fvec(size_t n) { return talloc(n * sizeof(float)); }
static uint8_t *bvec(size_t n) { return talloc(n); }
static void arena_free(void) {
    while (arena_n > 0) free(arena[--arena_n]);
}

static sd_rng trng; /* test data */

static void rnd_fill(double *a, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = scale * (2.0 * sd_rng_uniform_double(&trng) - 1.0);
}
static double *rnd_vec(size_t n, double scale) {
    double *a = dvec(n);
    rnd_fill(a, n, scale);
    return a;
}
static float *to_float(const double *a, size_t n) {
    float *f = fvec(n);
    for (size_t i = 0; i < n; i++) f[i] = (float)a[i];
    return f;
}

/* ======================================================================================
 * A layer as a problem for the shared checker: L = sum(G * output) for a fixed random G. */

typedef struct {
    const char *name;
    double *val;     /* values, perturbed in place */
    double *grad;    /* analytic gradient, written by the problem's backward */
    size_t n;
    int may_be_zero; /* 1: an all-zero gradient is the right answer (unused or T = 1) */
} gc_param;

typedef struct {
    const char *label;
    void *ctx;
    size_t n_out;
    void (*forward)(void *ctx, double *out);        /* runs the layer on the current values */
    void (*backward)(void *ctx, const double *dy);  /* after forward: adds into the grads */
    uint64_t (*relu_sig)(void *ctx);                /* optional: ReLU states of the last forward */
    sd_fd_skip_fn skip; /* optional: coordinate on a kink (called with the problem's ctx) */
} gc_problem;

/* What the checker's callbacks see: the problem, G and an output buffer. */
typedef struct {
    const gc_problem *pb;
    const double *G;
    double *out;
} gc_eval;

static size_t gc_last_skipped; /* coordinates skipped by the last gc_run, all parameters */

static double gc_loss(void *v) {
    const gc_eval *e = v;
    e->pb->forward(e->pb->ctx, e->out);
    double L = 0;
    for (size_t i = 0; i < e->pb->n_out; i++) L += e->G[i] * e->out[i];
    return L;
}
static uint64_t gc_state(void *v) {
    const gc_eval *e = v;
    return e->pb->relu_sig(e->pb->ctx);
}
static int gc_skip(void *v, const sd_fd_tensor *t, size_t i) {
    const gc_eval *e = v;
    return e->pb->skip(e->pb->ctx, t, i);
}

static sd_fd_fn gc_fn(gc_eval *e) {
    sd_fd_fn f = {gc_loss, e, SD_FD_H, e->pb->relu_sig ? gc_state : NULL, 0};
    return f;
}
static sd_fd_tensor gc_tensor(const gc_param *prm) {
    sd_fd_tensor t = {prm->name, prm->val, prm->grad, prm->n, prm->may_be_zero};
    return t;
}

/* Random G (dL/d out) from g_seed. */
static double *gc_weights(const gc_problem *pb, uint64_t g_seed) {
    sd_rng gr = sd_rng_make(g_seed, SD_STREAM_TEST);
    double *G = dvec(pb->n_out);
    for (size_t i = 0; i < pb->n_out; i++) G[i] = 2.0 * sd_rng_uniform_double(&gr) - 1.0;
    return G;
}

/* Runs the analytic backward once (onto GC_PREFILL, then subtracted), then checks every
 * parameter with the shared checker. Prints one line per parameter; returns the worst error. */
static double gc_run(const gc_problem *pb, gc_param *prm, int np, uint64_t g_seed) {
    double *G = gc_weights(pb, g_seed);
    gc_eval e = {pb, G, dvec(pb->n_out)};

    for (int k = 0; k < np; k++)
        for (size_t i = 0; i < prm[k].n; i++) prm[k].grad[i] = GC_PREFILL;
    pb->forward(pb->ctx, e.out);
    pb->backward(pb->ctx, G);
    for (int k = 0; k < np; k++)
        for (size_t i = 0; i < prm[k].n; i++) prm[k].grad[i] -= GC_PREFILL;

    const sd_fd_fn f = gc_fn(&e);
    double worst_all = 0;
    gc_last_skipped = 0;
    for (int k = 0; k < np; k++) {
        const sd_fd_tensor t = gc_tensor(&prm[k]);
        sd_fd_result r;
        sd_fd_check(&f, &t, pb->skip ? gc_skip : NULL, 0, 0, &r);
        gc_last_skipped += r.skipped;
        /* Only the relu test plants coordinates on the kink; elsewhere nothing is skipped. */
        EXPECT(pb->skip || r.skipped == 0, "%s d%s: %zu coordinates crossed a ReLU kink",
               pb->label, prm[k].name, r.skipped);
        printf("  %s d%s max rel err %.1e (max |g| %.2g, %zu of %zu skipped)\n", pb->label,
               prm[k].name, r.worst, r.max_numeric, r.skipped, prm[k].n);
        char label[160];
        snprintf(label, sizeof label, "%s d%s", pb->label, prm[k].name);
        SD_FD_EXPECT(label, &r, prm[k].may_be_zero);
        if (!(r.worst <= worst_all)) worst_all = r.worst;
    }
    return worst_all;
}

static void report_layer(const char *layer, double worst) {
    printf("  %s worst rel err over all cases %.1e\n", layer, worst);
}

/* ======================================================================================
 * Linear. */

typedef struct {
    double *x, *W, *b; /* x [N,I], W [O,I], b [O] or NULL */
    double *dx, *dW, *db;
    size_t N;
    int in, out;
} lin_ctx;

static void lin_fwd(void *c, double *y) {
    lin_ctx *k = c;
    sd_linear_forward_f64(y, k->x, k->W, k->b, k->N, k->in, k->out);
}
static void lin_bwd(void *c, const double *dy) {
    lin_ctx *k = c;
    sd_linear_backward_f64(k->dx, k->dW, k->b ? k->db : NULL, dy, k->x, k->W, k->N, k->in, k->out);
}

static double check_linear(size_t N, int in, int out, int with_bias, const char *label) {
    lin_ctx k = {0};
    k.N = N;
    k.in = in;
    k.out = out;
    k.x = rnd_vec(N * (size_t)in, 1.0);
    k.W = rnd_vec((size_t)out * (size_t)in, 0.5);
    k.b = with_bias ? rnd_vec((size_t)out, 0.5) : NULL;
    k.dx = dvec(N * (size_t)in);
    k.dW = dvec((size_t)out * (size_t)in);
    k.db = dvec((size_t)out);
    gc_param prm[3] = {{"x", k.x, k.dx, N * (size_t)in, 0},
                       {"W", k.W, k.dW, (size_t)out * (size_t)in, 0},
                       {"b", k.b, k.db, (size_t)out, 0}};
    gc_problem pb = {label, &k, N * (size_t)out, lin_fwd, lin_bwd, NULL, NULL};
    return gc_run(&pb, prm, with_bias ? 3 : 2, 11);
}

static void test_grad_linear(void) {
    trng = sd_rng_make(101, SD_STREAM_TEST);
    double w = 0;
    w = fmax(w, check_linear(5, 4, 3, 1, "linear[N=5 4->3]"));
    w = fmax(w, check_linear(5, 4, 3, 0, "linear[b=NULL]"));
    w = fmax(w, check_linear(1, 6, 2, 1, "linear[N=1 6->2]"));
    report_layer("linear", w);
    arena_free();
}

/* ======================================================================================
 * Elementwise: relu, tanh, dropout. */

typedef struct {
    int kind; /* 0 relu, 1 tanh, 2 dropout */
    double *x, *y, *dx;
    uint8_t *mask;
    size_t n;
    double p;
    uint64_t seed;
} elem_ctx;

static void elem_fwd(void *c, double *out) {
    elem_ctx *k = c;
    if (k->kind == 0) sd_relu_forward_f64(k->y, k->x, k->n);
    if (k->kind == 1) sd_tanh_forward_f64(k->y, k->x, k->n);
    if (k->kind == 2) {
        sd_rng r = sd_rng_make(k->seed, SD_STREAM_DROPOUT); /* same mask on every call */
        sd_dropout_forward_f64(k->y, k->mask, k->x, k->n, k->p, &r);
    }
    memcpy(out, k->y, k->n * sizeof *out);
}
static void elem_bwd(void *c, const double *dy) {
    elem_ctx *k = c;
    if (k->kind == 0) sd_relu_backward_f64(k->dx, dy, k->y, k->n);
    if (k->kind == 1) sd_tanh_backward_f64(k->dx, dy, k->y, k->n);
    if (k->kind == 2) sd_dropout_backward_f64(k->dx, dy, k->mask, k->n, k->p);
}
/* ReLU: skip a coordinate whose pre-activation (x itself) is within GC_KINK of the kink. */
static int relu_skip(void *c, const sd_fd_tensor *t, size_t i) {
    (void)c;
    return fabs(t->val[i]) < GC_KINK;
}

static double check_elem(int kind, double p, const char *label, size_t *n_skipped_expect) {
    elem_ctx k = {0};
    k.kind = kind;
    k.n = 40;
    k.p = p;
    k.seed = 77;
    k.x = rnd_vec(k.n, 2.0);
    if (kind == 0) { /* coordinates put on purpose next to the kink; they must be skipped */
        k.x[3] = 5e-5;
        k.x[17] = -2e-7;
        k.x[30] = 1.5e-3;
        *n_skipped_expect = 0;
        for (size_t i = 0; i < k.n; i++) *n_skipped_expect += fabs(k.x[i]) < GC_KINK;
    }
    k.y = dvec(k.n);
    k.dx = dvec(k.n);
    k.mask = bvec(k.n);
    gc_param prm[1] = {{"x", k.x, k.dx, k.n, 0}};
    gc_problem pb = {label, &k, k.n, elem_fwd, elem_bwd, NULL, kind == 0 ? relu_skip : NULL};
    return gc_run(&pb, prm, 1, 12);
}

static void test_grad_elementwise(void) {
    trng = sd_rng_make(102, SD_STREAM_TEST);
    size_t expect_skip = 0;
    report_layer("relu", check_elem(0, 0, "relu", &expect_skip));
    EXPECT(expect_skip >= 3 && gc_last_skipped == expect_skip,
           "relu: %zu coordinates skipped, %zu within %g of the kink (3 planted)", gc_last_skipped,
           expect_skip, GC_KINK);
    report_layer("tanh", check_elem(1, 0, "tanh", &expect_skip));
    double w = check_elem(2, 0.3, "dropout[p=0.3]", &expect_skip);
    w = fmax(w, check_elem(2, 0.0, "dropout[p=0]", &expect_skip));
    report_layer("dropout", w);
    arena_free();
}

/* ======================================================================================
 * MLP. */

typedef struct {
    mlp_shape s;
    size_t N;
    double p;
    uint64_t seed;
    double *x, *dx;
    double *W[SD_MLP_MAX_LAYERS], *b[SD_MLP_MAX_LAYERS];
    double *dW[SD_MLP_MAX_LAYERS], *db[SD_MLP_MAX_LAYERS];
    double *relu, *drop;
    uint8_t *mask;
    size_t cache_len;
} mlp_ctx;

static int mlp_in(const mlp_shape *s, int l) { return l == 0 ? s->in : s->dims[l - 1]; }

static void mlp_fwd(void *c, double *out) {
    mlp_ctx *k = c;
    sd_rng r = sd_rng_make(k->seed, SD_STREAM_DROPOUT);
    sd_mlp_forward_f64(out, k->relu, k->drop, k->mask, k->x, (const double *const *)k->W,
                    (const double *const *)k->b, &k->s, k->N, k->p, &r);
}
static void mlp_bwd(void *c, const double *dy) {
    mlp_ctx *k = c;
    double *work = dvec(sd_mlp_work_len_f64(&k->s, k->N));
    sd_status st = sd_mlp_backward_f64(k->dx, k->dW, k->db, dy, k->relu, k->drop, k->mask, k->x,
                                       (const double *const *)k->W, &k->s, k->N, k->p, work);
    EXPECT(st == SD_OK, "mlp backward: %s", sd_status_name(st));
}
static uint64_t mlp_sig(void *c) {
    mlp_ctx *k = c;
    return sd_fd_sign_state(SD_FNV1A_INIT, k->relu, k->cache_len);
}

/* Nudges the biases until every pre-activation is at least KINK_MARGIN from the ReLU kink. */
static void mlp_avoid_kinks(mlp_ctx *k) {
    double *out = dvec(k->N * (size_t)k->s.dims[k->s.n_layers - 1]);
    for (int iter = 0; iter < 200; iter++) {
        mlp_fwd(k, out);
        int changed = 0;
        size_t off = 0;
        const double *a_prev = k->x;
        for (int l = 0; l < k->s.n_layers; l++) {
            const size_t O = (size_t)k->s.dims[l];
            double *pre = malloc(k->N * O * sizeof *pre);
            sd_linear_forward_f64(pre, a_prev, k->W[l], k->b[l], k->N, mlp_in(&k->s, l), (int)O);
            for (size_t j = 0; j < O; j++)
                for (size_t n = 0; n < k->N; n++)
                    if (fabs(pre[n * O + j]) < KINK_MARGIN) {
                        k->b[l][j] += 2.5 * KINK_MARGIN;
                        changed = 1;
                        break;
                    }
            free(pre);
            a_prev = k->drop + off;
            off += k->N * O;
        }
        if (!changed) return;
    }
    EXPECT(0, "mlp: could not move the pre-activations away from the ReLU kink");
}

static void mlp_setup(mlp_ctx *k, int in, int n_layers, const int *dims, size_t N, double p) {
    memset(k, 0, sizeof *k);
    k->s.in = in;
    k->s.n_layers = n_layers;
    for (int l = 0; l < n_layers; l++) k->s.dims[l] = dims[l];
    k->N = N;
    k->p = p;
    k->seed = 99;
    k->x = rnd_vec(N * (size_t)in, 1.0);
    k->dx = dvec(N * (size_t)in);
    for (int l = 0; l < n_layers; l++) {
        const size_t nw = (size_t)dims[l] * (size_t)mlp_in(&k->s, l);
        k->W[l] = rnd_vec(nw, 0.6);
        k->b[l] = rnd_vec((size_t)dims[l], 0.3);
        k->dW[l] = dvec(nw);
        k->db[l] = dvec((size_t)dims[l]);
    }
    k->cache_len = sd_mlp_cache_len_f64(&k->s, N);
    k->relu = dvec(k->cache_len);
    k->drop = dvec(k->cache_len);
    k->mask = bvec(k->cache_len);
}

static double check_mlp(int in, int n_layers, const int *dims, size_t N, double p,
                        const char *label) {
    mlp_ctx k;
    mlp_setup(&k, in, n_layers, dims, N, p);
    mlp_avoid_kinks(&k);
    static const char *wn[] = {"W0", "W1", "W2", "W3"}, *bn[] = {"b0", "b1", "b2", "b3"};
    gc_param prm[1 + 2 * SD_MLP_MAX_LAYERS];
    int np = 0;
    prm[np++] = (gc_param){"x", k.x, k.dx, N * (size_t)in, 0};
    for (int l = 0; l < n_layers; l++) {
        prm[np++] = (gc_param){wn[l], k.W[l], k.dW[l], (size_t)dims[l] * (size_t)mlp_in(&k.s, l), 0};
        prm[np++] = (gc_param){bn[l], k.b[l], k.db[l], (size_t)dims[l], 0};
    }
    gc_problem pb = {label, &k, N * (size_t)dims[n_layers - 1], mlp_fwd, mlp_bwd, mlp_sig, NULL};
    return gc_run(&pb, prm, np, 13);
}

static void test_grad_mlp(void) {
    trng = sd_rng_make(103, SD_STREAM_TEST);
    const int d1[1] = {5}, d2[2] = {6, 4};
    double w = check_mlp(4, 1, d1, 6, 0.0, "mlp[1 layer p=0]");
    w = fmax(w, check_mlp(4, 1, d1, 6, 0.3, "mlp[1 layer p=0.3]"));
    w = fmax(w, check_mlp(5, 2, d2, 7, 0.3, "mlp[2 layers p=0.3]"));
    report_layer("mlp", w);
    arena_free();
}

/* ======================================================================================
 * Attention pooling. */

/* Caches start as NaN, so an element the forward forgets to write shows up. */
static void poison_cache(double *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

typedef struct {
    int B, T, D;
    const int *len;
    double p;
    uint64_t seed;
    double *x, *c, *Wp, *bp;
    double *dx, *dc, *dWp, *dbp;
    attn_pool_cache_f64 cache;
} pool_ctx;

static void pool_fwd(void *v, double *y) {
    pool_ctx *k = v;
    sd_rng r = sd_rng_make(k->seed, SD_STREAM_DROPOUT);
    sd_attn_pool_forward_f64(y, &k->cache, k->x, k->len, k->c, k->Wp, k->bp, k->B, k->T, k->D, k->p,
                          &r);
}
static void pool_bwd(void *v, const double *dy) {
    pool_ctx *k = v;
    sd_attn_pool_backward_f64(k->dx, k->dc, k->dWp, k->dbp, dy, &k->cache, k->x, k->len, k->c,
                           k->Wp, k->B, k->T, k->D, k->p);
}

static void pool_setup(pool_ctx *k, int B, int T, int D, const int *len, double p) {
    memset(k, 0, sizeof *k);
    k->B = B;
    k->T = T;
    k->D = D;
    k->len = len;
    k->p = p;
    k->seed = 5;
    const size_t nx = (size_t)B * T * D, Dz = (size_t)D;
    k->x = rnd_vec(nx, 1.0);
    k->c = rnd_vec(Dz, 1.0);
    k->Wp = rnd_vec(Dz * Dz, 0.7);
    k->bp = rnd_vec(Dz, 0.3);
    k->dx = dvec(nx);
    k->dc = dvec(Dz);
    k->dWp = dvec(Dz * Dz);
    k->dbp = dvec(Dz);
    const size_t nwork = sd_attn_pool_work_len_f64(B, T, D);
    k->cache.work = dvec(nwork);
    k->cache.P = dvec(nx);
    k->cache.alpha = dvec((size_t)B * T);
    k->cache.u = dvec((size_t)B * D);
    k->cache.mask_out = bvec((size_t)B * D);
    poison_cache(k->cache.work, nwork);
    poison_cache(k->cache.P, nx);
    poison_cache(k->cache.alpha, (size_t)B * T);
    poison_cache(k->cache.u, (size_t)B * D);
}

static double check_pool(int B, int T, int D, const int *len, double p, const char *label) {
    pool_ctx k;
    pool_setup(&k, B, T, D, len, p);
    const size_t Dz = (size_t)D;
    const int single = T == 1; /* one frame: alpha = 1, nothing depends on c, Wp, bp */
    gc_param prm[4] = {{"x", k.x, k.dx, (size_t)B * T * Dz, 0},
                       {"c", k.c, k.dc, Dz, single},
                       {"Wp", k.Wp, k.dWp, Dz * Dz, single},
                       {"bp", k.bp, k.dbp, Dz, single}};
    gc_problem pb = {label, &k, (size_t)B * Dz, pool_fwd, pool_bwd, NULL, NULL};
    return gc_run(&pb, prm, 4, 14);
}

static const int len_padded[3] = {5, 3, 1}; /* B = 3, T = 5: samples 1 and 2 padded */

static void test_grad_attn_pool(void) {
    trng = sd_rng_make(104, SD_STREAM_TEST);
    const int len1[2] = {1, 1};
    double w = check_pool(3, 5, 4, len_padded, 0.0, "attn_pool[masked p=0]");
    w = fmax(w, check_pool(3, 5, 4, len_padded, 0.5, "attn_pool[masked p=0.5]"));
    w = fmax(w, check_pool(3, 5, 4, NULL, 0.0, "attn_pool[no-mask p=0]"));
    w = fmax(w, check_pool(3, 5, 4, NULL, 0.5, "attn_pool[no-mask p=0.5]"));
    w = fmax(w, check_pool(2, 1, 4, len1, 0.0, "attn_pool[T=1 masked]"));
    w = fmax(w, check_pool(2, 1, 4, NULL, 0.5, "attn_pool[T=1 no-mask p=0.5]"));
    report_layer("attn_pool", w);
    arena_free();
}

/* ======================================================================================
 * Cross-attention. */

typedef struct {
    int B, T, K, D;
    const int *len;
    double p;
    uint64_t seed;
    double *x, *Q, *Wq, *bq, *Wi, *bi;
    double *dx, *dQ, *dWq, *dbq, *dWi, *dbi;
    cross_attn_cache_f64 cache;
} cross_ctx;

static void cross_fwd(void *v, double *y) {
    cross_ctx *k = v;
    sd_rng r = sd_rng_make(k->seed, SD_STREAM_DROPOUT);
    sd_cross_attn_forward_f64(y, &k->cache, k->x, k->len, k->Q, k->Wq, k->bq, k->Wi, k->bi, k->B,
                           k->T, k->K, k->D, k->p, &r);
}
static void cross_bwd(void *v, const double *dy) {
    cross_ctx *k = v;
    sd_cross_attn_backward_f64(k->dx, k->dQ, k->dWq, k->dbq, k->dWi, k->dbi, dy, &k->cache, k->x,
                            k->len, k->Q, k->Wq, k->Wi, k->bi, k->B, k->T, k->K, k->D, k->p);
}

/* 1: the cache keeps Kt; 0: the backward recomputes it (cross_attn_cache.Kt == NULL). */
static int cross_keep_kt = 1;

static void cross_setup(cross_ctx *k, int B, int T, int K, int D, const int *len, double p) {
    memset(k, 0, sizeof *k);
    k->B = B;
    k->T = T;
    k->K = K;
    k->D = D;
    k->len = len;
    k->p = p;
    k->seed = 6;
    const size_t nx = (size_t)B * T * D, nq = (size_t)B * K * D, Dz = (size_t)D;
    k->x = rnd_vec(nx, 1.0);
    k->Q = rnd_vec(nq, 1.0);
    k->Wq = rnd_vec(Dz * Dz, 0.7);
    k->bq = rnd_vec(Dz, 0.3);
    k->Wi = rnd_vec(Dz * Dz, 0.7);
    k->bi = rnd_vec(Dz, 0.3);
    k->dx = dvec(nx);
    k->dQ = dvec(nq);
    k->dWq = dvec(Dz * Dz);
    k->dbq = dvec(Dz);
    k->dWi = dvec(Dz * Dz);
    k->dbi = dvec(Dz);
    const size_t nwork = sd_cross_attn_work_len_f64(B, T, K, D);
    k->cache.work = dvec(nwork);
    k->cache.Kt = cross_keep_kt ? dvec(nx) : NULL;
    if (k->cache.Kt) poison_cache(k->cache.Kt, nx);
    k->cache.Qp = dvec(nq);
    k->cache.A = dvec((size_t)B * T * K);
    k->cache.O = dvec(nq);
    k->cache.mask_out = bvec(nq);
    poison_cache(k->cache.work, nwork);
    poison_cache(k->cache.Qp, nq);
    poison_cache(k->cache.A, (size_t)B * T * K);
    poison_cache(k->cache.O, nq);
}

static double check_cross(int B, int T, int K, int D, const int *len, double p,
                          const char *label) {
    cross_ctx k;
    cross_setup(&k, B, T, K, D, len, p);
    const size_t Dz = (size_t)D;
    const int single = T == 1; /* one frame: A = 1, the output is xt whatever Q and W */
    gc_param prm[6] = {{"x", k.x, k.dx, (size_t)B * T * Dz, 0},
                       {"Q", k.Q, k.dQ, (size_t)B * K * Dz, single},
                       {"Wq", k.Wq, k.dWq, Dz * Dz, single},
                       {"bq", k.bq, k.dbq, Dz, single},
                       {"Wi", k.Wi, k.dWi, Dz * Dz, single},
                       {"bi", k.bi, k.dbi, Dz, single}};
    gc_problem pb = {label, &k, (size_t)B * K * Dz, cross_fwd, cross_bwd, NULL, NULL};
    return gc_run(&pb, prm, 6, 15);
}

static void test_grad_cross_attn(void) {
    trng = sd_rng_make(105, SD_STREAM_TEST);
    const int len1[2] = {1, 1};
    double w = check_cross(3, 5, 7, 4, len_padded, 0.0, "cross_attn[K=7 masked p=0]");
    w = fmax(w, check_cross(3, 5, 7, 4, len_padded, 0.5, "cross_attn[K=7 masked p=0.5]"));
    w = fmax(w, check_cross(3, 5, 7, 4, NULL, 0.5, "cross_attn[K=7 no-mask p=0.5]"));
    w = fmax(w, check_cross(3, 5, 2, 4, len_padded, 0.0, "cross_attn[K=2 masked p=0]"));
    w = fmax(w, check_cross(3, 5, 2, 4, NULL, 0.0, "cross_attn[K=2 no-mask p=0]"));
    w = fmax(w, check_cross(2, 1, 7, 4, len1, 0.0, "cross_attn[T=1 masked]"));
    w = fmax(w, check_cross(2, 1, 2, 4, NULL, 0.5, "cross_attn[T=1 K=2 no-mask p=0.5]"));
    cross_keep_kt = 0;
    w = fmax(w, check_cross(3, 5, 7, 4, len_padded, 0.5, "cross_attn[K=7 masked p=0.5, Kt recomputed]"));
    w = fmax(w, check_cross(2, 1, 2, 4, NULL, 0.5, "cross_attn[T=1 K=2 no-mask p=0.5, Kt recomputed]"));
    cross_keep_kt = 1;
    report_layer("cross_attn", w);
    arena_free();
}

/* The sequence layers in chunks of samples (sd_nn_chunk_samples; the default budget gives one
 * chunk on these small shapes): a budget of one sample, and of two samples (chunks 2 + 1),
 * checked against finite differences, masked and not, with dropout. */
static void test_grad_chunks(void) {
    trng = sd_rng_make(106, SD_STREAM_TEST);
    static const struct {
        size_t floats;
        const char *label;
    } budgets[] = {{5 * 4, "1 sample"}, {2 * 5 * 4, "2 samples"}};
    double w = 0;
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        sd_nn_set_chunk_floats(budgets[i].floats);
        EXPECT(sd_nn_chunk_samples(3, 5, 4) == (int)(i + 1), "chunk of %d samples, expected %zu",
               sd_nn_chunk_samples(3, 5, 4), i + 1);
        char label[96];
        snprintf(label, sizeof label, "attn_pool[chunks of %s, masked p=0.5]", budgets[i].label);
        w = fmax(w, check_pool(3, 5, 4, len_padded, 0.5, label));
        snprintf(label, sizeof label, "attn_pool[chunks of %s, no-mask p=0]", budgets[i].label);
        w = fmax(w, check_pool(3, 5, 4, NULL, 0.0, label));
        for (cross_keep_kt = 0; cross_keep_kt < 2; cross_keep_kt++) {
            const char *kt = cross_keep_kt ? "Kt kept" : "Kt recomputed";
            snprintf(label, sizeof label, "cross_attn[chunks of %s, %s, masked p=0.5]", budgets[i].label, kt);
            w = fmax(w, check_cross(3, 5, 7, 4, len_padded, 0.5, label));
            snprintf(label, sizeof label, "cross_attn[chunks of %s, %s, no-mask p=0]", budgets[i].label, kt);
            w = fmax(w, check_cross(3, 5, 7, 4, NULL, 0.0, label));
        }
        cross_keep_kt = 1;
    }
    sd_nn_set_chunk_floats(0);
    EXPECT(sd_nn_chunk_samples(3, 5, 4) == 3, "default budget not restored");
    report_layer("chunked sequence layers", w);
    arena_free();
}

/* ======================================================================================
 * Modality sum and row sum. */

typedef struct {
    int B, R, D;
    unsigned use;
    double *w, *x[3];
    double *dw, *dx[3];
} msum_ctx;

static void msum_fwd(void *v, double *y) {
    msum_ctx *k = v;
    sd_modality_sum_forward_f64(y, k->w, (const double *const *)k->x, 3, k->use, k->B, k->R, k->D);
}
static void msum_bwd(void *v, const double *dy) {
    msum_ctx *k = v;
    sd_modality_sum_backward_f64(k->dx, k->dw, dy, k->w, (const double *const *)k->x, 3, k->use,
                              k->B, k->R, k->D);
}

static double check_msum(int B, int R, int D, unsigned use, const char *label) {
    msum_ctx k = {0};
    k.B = B;
    k.R = R;
    k.D = D;
    k.use = use;
    const size_t nx = (size_t)B * R * D;
    k.w = rnd_vec((size_t)B * 3, 1.0);
    k.dw = dvec((size_t)B * 3);
    for (int m = 0; m < 3; m++) {
        k.x[m] = rnd_vec(nx, 1.0);
        k.dx[m] = dvec(nx);
    }
    gc_param prm[4] = {{"w", k.w, k.dw, (size_t)B * 3, 0},
                       {"x0", k.x[0], k.dx[0], nx, !(use & 1u)},
                       {"x1", k.x[1], k.dx[1], nx, !(use & 2u)},
                       {"x2", k.x[2], k.dx[2], nx, !(use & 4u)}};
    gc_problem pb = {label, &k, nx, msum_fwd, msum_bwd, NULL, NULL};
    return gc_run(&pb, prm, 4, 16);
}

typedef struct {
    int B, K, D;
    double *beta, *X, *dbeta, *dX;
} rsum_ctx;

static void rsum_fwd(void *v, double *z) {
    rsum_ctx *k = v;
    sd_row_sum_forward_f64(z, k->beta, k->X, k->B, k->K, k->D);
}
static void rsum_bwd(void *v, const double *dz) {
    rsum_ctx *k = v;
    sd_row_sum_backward_f64(k->dbeta, k->dX, dz, k->beta, k->X, k->B, k->K, k->D);
}

static void test_grad_sums(void) {
    trng = sd_rng_make(106, SD_STREAM_TEST);
    static const unsigned uses[4] = {7u, 3u, 6u, 5u};
    static const char *labels[2][4] = {
        {"modality_sum[R=1 use=111]", "modality_sum[R=1 use=011]", "modality_sum[R=1 use=110]",
         "modality_sum[R=1 use=101]"},
        {"modality_sum[R=7 use=111]", "modality_sum[R=7 use=011]", "modality_sum[R=7 use=110]",
         "modality_sum[R=7 use=101]"}};
    double w = 0;
    for (int i = 0; i < 4; i++) {
        w = fmax(w, check_msum(3, 1, 5, uses[i], labels[0][i]));
        w = fmax(w, check_msum(2, 7, 3, uses[i], labels[1][i]));
    }
    report_layer("modality_sum", w);

    rsum_ctx k = {0};
    k.B = 3;
    k.K = 7;
    k.D = 4;
    k.beta = rnd_vec(21, 1.0);
    k.X = rnd_vec(84, 1.0);
    k.dbeta = dvec(21);
    k.dX = dvec(84);
    gc_param prm[2] = {{"beta", k.beta, k.dbeta, 21, 0}, {"X", k.X, k.dX, 84, 0}};
    gc_problem pb = {"row_sum[B=3 K=7 D=4]", &k, 12, rsum_fwd, rsum_bwd, NULL, NULL};
    report_layer("row_sum", gc_run(&pb, prm, 2, 17));
    arena_free();
}

/* ======================================================================================
 * MIA. */

typedef struct {
    size_t N;
    int D, L;
    double *xa, *xt, *xv;
    double *dxa, *dxt, *dxv;
    double *W[8];  /* W0 b0 W2 b2 We be Wd bd */
    double *dW[8];
    mia_cache_f64 cache;
} mia_ctx;

static mia_weights_f64 mia_w(const mia_ctx *k) {
    mia_weights_f64 w = {k->W[0], k->W[1], k->W[2], k->W[3], k->W[4], k->W[5], k->W[6], k->W[7]};
    return w;
}
static void mia_fwd(void *v, double *y) {
    mia_ctx *k = v;
    mia_weights_f64 w = mia_w(k);
    sd_mia_forward_f64(y, &k->cache, k->xa, k->xt, k->xv, &w, k->N, k->D, k->L);
}
static void mia_bwd(void *v, const double *dy) {
    mia_ctx *k = v;
    mia_weights_f64 w = mia_w(k);
    mia_grads_f64 g = {k->dW[0], k->dW[1], k->dW[2], k->dW[3],
                       k->dW[4], k->dW[5], k->dW[6], k->dW[7]};
    double *work = dvec(sd_mia_work_len_f64(k->N, k->D, k->L));
    sd_status st = sd_mia_backward_f64(k->dxa, k->dxt, k->dxv, &g, dy, &k->cache, &w, k->N, k->D,
                                       k->L, work);
    EXPECT(st == SD_OK, "mia backward: %s", sd_status_name(st));
}
static uint64_t mia_sig(void *v) {
    mia_ctx *k = v;
    return sd_fd_sign_state(SD_FNV1A_INIT, k->cache.h, k->N * (size_t)k->D);
}

static void test_grad_mia(void) {
    trng = sd_rng_make(107, SD_STREAM_TEST);
    mia_ctx k = {0};
    k.N = 4;
    k.D = 4;
    k.L = 3;
    const size_t N = k.N, Dz = 4, Lz = 3, nx = N * Dz;
    k.xa = rnd_vec(nx, 1.0);
    k.xt = rnd_vec(nx, 1.0);
    k.xv = rnd_vec(nx, 1.0);
    k.dxa = dvec(nx);
    k.dxt = dvec(nx);
    k.dxv = dvec(nx);
    const size_t sizes[8] = {Dz * 3 * Dz, Dz, Dz * Dz, Dz, Lz * Dz, Lz, Dz * Lz, Dz};
    for (int i = 0; i < 8; i++) {
        k.W[i] = rnd_vec(sizes[i], 0.6);
        k.dW[i] = dvec(sizes[i]);
    }
    k.cache.cat = dvec(N * 3 * Dz);
    k.cache.h = dvec(nx);
    k.cache.x_in = dvec(nx);
    k.cache.lat = dvec(N * Lz);
    /* Move every pre-activation of the ReLU at least KINK_MARGIN from 0 (nudging b0). */
    double *y = dvec(nx), *pre = dvec(nx);
    int clean = 0;
    for (int iter = 0; iter < 200 && !clean; iter++) {
        mia_fwd(&k, y);
        sd_linear_forward_f64(pre, k.cache.cat, k.W[0], k.W[1], N, 3 * k.D, k.D);
        clean = 1;
        for (size_t j = 0; j < Dz; j++)
            for (size_t n = 0; n < N; n++)
                if (fabs(pre[n * Dz + j]) < KINK_MARGIN) {
                    k.W[1][j] += 2.5 * KINK_MARGIN;
                    clean = 0;
                    break;
                }
    }
    EXPECT(clean, "mia: could not move the pre-activations away from the ReLU kink");
    static const char *names[8] = {"W0", "b0", "W2", "b2", "We", "be", "Wd", "bd"};
    gc_param prm[11] = {{"x_a", k.xa, k.dxa, nx, 0},
                        {"x_t", k.xt, k.dxt, nx, 0},
                        {"x_v", k.xv, k.dxv, nx, 0}};
    for (int i = 0; i < 8; i++) prm[3 + i] = (gc_param){names[i], k.W[i], k.dW[i], sizes[i], 0};
    gc_problem pb = {"mia[N=4 D=4 L=3]", &k, nx, mia_fwd, mia_bwd, mia_sig, NULL};
    report_layer("mia", gc_run(&pb, prm, 11, 18));
    arena_free();
}

/* ======================================================================================
 * (a) The checker can fail. */

static void test_checker_can_fail(void) {
    trng = sd_rng_make(108, SD_STREAM_TEST);
    pool_ctx k;
    pool_setup(&k, 3, 5, 4, len_padded, 0.5);
    const size_t Dz = 4, nW = Dz * Dz;
    sd_rng gr = sd_rng_make(14, SD_STREAM_TEST);
    double *G = dvec((size_t)k.B * Dz), *y = dvec((size_t)k.B * Dz);
    for (size_t i = 0; i < (size_t)k.B * Dz; i++) G[i] = 2.0 * sd_rng_uniform_double(&gr) - 1.0;
    pool_fwd(&k, y);
    pool_bwd(&k, G);
    gc_problem pb = {"attn_pool[wrong]", &k, (size_t)k.B * Dz, pool_fwd, pool_bwd, NULL, NULL};
    gc_eval e = {&pb, G, y};
    const sd_fd_fn f = gc_fn(&e);
    const sd_fd_tensor t = {"Wp", k.Wp, k.dWp, nW, 0};
    double *num = dvec(nW), *bad = dvec(nW);
    uint8_t *skip = bvec(nW);
    sd_fd_numeric(&f, &t, NULL, 0, 0, num, skip);
    const sd_fd_result right = sd_fd_compare(k.dWp, num, skip, nW, 0);
    EXPECT(sd_fd_passes(&right, 0), "the correct gradient fails: %.3g", right.worst);

    /* One element's sign flipped: take the largest so the flip is a real change. */
    size_t big = 0;
    for (size_t i = 0; i < nW; i++)
        if (fabs(k.dWp[i]) > fabs(k.dWp[big])) big = i;
    memcpy(bad, k.dWp, nW * sizeof *bad);
    bad[big] = -bad[big];
    const sd_fd_result flipped = sd_fd_compare(bad, num, skip, nW, 0);
    /* Everything scaled by 1.01. */
    for (size_t i = 0; i < nW; i++) bad[i] = 1.01 * k.dWp[i];
    const sd_fd_result r_scaled = sd_fd_compare(bad, num, skip, nW, 0);
    const double scaled = r_scaled.worst;
    printf("  checker: correct dWp %.1e, one sign flipped %.1e, scaled by 1.01 %.1e\n", right.worst,
           flipped.worst, scaled);
    EXPECT(!sd_fd_passes(&flipped, 0), "a flipped sign passes the check (%.3g)", flipped.worst);
    EXPECT(!sd_fd_passes(&r_scaled, 0), "a gradient scaled by 1.01 passes the check (%.3g)", scaled);
    EXPECT(scaled > 5e-3 && scaled < 2e-2, "scaled-by-1.01 error should be ~1e-2, got %.3g",
           scaled);
    arena_free();
}

/* ======================================================================================
 * (b) Masked versus no-mask padding. */

/* Overwrites the padded frames (t >= len[b]) of x [B,T,D] with new values, NaN and Inf
 * included: in masked mode nothing of a padded frame may reach an output or a gradient. */
static void scramble_padding(double *x, const int *len, int B, int T, int D) {
    for (int b = 0; b < B; b++)
        for (int t = len[b]; t < T; t++)
            for (int d = 0; d < D; d++)
                x[((size_t)b * T + t) * D + d] = d == 0 ? NAN : d == 1 ? -INFINITY : 7.0 * d - 3.0 * t;
}

/* Puts finite values back into the padded frames (for the no-mask checks). */
static void refill_padding(double *x, const int *len, int B, int T, int D) {
    for (int b = 0; b < B; b++)
        for (int t = len[b]; t < T; t++)
            for (int d = 0; d < D; d++) x[((size_t)b * T + t) * D + d] = 0.25 * (d + 1) - 0.1 * t;
}

/* Copies of n doubles, for before/after comparisons. */
static double *dcopy(const double *a, size_t n) {
    double *c = dvec(n);
    memcpy(c, a, n * sizeof *c);
    return c;
}
static int same(const double *a, const double *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static int padded_rows_zero(const double *dx, const int *len, int B, int T, int D) {
    for (int b = 0; b < B; b++)
        for (int t = len[b]; t < T; t++)
            for (int d = 0; d < D; d++)
                if (dx[((size_t)b * T + t) * D + d] != 0.0) return 0;
    return 1;
}

static void test_masking_attn_pool(void) {
    trng = sd_rng_make(109, SD_STREAM_TEST);
    const int B = 3, T = 5, D = 4;
    const size_t ny = (size_t)B * D;
    for (int pi = 0; pi < 2; pi++) {
        const double p = pi ? 0.5 : 0.0;
        pool_ctx k;
        pool_setup(&k, B, T, D, len_padded, p);
        double *y1 = dvec(ny), *y2 = dvec(ny), *G = rnd_vec(ny, 1.0);
        pool_fwd(&k, y1);
        pool_bwd(&k, G);
        EXPECT(padded_rows_zero(k.dx, len_padded, B, T, D), "attn_pool p=%g: padded dx rows not 0", p);
        for (int b = 0; b < B; b++)
            for (int t = len_padded[b]; t < T; t++)
                EXPECT(k.cache.alpha[(size_t)b * T + t] == 0.0, "alpha of padded frame (%d,%d)", b, t);
        const size_t nx = (size_t)B * T * D, Dz = (size_t)D;
        double *g1[4] = {dcopy(k.dx, nx), dcopy(k.dc, Dz), dcopy(k.dWp, Dz * Dz), dcopy(k.dbp, Dz)};
        memset(k.dx, 0, nx * sizeof *k.dx);
        memset(k.dc, 0, Dz * sizeof *k.dc);
        memset(k.dWp, 0, Dz * Dz * sizeof *k.dWp);
        memset(k.dbp, 0, Dz * sizeof *k.dbp);
        scramble_padding(k.x, len_padded, B, T, D);
        pool_fwd(&k, y2);
        pool_bwd(&k, G);
        EXPECT(same(y1, y2, ny), "attn_pool p=%g: padding changed the output", p);
        EXPECT(same(g1[0], k.dx, nx) && same(g1[1], k.dc, Dz) && same(g1[2], k.dWp, Dz * Dz) &&
                   same(g1[3], k.dbp, Dz),
               "attn_pool p=%g: padding (NaN, Inf, numbers) changed a gradient", p);
        /* No-mask mode: the padded frames take part, so a padded sample changes (sample 1),
         * while sample 0, which has no padding, does not.
        * (Compared before the output dropout, u, which could drop a whole row when p > 0.) */
        k.len = NULL;
        refill_padding(k.x, len_padded, B, T, D);
        pool_fwd(&k, y1);
        memcpy(y1, k.cache.u, ny * sizeof *y1);
        double *x_alt = dvec((size_t)B * T * D);
        memcpy(x_alt, k.x, (size_t)B * T * D * sizeof *x_alt);
        for (int t = len_padded[1]; t < T; t++)
            for (int d = 0; d < D; d++) x_alt[((size_t)1 * T + t) * D + d] += 1.0;
        k.x = x_alt;
        pool_fwd(&k, y2);
        memcpy(y2, k.cache.u, ny * sizeof *y2);
        EXPECT(memcmp(y1 + D, y2 + D, (size_t)D * sizeof *y1) != 0,
               "attn_pool no-mask p=%g: changing padding did not change sample 1", p);
        EXPECT(memcmp(y1, y2, (size_t)D * sizeof *y1) == 0,
               "attn_pool no-mask p=%g: sample 0 changed with another sample's padding", p);
    }
    /* A sample alone (B = 1, T = len) equals its row inside the padded batch (p = 0). */
    pool_ctx k;
    pool_setup(&k, B, T, D, len_padded, 0.0);
    double *y = dvec(ny);
    pool_fwd(&k, y);
    for (int b = 0; b < B; b++) {
        pool_ctx s;
        pool_setup(&s, 1, len_padded[b], D, &len_padded[b], 0.0);
        memcpy(s.x, k.x + (size_t)b * T * D, (size_t)len_padded[b] * D * sizeof *s.x);
        memcpy(s.c, k.c, (size_t)D * sizeof *s.c);
        memcpy(s.Wp, k.Wp, (size_t)D * D * sizeof *s.Wp);
        memcpy(s.bp, k.bp, (size_t)D * sizeof *s.bp);
        double ys[4];
        pool_fwd(&s, ys);
        size_t where = 0;
        const double e = sd_max_rel_err_d(ys, y + (size_t)b * D, (size_t)D, 1e-12, &where);
        EXPECT(e < 1e-13, "attn_pool: sample %d alone differs from the batch by %.3g", b, e);
    }
    arena_free();
}

static void test_masking_cross_attn(void) {
    trng = sd_rng_make(110, SD_STREAM_TEST);
    const int B = 3, T = 5, K = 7, D = 4;
    const size_t ny = (size_t)B * K * D, nx = (size_t)B * T * D;
    for (int pi = 0; pi < 2; pi++) {
        const double p = pi ? 0.5 : 0.0;
        cross_ctx k;
        cross_setup(&k, B, T, K, D, len_padded, p);
        double *y1 = dvec(ny), *y2 = dvec(ny), *G = rnd_vec(ny, 1.0);
        cross_fwd(&k, y1);
        cross_bwd(&k, G);
        EXPECT(padded_rows_zero(k.dx, len_padded, B, T, D), "cross_attn p=%g: padded dx rows not 0", p);
        for (int b = 0; b < B; b++)
            for (int t = len_padded[b]; t < T; t++)
                for (int q = 0; q < K; q++)
                    EXPECT(k.cache.A[((size_t)b * T + t) * K + q] == 0.0, "A of padded frame");
        const size_t nq = ny, Dz = (size_t)D;
        double *g1[6] = {dcopy(k.dx, nx),       dcopy(k.dQ, nq),  dcopy(k.dWq, Dz * Dz),
                         dcopy(k.dbq, Dz),      dcopy(k.dWi, Dz * Dz), dcopy(k.dbi, Dz)};
        double *gnow[6] = {k.dx, k.dQ, k.dWq, k.dbq, k.dWi, k.dbi};
        const size_t gn[6] = {nx, nq, Dz * Dz, Dz, Dz * Dz, Dz};
        for (int i = 0; i < 6; i++) memset(gnow[i], 0, gn[i] * sizeof(double));
        scramble_padding(k.x, len_padded, B, T, D);
        cross_fwd(&k, y2);
        cross_bwd(&k, G);
        EXPECT(same(y1, y2, ny), "cross_attn p=%g: padding changed the output", p);
        for (int i = 0; i < 6; i++)
            EXPECT(same(g1[i], gnow[i], gn[i]),
                   "cross_attn p=%g: padding (NaN, Inf, numbers) changed gradient %d", p, i);
        /* No-mask mode: padded sample 2 changes, unpadded sample 0 does not (compared on O,
         * before the output dropout). */
        k.len = NULL;
        refill_padding(k.x, len_padded, B, T, D);
        cross_fwd(&k, y1);
        memcpy(y1, k.cache.O, ny * sizeof *y1);
        double *x_alt = dvec(nx);
        memcpy(x_alt, k.x, nx * sizeof *x_alt);
        for (int t = len_padded[2]; t < T; t++)
            for (int d = 0; d < D; d++) x_alt[((size_t)2 * T + t) * D + d] -= 1.0;
        k.x = x_alt;
        cross_fwd(&k, y2);
        memcpy(y2, k.cache.O, ny * sizeof *y2);
        EXPECT(memcmp(y1 + 2 * K * D, y2 + 2 * K * D, (size_t)K * D * sizeof *y1) != 0,
               "cross_attn no-mask p=%g: changing padding did not change sample 2", p);
        EXPECT(memcmp(y1, y2, (size_t)K * D * sizeof *y1) == 0,
               "cross_attn no-mask p=%g: sample 0 changed with another sample's padding", p);
    }
    cross_ctx k;
    cross_setup(&k, B, T, K, D, len_padded, 0.0);
    double *y = dvec(ny);
    cross_fwd(&k, y);
    for (int b = 0; b < B; b++) {
        cross_ctx s;
        cross_setup(&s, 1, len_padded[b], K, D, &len_padded[b], 0.0);
        memcpy(s.x, k.x + (size_t)b * T * D, (size_t)len_padded[b] * D * sizeof *s.x);
        memcpy(s.Q, k.Q + (size_t)b * K * D, (size_t)K * D * sizeof *s.Q);
        memcpy(s.Wq, k.Wq, (size_t)D * D * sizeof *s.Wq);
        memcpy(s.bq, k.bq, (size_t)D * sizeof *s.bq);
        memcpy(s.Wi, k.Wi, (size_t)D * D * sizeof *s.Wi);
        memcpy(s.bi, k.bi, (size_t)D * sizeof *s.bi);
        double *ys = dvec((size_t)K * D);
        cross_fwd(&s, ys);
        size_t where = 0;
        const double e = sd_max_rel_err_d(ys, y + (size_t)b * K * D, (size_t)K * D, 1e-12, &where);
        EXPECT(e < 1e-13, "cross_attn: sample %d alone differs from the batch by %.3g", b, e);
    }
    arena_free();
}

/* ======================================================================================
 * (c) Float versus double on the same inputs. */

/* max |f - d| / max |d|: relative to the tensor's scale (elementwise relative error is
 * meaningless for elements that cancel to ~0). */
static double fd_err(const char *what, const float *f, const double *d, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)f[i] - d[i]));
        scale = fmax(scale, fabs(d[i]));
    }
    const double e = scale > 0 ? diff / scale : diff;
    EXPECT(e <= FLOAT_DOUBLE_TOL, "float vs double %s: rel err %.3g", what, e);
    EXPECT(scale > 0, "float vs double %s: all zero, nothing compared", what);
    return e;
}

static void test_float_vs_double(void) {
    trng = sd_rng_make(111, SD_STREAM_TEST);
    double worst = 0;
    /* linear */
    {
        const size_t N = 9, I = 16, O = 12;
        double *x = rnd_vec(N * I, 1), *W = rnd_vec(O * I, 0.5), *b = rnd_vec(O, 0.5);
        double *G = rnd_vec(N * O, 1), *y = dvec(N * O), *dx = dvec(N * I), *dW = dvec(O * I),
               *db = dvec(O);
        float *yf = fvec(N * O), *dxf = fvec(N * I), *dWf = fvec(O * I), *dbf = fvec(O);
        sd_linear_forward_f64(y, x, W, b, N, (int)I, (int)O);
        sd_linear_backward_f64(dx, dW, db, G, x, W, N, (int)I, (int)O);
        float *xf = to_float(x, N * I), *Wf = to_float(W, O * I), *bf = to_float(b, O),
              *Gf = to_float(G, N * O);
        sd_linear_forward(yf, xf, Wf, bf, N, (int)I, (int)O);
        sd_linear_backward(dxf, dWf, dbf, Gf, xf, Wf, N, (int)I, (int)O);
        worst = fmax(worst, fd_err("linear y", yf, y, N * O));
        worst = fmax(worst, fd_err("linear dx", dxf, dx, N * I));
        worst = fmax(worst, fd_err("linear dW", dWf, dW, O * I));
        worst = fmax(worst, fd_err("linear db", dbf, db, O));
    }
    /* mlp, two layers, p = 0.3 (same masks in both precisions) */
    {
        mlp_ctx k;
        const int dims[2] = {16, 8};
        mlp_setup(&k, 12, 2, dims, 6, 0.3);
        const size_t N = 6, ny = N * 8;
        double *y = dvec(ny), *G = rnd_vec(ny, 1);
        mlp_fwd(&k, y);
        mlp_bwd(&k, G);
        float *xf = to_float(k.x, N * 12), *yf = fvec(ny), *dxf = fvec(N * 12);
        float *Wf[2], *bf[2], *dWf[2], *dbf[2];
        for (int l = 0; l < 2; l++) {
            const size_t nw = (size_t)dims[l] * (size_t)mlp_in(&k.s, l);
            Wf[l] = to_float(k.W[l], nw);
            bf[l] = to_float(k.b[l], (size_t)dims[l]);
            dWf[l] = fvec(nw);
            dbf[l] = fvec((size_t)dims[l]);
        }
        float *rf = fvec(k.cache_len), *af = fvec(k.cache_len);
        uint8_t *mf = bvec(k.cache_len);
        sd_rng r = sd_rng_make(k.seed, SD_STREAM_DROPOUT);
        sd_mlp_forward(yf, rf, af, mf, xf, (const float *const *)Wf, (const float *const *)bf, &k.s,
                    N, 0.3f, &r);
        EXPECT(sd_mlp_backward(dxf, dWf, dbf, to_float(G, ny), rf, af, mf, xf,
                               (const float *const *)Wf, &k.s, N, 0.3f,
                               fvec(sd_mlp_work_len(&k.s, N))) == SD_OK,
               "mlp float backward failed");
        EXPECT(memcmp(mf, k.mask, k.cache_len) == 0, "mlp: float and double masks differ");
        worst = fmax(worst, fd_err("mlp y", yf, y, ny));
        worst = fmax(worst, fd_err("mlp dx", dxf, k.dx, N * 12));
        for (int l = 0; l < 2; l++) {
            worst = fmax(worst, fd_err("mlp dW", dWf[l], k.dW[l], (size_t)dims[l] * (size_t)mlp_in(&k.s, l)));
            worst = fmax(worst, fd_err("mlp db", dbf[l], k.db[l], (size_t)dims[l]));
        }
    }
    /* attn_pool, masked, p = 0.5 */
    {
        const int B = 3, T = 5, D = 16;
        pool_ctx k;
        pool_setup(&k, B, T, D, len_padded, 0.5);
        const size_t nx = (size_t)B * T * D, ny = (size_t)B * D, Dz = (size_t)D;
        double *y = dvec(ny), *G = rnd_vec(ny, 1);
        pool_fwd(&k, y);
        pool_bwd(&k, G);
        attn_pool_cache cf = {fvec(sd_attn_pool_work_len(B, T, D)), fvec(nx), fvec((size_t)B * T), fvec(ny),
                              bvec(ny), {0, 0, 0, 0}};
        float *xf = to_float(k.x, nx), *cfv = to_float(k.c, Dz), *Wf = to_float(k.Wp, Dz * Dz),
              *bf = to_float(k.bp, Dz);
        float *yf = fvec(ny), *dxf = fvec(nx), *dcf = fvec(Dz), *dWf = fvec(Dz * Dz), *dbf = fvec(Dz);
        sd_rng r = sd_rng_make(k.seed, SD_STREAM_DROPOUT);
        sd_attn_pool_forward(yf, &cf, xf, len_padded, cfv, Wf, bf, B, T, D, 0.5f, &r);
        sd_attn_pool_backward(dxf, dcf, dWf, dbf, to_float(G, ny), &cf, xf, len_padded, cfv, Wf, B, T,
                           D, 0.5f);
        worst = fmax(worst, fd_err("attn_pool y", yf, y, ny));
        worst = fmax(worst, fd_err("attn_pool dx", dxf, k.dx, nx));
        worst = fmax(worst, fd_err("attn_pool dc", dcf, k.dc, Dz));
        worst = fmax(worst, fd_err("attn_pool dWp", dWf, k.dWp, Dz * Dz));
        worst = fmax(worst, fd_err("attn_pool dbp", dbf, k.dbp, Dz));
    }
    /* cross_attn, masked, K = 7, p = 0.5 */
    {
        const int B = 3, T = 5, K = 7, D = 16;
        cross_ctx k;
        cross_setup(&k, B, T, K, D, len_padded, 0.5);
        const size_t nx = (size_t)B * T * D, nq = (size_t)B * K * D, Dz = (size_t)D;
        double *y = dvec(nq), *G = rnd_vec(nq, 1);
        cross_fwd(&k, y);
        cross_bwd(&k, G);
        cross_attn_cache cf = {fvec(sd_cross_attn_work_len(B, T, K, D)), fvec(nx), fvec(nq),
                               fvec((size_t)B * T * K), fvec(nq), bvec(nq), {0, 0, 0, 0}};
        float *xf = to_float(k.x, nx), *Qf = to_float(k.Q, nq), *Wqf = to_float(k.Wq, Dz * Dz),
              *bqf = to_float(k.bq, Dz), *Wif = to_float(k.Wi, Dz * Dz), *bif = to_float(k.bi, Dz);
        float *yf = fvec(nq), *dxf = fvec(nx), *dQf = fvec(nq), *dWqf = fvec(Dz * Dz),
              *dbqf = fvec(Dz), *dWif = fvec(Dz * Dz), *dbif = fvec(Dz);
        sd_rng r = sd_rng_make(k.seed, SD_STREAM_DROPOUT);
        sd_cross_attn_forward(yf, &cf, xf, len_padded, Qf, Wqf, bqf, Wif, bif, B, T, K, D, 0.5f, &r);
        sd_cross_attn_backward(dxf, dQf, dWqf, dbqf, dWif, dbif, to_float(G, nq), &cf, xf, len_padded,
                            Qf, Wqf, Wif, bif, B, T, K, D, 0.5f);
        worst = fmax(worst, fd_err("cross_attn y", yf, y, nq));
        worst = fmax(worst, fd_err("cross_attn dx", dxf, k.dx, nx));
        worst = fmax(worst, fd_err("cross_attn dQ", dQf, k.dQ, nq));
        worst = fmax(worst, fd_err("cross_attn dWq", dWqf, k.dWq, Dz * Dz));
        worst = fmax(worst, fd_err("cross_attn dbq", dbqf, k.dbq, Dz));
        worst = fmax(worst, fd_err("cross_attn dWi", dWif, k.dWi, Dz * Dz));
        worst = fmax(worst, fd_err("cross_attn dbi", dbif, k.dbi, Dz));
    }
    /* modality_sum (R = 7) and row_sum */
    {
        const int B = 3, R = 7, D = 8;
        const size_t nx = (size_t)B * R * D;
        double *w = rnd_vec((size_t)B * 3, 1), *x[3], *dx[3], *dw = dvec((size_t)B * 3);
        float *xf[3], *dxf[3], *wf = to_float(w, (size_t)B * 3), *dwf = fvec((size_t)B * 3);
        for (int m = 0; m < 3; m++) {
            x[m] = rnd_vec(nx, 1);
            dx[m] = dvec(nx);
            xf[m] = to_float(x[m], nx);
            dxf[m] = fvec(nx);
        }
        double *y = dvec(nx), *G = rnd_vec(nx, 1);
        float *yf = fvec(nx);
        sd_modality_sum_forward_f64(y, w, (const double *const *)x, 3, 7u, B, R, D);
        sd_modality_sum_backward_f64(dx, dw, G, w, (const double *const *)x, 3, 7u, B, R, D);
        sd_modality_sum_forward(yf, wf, (const float *const *)xf, 3, 7u, B, R, D);
        sd_modality_sum_backward(dxf, dwf, to_float(G, nx), wf, (const float *const *)xf, 3, 7u, B, R, D);
        worst = fmax(worst, fd_err("modality_sum y", yf, y, nx));
        worst = fmax(worst, fd_err("modality_sum dw", dwf, dw, (size_t)B * 3));
        worst = fmax(worst, fd_err("modality_sum dx1", dxf[1], dx[1], nx));
        double *z = dvec((size_t)B * D), *dbeta = dvec((size_t)B * R), *dX = dvec(nx);
        float *zf = fvec((size_t)B * D), *dbetaf = fvec((size_t)B * R), *dXf = fvec(nx);
        double *beta = rnd_vec((size_t)B * R, 1), *Gz = rnd_vec((size_t)B * D, 1);
        float *betaf = to_float(beta, (size_t)B * R);
        sd_row_sum_forward_f64(z, beta, x[0], B, R, D);
        sd_row_sum_backward_f64(dbeta, dX, Gz, beta, x[0], B, R, D);
        sd_row_sum_forward(zf, betaf, xf[0], B, R, D);
        sd_row_sum_backward(dbetaf, dXf, to_float(Gz, (size_t)B * D), betaf, xf[0], B, R, D);
        worst = fmax(worst, fd_err("row_sum z", zf, z, (size_t)B * D));
        worst = fmax(worst, fd_err("row_sum dbeta", dbetaf, dbeta, (size_t)B * R));
        worst = fmax(worst, fd_err("row_sum dX", dXf, dX, nx));
    }
    /* mia */
    {
        const size_t N = 5, D = 12, L = 6, nx = N * D;
        const size_t sizes[8] = {D * 3 * D, D, D * D, D, L * D, L, D * L, D};
        double *Wd[8], *gd[8];
        float *Wf[8], *gf[8];
        for (int i = 0; i < 8; i++) {
            Wd[i] = rnd_vec(sizes[i], 0.4);
            gd[i] = dvec(sizes[i]);
            Wf[i] = to_float(Wd[i], sizes[i]);
            gf[i] = fvec(sizes[i]);
        }
        double *xa = rnd_vec(nx, 1), *xt = rnd_vec(nx, 1), *xv = rnd_vec(nx, 1), *G = rnd_vec(nx, 1);
        double *y = dvec(nx), *dxa = dvec(nx), *dxt = dvec(nx), *dxv = dvec(nx);
        mia_cache_f64 cd = {dvec(N * 3 * D), dvec(nx), dvec(nx), dvec(N * L)};
        mia_weights_f64 wd = {Wd[0], Wd[1], Wd[2], Wd[3], Wd[4], Wd[5], Wd[6], Wd[7]};
        mia_grads_f64 g64 = {gd[0], gd[1], gd[2], gd[3], gd[4], gd[5], gd[6], gd[7]};
        sd_mia_forward_f64(y, &cd, xa, xt, xv, &wd, N, (int)D, (int)L);
        EXPECT(sd_mia_backward_f64(dxa, dxt, dxv, &g64, G, &cd, &wd, N, (int)D, (int)L,
                                   dvec(sd_mia_work_len_f64(N, (int)D, (int)L))) == SD_OK,
               "mia double backward failed");
        float *xaf = to_float(xa, nx), *xtf = to_float(xt, nx), *xvf = to_float(xv, nx);
        float *yf = fvec(nx), *dxaf = fvec(nx), *dxtf = fvec(nx), *dxvf = fvec(nx);
        mia_cache cf = {fvec(N * 3 * D), fvec(nx), fvec(nx), fvec(N * L)};
        mia_weights wf = {Wf[0], Wf[1], Wf[2], Wf[3], Wf[4], Wf[5], Wf[6], Wf[7]};
        mia_grads g32 = {gf[0], gf[1], gf[2], gf[3], gf[4], gf[5], gf[6], gf[7]};
        sd_mia_forward(yf, &cf, xaf, xtf, xvf, &wf, N, (int)D, (int)L);
        EXPECT(sd_mia_backward(dxaf, dxtf, dxvf, &g32, to_float(G, nx), &cf, &wf, N, (int)D,
                               (int)L, fvec(sd_mia_work_len(N, (int)D, (int)L))) == SD_OK,
               "mia float backward failed");
        worst = fmax(worst, fd_err("mia y", yf, y, nx));
        worst = fmax(worst, fd_err("mia dx_a", dxaf, dxa, nx));
        worst = fmax(worst, fd_err("mia dx_t", dxtf, dxt, nx));
        worst = fmax(worst, fd_err("mia dx_v", dxvf, dxv, nx));
        for (int i = 0; i < 8; i++) worst = fmax(worst, fd_err("mia weight grad", gf[i], gd[i], sizes[i]));
    }
    printf("  float vs double: worst rel err (to each tensor's max) %.1e\n", worst);
    arena_free();
}

/* ======================================================================================
 * (d) Dropout: statistics, scaling, p = 0, thread-count invariance. */

static void test_dropout_properties(void) {
    const size_t n = 100000; /* above the parallel threshold */
    const float p = 0.3f;
    float *x = fvec(n), *y1 = fvec(n), *y2 = fvec(n);
    uint8_t *m1 = bvec(n), *m2 = bvec(n);
    sd_rng dr = sd_rng_make(3, SD_STREAM_TEST);
    for (size_t i = 0; i < n; i++) x[i] = 1.0f + sd_rng_uniform(&dr);

    sd_rng r = sd_rng_make(21, SD_STREAM_DROPOUT);
    r.index = 12345;
    sd_dropout_forward(y1, m1, x, n, p, &r);
    /* p = 0.3 is no multiple of 2^-8: one whole draw per element, from the next block boundary. */
    const uint64_t base = 12348;
    EXPECT(r.index == base + n, "dropout moved the rng to %llu, expected %llu",
           (unsigned long long)r.index, (unsigned long long)(base + n));
    size_t kept = 0;
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        kept += m1[i];
        if (m1[i]) EXPECT(y1[i] == x[i] * scale, "kept element %zu not scaled by 1/(1-p)", i);
        else EXPECT(y1[i] == 0.0f, "dropped element %zu not 0", i);
    }
    /* The mask is the documented function of the draws: element i uses index base + i. */
    size_t mismatch = 0;
    for (size_t i = 0; i < n; i++)
        mismatch += m1[i] != (sd_rng_uniform_at(21, SD_STREAM_DROPOUT, base + i) >= p);
    EXPECT(mismatch == 0, "%zu mask elements differ from draw base + i", mismatch);
    const double frac = (double)kept / (double)n; /* sd of the fraction: ~0.0014 */
    printf("  dropout p=0.3 kept fraction %.4f\n", frac);
    EXPECT(fabs(frac - 0.7) < 0.01, "kept fraction %.4f, expected 0.7", frac);
    /* The mean is preserved in expectation. */
    double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++) {
        sx += x[i];
        sy += y1[i];
    }
    EXPECT(fabs(sy / sx - 1.0) < 0.02, "dropout mean ratio %.4f", sy / sx);

#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    double *xd = dvec(n), *yd1 = dvec(n), *yd2 = dvec(n);
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    omp_set_num_threads(1);
    r = sd_rng_make(21, SD_STREAM_DROPOUT);
    sd_dropout_forward(y1, m1, x, n, p, &r);
    r = sd_rng_make(21, SD_STREAM_DROPOUT);
    sd_dropout_forward_f64(yd1, m1, xd, n, p, &r);
    omp_set_num_threads(2);
    r = sd_rng_make(21, SD_STREAM_DROPOUT);
    sd_dropout_forward(y2, m2, x, n, p, &r);
    EXPECT(memcmp(m1, m2, n) == 0 && memcmp(y1, y2, n * sizeof *y1) == 0,
           "float dropout differs between 1 and 2 threads");
    r = sd_rng_make(21, SD_STREAM_DROPOUT);
    sd_dropout_forward_f64(yd2, m2, xd, n, p, &r);
    EXPECT(memcmp(m1, m2, n) == 0 && memcmp(yd1, yd2, n * sizeof *yd1) == 0,
           "double dropout differs between 1 and 2 threads");
    omp_set_num_threads(saved);
#else
    printf("  (built without OpenMP: thread-count invariance not exercised)\n");
#endif

    /* p = 0: identity, rng untouched, mask untouched (and may be NULL). */
    memset(m2, 0xAB, n);
    r = sd_rng_make(21, SD_STREAM_DROPOUT);
    r.index = 777;
    sd_dropout_forward(y2, m2, x, n, 0.0f, &r);
    EXPECT(r.index == 777, "p = 0 advanced the rng");
    EXPECT(memcmp(y2, x, n * sizeof *x) == 0, "p = 0 is not the identity");
    int untouched = 1;
    for (size_t i = 0; i < n; i++) untouched &= m2[i] == 0xAB;
    EXPECT(untouched, "p = 0 wrote the mask");
    sd_dropout_forward(y2, NULL, x, n, 0.0f, &r); /* NULL mask allowed */
    memcpy(y2, x, n * sizeof *x);
    sd_dropout_forward(y2, NULL, y2, n, 0.0f, &r); /* in place */
    EXPECT(memcmp(y2, x, n * sizeof *x) == 0, "p = 0 in place is not the identity");
    /* Backward p = 0 is dx += dy. */
    float *dx = fvec(n);
    sd_dropout_backward(dx, x, NULL, n, 0.0f);
    EXPECT(memcmp(dx, x, n * sizeof *x) == 0, "p = 0 backward is not dx += dy");
    arena_free();
}

/* Dropout probabilities that are multiples of 2^-k use k bits per element (k = 1 for the
 * attention dropout's 0.5): the documented bits decide, the kept fraction is right, and a keyed
 * mask recomputed over any sub-range (as the backwards do) equals the forward's. */
static void test_dropout_bits(void) {
    const size_t n = 100003; /* not a multiple of any batch */
    float *x = fvec(n), *y = fvec(n), *z = fvec(n), *acc = fvec(n);
    uint8_t *mask = bvec(n);
    sd_rng dr = sd_rng_make(5, SD_STREAM_TEST);
    for (size_t i = 0; i < n; i++) x[i] = sd_rng_uniform(&dr) - 0.5f;
    static const struct {
        float p;
        int k;
    } cases[] = {{0.5f, 1}, {0.25f, 2}, {0.75f, 2}, {0.0625f, 4}, {0.3f, 32}, {1.0f, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const float p = cases[c].p;
        const int k = cases[c].k;
        sd_rng r = sd_rng_make(77, SD_STREAM_DROPOUT);
        r.index = 9; /* rounded up to the block boundary 12 */
        sd_dropout_forward(y, mask, x, n, p, &r);
        const uint64_t bits = (uint64_t)n * (uint64_t)k, blocks = (bits + 127) / 128;
        EXPECT(r.index == 12 + 4 * blocks, "p=%g: rng index %llu, expected %llu", p,
               (unsigned long long)r.index, (unsigned long long)(12 + 4 * blocks));
        size_t mismatch = 0, kept = 0;
        for (size_t i = 0; i < n; i++) {
            int keep;
            if (k == 32) {
                keep = sd_rng_uniform_at(77, SD_STREAM_DROPOUT, 12 + i) >= p;
            } else {
                const uint64_t bit = (uint64_t)i * (uint64_t)k;
                const uint32_t word = sd_rng_u32_at(77, SD_STREAM_DROPOUT, 12 + bit / 32);
                const uint32_t value = (word >> (bit % 32)) & ((1u << k) - 1u);
                keep = (double)value >= (double)p * (double)(1u << k);
            }
            mismatch += mask[i] != keep;
            kept += mask[i];
            const float want = keep ? x[i] * (p < 1 ? 1.0f / (1.0f - p) : 0.0f) : 0.0f;
            if (y[i] != want) mismatch++;
        }
        const double frac = (double)kept / (double)n; /* sd of the fraction <= 0.0016 */
        printf("  dropout p=%g (%d bits per element): kept fraction %.4f\n", p, k, frac);
        EXPECT(mismatch == 0, "p=%g: %zu elements differ from the documented bits", p, mismatch);
        EXPECT(fabs(frac - (1.0 - p)) < 0.008, "p=%g: kept fraction %.4f", p, frac);

        /* The keyed mask over sub-ranges, overwrite and accumulate, equals the forward. */
        r = sd_rng_make(77, SD_STREAM_DROPOUT);
        r.index = 9;
        const dropout_key key = sd_dropout_key_reserve(&r, n, p);
        EXPECT(key.base == 12, "key base %llu", (unsigned long long)key.base);
        const size_t cuts[] = {0, 1, 31, 1000, 1024, 4099, 50000, n};
        for (size_t s = 0; s + 1 < sizeof cuts / sizeof cuts[0]; s++)
            sd_dropout_apply(z + cuts[s], x + cuts[s], cuts[s], cuts[s + 1] - cuts[s], &key, 0);
        EXPECT(memcmp(z, y, n * sizeof *y) == 0, "p=%g: keyed mask over sub-ranges differs", p);
        for (size_t i = 0; i < n; i++) acc[i] = 1.0f;
        sd_dropout_apply(acc + 7, x + 7, 7, n - 7, &key, 1);
        size_t bad = 0;
        for (size_t i = 7; i < n; i++) bad += acc[i] != (mask[i] ? 1.0f + y[i] : 1.0f);
        EXPECT(acc[0] == 1.0f && bad == 0, "p=%g: accumulate differs in %zu elements", p, bad);
    }
    arena_free();
}

/* The sequence layers give bit-identical results for 1 and 2 OpenMP threads. */
static void test_thread_invariance(void) {
#ifdef _OPENMP
    trng = sd_rng_make(112, SD_STREAM_TEST);
    const int saved = omp_get_max_threads();
    const int B = 5, T = 9, K = 7, D = 16;
    const int len[5] = {9, 4, 1, 7, 2};
    cross_ctx k;
    cross_setup(&k, B, T, K, D, len, 0.5);
    pool_ctx q;
    pool_setup(&q, B, T, D, len, 0.5);
    const size_t nq = (size_t)B * K * D, nx = (size_t)B * T * D, Dz = (size_t)D;
    double *G = rnd_vec(nq, 1), *y[2], *gx[2], *gW[2], *py[2], *pdx[2], *pdW[2], *pdc[2];
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run + 1);
        memset(k.dx, 0, nx * sizeof *k.dx);
        memset(k.dWi, 0, Dz * Dz * sizeof *k.dWi);
        y[run] = dvec(nq);
        cross_fwd(&k, y[run]);
        cross_bwd(&k, G);
        gx[run] = dvec(nx);
        gW[run] = dvec(Dz * Dz);
        memcpy(gx[run], k.dx, nx * sizeof *k.dx);
        memcpy(gW[run], k.dWi, Dz * Dz * sizeof *k.dWi);
        memset(q.dx, 0, nx * sizeof *q.dx);
        memset(q.dWp, 0, Dz * Dz * sizeof *q.dWp);
        memset(q.dc, 0, Dz * sizeof *q.dc);
        py[run] = dvec((size_t)B * D);
        pool_fwd(&q, py[run]);
        pool_bwd(&q, G);
        pdx[run] = dvec(nx);
        pdW[run] = dvec(Dz * Dz);
        pdc[run] = dvec(Dz);
        memcpy(pdx[run], q.dx, nx * sizeof *q.dx);
        memcpy(pdW[run], q.dWp, Dz * Dz * sizeof *q.dWp);
        memcpy(pdc[run], q.dc, Dz * sizeof *q.dc);
    }
    omp_set_num_threads(saved);
    EXPECT(memcmp(y[0], y[1], nq * sizeof(double)) == 0, "cross_attn y depends on threads");
    EXPECT(memcmp(gx[0], gx[1], nx * sizeof(double)) == 0, "cross_attn dx depends on threads");
    EXPECT(memcmp(gW[0], gW[1], Dz * Dz * sizeof(double)) == 0, "cross_attn dWi depends on threads");
    EXPECT(memcmp(py[0], py[1], (size_t)B * D * sizeof(double)) == 0, "attn_pool y depends on threads");
    EXPECT(memcmp(pdx[0], pdx[1], nx * sizeof(double)) == 0, "attn_pool dx depends on threads");
    EXPECT(memcmp(pdW[0], pdW[1], Dz * Dz * sizeof(double)) == 0, "attn_pool dWp depends on threads");
    EXPECT(memcmp(pdc[0], pdc[1], Dz * sizeof(double)) == 0, "attn_pool dc depends on threads");
    arena_free();
#else
    sd_test_skip("built without OpenMP");
#endif
}

/* The MLP and MIA backwards allocate nothing: without scratch they return SD_E_ARG and leave
 * every gradient as it was (no NaN poisoning). */
static void test_backward_without_scratch(void) {
    enum { N = 3, I = 4, D = 5, Lat = 2 };
    mlp_shape s = {I, 2, {D, D}};
    double x[N * I] = {0}, W0[D * I] = {0}, W1[D * D] = {0}, cache[2 * N * D] = {0}, dy[N * D] = {0};
    double dx[N * I], dW0[D * I], dW1[D * D], db0[D], db1[D];
    for (size_t i = 0; i < N * I; i++) dx[i] = 0.5;
    for (size_t i = 0; i < D * I; i++) dW0[i] = 0.5;
    for (size_t i = 0; i < D * D; i++) dW1[i] = 0.5;
    for (size_t i = 0; i < D; i++) db0[i] = db1[i] = 0.5;
    const double *W[2] = {W0, W1};
    double *dW[2] = {dW0, dW1}, *db[2] = {db0, db1};
    uint8_t mask[2 * N * D] = {0};
    EXPECT(sd_mlp_backward_f64(dx, dW, db, dy, cache, cache, mask, x, W, &s, N, 0.0, NULL) == SD_E_ARG,
           "mlp backward without scratch: not SD_E_ARG");
    int untouched = 1;
    for (size_t i = 0; i < N * I; i++) untouched &= dx[i] == 0.5;
    for (size_t i = 0; i < D * I; i++) untouched &= dW0[i] == 0.5;
    for (size_t i = 0; i < D * D; i++) untouched &= dW1[i] == 0.5;
    for (size_t i = 0; i < D; i++) untouched &= db0[i] == 0.5 && db1[i] == 0.5;
    EXPECT(untouched, "mlp backward without scratch wrote into a gradient");
    EXPECT(sd_mlp_work_len_f64(&s, N) == 2 * N * D, "mlp scratch length %zu", sd_mlp_work_len_f64(&s, N));

    double cat[N * 3 * D] = {0}, h[N * D] = {0}, x_in[N * D] = {0}, lat[N * Lat] = {0};
    double Wm[3 * D * D] = {0}, g_all[3 * D * D], dxt[N * D];
    for (size_t i = 0; i < 3 * D * D; i++) g_all[i] = 0.5;
    for (size_t i = 0; i < N * D; i++) dxt[i] = 0.5;
    mia_cache_f64 c = {cat, h, x_in, lat};
    mia_weights_f64 w = {Wm, Wm, Wm, Wm, Wm, Wm, Wm, Wm};
    mia_grads_f64 g = {g_all, g_all, g_all, g_all, g_all, g_all, g_all, g_all};
    double dym[N * D] = {0};
    EXPECT(sd_mia_backward_f64(NULL, dxt, NULL, &g, dym, &c, &w, N, D, Lat, NULL) == SD_E_ARG,
           "mia backward without scratch: not SD_E_ARG");
    untouched = 1;
    for (size_t i = 0; i < 3 * D * D; i++) untouched &= g_all[i] == 0.5;
    for (size_t i = 0; i < N * D; i++) untouched &= dxt[i] == 0.5;
    EXPECT(untouched, "mia backward without scratch wrote into a gradient");
    EXPECT(sd_mia_work_len_f64(N, D, Lat) == (size_t)N * (Lat + 6 * D), "mia scratch length");
}

int main(void) {
    sd_test_run("grad.linear", test_grad_linear);
    sd_test_run("grad.relu_tanh_dropout", test_grad_elementwise);
    sd_test_run("grad.mlp", test_grad_mlp);
    sd_test_run("grad.attn_pool", test_grad_attn_pool);
    sd_test_run("grad.cross_attn", test_grad_cross_attn);
    sd_test_run("grad.modality_sum_row_sum", test_grad_sums);
    sd_test_run("grad.mia", test_grad_mia);
    sd_test_run("nn.backward_without_scratch", test_backward_without_scratch);
    sd_test_run("grad.checker_can_fail", test_checker_can_fail);
    sd_test_run("nn.masking_attn_pool", test_masking_attn_pool);
    sd_test_run("nn.masking_cross_attn", test_masking_cross_attn);
    sd_test_run("nn.float_vs_double", test_float_vs_double);
    sd_test_run("nn.dropout_properties", test_dropout_properties);
    sd_test_run("nn.dropout_bits", test_dropout_bits);
    sd_test_run("grad.chunks", test_grad_chunks);
    sd_test_run("nn.thread_invariance", test_thread_invariance);
    return sd_test_finish();
}
