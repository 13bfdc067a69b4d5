/* Latency of the public C API (include/sdumc.h) at CMU-MOSEI dims: one utterance per call
 * (batch 1), with a caller-owned context and without one, for both flows, and the batch call's
 * throughput. A paper-preset model (H = 256, MIA on) with a fixed random initialisation is saved
 * to a temporary file and loaded through sdumc_model_load_with_params (n_threads = --threads), as an
 * application would.
 *
 *   bench_api [--threads N] [--iters N] [--frames A,T,V] [--batch B]
 *
 * Figures: warm-up calls excluded, CLOCK_MONOTONIC, median / p10 / p90 / mean milliseconds per call
 * over --iters calls; the machine line (CPU, flags, threads, BLAS kernel setting) comes first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/threads.h"
#include "model/model.h"
#include "sdumc.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_machine(int threads) {
    char model[256] = "unknown CPU", line[4096];
    int avx2 = 0, avx512 = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
        }
        if (!strncmp(line, "flags", 5)) {
            avx2 = strstr(line, " avx2") != NULL;
            avx512 = strstr(line, " avx512f") != NULL;
        }
    }
    if (f) fclose(f);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("machine: %s, %ld CPUs online, avx2 %s, avx512f %s; threads %d (OpenMP %s); OPENBLAS_CORETYPE=%s\n",
           model, sysconf(_SC_NPROCESSORS_ONLN), avx2 ? "yes" : "no", avx512 ? "yes" : "no", threads,
           sd_threads_have_openmp() ? "on" : "off", core ? core : "(unset)");
}

typedef struct {
    double median, p10, p90, mean;
} timing;

static timing summarise(double *ms, int n) {
    timing t;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += ms[i];
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    t.median = ms[n / 2];
    t.p10 = ms[n / 10];
    t.p90 = ms[(n * 9) / 10];
    t.mean = sum / n;
    return t;
}

int main(int argc, char **argv) {
    int threads = 0, iters = 100, batch = 32, frames[3] = {250, 30, 60};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d,%d", &frames[0], &frames[1], &frames[2]) != 3) goto usage;
        } else
            goto usage;
    }
    if (iters < 10 || batch < 1 || frames[0] < 1 || frames[1] < 1 || frames[2] < 1) goto usage;
    threads = sd_threads_set(threads);
    print_machine(threads);

    /* The model: MOSEI dims, paper preset, saved and loaded through the public API. */
    const int dims[3] = {1024, 4096, 1024};
    sd_model_config c = sd_model_default_config(dims[0], dims[1], dims[2]);
    c.mia = 1;
    c.seed = 1;
    sd_model *m = NULL;
    sd_error e;
    char path[] = "/tmp/sdumc-bench-api-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return perror("mkstemp"), 1;
    close(fd);
    if (sd_model_create(&c, &m, &e) || sd_model_save(m, path, &e)) {
        fprintf(stderr, "bench_api: %s\n", e.msg);
        unlink(path);
        return 1;
    }
    sd_model_free(m);
    sdumc_model *model = NULL;
    sdumc_error err;
    sdumc_model_params params = sdumc_model_default_params();
    params.n_threads = threads; /* the API's own thread count (sd_threads_set above: OpenBLAS, OpenMP) */
    sdumc_status st = sdumc_model_load_with_params(path, &params, &model, &err);
    unlink(path);
    if (st) return fprintf(stderr, "bench_api: %s\n", err.message), 1;
    sdumc_info info = {.size = sizeof info};
    sdumc_model_info(model, &info, NULL);
    printf("model: dims %d/%d/%d, H %d, MIA %s, %lld parameters; utterance frames audio %d, text %d, video %d\n",
           info.dim_audio, info.dim_text, info.dim_video, info.hidden, info.mia ? "on" : "off",
           (long long)info.param_count, frames[0], frames[1], frames[2]);

    /* Inputs: `batch` utterances of the given frame counts, N(0, 1) features. */
    sdumc_utterance *u = calloc((size_t)batch, sizeof *u);
    float **buf = calloc((size_t)batch * 3, sizeof *buf);
    double *ms = malloc(sizeof(double) * (size_t)iters);
    float *scores = malloc(sizeof(float) * (size_t)batch);
    if (!u || !buf || !ms || !scores) return fprintf(stderr, "bench_api: out of memory\n"), 1;
    sd_rng rng = sd_rng_make(7, 0);
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < 3; k++) {
            size_t n = (size_t)frames[k] * (size_t)dims[k];
            float *x = malloc(sizeof(float) * n);
            if (!x) return fprintf(stderr, "bench_api: out of memory\n"), 1;
            for (size_t i = 0; i < n; i++) x[i] = (float)sd_rng_normal(&rng);
            buf[b * 3 + k] = x;
            sdumc_features f = {x, frames[k], dims[k]};
            if (k == 0) u[b].audio = f;
            if (k == 1) u[b].text = f;
            if (k == 2) u[b].video = f;
        }

    sdumc_context *ctx = NULL;
    if (sdumc_context_new(&ctx, &err)) return fprintf(stderr, "bench_api: %s\n", err.message), 1;
    static const char *flow_names[2] = {"complete", "text-missing"};
    for (int flow = 0; flow < 2; flow++) {
        for (int with_ctx = 1; with_ctx >= 0; with_ctx--) {
            float s = 0.0f;
            for (int w = 0; w < 5; w++) /* warm-up: workspace, BLAS buffers, page faults */
                if (sdumc_predict(model, with_ctx ? ctx : NULL, &u[0], (sdumc_flow)flow, &s, &err))
                    return fprintf(stderr, "bench_api: %s\n", err.message), 1;
            for (int i = 0; i < iters; i++) {
                double t0 = now_ms();
                sdumc_predict(model, with_ctx ? ctx : NULL, &u[i % batch], (sdumc_flow)flow, &s, NULL);
                ms[i] = now_ms() - t0;
            }
            timing t = summarise(ms, iters);
            printf("sdumc_predict batch 1, %-12s flow, %-14s: median %.3f ms  p10 %.3f  p90 %.3f  mean %.3f  "
                   "(%.1f utterances/s)\n",
                   flow_names[flow], with_ctx ? "own context" : "no context", t.median, t.p10, t.p90, t.mean,
                   1e3 / t.median);
        }
        /* The batch call: same-length utterances, so no padding cost is measured here. */
        int reps = iters / 10 > 3 ? iters / 10 : 3;
        sdumc_predict_batch(model, ctx, u, (size_t)batch, (sdumc_flow)flow, scores, NULL, NULL);
        for (int i = 0; i < reps; i++) {
            double t0 = now_ms();
            sdumc_predict_batch(model, ctx, u, (size_t)batch, (sdumc_flow)flow, scores, NULL, NULL);
            ms[i] = now_ms() - t0;
        }
        timing t = summarise(ms, reps);
        printf("sdumc_predict_batch %d,  %-12s flow, own context   : median %.3f ms per call, %.3f ms per "
               "utterance (%.1f utterances/s)\n",
               batch, flow_names[flow], t.median, t.median / batch, 1e3 * batch / t.median);
    }
    sdumc_context_free(ctx);
    for (int i = 0; i < batch * 3; i++) free(buf[i]);
    free(buf);
    free(u);
    free(ms);
    free(scores);
    sdumc_model_free(model);
    return 0;
usage:
    fprintf(stderr, "usage: bench_api [--threads N] [--iters N >= 10] [--frames A,T,V] [--batch B]\n");
    return 2;
}
