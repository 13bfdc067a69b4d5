/* sdumc text-features: the real-text features of MODEL.md section 6 (the LLM's hidden states of the
 * transcript tokens, combined as the simulated frames are) for every row of a transcripts CSV. The
 * work is the library's (src/llm/text_features.h); this file parses the options, loads the model
 * and prints the progress. Under mpirun the ranks share the rows, and --shard I/N gives independent
 * processes the same shares, balanced by transcript length (share.h, docs/SCALE_OUT.md). */
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
    const char *llm = NULL, *csv = NULL, *out = NULL, *name_col = "name", *text_col = "text", *shard = NULL;
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
        {"shard", ARG_STRING, &shard, 0, 0, NULL,
         "do share I/N of the rows (0 <= I < N; a job array's task), balanced by transcript length", 0, 0},
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
    {
        sd_error e = {0};
        const sd_input inputs[2] = {{csv, "--transcripts"}, {llm, "--llm"}};
        if (sd_output_check(out, "--out", inputs, 2, &e)) {
            fprintf(stderr, "sdumc text-features: %s\n", e.msg);
            return 2;
        }
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
    cli_share share = {0};
    int64_t *cost = NULL;      /* [t.n] tokens of each row: the share's balance */
    size_t *pass = NULL;       /* [t.n] the pass of each row */
    sd_transcripts mine = {0}; /* this worker's rows of t (borrowed strings) */
    if (sd_transcripts_read(csv, name_col, text_col, 0, &t, &err) || sd_llama_load_for(llm, tp.arith, &m, &err) ||
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
    cli_remove_stale_in(out); /* what killed runs left */
    /* The passes one process would make; workers take whole passes, so each computes exactly what
     * one process does (a pass's rows share its products). Every worker checks every transcript. */
    sd_textfeat_job all = {&t, csv, out, dtype ? SD_DTYPE_F32 : SD_DTYPE_F16, 0, t.n, NULL, NULL};
    if (!(cost = malloc(sizeof *cost * t.n)) || !(pass = malloc(sizeof *pass * t.n))) goto end;
    if (sd_textfeat_plan(tf, &all, pass, cost, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    if ((rc = cli_share_open(&share, "text-features", shard, out, 0, t.name, t.n, cost, pass, print_progress, NULL)))
        goto end;
    rc = 1;
    mine.name = share.mine;
    mine.text = malloc(sizeof *mine.text * (share.n_mine + 1));
    mine.line = malloc(sizeof *mine.line * (share.n_mine + 1));
    if (!mine.text || !mine.line) goto end;
    for (size_t i = 0; i < share.n_mine; i++) {
        mine.text[i] = t.text[share.mine_idx[i]];
        mine.line[i] = t.line[share.mine_idx[i]];
    }
    mine.n = mine.cap = share.n_mine;
    const sd_llama_hparams *hp = sd_llama_get_hparams(m);
    if (sd_dist_rank() == 0)
        fprintf(stderr, "text-features: %zu utterances, %s (%s, %d layers, hidden %d), %s arithmetic, KV cache %s, "
                "%zu positions per pass, %d threads, kernels %s\n", t.n, llm, sd_llama_weight_type(m), hp->n_layer,
                hp->n_embd, exact ? "exact" : "llama.cpp", tp.kv_f16 ? "f16" : "f32", tp.batch_tokens, threads,
                sd_llm_kernels_name());
    /* One run per pass of this worker (a share of one process is every pass, run at once). */
    sd_utt_offset po = {cli_share_progress, &share, 0, share.n_mine}; /* reports counted over the share */
    sd_utt_counts counts = {0};
    sd_status run = SD_OK;
    for (size_t i = 0; !run && i < share.n_mine;) {
        size_t k = share.shard.count == 1 ? share.n_mine : 1;
        while (i + k < share.n_mine && pass[share.mine_idx[i + k]] == pass[share.mine_idx[i]]) k++;
        sd_textfeat_job job = {&mine, csv, out, dtype ? SD_DTYPE_F32 : SD_DTYPE_F16, i, k, sd_utt_offset_report, &po};
        sd_utt_counts c;
        run = sd_textfeat_run(tf, &job, &c, &err);
        counts.written += c.written;
        counts.skipped += c.skipped;
        counts.failed += c.failed;
        po.done = i += k;
    }
    rc = cli_share_close(&share, run, &err, &counts);
end:
    free(mine.text); /* the strings are t's */
    free(mine.line);
    free(cost);
    free(pass);
    cli_share_free(&share);
    sd_textfeat_free(tf);
    sd_llama_free(m);
    sd_transcripts_free(&t);
    return rc;
}
