/*
 * Capture: events shared by bpf/capture.bpf.c and user/capture/. Included after vmlinux.h on the BPF side and
 * after <linux/types.h> on the user side; only fixed-size __u64/__u32/__u8 members (user side _Static_asserts
 * the size). The mov-to-CR decoder at the bottom is compiled on both sides, so the unit test checks the exact
 * code the kernel runs.
 */
#ifndef VMOT_CAPTURE_H
#define VMOT_CAPTURE_H

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Which tracepoint produced an event (also the index of per-hook hit counters). */
enum capture_hook {
	CAP_HOOK_EXIT = 0,        /* kvm_exit */
	CAP_HOOK_ENTRY,           /* kvm_entry */
	CAP_HOOK_CR,              /* kvm_cr */
	CAP_HOOK_EMULATE,         /* kvm_emulate_insn */
	CAP_HOOK_MMIO,            /* kvm_mmio */
	CAP_HOOK_PIO,             /* kvm_pio */
	CAP_HOOK_MSR,             /* kvm_msr */
	CAP_HOOK_NR,
};

/* Event kinds. A mov-to-CR3 decoded from the emulator's instruction bytes gets its own kind. */
enum capture_kind {
	CAP_EV_EXIT = 1,          /* value = exit reason, aux = ISA (1 VMX, 2 SVM) */
	CAP_EV_CR,                /* value = written CR value, aux = CR number | (rw << 8) */
	CAP_EV_EMULATE,           /* instruction bytes in insn[] */
	CAP_EV_CR3_WRITE,         /* mov-to-CR3 decoded: value = source GPR number, aux = its value if
				   * CAP_F_AUX_VALID; cr3 = vcpu->arch.cr3 (value pending a sync) */
	CAP_EV_MMIO,              /* value = GPA, aux = type | (len << 8) */
	CAP_EV_PIO,               /* value = port, aux = rw | (size << 8) */
	CAP_EV_MSR,               /* value = MSR index, aux = data; flags & CAP_F_WRITE */
	CAP_EV_KIND_NR,
};

/* Where an event's cr3 came from. */
enum capture_cr3_src {
	CR3_SRC_NONE = 0,
	CR3_SRC_KVM_CR,           /* kvm_cr tracepoint: the value written (exact) */
	CR3_SRC_SVM_VMCB,         /* AMD: vcpu_svm->vmcb->save.cr3 at kvm_exit (exact) */
	CR3_SRC_VMX_CACHE,        /* Intel: vcpu->arch.cr3 with the VCPU_EXREG_CR3 available bit set (exact) */
	CR3_SRC_ARCH,             /* vcpu->arch.cr3 at an emulation/IO event: last synced value, may lag */
	CR3_SRC_INSN_GPR,         /* mov-to-CR3 source register read from vcpu->arch.regs (exact) */
	CR3_SRC_NR,
};

#define CAP_F_CR3_VALID   0x1u    /* cr3 holds a value the guest had (see cr3_src for how fresh) */
#define CAP_F_AUX_VALID   0x2u    /* CR3_WRITE: aux holds the value written */
#define CAP_F_WRITE       0x4u    /* MSR/PIO/MMIO/CR write */
#define CAP_F_FAILED      0x8u    /* kvm_emulate_insn reported a failed emulation */

#define CAP_VCPU_UNKNOWN  0xffffffffu
#define CAP_INSN_MAX      16

struct capture_event {
	__u64 time_ns;            /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cr3;                /* valid if flags & CAP_F_CR3_VALID */
	__u64 value;              /* per kind, see enum capture_kind */
	__u64 aux;
	__u32 tgid;               /* QEMU process */
	__u32 tid;                /* vCPU thread */
	__u32 vcpu_id;            /* kvm_vcpu.vcpu_id, or CAP_VCPU_UNKNOWN */
	__u16 kind;               /* enum capture_kind */
	__u16 cr3_src;            /* enum capture_cr3_src */
	__u32 flags;              /* CAP_F_* */
	__u32 repeat;             /* copies of this vCPU's previous event suppressed by dedupe before this one */
	__u8  insn[CAP_INSN_MAX]; /* EMULATE / CR3_WRITE: bytes fetched by the emulator */
	__u8  insn_len;
	__u8  pad[7];
};

/* Per-CPU counters (summed in user space). */
struct capture_counters {
	__u64 seen;               /* events entering any program */
	__u64 filtered;           /* not from a traced VM */
	__u64 deduped;            /* same (cr3, kind) as the vCPU's previous event */
	__u64 emitted;            /* written to the ring buffer */
	__u64 dropped;            /* ring buffer full */
	__u64 cr3_writes;         /* mov-to-CR3 decoded by the emulator hook */
	__u64 hook_hits[CAP_HOOK_NR];
};

/* Exit→entry latency per vCPU (kvm_exit and kvm_entry must both fire). */
#define CAP_LAT_SLOTS 32
struct capture_vcpu_key {
	__u32 tgid;
	__u32 vcpu_id;
};
struct capture_vcpu_lat {
	__u64 count, total_ns, max_ns;
	__u64 log2_ns[CAP_LAT_SLOTS];
};

/* kvm_exit counts by reason. */
struct capture_exit_key {
	__u32 tgid;               /* QEMU process (the VM) */
	__u32 vcpu_id;            /* CAP_VCPU_UNKNOWN when the vCPU is not known yet */
	__u32 isa;                /* 1 VMX, 2 SVM, 0 unknown */
	__u32 reason;
};

/* Memslot records written by the iter/task_file program (one per slot). */
struct capture_memslot_rec {
	__u64 kvm;                /* struct kvm address, groups slots of one VM */
	__u64 base_gfn;
	__u64 npages;
	__u64 userspace_addr;
	__u32 flags;
	__u16 id;
	__u16 as_id;
};

/*
 * Decode a mov-to-CR (0F 22 /r) from instruction bytes. Returns the CR number (0-15) and stores the
 * source GPR number (0-15, RAX..R15) in *gpr; -1 if the bytes are not a mov to a control register.
 * Legacy prefixes are skipped; a REX prefix counts only in 64-bit mode and only right before the opcode.
 * In 64-bit mode the CR is REX.R:reg and the GPR REX.B:rm; the mod field is ignored (the CPU does).
 */
static __always_inline int capture_decode_mov_cr(const __u8 *b, unsigned int len, int is64, int *gpr)
{
	unsigned int i = 0;
	__u8 rex = 0, modrm;

	for (; i < len && i < CAP_INSN_MAX - 2; i++) {
		__u8 c = b[i];

		if (c == 0x66 || c == 0x67 || c == 0xf0 || c == 0xf2 || c == 0xf3 || c == 0x2e ||
		    c == 0x36 || c == 0x3e || c == 0x26 || c == 0x64 || c == 0x65) {
			rex = 0;   /* a REX followed by a legacy prefix is ignored */
			continue;
		}
		if (is64 && (c & 0xf0) == 0x40) {
			rex = c;
			continue;
		}
		break;
	}
	if (i + 3 > len || i > CAP_INSN_MAX - 3)
		return -1;
	if (b[i] != 0x0f || b[i + 1] != 0x22)
		return -1;
	modrm = b[i + 2];
	*gpr = (modrm & 7) | ((rex & 0x1) << 3);
	return ((modrm >> 3) & 7) | ((rex & 0x4) << 1);
}

#endif
