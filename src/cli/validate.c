/* sdumc validate: checks a dataset folder and prints its report.
 *   sdumc validate --data DIR [--audio NAME --text NAME --video NAME --sim NAME] [--skip-bad]
 *                  [--require-sim] [--no-check-values] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "data/dataset.h"

/* Which commands the folder serves: train needs train, valid (or --valid-fraction) and the
 * simulated text; eval and predict need the split they read (and the simulated text for the
 * text-missing flow). */
static void print_supported(const sd_dataset *ds) {
    int64_t n[SD_SPLIT_COUNT];
    for (int s = 0; s < SD_SPLIT_COUNT; s++) n[s] = sd_dataset_size(ds, (sd_split)s);
    int sim = sd_dataset_has_sim(ds);
    printf("commands this folder supports:\n  train          ");
    if (!n[SD_SPLIT_TRAIN])
        printf("no (the train split is empty)\n");
    else if (!sim)
        printf("no (training needs the simulated-text folder for the text-missing flow)\n");
    else if (!n[SD_SPLIT_VALID])
        printf("with --valid-fraction F only (no valid split: a seeded one is carved out of train)\n");
    else
        printf("yes (train %" PRId64 ", valid %" PRId64 ")\n", n[SD_SPLIT_TRAIN], n[SD_SPLIT_VALID]);
    printf("  eval, predict  --split");
    const char *sep = " ";
    for (int s = SD_SPLIT_COUNT - 1; s >= 0; s--)
        if (n[s]) {
            printf("%s%s", sep, sd_split_name((sd_split)s));
            sep = ", ";
        }
    printf(" or --names FILE; %s\n", sim ? "both flows" : "the complete flow only (no simulated text)");
}

/* The feature scales, over the train split (what train standardises with) or, without one, all. */
static int print_scales(const sd_dataset *ds) {
    int split = sd_dataset_size(ds, SD_SPLIT_TRAIN) ? SD_SPLIT_TRAIN : -1;
    sd_feature_stats fs;
    sd_error err;
    if (sd_feature_stats_compute(ds, split, NULL, SD_CAP_SUBSAMPLE, NULL, &fs, &err)) {
        fprintf(stderr, "sdumc validate: %s\n", err.msg);
        return 1;
    }
    printf("feature scales (%s; per-dimension standard deviations over the frames):\n",
           split >= 0 ? "train split" : "all splits");
    cli_print_scales("validate", &fs, -1, 1);
    sd_feature_stats_free(&fs);
    return 0;
}

int cli_validate(int argc, char **argv) {
    cli_data_opts d = {0};
    int require_sim = 0, no_check = 0;
    arg_spec specs[] = {
        CLI_DATA_SPECS(d),
        {"require-sim", ARG_FLAG, &require_sim, 0, 0, NULL, "the simulated-text folder must exist (text-missing flow)", 0, 0},
        {"no-check-values", ARG_FLAG, &no_check, 0, 0, NULL, "do not read the values (no NaN / Inf scan; much faster)", 0, 0},
    };
    int code;
    if (!cli_parse("validate", "sdumc validate --data DIR [--audio NAME --text NAME --video NAME --sim NAME] [--skip-bad]",
                   "Checks a dataset folder (layout in docs/DATASET.md) and lists every problem; exit 1 if any.",
                   specs, (int)(sizeof specs / sizeof specs[0]), argc, argv, &code))
        return code;
    if (!d.dir) {
        fprintf(stderr, "sdumc validate: --data DIR is required (sdumc validate --help)\n");
        return 2;
    }
    sd_dataset_options o = cli_dataset_options(&d, require_sim, 0); /* any split may be empty */
    o.check_values = !no_check;
    sd_dataset *ds = NULL;
    char *report = NULL;
    sd_error err;
    sd_error_clear(&err);
    if (sd_dataset_open_report(&o, &ds, &report, &err)) {
        const char *text = report ? report : err.msg;
        fprintf(stderr, "%s%s", text, report ? "" : "\n");
        if (!d.nonfinite && (strstr(text, ": NaN at frame") || strstr(text, ": Inf at frame")))
            fprintf(stderr, "(--nonfinite zero reads NaN and Inf feature values as 0, as MMSA does with COVAREP's -inf)\n");
        free(report);
        return 1;
    }
    if (report) fprintf(stderr, "warning: %s", report);
    free(report);
    printf("%s: ok, %" PRId64 " utterances (train %" PRId64 ", valid %" PRId64 ", test %" PRId64 ")",
           sd_dataset_dir(ds), sd_dataset_total(ds), sd_dataset_size(ds, SD_SPLIT_TRAIN),
           sd_dataset_size(ds, SD_SPLIT_VALID), sd_dataset_size(ds, SD_SPLIT_TEST));
    if (sd_dataset_skipped(ds)) printf(", %" PRId64 " skipped", sd_dataset_skipped(ds));
    for (int m = 0; m < SD_MOD_COUNT; m++)
        if (sd_dataset_nonfinite(ds, m))
            printf(", %" PRId64 " NaN/Inf %s values read as 0", sd_dataset_nonfinite(ds, m), sd_modality_name(m));
    printf("\n");
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        if (m == SD_MOD_SIM && !sd_dataset_has_sim(ds)) {
            printf("  %-6s %s/: absent (complete flow only; the text-missing flow needs it)\n",
                   sd_modality_name(m), sd_dataset_folder(ds, m));
            continue;
        }
        printf("  %-6s %s/: dim %d, up to %" PRId64 " frames\n", sd_modality_name(m),
               sd_dataset_folder(ds, m), sd_dataset_dim(ds, m), sd_dataset_max_frames(ds, m));
    }
    print_supported(ds);
    if (!no_check && print_scales(ds)) {
        sd_dataset_close(ds);
        return 1;
    }
    sd_dataset_close(ds);
    return 0;
}
