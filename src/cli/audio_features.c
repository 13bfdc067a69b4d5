/* sdumc audio-features: WavLM features of a folder of recordings (src/audio/audio_features.h does
 * the work; this file parses the options and prints the progress). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_features.h"
#include "cli.h"
#include "common.h"
#include "core/threads.h"

typedef struct {
    double audio_done, busy;
    size_t done;
} progress_state;

static void report(void *user, const sd_af_report *p) {
    progress_state *st = user;
    const sd_utt_report *r = &p->r;
    if (r->outcome == SD_UTT_SKIPPED) return;
    if (r->outcome == SD_UTT_FAILED) {
        fprintf(stderr, "error: %s\n", r->error);
        return;
    }
    st->done++;
    st->busy += r->seconds;
    st->audio_done += p->audio_seconds;
    /* ETA: the time per recording so far, over the recordings left. */
    const double per = st->busy / (double)st->done, eta = per * (double)(r->total - r->index - 1);
    fprintf(stderr, "[%zu/%zu] %s: %.1f s of audio (%d Hz, %d ch), %zu frames, %.1f s (RTF %.2f), ETA %.0f s\n",
            r->index + 1, r->total, r->name, p->audio_seconds, p->rate, p->channels, r->n_frames, r->seconds,
            r->seconds / (p->audio_seconds > 0 ? p->audio_seconds : 1), eta);
    if (r->n_out_of_f16)
        fprintf(stderr, "warning: %s: %zu values outside the float16 range\n", r->name, r->n_out_of_f16);
}

int cli_audio_features(int argc, char **argv) {
    const char *wavlm = NULL, *wav = NULL, *out = NULL, *out_last = NULL, *layer_s = "20";
    int threads = 0;
    sd_af_options o = sd_af_default_options();
    float chunk = (float)o.chunk_seconds, overlap = (float)o.overlap_seconds;
    arg_spec specs[] = {
        {"wavlm", ARG_STRING, &wavlm, 0, 0, NULL, "WavLM model (safetensors, Hugging Face names; tools/wavlm2safetensors.py converts checkpoints)", 0, 0},
        {"wav", ARG_STRING, &wav, 0, 0, NULL, "folder of recordings (WAV, FLAC, OGG, ... any rate, mono or not)", 0, 0},
        {"out", ARG_STRING, &out, 0, 0, NULL, "output folder: <name>.npy [frames, hidden] float16 per recording", 0, 0},
        {"layer", ARG_STRING, &layer_s, 0, 0, NULL, "hidden state written to --out: 0..L or 'last' (20: the audio modality)", 0, 0},
        {"out-last", ARG_STRING, &out_last, 0, 0, NULL, "also write the last layer (simulate-text's input) here, from the same pass", 0, 0},
        {"chunk-seconds", ARG_FLOAT, &chunk, 0.1, 3600, NULL, "longer recordings run in overlapping windows of this length (30)", 0, 0},
        {"overlap-seconds", ARG_FLOAT, &overlap, 0, 1800, NULL, "overlap of consecutive windows (5)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 4096, NULL, "threads (0 = all cores)", 0, 0},
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    if (!cli_parse("audio-features",
                   "sdumc audio-features --wavlm W.safetensors --wav DIR --out DIR [--layer N|last] [--out-last DIR] [options]",
                   "Writes OUT/<name>.npy ([frames, hidden] float16, 50 frames/s) for every recording in WAV:\n"
                   "WavLM hidden state --layer (20: the dataset's audio folder; 'last': simulate-text's input).\n"
                   "With --out-last, the last layer goes to a second folder from the same pass. Recordings are\n"
                   "decoded, averaged to mono and resampled to 16 kHz; existing outputs are kept (the run resumes).\n"
                   "Windows and overlap: docs/WAVLM.md.",
                   specs, n, argc, argv, &code))
        return code;
    if (!wavlm || !wav || !out) {
        fprintf(stderr, "sdumc audio-features: --wavlm, --wav and --out are required (sdumc audio-features --help)\n");
        return 2;
    }
    int layer = -1;
    if (strcmp(layer_s, "last")) {
        char *end;
        long v = strtol(layer_s, &end, 10);
        if (end == layer_s || *end || v < 0 || v > 100000) {
            fprintf(stderr, "sdumc audio-features: --layer '%s': a layer number (0..L) or 'last'\n", layer_s);
            return 2;
        }
        layer = (int)v;
    }
    if (out_last && layer < 0) {
        fprintf(stderr, "sdumc audio-features: --out-last with --layer last would write the last layer twice\n");
        return 2;
    }
    threads = sd_threads_set(threads);
    sd_error err = {0};
    sd_wavlm *m = NULL;
    if (sd_wavlm_load(wavlm, &m, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    const sd_wavlm_config *c = sd_wavlm_get_config(m);
    if (layer > c->n_layers) {
        fprintf(stderr, "error: --layer %d: %s has hidden states 0..%d (%d layers); give --layer\n", layer, wavlm,
                c->n_layers, c->n_layers);
        sd_wavlm_free(m);
        return 2;
    }
    if (sd_wavlm_check_chunking(c, chunk, overlap, &err)) {
        fprintf(stderr, "sdumc audio-features: %s\n", err.msg);
        sd_wavlm_free(m);
        return 2;
    }
    o.out_dir[0] = out;
    o.layer[0] = layer < 0 ? c->n_layers : layer;
    o.n_out = 1;
    if (out_last) {
        o.out_dir[1] = out_last;
        o.layer[1] = c->n_layers;
        o.n_out = 2;
    }
    o.chunk_seconds = chunk;
    o.overlap_seconds = overlap;
    o.threads = threads;
    char **paths = NULL, **names = NULL;
    size_t count = 0, other = 0;
    sd_utt_counts counts;
    int rc = 1;
    if (sd_af_list(wav, &paths, &names, &count, &other, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    if (count == 0) {
        fprintf(stderr, "error: %s: no audio files (.wav .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd "
                ".caf .w64 .rf64)\n", wav);
        goto end;
    }
    char desc[256];
    sd_wavlm_describe(m, desc, sizeof desc);
    fprintf(stderr, "audio-features: %zu recordings in %s%s; %s; layer %d -> %s", count, wav,
            other ? " (other files ignored)" : "", desc, o.layer[0], out);
    if (out_last) fprintf(stderr, ", layer %d -> %s", o.layer[1], out_last);
    fprintf(stderr, "; windows of %g s overlapping by %g s; %d threads\n", o.chunk_seconds, o.overlap_seconds, threads);
    progress_state st = {0, 0, 0};
    const double t0 = sd_utt_now();
    if (sd_af_run(m, &o, paths, names, count, report, &st, &counts, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto end;
    }
    fprintf(stderr, "audio-features: %zu written, %zu already done, %zu failed; %.1f s of audio in %.1f s\n",
            counts.written, counts.skipped, counts.failed, st.audio_done, sd_utt_now() - t0);
    rc = counts.failed ? 1 : 0;
end:
    sd_af_list_free(paths, names, count);
    sd_wavlm_free(m);
    return rc;
}
