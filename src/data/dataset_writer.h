/* Writing a new dataset folder (the layout of data/dataset.h) crash-safely: every file goes into a
 * temporary sibling folder "<dir>.tmp-XXXXXX", one syncfs() makes them durable at once, and the
 * folder is renamed to dir at the end. An interrupted or failed run leaves no dir (and removes the
 * temporary when it can); the temporary is locked while its run lives, and a later run removes
 * those of dead runs (sd_atomic_remove_stale). Used by `sdumc synth` and `sdumc import-mmsa`. */
#ifndef SD_DATA_DATASET_WRITER_H
#define SD_DATA_DATASET_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/dtype.h"

typedef struct {
    char out[4096]; /* the final folder */
    char tmp[4200]; /* the temporary one, "" once committed or aborted */
    int lock_fd;    /* holds the temporary locked while this run lives (io/atomic_file.h), -1 none */
} sd_dataset_writer;

/* dir must not exist or be an empty folder. Creates the temporary folder with the default
 * feature folders of the modalities in `modalities` (SD_MOD_BIT of data/batch.h). `who` names the
 * command in messages. */
sd_status sd_dataset_writer_begin(sd_dataset_writer *w, const char *dir, const char *who, unsigned modalities,
                                  sd_error *err);
/* <tmp>/<default folder of modality>/<name>.npy, [rows, cols] float32 data stored as dtype (f32
 * or f16), written plainly (the commit makes it durable), byte for byte what sd_npy_write writes. */
sd_status sd_dataset_writer_npy(const sd_dataset_writer *w, int modality, const char *name, const float *data,
                                int64_t rows, int64_t cols, sd_dtype dtype, sd_error *err);
/* <tmp>/<file> with these bytes (labels.csv, notes). */
sd_status sd_dataset_writer_file(const sd_dataset_writer *w, const char *file, const char *data, size_t n,
                                 sd_error *err);
/* Syncs and renames the temporary folder to dir. On failure the temporary is removed. */
sd_status sd_dataset_writer_commit(sd_dataset_writer *w, sd_error *err);
/* Removes the temporary folder (after a failure). */
void sd_dataset_writer_abort(sd_dataset_writer *w);

#endif
