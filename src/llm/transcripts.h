/* Transcript tables: (name, text) rows read from and written to RFC 4180 CSV files with a header
 * row. simulate-text writes its transcripts.csv with them (and reads it back to resume);
 * text-features reads the ground-truth transcripts with them.
 *
 * Reading: fields may be quoted ("" inside for a quote; commas and line breaks allowed inside);
 * CRLF or LF line ends; a UTF-8 byte-order mark before the header is skipped; the name and text
 * columns are found by header name; other columns are ignored. Writing quotes every field. */
#ifndef SD_LLM_TRANSCRIPTS_H
#define SD_LLM_TRANSCRIPTS_H

#include <stddef.h>

#include "core/status.h"

typedef struct {
    char **name, **text; /* [n] malloc'd strings */
    size_t *line;        /* [n] line of the row in the file read (1 = header), 0 for added rows */
    size_t n, cap;
} sd_transcripts;

/* Reads path into t (zeroed first). name_col / text_col: header names of the two columns.
 * missing_ok: a missing file gives an empty table instead of SD_E_IO. Errors name the file and
 * the line: an unterminated quote, a missing column, a row without the text column, a row with an
 * empty name, a name given twice. */
sd_status sd_transcripts_read(const char *path, const char *name_col, const char *text_col,
                              int missing_ok, sd_transcripts *t, sd_error *err);
/* Row index of name, or -1. */
long sd_transcripts_find(const sd_transcripts *t, const char *name);
/* Sets the text of name (adds a row when it is new). */
sd_status sd_transcripts_set(sd_transcripts *t, const char *name, const char *text, sd_error *err);
/* Writes "name,text" and the rows, atomically (temporary + rename). */
sd_status sd_transcripts_write(const char *path, const sd_transcripts *t, sd_error *err);
void sd_transcripts_free(sd_transcripts *t);

#endif
