/* OpenMP loop pragmas that vanish in a build without OpenMP (make OPENMP=0), where a bare
 * `#pragma omp` would trip -Wunknown-pragmas. Private to src/nn/. Usage, on the line before
 * a for loop:  SD_OMP_PARALLEL_FOR(schedule(static) if (n >= 4096)) */
#ifndef SD_NN_OMP_H
#define SD_NN_OMP_H

#ifdef _OPENMP
#define SD_OMP_PRAGMA(text) _Pragma(#text)
#define SD_OMP_PARALLEL_FOR(clauses) SD_OMP_PRAGMA(omp parallel for clauses)
#else
#define SD_OMP_PARALLEL_FOR(clauses)
#endif

#endif
