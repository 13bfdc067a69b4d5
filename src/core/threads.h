/* One thread setting for everything: OpenMP regions and OpenBLAS GEMMs. */
#ifndef SD_CORE_THREADS_H
#define SD_CORE_THREADS_H

/* n <= 0 selects the number of online CPUs. Returns the count in effect. */
int sd_threads_set(int n);
int sd_threads_get(void);
/* 1 when built with OpenMP. */
int sd_threads_have_openmp(void);

/* OpenBLAS at one thread while at least one caller holds it (the public API's calls: their
 * threads are the library's own, core/pool.h); the last release restores the count the first
 * hold found. Thread-safe. */
void sd_threads_blas_hold(void);
void sd_threads_blas_release(void);

#endif
