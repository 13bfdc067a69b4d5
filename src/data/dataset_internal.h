/* The dataset's in-memory metadata, shared by dataset.c, batch.c and cache.c (not public). */
#ifndef SD_DATA_DATASET_INTERNAL_H
#define SD_DATA_DATASET_INTERNAL_H

#include "dataset.h"

typedef struct {
    char *name;                     /* into sd_dataset.names */
    float label;
    int split;                      /* an sd_split */
    int line;                       /* line in labels.csv (1-based), for messages */
    int64_t frames[SD_MOD_COUNT];   /* T per modality (0 for SIM without simulated text) */
    unsigned char dtype[SD_MOD_COUNT]; /* the file's sd_dtype per modality */
} sd_utt;

struct sd_dataset {
    char *dir;
    char *folder[SD_MOD_COUNT];
    int has_sim;
    int nonfinite_zero;             /* NaN / Inf read as 0 (sd_dataset_options.nonfinite_zero) */
    int64_t nonfinite[SD_MOD_COUNT]; /* how many validation found */
    double label_lo, label_hi;      /* label range (dataset.json, default [-3, 3]) */
    int dim[SD_MOD_COUNT];          /* D_a, D_t, D_v, D_t (0 for SIM without simulated text) */
    int64_t n;                      /* kept utterances */
    sd_utt *utt;                    /* [n], labels.csv order */
    char *names;                    /* the names, NUL-separated */
    int64_t count[SD_SPLIT_COUNT];
    int64_t *ids[SD_SPLIT_COUNT];   /* [count[s]]: utterance id of the i-th item of split s */
    int64_t *slots;                 /* [nslots] open-addressing table of ids by name, -1 empty */
    size_t nslots;
    int64_t max_frames[SD_MOD_COUNT];
    int64_t skipped;
    char *warnings;
};

/* Utterance id of item i of a split (no checks). */
static inline int64_t sd_dataset_id(const sd_dataset *ds, sd_split split, int64_t i) {
    return ds->ids[split][i];
}

/* "<dir>/<folder>/<name>.npy" into buf; -1 when it does not fit. */
int sd_dataset_utt_path(const sd_dataset *ds, int64_t id, int modality, char *buf, size_t size);

#endif
