/* sdumc score: MMSA metrics from any CSV with `label` and `prediction` columns. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "core/array.h"
#include "io/csv.h"
#include "train/metrics.h"

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(x)) return -1;
    *out = (float)x;
    return 0;
}

int cli_score(int argc, char **argv) {
    if (argc < 2 || !strncmp(argv[1], "--", 2)) {
        if (argc >= 2 && (!strcmp(argv[1], "--help"))) {
            printf("usage: sdumc score FILE.csv [--format table|json] [--label-range LO,HI]\n"
                   "Metrics of docs/MODEL.md section 5 from a CSV with label and prediction columns; with\n"
                   "--label-range -1,1 MMSA's CH-SIMS metrics, with another range MAE, MSE and Corr only.\n");
            return 0;
        }
        fprintf(stderr, "usage: sdumc score FILE.csv [--format table|json] [--label-range LO,HI]\n");
        return 2;
    }
    const char *path = argv[1];
    int format = 0;
    const char *range = NULL;
    arg_spec specs[] = {{"format", ARG_CHOICE, &format, 0, 0, "table|json", "output format (table)", 0, 0},
                        {"label-range", ARG_STRING, &range, 0, 0, NULL, "LO,HI: the labels' range (-3,3; CH-SIMS -1,1)", 0, 0}};
    int code;
    if (!cli_parse("score", "sdumc score FILE.csv [--format table|json] [--label-range LO,HI]", "Metrics from a CSV.",
                   specs, 2, argc - 1, argv + 1, &code))
        return code;
    double lo = SD_LABEL_MIN, hi = SD_LABEL_MAX;
    if (range && cli_parse_range(range, &lo, &hi)) {
        fprintf(stderr, "sdumc score: --label-range: '%s' is not LO,HI with LO < HI (e.g. -1,1)\n", range);
        return 2;
    }
    const sd_metrics_scheme scheme = sd_metrics_scheme_for(lo, hi);
    sd_csv_reader csv;
    sd_error err;
    if (sd_csv_open(&csv, path, (size_t)1 << 30, &err)) {
        fprintf(stderr, "sdumc score: %s\n", err.msg);
        return 1;
    }
    static const char *const names[2] = {"label", "prediction"};
    int col[2], needed = -1, rc = 0, k; /* needed: -1 before the header */
    size_t n = 0, cap_p = 0, cap_y = 0;
    float *p = NULL, *y = NULL; /* [n] predictions and labels */
    while ((k = sd_csv_next(&csv, &err)) != 0) {
        if (k < 0) {
            fprintf(stderr, "sdumc score: %s\n", err.msg);
            rc = 1;
            break;
        }
        if (needed < 0) {
            if (!(needed = sd_csv_columns(&csv, names, 2, col))) {
                fprintf(stderr, "sdumc score: %s: the header needs 'label' and 'prediction' columns\n", path);
                rc = 1;
                break;
            }
            continue;
        }
        if (csv.n < needed) {
            fprintf(stderr, "sdumc score: %s:%d: %d fields, the header has more\n", path, csv.line, csv.n);
            rc = 1;
            break;
        }
        float *np = sd_array_grow(p, &cap_p, n + 1, sizeof *p, 1024);
        if (np) p = np;
        float *ny = np ? sd_array_grow(y, &cap_y, n + 1, sizeof *y, 1024) : NULL;
        if (ny) y = ny;
        if (!np || !ny) {
            fprintf(stderr, "sdumc score: out of memory\n");
            rc = 1;
            break;
        }
        if (parse_float(csv.field[col[1]], &p[n]) || parse_float(csv.field[col[0]], &y[n])) {
            fprintf(stderr, "sdumc score: %s:%d: label or prediction is not a finite number\n", path, csv.line);
            rc = 1;
            break;
        }
        n++;
    }
    sd_csv_close(&csv);
    if (!rc && needed < 0) {
        fprintf(stderr, "sdumc score: %s is empty\n", path);
        rc = 1;
    }
    if (!rc && n == 0) {
        fprintf(stderr, "sdumc score: %s has no rows\n", path);
        rc = 1;
    }
    if (!rc) {
        sd_metrics m;
        sd_metrics_compute_scheme(p, y, n, scheme, &m);
        if (format == 1) {
            sd_metrics_write_json(stdout, &m, NULL);
            printf("\n");
        } else {
            sd_metrics_write_table_header(stdout, scheme);
            sd_metrics_write_table_row(stdout, &m, "scored");
            if (!m.corr_defined) printf("(Corr undefined: the predictions or labels are constant)\n");
        }
    }
    free(p);
    free(y);
    return rc;
}
