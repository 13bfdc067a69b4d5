/* sdumc command line: main() only dispatches to one function per subcommand; before it, the
 * OpenMP wait policy of the process is chosen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "core/dist.h"

/* How long an idle OpenMP thread spins before it sleeps, chosen for the process: libgomp's default
 * spins 300,000 rounds (milliseconds) at every barrier and after every region, and on a host shared
 * with other work the waiting threads take the CPU that the thread they wait for needs. 1000 rounds
 * (tens of microseconds; libgomp's own value when it sees more threads than CPUs) keeps short waits
 * cheap and lets long ones sleep. Measured (bench_sdumc train, MOSI point, 2 threads, this project's
 * 2-core machine at load ~16): 6 samples/s with the default, 25-38 with 10,000, 80-108 with 1000,
 * 96-105 with 0 (passive).
 *
 * libgomp reads GOMP_SPINCOUNT once, in its constructor, before main; setting it from the
 * executable's preinit array does not last either (libc's start-up resets the environment). So
 * when the user chose neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT, main sets it and executes the
 * same program again (same process id, arguments and descriptors; a millisecond or two). If that
 * fails, the command runs with libgomp's default. */
#define CLI_GOMP_SPINCOUNT "1000"

static void choose_openmp_wait(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", CLI_GOMP_SPINCOUNT, 0) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure */
}

static void usage(FILE *out) {
    fprintf(out,
            "sdumc %s: multimodal sentiment analysis robust to a missing transcript\n"
            "usage: sdumc <command> [options]\n"
            "commands:\n"
            "  version        print version and build configuration\n"
            "  train          train SDUMC on a dataset (docs/MODEL.md section 4)\n"
            "  eval           metrics of both flows on a split\n"
            "  predict        predictions of one flow as CSV\n"
            "  predict-one    score of one utterance from .npy files (the public C API)\n"
            "  score          metrics from any CSV with label and prediction columns\n"
            "  robustness     models under missing frames, noise and missing modalities, over seeds\n"
            "  compare        paired differences between two results CSVs, with confidence intervals\n"
            "  synth          write a synthetic corpus (dataset layout of docs/DATASET.md)\n"
            "  validate       check a dataset folder and list every problem\n"
            "  import-mmsa    the dataset layout from an MMSA feature pickle (aligned_50.pkl, ...)\n"
            "  audio-features WavLM features of a folder of recordings (layer 20, last layer)\n"
            "  prepare        recordings (+ transcripts) to a dataset: audio, text, text_sim folders\n"
            "  simulate-text  simulated text from WavLM features with a LLaMA GGUF model (docs/MODEL.md 6)\n"
            "  text-features  real-text features of transcripts from the same LLM (docs/MODEL.md 6)\n"
            "Run 'sdumc <command> --help' for a command's options.\n",
            SDUMC_VERSION);
}

/* The commands that split their work over the ranks of an MPI job (docs/SCALE_OUT.md); the
 * others refuse to run as several processes rather than each doing the whole work. */
static int runs_distributed(const char *cmd) {
    return !strcmp(cmd, "train") || !strcmp(cmd, "simulate-text") || !strcmp(cmd, "text-features") ||
           !strcmp(cmd, "audio-features") || !strcmp(cmd, "prepare");
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (sd_dist_size() > 1 && !runs_distributed(cmd) && strcmp(cmd, "version") && strcmp(cmd, "--version")) {
        if (sd_dist_rank() == 0)
            fprintf(stderr, "sdumc %s: runs as one process, not as %d MPI ranks (commands that split their work: train, simulate-text, text-features, audio-features, prepare)\n",
                    cmd, sd_dist_size());
        return 2;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version"))
        return sd_dist_rank() == 0 ? cli_version(argc - 1, argv + 1) : 0;
    if (!strcmp(cmd, "train")) return cli_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cli_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cli_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict-one")) return cli_predict_one(argc - 1, argv + 1);
    if (!strcmp(cmd, "score")) return cli_score(argc - 1, argv + 1);
    if (!strcmp(cmd, "robustness")) return cli_robustness(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cli_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "synth")) return cli_synth(argc - 1, argv + 1);
    if (!strcmp(cmd, "validate")) return cli_validate(argc - 1, argv + 1);
    if (!strcmp(cmd, "import-mmsa")) return cli_import_mmsa(argc - 1, argv + 1);
    if (!strcmp(cmd, "simulate-text")) return cli_simulate_text(argc - 1, argv + 1);
    if (!strcmp(cmd, "text-features")) return cli_text_features(argc - 1, argv + 1);
    if (!strcmp(cmd, "audio-features")) return cli_audio_features(argc - 1, argv + 1);
    if (!strcmp(cmd, "prepare")) return cli_prepare(argc - 1, argv + 1);
    fprintf(stderr, "sdumc: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
    choose_openmp_wait(argv); /* before anything else: it may execute the program again */
    sd_error err;
    if (sd_dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "sdumc: %s\n", err.msg);
        return 2;
    }
    cli_program = argv[0];
    int rc = dispatch(argc, argv);
    sd_dist_finalize();
    return rc;
}
