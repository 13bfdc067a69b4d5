/* Thread counts: one setting for OpenMP and OpenBLAS (the command line), whether OpenMP is built
 * in, OpenBLAS held at one thread while the public API's calls run on the library's own threads,
 * and the clamp of a thread's OpenMP count. */
#include "threads.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Declared by OpenBLAS's cblas.h; repeated so the intent is plain. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static atomic_int threads_given; /* the count of the last sd_threads_set, 0 before */

int sd_threads_online(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (int)cpus : 1;
}

int sd_threads_set(int n) {
    if (n <= 0) n = sd_threads_online();
    atomic_store(&threads_given, n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
    return n;
}

int sd_threads_get(void) { return openblas_get_num_threads(); }

int sd_threads_clamp(void) {
#ifdef _OPENMP
    int limit = atomic_load_explicit(&threads_given, memory_order_relaxed);
    if (limit <= 0) limit = sd_threads_online();
    int now = omp_get_max_threads();
    if (now > limit) {
        omp_set_num_threads(limit);
        now = limit;
    }
    return now;
#else
    return 1;
#endif
}

int sd_threads_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static pthread_mutex_t blas_hold_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_holders, blas_held_count;

void sd_threads_blas_hold(void) {
    pthread_mutex_lock(&blas_hold_mu);
    if (blas_holders++ == 0) {
        blas_held_count = openblas_get_num_threads();
        if (blas_held_count != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_hold_mu);
}

void sd_threads_blas_release(void) {
    pthread_mutex_lock(&blas_hold_mu);
    if (--blas_holders == 0 && blas_held_count != 1) openblas_set_num_threads(blas_held_count);
    pthread_mutex_unlock(&blas_hold_mu);
}
