/* The MMSA metrics of predictions against labels (MODEL.md section 5), and their JSON, table and
 * CSV output. */
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

sd_metrics_scheme sd_metrics_scheme_for(double lo, double hi) {
    if (lo == -3.0 && hi == 3.0) return SD_METRICS_MOSI;
    if (lo == -1.0 && hi == 1.0) return SD_METRICS_SIMS;
    return SD_METRICS_RANGE;
}

const char *sd_metrics_scheme_name(sd_metrics_scheme s) {
    return s == SD_METRICS_SIMS ? "sims" : s == SD_METRICS_RANGE ? "range" : "mosi";
}

static float clipf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

/* The value the metrics see: as is, or clipped to [-1, 1] (SIMS). */
static float seen(const float *v, size_t i, int clip) { return clip ? clipf(v[i], -1.0f, 1.0f) : v[i]; }

/* MAE, MSE and Pearson's Corr, in double. */
static void regression(const float *pred, const float *label, size_t n, int clip, sd_metrics *out) {
    double sum_p = 0, sum_y = 0, abs_err = 0, sq_err = 0;
    for (size_t i = 0; i < n; i++) {
        double p = seen(pred, i, clip), y = seen(label, i, clip);
        sum_p += p;
        sum_y += y;
        abs_err += fabs(p - y);
        sq_err += (p - y) * (p - y);
    }
    double mean_p = sum_p / (double)n, mean_y = sum_y / (double)n;
    double cov = 0, var_p = 0, var_y = 0;
    for (size_t i = 0; i < n; i++) {
        double dp = seen(pred, i, clip) - mean_p, dy = seen(label, i, clip) - mean_y;
        cov += dp * dy;
        var_p += dp * dp;
        var_y += dy * dy;
    }
    out->corr_defined = var_p > 0 && var_y > 0;
    out->corr = out->corr_defined ? cov / sqrt(var_p * var_y) : NAN;
    out->mae = abs_err / (double)n;
    out->mse = sq_err / (double)n;
}

static void mosi_classes(const float *pred, const float *label, size_t n, sd_metrics *out) {
    size_t hit7 = 0, hit5 = 0, has0[2][2] = {{0, 0}, {0, 0}}, non0[2][2] = {{0, 0}, {0, 0}};
    for (size_t i = 0; i < n; i++) {
        double p = pred[i], y = label[i];
        hit7 += rint(clip(p, -3, 3)) == rint(clip(y, -3, 3));
        hit5 += rint(clip(p, -2, 2)) == rint(clip(y, -2, 2));
        has0[y >= 0][p >= 0]++;
        if (y != 0) {
            non0[y > 0][p > 0]++;
            out->n_non0++;
        }
    }
    out->acc7 = (double)hit7 / (double)n;
    out->acc5 = (double)hit5 / (double)n;
    out->acc2_has0 = (double)(has0[0][0] + has0[1][1]) / (double)n;
    out->f1_has0 = weighted_f1(has0);
    if (out->n_non0) {
        out->acc2_non0 = (double)(non0[0][0] + non0[1][1]) / (double)out->n_non0;
        out->f1_non0 = weighted_f1(non0);
    }
}

/* The class of v among the bins (edges[i], edges[i + 1]] (float32 comparisons, as MMSA's). */
static int sims_class(float v, const float *edges, int bins) {
    for (int i = 0; i < bins; i++)
        if (v > edges[i] && v <= edges[i + 1]) return i;
    return -1;
}

static void sims_classes(const float *pred, const float *label, size_t n, sd_metrics *out) {
    static const float e2[] = {-1.01f, 0.0f, 1.01f}, e3[] = {-1.01f, -0.1f, 0.1f, 1.01f},
                       e5[] = {-1.01f, -0.7f, -0.1f, 0.1f, 0.7f, 1.01f};
    size_t hit2 = 0, hit3 = 0, hit5 = 0, cm[2][2] = {{0, 0}, {0, 0}};
    for (size_t i = 0; i < n; i++) {
        float p = seen(pred, i, 1), y = seen(label, i, 1);
        int p2 = sims_class(p, e2, 2), y2 = sims_class(y, e2, 2);
        hit2 += p2 == y2;
        hit3 += sims_class(p, e3, 3) == sims_class(y, e3, 3);
        hit5 += sims_class(p, e5, 5) == sims_class(y, e5, 5);
        if (p2 >= 0 && y2 >= 0) cm[y2][p2]++; /* -1 only for NaN */
    }
    out->acc2 = (double)hit2 / (double)n;
    out->acc3 = (double)hit3 / (double)n;
    out->acc5 = (double)hit5 / (double)n;
    out->f1 = weighted_f1(cm);
}

void sd_metrics_compute_scheme(const float *pred, const float *label, size_t n, sd_metrics_scheme scheme,
                               sd_metrics *out) {
    memset(out, 0, sizeof *out);
    out->scheme = scheme;
    out->n = n;
    out->corr = out->acc2_non0 = out->f1_non0 = NAN; /* undefined until shown otherwise */
    if (n == 0) {
        out->mae = out->mse = out->acc7 = out->acc5 = out->acc2_has0 = out->f1_has0 = NAN;
        out->acc2 = out->acc3 = out->f1 = NAN;
        return;
    }
    regression(pred, label, n, scheme == SD_METRICS_SIMS, out);
    if (scheme == SD_METRICS_MOSI) mosi_classes(pred, label, n, out);
    if (scheme == SD_METRICS_SIMS) sims_classes(pred, label, n, out);
}

void sd_metrics_compute(const float *pred, const float *label, size_t n, sd_metrics *out) {
    sd_metrics_compute_scheme(pred, label, n, SD_METRICS_MOSI, out);
}

/* A metric as JSON (null when undefined), a table cell ("undef") or a CSV field (empty). */
static void json_metric(FILE *out, const char *key, double v) {
    if (isfinite(v)) fprintf(out, ", \"%s\": %.6f", key, v);
    else fprintf(out, ", \"%s\": null", key);
}

static void cell(FILE *out, int width, double v) {
    if (isfinite(v)) fprintf(out, " %*.4f", width, v);
    else fprintf(out, " %*s", width, "undef");
}

static void csv_metric(FILE *out, double v) {
    fputc(',', out);
    if (isfinite(v)) fprintf(out, "%.6f", v);
}

void sd_metrics_write_json(FILE *out, const sd_metrics *m, const char *flow) {
    fprintf(out, "{");
    if (flow) fprintf(out, "\"flow\": \"%s\", ", flow);
    fprintf(out, isfinite(m->mae) ? "\"mae\": %.6f" : "\"mae\": null", m->mae);
    json_metric(out, "mse", m->mse);
    json_metric(out, "corr", m->corr_defined ? m->corr : NAN);
    if (m->scheme == SD_METRICS_MOSI) {
        json_metric(out, "acc7", m->acc7);
        json_metric(out, "acc5", m->acc5);
        json_metric(out, "acc2_has0", m->acc2_has0);
        json_metric(out, "f1_has0", m->f1_has0);
        json_metric(out, "acc2_non0", m->acc2_non0);
        json_metric(out, "f1_non0", m->f1_non0);
        fprintf(out, ", \"n\": %zu, \"n_non0\": %zu}", m->n, m->n_non0);
    } else if (m->scheme == SD_METRICS_SIMS) {
        json_metric(out, "acc2", m->acc2);
        json_metric(out, "acc3", m->acc3);
        json_metric(out, "acc5", m->acc5);
        json_metric(out, "f1", m->f1);
        fprintf(out, ", \"n\": %zu, \"scheme\": \"sims\"}", m->n);
    } else {
        fprintf(out, ", \"n\": %zu, \"scheme\": \"range\"}", m->n);
    }
}

void sd_metrics_write_table_header(FILE *out, sd_metrics_scheme scheme) {
    fprintf(out, "%-10s %7s %7s %7s", "flow", "MAE", "MSE", "Corr");
    if (scheme == SD_METRICS_MOSI)
        fprintf(out, " %7s %7s %9s %9s %9s %9s %6s %6s", "Acc-7", "Acc-5", "Acc-2/h0", "F1/h0", "Acc-2/n0", "F1/n0",
                "n", "n_non0");
    else if (scheme == SD_METRICS_SIMS)
        fprintf(out, " %7s %7s %7s %7s %6s", "Acc-2", "Acc-3", "Acc-5", "F1", "n");
    else
        fprintf(out, " %6s", "n");
    fprintf(out, "\n");
}

void sd_metrics_write_table_row(FILE *out, const sd_metrics *m, const char *flow) {
    fprintf(out, "%-10s", flow ? flow : "");
    cell(out, 7, m->mae);
    cell(out, 7, m->mse);
    cell(out, 7, m->corr_defined ? m->corr : NAN);
    if (m->scheme == SD_METRICS_MOSI) {
        const double v[6] = {m->acc7, m->acc5, m->acc2_has0, m->f1_has0, m->acc2_non0, m->f1_non0};
        for (int i = 0; i < 6; i++) cell(out, i < 2 ? 7 : 9, v[i]);
        fprintf(out, " %6zu %6zu", m->n, m->n_non0);
    } else if (m->scheme == SD_METRICS_SIMS) {
        const double v[4] = {m->acc2, m->acc3, m->acc5, m->f1};
        for (int i = 0; i < 4; i++) cell(out, 7, v[i]);
        fprintf(out, " %6zu", m->n);
    } else {
        fprintf(out, " %6zu", m->n);
    }
    fprintf(out, "\n");
}

void sd_metrics_write_csv_header(FILE *out, sd_metrics_scheme scheme) {
    if (scheme == SD_METRICS_MOSI)
        fprintf(out, "flow," SD_METRICS_CSV_COLUMNS "\n");
    else if (scheme == SD_METRICS_SIMS)
        fprintf(out, "flow,mae,mse,corr,acc2,acc3,acc5,f1,n\n");
    else
        fprintf(out, "flow,mae,mse,corr,n\n");
}

void sd_metrics_write_csv_fields(FILE *out, const sd_metrics *m) {
    if (isfinite(m->mae)) fprintf(out, "%.6f", m->mae);
    csv_metric(out, m->mse);
    csv_metric(out, m->corr_defined ? m->corr : NAN);
    if (m->scheme == SD_METRICS_MOSI) {
        const double v[6] = {m->acc7, m->acc5, m->acc2_has0, m->f1_has0, m->acc2_non0, m->f1_non0};
        for (int i = 0; i < 6; i++) csv_metric(out, v[i]);
        fprintf(out, ",%zu,%zu", m->n, m->n_non0);
    } else if (m->scheme == SD_METRICS_SIMS) {
        const double v[4] = {m->acc2, m->acc3, m->acc5, m->f1};
        for (int i = 0; i < 4; i++) csv_metric(out, v[i]);
        fprintf(out, ",%zu", m->n);
    } else {
        fprintf(out, ",%zu", m->n);
    }
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
