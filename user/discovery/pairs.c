/*
 * Settling interchangeable pairs over time. Discovery leaves two members tied when they held the same value
 * on every task it read (struct offset_pair); the guest later shows a task whose two values differ, and the
 * kernel's own rules then say which is which:
 *   mm / active_mm       a running kernel thread: mm NULL, active_mm borrowed from a process
 *   real_parent / parent a ptraced task stays on its real parent's children ring (2.6.25+; a kernel with struct
 *                        cred, 2.6.29+, is taken as one)
 *   real_cred / cred     an overriding cred (override_creds) is private; the real one is shared
 *   pid / tgid           a thread: its tgid is its leader's id, held by another task too
 * Each rule needs one such task; a read that does not fit the rule decides nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "discovery/discover.h"

#define MAX_TRIED 16      /* tasks with differing values looked at per pair and call */
#define RING_MAX 16384   /* bound on a children-ring walk (a task with more children decides nothing) */

struct pair_ctx {
	struct vmem vm;
	struct discovery_result *r;
	const struct guest_task *t;
	size_t n;
};

static bool read_pair(struct pair_ctx *c, uint64_t task, const struct offset_pair *p, uint64_t v[2], size_t sz)
{
	for (int k = 0; k < 2; k++) {
		uint32_t v32;
		v[k] = 0;
		if (sz == 4 ? vmem_read_u32(&c->vm, task + p->offsets[k], &v32) :
			      vmem_read_u64(&c->vm, task + p->offsets[k], &v[k]))
			return false;
		if (sz == 4)
			v[k] = v32;
	}
	return true;
}

/* Does any task other than `self` hold x in either slot of the pair? */
static bool held_elsewhere(struct pair_ctx *c, const struct offset_pair *p, size_t self, uint64_t x, size_t sz)
{
	uint64_t v[2];

	for (size_t i = 0; i < c->n; i++)
		if (i != self && read_pair(c, c->t[i].addr, p, v, sz) && (v[0] == x || v[1] == x))
			return true;
	return false;
}

/* An mm_struct: its pgd member holds a mapped page-table root (init_mm, borrowed by an idle swapper/N, is
 * held by no task on the list). */
static bool is_mm(struct pair_ctx *c, uint64_t mm)
{
	uint64_t pgd, pa;

	return c->r->mm_pgd.found && !vmem_read_u64(&c->vm, mm + c->r->mm_pgd.offset, &pgd) && !(pgd & 0xfff) &&
	       !vmem_translate(&c->vm, pgd, &pa);
}

/* Is node on the ring headed at head? Bounded, next->prev must point back, and a loop that never comes back to
 * head (hostile memory) is caught by a second pointer moving at half speed. */
static bool on_ring(struct pair_ctx *c, uint64_t head, uint64_t node)
{
	uint64_t cur = head, slow = head, next, back;

	for (size_t i = 0; i < RING_MAX; i++) {
		if (vmem_read_u64(&c->vm, cur, &next) || vmem_read_u64(&c->vm, next + 8, &back) || back != cur)
			return false;
		if (next == node)
			return true;
		if (next == head)
			return false;
		cur = next;
		if ((i & 1) && vmem_read_u64(&c->vm, slow, &slow))
			return false;
		if (cur == slow)
			return false;   /* a cycle without head */
	}
	return false;
}

/* Which slot holds the first-named member (members[0]) on task i: 0 or 1; -1 the values differ but the rule
 * does not decide; -2 they do not differ (or cannot be read). */
static int decide(struct pair_ctx *c, const struct offset_pair *p, size_t i, char *why, size_t len)
{
	const struct offset_result *t = c->r->task;
	const char *a = p->members[0];
	uint64_t v[2];
	size_t sz = !strcmp(a, "pid") ? 4 : 8;

	if (!read_pair(c, c->t[i].addr, p, v, sz) || v[0] == v[1])
		return -2;
	if (!strcmp(a, "mm")) {   /* members: mm, active_mm */
		int null = v[0] ? (v[1] ? -1 : 1) : 0;
		if (null < 0 || !(held_elsewhere(c, p, i, v[!null], 8) || is_mm(c, v[!null])))
			return -1;
		snprintf(why, len, "pid %d ran as a kernel thread: mm NULL, active_mm borrowed", c->t[i].pid);
		return null;
	}
	if (!strcmp(a, "real_parent")) {   /* a ptraced task: on its real parent's children ring */
		/* only since 2.6.25 (before, ptrace moved the task to the tracer's ring): a struct cred (2.6.29+)
		 * dates the kernel, as in discovery */
		if (!t[TF_CHILDREN].found || !t[TF_SIBLING].found || !offset_usable(&t[TF_CRED]))
			return -1;
		uint64_t node = c->t[i].addr + t[TF_SIBLING].offset;
		bool in0 = on_ring(c, v[0] + t[TF_CHILDREN].offset, node);
		bool in1 = on_ring(c, v[1] + t[TF_CHILDREN].offset, node);
		if (in0 == in1)
			return -1;
		snprintf(why, len, "pid %d is ptraced and on its real parent's children list", c->t[i].pid);
		return in0 ? 0 : 1;
	}
	if (!strcmp(a, "real_cred")) {   /* the private one is cred */
		bool s0 = held_elsewhere(c, p, i, v[0], 8), s1 = held_elsewhere(c, p, i, v[1], 8);
		if (s0 == s1)
			return -1;
		snprintf(why, len, "pid %d overrides its creds: a private cred, a shared real_cred", c->t[i].pid);
		return s0 ? 0 : 1;
	}
	if (!strcmp(a, "pid")) {   /* a thread: tgid is shared with its leader */
		bool s0 = held_elsewhere(c, p, i, v[0], 4), s1 = held_elsewhere(c, p, i, v[1], 4);
		if (s0 == s1)
			return -1;
		snprintf(why, len, "pid %d is a thread: its tgid is its leader's", c->t[i].pid);
		return s0 ? 1 : 0;
	}
	return -1;
}

int pairs_settle(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t ntasks,
		 char *what, size_t len)
{
	struct pair_ctx c = { .r = res, .t = tasks, .n = ntasks };
	int settled = 0;
	size_t used = 0;

	if (what && len)
		what[0] = 0;
	vmem_init(&c.vm, pm, res->kernel_cr3, res->la57);
	c.vm.page_offset_base = res->page_offset_base;
	for (uint32_t k = 0; k < res->npairs;) {
		struct offset_pair p = res->pairs[k];
		char why[96] = "";
		int first = -1;
		unsigned tried = 0;

		/* a few tasks whose values differ are enough; more would only let hostile memory cost n² reads */
		for (size_t i = 0; i < ntasks && first < 0 && tried < MAX_TRIED; i++) {
			first = decide(&c, &p, i, why, sizeof(why));
			tried += first == -1;
		}
		if (first < 0) {
			k++;
			continue;
		}
		for (int m = 0; m < 2; m++) {
			struct offset_result *o;
			if (p.fields[m] == TF_NR)
				continue;
			o = &res->task[p.fields[m]];
			o->offset = p.offsets[m == 0 ? first : !first];
			o->found = true;
			o->tied = false;
			o->confidence = 1.0;
			snprintf(o->how, sizeof(o->how), "settled over time: %s", why);
		}
		if (what && used < len)
			used += (size_t)snprintf(what + used, len - used, "%s%s at %lld, %s at %lld (%s)", used ? "; " : "",
						 p.members[0], (long long)p.offsets[first], p.members[1],
						 (long long)p.offsets[!first], why);
		memmove(&res->pairs[k], &res->pairs[k + 1], (res->npairs - k - 1) * sizeof(res->pairs[0]));
		res->npairs--;
		settled++;
	}
	return settled;
}
