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

/* Scratch memory of one caller (one thread at a time). Legend: B utterances in a group, T_m the
 * longest frame count of modality slot m in the group, D_m its dim. */
struct sdumc_context {
    sd_flow *flow;      /* forward workspace, grown on demand */
    float *pad[3];      /* [B, T_m, D_m] zero-padded copies of a group's features */
    size_t pad_cap[3];  /* floats allocated in pad[m] */
    int *len[3];        /* [B] frames of each utterance in slot m */
    size_t len_cap;     /* ints allocated in each len[m] */
    int n_threads;      /* sdumc_context_params.n_threads; 0: the model's */
};

/* Most threads a model or context may be given. */
#define SD_API_MAX_THREADS 256

/* Copies an internal error into the public record (err may be NULL); returns the public code. */
sdumc_status sd_api_error(sdumc_error *err, const sd_error *e, sd_status code);
/* A failure with a fixed message, into the public record (err may be NULL); returns code. */
sdumc_status sd_api_fail(sdumc_error *err, sdumc_status code, const char *msg);
/* Sets err to SDUMC_OK / "" (err may be NULL). */
void sd_api_ok(sdumc_error *err);

#endif
