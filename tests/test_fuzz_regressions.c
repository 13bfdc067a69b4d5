/* Replays the fuzzers' inputs through the same harness code, in the ordinary build and under
 * `make test-asan`, without clang or libFuzzer:
 *   fuzz/corpus/<harness>/FILE    every seed runs without a crash or a broken invariant, and the
 *                                 seeds listed below are accepted / rejected as they must be;
 *   fuzz/regressions/<harness>/FILE inputs that once crashed or broke an invariant (see
 *                                 fuzz/README.md), each named accept-* or reject-* by the outcome
 *                                 the fixed code must give;
 *   mutants of a pickle and a WAV seed (prefixes, overwrites, bit flips: tests/mutate.h).
 * Run from the repository root (tests/run.sh does). */
#define SD_FUZZ_NO_MAIN
#include "../fuzz/fuzz_args.c"
#include "../fuzz/fuzz_csv.c"
#include "../fuzz/fuzz_audio.c"
#include "../fuzz/fuzz_gguf.c"
#include "../fuzz/fuzz_labels.c"
#include "../fuzz/fuzz_model.c"
#include "../fuzz/fuzz_npy.c"
#include "../fuzz/fuzz_pickle.c"
#include "../fuzz/fuzz_safetensors.c"
#include "../fuzz/fuzz_tokenizer.c"
#include "../fuzz/fuzz_train_state.c"
#include "../fuzz/fuzz_wavlm.c"
#include "../src/cli/args.c"

#include <dirent.h>

#include "harness.h"
#include "mutate.h"

typedef struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} harness_entry;

static const harness_entry harnesses[] = {
    {"args", fuzz_args},   {"gguf", fuzz_gguf},
    {"labels", fuzz_labels}, {"model", fuzz_model},
    {"npy", fuzz_npy},     {"safetensors", fuzz_safetensors},
    {"tokenizer", fuzz_tokenizer}, {"train_state", fuzz_train_state},
    {"csv", fuzz_csv},     {"pickle", fuzz_pickle},
    {"audio", fuzz_audio}, {"wavlm", fuzz_wavlm},
};
enum { N_HARNESS = (int)(sizeof harnesses / sizeof harnesses[0]) };

static int run_file(const harness_entry *h, const char *path, int *result) {
    size_t n = 0;
    uint8_t *data = sd_test_read_file(path, &n);
    if (!data) return -1;
    *result = h->fn(data, n);
    free(data);
    return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every file of folder/<harness>; with expect_by_name, a file named accept-* must be
 * accepted and reject-* rejected. Returns the number of files run, -1 if the folder is missing. */
static int run_folder(const char *folder, const harness_entry *h, int expect_by_name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", folder, h->name);
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[4096];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 4096)
        if (e->d_name[0] != '.') names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)count, sizeof names[0], cmp_names);
    for (int i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int result = 0;
        EXPECT(run_file(h, path, &result) == 0, "cannot read %s", path);
        if (expect_by_name && !strncmp(names[i], "accept-", 7))
            EXPECT(result == 0, "%s: rejected (status %d), must be accepted", path, result);
        if (expect_by_name && !strncmp(names[i], "reject-", 7))
            EXPECT(result != 0, "%s: accepted, must be rejected", path);
        free(names[i]);
    }
    return count;
}

static void test_seed_corpora(void) {
    for (int i = 0; i < N_HARNESS; i++) {
        int n = run_folder("fuzz/corpus", &harnesses[i], 0);
        EXPECT(n > 0, "fuzz/corpus/%s: no seeds (run from the repository root)", harnesses[i].name);
    }
}

/* Seeds whose outcome is known: the harness reports acceptance faithfully. */
static void test_known_seeds(void) {
    static const struct {
        int harness;
        const char *file;
        int accepted;
    } cases[] = {
        {0, "all_kinds", 1},          {0, "out_of_range", 0},      {0, "not_finite", 0},
        {0, "negative_u64", 0},       {0, "overflow_u64", 0},      {0, "twice", 0},
        {0, "bad_choice", 0},         {0, "missing_value", 0},     {0, "positional", 0},
        {0, "empty_value", 0},        {1, "gguf_types.gguf", 1},   {1, "vocab.gguf", 1},
        {2, "ok.csv", 1},             {2, "bom_crlf_reordered.csv", 1},
        {2, "problems.csv", 0},       {2, "missing_column.csv", 0}, {3, "sdumc_h4.safetensors", 1},
        {3, "converted_module_prefix.safetensors", 1},             {4, "v1_f4_2d.npy", 1},
        {4, "v3_f8_2d.npy", 1},       {4, "bad_int32.npy", 0},     {4, "bad_fortran.npy", 0},
        {5, "mixed.safetensors", 1},  {5, "reference.safetensors", 1},
        {6, "tiny_vocab.gguf", 1},    {6, "vocab.gguf", 1},        {7, "state_h4.safetensors", 1},
        {2, "nul_row.csv", 0},        {8, "quoted.csv", 1},         {8, "nul_byte.csv", 0},      {8, "utf16.csv", 0},
        {9, "aligned_p2.pkl", 1},     {9, "aligned_p3_numpy2.pkl", 1}, {9, "unaligned_p4.pkl", 1},
        {9, "unaligned_p5_sims.pkl", 1}, {9, "exec_os_system.pkl", 0}, {9, "truncated_proto2.pkl", 0},
        {10, "pcm16_8k.wav", 1},       {10, "stereo_float_44k.wav", 1}, {10, "flac_22k.flac", 1},
        {10, "vorbis_16k.ogg", 1},     {10, "not_audio.wav", 0},     {10, "empty.wav", 0},
        {11, "tiny_base.safetensors", 1}, {11, "odd_conv.safetensors", 1}, {11, "no_gate.safetensors", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const harness_entry *h = &harnesses[cases[i].harness];
        char path[512];
        snprintf(path, sizeof path, "fuzz/corpus/%s/%s", h->name, cases[i].file);
        int result = -12345;
        if (run_file(h, path, &result)) {
            sd_test_fail(__FILE__, __LINE__, "cannot read %s", path);
            continue;
        }
        EXPECT((result == 0) == cases[i].accepted, "%s: %s (status %d)", path,
               cases[i].accepted ? "rejected, must be accepted" : "accepted, must be rejected", result);
    }
}

static void test_regressions(void) {
    int total = 0;
    for (int i = 0; i < N_HARNESS; i++) {
        int n = run_folder("fuzz/regressions", &harnesses[i], 1);
        if (n > 0) total += n;
    }
    printf("  %d regression inputs replayed\n", total);
}

/* A harness as the reader of tests/mutate.h: 1 when it accepted the mutant. */
static int harness_reads(const uint8_t *bytes, size_t n, void *ctx) {
    const harness_entry *h = ctx;
    return h->fn(bytes, n) == 0;
}

/* Mutants of seeds of the formats whose tests write no hostile bytes of their own (pickle, audio),
 * through their harnesses, which check their invariants (memory and file readers agree, every
 * accepted value readable) and abort on a broken one; ASan checks the reads. Every proper prefix
 * of a pickle is refused (its STOP opcode is the last byte); a truncated recording may decode. */
static void test_seed_mutants(void) {
    static const struct {
        int harness;
        const char *file;
        int prefixes_refused;
        size_t header; /* bytes whose every bit is flipped */
    } seeds[] = {{9, "unaligned_p4.pkl", 1, 512}, {10, "pcm16_8k.wav", 0, 44}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        const harness_entry *h = &harnesses[seeds[i].harness];
        char path[512];
        snprintf(path, sizeof path, "fuzz/corpus/%s/%s", h->name, seeds[i].file);
        size_t n = 0;
        uint8_t *file = sd_test_read_file(path, &n);
        EXPECT(file != NULL, "cannot read %s", path);
        if (!file) continue;
        const int prefixes = sd_mut_prefixes(file, n, harness_reads, (void *)h);
        EXPECT(!seeds[i].prefixes_refused || prefixes == 0, "%s: %d proper prefixes accepted", path, prefixes);
        const sd_mut_plan plan = {0x5EED + i, 400, 1, 4, 0, NULL};
        const int overwritten = sd_mut_overwrites(file, n, &plan, harness_reads, (void *)h);
        const int flipped = sd_mut_bit_flips(file, n, seeds[i].header, harness_reads, (void *)h);
        printf("  %s: accepted %d of %zu prefixes, %d of 400 overwritten, %d of %zu bit-flipped\n", path,
               prefixes, n, overwritten, flipped, 8 * (seeds[i].header < n ? seeds[i].header : n));
        free(file);
    }
}

int main(void) {
    sd_test_run("fuzz_seed_corpora_replay", test_seed_corpora);
    sd_test_run("fuzz_seed_mutants", test_seed_mutants);
    sd_test_run("fuzz_known_seed_outcomes", test_known_seeds);
    sd_test_run("fuzz_regressions_replay", test_regressions);
    return sd_test_finish();
}
