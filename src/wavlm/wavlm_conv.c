/* WavLM's convolutional feature encoder, run in blocks of SD_WAVLM_CONV_BLOCK output frames: a
 * block computes, layer by layer, only the rows its frames need (the receptive fields of
 * neighbouring blocks overlap by a few rows, under 1% of the work), so the scratch is a few MB per
 * thread whatever the length, and blocks run in parallel, one per OpenMP thread, each product a
 * single-threaded OpenBLAS call.
 *
 * Layout: time-major [rows, C]. Conv layer l (kernel k, stride s, C_in -> C_out, no padding):
 * output row i is the dot product of input rows i s .. i s + k - 1 (k C_in contiguous floats) with
 * each filter re-laid [k, C_in], so one block of the layer is im2col (one copy per row) + one GEMM.
 * The "group" norm of Base-type models normalises each channel of the first layer over all the
 * time steps of the input: its statistics come from two earlier passes over that layer (mean, then
 * the sum of squared deviations), recomputed block by block. Legend as in wavlm.h. */
#include <math.h>
#include <string.h>

#include "core/gemm.h"
#include "core/omp.h"
#include "nn/nn_gemm.h"
#include "wavlm/wavlm_internal.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

/* Epsilon of the feature encoder's norms: PyTorch's LayerNorm and GroupNorm default, which
 * Hugging Face and fairseq use there (the configuration's layer_norm_eps applies elsewhere). */
#define CONV_EPS 1e-5f

size_t sd_wavlm_conv_block_rows(const sd_wavlm_config *c, int layer) {
    size_t rows = SD_WAVLM_CONV_BLOCK;
    for (int l = c->n_conv - 1; l > layer; l--)
        rows = (rows - 1) * (size_t)c->conv_stride[l] + (size_t)c->conv_kernel[l];
    return rows;
}

/* Rows [r0, r0 + rows) of conv layer l from its input in (whose first row is input row
 * r0 * stride; [*, C_in]) into out [rows, C_out], bias added; cols is the im2col scratch. */
static void conv_rows(const sd_wavlm *m, int l, const float *in, size_t rows, float *cols, float *out) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t k = (size_t)c->conv_kernel[l], s = (size_t)c->conv_stride[l],
                 cin = l ? (size_t)c->conv_dim[l - 1] : 1, cout = (size_t)c->conv_dim[l], K = k * cin;
    for (size_t i = 0; i < rows; i++) memcpy(cols + i * K, in + i * s * cin, K * sizeof *cols);
    sd_sgemm(0, 1, rows, cout, K, 1.0f, cols, K, m->conv_w[l], K, 0.0f, out, cout);
    if (m->conv_b[l]) sd_wavlm_add_bias(out, rows, cout, m->conv_b[l]);
}

/* Norm and GELU of rows [r0, r0 + rows) of layer l's output x [rows, C_out], in place. */
static void norm_gelu(const sd_wavlm *m, const sd_wavlm_ws *ws, int l, float *x, size_t rows) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t C = (size_t)c->conv_dim[l];
    if (c->conv_norm == SD_WAVLM_CONV_NORM_LAYER) {
        for (size_t i = 0; i < rows; i++)
            sd_wavlm_layernorm_row(x + i * C, x + i * C, C, m->norm_w[l], m->norm_b[l], CONV_EPS);
    } else if (l == 0) {
        const float *w = m->norm_w[0], *b = m->norm_b[0], *mu = ws->gn_mean, *inv = ws->gn_inv;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < C; j++) x[i * C + j] = (x[i * C + j] - mu[j]) * inv[j] * w[j] + b[j];
    }
    sd_wavlm_gelu(x, x, rows * C);
}

/* Group norm statistics of layer 0 over all its rows: pass 0 sums (mean), pass 1 sums squared
 * deviations from the mean; each thread accumulates its blocks in double, then they are added in
 * thread order. */
static void group_norm_stats(const sd_wavlm *m, sd_wavlm_ws *ws, const float *wav, size_t n) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t C = (size_t)c->conv_dim[0], k = (size_t)c->conv_kernel[0], s = (size_t)c->conv_stride[0];
    const size_t R = (n - k) / s + 1, RB = ws->conv_rows, nb = (R + RB - 1) / RB;
    double *mean = ws->th[0].stat + 2 * C; /* [C] after the per-thread partial sums */
    for (int pass = 0; pass < 2; pass++) {
        for (int t = 0; t < ws->threads; t++) memset(ws->th[t].stat, 0, C * sizeof(double));
        SD_OMP(omp parallel for schedule(dynamic, 1) num_threads(ws->threads))
        for (ptrdiff_t b = 0; b < (ptrdiff_t)nb; b++) {
            sd_wavlm_thread_ws *th = &ws->th[THREAD_ID()];
            const size_t r0 = (size_t)b * RB, rows = R - r0 < RB ? R - r0 : RB;
            conv_rows(m, 0, wav + r0 * s, rows, th->cols, th->a);
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < C; j++) {
                    const double v = (double)th->a[i * C + j] - (pass ? mean[j] : 0.0);
                    th->stat[j] += pass ? v * v : v;
                }
        }
        for (size_t j = 0; j < C; j++) {
            double acc = 0;
            for (int t = 0; t < ws->threads; t++) acc += ws->th[t].stat[j];
            if (pass == 0) mean[j] = acc / (double)R;
            else {
                ws->gn_mean[j] = (float)mean[j];
                ws->gn_inv[j] = (float)(1.0 / sqrt(acc / (double)R + (double)CONV_EPS));
            }
        }
    }
}

sd_status sd_wavlm_conv_forward(const sd_wavlm *m, sd_wavlm_ws *ws, const float *wav, size_t n,
                                size_t T, sd_error *err) {
    (void)err;
    const sd_wavlm_config *c = &m->cfg;
    const int L = c->n_conv;
    const size_t Cl = (size_t)c->conv_dim[L - 1], nb = (T + SD_WAVLM_CONV_BLOCK - 1) / SD_WAVLM_CONV_BLOCK;
    const int blas = sd_nn_blas_single_begin();
    if (c->conv_norm == SD_WAVLM_CONV_NORM_GROUP) group_norm_stats(m, ws, wav, n);
    SD_OMP(omp parallel for schedule(dynamic, 1) num_threads(ws->threads))
    for (ptrdiff_t b = 0; b < (ptrdiff_t)nb; b++) {
        sd_wavlm_thread_ws *th = &ws->th[THREAD_ID()];
        /* Rows of each layer this block needs: first row a[l], count len[l], from the top down. */
        size_t a[SD_WAVLM_MAX_CONV], len[SD_WAVLM_MAX_CONV];
        a[L - 1] = (size_t)b * SD_WAVLM_CONV_BLOCK;
        len[L - 1] = T - a[L - 1] < SD_WAVLM_CONV_BLOCK ? T - a[L - 1] : SD_WAVLM_CONV_BLOCK;
        for (int l = L - 1; l > 0; l--) {
            a[l - 1] = a[l] * (size_t)c->conv_stride[l];
            len[l - 1] = (len[l] - 1) * (size_t)c->conv_stride[l] + (size_t)c->conv_kernel[l];
        }
        const float *in = wav + a[0] * (size_t)c->conv_stride[0];
        float *cur = th->a, *next = th->b;
        for (int l = 0; l < L; l++) {
            conv_rows(m, l, in, len[l], th->cols, cur);
            norm_gelu(m, ws, l, cur, len[l]);
            in = cur;
            float *t = cur;
            cur = next;
            next = t;
        }
        memcpy(ws->feat + a[L - 1] * Cl, in, len[L - 1] * Cl * sizeof(float));
    }
    sd_nn_blas_single_end(blas);
    return SD_OK;
}
