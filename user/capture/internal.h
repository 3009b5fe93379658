/* Capture internals shared by capture.c, memslots.c, kvm_btf.c and cmd/probe.c. */
#ifndef VMOT_CAPTURE_INTERNAL_H
#define VMOT_CAPTURE_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* vmlinux BTF plus the KVM modules' split BTF (absent when KVM is built in or a module is not loaded). */
#define KVM_BTF_MODS 3
struct kvm_btf {
	struct btf *vmlinux;
	struct btf *mod[KVM_BTF_MODS];     /* kvm, kvm_intel, kvm_amd */
};
extern const char *const kvm_btf_mod_names[KVM_BTF_MODS];

int  kvm_btf_load(struct kvm_btf *kb);   /* -ENOENT: no /sys/kernel/btf/vmlinux */
/* Another kernel's BTF (raw .BTF or an ELF with one, as `bpftool btf dump file` takes): vmlinux only. */
int  kvm_btf_load_file(struct kvm_btf *kb, const char *path);
void kvm_btf_free(struct kvm_btf *kb);
/* Whether a named type of the given BTF kind exists in vmlinux or a loaded KVM module; *where names it. */
bool kvm_btf_has(const struct kvm_btf *kb, const char *name, int kind, const char **where);
/* Tracepoint prototype: 1 if argument arg (0-based, after the hidden void *) of btf_trace_<tp> is a pointer,
 * 0 if not, -ENOENT if the tracepoint has no BTF, -EINVAL if arg is out of range. */
int  kvm_btf_tp_arg_is_ptr(const struct kvm_btf *kb, const char *tp, int arg);

/* Every KVM tracepoint of the BTF (a btf_trace_kvm_* typedef), in BTF order: its name, its argument count and
 * whether one of its arguments is the vCPU (struct kvm_vcpu *), the way in to the guest's registers. */
struct kvm_tp { char name[48]; unsigned nargs; int vcpu_arg; /* -1: none */ const char *where; };
size_t kvm_btf_tracepoints(const struct kvm_btf *kb, struct kvm_tp *out, size_t max);
/* An arm64 KVM (struct kvm_cpu_context with sys_regs[]): TTBR0_EL1's index in enum vcpu_sysreg and sys_regs'
 * byte offset in struct kvm_cpu_context, where a BPF program would read the guest's user root. 0 or -ENOENT. */
int  kvm_btf_arm64_ttbr0(const struct kvm_btf *kb, int64_t *index, int64_t *sys_regs_off);

/* Program choice per hook from BTF: the program name to load, or NULL (hook absent). */
const char *capture_variant(const struct kvm_btf *kb, int hook);

/* libbpf's messages only with -v (installed once). */
void capture_libbpf_log_init(void);

#endif
