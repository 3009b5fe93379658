/* The constraint solver's mm_struct part: mm, active_mm and mm_struct.pgd together, and the thread rings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/solve.h"

/* The kernel root's entries for the kernel half, read once: 256 of 512 (x86-64), from PAGE_OFFSET's index of
 * 1024 (2-level) or of the 4 PDPT entries (PAE). */
struct kernel_half {
	uint64_t e[512];
	unsigned first, n;
};

static int read_kernel_half(struct disc_ctx *c, struct kernel_half *k)
{
	const struct discovery_result *r = c->res;

	memset(k, 0, sizeof(*k));
	if (r->paging32 == 3) {
		uint64_t pdpt[4];

		k->first = (unsigned)(r->page_offset_base >> 30) & 3;
		k->n = 4 - k->first;
		if (physmem_read(c->pm, r->kernel_cr3 & 0xffffffe0ULL, pdpt, sizeof(pdpt)))
			return -EIO;
		for (unsigned i = 0; i < k->n; i++)
			k->e[i] = pdpt[k->first + i];
		return 0;
	}
	if (r->paging32 == 2) {
		uint32_t e32[1024];

		k->first = (unsigned)(r->page_offset_base >> 22) & 1023;
		k->n = 1024 - k->first;
		if (k->n > 512)   /* a 1G/3G split: its last 512 entries suffice */
			k->first = 1024 - (k->n = 512);
		if (physmem_read(c->pm, r->kernel_cr3 & 0xfffff000ULL, e32, sizeof(e32)))
			return -EIO;
		for (unsigned i = 0; i < k->n; i++)
			k->e[i] = e32[k->first + i];
		return 0;
	}
	if (r->arm64)   /* a process's table has no kernel half (TTBR1 maps it): nothing to compare */
		return 0;
	k->first = 256;
	k->n = 256;
	uint64_t pgd[512];
	if (physmem_read(c->pm, r->kernel_cr3 & X86_CR3_ADDR_MASK, pgd, sizeof(pgd)))
		return -EIO;
	memcpy(k->e, pgd + 256, 256 * 8);
	return 0;
}

/* Two PAE kernel PMDs alike: PTI gives every pgd its own copy of the kernel's PMD pages. */
static bool same_pmd(struct disc_ctx *c, uint64_t a, uint64_t b)
{
	uint64_t x[512], y[512];
	int same = 0, present = 0;

	if (c->pm->bytes_read - c->budget_start + 8192 > c->opts.max_bytes ||
	    physmem_read(c->pm, a & 0xffffff000ULL, x, sizeof(x)) || physmem_read(c->pm, b & 0xffffff000ULL, y, sizeof(y)))
		return false;
	for (int i = 0; i < 512; i++) {
		present += y[i] & 1;
		same += (y[i] & 1) && x[i] == y[i];
	}
	return present && same * 4 >= present * 3;
}

/* A PGD: a table whose kernel half repeats the kernel root's (every process PGD copies it). */
static bool looks_like_pgd(struct disc_ctx *c, uint64_t pa, const struct kernel_half *k)
{
	const int levels = c->res->paging32;
	uint64_t pgd[512];
	int same = 0, present = 0;
	size_t len = levels == 3 ? 32 : 4096;

	if (c->res->arm64)
		return c->pm->bytes_read - c->budget_start + 4096 <= c->opts.max_bytes &&
		       arm64_user_root_plausible(c->pm, pa, c->res->va_bits0, c->res->lpa2);
	if ((pa & (levels == 3 ? 0x1f : 0xfff)) || c->pm->bytes_read - c->budget_start + len > c->opts.max_bytes ||
	    physmem_read(c->pm, pa, pgd, len))
		return false;
	for (unsigned i = 0; i < k->n; i++) {
		uint64_t e = levels == 2 ? ((const uint32_t *)pgd)[k->first + i] : pgd[k->first + i];

		present += k->e[i] & 1;
		/* PAE: the CPU sets a PDPT entry's accessed bit; the PMD it names is what counts */
		bool eq = levels == 3 ? !((e ^ k->e[i]) & 0xffffff001ULL) : e == k->e[i];

		same += (k->e[i] & 1) && (eq || (levels == 3 && (e & 1) && same_pmd(c, e, k->e[i])));
	}
	return present && same * 4 >= present * 3;
}

static bool root_observed(const struct disc_ctx *c, uint64_t pa)
{
	for (size_t i = 0; i < c->nroots; i++)
		if (root_matches_pgd(c->res, pa, c->roots[i]))
			return true;
	return false;
}

/* Direct-map VA → PA without a walk when the direct map is known. */
static bool va_to_pa(struct disc_ctx *c, uint64_t va, uint64_t *pa)
{
	return !vmem_translate(&c->vm, va, pa);
}

/*
 * mm, active_mm and mm_struct.pgd together: pointer members that are NULL in init_task's mm, non-NULL
 * for user processes, and whose targets hold, at one common offset, the direct-map address of a PGD —
 * some of which were observed in CR3. mm is NULL for every kernel thread; active_mm is not NULL for a
 * kernel thread that is running (it borrows the last mm).
 */
int solve_mm(struct solve *s)
{
	struct disc_ctx *c = s->c;
	struct discovery_result *r = c->res;
	int64_t *cand = malloc(2 * MAX_CANDS * sizeof(*cand)), *good = cand + MAX_CANDS, pgds[8];
	int support[8];   /* members leading to mm_structs with a PGD at pgds[k] */
	size_t ncand = 0, ngood = 0, npgds = 0;
	struct kernel_half kpgd;
	const unsigned P = c->psz;
	const uint64_t pgd_align = guest_pgd_align(r);
	uint8_t *mmbuf = malloc(MM_WINDOW);

	if (!cand || !mmbuf) {
		free(cand);
		free(mmbuf);
		return -ENOMEM;
	}
	if (read_kernel_half(c, &kpgd)) {
		free(cand);
		free(mmbuf);
		return -EIO;
	}

	for (int64_t o = 0; o + P <= s->win && ncand < MAX_CANDS; o += P) {
		size_t nonzero = 0;
		bool ok = true;
		for (size_t i = 0; i < c->nwin && ok; i++) {
			uint64_t v = win_ptr(c, &c->win[i], o);
			if (!c->win[i].leader)
				continue;
			ok = !v || dctx_is_kernel_ptr(c, v);
			nonzero += v != 0;
		}
		if (ok && nonzero && o != s->tasks && o != s->tasks + P)
			cand[ncand++] = o;
	}

	/* For each candidate, the mm_struct offsets where every non-NULL target holds a PGD and some of
	 * them were observed in CR3: first within MM_FIRST bytes, then (if none) the whole MM_WINDOW. */
	for (int64_t lo = 0, hi = MM_FIRST; !npgds && lo < MM_WINDOW; lo = hi, hi = MM_WINDOW) {
		for (size_t k = 0; k < ncand; k++) {
			/* 16 targets are checked for a PGD at each offset; the rest only for the observed root (on
			 * a busy guest the vCPUs may run nothing but processes listed after the first 16) */
			uint64_t targets[MM_OBS_TARGETS];
			size_t nt = 0, nall = 0;
			for (size_t i = 0; i < c->nwin && nall < MM_OBS_TARGETS; i++) {
				uint64_t v = win_ptr(c, &c->win[i], cand[k]);
				if (c->win[i].leader && v && !in_set(targets, nall, v))
					targets[nall++] = v;
			}
			nt = nall < 16 ? nall : 16;
			/* mm_structs never overlap: the smallest gap between two targets bounds sizeof, so the
			 * next object's pgd is not taken for a second one of ours */
			int64_t end = hi;
			uint64_t sorted[16];
			memcpy(sorted, targets, nt * sizeof(*sorted));
			qsort(sorted, nt, sizeof(*sorted), cmp_u64);   /* distinct: the smallest gap is between neighbours */
			for (size_t a = 1; a < nt; a++)
				if ((int64_t)(sorted[a] - sorted[a - 1]) < end)
					end = (int64_t)(sorted[a] - sorted[a - 1]);
			if (!nt || end <= lo || dctx_read(c, targets[0] + lo, mmbuf, hi - lo))
				continue;
			for (int64_t g = lo; g + P <= end; g += P) {
				uint64_t v, pa = 0;
				int obs = 0;
				bool ok = true;
				v = buf_ptr(c, mmbuf + (g - lo));
				if (!dctx_is_kernel_ptr(c, v) || (v & pgd_align))
					continue;
				for (size_t t = 0; t < nt && ok; t++) {
					if (t && dctx_read_ptr(c, targets[t] + g, &v))
						ok = false;
					else
						ok = !(v & pgd_align) && va_to_pa(c, v, &pa) && looks_like_pgd(c, pa, &kpgd);
					obs += ok && root_observed(c, pa);
				}
				for (size_t t = nt; ok && !obs && t < nall; t++)
					obs += !dctx_read_ptr(c, targets[t] + g, &v) && v && !(v & pgd_align) &&
					       dctx_is_kernel_ptr(c, v) && va_to_pa(c, v, &pa) && root_observed(c, pa);
				/* an arm64 core shows no TTBR0: every target's table must then do without one */
				if (!ok || (!obs && (c->nroots || !r->arm64)))
					continue;
				size_t pk = 0;
				while (pk < npgds && pgds[pk] != g)
					pk++;
				if (pk == npgds && npgds < 8) {
					pgds[npgds] = g;
					support[npgds++] = 0;
				}
				if (pk < npgds)
					support[pk]++;
				if (ngood < MAX_CANDS && (!ngood || good[ngood - 1] != cand[k]))
					good[ngood++] = cand[k];
			}
		}
	}
	free(mmbuf);

	p_dbg("mm: %zu pointer members, %zu lead to PGDs, %zu pgd offsets", ncand, ngood, npgds);
	for (size_t k = 0; k < npgds; k++)
		p_dbg("  mm_struct pgd candidate %lld", (long long)pgds[k]);
	/* mm and active_mm lead to the same mm_structs: an offset only one stray member supports loses */
	if (npgds > 1) {
		size_t best = 0, ties = 0;
		for (size_t k = 1; k < npgds; k++)
			if (support[k] > support[best])
				best = k;
		for (size_t k = 0; k < npgds; k++)
			ties += support[k] == support[best];
		if (ties == 1 && support[best] >= 2) {
			pgds[0] = pgds[best];
			npgds = 1;
		}
	}
	if (npgds != 1) {
		set_undetermined(&r->mm_pgd, npgds ? "two mm_struct offsets hold observed PGDs"
						   : "no mm_struct member holds a PGD that was observed in CR3");
		set_undetermined(&r->task[TF_MM], "no single pointer path to an mm_struct with an observed PGD");
		set_undetermined(&r->task[TF_ACTIVE_MM], "no single pointer path to an mm_struct with an observed PGD");
		{ free(cand); return -ENOENT; }
	}
	int64_t best_pgd = pgds[0];
	s->pgd = best_pgd;
	set_offset(&r->mm_pgd, best_pgd, 1.0, "holds a PGD whose address was observed in CR3");

	/* Keep members whose every non-NULL target has a PGD at best_pgd. */
	int64_t m[64];
	size_t nm = 0;
	for (size_t k = 0; k < ngood; k++) {
		bool ok = true;
		for (size_t i = 0; i < c->nwin && ok; i++) {
			uint64_t v = win_ptr(c, &c->win[i], good[k]), pgd, pa;
			if (!c->win[i].leader || !v)
				continue;
			ok = !dctx_read_ptr(c, v + best_pgd, &pgd) && va_to_pa(c, pgd, &pa) && !(pa & pgd_align);
		}
		if (ok && nm < 64)
			m[nm++] = good[k];
	}
	if (nm == 1) {
		/* Kernels always have both: one alone means the other was missed, so this one may be
		 * anything that points at mm_structs. Walk processes with it, report neither. */
		s->mm = m[0];
		set_undetermined(&r->task[TF_MM], "a single member leads to mm_structs; mm and active_mm come in pairs");
		set_undetermined(&r->task[TF_ACTIVE_MM], "a single member leads to mm_structs; mm and active_mm come in pairs");
		{ free(cand); return -ENOENT; }
	}
	if (nm != 2) {
		set_undetermined(&r->task[TF_MM], nm ? "more than two members point to mm_structs" : "no member points to mm_structs");
		set_undetermined(&r->task[TF_ACTIVE_MM], r->task[TF_MM].how + 14);
		{ free(cand); return -ENOENT; }
	}
	/* mm is NULL wherever active_mm is NULL; a running kernel thread has only active_mm. */
	int a_only = 0, b_only = 0;
	for (size_t i = 0; i < c->nwin; i++) {
		uint64_t a = win_ptr(c, &c->win[i], m[0]), b = win_ptr(c, &c->win[i], m[1]);
		if (!c->win[i].leader)
			continue;
		a_only += a && !b;
		b_only += b && !a;
	}
	if (a_only && b_only) {
		set_undetermined(&r->task[TF_MM], "two mm pointers, each NULL where the other is not");
		set_undetermined(&r->task[TF_ACTIVE_MM], "two mm pointers, each NULL where the other is not");
		{ free(cand); return -ENOENT; }
	}
	if (a_only || b_only) {
		s->mm = a_only ? m[1] : m[0];
		s->active_mm = a_only ? m[0] : m[1];
		set_offset(&r->task[TF_MM], s->mm, 1.0, "NULL for kernel threads, shared by a process's threads");
		set_offset(&r->task[TF_ACTIVE_MM], s->active_mm, 1.0, "set where mm is NULL on a running kernel thread");
		{ free(cand); return 0; }
	}
	struct offset_pair mp = { { "mm", "active_mm" }, { m[0], m[1] }, { TF_MM, TF_ACTIVE_MM } };
	s->mm = m[0];   /* either will do for walking processes */
	if (m[1] == m[0] + P) {
		s->active_mm = m[1];
		set_pair_by_order(s, &mp, "equal to active_mm everywhere; declaration order (mm, active_mm)",
				  "equal to mm everywhere; declaration order (mm, active_mm)");
		{ free(cand); return 0; }
	}
	set_pair(s, &mp, "equal on every task, not adjacent");
	{ free(cand); return 0; }
}

/*
 * Threads are not on the tasks list: they hang off their leader on a ring (thread_group, or
 * thread_node through signal->thread_head) whose other elements are tasks with the leader's mm and a
 * valid comm. Finds the ring member with the most such threads.
 */
void solve_threads(struct solve *s)
{
	struct disc_ctx *c = s->c;
	int64_t best = -1;
	size_t best_n = 0;

	c->thread_ring_off = -1;
	if (s->mm < 0)
		return;
	for (int64_t o = 0; o + 2 * (int64_t)c->psz <= s->win; o += c->psz) {
		size_t threads = 0, bad = 0;
		if (o == s->tasks)
			continue;
		for (size_t i = 1; i < c->nwin && bad == 0; i++) {
			struct task_win *w = &c->win[i];
			uint64_t head = w->base + o, next = win_ptr(c, w, o), mm = win_ptr(c, w, s->mm);
			struct ring r;
			/* a non-empty list_head: next and prev both kernel pointers (prev checked here, from the
			 * window, so pointer members that are not list heads cost no reads) */
			if (!w->leader || !mm || next == head || !dctx_is_kernel_ptr(c, next) ||
			    !dctx_is_kernel_ptr(c, win_ptr(c, w, o + c->psz)))
				continue;
			if (ring_walk(c, head, 4096, &r))
				continue;
			size_t nonthread = 0;
			for (size_t k = 0; k < r.n; k++) {
				uint64_t x = r.el[k] - o, xmm;
				char comm[17];
				if (read_comm(c, x + s->comm, comm) && !dctx_read_ptr(c, x + s->mm, &xmm) && xmm == mm &&
				    !is_task(s, x))
					threads++;
				else
					nonthread++;
			}
			bad += nonthread > 1;   /* at most the signal_struct's head */
			free(r.el);
		}
		if (!bad && threads > best_n) {
			best_n = threads;
			best = o;
		}
	}
	if (best < 0)
		return;
	c->thread_ring_off = best;
	c->res->thread_ring = best;

	/* Collect the threads of every leader (all of them, not just the sample). */
	for (size_t i = 0; i < c->nleaders; i++) {
		uint64_t mm;
		struct ring r;
		if (dctx_read_ptr(c, c->leaders[i] + s->mm, &mm) || !mm)
			continue;
		if (ring_walk(c, c->leaders[i] + best, 4096, &r))
			continue;
		for (size_t k = 0; k < r.n; k++) {
			uint64_t x = r.el[k] - best, xmm;
			char comm[17];
			if (!read_comm(c, x + s->comm, comm) || dctx_read_ptr(c, x + s->mm, &xmm) || xmm != mm ||
			    is_task(s, x))
				continue;
			uint64_t *p = realloc(c->threads, (c->nthreads + 1) * sizeof(*p));
			if (!p)
				break;
			c->threads = p;
			c->threads[c->nthreads++] = x;
		}
		free(r.el);
	}
	rebuild_all(s);
}
