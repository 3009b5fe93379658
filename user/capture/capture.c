/* Capture loader and ring-buffer consumer (libbpf-bootstrap shape: open → set rodata/autoload → load → attach). */
#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "capture/capture.h"
#include "capture/internal.h"
#include "capture.skel.h"
#include "common/log.h"

_Static_assert(sizeof(struct capture_event) == 80, "struct capture_event is shared with BPF");
_Static_assert(sizeof(struct capture_memslot_rec) == 40, "struct capture_memslot_rec is shared with BPF");
_Static_assert(sizeof(struct capture_counters) == 8 * (6 + CAP_HOOK_NR), "struct capture_counters");

#define GS_SLOTS 64

struct capture {
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	struct capture_hook_info hooks[CAP_HOOK_NR];
	struct bpf_program *progs[CAP_HOOK_NR];
	struct bpf_link *links[CAP_HOOK_NR];
	int ncpus;
	bool filtered;
	/* poll state */
	capture_cb cb;
	void *cb_ctx;
	int cb_ret;
	int handled;
	/* last GS_BASE write per (tgid, vcpu), for observation.gs_base */
	struct { uint32_t tgid, vcpu; uint64_t gs; bool used; } gs[GS_SLOTS];
};

static const char *const hook_names[CAP_HOOK_NR] = {
	[CAP_HOOK_EXIT] = "kvm_exit",     [CAP_HOOK_ENTRY] = "kvm_entry", [CAP_HOOK_CR] = "kvm_cr",
	[CAP_HOOK_EMULATE] = "kvm_emulate_insn", [CAP_HOOK_MMIO] = "kvm_mmio", [CAP_HOOK_PIO] = "kvm_pio",
	[CAP_HOOK_MSR] = "kvm_msr",
};

const char *capture_hook_name(unsigned int hook)
{
	return hook < CAP_HOOK_NR ? hook_names[hook] : "?";
}

const char *capture_kind_name(unsigned int kind)
{
	static const char *const names[CAP_EV_KIND_NR] = {
		[CAP_EV_EXIT] = "exit", [CAP_EV_CR] = "cr", [CAP_EV_EMULATE] = "emulate",
		[CAP_EV_CR3_WRITE] = "cr3_write", [CAP_EV_MMIO] = "mmio", [CAP_EV_PIO] = "pio", [CAP_EV_MSR] = "msr",
	};

	return kind < CAP_EV_KIND_NR && names[kind] ? names[kind] : "?";
}

const char *capture_cr3_src_name(unsigned int src)
{
	static const char *const names[CR3_SRC_NR] = {
		[CR3_SRC_NONE] = "none", [CR3_SRC_KVM_CR] = "kvm_cr", [CR3_SRC_SVM_VMCB] = "svm_vmcb",
		[CR3_SRC_VMX_CACHE] = "vmx_cache", [CR3_SRC_ARCH] = "arch_cr3", [CR3_SRC_INSN_GPR] = "insn_gpr",
	};

	return src < CR3_SRC_NR ? names[src] : "?";
}

/* Exit reason names as Linux prints them (VMX_EXIT_REASONS / SVM_EXIT_REASONS in the uapi headers), so a
 * report reads like `perf kvm stat`. VMX: the basic reason is the low 16 bits of exit_reason.full. */
const char *capture_exit_reason_name(unsigned int isa, unsigned int reason, char *buf, size_t len)
{
	static const char *const vmx[] = {
		[0] = "EXCEPTION_NMI", [1] = "EXTERNAL_INTERRUPT", [2] = "TRIPLE_FAULT", [3] = "INIT_SIGNAL",
		[4] = "SIPI_SIGNAL", [7] = "INTERRUPT_WINDOW", [8] = "NMI_WINDOW", [9] = "TASK_SWITCH", [10] = "CPUID",
		[12] = "HLT", [13] = "INVD", [14] = "INVLPG", [15] = "RDPMC", [16] = "RDTSC", [18] = "VMCALL",
		[19] = "VMCLEAR", [20] = "VMLAUNCH", [21] = "VMPTRLD", [22] = "VMPTRST", [23] = "VMREAD",
		[24] = "VMRESUME", [25] = "VMWRITE", [26] = "VMOFF", [27] = "VMON", [28] = "CR_ACCESS",
		[29] = "DR_ACCESS", [30] = "IO_INSTRUCTION", [31] = "MSR_READ", [32] = "MSR_WRITE",
		[33] = "INVALID_STATE", [34] = "MSR_LOAD_FAIL", [36] = "MWAIT_INSTRUCTION", [37] = "MONITOR_TRAP_FLAG",
		[39] = "MONITOR_INSTRUCTION", [40] = "PAUSE_INSTRUCTION", [41] = "MCE_DURING_VMENTRY",
		[43] = "TPR_BELOW_THRESHOLD", [44] = "APIC_ACCESS", [45] = "EOI_INDUCED", [46] = "GDTR_IDTR",
		[47] = "LDTR_TR", [48] = "EPT_VIOLATION", [49] = "EPT_MISCONFIG", [50] = "INVEPT", [51] = "RDTSCP",
		[52] = "PREEMPTION_TIMER", [53] = "INVVPID", [54] = "WBINVD", [55] = "XSETBV", [56] = "APIC_WRITE",
		[57] = "RDRAND", [58] = "INVPCID", [59] = "VMFUNC", [60] = "ENCLS", [61] = "RDSEED", [62] = "PML_FULL",
		[63] = "XSAVES", [64] = "XRSTORS", [67] = "UMWAIT", [68] = "TPAUSE", [74] = "BUS_LOCK", [75] = "NOTIFY",
	};
	static const struct { unsigned int code; const char *name; } svm[] = {
		{ 0x060, "intr" }, { 0x061, "nmi" }, { 0x062, "smi" }, { 0x063, "init" }, { 0x064, "vintr" },
		{ 0x065, "cr0_sel_write" }, { 0x06e, "rdtsc" }, { 0x06f, "rdpmc" }, { 0x070, "pushf" },
		{ 0x071, "popf" }, { 0x072, "cpuid" }, { 0x073, "rsm" }, { 0x074, "iret" }, { 0x075, "swint" },
		{ 0x076, "invd" }, { 0x077, "pause" }, { 0x078, "hlt" }, { 0x079, "invlpg" }, { 0x07a, "invlpga" },
		{ 0x07b, "io" }, { 0x07c, "msr" }, { 0x07d, "task_switch" }, { 0x07e, "ferr_freeze" },
		{ 0x07f, "shutdown" }, { 0x080, "vmrun" }, { 0x081, "hypercall" }, { 0x082, "vmload" },
		{ 0x083, "vmsave" }, { 0x084, "stgi" }, { 0x085, "clgi" }, { 0x086, "skinit" }, { 0x087, "rdtscp" },
		{ 0x088, "icebp" }, { 0x089, "wbinvd" }, { 0x08a, "monitor" }, { 0x08b, "mwait" },
		{ 0x08d, "xsetbv" }, { 0x08e, "rdpru" }, { 0x08f, "efer_write_trap" }, { 0x0a5, "invpcid" },
		{ 0x400, "npf" }, { 0x401, "avic_incomplete_ipi" }, { 0x402, "avic_unaccelerated_access" },
		{ 0x403, "vmgexit" },
	};

	if (isa == 1) {
		unsigned int basic = reason & 0xffff;

		if (basic < sizeof(vmx) / sizeof(vmx[0]) && vmx[basic])
			return vmx[basic];
	} else if (isa == 2) {
		for (size_t i = 0; i < sizeof(svm) / sizeof(svm[0]); i++)
			if (svm[i].code == reason)
				return svm[i].name;
		if (reason < 0x20) {   /* CR0..15 read, then write */
			snprintf(buf, len, "%s_cr%u", reason < 0x10 ? "read" : "write", reason & 0xf);
			return buf;
		}
		if (reason >= 0x40 && reason < 0x60) {
			snprintf(buf, len, "excp_%u", reason - 0x40);
			return buf;
		}
	}
	snprintf(buf, len, "%u", reason);
	return buf;
}

bool capture_event_observation(const struct capture_event *ev, struct observation *obs)
{
	memset(obs, 0, sizeof(*obs));
	obs->time_ns = ev->time_ns;
	obs->vcpu = ev->vcpu_id;
	obs->source = OBS_BPF;
	if (ev->kind == CAP_EV_CR3_WRITE) {
		/* the written value only if the source register was read; vcpu->arch.cr3 is the old one */
		if (!(ev->flags & CAP_F_AUX_VALID))
			return false;
		obs->cr3 = ev->aux;
		return true;
	}
	if (!(ev->flags & CAP_F_CR3_VALID) || ev->cr3_src == CR3_SRC_NONE || ev->cr3_src >= CR3_SRC_NR)
		return false;
	obs->cr3 = ev->cr3;
	return true;
}

int capture_check_privilege(const char **missing)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {};
	uint64_t eff;

	*missing = NULL;
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	eff = data[0].effective | ((uint64_t)data[1].effective << 32);
#define HAS(cap) (eff & (1ULL << (cap)))
	if (HAS(CAP_SYS_ADMIN))
		return 0;
	if (!HAS(CAP_BPF) && !HAS(CAP_PERFMON))
		*missing = "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)";
	else if (!HAS(CAP_BPF))
		*missing = "CAP_BPF (or CAP_SYS_ADMIN)";
	else if (!HAS(CAP_PERFMON))
		*missing = "CAP_PERFMON (or CAP_SYS_ADMIN)";
#undef HAS
	return *missing ? -EPERM : 0;
}

static struct bpf_program *prog_by_name(struct capture_bpf *skel, const char *name)
{
	return name ? bpf_object__find_program_by_name(skel->obj, name) : NULL;
}

/* Every tracepoint program off; the chosen ones back on. */
static void choose_programs(struct capture *c, const struct kvm_btf *kb, uint32_t want, bool baseline)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, c->skel->obj)
		bpf_program__set_autoload(p, false);
	for (int h = 0; h < CAP_HOOK_NR; h++) {
		const char *v = capture_variant(kb, h);

		if (baseline)
			v = h == CAP_HOOK_EMULATE && v ? "kvm_emulate_insn_baseline" : NULL;

		c->hooks[h].name = hook_names[h];
		c->hooks[h].present = v != NULL;
		if (!v || !(want & (1u << h)))
			continue;
		c->hooks[h].variant = v;
		c->progs[h] = prog_by_name(c->skel, v);
		if (c->progs[h])
			bpf_program__set_autoload(c->progs[h], true);
	}
}

static int gs_slot(struct capture *c, uint32_t tgid, uint32_t vcpu, bool create)
{
	int free_slot = -1;

	for (int i = 0; i < GS_SLOTS; i++) {
		if (c->gs[i].used && c->gs[i].tgid == tgid && c->gs[i].vcpu == vcpu)
			return i;
		if (!c->gs[i].used && free_slot < 0)
			free_slot = i;
	}
	if (!create || free_slot < 0)
		return -1;
	c->gs[free_slot].used = true;
	c->gs[free_slot].tgid = tgid;
	c->gs[free_slot].vcpu = vcpu;
	c->gs[free_slot].gs = 0;
	return free_slot;
}

static int on_ringbuf(void *ctx, void *data, size_t size)
{
	struct capture *c = ctx;
	const struct capture_event *ev = data;
	struct observation obs;
	bool have;
	int i;

	if (size < sizeof(*ev))
		return 0;
	if (ev->kind == CAP_EV_MSR && (ev->flags & CAP_F_WRITE) && ev->value == 0xc0000101 /* MSR_GS_BASE */) {
		i = gs_slot(c, ev->tgid, ev->vcpu_id, true);
		if (i >= 0)
			c->gs[i].gs = ev->aux;
	}
	have = capture_event_observation(ev, &obs);
	if (have) {
		i = gs_slot(c, ev->tgid, ev->vcpu_id, false);
		if (i >= 0)
			obs.gs_base = c->gs[i].gs;
	}
	c->handled++;
	if (c->cb) {
		int r = c->cb(c->cb_ctx, ev, have ? &obs : NULL);

		if (r < 0)
			return c->cb_ret = r;   /* libbpf stops on a negative return */
	}
	return 0;
}

int capture_open(const struct capture_opts *opts, struct capture **out)
{
	static const struct capture_opts defaults = { 0 };
	struct kvm_btf kb;
	struct capture *c;
	const char *missing;
	uint32_t want;
	int err, nattached = 0;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	err = capture_check_privilege(&missing);
	if (err) {
		p_dbg("capture needs %s", missing ? missing : "capabilities");
		return err;
	}
	err = kvm_btf_load(&kb);
	if (err)
		return -EOPNOTSUPP;
	c = calloc(1, sizeof(*c));
	if (!c) {
		kvm_btf_free(&kb);
		return -ENOMEM;
	}
	c->ncpus = libbpf_num_possible_cpus();
	c->skel = capture_bpf__open();
	if (!c->skel) {
		err = -errno;
		goto fail;
	}
	want = opts->hooks ? opts->hooks : (1u << CAP_HOOK_NR) - 1;
	choose_programs(c, &kb, want, opts->baseline);
	c->skel->rodata->filter_vm = opts->npids > 0;
	c->skel->rodata->dedupe = !opts->no_dedupe;
	c->skel->rodata->emit_emulate = !opts->no_emulate;
	c->skel->rodata->emit_io = !opts->no_io;
	c->skel->rodata->track_exits = !opts->no_exit_stats;
	c->filtered = opts->npids > 0;
	if (opts->ringbuf_kib) {
		err = bpf_map__set_max_entries(c->skel->maps.events, opts->ringbuf_kib * 1024u);
		if (err)
			goto fail;
	}
	/* wake the consumer when a quarter of the ring waits, not per event (capture_poll's timeout does the rest) */
	c->skel->rodata->wakeup_bytes = bpf_map__max_entries(c->skel->maps.events) / 4;
	kvm_btf_free(&kb);
	err = capture_bpf__load(c->skel);
	if (err) {
		p_dbg("loading the capture BPF object failed: %s", strerror(-err));
		goto fail;
	}
	for (size_t i = 0; i < opts->npids; i++) {
		err = capture_add_vm(c, opts->pids[i]);
		if (err)
			goto fail;
	}
	for (int h = 0; h < CAP_HOOK_NR; h++) {
		if (!c->progs[h])
			continue;
		c->links[h] = bpf_program__attach(c->progs[h]);
		if (!c->links[h]) {
			c->hooks[h].err = -errno;
			p_dbg("attach %s: %s", c->hooks[h].variant, strerror(errno));
			continue;
		}
		c->hooks[h].attached = true;
		nattached++;
	}
	if (!nattached) {
		err = -ENOENT;
		goto fail;
	}
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_ringbuf, c, NULL);
	if (!c->rb) {
		err = -errno;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	kvm_btf_free(&kb);
	capture_close(c);
	return err < 0 ? err : -EINVAL;
}

int capture_add_vm(struct capture *c, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;

	size_t nfast = sizeof(c->skel->bss->vm_fast) / sizeof(c->skel->bss->vm_fast[0]);

	if (!c->filtered || pid <= 0)
		return -EINVAL;
	for (size_t i = 0; i < nfast; i++) {
		if (c->skel->bss->vm_fast[i] == key)
			return 0;
		if (!c->skel->bss->vm_fast[i]) {
			c->skel->bss->vm_fast[i] = key;
			return 0;
		}
	}
	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.vm_tgids), &key, &one, BPF_ANY))
		return -errno;
	c->skel->bss->vm_overflow = true;
	return 0;
}

int capture_poll(struct capture *c, int timeout_ms, capture_cb cb, void *ctx)
{
	int err;

	c->cb = cb;
	c->cb_ctx = ctx;
	c->cb_ret = 0;
	c->handled = 0;
	/* The BPF side wakes a waiting consumer only for a quarter-full ring (wakeup_bytes), so a poll that
	 * timed out consumes what came in meanwhile. */
	err = timeout_ms == 0 ? ring_buffer__consume(c->rb) : ring_buffer__poll(c->rb, timeout_ms);
	if (timeout_ms != 0 && err >= 0 && !c->cb_ret) {
		int more = ring_buffer__consume(c->rb);

		err = more < 0 ? more : err + more;
	}
	if (c->cb_ret)
		return c->cb_ret;
	if (err == -EINTR)
		return c->handled;
	return err < 0 ? err : c->handled;
}

int capture_counters_read(struct capture *c, struct capture_counters *sum)
{
	struct capture_counters *per;
	__u32 zero = 0;

	memset(sum, 0, sizeof(*sum));
	per = calloc((size_t)c->ncpus, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.counters), &zero, per)) {
		int err = -errno;

		free(per);
		return err;
	}
	for (int i = 0; i < c->ncpus; i++) {
		sum->seen += per[i].seen;
		sum->filtered += per[i].filtered;
		sum->deduped += per[i].deduped;
		sum->emitted += per[i].emitted;
		sum->dropped += per[i].dropped;
		sum->cr3_writes += per[i].cr3_writes;
		for (int h = 0; h < CAP_HOOK_NR; h++)
			sum->hook_hits[h] += per[i].hook_hits[h];
	}
	free(per);
	return 0;
}

const struct capture_hook_info *capture_hook(const struct capture *c, enum capture_hook h)
{
	return (unsigned int)h < CAP_HOOK_NR ? &c->hooks[h] : NULL;
}

int capture_prog_stats(const struct capture *c, enum capture_hook h, uint64_t *run_cnt, uint64_t *run_time_ns)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	*run_cnt = *run_time_ns = 0;
	if ((unsigned int)h >= CAP_HOOK_NR || !c->progs[h] || !c->hooks[h].attached)
		return -ENOENT;
	if (bpf_obj_get_info_by_fd(bpf_program__fd(c->progs[h]), &info, &len))
		return -errno;
	*run_cnt = info.run_cnt;
	*run_time_ns = info.run_time_ns;
	return 0;
}

int capture_foreach_exit(struct capture *c, int (*fn)(void *ctx, const struct capture_exit_key *k, uint64_t n),
			 void *ctx)
{
	int fd = bpf_map__fd(c->skel->maps.exit_counts);
	struct capture_exit_key k, next, *prev = NULL;
	__u64 n;
	int r;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (!bpf_map_lookup_elem(fd, &next, &n)) {
			r = fn(ctx, &next, n);
			if (r)
				return r;
		}
		k = next;
		prev = &k;
	}
	return errno == ENOENT ? 0 : -errno;
}

int capture_foreach_latency(struct capture *c,
			    int (*fn)(void *ctx, const struct capture_vcpu_key *k, const struct capture_vcpu_lat *l),
			    void *ctx)
{
	int fd = bpf_map__fd(c->skel->maps.vcpu_lat);
	struct capture_vcpu_key k, next, *prev = NULL;
	struct capture_vcpu_lat l;
	int r;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (!bpf_map_lookup_elem(fd, &next, &l)) {
			r = fn(ctx, &next, &l);
			if (r)
				return r;
		}
		k = next;
		prev = &k;
	}
	return errno == ENOENT ? 0 : -errno;
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	for (int h = 0; h < CAP_HOOK_NR; h++)
		bpf_link__destroy(c->links[h]);
	capture_bpf__destroy(c->skel);
	free(c);
}
