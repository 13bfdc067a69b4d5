/* Batches over one split of a dataset, for one epoch.
 *
 * A batch holds, per loaded modality m, x[m] [B, T_m, D_m]: each sample's frames from the start,
 * right-padded with zeros to T_m, the longest (capped) length in the batch; len[m][b] is sample b's
 * frame count (for the attention masks). Modalities not loaded have x[m] = NULL, len[m] = NULL and
 * T[m] = 0.
 *
 * Order: the split's items in labels.csv order (shuffle = 0: the order of the reference code, which
 * never shuffles), or a permutation that is a pure function of (seed, epoch, split), so a resumed run
 * sees the same batches. start skips the first `start` items of that order (resume in the middle of
 * an epoch: pass the position saved with sd_batcher_position).
 *
 * Element type: float32, or with keep_dtype the type the files (or the cache) store when every
 * file of the modality in the split has it: float16 and bfloat16 batches take half the memory and
 * are converted where they are used (the model's frame projection converts chunk by chunk). A
 * modality whose files mix types, or are float64, is float32.
 *
 * Memory: (prefetch + hold) batch buffers of the largest possible batch (B x longest capped utterance
 * x D per modality), allocated at open and kept by sd_batcher_restart, plus a 1 MiB read buffer;
 * nothing scales with the number of utterances. The prefetch depth is given in batches, or sized
 * by memory (SD_PREFETCH_AUTO: as many batches as fit in prefetch_bytes, at least 1 and at most 8).
 * With a depth > 0 a background thread reads the next batches while the caller computes; the
 * batches are the same, byte for byte, as with depth 0.
 *
 * Legend: B batch size, T_m padded frames of modality m in the batch, D_m its feature dim. */
#ifndef SD_DATA_BATCH_H
#define SD_DATA_BATCH_H

#include <stdint.h>

#include "core/status.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "data/feature_file.h"
#include "io/dtype.h"

typedef struct {
    int B;                     /* samples in this batch (the last one of an epoch may be short) */
    int T[SD_MOD_COUNT];       /* padded frames per modality (0 when not loaded) */
    int D[SD_MOD_COUNT];       /* feature dims (0 when not loaded) */
    int *len[SD_MOD_COUNT];    /* [B] frames of each sample (after the cap) */
    void *x[SD_MOD_COUNT];     /* [B, T_m, D_m], zero-padded, elements of dtype[m] */
    sd_dtype dtype[SD_MOD_COUNT]; /* SD_DTYPE_F32 unless keep_dtype (then also F16 or BF16) */
    float *label;              /* [B] */
    int64_t *index;            /* [B] indices within the split */
} sd_batch;

#define SD_MODS_ALL ((1u << SD_MOD_COUNT) - 1u)
#define SD_MOD_BIT(m) (1u << (m))

typedef struct {
    sd_split split;
    int batch_size;            /* > 0 */
    int shuffle;               /* 0: labels.csv order */
    uint64_t seed;
    int64_t epoch;             /* >= 0; the order of epoch e depends only on (seed, e, split) */
    int64_t start;             /* first position in the epoch's order, 0..n */
    int drop_last;             /* 1: no short last batch */
    unsigned modalities;       /* SD_MOD_BIT(m) set = load m; SIM is ignored without simulated text */
    int max_frames[SD_MOD_COUNT]; /* frame cap per modality, 0 = none */
    sd_cap_mode cap_mode;      /* see data/feature_file.h */
    int prefetch;              /* batches read ahead by a background thread; 0 = synchronous;
                                  SD_PREFETCH_AUTO: as many as fit in prefetch_bytes (1..8) */
    size_t prefetch_bytes;     /* memory for the batches read ahead, with SD_PREFETCH_AUTO */
    int keep_dtype;            /* 1: float16 / bfloat16 files stay so in the batch (see above) */
    const int64_t *subset;     /* optional: only these indices of the split, in this order */
    int64_t subset_n;          /*   (before shuffling); copied at open */
    const sd_cache *cache;     /* optional packed cache (data/cache.h) instead of the .npy files */
    /* Gradient chunks (train/grad_step.h): with chunks > 1 (start must then be 0) every batch of
     * B items is cut into `chunks` consecutive pieces, piece c holding items
     * [c*B/chunks, (c+1)*B/chunks) of the batch, and the batcher delivers pieces chunk_first ..
     * chunk_first + chunk_count - 1 of each batch, in that order, each as a batch of its own
     * padded to its own longest utterance (a piece of a short last batch may be empty, B = 0).
     * chunks 0 or 1: whole batches (chunk_first and chunk_count are then ignored). */
    int chunks, chunk_first, chunk_count;
    /* Batches the caller keeps at once (0 or 1: one): batch k stays valid until batch k + hold
     * is requested. Costs hold - 1 more batch buffers. */
    int hold;
} sd_batcher_options;

typedef struct sd_batcher sd_batcher;

#define SD_PREFETCH_AUTO (-1)
#define SD_PREFETCH_DEFAULT_BYTES ((size_t)128 << 20)

/* train split, batch 32, shuffle on, seed 0, epoch 0, start 0, all modalities, no caps, subsample
 * mode, prefetch sized by memory (128 MiB), float32 batches, no subset, no cache, whole batches,
 * hold 1. */
sd_batcher_options sd_batcher_default_options(void);

sd_status sd_batcher_open(const sd_dataset *ds, const sd_batcher_options *o, sd_batcher **out,
                          sd_error *err);
/* Next batch: returns 1 and sets *batch (valid until the next call or close), 0 at the end of the
 * epoch, -1 on an error (a file changed or vanished since validation, a read failure, NaN): err
 * says which file. After 0 or -1 every later call returns the same. */
int sd_batcher_next(sd_batcher *b, const sd_batch **batch, sd_error *err);
/* The same batcher for another epoch (or position): the order becomes (seed, epoch)'s, reading
 * starts again at `start`, and the batch buffers are reused (no allocation, no fresh pages). The
 * batches are those sd_batcher_open with that epoch and start would give. */
sd_status sd_batcher_restart(sd_batcher *b, int64_t epoch, int64_t start, sd_error *err);
/* The same batcher, buffers and all, with other options (another split, batch size, epoch...) on
 * the same dataset: the buffers grow where the new batches need more, and are never freed before
 * close, so a training run that alternates its train and valid splits allocates them once. The
 * batches are those sd_batcher_open(o) would give. After an error the batcher only closes. */
sd_status sd_batcher_reuse(sd_batcher *b, const sd_batcher_options *o, sd_error *err);
/* The prefetch depth in use (batches read ahead). */
int sd_batcher_prefetch_depth(const sd_batcher *b);
/* Items of the split delivered so far, counting start (what to save for a resume). */
int64_t sd_batcher_position(const sd_batcher *b);
/* Batches in the whole epoch (from position 0; with chunks, the pieces delivered) and items in
 * the epoch's order. */
int64_t sd_batcher_num_batches(const sd_batcher *b);
int64_t sd_batcher_num_items(const sd_batcher *b);
/* The epoch's order: item k of the epoch is index order[k] of the split ([num_items]). */
const int64_t *sd_batcher_order(const sd_batcher *b);
void sd_batcher_close(sd_batcher *b);

#endif
