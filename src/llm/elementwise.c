/* The decoder's elementwise steps (RMSnorm, RoPE, the SiLU gate, the attention softmax) in both
 * arithmetics: llama.cpp's operations in its order and precision by default, float32 with double
 * sums and libm for --exact. See kernels.h. */
#include <math.h>

#include "core/simd.h"
#include "llm/kernels_impl.h"

void sd_llm_rmsnorm(float *out, const float *x, const float *w, size_t D, float eps, sd_llm_arith a) {
    float scale;
    if (a == SD_LLM_ARITH_LLAMACPP) { /* ggml_compute_forward_rms_norm_f32: float squares, float mean */
        double ss = 0;
        for (size_t i = 0; i < D; i++) ss += (double)(x[i] * x[i]);
        const float mean = (float)(ss / (double)D);
        scale = 1.0f / sqrtf(mean + eps);
    } else {
        double ss = 0;
        for (size_t i = 0; i < D; i++) ss += (double)x[i] * x[i];
        scale = (float)(1.0 / sqrt(ss / (double)D + (double)eps));
    }
    for (size_t i = 0; i < D; i++) out[i] = x[i] * scale * w[i];
}

/* Pair i of every head rotated by (cs, sn); fused: as GCC contracts llama.cpp's rotation under
 * -march=native (fmaf is exactly rounded in every clone, so the clones agree bit for bit). */
static SD_VECTOR_CLONES void rotate(float *v, int n_heads, int d, int i, float cs, float sn, int fused) {
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * (size_t)d + 2 * (size_t)i;
        const float x0 = p[0], x1 = p[1];
        if (fused) {
            p[0] = fmaf(x0, cs, -(x1 * sn));
            p[1] = fmaf(x0, sn, x1 * cs);
        } else {
            p[0] = x0 * cs - x1 * sn;
            p[1] = x0 * sn + x1 * cs;
        }
    }
}

void sd_llm_rope(float *v, int n_heads, int d, size_t pos, float base, sd_llm_arith a) {
    /* llama.cpp (ggml_rope_cache_init): theta_i = pos theta_scale^i by repeated float products,
     * theta_scale = powf(base, -2/d), cosf and sinf; exact: pos base^(-2i/d) in double */
    const float theta_scale = powf(base, -2.0f / (float)d);
    float theta = (float)pos;
    for (int i = 0; i < d / 2; i++) {
        float cs, sn;
        if (a == SD_LLM_ARITH_LLAMACPP) {
            cs = cosf(theta);
            sn = sinf(theta);
            theta *= theta_scale;
        } else {
            const double th = (double)pos * pow((double)base, -2.0 * i / d);
            cs = (float)cos(th);
            sn = (float)sin(th);
        }
        rotate(v, n_heads, d, i, cs, sn, a == SD_LLM_ARITH_LLAMACPP);
    }
}

void sd_llm_silu_mul(float *g, const float *u, size_t n, sd_llm_arith a) {
    if (a == SD_LLM_ARITH_LLAMACPP) {
        sd_llm_kernels()->silu_mul(g, u, n);
        return;
    }
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* Kept apart from nn/softmax.c (float sums): llama.cpp's exp_sum bit for bit, --exact's sums in double. */
void sd_llm_softmax(float *sc, size_t n, float scale, int r16, sd_llm_arith a) {
    float mx = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        sc[j] *= scale;
        if (sc[j] > mx) mx = sc[j];
    }
    double sum = 0;
    if (a == SD_LLM_ARITH_LLAMACPP) {
        sum = sd_llm_kernels()->exp_sum(sc, n, mx);
    } else {
        for (size_t j = 0; j < n; j++) {
            sc[j] = expf(sc[j] - mx);
            sum += sc[j];
        }
    }
    const float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < n; j++) sc[j] *= inv;
    if (r16) sd_llm_kernels()->round16(sc, sc, n); /* in place: each chunk is read before it is written */
}
