/* WavLM after the feature encoder: feature projection, convolutional positional embedding, the
 * Transformer layers with the gated relative position bias; plus the workspace and the forward
 * entry point. Legend as in wavlm.h. Products are single-threaded OpenBLAS calls on the OpenMP
 * threads: fixed tiles of the weight products, one head of the attention, one group of the
 * positional conv per call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gemm.h"
#include "core/omp.h"
#include "core/simd.h"
#include "nn/nn_gemm.h"
#include "wavlm/wavlm_internal.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#define MAX_THREADS() omp_get_max_threads()
#else
#define THREAD_ID() 0
#define MAX_THREADS() 1
#endif

/* Query rows per attention work item: a block's scores [QB, T] stay in cache between the three
 * passes over them (Q K^T, softmax, P V), and OpenBLAS packs K and V once per QB rows. */
#define QB 128

int sd_wavlm_bucket(int64_t r, int num_buckets, int max_distance) {
    const int half = num_buckets / 2, exact = half / 2;
    const int base = r > 0 ? half : 0;
    const int64_t a = r < 0 ? -r : r;
    if (a < exact) return base + (int)a;
    /* exact + floor((half - exact) log(a / exact) / log(max_distance / exact)), capped. */
    const double v = log((double)a / exact) / log((double)max_distance / exact) * (half - exact);
    const double capped = v < (double)(half - 1 - exact) ? v : (double)(half - 1 - exact);
    return base + exact + (int)capped;
}

/* ---- workspace ---------------------------------------------------------------------------- */

void sd_wavlm_ws_free(sd_wavlm_ws *ws) {
    if (!ws) return;
    for (int t = 0; ws->th && t < ws->threads; t++) {
        sd_free(ws->th[t].a);
        sd_free(ws->th[t].b);
        sd_free(ws->th[t].cols);
        sd_free(ws->th[t].scores);
        sd_free(ws->th[t].stat);
    }
    free(ws->th);
    sd_free(ws->gn_mean);
    sd_free(ws->gn_inv);
    sd_free(ws->feat);
    sd_free(ws->x);
    sd_free(ws->xn);
    sd_free(ws->att);
    sd_free(ws->qkv);
    sd_free(ws->ff);
    sd_free(ws->gate);
    sd_free(ws->pos_bias);
    sd_free(ws->xpad);
    free(ws);
}

size_t sd_wavlm_ws_max_samples(const sd_wavlm_ws *ws) { return ws->max_samples; }

/* sd_alloc of a * b floats (or doubles when size 8), NULL on overflow. */
static void *alloc2(size_t a, size_t b, size_t size) {
    size_t n;
    if (!sd_mul_size(a, b, &n) || !sd_mul_size(n, size, &n)) return NULL;
    return sd_alloc(n ? n : size);
}

sd_status sd_wavlm_ws_create(const sd_wavlm *m, size_t max_samples, int threads, sd_wavlm_ws **out,
                             sd_error *err) {
    *out = NULL;
    const sd_wavlm_config *c = &m->cfg;
    const size_t T = sd_wavlm_frames(c, max_samples);
    if (T == 0)
        return sd_fail(err, SD_E_ARG, "WavLM workspace: %zu samples give no frame (at least %d needed)",
                       max_samples, c->receptive);
    sd_wavlm_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return sd_fail(err, SD_E_NOMEM, "out of memory");
    ws->max_samples = max_samples;
    ws->max_frames = T;
    ws->threads = threads > 0 ? threads : MAX_THREADS();
    const size_t D = (size_t)c->hidden, F = (size_t)c->ffn, H = (size_t)c->n_heads,
                 G = (size_t)c->pos_groups, K = (size_t)c->pos_kernel, C0 = (size_t)c->conv_dim[0],
                 Cl = (size_t)c->conv_dim[c->n_conv - 1];
    size_t cmax = 0, cols = 0, cin = 1;
    ws->conv_rows = sd_wavlm_conv_block_rows(c, 0);
    for (int l = 0; l < c->n_conv; l++) {
        const size_t rows = sd_wavlm_conv_block_rows(c, l), k = (size_t)c->conv_kernel[l];
        if ((size_t)c->conv_dim[l] > cmax) cmax = (size_t)c->conv_dim[l];
        if (rows * k * cin > cols) cols = rows * k * cin;
        cin = (size_t)c->conv_dim[l];
    }
    ws->cols_len = cols;
    int ok = (ws->th = calloc((size_t)ws->threads, sizeof *ws->th)) != NULL;
    for (int t = 0; ok && t < ws->threads; t++) {
        sd_wavlm_thread_ws *th = &ws->th[t];
        th->a = alloc2(ws->conv_rows, cmax, sizeof(float));
        th->b = alloc2(ws->conv_rows, cmax, sizeof(float));
        th->cols = alloc2(cols, 1, sizeof(float));
        th->scores = alloc2(QB, T + 1, sizeof(float)); /* [QB, T] weights, then [QB] inverse sums */
        th->stat = alloc2(3, C0, sizeof(double));
        ok = th->a && th->b && th->cols && th->scores && th->stat;
    }
    ok = ok && (ws->gn_mean = alloc2(C0, 1, sizeof(float))) && (ws->gn_inv = alloc2(C0, 1, sizeof(float))) &&
         (ws->feat = alloc2(T, Cl, sizeof(float))) && (ws->x = alloc2(T, D, sizeof(float))) &&
         (ws->xn = alloc2(T, D, sizeof(float))) && (ws->att = alloc2(T, D, sizeof(float))) &&
         (ws->qkv = alloc2(T, 3 * D, sizeof(float))) && (ws->ff = alloc2(T, F, sizeof(float))) &&
         (ws->gate = alloc2(T, H, sizeof(float))) && (ws->pos_bias = alloc2(H, 2 * T, sizeof(float))) &&
         (ws->xpad = alloc2(G * (T + K), D / G, sizeof(float)));
    if (!ok) {
        sd_wavlm_ws_free(ws);
        return sd_fail(err, SD_E_NOMEM, "WavLM workspace: out of memory for %zu samples (%zu frames)",
                       max_samples, T);
    }
    *out = ws;
    return SD_OK;
}

/* ---- positional embedding -------------------------------------------------------------------- */

/* x += GELU(conv(x)): grouped Conv1d(D, D, K, padding K/2), groups G, output frame t from padded
 * input frames t .. t + K - 1 (the frame past the end dropped when K is even). Per group, the
 * padded input [T + K, D/G] makes every kernel tap j a plain product of rows j .. j + T - 1 with
 * the tap's [D/G, D/G] weights; groups run in parallel. */
static void pos_conv(const sd_wavlm *m, sd_wavlm_ws *ws, size_t T) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t D = (size_t)c->hidden, G = (size_t)c->pos_groups, Dg = D / G, K = (size_t)c->pos_kernel,
                 pad = K / 2, rows = T + K;
    float *y = ws->att; /* [T, D] */
    SD_OMP(omp parallel for schedule(static) num_threads(ws->threads))
    for (ptrdiff_t g = 0; g < (ptrdiff_t)G; g++) {
        float *xp = ws->xpad + (size_t)g * rows * Dg;
        memset(xp, 0, pad * Dg * sizeof(float));
        for (size_t t = 0; t < T; t++) memcpy(xp + (pad + t) * Dg, ws->x + t * D + (size_t)g * Dg, Dg * sizeof(float));
        memset(xp + (pad + T) * Dg, 0, (rows - pad - T) * Dg * sizeof(float));
    }
    const int blas = sd_nn_blas_single_begin();
    SD_OMP(omp parallel for schedule(static) num_threads(ws->threads))
    for (ptrdiff_t g = 0; g < (ptrdiff_t)G; g++) {
        const float *xp = ws->xpad + (size_t)g * rows * Dg, *w = m->pos_w + (size_t)g * Dg * K * Dg;
        float *yg = y + (size_t)g * Dg;
        for (size_t t = 0; t < T; t++) memcpy(yg + t * D, m->pos_b + (size_t)g * Dg, Dg * sizeof(float));
        for (size_t j = 0; j < K; j++) /* W_j [Dg out, Dg in] = w + j Dg, row stride K Dg */
            sd_sgemm(0, 1, T, Dg, Dg, 1.0f, xp + j * Dg, Dg, w + j * Dg, K * Dg, 1.0f, yg, D);
    }
    sd_nn_blas_single_end(blas);
    sd_wavlm_gelu(y, y, T * D);
    sd_wavlm_add_bias(ws->x, 1, T * D, y); /* x += y, as one row of T D */
}

/* ---- attention ----------------------------------------------------------------------------- */

/* pos_bias[h][r + T - 1] = P[bucket(r), h] for r = j - i in [-(T-1), T-1]. */
static void position_bias(const sd_wavlm *m, sd_wavlm_ws *ws, size_t T) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t H = (size_t)c->n_heads, R = 2 * T - 1;
    for (size_t k = 0; k < R; k++) {
        const int b = sd_wavlm_bucket((int64_t)k - (int64_t)(T - 1), c->num_buckets, c->max_distance);
        for (size_t h = 0; h < H; h++) ws->pos_bias[h * R + k] = m->rel_embed[(size_t)b * H + h];
    }
}

/* gate[t][h] = a (b c_h - 1) + 2, (a, b) = sigmoid of the sums of outputs 0..3 and 4..7 of
 * gru_rel_pos_linear on head h's slice of h_t (the summed rows are stored). */
static void gates(const sd_wavlm_layer *w, const sd_wavlm_config *c, const float *h, float *gate, size_t T) {
    const size_t H = (size_t)c->n_heads, D = (size_t)c->hidden, d = D / H;
    SD_OMP(omp parallel for schedule(static) if (T * D >= 65536))
    for (ptrdiff_t t = 0; t < (ptrdiff_t)T; t++)
        for (size_t hh = 0; hh < H; hh++) {
            const float *v = h + (size_t)t * D + hh * d;
            double s[2];
            for (int o = 0; o < 2; o++) {
                double acc = w->gate_b[o];
                for (size_t i = 0; i < d; i++) acc += (double)w->gate_w[(size_t)o * d + i] * v[i];
                s[o] = acc;
            }
            const double a = 1.0 / (1.0 + exp(-s[0])), b = 1.0 / (1.0 + exp(-s[1]));
            gate[(size_t)t * H + hh] = (float)(a * (b * w->gate_c[hh] - 1.0) + 2.0);
        }
}

/* Row of scores s[T] += g pb[T]; then s = exp(s - max s); returns 1 / sum. */
/* Kept apart from nn/softmax.c: fused with the bias and sd_wavlm_exp, the division left to P V's rows. */
static SD_VECTOR_CLONES float softmax_row(float *s, const float *pb, float g, size_t T) {
    float lane[8];
    for (int j = 0; j < 8; j++) lane[j] = -INFINITY;
    size_t i = 0;
    for (; i + 8 <= T; i += 8)
        for (int j = 0; j < 8; j++) {
            s[i + j] += g * pb[i + j];
            lane[j] = s[i + j] > lane[j] ? s[i + j] : lane[j];
        }
    for (; i < T; i++) {
        s[i] += g * pb[i];
        lane[0] = s[i] > lane[0] ? s[i] : lane[0];
    }
    float mx = lane[0];
    for (int j = 1; j < 8; j++) mx = lane[j] > mx ? lane[j] : mx;
    for (size_t k = 0; k < T; k++) s[k] -= mx;
    sd_wavlm_exp(s, s, T);
    double sum[8] = {0};
    for (i = 0; i + 8 <= T; i += 8)
        for (int j = 0; j < 8; j++) sum[j] += s[i + j];
    for (; i < T; i++) sum[0] += s[i];
    return (float)(1.0 / (((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]))));
}

/* att [T, D] = per head softmax(Q K^T / sqrt d + gated bias) V, from qkv [T, 3D]; one (head, block
 * of QB query rows) per work item. */
static void attention(const sd_wavlm *m, sd_wavlm_ws *ws, const float *gate, size_t T) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t H = (size_t)c->n_heads, D = (size_t)c->hidden, d = D / H, R = 2 * T - 1, nb = (T + QB - 1) / QB;
    const float scale = 1.0f / sqrtf((float)d);
    const int blas = sd_nn_blas_single_begin();
    SD_OMP(omp parallel for schedule(dynamic, 1) num_threads(ws->threads))
    for (ptrdiff_t w = 0; w < (ptrdiff_t)(H * nb); w++) {
        const size_t h = (size_t)w / nb, i0 = (size_t)w % nb * QB, rows = T - i0 < QB ? T - i0 : QB;
        float *S = ws->th[THREAD_ID()].scores, *inv = S + QB * T; /* [rows, T], [rows] */
        const float *q = ws->qkv + i0 * 3 * D + h * d, *k = ws->qkv + D + h * d, *v = ws->qkv + 2 * D + h * d;
        sd_sgemm(0, 1, rows, T, d, scale, q, 3 * D, k, 3 * D, 0.0f, S, T);
        const float *pb = ws->pos_bias + h * R;
        for (size_t i = 0; i < rows; i++)
            inv[i] = softmax_row(S + i * T, pb + (T - 1 - (i0 + i)), gate[(i0 + i) * H + h], T);
        float *o = ws->att + i0 * D + h * d;
        sd_sgemm(0, 0, rows, d, T, 1.0f, S, T, v, 3 * D, 0.0f, o, D);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < d; j++) o[i * D + j] *= inv[i];
    }
    sd_nn_blas_single_end(blas);
}

/* ---- layers --------------------------------------------------------------------------------- */

/* Tiles of the products with the weights: every element of the output is computed by an OpenBLAS
 * call of the same shape whatever the thread count (tiles are fixed, not one per thread), so the
 * results do not depend on it. OpenBLAS packs each operand tile once per call, so the input is
 * packed N / TILE_COLS times: wide tiles keep that small (measured single-threaded on the
 * WavLM-Large shapes: 94-96 GFLOP/s with 256 x 512 tiles, 90-93 with 256 x 128, 96-100 untiled). */
#define TILE_ROWS 256
#define TILE_COLS 512

/* y [T, N] = x [T, Kd] W^T (W [N, Kd]) + beta y. */
static void gemm_tiles(float *y, const float *x, const float *W, size_t T, size_t N, size_t Kd, float beta,
                       int threads) {
    const size_t tr = (T + TILE_ROWS - 1) / TILE_ROWS, tc = (N + TILE_COLS - 1) / TILE_COLS;
    const int blas = sd_nn_blas_single_begin();
    SD_OMP(omp parallel for schedule(dynamic, 1) num_threads(threads))
    for (ptrdiff_t t = 0; t < (ptrdiff_t)(tr * tc); t++) {
        const size_t r0 = (size_t)t / tc * TILE_ROWS, c0 = (size_t)t % tc * TILE_COLS;
        const size_t rows = T - r0 < TILE_ROWS ? T - r0 : TILE_ROWS, cols = N - c0 < TILE_COLS ? N - c0 : TILE_COLS;
        sd_sgemm(0, 1, rows, cols, Kd, 1.0f, x + r0 * Kd, Kd, W + c0 * Kd, Kd, beta, y + r0 * N + c0, N);
    }
    sd_nn_blas_single_end(blas);
}

/* y [T, N] = x [T, Kd] W^T (W [N, Kd]) + b. */
static void linear(const sd_wavlm_ws *ws, float *y, const float *x, const float *W, const float *b, size_t T,
                   size_t N, size_t Kd) {
    gemm_tiles(y, x, W, T, N, Kd, 0.0f, ws->threads);
    sd_wavlm_add_bias(y, T, N, b);
}

/* x += y W^T + b, (W [N, Kd]). */
static void linear_add(const sd_wavlm_ws *ws, float *x, const float *y, const float *W, const float *b, size_t T,
                       size_t N, size_t Kd) {
    sd_wavlm_add_bias(x, T, N, b);
    gemm_tiles(x, y, W, T, N, Kd, 1.0f, ws->threads);
}

static void layer_forward(const sd_wavlm *m, sd_wavlm_ws *ws, int l, size_t T) {
    const sd_wavlm_config *c = &m->cfg;
    const sd_wavlm_layer *w = &m->layers[l];
    const size_t D = (size_t)c->hidden, F = (size_t)c->ffn;
    const float eps = c->eps;
    float *x = ws->x, *xn = ws->xn;
    const float *h = x;
    if (c->stable_layer_norm) {
        sd_wavlm_layernorm(xn, x, T, D, w->ln1_w, w->ln1_b, eps);
        h = xn;
    }
    linear(ws, ws->qkv, h, w->qkv_w, w->qkv_b, T, 3 * D, D);
    gates(w, c, h, ws->gate, T);
    attention(m, ws, ws->gate, T);
    linear_add(ws, x, ws->att, w->o_w, w->o_b, T, D, D);
    if (c->stable_layer_norm) {
        sd_wavlm_layernorm(xn, x, T, D, w->ln2_w, w->ln2_b, eps);
        linear(ws, ws->ff, xn, w->ff1_w, w->ff1_b, T, F, D);
        sd_wavlm_gelu(ws->ff, ws->ff, T * F);
        linear_add(ws, x, ws->ff, w->ff2_w, w->ff2_b, T, D, F);
    } else {
        sd_wavlm_layernorm(x, x, T, D, w->ln1_w, w->ln1_b, eps);
        linear(ws, ws->ff, x, w->ff1_w, w->ff1_b, T, F, D);
        sd_wavlm_gelu(ws->ff, ws->ff, T * F);
        linear_add(ws, x, ws->ff, w->ff2_w, w->ff2_b, T, D, F);
        sd_wavlm_layernorm(x, x, T, D, w->ln2_w, w->ln2_b, eps);
    }
}

void sd_wavlm_encoder_forward(const sd_wavlm *m, sd_wavlm_ws *ws, size_t T, const int *layers,
                              int n_out, float *const *out) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t D = (size_t)c->hidden, Cl = (size_t)c->conv_dim[c->n_conv - 1];
    int top = 0;
    for (int k = 0; k < n_out; k++)
        if (layers[k] > top) top = layers[k];
    sd_wavlm_layernorm(ws->feat, ws->feat, T, Cl, m->fp_ln_w, m->fp_ln_b, c->eps);
    linear(ws, ws->x, ws->feat, m->proj_w, m->proj_b, T, D, Cl);
    pos_conv(m, ws, T);
    if (!c->stable_layer_norm) sd_wavlm_layernorm(ws->x, ws->x, T, D, m->enc_ln_w, m->enc_ln_b, c->eps);
    position_bias(m, ws, T);
    for (int l = 0;; l++) {
        /* ws->x is hidden_states[l] here, but for the last one of a pre-LN model. */
        for (int k = 0; k < n_out; k++) {
            if (layers[k] != l) continue;
            if (l == c->n_layers && c->stable_layer_norm)
                sd_wavlm_layernorm(out[k], ws->x, T, D, m->enc_ln_w, m->enc_ln_b, c->eps);
            else
                memcpy(out[k], ws->x, T * D * sizeof(float));
        }
        if (l == top) break;
        layer_forward(m, ws, l, T);
    }
}

sd_status sd_wavlm_forward(const sd_wavlm *m, sd_wavlm_ws *ws, const float *wav, size_t n,
                           const int *layers, int n_out, float *const *out, sd_error *err) {
    const sd_wavlm_config *c = &m->cfg;
    const size_t T = sd_wavlm_frames(c, n);
    if (T == 0)
        return sd_fail(err, SD_E_SHAPE, "%zu samples (%.1f ms at 16 kHz) give no WavLM frame: at "
                       "least %d samples are needed", n, n / 16.0, c->receptive);
    if (n > ws->max_samples)
        return sd_fail(err, SD_E_ARG, "WavLM: %zu samples exceed the workspace's %zu", n, ws->max_samples);
    for (int k = 0; k < n_out; k++)
        if (layers[k] < 0 || layers[k] > c->n_layers)
            return sd_fail(err, SD_E_ARG, "WavLM: layer %d requested, the model has hidden states "
                           "0..%d", layers[k], c->n_layers);
    sd_status s = sd_wavlm_conv_forward(m, ws, wav, n, T, err);
    if (s) return s;
    sd_wavlm_encoder_forward(m, ws, T, layers, n_out, out);
    return SD_OK;
}
