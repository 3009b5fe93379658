// SPDX-License-Identifier: GPL-2.0
/*
 * Capture: guest CR3 values (and when each vCPU switched page tables) from KVM's tracepoints.
 *
 * Programs (user space decides which to load from BTF, see user/capture/capture.c):
 *   tp_btf/kvm_exit          two prototypes: (vcpu, isa) since ~5.12, (exit_reason, vcpu, isa) before
 *   tp_btf/kvm_entry         two prototypes: (vcpu[, immediate_exit]) since 5.8, (vcpu_id) before
 *   tp_btf/kvm_cr            (rw, cr, val): CR3 writes KVM intercepts (shadow paging, no EPT/NPT)
 *   tp_btf/kvm_emulate_insn  (vcpu, failed): decode the emulator's instruction bytes for mov-to-CR3
 *   tp_btf/kvm_mmio, kvm_pio, kvm_msr: no vCPU argument; the vCPU is the one last seen on this thread
 *   iter/task_file           memslots of a QEMU process (its kvm-vm file -> struct kvm)
 *
 * Per vCPU thread the last (cr3, kind) is kept and an event is emitted only when it changes (dedupe); the
 * number suppressed rides on the next event. CR3 writes (kvm_cr, decoded mov-to-CR3) are always emitted;
 * one whose value is known also sets that state's CR3, so the plain event after it is not news. Counters are
 * per CPU.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "capture.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Options, set by user space between open and load. */
const volatile bool filter_vm = false;          /* only tgids in vm_tgids */
const volatile bool dedupe = true;
const volatile bool emit_emulate = true;        /* EMULATE events (CR3_WRITE always) */
const volatile bool emit_io = true;             /* MMIO / PIO / MSR events */
const volatile bool track_exits = true;         /* exit counts and exit->entry latency */
/* Wake the consumer only once this many bytes wait (0: libbpf's default, a wakeup whenever the consumer had
 * caught up). A wakeup per event is an irq_work each time; consumers here poll with a timeout anyway (the
 * tracer every tick), so events wait at most that long. */
const volatile __u32 wakeup_bytes = 0;

/* Memslot iterator target (0 = every process); written through skel->bss before the iterator is read. */
__u32 memslot_tgid = 0;

/* VM filter: the first CAP_FAST_VMS tgids live here (a few compares instead of a hash lookup on every event);
 * more go to vm_tgids. Written by user space through the mmapped .bss. */
#define CAP_FAST_VMS 4
__u32 vm_fast[CAP_FAST_VMS] = {};
bool vm_overflow = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} vm_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_counters);
} counters SEC(".maps");

/*
 * Per vCPU thread. vcpu is the struct kvm_vcpu last seen on the thread (a QEMU vCPU thread runs one vCPU), used
 * by hooks without a vCPU argument. Not kvm_running_vcpu: that per-CPU variable is in BTF but usually not in
 * kallsyms (CONFIG_KALLSYMS_ALL=n), and an unresolvable ksym fails the whole object's load.
 */
struct cap_vcpu {
	__u64 cr3;
	__u64 exit_ts;
	__u64 vcpu;
	__u32 kind;
	__u32 repeat;
	__u32 vcpu_id;
	__u32 pad;
};

/* Task local storage (5.11+, like module BTF that tp_btf on kvm.ko needs): a few ns, no hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cap_vcpu);
} vcpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);   /* (VM, vCPU, reason): ~70 VMX reasons x vCPUs of the traced VMs */
	__type(key, struct capture_exit_key);
	__type(value, __u64);
} exit_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct capture_vcpu_key);
	__type(value, struct capture_vcpu_lat);
} vcpu_lat SEC(".maps");

/* Everything an event needs besides the instruction bytes. */
struct ev_args {
	__u64 cr3, value, aux;
	__u32 kind, cr3_src, flags;
	bool nodedupe;
};

static __always_inline struct capture_counters *ctrs(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

/* Count the hook; false if the event is not from a traced VM. */
static __always_inline bool enter(struct capture_counters *c, int hook, __u32 tgid)
{
	if (!c)
		return false;
	c->seen++;
	if (hook >= 0 && hook < CAP_HOOK_NR)
		c->hook_hits[hook]++;
	if (!filter_vm)
		return true;
	for (int i = 0; i < CAP_FAST_VMS; i++)
		if (vm_fast[i] == tgid)
			return true;
	if (vm_overflow && bpf_map_lookup_elem(&vm_tgids, &tgid))
		return true;
	c->filtered++;
	return false;
}

/* State of the calling vCPU thread (created zeroed: kind 0, no vCPU known); vcpu (may be NULL) refreshes the
 * remembered kvm_vcpu. */
static __always_inline struct cap_vcpu *get_vcpu(struct kvm_vcpu *vcpu)
{
	struct cap_vcpu *s = bpf_task_storage_get(&vcpus, bpf_get_current_task_btf(), NULL,
						  BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!s)
		return NULL;
	if (vcpu && s->vcpu != (__u64)vcpu) {
		s->vcpu = (__u64)vcpu;
		s->vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);
	}
	return s;
}

/* vcpu->arch.cr3 if KVM's register cache says it is current; vcpu kept in a map (probe reads). */
static __always_inline bool arch_cr3(struct kvm_vcpu *vcpu, __u64 *cr3)
{
	int bit = vmot_exreg_cr3();

	if (!vcpu || (bit >= 0 && !vmot_reg_available(vcpu, bit)))
		return false;
	*cr3 = BPF_CORE_READ(vcpu, arch.cr3);
	return true;
}

/* The same for a tracepoint argument: direct loads. */
static __always_inline bool arch_cr3_arg(struct kvm_vcpu *vcpu, __u64 *cr3)
{
	int bit = vmot_exreg_cr3();

	if (bit >= 0 && !vmot_reg_available_arg(vcpu, bit))
		return false;
	*cr3 = vcpu->arch.cr3;
	return true;
}

static __always_inline void emit(struct capture_counters *c, __u64 id, struct cap_vcpu *s, struct ev_args *a,
				 const __u8 *insn, __u32 insn_len)
{
	struct capture_event *e;
	__u32 repeat = 0;

	if (s) {
		if (dedupe && !a->nodedupe && s->kind == a->kind && s->cr3 == a->cr3) {
			s->repeat++;
			c->deduped++;
			return;
		}
		repeat = s->repeat;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->dropped++;
		return;   /* state unchanged: the next event on this vCPU is emitted */
	}
	e->time_ns = bpf_ktime_get_ns();
	e->cr3 = a->cr3;
	e->value = a->value;
	e->aux = a->aux;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->vcpu_id = s && s->vcpu ? s->vcpu_id : CAP_VCPU_UNKNOWN;
	e->kind = a->kind;
	e->cr3_src = a->cr3_src;
	e->flags = a->flags;
	e->repeat = repeat;
	e->insn_len = 0;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	if (insn && insn_len <= CAP_INSN_MAX) {
		__builtin_memcpy(e->insn, insn, CAP_INSN_MAX);
		e->insn_len = insn_len;
	} else {
		__builtin_memset(e->insn, 0, sizeof(e->insn));
	}
	bpf_ringbuf_submit(e, !wakeup_bytes ? 0 :
			   bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										 : BPF_RB_NO_WAKEUP);
	c->emitted++;
	if (s) {
		s->repeat = 0;
		if (a->kind == CAP_EV_CR3_WRITE) {
			/* the write reported the new CR3 (when its value is known): the plain event that follows
			 * with that CR3 is not news; the kind of the plain stream stays */
			if (a->flags & CAP_F_AUX_VALID)
				s->cr3 = a->aux & ~(1ULL << 63);   /* bit 63 (no PCID flush) is not part of CR3 */
		} else {
			s->kind = a->kind;
			s->cr3 = a->cr3;
		}
	}
}

/* ---- kvm_exit / kvm_entry ---- */

static __always_inline int on_exit(struct kvm_vcpu *vcpu, __u32 reason, __u32 isa)
{
	struct capture_counters *c = ctrs();
	__u64 id = bpf_get_current_pid_tgid();
	struct ev_args a = { .kind = CAP_EV_EXIT, .value = reason, .aux = isa };
	struct cap_vcpu *s;
	int src;

	if (!enter(c, CAP_HOOK_EXIT, id >> 32))
		return 0;
	s = get_vcpu(vcpu);
	if (track_exits) {
		struct capture_exit_key k = { .tgid = id >> 32, .vcpu_id = s && s->vcpu ? s->vcpu_id : CAP_VCPU_UNKNOWN,
					      .isa = isa, .reason = reason };
		__u64 one = 1, *n = bpf_map_lookup_elem(&exit_counts, &k);

		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&exit_counts, &k, &one, BPF_NOEXIST);
		if (s)
			s->exit_ts = bpf_ktime_get_ns();
	}
	src = vmot_exit_cr3(vcpu, isa, &a.cr3);
	if (src) {
		a.cr3_src = src;
		a.flags = CAP_F_CR3_VALID;
	}
	emit(c, id, s, &a, NULL, 0);
	return 0;
}

SEC("tp_btf/kvm_exit")
int BPF_PROG(kvm_exit_vcpu, struct kvm_vcpu *vcpu, __u32 isa)
{
	return on_exit(vcpu, vmot_exit_reason(vcpu, isa), isa);
}

/* Before ~5.12 the reason came first: TP_PROTO(unsigned int exit_reason, struct kvm_vcpu *vcpu, u32 isa). */
SEC("tp_btf/kvm_exit")
int BPF_PROG(kvm_exit_reason, unsigned int reason, struct kvm_vcpu *vcpu, __u32 isa)
{
	return on_exit(vcpu, reason, isa);
}

static __always_inline int on_entry(struct kvm_vcpu *vcpu, __u32 vcpu_id)
{
	struct capture_counters *c = ctrs();
	__u64 id = bpf_get_current_pid_tgid(), delta;
	struct capture_vcpu_key k;
	struct capture_vcpu_lat *l;
	struct cap_vcpu *s;
	__u32 slot = 0;

	if (!enter(c, CAP_HOOK_ENTRY, id >> 32))
		return 0;
	s = get_vcpu(vcpu);
	if (!track_exits || !s || !s->exit_ts)
		return 0;
	delta = bpf_ktime_get_ns() - s->exit_ts;
	s->exit_ts = 0;
	k.tgid = id >> 32;
	k.vcpu_id = vcpu ? s->vcpu_id : vcpu_id;
	l = bpf_map_lookup_elem(&vcpu_lat, &k);
	if (!l) {
		struct capture_vcpu_lat zero = {};

		bpf_map_update_elem(&vcpu_lat, &k, &zero, BPF_NOEXIST);
		l = bpf_map_lookup_elem(&vcpu_lat, &k);
		if (!l)
			return 0;
	}
	for (__u64 v = delta; v > 1 && slot < CAP_LAT_SLOTS - 1; v >>= 1)
		slot++;
	__sync_fetch_and_add(&l->count, 1);
	__sync_fetch_and_add(&l->total_ns, delta);
	if (delta > l->max_ns)
		l->max_ns = delta;
	if (slot < CAP_LAT_SLOTS)
		__sync_fetch_and_add(&l->log2_ns[slot], 1);
	return 0;
}

SEC("tp_btf/kvm_entry")
int BPF_PROG(kvm_entry_vcpu, struct kvm_vcpu *vcpu)
{
	return on_entry(vcpu, 0);
}

/* Before 5.8: TP_PROTO(unsigned int vcpu_id). */
SEC("tp_btf/kvm_entry")
int BPF_PROG(kvm_entry_id, unsigned int vcpu_id)
{
	return on_entry(NULL, vcpu_id);
}

/* ---- kvm_cr: the value written, where KVM intercepts CR3 loads ---- */

SEC("tp_btf/kvm_cr")
int BPF_PROG(kvm_cr, unsigned int rw, unsigned int cr, unsigned long val)
{
	struct capture_counters *c = ctrs();
	__u64 id = bpf_get_current_pid_tgid();
	struct ev_args a = { .kind = CAP_EV_CR };

	if (!enter(c, CAP_HOOK_CR, id >> 32))
		return 0;
	if (cr != 3 || rw != 1)
		return 0;
	a.cr3 = val;
	a.value = val;
	a.aux = cr | (rw << 8);
	a.cr3_src = CR3_SRC_KVM_CR;
	a.flags = CAP_F_CR3_VALID | CAP_F_WRITE;
	a.nodedupe = true;   /* every write is a switch */
	emit(c, id, get_vcpu(NULL), &a, NULL, 0);
	return 0;
}

/* ---- kvm_emulate_insn: decode what the emulator fetched ---- */

SEC("tp_btf/kvm_emulate_insn")
int BPF_PROG(kvm_emulate_insn, struct kvm_vcpu *vcpu, __u8 failed)
{
	struct capture_counters *c = ctrs();
	__u64 id = bpf_get_current_pid_tgid();
	struct ev_args a = { .kind = CAP_EV_EMULATE };
	struct x86_emulate_ctxt *ctxt;
	__u8 insn[CAP_INSN_MAX] = {};
	__u8 *start, *end;
	__u32 len = 0;
	int cr = -1, gpr = 0;

	if (!enter(c, CAP_HOOK_EMULATE, id >> 32))
		return 0;
	if (failed)   /* the same instruction was already seen when its emulation started */
		return 0;
	ctxt = vmot_emulate_ctxt(vcpu);
	if (ctxt && vmot_maybe_mov_cr(ctxt)) {
		/* x86_decode_insn() has run: fetch.data holds the bytes, fetch.ptr is one past the instruction */
		bpf_probe_read_kernel(insn, CAP_INSN_MAX - 1, &ctxt->fetch.data);
		start = (__u8 *)ctxt + bpf_core_field_offset(ctxt->fetch.data);
		end = ctxt->fetch.ptr;
		if (end > start && end - start <= CAP_INSN_MAX - 1)
			len = end - start;
		cr = capture_decode_mov_cr(insn, len, vmot_ctxt_is64(ctxt), &gpr);
	}
	if (cr != 3 && !emit_emulate)
		return 0;
	if (arch_cr3_arg(vcpu, &a.cr3)) {
		a.cr3_src = CR3_SRC_ARCH;
		a.flags = CAP_F_CR3_VALID;
	}
	if (cr == 3) {
		c->cr3_writes++;
		a.kind = CAP_EV_CR3_WRITE;
		a.value = gpr;
		a.nodedupe = true;
		if (gpr >= 0 && gpr < 16 && vmot_reg_available_arg(vcpu, gpr)) {
			a.aux = BPF_CORE_READ(vcpu, arch.regs[gpr]);
			a.flags |= CAP_F_AUX_VALID;
		}
	}
	emit(c, id, get_vcpu(vcpu), &a, insn, len);
	return 0;
}

/* Empty program on the same hook: the dispatch floor scripts/bench-capture.sh subtracts (opts.baseline). */
SEC("tp_btf/kvm_emulate_insn")
int BPF_PROG(kvm_emulate_insn_baseline)
{
	return 0;
}

/* ---- I/O hooks: no vCPU argument ---- */

static __always_inline int on_io(int hook, __u32 kind, __u64 value, __u64 aux, __u32 flags, bool nodedupe)
{
	struct capture_counters *c = ctrs();
	__u64 id = bpf_get_current_pid_tgid();
	struct ev_args a = { .kind = kind, .value = value, .aux = aux, .flags = flags, .nodedupe = nodedupe };
	struct cap_vcpu *s;

	if (!enter(c, hook, id >> 32) || !emit_io)
		return 0;
	s = get_vcpu(NULL);
	if (s && arch_cr3((struct kvm_vcpu *)s->vcpu, &a.cr3)) {
		a.cr3_src = CR3_SRC_ARCH;
		a.flags |= CAP_F_CR3_VALID;
	}
	emit(c, id, s, &a, NULL, 0);
	return 0;
}

SEC("tp_btf/kvm_mmio")
int BPF_PROG(kvm_mmio, int type, int len, __u64 gpa)
{
	/* KVM_TRACE_MMIO_WRITE == 2 */
	return on_io(CAP_HOOK_MMIO, CAP_EV_MMIO, gpa, (type & 0xff) | ((__u64)len << 8),
		     type == 2 ? CAP_F_WRITE : 0, false);
}

SEC("tp_btf/kvm_pio")
int BPF_PROG(kvm_pio, unsigned int rw, unsigned int port, unsigned int size)
{
	return on_io(CAP_HOOK_PIO, CAP_EV_PIO, port, rw | (size << 8), rw ? CAP_F_WRITE : 0, false);
}

SEC("tp_btf/kvm_msr")
int BPF_PROG(kvm_msr, unsigned int write, __u32 ecx, __u64 data)
{
	/* GS_BASE / KERNEL_GS_BASE writes are kept whole: they give the per-CPU area of the guest kernel. */
	bool gs = write && (ecx == 0xc0000101 || ecx == 0xc0000102);

	return on_io(CAP_HOOK_MSR, CAP_EV_MSR, ecx, data, write ? CAP_F_WRITE : 0, gs);
}

/* ---- memslots: iterate the task's files, find the kvm-vm anon file, walk kvm->memslots ---- */

static __always_inline void put_slot(struct seq_file *seq, struct kvm *kvm, struct kvm_memory_slot *slot, __u16 as)
{
	struct capture_memslot_rec r = {};

	r.kvm = (__u64)kvm;
	r.base_gfn = BPF_CORE_READ(slot, base_gfn);
	r.npages = BPF_CORE_READ(slot, npages);
	r.userspace_addr = BPF_CORE_READ(slot, userspace_addr);
	r.flags = BPF_CORE_READ(slot, flags);
	r.id = BPF_CORE_READ(slot, id);
	r.as_id = as;
	if (r.npages)
		bpf_seq_write(seq, &r, sizeof(r));
}

#define MEMSLOT_BUCKETS 128
#define MEMSLOT_CHAIN   8

static __always_inline void walk_slots(struct seq_file *seq, struct kvm *kvm, struct kvm_memslots *slots, __u16 as)
{
	if (!slots)
		return;
	if (bpf_core_field_exists(slots->id_hash)) {
		__u32 nb = bpf_core_field_size(slots->id_hash) / sizeof(struct hlist_head);
		int idx = BPF_CORE_READ(slots, node_idx);
		__u64 off = bpf_core_field_offset(struct kvm_memory_slot, id_node) +
			    (idx & 1) * sizeof(struct hlist_node);

		for (__u32 b = 0; b < MEMSLOT_BUCKETS && b < nb; b++) {
			struct hlist_node *n = BPF_CORE_READ(slots, id_hash[b].first);

			for (int j = 0; j < MEMSLOT_CHAIN && n; j++) {
				put_slot(seq, kvm, (struct kvm_memory_slot *)((void *)n - off), as);
				n = BPF_CORE_READ(n, next);
			}
		}
	} else if (bpf_core_field_exists(struct kvm_memslots___old, used_slots)) {
		struct kvm_memslots___old *old = (void *)slots;
		int used = BPF_CORE_READ(old, used_slots);

		for (int i = 0; i < 512 && i < used; i++)
			put_slot(seq, kvm, &old->memslots[i], as);
	}
}

SEC("iter/task_file")
int dump_memslots(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	char name[8] = {};
	struct kvm *kvm;

	if (!task || !file)
		return 0;
	if (memslot_tgid && task->tgid != memslot_tgid)
		return 0;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	if (name[0] != 'k' || name[1] != 'v' || name[2] != 'm' || name[3] != '-' || name[4] != 'v' ||
	    name[5] != 'm' || name[6] != 0)
		return 0;
	kvm = BPF_CORE_READ(file, private_data);
	if (!kvm)
		return 0;
	walk_slots(seq, kvm, BPF_CORE_READ(kvm, memslots[0]), 0);
	/* x86 has a second address space (SMM) when CONFIG_KVM_SMM=y: memslots[2]; vmlinux.h may say [1] */
	if (bpf_core_field_size(kvm->memslots) >= 2 * sizeof(void *)) {
		struct kvm_memslots *smm = NULL;

		bpf_probe_read_kernel(&smm, sizeof(smm), (void *)__builtin_preserve_access_index(&kvm->memslots) +
				      sizeof(void *));
		walk_slots(seq, kvm, smm, 1);
	}
	return 0;
}
