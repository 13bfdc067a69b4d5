/* .npy from memory (sd_npy_parse) and from a file (sd_npy_read_header + sd_npy_read): both must
 * agree on accepting the input and on every value. */
#include "core/alloc.h"
#include "fuzz_util.h"
#include "io/npy.h"

static int fuzz_npy(const uint8_t *data, size_t size) {
    sd_npy_header h, hf;
    sd_error err, errf;
    sd_error_clear(&err);
    sd_error_clear(&errf);
    float *x = NULL, *xf = NULL;
    sd_status s = sd_npy_parse(data, size, &h, &x, &err);
    if (s) FUZZ_CHECK(err.msg[0] != '\0'); /* every rejection says why */
    const char *path = fuzz_write("in.npy", data, size);
    sd_status sf = sd_npy_read(path, &hf, &xf, &errf);
    FUZZ_CHECK((s == SD_OK) == (sf == SD_OK));
    if (!s) {
        FUZZ_CHECK(h.ndim == 1 || h.ndim == 2);
        FUZZ_CHECK(h.rows >= 0 && h.cols >= 0);
        FUZZ_CHECK(h.data_offset + sd_npy_data_bytes(&h) == size);
        FUZZ_CHECK(hf.rows == h.rows && hf.cols == h.cols && hf.dtype == h.dtype);
        size_t n = (size_t)h.rows * (size_t)h.cols;
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(fuzz_same_float(x[i], xf[i]));
        /* sd_npy_read_header + sd_npy_read_into: the path the dataset reader takes. */
        sd_npy_header h2;
        FUZZ_CHECK(sd_npy_read_header(path, &h2, &errf) == SD_OK);
        float *y = sd_alloc((n ? n : 1) * sizeof *y);
        FUZZ_CHECK(y != NULL);
        FUZZ_CHECK(sd_npy_read_into(path, &h2, y, &errf) == SD_OK);
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(fuzz_same_float(x[i], y[i]));
        sd_free(y);
    }
    sd_free(x);
    sd_free(xf);
    return s;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_npy(data, size);
    return 0;
}
#endif
