/* OpenMP pragmas that vanish in a build without OpenMP (make OPENMP=0), where a bare
 * `#pragma omp` would trip -Wunknown-pragmas. Usage: SD_OMP(omp parallel for schedule(static)) on
 * the line before the loop or block. */
#ifndef SD_CORE_OMP_H
#define SD_CORE_OMP_H

#ifdef _OPENMP
#define SD_OMP(text) _Pragma(#text)
#else
#define SD_OMP(text)
#endif

#endif
