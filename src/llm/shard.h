/* Sharing a folder's utterances among the workers of a job: the ranks of an MPI job (core/dist.h)
 * or independent processes started with --shard I/N (a Slurm job array). Every worker computes the
 * same assignment from the same inputs, so none needs to ask another for its share.
 *
 * The assignment balances the work by cost (the frames of each utterance's input .npy, i.e. its
 * audio length): longest first, each utterance to the worker with the least cost so far (ties: the
 * lower worker; equal costs in name order). A pure function of the names, their costs and N.
 *
 * Transcripts (simulate-text): each worker of N > 1 writes its rows to its own part,
 * OUT/transcripts.shard-I-of-N.csv; merging puts OUT/transcripts.csv and every part (of any N: an
 * earlier run may have used another) into OUT/transcripts.csv, rows sorted by name as one process
 * writes them, and removes the parts. A part's row replaces transcripts.csv's (parts are newer);
 * between parts, the later part in name order wins. */
#ifndef SD_LLM_SHARD_H
#define SD_LLM_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "llm/transcripts.h"

typedef struct {
    int index, count; /* this worker, 0-based, of count (count 1: all the work) */
} sd_shard;

/* "I/N" with 0 <= I < N <= 2^20 (e.g. a job array's task id and size). */
sd_status sd_shard_parse(const char *text, sd_shard *out, sd_error *err);

/* owner[n]: the worker of each item, from cost[n] >= 0 (see the header comment). */
sd_status sd_shard_assign(const int64_t *cost, size_t n, int workers, int *owner, sd_error *err);

/* The items of worker s, ascending (*mine malloc'd), from the items' costs. */
sd_status sd_shard_select(const int64_t *cost, size_t n, const sd_shard *s, size_t **mine, size_t *n_mine,
                          sd_error *err);
/* The same for items that go in groups (group[n]: 0-based, nondecreasing; e.g. the passes of
 * text-features): the groups are assigned, by the sum of their items' costs, and *mine lists the
 * items of worker s's groups. group NULL: each item alone (sd_shard_select). */
sd_status sd_shard_select_groups(const int64_t *cost, const size_t *group, size_t n, const sd_shard *s, size_t **mine,
                                 size_t *n_mine, sd_error *err);
/* cost[i] = the rows (frames) of DIR/<names[i]>.npy, from its header. Errors name the file. */
sd_status sd_shard_npy_rows(const char *dir, char *const *names, size_t n, int64_t *cost, sd_error *err);

/* How many of the names have DIR/<name>.npy (outputs finished, by whichever worker). */
size_t sd_shard_count_present(const char *dir, char *const *names, size_t n);

/* malloc'd path of worker s's transcripts: OUT/transcripts.csv when s->count == 1, else its part. */
char *sd_shard_transcripts_path(const char *out_dir, const sd_shard *s);
/* OUT/transcripts.csv and every part, one row per name (see the header comment), in t. */
sd_status sd_shard_transcripts_read(const char *out_dir, sd_transcripts *t, sd_error *err);
/* Starts worker s's part with the rows of its names that any earlier run wrote, so that it skips
 * them (an utterance is done when it has its .npy and a row). Nothing to do when s->count == 1. */
sd_status sd_shard_transcripts_seed(const char *out_dir, const sd_shard *s, char *const *mine, size_t n_mine,
                                    sd_error *err);
/* Merges into OUT/transcripts.csv and removes the parts and the temporaries that killed writers
 * left (<file>.npy.tmp.XXXXXX, <file>.csv.tmp.XXXXXX): call it when no worker is writing.
 * require = names[n] (may be NULL): then only when every one of them has OUT/<name>.npy and a row
 * (*merged says whether it did). */
sd_status sd_shard_transcripts_merge(const char *out_dir, char *const *require, size_t n, int *merged, sd_error *err);

#endif
