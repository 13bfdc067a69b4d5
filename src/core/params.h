/* Flat parameter storage with a table of named tensors (the llm.c layout).
 *
 * All parameters live in one contiguous float buffer; each tensor is a named
 * slice [offset, offset + numel). Gradients, Adam m and Adam v are buffers of the
 * same total length indexed by the same offsets, so zeroing gradients is one
 * memset, the optimiser one flat loop and a checkpoint one write. */
#ifndef SD_CORE_PARAMS_H
#define SD_CORE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SD_PARAM_NAME_MAX 128
#define SD_PARAM_MAX_DIMS 4

typedef struct {
    char name[SD_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[SD_PARAM_MAX_DIMS];
    size_t numel;
    size_t offset; /* in floats, into the flat buffers */
} sd_tensor_spec;

typedef struct {
    sd_tensor_spec *specs;
    int count;
    int capacity;
    size_t total; /* floats over all tensors */
} sd_param_table;

void sd_params_init(sd_param_table *t);
void sd_params_release(sd_param_table *t);
/* Appends a tensor; returns its index, or -1 on allocation failure / bad shape. */
int sd_params_add(sd_param_table *t, const char *name, int ndim, const int64_t *shape);
/* Index of a tensor by exact name, or -1. */
int sd_params_find(const sd_param_table *t, const char *name);
/* Allocates a zeroed, aligned float buffer of t->total elements (NULL on failure). */
float *sd_params_alloc_buffer(const sd_param_table *t);
/* "[256, 1024]" style text of a shape, into buf. */
const char *sd_shape_str(char *buf, size_t size, int ndim, const int64_t *shape);

#endif
