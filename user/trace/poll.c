/* Polling one VM: every vCPU's current task (SWITCH events) and task-list diffs (FORK, EXEC, RENAME, EXIT,
 * lost pids); see tracer.h. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arch/x86_64.h"
#include "common/log.h"
#include "trace/cache.h"
#include "trace/tracer.h"
#include "trace/tracer_internal.h"

bool vmt_source_gone(int err)
{
	return err == -ESRCH || err == -EIO || err == -ENXIO;
}

void vmt_fill_event(struct sess_event *e, const struct vm_tracer *t, uint64_t now, uint16_t type,
		       const struct vmt_task *k)
{
	memset(e, 0, sizeof(*e));
	e->time_ns = now;
	e->vm = t->index;
	e->vcpu = SESS_VCPU_NONE;
	e->type = type;
	e->task = k->addr;
	e->pid = k->pid;
	e->tgid = k->tgid;
	e->ppid = k->ppid;
	e->prev_pid = -1;
	memcpy(e->comm, k->comm, 16);
}

static const struct vmt_task *find_by_addr(const struct vm_tracer *t, uint64_t addr)
{
	for (size_t i = 0; i < t->ntasks; i++)
		if (t->tasks[i].addr == addr)
			return &t->tasks[i];
	return NULL;
}

/* Tied pairs (issue 12): a task whose two members now differ says which is which; stderr says so and the
 * offsets cache follows. */
static void say_settled(struct vm_tracer *t, const char *what)
{
	p_info("%s (pid %d): offsets settled: %s", t->info.name[0] ? t->info.name : "vm", (int)t->info.pid, what);
	if (t->fingerprint && t->res.validated && t->text_base && !t->opts.no_cache &&
	    !offsets_cache_store(t->fingerprint, t->banner, t->text_base, &t->res))
		p_dbg("offsets cache updated with the settled pair(s)");
}

static void settle_pairs(struct vm_tracer *t, const struct guest_task *g, size_t n)
{
	char what[400];

	if (pairs_settle(t->tg.pm, &t->res, g, n, what, sizeof(what)) > 0)
		say_settled(t, what);
}

void vmt_watch_pairs(struct vm_tracer *t, uint64_t max_ns)
{
	uint64_t gs[VM_MAX_VCPUS];
	char what[400];

	if (t->gone || t->restarting || !t->res.npairs)
		return;
	for (uint32_t v = 0; v < t->nvcpu; v++)
		gs[v] = t->vcpu[v].gs;
	if (pairs_watch(t->tg.pm, &t->res, gs, t->nvcpu, max_ns, what, sizeof(what)) > 0)
		say_settled(t, what);
}

int vmt_poll_current(struct vm_tracer *t, uint64_t now, vmt_emit_fn emit, void *ctx)
{
	if (t->gone)
		return -ESRCH;
	if (t->restarting)
		return 0;
	t->ctr.polls++;
	for (uint32_t v = 0; v < t->nvcpu; v++) {
		struct vmt_vcpu *c = &t->vcpu[v];
		struct vmt_task k;
		const struct vmt_task *known;
		struct sess_event e;
		uint64_t cur;
		int err = vmt_read_ptr(t, c->gs + t->res.percpu_current, &cur);

		if (err) {
			if (vmt_source_gone(err) || kill(t->info.pid, 0)) {
				t->gone = true;
				return -ESRCH;
			}
			t->ctr.read_errors++;
			continue;
		}
		if (c->known && cur == c->task)
			continue;
		known = find_by_addr(t, cur);
		if (known && !known->exited) {
			k = *known;
			/* comm may have changed since the walk */
			char comm[16];
			if (!vmem_read(&t->vm, cur + t->res.task[TF_COMM].offset, comm, 16)) {
				vmt_sanitize_comm(comm);
				memcpy(k.comm, comm, 16);
			}
		} else if (vmt_read_task(t, cur, &k)) {
			t->ctr.read_errors++;
			continue;
		}
		if (t->res.npairs) {   /* the task a vCPU just switched to: a kernel thread splits mm/active_mm */
			struct guest_task g = { .addr = cur, .pid = k.pid };
			settle_pairs(t, &g, 1);
		}
		vmt_fill_event(&e, t, now, SEV_SWITCH, &k);
		e.vcpu = c->id;
		e.prev_pid = c->known ? c->pid : -1;
		c->task = cur;
		c->pid = k.pid;
		c->known = true;
		t->ctr.switches++;
		emit(ctx, &e);
	}
	return 0;
}

static int cmp_task(const void *a, const void *b)
{
	const struct vmt_task *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

struct lost_ctx { struct vm_tracer *t; uint64_t now; vmt_emit_fn emit; void *ctx; };

static void on_lost(void *ctx, int32_t first, int32_t last)
{
	struct lost_ctx *l = ctx;
	struct sess_event e;

	memset(&e, 0, sizeof(e));
	e.time_ns = l->now;
	e.vm = l->t->index;
	e.vcpu = SESS_VCPU_NONE;
	e.type = SEV_LOST;
	e.pid = first;
	e.prev_pid = last;
	e.tgid = e.ppid = -1;
	l->t->ctr.lost += (uint64_t)(last - first) + 1;
	l->t->ctr.lost_events++;
	l->emit(l->ctx, &e);
}

/* After a walk: find/confirm the pid allocator, then count the pids it handed out that no walk saw. */
static void account_pids(struct vm_tracer *t, uint64_t now, const struct guest_task *g, size_t n,
			 const int32_t *fresh, size_t nfresh, bool have_next, uint32_t next, vmt_emit_fn emit, void *ctx)
{
	const char *name = t->info.name[0] ? t->info.name : "vm";

	if (t->pa.state != PIDA_CONFIRMED && t->pa.state != PIDA_FAILED) {
		struct pida_walk w = { g, n, fresh, t->have_walk ? nfresh : 0 };
		enum pida_state st = pidalloc_step(&t->pa, &t->vm, &w);

		if (st == PIDA_CONFIRMED)
			p_info("%s (pid %d): pid allocator found: init_pid_ns %#" PRIx64 " +%" PRId64 " (%s; %s), "
			       "child_reaper +%" PRId64 ", task_struct.thread_pid %+" PRId64 ", upid.nr %+" PRId64
			       "; counting lost pids from the next walk on (next pid about %u)", name, (int)t->info.pid,
			       t->pa.ns, t->pa.off, t->pa.last_kind ? "last pid handed out" : "next pid to try", t->pa.why,
			       t->pa.reaper, t->pa.thread_pid, t->pa.upid_nr, t->pa.value + t->pa.last_kind);
		else if (st == PIDA_WATCHING && nfresh)
			p_dbg("%s (pid %d): pid allocator: %s", name, (int)t->info.pid, t->pa.why);
		else if (st == PIDA_FAILED)
			p_warn("%s (pid %d): pid allocator not found (%s): processes shorter than a task walk can be "
			       "missed without a lost count", name, (int)t->info.pid, t->pa.why);
		return;
	}
	if (!have_next) {   /* unreadable now: this window is decided with the next readable one */
		t->ctr.read_errors++;
		return;
	}
	int32_t *pids = malloc((n ? n : 1) * sizeof(*pids));
	struct lost_ctx lc = { t, now, emit, ctx };

	if (!pids)
		return;
	for (size_t k = 0; k < n; k++)
		pids[k] = g[k].pid;
	t->ctr.alloc_walks++;
	switch (lost_walk(&t->lost, now, next, pids, n, on_lost, &lc)) {
	case LOST_WRAP:
	case LOST_JUMP:
		t->ctr.lost_rebaselines++;
		if (!t->wrap_said)
			p_warn("%s (pid %d): the guest's pid allocator went from %u to %u (%s): lost counting starts "
			       "again from there; nothing is counted for that window", name, (int)t->info.pid,
			       t->alloc_seen, next, next < t->alloc_seen ? "pid_max wrap" : "ns_last_pid written?");
		t->wrap_said = true;
		break;
	default:
		break;
	}
	t->alloc_seen = next;
	t->alloc_valid = true;
	free(pids);
}

bool vmt_alloc_moved(struct vm_tracer *t)
{
	uint32_t next;

	if (t->gone || t->restarting || !t->alloc_valid || pidalloc_read(&t->pa, &t->vm, &next))
		return false;
	return next != t->alloc_seen;
}

/* What the task at addr now runs: its argv (up to VMT_EXEC_ARGV_MAX bytes) and ids, where readable. False
 * while exec is still setting up the new mm (its arguments not there yet: the event waits a walk). */
static bool exec_details(struct vm_tracer *t, uint64_t addr)
{
	struct guest_task g;
	size_t len = 0;
	int err;

	memset(&t->exec, 0, offsetof(struct vmt_exec, argv));
	t->exec.valid = true;
	if (guest_task_at(t->tg.pm, &t->res, addr, &g))
		return true;
	t->exec.have_ids = !guest_task_ids(t->tg.pm, &t->res, &g, t->exec.ids);
	err = guest_task_cmdline(t->tg.pm, &t->res, &g, t->exec.argv, sizeof(t->exec.argv), &len);
	if (!err) {
		t->exec.argv_len = len;
		t->exec.truncated = len >= VMT_EXEC_ARGV_MAX;
	}
	return err != -EINVAL;
}

const struct vmt_exec *vmt_exec_details(const struct vm_tracer *t)
{
	return t->exec.valid ? &t->exec : NULL;
}

int vmt_poll_tasks(struct vm_tracer *t, uint64_t now, vmt_emit_fn emit, void *ctx)
{
	struct discovery_opts d = { 0 };
	struct guest_task *g = NULL;
	struct vmt_task *cur;
	int32_t *fresh;
	size_t n = 0, ng, i = 0, j = 0, nfresh = 0;
	int err;

	if (t->gone)
		return -ESRCH;
	if (t->restarting)
		return now >= t->next_attempt ? vmt_try_rediscover(t, now) : 0;
	/* Every tick: init_task still named "swapper" (cheap: one walk); at every evidence round of the
	 * current-task slot (a QMP round trip, at least once a second) also the vCPUs' per-CPU bases. Gone
	 * twice in a row (not a torn read): the kernel restarted. */
	bool gone = !vmt_kernel_still_there(t);

	if (!gone) {
		struct vcpu_state *vs;
		size_t nv;

		slot_check(t, now, &vs, &nv);
		gone = vs && vmt_percpu_bases_moved(t, vs, nv);
		free(vs);
	}
	if (gone) {
		if (kill(t->info.pid, 0)) {
			t->gone = true;
			return -ESRCH;
		}
		if (++t->suspect >= 2)
			vmt_kernel_gone(t, now, emit, ctx);
		else
			t->slot.next_check = now;   /* confirm at the next tick */
		return 0;
	}
	t->suspect = 0;
	/* the allocator before the walk: every pid below it was handed out before the walk began */
	uint32_t next = 0;
	bool have_next = !pidalloc_read(&t->pa, &t->vm, &next);

	err = guest_tasks_list(t->tg.pm, &t->res, &d, &g, &n);
	if (err || !n) {
		free(g);
		if (vmt_source_gone(err) || kill(t->info.pid, 0)) {
			t->gone = true;
			return -ESRCH;
		}
		t->ctr.walk_errors++;   /* torn walk: the guest changed the list under us; try again next tick */
		return 0;
	}
	t->ctr.walks++;
	if (t->res.npairs)
		settle_pairs(t, g, n);
	cur = calloc(n, sizeof(*cur));
	if (!cur) {
		free(g);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++) {
		cur[k] = (struct vmt_task){ .addr = g[k].addr, .mm = g[k].mm, .pid = g[k].pid, .tgid = g[k].tgid,
					    .ppid = g[k].ppid, .kthread = g[k].kernel_thread };
		memcpy(cur[k].comm, g[k].comm, 16);
	}
	ng = n;
	t->counters_ns = vmt_now_ns();
	if (t->sched.found)   /* the exact counters, read with the walk (a torn read leaves the task without) */
		for (size_t k = 0; k < n; k++) {
			const struct sched_result *sr = &t->sched;

			cur[k].sched_ok =
				!vmem_read_u64(&t->vm, cur[k].addr + sr->f[SF_SUM_EXEC].offset, &cur[k].sum_exec_ns) &&
				!vmem_read_u64(&t->vm, cur[k].addr + sr->f[SF_NVCSW].offset, &cur[k].nvcsw) &&
				!vmem_read_u64(&t->vm, cur[k].addr + sr->f[SF_NIVCSW].offset, &cur[k].nivcsw);
		}
	t->walk_ns = now;
	qsort(cur, n, sizeof(*cur), cmp_task);
	{   /* one entry per task: a list changing under the walk can show a task twice */
		size_t u = 0;

		for (size_t k = 0; k < n; k++)
			if (!u || cur[k].addr != cur[u - 1].addr || cur[k].pid != cur[u - 1].pid)
				cur[u++] = cur[k];
		n = u;
	}
	fresh = calloc(n, sizeof(*fresh));
	if (!fresh) {
		free(g);
		free(cur);
		return -ENOMEM;
	}

	if (!t->have_walk) {   /* baseline: no events; tasks already without mm are not reported */
		for (size_t k = 0; k < n; k++)
			cur[k].exited = !cur[k].mm;
		goto done;
	}
	/* merge the two pid-sorted lists */
	while (i < t->ntasks || j < n) {
		struct vmt_task *old = i < t->ntasks ? &t->tasks[i] : NULL, *nw = j < n ? &cur[j] : NULL;
		struct sess_event e;
		int c = !old ? 1 : !nw ? -1 : cmp_task(old, nw);

		if (c < 0) {            /* gone from the list */
			if (!old->exited) {
				vmt_fill_event(&e, t, now, SEV_EXIT, old);
				t->ctr.exits++;
				emit(ctx, &e);
			}
			i++;
			continue;
		}
		if (c > 0) {            /* new task */
			fresh[nfresh++] = nw->pid;
			vmt_fill_event(&e, t, now, SEV_FORK, nw);
			t->ctr.forks++;
			emit(ctx, &e);
			nw->exited = !nw->mm && !nw->kthread;
			j++;
			continue;
		}
		/* the same task */
		nw->exited = old->exited;
		if (!old->exited && old->mm && !nw->mm) {
			/* exit_mm(): the task is exiting (a zombie until reaped) */
			nw->exited = true;
			memcpy(nw->comm, old->comm, 16);
			vmt_fill_event(&e, t, now, SEV_EXIT, nw);
			t->ctr.exits++;
			emit(ctx, &e);
		} else if (!old->exited && nw->mm && old->mm != nw->mm) {
			if (!exec_details(t, nw->addr) && old->exec_wait < 3) {
				/* mid-exec: seen again at the next walk, with its arguments (at most 3 walks) */
				t->exec.valid = false;
				nw->mm = old->mm;
				nw->exec_wait = old->exec_wait + 1;
				memcpy(nw->comm, old->comm, 16);
				i++;
				j++;
				continue;
			}
			vmt_fill_event(&e, t, now, SEV_EXEC, nw);
			t->ctr.execs++;
			emit(ctx, &e);
			t->exec.valid = false;
		} else if (!old->exited && memcmp(old->comm, nw->comm, 16)) {
			vmt_fill_event(&e, t, now, SEV_RENAME, nw);
			t->ctr.renames++;
			emit(ctx, &e);
		}
		i++;
		j++;
	}
done:
	account_pids(t, now, g, ng, fresh, nfresh, have_next, next, emit, ctx);
	free(g);
	free(fresh);
	free(t->tasks);
	t->tasks = cur;
	t->ntasks = n;
	t->have_walk = true;
	return 0;
}
