/* A minimal test harness. Each tests/test_*.c is one executable whose main() calls
 * sd_test_run() per test case and returns sd_test_finish(). Every case prints one line:
 *   PASS <name> | FAIL <name> | SKIP <name> (<reason>)
 * tests/run.sh collects those lines over all executables and prints the totals. */
#ifndef SD_TEST_HARNESS_H
#define SD_TEST_HARNESS_H

#include <math.h>
#include <stddef.h>

/* Runs one case and prints its line. With SD_TEST_FILTER set in the environment, only the cases
 * whose name contains it (or matches it as a glob, when it holds * ? or [) run; the others are
 * passed over without a line. */
void sd_test_run(const char *name, void (*fn)(void));
int sd_test_finish(void);

/* Record a failure of the running case (it continues; the case is reported FAIL). */
void sd_test_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Mark the running case skipped, with a reason. Call then return. */
void sd_test_skip(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#define EXPECT(cond, ...)                                          \
    do {                                                           \
        if (!(cond)) sd_test_fail(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

/* Relative error |a-b| / max(|a|, |b|, floor). */
double sd_rel_err(double a, double b, double floor);
/* Largest elementwise relative error between two float arrays (floor as above). */
double sd_max_rel_err_f(const float *a, const float *b, size_t n, double floor, size_t *where);
double sd_max_rel_err_d(const double *a, const double *b, size_t n, double floor, size_t *where);

/* Path of a scratch directory unique to this process (created on first use). */
const char *sd_test_tmpdir(void);
/* The whole file, malloc'ed (free it) with a NUL after the last byte, its size in *n; NULL when it
 * cannot be read. */
void *sd_test_read_file(const char *path, size_t *n);
/* Bitwise-equal floats up to NaN payloads: equal values with equal signs, or both NaN. */
int sd_test_same_float(float a, float b);
/* Writes bytes to path; returns 0 on success. */
int sd_test_write_file(const char *path, const void *data, size_t n);

#endif
