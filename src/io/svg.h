/* Line charts as inline SVG for the self-contained HTML reports (training report, robustness
 * report): round tick values, optional bands (e.g. mean +- sd over seeds), a vertical marker and a
 * horizontal reference line. The SVG has a viewBox and no fixed size, so CSS decides its width. */
#ifndef SD_IO_SVG_H
#define SD_IO_SVG_H

#include "io/json.h"

/* Appends s with < > & ' " escaped for HTML text and attribute values. */
void sd_html_escape(sd_strbuf *o, const char *s);

/* Round ticks covering [lo, hi]: multiples of a step of 1, 2 or 5 times a power of ten, about
 * `target` of them, the first <= lo and the last >= hi. min_step > 0 bounds the step from below
 * (1 for whole numbers). Writes at most max ticks and returns their count. */
int sd_nice_ticks(double lo, double hi, int target, double min_step, double *ticks, int max);

typedef struct {
    const char *name, *color;
    const double *x, *y;   /* [n]; a non-finite y leaves a gap */
    const double *lo, *hi; /* [n] band drawn under the line; NULL for none */
    int n;
    int dashed;
} sd_chart_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double width, height;             /* the viewBox */
    const sd_chart_series *series;
    int n_series;
    double x_min_step;                /* 1 for whole-number x ticks, 0 otherwise */
    double marker_x;                  /* vertical dashed marker; NAN for none */
    const char *marker_label;
    double ref_y;                     /* horizontal reference line; NAN for none */
    const char *ref_label;
    int zero_floor;                   /* 1: the y axis starts at 0 when every value is >= 0 */
} sd_chart;

/* Appends <figure><svg ...>...</svg></figure>. Classes used (for the page's CSS): title, tick,
 * axis, legend, grid, marker, ref. Every point carries a <title> tooltip with its value. */
void sd_svg_line_chart(sd_strbuf *o, const sd_chart *c);

#endif
