/* JSON parser: valid documents, every kind of invalid input with the message it must give, every
 * truncation, one-byte substitution and bit flip of a document (tests/mutate.h: each parsed from
 * an exactly-sized heap buffer so ASan sees any over-read), and the string escaping used by the
 * writers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/json.h"
#include "mutate.h"

/* Parses text from an exactly-sized heap copy (no NUL after it). */
static sd_status parse_exact(const char *text, size_t n, sd_json **out, sd_error *err) {
    char *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, text, n);
    sd_status st = sd_json_parse(copy, n, out, err);
    free(copy);
    return st;
}

static void test_valid_document(void) {
    const char *text = " {\"name\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\",\n"
                       "  \"nums\": [0, -0, 1.5, -2e-3, 1E+2, 123456789012345678],\n"
                       "  \"nested\": {\"t\": true, \"f\": false, \"n\": null, \"e\": {}, \"a\": []},\n"
                       "  \"zero\": \"a\\u0000b\", \"raw\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"} \r\n";
    sd_json *v = NULL;
    sd_error err = {0};
    sd_status st = parse_exact(text, strlen(text), &v, &err);
    EXPECT(st == SD_OK, "parse failed: %s", err.msg);
    if (st) return;
    EXPECT(v->type == SD_JSON_OBJECT && v->len == 5, "root: type %d len %zu", v->type, v->len);
    EXPECT(strcmp(v->keys[0], "name") == 0 && strcmp(v->keys[4], "raw") == 0, "key order");
    const sd_json *name = sd_json_get(v, "name");
    const char *want = "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \b\f\n\r\t";
    EXPECT(name && name->type == SD_JSON_STRING && name->len == strlen(want) && strcmp(name->str, want) == 0,
           "name decoded as '%s'", name ? name->str : "(missing)");
    const sd_json *nums = sd_json_get(v, "nums");
    EXPECT(nums && nums->type == SD_JSON_ARRAY && nums->len == 6, "nums");
    if (nums && nums->len == 6) {
        double want_n[] = {0, -0.0, 1.5, -2e-3, 100, 123456789012345678.0};
        for (int i = 0; i < 6; i++)
            EXPECT(nums->items[i].type == SD_JSON_NUMBER && nums->items[i].number == want_n[i],
                   "nums[%d] = %g", i, nums->items[i].number);
        uint64_t u;
        int64_t s;
        EXPECT(sd_json_get_u64(&nums->items[5], &u) == 0 && u == 123456789012345678ull, "u64 exact");
        EXPECT(sd_json_get_u64(&nums->items[2], &u) != 0, "1.5 is not an integer");
        EXPECT(sd_json_get_u64(&nums->items[4], &u) != 0, "1E+2 is not written as an integer");
        EXPECT(sd_json_get_i64(&nums->items[1], &s) == 0 && s == 0, "-0 as i64");
        EXPECT(sd_json_get_u64(&nums->items[1], &u) != 0, "-0 is not a u64");
    }
    const sd_json *nested = sd_json_get(v, "nested");
    EXPECT(nested && nested->len == 5, "nested");
    EXPECT(sd_json_get(nested, "t")->boolean == 1 && sd_json_get(nested, "t")->type == SD_JSON_BOOL, "true");
    EXPECT(sd_json_get(nested, "f")->boolean == 0, "false");
    EXPECT(sd_json_get(nested, "n")->type == SD_JSON_NULL, "null");
    EXPECT(sd_json_get(nested, "e")->type == SD_JSON_OBJECT && sd_json_get(nested, "e")->len == 0, "{}");
    EXPECT(sd_json_get(nested, "a")->type == SD_JSON_ARRAY && sd_json_get(nested, "a")->len == 0, "[]");
    EXPECT(sd_json_get(nested, "missing") == NULL, "absent key");
    const sd_json *zero = sd_json_get(v, "zero");
    EXPECT(zero && zero->len == 3 && memcmp(zero->str, "a\0b", 3) == 0, "\\u0000 kept with its length");
    const sd_json *raw = sd_json_get(v, "raw");
    EXPECT(raw && strcmp(raw->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0, "raw UTF-8 kept");
    sd_json_free(v);
}

static void test_integers(void) {
    struct {
        const char *text;
        int u_ok;
        uint64_t u;
        int s_ok;
        int64_t s;
    } cases[] = {
        {"18446744073709551615", 1, UINT64_MAX, 0, 0},
        {"18446744073709551616", 0, 0, 0, 0},
        {"9007199254740993", 1, 9007199254740993ull, 1, 9007199254740993ll},
        {"9223372036854775807", 1, 9223372036854775807ull, 1, INT64_MAX},
        {"-9223372036854775808", 0, 0, 1, INT64_MIN},
        {"-9223372036854775809", 0, 0, 0, 0},
        {"-17", 0, 0, 1, -17},
        {"1e3", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sd_json *v = NULL;
        sd_error err = {0};
        EXPECT(parse_exact(cases[i].text, strlen(cases[i].text), &v, &err) == SD_OK, "%s: %s", cases[i].text, err.msg);
        if (!v) continue;
        uint64_t u = 0;
        int64_t s = 0;
        int u_ok = sd_json_get_u64(v, &u) == 0, s_ok = sd_json_get_i64(v, &s) == 0;
        EXPECT(u_ok == cases[i].u_ok && (!u_ok || u == cases[i].u), "%s as u64: ok %d %llu", cases[i].text, u_ok,
               (unsigned long long)u);
        EXPECT(s_ok == cases[i].s_ok && (!s_ok || s == cases[i].s), "%s as i64: ok %d %lld", cases[i].text, s_ok,
               (long long)s);
        sd_json_free(v);
    }
}

static void test_invalid_documents(void) {
    struct {
        const char *text;
        size_t n; /* 0: strlen */
        const char *msg;
    } cases[] = {
        {"", 0, "empty input"},
        {"   ", 0, "unexpected end of input"},
        {"{} x", 0, "trailing characters"},
        {"[1] [2]", 0, "trailing characters"},
        {"\"a\tb\"", 0, "control character 0x09"},
        {"\"a\nb\"", 0, "control character 0x0a"},
        {"01", 0, "leading zero"},
        {"-01", 0, "leading zero"},
        {"1.", 0, "no digit after '.'"},
        {".5", 0, "unexpected '.'"},
        {"+1", 0, "unexpected '+'"},
        {"-", 0, "invalid number"},
        {"1e", 0, "bad exponent"},
        {"1e+", 0, "bad exponent"},
        {"NaN", 0, "unexpected 'N'"},
        {"Infinity", 0, "unexpected 'I'"},
        {"0x10", 0, "trailing characters"},
        {"1e400", 0, "out of range"},
        {"\"abc", 0, "unterminated string"},
        {"\"abc\\", 0, "unterminated string"},
        {"\"\\ud800\"", 0, "not followed by a low surrogate"},
        {"\"\\ud800\\u0041\"", 0, "not followed by a low surrogate"},
        {"\"\\udc00\"", 0, "lone low surrogate"},
        {"\"\\u12G4\"", 0, "invalid \\u escape"},
        {"\"\\u12\"", 0, "invalid \\u escape"},
        {"\"\\q\"", 0, "invalid escape"},
        {"\"\xff\"", 0, "invalid UTF-8 byte 0xff"},
        {"\"\xc0\xaf\"", 0, "invalid UTF-8 byte 0xc0"},      /* overlong '/' */
        {"\"\xed\xa0\x80\"", 0, "invalid UTF-8 byte 0xed"},  /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", 0, "invalid UTF-8"},       /* above U+10FFFF */
        {"\"\xe2\x82\"", 0, "invalid UTF-8"},               /* cut sequence */
        {"\xef\xbb\xbf{}", 0, "unexpected 0xef"},           /* BOM */
        {"[1,]", 0, "unexpected ']'"},
        {"[1 2]", 0, "expected ',' or ']'"},
        {"{\"a\" 1}", 0, "expected ':'"},
        {"{a:1}", 0, "expected a string key"},
        {"{'a':1}", 0, "expected a string key"},
        {"{\"a\":1,}", 0, "expected a string key"},
        {"{\"a\":1 \"b\":2}", 0, "expected ',' or '}'"},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, "duplicate key \"a\""},
        {"{\"x\":{\"k\":1,\"k\":1}}", 0, "duplicate key \"k\""},
        {"tru", 0, "unexpected 't'"},
        {"nul", 0, "unexpected 'n'"},
        {"[\"a\\u0000\", 1", 0, "expected ',' or ']'"},
        {"[1]\0", 4, "trailing characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].text);
        sd_json *v = NULL;
        sd_error err = {0};
        sd_status st = parse_exact(cases[i].text, n, &v, &err);
        EXPECT(st == SD_E_FORMAT && v == NULL, "case %zu accepted (status %d)", i, st);
        EXPECT(strstr(err.msg, cases[i].msg) != NULL, "case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].msg);
        sd_json_free(v);
    }
    /* the position is reported */
    sd_json *v = NULL;
    sd_error err = {0};
    parse_exact("{\n  \"a\": tru }", 14, &v, &err);
    EXPECT(strstr(err.msg, "line 2, column 8") != NULL, "position: %s", err.msg);
}

static void test_depth_limit(void) {
    enum { N = SD_JSON_MAX_DEPTH + 1 };
    char deep[2 * N + 1];
    for (int depth = SD_JSON_MAX_DEPTH; depth <= N; depth++) {
        for (int i = 0; i < depth; i++) deep[i] = '[', deep[2 * depth - 1 - i] = ']';
        sd_json *v = NULL;
        sd_error err = {0};
        sd_status st = parse_exact(deep, 2 * (size_t)depth, &v, &err);
        if (depth == SD_JSON_MAX_DEPTH) EXPECT(st == SD_OK, "depth %d refused: %s", depth, err.msg);
        else EXPECT(st == SD_E_FORMAT && strstr(err.msg, "nesting deeper"), "depth %d: %s", depth, err.msg);
        sd_json_free(v);
    }
    /* a huge nesting attempt fails fast, without deep recursion */
    size_t big = 1000000;
    char *many = malloc(big);
    memset(many, '{', big);
    sd_json *v = NULL;
    sd_error err = {0};
    EXPECT(sd_json_parse(many, big, &v, &err) == SD_E_FORMAT, "1e6 '{' accepted");
    free(many);
}

/* The parser on one mutant (an exact-size heap copy, tests/mutate.h). */
static int json_reads(const uint8_t *bytes, size_t n, void *ctx) {
    (void)ctx;
    sd_json *v = NULL;
    const int accepted = sd_json_parse((const char *)bytes, n, &v, NULL) == SD_OK;
    sd_json_free(v);
    return accepted;
}

/* Every prefix and every one-byte corruption of a document: an error or a value, never a crash. */
static void test_truncations_and_corruptions(void) {
    const char *doc = "{\"__metadata__\":{\"k\":\"v\\u00e9\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                      "\"data_offsets\":[0,24]},\"s\":[true,false,null,-1.25e-3,\"\\ud83d\\ude00\"]}";
    const uint8_t *bytes = (const uint8_t *)doc;
    const size_t n = strlen(doc);
    const int accepted = sd_mut_prefixes(bytes, n, json_reads, NULL);
    EXPECT(accepted == 0, "%d strict prefixes accepted", accepted);
    sd_json *v = NULL;
    EXPECT(parse_exact(doc, n, &v, NULL) == SD_OK, "whole document refused");
    sd_json_free(v);
    const uint8_t subst[] = {0, '"', '\\', '{', '}', '[', ']', ',', ':', 0x80, 0xff, 'u', '0'};
    sd_mut_substitutions(bytes, n, subst, sizeof subst, json_reads, NULL);
    sd_mut_bit_flips(bytes, n, 0, json_reads, NULL);
}

static void test_escape_and_round_trip(void) {
    char buf[128];
    const char *s = "a\"b\\c\n\t\x01\x1f\x7f \xc3\xa9/";
    const char *want = "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f \xc3\xa9/\"";
    size_t need = sd_json_escape(buf, sizeof buf, s);
    EXPECT(need == strlen(want) && strcmp(buf, want) == 0, "escape gave %s (need %zu)", buf, need);
    char tiny[5];
    need = sd_json_escape(tiny, sizeof tiny, s);
    EXPECT(need == strlen(want) && strcmp(tiny, "\"a\\\"") == 0, "truncated escape gave '%s'", tiny);

    /* FILE writer gives the same bytes */
    char path[512];
    snprintf(path, sizeof path, "%s/esc.json", sd_test_tmpdir());
    FILE *f = fopen(path, "wb");
    EXPECT(f && sd_json_write_string(f, s) == 0, "write_string failed");
    if (f) fclose(f);
    f = fopen(path, "rb");
    char back[128] = {0};
    size_t got = f ? fread(back, 1, sizeof back - 1, f) : 0;
    if (f) fclose(f);
    EXPECT(got == strlen(want) && strcmp(back, want) == 0, "file holds '%s'", back);

    /* buffer writer, and parsing brings back every byte 0x01..0x7f plus UTF-8 */
    char all[200];
    int k = 0;
    for (int c = 1; c < 0x80; c++) all[k++] = (char)c;
    strcpy(all + k, "\xe2\x82\xac\xf0\x9f\x98\x80");
    sd_strbuf b = {0};
    sd_strbuf_puts(&b, "{");
    sd_json_append_string(&b, "key");
    sd_strbuf_printf(&b, ":%d,", 42);
    sd_json_append_string(&b, "s");
    sd_strbuf_puts(&b, ":");
    sd_json_append_string(&b, all);
    sd_strbuf_puts(&b, "}");
    EXPECT(!b.failed, "buffer failed");
    sd_json *v = NULL;
    sd_error err = {0};
    EXPECT(sd_json_parse(b.data, b.len, &v, &err) == SD_OK, "re-parse: %s", err.msg);
    if (v) {
        EXPECT(sd_json_get(v, "key")->number == 42, "key");
        EXPECT(strcmp(sd_json_get(v, "s")->str, all) == 0, "string did not round-trip");
    }
    sd_json_free(v);
    sd_strbuf_free(&b);
}

int main(void) {
    sd_test_run("json_valid_document", test_valid_document);
    sd_test_run("json_integers_exact", test_integers);
    sd_test_run("json_invalid_documents", test_invalid_documents);
    sd_test_run("json_depth_limit", test_depth_limit);
    sd_test_run("json_truncations_and_corruptions", test_truncations_and_corruptions);
    sd_test_run("json_escape_and_round_trip", test_escape_and_round_trip);
    return sd_test_finish();
}
