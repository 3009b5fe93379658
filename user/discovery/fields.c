/*
 * The constraint solver: from one "swapper/0" comm in the kernel's data, find init_task and every
 * task_struct member the outputs need. Each member is found by a property it has on its own — never by
 * its position next to another member — and checked on every task sampled. Where the data cannot
 * tell two members apart (real_parent/parent when nothing is ptraced, ...), the unrandomised
 * declaration order decides only if the two sit exactly where that order puts them; otherwise the
 * member stays undetermined.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/internal.h"

#define MM_WINDOW 2048      /* mm_struct.pgd lies in the first 2 KiB (72..152 in every known kernel) */
#define MM_FIRST  512       /* ... and is looked for in the first 512 bytes before the rest */
#define CRED_WINDOW 256     /* struct cred is 160..200 bytes; its capability sets lie in the first 256 */
#define MAX_CANDS (TASK_WINDOW / 8)
#define MAX_BASES 256     /* values referenced twice or more near init_task's comm */

struct ring {
	uint64_t *el;          /* elements (list_head VAs), head excluded */
	size_t n;
};

/* Walk a circular list from head: every element's next->prev must point back. Bounded. */
static int ring_walk(struct disc_ctx *c, uint64_t head, size_t max, struct ring *r)
{
	uint64_t cur = head, next, back;
	size_t cap = 0;

	r->el = NULL;
	r->n = 0;
	for (size_t i = 0; i <= max; i++) {
		if (dctx_read_u64(c, cur, &next) || !dctx_is_kernel_ptr(c, next))
			goto bad;
		if (dctx_read_u64(c, next + 8, &back) || back != cur)
			goto bad;
		if (next == head)
			return 0;
		for (size_t k = 0; k < r->n && k < 4; k++)   /* cheap loop guard; max bounds the rest */
			if (r->el[r->n - 1 - k] == next)
				goto bad;
		if (r->n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *p = realloc(r->el, cap * sizeof(*p));
			if (!p)
				goto bad;
			r->el = p;
		}
		r->el[r->n++] = next;
		cur = next;
	}
bad:
	free(r->el);
	r->el = NULL;
	r->n = 0;
	return -EINVAL;
}

static bool read_comm(struct disc_ctx *c, uint64_t va, char out[17])
{
	memset(out, 0, 17);
	return !dctx_read(c, va, out, 16) && comm_valid(out);
}

void set_offset(struct offset_result *r, int64_t off, double conf, const char *how)
{
	r->offset = off;
	r->found = true;
	r->tied = false;
	r->confidence = conf;
	snprintf(r->how, sizeof(r->how), "%s", how);
}

void set_undetermined(struct offset_result *r, const char *why)
{
	r->found = false;
	r->tied = false;
	r->offset = -1;
	r->confidence = 0;
	snprintf(r->how, sizeof(r->how), "undetermined: %s", why);
}

/* Read a task's window (len bytes, the rest zero) page by page; unreadable pages stay zero. */
static int read_window(struct disc_ctx *c, uint64_t base, uint64_t len, struct task_win *w)
{
	w->base = base;
	w->buf = calloc(1, TASK_WINDOW);
	if (!w->buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < len;) {
		uint64_t chunk = 4096 - ((base + off) & 4095);
		if (chunk > len - off)
			chunk = len - off;
		int err = dctx_read(c, base + off, w->buf + off, chunk);
		if (err == -E2BIG)
			return err;
		off += chunk;
	}
	return 0;
}

static bool in_set(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool sorted_has(const uint64_t *v, size_t n, uint64_t x)
{
	return bsearch(&x, v, n, sizeof(*v), cmp_u64) != NULL;
}

/* ---- state of one attempt (one comm hit, one base) ---------------------------------------------- */

struct solve {
	struct disc_ctx *c;
	uint64_t init;            /* init_task VA */
	int64_t tasks, comm;
	uint64_t *all;            /* sorted VAs of every known task (leaders + threads) */
	size_t nall;
	int64_t win;              /* usable window: no member lies at or beyond it */
	int64_t mm, active_mm, pgd;
	int64_t rp[2];            /* parent pointer candidates */
	size_t nrp;
	uint32_t by_order;        /* members decided by declaration order (bit per enum task_field) */
	struct offset_pair order_pairs[VMOT_MAX_PAIRS];   /* pairs split by declaration order alone */
	size_t norder_pairs;
};

/* A member decided only by the unrandomised declaration order: kept only if the layout turns out to
 * show that order (see check_canonical). */
static void set_by_order(struct solve *s, enum task_field f, int64_t off, const char *how)
{
	set_offset(&s->c->res->task[f], off, 0.8, how);
	s->by_order |= 1u << f;
}

/* Two members equal on every task, and nothing but declaration order to split them: a pair, reported as
 * such (both !found, tied, usable: either offset reads the right value on every task read). */
static void set_pair(struct solve *s, const struct offset_pair *p, const char *why)
{
	struct discovery_result *r = s->c->res;
	struct offset_pair q = *p;

	if (q.offsets[1] < q.offsets[0]) {
		q.offsets[0] = p->offsets[1];
		q.offsets[1] = p->offsets[0];
	}
	for (int k = 0; k < 2; k++) {
		if (q.fields[k] == TF_NR)
			continue;
		struct offset_result *t = &r->task[q.fields[k]];

		set_undetermined(t, "");
		t->tied = true;
		t->offset = q.offsets[0];
		snprintf(t->how, sizeof(t->how), "interchangeable with %s: %s", q.members[!k], why);
		s->by_order &= ~(1u << q.fields[k]);
	}
	if (r->npairs < VMOT_MAX_PAIRS)
		r->pairs[r->npairs++] = q;
}

/* Both members of a pair decided by declaration order: kept where the layout shows that order, a pair
 * otherwise (check_canonical). p->offsets are in declaration order. */
static void set_pair_by_order(struct solve *s, const struct offset_pair *p, const char *how_a, const char *how_b)
{
	const char *how[2] = { how_a, how_b };

	for (int k = 0; k < 2; k++)
		if (p->fields[k] != TF_NR)
			set_by_order(s, p->fields[k], p->offsets[k], how[k]);
	if (s->norder_pairs < VMOT_MAX_PAIRS)
		s->order_pairs[s->norder_pairs++] = *p;
}

static bool is_task(const struct solve *s, uint64_t va)
{
	return sorted_has(s->all, s->nall, va);
}

static void rebuild_all(struct solve *s)
{
	struct disc_ctx *c = s->c;
	size_t n = c->nleaders + c->nthreads;

	free(s->all);
	s->all = malloc((n ? n : 1) * sizeof(*s->all));
	if (!s->all) {
		s->nall = 0;
		return;
	}
	memcpy(s->all, c->leaders, c->nleaders * sizeof(*s->all));
	if (c->nthreads)
		memcpy(s->all + c->nleaders, c->threads, c->nthreads * sizeof(*s->all));
	qsort(s->all, n, sizeof(*s->all), cmp_u64);
	s->nall = n;
}

/* Smallest gap between two task_structs: objects never overlap, so it bounds sizeof from above and
 * keeps a neighbour's members out of the search. */
static void bound_window(struct solve *s)
{
	uint64_t best = TASK_WINDOW;

	for (size_t i = 1; i < s->nall; i++) {
		uint64_t d = s->all[i] - s->all[i - 1];
		if (d && d < best)
			best = d;
	}
	s->win = best < 512 ? TASK_WINDOW : (int64_t)best;
	s->c->res->task_stride = (uint32_t)s->win;
}

static void free_windows(struct disc_ctx *c)
{
	for (size_t i = 0; i < c->nwin; i++)
		free(c->win[i].buf);
	free(c->win);
	c->win = NULL;
	c->nwin = 0;
}

/* Sample: init_task, the first tasks (pid 1, kthreadd), then evenly across the list so user
 * processes (created last) are represented. */
static int read_sample(struct disc_ctx *c, uint64_t len)
{
	size_t n = c->nleaders, want = n < SAMPLE_TASKS ? n : SAMPLE_TASKS;
	int err;

	free_windows(c);
	c->win = calloc(want, sizeof(*c->win));
	if (!c->win)
		return -ENOMEM;
	for (size_t k = 0; k < want; k++) {
		size_t i = k < 8 || n <= SAMPLE_TASKS ? k : 8 + (k - 8) * (n - 8) / (want - 8);
		err = read_window(c, c->leaders[i], len, &c->win[c->nwin]);
		c->win[c->nwin].leader = true;
		c->nwin++;
		if (err)
			return err;
	}
	return 0;
}

/* ---- tasks and the base of init_task ---------------------------------------------------------- */

/* A list head near the comm whose ring runs through tasks: every element, shifted by the same
 * distance, holds a valid comm. Returns how many such rings were found; *best gets the longest. */
static int find_tasks_ring(struct disc_ctx *c, uint64_t comm_va, const uint8_t *iw, uint64_t iw_base,
			   uint64_t *head, struct ring *best)
{
	int found = 0;

	best->el = NULL;
	best->n = 0;
	for (uint64_t L = iw_base; L + 16 <= iw_base + 2 * TASK_WINDOW; L += 8) {
		uint64_t next, prev;
		struct ring r;
		char comm[17];
		bool ok = true;

		memcpy(&next, iw + (L - iw_base), 8);
		memcpy(&prev, iw + (L - iw_base) + 8, 8);
		if (next == L || !dctx_is_kernel_ptr(c, next) || !dctx_is_kernel_ptr(c, prev))
			continue;
		if (L <= comm_va && comm_va - L < 16)   /* overlaps the comm itself */
			continue;
		if (ring_walk(c, L, c->opts.max_tasks, &r) || !r.n)
			continue;
		for (size_t i = 0; i < r.n && ok; i++)
			ok = read_comm(c, r.el[i] + (comm_va - L), comm);
		if (ok) {
			found++;
			if (r.n > best->n) {
				free(best->el);
				*best = r;
				*head = L;
				continue;
			}
		}
		free(r.el);
	}
	return found;
}

/* Candidate bases of init_task: values pointing into the window before both the comm and the tasks
 * head, stored somewhere other than an empty list head at that address (real_parent, parent and
 * group_leader of init_task all point at init_task itself). */
static size_t base_candidates(const uint8_t *iw, uint64_t iw_base, uint64_t lo, uint64_t hi, uint64_t *out,
			      size_t max)
{
	size_t nslots = (hi - lo) / 8 + 1, n = 0;
	uint16_t *cnt = calloc(nslots, sizeof(*cnt));

	if (!cnt)
		return 0;
	for (uint64_t p = iw_base; p + 8 <= iw_base + 2 * TASK_WINDOW; p += 8) {
		uint64_t v;
		memcpy(&v, iw + (p - iw_base), 8);
		if (v < lo || v > hi || (v & 7) || p == v || p == v + 8)
			continue;
		if (cnt[(v - lo) / 8] < 0xffff)
			cnt[(v - lo) / 8]++;
	}
	/* highest counts first, at least two references */
	while (n < max) {
		size_t bi = 0;
		for (size_t i = 1; i < nslots; i++)
			if (cnt[i] > cnt[bi])
				bi = i;
		if (cnt[bi] < 2)
			break;
		out[n++] = lo + bi * 8;
		cnt[bi] = 0;
	}
	free(cnt);
	return n;
}

/* ---- individual members ------------------------------------------------------------------------ */

/* pid and tgid: 0 in init_task, distinct values in [1, PID_MAX_LIMIT) over the other group leaders,
 * and some leader has pid 1. On leaders pid == tgid, so threads tell them apart. */
static size_t pid_candidates(struct solve *s, int64_t *out, size_t max)
{
	struct disc_ctx *c = s->c;
	size_t n = 0;
	uint32_t *vals = malloc(c->nwin * sizeof(*vals));

	if (!vals)
		return 0;
	for (int64_t o = 0; o + 4 <= s->win && n < max; o += 4) {
		bool ok = win_u32(&c->win[0], o) == 0, one = false;
		size_t nv = 0;
		for (size_t i = 1; i < c->nwin && ok; i++) {
			uint32_t v = win_u32(&c->win[i], o);
			if (!c->win[i].leader)
				continue;
			ok = v >= 1 && v < PID_MAX_LIMIT;
			one |= v == 1;
			vals[nv++] = v;
		}
		if (!ok || !one || nv < 2)
			continue;
		for (size_t i = 0; i < nv && ok; i++)
			for (size_t j = i + 1; j < nv && ok; j++)
				ok = vals[i] != vals[j];
		if (ok && !(o >= s->comm && o < s->comm + 16) && !(o >= s->tasks && o < s->tasks + 16))
			out[n++] = o;
	}
	free(vals);
	return n;
}

/* A PGD: a page whose kernel half repeats the kernel root's (every process PGD copies it). */
static bool looks_like_pgd(struct disc_ctx *c, uint64_t pa, const uint64_t *kpgd)
{
	uint64_t pgd[512];
	int same = 0, present = 0;

	if (pa & 0xfff || c->pm->bytes_read - c->budget_start + 4096 > c->opts.max_bytes ||
	    physmem_read(c->pm, pa, pgd, sizeof(pgd)))
		return false;
	for (int i = 256; i < 512; i++) {
		present += kpgd[i] & 1;
		same += (kpgd[i] & 1) && pgd[i] == kpgd[i];
	}
	return present && same * 4 >= present * 3;
}

static bool root_observed(const struct disc_ctx *c, uint64_t pa)
{
	for (size_t i = 0; i < c->nroots; i++)
		if (c->roots[i] == pa || (!(pa & 0x1fff) && c->roots[i] == (pa | 0x1000)))
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
static int solve_mm(struct solve *s)
{
	struct disc_ctx *c = s->c;
	struct discovery_result *r = c->res;
	int64_t *cand = malloc(2 * MAX_CANDS * sizeof(*cand)), *good = cand + MAX_CANDS, pgds[8];
	int support[8];   /* members leading to mm_structs with a PGD at pgds[k] */
	size_t ncand = 0, ngood = 0, npgds = 0;
	uint64_t kpgd[512];
	uint8_t *mmbuf = malloc(MM_WINDOW);

	if (!cand || !mmbuf) {
		free(cand);
		free(mmbuf);
		return -ENOMEM;
	}
	if (physmem_read(c->pm, r->kernel_cr3 & X86_CR3_ADDR_MASK, kpgd, sizeof(kpgd))) {
		free(cand);
		free(mmbuf);
		return -EIO;
	}

	for (int64_t o = 0; o + 8 <= s->win && ncand < MAX_CANDS; o += 8) {
		size_t nonzero = 0;
		bool ok = true;
		for (size_t i = 0; i < c->nwin && ok; i++) {
			uint64_t v = win_u64(&c->win[i], o);
			if (!c->win[i].leader)
				continue;
			ok = !v || dctx_is_kernel_ptr(c, v);
			nonzero += v != 0;
		}
		if (ok && nonzero && o != s->tasks && o != s->tasks + 8)
			cand[ncand++] = o;
	}

	/* For each candidate, the mm_struct offsets where every non-NULL target holds a PGD and some of
	 * them were observed in CR3: first within MM_FIRST bytes, then (if none) the whole MM_WINDOW. */
	for (int64_t lo = 0, hi = MM_FIRST; !npgds && lo < MM_WINDOW; lo = hi, hi = MM_WINDOW) {
		for (size_t k = 0; k < ncand; k++) {
			uint64_t targets[16];
			size_t nt = 0;
			for (size_t i = 0; i < c->nwin && nt < 16; i++) {
				uint64_t v = win_u64(&c->win[i], cand[k]);
				if (c->win[i].leader && v && !in_set(targets, nt, v))
					targets[nt++] = v;
			}
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
			for (int64_t g = lo; g + 8 <= end; g += 8) {
				uint64_t v, pa = 0;
				int obs = 0;
				bool ok = true;
				memcpy(&v, mmbuf + (g - lo), 8);
				if (!dctx_is_kernel_ptr(c, v) || (v & 0xfff))
					continue;
				for (size_t t = 0; t < nt && ok; t++) {
					if (t && dctx_read_u64(c, targets[t] + g, &v))
						ok = false;
					else
						ok = !(v & 0xfff) && va_to_pa(c, v, &pa) && looks_like_pgd(c, pa, kpgd);
					obs += ok && root_observed(c, pa);
				}
				if (!ok || !obs)
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
			uint64_t v = win_u64(&c->win[i], good[k]), pgd, pa;
			if (!c->win[i].leader || !v)
				continue;
			ok = !dctx_read_u64(c, v + best_pgd, &pgd) && va_to_pa(c, pgd, &pa) && !(pa & 0xfff);
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
		uint64_t a = win_u64(&c->win[i], m[0]), b = win_u64(&c->win[i], m[1]);
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
	if (m[1] == m[0] + 8) {
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
static void solve_threads(struct solve *s)
{
	struct disc_ctx *c = s->c;
	int64_t best = -1;
	size_t best_n = 0;

	c->thread_ring_off = -1;
	if (s->mm < 0)
		return;
	for (int64_t o = 0; o + 16 <= s->win; o += 8) {
		size_t threads = 0, bad = 0;
		if (o == s->tasks)
			continue;
		for (size_t i = 1; i < c->nwin && bad == 0; i++) {
			struct task_win *w = &c->win[i];
			uint64_t head = w->base + o, next = win_u64(w, o), mm = win_u64(w, s->mm);
			struct ring r;
			/* a non-empty list_head: next and prev both kernel pointers (prev checked here, from the
			 * window, so pointer members that are not list heads cost no reads) */
			if (!w->leader || !mm || next == head || !dctx_is_kernel_ptr(c, next) ||
			    !dctx_is_kernel_ptr(c, win_u64(w, o + 8)))
				continue;
			if (ring_walk(c, head, 4096, &r))
				continue;
			size_t nonthread = 0;
			for (size_t k = 0; k < r.n; k++) {
				uint64_t x = r.el[k] - o, xmm;
				char comm[17];
				if (read_comm(c, x + s->comm, comm) && !dctx_read_u64(c, x + s->mm, &xmm) && xmm == mm &&
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
		if (dctx_read_u64(c, c->leaders[i] + s->mm, &mm) || !mm)
			continue;
		if (ring_walk(c, c->leaders[i] + best, 4096, &r))
			continue;
		for (size_t k = 0; k < r.n; k++) {
			uint64_t x = r.el[k] - best, xmm;
			char comm[17];
			if (!read_comm(c, x + s->comm, comm) || dctx_read_u64(c, x + s->mm, &xmm) || xmm != mm ||
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

static int solve_pid_tgid(struct solve *s)
{
	struct disc_ctx *c = s->c;
	struct discovery_result *r = c->res;
	int64_t p[8];
	size_t np = pid_candidates(s, p, 8);

	if (np == 0) {
		set_undetermined(&r->task[TF_PID], "no member holds distinct process ids");
		set_undetermined(&r->task[TF_TGID], "no member holds distinct process ids");
		return -ENOENT;
	}
	if (np == 1) {
		set_offset(&r->task[TF_PID], p[0], 0.5, "only member with distinct process ids");
		set_undetermined(&r->task[TF_TGID], "one id member only");
		return -ENOENT;
	}
	/* On a thread, pid differs from its leader's and tgid equals it. */
	int score[8] = { 0 }, same[8] = { 0 };
	size_t nthr = 0;
	for (size_t t = 0; t < c->nthreads && nthr < 256; t++) {
		uint64_t x = c->threads[t], leader = 0;
		uint32_t xv, lv;
		/* leader: the group member on the tasks list with the same mm */
		uint64_t xmm;
		if (dctx_read_u64(c, x + s->mm, &xmm))
			continue;
		for (size_t i = 0; i < c->nwin && !leader; i++)
			if (c->win[i].leader && win_u64(&c->win[i], s->mm) == xmm)
				leader = c->win[i].base;
		if (!leader)
			continue;
		nthr++;
		for (size_t k = 0; k < np; k++) {
			if (dctx_read(c, x + p[k], &xv, 4) || dctx_read(c, leader + p[k], &lv, 4))
				continue;
			same[k] += xv == lv;
			score[k] += xv != lv && xv > 0 && xv < PID_MAX_LIMIT;
		}
	}
	for (size_t k = 0; k < np; k++)
		p_dbg("id member %lld: differs on %d, same on %d of %zu threads", (long long)p[k], score[k], same[k], nthr);
	/* tgid: the same on every thread as on its leader. pid: differs on threads, and on every leader
	 * equals tgid (which rules out other per-task sequence numbers, e.g. sched_ext's). */
	if (nthr) {
		int64_t pid = -1, tgid = -1;
		size_t npid = 0, ntgid = 0;
		for (size_t k = 0; k < np; k++)
			if ((size_t)same[k] == nthr) {
				tgid = p[k];
				ntgid++;
			}
		for (size_t k = 0; k < np && ntgid == 1; k++) {
			bool eq = (size_t)score[k] == nthr;
			for (size_t i = 0; i < c->nwin && eq; i++)
				eq = !c->win[i].leader || win_u32(&c->win[i], p[k]) == win_u32(&c->win[i], tgid);
			if (eq) {
				pid = p[k];
				npid++;
			}
		}
		if (npid == 1 && ntgid == 1) {
			set_offset(&r->task[TF_PID], pid, 1.0, "distinct ids; differs between a leader and its threads");
			set_offset(&r->task[TF_TGID], tgid, 1.0, "distinct ids; shared by a leader and its threads");
			return 0;
		}
		/* Another member holds a copy of the pid (sched_ext keeps one in 6.12+): only the
		 * declaration order, pid right before tgid, tells the real one. */
		if (npid > 1 && ntgid == 1 && in_set((const uint64_t *)p, np, (uint64_t)(tgid - 4))) {
			set_by_order(s, TF_PID, tgid - 4, "a copy of it exists elsewhere; declaration order (pid, tgid)");
			set_offset(&r->task[TF_TGID], tgid, 1.0, "distinct ids; shared by a leader and its threads");
			return 0;
		}
	}
	/* No threads: pid and tgid are the one pair of id members equal on every leader. */
	size_t npairs = 0;
	int64_t pa = -1, pb = -1;
	for (size_t k = 0; k < np; k++)
		for (size_t l = k + 1; l < np; l++) {
			bool eq = true;
			for (size_t i = 0; i < c->nwin && eq; i++)
				eq = !c->win[i].leader || win_u32(&c->win[i], p[k]) == win_u32(&c->win[i], p[l]);
			if (eq) {
				npairs++;
				pa = p[k];
				pb = p[l];
			}
		}
	if (npairs == 1 && pb == pa + 4) {
		struct offset_pair pp = { { "pid", "tgid" }, { pa, pb }, { TF_PID, TF_TGID } };
		set_pair_by_order(s, &pp, "equal to tgid on every task; declaration order (pid, tgid)",
				  "equal to pid on every task; declaration order (pid, tgid)");
		return 0;
	}
	set_undetermined(&r->task[TF_PID], nthr ? "threads do not single out pid and tgid" : "no threads to tell pid from tgid");
	set_undetermined(&r->task[TF_TGID], nthr ? "threads do not single out pid and tgid" : "no threads to tell pid from tgid");
	return -ENOENT;
}

/* Parent pointers: init_task's points to itself, every leader's to a known task, not always itself. */
static void parent_candidates(struct solve *s)
{
	struct disc_ctx *c = s->c;

	s->nrp = 0;
	for (int64_t o = 0; o + 8 <= s->win; o += 8) {
		size_t total = 0, hit = 0, notself = 0;
		if (win_u64(&c->win[0], o) != s->init)
			continue;
		for (size_t i = 1; i < c->nwin; i++) {
			uint64_t v = win_u64(&c->win[i], o);
			if (!c->win[i].leader)
				continue;
			total++;
			hit += is_task(s, v);
			notself += v != c->win[i].base;
		}
		if (total && hit == total && notself) {
			p_dbg("parent pointer candidate %lld", (long long)o);
			if (s->nrp < 2)
				s->rp[s->nrp] = o;
			s->nrp++;
		}
	}
}

/* children/sibling: the ring at P+children runs through the sibling members of P's children. Returns
 * the parent-candidate index that the rings agree with, or -1. */
static int solve_children(struct solve *s)
{
	struct disc_ctx *c = s->c;
	struct discovery_result *r = c->res;
	int64_t found_c = -1, found_s = -1;
	int nfound = 0;

	if (!s->nrp) {
		set_undetermined(&r->task[TF_CHILDREN], "no parent pointer to check children against");
		set_undetermined(&r->task[TF_SIBLING], "no parent pointer to check children against");
		return -1;
	}
	for (int64_t co = 0; co + 16 <= s->win; co += 8) {
		struct ring ring;
		uint64_t head = s->init + co;
		if (co == s->tasks || win_u64(&c->win[0], co) == head)
			continue;
		if (ring_walk(c, head, c->opts.max_tasks, &ring) || !ring.n)
			continue;
		/* sibling offset: the first element minus some leader whose parent is init_task */
		for (size_t i = 1; i < c->nwin; i++) {
			int64_t so = (int64_t)(ring.el[0] - c->win[i].base);
			bool ok = c->win[i].leader && so >= 0 && so + 16 <= s->win && so != co;
			if (!ok || (win_u64(&c->win[i], s->rp[0]) != s->init &&
				    (s->nrp < 2 || win_u64(&c->win[i], s->rp[1]) != s->init)))
				continue;
			/* every element of init's ring is a task whose parent is init */
			for (size_t k = 0; k < ring.n && ok; k++) {
				uint64_t x = ring.el[k] - so, p0 = 0, p1 = 0;
				ok = is_task(s, x) && !dctx_read_u64(c, x + s->rp[0], &p0) &&
				     (s->nrp < 2 || !dctx_read_u64(c, x + s->rp[1], &p1));
				ok = ok && (p0 == s->init || (s->nrp >= 2 && p1 == s->init));
			}
			/* and on the sample: each leader's ring holds exactly the leaders naming it as parent. The
			 * guest runs on while we read: a ring that holds a task the walk did not see (forked since)
			 * or that breaks mid-walk says nothing; a listed task on the ring that names another parent
			 * contradicts. Enough rings must agree, and few may be unreadable. */
			size_t agree = 0, unknown = 0;
			for (size_t j = 1; j < c->nwin && ok; j++) {
				struct ring cr;
				struct task_win *w = &c->win[j];
				bool all_known = true;

				if (!w->leader || win_u64(w, co) == w->base + co)
					continue;   /* no children: no evidence either way */
				if (ring_walk(c, w->base + co, c->opts.max_tasks, &cr)) {
					unknown++;
					continue;
				}
				for (size_t k = 0; k < cr.n && ok; k++) {
					uint64_t x = cr.el[k] - so, p0 = 0, p1 = 0;

					if (!is_task(s, x) || dctx_read_u64(c, x + s->rp[0], &p0) ||
					    (s->nrp >= 2 && dctx_read_u64(c, x + s->rp[1], &p1))) {
						all_known = false;
						continue;
					}
					ok = p0 == w->base || (s->nrp >= 2 && p1 == w->base);
				}
				free(cr.el);
				if (ok && all_known && cr.n)
					agree++;
				else if (ok)
					unknown++;
			}
			ok = ok && agree >= 2 && unknown * 4 <= agree;
			if (ok) {
				if (nfound == 0 || found_c != co || found_s != so)
					nfound++;
				found_c = co;
				found_s = so;
				break;
			}
		}
		free(ring.el);
	}
	if (nfound != 1) {
		const char *why = nfound ? "more than one list pair fits children/sibling" : "no list pair fits children/sibling";
		set_undetermined(&r->task[TF_CHILDREN], why);
		set_undetermined(&r->task[TF_SIBLING], why);
		return -1;
	}
	set_offset(&r->task[TF_CHILDREN], found_c, 1.0, "ring through the sibling members of the tasks naming this one parent");
	set_offset(&r->task[TF_SIBLING], found_s, 1.0, "on the parent's children ring");
	if (s->nrp < 2)
		return 0;
	/* A task whose two parent pointers differ (ptraced) sits on its real parent's children ring. */
	for (size_t i = 0; i < c->nleaders; i++) {
		uint64_t x = c->leaders[i], p0, p1;
		if (dctx_read_u64(c, x + s->rp[0], &p0) || dctx_read_u64(c, x + s->rp[1], &p1) || p0 == p1)
			continue;
		struct ring cr;
		if (ring_walk(c, p0 + found_c, c->opts.max_tasks, &cr))
			continue;
		bool in0 = in_set(cr.el, cr.n, x + found_s);
		free(cr.el);
		return in0 ? 0 : 1;
	}
	return -1;
}

/*
 * real_parent vs parent. They differ only on a ptraced task. Since 2.6.30 a traced task stays on its
 * real parent's children list; before, ptrace moved it to the tracer's. So where the unrandomised
 * declaration order (real_parent, parent, children) is visible it decides; the ptrace evidence decides
 * only for randomised layouts, which exist only in kernels (4.13+) with the modern rule.
 */
static void solve_parents(struct solve *s, int real_idx)
{
	struct discovery_result *r = s->c->res;
	bool order = s->nrp == 2 && s->rp[1] == s->rp[0] + 8 && r->task[TF_CHILDREN].found &&
		     r->task[TF_CHILDREN].offset == s->rp[1] + 8;

	if (s->nrp == 1) {
		set_offset(&r->task[TF_PARENT], s->rp[0], 0.6, "the only parent pointer");
		set_undetermined(&r->task[TF_REAL_PARENT], "a single parent pointer member: it is reported as parent");
	} else if (order) {
		const char *how = real_idx == 0 ? "declaration order (real_parent, parent, children); a ptraced task agrees"
				: real_idx == 1 ? "declaration order (real_parent, parent, children); ptrace moved a child (pre-2.6.25)"
						: "equal to parent everywhere; declaration order (real_parent, parent, children)";
		set_offset(&r->task[TF_REAL_PARENT], s->rp[0], real_idx == 0 ? 1.0 : 0.8, how);
		set_offset(&r->task[TF_PARENT], s->rp[1], real_idx == 0 ? 1.0 : 0.8, how);
	} else if (s->nrp == 2 && real_idx >= 0) {
		set_offset(&r->task[TF_REAL_PARENT], s->rp[real_idx], 1.0, "a ptraced task is on this parent's children list");
		set_offset(&r->task[TF_PARENT], s->rp[!real_idx], 1.0, "differs from real_parent on a ptraced task");
	} else if (s->nrp == 2) {
		struct offset_pair pp = { { "real_parent", "parent" }, { s->rp[0], s->rp[1] },
					  { TF_REAL_PARENT, TF_PARENT } };
		set_pair(s, &pp, "equal on every task (nothing ptraced)");
	} else {
		const char *why = s->nrp > 2 ? "more than two members point to parent tasks"
					     : "no member points to parent tasks";
		set_undetermined(&r->task[TF_REAL_PARENT], why);
		set_undetermined(&r->task[TF_PARENT], why);
	}
}

/* init_cred: root ids and capability sets inheritable = 0, permitted/effective/bounding full. Returns
 * the offset of the capability sets, or -1. */
static int init_cred_caps(struct disc_ctx *c, uint64_t va)
{
	uint8_t b[160];
	uint64_t q[4];

	if (dctx_read(c, va, b, sizeof(b)))
		return -1;
	for (int p = 36; p + 32 <= (int)sizeof(b); p += 4) {
		int zeros = 0;
		memcpy(q, b + p, sizeof(q));
		/* permitted = CAP_FULL_SET, a run of low ones (not a pointer); effective and bounding
		 * nearly full subsets of it (old kernels dropped CAP_SETPCAP from them) */
		if (q[0] != 0 || (q[1] & (q[1] + 1)) || __builtin_popcountll(q[1]) < 30 ||
		    (q[2] & ~q[1]) || __builtin_popcountll(q[2]) < 29 || (q[3] & ~q[1]) ||
		    __builtin_popcountll(q[3]) < 29)
			continue;
		for (int z = p - 36; z < p; z++)   /* the eight ids and securebits before them */
			zeros += b[z] == 0;
		if (zeros >= 32)
			return p;
	}
	return -1;
}

/* Any task's cred: the ids before the capability sets come as uid, gid, suid, sgid, euid, egid,
 * fsuid, fsgid — and outside set-id programs uid == suid == euid == fsuid and likewise for gids. */
static bool cred_ids_plausible(struct disc_ctx *c, uint64_t va, int caps)
{
	uint32_t id[10];

	if (dctx_read(c, va + caps - 40, id, sizeof(id)))
		return false;
	for (int k = 0; k <= 1; k++) {   /* ids end 4 or 8 bytes before the caps (securebits, padding) */
		uint32_t *u = id + k;
		if (u[0] == u[2] && u[0] == u[4] && u[0] == u[6] && u[1] == u[3] && u[1] == u[5] && u[1] == u[7])
			return true;
	}
	return false;
}

/* init_cred in any member order (RANDSTRUCT shuffles struct cred as well): its capability sets permitted,
 * effective and bounding, and no other 8 bytes, are CAP_FULL_SET — a run of low ones, 38..48 of them in the
 * kernels that have randstruct (4.13+: CAP_LAST_CAP >= 37) — at 4-aligned offsets (kernel_cap_t was two u32
 * until 6.3). Stores their offsets and the full set; returns 3, or 0 when it does not look like init_cred. */
static int init_cred_cap_slots(struct disc_ctx *c, uint64_t va, int slot[3], uint64_t *full)
{
	uint8_t b[CRED_WINDOW];
	int n = 0;

	if (dctx_read(c, va, b, sizeof(b)))
		return 0;
	*full = 0;
	for (int p = 0; p + 8 <= (int)sizeof(b); p += 4) {
		uint64_t q;
		memcpy(&q, b + p, 8);
		if (q & (q + 1) || __builtin_popcountll(q) < 38 || __builtin_popcountll(q) > 48)
			continue;
		if ((*full && q != *full) || n == 3)
			return 0;
		*full = q;
		slot[n++] = p;
		p += 4;   /* the next set starts 8 bytes on at the earliest */
	}
	return n == 3 ? n : 0;
}

/* Any task's cred in that order: every capability set a subset of the full set, and some of them not empty
 * (the bounding set is full outside of hardened sandboxes). */
static bool cred_caps_plausible(struct disc_ctx *c, uint64_t va, const int *slot, int n, uint64_t full)
{
	uint8_t b[CRED_WINDOW];
	bool some = false;

	if (dctx_read(c, va, b, sizeof(b)))
		return false;
	for (int k = 0; k < n; k++) {
		uint64_t q;
		memcpy(&q, b + slot[k], 8);
		if (q & ~full)
			return false;
		some |= q != 0;
	}
	return some;
}

/* Returns how many members point to a struct cred (0 before 2.6.29, when struct cred was added). */
static size_t solve_cred(struct solve *s)
{
	struct disc_ctx *c = s->c;
	struct discovery_result *r = c->res;
	int64_t cand[8];
	size_t n = 0;

	for (int64_t o = 0; o + 8 <= s->win && n < 8; o += 8) {
		uint64_t v = win_u64(&c->win[0], o);
		size_t total = 0, plausible = 0;
		int caps = -1, slot[3], nslots = 0;
		uint64_t full = 0;
		bool ok = dctx_is_kernel_ptr(c, v) && v != s->init;   /* init_cred may follow init_task closely */
		if (!ok || ((caps = init_cred_caps(c, v)) < 0 && !(nslots = init_cred_cap_slots(c, v, slot, &full))))
			continue;
		/* A pointer out of the task on (nearly) every task: the guest runs on while we read, and a task
		 * freed between the list walk and the read of its window may hold anything by then. */
		size_t ptrs = 0;
		for (size_t i = 1; i < c->nwin; i++) {
			uint64_t t = win_u64(&c->win[i], o);
			bool p = dctx_is_kernel_ptr(c, t) && (t < c->win[i].base || t >= c->win[i].base + (uint64_t)s->win);
			total++;
			ptrs += p;
			plausible += p && (caps >= 0 ? cred_ids_plausible(c, t, caps)
						     : cred_caps_plausible(c, t, slot, nslots, full));
		}
		ok = ptrs * 20 >= total * 19;
		p_dbg("cred? %lld: %zu of %zu pointers, %zu plausible (init_cred %#llx read %s)", (long long)o, ptrs,
		      total, plausible, (unsigned long long)v, caps >= 0 ? "in declaration order" : "in any order");
		if (ok && plausible * 10 >= total * 9)
			cand[n++] = o;
	}
	for (size_t k = 0; k < n; k++)
		p_dbg("cred candidate %lld", (long long)cand[k]);
	/* Where real_cred and cred differ (override_creds), the overriding cred is private to its task
	 * while the real one is shared with the task's family: the member holding a private value is cred. */
	int vote[2] = { 0, 0 };
	for (size_t i = 0; n == 2 && i < c->nwin; i++) {
		uint64_t a = win_u64(&c->win[i], cand[0]), b = win_u64(&c->win[i], cand[1]);
		bool sa = false, sb = false;
		if (a == b)
			continue;
		for (size_t j = 0; j < c->nwin; j++) {
			if (j == i)
				continue;
			sa |= win_u64(&c->win[j], cand[0]) == a || win_u64(&c->win[j], cand[1]) == a;
			sb |= win_u64(&c->win[j], cand[0]) == b || win_u64(&c->win[j], cand[1]) == b;
		}
		if (sa != sb)
			vote[sb]++;   /* the private one (not shared) is cred */
	}
	if (n == 1)
		set_offset(&r->task[TF_CRED], cand[0], 0.9, "only pointer to a struct cred (init_task's is init_cred)");
	else if (n == 2 && (vote[0] || vote[1]) && !(vote[0] && vote[1]))
		set_offset(&r->task[TF_CRED], cand[vote[1] ? 1 : 0], 0.9,
			   "an overriding cred, private to its task, is held here (real_cred is shared)");
	else if (n == 2 && cand[1] == cand[0] + 8) {
		struct offset_pair cp = { { "real_cred", "cred" }, { cand[0], cand[1] }, { TF_NR, TF_CRED } };
		set_pair_by_order(s, &cp, NULL, "two cred pointers; declaration order (real_cred, cred)");
	} else if (n == 2) {
		struct offset_pair cp = { { "real_cred", "cred" }, { cand[0], cand[1] }, { TF_NR, TF_CRED } };
		set_pair(s, &cp, "equal on every task (no override_creds)");
	} else
		set_undetermined(&r->task[TF_CRED], n > 2 ? "more than two members point to a struct cred"
					  : "no pointer to a struct cred");
	return n;
}

/* Declaration order may break a tie only in a layout that visibly keeps it: real_parent, parent,
 * children, sibling back to back (a chain no randomised layout shows by chance). */
static void check_canonical(struct solve *s)
{
	const struct offset_result *t = s->c->res->task;
	bool canonical = s->nrp == 2 && s->rp[1] == s->rp[0] + 8 && t[TF_CHILDREN].found &&
			 t[TF_CHILDREN].offset == s->rp[1] + 8 && t[TF_SIBLING].found &&
			 t[TF_SIBLING].offset == t[TF_CHILDREN].offset + 16;

	if (canonical)
		return;
	for (size_t k = 0; k < s->norder_pairs; k++)
		set_pair(s, &s->order_pairs[k], "equal on every task; declaration order not kept by this layout");
	for (int f = 0; f < TF_NR; f++)
		if (s->by_order & (1u << f))
			set_undetermined(&s->c->res->task[f], "tie broken only by declaration order, and this layout is randomised");
}

/* Every leader's comm must be valid at the found offset. */
static bool check_comms(struct solve *s)
{
	char comm[17];

	for (size_t i = 0; i < s->c->nleaders; i++)
		if (!read_comm(s->c, s->c->leaders[i] + s->comm, comm))
			return false;
	return true;
}

/* Attempt the whole solution for one (comm hit, base) pair. 0 when tasks/comm/init are consistent. */
static int solve_with_base(struct disc_ctx *c, uint64_t base, uint64_t comm_va, uint64_t tasks_head,
			   const struct ring *tr)
{
	struct discovery_result *r = c->res;
	struct solve s = { .c = c, .init = base, .tasks = (int64_t)(tasks_head - base),
			   .comm = (int64_t)(comm_va - base), .mm = -1, .active_mm = -1, .pgd = -1 };
	int err;

	r->npairs = 0;

	free(c->leaders);
	c->nleaders = tr->n + 1;
	c->leaders = malloc(c->nleaders * sizeof(*c->leaders));
	if (!c->leaders)
		return -ENOMEM;
	c->leaders[0] = base;
	for (size_t i = 0; i < tr->n; i++)
		c->leaders[i + 1] = tr->el[i] - s.tasks;
	free(c->threads);
	c->threads = NULL;
	c->nthreads = 0;
	rebuild_all(&s);
	bound_window(&s);
	if (s.comm + 16 > s.win || s.tasks + 16 > s.win || !check_comms(&s)) {
		p_dbg("  base %#llx: comm/tasks beyond the %lld-byte window, or a bad comm", (unsigned long long)base,
		      (long long)s.win);
		free(s.all);
		return -ENOENT;
	}
	err = read_sample(c, (uint64_t)s.win);
	if (err)
		goto out;

	parent_candidates(&s);
	if (!s.nrp) {   /* wrong base: nothing points back at it the way parents do */
		p_dbg("  base %#llx: no parent pointers", (unsigned long long)base);
		err = -ENOENT;
		goto out;
	}
	r->init_task = base;
	set_offset(&r->task[TF_TASKS], s.tasks, 1.0, "circular list from init_task through every task's comm");
	set_offset(&r->task[TF_COMM], s.comm, 1.0, "\"swapper/0\" in init_task, a valid name on every task");

	solve_mm(&s);
	solve_threads(&s);
	parent_candidates(&s);   /* again: a parent may be a thread, known only now */
	solve_pid_tgid(&s);
	/* struct cred (2.6.29+) dates the kernel after the ptrace revamp (2.6.25), from which on a traced
	 * task stays on its real parent's children list: only then does ptrace evidence say which is which */
	bool modern = solve_cred(&s) > 0;
	int real_idx = solve_children(&s);
	solve_parents(&s, modern ? real_idx : -1);
	check_canonical(&s);
	r->ntasks = (uint32_t)c->nleaders;
	r->nthreads = (uint32_t)(c->nleaders + c->nthreads);
	err = 0;
out:
	free(s.all);
	return err;
}

/* Cheap test of a base before reading any window: some member of init_task that points at the base
 * must, in the first tasks on the list, point at tasks of the list too (init_task's real_parent,
 * parent and group_leader point at itself; a leader's parents are leaders). */
static bool base_plausible(struct disc_ctx *c, uint64_t base, const uint8_t *iw, uint64_t iw_base,
			   uint64_t head, const struct ring *tr)
{
	enum { CHECK = 16 };
	uint64_t tasks_off = head - base, leaders[CHECK + 1];
	size_t n = tr->n < CHECK ? tr->n : CHECK;

	for (size_t i = 0; i < n; i++)
		leaders[i] = tr->el[i] - tasks_off;
	leaders[n] = base;
	for (uint64_t p = base; p + 8 <= iw_base + 2 * TASK_WINDOW && p < base + TASK_WINDOW; p += 8) {
		uint64_t v, x;
		size_t good = 0, notself = 0;
		memcpy(&v, iw + (p - iw_base), 8);
		if (v != base || p == base || p == base + 8)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (dctx_read_u64(c, leaders[i] + (p - base), &x))
				break;
			good += in_set(leaders, n + 1, x) || x == base;
			notself += x != leaders[i];
		}
		if (n && good == n && notself)
			return true;
	}
	return false;
}

int fields_solve(struct disc_ctx *c, const uint64_t *hits, size_t nhits)
{
	int solved = 0, err = -ENOENT;
	uint8_t *iw = malloc(2 * TASK_WINDOW);

	if (!iw)
		return -ENOMEM;
	for (size_t h = 0; h < nhits && !solved; h++) {
		uint64_t comm_va = hits[h], iw_base = (comm_va & ~7ULL) - TASK_WINDOW, head = 0;
		uint64_t bases[MAX_BASES];
		struct ring tr;

		memset(iw, 0, 2 * TASK_WINDOW);
		for (uint64_t off = 0, chunk; off < 2 * TASK_WINDOW; off += chunk) {
			chunk = 4096 - ((iw_base + off) & 4095);
			if (chunk > 2 * TASK_WINDOW - off)
				chunk = 2 * TASK_WINDOW - off;
			if (dctx_read(c, iw_base + off, iw + off, chunk) == -E2BIG) {
				err = -E2BIG;
				goto out;
			}
		}
		int nrings = find_tasks_ring(c, comm_va, iw, iw_base, &head, &tr);
		if (!nrings)
			continue;
		if (nrings > 1)
			p_dbg("comm hit %#llx: %d rings fit tasks, taking the longest", (unsigned long long)comm_va, nrings);
		uint64_t lo = ((head > comm_va ? head : comm_va + 16) - TASK_WINDOW + 7) & ~7ULL;   /* comm may be unaligned */
		uint64_t hi = head < comm_va ? head : comm_va;
		size_t nb = base_candidates(iw, iw_base, lo, hi, bases, MAX_BASES);
		p_dbg("comm %#llx: tasks ring at %#llx with %zu tasks, %zu base candidates", (unsigned long long)comm_va,
		      (unsigned long long)head, tr.n, nb);
		/* Usually one base is plausible. When several are, every constraint holds for each (they are
		 * shifted copies of one another), so solve each and keep the one that determines the most
		 * members; on a tie, the highest (closest to comm: a shifted base sits below the object). */
		uint64_t plaus[8];
		size_t np = 0;
		for (size_t b = 0; b < nb && np < 8; b++) {
			bool ok = base_plausible(c, bases[b], iw, iw_base, head, &tr);
			p_dbg("  base candidate %#llx: %s", (unsigned long long)bases[b], ok ? "plausible" : "no");
			if (ok)
				plaus[np++] = bases[b];
		}
		int best_score = -1;
		uint64_t best = 0;
		for (size_t b = 0; b < np && np > 1; b++) {
			for (int f = 0; f < TF_NR; f++)
				set_undetermined(&c->res->task[f], "not reached");
			set_undetermined(&c->res->mm_pgd, "not reached");
			err = solve_with_base(c, plaus[b], comm_va, head, &tr);
			if (err == -E2BIG || err == -ENOMEM)
				break;
			int score = 0;
			for (int f = 0; f < TF_NR; f++)
				score += c->res->task[f].found || c->res->task[f].tied;
			score += c->res->mm_pgd.found;
			p_dbg("  base %#llx: %d, %d members", (unsigned long long)plaus[b], err, score);
			if (!err && (score > best_score || (score == best_score && plaus[b] > best))) {
				best_score = score;
				best = plaus[b];
			}
		}
		if (np == 1)
			best = plaus[0];
		if (best && err != -E2BIG && err != -ENOMEM) {
			for (int f = 0; f < TF_NR; f++)
				set_undetermined(&c->res->task[f], "not reached");
			set_undetermined(&c->res->mm_pgd, "not reached");
			err = solve_with_base(c, best, comm_va, head, &tr);
			solved = !err;
		}
		free(tr.el);
		if (err == -E2BIG || err == -ENOMEM)
			break;
	}
out:
	free(iw);
	if (!solved && err == -ENOENT && !c->res->reason[0])
		snprintf(c->res->reason, sizeof(c->res->reason),
			 "no \"swapper/0\" in the kernel's data starts a task list (%zu candidates)", nhits);
	return solved ? 0 : err;
}
