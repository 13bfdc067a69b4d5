/* A growable text buffer (JSON, logs, HTML and SVG reports, validation reports). Zero-initialise
 * it; after a failed allocation `failed` is set and later appends do nothing (they return -1), so
 * a writer appends freely and checks `failed` once at the end. */
#ifndef SD_CORE_STRBUF_H
#define SD_CORE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;    /* NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
    int failed;    /* an allocation failed */
    int64_t lines; /* calls to sd_strbuf_line */
} sd_strbuf;

/* Each returns 0, or -1 when the buffer has failed. */
int sd_strbuf_append(sd_strbuf *b, const char *s, size_t n);
int sd_strbuf_puts(sd_strbuf *b, const char *s);
int sd_strbuf_printf(sd_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int sd_strbuf_vprintf(sd_strbuf *b, const char *fmt, va_list ap);
/* Appends one report line, "  <text>\n", and counts it in b->lines. */
int sd_strbuf_line(sd_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The text so far ("" when empty). */
const char *sd_strbuf_str(const sd_strbuf *b);
/* Hands the text to the caller (to free()); b is reset. NULL when empty. */
char *sd_strbuf_take(sd_strbuf *b);
void sd_strbuf_free(sd_strbuf *b);

#endif
