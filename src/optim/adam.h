/* Adam with classic L2 weight decay (MODEL.md section 4), and the learning-rate schedule.
 *
 * This is torch.optim.Adam(weight_decay=wd) (not AdamW: the decay is added to the gradient,
 * so it goes through the moments), step by step as PyTorch 1.13 computes it in float32:
 *   g' = g + wd p                     (skipped when wd == 0)
 *   m  = b1 m + (1 - b1) g'
 *   v  = b2 v + (1 - b2) g'^2
 *   step_size = lr / (1 - b1^t);  denom = sqrt(v) / sqrt(1 - b2^t) + eps
 *   p -= step_size * m / denom
 * The scalars (1-b1, 1-b2, bias corrections, step size) are computed in double from the float
 * settings and rounded to float once; the element-wise work is float, in PyTorch's order and
 * with PyTorch's roundings: its CPU kernels (AVX2/AVX-512 builds) fuse add(alpha=) and the
 * last step of addcmul into one fused multiply-add, and so does this code (fmaf). With the
 * same float settings the results are then bit-identical to torch 1.13 on such a CPU (the
 * test replays 10 steps). A setting given to PyTorch as a Python literal (0.9) is rounded to
 * float here (0.9f); that alone moves results by ~1e-7 relative. No gradient clipping.
 *
 * Buffers are the flat llm.c ones of src/core/params.h: params, grads, m, v all of t->total
 * floats, tensor i at offset t->specs[i].offset. m and v start at 0. */
#ifndef SD_OPTIM_ADAM_H
#define SD_OPTIM_ADAM_H

#include <stddef.h>

#include "core/params.h"

typedef struct {
    float lr; /* base learning rate; the per-step rate is passed to the update functions */
    float beta1, beta2, eps, weight_decay;
} sd_adam_config;

/* lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 1e-5 (MODEL.md). */
sd_adam_config sd_adam_default_config(void);

/* One Adam step on n elements: p[n] updated, m[n] and v[n] the moments (updated), g[n] the
 * gradient (read only). lr is the learning rate of this step (c->lr is not read: pass
 * c->lr * sd_lr_factor(epoch)); the other settings come from c. step is the 1-based count
 * of updates of these parameters, this one included; step < 1 does nothing. */
void sd_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                    const sd_adam_config *c, float lr, long step);

/* sd_adam_update on every tensor i of the table with used[i] != 0 (used == NULL: all).
 * Tensors with used[i] == 0 receive no gradient (unused modules, MIA when off): their
 * parameters, m and v are left completely untouched (no decay either), like PyTorch skips
 * parameters whose .grad is None. */
void sd_adam_step_table(const sd_param_table *t, const unsigned char *used, float *params,
                        const float *grads, float *m, float *v, const sd_adam_config *c,
                        float lr, long step);

/* Learning-rate factor of epoch e (0-based): (e+1)/5 for e < 5 (warm-up), else
 * 0.9^((e+1-5) div 10) (integer division). A negative epoch gives 0. */
double sd_lr_factor(int epoch);

#endif
