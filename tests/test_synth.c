/* The synthetic corpus: same seed -> same bytes (whatever the thread count), the output folder
 * rules, and its statistics: MOSEI-like labels and split, length ranges, and a ridge regression on
 * mean-pooled features that ranks the modalities text > simulated text > audio, video. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/status.h"
#include "core/threads.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/synth.h"
#include "harness.h"
#include "io/npy.h"

static char root[1024];

static const char *tmp_path(const char *name) {
    static char buf[4][1200];
    static int k;
    if (!root[0]) snprintf(root, sizeof root, "%s", sd_test_tmpdir());
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

/* Compares two folder trees file by file (two levels). Returns the number of files compared, -1
 * on the first difference. */
static int compare_trees(const char *a, const char *b, int depth) {
    DIR *d = opendir(a);
    if (!d) return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count >= 0) {
        if (e->d_name[0] == '.') continue;
        char pa[2400], pb[2400];
        snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
        struct stat st;
        stat(pa, &st);
        if (S_ISDIR(st.st_mode)) {
            int c = depth > 0 ? compare_trees(pa, pb, depth - 1) : -1;
            count = c < 0 ? -1 : count + c;
            continue;
        }
        size_t na, nb;
        unsigned char *x = sd_test_read_file(pa, &na), *y = sd_test_read_file(pb, &nb);
        if (!x || !y || na != nb || memcmp(x, y, na)) {
            EXPECT(0, "%s and %s differ", pa, pb);
            count = -1;
        } else {
            count++;
        }
        free(x);
        free(y);
    }
    closedir(d);
    return count;
}

static void test_deterministic(void) {
    sd_error err;
    int threads = sd_threads_get();
    sd_threads_set(1);
    EXPECT(sd_synth_write(tmp_path("det_a"), 60, 42, SD_SYNTH_SMALL, &err) == SD_OK, "%s", err.msg);
    sd_threads_set(2);
    EXPECT(sd_synth_write(tmp_path("det_b"), 60, 42, SD_SYNTH_SMALL, &err) == SD_OK, "%s", err.msg);
    sd_threads_set(threads);
    EXPECT(sd_synth_write(tmp_path("det_c"), 60, 43, SD_SYNTH_SMALL, &err) == SD_OK, "%s", err.msg);
    int n = compare_trees(tmp_path("det_a"), tmp_path("det_b"), 1);
    EXPECT(n == 4 * 60 + 2, "compared %d files (want 242, all equal)", n);
    /* Another seed: other labels and other features. */
    char pa[1400], pc[1400];
    size_t na, nc;
    snprintf(pa, sizeof pa, "%s/labels.csv", tmp_path("det_a"));
    snprintf(pc, sizeof pc, "%s/labels.csv", tmp_path("det_c"));
    unsigned char *a = sd_test_read_file(pa, &na), *c = sd_test_read_file(pc, &nc);
    EXPECT(a && c && (na != nc || memcmp(a, c, na)), "seeds 42 and 43 gave the same labels");
    free(a);
    free(c);
    snprintf(pa, sizeof pa, "%s/text/v00000_0.npy", tmp_path("det_a"));
    snprintf(pc, sizeof pc, "%s/text/v00000_0.npy", tmp_path("det_c"));
    a = sd_test_read_file(pa, &na);
    c = sd_test_read_file(pc, &nc);
    EXPECT(a && c && (na != nc || memcmp(a, c, na)), "seeds 42 and 43 gave the same text features");
    free(a);
    free(c);
}

/* synth writes its .npy files itself (no per-file fsync): they must be byte for byte what
 * sd_npy_write writes for the same data, float32 and float16. */
static void check_same_as_npy_write(const char *dir, const char *folder, const char *name) {
    char p[1400], q[1400];
    snprintf(p, sizeof p, "%s/%s/%s.npy", dir, folder, name);
    snprintf(q, sizeof q, "%s/rewritten.npy", root);
    sd_npy_header h;
    float *x = NULL;
    sd_error err;
    EXPECT(sd_npy_read(p, &h, &x, &err) == SD_OK, "%s", err.msg);
    if (!x) return;
    EXPECT(sd_npy_write(q, x, 2, h.rows, h.cols, h.dtype, &err) == SD_OK, "%s", err.msg);
    sd_free(x);
    size_t na, nb;
    unsigned char *a = sd_test_read_file(p, &na), *b = sd_test_read_file(q, &nb);
    EXPECT(a && b && na == nb && !memcmp(a, b, na), "%s differs from sd_npy_write's bytes", p);
    free(a);
    free(b);
}

static void test_npy_bytes(void) {
    const char *dir = tmp_path("det_a"); /* from test_deterministic: float32 */
    const char *folders[4] = {"audio", "text", "video", "text_sim"};
    for (int m = 0; m < 4; m++) check_same_as_npy_write(dir, folders[m], "v00003_0");
    sd_error err;
    const char *m16 = tmp_path("npy16");
    EXPECT(sd_synth_write(m16, 20, 9, SD_SYNTH_MOSEI, &err) == SD_OK, "%s", err.msg);
    for (int m = 0; m < 4; m++) check_same_as_npy_write(m16, folders[m], "v00000_0");
}

static void test_output_rules(void) {
    sd_error err;
    /* A non-empty folder is refused and left as it was. */
    const char *busy = tmp_path("busy");
    mkdir(busy, 0755);
    char keep[1400];
    snprintf(keep, sizeof keep, "%s/keep.txt", busy);
    sd_test_write_file(keep, "mine", 4);
    EXPECT(sd_synth_write(busy, 30, 1, SD_SYNTH_SMALL, &err) == SD_E_IO &&
               strstr(err.msg, "exists and is not an empty folder"),
           "non-empty out accepted: %s", err.msg);
    size_t n;
    unsigned char *k = sd_test_read_file(keep, &n);
    EXPECT(k && n == 4 && !memcmp(k, "mine", 4), "the existing file changed");
    free(k);
    DIR *d = opendir(busy);
    int entries = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) entries += e->d_name[0] != '.';
    if (d) closedir(d);
    EXPECT(entries == 1, "%d entries in the refused folder", entries);
    /* Bad arguments write nothing, not even the temporary. */
    const char *never = tmp_path("never");
    EXPECT(sd_synth_write(never, 5, 1, SD_SYNTH_SMALL, &err) == SD_E_ARG, "n = 5 accepted");
    EXPECT(sd_synth_write(never, 50, 1, 7, &err) == SD_E_ARG, "dims kind 7 accepted");
    struct stat st;
    EXPECT(stat(never, &st) != 0 && errno == ENOENT, "output created on bad arguments");
    int leftovers = 0;
    d = opendir(root);
    while (d && (e = readdir(d)) != NULL) leftovers += strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    EXPECT(leftovers == 0, "%d temporary folders left", leftovers);
    /* An existing empty folder is fine. */
    const char *empty = tmp_path("empty");
    mkdir(empty, 0755);
    EXPECT(sd_synth_write(empty, 30, 1, SD_SYNTH_SMALL, &err) == SD_OK, "empty out refused: %s", err.msg);
}

/* ---- statistics ---- */

/* Solves A x = b for a symmetric positive definite A [q, q] by Cholesky (A and b overwritten;
 * the solution is left in b). */
static void solve_spd(double *A, double *b, int q) {
    for (int j = 0; j < q; j++) {
        double s = A[j * q + j];
        for (int k = 0; k < j; k++) s -= A[j * q + k] * A[j * q + k];
        A[j * q + j] = sqrt(s);
        for (int i = j + 1; i < q; i++) {
            double t = A[i * q + j];
            for (int k = 0; k < j; k++) t -= A[i * q + k] * A[j * q + k];
            A[i * q + j] = t / A[j * q + j];
        }
    }
    for (int i = 0; i < q; i++) {
        double t = b[i];
        for (int k = 0; k < i; k++) t -= A[i * q + k] * b[k];
        b[i] = t / A[i * q + i];
    }
    for (int i = q - 1; i >= 0; i--) {
        double t = b[i];
        for (int k = i + 1; k < q; k++) t -= A[k * q + i] * b[k];
        b[i] = t / A[i * q + i];
    }
}

/* Ridge regression in double on the rows with fit[i]: w = (Z^T Z + lambda I)^-1 Z^T y, Z the
 * standardised features plus an intercept (not penalised). Writes the prediction of every row. */
static void ridge_predict(const double *X, const double *y, const int *fit, int n, int p, double lambda,
                          double *pred) {
    int q = p + 1, nfit = 0;
    double *mu = calloc((size_t)p, sizeof *mu), *sd = calloc((size_t)p, sizeof *sd);
    double *A = calloc((size_t)q * (size_t)q, sizeof *A), *b = calloc((size_t)q, sizeof *b);
    double *z = malloc((size_t)q * sizeof *z);
    for (int i = 0; i < n; i++)
        if (fit[i]) {
            nfit++;
            for (int j = 0; j < p; j++) mu[j] += X[(size_t)i * p + j];
        }
    for (int j = 0; j < p; j++) mu[j] /= nfit;
    for (int i = 0; i < n; i++)
        if (fit[i])
            for (int j = 0; j < p; j++) sd[j] += pow(X[(size_t)i * p + j] - mu[j], 2);
    for (int j = 0; j < p; j++) sd[j] = sqrt(sd[j] / nfit) + 1e-9;
    for (int i = 0; i < n; i++) {
        if (!fit[i]) continue;
        for (int j = 0; j < p; j++) z[j] = (X[(size_t)i * p + j] - mu[j]) / sd[j];
        z[p] = 1.0;
        for (int r = 0; r < q; r++) {
            b[r] += z[r] * y[i];
            for (int c = 0; c < q; c++) A[r * q + c] += z[r] * z[c];
        }
    }
    for (int j = 0; j < p; j++) A[j * q + j] += lambda;
    solve_spd(A, b, q);
    for (int i = 0; i < n; i++) {
        pred[i] = b[p];
        for (int j = 0; j < p; j++) pred[i] += b[j] * (X[(size_t)i * p + j] - mu[j]) / sd[j];
    }
    free(mu);
    free(sd);
    free(A);
    free(b);
    free(z);
}

static double mse_on(const double *pred, const double *y, const int *mask, int n) {
    double se = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (mask[i]) se += (pred[i] - y[i]) * (pred[i] - y[i]), k++;
    return se / k;
}

enum { NSTAT = 1200 };

static void test_statistics(void) {
    const char *dir = tmp_path("stats");
    sd_error err;
    EXPECT(sd_synth_write(dir, NSTAT, 2024, SD_SYNTH_SMALL, &err) == SD_OK, "%s", err.msg);
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    o.require_sim = 1;
    sd_dataset *ds = NULL;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "the corpus does not validate: %s", err.msg);
    if (!ds) return;
    sd_synth_spec spec = sd_synth_spec_of(SD_SYNTH_SMALL);
    const int D[SD_MOD_COUNT] = {spec.dim_audio, spec.dim_text, spec.dim_video, spec.dim_text};
    for (int m = 0; m < SD_MOD_COUNT; m++) EXPECT(sd_dataset_dim(ds, m) == D[m], "dim of modality %d", m);

    /* Split: CMU-MOSEI proportions 71.4 / 8.2 / 20.4 %. */
    int64_t ntr = sd_dataset_size(ds, SD_SPLIT_TRAIN), nva = sd_dataset_size(ds, SD_SPLIT_VALID),
            nte = sd_dataset_size(ds, SD_SPLIT_TEST);
    EXPECT(ntr + nva + nte == NSTAT, "total");
    EXPECT(fabs((double)ntr / NSTAT - 0.714) < 0.03 && fabs((double)nva / NSTAT - 0.082) < 0.02 &&
               fabs((double)nte / NSTAT - 0.204) < 0.02,
           "split %lld / %lld / %lld", (long long)ntr, (long long)nva, (long long)nte);

    /* Pooled features (mean over frames) of every utterance, read through the batcher. */
    double *X[SD_MOD_COUNT];
    for (int m = 0; m < SD_MOD_COUNT; m++) X[m] = calloc((size_t)NSTAT * (size_t)D[m], sizeof(double));
    double *y = calloc(NSTAT, sizeof *y);
    int *is_train = calloc(NSTAT, sizeof *is_train), *split = calloc(NSTAT, sizeof *split);
    int hist[19] = {0}, off_grid = 0;
    int64_t lmin[SD_MOD_COUNT], lmax[SD_MOD_COUNT], lsum[SD_MOD_COUNT] = {0};
    for (int m = 0; m < SD_MOD_COUNT; m++) lmin[m] = INT64_MAX, lmax[m] = 0;
    int row = 0;
    for (int s = 0; s < SD_SPLIT_COUNT; s++) {
        sd_batcher_options bo = sd_batcher_default_options();
        bo.split = (sd_split)s;
        bo.shuffle = 0;
        bo.batch_size = 128;
        sd_batcher *bt;
        EXPECT(sd_batcher_open(ds, &bo, &bt, &err) == SD_OK, "batcher: %s", err.msg);
        const sd_batch *b;
        while (sd_batcher_next(bt, &b, &err) == 1) {
            for (int j = 0; j < b->B; j++, row++) {
                y[row] = b->label[j];
                is_train[row] = s == SD_SPLIT_TRAIN;
                split[row] = s;
                double k3 = 3.0 * b->label[j];
                off_grid += fabs(k3 - round(k3)) > 1e-4 || fabs(b->label[j]) > 3.0f;
                int bin = (int)lround(k3) + 9;
                if (bin >= 0 && bin < 19) hist[bin]++;
                for (int m = 0; m < SD_MOD_COUNT; m++) {
                    int len = b->len[m][j];
                    lmin[m] = len < lmin[m] ? len : lmin[m];
                    lmax[m] = len > lmax[m] ? len : lmax[m];
                    lsum[m] += len;
                    const float *x = (const float *)b->x[m] + (size_t)j * (size_t)b->T[m] * (size_t)D[m];
                    for (int t = 0; t < len; t++)
                        for (int d = 0; d < D[m]; d++) X[m][(size_t)row * D[m] + d] += x[(size_t)t * D[m] + d] / len;
                }
            }
        }
        sd_batcher_close(bt);
    }
    EXPECT(row == NSTAT, "read %d utterances", row);

    /* Labels: multiples of 1/3 in [-3, 3], a spike at 0, more positive than negative. */
    int pos = 0, neg = 0;
    for (int k = 0; k < 19; k++) {
        if (k > 9) pos += hist[k];
        if (k < 9) neg += hist[k];
    }
    printf("  labels: P(0) %.3f, P(+1/3) %.3f, P(-1/3) %.3f, P(>0) %.3f, P(<0) %.3f, P(-3) %.3f, P(3) %.3f\n",
           hist[9] / (double)NSTAT, hist[10] / (double)NSTAT, hist[8] / (double)NSTAT, pos / (double)NSTAT,
           neg / (double)NSTAT, hist[0] / (double)NSTAT, hist[18] / (double)NSTAT);
    EXPECT(off_grid == 0, "%d labels off the 1/3 grid or outside [-3, 3]", off_grid);
    EXPECT(hist[9] > 1.3 * hist[10] && hist[9] > 1.3 * hist[8], "no spike at 0: %d vs %d, %d", hist[9], hist[8], hist[10]);
    EXPECT(hist[9] > 0.10 * NSTAT && hist[9] < 0.30 * NSTAT, "P(0) = %.3f", hist[9] / (double)NSTAT);
    EXPECT(pos > 1.5 * neg, "positive %d vs negative %d", pos, neg);
    EXPECT(hist[0] > 0 && hist[18] > 0, "the extremes -3 and 3 never occur");

    /* Lengths: per modality ranges, audio several times longer than text. */
    const char *mn[SD_MOD_COUNT] = {"audio", "text", "video", "sim"};
    for (int m = 0; m < SD_MOD_COUNT; m++)
        printf("  %s frames: %lld..%lld, mean %.1f\n", mn[m], (long long)lmin[m], (long long)lmax[m],
               (double)lsum[m] / NSTAT);
    EXPECT(lmin[SD_MOD_TEXT] == spec.words_min && lmax[SD_MOD_TEXT] == spec.words_max, "text lengths");
    EXPECT(lmin[SD_MOD_AUDIO] == spec.audio_min && lmax[SD_MOD_AUDIO] == spec.audio_max, "audio lengths");
    EXPECT(lmin[SD_MOD_VIDEO] == spec.video_min && lmax[SD_MOD_VIDEO] == spec.video_max, "video lengths");
    EXPECT(lmin[SD_MOD_SIM] >= 1 && lmin[SD_MOD_SIM] < spec.words_min && lmax[SD_MOD_SIM] > spec.words_max,
           "simulated text lengths should vary around the words (insertions, deletions)");
    EXPECT(lsum[SD_MOD_AUDIO] > 3 * lsum[SD_MOD_TEXT], "audio not several times longer than text");

    /* Word error rate of the simulated text, as reported by the generator. */
    char note[1300];
    snprintf(note, sizeof note, "%s/SYNTH.txt", dir);
    size_t nn;
    char *txt = sd_test_read_file(note, &nn);
    const char *w = txt ? strstr(txt, "word error rate of text_sim: ") : NULL;
    double wer = w ? atof(w + strlen("word error rate of text_sim: ")) : -1;
    printf("  word error rate %.4f\n", wer);
    EXPECT(wer >= 0.20 && wer <= 0.30, "word error rate %.4f", wer);
    free(txt);

    /* Ridge on pooled features, trained on train, scored on valid + test. */
    int *held = calloc(NSTAT, sizeof *held), *is_valid = calloc(NSTAT, sizeof *is_valid),
        *is_test = calloc(NSTAT, sizeof *is_test);
    for (int i = 0; i < NSTAT; i++) {
        held[i] = !is_train[i];
        is_valid[i] = split[i] == SD_SPLIT_VALID;
        is_test[i] = split[i] == SD_SPLIT_TEST;
    }
    double var = 0, mean = 0;
    int nheld = 0;
    for (int i = 0; i < NSTAT; i++)
        if (held[i]) mean += y[i], nheld++;
    mean /= nheld;
    for (int i = 0; i < NSTAT; i++)
        if (held[i]) var += (y[i] - mean) * (y[i] - mean);
    var /= nheld;
    double mse[SD_MOD_COUNT], *pred[SD_MOD_COUNT];
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        pred[m] = malloc(NSTAT * sizeof(double));
        ridge_predict(X[m], y, is_train, NSTAT, D[m], 1.0, pred[m]);
        mse[m] = mse_on(pred[m], y, held, NSTAT);
    }
    printf("  held-out R^2 of ridge on pooled features: text %.3f, simulated text %.3f, audio %.3f, video %.3f "
           "(label variance %.3f)\n",
           1 - mse[1] / var, 1 - mse[3] / var, 1 - mse[0] / var, 1 - mse[2] / var, var);
    EXPECT(mse[SD_MOD_TEXT] < 0.9 * mse[SD_MOD_SIM], "text (%.3f) not clearly better than simulated text (%.3f)",
           mse[SD_MOD_TEXT], mse[SD_MOD_SIM]);
    EXPECT(mse[SD_MOD_SIM] < 0.95 * mse[SD_MOD_AUDIO] && mse[SD_MOD_SIM] < 0.95 * mse[SD_MOD_VIDEO],
           "simulated text (%.3f) not better than audio (%.3f) and video (%.3f)", mse[SD_MOD_SIM],
           mse[SD_MOD_AUDIO], mse[SD_MOD_VIDEO]);
    EXPECT(mse[SD_MOD_AUDIO] < 0.9 * mse[SD_MOD_VIDEO], "audio (%.3f) not better than video (%.3f)",
           mse[SD_MOD_AUDIO], mse[SD_MOD_VIDEO]);
    EXPECT(mse[SD_MOD_TEXT] < 0.6 * var, "text not strongly predictive: R^2 %.3f", 1 - mse[SD_MOD_TEXT] / var);
    EXPECT(mse[SD_MOD_VIDEO] < 0.99 * var, "video carries no signal: R^2 %.3f", 1 - mse[SD_MOD_VIDEO] / var);
    /* No modality alone is enough: a late fusion of the text, audio and video predictions (weights
     * fitted on valid) beats text alone on test. */
    double *fused = malloc(3 * NSTAT * sizeof(double)), *fp = malloc(NSTAT * sizeof(double)); /* [N, 3] */
    for (int i = 0; i < NSTAT; i++) {
        fused[3 * i + 0] = pred[SD_MOD_TEXT][i];
        fused[3 * i + 1] = pred[SD_MOD_AUDIO][i];
        fused[3 * i + 2] = pred[SD_MOD_VIDEO][i];
    }
    ridge_predict(fused, y, is_valid, NSTAT, 3, 1e-6, fp);
    double mse_fused = mse_on(fp, y, is_test, NSTAT), mse_text_test = mse_on(pred[SD_MOD_TEXT], y, is_test, NSTAT);
    printf("  test MSE: text %.3f, late fusion of text, audio, video %.3f\n", mse_text_test, mse_fused);
    EXPECT(mse_fused < 0.97 * mse_text_test, "fusing modalities (%.3f) does not beat text alone (%.3f)", mse_fused,
           mse_text_test);
    free(fp);
    free(fused);
    for (int m = 0; m < SD_MOD_COUNT; m++) free(pred[m]);
    free(held);
    free(is_valid);
    free(is_test);
    for (int m = 0; m < SD_MOD_COUNT; m++) free(X[m]);
    free(y);
    free(is_train);
    free(split);
    sd_dataset_close(ds);
}

static void test_mosei_dims(void) {
    /* Few utterances, just the shapes and dtype of the benchmark corpus. */
    const char *dir = tmp_path("mosei");
    sd_error err;
    EXPECT(sd_synth_write(dir, 20, 5, SD_SYNTH_MOSEI, &err) == SD_OK, "%s", err.msg);
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    sd_dataset *ds = NULL;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "%s", err.msg);
    if (!ds) return;
    EXPECT(sd_dataset_dim(ds, SD_MOD_AUDIO) == 1024 && sd_dataset_dim(ds, SD_MOD_TEXT) == 4096 &&
               sd_dataset_dim(ds, SD_MOD_VIDEO) == 1024 && sd_dataset_dim(ds, SD_MOD_SIM) == 4096,
           "mosei dims");
    char p[1400];
    snprintf(p, sizeof p, "%s/audio/v00000_0.npy", dir);
    size_t n;
    unsigned char *h = sd_test_read_file(p, &n);
    EXPECT(h && strstr((char *)h + 10, "'descr': '<f2'"), "mosei features are not float16");
    free(h);
    sd_dataset_close(ds);
}

int main(void) {
    sd_test_run("synth_deterministic", test_deterministic);
    sd_test_run("synth_npy_bytes", test_npy_bytes);
    sd_test_run("synth_output_rules", test_output_rules);
    sd_test_run("synth_statistics", test_statistics);
    sd_test_run("synth_mosei_dims", test_mosei_dims);
    return sd_test_finish();
}
