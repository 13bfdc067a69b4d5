/* On-disk element types: sizes, names, and decoding/encoding little-endian values to and from
 * float32. */
#include "dtype.h"

#include <stdint.h>
#include <string.h>

#include "half.h"

size_t sd_dtype_size(sd_dtype dtype) {
    switch (dtype) {
    case SD_DTYPE_F32: return 4;
    case SD_DTYPE_F16: return 2;
    case SD_DTYPE_BF16: return 2;
    case SD_DTYPE_F64: return 8;
    }
    return 0;
}

const char *sd_dtype_name(sd_dtype dtype) {
    switch (dtype) {
    case SD_DTYPE_F32: return "F32";
    case SD_DTYPE_F16: return "F16";
    case SD_DTYPE_BF16: return "BF16";
    case SD_DTYPE_F64: return "F64";
    }
    return "?";
}

int sd_dtype_from_name(const char *name, sd_dtype *out) {
    static const sd_dtype all[] = {SD_DTYPE_F32, SD_DTYPE_F16, SD_DTYPE_BF16, SD_DTYPE_F64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, sd_dtype_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

/* Byte-wise little-endian loads and stores: correct on any host and at any alignment (compilers turn
 * them into plain moves on little-endian machines). */
static uint16_t load_le16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_le64(const unsigned char *p) {
    return (uint64_t)load_le32(p) | ((uint64_t)load_le32(p + 4) << 32);
}

static void store_le16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void store_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void store_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void sd_dtype_decode_f32(sd_dtype dtype, const void *src, size_t n, float *dst) {
    const unsigned char *s = src;
    switch (dtype) {
    case SD_DTYPE_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = load_le32(s + 4 * i);
            memcpy(&dst[i], &u, 4);
        }
        break;
    case SD_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = sd_f16_to_f32(load_le16(s + 2 * i));
        break;
    case SD_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = sd_bf16_to_f32(load_le16(s + 2 * i));
        break;
    case SD_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = load_le64(s + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
        }
        break;
    }
}

void sd_dtype_encode_f32(sd_dtype dtype, const float *src, size_t n, void *dst) {
    unsigned char *d = dst;
    switch (dtype) {
    case SD_DTYPE_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &src[i], 4);
            store_le32(d + 4 * i, u);
        }
        break;
    case SD_DTYPE_F16:
        for (size_t i = 0; i < n; i++) store_le16(d + 2 * i, sd_f32_to_f16(src[i]));
        break;
    case SD_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) store_le16(d + 2 * i, sd_f32_to_bf16(src[i]));
        break;
    case SD_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double x = src[i];
            uint64_t u;
            memcpy(&u, &x, 8);
            store_le64(d + 8 * i, u);
        }
        break;
    }
}
