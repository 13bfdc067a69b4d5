/* Model files (sd_model_load): a safetensors file with sdumc metadata, or a converted PyTorch
 * state_dict whose configuration is inferred from the tensor shapes. */
#include "fuzz_util.h"
#include "model/model.h"

static int fuzz_model(const uint8_t *data, size_t size) {
    sd_model *m = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_model_load(fuzz_write("model.safetensors", data, size), &m, &err);
    if (s) {
        FUZZ_CHECK(m == NULL && err.msg[0] != '\0');
        return s;
    }
    FUZZ_CHECK(m->cfg.hidden >= 4 && m->cfg.hidden % 4 == 0);
    /* Every parameter the network uses came from the file (at least 2 bytes each: F16/BF16). */
    FUZZ_CHECK(sd_model_param_count(m, 1) * 2 <= size);
    sd_model_free(m);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_model(data, size);
    return 0;
}
#endif
