/* Sums of float gradients that do not depend on the order of the additions: fixed point with one
 * exponent per element, agreed by every part before any is added (train/grad_step.h sums the
 * gradient chunks of a training step this way, on one process or over the ranks of an MPI job).
 *
 * For element i, E_i is the largest exponent over the parts (|x| < 2^E_i for every part's x);
 * each part's x becomes the integer round(x * 2^(S - E_i)), S = 62 - ceil(log2 K) for K parts, so
 * K of them sum in int64 without overflow; integer sums are exact, so any grouping of the parts
 * (one process, or ranks each summing theirs, then an MPI sum) gives the same integer, rounded to
 * float once at the end. Each part's rounding error is at most 2^(E_i - S - 1): the result is
 * within K 2^(E_i - S - 1) of the exact sum, far below a float sum's error (~2^(E_i - 24)).
 *
 * Exponent codes (int8): -128 every part is 0; 127 some part is not finite or has |x| >= 2^126
 * (the sum is then NaN, which the training's divergence guard reports). */
#ifndef SD_TRAIN_GRAD_SUM_H
#define SD_TRAIN_GRAD_SUM_H

#include <stddef.h>
#include <stdint.h>

#define SD_GRAD_EXP_ZERO (-128)
#define SD_GRAD_EXP_BAD 127

/* e[n] = max(e, exponent code of x) element-wise (start from SD_GRAD_EXP_ZERO). */
void sd_grad_sum_exponents(int8_t *e, const float *x, size_t n);
/* q[n] += round(x * 2^(S - e)) for `parts` parts in all (start from 0; e from every part). */
void sd_grad_sum_add(int64_t *q, const int8_t *e, const float *x, size_t n, int parts);
/* out[n] = q * 2^(e - S), rounded to float once (NaN where e is SD_GRAD_EXP_BAD). */
void sd_grad_sum_result(float *out, const int64_t *q, const int8_t *e, size_t n, int parts);

#endif
