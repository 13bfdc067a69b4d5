/* This worker's share of a per-utterance job: the assignment, the transcripts part, the overall
 * progress of an MPI job, the merge (share.h). */
#include "cli/share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"

int cli_share_parse(const char *cmd, const char *shard_text, sd_shard *shard) {
    sd_error err = {0};
    if (shard_text && sd_dist_size() > 1) {
        fprintf(stderr, "sdumc %s: --shard is for independent processes; under mpirun the %d ranks share the work\n",
                cmd, sd_dist_size());
        return 2;
    }
    if (shard_text && sd_shard_parse(shard_text, shard, &err)) {
        fprintf(stderr, "sdumc %s: --shard: %s\n", cmd, err.msg);
        return 2;
    }
    return 0;
}

int cli_share_open(cli_share *s, const char *cmd, const char *shard_text, const char *out_dir, int transcripts,
                   char *const *names, size_t n_names, const int64_t *cost, const size_t *group,
                   sd_utt_progress print, void *print_user) {
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    s->out_dir = out_dir;
    s->transcripts = transcripts;
    s->names = names;
    s->n_names = n_names;
    s->print = print;
    s->print_user = print_user;
    s->shard = (sd_shard){sd_dist_rank(), sd_dist_size()};
    sd_error err = {0};
    int rc = cli_share_parse(cmd, shard_text, &s->shard);
    if (rc) return rc;
    sd_status st = sd_shard_select_groups(cost, group, n_names, &s->shard, &s->mine_idx, &s->n_mine, &err);
    if (!st && !(s->mine = malloc(sizeof *s->mine * (s->n_mine + 1)))) st = sd_fail(&err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->n_mine; i++) s->mine[i] = names[s->mine_idx[i]];
    /* One worker merges any parts an earlier sharded run left first, then runs on transcripts.csv;
     * a worker of several starts its part with the rows earlier runs wrote for its utterances. */
    int merged = 0;
    if (!st && transcripts && s->shard.count == 1) st = sd_shard_transcripts_merge(out_dir, NULL, 0, &merged, &err);
    if (!st && transcripts) st = sd_shard_transcripts_seed(out_dir, &s->shard, s->mine, s->n_mine, &err);
    if (!st && transcripts && !(s->csv_path = sd_shard_transcripts_path(out_dir, &s->shard)))
        st = sd_fail(&err, SD_E_NOMEM, "out of memory");
    if (st) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (s->shard.count > 1 && sd_dist_rank() == 0)
        fprintf(stderr, "%s: %s %d of %d: %zu of %zu utterances (balanced by input length)\n", cmd,
                sd_dist_size() > 1 ? "rank" : "shard", s->shard.index, s->shard.count, s->n_mine, n_names);
    s->t0 = sd_utt_now();
    return 0;
}

int cli_share_quiet(void) { return sd_dist_rank() != 0; }

const char *cli_share_who(void) {
    static char who[32];
    if (sd_dist_size() == 1) return "";
    snprintf(who, sizeof who, "rank %d: ", sd_dist_rank());
    return who;
}

void cli_share_overall(const cli_share *s) {
    if (sd_dist_size() == 1 || sd_dist_rank() != 0) return;
    fprintf(stderr, "  all ranks: %zu of %zu utterances done, %.0f s\n",
            sd_shard_count_present(s->out_dir, s->names, s->n_names), s->n_names, sd_utt_now() - s->t0);
}

void cli_share_progress(void *user, const sd_utt_report *r) {
    cli_share *s = user;
    if (sd_dist_size() == 1) {
        s->print(s->print_user, r);
        return;
    }
    if (r->outcome == SD_UTT_FAILED) {
        fprintf(stderr, "%serror: %s: %s\n", cli_share_who(), r->name, r->error);
        return;
    }
    if (cli_share_quiet() || r->outcome == SD_UTT_SKIPPED) return;
    s->print(s->print_user, r);
    cli_share_overall(s);
}

/* Rank 0 while it waits for the others. */
static void overall_tick(void *user) {
    const cli_share *s = user;
    fprintf(stderr, "%s: waiting for the other ranks: %zu of %zu utterances done, %.0f s\n", s->cmd,
            sd_shard_count_present(s->out_dir, s->names, s->n_names), s->n_names, sd_utt_now() - s->t0);
}

int cli_share_merge(cli_share *s, int *merged) {
    *merged = 0;
    if (!s->transcripts) return 0;
    sd_error err = {0};
    sd_status st = SD_OK;
    if (s->shard.count == 1 || sd_dist_size() > 1) {
        /* One process, or rank 0 once every rank is done: everything written goes into transcripts.csv. */
        if (sd_dist_rank() == 0) st = sd_shard_transcripts_merge(s->out_dir, NULL, 0, merged, &err);
        st = sd_dist_agree(st, &err);
    } else {
        /* A --shard process: the last one to finish (all outputs there) merges. */
        st = sd_shard_transcripts_merge(s->out_dir, s->names, s->n_names, merged, &err);
    }
    if (st && sd_dist_rank() == 0) fprintf(stderr, "error: %s\n", err.msg);
    return st ? 1 : 0;
}

void cli_share_merge_note(const cli_share *s, int merged) {
    if (!s->transcripts || s->shard.count == 1 || sd_dist_size() > 1) return;
    size_t done = sd_shard_count_present(s->out_dir, s->names, s->n_names);
    if (merged)
        fprintf(stderr, "%s: every utterance is done; the shards' transcripts are merged into %s/transcripts.csv\n",
                s->cmd, s->out_dir);
    else
        fprintf(stderr, "%s: shard %d/%d done; %zu of %zu utterances have their output, transcripts.csv is merged "
                        "by the shard that completes the folder\n",
                s->cmd, s->shard.index, s->shard.count, done, s->n_names);
}

int cli_share_close(cli_share *s, sd_status run_status, const sd_error *run_err, const sd_utt_counts *counts) {
    if (run_status) fprintf(stderr, "%serror: %s\n", cli_share_who(), run_err->msg);
    sd_error err = {0};
    /* [written, already done, failed, ranks whose job stopped] over every rank. */
    int64_t c[4] = {(int64_t)counts->written, (int64_t)counts->skipped, (int64_t)counts->failed, run_status != SD_OK};
    sd_status st = sd_dist_barrier_tick(30.0, sd_dist_rank() == 0 ? overall_tick : NULL, s, &err);
    if (!st) st = sd_dist_allreduce_sum_i64(c, 4, &err);
    if (st && sd_dist_rank() == 0) fprintf(stderr, "error: %s\n", err.msg);
    int merged = 0;
    if (st || cli_share_merge(s, &merged)) return 1;
    if (sd_dist_rank() != 0) return c[2] || c[3] ? 1 : 0;
    const char *who = sd_dist_size() > 1 ? "all ranks: " : "";
    fprintf(stderr, "%s: %s%lld written, %lld already done, %lld failed, %.1f s\n", s->cmd, who, (long long)c[0],
            (long long)c[1], (long long)c[2], sd_utt_now() - s->t0);
    cli_share_merge_note(s, merged);
    return c[2] || c[3] ? 1 : 0;
}

void cli_share_free(cli_share *s) {
    free(s->mine_idx);
    free(s->mine);
    s->mine_idx = NULL;
    free(s->csv_path);
    s->mine = NULL;
    s->csv_path = NULL;
}
