/* Crash-safe file replacement: temporary file in the same folder, fsync, rename, folder fsync
 * (atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

sd_status sd_atomic_open(sd_atomic_file *af, const char *path, sd_error *err) {
    if (!af) return sd_fail(err, SD_E_ARG, "sd_atomic_open: NULL file handle");
    memset(af, 0, sizeof *af);
    if (!path || !*path) return sd_fail(err, SD_E_ARG, "sd_atomic_open: empty path");
    size_t n = strlen(path);
    static const char suffix[] = ".tmp.XXXXXX";
    af->path = dup_string(path);
    af->tmp_path = malloc(n + sizeof suffix);
    if (!af->path || !af->tmp_path) {
        release(af);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, suffix, sizeof suffix);

    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        sd_fail(err, SD_E_IO, "%s: cannot create %s: %s", path, af->tmp_path, strerror(e));
        release(af);
        return SD_E_IO;
    }
    /* mkstemp makes the file 0600: give it the mode of the file it replaces, or 0644. */
    struct stat st;
    mode_t mode = 0644;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) mode = st.st_mode & 07777;
    (void)fchmod(fd, mode);

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
