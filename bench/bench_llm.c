/* Decoder throughput: prompt pass (prefill) and generated tokens per second for a GGUF model,
 * against the memory-bandwidth bound (weights read once per decode step).
 *
 *   bench_llm MODEL.gguf [--prompt N] [--gen N] [--beams N] [--threads N] [--exact 0|1] [--kv f16|f32]
 *
 * The prompt is N token embeddings of random ids; generation feeds back the argmax (greedy, one
 * token per step) for --gen steps, then --gen steps of a --beams wide step (B tokens per step: the
 * beam search shape). The bandwidth is measured here: a multi-threaded sum over a 1 GiB buffer
 * (best of 3), printed with the bound tokens/s = bandwidth / weight bytes per step.
 * Warm-up: one untimed prefill + step before timing (pages of the mapping are faulted in). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/threads.h"
#include "llm/kernels.h"
#include "llm/llama.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read bandwidth in GB/s: every thread sums its slice of a 1 GiB buffer. */
static double read_bandwidth(void) {
    size_t n = ((size_t)1 << 30) / sizeof(float);
    float *buf = sd_alloc(n * sizeof(float));
    if (!buf) return 0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t = now_s();
        float total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
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

static int argmax(const float *v, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return (int)b;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_llm MODEL.gguf [--prompt N] [--gen N] [--beams N] [--threads N] "
                        "[--exact 0|1] [--kv f16|f32]\n");
        return 2;
    }
    int prompt = 64, gen = 16, beams = 4, threads = 0, exact = 0, kv_f16 = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--prompt")) prompt = v;
        else if (!strcmp(argv[i], "--exact")) exact = v;
        else if (!strcmp(argv[i], "--kv")) kv_f16 = !strcmp(argv[i + 1], "f16");
        else if (!strcmp(argv[i], "--gen")) gen = v;
        else if (!strcmp(argv[i], "--beams")) beams = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (prompt < 1 || gen < 1 || beams < 1) return 2;
    threads = sd_threads_set(threads);
    sd_error err = {0};
    sd_llama *m = NULL;
    double t_load = now_s();
    if (sd_llama_load(argv[1], &m, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    t_load = now_s() - t_load;
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    const size_t D = (size_t)hp->n_embd, V = (size_t)hp->n_vocab;
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    double wbytes = (double)sd_llama_weight_bytes(m);
    printf("machine: %s, %d threads, OpenMP %s, kernels %s, %s arithmetic, KV cache %s\n", cpu, threads,
           sd_threads_have_openmp() ? "on" : "off", sd_llm_kernels_name(), exact ? "exact" : "llama.cpp",
           kv_f16 ? "f16" : "f32");
    printf("model: %s: %s, %d layers, hidden %d, heads %d/%d, ff %d, vocab %d; %.1f MB of weights "
           "read per step; load %.2f s\n", argv[1], sd_llama_weight_type(m), hp->n_layer, hp->n_embd,
           hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_vocab, wbytes / 1e6, t_load);

    int32_t *ids = malloc((size_t)prompt * sizeof *ids);
    float *x = malloc((size_t)prompt * D * sizeof *x);          /* [prompt, D] */
    float *xb = malloc((size_t)beams * D * sizeof *xb);         /* [beams, D] */
    float *logits = malloc((size_t)beams * V * sizeof *logits); /* [beams, V] */
    float *hsum = malloc((size_t)beams * D * sizeof *hsum);
    unsigned seed = 12345;
    for (int i = 0; i < prompt; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 8) % V);
    }
    sd_llama_embed(m, ids, (size_t)prompt, x, &err);
    sd_llama_cache *c = NULL;
    sd_llama_cache_params cp = {(size_t)prompt, (size_t)gen + 1, (size_t)beams, 0,
                                exact ? SD_LLM_ARITH_EXACT : SD_LLM_ARITH_LLAMACPP, kv_f16};
    if (sd_llama_cache_create(m, &cp, &c, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    /* warm-up (faults the mapping in) */
    sd_llama_out o = {logits, 0, hsum, NULL, NULL}; /* steps: the hidden-state sum too */
    sd_llama_out op = {logits, 0, NULL, NULL, NULL}; /* prefill: last-position logits only */
    sd_llama_prefill(m, c, x, (size_t)(prompt < 8 ? prompt : 8), &op, &err);
    sd_llama_step(m, c, x, 1, &o, &err);
    sd_llama_cache_reset(c);

    double t = now_s();
    if (sd_llama_prefill(m, c, x, (size_t)prompt, &op, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    double t_prefill = now_s() - t;
    int tok = argmax(logits, V);
    t = now_s();
    for (int s = 0; s < gen; s++) {
        sd_llama_embed(m, &tok, 1, xb, &err);
        if (sd_llama_step(m, c, xb, 1, &o, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
        tok = argmax(logits, V);
    }
    double t_gen = now_s() - t;

    /* the beam-search shape: every step feeds `beams` tokens */
    sd_llama_cache_reset(c);
    sd_llama_prefill(m, c, x, (size_t)prompt, &op, &err);
    double t_beam = 0;
    if (beams > 1) {
        t = now_s();
        for (int s = 0; s < gen; s++) {
            for (int b = 0; b < beams; b++) {
                int32_t id = (int32_t)((tok + b) % (int)V);
                sd_llama_embed(m, &id, 1, xb + (size_t)b * D, &err);
            }
            if (sd_llama_step(m, c, xb, (size_t)beams, &o, &err)) {
                fprintf(stderr, "error: %s\n", err.msg);
                return 1;
            }
            tok = argmax(logits, V);
        }
        t_beam = now_s() - t;
    }
    double bw = read_bandwidth();
    printf("prompt pass: %d tokens in %.3f s = %.1f tokens/s\n", prompt, t_prefill, prompt / t_prefill);
    printf("generation (1 token per step): %d steps in %.3f s = %.2f tokens/s, %.1f ms/token\n", gen,
           t_gen, gen / t_gen, 1e3 * t_gen / gen);
    if (beams > 1)
        printf("beam steps (%d tokens per step): %d steps in %.3f s = %.2f steps/s = %.2f tokens/s\n",
               beams, gen, t_beam, gen / t_beam, gen * beams / t_beam);
    printf("memory read bandwidth (%d threads, 1 GiB sum, best of 3): %.1f GB/s -> bound %.2f "
           "steps/s for %.1f MB per step; generation reaches %.0f%% of it\n", threads, bw,
           bw * 1e9 / wbytes, wbytes / 1e6, 100.0 * (gen / t_gen) / (bw * 1e9 / wbytes));
    free(ids), free(x), free(xb), free(logits), free(hsum);
    sd_llama_cache_free(c);
    sd_llama_free(m);
    return 0;
}
