/* SD_VECTOR_CLONES: compile a hot elementwise kernel several times, for the x86-64-v4 (AVX-512),
 * x86-64-v3 (AVX2 + FMA) and baseline levels, and let the loader pick the best one for the CPU
 * (GCC's target_clones, resolved once through an ifunc). The library itself stays built for the
 * baseline, so the same binary runs everywhere. (An explicit fmaf becomes one instruction in the
 * v3 and v4 clones instead of a libm call; it is exactly rounded either way.)
 *
 * The clones compute the same results bit for bit: the project compiles with -std=c11, under
 * which GCC does not contract a*b+c into an FMA (-ffp-contract=off), and without -ffast-math,
 * so a vectorised loop performs the same IEEE operations in the same order per element.
 *
 * Put it on small functions without OpenMP pragmas (an outlined parallel region is not cloned);
 * call them from the parallel loop. Other compilers and targets get a plain function. */
#ifndef SD_CORE_SIMD_H
#define SD_CORE_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(SD_NO_VECTOR_CLONES)
#define SD_VECTOR_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SD_VECTOR_CLONES
#endif

#endif
