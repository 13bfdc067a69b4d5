/* Initialisation as a fresh PyTorch module (MODEL.md section 4), from one seed:
 *   Linear weight and bias ~ U(-1/sqrt(in), 1/sqrt(in));
 *   attention_context_vector ~ N(0, var = 2/(1+H))  (xavier_normal on a [1,H] tensor);
 *   prelu.weight = 0.25; layer_normali weight 1, bias 0.
 * Tensor i draws from its own sub-stream of SD_STREAM_INIT, so values do not depend on the
 * order of initialisation or on the thread count. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "model/model.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

void sd_model_init_params(sd_model *m, uint64_t seed) {
    for (int i = 0; i < m->table.count; i++) {
        const sd_tensor_spec *s = &m->table.specs[i];
        float *x = m->params + s->offset;
        sd_rng rng = sd_rng_make(seed, ((uint64_t)SD_STREAM_INIT << 32) | (uint64_t)i);
        if (ends_with(s->name, "attention_context_vector")) {
            double sd = sqrt(2.0 / (1.0 + (double)m->cfg.hidden));
            for (size_t k = 0; k < s->numel; k++) x[k] = (float)(sd * sd_rng_normal(&rng));
        } else if (!strcmp(s->name, "prelu.weight")) {
            for (size_t k = 0; k < s->numel; k++) x[k] = 0.25f;
        } else if (!strncmp(s->name, "layer_normali.", 14)) {
            float v = ends_with(s->name, ".weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < s->numel; k++) x[k] = v;
        } else {
            /* A Linear's fan-in: the weight's second dim; a bias uses its weight's (the
             * preceding tensor in the table). */
            int64_t fan_in = s->ndim == 2 ? s->shape[1] : m->table.specs[i - 1].shape[1];
            double bound = 1.0 / sqrt((double)fan_in);
            for (size_t k = 0; k < s->numel; k++)
                x[k] = (float)(bound * (2.0 * sd_rng_uniform_double(&rng) - 1.0));
        }
    }
}
