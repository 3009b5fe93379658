/* The guest's pid allocator (init_pid_ns's next/last pid), found by properties; see pidalloc.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "discovery/internal.h"   /* fits_but_few */
#include "discovery/pidalloc.h"

#define PID_LIMIT      4194304u   /* PID_MAX_LIMIT on 64-bit: no pid or allocator value is above */
#define TASK_SPAN      16384      /* task_struct bytes searched for the struct pid pointer */
#define PID_SPAN       256        /* struct pid bytes searched for numbers[0] */
#define SAMPLE         32
#define MAX_PAIRS      256

/* a kernel pointer in this guest's paging mode (5-level kernels live above 0xff00000000000000; a 32-bit guest's
 * at or above PAGE_OFFSET, 4-byte aligned; an arm64 guest's in the TTBR1 half) */
static bool kptr(const struct vmem *vm, uint64_t v)
{
	if (vm->arm64)
		return arm64_kernel_ptr(v, vm->va_bits1);
	if (vm->levels32)
		return x86_32_kernel_ptr(v, vm->page_offset_base);
	return x86_kernel_ptr(v, vm->la57);
}

/* the guest's pointer size, and a pointer read from a buffer or from memory */
static unsigned psz_of(const struct vmem *vm) { return vm->levels32 ? 4 : 8; }

static uint64_t vm_buf_ptr(const struct vmem *vm, const uint8_t *p)
{
	uint64_t v = 0;

	memcpy(&v, p, psz_of(vm));
	return v;
}

static int read_ptr(struct vmem *vm, uint64_t va, uint64_t *v)
{
	*v = 0;
	return vmem_read(vm, va, v, psz_of(vm));
}

static void fail(struct pidalloc *pa, const char *why)
{
	pa->state = PIDA_FAILED;
	snprintf(pa->why, sizeof(pa->why), "%s", why);
}

struct pair { int64_t o, x; uint64_t ns; size_t fit; };

/* 1. The struct pid pointer member and numbers[0]: checked on a sample of tasks (threads included). */
static int find_ns(struct pidalloc *pa, struct vmem *vm, const struct pida_walk *w, const struct guest_task *one)
{
	const struct guest_task *s[SAMPLE];
	size_t ns = 0, np = 0, step = w->n / SAMPLE + 1;
	struct pair *p = calloc(MAX_PAIRS, sizeof(*p));
	uint8_t *win = malloc(TASK_SPAN), sp[PID_SPAN];
	size_t have = 0;
	int err = -ENOENT;

	if (!p || !win) {
		free(p);
		free(win);
		return -ENOMEM;
	}
	for (size_t i = 0; i < w->n && ns < SAMPLE; i += step)   /* spread over the list: leaders and threads */
		if (&w->tasks[i] != one && w->tasks[i].pid > 0)
			s[ns++] = &w->tasks[i];
	/* pid 1's window, a page at a time: the read stops at the first unmapped page */
	while (have < TASK_SPAN) {
		size_t chunk = 4096 - ((one->addr + have) & 4095);

		if (chunk > TASK_SPAN - have)
			chunk = TASK_SPAN - have;
		if (vmem_read(vm, one->addr + have, win + have, chunk))
			break;
		have += chunk;
	}
	const unsigned P = psz_of(vm);   /* struct upid: { int nr; struct pid_namespace *ns }, ns at +P */

	for (size_t o = 0; o + P <= have && np < MAX_PAIRS; o += P) {
		uint64_t ptr = vm_buf_ptr(vm, win + o);

		if (!kptr(vm, ptr) || vmem_read(vm, ptr, sp, sizeof(sp)))
			continue;
		for (size_t x = 0; x + 2 * P <= sizeof(sp) && np < MAX_PAIRS; x += P) {
			uint32_t nr;
			uint64_t n = vm_buf_ptr(vm, sp + x + P);

			memcpy(&nr, sp + x, 4);
			if (nr == 1 && kptr(vm, n))
				p[np++] = (struct pair){ (int64_t)o, (int64_t)x, n, 0 };
		}
	}
	/* the same (member, place) must name each task's own pid and the same namespace; a sampled task that
	 * exited since the walk (its struct pid detached or freed) may dissent, as on mm args (fits_but_few) */
	for (size_t k = 0; k < ns; k++)
		for (size_t i = 0; i < np; i++) {
			uint64_t ptr, n;
			uint32_t nr;

			if (!read_ptr(vm, s[k]->addr + p[i].o, &ptr) && kptr(vm, ptr) &&
			    !vmem_read_u32(vm, ptr + p[i].x, &nr) && nr == (uint32_t)s[k]->pid &&
			    !read_ptr(vm, ptr + p[i].x + P, &n) && n == p[i].ns)
				p[i].fit++;
		}
	pa->ns = 0;
	pa->thread_pid = pa->upid_nr = -1;
	for (size_t i = 0; i < np; i++) {
		if (!fits_but_few(p[i].fit, ns))
			continue;
		if (pa->ns && pa->ns != p[i].ns) {
			fail(pa, "tasks' struct pid name two different namespaces: init_pid_ns undetermined");
			err = -ENOENT;
			goto out;
		}
		pa->ns = p[i].ns;
		/* the largest distance to numbers[0] is the struct's start (list nodes point inside it) */
		if (pa->upid_nr < p[i].x) {
			pa->upid_nr = p[i].x;
			pa->thread_pid = p[i].o;
		} else if (pa->upid_nr == p[i].x) {
			pa->thread_pid = -1;   /* two members point to the struct: not told apart */
		}
	}
	if (!pa->ns || ns < 2) {
		fail(pa, ns < 2 ? "fewer than 3 tasks: the struct pid pointer cannot be told" :
		     "no task_struct member points to a struct pid holding the task's pid");
		goto out;
	}
	err = 0;
out:
	free(p);
	free(win);
	return err;
}

static int32_t max_pid(const struct pida_walk *w)
{
	int32_t m = 0;

	for (size_t i = 0; i < w->n; i++)
		if (w->tasks[i].pid > m)
			m = w->tasks[i].pid;
	return m;
}

/* 2 + 3: child_reaper as the anchor, then the u32s that can be the allocator. */
static void find_candidates(struct pidalloc *pa, struct vmem *vm, const struct pida_walk *w,
			    const struct guest_task *one)
{
	uint8_t b[PIDA_NS_WINDOW];
	size_t len = sizeof(b);
	int32_t top = max_pid(w);

	while (len >= 64 && vmem_read(vm, pa->ns, b, len))
		len /= 2;
	if (len < 64) {
		fail(pa, "init_pid_ns is not readable");
		return;
	}
	pa->reaper = -1;
	const unsigned P = psz_of(vm);

	for (size_t o = 0; o + P <= len && pa->reaper < 0; o += P) {
		uint64_t v = vm_buf_ptr(vm, b + o);

		if (v == one->addr)
			pa->reaper = (int64_t)o;
	}
	if (pa->reaper < 0) {
		fail(pa, "no member of the candidate init_pid_ns points to pid 1 (child_reaper): not a pid namespace");
		return;
	}
	pa->ncand = 0;
	for (size_t o = 0; o + 4 <= len && pa->ncand < PIDA_MAX_CAND; o += 4) {
		uint64_t q = 0;
		uint32_t v;

		memcpy(&v, b + o, 4);
		if ((o & ~(size_t)(P - 1)) + P <= len)
			q = vm_buf_ptr(vm, b + (o & ~(size_t)(P - 1)));
		if (kptr(vm, q))   /* (half of) a pointer */
			continue;
		if (v > PID_LIMIT || (int64_t)v < top)
			continue;
		pa->cand[pa->ncand++] = (struct pida_cand){ .off = (int64_t)o, .first = v, .last = v,
							    .equal_seen = (int64_t)v == top,
							    .tight = (int64_t)v == top || (int64_t)v == top + 1 };
	}
	if (!pa->ncand) {
		fail(pa, "no value in init_pid_ns is above every live pid: no allocator");
		return;
	}
	pa->state = PIDA_WATCHING;
	snprintf(pa->why, sizeof(pa->why), "%zu candidate(s); waiting for new pids to see which one steps", pa->ncand);
}

static void prune(struct pidalloc *pa, struct vmem *vm, const struct pida_walk *w)
{
	int32_t top = max_pid(w), fresh_top = -1;
	size_t alive = 0, moved = 0, pick = 0;

	for (size_t i = 0; i < w->nfresh; i++)
		if (w->fresh[i] > fresh_top)
			fresh_top = w->fresh[i];
	if (w->nfresh)
		pa->watched++;
	for (size_t i = 0; i < pa->ncand; i++) {
		struct pida_cand *c = &pa->cand[i];
		uint32_t v;

		if (c->dead)
			continue;
		/* never decreases, never below a live pid, never below a new one (the kernel handed them out) */
		if (vmem_read_u32(vm, pa->ns + c->off, &v) || v > PID_LIMIT || v < c->last || (int64_t)v < top ||
		    (int64_t)v < fresh_top) {
			c->dead = true;
			continue;
		}
		c->equal_seen |= (int64_t)v == top;
		c->tight |= (int64_t)v == top || (int64_t)v == top + 1;
		c->last = v;
		alive++;
		if (v != c->first && c->tight) {
			moved++;
			pick = i;
		}
	}
	if (!alive) {
		fail(pa, "every allocator candidate broke a rule (decreased or fell below a live pid)");
		return;
	}
	/* one that stepped as pids were handed out, seen over at least two walks with new pids, and that was
	 * once the newest live pid (+1): a counter that steps with forks but runs at an offset (6.12 has one
	 * right after init_pid_ns) never is */
	if (moved == 1 && pa->watched >= 2) {
		pa->off = pa->cand[pick].off;
		pa->last_kind = pa->cand[pick].equal_seen;
		pa->value = pa->cand[pick].last;
		pa->state = PIDA_CONFIRMED;
		snprintf(pa->why, sizeof(pa->why), "stepped %u -> %u over %u walks with new pids",
			 pa->cand[pick].first, pa->cand[pick].last, pa->watched);
		return;
	}
	if (pa->watched >= PIDA_MAX_WATCH) {
		fail(pa, moved ? "several values of init_pid_ns step with new pids: allocator undetermined"
			       : "no value of init_pid_ns stepped with new pids");
		return;
	}
	int len = snprintf(pa->why, sizeof(pa->why), "%zu candidate(s), %zu stepped and tight, %u walk(s) with new pids:", alive,
			   moved, pa->watched);
	for (size_t i = 0; i < pa->ncand && len > 0 && (size_t)len < sizeof(pa->why); i++)   /* what is left */
		if (!pa->cand[i].dead)
			len += snprintf(pa->why + len, sizeof(pa->why) - (size_t)len, " +%" PRId64 "=%u", pa->cand[i].off,
					pa->cand[i].last);
}

/* The search for init_pid_ns and the candidates, on one walk. */
static void search(struct pidalloc *pa, struct vmem *vm, const struct pida_walk *w)
{
	const struct guest_task *one = NULL;

	for (size_t i = 0; i < w->n && !one; i++)
		if (w->tasks[i].pid == 1)
			one = &w->tasks[i];
	if (!one) {
		fail(pa, "no pid 1 on the task list");
		return;
	}
	if (find_ns(pa, vm, w, one)) {
		if (pa->state != PIDA_FAILED)
			fail(pa, "out of memory");
		return;
	}
	find_candidates(pa, vm, w, one);
}

enum pida_state pidalloc_step(struct pidalloc *pa, struct vmem *vm, const struct pida_walk *w)
{
	if (pa->state == PIDA_FAILED || pa->state == PIDA_CONFIRMED)
		return pa->state;
	if (pa->state == PIDA_WATCHING) {
		prune(pa, vm, w);
		return pa->state;
	}
	search(pa, vm, w);
	/* a walk caught in churn (a sampled task freed and reused) can fail the search: try again on the next
	 * walks before giving up, each try as bounded as the first */
	if (pa->state == PIDA_FAILED && ++pa->searches < PIDA_SEARCHES)
		pa->state = PIDA_NONE;
	return pa->state;
}

int pidalloc_read(const struct pidalloc *pa, struct vmem *vm, uint32_t *next)
{
	uint32_t v;

	if (pa->state != PIDA_CONFIRMED)
		return -ENOENT;
	if (vmem_read_u32(vm, pa->ns + pa->off, &v))
		return -EFAULT;
	if (v > PID_LIMIT)
		return -ERANGE;
	*next = pa->last_kind ? v + 1 : v;
	return 0;
}
