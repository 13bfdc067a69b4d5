/* Latency of the public C API (include/sdumc.h): one utterance per call (batch 1), with a
 * caller-owned context and without one, for both flows, and the batch call's throughput. A
 * paper-preset model (H = 256, MIA on) with a fixed random initialisation is saved to a temporary
 * file and loaded through sdumc_model_load_with_params (n_threads = --threads), as an application
 * would.
 *
 *   bench_api [--threads N] [--iters N] [--dims A,T,V] [--frames A,T,V] [--batch B]
 *             [--latency openmp|api] [--sweep]
 *
 * --latency: one line, the median batch-1 text-missing latency with an own context, through the
 * API ("api") or through the flow on OpenMP threads as the API ran before it had its own pool
 * ("openmp": omp_set_num_threads(N), the layers' OpenMP regions; libgomp's default wait policy);
 * bench_api.sh runs both idle and beside two CPU-bound processes.
 * --sweep: batch-1 latency on 1 thread and on N threads (the pool forced on) for growing
 * utterances, the measurement behind the API's GROUP_PAR_MIN_WORK (src/api/run.c).
 *
 * Figures: warm-up calls excluded, CLOCK_MONOTONIC, median / p10 / p90 / mean milliseconds per call
 * over --iters calls; the machine line (CPU, flags, threads, BLAS kernel setting) comes first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "api/api_internal.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/flow.h"
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
    double load[3] = {0, 0, 0};
    f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    if (f) fclose(f);
    printf("machine: %s, %ld CPUs online, avx2 %s, avx512f %s; threads %d (OpenMP %s); OPENBLAS_CORETYPE=%s; "
           "load %.2f %.2f %.2f\n",
           model, sysconf(_SC_NPROCESSORS_ONLN), avx2 ? "yes" : "no", avx512 ? "yes" : "no", threads,
           sd_threads_have_openmp() ? "on" : "off", core ? core : "(unset)", load[0], load[1], load[2]);
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

/* `batch` utterances of the given frame counts and dims, N(0, 1) features; NULL on failure. */
static sdumc_utterance *make_inputs(int batch, const int frames[3], const int dims[3]) {
    sdumc_utterance *u = calloc((size_t)batch, sizeof *u);
    if (!u) return NULL;
    sd_rng rng = sd_rng_make(7, 0);
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < 3; k++) {
            size_t n = (size_t)frames[k] * (size_t)dims[k];
            float *x = malloc(sizeof(float) * n);
            if (!x) return NULL;
            for (size_t i = 0; i < n; i++) x[i] = (float)sd_rng_normal(&rng);
            sdumc_features f = {x, frames[k], dims[k]};
            if (k == 0) u[b].audio = f;
            if (k == 1) u[b].text = f;
            if (k == 2) u[b].video = f;
        }
    return u;
}

static void free_inputs(sdumc_utterance *u, int batch) {
    for (int b = 0; u && b < batch; b++) {
        free((void *)u[b].audio.data);
        free((void *)u[b].text.data);
        free((void *)u[b].video.data);
    }
    free(u);
}

/* Median ms of one text-missing batch-1 call through the API with ctx. */
static timing time_api(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *u, int batch, int flow,
                       int iters, double *ms) {
    float s = 0.0f;
    for (int w = 0; w < 5; w++) sdumc_predict(model, ctx, &u[w % batch], (sdumc_flow)flow, &s, NULL); /* warm-up */
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        sdumc_predict(model, ctx, &u[i % batch], (sdumc_flow)flow, &s, NULL);
        ms[i] = now_ms() - t0;
    }
    return summarise(ms, iters);
}

/* The same forward on OpenMP threads (the flow as the API ran it before its own pool). */
static timing time_openmp(const sdumc_model *model, const sdumc_utterance *u, int batch, int threads, int iters,
                          double *ms) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    sd_flow *f = sd_flow_new();
    sd_error e;
    for (int i = -5; f && i < iters; i++) {
        const sdumc_utterance *x = &u[(i + 5) % batch];
        int len[3] = {(int)x->audio.frames, (int)x->text.frames, (int)x->video.frames};
        sd_flow_input in = {1, {x->audio.data, x->text.data, x->video.data}, {len[0], len[1], len[2]},
                            {&len[0], &len[1], &len[2]}, {SD_DTYPE_F32, SD_DTYPE_F32, SD_DTYPE_F32},
                            {NULL, NULL, NULL}, {NULL, NULL, NULL}}; /* no standardisation */
        double t0 = now_ms();
        sd_flow_forward(f, model->m, &in, 1, 0, NULL, &e);
        if (i >= 0) ms[i] = now_ms() - t0;
    }
    sd_flow_free(f);
    return summarise(ms, iters);
}

/* Batch-1 latency on 1 thread and on `threads` with the pool forced on, for growing utterances. */
static void sweep(const char *path, const int dims[3], int threads, int iters, double *ms) {
    static const int steps[][3] = {{2, 1, 1}, {5, 2, 2}, {10, 3, 4}, {25, 6, 8}, {50, 10, 15}, {100, 15, 25},
                                   {250, 30, 60}};
    sdumc_model_params p = sdumc_model_default_params();
    sdumc_model *one = NULL, *many = NULL;
    p.n_threads = 1;
    if (sdumc_model_load_with_params(path, &p, &one, NULL)) return;
    p.n_threads = threads;
    if (sdumc_model_load_with_params(path, &p, &many, NULL)) return;
    sdumc_context *c1 = NULL, *cn = NULL;
    sdumc_context_new(&c1, NULL);
    sdumc_context_new(&cn, NULL);
    const double saved = sd_api_group_par_min_work;
    sd_api_group_par_min_work = 0.0; /* every group spreads when it has threads */
    printf("sweep: batch-1 text-missing latency, 1 thread vs %d threads (pool forced on), own context\n", threads);
    printf("%-16s %14s %12s %12s %8s\n", "frames a/t/v", "work (MMAC)", "1 thread", "threads", "ratio");
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        sdumc_utterance *u = make_inputs(4, steps[k], dims);
        if (!u) return;
        double work = 0.0;
        for (int m = 0; m < 3; m++) work += (double)steps[k][m] * dims[m] * 256.0;
        const timing a = time_api(one, c1, u, 4, 1, iters, ms), b = time_api(many, cn, u, 4, 1, iters, ms);
        printf("%4d/%4d/%4d    %14.2f %9.3f ms %9.3f ms %8.2f\n", steps[k][0], steps[k][1], steps[k][2], work * 1e-6,
               a.median, b.median, b.median / a.median);
        free_inputs(u, 4);
    }
    sd_api_group_par_min_work = saved;
    sdumc_context_free(c1);
    sdumc_context_free(cn);
    sdumc_model_free(one);
    sdumc_model_free(many);
}

int main(int argc, char **argv) {
    int threads = 0, iters = 100, batch = 32, frames[3] = {250, 30, 60}, dims[3] = {1024, 4096, 1024}, do_sweep = 0;
    const char *latency = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latency") && i + 1 < argc)
            latency = argv[++i];
        else if (!strcmp(argv[i], "--sweep"))
            do_sweep = 1;
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d,%d", &frames[0], &frames[1], &frames[2]) != 3) goto usage;
        } else if (!strcmp(argv[i], "--dims") && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d,%d", &dims[0], &dims[1], &dims[2]) != 3) goto usage;
        } else
            goto usage;
    }
    if (iters < 10 || batch < 1 || frames[0] < 1 || frames[1] < 1 || frames[2] < 1 || dims[0] < 1 || dims[1] < 1 ||
        dims[2] < 1 || threads < 0 || threads > SD_API_MAX_THREADS ||
        (latency && strcmp(latency, "api") && strcmp(latency, "openmp")))
        goto usage;
    if (threads == 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads > SD_API_MAX_THREADS) threads = SD_API_MAX_THREADS;
    if (!latency) print_machine(threads);

    /* The model: paper preset, saved and loaded through the public API. */
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
    double *ms = malloc(sizeof(double) * (size_t)iters);
    if (!ms) return fprintf(stderr, "bench_api: out of memory\n"), 1;
    if (do_sweep) {
        sweep(path, dims, threads, iters, ms);
        unlink(path);
        free(ms);
        return 0;
    }
    sdumc_model *model = NULL;
    sdumc_error err;
    sdumc_model_params params = sdumc_model_default_params();
    params.n_threads = threads;
    sdumc_status st = sdumc_model_load_with_params(path, &params, &model, &err);
    unlink(path);
    if (st) return fprintf(stderr, "bench_api: %s\n", err.message), 1;
    sdumc_info info = {.size = sizeof info};
    sdumc_model_info(model, &info, NULL);
    sdumc_utterance *u = make_inputs(batch, frames, dims);
    float *scores = malloc(sizeof(float) * (size_t)batch);
    sdumc_context *ctx = NULL;
    if (!u || !scores) return fprintf(stderr, "bench_api: out of memory\n"), 1;
    if (sdumc_context_new(&ctx, &err)) return fprintf(stderr, "bench_api: %s\n", err.message), 1;
    if (latency) {
        const timing t = !strcmp(latency, "api") ? time_api(model, ctx, u, batch, 1, iters, ms)
                                                 : time_openmp(model, u, batch, threads, iters, ms);
        printf("%s %d threads: median %.3f ms  p10 %.3f  p90 %.3f\n", latency, threads, t.median, t.p10, t.p90);
    } else {
        printf("model: dims %d/%d/%d, H %d, MIA %s, %lld parameters; utterance frames audio %d, text %d, video %d\n",
               info.dim_audio, info.dim_text, info.dim_video, info.hidden, info.mia ? "on" : "off",
               (long long)info.param_count, frames[0], frames[1], frames[2]);
        static const char *flow_names[2] = {"complete", "text-missing"};
        for (int flow = 0; flow < 2; flow++) {
            for (int with_ctx = 1; with_ctx >= 0; with_ctx--) {
                const timing t = time_api(model, with_ctx ? ctx : NULL, u, batch, flow, iters, ms);
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
    }
    sdumc_context_free(ctx);
    free_inputs(u, batch);
    free(ms);
    free(scores);
    sdumc_model_free(model);
    return 0;
usage:
    fprintf(stderr, "usage: bench_api [--threads N] [--iters N >= 10] [--dims A,T,V] [--frames A,T,V] [--batch B] "
                    "[--latency openmp|api] [--sweep]\n");
    return 2;
}
