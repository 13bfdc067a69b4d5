/* Public API: feature files. sdumc_features_load_npy is the project's .npy reader (src/io/npy.c:
 * float16/32/64, versions 1-3, every header and size check) behind the public types. */
#include <string.h>

#include "api/api_internal.h"
#include "core/alloc.h"
#include "io/npy.h"

sdumc_status sdumc_features_load_npy(const char *path, sdumc_features *out, sdumc_error *err) {
    if (!out) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_features_load_npy: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_features_load_npy: path is NULL");
    sd_error e;
    sd_npy_header h;
    float *data = NULL;
    sd_status st = sd_npy_read(path, &h, &data, &e);
    if (st) return sd_api_error(err, &e, st);
    out->data = data;
    out->frames = h.rows;
    out->dim = h.cols;
    sd_api_ok(err);
    return SDUMC_OK;
}

void sdumc_features_free(sdumc_features *f) {
    if (!f) return;
    sd_free((void *)(uintptr_t)f->data);
    memset(f, 0, sizeof *f);
}
