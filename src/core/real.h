/* The scalar type of layer and loss code.
 *
 * Files under src/nn/ and src/loss/ are compiled twice by the Makefile: once as
 * float (the product) and once with -DSD_REAL_DOUBLE, where every public name
 * gets an _f64 suffix through SD_R(). The double build exists so gradient checks
 * can run in double precision on the very same source. */
#ifndef SD_CORE_REAL_H
#define SD_CORE_REAL_H

#include <stdint.h>
#include <string.h>

#include "bits.h"
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

/* The bits of a real, for selects done with masks in loops meant to vectorise. A ?: on reals
 * becomes a branch in GCC, which often moves the operations of one side under it; it then will
 * not vectorise the loop, as a floating-point operation under a condition may trap
 * (-ftrapping-math). Compute both sides, then pick bits: (a & m) | (b & ~m). memcpy is the type
 * pun that vectorises. */
#ifdef SD_REAL_DOUBLE
typedef uint64_t real_bits;
static inline real_bits bits_of(real v) { return sd_f64_bits(v); }
static inline real real_of(real_bits b) { return sd_bits_f64(b); }
#else
typedef uint32_t real_bits;
static inline real_bits bits_of(real v) { return sd_f32_bits(v); }
static inline real real_of(real_bits b) { return sd_bits_f32(b); }
#endif

/* All ones when cond, else zero. */
static inline real_bits bits_mask(int cond) { return (real_bits)0 - (real_bits)cond; }

#endif
