/* core/dist.h on MPI (make MPI=1): the ranks of MPI_COMM_WORLD, joined only when a launcher
 * started the process. Only the main thread calls MPI (MPI_THREAD_FUNNELED). */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dist.h"

static int joined, finalized, rank_, size_ = 1;
static uint64_t bytes_sent;
/* Largest element count handed to one MPI call (MPI counts are int). */
#define PIECE ((size_t)1 << 28)

/* Set by the launchers sdumc knows: Open MPI's mpirun, MPICH/Hydra and Intel MPI, PMIx and PMI-2
 * under Slurm's srun. */
static int launched(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static sd_status mpi_fail(sd_error *err, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return sd_fail(err, SD_E_IO, "MPI %s failed on rank %d: %s", what, rank_, msg);
}

sd_status sd_dist_init(int *argc, char ***argv, sd_error *err) {
    if (joined || !launched()) return SD_OK;
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return sd_fail(err, SD_E_IO, "MPI_Init_thread failed (error %d)", rc);
    joined = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    return SD_OK;
}

void sd_dist_finalize(void) {
    if (joined && !finalized) MPI_Finalize();
    finalized = 1;
}

void sd_dist_abort(int code) {
    if (joined && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int sd_dist_rank(void) { return rank_; }
int sd_dist_size(void) { return size_; }

const char *sd_dist_library(void) {
    static char name[160];
    if (!name[0]) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(v, &len);
        v[strcspn(v, ",\n")] = '\0'; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
        snprintf(name, sizeof name, "MPI (%.150s)", v);
    }
    return name;
}

sd_status sd_dist_barrier(sd_error *err) {
    if (size_ == 1) return SD_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? SD_OK : mpi_fail(err, rc, "barrier");
}

sd_status sd_dist_barrier_tick(double interval_s, void (*tick)(void *user), void *user, sd_error *err) {
    if (size_ == 1) return SD_OK;
    MPI_Request req;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req), done = 0;
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "barrier");
    const struct timespec nap = {0, 20 * 1000 * 1000}; /* 20 ms between checks */
    const int naps_per_tick = interval_s > 0.02 ? (int)(interval_s / 0.02) : 1;
    for (int k = 1; !done; k++) {
        if ((rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return mpi_fail(err, rc, "barrier");
        if (done) break;
        nanosleep(&nap, NULL);
        if (tick && k % naps_per_tick == 0) tick(user);
    }
    return SD_OK;
}

sd_status sd_dist_bcast(void *buf, size_t bytes, int root, sd_error *err) {
    if (root < 0 || root >= size_) return sd_fail(err, SD_E_ARG, "broadcast from rank %d of %d", root, size_);
    if (size_ == 1) return SD_OK;
    for (size_t off = 0; off < bytes; off += PIECE) {
        size_t n = bytes - off < PIECE ? bytes - off : PIECE;
        int rc = MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "broadcast");
    }
    if (rank_ == root) bytes_sent += bytes;
    return SD_OK;
}

static sd_status allreduce(void *buf, size_t n, size_t elem, MPI_Datatype type, MPI_Op op, sd_error *err) {
    if (size_ == 1) return SD_OK;
    for (size_t off = 0; off < n; off += PIECE) {
        size_t k = n - off < PIECE ? n - off : PIECE;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)k, type, op, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "allreduce");
    }
    bytes_sent += n * elem;
    return SD_OK;
}

sd_status sd_dist_allreduce_sum_i64(int64_t *buf, size_t n, sd_error *err) {
    return allreduce(buf, n, sizeof *buf, MPI_INT64_T, MPI_SUM, err);
}

sd_status sd_dist_allreduce_max_i8(int8_t *buf, size_t n, sd_error *err) {
    return allreduce(buf, n, sizeof *buf, MPI_INT8_T, MPI_MAX, err);
}

sd_status sd_dist_allgatherv(const void *send, void *recv, const size_t *bytes, sd_error *err) {
    size_t total = 0, off = 0;
    for (int r = 0; r < size_; r++) total += bytes[r];
    for (int r = 0; r < rank_; r++) off += bytes[r];
    if (bytes[rank_] && (char *)recv + off != send) memmove((char *)recv + off, send, bytes[rank_]);
    if (size_ == 1) return SD_OK;
    if (total <= INT_MAX) {
        int *counts = malloc(sizeof(int) * (size_t)size_ * 2);
        if (!counts) return sd_fail(err, SD_E_NOMEM, "out of memory");
        int *displs = counts + size_;
        for (int r = 0, d = 0; r < size_; d += (int)bytes[r], r++) {
            counts[r] = (int)bytes[r];
            displs[r] = d;
        }
        int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, recv, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
        free(counts);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "allgather");
        bytes_sent += bytes[rank_];
        return SD_OK;
    }
    /* More than 2 GiB in all: each rank's part broadcast in turn. */
    off = 0;
    for (int r = 0; r < size_; off += bytes[r], r++) {
        sd_status st = sd_dist_bcast((char *)recv + off, bytes[r], r, err);
        if (st) return st;
    }
    return SD_OK;
}

sd_status sd_dist_agree(sd_status st, sd_error *err) {
    if (size_ == 1) return st;
    int mine = st ? rank_ : size_, first = size_;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "allreduce");
    bytes_sent += sizeof mine;
    if (first == size_) return SD_OK;
    sd_error e;
    memset(&e, 0, sizeof e);
    if (rank_ == first) {
        e.code = st;
        if (err) snprintf(e.msg, sizeof e.msg, "rank %d: %.1000s", first, err->msg);
        else snprintf(e.msg, sizeof e.msg, "rank %d failed (%s)", first, sd_status_name(st));
    }
    sd_status bs = sd_dist_bcast(&e, sizeof e, first, err);
    if (bs) return bs;
    if (err) *err = e;
    return e.code ? e.code : SD_E_IO;
}

uint64_t sd_dist_bytes_sent(void) { return bytes_sent; }
