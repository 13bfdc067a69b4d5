/* safetensors reader and writer. See safetensors.h. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/array.h"
#include "io/atomic_file.h"
#include "io/file.h"
#include "io/json.h"

struct sd_safetensors {
    sd_st_tensor *tensors; /* [count] in header order */
    int *by_name;          /* [count] indices sorted by name, for sd_st_find */
    int count;
    char **meta_keys, **meta_values; /* [meta_count] */
    int meta_count;
    uint8_t *data;         /* [data_size] the data section: sd_alloc'ed (64-byte aligned) when
                              owns_data, else inside `map` or the caller's buffer (sd_st_view) */
    size_t data_size;
    int owns_data;
    void *map;             /* [map_size] the whole file, mapped by sd_st_map (NULL otherwise) */
    size_t map_size;
};

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void sd_st_close(sd_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->count; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->by_name);
    free(st->meta_keys);
    free(st->meta_values);
    if (st->owns_data) sd_free(st->data);
    if (st->map) munmap(st->map, st->map_size);
    free(st);
}

/* ---------------------------------------------------------------------------------------------- */
/* Header validation */

/* dtypes the format defines but sdumc does not read */
static int is_other_known_dtype(const char *s) {
    static const char *const known[] = {"BOOL", "U8",  "I8",  "I16",     "U16",    "I32",
                                        "U32",  "I64", "U64", "F8_E5M2", "F8_E4M3"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i]) == 0) return 1;
    return 0;
}

/* A name for messages: the key (truncated), or a note that it holds odd bytes. */
static const char *shown_name(const char *s) { return strlen(s) > 200 ? "(a very long name)" : s; }

static sd_status parse_metadata(sd_safetensors *st, const sd_json *meta, sd_error *err) {
    if (meta->type != SD_JSON_OBJECT)
        return sd_fail(err, SD_E_FORMAT, "__metadata__ is not an object (found %s)",
                       sd_json_type_name(meta->type));
    if (meta->len > (size_t)INT32_MAX) return sd_fail(err, SD_E_FORMAT, "too many metadata entries");
    st->meta_keys = calloc(meta->len ? meta->len : 1, sizeof(char *));
    st->meta_values = calloc(meta->len ? meta->len : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values) return sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < meta->len; i++) {
        const sd_json *v = &meta->items[i];
        if (v->type != SD_JSON_STRING)
            return sd_fail(err, SD_E_FORMAT, "__metadata__ value of '%s' is not a string (found %s)",
                           shown_name(meta->keys[i]), sd_json_type_name(v->type));
        if (strlen(meta->keys[i]) != meta->key_lens[i] || strlen(v->str) != v->len)
            return sd_fail(err, SD_E_UNSUPPORTED, "__metadata__ entry '%s' contains a NUL character",
                           shown_name(meta->keys[i]));
        st->meta_keys[i] = dup_bytes(meta->keys[i], meta->key_lens[i]);
        st->meta_values[i] = dup_bytes(v->str, v->len);
        st->meta_count = (int)i + 1;
        if (!st->meta_keys[i] || !st->meta_values[i]) return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    return SD_OK;
}

static sd_status parse_tensor(const char *name, const sd_json *v, sd_st_tensor *t, sd_error *err) {
    const char *nm = shown_name(name);
    if (v->type != SD_JSON_OBJECT)
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': entry is not an object (found %s)", nm,
                       sd_json_type_name(v->type));
    const sd_json *dtype = sd_json_get(v, "dtype");
    const sd_json *shape = sd_json_get(v, "shape");
    const sd_json *offsets = sd_json_get(v, "data_offsets");
    if (!dtype || !shape || !offsets)
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': missing field '%s'", nm,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (dtype->type != SD_JSON_STRING)
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': dtype is not a string", nm);
    if (sd_dtype_from_name(dtype->str, &t->dtype) != 0) {
        if (is_other_known_dtype(dtype->str))
            return sd_fail(err, SD_E_UNSUPPORTED,
                           "tensor '%s': dtype %s is not supported (F32, F16, BF16, F64 are)", nm,
                           dtype->str);
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': unknown dtype '%s'", nm,
                       strlen(dtype->str) > 32 ? "(too long)" : dtype->str);
    }
    if (shape->type != SD_JSON_ARRAY)
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': shape is not an array", nm);
    if (shape->len > SD_ST_MAX_DIMS)
        return sd_fail(err, SD_E_UNSUPPORTED, "tensor '%s': %zu dimensions (at most %d supported)", nm,
                       shape->len, SD_ST_MAX_DIMS);
    t->ndim = (int)shape->len;
    size_t numel = 1;
    for (size_t d = 0; d < shape->len; d++) {
        uint64_t dim;
        if (sd_json_get_u64(&shape->items[d], &dim) != 0)
            return sd_fail(err, SD_E_FORMAT,
                           "tensor '%s': shape entry %zu is not a non-negative integer", nm, d);
        if (dim > (uint64_t)INT64_MAX || dim > SIZE_MAX || !sd_mul_size(numel, (size_t)dim, &numel))
            return sd_fail(err, SD_E_FORMAT, "tensor '%s': shape product overflows", nm);
        t->shape[d] = (int64_t)dim;
    }
    t->numel = numel;
    size_t nbytes;
    if (!sd_mul_size(numel, sd_dtype_size(t->dtype), &nbytes))
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': shape product overflows (byte size)", nm);
    uint64_t b, e;
    if (offsets->type != SD_JSON_ARRAY || offsets->len != 2 ||
        sd_json_get_u64(&offsets->items[0], &b) != 0 || sd_json_get_u64(&offsets->items[1], &e) != 0)
        return sd_fail(err, SD_E_FORMAT,
                       "tensor '%s': data_offsets is not [begin, end] of non-negative integers", nm);
    if (b > SIZE_MAX || e > SIZE_MAX || e < b)
        return sd_fail(err, SD_E_FORMAT, "tensor '%s': invalid data_offsets [%llu, %llu]", nm,
                       (unsigned long long)b, (unsigned long long)e);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    if (t->end - t->begin != nbytes)
        return sd_fail(err, SD_E_FORMAT,
                       "tensor '%s': data_offsets [%zu, %zu] hold %zu bytes but %zu elements of %s need %zu",
                       nm, t->begin, t->end, t->end - t->begin, numel, sd_dtype_name(t->dtype), nbytes);
    return SD_OK;
}

/* Orderings of tensors, for sorting index arrays (qsort has no context argument, and a file-static
 * base would not be thread-safe). */
typedef int (*tensor_cmp)(const sd_st_tensor *, const sd_st_tensor *);

static int cmp_offsets(const sd_st_tensor *x, const sd_st_tensor *y) {
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_names(const sd_st_tensor *x, const sd_st_tensor *y) { return strcmp(x->name, y->name); }

/* Stable bottom-up merge sort of idx [n] (tmp [n] scratch) by cmp of the tensors they index. */
static void sort_indices(int *idx, int *tmp, int n, const sd_st_tensor *t, tensor_cmp cmp) {
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int a = lo, b = mid, k = lo;
            while (a < mid && b < hi) tmp[k++] = cmp(&t[idx[b]], &t[idx[a]]) < 0 ? idx[b++] : idx[a++];
            while (a < mid) tmp[k++] = idx[a++];
            while (b < hi) tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
        if (width > n / 2) break;
    }
}

/* Offsets, sorted, must tile [0, data_size) exactly. */
static sd_status check_layout(sd_safetensors *st, size_t data_size, sd_error *err) {
    int n = st->count;
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    int *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!idx || !tmp) {
        free(idx);
        free(tmp);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    sort_indices(idx, tmp, n, st->tensors, cmp_offsets);
    size_t expected = 0;
    const char *prev = NULL;
    sd_status s = SD_OK;
    for (int k = 0; k < n && !s; k++) {
        const sd_st_tensor *t = &st->tensors[idx[k]];
        if (t->begin > expected)
            s = sd_fail(err, SD_E_FORMAT,
                        "tensor '%s': data_offsets [%zu, %zu] leave a hole: bytes %zu..%zu belong to no tensor",
                        shown_name(t->name), t->begin, t->end, expected, t->begin);
        else if (t->begin < expected)
            s = sd_fail(err, SD_E_FORMAT,
                        "tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' (which ends at %zu)",
                        shown_name(t->name), t->begin, t->end, prev ? shown_name(prev) : "?", expected);
        expected = t->end;
        prev = t->name;
    }
    if (!s && expected != data_size) {
        if (expected > data_size)
            s = sd_fail(err, SD_E_FORMAT,
                        "file is truncated: tensors need %zu bytes of data, the file has %zu (%zu missing)",
                        expected, data_size, expected - data_size);
        else
            s = sd_fail(err, SD_E_FORMAT,
                        "end of data (%zu) is not the end of the file: %zu unexpected trailing bytes",
                        expected, data_size - expected);
    }
    if (!s) { /* the name index for sd_st_find */
        for (int i = 0; i < n; i++) idx[i] = i;
        sort_indices(idx, tmp, n, st->tensors, cmp_names);
        st->by_name = idx;
        idx = NULL;
    }
    free(idx);
    free(tmp);
    return s;
}

/* Parses header [hlen] (the JSON text) into st and checks it against a data section of data_size
 * bytes. */
static sd_status parse_header(sd_safetensors *st, const uint8_t *header, size_t hlen, size_t data_size,
                              sd_error *err) {
    sd_json *root = NULL;
    sd_status s = sd_json_parse((const char *)header, hlen, &root, err);
    if (s) {
        sd_error_prefix(err, "invalid header");
        return s;
    }
    if (root->type != SD_JSON_OBJECT) {
        s = sd_fail(err, SD_E_FORMAT, "header is not a JSON object (found %s)", sd_json_type_name(root->type));
        goto done;
    }
    if (header[0] != '{') {
        s = sd_fail(err, SD_E_FORMAT, "header does not start with '{'");
        goto done;
    }
    if (root->len > (size_t)INT32_MAX) {
        s = sd_fail(err, SD_E_FORMAT, "too many tensors");
        goto done;
    }
    st->tensors = calloc(root->len ? root->len : 1, sizeof *st->tensors);
    if (!st->tensors) {
        s = sd_fail(err, SD_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < root->len && !s; i++) {
        const char *key = root->keys[i];
        if (strcmp(key, "__metadata__") == 0) {
            s = parse_metadata(st, &root->items[i], err);
            continue;
        }
        if (strlen(key) != root->key_lens[i]) {
            s = sd_fail(err, SD_E_UNSUPPORTED, "a tensor name contains a NUL character");
            continue;
        }
        sd_st_tensor *t = &st->tensors[st->count];
        t->name = dup_bytes(key, root->key_lens[i]);
        if (!t->name) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
            continue;
        }
        st->count++;
        s = parse_tensor(key, &root->items[i], t, err);
    }
    if (!s) s = check_layout(st, data_size, err);
done:
    sd_json_free(root);
    return s;
}

/* Checks the 8-byte prefix of a file of file_size bytes; returns the header length in *hlen. */
/* What a file that is not safetensors seems to be, from its first 8 bytes (for the message). */
static const char *looks_like(const uint8_t p[8]) {
    if (!memcmp(p, "\x93NUMPY", 6)) return " (it is a NumPy .npy file)";
    if (!memcmp(p, "GGUF", 4)) return " (it is a GGUF file)";
    if (!memcmp(p, "SDUMCPK1", 8)) return " (it is an sdumc feature cache)";
    if (!memcmp(p, "PK\x03\x04", 4)) return " (it is a zip archive, e.g. a PyTorch .pt checkpoint: convert it with "
                                            "tools/pt2safetensors.py)";
    int text = 1;
    for (int i = 0; i < 8; i++) text &= (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\r' || p[i] == '\t';
    return text ? " (it looks like text, e.g. a CSV file)" : "";
}

static sd_status check_prefix(const uint8_t prefix[8], size_t got, size_t file_size, size_t *hlen,
                              sd_error *err) {
    if (got < 8 || file_size < 8)
        return sd_fail(err, SD_E_FORMAT, "file too small (%zu bytes) for a safetensors header", file_size);
    uint64_t n = load_le64(prefix);
    if (n > SD_ST_MAX_HEADER)
        return sd_fail(err, SD_E_FORMAT, "not a safetensors file%s: header length %llu exceeds the %u-byte limit",
                       looks_like(prefix), (unsigned long long)n, SD_ST_MAX_HEADER);
    if (n > file_size - 8)
        return sd_fail(err, SD_E_FORMAT, "not a safetensors file%s: header length %llu goes past the end of the "
                       "file (%zu bytes)", looks_like(prefix), (unsigned long long)n, file_size);
    *hlen = (size_t)n;
    return SD_OK;
}

/* A whole file in buf [n]: its data copied (copy) or borrowed. */
static sd_status parse_buffer(const uint8_t *buf, size_t n, int copy, sd_safetensors **out, sd_error *err) {
    if (!out || (!buf && n)) return sd_fail(err, SD_E_ARG, "sd_st_parse: NULL argument");
    *out = NULL;
    size_t hlen;
    sd_status s = check_prefix(buf, n, n, &hlen, err);
    if (s) return s;
    sd_safetensors *st = calloc(1, sizeof *st);
    if (!st) return sd_fail(err, SD_E_NOMEM, "out of memory");
    st->data_size = n - 8 - hlen;
    s = parse_header(st, buf + 8, hlen, st->data_size, err);
    if (!s && !copy) {
        st->data = (uint8_t *)(uintptr_t)(buf + 8 + hlen); /* borrowed; never written */
    } else if (!s) {
        st->owns_data = 1;
        st->data = sd_alloc(st->data_size);
        if (!st->data)
            s = sd_fail(err, SD_E_NOMEM, "out of memory for %zu bytes of data", st->data_size);
        else if (st->data_size)
            memcpy(st->data, buf + 8 + hlen, st->data_size);
    }
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SD_OK;
}

sd_status sd_st_parse(const uint8_t *buf, size_t n, sd_safetensors **out, sd_error *err) {
    return parse_buffer(buf, n, 1, out, err);
}

sd_status sd_st_view(const uint8_t *buf, size_t n, sd_safetensors **out, sd_error *err) {
    return parse_buffer(buf, n, 0, out, err);
}

sd_status sd_st_map(const char *path, sd_safetensors **out, sd_error *err) {
    if (!path || !out) return sd_fail(err, SD_E_ARG, "sd_st_map: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block the open */
    if (fd < 0) return sd_fail(err, SD_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sd_fail(err, SD_E_IO, "%s: not a readable regular file", path);
    }
    const size_t size = (size_t)sb.st_size;
    void *map = size >= 8 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    const int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) {
        if (size < 8) return sd_fail(err, SD_E_FORMAT, "%s: file too small (%zu bytes) for a safetensors header", path, size);
        return sd_fail(err, SD_E_IO, "%s: cannot map: %s", path, strerror(map_errno));
    }
    sd_status s = parse_buffer(map, size, 0, out, err);
    if (s) {
        munmap(map, size);
        sd_error_prefix(err, "%s", path);
        return s;
    }
    (*out)->map = map;
    (*out)->map_size = size;
    return SD_OK;
}

void *sd_st_take_map(sd_safetensors *st, size_t *size) {
    void *map = st ? st->map : NULL;
    if (size) *size = map ? st->map_size : 0;
    if (map) st->map = NULL;
    return map;
}

sd_status sd_st_open(const char *path, sd_safetensors **out, sd_error *err) {
    if (!path || !out) return sd_fail(err, SD_E_ARG, "sd_st_open: NULL argument");
    *out = NULL;
    FILE *f;
    struct stat sb;
    sd_status s = sd_file_fopen(path, &f, &sb, err);
    if (s) return s;
    sd_safetensors *st = NULL;
    uint8_t *header = NULL;
    size_t file_size = (size_t)sb.st_size;
    uint8_t prefix[8];
    size_t got = fread(prefix, 1, sizeof prefix, f);
    size_t hlen;
    s = check_prefix(prefix, got, file_size, &hlen, err);
    if (s) goto prefixed;
    header = malloc(hlen ? hlen : 1);
    st = calloc(1, sizeof *st);
    if (!header || !st) {
        s = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        s = sd_fail(err, SD_E_IO, "%s: read failed: %s", path, ferror(f) ? strerror(errno) : "file shrank");
        goto done;
    }
    st->data_size = file_size - 8 - hlen;
    s = parse_header(st, header, hlen, st->data_size, err);
    if (s) goto prefixed;
    st->owns_data = 1;
    st->data = sd_alloc(st->data_size);
    if (!st->data) {
        s = sd_fail(err, SD_E_NOMEM, "%s: out of memory for %zu bytes of data", path, st->data_size);
        goto done;
    }
    if (fread(st->data, 1, st->data_size, f) != st->data_size) {
        s = sd_fail(err, SD_E_IO, "%s: read failed: %s", path, ferror(f) ? strerror(errno) : "file shrank");
        goto done;
    }
    goto done;
prefixed:
    sd_error_prefix(err, "%s", path);
done:
    fclose(f);
    free(header);
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Access */

int sd_st_count(const sd_safetensors *st) { return st ? st->count : 0; }

const sd_st_tensor *sd_st_tensor_at(const sd_safetensors *st, int i) {
    if (!st || i < 0 || i >= st->count) return NULL;
    return &st->tensors[i];
}

const sd_st_tensor *sd_st_find(const sd_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    int lo = 0, hi = st->count; /* binary search over the name index */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[st->by_name[mid]].name, name);
        if (c == 0) return &st->tensors[st->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const void *sd_st_data(const sd_safetensors *st, const sd_st_tensor *t) {
    if (!st || !t) return NULL;
    return st->data + t->begin;
}

sd_status sd_st_read_f32(const sd_safetensors *st, const sd_st_tensor *t, float *dst, sd_error *err) {
    if (!st || !t || (!dst && t->numel)) return sd_fail(err, SD_E_ARG, "sd_st_read_f32: NULL argument");
    if (t < st->tensors || t >= st->tensors + st->count)
        return sd_fail(err, SD_E_ARG, "sd_st_read_f32: tensor does not belong to this file");
    sd_dtype_decode_f32(t->dtype, st->data + t->begin, t->numel, dst);
    return SD_OK;
}

int sd_st_metadata_count(const sd_safetensors *st) { return st ? st->meta_count : 0; }

const char *sd_st_metadata_key(const sd_safetensors *st, int i) {
    return st && i >= 0 && i < st->meta_count ? st->meta_keys[i] : NULL;
}

const char *sd_st_metadata_value(const sd_safetensors *st, int i) {
    return st && i >= 0 && i < st->meta_count ? st->meta_values[i] : NULL;
}

const char *sd_st_metadata_get(const sd_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writer */

typedef struct {
    char *name;
    sd_dtype dtype;
    int ndim;
    int64_t shape[SD_ST_MAX_DIMS];
    size_t numel, nbytes;
    const float *data; /* borrowed */
} writer_entry;

struct sd_st_writer {
    writer_entry *entries;
    int count, cap;
    char **meta_keys, **meta_values;
    int meta_count, meta_cap;
};

sd_st_writer *sd_st_writer_new(void) { return calloc(1, sizeof(sd_st_writer)); }

void sd_st_writer_free(sd_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) free(w->entries[i].name);
    for (int i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->entries);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

sd_status sd_st_writer_add(sd_st_writer *w, const char *name, sd_dtype dtype, int ndim,
                           const int64_t *shape, const float *data, sd_error *err) {
    if (!w || !name) return sd_fail(err, SD_E_ARG, "sd_st_writer_add: NULL argument");
    if (strcmp(name, "__metadata__") == 0)
        return sd_fail(err, SD_E_ARG, "tensor name '__metadata__' is reserved");
    if (sd_dtype_size(dtype) == 0)
        return sd_fail(err, SD_E_ARG, "tensor '%s': invalid dtype %d", shown_name(name), (int)dtype);
    if (ndim < 0 || ndim > SD_ST_MAX_DIMS || (ndim > 0 && !shape))
        return sd_fail(err, SD_E_ARG, "tensor '%s': ndim %d (0..%d allowed)", shown_name(name), ndim,
                       SD_ST_MAX_DIMS);
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return sd_fail(err, SD_E_ARG, "duplicate tensor name '%s'", shown_name(name));
    writer_entry e = {0};
    e.dtype = dtype;
    e.ndim = ndim;
    e.numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (uint64_t)shape[d] > SIZE_MAX || !sd_mul_size(e.numel, (size_t)shape[d], &e.numel))
            return sd_fail(err, SD_E_ARG, "tensor '%s': bad or too large shape", shown_name(name));
        e.shape[d] = shape[d];
    }
    if (!sd_mul_size(e.numel, sd_dtype_size(dtype), &e.nbytes))
        return sd_fail(err, SD_E_ARG, "tensor '%s': too large", shown_name(name));
    if (!data && e.numel) return sd_fail(err, SD_E_ARG, "tensor '%s': NULL data", shown_name(name));
    e.data = data;
    if (w->count == w->cap) {
        size_t cap = (size_t)w->cap;
        writer_entry *ne = sd_array_grow(w->entries, &cap, (size_t)w->count + 1, sizeof *ne, 16);
        if (!ne || cap > INT_MAX) return sd_fail(err, SD_E_NOMEM, "out of memory");
        w->entries = ne;
        w->cap = (int)cap;
    }
    e.name = dup_bytes(name, strlen(name));
    if (!e.name) return sd_fail(err, SD_E_NOMEM, "out of memory");
    w->entries[w->count++] = e;
    return SD_OK;
}

sd_status sd_st_writer_set_metadata(sd_st_writer *w, const char *key, const char *value, sd_error *err) {
    if (!w || !key || !value) return sd_fail(err, SD_E_ARG, "sd_st_writer_set_metadata: NULL argument");
    char *v = dup_bytes(value, strlen(value));
    if (!v) return sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int i = 0; i < w->meta_count; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return SD_OK;
        }
    }
    if (w->meta_count == w->meta_cap) {
        const size_t cap = sd_array_next_cap((size_t)w->meta_cap, (size_t)w->meta_count + 1, 8);
        char **nk = cap && cap <= INT_MAX ? sd_array_resize(w->meta_keys, cap, sizeof *nk) : NULL;
        if (nk) w->meta_keys = nk;
        char **nv = nk ? sd_array_resize(w->meta_values, cap, sizeof *nv) : NULL;
        if (nv) w->meta_values = nv;
        if (!nk || !nv) {
            free(v);
            return sd_fail(err, SD_E_NOMEM, "out of memory");
        }
        w->meta_cap = (int)cap;
    }
    char *k = dup_bytes(key, strlen(key));
    if (!k) {
        free(v);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count] = v;
    w->meta_count++;
    return SD_OK;
}

/* The JSON header, compact as the reference writes it, padded with spaces to a multiple of 8. */
static int build_header(const sd_st_writer *w, sd_strbuf *b) {
    sd_strbuf_puts(b, "{");
    if (w->meta_count) {
        sd_strbuf_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < w->meta_count; i++) {
            if (i) sd_strbuf_puts(b, ",");
            sd_json_append_string(b, w->meta_keys[i]);
            sd_strbuf_puts(b, ":");
            sd_json_append_string(b, w->meta_values[i]);
        }
        sd_strbuf_puts(b, "}");
    }
    size_t offset = 0;
    for (int i = 0; i < w->count; i++) {
        const writer_entry *e = &w->entries[i];
        if (i || w->meta_count) sd_strbuf_puts(b, ",");
        sd_json_append_string(b, e->name);
        sd_strbuf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", sd_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) sd_strbuf_printf(b, d ? ",%lld" : "%lld", (long long)e->shape[d]);
        if (offset > SIZE_MAX - e->nbytes) return -1;
        sd_strbuf_printf(b, "],\"data_offsets\":[%zu,%zu]}", offset, offset + e->nbytes);
        offset += e->nbytes;
    }
    sd_strbuf_puts(b, "}");
    while (!b->failed && b->len % 8) sd_strbuf_puts(b, " ");
    return b->failed ? -1 : 0;
}

sd_status sd_st_writer_write(sd_st_writer *w, const char *path, sd_error *err) {
    if (!w || !path) return sd_fail(err, SD_E_ARG, "sd_st_writer_write: NULL argument");
    sd_strbuf header = {0};
    if (build_header(w, &header)) {
        sd_strbuf_free(&header);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory building the header", path);
    }
    if (header.len > SD_ST_MAX_HEADER) {
        sd_strbuf_free(&header);
        return sd_fail(err, SD_E_ARG, "%s: header of %zu bytes exceeds the %u-byte limit", path, header.len,
                       SD_ST_MAX_HEADER);
    }
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)header.len >> (8 * i));

    sd_atomic_file af;
    sd_status s = sd_atomic_open(&af, path, err);
    if (s) {
        sd_strbuf_free(&header);
        return s;
    }
    s = sd_atomic_write(&af, prefix, sizeof prefix, err);
    if (!s) s = sd_atomic_write(&af, header.data, header.len, err);
    sd_strbuf_free(&header);
    enum { CHUNK = 4096 };
    uint8_t raw[CHUNK * 8];
    for (int i = 0; i < w->count && !s; i++) {
        const writer_entry *e = &w->entries[i];
        size_t item = sd_dtype_size(e->dtype);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (e->dtype == SD_DTYPE_F32) { /* already the file's bytes: written as they are, no encoding copy */
            s = sd_atomic_write(&af, e->data, e->numel * sizeof(float), err);
            continue;
        }
#endif
        for (size_t done = 0; done < e->numel && !s;) {
            size_t k = e->numel - done < CHUNK ? e->numel - done : CHUNK;
            sd_dtype_encode_f32(e->dtype, e->data + done, k, raw);
            s = sd_atomic_write(&af, raw, k * item, err);
            done += k;
        }
    }
    if (s) {
        sd_atomic_abort(&af);
        return s;
    }
    return sd_atomic_commit(&af, err);
}
