/* Utterance lists and paths for the LLM jobs; see utterances.h. */
#include "llm/utterances.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/array.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sd_utt_names_free(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

sd_status sd_utt_list_files(const char *dir, const char *prefix, const char *suffix, int strip_suffix,
                            char ***names, size_t *n, sd_error *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sd_fail(err, SD_E_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    size_t cap = 0, lp = strlen(prefix), ls = strlen(suffix);
    struct dirent *e;
    sd_status s = SD_OK;
    while (!s && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= lp + ls || strncmp(e->d_name, prefix, lp) || strcmp(e->d_name + l - ls, suffix) || e->d_name[0] == '.')
            continue;
        char **a = sd_array_grow(*names, &cap, *n + 1, sizeof *a, 64);
        if (!a) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
            break;
        }
        *names = a;
        if (!((*names)[*n] = strndup(e->d_name, strip_suffix ? l - ls : l))) s = sd_fail(err, SD_E_NOMEM, "out of memory");
        else (*n)++;
    }
    closedir(d);
    if (s) {
        sd_utt_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return s;
    }
    if (*n) qsort(*names, *n, sizeof **names, cmp_str);
    return SD_OK;
}

sd_status sd_utt_list_npy(const char *dir, char ***names, size_t *n, sd_error *err) {
    return sd_utt_list_files(dir, "", ".npy", 1, names, n, err);
}

char *sd_utt_path(const char *dir, const char *name, const char *ext) {
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

int sd_utt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

double sd_utt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t sd_utt_count_out_of_f16(const float *x, size_t n) {
    size_t big = 0;
    for (size_t i = 0; i < n; i++) big += !(x[i] >= -65504.0f && x[i] <= 65504.0f);
    return big;
}

void sd_utt_offset_report(void *offset, const sd_utt_report *r) {
    const sd_utt_offset *o = offset;
    sd_utt_report g = *r;
    g.index = o->done + r->index;
    g.total = o->total;
    o->progress(o->user, &g);
}
