/* Crash-safe file replacement: temporary file in the same folder, fsync, rename, folder fsync
 * (atomic_file.h); stale temporaries of dead runs. */
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void release(sd_atomic_file *af) {
    free(af->tmp_path);
    free(af->path);
    af->f = NULL;
    af->tmp_path = NULL;
    af->path = NULL;
}

/* fsync the folder holding path, so a rename in it survives a crash. */
static int sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = dup_string(".");
    } else if (slash == path) {
        dir = dup_string("/");
    } else {
        size_t n = (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    /* Some file systems cannot fsync a folder; that is not a failure of the write. */
    if (rc != 0 && (saved == EINVAL || saved == ENOTSUP)) rc = 0;
    errno = saved;
    return rc;
}

/* Six random characters of [A-Za-z0-9] into x (a temporary's name suffix). */
static void random_suffix(char *x) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40) ^
                 (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull) ^ (uint64_t)(uintptr_t)x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; /* splitmix64's finaliser */
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (int i = 0; i < 6; i++, z /= 62) x[i] = alphabet[z % 62];
}

#define TMP_SUFFIX ".tmp.XXXXXX"
#define TMP_TRIES 100

sd_status sd_atomic_open(sd_atomic_file *af, const char *path, sd_error *err) {
    if (!af) return sd_fail(err, SD_E_ARG, "sd_atomic_open: NULL file handle");
    memset(af, 0, sizeof *af);
    if (!path || !*path) return sd_fail(err, SD_E_ARG, "sd_atomic_open: empty path");
    size_t n = strlen(path);
    af->path = dup_string(path);
    af->tmp_path = malloc(n + sizeof TMP_SUFFIX);
    if (!af->path || !af->tmp_path) {
        release(af);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, TMP_SUFFIX, sizeof TMP_SUFFIX);

    /* O_EXCL instead of mkstemp: the kernel applies the umask to 0666 (mkstemp makes 0600). Locked
     * at once, "in use" for sd_atomic_remove_stale until closed; a sweep that took the new file
     * before the lock has unlinked it (no links once locked), so another is made. */
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < TMP_TRIES; tries++) {
        random_suffix(af->tmp_path + n + sizeof TMP_SUFFIX - 7);
        fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
        struct stat me;
        if (fd >= 0 && flock(fd, LOCK_EX) == 0 && fstat(fd, &me) == 0 && me.st_nlink == 0) {
            close(fd);
            fd = -1;
            errno = EEXIST;
        }
    }
    if (fd < 0) {
        int e = errno;
        sd_fail(err, SD_E_IO, "%s: cannot create %s: %s", path, af->tmp_path, strerror(e));
        release(af);
        return SD_E_IO;
    }
    /* A replaced file keeps its permission bits. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(fd, st.st_mode & 07777);

    af->f = fdopen(fd, "wb");
    if (!af->f) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        sd_fail(err, SD_E_IO, "%s: cannot open %s: %s", path, af->tmp_path, strerror(e));
        release(af);
        return SD_E_IO;
    }
    return SD_OK;
}

sd_status sd_atomic_write(sd_atomic_file *af, const void *buf, size_t n, sd_error *err) {
    if (!af || !af->f) return sd_fail(err, SD_E_ARG, "sd_atomic_write: file is not open");
    if (n == 0) return SD_OK;
    errno = 0;
    if (fwrite(buf, 1, n, af->f) != n) {
        int e = errno ? errno : EIO;
        return sd_fail(err, SD_E_IO, "%s: write failed: %s", af->path, strerror(e));
    }
    return SD_OK;
}

sd_status sd_atomic_commit(sd_atomic_file *af, sd_error *err) {
    if (!af || !af->f) return sd_fail(err, SD_E_ARG, "sd_atomic_commit: file is not open");
    const char *what = NULL;
    int e = 0;
    errno = 0;
    if (ferror(af->f)) {
        what = "write failed";
        e = errno ? errno : EIO;
    } else if (fflush(af->f) != 0) {
        what = "write failed";
        e = errno;
    } else if (fsync(fileno(af->f)) != 0) {
        what = "fsync failed";
        e = errno;
    }
    int close_rc = fclose(af->f);
    af->f = NULL;
    if (!what && close_rc != 0) {
        what = "close failed";
        e = errno;
    }
    if (!what && rename(af->tmp_path, af->path) != 0) {
        e = errno;
        sd_fail(err, SD_E_IO, "%s: cannot rename %s over it: %s", af->path, af->tmp_path, strerror(e));
        unlink(af->tmp_path);
        release(af);
        return SD_E_IO;
    }
    if (what) {
        sd_fail(err, SD_E_IO, "%s: %s: %s", af->path, what, strerror(e ? e : EIO));
        unlink(af->tmp_path);
        release(af);
        return SD_E_IO;
    }
    /* The new file is in place; failing to sync the folder only weakens durability after a crash,
     * but report it so the caller knows. */
    sd_status st = SD_OK;
    if (sync_parent_dir(af->path) != 0) {
        e = errno;
        st = sd_fail(err, SD_E_IO, "%s: fsync of the folder failed: %s", af->path, strerror(e));
    }
    release(af);
    return st;
}

void sd_atomic_abort(sd_atomic_file *af) {
    if (!af) return;
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    release(af);
}

sd_status sd_atomic_write_file(const char *path, const void *buf, size_t n, sd_error *err) {
    sd_atomic_file af;
    sd_status st = sd_atomic_open(&af, path, err);
    if (st) return st;
    st = sd_atomic_write(&af, buf, n, err);
    if (st) {
        sd_atomic_abort(&af);
        return st;
    }
    return sd_atomic_commit(&af, err);
}

sd_status sd_atomic_check_path(const char *path, sd_error *err) {
    size_t n = strlen(path);
    if (n + sizeof TMP_SUFFIX > PATH_MAX)
        return sd_fail(err, SD_E_ARG, "%.60s...: a path of %zu bytes; with the suffix of its temporary (%zu bytes) "
                       "it exceeds the system's limit of %d bytes", path, n, sizeof TMP_SUFFIX - 1, PATH_MAX - 1);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : dup_string(".");
    long name_max = dir ? pathconf(dir, _PC_NAME_MAX) : -1;
    free(dir);
    if (name_max <= 0) name_max = NAME_MAX;
    size_t bl = strlen(base);
    if (bl + sizeof TMP_SUFFIX - 1 > (size_t)name_max)
        return sd_fail(err, SD_E_ARG, "%s: a file name of %zu bytes; with the suffix of its temporary (%zu bytes) "
                       "it exceeds the limit of %ld bytes for one name", path, bl, sizeof TMP_SUFFIX - 1, name_max);
    return SD_OK;
}

void sd_remove_tree(const char *path, int depth) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        size_t pl = strlen(path);
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *sub = malloc(pl + strlen(e->d_name) + 2);
            if (!sub) continue;
            sprintf(sub, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode) && depth > 0) sd_remove_tree(sub, depth - 1);
            else unlink(sub);
            free(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

/* name is "<base>.tmp.XXXXXX" or "<base>.tmp-XXXXXX" (X in [A-Za-z0-9]; an empty base: any
 * non-empty one); *dir_kind: the '-' form. */
static int is_temp_of(const char *name, const char *base, int *dir_kind) {
    size_t nl = strlen(name), bl = strlen(base);
    if (nl < 12 || (bl && nl != bl + 11) || strncmp(name, base, bl)) return 0;
    const char *t = name + nl - 11;
    if (strncmp(t, ".tmp", 4) || (t[4] != '.' && t[4] != '-')) return 0;
    for (int i = 5; i < 11; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
            return 0;
    *dir_kind = t[4] == '-';
    return 1;
}

int sd_atomic_remove_stale(const char *path, time_t before) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : dup_string(".");
    DIR *d = dir ? opendir(dir) : NULL;
    int removed = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int dir_kind;
        if (!is_temp_of(e->d_name, base, &dir_kind)) continue;
        char *p = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!p) break;
        sprintf(p, "%s/%s", dir, e->d_name);
        struct stat st;
        int fd = -1;
        if (lstat(p, &st) == 0 && st.st_mtime < before && (dir_kind ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
            fd = open(p, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | (dir_kind ? O_DIRECTORY : 0));
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) { /* no live process holds it */
            if (dir_kind) sd_remove_tree(p, 2);
            else unlink(p);
            removed++;
        }
        if (fd >= 0) close(fd);
        free(p);
    }
    if (d) closedir(d);
    free(dir);
    return removed;
}

sd_status sd_atomic_make_temp_dir(const char *path, char *tmp, size_t tmp_size, int *lock_fd, sd_error *err) {
    *lock_fd = -1;
    size_t n = strlen(path);
    if (n + 12 > tmp_size) return sd_fail(err, SD_E_ARG, "%s: path too long", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp-XXXXXX", 12);
    int made = -1;
    for (int tries = 0; made != 0 && tries < TMP_TRIES; tries++) {
        random_suffix(tmp + n + 5);
        made = mkdir(tmp, 0777);
        if (made != 0 && errno != EEXIST) break;
    }
    if (made != 0) return sd_fail(err, SD_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    *lock_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*lock_fd >= 0) (void)flock(*lock_fd, LOCK_EX | LOCK_NB);
    return SD_OK;
}
