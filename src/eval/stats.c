/* Mean and sd over seeds, Student's t quantile, paired t interval, AUILC. */
#include "eval/stats.h"

#include <math.h>

void sd_mean_sd(const double *x, size_t n, double *mean, double *sd, size_t *count) {
    double s = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) s += x[i], k++;
    double m = k ? s / (double)k : NAN, ss = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = k >= 2 ? sqrt(ss / (double)(k - 1)) : NAN;
    if (count) *count = k;
}

/* Continued fraction of the incomplete beta function (modified Lentz), valid for
 * x < (a + 1) / (a + b + 2); the caller uses the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) otherwise. */
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        double m2 = 2.0 * m;
        /* even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)) */
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + num * d;
        c = 1.0 + num / c;
        if (fabs(d) < tiny) d = tiny;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        /* odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)) */
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + num * d;
        c = 1.0 + num / c;
        if (fabs(d) < tiny) d = tiny;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1.0) < 1e-15) break;
    }
    return h;
}

/* Regularised incomplete beta I_x(a, b). */
static double inc_beta(double a, double b, double x) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_cf(a, b, x) / a;
    return 1.0 - front * beta_cf(b, a, 1.0 - x) / b;
}

static double t_cdf(double t, double df) {
    double tail = 0.5 * inc_beta(0.5 * df, 0.5, df / (df + t * t));
    return t > 0 ? 1.0 - tail : tail;
}

double sd_student_t_quantile(double p, double df) {
    if (!(p > 0.0 && p < 1.0) || !(df > 0.0)) return NAN;
    if (p == 0.5) return 0.0;
    if (p < 0.5) return -sd_student_t_quantile(1.0 - p, df);
    double lo = 0.0, hi = 1.0;
    while (t_cdf(hi, df) < p && hi < 1e300) hi *= 2.0;
    for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (t_cdf(mid, df) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

void sd_paired_t_interval(const double *d, size_t n, double level, double *mean, double *lo, double *hi) {
    double sd;
    size_t k;
    sd_mean_sd(d, n, mean, &sd, &k);
    if (k < 2) {
        *lo = *hi = NAN;
        return;
    }
    double half = sd_student_t_quantile(0.5 * (1.0 + level), (double)(k - 1)) * sd / sqrt((double)k);
    *lo = *mean - half;
    *hi = *mean + half;
}

double sd_auilc(const double *rate, const double *y, size_t n) {
    if (n == 0) return NAN;
    if (n == 1) return y[0];
    double area = 0.0;
    for (size_t i = 0; i + 1 < n; i++) area += (rate[i + 1] - rate[i]) * 0.5 * (y[i] + y[i + 1]);
    double span = rate[n - 1] - rate[0];
    return span > 0 ? area / span : y[0];
}
