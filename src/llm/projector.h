/* The SLAM-LLM speech projector (MODEL.md section 6): WavLM frames -> LLM input embeddings.
 *
 * Legend: T input frames, Df feature dim (1024 for WavLM-large), k frames per output (5),
 *         Dh hidden dim (2048), Do output dim (the LLM's n_embd, 4096 for Vicuna-7B).
 *
 *   drop the last T mod k frames; row r of X [T/k, k Df] is frames kr .. kr+k-1 laid end to end;
 *   Y = relu(X W1^T + b1) W2^T + b2      W1 [Dh, k Df], W2 [Do, Dh]
 *
 * Tensors are found by suffix in a safetensors file: "linear1.weight", "linear1.bias",
 * "linear2.weight", "linear2.bias", with any prefix (SLAM-LLM saves "encoder_projector.").
 * F32, F16 and BF16 are read. */
#ifndef SD_LLM_PROJECTOR_H
#define SD_LLM_PROJECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define SD_PROJECTOR_K 5

typedef struct sd_projector sd_projector;

/* k: frames concatenated per output (SD_PROJECTOR_K); linear1's input dim must be a multiple of k. */
sd_status sd_projector_load(const char *path, int k, sd_projector **out, sd_error *err);
void sd_projector_free(sd_projector *p);

int64_t sd_projector_feat_dim(const sd_projector *p); /* Df = linear1 in / k */
int64_t sd_projector_out_dim(const sd_projector *p);  /* Do */
int sd_projector_k(const sd_projector *p);

/* feats [T, Df] -> *out [T/k, Do] (sd_alloc'ed, free with sd_free), *n_out = T/k.
 * SD_E_SHAPE when Df differs from the projector's or T < k (no output frame). */
sd_status sd_projector_forward(const sd_projector *p, const float *feats, size_t T, size_t Df,
                               float **out, size_t *n_out, sd_error *err);

#endif
