/* Transcript CSV tables (src/llm/transcripts.c): quoted fields with commas, quotes and line breaks,
 * CRLF, a byte-order mark, columns found by name, non-ASCII text; a write read back; and each
 * malformed file with the message it must give. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "llm/transcripts.h"

static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", sd_test_tmpdir(), name);
    EXPECT(sd_test_write_file(path, text, strlen(text)) == 0, "write %s", path);
    return path;
}

static void test_read_quoted(void) {
    const char *path = write_tmp("t1.csv",
                                 "\xEF\xBB\xBFid,label,sentence\r\n"
                                 "a,1,plain\r\n"
                                 "\"b\",2,\"with, comma and \"\"quotes\"\"\"\r\n"
                                 "\r\n"
                                 "c,3,\"two\nlines\"\n"
                                 "d,4,\"caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\"");
    sd_transcripts t;
    sd_error err = {0};
    if (sd_transcripts_read(path, "id", "sentence", 0, &t, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    EXPECT(t.n == 4, "%zu rows", t.n);
    if (t.n == 4) {
        EXPECT(!strcmp(t.name[1], "b") && !strcmp(t.text[1], "with, comma and \"quotes\""), "row b: %s", t.text[1]);
        EXPECT(!strcmp(t.text[2], "two\nlines") && t.line[2] == 5, "row c: %s line %zu", t.text[2], t.line[2]);
        EXPECT(!strcmp(t.text[3], "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC") && t.line[3] == 7, "row d line %zu", t.line[3]);
        EXPECT(sd_transcripts_find(&t, "c") == 2 && sd_transcripts_find(&t, "x") == -1, "find");
    }
    /* write (name,text) and read back */
    char out[512];
    snprintf(out, sizeof out, "%s/back.csv", sd_test_tmpdir());
    EXPECT(sd_transcripts_set(&t, "e", "new \"one\"", &err) == SD_OK &&
               sd_transcripts_set(&t, "a", "changed", &err) == SD_OK && t.n == 5,
           "set");
    EXPECT(sd_transcripts_write(out, &t, &err) == SD_OK, "%s", err.msg);
    sd_transcripts u;
    EXPECT(sd_transcripts_read(out, "name", "text", 0, &u, &err) == SD_OK, "%s", err.msg);
    int same = u.n == t.n;
    for (size_t i = 0; same && i < u.n; i++) same = !strcmp(u.name[i], t.name[i]) && !strcmp(u.text[i], t.text[i]);
    EXPECT(same, "round trip differs");
    sd_transcripts_free(&u);
    sd_transcripts_free(&t);
    EXPECT(sd_transcripts_read("/nonexistent/x.csv", "name", "text", 1, &t, &err) == SD_OK && t.n == 0,
           "missing_ok");
    EXPECT(sd_transcripts_read("/nonexistent/x.csv", "name", "text", 0, &t, &err) == SD_E_IO &&
               strstr(err.msg, "/nonexistent/x.csv"), "missing: %s", err.msg);
}

static void test_read_errors(void) {
    struct {
        const char *text, *want;
    } cases[] = {
        {"name,text\na,\"open\n", ":2: a quoted field has no closing quote"},
        {"name,words\na,b\n", "no 'text' column"},
        {"name,text\na\n", "line 2: 1 fields, the 'text' column is field 2"},
        {"name,text\n,b\n", "line 2: empty name"},
        {"name,text\na,b\nc,d\na,e\n", "line 4: name 'a' given twice (first on line 2)"},
        {"name,text\na,b\x00z\n", "NUL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/bad%zu.csv", sd_test_tmpdir(), i);
        size_t n = strlen(cases[i].text);
        if (i == 5) n = 16; /* with the NUL */
        sd_test_write_file(path, cases[i].text, n);
        sd_transcripts t;
        sd_error err = {0};
        EXPECT(sd_transcripts_read(path, "name", "text", 0, &t, &err) == SD_E_FORMAT &&
                   strstr(err.msg, cases[i].want) && strstr(err.msg, path),
               "case %zu: %s", i, err.msg);
    }
}

int main(void) {
    sd_test_run("transcripts_read_quoted", test_read_quoted);
    sd_test_run("transcripts_read_errors", test_read_errors);
    return sd_test_finish();
}
