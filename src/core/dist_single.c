/* core/dist.h for a build without MPI: one process, rank 0 of 1; every collective is a copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"

/* A launcher's count of processes (Open MPI, MPICH/Hydra), 1 when there is none. */
static long launched_processes(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atol(v) > 1) return atol(v);
    }
    return 1;
}

sd_status sd_dist_init(int *argc, char ***argv, sd_error *err) {
    (void)argc;
    (void)argv;
    long n = launched_processes();
    if (n > 1)
        return sd_fail(err, SD_E_UNSUPPORTED,
                       "this sdumc was built without MPI, but was started as one of %ld processes (mpirun): "
                       "each would do the whole work alone. Rebuild with `make MPI=1`, or run one process "
                       "(independent processes split the work with --shard I/N)",
                       n);
    return SD_OK;
}

void sd_dist_finalize(void) {}
void sd_dist_abort(int code) { exit(code); }
int sd_dist_rank(void) { return 0; }
int sd_dist_size(void) { return 1; }
const char *sd_dist_library(void) { return "none"; }
sd_status sd_dist_barrier(sd_error *err) {
    (void)err;
    return SD_OK;
}

sd_status sd_dist_barrier_tick(double interval_s, void (*tick)(void *user), void *user, sd_error *err) {
    (void)interval_s;
    (void)tick;
    (void)user;
    (void)err;
    return SD_OK;
}

sd_status sd_dist_bcast(void *buf, size_t bytes, int root, sd_error *err) {
    (void)buf;
    (void)bytes;
    return root == 0 ? SD_OK : sd_fail(err, SD_E_ARG, "broadcast from rank %d of 1", root);
}

sd_status sd_dist_allreduce_sum_i64(int64_t *buf, size_t n, sd_error *err) {
    (void)buf;
    (void)n;
    (void)err;
    return SD_OK;
}

sd_status sd_dist_allreduce_max_i8(int8_t *buf, size_t n, sd_error *err) {
    (void)buf;
    (void)n;
    (void)err;
    return SD_OK;
}

sd_status sd_dist_allgatherv(const void *send, void *recv, const size_t *bytes, sd_error *err) {
    (void)err;
    if (bytes[0] && send != recv) memmove(recv, send, bytes[0]);
    return SD_OK;
}

sd_status sd_dist_agree(sd_status st, sd_error *err) {
    (void)err;
    return st;
}

uint64_t sd_dist_bytes_sent(void) { return 0; }
