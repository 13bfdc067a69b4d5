/* The max-shifted softmax of the attention layers (attn_pool, cross_attn), in place over n
 * values spaced `stride` apart: x_i = exp(x_i - max_j x_j) / sum_j exp(x_j - max_j x_j).
 * The LLaMA decoder's (llm/elementwise.c) and WavLM's (wavlm/wavlm_encoder.c) are kept apart, each
 * for its own arithmetic (said there). */
#include <math.h>
#include <stddef.h>

#include "core/real.h"
#include "nn/nn.h"

#ifdef SD_REAL_DOUBLE
#define real_exp exp
#else
#define real_exp expf
#endif

void SD_R(sd_softmax_forward)(real *x, size_t n, size_t stride) {
    real mx = -(real)INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i * stride] > mx) mx = x[i * stride];
    for (size_t i = 0; i < n; i++) {
        real *a = x + i * stride;
        *a = real_exp(*a - mx);
        sum += *a;
    }
    for (size_t i = 0; i < n; i++) x[i * stride] /= sum;
}
