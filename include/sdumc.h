/* sdumc: the public C API, version 1. Multimodal sentiment analysis robust to a missing
 * transcript (SDUMC, arXiv 2410.15029): load a trained model file, score one utterance or a batch,
 * get the fused representation z as an embedding.
 *
 * The one header of the library; C11 and C++ compatible. Link with -lsdumc (pkg-config sdumc).
 * Versions and the ABI policy (soname libsdumc.so.MAJOR): docs/API.md.
 *
 * Conventions
 *   - Every fallible function returns an sdumc_status (SDUMC_OK = 0) and, on failure, writes the
 *     code and a human-readable message into the caller's sdumc_error (err may be NULL when the
 *     caller does not want the message). On success err->code is SDUMC_OK and err->message "".
 *   - The library never prints, never exits, never aborts on bad input: NULL pointers, zero
 *     frames, wrong dims, NaN or Inf are reported as a status. It reads no environment variable.
 *   - Features are float32, row-major (C order): frames x dim, frame after frame. Modalities come
 *     in the order audio, text, video everywhere (this header, the command line, Python): the
 *     order of the network's modality slots (frame_dim_reshape_0/1/2) and of the model's dims.
 *   - Options are structs with defaults (sdumc_*_default_params()) whose first field is their
 *     size, so later versions can add fields without breaking callers built against this one.
 *
 * Threads
 *   - A loaded sdumc_model is immutable: any number of threads may call the predict functions on
 *     one shared model at the same time, with no lock. Free it only after every call has returned.
 *   - Scratch memory: pass ctx = NULL and each call allocates (and frees) its own workspace, or
 *     pass an sdumc_context that the caller owns to reuse the workspace between calls (faster for
 *     small inputs). A context is used by one call at a time: one context per thread.
 *   - A call uses at most n_threads threads: the context's sdumc_context_params.n_threads, or
 *     when that is 0 (or ctx is NULL) the model's sdumc_model_params.n_threads. They are the
 *     library's own (a context keeps n_threads - 1 workers; a call without a context starts and
 *     ends its own), and they sleep while idle instead of spinning, so calls behave on a host
 *     shared with other work. OpenMP and OpenBLAS run single-threaded inside a call. Small
 *     inputs run on the calling thread alone. Results do not depend on the thread count.
 *
 * Flows
 *   - SDUMC_FLOW_COMPLETE: the transcript is available; the text slot takes real text features
 *     [T_t, D_t] (the complete flow of the paper).
 *   - SDUMC_FLOW_TEXT_MISSING: no transcript; the text slot takes the simulated text (features
 *     simulated from the audio, `sdumc simulate-text`) [T_s, D_t]. The Modality Imagination
 *     Autoencoder (MIA) is applied when the model has it on (sdumc_info.mia).
 *   - SDUMC_FLOW_TEXT_MISSING_MIA: the same, but the caller requires MIA: a model without MIA
 *     (trained with --mia off, a converted checkpoint of the released code, SDUMC_MIA_OFF) cannot
 *     do it and the call fails with SDUMC_E_UNSUPPORTED.
 *   A model can run the text-missing flow on simulated text only when that text has the model's
 *   text dim D_t; other dims fail with SDUMC_E_SHAPE (and a message saying so).
 *
 * Results equal `sdumc predict` on the same features (masked models; for a model trained with
 * --mask off the batch tools' results depend on the padding of each batch, this API never pads
 * such a model's inputs) to float rounding. */
#ifndef SDUMC_H
#define SDUMC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header. sdumc_version() gives the library's at run time; a program built
 * against MAJOR runs with any library of the same MAJOR and a MINOR at least as large. */
#define SDUMC_VERSION_MAJOR 1
#define SDUMC_VERSION_MINOR 0
#define SDUMC_VERSION_PATCH 0

/* Status codes. The numbers are part of the ABI and never change. */
typedef enum {
    SDUMC_OK = 0,
    SDUMC_E_ARG = 1,        /* bad argument: NULL pointer, zero frames, unknown flow, small buffer */
    SDUMC_E_NOMEM = 2,      /* out of memory */
    SDUMC_E_IO = 3,         /* a file could not be opened or read */
    SDUMC_E_FORMAT = 4,     /* a malformed model file */
    SDUMC_E_SHAPE = 5,      /* features whose dim differs from the model's; a tensor of the wrong shape */
    SDUMC_E_NUMERIC = 6,    /* NaN or Inf in the input, or an output that is not finite (finite inputs too
                               large for float32 inside the network), or in a model file's weights */
    SDUMC_E_UNSUPPORTED = 7 /* valid, but this model (file) cannot do it */
} sdumc_status;

#define SDUMC_ERROR_MAX 1024

/* Caller-owned error record; the library writes it on every call that takes one. */
typedef struct {
    sdumc_status code;
    char message[SDUMC_ERROR_MAX]; /* NUL-terminated; "" on success */
} sdumc_error;

/* A short static name of a status ("ok", "invalid argument", ...); "unknown error" otherwise. */
const char *sdumc_status_name(sdumc_status code);

/* The library's version, "MAJOR.MINOR.PATCH" (a static string). */
const char *sdumc_version(void);

/* A loaded model (opaque, immutable) and a per-thread scratch context (opaque). */
typedef struct sdumc_model sdumc_model;
typedef struct sdumc_context sdumc_context;

typedef enum {
    SDUMC_FLOW_COMPLETE = 0,        /* real text in the text slot */
    SDUMC_FLOW_TEXT_MISSING = 1,    /* simulated text; MIA when the model has it */
    SDUMC_FLOW_TEXT_MISSING_MIA = 2 /* simulated text; MIA required (SDUMC_E_UNSUPPORTED without) */
} sdumc_flow;

/* MIA (the Modality Imagination Autoencoder of the text-missing flow) when loading a model. */
typedef enum {
    SDUMC_MIA_FROM_FILE = 0, /* the file's sdumc metadata; off for a file without it (a converted
                                checkpoint of the released code, which never calls its MIA) */
    SDUMC_MIA_OFF = 1,       /* off, whatever the file says */
    SDUMC_MIA_ON = 2         /* on, whatever the file says; the file must hold the MIA tensors */
} sdumc_mia;

/* Where a loaded model's MIA setting came from (sdumc_info.mia_source). */
typedef enum {
    SDUMC_MIA_SOURCE_METADATA = 0,    /* the file's sdumc metadata */
    SDUMC_MIA_SOURCE_NO_METADATA = 1, /* no sdumc metadata: off by default (worth telling the user once) */
    SDUMC_MIA_SOURCE_PARAMS = 2       /* sdumc_model_params.mia */
} sdumc_mia_source;

/* What a loaded model holds. Set `size` before the call (in C: sdumc_info info = {.size = sizeof
 * info};): the library fills the fields that fit in `size` bytes. */
typedef struct {
    size_t size;                        /* sizeof(sdumc_info), set by the caller */
    int dim_audio, dim_text, dim_video; /* D_a, D_t, D_v: feature dims the model takes */
    int hidden;                         /* H, the general dim (256 in the paper) */
    int embedding_dim;                  /* C = H/2: floats in the embedding z */
    int mia;                            /* 1: the text-missing flow applies MIA (see mia_source) */
    int mask;                           /* 1: padded frames masked (default); 0: released code's mode */
    char preset[16];                    /* training preset ("paper", "release", "imported", ...) */
    int64_t param_count;                /* parameters the network uses with its MIA setting */
    int64_t param_count_registered;     /* every tensor of the reference module */
    sdumc_mia_source mia_source;        /* where `mia` came from */
    int n_threads;                      /* threads a call may use (sdumc_model_params.n_threads) */
    int mapped;                         /* 1: the parameters are read in place from the mapped file */
} sdumc_info;

/* One modality of one utterance: frames x dim floats, row-major. */
typedef struct {
    const float *data; /* [frames, dim]; borrowed for the duration of the call only */
    int64_t frames;    /* T >= 1 (at most INT32_MAX) */
    int64_t dim;       /* D: must equal the model's dim for this slot */
} sdumc_features;

/* One utterance: the three modalities. text holds the real transcript features for
 * SDUMC_FLOW_COMPLETE and the simulated text for the text-missing flows. */
typedef struct {
    sdumc_features audio;
    sdumc_features text;
    sdumc_features video;
} sdumc_utterance;

/* How to load a model. Get the defaults from sdumc_model_default_params() and change fields. */
typedef struct {
    size_t size;    /* sizeof(sdumc_model_params), set by sdumc_model_default_params */
    int n_threads;  /* threads a call on this model may use, >= 1 (default: the online CPUs, at
                       most 4); a context may set its own */
    sdumc_mia mia;  /* SDUMC_MIA_FROM_FILE (default), SDUMC_MIA_OFF or SDUMC_MIA_ON */
    int use_mmap;   /* 1 (default): map the file; a file of float32 tensors in sdumc's order (every
                       file sdumc writes) is then used in place: loading reads nothing up front and
                       processes share its pages. The file must not be rewritten in place while
                       loaded (sdumc replaces files by rename, which is safe). 0: read a copy. */
} sdumc_model_params;

/* The defaults (see each field). */
sdumc_model_params sdumc_model_default_params(void);

/* Reads a NumPy .npy file of features into out: float16, float32 or float64 (little-endian, C
 * order, format versions 1-3), shape (frames, dim) or (dim,) (one frame), converted to float32.
 * out->data is a new array the caller frees with sdumc_features_free; on failure *out is zeroed
 * and err names the file and what is wrong (missing, another dtype, a truncated file, ...). */
sdumc_status sdumc_features_load_npy(const char *path, sdumc_features *out, sdumc_error *err);

/* Frees what sdumc_features_load_npy allocated and zeroes *f (NULL or a zeroed f is fine). */
void sdumc_features_free(sdumc_features *f);

/* Loads a model file (safetensors written by `sdumc train`, or a converted reference checkpoint).
 * On success *out is a new model (free with sdumc_model_free); on failure *out is NULL and err
 * names the file and what is wrong (missing, truncated, not an SDUMC model, a tensor of the wrong
 * shape, MIA asked for but its tensors absent: SDUMC_E_SHAPE naming them). params NULL means the
 * defaults. A file without sdumc metadata runs with MIA off unless params->mia says otherwise;
 * sdumc_info.mia_source tells which applied. */
sdumc_status sdumc_model_load_with_params(const char *path, const sdumc_model_params *params,
                                          sdumc_model **out, sdumc_error *err);

/* sdumc_model_load_with_params with the defaults. */
sdumc_status sdumc_model_load(const char *path, sdumc_model **out, sdumc_error *err);

/* The same from a whole model file held in memory (data [size] bytes; the library keeps a copy of
 * what it needs, so data may be freed after the call; params->use_mmap does not apply). Messages
 * name the model "model in memory (N bytes)". */
sdumc_status sdumc_model_load_from_memory(const void *data, size_t size, const sdumc_model_params *params,
                                          sdumc_model **out, sdumc_error *err);

/* Frees a model (NULL is fine). No call on it may be running. */
void sdumc_model_free(sdumc_model *model);

/* Describes the model: dims, embedding size, MIA, preset, parameter counts. */
sdumc_status sdumc_model_info(const sdumc_model *model, sdumc_info *info, sdumc_error *err);

/* Options of a scratch context. Get the defaults from sdumc_context_default_params(). */
typedef struct {
    size_t size;   /* sizeof(sdumc_context_params), set by sdumc_context_default_params */
    int n_threads; /* threads a call with this context may use; 0 (default): the model's */
} sdumc_context_params;

sdumc_context_params sdumc_context_default_params(void);

/* A new scratch context (free with sdumc_context_free). It caches the workspace of the last
 * call and may be used with any model, by one thread at a time. params NULL means the defaults. */
sdumc_status sdumc_context_new_with_params(const sdumc_context_params *params, sdumc_context **out,
                                           sdumc_error *err);

/* sdumc_context_new_with_params with the defaults. */
sdumc_status sdumc_context_new(sdumc_context **out, sdumc_error *err);

/* Frees a context and its workspace (NULL is fine). */
void sdumc_context_free(sdumc_context *ctx);

/* The sentiment score of one utterance (a regression output; the labels of CMU-MOSI/MOSEI lie in
 * [-3, 3]) by the chosen flow, in evaluation mode (no dropout). ctx may be NULL. Checked
 * before anything is computed, each failure with its message: model, utt and score non-NULL
 * (SDUMC_E_ARG); a known flow (SDUMC_E_ARG); MIA present for SDUMC_FLOW_TEXT_MISSING_MIA
 * (SDUMC_E_UNSUPPORTED); per modality, data non-NULL and 1 <= frames <= INT32_MAX (SDUMC_E_ARG),
 * dim equal to the model's (SDUMC_E_SHAPE); every value finite (SDUMC_E_NUMERIC, naming the
 * modality, frame and column). An output that is not finite (values so large that the network
 * overflows float32) is SDUMC_E_NUMERIC too. *score is written only on success. */
sdumc_status sdumc_predict(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *utt,
                           sdumc_flow flow, float *score, sdumc_error *err);

/* The fused representation z of one utterance (step 11 of docs/MODEL.md in the sdumc sources:
 * the vector the score is a linear function of) into embedding [embedding_len], which must hold at least
 * sdumc_info.embedding_dim floats (only that many are written). score may be NULL; otherwise it
 * receives the same score as sdumc_predict. Checks as sdumc_predict. */
sdumc_status sdumc_embed(const sdumc_model *model, sdumc_context *ctx, const sdumc_utterance *utt,
                         sdumc_flow flow, float *embedding, size_t embedding_len, float *score,
                         sdumc_error *err);

/* Scores of n utterances (scores [n]) and, when embeddings is not NULL, their embeddings
 * (embeddings [n, embedding_dim], row-major). Masked models run the utterances in padded groups
 * (faster than n single calls); each result equals sdumc_predict on that utterance to float
 * rounding. n = 0 does nothing and succeeds. Every utterance is checked (as sdumc_predict, the
 * message names the utterance's index) before anything is computed; on failure the contents of
 * scores and embeddings are unspecified. */
sdumc_status sdumc_predict_batch(const sdumc_model *model, sdumc_context *ctx,
                                 const sdumc_utterance *utts, size_t n, sdumc_flow flow,
                                 float *scores, float *embeddings, sdumc_error *err);

#ifdef __cplusplus
}
#endif

#endif
