/* One thread setting for everything: OpenMP regions and OpenBLAS GEMMs. */
#ifndef SD_CORE_THREADS_H
#define SD_CORE_THREADS_H

/* n <= 0 selects the number of online CPUs. Returns the count in effect. */
int sd_threads_set(int n);
int sd_threads_get(void);
/* 1 when built with OpenMP. */
int sd_threads_have_openmp(void);

#endif
