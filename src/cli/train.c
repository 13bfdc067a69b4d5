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

/* The command line as train acts on it. specs point into this struct, so it must not move:
 * result_settings reads their values again once the small-corpus choice has set batch and lr. */
#define TRAIN_SPECS_MAX 64
typedef struct {
    sd_train_options o;
    cli_data_opts d;
    const char *preset, *cache_path;
    int cache_f16, prefetch_mib, train_subset, threads, select, cap, max_frames, preset_idx, normalize_idx;
    float valid_fraction;
    const char *run_init; /* the resumed run's --init (resumed_init), or NULL */
    char run_init_buf[4096];
    int explicit_schedule; /* --batch-size or --lr given */
    arg_spec specs[TRAIN_SPECS_MAX];
    int n;
} train_cmd;

/* What an open run holds (close_run releases it; each part may be missing). */
typedef struct {
    sd_dataset *ds;
    char *settings; /* the result settings, "name=value" lines (o.settings) */
    sd_cache *cache;
    sd_feature_stats stats;
} train_run;

static void close_run(train_run *r) {
    sd_feature_stats_free(&r->stats);
    sd_cache_close(r->cache);
    sd_dataset_close(r->ds);
    free(r->settings);
    memset(r, 0, sizeof *r);
}

/* --seeds: one process runs the seeds (cli_train_seeds). Returns -1 when it was not given, else the
 * exit code. */
static int seeds_run(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds")) continue;
        if (sd_dist_size() == 1) return cli_train_seeds(argc, argv);
        /* Its seeds run as child processes of one process; one seed's run can use the ranks. */
        if (sd_dist_rank() == 0)
            fprintf(stderr, "sdumc train: --seeds runs as one process (--jobs for seeds side by side), not as %d "
                            "MPI ranks; run one seed per mpirun instead\n", sd_dist_size());
        return 2;
    }
    return -1;
}

/* Parses the command line into c (zeroed): the preset first, which sets defaults that the other
 * options override, whatever their order. Returns -1 to go on, else the exit code. */
static int parse_options(train_cmd *c, int argc, char **argv) {
    c->o = sd_train_default_options();
    c->preset = "paper";
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) c->preset = argv[i + 1];
    sd_error err;
    if (sd_train_apply_preset(&c->o, c->preset, &err)) {
        fprintf(stderr, "sdumc train: --preset: %s\n", err.msg);
        return 2;
    }
    c->prefetch_mib = (int)(c->o.prefetch_bytes >> 20);
    c->train_subset = 0;
    c->select = (int)c->o.select;
    c->cap = (int)c->o.cap_mode;
    /* Each option says whether it affects the result (ARG_RESULT: compared on --resume) or not. */
    arg_spec specs[] = {
        CLI_DATA_SPECS(c->d),
        {"out", ARG_STRING, &c->o.out, 0, 0, NULL, "model file to write (OUT.state, OUT.log.jsonl, OUT.report.html beside it)", ARG_NO_RESULT, 0},
        {"preset", ARG_CHOICE, &c->preset_idx, 0, 0, "paper|release|auto",
         "docs/MODEL.md preset (default paper); auto: paper, with batch and lr for a small corpus", ARG_RESULT, 0},
        {"normalize", ARG_CHOICE, &c->normalize_idx, 0, 0, "standard|none",
         "standardise inputs per dimension with training-split statistics, folded into the saved model "
         "(standard; default none with a foreign --init or --mask off)", ARG_RESULT, 0},
        {"init", ARG_STRING, &c->o.init, 0, 0, NULL, "start from these weights (fine-tuning)", ARG_RESULT, 0},
        {"resume", ARG_STRING, &c->o.resume, 0, 0, NULL, "continue an interrupted (or extend a finished) run from its OUT.state", ARG_NO_RESULT, 0},
        {"overwrite", ARG_FLAG, &c->o.overwrite, 0, 0, NULL, "start afresh even if OUT.state holds an unfinished run", ARG_NO_RESULT, 0},
        {"epochs", ARG_INT, &c->o.epochs, 1, 100000, NULL, "epochs (25; with --resume, more than before extends the run)", ARG_NO_RESULT, 0},
        {"batch-size", ARG_INT, &c->o.batch_size, 1, 65536, NULL, "batch size (paper 128, release 96)", ARG_RESULT, 0},
        {"lr", ARG_FLOAT, &c->o.lr, 1e-12, 10, NULL, "learning rate (1e-4)", ARG_RESULT, 0},
        {"weight-decay", ARG_FLOAT, &c->o.weight_decay, 0, 10, NULL, "L2 weight decay added to the gradient (1e-5)", ARG_RESULT, 0},
        {"dropout", ARG_FLOAT, &c->o.model.p_mlp, 0, 0.99, NULL, "MLP dropout (0.3)", ARG_RESULT, 0},
        {"attn-dropout", ARG_FLOAT, &c->o.model.p_att, 0, 0.99, NULL, "pooling and cross-attention dropout (0.5)", ARG_RESULT, 0},
        {"mia", ARG_ONOFF, &c->o.model.mia, 0, 0, NULL, "Modality Imagination Autoencoder (paper on, release off)", ARG_RESULT, 0},
        {"mask", ARG_ONOFF, &c->o.model.mask, 0, 0, NULL, "mask padded frames (on); off = the released code", ARG_RESULT, 0},
        {"hidden", ARG_INT, &c->o.model.hidden, 4, 4096, NULL, "general dim H (256, or the --init model's; a multiple of 4)", ARG_RESULT, 0},
        {"shuffle", ARG_ONOFF, &c->o.shuffle, 0, 0, NULL, "shuffle the training data each epoch (on)", ARG_RESULT, 0},
        {"seed", ARG_U64, &c->o.seed, 0, 0, NULL, "seed of initialisation, dropout and shuffling (1)", ARG_RESULT, 0},
        {"threads", ARG_INT, &c->threads, 0, 1024, NULL, "threads (0 = all cores; results do not depend on it)", ARG_NO_RESULT, 0},
        {"seeds", ARG_STRING, NULL, 0, 0, NULL,
         "S1,S2,...: one run per seed (OUT.seedS.safetensors) and a summary (OUT.seeds.csv/.txt); --jobs N runs N at once",
         ARG_NO_RESULT, 0},
        {"w-full", ARG_FLOAT, &c->o.w.full, 0, 1e6, NULL, "weight of the complete-flow MSE", ARG_RESULT, 0},
        {"w-miss", ARG_FLOAT, &c->o.w.miss, 0, 1e6, NULL, "weight of the text-missing MSE", ARG_RESULT, 0},
        {"w-tf", ARG_FLOAT, &c->o.w.tf, 0, 1e6, NULL, "weight of the text-query distillation", ARG_RESULT, 0},
        {"w-tq", ARG_FLOAT, &c->o.w.tq, 0, 1e6, NULL, "weight of the text cross-attention distillation", ARG_RESULT, 0},
        {"w-f", ARG_FLOAT, &c->o.w.f, 0, 1e6, NULL, "weight of the fused-representation alignment", ARG_RESULT, 0},
        {"w-rnc", ARG_FLOAT, &c->o.w.rnc, 0, 1e6, NULL, "weight of Rank-N-Contrast", ARG_RESULT, 0},
        {"select", ARG_CHOICE, &c->select, 0, 0, "mean|missing|full|last", "model selection on the validation split (mean)", ARG_RESULT, 0},
        {"max-frames", ARG_INT, &c->max_frames, 0, 1 << 24, NULL, "cap frames per modality (0 = none)", ARG_RESULT, 0},
        {"cap", ARG_CHOICE, &c->cap, 0, 0, "subsample|truncate", "how --max-frames caps (subsample)", ARG_RESULT, 0},
        {"train-subset", ARG_INT, &c->train_subset, 0, 1 << 30, NULL,
         "training utterances also measured in evaluation mode after each epoch, beside validation (default 0: "
         "the training metrics are the training pass's own, as MMSA logs them, at no cost)", ARG_NO_RESULT, 0},
        {"prefetch", ARG_INT, &c->o.prefetch, 0, 64, NULL, "batches read ahead in the background (default: as many as --prefetch-mib holds)", ARG_NO_RESULT, 0},
        {"prefetch-mib", ARG_INT, &c->prefetch_mib, 1, 1 << 20, NULL, "memory for batches read ahead, MiB (128; at least one batch, at most 8)", ARG_NO_RESULT, 0},
        {"cache", ARG_STRING, &c->cache_path, 0, 0, NULL,
         "packed feature cache file (built on first use, rebuilt when a source changes)", ARG_NO_RESULT, 0},
        {"cache-dtype", ARG_CHOICE, &c->cache_f16, 0, 0, "f32|f16", "cache precision (f32)", ARG_RESULT, 0},
        /* (It affects the result, but its default depends on the ranks and, on resume, on the run:
         * the library stores the count in effect and compares it, train.c start_state.) */
        {"grad-chunks", ARG_INT, &c->o.grad_chunks, 1, 65536, NULL,
         "cut every batch into K gradient chunks summed exactly: the same model on any number of MPI ranks up "
         "to K (default: the number of ranks; docs/SCALE_OUT.md)", ARG_NO_RESULT, 0},
        {"valid-fraction", ARG_FLOAT, &c->valid_fraction, 1e-6, 0.999999, NULL,
         "carve a seeded validation split of this fraction out of train (when the folder has none)", ARG_RESULT, 0},
    };
    _Static_assert(sizeof specs / sizeof specs[0] <= TRAIN_SPECS_MAX, "TRAIN_SPECS_MAX too small");
    c->n = (int)(sizeof specs / sizeof specs[0]);
    memcpy(c->specs, specs, sizeof specs);
    int code;
    if (!cli_parse("train", "sdumc train --data DIR --out MODEL.safetensors [options]",
                   "Trains SDUMC (complete flow teaching the text-missing flow) and keeps the epoch with the\n"
                   "best validation criterion. The test split is never used.",
                   c->specs, c->n, argc, argv, &code))
        return code;
    c->o.select = (sd_select)c->select;
    c->o.prefetch_bytes = (size_t)c->prefetch_mib << 20;
    c->o.train_subset = c->train_subset;
    c->o.cap_mode = (sd_cap_mode)c->cap;
    for (int m = 0; m < SD_MOD_COUNT; m++) c->o.max_frames[m] = c->max_frames;
    return -1;
}

/* Options that cannot go together or cannot work. Returns -1 to go on, else the exit code. */
static int check_options(const train_cmd *c) {
    const sd_train_options *o = &c->o;
    if (!o->out) {
        fprintf(stderr, "sdumc train: --out MODEL.safetensors is required\n");
        return 2;
    }
    if (!cli_parent_dir_exists(o->out)) {
        fprintf(stderr, "sdumc train: --out %s: its folder does not exist\n", o->out);
        return 2;
    }
    if (o->model.hidden % 4) {
        fprintf(stderr, "sdumc train: --hidden %d is not a multiple of 4\n", o->model.hidden);
        return 2;
    }
    if (o->init && o->resume) {
        fprintf(stderr, "sdumc train: --init and --resume exclude each other\n");
        return 2;
    }
    if (o->resume && o->overwrite) {
        fprintf(stderr, "sdumc train: --resume and --overwrite exclude each other\n");
        return 2;
    }
    return -1;
}

/* The settings as they act: the default folder names, the cache precision only with a cache, the
 * --init model's hidden size unless --hidden is given, the standardisation (README, "Input
 * standardisation"); a resumed run's --init and standardisation where the command line is silent. */
static void settle_options(train_cmd *c) {
    sd_train_options *o = &c->o;
    for (int m = 0; m < SD_MOD_COUNT; m++)
        if (!c->d.folder[m]) c->d.folder[m] = sd_modality_default_folder(m);
    if (!c->cache_path) c->cache_f16 = 0;
    int run_normalize = SD_NORMALIZE_AUTO;
    c->run_init = o->resume ? resumed_init(o->resume, c->run_init_buf, sizeof c->run_init_buf, &run_normalize) : NULL;
    if ((o->init || c->run_init) && !args_find(c->specs, c->n, "hidden")->seen) o->model.hidden = 0;
    if (args_find(c->specs, c->n, "normalize")->seen)
        o->normalize = c->normalize_idx == 0 ? SD_NORMALIZE_STANDARD : SD_NORMALIZE_NONE;
    else if (c->run_init && run_normalize != SD_NORMALIZE_AUTO)
        o->normalize = (sd_normalize)run_normalize;
    else
        o->normalize = sd_train_resolve_normalize(o, o->init && sd_norm_file_has_stats(o->init));
    c->normalize_idx = o->normalize == SD_NORMALIZE_STANDARD ? 0 : 1;
    c->explicit_schedule = args_find(c->specs, c->n, "batch-size")->seen || args_find(c->specs, c->n, "lr")->seen;
}

/* OUT.valid.txt (written at the end when --valid-fraction carves a split) must be writable before
 * the run starts. Returns -1 to go on, else the exit code. */
static int check_valid_names_path(const train_cmd *c) {
    if (!(c->valid_fraction > 0.0f) || sd_dist_rank() != 0) return -1;
    sd_error err;
    char *vt = malloc(strlen(c->o.out) + sizeof ".valid.txt");
    if (vt) sprintf(vt, "%s.valid.txt", c->o.out);
    sd_status vs = vt ? sd_atomic_check_path(vt, &err) : sd_fail(&err, SD_E_NOMEM, "out of memory");
    free(vt);
    if (!vs) return -1;
    fprintf(stderr, "sdumc train: %s\n", err.msg);
    return 2;
}

/* --cache: the packed feature cache, which may not be an input or another output; rank 0 builds
 * it (once, on a shared folder), the others then open it. Returns -1 to go on, else the exit code. */
static int open_cache(train_cmd *c, train_run *r) {
    sd_train_options *o = &c->o;
    const int root = sd_dist_rank() == 0;
    const char *suffix[3] = {SD_TRAIN_STATE_SUFFIX, SD_TRAIN_LOG_SUFFIX, SD_TRAIN_REPORT_SUFFIX};
    char *derived[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++)
        if ((derived[k] = malloc(strlen(o->out) + strlen(suffix[k]) + 1))) sprintf(derived[k], "%s%s", o->out, suffix[k]);
    const sd_input in[6] = {{o->init, "--init"},        {o->resume, "--resume"},
                            {o->out, "--out"},          {derived[0], "the training state"},
                            {derived[1], "the training log"}, {derived[2], "the training report"}};
    int built = 0;
    sd_error err;
    const sd_dtype dtype = c->cache_f16 ? SD_DTYPE_F16 : SD_DTYPE_F32;
    sd_status cs = sd_dataset_check_output(r->ds, c->cache_path, "--cache", in, 6, &err);
    for (int k = 0; k < 3; k++) free(derived[k]);
    if (!cs && root) cs = sd_cache_open(r->ds, c->cache_path, dtype, &r->cache, &built, &err);
    cs = sd_dist_agree(cs, &err);
    if (!cs && !root) cs = sd_cache_open(r->ds, c->cache_path, dtype, &r->cache, &built, &err);
    if (cs) {
        if (root) fprintf(stderr, "sdumc train: %s\n", err.msg);
        return cli_exit_code(cs);
    }
    if (root) fprintf(stderr, "sdumc train: feature cache %s (%s)\n", c->cache_path, built ? "built" : "up to date");
    o->cache = r->cache;
    return -1;
}

/* Opens the run: the dataset and its validation split, the schedule for its size, the result
 * settings, the threads, the cache, the input statistics. Under MPI rank 0 prints; every error
 * from the cache on is shared by all ranks (sd_dist_agree), so rank 0 prints that too. Returns -1
 * to go on, else the exit code (r closed). */
static int open_run(train_cmd *c, train_run *r) {
    sd_train_options *o = &c->o;
    const int root = sd_dist_rank() == 0;
    cli_catch_signals();
    r->ds = cli_open_dataset("train", &c->d, 1, SD_SPLIT_BIT(SD_SPLIT_TRAIN));
    if (!r->ds) return cli_exit_code(sd_interrupted() ? SD_E_INTERRUPTED : SD_E_FORMAT);
    if (valid_split(r->ds, c->valid_fraction, o)) {
        close_run(r);
        return 1;
    }
    small_corpus(r->ds, o, !strcmp(c->preset, "auto"), c->explicit_schedule, root);
    if (c->run_init) o->init = c->run_init; /* in the settings only: the library resumes from the state */
    r->settings = result_settings(c->specs, c->n);
    if (c->run_init) o->init = NULL;
    if (!r->settings) {
        close_run(r);
        return 70;
    }
    o->settings = r->settings;
    sd_threads_set(c->threads);
    int code = c->cache_path ? open_cache(c, r) : -1;
    if (code >= 0) {
        close_run(r);
        return code;
    }
    sd_error err;
    sd_status ss = sd_dist_agree(input_scales(r->ds, o, &r->stats, root, &err), &err);
    if (ss) {
        if (root) fprintf(stderr, "sdumc train: %s\n", err.msg);
        close_run(r);
        return cli_exit_code(ss);
    }
    return -1;
}

/* The run itself: its shape printed (rank 0), the epochs with their progress, OUT.valid.txt. */
static sd_status run_training(train_cmd *c, train_run *r, sd_train_result *res, sd_error *err) {
    sd_train_options *o = &c->o;
    const int root = sd_dist_rank() == 0;
    on_terminal = isatty(STDERR_FILENO);
    o->on_progress = root ? progress : NULL;
    if (root) {
        fprintf(stderr, "sdumc train: %s preset, %d epochs, batch %d, %lld train / %lld valid utterances, %d threads",
                o->model.preset, o->epochs, o->batch_size, (long long)sd_dataset_size(r->ds, SD_SPLIT_TRAIN),
                (long long)sd_dataset_size(r->ds, SD_SPLIT_VALID), sd_threads_get());
        if (sd_dist_size() > 1) fprintf(stderr, " per rank, %d MPI ranks", sd_dist_size());
        fprintf(stderr, "\n");
    }
    sd_status st = sd_train(r->ds, o, res, err);
    sd_feature_stats_free(&r->stats);
    if (!st && o->valid_fraction > 0.0f && root) st = write_valid_names(r->ds, o->out, err);
    return st;
}

/* The end of the run (rank 0 prints): on failure the message and, when the state can continue
 * it, the command that does; on success the selected epoch and the files written. Returns the
 * exit code. */
static int finish_run(const sd_train_options *o, sd_status st, const sd_train_result *res, const sd_error *err,
                      int argc, char **argv) {
    const int root = sd_dist_rank() == 0;
    if (st) {
        if (!root) return cli_exit_code(st);
        if (on_terminal) fprintf(stderr, "\n");
        fprintf(stderr, "sdumc train: %s\n", err->msg);
        if (res->resumable) print_resume_command(cli_program, argc, argv, res->state_path);
        return cli_exit_code(st);
    }
    if (!root) return 0;
    if (sd_dist_size() > 1 && res->steps_run > 0)
        fprintf(stderr, "sdumc train: MPI: rank 0 passed %.2f MB to collectives, %.1f KB per optimiser step (%lld steps, "
                        "validation included)\n", (double)sd_dist_bytes_sent() / 1e6,
                (double)sd_dist_bytes_sent() / 1e3 / (double)res->steps_run, (long long)res->steps_run);
    printf("selected epoch %d of %d (%s criterion %.4f on the validation split)\n", res->best_epoch + 1,
           res->epochs_run, sd_select_name(o->select), o->select == SD_SELECT_LAST ? 0.0 : res->best_criterion);
    if (res->best_epoch == res->epochs_run - 1 && res->epochs_run > 1 && o->select != SD_SELECT_LAST)
        fprintf(stderr, "sdumc train: warning: the selected epoch is the last one: the validation criterion was still "
                        "improving, so more epochs (or a larger learning rate) may give a better model\n");
    printf("model:  %s\nstate:  %s\nlog:    %s\nreport: %s\n", o->out, res->state_path, res->log_path, res->report_path);
    return 0;
}

int cli_train(int argc, char **argv) {
    int code = seeds_run(argc, argv);
    if (code >= 0) return code;
    train_cmd c;
    memset(&c, 0, sizeof c);
    if ((code = parse_options(&c, argc, argv)) >= 0 || (code = check_options(&c)) >= 0) return code;
    settle_options(&c);
    if ((code = check_valid_names_path(&c)) >= 0) return code;
    train_run r;
    memset(&r, 0, sizeof r);
    if ((code = open_run(&c, &r)) >= 0) return code;
    sd_train_result res;
    sd_error err;
    sd_status st = run_training(&c, &r, &res, &err);
    close_run(&r);
    return finish_run(&c.o, st, &res, &err, argc, argv);
}
