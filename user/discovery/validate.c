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

/* 32-bit: no user-half entry (2-level), or no present PMD entry below PAGE_OFFSET (PAE: the user PDPT
 * entries are always present, their PMDs empty for the kernel's own tables). */
static bool pgd_user_half_empty32(struct physmem *pm, uint64_t root, int levels, uint64_t page_offset)
{
	if (levels == 2) {
		uint32_t pgd[1024];
		unsigned n = (unsigned)(page_offset >> 22);

		if (n > 1024 || physmem_read(pm, root & 0xfffff000ULL, pgd, n * 4))
			return false;
		for (unsigned i = 0; i < n; i++)
			if (pgd[i] & 1)
				return false;
		return true;
	}
	uint64_t pdpt[4], pmd[512];
	unsigned n = (unsigned)(page_offset >> 30);

	if (physmem_read(pm, root & 0xffffffe0ULL, pdpt, sizeof(pdpt)))
		return false;
	for (unsigned i = 0; i < n && i < 4; i++) {
		if (!(pdpt[i] & 1))
			continue;
		if (physmem_read(pm, pdpt[i] & 0xffffff000ULL, pmd, sizeof(pmd)))
			return false;
		for (int k = 0; k < 512; k++)
			if (pmd[k] & 1)
				return false;
	}
	return true;
}

/* The kernel's own tables, loaded between processes: nothing mapped in the user half. */
static bool root_user_half_empty(struct disc_ctx *c, uint64_t root)
{
	if (c->res->paging32)
		return pgd_user_half_empty32(c->pm, root, c->res->paging32, c->res->page_offset_base);
	if (c->res->arm64)   /* reserved_pg_dir: an empty TTBR0 table (idle, kernel threads) */
		return arm64_table_empty(c->pm, root, c->res->va_bits0);
	return pgd_user_half_empty(c->pm, root & ~0x1fffULL);
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
			if (offs[k] < 0 || dctx_read_ptr(c, t + offs[k], &mm) || !mm ||
			    dctx_read_ptr(c, mm + r->mm_pgd.offset, &pgd) || vmem_translate(&c->vm, pgd, &pa))
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
			owners += root_matches_pgd(r, pgds[j], c->roots[i]);
		if (owners > 1)
			contradiction = true;
		explained[i] = owners == 1 || (!owners && root_user_half_empty(c, c->roots[i]));
		r->roots_explained += explained[i];
		if (!owners && !explained[i] && r->nunexplained++ < 8)
			r->unexplained[r->nunexplained - 1] = c->roots[i];
	}
	/* switches: a change of root on one vCPU (its first observation counts as one) */
	for (size_t i = 0; i < c->obs->n; i++) {
		const struct observation *o = &c->obs->v[i];
		uint64_t root = dctx_root_of(c, o->cr3);
		bool first = true, changed = true;
		for (size_t j = i; j-- > 0;) {
			if (c->obs->v[j].vcpu != o->vcpu)
				continue;
			first = false;
			changed = dctx_root_of(c, c->obs->v[j].cr3) != root;
			break;
		}
		if (!first && !changed)
			continue;
		r->switches_observed++;
		for (size_t k = 0; k < c->nroots; k++)
			if (c->roots[k] == root && explained[k])
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
		else if (!r->roots_observed && r->arm64)
			snprintf(r->reason, sizeof(r->reason), "no TTBR0 was observed to validate them (an arm64 ELF "
				 "core holds no system registers; the kernel's root was found in its memory)");
		else
			snprintf(r->reason, sizeof(r->reason), "only %u of %u observed CR3 roots belong to an mm on the task list",
				 r->roots_explained, r->roots_observed);
	}
	free(pgds);
	free(explained);
}
