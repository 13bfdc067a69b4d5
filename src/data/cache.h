/* The packed feature cache: every feature file of a dataset in one file, float16 or float32,
 * memory-mapped, so that later epochs read one mapping instead of tens of thousands of .npy files.
 *
 * Built once by sd_cache_open when the file is missing or stale, through a temporary file renamed
 * into place (an interrupted build leaves no cache). It is stale, and rebuilt, when anything it was
 * built from differs: the utterance list (names, order), folder names, dims, the dtype asked for, or
 * the size or modification time of any source .npy file.
 *
 * File layout (little-endian):
 *   0   "SDUMCPK1"
 *   8   u32 version (1), u32 dtype (sd_dtype: F32 or F16), u32 modalities (bit m = present),
 *       u32 reserved, i32 dim[4]
 *   40  i64 utterances N, u64 key (FNV-1a of the folder names and utterance names), u64 data start,
 *       u64 file size
 *   72  index: N x 4 entries (utterance-major) of { u64 offset, i64 frames, i64 source size,
 *       i64 source mtime in ns } (32 bytes each)
 *   data: one [T, D] block per utterance and modality, each starting at a multiple of 64 bytes.
 *
 * Legend: N utterances, T frames, D dim. */
#ifndef SD_DATA_CACHE_H
#define SD_DATA_CACHE_H

#include <stdint.h>

#include "core/status.h"
#include "data/dataset.h"
#include "data/feature_file.h"
#include "io/dtype.h"

typedef struct sd_cache sd_cache;

/* Opens the cache of ds at path (dtype SD_DTYPE_F32 or SD_DTYPE_F16), building it first when it is
 * missing or stale; *built (may be NULL) says whether it was (re)built. The cache may only be used
 * with this ds. Building reads every feature file once. */
sd_status sd_cache_open(const sd_dataset *ds, const char *path, sd_dtype dtype, sd_cache **out,
                        int *built, sd_error *err);
void sd_cache_close(sd_cache *c);

/* Whether path holds a cache of ds in dtype that is up to date (sizes and mtimes of the sources);
 * 0 with a reason in err otherwise. Reads only the header and index. */
int sd_cache_is_current(const sd_dataset *ds, const char *path, sd_dtype dtype, sd_error *err);

const sd_dataset *sd_cache_dataset(const sd_cache *c);
const char *sd_cache_path(const sd_cache *c);

/* The dtype the cache stores (SD_DTYPE_F32 or SD_DTYPE_F16). */
sd_dtype sd_cache_dtype(const sd_cache *c);

/* The kept frames (data/feature_file.h caps) of split item i, modality m, into dst [K, D] as
 * dst_dtype: SD_DTYPE_F32 (converted) or the cache's own dtype (copied). NaN / Inf is an error
 * naming the cache and the utterance. */
sd_status sd_cache_read(const sd_cache *c, sd_split split, int64_t i, int modality, int64_t cap,
                        sd_cap_mode mode, void *dst, sd_dtype dst_dtype, sd_error *err);

#endif
