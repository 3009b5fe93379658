/* Observation sets: a growable array of (vCPU, CR3, GS base) samples; see observe.h. */
#include <errno.h>
#include <stdlib.h>
#include "arch/x86_64.h"
#include "mem/observe.h"

int obs_add(struct obs_set *s, const struct observation *o)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct observation *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = *o;
	s->v[s->n++].cr3 &= ~X86_CR3_EXACT;   /* a MOV to CR3's no-flush bit is not part of CR3 */
	return 0;
}

void obs_free(struct obs_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* Roots (CR3 & X86_CR3_ADDR_MASK: PCID and bit 63 dropped, the PTI bit kept, so a PTI process gives two)
 * in order of first appearance; a CR3 of 0 (a sample that carried only a GS base) is no root. */
size_t obs_distinct_roots(const struct obs_set *s, uint64_t *roots, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n && n < max; i++) {
		uint64_t root = s->v[i].cr3 & X86_CR3_ADDR_MASK;
		size_t j;

		if (!root)
			continue;
		for (j = 0; j < n && roots[j] != root; j++)
			;
		if (j == n)
			roots[n++] = root;
	}
	return n;
}

/* Observations are taken in the order they were added (time order per source). */
size_t obs_switches(const struct obs_set *s)
{
	struct vcpu_last { uint32_t vcpu; uint64_t root; } *last = NULL;
	size_t nlast = 0, switches = 0;

	if (!s->n)
		return 0;
	last = calloc(s->n, sizeof(*last));   /* at most one entry per observation */
	if (!last)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		uint64_t root = s->v[i].cr3 & X86_CR3_ADDR_MASK;
		size_t j;

		if (!root)
			continue;
		for (j = 0; j < nlast && last[j].vcpu != s->v[i].vcpu; j++)
			;
		if (j == nlast) {
			last[nlast].vcpu = s->v[i].vcpu;
			last[nlast++].root = root;
			switches++;   /* a vCPU's first root counts as one switch */
		} else if (last[j].root != root) {
			last[j].root = root;
			switches++;
		}
	}
	free(last);
	return switches;
}

size_t obs_count_vcpus(const struct obs_set *s)
{
	uint64_t seen[4096 / 64] = { 0 };   /* ids below 4096 (QEMU's limit), each counted once */
	size_t n = 0, other = 0;

	for (size_t i = 0; i < s->n; i++) {
		uint32_t id = s->v[i].vcpu;

		if (id >= 4096) {
			other++;
			continue;
		}
		if (!(seen[id / 64] & (1ULL << (id % 64)))) {
			seen[id / 64] |= 1ULL << (id % 64);
			n++;
		}
	}
	return n + (other ? 1 : 0);
}
