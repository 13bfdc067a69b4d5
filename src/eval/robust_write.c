/* The robustness outputs: results.csv (one row per model, condition and seed), summary.json
 * (mean and sd over seeds of the clean metrics, each sweep's mean over levels and AUILC, each
 * pattern) and the self-contained HTML report. Every file is written atomically. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/robust.h"
#include "eval/stats.h"
#include "io/atomic_file.h"
#include "io/csv.h"
#include "io/json.h"
#include "io/svg.h"

#ifndef SDUMC_VERSION
#define SDUMC_VERSION "unknown"
#endif

sd_status sd_robust_write_csv(const char *path, const sd_robust_result *r, sd_error *err) {
    sd_atomic_file af;
    sd_status st = sd_atomic_open(&af, path, err);
    if (st) return st;
    fprintf(af.f, "model,condition,target,flow,rate,seed," SD_METRICS_CSV_COLUMNS "\n");
    char target[32];
    for (int m = 0; m < r->n_models; m++)
        for (int c = 0; c < r->n_conditions; c++) {
            const sd_condition *cd = &r->conditions[c];
            sd_condition_target(cd, target, sizeof target);
            for (int s = 0; s < r->n_seeds; s++) {
                sd_csv_write_field(af.f, r->model_names[m]); /* a user's name: quoted when it needs it */
                fprintf(af.f, ",%s,%s,%s,", sd_condition_kind_name(cd->kind), target, sd_flow_name(cd->missing));
                if (cd->kind != SD_COND_CLEAN && cd->kind != SD_COND_PATTERN) fprintf(af.f, "%.6g", cd->level);
                fprintf(af.f, ",%llu,", (unsigned long long)r->seeds[s]);
                sd_metrics_write_csv_fields(af.f, sd_robust_at(r, m, c, s));
                fprintf(af.f, "\n");
            }
        }
    return sd_atomic_commit(&af, err);
}

/* ---- aggregation over seeds ---- */

typedef struct {
    double mean, sd;
    size_t n;
} stat;

/* A sweep: the consecutive conditions of one (flow, kind, target), levels ascending. */
typedef struct {
    int first, count;
} sweep;

static int is_sweep(const sd_condition *c) { return c->kind == SD_COND_MISSING || c->kind == SD_COND_DROP || c->kind == SD_COND_NOISE; }

static int same_sweep(const sd_condition *a, const sd_condition *b) {
    return a->kind == b->kind && a->slots == b->slots && a->missing == b->missing;
}

/* The sweeps of the plan, malloc'ed. */
static sweep *find_sweeps(const sd_robust_result *r, int *n) {
    sweep *w = malloc(sizeof *w * (size_t)(r->n_conditions + 1));
    int k = 0;
    for (int c = 0; w && c < r->n_conditions; c++) {
        if (!is_sweep(&r->conditions[c])) continue;
        if (k && same_sweep(&r->conditions[w[k - 1].first], &r->conditions[c]) && w[k - 1].first + w[k - 1].count == c)
            w[k - 1].count++;
        else
            w[k++] = (sweep){c, 1};
    }
    *n = k;
    return w;
}

static stat over_seeds(const double *v, int n) {
    stat s;
    sd_mean_sd(v, (size_t)n, &s.mean, &s.sd, &s.n);
    return s;
}

/* Metric k of one condition over seeds. */
static stat cond_stat(const sd_robust_result *r, int m, int c, int k) {
    double v[256];
    int n = r->n_seeds < 256 ? r->n_seeds : 256;
    for (int s = 0; s < n; s++) v[s] = sd_metric_value(sd_robust_at(r, m, c, s), k);
    return over_seeds(v, n);
}

/* Metric k of a sweep summarised per seed (auilc = 0: mean over levels; 1: AUILC), then over seeds. */
static stat sweep_stat(const sd_robust_result *r, int m, const sweep *w, int k, int auilc) {
    double v[256], rate[64], y[64];
    int n = r->n_seeds < 256 ? r->n_seeds : 256, L = w->count < 64 ? w->count : 64;
    for (int s = 0; s < n; s++) {
        double sum = 0;
        for (int l = 0; l < L; l++) {
            rate[l] = r->conditions[w->first + l].level;
            y[l] = sd_metric_value(sd_robust_at(r, m, w->first + l, s), k);
            sum += y[l];
        }
        v[s] = auilc ? sd_auilc(rate, y, (size_t)L) : sum / L;
    }
    return over_seeds(v, n);
}

static void json_num(sd_strbuf *o, double v) {
    if (isfinite(v))
        sd_strbuf_printf(o, "%.6g", v);
    else
        sd_strbuf_puts(o, "null");
}

static void json_stat(sd_strbuf *o, stat s) {
    sd_strbuf_puts(o, "{\"mean\": ");
    json_num(o, s.mean);
    sd_strbuf_puts(o, ", \"sd\": ");
    json_num(o, s.sd);
    sd_strbuf_printf(o, ", \"n\": %zu}", s.n);
}

/* {"mae": {...}, ...} for one condition (sw == NULL) or one sweep summary. */
static void json_metrics(sd_strbuf *o, const sd_robust_result *r, int m, int c, const sweep *sw, int auilc) {
    sd_strbuf_puts(o, "{");
    for (int k = 0; k < SD_METRIC_COUNT; k++) {
        sd_strbuf_printf(o, "%s\"%s\": ", k ? ", " : "", sd_metric_names[k]);
        json_stat(o, sw ? sweep_stat(r, m, sw, k, auilc) : cond_stat(r, m, c, k));
    }
    sd_strbuf_puts(o, "}");
}

static const char *pattern_text(const sd_condition *c) {
    if (c->slots & SD_SLOT_TEXT) return "real";
    if (!c->missing) return "zeros";
    return (c->slots & SD_SLOT_AUDIO) ? "simulated" : "zeros (simulated text comes from the absent audio)";
}

static sd_status write_buf(const char *path, sd_strbuf *o, sd_error *err) {
    sd_status st = o->failed ? sd_fail(err, SD_E_NOMEM, "%s: out of memory", path)
                             : sd_atomic_write_file(path, o->data ? o->data : "", o->len, err);
    sd_strbuf_free(o);
    return st;
}

sd_status sd_robust_write_summary(const char *path, const sd_robust_result *r, sd_error *err) {
    int nsw = 0;
    sweep *sw = find_sweeps(r, &nsw);
    if (!sw) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_strbuf o = {0};
    char target[32];
    sd_strbuf_printf(&o, "{\"sdumc_version\": \"%s\", \"split\": \"%s\", \"n\": %lld, \"seconds\": %.3f, \"seeds\": [",
                       SDUMC_VERSION, r->split, (long long)r->n, r->seconds);
    for (int s = 0; s < r->n_seeds; s++) sd_strbuf_printf(&o, "%s%llu", s ? ", " : "", (unsigned long long)r->seeds[s]);
    sd_strbuf_puts(&o, "],\n \"definitions\": {\"stat\": \"mean and sample standard deviation (n - 1) over seeds; "
                         "n counts the seeds with a defined value\", \"mean_over_levels\": \"per seed, the plain mean "
                         "of the metric over the sweep's levels\", \"auilc\": \"per seed, the trapezoid area under "
                         "the metric-versus-level curve divided by the level span (TFR-Net, EMT-DLFR)\", \"noise\": "
                         "\"x + level * std_d * N(0,1), std_d the population standard deviation of feature dimension "
                         "d over the real frames of the evaluated split\"},\n \"models\": [");
    for (int m = 0; m < r->n_models; m++) {
        sd_strbuf_printf(&o, "%s\n  {\"name\": ", m ? "," : "");
        sd_json_append_string(&o, r->model_names[m]);
        sd_strbuf_puts(&o, ", \"files\": [");
        for (int s = 0; s < r->n_seeds; s++) {
            if (s) sd_strbuf_puts(&o, ", ");
            sd_json_append_string(&o, r->files[(size_t)m * (size_t)r->n_seeds + (size_t)s]);
        }
        sd_strbuf_puts(&o, "],\n   \"clean\": {");
        int first = 1;
        for (int c = 0; c < r->n_conditions; c++) {
            if (r->conditions[c].kind != SD_COND_CLEAN) continue;
            sd_strbuf_printf(&o, "%s\"%s\": ", first ? "" : ", ", sd_flow_name(r->conditions[c].missing));
            json_metrics(&o, r, m, c, NULL, 0);
            first = 0;
        }
        sd_strbuf_puts(&o, "},\n   \"sweeps\": [");
        for (int w = 0; w < nsw; w++) {
            const sd_condition *cd = &r->conditions[sw[w].first];
            sd_condition_target(cd, target, sizeof target);
            sd_strbuf_printf(&o, "%s\n    {\"condition\": \"%s\", \"target\": \"%s\", \"flow\": \"%s\", \"levels\": [",
                               w ? "," : "", sd_condition_kind_name(cd->kind), target, sd_flow_name(cd->missing));
            for (int l = 0; l < sw[w].count; l++)
                sd_strbuf_printf(&o, "%s%.6g", l ? ", " : "", r->conditions[sw[w].first + l].level);
            sd_strbuf_puts(&o, "],\n     \"mean_over_levels\": ");
            json_metrics(&o, r, m, 0, &sw[w], 0);
            sd_strbuf_puts(&o, ",\n     \"auilc\": ");
            json_metrics(&o, r, m, 0, &sw[w], 1);
            sd_strbuf_puts(&o, "}");
        }
        sd_strbuf_puts(&o, "],\n   \"patterns\": [");
        first = 1;
        for (int c = 0; c < r->n_conditions; c++) {
            const sd_condition *cd = &r->conditions[c];
            if (cd->kind != SD_COND_PATTERN) continue;
            sd_condition_target(cd, target, sizeof target);
            sd_strbuf_printf(&o, "%s\n    {\"present\": \"%s\", \"flow\": \"%s\", \"text\": \"%s\", \"metrics\": ",
                               first ? "" : ",", target, sd_flow_name(cd->missing), pattern_text(cd));
            json_metrics(&o, r, m, c, NULL, 0);
            sd_strbuf_puts(&o, "}");
            first = 0;
        }
        sd_strbuf_puts(&o, "]}");
    }
    sd_strbuf_puts(&o, "\n]}\n");
    free(sw);
    return write_buf(path, &o, err);
}

/* ---- HTML ---- */

static const char *const palette[8] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
/* The metrics the report offers (indices into sd_metric_names). */
static const int report_metrics[6] = {0, 2, 3, 5, 7, 8};

static void cell_stat(sd_strbuf *o, stat s) {
    if (!isfinite(s.mean)) {
        sd_strbuf_puts(o, "<td>n/a</td>");
        return;
    }
    if (isfinite(s.sd))
        sd_strbuf_printf(o, "<td>%.4f &plusmn; %.4f</td>", s.mean, s.sd);
    else
        sd_strbuf_printf(o, "<td>%.4f</td>", s.mean);
}

static const char *kind_title(sd_condition_kind k) {
    switch (k) {
    case SD_COND_MISSING: return "Random frame missing (LNLN protocol: each real frame replaced by zeros with probability = rate)";
    case SD_COND_DROP: return "Dropped runs (MultiBench structured drop: a run of 3 frames zeroed from each frame with probability = rate)";
    case SD_COND_NOISE: return "Gaussian noise (level = standard deviations of each feature dimension over the split)";
    default: return "";
    }
}

static void html_summary_table(sd_strbuf *o, const sd_robust_result *r, const sweep *sw, int nsw, int k) {
    sd_strbuf_printf(o, "<h2>Summary (%s, mean &plusmn; sd over seeds)</h2>\n<table><tr><th>model</th><th>flow</th><th>clean</th>",
                       sd_metric_labels[k]);
    for (int w = 0; w < nsw; w++) {
        const sd_condition *cd = &r->conditions[sw[w].first];
        if (cd->missing || cd->slots != SD_SLOTS_ALL) continue;
        sd_strbuf_printf(o, "<th>%s, all: mean over levels</th><th>%s, all: AUILC</th>", sd_condition_kind_name(cd->kind),
                           sd_condition_kind_name(cd->kind));
    }
    sd_strbuf_puts(o, "</tr>\n");
    for (int m = 0; m < r->n_models; m++)
        for (int c = 0; c < r->n_conditions; c++) {
            const sd_condition *clean = &r->conditions[c];
            if (clean->kind != SD_COND_CLEAN) continue;
            sd_strbuf_puts(o, "<tr><td>");
            sd_html_escape(o, r->model_names[m]);
            sd_strbuf_printf(o, "</td><td>%s</td>", clean->missing ? "text-missing (simulated text)" : "complete (real text)");
            cell_stat(o, cond_stat(r, m, c, k));
            for (int w = 0; w < nsw; w++) {
                const sd_condition *cd = &r->conditions[sw[w].first];
                if (cd->missing || cd->slots != SD_SLOTS_ALL) continue; /* columns follow the complete flow's sweeps */
                const sweep *match = NULL;
                for (int v = 0; v < nsw; v++) {
                    const sd_condition *e = &r->conditions[sw[v].first];
                    if (e->kind == cd->kind && e->slots == cd->slots && e->missing == clean->missing) match = &sw[v];
                }
                if (match) {
                    cell_stat(o, sweep_stat(r, m, match, k, 0));
                    cell_stat(o, sweep_stat(r, m, match, k, 1));
                } else {
                    sd_strbuf_puts(o, "<td>-</td><td>-</td>");
                }
            }
            sd_strbuf_puts(o, "</tr>\n");
        }
    sd_strbuf_puts(o, "</table>\n");
}

/* One chart: metric k along a sweep, one line per model (mean over seeds), band mean +- sd. */
static void html_sweep_chart(sd_strbuf *o, const sd_robust_result *r, const sweep *w, int k) {
    const int L = w->count < 64 ? w->count : 64, M = r->n_models < 8 ? r->n_models : 8;
    double x[64], y[8][64], lo[8][64], hi[8][64];
    sd_chart_series se[8];
    for (int m = 0; m < M; m++) {
        for (int l = 0; l < L; l++) {
            x[l] = r->conditions[w->first + l].level;
            stat s = cond_stat(r, m, w->first + l, k);
            y[m][l] = s.mean;
            lo[m][l] = isfinite(s.sd) ? s.mean - s.sd : s.mean;
            hi[m][l] = isfinite(s.sd) ? s.mean + s.sd : s.mean;
        }
        se[m] = (sd_chart_series){r->model_names[m], palette[m], x, y[m], lo[m], hi[m], L, 0};
    }
    const sd_condition *cd = &r->conditions[w->first];
    char target[32], title[96];
    sd_condition_target(cd, target, sizeof target);
    snprintf(title, sizeof title, "%s: %s", target, cd->missing ? "text-missing flow" : "complete flow");
    sd_chart ch = {title, cd->kind == SD_COND_NOISE ? "noise level" : "rate", sd_metric_labels[k], 360, 250, se, M, 0,
                   NAN, NULL, NAN, NULL, 0};
    sd_svg_line_chart(o, &ch);
}

static void html_patterns(sd_strbuf *o, const sd_robust_result *r, int k) {
    char target[32];
    sd_strbuf_printf(o, "<h2>Whole-modality patterns (%s, mean &plusmn; sd over seeds)</h2>\n<table><tr><th>present</th><th>flow</th><th>text slot</th>",
                       sd_metric_labels[k]);
    for (int m = 0; m < r->n_models; m++) {
        sd_strbuf_puts(o, "<th>");
        sd_html_escape(o, r->model_names[m]);
        sd_strbuf_puts(o, "</th>");
    }
    sd_strbuf_puts(o, "</tr>\n");
    for (int c = 0; c < r->n_conditions; c++) {
        const sd_condition *cd = &r->conditions[c];
        if (cd->kind != SD_COND_PATTERN) continue;
        sd_condition_target(cd, target, sizeof target);
        sd_strbuf_printf(o, "<tr><td>%s</td><td>%s</td><td>%s</td>", target, cd->missing ? "text-missing" : "complete",
                           pattern_text(cd));
        for (int m = 0; m < r->n_models; m++) cell_stat(o, cond_stat(r, m, c, k));
        sd_strbuf_puts(o, "</tr>\n");
    }
    sd_strbuf_puts(o, "</table>\n");
}

sd_status sd_robust_write_html(const char *path, const sd_robust_result *r, sd_error *err) {
    int nsw = 0;
    sweep *sw = find_sweeps(r, &nsw);
    if (!sw) return sd_fail(err, SD_E_NOMEM, "out of memory");
    sd_strbuf o = {0};
    sd_strbuf_puts(&o, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>sdumc robustness report</title>\n"
                         "<script>window.sdErrors=[];window.addEventListener('error',function(e){window.sdErrors.push(String(e.message));"
                         "var d=document.getElementById('errors');if(d)d.textContent=window.sdErrors.join('\\n');});</script>\n<style>"
                         "body{font-family:sans-serif;margin:1.5em;color:#222}figure{margin:0}svg{width:100%;height:auto;background:#fff;"
                         "border:1px solid #ddd}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}"
                         ".title{font-size:13px;font-weight:bold}.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}"
                         ".legend{font-size:11px}.grid{stroke:#eee}.marker{stroke:#c00;stroke-dasharray:5 4}.ref{stroke:#777;stroke-dasharray:3 3}"
                         "table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                         "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.metric{display:none}#errors{color:#c00}");
    for (int i = 0; i < 6; i++)
        sd_strbuf_printf(&o, "body[data-metric='%s'] .metric[data-metric='%s']{display:block}", sd_metric_names[report_metrics[i]],
                           sd_metric_names[report_metrics[i]]);
    sd_strbuf_printf(&o, "</style></head><body data-metric='mae'>\n<h1>sdumc robustness report</h1>\n<div id='errors'></div>\n"
                           "<p>Split <b>%s</b>, %lld utterances; seeds ", r->split, (long long)r->n);
    for (int s = 0; s < r->n_seeds; s++) sd_strbuf_printf(&o, "%s%llu", s ? ", " : "", (unsigned long long)r->seeds[s]);
    sd_strbuf_printf(&o, "; %d conditions; evaluated in %.1f s by sdumc %s.</p>\n<ul>", r->n_conditions, r->seconds, SDUMC_VERSION);
    for (int m = 0; m < r->n_models; m++) {
        sd_strbuf_printf(&o, "<li><span style='color:%s'>&#9632;</span> <b>", palette[m % 8]);
        sd_html_escape(&o, r->model_names[m]);
        sd_strbuf_puts(&o, "</b>: ");
        for (int s = 0; s < r->n_seeds; s++) {
            if (s && !strcmp(r->files[(size_t)m * (size_t)r->n_seeds + (size_t)s], r->files[(size_t)m * (size_t)r->n_seeds])) continue;
            sd_strbuf_puts(&o, s ? ", <code>" : "<code>");
            sd_html_escape(&o, r->files[(size_t)m * (size_t)r->n_seeds + (size_t)s]);
            sd_strbuf_puts(&o, "</code>");
        }
        sd_strbuf_puts(&o, "</li>");
    }
    sd_strbuf_puts(&o, "</ul>\n<p>Metric: <select id='metric'>");
    for (int i = 0; i < 6; i++)
        sd_strbuf_printf(&o, "<option value='%s'>%s</option>", sd_metric_names[report_metrics[i]], sd_metric_labels[report_metrics[i]]);
    sd_strbuf_puts(&o, "</select> (lower is better for MAE; higher for the others). Lines: mean over seeds; bands: mean &plusmn; one "
                         "sample standard deviation over seeds. Every model sees the same corrupted inputs (draws keyed by seed, "
                         "utterance and modality). AUILC: trapezoid area under the metric-versus-level curve divided by the level "
                         "span (TFR-Net, EMT-DLFR). The text slot holds the real text in the complete flow and the simulated text "
                         "in the text-missing flow.</p>\n");
    for (int i = 0; i < 6; i++) {
        const int k = report_metrics[i];
        sd_strbuf_printf(&o, "<div class='metric' data-metric='%s'>\n", sd_metric_names[k]);
        html_summary_table(&o, r, sw, nsw, k);
        const sd_condition_kind kinds[3] = {SD_COND_MISSING, SD_COND_DROP, SD_COND_NOISE};
        for (int kk = 0; kk < 3; kk++) {
            int any = 0;
            for (int w = 0; w < nsw; w++) any |= r->conditions[sw[w].first].kind == kinds[kk];
            if (!any) continue;
            sd_strbuf_printf(&o, "<h2>%s</h2>\n", kind_title(kinds[kk]));
            for (int flow = 0; flow < 2; flow++) {
                int started = 0;
                for (int w = 0; w < nsw; w++) {
                    const sd_condition *cd = &r->conditions[sw[w].first];
                    if (cd->kind != kinds[kk] || cd->missing != flow) continue;
                    if (!started) sd_strbuf_puts(&o, "<div class='charts'>\n");
                    started = 1;
                    html_sweep_chart(&o, r, &sw[w], k);
                }
                if (started) sd_strbuf_puts(&o, "</div>\n");
            }
        }
        html_patterns(&o, r, k);
        sd_strbuf_puts(&o, "</div>\n");
    }
    sd_strbuf_puts(&o, "<script>(function(){var s=document.getElementById('metric');s.addEventListener('change',function(){"
                         "document.body.setAttribute('data-metric',s.value);});document.body.setAttribute('data-ready','1');})();"
                         "</script>\n</body></html>\n");
    free(sw);
    return write_buf(path, &o, err);
}
