/* The scalar type of layer and loss code.
 *
 * Files under src/nn/ and src/loss/ are compiled twice by the Makefile: once as
 * float (the product) and once with -DSD_REAL_DOUBLE, where every public name
 * gets an _f64 suffix through SD_R(). The double build exists so gradient checks
 * can run in double precision on the very same source. */
#ifndef SD_CORE_REAL_H
#define SD_CORE_REAL_H

#include "gemm.h"

#ifdef SD_REAL_DOUBLE
typedef double real;
#define SD_R(name) name##_f64
#define sd_gemm_real sd_dgemm
#define SD_REAL_EPS 1e-15
#else
typedef float real;
#define SD_R(name) name
#define sd_gemm_real sd_sgemm
#define SD_REAL_EPS 1e-7f
#endif

#endif
