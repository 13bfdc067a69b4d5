/* Shared by the training tests (test_train, test_norm): small training options, whole-file
 * comparison, and a progress callback that copies the training state after the first epoch (to
 * resume from it). */
#ifndef SD_TESTS_TRAIN_FIXTURE_H
#define SD_TESTS_TRAIN_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/train.h"

/* hidden 16, 3 epochs, batch 16, lr 1e-3, prefetch 1, the given seed. */
static inline sd_train_options small_train_options(const char *out, uint64_t seed) {
    sd_train_options o = sd_train_default_options();
    o.out = out;
    o.model.hidden = 16;
    o.epochs = 3;
    o.batch_size = 16;
    o.lr = 1e-3f;
    o.seed = seed;
    o.prefetch = 1;
    o.settings = "hidden=16\nlr=0.001\n"; /* as the command line would give them (README, Resume) */
    return o;
}

static inline int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = sd_test_read_file(a, &na), *y = sd_test_read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* on_progress: after epoch 1, copies the state file named by user to `snapshot`. */
static char snapshot[700];
static inline void snapshot_after_first_epoch(const sd_train_progress *p, const sd_epoch_record *r, void *user) {
    if (r && p->epoch == 0) {
        size_t n = 0;
        void *buf = sd_test_read_file(user, &n);
        if (buf) sd_test_write_file(snapshot, buf, n);
        free(buf);
    }
}

#endif
