/* Report text (validation problems, warnings): appending lines and taking the buffer (text.h). */
#include "text.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void sd_text_addf(sd_text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_json_buf_vprintf(&t->b, fmt, ap);
    va_end(ap);
}

void sd_text_line(sd_text *t, const char *fmt, ...) {
    sd_json_buf_puts(&t->b, "  ");
    va_list ap;
    va_start(ap, fmt);
    sd_json_buf_vprintf(&t->b, fmt, ap);
    va_end(ap);
    sd_json_buf_puts(&t->b, "\n");
    t->lines++;
}

const char *sd_text_str(const sd_text *t) { return t->b.data ? t->b.data : ""; }

char *sd_text_take(sd_text *t) {
    char *p = t->b.data;
    memset(t, 0, sizeof *t);
    return p;
}

void sd_text_free(sd_text *t) {
    sd_json_buf_free(&t->b);
    memset(t, 0, sizeof *t);
}
