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

/* The step's constants, as PyTorch computes them in Python (double) and passes them as float. */
typedef struct {
    float b1, b2, one_minus_b1, one_minus_b2, wd, eps, step_size, bias2_sqrt;
} adam_consts;

static adam_consts consts_of(const sd_adam_config *c, float lr, long step) {
    const double bias1 = 1.0 - pow((double)c->beta1, (double)step);
    const double bias2 = 1.0 - pow((double)c->beta2, (double)step);
    adam_consts k = {c->beta1, c->beta2, (float)(1.0 - (double)c->beta1), (float)(1.0 - (double)c->beta2),
                     c->weight_decay, c->eps, (float)((double)lr / bias1), (float)sqrt(bias2)};
    return k;
}

/* Chunk k of a tensor of n elements. */
static void adam_chunk(float *p, const float *g, float *m, float *v, size_t n, ptrdiff_t k, const adam_consts *c) {
    const size_t i0 = (size_t)k * ADAM_CHUNK, len = n - i0 < ADAM_CHUNK ? n - i0 : ADAM_CHUNK;
    adam_span(p + i0, g + i0, m + i0, v + i0, len, c->b1, c->b2, c->one_minus_b1, c->one_minus_b2, c->wd, c->eps,
              c->step_size, c->bias2_sqrt);
}

static ptrdiff_t chunks_of(size_t n) { return (ptrdiff_t)((n + ADAM_CHUNK - 1) / ADAM_CHUNK); }

void sd_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                    const sd_adam_config *c, float lr, long step) {
    if (step < 1) return;
    const adam_consts k = consts_of(c, lr, step);
    const ptrdiff_t chunks = chunks_of(n);
    SD_OMP(omp parallel for schedule(static) if (n >= ((size_t)1 << 16)))
    for (ptrdiff_t j = 0; j < chunks; j++) adam_chunk(p, g, m, v, n, j, &k);
}

void sd_adam_step_table(const sd_param_table *t, const unsigned char *used, float *params,
                        const float *grads, float *m, float *v, const sd_adam_config *c,
                        float lr, long step) {
    if (step < 1) return;
    const adam_consts k = consts_of(c, lr, step);
    /* One OpenMP team for the whole table, not one per tensor (about a hundred a step, each a
     * wake-up of the sleeping threads): every thread walks the tensors and takes its share of each
     * one's chunks, with no barrier between tensors (the update is elementwise, so the numbers are
     * those of sd_adam_update on each tensor, whatever the thread count). */
    SD_OMP(omp parallel if (t->total >= ((size_t)1 << 16)))
    for (int i = 0; i < t->count; i++) {
        if (used && !used[i]) continue;
        const size_t o = t->specs[i].offset, n = t->specs[i].numel;
        const ptrdiff_t chunks = chunks_of(n);
        SD_OMP(omp for schedule(static) nowait)
        for (ptrdiff_t j = 0; j < chunks; j++) adam_chunk(params + o, grads + o, m + o, v + o, n, j, &k);
    }
}

double sd_lr_factor(int epoch) {
    if (epoch < 0) return 0.0;
    if (epoch < 5) return (double)(epoch + 1) / 5.0;
    /* Same expression as the Python lambda: 0.9 ** ((epoch + 1 - 5) // 10). */
    return pow(0.9, (double)((epoch + 1 - 5) / 10));
}
