/* The restricted pickle reader (see pickle.h): a small stack machine over the opcodes of protocols
 * 2-5 that builds plain values and numpy arrays, compares every global with a fixed list and calls
 * nothing. Legend: sp stack depth, base the stack depth at the innermost MARK. */
#include "io/pickle.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/array.h"
#include "io/file.h"
#include "io/half.h"

/* The callables a REDUCE may name (the only globals accepted). */
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_SCALAR, G_FROMBUFFER, G_ENCODE, G_BYTES };

static const struct {
    const char *module, *name;
    int id;
} allowed_globals[] = {
    {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT}, /* numpy 2 */
    {"numpy.core._multiarray_umath", "_reconstruct", G_RECONSTRUCT}, /* numpy 1.16.0 */
    {"numpy", "ndarray", G_NDARRAY},
    {"numpy", "dtype", G_DTYPE},
    {"numpy.core.multiarray", "scalar", G_SCALAR},
    {"numpy._core.multiarray", "scalar", G_SCALAR},
    {"numpy.core.numeric", "_frombuffer", G_FROMBUFFER}, /* protocol 5 */
    {"numpy._core.numeric", "_frombuffer", G_FROMBUFFER},
    {"_codecs", "encode", G_ENCODE}, /* bytes in protocol 2 from Python 3 */
    {"builtins", "bytes", G_BYTES},
    {"__builtin__", "bytes", G_BYTES},
};

#define CHUNK_OBJECTS 4096

typedef struct chunk {
    struct chunk *next;
    size_t used;
    sd_pk_obj obj[CHUNK_OBJECTS];
} chunk;

struct sd_pickle {
    chunk *chunks;
    size_t nobj, nrefs;
    void **owned; /* decoded byte strings */
    size_t nowned, cap_owned;
    const sd_pk_obj *root;
    void *map;
    size_t map_len;
};

typedef struct {
    sd_pickle *P;
    const unsigned char *begin, *p, *end;
    size_t op_at; /* offset of the opcode being run, for messages */
    sd_pk_obj **stack;
    size_t sp, cap;
    size_t *marks;
    size_t nmarks, cap_marks;
    sd_pk_obj **memo;
    size_t cap_memo, memo_len; /* memo_len: distinct indices set (MEMOIZE's next index) */
    sd_error *err;
} vm;

const char *sd_pk_type_name(sd_pk_type t) {
    switch (t) {
    case SD_PK_NONE: return "None";
    case SD_PK_BOOL: return "bool";
    case SD_PK_INT: return "int";
    case SD_PK_FLOAT: return "float";
    case SD_PK_STR: return "str";
    case SD_PK_BYTES: return "bytes";
    case SD_PK_LIST: return "list";
    case SD_PK_TUPLE: return "tuple";
    case SD_PK_DICT: return "dict";
    case SD_PK_ARRAY: return "numpy array";
    case SD_PK_DTYPE: return "numpy dtype";
    case SD_PK_GLOBAL: return "numpy function";
    }
    return "?";
}

static sd_status fail(vm *V, sd_status code, const char *what) {
    return sd_fail(V->err, code, "pickle byte %zu (opcode 0x%02x): %s", V->op_at, V->begin[V->op_at], what);
}

#define FAILF(V, code, ...)                                                                       \
    (snprintf(msgbuf, sizeof msgbuf, __VA_ARGS__), fail((V), (code), msgbuf))

/* ---- values ---- */

static sd_pk_obj *new_obj(vm *V, sd_pk_type t) {
    sd_pickle *P = V->P;
    if (P->nobj >= SD_PICKLE_MAX_OBJECTS) return NULL;
    if (!P->chunks || P->chunks->used == CHUNK_OBJECTS) {
        chunk *c = malloc(sizeof *c);
        if (!c) return NULL;
        c->next = P->chunks;
        c->used = 0;
        P->chunks = c;
    }
    sd_pk_obj *o = &P->chunks->obj[P->chunks->used++];
    memset(o, 0, sizeof *o);
    o->type = t;
    P->nobj++;
    return o;
}

static sd_status no_object(vm *V) {
    if (V->P->nobj >= SD_PICKLE_MAX_OBJECTS) {
        char msgbuf[160];
        return FAILF(V, SD_E_FORMAT, "more than %d values: not an MMSA feature file", SD_PICKLE_MAX_OBJECTS);
    }
    return fail(V, SD_E_NOMEM, "out of memory");
}

static sd_status seq_push(vm *V, sd_pk_obj *seq, sd_pk_obj *item) {
    if (V->P->nrefs >= SD_PICKLE_MAX_REFS) {
        char msgbuf[160];
        return FAILF(V, SD_E_FORMAT, "more than %d container items: not an MMSA feature file", SD_PICKLE_MAX_REFS);
    }
    if (seq->u.seq.n == seq->u.seq.cap) {
        sd_pk_obj **v = sd_array_grow(seq->u.seq.v, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof *v, 4);
        if (!v) return fail(V, SD_E_NOMEM, "out of memory");
        seq->u.seq.v = v;
    }
    seq->u.seq.v[seq->u.seq.n++] = item;
    V->P->nrefs++;
    return SD_OK;
}

static void *own(vm *V, size_t n) {
    sd_pickle *P = V->P;
    if (P->nowned == P->cap_owned) {
        void **o = sd_array_grow(P->owned, &P->cap_owned, P->nowned + 1, sizeof *o, 16);
        if (!o) return NULL;
        P->owned = o;
    }
    void *b = malloc(n ? n : 1);
    if (b) P->owned[P->nowned++] = b;
    return b;
}

/* ---- the stack ---- */

static size_t stack_base(const vm *V) { return V->nmarks ? V->marks[V->nmarks - 1] : 0; }

static sd_status push(vm *V, sd_pk_obj *o) {
    if (!o) return no_object(V);
    if (V->sp == V->cap) {
        sd_pk_obj **s = sd_array_grow(V->stack, &V->cap, V->sp + 1, sizeof *s, 64);
        if (!s) return fail(V, SD_E_NOMEM, "out of memory");
        V->stack = s;
    }
    V->stack[V->sp++] = o;
    return SD_OK;
}

/* The top value above the innermost mark, or NULL (then a message is set). */
static sd_pk_obj *pop(vm *V, sd_status *st) {
    if (V->sp <= stack_base(V)) {
        *st = fail(V, SD_E_FORMAT, "stack underflow (truncated or malformed pickle)");
        return NULL;
    }
    return V->stack[--V->sp];
}

static sd_pk_obj *top(vm *V, sd_status *st) {
    if (V->sp <= stack_base(V)) {
        *st = fail(V, SD_E_FORMAT, "stack underflow (truncated or malformed pickle)");
        return NULL;
    }
    return V->stack[V->sp - 1];
}

/* Pops the innermost mark: the values above it are stack[*from .. sp). */
static sd_status pop_mark(vm *V, size_t *from) {
    if (!V->nmarks) return fail(V, SD_E_FORMAT, "no MARK to pop (malformed pickle)");
    *from = V->marks[--V->nmarks];
    return SD_OK;
}

/* ---- reading the opcode stream ---- */

static int avail(const vm *V, uint64_t n) { return (uint64_t)(V->end - V->p) >= n; }

static uint64_t read_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* n little-endian bytes as an unsigned count; 0 and a message when they are not all there. */
static sd_status arg_le(vm *V, int n, uint64_t *out) {
    if (!avail(V, (uint64_t)n)) return fail(V, SD_E_FORMAT, "truncated (the file ends inside an opcode)");
    *out = read_le(V->p, n);
    V->p += n;
    return SD_OK;
}

/* A string or bytes value of n bytes at the read position, pointing into the file. */
static sd_status push_span(vm *V, sd_pk_type t, uint64_t n) {
    if (!avail(V, n)) {
        char msgbuf[200];
        return FAILF(V, SD_E_FORMAT, "a %s of %llu bytes runs past the end of the file (truncated?)",
                     t == SD_PK_STR ? "string" : "bytes value", (unsigned long long)n);
    }
    sd_pk_obj *o = new_obj(V, t);
    if (!o) return no_object(V);
    o->u.s.p = (const char *)V->p;
    o->u.s.n = (size_t)n;
    V->p += n;
    return push(V, o);
}

static sd_status push_int(vm *V, int64_t v) {
    sd_pk_obj *o = new_obj(V, SD_PK_INT);
    if (o) o->u.i = v;
    return push(V, o);
}

/* LONG1 / LONG4: n bytes of two's complement, little-endian; up to 64 bits. */
static sd_status push_long(vm *V, uint64_t n) {
    if (!avail(V, n)) return fail(V, SD_E_FORMAT, "truncated integer");
    if (n > 8) return fail(V, SD_E_UNSUPPORTED, "integer wider than 64 bits");
    uint64_t v = n ? read_le(V->p, (int)n) : 0;
    if (n && n < 8 && (V->p[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    V->p += n;
    return push_int(V, (int64_t)v);
}

/* GLOBAL's text arguments: "module\nname\n". */
static sd_status read_line(vm *V, char *buf, size_t size) {
    const unsigned char *nl = memchr(V->p, '\n', (size_t)(V->end - V->p));
    if (!nl) return fail(V, SD_E_FORMAT, "truncated GLOBAL");
    size_t n = (size_t)(nl - V->p);
    if (n >= size) return fail(V, SD_E_FORMAT, "GLOBAL name too long");
    memcpy(buf, V->p, n);
    buf[n] = '\0';
    V->p = nl + 1;
    return SD_OK;
}

static sd_status push_global(vm *V, const char *module, const char *name) {
    for (size_t i = 0; i < sizeof allowed_globals / sizeof allowed_globals[0]; i++)
        if (!strcmp(module, allowed_globals[i].module) && !strcmp(name, allowed_globals[i].name)) {
            sd_pk_obj *o = new_obj(V, SD_PK_GLOBAL);
            if (o) o->u.g = allowed_globals[i].id;
            return push(V, o);
        }
    char msgbuf[600];
    return FAILF(V, SD_E_UNSUPPORTED,
                 "refuses the global '%.200s.%.200s': an MMSA feature file holds only dicts, lists, strings, "
                 "numbers and numpy arrays, and nothing from this file is run",
                 module, name);
}

/* ---- numpy dtypes and arrays ---- */

/* numpy's type strings: [<>|=]? kind digits, e.g. "f4", "<f8", "U20", "O8", "b1". */
static int parse_dtype(const char *s, size_t n, sd_pk_dtype *d) {
    memset(d, 0, sizeof *d);
    size_t i = 0;
    if (i < n && (s[i] == '<' || s[i] == '>' || s[i] == '|' || s[i] == '=')) d->big = s[i++] == '>';
    if (i >= n) return -1;
    d->kind = s[i++];
    if (i >= n || n - i > 6) return -1;
    int size = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        size = size * 10 + (s[i] - '0');
    }
    switch (d->kind) {
    case 'b': return size == 1 ? (d->itemsize = 1, 0) : -1;
    case 'i': case 'u': return size == 1 || size == 2 || size == 4 || size == 8 ? (d->itemsize = size, 0) : -1;
    case 'f': return size == 2 || size == 4 || size == 8 ? (d->itemsize = size, 0) : -1;
    case 'S': return size >= 0 ? (d->itemsize = size, 0) : -1;
    case 'U': return size >= 0 && size <= (1 << 20) ? (d->itemsize = 4 * size, 0) : -1;
    case 'O': return (d->itemsize = 8, 0);
    }
    return -1;
}

static int is_text(const sd_pk_obj *o) { return o->type == SD_PK_STR || o->type == SD_PK_BYTES; }

static int text_is(const sd_pk_obj *o, const char *s) {
    return is_text(o) && o->u.s.n == strlen(s) && !memcmp(o->u.s.p, s, o->u.s.n);
}

static int is_int(const sd_pk_obj *o) { return o->type == SD_PK_INT || o->type == SD_PK_BOOL; }

/* dtype state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]). */
static sd_status build_dtype(vm *V, sd_pk_obj *d, const sd_pk_obj *state) {
    char msgbuf[200];
    if (state->type != SD_PK_TUPLE || state->u.seq.n < 8 || state->u.seq.n > 9)
        return FAILF(V, SD_E_FORMAT, "numpy dtype state is a %s, not the 8-tuple numpy writes",
                     sd_pk_type_name(state->type));
    sd_pk_obj *const *s = state->u.seq.v;
    if (!is_text(s[1]) || s[1]->u.s.n != 1) return fail(V, SD_E_FORMAT, "numpy dtype state without a byte order");
    char order = s[1]->u.s.p[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return fail(V, SD_E_FORMAT, "numpy dtype byte order is not one of < > | =");
    if (s[2]->type != SD_PK_NONE || s[3]->type != SD_PK_NONE || s[4]->type != SD_PK_NONE)
        return fail(V, SD_E_UNSUPPORTED, "structured or sub-array numpy dtypes are not supported");
    if (state->u.seq.n == 9 && s[8]->type != SD_PK_NONE && s[8]->type != SD_PK_DICT)
        return fail(V, SD_E_FORMAT, "numpy dtype metadata is not a dict");
    if (!is_int(s[5])) return fail(V, SD_E_FORMAT, "numpy dtype element size is not an integer");
    int64_t elsize = s[5]->u.i;
    if (d->u.d.kind == 'S' || d->u.d.kind == 'U') {
        if (elsize < 0 || elsize > (1 << 22) || (d->u.d.kind == 'U' && elsize % 4))
            return FAILF(V, SD_E_FORMAT, "numpy string dtype with element size %lld", (long long)elsize);
        d->u.d.itemsize = (int)elsize;
    }
    d->u.d.big = order == '>';
    return SD_OK;
}

static sd_status set_shape(vm *V, sd_pk_array *a, const sd_pk_obj *shape) {
    char msgbuf[200];
    if (shape->type != SD_PK_TUPLE && shape->type != SD_PK_LIST)
        return FAILF(V, SD_E_FORMAT, "numpy array shape is a %s, not a tuple", sd_pk_type_name(shape->type));
    if (shape->u.seq.n > SD_PICKLE_MAX_DIMS)
        return FAILF(V, SD_E_UNSUPPORTED, "numpy array of %zu dims (at most %d)", shape->u.seq.n, SD_PICKLE_MAX_DIMS);
    a->ndim = (int)shape->u.seq.n;
    int64_t numel = 1;
    for (int k = 0; k < a->ndim; k++) {
        const sd_pk_obj *e = shape->u.seq.v[k];
        if (!is_int(e) || e->u.i < 0) return fail(V, SD_E_FORMAT, "numpy array shape holds a negative or non-integer size");
        a->shape[k] = e->u.i;
        if (e->u.i && numel > INT64_MAX / 16 / e->u.i) return fail(V, SD_E_FORMAT, "numpy array size overflows");
        numel *= e->u.i;
    }
    a->numel = numel;
    return SD_OK;
}

/* Raw data (or, for object arrays, a list of values) for an array whose shape and dtype are set. */
static sd_status set_data(vm *V, sd_pk_array *a, const sd_pk_obj *raw) {
    char msgbuf[300];
    if (a->dtype.kind == 'O') {
        if (raw->type != SD_PK_LIST) return fail(V, SD_E_FORMAT, "object array data is not a list");
        if ((int64_t)raw->u.seq.n != a->numel)
            return FAILF(V, SD_E_FORMAT, "object array of %lld items holds %zu", (long long)a->numel, raw->u.seq.n);
        a->objects = raw;
        return SD_OK;
    }
    if (raw->type != SD_PK_BYTES)
        return FAILF(V, SD_E_FORMAT, "numpy array data is a %s, not bytes", sd_pk_type_name(raw->type));
    if (a->dtype.itemsize && (uint64_t)a->numel > SIZE_MAX / (uint64_t)a->dtype.itemsize)
        return fail(V, SD_E_FORMAT, "numpy array size overflows");
    uint64_t need = (uint64_t)a->numel * (uint64_t)a->dtype.itemsize;
    if (raw->u.s.n != need)
        return FAILF(V, SD_E_FORMAT, "numpy array of %lld values of %d bytes holds %zu bytes of data, not %llu",
                     (long long)a->numel, a->dtype.itemsize, raw->u.s.n, (unsigned long long)need);
    a->data = (const unsigned char *)raw->u.s.p;
    a->built = 1;
    return SD_OK;
}

/* ndarray state: ([version,] shape, dtype, is_fortran, data). */
static sd_status build_array(vm *V, sd_pk_obj *o, const sd_pk_obj *state) {
    sd_pk_array *a = &o->u.a;
    if (a->built) return fail(V, SD_E_FORMAT, "a numpy array's state is set twice");
    if (state->type != SD_PK_TUPLE || (state->u.seq.n != 5 && state->u.seq.n != 4))
        return fail(V, SD_E_FORMAT, "numpy array state is not the tuple numpy writes");
    sd_pk_obj *const *s = state->u.seq.v + (state->u.seq.n == 5);
    if (state->u.seq.n == 5 && (!is_int(state->u.seq.v[0]) || state->u.seq.v[0]->u.i != 1))
        return fail(V, SD_E_UNSUPPORTED, "numpy array state version is not 1");
    sd_status st = set_shape(V, a, s[0]);
    if (st) return st;
    if (s[1]->type != SD_PK_DTYPE) return fail(V, SD_E_FORMAT, "numpy array state without a dtype");
    if (!is_int(s[2])) return fail(V, SD_E_FORMAT, "numpy array fortran flag is not a boolean");
    a->dtype = s[1]->u.d;
    a->fortran = s[2]->u.i != 0;
    if ((st = set_data(V, a, s[3]))) return st;
    a->built = 1;
    return SD_OK;
}

/* Storage offset (in elements) of the element at C-order index flat. */
static int64_t storage_offset(const sd_pk_array *a, int64_t flat) {
    if (!a->fortran || a->ndim <= 1) return flat;
    int64_t idx[SD_PICKLE_MAX_DIMS], rest = flat, stride = 1, off = 0;
    for (int k = a->ndim - 1; k >= 0; k--) {
        idx[k] = a->shape[k] ? rest % a->shape[k] : 0;
        rest = a->shape[k] ? rest / a->shape[k] : 0;
    }
    for (int k = 0; k < a->ndim; k++) {
        off += idx[k] * stride;
        stride *= a->shape[k];
    }
    return off;
}

/* The raw bits of element flat, in native order; integers sign-extended. */
static uint64_t raw_bits(const sd_pk_array *a, int64_t flat) {
    const int n = a->dtype.itemsize;
    const unsigned char *p = a->data + storage_offset(a, flat) * n;
    uint64_t v = 0;
    if (a->dtype.big)
        for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    else
        v = read_le(p, n);
    if (a->dtype.kind == 'i' && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
    return v;
}

double sd_pk_array_at(const sd_pk_array *a, int64_t flat) {
    uint64_t v = raw_bits(a, flat);
    switch (a->dtype.kind) {
    case 'b': return v != 0;
    case 'u': return (double)v;
    case 'i': return (double)(int64_t)v;
    case 'f':
        if (a->dtype.itemsize == 2) return sd_f16_to_f32((uint16_t)v);
        if (a->dtype.itemsize == 4) {
            uint32_t w = (uint32_t)v;
            float f;
            memcpy(&f, &w, 4);
            return f;
        } else {
            double d;
            memcpy(&d, &v, 8);
            return d;
        }
    }
    return 0.0;
}

/* A double as float without undefined behaviour: beyond the float range is +-inf. */
static float to_float(double d) {
    if (d > FLT_MAX) return INFINITY;
    if (d < -FLT_MAX) return -INFINITY;
    return (float)d;
}

void sd_pk_array_read(const sd_pk_array *a, int64_t flat, int64_t count, float *out) {
    const int c_order = !a->fortran || a->ndim <= 1;
    if (c_order && !a->dtype.big && a->dtype.kind == 'f' && a->dtype.itemsize == 4) {
        memcpy(out, a->data + flat * 4, (size_t)count * 4);
        return;
    }
    if (c_order && !a->dtype.big && a->dtype.kind == 'f' && a->dtype.itemsize == 8) {
        const unsigned char *p = a->data + flat * 8;
        for (int64_t i = 0; i < count; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = to_float(d);
        }
        return;
    }
    for (int64_t i = 0; i < count; i++) out[i] = to_float(sd_pk_array_at(a, flat + i));
}

/* UTF-8 of one code point; 0 when it is not one. */
static int utf8_put(uint32_t c, char *out) {
    if (c < 0x80) return out[0] = (char)c, 1;
    if (c < 0x800) return out[0] = (char)(0xc0 | c >> 6), out[1] = (char)(0x80 | (c & 0x3f)), 2;
    if (c >= 0xd800 && c < 0xe000) return 0;
    if (c < 0x10000)
        return out[0] = (char)(0xe0 | c >> 12), out[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
               out[2] = (char)(0x80 | (c & 0x3f)), 3;
    if (c < 0x110000)
        return out[0] = (char)(0xf0 | c >> 18), out[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
               out[2] = (char)(0x80 | ((c >> 6) & 0x3f)), out[3] = (char)(0x80 | (c & 0x3f)), 4;
    return 0;
}

int sd_pk_array_str(const sd_pk_array *a, int64_t i, char *buf, size_t size) {
    if (!a->built || a->ndim > 1 || i < 0 || i >= a->numel || !size) return -1;
    if (a->dtype.kind == 'O') {
        const sd_pk_obj *o = a->objects->u.seq.v[i];
        if (!is_text(o) || o->u.s.n >= size) return -1;
        memcpy(buf, o->u.s.p, o->u.s.n);
        buf[o->u.s.n] = '\0';
        return 0;
    }
    const unsigned char *p = a->data + (size_t)i * (size_t)a->dtype.itemsize;
    size_t n = (size_t)a->dtype.itemsize, len = 0;
    if (a->dtype.kind == 'S') {
        while (n && !p[n - 1]) n--;
        if (n >= size) return -1;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return 0;
    }
    if (a->dtype.kind != 'U') return -1;
    for (size_t k = 0; k + 4 <= n; k += 4) {
        uint32_t c = a->dtype.big ? (uint32_t)(p[k] << 24 | p[k + 1] << 16 | p[k + 2] << 8 | p[k + 3])
                                  : (uint32_t)read_le(p + k, 4);
        if (!c) break;
        char u[4];
        int m = utf8_put(c, u);
        if (!m || len + (size_t)m >= size) return -1;
        memcpy(buf + len, u, (size_t)m);
        len += (size_t)m;
    }
    buf[len] = '\0';
    return 0;
}

/* ---- REDUCE: the accepted callables ---- */

/* _codecs.encode(text, 'latin1'): the code points of text (all < 256) as bytes. */
static sd_status reduce_encode(vm *V, sd_pk_obj *const *arg, size_t n) {
    if (n != 2 || arg[0]->type != SD_PK_STR || !(text_is(arg[1], "latin1") || text_is(arg[1], "latin-1")))
        return fail(V, SD_E_UNSUPPORTED, "_codecs.encode is accepted only as encode(str, 'latin1')");
    const unsigned char *s = (const unsigned char *)arg[0]->u.s.p;
    size_t len = arg[0]->u.s.n, out_n = 0;
    unsigned char *out = own(V, len);
    if (!out) return fail(V, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            out[out_n++] = s[i++];
        } else if ((s[i] & 0xe0) == 0xc0 && i + 1 < len && (s[i + 1] & 0xc0) == 0x80 && s[i] <= 0xc3 && s[i] >= 0xc2) {
            out[out_n++] = (unsigned char)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f));
            i += 2;
        } else {
            return fail(V, SD_E_FORMAT, "latin-1 bytes written as text hold a character above U+00FF");
        }
    }
    sd_pk_obj *o = new_obj(V, SD_PK_BYTES);
    if (!o) return no_object(V);
    o->u.s.p = (const char *)out;
    o->u.s.n = out_n;
    return push(V, o);
}

static sd_status reduce(vm *V, const sd_pk_obj *fn, const sd_pk_obj *args) {
    char msgbuf[300];
    if (fn->type != SD_PK_GLOBAL)
        return FAILF(V, SD_E_UNSUPPORTED, "REDUCE calls a %s: only numpy's array functions are accepted",
                     sd_pk_type_name(fn->type));
    if (args->type != SD_PK_TUPLE) return fail(V, SD_E_FORMAT, "REDUCE arguments are not a tuple");
    sd_pk_obj *const *arg = args->u.seq.v;
    size_t n = args->u.seq.n;
    sd_status st;
    switch (fn->u.g) {
    case G_RECONSTRUCT: { /* _reconstruct(ndarray, shape, b'b'): an empty array, then BUILD */
        if (n != 3 || arg[0]->type != SD_PK_GLOBAL || arg[0]->u.g != G_NDARRAY || !is_text(arg[2]))
            return fail(V, SD_E_UNSUPPORTED, "_reconstruct is accepted only as _reconstruct(numpy.ndarray, shape, b'b')");
        sd_pk_obj *o = new_obj(V, SD_PK_ARRAY);
        return push(V, o);
    }
    case G_DTYPE: { /* dtype('f4', False, True): state follows with BUILD */
        sd_pk_obj *o = new_obj(V, SD_PK_DTYPE);
        if (!o) return no_object(V);
        if (n < 1 || !is_text(arg[0]) || parse_dtype(arg[0]->u.s.p, arg[0]->u.s.n, &o->u.d))
            return FAILF(V, SD_E_UNSUPPORTED, "numpy dtype '%.*s' is not supported (bool, int, uint, float, S, U, O)",
                         n >= 1 && is_text(arg[0]) ? (int)(arg[0]->u.s.n < 40 ? arg[0]->u.s.n : 40) : 1,
                         n >= 1 && is_text(arg[0]) ? arg[0]->u.s.p : "?");
        return push(V, o);
    }
    case G_FROMBUFFER: { /* protocol 5: _frombuffer(buffer, dtype, shape, order) */
        if (n != 4 || arg[1]->type != SD_PK_DTYPE || !(text_is(arg[3], "C") || text_is(arg[3], "F")))
            return fail(V, SD_E_FORMAT, "_frombuffer arguments are not (buffer, dtype, shape, 'C' or 'F')");
        sd_pk_obj *o = new_obj(V, SD_PK_ARRAY);
        if (!o) return no_object(V);
        o->u.a.dtype = arg[1]->u.d;
        if (o->u.a.dtype.kind == 'O') return fail(V, SD_E_FORMAT, "_frombuffer of an object dtype");
        o->u.a.fortran = text_is(arg[3], "F");
        if ((st = set_shape(V, &o->u.a, arg[2])) || (st = set_data(V, &o->u.a, arg[0]))) return st;
        return push(V, o);
    }
    case G_SCALAR: { /* scalar(dtype, raw bytes): one number, or one string (numpy.str_, bytes_) */
        if (n != 2 || arg[0]->type != SD_PK_DTYPE || arg[1]->type != SD_PK_BYTES)
            return fail(V, SD_E_UNSUPPORTED, "numpy scalar is accepted only as scalar(dtype, bytes)");
        sd_pk_array a;
        memset(&a, 0, sizeof a);
        a.dtype = arg[0]->u.d;
        a.numel = 1;
        if (a.dtype.kind == 'O' || !a.dtype.kind) return fail(V, SD_E_UNSUPPORTED, "numpy scalar of the object dtype");
        if ((st = set_data(V, &a, arg[1]))) return st;
        if (a.dtype.kind == 'S' || a.dtype.kind == 'U') { /* UTF-8 needs at most the 4 bytes of a UCS-4 unit */
            char *text = own(V, (size_t)a.dtype.itemsize + 1);
            sd_pk_obj *o = new_obj(V, a.dtype.kind == 'S' ? SD_PK_BYTES : SD_PK_STR);
            if (!text || !o) return no_object(V);
            if (sd_pk_array_str(&a, 0, text, (size_t)a.dtype.itemsize + 1))
                return fail(V, SD_E_FORMAT, "numpy str scalar holds an invalid character");
            o->u.s.p = text;
            o->u.s.n = strlen(text);
            return push(V, o);
        }
        sd_pk_obj *o = new_obj(V, a.dtype.kind == 'f' ? SD_PK_FLOAT : SD_PK_INT);
        if (!o) return no_object(V);
        uint64_t bits = raw_bits(&a, 0);
        if (a.dtype.kind == 'f') o->u.f = sd_pk_array_at(&a, 0);
        else if (a.dtype.kind == 'u' && bits > INT64_MAX) return fail(V, SD_E_UNSUPPORTED, "integer wider than 63 bits");
        else o->u.i = a.dtype.kind == 'b' ? bits != 0 : (int64_t)bits;
        return push(V, o);
    }
    case G_ENCODE: return reduce_encode(V, arg, n);
    case G_BYTES:
        if (n != 0) return fail(V, SD_E_UNSUPPORTED, "bytes(...) is accepted only without arguments");
        return push_span(V, SD_PK_BYTES, 0);
    }
    return fail(V, SD_E_UNSUPPORTED, "REDUCE on numpy.ndarray itself is not accepted");
}

/* ---- the machine ---- */

static sd_status memo_put(vm *V, uint64_t idx) {
    sd_status st = SD_OK;
    sd_pk_obj *o = top(V, &st);
    if (!o) return st;
    /* Memo indices come in order; one far ahead of the count would only make us allocate. */
    if (idx > 2 * (uint64_t)V->memo_len + 1024) return fail(V, SD_E_FORMAT, "memo index far beyond the values memoised");
    if (idx >= V->cap_memo) {
        const size_t old_cap = V->cap_memo;
        sd_pk_obj **m = sd_array_grow(V->memo, &V->cap_memo, (size_t)idx + 1, sizeof *m, 256);
        if (!m) return fail(V, SD_E_NOMEM, "out of memory");
        memset(m + old_cap, 0, (V->cap_memo - old_cap) * sizeof *m);
        V->memo = m;
    }
    if (!V->memo[idx]) V->memo_len++;
    V->memo[idx] = o;
    return SD_OK;
}

static sd_status memo_get(vm *V, uint64_t idx) {
    if (idx >= V->cap_memo || !V->memo[idx]) return fail(V, SD_E_FORMAT, "memo index never set");
    return push(V, V->memo[idx]);
}

/* A new list, tuple or dict of the values above the innermost mark. */
static sd_status collect(vm *V, sd_pk_type t) {
    size_t from = 0;
    sd_status st = pop_mark(V, &from);
    if (st) return st;
    if (t == SD_PK_DICT && (V->sp - from) % 2) return fail(V, SD_E_FORMAT, "DICT with an odd number of values");
    sd_pk_obj *o = new_obj(V, t);
    if (!o) return no_object(V);
    for (size_t i = from; i < V->sp && !st; i++) st = seq_push(V, o, V->stack[i]);
    V->sp = from;
    return st ? st : push(V, o);
}

/* APPENDS / SETITEMS: the values above the mark go into the list / dict below it. */
static sd_status extend(vm *V, sd_pk_type t) {
    size_t from = 0;
    sd_status st = pop_mark(V, &from);
    if (st) return st;
    if (from <= stack_base(V)) return fail(V, SD_E_FORMAT, "stack underflow (truncated or malformed pickle)");
    sd_pk_obj *target = V->stack[from - 1];
    if (target->type != t)
        return fail(V, SD_E_UNSUPPORTED, t == SD_PK_LIST ? "APPENDS to something that is not a list"
                                                         : "SETITEMS on something that is not a dict");
    if (t == SD_PK_DICT && (V->sp - from) % 2) return fail(V, SD_E_FORMAT, "SETITEMS with an odd number of values");
    for (size_t i = from; i < V->sp && !st; i++) st = seq_push(V, target, V->stack[i]);
    V->sp = from;
    return st;
}

static sd_status tuple_n(vm *V, size_t n) {
    if (V->sp < stack_base(V) + n) return fail(V, SD_E_FORMAT, "stack underflow (truncated or malformed pickle)");
    sd_pk_obj *o = new_obj(V, SD_PK_TUPLE);
    if (!o) return no_object(V);
    sd_status st = SD_OK;
    for (size_t i = V->sp - n; i < V->sp && !st; i++) st = seq_push(V, o, V->stack[i]);
    V->sp -= n;
    return st ? st : push(V, o);
}

static const char *refused_opcode(unsigned char op) {
    switch (op) {
    case 'i': return "INST (creates an object of a class)";
    case 'o': return "OBJ (creates an object of a class)";
    case 0x81: return "NEWOBJ (creates an object of a class)";
    case 0x92: return "NEWOBJ_EX (creates an object of a class)";
    case 'P': case 'Q': return "a persistent id";
    case 0x82: case 0x83: case 0x84: return "an extension registry code";
    case 0x8f: case 0x90: case 0x91: return "a set";
    case 0x97: return "an out-of-band buffer (protocol 5 with buffer_callback)";
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'p': case 'g':
        return "a protocol-0 text opcode (re-save the file with pickle protocol 2 or higher)";
    }
    return NULL;
}

static sd_status step(vm *V, int *done) {
    char msgbuf[200];
    V->op_at = (size_t)(V->p - V->begin);
    unsigned char op = *V->p++;
    uint64_t n = 0;
    size_t from = 0;
    sd_status st = SD_OK;
    sd_pk_obj *a, *b, *o;
    switch (op) {
    case 0x80: /* PROTO */
        if ((st = arg_le(V, 1, &n))) return st;
        if (n > 5) return FAILF(V, SD_E_UNSUPPORTED, "pickle protocol %llu (this reader knows 2-5)", (unsigned long long)n);
        return SD_OK;
    case 0x95: /* FRAME: a size hint for buffering; the opcodes follow in line */
        if ((st = arg_le(V, 8, &n))) return st;
        return avail(V, n) ? SD_OK : fail(V, SD_E_FORMAT, "a frame runs past the end of the file (truncated?)");
    case '.': /* STOP */
        if (!(a = pop(V, &st))) return st;
        V->P->root = a;
        *done = 1;
        return SD_OK;
    case '(': /* MARK */
        if (V->nmarks == V->cap_marks) {
            size_t *m = sd_array_grow(V->marks, &V->cap_marks, V->nmarks + 1, sizeof *m, 16);
            if (!m) return fail(V, SD_E_NOMEM, "out of memory");
            V->marks = m;
        }
        V->marks[V->nmarks++] = V->sp;
        return SD_OK;
    case '0': /* POP: the top value, or the mark on top */
        if (V->sp > stack_base(V)) V->sp--;
        else if ((st = pop_mark(V, &from))) return st;
        return SD_OK;
    case '1': /* POP_MARK */
        if ((st = pop_mark(V, &from))) return st;
        V->sp = from;
        return SD_OK;
    case '2': /* DUP */
        if (!(a = top(V, &st))) return st;
        return push(V, a);
    case 'N': return push(V, new_obj(V, SD_PK_NONE));
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
        if ((o = new_obj(V, SD_PK_BOOL))) o->u.i = op == 0x88;
        return push(V, o);
    case 'J': /* BININT */
        if ((st = arg_le(V, 4, &n))) return st;
        return push_int(V, (int32_t)(uint32_t)n);
    case 'K': if ((st = arg_le(V, 1, &n))) return st; return push_int(V, (int64_t)n);
    case 'M': if ((st = arg_le(V, 2, &n))) return st; return push_int(V, (int64_t)n);
    case 0x8a: if ((st = arg_le(V, 1, &n))) return st; return push_long(V, n);
    case 0x8b:
        if ((st = arg_le(V, 4, &n))) return st;
        if (n & 0x80000000u) return fail(V, SD_E_FORMAT, "negative LONG4 length");
        return push_long(V, n);
    case 'G': { /* BINFLOAT: big-endian double */
        if (!avail(V, 8)) return fail(V, SD_E_FORMAT, "truncated float");
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | V->p[i];
        V->p += 8;
        if (!(o = new_obj(V, SD_PK_FLOAT))) return no_object(V);
        memcpy(&o->u.f, &bits, 8);
        return push(V, o);
    }
    case 'U': case 'C': /* SHORT_BINSTRING (Python 2 str), SHORT_BINBYTES */
        if ((st = arg_le(V, 1, &n))) return st;
        return push_span(V, SD_PK_BYTES, n);
    case 'T': /* BINSTRING */
        if ((st = arg_le(V, 4, &n))) return st;
        if (n & 0x80000000u) return fail(V, SD_E_FORMAT, "negative BINSTRING length");
        return push_span(V, SD_PK_BYTES, n);
    case 'B': if ((st = arg_le(V, 4, &n))) return st; return push_span(V, SD_PK_BYTES, n);
    case 0x8e: case 0x96: /* BINBYTES8, BYTEARRAY8 */
        if ((st = arg_le(V, 8, &n))) return st;
        return push_span(V, SD_PK_BYTES, n);
    case 0x8c: if ((st = arg_le(V, 1, &n))) return st; return push_span(V, SD_PK_STR, n);
    case 'X': if ((st = arg_le(V, 4, &n))) return st; return push_span(V, SD_PK_STR, n);
    case 0x8d: if ((st = arg_le(V, 8, &n))) return st; return push_span(V, SD_PK_STR, n);
    case 0x98: /* READONLY_BUFFER: a no-op for in-band buffers */
        return top(V, &st) ? SD_OK : st;
    case ']': return push(V, new_obj(V, SD_PK_LIST));
    case ')': return push(V, new_obj(V, SD_PK_TUPLE));
    case '}': return push(V, new_obj(V, SD_PK_DICT));
    case 'l': return collect(V, SD_PK_LIST);
    case 't': return collect(V, SD_PK_TUPLE);
    case 'd': return collect(V, SD_PK_DICT);
    case 0x85: return tuple_n(V, 1);
    case 0x86: return tuple_n(V, 2);
    case 0x87: return tuple_n(V, 3);
    case 'a': /* APPEND */
        if (!(a = pop(V, &st)) || !(b = top(V, &st))) return st;
        if (b->type != SD_PK_LIST) return fail(V, SD_E_UNSUPPORTED, "APPEND to something that is not a list");
        return seq_push(V, b, a);
    case 'e': return extend(V, SD_PK_LIST);
    case 's': /* SETITEM */
        if (!(a = pop(V, &st)) || !(b = pop(V, &st)) || !(o = top(V, &st))) return st;
        if (o->type != SD_PK_DICT) return fail(V, SD_E_UNSUPPORTED, "SETITEM on something that is not a dict");
        if ((st = seq_push(V, o, b))) return st;
        return seq_push(V, o, a);
    case 'u': return extend(V, SD_PK_DICT);
    case 'h': if ((st = arg_le(V, 1, &n))) return st; return memo_get(V, n);
    case 'j': if ((st = arg_le(V, 4, &n))) return st; return memo_get(V, n);
    case 'q': if ((st = arg_le(V, 1, &n))) return st; return memo_put(V, n);
    case 'r': if ((st = arg_le(V, 4, &n))) return st; return memo_put(V, n);
    case 0x94: return memo_put(V, V->memo_len);
    case 'c': { /* GLOBAL "module\nname\n" */
        char module[256], name[256];
        if ((st = read_line(V, module, sizeof module)) || (st = read_line(V, name, sizeof name))) return st;
        return push_global(V, module, name);
    }
    case 0x93: { /* STACK_GLOBAL */
        if (!(b = pop(V, &st)) || !(a = pop(V, &st))) return st;
        if (a->type != SD_PK_STR || b->type != SD_PK_STR || a->u.s.n > 255 || b->u.s.n > 255)
            return fail(V, SD_E_FORMAT, "STACK_GLOBAL without two short strings");
        char module[256], name[256];
        memcpy(module, a->u.s.p, a->u.s.n);
        module[a->u.s.n] = '\0';
        memcpy(name, b->u.s.p, b->u.s.n);
        name[b->u.s.n] = '\0';
        if (strlen(module) != a->u.s.n || strlen(name) != b->u.s.n)
            return fail(V, SD_E_FORMAT, "STACK_GLOBAL name holds a NUL");
        return push_global(V, module, name);
    }
    case 'R': /* REDUCE */
        if (!(b = pop(V, &st)) || !(a = pop(V, &st))) return st;
        return reduce(V, a, b);
    case 'b': /* BUILD */
        if (!(b = pop(V, &st)) || !(a = top(V, &st))) return st;
        if (a->type == SD_PK_ARRAY) return build_array(V, a, b);
        if (a->type == SD_PK_DTYPE) return build_dtype(V, a, b);
        return FAILF(V, SD_E_UNSUPPORTED, "BUILD (sets an object's state) on a %s: only numpy arrays and dtypes are accepted",
                     sd_pk_type_name(a->type));
    }
    const char *why = refused_opcode(op);
    if (why) return FAILF(V, SD_E_UNSUPPORTED, "refuses %s", why);
    return FAILF(V, SD_E_FORMAT, "unknown opcode 0x%02x (not a pickle, or a corrupt one)", op);
}

void sd_pickle_free(sd_pickle *P) {
    if (!P) return;
    for (chunk *c = P->chunks; c;) {
        for (size_t i = 0; i < c->used; i++) {
            sd_pk_type t = c->obj[i].type;
            if (t == SD_PK_LIST || t == SD_PK_TUPLE || t == SD_PK_DICT) free(c->obj[i].u.seq.v);
        }
        chunk *next = c->next;
        free(c);
        c = next;
    }
    for (size_t i = 0; i < P->nowned; i++) free(P->owned[i]);
    free(P->owned);
    if (P->map) munmap(P->map, P->map_len);
    free(P);
}

static sd_status parse_into(sd_pickle *P, const void *data, size_t n, sd_error *err) {
    if (n == 0 || !data) return sd_fail(err, SD_E_FORMAT, "empty file (not a pickle)");
    vm V;
    memset(&V, 0, sizeof V);
    V.P = P;
    V.begin = V.p = data;
    V.end = V.begin + n;
    V.err = err;
    sd_status st = SD_OK;
    int done = 0;
    if (V.begin[0] != 0x80) st = sd_fail(err, SD_E_FORMAT, "not a binary pickle (no PROTO opcode at the start)");
    while (!st && !done) {
        if (V.p >= V.end) st = sd_fail(err, SD_E_FORMAT, "truncated: the file ends before the STOP opcode");
        else st = step(&V, &done);
    }
    free(V.stack);
    free(V.marks);
    free(V.memo);
    return st;
}

sd_status sd_pickle_parse(const void *data, size_t n, sd_pickle **out, sd_error *err) {
    *out = NULL;
    sd_pickle *P = calloc(1, sizeof *P);
    if (!P) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_status st = parse_into(P, data, n, err);
    if (st) {
        sd_pickle_free(P);
        return st;
    }
    *out = P;
    return SD_OK;
}

sd_status sd_pickle_open(const char *path, sd_pickle **out, sd_error *err) {
    *out = NULL;
    int fd;
    struct stat sb;
    sd_status so = sd_file_open(path, &fd, &sb, err); /* a FIFO must not block the open */
    if (so) return so;
    sd_pickle *P = calloc(1, sizeof *P);
    if (!P) {
        close(fd);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    size_t n = (size_t)sb.st_size;
    if (n) {
        P->map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (P->map == MAP_FAILED) {
            P->map = NULL;
            close(fd);
            sd_pickle_free(P);
            return sd_fail(err, SD_E_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        P->map_len = n;
    }
    close(fd);
    sd_status st = parse_into(P, P->map, n, err);
    if (st) {
        sd_error_prefix(err, "%s", path);
        sd_pickle_free(P);
        return st;
    }
    *out = P;
    return SD_OK;
}

const sd_pk_obj *sd_pickle_root(const sd_pickle *P) { return P->root; }

const sd_pk_obj *sd_pk_dict_get(const sd_pk_obj *o, const char *key) {
    if (!o || o->type != SD_PK_DICT) return NULL;
    const sd_pk_obj *found = NULL; /* the last one wins, as in a Python dict */
    for (size_t i = 0; i + 1 < o->u.seq.n; i += 2)
        if (text_is(o->u.seq.v[i], key)) found = o->u.seq.v[i + 1];
    return found;
}
