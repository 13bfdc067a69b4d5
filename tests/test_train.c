/* Training: determinism (same seed and threads, same bytes), bit-identical resume from the
 * state written at an epoch end, the divergence guard, model selection on the validation split,
 * and the files written beside the model. Small synthetic corpus, hidden 16. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "data/synth.h"
#include "harness.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/train.h"
#include "train_fixture.h"

static char data_dir[600];
static sd_dataset *ds;

static int read_all(const char *path, char **buf, size_t *n) {
    *buf = sd_test_read_file(path, n);
    return *buf ? 0 : -1;
}

/* Two training states hold the same numbers: every tensor, and every metadata entry except the
 * history (whose epoch records carry wall-clock seconds and samples/s). */
static int same_state(const char *a, const char *b) {
    sd_safetensors *x = NULL, *y = NULL;
    sd_error err;
    int same = !sd_st_open(a, &x, &err) && !sd_st_open(b, &y, &err) && sd_st_count(x) == sd_st_count(y) &&
               sd_st_metadata_count(x) == sd_st_metadata_count(y);
    for (int i = 0; same && i < sd_st_count(x); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(x, i), *u = sd_st_find(y, t->name);
        same = u && t->end - t->begin == u->end - u->begin &&
               !memcmp(sd_st_data(x, t), sd_st_data(y, u), t->end - t->begin);
    }
    for (int i = 0; same && i < sd_st_metadata_count(x); i++) {
        const char *k = sd_st_metadata_key(x, i), *v = sd_st_metadata_get(y, k);
        same = v && (!strcmp(k, "history") || !strcmp(v, sd_st_metadata_value(x, i)));
    }
    sd_st_close(x);
    sd_st_close(y);
    return same;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void setup(void) {
    snprintf(data_dir, sizeof data_dir, "%s/data", sd_test_tmpdir());
    sd_error err;
    if (sd_synth_write(data_dir, 120, 3, SD_SYNTH_SMALL, &err)) {
        fprintf(stderr, "synth: %s\n", err.msg);
        exit(2);
    }
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = data_dir;
    o.require_sim = 1;
    if (sd_dataset_open(&o, &ds, &err)) {
        fprintf(stderr, "dataset: %s\n", err.msg);
        exit(2);
    }
    sd_threads_set(2);
}

static void test_same_seed_same_bytes(void) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/a.safetensors", sd_test_tmpdir());
    snprintf(b, sizeof b, "%s/b.safetensors", sd_test_tmpdir());
    sd_error err;
    sd_train_result r1, r2;
    sd_train_options o = small_train_options(a, 7);
    EXPECT(sd_train(ds, &o, &r1, &err) == SD_OK, "train a: %s", err.msg);
    o.out = b;
    EXPECT(sd_train(ds, &o, &r2, &err) == SD_OK, "train b: %s", err.msg);
    EXPECT(same_file(a, b), "two runs with the same seed wrote different models");
    char sa[720], sb[720];
    snprintf(sa, sizeof sa, "%s.state", a);
    snprintf(sb, sizeof sb, "%s.state", b);
    EXPECT(same_state(sa, sb), "two runs with the same seed wrote different states");
    EXPECT(exists(r1.log_path) && exists(r1.report_path), "log or report missing");
    /* A different seed gives a different model. */
    o.seed = 8;
    EXPECT(sd_train(ds, &o, &r2, &err) == SD_OK, "train c: %s", err.msg);
    EXPECT(!same_file(a, b), "the seed has no effect");
}

static void test_resume_is_bit_identical(void) {
    char a[700], b[700], state_a[720];
    snprintf(a, sizeof a, "%s/full.safetensors", sd_test_tmpdir());
    snprintf(b, sizeof b, "%s/resumed.safetensors", sd_test_tmpdir());
    snprintf(state_a, sizeof state_a, "%s.state", a);
    snprintf(snapshot, sizeof snapshot, "%s/after_epoch1.state", sd_test_tmpdir());
    sd_error err;
    sd_train_result r;
    sd_train_options o = small_train_options(a, 7);
    o.epochs = 4;
    o.on_progress = snapshot_after_first_epoch;
    o.user = state_a;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "uninterrupted: %s", err.msg);
    EXPECT(exists(snapshot), "no state after epoch 1");
    sd_train_options o2 = small_train_options(b, 7);
    o2.epochs = 4;
    o2.resume = snapshot;
    EXPECT(sd_train(ds, &o2, &r, &err) == SD_OK, "resumed: %s", err.msg);
    EXPECT(same_file(a, b), "resumed model differs from the uninterrupted one");
    char state_b[720], log_a[720], log_b[720];
    snprintf(state_b, sizeof state_b, "%s.state", b);
    EXPECT(same_state(state_a, state_b), "resumed final state differs");
    /* The log's numbers agree too, but for the timing fields; check the selected-epoch line. */
    snprintf(log_a, sizeof log_a, "%s.log.jsonl", a);
    snprintf(log_b, sizeof log_b, "%s.log.jsonl", b);
    char *la = NULL, *lb = NULL;
    size_t na = 0, nb = 0;
    read_all(log_a, &la, &na);
    read_all(log_b, &lb, &nb);
    const char *sel_a = la ? strstr(la, "{\"selected_epoch\"") : NULL, *sel_b = lb ? strstr(lb, "{\"selected_epoch\"") : NULL;
    size_t line_a = sel_a ? strcspn(sel_a, "\n") : 0, line_b = sel_b ? strcspn(sel_b, "\n") : 0;
    EXPECT(sel_a && sel_b && line_a == line_b && !strncmp(sel_a, sel_b, line_a), "selected-epoch lines differ");
    free(la);
    free(lb);
    /* Changing an option is refused on resume, naming it with both values. */
    o2.lr = 2e-3f;
    o2.settings = "hidden=16\nlr=0.002\n";
    EXPECT(sd_train(ds, &o2, &r, &err) == SD_E_ARG && strstr(err.msg, "lr: 0.001 when the run started, 0.002 now"),
           "changed lr accepted: %s", err.msg);
    o2.settings = "lr=0.001\nhidden=32\nmask=off\n"; /* order does not matter; added and changed ones do */
    EXPECT(sd_train(ds, &o2, &r, &err) == SD_E_ARG && strstr(err.msg, "hidden: 16 when the run started, 32 now") &&
               strstr(err.msg, "mask: (not set) when the run started, off now"),
           "changed settings: %s", err.msg);
}

/* Number of entries of dir whose name contains ".tmp". */
static int temporaries(const char *dir) {
    char cmd[900];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '\\.tmp'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static void interrupt_after_epoch(const sd_train_progress *p, const sd_epoch_record *r, void *user) {
    (void)user;
    if (r && p->epoch == 1) sd_interrupt_request(SIGINT);
}

/* Issue 14, items 4 and 5: a resume of another dataset is refused; an interrupted run keeps its last
 * state and no temporary; running it again without resume is refused (unless overwrite); a
 * finished run is extended to more epochs bit-identically; fewer epochs than done are refused. */
static void test_resume_rules(void) {
    char dir[700], out[720], state[740], full[720];
    snprintf(dir, sizeof dir, "%s/rules", sd_test_tmpdir());
    mkdir(dir, 0755);
    snprintf(out, sizeof out, "%s/m.safetensors", dir);
    snprintf(state, sizeof state, "%s.state", out);
    snprintf(full, sizeof full, "%s/full.safetensors", sd_test_tmpdir()); /* 4 epochs, from the test above */
    sd_error err;
    sd_train_result r;
    sd_train_options o = small_train_options(out, 7);
    o.epochs = 4;
    o.on_progress = interrupt_after_epoch;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_INTERRUPTED && r.resumable, "not interrupted: %s", err.msg);
    sd_interrupt_clear();
    EXPECT(strstr(err.msg, "interrupted (SIGINT) in epoch 3: stopped; the state after epoch 2 is") != NULL,
           "message: %s", err.msg);
    EXPECT(temporaries(dir) == 0, "%d temporaries left", temporaries(dir));
    o.on_progress = NULL;
    /* Again without resume: refused, nothing touched. */
    char *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    read_all(state, &before, &nb);
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && r.resumable && strstr(err.msg, "holds an unfinished run (2 of 4"),
           "rerun accepted: %s", err.msg);
    read_all(state, &after, &na);
    EXPECT(before && after && na == nb && !memcmp(before, after, na), "the refused rerun changed the state");
    free(before);
    free(after);
    /* Another dataset (one label changed) is refused. */
    char dir2[700], cmd[2400];
    snprintf(dir2, sizeof dir2, "%s/data2", sd_test_tmpdir());
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && sed -i '2s/,[^,]*,/,0.5,/' '%s/labels.csv'", data_dir, dir2, dir2);
    EXPECT(system(cmd) == 0, "copy");
    sd_dataset_options dopt = sd_dataset_default_options();
    dopt.dir = dir2;
    sd_dataset *other = NULL;
    EXPECT(sd_dataset_open(&dopt, &other, &err) == SD_OK, "open copy: %s", err.msg);
    o.resume = state;
    if (other)
        EXPECT(sd_train(other, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "the dataset differs"),
               "another dataset accepted: %s", err.msg);
    sd_dataset_close(other);
    /* Resumed: the uninterrupted run's bytes. */
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "resume: %s", err.msg);
    EXPECT(same_file(out, full), "interrupted + resumed differs from the uninterrupted run");
    /* A finished 2-epoch run extended to 4 epochs is the 4-epoch run. */
    o.resume = NULL;
    o.epochs = 2;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "2 epochs: %s", err.msg); /* finished: no refusal */
    o.resume = state;
    o.epochs = 4;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "extend: %s", err.msg);
    EXPECT(same_file(out, full), "extended run differs from the 4-epoch run");
    o.epochs = 3;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "already trained 4 epochs"), "fewer: %s", err.msg);
    /* A finished state does not block a fresh start; an unfinished one does, but for overwrite. */
    o.resume = NULL;
    o.epochs = 4;
    o.on_progress = interrupt_after_epoch;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_INTERRUPTED, "fresh start over a finished run: %s", err.msg);
    sd_interrupt_clear();
    o.on_progress = NULL;
    o.overwrite = 1;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "overwrite: %s", err.msg);
    EXPECT(same_file(out, full), "overwritten run differs from the uninterrupted one");
}

/* Issue 14, items 1 and 2: a long --out (legal: components under 255 bytes) gives every file its own
 * name; one too long for the system is refused before any work; an output that is an input (inside
 * a feature folder, labels.csv, the init model) is refused and nothing is written. */
static void test_output_paths(void) {
    char dir[1400], out[1500];
    int n = snprintf(dir, sizeof dir, "%s", sd_test_tmpdir());
    while (n < 1000) {
        n += snprintf(dir + n, sizeof dir - (size_t)n, "/%.*s", 200,
                      "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
                      "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
                      "dddddddddddddddddddddddddddddddd");
        mkdir(dir, 0755);
    }
    snprintf(out, sizeof out, "%s/m.safetensors", dir);
    sd_error err;
    sd_train_result r;
    sd_train_options o = small_train_options(out, 7);
    o.epochs = 1;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "long path (%zu bytes): %s", strlen(out), err.msg);
    const char *suffix[4] = {"", ".state", ".log.jsonl", ".report.html"};
    for (int k = 0; k < 4; k++) {
        char p[1600];
        snprintf(p, sizeof p, "%s%s", out, suffix[k]);
        EXPECT(exists(p), "%zu-byte path: %s is missing", strlen(out), suffix[k]);
    }
    sd_model *m = NULL;
    EXPECT(sd_model_load(out, &m, &err) == SD_OK, "the model is not a model: %s", err.msg);
    sd_model_free(m);
    /* Beyond PATH_MAX with the suffixes: refused at once. */
    static char huge[PATH_MAX + 64];
    memset(huge, 'x', sizeof huge - 1);
    huge[0] = '/';
    for (size_t i = 100; i < sizeof huge - 1; i += 100) huge[i] = '/';
    huge[PATH_MAX - 8] = '\0';
    o.out = huge;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "limit"), "too long: %s", err.msg);
    /* Outputs that are inputs. */
    char bad[900];
    snprintf(bad, sizeof bad, "%s/audio/x.npy", data_dir);
    o.out = bad;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "lies inside the audio feature folder"),
           "out in a feature folder: %s", err.msg);
    EXPECT(!exists(bad), "written into the feature folder");
    snprintf(bad, sizeof bad, "%s/labels.csv", data_dir);
    o.out = bad;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "labels.csv of the dataset"), "labels: %s",
           err.msg);
    snprintf(bad, sizeof bad, "%s/full.safetensors", sd_test_tmpdir());
    o.out = o.init = bad;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_E_ARG && strstr(err.msg, "the initial weights"), "init: %s", err.msg);
}

static void test_divergence_guard(void) {
    /* A copy of the corpus with one training file of huge (finite) values: the loss overflows. */
    char dir[700], cmd[1600], out[720];
    snprintf(dir, sizeof dir, "%s/diverge", sd_test_tmpdir());
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", data_dir, dir);
    EXPECT(system(cmd) == 0, "copy corpus");
    sd_dataset_options dopt = sd_dataset_default_options();
    dopt.dir = dir;
    dopt.require_sim = 1;
    sd_dataset *bad = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&dopt, &bad, &err) == SD_OK, "open copy: %s", err.msg);
    if (!bad) return;
    const char *name = sd_dataset_name(bad, SD_SPLIT_TRAIN, 0);
    char path[900];
    snprintf(path, sizeof path, "%s/audio/%s.npy", dir, name);
    sd_dataset_close(bad);
    sd_npy_header h;
    float *x = NULL;
    EXPECT(sd_npy_read(path, &h, &x, &err) == SD_OK, "read %s", path);
    if (!x) return;
    for (int64_t i = 0; i < h.rows * h.cols; i++) x[i] = 3e38f;
    EXPECT(sd_npy_write(path, x, 2, h.rows, h.cols, SD_DTYPE_F32, &err) == SD_OK, "write");
    free(x);
    EXPECT(sd_dataset_open(&dopt, &bad, &err) == SD_OK, "open diverging copy: %s", err.msg);
    if (!bad) return;
    snprintf(out, sizeof out, "%s/diverged.safetensors", sd_test_tmpdir());
    sd_train_options o = small_train_options(out, 7);
    o.shuffle = 0;
    o.normalize = SD_NORMALIZE_NONE; /* standardisation would scale the huge values down to finite losses */
    sd_train_result r;
    sd_status st = sd_train(bad, &o, &r, &err);
    EXPECT(st == SD_E_NUMERIC, "divergence not caught (status %d)", st);
    EXPECT(strstr(err.msg, "diverged") && strstr(err.msg, "epoch 1, batch 1") && strstr(err.msg, "not finite") &&
               strstr(err.msg, "nothing was written"),
           "message: %s", err.msg);
    EXPECT(!exists(out), "a diverged run wrote a model");
    sd_dataset_close(bad);
}

static void test_select_last_and_log(void) {
    char out[700];
    snprintf(out, sizeof out, "%s/last.safetensors", sd_test_tmpdir());
    sd_train_options o = small_train_options(out, 7);
    o.select = SD_SELECT_LAST;
    o.epochs = 2;
    sd_train_result r;
    sd_error err;
    EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "train: %s", err.msg);
    EXPECT(r.best_epoch == 1, "select last kept epoch %d", r.best_epoch);
    char *log = NULL, *html = NULL;
    size_t n = 0;
    EXPECT(!read_all(r.log_path, &log, &n), "log");
    int lines = 0;
    for (size_t i = 0; log && i < n; i++) lines += log[i] == '\n';
    EXPECT(lines == 3, "log has %d lines, expected 2 epochs + the selection line", lines);
    EXPECT(log && strstr(log, "\"valid_missing\"") && strstr(log, "\"samples_per_s\"") && strstr(log, "\"seconds\"") &&
               strstr(log, "\"selected_epoch\": 2") && strstr(log, "{\"epoch\": 1,") &&
               strstr(log, "{\"epoch\": 2,") && !strstr(log, "\"epoch\": 0"),
           "log content (1-based epochs, as on the console)");
    EXPECT(!read_all(r.report_path, &html, &n), "report");
    EXPECT(html && strstr(html, "<svg") && strstr(html, "selected") && !strstr(html, "<script"), "report content");
    free(log);
    free(html);
}

/* --train-subset: how many training utterances each epoch measures in evaluation mode changes the
 * log, never the model; 0 (the default) measures none (the log and report then have the training
 * pass's metrics only), -1 as many as the validation split, at least 256. */
static void test_train_subset_sizes(void) {
    char a[700], b[700], c[700];
    snprintf(a, sizeof a, "%s/sub_auto.safetensors", sd_test_tmpdir());
    snprintf(b, sizeof b, "%s/sub_none.safetensors", sd_test_tmpdir());
    snprintf(c, sizeof c, "%s/sub_ten.safetensors", sd_test_tmpdir());
    sd_train_options o = small_train_options(b, 7);
    sd_train_result r[3];
    sd_error err;
    EXPECT(o.train_subset == 0, "the default measures a training subset (%lld)", (long long)o.train_subset);
    EXPECT(sd_train(ds, &o, &r[1], &err) == SD_OK, "train none: %s", err.msg);
    o.out = a;
    o.train_subset = -1;
    EXPECT(sd_train(ds, &o, &r[0], &err) == SD_OK, "train auto: %s", err.msg);
    o.out = c;
    o.train_subset = 10;
    EXPECT(sd_train(ds, &o, &r[2], &err) == SD_OK, "train ten: %s", err.msg);
    EXPECT(same_file(a, b) && same_file(a, c), "the measured subset changed the model");
    char *log[3] = {NULL, NULL, NULL}, *html = NULL;
    size_t n = 0;
    for (int k = 0; k < 3; k++) EXPECT(!read_all(r[k].log_path, &log[k], &n), "log %d", k);
    const int64_t n_train = sd_dataset_size(ds, SD_SPLIT_TRAIN);
    char all[32];
    snprintf(all, sizeof all, "\"n\": %lld,", (long long)(n_train < 256 ? n_train : 256));
    EXPECT(log[0] && strstr(log[0], "\"train_full\"") && strstr(log[0], all),
           "-1 measures min(256, the training split) here (%s)", all);
    EXPECT(log[1] && !strstr(log[1], "\"train_full\"") && !strstr(log[1], "\"train_missing\"") &&
               strstr(log[1], "\"valid_full\""),
           "--train-subset 0 still wrote training metrics");
    EXPECT(log[2] && strstr(log[2], "\"train_full\"") && strstr(log[2], "\"n\": 10,"), "10 measured");
    EXPECT(!read_all(r[1].report_path, &html, &n), "report");
    EXPECT(log[1] && strstr(log[1], "\"train_pass_full\"") && strstr(log[1], "\"train_pass_missing\""),
           "no training-pass metrics without a subset");
    EXPECT(html && strstr(html, "(0 of them measured in evaluation mode each epoch)") &&
               !strstr(html, "training subset, complete") && strstr(html, "training pass, complete"),
           "report without the evaluation-mode training metrics, with the training pass's");
    for (int k = 0; k < 3; k++) free(log[k]);
    free(html);
}

/* The training pass's metrics are the metrics of the predictions the steps made: their MSE is the
 * epoch's prediction loss (a mean over every item, as the loss terms are weighted by batch size),
 * and without dropout and with a learning rate too small to move a parameter they match the
 * evaluation-mode metrics of the whole training split. Over 2 ranks' worth of gradient chunks
 * too (the gathered predictions). */
static void test_training_pass_metrics(void) {
    for (int chunks = 1; chunks <= 2; chunks++) {
        char a[700];
        snprintf(a, sizeof a, "%s/pass%d.safetensors", sd_test_tmpdir(), chunks);
        sd_train_options o = small_train_options(a, 7);
        o.epochs = 1;
        o.grad_chunks = chunks;
        sd_train_result r;
        sd_error err;
        EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "train with dropout: %s", err.msg);
        sd_train_state s;
        EXPECT(sd_train_state_load(r.state_path, &s, &err) == SD_OK, "state: %s", err.msg);
        const int64_t n = sd_dataset_size(ds, SD_SPLIT_TRAIN);
        const sd_epoch_record *e = &s.history[0];
        EXPECT(e->pass_full.n == (size_t)n && e->pass_miss.n == (size_t)n && e->samples == n, "training pass measured %lld of %lld",
               (long long)e->pass_full.n, (long long)n);
        EXPECT(fabs(e->pass_full.mse - e->loss.full) < 1e-5 * (1 + e->loss.full) &&
                   fabs(e->pass_miss.mse - e->loss.miss) < 1e-5 * (1 + e->loss.miss),
               "training-pass MSE %.8g / %.8g, prediction losses %.8g / %.8g", e->pass_full.mse, e->pass_miss.mse,
               e->loss.full, e->loss.miss);
        sd_train_state_release(&s);

        o.model.p_mlp = o.model.p_att = 0.0f;
        o.lr = 1e-12f;
        o.weight_decay = 0.0f;
        o.train_subset = n;
        o.settings = "hidden=16\nlr=1e-12\n";
        EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "train without dropout: %s", err.msg);
        EXPECT(sd_train_state_load(r.state_path, &s, &err) == SD_OK, "state: %s", err.msg);
        e = &s.history[0];
        EXPECT(e->train_full.n == (size_t)n && e->pass_full.n == (size_t)n, "both measured all %lld", (long long)n);
        EXPECT(fabs(e->pass_full.mae - e->train_full.mae) < 1e-5 && fabs(e->pass_miss.mae - e->train_miss.mae) < 1e-5 &&
                   fabs(e->pass_full.corr - e->train_full.corr) < 1e-4 && e->pass_full.acc7 == e->train_full.acc7,
               "chunks %d: training pass MAE %.8f / %.8f, evaluation mode %.8f / %.8f", chunks, e->pass_full.mae,
               e->pass_miss.mae, e->train_full.mae, e->train_miss.mae);
        sd_train_state_release(&s);

        /* A complete-flow-only objective does not run the text-missing flow: no metrics for it. */
        o.w.miss = o.w.tf = o.w.tq = o.w.f = o.w.rnc = 0.0f;
        o.train_subset = 0;
        EXPECT(sd_train(ds, &o, &r, &err) == SD_OK, "train the complete flow only: %s", err.msg);
        EXPECT(sd_train_state_load(r.state_path, &s, &err) == SD_OK, "state: %s", err.msg);
        e = &s.history[0];
        EXPECT(e->pass_full.n == (size_t)n && e->pass_miss.n == 0 && fabs(e->pass_full.mse - e->loss.full) < 1e-5,
               "complete flow only: %zu / %zu measured", e->pass_full.n, e->pass_miss.n);
        sd_train_state_release(&s);
    }
}

/* The small-corpus rule of --preset auto: the demo's corpus gets the demo's batch and lr; a
 * MOSEI-sized one keeps the paper's; a tiny one the smallest batch. */
static void test_auto_schedule(void) {
    sd_auto_schedule a = sd_train_auto_schedule(857, 12, 128, 1e-4f);
    EXPECT(a.chosen && a.batch == 32 && a.lr == 1e-3f && a.steps == 12 * 27 && a.paper_steps == 12 * 7,
           "demo corpus: chosen %d batch %d lr %g steps %lld/%lld", a.chosen, a.batch, (double)a.lr,
           (long long)a.steps, (long long)a.paper_steps);
    a = sd_train_auto_schedule(16326, 25, 128, 1e-4f);
    EXPECT(!a.chosen && a.batch == 128 && a.lr == 1e-4f, "MOSEI keeps the paper's schedule");
    a = sd_train_auto_schedule(3000, 25, 128, 1e-4f); /* 24 steps an epoch, 600 in all */
    EXPECT(!a.chosen, "3000 utterances, 25 epochs: enough steps");
    a = sd_train_auto_schedule(3000, 10, 128, 1e-4f); /* 240 in all: batch 64, 470 */
    EXPECT(a.chosen && a.batch == 64 && a.lr == 3e-4f, "3000 utterances, 10 epochs: batch %d", a.batch);
    a = sd_train_auto_schedule(40, 3, 128, 1e-4f);
    EXPECT(a.chosen && a.batch == 8 && a.steps == 15, "tiny corpus: batch %d, %lld steps", a.batch, (long long)a.steps);
}


/* The validation pass (both flows in one pass, frames shared, batches in the files' dtype) gives
 * exactly the metrics of sd_predict_split run for each flow alone on the saved model. */
static sd_epoch_record last_record;
static void keep_record(const sd_train_progress *p, const sd_epoch_record *r, void *user) {
    (void)p;
    (void)user;
    if (r) last_record = *r;
}

static void check_validation_matches_predict(const sd_dataset *d, const char *name) {
    char out[700];
    snprintf(out, sizeof out, "%s/%s.safetensors", sd_test_tmpdir(), name);
    sd_train_options o = small_train_options(out, 7);
    o.select = SD_SELECT_LAST;
    o.epochs = 2;
    o.on_progress = keep_record;
    sd_train_result r;
    sd_error err;
    EXPECT(sd_train(d, &o, &r, &err) == SD_OK, "train: %s", err.msg);
    sd_model *m = NULL;
    EXPECT(sd_model_load(out, &m, &err) == SD_OK, "load: %s", err.msg);
    if (!m) return;
    const int64_t n = sd_dataset_size(d, SD_SPLIT_VALID);
    float *p = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) y[i] = sd_dataset_label(d, SD_SPLIT_VALID, i);
    for (int missing = 0; missing < 2; missing++) {
        EXPECT(sd_predict_split(m, d, SD_SPLIT_VALID, missing, NULL, n, o.eval_batch_size, p, &err) == SD_OK,
               "predict: %s", err.msg);
        sd_metrics want;
        sd_metrics_compute(p, y, (size_t)n, &want);
        const sd_metrics *got = missing ? &last_record.valid_miss : &last_record.valid_full;
        EXPECT(got->mae == want.mae && got->mse == want.mse && got->n == want.n,
               "%s flow %d: validation MAE %.17g, predictions give %.17g", name, missing, got->mae, want.mae);
    }
    free(p);
    free(y);
    sd_model_free(m);
}

/* The dataset at src, every feature file rewritten in float16, at dst. */
static void write_f16_copy(const char *src, const char *dst) {
    static const char *const folders[4] = {"audio", "text", "video", "text_sim"};
    char a[1400], b[1400];
    mkdir(dst, 0755);
    for (int m = 0; m < 4; m++) {
        snprintf(b, sizeof b, "%s/%s", dst, folders[m]);
        mkdir(b, 0755);
    }
    snprintf(a, sizeof a, "%s/labels.csv", src);
    snprintf(b, sizeof b, "%s/labels.csv", dst);
    size_t n = 0;
    char *labels = sd_test_read_file(a, &n);
    EXPECT(labels && sd_test_write_file(b, labels, n) == 0, "labels");
    free(labels);
    for (int split = 0; split < SD_SPLIT_COUNT; split++)
        for (int64_t i = 0; i < sd_dataset_size(ds, (sd_split)split); i++)
            for (int m = 0; m < 4; m++) {
                const char *name = sd_dataset_name(ds, (sd_split)split, i);
                snprintf(a, sizeof a, "%s/%s/%s.npy", src, folders[m], name);
                snprintf(b, sizeof b, "%s/%s/%s.npy", dst, folders[m], name);
                sd_npy_header h;
                float *x = NULL;
                sd_error err;
                EXPECT(sd_npy_read(a, &h, &x, &err) == SD_OK, "%s", err.msg);
                EXPECT(x && sd_npy_write(b, x, 2, h.rows, h.cols, SD_DTYPE_F16, &err) == SD_OK, "%s", err.msg);
                sd_free(x);
            }
}

/* The synthetic corpus again with every feature file in float16: training keeps the batches in
 * float16 (the frame projection converts them chunk by chunk); it stays deterministic, resumes bit
 * for bit, and validates as sd_predict_split predicts. */
static void test_float16_dataset(void) {
    char dir[700];
    snprintf(dir, sizeof dir, "%s/data_f16", sd_test_tmpdir());
    write_f16_copy(data_dir, dir);
    sd_dataset_options opts = sd_dataset_default_options();
    opts.dir = dir;
    opts.require_sim = 1;
    sd_dataset *half = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&opts, &half, &err) == SD_OK, "open: %s", err.msg);
    if (!half) return;
    char a[700], b[700], snap_state[720];
    snprintf(a, sizeof a, "%s/h1.safetensors", sd_test_tmpdir());
    snprintf(b, sizeof b, "%s/h2.safetensors", sd_test_tmpdir());
    snprintf(snap_state, sizeof snap_state, "%s.state", a);
    snprintf(snapshot, sizeof snapshot, "%s/h_after_epoch1.state", sd_test_tmpdir());
    sd_train_result r;
    sd_train_options o = small_train_options(a, 7);
    o.on_progress = snapshot_after_first_epoch;
    o.user = snap_state;
    EXPECT(sd_train(half, &o, &r, &err) == SD_OK, "train: %s", err.msg);
    o = small_train_options(b, 7);
    EXPECT(sd_train(half, &o, &r, &err) == SD_OK, "train again: %s", err.msg);
    EXPECT(same_file(a, b), "two float16 runs with the same seed wrote different models");
    o.resume = snapshot;
    EXPECT(sd_train(half, &o, &r, &err) == SD_OK, "resume: %s", err.msg);
    EXPECT(same_file(a, b), "resumed float16 run differs from the uninterrupted one");
    check_validation_matches_predict(half, "valid_f16");
    sd_dataset_close(half);
}

static void test_validation_matches_predict(void) { check_validation_matches_predict(ds, "valid_f32"); }

int main(void) {
    setup();
    sd_test_run("train.same_seed_same_bytes", test_same_seed_same_bytes);
    sd_test_run("train.resume_is_bit_identical", test_resume_is_bit_identical);
    sd_test_run("train.resume_rules", test_resume_rules);
    sd_test_run("train.output_paths", test_output_paths);
    sd_test_run("train.divergence_guard", test_divergence_guard);
    sd_test_run("train.select_last_and_log", test_select_last_and_log);
    sd_test_run("train.auto_schedule", test_auto_schedule);
    sd_test_run("train.train_subset_sizes", test_train_subset_sizes);
    sd_test_run("train.training_pass_metrics", test_training_pass_metrics);
    sd_test_run("train.validation_matches_predict", test_validation_matches_predict);
    sd_test_run("train.float16_dataset", test_float16_dataset);
    sd_dataset_close(ds);
    return sd_test_finish();
}
