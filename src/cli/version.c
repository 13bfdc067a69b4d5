/* sdumc version: the version and the build configuration (OpenMP, OpenBLAS, threads, MPI). */
#include <cblas.h>
#include <stdio.h>

#include "cli.h"
#include "core/dist.h"
#include "core/threads.h"

char *openblas_get_config(void);

int cli_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("sdumc %s\n", SDUMC_VERSION);
    printf("openmp: %s\n", sd_threads_have_openmp() ? "yes" : "no");
    printf("blas: %s\n", openblas_get_config());
    printf("threads: %d\n", sd_threads_get());
    printf("mpi: %s\n", sd_dist_library());
    return 0;
}
