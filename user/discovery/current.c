/*
 * Which task each vCPU runs: the per-CPU area (kernel GS base) holds a pointer to the current task at
 * a fixed offset (current_task, later pcpu_hot.current_task). Found without a version: the offset at
 * which, on every vCPU observed with a GS base, a pointer leads to a task whose active_mm's PGD is the
 * CR3 that vCPU was observed with at that moment. Runs only when offsets are known.
 * Memory is read after the observations: on a busy guest every vCPU may have switched since its latest one.
 * Then no slot fits that moment, and a second pass accepts a task whose CR3 is any of the vCPU's recent
 * ones (the vote below still has to agree on one answer).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/log.h"
#include "discovery/internal.h"

#define PERCPU_WINDOW (256 << 10)   /* current_task sits in the first 256 KiB of every known kernel */
#define PERCPU_BEFORE (16 << 10)    /* 32-bit: the base is gdt_page's per-CPU copy, variables may precede it */

#define RECENT_CR3 8                  /* per vCPU, for the second pass */

struct vcpu_obs { uint32_t vcpu, ncr3; uint64_t cr3[RECENT_CR3], gs; };   /* cr3[0]: the latest */

/* The offsets that may hold a running task's mm: active_mm (or mm), or both members of a tied mm/active_mm
 * pair (a kernel thread running now has only one of the two set, either may be it). Returns how many. */
static int mm_offsets(const struct discovery_result *r, int64_t off[2])
{
	for (uint32_t k = 0; k < r->npairs; k++)
		if (r->pairs[k].fields[0] == TF_MM) {
			off[0] = r->pairs[k].offsets[0];
			off[1] = r->pairs[k].offsets[1];
			return 2;
		}
	off[0] = offset_usable(&r->task[TF_ACTIVE_MM]) ? r->task[TF_ACTIVE_MM].offset : r->task[TF_MM].offset;
	return 1;
}

/* va reads like a task: a kernel pointer to a valid comm and a pid in range. */
static bool task_ids(struct disc_ctx *c, uint64_t va, int32_t *pid, char comm[17])
{
	const struct discovery_result *r = c->res;
	uint32_t id;

	if (!dctx_is_kernel_ptr(c, va) || dctx_read(c, va + r->task[TF_COMM].offset, comm, 16))
		return false;
	comm[16] = 0;
	if (!comm_valid(comm) || dctx_read(c, va + r->task[TF_PID].offset, &id, 4) || id >= PID_MAX_LIMIT)
		return false;
	*pid = (int32_t)id;
	return true;
}

/* The task at va, if it is one whose address space is the vCPU's latest CR3, or (recent) any of its recent
 * ones. */
static bool runs_on(struct disc_ctx *c, uint64_t va, const struct vcpu_obs *v, bool recent, int32_t *pid,
		    char comm[17])
{
	const struct discovery_result *r = c->res;
	int64_t mm_off[2];
	int nmm;
	uint64_t mm, pgd, pa;

	if (!task_ids(c, va, pid, comm))
		return false;
	nmm = mm_offsets(r, mm_off);   /* only for what reads like a task: most slots are not */
	for (int k = 0; k < nmm; k++) {
		if (dctx_read_ptr(c, va + mm_off[k], &mm) || !dctx_is_kernel_ptr(c, mm) ||
		    dctx_read_ptr(c, mm + r->mm_pgd.offset, &pgd) || vmem_translate(&c->vm, pgd, &pa))
			continue;
		for (uint32_t i = 0; i < (recent ? v->ncr3 : 1); i++) {
			uint64_t root = dctx_root_of(c, v->cr3[i]);
			if (root_matches_pgd(r, pa, root))
				return true;
		}
	}
	/* arm64: a CPU with no user mm loaded (TTBR0 = the empty reserved_pg_dir) runs a task without an mm */
	if (r->arm64 && offset_usable(&r->task[TF_MM]) && !dctx_read_ptr(c, va + r->task[TF_MM].offset, &mm) && !mm)
		for (uint32_t i = 0; i < (recent ? v->ncr3 : 1); i++)
			if (arm64_table_empty(c->pm, dctx_root_of(c, v->cr3[i]), r->va_bits0))
				return true;
	return false;
}

enum { MAXC = 32, FIT_READS = 4, FIT_GAP_NS = 20000000 };

struct slot_fit {
	size_t nc;
	int64_t cand[MAXC];
	uint64_t ans[MAXC][8];   /* the task each slot names on vCPUs 0..7 */
};

/* Offsets of the per-CPU window that name, on every vCPU, a task running on that vCPU's CR3. 0, or -E2BIG
 * (the read budget is spent). */
static int fit_slots(struct disc_ctx *c, const struct vcpu_obs *v, size_t nv, bool recent, struct slot_fit *f)
{
	uint8_t page[4096];
	int64_t first = c->psz == 4 ? -PERCPU_BEFORE : 0, last = PERCPU_WINDOW;

	/* arm64: TPIDR_EL1 is an offset, the variables' link addresses lie where the init section was */
	if (c->res->arm64) {
		first = (int64_t)c->image_gap_lo;
		last = (int64_t)c->image_gap_hi;
	}
	f->nc = 0;
	for (int64_t o = first; o + c->psz <= last && f->nc < MAXC; o += c->psz) {
		uint64_t t;
		int32_t pid;
		char comm[17];
		bool ok = true;
		if (!(o & 4095)) {   /* vCPU 0's area a page at a time; an unreadable page holds no pointer */
			int err = dctx_read(c, v[0].gs + (uint64_t)o, page, sizeof(page));
			if (err == -E2BIG)
				return err;
			if (err)
				memset(page, 0, sizeof(page));
		}
		t = buf_ptr(c, page + (o & 4095));
		if (!runs_on(c, t, &v[0], recent, &pid, comm))
			continue;
		f->ans[f->nc][0] = t;
		for (size_t k = 1; k < nv && ok; k++) {
			ok = !dctx_read_ptr(c, v[k].gs + o, &t) && runs_on(c, t, &v[k], recent, &pid, comm);
			if (k < 8)
				f->ans[f->nc][k] = t;
		}
		if (ok)
			f->cand[f->nc++] = o;
	}
	return 0;
}

/* arm64 keeps `current` in SP_EL0 while a CPU runs in the kernel: a vCPU read at EL1 names its task directly
 * (checked to read like a task: a kernel pointer to a valid comm and pid). */
static void current_from_sp_el0(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;

	for (size_t i = 0; i < c->pm->nvcpus && r->ncurrent < VMOT_MAX_VCPUS; i++) {
		const struct vcpu_state *v = &c->pm->vcpus[i];
		struct vcpu_current *cur = &r->current[r->ncurrent];

		if (!v->valid || !v->aarch64 || !v->el1 || !task_ids(c, v->sp_el0, &cur->pid, cur->comm))
			continue;
		cur->vcpu = v->id;
		cur->task = v->sp_el0;
		r->ncurrent++;
	}
	p_dbg("current task from SP_EL0 on %u vCPU(s) at EL1", r->ncurrent);
}

static void current_from_percpu(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	struct vcpu_obs v[VMOT_MAX_VCPUS];
	struct slot_fit f;
	size_t nv = 0;
	int64_t found = -1;   /* an arm64 slot is a link address, negative as int64: `have` says found */
	bool have = false;

	r->percpu_current = -1;
	r->nrunning_slots = 0;
	if (!r->task[TF_COMM].found || !r->task[TF_PID].found || !r->mm_pgd.found ||
	    (!offset_usable(&r->task[TF_ACTIVE_MM]) && !offset_usable(&r->task[TF_MM])))
		return;
	if (r->arm64 && (!c->image_gap_lo || c->image_gap_hi - c->image_gap_lo > (64 << 20)))
		return;   /* the per-CPU variables' link addresses are not known */
	/* each vCPU that carries a GS base, with its latest CR3s (newest first) */
	for (size_t i = c->obs->n; i-- > 0;) {
		const struct observation *o = &c->obs->v[i];
		size_t k = 0;

		if (!o->gs_base || !o->cr3)
			continue;
		while (k < nv && v[k].vcpu != o->vcpu)
			k++;
		if (k == nv) {
			uint64_t base = r->paging32 ? percpu_base_vm(&c->vm, r, o->gs_base) : o->gs_base;

			if (!base)
				p_dbg("current task: vCPU %u's per-CPU hint %#llx does not resolve", o->vcpu,
				      (unsigned long long)o->gs_base);
			if (nv == VMOT_MAX_VCPUS || !base)
				continue;
			v[nv++] = (struct vcpu_obs){ .vcpu = o->vcpu, .gs = base };
		}
		bool dup = false;
		for (uint32_t j = 0; j < v[k].ncr3 && !dup; j++)
			dup = v[k].cr3[j] == o->cr3;
		if (!dup && v[k].ncr3 < RECENT_CR3)
			v[k].cr3[v[k].ncr3++] = o->cr3;
	}
	if (!nv) {
		p_dbg("current task: no vCPU observed with a usable per-CPU base");
		return;
	}
	/* Offsets that fit vCPU 0, then every other vCPU. Several usually do (current_task, the
	 * runqueue's curr, ...); from one snapshot they cannot be told apart, so they vote: the answer
	 * (which task per vCPU) most of them give wins, and the first offset giving it is kept. */
	size_t nvv = nv < 8 ? nv : 8;
	bool recent = false;
	size_t best = 0, best_votes = 0;

	f.nc = 0;
	/* The slots are read one after the other while the guest runs: a vCPU that switched in between makes
	 * them disagree (the runqueue's curr is set before __entry_task). Read again, up to FIT_READS times. */
	bool running = !strcmp(c->pm->ops->kind, "qemu");   /* a core or an image reads the same every time */

	for (int read = 0; read < (running ? FIT_READS : 1) && !(f.nc && best_votes * 2 > f.nc); read++) {
		if (read)   /* the live guest moves on meanwhile */
			nanosleep(&(struct timespec){ 0, FIT_GAP_NS }, NULL);
		recent = false;
		if (fit_slots(c, v, nv, false, &f))
			return;
		if (!f.nc) {
			recent = true;
			if (fit_slots(c, v, nv, true, &f))
				return;
			p_dbg("current task: no slot fits the latest CR3s (the vCPUs moved on); %zu fit recent ones", f.nc);
		}
		best = best_votes = 0;
		for (size_t i = 0; i < f.nc; i++) {
			size_t votes = 0;
			for (size_t j = 0; j < f.nc; j++)
				votes += !memcmp(f.ans[i], f.ans[j], nvv * sizeof(uint64_t));
			if (votes > best_votes) {
				best = i;
				best_votes = votes;
			}
		}
	}
	if (f.nc && best_votes * 2 > f.nc) {   /* a clear majority, or no answer */
		found = f.cand[best];
		have = true;
		p_dbg("current task: %zu per-CPU pointers fit, %zu agree", f.nc, best_votes);
	}
	if (!have) {
		/* No answer, but every slot that fit names running tasks: the pair watch can use them all */
		for (size_t i = 0; i < f.nc && r->nrunning_slots < 4; i++)
			r->running_slots[r->nrunning_slots++] = f.cand[i];
		p_dbg("current task: %zu per-CPU pointers fit, at most %zu agree", f.nc, best_votes);
		return;
	}
	/* The answer (which task each vCPU runs) stands; the offset only when no other slot fits this
	 * snapshot too (several observations over time, as `live` takes, single it out). */
	r->percpu_current = f.nc == 1 ? found : -1;
	for (size_t i = 0; i < f.nc && r->nrunning_slots < 4; i++)
		if (!memcmp(f.ans[i], f.ans[best], nvv * sizeof(uint64_t)))
			r->running_slots[r->nrunning_slots++] = f.cand[i];
	for (size_t k = 0; k < nv; k++) {   /* each vCPU's task as the fit read it (a read now may find it moved on) */
		struct vcpu_current *cur = &r->current[r->ncurrent];

		cur->task = k < 8 ? f.ans[best][k] : 0;
		if (k >= 8 && (dctx_read_ptr(c, v[k].gs + found, &cur->task) ||
			       !runs_on(c, cur->task, &v[k], recent, &cur->pid, cur->comm)))
			continue;
		/* it ran the vCPU's CR3 when the fit read it: its ids are enough now (it may have exec'd since) */
		if (k < 8 && !task_ids(c, cur->task, &cur->pid, cur->comm))
			continue;
		cur->vcpu = v[k].vcpu;
		r->ncurrent++;
	}
	p_dbg("current task at per-CPU offset %#llx on %u vCPU(s)", (unsigned long long)found, r->ncurrent);
}

void find_current_tasks(struct disc_ctx *c)
{
	current_from_percpu(c);
	/* arm64: a vCPU stopped at EL1 names its task in SP_EL0 when no per-CPU slot answered */
	if (c->res->arm64 && !c->res->ncurrent)
		current_from_sp_el0(c);
}
