/* Opening input files: non-blocking open, fstat, regular files only (file.h). */
#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *sd_file_kind(const struct stat *st) {
    if (S_ISREG(st->st_mode)) return "a regular file";
    if (S_ISDIR(st->st_mode)) return "a folder";
    if (S_ISFIFO(st->st_mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(st->st_mode)) return "a character device";
    if (S_ISBLK(st->st_mode)) return "a block device";
    if (S_ISSOCK(st->st_mode)) return "a socket";
    return "not a regular file";
}

sd_status sd_file_open(const char *path, int *fd, struct stat *st, sd_error *err) {
    *fd = -1;
    if (!path || !*path) return sd_fail(err, SD_E_ARG, "empty file name");
    struct stat sb;
    if (!st) st = &sb;
    int d = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (d < 0) {
        int e = errno;
        /* A folder opens read-only on Linux; EISDIR comes from elsewhere, but say it the same way. */
        if (e == EISDIR) return sd_fail(err, SD_E_IO, "%s: is a folder, not a file", path);
        return sd_fail(err, SD_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (fstat(d, st) != 0) {
        int e = errno;
        close(d);
        return sd_fail(err, SD_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        const char *kind = sd_file_kind(st);
        close(d);
        return sd_fail(err, SD_E_IO, "%s: is %s, not a file", path, kind);
    }
    int flags = fcntl(d, F_GETFL);
    if (flags < 0 || fcntl(d, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(d);
        return sd_fail(err, SD_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = d;
    return SD_OK;
}

sd_status sd_file_fopen(const char *path, FILE **f, struct stat *st, sd_error *err) {
    *f = NULL;
    int fd;
    sd_status s = sd_file_open(path, &fd, st, err);
    if (s) return s;
    *f = fdopen(fd, "rb");
    if (!*f) {
        int e = errno;
        close(fd);
        return sd_fail(err, SD_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    return SD_OK;
}

sd_status sd_file_read_all(const char *path, size_t max_bytes, char **buf, size_t *len, sd_error *err) {
    *buf = NULL;
    *len = 0;
    int fd;
    struct stat st;
    sd_status s = sd_file_open(path, &fd, &st, err);
    if (s) return s;
    if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        close(fd);
        return sd_fail(err, SD_E_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(b);
            return sd_fail(err, SD_E_IO, "%s: read failed: %s", path, e ? strerror(e) : "the file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return SD_OK;
}

/* path with its folder resolved (realpath), whether or not path itself exists; NULL if the folder
 * does not exist. */
static char *resolve(const char *path) {
    char *r = realpath(path, NULL);
    if (r) return r;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    char *rd = dir ? realpath(dir, NULL) : NULL;
    free(dir);
    if (!rd) return NULL;
    size_t n = strlen(rd) + strlen(base) + 2;
    r = malloc(n);
    if (r) snprintf(r, n, "%s%s%s", rd, strcmp(rd, "/") ? "/" : "", base);
    free(rd);
    return r;
}

/* p is folder dir or lies inside it (both resolved). */
static int within(const char *p, const char *dir) {
    size_t n = strlen(dir);
    if (!strcmp(dir, "/")) return 1;
    return !strncmp(p, dir, n) && (p[n] == '\0' || p[n] == '/');
}

sd_status sd_output_check(const char *out, const char *what, const sd_input *in, int n, sd_error *err) {
    struct stat so, si;
    const int out_exists = stat(out, &so) == 0;
    char *ro = resolve(out);
    sd_status s = SD_OK;
    for (int i = 0; i < n && !s; i++) {
        if (!in[i].path) continue;
        char *ri = resolve(in[i].path);
        const int exists = stat(in[i].path, &si) == 0;
        const int same = (ro && ri && !strcmp(ro, ri)) ||
                         (out_exists && exists && so.st_dev == si.st_dev && so.st_ino == si.st_ino);
        if (same)
            s = sd_fail(err, SD_E_ARG, "%s %s is %s (%s), an input of this command: an output may not replace "
                        "an input; choose another path", what, out, in[i].what, in[i].path);
        else if (exists && S_ISDIR(si.st_mode) && ro && ri && within(ro, ri))
            s = sd_fail(err, SD_E_ARG, "%s %s lies inside %s (%s), an input of this command: outputs may not be "
                        "written among the inputs; choose another path", what, out, in[i].what, in[i].path);
        free(ri);
    }
    free(ro);
    return s;
}
