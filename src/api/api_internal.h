/* What lies behind the opaque types of include/sdumc.h. Private to src/api/. */
#ifndef SD_API_INTERNAL_H
#define SD_API_INTERNAL_H

#include <stddef.h>

#include "core/status.h"
#include "model/flow.h"
#include "model/model.h"
#include "sdumc.h"

struct sdumc_model {
    sd_model *m;   /* read-only after load: shared by every thread */
    int n_threads; /* sdumc_model_params.n_threads */
};

/* Scratch of one thread of a call. Legend: B utterances in a group, T_m the longest frame count
 * of modality slot m in the group, D_m its dim. */
typedef struct {
    sd_flow *flow;      /* forward workspace, grown on demand */
    float *pad[3];      /* [B, T_m, D_m] zero-padded copies of a group's features */
    size_t pad_cap[3];  /* floats allocated in pad[m] */
    int *len[3];        /* [B] frames of each utterance in slot m */
    size_t len_cap;     /* ints allocated in each len[m] */
} sd_api_scratch;

/* A caller's scratch (one call at a time) and the threads its calls run on. */
struct sdumc_context {
    sd_api_scratch *scratch; /* [scratch_n]: scratch[w] for thread w of the pool (0: the caller) */
    int scratch_n;
    struct sd_pool *pool;    /* the threads of the last call that spread (NULL until one does) */
    int n_threads;           /* sdumc_context_params.n_threads; 0: the model's */
};

/* Most threads a model or context may be given. */
#define SD_API_MAX_THREADS 256

/* run.c: the scratch of one thread, made and released. */
sd_status sd_api_scratch_init(sd_api_scratch *s, sd_error *e);
void sd_api_scratch_release(sd_api_scratch *s);
/* run.c: n checked utterances (scores [n], emb [n, C] or NULL) on at most `threads` threads. */
sd_status sd_api_run(const sd_model *m, sdumc_context *ctx, int threads, const sdumc_utterance *u, size_t n,
                     int missing, float *scores, float *emb, sd_error *e);
/* run.c: work (multiply-adds of a group's frame projections) from which a group spreads over the
 * threads; below it the group runs on the caller's thread. */
extern double sd_api_group_par_min_work;
/* The features of modality slot m (audio, text, video) of an utterance. */
const sdumc_features *sd_api_slot(const sdumc_utterance *u, int m);

/* Copies an internal error into the public record (err may be NULL); returns the public code. */
sdumc_status sd_api_error(sdumc_error *err, const sd_error *e, sd_status code);
/* A failure with a fixed message, into the public record (err may be NULL); returns code. */
sdumc_status sd_api_fail(sdumc_error *err, sdumc_status code, const char *msg);
/* Sets err to SDUMC_OK / "" (err may be NULL). */
void sd_api_ok(sdumc_error *err);

#endif
