/* 64-byte aligned allocation and overflow-checked size arithmetic. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *sd_alloc(size_t bytes) {
    if (bytes == 0) bytes = SD_ALIGN;
    size_t rounded;
    if (!sd_add_size(bytes, SD_ALIGN - 1, &rounded)) return NULL;
    rounded -= rounded % SD_ALIGN;
    return aligned_alloc(SD_ALIGN, rounded);
}

void *sd_calloc(size_t count, size_t size) {
    size_t bytes;
    if (!sd_mul_size(count, size, &bytes)) return NULL;
    void *p = sd_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void sd_free(void *p) { free(p); }

int sd_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int sd_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}
