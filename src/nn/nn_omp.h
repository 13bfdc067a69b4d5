/* OpenMP loop pragmas for the layers (see core/omp.h). Usage, on the line before a for loop:
 *   SD_OMP_PARALLEL_FOR(schedule(static) if (n >= 4096)) */
#ifndef SD_NN_OMP_H
#define SD_NN_OMP_H

#include "core/omp.h"

#define SD_OMP_PARALLEL_FOR(clauses) SD_OMP(omp parallel for clauses)

/* Elements a loop must touch before it is worth an OpenMP team: below this, forking and the
 * barrier cost more than the work (batch-1 inference is made of such loops). */
#define NN_PAR_MIN_ELEMS 32768

#endif
