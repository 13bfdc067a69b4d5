/* Several training seeds of one configuration (`sdumc train --seeds`): the file of each seed's
 * model, and the summary of their validation and test metrics as mean +- sd over seeds. */
#ifndef SD_EVAL_SEEDS_H
#define SD_EVAL_SEEDS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/dataset.h"
#include "model/model.h"

/* The model file of one seed: "DIR/name.safetensors" -> "DIR/name.seed<S>.safetensors"; a path
 * without the .safetensors ending gets ".seed<S>" appended. The summary files use the stem:
 * "DIR/name.seeds.csv" and "DIR/name.seeds.txt" (suffix = ".seeds.csv", ...). SD_E_ARG when buf is
 * too small. */
sd_status sd_seed_model_path(const char *out, uint64_t seed, char *buf, size_t n, sd_error *err);
sd_status sd_seed_summary_path(const char *out, const char *suffix, char *buf, size_t n, sd_error *err);

/* Evaluates each seed's model on the valid and test splits of that seed's view of the dataset
 * (ds[s]: the same folder, whose valid split may have been carved out of train with the seed; both
 * flows when the dataset has simulated text; an empty split is left out), then writes csv_path (the columns of the robustness
 * results.csv: model,condition,target,flow,rate,seed and the metrics, condition = valid or test)
 * and txt_path (a table of every metric as mean +- sd over the seeds), both atomically. *table
 * receives the table's text (malloc'ed) when table != NULL. */
sd_status sd_seed_summary(const sd_dataset *const *ds, const char *name, const uint64_t *seeds, const sd_model *const *models,
                          int n_seeds, const char *csv_path, const char *txt_path, char **table, sd_error *err);

#endif
