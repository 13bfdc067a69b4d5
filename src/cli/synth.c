/* sdumc synth --out DIR --n N --seed S [--dims small|mosei] */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "data/dataset.h"
#include "data/synth.h"

static void synth_usage(FILE *out) {
    fprintf(out,
            "usage: sdumc synth --out DIR --n N --seed S [--dims small|mosei]\n"
            "Writes a synthetic multimodal sentiment corpus in the dataset layout (docs/DATASET.md):\n"
            "DIR/labels.csv and DIR/{audio,text,video,text_sim}/<name>.npy. DIR must not exist (or be\n"
            "empty); it appears only when everything is written.\n"
            "  --out DIR     output folder\n"
            "  --n N         utterances (at least %d)\n"
            "  --seed S      random seed (same seed, same bytes)\n"
            "  --dims KIND   small: 32/48/24 dims, float32, fast (tests, demo; default)\n"
            "                mosei: 1024/4096/1024 dims, float16, CMU-MOSEI-like lengths (benchmarks)\n",
            SD_SYNTH_MIN_N);
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

int cli_synth(int argc, char **argv) {
    const char *out = NULL, *dims = "small";
    int64_t n = -1;
    uint64_t seed = 0;
    int have_seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            synth_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sdumc synth: %s needs a value (or is unknown)\n", a);
            synth_usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--n")) {
            if (parse_i64(v, &n)) {
                fprintf(stderr, "sdumc synth: --n '%s' is not an integer\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(v, &seed)) {
                fprintf(stderr, "sdumc synth: --seed '%s' is not a non-negative integer\n", v);
                return 2;
            }
            have_seed = 1;
        } else if (!strcmp(a, "--dims")) {
            dims = v;
        } else {
            fprintf(stderr, "sdumc synth: unknown option '%s'\n", a);
            synth_usage(stderr);
            return 2;
        }
    }
    if (!out || n < 0 || !have_seed) {
        fprintf(stderr, "sdumc synth: --out, --n and --seed are required\n");
        synth_usage(stderr);
        return 2;
    }
    int kind = sd_synth_kind_from_name(dims);
    if (kind < 0) {
        fprintf(stderr, "sdumc synth: --dims '%s' is not small or mosei\n", dims);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sd_error err;
    sd_error_clear(&err);
    if (sd_synth_write(out, n, seed, kind, &err)) {
        fprintf(stderr, "sdumc synth: %s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    sd_synth_spec s = sd_synth_spec_of(kind);
    printf("wrote %" PRId64 " utterances to %s (dims %s: audio %d, text %d, video %d) in %.1f s\n", n,
           out, dims, s.dim_audio, s.dim_text, s.dim_video, secs);
    return 0;
}
