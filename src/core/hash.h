/* FNV-1a, 64-bit: the hash of the name tables, the dataset fingerprint and the cache key. Not
 * cryptographic; stable across machines (bytes in order, no seed). */
#ifndef SD_CORE_HASH_H
#define SD_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SD_FNV1A_INIT 1469598103934665603ull /* the FNV-1a 64 offset basis */

/* h advanced over n bytes (start from SD_FNV1A_INIT). */
static inline uint64_t sd_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull; /* the FNV-1a 64 prime */
    return h;
}

/* h advanced over the bytes of a NUL-terminated string (the NUL not included). */
static inline uint64_t sd_fnv1a_str(uint64_t h, const char *s) {
    for (; *s; s++) h = sd_fnv1a(h, s, 1);
    return h;
}

#endif
