/* sdumc train: the double-flow self-distillation training of MODEL.md section 4. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "core/threads.h"
#include "data/cache.h"
#include "io/atomic_file.h"
#include "io/json.h"
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
    fprintf(stderr,
            "sdumc train: validation split carved out of train: %lld of %lld utterances (--valid-fraction %g, "
            "seed %llu), names in %s.valid.txt\n",
            (long long)carved, (long long)n_train, (double)fraction, (unsigned long long)o->seed, o->out);
    return 0;
}

/* OUT.valid.txt: the carved validation split's names, one per line (what predict --names reads). */
static sd_status write_valid_names(const sd_dataset *ds, const char *out, sd_error *err) {
    char path[1100];
    snprintf(path, sizeof path, "%s.valid.txt", out);
    sd_json_buf b = {0};
    for (int64_t i = 0; i < sd_dataset_size(ds, SD_SPLIT_VALID); i++)
        sd_json_buf_printf(&b, "%s\n", sd_dataset_name(ds, SD_SPLIT_VALID, i));
    sd_status st = b.failed ? sd_fail(err, SD_E_NOMEM, "out of memory") : sd_atomic_write_file(path, b.data, b.len, err);
    sd_json_buf_free(&b);
    return st;
}

int cli_train(int argc, char **argv) {
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
    int prefetch_mib = (int)(o.prefetch_bytes >> 20);
    int threads = 0, select = (int)o.select, cap = (int)o.cap_mode, max_frames = 0, preset_idx = 0;
    float valid_fraction = 0.0f;
    arg_spec specs[] = {
        CLI_DATA_SPECS(d),
        {"out", ARG_STRING, &o.out, 0, 0, NULL, "model file to write (OUT.state, OUT.log.jsonl, OUT.report.html beside it)", 0},
        {"preset", ARG_CHOICE, &preset_idx, 0, 0, "paper|release", "docs/MODEL.md preset (default paper)", 0},
        {"init", ARG_STRING, &o.init, 0, 0, NULL, "start from these weights (fine-tuning)", 0},
        {"resume", ARG_STRING, &o.resume, 0, 0, NULL, "continue an interrupted run from its OUT.state", 0},
        {"epochs", ARG_INT, &o.epochs, 1, 100000, NULL, "epochs (25)", 0},
        {"batch-size", ARG_INT, &o.batch_size, 1, 65536, NULL, "batch size (paper 128, release 96)", 0},
        {"lr", ARG_FLOAT, &o.lr, 1e-12, 10, NULL, "learning rate (1e-4)", 0},
        {"weight-decay", ARG_FLOAT, &o.weight_decay, 0, 10, NULL, "L2 weight decay added to the gradient (1e-5)", 0},
        {"dropout", ARG_FLOAT, &o.model.p_mlp, 0, 0.99, NULL, "MLP dropout (0.3)", 0},
        {"attn-dropout", ARG_FLOAT, &o.model.p_att, 0, 0.99, NULL, "pooling and cross-attention dropout (0.5)", 0},
        {"mia", ARG_ONOFF, &o.model.mia, 0, 0, NULL, "Modality Imagination Autoencoder (paper on, release off)", 0},
        {"mask", ARG_ONOFF, &o.model.mask, 0, 0, NULL, "mask padded frames (on); off = the released code", 0},
        {"hidden", ARG_INT, &o.model.hidden, 4, 4096, NULL, "general dim H (256; must be a multiple of 4)", 0},
        {"shuffle", ARG_ONOFF, &o.shuffle, 0, 0, NULL, "shuffle the training data each epoch (on)", 0},
        {"seed", ARG_U64, &o.seed, 0, 0, NULL, "seed of initialisation, dropout and shuffling (1)", 0},
        {"threads", ARG_INT, &threads, 0, 1024, NULL, "threads (0 = all cores)", 0},
        {"w-full", ARG_FLOAT, &o.w.full, 0, 1e6, NULL, "weight of the complete-flow MSE", 0},
        {"w-miss", ARG_FLOAT, &o.w.miss, 0, 1e6, NULL, "weight of the text-missing MSE", 0},
        {"w-tf", ARG_FLOAT, &o.w.tf, 0, 1e6, NULL, "weight of the text-query distillation", 0},
        {"w-tq", ARG_FLOAT, &o.w.tq, 0, 1e6, NULL, "weight of the text cross-attention distillation", 0},
        {"w-f", ARG_FLOAT, &o.w.f, 0, 1e6, NULL, "weight of the fused-representation alignment", 0},
        {"w-rnc", ARG_FLOAT, &o.w.rnc, 0, 1e6, NULL, "weight of Rank-N-Contrast", 0},
        {"select", ARG_CHOICE, &select, 0, 0, "mean|missing|full|last", "model selection on the validation split (mean)", 0},
        {"max-frames", ARG_INT, &max_frames, 0, 1 << 24, NULL, "cap frames per modality (0 = none)", 0},
        {"cap", ARG_CHOICE, &cap, 0, 0, "subsample|truncate", "how --max-frames caps (subsample)", 0},
        {"prefetch", ARG_INT, &o.prefetch, 0, 64, NULL, "batches read ahead in the background (default: as many as --prefetch-mib holds)", 0},
        {"prefetch-mib", ARG_INT, &prefetch_mib, 1, 1 << 20, NULL, "memory for batches read ahead, MiB (128; at least one batch, at most 8)", 0},
        {"cache", ARG_STRING, &cache_path, 0, 0, NULL,
         "packed feature cache file (built on first use, rebuilt when a source changes)", 0},
        {"cache-dtype", ARG_CHOICE, &cache_f16, 0, 0, "f32|f16", "cache precision (f32)", 0},
        {"valid-fraction", ARG_FLOAT, &valid_fraction, 1e-6, 0.999999, NULL,
         "carve a seeded validation split of this fraction out of train (when the folder has none)", 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("train", "sdumc train --data DIR --out MODEL.safetensors [options]",
                   "Trains SDUMC (complete flow teaching the text-missing flow) and keeps the epoch with the\n"
                   "best validation criterion. The test split is never used.",
                   specs, n, argc, argv, &code))
        return code;
    o.select = (sd_select)select;
    o.prefetch_bytes = (size_t)prefetch_mib << 20;
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
    sd_dataset *ds = cli_open_dataset("train", &d, 1, SD_SPLIT_BIT(SD_SPLIT_TRAIN));
    if (!ds) return 1;
    if (valid_split(ds, valid_fraction, &o)) {
        sd_dataset_close(ds);
        return 1;
    }
    sd_threads_set(threads);
    sd_cache *cache = NULL;
    if (cache_path) {
        int built = 0;
        if (sd_cache_open(ds, cache_path, cache_f16 ? SD_DTYPE_F16 : SD_DTYPE_F32, &cache, &built, &err)) {
            fprintf(stderr, "sdumc train: %s\n", err.msg);
            sd_dataset_close(ds);
            return 1;
        }
        fprintf(stderr, "sdumc train: feature cache %s (%s)\n", cache_path, built ? "built" : "up to date");
        o.cache = cache;
    }
    on_terminal = isatty(STDERR_FILENO);
    o.on_progress = progress;
    sd_train_result res;
    fprintf(stderr, "sdumc train: %s preset, %d epochs, batch %d, %lld train / %lld valid utterances, %d threads\n",
            o.model.preset, o.epochs, o.batch_size, (long long)sd_dataset_size(ds, SD_SPLIT_TRAIN),
            (long long)sd_dataset_size(ds, SD_SPLIT_VALID), sd_threads_get());
    sd_status st = sd_train(ds, &o, &res, &err);
    if (!st && o.valid_fraction > 0.0f) st = write_valid_names(ds, o.out, &err);
    sd_cache_close(cache);
    sd_dataset_close(ds);
    if (st) {
        if (on_terminal) fprintf(stderr, "\n");
        fprintf(stderr, "sdumc train: %s\n", err.msg);
        return 1;
    }
    printf("selected epoch %d of %d (%s criterion %.4f on the validation split)\n", res.best_epoch + 1,
           res.epochs_run, sd_select_name(o.select), o.select == SD_SELECT_LAST ? 0.0 : res.best_criterion);
    printf("model:  %s\nstate:  %s\nlog:    %s\nreport: %s\n", o.out, res.state_path, res.log_path, res.report_path);
    return 0;
}
