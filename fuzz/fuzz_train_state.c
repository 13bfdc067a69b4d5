/* Training state files (sd_train_state_load): safetensors with the flat parameter and Adam
 * buffers, the model configuration and the JSON history in the metadata. */
#include "fuzz_util.h"
#include "train/checkpoint.h"

static int fuzz_train_state(const uint8_t *data, size_t size) {
    sd_train_state s;
    sd_error err;
    sd_error_clear(&err);
    sd_status r = sd_train_state_load(fuzz_write("run.state", data, size), &s, &err);
    if (r) {
        FUZZ_CHECK(s.model == NULL && err.msg[0] != '\0');
        return r;
    }
    FUZZ_CHECK(s.n_history == s.next_epoch && s.n_history >= 0);
    FUZZ_CHECK(4 * s.model->table.total * 2 <= size); /* 4 flat buffers, >= 2 bytes a value */
    sd_train_state_release(&s);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_train_state(data, size);
    return 0;
}
#endif
