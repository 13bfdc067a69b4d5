/* .npy reader and writer. See npy.h for the accepted subset. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "io/atomic_file.h"
#include "io/file.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---------------------------------------------------------------------------------------------- */
/* The fixed prefix: magic, version, header length. */

typedef struct {
    int major;
    size_t prefix_len; /* 10 (v1) or 12 (v2, v3) */
    size_t header_len; /* bytes of the dict text (with padding) after the prefix */
} npy_prefix;

static sd_status parse_prefix(const uint8_t *buf, size_t n, npy_prefix *p, sd_error *err) {
    if (n < sizeof npy_magic || memcmp(buf, npy_magic, sizeof npy_magic) != 0)
        return sd_fail(err, SD_E_FORMAT, "not a .npy file (bad magic: expected \\x93NUMPY)");
    if (n < 8) return sd_fail(err, SD_E_FORMAT, "truncated .npy header (%zu bytes)", n);
    int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0)
        return sd_fail(err, SD_E_UNSUPPORTED, "unsupported .npy format version %d.%d (1.0, 2.0, 3.0 are)",
                       major, minor);
    p->major = major;
    p->prefix_len = major == 1 ? 10 : 12;
    if (n < p->prefix_len) return sd_fail(err, SD_E_FORMAT, "truncated .npy header (%zu bytes)", n);
    if (major == 1)
        p->header_len = (size_t)buf[8] | ((size_t)buf[9] << 8);
    else
        p->header_len = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) |
                        ((size_t)buf[11] << 24);
    if (p->header_len > SD_NPY_MAX_HEADER_LEN)
        return sd_fail(err, SD_E_FORMAT, "header length %zu exceeds the limit of %u bytes",
                       p->header_len, SD_NPY_MAX_HEADER_LEN);
    return SD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* The header dict: a Python literal with exactly the keys 'descr', 'fortran_order', 'shape'. */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int take(cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes, copied into out[cap]. */
static sd_status read_quoted(cursor *c, char *out, size_t cap, const char *what, sd_error *err) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return sd_fail(err, SD_E_FORMAT, "malformed header: expected a quoted %s", what);
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch < 0x20 || ch >= 0x7f)
            return sd_fail(err, SD_E_FORMAT, "malformed header: unexpected byte 0x%02x in a %s", ch,
                           what);
        if (n + 1 >= cap) return sd_fail(err, SD_E_FORMAT, "malformed header: %s too long", what);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return sd_fail(err, SD_E_FORMAT, "malformed header: unterminated %s", what);
    c->p++;
    out[n] = '\0';
    return SD_OK;
}

/* A non-negative Python int (an old 'L' suffix allowed), at most INT64_MAX. */
static sd_status read_dim(cursor *c, int64_t *out, sd_error *err) {
    skip_space(c);
    const char *s = c->p;
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p - '0';
        if (v > (INT64_MAX - d) / 10)
            return sd_fail(err, SD_E_FORMAT, "shape dimension too large (overflows int64)");
        v = v * 10 + d;
        c->p++;
    }
    if (c->p == s) return sd_fail(err, SD_E_FORMAT, "malformed header: bad shape entry");
    if (c->p - s > 1 && *s == '0')
        return sd_fail(err, SD_E_FORMAT, "malformed header: shape entry with a leading zero");
    if (c->p < c->end && *c->p == 'L') c->p++;
    *out = v;
    return SD_OK;
}

#define NPY_MAX_NDIM 32 /* numpy's own limit; more is malformed */

static sd_status read_shape(cursor *c, int64_t *dims, int *ndim, sd_error *err) {
    if (!take(c, '(')) {
        return sd_fail(err, SD_E_FORMAT, "malformed header: 'shape' is not a tuple");
    }
    int n = 0, trailing_comma = 0;
    while (!take(c, ')')) {
        if (n == NPY_MAX_NDIM)
            return sd_fail(err, SD_E_FORMAT, "malformed header: more than %d dimensions", NPY_MAX_NDIM);
        sd_status st = read_dim(c, &dims[n++], err);
        if (st) return st;
        trailing_comma = take(c, ',');
        if (!trailing_comma) {
            if (!take(c, ')')) return sd_fail(err, SD_E_FORMAT, "malformed header: bad 'shape' tuple");
            break;
        }
    }
    /* "(3)" is the int 3 in Python, not a tuple */
    if (n == 1 && !trailing_comma)
        return sd_fail(err, SD_E_FORMAT, "malformed header: 'shape' is not a tuple");
    *ndim = n;
    return SD_OK;
}

static int take_word(cursor *c, const char *w) {
    skip_space(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    /* the word must end here */
    if ((size_t)(c->end - c->p) > n) {
        char next = c->p[n];
        if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9') ||
            next == '_')
            return 0;
    }
    c->p += n;
    return 1;
}

static sd_status parse_dict(const char *text, size_t n, sd_npy_header *h, sd_error *err) {
    cursor c = {text, text + n};
    char descr[64] = "";
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t dims[NPY_MAX_NDIM];
    if (!take(&c, '{')) return sd_fail(err, SD_E_FORMAT, "malformed header: not a dict");
    while (!take(&c, '}')) {
        char key[32];
        sd_status st = read_quoted(&c, key, sizeof key, "key", err);
        if (st) return st;
        if (!take(&c, ':'))
            return sd_fail(err, SD_E_FORMAT, "malformed header: expected ':' after '%s'", key);
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            skip_space(&c);
            if (c.p < c.end && *c.p == '[')
                return sd_fail(err, SD_E_UNSUPPORTED, "structured dtypes are not supported");
            st = read_quoted(&c, descr, sizeof descr, "dtype", err);
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            if (take_word(&c, "True"))
                fortran = 1;
            else if (take_word(&c, "False"))
                fortran = 0;
            else
                st = sd_fail(err, SD_E_FORMAT, "malformed header: 'fortran_order' is not True or False");
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            st = read_shape(&c, dims, &ndim, err);
        } else {
            return sd_fail(err, SD_E_FORMAT, "malformed header: unexpected key '%s'", key);
        }
        if (st) return st;
        if (*seen) return sd_fail(err, SD_E_FORMAT, "malformed header: key '%s' appears twice", key);
        *seen = 1;
        if (!take(&c, ',')) {
            if (!take(&c, '}'))
                return sd_fail(err, SD_E_FORMAT, "malformed header: expected ',' or '}' after '%s'", key);
            break;
        }
    }
    skip_space(&c);
    if (c.p != c.end)
        return sd_fail(err, SD_E_FORMAT, "malformed header: unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return sd_fail(err, SD_E_FORMAT, "malformed header: missing key '%s'",
                       !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");

    if (strcmp(descr, "<f2") == 0)
        h->dtype = SD_DTYPE_F16;
    else if (strcmp(descr, "<f4") == 0)
        h->dtype = SD_DTYPE_F32;
    else if (strcmp(descr, "<f8") == 0)
        h->dtype = SD_DTYPE_F64;
    else
        return sd_fail(err, SD_E_UNSUPPORTED,
                       "dtype '%s' is not supported (little-endian floats only: '<f2', '<f4', '<f8')",
                       descr);
    if (fortran)
        return sd_fail(err, SD_E_UNSUPPORTED,
                       "Fortran-order array (fortran_order: True) is not supported; save it in C order "
                       "(numpy.ascontiguousarray)");
    if (ndim != 1 && ndim != 2)
        return sd_fail(err, SD_E_SHAPE, "%d-D array is not supported (expected shape (D,) or (T, D))",
                       ndim);
    h->ndim = ndim;
    h->rows = ndim == 1 ? 1 : dims[0];
    h->cols = ndim == 1 ? dims[0] : dims[1];
    /* rows * cols * itemsize must fit int64 and size_t (data_offset is added by the caller) */
    size_t count, bytes;
    if ((h->cols != 0 && h->rows > INT64_MAX / h->cols) ||
        !sd_mul_size((size_t)h->rows, (size_t)h->cols, &count) ||
        !sd_mul_size(count, sd_dtype_size(h->dtype), &bytes) || bytes > (size_t)INT64_MAX)
        return sd_fail(err, SD_E_FORMAT, "shape (%lld, %lld) is too large (element count overflows)",
                       (long long)h->rows, (long long)h->cols);
    return SD_OK;
}

sd_status sd_npy_parse_header(const uint8_t *buf, size_t n, sd_npy_header *h, sd_error *err) {
    if (!buf || !h) return sd_fail(err, SD_E_ARG, "sd_npy_parse_header: NULL argument");
    memset(h, 0, sizeof *h);
    npy_prefix p;
    sd_status st = parse_prefix(buf, n, &p, err);
    if (st) return st;
    if (p.header_len > n - p.prefix_len)
        return sd_fail(err, SD_E_FORMAT, "header length %zu goes past the end of the file (%zu bytes)",
                       p.header_len, n);
    sd_npy_header tmp = {0};
    st = parse_dict((const char *)buf + p.prefix_len, p.header_len, &tmp, err);
    if (st) return st;
    tmp.version = p.major;
    tmp.data_offset = p.prefix_len + p.header_len;
    size_t end;
    if (!sd_add_size(tmp.data_offset, sd_npy_data_bytes(&tmp), &end))
        return sd_fail(err, SD_E_FORMAT, "shape (%lld, %lld) is too large", (long long)tmp.rows,
                       (long long)tmp.cols);
    *h = tmp;
    return SD_OK;
}

size_t sd_npy_data_bytes(const sd_npy_header *h) {
    return (size_t)h->rows * (size_t)h->cols * sd_dtype_size(h->dtype);
}

/* The file must hold exactly the data the header promises. */
static sd_status check_size(const sd_npy_header *h, size_t file_size, sd_error *err) {
    size_t want = sd_npy_data_bytes(h);
    size_t have = file_size - h->data_offset; /* data_offset <= file_size already checked */
    if (have < want)
        return sd_fail(err, SD_E_FORMAT,
                       "data is truncated: shape (%lld, %lld) of %s needs %zu bytes after offset %zu, "
                       "the file has %zu (%zu bytes missing)",
                       (long long)h->rows, (long long)h->cols, sd_dtype_name(h->dtype), want,
                       h->data_offset, have, want - have);
    if (have > want)
        return sd_fail(err, SD_E_FORMAT,
                       "%zu unexpected trailing bytes after the data (shape (%lld, %lld) of %s ends at "
                       "byte %zu, the file has %zu)",
                       have - want, (long long)h->rows, (long long)h->cols, sd_dtype_name(h->dtype),
                       h->data_offset + want, file_size);
    return SD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Files */

/* Opens path and parses its header; *f is left open on success. */
static sd_status open_header(const char *path, FILE **f_out, sd_npy_header *h, sd_error *err) {
    FILE *f;
    struct stat st;
    sd_status so = sd_file_fopen(path, &f, &st, err);
    if (so) return so;
    size_t file_size = (size_t)st.st_size;
    uint8_t head[12];
    size_t got = fread(head, 1, file_size < sizeof head ? file_size : sizeof head, f);
    npy_prefix p;
    sd_status s = parse_prefix(head, got, &p, err);
    if (s) goto fail;
    if (p.header_len > file_size - p.prefix_len) {
        s = sd_fail(err, SD_E_FORMAT, "header length %zu goes past the end of the file (%zu bytes)",
                    p.header_len, file_size);
        goto fail;
    }
    size_t n = p.prefix_len + p.header_len;
    uint8_t *buf = malloc(n);
    if (!buf) {
        s = sd_fail(err, SD_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(buf, head, p.prefix_len);
    /* (head may have read past the 10-byte prefix of a version 1 file) */
    if (fseek(f, (long)p.prefix_len, SEEK_SET) != 0 ||
        fread(buf + p.prefix_len, 1, p.header_len, f) != p.header_len) {
        free(buf);
        s = sd_fail(err, SD_E_IO, "read failed: %s", ferror(f) ? strerror(errno) : "unexpected end of file");
        goto fail;
    }
    s = sd_npy_parse_header(buf, n, h, err);
    free(buf);
    if (s) goto fail;
    s = check_size(h, file_size, err);
    if (s) goto fail;
    *f_out = f;
    return SD_OK;
fail:
    fclose(f);
    sd_error_prefix(err, "%s", path);
    return s;
}

/* Reads the data (f positioned anywhere) into dst, converting to float32 in chunks. */
static sd_status read_data(FILE *f, const char *path, const sd_npy_header *h, float *dst, sd_error *err) {
    if (fseek(f, (long)h->data_offset, SEEK_SET) != 0)
        return sd_fail(err, SD_E_IO, "%s: seek failed: %s", path, strerror(errno));
    size_t count = (size_t)h->rows * (size_t)h->cols;
    size_t item = sd_dtype_size(h->dtype);
    enum { CHUNK = 8192 }; /* elements per read */
    uint8_t *raw = malloc(CHUNK * 8);
    if (!raw) return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    for (size_t done = 0; done < count;) {
        size_t k = count - done < CHUNK ? count - done : CHUNK;
        if (fread(raw, item, k, f) != k) {
            free(raw);
            return sd_fail(err, SD_E_IO, "%s: read failed: %s", path,
                           ferror(f) ? strerror(errno) : "file shrank while reading");
        }
        sd_dtype_decode_f32(h->dtype, raw, k, dst + done);
        done += k;
    }
    free(raw);
    return SD_OK;
}

sd_status sd_npy_read_header(const char *path, sd_npy_header *h, sd_error *err) {
    if (!path || !h) return sd_fail(err, SD_E_ARG, "sd_npy_read_header: NULL argument");
    FILE *f;
    sd_status st = open_header(path, &f, h, err);
    if (st) return st;
    fclose(f);
    return SD_OK;
}

sd_status sd_npy_read_into(const char *path, const sd_npy_header *h, float *dst, sd_error *err) {
    if (!path || !h || !dst) return sd_fail(err, SD_E_ARG, "sd_npy_read_into: NULL argument");
    FILE *f;
    sd_npy_header now;
    sd_status st = open_header(path, &f, &now, err);
    if (st) return st;
    if (now.version != h->version || now.dtype != h->dtype || now.ndim != h->ndim ||
        now.rows != h->rows || now.cols != h->cols || now.data_offset != h->data_offset) {
        fclose(f);
        return sd_fail(err, SD_E_FORMAT, "%s: header changed since it was read (now shape (%lld, %lld))",
                       path, (long long)now.rows, (long long)now.cols);
    }
    st = read_data(f, path, &now, dst, err);
    fclose(f);
    return st;
}

sd_status sd_npy_read(const char *path, sd_npy_header *h, float **data, sd_error *err) {
    if (!path || !h || !data) return sd_fail(err, SD_E_ARG, "sd_npy_read: NULL argument");
    *data = NULL;
    FILE *f;
    sd_status st = open_header(path, &f, h, err);
    if (st) return st;
    float *buf = sd_calloc((size_t)h->rows * (size_t)h->cols, sizeof(float));
    if (!buf) {
        fclose(f);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory for %lld x %lld floats", path,
                       (long long)h->rows, (long long)h->cols);
    }
    st = read_data(f, path, h, buf, err);
    fclose(f);
    if (st) {
        sd_free(buf);
        return st;
    }
    *data = buf;
    return SD_OK;
}

sd_status sd_npy_parse(const uint8_t *buf, size_t n, sd_npy_header *h, float **data, sd_error *err) {
    if (!buf || !h || !data) return sd_fail(err, SD_E_ARG, "sd_npy_parse: NULL argument");
    *data = NULL;
    sd_status st = sd_npy_parse_header(buf, n, h, err);
    if (st) return st;
    st = check_size(h, n, err);
    if (st) return st;
    size_t count = (size_t)h->rows * (size_t)h->cols;
    float *out = sd_calloc(count, sizeof(float));
    if (!out) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_dtype_decode_f32(h->dtype, buf + h->data_offset, count, out);
    *data = out;
    return SD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing */

/* The version 1.0 prefix and header of a (rows, cols) or (cols,) file into buf (at most 10 + 256
 * bytes); returns the byte count. The dict as numpy 1.24 writes it (keys sorted), then spare room
 * for the first axis to grow to 21 digits, then spaces and '\n' so that data starts at a multiple
 * of 64. */
static size_t header_bytes(uint8_t *buf, int ndim, int64_t rows, int64_t cols, sd_dtype dtype) {
    char *header = (char *)buf + 10;
    int len;
    if (ndim == 1)
        len = snprintf(header, 256, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld,), }",
                       dtype == SD_DTYPE_F32 ? "<f4" : "<f2", (long long)cols);
    else
        len = snprintf(header, 256, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       dtype == SD_DTYPE_F32 ? "<f4" : "<f2", (long long)rows, (long long)cols);
    char first[24];
    int first_digits = snprintf(first, sizeof first, "%lld", (long long)(ndim == 1 ? cols : rows));
    for (int i = first_digits; i < 21; i++) header[len++] = ' ';
    size_t hlen = (size_t)len + 1;                 /* with the final '\n' */
    size_t padlen = 64 - ((10 + hlen) % 64);       /* 1..64, as numpy computes it */
    for (size_t i = 0; i < padlen; i++) header[len++] = ' ';
    header[len++] = '\n';
    size_t total_header = (size_t)len; /* = hlen + padlen */
    memcpy(buf, npy_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(total_header & 0xff);
    buf[9] = (uint8_t)(total_header >> 8);
    return 10 + total_header;
}

sd_status sd_npy_stream_open(sd_npy_stream *w, const char *path, int ndim, int64_t rows,
                             int64_t cols, sd_dtype dtype, sd_error *err) {
    memset(w, 0, sizeof *w);
    if (!path) return sd_fail(err, SD_E_ARG, "sd_npy_write: NULL path");
    if (dtype != SD_DTYPE_F32 && dtype != SD_DTYPE_F16)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: can only write F32 or F16, not %s", path,
                       sd_dtype_name(dtype));
    if ((ndim != 1 && ndim != 2) || rows < 0 || cols < 0 || (ndim == 1 && rows != 1))
        return sd_fail(err, SD_E_ARG, "%s: bad shape: ndim %d, %lld x %lld", path, ndim,
                       (long long)rows, (long long)cols);
    size_t count, bytes;
    if (!sd_mul_size((size_t)rows, (size_t)cols, &count) ||
        !sd_mul_size(count, sd_dtype_size(dtype), &bytes))
        return sd_fail(err, SD_E_ARG, "%s: shape %lld x %lld too large", path, (long long)rows,
                       (long long)cols);
    uint8_t head[10 + 256];
    size_t n = header_bytes(head, ndim, rows, cols, dtype);
    sd_status st = sd_atomic_open(&w->af, path, err);
    if (st) return st;
    if ((st = sd_atomic_write(&w->af, head, n, err))) {
        sd_atomic_abort(&w->af);
        return st;
    }
    w->dtype = dtype;
    w->rows = rows;
    w->cols = cols;
    return SD_OK;
}

sd_status sd_npy_stream_write(sd_npy_stream *w, const float *data, int64_t rows, sd_error *err) {
    if (rows < 0 || rows > w->rows - w->written)
        return sd_fail(err, SD_E_ARG, "%s: %lld rows written to a file of %lld", w->af.path,
                       (long long)(w->written + rows), (long long)w->rows);
    enum { CHUNK = 8192 };
    uint8_t raw[CHUNK * 4];
    const size_t item = sd_dtype_size(w->dtype), count = (size_t)rows * (size_t)w->cols;
    for (size_t done = 0; done < count;) {
        size_t k = count - done < CHUNK ? count - done : CHUNK;
        sd_dtype_encode_f32(w->dtype, data + done, k, raw);
        sd_status st = sd_atomic_write(&w->af, raw, k * item, err);
        if (st) return st;
        done += k;
    }
    w->written += rows;
    return SD_OK;
}

sd_status sd_npy_stream_commit(sd_npy_stream *w, sd_error *err) {
    if (w->written != w->rows) {
        sd_status st = sd_fail(err, SD_E_ARG, "%s: %lld of %lld rows written", w->af.path,
                               (long long)w->written, (long long)w->rows);
        sd_atomic_abort(&w->af);
        return st;
    }
    return sd_atomic_commit(&w->af, err);
}

void sd_npy_stream_abort(sd_npy_stream *w) { sd_atomic_abort(&w->af); }

sd_status sd_npy_write_plain(const char *path, const float *data, int64_t rows, int64_t cols, sd_dtype dtype,
                             sd_error *err) {
    if (dtype != SD_DTYPE_F32 && dtype != SD_DTYPE_F16)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: can only write F32 or F16, not %s", path, sd_dtype_name(dtype));
    size_t count, bytes, item = sd_dtype_size(dtype);
    if (rows < 0 || cols < 0 || !sd_mul_size((size_t)rows, (size_t)cols, &count) || !sd_mul_size(count, item, &bytes))
        return sd_fail(err, SD_E_ARG, "%s: bad shape %lld x %lld", path, (long long)rows, (long long)cols);
    uint8_t head[10 + 256];
    size_t n = header_bytes(head, 2, rows, cols, dtype);
    FILE *f = fopen(path, "wb");
    if (!f) return sd_fail(err, SD_E_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(head, 1, n, f) == n;
    enum { CHUNK = 4096 };
    unsigned char raw[CHUNK * 4];
    for (size_t done = 0; ok && done < count;) {
        size_t k = count - done < CHUNK ? count - done : CHUNK;
        sd_dtype_encode_f32(dtype, data + done, k, raw);
        ok = fwrite(raw, item, k, f) == k;
        done += k;
    }
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    return ok ? SD_OK : sd_fail(err, SD_E_IO, "%s: write failed: %s", path, strerror(e));
}

sd_status sd_npy_write(const char *path, const float *data, int ndim, int64_t rows, int64_t cols,
                       sd_dtype dtype, sd_error *err) {
    if (path && !data && rows > 0 && cols > 0) return sd_fail(err, SD_E_ARG, "%s: NULL data", path);
    sd_npy_stream w;
    sd_status st = sd_npy_stream_open(&w, path, ndim, rows, cols, dtype, err);
    if (st) return st;
    if ((st = sd_npy_stream_write(&w, data, ndim == 1 ? 1 : rows, err))) {
        sd_npy_stream_abort(&w);
        return st;
    }
    return sd_npy_stream_commit(&w, err);
}
