/* sdumc's WavLM on one recording: the audio-features workload (layer 20 and the last layer from one
 * pass over all layers) on a synthetic waveform, timed after one warm-up run.
 *
 *   bench_wavlm --model M.safetensors [--seconds 10] [--threads 2] [--iters 3]
 *
 * Prints one line: seconds of audio, threads, median and minimum wall time of a forward pass, the
 * real-time factor (median time / audio duration), the peak resident set of the process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/alloc.h"
#include "core/threads.h"
#include "wavlm/wavlm.h"
#include "wavlm/wavlm_internal.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Multiply-adds of one forward pass over n samples (every layer): the convs, the projection, the
 * positional conv, per layer the four attention projections, the two FFN products and the two
 * attention products Q K^T and P V. */
static double forward_macs(const sd_wavlm_config *c, size_t n) {
    double macs = 0, len = (double)n, cin = 1;
    for (int l = 0; l < c->n_conv; l++) {
        len = floor((len - c->conv_kernel[l]) / c->conv_stride[l]) + 1;
        macs += len * c->conv_dim[l] * c->conv_kernel[l] * cin;
        cin = c->conv_dim[l];
    }
    const double T = len, D = c->hidden, F = c->ffn;
    macs += T * cin * D + T * D * c->pos_kernel * (D / c->pos_groups);
    macs += c->n_layers * (T * (4 * D * D + 2 * D * F) + 2 * T * T * D);
    return macs;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *model = NULL;
    double seconds = 10;
    int threads = 2, iters = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
    }
    if (!model || seconds <= 0 || threads < 1 || iters < 1 || iters > 100) {
        fprintf(stderr, "usage: bench_wavlm --model M.safetensors [--seconds S] [--threads N] [--iters K]\n");
        return 2;
    }
    sd_threads_set(threads);
    sd_error err = {0};
    sd_wavlm *m = NULL;
    double t0 = now();
    if (sd_wavlm_load(model, &m, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    const double load_s = now() - t0;
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    const size_t n = (size_t)llround(seconds * SD_WAVLM_RATE), T = sd_wavlm_frames(c, n), D = (size_t)c->hidden;
    float *wav = sd_alloc(n * sizeof *wav);
    for (size_t i = 0; i < n; i++) /* a chirp with noise, normalised like WavLM-Large's input */
        wav[i] = 0.1f * sinf(6.2831853f * (150.0f + 0.01f * (float)i / 16.0f) * (float)i / 16000.0f) +
                 0.01f * (float)((i * 2654435761u) % 1000) / 1000.0f;
    sd_wavlm_normalize(wav, n, wav);
    int layers[2] = {c->n_layers < 20 ? c->n_layers : 20, c->n_layers};
    float *out[2] = {sd_alloc(T * D * sizeof(float)), sd_alloc(T * D * sizeof(float))};
    sd_wavlm_ws *ws = NULL;
    if (sd_wavlm_ws_create(m, n, threads, &ws, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    double times[101], conv[101], cpu[101];
    for (int it = 0; it <= iters; it++) { /* run 0 is the warm-up */
        const double c0 = cpu_now();
        /* sd_wavlm_forward in its two stages, timed apart */
        t0 = now();
        if (sd_wavlm_conv_forward(m, ws, wav, n, T, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
        conv[it] = now() - t0;
        sd_wavlm_encoder_forward(m, ws, T, layers, 2, out);
        times[it] = now() - t0;
        cpu[it] = cpu_now() - c0;
    }
    qsort(cpu + 1, (size_t)iters, sizeof(double), cmp_double);
    qsort(conv + 1, (size_t)iters, sizeof(double), cmp_double);
    qsort(times + 1, (size_t)iters, sizeof(double), cmp_double);
    const double med = times[1 + iters / 2], best = times[1];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double check = 0;
    for (size_t i = 0; i < T * D; i++) check += out[1][i];
    const double gflop = 2 * forward_macs(c, n) / 1e9;
    printf("sdumc  audio %.1f s (%zu frames), %d threads: median %.3f s, min %.3f s, RTF %.3f, peak RSS %.0f MiB "
           "(CPU time %.2f s; %.0f GFLOP, %.1f GFLOP/s; feature encoder %.3f s; model load %.1f s; checksum %.3g)\n",
           seconds, T, threads, med, best, med / seconds, ru.ru_maxrss / 1024.0, cpu[1 + iters / 2], gflop, gflop / med,
           conv[1 + iters / 2], load_s, check);
    sd_wavlm_ws_free(ws);
    sd_free(out[0]);
    sd_free(out[1]);
    sd_free(wav);
    sd_wavlm_free(m);
    return 0;
}
