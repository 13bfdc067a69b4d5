/* sdumc compare: paired differences between two models' results (results.csv of `sdumc
 * robustness`, or the OUT.seeds.csv of `sdumc train --seeds`), per condition over the seeds both
 * have, with a paired-t confidence interval. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "core/array.h"
#include "eval/stats.h"
#include "io/csv.h"
#include "train/metrics.h"

/* One row; the strings are the file's fields, malloc'ed (no length limit: two names that differ
 * only late are told apart). */
typedef struct {
    char *model, *key[4], *seed; /* key: condition, target, flow, rate */
    double value;
} row;

typedef struct {
    row *rows;
    int n;
    size_t cap;
} table;

static int same_key(const row *a, const row *b) {
    for (int k = 0; k < 4; k++)
        if (strcmp(a->key[k], b->key[k])) return 0;
    return 1;
}

static void table_free(table *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->rows[i].model);
        free(t->rows[i].seed);
        for (int k = 0; k < 4; k++) free(t->rows[i].key[k]);
    }
    free(t->rows);
}

/* A field of the CSV output, quoted when it needs it (an empty one stays empty: never alone). */
static void csv_field(const char *s) {
    if (*s) sd_csv_write_field(stdout, s);
    putchar(',');
}

/* Reads the model, condition, target, flow, rate, seed and metric columns of a results CSV. */
static int read_table(const char *path, const char *metric, table *t) {
    sd_csv_reader csv;
    sd_error err;
    if (sd_csv_open(&csv, path, (size_t)1 << 30, &err)) {
        fprintf(stderr, "sdumc compare: %s\n", err.msg);
        return -1;
    }
    int col[7], header = 1, rc = 0, k, needed = 0;
    const char *names[7] = {"model", "condition", "target", "flow", "rate", "seed", metric};
    while ((k = sd_csv_next(&csv, &err)) != 0) {
        if (k < 0) {
            fprintf(stderr, "sdumc compare: %s\n", err.msg);
            rc = -1;
            break;
        }
        char **fields = csv.field;
        if (header) {
            needed = sd_csv_columns(&csv, names, 7, col);
            for (int c = 0; c < 7; c++)
                if (col[c] < 0)
                    fprintf(stderr, "sdumc compare: %s: no column '%s' (expected the results.csv of sdumc robustness or the "
                                    "OUT.seeds.csv of sdumc train --seeds)\n", path, names[c]);
            if (!needed) {
                rc = -1;
                break;
            }
            header = 0;
            continue;
        }
        if (csv.n < needed) {
            fprintf(stderr, "sdumc compare: %s:%d: %d fields, the header has more\n", path, csv.line, csv.n);
            rc = -1;
            break;
        }
        row *grown = sd_array_grow(t->rows, &t->cap, (size_t)t->n + 1, sizeof *grown, 256);
        if (!grown) {
            fprintf(stderr, "sdumc compare: out of memory\n");
            rc = -1;
            break;
        }
        t->rows = grown;
        row *r = &t->rows[t->n++];
        memset(r, 0, sizeof *r);
        int ok = (r->model = strdup(fields[col[0]])) && (r->seed = strdup(fields[col[5]]));
        for (int c = 0; c < 4 && ok; c++) ok = (r->key[c] = strdup(fields[col[1 + c]])) != NULL;
        if (!ok) {
            fprintf(stderr, "sdumc compare: out of memory\n");
            rc = -1;
            break;
        }
        char *end;
        errno = 0;
        r->value = *fields[col[6]] ? strtod(fields[col[6]], &end) : NAN;
        if (*fields[col[6]] && (*end || errno)) {
            fprintf(stderr, "sdumc compare: %s:%d: %s '%s' is not a number\n", path, csv.line, metric, fields[col[6]]);
            rc = -1;
            break;
        }
    }
    if (!rc && header) {
        fprintf(stderr, "sdumc compare: %s: empty file\n", path);
        rc = -1;
    }
    sd_csv_close(&csv);
    return rc;
}

/* The k-th distinct model name of a table (in file order), or NULL. */
static const char *nth_model(const table *t, int k) {
    int seen = 0;
    for (int i = 0; i < t->n; i++) {
        int first = 1;
        for (int j = 0; j < i && first; j++) first = strcmp(t->rows[j].model, t->rows[i].model) != 0;
        if (first && seen++ == k) return t->rows[i].model;
    }
    return NULL;
}

static int has_model(const table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].model, name)) return 1;
    return 0;
}

static const row *find_row(const table *t, const char *model, const row *key, const char *seed) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].model, model) && same_key(&t->rows[i], key) && !strcmp(t->rows[i].seed, seed))
            return &t->rows[i];
    return NULL;
}

int cli_compare(int argc, char **argv) {
    const char *file[2] = {NULL, NULL};
    int nfiles = 0;
    while (nfiles < 2 && argc > 1 + nfiles && strncmp(argv[1 + nfiles], "--", 2)) {
        file[nfiles] = argv[1 + nfiles];
        nfiles++;
    }
    const char *name[2] = {NULL, NULL}, *metric = "mae";
    float level = 0.95f;
    int format = 0;
    arg_spec specs[] = {
        {"a", ARG_STRING, &name[0], 0, 0, NULL, "model A (needed when the first file holds several)", 0, 0},
        {"b", ARG_STRING, &name[1], 0, 0, NULL, "model B (needed when its file holds several)", 0, 0},
        {"metric", ARG_STRING, &metric, 0, 0, NULL, "metric column: mae, mse, corr, acc7, acc5, acc2_has0, f1_has0, acc2_non0, f1_non0 (mae)", 0, 0},
        {"level", ARG_FLOAT, &level, 0.5, 0.999, NULL, "confidence level of the interval (0.95)", 0, 0},
        {"format", ARG_CHOICE, &format, 0, 0, "table|csv", "output format (table)", 0, 0},
    };
    const char *synopsis = "sdumc compare A.csv [B.csv] [--a MODEL] [--b MODEL] [--metric mae] [--level 0.95]";
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("compare", synopsis,
                   "Paired differences B - A per condition over the seeds both models have, with a paired-t\n"
                   "confidence interval (mean +- t_{(1+level)/2, n-1} sd / sqrt(n)). One file: both models from it.",
                   specs, n, argc - nfiles, argv + nfiles, &code))
        return code;
    if (!nfiles) {
        fprintf(stderr, "sdumc compare: no results file given\nusage: %s\n", synopsis);
        return 2;
    }
    const int k = sd_metric_index(metric);
    if (k < 0) {
        fprintf(stderr, "sdumc compare: --metric: unknown metric '%s'\n", metric);
        return 2;
    }
    table t[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
    int rc = 0;
    for (int f = 0; f < nfiles && !rc; f++) rc = read_table(file[f], metric, &t[f]) ? 1 : 0;
    const table *ta = &t[0], *tb = nfiles == 2 ? &t[1] : &t[0];
    for (int s = 0; s < 2 && !rc; s++) {
        const table *tt = s ? tb : ta;
        if (name[s]) {
            if (!has_model(tt, name[s])) {
                fprintf(stderr, "sdumc compare: %s holds no model '%s'\n", file[s && nfiles == 2], name[s]);
                rc = 1;
            }
            continue;
        }
        /* One file without names: its first two models; two files: each file's only model. */
        name[s] = nth_model(tt, nfiles == 1 ? s : 0);
        if (!name[s] || (nfiles == 2 && nth_model(tt, 1)) || (nfiles == 1 && nth_model(tt, 2))) {
            fprintf(stderr, "sdumc compare: %s: %s; name the model%s with --%s\n", file[s && nfiles == 2],
                    name[s] ? "it holds more models than can be told apart" : "not enough models", nfiles == 1 ? "s" : "",
                    s ? "b" : "a");
            rc = 1;
        }
    }
    int better = 0, worse = 0, unclear = 0, shown = 0;
    if (!rc) {
        if (format == 0) {
            printf("B - A for %s: A = %s, B = %s; %.0f%% paired-t interval over seeds (%s)\n", metric, name[0], name[1],
                   100.0 * level, sd_metric_lower_is_better(k) ? "lower is better" : "higher is better");
            printf("%-34s %3s %9s %9s %9s %21s  %s\n", "condition,target,flow,rate", "n", "A", "B", "B - A", "interval", "verdict");
        } else {
            printf("condition,target,flow,rate,n,mean_a,mean_b,diff,ci_lo,ci_hi,verdict\n");
        }
    }
    for (int i = 0; !rc && i < ta->n; i++) {
        const row *ra = &ta->rows[i];
        if (strcmp(ra->model, name[0])) continue;
        int dup = 0; /* first row of each key only */
        for (int j = 0; j < i && !dup; j++) dup = !strcmp(ta->rows[j].model, name[0]) && same_key(&ta->rows[j], ra);
        if (dup) continue;
        double a[256], b[256], d[256];
        size_t m = 0;
        for (int j = i; j < ta->n && m < 256; j++) {
            const row *x = &ta->rows[j];
            if (strcmp(x->model, name[0]) || !same_key(x, ra)) continue;
            const row *y = find_row(tb, name[1], x, x->seed);
            if (!y || !isfinite(x->value) || !isfinite(y->value)) continue;
            a[m] = x->value;
            b[m] = y->value;
            d[m] = y->value - x->value;
            m++;
        }
        if (!m) continue;
        double ma, mb, md, sda, lo, hi;
        sd_mean_sd(a, m, &ma, &sda, NULL);
        sd_mean_sd(b, m, &mb, &sda, NULL);
        sd_paired_t_interval(d, m, level, &md, &lo, &hi);
        const char *verdict = "n < 2";
        if (isfinite(lo)) {
            int b_lower = hi < 0, b_higher = lo > 0;
            if (!b_lower && !b_higher)
                verdict = "no clear difference", unclear++;
            else if (b_lower == sd_metric_lower_is_better(k))
                verdict = "B better", better++;
            else
                verdict = "B worse", worse++;
        }
        shown++;
        if (format == 0) {
            char key[256];
            snprintf(key, sizeof key, "%s,%s,%s,%s", ra->key[0], ra->key[1], ra->key[2], ra->key[3]);
            printf("%-34s %3zu %9.4f %9.4f %+9.4f [%+9.4f, %+9.4f]  %s\n", key, m, ma, mb, md, lo, hi, verdict);
        } else {
            for (int c = 0; c < 4; c++) csv_field(ra->key[c]);
            printf("%zu,%.6f,%.6f,%.6f,%.6f,%.6f,%s\n", m, ma, mb, md, lo, hi, verdict);
        }
    }
    if (!rc && !shown) {
        fprintf(stderr, "sdumc compare: %s and %s share no condition and seed\n", name[0], name[1]);
        rc = 1;
    }
    if (!rc && format == 0)
        printf("%d conditions: B better in %d, worse in %d, no clear difference in %d (interval excludes 0 or not)\n", shown,
               better, worse, unclear);
    table_free(&t[0]);
    table_free(&t[1]);
    return rc;
}
