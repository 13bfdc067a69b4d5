#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void text_vaddf(sd_text *t, const char *fmt, va_list ap) {
    if (t->oom) return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    size_t need = t->len + (size_t)n + 1;
    if (need > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < need) cap *= 2;
        char *p = realloc(t->buf, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    t->len += (size_t)n;
}

void sd_text_addf(sd_text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    text_vaddf(t, fmt, ap);
    va_end(ap);
}

void sd_text_line(sd_text *t, const char *fmt, ...) {
    sd_text_addf(t, "  ");
    va_list ap;
    va_start(ap, fmt);
    text_vaddf(t, fmt, ap);
    va_end(ap);
    sd_text_addf(t, "\n");
    t->lines++;
}

const char *sd_text_str(const sd_text *t) { return t->buf ? t->buf : ""; }

char *sd_text_take(sd_text *t) {
    char *p = t->buf;
    t->buf = NULL;
    t->len = t->cap = 0;
    t->lines = 0;
    t->oom = 0;
    return p;
}

void sd_text_free(sd_text *t) {
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
    t->lines = 0;
    t->oom = 0;
}
