/* sdumc prepare: recordings (+ transcripts) to a dataset folder, through audio-features,
 * text-features and simulate-text (src/audio/prepare.h does the work; this file parses the
 * options, loads the three models and prints the progress). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/prepare.h"
#include "cli.h"
#include "common.h"
#include "core/threads.h"

static void print_stage(void *user, int stage, const char *what, size_t count) {
    (void)user;
    fprintf(stderr, "prepare: stage %d/3, %s: %zu utterances\n", stage, what, count);
}

static void print_audio(void *user, const sd_af_report *p) {
    (void)user;
    const sd_utt_report *r = &p->r;
    if (r->outcome == SD_UTT_FAILED) fprintf(stderr, "error: %s\n", r->error);
    else if (r->outcome == SD_UTT_WRITTEN)
        fprintf(stderr, "[%zu/%zu] %s: %.1f s of audio, %zu frames, %.1f s\n", r->index + 1, r->total, r->name,
                p->audio_seconds, r->n_frames, r->seconds);
}

static void print_utt(void *user, const sd_utt_report *r) {
    (void)user;
    if (r->outcome == SD_UTT_FAILED) fprintf(stderr, "error: %s: %s\n", r->name, r->error);
    else if (r->outcome == SD_UTT_WRITTEN)
        fprintf(stderr, "[%zu/%zu] %s: %zu tokens, %zu frames, %.1f s, ETA %.0f s\n", r->index + 1, r->total, r->name,
                r->n_tokens, r->n_frames, r->seconds, r->elapsed / (double)(r->index + 1) * (double)(r->total - r->index - 1));
}

static void print_counts(const char *what, const sd_utt_counts *c) {
    fprintf(stderr, "  %-15s %zu written, %zu already done, %zu failed\n", what, c->written, c->skipped, c->failed);
}

int cli_prepare(int argc, char **argv) {
    const char *wav = NULL, *csv = NULL, *wavlm_path = NULL, *llm_path = NULL, *proj_path = NULL, *out = NULL;
    sd_prepare_options o = sd_prepare_default_options();
    int threads = 0, greedy = 0;
    float chunk = (float)o.chunk_seconds, overlap = (float)o.overlap_seconds;
    arg_spec specs[] = {
        {"wav", ARG_STRING, &wav, 0, 0, NULL, "folder of recordings (WAV, FLAC, OGG, ...; any rate, mono or not)", 0},
        {"transcripts", ARG_STRING, &csv, 0, 0, NULL, "CSV of transcripts (name,text) for the recordings that have one", 0},
        {"wavlm", ARG_STRING, &wavlm_path, 0, 0, NULL, "WavLM-Large (safetensors; tools/wavlm2safetensors.py)", 0},
        {"llm", ARG_STRING, &llm_path, 0, 0, NULL, "LLaMA-architecture GGUF (Vicuna-7B v1.5)", 0},
        {"projector", ARG_STRING, &proj_path, 0, 0, NULL, "SLAM-LLM projector (safetensors)", 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "dataset folder (audio/, text/, text_sim/ and wavlm_last/ are written)", 0},
        {"layer", ARG_INT, &o.audio_layer, 0, 100000, NULL, "WavLM hidden state of the audio folder (20)", 0},
        {"name-column", ARG_STRING, &o.name_col, 0, 0, NULL, "transcripts column of the names (name)", 0},
        {"text-column", ARG_STRING, &o.text_col, 0, 0, NULL, "transcripts column of the texts (text)", 0},
        {"chunk-seconds", ARG_FLOAT, &chunk, 0.1, 3600, NULL, "WavLM windows for long recordings (30)", 0},
        {"overlap-seconds", ARG_FLOAT, &overlap, 0, 1800, NULL, "overlap of the windows (5)", 0},
        {"beams", ARG_INT, &o.sim.gen.n_beams, 1, 64, NULL, "simulate-text's beam width (4)", 0},
        {"greedy", ARG_FLAG, &greedy, 0, 0, NULL, "simulate-text decodes greedily (--beams 1)", 0},
        {"max-new-tokens", ARG_INT, &o.sim.gen.max_new_tokens, 2, 100000, NULL, "simulate-text's limit (200)", 0},
        {"threads", ARG_INT, &threads, 0, 4096, NULL, "threads (0 = all cores)", 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("prepare",
                   "sdumc prepare --wav DIR [--transcripts CSV] --wavlm W.safetensors --llm M.gguf --projector P.safetensors --out DATA [options]",
                   "From recordings to the dataset layout (docs/DATASET.md): DATA/audio (WavLM layer 20),\n"
                   "DATA/text (the LLM's states of the transcripts that exist), DATA/text_sim (simulated text\n"
                   "from WavLM's last layer, kept in DATA/wavlm_last). The video features and labels.csv are\n"
                   "yours. Existing outputs are kept: a stopped run resumes. docs/WAVLM.md.",
                   specs, n, argc, argv, &code))
        return code;
    if (!wav || !wavlm_path || !llm_path || !proj_path || !out) {
        fprintf(stderr, "sdumc prepare: --wav, --wavlm, --llm, --projector and --out are required (sdumc prepare --help)\n");
        return 2;
    }
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
    sd_prepare_counts counts;
    int rc = 1;
    if (sd_wavlm_load(wavlm_path, &wavlm, &err) || sd_llama_load(llm_path, &llm, &err) ||
        sd_projector_load(proj_path, SD_PROJECTOR_K, &proj, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    sd_prepare_progress pp = {print_stage, print_audio, print_utt, print_utt, NULL};
    const double t0 = sd_utt_now();
    if (sd_prepare_run(wavlm, llm, proj, &o, &pp, &counts, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    fprintf(stderr, "prepare: %zu recordings, %zu with a transcript", counts.recordings, counts.with_transcript);
    if (counts.transcripts_unused) fprintf(stderr, " (%zu transcripts without a recording left out)", counts.transcripts_unused);
    fprintf(stderr, ", %.1f s\n", sd_utt_now() - t0);
    print_counts("audio-features", &counts.audio);
    print_counts("text-features", &counts.text);
    print_counts("simulate-text", &counts.sim);
    fprintf(stderr,
            "prepare: %s holds audio/, text/, text_sim/ (and wavlm_last/). Yours to add: video/<name>.npy (face\n"
            "features, e.g. MA-Net, [frames, D]) and labels.csv (name,label,split); then `sdumc validate --data %s`.\n"
            "A trained model then scores them: `sdumc predict --model M --data %s --split S --out preds.csv`\n"
            "(`--flow missing` for recordings without transcripts).\n", out, out, out);
    rc = counts.audio.failed || counts.text.failed || counts.sim.failed ? 1 : 0;
end:
    sd_projector_free(proj);
    sd_llama_free(llm);
    sd_wavlm_free(wavlm);
    return rc;
}
