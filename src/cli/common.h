/* Pieces the sdumc subcommands share: dataset options, opening a dataset with its report,
 * the thread setting. Only src/cli prints. */
#ifndef SD_CLI_COMMON_H
#define SD_CLI_COMMON_H

#include "args.h"
#include "data/dataset.h"
#include "model/model.h"

/* Dataset options as command-line options: --data DIR, --audio/--text/--video/--sim NAME
 * (feature folder names), --skip-bad. */
typedef struct {
    const char *dir;
    const char *folder[SD_MOD_COUNT];
    int skip_bad;
} cli_data_opts;

/* (The flags say what each is to train --resume: the folder is not compared, the dataset's
 * fingerprint is; which features and which utterances are.) */
#define CLI_DATA_SPECS(d)                                                                             \
    {"data", ARG_STRING, &(d).dir, 0, 0, NULL, "dataset folder (labels.csv + feature folders)", ARG_NO_RESULT, 0}, \
        {"audio", ARG_STRING, &(d).folder[SD_MOD_AUDIO], 0, 0, NULL, "audio feature folder (audio)", ARG_RESULT, 0}, \
        {"text", ARG_STRING, &(d).folder[SD_MOD_TEXT], 0, 0, NULL, "text feature folder (text)", ARG_RESULT, 0},   \
        {"video", ARG_STRING, &(d).folder[SD_MOD_VIDEO], 0, 0, NULL, "video feature folder (video)", ARG_RESULT, 0}, \
        {"sim", ARG_STRING, &(d).folder[SD_MOD_SIM], 0, 0, NULL, "simulated-text folder (text_sim)", ARG_RESULT, 0}, \
        {"skip-bad", ARG_FLAG, &(d).skip_bad, 0, 0, NULL, "skip problem utterances with a warning", ARG_RESULT, 0}

/* The dataset options the command line gave (folders, --skip-bad), with require_sim and the
 * splits the command reads (SD_SPLIT_BIT; an empty split outside them is not a problem). */
sd_dataset_options cli_dataset_options(const cli_data_opts *d, int require_sim, unsigned need_splits);

/* Opens and validates the dataset, printing the report (problems or warnings) to stderr.
 * Returns NULL after printing on failure. */
sd_dataset *cli_open_dataset(const char *cmd, const cli_data_opts *d, int require_sim,
                             unsigned need_splits);

/* Loads a model for prediction (sd_model_load_with, then sd_model_prepare_inference); mia is the
 * --mia option (-1 when not given: the file's setting). Says once on stderr when a file without
 * sdumc metadata runs with MIA off by default. Returns NULL after printing "sdumc CMD: why" on
 * failure. */
sd_model *cli_load_model(const char *cmd, const char *path, int mia);

/* The note cli_load_model prints for a file without sdumc metadata (also used by predict-one). */
void cli_note_mia_default(const char *cmd, const char *path);

/* --mia on|off of the commands that predict: -1 when not given. */
#define CLI_MIA_SPEC(v)                                                                                 \
    {"mia", ARG_ONOFF, &(v), 0, 0, NULL,                                                                \
     "MIA in the text-missing flow (default: the file's setting; off for a file without sdumc metadata)", 0, 0}

/* Parses argv with specs; prints usage for --help (returns 0 via *exit_code) or the error
 * (returns 2). Returns 1 when the command should go on. */
int cli_parse(const char *cmd, const char *synopsis, const char *about, arg_spec *specs, int n, int argc,
              char **argv, int *exit_code);

/* "LO,HI" with finite LO < HI (a label range); 0 on success, -1 otherwise. */
int cli_parse_range(const char *s, double *lo, double *hi);

/* main's argv[0], the program as it was invoked (for a command line to run again); "sdumc" until
 * main sets it. */
extern const char *cli_program;

/* SIGINT / SIGTERM ask the library to stop at its next safe point (core/interrupt.h), so a command
 * that writes ends with its outputs whole and its temporaries removed; a second signal kills. A
 * signal the parent set to be ignored (a background job's SIGINT, nohup) stays ignored. */
void cli_catch_signals(void);
/* The exit status of a failed command: 128 + the signal after an interruption, 1 otherwise. */
int cli_exit_code(sd_status st);

/* 1 when the folder that would hold path exists and is a folder. */
int cli_parent_dir_exists(const char *path);

#endif
