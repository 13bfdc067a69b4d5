/* Crash-safe writes: a successful write replaces the file; every failure (folder missing, target is
 * a folder, read-only folder, file-size limit hit mid-write, abort) leaves the old file intact; no
 * temporary is ever left behind. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>
#include <limits.h>

#include "harness.h"
#include "io/atomic_file.h"

/* "<dir>/<name>" into out [1024]. */
static char *path_in(char *out, const char *dir, const char *name) {
    int n = snprintf(out, 1024, "%s/%s", dir, name);
    if (n < 0 || n >= 1024) sd_test_fail(__FILE__, __LINE__, "path too long: %s/%s", dir, name);
    return out;
}

/* A fresh folder for one case. */
static const char *fresh_dir(const char *name) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", sd_test_tmpdir(), name);
    mkdir(dir, 0755);
    return dir;
}

static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static int file_equals(const char *path, const char *want) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(want) && memcmp(buf, want, n) == 0;
}

static void test_replace_and_no_temporary(void) {
    const char *dir = fresh_dir("replace");
    char target[1024];
    path_in(target, dir, "model.bin");
    sd_error err = {0};
    EXPECT(sd_atomic_write_file(target, "first", 5, &err) == SD_OK, "%s", err.msg);
    EXPECT(file_equals(target, "first"), "first content");
    struct stat st;
    EXPECT(stat(target, &st) == 0 && (st.st_mode & 0777) == 0644, "new file mode %o", st.st_mode & 0777);
    chmod(target, 0640);
    sd_atomic_file af;
    EXPECT(sd_atomic_open(&af, target, &err) == SD_OK, "%s", err.msg);
    EXPECT(af.tmp_path && strncmp(af.tmp_path, target, strlen(target)) == 0 &&
               strncmp(af.tmp_path + strlen(target), ".tmp.", 5) == 0,
           "temporary %s", af.tmp_path ? af.tmp_path : "(null)");
    EXPECT(count_temporaries(dir) == 1, "temporary not in the same folder");
    EXPECT(file_equals(target, "first"), "target changed before commit");
    EXPECT(sd_atomic_write(&af, "sec", 3, &err) == SD_OK && sd_atomic_write(&af, "ond", 3, &err) == SD_OK, "%s",
           err.msg);
    fprintf(af.f, "!");
    EXPECT(sd_atomic_commit(&af, &err) == SD_OK, "%s", err.msg);
    EXPECT(af.f == NULL && af.tmp_path == NULL && af.path == NULL, "handle not released");
    EXPECT(file_equals(target, "second!"), "replaced content");
    EXPECT(stat(target, &st) == 0 && (st.st_mode & 0777) == 0640, "mode not kept: %o", st.st_mode & 0777);
    EXPECT(count_temporaries(dir) == 0, "temporary left behind");
}

static void test_abort_keeps_old(void) {
    const char *dir = fresh_dir("abort");
    char target[1024];
    path_in(target, dir, "x.bin");
    sd_error err = {0};
    sd_atomic_write_file(target, "old", 3, &err);
    sd_atomic_file af;
    EXPECT(sd_atomic_open(&af, target, &err) == SD_OK, "%s", err.msg);
    sd_atomic_write(&af, "new content", 11, &err);
    sd_atomic_abort(&af);
    sd_atomic_abort(&af); /* twice is harmless */
    EXPECT(file_equals(target, "old"), "old file changed by an aborted write");
    EXPECT(count_temporaries(dir) == 0, "temporary left behind");
}

static void test_missing_folder(void) {
    const char *dir = fresh_dir("missing");
    char target[1024];
    path_in(target, dir, "no/such/folder/x.bin");
    sd_atomic_file af;
    sd_error err = {0};
    EXPECT(sd_atomic_open(&af, target, &err) == SD_E_IO, "open in a missing folder succeeded");
    EXPECT(strncmp(err.msg, target, strlen(target)) == 0 && strstr(err.msg, "cannot create") &&
               strstr(err.msg, "No such file or directory"),
           "message: %s", err.msg);
    EXPECT(af.f == NULL && af.tmp_path == NULL, "handle not zeroed");
    sd_atomic_abort(&af);
}

static void test_target_is_a_folder(void) {
    const char *dir = fresh_dir("isdir");
    char target[1024];
    path_in(target, dir, "sub");
    mkdir(target, 0755);
    char inside[1024];
    path_in(inside, target, "keep.txt");
    sd_test_write_file(inside, "keep", 4);
    sd_error err = {0};
    sd_status st = sd_atomic_write_file(target, "data", 4, &err);
    EXPECT(st == SD_E_IO, "writing over a folder succeeded");
    EXPECT(strncmp(err.msg, target, strlen(target)) == 0 && strstr(err.msg, "cannot rename") &&
               strstr(err.msg, "Is a directory"),
           "message: %s", err.msg);
    struct stat sb;
    EXPECT(stat(target, &sb) == 0 && S_ISDIR(sb.st_mode) && file_equals(inside, "keep"), "folder damaged");
    EXPECT(count_temporaries(dir) == 0, "temporary left behind");
}

/* Tries to replace target with new bytes; returns 0 if that failed with "Permission denied". */
static int expect_permission_denied(const char *target) {
    sd_error err = {0};
    sd_status st = sd_atomic_write_file(target, "new", 3, &err);
    if (st == SD_E_IO && strstr(err.msg, "cannot create") && strstr(err.msg, "Permission denied")) return 0;
    printf("  status %d, message: %s\n", st, err.msg);
    return 1;
}

static void test_read_only_folder(void) {
    const char *dir = fresh_dir("readonly");
    char target[1024];
    path_in(target, dir, "x.bin");
    sd_error err = {0};
    sd_atomic_write_file(target, "old", 3, &err);
    chmod(dir, 0500);
    /* root (CAP_DAC_OVERRIDE) writes into read-only folders anyway: detect that */
    char probe[1024];
    path_in(probe, dir, "probe");
    FILE *f = fopen(probe, "wb");
    if (!f) {
        EXPECT(expect_permission_denied(target) == 0, "write into a read-only folder did not fail as expected");
    } else {
        fclose(f);
        unlink(probe);
        /* As root: try again from a child process that drops to user nobody (65534), for whom the folder
         * (root's, 0755) is read-only. */
        chmod(dir, 0755);
        chmod(sd_test_tmpdir(), 0711); /* let nobody reach it */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(77);
            _exit(expect_permission_denied(target));
        }
        int status = 0;
        waitpid(pid, &status, 0);
        chmod(sd_test_tmpdir(), 0700);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
            chmod(dir, 0755);
            sd_test_skip("running as root and cannot drop to user nobody: chmod 0500 does not stop root's "
                         "writes; the missing-folder and folder-as-target cases cover open and rename failures");
            return;
        }
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as user nobody: write into root's 0755 folder did not "
               "fail with Permission denied (exit status %d)", status);
    }
    chmod(dir, 0755);
    EXPECT(file_equals(target, "old"), "old file changed");
    EXPECT(count_temporaries(dir) == 0, "temporary left behind");
}

/* A write that fails part-way (file-size limit: EFBIG, the same path as a full disk) keeps the old
 * file and removes the temporary. Works as root too. */
static void test_write_fails_midway(void) {
    const char *dir = fresh_dir("efbig");
    char target[1024];
    path_in(target, dir, "x.bin");
    sd_error err = {0};
    sd_atomic_write_file(target, "old", 3, &err);
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old_lim;
    lim.rlim_cur = 4096;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        signal(SIGXFSZ, old_handler);
        sd_test_skip("cannot lower RLIMIT_FSIZE");
        return;
    }
    static char big[65536];
    memset(big, 'z', sizeof big);
    sd_atomic_file af;
    sd_status st = sd_atomic_open(&af, target, &err);
    EXPECT(st == SD_OK, "%s", err.msg);
    if (!st) {
        sd_status w = sd_atomic_write(&af, big, sizeof big, &err);
        if (w) sd_atomic_abort(&af);
        else w = sd_atomic_commit(&af, &err);
        EXPECT(w == SD_E_IO, "a write past the file-size limit succeeded");
        EXPECT(strncmp(err.msg, target, strlen(target)) == 0 && strstr(err.msg, "File too large"), "message: %s",
               err.msg);
    }
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_handler);
    EXPECT(file_equals(target, "old"), "old file changed");
    EXPECT(count_temporaries(dir) == 0, "temporary left behind");
}

static void test_bad_arguments(void) {
    sd_atomic_file af;
    sd_error err = {0};
    EXPECT(sd_atomic_open(&af, "", &err) == SD_E_ARG, "empty path");
    EXPECT(sd_atomic_open(NULL, "x", &err) == SD_E_ARG, "NULL handle");
    memset(&af, 0, sizeof af);
    EXPECT(sd_atomic_write(&af, "x", 1, &err) == SD_E_ARG, "write on a closed handle");
    EXPECT(sd_atomic_commit(&af, &err) == SD_E_ARG, "commit on a closed handle");
}

/* Issue 14, item 11: a new file has 0666 less the umask (it was always 0644); a replaced file keeps
 * its mode. */
static void test_umask_and_kept_mode(void) {
    const char *dir = fresh_dir("umask");
    char p[1024];
    path_in(p, dir, "new");
    mode_t old = umask(077);
    sd_error err;
    EXPECT(sd_atomic_write_file(p, "x", 1, &err) == SD_OK, "%s", err.msg);
    struct stat st;
    EXPECT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "umask 077: mode %o", (unsigned)(st.st_mode & 0777));
    umask(002);
    path_in(p, dir, "new2");
    EXPECT(sd_atomic_write_file(p, "x", 1, &err) == SD_OK, "%s", err.msg);
    EXPECT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0664, "umask 002: mode %o", (unsigned)(st.st_mode & 0777));
    chmod(p, 0640);
    EXPECT(sd_atomic_write_file(p, "y", 1, &err) == SD_OK, "%s", err.msg);
    EXPECT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0640, "replaced: mode %o", (unsigned)(st.st_mode & 0777));
    umask(old);
}

/* Issue 14, item 6: temporaries of a dead run (old, unlocked) are removed; a live writer's
 * (locked), a new one, another file's and look-alikes are kept. */
static void test_stale_temporaries(void) {
    const char *dir = fresh_dir("stale");
    char out[1024], p[1024];
    path_in(out, dir, "m.safetensors");
    const char *stale[] = {"m.safetensors.tmp.AbC123", "m.safetensors.tmp-Zz9yX0"};
    const char *kept[] = {"m.safetensors.tmp.AbC12", "m.safetensors.tmp.AbC1234", "other.tmp.AbC123",
                          "m.safetensors.tmp.Ab_123", "m.safetensors"};
    for (int i = 0; i < 5; i++) EXPECT(sd_test_write_file(path_in(p, dir, kept[i]), "k", 1) == 0, "write");
    EXPECT(sd_test_write_file(path_in(p, dir, stale[0]), "s", 1) == 0, "write");
    EXPECT(mkdir(path_in(p, dir, stale[1]), 0755) == 0, "mkdir");
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/audio", p);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/audio/u.npy", p);
    sd_test_write_file(sub, "x", 1);
    /* A live writer: its temporary is open (and locked) while another run starts. */
    sd_atomic_file af;
    sd_error err;
    EXPECT(sd_atomic_open(&af, out, &err) == SD_OK, "%s", err.msg);
    sleep(1); /* (mtimes are compared in whole seconds) */
    time_t now = time(NULL);
    int removed = sd_atomic_remove_stale(out, now);
    EXPECT(removed == 2, "removed %d, expected the 2 stale ones", removed);
    struct stat st;
    for (int i = 0; i < 2; i++) EXPECT(lstat(path_in(p, dir, stale[i]), &st) != 0, "%s kept", stale[i]);
    for (int i = 0; i < 5; i++) EXPECT(lstat(path_in(p, dir, kept[i]), &st) == 0, "%s removed", kept[i]);
    EXPECT(af.tmp_path && lstat(af.tmp_path, &st) == 0, "the live writer's temporary was removed");
    EXPECT(sd_atomic_write(&af, "live", 4, &err) == SD_OK && sd_atomic_commit(&af, &err) == SD_OK, "live: %s", err.msg);
    EXPECT(file_equals(out, "live"), "the live write did not land");
    /* One made after the start is not stale, whoever holds it. */
    EXPECT(sd_test_write_file(path_in(p, dir, stale[0]), "s", 1) == 0, "write");
    EXPECT(sd_atomic_remove_stale(out, now) == 0, "a temporary newer than the start was removed");
    /* A folder of outputs: every file's temporaries (here x.npy's and other's). */
    path_in(p, dir, "x.npy.tmp.Qq1111");
    sd_test_write_file(p, "s", 1);
    struct utimbuf t = {now - 100, now - 100};
    utime(p, &t);
    char folder[1100];
    snprintf(folder, sizeof folder, "%s/", dir);
    EXPECT(sd_atomic_remove_stale(folder, now) == 2 && lstat(p, &st) != 0, "folder form");
    EXPECT(lstat(path_in(p, dir, "other.tmp.AbC123"), &st) != 0 && lstat(path_in(p, dir, stale[0]), &st) == 0,
           "folder form: which");
}

/* Issue 14, item 1: a path whose temporary would not fit the system's limits is refused up front. */
static void test_path_limits(void) {
    sd_error err;
    char name[300];
    memset(name, 'n', 250);
    name[250] = '\0';
    char p[1024];
    path_in(p, sd_test_tmpdir(), name); /* 250 bytes: fits NAME_MAX, but not with ".tmp.XXXXXX" */
    EXPECT(sd_atomic_check_path(p, &err) == SD_E_ARG && strstr(err.msg, "for one name"), "name: %s", err.msg);
    name[244] = '\0';
    path_in(p, sd_test_tmpdir(), name);
    EXPECT(sd_atomic_check_path(p, &err) == SD_OK, "244 bytes: %s", err.msg);
    static char longp[PATH_MAX + 10];
    memset(longp, 'a', sizeof longp - 1);
    for (size_t i = 0; i < sizeof longp - 1; i += 200) longp[i] = '/';
    longp[PATH_MAX - 5] = '\0';
    EXPECT(sd_atomic_check_path(longp, &err) == SD_E_ARG && strstr(err.msg, "limit of"), "long: %s", err.msg);
}

int main(void) {
    sd_test_run("atomic_umask_and_kept_mode", test_umask_and_kept_mode);
    sd_test_run("atomic_stale_temporaries", test_stale_temporaries);
    sd_test_run("atomic_path_limits", test_path_limits);
    sd_test_run("atomic_replace_and_no_temporary", test_replace_and_no_temporary);
    sd_test_run("atomic_abort_keeps_old", test_abort_keeps_old);
    sd_test_run("atomic_missing_folder", test_missing_folder);
    sd_test_run("atomic_target_is_a_folder", test_target_is_a_folder);
    sd_test_run("atomic_read_only_folder", test_read_only_folder);
    sd_test_run("atomic_write_fails_midway", test_write_fails_midway);
    sd_test_run("atomic_bad_arguments", test_bad_arguments);
    return sd_test_finish();
}
