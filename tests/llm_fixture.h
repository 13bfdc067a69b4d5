/* Shared by the LLM tests (test_llama, test_generate): the fixture folder and the error measure. */
#ifndef SD_TESTS_LLM_FIXTURE_H
#define SD_TESTS_LLM_FIXTURE_H

#include <math.h>
#include <stddef.h>

#define DIR "tests/fixtures/llm/"

/* Largest |a - b| / max|b| over n values: the error relative to the tensor's scale (NaN in a
 * counts as an error). */
static inline double scaled_err(const float *a, const float *b, size_t n) {
    double mx = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
        double d = fabs((double)a[i] - b[i]);
        if (d > e || d != d) e = d;
    }
    return mx > 0 ? e / mx : e;
}

#endif
