/* Opening a guest: its memory source and observations, discovery on it; see target.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "arch/arm64.h"
#include "arch/x86_64.h"
#include "common/caps.h"
#include "common/log.h"
#include "mem/qemu_proc.h"
#include "mem/qmp.h"
#include "target/target.h"
#include "target/vms.h"

#define KERNEL_TEXT_START 0xffffffff81000000ULL   /* __START_KERNEL_map + 16 MiB (LibVMI's choice too) */
#define KERNEL_IMAGE_SPAN (1ULL << 30)            /* KASLR moves the image within 1 GiB */
#define QMP_SAMPLE_INTERVAL_MS 20

void target_opts_free(struct target_opts *t)
{
	free(t->cr3s);
	t->cr3s = NULL;
	t->ncr3 = 0;
}

/* Register state the source carries (ELF core notes; a live source's QMP snapshot). */
static int add_source_vcpus(struct target *tg)
{
	uint32_t source = !strcmp(tg->pm->ops->kind, "elfcore") ? OBS_ELF_NOTE : OBS_QMP;
	size_t added = 0;

	for (size_t i = 0; i < tg->pm->nvcpus; i++) {
		const struct vcpu_state *v = &tg->pm->vcpus[i];
		struct observation o = {
			.time_ns = 0, .cr3 = v->cr3, .vcpu = v->id, .source = source,
			.gs_base = vcpu_paging32(v) ? v->gdt_base : x86_kernel_gs(v->rip, v->gs_base, v->kernel_gs_base),
		};
		int err;

		if (!v->valid || (v->aarch64 && !v->cr3))   /* an arm64 core's vCPUs: TTBR0 unknown */
			continue;
		err = obs_add(&tg->obs, &o);
		if (err)
			return err;
		added++;
	}
	p_dbg("%zu observation(s) from the %s source's vCPU state", added, tg->pm->ops->kind);
	return 0;
}

#define ARM64_ROOT_SCAN (16ULL << 30)   /* RAM searched for an arm64 kernel's root */

/* A vCPU's TTBR1 names the kernel's table: its TTBR1 half maps a linear map of RAM. Under KPTI a vCPU caught at
 * EL0 shows the trampoline's table instead, which maps one page of entry code. */
static bool ttbr1_maps_kernel(struct physmem *pm, const struct vcpu_state *v)
{
	struct arm64_mmu m = { 0 };
	uint64_t base, covered;

	if (!v->valid || !v->aarch64 || !v->ttbr1)
		return false;
	arm64_mmu_from_tcr(&m, v->tcr);
	m.ttbr1 = v->ttbr1;
	return m.va_bits1 && !arm64_find_linear_map(pm, &m, &base, &covered);
}

/* The kernel's root (TTBR1) and VA sizes (TCR) where the vCPUs do not show them: an arm64 ELF core holds no
 * system registers, and a live guest under KPTI whose vCPUs were all at EL0 when read shows only the
 * trampoline's table. See target.h. */
void target_complete_arm64_registers(struct target *tg)
{
	struct arm64_mmu m;
	uint64_t tcr;
	bool shown = false;

	for (size_t i = 0; i < tg->pm->nvcpus && !shown; i++)
		shown = ttbr1_maps_kernel(tg->pm, &tg->pm->vcpus[i]);
	if (shown)
		return;
	if (arm64_find_kernel_root(tg->pm, ARM64_ROOT_SCAN, &m, &tcr)) {
		p_dbg("%s: no page of RAM reads as an arm64 kernel's root mapping a linear map", tg->desc);
		return;
	}
	p_dbg("%s: arm64 kernel root found in memory at %#" PRIx64 " (%u-bit VAs%s)", tg->desc, m.ttbr1, m.va_bits1,
	      m.lpa2 ? ", LPA2" : "");
	for (size_t i = 0; i < tg->pm->nvcpus; i++) {
		tg->pm->vcpus[i].ttbr1 = m.ttbr1;
		if (!tg->pm->vcpus[i].tcr)
			tg->pm->vcpus[i].tcr = tcr;
	}
}

/* A raw image without --cr3: an arm64 guest's, if its memory holds an arm64 kernel's root; a vCPU with that
 * root stands for the registers the image lacks. */
static int raw_arm64_vcpu(struct target *tg)
{
	struct vcpu_state *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	*v = (struct vcpu_state){ .valid = true, .aarch64 = true };
	tg->pm->vcpus = v;
	tg->pm->nvcpus = 1;
	target_complete_arm64_registers(tg);
	if (!v->ttbr1) {
		p_err("%s: no --cr3 given, and no arm64 kernel's page tables found in it (an x86 image needs --cr3)",
		      tg->desc);
		target_close(tg);
		return -EINVAL;
	}
	return 0;
}

static int add_cli_cr3s(struct target *tg, const struct target_opts *t)
{
	for (size_t i = 0; i < t->ncr3; i++) {
		/* a set of values, not a time series: one pseudo-vCPU, in the order given */
		struct observation o = { .time_ns = i, .cr3 = t->cr3s[i], .vcpu = 0, .source = OBS_CLI };
		int err = obs_add(&tg->obs, &o);

		if (err)
			return err;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every vCPU the samples since index from saw was seen with a kernel GS base and a CR3: enough for a first
 * attempt. A quiet guest whose vCPUs sit in one address space shows no second root however long it is
 * sampled; when the first attempt cannot decide or validate, target_discover_retry samples more. */
static bool obs_enough(const struct obs_set *o, size_t from)
{
	uint32_t seen[VMOT_MAX_VCPUS], nseen = 0, with_gs[VMOT_MAX_VCPUS], ngs = 0;

	for (size_t i = from; i < o->n; i++) {
		const struct observation *v = &o->v[i];
		bool s = false, g = false;

		for (uint32_t k = 0; k < nseen; k++)
			s |= seen[k] == v->vcpu;
		if (!s && nseen < VMOT_MAX_VCPUS)
			seen[nseen++] = v->vcpu;
		for (uint32_t k = 0; k < ngs && v->gs_base; k++)
			g |= with_gs[k] == v->vcpu;
		if (v->gs_base && !g && ngs < VMOT_MAX_VCPUS)
			with_gs[ngs++] = v->vcpu;
	}
	return nseen && ngs == nseen;
}

/* Live sampling of every vCPU's CR3 and kernel GS base through QEMU's monitor: at least min_s, then until
 * the samples are enough (obs_enough) or max_s has passed (at least once). A socket found on the command
 * line that does not answer (libvirt holds its monitor) only costs the live observations; one given with
 * --qmp must work. */
static int sample_qmp(struct target *tg, const struct target_opts *t, double min_s, double max_s)
{
	char found[PATH_MAX];
	const char *path = t->qmp;
	uint64_t start, samples = 0;
	size_t before = tg->obs.n;
	struct qmp *q;
	int err;

	if (!path) {
		if (qemu_proc_find_qmp(t->pid, found, sizeof(found))) {
			p_warn("QEMU pid %d has no QMP socket on its command line: no live CR3 samples "
			       "(give --qmp PATH or --cr3)", (int)t->pid);
			return 0;
		}
		path = found;
	}
	if (t->qmp) {
		err = qmp_open(path, 0, &q);
		if (err)
			return err;
	} else {
		/* Not fatal (e.g. libvirt holds its monitor): keep qmp_open's error line off stdout in -j mode,
		 * where stdout carries the result. */
		bool json = log_json;

		log_json = false;
		err = qmp_open(path, 0, &q);
		log_json = json;
		if (err) {
			p_warn("QMP socket %s unusable (%s): no live CR3 samples", path, strerror(-err));
			return 0;
		}
	}
	start = now_ms();
	qmp_defer_errors(q, true);   /* a socket that dies with QEMU: one line below, not one per layer */
	for (;;) {
		struct timespec d = { 0, QMP_SAMPLE_INTERVAL_MS * 1000000L };
		uint64_t elapsed;

		err = qmp_sample_observations(q, &tg->obs, 1, 0);
		if (err)
			break;
		samples++;
		elapsed = now_ms() - start;
		if (elapsed >= max_s * 1000 || (elapsed >= min_s * 1000 && obs_enough(&tg->obs, before)))
			break;
		while (nanosleep(&d, &d) && errno == EINTR)
			;
	}
	tg->sampled_s += (now_ms() - start) / 1000.0;
	/* QEMU gone? Then reading its memory says so (once) and the target fails with -ESRCH. */
	if (err && samples && tg->pm && tg->pm->nranges &&
	    physmem_read(tg->pm, tg->pm->ranges[0].start, &(uint64_t){ 0 }, 8) == -ESRCH) {
		qmp_close(q);
		return -ESRCH;
	}
	if (err && qmp_last_error(q)) {   /* NULL: not a transport error, printed where it happened */
		if (samples)
			p_warn("%s; going on with the %" PRIu64 " sample(s) taken", qmp_last_error(q), samples);
		else
			p_err("%s", qmp_last_error(q));
	}
	qmp_close(q);
	if (err && !samples)
		return err;
	p_dbg("QMP %s: %" PRIu64 " samples, %zu observations", path, samples, tg->obs.n - before);
	return 0;
}

int target_open(const struct target_opts *t, struct target *tg)
{
	double timeout_s = t->timeout_s >= 0 ? t->timeout_s : TARGET_DEFAULT_TIMEOUT_S;
	int err;

	memset(tg, 0, sizeof(*tg));
	if (t->pid > 0) {
		snprintf(tg->desc, sizeof(tg->desc), "QEMU pid %d", (int)t->pid);
		err = caps_check_read_qemu(t->pid);   /* least privilege: say up front what is missing */
		if (!err)
			err = physmem_open_qemu(t->pid, t->qmp, &tg->pm);
	} else if (t->core) {
		snprintf(tg->desc, sizeof(tg->desc), "core %s", t->core);
		err = physmem_open_elfcore(t->core, &tg->pm);
	} else {
		snprintf(tg->desc, sizeof(tg->desc), "raw image %s", t->raw);
		err = physmem_open_raw_at(t->raw, t->raw_base, &tg->pm);
	}
	if (err) {   /* the source printed why */
		p_dbg("cannot open %s: %s", tg->desc, strerror(-err));
		tg->pm = NULL;
		return err;
	}

	if (t->raw && !t->ncr3 && (err = raw_arm64_vcpu(tg)))   /* no registers: only an arm64 kernel's root shows */
		return err;
	if (physmem_aarch64(tg->pm))
		target_complete_arm64_registers(tg);
	err = add_cli_cr3s(tg, t);
	if (!err)
		err = add_source_vcpus(tg);
	/* BPF (KVM tracepoints of this QEMU's vCPUs) runs while QMP samples; its events wait in the ring. No
	 * KVM hook sees a TCG guest: loading the programs would only cost time. */
	struct vm_info vi;
	bool kvm = t->pid > 0 && (vm_info_read(t->pid, false, &vi) || strcmp(vi.accel, "tcg"));
	struct capture *cap = !err && kvm && timeout_s > 0 ? target_capture_begin(t->pid) : NULL;
	if (!err && (t->pid > 0 || t->qmp) && timeout_s > 0)
		err = sample_qmp(tg, t, timeout_s < TARGET_FIRST_SAMPLE_S ? timeout_s : TARGET_FIRST_SAMPLE_S, timeout_s);
	target_capture_end(cap, &tg->obs);
	if (err) {   /* QMP printed why; only ENOMEM is ours */
		if (err == -ENOMEM)
			p_err("gathering observations from %s: %s", tg->desc, strerror(-err));
		target_close(tg);
		return err;
	}
	p_dbg("%s: %zu observation(s)", tg->desc, tg->obs.n);
	size_t nv = obs_count_vcpus(&tg->obs);

	if (nv > VMOT_MAX_VCPUS)   /* never silently: the rest are not followed */
		p_warn("%s: %zu vCPUs observed; vmoffset-trace follows %d of them", tg->desc, nv, VMOT_MAX_VCPUS);
	return 0;
}

void target_close(struct target *tg)
{
	if (tg->pm)
		physmem_close(tg->pm);
	tg->pm = NULL;
	obs_free(&tg->obs);
}

void target_discovery_opts(const struct target_opts *t, struct discovery_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_bytes = t->max_bytes;
	o->progress = log_verbose > 0;
}

/* Roots a look explained with these mm/pgd offsets (all observed roots but the unexplained ones). */
struct root_set {
	uint64_t root[64];
	size_t n;
	int64_t pgd_off, mm_off;
};

/* Kept only while the looks agree on the offsets: roots explained with others say nothing now. */
static void note_explained_roots(const struct obs_set *o, const struct discovery_result *res, struct root_set *s)
{
	if (!res->mm_pgd.found || !offset_usable(&res->task[TF_MM]) || s->pgd_off != res->mm_pgd.offset ||
	    s->mm_off != res->task[TF_MM].offset)
		s->n = 0;
	if (!res->mm_pgd.found || !offset_usable(&res->task[TF_MM]) || res->nunexplained > 8)
		return;   /* the unexplained list is complete only up to 8 */
	s->pgd_off = res->mm_pgd.offset;
	s->mm_off = res->task[TF_MM].offset;
	for (size_t i = 0; i < o->n && s->n < 64; i++) {
		uint64_t root = cr3_root_of(res, o->v[i].cr3);
		bool skip = !root || o->v[i].source == OBS_CLI;

		for (uint32_t k = 0; k < res->nunexplained && !skip; k++)
			skip = res->unexplained[k] == root;
		for (size_t j = 0; j < s->n && !skip; j++)
			skip = s->root[j] == root;
		if (!skip)
			s->root[s->n++] = root;
	}
}

/* Observations of roots the answer left unexplained whose process exited between observation and reading:
 * roots the samples since fresh did not see again, and roots an earlier look with the same offsets
 * explained (before). Dropped from the set; the roots named in note. */
static size_t drop_gone_roots(struct obs_set *o, size_t fresh, const struct discovery_result *res,
			      const struct root_set *before, char *note, size_t len)
{
	size_t dropped = 0, w = 0, nl = 0;

	note[0] = 0;
	for (uint32_t k = 0; k < res->nunexplained && k < 8; k++) {
		uint64_t root = res->unexplained[k];
		bool again = false, was = false;

		for (size_t i = fresh; i < o->n && !again; i++)
			again = cr3_root_of(res, o->v[i].cr3) == root;
		/* an earlier look with the same offsets found its owner on the task list: the PGD page was
		 * handed from one short-lived process to the next, seen again but owned by none when read */
		for (size_t j = 0; j < before->n && !was; j++)
			was = before->root[j] == root;
		if (again && !was)
			continue;
		for (size_t i = 0; i < (was ? o->n : fresh); i++)
			if (cr3_root_of(res, o->v[i].cr3) == root)
				o->v[i].cr3 = 0;   /* marked; compacted below */
		dropped++;
		if (nl < len)
			nl += (size_t)snprintf(note + nl, len - nl, "%s%#" PRIx64, dropped > 1 ? ", " : "", root);
	}
	for (size_t i = 0; i < o->n; i++)
		if (o->v[i].cr3 || o->v[i].source == OBS_CLI)
			o->v[w++] = o->v[i];
	o->n = w;
	return dropped;
}

/* mm/active_mm tied (no kernel thread was running when memory was read: a saturated guest): watch what the
 * vCPUs run for a moment, through the per-CPU current-task pointer discovery found. */
static void watch_pairs(struct target *tg, struct discovery_result *res)
{
	uint64_t gs[VMOT_MAX_VCPUS];
	uint32_t ngs = 0;
	char what[256];

	for (size_t i = 0; i < tg->obs.n && ngs < VMOT_MAX_VCPUS; i++) {
		bool seen = false;

		for (uint32_t k = 0; k < ngs && !seen; k++)
			seen = gs[k] == tg->obs.v[i].gs_base;
		if (!seen && tg->obs.v[i].gs_base)
			gs[ngs++] = tg->obs.v[i].gs_base;
	}
	/* The watch races the guest for the microseconds a kernel thread runs. When the vCPU threads keep the
	 * host's cores busy, a reader at normal priority is off-CPU just then (measured on 2 cores with 2 more CPU
	 * hogs: 15 of 25 busy attaches missed every kernel thread in 1.5 s; at nice -20, 34 of 35 caught one).
	 * So this thread runs at the top of the normal priorities (not real time) for the watch, where allowed. */
	errno = 0;
	int nice_was = getpriority(PRIO_PROCESS, 0);   /* Linux: the calling thread */
	bool boosted = !errno && nice_was > -20 && !setpriority(PRIO_PROCESS, 0, -20);

	if (!boosted)
		p_dbg("pair watch at normal priority (%s)", errno ? strerror(errno) : "already high");
	if (pairs_watch(tg->pm, res, gs, ngs, (uint64_t)(TARGET_PAIR_WATCH_S * 1e9), what, sizeof(what)) > 0)
		p_dbg("pairs settled by watching the vCPUs: %s", what);
	if (boosted)
		setpriority(PRIO_PROCESS, 0, nice_was);
}

/* A slice sampled only to look at the unexplained roots again keeps just its observations of roots seen before
 * it: under churn every slice brings new short-lived processes, whose roots would be unexplained in turn by
 * the time memory is read, so counting them would never converge. */
static void keep_known_roots(struct obs_set *o, size_t fresh, const struct discovery_result *res)
{
	size_t w = fresh;

	for (size_t i = fresh; i < o->n; i++) {
		uint64_t root = cr3_root_of(res, o->v[i].cr3);
		bool known = false;

		for (size_t j = 0; j < fresh && !known; j++)
			known = cr3_root_of(res, o->v[j].cr3) == root;
		if (known)
			o->v[w++] = o->v[i];
	}
	o->n = w;
}

int target_sample_more(struct target *tg, const struct target_opts *t, double seconds)
{
	if (t->pid <= 0 || !tg->pm || tg->pm->source_err)
		return -ENODEV;
	return sample_qmp(tg, t, seconds, seconds);
}

/* An arm64 guest where no per-CPU slot named the vCPUs' tasks (none was found, none kept as holding running
 * tasks): the vCPUs had moved on from what they were sampled running (a vCPU read at EL1 may still have named
 * its task through SP_EL0, but not the others). Seen once in ~10 runs of a guest starting a process every half
 * second; a fresh sample names them. */
static bool no_current_task(const struct discovery_result *res)
{
	return res->arm64 && res->percpu_current == -1 && !res->nrunning_slots;
}

int target_discover_retry(const struct target_opts *t, struct target *tg, const struct discovery_opts *d,
			  struct discovery_result *res, int err)
{
	double timeout_s = t->timeout_s >= 0 ? t->timeout_s : TARGET_DEFAULT_TIMEOUT_S;
	char retried[sizeof(res->retried)] = "", gone[160];
	struct root_set before = { .n = 0, .pgd_off = -1, .mm_off = -1 };
	unsigned tries = 0;
	size_t dropped_total = 0;

	/* only a live guest can be looked at again, and only within its sampling time; also when no per-CPU slot
	 * named the vCPUs' tasks (each vCPU had moved on to a process it was not sampled running) */
	while ((err == -ENOENT || (!err && !res->validated) || (!err && no_current_task(res))) && t->pid > 0 &&
	       tg->pm && !tg->pm->source_err && tg->sampled_s + 0.05 < timeout_s) {
		double slice = timeout_s - tg->sampled_s < TARGET_RETRY_SAMPLE_S ? timeout_s - tg->sampled_s
										 : TARGET_RETRY_SAMPLE_S;
		size_t fresh = tg->obs.n, dropped = 0;
		bool roots_only = !err && res->nunexplained;

		note_explained_roots(&tg->obs, res, &before);
		if (sample_qmp(tg, t, slice, slice) || tg->obs.n == fresh)
			break;
		tries++;
		if (roots_only) {
			keep_known_roots(&tg->obs, fresh, res);
			dropped = drop_gone_roots(&tg->obs, fresh, res, &before, gone, sizeof(gone));
			dropped_total += dropped;
		}
		char what[120] = "";
		size_t wl = 0;

		for (int f = 0; f < TF_NR && err; f++)   /* which members the last look left open */
			if (!offset_usable(&res->task[f]) && wl < sizeof(what))
				wl += (size_t)snprintf(what + wl, sizeof(what) - wl, "%s%s", wl ? ", " : "undetermined: ",
						       task_field_names[f]);
		if (err && !wl)
			snprintf(what, sizeof(what), "undetermined: %.100s", res->reason);
		const char *why = err ? what : res->validated ? "no per-CPU slot named the vCPUs' tasks" : res->reason;

		snprintf(retried, sizeof(retried), "%.120s; sampled %.2f s more and read again%s%s%s (attempt %u)", why,
			 slice, dropped ? ": root(s) " : "", dropped ? gone : "",
			 dropped ? " gone (not seen again, or owned by an earlier look's process that exited)" : "",
			 tries + 1);
		p_dbg("retry: %s", retried);
		err = discover_offsets(tg->pm, &tg->obs, d, res);
	}
	if (tries)
		snprintf(res->retried, sizeof(res->retried), "%s", retried);
	/* dropping roots as exited must not be what validates: wrong offsets explain next to nothing, and a guest
	 * whose roots mostly vanished has not shown enough to judge them. Explained counts every root a look with
	 * these offsets explained (a slow host's later slices see only a few processes each). */
	if (!err && res->validated && dropped_total) {
		note_explained_roots(&tg->obs, res, &before);
		size_t explained = before.n > res->roots_explained ? before.n : res->roots_explained;
		if (dropped_total > explained) {
			res->validated = false;
			snprintf(res->reason, sizeof(res->reason), "%zu observed CR3 roots dropped as exited, more than the "
				 "%zu explained", dropped_total, explained);
		}
	}
	if (!err && t->pid > 0 && tg->pm && !tg->pm->source_err)
		watch_pairs(tg, res);
	return err;
}

int target_discover(const struct target_opts *t, struct target *tg, struct discovery_result *res)
{
	struct discovery_opts dopts;
	int err;

	memset(res, 0, sizeof(*res));
	err = target_open(t, tg);
	if (err)
		return err;
	target_discovery_opts(t, &dopts);
	err = discover_offsets(tg->pm, &tg->obs, &dopts, res);
	return target_discover_retry(t, tg, &dopts, res, err);
}

static int first_leaf(uint64_t va, const struct x86_map *map, void *arg)
{
	*(uint64_t *)arg = va;
	return 1;
}

int target_kaslr_shift(struct physmem *pm, const struct discovery_result *res, uint64_t *shift)
{
	uint64_t va = 0;
	int err;

	if (!res->kernel_cr3)
		return -ENOENT;
	err = x86_walk(pm, res->kernel_cr3, res->la57, KERNEL_TEXT_START, KERNEL_TEXT_START + KERNEL_IMAGE_SPAN,
		       1, first_leaf, &va);
	if (err < 0 || !va)
		return -ENOENT;
	*shift = (va & ~0x1fffffULL) - KERNEL_TEXT_START;
	return 0;
}
