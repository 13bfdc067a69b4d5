/* safetensors from memory (sd_st_parse) and from a file (sd_st_open): both must agree; every
 * accepted tensor is read (converted to float32) and checked to lie inside the data section. */
#include "core/alloc.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

static int fuzz_safetensors(const uint8_t *data, size_t size) {
    sd_safetensors *st = NULL, *sf = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_st_parse(data, size, &st, &err);
    if (s) FUZZ_CHECK(err.msg[0] != '\0' && st == NULL);
    const char *path = fuzz_write("in.safetensors", data, size);
    sd_status sfs = sd_st_open(path, &sf, &err);
    FUZZ_CHECK((s == SD_OK) == (sfs == SD_OK));
    if (s) return s;
    FUZZ_CHECK(size >= 8);
    uint64_t header = 0;
    for (int i = 0; i < 8; i++) header |= (uint64_t)data[i] << (8 * i);
    size_t data_bytes = size - 8 - (size_t)header;
    FUZZ_CHECK(sd_st_count(st) == sd_st_count(sf));
    for (int i = 0; i < sd_st_count(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i), *tf = sd_st_tensor_at(sf, i);
        FUZZ_CHECK(t && tf && !strcmp(t->name, tf->name));
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= SD_ST_MAX_DIMS);
        FUZZ_CHECK(t->begin <= t->end && t->end <= data_bytes);
        FUZZ_CHECK(sd_st_find(st, t->name) != NULL);
        float *x = sd_alloc((t->numel ? t->numel : 1) * sizeof *x);
        float *y = sd_alloc((t->numel ? t->numel : 1) * sizeof *y);
        FUZZ_CHECK(x && y);
        sd_status r = sd_st_read_f32(st, t, x, &err), rf = sd_st_read_f32(sf, tf, y, &err);
        FUZZ_CHECK(r == rf);
        if (!r)
            for (size_t k = 0; k < t->numel; k++) FUZZ_CHECK(fuzz_same_float(x[k], y[k]));
        FUZZ_CHECK(t->end == t->begin || sd_st_data(st, t) != NULL);
        sd_free(x);
        sd_free(y);
    }
    FUZZ_CHECK(sd_st_metadata_count(st) == sd_st_metadata_count(sf));
    for (int i = 0; i < sd_st_metadata_count(st); i++) {
        const char *k = sd_st_metadata_key(st, i), *v = sd_st_metadata_value(st, i);
        FUZZ_CHECK(k && v && !strcmp(k, sd_st_metadata_key(sf, i)) && !strcmp(v, sd_st_metadata_value(sf, i)));
        FUZZ_CHECK(sd_st_metadata_get(st, k) != NULL);
    }
    sd_st_close(st);
    sd_st_close(sf);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_safetensors(data, size);
    return 0;
}
#endif
