/* Regression and classification metrics of MMSA's metricsTop.py for MOSI/MOSEI (MODEL.md
 * section 5), accumulated in double:
 *   MAE, MSE, Corr (Pearson; undefined when predictions or labels are constant),
 *   Acc-7 = mean(rint(clip(p,-3,3)) == rint(clip(y,-3,3))), Acc-5 the same with [-2,2]
 *     (rint = round half to even, as numpy's np.round),
 *   Has0 Acc-2 / F1: classes (y >= 0) vs (p >= 0) over all samples,
 *   Non0 Acc-2 / F1: classes (y > 0) vs (p > 0) over samples with y != 0,
 *   F1 weighted as sklearn's f1_score(average='weighted'): sum_c support_c F1_c / N, support
 *   counted on the labels, F1_c = 0 when precision + recall = 0. */
#ifndef SD_TRAIN_METRICS_H
#define SD_TRAIN_METRICS_H

#include <stddef.h>
#include <stdio.h>

/* A metric that is undefined is NaN: everything for n = 0, Corr when a side is constant, the Non0
 * metrics when no label is non-zero. Every writer shows it as undefined: JSON null, "undef" in a
 * table, an empty CSV field. */
typedef struct {
    double mae, mse, corr;
    int corr_defined; /* 0 when either side is constant (Corr is then reported as undefined) */
    double acc7, acc5, acc2_has0, f1_has0, acc2_non0, f1_non0;
    size_t n, n_non0; /* samples, and samples with a non-zero label */
} sd_metrics;

void sd_metrics_compute(const float *pred, const float *label, size_t n, sd_metrics *out);

/* Writes the metrics as one JSON object with keys mae, mse, corr (null when undefined, as any), acc7,
 * acc5, acc2_has0, f1_has0, acc2_non0, f1_non0, n, n_non0 (fractions, not percentages), and
 * "flow": flow when flow != NULL. */
void sd_metrics_write_json(FILE *out, const sd_metrics *m, const char *flow);
/* A header line and one row per call, for a table of flows. */
void sd_metrics_write_table_header(FILE *out);
void sd_metrics_write_table_row(FILE *out, const sd_metrics *m, const char *flow);
void sd_metrics_write_csv_header(FILE *out);
void sd_metrics_write_csv_row(FILE *out, const sd_metrics *m, const char *flow);
/* The metric columns alone (SD_METRICS_CSV_COLUMNS, then the values with no leading comma and no
 * newline), for tables that put their own columns first. An undefined Corr is an empty field. */
#define SD_METRICS_CSV_COLUMNS "mae,mse,corr,acc7,acc5,acc2_has0,f1_has0,acc2_non0,f1_non0,n,n_non0"
void sd_metrics_write_csv_fields(FILE *out, const sd_metrics *m);

/* The nine metrics by index, in the order of the CSV columns: names as in JSON and CSV, labels as
 * in tables, and the value (NaN for an undefined Corr). */
enum { SD_METRIC_COUNT = 9 };
extern const char *const sd_metric_names[SD_METRIC_COUNT];
extern const char *const sd_metric_labels[SD_METRIC_COUNT];
double sd_metric_value(const sd_metrics *m, int k);
/* 1 for MAE and MSE (an error), 0 for the others (higher is better). */
int sd_metric_lower_is_better(int k);
/* Index of a metric name, or -1. */
int sd_metric_index(const char *name);

#endif
