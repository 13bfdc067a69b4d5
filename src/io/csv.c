/* CSV by RFC 4180: a record reader working in place on a file in memory, and a field writer
 * (csv.h). */
#include "io/csv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/array.h"
#include "io/file.h"

void sd_csv_init(sd_csv_reader *r, char *buf, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    r->name = name ? name : "CSV";
    r->buf = r->p = buf;
    r->end = buf + len;
    r->next_line = 1;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) r->p += 3; /* UTF-8 byte-order mark */
    if (len >= 2 && (!memcmp(buf, "\xff\xfe", 2) || !memcmp(buf, "\xfe\xff", 2))) r->utf16 = 1;
}

sd_status sd_csv_open(sd_csv_reader *r, const char *path, size_t max_bytes, sd_error *err) {
    char *buf;
    size_t len;
    memset(r, 0, sizeof *r);
    sd_status s = sd_file_read_all(path, max_bytes, &buf, &len, err);
    if (s) return s;
    sd_csv_init(r, buf, len, path);
    r->owned = 1;
    return SD_OK;
}

void sd_csv_close(sd_csv_reader *r) {
    if (r->owned) free(r->buf);
    free(r->field);
    memset(r, 0, sizeof *r);
}

int sd_csv_column(const sd_csv_reader *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcasecmp(r->field[i], name)) return i;
    return -1;
}

int sd_csv_columns(const sd_csv_reader *r, const char *const *names, int n, int *col) {
    int needed = 0, missing = 0;
    for (int i = 0; i < n; i++) {
        col[i] = sd_csv_column(r, names[i]);
        if (col[i] < 0) missing = 1;
        else if (col[i] >= needed) needed = col[i] + 1;
    }
    return missing ? 0 : needed;
}

/* p ends a line: LF, CRLF, or the end of the buffer (a CR at the very end too). */
static int at_eol(const sd_csv_reader *r, const char *p) {
    return p == r->end || *p == '\n' || (*p == '\r' && (p + 1 == r->end || p[1] == '\n'));
}

/* Fails the current record at p: the message, then the reader moves past the end of p's line. */
static int fail_at(sd_csv_reader *r, char *p, sd_error *err, const char *what) {
    const char *ls = r->line_start; /* (the fields before p are NUL-terminated in place) */
    int line = r->next_line;
    sd_fail(err, SD_E_FORMAT, "%s:%d: %s at column %lld%s", r->name, line, what, (long long)(p - ls) + 1,
            line == 1 && *p == '\0' ? " (is the file UTF-16? save it as UTF-8)" : "");
    while (p < r->end && *p != '\n') p++;
    if (p < r->end) {
        p++;
        r->next_line++;
    }
    r->p = p;
    return -1;
}

static int add_field(sd_csv_reader *r, char *f, sd_error *err) {
    if (r->n == r->cap) {
        if (r->cap >= SD_CSV_MAX_FIELDS) {
            sd_fail(err, SD_E_FORMAT, "%s:%d: more than %d fields", r->name, r->line, SD_CSV_MAX_FIELDS);
            return -1;
        }
        size_t cap = (size_t)r->cap;
        char **g = sd_array_grow(r->field, &cap, (size_t)r->n + 1, sizeof *g, 16);
        if (!g) {
            sd_fail(err, SD_E_NOMEM, "%s:%d: out of memory", r->name, r->line);
            return -1;
        }
        r->field = g;
        r->cap = (int)cap; /* <= 2 SD_CSV_MAX_FIELDS */
    }
    r->field[r->n++] = f;
    return 0;
}

int sd_csv_next(sd_csv_reader *r, sd_error *err) {
    if (r->utf16) {
        r->utf16 = 0;
        r->p = r->end;
        sd_fail(err, SD_E_FORMAT, "%s: UTF-16 text (byte-order mark %02X %02X); save the file as UTF-8",
                r->name, (unsigned char)r->buf[0], (unsigned char)r->buf[1]);
        return -1;
    }
    for (;;) {
        if (r->p >= r->end) return 0;
        r->line = r->next_line;
        r->n = 0;
        char *p = r->p;
        r->line_start = p;
        int blank = 1; /* stays 1 for a line of one unquoted empty field: a blank line, skipped */
        for (;;) {
            while (p < r->end && (*p == ' ' || *p == '\t')) p++;
            char *start, *out;
            if (p < r->end && *p == '"') {
                blank = 0;
                const int opened = r->next_line;
                start = out = ++p;
                for (;;) {
                    if (p == r->end) {
                        r->p = r->end;
                        sd_fail(err, SD_E_FORMAT, "%s:%d: a quoted field has no closing quote (the file ends "
                                "on line %d)", r->name, opened, r->next_line);
                        return -1;
                    }
                    if (*p == '\0') return fail_at(r, p, err, "NUL byte");
                    if (*p == '"') {
                        if (p + 1 < r->end && p[1] == '"') {
                            *out++ = '"';
                            p += 2;
                            continue;
                        }
                        p++;
                        break;
                    }
                    if (*p == '\n') {
                        r->next_line++;
                        r->line_start = p + 1;
                    }
                    *out++ = *p++;
                }
                while (p < r->end && (*p == ' ' || *p == '\t')) p++;
                if (p < r->end && *p == '\0') return fail_at(r, p, err, "NUL byte");
                if (!at_eol(r, p) && *p != ',') return fail_at(r, p, err, "text after the closing quote of a field");
            } else {
                start = p;
                while (p < r->end && *p != ',' && !at_eol(r, p)) {
                    if (*p == '\0') return fail_at(r, p, err, "NUL byte");
                    p++;
                }
                out = p;
                while (out > start && (out[-1] == ' ' || out[-1] == '\t')) out--;
            }
            /* Past the separator: a comma, or the line end (CRLF or LF). */
            const int eol = at_eol(r, p);
            char *next = p;
            if (!eol) next++;
            else if (next < r->end && *next == '\r') next++;
            if (eol && next < r->end) { /* LF */
                next++;
                r->next_line++;
            }
            if (out > start || !eol || r->n > 0) blank = 0;
            *out = '\0'; /* out <= p: the separator was read before this */
            if (add_field(r, start, err)) {
                r->p = next;
                if (!eol) { /* the rest of the record's line */
                    while (r->p < r->end && *r->p != '\n') r->p++;
                    if (r->p < r->end) r->p++, r->next_line++;
                }
                return -1;
            }
            p = next;
            if (eol) break;
        }
        r->p = p;
        if (!blank) return 1;
    }
}

int sd_csv_write_field(FILE *f, const char *s) {
    size_t n = strlen(s);
    /* (A leading byte-order mark would be taken for the file's own at the start of a file.) */
    int quote = n == 0 || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t' ||
                strpbrk(s, ",\"\r\n") != NULL || !strncmp(s, "\xef\xbb\xbf", 3) || !strncmp(s, "\xff\xfe", 2) ||
                !strncmp(s, "\xfe\xff", 2);
    if (!quote) return fputs(s, f) < 0 ? -1 : 0;
    if (fputc('"', f) == EOF) return -1;
    for (; *s; s++) {
        if (*s == '"' && fputc('"', f) == EOF) return -1;
        if (fputc(*s, f) == EOF) return -1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}
