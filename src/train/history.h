/* Per-epoch training records as JSON: the lines of OUT.log.jsonl and the history kept in the
 * training state (so a resumed run rewrites the same log and report). */
#ifndef SD_TRAIN_HISTORY_H
#define SD_TRAIN_HISTORY_H

#include "io/json.h"
#include "train/train.h"

/* Appends one JSON object (no newline). Numbers are printed with 17 significant digits, so a
 * record read back is bit-identical. */
void sd_epoch_record_json(sd_strbuf *out, const sd_epoch_record *r);
/* Parses what sd_epoch_record_json wrote. */
sd_status sd_epoch_record_parse(const sd_json *v, sd_epoch_record *r, sd_error *err);

#endif
