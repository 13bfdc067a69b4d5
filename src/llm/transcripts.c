/* Transcript tables (name -> text) read and written as CSV through io/csv.h; see transcripts.h. */
#include "llm/transcripts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/array.h"
#include "io/atomic_file.h"
#include "io/csv.h"

/* ---- the table ---------------------------------------------------------------------------- */

static int table_add(sd_transcripts *t, const char *name, const char *text, size_t line) {
    if (t->n == t->cap) { /* three arrays of one capacity */
        const size_t cap = sd_array_next_cap(t->cap, t->n + 1, 64);
        char **a = cap ? sd_array_resize(t->name, cap, sizeof *a) : NULL;
        if (!a) return -1;
        t->name = a;
        if (!(a = sd_array_resize(t->text, cap, sizeof *a))) return -1;
        t->text = a;
        size_t *l = sd_array_resize(t->line, cap, sizeof *l);
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

sd_status sd_transcripts_read(const char *path, const char *name_col, const char *text_col,
                              int missing_ok, sd_transcripts *t, sd_error *err) {
    memset(t, 0, sizeof *t);
    struct stat st;
    if (missing_ok && lstat(path, &st) != 0 && errno == ENOENT) return SD_OK;
    sd_csv_reader r;
    sd_status s = sd_csv_open(&r, path, (size_t)1 << 30, err);
    if (s) return s;
    int k, ci = -1, ct = -1, header = 1;
    while (!s && (k = sd_csv_next(&r, err)) != 0) {
        if (k < 0) {
            s = err ? err->code : SD_E_FORMAT;
        } else if (header) {
            header = 0;
            ci = sd_csv_column(&r, name_col);
            ct = sd_csv_column(&r, text_col);
            if (ci < 0 || ct < 0)
                s = sd_fail(err, SD_E_FORMAT, "%s: the header has no '%s' column (it needs '%s' and '%s')", path,
                            ci < 0 ? name_col : text_col, name_col, text_col);
        } else if (ci >= r.n || ct >= r.n) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %d: %d fields, the '%s' column is field %d", path, r.line, r.n,
                        ci >= r.n ? name_col : text_col, (ci >= r.n ? ci : ct) + 1);
        } else if (!r.field[ci][0]) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %d: empty name", path, r.line);
        } else if (sd_transcripts_find(t, r.field[ci]) >= 0) {
            s = sd_fail(err, SD_E_FORMAT, "%s: line %d: name '%s' given twice (first on line %zu)", path, r.line,
                        r.field[ci], t->line[sd_transcripts_find(t, r.field[ci])]);
        } else if (table_add(t, r.field[ci], r.field[ct], (size_t)r.line)) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
        }
    }
    if (!s && header) s = sd_fail(err, SD_E_FORMAT, "%s: empty file (it needs a header with '%s' and '%s')", path, name_col, text_col);
    sd_csv_close(&r);
    if (s) sd_transcripts_free(t);
    return s;
}

/* ---- writing ------------------------------------------------------------------------------ */

sd_status sd_transcripts_write(const char *path, const sd_transcripts *t, sd_error *err) {
    sd_atomic_file af;
    sd_status s = sd_atomic_open(&af, path, err);
    if (s) return s;
    fputs("name,text\n", af.f);
    for (size_t i = 0; i < t->n; i++) {
        sd_csv_write_field(af.f, t->name[i]);
        fputc(',', af.f);
        sd_csv_write_field(af.f, t->text[i]);
        fputc('\n', af.f);
    }
    return sd_atomic_commit(&af, err);
}
