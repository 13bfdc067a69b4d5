/* GGUF v3 reader: validate the whole header from the file, then map the file. See gguf.h. */
#include "io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "io/file.h"
#include "io/half.h"

/* Bounds on what a header may declare. Real models: a few hundred tensors, ~30 keys, a 32k-150k
 * entry vocabulary; the bounds are far above that and far below what could exhaust memory. */
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_STRING (1u << 24)   /* one string value: 16 MiB */
#define GGUF_MAX_KEY 65535u          /* key length, as the spec says */
#define GGUF_MAX_NAME 255u           /* tensor name length */
#define GGUF_MAX_ALIGNMENT (1u << 20)
#define GGUF_DEFAULT_ALIGNMENT 32u

struct sd_gguf {
    char *path;
    uint32_t version;
    size_t alignment;
    size_t n_kv, n_tensors;
    sd_gguf_kv *kv;               /* [n_kv] */
    sd_gguf_tensor *tensors;      /* [n_tensors] */
    size_t *tensor_by_name;       /* [n_tensors] indices sorted by name */
    size_t *kv_by_key;            /* [n_kv] indices sorted by key */
    void *map;
    size_t map_size;
};

/* ---- bounded reading ---------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    uint64_t pos, size;
    const char *path;
    sd_error *err;
} reader;

static sd_status rd_bytes(reader *r, void *dst, uint64_t n, const char *what) {
    if (n > r->size - r->pos)
        return sd_fail(r->err, SD_E_FORMAT,
                       "%s: truncated: %s needs %llu bytes at offset %llu, file has %llu", r->path,
                       what, (unsigned long long)n, (unsigned long long)r->pos,
                       (unsigned long long)r->size);
    if (n && fread(dst, 1, (size_t)n, r->f) != n)
        return sd_fail(r->err, SD_E_IO, "%s: read failed at offset %llu: %s", r->path,
                       (unsigned long long)r->pos, strerror(errno));
    r->pos += n;
    return SD_OK;
}

static sd_status rd_u32(reader *r, uint32_t *v, const char *what) {
    unsigned char b[4];
    sd_status s = rd_bytes(r, b, 4, what);
    if (s) return s;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return SD_OK;
}

static sd_status rd_u64(reader *r, uint64_t *v, const char *what) {
    uint32_t lo, hi;
    sd_status s = rd_u32(r, &lo, what);
    if (!s) s = rd_u32(r, &hi, what);
    if (s) return s;
    *v = (uint64_t)hi << 32 | lo;
    return SD_OK;
}

static uint64_t remaining(const reader *r) { return r->size - r->pos; }

/* Reads a GGUF string (u64 length + bytes) into a fresh NUL-terminated buffer. */
static sd_status rd_string(reader *r, uint64_t max_len, char **out, uint64_t *len_out,
                           const char *what) {
    uint64_t len;
    sd_status s = rd_u64(r, &len, what);
    if (s) return s;
    if (len > max_len)
        return sd_fail(r->err, SD_E_FORMAT, "%s: %s length %llu exceeds the limit %llu", r->path,
                       what, (unsigned long long)len, (unsigned long long)max_len);
    if (len > remaining(r))
        return sd_fail(r->err, SD_E_FORMAT,
                       "%s: truncated: %s of %llu bytes at offset %llu, file has %llu", r->path,
                       what, (unsigned long long)len, (unsigned long long)r->pos,
                       (unsigned long long)r->size);
    char *buf = malloc((size_t)len + 1);
    if (!buf) return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory reading %s", r->path, what);
    s = rd_bytes(r, buf, len, what);
    if (s) {
        free(buf);
        return s;
    }
    buf[len] = 0;
    *out = buf;
    if (len_out) *len_out = len;
    return SD_OK;
}

/* Size in bytes of a scalar value type; 0 for STRING/ARRAY/unknown. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case SD_GGUF_U8: case SD_GGUF_I8: case SD_GGUF_BOOL: return 1;
    case SD_GGUF_U16: case SD_GGUF_I16: return 2;
    case SD_GGUF_U32: case SD_GGUF_I32: case SD_GGUF_F32: return 4;
    case SD_GGUF_U64: case SD_GGUF_I64: case SD_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Decodes a little-endian scalar of type t from b into kv->v. */
static int decode_scalar(uint32_t t, const unsigned char *b, sd_gguf_kv *kv) {
    uint64_t u = 0;
    size_t n = scalar_size(t);
    for (size_t i = 0; i < n; i++) u |= (uint64_t)b[i] << (8 * i);
    switch (t) {
    case SD_GGUF_U8: case SD_GGUF_U16: case SD_GGUF_U32: case SD_GGUF_U64: kv->v.u = u; break;
    case SD_GGUF_BOOL:
        if (u > 1) return -1;
        kv->v.u = u;
        break;
    case SD_GGUF_I8: kv->v.i = (int8_t)u; break;
    case SD_GGUF_I16: kv->v.i = (int16_t)u; break;
    case SD_GGUF_I32: kv->v.i = (int32_t)(uint32_t)u; break;
    case SD_GGUF_I64: memcpy(&kv->v.i, &u, 8); break;
    case SD_GGUF_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        kv->v.f = f;
        break;
    }
    case SD_GGUF_F64: memcpy(&kv->v.f, &u, 8); break;
    default: return -1;
    }
    return 0;
}

static sd_status read_kv(reader *r, sd_gguf_kv *kv) {
    char *key = NULL;
    sd_status s = rd_string(r, GGUF_MAX_KEY, &key, NULL, "key");
    if (s) return s;
    kv->key = key;
    uint32_t t;
    if ((s = rd_u32(r, &t, "value type"))) return s;
    if (t > SD_GGUF_F64)
        return sd_fail(r->err, SD_E_FORMAT, "%s: key '%s' has unknown value type %u", r->path, key,
                       t);
    kv->type = (sd_gguf_vtype)t;
    if (t == SD_GGUF_STRING) {
        char *str;
        uint64_t len;
        if ((s = rd_string(r, GGUF_MAX_STRING, &str, &len, "string value"))) return s;
        kv->str = str;
        kv->str_len = (size_t)len;
        return SD_OK;
    }
    if (t != SD_GGUF_ARRAY) {
        unsigned char b[8];
        if ((s = rd_bytes(r, b, scalar_size(t), "value"))) return s;
        if (decode_scalar(t, b, kv))
            return sd_fail(r->err, SD_E_FORMAT, "%s: key '%s': bad bool value", r->path, key);
        return SD_OK;
    }
    uint32_t at;
    uint64_t n;
    if ((s = rd_u32(r, &at, "array type")) || (s = rd_u64(r, &n, "array length"))) return s;
    if (at > SD_GGUF_F64 || at == SD_GGUF_ARRAY)
        return sd_fail(r->err, SD_E_FORMAT, "%s: key '%s': unsupported array element type %u",
                       r->path, key, at);
    kv->arr_type = (sd_gguf_vtype)at;
    /* Every element takes at least min_size bytes of the file: bounds n before any allocation. */
    uint64_t min_size = at == SD_GGUF_STRING ? 8 : scalar_size(at);
    if (n > remaining(r) / min_size)
        return sd_fail(r->err, SD_E_FORMAT,
                       "%s: key '%s': array of %llu elements does not fit in the file", r->path,
                       key, (unsigned long long)n);
    kv->arr_n = n;
    if (at != SD_GGUF_STRING) {
        size_t bytes = (size_t)(n * min_size);
        void *buf = malloc(bytes ? bytes : 1);
        if (!buf) return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory (key '%s')", r->path, key);
        kv->arr = buf;
        if ((s = rd_bytes(r, buf, bytes, "array"))) return s;
        if (at == SD_GGUF_BOOL)
            for (size_t i = 0; i < bytes; i++)
                if (((unsigned char *)buf)[i] > 1)
                    return sd_fail(r->err, SD_E_FORMAT, "%s: key '%s': bad bool value", r->path,
                                   key);
        return SD_OK;
    }
    char **strs = calloc((size_t)n ? (size_t)n : 1, sizeof *strs);
    uint32_t *lens = calloc((size_t)n ? (size_t)n : 1, sizeof *lens);
    kv->arr_str = (const char *const *)strs;
    kv->arr_str_len = lens;
    if (!strs || !lens) return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory (key '%s')", r->path, key);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if ((s = rd_string(r, GGUF_MAX_STRING, &strs[i], &len, "array string"))) return s;
        if (len > UINT32_MAX) return sd_fail(r->err, SD_E_FORMAT, "%s: string too long", r->path);
        lens[i] = (uint32_t)len;
    }
    return SD_OK;
}

static void free_kv(sd_gguf_kv *kv) {
    free((void *)kv->key);
    free((void *)kv->str);
    free((void *)kv->arr);
    if (kv->arr_str)
        for (uint64_t i = 0; i < kv->arr_n; i++) free((void *)kv->arr_str[i]);
    free((void *)kv->arr_str);
    free((void *)kv->arr_str_len);
}

/* ---- types ---------------------------------------------------------------------------------- */

const char *sd_ggml_type_name(sd_ggml_type type) {
    switch (type) {
    case SD_GGML_F32: return "F32";
    case SD_GGML_F16: return "F16";
    case SD_GGML_Q4_0: return "Q4_0";
    case SD_GGML_Q8_0: return "Q8_0";
    }
    return "?";
}

size_t sd_ggml_row_size(sd_ggml_type type, int64_t n) {
    if (n < 0) return 0;
    size_t un = (size_t)n, out;
    switch (type) {
    case SD_GGML_F32: return sd_mul_size(un, 4, &out) ? out : 0;
    case SD_GGML_F16: return sd_mul_size(un, 2, &out) ? out : 0;
    case SD_GGML_Q4_0:
        if (un % SD_GGML_QK) return 0;
        return sd_mul_size(un / SD_GGML_QK, 2 + SD_GGML_QK / 2, &out) ? out : 0;
    case SD_GGML_Q8_0:
        if (un % SD_GGML_QK) return 0;
        return sd_mul_size(un / SD_GGML_QK, 2 + SD_GGML_QK, &out) ? out : 0;
    }
    return 0;
}

static uint16_t load_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

void sd_ggml_to_f32(sd_ggml_type type, const void *src, float *dst, int64_t n) {
    const unsigned char *p = src;
    switch (type) {
    case SD_GGML_F32: memcpy(dst, src, (size_t)n * 4); break;
    case SD_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = sd_f16_to_f32(load_u16(p + 2 * i));
        break;
    case SD_GGML_Q8_0:
        for (int64_t b = 0; b < n / SD_GGML_QK; b++, p += 2 + SD_GGML_QK) {
            float d = sd_f16_to_f32(load_u16(p));
            const int8_t *q = (const int8_t *)(p + 2);
            for (int j = 0; j < SD_GGML_QK; j++) dst[b * SD_GGML_QK + j] = (float)q[j] * d;
        }
        break;
    case SD_GGML_Q4_0:
        for (int64_t b = 0; b < n / SD_GGML_QK; b++, p += 2 + SD_GGML_QK / 2) {
            float d = sd_f16_to_f32(load_u16(p));
            const unsigned char *q = p + 2;
            for (int j = 0; j < SD_GGML_QK / 2; j++) {
                dst[b * SD_GGML_QK + j] = (float)((q[j] & 0x0F) - 8) * d;
                dst[b * SD_GGML_QK + j + SD_GGML_QK / 2] = (float)((q[j] >> 4) - 8) * d;
            }
        }
        break;
    }
}

static int known_type(uint32_t t) {
    return t == SD_GGML_F32 || t == SD_GGML_F16 || t == SD_GGML_Q4_0 || t == SD_GGML_Q8_0;
}

/* ---- tensor infos --------------------------------------------------------------------------- */

static sd_status read_tensor_info(reader *r, sd_gguf_tensor *t, size_t index) {
    char *name;
    sd_status s = rd_string(r, GGUF_MAX_NAME, &name, NULL, "tensor name");
    if (s) return s;
    t->name = name;
    uint32_t nd, type;
    if ((s = rd_u32(r, &nd, "n_dims"))) return s;
    if (nd < 1 || nd > SD_GGUF_MAX_DIMS)
        return sd_fail(r->err, SD_E_FORMAT, "%s: tensor %zu '%s' has %u dims (1..%d allowed)",
                       r->path, index, name, nd, SD_GGUF_MAX_DIMS);
    t->n_dims = nd;
    int64_t numel = 1;
    for (int d = 0; d < SD_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if ((s = rd_u64(r, &ne, "tensor dim"))) return s;
        if (ne < 1 || ne > (uint64_t)INT64_MAX / (uint64_t)numel)
            return sd_fail(r->err, SD_E_FORMAT, "%s: tensor '%s' dim %u = %llu is zero or overflows",
                           r->path, name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        numel *= (int64_t)ne;
    }
    if ((s = rd_u32(r, &type, "tensor type"))) return s;
    if (!known_type(type))
        return sd_fail(r->err, SD_E_UNSUPPORTED,
                       "%s: tensor '%s' has unsupported type %u (supported: F32=0, F16=1, Q4_0=2, "
                       "Q8_0=8)",
                       r->path, name, type);
    t->type = (sd_ggml_type)type;
    if ((t->type == SD_GGML_Q4_0 || t->type == SD_GGML_Q8_0) && t->ne[0] % SD_GGML_QK)
        return sd_fail(r->err, SD_E_FORMAT, "%s: tensor '%s' of type %s has row length %lld, not a "
                       "multiple of %d", r->path, name, sd_ggml_type_name(t->type),
                       (long long)t->ne[0], SD_GGML_QK);
    size_t row = sd_ggml_row_size(t->type, t->ne[0]), nbytes;
    if (!row || !sd_mul_size(row, (size_t)(numel / t->ne[0]), &nbytes))
        return sd_fail(r->err, SD_E_FORMAT, "%s: tensor '%s' size overflows", r->path, name);
    t->nbytes = nbytes;
    return rd_u64(r, &t->offset, "tensor offset");
}

/* qsort has no context argument: sort (key, index) pairs instead of bare indices. */
typedef struct {
    const char *name;
    uint64_t offset;
    size_t index;
} sort_item;

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const sort_item *)a)->name, ((const sort_item *)b)->name);
}
static int cmp_offset(const void *a, const void *b) {
    uint64_t x = ((const sort_item *)a)->offset, y = ((const sort_item *)b)->offset;
    return x < y ? -1 : x > y;
}

/* idx[k] = index of the k-th item in the order of cmp; items[i] filled by the caller. */
static void sorted_index(sort_item *items, size_t *idx, size_t n,
                         int (*cmp)(const void *, const void *)) {
    if (n > 1) qsort(items, n, sizeof *items, cmp);
    for (size_t k = 0; k < n; k++) idx[k] = items[k].index;
}

/* sorted_index by name; returns a name that appears twice (pointing into the caller's strings), or
 * NULL. */
static const char *index_by_name(sort_item *items, size_t *idx, size_t n) {
    sorted_index(items, idx, n, cmp_name);
    for (size_t k = 1; k < n; k++)
        if (!strcmp(items[k].name, items[k - 1].name)) return items[k].name;
    return NULL;
}

/* ---- open ----------------------------------------------------------------------------------- */

static sd_status parse(sd_gguf *g, reader *r) {
    sd_status s;
    char magic[4];
    if ((s = rd_bytes(r, magic, 4, "magic"))) return s;
    if (memcmp(magic, "GGUF", 4))
        return sd_fail(r->err, SD_E_FORMAT, "%s: not a GGUF file (bad magic)", r->path);
    if ((s = rd_u32(r, &g->version, "version"))) return s;
    if (g->version != 3)
        return sd_fail(r->err, g->version == 2 ? SD_E_UNSUPPORTED : SD_E_FORMAT,
                       "%s: GGUF version %u is not supported (need 3)", r->path, g->version);
    uint64_t nt, nkv;
    if ((s = rd_u64(r, &nt, "tensor count")) || (s = rd_u64(r, &nkv, "kv count"))) return s;
    /* A tensor info takes >= 32 bytes (empty name, 1 dim) and a kv >= 13 (empty key, u8). */
    if (nt > GGUF_MAX_TENSORS || nt > remaining(r) / 32)
        return sd_fail(r->err, SD_E_FORMAT, "%s: tensor count %llu is impossible for this file",
                       r->path, (unsigned long long)nt);
    if (nkv > GGUF_MAX_KV || nkv > remaining(r) / 13)
        return sd_fail(r->err, SD_E_FORMAT, "%s: key-value count %llu is impossible for this file",
                       r->path, (unsigned long long)nkv);
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    g->kv_by_key = calloc(nkv ? (size_t)nkv : 1, sizeof(size_t));
    g->tensor_by_name = calloc(nt ? (size_t)nt : 1, sizeof(size_t));
    if (!g->kv || !g->tensors || !g->kv_by_key || !g->tensor_by_name)
        return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory", r->path);

    for (size_t i = 0; i < (size_t)nkv; i++) {
        g->n_kv = i + 1; /* so close() frees the partially read pair */
        if ((s = read_kv(r, &g->kv[i]))) return s;
    }
    sort_item *kv_items = malloc((g->n_kv ? g->n_kv : 1) * sizeof *kv_items);
    if (!kv_items) return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory", r->path);
    for (size_t i = 0; i < g->n_kv; i++) kv_items[i] = (sort_item){g->kv[i].key, 0, i};
    const char *dup_key = index_by_name(kv_items, g->kv_by_key, g->n_kv);
    free(kv_items);
    if (dup_key) return sd_fail(r->err, SD_E_FORMAT, "%s: duplicate key '%s'", r->path, dup_key);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const sd_gguf_kv *al = sd_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != SD_GGUF_U32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) ||
            al->v.u > GGUF_MAX_ALIGNMENT)
            return sd_fail(r->err, SD_E_FORMAT,
                           "%s: general.alignment must be a u32 power of two <= %u", r->path,
                           GGUF_MAX_ALIGNMENT);
        g->alignment = (size_t)al->v.u;
    }

    for (size_t i = 0; i < (size_t)nt; i++) {
        g->n_tensors = i + 1;
        if ((s = read_tensor_info(r, &g->tensors[i], i))) return s;
    }
    sort_item *items = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *items);
    if (!items) return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory", r->path);
    for (size_t i = 0; i < g->n_tensors; i++) items[i] = (sort_item){g->tensors[i].name, 0, i};
    const char *dup_name = index_by_name(items, g->tensor_by_name, g->n_tensors);
    if (dup_name) {
        free(items);
        return sd_fail(r->err, SD_E_FORMAT, "%s: duplicate tensor name '%s'", r->path, dup_name);
    }

    /* Data section: starts at the header end rounded up to the alignment. */
    uint64_t data_start = (r->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && data_start > r->size) {
        free(items);
        return sd_fail(r->err, SD_E_FORMAT, "%s: truncated: no data section after the header",
                       r->path);
    }
    uint64_t data_size = data_start <= r->size ? r->size - data_start : 0;
    size_t *by_off = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *by_off);
    if (!by_off) {
        free(items);
        return sd_fail(r->err, SD_E_NOMEM, "%s: out of memory", r->path);
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        items[i] = (sort_item){g->tensors[i].name, g->tensors[i].offset, i};
    sorted_index(items, by_off, g->n_tensors, cmp_offset);
    free(items);
    for (size_t k = 0; k < g->n_tensors; k++) {
        const sd_gguf_tensor *t = &g->tensors[by_off[k]];
        if (t->offset % g->alignment) {
            s = sd_fail(r->err, SD_E_FORMAT, "%s: tensor '%s' offset %llu is not a multiple of the "
                        "alignment %zu", r->path, t->name, (unsigned long long)t->offset,
                        g->alignment);
            break;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            s = sd_fail(r->err, SD_E_FORMAT, "%s: tensor '%s' (%zu bytes at data offset %llu) runs "
                        "past the end of the file (data section %llu bytes)", r->path, t->name,
                        t->nbytes, (unsigned long long)t->offset, (unsigned long long)data_size);
            break;
        }
        if (k > 0) {
            const sd_gguf_tensor *p = &g->tensors[by_off[k - 1]];
            if (p->offset + p->nbytes > t->offset) {
                s = sd_fail(r->err, SD_E_FORMAT, "%s: tensors '%s' and '%s' overlap", r->path,
                            p->name, t->name);
                break;
            }
        }
    }
    free(by_off);
    if (s) return s;

    /* Checked: map the file and point the tensors into it. */
    if (g->n_tensors) {
        if (r->size > SIZE_MAX) return sd_fail(r->err, SD_E_NOMEM, "%s: file too large", r->path);
        g->map_size = (size_t)r->size;
        g->map = mmap(NULL, g->map_size, PROT_READ, MAP_PRIVATE, fileno(r->f), 0);
        if (g->map == MAP_FAILED) {
            g->map = NULL;
            return sd_fail(r->err, SD_E_IO, "%s: mmap failed: %s", r->path, strerror(errno));
        }
        for (size_t i = 0; i < g->n_tensors; i++)
            g->tensors[i].data = (const char *)g->map + data_start + g->tensors[i].offset;
    }
    return SD_OK;
}

sd_status sd_gguf_open(const char *path, sd_gguf **out, sd_error *err) {
    if (!out) return sd_fail(err, SD_E_ARG, "sd_gguf_open: NULL output");
    *out = NULL;
    if (!path) return sd_fail(err, SD_E_ARG, "sd_gguf_open: NULL path");
    FILE *f;
    struct stat st;
    sd_status so = sd_file_fopen(path, &f, &st, err);
    if (so) return so;
    sd_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        fclose(f);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    }
    reader r = {f, 0, (uint64_t)st.st_size, path, err};
    sd_status s = parse(g, &r);
    fclose(f);
    if (s) {
        sd_gguf_close(g);
        return s;
    }
    *out = g;
    return SD_OK;
}

void sd_gguf_close(sd_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->map_size);
    for (size_t i = 0; i < g->n_kv; i++) free_kv(&g->kv[i]);
    for (size_t i = 0; i < g->n_tensors; i++) free((void *)g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    free(g->path);
    free(g);
}

/* ---- queries -------------------------------------------------------------------------------- */

uint32_t sd_gguf_version(const sd_gguf *g) { return g->version; }
size_t sd_gguf_alignment(const sd_gguf *g) { return g->alignment; }
const char *sd_gguf_path(const sd_gguf *g) { return g->path; }
size_t sd_gguf_kv_count(const sd_gguf *g) { return g->n_kv; }
const sd_gguf_kv *sd_gguf_kv_at(const sd_gguf *g, size_t i) {
    return i < g->n_kv ? &g->kv[i] : NULL;
}
size_t sd_gguf_tensor_count(const sd_gguf *g) { return g->n_tensors; }
const sd_gguf_tensor *sd_gguf_tensor_at(const sd_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const sd_gguf_kv *sd_gguf_find_kv(const sd_gguf *g, const char *key) {
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv[g->kv_by_key[mid]].key, key);
        if (!c) return &g->kv[g->kv_by_key[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const sd_gguf_tensor *sd_gguf_find_tensor(const sd_gguf *g, const char *name) {
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->tensors[g->tensor_by_name[mid]].name, name);
        if (!c) return &g->tensors[g->tensor_by_name[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

int64_t sd_gguf_tensor_numel(const sd_gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

static int is_int_type(sd_gguf_vtype t) {
    return t == SD_GGUF_U8 || t == SD_GGUF_U16 || t == SD_GGUF_U32 || t == SD_GGUF_U64 ||
           t == SD_GGUF_BOOL;
}
static int is_sint_type(sd_gguf_vtype t) {
    return t == SD_GGUF_I8 || t == SD_GGUF_I16 || t == SD_GGUF_I32 || t == SD_GGUF_I64;
}

static sd_status get_u32(const sd_gguf *g, const sd_gguf_kv *kv, const char *key, uint32_t *out,
                         sd_error *err) {
    if (is_int_type(kv->type) && kv->v.u <= UINT32_MAX) {
        *out = (uint32_t)kv->v.u;
        return SD_OK;
    }
    if (is_sint_type(kv->type) && kv->v.i >= 0 && kv->v.i <= (int64_t)UINT32_MAX) {
        *out = (uint32_t)kv->v.i;
        return SD_OK;
    }
    return sd_fail(err, SD_E_FORMAT, "%s: key '%s' is not an unsigned 32-bit integer", g->path, key);
}

sd_status sd_gguf_get_u32(const sd_gguf *g, const char *key, uint32_t *out, sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) return sd_fail(err, SD_E_FORMAT, "%s: missing key '%s'", g->path, key);
    return get_u32(g, kv, key, out, err);
}

sd_status sd_gguf_get_u32_or(const sd_gguf *g, const char *key, uint32_t def, uint32_t *out,
                             sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return SD_OK;
    }
    return get_u32(g, kv, key, out, err);
}

static sd_status get_f32(const sd_gguf *g, const sd_gguf_kv *kv, const char *key, float *out,
                         sd_error *err) {
    if (kv->type == SD_GGUF_F32 || kv->type == SD_GGUF_F64) *out = (float)kv->v.f;
    else if (is_int_type(kv->type)) *out = (float)kv->v.u;
    else if (is_sint_type(kv->type)) *out = (float)kv->v.i;
    else return sd_fail(err, SD_E_FORMAT, "%s: key '%s' is not a number", g->path, key);
    return SD_OK;
}

sd_status sd_gguf_get_f32(const sd_gguf *g, const char *key, float *out, sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) return sd_fail(err, SD_E_FORMAT, "%s: missing key '%s'", g->path, key);
    return get_f32(g, kv, key, out, err);
}

sd_status sd_gguf_get_f32_or(const sd_gguf *g, const char *key, float def, float *out,
                             sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return SD_OK;
    }
    return get_f32(g, kv, key, out, err);
}

sd_status sd_gguf_get_str(const sd_gguf *g, const char *key, const char **out, sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) return sd_fail(err, SD_E_FORMAT, "%s: missing key '%s'", g->path, key);
    if (kv->type != SD_GGUF_STRING)
        return sd_fail(err, SD_E_FORMAT, "%s: key '%s' is not a string", g->path, key);
    *out = kv->str;
    return SD_OK;
}
