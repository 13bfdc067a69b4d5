/* FNV-1a, 64-bit: the hash of the name tables, the dataset fingerprint and the cache key. Not
 * cryptographic; stable across machines (bytes in order, no seed). */
#ifndef SD_CORE_HASH_H
#define SD_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The start of the name tables', the dataset fingerprint's and the cache key's hashes. It is the
 * FNV-1a 64 offset basis, 14695981039346656037, with its last digit lost; kept as it is because
 * fingerprints in training states and cache keys on disk depend on it (any start hashes as well). */
#define SD_FNV1A_INIT 1469598103934665603ull
/* The FNV-1a 64 offset basis itself (0xcbf29ce484222325): the robustness streams start from it. */
#define SD_FNV1A_BASIS 0xcbf29ce484222325ull

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
