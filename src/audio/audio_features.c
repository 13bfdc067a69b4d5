/* `sdumc audio-features` as a library function: recordings -> decoded audio -> WavLM (whole or in
 * windows) -> one float16 .npy per requested layer, written while the windows come out. */
#include "audio/audio_features.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "core/alloc.h"
#include "core/array.h"
#include "io/atomic_file.h"
#include "io/npy.h"

sd_af_options sd_af_default_options(void) {
    sd_af_options o;
    memset(&o, 0, sizeof o);
    o.chunk_seconds = SD_WAVLM_CHUNK_SECONDS;
    o.overlap_seconds = SD_WAVLM_OVERLAP_SECONDS;
    return o;
}

/* ---- listing ------------------------------------------------------------------------------ */

typedef struct {
    char *path, *name, *file;
} entry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const entry *)a)->file, ((const entry *)b)->file);
}

void sd_af_list_free(char **paths, char **names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (paths) free(paths[i]);
        if (names) free(names[i]);
    }
    free(paths);
    free(names);
}

sd_status sd_af_list(const char *dir, char ***paths, char ***names, size_t *n, size_t *n_other,
                     sd_error *err) {
    *paths = *names = NULL;
    *n = *n_other = 0;
    DIR *d = opendir(dir);
    if (!d) return sd_fail(err, SD_E_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    entry *e = NULL;
    size_t count = 0, cap = 0;
    sd_status s = SD_OK;
    for (struct dirent *de; (de = readdir(d));) {
        const char *f = de->d_name;
        if (f[0] == '.') {
            if (strcmp(f, ".") && strcmp(f, "..")) (*n_other)++;
            continue;
        }
        char *path = malloc(strlen(dir) + strlen(f) + 2);
        if (!path) {
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
            break;
        }
        sprintf(path, "%s/%s", dir, f);
        struct stat st;
        if (!sd_audio_is_audio_name(f) || stat(path, &st) || !S_ISREG(st.st_mode)) {
            (*n_other)++;
            free(path);
            continue;
        }
        if (count == cap) {
            entry *grown = sd_array_grow(e, &cap, count + 1, sizeof *e, 64);
            if (!grown) {
                free(path);
                s = sd_fail(err, SD_E_NOMEM, "out of memory");
                break;
            }
            e = grown;
        }
        const char *dot = strrchr(f, '.');
        e[count].path = path;
        e[count].file = path + strlen(dir) + 1;
        e[count].name = strndup(f, (size_t)(dot - f));
        if (!e[count].name) {
            free(path);
            s = sd_fail(err, SD_E_NOMEM, "out of memory");
            break;
        }
        count++;
    }
    closedir(d);
    if (!s && count) qsort(e, count, sizeof *e, cmp_entry);
    for (size_t i = 0; !s && i < count; i++)
        for (size_t j = i + 1; j < count; j++)
            if (!strcmp(e[i].name, e[j].name)) {
                s = sd_fail(err, SD_E_ARG, "%s and %s: two recordings named '%s' would write the same "
                            "feature files; rename one", e[i].path, e[j].path, e[i].name);
                break;
            }
    if (!s && (!(*paths = calloc(count ? count : 1, sizeof **paths)) ||
               !(*names = calloc(count ? count : 1, sizeof **names))))
        s = sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        if (!s) {
            (*paths)[i] = e[i].path;
            (*names)[i] = e[i].name;
        } else {
            free(e[i].path);
            free(e[i].name);
        }
    }
    free(e);
    if (s) {
        free(*paths);
        free(*names);
        *paths = *names = NULL;
        *n_other = 0;
        return s;
    }
    *n = count;
    return SD_OK;
}

/* ---- one recording -------------------------------------------------------------------------- */

typedef struct {
    sd_npy_stream w[SD_AF_MAX_OUT];
    size_t out_of_f16;
} writers;

static sd_status write_rows(void *user, int k, const float *rows, size_t n_rows, sd_error *err) {
    writers *wr = user;
    wr->out_of_f16 += sd_utt_count_out_of_f16(rows, n_rows * (size_t)wr->w[k].cols);
    return sd_npy_stream_write(&wr->w[k], rows, (int64_t)n_rows, err);
}

/* Output paths of recording `name`: out[k] = o->out_dir[k]/<name>.npy. */
static sd_status out_paths(const sd_af_options *o, const char *name, char **out, sd_error *err) {
    for (int k = 0; k < o->n_out; k++)
        if (!(out[k] = sd_utt_path(o->out_dir[k], name, ".npy"))) return sd_fail(err, SD_E_NOMEM, "out of memory");
    return SD_OK;
}

static sd_status one_recording(const sd_wavlm *m, sd_wavlm_runner *r, const sd_af_options *o,
                               const char *path, char *const *out, sd_af_report *p, sd_error *err) {
    float *wav = NULL;
    size_t n = 0;
    sd_audio_info info;
    sd_status s = sd_audio_read(path, SD_WAVLM_RATE, &wav, &n, &info, err);
    if (s) return s;
    const size_t F = sd_wavlm_frames(sd_wavlm_get_config(m), n), D = (size_t)sd_wavlm_get_config(m)->hidden;
    p->audio_seconds = (double)n / SD_WAVLM_RATE;
    p->rate = info.rate;
    p->channels = info.channels;
    p->r.n_frames = F;
    if (F == 0) {
        sd_free(wav);
        return sd_fail(err, SD_E_SHAPE, "%s: %.1f ms of audio, shorter than WavLM's first frame (%d samples = "
                       "%.0f ms at 16 kHz)", path, 1000.0 * p->audio_seconds, sd_wavlm_get_config(m)->receptive,
                       sd_wavlm_get_config(m)->receptive / 16.0);
    }
    writers wr;
    memset(&wr, 0, sizeof wr);
    int opened = 0;
    for (; !s && opened < o->n_out; opened++)
        s = sd_npy_stream_open(&wr.w[opened], out[opened], 2, (int64_t)F, (int64_t)D, SD_DTYPE_F16, err);
    if (s) opened--;
    if (!s) {
        s = sd_wavlm_run(r, wav, n, o->layer, o->n_out, write_rows, &wr, err);
        if (s && !strstr(err->msg, path)) sd_error_prefix(err, "%s", path);
    }
    for (int k = 0; k < opened; k++) {
        if (s) sd_npy_stream_abort(&wr.w[k]);
        else s = sd_npy_stream_commit(&wr.w[k], err);
    }
    p->r.n_out_of_f16 = wr.out_of_f16;
    sd_free(wav);
    return s;
}

sd_status sd_af_run(const sd_wavlm *m, const sd_af_options *o, char *const *paths, char *const *names,
                    size_t n, sd_af_progress progress, void *user, sd_utt_counts *counts, sd_error *err) {
    memset(counts, 0, sizeof *counts);
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    if (o->n_out < 1 || o->n_out > SD_AF_MAX_OUT)
        return sd_fail(err, SD_E_ARG, "audio-features: %d outputs (1..%d)", o->n_out, SD_AF_MAX_OUT);
    for (int k = 0; k < o->n_out; k++) {
        if (o->layer[k] < 0 || o->layer[k] > c->n_layers)
            return sd_fail(err, SD_E_ARG, "layer %d: the model has hidden states 0..%d (%d layers)", o->layer[k],
                           c->n_layers, c->n_layers);
        if (mkdir(o->out_dir[k], 0755) && errno != EEXIST)
            return sd_fail(err, SD_E_IO, "%s: cannot create the folder: %s", o->out_dir[k], strerror(errno));
        struct stat st;
        if (stat(o->out_dir[k], &st) || !S_ISDIR(st.st_mode))
            return sd_fail(err, SD_E_IO, "%s: not a folder", o->out_dir[k]);
        /* What killed runs left, in one pass over the folder: the temporaries that no live process
         * holds, of any age (one killed a moment ago too; a process writing into the same folder
         * keeps its own: io/atomic_file.h). */
        char *all = sd_utt_path(o->out_dir[k], "", "");
        if (!all) return sd_fail(err, SD_E_NOMEM, "out of memory");
        sd_atomic_remove_stale(all, time(NULL) + 1);
        free(all);
    }
    sd_wavlm_runner *r = NULL;
    sd_status s = sd_wavlm_runner_create(m, o->chunk_seconds, o->overlap_seconds, o->threads, &r, err);
    if (s) return s;
    const double start = sd_utt_now();
    for (size_t i = 0; i < n; i++) {
        char *out[SD_AF_MAX_OUT] = {0};
        sd_af_report p;
        memset(&p, 0, sizeof p);
        p.r.index = i;
        p.r.total = n;
        p.r.name = names[i];
        p.r.error = "";
        p.path = paths[i];
        sd_error e1 = {0};
        const double t0 = sd_utt_now();
        sd_status st = out_paths(o, names[i], out, &e1);
        int done = !st;
        for (int k = 0; done && k < o->n_out; k++) done = sd_utt_file_exists(out[k]);
        if (!st && !done) st = one_recording(m, r, o, paths[i], out, &p, &e1);
        for (int k = 0; k < o->n_out; k++) free(out[k]);
        p.r.seconds = sd_utt_now() - t0;
        p.r.elapsed = sd_utt_now() - start;
        p.r.outcome = st ? SD_UTT_FAILED : done ? SD_UTT_SKIPPED : SD_UTT_WRITTEN;
        if (st) p.r.error = e1.msg;
        counts->failed += st != SD_OK;
        counts->skipped += done;
        counts->written += !st && !done;
        if (progress) progress(user, &p);
    }
    sd_wavlm_runner_free(r);
    return SD_OK;
}
