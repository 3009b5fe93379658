/* Open-addressing hash table over caller-typed slots; see oatab.h. */
#include <stdlib.h>
#include <string.h>
#include "common/oatab.h"

static bool taken(const struct oatab_type *ty, const char *slot)
{
	bool t;

	memcpy(&t, slot + ty->used_off, sizeof(t));
	return t;
}

static char *probe(const struct oatab_type *ty, char *tab, size_t cap, const void *key)
{
	size_t i = ty->hash(key) & (cap - 1);

	while (taken(ty, tab + i * ty->size) && !ty->same(tab + i * ty->size, key))
		i = (i + 1) & (cap - 1);
	return tab + i * ty->size;
}

void *oatab_slot(const struct oatab_type *ty, void **tab, size_t *cap, size_t *n, const void *key, bool *fresh)
{
	char *slot;
	bool yes = true;

	*fresh = false;
	if ((*n + 1) * 2 > *cap) {
		size_t ncap = *cap ? *cap * 2 : ty->min_cap;
		char *nt = calloc(ncap, ty->size);

		if (!nt)
			return NULL;
		for (size_t k = 0; k < *cap; k++) {
			const char *old = (const char *)*tab + k * ty->size;
			if (taken(ty, old))
				memcpy(probe(ty, nt, ncap, old), old, ty->size);
		}
		free(*tab);
		*tab = nt;
		*cap = ncap;
	}
	slot = probe(ty, *tab, *cap, key);
	if (taken(ty, slot))
		return slot;
	memcpy(slot, key, ty->size);
	memcpy(slot + ty->used_off, &yes, sizeof(yes));
	(*n)++;
	*fresh = true;
	return slot;
}
