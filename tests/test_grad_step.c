/* Data-parallel pieces on one process: the order-independent fixed-point gradient sum, the
 * batcher's gradient chunks, and the chunked step's gradient against the whole-batch one (no
 * dropout, so both compute the same function). The MPI runs themselves: tests/scripts/test_mpi.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/synth.h"
#include "harness.h"
#include "train/grad_step.h"
#include "train/grad_sum.h"
#include "train/train.h"

static sd_dataset *ds;

static void setup(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data", sd_test_tmpdir());
    sd_error err;
    if (sd_synth_write(dir, 90, 5, SD_SYNTH_SMALL, &err)) {
        fprintf(stderr, "synth: %s\n", err.msg);
        exit(2);
    }
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    o.require_sim = 1;
    if (sd_dataset_open(&o, &ds, &err)) {
        fprintf(stderr, "dataset: %s\n", err.msg);
        exit(2);
    }
    sd_threads_set(1);
}

/* A float of random sign and significand with an exponent in [lo, hi), or 0 one time in 16. */
static float random_float(sd_rng *r, int lo, int hi) {
    if (sd_rng_below(r, 16) == 0) return 0.0f;
    float x = ldexpf(1.0f + sd_rng_uniform(r), lo + (int)sd_rng_below(r, (uint64_t)(hi - lo)));
    return sd_rng_below(r, 2) ? -x : x;
}

/* Sums of K parts: in order, in reverse, and as two groups whose integers are added afterwards
 * (what two ranks and an MPI sum do) give the same bits, within the stated bound of the exact sum. */
static void test_grad_sum_order_independent(void) {
    enum { K = 7, N = 4000 };
    float *x = malloc(sizeof(float) * K * N), out[3][N];
    int8_t *e = malloc(N);
    int64_t *q = malloc(sizeof(int64_t) * N * 3);
    sd_rng r = sd_rng_make(3, SD_STREAM_TEST);
    for (int i = 0; i < K * N; i++) {
        const int band = (i % N) % 4; /* elements of wide and of narrow exponent range */
        x[i] = band == 0 ? random_float(&r, -140, 100) : random_float(&r, -20 - band, -10 + band);
    }
    x[3 * N + 5] = 1.0f / 0.0f; /* element 5: one part infinite */
    memset(e, (unsigned char)SD_GRAD_EXP_ZERO, N);
    for (int k = K - 1; k >= 0; k--) sd_grad_sum_exponents(e, x + k * N, N); /* max: any order */
    memset(q, 0, sizeof(int64_t) * N * 3);
    for (int k = 0; k < K; k++) sd_grad_sum_add(q, e, x + k * N, N, K);
    for (int k = K - 1; k >= 0; k--) sd_grad_sum_add(q + N, e, x + k * N, N, K);
    int64_t *a = q + 2 * N, *b = malloc(sizeof(int64_t) * N);
    memset(b, 0, sizeof(int64_t) * N);
    for (int k = 0; k < 3; k++) sd_grad_sum_add(a, e, x + k * N, N, K);
    for (int k = 3; k < K; k++) sd_grad_sum_add(b, e, x + k * N, N, K);
    for (int i = 0; i < N; i++) a[i] += b[i];
    for (int v = 0; v < 3; v++) sd_grad_sum_result(out[v], q + v * N, e, N, K);
    int same = 1;
    for (int i = 0; i < N; i++) same &= sd_test_same_float(out[0][i], out[1][i]) && sd_test_same_float(out[0][i], out[2][i]);
    EXPECT(same, "the fixed-point sum depends on the order of the parts");
    EXPECT(out[0][5] != out[0][5], "an infinite part gives %g, not NaN", (double)out[0][5]);
    /* Bound: K 2^(E - S - 1) (S = 62 - 3 for K = 7) plus the final rounding to float. */
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (i == 5) continue;
        long double exact = 0;
        for (int k = 0; k < K; k++) exact += (long double)x[k * N + i];
        double err = fabs((double)((long double)out[0][i] - exact));
        double bound = K * ldexp(1.0, e[i] - 59 - 1) + 0.5 * (double)fabsf(nextafterf(out[0][i], INFINITY) - out[0][i]);
        if (e[i] == SD_GRAD_EXP_ZERO) bound = 0;
        if (err > bound) {
            EXPECT(0, "element %d: sum %.9g, exact %.12Lg, error %g above the bound %g", i, (double)out[0][i], exact, err, bound);
            break;
        }
        double rel = exact != 0 ? err / fabs((double)exact) : 0;
        worst = rel > worst ? rel : worst;
    }
    printf("  fixed-point sum of %d parts: worst error %.2e of the exact sum (float rounding: 6e-8)\n", K, worst);
    free(x);
    free(e);
    free(q);
    free(b);
}

/* The pieces of every batch, concatenated, are the batch; each is padded to its own longest
 * utterance and holds the same frames; held pieces stay intact while the next ones are read. */
static void test_batcher_chunks(void) {
    sd_batcher_options o = sd_batcher_default_options();
    o.batch_size = 16;
    o.seed = 4;
    o.prefetch = 0;
    sd_batcher_options oc = o;
    oc.chunks = 3;
    oc.chunk_first = 0;
    oc.chunk_count = 3;
    oc.hold = 3;
    oc.prefetch = 2;
    sd_batcher *whole = NULL, *cut = NULL;
    sd_error err;
    EXPECT(!sd_batcher_open(ds, &o, &whole, &err) && !sd_batcher_open(ds, &oc, &cut, &err), "open: %s", err.msg);
    if (!whole || !cut) return;
    EXPECT(sd_batcher_num_batches(cut) == 3 * sd_batcher_num_batches(whole), "pieces: %lld for %lld batches",
           (long long)sd_batcher_num_batches(cut), (long long)sd_batcher_num_batches(whole));
    const sd_batch *b, *p[3];
    int ok = 1, batches = 0;
    while (sd_batcher_next(whole, &b, &err) == 1) {
        for (int c = 0; c < 3; c++) ok &= sd_batcher_next(cut, &p[c], &err) == 1;
        if (!ok) break;
        for (int pass = 0; pass < 2; pass++) /* pass 1: piece 0 again, after pieces 1 and 2 were read */
            for (int c = 0, j0 = 0; c < 3; j0 += p[c]->B, c++) {
                ok &= p[c]->B == (c + 1) * b->B / 3 - c * b->B / 3;
                for (int m = 0; m < SD_MOD_COUNT; m++) {
                    int T = 0;
                    for (int j = 0; j < p[c]->B; j++) T = p[c]->len[m][j] > T ? p[c]->len[m][j] : T;
                    ok &= p[c]->T[m] == T;
                    for (int j = 0; j < p[c]->B; j++) {
                        const int len = b->len[m][j0 + j], D = b->D[m];
                        ok &= p[c]->index[j] == b->index[j0 + j] && p[c]->len[m][j] == len &&
                              !memcmp((const float *)p[c]->x[m] + (size_t)j * T * D,
                                      (const float *)b->x[m] + (size_t)(j0 + j) * b->T[m] * D,
                                      sizeof(float) * (size_t)len * D);
                    }
                }
            }
        batches++;
    }
    EXPECT(ok && batches == sd_batcher_num_batches(whole), "pieces differ from their batch (batch %d)", batches);
    sd_batcher_close(cut);
    /* A rank's share: pieces 1 and 2 only. */
    oc.chunk_first = 1;
    oc.chunk_count = 2;
    oc.hold = 2;
    EXPECT(!sd_batcher_open(ds, &oc, &cut, &err), "open: %s", err.msg);
    if (cut) {
        EXPECT(sd_batcher_next(cut, &p[0], &err) == 1 && p[0]->B == 2 * 16 / 3 - 16 / 3, "first piece of rank share");
        sd_batcher_close(cut);
    }
    oc.start = 16;
    EXPECT(sd_batcher_open(ds, &oc, &cut, &err) == SD_E_ARG, "chunks with a start position accepted");
    sd_batcher_close(whole);
}

/* The gradient of one batch, whole and in 4 chunks, without dropout: the same function, so the
 * same numbers up to float rounding (the chunks sum their own GEMMs). */
static void test_chunked_gradient_matches_whole(void) {
    sd_model_config cfg = sd_model_default_config(sd_dataset_dim(ds, SD_MOD_AUDIO), sd_dataset_dim(ds, SD_MOD_TEXT),
                                                  sd_dataset_dim(ds, SD_MOD_VIDEO));
    cfg.hidden = 16;
    cfg.p_mlp = 0;
    cfg.p_att = 0;
    cfg.seed = 9;
    sd_model *m = NULL;
    sd_error err;
    if (sd_model_create(&cfg, &m, &err)) {
        EXPECT(0, "model: %s", err.msg);
        return;
    }
    const sd_loss_weights w = {0.5f, 0.5f, 0.1f, 0.7f, 0.13f, 0.5f};
    const size_t P = m->table.total;
    float *g[2] = {sd_params_alloc_buffer(&m->table), sd_params_alloc_buffer(&m->table)};
    sd_loss_terms t[2];
    int B[2] = {0, 0};
    const int chunks[2] = {1, 4};
    for (int v = 0; v < 2; v++) {
        sd_grad_step *gs = NULL;
        sd_batcher_options bo = sd_batcher_default_options();
        bo.batch_size = 26;
        bo.seed = 2;
        int64_t steps = 0;
        sd_rng rng = sd_rng_make(1, SD_STREAM_DROPOUT);
        EXPECT(!sd_grad_step_new(chunks[v], P, &gs, &err) && !sd_grad_step_open_epoch(gs, ds, &bo, &steps, &err) &&
                   sd_grad_step_next(gs, &err) == 1 &&
                   !sd_grad_step_run(gs, m, &w, &rng, 1, 0, g[v], &t[v], &B[v], &err),
               "%d chunks: %s", chunks[v], err.msg);
        EXPECT(steps == (sd_dataset_size(ds, SD_SPLIT_TRAIN) + 25) / 26, "%lld steps", (long long)steps);
        sd_grad_step_free(gs);
    }
    EXPECT(B[0] == 26 && B[1] == 26, "batch sizes %d, %d", B[0], B[1]);
    const double a[7] = {t[0].full, t[0].miss, t[0].tf, t[0].tq, t[0].f, t[0].rnc, t[0].total};
    const double b[7] = {t[1].full, t[1].miss, t[1].tf, t[1].tq, t[1].f, t[1].rnc, t[1].total};
    double terms_err = sd_max_rel_err_d(a, b, 7, 1e-6, NULL);
    /* Per tensor, the largest difference relative to the tensor's largest gradient, floored at 1e-6
     * of the largest of all: the RnC head's biases have gradients that vanish in exact arithmetic
     * (RnC sees only distances; a bias before an active ReLU shifts every row alike), ~1e-9 here,
     * pure rounding noise in both runs. */
    double gmax = 0, worst = 0;
    for (size_t k = 0; k < P; k++) gmax = fabs(g[0][k]) > gmax ? fabs(g[0][k]) : gmax;
    const char *where = "";
    for (int i = 0; i < m->table.count; i++) {
        const size_t off = m->table.specs[i].offset, n = m->table.specs[i].numel;
        double mx = 1e-6 * gmax, d = 0;
        for (size_t k = 0; k < n; k++) {
            mx = fabs(g[0][off + k]) > mx ? fabs(g[0][off + k]) : mx;
            d = fabs(g[0][off + k] - g[1][off + k]) > d ? fabs(g[0][off + k] - g[1][off + k]) : d;
        }
        if (d / mx > worst) {
            worst = d / mx;
            where = m->table.specs[i].name;
        }
    }
    printf("  4 chunks vs the whole batch: loss terms %.2e, gradient %.2e of the tensor's largest (%s)\n", terms_err,
           worst, where);
    EXPECT(terms_err < 1e-5, "loss terms differ by %g", terms_err);
    EXPECT(worst < 1e-3, "gradients differ by %g of the largest (%s)", worst, where);
    sd_free(g[0]);
    sd_free(g[1]);
    sd_model_free(m);
}

int main(void) {
    setup();
    sd_test_run("grad_sum_order_independent", test_grad_sum_order_independent);
    sd_test_run("batcher_chunks", test_batcher_chunks);
    sd_test_run("chunked_gradient_matches_whole", test_chunked_gradient_matches_whole);
    sd_dataset_close(ds);
    return sd_test_finish();
}
