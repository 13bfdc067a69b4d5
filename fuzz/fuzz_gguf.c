/* GGUF files (sd_gguf_open): every key-value pair and tensor of an accepted file is visited, the
 * typed getters are called, and every tensor (up to 1M elements) is converted to float32, so that
 * an extent the validation missed shows as a read outside the mapping. */
#include "fuzz_util.h"
#include "io/gguf.h"

static int fuzz_gguf(const uint8_t *data, size_t size) {
    sd_gguf *g = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_gguf_open(fuzz_write("in.gguf", data, size), &g, &err);
    if (s) {
        FUZZ_CHECK(g == NULL && err.msg[0] != '\0');
        return s;
    }
    size_t align = sd_gguf_alignment(g);
    FUZZ_CHECK(align > 0 && (align & (align - 1)) == 0);
    for (size_t i = 0; i < sd_gguf_kv_count(g); i++) {
        const sd_gguf_kv *kv = sd_gguf_kv_at(g, i);
        FUZZ_CHECK(kv && sd_gguf_find_kv(g, kv->key) == kv);
        uint32_t u;
        float f;
        const char *str;
        (void)sd_gguf_get_u32(g, kv->key, &u, &err);
        (void)sd_gguf_get_f32(g, kv->key, &f, &err);
        if (sd_gguf_get_str(g, kv->key, &str, &err) == SD_OK) FUZZ_CHECK(strlen(str) <= kv->str_len);
        if (kv->type == SD_GGUF_ARRAY && kv->arr_type == SD_GGUF_STRING)
            for (uint64_t k = 0; k < kv->arr_n; k++) FUZZ_CHECK(strlen(kv->arr_str[k]) <= kv->arr_str_len[k]);
        if (kv->type == SD_GGUF_ARRAY && kv->arr_type != SD_GGUF_STRING && kv->arr_n) {
            volatile unsigned char last = ((const unsigned char *)kv->arr)[0];
            (void)last;
        }
    }
    for (size_t i = 0; i < sd_gguf_tensor_count(g); i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
        FUZZ_CHECK(t && sd_gguf_find_tensor(g, t->name) == t);
        FUZZ_CHECK(t->offset % align == 0);
        int64_t n = sd_gguf_tensor_numel(t);
        FUZZ_CHECK(n >= 1);
        FUZZ_CHECK(sd_ggml_row_size(t->type, t->ne[0]) * (size_t)(n / t->ne[0]) == t->nbytes);
        FUZZ_CHECK(t->nbytes <= size);
        if (n > (1 << 20)) continue;
        float *x = malloc((size_t)n * sizeof *x);
        FUZZ_CHECK(x != NULL);
        sd_ggml_to_f32(t->type, t->data, x, n);
        free(x);
    }
    sd_gguf_close(g);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_gguf(data, size);
    return 0;
}
#endif
