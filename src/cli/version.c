/* sdumc version: the version and the build configuration (OpenMP and its wait policy, OpenBLAS,
 * threads, MPI). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

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
    const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    printf("openmp wait: %s%s%s%s\n", policy ? "OMP_WAIT_POLICY=" : "", policy ? policy : "",
           spin ? (policy ? ", GOMP_SPINCOUNT=" : "GOMP_SPINCOUNT=") : "", spin ? spin : "");
    printf("mpi: %s\n", sd_dist_library());
    return 0;
}
