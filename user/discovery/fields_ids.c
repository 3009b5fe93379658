/* The constraint solver's ids: pid and tgid. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/solve.h"

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
		if (ok && !(o >= s->comm && o < s->comm + 16) && !(o >= s->tasks && o < s->tasks + 2 * (int64_t)c->psz))
			out[n++] = o;
	}
	free(vals);
	return n;
}

int solve_pid_tgid(struct solve *s)
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
		if (dctx_read_ptr(c, x + s->mm, &xmm))
			continue;
		for (size_t i = 0; i < c->nwin && !leader; i++)
			if (c->win[i].leader && win_ptr(c, &c->win[i], s->mm) == xmm)
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
	/* No threads: pid and tgid are the pair of id members equal on every leader that lie side by side. A third
	 * such member (sched_ext's copy of the pid, 6.12+; seen on a 1-vCPU 7.2 guest running no threaded process)
	 * makes more equal pairs, but only the declared pair is adjacent. */
	size_t nadjacent = 0;
	int64_t pa = -1, pb = -1;
	for (size_t k = 0; k < np; k++)
		for (size_t l = k + 1; l < np; l++) {
			bool eq = true;
			for (size_t i = 0; i < c->nwin && eq; i++)
				eq = !c->win[i].leader || win_u32(&c->win[i], p[k]) == win_u32(&c->win[i], p[l]);
			if (eq && p[l] == p[k] + 4) {
				nadjacent++;
				pa = p[k];
				pb = p[l];
			}
		}
	if (nadjacent == 1) {
		struct offset_pair pp = { { "pid", "tgid" }, { pa, pb }, { TF_PID, TF_TGID } };
		set_pair_by_order(s, &pp, "equal to tgid on every task; declaration order (pid, tgid)",
				  "equal to pid on every task; declaration order (pid, tgid)");
		return 0;
	}
	set_undetermined(&r->task[TF_PID], nthr ? "threads do not single out pid and tgid" : "no threads to tell pid from tgid");
	set_undetermined(&r->task[TF_TGID], nthr ? "threads do not single out pid and tgid" : "no threads to tell pid from tgid");
	return -ENOENT;
}
