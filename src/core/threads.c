/* The one thread setting for OpenMP and OpenBLAS, and whether OpenMP is built in. */
#include "threads.h"

#include <cblas.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Declared by OpenBLAS's cblas.h; repeated so the intent is plain. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

int sd_threads_set(int n) {
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
    return n;
}

int sd_threads_get(void) { return openblas_get_num_threads(); }

int sd_threads_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
