/* The training loop: presets, epochs of double-flow steps, validation, model selection,
 * checkpoints, resume, divergence guard. See train.h for the files it writes. */
#include "train/train.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "optim/adam.h"
#include "train/checkpoint.h"
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
    } else {
        return sd_fail(err, SD_E_ARG, "unknown preset '%s' (known: paper, release)", name);
    }
    o->epochs = 25;
    snprintf(o->model.preset, sizeof o->model.preset, "%s", name);
    return SD_OK;
}

/* The options that must be the same when a run is resumed, as one canonical line. */
static void settings_line(const sd_train_options *o, const sd_model_config *c, char *buf, size_t n) {
    snprintf(buf, n,
             "epochs=%d batch=%d lr=%.9g wd=%.9g w=%.9g,%.9g,%.9g,%.9g,%.9g,%.9g select=%s shuffle=%d "
             "seed=%llu frames=%d,%d,%d,%d cap=%d mia=%d mask=%d p_mlp=%.9g p_att=%.9g hidden=%d "
             "valid_fraction=%.9g",
             o->epochs, o->batch_size, (double)o->lr, (double)o->weight_decay, (double)o->w.full,
             (double)o->w.miss, (double)o->w.tf, (double)o->w.tq, (double)o->w.f, (double)o->w.rnc,
             sd_select_name(o->select), o->shuffle, (unsigned long long)o->seed, o->max_frames[0],
             o->max_frames[1], o->max_frames[2], o->max_frames[3], (int)o->cap_mode, c->mia, c->mask,
             (double)c->p_mlp, (double)c->p_att, c->hidden, (double)o->valid_fraction);
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

/* Opens the batcher with options bo, or reuses the one open (its buffers stay: data/batch.h). */
static sd_status use_batcher(sd_batcher **b, const sd_dataset *ds, const sd_batcher_options *bo, sd_error *err) {
    return *b ? sd_batcher_reuse(*b, bo, err) : sd_batcher_open(ds, bo, b, err);
}

/* Validation metrics of both flows; y: the valid split's labels [n]. One pass over the split in
 * evaluation mode through the objective's two flows: the text-missing flow borrows the complete
 * flow's audio and video frames (the same numbers sd_predict_split gives for each flow alone). */
static sd_status validate(const sd_model *m, const sd_dataset *ds, const sd_train_options *o, sd_objective *obj,
                          sd_batcher **batcher, const float *y, sd_metrics *full, sd_metrics *miss,
                          float **preds_out, sd_error *err) {
    const int64_t n = sd_dataset_size(ds, SD_SPLIT_VALID);
    float *p = malloc(sizeof(float) * (size_t)(2 * n + 1)); /* [2n]: complete flow, then text-missing */
    if (!p) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_batcher_options bo = sd_batcher_default_options();
    bo.split = SD_SPLIT_VALID;
    bo.batch_size = o->eval_batch_size > 0 ? o->eval_batch_size : 64;
    bo.shuffle = 0;
    bo.prefetch = o->prefetch;
    bo.prefetch_bytes = o->prefetch_bytes;
    bo.keep_dtype = 1;
    bo.cache = o->cache;
    sd_status st = use_batcher(batcher, ds, &bo, err);
    const sd_batch *b;
    int64_t done = 0;
    int r = -1;
    while (!st && (r = sd_batcher_next(*batcher, &b, err)) == 1) {
        sd_flow_input in_full = sd_flow_input_from_batch(b, 0), in_miss = sd_flow_input_from_batch(b, 1);
        st = sd_flow_forward(obj->flow[0], m, &in_full, 0, 0, NULL, err);
        if (!st) st = sd_flow_forward_shared(obj->flow[1], m, &in_miss, 1, 0, NULL, obj->flow[0], 0x5u, err);
        if (st) break;
        memcpy(p + done, obj->flow[0]->pred, sizeof(float) * (size_t)b->B);
        memcpy(p + n + done, obj->flow[1]->pred, sizeof(float) * (size_t)b->B);
        done += b->B;
    }
    if (!st && r < 0) st = err && err->code ? err->code : SD_E_IO;
    if (!st) {
        sd_metrics_compute(p, y, (size_t)n, full);
        sd_metrics_compute(p + n, y, (size_t)n, miss);
    }
    if (preds_out && !st)
        *preds_out = p;
    else
        free(p);
    return st;
}

/* OUT.log.jsonl, rewritten whole (atomically) from the history. */
static sd_status write_log(const char *path, const sd_epoch_record *h, int n, int best_epoch,
                           double best, sd_select sel, int final, sd_error *err) {
    sd_json_buf b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < n; i++) {
        sd_epoch_record_json(&b, &h[i]);
        sd_json_buf_puts(&b, "\n");
    }
    if (final) {
        sd_json_buf_printf(&b, "{\"selected_epoch\": %d, \"select\": \"%s\", \"why\": \"%s\", \"criterion\": %.17g}\n",
                           best_epoch, sd_select_name(sel), select_description(sel),
                           sel == SD_SELECT_LAST ? 0.0 : best);
    }
    sd_status st = b.failed ? sd_fail(err, SD_E_NOMEM, "out of memory")
                            : sd_atomic_write_file(path, b.data ? b.data : "", b.len, err);
    sd_json_buf_free(&b);
    return st;
}

/* The files of an epoch end: the model (when the epoch is the best so far), the log and the
 * state. A background thread writes them while the next epoch's first batch computes: that batch's
 * forward and backward only read what the files hold (parameters, Adam moments, best parameters,
 * history), and the thread is joined before its optimiser step changes any of it, so waiting for
 * the disk (fsync) overlaps with work and no copy of the state is needed. */
typedef struct {
    const sd_model *m;
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

static void *epoch_writer_main(void *arg) {
    epoch_writer *w = arg;
    const sd_train_state *s = w->s;
    sd_error_clear(&w->err);
    w->st = w->save_model ? sd_model_save(w->m, w->o->out, &w->err) : SD_OK;
    if (!w->st)
        w->st = write_log(w->res->log_path, s->history, s->n_history, s->best_epoch, s->best_criterion,
                          w->o->select, 0, &w->err);
    if (!w->st) w->st = sd_train_state_save(s, w->res->state_path, &w->err);
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
    w->running = pthread_create(&w->thread, NULL, epoch_writer_main, w) == 0;
    if (w->running) return SD_OK;
    epoch_writer_main(w); /* no thread: write them here */
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
    const int mods[3] = {SD_MOD_AUDIO, SD_MOD_TEXT, SD_MOD_VIDEO};
    for (int k = 0; k < 3; k++)
        if (sd_dataset_dim(ds, mods[k]) != c->dim[k])
            return sd_fail(err, SD_E_SHAPE, "%s: %s features have dim %d, the model has %d", sd_dataset_dir(ds),
                           sd_modality_name(mods[k]), sd_dataset_dim(ds, mods[k]), c->dim[k]);
    return SD_OK;
}

/* Sets up the state: resumed, initialised from --init, or fresh from the seed. */
static sd_status start_state(const sd_dataset *ds, const sd_train_options *o, sd_train_state *s, sd_error *err) {
    memset(s, 0, sizeof *s);
    sd_status st;
    sd_model_config cfg = o->model;
    for (int k = 0; k < 3; k++) cfg.dim[k] = sd_dataset_dim(ds, k == 1 ? SD_MOD_TEXT : k);
    cfg.seed = o->seed;
    if (o->resume) {
        if ((st = sd_train_state_load(o->resume, s, err))) return st;
        char now[1024];
        settings_line(o, &s->model->cfg, now, sizeof now);
        if (strcmp(now, s->settings)) {
            sd_fail(err, SD_E_ARG, "%s: the options differ from the interrupted run's.\n  saved: %s\n  now:   %s",
                    o->resume, s->settings, now);
            sd_train_state_release(s);
            return SD_E_ARG;
        }
        if ((st = check_dataset(ds, &s->model->cfg, err))) sd_train_state_release(s);
        return st;
    }
    if (o->init) {
        if ((st = sd_model_load(o->init, &s->model, err))) return st;
        sd_model *m = s->model;
        if (m->cfg.dim[0] != cfg.dim[0] || m->cfg.dim[1] != cfg.dim[1] || m->cfg.dim[2] != cfg.dim[2]) {
            sd_fail(err, SD_E_SHAPE, "%s: model dims %d/%d/%d do not match the dataset's %d/%d/%d", o->init,
                    m->cfg.dim[0], m->cfg.dim[1], m->cfg.dim[2], cfg.dim[0], cfg.dim[1], cfg.dim[2]);
            sd_train_state_release(s);
            return SD_E_SHAPE;
        }
        cfg.hidden = m->cfg.hidden;
        m->cfg = cfg; /* training choices (MIA, mask, dropout, preset) come from the options */
    } else if ((st = sd_model_create(&cfg, &s->model, err))) {
        return st;
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
    settings_line(o, &s->model->cfg, s->settings, sizeof s->settings);
    return check_dataset(ds, &s->model->cfg, err);
}

static void derive_path(char *dst, size_t n, const char *out, const char *suffix) {
    snprintf(dst, n, "%s%s", out, suffix);
}

sd_status sd_train(const sd_dataset *ds, const sd_train_options *o, sd_train_result *res, sd_error *err) {
    memset(res, 0, sizeof *res);
    if (o->epochs < 1 || o->batch_size < 1) return sd_fail(err, SD_E_ARG, "epochs and batch size must be positive");
    derive_path(res->state_path, sizeof res->state_path, o->out, ".state");
    derive_path(res->log_path, sizeof res->log_path, o->out, ".log.jsonl");
    derive_path(res->report_path, sizeof res->report_path, o->out, ".report.html");
    sd_train_state s;
    sd_status st = start_state(ds, o, &s, err);
    if (st) return st;
    if (o->resume && s.n_history < o->epochs) { /* room for the epochs still to run */
        sd_epoch_record *h = realloc(s.history, sizeof *h * ((size_t)o->epochs + 1));
        if (!h) {
            sd_train_state_release(&s);
            return sd_fail(err, SD_E_NOMEM, "out of memory");
        }
        s.history = h;
    }
    sd_model *m = s.model;
    float *grads = sd_params_alloc_buffer(&m->table);
    unsigned char *used = calloc((size_t)m->table.count, 1);
    sd_objective *obj = sd_objective_new();
    sd_batcher *batcher = NULL; /* one for the run: the train split, then the valid split, in turn */
    epoch_writer writer = {.m = m, .o = o, .s = &s, .res = res};
    const int64_t nv = sd_dataset_size(ds, SD_SPLIT_VALID);
    float *valid_y = malloc(sizeof(float) * (size_t)(nv + 1)); /* [nv] labels of the valid split */
    if (!grads || !used || !obj || !valid_y) {
        st = sd_fail(err, SD_E_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < nv; i++) valid_y[i] = sd_dataset_label(ds, SD_SPLIT_VALID, i);
    for (int i = 0; i < m->table.count; i++) used[i] = (unsigned char)sd_model_tensor_used(m, i);
    sd_adam_config adam = sd_adam_default_config();
    adam.lr = o->lr;
    adam.weight_decay = o->weight_decay;
    sd_rng rng = sd_rng_make(o->seed, SD_STREAM_DROPOUT);
    rng.index = s.rng_index;

    for (int epoch = s.next_epoch; epoch < o->epochs; epoch++) {
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
        bo.keep_dtype = 1;
        bo.cache = o->cache;
        if ((st = use_batcher(&batcher, ds, &bo, err))) goto done;
        const float lr = (float)(o->lr * sd_lr_factor(epoch));
        sd_epoch_record rec;
        memset(&rec, 0, sizeof rec);
        rec.epoch = epoch;
        rec.lr = lr;
        const double t0 = now_s();
        const sd_batch *b;
        int r;
        int64_t nb = 0, batches = sd_batcher_num_batches(batcher);
        while ((r = sd_batcher_next(batcher, &b, err)) == 1) {
            sd_flow_input in_full = sd_flow_input_from_batch(b, 0), in_miss = sd_flow_input_from_batch(b, 1);
            memset(grads, 0, sizeof(float) * m->table.total);
            sd_loss_terms t;
            st = sd_objective_run(obj, m, &in_full, &in_miss, b->label, &o->w, 1, &rng, grads, &t, err);
            if (!st && !isfinite(t.total))
                st = diverged(err, "loss term", bad_term(&t), epoch, nb, &s, res->state_path);
            if (!st) st = epoch_writer_join(&writer, err); /* the last epoch's files, before the update */
            if (st) break;
            s.step++;
            sd_adam_step_table(&m->table, used, m->params, grads, s.adam_m, s.adam_v, &adam, lr, (long)s.step);
            if (!params_finite(m)) {
                st = diverged(err, "parameter update", "(a parameter)", epoch, nb, &s, res->state_path);
                break;
            }
            double w = (double)b->B;
            terms_add(&rec.loss, &t, w);
            rec.samples += b->B;
            nb++;
            if (o->on_progress) {
                double el = now_s() - t0;
                sd_train_progress p = {epoch, o->epochs, nb, batches, rec.samples / (el > 0 ? el : 1e-9),
                                       rec.loss.total / (double)rec.samples,
                                       el / (double)nb * (double)(batches - nb)};
                o->on_progress(&p, NULL, o->user);
            }
        }
        if (!st && r < 0) st = err->code ? err->code : SD_E_IO;
        if (!st) st = epoch_writer_join(&writer, err);
        if (st) goto done;
        rec.seconds = now_s() - t0;
        rec.samples_per_s = (double)rec.samples / (rec.seconds > 0 ? rec.seconds : 1e-9);
        double n = rec.samples > 0 ? (double)rec.samples : 1.0;
        sd_loss_terms mean;
        memset(&mean, 0, sizeof mean);
        terms_add(&mean, &rec.loss, 1.0 / n);
        rec.loss = mean;
        if ((st = validate(m, ds, o, obj, &batcher, valid_y, &rec.valid_full, &rec.valid_miss, NULL, err)))
            goto done;
        s.history[s.n_history++] = rec;
        double c = criterion(o->select, &rec);
        writer.save_model = s.best_epoch < 0 || c < s.best_criterion;
        if (writer.save_model) {
            s.best_epoch = epoch;
            s.best_criterion = c;
            memcpy(s.best_params, m->params, sizeof(float) * m->table.total);
        }
        s.next_epoch = epoch + 1;
        s.rng_index = rng.index;
        writer.rec = rec;
        writer.progress = (sd_train_progress){epoch, o->epochs, nb, batches, rec.samples_per_s, rec.loss.total, 0};
        if ((st = epoch_writer_start(&writer, err))) goto done;
    }
    if ((st = epoch_writer_join(&writer, err))) goto done;
    /* The selected model, rewritten from the state (a resumed run may not have written it). */
    memcpy(m->params, s.best_params, sizeof(float) * m->table.total);
    st = sd_model_save(m, o->out, err);
    if (!st) st = write_log(res->log_path, s.history, s.n_history, s.best_epoch, s.best_criterion, o->select, 1, err);
    res->best_epoch = s.best_epoch;
    res->best_criterion = s.best_criterion;
    res->epochs_run = s.n_history;
    if (!st) {
        /* The report shows the selected model's validation predictions. */
        sd_model *best = NULL;
        float *preds = NULL;
        sd_metrics mf, mm;
        st = sd_model_load(o->out, &best, err);
        if (!st) st = validate(best, ds, o, obj, &batcher, valid_y, &mf, &mm, &preds, err);
        if (!st) {
            sd_report_input ri = {s.history, s.n_history, s.best_epoch, select_description(o->select),
                                  valid_y, preds, preds + nv, nv, o->out};
            st = sd_report_write(res->report_path, &ri, err);
        }
        free(preds);
        sd_model_free(best);
    }
done:
    if (writer.running) /* an error elsewhere stopped training: the epoch's files still complete */
        pthread_join(writer.thread, NULL);
    sd_batcher_close(batcher);
    free(valid_y);
    sd_objective_free(obj);
    free(used);
    sd_free(grads);
    sd_train_state_release(&s);
    return st;
}
