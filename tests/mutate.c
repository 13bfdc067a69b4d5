/* Byte mutations of a valid file for the format readers' hostile-input tests (mutate.h): prefixes,
 * random overwrites, bit flips, substitutions, and writing a mutant to a temporary file. */
#include "mutate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* bytes [n] in a heap buffer of exactly n bytes (1 when n == 0); aborts when out of memory. */
static uint8_t *exact_copy(const uint8_t *bytes, size_t n) {
    uint8_t *c = malloc(n ? n : 1);
    if (!c) {
        fprintf(stderr, "mutate: out of memory\n");
        abort();
    }
    if (n) memcpy(c, bytes, n);
    return c;
}

int sd_mut_prefixes(const uint8_t *file, size_t n, sd_mut_reader read, void *ctx) {
    int accepted = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = exact_copy(file, k);
        accepted += read(c, k, ctx) != 0;
        free(c);
    }
    return accepted;
}

/* Knuth's MMIX LCG; the high bits are the draws. */
static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s;
}

int sd_mut_overwrites(const uint8_t *file, size_t n, const sd_mut_plan *plan, sd_mut_reader read,
                      void *ctx) {
    if (!n) return 0;
    const size_t span = plan->span && plan->span < n ? plan->span : n;
    const size_t n_alpha = plan->alphabet ? strlen(plan->alphabet) : 0;
    const int spread = plan->bytes_max > plan->bytes_min ? plan->bytes_max - plan->bytes_min + 1 : 1;
    uint64_t s = plan->seed;
    int accepted = 0;
    for (int i = 0; i < plan->count; i++) {
        uint8_t *c = exact_copy(file, n);
        const int k = plan->bytes_min + i % spread;
        for (int j = 0; j < k; j++) {
            const uint64_t d = lcg(&s);
            const size_t at = (size_t)(d >> 33) % span;
            const int from_alphabet = n_alpha && !((d >> 20) & 1);
            c[at] = from_alphabet ? (uint8_t)plan->alphabet[(d >> 24) % n_alpha] : (uint8_t)(d >> 24);
        }
        accepted += read(c, n, ctx) != 0;
        free(c);
    }
    return accepted;
}

int sd_mut_bit_flips(const uint8_t *file, size_t n, size_t span, sd_mut_reader read, void *ctx) {
    const size_t end = span && span < n ? span : n;
    int accepted = 0;
    uint8_t *c = exact_copy(file, n);
    for (size_t at = 0; at < end; at++)
        for (int bit = 0; bit < 8; bit++) {
            c[at] = (uint8_t)(file[at] ^ (1u << bit));
            uint8_t *m = exact_copy(c, n);
            accepted += read(m, n, ctx) != 0;
            free(m);
            c[at] = file[at];
        }
    free(c);
    return accepted;
}

int sd_mut_substitutions(const uint8_t *file, size_t n, const uint8_t *values, size_t n_values,
                         sd_mut_reader read, void *ctx) {
    int accepted = 0;
    for (size_t at = 0; at < n; at++)
        for (size_t v = 0; v < n_values; v++) {
            uint8_t *c = exact_copy(file, n);
            c[at] = values[v];
            accepted += read(c, n, ctx) != 0;
            free(c);
        }
    return accepted;
}

const char *sd_test_write_tmp(const char *name, const void *bytes, size_t n) {
    static char paths[8][1024];
    static int next;
    char *path = paths[next];
    next = (next + 1) % 8;
    snprintf(path, sizeof paths[0], "%s/%s", sd_test_tmpdir(), name);
    if (sd_test_write_file(path, bytes, n)) sd_test_fail(__FILE__, __LINE__, "cannot write %s", path);
    return path;
}
