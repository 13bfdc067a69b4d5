/* sdumc simulate-text: the simulated text of MODEL.md section 6 from WavLM features. The pipeline
 * is the library's (src/llm/simulate.h); this file parses the options, loads the models and
 * prints the progress.
 *
 *   for each DIR/<name>.npy [T, Df] in --wavlm (sorted by name):
 *     --out/<name>.npy  [frames, D] float16 (frames = generation steps - 1)
 *     --out/transcripts.csv  name,text  (the decoded best hypothesis)
 * Resumable and atomic (see simulate.h). Under mpirun the ranks share the utterances, and --shard I/N
 * gives independent processes the same shares (share.h, docs/SCALE_OUT.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "common.h"
#include "core/dist.h"
#include "share.h"
#include "core/threads.h"
#include "io/file.h"
#include "llm/kernels.h"
#include "llm/simulate.h"

typedef struct {
    int n_beams;
} progress_ctx;

static void print_progress(void *user, const sd_utt_report *r) {
    const progress_ctx *pc = user;
    if (r->outcome == SD_UTT_FAILED) {
        fprintf(stderr, "error: %s\n", r->error);
        return;
    }
    if (r->outcome == SD_UTT_SKIPPED) return;
    if (r->n_out_of_f16)
        fprintf(stderr, "warning: %s: %zu values outside the float16 range\n", r->name, r->n_out_of_f16);
    double per = r->elapsed / (double)(r->index + 1);
    fprintf(stderr, "[%zu/%zu] %s: %zu tokens, %zu frames, %zu steps x %d beams, %.1f s (%.1f steps/s), "
            "ETA %.0f s\n", r->index + 1, r->total, r->name, r->n_tokens, r->n_frames, r->n_steps,
            pc->n_beams, r->seconds, (double)r->n_steps / (r->seconds > 0 ? r->seconds : 1),
            per * (double)(r->total - r->index - 1));
}

int cli_simulate_text(int argc, char **argv) {
    const char *llm = NULL, *proj_path = NULL, *wavlm = NULL, *out = NULL;
    sd_simtext_params sp = sd_simtext_default_params();
    const char *shard = NULL;
    int threads = 0, greedy = 0, features = 0, exact = 0, kv = -1;
    arg_spec specs[] = {
        {"llm", ARG_STRING, &llm, 0, 0, NULL, "LLaMA-architecture model in GGUF (F32, F16, Q8_0, Q4_0), e.g. Vicuna-7B v1.5", 0, 0},
        {"projector", ARG_STRING, &proj_path, 0, 0, NULL, "SLAM-LLM projector (linear1 [2048, 5120], linear2 [hidden, 2048])", 0, 0},
        {"wavlm", ARG_STRING, &wavlm, 0, 0, NULL, "folder of WavLM-large features <name>.npy [T, 1024]", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "output folder (the dataset's text_sim folder)", 0, 0},
        {"beams", ARG_INT, &sp.gen.n_beams, 1, 64, NULL, "beam search width (4)", 0, 0},
        {"greedy", ARG_FLAG, &greedy, 0, 0, NULL, "greedy decoding (--beams 1)", 0, 0},
        {"max-new-tokens", ARG_INT, &sp.gen.max_new_tokens, 2, 100000, NULL, "maximum generated tokens (200)", 0, 0},
        {"features", ARG_CHOICE, &features, 0, 0, "slot0|best",
         "slot0: beam slot 0 at every step (docs/MODEL.md section 6, default); best: the returned hypothesis' own steps", 0, 0},
        {"exact", ARG_FLAG, &exact, 0, 0, NULL,
         "float32 activations (default: llama.cpp's arithmetic, 8-bit activations for Q8_0/Q4_0 weights)", 0, 0},
        {"kv-cache", ARG_CHOICE, &kv, 0, 0, "f16|f32", "KV cache type (f16, or f32 with --exact)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 4096, NULL, "threads (0 = all cores)", 0, 0},
        {"prompt", ARG_STRING, &sp.prompt, 0, 0, NULL, "prompt text (default: the docs/MODEL.md prompt)", 0, 0},
        {"shard", ARG_STRING, &shard, 0, 0, NULL,
         "do share I/N of the utterances (0 <= I < N; a job array's task), balanced by audio length", 0, 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("simulate-text",
                   "sdumc simulate-text --llm MODEL.gguf --projector P.safetensors --wavlm DIR --out DIR [options]",
                   "Writes OUT/<name>.npy ([frames, hidden] float16) for every WAVLM/<name>.npy ([T, 1024],\n"
                   "WavLM-large last layer, 50 Hz) and OUT/transcripts.csv (name,text). Use the dataset's\n"
                   "text_sim folder as OUT. Existing outputs are kept (the run resumes).",
                   specs, n, argc, argv, &code))
        return code;
    if (greedy) sp.gen.n_beams = 1;
    sp.gen.features = features ? SD_FEATURES_BEST_BEAM : SD_FEATURES_FIRST_SLOT;
    sp.arith = exact ? SD_LLM_ARITH_EXACT : SD_LLM_ARITH_LLAMACPP;
    sp.kv_f16 = kv < 0 ? !exact : kv == 0;
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
    sd_simtext *st = NULL;
    char **names = NULL;
    size_t n_names = 0;
    int rc = 1;
    cli_share share = {0};
    int64_t *cost = NULL; /* [n_names] input frames: the share's balance */
    if (sd_llama_load_for(llm, sp.arith, &m, &err) || sd_projector_load(proj_path, SD_PROJECTOR_K, &proj, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    if (sd_simtext_create(m, proj, &sp, &st, &err)) {
        fprintf(stderr, "error: %s: %s (%s)\n", proj_path, err.msg, llm);
        goto end;
    }
    if (sd_utt_list_npy(wavlm, &names, &n_names, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    if (n_names == 0) {
        fprintf(stderr, "error: %s: no .npy feature files\n", wavlm);
        goto end;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "error: cannot create %s: %s\n", out, strerror(errno));
        goto end;
    }
    cli_remove_stale_in(out); /* what killed runs left */
    progress_ctx pc = {sp.gen.n_beams};
    if (!(cost = malloc(sizeof *cost * n_names)) || sd_shard_npy_rows(wavlm, names, n_names, cost, &err)) {
        fprintf(stderr, "error: %s\n", cost ? err.msg : "out of memory");
        goto end;
    }
    if ((rc = cli_share_open(&share, "simulate-text", shard, out, 1, names, n_names, cost, NULL, print_progress, &pc)))
        goto end;
    rc = 1;
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    if (sd_dist_rank() == 0)
        fprintf(stderr, "simulate-text: %zu utterances, %s (%s, %d layers, hidden %d), %s, %s arithmetic, "
                "KV cache %s, %d threads, kernels %s\n", n_names, llm, sd_llama_weight_type(m), hp->n_layer,
                hp->n_embd, sp.gen.n_beams > 1 ? "beam search" : "greedy", exact ? "exact" : "llama.cpp",
                sp.kv_f16 ? "f16" : "f32", threads, sd_llm_kernels_name());
    sd_simtext_job job = {wavlm, out, share.csv_path, share.mine, 0, share.n_mine, cli_share_progress, &share};
    sd_utt_counts counts = {0};
    sd_status run = sd_simtext_run(st, &job, &counts, &err);
    rc = cli_share_close(&share, run, &err, &counts);
end:
    free(cost);
    cli_share_free(&share);
    sd_utt_names_free(names, n_names);
    sd_simtext_free(st);
    sd_projector_free(proj);
    sd_llama_free(m);
    return rc;
}
