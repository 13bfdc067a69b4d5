/* The robustness evaluation (docs/ROBUSTNESS.md): several models, each evaluated under every
 * condition of a plan on one split, with the same corrupted inputs for every model.
 *
 * Conditions:
 *   clean            no corruption (one per flow)
 *   missing T r      random frame missing at rate r (LNLN protocol) on target T
 *   drop T r         dropped runs of SD_DROP_RUN consecutive frames, a run starting at each frame
 *                    with probability r (MultiBench's structured drop)
 *   noise T s        Gaussian noise of s standard deviations of each feature dimension
 *   pattern P        whole modalities absent: the modalities of P present, the others zero
 * T is one input slot (audio, text, video) or all three. The text slot holds the real text in the
 * complete flow and the simulated text in the text-missing flow, so "text" corrupts whichever text
 * the flow reads. Patterns: in the complete flow each of the 7 non-empty subsets of {a, t, v} (an
 * absent text is zeros); in the text-missing flow the 3 subsets without text (the text slot holds
 * the simulated text, which comes from the audio: it is zeros too when the audio is absent).
 *
 * A seed is one replicate: corruption draws keyed by the seed, and, for a model given one file per
 * training seed, that seed's file. Legend: n utterances of the split, S seeds, C conditions. */
#ifndef SD_EVAL_ROBUST_H
#define SD_EVAL_ROBUST_H

#include <stdint.h>

#include "core/status.h"
#include "data/dataset.h"
#include "eval/corrupt.h"
#include "model/model.h"
#include "train/metrics.h"

typedef enum { SD_COND_CLEAN = 0, SD_COND_MISSING = 1, SD_COND_DROP = 2, SD_COND_NOISE = 3, SD_COND_PATTERN = 4 } sd_condition_kind;

/* Input slots as bits (the flow's order: audio, text, video). */
enum { SD_SLOT_AUDIO = 1, SD_SLOT_TEXT = 2, SD_SLOT_VIDEO = 4, SD_SLOTS_ALL = 7 };

typedef struct {
    sd_condition_kind kind;
    unsigned slots; /* sweeps: the slots corrupted; patterns: the slots present; clean: 0 */
    float level;    /* rate or noise level (0 for clean and patterns) */
    int missing;    /* flow: 0 complete (real text), 1 text-missing (simulated text) */
} sd_condition;

/* "clean", "missing", "drop", "noise", "pattern". */
const char *sd_condition_kind_name(sd_condition_kind k);
/* Target of a sweep ("audio", "text", "video", "all") or the present set of a pattern ("a+t+v",
 * "a+v", ...) into buf; "" for clean. */
void sd_condition_target(const sd_condition *c, char *buf, size_t n);
/* "full" or "missing". */
const char *sd_flow_name(int missing);

typedef struct {
    sd_split split;
    const uint64_t *seeds;
    int n_seeds;
    const float *rates;  /* frame missing rates in [0, 1], ascending */
    int n_rates;
    const float *drop;   /* dropped-run rates in [0, 1], ascending */
    int n_drop;
    const float *noise;  /* noise levels >= 0, ascending */
    int n_noise;
    unsigned targets;    /* sweep targets: bit 0 audio, 1 text, 2 video, 3 all three */
    unsigned patterns;   /* bit (P - 1) for the present set P (slot bits, 1..7) */
    int flows;           /* bit 0 complete flow, bit 1 text-missing flow (needs simulated text) */
    int batch_size;
    /* Called after each batch; may be NULL. */
    void (*on_progress)(int64_t done, int64_t total, void *user);
    void *user;
} sd_robust_options;

/* The defaults of `sdumc robustness`: test split, seeds 1,2,3, rates and drop 0:0.9:0.1, noise
 * 0:0.9:0.1, every target and pattern, both flows, batch 64 (arrays are static). */
sd_robust_options sd_robust_default_options(void);

typedef struct {
    const char *name;
    const sd_model *const *per_seed; /* [n_seeds]: the model of each seed (may repeat one model) */
    const char *const *files;        /* [n_seeds]: their files (for the outputs) */
} sd_robust_model;

typedef struct {
    int n_models, n_seeds, n_conditions;
    char **model_names;        /* [n_models] */
    char **files;              /* [n_models * n_seeds] */
    uint64_t *seeds;           /* [n_seeds] */
    sd_condition *conditions;  /* [n_conditions] */
    sd_metrics *metrics;       /* [n_models][n_conditions][n_seeds] */
    const char *split;
    int64_t n;                 /* utterances evaluated */
    int has_sim;               /* the text-missing flow was evaluated */
    double seconds;            /* wall time of the evaluation */
} sd_robust_result;

static inline const sd_metrics *sd_robust_at(const sd_robust_result *r, int model, int cond, int seed) {
    return &r->metrics[((size_t)model * (size_t)r->n_conditions + (size_t)cond) * (size_t)r->n_seeds + (size_t)seed];
}

/* The conditions of a plan, in output order (flow, kind, target, level). has_sim = 0 drops the
 * text-missing flow. *out is malloc'ed. */
sd_status sd_robust_plan(const sd_robust_options *o, int has_sim, sd_condition **out, int *n, sd_error *err);

/* Per-dimension population standard deviation of one modality over the real frames of a split
 * (the scale of the noise), scale [D], double accumulation. */
sd_status sd_feature_std(const sd_dataset *ds, sd_split split, int modality, float *scale, sd_error *err);

/* Evaluates every model under every condition. Reads the split once: each batch is corrupted once
 * per (seed, condition) and fed to every model. */
sd_status sd_robust_run(const sd_dataset *ds, const sd_robust_model *models, int n_models,
                        const sd_robust_options *o, sd_robust_result *res, sd_error *err);
void sd_robust_result_free(sd_robust_result *r);

/* Writers, each atomic. results.csv: header model,condition,target,flow,rate,seed and the metric
 * columns of sd_metrics_write_csv_fields; one row per (model, condition, seed). */
sd_status sd_robust_write_csv(const char *path, const sd_robust_result *r, sd_error *err);
/* summary.json: per model, the clean metrics, each sweep's mean over levels and AUILC, each
 * pattern: every metric as {"mean", "sd", "n"} over seeds. */
sd_status sd_robust_write_summary(const char *path, const sd_robust_result *r, sd_error *err);
/* report.html: self-contained (inline SVG and CSS, a few lines of script to pick the metric). */
sd_status sd_robust_write_html(const char *path, const sd_robust_result *r, sd_error *err);

#endif
