/* sdumc validate --data DIR [--audio NAME --text NAME --video NAME --sim NAME] [--skip-bad]
 *                [--require-sim] [--no-check-values] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data/dataset.h"

static void validate_usage(FILE *out) {
    fprintf(out,
            "usage: sdumc validate --data DIR [--audio NAME] [--text NAME] [--video NAME] [--sim NAME]\n"
            "                      [--skip-bad] [--require-sim] [--no-check-values]\n"
            "Checks a dataset folder (layout in docs/DATASET.md) and lists every problem; exit 1 if any.\n"
            "  --data DIR          the folder holding labels.csv and the feature folders\n"
            "  --audio/--text/--video/--sim NAME\n"
            "                      feature folder names (defaults audio, text, video, text_sim)\n"
            "  --skip-bad          utterances with problems are reported as skipped, not as errors\n"
            "  --require-sim       the simulated-text folder must exist (text-missing flow)\n"
            "  --no-check-values   do not read the values (no NaN / Inf scan; much faster)\n");
}

int cli_validate(int argc, char **argv) {
    sd_dataset_options o = sd_dataset_default_options();
    static const char *const flag[SD_MOD_COUNT] = {"--audio", "--text", "--video", "--sim"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            validate_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--skip-bad")) { o.skip_bad = 1; continue; }
        if (!strcmp(a, "--require-sim")) { o.require_sim = 1; continue; }
        if (!strcmp(a, "--no-check-values")) { o.check_values = 0; continue; }
        int m = -1;
        for (int k = 0; k < SD_MOD_COUNT; k++)
            if (!strcmp(a, flag[k])) m = k;
        if ((m >= 0 || !strcmp(a, "--data")) && i + 1 < argc) {
            if (m >= 0) o.folder[m] = argv[++i];
            else o.dir = argv[++i];
            continue;
        }
        fprintf(stderr, "sdumc validate: %s '%s'\n", i + 1 < argc || m < 0 ? "unknown option" : "no value for", a);
        validate_usage(stderr);
        return 2;
    }
    if (!o.dir) {
        fprintf(stderr, "sdumc validate: --data DIR is required\n");
        validate_usage(stderr);
        return 2;
    }
    sd_dataset *ds = NULL;
    char *report = NULL;
    sd_error err;
    sd_error_clear(&err);
    if (sd_dataset_open_report(&o, &ds, &report, &err)) {
        if (report) fputs(report, stderr);
        else fprintf(stderr, "%s\n", err.msg);
        free(report);
        return 1;
    }
    if (report) fprintf(stderr, "warning: %s", report);
    free(report);
    printf("%s: ok, %" PRId64 " utterances (train %" PRId64 ", valid %" PRId64 ", test %" PRId64 ")",
           sd_dataset_dir(ds), sd_dataset_total(ds), sd_dataset_size(ds, SD_SPLIT_TRAIN),
           sd_dataset_size(ds, SD_SPLIT_VALID), sd_dataset_size(ds, SD_SPLIT_TEST));
    if (sd_dataset_skipped(ds)) printf(", %" PRId64 " skipped", sd_dataset_skipped(ds));
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
    sd_dataset_close(ds);
    return 0;
}
