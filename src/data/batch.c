/* Batch iterator with an optional background reader. Legend: B batch size, T padded frames of a
 * modality in the batch, D its dim, n items in the epoch's order, k batch number from `start`. */
#include "batch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/array.h"
#include "core/rng.h"
#include "dataset_internal.h"

typedef struct {
    sd_batch b;                      /* what the caller sees (x, len of the loaded modalities) */
    void *buf[SD_MOD_COUNT];         /* storage of x[m], kept when m is not loaded */
    size_t buf_cap[SD_MOD_COUNT];    /* bytes allocated in buf[m] */
    int *len_buf[SD_MOD_COUNT];      /* [bcap] storage of len[m] */
    int bcap;                        /* samples label, index and len_buf hold */
    int ret;                         /* 1 filled, -1 error */
    sd_error err;
} slot_t;

struct sd_batcher {
    const sd_dataset *ds;
    sd_batcher_options o;
    unsigned mods;          /* modalities actually loaded */
    sd_dtype dtype[SD_MOD_COUNT]; /* element type of each loaded modality's batches */
    int64_t n;              /* items in the order */
    int64_t *base;          /* [n] the items before shuffling (the subset, or 0..n-1) */
    int64_t *order;         /* [n] indices within the split */
    int64_t cap_n;          /* items base and order hold */
    int64_t nbatches;       /* batches from start to the end of the epoch */
    int depth;              /* prefetch depth: batches read ahead */
    int hold;               /* batches the caller keeps at once */
    int nslots;             /* slots in use: depth + hold */
    int nalloc;             /* slots allocated (sd_batcher_reuse keeps them all) */
    slot_t *slots;          /* [nalloc] */
    void *scratch;          /* SD_FEATURE_SCRATCH_BYTES, used by whoever reads */
    int64_t handed;         /* batches returned to the caller */
    int64_t position;       /* items delivered, counting start */
    int finished;           /* 0 running, 1 end reached, -1 error */
    sd_error final_err;
    /* background reader (prefetch > 0) */
    int threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t produced;       /* batches filled by the reader (in order) */
    int64_t released;       /* batches the caller is done with */
    int stop;
};

sd_batcher_options sd_batcher_default_options(void) {
    sd_batcher_options o;
    memset(&o, 0, sizeof o);
    o.split = SD_SPLIT_TRAIN;
    o.batch_size = 32;
    o.shuffle = 1;
    o.modalities = SD_MODS_ALL;
    o.cap_mode = SD_CAP_SUBSAMPLE;
    o.prefetch = SD_PREFETCH_AUTO;
    o.prefetch_bytes = SD_PREFETCH_DEFAULT_BYTES;
    return o;
}

/* Bytes of a batch of B samples with T frames of D values of dtype. */
static int batch_bytes(int B, int64_t T, int D, sd_dtype dtype, size_t *out) {
    return sd_mul_size((size_t)B, (size_t)T, out) && sd_mul_size(*out, (size_t)D, out) &&
           sd_mul_size(*out, sd_dtype_size(dtype), out);
}

/* Grows slot s to hold `bytes` of modality m. */
static sd_status slot_reserve(slot_t *s, int m, size_t bytes, sd_error *err) {
    if (bytes <= s->buf_cap[m]) return SD_OK;
    sd_free(s->buf[m]);
    s->buf[m] = sd_alloc(bytes);
    s->buf_cap[m] = s->buf[m] ? bytes : 0;
    if (!s->buf[m])
        return sd_fail(err, SD_E_NOMEM, "out of memory for a %s batch (%.1f MiB); lower the batch size or cap the frames",
                       sd_modality_name(m), (double)bytes / 1048576.0);
    return SD_OK;
}

/* Grows slot s's per-sample arrays to B samples. */
static int slot_reserve_samples(slot_t *s, int B) {
    if (B <= s->bcap) return 1;
    float *label = sd_array_resize(s->b.label, (size_t)B, sizeof *label);
    if (label) s->b.label = label;
    int64_t *index = sd_array_resize(s->b.index, (size_t)B, sizeof *index);
    if (index) s->b.index = index;
    int ok = label && index;
    for (int m = 0; ok && m < SD_MOD_COUNT; m++) {
        int *len = sd_array_resize(s->len_buf[m], (size_t)B, sizeof *len);
        if (len) s->len_buf[m] = len;
        ok = len != NULL;
    }
    if (ok) s->bcap = B;
    return ok;
}

/* Positions [*p0, *p1) in the order of the items of batch k (with chunks: of piece k). */
static void batch_range(const sd_batcher *bt, int64_t k, int64_t *p0, int64_t *p1) {
    const sd_batcher_options *o = &bt->o;
    int64_t g = k, c = 0, chunks = 1;
    if (o->chunks > 1) {
        g = k / o->chunk_count;
        c = o->chunk_first + k % o->chunk_count;
        chunks = o->chunks;
    }
    int64_t b0 = o->start + g * o->batch_size;
    int64_t b1 = b0 + o->batch_size < bt->n ? b0 + o->batch_size : bt->n;
    *p0 = b0 + c * (b1 - b0) / chunks;
    *p1 = b0 + (c + 1) * (b1 - b0) / chunks;
}

/* Reads batch k into slot s: the pure function both the synchronous and threaded paths call. */
static sd_status fill(sd_batcher *bt, int64_t k, slot_t *s, void *scratch, sd_error *err) {
    const sd_dataset *ds = bt->ds;
    const sd_batcher_options *o = &bt->o;
    int64_t p0, p1;
    batch_range(bt, k, &p0, &p1);
    int B = (int)(p1 - p0);
    sd_batch *b = &s->b;
    b->B = B;
    for (int m = 0; m < SD_MOD_COUNT; m++) { /* the loaded modalities' buffers, NULL for the others */
        b->x[m] = (bt->mods & SD_MOD_BIT(m)) ? s->buf[m] : NULL;
        b->len[m] = (bt->mods & SD_MOD_BIT(m)) ? s->len_buf[m] : NULL;
    }
    for (int j = 0; j < B; j++) {
        int64_t idx = bt->order[p0 + j];
        b->index[j] = idx;
        b->label[j] = ds->utt[sd_dataset_id(ds, o->split, idx)].label;
    }
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        b->T[m] = 0;
        b->D[m] = 0;
        if (!(bt->mods & SD_MOD_BIT(m))) continue;
        int D = ds->dim[m], T = 0;
        for (int j = 0; j < B; j++) {
            int64_t id = sd_dataset_id(ds, o->split, b->index[j]);
            int64_t len = sd_cap_frames(ds->utt[id].frames[m], o->max_frames[m]);
            if (len > INT32_MAX) return sd_fail(err, SD_E_ARG, "%s has %lld frames (cap the frames)", ds->utt[id].name, (long long)len);
            b->len[m][j] = (int)len;
            if (len > T) T = (int)len;
        }
        const sd_dtype dtype = bt->dtype[m];
        const size_t row_bytes = (size_t)D * sd_dtype_size(dtype);
        sd_status st = SD_OK;
        b->T[m] = T;
        b->D[m] = D;
        b->dtype[m] = dtype;
        for (int j = 0; j < B; j++) {
            int64_t idx = b->index[j], id = sd_dataset_id(ds, o->split, idx);
            unsigned char *dst = (unsigned char *)b->x[m] + (size_t)j * (size_t)T * row_bytes; /* [T, D] of sample j */
            int len = b->len[m][j];
            if (o->cache) {
                st = sd_cache_read(o->cache, o->split, idx, m, o->max_frames[m], o->cap_mode, dst, dtype, err);
            } else {
                char path[4096];
                if (sd_dataset_utt_path(ds, id, m, path, sizeof path))
                    return sd_fail(err, SD_E_ARG, "path of '%s' too long", ds->utt[id].name);
                st = sd_feature_read(path, ds->utt[id].frames[m], D, o->max_frames[m], o->cap_mode,
                                     ds->nonfinite_zero, dst, (int)dtype, scratch, err);
            }
            if (st) return st;
            memset(dst + (size_t)len * row_bytes, 0, (size_t)(T - len) * row_bytes); /* zero bits: 0.0 */
        }
    }
    return SD_OK;
}

static void *reader_main(void *arg) {
    sd_batcher *bt = arg;
    for (int64_t k = 0; k < bt->nbatches; k++) {
        pthread_mutex_lock(&bt->mu);
        while (!bt->stop && k - bt->released >= bt->nslots) pthread_cond_wait(&bt->cv, &bt->mu);
        int stop = bt->stop;
        pthread_mutex_unlock(&bt->mu);
        if (stop) break;
        slot_t *s = &bt->slots[k % bt->nslots];
        sd_error_clear(&s->err);
        s->ret = fill(bt, k, s, bt->scratch, &s->err) ? -1 : 1;
        pthread_mutex_lock(&bt->mu);
        bt->produced = k + 1;
        pthread_cond_broadcast(&bt->cv);
        pthread_mutex_unlock(&bt->mu);
        if (s->ret < 0) break;
    }
    return NULL;
}

static void slots_free(sd_batcher *bt) {
    for (int i = 0; bt->slots && i < bt->nalloc; i++) {
        slot_t *s = &bt->slots[i];
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            sd_free(s->buf[m]);
            free(s->len_buf[m]);
        }
        free(s->b.label);
        free(s->b.index);
    }
    free(bt->slots);
}

/* Stops the background reader, if one runs (it exits at its next wait). */
static void reader_stop(sd_batcher *bt) {
    if (!bt->threaded) return;
    pthread_mutex_lock(&bt->mu);
    bt->stop = 1;
    pthread_cond_broadcast(&bt->cv);
    pthread_mutex_unlock(&bt->mu);
    pthread_join(bt->thread, NULL);
    bt->threaded = 0;
}

void sd_batcher_close(sd_batcher *bt) {
    if (!bt) return;
    reader_stop(bt);
    pthread_cond_destroy(&bt->cv);
    pthread_mutex_destroy(&bt->mu);
    slots_free(bt);
    free(bt->order);
    free(bt->base);
    sd_free(bt->scratch);
    free(bt);
}

static sd_status check_options(const sd_dataset *ds, const sd_batcher_options *o, sd_error *err) {
    if ((int)o->split < 0 || (int)o->split >= SD_SPLIT_COUNT)
        return sd_fail(err, SD_E_ARG, "batcher: unknown split %d", (int)o->split);
    if (o->batch_size <= 0) return sd_fail(err, SD_E_ARG, "batcher: batch size %d, must be > 0", o->batch_size);
    if (o->epoch < 0 || o->epoch >= ((int64_t)1 << 24))
        return sd_fail(err, SD_E_ARG, "batcher: epoch %lld out of range", (long long)o->epoch);
    if ((o->prefetch < 0 && o->prefetch != SD_PREFETCH_AUTO) || o->prefetch > 64)
        return sd_fail(err, SD_E_ARG, "batcher: prefetch depth %d, must be 0..64 (or automatic)", o->prefetch);
    if (o->cap_mode != SD_CAP_SUBSAMPLE && o->cap_mode != SD_CAP_TRUNCATE)
        return sd_fail(err, SD_E_ARG, "batcher: unknown cap mode %d", (int)o->cap_mode);
    for (int m = 0; m < SD_MOD_COUNT; m++)
        if (o->max_frames[m] < 0)
            return sd_fail(err, SD_E_ARG, "batcher: negative frame cap for %s", sd_modality_name(m));
    if (o->cache && sd_cache_dataset(o->cache) != ds)
        return sd_fail(err, SD_E_ARG, "batcher: the cache belongs to another dataset");
    if (o->chunks > 1 && (o->chunk_first < 0 || o->chunk_count < 1 || o->chunk_first + o->chunk_count > o->chunks ||
                          o->start != 0))
        return sd_fail(err, SD_E_ARG, "batcher: pieces %d..%d of %d chunks (from position %lld)", o->chunk_first,
                       o->chunk_first + o->chunk_count - 1, o->chunks, (long long)o->start);
    if (o->hold < 0 || o->hold > 4096) return sd_fail(err, SD_E_ARG, "batcher: hold %d, must be 0..4096", o->hold);
    if (o->subset_n < 0 || (o->subset_n > 0 && !o->subset))
        return sd_fail(err, SD_E_ARG, "batcher: bad subset");
    int64_t size = ds->count[o->split];
    for (int64_t i = 0; i < o->subset_n; i++)
        if (o->subset[i] < 0 || o->subset[i] >= size)
            return sd_fail(err, SD_E_ARG, "batcher: subset index %lld outside the %s split (%lld items)",
                           (long long)o->subset[i], sd_split_name(o->split), (long long)size);
    return SD_OK;
}

/* The element type of modality m's batches (see batch.h). */
static sd_dtype choose_dtype(const sd_batcher *bt, int m) {
    const sd_dataset *ds = bt->ds;
    if (!bt->o.keep_dtype) return SD_DTYPE_F32;
    if (bt->o.cache) return sd_cache_dtype(bt->o.cache);
    if (bt->n == 0) return SD_DTYPE_F32;
    const int d = ds->utt[sd_dataset_id(ds, bt->o.split, bt->base[0])].dtype[m];
    if (d != SD_DTYPE_F16 && d != SD_DTYPE_BF16) return SD_DTYPE_F32;
    for (int64_t i = 1; i < bt->n; i++)
        if (ds->utt[sd_dataset_id(ds, bt->o.split, bt->base[i])].dtype[m] != d) return SD_DTYPE_F32;
    return (sd_dtype)d;
}

/* The epoch's order, its batch count and the reader (when prefetching) from position start. */
static sd_status begin_epoch(sd_batcher *bt, int64_t epoch, int64_t start, sd_error *err) {
    const sd_batcher_options *o = &bt->o;
    bt->finished = -1; /* until the epoch has begun */
    bt->nbatches = 0;
    if (epoch < 0 || epoch >= ((int64_t)1 << 24))
        return sd_fail(err, SD_E_ARG, "batcher: epoch %lld out of range", (long long)epoch);
    if (start < 0 || start > bt->n)
        return sd_fail(err, SD_E_ARG, "batcher: start position %lld outside 0..%lld", (long long)start,
                       (long long)bt->n);
    if (o->chunks > 1 && start != 0)
        return sd_fail(err, SD_E_ARG, "batcher: gradient chunks start at position 0, not %lld", (long long)start);
    bt->o.epoch = epoch;
    bt->o.start = start;
    memcpy(bt->order, bt->base, (size_t)bt->n * sizeof *bt->order);
    if (o->shuffle && bt->n > 1) {
        /* Epoch e of split s draws from its own counter range of the shuffle stream. */
        sd_rng r = sd_rng_make(o->seed, SD_STREAM_SHUFFLE);
        r.index = ((uint64_t)epoch << 38) | ((uint64_t)o->split << 36);
        sd_rng_shuffle(&r, bt->order, (size_t)bt->n);
    }
    int64_t rest = bt->n - start;
    bt->nbatches = o->drop_last ? rest / o->batch_size : (rest + o->batch_size - 1) / o->batch_size;
    if (o->chunks > 1) bt->nbatches *= o->chunk_count;
    bt->position = start;
    bt->handed = 0;
    bt->finished = 0;
    bt->produced = 0;
    bt->released = 0;
    bt->stop = 0;
    if (bt->depth > 0 && bt->nbatches > 0) {
        if (pthread_create(&bt->thread, NULL, reader_main, bt) != 0) {
            bt->finished = -1;
            return sd_fail(err, SD_E_NOMEM, "batcher: cannot start the reader thread");
        }
        bt->threaded = 1;
    }
    return SD_OK;
}

/* Takes options o (already checked): the item list, element types, prefetch depth and buffers,
 * grown where they are too small (never shrunk), then the epoch. */
static sd_status configure(sd_batcher *bt, const sd_batcher_options *o, sd_error *err) {
    const sd_dataset *ds = bt->ds;
    bt->finished = -1; /* until the epoch has begun */
    bt->nbatches = 0;
    bt->o = *o;
    bt->o.subset = NULL;
    if (bt->o.chunks <= 1) bt->o.chunks = 1;
    bt->mods = o->modalities & SD_MODS_ALL;
    if (!ds->has_sim) bt->mods &= ~SD_MOD_BIT(SD_MOD_SIM);
    bt->n = o->subset_n > 0 ? o->subset_n : ds->count[o->split];
    if (bt->n > bt->cap_n || !bt->base) {
        free(bt->base);
        free(bt->order);
        bt->base = malloc(((size_t)bt->n + 1) * sizeof *bt->base);
        bt->order = malloc(((size_t)bt->n + 1) * sizeof *bt->order);
        bt->cap_n = bt->base && bt->order ? bt->n : 0;
        if (!bt->base || !bt->order) return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < bt->n; i++) bt->base[i] = o->subset_n > 0 ? o->subset[i] : i;
    /* Batch buffers at their largest size up front: B x (longest capped utterance of the items) x
     * D per modality. Memory is then fixed for the epoch, and for every later one (no growth, no
     * allocator fragmentation, no fresh pages), and a batch that cannot fit fails here, not in the
     * middle of training. */
    const int Bmax = (o->batch_size + bt->o.chunks - 1) / bt->o.chunks; /* largest batch (or piece) */
    size_t bytes[SD_MOD_COUNT] = {0}, slot_bytes = 0;
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        if (!(bt->mods & SD_MOD_BIT(m))) continue;
        bt->dtype[m] = choose_dtype(bt, m);
        int64_t Tmax = 0;
        for (int64_t i = 0; i < bt->n; i++) {
            int64_t id = sd_dataset_id(ds, o->split, bt->base[i]);
            int64_t len = sd_cap_frames(ds->utt[id].frames[m], o->max_frames[m]);
            Tmax = len > Tmax ? len : Tmax;
        }
        if (Tmax > INT32_MAX)
            return sd_fail(err, SD_E_ARG, "batcher: %s has utterances of %lld frames (cap the frames)",
                           sd_modality_name(m), (long long)Tmax);
        if (!batch_bytes(Bmax, Tmax, ds->dim[m], bt->dtype[m], &bytes[m]) ||
            !sd_add_size(slot_bytes, bytes[m], &slot_bytes))
            return sd_fail(err, SD_E_NOMEM, "batcher: a batch of %d utterances overflows", Bmax);
    }
    int depth = o->prefetch;
    if (depth == SD_PREFETCH_AUTO) {
        size_t fit = o->prefetch_bytes / (slot_bytes > 0 ? slot_bytes : 1);
        depth = fit < 1 ? 1 : fit > 8 ? 8 : (int)fit;
    }
    const int hold = o->hold > 1 ? o->hold : 1, nslots = depth + hold;
    bt->nslots = 0; /* until every slot in use is ready */
    if (nslots > bt->nalloc) {
        slot_t *slots = sd_array_resize(bt->slots, (size_t)nslots, sizeof *slots);
        if (!slots) return sd_fail(err, SD_E_NOMEM, "out of memory");
        memset(slots + bt->nalloc, 0, (size_t)(nslots - bt->nalloc) * sizeof *slots);
        bt->slots = slots;
        bt->nalloc = nslots;
    }
    for (int i = 0; i < nslots; i++) {
        if (!slot_reserve_samples(&bt->slots[i], Bmax)) return sd_fail(err, SD_E_NOMEM, "out of memory");
        for (int m = 0; m < SD_MOD_COUNT; m++) {
            if (!(bt->mods & SD_MOD_BIT(m))) continue;
            sd_status st = slot_reserve(&bt->slots[i], m, bytes[m], err);
            if (st) return st;
        }
    }
    bt->depth = depth;
    bt->hold = hold;
    bt->nslots = nslots;
    return begin_epoch(bt, o->epoch, o->start, err);
}

sd_status sd_batcher_open(const sd_dataset *ds, const sd_batcher_options *o, sd_batcher **out,
                          sd_error *err) {
    if (out) *out = NULL;
    if (!ds || !o || !out) return sd_fail(err, SD_E_ARG, "sd_batcher_open: NULL argument");
    sd_status st = check_options(ds, o, err);
    if (st) return st;
    sd_batcher *bt = calloc(1, sizeof *bt);
    if (!bt) return sd_fail(err, SD_E_NOMEM, "out of memory");
    bt->ds = ds;
    pthread_mutex_init(&bt->mu, NULL);
    pthread_cond_init(&bt->cv, NULL);
    bt->scratch = sd_alloc(SD_FEATURE_SCRATCH_BYTES);
    st = bt->scratch ? configure(bt, o, err) : sd_fail(err, SD_E_NOMEM, "out of memory");
    if (st) {
        sd_batcher_close(bt);
        return st;
    }
    *out = bt;
    return SD_OK;
}

sd_status sd_batcher_reuse(sd_batcher *bt, const sd_batcher_options *o, sd_error *err) {
    if (!bt || !o) return sd_fail(err, SD_E_ARG, "sd_batcher_reuse: NULL argument");
    sd_status st = check_options(bt->ds, o, err);
    if (st) return st;
    reader_stop(bt);
    sd_error_clear(&bt->final_err);
    if ((st = configure(bt, o, err)) && err) bt->final_err = *err;
    return st;
}

sd_status sd_batcher_restart(sd_batcher *bt, int64_t epoch, int64_t start, sd_error *err) {
    if (!bt) return sd_fail(err, SD_E_ARG, "sd_batcher_restart: NULL batcher");
    reader_stop(bt);
    sd_error_clear(&bt->final_err);
    sd_status st = begin_epoch(bt, epoch, start, err);
    if (st && err) bt->final_err = *err;
    return st;
}

int sd_batcher_prefetch_depth(const sd_batcher *bt) { return bt->depth; }

int sd_batcher_next(sd_batcher *bt, const sd_batch **batch, sd_error *err) {
    if (batch) *batch = NULL;
    if (!bt || !batch) {
        sd_fail(err, SD_E_ARG, "sd_batcher_next: NULL argument");
        return -1;
    }
    if (bt->finished) {
        if (bt->finished < 0 && err) *err = bt->final_err;
        return bt->finished > 0 ? 0 : -1;
    }
    int64_t k = bt->handed;
    if (k >= bt->nbatches) {
        bt->finished = 1;
        if (bt->threaded) { /* the caller is done with the last batch too */
            pthread_mutex_lock(&bt->mu);
            bt->released = k;
            pthread_cond_broadcast(&bt->cv);
            pthread_mutex_unlock(&bt->mu);
        }
        return 0;
    }
    slot_t *s = &bt->slots[k % bt->nslots];
    if (bt->threaded) {
        pthread_mutex_lock(&bt->mu);
        bt->released = k - bt->hold + 1 > 0 ? k - bt->hold + 1 : 0; /* batch k-hold is free again */
        pthread_cond_broadcast(&bt->cv);
        while (bt->produced <= k) pthread_cond_wait(&bt->cv, &bt->mu);
        pthread_mutex_unlock(&bt->mu);
    } else {
        sd_error_clear(&s->err);
        s->ret = fill(bt, k, s, bt->scratch, &s->err) ? -1 : 1;
    }
    if (s->ret < 0) {
        bt->finished = -1;
        bt->final_err = s->err;
        if (err) *err = s->err;
        return -1;
    }
    bt->handed = k + 1;
    bt->position += s->b.B;
    *batch = &s->b;
    return 1;
}

int64_t sd_batcher_position(const sd_batcher *bt) { return bt->position; }
int64_t sd_batcher_num_items(const sd_batcher *bt) { return bt->n; }
int64_t sd_batcher_num_batches(const sd_batcher *bt) {
    int64_t B = bt->o.batch_size;
    int64_t n = bt->o.drop_last ? bt->n / B : (bt->n + B - 1) / B;
    return bt->o.chunks > 1 ? n * bt->o.chunk_count : n;
}
const int64_t *sd_batcher_order(const sd_batcher *bt) { return bt->order; }
