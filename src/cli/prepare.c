/* sdumc prepare: recordings (+ transcripts) to a dataset folder, through audio-features,
 * text-features and simulate-text (src/audio/prepare.h does the work; this file parses the
 * options, loads the three models, takes this worker's share (share.h: the ranks of an MPI job or
 * --shard I/N) and prints the progress). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "audio/prepare.h"
#include "cli.h"
#include "common.h"
#include "core/dist.h"
#include "core/threads.h"
#include "io/file.h"
#include "share.h"

/* The progress printers' state: the run's work and start, for rank 0's overall line. */
typedef struct {
    const sd_prepare_work *w;
    double t0, last; /* last: when the overall line was printed (< t0: never) */
} progress_ctx;

/* Under MPI, rank 0's line of the job's overall progress: the outputs every rank has written, read
 * from the folders (3 stats per recording: at most every 30 s, a shared file system is slow). */
static void print_overall(progress_ctx *pc) {
    if (sd_dist_size() == 1 || sd_dist_rank() != 0 || sd_utt_now() - pc->last < 30.0) return;
    pc->last = sd_utt_now();
    const sd_prepare_work *w = pc->w;
    const size_t nt = w->text->n;
    fprintf(stderr, "  all ranks: audio %zu/%zu, text %zu/%zu, text_sim %zu/%zu done, %.0f s\n",
            sd_shard_count_present(w->last_dir, w->names, w->n), w->n,
            nt ? sd_shard_count_present(w->text_dir, w->text->name, nt) : 0, nt,
            sd_shard_count_present(w->sim_dir, w->names, w->n), w->n, sd_utt_now() - pc->t0);
}

static void overall_tick(void *user) {
    progress_ctx *pc = user;
    fprintf(stderr, "prepare: waiting for the other ranks:\n");
    pc->last = -1e30;
    print_overall(pc);
}

static void print_stage(void *user, int stage, const char *what, size_t count) {
    (void)user;
    if (cli_share_quiet()) return;
    fprintf(stderr, "prepare: stage %d/3, %s: %zu utterances%s\n", stage, what, count,
            sd_dist_size() > 1 ? " on rank 0" : "");
}

static void print_audio(void *user, const sd_af_report *p) {
    const sd_utt_report *r = &p->r;
    if (r->outcome == SD_UTT_FAILED) fprintf(stderr, "%serror: %s\n", cli_share_who(), r->error);
    if (r->outcome != SD_UTT_WRITTEN || cli_share_quiet()) return;
    fprintf(stderr, "[%zu/%zu] %s: %.1f s of audio, %zu frames, %.1f s\n", r->index + 1, r->total, r->name,
            p->audio_seconds, r->n_frames, r->seconds);
    print_overall(user);
}

static void print_utt(void *user, const sd_utt_report *r) {
    if (r->outcome == SD_UTT_FAILED) fprintf(stderr, "%serror: %s: %s\n", cli_share_who(), r->name, r->error);
    if (r->outcome != SD_UTT_WRITTEN || cli_share_quiet()) return;
    fprintf(stderr, "[%zu/%zu] %s: %zu tokens, %zu frames, %.1f s, ETA %.0f s\n", r->index + 1, r->total, r->name,
            r->n_tokens, r->n_frames, r->seconds,
            r->elapsed / (double)(r->index + 1) * (double)(r->total - r->index - 1));
    print_overall(user);
}

static void print_counts(const char *what, const int64_t *c) {
    fprintf(stderr, "  %-15s %lld written, %lld already done, %lld failed\n", what, (long long)c[0], (long long)c[1],
            (long long)c[2]);
}

/* This worker's share of the work: the recordings (stages 1 and 3: the same share, so a worker's
 * simulate-text needs only its own audio-features, no barrier) balanced by audio length as
 * audio-features does, and the transcripts by whole passes as text-features does. The stage 3
 * share carries the transcripts part; rec and text are for cli_share_free. */
static int open_shares(const sd_prepare_work *w, const char *shard, cli_share *rec, cli_share *text) {
    int64_t *cost = malloc((w->n + 1) * sizeof *cost);
    if (!cost) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < w->n; i++) cost[i] = sd_audio_length(w->paths[i], 16000);
    int rc = cli_share_open(rec, "prepare", shard, w->sim_dir, 1, w->names, w->n, cost, NULL, NULL, NULL);
    free(cost);
    if (!rc && w->text->n)
        rc = cli_share_open(text, "prepare: text-features", shard, w->text_dir, 0, w->text->name, w->text->n,
                            w->text_tokens, w->text_pass, NULL, NULL);
    return rc;
}

int cli_prepare(int argc, char **argv) {
    const char *wav = NULL, *csv = NULL, *wavlm_path = NULL, *llm_path = NULL, *proj_path = NULL, *out = NULL;
    const char *shard = NULL;
    sd_prepare_options o = sd_prepare_default_options();
    int threads = 0, greedy = 0;
    float chunk = (float)o.chunk_seconds, overlap = (float)o.overlap_seconds;
    arg_spec specs[] = {
        {"wav", ARG_STRING, &wav, 0, 0, NULL, "folder of recordings (WAV, FLAC, OGG, ...; any rate, mono or not)", 0, 0},
        {"transcripts", ARG_STRING, &csv, 0, 0, NULL, "CSV of transcripts (name,text) for the recordings that have one", 0, 0},
        {"wavlm", ARG_STRING, &wavlm_path, 0, 0, NULL, "WavLM-Large (safetensors; tools/wavlm2safetensors.py)", 0, 0},
        {"llm", ARG_STRING, &llm_path, 0, 0, NULL, "LLaMA-architecture GGUF (Vicuna-7B v1.5)", 0, 0},
        {"projector", ARG_STRING, &proj_path, 0, 0, NULL, "SLAM-LLM projector (safetensors)", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "dataset folder (audio/, text/, text_sim/ and wavlm_last/ are written)", 0, 0},
        {"layer", ARG_INT, &o.audio_layer, 0, 100000, NULL, "WavLM hidden state of the audio folder (20)", 0, 0},
        {"name-column", ARG_STRING, &o.name_col, 0, 0, NULL, "transcripts column of the names (name)", 0, 0},
        {"text-column", ARG_STRING, &o.text_col, 0, 0, NULL, "transcripts column of the texts (text)", 0, 0},
        {"chunk-seconds", ARG_FLOAT, &chunk, 0.1, 3600, NULL, "WavLM windows for long recordings (30)", 0, 0},
        {"overlap-seconds", ARG_FLOAT, &overlap, 0, 1800, NULL, "overlap of the windows (5)", 0, 0},
        {"beams", ARG_INT, &o.sim.gen.n_beams, 1, 64, NULL, "simulate-text's beam width (4)", 0, 0},
        {"greedy", ARG_FLAG, &greedy, 0, 0, NULL, "simulate-text decodes greedily (--beams 1)", 0, 0},
        {"max-new-tokens", ARG_INT, &o.sim.gen.max_new_tokens, 2, 100000, NULL, "simulate-text's limit (200)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 4096, NULL, "threads (0 = all cores)", 0, 0},
        {"shard", ARG_STRING, &shard, 0, 0, NULL,
         "do share I/N of the recordings and transcripts (0 <= I < N; a job array's task), balanced by length", 0, 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("prepare",
                   "sdumc prepare --wav DIR [--transcripts CSV] --wavlm W.safetensors --llm M.gguf --projector P.safetensors --out DATA [options]",
                   "From recordings to the dataset layout (docs/DATASET.md): DATA/audio (WavLM layer 20),\n"
                   "DATA/text (the LLM's states of the transcripts that exist), DATA/text_sim (simulated text\n"
                   "from WavLM's last layer, kept in DATA/wavlm_last). The video features and labels.csv are\n"
                   "yours. Existing outputs are kept: a stopped run resumes. docs/WAVLM.md. Under mpirun the\n"
                   "ranks share the work, as --shard I/N does for independent processes (docs/SCALE_OUT.md).",
                   specs, n, argc, argv, &code))
        return code;
    if (!wav || !wavlm_path || !llm_path || !proj_path || !out) {
        fprintf(stderr, "sdumc prepare: --wav, --wavlm, --llm, --projector and --out are required (sdumc prepare --help)\n");
        return 2;
    }
    /* The outputs (OUT's four folders and text_sim/transcripts.csv) touch no input: the recordings'
     * folder, the transcripts, the models. */
    const sd_input inputs[5] = {{wav, "--wav"}, {csv, "--transcripts"}, {wavlm_path, "--wavlm"}, {llm_path, "--llm"},
                                {proj_path, "--projector"}};
    const char *outputs[6] = {"", "/audio", "/wavlm_last", "/text", "/text_sim", "/text_sim/transcripts.csv"};
    for (int k = 0; k < 6; k++) {
        char *path = malloc(strlen(out) + strlen(outputs[k]) + 1);
        sd_error e = {0};
        int bad = !path || sd_output_check(strcat(strcpy(path, out), outputs[k]), "--out", inputs, 5, &e);
        if (bad) fprintf(stderr, "sdumc prepare: %s\n", path ? e.msg : "out of memory");
        free(path);
        if (bad) return 2;
    }
    sd_shard check;
    if ((code = cli_share_parse("prepare", shard, &check))) return code;
    if (greedy) o.sim.gen.n_beams = 1;
    o.wav_dir = wav;
    o.transcripts = csv;
    o.out_dir = out;
    o.chunk_seconds = chunk;
    o.overlap_seconds = overlap;
    o.threads = threads = sd_threads_set(threads);
    sd_error err = {0};
    sd_wavlm *wavlm = NULL;
    sd_llama *llm = NULL;
    sd_projector *proj = NULL;
    sd_prepare *pr = NULL;
    cli_share rec = {0}, text = {0};
    int rc = 1;
    /* Every rank checks everything; a failure on any stops all of them, rank 0 saying why. */
    sd_status st = sd_wavlm_load(wavlm_path, &wavlm, &err);
    if (!st) st = sd_llama_load(llm_path, &llm, &err);
    if (!st) st = sd_projector_load(proj_path, SD_PROJECTOR_K, &proj, &err);
    if (!st) st = sd_prepare_open(wavlm, llm, proj, &o, &pr, &err);
    if (sd_dist_agree(st, &err)) {
        if (sd_dist_rank() == 0) fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    const sd_prepare_work *w = sd_prepare_get_work(pr);
    rc = open_shares(w, shard, &rec, &text); /* a failure (printed where it happened) stops every rank */
    if (sd_dist_agree(rc ? sd_fail(&err, SD_E_IO, "a share could not be opened") : SD_OK, &err)) {
        if (!rc && sd_dist_rank() == 0) fprintf(stderr, "error: %s\n", err.msg);
        rc = 1;
        goto end;
    }
    progress_ctx pc = {w, sd_utt_now(), -1e30};
    sd_prepare_progress pp = {print_stage, print_audio, print_utt, print_utt, &pc};
    sd_prepare_share mine = {rec.mine_idx, rec.n_mine, text.mine_idx, text.n_mine, rec.csv_path};
    sd_prepare_counts counts;
    sd_status run = sd_prepare_run(pr, &mine, &pp, &counts, &err);
    if (run) fprintf(stderr, "%serror: %s\n", cli_share_who(), err.msg);
    /* Every rank's counts once all are done (rank 0 printing the progress while it waits), then
     * the transcripts' merge: by rank 0, by one process, or by the --shard process that completes
     * the folder (cli_share_merge, as simulate-text). */
    const sd_utt_counts *stage[3] = {&counts.audio, &counts.text, &counts.sim};
    int64_t c[10] = {0};
    for (int k = 0; k < 3; k++) {
        c[3 * k] = (int64_t)stage[k]->written;
        c[3 * k + 1] = (int64_t)stage[k]->skipped;
        c[3 * k + 2] = (int64_t)stage[k]->failed;
    }
    c[9] = run != SD_OK;
    rc = 1;
    st = sd_dist_barrier_tick(30.0, sd_dist_rank() == 0 ? overall_tick : NULL, &pc, &err);
    if (!st) st = sd_dist_allreduce_sum_i64(c, 10, &err);
    if (st && sd_dist_rank() == 0) fprintf(stderr, "error: %s\n", err.msg);
    int merged = 0;
    if (st || cli_share_merge(&rec, &merged)) goto end;
    rc = c[2] || c[5] || c[8] || c[9] ? 1 : 0;
    if (sd_dist_rank() != 0) goto end;
    if (merged && w->text_dir) cli_remove_stale_in(w->text_dir); /* the killed writers' (all are done) */
    fprintf(stderr, "prepare: %s%zu recordings, %zu with a transcript", sd_dist_size() > 1 ? "all ranks: " : "",
            counts.recordings, counts.with_transcript);
    if (counts.transcripts_unused) fprintf(stderr, " (%zu transcripts without a recording left out)", counts.transcripts_unused);
    fprintf(stderr, ", %.1f s\n", sd_utt_now() - pc.t0);
    print_counts("audio-features", c);
    print_counts("text-features", c + 3);
    print_counts("simulate-text", c + 6);
    cli_share_merge_note(&rec, merged);
    if (merged)
        fprintf(stderr,
                "prepare: %s holds audio/, text/, text_sim/ (and wavlm_last/). Yours to add: video/<name>.npy (face\n"
                "features, e.g. MA-Net, [frames, D]) and labels.csv (name,label,split); then `sdumc validate --data %s`.\n"
                "A trained model then scores them: `sdumc predict --model M --data %s --split S --out preds.csv`\n"
                "(`--flow missing` for recordings without transcripts).\n", out, out, out);
end:
    cli_share_free(&text);
    cli_share_free(&rec);
    sd_prepare_free(pr);
    sd_projector_free(proj);
    sd_llama_free(llm);
    sd_wavlm_free(wavlm);
    return rc;
}
