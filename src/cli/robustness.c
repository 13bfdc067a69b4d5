/* sdumc robustness: several models under missing frames, dropped runs, noise and whole-modality
 * patterns over several seeds (src/eval/robust.h); writes results.csv, summary.json, report.html. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "core/threads.h"
#include "eval/robust.h"

#define MAX_MODELS 8
#define MAX_SEEDS 64
#define MAX_LEVELS 64

/* "[LABEL=]PATH": the label, or the file name without ".safetensors" and the seed placeholder. */
static void model_label(const char *spec, char *label, size_t n, const char **path) {
    const char *eq = strchr(spec, '=');
    if (eq && eq != spec && !memchr(spec, '/', (size_t)(eq - spec))) {
        snprintf(label, n, "%.*s", (int)(eq - spec), spec);
        *path = eq + 1;
        return;
    }
    *path = spec;
    const char *base = strrchr(spec, '/');
    snprintf(label, n, "%s", base ? base + 1 : spec);
    char *p;
    if ((p = strstr(label, ".safetensors")) && !p[12]) *p = '\0';
    while ((p = strstr(label, "{seed}"))) memmove(p, p + 6, strlen(p + 6) + 1);
    size_t len = strlen(label);
    while (len && (label[len - 1] == '.' || label[len - 1] == '_' || label[len - 1] == '-')) label[--len] = '\0';
    if ((p = strstr(label, ".seed")) && !p[5]) *p = '\0';
}

/* path with every "{seed}" replaced by seed. */
static int seed_path(const char *path, uint64_t seed, char *out, size_t n) {
    size_t used = 0;
    for (const char *p = path; *p;) {
        if (!strncmp(p, "{seed}", 6)) {
            used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%llu", (unsigned long long)seed);
            p += 6;
        } else {
            if (used + 1 < n) out[used] = *p;
            used++;
            p++;
        }
    }
    if (used >= n) return -1;
    out[used] = '\0';
    return 0;
}

/* Pattern list: "all", "none" or comma-separated present sets such as a,t+v,a+t+v (letters a, t,
 * v; '+' optional). Returns the bit mask or -1. */
static int parse_patterns(const char *s) {
    if (!strcmp(s, "all")) return 127;
    if (!strcmp(s, "none")) return 0;
    int mask = 0;
    unsigned set = 0;
    for (const char *p = s;; p++) {
        if (*p == 'a' || *p == 't' || *p == 'v') {
            unsigned bit = *p == 'a' ? SD_SLOT_AUDIO : *p == 't' ? SD_SLOT_TEXT : SD_SLOT_VIDEO;
            if (set & bit) return -1;
            set |= bit;
        } else if (*p == ',' || !*p) {
            if (!set) return -1;
            mask |= 1 << (set - 1);
            set = 0;
            if (!*p) break;
        } else if (*p != '+') {
            return -1;
        }
    }
    return mask;
}

/* Target list: comma-separated audio, text, video, all. Returns the bit mask or -1. */
static int parse_targets(const char *s) {
    const char *names[4] = {"audio", "text", "video", "all"};
    int mask = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int k = 0; k < 4; k++)
            if (strlen(names[k]) == len && !strncmp(p, names[k], len)) found = k;
        if (found < 0) return -1;
        mask |= 1 << found;
        p += len;
        if (*p == ',') p++;
    }
    return mask ? mask : -1;
}

static void progress(int64_t done, int64_t total, void *user) {
    (void)user;
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[Kevaluated %lld/%lld utterances", (long long)done, (long long)total);
}

static int make_dir(const char *dir) {
    struct stat st;
    if (!stat(dir, &st)) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(dir, 0755);
}

int cli_robustness(int argc, char **argv) {
    cli_data_opts d = {0};
    const char *model_specs[MAX_MODELS] = {0}, *out = NULL;
    const char *rates_s = "0:0.9:0.1", *drop_s = NULL, *noise_s = "0:0.9:0.1", *seeds_s = "1,2,3";
    const char *patterns_s = "all", *targets_s = "audio,text,video,all";
    int split = SD_SPLIT_TEST, flow = 2, threads = 0, batch = 64, mia = -1;
    arg_spec specs[] = {
        CLI_DATA_SPECS(d),
        {"model", ARG_LIST, model_specs, 0, MAX_MODELS, NULL,
         "[NAME=]MODEL.safetensors; {seed} in the path is replaced by each seed (one model per training seed)", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "folder for results.csv, summary.json, report.html (created if missing)", 0, 0},
        {"split", ARG_CHOICE, &split, 0, 0, "train|valid|test", "split to evaluate (test)", 0, 0},
        {"seeds", ARG_STRING, &seeds_s, 0, 0, NULL, "seeds of the corruption draws (and of {seed} model files) (1,2,3)", 0, 0},
        {"rates", ARG_STRING, &rates_s, 0, 0, NULL, "random frame missing rates: A:B:STEP, a list, or none (0:0.9:0.1)", 0, 0},
        {"drop", ARG_STRING, &drop_s, 0, 0, NULL, "dropped-run rates (the --rates values)", 0, 0},
        {"noise", ARG_STRING, &noise_s, 0, 0, NULL, "Gaussian noise levels in feature standard deviations (0:0.9:0.1)", 0, 0},
        {"targets", ARG_STRING, &targets_s, 0, 0, NULL, "what the sweeps corrupt: audio,text,video,all (all four)", 0, 0},
        {"patterns", ARG_STRING, &patterns_s, 0, 0, NULL, "whole-modality patterns: all, none, or present sets like a,t+v (all)", 0, 0},
        {"flow", ARG_CHOICE, &flow, 0, 0, "full|missing|both", "complete flow, text-missing flow, or both (both)", 0, 0},
        {"batch-size", ARG_INT, &batch, 1, 65536, NULL, "evaluation batch size (64)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 1024, NULL, "threads (0 = all cores)", 0, 0},
        CLI_MIA_SPEC(mia),
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("robustness",
                   "sdumc robustness --model M [--model M2 ...] --data DIR --out DIR [--seeds 1,2,3] [--rates 0:0.9:0.1] ...",
                   "Evaluates models under random frame missing, dropped runs, Gaussian noise and whole-modality\n"
                   "patterns, every model on the same corrupted inputs (docs/ROBUSTNESS.md).",
                   specs, n, argc, argv, &code))
        return code;
    const int n_models = args_find(specs, n, "model")->seen;
    float rates[MAX_LEVELS], drop[MAX_LEVELS], noise[MAX_LEVELS];
    uint64_t seeds[MAX_SEEDS];
    char msg[512];
    sd_robust_options o = sd_robust_default_options();
    o.split = (sd_split)split;
    o.batch_size = batch;
    o.flows = flow == 2 ? 3 : 1 << flow;
    int pat = parse_patterns(patterns_s), tgt = parse_targets(targets_s);
    if ((o.n_seeds = args_parse_seeds("seeds", seeds_s, seeds, MAX_SEEDS, msg, sizeof msg)) < 0 ||
        (o.n_rates = args_parse_levels("rates", rates_s, rates, MAX_LEVELS, 0, 1, msg, sizeof msg)) < 0 ||
        (o.n_drop = args_parse_levels("drop", drop_s ? drop_s : rates_s, drop, MAX_LEVELS, 0, 1, msg, sizeof msg)) < 0 ||
        (o.n_noise = args_parse_levels("noise", noise_s, noise, MAX_LEVELS, 0, 100, msg, sizeof msg)) < 0) {
        fprintf(stderr, "sdumc robustness: %s\n", msg);
        return 2;
    }
    if (pat < 0 || tgt < 0) {
        fprintf(stderr, "sdumc robustness: --%s: '%s' is not valid (%s)\n", pat < 0 ? "patterns" : "targets",
                pat < 0 ? patterns_s : targets_s,
                pat < 0 ? "all, none, or comma-separated sets of a, t, v such as a,t+v" : "comma-separated audio, text, video, all");
        return 2;
    }
    o.seeds = seeds;
    o.rates = rates;
    o.drop = drop;
    o.noise = noise;
    o.patterns = (unsigned)pat;
    o.targets = (unsigned)tgt;
    if (!n_models || !out) {
        fprintf(stderr, "sdumc robustness: --model and --out are required\n");
        return 2;
    }
    if (!cli_parent_dir_exists(out)) {
        fprintf(stderr, "sdumc robustness: --out %s: its parent folder does not exist\n", out);
        return 2;
    }
    char labels[MAX_MODELS][128];
    const char *paths[MAX_MODELS];
    for (int m = 0; m < n_models; m++) {
        model_label(model_specs[m], labels[m], sizeof labels[m], &paths[m]);
        for (int k = 0; k < m; k++)
            if (!strcmp(labels[k], labels[m])) {
                fprintf(stderr, "sdumc robustness: two models are named '%s': name them with --model NAME=PATH\n", labels[m]);
                return 2;
            }
    }
    sd_dataset *ds = cli_open_dataset("robustness", &d, flow == 1, SD_SPLIT_BIT(split));
    if (!ds) return 1;
    if (flow == 2 && !sd_dataset_has_sim(ds))
        fprintf(stderr, "sdumc robustness: note: %s has no simulated text (%s): only the complete flow is evaluated, and "
                        "an absent text is zeros\n", sd_dataset_dir(ds), sd_dataset_folder(ds, SD_MOD_SIM));
    sd_threads_set(threads);
    /* Models: one per (model, seed), loaded once per distinct file. */
    static sd_model *loaded[MAX_MODELS][MAX_SEEDS];
    static char files[MAX_MODELS][MAX_SEEDS][1024];
    static const char *file_ptrs[MAX_MODELS][MAX_SEEDS];
    sd_robust_model models[MAX_MODELS];
    int rc = 0;
    for (int m = 0; m < n_models && !rc; m++) {
        for (int s = 0; s < o.n_seeds && !rc; s++) {
            if (seed_path(paths[m], seeds[s], files[m][s], sizeof files[m][s])) {
                fprintf(stderr, "sdumc robustness: --model %s: path too long\n", model_specs[m]);
                rc = 2;
                break;
            }
            file_ptrs[m][s] = files[m][s];
            loaded[m][s] = s && !strcmp(files[m][s], files[m][s - 1]) ? loaded[m][s - 1] : cli_load_model("robustness", files[m][s], mia);
            if (!loaded[m][s]) rc = 1;
        }
        models[m] = (sd_robust_model){labels[m], (const sd_model *const *)loaded[m], file_ptrs[m]};
    }
    sd_robust_result res;
    memset(&res, 0, sizeof res);
    sd_error err;
    if (!rc && make_dir(out)) {
        fprintf(stderr, "sdumc robustness: --out %s: cannot create the folder: %s\n", out, strerror(errno));
        rc = 1;
    }
    if (!rc) {
        o.on_progress = progress;
        fprintf(stderr, "sdumc robustness: %d model(s) x %d seed(s) on %lld %s utterances, %d threads\n", n_models,
                o.n_seeds, (long long)sd_dataset_size(ds, o.split), sd_split_name(o.split), sd_threads_get());
        sd_status st = sd_robust_run(ds, models, n_models, &o, &res, &err);
        if (isatty(STDERR_FILENO)) fprintf(stderr, "\n");
        char path[3][1200];
        const char *names[3] = {"results.csv", "summary.json", "report.html"};
        for (int k = 0; k < 3; k++) snprintf(path[k], sizeof path[k], "%s/%s", out, names[k]);
        if (!st) st = sd_robust_write_csv(path[0], &res, &err);
        if (!st) st = sd_robust_write_summary(path[1], &res, &err);
        if (!st) st = sd_robust_write_html(path[2], &res, &err);
        if (st) {
            fprintf(stderr, "sdumc robustness: %s\n", err.msg);
            rc = 1;
        } else {
            printf("%d conditions x %d model(s) x %d seed(s) in %.1f s\n", res.n_conditions, n_models, o.n_seeds, res.seconds);
            for (int k = 0; k < 3; k++) printf("%-8s %s\n", k == 0 ? "results:" : k == 1 ? "summary:" : "report:", path[k]);
        }
    }
    sd_robust_result_free(&res);
    for (int m = 0; m < n_models; m++)
        for (int s = 0; s < o.n_seeds; s++)
            if (loaded[m][s] && !(s && loaded[m][s] == loaded[m][s - 1])) sd_model_free(loaded[m][s]);
    sd_dataset_close(ds);
    return rc;
}
