/* The training loop: presets, epochs of double-flow steps, validation, model selection,
 * checkpoints, resume, divergence guard. See train.h for the files it writes. */
#include "train/train.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/alloc.h"
#include "core/array.h"
#include "core/dist.h"
#include "core/interrupt.h"
#include "data/cache.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "model/norm.h"
#include "optim/adam.h"
#include "train/checkpoint.h"
#include "train/grad_step.h"
#include "train/history.h"
#include "train/report.h"

const char *sd_select_name(sd_select s) {
    switch (s) {
    case SD_SELECT_MEAN: return "mean";
    case SD_SELECT_MISSING: return "missing";
    case SD_SELECT_FULL: return "full";
    case SD_SELECT_LAST: return "last";
    }
    return "?";
}

const char *sd_normalize_name(sd_normalize n) {
    return n == SD_NORMALIZE_STANDARD ? "standard" : n == SD_NORMALIZE_NONE ? "none" : "auto";
}

static const char *select_description(sd_select s) {
    switch (s) {
    case SD_SELECT_MEAN: return "lowest mean of the two flows' validation MAE";
    case SD_SELECT_MISSING: return "lowest text-missing flow validation MAE";
    case SD_SELECT_FULL: return "lowest complete flow validation MAE";
    case SD_SELECT_LAST: return "the last epoch (--select last)";
    }
    return "?";
}

sd_train_options sd_train_default_options(void) {
    sd_train_options o;
    memset(&o, 0, sizeof o);
    o.model = sd_model_default_config(1, 1, 1);
    o.lr = 1e-4f;
    o.weight_decay = 1e-5f;
    o.select = SD_SELECT_MEAN;
    o.shuffle = 1;
    o.seed = 1;
    o.cap_mode = SD_CAP_SUBSAMPLE;
    o.prefetch = SD_PREFETCH_AUTO;
    o.prefetch_bytes = SD_PREFETCH_DEFAULT_BYTES;
    o.eval_batch_size = 64;
    o.train_subset = 0;
    sd_error ignored;
    sd_train_apply_preset(&o, "paper", &ignored);
    return o;
}

/* MODEL.md section 4, table of presets. */
sd_status sd_train_apply_preset(sd_train_options *o, const char *name, sd_error *err) {
    if (!strcmp(name, "paper")) {
        o->model.mia = 1;
        o->w = (sd_loss_weights){0.5f, 0.5f, 0.1f, 0.7f, 0.13f, 0.5f};
        o->batch_size = 128;
    } else if (!strcmp(name, "release")) {
        o->model.mia = 0;
        o->w = (sd_loss_weights){0.5f, 0.5f, 0.0f, 0.0f, 0.13f, 0.5f};
        o->batch_size = 96;
    } else if (!strcmp(name, "auto")) { /* the paper's; the caller adapts batch and lr (sd_train_auto_schedule) */
        o->model.mia = 1;
        o->w = (sd_loss_weights){0.5f, 0.5f, 0.1f, 0.7f, 0.13f, 0.5f};
        o->batch_size = 128;
    } else {
        return sd_fail(err, SD_E_ARG, "unknown preset '%s' (known: paper, release, auto)", name);
    }
    o->epochs = 25;
    snprintf(o->model.preset, sizeof o->model.preset, "%s", name);
    return SD_OK;
}

sd_auto_schedule sd_train_auto_schedule(int64_t n_train, int epochs, int batch, float lr) {
    sd_auto_schedule a;
    memset(&a, 0, sizeof a);
    a.batch = batch;
    a.lr = lr;
    a.paper_steps = a.steps = (int64_t)epochs * ((n_train + batch - 1) / batch);
    if (a.steps >= SD_AUTO_MIN_STEPS && (n_train + batch - 1) / batch >= SD_AUTO_MIN_EPOCH_STEPS) return a;
    static const int batches[] = {64, 32, 16, 8};
    static const float lrs[] = {3e-4f, 1e-3f, 1e-3f, 1e-3f};
    int k = 3;
    for (int i = 0; i < 4; i++) {
        int64_t per_epoch = (n_train + batches[i] - 1) / batches[i];
        if (batches[i] < batch && per_epoch >= SD_AUTO_MIN_EPOCH_STEPS && per_epoch * epochs >= SD_AUTO_MIN_STEPS) {
            k = i;
            break;
        }
    }
    if (batches[k] >= batch) return a; /* already at or below the smallest choice */
    a.chosen = 1;
    a.batch = batches[k];
    a.lr = lrs[k];
    a.steps = (int64_t)epochs * ((n_train + a.batch - 1) / a.batch);
    return a;
}
sd_normalize sd_train_resolve_normalize(const sd_train_options *o, int init_has_stats) {
    if (o->normalize != SD_NORMALIZE_AUTO) return o->normalize;
    if (!o->model.mask) return SD_NORMALIZE_NONE;
    if (o->init) return init_has_stats ? SD_NORMALIZE_STANDARD : SD_NORMALIZE_NONE;
    return SD_NORMALIZE_STANDARD;
}

/* One "name=value" line of a settings string: the name's and the value's spans. */
typedef struct {
    const char *name, *value;
    int name_len, value_len;
} setting_t;

static setting_t setting_at(const char *line) {
    size_t len = strcspn(line, "\n"), key = strcspn(line, "=");
    setting_t t = {line, "", (int)(key < len ? key : len), 0};
    if (key < len) t.value = line + key + 1, t.value_len = (int)(len - key - 1);
    return t;
}

/* The line of settings whose name is t's, or NULL. */
static const char *setting_find(const char *settings, const setting_t *t) {
    for (const char *l = settings; *l;) {
        setting_t u = setting_at(l);
        if (u.name_len == t->name_len && !strncmp(u.name, t->name, (size_t)u.name_len)) return l;
        l += strcspn(l, "\n");
        if (*l) l++;
    }
    return NULL;
}

int sd_train_settings_get(const char *settings, const char *name, char *value, size_t size) {
    const setting_t key = {name, "", (int)strlen(name), 0};
    const char *l = settings ? setting_find(settings, &key) : NULL;
    if (!l) return 0;
    setting_t t = setting_at(l);
    snprintf(value, size, "%.*s", t.value_len, t.value);
    return 1;
}

/* Appends to b one line per setting whose value differs between `saved` and `now` (a setting on
 * one side only differs from "(not set)"); returns how many. */
static int settings_diff(const char *saved, const char *now, sd_strbuf *b) {
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *mine = pass ? now : saved, *other = pass ? saved : now;
        for (const char *l = mine; *l;) {
            setting_t t = setting_at(l), u = {0};
            const char *f = setting_find(other, &t);
            if (f) u = setting_at(f);
            if (t.name_len == 0 && t.value_len == 0) { /* a blank line */
            } else if (!f || (pass == 0 && (t.value_len != u.value_len || strncmp(t.value, u.value, (size_t)t.value_len)))) {
                const setting_t *sv = pass ? (f ? &u : NULL) : &t, *nv = pass ? &t : (f ? &u : NULL);
                sd_strbuf_printf(b, "\n  %.*s: %.*s when the run started, %.*s now", t.name_len, t.name,
                                   sv ? sv->value_len : 9, sv ? sv->value : "(not set)", nv ? nv->value_len : 9,
                                   nv ? nv->value : "(not set)");
                n++;
            }
            l += strcspn(l, "\n");
            if (*l) l++;
        }
    }
    return n;
}

/* acc += scale * t, term by term. */
static void terms_add(sd_loss_terms *acc, const sd_loss_terms *t, double scale) {
    acc->full += scale * t->full;
    acc->miss += scale * t->miss;
    acc->tf += scale * t->tf;
    acc->tq += scale * t->tq;
    acc->f += scale * t->f;
    acc->rnc += scale * t->rnc;
    acc->total += scale * t->total;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double criterion(sd_select s, const sd_epoch_record *r) {
    switch (s) {
    case SD_SELECT_MISSING: return r->valid_miss.mae;
    case SD_SELECT_FULL: return r->valid_full.mae;
    case SD_SELECT_MEAN: return 0.5 * (r->valid_full.mae + r->valid_miss.mae);
    case SD_SELECT_LAST: return (double)-r->epoch; /* every epoch beats the one before */
    }
    return 0;
}

/* OUT.log.jsonl, rewritten whole (atomically) from the history. Epoch numbers are 1-based there,
 * as on the console and in the report. */
static sd_status write_log(const char *path, const sd_epoch_record *h, int n, int best_epoch,
                           double best, sd_select sel, int final, const sd_auto_schedule *a, sd_error *err) {
    sd_strbuf b;
    memset(&b, 0, sizeof b);
    if (a->chosen)
        sd_strbuf_printf(&b, "{\"preset_auto\": {\"batch_size\": %d, \"lr\": %.9g, \"steps\": %lld, "
                               "\"paper_steps\": %lld}}\n",
                           a->batch, (double)a->lr, (long long)a->steps, (long long)a->paper_steps);
    for (int i = 0; i < n; i++) {
        sd_epoch_record_json(&b, &h[i]);
        sd_strbuf_puts(&b, "\n");
    }
    if (final) {
        sd_strbuf_printf(&b, "{\"selected_epoch\": %d, \"select\": \"%s\", \"why\": \"%s\", \"criterion\": %.17g}\n",
                           best_epoch + 1, sd_select_name(sel), select_description(sel),
                           sel == SD_SELECT_LAST ? 0.0 : best);
    }
    sd_status st = b.failed ? sd_fail(err, SD_E_NOMEM, "out of memory")
                            : sd_atomic_write_file(path, b.data ? b.data : "", b.len, err);
    sd_strbuf_free(&b);
    return st;
}

/* The files of an epoch end: the model (when the epoch is the best so far), the log and the
 * state. On one process a background thread writes them while the next epoch's first batch
 * computes: that batch's forward and backward only read what the files hold (parameters, Adam
 * moments, best parameters, history), and the thread is joined before its optimiser step changes
 * any of it, so waiting for the disk (fsync) overlaps with work and no copy of the state is needed.
 * With several MPI ranks rank 0 writes them in place and the ranks agree on the status. */
typedef struct {
    const sd_model *m;
    const float *folded; /* m's parameters folded (standardised inputs; measure_epoch folds them) */
    const sd_train_options *o;
    const sd_train_state *s;
    const sd_train_result *res;
    int save_model;
    sd_epoch_record rec;      /* for the epoch-end progress call, made once the files are written */
    sd_train_progress progress;
    pthread_t thread;
    int running;
    sd_status st;
    sd_error err;
} epoch_writer;

/* The model file, m as OUT holds it: with standardised inputs, the statistics folded into the first
 * layers (model/norm.h). folded holds m's parameters folded already (the run's evaluation network,
 * r->folded); folding into a temporary copy here instead cost a model's size of peak memory at
 * every save (issue 15). */
static sd_status save_model(const sd_model *m, const sd_norm *n, const float *folded, const char *path,
                            sd_error *err) {
    return sd_norm_active(n) ? sd_model_save_with(m, folded, sd_norm_write_metadata, n, path, err)
                             : sd_model_save(m, path, err);
}

static void *epoch_writer_main(void *arg) {
    epoch_writer *w = arg;
    const sd_train_state *s = w->s;
    sd_error_clear(&w->err);
    w->st = SD_OK;
    if (sd_dist_rank() == 0) {
        w->st = w->save_model ? save_model(w->m, &s->norm, w->folded, w->o->out, &w->err) : SD_OK;
        if (!w->st)
            w->st = write_log(w->res->log_path, s->history, s->n_history, s->best_epoch, s->best_criterion,
                              w->o->select, 0, &w->o->schedule, &w->err);
        if (!w->st) w->st = sd_train_state_save(s, w->res->state_path, &w->err);
    }
    return NULL;
}

/* The files written: a write error is returned (training stops there; the files of the epoch
 * before stay), else the epoch-end progress call is made. */
static sd_status epoch_writer_done(epoch_writer *w, sd_error *err) {
    if (w->st) {
        if (err) *err = w->err;
        return w->st;
    }
    if (w->o->on_progress) w->o->on_progress(&w->progress, &w->rec, w->o->user);
    return SD_OK;
}

static sd_status epoch_writer_start(epoch_writer *w, sd_error *err) {
    w->running = sd_dist_size() == 1 && pthread_create(&w->thread, NULL, epoch_writer_main, w) == 0;
    if (w->running) return SD_OK;
    epoch_writer_main(w); /* several ranks, or no thread: write them here */
    sd_status st = sd_dist_agree(w->st, &w->err);
    if (st && !w->st) w->st = st;
    return epoch_writer_done(w, err);
}

/* Waits for the epoch's files, if they are being written. */
static sd_status epoch_writer_join(epoch_writer *w, sd_error *err) {
    if (!w->running) return SD_OK;
    pthread_join(w->thread, NULL);
    w->running = 0;
    return epoch_writer_done(w, err);
}

static int params_finite(const sd_model *m) {
    for (size_t i = 0; i < m->table.total; i++)
        if (!isfinite(m->params[i])) return 0;
    return 1;
}

/* Which loss term is not finite (for the divergence message). */
static const char *bad_term(const sd_loss_terms *t) {
    if (!isfinite(t->full)) return "full (complete-flow MSE)";
    if (!isfinite(t->miss)) return "miss (text-missing MSE)";
    if (!isfinite(t->tf)) return "tf (text-query distillation)";
    if (!isfinite(t->tq)) return "tq (text cross-attention distillation)";
    if (!isfinite(t->f)) return "f (fused-representation alignment)";
    if (!isfinite(t->rnc)) return "rnc (Rank-N-Contrast)";
    return "total";
}

/* The divergence message: what went non-finite, where, and what is kept. */
static sd_status diverged(sd_error *err, const char *what, const char *term, int epoch, int64_t batch,
                          const sd_train_state *s, const char *state_path) {
    if (s->n_history)
        return sd_fail(err, SD_E_NUMERIC,
                       "training diverged: %s %s is not finite at epoch %d, batch %lld; stopped. The last good "
                       "state is %s (after epoch %d); the selected model is unchanged",
                       what, term, epoch + 1, (long long)batch + 1, state_path, s->n_history);
    return sd_fail(err, SD_E_NUMERIC,
                   "training diverged: %s %s is not finite at epoch %d, batch %lld; stopped before any epoch "
                   "finished, so nothing was written",
                   what, term, epoch + 1, (long long)batch + 1);
}

static sd_status check_dataset(const sd_dataset *ds, const sd_model_config *c, sd_error *err) {
    if (!sd_dataset_has_sim(ds))
        return sd_fail(err, SD_E_ARG,
                       "%s: training needs the simulated-text folder (%s) for the text-missing flow",
                       sd_dataset_dir(ds), sd_dataset_folder(ds, SD_MOD_SIM));
    if (sd_dataset_size(ds, SD_SPLIT_TRAIN) < 1 || sd_dataset_size(ds, SD_SPLIT_VALID) < 1)
        return sd_fail(err, SD_E_ARG,
                       "%s: training needs non-empty train and valid splits (train %lld, valid %lld); a "
                       "validation split can be carved out of train (sd_dataset_carve_valid, --valid-fraction)",
                       sd_dataset_dir(ds), (long long)sd_dataset_size(ds, SD_SPLIT_TRAIN),
                       (long long)sd_dataset_size(ds, SD_SPLIT_VALID));
    for (int k = SD_MOD_AUDIO; k <= SD_MOD_VIDEO; k++) /* the network's slots */
        if (sd_dataset_dim(ds, k) != c->dim[k])
            return sd_fail(err, SD_E_SHAPE, "%s: %s features have dim %d, the model has %d", sd_dataset_dir(ds),
                           sd_modality_name(k), sd_dataset_dim(ds, k), c->dim[k]);
    return SD_OK;
}

static sd_status training_norm(const sd_dataset *ds, const sd_train_options *o, sd_norm *n, sd_error *err) {
    if (o->stats) return sd_norm_from_stats(n, o->stats, err);
    sd_feature_stats fs;
    sd_status st = sd_feature_stats_compute(ds, SD_SPLIT_TRAIN, o->max_frames, o->cap_mode, o->cache, &fs, err);
    if (!st) st = sd_norm_from_stats(n, &fs, err);
    sd_feature_stats_free(&fs);
    return st;
}

/* A resumed run with standardised inputs: the option agrees, and the training split's statistics
 * are still those the run standardised with (the dataset's fingerprint covers names, labels and
 * frame counts, not the feature values). */
static sd_status check_resumed_norm(const sd_dataset *ds, const sd_train_options *o, const sd_train_state *s,
                                    sd_strbuf *diff, sd_error *err) {
    const int was = sd_norm_active(&s->norm);
    const setting_t key = {"normalize", "", 9, 0};
    if (o->normalize != SD_NORMALIZE_AUTO && (o->normalize == SD_NORMALIZE_STANDARD) != was &&
        !setting_find(o->settings ? o->settings : "", &key))
        sd_strbuf_printf(diff, "\n  normalize: %s when the run started, %s now", was ? "standard" : "none",
                           sd_normalize_name(o->normalize));
    if (!was || diff->len) return SD_OK;
    sd_norm now;
    sd_status st = training_norm(ds, o, &now, err);
    for (int k = 0; k < 3 && !st; k++) {
        static const char *const slot[3] = {"audio", "text", "video"};
        for (int d = 0; d < now.dim[k] && !st; d++)
            if (now.mean[k][d] != s->norm.mean[k][d] || now.std[k][d] != s->norm.std[k][d])
                st = sd_fail(err, SD_E_ARG, "%s: the training split's %s features differ from those the run "
                             "standardised with (dim %d: mean %.9g, std %.9g when the run started; %.9g, %.9g now)",
                             o->resume, slot[k], d, (double)s->norm.mean[k][d], (double)s->norm.std[k][d],
                             (double)now.mean[k][d], (double)now.std[k][d]);
    }
    sd_norm_free(&now);
    return st;
}

/* Sets up the state: resumed, initialised from --init, or fresh from the seed. */
static sd_status start_state(const sd_dataset *ds, const sd_train_options *o, sd_train_state *s, int *chunks,
                             sd_error *err) {
    memset(s, 0, sizeof *s);
    sd_status st;
    sd_model_config cfg = o->model;
    for (int k = 0; k < 3; k++) cfg.dim[k] = sd_dataset_dim(ds, k == 1 ? SD_MOD_TEXT : k);
    cfg.seed = o->seed;
    if (o->normalize == SD_NORMALIZE_STANDARD && !o->model.mask)
        return sd_fail(err, SD_E_ARG, "--normalize standard needs --mask on: with the released no-mask mode padded "
                       "frames take part, and the standardisation folded into the model would move them "
                       "(use --normalize none)");
    char *fingerprint = sd_dataset_fingerprint(ds);
    if (!fingerprint) return sd_fail(err, SD_E_NOMEM, "out of memory");
    if (o->resume) {
        st = sd_train_state_load(o->resume, s, err);
        sd_strbuf diff = {0};
        /* The gradient chunks decide the sums (grad_step.h): the run's, unless given and equal. */
        if (!st) *chunks = o->grad_chunks > 0 ? o->grad_chunks : s->grad_chunks;
        if (!st && *chunks != s->grad_chunks)
            sd_strbuf_printf(&diff, "\n  grad-chunks: %d when the run started, %d now", s->grad_chunks, *chunks);
        if (!st) settings_diff(s->settings, o->settings ? o->settings : "", &diff);
        if (!st && !diff.len && strcmp(s->dataset, fingerprint) == 0) st = check_resumed_norm(ds, o, s, &diff, err);
        if (!st && diff.len)
            st = sd_fail(err, SD_E_ARG, "%s: these options differ from the run it holds (a resumed run must be the "
                         "same run):%s", o->resume, diff.data ? diff.data : "");
        if (!st && strcmp(s->dataset, fingerprint))
            st = sd_fail(err, SD_E_ARG, "%s: the dataset differs from the one the run trained on (names, labels, "
                         "splits or frame counts):\n  when the run started: %s\n  now: %s", o->resume, s->dataset,
                         fingerprint);
        if (!st && o->epochs < s->next_epoch)
            st = sd_fail(err, SD_E_ARG, "%s: the run has already trained %d epochs; --epochs %d asks for fewer",
                         o->resume, s->next_epoch, o->epochs);
        if (!st) st = check_dataset(ds, &s->model->cfg, err);
        if (!st) s->epochs = o->epochs; /* (more than before extends a finished run) */
        sd_strbuf_free(&diff);
        free(fingerprint);
        if (st) sd_train_state_release(s);
        return st;
    }
    s->dataset = fingerprint;
    s->settings = strdup(o->settings ? o->settings : "");
    s->epochs = o->epochs;
    s->grad_chunks = *chunks = o->grad_chunks > 0 ? o->grad_chunks : sd_dist_size();
    if (!s->settings) {
        sd_train_state_release(s);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    if (o->init) {
        if ((st = sd_model_load(o->init, &s->model, err))) {
            sd_train_state_release(s);
            return st;
        }
        sd_model *m = s->model;
        if (m->cfg.dim[0] != cfg.dim[0] || m->cfg.dim[1] != cfg.dim[1] || m->cfg.dim[2] != cfg.dim[2]) {
            sd_fail(err, SD_E_SHAPE, "%s: model dims %d/%d/%d do not match the dataset's %d/%d/%d", o->init,
                    m->cfg.dim[0], m->cfg.dim[1], m->cfg.dim[2], cfg.dim[0], cfg.dim[1], cfg.dim[2]);
            sd_train_state_release(s);
            return SD_E_SHAPE;
        }
        if (cfg.hidden && cfg.hidden != m->cfg.hidden) {
            sd_fail(err, SD_E_SHAPE, "%s: the model's hidden size is %d, the options ask for %d (leave --hidden out "
                    "to take the model's)", o->init, m->cfg.hidden, cfg.hidden);
            sd_train_state_release(s);
            return SD_E_SHAPE;
        }
        cfg.hidden = m->cfg.hidden;
        m->cfg = cfg; /* training choices (MIA, mask, dropout, preset) come from the options */
        int present = 0;
        if ((st = sd_norm_read_file(o->init, m->cfg.dim, &s->norm, &present, err))) {
            sd_train_state_release(s);
            return st;
        }
        const sd_normalize normalize = sd_train_resolve_normalize(o, present);
        if (normalize == SD_NORMALIZE_NONE) sd_norm_free(&s->norm); /* the file's weights as they are */
        if (normalize == SD_NORMALIZE_STANDARD && !present && (st = training_norm(ds, o, &s->norm, err))) {
            sd_train_state_release(s);
            return st;
        }
        /* The file's weights act on raw features: the same function in the standardised space. */
        if (normalize == SD_NORMALIZE_STANDARD) sd_norm_unfold(&s->norm, m, m->params, m->params);
    } else {
        if (!cfg.hidden) cfg.hidden = sd_model_default_config(1, 1, 1).hidden;
        if ((st = sd_model_create(&cfg, &s->model, err))) {
            sd_train_state_release(s);
            return st;
        }
        if (sd_train_resolve_normalize(o, 0) == SD_NORMALIZE_STANDARD && (st = training_norm(ds, o, &s->norm, err))) {
            sd_train_state_release(s);
            return st;
        }
    }
    s->adam_m = sd_params_alloc_buffer(&s->model->table);
    s->adam_v = sd_params_alloc_buffer(&s->model->table);
    s->best_params = sd_params_alloc_buffer(&s->model->table);
    s->history = calloc((size_t)o->epochs + 1, sizeof *s->history);
    if (!s->adam_m || !s->adam_v || !s->best_params || !s->history) {
        sd_train_state_release(s);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    s->best_epoch = -1;
    s->best_criterion = INFINITY;
    if ((st = check_dataset(ds, &s->model->cfg, err))) sd_train_state_release(s);
    return st;
}

static void report_note(const sd_train_options *o, const sd_norm *n, char *buf, size_t size) {
    int len = snprintf(buf, size, "%s", sd_norm_active(n) ? "Inputs standardised per dimension with the training "
                                 "split's statistics, folded into the saved model's frame projections (it predicts from "
                                 "raw features). " : "Inputs used as they are (--normalize none). ");
    if (o->schedule.chosen && len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len,
                 "--preset auto chose batch %d and lr %g: %lld optimiser steps in all, where the paper's batch 128 "
                 "and lr 1e-4 would take %lld on this training split.",
                 o->schedule.batch, (double)o->schedule.lr, (long long)o->schedule.steps,
                 (long long)o->schedule.paper_steps);
}

/* Rank 0 writes the files; the others wait for its status (sd_dist_agree). */
static int writer(void) { return sd_dist_rank() == 0; }

/* K gradient chunks are shared by at most K ranks (a resumed run may change the number of ranks,
 * not K: the model stays the same). */
static sd_status check_ranks(const sd_train_options *o, int chunks, sd_error *err) {
    const int ranks = sd_dist_size();
    if (chunks >= ranks) return SD_OK;
    if (o->resume && o->grad_chunks <= 0)
        return sd_fail(err, SD_E_ARG,
                       "%s: the interrupted run cut every batch into %d gradient chunk%s, which at most %d rank%s can "
                       "share (now %d): resume it on at most %d ranks to get the same model",
                       o->resume, chunks, chunks == 1 ? "" : "s", chunks, chunks == 1 ? "" : "s", ranks, chunks);
    return sd_fail(err, SD_E_ARG, "%d gradient chunks (--grad-chunks) cannot be shared by %d ranks: use at least %d",
                   chunks, ranks, ranks);
}

/* Everything about the output files that can be settled before any work (see sd_train). */
static sd_status prepare_outputs(const sd_dataset *ds, const sd_train_options *o, sd_train_result *res,
                                 sd_error *err) {
    if (!o->out || !*o->out) return sd_fail(err, SD_E_ARG, "no output path");
    static const char *const suffix[3] = {SD_TRAIN_STATE_SUFFIX, SD_TRAIN_LOG_SUFFIX, SD_TRAIN_REPORT_SUFFIX};
    char *derived[3] = {res->state_path, res->log_path, res->report_path};
    const char *path[4] = {o->out, res->state_path, res->log_path, res->report_path};
    const char *what[4] = {"the model (--out)", "the training state", "the training log", "the training report"};
    sd_status st = sd_atomic_check_path(o->out, err);
    for (int k = 0; k < 3 && !st; k++) {
        int n = snprintf(derived[k], PATH_MAX, "%s%s", o->out, suffix[k]);
        st = n < 0 || n >= PATH_MAX ? sd_fail(err, SD_E_ARG, "%.60s...: the path of %s would exceed the system's limit "
                                              "of %d bytes", o->out, what[k + 1], PATH_MAX - 1)
                                    : sd_atomic_check_path(derived[k], err);
    }
    /* No output may be an input. The state may be the one resumed (that is how resume works). */
    const sd_input in[3] = {{o->init, "the initial weights (--init)"},
                            {o->resume, "the state to resume (--resume)"},
                            {o->cache ? sd_cache_path(o->cache) : NULL, "the feature cache (--cache)"}};
    for (int k = 0; k < 4 && !st; k++)
        st = sd_dataset_check_output(ds, path[k], what[k], in, k == 1 ? 1 : 3, err);
    if (st) return st;
    const time_t start = time(NULL);
    for (int k = 0; k < 4 && sd_dist_rank() == 0; k++) sd_atomic_remove_stale(path[k], start);
    /* A fresh start must not throw away an unfinished run. */
    struct stat sb;
    if (o->resume || o->overwrite || lstat(res->state_path, &sb) != 0) return SD_OK;
    int next = 0, epochs = 0;
    sd_error e;
    if (sd_train_state_peek(res->state_path, &next, &epochs, &e))
        return sd_fail(err, SD_E_ARG, "%s exists and is not a training state this sdumc can continue (%s); starting "
                       "afresh would replace it: give overwrite (--overwrite) to do so, or another --out",
                       res->state_path, e.msg);
    if (next < epochs) {
        res->resumable = 1;
        return sd_fail(err, SD_E_ARG, "%s holds an unfinished run (%d of %d epochs done): resuming it (--resume) "
                       "continues it; overwrite (--overwrite) starts afresh and replaces it",
                       res->state_path, next, epochs);
    }
    return SD_OK;
}

/* The message of a stop request (err holds "interrupted (SIGINT) ..."): what is kept. */
static void interrupted(sd_error *err, int epoch, const sd_train_state *s, const char *state_path,
                        sd_train_result *res) {
    char head[64];
    snprintf(head, sizeof head, "%.60s", err ? err->msg : "interrupted");
    char *paren = strchr(head, ')');
    if (paren) paren[1] = '\0';
    res->resumable = s->n_history > 0;
    if (s->n_history)
        sd_fail(err, SD_E_INTERRUPTED, "%s in epoch %d: stopped; the state after epoch %d is %s (the unfinished "
                "epoch is not kept)", head, epoch + 1, s->n_history, state_path);
    else
        sd_fail(err, SD_E_INTERRUPTED, "%s in epoch %d: stopped before any epoch finished, so nothing was written",
                head, epoch + 1);
}

/* A run under way: its state, the network as it is saved (folded with standardised inputs, which
 * validation runs on raw features, as eval and predict will), the gradient step, what each epoch
 * measures (the validation split and a fixed subset of the training split, with their labels), the
 * optimiser's settings and the writer of the epoch files. */
typedef struct {
    sd_train_state s;
    sd_model *m, *folded, *eval_m;
    float *grads;
    unsigned char *used; /* [tensors] 1: the tensor takes part (sd_model_tensor_used) */
    sd_grad_step *gs;
    epoch_writer files;
    int64_t nv, nsub, *sub;
    float *valid_y, *sub_y; /* [nv], [nsub] */
    int64_t ntrain;
    float *pass_p, *pass_y; /* [2 ntrain] both flows' training-pass predictions, [ntrain] their labels */
    sd_adam_config adam;
    sd_rng rng;
    int64_t first_step;
} train_run;

/* Everything a run needs beyond the state it starts from (r->s, set). */
static sd_status run_open(train_run *r, const sd_dataset *ds, const sd_train_options *o, sd_train_result *res,
                          int chunks, sd_error *err) {
    r->m = r->s.model;
    if (sd_norm_active(&r->s.norm)) {
        sd_status st = sd_model_alloc(&r->m->cfg, &r->folded, err);
        if (st) return st;
    }
    r->eval_m = r->folded ? r->folded : r->m;
    r->grads = sd_params_alloc_buffer(&r->m->table);
    r->used = calloc((size_t)r->m->table.count, 1);
    r->files = (epoch_writer){
        .m = r->m, .folded = r->folded ? r->folded->params : NULL, .o = o, .s = &r->s, .res = res};
    r->nv = sd_dataset_size(ds, SD_SPLIT_VALID);
    r->valid_y = malloc(sizeof(float) * (size_t)(r->nv + 1));
    r->nsub = sd_train_subset(ds, o->seed, o->train_subset, &r->sub);
    r->sub_y = malloc(sizeof(float) * (size_t)(r->nsub > 0 ? r->nsub : 1));
    r->ntrain = sd_dataset_size(ds, SD_SPLIT_TRAIN);
    r->pass_p = malloc(sizeof(float) * (size_t)(2 * r->ntrain + 1));
    r->pass_y = malloc(sizeof(float) * (size_t)(r->ntrain + 1));
    sd_status st = !r->grads || !r->used || !r->valid_y || r->nsub < 0 || !r->sub_y || !r->pass_p || !r->pass_y
                       ? sd_fail(err, SD_E_NOMEM, "out of memory")
                       : sd_grad_step_new(chunks, r->m->table.total, &r->gs, err);
    if ((st = sd_dist_agree(st, err))) return st;
    if (r->folded) sd_grad_step_set_norm(r->gs, &r->s.norm);
    for (int64_t i = 0; i < r->nv; i++) r->valid_y[i] = sd_dataset_label(ds, SD_SPLIT_VALID, i);
    for (int64_t i = 0; i < r->nsub; i++) r->sub_y[i] = sd_dataset_label(ds, SD_SPLIT_TRAIN, r->sub[i]);
    for (int i = 0; i < r->m->table.count; i++) r->used[i] = (unsigned char)sd_model_tensor_used(r->m, i);
    r->adam = sd_adam_default_config();
    r->adam.lr = o->lr;
    r->adam.weight_decay = o->weight_decay;
    r->first_step = r->s.step;
    r->rng = sd_rng_make(o->seed, SD_STREAM_DROPOUT);
    r->rng.index = r->s.rng_index;
    return SD_OK;
}

static void run_close(train_run *r) {
    free(r->valid_y);
    free(r->sub);
    free(r->sub_y);
    free(r->pass_p);
    free(r->pass_y);
    sd_grad_step_free(r->gs);
    sd_model_free(r->folded);
    free(r->used);
    sd_free(r->grads);
    sd_train_state_release(&r->s);
}

/* The optimiser steps of one epoch; rec gets the mean loss terms, samples and seconds. */
static sd_status train_epoch(train_run *r, const sd_dataset *ds, const sd_train_options *o, int epoch,
                             const sd_train_result *res, sd_epoch_record *rec, int64_t *steps, int64_t *batches,
                             sd_error *err) {
    sd_batcher_options bo = sd_batcher_default_options();
    bo.split = SD_SPLIT_TRAIN;
    bo.batch_size = o->batch_size;
    bo.shuffle = o->shuffle;
    bo.seed = o->seed;
    bo.epoch = epoch;
    bo.modalities = SD_MODS_ALL;
    memcpy(bo.max_frames, o->max_frames, sizeof bo.max_frames);
    bo.cap_mode = o->cap_mode;
    bo.prefetch = o->prefetch;
    bo.prefetch_bytes = o->prefetch_bytes;
    /* float16 files stay float16: the frame projection converts (and standardises) them chunk by chunk */
    bo.keep_dtype = 1;
    bo.cache = o->cache;
    sd_status st = sd_grad_step_open_epoch(r->gs, ds, &bo, batches, err);
    if (st) return st;
    const float lr = (float)(o->lr * sd_lr_factor(epoch));
    memset(rec, 0, sizeof *rec);
    rec->epoch = epoch;
    rec->lr = lr;
    const double t0 = now_s();
    int got, B = 0;
    int64_t nb = 0;
    sd_train_state *s = &r->s;
    while ((got = sd_grad_step_next(r->gs, err)) == 1) {
        /* A stop request, between steps (the state stays whole), at the same step on every rank. */
        st = sd_interrupt_check(err, "");
        if (sd_dist_size() > 1) st = sd_dist_agree(st, err);
        if (st) break;
        sd_loss_terms t;
        st = sd_grad_step_run(r->gs, r->m, &o->w, &r->rng, o->seed, s->step, r->grads, &t, &B, err);
        if (!st && !isfinite(t.total))
            st = diverged(err, "loss term", bad_term(&t), epoch, nb, s, res->state_path);
        if (!st && rec->samples + B > r->ntrain)
            st = sd_fail(err, SD_E_ARG, "epoch %d: more training items (%lld) than the training split has (%lld)",
                         epoch + 1, (long long)(rec->samples + B), (long long)r->ntrain);
        const int64_t done = rec->samples;
        float *miss = sd_objective_runs_missing(&o->w) ? r->pass_p + r->ntrain + done : NULL;
        if (!st) st = sd_grad_step_predictions(r->gs, r->pass_p + done, miss, r->pass_y + done, err);
        if (!st) st = epoch_writer_join(&r->files, err); /* the last epoch's files, before the update */
        if (st) break;
        s->step++;
        sd_adam_step_table(&r->m->table, r->used, r->m->params, r->grads, s->adam_m, s->adam_v, &r->adam, lr,
                           (long)s->step);
        if (!params_finite(r->m)) {
            st = diverged(err, "parameter update", "(a parameter)", epoch, nb, s, res->state_path);
            break;
        }
        terms_add(&rec->loss, &t, (double)B);
        rec->samples += B;
        nb++;
        if (o->on_progress) {
            double el = now_s() - t0;
            sd_train_progress p = {epoch, o->epochs, nb, *batches, rec->samples / (el > 0 ? el : 1e-9),
                                   rec->loss.total / (double)rec->samples, el / (double)nb * (double)(*batches - nb)};
            o->on_progress(&p, NULL, o->user);
        }
    }
    if (!st && got < 0) st = err->code ? err->code : SD_E_IO;
    sd_grad_step_close_epoch(r->gs);
    if (!st) st = epoch_writer_join(&r->files, err);
    if (st) return st;
    *steps = nb;
    rec->seconds = now_s() - t0;
    rec->samples_per_s = (double)rec->samples / (rec->seconds > 0 ? rec->seconds : 1e-9);
    const sd_metrics_scheme scheme = sd_dataset_metrics_scheme(ds);
    sd_metrics_compute_scheme(r->pass_p, r->pass_y, (size_t)rec->samples, scheme, &rec->pass_full);
    if (sd_objective_runs_missing(&o->w)) /* else the text-missing flow did not run: n = 0 */
        sd_metrics_compute_scheme(r->pass_p + r->ntrain, r->pass_y, (size_t)rec->samples, scheme, &rec->pass_miss);
    sd_loss_terms mean;
    memset(&mean, 0, sizeof mean);
    terms_add(&mean, &rec->loss, 1.0 / (rec->samples > 0 ? (double)rec->samples : 1.0));
    rec->loss = mean;
    return SD_OK;
}

/* Both flows' metrics after an epoch, on the network as it is saved: the validation split and the
 * training subset. */
static sd_status measure_epoch(train_run *r, const sd_dataset *ds, const sd_train_options *o, sd_epoch_record *rec,
                               sd_error *err) {
    const double t_eval = now_s();
    if (r->folded) sd_norm_fold(&r->s.norm, r->m, r->m->params, r->folded->params);
    sd_eval_reuse reuse = sd_grad_step_eval_reuse(r->gs);
    sd_status st = sd_eval_both_flows_ranks(r->eval_m, ds, SD_SPLIT_VALID, NULL, r->nv, o->eval_batch_size,
                                            r->valid_y, &rec->valid_full, &rec->valid_miss, NULL, &reuse, err);
    if (!st && r->nsub > 0)
        st = sd_eval_both_flows_ranks(r->eval_m, ds, SD_SPLIT_TRAIN, r->sub, r->nsub, o->eval_batch_size, r->sub_y,
                                      &rec->train_full, &rec->train_miss, NULL, &reuse, err);
    rec->eval_seconds = now_s() - t_eval;
    return st;
}

/* The epoch into the history, the best parameters kept when it is the best so far, and its files
 * started (written in the background, see epoch_writer). */
static sd_status end_epoch(train_run *r, const sd_train_options *o, const sd_epoch_record *rec, int64_t steps,
                           int64_t batches, sd_error *err) {
    sd_train_state *s = &r->s;
    s->history[s->n_history++] = *rec;
    double c = criterion(o->select, rec);
    r->files.save_model = s->best_epoch < 0 || c < s->best_criterion;
    if (r->files.save_model) {
        s->best_epoch = rec->epoch;
        s->best_criterion = c;
        memcpy(s->best_params, r->m->params, sizeof(float) * r->m->table.total);
    }
    s->next_epoch = rec->epoch + 1;
    s->rng_index = r->rng.index;
    r->files.rec = *rec;
    r->files.progress =
        (sd_train_progress){rec->epoch, o->epochs, steps, batches, rec->samples_per_s, rec->loss.total, 0};
    return epoch_writer_start(&r->files, err);
}

/* The run's end on rank 0: the selected model (rewritten from the state: a resumed run may not
 * have written it), the log, and the report with the selected model's validation predictions. */
static sd_status finish_run(train_run *r, const sd_dataset *ds, const sd_train_options *o, sd_train_result *res,
                            sd_error *err) {
    sd_train_state *s = &r->s;
    sd_model *m = r->m;
    memcpy(m->params, s->best_params, sizeof(float) * m->table.total);
    /* m holds the selected parameters now, and eval_m the network OUT holds (folded with
     * standardised inputs; not loaded again: that would hold the file and a second model). */
    if (r->folded) sd_norm_fold(&s->norm, m, m->params, r->folded->params);
    sd_status st = save_model(m, &s->norm, r->folded ? r->folded->params : NULL, o->out, err);
    if (!st)
        st = write_log(res->log_path, s->history, s->n_history, s->best_epoch, s->best_criterion, o->select, 1,
                       &o->schedule, err);
    if (st) return st;
    float *preds = NULL;
    sd_metrics mf, mm;
    sd_eval_reuse reuse = sd_grad_step_eval_reuse(r->gs);
    st = sd_eval_both_flows(r->eval_m, ds, SD_SPLIT_VALID, NULL, r->nv, o->eval_batch_size, r->valid_y, &mf, &mm,
                            &preds, &reuse, err);
    if (!st) {
        char note[512];
        report_note(o, &s->norm, note, sizeof note);
        sd_report_input ri = {s->history, s->n_history, s->best_epoch, select_description(o->select), r->valid_y,
                              preds, preds + r->nv, r->nv, o->out, o, &m->cfg, ds, r->nsub, note};
        st = sd_report_write(res->report_path, &ri, err);
    }
    free(preds);
    return st;
}

sd_status sd_train(const sd_dataset *ds, const sd_train_options *o, sd_train_result *res, sd_error *err) {
    memset(res, 0, sizeof *res);
    if (o->epochs < 1 || o->batch_size < 1) return sd_fail(err, SD_E_ARG, "epochs and batch size must be positive");
    if (o->resume && o->overwrite) return sd_fail(err, SD_E_ARG, "resume and overwrite exclude each other");
    sd_status st0 = prepare_outputs(ds, o, res, err);
    if ((st0 = sd_dist_agree(st0, err))) return st0;
    train_run r;
    memset(&r, 0, sizeof r);
    int chunks = 1;
    sd_status st = start_state(ds, o, &r.s, &chunks, err);
    if (!st) st = check_ranks(o, chunks, err);
    if ((st = sd_dist_agree(st, err))) {
        sd_train_state_release(&r.s);
        return st;
    }
    int current = r.s.next_epoch; /* the epoch under way, for an interruption's message */
    if (o->resume && r.s.n_history < o->epochs) { /* room for the epochs still to run */
        sd_epoch_record *h = sd_array_resize(r.s.history, (size_t)o->epochs + 1, sizeof *h);
        if (!h) {
            sd_train_state_release(&r.s);
            return sd_fail(err, SD_E_NOMEM, "out of memory");
        }
        r.s.history = h;
    }
    if ((st = run_open(&r, ds, o, res, chunks, err))) goto done;
    for (int epoch = r.s.next_epoch; epoch < o->epochs; epoch++) {
        current = epoch;
        sd_epoch_record rec;
        int64_t steps = 0, batches = 0;
        if ((st = train_epoch(&r, ds, o, epoch, res, &rec, &steps, &batches, err)) ||
            (st = measure_epoch(&r, ds, o, &rec, err)) || (st = end_epoch(&r, o, &rec, steps, batches, err)))
            goto done;
    }
    if ((st = epoch_writer_join(&r.files, err))) goto done;
    res->best_epoch = r.s.best_epoch;
    res->best_criterion = r.s.best_criterion;
    res->epochs_run = r.s.n_history;
    res->normalize = sd_norm_active(&r.s.norm) ? SD_NORMALIZE_STANDARD : SD_NORMALIZE_NONE;
    res->steps_run = r.s.step - r.first_step;
    if (writer()) st = finish_run(&r, ds, o, res, err); /* rank 0 writes the model, the log and the report */
done:
    if (r.files.running) { /* an error elsewhere stopped training: the epoch's files still complete */
        pthread_join(r.files.thread, NULL);
        r.files.running = 0;
    }
    if (st == SD_E_INTERRUPTED) interrupted(err, current, &r.s, res->state_path, res);
    run_close(&r);
    return st;
}
