/* Growable arrays: the capacity doubling and the overflow-checked realloc that every appender
 * (tables, stacks, lists of names) needs, written once. */
#ifndef SD_CORE_ARRAY_H
#define SD_CORE_ARRAY_H

#include <stddef.h>

/* The capacity to hold `need` elements: cap when it already does, else cap (or `first` when cap
 * is 0) doubled until it does. 0 when that overflows. */
size_t sd_array_next_cap(size_t cap, size_t need, size_t first);
/* realloc(data, n * elem), NULL on overflow or failure (data then untouched). n == 0 keeps one
 * element, so NULL always means failure. */
void *sd_array_resize(void *data, size_t n, size_t elem);
/* Makes room for `need` elements of `elem` bytes: returns the (possibly moved) array and updates
 * *cap, or returns NULL (data and *cap untouched) when the size overflows or memory runs out.
 * Usage: T *v = sd_array_grow(a->v, &a->cap, a->n + 1, sizeof *v, 16); if (!v) fail; a->v = v; */
void *sd_array_grow(void *data, size_t *cap, size_t need, size_t elem, size_t first);

#endif
