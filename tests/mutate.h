/* Byte mutations of a valid file for the hostile-input tests of the format readers (npy,
 * safetensors, GGUF, JSON, pickle, audio): every proper prefix, random byte overwrites, every
 * single-bit flip, every substitution from a set of bytes. Each mutant is handed to the test's
 * reader in a heap buffer of exactly its size (ASan then sees any read past its end); a reader
 * that opens files by path writes it with sd_test_write_tmp. The draws are deterministic (a
 * 64-bit LCG from the plan's seed), so a failing mutant can be found again. */
#ifndef SD_TEST_MUTATE_H
#define SD_TEST_MUTATE_H

#include <stddef.h>
#include <stdint.h>

/* The reader under test: reads bytes [n] (an exact-size heap copy it must not keep); returns 1
 * when it accepted them, 0 when it rejected them. It records any failed expectation itself. */
typedef int (*sd_mut_reader)(const uint8_t *bytes, size_t n, void *ctx);

/* Runs read on every proper prefix of file (0 to n-1 bytes); returns how many it accepted. */
int sd_mut_prefixes(const uint8_t *file, size_t n, sd_mut_reader read, void *ctx);

/* Random overwrites: `count` copies of file, copy i with bytes_min + i % (bytes_max - bytes_min + 1)
 * bytes overwritten at positions drawn in [0, min(span, n)) (span 0: the whole file), each byte
 * either random or, when alphabet is not NULL, half of the time one of its characters (the
 * format's syntax: digits, brackets, quotes). */
typedef struct {
    uint64_t seed;
    int count;
    int bytes_min, bytes_max;
    size_t span;
    const char *alphabet;
} sd_mut_plan;
/* Runs read on every mutant of the plan; returns how many it accepted. */
int sd_mut_overwrites(const uint8_t *file, size_t n, const sd_mut_plan *plan, sd_mut_reader read,
                      void *ctx);

/* Runs read on every copy of file with one bit flipped among its first min(span, n) bytes (span 0:
 * all): 8 min(span, n) mutants. Returns how many it accepted. */
int sd_mut_bit_flips(const uint8_t *file, size_t n, size_t span, sd_mut_reader read, void *ctx);

/* Runs read on every copy of file with one byte replaced by one of values [n_values]: n n_values
 * mutants (a value equal to the original byte included). Returns how many it accepted. */
int sd_mut_substitutions(const uint8_t *file, size_t n, const uint8_t *values, size_t n_values,
                         sd_mut_reader read, void *ctx);

/* Writes bytes [n] to name in the test's temporary folder and returns its path (valid until the
 * eighth call after); a failure to write it is recorded in the running test case. */
const char *sd_test_write_tmp(const char *name, const void *bytes, size_t n);

#endif
