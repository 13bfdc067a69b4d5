/* Whole recordings through WavLM: the chunking policy (wavlm.h, docs/WAVLM.md), the waveform
 * normalisation, one model pass per window for every layer asked for, the kept frames handed to a
 * sink in order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "wavlm/wavlm_internal.h"

struct sd_wavlm_runner {
    const sd_wavlm *m;
    double chunk_seconds, overlap_seconds;
    int threads;
    sd_wavlm_ws *ws;
    float *wav;           /* [cap_samples] the normalised recording */
    size_t cap_samples;
    float *out[SD_WAVLM_MAX_OUT]; /* [n_out][cap_frames, D] */
    int n_out_alloc;
    size_t cap_frames;
    sd_wavlm_window *win; /* [cap_windows] */
    size_t cap_windows;
};

/* Frames of the chunk length and of the overlap. */
static void chunk_frames(const sd_wavlm_config *c, double chunk_seconds, double overlap_seconds,
                         size_t *Fw, size_t *O) {
    *Fw = sd_wavlm_frames(c, (size_t)llround(chunk_seconds * SD_WAVLM_RATE));
    *O = (size_t)llround(overlap_seconds * SD_WAVLM_RATE / c->hop);
}

sd_status sd_wavlm_check_chunking(const sd_wavlm_config *c, double chunk_seconds, double overlap_seconds,
                                  sd_error *err) {
    if (!(chunk_seconds > 0 && chunk_seconds <= 3600))
        return sd_fail(err, SD_E_ARG, "--chunk-seconds %g: must be in (0, 3600]", chunk_seconds);
    if (!(overlap_seconds >= 0 && overlap_seconds <= chunk_seconds / 2))
        return sd_fail(err, SD_E_ARG, "--overlap-seconds %g: must be in [0, chunk / 2 = %g]",
                       overlap_seconds, chunk_seconds / 2);
    size_t Fw, O;
    chunk_frames(c, chunk_seconds, overlap_seconds, &Fw, &O);
    if (Fw < 2 || O >= Fw)
        return sd_fail(err, SD_E_ARG, "--chunk-seconds %g gives %zu frames, too few for an overlap of "
                       "%zu frames", chunk_seconds, Fw, O);
    return SD_OK;
}

size_t sd_wavlm_plan(const sd_wavlm_config *c, size_t n, double chunk_seconds, double overlap_seconds,
                     sd_wavlm_window *w, size_t max) {
    const size_t F = sd_wavlm_frames(c, n), hop = (size_t)c->hop, rec = (size_t)c->receptive;
    size_t Fw, O;
    chunk_frames(c, chunk_seconds, overlap_seconds, &Fw, &O);
    if (F == 0) return 0;
    if (F <= Fw) {
        if (w && max) w[0] = (sd_wavlm_window){0, n, 0, 0, F};
        return 1;
    }
    const size_t m = (F - O + (Fw - O) - 1) / (Fw - O);
    size_t prev_start = 0;
    for (size_t i = 0; i < m && i < max && w; i++) {
        const size_t start = (i * (F - Fw) + (m - 1) / 2) / (m - 1);
        const size_t keep = i ? (prev_start + Fw + start) / 2 : 0;
        w[i] = (sd_wavlm_window){hop * start, i == m - 1 ? n : hop * (start + Fw - 1) + rec, start, keep, F};
        if (i) w[i - 1].keep_end = keep;
        prev_start = start;
    }
    return m;
}

sd_status sd_wavlm_runner_create(const sd_wavlm *m, double chunk_seconds, double overlap_seconds,
                                 int threads, sd_wavlm_runner **out, sd_error *err) {
    *out = NULL;
    sd_status s = sd_wavlm_check_chunking(&m->cfg, chunk_seconds, overlap_seconds, err);
    if (s) return s;
    sd_wavlm_runner *r = calloc(1, sizeof *r);
    if (!r) return sd_fail(err, SD_E_NOMEM, "out of memory");
    r->m = m;
    r->chunk_seconds = chunk_seconds;
    r->overlap_seconds = overlap_seconds;
    r->threads = threads;
    *out = r;
    return SD_OK;
}

void sd_wavlm_runner_free(sd_wavlm_runner *r) {
    if (!r) return;
    sd_wavlm_ws_free(r->ws);
    sd_free(r->wav);
    for (int k = 0; k < r->n_out_alloc; k++) sd_free(r->out[k]);
    free(r->win);
    free(r);
}

/* Grows the window list to nw entries. */
static sd_status reserve_windows(sd_wavlm_runner *r, size_t nw, sd_error *err) {
    if (nw <= r->cap_windows) return SD_OK;
    free(r->win);
    r->cap_windows = 0;
    if (!(r->win = malloc(nw * sizeof *r->win))) return sd_fail(err, SD_E_NOMEM, "out of memory");
    r->cap_windows = nw;
    return SD_OK;
}

/* Grows the buffers for a recording of n samples, windows of at most max_win samples and
 * max_frames frames, n_out outputs. */
static sd_status reserve(sd_wavlm_runner *r, size_t n, size_t max_win, size_t max_frames, int n_out,
                         sd_error *err) {
    const size_t D = (size_t)r->m->cfg.hidden;
    if (n > r->cap_samples) {
        sd_free(r->wav);
        r->cap_samples = 0;
        if (!(r->wav = sd_alloc(n * sizeof(float)))) goto nomem;
        r->cap_samples = n;
    }
    if (!r->ws || sd_wavlm_ws_max_samples(r->ws) < max_win) {
        sd_wavlm_ws_free(r->ws);
        r->ws = NULL;
        sd_status s = sd_wavlm_ws_create(r->m, max_win, r->threads, &r->ws, err);
        if (s) return s;
    }
    if (max_frames > r->cap_frames || n_out > r->n_out_alloc) {
        for (int k = 0; k < r->n_out_alloc; k++) sd_free(r->out[k]);
        r->n_out_alloc = 0;
        const size_t frames = max_frames > r->cap_frames ? max_frames : r->cap_frames;
        for (int k = 0; k < n_out; k++) {
            if (!(r->out[k] = sd_alloc(frames * D * sizeof(float)))) goto nomem;
            r->n_out_alloc = k + 1;
        }
        r->cap_frames = frames;
    }
    return SD_OK;
nomem:
    return sd_fail(err, SD_E_NOMEM, "out of memory for a recording of %zu samples", n);
}

sd_status sd_wavlm_run(sd_wavlm_runner *r, const float *wav, size_t n, const int *layers, int n_out,
                       sd_wavlm_sink sink, void *user, sd_error *err) {
    const sd_wavlm_config *c = &r->m->cfg;
    const size_t D = (size_t)c->hidden;
    if (n_out < 1 || n_out > (int)(sizeof r->out / sizeof r->out[0]))
        return sd_fail(err, SD_E_ARG, "WavLM: %d outputs asked for", n_out);
    const size_t nw = sd_wavlm_plan(c, n, r->chunk_seconds, r->overlap_seconds, NULL, 0);
    if (nw == 0)
        return sd_fail(err, SD_E_SHAPE, "%zu samples (%.1f ms at 16 kHz) give no WavLM frame: at "
                       "least %d samples are needed", n, n / 16.0, c->receptive);
    size_t max_win = 0;
    sd_status s = reserve_windows(r, nw, err);
    if (s) return s;
    sd_wavlm_plan(c, n, r->chunk_seconds, r->overlap_seconds, r->win, nw);
    for (size_t i = 0; i < nw; i++) {
        const size_t len = r->win[i].sample_end - r->win[i].sample_begin;
        if (len > max_win) max_win = len;
    }
    if ((s = reserve(r, n, max_win, sd_wavlm_frames(c, max_win), n_out, err))) return s;
    if (c->normalize) sd_wavlm_normalize(wav, n, r->wav);
    else memcpy(r->wav, wav, n * sizeof(float));
    for (size_t i = 0; i < nw; i++) {
        const sd_wavlm_window *w = &r->win[i];
        if ((s = sd_wavlm_forward(r->m, r->ws, r->wav + w->sample_begin, w->sample_end - w->sample_begin,
                                  layers, n_out, r->out, err)))
            return s;
        for (int k = 0; k < n_out; k++) {
            const float *rows = r->out[k] + (w->keep_begin - w->frame_begin) * D;
            if ((s = sink(user, k, rows, w->keep_end - w->keep_begin, err))) return s;
        }
    }
    return SD_OK;
}
