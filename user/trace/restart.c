/* A guest kernel that went away (a reboot: init_task gone, per-CPU bases moved) and its rediscovery; see
 * tracer.h (vmt_poll_tasks). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arch/x86_64.h"
#include "common/log.h"
#include "trace/tracer.h"
#include "trace/tracer_internal.h"

/* init_task's comm, read through a fresh walk of the page tables: after a reboot its old VA may translate
 * elsewhere. A walk of its own (a new vmem, its TLB empty), not a flush of the TLB the per-vCPU polls share
 * (they run 5x as often). */
bool vmt_kernel_still_there(struct vm_tracer *t)
{
	struct vmem vm;   /* on the stack: this runs every tick */
	char comm[16];

	kernel_vmem_init(&vm, t->tg.pm, &t->res);
	return !vmem_read(&vm, t->res.init_task + t->res.task[TF_COMM].offset, comm, sizeof(comm)) &&
	       !strncmp(comm, "swapper", 7);
}

/* Has a vCPU's kernel per-CPU base (GS base) moved since tracing began? A restarted kernel puts its
 * per-CPU areas elsewhere (KASLR moves the direct map) even while the dead kernel's memory still holds
 * "swapper/0" at the old init_task (a reset does not clear RAM). vs: registers of one QMP sample. */
bool vmt_percpu_bases_moved(const struct vm_tracer *t, const struct vcpu_state *vs, size_t nv)
{
	for (size_t i = 0; i < nv; i++) {
		uint64_t gs = vs[i].aarch64 ? vs[i].tpidr_el1 : vcpu_paging32(&vs[i]) ? vs[i].gdt_base
			    : x86_kernel_gs(vs[i].rip, vs[i].gs_base, vs[i].kernel_gs_base);

		for (uint32_t v = 0; v < t->nvcpu; v++)
			if (vs[i].valid && t->vcpu[v].id == vs[i].id && gs && gs != t->vcpu[v].hint)
				return true;
	}
	return false;
}

/* The kernel went away: every task it had exits, then RESTART. */
void vmt_kernel_gone(struct vm_tracer *t, uint64_t now, vmt_emit_fn emit, void *ctx)
{
	struct sess_event e;

	for (size_t i = 0; i < t->ntasks; i++)
		if (!t->tasks[i].exited) {
			vmt_fill_event(&e, t, now, SEV_EXIT, &t->tasks[i]);
			t->ctr.exits++;
			emit(ctx, &e);
		}
	memset(&e, 0, sizeof(e));
	e.time_ns = now;
	e.vm = t->index;
	e.vcpu = SESS_VCPU_NONE;
	e.type = SEV_RESTART;
	e.pid = e.tgid = e.ppid = e.prev_pid = -1;
	t->ctr.restarts++;
	emit(ctx, &e);
	p_warn("%s (pid %d): the guest kernel is gone from init_task %#" PRIx64 " (reboot?); rediscovering",
	       t->info.name, (int)t->info.pid, t->res.init_task);
	free(t->tasks);
	t->tasks = NULL;
	t->ntasks = 0;
	vmt_sched_stop(t);
	/* the allocator belongs to the dead kernel: found again on the new one */
	memset(&t->pa, 0, sizeof(t->pa));
	lost_free(&t->lost);
	t->alloc_valid = false;
	t->restarting = true;
	t->old_init_task = t->res.init_task;
	t->next_attempt = now;
	t->attempts = 0;
	for (uint32_t v = 0; v < t->nvcpu; v++)
		t->vcpu[v].known = false;
}

/* Open the VM again (sample, fingerprint, cache or discovery) quietly: while the new kernel boots this
 * fails, and is retried a second later. */
int vmt_try_rediscover(struct vm_tracer *t, uint64_t now)
{
	struct vm_tracer *n = calloc(1, sizeof(*n));
	struct vmt_opts o = t->opts;
	bool quiet = log_quiet;
	int err;

	if (!n)
		return -ENOMEM;
	t->next_attempt = now + 1000000000ULL;
	o.sample_s = o.sample_s > 0 && o.sample_s < 0.5 ? o.sample_s : 0.5;
	o.progress = false;
	log_quiet = true;
	err = vmt_open(n, t->index, t->info.pid, &o);
	log_quiet = quiet;
	/* a booting kernel brings its secondary vCPUs up a little later: wait for them (ten tries) */
	if (!err && n->nvcpu < n->info.nvcpus && ++t->attempts < 10)
		err = -EAGAIN;
	if (err) {
		p_dbg("%s (pid %d): rediscovery not yet: %s", t->info.name, (int)t->info.pid, strerror(-err));
		vmt_close(n);
		free(n);
		if (kill(t->info.pid, 0)) {
			t->gone = true;
			return -ESRCH;
		}
		return 0;
	}
	/* keep what belongs to the tracing, not to the kernel */
	n->opts = t->opts;
	n->ctr = t->ctr;
	n->have_walk = true;   /* an empty previous walk: the new kernel's tasks are forks */
	p_info("%s (pid %d): guest kernel back: init_task %#" PRIx64 " (was %#" PRIx64 "), offsets %s", t->info.name,
	       (int)t->info.pid, n->res.init_task, t->old_init_task, n->cached ? "from the cache" : "rediscovered");
	vmt_close(t);
	*t = *n;
	free(n);
	return VMT_REDISCOVERED;
}
