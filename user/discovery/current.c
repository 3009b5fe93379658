/*
 * Which task each vCPU runs: the per-CPU area (kernel GS base) holds a pointer to the current task at
 * a fixed offset (current_task, later pcpu_hot.current_task). Found without a version: the offset at
 * which, on every vCPU observed with a GS base, a pointer leads to a task whose active_mm's PGD is the
 * CR3 that vCPU was observed with at that moment. Runs only when offsets are known.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/internal.h"

#define PERCPU_WINDOW (256 << 10)   /* current_task sits in the first 256 KiB of every known kernel */

struct vcpu_obs { uint32_t vcpu; uint64_t cr3, gs; };

/* The task at va, if it is one whose address space is this CR3. */
static bool runs_on(struct disc_ctx *c, uint64_t va, uint64_t cr3, int32_t *pid, char comm[17])
{
	const struct discovery_result *r = c->res;
	int64_t mm_off = offset_usable(&r->task[TF_ACTIVE_MM]) ? r->task[TF_ACTIVE_MM].offset : r->task[TF_MM].offset;
	uint64_t mm, pgd, pa, root = cr3 & X86_CR3_ADDR_MASK;
	uint32_t id;

	if (!dctx_is_kernel_ptr(c, va) || dctx_read(c, va + r->task[TF_COMM].offset, comm, 16))
		return false;
	comm[16] = 0;
	if (!comm_valid(comm) || dctx_read(c, va + r->task[TF_PID].offset, &id, 4) || id >= PID_MAX_LIMIT)
		return false;
	*pid = (int32_t)id;
	if (dctx_read_u64(c, va + mm_off, &mm) || !dctx_is_kernel_ptr(c, mm) ||
	    dctx_read_u64(c, mm + r->mm_pgd.offset, &pgd) || vmem_translate(&c->vm, pgd, &pa))
		return false;
	return pa == root || (!(pa & 0x1fff) && (pa | 0x1000) == root);
}

void find_current_tasks(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	struct vcpu_obs v[VMOT_MAX_VCPUS];
	size_t nv = 0;
	uint8_t page[4096];
	int64_t found = -1;

	r->percpu_current = -1;
	r->nrunning_slots = 0;
	if (!r->task[TF_COMM].found || !r->task[TF_PID].found || !r->mm_pgd.found ||
	    (!offset_usable(&r->task[TF_ACTIVE_MM]) && !offset_usable(&r->task[TF_MM])))
		return;
	/* the latest observation of each vCPU that carries a GS base */
	for (size_t i = c->obs->n; i-- > 0;) {
		const struct observation *o = &c->obs->v[i];
		bool seen = false;
		for (size_t k = 0; k < nv; k++)
			seen |= v[k].vcpu == o->vcpu;
		if (!seen && o->gs_base && o->cr3 && nv < VMOT_MAX_VCPUS)
			v[nv++] = (struct vcpu_obs){ o->vcpu, o->cr3, o->gs_base };
	}
	if (!nv)
		return;
	/* Offsets that fit vCPU 0, then every other vCPU. Several usually do (current_task, the
	 * runqueue's curr, ...); from one snapshot they cannot be told apart, so they vote: the answer
	 * (which task per vCPU) most of them give wins, and the first offset giving it is kept. */
	enum { MAXC = 32 };
	int64_t cand[MAXC];
	uint64_t ans[MAXC][8];
	size_t nc = 0, nvv = nv < 8 ? nv : 8;
	for (int64_t o = 0; o + 8 <= PERCPU_WINDOW && nc < MAXC; o += 8) {
		uint64_t t;
		int32_t pid;
		char comm[17];
		bool ok = true;
		if (!(o & 4095)) {   /* vCPU 0's area a page at a time; an unreadable page holds no pointer */
			int err = dctx_read(c, v[0].gs + (uint64_t)o, page, sizeof(page));
			if (err == -E2BIG)
				return;
			if (err)
				memset(page, 0, sizeof(page));
		}
		memcpy(&t, page + (o & 4095), 8);
		if (!runs_on(c, t, v[0].cr3, &pid, comm))
			continue;
		ans[nc][0] = t;
		for (size_t k = 1; k < nv && ok; k++) {
			ok = !dctx_read_u64(c, v[k].gs + o, &t) && runs_on(c, t, v[k].cr3, &pid, comm);
			if (k < 8)
				ans[nc][k] = t;
		}
		if (ok)
			cand[nc++] = o;
	}
	size_t best = 0, best_votes = 0;
	for (size_t i = 0; i < nc; i++) {
		size_t votes = 0;
		for (size_t j = 0; j < nc; j++)
			votes += !memcmp(ans[i], ans[j], nvv * sizeof(uint64_t));
		if (votes > best_votes) {
			best = i;
			best_votes = votes;
		}
	}
	if (nc && best_votes * 2 > nc) {   /* a clear majority, or no answer */
		found = cand[best];
		p_dbg("current task: %zu per-CPU pointers fit, %zu agree", nc, best_votes);
	}
	if (found < 0)
		return;
	/* The answer (which task each vCPU runs) stands; the offset only when no other slot fits this
	 * snapshot too (several observations over time, as `live` takes, single it out). */
	r->percpu_current = nc == 1 ? found : -1;
	for (size_t i = 0; i < nc && r->nrunning_slots < 4; i++)
		if (!memcmp(ans[i], ans[best], nvv * sizeof(uint64_t)))
			r->running_slots[r->nrunning_slots++] = cand[i];
	for (size_t k = 0; k < nv; k++) {
		struct vcpu_current *cur = &r->current[r->ncurrent];
		if (dctx_read_u64(c, v[k].gs + found, &cur->task) ||
		    !runs_on(c, cur->task, v[k].cr3, &cur->pid, cur->comm))
			continue;
		cur->vcpu = v[k].vcpu;
		r->ncurrent++;
	}
	p_dbg("current task at per-CPU offset %#llx on %u vCPU(s)", (unsigned long long)found, r->ncurrent);
}
