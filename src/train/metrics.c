/* MMSA metricsTop metrics of predictions against labels (MODEL.md section 5), and their JSON,
 * table and CSV output. */
#include "train/metrics.h"

#include <math.h>
#include <string.h>

#include "io/csv.h"

static double clip(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* sklearn's weighted F1 for two classes from a confusion count cm[true][pred]. */
static double weighted_f1(size_t cm[2][2]) {
    size_t total = cm[0][0] + cm[0][1] + cm[1][0] + cm[1][1];
    if (total == 0) return 0.0;
    double f1_sum = 0.0;
    for (int c = 0; c < 2; c++) {
        size_t tp = cm[c][c], support = cm[c][0] + cm[c][1], predicted = cm[0][c] + cm[1][c];
        double precision = predicted ? (double)tp / (double)predicted : 0.0;
        double recall = support ? (double)tp / (double)support : 0.0;
        double f1 = precision + recall > 0.0 ? 2.0 * precision * recall / (precision + recall) : 0.0;
        f1_sum += (double)support * f1;
    }
    return f1_sum / (double)total;
}

void sd_metrics_compute(const float *pred, const float *label, size_t n, sd_metrics *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->corr = out->acc2_non0 = out->f1_non0 = NAN; /* undefined until shown otherwise */
    if (n == 0) {
        out->mae = out->mse = out->acc7 = out->acc5 = out->acc2_has0 = out->f1_has0 = NAN;
        return;
    }
    double sum_p = 0, sum_y = 0, abs_err = 0, sq_err = 0;
    size_t hit7 = 0, hit5 = 0, has0[2][2] = {{0, 0}, {0, 0}}, non0[2][2] = {{0, 0}, {0, 0}};
    for (size_t i = 0; i < n; i++) {
        double p = pred[i], y = label[i];
        sum_p += p;
        sum_y += y;
        abs_err += fabs(p - y);
        sq_err += (p - y) * (p - y);
        hit7 += rint(clip(p, -3, 3)) == rint(clip(y, -3, 3));
        hit5 += rint(clip(p, -2, 2)) == rint(clip(y, -2, 2));
        has0[y >= 0][p >= 0]++;
        if (y != 0) {
            non0[y > 0][p > 0]++;
            out->n_non0++;
        }
    }
    double mean_p = sum_p / (double)n, mean_y = sum_y / (double)n;
    double cov = 0, var_p = 0, var_y = 0;
    for (size_t i = 0; i < n; i++) {
        double dp = pred[i] - mean_p, dy = label[i] - mean_y;
        cov += dp * dy;
        var_p += dp * dp;
        var_y += dy * dy;
    }
    out->corr_defined = var_p > 0 && var_y > 0;
    out->corr = out->corr_defined ? cov / sqrt(var_p * var_y) : NAN;
    out->mae = abs_err / (double)n;
    out->mse = sq_err / (double)n;
    out->acc7 = (double)hit7 / (double)n;
    out->acc5 = (double)hit5 / (double)n;
    out->acc2_has0 = (double)(has0[0][0] + has0[1][1]) / (double)n;
    out->f1_has0 = weighted_f1(has0);
    if (out->n_non0) {
        out->acc2_non0 = (double)(non0[0][0] + non0[1][1]) / (double)out->n_non0;
        out->f1_non0 = weighted_f1(non0);
    }
}

/* A metric as JSON (null when undefined), a table cell ("undef") or a CSV field (empty). */
static void json_metric(FILE *out, const char *key, double v, const char *sep) {
    if (isfinite(v)) fprintf(out, "\"%s\": %.6f%s", key, v, sep);
    else fprintf(out, "\"%s\": null%s", key, sep);
}

static const char *cell(char *buf, size_t n, int width, double v) {
    if (isfinite(v)) snprintf(buf, n, "%*.4f", width, v);
    else snprintf(buf, n, "%*s", width, "undef");
    return buf;
}

static void csv_metric(FILE *out, double v, const char *sep) {
    if (isfinite(v)) fprintf(out, "%.6f", v);
    fputs(sep, out);
}

void sd_metrics_write_json(FILE *out, const sd_metrics *m, const char *flow) {
    fprintf(out, "{");
    if (flow) fprintf(out, "\"flow\": \"%s\", ", flow);
    for (int k = 0; k < SD_METRIC_COUNT; k++) json_metric(out, sd_metric_names[k], sd_metric_value(m, k), ", ");
    fprintf(out, "\"n\": %zu, \"n_non0\": %zu}", m->n, m->n_non0);
}

void sd_metrics_write_table_header(FILE *out) {
    fprintf(out, "%-10s %7s %7s %7s %7s %7s %9s %9s %9s %9s %6s %6s\n", "flow", "MAE", "MSE", "Corr",
            "Acc-7", "Acc-5", "Acc-2/h0", "F1/h0", "Acc-2/n0", "F1/n0", "n", "n_non0");
}

void sd_metrics_write_table_row(FILE *out, const sd_metrics *m, const char *flow) {
    char c[10][16];
    fprintf(out, "%-10s %s %s %s %s %s %s %s %s %s %6zu %6zu\n", flow ? flow : "", cell(c[0], 16, 7, m->mae),
            cell(c[1], 16, 7, m->mse), cell(c[2], 16, 7, m->corr_defined ? m->corr : NAN), cell(c[3], 16, 7, m->acc7),
            cell(c[4], 16, 7, m->acc5), cell(c[5], 16, 9, m->acc2_has0), cell(c[6], 16, 9, m->f1_has0),
            cell(c[7], 16, 9, m->acc2_non0), cell(c[8], 16, 9, m->f1_non0), m->n, m->n_non0);
}

void sd_metrics_write_csv_header(FILE *out) { fprintf(out, "flow," SD_METRICS_CSV_COLUMNS "\n"); }

void sd_metrics_write_csv_fields(FILE *out, const sd_metrics *m) {
    for (int k = 0; k < SD_METRIC_COUNT; k++) csv_metric(out, sd_metric_value(m, k), ",");
    fprintf(out, "%zu,%zu", m->n, m->n_non0);
}

void sd_metrics_write_csv_row(FILE *out, const sd_metrics *m, const char *flow) {
    sd_csv_write_field(out, flow ? flow : "");
    fputc(',', out);
    sd_metrics_write_csv_fields(out, m);
    fprintf(out, "\n");
}

const char *const sd_metric_names[SD_METRIC_COUNT] = {"mae",     "mse",       "corr",      "acc7",   "acc5",
                                                      "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"};
const char *const sd_metric_labels[SD_METRIC_COUNT] = {"MAE",          "MSE",       "Corr",         "Acc-7",    "Acc-5",
                                                       "Acc-2 (has0)", "F1 (has0)", "Acc-2 (non0)", "F1 (non0)"};

double sd_metric_value(const sd_metrics *m, int k) {
    switch (k) {
    case 0: return m->mae;
    case 1: return m->mse;
    case 2: return m->corr_defined ? m->corr : NAN;
    case 3: return m->acc7;
    case 4: return m->acc5;
    case 5: return m->acc2_has0;
    case 6: return m->f1_has0;
    case 7: return m->acc2_non0;
    case 8: return m->f1_non0;
    }
    return NAN;
}

int sd_metric_lower_is_better(int k) { return k == 0 || k == 1; }

int sd_metric_index(const char *name) {
    for (int k = 0; k < SD_METRIC_COUNT; k++)
        if (!strcmp(name, sd_metric_names[k])) return k;
    return -1;
}
