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
#include <unistd.h>

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

int main(void) {
    sd_test_run("atomic_replace_and_no_temporary", test_replace_and_no_temporary);
    sd_test_run("atomic_abort_keeps_old", test_abort_keeps_old);
    sd_test_run("atomic_missing_folder", test_missing_folder);
    sd_test_run("atomic_target_is_a_folder", test_target_is_a_folder);
    sd_test_run("atomic_read_only_folder", test_read_only_folder);
    sd_test_run("atomic_write_fails_midway", test_write_fails_midway);
    sd_test_run("atomic_bad_arguments", test_bad_arguments);
    return sd_test_finish();
}
