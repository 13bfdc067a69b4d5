/* The finite-difference gradient checker of the tests, in double precision: one derivative rule,
 * one acceptance rule, shared by the layer (test_grad_layers.c), loss (test_loss.c) and assembled
 * flow (test_grad_flow.c) checks.
 *
 * The derivative. For a scalar function L of values v, the numerical derivative with respect to
 * one value v_i is the fourth-order central difference
 *     n_i = (8 (L(v_i + h) - L(v_i - h)) - (L(v_i + 2h) - L(v_i - 2h))) / 12h.
 * Its truncation error is -(h^4 / 30) L^(5)(v_i): no h^2 term, unlike the plain
 * (L(v+h) - L(v-h)) / 2h. Its rounding error is about 1.5 e / h for an absolute error e of one
 * evaluation of L (a few times 1e-16 |L| in double). The plain difference needs h ~ 1e-6 to keep
 * its h^2 error small, and then its rounding noise (~3e-11 absolute, measured on the layers) is
 * above 1e-6 relative for derivatives below ~3e-5, which random data does produce. With the
 * fourth-order formula h = SD_FD_H = 3e-4 gives a truncation error of order h^4 ~ 1e-14 and a
 * rounding error of order 1e-12 (worst measured relative errors: ~1e-8 on the layers, ~7e-8 on
 * the losses). A problem whose evaluations round more (the assembled flows, test_grad_flow.c)
 * may take a larger h, and a larger floor (sd_fd_fn.floor) when its L is large enough that the
 * absolute noise 1.5 e / h exceeds SD_FD_TOL * SD_FD_FLOOR = 1e-12; the relative tolerance stays.
 *
 * The acceptance rule. An analytic derivative a is accepted against the numerical n when
 *     |a - n| / max(|a|, |n|, SD_FD_FLOOR) < SD_FD_TOL,   SD_FD_FLOOR = SD_FD_TOL = 1e-6:
 * a relative error below 1e-6 for derivatives larger than 1e-6, and an absolute error below
 * 1e-12 for smaller ones, where n itself carries rounding noise of that order. Both bounds are
 * far above the formula's error and far below what a wrong backward gives (a sign, a missing term
 * or a factor is an error of order 1; a gradient scaled by 1.01 is 1e-2). And a check must not be
 * vacuous: a tensor passes only when its largest |n| and its largest |a| both exceed
 * SD_FD_MIN_GRAD = 1e-3, unless an all-zero gradient is the right answer (may_be_zero).
 *
 * Kinks. A difference across a kink (ReLU at 0) measures nothing. A problem can skip coordinates
 * it knows to be near one (skip), or give a signature of its discrete state (ReLU on/off
 * pattern): a coordinate whose perturbed evaluations change it is skipped. Skipped coordinates
 * are counted; each test says how many it allows. */
#ifndef SD_TEST_GRADCHECK_H
#define SD_TEST_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

#define SD_FD_H 3e-4        /* step of the difference (see above) */
#define SD_FD_TOL 1e-6      /* largest relative error accepted */
#define SD_FD_FLOOR 1e-6    /* the relative error's denominator floor */
#define SD_FD_MIN_GRAD 1e-3 /* a tensor's largest derivative must exceed this (non-vacuous) */

/* h advanced (sd_fnv1a, start from SD_FNV1A_INIT) over the on/off pattern (v > 0) of v [n], one
 * 0/1 byte per value: the ReLU-state signature of sd_fd_fn.state. */
uint64_t sd_fd_sign_state(uint64_t h, const double *v, size_t n);

/* The scalar function: loss(ctx) evaluates L at the current values (which the checker perturbs in
 * place, one at a time, and restores). h: the step (0 for SD_FD_H). state: optional, a
 * signature of the discrete state of the last evaluation (a ReLU on/off pattern). floor: the
 * relative error's denominator floor (0 for SD_FD_FLOOR; see above). */
typedef struct {
    double (*loss)(void *ctx);
    void *ctx;
    double h;
    uint64_t (*state)(void *ctx);
    double floor;
} sd_fd_fn;

/* One tensor of values of L and L's analytic gradient with respect to it. */
typedef struct {
    const char *name;
    double *val;        /* [n] values, perturbed in place */
    const double *grad; /* [n] analytic dL/dval */
    size_t n;
    int may_be_zero;    /* 1: an all-zero gradient is the right answer (an unused input) */
} sd_fd_tensor;

/* Optional: 1 when coordinate i of t lies on a kink and is not to be checked. */
typedef int (*sd_fd_skip_fn)(void *ctx, const sd_fd_tensor *t, size_t i);

/* The comparison of a tensor's analytic and numerical gradients. */
typedef struct {
    double worst;        /* largest sd_fd_err over the checked coordinates (INFINITY for a NaN) */
    double max_analytic; /* largest |a| and |n| over the checked coordinates */
    double max_numeric;
    size_t checked, skipped;
} sd_fd_result;

/* The acceptance measure of one coordinate: |a - n| / max(|a|, |n|, floor), floor 0 meaning
 * SD_FD_FLOOR. */
double sd_fd_err(double analytic, double numeric, double floor);

/* n = dL/dv by the fourth-order difference, v restored. *kinked (when state is set) = 1 when an
 * evaluation's state differs from state0. */
double sd_fd_derivative(const sd_fd_fn *f, double *v, uint64_t state0, int *kinked);

/* Numerical derivatives num[i] for every coordinate of t, or, when 0 < sample < t->n, for
 * `sample` coordinates drawn without replacement from seed plus the coordinate of the largest
 * |grad| (so that the non-vacuity rule sees the tensor's largest derivative). skip [t->n] is
 * nonzero where a coordinate was not checked (not drawn, or on a kink). Returns the number
 * skipped for a kink (skip_fn or a state change). */
size_t sd_fd_numeric(const sd_fd_fn *f, const sd_fd_tensor *t, sd_fd_skip_fn skip_fn, size_t sample,
                     uint64_t seed, double *num, uint8_t *skip);

/* Compares analytic [n] with numeric [n] over the coordinates where skip (may be NULL) is 0,
 * with sd_fd_err's floor. */
sd_fd_result sd_fd_compare(const double *analytic, const double *numeric, const uint8_t *skip, size_t n,
                           double floor);

/* The acceptance rule: worst < SD_FD_TOL, and (unless may_be_zero) both largest derivatives
 * above SD_FD_MIN_GRAD. */
int sd_fd_passes(const sd_fd_result *r, int may_be_zero);

/* sd_fd_numeric then sd_fd_compare for one tensor (the numbers skipped for a kink in
 * r.skipped); returns sd_fd_passes. */
int sd_fd_check(const sd_fd_fn *f, const sd_fd_tensor *t, sd_fd_skip_fn skip_fn, size_t sample,
                uint64_t seed, sd_fd_result *r);

/* Records a failure of the running test case at file:line, naming label and the numbers, unless
 * r passes the acceptance rule. */
void sd_fd_expect(const char *file, int line, const char *label, const sd_fd_result *r, int may_be_zero);
#define SD_FD_EXPECT(label, r, may_be_zero) sd_fd_expect(__FILE__, __LINE__, (label), (r), (may_be_zero))

#endif
