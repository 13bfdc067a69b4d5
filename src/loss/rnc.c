/* Rank-N-Contrast loss and its analytic gradient (MODEL.md section 4), in `real` precision;
 * everything internal is double.
 *
 * Legend: n rows (2B in SDUMC), d feature dim, t temperature, m = n - 1 other rows of a row i,
 * q (and k) a position in row i's order: the others sorted by label distance, ascending.
 *
 * Why the sort makes it exact and O(n^2 log n): for a fixed i, "j in N_ik" is the test
 * delta_ij >= delta_ik - tol (delta = label distance), monotone in delta_ij. So in row i's
 * order N_ik is the suffix starting at the first position whose delta passes the threshold
 * of k ("first(k)"), thresholds grow with k, and
 *   log S_ik = suf[first(k)],  suf[q] = log sum_{r >= q} exp(x_r),  x_r = -d_ij/t (j at r),
 * one suffix log-sum-exp per row. For the gradient, j (at position q) is in N_ik exactly when
 * first(k) <= q, so
 *   sum_{k : j in N_ik} exp(x_q) / S_ik = exp(x_q + pre[q]),
 *   pre[q] = log sum_{k : first(k) <= q} exp(-log S_ik),
 * a prefix log-sum-exp over k (first(k) is nondecreasing in k). Each term exp(x_q - log S_ik)
 * is <= 1 because S_ik contains exp(x_q); working in the log domain keeps every intermediate
 * finite. Both log-sum-exps are the online kind: a running maximum, with the partial sum
 * rescaled when the maximum grows (the max of -d_ij/t over the set is subtracted). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/omp.h"
#include "core/real.h"
#include "loss/loss.h"

#define RNC_LABEL_TOL 1e-4 /* MODEL.md: |Y_i - Y_j| >= |Y_i - Y_k| - 1e-4 */
#define RNC_ALIGN 64       /* the workspace is re-aligned for doubles (any caller alignment) */
#define RNC_DIM_BLOCK 64   /* feature columns accumulated at once in the gradient */

/* One other row j of row i, at its position in row i's order. */
typedef struct {
    double delta; /* |Y_i - Y_j|, the sort key */
    double x;     /* -d_ij / t */
    double suf;   /* log sum over positions >= this one of exp(x) */
    int j;        /* index of the other row */
    int first;    /* taking this entry as k: position where N_ik starts */
} rnc_entry;

/* The workspace, carved out of the caller's buffer. */
typedef struct {
    double *dist;     /* [n,n] d_ij */
    double *G;        /* [n,n] G_ij = dL/dd_ij (ordered pair), backward only */
    double *row_loss; /* [n] sum_{k != i} [d_ik/t + log S_ik] */
    rnc_entry *rows;  /* [n,n] row i's order at rows + i*n; n-1 entries plus a sentinel */
} rnc_scratch;

static int rnc_bytes(int n, size_t *bytes) {
    size_t un = (size_t)n, nn, dist_g, loss, rows, total = RNC_ALIGN - 1;
    return sd_mul_size(un, un, &nn) && sd_mul_size(nn, 2 * sizeof(double), &dist_g) &&
           sd_mul_size(un, sizeof(double), &loss) && sd_mul_size(nn, sizeof(rnc_entry), &rows) &&
           sd_add_size(total, dist_g, &total) && sd_add_size(total, loss, &total) &&
           sd_add_size(total, rows, bytes);
}

size_t SD_R(sd_rnc_workspace_len)(int n) {
    size_t bytes;
    if (n < 2) return 0;
    if (!rnc_bytes(n, &bytes)) return SIZE_MAX;
    return bytes / sizeof(real) + (bytes % sizeof(real) != 0);
}

static rnc_scratch rnc_carve(real *work, int n) {
    unsigned char *b = (unsigned char *)work;
    b += (RNC_ALIGN - (uintptr_t)b % RNC_ALIGN) % RNC_ALIGN;
    size_t nn = (size_t)n * (size_t)n;
    rnc_scratch s;
    s.dist = (double *)b;
    s.G = s.dist + nn;
    s.row_loss = s.G + nn;
    s.rows = (rnc_entry *)(s.row_loss + n);
    return s;
}

/* Online log-sum-exp: the set so far is mx + log(s) (s == 0: empty). */
static void lse_add(double *mx, double *s, double v) {
    if (*s == 0.0) {
        *mx = v;
        *s = 1.0;
    } else if (v > *mx) {
        *s = *s * exp(*mx - v) + 1.0;
        *mx = v;
    } else {
        *s += exp(v - *mx);
    }
}

/* A total order (NaN last, ties by index) keeps qsort well-defined and the result unique. */
static int cmp_entry(const void *pa, const void *pb) {
    const rnc_entry *a = pa, *b = pb;
    int an = isnan(a->delta), bn = isnan(b->delta);
    if (an || bn) return an != bn ? an - bn : (a->j > b->j) - (a->j < b->j);
    if (a->delta != b->delta) return a->delta < b->delta ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

/* dist[n,n]: d_ij = ||F_i - F_j||, full rows (exactly symmetric: same terms, same order). */
static void rnc_distances(double *dist, const real *F, int n, int d) {
    SD_OMP(omp parallel for schedule(static) if (n >= 32))
    for (int i = 0; i < n; i++) {
        const real *Fi = F + (size_t)i * (size_t)d;
        for (int j = 0; j < n; j++) {
            const real *Fj = F + (size_t)j * (size_t)d;
            double s = 0.0;
            for (int c = 0; c < d; c++) {
                double e = (double)Fi[c] - (double)Fj[c];
                s += e * e;
            }
            dist[(size_t)i * (size_t)n + (size_t)j] = sqrt(s);
        }
    }
}

/* Row i: sorts the others by label distance, returns sum_{k != i} [d_ik/t + log S_ik] and,
 * when G_row is given, fills G_row[j] = G_ij = c/t (1 - sum_{k : j in N_ik} exp(-d_ij/t)/S_ik)
 * with c = 1/(n(n-1)). e: n entries of scratch. */
static double rnc_row(int i, const real *Y, int n, double inv_t, double c, const double *dist,
                      rnc_entry *e, double *G_row) {
    const int m = n - 1;
    const double yi = (double)Y[i];
    const double *di = dist + (size_t)i * (size_t)n;
    int q = 0;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        e[q].delta = fabs(yi - (double)Y[j]);
        e[q].x = -di[j] * inv_t;
        e[q].j = j;
        q++;
    }
    qsort(e, (size_t)m, sizeof *e, cmp_entry);

    /* suf[q] = log sum_{r >= q} exp(x_r); e[m] is a sentinel for an empty N_ik, which only
     * NaN labels can produce. */
    double mx = 0.0, s = 0.0;
    e[m].suf = -INFINITY;
    for (q = m - 1; q >= 0; q--) {
        lse_add(&mx, &s, e[q].x);
        e[q].suf = mx + log(s);
    }

    /* first(k) by a forward-moving pointer; loss terms d_ik/t + log S_ik. */
    double loss = 0.0;
    int first = 0;
    for (int k = 0; k < m; k++) {
        const double threshold = e[k].delta - RNC_LABEL_TOL;
        while (first < m && !(e[first].delta >= threshold)) first++;
        e[k].first = first;
        loss += -e[k].x + e[first].suf;
    }
    if (!G_row) return loss;

    /* pre[q] = log sum_{k : first(k) <= q} exp(-log S_ik), built while q advances. */
    mx = 0.0;
    s = 0.0;
    int k = 0;
    for (q = 0; q < m; q++) {
        while (k < m && e[k].first <= q) {
            lse_add(&mx, &s, -e[e[k].first].suf);
            k++;
        }
        double w = s > 0.0 ? exp(e[q].x + mx + log(s)) : 0.0;
        G_row[e[q].j] = c * inv_t * (1.0 - w);
    }
    G_row[i] = 0.0;
    return loss;
}

/* Fills dist, row_loss and (G != NULL) G for every row; rows in parallel, each on its own. */
static void rnc_all_rows(rnc_scratch *w, const real *F, const real *Y, int n, int d,
                         real temperature, int want_grad) {
    const double inv_t = 1.0 / (double)temperature;
    const double c = 1.0 / ((double)n * (double)(n - 1));
    rnc_distances(w->dist, F, n, d);
    SD_OMP(omp parallel for schedule(static) if (n >= 32))
    for (int i = 0; i < n; i++) {
        double *G_row = want_grad ? w->G + (size_t)i * (size_t)n : NULL;
        w->row_loss[i] = rnc_row(i, Y, n, inv_t, c, w->dist, w->rows + (size_t)i * (size_t)n, G_row);
    }
}

/* The loss from the rows' terms, summed in a fixed order: the value does not depend on the
 * thread count. */
static real rnc_mean(const rnc_scratch *w, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += w->row_loss[i];
    return (real)(sum / ((double)n * (double)(n - 1)));
}

real SD_R(sd_rnc_forward)(const real *F, const real *Y, int n, int d, real temperature,
                       real *work) {
    if (n < 2) return 0;
    rnc_scratch w = rnc_carve(work, n);
    rnc_all_rows(&w, F, Y, n, d, temperature, 0);
    return rnc_mean(&w, n);
}

/* dF_i += scale * sum_{j != i} (G_ij + G_ji) (F_i - F_j) / d_ij, columns in blocks so the
 * sums stay in double without a d-sized scratch. */
static void rnc_grad_row(real *dFi, const real *F, int i, int n, int d, const double *dist,
                         const double *G, double scale) {
    const real *Fi = F + (size_t)i * (size_t)d;
    for (int c0 = 0; c0 < d; c0 += RNC_DIM_BLOCK) {
        const int cb = d - c0 < RNC_DIM_BLOCK ? d - c0 : RNC_DIM_BLOCK;
        double acc[RNC_DIM_BLOCK] = {0};
        for (int j = 0; j < n; j++) {
            const double dij = dist[(size_t)i * (size_t)n + (size_t)j];
            if (j == i || dij == 0.0) continue; /* ||.|| has no gradient at 0: defined as 0 */
            const double coef =
                (G[(size_t)i * (size_t)n + (size_t)j] + G[(size_t)j * (size_t)n + (size_t)i]) / dij;
            const real *Fj = F + (size_t)j * (size_t)d + c0;
            for (int c = 0; c < cb; c++) acc[c] += coef * ((double)Fi[c0 + c] - (double)Fj[c]);
        }
        for (int c = 0; c < cb; c++) dFi[c0 + c] += (real)(scale * acc[c]);
    }
}

real SD_R(sd_rnc_forward_backward)(real *dF, const real *F, const real *Y, int n, int d,
                                real temperature, real scale, real *work) {
    if (n < 2) return 0;
    rnc_scratch w = rnc_carve(work, n);
    rnc_all_rows(&w, F, Y, n, d, temperature, 1);
    SD_OMP(omp parallel for schedule(static) if (n >= 32))
    for (int i = 0; i < n; i++)
        rnc_grad_row(dF + (size_t)i * (size_t)d, F, i, n, d, w.dist, w.G, (double)scale);
    return rnc_mean(&w, n);
}

void SD_R(sd_rnc_backward)(real *dF, const real *F, const real *Y, int n, int d,
                        real temperature, real scale, real *work) {
    (void)SD_R(sd_rnc_forward_backward)(dF, F, Y, n, d, temperature, scale, work);
}
