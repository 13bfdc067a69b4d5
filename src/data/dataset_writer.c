/* A new dataset folder written through a temporary sibling folder, one syncfs and a rename (see
 * dataset_writer.h). The feature files are written plainly, not one fsync each: thousands of
 * per-file fsyncs made a 1,500-utterance corpus take 3-18 s on a shared disk. */
#define _GNU_SOURCE /* syncfs */
#include "data/dataset_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "io/atomic_file.h"
#include "io/npy.h"

/* 1 when path does not exist or is an empty folder; 0 otherwise. */
static int usable_target(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno == ENOENT;
    if (!S_ISDIR(st.st_mode)) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

sd_status sd_dataset_writer_begin(sd_dataset_writer *w, const char *dir, const char *who, unsigned modalities,
                                  sd_error *err) {
    memset(w, 0, sizeof *w);
    w->lock_fd = -1;
    if (!dir || !*dir) return sd_fail(err, SD_E_ARG, "%s: no output folder", who);
    size_t len = strlen(dir);
    if (len + 32 >= sizeof w->out) return sd_fail(err, SD_E_ARG, "%s: output path too long", who);
    memcpy(w->out, dir, len + 1);
    while (len > 1 && w->out[len - 1] == '/') w->out[--len] = '\0';
    if (!usable_target(w->out))
        return sd_fail(err, SD_E_IO, "%s: exists and is not an empty folder (%s writes only a new one)", w->out, who);
    sd_atomic_remove_stale(w->out, time(NULL)); /* what a killed run left */
    sd_status st0 = sd_atomic_make_temp_dir(w->out, w->tmp, sizeof w->tmp, &w->lock_fd, err);
    if (st0) {
        w->tmp[0] = '\0';
        return st0;
    }
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        if (!(modalities & (1u << m))) continue;
        char sub[4300];
        snprintf(sub, sizeof sub, "%s/%s", w->tmp, sd_modality_default_folder(m));
        if (mkdir(sub, 0777) != 0) { /* (less the umask) */
            sd_status st = sd_fail(err, SD_E_IO, "%s: cannot create: %s", sub, strerror(errno));
            sd_dataset_writer_abort(w);
            return st;
        }
    }
    return SD_OK;
}

sd_status sd_dataset_writer_npy(const sd_dataset_writer *w, int modality, const char *name, const float *data,
                                int64_t rows, int64_t cols, sd_dtype dtype, sd_error *err) {
    char path[8448];
    snprintf(path, sizeof path, "%s/%s/%s.npy", w->tmp, sd_modality_default_folder(modality), name);
    return sd_npy_write_plain(path, data, rows, cols, dtype, err);
}

sd_status sd_dataset_writer_file(const sd_dataset_writer *w, const char *file, const char *data, size_t n,
                                 sd_error *err) {
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", w->tmp, file);
    return sd_atomic_write_file(path, data, n, err);
}

sd_status sd_dataset_writer_commit(sd_dataset_writer *w, sd_error *err) {
    sd_status st = SD_OK;
    int fd = open(w->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* everything written, in one sync */
    if (fd < 0 || syncfs(fd) != 0) st = sd_fail(err, SD_E_IO, "%s: cannot sync: %s", w->tmp, strerror(errno));
    if (fd >= 0) close(fd);
    if (!st && rename(w->tmp, w->out) != 0) /* replaces an empty folder, fails on a non-empty one */
        st = sd_fail(err, SD_E_IO, "cannot rename %s to %s: %s", w->tmp, w->out, strerror(errno));
    if (st) sd_dataset_writer_abort(w);
    w->tmp[0] = '\0';
    if (w->lock_fd >= 0) close(w->lock_fd);
    w->lock_fd = -1;
    return st;
}

void sd_dataset_writer_abort(sd_dataset_writer *w) {
    if (w->tmp[0]) sd_remove_tree(w->tmp, 2);
    w->tmp[0] = '\0';
    if (w->lock_fd >= 0) close(w->lock_fd);
    w->lock_fd = -1;
}
