/* Reports (validation problems, warnings): the growable buffer of io/json.h plus a count of
 * report lines. Appending never fails visibly: after an allocation failure the buffer stops
 * growing and b.failed is set. */
#ifndef SD_DATA_TEXT_H
#define SD_DATA_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "io/json.h"

typedef struct {
    sd_json_buf b;  /* b.data NUL-terminated once anything was appended; NULL before */
    int64_t lines;  /* calls to sd_text_line */
} sd_text;

/* Appends printf-formatted text. */
void sd_text_addf(sd_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends one report line: "  <text>\n", and counts it. */
void sd_text_line(sd_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The text so far ("" when empty). */
const char *sd_text_str(const sd_text *t);
/* Hands the buffer to the caller (to free()); t is reset. NULL when empty. */
char *sd_text_take(sd_text *t);
void sd_text_free(sd_text *t);

#endif
