/* HTML + inline SVG training report. Charts are drawn in a fixed coordinate box and scaled by
 * the browser; every number printed comes from the history or the predictions. */
#include "train/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/json.h"

#define W 760.0
#define H 300.0
#define ML 60.0 /* margins: left, right, top, bottom */
#define MR 160.0 /* room for the legend */
#define MT 30.0
#define MB 40.0

typedef double (*value_fn)(const sd_epoch_record *r);

static double v_total(const sd_epoch_record *r) { return r->loss.total; }
static double v_full(const sd_epoch_record *r) { return r->loss.full; }
static double v_miss(const sd_epoch_record *r) { return r->loss.miss; }
static double v_tf(const sd_epoch_record *r) { return r->loss.tf; }
static double v_tq(const sd_epoch_record *r) { return r->loss.tq; }
static double v_f(const sd_epoch_record *r) { return r->loss.f; }
static double v_rnc(const sd_epoch_record *r) { return r->loss.rnc; }
static double v_mae_full(const sd_epoch_record *r) { return r->valid_full.mae; }
static double v_mae_miss(const sd_epoch_record *r) { return r->valid_miss.mae; }

typedef struct {
    const char *name, *color;
    value_fn get;
} series;

/* Five value ticks with grid lines on the y axis. */
static void value_ticks(sd_json_buf *o, double lo, double hi, double x0, double x1, double y0, double y1) {
    for (int k = 0; k <= 4; k++) {
        double v = lo + (hi - lo) * k / 4.0, y = y1 - (y1 - y0) * k / 4.0;
        sd_json_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", x0, y, x1, y);
        sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%.3g</text>", x0 - 6, y + 4, v);
    }
}

/* Whole-epoch ticks (1-based labels), at most about ten. */
static void epoch_ticks(sd_json_buf *o, int first, int last, double x0, double x1, double y1) {
    int span = last > first ? last - first : 1, step = (span + 9) / 10;
    for (int e = first; e <= last; e += step) {
        double x = x0 + (x1 - x0) * (double)(e - first) / (double)span;
        sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%d</text>", x, y1 + 16, e + 1);
    }
}

/* A line chart of per-epoch values; the selected epoch gets a dashed marker. */
static void line_chart(sd_json_buf *o, const char *title, const char *ylabel, const sd_report_input *in,
                       const series *s, int ns) {
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int e = 0; e < in->n_epochs; e++) {
            double v = s[k].get(&in->history[e]);
            if (isfinite(v)) {
                lo = fmin(lo, v);
                hi = fmax(hi, v);
            }
        }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) hi = lo + 1e-3 + fabs(lo) * 0.05, lo -= 1e-3 + fabs(lo) * 0.05;
    double pad = 0.05 * (hi - lo);
    lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad; /* losses and MAE never go below 0 */
    hi += pad;
    const double x0 = ML, x1 = W - MR, y0 = MT, y1 = H - MB;
    int e_first = in->history[0].epoch, e_last = in->history[in->n_epochs - 1].epoch;
    double span = e_last > e_first ? (double)(e_last - e_first) : 1.0;
#define XPOS(ep) (x0 + (x1 - x0) * ((double)((ep) - e_first)) / span)
#define YPOS(v) (y1 - (y1 - y0) * ((v) - lo) / (hi - lo))
    sd_json_buf_printf(o, "<figure><svg viewBox='0 0 %.0f %.0f' role='img' aria-label='", W, H);
    sd_json_buf_printf(o, "%s'><text x='%.0f' y='18' class='title'>%s</text>", title, ML, title);
    value_ticks(o, lo, hi, x0, x1, y0, y1);
    epoch_ticks(o, e_first, e_last, x0, x1, y1);
    sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='axis' text-anchor='middle'>epoch</text>", (x0 + x1) / 2, H - 8);
    sd_json_buf_printf(o, "<text x='14' y='%.1f' class='axis' transform='rotate(-90 14 %.1f)' text-anchor='middle'>%s</text>",
                       (y0 + y1) / 2, (y0 + y1) / 2, ylabel);
    if (in->selected_epoch >= e_first && in->selected_epoch <= e_last) {
        double x = XPOS(in->selected_epoch);
        sd_json_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='selected'/>", x, y0, x, y1);
        sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>selected (%d)</text>", x,
                           y0 - 4, in->selected_epoch + 1);
    }
    for (int k = 0; k < ns; k++) {
        sd_json_buf_printf(o, "<polyline fill='none' stroke='%s' stroke-width='2' points='", s[k].color);
        for (int e = 0; e < in->n_epochs; e++) {
            double v = s[k].get(&in->history[e]);
            if (isfinite(v)) sd_json_buf_printf(o, "%.1f,%.1f ", XPOS(in->history[e].epoch), YPOS(v));
        }
        sd_json_buf_puts(o, "'/>");
        for (int e = 0; e < in->n_epochs; e++) {
            double v = s[k].get(&in->history[e]);
            if (isfinite(v))
                sd_json_buf_printf(o, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'><title>%s, epoch %d: %.5g</title></circle>",
                                   XPOS(in->history[e].epoch), YPOS(v), s[k].color, s[k].name, in->history[e].epoch + 1, v);
        }
        sd_json_buf_printf(o, "<rect x='%.1f' y='%.1f' width='10' height='10' fill='%s'/>", x1 + 14, y0 + 4 + 16.0 * k, s[k].color);
        sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='legend'>%s</text>", x1 + 29, y0 + 13 + 16.0 * k, s[k].name);
    }
    sd_json_buf_puts(o, "</svg></figure>\n");
#undef XPOS
#undef YPOS
}

/* Predicted versus true on [-3.5, 3.5]^2 with the diagonal. */
static void scatter(sd_json_buf *o, const char *title, const float *y, const float *p, int64_t n, const char *color) {
    const double S = 320, m = 40, lo = -3.5, hi = 3.5;
#define SX(v) (m + (S - 2 * m) * (fmin(fmax((v), lo), hi) - lo) / (hi - lo))
#define SY(v) (S - m - (S - 2 * m) * (fmin(fmax((v), lo), hi) - lo) / (hi - lo))
    sd_json_buf_printf(o, "<figure class='scatter'><svg viewBox='0 0 %.0f %.0f' role='img' aria-label='%s'>", S, S, title);
    sd_json_buf_printf(o, "<text x='%.0f' y='18' class='title'>%s</text>", m, title);
    for (int k = -3; k <= 3; k++) {
        sd_json_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", SX(k), SY(lo), SX(k), SY(hi));
        sd_json_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", SX(lo), SY(k), SX(hi), SY(k));
        sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%d</text>", SX(k), S - m + 16, k);
        sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%d</text>", m - 6, SY(k) + 4, k);
    }
    sd_json_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='diag'/>", SX(lo), SY(lo), SX(hi), SY(hi));
    for (int64_t i = 0; i < n; i++)
        sd_json_buf_printf(o, "<circle cx='%.1f' cy='%.1f' r='2.2' fill='%s' fill-opacity='0.45'/>", SX(y[i]), SY(p[i]), color);
    sd_json_buf_printf(o, "<text x='%.1f' y='%.1f' class='axis' text-anchor='middle'>true label</text>", S / 2, S - 6);
    sd_json_buf_printf(o, "<text x='12' y='%.1f' class='axis' transform='rotate(-90 12 %.1f)' text-anchor='middle'>prediction</text>",
                       S / 2, S / 2);
    sd_json_buf_puts(o, "</svg></figure>\n");
#undef SX
#undef SY
}

static void escape_html(sd_json_buf *o, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': sd_json_buf_puts(o, "&lt;"); break;
        case '>': sd_json_buf_puts(o, "&gt;"); break;
        case '&': sd_json_buf_puts(o, "&amp;"); break;
        case '\'': sd_json_buf_puts(o, "&#39;"); break;
        case '"': sd_json_buf_puts(o, "&quot;"); break;
        default: sd_json_buf_append(o, s, 1);
        }
    }
}

static void metrics_row(sd_json_buf *o, const char *flow, const sd_metrics *m) {
    char corr[32];
    if (m->corr_defined)
        snprintf(corr, sizeof corr, "%.4f", m->corr);
    else
        snprintf(corr, sizeof corr, "undefined");
    sd_json_buf_printf(o, "<tr><td>%s</td><td>%.4f</td><td>%.4f</td><td>%s</td>", flow, m->mae, m->mse, corr);
    if (m->scheme == SD_METRICS_MOSI)
        sd_json_buf_printf(o, "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>", m->acc7,
                           m->acc5, m->acc2_has0, m->f1_has0, m->acc2_non0, m->f1_non0);
    if (m->scheme == SD_METRICS_SIMS)
        sd_json_buf_printf(o, "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>", m->acc2, m->acc3, m->acc5, m->f1);
    sd_json_buf_printf(o, "<td>%zu</td></tr>\n", m->n);
}

sd_status sd_report_write(const char *path, const sd_report_input *in, sd_error *err) {
    if (in->n_epochs < 1) return sd_fail(err, SD_E_ARG, "%s: no epoch to report", path);
    sd_json_buf o;
    memset(&o, 0, sizeof o);
    sd_json_buf_puts(&o,
                     "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>sdumc training report</title>\n"
                     "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222;padding:0 1em}"
                     "figure{display:inline-block;margin:0.5em}svg{width:760px;max-width:100%;background:#fff;border:1px solid #ddd}"
                     ".scatter svg{width:320px}.title{font-size:14px;font-weight:bold}.tick{font-size:11px;fill:#555}"
                     ".axis{font-size:12px;fill:#333}.legend{font-size:12px}.grid{stroke:#eee}.diag{stroke:#999;stroke-dasharray:4 3}"
                     ".selected{stroke:#c00;stroke-dasharray:5 4;stroke-width:1.5}table{border-collapse:collapse;margin:1em 0}"
                     "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
                     "td:first-child{text-align:left}</style></head><body>\n<h1>sdumc training report</h1>\n<p>Model: <code>");
    escape_html(&o, in->model_path);
    const sd_epoch_record *sel = NULL;
    for (int e = 0; e < in->n_epochs; e++)
        if (in->history[e].epoch == in->selected_epoch) sel = &in->history[e];
    sd_json_buf_printf(&o, "</code>. Epochs run: %d. Selected epoch: <b>%d</b> (", in->n_epochs, in->selected_epoch + 1);
    escape_html(&o, in->selection);
    sd_json_buf_puts(&o, ", on the validation split; the test split is not used in training).</p>\n");
    if (in->note && *in->note) {
        sd_json_buf_puts(&o, "<p>");
        escape_html(&o, in->note);
        sd_json_buf_puts(&o, "</p>\n");
    }
    if (sel) {
        sd_json_buf_puts(&o, "<h2>Validation metrics of the selected epoch</h2>\n<table><tr><th>flow</th><th>MAE</th>"
                             "<th>MSE</th><th>Corr</th>");
        if (sel->valid_full.scheme == SD_METRICS_MOSI)
            sd_json_buf_puts(&o, "<th>Acc-7</th><th>Acc-5</th><th>Acc-2 (has0)</th><th>F1 (has0)</th>"
                                 "<th>Acc-2 (non0)</th><th>F1 (non0)</th>");
        if (sel->valid_full.scheme == SD_METRICS_SIMS)
            sd_json_buf_puts(&o, "<th>Acc-2</th><th>Acc-3</th><th>Acc-5</th><th>F1</th>");
        sd_json_buf_puts(&o, "<th>n</th></tr>\n");
        metrics_row(&o, "complete (real text)", &sel->valid_full);
        metrics_row(&o, "text missing (simulated text)", &sel->valid_miss);
        sd_json_buf_puts(&o, "</table>\n");
    }
    sd_json_buf_puts(&o, "<h2>Training</h2>\n");
    series losses[] = {{"total", "#000000", v_total}, {"full (MSE)", "#1f77b4", v_full}, {"miss (MSE)", "#ff7f0e", v_miss},
                       {"tf (RMSE)", "#2ca02c", v_tf},  {"tq (RMSE)", "#d62728", v_tq},  {"f (RMSE)", "#9467bd", v_f},
                       {"RnC", "#8c564b", v_rnc}};
    line_chart(&o, "Loss terms (unweighted, mean over the epoch)", "loss", in, losses, 7);
    series maes[] = {{"complete flow", "#1f77b4", v_mae_full}, {"text-missing flow", "#ff7f0e", v_mae_miss}};
    line_chart(&o, "Validation MAE per epoch", "MAE", in, maes, 2);
    sd_json_buf_puts(&o, "<h2>Selected model on the validation split</h2>\n");
    scatter(&o, "Complete flow", in->label, in->pred_full, in->n_valid, "#1f77b4");
    scatter(&o, "Text-missing flow", in->label, in->pred_missing, in->n_valid, "#ff7f0e");
    sd_json_buf_puts(&o, "<h2>Per epoch</h2>\n<table><tr><th>epoch</th><th>lr</th><th>loss</th><th>valid MAE complete</th>"
                         "<th>valid MAE missing</th><th>seconds</th><th>samples/s</th></tr>\n");
    for (int e = 0; e < in->n_epochs; e++) {
        const sd_epoch_record *r = &in->history[e];
        sd_json_buf_printf(&o, "<tr%s><td>%d</td><td>%.3g</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.1f</td><td>%.0f</td></tr>\n",
                           r->epoch == in->selected_epoch ? " style='font-weight:bold'" : "", r->epoch + 1, r->lr,
                           r->loss.total, r->valid_full.mae, r->valid_miss.mae, r->seconds, r->samples_per_s);
    }
    sd_json_buf_puts(&o, "</table>\n</body></html>\n");
    sd_status st = o.failed ? sd_fail(err, SD_E_NOMEM, "%s: out of memory", path)
                            : sd_atomic_write_file(path, o.data, o.len, err);
    sd_json_buf_free(&o);
    return st;
}
