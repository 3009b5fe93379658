/* Live event source for one VM: per-vCPU current task polled from the per-CPU area, task-list diffs; see
 * tracer.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "arch/x86_64.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "mem/qemu_proc.h"
#include "mem/qmp.h"
#include "trace/cache.h"
#include "trace/tracer.h"

#define MIN_EXPLAINED 0.9
#define SCHED_WINDOWS        4
#define SCHED_IDLE_WINDOWS   30
#define SCHED_RETRY_NS       2000000000ULL
#define SCHED_IDLE_RETRY_NS  10000000000ULL
#define SCHED_WAIT_NS        5000000000ULL   /* for a confirmed slot before the first window */

uint64_t vmt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vmt_progress(bool on, bool done, const char *fmt, ...)
{
	va_list ap;

	if (!on || !isatty(STDERR_FILENO))
		return;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (done)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

/* Either paging mode's kernel half (the top 8 bits set holds for both) */
static bool kernel_ptr(uint64_t va) { return x86_kernel_ptr(va, true); }
static void sched_stop(struct vm_tracer *t);

static void sanitize_comm(char c[16])
{
	for (int i = 0; i < 16 && c[i]; i++)
		if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] > 0x7e)
			c[i] = '?';
}

int vmt_read_task(struct vm_tracer *t, uint64_t addr, struct vmt_task *k)
{
	const struct discovery_result *r = &t->res;
	uint32_t v32;
	uint64_t p;

	memset(k, 0, sizeof(*k));
	k->addr = addr;
	k->ppid = -1;
	if (!kernel_ptr(addr) || vmem_read(&t->vm, addr + r->task[TF_COMM].offset, k->comm, 16))
		return -EFAULT;
	sanitize_comm(k->comm);
	if (vmem_read_u32(&t->vm, addr + r->task[TF_PID].offset, &v32))
		return -EFAULT;
	k->pid = (int32_t)v32;
	k->tgid = !vmem_read_u32(&t->vm, addr + r->task[TF_TGID].offset, &v32) ? (int32_t)v32 : k->pid;
	if (!vmem_read_u64(&t->vm, addr + r->task[TF_REAL_PARENT].offset, &p) && kernel_ptr(p) &&
	    !vmem_read_u32(&t->vm, p + r->task[TF_TGID].offset, &v32))
		k->ppid = (int32_t)v32;
	if (!vmem_read_u64(&t->vm, addr + r->task[TF_MM].offset, &p))
		k->mm = p;
	k->kthread = !k->mm;
	return 0;
}

/* The kernel's per-CPU base each vCPU was last observed with, and that observation's CR3. */
static void collect_vcpus(struct vm_tracer *t)
{
	const struct obs_set *o = &t->tg.obs;

	t->nvcpu = 0;
	for (size_t i = o->n; i-- > 0;) {
		bool seen = false;

		if (!o->v[i].gs_base || !kernel_ptr(o->v[i].gs_base))
			continue;
		for (uint32_t k = 0; k < t->nvcpu; k++)
			seen |= t->vcpu[k].id == o->v[i].vcpu;
		if (!seen && t->nvcpu < VM_MAX_VCPUS)
			t->vcpu[t->nvcpu++] = (struct vmt_vcpu){ .id = o->v[i].vcpu, .gs = o->v[i].gs_base, .pid = -1 };
	}
	/* by id */
	for (uint32_t i = 1; i < t->nvcpu; i++)
		for (uint32_t j = i; j > 0 && t->vcpu[j - 1].id > t->vcpu[j].id; j--) {
			struct vmt_vcpu x = t->vcpu[j];
			t->vcpu[j] = t->vcpu[j - 1];
			t->vcpu[j - 1] = x;
		}
}

/* Cached offsets against this guest: the task list walks from init_task ("swapper/0"), the observed roots
 * are (>= 90 %) PGDs of its mms (or the kernel's), each vCPU's current pointer is a listed or idle task. */
static bool validate_cached(struct vm_tracer *t, char *why, size_t len)
{
	struct discovery_result *r = &t->res;
	struct discovery_opts d = { 0 };
	struct guest_task *tasks = NULL;
	size_t n = 0, nroots;
	uint64_t roots[256];
	uint32_t explained = 0;
	bool ok = false;

	if (guest_tasks_list(t->tg.pm, r, &d, &tasks, &n) || n < 2 || tasks[0].pid != 0 ||
	    strcmp(tasks[0].comm, "swapper/0")) {
		snprintf(why, len, "the task list does not walk from init_task with the cached offsets");
		goto out;
	}
	nroots = obs_distinct_roots(&t->tg.obs, roots, 256);
	for (size_t i = 0; i < nroots; i++) {
		uint64_t root = roots[i];
		int owners = 0;
		for (size_t k = 0; k < n; k++)
			owners += tasks[k].pgd_pa && pgd_matches_root(tasks[k].pgd_pa, root) &&
				  (k == 0 || tasks[k].mm != tasks[k - 1].mm);
		explained += owners >= 1 || pgd_user_half_empty(t->tg.pm, root & ~0x1fffULL);
	}
	r->roots_observed = (uint32_t)nroots;
	r->roots_explained = explained;
	if (!nroots || explained < MIN_EXPLAINED * nroots) {
		snprintf(why, len, "cached offsets explain %u of %zu observed CR3 roots", explained, nroots);
		goto out;
	}
	for (uint32_t v = 0; v < t->nvcpu; v++) {
		uint64_t cur;
		struct vmt_task k;
		bool listed = false;

		if (vmem_read_u64(&t->vm, t->vcpu[v].gs + r->percpu_current, &cur) || vmt_read_task(t, cur, &k)) {
			snprintf(why, len, "vCPU %u: no task at the cached per-CPU current offset", t->vcpu[v].id);
			goto out;
		}
		for (size_t i = 0; i < n && !listed; i++)
			listed = tasks[i].addr == cur;
		if (!listed && strncmp(k.comm, "swapper/", 8)) {
			snprintf(why, len, "vCPU %u: current task %#" PRIx64 " is not on the task list", t->vcpu[v].id, cur);
			goto out;
		}
	}
	r->ntasks = (uint32_t)n;
	r->validated = true;
	snprintf(r->reason, sizeof(r->reason), "cached offsets validated: %u/%zu roots explained", explained, nroots);
	ok = true;
out:
	free(tasks);
	return ok;
}

/* Offsets from the cache, validated on this guest. */
static bool try_cache(struct vm_tracer *t, uint64_t text_base, bool la57, uint64_t kroot)
{
	struct discovery_result *r = &t->res;
	char why[120];
	int err = offsets_cache_load(t->fingerprint, text_base, r);

	if (err) {
		snprintf(t->cache_note, sizeof(t->cache_note), err == -ENOENT ? "not in the offsets cache" :
			 "offsets cache entry unreadable");
		return false;
	}
	r->kernel_cr3 = kroot;
	r->la57 = la57;
	if (x86_find_direct_map(t->tg.pm, kroot, la57, &r->page_offset_base)) {
		snprintf(t->cache_note, sizeof(t->cache_note), "cache hit, but no direct map found");
		return false;
	}
	vmem_init(&t->vm, t->tg.pm, r->kernel_cr3, r->la57);
	vmem_set_direct_map(&t->vm, r->page_offset_base, 0);
	if (r->percpu_current == -1 || !validate_cached(t, why, sizeof(why))) {
		snprintf(t->cache_note, sizeof(t->cache_note), "cache hit rejected: %s",
			 r->percpu_current == -1 ? "no per-CPU current offset" : why);
		return false;
	}
	snprintf(t->cache_note, sizeof(t->cache_note), "offsets from the cache, validated by this guest's switches");
	return true;
}


struct progress_ctx { const char *label; pid_t pid; uint64_t budget; };

static void on_progress(void *ctx, const char *step, uint64_t bytes)
{
	struct progress_ctx *p = ctx;

	vmt_progress(true, false, "%s (pid %d): discovering offsets: %s (%.1f of at most %.0f MiB read) ...", p->label,
		     (int)p->pid, step, bytes / 1048576.0, p->budget / 1048576.0);
}

int vmt_open(struct vm_tracer *t, uint32_t index, pid_t pid, const struct vmt_opts *o)
{
	struct target_opts topts = { .pid = pid, .qmp = o->qmp, .timeout_s = o->sample_s > 0 ? o->sample_s : 2.0,
				     .max_bytes = o->max_bytes };
	const char *label;
	uint64_t kroot = 0, text_base = 0;
	bool la57 = false;
	int err;

	memset(t, 0, sizeof(*t));
	t->index = index;
	t->opts = *o;
	if (o->qmp)
		snprintf(t->qmp_path, sizeof(t->qmp_path), "%s", o->qmp);
	else if (qemu_proc_find_qmp(pid, t->qmp_path, sizeof(t->qmp_path)))
		t->qmp_path[0] = 0;
	err = vm_info_read(pid, false, &t->info);
	if (err) {
		p_err("pid %d: %s", (int)pid, err == -ENOENT ? "not a QEMU process" : "no such process");
		return -ESRCH;
	}
	label = t->info.name[0] ? t->info.name : "vm";
	vmt_progress(o->progress, false, "%s (pid %d): sampling vCPU registers for %.1f s ...", label, (int)pid,
		     topts.timeout_s);
	err = target_open(&topts, &t->tg);
	if (err) {
		vmt_progress(o->progress, true, " ");
		return err;
	}
	{   /* the kernel's root as discovery finds it, for the fingerprint and the cache check */
		uint64_t roots[16], pob;
		size_t nroots = obs_distinct_roots(&t->tg.obs, roots, 16);

		if (kernel_root_find(t->tg.pm, roots, nroots, &la57, &kroot, &pob))
			kroot = 0;
	}
	collect_vcpus(t);

	if (kroot && !kernel_fingerprint(t->tg.pm, kroot, la57, &t->fingerprint, t->banner, sizeof(t->banner), &text_base)) {
		t->text_base = text_base;
		if (!o->no_cache && try_cache(t, text_base, la57, kroot))
			t->cached = true;
	} else {
		snprintf(t->cache_note, sizeof(t->cache_note), "no kernel fingerprint (banner not found)");
	}
	p_dbg("offsets cache: %s (fingerprint %016" PRIx64 ", _text %#" PRIx64 ")", t->cache_note[0] ? t->cache_note :
	      "not consulted", t->fingerprint, text_base);
	if (!t->cached && strstr(t->cache_note, "rejected"))
		p_warn("%s (pid %d): %s; rediscovering", label, (int)pid, t->cache_note);
	if (!t->cached) {
		struct discovery_opts d;

		vmt_progress(o->progress, false, "%s (pid %d): discovering task_struct offsets ...", label, (int)pid);
		struct progress_ctx pc = { label, pid, o->max_bytes ? o->max_bytes : 64ULL << 20 };

		target_discovery_opts(&topts, &d);
		if (o->progress) {
			d.progress_fn = on_progress;
			d.progress_ctx = &pc;
		}
		err = discover_offsets(t->tg.pm, &t->tg.obs, &d, &t->res);
		err = target_discover_retry(&topts, &t->tg, &d, &t->res, err);
		if (t->res.retried[0])
			p_dbg("%s (pid %d): %s", label, (int)pid, t->res.retried);
		if (err) {
			vmt_progress(o->progress, true, " ");
			if (err == -ENOENT)
				p_err("%s (pid %d): offsets undetermined: %s", label, (int)pid,
				      t->res.reason[0] ? t->res.reason : "no unique answer");
			else if (!physmem_source_gone(t->tg.pm))   /* else the source said so, once */
				p_err("%s (pid %d): discovery failed: %s", label, (int)pid, strerror(-err));
			return err;
		}
		if (!t->res.validated)
			p_warn("%s (pid %d): offsets not validated (%s); tracing anyway", label, (int)pid, t->res.reason);
		vmem_init(&t->vm, t->tg.pm, t->res.kernel_cr3, t->res.la57);
		vmem_set_direct_map(&t->vm, t->res.page_offset_base, 0);
	}
	vmt_progress(o->progress, false, "%s (pid %d): confirming the per-CPU current-task pointer ...", label, (int)pid);
	if (o->percpu_current_set)   /* the user's choice: no set-up rounds, checked while tracing */
		t->res.percpu_current = o->percpu_current;
	slot_setup(t, t->qmp_path, o->percpu_current_set ? 0 : SLOT_SETUP_S);
	vmt_progress(o->progress, true, " ");
	if (!t->cached && t->fingerprint && t->res.validated && t->res.percpu_current != -1 && !o->no_cache &&
	    text_base && !offsets_cache_store(t->fingerprint, t->banner, text_base, &t->res))
		p_dbg("offsets cached as %s/%016" PRIx64 ".json", offsets_cache_dir(), t->fingerprint);
	if (t->res.percpu_current == -1) {   /* -1: unknown (a slot is 8-byte aligned) */
		p_err("%s (pid %d): the per-CPU current-task pointer was not found: cannot follow vCPUs", label, (int)pid);
		return -ENOENT;
	}
	if (!t->nvcpu) {
		p_err("%s (pid %d): no vCPU was observed with a kernel GS base (per-CPU area)", label, (int)pid);
		return -ENOENT;
	}
	/* exact CPU time and switches: optional, looked for while tracing (vmt_sched_tick) */
	snprintf(t->sched.reason, sizeof(t->sched.reason), o->sched_window_s >= 0 ? "being looked for" :
		 "not looked for");
	t->sched_next = vmt_now_ns();
	t->sched_first = t->sched_next + SCHED_WAIT_NS;
	if (t->nvcpu < t->info.nvcpus)
		p_warn("%s (pid %d): only %u of %u vCPUs observed with a per-CPU base; following those", label,
		       (int)pid, t->nvcpu, t->info.nvcpus);
	return 0;
}

void vmt_slot_changed(struct vm_tracer *t)
{
	for (uint32_t v = 0; v < t->nvcpu; v++)
		t->vcpu[v].known = false;   /* every vCPU's current task is news again */
	if (t->schedw) {            /* its samples came from the old slot */
		sched_stop(t);
		t->sched_next = 0;
	}
	if (t->slot.confirmed && t->fingerprint && t->res.validated && t->text_base && !t->opts.no_cache &&
	    !offsets_cache_store(t->fingerprint, t->banner, t->text_base, &t->res))
		p_dbg("offsets cache updated with per-CPU current task %+" PRId64, t->res.percpu_current);
}

void vmt_close(struct vm_tracer *t)
{
	sched_stop(t);
	slot_free(&t->slot);
	lost_free(&t->lost);
	target_close(&t->tg);
	free(t->tasks);
	t->tasks = NULL;
	t->ntasks = 0;
}

static bool source_gone(int err)
{
	return err == -ESRCH || err == -EIO || err == -ENXIO;
}

static void fill_event(struct sess_event *e, const struct vm_tracer *t, uint64_t now, uint16_t type,
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
		int err = vmem_read_u64(&t->vm, c->gs + t->res.percpu_current, &cur);

		if (err) {
			if (source_gone(err) || kill(t->info.pid, 0)) {
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
				sanitize_comm(comm);
				memcpy(k.comm, comm, 16);
			}
		} else if (vmt_read_task(t, cur, &k)) {
			t->ctr.read_errors++;
			continue;
		}
		fill_event(&e, t, now, SEV_SWITCH, &k);
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

/* init_task's comm, read through a fresh walk of the page tables: after a reboot its old VA may translate
 * elsewhere. A walk of its own, not a flush of the TLB the per-vCPU polls share (they run 5x as often). */
static bool kernel_still_there(struct vm_tracer *t)
{
	uint64_t va = t->res.init_task + t->res.task[TF_COMM].offset;
	char comm[16];

	for (size_t done = 0; done < sizeof(comm);) {   /* the 16 bytes may cross a page */
		struct x86_map m;
		size_t n = 4096 - ((va + done) & 4095);

		if (n > sizeof(comm) - done)
			n = sizeof(comm) - done;
		if (x86_translate(t->tg.pm, t->res.kernel_cr3, t->res.la57, va + done, &m) ||
		    physmem_read(t->tg.pm, m.pa, comm + done, n))
			return false;
		done += n;
	}
	return !strncmp(comm, "swapper", 7);
}

/* Has a vCPU's kernel per-CPU base (GS base) moved since tracing began? A restarted kernel puts its
 * per-CPU areas elsewhere (KASLR moves the direct map) even while the dead kernel's memory still holds
 * "swapper/0" at the old init_task (a reset does not clear RAM). vs: registers of one QMP sample. */
static bool percpu_bases_moved(const struct vm_tracer *t, const struct vcpu_state *vs, size_t nv)
{
	for (size_t i = 0; i < nv; i++) {
		uint64_t gs = x86_kernel_gs(vs[i].rip, vs[i].gs_base, vs[i].kernel_gs_base);

		for (uint32_t v = 0; v < t->nvcpu; v++)
			if (vs[i].valid && t->vcpu[v].id == vs[i].id && gs && gs != t->vcpu[v].gs)
				return true;
	}
	return false;
}

/* The scheduler's counters, looked for over windows fed by the regular polls (the stream goes on). The
 * first window opens once the current-task slot is confirmed (samples of a wrong slot tell nothing), or
 * after SCHED_WAIT_NS without; an undetermined window is followed by another SCHED_RETRY_NS later, up
 * to SCHED_WINDOWS of them; windows of an idle guest do not count, but wait longer. */
static void sched_stop(struct vm_tracer *t)
{
	sched_window_close(t->schedw);
	t->schedw = NULL;
}

bool vmt_sched_pending(const struct vm_tracer *t)
{
	return t->opts.sched_window_s >= 0 && !t->sched.found && !t->gone &&
	       t->sched_windows < SCHED_WINDOWS && t->sched_idle_windows < SCHED_IDLE_WINDOWS;
}

bool vmt_sched_tick(struct vm_tracer *t, uint64_t now)
{
	const char *name = t->info.name;
	int err;

	if (t->restarting || !vmt_sched_pending(t))
		return false;
	if (!t->schedw) {
		if (now < t->sched_next || (!t->slot.confirmed && now < t->sched_first))
			return false;
		err = sched_window_open(t->tg.pm, &t->vm, &t->res, t->nvcpu, t->opts.sched_window_s, &t->sched,
					&t->schedw);
		if (err) {
			t->sched_windows++;
			t->sched_next = now + SCHED_RETRY_NS;
			p_dbg("%s (pid %d): sched: window not opened: %s", name, (int)t->info.pid, t->sched.reason);
			return false;
		}
		return false;   /* the first poll of the window comes next tick */
	}
	uint64_t cur[VM_MAX_VCPUS] = { 0 };

	for (uint32_t v = 0; v < t->nvcpu; v++)
		cur[v] = t->vcpu[v].known ? t->vcpu[v].task : 0;
	sched_window_sample(t->schedw, cur);
	err = sched_window_step(t->schedw, now, &t->sched);
	if (!err)
		return false;
	sched_stop(t);
	if (err < 0) {
		snprintf(t->sched.reason, sizeof(t->sched.reason), "guest memory unreadable (%s)", strerror(-err));
		t->sched_windows++;
		t->sched_next = now + SCHED_RETRY_NS;
		return false;
	}
	if (t->sched.found) {
		p_info("%s (pid %d): scheduler counters found (%.1f s window): sum_exec_runtime +%" PRId64 ", nvcsw +%"
		       PRId64 ", nivcsw +%" PRId64 "; exact CPU time and switch counts from now on", name,
		       (int)t->info.pid, t->sched.window_s, t->sched.f[SF_SUM_EXEC].offset, t->sched.f[SF_NVCSW].offset,
		       t->sched.f[SF_NIVCSW].offset);
		return true;
	}
	bool idle = strstr(t->sched.reason, "idle") != NULL;

	if (idle)
		t->sched_idle_windows++;
	else
		t->sched_windows++;
	t->sched_next = now + (idle ? SCHED_IDLE_RETRY_NS : SCHED_RETRY_NS);
	p_dbg("%s (pid %d): sched: window %u undetermined: %s", name, (int)t->info.pid,
	      t->sched_windows + t->sched_idle_windows, t->sched.reason);
	if (!vmt_sched_pending(t))
		p_info("%s (pid %d): exact CPU time and switch counts undetermined: %s", name, (int)t->info.pid,
		       t->sched.reason);
	return false;
}

/* The kernel went away: every task it had exits, then RESTART. */
static void kernel_gone(struct vm_tracer *t, uint64_t now, vmt_emit_fn emit, void *ctx)
{
	struct sess_event e;

	for (size_t i = 0; i < t->ntasks; i++)
		if (!t->tasks[i].exited) {
			fill_event(&e, t, now, SEV_EXIT, &t->tasks[i]);
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
	sched_stop(t);
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
static int try_rediscover(struct vm_tracer *t, uint64_t now)
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
		return now >= t->next_attempt ? try_rediscover(t, now) : 0;
	/* Every tick: init_task still named "swapper" (cheap: one walk); at every evidence round of the
	 * current-task slot (a QMP round trip, at least once a second) also the vCPUs' per-CPU bases. Gone
	 * twice in a row (not a torn read): the kernel restarted. */
	bool gone = !kernel_still_there(t);

	if (!gone) {
		struct vcpu_state *vs;
		size_t nv;

		slot_check(t, now, &vs, &nv);
		gone = vs && percpu_bases_moved(t, vs, nv);
		free(vs);
	}
	if (gone) {
		if (kill(t->info.pid, 0)) {
			t->gone = true;
			return -ESRCH;
		}
		if (++t->suspect >= 2)
			kernel_gone(t, now, emit, ctx);
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
		if (source_gone(err) || kill(t->info.pid, 0)) {
			t->gone = true;
			return -ESRCH;
		}
		t->ctr.walk_errors++;   /* torn walk: the guest changed the list under us; try again next tick */
		return 0;
	}
	t->ctr.walks++;
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
				fill_event(&e, t, now, SEV_EXIT, old);
				t->ctr.exits++;
				emit(ctx, &e);
			}
			i++;
			continue;
		}
		if (c > 0) {            /* new task */
			fresh[nfresh++] = nw->pid;
			fill_event(&e, t, now, SEV_FORK, nw);
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
			fill_event(&e, t, now, SEV_EXIT, nw);
			t->ctr.exits++;
			emit(ctx, &e);
		} else if (!old->exited && nw->mm && old->mm != nw->mm) {
			fill_event(&e, t, now, SEV_EXEC, nw);
			t->ctr.execs++;
			emit(ctx, &e);
		} else if (!old->exited && memcmp(old->comm, nw->comm, 16)) {
			fill_event(&e, t, now, SEV_RENAME, nw);
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


static void identity(json_writer_t *w, void *arg)
{
	const struct vm_tracer *t = arg;
	const struct discovery_result *r = &t->res;

	jsonw_start_object(w);
	jsonw_u64_field(w, "index", t->index);
	jsonw_int_field(w, "pid", t->info.pid);
	jsonw_string_field(w, "name", t->info.name);
	jsonw_string_field(w, "accel", t->info.accel);
	jsonw_u64_field(w, "vcpus", t->info.nvcpus);
	jsonw_u64_field(w, "memory_bytes", t->info.mem_bytes);
	jsonw_string_field(w, "kernel", t->banner);
	jsonw_hex_field(w, "fingerprint", t->fingerprint);
	jsonw_bool_field(w, "offsets_cached", t->cached);
	jsonw_bool_field(w, "validated", r->validated);
	jsonw_name(w, "task_struct");
	jsonw_start_object(w);
	for (int f = 0; f < TF_NR; f++)
		jsonw_int_field(w, task_field_names[f], r->task[f].offset);
	jsonw_end_object(w);
	jsonw_int_field(w, "mm_pgd", r->mm_pgd.offset);
	jsonw_hex_field(w, "init_task", r->init_task);
	jsonw_hex_field(w, "page_offset_base", r->page_offset_base);
	jsonw_int_field(w, "percpu_current", r->percpu_current);
	jsonw_name(w, "sched");   /* the scheduler's counters: SB_SCHED blocks carry their values */
	jsonw_start_object(w);
	jsonw_bool_field(w, "found", t->sched.found);
	for (int f = 0; f < SF_NR; f++)
		if (t->sched.f[f].found)
			jsonw_int_field(w, sched_field_names[f], t->sched.f[f].offset);
		else
			jsonw_null_field(w, sched_field_names[f]);
	jsonw_string_field(w, "note", vmt_sched_note(t));
	jsonw_end_object(w);
	jsonw_name(w, "vcpu_percpu_base");
	jsonw_start_array(w);
	for (uint32_t v = 0; v < t->nvcpu; v++) {
		jsonw_start_object(w);
		jsonw_u64_field(w, "vcpu", t->vcpu[v].id);
		jsonw_hex_field(w, "gs_base", t->vcpu[v].gs);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	jsonw_end_object(w);
}

const char *vmt_sched_note(const struct vm_tracer *t)
{
	static __thread char buf[240];

	if (t->sched.found)
		return "";
	snprintf(buf, sizeof(buf), "exact figures undetermined: %s", t->sched.reason[0] ? t->sched.reason : "?");
	return buf;
}

static void counters(json_writer_t *w, void *arg)
{
	const struct vm_tracer *t = arg;

	jsonw_start_object(w);
	jsonw_u64_field(w, "vm", t->index);
	jsonw_u64_field(w, "polls", t->ctr.polls);
	jsonw_u64_field(w, "task_walks", t->ctr.walks);
	jsonw_u64_field(w, "torn_walks", t->ctr.walk_errors);
	jsonw_u64_field(w, "read_errors", t->ctr.read_errors);
	jsonw_u64_field(w, "switches", t->ctr.switches);
	jsonw_u64_field(w, "forks", t->ctr.forks);
	jsonw_u64_field(w, "execs", t->ctr.execs);
	jsonw_u64_field(w, "exits", t->ctr.exits);
	jsonw_u64_field(w, "renames", t->ctr.renames);
	jsonw_u64_field(w, "restarts", t->ctr.restarts);
	jsonw_u64_field(w, "lost", t->ctr.lost);
	jsonw_u64_field(w, "lost_events", t->ctr.lost_events);
	jsonw_u64_field(w, "lost_rebaselines", t->ctr.lost_rebaselines);
	jsonw_name(w, "pid_allocator");
	jsonw_start_object(w);
	jsonw_string_field(w, "state", t->pa.state == PIDA_CONFIRMED ? "found" : t->pa.state == PIDA_FAILED ?
			   "not found" : "undetermined");
	jsonw_string_field(w, "how", t->pa.why);
	if (t->pa.state == PIDA_CONFIRMED) {
		jsonw_hex_field(w, "init_pid_ns", t->pa.ns);
		jsonw_int_field(w, "offset", t->pa.off);
		jsonw_string_field(w, "kind", t->pa.last_kind ? "last" : "next");
		jsonw_int_field(w, "child_reaper", t->pa.reaper);
		jsonw_int_field(w, "thread_pid", t->pa.thread_pid);
		jsonw_int_field(w, "upid_nr", t->pa.upid_nr);
		jsonw_u64_field(w, "accounted_from", t->lost.start);
		jsonw_u64_field(w, "accounted_upto", t->lost.upto);
	}
	jsonw_end_object(w);
	jsonw_bool_field(w, "gone", t->gone);
	jsonw_end_object(w);
}

char *vmt_identity_json(const struct vm_tracer *t) { return jsonw_text(identity, (void *)t); }
char *vmt_counters_json(const struct vm_tracer *t) { return jsonw_text(counters, (void *)t); }
