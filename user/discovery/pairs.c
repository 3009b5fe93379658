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
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "common/log.h"
#include "discovery/discover.h"

#define MAX_TRIED 16      /* tasks with differing values looked at per pair and call */
#define RING_MAX 16384   /* bound on a children-ring walk (a task with more children decides nothing) */

struct pair_ctx {
	struct vmem vm;
	struct discovery_result *r;
	const struct guest_task *t;
	size_t n;
};

/* a pointer of the guest's size, zero-extended */
static int rd_ptr(struct pair_ctx *c, uint64_t va, uint64_t *v)
{
	*v = 0;
	return vmem_read(&c->vm, va, v, guest_ptr_size(c->r));
}

/* sz 4: an id; else a pointer (of the guest's size) */
static bool read_pair(struct pair_ctx *c, uint64_t task, const struct offset_pair *p, uint64_t v[2], size_t sz)
{
	for (int k = 0; k < 2; k++) {
		uint32_t v32;
		v[k] = 0;
		if (sz == 4 ? vmem_read_u32(&c->vm, task + p->offsets[k], &v32) :
			      rd_ptr(c, task + p->offsets[k], &v[k]))
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

	return c->r->mm_pgd.found && !rd_ptr(c, mm + c->r->mm_pgd.offset, &pgd) && !(pgd & guest_pgd_align(c->r)) &&
	       !vmem_translate(&c->vm, pgd, &pa);
}

/* Is node on the ring headed at head? Bounded, next->prev must point back, and a loop that never comes back to
 * head (hostile memory) is caught by a second pointer moving at half speed. */
static bool on_ring(struct pair_ctx *c, uint64_t head, uint64_t node)
{
	uint64_t cur = head, slow = head, next, back;

	for (size_t i = 0; i < RING_MAX; i++) {
		if (rd_ptr(c, cur, &next) || rd_ptr(c, next + guest_ptr_size(c->r), &back) || back != cur)
			return false;
		if (next == node)
			return true;
		if (next == head)
			return false;
		cur = next;
		if ((i & 1) && rd_ptr(c, slow, &slow))
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

/* Pair k is decided: members[0] sits at offsets[first]. The members become found, the pair leaves the list,
 * what (at *used) says so. */
static void settle(struct discovery_result *res, uint32_t k, int first, const char *why, char *what, size_t len,
		   size_t *used)
{
	struct offset_pair p = res->pairs[k];

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
	if (what && *used < len)
		*used += (size_t)snprintf(what + *used, len - *used, "%s%s at %lld, %s at %lld (%s)", *used ? "; " : "",
					  p.members[0], (long long)p.offsets[first], p.members[1],
					  (long long)p.offsets[!first], why);
	memmove(&res->pairs[k], &res->pairs[k + 1], (res->npairs - k - 1) * sizeof(res->pairs[0]));
	res->npairs--;
}

int pairs_settle(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t ntasks,
		 char *what, size_t len)
{
	struct pair_ctx c = { .r = res, .t = tasks, .n = ntasks };
	int settled = 0;
	size_t used = 0;

	if (what && len)
		what[0] = 0;
	kernel_vmem_init(&c.vm, pm, res);
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
		settle(res, k, first, why, what, len, &used);
		settled++;
	}
	return settled;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* index of the mm/active_mm pair in res->pairs, -1 when not tied */
static int mm_pair(const struct discovery_result *res)
{
	for (uint32_t k = 0; k < res->npairs; k++)
		if (res->pairs[k].fields[0] == TF_MM)
			return (int)k;
	return -1;
}

/* pid of task (for the message): the pid member, or the first offset of a pid/tgid pair (a kernel thread's
 * pid and tgid are equal) */
static int32_t task_pid(struct vmem *vm, const struct discovery_result *res, uint64_t task)
{
	int64_t off = res->task[TF_PID].offset;
	uint32_t pid;

	if (!offset_usable(&res->task[TF_PID]))
		return -1;
	for (uint32_t k = 0; k < res->npairs; k++)
		if (res->pairs[k].fields[0] == TF_PID)
			off = res->pairs[k].offsets[0];
	return vmem_read_u32(vm, task + (uint64_t)off, &pid) ? -1 : (int32_t)pid;
}

int pairs_watch(struct physmem *pm, struct discovery_result *res, const uint64_t *gs, uint32_t ngs, uint64_t max_ns,
		char *what, size_t len)
{
	uint64_t last[VMOT_MAX_VCPUS][4] = { { 0 } }, t0 = mono_ns(), deadline = t0 + max_ns, round, seen = 0;
	/* any slot that holds running tasks will do (a copy that lags or keeps the last user task too): the rule
	 * holds for every task at every moment. Several fit when discovery could not single one out: all. */
	int64_t slots[4];
	uint32_t nslots = 0;
	struct pair_ctx c = { .r = res, .n = 1 };
	int settled = 0, k;
	size_t used = 0;

	if (what && len)
		what[0] = 0;
	if (res->percpu_current != -1)   /* -1: unknown */
		slots[nslots++] = res->percpu_current;
	else
		for (uint32_t i = 0; i < res->nrunning_slots && nslots < 4; i++)
			slots[nslots++] = res->running_slots[i];
	if (mm_pair(res) < 0)
		return 0;
	if (!nslots || !ngs) {
		p_dbg("mm/active_mm tied, but no %s to watch", nslots ? "vCPU's per-CPU base" : "per-CPU current-task slot");
		return 0;
	}
	if (ngs > VMOT_MAX_VCPUS)
		ngs = VMOT_MAX_VCPUS;
	kernel_vmem_init(&c.vm, pm, res);
	/* a read costs a few microseconds: the deadline is checked every 16 rounds, the rounds bounded besides */
	for (round = 0; round < 100000000ULL && (k = mm_pair(res)) >= 0 && !pm->source_err; round++) {
		for (uint32_t v = 0; v < ngs; v++)
			for (uint32_t j = 0; j < nslots && k >= 0; j++) {
				uint64_t cur;
				char why[96];
				int first;

				if (vmem_read_u64(&c.vm, gs[v] + (uint64_t)slots[j], &cur) || cur == last[v][j])
					continue;
				last[v][j] = cur;   /* a task just switched to: read its pair at once, while it may run */
				seen++;
				struct guest_task g = { .addr = cur, .pid = -1 };
				c.t = &g;   /* through the warm TLB: a kernel thread may run for microseconds */
				first = decide(&c, &res->pairs[k], 0, why, sizeof(why));
				if (first < 0)
					continue;
				g.pid = task_pid(&c.vm, res, cur);
				snprintf(why, sizeof(why), "pid %d ran as a kernel thread: mm NULL, active_mm borrowed", g.pid);
				settle(res, (uint32_t)k, first, why, what, len, &used);
				settled++;
				k = -1;
			}
		if ((round & 15) == 15 && mono_ns() >= deadline)
			break;
	}
	p_dbg("watched the vCPUs' current tasks (%u per-CPU slot(s), first %+" PRId64 ") for %.3f s: %" PRIu64
	      " reads of each, %" PRIu64 " switches seen%s", nslots, slots[0], (mono_ns() - t0) / 1e9, round, seen,
	      settled ? "; mm/active_mm settled" : "");
	return settled;
}
