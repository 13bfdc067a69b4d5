/* The finite-difference gradient checker of the tests: the fourth-order central difference, the
 * one acceptance rule and its failure message (the math is in gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>

#include "core/hash.h"
#include "harness.h"

/* skip[] codes of sd_fd_numeric: checked, skipped for a kink, not drawn into the sample. */
enum { FD_CHECKED = 0, FD_KINK = 1, FD_NOT_DRAWN = 2 };

double sd_fd_err(double analytic, double numeric, double floor) {
    if (isnan(analytic) || isnan(numeric)) return INFINITY;
    const double m = fmax(fmax(fabs(analytic), fabs(numeric)), floor > 0 ? floor : SD_FD_FLOOR);
    return fabs(analytic - numeric) / m;
}

uint64_t sd_fd_sign_state(uint64_t h, const double *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const unsigned char on = v[i] > 0;
        h = sd_fnv1a(h, &on, 1);
    }
    return h;
}

double sd_fd_derivative(const sd_fd_fn *f, double *v, uint64_t state0, int *kinked) {
    static const double steps[4] = {1, -1, 2, -2};
    const double h = f->h > 0 ? f->h : SD_FD_H, keep = *v;
    double L[4];
    int changed = 0;
    for (int j = 0; j < 4; j++) {
        *v = keep + steps[j] * h;
        L[j] = f->loss(f->ctx);
        if (f->state) changed |= f->state(f->ctx) != state0;
    }
    *v = keep;
    if (kinked) *kinked = changed;
    return (8 * (L[0] - L[1]) - (L[2] - L[3])) / (12 * h);
}

/* A splitmix64 step: the draws of the sample. */
static uint64_t next_draw(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

size_t sd_fd_numeric(const sd_fd_fn *f, const sd_fd_tensor *t, sd_fd_skip_fn skip_fn, size_t sample,
                     uint64_t seed, double *num, uint8_t *skip) {
    const int sampled = sample > 0 && sample < t->n;
    for (size_t i = 0; i < t->n; i++) {
        num[i] = 0;
        skip[i] = sampled ? FD_NOT_DRAWN : FD_CHECKED;
    }
    if (sampled) { /* Floyd's algorithm: `sample` distinct indices */
        uint64_t s = seed;
        for (size_t j = t->n - sample; j < t->n; j++) {
            const size_t r = (size_t)(next_draw(&s) % (uint64_t)(j + 1));
            if (skip[r] == FD_NOT_DRAWN) skip[r] = FD_CHECKED;
            else skip[j] = FD_CHECKED;
        }
        size_t big = 0; /* and the largest analytic derivative, for the non-vacuity rule */
        for (size_t i = 1; i < t->n; i++)
            if (fabs(t->grad[i]) > fabs(t->grad[big])) big = i;
        skip[big] = FD_CHECKED;
    }
    uint64_t state0 = 0;
    if (f->state) {
        (void)f->loss(f->ctx);
        state0 = f->state(f->ctx);
    }
    size_t kinks = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (skip[i] != FD_CHECKED) continue;
        int kinked = skip_fn && skip_fn(f->ctx, t, i);
        if (!kinked) num[i] = sd_fd_derivative(f, &t->val[i], state0, &kinked);
        if (kinked) {
            num[i] = 0;
            skip[i] = FD_KINK;
            kinks++;
        }
    }
    return kinks;
}

sd_fd_result sd_fd_compare(const double *analytic, const double *numeric, const uint8_t *skip, size_t n,
                           double floor) {
    sd_fd_result r = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i] != FD_CHECKED) {
            r.skipped += skip[i] == FD_KINK;
            continue;
        }
        const double e = sd_fd_err(analytic[i], numeric[i], floor);
        if (!(e <= r.worst)) r.worst = e; /* NaN sticks */
        r.max_analytic = fmax(r.max_analytic, fabs(analytic[i]));
        r.max_numeric = fmax(r.max_numeric, fabs(numeric[i]));
        r.checked++;
    }
    return r;
}

int sd_fd_passes(const sd_fd_result *r, int may_be_zero) {
    if (!(r->worst < SD_FD_TOL)) return 0;
    return may_be_zero || (r->max_analytic > SD_FD_MIN_GRAD && r->max_numeric > SD_FD_MIN_GRAD);
}

int sd_fd_check(const sd_fd_fn *f, const sd_fd_tensor *t, sd_fd_skip_fn skip_fn, size_t sample,
                uint64_t seed, sd_fd_result *r) {
    double *num = malloc((t->n ? t->n : 1) * sizeof *num);
    uint8_t *skip = malloc(t->n ? t->n : 1);
    if (!num || !skip) {
        free(num);
        free(skip);
        *r = (sd_fd_result){INFINITY, 0, 0, 0, 0};
        return 0;
    }
    sd_fd_numeric(f, t, skip_fn, sample, seed, num, skip);
    *r = sd_fd_compare(t->grad, num, skip, t->n, f->floor);
    free(num);
    free(skip);
    return sd_fd_passes(r, t->may_be_zero);
}

void sd_fd_expect(const char *file, int line, const char *label, const sd_fd_result *r, int may_be_zero) {
    if (sd_fd_passes(r, may_be_zero)) return;
    if (!(r->worst < SD_FD_TOL))
        sd_test_fail(file, line, "%s: gradient check failed, max rel err %.3g over %zu coordinates", label,
                     r->worst, r->checked);
    else
        sd_test_fail(file, line,
                     "%s: gradient unexpectedly ~0 (max |analytic| %.3g, max |numeric| %.3g): the check "
                     "would be vacuous",
                     label, r->max_analytic, r->max_numeric);
}
