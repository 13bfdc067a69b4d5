/* Small statistics for the robustness evaluation and seed summaries: mean and standard
 * deviation over seeds, Student's t quantile for paired confidence intervals, and AUILC. */
#ifndef SD_EVAL_STATS_H
#define SD_EVAL_STATS_H

#include <stddef.h>

/* Mean and sample standard deviation (n - 1 in the denominator) of the finite values among
 * x[0..n); *count gets how many were finite. sd is NaN with fewer than two, mean NaN with none. */
void sd_mean_sd(const double *x, size_t n, double *mean, double *sd, size_t *count);

/* The p-quantile (0 < p < 1) of Student's t distribution with df > 0 degrees of freedom, from the
 * regularised incomplete beta function (t CDF = 1 - I_{df/(df+t^2)}(df/2, 1/2) / 2 for t > 0),
 * inverted by bisection to double precision. */
double sd_student_t_quantile(double p, double df);

/* Paired confidence interval (paired t) of the mean of d[0..n): mean +- t_{(1+level)/2, n-1} *
 * sd / sqrt(n). lo and hi are NaN when n < 2. */
void sd_paired_t_interval(const double *d, size_t n, double level, double *mean, double *lo, double *hi);

/* Area under the metric-versus-rate curve by the trapezoid rule, divided by the span of the
 * rates (AUILC, "area under the indicators line chart", as in TFR-Net and EMT-DLFR): for rates
 * r_0 < ... < r_{n-1} and values y_i, sum_i (r_{i+1} - r_i)(y_i + y_{i+1}) / 2 / (r_{n-1} - r_0).
 * It is then on the metric's own scale (a flat curve gives its value). One point: that value. */
double sd_auilc(const double *rate, const double *y, size_t n);

#endif
