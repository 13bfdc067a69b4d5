/* SentencePiece tokenizer on the committed vocabulary (tests/fixtures/llm/vocab.gguf, built by
 * tests/reference/make_llm_fixtures.py): encode and decode against the Python reference
 * (tests/reference/llama_ref.py, a rescanning implementation) on tokenizer_cases.txt, plus hand
 * checks of BOS, byte fallback and the space prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "llm/tokenizer.h"

#define VOCAB "tests/fixtures/llm/vocab.gguf"
#define CASES "tests/fixtures/llm/tokenizer_cases.txt"

static sd_tokenizer *load(void) {
    sd_gguf *g = NULL;
    sd_error err = {0};
    if (sd_gguf_open(VOCAB, &g, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    sd_tokenizer *tok = NULL;
    if (sd_tokenizer_from_gguf(g, &tok, &err)) sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
    sd_gguf_close(g); /* the tokenizer keeps its own copies */
    return tok;
}

static size_t unhex(const char *h, size_t n, char *out) {
    size_t m = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(h + i, "%2x", &v);
        out[m++] = (char)v;
    }
    return m;
}

static void test_cases_match_reference(void) {
    sd_tokenizer *tok = load();
    if (!tok) return;
    FILE *f = fopen(CASES, "r");
    EXPECT(f != NULL, "cannot open %s", CASES);
    if (!f) {
        sd_tokenizer_free(tok);
        return;
    }
    static char line[1 << 16], text[1 << 15], want_dec[1 << 15];
    int n_cases = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2) continue;
        size_t tl = unhex(line, (size_t)(t1 - line), text);
        size_t dl = unhex(t2 + 1, strcspn(t2 + 1, "\r\n"), want_dec);
        int32_t want[4096];
        size_t nw = 0;
        for (char *p = t1 + 1; p < t2;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[nw++] = (int32_t)v;
            p = end;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        sd_error err = {0};
        EXPECT(sd_tokenizer_encode(tok, text, tl, 1, &ids, &n, &err) == SD_OK, "%s", err.msg);
        int same = n == nw && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
        if (!same && bad++ < 3)
            sd_test_fail(__FILE__, __LINE__, "case %d ('%.*s'): %zu ids, want %zu", n_cases,
                         (int)tl, text, n, nw);
        char *dec = NULL;
        size_t dn = 0;
        EXPECT(sd_tokenizer_decode(tok, want, nw, &dec, &dn, &err) == SD_OK, "%s", err.msg);
        if (dec && (dn != dl || memcmp(dec, want_dec, dl)) && bad++ < 3)
            sd_test_fail(__FILE__, __LINE__, "case %d: decode '%s' != '%.*s'", n_cases, dec,
                         (int)dl, want_dec);
        free(ids);
        free(dec);
        n_cases++;
    }
    fclose(f);
    EXPECT(n_cases >= 50, "only %d cases read", n_cases);
    EXPECT(bad == 0, "%d of %d cases differ", bad, n_cases);
    sd_tokenizer_free(tok);
}

static void test_hand_checks(void) {
    sd_tokenizer *tok = load();
    if (!tok) return;
    sd_error err = {0};
    EXPECT(sd_tokenizer_n_vocab(tok) == 384 && sd_tokenizer_bos(tok) == 1 && sd_tokenizer_eos(tok) == 2,
           "specials");
    int32_t *ids = NULL;
    size_t n = 0;
    /* Empty text: only BOS. */
    EXPECT(sd_tokenizer_encode(tok, "", 0, 1, &ids, &n, &err) == SD_OK && n == 1 && ids[0] == 1,
           "empty");
    free(ids);
    /* "\n" is not a piece: space prefix piece then the byte token <0x0A> (id 3 + 10). */
    EXPECT(sd_tokenizer_encode(tok, "\n", 1, 0, &ids, &n, &err) == SD_OK, "newline");
    int32_t sp = sd_tokenizer_find(tok, "\xe2\x96\x81", 3);
    EXPECT(sp >= 0 && n == 2 && ids[0] == sp && ids[1] == 13, "newline ids (n=%zu)", n);
    EXPECT(!strcmp(sd_tokenizer_piece(tok, 13), "<0x0A>") && sd_tokenizer_type(tok, 13) == SD_TOK_BYTE,
           "byte piece");
    free(ids);
    /* "the" is a merged piece "▁the": one token, and it decodes back without the prefix space. */
    int32_t the = sd_tokenizer_find(tok, "\xe2\x96\x81the", 6);
    EXPECT(the >= 0, "piece ▁the");
    EXPECT(sd_tokenizer_encode(tok, "the", 3, 0, &ids, &n, &err) == SD_OK && n == 1 && ids[0] == the,
           "the");
    char *text = NULL;
    size_t len = 0;
    int32_t seq[] = {1, the, the, 2};
    EXPECT(sd_tokenizer_decode(tok, seq, 4, &text, &len, &err) == SD_OK && !strcmp(text, "the the"),
           "decode '%s'", text ? text : "");
    free(text);
    free(ids);
    int32_t badid = 9999;
    EXPECT(sd_tokenizer_decode(tok, &badid, 1, &text, &len, &err) == SD_E_ARG, "bad id accepted");
    sd_tokenizer_free(tok);
}

/* A GGUF whose tokenizer is not SentencePiece is refused with a clear message. */
static void test_non_llama_tokenizer(void) {
    sd_gguf *g = NULL;
    sd_error err = {0};
    if (sd_gguf_open("tests/fixtures/llm/gguf_types.gguf", &g, &err)) {
        sd_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    sd_tokenizer *tok = NULL;
    EXPECT(sd_tokenizer_from_gguf(g, &tok, &err) == SD_E_FORMAT && tok == NULL &&
               strstr(err.msg, "tokenizer.ggml.model"),
           "no tokenizer: %s", err.msg);
    sd_gguf_close(g);
}

/* Ill-formed UTF-8 -> U+FFFD per maximal subpart; expected strings from Python 3.11's
 * bytes.decode("utf-8", "replace").encode(). */
static void test_utf8_repair(void) {
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"a\xe2\x96" "b", 4, "a\xef\xbf\xbd" "b"},
        {"\xff", 1, "\xef\xbf\xbd"},
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"x\xf0\x9f\x99", 4, "x\xef\xbf\xbd"},
        {"\xc3\xa9\xc0\xaf", 4, "\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"ok \xf0\x9f\x99\x82", 7, "ok \xf0\x9f\x99\x82"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        size_t n = 0;
        sd_error err = {0};
        EXPECT(sd_utf8_repair(cases[i].in, cases[i].n, &out, &n, &err) == SD_OK, "%s", err.msg);
        EXPECT(out && n == strlen(cases[i].want) && !strcmp(out, cases[i].want), "case %zu", i);
        free(out);
    }
}

int main(void) {
    sd_test_run("tokenizer_utf8_repair", test_utf8_repair);
    sd_test_run("tokenizer_cases_match_reference", test_cases_match_reference);
    sd_test_run("tokenizer_hand_checks", test_hand_checks);
    sd_test_run("tokenizer_missing", test_non_llama_tokenizer);
    return sd_test_finish();
}
