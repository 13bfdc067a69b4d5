/* Growable arrays (array.h): capacity doubling and overflow-checked reallocation. */
#include "array.h"

#include <stdint.h>
#include <stdlib.h>

size_t sd_array_next_cap(size_t cap, size_t need, size_t first) {
    if (need <= cap) return cap;
    size_t c = cap ? cap : (first ? first : 1);
    while (c < need) {
        if (c > SIZE_MAX / 2) return 0;
        c *= 2;
    }
    return c;
}

void *sd_array_resize(void *data, size_t n, size_t elem) {
    if (n == 0) n = 1;
    if (elem && n > SIZE_MAX / elem) return NULL;
    return realloc(data, n * (elem ? elem : 1));
}

void *sd_array_grow(void *data, size_t *cap, size_t need, size_t elem, size_t first) {
    if (need <= *cap && data) return data;
    const size_t c = sd_array_next_cap(*cap, need, first);
    if (!c) return NULL;
    void *grown = sd_array_resize(data, c, elem);
    if (grown) *cap = c;
    return grown;
}
