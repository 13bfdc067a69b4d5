/* sdumc predict: one flow's predictions for a split or a list of names, as CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common.h"
#include "core/array.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "io/csv.h"
#include "io/file.h"
#include "model/model.h"
#include "train/train.h"

/* Reads one name per line (blank lines and surrounding spaces ignored); returns the count or -1. */
static int64_t read_names(const char *path, const sd_dataset *ds, sd_split *split, int64_t **idx) {
    FILE *f;
    sd_error err;
    if (sd_file_fopen(path, &f, NULL, &err)) {
        fprintf(stderr, "sdumc predict: --names: %s\n", err.msg);
        return -1;
    }
    int64_t n = 0;
    size_t cap = 0;
    *idx = NULL;
    char line[4096];
    int lineno = 0, first = 1, bad = 0, nomem = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (!*s) continue;
        sd_split sp;
        int64_t i = sd_dataset_find(ds, s, &sp);
        if (i < 0) {
            fprintf(stderr, "sdumc predict: %s:%d: '%s' is not in the dataset\n", path, lineno, s);
            bad = 1;
            continue;
        }
        if (first) *split = sp;
        if (sp != *split) {
            fprintf(stderr, "sdumc predict: %s:%d: '%s' is in split %s, the earlier names in %s\n", path, lineno, s,
                    sd_split_name(sp), sd_split_name(*split));
            bad = 1;
            continue;
        }
        first = 0;
        int64_t *g = sd_array_grow(*idx, &cap, (size_t)n + 1, sizeof *g, 256);
        if (!g) {
            nomem = 1;
            break;
        }
        *idx = g;
        (*idx)[n++] = i;
    }
    fclose(f);
    if (nomem) fprintf(stderr, "sdumc predict: --names: out of memory\n");
    if (bad || nomem) return -1;
    if (n == 0) fprintf(stderr, "sdumc predict: %s lists no names\n", path);
    return n ? n : -1;
}

int cli_predict(int argc, char **argv) {
    cli_data_opts d = {0};
    const char *model_path = NULL, *names_path = NULL, *out = NULL;
    int split = SD_SPLIT_TEST, flow = 0, threads = 0, batch = 64, mia = -1;
    arg_spec specs[] = {
        CLI_DATA_SPECS(d),
        {"model", ARG_STRING, &model_path, 0, 0, NULL, "model file", 0, 0},
        {"split", ARG_CHOICE, &split, 0, 0, "train|valid|test", "split to predict (test)", 0, 0},
        {"names", ARG_STRING, &names_path, 0, 0, NULL, "file with one utterance name per line (instead of --split)", 0, 0},
        {"flow", ARG_CHOICE, &flow, 0, 0, "full|missing", "complete flow (real text) or text-missing flow (full)", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "CSV to write: name,prediction,label", 0, 0},
        {"batch-size", ARG_INT, &batch, 1, 65536, NULL, "batch size (64)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 1024, NULL, "threads (0 = all cores)", 0, 0},
        CLI_MIA_SPEC(mia),
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("predict", "sdumc predict --model M --data DIR [--split S | --names FILE] [--flow full|missing] [--mia on|off] --out preds.csv",
                   "Writes name,prediction,label for each utterance (atomically).", specs, n, argc, argv, &code))
        return code;
    if (!model_path || !out) {
        fprintf(stderr, "sdumc predict: --model and --out are required\n");
        return 2;
    }
    if (names_path && args_find(specs, n, "split")->seen) {
        fprintf(stderr, "sdumc predict: --names and --split exclude each other\n");
        return 2;
    }
    if (!cli_parent_dir_exists(out)) {
        fprintf(stderr, "sdumc predict: --out %s: its folder does not exist\n", out);
        return 2;
    }
    cli_catch_signals();
    sd_model *m = cli_load_model("predict", model_path, mia);
    if (!m) return 1;
    sd_dataset *ds = cli_open_dataset("predict", &d, flow == 1, names_path ? 0u : SD_SPLIT_BIT(split));
    if (!ds) {
        sd_model_free(m);
        return cli_exit_code(sd_interrupted() ? SD_E_INTERRUPTED : SD_E_FORMAT);
    }
    sd_threads_set(threads);
    sd_error err;
    const sd_input in[2] = {{model_path, "--model"}, {names_path, "--names"}};
    if (sd_atomic_check_path(out, &err) || sd_dataset_check_output(ds, out, "--out", in, 2, &err)) {
        fprintf(stderr, "sdumc predict: %s\n", err.msg);
        sd_dataset_close(ds);
        sd_model_free(m);
        return 1;
    }
    sd_atomic_remove_stale(out, time(NULL)); /* what a killed run left */
    int64_t *idx = NULL, count;
    sd_split sp = (sd_split)split;
    if (names_path)
        count = read_names(names_path, ds, &sp, &idx);
    else
        count = sd_dataset_size(ds, sp);
    int rc = 1;
    float *pred = count >= 0 ? malloc(sizeof(float) * (size_t)(count + 1)) : NULL;
    if (pred && !sd_predict_split(m, ds, sp, flow, idx, count, batch, pred, &err)) {
        sd_atomic_file af;
        if (!sd_atomic_open(&af, out, &err)) {
            fputs("name,prediction,label\n", af.f);
            for (int64_t i = 0; i < count; i++) {
                int64_t k = idx ? idx[i] : i;
                sd_csv_write_field(af.f, sd_dataset_name(ds, sp, k));
                fprintf(af.f, ",%.9g,%.9g\n", (double)pred[i], (double)sd_dataset_label(ds, sp, k));
            }
        }
        if (!af.f || sd_atomic_commit(&af, &err))
            fprintf(stderr, "sdumc predict: %s\n", err.msg);
        else {
            fprintf(stderr, "sdumc predict: %lld predictions (%s flow) written to %s\n", (long long)count,
                    flow ? "text-missing" : "complete", out);
            rc = 0;
        }
    } else if (pred) {
        fprintf(stderr, "sdumc predict: %s\n", err.msg);
        rc = cli_exit_code(err.code);
    }
    free(pred);
    free(idx);
    sd_dataset_close(ds);
    sd_model_free(m);
    return rc;
}
