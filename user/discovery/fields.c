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
#include "discovery/solve.h"

#define MAX_BASES 256     /* values referenced twice or more near init_task's comm */

/* Walk a circular list from head: every element's next->prev must point back. Bounded. */
int ring_walk(struct disc_ctx *c, uint64_t head, size_t max, struct ring *r)
{
	uint64_t cur = head, next, back;
	size_t cap = 0;

	r->el = NULL;
	r->n = 0;
	for (size_t i = 0; i <= max; i++) {
		if (dctx_read_ptr(c, cur, &next) || !dctx_is_kernel_ptr(c, next))
			goto bad;
		if (dctx_read_ptr(c, next + c->psz, &back) || back != cur)
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

bool read_comm(struct disc_ctx *c, uint64_t va, char out[17])
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

/* ---- setting members (solve.h) ------------------------------------------------------------------ */

/* A member decided only by the unrandomised declaration order: kept only if the layout turns out to
 * show that order (see check_canonical). */
void set_by_order(struct solve *s, enum task_field f, int64_t off, const char *how)
{
	set_offset(&s->c->res->task[f], off, 0.8, how);
	s->by_order |= 1u << f;
}

/* Two members equal on every task, and nothing but declaration order to split them: a pair, reported as
 * such (both !found, tied, usable: either offset reads the right value on every task read). */
void set_pair(struct solve *s, const struct offset_pair *p, const char *why)
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
void set_pair_by_order(struct solve *s, const struct offset_pair *p, const char *how_a, const char *how_b)
{
	const char *how[2] = { how_a, how_b };

	for (int k = 0; k < 2; k++)
		if (p->fields[k] != TF_NR)
			set_by_order(s, p->fields[k], p->offsets[k], how[k]);
	if (s->norder_pairs < VMOT_MAX_PAIRS)
		s->order_pairs[s->norder_pairs++] = *p;
}

void rebuild_all(struct solve *s)
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
	for (uint64_t L = iw_base; L + 2 * c->psz <= iw_base + 2 * TASK_WINDOW; L += c->psz) {
		uint64_t next, prev;
		struct ring r;
		char comm[17];
		bool ok = true;

		next = buf_ptr(c, iw + (L - iw_base));
		prev = buf_ptr(c, iw + (L - iw_base) + c->psz);
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
static size_t base_candidates(const struct disc_ctx *c, const uint8_t *iw, uint64_t iw_base, uint64_t lo,
			      uint64_t hi, uint64_t *out, size_t max)
{
	const unsigned P = c->psz;
	size_t nslots = (hi - lo) / P + 1, n = 0;
	uint16_t *cnt = calloc(nslots, sizeof(*cnt));

	if (!cnt)
		return 0;
	for (uint64_t p = iw_base; p + P <= iw_base + 2 * TASK_WINDOW; p += P) {
		uint64_t v = buf_ptr(c, iw + (p - iw_base));
		if (v < lo || v > hi || (v & (P - 1)) || p == v || p == v + P)
			continue;
		if (cnt[(v - lo) / P] < 0xffff)
			cnt[(v - lo) / P]++;
	}
	/* highest counts first, at least two references */
	while (n < max) {
		size_t bi = 0;
		for (size_t i = 1; i < nslots; i++)
			if (cnt[i] > cnt[bi])
				bi = i;
		if (cnt[bi] < 2)
			break;
		out[n++] = lo + bi * P;
		cnt[bi] = 0;
	}
	free(cnt);
	return n;
}

/* ---- individual members ------------------------------------------------------------------------ */

/* Declaration order may break a tie only in a layout that visibly keeps it: real_parent, parent,
 * children, sibling back to back (a chain no randomised layout shows by chance). */
static void check_canonical(struct solve *s)
{
	const struct offset_result *t = s->c->res->task;
	const int64_t P = s->c->psz;
	bool canonical = s->nrp == 2 && s->rp[1] == s->rp[0] + P && t[TF_CHILDREN].found &&
			 t[TF_CHILDREN].offset == s->rp[1] + P && t[TF_SIBLING].found &&
			 t[TF_SIBLING].offset == t[TF_CHILDREN].offset + 2 * P;

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
	if (s.comm + 16 > s.win || s.tasks + 2 * (int64_t)c->psz > s.win || !check_comms(&s)) {
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
	for (uint64_t p = base; p + c->psz <= iw_base + 2 * TASK_WINDOW && p < base + TASK_WINDOW; p += c->psz) {
		uint64_t v, x;
		size_t good = 0, notself = 0;
		v = buf_ptr(c, iw + (p - iw_base));
		if (v != base || p == base || p == base + c->psz)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (dctx_read_ptr(c, leaders[i] + (p - base), &x))
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
		uint64_t lo = ((head > comm_va ? head : comm_va + 16) - TASK_WINDOW + c->psz - 1) & ~(uint64_t)(c->psz - 1);   /* comm may be unaligned */
		uint64_t hi = head < comm_va ? head : comm_va;
		size_t nb = base_candidates(c, iw, iw_base, lo, hi, bases, MAX_BASES);
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
	c->no_task_list = !solved && err == -ENOENT && !c->res->reason[0];
	if (c->no_task_list)
		snprintf(c->res->reason, sizeof(c->res->reason),
			 "no \"swapper/0\" in the kernel's data starts a task list (%zu candidates)", nhits);
	return solved ? 0 : err;
}
