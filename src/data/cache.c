/* The packed, memory-mapped feature cache (layout in cache.h). Legend: N utterances, M = 4
 * modalities, T frames, D dim, E bytes per element. */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/interrupt.h"
#include "dataset_internal.h"
#include "io/atomic_file.h"
#include "io/file.h"
#include "io/half.h"

#define CACHE_MAGIC "SDUMCPK1"
#define CACHE_VERSION 1u
#define CACHE_HEADER_BYTES 72
#define CACHE_ENTRY_BYTES 32
#define CACHE_ALIGN 64

typedef struct {
    uint64_t offset;
    int64_t frames, src_size, src_mtime_ns;
} entry_t;

struct sd_cache {
    const sd_dataset *ds;
    char *path;
    sd_dtype dtype;
    entry_t *index;  /* [N, M] */
    const unsigned char *map;
    size_t map_size;
};

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t fnv(uint64_t h, const char *s) {
    static const unsigned char separator = 0xff; /* so "ab","c" != "a","bc" */
    return sd_fnv1a(sd_fnv1a_str(h, s), &separator, 1);
}

/* What the cache is a cache of: folder names (and whether SIM is present) and the names in order. */
static uint64_t dataset_key(const sd_dataset *ds) {
    uint64_t h = SD_FNV1A_INIT;
    for (int m = 0; m < SD_MOD_COUNT; m++) h = fnv(h, ds->folder[m]);
    h = fnv(h, ds->has_sim ? "sim" : "nosim");
    for (int64_t i = 0; i < ds->n; i++) h = fnv(h, ds->utt[i].name);
    return h;
}

static unsigned present_mods(const sd_dataset *ds) {
    return ds->has_sim ? 0xfu : 0x7u;
}

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + (int64_t)st->st_mtim.tv_nsec;
}

static void header_bytes(const sd_dataset *ds, sd_dtype dtype, uint64_t data_start,
                         uint64_t file_size, unsigned char h[CACHE_HEADER_BYTES]) {
    memset(h, 0, CACHE_HEADER_BYTES);
    memcpy(h, CACHE_MAGIC, 8);
    put_u32(h + 8, CACHE_VERSION);
    put_u32(h + 12, (uint32_t)dtype);
    put_u32(h + 16, present_mods(ds));
    for (int m = 0; m < SD_MOD_COUNT; m++) put_u32(h + 24 + 4 * m, (uint32_t)ds->dim[m]);
    put_u64(h + 40, (uint64_t)ds->n);
    put_u64(h + 48, dataset_key(ds));
    put_u64(h + 56, data_start);
    put_u64(h + 64, file_size);
}

/* Reads and checks header and index against ds; fills index [N, M]. SD_E_FORMAT "stale: why". */
static sd_status load_index(const sd_dataset *ds, const char *path, sd_dtype dtype, entry_t *index,
                            uint64_t *file_size, sd_error *err) {
    int fd;
    struct stat st;
    sd_status so = sd_file_open(path, &fd, NULL, err);
    if (so) return so;
    size_t nindex = (size_t)ds->n * SD_MOD_COUNT * CACHE_ENTRY_BYTES;
    unsigned char *buf = malloc(CACHE_HEADER_BYTES + nindex);
    sd_status s = SD_OK;
    if (!buf) s = sd_fail(err, SD_E_NOMEM, "out of memory");
    else if (fstat(fd, &st) != 0) s = sd_fail(err, SD_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if ((uint64_t)st.st_size < CACHE_HEADER_BYTES + nindex ||
             pread(fd, buf, CACHE_HEADER_BYTES + nindex, 0) != (ssize_t)(CACHE_HEADER_BYTES + nindex))
        s = sd_fail(err, SD_E_FORMAT, "%s: stale: shorter than its index", path);
    close(fd);
    if (s) {
        free(buf);
        return s;
    }
    uint64_t data_start = get_u64(buf + 56), size = get_u64(buf + 64);
    unsigned char want[CACHE_HEADER_BYTES];
    header_bytes(ds, dtype, data_start, size, want);
    if (memcmp(buf, want, CACHE_HEADER_BYTES) != 0 || size != (uint64_t)st.st_size ||
        data_start < CACHE_HEADER_BYTES + nindex) {
        free(buf);
        return sd_fail(err, SD_E_FORMAT,
                       "%s: stale: built for another dataset, folder set, dtype or version", path);
    }
    size_t esize = sd_dtype_size(dtype);
    for (int64_t i = 0; i < ds->n && !s; i++)
        for (int m = 0; m < SD_MOD_COUNT && !s; m++) {
            const unsigned char *p = buf + CACHE_HEADER_BYTES + ((size_t)i * SD_MOD_COUNT + (size_t)m) * CACHE_ENTRY_BYTES;
            entry_t *e = &index[i * SD_MOD_COUNT + m];
            e->offset = get_u64(p);
            e->frames = (int64_t)get_u64(p + 8);
            e->src_size = (int64_t)get_u64(p + 16);
            e->src_mtime_ns = (int64_t)get_u64(p + 24);
            if (e->frames != ds->utt[i].frames[m]) {
                s = sd_fail(err, SD_E_FORMAT, "%s: stale: %s of '%s' has %lld frames, the cache %lld",
                            path, sd_modality_name(m), ds->utt[i].name,
                            (long long)ds->utt[i].frames[m], (long long)e->frames);
                break;
            }
            uint64_t bytes = (uint64_t)e->frames * (uint64_t)ds->dim[m] * esize;
            if (e->offset < data_start || e->offset > size || bytes > size - e->offset) {
                s = sd_fail(err, SD_E_FORMAT, "%s: corrupt index entry for '%s'", path, ds->utt[i].name);
                break;
            }
            if (!(present_mods(ds) & (1u << m))) continue;
            char src[4096];
            struct stat ss;
            if (sd_dataset_utt_path(ds, i, m, src, sizeof src) || stat(src, &ss) != 0) {
                s = sd_fail(err, SD_E_FORMAT, "%s: stale: cannot stat its source %s", path, src);
            } else if ((int64_t)ss.st_size != e->src_size || mtime_ns(&ss) != e->src_mtime_ns) {
                s = sd_fail(err, SD_E_FORMAT, "%s: stale: %s changed (size or mtime) since the cache was built",
                            path, src);
            }
        }
    free(buf);
    if (!s) *file_size = size;
    return s;
}

int sd_cache_is_current(const sd_dataset *ds, const char *path, sd_dtype dtype, sd_error *err) {
    if (dtype != SD_DTYPE_F32 && dtype != SD_DTYPE_F16) {
        sd_fail(err, SD_E_ARG, "cache dtype must be float32 or float16");
        return 0;
    }
    entry_t *index = calloc((size_t)ds->n * SD_MOD_COUNT + 1, sizeof *index);
    if (!index) {
        sd_fail(err, SD_E_NOMEM, "out of memory");
        return 0;
    }
    uint64_t size;
    sd_status s = load_index(ds, path, dtype, index, &size, err);
    free(index);
    return s == SD_OK;
}

static uint64_t align_up(uint64_t x) { return (x + CACHE_ALIGN - 1) & ~(uint64_t)(CACHE_ALIGN - 1); }

/* Whether a cache may be (re)built at path: SD_E_FORMAT when nothing is there or it is a cache
 * (it starts with the magic); an error for anything else, which is never replaced. */
static sd_status may_replace(const char *path, sd_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) return SD_E_FORMAT;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return sd_fail(err, SD_E_ARG, "%s: exists and is %s, not an sdumc feature cache; it is left as it is",
                       path, sd_file_kind(&st));
    int fd;
    sd_error e;
    if (sd_file_open(path, &fd, &st, &e))
        return sd_fail(err, SD_E_ARG, "%s: exists and cannot be read as an sdumc feature cache (%s); it is left "
                       "as it is", path, e.msg);
    unsigned char magic[8];
    ssize_t got = pread(fd, magic, sizeof magic, 0);
    close(fd);
    if (got != (ssize_t)sizeof magic || memcmp(magic, CACHE_MAGIC, sizeof magic))
        return sd_fail(err, SD_E_ARG, "%s: exists and is not an sdumc feature cache (it does not "
                       "start with %s); it is left as it is (choose another cache path)", path, CACHE_MAGIC);
    return SD_E_FORMAT;
}

/* Writes the cache through a temporary file renamed into place. */
static sd_status build(const sd_dataset *ds, const char *path, sd_dtype dtype, sd_error *err) {
    size_t esize = sd_dtype_size(dtype);
    size_t nindex = (size_t)ds->n * SD_MOD_COUNT;
    entry_t *index = calloc(nindex + 1, sizeof *index);
    unsigned char *ibuf = calloc(nindex * CACHE_ENTRY_BYTES + CACHE_HEADER_BYTES, 1);
    /* One utterance and modality at a time: [T_max, D] floats, then the same in dtype. */
    size_t max_floats = 0;
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        size_t f = (size_t)ds->max_frames[m] * (size_t)ds->dim[m];
        if (f > max_floats) max_floats = f;
    }
    float *frames = sd_alloc((max_floats + 1) * sizeof(float));
    uint16_t *halfs = dtype == SD_DTYPE_F16 ? sd_alloc((max_floats + 1) * sizeof(uint16_t)) : NULL;
    void *scratch = sd_alloc(SD_FEATURE_SCRATCH_BYTES);
    sd_status s = SD_OK;
    if (!index || !ibuf || !frames || !scratch || (dtype == SD_DTYPE_F16 && !halfs)) s = sd_fail(err, SD_E_NOMEM, "out of memory building %s", path);
    /* Layout first: offsets and source stats. */
    uint64_t off = align_up(CACHE_HEADER_BYTES + nindex * CACHE_ENTRY_BYTES), data_start = off;
    for (int64_t i = 0; i < ds->n && !s; i++)
        for (int m = 0; m < SD_MOD_COUNT && !s; m++) {
            entry_t *e = &index[i * SD_MOD_COUNT + m];
            e->frames = ds->utt[i].frames[m];
            e->offset = off;
            off = align_up(off + (uint64_t)e->frames * (uint64_t)ds->dim[m] * esize);
            if (!(present_mods(ds) & (1u << m))) continue;
            char src[4096];
            struct stat ss;
            if (sd_dataset_utt_path(ds, i, m, src, sizeof src) || stat(src, &ss) != 0) {
                s = sd_fail(err, SD_E_IO, "%s: cannot stat: %s", src, strerror(errno));
                break;
            }
            e->src_size = (int64_t)ss.st_size;
            e->src_mtime_ns = mtime_ns(&ss);
        }
    sd_atomic_file af;
    memset(&af, 0, sizeof af);
    if (!s) s = sd_atomic_open(&af, path, err);
    if (!s) {
        header_bytes(ds, dtype, data_start, off, ibuf);
        for (size_t k = 0; k < nindex; k++) {
            unsigned char *p = ibuf + CACHE_HEADER_BYTES + k * CACHE_ENTRY_BYTES;
            put_u64(p, index[k].offset);
            put_u64(p + 8, (uint64_t)index[k].frames);
            put_u64(p + 16, (uint64_t)index[k].src_size);
            put_u64(p + 24, (uint64_t)index[k].src_mtime_ns);
        }
        s = sd_atomic_write(&af, ibuf, CACHE_HEADER_BYTES + nindex * CACHE_ENTRY_BYTES, err);
    }
    uint64_t pos = CACHE_HEADER_BYTES + nindex * CACHE_ENTRY_BYTES;
    static const unsigned char zeros[CACHE_ALIGN];
    for (int64_t i = 0; i < ds->n && !s; i++)
        for (int m = 0; m < SD_MOD_COUNT && !s; m++) {
            if ((s = sd_interrupt_check(err, "while building the feature cache; nothing was written"))) break;
            const entry_t *e = &index[i * SD_MOD_COUNT + m];
            if (e->offset > pos) s = sd_atomic_write(&af, zeros, (size_t)(e->offset - pos), err);
            pos = e->offset;
            if (s || e->frames == 0) continue;
            char src[4096];
            sd_dataset_utt_path(ds, i, m, src, sizeof src);
            size_t n = (size_t)e->frames * (size_t)ds->dim[m];
            s = sd_feature_read(src, e->frames, ds->dim[m], 0, SD_CAP_TRUNCATE, ds->nonfinite_zero, frames,
                                SD_DTYPE_F32, scratch, err);
            if (s) break;
            if (dtype == SD_DTYPE_F16) {
                for (size_t j = 0; j < n; j++) halfs[j] = sd_f32_to_f16(frames[j]);
                for (size_t j = 0; j < n; j++)
                    if (!isfinite(sd_f16_to_f32(halfs[j]))) {
                        s = sd_fail(err, SD_E_NUMERIC,
                                    "%s: value %g at frame %zu does not fit float16 (build the cache in float32)",
                                    src, (double)frames[j], j / (size_t)ds->dim[m]);
                        break;
                    }
            }
            if (!s) s = sd_atomic_write(&af, dtype == SD_DTYPE_F16 ? (const void *)halfs : (const void *)frames,
                                        n * esize, err);
            pos += n * esize;
        }
    if (!s && off > pos) s = sd_atomic_write(&af, zeros, (size_t)(off - pos), err);
    if (!s) s = sd_atomic_commit(&af, err);
    else sd_atomic_abort(&af);
    free(index);
    free(ibuf);
    sd_free(frames);
    sd_free(halfs);
    sd_free(scratch);
    return s;
}

sd_status sd_cache_open(const sd_dataset *ds, const char *path, sd_dtype dtype, sd_cache **out,
                        int *built, sd_error *err) {
    if (out) *out = NULL;
    if (built) *built = 0;
    if (!ds || !path || !out) return sd_fail(err, SD_E_ARG, "sd_cache_open: NULL argument");
    if (dtype != SD_DTYPE_F32 && dtype != SD_DTYPE_F16)
        return sd_fail(err, SD_E_ARG, "cache dtype must be float32 or float16");
    sd_cache *c = calloc(1, sizeof *c);
    if (!c) return sd_fail(err, SD_E_NOMEM, "out of memory");
    c->ds = ds;
    c->dtype = dtype;
    c->path = strdup(path);
    c->index = calloc((size_t)ds->n * SD_MOD_COUNT + 1, sizeof *c->index);
    if (!c->path || !c->index) {
        sd_cache_close(c);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    uint64_t size = 0;
    sd_error why;
    sd_status s = load_index(ds, path, dtype, c->index, &size, &why);
    if (s == SD_E_NOMEM) {
        if (err) *err = why;
        sd_cache_close(c);
        return s;
    }
    if (s) s = may_replace(path, err); /* missing or stale: build (over a cache only), then load */
    if (s && s != SD_E_FORMAT) {
        sd_cache_close(c);
        return s;
    }
    if (s) {
        sd_atomic_remove_stale(path, time(NULL)); /* what a killed build left */
        s = build(ds, path, dtype, err);
        if (!s) s = load_index(ds, path, dtype, c->index, &size, err);
        if (s) {
            sd_cache_close(c);
            return s;
        }
        if (built) *built = 1;
    }
    int fd;
    if ((s = sd_file_open(path, &fd, NULL, err))) {
        sd_cache_close(c);
        return s;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        s = sd_fail(err, SD_E_IO, "%s: cannot map: %s", path, strerror(errno));
        sd_cache_close(c);
        return s;
    }
    c->map = map;
    c->map_size = (size_t)size;
    *out = c;
    return SD_OK;
}

void sd_cache_close(sd_cache *c) {
    if (!c) return;
    if (c->map) munmap((void *)c->map, c->map_size);
    free(c->path);
    free(c->index);
    free(c);
}

const sd_dataset *sd_cache_dataset(const sd_cache *c) { return c->ds; }
const char *sd_cache_path(const sd_cache *c) { return c->path; }

sd_dtype sd_cache_dtype(const sd_cache *c) { return c->dtype; }

sd_status sd_cache_read(const sd_cache *c, sd_split split, int64_t i, int m, int64_t cap,
                        sd_cap_mode mode, void *dst, sd_dtype dst_dtype, sd_error *err) {
    const sd_dataset *ds = c->ds;
    if ((int)split < 0 || (int)split >= SD_SPLIT_COUNT || i < 0 || i >= ds->count[split] || m < 0 ||
        m >= SD_MOD_COUNT)
        return sd_fail(err, SD_E_ARG, "sd_cache_read: index out of range");
    if (dst_dtype != SD_DTYPE_F32 && dst_dtype != c->dtype)
        return sd_fail(err, SD_E_ARG, "sd_cache_read: the cache holds %s, not %s", sd_dtype_name(c->dtype),
                       sd_dtype_name(dst_dtype));
    int64_t id = sd_dataset_id(ds, split, i);
    const entry_t *e = &c->index[id * SD_MOD_COUNT + m];
    size_t D = (size_t)ds->dim[m], esize = sd_dtype_size(c->dtype), dsize = sd_dtype_size(dst_dtype);
    const unsigned char *base = c->map + e->offset; /* [T, D] in the cache's dtype */
    int64_t K = sd_cap_frames(e->frames, cap);
    for (int64_t k = 0; k < K; k++) {
        int64_t t = sd_cap_frame_index(e->frames, cap, mode, k);
        const unsigned char *row = base + (size_t)t * D * esize;
        void *out = (unsigned char *)dst + (size_t)k * D * dsize;
        int64_t bad;
        if (dst_dtype == c->dtype) {
            memcpy(out, row, D * esize);
            bad = sd_feature_first_nonfinite(c->dtype, out, (int64_t)D);
        } else {
            bad = sd_feature_convert(c->dtype, row, out, (int64_t)D);
        }
        if (bad >= 0)
            return sd_fail(err, SD_E_NUMERIC, "%s: non-finite value in %s of '%s' at frame %lld, column %lld",
                           c->path, sd_modality_name(m), ds->utt[id].name, (long long)t, (long long)bad);
    }
    /* Drop the pages from this process (they stay in the page cache for the next epoch), so the
     * resident set does not grow with the part of the cache read so far. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)base + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)base + (uintptr_t)e->frames * D * esize) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    return SD_OK;
}
