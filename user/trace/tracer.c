/* Live event source for one VM, set-up and identity: offsets from discovery or the cache, the per-vCPU
 * per-CPU bases, the current-task slot, the VM block and counters of sessions; see tracer.h. Polling is in
 * poll.c, restarts in restart.c, the scheduler-counter windows in exact.c. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "arch/x86_32.h"
#include "arch/x86_64.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "mem/qemu_proc.h"
#include "mem/qmp.h"
#include "trace/cache.h"
#include "trace/tracer.h"
#include "trace/tracer_internal.h"

#define MIN_EXPLAINED 0.9

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

void vmt_sanitize_comm(char c[16])
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
	if (!vmt_kptr(t, addr) || vmem_read(&t->vm, addr + r->task[TF_COMM].offset, k->comm, 16))
		return -EFAULT;
	vmt_sanitize_comm(k->comm);
	if (vmem_read_u32(&t->vm, addr + r->task[TF_PID].offset, &v32))
		return -EFAULT;
	k->pid = (int32_t)v32;
	k->tgid = !vmem_read_u32(&t->vm, addr + r->task[TF_TGID].offset, &v32) ? (int32_t)v32 : k->pid;
	if (!vmt_read_ptr(t, addr + r->task[TF_REAL_PARENT].offset, &p) && vmt_kptr(t, p) &&
	    !vmem_read_u32(&t->vm, p + r->task[TF_TGID].offset, &v32))
		k->ppid = (int32_t)v32;
	if (!vmt_read_ptr(t, addr + r->task[TF_MM].offset, &p))
		k->mm = p;
	k->kthread = !k->mm;
	/* guest memory can lie (a slot or pointer that is not a task): what does not read back like a task is
	 * not reported as one */
	if (!k->comm[0] || k->pid < 0 || k->pid > PID_MAX_LIMIT || (k->pid && (k->tgid <= 0 || k->tgid > PID_MAX_LIMIT)) ||
	    (k->mm && !vmt_kptr(t, k->mm)))
		return -EINVAL;
	return 0;
}

/* The kernel's per-CPU base each vCPU was last observed with, and that observation's CR3. */
static void collect_vcpus(struct vm_tracer *t)
{
	const struct obs_set *o = &t->tg.obs;

	t->nvcpu = 0;
	for (size_t i = o->n; i-- > 0;) {
		bool seen = false;

		if (!o->v[i].gs_base || (!vmt_kernel_ptr(o->v[i].gs_base) && o->v[i].gs_base >> 32))
			continue;
		for (uint32_t k = 0; k < t->nvcpu; k++)
			seen |= t->vcpu[k].id == o->v[i].vcpu;
		if (!seen && t->nvcpu < VM_MAX_VCPUS)
			t->vcpu[t->nvcpu++] = (struct vmt_vcpu){ .id = o->v[i].vcpu, .gs = o->v[i].gs_base,
								 .hint = o->v[i].gs_base, .pid = -1 };
	}
	/* by id */
	for (uint32_t i = 1; i < t->nvcpu; i++)
		for (uint32_t j = i; j > 0 && t->vcpu[j - 1].id > t->vcpu[j].id; j--) {
			struct vmt_vcpu x = t->vcpu[j];
			t->vcpu[j] = t->vcpu[j - 1];
			t->vcpu[j - 1] = x;
		}
}

/* The root the tracer reads kernel memory through: discovery takes an observed CR3, whose process may exit
 * while tracing goes on (its page tables freed and reused: seen on 32-bit guests as a "restart" every few
 * seconds; and a walk right after discovery, of the GDT's fixmap alias, failing on a short-lived process's freed
 * tables). Pid 1's lives as long as the kernel: it is used instead when init_task's name reads back through it.
 * On a 32-bit guest its own reads (init_task, pid 1, its mm) are all in lowmem: no walk. */
static void stable_root(struct vm_tracer *t)
{
	const struct discovery_result *r = &t->res;
	uint64_t next, p1, mm, pgd, pa, root;
	uint32_t pid;
	struct x86_map m;
	char comm[16];
	int64_t mm_off = offset_usable(&r->task[TF_MM]) ? r->task[TF_MM].offset : -1;
	uint64_t comm_va = r->init_task + (uint64_t)r->task[TF_COMM].offset;

	if (r->arm64)   /* its kernel root is TTBR1's (swapper_pg_dir), no process's: it lives as long as the kernel */
		return;
	if (mm_off < 0 || !r->mm_pgd.found || vmt_read_ptr(t, r->init_task + r->task[TF_TASKS].offset, &next) ||
	    !vmt_kptr(t, next))
		return;
	p1 = next - (uint64_t)r->task[TF_TASKS].offset;
	if (vmem_read_u32(&t->vm, p1 + r->task[TF_PID].offset, &pid) || pid != 1 || vmt_read_ptr(t, p1 + mm_off, &mm) ||
	    !vmt_kptr(t, mm) || vmt_read_ptr(t, mm + r->mm_pgd.offset, &pgd) || vmem_translate(&t->vm, pgd, &pa))
		return;
	root = r->paging32 ? pa : pa | X86_CR3_EXACT;
	if ((r->paging32 ? x86_32_translate(t->tg.pm, root, r->paging32 == 3, comm_va, &m)
			 : x86_translate(t->tg.pm, root, r->la57, comm_va, &m)) ||
	    (comm_va & 4095) > 4096 - 8 || physmem_read(t->tg.pm, m.pa, comm, 8) || strncmp(comm, "swapper", 7))
		return;
	if (root != r->kernel_cr3)
		p_dbg("%s: kernel memory read through pid 1's page tables (%#" PRIx64 ", was %#" PRIx64 ")", t->info.name,
		      root, r->kernel_cr3);
	t->res.kernel_cr3 = root;
	kernel_vmem_init(&t->vm, t->tg.pm, &t->res);
	vmem_set_direct_map(&t->vm, t->res.page_offset_base, t->res.lowmem_size);
}

void vmt_resolve_percpu(struct vm_tracer *t)
{
	uint32_t w = 0;

	for (uint32_t v = 0; v < t->nvcpu; v++) {
		t->vcpu[v].gs = percpu_base_vm(&t->vm, &t->res, t->vcpu[v].hint);
		if (t->vcpu[v].gs && vmt_kptr(t, t->vcpu[v].gs))
			t->vcpu[w++] = t->vcpu[v];
		else
			p_dbg("%s: vCPU %u: per-CPU hint %#" PRIx64 " does not lead to a per-CPU area", t->info.name,
			      t->vcpu[v].id, t->vcpu[v].hint);
	}
	t->nvcpu = w;
}

/* Cached offsets against this guest: the task list walks from init_task ("swapper/0"), the observed roots
 * are (>= 90 %) PGDs of its mms (or the kernel's), each vCPU's current pointer is a listed or idle task. */
static bool validate_cached(struct vm_tracer *t, size_t from, char *why, size_t len)
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
	struct obs_set recent = { t->tg.obs.v + from, t->tg.obs.n - from, 0 };   /* a view: not freed */

	nroots = obs_distinct_roots(&recent, roots, 256);
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

		if (vmt_read_ptr(t, t->vcpu[v].gs + r->percpu_current, &cur) || vmt_read_task(t, cur, &k)) {
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

/* Offsets from the cache, validated on this guest. A busy guest's processes exit between the sampling and the
 * walk (their roots unexplained) or start after it (a vCPU's current task not listed yet): a check that fails
 * is done again on fresh samples, read right after them (CACHE_CHECK_TRIES in all; wrong offsets fail each). */
#define CACHE_CHECK_TRIES    3
#define CACHE_RESAMPLE_S     0.3

static bool try_cache(struct vm_tracer *t, const struct target_opts *topts, uint64_t text_base, bool la57,
		      uint64_t kroot)
{
	struct discovery_result *r = &t->res;
	char why[120], first_why[120] = "";
	size_t from = 0;
	int tries = 1;
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
	stable_root(t);   /* before anything walks: the observed root's process may be gone already */
	vmt_resolve_percpu(t);
	if (r->percpu_current == -1) {
		snprintf(t->cache_note, sizeof(t->cache_note), "cache hit rejected: no per-CPU current offset");
		return false;
	}
	while (!validate_cached(t, from, why, sizeof(why))) {
		if (!first_why[0])
			snprintf(first_why, sizeof(first_why), "%s", why);
		p_dbg("offsets cache: check %d of %d failed: %s", tries, CACHE_CHECK_TRIES, why);
		from = t->tg.obs.n;
		if (tries++ >= CACHE_CHECK_TRIES || target_sample_more(&t->tg, topts, CACHE_RESAMPLE_S) ||
		    t->tg.obs.n == from) {
			snprintf(t->cache_note, sizeof(t->cache_note), "cache hit rejected: %s", why);
			return false;
		}
	}
	if (tries > 1)
		snprintf(t->cache_note, sizeof(t->cache_note), "offsets from the cache, validated by this guest's "
			 "switches (checked again on fresh samples after: %.60s)", first_why);
	else
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

void vmt_exec_members(struct vm_tracer *t)
{
	struct discovery_opts d = { 0 };
	struct guest_task *tasks = NULL;
	size_t n = 0;

	if (guest_tasks_list(t->tg.pm, &t->res, &d, &tasks, &n))
		return;
	if (discover_mm_args(t->tg.pm, &t->res, tasks, n))
		p_dbg("%s: exec events without argv: %s", t->info.name, t->res.mm_args[0].how);
	if (discover_cred_ids(t->tg.pm, &t->res, tasks, n))
		p_dbg("%s: exec events without uid: %s", t->info.name, t->res.cred_ids[0].how);
	free(tasks);
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
	if (!physmem_aarch64(t->tg.pm)) {   /* the x86 kernel's root as discovery finds it, for the fingerprint and
					     * the cache check (an arm64 guest's is TTBR1's: no fingerprint, no cache yet) */
		uint64_t roots[16], pob;
		size_t nroots = obs_distinct_roots(&t->tg.obs, roots, 16);

		if (kernel_root_find(t->tg.pm, roots, nroots, &la57, &kroot, &pob))
			kroot = 0;
	}
	collect_vcpus(t);

	if (kroot && !kernel_fingerprint(t->tg.pm, kroot, la57, &t->fingerprint, t->banner, sizeof(t->banner), &text_base)) {
		t->text_base = text_base;
		if (!o->no_cache && try_cache(t, &topts, text_base, la57, kroot))
			t->cached = true;
	} else {
		snprintf(t->cache_note, sizeof(t->cache_note), physmem_aarch64(t->tg.pm) ?
			 "no kernel fingerprint on arm64 guests yet (offsets not cached)" :
			 "no kernel fingerprint (banner not found)");
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
				p_err("%s (pid %d): discovery failed: %s", label, (int)pid,
				      t->res.reason[0] ? t->res.reason : strerror(-err));
			return err;
		}
		if (!t->res.validated)
			p_warn("%s (pid %d): offsets not validated (%s); tracing anyway", label, (int)pid, t->res.reason);
		kernel_vmem_init(&t->vm, t->tg.pm, &t->res);   /* 32-bit tables and lowmem included */
		vmem_set_direct_map(&t->vm, t->res.page_offset_base, t->res.lowmem_size);
		stable_root(t);   /* before anything walks: the observed root's process may be gone already */
		vmt_resolve_percpu(t);
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
	vmt_exec_members(t);
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
		vmt_sched_stop(t);
		t->sched_next = 0;
	}
	if (t->slot.confirmed && t->fingerprint && t->res.validated && t->text_base && !t->opts.no_cache &&
	    !offsets_cache_store(t->fingerprint, t->banner, t->text_base, &t->res))
		p_dbg("offsets cache updated with per-CPU current task %+" PRId64, t->res.percpu_current);
}

void vmt_close(struct vm_tracer *t)
{
	vmt_sched_stop(t);
	slot_free(&t->slot);
	lost_free(&t->lost);
	target_close(&t->tg);
	free(t->tasks);
	t->tasks = NULL;
	t->ntasks = 0;
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

#define CTR(name, member) { name, offsetof(struct vmt_counters, member) }
static const struct { const char *name; size_t off; } counter_fields[] = {   /* in the session's COUNTERS */
	CTR("polls", polls), CTR("task_walks", walks), CTR("torn_walks", walk_errors),
	CTR("read_errors", read_errors), CTR("switches", switches), CTR("forks", forks), CTR("execs", execs),
	CTR("exits", exits), CTR("renames", renames), CTR("restarts", restarts), CTR("lost", lost),
	CTR("lost_events", lost_events), CTR("lost_rebaselines", lost_rebaselines),
};
#undef CTR

static void counters(json_writer_t *w, void *arg)
{
	const struct vm_tracer *t = arg;

	jsonw_start_object(w);
	jsonw_u64_field(w, "vm", t->index);
	for (size_t i = 0; i < sizeof(counter_fields) / sizeof(counter_fields[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)&t->ctr + counter_fields[i].off, sizeof(v));
		jsonw_u64_field(w, counter_fields[i].name, v);
	}
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
