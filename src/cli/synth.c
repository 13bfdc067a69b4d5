/* sdumc synth: writes the synthetic corpus (docs/DATASET.md).
 *   sdumc synth --out DIR --n N --seed S [--dims small|mosei] [--scales unit|raw] */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common.h"
#include "data/dataset.h"
#include "data/synth.h"

int cli_synth(int argc, char **argv) {
    const char *out = NULL;
    int n = -1, dims_idx = 0, scales_idx = 0;
    uint64_t seed = 0;
    const char *dims_names[2] = {"small", "mosei"};
    arg_spec specs[] = {
        {"out", ARG_STRING, &out, 0, 0, NULL, "output folder (must not exist, or be empty; appears only when complete)", 0, 0},
        {"n", ARG_INT, &n, SD_SYNTH_MIN_N, 100000000, NULL, "utterances", 0, 0},
        {"seed", ARG_U64, &seed, 0, 0, NULL, "random seed (same seed, same bytes)", 0, 0},
        {"dims", ARG_CHOICE, &dims_idx, 0, 0, "small|mosei",
         "small: 32/48/24 dims, float32 (tests, demo; default); mosei: 1024/4096/1024, float16 (benchmarks)", 0, 0},
        {"scales", ARG_CHOICE, &scales_idx, 0, 0, "unit|raw",
         "unit: features of order 1 (default); raw: field-like per-dimension scales (values in the hundreds, "
         "dims near zero, an F0-like dim in Hz) and -inf in an audio dim at pauses (read it with --nonfinite zero)", 0, 0},
    };
    int code;
    if (!cli_parse("synth", "sdumc synth --out DIR --n N --seed S [--dims small|mosei] [--scales unit|raw]",
                   "Writes a synthetic multimodal sentiment corpus in the dataset layout (docs/DATASET.md):\n"
                   "DIR/labels.csv and DIR/{audio,text,video,text_sim}/<name>.npy.",
                   specs, (int)(sizeof specs / sizeof specs[0]), argc, argv, &code))
        return code;
    if (!out || !specs[1].seen || !specs[2].seen) {
        fprintf(stderr, "sdumc synth: --out, --n and --seed are required (sdumc synth --help)\n");
        return 2;
    }
    const char *dims = dims_names[dims_idx];
    int kind = sd_synth_kind_from_name(dims);
    if (kind < 0) {
        fprintf(stderr, "sdumc synth: --dims '%s' is not small or mosei\n", dims);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sd_error err;
    sd_error_clear(&err);
    cli_catch_signals();
    sd_status st = sd_synth_write(out, n, seed, kind | (scales_idx ? SD_SYNTH_RAW_SCALES : 0), &err);
    if (st) {
        fprintf(stderr, "sdumc synth: %s\n", err.msg);
        return cli_exit_code(st);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    sd_synth_spec s = sd_synth_spec_of(kind);
    printf("wrote %d utterances to %s (dims %s: audio %d, text %d, video %d%s) in %.1f s\n", n, out, dims,
           s.dim_audio, s.dim_text, s.dim_video, scales_idx ? "; raw scales, -inf in audio: --nonfinite zero" : "",
           secs);
    return 0;
}
