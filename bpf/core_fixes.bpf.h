/*
 * CO-RE hazards of the KVM types we read (libbpf-tools' core_fixes.bpf.h pattern): one __always_inline
 * accessor per hazard, local flavours (`x___suffix`, only the members we read) and a
 * bpf_core_type_exists/field_exists branch, so one object loads with kvm_intel, kvm_amd or neither.
 *
 * KVM's types live in module BTF on distribution kernels (kvm.ko, kvm-intel.ko, kvm-amd.ko; libbpf searches
 * module BTF for CO-RE candidates) and in vmlinux BTF when KVM is built in. vcpu_vmx / vcpu_svm exist only
 * while their module is loaded: without it the relocation is "type not found", bpf_core_type_exists() is 0
 * and the verifier removes the dead branch.
 *
 * Tracepoint prototype changes (kvm_exit, kvm_entry) cannot be fixed here: tp_btf arguments are positional,
 * so capture.bpf.c has one program per prototype and user space picks one with a BTF probe
 * (bpf_program__set_autoload), as libbpf-tools' runqlat does for tp_btf vs raw_tp.
 */
#ifndef VMOT_CORE_FIXES_BPF_H
#define VMOT_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "capture.h"

/* ---- AMD SVM: the VMCB save area holds the guest CR3 at every exit. ---- */
struct vmcb_control_area___vmot {
	u32 exit_code;   /* u32 exit_code + u32 exit_code_hi until the u64 rework; low half either way */
} __attribute__((preserve_access_index));

struct vmcb_save_area___vmot {
	u64 cr3;
} __attribute__((preserve_access_index));

struct vmcb___vmot {
	struct vmcb_control_area___vmot control;
	struct vmcb_save_area___vmot save;
} __attribute__((preserve_access_index));

struct vcpu_svm___vmot {
	struct kvm_vcpu vcpu;
	struct vmcb___vmot *vmcb;   /* current VMCB (vmcb01 or vmcb02 since nested rework, 5.13) */
} __attribute__((preserve_access_index));

/* ---- Intel VMX ---- */
/* Linux 5.11 ("KVM: VMX: Convert vcpu_vmx.exit_reason to a union") turned u32 exit_reason into a union. */
union vmx_exit_reason___vmot {
	u32 full;
} __attribute__((preserve_access_index));

struct vcpu_vmx___vmot {
	struct kvm_vcpu vcpu;
	union vmx_exit_reason___vmot exit_reason;
} __attribute__((preserve_access_index));

struct vcpu_vmx___old {
	struct kvm_vcpu vcpu;
	u32 exit_reason;
} __attribute__((preserve_access_index));

/* Linux 6.16 (TDX: "KVM: VMX: Move common fields of struct vcpu_vmx and vcpu_tdx to a struct") moved the
 * exit reason into vcpu_vmx.vt; checked against Debian 7.2's kvm-intel.ko by build/tools/core-check. */
struct vcpu_vt___vmot {
	union vmx_exit_reason___vmot exit_reason;
} __attribute__((preserve_access_index));

struct vcpu_vmx___vt {
	struct kvm_vcpu vcpu;
	struct vcpu_vt___vmot vt;
} __attribute__((preserve_access_index));

/* ---- Memslots ---- */
/* Before Linux 5.17 ("KVM: Keep memslots in tree-based structures instead of array-based ones") memslots
 * were a sorted array with used_slots; since then an id hash (id_hash + id_node[node_idx]) and trees. */
struct kvm_memslots___old {
	int used_slots;
	struct kvm_memory_slot memslots[];
} __attribute__((preserve_access_index));

static __always_inline bool vmot_have_svm(void)
{
	return bpf_core_type_exists(struct vcpu_svm___vmot);
}

static __always_inline bool vmot_have_vmx(void)
{
	return bpf_core_type_exists(struct vcpu_vmx___vmot);
}

/* vcpu->arch.regs_avail bit for a kvm_reg (VCPU_EXREG_CR3 / a GPR); false when KVM has no such cache. The
 * register cache appeared in 2.6.28; regs_avail went from unsigned long to u32 in 5.x (low half either way).
 * vcpu may be a tracepoint argument or a pointer kept in a map: read through bpf_probe_read_kernel. */
static __always_inline bool vmot_reg_available(struct kvm_vcpu *vcpu, unsigned int bit)
{
	u32 avail;

	if (!bpf_core_field_exists(vcpu->arch.regs_avail))
		return false;
	avail = BPF_CORE_READ(vcpu, arch.regs_avail);
	return bit < 32 && (avail >> bit) & 1;
}

/* The same for a tracepoint argument (a BTF pointer): direct loads, no helper call (hot path). */
static __always_inline bool vmot_reg_available_arg(struct kvm_vcpu *vcpu, unsigned int bit)
{
	if (!bpf_core_field_exists(vcpu->arch.regs_avail))
		return false;
	return bit < 32 && ((u32)vcpu->arch.regs_avail >> bit) & 1;
}

/* 7.x renamed the extended registers of enum kvm_reg (VCPU_EXREG_CR3 -> VCPU_REG_CR3). */
enum kvm_reg___new {
	VCPU_REG_CR3 = 19,
};

/* Index of the CR3 bit of the register cache in enum kvm_reg (it moved as registers were added, and was
 * renamed in 7.x), or -1 when the kernel has neither name. */
static __always_inline int vmot_exreg_cr3(void)
{
	if (bpf_core_enum_value_exists(enum kvm_reg, VCPU_EXREG_CR3))
		return bpf_core_enum_value(enum kvm_reg, VCPU_EXREG_CR3);
	if (bpf_core_enum_value_exists(enum kvm_reg___new, VCPU_REG_CR3))
		return bpf_core_enum_value(enum kvm_reg___new, VCPU_REG_CR3);
	return -1;
}

/* CR3 at kvm_exit. SVM: VMCB save.cr3 (exact). VMX: vcpu->arch.cr3 only while VCPU_EXREG_CR3 is available;
 * with EPT, vmx_vcpu_run() marks it unavailable after every exit (CR3 loads do not exit), so this mostly
 * returns false there. Returns the source (enum capture_cr3_src) or 0. */
static __always_inline int vmot_exit_cr3(struct kvm_vcpu *vcpu, u32 isa, u64 *cr3)
{
	if (isa == 2 && vmot_have_svm()) {
		struct vcpu_svm___vmot *svm = (void *)vcpu;   /* vcpu is the first member */

		*cr3 = BPF_CORE_READ(svm, vmcb, save.cr3);
		return CR3_SRC_SVM_VMCB;
	}
	if (isa == 1) {
		int bit = vmot_exreg_cr3();

		if (bit >= 0 && vmot_reg_available(vcpu, bit)) {
			*cr3 = BPF_CORE_READ(vcpu, arch.cr3);
			return CR3_SRC_VMX_CACHE;
		}
	}
	return 0;
}

/* Exit reason at kvm_exit for the (vcpu, isa) prototype, which no longer passes it. */
static __always_inline u32 vmot_exit_reason(struct kvm_vcpu *vcpu, u32 isa)
{
	if (isa == 2 && vmot_have_svm()) {
		struct vcpu_svm___vmot *svm = (void *)vcpu;

		return BPF_CORE_READ(svm, vmcb, control.exit_code);
	}
	if (isa == 1 && vmot_have_vmx()) {
		if (bpf_core_field_exists(struct vcpu_vmx___vt, vt)) {
			struct vcpu_vmx___vt *vmx = (void *)vcpu;

			return BPF_CORE_READ(vmx, vt.exit_reason.full);
		}
		if (bpf_core_field_exists(struct vcpu_vmx___vmot, exit_reason)) {
			struct vcpu_vmx___vmot *vmx = (void *)vcpu;

			return BPF_CORE_READ(vmx, exit_reason.full);
		}
		if (bpf_core_field_exists(struct vcpu_vmx___old, exit_reason)) {
			struct vcpu_vmx___old *vmx = (void *)vcpu;

			return BPF_CORE_READ(vmx, exit_reason);
		}
	}
	return (u32)-1;
}

/* vcpu->arch.emulate_ctxt became a pointer around Linux 5.6 ("KVM: x86: Allocate emulate context dynamically");
 * before that it was embedded and we do not decode instructions. vcpu must be a tracepoint argument (direct
 * load; the result is a BTF pointer too). Returns the context or NULL. */
static __always_inline struct x86_emulate_ctxt *vmot_emulate_ctxt(struct kvm_vcpu *vcpu)
{
	if (bpf_core_field_exists(vcpu->arch.emulate_ctxt) &&
	    bpf_core_field_size(vcpu->arch.emulate_ctxt) == sizeof(void *))
		return vcpu->arch.emulate_ctxt;
	return NULL;
}

/* Cheap pre-check with direct loads: skip up to four prefix bytes (legacy or REX; REX is common in 64-bit
 * code, so stopping at the first prefix would send most instructions to the full decode), then 0F 22 must
 * follow. False when the instruction cannot be a mov to a control register, so the 15-byte copy and the
 * decode run only for real candidates (and for five or more prefixes, which the decoder judges). */
static __always_inline bool vmot_insn_prefix(u8 b)
{
	return (b & 0xf0) == 0x40 || b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 ||
	       b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65;
}

static __always_inline bool vmot_maybe_mov_cr(struct x86_emulate_ctxt *ctxt)
{
	u64 w = *(u64 *)ctxt->fetch.data;   /* one load: the first eight fetched bytes */

#pragma unroll
	for (int i = 0; i < 4; i++) {
		u8 b = w >> (8 * i);

		if (b == 0x0f)
			return (u8)(w >> (8 * i + 8)) == 0x22;
		if (!vmot_insn_prefix(b))
			return false;
	}
	return true;
}

/* 64-bit mode of the instruction being emulated (REX prefixes count only there). */
static __always_inline int vmot_ctxt_is64(struct x86_emulate_ctxt *ctxt)
{
	if (!bpf_core_enum_value_exists(enum x86emul_mode, X86EMUL_MODE_PROT64))
		return 1;
	return ctxt->mode == bpf_core_enum_value(enum x86emul_mode, X86EMUL_MODE_PROT64);
}

#endif
