/* Inline SVG line charts with round ticks, bands, a marker and a reference line. */
#include "io/svg.h"

#include <math.h>
#include <stdio.h>

void sd_html_escape(sd_strbuf *o, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': sd_strbuf_puts(o, "&lt;"); break;
        case '>': sd_strbuf_puts(o, "&gt;"); break;
        case '&': sd_strbuf_puts(o, "&amp;"); break;
        case '\'': sd_strbuf_puts(o, "&#39;"); break;
        case '"': sd_strbuf_puts(o, "&quot;"); break;
        default: sd_strbuf_append(o, s, 1);
        }
    }
}

int sd_nice_ticks(double lo, double hi, int target, double min_step, double *ticks, int max) {
    if (!(hi > lo)) hi = lo + (min_step > 0 ? min_step : (fabs(lo) > 0 ? 0.1 * fabs(lo) : 1.0));
    double raw = (hi - lo) / (target > 1 ? target - 1 : 1), mag = pow(10.0, floor(log10(raw)));
    double step = 10.0 * mag;
    const double mult[3] = {1.0, 2.0, 5.0};
    for (int k = 0; k < 3; k++)
        if (mult[k] * mag >= raw) {
            step = mult[k] * mag;
            break;
        }
    if (step < min_step) step = min_step;
    double first = floor(lo / step + 1e-9) * step;
    int n = 0;
    for (double v = first; n < max; v = first + step * n) {
        ticks[n++] = fabs(v) < 1e-12 * step ? 0.0 : v;
        if (v >= hi - 1e-6 * step) break;
    }
    return n;
}

/* Enough significant digits to tell the ticks apart, none more. */
static void tick_label(char *buf, size_t n, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6) decimals = 6;
    snprintf(buf, n, "%.*f", decimals, v);
}

void sd_svg_line_chart(sd_strbuf *o, const sd_chart *c) {
    const double W = c->width, H = c->height, ml = 58, mr = 14, mt = 30 + 16.0 * ((c->n_series + 3) / 4), mb = 40;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->n_series; s++) {
        const sd_chart_series *se = &c->series[s];
        for (int i = 0; i < se->n; i++) {
            xlo = fmin(xlo, se->x[i]);
            xhi = fmax(xhi, se->x[i]);
            double vals[3] = {se->y[i], se->lo ? se->lo[i] : NAN, se->hi ? se->hi[i] : NAN};
            for (int k = 0; k < 3; k++)
                if (isfinite(vals[k])) ylo = fmin(ylo, vals[k]), yhi = fmax(yhi, vals[k]);
        }
    }
    if (isfinite(c->ref_y)) ylo = fmin(ylo, c->ref_y), yhi = fmax(yhi, c->ref_y);
    if (!isfinite(xlo)) xlo = 0, xhi = 1;
    if (!isfinite(ylo)) ylo = 0, yhi = 1;
    if (c->zero_floor && ylo >= 0) ylo = 0;
    double xt[64], yt[64];
    int nx = sd_nice_ticks(xlo, xhi, 10, c->x_min_step, xt, 64), ny = sd_nice_ticks(ylo, yhi, 6, 0, yt, 64);
    /* x spans the data (ticks inside it), y spans the ticks */
    double x0v = xlo, x1v = xhi > xlo ? xhi : xlo + 1, y0v = yt[0], y1v = yt[ny - 1] > yt[0] ? yt[ny - 1] : yt[0] + 1;
    const double px0 = ml, px1 = W - mr, py0 = mt, py1 = H - mb;
#define PX(v) (px0 + (px1 - px0) * ((v) - x0v) / (x1v - x0v))
#define PY(v) (py1 - (py1 - py0) * ((v) - y0v) / (y1v - y0v))
    sd_strbuf_printf(o, "<figure><svg viewBox='0 0 %.0f %.0f' role='img' aria-label='", W, H);
    sd_html_escape(o, c->title);
    sd_strbuf_printf(o, "'><text x='%.0f' y='16' class='title'>", ml);
    sd_html_escape(o, c->title);
    sd_strbuf_puts(o, "</text>");
    char label[32];
    double ystep = ny > 1 ? yt[1] - yt[0] : 1, xstep = nx > 1 ? xt[1] - xt[0] : 1;
    for (int k = 0; k < ny; k++) {
        sd_strbuf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", px0, PY(yt[k]), px1, PY(yt[k]));
        tick_label(label, sizeof label, yt[k], ystep);
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%s</text>", px0 - 5, PY(yt[k]) + 4, label);
    }
    for (int k = 0; k < nx; k++) {
        if (xt[k] < x0v - 1e-6 * xstep || xt[k] > x1v + 1e-6 * xstep) continue;
        tick_label(label, sizeof label, xt[k], xstep);
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%s</text>", PX(xt[k]), py1 + 15, label);
    }
    sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='axis' text-anchor='middle'>", (px0 + px1) / 2, H - 8);
    sd_html_escape(o, c->xlabel);
    sd_strbuf_printf(o, "</text><text x='13' y='%.1f' class='axis' transform='rotate(-90 13 %.1f)' text-anchor='middle'>",
                       (py0 + py1) / 2, (py0 + py1) / 2);
    sd_html_escape(o, c->ylabel);
    sd_strbuf_puts(o, "</text>");
    if (isfinite(c->ref_y)) {
        sd_strbuf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='ref'/>", px0, PY(c->ref_y), px1, PY(c->ref_y));
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>", px1 - 4, PY(c->ref_y) - 4);
        sd_html_escape(o, c->ref_label ? c->ref_label : "");
        sd_strbuf_puts(o, "</text>");
    }
    if (isfinite(c->marker_x)) {
        double x = PX(c->marker_x);
        sd_strbuf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='marker'/>", x, py0, x, py1);
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>", x, py0 - 3);
        sd_html_escape(o, c->marker_label ? c->marker_label : "");
        sd_strbuf_puts(o, "</text>");
    }
    for (int s = 0; s < c->n_series; s++) {
        const sd_chart_series *se = &c->series[s];
        if (se->lo && se->hi) { /* band: along hi, back along lo */
            sd_strbuf_printf(o, "<polygon fill='%s' fill-opacity='0.18' stroke='none' points='", se->color);
            for (int i = 0; i < se->n; i++)
                if (isfinite(se->hi[i])) sd_strbuf_printf(o, "%.1f,%.1f ", PX(se->x[i]), PY(se->hi[i]));
            for (int i = se->n - 1; i >= 0; i--)
                if (isfinite(se->lo[i])) sd_strbuf_printf(o, "%.1f,%.1f ", PX(se->x[i]), PY(se->lo[i]));
            sd_strbuf_puts(o, "'/>");
        }
        sd_strbuf_printf(o, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='", se->color,
                           se->dashed ? " stroke-dasharray='6 4'" : "");
        for (int i = 0; i < se->n; i++)
            if (isfinite(se->y[i])) sd_strbuf_printf(o, "%.1f,%.1f ", PX(se->x[i]), PY(se->y[i]));
        sd_strbuf_puts(o, "'/>");
        for (int i = 0; i < se->n; i++) {
            if (!isfinite(se->y[i])) continue;
            sd_strbuf_printf(o, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'><title>", PX(se->x[i]), PY(se->y[i]), se->color);
            sd_html_escape(o, se->name);
            sd_strbuf_printf(o, ", %s %.4g: %.5g</title></circle>", c->xlabel, se->x[i], se->y[i]);
        }
        /* legend: four entries per row under the title */
        double lx = ml + (W - ml - mr) / 4.0 * (s % 4), ly = 30 + 16.0 * (s / 4);
        sd_strbuf_printf(o, "<rect x='%.1f' y='%.1f' width='12' height='4' fill='%s'/>", lx, ly - 6, se->color);
        sd_strbuf_printf(o, "<text x='%.1f' y='%.1f' class='legend'>", lx + 16, ly);
        sd_html_escape(o, se->name);
        sd_strbuf_puts(o, "</text>");
    }
    sd_strbuf_puts(o, "</svg></figure>\n");
#undef PX
#undef PY
}
