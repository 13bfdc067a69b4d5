/* What the subcommands share: dataset options and opening with its report, model loading,
 * usage errors, the output folder check. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/interrupt.h"

sd_dataset_options cli_dataset_options(const cli_data_opts *d, int require_sim, unsigned need_splits) {
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = d->dir;
    for (int m = 0; m < SD_MOD_COUNT; m++) o.folder[m] = d->folder[m];
    o.skip_bad = d->skip_bad;
    o.require_sim = require_sim;
    o.need_splits = need_splits;
    return o;
}

sd_dataset *cli_open_dataset(const char *cmd, const cli_data_opts *d, int require_sim,
                             unsigned need_splits) {
    if (!d->dir) {
        fprintf(stderr, "sdumc %s: --data DIR is required\n", cmd);
        return NULL;
    }
    sd_dataset_options o = cli_dataset_options(d, require_sim, need_splits);
    sd_dataset *ds = NULL;
    char *report = NULL;
    sd_error err;
    sd_status st = sd_dataset_open_report(&o, &ds, &report, &err);
    if (st) {
        fprintf(stderr, "sdumc %s: %s\n", cmd, report ? report : err.msg);
        fprintf(stderr, "(nothing was written)\n");
        free(report);
        return NULL;
    }
    if (report) fprintf(stderr, "sdumc %s: warning: %s", cmd, report);
    free(report);
    return ds;
}

void cli_note_mia_default(const char *cmd, const char *path) {
    fprintf(stderr,
            "sdumc %s: note: %s has no sdumc metadata (a converted checkpoint): the text-missing flow runs "
            "without MIA, as the released code does (--mia on applies its MIA tensors)\n",
            cmd, path);
}

sd_model *cli_load_model(const char *cmd, const char *path, int mia) {
    sd_error err;
    sd_model *m = NULL;
    sd_model_load_opts o = sd_model_default_load_opts();
    o.mia = mia;
    if (sd_model_load_with(path, &o, &m, &err) || sd_model_prepare_inference(m, &err)) {
        fprintf(stderr, "sdumc %s: %s\n", cmd, err.msg);
        sd_model_free(m);
        return NULL;
    }
    if (m->mia_source == SD_MIA_FROM_DEFAULT) cli_note_mia_default(cmd, path);
    return m;
}

int cli_parse(const char *cmd, const char *synopsis, const char *about, arg_spec *specs, int n, int argc,
              char **argv, int *exit_code) {
    char msg[512];
    int r = args_parse(specs, n, argc, argv, msg, sizeof msg);
    if (r == 1) {
        args_usage(stdout, synopsis, about, specs, n);
        *exit_code = 0;
        return 0;
    }
    if (r < 0) {
        fprintf(stderr, "sdumc %s: %s\n", cmd, msg);
        fprintf(stderr, "usage: %s\n(sdumc %s --help lists the options)\n", synopsis, cmd);
        *exit_code = 2;
        return 0;
    }
    return 1;
}

const char *cli_program = "sdumc";

static void on_signal(int signo) { sd_interrupt_request(signo); }

void cli_catch_signals(void) {
    const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        struct sigaction sa, old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

int cli_exit_code(sd_status st) { return st == SD_E_INTERRUPTED && sd_interrupted() ? 128 + sd_interrupted() : 1; }


int cli_parse_range(const char *s, double *lo, double *hi) {
    char *end;
    errno = 0;
    double a = strtod(s, &end);
    if (end == s || *end != ',' || errno) return -1;
    const char *t = end + 1;
    double b = strtod(t, &end);
    if (end == t || *end || errno || !isfinite(a) || !isfinite(b) || !(a < b)) return -1;
    *lo = a;
    *hi = b;
    return 0;
}

int cli_parent_dir_exists(const char *path) {
    char *copy = strdup(path);
    if (!copy) return 0;
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    struct stat st;
    int ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    free(copy);
    return ok;
}
