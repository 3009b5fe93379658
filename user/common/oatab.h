/* A small open-addressing hash table (linear probing) over the caller's own slot type: the caller keeps the
 * array, its capacity (a power of two) and count, and a bool member that marks a slot taken. */
#ifndef VMOT_OATAB_H
#define VMOT_OATAB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oatab_type {
	size_t size;       /* sizeof the slot type */
	size_t used_off;   /* offsetof its bool "taken" member */
	size_t min_cap;    /* first capacity (a power of two) */
	uint64_t (*hash)(const void *slot);
	bool (*same)(const void *a, const void *b);   /* same key */
};

/* The slot whose key equals key's, or a free one taken for it (a copy of key, marked taken; *fresh true).
 * Grows *tab past half full. NULL when out of memory. */
void *oatab_slot(const struct oatab_type *ty, void **tab, size_t *cap, size_t *n, const void *key, bool *fresh);

#endif
