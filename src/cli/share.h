/* A per-utterance job (simulate-text, text-features, audio-features, prepare's stages) on
 * this worker's share of the utterances: the ranks of an MPI job, or --shard I/N for independent
 * processes, or all of them (llm/shard.h, docs/SCALE_OUT.md). The command lists the utterances,
 * opens the share, runs its library job on the share's names with cli_share_progress as the
 * progress callback, and closes the share, which waits for the other ranks (rank 0 printing the
 * job's overall progress), merges the transcripts and prints the totals. */
#ifndef SD_CLI_SHARE_H
#define SD_CLI_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "llm/shard.h"
#include "llm/utterances.h"

typedef struct {
    const char *cmd, *out_dir;
    int transcripts;          /* the job writes OUT/transcripts.csv rows */
    sd_shard shard;
    char *const *names;       /* every utterance (borrowed), sorted */
    size_t n_names;
    size_t *mine_idx;         /* this worker's, as indices into names (ascending) */
    char **mine;              /* the same as names (pointers into names) */
    size_t n_mine;
    char *csv_path;           /* this worker's transcripts file (transcripts only) */
    sd_utt_progress print;    /* the command's printer of one report */
    void *print_user;
    double t0;
} cli_share;

/* Sets *shard from --shard's value (shard_text; NULL: left as it is): 0, or 2 after printing why
 * it is refused (malformed, or given under mpirun). cli_share_open checks it; a command that writes
 * before it opens its share checks it first. */
int cli_share_parse(const char *cmd, const char *shard_text, sd_shard *shard);
/* shard_text: --shard's value or NULL; cost[n_names]: each utterance's work (e.g. its input frames,
 * sd_shard_npy_rows); group[n_names]: utterances that go together (NULL: none; sd_shard_select_groups).
 * Prints and returns the exit code on failure (0 on success; cli_share_free it either way). The job
 * runs on share->mine, writing share->csv_path. */
int cli_share_open(cli_share *s, const char *cmd, const char *shard_text, const char *out_dir, int transcripts,
                   char *const *names, size_t n_names, const int64_t *cost, const size_t *group,
                   sd_utt_progress print, void *print_user);
/* The job's progress callback (user: the cli_share): the command's printer on one process or
 * shard; under MPI rank 0's reports with the job's overall count, the other ranks' failures. */
void cli_share_progress(void *user, const sd_utt_report *r);
/* For a command with its own progress reports (audio-features): cli_share_quiet() is 1 on the
 * ranks that print only their failures (all but rank 0 of an MPI job), cli_share_who() the prefix of
 * such a failure ("rank R: ", or ""), and cli_share_overall prints rank 0's line of the job's overall
 * progress (nothing outside MPI). cli_share_progress is these around the command's printer. */
int cli_share_quiet(void);
const char *cli_share_who(void);
void cli_share_overall(const cli_share *s);
/* After the job (run_status and err: what it returned; counts: its counts). Every rank calls it.
 * Returns the exit code: 0 when every utterance of every rank is done. */
int cli_share_close(cli_share *s, sd_status run_status, const sd_error *err, const sd_utt_counts *counts);
/* cli_share_close's parts, for a command that sums its own counts (prepare), called after every
 * rank is done (a barrier): the transcripts' merge (one process or rank 0 of an MPI job merges
 * everything, collectively; a --shard process when every utterance of the folder is done; nothing
 * without transcripts), returning 0 or 1 after printing the error; and the --shard process's note
 * of whether it merged. */
int cli_share_merge(cli_share *s, int *merged);
void cli_share_merge_note(const cli_share *s, int merged);
void cli_share_free(cli_share *s);

#endif
