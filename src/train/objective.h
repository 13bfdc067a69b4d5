/* The training objective of MODEL.md section 4: both flows on one batch, the six loss terms,
 * and the gradient of their weighted sum with respect to every parameter.
 *
 *   loss = w_full MSE(y0, y) + w_miss MSE(y1, y) + w_tf RMSE(q1, sg(q0)) + w_tq RMSE(c1, sg(c0))
 *        + w_f RMSE(z1, z0) + w_rnc RnC([r0; r1], [y; y])
 * (0 = complete flow, 1 = text-missing flow, sg = stop-gradient; a term with weight 0 is
 * skipped, its value reported as 0.)
 * Legend: B batch, H hidden, C = H/2, R = H/4, K = 7. */
#ifndef SD_TRAIN_OBJECTIVE_H
#define SD_TRAIN_OBJECTIVE_H

#include "model/flow.h"

#define SD_RNC_TEMPERATURE 2.0f

typedef struct {
    float full, miss, tf, tq, f, rnc;
} sd_loss_weights;

typedef struct {
    double full, miss, tf, tq, f, rnc, total;
} sd_loss_terms;

typedef struct {
    sd_flow *flow[2]; /* complete, text-missing */
    float *buf;       /* loss-side scratch, grown on demand */
    size_t buf_len;
} sd_objective;

sd_objective *sd_objective_new(void);
void sd_objective_free(sd_objective *o);

/* Runs the complete flow on in_full and the text-missing flow on in_miss (same audio and video,
 * simulated text in the text slot), computes the terms into *terms and, when grads != NULL,
 * ADDS the gradient of the total into grads (laid out like m->params). training = 1 applies
 * dropout from rng (complete flow first, then the text-missing flow). */
sd_status sd_objective_run(sd_objective *o, const sd_model *m, const sd_flow_input *in_full,
                           const sd_flow_input *in_miss, const float *labels,
                           const sd_loss_weights *w, int training, sd_rng *rng, float *grads,
                           sd_loss_terms *terms, sd_error *err);

/* The two halves of sd_objective_run, for a caller that computes the loss terms itself (the
 * gradient chunks of train/grad_step.h). sd_objective_forward runs the complete flow and, when a
 * term reads it (sd_objective_runs_missing), the text-missing flow, sharing the audio and video
 * frames. sd_objective_backward ADDS into grads the gradient given the outputs' gradients:
 * d_pred [2B] (complete flow, then text-missing), d_z [2B,C] (the same), d_r0, d_r1 [B,R] (NULL:
 * zero), d_q1 [B,H], d_c1 [B,K,C] (the text-missing flow's distillation embeddings). */
int sd_objective_runs_missing(const sd_loss_weights *w);
sd_status sd_objective_forward(sd_objective *o, const sd_model *m, const sd_flow_input *in_full,
                               const sd_flow_input *in_miss, const sd_loss_weights *w, int training,
                               sd_rng *rng, sd_error *err);
sd_status sd_objective_backward(sd_objective *o, const sd_model *m, const sd_loss_weights *w,
                                float *grads, const float *d_pred, const float *d_z,
                                const float *d_r0, const float *d_r1, const float *d_q1,
                                const float *d_c1, sd_error *err);

#endif
