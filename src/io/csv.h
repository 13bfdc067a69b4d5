/* CSV (RFC 4180): the one reader and writer of the project (labels.csv, predictions, the files
 * `score` reads, transcripts.csv, metrics).
 *
 * Reading. Records are separated by LF or CRLF, fields by ','. A field may be double-quoted: it
 * then holds commas, line breaks and "" for one quote, and spaces or tabs may stand around the
 * quotes. An unquoted field has its surrounding spaces and tabs trimmed. Blank lines (only spaces
 * or tabs) are skipped. A UTF-8 byte-order mark at the start is skipped. Errors name the file and
 * line ("labels.csv:7: NUL byte at column 3"): a NUL byte, a quote without its closing quote, text
 * after a closing quote, a UTF-16 file (byte-order mark), more than SD_CSV_MAX_FIELDS fields. A
 * quote inside an unquoted field is kept as it is (as Python's csv module does). After an error
 * the reader stands at the start of the next line, so a caller may report it and go on.
 *
 *     sd_csv_reader r;
 *     if (sd_csv_open(&r, path, max_bytes, err)) return err->code;
 *     int k;
 *     while ((k = sd_csv_next(&r, err)) != 0) {
 *         if (k < 0) { ...report err->msg, or stop... continue; }
 *         ...r.field[0 .. r.n-1], r.line...
 *     }
 *     sd_csv_close(&r);
 *
 * Writing. sd_csv_write_field writes one field, quoted (each " doubled) when it holds a comma, a
 * quote, CR or LF, begins or ends with a space or tab, begins with a byte-order mark, or is empty
 * (so that a record of one empty field is not a blank line); as it is otherwise. The caller writes ',' between fields and
 * '\n' after the record. */
#ifndef SD_IO_CSV_H
#define SD_IO_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

#define SD_CSV_MAX_FIELDS (1 << 20)

typedef struct {
    char **field; /* the current record's fields [n], NUL-terminated, pointing into the buffer */
    int n;        /* fields in the current record */
    int line;     /* the line (1-based) the current record starts on */
    /* private */
    const char *name; /* the file name for messages */
    char *buf, *p, *end, *line_start;
    int next_line, cap, owned, utf16;
} sd_csv_reader;

/* Reads path (a regular file, io/file.h; at most max_bytes) and stands before its first record. */
sd_status sd_csv_open(sd_csv_reader *r, const char *path, size_t max_bytes, sd_error *err);
/* Reads len bytes at buf in place: buf must hold len + 1 bytes (the last is overwritten) and live
 * until sd_csv_close. name is used in messages. */
void sd_csv_init(sd_csv_reader *r, char *buf, size_t len, const char *name);
/* The next record: 1 (r->field, r->n, r->line), 0 at the end, -1 on an error (SD_E_FORMAT, or
 * SD_E_NOMEM) with the message in err. */
int sd_csv_next(sd_csv_reader *r, sd_error *err);
/* Frees what the reader holds (the buffer too when sd_csv_open read it). Safe on a zeroed reader. */
void sd_csv_close(sd_csv_reader *r);

/* Index of the current record's first field equal to name (ASCII case ignored), or -1. */
int sd_csv_column(const sd_csv_reader *r, const char *name);
/* The header's columns: col[i] = sd_csv_column(r, names[i]) for each of the n names. Returns the
 * number of fields a record needs to hold them all (1 + the largest index), or 0 when a name is
 * missing (its col[i] is -1). */
int sd_csv_columns(const sd_csv_reader *r, const char *const *names, int n, int *col);

/* Writes s as one field (quoted when needed, see above). Returns 0, or -1 if the stream failed. */
int sd_csv_write_field(FILE *f, const char *s);

#endif
