/* Portable C kernels of the LLaMA decoder (any CPU): llama.cpp's 8-bit activation quantisation,
 * 8-bit block products, float products with F16/F32 weights, and the exact path's dequantising
 * dot products. Legend as in kernels.h. */
#include <math.h>

#include "core/bits.h"
#include "io/half.h"
#include "llm/kernels_impl.h"

/* ---- 8-bit activations ---------------------------------------------------------------------- */

/* llama.cpp's quantize_row_q8_0: d = amax / 127 (kept as float16), q = round-half-even(x * 127 /
 * amax). Non-finite inputs give clamped (garbage) codes instead of undefined conversions. */
static void quant_portable(const float *x, size_t m0, size_t m1, size_t K, sd_ggml_type t, sd_llm_work *w) {
    const size_t nb = K / SD_LLM_QK;
    const int32_t off = sd_llm_corr_offset(t);
    for (size_t m = m0; m < m1; m++)
        for (size_t b = 0; b < nb; b++) {
            const float *xb = x + m * K + b * SD_LLM_QK;
            float amax = 0;
            for (int i = 0; i < SD_LLM_QK; i++)
                if (fabsf(xb[i]) > amax) amax = fabsf(xb[i]);
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            const float d16 = sd_f16_to_f32(sd_f32_to_f16(d));
            int8_t *q = w->q + m * K + b * SD_LLM_QK;
            for (int i = 0; i < SD_LLM_QK; i++) {
                float v = xb[i] * id;
                q[i] = (int8_t)(v >= 127.0f ? 127 : v <= -127.0f ? -127 : v == v ? (int)nearbyintf(v) : 0);
            }
            float *d8 = w->d8 + (m * nb + b) * 8;
            int32_t *corr = w->corr + (m * nb + b) * 8;
            for (int l = 0; l < 8; l++) {
                d8[l] = d16;
                corr[l] = -off * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
            }
        }
}

/* Weight element i (0..31) of a block as a signed integer. */
static int weight_q(sd_ggml_type t, const unsigned char *blk, int i) {
    if (t == SD_GGML_Q8_0) return ((const int8_t *)(blk + 2))[i];
    unsigned char b = blk[2 + (i & 15)];
    return (i < 16 ? b & 0x0F : b >> 4) - 8;
}

/* llama.cpp's generic ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0: per block an exact integer sum, scaled
 * by d_w d_x and accumulated in float. */
static void qrange_portable(const sd_wmat *W, const sd_llm_work *w, int64_t n0, int64_t n1, float *y) {
    const size_t K = w->Kp, nb = K / SD_LLM_QK, N = (size_t)W->N;
    const size_t bb = W->type == SD_GGML_Q8_0 ? 2 + SD_LLM_QK : 2 + SD_LLM_QK / 2;
    for (int64_t n = n0; n < n1; n++) {
        const unsigned char *row = (const unsigned char *)W->data + (size_t)n * W->row_bytes;
        for (size_t m = 0; m < w->M; m++) {
            float sum = 0;
            for (size_t b = 0; b < nb; b++) {
                const unsigned char *blk = row + b * bb;
                const int8_t *q = w->q + m * K + b * SD_LLM_QK;
                int32_t s = 0;
                for (int i = 0; i < SD_LLM_QK; i++) s += weight_q(W->type, blk, i) * q[i];
                sum += (float)s * (sd_f16_to_f32(sd_llm_load_u16(blk)) * w->d8[(m * nb + b) * 8]);
            }
            y[m * N + (size_t)n] = sum;
        }
    }
}

/* ---- float products ------------------------------------------------------------------------ */

/* One weight row (F32 or F16) . x, four partial sums. */
static float dot_float_row(sd_ggml_type t, const void *row, const float *x, int64_t K) {
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    if (t == SD_GGML_F32) {
        const float *w = row;
        for (; k + 4 <= K; k += 4)
            for (int j = 0; j < 4; j++) s[j] += w[k + j] * x[k + j];
        for (; k < K; k++) s[0] += w[k] * x[k];
    } else {
        const unsigned char *w = row;
        for (; k + 4 <= K; k += 4)
            for (int j = 0; j < 4; j++) s[j] += sd_f16_to_f32(sd_llm_load_u16(w + 2 * (k + j))) * x[k + j];
        for (; k < K; k++) s[0] += sd_f16_to_f32(sd_llm_load_u16(w + 2 * k)) * x[k];
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void frange_portable(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1, float *y) {
    const size_t K = (size_t)W->K, N = (size_t)W->N;
    for (int64_t n = n0; n < n1; n++) {
        const void *row = (const char *)W->data + (size_t)n * W->row_bytes;
        for (size_t m = 0; m < M; m++) y[m * N + (size_t)n] = dot_float_row(W->type, row, x + m * K, W->K);
    }
}

/* ---- the exact path: quantised weights . float32 rows -------------------------------------- */

static float dot_q8_0(const unsigned char *p, const float *x, int64_t K) {
    float sum = 0;
    for (int64_t b = 0; b < K / SD_LLM_QK; b++, p += 2 + SD_LLM_QK, x += SD_LLM_QK) {
        const int8_t *q = (const int8_t *)(p + 2);
        float s[4] = {0, 0, 0, 0};
        for (int j = 0; j < SD_LLM_QK; j += 4)
            for (int i = 0; i < 4; i++) s[i] += (float)q[j + i] * x[j + i];
        sum += sd_f16_to_f32(sd_llm_load_u16(p)) * ((s[0] + s[1]) + (s[2] + s[3]));
    }
    return sum;
}

static float dot_q4_0(const unsigned char *p, const float *x, int64_t K) {
    float sum = 0;
    for (int64_t b = 0; b < K / SD_LLM_QK; b++, p += 2 + SD_LLM_QK / 2, x += SD_LLM_QK) {
        const unsigned char *q = p + 2;
        float s0 = 0, s1 = 0;
        for (int j = 0; j < SD_LLM_QK / 2; j++) {
            s0 += (float)((q[j] & 0x0F) - 8) * x[j];
            s1 += (float)((q[j] >> 4) - 8) * x[j + SD_LLM_QK / 2];
        }
        sum += sd_f16_to_f32(sd_llm_load_u16(p)) * (s0 + s1);
    }
    return sum;
}

static void xrange_portable(const sd_wmat *W, const float *x, size_t M, int64_t n0, int64_t n1, float *y,
                            float *rowbuf) {
    (void)rowbuf;
    const size_t K = (size_t)W->K, N = (size_t)W->N;
    for (int64_t n = n0; n < n1; n++) {
        const unsigned char *row = (const unsigned char *)W->data + (size_t)n * W->row_bytes;
        for (size_t m = 0; m < M; m++)
            y[m * N + (size_t)n] = W->type == SD_GGML_Q8_0 ? dot_q8_0(row, x + m * K, W->K)
                                                           : dot_q4_0(row, x + m * K, W->K);
    }
}

/* ---- attention pieces ---------------------------------------------------------------------- */

static float kv_elem(const void *v, int i, int f16) {
    return f16 ? sd_f16_to_f32(((const uint16_t *)v)[i]) : ((const float *)v)[i];
}

static void dot_rows_portable(const float *q, size_t ldq, size_t nq, const void *k, int d, int f16, float *out,
                              size_t ldo) {
    for (size_t r = 0; r < nq; r++) {
        float s[4] = {0, 0, 0, 0};
        int i = 0;
        for (; i + 4 <= d; i += 4)
            for (int j = 0; j < 4; j++) s[j] += q[r * ldq + (size_t)(i + j)] * kv_elem(k, i + j, f16);
        for (; i < d; i++) s[0] += q[r * ldq + (size_t)i] * kv_elem(k, i, f16);
        out[r * ldo] = (s[0] + s[1]) + (s[2] + s[3]);
    }
}

static void axpy_rows_portable(float *o, size_t ldo, size_t nq, const float *p, size_t ldp, const void *v,
                               int d, int f16) {
    for (size_t r = 0; r < nq; r++)
        for (int i = 0; i < d; i++) o[r * ldo + (size_t)i] += p[r * ldp] * kv_elem(v, i, f16);
}

/* ---- llama.cpp's elementwise exponentials ------------------------------------------------- */

/* e^x as llama.cpp's AVX2 (and NEON) ggml_v_expf computes one lane (ARM optimized-routines' expf:
 * x = n ln2 + b with n rounded through 1.5 2^23, a degree-5 polynomial in b, scaled by 2^n built
 * in the exponent bits; |n| > 126 rescaled in two factors, |n| > 192 to 0 or infinity). Every
 * step is one IEEE operation, so this scalar form gives the vector code's bits. */
static float v_expf(float x) {
    const float r = 0x1.8p23f, z = fmaf(x, 0x1.715476p+0f, r), n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = sd_f32_bits(z) << 23;
    const float k = sd_bits_f32(e + sd_f32_bits(1.0f)), u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = sd_bits_f32(g + 0x7f000000u), s2 = sd_bits_f32(e - g);
    return fabsf(n) > 192.0f ? s1 * s1 : fmaf(s2, j, s2) * s1;
}

/* llama.cpp's AVX2 build: chunks of 8. */
enum { CHUNK = 8 };

static void silu_mul_portable(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (const size_t whole = n - n % CHUNK; i < whole; i++) g[i] = g[i] / (1.0f + v_expf(0.0f - g[i])) * u[i];
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static double exp_sum_portable(float *x, size_t n, float mx) {
    double sum = 0;
    for (size_t c = 0; c < n; c += CHUNK) {
        float v[CHUNK] = {0};
        for (size_t i = c; i < n && i < c + CHUNK; i++) v[i - c] = x[i] = v_expf(x[i] - mx);
        /* the lanes added as _mm256 halves, then pairs */
        const float w0 = v[4] + v[0], w1 = v[5] + v[1], w2 = v[6] + v[2], w3 = v[7] + v[3];
        sum += (double)((w0 + w2) + (w1 + w3));
    }
    return sum;
}

static void round16_portable(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = sd_f16_to_f32(sd_f32_to_f16(x[i]));
}

void sd_llm_portable_kernels(sd_llm_kernel_set *k) {
    k->silu_mul = silu_mul_portable;
    k->exp_sum = exp_sum_portable;
    k->dot_rows = dot_rows_portable;
    k->axpy_rows = axpy_rows_portable;
    k->qrange = qrange_portable;
    k->frange = frange_portable;
    k->xrange = xrange_portable;
    k->quant = quant_portable;
    k->round16 = round16_portable;
}
