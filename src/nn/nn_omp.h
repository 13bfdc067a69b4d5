/* OpenMP for the layers: the pragmas of core/omp.h, e.g. on the line before a for loop
 *   SD_OMP(omp parallel for schedule(static) if (n >= NN_PAR_MIN_ELEMS)) */
#ifndef SD_NN_OMP_H
#define SD_NN_OMP_H

#include "core/omp.h"

/* Elements a loop must touch before it is worth an OpenMP team: below this, forking and the
 * barrier cost more than the work (batch-1 inference is made of such loops). */
#define NN_PAR_MIN_ELEMS 32768

#endif
