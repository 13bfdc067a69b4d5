/* The training state file OUT.state: saving, loading and releasing it (checkpoint.h). */
#include "train/checkpoint.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "train/history.h"

#define STATE_FORMAT "sdumc-train-state"

sd_status sd_train_state_save(const sd_train_state *s, const char *path, sd_error *err) {
    const sd_model *m = s->model;
    int64_t shape[1] = {(int64_t)m->table.total};
    sd_st_writer *w = sd_st_writer_new();
    if (!w) return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    sd_status st = sd_st_writer_add(w, "params", SD_DTYPE_F32, 1, shape, m->params, err);
    if (!st) st = sd_st_writer_add(w, "adam_m", SD_DTYPE_F32, 1, shape, s->adam_m, err);
    if (!st) st = sd_st_writer_add(w, "adam_v", SD_DTYPE_F32, 1, shape, s->adam_v, err);
    if (!st) st = sd_st_writer_add(w, "best_params", SD_DTYPE_F32, 1, shape, s->best_params, err);
    if (!st) st = sd_model_write_config(w, &m->cfg, err);
    if (!st) st = sd_st_writer_set_metadata(w, "format", STATE_FORMAT, err);
    char buf[64];
    struct {
        const char *key;
        long long value;
    } ints[] = {{"step", (long long)s->step}, {"next_epoch", s->next_epoch}, {"data_position", 0},
                {"best_epoch", s->best_epoch}, {"epochs", s->epochs}, {"grad_chunks", s->grad_chunks > 0 ? s->grad_chunks : 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !st; i++) {
        snprintf(buf, sizeof buf, "%lld", ints[i].value);
        st = sd_st_writer_set_metadata(w, ints[i].key, buf, err);
    }
    if (!st) {
        snprintf(buf, sizeof buf, "%" PRIu64, s->rng_index);
        st = sd_st_writer_set_metadata(w, "rng_index", buf, err);
    }
    if (!st) {
        snprintf(buf, sizeof buf, "%.17g", s->best_criterion);
        st = sd_st_writer_set_metadata(w, "best_criterion", buf, err);
    }
    if (!st) st = sd_st_writer_set_metadata(w, "settings", s->settings ? s->settings : "", err);
    if (!st) st = sd_st_writer_set_metadata(w, "dataset", s->dataset ? s->dataset : "", err);
    if (!st && sd_norm_active(&s->norm)) st = sd_norm_write_metadata(w, &s->norm, err);
    sd_strbuf h;
    memset(&h, 0, sizeof h);
    sd_strbuf_puts(&h, "[");
    for (int i = 0; i < s->n_history; i++) {
        if (i) sd_strbuf_puts(&h, ", ");
        sd_epoch_record_json(&h, &s->history[i]);
    }
    sd_strbuf_puts(&h, "]");
    if (!st && h.failed) st = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    if (!st) st = sd_st_writer_set_metadata(w, "history", h.data, err);
    sd_strbuf_free(&h);
    if (!st) st = sd_st_writer_write(w, path, err);
    sd_st_writer_free(w);
    return st;
}

void sd_train_state_release(sd_train_state *s) {
    sd_model_free(s->model);
    sd_free(s->adam_m);
    sd_free(s->adam_v);
    sd_free(s->best_params);
    free(s->history);
    free(s->settings);
    free(s->dataset);
    sd_norm_free(&s->norm);
    memset(s, 0, sizeof *s);
}

static sd_status meta_ll(const sd_safetensors *st, const char *path, const char *key, long long lo,
                         long long hi, long long *out, sd_error *err) {
    const char *v = sd_st_metadata_get(st, key);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || end == v || *end || x < lo || x > hi)
        return sd_fail(err, SD_E_FORMAT, "%s: training state lacks a valid \"%s\"", path, key);
    *out = x;
    return SD_OK;
}

static sd_status read_flat(const sd_safetensors *st, const char *path, const char *name, size_t total,
                           float *dst, sd_error *err) {
    const sd_st_tensor *t = sd_st_find(st, name);
    if (!t || t->ndim != 1 || t->numel != total)
        return sd_fail(err, SD_E_SHAPE, "%s: training state tensor %s is missing or not [%zu]", path, name, total);
    sd_status s = sd_st_read_f32(st, t, dst, err);
    for (size_t k = 0; !s && k < total; k++)
        if (!isfinite(dst[k]))
            s = sd_fail(err, SD_E_NUMERIC, "%s: training state tensor %s holds %s at index %zu", path, name,
                        isnan(dst[k]) ? "NaN" : "Inf", k);
    return s;
}

sd_status sd_train_state_load(const char *path, sd_train_state *s, sd_error *err) {
    memset(s, 0, sizeof *s);
    sd_safetensors *st = NULL;
    sd_status r = sd_st_open(path, &st, err);
    if (r) return r;
    const char *fmt = sd_st_metadata_get(st, "format");
    sd_model_config cfg;
    if (!fmt || strcmp(fmt, STATE_FORMAT))
        r = sd_fail(err, SD_E_FORMAT, "%s: not an sdumc training state (format \"%s\")", path, fmt ? fmt : "");
    if (!r) r = sd_model_read_config(st, path, &cfg, err);
    if (!r) { /* before allocating: the file must hold the parameters the configuration claims */
        const sd_st_tensor *p = sd_st_find(st, "params");
        if (!p || p->numel < sd_model_min_params(&cfg))
            r = sd_fail(err, SD_E_SHAPE, "%s: training state tensor params is missing or smaller than the "
                        "configuration (hidden %d) needs", path, cfg.hidden);
    }
    if (!r) r = sd_model_alloc(&cfg, &s->model, err);
    if (!r) {
        size_t total = s->model->table.total;
        s->adam_m = sd_calloc(total, sizeof(float));
        s->adam_v = sd_calloc(total, sizeof(float));
        s->best_params = sd_calloc(total, sizeof(float));
        if (!s->adam_m || !s->adam_v || !s->best_params) r = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
        if (!r) r = read_flat(st, path, "params", total, s->model->params, err);
        if (!r) r = read_flat(st, path, "adam_m", total, s->adam_m, err);
        if (!r) r = read_flat(st, path, "adam_v", total, s->adam_v, err);
        if (!r) r = read_flat(st, path, "best_params", total, s->best_params, err);
    }
    long long v;
    if (!r && !(r = meta_ll(st, path, "step", 0, INT64_MAX, &v, err))) s->step = v;
    if (!r && !(r = meta_ll(st, path, "next_epoch", 0, 1000000, &v, err))) s->next_epoch = (int)v;
    if (!r && !(r = meta_ll(st, path, "best_epoch", -1, 1000000, &v, err))) s->best_epoch = (int)v;
    if (!r && !(r = meta_ll(st, path, "data_position", 0, 0, &v, err))) (void)v;
    if (!r) {
        const char *x = sd_st_metadata_get(st, "rng_index");
        const char *b = sd_st_metadata_get(st, "best_criterion");
        const char *set = sd_st_metadata_get(st, "settings");
        if (!x || !b || !set)
            r = sd_fail(err, SD_E_FORMAT, "%s: training state lacks rng_index, best_criterion or settings", path);
        else {
            s->rng_index = strtoull(x, NULL, 10);
            s->best_criterion = strtod(b, NULL);
            if (!(s->settings = strdup(set))) r = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
        }
    }
    if (!r) {
        int present = 0;
        r = sd_norm_read_metadata(st, path, cfg.dim, &s->norm, &present, err);
    }
    if (!r) {
        const char *h = sd_st_metadata_get(st, "history");
        sd_json *j = NULL;
        if (!h || sd_json_parse(h, strlen(h), &j, err) || j->type != SD_JSON_ARRAY)
            r = sd_fail(err, SD_E_FORMAT, "%s: training state has no valid history", path);
        else {
            s->n_history = (int)j->len;
            s->history = calloc(j->len + 1, sizeof *s->history);
            if (!s->history) r = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
            for (size_t i = 0; !r && i < j->len; i++) r = sd_epoch_record_parse(&j->items[i], &s->history[i], err);
            if (!r && s->n_history != s->next_epoch)
                r = sd_fail(err, SD_E_FORMAT, "%s: history has %d epochs, next_epoch is %d", path,
                            s->n_history, s->next_epoch);
        }
        sd_json_free(j);
    }
    /* Written since the dataset fingerprint and the epoch count were added (issue 14). */
    const char *ds = sd_st_metadata_get(st, "dataset");
    if (!r && !ds)
        r = sd_fail(err, SD_E_FORMAT, "%s: training state without a dataset fingerprint (written by an earlier "
                    "sdumc); it cannot be resumed", path);
    if (!r && !(s->dataset = strdup(ds))) r = sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    if (!r && !(r = meta_ll(st, path, "epochs", 1, 1000000, &v, err))) s->epochs = (int)v;
    s->grad_chunks = 1;
    if (!r && sd_st_metadata_get(st, "grad_chunks") && !(r = meta_ll(st, path, "grad_chunks", 1, 65536, &v, err)))
        s->grad_chunks = (int)v;
    sd_st_close(st);
    if (r) {
        sd_error_prefix(err, "cannot resume");
        sd_train_state_release(s);
    }
    return r;
}

sd_status sd_train_state_peek(const char *path, int *next_epoch, int *epochs, sd_error *err) {
    sd_safetensors *st = NULL;
    sd_status r = sd_st_open(path, &st, err);
    if (r) return r;
    const char *fmt = sd_st_metadata_get(st, "format");
    long long v = 0;
    if (!fmt || strcmp(fmt, STATE_FORMAT))
        r = sd_fail(err, SD_E_FORMAT, "%s: not an sdumc training state", path);
    if (!r && !(r = meta_ll(st, path, "next_epoch", 0, 1000000, &v, err))) *next_epoch = (int)v;
    if (!r && !(r = meta_ll(st, path, "epochs", 1, 1000000, &v, err))) *epochs = (int)v;
    sd_st_close(st);
    return r;
}

sd_status sd_train_state_peek_setting(const char *path, const char *name, char *value, size_t size, int *found,
                                      sd_error *err) {
    sd_safetensors *st = NULL;
    sd_status r = sd_st_open(path, &st, err);
    if (r) return r;
    const char *fmt = sd_st_metadata_get(st, "format");
    if (!fmt || strcmp(fmt, STATE_FORMAT))
        r = sd_fail(err, SD_E_FORMAT, "%s: not an sdumc training state", path);
    *found = !r && sd_train_settings_get(sd_st_metadata_get(st, "settings"), name, value, size);
    sd_st_close(st);
    return r;
}
