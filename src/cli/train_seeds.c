/* sdumc train --seeds 1,2,3: one training run per seed (the same options, --seed S and the seed's
 * own --out), one after the other or in parallel processes (--jobs N), then the summary of every
 * seed's validation and test metrics (src/eval/seeds.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "core/threads.h"
#include "eval/seeds.h"

#define MAX_SEEDS 64

/* The value after option `name` in argv, or NULL. */
static const char *option_value(int argc, char **argv, const char *name) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return NULL;
}

static int has_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

/* argv of one seed's run: argv[0] = "train", --seeds and --jobs removed, --seed S and --out
 * PATH_S, and --threads T when T >= 0. */
static char **seed_argv(int argc, char **argv, char *seed, char *out, char *threads, int *n) {
    char **a = calloc((size_t)argc + 8, sizeof *a);
    if (!a) return NULL;
    int k = 0;
    a[k++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && (!strcmp(argv[i], "--seeds") || !strcmp(argv[i], "--jobs") || !strcmp(argv[i], "--out") ||
                             (threads && !strcmp(argv[i], "--threads")))) {
            i++;
            continue;
        }
        a[k++] = argv[i];
    }
    a[k++] = "--seed";
    a[k++] = seed;
    a[k++] = "--out";
    a[k++] = out;
    if (threads) {
        a[k++] = "--threads";
        a[k++] = threads;
    }
    *n = k;
    return a;
}

/* Runs one seed's training in a new process (this program, re-executed). Returns its pid. */
static pid_t spawn(char **a, int n) {
    char **full = calloc((size_t)n + 2, sizeof *full);
    if (!full) return -1;
    full[0] = "sdumc";
    memcpy(full + 1, a, sizeof *a * (size_t)n);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", full);
        perror("sdumc train: cannot re-execute /proc/self/exe");
        _exit(127);
    }
    free(full);
    return pid;
}

int cli_train_seeds(int argc, char **argv) {
    const char *seeds_s = option_value(argc, argv, "--seeds"), *out = option_value(argc, argv, "--out");
    const char *jobs_s = option_value(argc, argv, "--jobs"), *threads_s = option_value(argc, argv, "--threads");
    uint64_t seeds[MAX_SEEDS];
    char msg[512];
    int n_seeds = seeds_s ? args_parse_seeds("seeds", seeds_s, seeds, MAX_SEEDS, msg, sizeof msg) : -1;
    if (n_seeds < 0) {
        fprintf(stderr, "sdumc train: %s\n", seeds_s ? msg : "--seeds needs a value");
        return 2;
    }
    if (option_value(argc, argv, "--seed") || has_flag(argc, argv, "--resume")) {
        fprintf(stderr, "sdumc train: --seeds excludes --seed and --resume (resume one seed's run with --seed S --resume "
                        "OUT.seedS.safetensors.state and its own --out)\n");
        return 2;
    }
    if (!out) {
        fprintf(stderr, "sdumc train: --out MODEL.safetensors is required\n");
        return 2;
    }
    int jobs = 1;
    if (jobs_s && ((jobs = atoi(jobs_s)) < 1 || jobs > MAX_SEEDS)) {
        fprintf(stderr, "sdumc train: --jobs: '%s' is not an integer in [1, %d]\n", jobs_s, MAX_SEEDS);
        return 2;
    }
    /* Parallel runs share the cores: each gets threads / jobs (at least one). */
    char threads_buf[32];
    const char *per_job_threads = NULL;
    if (jobs > 1) {
        int total = threads_s ? atoi(threads_s) : 0;
        if (total <= 0) total = sd_threads_get();
        snprintf(threads_buf, sizeof threads_buf, "%d", total / jobs > 0 ? total / jobs : 1);
        per_job_threads = threads_buf;
    }
    static char paths[MAX_SEEDS][1024], seed_text[MAX_SEEDS][32];
    sd_error err;
    for (int s = 0; s < n_seeds; s++) {
        if (sd_seed_model_path(out, seeds[s], paths[s], sizeof paths[s], &err)) {
            fprintf(stderr, "sdumc train: --out: %s\n", err.msg);
            return 2;
        }
        snprintf(seed_text[s], sizeof seed_text[s], "%llu", (unsigned long long)seeds[s]);
    }
    int rc = 0, running = 0, next = 0;
    pid_t pids[MAX_SEEDS];
    while (!rc && (next < n_seeds || running)) {
        if (next < n_seeds && running < jobs) {
            int n = 0;
            char **a = seed_argv(argc, argv, seed_text[next], paths[next], (char *)per_job_threads, &n);
            if (!a) {
                fprintf(stderr, "sdumc train: out of memory\n");
                rc = 1;
                break;
            }
            fprintf(stderr, "sdumc train: seed %s -> %s\n", seed_text[next], paths[next]);
            if (jobs == 1) {
                rc = cli_train(n, a);
            } else if ((pids[next] = spawn(a, n)) < 0) {
                perror("sdumc train: fork");
                rc = 1;
            } else {
                running++;
            }
            free(a);
            next++;
            continue;
        }
        int status = 0;
        pid_t done = wait(&status);
        if (done < 0) break;
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status)) {
            for (int s = 0; s < next; s++)
                if (pids[s] == done) fprintf(stderr, "sdumc train: the run of seed %s failed\n", seed_text[s]);
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
    }
    while (running > 0 && wait(NULL) > 0) running--; /* let the other runs finish what they write */
    if (rc) return rc;
    /* The summary of the seeds' models. */
    cli_data_opts d = {0};
    d.dir = option_value(argc, argv, "--data");
    const char *folder_opts[SD_MOD_COUNT] = {"--audio", "--text", "--video", "--sim"};
    for (int m = 0; m < SD_MOD_COUNT; m++) d.folder[m] = option_value(argc, argv, folder_opts[m]);
    d.skip_bad = has_flag(argc, argv, "--skip-bad");
    /* Each seed's view of the dataset: with --valid-fraction its own carved validation split (the
     * runs validated every value already, so the views skip that). */
    const char *fraction_s = option_value(argc, argv, "--valid-fraction");
    static sd_dataset *views[MAX_SEEDS];
    static sd_model *models[MAX_SEEDS];
    for (int s = 0; s < n_seeds && !rc; s++) {
        sd_dataset_options dopt = cli_dataset_options(&d, 0, 0);
        dopt.check_values = d.skip_bad; /* skipping must see the same problems as the runs did */
        char *report = NULL;
        int64_t carved = 0;
        if (sd_dataset_open_report(&dopt, &views[s], &report, &err) ||
            (fraction_s && sd_dataset_carve_valid(views[s], atof(fraction_s), seeds[s], &carved, &err))) {
            fprintf(stderr, "sdumc train: %s\n", report ? report : err.msg);
            rc = 1;
        }
        free(report);
        if (!rc && !(models[s] = cli_load_model("train", paths[s], -1))) rc = 1;
    }
    char csv[1100], txt[1100], name[256];
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    snprintf(name, sizeof name, "%s", base);
    char *dot = strstr(name, ".safetensors");
    if (dot && !dot[12]) *dot = '\0';
    char *table = NULL;
    if (!rc && (sd_seed_summary_path(out, ".seeds.csv", csv, sizeof csv, &err) ||
                sd_seed_summary_path(out, ".seeds.txt", txt, sizeof txt, &err) ||
                sd_seed_summary((const sd_dataset *const *)views, name, seeds, (const sd_model *const *)models, n_seeds, csv,
                                txt, &table, &err))) {
        fprintf(stderr, "sdumc train: %s\n", err.msg);
        rc = 1;
    }
    if (!rc) printf("\n%s\nper seed: %s\ntable:    %s\n", table, csv, txt);
    free(table);
    for (int s = 0; s < n_seeds; s++) {
        sd_model_free(models[s]);
        sd_dataset_close(views[s]);
    }
    return rc;
}
