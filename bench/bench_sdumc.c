/* sdumc side of `make bench` (bench/README.md): one operating point, one measurement kind, one
 * JSON line on stdout. bench/bench.sh runs it next to bench/bench_torch.py and prints the table.
 *
 *   bench_sdumc MODE [--dims a,t,v] [--frames Ta,Tt,Tv] [--sim Ts] [--batch B] [--threads n]
 *               [--steps N] [--warmup W]
 *   MODE: train  median seconds of one double-flow training step (both forwards, six losses,
 *                backward, Adam), GEMM FLOPs per step, peak resident memory (VmHWM) after it;
 *         infer  median latency of one text-missing-flow forward (evaluation mode) at batch 1,
 *                and the throughput at --batch;
 *         gemm   best sgemm rate (GFLOP/s) of square products, the machine's GEMM peak here.
 *
 * Inputs are the same as bench_torch.py's: element i of tensor `salt` is bench_value(i, salt)
 * (an integer hash in [-1, 1)), every sample has all its frames (no padding), labels in [-3, 3].
 * The configuration is the "paper" preset: MIA on, the six loss terms, dropout on.
 *
 * GEMM FLOPs are counted exactly: this program defines cblas_sgemm itself (the executable's
 * definition takes precedence over OpenBLAS's for the library's calls), counts 2*M*N*K and
 * forwards to OpenBLAS's through dlsym(RTLD_NEXT). */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/gemm.h"
#include "core/threads.h"
#include "model/flow.h"
#include "optim/adam.h"
#include "train/objective.h"

/* ---- GEMM shape profile (SD_BENCH_GEMM_SHAPES=1): thread CPU seconds per product shape, the
 * shapes that take most printed to stderr after the timed steps. ---- */
static int shape_profile;
typedef struct {
    int ta, tb, M, N, K, beta;
    long long calls;
    double cpu_s;
} shape_stat;
#define SHAPES_MAX 512
static shape_stat shapes[SHAPES_MAX];
static int n_shapes;
static pthread_mutex_t shapes_mu = PTHREAD_MUTEX_INITIALIZER;

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void shape_record(int ta, int tb, int M, int N, int K, int beta, double dt) {
    pthread_mutex_lock(&shapes_mu);
    int i = 0;
    while (i < n_shapes && !(shapes[i].ta == ta && shapes[i].tb == tb && shapes[i].M == M && shapes[i].N == N &&
                             shapes[i].K == K && shapes[i].beta == beta))
        i++;
    if (i == n_shapes && n_shapes < SHAPES_MAX) shapes[n_shapes++] = (shape_stat){ta, tb, M, N, K, beta, 0, 0.0};
    if (i < n_shapes) {
        shapes[i].calls++;
        shapes[i].cpu_s += dt;
    }
    pthread_mutex_unlock(&shapes_mu);
}

static int cmp_shape(const void *a, const void *b) {
    const double x = ((const shape_stat *)a)->cpu_s, y = ((const shape_stat *)b)->cpu_s;
    return (x < y) - (x > y);
}

static void shape_report(int steps) {
    qsort(shapes, (size_t)n_shapes, sizeof *shapes, cmp_shape);
    double total = 0;
    for (int i = 0; i < n_shapes; i++) total += shapes[i].cpu_s;
    fprintf(stderr, "GEMM shapes by thread CPU time (%d steps, %.3f s per step in sgemm):\n", steps, total / steps);
    for (int i = 0; i < n_shapes && i < 30; i++) {
        const shape_stat *h = &shapes[i];
        fprintf(stderr, "  %c%c M %6d N %5d K %6d beta %d: %7.1f calls/step %7.4f s/step %6.1f GFLOP/s (thread)\n",
                h->ta ? 'T' : 'N', h->tb ? 'T' : 'N', h->M, h->N, h->K, h->beta, (double)h->calls / steps,
                h->cpu_s / steps, 2.0 * h->M * h->N * (double)h->K * (double)h->calls / h->cpu_s * 1e-9);
    }
}

/* ---- GEMM FLOP counter (see the header) ---- */
typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                         const blasint, const blasint, const blasint, const float, const float *,
                         const blasint, const float *, const blasint, const float, float *, const blasint);
static _Atomic long long gemm_flops_count; /* the layers call GEMM from several threads */
#define gemm_flops ((double)atomic_load(&gemm_flops_count))

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint M, const blasint N, const blasint K, const float alpha, const float *A,
                 const blasint lda, const float *B, const blasint ldb, const float beta, float *C,
                 const blasint ldc) {
    static sgemm_fn real_sgemm;
    if (!real_sgemm) {
        void *sym = dlsym(RTLD_NEXT, "cblas_sgemm");
        memcpy(&real_sgemm, &sym, sizeof sym);
        if (!real_sgemm) {
            fprintf(stderr, "bench_sdumc: cannot find OpenBLAS's cblas_sgemm\n");
            exit(1);
        }
    }
    atomic_fetch_add(&gemm_flops_count, 2LL * (long long)M * (long long)N * (long long)K);
    if (!shape_profile) {
        real_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const double c0 = thread_cpu_s();
    real_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    shape_record(ta == CblasTrans, tb == CblasTrans, M, N, K, beta != 0.0f, thread_cpu_s() - c0);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (every thread): on a loaded machine a steadier measure of
 * work than wall time, as long as no thread spins (OMP_WAIT_POLICY=passive). */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Peak resident set (VmHWM) of this process, MiB. */
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double kib = -1.0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atof(line + 6);
    fclose(f);
    return kib / 1024.0;
}

/* The shared input generator (bench_torch.py has the same): a multiplicative hash of (i, salt)
 * mapped to [-1, 1). */
static float bench_value(uint64_t i, uint64_t salt) {
    uint32_t h = (uint32_t)((i * 2654435761u + salt * 40503u + 12345u) & 0xffffffffu);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return (float)((double)h / 4294967296.0 * 2.0 - 1.0);
}
static float *bench_tensor(size_t n, uint64_t salt) {
    float *x = sd_alloc(n * sizeof *x + 1);
    if (!x) {
        fprintf(stderr, "bench_sdumc: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) x[i] = bench_value(i, salt);
    return x;
}

typedef struct {
    int dims[3], frames[3], sim, batch, threads, steps, warmup;
} options;

static int parse3(const char *s, int *v) { return sscanf(s, "%d,%d,%d", &v[0], &v[1], &v[2]) == 3 ? 0 : -1; }

typedef struct {
    float *x[4]; /* audio, text, video, sim: [B,T,D] */
    int *len[4];
    int T[4];
    float *label;
} inputs;

static void make_inputs(const options *o, int B, inputs *in) {
    const int D[4] = {o->dims[0], o->dims[1], o->dims[2], o->dims[1]};
    const int T[4] = {o->frames[0], o->frames[1], o->frames[2], o->sim};
    for (int k = 0; k < 4; k++) {
        in->T[k] = T[k];
        in->x[k] = bench_tensor((size_t)B * (size_t)T[k] * (size_t)D[k], (uint64_t)k + 1);
        in->len[k] = malloc(sizeof(int) * (size_t)B);
        for (int b = 0; b < B; b++) in->len[k][b] = T[k];
    }
    in->label = bench_tensor((size_t)B, 9);
    for (int b = 0; b < B; b++) in->label[b] *= 3.0f;
}

static sd_flow_input flow_in(const inputs *in, int B, int text_slot) {
    sd_flow_input f = {B, {in->x[0], in->x[text_slot], in->x[2]}, {in->T[0], in->T[text_slot], in->T[2]},
                       {in->len[0], in->len[text_slot], in->len[2]},
                       {SD_DTYPE_F32, SD_DTYPE_F32, SD_DTYPE_F32}, {NULL, NULL, NULL}, {NULL, NULL, NULL}};
    return f;
}

static sd_model *make_model(const options *o) {
    sd_model_config cfg = sd_model_default_config(o->dims[0], o->dims[1], o->dims[2]);
    cfg.seed = 1;
    sd_model *m = NULL;
    sd_error err;
    if (sd_model_create(&cfg, &m, &err)) {
        fprintf(stderr, "bench_sdumc: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static int run_train(const options *o) {
    sd_model *m = make_model(o);
    inputs in;
    make_inputs(o, o->batch, &in);
    sd_flow_input full = flow_in(&in, o->batch, 1), miss = flow_in(&in, o->batch, 3);
    const sd_loss_weights w = {0.5f, 0.5f, 0.1f, 0.7f, 0.13f, 0.5f}; /* the paper preset */
    float *grads = sd_params_alloc_buffer(&m->table), *am = sd_params_alloc_buffer(&m->table),
          *av = sd_params_alloc_buffer(&m->table);
    unsigned char *used = calloc((size_t)m->table.count, 1);
    for (int i = 0; i < m->table.count; i++) used[i] = (unsigned char)sd_model_tensor_used(m, i);
    sd_objective *obj = sd_objective_new();
    sd_adam_config ac = sd_adam_default_config();
    sd_rng rng = sd_rng_make(7, SD_STREAM_DROPOUT);
    double *t = malloc(sizeof(double) * (size_t)o->steps), *c = malloc(sizeof(double) * (size_t)o->steps);
    double flops = 0.0, loss = 0.0;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        if (s == o->warmup) shape_profile = getenv("SD_BENCH_GEMM_SHAPES") != NULL; /* timed steps only */
        const double f0 = gemm_flops, t0 = now_s(), c0 = cpu_s();
        memset(grads, 0, sizeof(float) * m->table.total);
        sd_loss_terms terms;
        sd_error err;
        if (sd_objective_run(obj, m, &full, &miss, in.label, &w, 1, &rng, grads, &terms, &err)) {
            fprintf(stderr, "bench_sdumc: %s\n", err.msg);
            return 1;
        }
        sd_adam_step_table(&m->table, used, m->params, grads, am, av, &ac, ac.lr, s + 1);
        const double dt = now_s() - t0, dc = cpu_s() - c0;
        if (s >= o->warmup) {
            t[s - o->warmup] = dt;
            c[s - o->warmup] = dc;
        }
        flops = gemm_flops - f0;
        loss = terms.total;
    }
    if (shape_profile) shape_report(o->steps);
    const double med = median(t, o->steps), cpu_med = median(c, o->steps);
    printf("{\"side\": \"sdumc\", \"mode\": \"train\", \"threads\": %d, \"batch\": %d, \"step_s\": %.6f, \"step_cpu_s\": %.6f, "
           "\"samples_per_s\": %.3f, \"gemm_gflop_per_step\": %.4f, \"peak_rss_mib\": %.1f, \"loss\": %.6f, "
           "\"steps\": %d, \"min_step_s\": %.6f, \"max_step_s\": %.6f, \"min_step_cpu_s\": %.6f}\n",
           sd_threads_get(), o->batch, med, cpu_med, o->batch / med, flops * 1e-9, peak_rss_mib(), loss, o->steps, t[0],
           t[o->steps - 1], c[0]);
    free(t);
    free(c);
    return 0;
}

static double time_forward(sd_flow *f, const sd_model *m, const sd_flow_input *in, int reps, int warmup) {
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int s = 0; s < warmup + reps; s++) {
        sd_error err;
        const double t0 = now_s();
        if (sd_flow_forward(f, m, in, 1, 0, NULL, &err)) {
            fprintf(stderr, "bench_sdumc: %s\n", err.msg);
            exit(1);
        }
        const double dt = now_s() - t0;
        if (s >= warmup) t[s - warmup] = dt;
    }
    double med = median(t, reps);
    free(t);
    return med;
}

static int run_infer(const options *o) {
    sd_model *m = make_model(o);
    sd_error perr;
    if (sd_model_prepare_inference(m, &perr)) { /* as the public API does after loading */
        fprintf(stderr, "bench_sdumc: %s\n", perr.msg);
        return 1;
    }
    inputs in1, inB;
    make_inputs(o, 1, &in1);
    make_inputs(o, o->batch, &inB);
    sd_flow *f = sd_flow_new();
    sd_flow_input one = flow_in(&in1, 1, 3), many = flow_in(&inB, o->batch, 3);
    const double lat = time_forward(f, m, &one, o->steps * 5, o->warmup * 5);
    const double tb = time_forward(f, m, &many, o->steps, o->warmup);
    printf("{\"side\": \"sdumc\", \"mode\": \"infer\", \"threads\": %d, \"batch\": %d, \"latency1_ms\": %.4f, "
           "\"batch_s\": %.6f, \"infer_samples_per_s\": %.2f}\n",
           sd_threads_get(), o->batch, lat * 1e3, tb, o->batch / tb);
    sd_flow_free(f);
    return 0;
}

/* The vector level the library's per-CPU clones run at here (core/simd.h: GCC's x86-64-v4 / v3
 * levels, what its resolver checks), with the instruction set it means. */
static const char *vector_isa(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
        return "x86-64-v3 (AVX2+FMA)";
    return "x86-64 (SSE2)";
#else
    return "not x86-64";
#endif
}

static int run_gemm(const options *o) {
    const size_t n = 2048;
    float *A = bench_tensor(n * n, 1), *B = bench_tensor(n * n, 2), *C = bench_tensor(n * n, 3);
    double best = 0.0;
    for (int r = 0; r < 3 + o->steps / 4; r++) {
        const double t0 = now_s();
        sd_sgemm(0, 1, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        const double dt = now_s() - t0;
        const double rate = 2.0 * (double)n * n * n / dt * 1e-9;
        if (r > 0 && rate > best) best = rate;
    }
    printf("{\"side\": \"sdumc\", \"mode\": \"gemm\", \"threads\": %d, \"gemm_peak_gflops\": %.2f, \"n\": %zu, "
           "\"blas_core\": \"%s\", \"vector_isa\": \"%s\"}\n",
           sd_threads_get(), best, n, openblas_get_corename(), vector_isa());
    return 0;
}

int main(int argc, char **argv) {
    options o = {{1024, 4096, 1024}, {250, 30, 60}, 30, 96, 0, 20, 3};
    if (argc < 2) {
        fprintf(stderr, "usage: bench_sdumc train|infer|gemm [--dims a,t,v] [--frames Ta,Tt,Tv] [--sim Ts] "
                        "[--batch B] [--threads n] [--steps N] [--warmup W]\n");
        return 2;
    }
    const char *mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int bad = 0;
        if (!strcmp(k, "--dims")) bad = parse3(v, o.dims);
        else if (!strcmp(k, "--frames")) bad = parse3(v, o.frames);
        else if (!strcmp(k, "--sim")) o.sim = atoi(v);
        else if (!strcmp(k, "--batch")) o.batch = atoi(v);
        else if (!strcmp(k, "--threads")) o.threads = atoi(v);
        else if (!strcmp(k, "--steps")) o.steps = atoi(v);
        else if (!strcmp(k, "--warmup")) o.warmup = atoi(v);
        else bad = 1;
        if (bad) {
            fprintf(stderr, "bench_sdumc: bad option %s %s\n", k, v);
            return 2;
        }
    }
    if (o.batch < 1 || o.steps < 1 || o.warmup < 0 || o.sim < 1) {
        fprintf(stderr, "bench_sdumc: batch, steps and sim must be positive\n");
        return 2;
    }
    sd_threads_set(o.threads);
    if (!strcmp(mode, "train")) return run_train(&o);
    if (!strcmp(mode, "infer")) return run_infer(&o);
    if (!strcmp(mode, "gemm")) return run_gemm(&o);
    fprintf(stderr, "bench_sdumc: unknown mode %s\n", mode);
    return 2;
}
