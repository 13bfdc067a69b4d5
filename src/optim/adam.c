/* Adam (classic L2 weight decay, as torch.optim.Adam) and the epoch schedule. See adam.h.
 * Legend: n elements of one tensor, t the 1-based step. */
#include "optim/adam.h"

#include <math.h>
#include <stddef.h>

#include "core/omp.h"
#include "core/simd.h"

sd_adam_config sd_adam_default_config(void) {
    sd_adam_config c;
    c.lr = 1e-4f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = 1e-5f;
    return c;
}

/* The update of elements [0, n) (the formulas of sd_adam_update); vectorised per CPU. */
static SD_VECTOR_CLONES void adam_span(float *p, const float *g, float *m, float *v, size_t n,
                                       float b1, float b2, float one_minus_b1, float one_minus_b2,
                                       float wd, float eps, float step_size, float bias2_sqrt) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (wd != 0.0f) gi = fmaf(wd, p[i], gi);                  /* grad.add(param, alpha=wd) */
        m[i] = fmaf(one_minus_b1, gi, m[i] * b1);                 /* m.mul_(b1).add_(g', alpha) */
        v[i] = fmaf(one_minus_b2 * gi, gi, v[i] * b2);            /* v.mul_(b2).addcmul_(g', g') */
        const float denom = sqrtf(v[i]) / bias2_sqrt + eps;       /* v.sqrt() / bc2_sqrt + eps */
        p[i] = p[i] + (-step_size * m[i]) / denom;                /* p.addcdiv_(m, denom, -step) */
    }
}

/* Elements per OpenMP work item. */
#define ADAM_CHUNK 16384

void sd_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                    const sd_adam_config *c, float lr, long step) {
    if (step < 1) return;
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps, wd = c->weight_decay;
    /* PyTorch computes these in Python (double) and the kernels take them as float. */
    const float one_minus_b1 = (float)(1.0 - (double)b1);
    const float one_minus_b2 = (float)(1.0 - (double)b2);
    const double bias1 = 1.0 - pow((double)b1, (double)step);
    const double bias2 = 1.0 - pow((double)b2, (double)step);
    const float step_size = (float)((double)lr / bias1);
    const float bias2_sqrt = (float)sqrt(bias2);
    const ptrdiff_t chunks = (ptrdiff_t)((n + ADAM_CHUNK - 1) / ADAM_CHUNK);
    SD_OMP(omp parallel for schedule(static) if (n >= ((size_t)1 << 16)))
    for (ptrdiff_t k = 0; k < chunks; k++) {
        const size_t i0 = (size_t)k * ADAM_CHUNK, len = n - i0 < ADAM_CHUNK ? n - i0 : ADAM_CHUNK;
        adam_span(p + i0, g + i0, m + i0, v + i0, len, b1, b2, one_minus_b1, one_minus_b2, wd, eps,
                  step_size, bias2_sqrt);
    }
}

void sd_adam_step_table(const sd_param_table *t, const unsigned char *used, float *params,
                        const float *grads, float *m, float *v, const sd_adam_config *c,
                        float lr, long step) {
    for (int i = 0; i < t->count; i++) {
        if (used && !used[i]) continue;
        const size_t o = t->specs[i].offset;
        sd_adam_update(params + o, grads + o, m + o, v + o, t->specs[i].numel, c, lr, step);
    }
}

double sd_lr_factor(int epoch) {
    if (epoch < 0) return 0.0;
    if (epoch < 5) return (double)(epoch + 1) / 5.0;
    /* Same expression as the Python lambda: 0.9 ** ((epoch + 1 - 5) // 10). */
    return pow(0.9, (double)((epoch + 1 - 5) / 10));
}
