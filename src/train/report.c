/* HTML + inline SVG training report (charts from io/svg.h). Every number printed comes from the
 * options, the dataset, the history or the predictions. */
#include "train/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "io/svg.h"

#ifndef SDUMC_VERSION
#define SDUMC_VERSION "unknown"
#endif

/* The loss terms, their MODEL.md names and one line each. */
typedef struct {
    const char *name, *color, *what;
} term_info;
static const term_info terms[7] = {
    {"full", "#1f77b4", "MSE(y0, y): prediction error of the complete flow (audio, real text, video)"},
    {"miss", "#ff7f0e", "MSE(y1, y): prediction error of the text-missing flow (simulated text)"},
    {"tf", "#2ca02c", "RMSE(q1, stopgrad q0): text-query distillation, the student's text query view pulled to the teacher's"},
    {"tq", "#d62728", "RMSE(c1, stopgrad c0): text cross-attention distillation, the student's text cross features pulled to the teacher's"},
    {"f", "#9467bd", "RMSE(z1, z0): fused-representation alignment of the two flows (gradient into both)"},
    {"rnc", "#8c564b", "Rank-N-Contrast on [r0; r1] with labels [y; y]: representations ordered by label distance"},
    {"total", "#000000", "the weighted sum of the terms above, which Adam minimises"},
};

static double term_value(const sd_epoch_record *r, int k) {
    const double v[7] = {r->loss.full, r->loss.miss, r->loss.tf, r->loss.tq, r->loss.f, r->loss.rnc, r->loss.total};
    return v[k];
}

static double term_weight(const sd_loss_weights *w, int k) {
    const double v[7] = {w->full, w->miss, w->tf, w->tq, w->f, w->rnc, 1.0};
    return v[k];
}

/* A line chart over epochs (x = 1-based epoch) of the given per-epoch values. */
typedef struct {
    double x[1024], y[8][1024];
    sd_chart_series s[8];
    int n;
} epoch_series;

static void add_series(epoch_series *es, const sd_report_input *in, const char *name, const char *color, int dashed,
                       double (*get)(const sd_epoch_record *, int), int arg) {
    int k = es->n++, n = in->n_epochs < 1024 ? in->n_epochs : 1024;
    for (int e = 0; e < n; e++) {
        es->x[e] = in->history[e].epoch + 1;
        es->y[k][e] = get(&in->history[e], arg);
    }
    es->s[k] = (sd_chart_series){name, color, es->x, es->y[k], NULL, NULL, n, dashed};
}

/* width: of the viewBox (the page scales it to its column), so text keeps a readable size. */
static void epoch_chart(sd_strbuf *o, const sd_report_input *in, epoch_series *es, const char *title, const char *ylabel,
                        double ref, const char *ref_label, double width) {
    char marker[48];
    snprintf(marker, sizeof marker, "selected (%d)", in->selected_epoch + 1);
    sd_chart c = {title, "epoch", ylabel, width, 300, es->s, es->n, 1, in->selected_epoch + 1.0, marker, ref, ref_label, 0};
    sd_svg_line_chart(o, &c);
}

static double mae_value(const sd_epoch_record *r, int which) {
    const sd_metrics *m[6] = {&r->valid_full, &r->valid_miss, &r->train_full,
                              &r->train_miss, &r->pass_full, &r->pass_miss};
    return m[which]->n ? m[which]->mae : NAN;
}

/* Predicted versus true on [-3.5, 3.5]^2 with the diagonal. */
static void scatter(sd_strbuf *o, const char *title, const float *y, const float *p, int64_t n, const char *color) {
    const double S = 320, m = 40, lo = -3.5, hi = 3.5;
#define SX(v) (m + (S - 2 * m) * (fmin(fmax((v), lo), hi) - lo) / (hi - lo))
#define SY(v) (S - m - (S - 2 * m) * (fmin(fmax((v), lo), hi) - lo) / (hi - lo))
    sd_strbuf_printf(o, "<figure class='scatter'><svg viewBox='0 0 %.0f %.0f' role='img' aria-label='%s'>", S, S, title);
    sd_strbuf_printf(o, "<text x='%.0f' y='18' class='title'>%s</text>", m, title);
    for (int k = -3; k <= 3; k++) {
        sd_strbuf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", SX(k), SY(lo), SX(k), SY(hi));
        sd_strbuf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", SX(lo), SY(k), SX(hi), SY(k));
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%d</text>", SX(k), S - m + 16, k);
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%d</text>", m - 6, SY(k) + 4, k);
    }
    sd_strbuf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='diag'/>", SX(lo), SY(lo), SX(hi), SY(hi));
    for (int64_t i = 0; i < n; i++)
        sd_strbuf_printf(o, "<circle cx='%.1f' cy='%.1f' r='2.2' fill='%s' fill-opacity='0.45'/>", SX(y[i]), SY(p[i]), color);
    sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='axis' text-anchor='middle'>true label</text>", S / 2, S - 6);
    sd_strbuf_printf(o, "<text x='12' y='%.1f' class='axis' transform='rotate(-90 12 %.1f)' text-anchor='middle'>prediction</text>",
                       S / 2, S / 2);
    sd_strbuf_puts(o, "</svg></figure>\n");
#undef SX
#undef SY
}

static void metrics_row(sd_strbuf *o, const char *flow, const sd_metrics *m) {
    char corr[32];
    if (m->corr_defined)
        snprintf(corr, sizeof corr, "%.4f", m->corr);
    else
        snprintf(corr, sizeof corr, "undefined");
    sd_strbuf_printf(o, "<tr><td>%s</td><td>%.4f</td><td>%.4f</td><td>%s</td>", flow, m->mae, m->mse, corr);
    if (m->scheme == SD_METRICS_MOSI)
        sd_strbuf_printf(o, "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>", m->acc7,
                           m->acc5, m->acc2_has0, m->f1_has0, m->acc2_non0, m->f1_non0);
    if (m->scheme == SD_METRICS_SIMS)
        sd_strbuf_printf(o, "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>", m->acc2, m->acc3, m->acc5, m->f1);
    sd_strbuf_printf(o, "<td>%zu</td></tr>\n", m->n);
}

/* One configuration row; marked when the value differs from the preset's. */
static void config_row(sd_strbuf *o, const char *name, const char *value, const char *preset_value) {
    int changed = preset_value && strcmp(value, preset_value);
    sd_strbuf_printf(o, "<tr%s><td>%s</td><td>", changed ? " class='changed'" : "", name);
    sd_html_escape(o, value);
    sd_strbuf_puts(o, "</td><td>");
    if (changed) {
        sd_strbuf_puts(o, "set (preset: ");
        sd_html_escape(o, preset_value);
        sd_strbuf_puts(o, ")");
    }
    sd_strbuf_puts(o, "</td></tr>\n");
}

#define ROWF(name, fmt, field)                                                      \
    do {                                                                            \
        snprintf(a, sizeof a, fmt, field(o));                                       \
        snprintf(b, sizeof b, fmt, field((&def)));                                  \
        config_row(out, name, a, b);                                                \
    } while (0)

static void config_section(sd_strbuf *out, const sd_report_input *in) {
    const sd_train_options *o = in->options;
    char a[1200], b[1200];
    sd_strbuf_puts(out, "<h2>Configuration</h2>\n<table class='config'><tr><th>setting</th><th>value</th><th></th></tr>\n");
    if (o) {
        sd_train_options def = sd_train_default_options();
        sd_error ignored;
        sd_train_apply_preset(&def, o->model.preset, &ignored);
        config_row(out, "preset", o->model.preset, NULL);
#define F_EPOCHS(x) (x)->epochs
#define F_BATCH(x) (x)->batch_size
#define F_LR(x) (double)(x)->lr
#define F_WD(x) (double)(x)->weight_decay
#define F_PMLP(x) (double)(x)->model.p_mlp
#define F_PATT(x) (double)(x)->model.p_att
#define F_SEED(x) (unsigned long long)(x)->seed
#define F_SHUFFLE(x) (x)->shuffle ? "on" : "off"
#define F_SELECT(x) sd_select_name((x)->select)
#define F_WFULL(x) (double)(x)->w.full
#define F_WMISS(x) (double)(x)->w.miss
#define F_WTF(x) (double)(x)->w.tf
#define F_WTQ(x) (double)(x)->w.tq
#define F_WF(x) (double)(x)->w.f
#define F_WRNC(x) (double)(x)->w.rnc
#define F_FRAMES(x) (x)->max_frames[0]
#define F_EVALB(x) (x)->eval_batch_size
        ROWF("epochs", "%d", F_EPOCHS);
        ROWF("batch size", "%d", F_BATCH);
        ROWF("learning rate", "%.4g", F_LR);
        ROWF("weight decay", "%.4g", F_WD);
        ROWF("MLP dropout", "%.4g", F_PMLP);
        ROWF("attention dropout", "%.4g", F_PATT);
        ROWF("seed", "%llu", F_SEED);
        ROWF("shuffle", "%s", F_SHUFFLE);
        ROWF("selection (--select)", "%s", F_SELECT);
        ROWF("w_full", "%.4g", F_WFULL);
        ROWF("w_miss", "%.4g", F_WMISS);
        ROWF("w_tf", "%.4g", F_WTF);
        ROWF("w_tq", "%.4g", F_WTQ);
        ROWF("w_f", "%.4g", F_WF);
        ROWF("w_rnc", "%.4g", F_WRNC);
        ROWF("max frames (0 = none)", "%d", F_FRAMES);
        ROWF("evaluation batch", "%d", F_EVALB);
        const sd_model_config *c = in->model_config ? in->model_config : &o->model;
        snprintf(a, sizeof a, "%s", c->mia ? "on" : "off");
        config_row(out, "MIA", a, def.model.mia ? "on" : "off");
        snprintf(a, sizeof a, "%s", c->mask ? "on" : "off");
        config_row(out, "mask padded frames", a, def.model.mask ? "on" : "off");
        snprintf(a, sizeof a, "%d", c->hidden);
        snprintf(b, sizeof b, "%d", def.model.hidden);
        config_row(out, "hidden (general dim)", a, b);
        if (o->init) config_row(out, "initial weights (--init)", o->init, NULL);
        if (o->resume) config_row(out, "resumed from", o->resume, NULL);
        if (o->cache) config_row(out, "feature cache", "yes", NULL);
    }
    if (in->ds) {
        const sd_dataset *ds = in->ds;
        config_row(out, "data folder", sd_dataset_dir(ds), NULL);
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            snprintf(a, sizeof a, "%s (dim %d)", sd_dataset_folder(ds, m), sd_dataset_dim(ds, m));
            snprintf(b, sizeof b, "%s features", sd_modality_name(m));
            if (m != SD_MOD_SIM || sd_dataset_has_sim(ds)) config_row(out, b, a, NULL);
        }
        snprintf(a, sizeof a, "%lld train (%lld of them measured in evaluation mode each epoch), %lld valid, %lld test",
                 (long long)sd_dataset_size(ds, SD_SPLIT_TRAIN), (long long)in->n_train_subset,
                 (long long)sd_dataset_size(ds, SD_SPLIT_VALID), (long long)sd_dataset_size(ds, SD_SPLIT_TEST));
        config_row(out, "utterances", a, NULL);
    }
    config_row(out, "sdumc version", SDUMC_VERSION, NULL);
    snprintf(a, sizeof a, "%d", sd_threads_get());
    config_row(out, "threads", a, NULL);
    double tr = 0, ev = 0;
    for (int e = 0; e < in->n_epochs; e++) tr += in->history[e].seconds, ev += in->history[e].eval_seconds;
    snprintf(a, sizeof a, "%.1f s over %d epochs (training %.1f s, evaluation %.1f s)", tr + ev, in->n_epochs, tr, ev);
    config_row(out, "total time", a, NULL);
    sd_strbuf_puts(out, "</table>\n");
}

sd_status sd_report_write(const char *path, const sd_report_input *in, sd_error *err) {
    if (in->n_epochs < 1) return sd_fail(err, SD_E_ARG, "%s: no epoch to report", path);
    sd_strbuf o;
    memset(&o, 0, sizeof o);
    sd_strbuf_puts(&o,
                     "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>sdumc training report</title>\n"
                     "<style>body{font-family:sans-serif;margin:1.5em auto;color:#222;padding:0 1.5em;max-width:1600px}"
                     "figure{margin:0}svg{width:100%;height:auto;background:#fff;border:1px solid #ddd}"
                     ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}"
                     ".scatters{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,460px));gap:12px}"
                     ".title{font-size:14px;font-weight:bold}.tick{font-size:11px;fill:#555}"
                     ".axis{font-size:12px;fill:#333}.legend{font-size:12px}.grid{stroke:#eee}.diag{stroke:#999;stroke-dasharray:4 3}"
                     ".marker{stroke:#c00;stroke-dasharray:5 4;stroke-width:1.5}.ref{stroke:#555;stroke-dasharray:2 3}"
                     "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                     "th{background:#f4f4f4}td:first-child{text-align:left}.config td{text-align:left}"
                     ".changed td{background:#fff6d5}.warn{background:#fde8e8;border:1px solid #e99;padding:0.6em 1em}"
                     "dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}dd{margin:0}"
                     "</style></head><body>\n<h1>sdumc training report</h1>\n<p>Model: <code>");
    sd_html_escape(&o, in->model_path);
    const sd_epoch_record *sel = NULL;
    for (int e = 0; e < in->n_epochs; e++)
        if (in->history[e].epoch == in->selected_epoch) sel = &in->history[e];
    const int last = in->history[in->n_epochs - 1].epoch;
    sd_strbuf_printf(&o, "</code>. Epochs run: %d. Selected epoch: <b>%d</b> (", in->n_epochs, in->selected_epoch + 1);
    sd_html_escape(&o, in->selection);
    sd_strbuf_puts(&o, ", on the validation split; the test split is not used in training).</p>\n");
    if (in->selected_epoch == last && in->n_epochs > 1 && !(in->options && in->options->select == SD_SELECT_LAST))
        sd_strbuf_printf(&o, "<p class='warn'><b>Warning:</b> the selected epoch is the last one (%d): the validation "
                               "criterion was still improving when training stopped, so more epochs (or a larger learning "
                               "rate) may give a better model.</p>\n", last + 1);
    if (in->note && *in->note) {
        sd_strbuf_puts(&o, "<p>");
        sd_html_escape(&o, in->note);
        sd_strbuf_puts(&o, "</p>\n");
    }
    if (sel) {
        sd_strbuf_puts(&o, "<h2>Validation metrics of the selected epoch</h2>\n<table><tr><th>flow</th><th>MAE</th>"
                             "<th>MSE</th><th>Corr</th>");
        if (sel->valid_full.scheme == SD_METRICS_MOSI)
            sd_strbuf_puts(&o, "<th>Acc-7</th><th>Acc-5</th><th>Acc-2 (has0)</th><th>F1 (has0)</th>"
                                 "<th>Acc-2 (non0)</th><th>F1 (non0)</th>");
        if (sel->valid_full.scheme == SD_METRICS_SIMS)
            sd_strbuf_puts(&o, "<th>Acc-2</th><th>Acc-3</th><th>Acc-5</th><th>F1</th>");
        sd_strbuf_puts(&o, "<th>n</th></tr>\n");
        metrics_row(&o, "complete (real text)", &sel->valid_full);
        metrics_row(&o, "text missing (simulated text)", &sel->valid_miss);
        if (sel->train_full.n) {
            metrics_row(&o, "training subset, complete", &sel->train_full);
            metrics_row(&o, "training subset, text missing", &sel->train_miss);
        }
        if (sel->pass_full.n) {
            metrics_row(&o, "training pass, complete", &sel->pass_full);
            if (sel->pass_miss.n) metrics_row(&o, "training pass, text missing", &sel->pass_miss);
        }
        sd_strbuf_puts(&o, "</table>\n");
    }
    sd_strbuf_puts(&o, "<h2>Validation and training MAE</h2>\n<div class='charts'>\n");
    epoch_series *es = calloc(1, sizeof *es);
    if (!es) {
        sd_strbuf_free(&o);
        return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    }
    add_series(es, in, "valid, complete flow", "#1f77b4", 0, mae_value, 0);
    add_series(es, in, "valid, text-missing flow", "#ff7f0e", 0, mae_value, 1);
    /* The training curve: the evaluation-mode subset when the run measured one, else the training
     * pass's own predictions. */
    const sd_epoch_record *lastr = &in->history[in->n_epochs - 1];
    const int subset = lastr->train_full.n > 0, pass = !subset && lastr->pass_full.n > 0;
    if (subset || pass) {
        add_series(es, in, "train, complete flow", "#1f77b4", 1, mae_value, subset ? 2 : 4);
        if (subset || lastr->pass_miss.n) add_series(es, in, "train, text-missing flow", "#ff7f0e", 1, mae_value, subset ? 3 : 5);
    }
    double ref = in->ds ? sd_train_mean_mae(in->ds, NULL) : NAN;
    epoch_chart(&o, in, es, "MAE per epoch", "MAE", ref, "predicting the training mean", 1100);
    sd_strbuf_puts(&o, "</div>\n<p>Solid: validation split (evaluation mode). ");
    if (subset)
        sd_strbuf_puts(&o, "Dashed: a fixed subset of the training split measured the same way (evaluation mode, no "
                             "dropout), so the gap between them is over-fitting. ");
    if (pass)
        sd_strbuf_puts(&o, "Dashed: the training split as the epoch's training steps predicted it (training mode, with "
                             "dropout, the parameters changing through the epoch; the training metrics MMSA logs), so it usually "
                             "lies above what the model scores on the same utterances in evaluation mode "
                             "(<code>--train-subset N</code> measures that). ");
    sd_strbuf_puts(&o, "Dotted line: the validation MAE of always predicting the mean training label, the floor a model "
                         "must beat.</p>\n");
    sd_strbuf_puts(&o, "<h2>Loss terms (unweighted, mean over the epoch's batches)</h2>\n<div class='charts'>\n");
    /* Prediction and distillation terms share a scale; RnC (a log-sum over the batch) and the
     * weighted total get their own axes. Terms with weight 0 are not computed and not drawn. */
    memset(es, 0, sizeof *es);
    for (int k = 0; k < 5; k++)
        if (!in->options || term_weight(&in->options->w, k) > 0)
            add_series(es, in, terms[k].name, terms[k].color, 0, term_value, k);
    if (es->n) epoch_chart(&o, in, es, "Prediction and distillation terms", "loss", NAN, NULL, 520);
    memset(es, 0, sizeof *es);
    if (!in->options || term_weight(&in->options->w, 5) > 0) {
        add_series(es, in, terms[5].name, terms[5].color, 0, term_value, 5);
        epoch_chart(&o, in, es, "Rank-N-Contrast (own axis)", "loss", NAN, NULL, 520);
    }
    memset(es, 0, sizeof *es);
    add_series(es, in, terms[6].name, terms[6].color, 0, term_value, 6);
    epoch_chart(&o, in, es, "Weighted total", "loss", NAN, NULL, 520);
    free(es);
    sd_strbuf_puts(&o, "</div>\n<dl>\n");
    for (int k = 0; k < 7; k++) {
        sd_strbuf_printf(&o, "<dt style='color:%s'>%s</dt><dd>%s", terms[k].color, terms[k].name, terms[k].what);
        if (in->options && k < 6) sd_strbuf_printf(&o, " (weight w_%s = %.4g%s)", terms[k].name,
                                                     term_weight(&in->options->w, k),
                                                     term_weight(&in->options->w, k) > 0 ? "" : ": not computed");
        sd_strbuf_puts(&o, "</dd>\n");
    }
    sd_strbuf_puts(&o, "</dl>\n<h2>Selected model on the validation split</h2>\n<div class='scatters'>\n");
    scatter(&o, "Complete flow", in->label, in->pred_full, in->n_valid, "#1f77b4");
    scatter(&o, "Text-missing flow", in->label, in->pred_missing, in->n_valid, "#ff7f0e");
    sd_strbuf_puts(&o, "</div>\n");
    config_section(&o, in);
    sd_strbuf_puts(&o, "<h2>Per epoch</h2>\n<table><tr><th>epoch</th><th>lr</th><th>loss</th><th>valid MAE complete</th>"
                         "<th>valid MAE missing</th><th>train-subset MAE complete</th><th>train-subset MAE missing</th>"
                         "<th>training-pass MAE complete</th><th>training-pass MAE missing</th><th>seconds</th>"
                         "<th>evaluation s</th><th>samples/s</th></tr>\n");
    for (int e = 0; e < in->n_epochs; e++) {
        const sd_epoch_record *r = &in->history[e];
        sd_strbuf_printf(&o, "<tr%s><td>%d</td><td>%.3g</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>",
                           r->epoch == in->selected_epoch ? " style='font-weight:bold'" : "", r->epoch + 1, r->lr,
                           r->loss.total, r->valid_full.mae, r->valid_miss.mae);
        const sd_metrics *train_cells[4] = {&r->train_full, &r->train_miss, &r->pass_full, &r->pass_miss};
        for (int k = 0; k < 4; k++) /* "-" where the run did not measure it */
            if (train_cells[k]->n)
                sd_strbuf_printf(&o, "<td>%.4f</td>", train_cells[k]->mae);
            else
                sd_strbuf_puts(&o, "<td>-</td>");
        sd_strbuf_printf(&o, "<td>%.1f</td><td>%.1f</td><td>%.0f</td></tr>\n", r->seconds, r->eval_seconds, r->samples_per_s);
    }
    sd_strbuf_puts(&o, "</table>\n</body></html>\n");
    sd_status st = o.failed ? sd_fail(err, SD_E_NOMEM, "%s: out of memory", path)
                            : sd_atomic_write_file(path, o.data, o.len, err);
    sd_strbuf_free(&o);
    return st;
}
