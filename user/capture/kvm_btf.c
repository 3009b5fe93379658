/* BTF probes for KVM's tracepoints and types (vmlinux + kvm, kvm_intel, kvm_amd module BTF). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "capture/capture.h"
#include "capture/internal.h"
#include "common/log.h"

const char *const kvm_btf_mod_names[KVM_BTF_MODS] = { "kvm", "kvm_intel", "kvm_amd" };

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!log_verbose || (level == LIBBPF_DEBUG && log_verbose < 2))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void capture_libbpf_log_init(void)
{
	libbpf_set_print(libbpf_log);
}

int kvm_btf_load(struct kvm_btf *kb)
{
	char path[64];

	memset(kb, 0, sizeof(*kb));
	capture_libbpf_log_init();
	kb->vmlinux = btf__load_vmlinux_btf();
	if (!kb->vmlinux)
		return errno ? -errno : -ENOENT;
	for (int i = 0; i < KVM_BTF_MODS; i++) {
		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", kvm_btf_mod_names[i]);
		if (access(path, R_OK))
			continue;
		kb->mod[i] = btf__load_module_btf(kvm_btf_mod_names[i], kb->vmlinux);
		if (!kb->mod[i])
			p_dbg("cannot load BTF of module %s: %s", kvm_btf_mod_names[i], strerror(errno));
	}
	return 0;
}

int kvm_btf_load_file(struct kvm_btf *kb, const char *path)
{
	memset(kb, 0, sizeof(*kb));
	capture_libbpf_log_init();
	kb->vmlinux = btf__parse(path, NULL);
	if (!kb->vmlinux) {
		int err = errno ? -errno : -ENOENT;

		kb->vmlinux = NULL;
		return err;
	}
	return 0;
}

void kvm_btf_free(struct kvm_btf *kb)
{
	for (int i = 0; i < KVM_BTF_MODS; i++)
		btf__free(kb->mod[i]);
	btf__free(kb->vmlinux);
	memset(kb, 0, sizeof(*kb));
}

/* Find in a module first (split BTF also sees vmlinux), then vmlinux. */
static const struct btf *find(const struct kvm_btf *kb, const char *name, int kind, __s32 *id, const char **where)
{
	for (int i = 0; i < KVM_BTF_MODS; i++) {
		__s32 r;

		if (!kb->mod[i])
			continue;
		r = btf__find_by_name_kind(kb->mod[i], name, kind);
		if (r > 0 && (__u32)r >= btf__type_cnt(kb->vmlinux)) {
			*id = r;
			if (where)
				*where = kvm_btf_mod_names[i];
			return kb->mod[i];
		}
	}
	if (kb->vmlinux) {
		__s32 r = btf__find_by_name_kind(kb->vmlinux, name, kind);

		if (r > 0) {
			*id = r;
			if (where)
				*where = "vmlinux";
			return kb->vmlinux;
		}
	}
	return NULL;
}

bool kvm_btf_has(const struct kvm_btf *kb, const char *name, int kind, const char **where)
{
	__s32 id;

	return find(kb, name, kind, &id, where) != NULL;
}

int kvm_btf_tp_arg_is_ptr(const struct kvm_btf *kb, const char *tp, int arg)
{
	const struct btf_param *params;
	const struct btf_type *t;
	const struct btf *btf;
	char name[96];
	__s32 id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	btf = find(kb, name, BTF_KIND_TYPEDEF, &id, NULL);
	if (!btf)
		return -ENOENT;
	/* typedef -> pointer -> func_proto(void *, args...) */
	t = btf__type_by_id(btf, id);
	t = t ? btf__type_by_id(btf, t->type) : NULL;
	if (!t || !btf_is_ptr(t))
		return -ENOENT;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -ENOENT;
	if (arg + 1 >= btf_vlen(t))
		return -EINVAL;
	params = btf_params(t);
	t = btf__type_by_id(btf, params[arg + 1].type);
	while (t && (btf_is_typedef(t) || btf_is_mod(t)))
		t = btf__type_by_id(btf, t->type);
	return t && btf_is_ptr(t);
}

const char *capture_variant(const struct kvm_btf *kb, int hook)
{
	int r;

	switch (hook) {
	case CAP_HOOK_EXIT:
		/* (vcpu, isa) since the reason moved into kvm_x86_ops.get_exit_info; (reason, vcpu, isa) before */
		r = kvm_btf_tp_arg_is_ptr(kb, "kvm_exit", 0);
		return r < 0 ? NULL : r ? "kvm_exit_vcpu" : "kvm_exit_reason";
	case CAP_HOOK_ENTRY:
		/* (vcpu[, immediate_exit]) since 5.8; (vcpu_id) before */
		r = kvm_btf_tp_arg_is_ptr(kb, "kvm_entry", 0);
		return r < 0 ? NULL : r ? "kvm_entry_vcpu" : "kvm_entry_id";
	case CAP_HOOK_CR:
		return kvm_btf_tp_arg_is_ptr(kb, "kvm_cr", 0) < 0 ? NULL : "kvm_cr";
	case CAP_HOOK_EMULATE:
		/* the vCPU must come first (it has since the tracepoint was added) */
		return kvm_btf_tp_arg_is_ptr(kb, "kvm_emulate_insn", 0) == 1 ? "kvm_emulate_insn" : NULL;
	case CAP_HOOK_MMIO:
		return kvm_btf_tp_arg_is_ptr(kb, "kvm_mmio", 0) < 0 ? NULL : "kvm_mmio";
	case CAP_HOOK_PIO:
		return kvm_btf_tp_arg_is_ptr(kb, "kvm_pio", 0) < 0 ? NULL : "kvm_pio";
	case CAP_HOOK_MSR:
		return kvm_btf_tp_arg_is_ptr(kb, "kvm_msr", 0) < 0 ? NULL : "kvm_msr";
	}
	return NULL;
}

/* A type with its typedefs and modifiers skipped. */
static const struct btf_type *resolved(const struct btf *btf, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	for (int depth = 0; t && (btf_is_typedef(t) || btf_is_mod(t)) && depth < 16; depth++)
		t = btf__type_by_id(btf, t->type);
	return t;
}

static size_t tracepoints_of(const struct btf *btf, __u32 from, const char *where, struct kvm_tp *out, size_t n,
			     size_t max)
{
	static const char prefix[] = "btf_trace_kvm_";
	__u32 cnt = btf__type_cnt(btf);

	for (__u32 id = from; id < cnt && n < max; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id), *fp;
		const char *name = t && btf_is_typedef(t) ? btf__name_by_offset(btf, t->name_off) : NULL;

		if (!name || strncmp(name, prefix, sizeof(prefix) - 1))
			continue;
		fp = btf__type_by_id(btf, t->type);   /* typedef -> pointer -> func_proto(void *, args...) */
		fp = fp && btf_is_ptr(fp) ? btf__type_by_id(btf, fp->type) : NULL;
		if (!fp || !btf_is_func_proto(fp) || !btf_vlen(fp))
			continue;
		struct kvm_tp *tp = &out[n++];
		const struct btf_param *params = btf_params(fp);

		snprintf(tp->name, sizeof(tp->name), "%s", name + sizeof("btf_trace_") - 1);
		tp->nargs = btf_vlen(fp) - 1u;
		tp->vcpu_arg = -1;
		tp->where = where;
		for (unsigned a = 0; a < tp->nargs && tp->vcpu_arg < 0; a++) {
			const struct btf_type *p = resolved(btf, params[a + 1].type);
			const struct btf_type *s = p && btf_is_ptr(p) ? resolved(btf, p->type) : NULL;

			if (s && btf_is_struct(s) && !strcmp(btf__name_by_offset(btf, s->name_off), "kvm_vcpu"))
				tp->vcpu_arg = (int)a;
		}
	}
	return n;
}

size_t kvm_btf_tracepoints(const struct kvm_btf *kb, struct kvm_tp *out, size_t max)
{
	size_t n = 0;

	if (!kb->vmlinux)
		return 0;
	n = tracepoints_of(kb->vmlinux, 1, "vmlinux", out, n, max);
	for (int i = 0; i < KVM_BTF_MODS; i++)   /* a module's own types follow vmlinux's in its split BTF */
		if (kb->mod[i])
			n = tracepoints_of(kb->mod[i], btf__type_cnt(kb->vmlinux), kvm_btf_mod_names[i], out, n, max);
	return n;
}

/* Byte offset of member name in struct/union t, looking into its anonymous struct and union members too
 * (5.10's kvm_cpu_context holds sys_regs in an anonymous union with copro); -1 if absent. */
static int64_t member_offset(const struct btf *btf, const struct btf_type *t, const char *name, int depth)
{
	for (unsigned i = 0; t && depth < 4 && (btf_is_struct(t) || btf_is_union(t)) && i < btf_vlen(t); i++) {
		const struct btf_member *m = &btf_members(t)[i];
		int64_t in;

		if (m->name_off && !strcmp(btf__name_by_offset(btf, m->name_off), name))
			return btf_member_bit_offset(t, i) / 8;
		if (!m->name_off &&
		    (in = member_offset(btf, btf__type_by_id(btf, btf__resolve_type(btf, m->type)), name, depth + 1)) >= 0)
			return btf_member_bit_offset(t, i) / 8 + in;
	}
	return -1;
}

int kvm_btf_arm64_ttbr0(const struct kvm_btf *kb, int64_t *index, int64_t *sys_regs_off)
{
	const struct btf *btf;
	const struct btf_type *t;
	__s32 id;

	*index = *sys_regs_off = -1;
	btf = find(kb, "kvm_cpu_context", BTF_KIND_STRUCT, &id, NULL);
	t = btf ? btf__type_by_id(btf, id) : NULL;
	*sys_regs_off = member_offset(btf, t, "sys_regs", 0);
	btf = find(kb, "vcpu_sysreg", BTF_KIND_ENUM, &id, NULL);
	t = btf ? btf__type_by_id(btf, id) : NULL;
	for (unsigned i = 0; t && i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(btf, btf_enum(t)[i].name_off), "TTBR0_EL1"))
			*index = btf_enum(t)[i].val;
	return *index >= 0 && *sys_regs_off >= 0 ? 0 : -ENOENT;
}
