/* Batches: padding and lengths, shuffling determinism, resume position, prefetch == synchronous,
 * frame caps, modality selection, errors while reading, and the packed cache. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "core/hash.h"
#include "core/status.h"
#include "data/batch.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "harness.h"
#include "io/half.h"
#include "io/npy.h"

enum { DA = 3, DT = 4, DV = 2, N = 22 }; /* 19 in train */

static char root[1024];

/* Value of frame t, column d of utterance i, modality m (unique per element). */
static float value(int i, int m, int64_t t, int64_t d) {
    return (float)(i + 1) + 0.1f * (float)m + 0.001f * (float)(t * 8 + d);
}

static int64_t frames_of(int i, int m) {
    switch (m) {
    case SD_MOD_AUDIO: return 5 + (i * 7) % 13;  /* 5..17 */
    case SD_MOD_TEXT: return 1 + i % 4;
    case SD_MOD_VIDEO: return 3 + (i * 5) % 6;
    default: return 2 + i % 3;
    }
}

static const int dims[SD_MOD_COUNT] = {DA, DT, DV, DT};
static const char *const folders[SD_MOD_COUNT] = {"audio", "text", "video", "text_sim"};

/* Modality m of utterance i with T frames, stored as dtype (the values rounded to it). */
static void write_utt_as(const char *dir, int i, int m, int64_t T, int64_t D, sd_dtype dtype) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/u%02d.npy", dir, folders[m], i);
    float *x = malloc((size_t)(T * D + 1) * sizeof *x);
    for (int64_t t = 0; t < T; t++)
        for (int64_t d = 0; d < D; d++) x[t * D + d] = value(i, m, t, d);
    sd_error err;
    EXPECT(sd_npy_write(path, x, 2, T, D, dtype, &err) == SD_OK, "%s", err.msg);
    free(x);
}

static void write_utt(const char *dir, int i, int m, int64_t T, int64_t D) {
    write_utt_as(dir, i, m, T, D, SD_DTYPE_F32);
}

/* N utterances, all in train but u01, u02 (valid) and u03 (test). */
static const char *make_ds(const char *name) {
    static char dir[1200];
    if (!root[0]) snprintf(root, sizeof root, "%s", sd_test_tmpdir());
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0755);
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        char sub[1300];
        snprintf(sub, sizeof sub, "%s/%s", dir, folders[m]);
        mkdir(sub, 0755);
    }
    char labels[4096];
    int len = sprintf(labels, "name,label,split\n");
    for (int i = 0; i < N; i++) {
        len += sprintf(labels + len, "u%02d,%.2f,%s\n", i, (double)(i % 13) * 0.25 - 1.5,
                       i == 1 || i == 2 ? "valid" : i == 3 ? "test" : "train");
        for (int m = 0; m < SD_MOD_COUNT; m++) write_utt(dir, i, m, frames_of(i, m), dims[m]);
    }
    char path[1300];
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    EXPECT(sd_test_write_file(path, labels, (size_t)len) == 0, "labels");
    return dir;
}

static sd_dataset *open_ds(const char *dir) {
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    return ds;
}

static int utt_of(const sd_dataset *ds, int64_t idx) {
    return atoi(sd_dataset_name(ds, SD_SPLIT_TRAIN, idx) + 1);
}

/* Checks one batch against the files: values, lengths, padding, labels. */
static void check_batch(const sd_dataset *ds, const sd_batch *b, const int *cap, sd_cap_mode mode) {
    for (int j = 0; j < b->B; j++) {
        int i = utt_of(ds, b->index[j]);
        EXPECT(b->label[j] == sd_dataset_label(ds, SD_SPLIT_TRAIN, b->index[j]), "label");
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            if (!b->x[m]) continue;
            int64_t T = frames_of(i, m);
            int64_t K = cap && cap[m] && T > cap[m] ? cap[m] : T;
            EXPECT(b->len[m][j] == K, "len of u%02d mod %d: %d, want %lld", i, m, b->len[m][j], (long long)K);
            const float *x = (const float *)b->x[m] + (size_t)j * (size_t)b->T[m] * (size_t)dims[m];
            int bad = 0;
            for (int64_t k = 0; k < b->T[m]; k++) {
                int64_t t = k;
                if (cap && cap[m] && T > cap[m] && mode == SD_CAP_SUBSAMPLE) t = (2 * k + 1) * T / (2 * cap[m]);
                for (int d = 0; d < dims[m]; d++) {
                    float want = k < K ? value(i, m, t, d) : 0.0f;
                    bad += x[k * dims[m] + d] != want;
                }
            }
            EXPECT(bad == 0, "u%02d mod %d: %d wrong values", i, m, bad);
        }
    }
}

static void test_padding_and_lengths(void) {
    sd_dataset *ds = open_ds(make_ds("pad"));
    if (!ds) return;
    sd_batcher_options o = sd_batcher_default_options();
    o.batch_size = 4;
    o.shuffle = 0;
    o.prefetch = 0;
    sd_batcher *bt;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open: %s", err.msg);
    const sd_batch *b;
    int64_t seen = 0;
    int nb = 0;
    while (sd_batcher_next(bt, &b, &err) == 1) {
        EXPECT(b->B == (nb < 4 ? 4 : 3), "batch %d has %d samples", nb, b->B);
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            int T = 0;
            for (int j = 0; j < b->B; j++) T = b->len[m][j] > T ? b->len[m][j] : T;
            EXPECT(b->T[m] == T && b->D[m] == dims[m], "T[%d] = %d, want %d", m, b->T[m], T);
        }
        for (int j = 0; j < b->B; j++) EXPECT(b->index[j] == seen + j, "unshuffled order");
        check_batch(ds, b, NULL, SD_CAP_SUBSAMPLE);
        seen += b->B;
        nb++;
    }
    EXPECT(seen == 19 && nb == 5, "saw %lld items in %d batches", (long long)seen, nb);
    EXPECT(sd_batcher_next(bt, &b, &err) == 0, "after the end");
    EXPECT(sd_batcher_position(bt) == 19, "position");
    sd_batcher_close(bt);
    /* drop_last, and modalities without SIM */
    o.drop_last = 1;
    o.modalities = SD_MOD_BIT(SD_MOD_AUDIO) | SD_MOD_BIT(SD_MOD_TEXT) | SD_MOD_BIT(SD_MOD_VIDEO);
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open: %s", err.msg);
    nb = 0;
    while (sd_batcher_next(bt, &b, &err) == 1) {
        nb++;
        EXPECT(b->B == 4, "drop_last left a short batch");
        EXPECT(b->x[SD_MOD_SIM] == NULL && b->len[SD_MOD_SIM] == NULL && b->T[SD_MOD_SIM] == 0, "SIM loaded");
    }
    EXPECT(nb == 4, "%d batches with drop_last", nb);
    sd_batcher_close(bt);
    sd_dataset_close(ds);
}

static void order_of(const sd_dataset *ds, uint64_t seed, int64_t epoch, int64_t *out) {
    sd_batcher_options o = sd_batcher_default_options();
    o.seed = seed;
    o.epoch = epoch;
    o.prefetch = 0;
    sd_batcher *bt;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open: %s", err.msg);
    memcpy(out, sd_batcher_order(bt), 19 * sizeof *out);
    sd_batcher_close(bt);
}

static void test_shuffle_determinism(void) {
    sd_dataset *ds = open_ds(make_ds("shuffle"));
    if (!ds) return;
    int64_t a[19], b[19], c[19], d[19];
    order_of(ds, 7, 3, a);
    order_of(ds, 7, 3, b);
    order_of(ds, 7, 4, c);
    order_of(ds, 8, 3, d);
    EXPECT(!memcmp(a, b, sizeof a), "same (seed, epoch), different order");
    EXPECT(memcmp(a, c, sizeof a) != 0, "epochs 3 and 4 share an order");
    EXPECT(memcmp(a, d, sizeof a) != 0, "seeds 7 and 8 share an order");
    int seen[19] = {0}, moved = 0;
    for (int k = 0; k < 19; k++) {
        if (a[k] >= 0 && a[k] < 19) seen[a[k]]++;
        moved += a[k] != k;
    }
    for (int k = 0; k < 19; k++) EXPECT(seen[k] == 1, "not a permutation at %d", k);
    EXPECT(moved > 10, "barely shuffled (%d moved)", moved);
    sd_dataset_close(ds);
}

/* Runs an epoch and returns a digest of each of its first 16 batches. */
typedef struct {
    int nb;
    uint64_t digest[16];
} run_t;

/* Digests of the batches left in an open batcher's epoch. */
static run_t digest_epoch(sd_batcher *bt) {
    run_t r;
    memset(&r, 0, sizeof r);
    const sd_batch *b;
    sd_error err;
    int rc;
    while ((rc = sd_batcher_next(bt, &b, &err)) == 1 && r.nb < 16) {
        uint64_t h = SD_FNV1A_INIT;
        h = sd_fnv1a(h, &b->B, sizeof b->B);
        h = sd_fnv1a(h, b->T, sizeof b->T);
        h = sd_fnv1a(h, b->label, (size_t)b->B * sizeof *b->label);
        h = sd_fnv1a(h, b->index, (size_t)b->B * sizeof *b->index);
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            if (!b->x[m]) continue;
            h = sd_fnv1a(h, b->len[m], (size_t)b->B * sizeof(int));
            h = sd_fnv1a(h, &b->dtype[m], sizeof b->dtype[m]);
            h = sd_fnv1a(h, b->x[m], (size_t)b->B * (size_t)b->T[m] * (size_t)b->D[m] * sd_dtype_size(b->dtype[m]));
        }
        r.digest[r.nb++] = h;
    }
    EXPECT(rc == 0, "epoch ended with %d: %s", rc, err.msg);
    return r;
}

static run_t run_epoch(const sd_dataset *ds, sd_batcher_options o) {
    run_t r;
    memset(&r, 0, sizeof r);
    sd_batcher *bt;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open: %s", err.msg);
    if (!bt) return r;
    r = digest_epoch(bt);
    sd_batcher_close(bt);
    return r;
}

static void test_prefetch_equals_sync_and_resume(void) {
    sd_dataset *ds = open_ds(make_ds("prefetch"));
    if (!ds) return;
    sd_batcher_options o = sd_batcher_default_options();
    o.batch_size = 3;
    o.seed = 11;
    o.epoch = 2;
    o.max_frames[SD_MOD_AUDIO] = 6;
    o.prefetch = 0;
    run_t sync = run_epoch(ds, o);
    EXPECT(sync.nb == 7, "%d batches", sync.nb);
    for (int depth = 1; depth <= 4; depth += 3) {
        o.prefetch = depth;
        run_t pre = run_epoch(ds, o);
        EXPECT(pre.nb == sync.nb && !memcmp(pre.digest, sync.digest, sizeof pre.digest),
               "prefetch %d differs from synchronous", depth);
    }
    /* Resume after 4 batches (12 items): the rest of the epoch is the same batches. */
    o.start = 12;
    o.prefetch = 2;
    run_t rest = run_epoch(ds, o);
    EXPECT(rest.nb == 3 && !memcmp(rest.digest, sync.digest + 4, 3 * sizeof(uint64_t)),
           "resumed epoch differs (%d batches)", rest.nb);
    /* A batcher closed early (reader thread mid-flight) shuts down cleanly. */
    o.start = 0;
    sd_batcher *bt;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
    const sd_batch *b;
    EXPECT(sd_batcher_next(bt, &b, &err) == 1, "first batch");
    EXPECT(sd_batcher_position(bt) == 3, "position %lld", (long long)sd_batcher_position(bt));
    sd_batcher_close(bt);
    o.start = 20;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_E_ARG, "start past the end accepted");
    sd_dataset_close(ds);
}

static void test_cap_modes(void) {
    for (int64_t T = 1; T < 40; T++)
        for (int64_t C = 1; C < 12; C++) {
            int64_t K = sd_cap_frames(T, C), prev = -1;
            EXPECT(K == (T < C ? T : C), "cap frames");
            for (int64_t k = 0; k < K; k++) {
                int64_t t = sd_cap_frame_index(T, C, SD_CAP_SUBSAMPLE, k);
                EXPECT(t > prev && t < T, "subsample index %lld of T=%lld C=%lld", (long long)t, (long long)T, (long long)C);
                prev = t;
                EXPECT(sd_cap_frame_index(T, C, SD_CAP_TRUNCATE, k) == k, "truncate index");
            }
        }
    sd_dataset *ds = open_ds(make_ds("cap"));
    if (!ds) return;
    int cap[SD_MOD_COUNT] = {7, 2, 4, 0};
    for (int mode = 0; mode < 2; mode++) {
        sd_batcher_options o = sd_batcher_default_options();
        o.batch_size = 5;
        o.prefetch = mode;
        o.cap_mode = (sd_cap_mode)mode;
        memcpy(o.max_frames, cap, sizeof cap);
        sd_batcher *bt;
        sd_error err;
        EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open: %s", err.msg);
        const sd_batch *b;
        int n = 0;
        while (sd_batcher_next(bt, &b, &err) == 1) {
            EXPECT(b->T[SD_MOD_AUDIO] <= 7 && b->T[SD_MOD_TEXT] <= 2 && b->T[SD_MOD_VIDEO] <= 4, "cap exceeded");
            check_batch(ds, b, cap, (sd_cap_mode)mode);
            n += b->B;
        }
        EXPECT(n == 19, "items %d", n);
        sd_batcher_close(bt);
    }
    sd_dataset_close(ds);
}

static void test_subset(void) {
    sd_dataset *ds = open_ds(make_ds("subset"));
    if (!ds) return;
    int64_t subset[3] = {5, 0, 9};
    sd_batcher_options o = sd_batcher_default_options();
    o.shuffle = 0;
    o.subset = subset;
    o.subset_n = 3;
    sd_batcher *bt;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open: %s", err.msg);
    const sd_batch *b;
    EXPECT(sd_batcher_next(bt, &b, &err) == 1 && b->B == 3 && b->index[0] == 5 && b->index[1] == 0 &&
               b->index[2] == 9,
           "subset order");
    sd_batcher_close(bt);
    subset[1] = 19;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_E_ARG && strstr(err.msg, "outside the train split"),
           "bad subset index: %s", err.msg);
    sd_dataset_close(ds);
}

/* A file that changes, vanishes or holds NaN after validation: an error naming it, no crash. */
static void test_read_errors(void) {
    const char *dir = make_ds("errors");
    sd_dataset *ds = open_ds(dir);
    if (!ds) return;
    char path[1400];
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        write_utt(dir, 0, SD_MOD_VIDEO, 2, DV); /* u00 had 3 frames */
        sd_batcher_options o = sd_batcher_default_options();
        o.shuffle = 0;
        o.prefetch = prefetch;
        o.batch_size = 2;
        sd_batcher *bt;
        sd_error err;
        EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
        const sd_batch *b;
        EXPECT(sd_batcher_next(bt, &b, &err) == -1 && b == NULL, "changed file read");
        EXPECT(strstr(err.msg, "/errors/video/u00.npy: shape [2, 2] differs from [3, 2]") &&
                   strstr(err.msg, "changed since"),
               "message: %s", err.msg);
        EXPECT(sd_batcher_next(bt, &b, &err) == -1, "error not sticky");
        sd_batcher_close(bt);
        write_utt(dir, 0, SD_MOD_VIDEO, 3, DV);
        snprintf(path, sizeof path, "%s/text/u04.npy", dir);
        remove(path);
        EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
        int rc;
        while ((rc = sd_batcher_next(bt, &b, &err)) == 1) {
        }
        EXPECT(rc == -1 && strstr(err.msg, "/errors/text/u04.npy: cannot open"), "vanished file: %s", err.msg);
        sd_batcher_close(bt);
        /* Issue 14, item 8: the file became a FIFO (nobody writes to it). Opening it used to block
         * the reading (prefetch) thread forever; the alarm turns such a hang into a failure. */
        EXPECT(mkfifo(path, 0644) == 0, "mkfifo");
        alarm(60);
        EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
        while ((rc = sd_batcher_next(bt, &b, &err)) == 1) {
        }
        alarm(0);
        EXPECT(rc == -1 && strstr(err.msg, "/errors/text/u04.npy: is a FIFO (named pipe), not a file"),
               "FIFO: %s", err.msg);
        sd_batcher_close(bt);
        remove(path);
        write_utt(dir, 4, SD_MOD_TEXT, frames_of(4, SD_MOD_TEXT), DT);
    }
    /* NaN slipped past a dataset opened without the value scan. */
    snprintf(path, sizeof path, "%s/audio/u05.npy", dir);
    int64_t T = frames_of(5, SD_MOD_AUDIO);
    float *x = calloc((size_t)(T * DA), sizeof *x);
    x[2 * DA + 2] = NAN;
    sd_error err;
    EXPECT(sd_npy_write(path, x, 2, T, DA, SD_DTYPE_F32, &err) == SD_OK, "write");
    free(x);
    sd_batcher_options o = sd_batcher_default_options();
    o.shuffle = 0;
    sd_batcher *bt;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
    const sd_batch *b;
    EXPECT(sd_batcher_next(bt, &b, &err) == -1 && strstr(err.msg, "/errors/audio/u05.npy: NaN at frame 2, column 2"),
           "NaN read: %s", err.msg);
    sd_batcher_close(bt);
    sd_dataset_close(ds);
}

/* Rewrites modality m of utterance i in dtype. */
static void rewrite_as(const char *dir, int i, int m, sd_dtype dtype) {
    write_utt_as(dir, i, m, frames_of(i, m), dims[m], dtype);
}

/* keep_dtype: float16 files stay float16 in the batch, with exactly the values the float32 batch
 * converts them to (padding zero), under frame caps too; a modality whose files mix types is
 * float32. A NaN in a float16 file names its frame and column. */
static void test_keep_dtype(void) {
    const char *dir = make_ds("keep");
    for (int i = 0; i < N; i++) {
        rewrite_as(dir, i, SD_MOD_AUDIO, SD_DTYPE_F16);
        rewrite_as(dir, i, SD_MOD_SIM, SD_DTYPE_F16);
    }
    rewrite_as(dir, 5, SD_MOD_VIDEO, SD_DTYPE_F16); /* video mixes float16 and float32 */
    sd_dataset *ds = open_ds(dir);
    if (!ds) return;
    sd_batcher_options o = sd_batcher_default_options();
    o.batch_size = 4;
    o.seed = 3;
    o.max_frames[SD_MOD_AUDIO] = 6;
    o.prefetch = 0;
    sd_batcher *wide = NULL, *kept = NULL;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &o, &wide, &err) == SD_OK, "open: %s", err.msg);
    o.keep_dtype = 1;
    o.prefetch = 1;
    EXPECT(sd_batcher_open(ds, &o, &kept, &err) == SD_OK, "open kept: %s", err.msg);
    const sd_batch *a, *b;
    int nb = 0, bad = 0;
    while (wide && kept && sd_batcher_next(wide, &a, &err) == 1 && sd_batcher_next(kept, &b, &err) == 1) {
        nb++;
        const sd_dtype want[SD_MOD_COUNT] = {SD_DTYPE_F16, SD_DTYPE_F32, SD_DTYPE_F32, SD_DTYPE_F16};
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            EXPECT(a->dtype[m] == SD_DTYPE_F32 && b->dtype[m] == want[m], "mod %d: dtypes %d, %d", m,
                   (int)a->dtype[m], (int)b->dtype[m]);
            EXPECT(a->T[m] == b->T[m] && !memcmp(a->len[m], b->len[m], (size_t)a->B * sizeof(int)), "lengths");
            const size_t n = (size_t)a->B * (size_t)a->T[m] * (size_t)dims[m];
            float *conv = malloc(n * sizeof *conv + 1);
            if (b->dtype[m] == SD_DTYPE_F16) sd_f16_to_f32_n(b->x[m], conv, n);
            else memcpy(conv, b->x[m], n * sizeof *conv);
            bad += memcmp(conv, a->x[m], n * sizeof *conv) != 0;
            free(conv);
        }
    }
    EXPECT(nb == 5 && bad == 0, "%d batches, %d differ from the float32 ones", nb, bad);
    EXPECT(sd_batcher_next(kept, &b, &err) == 0, "kept batcher has more batches");
    sd_batcher_close(wide);
    sd_batcher_close(kept);
    /* A NaN in a float16 file, read as float16. */
    char path[1400];
    snprintf(path, sizeof path, "%s/audio/u06.npy", dir);
    const int64_t T = frames_of(6, SD_MOD_AUDIO);
    float *x = calloc((size_t)(T * DA), sizeof *x);
    x[3 * DA + 1] = NAN;
    EXPECT(sd_npy_write(path, x, 2, T, DA, SD_DTYPE_F16, &err) == SD_OK, "write");
    free(x);
    o.shuffle = 0;
    o.max_frames[SD_MOD_AUDIO] = 0;
    EXPECT(sd_batcher_open(ds, &o, &kept, &err) == SD_OK, "open");
    int rc;
    while ((rc = sd_batcher_next(kept, &b, &err)) == 1) {
    }
    EXPECT(rc == -1 && strstr(err.msg, "/keep/audio/u06.npy: NaN at frame 3, column 1"), "NaN read: %s", err.msg);
    sd_batcher_close(kept);
    sd_dataset_close(ds);
}

/* One batcher reused for other options (the train and valid splits in turn, as training does),
 * restarted for other epochs and positions: the batches of fresh batchers, buffers kept. The
 * prefetch depth follows the memory given. */
static void test_reuse_and_restart(void) {
    sd_dataset *ds = open_ds(make_ds("reuse"));
    if (!ds) return;
    sd_batcher_options tr = sd_batcher_default_options(), va = sd_batcher_default_options();
    tr.batch_size = 3;
    tr.seed = 9;
    tr.epoch = 1;
    tr.max_frames[SD_MOD_AUDIO] = 7;
    va.split = SD_SPLIT_VALID;
    va.batch_size = 5;
    va.shuffle = 0;
    va.modalities = SD_MOD_BIT(SD_MOD_AUDIO) | SD_MOD_BIT(SD_MOD_SIM);
    run_t train1 = run_epoch(ds, tr), valid = run_epoch(ds, va);
    tr.epoch = 2;
    run_t train2 = run_epoch(ds, tr);
    tr.start = 6;
    run_t train2_rest = run_epoch(ds, tr);
    tr.start = 0;
    EXPECT(memcmp(train1.digest, train2.digest, sizeof train1.digest), "epochs 1 and 2 alike");
    sd_batcher *bt = NULL;
    sd_error err;
    EXPECT(sd_batcher_open(ds, &va, &bt, &err) == SD_OK, "open: %s", err.msg);
    if (!bt) return;
    for (int round = 0; round < 2; round++) {
        tr.epoch = 1;
        EXPECT(sd_batcher_reuse(bt, &tr, &err) == SD_OK, "reuse: %s", err.msg);
        run_t r = digest_epoch(bt);
        EXPECT(r.nb == train1.nb && !memcmp(r.digest, train1.digest, sizeof r.digest), "reused train epoch 1 differs");
        EXPECT(sd_batcher_restart(bt, 2, 0, &err) == SD_OK, "restart: %s", err.msg);
        r = digest_epoch(bt);
        EXPECT(!memcmp(r.digest, train2.digest, sizeof r.digest), "restarted epoch 2 differs");
        EXPECT(sd_batcher_restart(bt, 2, 6, &err) == SD_OK, "restart at 6");
        const sd_batch *b;
        EXPECT(sd_batcher_next(bt, &b, &err) == 1 && sd_batcher_position(bt) == 9, "position after restart");
        EXPECT(sd_batcher_restart(bt, 2, 6, &err) == SD_OK, "restart mid-epoch"); /* reader stopped mid-flight */
        r = digest_epoch(bt);
        EXPECT(r.nb == train2_rest.nb && !memcmp(r.digest, train2_rest.digest, sizeof r.digest), "restart at 6 differs");
        EXPECT(sd_batcher_reuse(bt, &va, &err) == SD_OK, "reuse valid");
        r = digest_epoch(bt);
        EXPECT(r.nb == valid.nb && !memcmp(r.digest, valid.digest, sizeof r.digest), "reused valid differs");
    }
    EXPECT(sd_batcher_restart(bt, 1, 999, &err) == SD_E_ARG, "start past the end accepted");
    const sd_batch *b;
    EXPECT(sd_batcher_next(bt, &b, &err) == -1, "a failed restart leaves a usable batcher");
    sd_batcher_close(bt);
    /* Depth by memory: at least 1, at most 8. */
    tr.prefetch = SD_PREFETCH_AUTO;
    tr.prefetch_bytes = 1;
    EXPECT(sd_batcher_open(ds, &tr, &bt, &err) == SD_OK && sd_batcher_prefetch_depth(bt) == 1, "depth for 1 byte");
    sd_batcher_close(bt);
    tr.prefetch_bytes = (size_t)1 << 30;
    EXPECT(sd_batcher_open(ds, &tr, &bt, &err) == SD_OK && sd_batcher_prefetch_depth(bt) == 8, "depth for 1 GiB");
    sd_batcher_close(bt);
    tr.prefetch = 0;
    EXPECT(sd_batcher_open(ds, &tr, &bt, &err) == SD_OK && sd_batcher_prefetch_depth(bt) == 0, "depth 0");
    sd_batcher_close(bt);
    sd_dataset_close(ds);
}

static void test_cache(void) {
    const char *dir = make_ds("cached");
    sd_dataset *ds = open_ds(dir);
    if (!ds) return;
    char cpath[1400], c16[1400];
    snprintf(cpath, sizeof cpath, "%s/../cached.f32.cache", dir);
    snprintf(c16, sizeof c16, "%s/../cached.f16.cache", dir);
    sd_cache *c = NULL, *h = NULL;
    int built = 0;
    sd_error err;
    EXPECT(sd_cache_open(ds, cpath, SD_DTYPE_F32, &c, &built, &err) == SD_OK && built, "build: %s", err.msg);
    EXPECT(sd_cache_open(ds, c16, SD_DTYPE_F16, &h, &built, &err) == SD_OK && built, "build f16: %s", err.msg);
    sd_batcher_options o = sd_batcher_default_options();
    o.batch_size = 4;
    o.seed = 5;
    o.max_frames[SD_MOD_AUDIO] = 9;
    run_t files = run_epoch(ds, o);
    o.cache = c;
    run_t cached = run_epoch(ds, o);
    EXPECT(files.nb == 5 && !memcmp(files.digest, cached.digest, sizeof files.digest),
           "float32 cache batches differ from the files");
    /* float16 cache: same lengths, values within float16 rounding (values < 25: 2^-7). */
    o.cache = h;
    o.prefetch = 0;
    o.shuffle = 0;
    sd_batcher *bt;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
    const sd_batch *b;
    double worst = 0;
    while (sd_batcher_next(bt, &b, &err) == 1)
        for (int j = 0; j < b->B; j++) {
            int i = utt_of(ds, b->index[j]);
            for (int64_t k = 0; k < b->len[SD_MOD_TEXT][j]; k++) {
                double e = fabs(((const float *)b->x[SD_MOD_TEXT])[((size_t)j * (size_t)b->T[SD_MOD_TEXT] + (size_t)k) * DT + 1] -
                                value(i, SD_MOD_TEXT, k, 1));
                worst = e > worst ? e : worst;
            }
        }
    EXPECT(worst > 0 && worst <= 1.0 / 128, "float16 cache error %g", worst);
    sd_batcher_close(bt);
    /* keep_dtype with the float16 cache: float16 batches, the same values once converted. */
    sd_batcher *kept = NULL;
    EXPECT(sd_batcher_open(ds, &o, &bt, &err) == SD_OK, "open");
    o.keep_dtype = 1;
    EXPECT(sd_batcher_open(ds, &o, &kept, &err) == SD_OK, "open kept");
    const sd_batch *k;
    int nb = 0, bad = 0;
    while (bt && kept && sd_batcher_next(bt, &b, &err) == 1 && sd_batcher_next(kept, &k, &err) == 1) {
        nb++;
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            const size_t n = (size_t)b->B * (size_t)b->T[m] * (size_t)dims[m];
            float *conv = malloc(n * sizeof *conv + 1);
            sd_f16_to_f32_n(k->x[m], conv, n);
            bad += k->dtype[m] != SD_DTYPE_F16 || memcmp(conv, b->x[m], n * sizeof *conv) != 0;
            free(conv);
        }
    }
    EXPECT(nb == 5 && bad == 0, "float16 cache kept as float16: %d batches, %d differ", nb, bad);
    sd_batcher_close(bt);
    sd_batcher_close(kept);
    sd_cache_close(c);
    sd_cache_close(h);
    /* Reopen: current, not rebuilt. Touch a source (mtime): stale, rebuilt. */
    EXPECT(sd_cache_is_current(ds, cpath, SD_DTYPE_F32, &err), "not current: %s", err.msg);
    EXPECT(!sd_cache_is_current(ds, cpath, SD_DTYPE_F16, &err), "current for another dtype");
    EXPECT(sd_cache_open(ds, cpath, SD_DTYPE_F32, &c, &built, &err) == SD_OK && !built, "rebuilt needlessly");
    sd_cache_close(c);
    char src[1400];
    snprintf(src, sizeof src, "%s/video/u07.npy", dir);
    struct utimbuf tb = {time(NULL) - 100, time(NULL) - 100};
    EXPECT(utime(src, &tb) == 0, "utime");
    EXPECT(!sd_cache_is_current(ds, cpath, SD_DTYPE_F32, &err) && strstr(err.msg, "/video/u07.npy changed"),
           "stale cache not noticed: %s", err.msg);
    EXPECT(sd_cache_open(ds, cpath, SD_DTYPE_F32, &c, &built, &err) == SD_OK && built, "not rebuilt");
    sd_cache_close(c);
    sd_dataset_close(ds);
}

int main(void) {
    sd_test_run("batch_padding_and_lengths", test_padding_and_lengths);
    sd_test_run("batch_shuffle_determinism", test_shuffle_determinism);
    sd_test_run("batch_prefetch_equals_sync_and_resume", test_prefetch_equals_sync_and_resume);
    sd_test_run("batch_cap_modes", test_cap_modes);
    sd_test_run("batch_subset", test_subset);
    sd_test_run("batch_read_errors", test_read_errors);
    sd_test_run("batch_cache", test_cache);
    sd_test_run("batch_keep_dtype", test_keep_dtype);
    sd_test_run("batch_reuse_and_restart", test_reuse_and_restart);
    return sd_test_finish();
}
