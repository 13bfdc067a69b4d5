/* Opening a dataset: labels.csv, then every feature file's header (and values), all checked up
 * front; one report lists every problem. Legend: N rows of labels.csv, T frames, D dim. */
#include "dataset_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/array.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "feature_file.h"
#include "io/csv.h"
#include "io/file.h"
#include "io/json.h"
#include "io/npy.h"
#include "core/hash.h"
#include "core/strbuf.h"

#define LABELS_FILE "labels.csv"
#define META_FILE "dataset.json"
#define LABELS_MAX_BYTES ((size_t)1 << 30)
#define META_MAX_BYTES ((size_t)1 << 20)

static const char *const mod_names[SD_MOD_COUNT] = {"audio", "text", "video", "sim"};
static const char *const mod_folders[SD_MOD_COUNT] = {"audio", "text", "video", "text_sim"};
static const char *const split_names[SD_SPLIT_COUNT] = {"train", "valid", "test"};

sd_dataset_options sd_dataset_default_options(void) {
    sd_dataset_options o;
    memset(&o, 0, sizeof o);
    o.check_values = 1;
    o.need_splits = SD_SPLITS_ALL;
    return o;
}

const char *sd_modality_name(int m) { return m >= 0 && m < SD_MOD_COUNT ? mod_names[m] : NULL; }
const char *sd_modality_default_folder(int m) {
    return m >= 0 && m < SD_MOD_COUNT ? mod_folders[m] : NULL;
}
const char *sd_split_name(sd_split s) {
    return (int)s >= 0 && (int)s < SD_SPLIT_COUNT ? split_names[s] : NULL;
}
int sd_split_from_name(const char *name, sd_split *out) {
    for (int s = 0; s < SD_SPLIT_COUNT; s++)
        if (!strcmp(name, split_names[s])) {
            *out = (sd_split)s;
            return 0;
        }
    return -1;
}

/* ---- names: FNV-1a hash, open addressing over ids (-1 = empty slot) ---- */

static uint64_t name_hash(const char *s) { return sd_fnv1a_str(SD_FNV1A_INIT, s); }

static size_t table_size(int64_t n) { return sd_array_next_cap(0, (size_t)n * 2, 16); }

/* Finds name; returns its id, or -1 and the empty slot where it would go. */
static int64_t table_find(const int64_t *slots, size_t nslots, char *const *names, const char *name,
                          size_t *slot) {
    size_t i = (size_t)name_hash(name) & (nslots - 1);
    while (slots[i] >= 0) {
        if (!strcmp(names[slots[i]], name)) return slots[i];
        i = (i + 1) & (nslots - 1);
    }
    if (slot) *slot = i;
    return -1;
}

/* ---- labels.csv ---- */

typedef struct {
    char *name;  /* into the file buffer, NULL when the row is unusable */
    float label;
    int split;   /* -1 unknown */
    int line;
    int bad;     /* problems found with this row */
    int dup;     /* a later duplicate of an earlier row */
    int64_t rows[SD_MOD_COUNT], cols[SD_MOD_COUNT];
    int have[SD_MOD_COUNT]; /* header read */
    unsigned char dtype[SD_MOD_COUNT];
} row_t;

typedef struct {
    const sd_dataset_options *o;
    char *dir;
    char *folder[SD_MOD_COUNT];
    int has_folder[SD_MOD_COUNT];
    char labels_path[4096];
    sd_csv_reader csv;  /* labels.csv, parsed in place (the row names point into it) */
    row_t *rows;        /* [N] */
    int64_t nrows;
    int dim[SD_MOD_COUNT];
    double label_lo, label_hi; /* from dataset.json, default [-3, 3] */
    int64_t nonfinite[SD_MOD_COUNT]; /* counted with nonfinite_zero */
    sd_strbuf global;   /* problems of the dataset as a whole: never skippable */
    sd_strbuf per_row;   /* problems of single utterances */
    int skip_would_empty; /* dropping the utterances with problems would empty a split */
} validator;

static int plain_file_name(const char *s) {
    if (!*s || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20) return 0;
    return 1;
}

/* Parses a label; 0 and *v on success. */
static int parse_label(const char *s, double *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* dataset.json (optional): {"label_range": [LO, HI]}; other keys are ignored. */
static sd_status read_meta(validator *V, sd_error *err) {
    V->label_lo = SD_LABEL_MIN;
    V->label_hi = SD_LABEL_MAX;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", V->dir, META_FILE);
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return SD_OK; /* optional */
    char *buf = NULL;
    size_t n = 0;
    sd_json *j = NULL;
    sd_error e;
    sd_error_clear(&e);
    /* io/file.h: a FIFO or another special file in its place is a problem, never a hang */
    const sd_status rs = sd_file_read_all(path, META_MAX_BYTES, &buf, &n, &e);
    if (rs == SD_E_NOMEM) {
        if (err) *err = e;
        return rs;
    }
    if (rs) {
        sd_strbuf_line(&V->global, "%s", e.msg);
    } else if (sd_json_parse(buf, n, &j, &e)) {
        sd_strbuf_line(&V->global, "%s: %s", path, e.msg);
    } else {
        const sd_json *r = sd_json_get(j, "label_range");
        if (j->type != SD_JSON_OBJECT)
            sd_strbuf_line(&V->global, "%s: not a JSON object", path);
        else if (r && (r->type != SD_JSON_ARRAY || r->len != 2 || r->items[0].type != SD_JSON_NUMBER ||
                       r->items[1].type != SD_JSON_NUMBER || !isfinite(r->items[0].number) ||
                       !isfinite(r->items[1].number) || !(r->items[0].number < r->items[1].number)))
            sd_strbuf_line(&V->global, "%s: \"label_range\" must be [LO, HI] with LO < HI", path);
        else if (r) {
            V->label_lo = r->items[0].number;
            V->label_hi = r->items[1].number;
        }
    }
    sd_json_free(j);
    free(buf);
    return SD_OK;
}

/* The columns of labels.csv, found by name in its header; a record needs `needed` fields. */
typedef struct {
    int name, label, split, needed;
} label_columns;

/* The header: the three columns, or a global problem for each one missing (then -1). */
static int read_header(validator *V, label_columns *c) {
    static const char *const names[3] = {"name", "label", "split"};
    int col[3];
    c->needed = sd_csv_columns(&V->csv, names, 3, col);
    for (int i = 0; i < 3; i++)
        if (col[i] < 0)
            sd_strbuf_line(&V->global, "%s:%d: the header has no '%s' column (expected name,label,split)",
                           V->labels_path, V->csv.line, names[i]);
    c->name = col[0], c->label = col[1], c->split = col[2];
    return c->needed ? 0 : -1;
}

/* A record of the CSV reader's current line into row r, each problem a per-row problem. */
static void read_row(validator *V, const label_columns *c, row_t *r) {
    char **f = V->csv.field;
    const int nf = V->csv.n, line = V->csv.line;
    r->line = line;
    r->split = -1;
    if (nf < c->needed) {
        sd_strbuf_line(&V->per_row, "%s:%d: %d field%s, expected at least %d (name,label,split)",
                       V->labels_path, line, nf, nf == 1 ? "" : "s", c->needed);
        r->bad = 1;
        return;
    }
    const char *name = f[c->name], *label = f[c->label], *split = f[c->split];
    if (!plain_file_name(name)) {
        sd_strbuf_line(&V->per_row, "%s:%d: name '%s' is not a plain file name", V->labels_path,
                       line, name);
        r->bad = 1;
    } else {
        r->name = f[c->name];
    }
    double v;
    if (parse_label(label, &v)) {
        sd_strbuf_line(&V->per_row, "%s:%d: label '%s' of '%s' is not a number", V->labels_path,
                       line, label, name);
        r->bad = 1;
    } else if (v < V->label_lo || v > V->label_hi) {
        sd_strbuf_line(&V->per_row, "%s:%d: label %s of '%s' lies outside [%g, %g]%s", V->labels_path,
                       line, label, name, V->label_lo, V->label_hi,
                       V->label_lo == SD_LABEL_MIN && V->label_hi == SD_LABEL_MAX
                           ? "" : " (the label range of " META_FILE ")");
        r->bad = 1;
    } else {
        r->label = (float)v;
    }
    sd_split s;
    if (sd_split_from_name(split, &s)) {
        sd_strbuf_line(&V->per_row, "%s:%d: unknown split '%s' of '%s' (expected train, valid or test)",
                       V->labels_path, line, split, name);
        r->bad = 1;
    } else {
        r->split = (int)s;
    }
}

/* labels.csv into V->rows: a file that cannot be read or has no usable header is a global problem;
 * a malformed or wrong row is that row's problem (row_t.bad). Only running out of memory fails. */
static sd_status read_labels(validator *V, sd_error *err) {
    sd_error e;
    sd_status st = sd_csv_open(&V->csv, V->labels_path, LABELS_MAX_BYTES, &e);
    if (st == SD_E_NOMEM) {
        if (err) *err = e;
        return st;
    }
    if (st) {
        sd_strbuf_line(&V->global, "%s", e.msg);
        return SD_OK;
    }
    /* Records: at most one per line. */
    int64_t nlines = 1;
    for (const char *c = V->csv.buf; c < V->csv.end; c++) nlines += *c == '\n';
    V->rows = calloc((size_t)nlines, sizeof *V->rows);
    if (!V->rows) return sd_fail(err, SD_E_NOMEM, "%s: out of memory", V->labels_path);

    label_columns cols;
    int header_seen = 0, k;
    while ((k = sd_csv_next(&V->csv, &e)) != 0) {
        if (k < 0 && e.code == SD_E_NOMEM) {
            if (err) *err = e;
            return SD_E_NOMEM;
        }
        if (k < 0 && !header_seen) { /* a file that cannot be read as CSV at all */
            sd_strbuf_line(&V->global, "%s", e.msg);
            return SD_OK;
        }
        if (k < 0) { /* a malformed row (a NUL byte, an unclosed quote): that row's problem */
            row_t *r = &V->rows[V->nrows++];
            r->line = V->csv.line;
            r->split = -1;
            r->bad = 1;
            sd_strbuf_line(&V->per_row, "%s", e.msg);
        } else if (!header_seen) {
            header_seen = 1;
            if (read_header(V, &cols)) return SD_OK;
        } else {
            read_row(V, &cols, &V->rows[V->nrows++]);
        }
    }
    if (!header_seen) sd_strbuf_line(&V->global, "%s: empty (expected the header name,label,split)",
                                   V->labels_path);
    return SD_OK;
}

/* Duplicate names: every later occurrence is a problem (the first one is kept). */
static sd_status check_duplicates(validator *V, sd_error *err) {
    size_t nslots = table_size(V->nrows);
    int64_t *slots = malloc(nslots * sizeof *slots);
    char **names = malloc(((size_t)V->nrows + 1) * sizeof *names);
    if (!slots || !names) {
        free(slots);
        free(names);
        return sd_fail(err, SD_E_NOMEM, "out of memory checking %lld names", (long long)V->nrows);
    }
    for (size_t i = 0; i < nslots; i++) slots[i] = -1;
    for (int64_t i = 0; i < V->nrows; i++) {
        row_t *r = &V->rows[i];
        names[i] = r->name;
        if (!r->name) continue;
        size_t slot;
        int64_t first = table_find(slots, nslots, names, r->name, &slot);
        if (first >= 0) {
            sd_strbuf_line(&V->per_row, "%s:%d: duplicate name '%s' (first on line %d)", V->labels_path,
                         r->line, r->name, V->rows[first].line);
            r->bad = 1;
            r->dup = 1;
        } else {
            slots[slot] = i;
        }
    }
    free(slots);
    free(names);
    return SD_OK;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void check_folders(validator *V) {
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", V->dir, V->folder[m]);
        V->has_folder[m] = is_dir(path);
        if (V->has_folder[m]) continue;
        struct stat st;
        if (stat(path, &st) == 0)
            sd_strbuf_line(&V->global, "%s: the %s feature folder is %s, not a folder", path, mod_names[m],
                         sd_file_kind(&st));
        else if (m != SD_MOD_SIM)
            sd_strbuf_line(&V->global, "%s: the %s feature folder does not exist", path, mod_names[m]);
        else if (V->o->require_sim)
            sd_strbuf_line(&V->global,
                         "%s: the simulated-text folder does not exist, and this needs the "
                         "text-missing flow (simulated text features, [T_s, D_t] per utterance)",
                         path);
    }
}

static int row_path(const validator *V, const row_t *r, int m, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s/%s/%s.npy", V->dir, V->folder[m], r->name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Header of every feature file: missing, malformed, zero frames. */
static void check_headers(validator *V) {
    for (int64_t i = 0; i < V->nrows; i++) {
        row_t *r = &V->rows[i];
        if (!r->name || r->dup) continue;
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            if (!V->has_folder[m]) continue;
            char path[4096];
            if (row_path(V, r, m, path, sizeof path)) {
                sd_strbuf_line(&V->per_row, "%s:%d: path of '%s' too long", V->labels_path, r->line,
                             r->name);
                r->bad = 1;
                continue;
            }
            struct stat st;
            if (stat(path, &st) != 0 && errno == ENOENT) {
                sd_strbuf_line(&V->per_row, "%s: missing feature file (%s of '%s', %s line %d)", path,
                             mod_names[m], r->name, LABELS_FILE, r->line);
                r->bad = 1;
                continue;
            }
            sd_npy_header h;
            sd_error e;
            sd_error_clear(&e);
            if (sd_npy_read_header(path, &h, &e)) {
                if (strstr(e.msg, path)) sd_strbuf_line(&V->per_row, "%s", e.msg);
                else sd_strbuf_line(&V->per_row, "%s: %s", path, e.msg);
                r->bad = 1;
                continue;
            }
            r->have[m] = 1;
            r->rows[m] = h.rows;
            r->cols[m] = h.cols;
            r->dtype[m] = (unsigned char)h.dtype;
            if (h.rows == 0) {
                sd_strbuf_line(&V->per_row, "%s: zero frames", path);
                r->bad = 1;
            }
        }
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The most common dim of a modality's files (ties: the smaller); *count of files with it. */
static int64_t mode_dim(const validator *V, int m, int64_t *count, int64_t *total, sd_error *err) {
    int64_t *d = malloc(((size_t)V->nrows + 1) * sizeof *d);
    if (!d) {
        sd_fail(err, SD_E_NOMEM, "out of memory");
        return -1;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < V->nrows; i++)
        if (V->rows[i].have[m]) d[n++] = V->rows[i].cols[m];
    qsort(d, (size_t)n, sizeof *d, cmp_i64);
    int64_t best = 0, best_n = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && d[j] == d[i]) j++;
        if (j - i > best_n) {
            best_n = j - i;
            best = d[i];
        }
        i = j;
    }
    free(d);
    *count = best_n;
    *total = n;
    return best;
}

static sd_status check_dims(validator *V, sd_error *err) {
    int64_t count[SD_MOD_COUNT] = {0}, total[SD_MOD_COUNT] = {0};
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        if (!V->has_folder[m]) continue;
        int64_t d = mode_dim(V, m, &count[m], &total[m], err);
        if (d < 0) return err ? err->code : SD_E_NOMEM;
        if (d > INT32_MAX) d = 0;
        V->dim[m] = (int)d;
    }
    /* The simulated text lives in the text feature space: its dim is the text dim. */
    int text_known = V->has_folder[SD_MOD_TEXT] && total[SD_MOD_TEXT] > 0;
    if (V->has_folder[SD_MOD_SIM] && text_known) V->dim[SD_MOD_SIM] = V->dim[SD_MOD_TEXT];
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        if (!V->has_folder[m]) continue;
        for (int64_t i = 0; i < V->nrows; i++) {
            row_t *r = &V->rows[i];
            if (!r->have[m] || r->cols[m] == V->dim[m]) continue;
            char path[4096];
            row_path(V, r, m, path, sizeof path);
            if (r->cols[m] == 0)
                sd_strbuf_line(&V->per_row, "%s: dim 0 (no features per frame)", path);
            else if (m == SD_MOD_SIM && text_known)
                sd_strbuf_line(&V->per_row,
                             "%s: dim %lld differs from the text dim %d (simulated text must be in "
                             "the text feature space)",
                             path, (long long)r->cols[m], V->dim[m]);
            else
                sd_strbuf_line(&V->per_row,
                             "%s: dim %lld differs from %d, the dim of %lld of the %lld %s files",
                             path, (long long)r->cols[m], V->dim[m], (long long)count[m],
                             (long long)total[m], mod_names[m]);
            r->bad = 1;
        }
    }
    return SD_OK;
}

/* NaN / Inf anywhere (file, frame, column), reading every value of the files still good. */
static sd_status check_values(validator *V, sd_error *err) {
    void *scratch = sd_alloc(SD_FEATURE_SCRATCH_BYTES);
    if (!scratch) return sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < V->nrows; i++) {
        row_t *r = &V->rows[i];
        if (r->bad || !r->name) continue;
        sd_status st = sd_interrupt_check(err, "while checking the feature values; nothing was written");
        if (st) {
            sd_free(scratch);
            return st;
        }
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            if (!r->have[m]) continue;
            char path[4096];
            row_path(V, r, m, path, sizeof path);
            sd_error e;
            sd_error_clear(&e);
            if (sd_feature_check(path, r->rows[m], r->cols[m], scratch, V->o->nonfinite_zero ? &V->nonfinite[m] : NULL,
                                 &e)) {
                sd_strbuf_line(&V->per_row, "%s", e.msg);
                r->bad = 1;
            }
        }
    }
    sd_free(scratch);
    return SD_OK;
}

static void check_splits(validator *V, int64_t skipped) {
    int64_t named[SD_SPLIT_COUNT] = {0}, good[SD_SPLIT_COUNT] = {0}, total_good = 0;
    for (int64_t i = 0; i < V->nrows; i++) {
        const row_t *r = &V->rows[i];
        if (r->split < 0) continue;
        named[r->split]++;
        good[r->split] += !r->bad;
        total_good += !r->bad;
    }
    int reported = 0;
    V->skip_would_empty = 0;
    for (int s = 0; s < SD_SPLIT_COUNT; s++) {
        if (!(V->o->need_splits & SD_SPLIT_BIT(s))) continue;
        V->skip_would_empty |= named[s] && !good[s];
        if (!named[s])
            sd_strbuf_line(&V->global, "%s: split '%s' is empty (no utterance names it)",
                         V->labels_path, split_names[s]);
        else if (!good[s] && V->o->skip_bad)
            sd_strbuf_line(&V->global, "%s: split '%s' is empty after skipping %lld bad utterances",
                         V->labels_path, split_names[s], (long long)skipped);
        reported |= !named[s] || (!good[s] && V->o->skip_bad);
    }
    if (!reported && V->nrows == 0)
        sd_strbuf_line(&V->global, "%s: no utterance (the file has a header and no rows)", V->labels_path);
    else if (!reported && !total_good && V->o->skip_bad)
        sd_strbuf_line(&V->global, "%s: no utterance left after skipping %lld bad ones", V->labels_path,
                     (long long)skipped);
}

/* Fits "header + as many report lines as fit + a closing count" into err->msg. */
static void report_to_error(sd_error *err, sd_status code, const char *head, const char *body,
                            int64_t nlines) {
    if (!err) return;
    err->code = code;
    size_t cap = sizeof err->msg;
    int n = snprintf(err->msg, cap, "%s\n", head);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    int64_t shown = 0;
    const char *p = body;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (len + l + 80 >= cap) break;
        memcpy(err->msg + len, p, l);
        len += l;
        err->msg[len] = '\0';
        shown++;
        p += l;
    }
    if (shown < nlines)
        snprintf(err->msg + len, cap - len, "  ... and %lld more (the full list: sdumc validate)",
                 (long long)(nlines - shown));
    else if (len > 0 && err->msg[len - 1] == '\n')
        err->msg[len - 1] = '\0';
}

static void validator_free(validator *V) {
    free(V->dir);
    for (int m = 0; m < SD_MOD_COUNT; m++) free(V->folder[m]);
    sd_csv_close(&V->csv);
    free(V->rows);
    sd_strbuf_free(&V->global);
    sd_strbuf_free(&V->per_row);
}

/* Builds the dataset from the rows without problems. */
static sd_status build(validator *V, sd_dataset **out, sd_error *err) {
    sd_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return sd_fail(err, SD_E_NOMEM, "out of memory");
    int64_t n = 0;
    size_t name_bytes = 0;
    for (int64_t i = 0; i < V->nrows; i++)
        if (!V->rows[i].bad) {
            n++;
            name_bytes += strlen(V->rows[i].name) + 1;
        }
    ds->n = n;
    ds->utt = calloc((size_t)n + 1, sizeof *ds->utt);
    ds->names = malloc(name_bytes + 1);
    ds->nslots = table_size(n);
    ds->slots = malloc(ds->nslots * sizeof *ds->slots);
    for (int s = 0; s < SD_SPLIT_COUNT; s++) ds->ids[s] = malloc(((size_t)n + 1) * sizeof(int64_t));
    int ok = ds->utt && ds->names && ds->slots && ds->ids[0] && ds->ids[1] && ds->ids[2];
    if (!ok) {
        sd_dataset_close(ds);
        return sd_fail(err, SD_E_NOMEM, "out of memory for %lld utterances", (long long)n);
    }
    ds->dir = V->dir;
    V->dir = NULL;
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        ds->folder[m] = V->folder[m];
        V->folder[m] = NULL;
    }
    ds->has_sim = V->has_folder[SD_MOD_SIM];
    ds->label_lo = V->label_lo;
    ds->nonfinite_zero = V->o->nonfinite_zero;
    memcpy(ds->nonfinite, V->nonfinite, sizeof ds->nonfinite);
    ds->label_hi = V->label_hi;
    for (int m = 0; m < SD_MOD_COUNT; m++) ds->dim[m] = V->has_folder[m] ? V->dim[m] : 0;
    for (size_t i = 0; i < ds->nslots; i++) ds->slots[i] = -1;
    char *np = ds->names;
    char **names = malloc(((size_t)n + 1) * sizeof *names);
    if (!names) {
        sd_dataset_close(ds);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    int64_t id = 0;
    for (int64_t i = 0; i < V->nrows; i++) {
        const row_t *r = &V->rows[i];
        if (r->bad) continue;
        sd_utt *u = &ds->utt[id];
        size_t l = strlen(r->name) + 1;
        memcpy(np, r->name, l);
        u->name = np;
        np += l;
        u->label = r->label;
        u->split = r->split;
        u->line = r->line;
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            u->frames[m] = r->have[m] ? r->rows[m] : 0;
            u->dtype[m] = r->dtype[m];
            if (u->frames[m] > ds->max_frames[m]) ds->max_frames[m] = u->frames[m];
        }
        ds->ids[u->split][ds->count[u->split]++] = id;
        names[id] = u->name;
        size_t slot;
        table_find(ds->slots, ds->nslots, names, u->name, &slot);
        ds->slots[slot] = id;
        id++;
    }
    free(names);
    *out = ds;
    return SD_OK;
}

sd_status sd_dataset_open_report(const sd_dataset_options *o, sd_dataset **out, char **report,
                                 sd_error *err) {
    if (out) *out = NULL;
    if (report) *report = NULL;
    if (!o || !o->dir || !out) return sd_fail(err, SD_E_ARG, "sd_dataset_open: NULL argument");
    struct stat sb;
    if (stat(o->dir, &sb) != 0)
        return sd_fail(err, SD_E_IO, "%s: the dataset folder does not exist", o->dir);
    if (!S_ISDIR(sb.st_mode))
        return sd_fail(err, SD_E_IO, "%s: is %s, not a folder (the dataset is a folder holding labels.csv and the "
                       "feature folders)", o->dir, sd_file_kind(&sb));
    validator V;
    memset(&V, 0, sizeof V);
    V.o = o;
    V.dir = strdup(o->dir);
    for (int m = 0; m < SD_MOD_COUNT; m++)
        V.folder[m] = strdup(o->folder[m] && *o->folder[m] ? o->folder[m] : mod_folders[m]);
    sd_status st = SD_OK;
    for (int m = 0; m < SD_MOD_COUNT; m++)
        if (!V.folder[m]) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    if (!V.dir) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int m = 0; m < SD_MOD_COUNT && !st; m++)
        if (!plain_file_name(V.folder[m]))
            st = sd_fail(err, SD_E_ARG, "%s folder name '%s' is not a plain folder name",
                         mod_names[m], V.folder[m]);
    if (!st) {
        size_t l = strlen(V.dir);
        while (l > 1 && V.dir[l - 1] == '/') V.dir[--l] = '\0';
        snprintf(V.labels_path, sizeof V.labels_path, "%s/%s", V.dir, LABELS_FILE);
        st = read_meta(&V, err);
        if (!st) st = read_labels(&V, err);
    }
    if (!st) st = check_duplicates(&V, err);
    if (!st) check_folders(&V);
    if (!st) check_headers(&V);
    if (!st) st = check_dims(&V, err);
    if (!st && o->check_values) st = check_values(&V, err);
    int64_t nbad = 0;
    for (int64_t i = 0; i < V.nrows; i++) nbad += V.rows[i].bad;
    if (!st) check_splits(&V, nbad);
    if (st || V.global.failed || V.per_row.failed) {
        if (!st) st = sd_fail(err, SD_E_NOMEM, "out of memory writing the validation report");
        validator_free(&V);
        return st;
    }
    int64_t nglobal = V.global.lines, nrow = V.per_row.lines;
    if (nglobal || (nrow && !o->skip_bad)) {
        int64_t nprob = nglobal + nrow;
        char head[4300];
        snprintf(head, sizeof head, "%s: %lld problem%s found (%lld of %lld utterances affected)%s:",
                 V.dir, (long long)nprob, nprob == 1 ? "" : "s", (long long)nbad,
                 (long long)V.nrows,
                 nglobal || o->skip_bad || V.skip_would_empty ? "" : "; skip_bad (--skip-bad) would drop those utterances");
        sd_strbuf all = {0};
        sd_strbuf_printf(&all, "%s%s", sd_strbuf_str(&V.global), sd_strbuf_str(&V.per_row));
        report_to_error(err, SD_E_FORMAT, head, sd_strbuf_str(&all), nprob);
        if (report) {
            sd_strbuf full = {0};
            sd_strbuf_printf(&full, "%s\n%s", head, sd_strbuf_str(&all));
            *report = sd_strbuf_take(&full);
        }
        sd_strbuf_free(&all);
        validator_free(&V);
        return SD_E_FORMAT;
    }
    sd_dataset *ds = NULL;
    st = build(&V, &ds, err);
    if (!st && nbad) {
        sd_strbuf w = {0};
        sd_strbuf_printf(&w, "%s: skipped %lld of %lld utterances with problems (%lld problem%s):\n%s",
                     ds->dir, (long long)nbad, (long long)V.nrows, (long long)nrow,
                     nrow == 1 ? "" : "s", sd_strbuf_str(&V.per_row));
        ds->skipped = nbad;
        ds->warnings = sd_strbuf_take(&w);
        if (report && ds->warnings) *report = strdup(ds->warnings);
    }
    validator_free(&V);
    *out = ds;
    return st;
}

sd_status sd_dataset_open(const sd_dataset_options *o, sd_dataset **out, sd_error *err) {
    return sd_dataset_open_report(o, out, NULL, err);
}

void sd_dataset_close(sd_dataset *ds) {
    if (!ds) return;
    free(ds->dir);
    for (int m = 0; m < SD_MOD_COUNT; m++) free(ds->folder[m]);
    free(ds->utt);
    free(ds->names);
    for (int s = 0; s < SD_SPLIT_COUNT; s++) free(ds->ids[s]);
    free(ds->slots);
    free(ds->warnings);
    free(ds);
}

const char *sd_dataset_warnings(const sd_dataset *ds) { return ds->warnings ? ds->warnings : ""; }
int64_t sd_dataset_skipped(const sd_dataset *ds) { return ds->skipped; }

int64_t sd_dataset_size(const sd_dataset *ds, sd_split s) {
    return (int)s >= 0 && (int)s < SD_SPLIT_COUNT ? ds->count[s] : 0;
}
int64_t sd_dataset_total(const sd_dataset *ds) { return ds->n; }
int sd_dataset_dim(const sd_dataset *ds, int m) {
    return m >= 0 && m < SD_MOD_COUNT ? ds->dim[m] : 0;
}
int sd_dataset_has_sim(const sd_dataset *ds) { return ds->has_sim; }
int64_t sd_dataset_nonfinite(const sd_dataset *ds, int m) {
    return m >= 0 && m < SD_MOD_COUNT ? ds->nonfinite[m] : 0;
}
void sd_dataset_label_range(const sd_dataset *ds, double *lo, double *hi) {
    *lo = ds->label_lo;
    *hi = ds->label_hi;
}
const char *sd_dataset_dir(const sd_dataset *ds) { return ds->dir; }
const char *sd_dataset_folder(const sd_dataset *ds, int m) {
    return m >= 0 && m < SD_MOD_COUNT ? ds->folder[m] : NULL;
}

const char *sd_dataset_name(const sd_dataset *ds, sd_split s, int64_t i) {
    return ds->utt[sd_dataset_id(ds, s, i)].name;
}
float sd_dataset_label(const sd_dataset *ds, sd_split s, int64_t i) {
    return ds->utt[sd_dataset_id(ds, s, i)].label;
}
int64_t sd_dataset_frames(const sd_dataset *ds, sd_split s, int64_t i, int m) {
    return m >= 0 && m < SD_MOD_COUNT ? ds->utt[sd_dataset_id(ds, s, i)].frames[m] : 0;
}
int64_t sd_dataset_max_frames(const sd_dataset *ds, int m) {
    return m >= 0 && m < SD_MOD_COUNT ? ds->max_frames[m] : 0;
}

int sd_dataset_utt_path(const sd_dataset *ds, int64_t id, int m, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s/%s/%s.npy", ds->dir, ds->folder[m], ds->utt[id].name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

sd_status sd_dataset_path(const sd_dataset *ds, sd_split s, int64_t i, int m, char *buf,
                          size_t size, sd_error *err) {
    if ((int)s < 0 || (int)s >= SD_SPLIT_COUNT || i < 0 || i >= ds->count[s] || m < 0 ||
        m >= SD_MOD_COUNT)
        return sd_fail(err, SD_E_ARG, "sd_dataset_path: index out of range");
    if (sd_dataset_utt_path(ds, sd_dataset_id(ds, s, i), m, buf, size))
        return sd_fail(err, SD_E_ARG, "sd_dataset_path: path longer than %zu bytes", size);
    return SD_OK;
}

char *sd_dataset_fingerprint(const sd_dataset *ds) {
    uint64_t h = SD_FNV1A_INIT;
    for (int s = SD_SPLIT_TRAIN; s <= SD_SPLIT_VALID; s++)
        for (int64_t i = 0; i < ds->count[s]; i++) {
            const sd_utt *u = &ds->utt[ds->ids[s][i]];
            h = sd_fnv1a(h, u->name, strlen(u->name) + 1); /* with its NUL: "ab","c" != "a","bc" */
            const int32_t split = s;
            h = sd_fnv1a(h, &split, sizeof split);
            h = sd_fnv1a(h, &u->label, sizeof u->label);
            h = sd_fnv1a(h, u->frames, sizeof u->frames);
        }
    char *out = malloc(160);
    if (out)
        snprintf(out, 160, "train %lld, valid %lld, dims %d/%d/%d/%d, hash %016llx", (long long)ds->count[0],
                 (long long)ds->count[1], ds->dim[0], ds->dim[1], ds->dim[2], ds->dim[3], (unsigned long long)h);
    return out;
}

sd_status sd_dataset_check_output(const sd_dataset *ds, const char *out, const char *what, const sd_input *more,
                                  int n_more, sd_error *err) {
    static const char *const folder_what[SD_MOD_COUNT] = {"the audio feature folder", "the text feature folder",
                                                          "the video feature folder", "the simulated-text folder"};
    sd_input *in = calloc((size_t)(1 + SD_MOD_COUNT + (n_more > 0 ? n_more : 0)), sizeof *in);
    char *paths[1 + SD_MOD_COUNT] = {0};
    int ok = in != NULL;
    size_t dl = strlen(ds->dir);
    for (int k = 0; ok && k <= SD_MOD_COUNT; k++) {
        const char *name = k == 0 ? LABELS_FILE : ds->folder[k - 1];
        paths[k] = malloc(dl + strlen(name) + 2);
        if (!(ok = paths[k] != NULL)) break;
        sprintf(paths[k], "%s/%s", ds->dir, name);
        in[k] = (sd_input){paths[k], k == 0 ? LABELS_FILE " of the dataset" : folder_what[k - 1]};
    }
    for (int i = 0; ok && i < n_more; i++) in[1 + SD_MOD_COUNT + i] = more[i];
    sd_status s = ok ? sd_output_check(out, what, in, 1 + SD_MOD_COUNT + (n_more > 0 ? n_more : 0), err)
                     : sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int k = 0; k <= SD_MOD_COUNT; k++) free(paths[k]);
    free(in);
    return s;
}

sd_status sd_dataset_carve_valid(sd_dataset *ds, double fraction, uint64_t seed, int64_t *carved,
                                 sd_error *err) {
    if (carved) *carved = 0;
    int64_t n = ds->count[SD_SPLIT_TRAIN];
    if (!(fraction > 0.0 && fraction < 1.0))
        return sd_fail(err, SD_E_ARG, "validation fraction %g is not in (0, 1)", fraction);
    if (ds->count[SD_SPLIT_VALID] > 0)
        return sd_fail(err, SD_E_ARG,
                       "%s: the dataset already has a valid split (%lld utterances); a validation split "
                       "is carved out of train only when there is none",
                       ds->dir, (long long)ds->count[SD_SPLIT_VALID]);
    if (n < 2)
        return sd_fail(err, SD_E_ARG, "%s: the train split has %lld utterance%s, too few to carve a "
                       "validation split from", ds->dir, (long long)n, n == 1 ? "" : "s");
    int64_t k = (int64_t)llround(fraction * (double)n);
    if (k < 1) k = 1;
    if (k > n - 1) k = n - 1;
    int64_t *perm = malloc(sizeof *perm * (size_t)n);
    if (!perm) return sd_fail(err, SD_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    sd_rng r = sd_rng_make(seed, SD_STREAM_VALID_SPLIT);
    sd_rng_shuffle(&r, perm, (size_t)n);
    /* The first k of the permutation go to valid; both splits keep labels.csv order. */
    for (int64_t i = 0; i < k; i++) ds->utt[ds->ids[SD_SPLIT_TRAIN][perm[i]]].split = SD_SPLIT_VALID;
    free(perm);
    int64_t nt = 0, nv = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t id = ds->ids[SD_SPLIT_TRAIN][i];
        if (ds->utt[id].split == SD_SPLIT_VALID) ds->ids[SD_SPLIT_VALID][nv++] = id;
        else ds->ids[SD_SPLIT_TRAIN][nt++] = id;
    }
    ds->count[SD_SPLIT_TRAIN] = nt;
    ds->count[SD_SPLIT_VALID] = nv;
    if (carved) *carved = nv;
    return SD_OK;
}

int64_t sd_dataset_find(const sd_dataset *ds, const char *name, sd_split *split) {
    size_t i = (size_t)name_hash(name) & (ds->nslots - 1);
    while (ds->slots[i] >= 0) {
        const sd_utt *u = &ds->utt[ds->slots[i]];
        if (!strcmp(u->name, name)) {
            sd_split s = (sd_split)u->split;
            if (split) *split = s;
            /* Index within the split: ids are increasing, so binary search. */
            int64_t lo = 0, hi = ds->count[s] - 1, id = ds->slots[i];
            while (lo <= hi) {
                int64_t mid = (lo + hi) / 2;
                if (ds->ids[s][mid] == id) return mid;
                if (ds->ids[s][mid] < id) lo = mid + 1;
                else hi = mid - 1;
            }
            return -1;
        }
        i = (i + 1) & (ds->nslots - 1);
    }
    return -1;
}
