/* The GGUF tokenizer vocabulary (sd_tokenizer_from_gguf), then encode and decode with it: a few
 * fixed texts (spaces, multi-byte and invalid UTF-8, byte fallback) and every token id, decoded
 * alone and as one sequence, with the UTF-8 repair the simulated text goes through. */
#include "fuzz_util.h"
#include "io/gguf.h"
#include "llm/tokenizer.h"

static void tokenizer_round(const sd_tokenizer *tok, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    sd_error err;
    sd_error_clear(&err);
    FUZZ_CHECK(sd_tokenizer_encode(tok, text, len, 1, &ids, &n, &err) == SD_OK);
    FUZZ_CHECK(n >= 1 && ids[0] == sd_tokenizer_bos(tok));
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < sd_tokenizer_n_vocab(tok));
    char *dec = NULL, *fixed = NULL;
    size_t dlen = 0, flen = 0;
    FUZZ_CHECK(sd_tokenizer_decode(tok, ids, n, &dec, &dlen, &err) == SD_OK);
    FUZZ_CHECK(strlen(dec) <= dlen);
    FUZZ_CHECK(sd_utf8_repair(dec, dlen, &fixed, &flen, &err) == SD_OK);
    FUZZ_CHECK(flen <= 3 * dlen);
    free(dec);
    free(fixed);
    free(ids);
}

static int fuzz_tokenizer(const uint8_t *data, size_t size) {
    sd_gguf *g = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_gguf_open(fuzz_write("vocab.gguf", data, size), &g, &err);
    if (s) return s;
    sd_tokenizer *tok = NULL;
    s = sd_tokenizer_from_gguf(g, &tok, &err);
    sd_gguf_close(g); /* the tokenizer owns copies */
    if (s) {
        FUZZ_CHECK(tok == NULL && err.msg[0] != '\0');
        return s;
    }
    static const char *const texts[] = {
        "Hello world", " leading and  double  spaces ", "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
        "\xff\xfe\x80 broken \xe2\x96 utf8 \xf0\x9f\x98", "<s> </s> <unk> <0x41>", "a", " ", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) tokenizer_round(tok, texts[i], strlen(texts[i]));
    tokenizer_round(tok, "nul\0inside", 10);
    int32_t nv = sd_tokenizer_n_vocab(tok);
    int32_t limit = nv < 4096 ? nv : 4096;
    int32_t *all = malloc((size_t)limit * sizeof *all);
    FUZZ_CHECK(all != NULL);
    for (int32_t id = 0; id < limit; id++) {
        all[id] = id;
        const char *piece = sd_tokenizer_piece(tok, id);
        FUZZ_CHECK(piece != NULL);
        char *dec = NULL;
        size_t dlen = 0;
        FUZZ_CHECK(sd_tokenizer_decode(tok, &all[id], 1, &dec, &dlen, &err) == SD_OK);
        free(dec);
    }
    char *dec = NULL;
    size_t dlen = 0;
    FUZZ_CHECK(sd_tokenizer_decode(tok, all, (size_t)limit, &dec, &dlen, &err) == SD_OK);
    free(dec);
    int32_t bad = nv;
    FUZZ_CHECK(sd_tokenizer_decode(tok, &bad, 1, &dec, &dlen, &err) != SD_OK);
    FUZZ_CHECK(sd_tokenizer_piece(tok, nv) == NULL && sd_tokenizer_piece(tok, -1) == NULL);
    free(all);
    sd_tokenizer_free(tok);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_tokenizer(data, size);
    return 0;
}
#endif
