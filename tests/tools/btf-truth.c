// SPDX-License-Identifier: GPL-2.0
/*
 * btf-truth — ground truth for offset discovery, read from a kernel's own BTF.
 *
 *   btf-truth [--release R] FILE      FILE: a vmlinux ELF (its .BTF section) or a raw BTF file
 *
 * Prints one JSON object whose keys are the column names of ../shared/layouts/task_struct_layouts.csv
 * (sizeof_task_struct, tasks, pid, tgid, comm, mm, active_mm, real_parent, parent, children, sibling, cred,
 * mm_pgd, mm_mmap, mm_mt, current_task) plus mm_arg_start, mm_arg_end, mm_env_start, mm_env_end, cred_uid,
 * cred_gid, cred_euid, cred_egid, real_cred, group_leader, thread_group, thread_node, signal, and
 * the pid allocator's places (issue 11): thread_pid (task_struct), pid_numbers (struct pid: numbers[0].nr),
 * pidns_idr_next (pid_namespace.idr.idr_next, 4.15+), pidns_last_pid (before), pidns_child_reaper;
 * and the scheduler's counters: se_sum_exec_runtime, se_prev_sum_exec_runtime, se_vruntime, se_exec_start
 * (se + the sched_entity member), nvcsw, nivcsw, sched_info_pcount; and sizes to hold the offsets to:
 * pointer_size (an ELF's class, or libbpf's guess from a raw BTF's long), sizeof_list_head, sizeof_mm_struct.
 * Offsets are bytes from the start of the struct; a member the kernel lacks is null. Members inside anonymous
 * structs/unions (randstruct wrappers, `struct { ... };` groups) are found by recursing and summing offsets.
 * current_task is written as the CSV writes it: "percpu+0xOFF" for the per-CPU variable current_task, or
 * "percpu+0xOFF (pcpu_hot)" when it is a member of the per-CPU struct pcpu_hot (6.2–6.14); null when the BTF
 * has no .data..percpu DATASEC with either (e.g. Debian's 5.10 BTF).
 *
 * Uses libbpf and libc only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static const struct btf_type *skip_mods(const struct btf *btf, __u32 id, __u32 *res_id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_typedef(t) || btf_is_mod(t))) {
		id = t->type;
		t = btf__type_by_id(btf, id);
	}
	if (res_id)
		*res_id = id;
	return t;
}

/* Offset in bytes of member `name` of composite type t, searching anonymous members recursively; -1 if absent. */
static long member_offset(const struct btf *btf, const struct btf_type *t, const char *name, int depth)
{
	const struct btf_member *m;
	int i, n;

	if (!t || !btf_is_composite(t) || depth > 8)
		return -1;
	m = btf_members(t);
	n = btf_vlen(t);
	for (i = 0; i < n; i++, m++) {
		const char *mn = btf__name_by_offset(btf, m->name_off);
		long off = btf_member_bit_offset(t, i) / 8;

		if (mn && *mn) {
			if (strcmp(mn, name) == 0)
				return off;
			continue;
		}
		/* anonymous struct/union: look inside */
		long inner = member_offset(btf, skip_mods(btf, m->type, NULL), name, depth + 1);
		if (inner >= 0)
			return off + inner;
	}
	return -1;
}

static const struct btf_type *find_struct(const struct btf *btf, const char *name)
{
	__s32 id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);

	return id > 0 ? btf__type_by_id(btf, id) : NULL;
}

static void print_off(const char *key, long off, int *first)
{
	printf("%s\n  \"%s\": ", *first ? "" : ",", key);
	*first = 0;
	if (off >= 0)
		printf("%ld", off);
	else
		printf("null");
}

/* "percpu+0x..." location of the current task pointer, or 0 if the BTF doesn't say. */
static int current_task_location(const struct btf *btf, char *buf, size_t len)
{
	__s32 sec_id = btf__find_by_name_kind(btf, ".data..percpu", BTF_KIND_DATASEC);
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	long hot = -1;
	int i;

	if (sec_id <= 0)
		return 0;
	sec = btf__type_by_id(btf, sec_id);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *v = btf__type_by_id(btf, vs->type);
		const char *vn;

		if (!v || !btf_is_var(v))
			continue;
		vn = btf__name_by_offset(btf, v->name_off);
		if (strcmp(vn, "current_task") == 0) {
			snprintf(buf, len, "percpu+0x%x", vs->offset);
			return 1;
		}
		if (strcmp(vn, "pcpu_hot") == 0) {
			long m = member_offset(btf, skip_mods(btf, v->type, NULL), "current_task", 0);

			if (m >= 0)
				hot = (long)vs->offset + m;
		}
	}
	if (hot >= 0) {
		snprintf(buf, len, "percpu+0x%lx (pcpu_hot)", hot);
		return 1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: btf-truth [--release R] VMLINUX|BTF-FILE\n");
	return 64;
}

int main(int argc, char **argv)
{
	static const char *const task_members[] = {
		"tasks", "pid", "tgid", "comm", "mm", "active_mm", "real_parent", "parent", "children", "sibling",
		"cred", "real_cred", "group_leader", "thread_group", "thread_node", "signal",
	};
	const char *release = NULL, *path = NULL;
	const struct btf_type *task, *mm;
	struct btf *btf;
	char loc[64];
	int first = 1;
	size_t i;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--release") == 0 && a + 1 < argc)
			release = argv[++a];
		else if (argv[a][0] == '-')
			return usage();
		else if (!path)
			path = argv[a];
		else
			return usage();
	}
	if (!path)
		return usage();

	libbpf_set_print(NULL);
	btf = btf__parse(path, NULL);
	if (!btf) {
		fprintf(stderr, "btf-truth: %s: no BTF (%s)\n", path, strerror(errno));
		return 1;
	}
	task = find_struct(btf, "task_struct");
	if (!task) {
		fprintf(stderr, "btf-truth: %s: BTF has no struct task_struct\n", path);
		btf__free(btf);
		return 1;
	}
	mm = find_struct(btf, "mm_struct");

	printf("{");
	printf("%s\n  \"release\": ", first ? "" : ",");
	first = 0;
	if (release) {
		putchar('"');
		for (const char *c = release; *c; c++)
			if (*c == '"' || *c == '\\')
				printf("\\%c", *c);
			else if ((unsigned char)*c >= 0x20)
				putchar(*c);
		putchar('"');
	} else {
		printf("null");
	}
	print_off("sizeof_task_struct", task->size, &first);
	{   /* a 32-bit or foreign kernel's BTF says its own word size; offsets are held to these */
		const struct btf_type *lh = find_struct(btf, "list_head");
		size_t ptr = btf__pointer_size(btf);   /* 0: the BTF has no long to tell */

		print_off("pointer_size", ptr ? (long)ptr : -1, &first);
		print_off("sizeof_list_head", lh ? (long)lh->size : -1, &first);
		print_off("sizeof_mm_struct", mm ? (long)mm->size : -1, &first);
	}
	for (i = 0; i < sizeof(task_members) / sizeof(task_members[0]); i++)
		print_off(task_members[i], member_offset(btf, task, task_members[i], 0), &first);
	{   /* task_struct.se.X and task_struct.sched_info.pcount: the member's offset plus the struct's */
		static const char *const se_members[] = { "sum_exec_runtime", "prev_sum_exec_runtime", "vruntime",
							  "exec_start" };
		const struct btf_type *se = find_struct(btf, "sched_entity"), *si = find_struct(btf, "sched_info");
		long se_off = member_offset(btf, task, "se", 0), si_off = member_offset(btf, task, "sched_info", 0);
		char key[48];

		for (i = 0; i < sizeof(se_members) / sizeof(se_members[0]); i++) {
			long m = se ? member_offset(btf, se, se_members[i], 0) : -1;

			snprintf(key, sizeof(key), "se_%s", se_members[i]);
			print_off(key, se_off >= 0 && m >= 0 ? se_off + m : -1, &first);
		}
		print_off("nvcsw", member_offset(btf, task, "nvcsw", 0), &first);
		print_off("nivcsw", member_offset(btf, task, "nivcsw", 0), &first);
		long pc = si ? member_offset(btf, si, "pcount", 0) : -1;
		print_off("sched_info_pcount", si_off >= 0 && pc >= 0 ? si_off + pc : -1, &first);
	}
	print_off("mm_pgd", mm ? member_offset(btf, mm, "pgd", 0) : -1, &first);
	print_off("mm_mmap", mm ? member_offset(btf, mm, "mmap", 0) : -1, &first);
	print_off("mm_arg_start", mm ? member_offset(btf, mm, "arg_start", 0) : -1, &first);
	print_off("mm_arg_end", mm ? member_offset(btf, mm, "arg_end", 0) : -1, &first);
	print_off("mm_env_start", mm ? member_offset(btf, mm, "env_start", 0) : -1, &first);
	print_off("mm_env_end", mm ? member_offset(btf, mm, "env_end", 0) : -1, &first);
	print_off("mm_mt", mm ? member_offset(btf, mm, "mm_mt", 0) : -1, &first);
	{   /* memory maps and paths (issue 14): mm_struct, vm_area_struct, file (f_path's two members), dentry,
	     * vfsmount, mount; the same keys as `offsets --format json`'s "maps" object */
		static const struct { const char *key, *st, *member, *sub_st, *sub; } m[] = {
			{ "map_count", "mm_struct", "map_count", NULL, NULL }, { "exe_file", "mm_struct", "exe_file", NULL, NULL },
			{ "start_brk", "mm_struct", "start_brk", NULL, NULL }, { "brk", "mm_struct", "brk", NULL, NULL },
			{ "start_stack", "mm_struct", "start_stack", NULL, NULL },
			{ "vm_start", "vm_area_struct", "vm_start", NULL, NULL }, { "vm_end", "vm_area_struct", "vm_end", NULL, NULL },
			{ "vm_mm", "vm_area_struct", "vm_mm", NULL, NULL }, { "vm_flags", "vm_area_struct", "vm_flags", NULL, NULL },
			{ "vm_pgoff", "vm_area_struct", "vm_pgoff", NULL, NULL }, { "vm_file", "vm_area_struct", "vm_file", NULL, NULL },
			{ "vm_next", "vm_area_struct", "vm_next", NULL, NULL }, { "vm_private_data", "vm_area_struct", "vm_private_data", NULL, NULL },
			{ "f_path.dentry", "file", "f_path", "path", "dentry" }, { "f_path.mnt", "file", "f_path", "path", "mnt" },
			{ "d_parent", "dentry", "d_parent", NULL, NULL }, { "d_name", "dentry", "d_name", NULL, NULL }, { "d_hash", "dentry", "d_hash", NULL, NULL },
			{ "mnt_root", "vfsmount", "mnt_root", NULL, NULL }, { "mnt", "mount", "mnt", NULL, NULL }, { "mnt_parent", "mount", "mnt_parent", NULL, NULL },
			{ "mnt_mountpoint", "mount", "mnt_mountpoint", NULL, NULL },
		};
		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			const struct btf_type *st = find_struct(btf, m[i].st);
			long off = st ? member_offset(btf, st, m[i].member, 0) : -1;
			char key[48];

			if (off >= 0 && m[i].sub) {
				const struct btf_type *sub = find_struct(btf, m[i].sub_st);
				long so = sub ? member_offset(btf, sub, m[i].sub, 0) : -1;
				off = so >= 0 ? off + so : -1;
			}
			snprintf(key, sizeof(key), "maps_%s", m[i].key);
			print_off(key, off, &first);
		}
	}
	{   /* struct cred's ids (kuid_t/kgid_t: one u32 each) */
		const struct btf_type *cred = find_struct(btf, "cred");
		static const char *const ids[] = { "uid", "gid", "euid", "egid" };

		for (int i = 0; i < 4; i++) {
			char key[16];

			snprintf(key, sizeof(key), "cred_%s", ids[i]);
			print_off(key, cred ? member_offset(btf, cred, ids[i], 0) : -1, &first);
		}
	}
	{   /* the pid allocator: init_pid_ns.idr.idr_next (4.15+) or .last_pid, and the way to it */
		const struct btf_type *ns = find_struct(btf, "pid_namespace"), *pid = find_struct(btf, "pid");
		const struct btf_type *idr = find_struct(btf, "idr");
		long idr_off = ns ? member_offset(btf, ns, "idr", 0) : -1;
		long next = idr ? member_offset(btf, idr, "idr_next", 0) : -1;

		print_off("thread_pid", member_offset(btf, task, "thread_pid", 0), &first);
		print_off("pid_numbers", pid ? member_offset(btf, pid, "numbers", 0) : -1, &first);
		print_off("pidns_idr_next", idr_off >= 0 && next >= 0 ? idr_off + next : -1, &first);
		print_off("pidns_last_pid", ns ? member_offset(btf, ns, "last_pid", 0) : -1, &first);
		print_off("pidns_child_reaper", ns ? member_offset(btf, ns, "child_reaper", 0) : -1, &first);
	}
	if (current_task_location(btf, loc, sizeof(loc)))
		printf(",\n  \"current_task\": \"%s\"", loc);
	else
		printf(",\n  \"current_task\": null");
	printf("\n}\n");
	btf__free(btf);
	return 0;
}
