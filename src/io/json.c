/* Recursive-descent JSON parser (depth-limited) and string escaping. See json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"

typedef struct {
    const char *base; /* start of the text */
    const char *p;    /* next byte */
    const char *end;
    sd_error *err;
} parser;

static sd_status parse_error(parser *ps, const char *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static sd_status parse_error(parser *ps, const char *at, const char *fmt, ...) {
    if (!ps->err) return SD_E_FORMAT;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t line = 1, col = 1;
    for (const char *q = ps->base; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return sd_fail(ps->err, SD_E_FORMAT, "JSON: %s at byte %zu (line %zu, column %zu)", what,
                   (size_t)(at - ps->base), line, col);
}

/* A byte for an error message: printable ASCII as is, anything else as a hex escape. */
static const char *show_byte(const char *at, const char *end, char buf[8]) {
    if (at >= end) return "end of input";
    unsigned char c = (unsigned char)*at;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", c);
    return buf;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at ps->p; -1 if they are not there. */
static long read_hex4(parser *ps) {
    if (ps->end - ps->p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(ps->p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    ps->p += 4;
    return v;
}

static size_t utf8_encode(unsigned long cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence starting at s (a byte >= 0x80), or 0 if it is invalid:
 * overlong forms, UTF-16 surrogates (U+D800..DFFF) and code points above U+10FFFF are rejected. */
static size_t utf8_valid_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* ps->p is at the opening quote. */
static sd_status parse_string(parser *ps, char **out, size_t *out_len) {
    const char *start = ps->p;
    ps->p++;
    sd_strbuf b = {0}; /* the decoded bytes */
    if (sd_strbuf_append(&b, "", 0)) goto nomem;
    for (;;) {
        /* copy a run of plain bytes in one go */
        const char *run = ps->p;
        while (ps->p < ps->end) {
            unsigned char c = (unsigned char)*ps->p;
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
            ps->p++;
        }
        if (ps->p > run && sd_strbuf_append(&b, run, (size_t)(ps->p - run))) goto nomem;
        if (ps->p >= ps->end) {
            free(b.data);
            return parse_error(ps, start, "unterminated string");
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return parse_error(ps, ps->p, "control character 0x%02x in string (must be escaped)", c);
        }
        if (c >= 0x80) {
            size_t n = utf8_valid_len((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
            if (!n) {
                free(b.data);
                return parse_error(ps, ps->p, "invalid UTF-8 byte 0x%02x in string", c);
            }
            if (sd_strbuf_append(&b, ps->p, n)) goto nomem;
            ps->p += n;
            continue;
        }
        /* backslash escape */
        const char *esc = ps->p;
        ps->p++;
        if (ps->p >= ps->end) {
            free(b.data);
            return parse_error(ps, start, "unterminated string");
        }
        char e = *ps->p++;
        char one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            long cp = read_hex4(ps);
            if (cp < 0) {
                free(b.data);
                return parse_error(ps, esc, "invalid \\u escape (needs 4 hex digits)");
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                free(b.data);
                return parse_error(ps, esc, "lone low surrogate \\u%04lx", (unsigned long)cp);
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* must be followed by \uDC00..\uDFFF */
                long lo = -1;
                if (ps->end - ps->p >= 2 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    ps->p += 2;
                    lo = read_hex4(ps);
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    free(b.data);
                    return parse_error(ps, esc, "high surrogate \\u%04lx not followed by a low surrogate",
                                       (unsigned long)cp);
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            char utf8[4];
            size_t n = utf8_encode((unsigned long)cp, utf8);
            if (sd_strbuf_append(&b, utf8, n)) goto nomem;
            continue;
        }
        default: {
            char shown[8];
            free(b.data);
            return parse_error(ps, esc, "invalid escape '\\' followed by %s",
                               show_byte(ps->p - 1, ps->end, shown));
        }
        }
        if (sd_strbuf_append(&b, &one, 1)) goto nomem;
    }
    *out = b.data;
    *out_len = b.len;
    return SD_OK;
nomem:
    free(b.data);
    return sd_fail(ps->err, SD_E_NOMEM, "JSON: out of memory");
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static sd_status parse_number(parser *ps, sd_json *out) {
    const char *s = ps->p, *q = ps->p, *e = ps->end;
    if (q < e && *q == '-') q++;
    if (q >= e || !is_digit(*q)) return parse_error(ps, s, "invalid number");
    if (*q == '0') {
        q++;
        if (q < e && is_digit(*q)) return parse_error(ps, s, "invalid number (leading zero)");
    } else {
        while (q < e && is_digit(*q)) q++;
    }
    if (q < e && *q == '.') {
        q++;
        if (q >= e || !is_digit(*q)) return parse_error(ps, s, "invalid number (no digit after '.')");
        while (q < e && is_digit(*q)) q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) q++;
        if (q >= e || !is_digit(*q)) return parse_error(ps, s, "invalid number (bad exponent)");
        while (q < e && is_digit(*q)) q++;
    }
    size_t n = (size_t)(q - s);
    char *text = malloc(n + 1);
    if (!text) return sd_fail(ps->err, SD_E_NOMEM, "JSON: out of memory");
    memcpy(text, s, n);
    text[n] = '\0';
    /* The grammar above guarantees strtod consumes exactly this text (in the C locale). */
    double v = strtod(text, NULL);
    if (isinf(v)) {
        free(text);
        return parse_error(ps, s, "number out of range");
    }
    out->type = SD_JSON_NUMBER;
    out->number = v;
    out->str = text;
    out->len = n;
    ps->p = q;
    return SD_OK;
}

static int match_word(parser *ps, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return 0;
    ps->p += n;
    return 1;
}

static void free_contents(sd_json *v);
static sd_status parse_value(parser *ps, sd_json *out, int depth);

/* Appends a slot to an array/object under construction; *cap is its capacity. */
static int grow(sd_json *v, size_t *cap, int with_keys) {
    if (v->len < *cap) return 0;
    const size_t nc = sd_array_next_cap(*cap, v->len + 1, 4);
    sd_json *items = nc ? sd_array_resize(v->items, nc, sizeof *items) : NULL;
    if (!items) return -1;
    v->items = items;
    if (with_keys) {
        char **keys = sd_array_resize(v->keys, nc, sizeof *keys);
        if (!keys) return -1;
        v->keys = keys;
        size_t *lens = sd_array_resize(v->key_lens, nc, sizeof *lens);
        if (!lens) return -1;
        v->key_lens = lens;
    }
    *cap = nc;
    return 0;
}

static sd_status parse_array(parser *ps, sd_json *out, int depth) {
    out->type = SD_JSON_ARRAY;
    size_t cap = 0;
    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return SD_OK;
    }
    for (;;) {
        if (grow(out, &cap, 0)) return sd_fail(ps->err, SD_E_NOMEM, "JSON: out of memory");
        sd_json *item = &out->items[out->len];
        memset(item, 0, sizeof *item);
        out->len++; /* counted now so that an error inside frees what the item holds */
        sd_status st = parse_value(ps, item, depth + 1);
        if (st) return st;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return SD_OK;
        }
        char shown[8];
        return parse_error(ps, ps->p, "expected ',' or ']' in array, found %s",
                           show_byte(ps->p, ps->end, shown));
    }
}

typedef struct {
    const char *key;
    size_t len;
} key_ref;

static int cmp_key_ref(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Duplicate keys: sort references to the keys and compare neighbours, O(n log n). */
static sd_status check_duplicate_keys(parser *ps, const sd_json *obj, const char *at) {
    if (obj->len < 2) return SD_OK;
    key_ref *refs = malloc(obj->len * sizeof *refs);
    if (!refs) return sd_fail(ps->err, SD_E_NOMEM, "JSON: out of memory");
    for (size_t i = 0; i < obj->len; i++) {
        refs[i].key = obj->keys[i];
        refs[i].len = obj->key_lens[i];
    }
    qsort(refs, obj->len, sizeof *refs, cmp_key_ref);
    for (size_t i = 1; i < obj->len; i++) {
        if (cmp_key_ref(&refs[i - 1], &refs[i]) == 0) {
            char shown[80];
            size_t n = refs[i].len < sizeof shown - 1 ? refs[i].len : sizeof shown - 1;
            for (size_t k = 0; k < n; k++) {
                unsigned char c = (unsigned char)refs[i].key[k];
                shown[k] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
            }
            shown[n] = '\0';
            free(refs);
            return parse_error(ps, at, "duplicate key \"%s\" in object", shown);
        }
    }
    free(refs);
    return SD_OK;
}

static sd_status parse_object(parser *ps, sd_json *out, int depth) {
    const char *start = ps->p;
    out->type = SD_JSON_OBJECT;
    size_t cap = 0;
    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return SD_OK;
    }
    for (;;) {
        char shown[8];
        if (ps->p >= ps->end || *ps->p != '"')
            return parse_error(ps, ps->p, "expected a string key in object, found %s",
                               show_byte(ps->p, ps->end, shown));
        if (grow(out, &cap, 1)) return sd_fail(ps->err, SD_E_NOMEM, "JSON: out of memory");
        char *key = NULL;
        size_t key_len = 0;
        sd_status st = parse_string(ps, &key, &key_len);
        if (st) return st;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            free(key);
            return parse_error(ps, ps->p, "expected ':' after object key, found %s",
                               show_byte(ps->p, ps->end, shown));
        }
        ps->p++;
        sd_json *item = &out->items[out->len];
        memset(item, 0, sizeof *item);
        out->keys[out->len] = key;
        out->key_lens[out->len] = key_len;
        out->len++; /* counted now so that an error below frees key and item */
        st = parse_value(ps, item, depth + 1);
        if (st) return st;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return check_duplicate_keys(ps, out, start);
        }
        return parse_error(ps, ps->p, "expected ',' or '}' in object, found %s",
                           show_byte(ps->p, ps->end, shown));
    }
}

static sd_status parse_value(parser *ps, sd_json *out, int depth) {
    skip_ws(ps);
    if (depth > SD_JSON_MAX_DEPTH)
        return parse_error(ps, ps->p, "nesting deeper than %d levels", SD_JSON_MAX_DEPTH);
    if (ps->p >= ps->end) return parse_error(ps, ps->p, "unexpected end of input");
    switch (*ps->p) {
    case '{': return parse_object(ps, out, depth);
    case '[': return parse_array(ps, out, depth);
    case '"':
        out->type = SD_JSON_STRING;
        return parse_string(ps, &out->str, &out->len);
    case 't':
        if (match_word(ps, "true")) {
            out->type = SD_JSON_BOOL;
            out->boolean = 1;
            return SD_OK;
        }
        break;
    case 'f':
        if (match_word(ps, "false")) {
            out->type = SD_JSON_BOOL;
            out->boolean = 0;
            return SD_OK;
        }
        break;
    case 'n':
        if (match_word(ps, "null")) {
            out->type = SD_JSON_NULL;
            return SD_OK;
        }
        break;
    default:
        if (*ps->p == '-' || is_digit(*ps->p)) return parse_number(ps, out);
        break;
    }
    char shown[8];
    return parse_error(ps, ps->p, "unexpected %s", show_byte(ps->p, ps->end, shown));
}

static void free_contents(sd_json *v) {
    if (!v) return;
    if (v->items) /* only arrays and objects own items; the loop also frees a partial container */
        for (size_t i = 0; i < v->len; i++) free_contents(&v->items[i]);
    if (v->keys)
        for (size_t i = 0; i < v->len; i++) free(v->keys[i]);
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->str);
    memset(v, 0, sizeof *v);
}

sd_status sd_json_parse(const char *text, size_t n, sd_json **out, sd_error *err) {
    if (!out) return sd_fail(err, SD_E_ARG, "sd_json_parse: NULL output");
    *out = NULL;
    if (!text && n) return sd_fail(err, SD_E_ARG, "sd_json_parse: NULL text");
    sd_json *root = calloc(1, sizeof *root);
    if (!root) return sd_fail(err, SD_E_NOMEM, "JSON: out of memory");
    parser ps = {text, text, text + n, err};
    if (n == 0) {
        free(root);
        return sd_fail(err, SD_E_FORMAT, "JSON: empty input");
    }
    sd_status st = parse_value(&ps, root, 1);
    if (!st) {
        skip_ws(&ps);
        if (ps.p < ps.end) {
            char shown[8];
            st = parse_error(&ps, ps.p, "trailing characters after the JSON value (%s)",
                             show_byte(ps.p, ps.end, shown));
        }
    }
    if (st) {
        sd_json_free(root);
        return st;
    }
    *out = root;
    return SD_OK;
}

void sd_json_free(sd_json *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

const char *sd_json_type_name(sd_json_type t) {
    switch (t) {
    case SD_JSON_NULL: return "null";
    case SD_JSON_BOOL: return "boolean";
    case SD_JSON_NUMBER: return "number";
    case SD_JSON_STRING: return "string";
    case SD_JSON_ARRAY: return "array";
    case SD_JSON_OBJECT: return "object";
    }
    return "?";
}

const sd_json *sd_json_get(const sd_json *v, const char *key) {
    if (!v || v->type != SD_JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->len; i++)
        if (v->key_lens[i] == n && memcmp(v->keys[i], key, n) == 0) return &v->items[i];
    return NULL;
}

/* n > 0 decimal digits (nothing else) that fit a uint64: 0, or -1. */
static int digits_to_u64(const char *s, size_t n, uint64_t *out) {
    if (n == 0) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1; /* '-', '.', 'e' */
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int sd_json_get_u64(const sd_json *v, uint64_t *out) {
    if (!v || v->type != SD_JSON_NUMBER) return -1;
    return digits_to_u64(v->str, v->len, out);
}

int sd_json_get_i64(const sd_json *v, int64_t *out) {
    if (!v || v->type != SD_JSON_NUMBER || v->len == 0) return -1;
    int neg = v->str[0] == '-';
    uint64_t mag;
    if (digits_to_u64(v->str + neg, v->len - (size_t)neg, &mag)) return -1;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return -1;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)mag;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* writing */

/* The escaped form of byte c, or NULL when it is written as is. buf holds \u00xx forms. */
static const char *escape_of(unsigned char c, char buf[8]) {
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
    }
    if (c < 0x20) {
        snprintf(buf, 8, "\\u%04x", c);
        return buf;
    }
    return NULL;
}

int sd_json_write_string(FILE *f, const char *s) {
    char buf[8];
    fputc('"', f);
    const char *run = s;
    for (; *s; s++) {
        const char *e = escape_of((unsigned char)*s, buf);
        if (!e) continue;
        if (s > run) fwrite(run, 1, (size_t)(s - run), f);
        fputs(e, f);
        run = s + 1;
    }
    if (s > run) fwrite(run, 1, (size_t)(s - run), f);
    fputc('"', f);
    return ferror(f) ? -1 : 0;
}

size_t sd_json_escape(char *dst, size_t cap, const char *s) {
    size_t need = 0;
    char buf[8];
#define PUT(ch)                                  \
    do {                                         \
        if (need + 1 < cap) dst[need] = (ch);    \
        need++;                                  \
    } while (0)
    PUT('"');
    for (; *s; s++) {
        const char *e = escape_of((unsigned char)*s, buf);
        if (!e) {
            PUT(*s);
        } else {
            for (; *e; e++) PUT(*e);
        }
    }
    PUT('"');
#undef PUT
    if (cap) dst[need < cap ? need : cap - 1] = '\0';
    return need;
}

int sd_json_append_string(sd_strbuf *b, const char *s) {
    char buf[8];
    if (sd_strbuf_append(b, "\"", 1)) return -1;
    const char *run = s;
    for (; *s; s++) {
        const char *e = escape_of((unsigned char)*s, buf);
        if (!e) continue;
        if (sd_strbuf_append(b, run, (size_t)(s - run)) || sd_strbuf_puts(b, e)) return -1;
        run = s + 1;
    }
    if (sd_strbuf_append(b, run, (size_t)(s - run))) return -1;
    return sd_strbuf_append(b, "\"", 1);
}
