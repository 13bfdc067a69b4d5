/* A pickle, as sdumc import-mmsa reads it: sd_pickle_parse from memory and sd_pickle_open from a
 * file must agree; an accepted pickle is walked whole (every array element and string read, which
 * the sanitizers check against the input's bounds) and its MMSA structure checked (sd_mmsa_check).
 * The parser executes nothing: a global other than numpy's array functions is refused. */
#include "data/mmsa.h"
#include "fuzz_util.h"
#include "io/pickle.h"

/* Reads what is reachable from o, within a budget of visits (containers may hold themselves, or one
 * list many times). Returns a number that depends on every value read, so nothing is optimised away. */
static double walk(const sd_pk_obj *o, int depth, long *budget) {
    if (!o || depth > 64 || --*budget < 0) return 0.0;
    double h = (double)o->type;
    switch (o->type) {
    case SD_PK_INT: case SD_PK_BOOL: return h + (double)(o->u.i & 0xff);
    case SD_PK_FLOAT: return h + (isfinite(o->u.f) ? 1.0 : 2.0);
    case SD_PK_STR: case SD_PK_BYTES:
        for (size_t i = 0; i < o->u.s.n; i++) h += (unsigned char)o->u.s.p[i];
        return h;
    case SD_PK_LIST: case SD_PK_TUPLE: case SD_PK_DICT:
        for (size_t i = 0; i < o->u.seq.n; i++) h += walk(o->u.seq.v[i], depth + 1, budget);
        return h;
    case SD_PK_ARRAY: {
        const sd_pk_array *a = &o->u.a;
        if (!a->built) return h;
        int64_t numel = 1;
        for (int k = 0; k < a->ndim; k++) numel *= a->shape[k];
        FUZZ_CHECK(numel == a->numel);
        if (a->dtype.kind == 'O') return h + walk(a->objects, depth + 1, budget);
        if (a->dtype.kind == 'S' || a->dtype.kind == 'U') {
            char buf[256];
            for (int64_t i = 0; i < a->numel && i < 4096 && a->ndim <= 1; i++)
                if (!sd_pk_array_str(a, i, buf, sizeof buf)) h += (double)strlen(buf);
            return h;
        }
        float chunk[64];
        for (int64_t i = 0; i < a->numel && i < (1 << 16); i += 64) {
            int64_t k = a->numel - i < 64 ? a->numel - i : 64;
            sd_pk_array_read(a, i, k, chunk);
            for (int64_t j = 0; j < k; j++) h += isfinite(chunk[j]) ? 0.0 : 1.0;
        }
        return h;
    }
    default: return h;
    }
}

static int fuzz_pickle(const uint8_t *data, size_t size) {
    sd_pickle *p = NULL;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_pickle_parse(data, size, &p, &err);
    FUZZ_CHECK((s == SD_OK) == (p != NULL));
    FUZZ_CHECK(s == SD_OK || err.msg[0] != '\0');
    sd_pickle *q = NULL;
    sd_status s2 = sd_pickle_open(fuzz_write("in.pkl", data, size), &q, &err);
    FUZZ_CHECK((s == SD_OK) == (s2 == SD_OK));
    if (s == SD_OK) {
        long budget_a = 100000, budget_b = 100000;
        double a = walk(sd_pickle_root(p), 0, &budget_a), b = walk(sd_pickle_root(q), 0, &budget_b);
        FUZZ_CHECK(a == b || (isnan(a) && isnan(b)));
        sd_mmsa_options o = sd_mmsa_default_options();
        sd_mmsa_report r;
        sd_error e2;
        sd_error_clear(&e2);
        if (sd_mmsa_check(sd_pickle_root(p), &o, &r, &e2)) FUZZ_CHECK(e2.msg[0] != '\0');
    }
    sd_pickle_free(p);
    sd_pickle_free(q);
    return s;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_pickle(data, size);
    return 0;
}
#endif
