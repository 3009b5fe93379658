/*
 * core-check: check the KVM members bpf/capture.bpf.c and bpf/core_fixes.bpf.h read through CO-RE against a
 * real kernel's types — its vmlinux BTF and the split BTF of its kvm.ko / kvm-intel.ko / kvm-amd.ko — on a host
 * that has neither VMX nor SVM (tests/guest/test_zoo_truth.sh runs it on every zoo kernel with module BTF).
 *
 *   core-check VMLINUX_BTF_OR_ELF KVM_KO KVM_INTEL_KO KVM_AMD_KO
 *
 * One line per member path: "ok MODULE TYPE.PATH offset N size N" or "FAIL ... why". Paths use '.' for a
 * member (anonymous struct/union members are searched through, as CO-RE does) and '->' to follow a pointer.
 * Exit 0 when every path resolves with the size the BPF side assumes, 1 otherwise, 2 on usage/BTF errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>

struct found { __u32 type; __u64 bit_off; };

static __u32 skip_mods(const struct btf *btf, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_mod(t) || btf_is_typedef(t))) {
		id = t->type;
		t = btf__type_by_id(btf, id);
	}
	return id;
}

/* member `name` of the struct/union `id`, searching anonymous members too */
static int find_member(const struct btf *btf, __u32 id, const char *name, struct found *out)
{
	const struct btf_type *t = btf__type_by_id(btf, skip_mods(btf, id));
	const struct btf_member *m;

	if (!t || !btf_is_composite(t))
		return -EINVAL;
	m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++, m++) {
		const char *mn = btf__name_by_offset(btf, m->name_off);
		__u64 off = btf_member_bit_offset(t, i);

		if (mn && *mn && !strcmp(mn, name)) {
			out->type = m->type;
			out->bit_off = off;
			return 0;
		}
		if (!mn || !*mn) {   /* anonymous struct/union */
			struct found sub;

			if (!find_member(btf, m->type, name, &sub)) {
				out->type = sub.type;
				out->bit_off = off + sub.bit_off;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* Resolve "a.b->c" from struct root; *off is the byte offset inside the last struct reached by '->'. */
static int resolve(const struct btf *btf, const char *root, const char *path, __u64 *off, __u32 *size, __u32 *type,
		   char *why, size_t wlen)
{
	int id = btf__find_by_name_kind(btf, root, BTF_KIND_STRUCT);
	char buf[256], *p, *save = NULL;
	__u64 bits = 0;
	__u32 cur;

	if (id < 0) {
		snprintf(why, wlen, "no struct %s", root);
		return -ENOENT;
	}
	cur = (__u32)id;
	snprintf(buf, sizeof(buf), "%s", path);
	/* tokens: member names; "->" becomes a '>' marker before the name */
	for (p = buf; *p; p++)
		if (p[0] == '-' && p[1] == '>') {
			p[0] = '.';
			p[1] = '>';
		}
	for (char *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		struct found f;

		if (*tok == '>') {   /* follow the pointer we are on */
			const struct btf_type *t = btf__type_by_id(btf, skip_mods(btf, cur));

			if (!t || !btf_is_ptr(t)) {
				snprintf(why, wlen, "'%s': not a pointer", tok + 1);
				return -EINVAL;
			}
			cur = t->type;
			bits = 0;
			tok++;
			if (!*tok)
				continue;
		}
		if (find_member(btf, cur, tok, &f)) {
			snprintf(why, wlen, "no member '%s'", tok);
			return -ENOENT;
		}
		cur = f.type;
		bits += f.bit_off;
	}
	*off = bits / 8;
	*type = skip_mods(btf, cur);
	*size = (__u32)btf__resolve_size(btf, cur);
	return 0;
}

static int fails;

/* want_size: one of the sizes the BPF side copes with (0 = any; for arrays, the minimum) */
static void check(const struct btf *btf, const char *mod, const char *root, const char *path, const __u32 *sizes,
		  int nsizes, int want_kind, __u64 want_off)
{
	char why[128] = "";
	__u64 off;
	__u32 size, type;
	int ok = resolve(btf, root, path, &off, &size, &type, why, sizeof(why)) == 0;
	const struct btf_type *t = ok ? btf__type_by_id(btf, type) : NULL;

	if (ok && nsizes) {
		bool any = false;

		for (int i = 0; i < nsizes; i++)
			any |= want_kind == BTF_KIND_ARRAY ? size >= sizes[i] : size == sizes[i];
		if (!any) {
			snprintf(why, sizeof(why), "size %u not what the BPF side reads", size);
			ok = 0;
		}
	}
	if (ok && want_kind >= 0 && (!t || btf_kind(t) != want_kind)) {
		snprintf(why, sizeof(why), "kind %d, want %d", t ? btf_kind(t) : -1, want_kind);
		ok = 0;
	}
	if (ok && want_off != (__u64)-1 && off != want_off) {
		snprintf(why, sizeof(why), "offset %llu, the BPF side assumes %llu", (unsigned long long)off,
			 (unsigned long long)want_off);
		ok = 0;
	}
	if (ok)
		printf("ok   %-10s %s.%s offset %llu size %u\n", mod, root, path, (unsigned long long)off, size);
	else {
		printf("FAIL %-10s %s.%s: %s\n", mod, root, path, why);
		fails++;
	}
}

static bool enum_has(const struct btf *btf, const char *enum_name, const char *val)
{
	int id = btf__find_by_name_kind(btf, enum_name, BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_enum *e;

	if (!t)
		return false;
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++, e++)
		if (!strcmp(btf__name_by_offset(btf, e->name_off), val))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const __u32 u32_or_64[] = { 4, 8 }, u64[] = { 8 }, u32[] = { 4 }, ptr[] = { 8 }, atleast8[] = { 8 };
	struct btf *base, *kvm, *intel, *amd;

	if (argc != 5) {
		fprintf(stderr, "usage: core-check VMLINUX KVM_KO KVM_INTEL_KO KVM_AMD_KO\n");
		return 2;
	}
	base = btf__parse(argv[1], NULL);
	if (!base) {
		fprintf(stderr, "core-check: %s: no BTF\n", argv[1]);
		return 2;
	}
	kvm = btf__parse_split(argv[2], base);
	intel = btf__parse_split(argv[3], base);
	amd = btf__parse_split(argv[4], base);
	if (!kvm || !intel || !amd) {
		fprintf(stderr, "core-check: a KVM module has no split BTF\n");
		return 2;
	}
	/* struct kvm_vcpu and the emulator (kvm.ko) */
	check(kvm, "kvm", "kvm_vcpu", "vcpu_id", u32, 1, BTF_KIND_INT, -1);
	check(kvm, "kvm", "kvm_vcpu", "arch.regs_avail", u32_or_64, 2, -1, -1);
	check(kvm, "kvm", "kvm_vcpu", "arch.regs", NULL, 0, BTF_KIND_ARRAY, -1);
	check(kvm, "kvm", "kvm_vcpu", "arch.cr3", u64, 1, -1, -1);
	check(kvm, "kvm", "kvm_vcpu", "arch.emulate_ctxt", ptr, 1, BTF_KIND_PTR, -1);
	/* memslots (the iter/task_file program; the id-hash layout of 5.17+, which every kernel with module
	 * BTF in the zoo has) */
	check(kvm, "kvm", "kvm", "memslots", NULL, 0, BTF_KIND_ARRAY, -1);
	check(kvm, "kvm", "kvm_memslots", "id_hash", NULL, 0, BTF_KIND_ARRAY, -1);
	check(kvm, "kvm", "kvm_memslots", "node_idx", u32, 1, -1, -1);
	check(kvm, "kvm", "kvm_memory_slot", "id_node", NULL, 0, BTF_KIND_ARRAY, -1);
	check(kvm, "kvm", "kvm_memory_slot", "base_gfn", u64, 1, -1, -1);
	check(kvm, "kvm", "kvm_memory_slot", "npages", u64, 1, -1, -1);
	check(kvm, "kvm", "kvm_memory_slot", "userspace_addr", u64, 1, -1, -1);
	check(kvm, "kvm", "kvm_memory_slot", "flags", u32, 1, -1, -1);
	check(kvm, "kvm", "kvm_memory_slot", "id", NULL, 0, -1, -1);
	/* CO-RE finds the emulator's struct by name (the pointer in kvm_vcpu_arch may be a forward declaration) */
	check(kvm, "kvm", "x86_emulate_ctxt", "fetch.data", atleast8, 1, BTF_KIND_ARRAY, -1);   /* one 8-byte load */
	check(kvm, "kvm", "x86_emulate_ctxt", "fetch.ptr", ptr, 1, BTF_KIND_PTR, -1);
	check(kvm, "kvm", "x86_emulate_ctxt", "mode", NULL, 0, -1, -1);
	/* the CR3 bit of the register cache: VCPU_EXREG_CR3, VCPU_REG_CR3 since 7.x (vmot_exreg_cr3) */
	if (enum_has(kvm, "kvm_reg", "VCPU_EXREG_CR3") || enum_has(kvm, "kvm_reg", "VCPU_REG_CR3")) {
		printf("ok   kvm        enum kvm_reg %s\n", enum_has(kvm, "kvm_reg", "VCPU_EXREG_CR3") ? "VCPU_EXREG_CR3"
											    : "VCPU_REG_CR3");
	} else {
		printf("FAIL kvm        enum kvm_reg has neither VCPU_EXREG_CR3 nor VCPU_REG_CR3\n");
		fails++;
	}
	/* AMD: the VMCB behind vcpu_svm; vcpu first (capture.bpf.c casts kvm_vcpu * to vcpu_svm *) */
	check(amd, "kvm-amd", "vcpu_svm", "vcpu", NULL, 0, BTF_KIND_STRUCT, 0);
	check(amd, "kvm-amd", "vcpu_svm", "vmcb->save.cr3", u64, 1, -1, -1);
	check(amd, "kvm-amd", "vcpu_svm", "vmcb->control.exit_code", u32_or_64, 2, -1, -1);   /* low half read */
	/* Intel: vcpu first; the exit reason as vmot_exit_reason() tries it: vt.exit_reason.full (6.16+),
	 * exit_reason.full (5.11+), exit_reason (u32) */
	check(intel, "kvm-intel", "vcpu_vmx", "vcpu", NULL, 0, BTF_KIND_STRUCT, 0);
	{
		static const char *const paths[] = { "vt.exit_reason.full", "exit_reason.full", "exit_reason" };
		char why[128];
		__u64 off;
		__u32 size, type;
		size_t i;

		for (i = 0; i < 3 && resolve(intel, "vcpu_vmx", paths[i], &off, &size, &type, why, sizeof(why)); i++)
			;
		check(intel, "kvm-intel", "vcpu_vmx", paths[i < 3 ? i : 2], u32, 1, -1, -1);
	}
	btf__free(amd);
	btf__free(intel);
	btf__free(kvm);
	btf__free(base);
	return fails ? 1 : 0;
}
