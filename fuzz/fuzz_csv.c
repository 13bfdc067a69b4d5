/* The CSV reader and writer (src/io/csv.h): every record read is written back with
 * sd_csv_write_field, and the written text must read back as the same records, without an error;
 * every field lies inside the input, every error carries a message with the file name, and line
 * numbers never go down. */
#include "fuzz_util.h"
#include "io/csv.h"

/* Reads n bytes of text and writes its records (errors skipped) to out; returns the record count,
 * *errors the errors seen. */
static int csv_rewrite(const char *text, size_t n, FILE *out, int *errors) {
    char *buf = malloc(n + 1);
    FUZZ_CHECK(buf != NULL);
    if (n) memcpy(buf, text, n);
    sd_csv_reader r;
    sd_csv_init(&r, buf, n, "fuzz.csv");
    sd_error err;
    int k, records = 0, last_line = 0;
    *errors = 0;
    while ((k = sd_csv_next(&r, &err)) != 0) {
        if (k < 0) {
            FUZZ_CHECK(!strncmp(err.msg, "fuzz.csv", 8));
            (*errors)++;
            continue;
        }
        FUZZ_CHECK(r.n >= 1 && r.line >= 1 && r.line >= last_line);
        last_line = r.line;
        for (int i = 0; i < r.n; i++) {
            FUZZ_CHECK(r.field[i] >= buf && r.field[i] + strlen(r.field[i]) <= buf + n);
            if (i) fputc(',', out);
            FUZZ_CHECK(sd_csv_write_field(out, r.field[i]) == 0);
        }
        fputc('\n', out);
        records++;
    }
    sd_csv_close(&r);
    free(buf);
    return records;
}

static int fuzz_csv(const uint8_t *data, size_t size) {
    char *first = NULL, *second = NULL;
    size_t n1 = 0, n2 = 0;
    FILE *f = open_memstream(&first, &n1);
    FUZZ_CHECK(f != NULL);
    int errors, errors2;
    int records = csv_rewrite((const char *)data, size, f, &errors);
    FUZZ_CHECK(fclose(f) == 0);
    f = open_memstream(&second, &n2);
    FUZZ_CHECK(f != NULL);
    int again = csv_rewrite(first, n1, f, &errors2);
    FUZZ_CHECK(fclose(f) == 0);
    FUZZ_CHECK(errors2 == 0 && again == records && n1 == n2 && !memcmp(first, second, n1));
    free(first);
    free(second);
    return errors ? SD_E_FORMAT : SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_csv(data, size);
    return 0;
}
#endif
