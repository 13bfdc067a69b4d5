/* The synthetic corpus: a dataset in the layout of data/dataset.h with the structure of real
 * multimodal sentiment data (CMU-MOSEI-like labels and split, variable lengths, text strongly,
 * audio moderately and video weakly predictive through different nonlinear mappings with speaker
 * nuisance, and a simulated text recovered from the audio with word errors). The generative story
 * is in docs/DATASET.md. It is a test bed, not a claim about real data.
 *
 * Deterministic: the bytes written depend only on (n, seed, dims kind), not on the thread count. */
#ifndef SD_DATA_SYNTH_H
#define SD_DATA_SYNTH_H

#include <stdint.h>

#include "core/status.h"
#include "io/dtype.h"

enum { SD_SYNTH_SMALL = 0, SD_SYNTH_MOSEI = 1 };
/* Or'ed into a dims kind: field-like feature scales (docs/DATASET.md, "Raw scales"). */
#define SD_SYNTH_RAW_SCALES 0x100

typedef struct {
    int dim_audio, dim_text, dim_video;   /* D_a, D_t, D_v (the simulated text has D_t) */
    int words_min, words_max;             /* words per utterance = text frames */
    int frames_per_word;                  /* audio frames per word, on average */
    int audio_min, audio_max;             /* audio frames, clamped */
    float video_per_audio;                /* video frames per audio frame, on average */
    int video_min, video_max;             /* video frames, clamped */
    int vocab;                            /* vocabulary size */
    sd_dtype dtype;                       /* of the .npy files */
    int raw_scales;                       /* 1: field-like per-dim scales, -inf in audio pauses */
} sd_synth_spec;

/* SD_SYNTH_SMALL: 32/48/24, 5-20 words, 20-80 audio frames, 10-40 video frames, float32.
 * SD_SYNTH_MOSEI: 1024/4096/1024, 8-50 words, 50 Hz-like audio (100-1000 frames), 10-200 video
 * frames, float16 (as the released features). Either | SD_SYNTH_RAW_SCALES: the same corpus seen
 * through per-dimension affine maps of field-like scales (an F0-like dim in Hz, a few dims in the
 * hundreds, others near zero) with -inf in an audio dim at pauses (COVAREP's log of silence). */
sd_synth_spec sd_synth_spec_of(int dims_kind);
/* "small" / "mosei" -> kind; -1 when unknown. */
int sd_synth_kind_from_name(const char *name);

/* Smallest n accepted (every split needs utterances). */
#define SD_SYNTH_MIN_N 20

/* Writes n utterances into dir, which must not exist or be an empty folder. Everything is written
 * into a temporary sibling folder ("<dir>.tmp-XXXXXX") renamed to dir at the end: an interrupted or
 * failed run leaves no dir (and removes the temporary when it can). */
sd_status sd_synth_write(const char *dir, int64_t n, uint64_t seed, int dims_kind, sd_error *err);

#endif
