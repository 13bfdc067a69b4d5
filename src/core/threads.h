/* One thread setting for everything: OpenMP regions and OpenBLAS GEMMs. */
#ifndef SD_CORE_THREADS_H
#define SD_CORE_THREADS_H

/* The number of online CPUs (at least 1). */
int sd_threads_online(void);
/* n <= 0 selects the number of online CPUs. Returns the count in effect. */
int sd_threads_set(int n);
int sd_threads_get(void);
/* Lowers the calling thread's OpenMP thread count to the count given to sd_threads_set, or to the
 * online CPUs when it was never called (OMP_NUM_THREADS far above the core count makes libgomp
 * fail to create its team and crash), so the library never runs more threads than that. Called
 * at the start of every forward pass; cheap. Returns the count in effect. */
int sd_threads_clamp(void);
/* 1 when built with OpenMP. */
int sd_threads_have_openmp(void);

/* OpenBLAS at one thread while at least one caller holds it (the public API's calls: their
 * threads are the library's own, core/pool.h); the last release restores the count the first
 * hold found. Thread-safe. */
void sd_threads_blas_hold(void);
void sd_threads_blas_release(void);

#endif
