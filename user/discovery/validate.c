/*
 * Validation through observed switches: every observed CR3 root should be the PGD of exactly one mm
 * reachable from the task list (or the kernel's own, for a CPU between processes). A root two mms
 * claim is a contradiction; one nobody claims may be a process that exited since it was observed.
 */
#include <stdio.h>
#include <stdlib.h>
#include "discovery/internal.h"

/* Share of distinct observed roots that must be explained for "validated". */
#define MIN_EXPLAINED 0.9

bool pgd_user_half_empty(struct physmem *pm, uint64_t root)
{
	uint64_t pgd[256];

	if (physmem_read(pm, root, pgd, sizeof(pgd)))
		return false;
	for (int i = 0; i < 256; i++)
		if (pgd[i] & 1)
			return false;
	return true;
}

void validate_observations(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	int64_t mm_off = offset_usable(&r->task[TF_MM]) ? r->task[TF_MM].offset : -1;
	int64_t amm_off = offset_usable(&r->task[TF_ACTIVE_MM]) ? r->task[TF_ACTIVE_MM].offset : -1;
	size_t ntasks = c->nleaders + c->nthreads, npgd = 0;
	uint64_t *pgds = calloc(2 * ntasks + 1, sizeof(*pgds));
	uint8_t *explained = calloc(c->nroots + 1, 1);
	bool contradiction = false;

	if (!pgds || !explained || !r->mm_pgd.found || mm_off < 0)
		goto out;
	/* PGDs of every mm reachable from a task (mm, and active_mm for running kernel threads) */
	for (size_t i = 0; i < ntasks; i++) {
		uint64_t t = i < c->nleaders ? c->leaders[i] : c->threads[i - c->nleaders];
		int64_t offs[2] = { mm_off, amm_off };
		for (int k = 0; k < 2; k++) {
			uint64_t mm, pgd, pa;
			bool dup = false;
			if (offs[k] < 0 || dctx_read_u64(c, t + offs[k], &mm) || !mm ||
			    dctx_read_u64(c, mm + r->mm_pgd.offset, &pgd) || vmem_translate(&c->vm, pgd, &pa))
				continue;
			for (size_t j = 0; j < npgd && !dup; j++)
				dup = pgds[j] == pa;
			if (!dup)
				pgds[npgd++] = pa;
		}
	}
	for (size_t i = 0; i < c->nroots; i++) {
		/* an exact match first; the PTI user half (PGD | 4 KiB) only when no PGD sits there itself */
		int owners = 0;
		for (size_t j = 0; j < npgd; j++)
			owners += pgds[j] == c->roots[i];
		for (size_t j = 0; j < npgd && !owners; j++)
			owners += pgd_matches_root(pgds[j], c->roots[i]);
		if (owners > 1)
			contradiction = true;
		explained[i] = owners == 1 || (!owners && pgd_user_half_empty(c->pm, c->roots[i] & ~0x1fffULL));
		r->roots_explained += explained[i];
		if (!owners && !explained[i] && r->nunexplained++ < 8)
			r->unexplained[r->nunexplained - 1] = c->roots[i];
	}
	/* switches: a change of root on one vCPU (its first observation counts as one) */
	for (size_t i = 0; i < c->obs->n; i++) {
		const struct observation *o = &c->obs->v[i];
		uint64_t root = x86_cr3_root(o->cr3) | (o->cr3 & 0x1000);
		bool first = true, changed = true;
		for (size_t j = i; j-- > 0;) {
			if (c->obs->v[j].vcpu != o->vcpu)
				continue;
			first = false;
			changed = (x86_cr3_root(c->obs->v[j].cr3) | (c->obs->v[j].cr3 & 0x1000)) != root;
			break;
		}
		if (!first && !changed)
			continue;
		r->switches_observed++;
		for (size_t k = 0; k < c->nroots; k++)
			if (c->roots[k] == (o->cr3 & X86_CR3_ADDR_MASK) && explained[k])
				r->switches_explained++;
	}
out:
	r->roots_observed = (uint32_t)c->nroots;
	bool all_found = r->mm_pgd.found;
	for (int f = 0; f < TF_NR; f++)
		all_found &= offset_usable(&r->task[f]);   /* a tied pair reads the right values either way */
	r->validated = all_found && !contradiction && r->roots_explained &&
		       r->roots_explained >= MIN_EXPLAINED * r->roots_observed;
	if (!r->validated && !r->reason[0]) {
		if (contradiction)
			snprintf(r->reason, sizeof(r->reason), "an observed CR3 belongs to two mm_structs");
		else if (!all_found)
			snprintf(r->reason, sizeof(r->reason), "some offsets are undetermined");
		else
			snprintf(r->reason, sizeof(r->reason), "only %u of %u observed CR3 roots belong to an mm on the task list",
				 r->roots_explained, r->roots_observed);
	}
	free(pgds);
	free(explained);
}
