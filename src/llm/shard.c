/* Utterances shared among the workers of a job, balanced by input length, and the transcripts
 * parts they write (shard.h). Legend: n names, N workers, m rows over all transcript files. */
#include "llm/shard.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/npy.h"
#include "llm/utterances.h"

#define PART_PREFIX "transcripts.shard-"
#define PART_SUFFIX ".csv"

sd_status sd_shard_parse(const char *text, sd_shard *out, sd_error *err) {
    char *end = NULL;
    long i = strtol(text, &end, 10), n = -1;
    if (end != text && *end == '/') {
        const char *p = end + 1;
        n = strtol(p, &end, 10);
        if (end == p || *end) n = -1;
    }
    if (n < 1 || n > (1L << 20) || i < 0 || i >= n)
        return sd_fail(err, SD_E_ARG, "'%s' is not a shard I/N with 0 <= I < N (e.g. 0/4 for the first of four)", text);
    out->index = (int)i;
    out->count = (int)n;
    return SD_OK;
}

typedef struct {
    int64_t cost;
    size_t item;
} costed;

static int by_cost_desc(const void *pa, const void *pb) {
    const costed *a = pa, *b = pb;
    if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

sd_status sd_shard_assign(const int64_t *cost, size_t n, int workers, int *owner, sd_error *err) {
    if (workers < 1) return sd_fail(err, SD_E_ARG, "%d workers", workers);
    costed *order = malloc(sizeof *order * (n + 1));
    int64_t *load = calloc((size_t)workers, sizeof *load);
    if (!order || !load) {
        free(order);
        free(load);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) order[i] = (costed){cost[i], i};
    qsort(order, n, sizeof *order, by_cost_desc);
    /* Longest first to the least loaded worker; a scan of the N loads per item is plenty. */
    for (size_t k = 0; k < n; k++) {
        int w = 0;
        for (int j = 1; j < workers; j++)
            if (load[j] < load[w]) w = j;
        owner[order[k].item] = w;
        load[w] += order[k].cost + 1; /* + 1: items of cost 0 still spread */
    }
    free(order);
    free(load);
    return SD_OK;
}

sd_status sd_shard_select(const int64_t *cost, size_t n, const sd_shard *s, size_t **mine, size_t *n_mine,
                          sd_error *err) {
    *n_mine = 0;
    int *owner = malloc(sizeof *owner * (n + 1));
    *mine = malloc(sizeof **mine * (n + 1));
    sd_status st = owner && *mine ? sd_shard_assign(cost, n, s->count, owner, err) : sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n; i++)
        if (owner[i] == s->index) (*mine)[(*n_mine)++] = i;
    free(owner);
    if (st) {
        free(*mine);
        *mine = NULL;
        *n_mine = 0;
    }
    return st;
}

sd_status sd_shard_select_groups(const int64_t *cost, const size_t *group, size_t n, const sd_shard *s, size_t **mine,
                                 size_t *n_mine, sd_error *err) {
    if (!group) return sd_shard_select(cost, n, s, mine, n_mine, err);
    const size_t ng = n ? group[n - 1] + 1 : 0;
    int64_t *gcost = calloc(ng + 1, sizeof *gcost);
    size_t *gmine = NULL, n_gmine = 0;
    if (!gcost) return sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) gcost[group[i]] += cost[i];
    sd_status st = sd_shard_select(gcost, ng, s, &gmine, &n_gmine, err);
    *n_mine = 0;
    *mine = st ? NULL : malloc(sizeof **mine * (n + 1));
    if (!st && !*mine) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0, g = 0; !st && i < n; i++) { /* both ascending: one merge pass */
        while (g < n_gmine && gmine[g] < group[i]) g++;
        if (g < n_gmine && gmine[g] == group[i]) (*mine)[(*n_mine)++] = i;
    }
    free(gcost);
    free(gmine);
    return st;
}

sd_status sd_shard_npy_rows(const char *dir, char *const *names, size_t n, int64_t *cost, sd_error *err) {
    for (size_t i = 0; i < n; i++) {
        char *path = sd_utt_path(dir, names[i], ".npy");
        sd_npy_header h;
        sd_status st = path ? sd_npy_read_header(path, &h, err) : sd_fail(err, SD_E_NOMEM, "out of memory");
        free(path);
        if (st) return st;
        cost[i] = h.rows;
    }
    return SD_OK;
}

size_t sd_shard_count_present(const char *dir, char *const *names, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = sd_utt_path(dir, names[i], ".npy");
        k += path && sd_utt_file_exists(path);
        free(path);
    }
    return k;
}

char *sd_shard_transcripts_path(const char *out_dir, const sd_shard *s) {
    if (s->count == 1) return sd_utt_path(out_dir, "transcripts", ".csv");
    char base[64];
    snprintf(base, sizeof base, PART_PREFIX "%d-of-%d", s->index, s->count);
    return sd_utt_path(out_dir, base, PART_SUFFIX);
}

typedef struct {
    const char *name, *text;
    size_t source; /* 0 transcripts.csv, 1.. the parts in name order */
} row_ref;

static int by_name_then_source(const void *pa, const void *pb) {
    const row_ref *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->source > b->source) - (a->source < b->source);
}

/* Every transcript file of OUT into one table sorted by name (the newest row of each name), and the
 * parts it read (*parts, malloc'd names, to remove after a merge). */
static sd_status read_union(const char *out_dir, sd_transcripts *t, char ***parts, size_t *n_parts, sd_error *err) {
    memset(t, 0, sizeof *t);
    sd_status st = sd_utt_list_files(out_dir, PART_PREFIX, PART_SUFFIX, 0, parts, n_parts, err);
    if (st) return st;
    const size_t nsrc = *n_parts + 1;
    sd_transcripts *src = calloc(nsrc, sizeof *src);
    if (!src) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t k = 0; !st && k < nsrc; k++) {
        char *path = k ? sd_utt_path(out_dir, (*parts)[k - 1], "") : sd_utt_path(out_dir, "transcripts", ".csv");
        /* missing_ok: a part another worker merged away since the listing reads as empty. */
        st = path ? sd_transcripts_read(path, "name", "text", 1, &src[k], err) : sd_fail(err, SD_E_NOMEM, "out of memory");
        free(path);
        if (!st) m += src[k].n;
    }
    row_ref *rows = st ? NULL : malloc(sizeof *rows * (m + 1));
    if (!st && !rows) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    if (!st) {
        size_t r = 0;
        for (size_t k = 0; k < nsrc; k++)
            for (size_t i = 0; i < src[k].n; i++) rows[r++] = (row_ref){src[k].name[i], src[k].text[i], k};
        qsort(rows, m, sizeof *rows, by_name_then_source);
        t->name = malloc(sizeof *t->name * (m + 1));
        t->text = malloc(sizeof *t->text * (m + 1));
        t->line = calloc(m + 1, sizeof *t->line);
        if (!t->name || !t->text || !t->line) st = sd_fail(err, SD_E_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < m; i++) {
            if (i + 1 < m && !strcmp(rows[i].name, rows[i + 1].name)) continue; /* the later source wins */
            char *nm = strdup(rows[i].name), *tx = strdup(rows[i].text);
            if (!nm || !tx) {
                free(nm);
                free(tx);
                st = sd_fail(err, SD_E_NOMEM, "out of memory");
                break;
            }
            t->name[t->n] = nm;
            t->text[t->n] = tx;
            t->n++;
        }
        t->cap = m + 1;
    }
    free(rows);
    for (size_t k = 0; src && k < nsrc; k++) sd_transcripts_free(&src[k]);
    free(src);
    if (st) {
        sd_transcripts_free(t);
        sd_utt_names_free(*parts, *n_parts);
        *parts = NULL;
        *n_parts = 0;
    }
    return st;
}

sd_status sd_shard_transcripts_read(const char *out_dir, sd_transcripts *t, sd_error *err) {
    char **parts = NULL;
    size_t n_parts = 0;
    sd_status st = read_union(out_dir, t, &parts, &n_parts, err);
    sd_utt_names_free(parts, n_parts);
    return st;
}

/* Row of name in a table sorted by name, or -1. */
static long find_sorted(const sd_transcripts *t, const char *name) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->name[mid], name);
        if (!c) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

sd_status sd_shard_transcripts_seed(const char *out_dir, const sd_shard *s, char *const *mine, size_t n_mine,
                                    sd_error *err) {
    if (s->count == 1) return SD_OK;
    sd_transcripts all;
    sd_status st = sd_shard_transcripts_read(out_dir, &all, err);
    if (st) return st;
    /* A table of borrowed strings, only written (not freed with sd_transcripts_free). */
    sd_transcripts view = {0};
    view.name = malloc(sizeof *view.name * (n_mine + 1));
    view.text = malloc(sizeof *view.text * (n_mine + 1));
    char *path = sd_shard_transcripts_path(out_dir, s);
    if (!view.name || !view.text || !path) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n_mine; i++) {
        long r = find_sorted(&all, mine[i]);
        if (r < 0) continue;
        view.name[view.n] = all.name[r];
        view.text[view.n] = all.text[r];
        view.n++;
    }
    if (!st) st = sd_transcripts_write(path, &view, err);
    free(view.name);
    free(view.text);
    free(path);
    sd_transcripts_free(&all);
    return st;
}

/* A temporary of an atomic write ("<file>.npy.tmp.XXXXXX", src/io/atomic_file.c) of an output. */
static int is_output_temporary(const char *f) {
    const char *t = strstr(f, ".tmp.");
    if (!t || strlen(t) != strlen(".tmp.XXXXXX") || t - f < 4) return 0;
    return !strncmp(t - 4, ".npy", 4) || !strncmp(t - 4, ".csv", 4);
}

/* Removes the temporaries that writers killed between creating and renaming them left in OUT. */
static sd_status remove_temporaries(const char *out_dir, sd_error *err) {
    DIR *d = opendir(out_dir);
    if (!d) return sd_fail(err, SD_E_IO, "%s: cannot read the folder: %s", out_dir, strerror(errno));
    sd_status st = SD_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (!is_output_temporary(e->d_name)) continue;
        char *p = sd_utt_path(out_dir, e->d_name, "");
        if (!p || (unlink(p) && errno != ENOENT))
            st = sd_fail(err, SD_E_IO, "%s/%s: cannot remove a stale temporary: %s", out_dir, e->d_name,
                         p ? strerror(errno) : "out of memory");
        free(p);
    }
    closedir(d);
    return st;
}

sd_status sd_shard_transcripts_merge(const char *out_dir, char *const *require, size_t n, int *merged, sd_error *err) {
    *merged = 0;
    sd_transcripts all;
    char **parts = NULL;
    size_t n_parts = 0;
    sd_status st = read_union(out_dir, &all, &parts, &n_parts, err);
    if (st) return st;
    int complete = 1;
    for (size_t i = 0; require && complete && i < n; i++) {
        char *npy = sd_utt_path(out_dir, require[i], ".npy");
        complete = npy && sd_utt_file_exists(npy) && find_sorted(&all, require[i]) >= 0;
        free(npy);
    }
    char *path = sd_utt_path(out_dir, "transcripts", ".csv");
    if (!path) st = sd_fail(err, SD_E_NOMEM, "out of memory");
    if (!st && complete) {
        st = sd_transcripts_write(path, &all, err);
        for (size_t k = 0; !st && k < n_parts; k++) {
            char *p = sd_utt_path(out_dir, parts[k], "");
            if (!p || (unlink(p) && errno != ENOENT))
                st = sd_fail(err, SD_E_IO, "%s/%s: cannot remove the merged part: %s", out_dir, parts[k],
                             p ? strerror(errno) : "out of memory");
            free(p);
        }
        if (!st) st = remove_temporaries(out_dir, err);
        *merged = !st;
    }
    free(path);
    sd_utt_names_free(parts, n_parts);
    sd_transcripts_free(&all);
    return st;
}
