/* The gradient of one training step (MODEL.md section 4) over a batch, on one process or split over
 * the ranks of an MPI job (core/dist.h): data-parallel training.
 *
 * chunks = 1: the batch at once (sd_objective_run, dropout from the run's stream), one rank only.
 * chunks = K > 1: every batch of B items is cut into K gradient chunks (data/batch.h: chunk c holds
 * items [c*B/K, (c+1)*B/K)); rank r of N computes chunks [r*K/N, (r+1)*K/N). Each chunk runs its
 * forward and backward alone, with its own dropout stream (sd_grad_chunk_rng), so its numbers do not
 * depend on which rank runs it. The loss terms that couple samples are put together from every
 * chunk, in chunk order, on every rank alike:
 *   - the two MSEs and the three RMSEs from per-chunk sums of squares; each RMSE's sqrt is taken of
 *     the batch's total, and its gradient scaled by the batch's element count and value;
 *   - Rank-N-Contrast on all 2B rows: every rank gathers the [2B,R] features and labels, computes
 *     the loss and dF for all rows, and backpropagates the rows of its own chunks.
 * The chunks' parameter gradients are summed in fixed point (train/grad_sum.h: per-element exponent
 * agreed with an MPI max, exact int64 sums with an MPI sum), a sum that does not depend on the
 * order of the additions. So the gradient, Adam's update and the trained model are bit-identical
 * for every number of ranks N <= K, the single process with the same K included, given the same
 * threads per rank (the kernels' results depend on the thread count, on one process as well).
 *
 * Per step and rank the collectives carry: an int8 and an int64 per parameter (the sums), the
 * chunks' 7-number loss records, and with w_rnc > 0 the [2B,R] features and B labels. */
#ifndef SD_TRAIN_GRAD_STEP_H
#define SD_TRAIN_GRAD_STEP_H

#include "data/batch.h"
#include "model/norm.h"
#include "train/objective.h"
#include "train/train.h"

typedef struct sd_grad_step sd_grad_step;

/* chunks >= 1 and >= sd_dist_size() (chunks == 1: one rank). params: m->table.total. */
sd_status sd_grad_step_new(int chunks, size_t params, sd_grad_step **out, sd_error *err);
void sd_grad_step_free(sd_grad_step *g);

/* The chunks rank `rank` of `ranks` computes: [*first, *first + *count). */
void sd_grad_step_chunks_of(int chunks, int rank, int ranks, int *first, int *count);

/* Opens this rank's part of one epoch: bo describes the whole batches (its chunk fields are set
 * here). *steps: the epoch's steps (the same on every rank). */
sd_status sd_grad_step_open_epoch(sd_grad_step *g, const sd_dataset *ds, const sd_batcher_options *bo,
                                  int64_t *steps, sd_error *err);
/* Standardise every batch's real frames with n (model/norm.h) as the frame projection reads them
 * (the batch itself is not rewritten, float16 stays float16); NULL: as read. n must outlive the
 * epochs. */
void sd_grad_step_set_norm(sd_grad_step *g, const sd_norm *n);
/* Reads the next step's data: 1 a step, 0 the end of the epoch, -1 an error (err; with several
 * ranks every rank returns -1 with the failing rank's message). Collective with chunks > 1. */
int sd_grad_step_next(sd_grad_step *g, sd_error *err);
/* The step's gradient into grads (overwritten, laid out like m->params), its loss terms (means over
 * the batch) and *batch, the batch's size. rng: the run's dropout stream (chunks == 1); seed and
 * step key the chunks' streams (chunks > 1). Collective with chunks > 1. */
sd_status sd_grad_step_run(sd_grad_step *g, const sd_model *m, const sd_loss_weights *w, sd_rng *rng,
                           uint64_t seed, int64_t step, float *grads, sd_loss_terms *terms, int *batch,
                           sd_error *err);
/* After a successful sd_grad_step_run: the step's predictions of both flows, as the training pass
 * made them (training mode, the step's dropout), and the labels, for every item of the batch in
 * chunk order: full [B] the complete flow's, miss [B] the text-missing flow's (NULL: not wanted; the
 * step runs that flow only when sd_objective_runs_missing), y [B] (B: *batch of the run).
 * Collective with chunks > 1 (gathered from every rank, the same on every rank). */
sd_status sd_grad_step_predictions(sd_grad_step *g, float *full, float *miss, float *y, sd_error *err);
/* Ends the epoch's reading; the batcher stays (the next epoch reuses its buffers: data/batch.h). */
void sd_grad_step_close_epoch(sd_grad_step *g);
/* What an evaluation between epochs may borrow (sd_eval_both_flows): the batcher and the first
 * objective's flows. The next sd_grad_step_open_epoch takes the batcher back. */
sd_eval_reuse sd_grad_step_eval_reuse(sd_grad_step *g);

/* The dropout stream of chunk c at a step: stream SD_STREAM_DROPOUT + (c + 1) 2^32, from index
 * step 2^36 (room for 2^36 draws per chunk and step). */
sd_rng sd_grad_chunk_rng(uint64_t seed, int64_t step, int chunk);

#endif
