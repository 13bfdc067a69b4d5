/* Reads a whole dataset the way training does (validation with the NaN/Inf scan, then one epoch of
 * every split through the batcher with a background prefetch) and prints the peak resident set
 * size. Used by bench/data_rss.sh; not part of the library or the tests.
 *
 * usage: data_rss DIR [batch] [prefetch] [audio_cap] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "data/batch.h"
#include "data/dataset.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long peak_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [batch] [prefetch] [audio_cap]\n", argv[0]);
        return 2;
    }
    int batch = argc > 2 ? atoi(argv[2]) : 16, prefetch = argc > 3 ? atoi(argv[3]) : 2;
    int audio_cap = argc > 4 ? atoi(argv[4]) : 0;
    sd_dataset_options o = sd_dataset_default_options();
    o.dir = argv[1];
    o.require_sim = 1;
    sd_dataset *ds = NULL;
    sd_error err;
    double t0 = now();
    if (sd_dataset_open(&o, &ds, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t1 = now();
    long rss_validate = peak_rss_kib();
    int64_t items = 0;
    double floats = 0, checksum = 0;
    for (int s = 0; s < SD_SPLIT_COUNT; s++) {
        sd_batcher_options bo = sd_batcher_default_options();
        bo.split = (sd_split)s;
        bo.batch_size = batch;
        bo.prefetch = prefetch;
        bo.seed = 1;
        bo.max_frames[SD_MOD_AUDIO] = audio_cap;
        sd_batcher *bt;
        if (sd_batcher_open(ds, &bo, &bt, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        const sd_batch *b;
        int rc;
        while ((rc = sd_batcher_next(bt, &b, &err)) == 1) {
            items += b->B;
            for (int m = 0; m < SD_MOD_COUNT; m++) {
                if (!b->x[m]) continue;
                size_t n = (size_t)b->B * (size_t)b->T[m] * (size_t)b->D[m];
                floats += (double)n;
                checksum += ((const float *)b->x[m])[n / 2]; /* touch the batch */
            }
        }
        sd_batcher_close(bt);
        if (rc < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    double t2 = now();
    printf("utterances %" PRId64 ", validation (with NaN/Inf scan) %.1f s, epoch %.1f s (%.0f utt/s), "
           "%.2f GB of padded batch floats, checksum %.3g\n",
           items, t1 - t0, t2 - t1, (double)items / (t2 - t1), floats * 4 / 1e9, checksum);
    printf("peak RSS after validation %.1f MiB, after the epoch %.1f MiB\n", rss_validate / 1024.0,
           peak_rss_kib() / 1024.0);
    sd_dataset_close(ds);
    return 0;
}
