/* The test harness: PASS/FAIL/SKIP lines per case, relative-error helpers, a temporary folder,
 * file reading and writing for the tests. */
#include "harness.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_failed_cases, n_fail_in_case, skipped_case;
static char skip_reason[256];

void sd_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "  %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    n_fail_in_case++;
}

void sd_test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason, sizeof skip_reason, fmt, ap);
    va_end(ap);
    skipped_case = 1;
}

/* SD_TEST_FILTER: a glob (fnmatch) when it holds * ? or [, else a substring of the case name. */
static int selected(const char *name) {
    const char *f = getenv("SD_TEST_FILTER");
    if (!f || !*f) return 1;
    if (strpbrk(f, "*?[")) return fnmatch(f, name, 0) == 0;
    return strstr(name, f) != NULL;
}

void sd_test_run(const char *name, void (*fn)(void)) {
    if (!selected(name)) return; /* not run, no line */
    n_fail_in_case = 0;
    skipped_case = 0;
    fn();
    if (n_fail_in_case) {
        printf("FAIL %s\n", name);
        n_failed_cases++;
    } else if (skipped_case) {
        printf("SKIP %s (%s)\n", name, skip_reason);
    } else {
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}

int sd_test_finish(void) { return n_failed_cases ? 1 : 0; }

double sd_rel_err(double a, double b, double floor) {
    double d = fabs(a - b);
    double m = fmax(fmax(fabs(a), fabs(b)), floor);
    if (isnan(a) || isnan(b)) return INFINITY;
    return d / m;
}

double sd_max_rel_err_f(const float *a, const float *b, size_t n, double floor, size_t *where) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = sd_rel_err(a[i], b[i], floor);
        if (e > worst || (e != e)) {
            worst = e;
            if (where) *where = i;
        }
    }
    return worst;
}

double sd_max_rel_err_d(const double *a, const double *b, size_t n, double floor, size_t *where) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = sd_rel_err(a[i], b[i], floor);
        if (e > worst) {
            worst = e;
            if (where) *where = i;
        }
    }
    return worst;
}

static char tmpdir[512];

static void remove_tmpdir(void) {
    if (tmpdir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *sd_test_tmpdir(void) {
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/sdumc-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

void *sd_test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)len + 1);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)len) {
        free(buf);
        return NULL;
    }
    buf[got] = '\0'; /* so text files can be searched as strings */
    *n = got;
    return buf;
}

int sd_test_same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && !signbit(a) == !signbit(b);
}

int sd_test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    int rc = fclose(f);
    return (w == n && rc == 0) ? 0 : -1;
}
