/* Shared by the libFuzzer harnesses (fuzz/fuzz_*.c) and tests/test_fuzz_regressions.c.
 *
 * Each harness defines `static int fuzz_<name>(const uint8_t *data, size_t size)`, returning 0 when
 * the input was accepted and the sd_status of the rejection otherwise; it aborts (FUZZ_CHECK) when an
 * invariant breaks, and the sanitizers catch memory errors. LLVMFuzzerTestOneInput is defined only in
 * the fuzzer build; the regression test includes the harness files with SD_FUZZ_NO_MAIN. */
#ifndef SD_FUZZ_UTIL_H
#define SD_FUZZ_UTIL_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a failure is a finding, like a crash. */
#define FUZZ_CHECK(cond)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);        \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

/* Two reads of one value agree: equal, or both NaN (a NaN's payload may differ). */
static inline int fuzz_same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

/* A private scratch folder for this process (under $TMPDIR, else /dev/shm, else /tmp), made once
 * and removed at exit. Inputs that the code under test reads by path are written there. */
static char fuzz_dir_path[256];

static inline void fuzz_dir_remove(void) {
    char cmd[300];
    if (!fuzz_dir_path[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

static inline const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *base = getenv("TMPDIR");
    struct stat st;
    if (!base || !*base) base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/sdumc-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_path)) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", fuzz_dir_path, strerror(errno));
        abort();
    }
    atexit(fuzz_dir_remove);
    return fuzz_dir_path;
}

/* Writes data to <scratch>/<name> (replacing it) and returns the path (a static buffer). */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
    return path;
}

#endif
