/* Declarations of the losses, included by loss.h once per precision (SD_T, SD_FN). No guard
 * on purpose. Formulas are restated above each pair. */

/* ---- MSE: L = (1/n) sum_i (pred_i - target_i)^2; pred, target [n]. n == 0 gives 0. */
SD_T SD_FN(sd_mse_forward)(const SD_T *pred, const SD_T *target, size_t n);
/* dpred[n] += scale * 2 (pred - target) / n. */
void SD_FN(sd_mse_backward)(SD_T *dpred, const SD_T *pred, const SD_T *target, size_t n,
                         SD_T scale);

/* ---- The pieces MSE and RMSE are made of, for a loss whose elements are spread over several
 * parts (gradient chunks, train/grad_step.h): S = sum_i (a_i - b_i)^2 in double over one part, and
 * da[n] += k (a - b), db[n] -= k (a - b) (db or da may be NULL) with k computed by the caller from
 * the totals (MSE: k = 2 scale / n_total, RMSE: k = scale / (n_total L)). */
double SD_FN(sd_sq_diff_sum)(const SD_T *a, const SD_T *b, size_t n);
void SD_FN(sd_sq_diff_backward)(SD_T *da, SD_T *db, const SD_T *a, const SD_T *b, size_t n, double k);

/* ---- RMSE: L = sqrt((1/n) sum_i (a_i - b_i)^2); a, b [n] (any shape, flattened). */
SD_T SD_FN(sd_rmse_forward)(const SD_T *a, const SD_T *b, size_t n);
/* da[n] += scale * (a - b) / (n L); db[n] += the negative (db == NULL: b is a stop-gradient
 * target, da == NULL is allowed too). sqrt is not differentiable at 0: when L == 0 (a == b
 * everywhere, or n == 0) the gradient is DEFINED as 0 and nothing is added (PyTorch would
 * give NaN there). */
void SD_FN(sd_rmse_backward)(SD_T *da, SD_T *db, const SD_T *a, const SD_T *b, size_t n,
                          SD_T scale);

/* ---- Rank-N-Contrast (Zha et al., 2023) as SDUMC uses it. F [n,d] features (not
 * normalised), Y [n] labels, t > 0 temperature (2 in SDUMC), d_ij = ||F_i - F_j|| (L2):
 *   N_ik = { j != i : |Y_i - Y_j| >= |Y_i - Y_k| - 1e-4 }        (k is always in N_ik)
 *   S_ik = sum_{j in N_ik} exp(-d_ij / t)
 *   L    = 1/(n(n-1)) sum_i sum_{k != i} [ d_ik / t + log S_ik ]
 * n < 2 gives L = 0 (and no gradient). Cost O(n^2 (d + log n)) time, O(n^2) memory: per row
 * i the others are sorted by label distance, so each N_ik is a suffix of that order and all
 * the S_ik come from one suffix log-sum-exp (exact: the same comparisons as the definition).
 * Rows are processed in parallel (OpenMP), each row on its own: results do not depend on the
 * thread count.
 *
 * work: caller-provided scratch of sd_rnc_workspace_len(n) SD_T elements (any alignment; it is
 * used as raw bytes). sd_rnc_workspace_len returns 0 for n < 2 (work may then be NULL) and
 * SIZE_MAX when the size overflows (so the allocation fails). */
size_t SD_FN(sd_rnc_workspace_len)(int n);
SD_T SD_FN(sd_rnc_forward)(const SD_T *F, const SD_T *Y, int n, int d, SD_T temperature,
                        SD_T *work);
/* dF[n,d] += scale * dL/dF, with, for i != j,
 *   G_ij = (1/t)/(n(n-1)) [ 1 - sum_{k != i : j in N_ik} exp(-d_ij/t) / S_ik ]
 *   dL/dF_i = sum_{j != i} (G_ij + G_ji) (F_i - F_j) / d_ij      (a term is 0 where d_ij = 0).
 * Everything is recomputed from F and Y (work is the same scratch as the forward's). */
void SD_FN(sd_rnc_backward)(SD_T *dF, const SD_T *F, const SD_T *Y, int n, int d,
                         SD_T temperature, SD_T scale, SD_T *work);
/* Both at once, for a training step: returns the loss (as sd_rnc_forward) and adds the gradient
 * (as sd_rnc_backward), computing the distances and the sorted rows once. */
SD_T SD_FN(sd_rnc_forward_backward)(SD_T *dF, const SD_T *F, const SD_T *Y, int n, int d,
                                 SD_T temperature, SD_T scale, SD_T *work);
