/* The CSV reader and writer (src/io/csv.h): RFC 4180 quoting, line numbers across quoted line
 * breaks, blank lines, byte-order marks, every error with its line, and a write-then-read round
 * trip of awkward fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/csv.h"

/* Reads text (a copy, as the reader works in place) and returns its records as one string:
 * fields joined by '|', records by ';', an error as "!line". */
static char *records(const char *text, size_t len) {
    static char out[4096];
    char *buf = malloc(len + 1);
    memcpy(buf, text, len);
    sd_csv_reader r;
    sd_csv_init(&r, buf, len, "t.csv");
    out[0] = '\0';
    sd_error err;
    int k;
    while ((k = sd_csv_next(&r, &err)) != 0) {
        size_t o = strlen(out);
        if (k < 0) {
            const char *c = strchr(err.msg, ':');
            snprintf(out + o, sizeof out - o, "!%d;", c ? atoi(c + 1) : 0);
            continue;
        }
        for (int i = 0; i < r.n; i++) {
            o = strlen(out);
            snprintf(out + o, sizeof out - o, "%s%s", i ? "|" : "", r.field[i]);
        }
        o = strlen(out);
        snprintf(out + o, sizeof out - o, "@%d;", r.line);
    }
    sd_csv_close(&r);
    free(buf);
    return out;
}

#define SAME(text, want)                                                                    \
    do {                                                                                    \
        const char *got_ = records(text, sizeof(text) - 1);                                 \
        EXPECT(!strcmp(got_, want), "%s: got '%s', want '%s'", #text, got_, want);          \
    } while (0)

static void test_reading(void) {
    SAME("a,b,c\n1,2,3\n", "a|b|c@1;1|2|3@2;");
    SAME("a,b\r\n1,2", "a|b@1;1|2@2;");                    /* CRLF, no final line break */
    SAME("\xef\xbb\xbfname\n\n  \n x , y \n", "name@1;x|y@4;"); /* BOM, blank lines, trimming */
    SAME("\"a,b \"\"q\"\"\",2\n", "a,b \"q\"|2@1;");       /* the name */
    SAME("\"two\nlines\",x\nnext,y\n", "two\nlines|x@1;next|y@3;");
    SAME(" \"q\" ,\"\"\n", "q|@1;");                        /* spaces around quotes, empty quoted */
    SAME("a,,\n", "a||@1;");
    SAME("\"\"\n", "@1;");                                  /* one empty quoted field is a record */
    SAME("5\" tall,x\n", "5\" tall|x@1;");                  /* a quote inside an unquoted field */
    SAME("a\rb,c\n", "a\rb|c@1;");                          /* a lone CR is data */
}

static void test_errors(void) {
    SAME("h\nok,1\nbad\0x,2\nafter,3\n", "h@1;ok|1@2;!3;after|3@4;");
    SAME("h\n\"open,1\nmore\n", "h@1;!2;");
    SAME("h\n\"a\"b,1\nnext\n", "h@1;!2;next@3;");
    SAME("\xff\xfen\0a\0", "!0;");
    char msg[SD_ERROR_MSG_MAX];
    {
        char buf[] = "n\0a\0m\0e\0";
        sd_csv_reader r;
        sd_csv_init(&r, buf, sizeof buf - 1, "labels.csv");
        sd_error err;
        EXPECT(sd_csv_next(&r, &err) == -1, "NUL accepted");
        snprintf(msg, sizeof msg, "%s", err.msg);
        sd_csv_close(&r);
    }
    EXPECT(strstr(msg, "labels.csv:1: NUL byte at column 2") && strstr(msg, "UTF-16"), "message: %s", msg);
}

static void test_round_trip(void) {
    const char *fields[] = {"plain", "a,b \"q\"", " lead", "trail\t", "", "two\nlines", "cr\r", "\"", "x"};
    const int n = (int)(sizeof fields / sizeof fields[0]);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    for (int rec = 0; rec < 2; rec++) {
        for (int i = 0; i < n; i++) {
            if (i) fputc(',', f);
            EXPECT(sd_csv_write_field(f, fields[i]) == 0, "write");
        }
        fputc('\n', f);
    }
    /* One empty field alone must not become a blank line. */
    sd_csv_write_field(f, "");
    fputc('\n', f);
    fclose(f);
    EXPECT(strstr(text, "plain,\"a,b \"\"q\"\"\",\" lead\"") == text, "quoting: %s", text);
    sd_csv_reader r;
    sd_csv_init(&r, text, len, "mem");
    sd_error err;
    for (int rec = 0; rec < 2; rec++) {
        EXPECT(sd_csv_next(&r, &err) == 1, "record %d: %s", rec, err.msg);
        EXPECT(r.n == n, "record %d has %d fields", rec, r.n);
        for (int i = 0; i < n && i < r.n; i++)
            EXPECT(!strcmp(r.field[i], fields[i]), "field %d: '%s' != '%s'", i, r.field[i], fields[i]);
    }
    EXPECT(r.line == 3, "second record starts on line %d", r.line);
    EXPECT(sd_csv_next(&r, &err) == 1 && r.n == 1 && !*r.field[0], "the lone empty field was lost");
    EXPECT(sd_csv_next(&r, &err) == 0, "trailing record");
    sd_csv_close(&r);
    free(text);
}

static void test_open_file(void) {
    char path[700];
    snprintf(path, sizeof path, "%s/x.csv", sd_test_tmpdir());
    sd_test_write_file(path, "name,label\nu,1\n", 15);
    sd_csv_reader r;
    sd_error err;
    EXPECT(sd_csv_open(&r, path, 1 << 20, &err) == SD_OK, "open: %s", err.msg);
    EXPECT(sd_csv_next(&r, &err) == 1 && sd_csv_column(&r, "LABEL") == 1 && sd_csv_column(&r, "x") == -1,
           "header");
    sd_csv_close(&r);
    EXPECT(sd_csv_open(&r, path, 10, &err) == SD_E_FORMAT && strstr(err.msg, "larger than"), "size limit");
    EXPECT(sd_csv_open(&r, sd_test_tmpdir(), 10, &err) == SD_E_IO && strstr(err.msg, "is a folder"),
           "a folder: %s", err.msg);
}

/* sd_csv_columns: every column found (any case), the fields a record needs, a missing one. */
static void test_columns(void) {
    char text[] = "Split,x,name,LABEL\n";
    sd_csv_reader r;
    sd_error err;
    sd_csv_init(&r, text, strlen(text), "h.csv");
    EXPECT(sd_csv_next(&r, &err) == 1, "header");
    const char *const three[3] = {"name", "label", "split"};
    int col[3] = {7, 7, 7};
    EXPECT(sd_csv_columns(&r, three, 3, col) == 4 && col[0] == 2 && col[1] == 3 && col[2] == 0, "found: %d %d %d",
           col[0], col[1], col[2]);
    const char *const one[1] = {"split"};
    EXPECT(sd_csv_columns(&r, one, 1, col) == 1 && col[0] == 0, "first column: needs 1");
    const char *const two[2] = {"x", "prediction"};
    EXPECT(sd_csv_columns(&r, two, 2, col) == 0 && col[0] == 1 && col[1] == -1, "missing: 0, col -1");
    sd_csv_close(&r);
}

int main(void) {
    sd_test_run("csv.reading", test_reading);
    sd_test_run("csv.columns", test_columns);
    sd_test_run("csv.errors_with_lines", test_errors);
    sd_test_run("csv.write_read_round_trip", test_round_trip);
    sd_test_run("csv.open_file", test_open_file);
    return sd_test_finish();
}
