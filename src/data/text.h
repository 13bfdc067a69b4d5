/* A growable text buffer for reports (validation problems, warnings). Appending never fails
 * visibly: after an allocation failure the buffer stops growing and .oom is set. */
#ifndef SD_DATA_TEXT_H
#define SD_DATA_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;     /* NUL-terminated once anything was appended; NULL before */
    size_t len;
    size_t cap;
    int64_t lines; /* calls to sd_text_line */
    int oom;
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
