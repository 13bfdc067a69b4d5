/* labels.csv, as sd_dataset_open reads it: the input becomes DIR/labels.csv of a dataset folder
 * whose feature folders hold three valid utterances (a, b, c) and one whose text file is
 * malformed (bad). The dataset is opened strictly and with skip_bad; whatever it keeps must be
 * consistent with the files. */
#include "data/dataset.h"
#include "fuzz_util.h"
#include "io/npy.h"

static const char *labels_dataset(void) {
    static char dir[400];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/ds", fuzz_dir());
    FUZZ_CHECK(mkdir(dir, 0755) == 0);
    static const char *const folders[] = {"audio", "text", "video", "text_sim"};
    static const int dims[] = {3, 4, 2, 4};
    static const char *const names[] = {"a", "b", "c", "bad"};
    float x[4 * 4];
    for (int i = 0; i < 16; i++) x[i] = 0.25f * (float)i - 1.0f;
    for (int m = 0; m < 4; m++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, folders[m]);
        FUZZ_CHECK(mkdir(path, 0755) == 0);
        for (int k = 0; k < 4; k++) {
            snprintf(path, sizeof path, "%s/%s/%s.npy", dir, folders[m], names[k]);
            sd_error err;
            if (k == 3 && m == 1) {
                static const uint8_t junk[] = "\x93NUMPY\x01\x00\x10\x00{'descr': '<i4'}";
                FILE *f = fopen(path, "wb");
                FUZZ_CHECK(f && fwrite(junk, 1, sizeof junk - 1, f) == sizeof junk - 1 && fclose(f) == 0);
                continue;
            }
            FUZZ_CHECK(sd_npy_write(path, x, 2, 1 + k % 3, dims[m], SD_DTYPE_F32, &err) == SD_OK);
        }
    }
    return dir;
}

static int fuzz_labels(const uint8_t *data, size_t size) {
    const char *dir = labels_dataset();
    fuzz_write("ds/labels.csv", data, size); /* DIR/labels.csv: labels_dataset() made DIR as <scratch>/ds */
    sd_status first = SD_OK;
    for (int skip = 0; skip <= 1; skip++) {
        sd_dataset_options o = sd_dataset_default_options();
        o.dir = dir;
        o.skip_bad = skip;
        sd_dataset *ds = NULL;
        char *report = NULL;
        sd_error err;
        sd_error_clear(&err);
        sd_status s = sd_dataset_open_report(&o, &ds, &report, &err);
        if (!skip) first = s;
        if (s) {
            FUZZ_CHECK(ds == NULL && err.msg[0] != '\0');
            free(report);
            continue;
        }
        FUZZ_CHECK(sd_dataset_dim(ds, SD_MOD_AUDIO) == 3 && sd_dataset_dim(ds, SD_MOD_TEXT) == 4);
        for (int sp = 0; sp < SD_SPLIT_COUNT; sp++)
            for (int64_t i = 0; i < sd_dataset_size(ds, (sd_split)sp); i++) {
                const char *name = sd_dataset_name(ds, (sd_split)sp, i);
                float y = sd_dataset_label(ds, (sd_split)sp, i);
                FUZZ_CHECK(name && (!strcmp(name, "a") || !strcmp(name, "b") || !strcmp(name, "c")));
                FUZZ_CHECK(y >= SD_LABEL_MIN && y <= SD_LABEL_MAX);
                sd_split found;
                FUZZ_CHECK(sd_dataset_find(ds, name, &found) == i && found == (sd_split)sp);
                char buf[700];
                FUZZ_CHECK(sd_dataset_path(ds, (sd_split)sp, i, SD_MOD_VIDEO, buf, sizeof buf, &err) == SD_OK);
            }
        sd_dataset_close(ds);
        free(report);
    }
    return first;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_labels(data, size);
    return 0;
}
#endif
