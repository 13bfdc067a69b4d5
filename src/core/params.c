/* The table of named tensors over one flat parameter buffer: adding, finding, allocating,
 * shape strings. */
#include "params.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "array.h"

void sd_params_init(sd_param_table *t) { memset(t, 0, sizeof *t); }

void sd_params_release(sd_param_table *t) {
    free(t->specs);
    memset(t, 0, sizeof *t);
}

int sd_params_add(sd_param_table *t, const char *name, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > SD_PARAM_MAX_DIMS || strlen(name) >= SD_PARAM_NAME_MAX) return -1;
    if (t->count == t->capacity) {
        size_t cap = (size_t)t->capacity;
        sd_tensor_spec *s = sd_array_grow(t->specs, &cap, (size_t)t->count + 1, sizeof *s, 64);
        if (!s || cap > INT_MAX) return -1;
        t->specs = s;
        t->capacity = (int)cap;
    }
    sd_tensor_spec *s = &t->specs[t->count];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !sd_mul_size(numel, (size_t)shape[i], &numel)) return -1;
        s->shape[i] = shape[i];
    }
    s->numel = numel;
    s->offset = t->total;
    if (!sd_add_size(t->total, numel, &t->total)) return -1;
    return t->count++;
}

int sd_params_find(const sd_param_table *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->specs[i].name, name) == 0) return i;
    return -1;
}

float *sd_params_alloc_buffer(const sd_param_table *t) {
    return sd_calloc(t->total ? t->total : 1, sizeof(float));
}

const char *sd_shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}
