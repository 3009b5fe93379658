/* The constraint solver's family: real_parent, parent, children and sibling. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/solve.h"

/* Parent pointers: init_task's points to itself, every leader's to a known task, not always itself. */
void parent_candidates(struct solve *s)
{
	struct disc_ctx *c = s->c;

	s->nrp = 0;
	for (int64_t o = 0; o + (int64_t)c->psz <= s->win; o += c->psz) {
		size_t total = 0, hit = 0, notself = 0;
		if (win_ptr(c, &c->win[0], o) != s->init)
			continue;
		for (size_t i = 1; i < c->nwin; i++) {
			uint64_t v = win_ptr(c, &c->win[i], o);
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

/* What one leader's children ring says of a children/sibling pair (co, so). The guest runs on while we read: a
 * task the walk did not see (forked since) counts when its parent pointer names the ring's owner (a wrong pair
 * reads no such pointer there), a ring that breaks mid-walk or holds anything else says nothing; a listed task
 * on the ring that names another parent contradicts. A ring found empty (its last child reaped since the
 * sample) says nothing either. */
enum ring_verdict { RING_AGREES, RING_UNKNOWN, RING_CONTRADICTS, RING_EMPTY };

static enum ring_verdict children_ring_verdict(struct solve *s, const struct task_win *w, int64_t co, int64_t so)
{
	struct disc_ctx *c = s->c;
	struct ring cr;
	bool all_known = true;

	if (ring_walk(c, w->base + co, c->opts.max_tasks, &cr))
		return RING_UNKNOWN;
	for (size_t k = 0; k < cr.n; k++) {
		uint64_t x = cr.el[k] - so, p0 = 0, p1 = 0;
		bool names;

		if (dctx_read_ptr(c, x + s->rp[0], &p0) || (s->nrp >= 2 && dctx_read_ptr(c, x + s->rp[1], &p1))) {
			all_known = false;
			continue;
		}
		names = p0 == w->base || (s->nrp >= 2 && p1 == w->base);
		if (is_task(s, x) && !names) {
			free(cr.el);
			return RING_CONTRADICTS;
		}
		all_known &= names;   /* not listed (forked since the walk, or not a task at all): must name w */
	}
	free(cr.el);
	if (!cr.n)
		return RING_EMPTY;
	return all_known ? RING_AGREES : RING_UNKNOWN;
}

/* children/sibling: the ring at P+children runs through the sibling members of P's children. Returns
 * the parent-candidate index that the rings agree with, or -1. */
int solve_children(struct solve *s)
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
	for (int64_t co = 0; co + 2 * (int64_t)c->psz <= s->win; co += c->psz) {
		struct ring ring;
		uint64_t head = s->init + co;
		if (co == s->tasks || win_ptr(c, &c->win[0], co) == head)
			continue;
		if (ring_walk(c, head, c->opts.max_tasks, &ring) || !ring.n)
			continue;
		/* sibling offset: the first element minus some leader whose parent is init_task */
		for (size_t i = 1; i < c->nwin; i++) {
			int64_t so = (int64_t)(ring.el[0] - c->win[i].base);
			bool ok = c->win[i].leader && so >= 0 && so + 2 * (int64_t)c->psz <= s->win && so != co;
			if (!ok || (win_ptr(c, &c->win[i], s->rp[0]) != s->init &&
				    (s->nrp < 2 || win_ptr(c, &c->win[i], s->rp[1]) != s->init)))
				continue;
			/* every element of init's ring is a task whose parent is init */
			for (size_t k = 0; k < ring.n && ok; k++) {
				uint64_t x = ring.el[k] - so, p0 = 0, p1 = 0;
				ok = is_task(s, x) && !dctx_read_ptr(c, x + s->rp[0], &p0) &&
				     (s->nrp < 2 || !dctx_read_ptr(c, x + s->rp[1], &p1));
				ok = ok && (p0 == s->init || (s->nrp >= 2 && p1 == s->init));
			}
			/* and on the sample: each leader's ring holds exactly the leaders naming it as parent.
			 * Enough rings must agree, and few may be unknown. */
			size_t agree = 0, unknown = 0;
			for (size_t j = 1; j < c->nwin && ok; j++) {
				if (!c->win[j].leader || win_ptr(c, &c->win[j], co) == c->win[j].base + co)
					continue;   /* no children: no evidence either way */
				enum ring_verdict v = children_ring_verdict(s, &c->win[j], co, so);
				ok = v != RING_CONTRADICTS;
				agree += v == RING_AGREES;
				unknown += v == RING_UNKNOWN;
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
		if (dctx_read_ptr(c, x + s->rp[0], &p0) || dctx_read_ptr(c, x + s->rp[1], &p1) || p0 == p1)
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
void solve_parents(struct solve *s, int real_idx)
{
	struct discovery_result *r = s->c->res;
	bool order = s->nrp == 2 && s->rp[1] == s->rp[0] + (int64_t)s->c->psz && r->task[TF_CHILDREN].found &&
		     r->task[TF_CHILDREN].offset == s->rp[1] + (int64_t)s->c->psz;

	if (s->nrp == 1) {
		/* utrace kernels dropped one of the two and left ptrace parents to utrace: the one left is the
		 * real parent whatever its name (RHEL5 "parent", Fedora 9 "real_parent") */
		const char *how = "the only parent pointer (the kernel keeps no separate ptrace parent): real_parent and parent";
		set_offset(&r->task[TF_REAL_PARENT], s->rp[0], 0.8, how);
		set_offset(&r->task[TF_PARENT], s->rp[0], 0.8, how);
		r->single_parent = true;
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
