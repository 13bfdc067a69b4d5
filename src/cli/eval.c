/* sdumc eval: the metrics of MODEL.md section 5 for each flow on one split. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "common.h"
#include "core/threads.h"
#include "model/model.h"
#include "train/metrics.h"
#include "train/train.h"

int cli_eval(int argc, char **argv) {
    cli_data_opts d = {0};
    const char *model_path = NULL;
    int split = SD_SPLIT_TEST, flow = 2, format = 0, threads = 0, batch = 64, mia = -1;
    arg_spec specs[] = {
        CLI_DATA_SPECS(d),
        {"model", ARG_STRING, &model_path, 0, 0, NULL, "model file", 0, 0},
        {"split", ARG_CHOICE, &split, 0, 0, "train|valid|test", "split to evaluate (test)", 0, 0},
        {"flow", ARG_CHOICE, &flow, 0, 0, "full|missing|both", "complete flow, text-missing flow, or both (both)", 0, 0},
        {"format", ARG_CHOICE, &format, 0, 0, "table|json|csv", "output format (table)", 0, 0},
        {"batch-size", ARG_INT, &batch, 1, 65536, NULL, "evaluation batch size (64)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 1024, NULL, "threads (0 = all cores)", 0, 0},
        CLI_MIA_SPEC(mia),
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("eval", "sdumc eval --model M --data DIR [--split test] [--flow both] [--format table] [--mia on|off]",
                   "Metrics (MAE, MSE, Corr, Acc-7, Acc-5, Acc-2 and F1 with and without zero labels) of each flow.\n"
                   "JSON: {\"full\": {...}, \"missing\": {...}} with keys mae, mse, corr (null when undefined),\n"
                   "acc7, acc5, acc2_has0, f1_has0, acc2_non0, f1_non0, n, n_non0 (fractions). A dataset whose\n"
                   "dataset.json gives the label range [-1, 1] (CH-SIMS) gets MMSA's SIMS metrics instead: mae, mse,\n"
                   "corr, acc2, acc3, acc5, f1, n.",
                   specs, n, argc, argv, &code))
        return code;
    if (!model_path) {
        fprintf(stderr, "sdumc eval: --model is required\n");
        return 2;
    }
    sd_model *m = cli_load_model("eval", model_path, mia);
    if (!m) return 1;
    sd_dataset *ds = cli_open_dataset("eval", &d, flow != 0, SD_SPLIT_BIT(split));
    if (!ds) {
        sd_model_free(m);
        return 1;
    }
    sd_threads_set(threads);
    sd_error err;
    int64_t count = sd_dataset_size(ds, (sd_split)split);
    float *pred = malloc(sizeof(float) * (size_t)(count + 1)), *y = malloc(sizeof(float) * (size_t)(count + 1));
    for (int64_t i = 0; y && i < count; i++) y[i] = sd_dataset_label(ds, (sd_split)split, i);
    sd_metrics met[2];
    const sd_metrics_scheme scheme = sd_dataset_metrics_scheme(ds);
    const char *names[2] = {"full", "missing"};
    int rc = 0;
    for (int f = 0; f < 2 && !rc; f++) {
        if (flow != 2 && flow != f) continue;
        if (!pred || !y || sd_predict_split(m, ds, (sd_split)split, f, NULL, count, batch, pred, &err)) {
            fprintf(stderr, "sdumc eval: %s\n", pred && y ? err.msg : "out of memory");
            rc = 1;
            break;
        }
        sd_metrics_compute_scheme(pred, y, (size_t)count, scheme, &met[f]);
    }
    if (!rc) {
        if (format == 1) printf("{");
        if (format == 0) sd_metrics_write_table_header(stdout, scheme);
        if (format == 2) sd_metrics_write_csv_header(stdout, scheme);
        int first = 1;
        for (int f = 0; f < 2; f++) {
            if (flow != 2 && flow != f) continue;
            if (format == 0) sd_metrics_write_table_row(stdout, &met[f], names[f]);
            if (format == 2) sd_metrics_write_csv_row(stdout, &met[f], names[f]);
            if (format == 1) {
                printf("%s\"%s\": ", first ? "" : ", ", names[f]);
                sd_metrics_write_json(stdout, &met[f], NULL);
            }
            first = 0;
        }
        if (format == 1) printf("}\n");
        int undefined = 0;
        for (int f = 0; f < 2; f++) undefined |= (flow == 2 || flow == f) && !met[f].corr_defined;
        if (format == 0 && undefined) printf("(Corr undefined: the predictions or labels are constant)\n");
    }
    free(pred);
    free(y);
    sd_dataset_close(ds);
    sd_model_free(m);
    return rc;
}
