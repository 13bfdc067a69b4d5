/* WavLM model files (sd_wavlm_load / sd_wavlm_load_memory): names, prefixes, the configuration from
 * shapes and metadata. Both readers agree; a rejection carries a message; an accepted model has a
 * consistent configuration, holds no more parameters than the file could carry, and runs on its
 * shortest input (when small enough to keep the fuzzer fast). */
#include "core/alloc.h"
#include "fuzz_util.h"
#include "wavlm/wavlm.h"

static int fuzz_wavlm(const uint8_t *data, size_t size) {
    sd_wavlm *m = NULL, *mf = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_wavlm_load_memory(data, size, "in.safetensors", &m, &err);
    if (s) FUZZ_CHECK(m == NULL && err.msg[0] != '\0');
    sd_status sf = sd_wavlm_load(fuzz_write("in.safetensors", data, size), &mf, &err);
    FUZZ_CHECK((s == SD_OK) == (sf == SD_OK));
    sd_wavlm_free(mf);
    if (s) return s;
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    FUZZ_CHECK(c->n_conv >= 1 && c->n_layers >= 1 && c->hidden % c->n_heads == 0 && c->hop >= 1 &&
               c->receptive >= 1 && c->num_buckets >= 4 && c->max_distance > c->num_buckets / 4);
    /* Parameters come from the file: 2 bytes each at least, plus under 16 floats of padding per
     * tensor, which its header entry (over 30 bytes) outweighs. */
    FUZZ_CHECK(sd_wavlm_param_count(m) <= size);
    if (sd_wavlm_param_count(m) < 200000 && c->receptive <= 4096) {
        const size_t n = (size_t)c->receptive;
        float *wav = sd_alloc(n * sizeof *wav);
        float *out = sd_alloc((size_t)c->hidden * sizeof *out);
        for (size_t i = 0; i < n; i++) wav[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
        sd_wavlm_ws *ws = NULL;
        int layer = c->n_layers;
        FUZZ_CHECK(sd_wavlm_ws_create(m, n, 1, &ws, &err) == SD_OK);
        FUZZ_CHECK(sd_wavlm_forward(m, ws, wav, n, &layer, 1, &out, &err) == SD_OK);
        sd_wavlm_ws_free(ws);
        sd_free(wav);
        sd_free(out);
    }
    sd_wavlm_free(m);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_wavlm(data, size);
    return 0;
}
#endif
