/* Dataset validation: every problem of issue 4 with the message it produces, the report listing
 * all of them at once, --skip-bad, folder names, dtypes, and that a failed validation (or a failed
 * cache build) leaves the output location untouched. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "harness.h"
#include "io/npy.h"

enum { DA = 3, DT = 4, DV = 2 };

static char root[1024];

static void path_of(char *buf, size_t n, const char *ds, const char *folder, const char *file) {
    if (folder) snprintf(buf, n, "%s/%s/%s/%s", root, ds, folder, file);
    else snprintf(buf, n, "%s/%s/%s", root, ds, file);
}

/* Writes a [T, D] feature file whose values are base + 0.01 * k. */
static void write_feat(const char *ds, const char *folder, const char *name, int64_t T, int64_t D,
                       sd_dtype dtype, float base) {
    char dir[1200], path[1400];
    snprintf(dir, sizeof dir, "%s/%s/%s", root, ds, folder);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    float *x = malloc((size_t)(T * D + 1) * sizeof *x);
    for (int64_t k = 0; k < T * D; k++) x[k] = base + 0.01f * (float)k;
    sd_error err;
    EXPECT(sd_npy_write(path, x, 2, T, D, dtype, &err) == SD_OK, "write %s: %s", path, err.msg);
    free(x);
}

/* A float64 .npy written by hand (sd_npy_write writes f32/f16 only). */
static void write_f64(const char *ds, const char *folder, const char *name, int T, int D, double v) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/%s/%s.npy", root, ds, folder, name);
    char header[128];
    int hl = snprintf(header, sizeof header, "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }", T, D);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    unsigned short len = (unsigned short)(hl + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(len & 0xff, f);
    fputc(len >> 8, f);
    fwrite(header, 1, (size_t)hl, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    for (int i = 0; i < T * D; i++) fwrite(&v, sizeof v, 1, f);
    fclose(f);
}

static void write_text(const char *ds, const char *file, const char *text) {
    char path[1400];
    path_of(path, sizeof path, ds, NULL, file);
    EXPECT(sd_test_write_file(path, text, strlen(text)) == 0, "cannot write %s", path);
}

static const char *split_of(int i) { return i % 3 == 0 ? "train" : i % 3 == 1 ? "valid" : "test"; }

/* A valid dataset of n utterances u0..u{n-1}: splits rotate train/valid/test, audio 5 + i frames,
 * text 2 + i % 3, video 3, simulated text 2. */
static void make_ds(const char *ds, int n, int with_sim) {
    if (!root[0]) snprintf(root, sizeof root, "%s", sd_test_tmpdir());
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, ds);
    mkdir(dir, 0755);
    char *labels = malloc((size_t)n * 64 + 64);
    int len = sprintf(labels, "name,label,split\n");
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "u%d", i);
        len += sprintf(labels + len, "%s,%.4f,%s\n", name, (double)((i % 7) - 3) * 0.5, split_of(i));
        write_feat(ds, "audio", name, 5 + i, DA, SD_DTYPE_F32, (float)i);
        write_feat(ds, "text", name, 2 + i % 3, DT, SD_DTYPE_F32, (float)i + 0.5f);
        write_feat(ds, "video", name, 3, DV, SD_DTYPE_F32, (float)i - 0.5f);
        if (with_sim) write_feat(ds, "text_sim", name, 2, DT, SD_DTYPE_F32, (float)i + 0.25f);
    }
    write_text(ds, "labels.csv", labels);
    free(labels);
}

static sd_dataset_options opts(const char *ds) {
    static char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, ds);
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = dir;
    return o;
}

/* Opens and expects failure whose message (and full report) contains every needle. */
static void expect_problems(const sd_dataset_options *o, const char *const *needles, int n) {
    sd_dataset *ds = NULL;
    char *report = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status st = sd_dataset_open_report(o, &ds, &report, &err);
    EXPECT(st != SD_OK, "open of %s succeeded", o->dir);
    EXPECT(ds == NULL, "dataset returned on failure");
    EXPECT(report != NULL, "no report");
    for (int i = 0; i < n; i++) {
        EXPECT(strstr(err.msg, needles[i]) != NULL, "message lacks \"%s\":\n%s", needles[i], err.msg);
        EXPECT(report && strstr(report, needles[i]) != NULL, "report lacks \"%s\"", needles[i]);
    }
    free(report);
    sd_dataset_close(ds);
}

static void test_valid_dataset(void) {
    make_ds("ok", 9, 1);
    sd_dataset_options o = opts("ok");
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    if (!ds) return;
    EXPECT(sd_dataset_total(ds) == 9, "total %lld", (long long)sd_dataset_total(ds));
    for (int s = 0; s < 3; s++) EXPECT(sd_dataset_size(ds, (sd_split)s) == 3, "split %d size", s);
    EXPECT(sd_dataset_dim(ds, SD_MOD_AUDIO) == DA && sd_dataset_dim(ds, SD_MOD_TEXT) == DT &&
               sd_dataset_dim(ds, SD_MOD_VIDEO) == DV && sd_dataset_dim(ds, SD_MOD_SIM) == DT,
           "dims");
    EXPECT(sd_dataset_has_sim(ds), "has_sim");
    /* valid split in labels.csv order: u1, u4, u7 */
    EXPECT(!strcmp(sd_dataset_name(ds, SD_SPLIT_VALID, 1), "u4"), "name %s", sd_dataset_name(ds, SD_SPLIT_VALID, 1));
    EXPECT(sd_dataset_label(ds, SD_SPLIT_VALID, 1) == 0.5f, "label %g", (double)sd_dataset_label(ds, SD_SPLIT_VALID, 1));
    EXPECT(sd_dataset_frames(ds, SD_SPLIT_VALID, 1, SD_MOD_AUDIO) == 9, "frames");
    EXPECT(sd_dataset_max_frames(ds, SD_MOD_AUDIO) == 13, "max frames %lld", (long long)sd_dataset_max_frames(ds, SD_MOD_AUDIO));
    sd_split s;
    EXPECT(sd_dataset_find(ds, "u8", &s) == 2 && s == SD_SPLIT_TEST, "find u8");
    EXPECT(sd_dataset_find(ds, "nope", &s) == -1, "find missing");
    EXPECT(sd_dataset_warnings(ds)[0] == '\0', "warnings on a clean dataset");
    sd_dataset_close(ds);
}

static void test_missing_file(void) {
    make_ds("missing", 6, 1);
    char p[1400];
    path_of(p, sizeof p, "missing", "video", "u2.npy");
    remove(p);
    sd_dataset_options o = opts("missing");
    const char *needles[] = {"/missing/video/u2.npy: missing feature file (video of 'u2', labels.csv line 4)",
                             "1 problem found"};
    expect_problems(&o, needles, 2);
}

static void test_dim_mismatch(void) {
    make_ds("dim", 6, 1);
    write_feat("dim", "audio", "u3", 4, DA + 2, SD_DTYPE_F32, 0.0f);
    write_feat("dim", "text_sim", "u1", 2, DT + 1, SD_DTYPE_F32, 0.0f);
    sd_dataset_options o = opts("dim");
    const char *needles[] = {"/dim/audio/u3.npy: dim 5 differs from 3, the dim of 5 of the 6 audio files",
                             "/dim/text_sim/u1.npy: dim 5 differs from the text dim 4"};
    expect_problems(&o, needles, 2);
}

static void test_zero_frames(void) {
    make_ds("zero", 6, 1);
    write_feat("zero", "text", "u5", 0, DT, SD_DTYPE_F32, 0.0f);
    sd_dataset_options o = opts("zero");
    const char *needles[] = {"/zero/text/u5.npy: zero frames"};
    expect_problems(&o, needles, 1);
}

static void test_nan_inf(void) {
    make_ds("nan", 6, 1);
    char p[1400];
    float x[5 * DA];
    for (int k = 0; k < 5 * DA; k++) x[k] = 1.0f;
    x[2 * DA + 1] = NAN;
    path_of(p, sizeof p, "nan", "audio", "u0.npy");
    sd_error err;
    EXPECT(sd_npy_write(p, x, 2, 5, DA, SD_DTYPE_F32, &err) == SD_OK, "write");
    x[2 * DA + 1] = 1.0f;
    x[4 * DA + 0] = -INFINITY;
    path_of(p, sizeof p, "nan", "audio", "u1.npy");
    EXPECT(sd_npy_write(p, x, 2, 5, DA, SD_DTYPE_F16, &err) == SD_OK, "write"); /* f16 too */
    sd_dataset_options o = opts("nan");
    const char *needles[] = {"/nan/audio/u0.npy: NaN at frame 2, column 1",
                             "/nan/audio/u1.npy: Inf at frame 4, column 0"};
    expect_problems(&o, needles, 2);
    /* Without the value scan the dataset opens (the batcher still refuses the values). */
    o.check_values = 0;
    sd_dataset *ds = NULL;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open without value check: %s", err.msg);
    sd_dataset_close(ds);
}

static void test_bad_labels(void) {
    make_ds("labels", 6, 1);
    write_text("labels", "labels.csv",
               "name,label,split\nu0,abc,train\nu1,3.5,valid\nu2,-3.0001,test\nu3,,train\n"
               "u4,nan,valid\nu5,-3,test\n");
    sd_dataset_options o = opts("labels");
    const char *needles[] = {"labels.csv:2: label 'abc' of 'u0' is not a number",
                             "labels.csv:3: label 3.5 of 'u1' lies outside [-3, 3]",
                             "labels.csv:4: label -3.0001 of 'u2' lies outside [-3, 3]",
                             "labels.csv:5: label '' of 'u3' is not a number",
                             "labels.csv:6: label 'nan' of 'u4' is not a number"};
    expect_problems(&o, needles, 5);
}

static void test_unknown_split(void) {
    make_ds("split", 6, 1);
    write_text("split", "labels.csv",
               "name,label,split\nu0,1,train\nu1,1,dev\nu2,1,test\nu3,1,train\nu4,1,valid\nu5,1,Test\n");
    sd_dataset_options o = opts("split");
    const char *needles[] = {"labels.csv:3: unknown split 'dev' of 'u1' (expected train, valid or test)",
                             "labels.csv:7: unknown split 'Test' of 'u5'"};
    expect_problems(&o, needles, 2);
}

static void test_duplicates(void) {
    make_ds("dup", 6, 1);
    write_text("dup", "labels.csv",
               "name,label,split\nu0,1,train\nu1,1,valid\nu2,1,test\nu1,2,train\nu3,0,train\nu1,0,test\n");
    sd_dataset_options o = opts("dup");
    const char *needles[] = {"labels.csv:5: duplicate name 'u1' (first on line 3)",
                             "labels.csv:7: duplicate name 'u1' (first on line 3)"};
    expect_problems(&o, needles, 2);
}

static void test_empty_split(void) {
    make_ds("empty", 6, 1);
    write_text("empty", "labels.csv", "name,label,split\nu0,1,train\nu2,1,test\nu3,0,train\n");
    sd_dataset_options o = opts("empty");
    const char *needles[] = {"labels.csv: split 'valid' is empty (no utterance names it)", "1 problem found"};
    expect_problems(&o, needles, 2);
}

/* Only the splits a command reads must be non-empty (need_splits); the dataset must name one
 * utterance anyway. */
static void test_needed_splits(void) {
    make_ds("partial", 6, 1);
    write_text("partial", "labels.csv", "name,label,split\nu0,1,test\nu2,1,test\nu3,0,test\n");
    sd_dataset_options o = opts("partial");
    const char *needles[] = {"split 'train' is empty", "split 'valid' is empty", "2 problems found"};
    expect_problems(&o, needles, 3); /* the default needs all three */
    o.need_splits = SD_SPLIT_BIT(SD_SPLIT_TEST);
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "test-only folder for a test reader: %s", err.msg);
    EXPECT(ds && sd_dataset_size(ds, SD_SPLIT_TEST) == 3 && sd_dataset_size(ds, SD_SPLIT_TRAIN) == 0, "sizes");
    sd_dataset_close(ds);
    o.need_splits = SD_SPLIT_BIT(SD_SPLIT_TRAIN);
    const char *n2[] = {"split 'train' is empty (no utterance names it)", "1 problem found"};
    expect_problems(&o, n2, 2);
    o.need_splits = 0;
    write_text("partial", "labels.csv", "name,label,split\n");
    const char *n3[] = {"no utterance (the file has a header and no rows)"};
    expect_problems(&o, n3, 1);
}

/* A validation split carved out of train: the right count, a pure function of the seed, labels.csv
 * order kept on both sides, refused where it makes no sense. */
static void test_carve_valid(void) {
    make_ds("carve", 30, 1);
    char labels[2048];
    int len = sprintf(labels, "name,label,split\n");
    for (int i = 0; i < 30; i++) len += sprintf(labels + len, "u%d,0.5,%s\n", i, i < 25 ? "train" : "test");
    write_text("carve", "labels.csv", labels);
    sd_dataset_options o = opts("carve");
    o.need_splits = SD_SPLIT_BIT(SD_SPLIT_TRAIN);
    char names[2][512];
    for (int run = 0; run < 2; run++) {
        sd_dataset *ds = NULL;
        sd_error err;
        EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
        if (!ds) return;
        int64_t carved = -1;
        EXPECT(sd_dataset_carve_valid(ds, 0.2, 11, &carved, &err) == SD_OK, "carve: %s", err.msg);
        EXPECT(carved == 5 && sd_dataset_size(ds, SD_SPLIT_VALID) == 5 && sd_dataset_size(ds, SD_SPLIT_TRAIN) == 20,
               "carved %lld", (long long)carved);
        names[run][0] = '\0';
        int prev = -1, ordered = 1;
        for (int64_t i = 0; i < sd_dataset_size(ds, SD_SPLIT_VALID); i++) {
            const char *nm = sd_dataset_name(ds, SD_SPLIT_VALID, i);
            strcat(names[run], nm);
            strcat(names[run], " ");
            int k = atoi(nm + 1);
            ordered &= k > prev && k < 25;
            prev = k;
            sd_split sp;
            EXPECT(sd_dataset_find(ds, nm, &sp) == i && sp == SD_SPLIT_VALID, "find %s", nm);
        }
        prev = -1;
        for (int64_t i = 0; i < sd_dataset_size(ds, SD_SPLIT_TRAIN); i++) {
            int k = atoi(sd_dataset_name(ds, SD_SPLIT_TRAIN, i) + 1);
            ordered &= k > prev;
            prev = k;
        }
        EXPECT(ordered, "carved splits not in labels.csv order (or a test utterance moved): %s", names[run]);
        /* a second carve is refused: the dataset now has a valid split */
        EXPECT(sd_dataset_carve_valid(ds, 0.2, 11, &carved, &err) == SD_E_ARG && strstr(err.msg, "already has a valid split"),
               "second carve: %s", err.msg);
        sd_dataset_close(ds);
    }
    EXPECT(!strcmp(names[0], names[1]), "same seed, other split: %s / %s", names[0], names[1]);
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    if (!ds) return;
    int64_t carved = 0;
    EXPECT(sd_dataset_carve_valid(ds, 0.2, 12, &carved, &err) == SD_OK, "carve seed 12: %s", err.msg);
    char other[512] = "";
    for (int64_t i = 0; i < carved; i++) {
        strcat(other, sd_dataset_name(ds, SD_SPLIT_VALID, i));
        strcat(other, " ");
    }
    EXPECT(strcmp(other, names[0]), "another seed carved the same split: %s", other);
    sd_dataset_close(ds);
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    if (!ds) return;
    EXPECT(sd_dataset_carve_valid(ds, 0.0, 1, &carved, &err) == SD_E_ARG, "fraction 0 accepted");
    EXPECT(sd_dataset_carve_valid(ds, 1.0, 1, &carved, &err) == SD_E_ARG, "fraction 1 accepted");
    EXPECT(sd_dataset_carve_valid(ds, 0.001, 1, &carved, &err) == SD_OK && carved == 1, "tiny fraction carves one");
    sd_dataset_close(ds);
}

/* dataset.json's label range: validation checks labels against it and the dataset reports it. */
static void test_label_range(void) {
    make_ds("range", 6, 1);
    write_text("range", "labels.csv", "name,label,split\nu0,0.5,train\nu1,-1,valid\nu2,1,test\n");
    write_text("range", "dataset.json", "{\"label_range\": [-1, 1], \"source\": \"test\"}\n");
    sd_dataset_options o = opts("range");
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    double lo = 0, hi = 0;
    if (ds) sd_dataset_label_range(ds, &lo, &hi);
    EXPECT(lo == -1.0 && hi == 1.0, "range [%g, %g]", lo, hi);
    sd_dataset_close(ds);
    write_text("range", "labels.csv", "name,label,split\nu0,1.5,train\nu1,-1,valid\nu2,1,test\n");
    const char *n1[] = {"labels.csv:2: label 1.5 of 'u0' lies outside [-1, 1] (the label range of dataset.json)"};
    expect_problems(&o, n1, 1);
    write_text("range", "dataset.json", "{\"label_range\": [1, -1]}");
    const char *n2[] = {"dataset.json: \"label_range\" must be [LO, HI] with LO < HI"};
    expect_problems(&o, n2, 1);
    write_text("range", "dataset.json", "{\"label_range\": [-1, 1]");
    const char *n3[] = {"dataset.json: JSON"};
    expect_problems(&o, n3, 1);
    write_text("range", "dataset.json", "{}");
    write_text("range", "labels.csv", "name,label,split\nu0,2.5,train\nu1,-1,valid\nu2,1,test\n");
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "no label_range key: the default [-3, 3]: %s", err.msg);
    sd_dataset_close(ds);
}

static void test_layout_problems(void) {
    make_ds("layout", 6, 1);
    sd_dataset_options o = opts("layout");
    o.folder[SD_MOD_VIDEO] = "faces";
    const char *n1[] = {"/layout/faces: the video feature folder does not exist"};
    expect_problems(&o, n1, 1);
    o.folder[SD_MOD_VIDEO] = NULL;
    write_text("layout", "labels.csv", "name,score,split\nu0,1,train\n");
    const char *n2[] = {"labels.csv:1: the header has no 'label' column (expected name,label,split)"};
    expect_problems(&o, n2, 1);
    write_text("layout", "labels.csv", "name,label,split\nu0,1\n../u1,1,valid\n");
    const char *n3[] = {"labels.csv:2: 2 fields, expected at least 3", "labels.csv:3: name '../u1' is not a plain file name"};
    expect_problems(&o, n3, 2);
    char p[1400];
    path_of(p, sizeof p, "layout", NULL, "labels.csv");
    remove(p);
    const char *n4[] = {"/layout/labels.csv: cannot open: No such file or directory"};
    expect_problems(&o, n4, 1);
}

/* Every problem in one report, not just the first; each line once. */
static void test_all_problems_reported(void) {
    make_ds("all", 9, 1);
    char p[1400];
    path_of(p, sizeof p, "all", "audio", "u1.npy");
    remove(p);
    write_feat("all", "video", "u2", 3, DV + 1, SD_DTYPE_F32, 0.0f);
    write_feat("all", "text", "u3", 0, DT, SD_DTYPE_F32, 0.0f);
    write_text("all", "labels.csv",
               "name,label,split\nu0,x,train\nu1,1,valid\nu2,1,test\nu3,1,train\nu4,1,valid\nu5,1,test\n"
               "u6,1,train\nu7,1,valid\nu8,1,tst\nu6,1,train\n");
    sd_dataset_options o = opts("all");
    const char *needles[] = {"6 problems found (6 of 10 utterances affected)",
                             "labels.csv:2: label 'x' of 'u0' is not a number",
                             "/all/audio/u1.npy: missing feature file",
                             "/all/video/u2.npy: dim 3 differs from 2",
                             "/all/text/u3.npy: zero frames",
                             "labels.csv:10: unknown split 'tst' of 'u8'",
                             "labels.csv:11: duplicate name 'u6' (first on line 8)"};
    expect_problems(&o, needles, 7);
    /* With skip_bad those six rows are dropped and listed; the rest opens. */
    o.skip_bad = 1;
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "skip_bad open: %s", err.msg);
    if (!ds) return;
    EXPECT(sd_dataset_total(ds) == 4, "kept %lld", (long long)sd_dataset_total(ds));
    EXPECT(sd_dataset_skipped(ds) == 6, "skipped %lld", (long long)sd_dataset_skipped(ds));
    EXPECT(sd_dataset_size(ds, SD_SPLIT_TRAIN) == 1 && sd_dataset_size(ds, SD_SPLIT_VALID) == 2 &&
               sd_dataset_size(ds, SD_SPLIT_TEST) == 1,
           "split sizes after skipping");
    const char *w = sd_dataset_warnings(ds);
    EXPECT(strstr(w, "skipped 6 of 10 utterances") && strstr(w, "/all/text/u3.npy: zero frames") &&
               strstr(w, "duplicate name 'u6'"),
           "warnings:\n%s", w);
    sd_split s;
    EXPECT(sd_dataset_find(ds, "u3", &s) == -1 && sd_dataset_find(ds, "u6", &s) == 0, "find after skip");
    sd_dataset_close(ds);
    /* skip_bad cannot make up for an empty split. */
    write_text("all", "labels.csv", "name,label,split\nu0,1,train\nu1,1,valid\nu2,1,test\n");
    const char *n2[] = {"split 'valid' is empty after skipping 2 bad utterances"};
    expect_problems(&o, n2, 1);
}

/* Many problems: err->msg is cut short with a count, the full report has them all. */
static void test_long_report(void) {
    make_ds("long", 60, 1);
    for (int i = 0; i < 60; i++) {
        char p[1400], name[32];
        snprintf(name, sizeof name, "u%d.npy", i);
        path_of(p, sizeof p, "long", "video", name);
        remove(p);
    }
    sd_dataset_options o = opts("long");
    sd_dataset *ds = NULL;
    char *report = NULL;
    sd_error err;
    EXPECT(sd_dataset_open_report(&o, &ds, &report, &err) == SD_E_FORMAT, "should fail");
    EXPECT(strstr(err.msg, "60 problems found") && strstr(err.msg, "more (the full list: sdumc validate)"),
           "message: %s", err.msg);
    int lines = 0;
    for (const char *q = report; q && (q = strstr(q, "missing feature file")); q++) lines++;
    EXPECT(lines == 60, "full report has %d of 60 lines", lines);
    free(report);
}

static void test_sim_optional(void) {
    make_ds("nosim", 6, 0);
    sd_dataset_options o = opts("nosim");
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open without sim: %s", err.msg);
    if (ds) EXPECT(!sd_dataset_has_sim(ds) && sd_dataset_dim(ds, SD_MOD_SIM) == 0, "has_sim");
    sd_dataset_close(ds);
    o.require_sim = 1;
    const char *needles[] = {"/nosim/text_sim: the simulated-text folder does not exist, and this needs the "
                             "text-missing flow"};
    expect_problems(&o, needles, 1);
}

/* MERTools folder names and the three dtypes. */
static void test_folder_names_and_dtypes(void) {
    make_ds("mer", 6, 0);
    char a[1400], b[1400];
    path_of(a, sizeof a, "mer", NULL, "audio");
    path_of(b, sizeof b, "mer", NULL, "wavlm-large-FRA_-5");
    EXPECT(rename(a, b) == 0, "rename");
    write_feat("mer", "text", "u1", 2, DT, SD_DTYPE_F16, 0.5f);
    write_f64("mer", "video", "u2", 3, DV, 0.25);
    sd_dataset_options o = opts("mer");
    o.folder[SD_MOD_AUDIO] = "wavlm-large-FRA_-5";
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    if (ds) EXPECT(!strcmp(sd_dataset_folder(ds, SD_MOD_AUDIO), "wavlm-large-FRA_-5"), "folder name");
    sd_dataset_close(ds);
    o.folder[SD_MOD_AUDIO] = "../escape";
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_E_ARG && strstr(err.msg, "not a plain folder name"),
           "folder name with a slash: %s", err.msg);
}

/* Snapshot of a folder tree: names, sizes and mtimes, as one string. */
static void snapshot(const char *dir, char *out, size_t n) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(out, n, "<absent>");
        return;
    }
    struct dirent *e;
    size_t len = strlen(out);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[1600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        stat(p, &st);
        len += (size_t)snprintf(out + len, n > len ? n - len : 0, "%s:%lld:%lld.%09ld;", p,
                                (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        if (S_ISDIR(st.st_mode)) snapshot(p, out, n);
        len = strlen(out);
    }
    closedir(d);
}

/* A failed validation changes nothing: not the dataset folder, and a cache that is to be built
 * from a dataset found bad (or whose file goes bad mid-build) is neither created nor replaced. */
static void test_failure_leaves_output_untouched(void) {
    make_ds("untouched", 9, 1);
    char dir[1200], cache[1400];
    snprintf(dir, sizeof dir, "%s/untouched", root);
    snprintf(cache, sizeof cache, "%s/untouched.cache", root);
    write_text("untouched", "labels.csv", "name,label,split\nu0,1,train\nu1,9,valid\nu2,1,test\n");
    static char before[65536], after[65536];
    before[0] = after[0] = '\0';
    snapshot(dir, before, sizeof before);
    sd_dataset_options o = opts("untouched");
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) != SD_OK, "bad dataset opened");
    snapshot(dir, after, sizeof after);
    EXPECT(!strcmp(before, after), "dataset folder changed by a failed validation");
    struct stat st;
    EXPECT(stat(cache, &st) != 0 && errno == ENOENT, "cache created");

    /* Valid dataset, cache built; then a source file turns bad: the rebuild fails and the old
     * cache stays byte for byte, with no temporary left next to it. */
    write_text("untouched", "labels.csv", "name,label,split\nu0,1,train\nu1,2,valid\nu2,1,test\n");
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "open: %s", err.msg);
    if (!ds) return;
    sd_cache *c = NULL;
    int built = 0;
    EXPECT(sd_cache_open(ds, cache, SD_DTYPE_F32, &c, &built, &err) == SD_OK && built, "build: %s", err.msg);
    sd_cache_close(c);
    before[0] = after[0] = '\0';
    char p[1400];
    path_of(p, sizeof p, "untouched", "audio", "u1.npy");
    FILE *f = fopen(p, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    float nan = NAN;
    fseek(f, size - 4, SEEK_SET);
    fwrite(&nan, 4, 1, f);
    fclose(f);
    snapshot(root, before, sizeof before); /* includes the changed source */
    EXPECT(sd_cache_open(ds, cache, SD_DTYPE_F32, &c, &built, &err) == SD_E_NUMERIC, "rebuild with NaN: %s", err.msg);
    EXPECT(strstr(err.msg, "/untouched/audio/u1.npy: NaN at frame 5, column 2") != NULL, "message: %s", err.msg);
    snapshot(root, after, sizeof after);
    EXPECT(!strcmp(before, after), "a failed cache rebuild changed files:\n%s\n%s", before, after);
    sd_dataset_close(ds);
}

/* Issue 14, item 3: a NUL byte in labels.csv is a problem of its row, named with its line, and
 * the rows after it are still read (it used to end the file silently: "ok, 6 utterances" for
 * 12 rows). A UTF-16 file is named as such. */
static void test_nul_and_utf16_labels(void) {
    make_ds("nul", 12, 1);
    char path[1400], *text;
    size_t n;
    path_of(path, sizeof path, "nul", NULL, "labels.csv");
    text = sd_test_read_file(path, &n);
    if (!text) return;
    char *row = strstr(text, "u6,"); /* line 8 */
    EXPECT(row != NULL, "row u6");
    if (row) row[1] = '\0';
    EXPECT(sd_test_write_file(path, text, n) == 0, "write");
    const char *needles[] = {"labels.csv:8: NUL byte at column 2", "1 of 12 utterances"};
    sd_dataset_options o = opts("nul");
    expect_problems(&o, needles, 2);
    o.skip_bad = 1;
    sd_dataset *ds = NULL;
    sd_error err;
    EXPECT(sd_dataset_open(&o, &ds, &err) == SD_OK, "skip_bad: %s", err.msg);
    if (ds) EXPECT(sd_dataset_total(ds) == 11, "%lld utterances kept, expected 11 (the rows after the NUL too)",
                   (long long)sd_dataset_total(ds));
    sd_dataset_close(ds);
    /* The same labels as UTF-16 (with its byte-order mark). */
    char *u16 = malloc(2 * n + 2);
    u16[0] = (char)0xff;
    u16[1] = (char)0xfe;
    for (size_t i = 0; i < n; i++) u16[2 + 2 * i] = text[i], u16[3 + 2 * i] = 0;
    EXPECT(sd_test_write_file(path, u16, 2 * n + 2) == 0, "write");
    const char *needles16[] = {"labels.csv: UTF-16 text", "save the file as UTF-8"};
    o.skip_bad = 0;
    expect_problems(&o, needles16, 2);
    free(u16);
    free(text);
}

int main(void) {
    sd_test_run("dataset_valid", test_valid_dataset);
    sd_test_run("dataset_missing_file", test_missing_file);
    sd_test_run("dataset_dim_mismatch", test_dim_mismatch);
    sd_test_run("dataset_zero_frames", test_zero_frames);
    sd_test_run("dataset_nan_inf", test_nan_inf);
    sd_test_run("dataset_bad_labels", test_bad_labels);
    sd_test_run("dataset_unknown_split", test_unknown_split);
    sd_test_run("dataset_duplicates", test_duplicates);
    sd_test_run("dataset_empty_split", test_empty_split);
    sd_test_run("dataset_needed_splits", test_needed_splits);
    sd_test_run("dataset_carve_valid", test_carve_valid);
    sd_test_run("dataset_label_range", test_label_range);
    sd_test_run("dataset_layout_problems", test_layout_problems);
    sd_test_run("dataset_all_problems_reported", test_all_problems_reported);
    sd_test_run("dataset_long_report", test_long_report);
    sd_test_run("dataset_sim_optional", test_sim_optional);
    sd_test_run("dataset_folder_names_and_dtypes", test_folder_names_and_dtypes);
    sd_test_run("dataset_failure_leaves_output_untouched", test_failure_leaves_output_untouched);
    sd_test_run("dataset_nul_and_utf16_labels", test_nul_and_utf16_labels);
    return sd_test_finish();
}
