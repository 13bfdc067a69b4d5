/* A small JSON parser for hostile input (safetensors headers, model metadata, JSON-lines logs) and
 * helpers for writing JSON strings.
 *
 * Parsing builds a tree of sd_json values. It follows RFC 8259 strictly:
 *   - the whole input must be one value with only whitespace (space, tab, CR, LF) around it;
 *   - strings must be valid UTF-8 without raw control characters (< 0x20); escapes \" \\ \/ \b \f
 *     \n \r \t and \uXXXX, where a surrogate pair becomes one 4-byte UTF-8 sequence and a lone
 *     surrogate is an error;
 *   - numbers follow the JSON grammar (no leading zeros, '+', '.5', 'NaN', hex) and must fit in a
 *     double; their source text is kept, so integers beyond 2^53 are read exactly with
 *     sd_json_get_u64 / sd_json_get_i64;
 *   - nesting deeper than SD_JSON_MAX_DEPTH is an error;
 *   - an object with two equal keys is an error naming the key;
 *   - object members keep their order in the text.
 * Error messages give the byte offset, line and column: "JSON: invalid escape '\q' at byte 17
 * (line 1, column 18)". */
#ifndef SD_IO_JSON_H
#define SD_IO_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "core/strbuf.h"

#define SD_JSON_MAX_DEPTH 128

typedef enum {
    SD_JSON_NULL,
    SD_JSON_BOOL,
    SD_JSON_NUMBER,
    SD_JSON_STRING,
    SD_JSON_ARRAY,
    SD_JSON_OBJECT
} sd_json_type;

typedef struct sd_json {
    sd_json_type type;
    int boolean;           /* BOOL: 0 or 1 */
    double number;         /* NUMBER: the value (nearest double) */
    char *str;             /* STRING: decoded UTF-8, NUL-terminated; NUMBER: the source text */
    size_t len;            /* STRING/NUMBER: bytes in str (a string may hold NULs from \u0000);
                              ARRAY/OBJECT: number of elements / members */
    struct sd_json *items; /* ARRAY: [len] elements; OBJECT: [len] member values */
    char **keys;           /* OBJECT: [len] member names, decoded UTF-8, NUL-terminated */
    size_t *key_lens;      /* OBJECT: [len] byte lengths of the names */
} sd_json;

/* Parses n bytes of text (need not be NUL-terminated). *out is a new tree, freed with sd_json_free. */
sd_status sd_json_parse(const char *text, size_t n, sd_json **out, sd_error *err);
void sd_json_free(sd_json *v);

const char *sd_json_type_name(sd_json_type t); /* "null", "boolean", "number", ... */

/* Member of an object by name (first match), or NULL when v is not an object or has no such key. */
const sd_json *sd_json_get(const sd_json *v, const char *key);

/* A NUMBER written as a plain integer (no fraction, no exponent) that fits the type. Return 0 on
 * success, -1 otherwise (not a number, not an integer, negative for u64, out of range). */
int sd_json_get_u64(const sd_json *v, uint64_t *out);
int sd_json_get_i64(const sd_json *v, int64_t *out);

/* ---- writing ----
 * Strings are escaped as Python's json.dumps(..., ensure_ascii=False) does: '"' and '\\' escaped,
 * \b \f \n \r \t, other bytes below 0x20 as \u00xx; everything else (UTF-8 included) as is. */

/* Writes s as a quoted, escaped JSON string. Returns 0, or -1 if the stream reports an error. */
int sd_json_write_string(FILE *f, const char *s);
/* snprintf-like: writes the quoted, escaped form of s into dst (at most cap bytes with the NUL) and
 * returns the length it needs, not counting the NUL. */
size_t sd_json_escape(char *dst, size_t cap, const char *s);

/* Appends s quoted and escaped to b. Returns 0, or -1 when b has failed. */
int sd_json_append_string(sd_strbuf *b, const char *s);

#endif
