/* MLP block (MODEL.md "MLP(in, dims)"): n_layers x (Linear -> ReLU -> Dropout(p)).
 *
 * Legend: N rows, I = s->in, D_l = s->dims[l], L = s->n_layers, C = sd_mlp_cache_len (sum_l N*D_l).
 * Caches (caller-owned, each of C elements, layer l at offset sum_{j<l} N*D_j):
 *   relu_cache  r_l = ReLU(a_{l-1} W_l^T + b_l)   [N, D_l]
 *   drop_cache  a_l = Dropout(p)(r_l)             [N, D_l]
 *   mask_cache  keep masks of the dropouts       [N, D_l] (unused when p == 0)
 * The backward's scratch (two buffers of N*max_l D_l) is the caller's: sd_mlp_work_len elements. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/real.h"
#include "core/status.h"
#include "nn/nn.h"
#include "nn/nn_omp.h"

/* Elements below which the loops stay serial. */
#define MLP_PAR_MIN 65536

static int mlp_input_dim(const mlp_shape *s, int l) { return l == 0 ? s->in : s->dims[l - 1]; }

/* Number of elements of each cache; SIZE_MAX when the product overflows (no allocation can
 * then succeed, which the caller sees as an allocation failure). */
size_t SD_R(sd_mlp_cache_len)(const mlp_shape *s, size_t N) {
    size_t total = 0;
    for (int l = 0; l < s->n_layers; l++) {
        size_t part;
        if (s->dims[l] < 0 || !sd_mul_size(N, (size_t)s->dims[l], &part) ||
            !sd_add_size(total, part, &total))
            return SIZE_MAX;
    }
    return total;
}

/* out [N, D_last] = a_last; see the legend for the caches. W[l] [D_l, in_l], b[l] [D_l]
 * (b or b[l] may be NULL). The dropouts draw layer after layer from rng. */
void SD_R(sd_mlp_forward)(real *out, real *relu_cache, real *drop_cache, uint8_t *mask_cache,
                       const real *x, const real *const *W, const real *const *b,
                       const mlp_shape *s, size_t N, real p, sd_rng *rng) {
    const real *a_prev = x; /* [N, in_l] */
    size_t off = 0;
    for (int l = 0; l < s->n_layers; l++) {
        const size_t n_el = N * (size_t)s->dims[l];
        real *r = relu_cache + off; /* [N, D_l] */
        real *a = drop_cache + off; /* [N, D_l] */
        SD_R(sd_linear_forward)(r, a_prev, W[l], b ? b[l] : NULL, N, mlp_input_dim(s, l),
                             s->dims[l]);
        SD_R(sd_relu_forward)(r, r, n_el);
        SD_R(sd_dropout_forward)(a, mask_cache ? mask_cache + off : NULL, r, n_el, p, rng);
        a_prev = a;
        off += n_el;
    }
    if (s->n_layers > 0 && out != a_prev)
        memmove(out, a_prev, N * (size_t)s->dims[s->n_layers - 1] * sizeof *out);
}

/* Scratch of the backward: dz and da, N*max_l D_l each; SIZE_MAX when that overflows. */
size_t SD_R(sd_mlp_work_len)(const mlp_shape *s, size_t N) {
    size_t max_dim = 0, len;
    for (int l = 0; l < s->n_layers; l++)
        if (s->dims[l] > 0 && (size_t)s->dims[l] > max_dim) max_dim = (size_t)s->dims[l];
    if (!sd_mul_size(N, max_dim, &len) || !sd_mul_size(len, 2, &len)) return SIZE_MAX;
    return len;
}

/* Forward, per layer l: r_l = ReLU(a_{l-1} W_l^T + b_l), a_l = Dropout(p)(r_l), out = a_last.
 * Backward, from the last layer down (da_last = dout):
 *   dz_l = da_l * keep_l / (1-p) * (r_l > 0)          [N, D_l]
 *   da_{l-1} = dz_l W_l, dW_l += dz_l^T a_{l-1}, db_l += sum_n dz_l   (sd_linear_backward)
 * with a_{-1} = x and da_{-1} added into dx (skipped when dx is NULL). */
sd_status SD_R(sd_mlp_backward)(real *dx, real *const *dW, real *const *db, const real *dout,
                             const real *relu_cache, const real *drop_cache,
                             const uint8_t *mask_cache, const real *x, const real *const *W,
                             const mlp_shape *s, size_t N, real p, real *work) {
    const int L = s->n_layers;
    if (L <= 0 || N == 0) return SD_OK;
    const size_t work_len = SD_R(sd_mlp_work_len)(s, N);
    if (!work || work_len == SIZE_MAX) return SD_E_ARG;
    size_t off_last = 0;
    for (int l = 0; l < L - 1; l++) off_last += N * (size_t)s->dims[l];
    real *dz = work;                /* [N, D_l] for the current layer */
    real *da = work + work_len / 2; /* [N, D_{l-1}]: gradient of a_{l-1} */
    const real scale = p > 0 ? (p < 1 ? (real)1 / ((real)1 - p) : (real)0) : (real)1;
    const real *da_cur = dout; /* gradient of a_l, [N, D_l] */
    size_t off = off_last;     /* offset of layer l in the caches */
    for (int l = L - 1; l >= 0; l--) {
        const size_t n_el = N * (size_t)s->dims[l];
        const real *r = relu_cache + off;                       /* [N, D_l] */
        const uint8_t *keep = p > 0 ? mask_cache + off : NULL; /* [N, D_l] */
        const ptrdiff_t count = (ptrdiff_t)n_el;
        /* Branch-free select on bits, so the loop vectorises (core/real.h). */
        SD_OMP(omp parallel for schedule(static) if (n_el >= MLP_PAR_MIN))
        for (ptrdiff_t i = 0; i < count; i++) {
            const int pass = (r[i] > 0) & (!keep || keep[i]);
            dz[i] = real_of(bits_of(da_cur[i] * scale) & bits_mask(pass));
        }
        const int in_l = mlp_input_dim(s, l);
        const size_t prev_off = l > 0 ? off - N * (size_t)in_l : 0;
        const real *a_prev = l > 0 ? drop_cache + prev_off : x; /* [N, in_l] */
        real *da_prev = dx; /* l == 0: into dx, which may be NULL (then skipped) */
        if (l > 0) {
            da_prev = da;
            memset(da_prev, 0, N * (size_t)in_l * sizeof *da_prev);
        }
        SD_R(sd_linear_backward)(da_prev, dW ? dW[l] : NULL, db ? db[l] : NULL, dz, a_prev, W[l],
                              N, in_l, s->dims[l]);
        /* da now holds the gradient of a_{l-1}: the next layer reads it into dz, after which
         * it is free to receive the next da (dz and da never alias). */
        da_cur = da;
        off = prev_off;
    }
    return SD_OK;
}
