/* The growable text buffer of strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

int sd_strbuf_append(sd_strbuf *b, const char *s, size_t n) {
    if (b->failed) return -1;
    if (n > SIZE_MAX - 1 - b->len) {
        b->failed = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = sd_array_next_cap(b->cap, b->len + n + 1, 64);
        if (!cap) cap = b->len + n + 1; /* doubling would overflow: what is needed, exactly */
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sd_strbuf_puts(sd_strbuf *b, const char *s) { return sd_strbuf_append(b, s, strlen(s)); }

int sd_strbuf_vprintf(sd_strbuf *b, const char *fmt, va_list ap) {
    if (b->failed) return -1;
    char small[256];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        b->failed = 1;
        return -1;
    }
    if ((size_t)n < sizeof small) {
        va_end(again);
        return sd_strbuf_append(b, small, (size_t)n);
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        va_end(again);
        b->failed = 1;
        return -1;
    }
    vsnprintf(big, (size_t)n + 1, fmt, again);
    va_end(again);
    int rc = sd_strbuf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

int sd_strbuf_printf(sd_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = sd_strbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int sd_strbuf_line(sd_strbuf *b, const char *fmt, ...) {
    int rc = sd_strbuf_puts(b, "  ");
    va_list ap;
    va_start(ap, fmt);
    rc |= sd_strbuf_vprintf(b, fmt, ap);
    va_end(ap);
    rc |= sd_strbuf_puts(b, "\n");
    b->lines++;
    return rc ? -1 : 0;
}

const char *sd_strbuf_str(const sd_strbuf *b) { return b->data ? b->data : ""; }

char *sd_strbuf_take(sd_strbuf *b) {
    char *p = b->data;
    memset(b, 0, sizeof *b);
    return p;
}

void sd_strbuf_free(sd_strbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}
