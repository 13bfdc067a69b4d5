/* Decoder throughput, the shapes llama.cpp's llama-bench and llama-batched-bench measure: prompt
 * passes (tokens/s), generation of one sequence (tokens/s), and generation steps of B sequences
 * sharing a prompt (the beam-search shape; tokens/s = B x steps/s); and the memory-bandwidth bound
 * (weight bytes read per step / measured read bandwidth).
 *
 *   bench_llm MODEL.gguf [--prompt N[,N...]] [--gen N] [--beams B] [--threads N] [--exact 0|1]
 *             [--kv f16|f32] [--json]
 *   bench_llm --bandwidth [--threads N]
 *
 * Prompts are N token embeddings of pseudo-random ids; generation feeds back the argmax. Each
 * measurement is preceded by an untimed one of the same kind (it faults the mapping in and warms
 * the caches). The wall time and the process CPU time of each are printed (on a shared machine
 * CPU seconds / wall seconds shows how much of the two cores the process got). The load line gives
 * the seconds of the load spent repacking the weights (src/llm/kernels_repack.h) and the process's
 * resident memory after the load and at its peak (VmRSS, VmHWM). --json adds one line
 * "BENCH {...}" for bench_llm.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/omp.h"
#include "core/threads.h"
#include "llm/kernels.h"
#include "llm/llama.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read bandwidth in GB/s: every thread sums its slice of a 1 GiB buffer (best of 3). */
static double read_bandwidth(void) {
    size_t n = ((size_t)1 << 30) / sizeof(float);
    float *buf = sd_alloc(n * sizeof(float));
    if (!buf) return 0;
SD_OMP(omp parallel for schedule(static))
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t = now_s();
        float total = 0;
SD_OMP(omp parallel for schedule(static) reduction(+ : total))
        for (size_t c = 0; c < n / 4096; c++) {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
            const float *p = buf + c * 4096;
            for (size_t i = 0; i < 4096; i += 8) {
                s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3];
                s4 += p[i + 4]; s5 += p[i + 5]; s6 += p[i + 6]; s7 += p[i + 7];
            }
            total += ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        }
        double dt = now_s() - t;
        sink += total;
        double gbs = (double)(n * sizeof(float)) / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    sd_free(buf);
    return best;
}

static void cpu_name(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(out, n, "%s", c + 2);
                out[strcspn(out, "\n")] = 0;
            }
            break;
        }
    fclose(f);
}

/* A "Vm...:" line of /proc/self/status in MB (0 when absent). */
static double vm_mb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    const size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') {
            kb = atof(line + n + 1);
            break;
        }
    fclose(f);
    return kb / 1024.0;
}

static int32_t argmax(const float *v, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return (int32_t)b;
}

typedef struct {
    const sd_llama *m;
    sd_llama_cache *c;
    float *x, *xb, *logits, *hsum; /* [P, D], [B, D], [B, V], [B, D] */
    size_t D, V;
} bench;

typedef struct {
    double wall, cpu;
} timing;

static int fail(const sd_error *err) {
    fprintf(stderr, "error: %s\n", err->msg);
    return 1;
}

/* A prompt pass of P positions (last-position logits, as llama-bench's pp). */
static int prompt_pass(bench *b, size_t P, timing *t) {
    sd_error err = {0};
    sd_llama_out o = {b->logits, 0, NULL, NULL, NULL};
    sd_llama_cache_reset(b->c);
    double w = now_s(), c = cpu_s();
    if (sd_llama_prefill(b->m, b->c, b->x, P, &o, &err)) return fail(&err);
    t->wall = now_s() - w, t->cpu = cpu_s() - c;
    return 0;
}

/* After a prompt pass of P positions, S steps of B sequences (B = 1: greedy generation; B > 1:
 * B tokens per step, each slot continuing its own history, the hidden-state sums computed as
 * simulate-text does). */
static int gen_steps(bench *b, size_t P, int S, size_t B, timing *t) {
    sd_error err = {0};
    if (prompt_pass(b, P, t)) return 1;
    int32_t tok = argmax(b->logits, b->V);
    double w = now_s(), c = cpu_s();
    for (int s = 0; s < S; s++) {
        for (size_t i = 0; i < B; i++) {
            int32_t id = (int32_t)(((size_t)tok + i) % b->V);
            if (sd_llama_embed(b->m, &id, 1, b->xb + i * b->D, &err)) return fail(&err);
        }
        sd_llama_out o = {b->logits, 0, b->hsum, NULL, NULL};
        if (sd_llama_step(b->m, b->c, b->xb, B, &o, &err)) return fail(&err);
        tok = argmax(b->logits, b->V);
    }
    t->wall = now_s() - w, t->cpu = cpu_s() - c;
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL;
    char prompts[64] = "64";
    int gen = 16, beams = 4, threads = 0, exact = 0, kv_f16 = 1, json = 0, bw_only = 0;
    const char *kernels = NULL; /* at most this kernel set: avx512, avx2 or portable (default: the best) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--bandwidth")) bw_only = 1;
        else if (!strcmp(a, "--prompt")) snprintf(prompts, sizeof prompts, "%s", v), i++;
        else if (!strcmp(a, "--exact")) exact = atoi(v), i++;
        else if (!strcmp(a, "--kv")) kv_f16 = !strcmp(v, "f16"), i++;
        else if (!strcmp(a, "--gen")) gen = atoi(v), i++;
        else if (!strcmp(a, "--beams")) beams = atoi(v), i++;
        else if (!strcmp(a, "--threads")) threads = atoi(v), i++;
        else if (!strcmp(a, "--kernels")) kernels = v, i++;
        else if (a[0] != '-' && !model) model = a;
        else {
            fprintf(stderr, "usage: bench_llm MODEL.gguf [--prompt N[,N...]] [--gen N] [--beams B] [--threads N] "
                            "[--exact 0|1] [--kv f16|f32] [--kernels avx512|avx2|portable] [--json] | "
                            "bench_llm --bandwidth [--threads N]\n");
            return 2;
        }
    }
    if (kernels) { /* e.g. an AVX2 host's kernels on an AVX-512 machine */
        const int want = !strcmp(kernels, "avx512") ? SD_LLM_ISA_AVX512
                         : !strcmp(kernels, "avx2") ? SD_LLM_ISA_AVX2
                         : !strcmp(kernels, "portable") ? SD_LLM_ISA_PORTABLE : -1;
        if (want < 0 || want > (int)sd_llm_isa_detect()) {
            fprintf(stderr, "bench_llm: --kernels %s: not one of avx512, avx2, portable that this CPU runs\n", kernels);
            return 2;
        }
        sd_llm_kernels_limit((sd_llm_isa)want);
    }
    threads = sd_threads_set(threads);
    if (bw_only) {
        double bw = read_bandwidth();
        printf("memory read bandwidth (%d threads, 1 GiB sum, best of 3): %.2f GB/s\n", threads, bw);
        if (json) printf("BENCH {\"bandwidth_gbs\": %.3f}\n", bw);
        return 0;
    }
    size_t P_list[8], nP = 0, Pmax = 0;
    for (char *tok = strtok(prompts, ","); tok && nP < 8; tok = strtok(NULL, ",")) {
        P_list[nP] = (size_t)atoi(tok);
        if (P_list[nP] == 0) return 2;
        if (P_list[nP] > Pmax) Pmax = P_list[nP];
        nP++;
    }
    if (!model || nP == 0 || gen < 1 || beams < 1) return 2;
    sd_error err = {0};
    sd_llama *m = NULL;
    double t_load = now_s();
    if (sd_llama_load_for(model, exact ? SD_LLM_ARITH_EXACT : SD_LLM_ARITH_LLAMACPP, &m, &err)) return fail(&err);
    t_load = now_s() - t_load;
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    const size_t D = (size_t)hp->n_embd, V = (size_t)hp->n_vocab;
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    const double wbytes = (double)sd_llama_weight_bytes(m);
    printf("machine: %s, %d threads, OpenMP %s, kernels %s, %s arithmetic, KV cache %s\n", cpu, threads,
           sd_threads_have_openmp() ? "on" : "off", sd_llm_kernels_name(), exact ? "exact" : "llama.cpp",
           kv_f16 ? "f16" : "f32");
    double t_repack = 0;
    const double packed = (double)sd_llama_packed_bytes(m, &t_repack);
    const double rss_load = vm_mb("VmRSS");
    printf("model: %s: %s, %d layers, hidden %d, heads %d/%d, ff %d, vocab %d; %.1f MB of weights read per step; "
           "load %.2f s (%.2f s of it repacking %.1f MB of weights); RSS after the load %.0f MB\n", model,
           sd_llama_weight_type(m), hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_vocab,
           wbytes / 1e6, t_load, t_repack, packed / 1e6, rss_load);
    bench b = {m, NULL, malloc(Pmax * D * sizeof(float)), malloc((size_t)beams * D * sizeof(float)),
               malloc((size_t)beams * V * sizeof(float)), malloc((size_t)beams * D * sizeof(float)), D, V};
    int32_t *ids = malloc(Pmax * sizeof *ids);
    unsigned seed = 12345;
    for (size_t i = 0; i < Pmax; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 8) % V);
    }
    sd_llama_cache_params cp = {Pmax, (size_t)gen, (size_t)beams, 0,
                                exact ? SD_LLM_ARITH_EXACT : SD_LLM_ARITH_LLAMACPP, kv_f16};
    if (!b.x || !b.xb || !b.logits || !b.hsum || !ids || sd_llama_embed(m, ids, Pmax, b.x, &err) ||
        sd_llama_cache_create(m, &cp, &b.c, &err))
        return fail(&err);
    timing t, warm;
    char js[1024];
    int jn = snprintf(js, sizeof js,
                      "{\"weight_bytes\": %.0f, \"threads\": %d, \"kernels\": \"%s\", \"load_s\": %.3f, "
                      "\"repack_s\": %.3f, \"packed_bytes\": %.0f, \"rss_load_mb\": %.1f",
                      wbytes, threads, sd_llm_kernels_name(), t_load, t_repack, packed, rss_load);
    for (size_t i = 0; i < nP; i++) {
        if (prompt_pass(&b, P_list[i], &warm) || prompt_pass(&b, P_list[i], &t)) return 1;
        printf("prompt pass pp%zu: %.2f tokens/s (%.3f s, %.2f CPU s)\n", P_list[i], (double)P_list[i] / t.wall,
               t.wall, t.cpu);
        jn += snprintf(js + jn, sizeof js - (size_t)jn, ", \"pp%zu\": %.4f, \"pp%zu_cpu\": %.3f", P_list[i],
                       (double)P_list[i] / t.wall, P_list[i], t.cpu);
    }
    /* generation after the first prompt length, as llama-batched-bench's shared prompt */
    if (gen_steps(&b, P_list[0], 2, 1, &warm) || gen_steps(&b, P_list[0], gen, 1, &t)) return 1;
    printf("generation, 1 sequence (tg%d): %.3f tokens/s, %.1f ms/token (%.2f CPU s)\n", gen, gen / t.wall,
           1e3 * t.wall / gen, t.cpu);
    jn += snprintf(js + jn, sizeof js - (size_t)jn, ", \"tg\": %.4f, \"tg_cpu\": %.3f", gen / t.wall, t.cpu);
    if (beams > 1) {
        if (gen_steps(&b, P_list[0], 2, (size_t)beams, &warm) || gen_steps(&b, P_list[0], gen, (size_t)beams, &t)) return 1;
        printf("generation, %d sequences sharing the prompt: %.3f steps/s = %.3f tokens/s (%.2f CPU s)\n", beams,
               gen / t.wall, gen * beams / t.wall, t.cpu);
        jn += snprintf(js + jn, sizeof js - (size_t)jn, ", \"tg_batch\": %.4f, \"tg_batch_cpu\": %.3f, \"beams\": %d",
                       gen * beams / t.wall, t.cpu, beams);
    }
    const double rss_peak = vm_mb("VmHWM");
    printf("peak RSS %.0f MB\n", rss_peak);
    jn += snprintf(js + jn, sizeof js - (size_t)jn, ", \"rss_peak_mb\": %.1f", rss_peak);
    if (json) printf("BENCH %s}\n", js);
    free(ids), free(b.x), free(b.xb), free(b.logits), free(b.hsum);
    sd_llama_cache_free(b.c);
    sd_llama_free(m);
    return 0;
}
