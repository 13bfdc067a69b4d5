/* sdumc text-features: the real-text features of MODEL.md section 6 (the LLM's hidden states of the
 * transcript tokens, combined as the simulated frames are) for every row of a transcripts CSV. The
 * work is the library's (src/llm/text_features.h); this file parses the options, loads the model
 * and prints the progress. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "common.h"
#include "core/threads.h"
#include "llm/kernels.h"
#include "llm/text_features.h"

static void print_progress(void *user, const sd_utt_report *r) {
    (void)user;
    if (r->outcome == SD_UTT_FAILED) {
        fprintf(stderr, "error: %s: %s\n", r->name, r->error);
        return;
    }
    if (r->outcome == SD_UTT_SKIPPED) return;
    if (r->n_out_of_f16)
        fprintf(stderr, "warning: %s: %zu values outside the float16 range\n", r->name, r->n_out_of_f16);
    fprintf(stderr, "[%zu/%zu] %s: %zu tokens, %zu frames, %.2f s\n", r->index + 1, r->total, r->name, r->n_tokens,
            r->n_frames, r->seconds);
}

int cli_text_features(int argc, char **argv) {
    const char *llm = NULL, *csv = NULL, *out = NULL, *name_col = "name", *text_col = "text";
    sd_textfeat_params tp = sd_textfeat_default_params();
    int threads = 0, exact = 0, kv = -1, dtype = 0, batch = 512;
    arg_spec specs[] = {
        {"llm", ARG_STRING, &llm, 0, 0, NULL, "LLaMA-architecture model in GGUF, the one simulate-text uses", 0, 0},
        {"transcripts", ARG_STRING, &csv, 0, 0, NULL, "CSV with a header and one row per utterance", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "output folder (the dataset's text folder)", 0, 0},
        {"name-column", ARG_STRING, &name_col, 0, 0, NULL, "column of the utterance names (name)", 0, 0},
        {"text-column", ARG_STRING, &text_col, 0, 0, NULL, "column of the transcripts (text; MERTools files: english)", 0, 0},
        {"batch-tokens", ARG_INT, &batch, 1, 1 << 20, NULL, "positions per forward pass, utterances packed (512)", 0, 0},
        {"dtype", ARG_CHOICE, &dtype, 0, 0, "f16|f32", "output dtype (f16)", 0, 0},
        {"drop-bos", ARG_FLAG, &tp.drop_bos, 0, 0, NULL, "leave the BOS row out (MERTools' extraction; MODEL.md keeps it)", 0, 0},
        {"exact", ARG_FLAG, &exact, 0, 0, NULL,
         "float32 activations (default: llama.cpp's arithmetic, as simulate-text)", 0, 0},
        {"kv-cache", ARG_CHOICE, &kv, 0, 0, "f16|f32", "KV cache type (f16, or f32 with --exact)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 4096, NULL, "threads (0 = all cores)", 0, 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("text-features", "sdumc text-features --llm MODEL.gguf --transcripts CSV --out DIR [options]",
                   "Writes OUT/<name>.npy ([tokens, hidden] float16: the sum of the last four hidden-state\n"
                   "entries at every token, BOS included) for every row of the CSV. Use the dataset's text\n"
                   "folder as OUT and the model simulate-text uses. Existing outputs are kept (the run resumes).",
                   specs, n, argc, argv, &code))
        return code;
    if (!llm || !csv || !out) {
        fprintf(stderr, "sdumc text-features: --llm, --transcripts and --out are required "
                        "(sdumc text-features --help)\n");
        return 2;
    }
    tp.arith = exact ? SD_LLM_ARITH_EXACT : SD_LLM_ARITH_LLAMACPP;
    tp.kv_f16 = kv < 0 ? !exact : kv == 0;
    tp.batch_tokens = (size_t)batch;
    threads = sd_threads_set(threads);
    sd_error err = {0};
    sd_transcripts t = {0};
    sd_llama *m = NULL;
    sd_textfeat *tf = NULL;
    int rc = 1;
    if (sd_transcripts_read(csv, name_col, text_col, 0, &t, &err) || sd_llama_load(llm, &m, &err) ||
        sd_textfeat_create(m, &tp, &tf, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    if (t.n == 0) {
        fprintf(stderr, "error: %s: no utterances\n", csv);
        goto end;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "error: cannot create %s: %s\n", out, strerror(errno));
        goto end;
    }
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    fprintf(stderr, "text-features: %zu utterances, %s (%s, %d layers, hidden %d), %s arithmetic, KV cache %s, "
            "%zu positions per pass, %d threads, kernels %s\n", t.n, llm, sd_llama_weight_type(m), hp->n_layer,
            hp->n_embd, exact ? "exact" : "llama.cpp", tp.kv_f16 ? "f16" : "f32", tp.batch_tokens, threads,
            sd_llm_kernels_name());
    sd_textfeat_job job = {&t, csv, out, dtype ? SD_DTYPE_F32 : SD_DTYPE_F16, 0, t.n, print_progress, NULL};
    sd_utt_counts counts;
    double t0 = sd_utt_now();
    if (sd_textfeat_run(tf, &job, &counts, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    fprintf(stderr, "text-features: %zu written, %zu already done, %zu failed, %.1f s\n", counts.written,
            counts.skipped, counts.failed, sd_utt_now() - t0);
    rc = counts.failed ? 1 : 0;
end:
    sd_textfeat_free(tf);
    sd_llama_free(m);
    sd_transcripts_free(&t);
    return rc;
}
