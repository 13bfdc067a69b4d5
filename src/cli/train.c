/* sdumc train: the double-flow self-distillation training of MODEL.md section 4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "core/dist.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "data/cache.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "model/norm.h"
#include "train/checkpoint.h"
#include "train/train.h"

static int on_terminal;

static void progress(const sd_train_progress *p, const sd_epoch_record *r, void *user) {
    (void)user;
    if (r) {
        if (on_terminal) fprintf(stderr, "\r\033[K");
        fprintf(stderr,
                "epoch %d/%d: loss %.4f | valid MAE complete %.4f, text-missing %.4f | %.1f s, %.0f samples/s\n",
                p->epoch + 1, p->epochs, r->loss.total, r->valid_full.mae, r->valid_miss.mae, r->seconds,
                r->samples_per_s);
        return;
    }
    if (!on_terminal) return;
    int eta = (int)(p->eta_s + 0.5);
    fprintf(stderr, "\r\033[Kepoch %d/%d  batch %lld/%lld  %.0f samples/s  loss %.4f  ETA %d:%02d", p->epoch + 1,
            p->epochs, (long long)p->batch, (long long)p->batches, p->samples_per_s, p->running_loss, eta / 60,
            eta % 60);
    fflush(stderr);
}

/* s quoted for a POSIX shell when it needs it. */
static void shell_word(sd_strbuf *b, const char *s) {
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=./:,@%") == strlen(s)) {
        sd_strbuf_puts(b, s);
        return;
    }
    sd_strbuf_puts(b, "'");
    for (; *s; s++) sd_strbuf_puts(b, *s == '\'' ? "'\\''" : (char[2]){*s, 0});
    sd_strbuf_puts(b, "'");
}

/* Prints the command that continues this run: the same command line, without --overwrite and
 * --init (the state holds the weights; --init and --resume exclude each other), with --resume
 * STATE (prog: the program as it was invoked). */
static void print_resume_command(const char *prog, int argc, char **argv, const char *state) {
    sd_strbuf b = {0};
    shell_word(&b, prog);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--overwrite") || !strncmp(argv[i], "--init=", 7)) continue;
        if ((!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--init")) && i + 1 < argc) {
            i++;
            continue;
        }
        sd_strbuf_puts(&b, " ");
        shell_word(&b, argv[i]);
    }
    sd_strbuf_puts(&b, " --resume ");
    shell_word(&b, state);
    if (!b.failed) fprintf(stderr, "sdumc train: to continue the run:\n  %s\n", b.data);
    sd_strbuf_free(&b);
}

/* The options that affect the result, "name=value" per line (every ARG_RESULT spec). NULL when a
 * train option says neither ARG_RESULT nor ARG_NO_RESULT (a programming error, told at once). */
static char *result_settings(const arg_spec *specs, int n) {
    sd_strbuf b = {0};
    for (int i = 0; i < n; i++) {
        if (!(specs[i].flags & (ARG_RESULT | ARG_NO_RESULT))) {
            fprintf(stderr, "sdumc train: internal error: option --%s does not say whether it affects the result "
                            "(ARG_RESULT or ARG_NO_RESULT in src/cli/train.c)\n", specs[i].name);
            sd_strbuf_free(&b);
            return NULL;
        }
        if (!(specs[i].flags & ARG_RESULT)) continue;
        char v[4096];
        args_value(&specs[i], v, sizeof v);
        sd_strbuf_printf(&b, "%s=%s\n", specs[i].name, v);
    }
    if (b.failed) fprintf(stderr, "sdumc train: out of memory\n");
    char *s = b.failed ? NULL : strdup(b.data ? b.data : "");
    sd_strbuf_free(&b);
    return s;
}


/* A run that started from --init, resumed: --init cannot be given again (the state holds the
 * weights), so what it decided is the run's: the init setting itself, the hidden size (the
 * --init model's unless --hidden was given) and the standardisation (unless --normalize was
 * given). Returns the run's --init path in buf, or NULL when the run did not start from one. */
static const char *resumed_init(const char *state, char *buf, size_t size, int *normalize) {
    int found = 0;
    sd_error e;
    if (sd_train_state_peek_setting(state, "init", buf, size, &found, &e) || !found || !*buf) return NULL;
    char v[32];
    if (!sd_train_state_peek_setting(state, "normalize", v, sizeof v, &found, &e) && found)
        *normalize = !strcmp(v, "standard") ? SD_NORMALIZE_STANDARD : SD_NORMALIZE_NONE;
    return buf;
}

/* The validation split: the folder's, or (--valid-fraction) one carved out of train with the
 * run's seed. Returns 0 to go on, 1 after printing why not. */
static int valid_split(sd_dataset *ds, float fraction, sd_train_options *o) {
    int64_t nv = sd_dataset_size(ds, SD_SPLIT_VALID);
    if (fraction <= 0.0f && nv > 0) return 0;
    if (fraction <= 0.0f) {
        fprintf(stderr,
                "sdumc train: %s: the valid split is empty (no row of labels.csv has split 'valid').\n"
                "Training selects its model on a validation split: mark some utterances 'valid' in labels.csv\n"
                "(whole videos or speakers, if the names tell them), or let sdumc carve a seeded one out of\n"
                "train with --valid-fraction 0.1.\n",
                sd_dataset_dir(ds));
        return 1;
    }
    sd_error err;
    int64_t n_train = sd_dataset_size(ds, SD_SPLIT_TRAIN), carved = 0;
    if (sd_dataset_carve_valid(ds, fraction, o->seed, &carved, &err)) {
        fprintf(stderr, "sdumc train: --valid-fraction: %s\n", err.msg);
        return 1;
    }
    o->valid_fraction = fraction;
    if (sd_dist_rank() == 0)
        fprintf(stderr,
            "sdumc train: validation split carved out of train: %lld of %lld utterances (--valid-fraction %g, "
            "seed %llu), names in %s.valid.txt\n",
            (long long)carved, (long long)n_train, (double)fraction, (unsigned long long)o->seed, o->out);
    return 0;
}

/* OUT.valid.txt: the carved validation split's names, one per line (what predict --names reads). */
static sd_status write_valid_names(const sd_dataset *ds, const char *out, sd_error *err) {
    char *path = malloc(strlen(out) + sizeof ".valid.txt");
    if (!path) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sprintf(path, "%s.valid.txt", out);
    sd_strbuf b = {0};
    for (int64_t i = 0; i < sd_dataset_size(ds, SD_SPLIT_VALID); i++)
        sd_strbuf_printf(&b, "%s\n", sd_dataset_name(ds, SD_SPLIT_VALID, i));
    sd_status st = b.failed ? sd_fail(err, SD_E_NOMEM, "out of memory") : sd_atomic_write_file(path, b.data, b.len, err);
    sd_strbuf_free(&b);
    free(path);
    return st;
}

/* Even the smallest batch leaves fewer than SD_AUTO_MIN_STEPS steps: more epochs would. */
static void more_epochs_hint(const sd_auto_schedule *a, int64_t n, int epochs) {
    int64_t per_epoch = (n + a->batch - 1) / a->batch;
    if (a->steps >= SD_AUTO_MIN_STEPS || per_epoch < 1) return;
    fprintf(stderr, "sdumc train: hint: with batch %d, %lld epochs (not %d) would reach %d optimiser steps\n", a->batch,
            (long long)((SD_AUTO_MIN_STEPS + per_epoch - 1) / per_epoch), epochs, SD_AUTO_MIN_STEPS);
}

/* --resume of a --preset auto run: its batch and lr (the rule's choice depends on --epochs, which a
 * resume may raise). 0 when the state does not say (sd_train then explains what is wrong with it). */
static int resumed_schedule(sd_train_options *o, int64_t n) {
    char b[64], l[64];
    int fb = 0, fl = 0;
    sd_error e;
    if (sd_train_state_peek_setting(o->resume, "batch-size", b, sizeof b, &fb, &e) || !fb ||
        sd_train_state_peek_setting(o->resume, "lr", l, sizeof l, &fl, &e) || !fl || atoi(b) < 1 || !(strtof(l, NULL) > 0))
        return 0;
    sd_auto_schedule a = sd_train_auto_schedule(n, o->epochs, o->batch_size, o->lr); /* (the paper's steps) */
    a.batch = atoi(b);
    a.lr = strtof(l, NULL);
    a.chosen = a.batch != o->batch_size || a.lr != o->lr;
    a.steps = (int64_t)o->epochs * ((n + a.batch - 1) / a.batch);
    o->batch_size = a.batch;
    o->lr = a.lr;
    o->schedule = a;
    return 1;
}

/* A small corpus: the paper's schedule gives it too few optimiser steps (sd_train_auto_schedule).
 * --preset auto takes the rule's batch and lr (unless --batch-size or --lr were given; on --resume
 * the run's); otherwise a hint suggests them. Every rank decides, `verbose` prints. */
static void small_corpus(const sd_dataset *ds, sd_train_options *o, int preset_auto, int explicit_schedule,
                         int verbose) {
    int64_t n = sd_dataset_size(ds, SD_SPLIT_TRAIN);
    if (preset_auto && !explicit_schedule && o->resume && resumed_schedule(o, n)) {
        if (verbose)
            fprintf(stderr, "sdumc train: --preset auto: the run's batch %d and lr %g (%lld optimiser steps in all)\n",
                    o->batch_size, (double)o->lr, (long long)o->schedule.steps);
        return;
    }
    sd_auto_schedule a = sd_train_auto_schedule(n, o->epochs, o->batch_size, o->lr);
    if (!a.chosen) return;
    if (preset_auto && !explicit_schedule) {
        if (verbose)
            fprintf(stderr,
                    "sdumc train: --preset auto: %lld train utterances; the paper's batch %d and lr %g would take %lld "
                    "optimiser steps in all, so batch %d and lr %g (%lld steps)\n",
                    (long long)n, o->batch_size, (double)o->lr, (long long)a.paper_steps, a.batch, (double)a.lr,
                    (long long)a.steps);
        o->batch_size = a.batch;
        o->lr = a.lr;
        o->schedule = a;
        if (verbose) more_epochs_hint(&a, n, o->epochs);
        return;
    }
    if (!verbose) return;
    fprintf(stderr,
            "sdumc train: hint: %lld optimiser steps in all, %lld per epoch (%lld train utterances, batch %d, %d "
            "epochs). The paper's batch 128 and lr 1e-4 were set for CMU-MOSEI's 16k utterances; a small corpus "
            "learns little with so few steps. --batch-size %d --lr %g gives %lld steps; --preset auto chooses that "
            "(make demo: batch 32, lr 1e-3 on 1,200 utterances).\n",
            (long long)a.paper_steps, (long long)((n + o->batch_size - 1) / o->batch_size), (long long)n,
            o->batch_size, o->epochs, a.batch, (double)a.lr, (long long)a.steps);
    more_epochs_hint(&a, n, o->epochs);
}

/* Training-split statistics (for the standardisation, computed once here; a resume checks them
 * against the run's) and the scale check: a warning when the scales are far apart and the inputs
 * will not be standardised. Every rank computes, `verbose` prints. */
static sd_status input_scales(const sd_dataset *ds, sd_train_options *o, sd_feature_stats *stats, int verbose,
                              sd_error *err) {
    sd_status st = sd_feature_stats_compute(ds, SD_SPLIT_TRAIN, o->max_frames, o->cap_mode, o->cache, stats, err);
    if (st || !verbose) {
        if (!st) o->stats = stats;
        return st;
    }
    o->stats = stats;
    const int standard = o->normalize == SD_NORMALIZE_STANDARD;
    cli_print_scales("train", stats, standard, 0);
    if (standard)
        fprintf(stderr, "sdumc train: inputs standardised per dimension (%s), folded into the saved model\n",
                o->resume ? "the run's statistics" : o->init && sd_norm_file_has_stats(o->init) ? "the statistics --init carries"
                                                                                               : "training-split statistics");
    return SD_OK;
}

int cli_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds")) continue;
        if (sd_dist_size() == 1) return cli_train_seeds(argc, argv);
        /* Its seeds run as child processes of one process; one seed's run can use the ranks. */
        if (sd_dist_rank() == 0)
            fprintf(stderr, "sdumc train: --seeds runs as one process (--jobs for seeds side by side), not as %d "
                            "MPI ranks; run one seed per mpirun instead\n", sd_dist_size());
        return 2;
    }
    sd_train_options o = sd_train_default_options();
    cli_data_opts d = {0};
    const char *preset = "paper";
    /* The preset sets defaults; the other options override them, whatever their order. */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
    sd_error err;
    if (sd_train_apply_preset(&o, preset, &err)) {
        fprintf(stderr, "sdumc train: --preset: %s\n", err.msg);
        return 2;
    }
    const char *cache_path = NULL;
    int cache_f16 = 0;
    int prefetch_mib = (int)(o.prefetch_bytes >> 20), train_subset = -1;
    int threads = 0, select = (int)o.select, cap = (int)o.cap_mode, max_frames = 0, preset_idx = 0, normalize_idx = 0;
    float valid_fraction = 0.0f;
    /* Each option says whether it affects the result (ARG_RESULT: compared on --resume) or not. */
    arg_spec specs[] = {
        CLI_DATA_SPECS(d),
        {"out", ARG_STRING, &o.out, 0, 0, NULL, "model file to write (OUT.state, OUT.log.jsonl, OUT.report.html beside it)", ARG_NO_RESULT, 0},
        {"preset", ARG_CHOICE, &preset_idx, 0, 0, "paper|release|auto",
         "docs/MODEL.md preset (default paper); auto: paper, with batch and lr for a small corpus", ARG_RESULT, 0},
        {"normalize", ARG_CHOICE, &normalize_idx, 0, 0, "standard|none",
         "standardise inputs per dimension with training-split statistics, folded into the saved model "
         "(standard; default none with a foreign --init or --mask off)", ARG_RESULT, 0},
        {"init", ARG_STRING, &o.init, 0, 0, NULL, "start from these weights (fine-tuning)", ARG_RESULT, 0},
        {"resume", ARG_STRING, &o.resume, 0, 0, NULL, "continue an interrupted (or extend a finished) run from its OUT.state", ARG_NO_RESULT, 0},
        {"overwrite", ARG_FLAG, &o.overwrite, 0, 0, NULL, "start afresh even if OUT.state holds an unfinished run", ARG_NO_RESULT, 0},
        {"epochs", ARG_INT, &o.epochs, 1, 100000, NULL, "epochs (25; with --resume, more than before extends the run)", ARG_NO_RESULT, 0},
        {"batch-size", ARG_INT, &o.batch_size, 1, 65536, NULL, "batch size (paper 128, release 96)", ARG_RESULT, 0},
        {"lr", ARG_FLOAT, &o.lr, 1e-12, 10, NULL, "learning rate (1e-4)", ARG_RESULT, 0},
        {"weight-decay", ARG_FLOAT, &o.weight_decay, 0, 10, NULL, "L2 weight decay added to the gradient (1e-5)", ARG_RESULT, 0},
        {"dropout", ARG_FLOAT, &o.model.p_mlp, 0, 0.99, NULL, "MLP dropout (0.3)", ARG_RESULT, 0},
        {"attn-dropout", ARG_FLOAT, &o.model.p_att, 0, 0.99, NULL, "pooling and cross-attention dropout (0.5)", ARG_RESULT, 0},
        {"mia", ARG_ONOFF, &o.model.mia, 0, 0, NULL, "Modality Imagination Autoencoder (paper on, release off)", ARG_RESULT, 0},
        {"mask", ARG_ONOFF, &o.model.mask, 0, 0, NULL, "mask padded frames (on); off = the released code", ARG_RESULT, 0},
        {"hidden", ARG_INT, &o.model.hidden, 4, 4096, NULL, "general dim H (256, or the --init model's; a multiple of 4)", ARG_RESULT, 0},
        {"shuffle", ARG_ONOFF, &o.shuffle, 0, 0, NULL, "shuffle the training data each epoch (on)", ARG_RESULT, 0},
        {"seed", ARG_U64, &o.seed, 0, 0, NULL, "seed of initialisation, dropout and shuffling (1)", ARG_RESULT, 0},
        {"threads", ARG_INT, &threads, 0, 1024, NULL, "threads (0 = all cores; results do not depend on it)", ARG_NO_RESULT, 0},
        {"seeds", ARG_STRING, NULL, 0, 0, NULL,
         "S1,S2,...: one run per seed (OUT.seedS.safetensors) and a summary (OUT.seeds.csv/.txt); --jobs N runs N at once",
         ARG_NO_RESULT, 0},
        {"w-full", ARG_FLOAT, &o.w.full, 0, 1e6, NULL, "weight of the complete-flow MSE", ARG_RESULT, 0},
        {"w-miss", ARG_FLOAT, &o.w.miss, 0, 1e6, NULL, "weight of the text-missing MSE", ARG_RESULT, 0},
        {"w-tf", ARG_FLOAT, &o.w.tf, 0, 1e6, NULL, "weight of the text-query distillation", ARG_RESULT, 0},
        {"w-tq", ARG_FLOAT, &o.w.tq, 0, 1e6, NULL, "weight of the text cross-attention distillation", ARG_RESULT, 0},
        {"w-f", ARG_FLOAT, &o.w.f, 0, 1e6, NULL, "weight of the fused-representation alignment", ARG_RESULT, 0},
        {"w-rnc", ARG_FLOAT, &o.w.rnc, 0, 1e6, NULL, "weight of Rank-N-Contrast", ARG_RESULT, 0},
        {"select", ARG_CHOICE, &select, 0, 0, "mean|missing|full|last", "model selection on the validation split (mean)", ARG_RESULT, 0},
        {"max-frames", ARG_INT, &max_frames, 0, 1 << 24, NULL, "cap frames per modality (0 = none)", ARG_RESULT, 0},
        {"cap", ARG_CHOICE, &cap, 0, 0, "subsample|truncate", "how --max-frames caps (subsample)", ARG_RESULT, 0},
        {"train-subset", ARG_INT, &train_subset, 0, 1 << 30, NULL,
         "training utterances measured after each epoch beside validation (default: as many as the validation "
         "split, at least 256; 0: none, the cheapest epochs)", ARG_NO_RESULT, 0},
        {"prefetch", ARG_INT, &o.prefetch, 0, 64, NULL, "batches read ahead in the background (default: as many as --prefetch-mib holds)", ARG_NO_RESULT, 0},
        {"prefetch-mib", ARG_INT, &prefetch_mib, 1, 1 << 20, NULL, "memory for batches read ahead, MiB (128; at least one batch, at most 8)", ARG_NO_RESULT, 0},
        {"cache", ARG_STRING, &cache_path, 0, 0, NULL,
         "packed feature cache file (built on first use, rebuilt when a source changes)", ARG_NO_RESULT, 0},
        {"cache-dtype", ARG_CHOICE, &cache_f16, 0, 0, "f32|f16", "cache precision (f32)", ARG_RESULT, 0},
        /* (It affects the result, but its default depends on the ranks and, on resume, on the run:
         * the library stores the count in effect and compares it, train.c start_state.) */
        {"grad-chunks", ARG_INT, &o.grad_chunks, 1, 65536, NULL,
         "cut every batch into K gradient chunks summed exactly: the same model on any number of MPI ranks up "
         "to K (default: the number of ranks; docs/SCALE_OUT.md)", ARG_NO_RESULT, 0},
        {"valid-fraction", ARG_FLOAT, &valid_fraction, 1e-6, 0.999999, NULL,
         "carve a seeded validation split of this fraction out of train (when the folder has none)", ARG_RESULT, 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("train", "sdumc train --data DIR --out MODEL.safetensors [options]",
                   "Trains SDUMC (complete flow teaching the text-missing flow) and keeps the epoch with the\n"
                   "best validation criterion. The test split is never used.",
                   specs, n, argc, argv, &code))
        return code;
    o.select = (sd_select)select;
    o.prefetch_bytes = (size_t)prefetch_mib << 20;
    o.train_subset = train_subset;
    o.cap_mode = (sd_cap_mode)cap;
    for (int m = 0; m < SD_MOD_COUNT; m++) o.max_frames[m] = max_frames;
    if (!o.out) {
        fprintf(stderr, "sdumc train: --out MODEL.safetensors is required\n");
        return 2;
    }
    if (!cli_parent_dir_exists(o.out)) {
        fprintf(stderr, "sdumc train: --out %s: its folder does not exist\n", o.out);
        return 2;
    }
    if (o.model.hidden % 4) {
        fprintf(stderr, "sdumc train: --hidden %d is not a multiple of 4\n", o.model.hidden);
        return 2;
    }
    if (o.init && o.resume) {
        fprintf(stderr, "sdumc train: --init and --resume exclude each other\n");
        return 2;
    }
    if (o.resume && o.overwrite) {
        fprintf(stderr, "sdumc train: --resume and --overwrite exclude each other\n");
        return 2;
    }
    /* The settings as they act: the default folder names, the cache precision only with a cache, the
     * --init model's hidden size unless --hidden is given. */
    for (int m = 0; m < SD_MOD_COUNT; m++)
        if (!d.folder[m]) d.folder[m] = sd_modality_default_folder(m);
    if (!cache_path) cache_f16 = 0;
    static char run_init_buf[4096];
    int run_normalize = SD_NORMALIZE_AUTO;
    const char *run_init = o.resume ? resumed_init(o.resume, run_init_buf, sizeof run_init_buf, &run_normalize) : NULL;
    if ((o.init || run_init) && !args_find(specs, n, "hidden")->seen) o.model.hidden = 0;
    /* The standardisation as it acts (README, "Input standardisation"). */
    if (args_find(specs, n, "normalize")->seen)
        o.normalize = normalize_idx == 0 ? SD_NORMALIZE_STANDARD : SD_NORMALIZE_NONE;
    else if (run_init && run_normalize != SD_NORMALIZE_AUTO)
        o.normalize = (sd_normalize)run_normalize;
    else
        o.normalize = sd_train_resolve_normalize(&o, o.init && sd_norm_file_has_stats(o.init));
    normalize_idx = o.normalize == SD_NORMALIZE_STANDARD ? 0 : 1;
    const int explicit_schedule = args_find(specs, n, "batch-size")->seen || args_find(specs, n, "lr")->seen;
    char *settings = NULL; /* after the small-corpus choice, which sets batch and lr */
    if (valid_fraction > 0.0f && sd_dist_rank() == 0) { /* OUT.valid.txt is written at the end */
        char *vt = malloc(strlen(o.out) + sizeof ".valid.txt");
        if (vt) sprintf(vt, "%s.valid.txt", o.out);
        sd_status vs = vt ? sd_atomic_check_path(vt, &err) : sd_fail(&err, SD_E_NOMEM, "out of memory");
        free(vt);
        if (vs) {
            fprintf(stderr, "sdumc train: %s\n", err.msg);
            free(settings);
            return 2;
        }
    }
    cli_catch_signals();
    sd_dataset *ds = cli_open_dataset("train", &d, 1, SD_SPLIT_BIT(SD_SPLIT_TRAIN));
    if (!ds) {
        free(settings);
        return cli_exit_code(sd_interrupted() ? SD_E_INTERRUPTED : SD_E_FORMAT);
    }
    if (valid_split(ds, valid_fraction, &o)) {
        sd_dataset_close(ds);
        free(settings);
        return 1;
    }
    small_corpus(ds, &o, !strcmp(preset, "auto"), explicit_schedule, sd_dist_rank() == 0);
    if (run_init) o.init = run_init; /* in the settings only: the library resumes from the state */
    settings = result_settings(specs, n);
    if (run_init) o.init = NULL;
    if (!settings) {
        sd_dataset_close(ds);
        return 70;
    }
    o.settings = settings;
    sd_threads_set(threads);
    /* Under MPI rank 0 prints and writes; every error from here on is shared by all ranks
     * (sd_dist_agree), so rank 0 prints that too. */
    const int root = sd_dist_rank() == 0;
    sd_cache *cache = NULL;
    if (cache_path) {
        /* The cache may not be an input or another output; rank 0 builds it (once, on a shared
         * folder); the others then open it. */
        const char *suffix[3] = {SD_TRAIN_STATE_SUFFIX, SD_TRAIN_LOG_SUFFIX, SD_TRAIN_REPORT_SUFFIX};
        char *derived[3] = {NULL, NULL, NULL};
        for (int k = 0; k < 3; k++)
            if ((derived[k] = malloc(strlen(o.out) + strlen(suffix[k]) + 1))) sprintf(derived[k], "%s%s", o.out, suffix[k]);
        const sd_input in[6] = {{o.init, "--init"},        {o.resume, "--resume"},
                                {o.out, "--out"},          {derived[0], "the training state"},
                                {derived[1], "the training log"}, {derived[2], "the training report"}};
        int built = 0;
        sd_status cs = sd_dataset_check_output(ds, cache_path, "--cache", in, 6, &err);
        for (int k = 0; k < 3; k++) free(derived[k]);
        if (!cs && root) cs = sd_cache_open(ds, cache_path, cache_f16 ? SD_DTYPE_F16 : SD_DTYPE_F32, &cache, &built, &err);
        cs = sd_dist_agree(cs, &err);
        if (!cs && !root) cs = sd_cache_open(ds, cache_path, cache_f16 ? SD_DTYPE_F16 : SD_DTYPE_F32, &cache, &built, &err);
        if (cs) {
            if (root) fprintf(stderr, "sdumc train: %s\n", err.msg);
            sd_dataset_close(ds);
            free(settings);
            return cli_exit_code(cs);
        }
        if (root) fprintf(stderr, "sdumc train: feature cache %s (%s)\n", cache_path, built ? "built" : "up to date");
        o.cache = cache;
    }
    sd_feature_stats stats;
    memset(&stats, 0, sizeof stats);
    sd_status ss = sd_dist_agree(input_scales(ds, &o, &stats, root, &err), &err);
    if (ss) {
        if (root) fprintf(stderr, "sdumc train: %s\n", err.msg);
        sd_cache_close(cache);
        sd_dataset_close(ds);
        free(settings);
        return cli_exit_code(ss);
    }
    on_terminal = isatty(STDERR_FILENO);
    o.on_progress = root ? progress : NULL;
    sd_train_result res;
    if (root) {
        fprintf(stderr, "sdumc train: %s preset, %d epochs, batch %d, %lld train / %lld valid utterances, %d threads",
                o.model.preset, o.epochs, o.batch_size, (long long)sd_dataset_size(ds, SD_SPLIT_TRAIN),
                (long long)sd_dataset_size(ds, SD_SPLIT_VALID), sd_threads_get());
        if (sd_dist_size() > 1) fprintf(stderr, " per rank, %d MPI ranks", sd_dist_size());
        fprintf(stderr, "\n");
    }
    sd_status st = sd_train(ds, &o, &res, &err);
    sd_feature_stats_free(&stats);
    if (!st && o.valid_fraction > 0.0f && root) st = write_valid_names(ds, o.out, &err);
    sd_cache_close(cache);
    sd_dataset_close(ds);
    free(settings);
    if (st) {
        if (!root) return cli_exit_code(st);
        if (on_terminal) fprintf(stderr, "\n");
        fprintf(stderr, "sdumc train: %s\n", err.msg);
        if (res.resumable) print_resume_command(cli_program, argc, argv, res.state_path);
        return cli_exit_code(st);
    }
    if (!root) return 0;
    if (sd_dist_size() > 1 && res.steps_run > 0)
        fprintf(stderr, "sdumc train: MPI: rank 0 passed %.2f MB to collectives, %.1f KB per optimiser step (%lld steps, "
                        "validation included)\n", (double)sd_dist_bytes_sent() / 1e6,
                (double)sd_dist_bytes_sent() / 1e3 / (double)res.steps_run, (long long)res.steps_run);
    printf("selected epoch %d of %d (%s criterion %.4f on the validation split)\n", res.best_epoch + 1,
           res.epochs_run, sd_select_name(o.select), o.select == SD_SELECT_LAST ? 0.0 : res.best_criterion);
    if (res.best_epoch == res.epochs_run - 1 && res.epochs_run > 1 && o.select != SD_SELECT_LAST)
        fprintf(stderr, "sdumc train: warning: the selected epoch is the last one: the validation criterion was still "
                        "improving, so more epochs (or a larger learning rate) may give a better model\n");
    printf("model:  %s\nstate:  %s\nlog:    %s\nreport: %s\n", o.out, res.state_path, res.log_path, res.report_path);
    return 0;
}
