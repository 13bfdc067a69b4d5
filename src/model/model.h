/* The SDUMC network (MODEL.md sections 2-3): configuration, named parameters, initialisation,
 * and model files. The two flows' forward and backward are in flow.h.
 *
 * Dimension letters: D_a, D_t, D_v input feature dims; H the general dim ("hidden", 256 in
 * the paper); C = H/2 the cross dim (128); R = H/4 the RnC dim (64); K = 7 query views. */
#ifndef SD_MODEL_H
#define SD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/modality.h"
#include "core/params.h"
#include "core/status.h"

#define SD_QUERY_VIEWS 7

typedef struct {
    int dim[3];   /* D_a, D_t, D_v */
    int hidden;   /* H; C = H/2, R = H/4 */
    int mia;      /* Modality Imagination Autoencoder in the text-missing flow */
    int mask;     /* 1: padded frames masked (default); 0: the released code's no-mask mode */
    float p_mlp;  /* dropout after every MLP ReLU (0.3) */
    float p_att;  /* dropout inside pooling and cross-attention (0.5) */
    uint64_t seed;
    char preset[16];
} sd_model_config;

sd_model_config sd_model_default_config(int dim_a, int dim_t, int dim_v);

/* sd_model_ptrs (float) and sd_model_ptrs_f64 (double), with their parts. */
#define SD_REAL_DECL "model/model_ptrs_decl.h"
#include "core/real_decl.h"

/* Which tensors a forward/backward touches (for Adam's "no gradient, no update"). */
typedef enum { SD_USE_ALWAYS = 0, SD_USE_MIA = 1, SD_USE_NEVER = 2 } sd_param_use;

typedef struct {
    sd_model_config cfg;
    sd_param_table table;
    unsigned char *use; /* [table.count] sd_param_use of each tensor */
    float *params;      /* [table.total] */
    sd_model_ptrs p;    /* views into params */
    /* Inference layout (sd_model_prepare_inference), NULL until then: the frame projection
     * weights transposed, frame_wt[m] [D_m, H] = frame_dim_reshape_m.weight^T. */
    float *frame_wt[3];
    int mia_source; /* where cfg.mia came from: sd_mia_source */
    /* A model loaded in place from a mapped file (sd_model_load_opts.use_mmap): params points into
     * this private mapping, unmapped by sd_model_free. NULL otherwise. */
    void *mapping;
    size_t mapping_size;
} sd_model;

/* A model's parameters in double precision, for the finite-difference check of the flows (the
 * flows and the layers are also built in double, see core/real.h): the configuration and table of
 * a float model, params [table.total] and views into them (sd_model_bind_f64). Only the flows use
 * it; frame_wt stays NULL (evaluation's inference layout is not needed). */
typedef struct {
    sd_model_config cfg;
    sd_param_table table;
    double *params;
    sd_model_ptrs_f64 p;
    double *frame_wt[3];
} sd_model_f64;

/* Where a loaded model's MIA setting came from. */
typedef enum {
    SD_MIA_FROM_METADATA = 0, /* the file's sdumc metadata (or the model was built here) */
    SD_MIA_FROM_DEFAULT = 1,  /* no sdumc metadata (a converted checkpoint): off, as the released code ran */
    SD_MIA_FROM_OVERRIDE = 2  /* the loader's options (--mia on|off, sdumc_model_params.mia) */
} sd_mia_source;

/* How sd_model_load_with loads a file. */
typedef struct {
    int mia;      /* -1: the file's setting (off for a file without sdumc metadata); 0: off; 1: on */
    int use_mmap; /* 1: map the file; a file of F32 tensors in sdumc's order (every file sdumc writes)
                     is then used in place, its pages shared with other processes and read on first
                     use. The file must not be changed in place meanwhile (sdumc replaces by rename) */
} sd_model_load_opts;

sd_model_load_opts sd_model_default_load_opts(void);

/* Builds the table and a zeroed parameter buffer for cfg, without initialising values. */
sd_status sd_model_alloc(const sd_model_config *cfg, sd_model **out, sd_error *err);
/* Builds the table for cfg and initialises the parameters from cfg->seed (MODEL.md section 4). */
sd_status sd_model_create(const sd_model_config *cfg, sd_model **out, sd_error *err);
void sd_model_free(sd_model *m);
/* Views into any buffer laid out like m->params (e.g. gradients). */
void sd_model_bind(const sd_model *m, float *buffer, sd_model_ptrs *out);
void sd_model_bind_f64(const sd_model_f64 *m, double *buffer, sd_model_ptrs_f64 *out);
/* Parameters the network uses with the model's MIA setting (used = 1), or all registered. */
size_t sd_model_param_count(const sd_model *m, int used_only);
/* 1 when tensor i receives gradients under this configuration. */
int sd_model_tensor_used(const sd_model *m, int i);
/* For a model that will only predict from now on (the API, eval, predict): keeps the frame
 * projection weights also transposed ([in, out]), which evaluation then multiplies with. For a
 * few frames (one utterance) that product is much faster this way round: OpenBLAS packs an
 * [in, out] operand far more cheaply. The copies are NOT updated when params change: call it
 * again after changing them (training never uses them). */
sd_status sd_model_prepare_inference(sd_model *m, sd_error *err);
/* (Re)initialises every tensor from seed, as a fresh PyTorch module would be. */
void sd_model_init_params(sd_model *m, uint64_t seed);

/* The configuration as safetensors __metadata__ (keys listed in model_io.c), both ways. */
struct sd_st_writer;
struct sd_safetensors;
sd_status sd_model_write_config(struct sd_st_writer *w, const sd_model_config *c, sd_error *err);
sd_status sd_model_read_config(const struct sd_safetensors *st, const char *path, sd_model_config *c,
                               sd_error *err);
/* A lower bound on the parameters every network of configuration c uses (the frame projections
 * H x D_m and the pooling projections H x H): loaders compare it with the values a file holds
 * before allocating, so a small file cannot make them allocate and initialise gigabytes. */
uint64_t sd_model_min_params(const sd_model_config *c);

/* Model files: safetensors with the reference names and the configuration in __metadata__. */
sd_status sd_model_save(const sd_model *m, const char *path, sd_error *err);
/* The same with other parameter values in m's layout (params; NULL: m->params) and, when extra is
 * not NULL, more metadata written by extra(writer, ctx) (model/norm.h writes its statistics). */
typedef sd_status (*sd_model_meta_fn)(struct sd_st_writer *w, const void *ctx, sd_error *err);
sd_status sd_model_save_with(const sd_model *m, const float *params, sd_model_meta_fn extra, const void *ctx,
                             const char *path, sd_error *err);
/* sd_model_load_with and the default options. */
sd_status sd_model_load(const char *path, sd_model **out, sd_error *err);
/* Loads a model file. MIA: a file with sdumc metadata keeps its setting, a file without it (a
 * converted reference checkpoint: the module registers the MIA tensors even when its code never
 * calls them) runs with MIA off, unless opts->mia says otherwise; MIA on for a file that lacks the
 * MIA tensors is an error naming them. m->mia_source records which applied. */
sd_status sd_model_load_with(const char *path, const sd_model_load_opts *opts, sd_model **out, sd_error *err);
/* The same from a whole model file held in memory (buf [size], needed only during the call);
 * messages name it "model in memory (N bytes)". */
sd_status sd_model_load_memory(const void *buf, size_t size, const sd_model_load_opts *opts, sd_model **out,
                               sd_error *err);

#endif
