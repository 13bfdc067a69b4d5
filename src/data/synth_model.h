/* The generative story of the synthetic corpus (internal to synth.c; see docs/DATASET.md).
 *
 * Legend: V vocabulary, R word-code dims (SEM semantic + text cues), PH phonetic code dims,
 * HA audio frame latent dims, HV video frame latent dims, D_a / D_t / D_v feature dims,
 * L words, T_a / T_t / T_s / T_v frames. */
#ifndef SD_DATA_SYNTH_MODEL_H
#define SD_DATA_SYNTH_MODEL_H

#include <stdint.h>

#include "core/rng.h"
#include "synth.h"

#define SYN_SEM 12                /* semantic (topic) dims of a word code */
#define SYN_GT (4 + SYN_SEM)      /* text frame latent: polarity cues + context-mixed semantics */
#define SYN_PH 12                 /* phonetic code of a word */
#define SYN_HA (SYN_PH + 7)       /* audio frame latent: phonetics + 7 prosody channels */
#define SYN_HV 8                  /* video frame latent: face action units and head pose */

enum { SYN_NEUTRAL = 0, SYN_POS = 1, SYN_NEG = 2, SYN_NEGATOR = 3, SYN_INTENS = 4, SYN_CLASSES = 5 };

typedef struct {
    sd_synth_spec spec;
    uint64_t seed;
    int V;
    unsigned char *cls;     /* [V] word class */
    float *polarity;        /* [V] signed strength of polar words, 0 otherwise */
    float *sem;             /* [V, SEM] */
    float *ph;              /* [V, PH], centred within each class */
    int *by_class[SYN_CLASSES]; /* word ids of each class */
    int n_class[SYN_CLASSES];
    float *Mt, *bt;         /* [D_t, GT], [D_t] text "encoder" */
    float *sim_drift;       /* [D_t] systematic offset of the simulated text */
    float *sim_gain;        /* [D_t] per-dim gain of the simulated text's feature map */
    float *sim_cross;       /* [D_t] weight of the mixed-in partner dim sim_partner[d] */
    int *sim_partner;       /* [D_t] a random permutation of the dims */
    float *Ma, *ba;         /* [D_a, HA], [D_a] */
    float *Mv, *bv;         /* [D_v, HV], [D_v] */
    float *raw_scale[3], *raw_offset[3]; /* raw scales only: [D_m] per audio, text (and sim), video */
} syn_world;

/* One generated utterance: label and the four feature matrices (float32, row-major). */
typedef struct {
    float label;            /* a multiple of 1/3 in [-3, 3] */
    int L, Ls;              /* words of the transcript and of the recognised (simulated) one */
    int Ta, Tv;
    float *audio, *text, *video, *sim; /* [T_a, D_a], [L, D_t], [T_v, D_v], [Ls, D_t] */
    int64_t word_errors;    /* substitutions + deletions + insertions of the simulated text */
} syn_utt;

int sd_syn_world_init(syn_world *w, const sd_synth_spec *spec, uint64_t seed);
void sd_syn_world_free(syn_world *w);

/* Generates utterance i of speaker `speaker`; buffers are malloc'ed into u (free with
 * sd_syn_utt_free). Returns 0, or -1 when out of memory. Pure function of (seed, i, speaker). */
int sd_syn_utt_generate(const syn_world *w, int64_t i, int64_t speaker, syn_utt *u);
void sd_syn_utt_free(syn_utt *u);

/* Counter ranges of the SD_STREAM_SYNTH stream. */
#define SYN_BASE_RAW ((uint64_t)1 << 37)
#define SYN_BASE_STRUCTURE ((uint64_t)1 << 38)
#define SYN_BASE_SPEAKER ((uint64_t)1 << 39)
#define SYN_SPEAKER_SPAN ((uint64_t)1 << 20)
#define SYN_UTT_SHIFT 36
#define SYN_MAX_N (((int64_t)1 << 27) - 16)

#endif
