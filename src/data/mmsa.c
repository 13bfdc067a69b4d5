/* import-mmsa: an MMSA feature pickle (parsed by io/pickle.c, nothing executed) to the dataset
 * layout, trimming padding and cleaning -inf/NaN (see mmsa.h). Legend: N utterances of a split,
 * T padded frames, D feature dim, L frames kept. */
#include "data/mmsa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "data/batch.h"
#include "data/dataset_writer.h"
#include "io/csv.h"
#include "io/json.h"

#define NAME_MAX_BYTES 255

static const char *const feature_key[3] = {"audio", "text", "vision"};
static const char *const length_key[3] = {"audio_lengths", NULL, "vision_lengths"};

sd_mmsa_options sd_mmsa_default_options(void) {
    sd_mmsa_options o;
    o.label_lo = SD_LABEL_MIN;
    o.label_hi = SD_LABEL_MAX;
    o.sim = SD_MMSA_SIM_NONE;
    return o;
}

/* One split of the pickle, once checked. */
typedef struct {
    const char *name;
    int64_t n;
    const sd_pk_obj *ids, *labels;
    const sd_pk_array *feat[3];
    const sd_pk_obj *lengths[3]; /* audio_lengths, -, vision_lengths (NULL when absent) */
    const sd_pk_array *mask;     /* text_bert [N, >=2, T_t], row 1 the attention mask; or NULL */
} split_view;

/* A sequence of N values: a list, a tuple, or a 1-D array (or [N, 1] for labels). */
static int64_t seq_len(const sd_pk_obj *o) {
    if (o->type == SD_PK_LIST || o->type == SD_PK_TUPLE) return (int64_t)o->u.seq.n;
    if (o->type == SD_PK_ARRAY && o->u.a.built) {
        if (o->u.a.ndim == 1) return o->u.a.shape[0];
        if (o->u.a.ndim == 2 && o->u.a.shape[1] == 1) return o->u.a.shape[0];
    }
    return -1;
}

static int is_numeric_array(const sd_pk_array *a) {
    return a->built && a->dtype.kind && strchr("biuf", a->dtype.kind) != NULL;
}

/* Item i of a numeric sequence; -1 when it is not a number. */
static int seq_number(const sd_pk_obj *o, int64_t i, double *v) {
    if (o->type == SD_PK_ARRAY) {
        if (!is_numeric_array(&o->u.a)) return -1;
        *v = sd_pk_array_at(&o->u.a, i);
        return 0;
    }
    const sd_pk_obj *e = o->u.seq.v[i];
    if (e->type == SD_PK_INT || e->type == SD_PK_BOOL) *v = (double)e->u.i;
    else if (e->type == SD_PK_FLOAT) *v = e->u.f;
    else return -1;
    return 0;
}

/* Item i of a sequence of names as a NUL-terminated string; -1 when it is not text or too long. */
static int seq_name(const sd_pk_obj *o, int64_t i, char *buf, size_t size) {
    if (o->type == SD_PK_ARRAY) return sd_pk_array_str(&o->u.a, i, buf, size);
    const sd_pk_obj *e = o->u.seq.v[i];
    if ((e->type != SD_PK_STR && e->type != SD_PK_BYTES) || e->u.s.n >= size) return -1;
    memcpy(buf, e->u.s.p, e->u.s.n);
    buf[e->u.s.n] = '\0';
    return strlen(buf) == e->u.s.n ? 0 : -1;
}

static const char *plain_name_problem(const char *s) {
    if (!*s) return "is empty";
    if (!strcmp(s, ".") || !strcmp(s, "..")) return "is not a file name";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '/') return "contains '/'";
        if (*p < 0x20) return "contains a control character";
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static sd_status check_feature(const split_view *v, int m, const sd_pk_obj *x, sd_mmsa_report *r, int *first,
                               sd_error *err) {
    if (!x) return sd_fail(err, SD_E_FORMAT, "%s: no '%s' features", v->name, feature_key[m]);
    if (x->type != SD_PK_ARRAY || !is_numeric_array(&x->u.a))
        return sd_fail(err, SD_E_FORMAT, "%s/%s: a %s, not a numeric numpy array", v->name, feature_key[m],
                       x->type == SD_PK_ARRAY ? "numpy array of text or objects" : sd_pk_type_name(x->type));
    const sd_pk_array *a = &x->u.a;
    if (a->ndim != 3 || a->shape[0] != v->n) {
        char shape[160];
        int len = snprintf(shape, sizeof shape, "[");
        for (int k = 0; k < a->ndim && len < 120; k++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld", k ? ", " : "", (long long)a->shape[k]);
        snprintf(shape + len, sizeof shape - (size_t)len, "]");
        return sd_fail(err, SD_E_SHAPE, "%s/%s: shape %s, expected [%lld utterances, frames, dim]", v->name,
                       feature_key[m], shape, (long long)v->n);
    }
    if (a->shape[2] < 1 || a->shape[2] > (1 << 24) || a->shape[1] < 1)
        return sd_fail(err, SD_E_SHAPE, "%s/%s: %lld frames of dim %lld", v->name, feature_key[m],
                       (long long)a->shape[1], (long long)a->shape[2]);
    if (!*first && r->dim[m] != a->shape[2])
        return sd_fail(err, SD_E_SHAPE, "%s/%s: dim %lld, the other splits have %d", v->name, feature_key[m],
                       (long long)a->shape[2], r->dim[m]);
    r->dim[m] = (int)a->shape[2];
    if (a->shape[1] > r->padded[m]) r->padded[m] = a->shape[1];
    return SD_OK;
}

/* Lengths: N whole numbers >= 0; those beyond the padded frames are counted (and clamped later). */
static sd_status check_lengths(const split_view *v, int m, sd_mmsa_report *r, sd_error *err) {
    const sd_pk_obj *l = v->lengths[m];
    if (seq_len(l) != v->n)
        return sd_fail(err, SD_E_FORMAT, "%s/%s: %lld values for %lld utterances", v->name, length_key[m],
                       (long long)seq_len(l), (long long)v->n);
    for (int64_t i = 0; i < v->n; i++) {
        double x;
        if (seq_number(l, i, &x) || !(x >= 0.0 && x == floor(x) && x < 9.0e15))
            return sd_fail(err, SD_E_FORMAT, "%s/%s[%lld] is not a whole number >= 0", v->name, length_key[m],
                           (long long)i);
        if (x > (double)v->feat[m]->shape[1]) r->clamped[m]++;
    }
    return SD_OK;
}

static sd_status check_labels(const split_view *v, const sd_mmsa_options *o, sd_error *err) {
    int64_t outside = 0, first = -1;
    double lo = INFINITY, hi = -INFINITY, first_v = 0;
    for (int64_t i = 0; i < v->n; i++) {
        double y;
        if (seq_number(v->labels, i, &y) || !isfinite(y))
            return sd_fail(err, SD_E_FORMAT, "%s/regression_labels[%lld] is not a finite number", v->name,
                           (long long)i);
        lo = y < lo ? y : lo;
        hi = y > hi ? y : hi;
        if (y < o->label_lo || y > o->label_hi) {
            if (first < 0) first = i, first_v = y;
            outside++;
        }
    }
    if (!outside) return SD_OK;
    char name[NAME_MAX_BYTES + 1];
    if (seq_name(v->ids, first, name, sizeof name)) snprintf(name, sizeof name, "#%lld", (long long)first);
    return sd_fail(err, SD_E_FORMAT,
                   "%s/regression_labels: %lld label%s outside [%g, %g] (e.g. %g of '%s'; the split's labels span "
                   "[%g, %g]); give the dataset's range with --label-range LO,HI (CH-SIMS: -1,1)",
                   v->name, (long long)outside, outside == 1 ? " lies" : "s lie", o->label_lo, o->label_hi, first_v,
                   name, lo, hi);
}

static sd_status check_split(const sd_pk_obj *d, const char *name, const sd_mmsa_options *o, split_view *v,
                             sd_mmsa_report *r, int *first, sd_error *err) {
    memset(v, 0, sizeof *v);
    v->name = name;
    if (d->type != SD_PK_DICT) return sd_fail(err, SD_E_FORMAT, "%s: a %s, not a dict", name, sd_pk_type_name(d->type));
    v->ids = sd_pk_dict_get(d, "id");
    v->labels = sd_pk_dict_get(d, "regression_labels");
    if (!v->ids) return sd_fail(err, SD_E_FORMAT, "%s: no 'id' (the utterance names)", name);
    if (!v->labels) return sd_fail(err, SD_E_FORMAT, "%s: no 'regression_labels'", name);
    v->n = seq_len(v->ids);
    if (v->n < 0) return sd_fail(err, SD_E_FORMAT, "%s/id: a %s, not a list or 1-D array of names", name,
                                 sd_pk_type_name(v->ids->type));
    if (seq_len(v->labels) != v->n)
        return sd_fail(err, SD_E_FORMAT, "%s/regression_labels: %lld values for %lld ids (expected [N] or [N, 1])",
                       name, (long long)seq_len(v->labels), (long long)v->n);
    sd_status st;
    for (int m = 0; m < 3; m++) {
        const sd_pk_obj *x = sd_pk_dict_get(d, feature_key[m]);
        if (m == SD_MOD_TEXT && !x && sd_pk_dict_get(d, "text_bert"))
            return sd_fail(err, SD_E_FORMAT, "%s: no 'text' features ('text_bert' holds BERT token ids and an "
                           "attention mask, not features: extract text features first)", name);
        if ((st = check_feature(v, m, x, r, first, err))) return st;
        v->feat[m] = &x->u.a;
    }
    *first = 0;
    for (int m = 0; m < 3; m += 2) {
        v->lengths[m] = length_key[m] ? sd_pk_dict_get(d, length_key[m]) : NULL;
        if (v->lengths[m] && v->lengths[m]->type == SD_PK_NONE) v->lengths[m] = NULL;
        if (v->lengths[m] && (st = check_lengths(v, m, r, err))) return st;
        r->lengths_given[m] |= v->lengths[m] != NULL;
    }
    const sd_pk_obj *tb = sd_pk_dict_get(d, "text_bert");
    if (tb && tb->type == SD_PK_ARRAY && is_numeric_array(&tb->u.a) && tb->u.a.ndim == 3 && tb->u.a.shape[0] == v->n &&
        tb->u.a.shape[1] >= 2 && tb->u.a.shape[2] == v->feat[SD_MOD_TEXT]->shape[1]) {
        v->mask = &tb->u.a;
        r->lengths_given[SD_MOD_TEXT] = 1;
    } else if (tb && tb->type != SD_PK_NONE) {
        return sd_fail(err, SD_E_SHAPE, "%s/text_bert: expected a numeric array [%lld, 3, %lld] (ids, attention mask, "
                       "segments) matching the text frames", name, (long long)v->n,
                       (long long)v->feat[SD_MOD_TEXT]->shape[1]);
    }
    return check_labels(v, o, err);
}

/* Every name a plain file name, unique over all splits. */
static sd_status check_names(const split_view *v, sd_error *err) {
    int64_t total = 0;
    for (int s = 0; s < SD_SPLIT_COUNT; s++) total += v[s].n;
    char **names = calloc((size_t)total + 1, sizeof *names);
    if (!names) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_status st = SD_OK;
    int64_t k = 0;
    for (int s = 0; s < SD_SPLIT_COUNT && !st; s++)
        for (int64_t i = 0; i < v[s].n && !st; i++) {
            char buf[NAME_MAX_BYTES + 1];
            const char *why;
            if (seq_name(v[s].ids, i, buf, sizeof buf))
                st = sd_fail(err, SD_E_FORMAT, "%s/id[%lld] is not a name (text of at most %d bytes)", v[s].name,
                             (long long)i, NAME_MAX_BYTES);
            else if ((why = plain_name_problem(buf)))
                st = sd_fail(err, SD_E_FORMAT, "%s/id[%lld] '%s' %s (it names the feature files)", v[s].name,
                             (long long)i, buf, why);
            else if (!(names[k++] = strdup(buf)))
                st = sd_fail(err, SD_E_NOMEM, "out of memory");
        }
    if (!st) {
        qsort(names, (size_t)total, sizeof *names, cmp_str);
        for (int64_t i = 1; i < total && !st; i++)
            if (!strcmp(names[i - 1], names[i])) st = sd_fail(err, SD_E_FORMAT, "id '%s' appears twice", names[i]);
    }
    for (int64_t i = 0; i < total; i++) free(names[i]);
    free(names);
    return st;
}

static const char *const split_key[SD_SPLIT_COUNT] = {"train", "valid", "test"};

static sd_status check_all(const sd_pk_obj *root, const sd_mmsa_options *o, split_view *v, sd_mmsa_report *r,
                           sd_error *err) {
    memset(r, 0, sizeof *r);
    memset(v, 0, SD_SPLIT_COUNT * sizeof *v);
    if (!(o->label_lo < o->label_hi) || !isfinite(o->label_lo) || !isfinite(o->label_hi))
        return sd_fail(err, SD_E_ARG, "label range [%g, %g] is not an interval", o->label_lo, o->label_hi);
    if (!root || root->type != SD_PK_DICT)
        return sd_fail(err, SD_E_FORMAT, "the pickle holds a %s, not MMSA's dict of splits (train, valid, test)",
                       root ? sd_pk_type_name(root->type) : "nothing");
    int first = 1, any = 0;
    for (int s = 0; s < SD_SPLIT_COUNT; s++) {
        const sd_pk_obj *d = sd_pk_dict_get(root, split_key[s]);
        v[s].name = split_key[s];
        if (!d) continue;
        sd_status st = check_split(d, split_key[s], o, &v[s], r, &first, err);
        if (st) return st;
        r->n[s] = v[s].n;
        any |= v[s].n > 0;
    }
    if (!any)
        return sd_fail(err, SD_E_FORMAT, "the pickle's dict has no utterance under 'train', 'valid' or 'test'");
    return check_names(v, err);
}

sd_status sd_mmsa_check(const sd_pk_obj *root, const sd_mmsa_options *o, sd_mmsa_report *report, sd_error *err) {
    split_view v[SD_SPLIT_COUNT];
    return check_all(root, o, v, report, err);
}

/* ---- writing ---- */

static int row_is_zero(const float *x, int64_t D) {
    for (int64_t d = 0; d < D; d++)
        if (x[d] != 0.0f) return 0;
    return 1;
}

/* The frames of utterance i of modality m to keep, gathered into out [L, D] (cleaned); returns L. */
static int64_t gather(const split_view *v, int m, int64_t i, float *out, sd_mmsa_report *r) {
    const sd_pk_array *a = v->feat[m];
    const int64_t T = a->shape[1], D = a->shape[2];
    int64_t L = 0;
    if (v->lengths[m]) { /* frames [0, length) */
        double len = 0;
        seq_number(v->lengths[m], i, &len);
        int64_t want = len > (double)T ? T : (int64_t)len;
        sd_pk_array_read(a, i * T * D, want * D, out);
        L = want;
    } else {
        for (int64_t t = 0; t < T; t++) {
            int keep;
            if (m == SD_MOD_TEXT && v->mask) {
                keep = sd_pk_array_at(v->mask, (i * v->mask->shape[1] + 1) * T + t) != 0.0;
                if (keep) sd_pk_array_read(a, (i * T + t) * D, D, out + L * D);
            } else {
                sd_pk_array_read(a, (i * T + t) * D, D, out + L * D);
                keep = !row_is_zero(out + L * D, D);
            }
            L += keep;
        }
    }
    r->frames_padded[m] += T;
    for (int64_t k = 0; k < L * D; k++)
        if (!isfinite(out[k])) {
            out[k] = 0.0f;
            r->nonfinite[m]++;
        }
    if (L == 0) { /* nothing left: one zero frame, so the utterance stays usable */
        memset(out, 0, sizeof(float) * (size_t)D);
        r->empty[m]++;
        L = 1;
    }
    r->frames_kept[m] += L;
    return L;
}

static sd_status write_split(sd_dataset_writer *w, const split_view *v, int split, const sd_mmsa_options *o,
                             float *buf, const float *zeros, FILE *labels, sd_mmsa_report *r, sd_error *err) {
    for (int64_t i = 0; i < v->n; i++) {
        char name[NAME_MAX_BYTES + 1];
        double y = 0;
        seq_name(v->ids, i, name, sizeof name);
        seq_number(v->labels, i, &y);
        sd_csv_write_field(labels, name);
        fprintf(labels, ",%.9g,%s\n", y, sd_split_name((sd_split)split));
        for (int m = 0; m < 3; m++) {
            int64_t L = gather(v, m, i, buf, r);
            sd_status st = sd_dataset_writer_npy(w, m, name, buf, L, v->feat[m]->shape[2], SD_DTYPE_F32, err);
            if (st) return st;
        }
        if (o->sim == SD_MMSA_SIM_ZEROS) {
            sd_status st = sd_dataset_writer_npy(w, SD_MOD_SIM, name, zeros, 1, r->dim[SD_MOD_TEXT], SD_DTYPE_F32, err);
            if (st) return st;
        }
    }
    return SD_OK;
}

sd_status sd_mmsa_import(const char *pkl_path, const char *out_dir, const sd_mmsa_options *o,
                         sd_mmsa_report *report, sd_error *err) {
    sd_pickle *P = NULL;
    sd_status st = sd_pickle_open(pkl_path, &P, err);
    if (st) return st;
    split_view v[SD_SPLIT_COUNT];
    st = check_all(sd_pickle_root(P), o, v, report, err);
    if (st) {
        sd_error_prefix(err, "%s", pkl_path);
        sd_pickle_free(P);
        return st;
    }
    int64_t most = 0; /* the largest [T, D] of any modality: one buffer serves them all */
    for (int s = 0; s < SD_SPLIT_COUNT; s++)
        for (int m = 0; m < 3 && v[s].n; m++)
            if (v[s].feat[m]->shape[1] * v[s].feat[m]->shape[2] > most) most = v[s].feat[m]->shape[1] * v[s].feat[m]->shape[2];
    float *buf = malloc(sizeof(float) * (size_t)most);
    float *zeros = calloc((size_t)report->dim[SD_MOD_TEXT] + 1, sizeof(float));
    sd_dataset_writer w;
    unsigned folders = SD_MOD_BIT(SD_MOD_AUDIO) | SD_MOD_BIT(SD_MOD_TEXT) | SD_MOD_BIT(SD_MOD_VIDEO);
    if (o->sim == SD_MMSA_SIM_ZEROS) folders |= SD_MOD_BIT(SD_MOD_SIM);
    if (!buf || !zeros) st = sd_fail(err, SD_E_NOMEM, "out of memory for one utterance (%lld values)", (long long)most);
    if (!st) st = sd_dataset_writer_begin(&w, out_dir, "import-mmsa", folders, err);
    if (!st) {
        char *csv = NULL; /* labels.csv, written through the project's CSV writer into memory */
        size_t csv_len = 0;
        FILE *labels = open_memstream(&csv, &csv_len);
        sd_strbuf meta = {0};
        if (!labels) st = sd_fail(err, SD_E_NOMEM, "out of memory");
        if (!st) fprintf(labels, "name,label,split\n");
        for (int s = 0; s < SD_SPLIT_COUNT && !st; s++) st = write_split(&w, &v[s], s, o, buf, zeros, labels, report, err);
        if (labels && fclose(labels) != 0 && !st) st = sd_fail(err, SD_E_NOMEM, "out of memory");
        const char *base = strrchr(pkl_path, '/');
        sd_strbuf_printf(&meta, "{\"label_range\": [%.17g, %.17g], \"source\": ", o->label_lo, o->label_hi);
        sd_json_append_string(&meta, base ? base + 1 : pkl_path);
        sd_strbuf_printf(&meta, "}\n");
        if (!st && meta.failed) st = sd_fail(err, SD_E_NOMEM, "out of memory");
        if (!st) st = sd_dataset_writer_file(&w, "labels.csv", csv, csv_len, err);
        if (!st) st = sd_dataset_writer_file(&w, "dataset.json", sd_strbuf_str(&meta), meta.len, err);
        free(csv);
        sd_strbuf_free(&meta);
        if (!st) st = sd_dataset_writer_commit(&w, err);
        else sd_dataset_writer_abort(&w);
    }
    free(buf);
    free(zeros);
    sd_pickle_free(P);
    return st;
}
