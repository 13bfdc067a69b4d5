/* Regression and classification metrics of MMSA's metricsTop.py, accumulated in double. Which ones
 * depends on the labels' range (sd_metrics_scheme_for):
 *
 * [-3, 3], CMU-MOSI / CMU-MOSEI (MODEL.md section 5), SD_METRICS_MOSI:
 *   MAE, MSE, Corr (Pearson; undefined when predictions or labels are constant),
 *   Acc-7 = mean(rint(clip(p,-3,3)) == rint(clip(y,-3,3))), Acc-5 the same with [-2,2]
 *     (rint = round half to even, as numpy's np.round),
 *   Has0 Acc-2 / F1: classes (y >= 0) vs (p >= 0) over all samples,
 *   Non0 Acc-2 / F1: classes (y > 0) vs (p > 0) over samples with y != 0,
 *   F1 weighted as sklearn's f1_score(average='weighted'): sum_c support_c F1_c / N, support
 *   counted on the labels, F1_c = 0 when precision + recall = 0.
 *
 * [-1, 1], CH-SIMS (metricsTop.py's __eval_sims_regression), SD_METRICS_SIMS: predictions and labels
 * clipped to [-1, 1] first (in float32, as MMSA's torch tensors), then
 *   MAE, MSE, Corr of the clipped values,
 *   Acc-2: classes [-1, 0], (0, 1]; Acc-3: [-1, -0.1], (-0.1, 0.1], (0.1, 1]; Acc-5: [-1, -0.7],
 *     (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1] (bin edges compared in float32, as numpy
 *     compares a float32 array with a Python float), accuracy = equal classes,
 *   F1: weighted F1 of the Acc-2 classes.
 *
 * Any other range, SD_METRICS_RANGE: MAE, MSE and Corr only (the class metrics are defined for
 * those two scales). */
#ifndef SD_TRAIN_METRICS_H
#define SD_TRAIN_METRICS_H

#include <stddef.h>
#include <stdio.h>

typedef enum { SD_METRICS_MOSI = 0, SD_METRICS_SIMS = 1, SD_METRICS_RANGE = 2 } sd_metrics_scheme;

/* A metric that is undefined is NaN: everything for n = 0, Corr when a side is constant, the Non0
 * metrics when no label is non-zero. Every writer shows it as undefined: JSON null, "undef" in a
 * table, an empty CSV field. */
typedef struct {
    sd_metrics_scheme scheme;
    double mae, mse, corr;
    int corr_defined; /* 0 when either side is constant (Corr is then reported as undefined) */
    double acc7, acc5, acc2_has0, f1_has0, acc2_non0, f1_non0; /* MOSI (acc5 also SIMS's Acc-5) */
    double acc2, acc3, f1;                                      /* SIMS */
    size_t n, n_non0; /* samples, and samples with a non-zero label (MOSI) */
} sd_metrics;

/* The scheme of a label range: [-3, 3] MOSI, [-1, 1] SIMS, anything else RANGE. */
sd_metrics_scheme sd_metrics_scheme_for(double label_lo, double label_hi);
const char *sd_metrics_scheme_name(sd_metrics_scheme s); /* "mosi", "sims", "range" */

/* The MOSI/MOSEI metrics. */
void sd_metrics_compute(const float *pred, const float *label, size_t n, sd_metrics *out);
/* The metrics of a scheme. */
void sd_metrics_compute_scheme(const float *pred, const float *label, size_t n, sd_metrics_scheme scheme,
                               sd_metrics *out);

/* Writes the metrics as one JSON object with keys mae, mse, corr (null when undefined), then
 * MOSI: acc7, acc5, acc2_has0, f1_has0, acc2_non0, f1_non0, n, n_non0; SIMS: acc2, acc3, acc5, f1,
 * n, "scheme": "sims"; RANGE: n, "scheme": "range" (fractions, not percentages), and
 * "flow": flow when flow != NULL. */
void sd_metrics_write_json(FILE *out, const sd_metrics *m, const char *flow);
/* A header line (for the scheme) and one row per call, for a table of flows. */
void sd_metrics_write_table_header(FILE *out, sd_metrics_scheme scheme);
void sd_metrics_write_table_row(FILE *out, const sd_metrics *m, const char *flow);
void sd_metrics_write_csv_header(FILE *out, sd_metrics_scheme scheme);
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
