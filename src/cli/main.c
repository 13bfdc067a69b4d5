/* sdumc command line: main() only dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "core/dist.h"

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
            "  simulate-text  simulated text from WavLM features with a LLaMA GGUF model (docs/MODEL.md 6)\n"
            "  text-features  real-text features of transcripts from the same LLM (docs/MODEL.md 6)\n"
            "Run 'sdumc <command> --help' for a command's options.\n",
            SDUMC_VERSION);
}

/* The commands that split their work over the ranks of an MPI job (docs/SCALE_OUT.md); the
 * others refuse to run as several processes rather than each doing the whole work. */
static int runs_distributed(const char *cmd) { return !strcmp(cmd, "train") || !strcmp(cmd, "simulate-text"); }

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
            fprintf(stderr, "sdumc %s: runs as one process, not as %d MPI ranks (commands that split their work: train, simulate-text)\n",
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
    if (!strcmp(cmd, "simulate-text")) return cli_simulate_text(argc - 1, argv + 1);
    if (!strcmp(cmd, "text-features")) return cli_text_features(argc - 1, argv + 1);
    fprintf(stderr, "sdumc: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
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
