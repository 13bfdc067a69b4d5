/* A restricted reader of Python pickles: the data that MMSA's feature files (aligned_50.pkl,
 * unaligned_50.pkl of CMU-MOSI / CMU-MOSEI / CH-SIMS) hold, and nothing else.
 *
 * Accepted: pickle protocols 2 to 5 (and the binary opcodes of protocol 1); None, booleans,
 * integers (up to 64 bits), floats, str and bytes, lists, tuples and dicts, the memo; numpy arrays
 * and dtypes, built the way numpy pickles them: numpy.core.multiarray._reconstruct(ndarray,
 * shape, b'b') followed by a BUILD with the array state (version, shape, dtype, fortran order,
 * raw data), numpy.dtype(str, False, True) followed by a BUILD with the dtype state,
 * numpy.core.numeric._frombuffer(buffer, dtype, shape, order) (protocol 5), numpy scalars
 * (numpy.core.multiarray.scalar: numbers, numpy.str_, numpy.bytes_), and bytes written by protocol 2 from Python 3
 * (_codecs.encode(str, 'latin1')). numpy 2's module names (numpy._core.*) are accepted too.
 * Array dtypes: booleans, integers, floats (2, 4, 8 bytes, either byte order), fixed-width
 * strings (S, U) and object arrays (whose items are again the values above).
 *
 * Refused, with an error naming the opcode or the global: every other global (os.system,
 * builtins.eval, ...), REDUCE on anything but the callables above, INST/OBJ/NEWOBJ, persistent
 * ids, extension codes, out-of-band buffers, sets, structured dtypes, protocol-0 text opcodes.
 * Nothing from the file is ever executed or imported: a global is only compared with that list.
 *
 * Bounded: at most SD_PICKLE_MAX_OBJECTS values and SD_PICKLE_MAX_REFS container slots, memo
 * indices close to the number of values memoised, 8 array dims, sizes checked for overflow and
 * against the file. Arrays and strings point into the file (memory-mapped by sd_pickle_open), so
 * a multi-gigabyte feature file costs its page cache, not a copy. */
#ifndef SD_IO_PICKLE_H
#define SD_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define SD_PICKLE_MAX_OBJECTS (1 << 22)
#define SD_PICKLE_MAX_REFS (1 << 24)
#define SD_PICKLE_MAX_DIMS 8

typedef enum {
    SD_PK_NONE,
    SD_PK_BOOL,
    SD_PK_INT,
    SD_PK_FLOAT,
    SD_PK_STR,   /* text (UTF-8 as in the file) */
    SD_PK_BYTES, /* bytes (and Python 2 str) */
    SD_PK_LIST,
    SD_PK_TUPLE,
    SD_PK_DICT,  /* items: key, value, key, value, ... in file order */
    SD_PK_ARRAY,
    SD_PK_DTYPE,
    SD_PK_GLOBAL /* one of the accepted callables (internal) */
} sd_pk_type;

typedef struct sd_pk_obj sd_pk_obj;

/* A numpy dtype: kind 'b' bool, 'i' signed, 'u' unsigned, 'f' float, 'S' bytes, 'U' UCS-4 text,
 * 'O' object; itemsize in bytes; big = 1 for big-endian data. */
typedef struct {
    char kind;
    int itemsize;
    int big;
} sd_pk_dtype;

typedef struct {
    sd_pk_dtype dtype;
    int ndim;
    int64_t shape[SD_PICKLE_MAX_DIMS];
    int fortran;                 /* 1: column-major data */
    const unsigned char *data;   /* [numel * itemsize] raw values (not for 'O') */
    int64_t numel;
    const sd_pk_obj *objects;    /* 'O' arrays: a list of numel values, in the array's order */
    int built;                   /* 0 until its state was set (an empty shell otherwise) */
} sd_pk_array;

struct sd_pk_obj {
    sd_pk_type type;
    union {
        int64_t i;                                  /* BOOL, INT */
        double f;                                   /* FLOAT */
        struct { const char *p; size_t n; } s;      /* STR, BYTES (not NUL-terminated) */
        struct { sd_pk_obj **v; size_t n, cap; } seq; /* LIST, TUPLE, DICT (2n entries for n pairs) */
        sd_pk_array a;                              /* ARRAY */
        sd_pk_dtype d;                              /* DTYPE */
        int g;                                      /* GLOBAL: which callable */
    } u;
};

typedef struct sd_pickle sd_pickle;

/* Parses a pickle held in memory (data must outlive the result). */
sd_status sd_pickle_parse(const void *data, size_t n, sd_pickle **out, sd_error *err);
/* Maps the file and parses it; messages name the file. */
sd_status sd_pickle_open(const char *path, sd_pickle **out, sd_error *err);
void sd_pickle_free(sd_pickle *p);
const sd_pk_obj *sd_pickle_root(const sd_pickle *p);

/* "None", "int", "str", "list", "numpy array", ... (for messages). */
const char *sd_pk_type_name(sd_pk_type t);
/* The value of key in a dict (str or bytes keys); NULL when absent or o is not a dict. */
const sd_pk_obj *sd_pk_dict_get(const sd_pk_obj *o, const char *key);
/* Element of an array at a flat index in C order (row-major, whatever the storage order), as a
 * double: numeric dtypes only (bool, int, uint, float). */
double sd_pk_array_at(const sd_pk_array *a, int64_t flat);
/* count consecutive elements from flat index `flat` (C order) as floats into out: numeric dtypes
 * only; a fast path for C-ordered little-endian float32/float64 data. */
void sd_pk_array_read(const sd_pk_array *a, int64_t flat, int64_t count, float *out);
/* Element i of a 1-D string array ('S', 'U', or 'O' holding str/bytes) as UTF-8 into buf (NUL
 * added, trailing NULs of fixed-width items removed). -1 when it is not a string or does not fit. */
int sd_pk_array_str(const sd_pk_array *a, int64_t i, char *buf, size_t size);

#endif
