/* Aligned allocation (64-byte: one cache line, a full AVX-512 vector). */
#ifndef SD_CORE_ALLOC_H
#define SD_CORE_ALLOC_H

#include <stddef.h>

#define SD_ALIGN 64

/* Returns NULL on failure or when bytes == 0 would overflow the rounding. Free with sd_free. */
void *sd_alloc(size_t bytes);
/* Same, zero-filled. */
void *sd_calloc(size_t count, size_t size);
void sd_free(void *p);

/* a * b, or SIZE_MAX-saturating failure: returns 0 and leaves *out untouched on overflow. */
int sd_mul_size(size_t a, size_t b, size_t *out);
int sd_add_size(size_t a, size_t b, size_t *out);

#endif
