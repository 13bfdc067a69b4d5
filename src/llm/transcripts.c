/* Transcript tables as CSV: the RFC 4180 reader (quoted fields spanning lines) and the atomic
 * writer; see transcripts.h. */
#include "llm/transcripts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

/* ---- the table ---------------------------------------------------------------------------- */

static int table_add(sd_transcripts *t, const char *name, const char *text, size_t line) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **a = realloc(t->name, cap * sizeof *a);
        if (!a) return -1;
        t->name = a;
        if (!(a = realloc(t->text, cap * sizeof *a))) return -1;
        t->text = a;
        size_t *l = realloc(t->line, cap * sizeof *l);
        if (!l) return -1;
        t->line = l;
        t->cap = cap;
    }
    char *n = strdup(name), *x = strdup(text);
    if (!n || !x) {
        free(n);
        free(x);
        return -1;
    }
    t->name[t->n] = n;
    t->text[t->n] = x;
    t->line[t->n++] = line;
    return 0;
}

long sd_transcripts_find(const sd_transcripts *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], name)) return (long)i;
    return -1;
}

sd_status sd_transcripts_set(sd_transcripts *t, const char *name, const char *text, sd_error *err) {
    long row = sd_transcripts_find(t, name);
    if (row < 0) return table_add(t, name, text, 0) ? sd_fail(err, SD_E_NOMEM, "out of memory") : SD_OK;
    char *x = strdup(text);
    if (!x) return sd_fail(err, SD_E_NOMEM, "out of memory");
    free(t->text[row]);
    t->text[row] = x;
    return SD_OK;
}

void sd_transcripts_free(sd_transcripts *t) {
    for (size_t i = 0; i < t->n; i++) free(t->name[i]), free(t->text[i]);
    free(t->name);
    free(t->text);
    free(t->line);
    memset(t, 0, sizeof *t);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* One field at *p, unquoted in place into itself (the result is never longer than the input).
 * Returns the field start; *p moves past the separator; *end_row is set at a line end or the end
 * of the text; *line counts line breaks passed. NULL for an unterminated quote. */
static char *next_field(char **p, int *end_row, size_t *line) {
    char *s = *p, *out = s, *start = s;
    if (*s == '"') {
        s++;
        for (;;) {
            if (!*s) return NULL;
            if (*s == '"' && s[1] == '"') {
                *out++ = '"';
                s += 2;
            } else if (*s == '"') {
                s++;
                break;
            } else {
                if (*s == '\n') (*line)++;
                *out++ = *s++;
            }
        }
        while (*s && *s != ',' && *s != '\n' && *s != '\r') *out++ = *s++; /* text after the quote */
    } else {
        while (*s && *s != ',' && *s != '\n' && *s != '\r') *out++ = *s++;
    }
    char sep = *s;
    if (sep == '\r' && s[1] == '\n') s++;
    if (*s) s++;
    if (sep != ',') {
        *end_row = 1;
        if (sep) (*line)++;
    }
    *out = 0;
    *p = s;
    return start;
}

/* Splits one row (at most maxf fields stored); returns the field count or -1 (bad quote). */
static int next_row(char **p, char **fields, int maxf, size_t *line) {
    int n = 0, end = 0;
    while (!end) {
        char *f = next_field(p, &end, line);
        if (!f) return -1;
        if (n < maxf) fields[n] = f;
        n++;
    }
    return n;
}

static char *read_all(const char *path, sd_error *err, int missing_ok, int *missing) {
    *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT && missing_ok) *missing = 1;
        else sd_fail(err, SD_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)sz + 1)) && fread(buf, 1, (size_t)sz, f) == (size_t)sz) {
        buf[sz] = 0;
        if (memchr(buf, 0, (size_t)sz)) {
            sd_fail(err, SD_E_FORMAT, "%s: not a text file (NUL byte)", path);
            free(buf);
            buf = NULL;
        }
    } else {
        sd_fail(err, buf || sz < 0 ? SD_E_IO : SD_E_NOMEM, "%s: cannot read", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

#define MAX_FIELDS 256

static int find_col(char **fields, int n, const char *name) {
    for (int i = 0; i < n && i < MAX_FIELDS; i++)
        if (!strcmp(fields[i], name)) return i;
    return -1;
}

sd_status sd_transcripts_read(const char *path, const char *name_col, const char *text_col,
                              int missing_ok, sd_transcripts *t, sd_error *err) {
    memset(t, 0, sizeof *t);
    int missing;
    char *buf = read_all(path, err, missing_ok, &missing);
    if (!buf) return missing ? SD_OK : err ? err->code : SD_E_IO;
    char *p = buf, *fields[MAX_FIELDS];
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    size_t line = 1, row_line;
    sd_status s = SD_OK;
    int n = next_row(&p, fields, MAX_FIELDS, &line);
    int ci = n > 0 ? find_col(fields, n, name_col) : -1, ct = n > 0 ? find_col(fields, n, text_col) : -1;
    if (n < 0) s = sd_fail(err, SD_E_FORMAT, "%s: line 1: unterminated quoted field", path);
    else if (ci < 0 || ct < 0)
        s = sd_fail(err, SD_E_FORMAT, "%s: the header has no '%s' column (it needs '%s' and '%s')", path,
                    ci < 0 ? name_col : text_col, name_col, text_col);
    while (!s && *p) {
        row_line = line;
        if ((n = next_row(&p, fields, MAX_FIELDS, &line)) < 0) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %zu: unterminated quoted field", path, row_line);
        } else if (n == 1 && !fields[0][0]) {
            continue; /* blank line */
        } else if (ci >= n || ct >= n) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %zu: %d fields, the '%s' column is field %d", path,
                        row_line, n, ci >= n ? name_col : text_col, (ci >= n ? ci : ct) + 1);
        } else if (!fields[ci][0]) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %zu: empty name", path, row_line);
        } else if (sd_transcripts_find(t, fields[ci]) >= 0) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %zu: name '%s' given twice (first on line %zu)", path,
                        row_line, fields[ci], t->line[sd_transcripts_find(t, fields[ci])]);
        } else if (table_add(t, fields[ci], fields[ct], row_line)) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
        }
    }
    free(buf);
    if (s) sd_transcripts_free(t);
    return s;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* s as a quoted RFC 4180 field ("" for each "). */
static void put_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

sd_status sd_transcripts_write(const char *path, const sd_transcripts *t, sd_error *err) {
    sd_atomic_file af;
    sd_status s = sd_atomic_open(&af, path, err);
    if (s) return s;
    fputs("name,text\n", af.f);
    for (size_t i = 0; i < t->n; i++) {
        put_quoted(af.f, t->name[i]);
        fputc(',', af.f);
        put_quoted(af.f, t->text[i]);
        fputc('\n', af.f);
    }
    return sd_atomic_commit(&af, err);
}
