/* sdumc simulate-text: the simulated text of MODEL.md section 6 from WavLM features.
 *
 *   for each DIR/<name>.npy [T, Df] in --wavlm (sorted by name):
 *     projector -> [T/5, D] speech embeddings; + BOS + prompt; LLM generation (4 beams);
 *     --out/<name>.npy  [frames, D] float16 (frames = generation steps - 1)
 *     --out/transcripts.csv  name,text  (the decoded best hypothesis)
 *
 * Resumable: an utterance whose .npy exists and that has a transcripts.csv row is skipped. Every file
 * is replaced atomically (temporary + rename), the .npy before the CSV row, so an interrupted run
 * leaves no partial file and redoes at most the utterance it was working on. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "common.h"
#include "core/alloc.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "io/csv.h"
#include "io/file.h"
#include "io/npy.h"
#include "llm/generate.h"
#include "llm/kernels.h"
#include "llm/projector.h"

/* ---- transcripts.csv -------------------------------------------------------------------- */

typedef struct {
    char **name, **text;
    size_t n, cap;
} table;

static int table_add(table *t, const char *name, const char *text) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **a = realloc(t->name, cap * sizeof *a), **b;
        if (!a) return -1;
        t->name = a;
        if (!(b = realloc(t->text, cap * sizeof *b))) return -1;
        t->text = b;
        t->cap = cap;
    }
    if (!(t->name[t->n] = strdup(name)) || !(t->text[t->n] = strdup(text))) return -1;
    t->n++;
    return 0;
}

static long table_find(const table *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], name)) return (long)i;
    return -1;
}

static void table_free(table *t) {
    for (size_t i = 0; i < t->n; i++) free(t->name[i]), free(t->text[i]);
    free(t->name);
    free(t->text);
}

/* The rows of an earlier run's transcripts.csv (none when it does not exist yet). */
static int read_transcripts(const char *path, table *t, sd_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) return 0;
    sd_csv_reader r;
    if (sd_csv_open(&r, path, (size_t)1 << 30, err)) return -1;
    int k, row = 0, rc = 0;
    while (!rc && (k = sd_csv_next(&r, err)) != 0) {
        if (k < 0) rc = -1;
        else if (row++ > 0 && *r.field[0] && table_add(t, r.field[0], r.n > 1 ? r.field[1] : "")) {
            sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
            rc = -1;
        }
    }
    sd_csv_close(&r);
    return rc;
}

static sd_status write_transcripts(const char *path, const table *t, sd_error *err) {
    sd_atomic_file af;
    sd_status s = sd_atomic_open(&af, path, err);
    if (s) return s;
    fputs("name,text\n", af.f);
    for (size_t i = 0; i < t->n; i++) {
        sd_csv_write_field(af.f, t->name[i]);
        fputc(',', af.f);
        sd_csv_write_field(af.f, t->text[i]);
        fputc('\n', af.f);
    }
    return sd_atomic_commit(&af, err);
}

/* ---- inputs ----------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names (without .npy) of the .npy files in dir. */
static int list_npy(const char *dir, char ***names, size_t *n) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".npy") || e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **a = realloc(*names, cap * sizeof *a);
            if (!a) break;
            *names = a;
        }
        (*names)[(*n)++] = strndup(e->d_name, l - 4);
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_str);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- one utterance ---------------------------------------------------------------------- */

typedef struct {
    const sd_llama *m;
    const sd_projector *proj;
    sd_llama_cache *cache;
    size_t cache_prefix;
    sd_gen_params gp;
    const char *prompt;
} ctx;

static sd_status simulate_one(ctx *c, const char *in_path, const char *out_path, char **text,
                              size_t *n_frames, size_t *n_tokens, size_t *n_steps, sd_error *err) {
    sd_npy_header h;
    float *feats = NULL, *speech = NULL, *prefix = NULL;
    size_t R = 0, P = 0;
    sd_gen_result res = {0};
    *text = NULL;
    sd_status s = sd_npy_read(in_path, &h, &feats, err);
    if (s) return s;
    if (h.cols != sd_projector_feat_dim(c->proj)) {
        sd_free(feats);
        return sd_fail(err, SD_E_SHAPE, "%s: features of dim %lld, the projector expects %lld "
                       "(WavLM-large last layer: 1024)", in_path, (long long)h.cols,
                       (long long)sd_projector_feat_dim(c->proj));
    }
    s = sd_projector_forward(c->proj, feats, (size_t)h.rows, (size_t)h.cols, &speech, &R, err);
    sd_free(feats);
    if (s) {
        sd_error_prefix(err, "%s", in_path);
        return s;
    }
    s = sd_gen_build_prefix(c->m, speech, R, c->prompt, &prefix, &P, err);
    sd_free(speech);
    if (s) return s;
    const sd_llama_hparams *hp = sd_llama_get_hparams(c->m);
    size_t steps = (size_t)c->gp.max_new_tokens - 1;
    if (P + steps > (size_t)hp->n_ctx) {
        free(prefix);
        return sd_fail(err, SD_E_SHAPE, "%s: %zu speech frames + prompt (%zu positions) + %zu new "
                       "tokens exceed the model's context of %d", in_path, R, P, steps + 1, hp->n_ctx);
    }
    if (!c->cache || P > c->cache_prefix) {
        sd_llama_cache_free(c->cache);
        c->cache = NULL;
        size_t want = P + P / 2 + 16;
        if (want + steps > (size_t)hp->n_ctx) want = (size_t)hp->n_ctx - steps;
        s = sd_llama_cache_create(c->m, want, steps, (size_t)c->gp.n_beams, &c->cache, err);
        if (s) {
            free(prefix);
            return s;
        }
        c->cache_prefix = want;
    }
    s = sd_generate(c->m, c->cache, prefix, P, &c->gp, &res, err);
    free(prefix);
    if (s) return s;
    const size_t D = (size_t)hp->n_embd;
    if (res.n_frames == 0) {
        sd_gen_result_free(&res);
        return sd_fail(err, SD_E_SHAPE, "%s: generation produced no frame", in_path);
    }
    size_t big = 0;
    for (size_t i = 0; i < res.n_frames * D; i++)
        if (!(res.frames[i] > -65504.0f && res.frames[i] < 65504.0f)) big++;
    if (big)
        fprintf(stderr, "warning: %s: %zu values outside the float16 range\n", in_path, big);
    char *raw = NULL;
    size_t raw_len = 0;
    s = sd_tokenizer_decode(sd_llama_get_tokenizer(c->m), res.tokens, res.n_tokens, &raw, &raw_len, err);
    if (!s) s = sd_utf8_repair(raw, raw_len, text, NULL, err);
    free(raw);
    if (!s) s = sd_npy_write(out_path, res.frames, 2, (int64_t)res.n_frames, (int64_t)D, SD_DTYPE_F16, err);
    *n_frames = res.n_frames;
    *n_tokens = res.n_tokens;
    *n_steps = res.steps;
    sd_gen_result_free(&res);
    if (s) {
        free(*text);
        *text = NULL;
    }
    return s;
}

/* ---- main ------------------------------------------------------------------------------- */

int cli_simulate_text(int argc, char **argv) {
    const char *llm = NULL, *proj_path = NULL, *wavlm = NULL, *out = NULL, *prompt = SD_GEN_PROMPT;
    sd_gen_params gp = sd_gen_default_params();
    int threads = 0, greedy = 0, features = 0;
    arg_spec specs[] = {
        {"llm", ARG_STRING, &llm, 0, 0, NULL, "LLaMA-architecture model in GGUF (F32, F16, Q8_0, Q4_0), e.g. Vicuna-7B v1.5", 0, 0},
        {"projector", ARG_STRING, &proj_path, 0, 0, NULL, "SLAM-LLM projector (linear1 [2048, 5120], linear2 [hidden, 2048])", 0, 0},
        {"wavlm", ARG_STRING, &wavlm, 0, 0, NULL, "folder of WavLM-large features <name>.npy [T, 1024]", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "output folder (the dataset's text_sim folder)", 0, 0},
        {"beams", ARG_INT, &gp.n_beams, 1, 64, NULL, "beam search width (4)", 0, 0},
        {"greedy", ARG_FLAG, &greedy, 0, 0, NULL, "greedy decoding (--beams 1)", 0, 0},
        {"max-new-tokens", ARG_INT, &gp.max_new_tokens, 2, 100000, NULL, "maximum generated tokens (200)", 0, 0},
        {"features", ARG_CHOICE, &features, 0, 0, "slot0|best",
         "slot0: beam slot 0 at every step (MODEL.md section 6, default); best: the returned hypothesis' own steps", 0, 0},
        {"threads", ARG_INT, &threads, 0, 4096, NULL, "threads (0 = all cores)", 0, 0},
        {"prompt", ARG_STRING, &prompt, 0, 0, NULL, "prompt text (default: the MODEL.md prompt)", 0, 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("simulate-text",
                   "sdumc simulate-text --llm MODEL.gguf --projector P.safetensors --wavlm DIR --out DIR [options]",
                   "Writes OUT/<name>.npy ([frames, hidden] float16) for every WAVLM/<name>.npy ([T, 1024],\n"
                   "WavLM-large last layer, 50 Hz) and OUT/transcripts.csv (name,text). Use the dataset's\n"
                   "text_sim folder as OUT. Existing outputs are kept (the run resumes).",
                   specs, n, argc, argv, &code))
        return code;
    if (greedy) gp.n_beams = 1;
    gp.features = features ? SD_FEATURES_BEST_BEAM : SD_FEATURES_FIRST_SLOT;
    if (!llm || !proj_path || !wavlm || !out) {
        fprintf(stderr, "sdumc simulate-text: --llm, --projector, --wavlm and --out are required "
                        "(sdumc simulate-text --help)\n");
        return 2;
    }
    sd_error err = {0};
    const sd_input inputs[3] = {{wavlm, "--wavlm"}, {llm, "--llm"}, {proj_path, "--projector"}};
    if (sd_output_check(out, "--out", inputs, 3, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 2;
    }
    threads = sd_threads_set(threads);
    sd_llama *m = NULL;
    sd_projector *proj = NULL;
    if (sd_llama_load(llm, &m, &err) || sd_projector_load(proj_path, SD_PROJECTOR_K, &proj, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        sd_llama_free(m);
        return 1;
    }
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    int rc = 1;
    char **names = NULL;
    size_t n_names = 0;
    table done = {0};
    ctx c = {m, proj, NULL, 0, gp, prompt};
    char *csv_path = NULL;
    if (sd_projector_out_dim(proj) != hp->n_embd) {
        fprintf(stderr, "error: %s: projector output dim %lld does not match the LLM's embedding "
                "length %d (%s)\n", proj_path, (long long)sd_projector_out_dim(proj), hp->n_embd, llm);
        goto end;
    }
    if (list_npy(wavlm, &names, &n_names) || n_names == 0) {
        fprintf(stderr, "error: %s: %s\n", wavlm, n_names ? strerror(errno) : "no .npy feature files");
        goto end;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "error: cannot create %s: %s\n", out, strerror(errno));
        goto end;
    }
    if (!(csv_path = malloc(strlen(out) + 32))) goto end;
    sprintf(csv_path, "%s/", out);
    sd_atomic_remove_stale(csv_path, time(NULL)); /* what a killed run left in the folder */
    sprintf(csv_path, "%s/transcripts.csv", out);
    if (read_transcripts(csv_path, &done, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    fprintf(stderr, "simulate-text: %zu utterances, %s (%s, %d layers, hidden %d), %s, %d threads, "
            "kernels %s\n", n_names, llm, sd_llama_weight_type(m), hp->n_layer, hp->n_embd,
            gp.n_beams > 1 ? "beam search" : "greedy", threads, sd_llm_kernels_name());
    size_t n_ok = 0, n_skip = 0, n_fail = 0;
    double t0 = now_s();
    for (size_t i = 0; i < n_names; i++) {
        size_t lp = strlen(out) + strlen(names[i]) + 8, li = strlen(wavlm) + strlen(names[i]) + 8;
        char *out_path = malloc(lp), *in_path = malloc(li);
        if (!out_path || !in_path) {
            free(out_path), free(in_path);
            goto end;
        }
        snprintf(out_path, lp, "%s/%s.npy", out, names[i]);
        snprintf(in_path, li, "%s/%s.npy", wavlm, names[i]);
        if (file_exists(out_path) && table_find(&done, names[i]) >= 0) {
            n_skip++;
            free(out_path), free(in_path);
            continue;
        }
        char *text = NULL;
        size_t nf = 0, nt = 0, ns = 0;
        double t1 = now_s();
        sd_status s = simulate_one(&c, in_path, out_path, &text, &nf, &nt, &ns, &err);
        if (!s) {
            long row = table_find(&done, names[i]);
            if (row >= 0) {
                free(done.text[row]);
                done.text[row] = strdup(text);
                s = done.text[row] ? SD_OK : sd_fail(&err, SD_E_NOMEM, "out of memory");
            } else if (table_add(&done, names[i], text)) {
                s = sd_fail(&err, SD_E_NOMEM, "out of memory");
            }
            if (!s) s = write_transcripts(csv_path, &done, &err);
        }
        double dt = now_s() - t1;
        if (s) {
            n_fail++;
            fprintf(stderr, "error: %s\n", err.msg);
        } else {
            n_ok++;
            double per = (now_s() - t0) / (double)n_ok;
            size_t left = n_names - i - 1;
            fprintf(stderr, "[%zu/%zu] %s: %zu tokens, %zu frames, %zu steps x %d beams, %.1f s "
                    "(%.1f steps/s), ETA %.0f s\n", i + 1, n_names, names[i], nt, nf, ns,
                    c.gp.n_beams, dt, (double)ns / (dt > 0 ? dt : 1), per * (double)left);
        }
        free(text);
        free(out_path), free(in_path);
    }
    fprintf(stderr, "simulate-text: %zu written, %zu already done, %zu failed, %.1f s\n", n_ok, n_skip,
            n_fail, now_s() - t0);
    rc = n_fail ? 1 : 0;
end:
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(csv_path);
    table_free(&done);
    sd_llama_cache_free(c.cache);
    sd_projector_free(proj);
    sd_llama_free(m);
    return rc;
}
