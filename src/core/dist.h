/* The processes of a distributed run (MPI ranks) and the few collective operations sdumc needs.
 *
 * Two implementations, chosen by the build (never by #ifdef elsewhere): core/dist_mpi.c (make
 * MPI=1) and core/dist_single.c (the default: one process, rank 0 of 1, every collective a copy).
 * The MPI one joins MPI only when the process was started by a launcher (mpirun, srun: it sees
 * the launcher's environment); started plainly it is one process as well.
 *
 * Every collective must be called by all ranks in the same order. They return SD_E_IO (with MPI's
 * message) when the communication fails; errors of one rank's own work are shared with
 * sd_dist_agree, so that all ranks stop together instead of waiting for each other. */
#ifndef SD_CORE_DIST_H
#define SD_CORE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Joins the launcher's job when there is one (call once, first thing in main). A build without
 * MPI started as one of several processes (mpirun -np 2 on a plain build) is an error saying so. */
sd_status sd_dist_init(int *argc, char ***argv, sd_error *err);
/* Leaves the job (call once, last thing in main; harmless when sd_dist_init did not join one). */
void sd_dist_finalize(void);
/* Stops every rank of the job with this exit status (a rank that cannot tell the others). */
void sd_dist_abort(int code);

int sd_dist_rank(void);
int sd_dist_size(void);
/* "MPI (Open MPI v4.1.4, ...)" or "none" (the build), for `sdumc version`. */
const char *sd_dist_library(void);

sd_status sd_dist_barrier(sd_error *err);
/* A barrier during which tick(user) runs about every interval_s seconds on this rank until every
 * rank has arrived (rank 0 prints a job's progress while it waits for the others); tick may be
 * NULL. It waits by sleeping between checks, not spinning. */
sd_status sd_dist_barrier_tick(double interval_s, void (*tick)(void *user), void *user, sd_error *err);
/* bytes of buf from rank root to every rank. */
sd_status sd_dist_bcast(void *buf, size_t bytes, int root, sd_error *err);
/* Element-wise over all ranks, in place: exact integer sums, maxima of bytes. */
sd_status sd_dist_allreduce_sum_i64(int64_t *buf, size_t n, sd_error *err);
sd_status sd_dist_allreduce_max_i8(int8_t *buf, size_t n, sd_error *err);
/* Every rank's bytes, concatenated in rank order, to every rank: rank r sends bytes[r] bytes
 * (bytes[] the same array on all ranks); recv holds their sum. */
sd_status sd_dist_allgatherv(const void *send, void *recv, const size_t *bytes, sd_error *err);

/* Collective: every rank passes its own status (err holding its message when st != SD_OK). When
 * any rank failed, every rank returns the status and message of the lowest failing rank, its
 * message prefixed with "rank R: " when there are several ranks; otherwise SD_OK. */
sd_status sd_dist_agree(sd_status st, sd_error *err);

/* Payload bytes this process has passed to collectives so far (what it contributes, not what the
 * MPI library's algorithm puts on the wire). */
uint64_t sd_dist_bytes_sent(void);

#endif
