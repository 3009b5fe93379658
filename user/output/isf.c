/*
 * A Volatility-3-style ISF (intermediate symbol format) holding just what we discovered, shaped so that
 * LibVMI's JSON profile reader accepts it.
 *
 * LibVMI (libvmi/json_profiles/json_profiles.c): a top-level "metadata" key makes the file a Volatility
 * ISF; "metadata.windows" present → Windows, else Linux. volatility_ist.c reads
 * user_types.<struct>.fields.<member>.offset (recursing into anonymous members), user_types.<struct>.size
 * and symbols.<name>.address — with json_object_get_uint64 when built with JSONC_UINT64_SUPPORT, so
 * addresses are written as unsigned 64-bit integers (what dwarf2json writes too).
 *
 * Volatility 3's schema (volatility3/schemas/schema-6.3.0.json): the top level needs metadata,
 * base_types, user_types, enums, symbols and nothing else; metadata is {format "6.x.y", producer
 * {name, version, ...}, linux {symbols[], types[]}} with no other keys; a user type needs kind, size,
 * fields; a field needs type and offset. Only producer allows extra keys: we say there that addresses
 * are runtime ones.
 *
 * init_task's address is the runtime (KASLR-relocated) VA, not the link-time one a dwarf2json ISF has:
 * LibVMI's init_kaslr() (libvmi/os/linux/core.c) first reads init_task at the address as given and, if
 * that works, takes KASLR shift = that address - symbol address = 0 and uses it as is. A link-time
 * address would only work when it happens not to be mapped (otherwise LibVMI reads the wrong page);
 * Volatility 3 itself would need far more of the kernel's types than we have anyway.
 *
 * Sizes of task_struct / mm_struct are unknown to us: we write the end of the last known member
 * (a lower bound) and say so in producer.notes.
 */
#include <errno.h>
#include <string.h>
#include "common/json_writer.h"
#include "output/output.h"

enum isf_type { T_LIST_HEAD, T_INT, T_COMM, T_PTR_MM, T_PTR_TASK, T_PTR_VOID, T_ULONG, T_UINT, T_PTR_CRED };

static const enum isf_type task_field_type[TF_NR] = {
	[TF_TASKS] = T_LIST_HEAD, [TF_PID] = T_INT, [TF_TGID] = T_INT, [TF_COMM] = T_COMM,
	[TF_MM] = T_PTR_MM, [TF_ACTIVE_MM] = T_PTR_MM, [TF_REAL_PARENT] = T_PTR_TASK,
	[TF_PARENT] = T_PTR_TASK, [TF_CHILDREN] = T_LIST_HEAD, [TF_SIBLING] = T_LIST_HEAD,
	[TF_CRED] = T_PTR_VOID,   /* struct cred described only when its ids were found (T_PTR_CRED then) */
};

/* psz: the guest's pointer (and long) size, 4 on a 32-bit guest */
static uint64_t isf_type_size(enum isf_type t, unsigned psz)
{
	switch (t) {
	case T_LIST_HEAD: return 2 * psz;
	case T_INT:       return 4;
	case T_UINT:      return 4;
	case T_COMM:      return 16;
	default:          return psz;
	}
}

static void type_ref(json_writer_t *w, const char *kind, const char *name)
{
	jsonw_start_object(w);
	jsonw_string_field(w, "kind", kind);
	jsonw_string_field(w, "name", name);
	jsonw_end_object(w);
}

static void pointer_to(json_writer_t *w, const char *kind, const char *name)
{
	jsonw_start_object(w);
	jsonw_string_field(w, "kind", "pointer");
	jsonw_name(w, "subtype");
	type_ref(w, kind, name);
	jsonw_end_object(w);
}

static void type_desc(json_writer_t *w, enum isf_type t)
{
	switch (t) {
	case T_LIST_HEAD:
		type_ref(w, "struct", "list_head");
		break;
	case T_INT:
		type_ref(w, "base", "int");
		break;
	case T_COMM:
		jsonw_start_object(w);
		jsonw_string_field(w, "kind", "array");
		jsonw_u64_field(w, "count", 16);
		jsonw_name(w, "subtype");
		type_ref(w, "base", "char");
		jsonw_end_object(w);
		break;
	case T_PTR_MM:
		pointer_to(w, "struct", "mm_struct");
		break;
	case T_PTR_TASK:
		pointer_to(w, "struct", "task_struct");
		break;
	case T_PTR_VOID:
		pointer_to(w, "base", "void");
		break;
	case T_ULONG:
		type_ref(w, "base", "unsigned long");
		break;
	case T_UINT:   /* kuid_t / kgid_t: one u32 */
		type_ref(w, "base", "unsigned int");
		break;
	case T_PTR_CRED:
		pointer_to(w, "struct", "cred");
		break;
	}
}

static void field(json_writer_t *w, const char *name, enum isf_type t, int64_t offset)
{
	jsonw_name(w, name);
	jsonw_start_object(w);
	jsonw_name(w, "type");
	type_desc(w, t);
	jsonw_int_field(w, "offset", offset);
	jsonw_end_object(w);
}

/* A user type: name, kind struct, size, then its fields (closed by two jsonw_end_object) */
static void struct_begin(json_writer_t *w, const char *name, uint64_t size)
{
	jsonw_name(w, name);
	jsonw_start_object(w);
	jsonw_string_field(w, "kind", "struct");
	jsonw_u64_field(w, "size", size);
	jsonw_name(w, "fields");
	jsonw_start_object(w);
}

static void base_type(json_writer_t *w, const char *name, uint64_t size, bool is_signed, const char *kind)
{
	jsonw_name(w, name);
	jsonw_start_object(w);
	jsonw_u64_field(w, "size", size);
	jsonw_bool_field(w, "signed", is_signed);
	jsonw_string_field(w, "kind", kind);
	jsonw_string_field(w, "endian", "little");
	jsonw_end_object(w);
}

/* A field whose type is a pointer to a struct (or, sub NULL, a base type named base). */
static void field_typed(json_writer_t *w, const char *name, const char *base, const char *sub, int64_t offset)
{
	jsonw_name(w, name);
	jsonw_start_object(w);
	jsonw_name(w, "type");
	if (sub && base)
		type_ref(w, base, sub);        /* an embedded struct */
	else if (sub)
		pointer_to(w, "struct", sub);
	else
		type_ref(w, "base", base);
	jsonw_int_field(w, "offset", offset);
	jsonw_end_object(w);
}

/* The memory-map and path members found (issue 14), in Volatility's names: each struct with what is known
 * of it. kind "s" embeds a struct, "p" points to one, anything else is a base type. */
static void maps_types(json_writer_t *w, const struct discovery_result *res)
{
	static const struct { const char *st; int m; const char *kind, *type; } f[] = {
		{ "vm_area_struct", VMA_START, "b", "unsigned long" }, { "vm_area_struct", VMA_END, "b", "unsigned long" },
		{ "vm_area_struct", VMA_NEXT, "p", "vm_area_struct" }, { "vm_area_struct", VMA_MM, "p", "mm_struct" },
		{ "vm_area_struct", VMA_FLAGS, "b", "unsigned long" }, { "vm_area_struct", VMA_PGOFF, "b", "unsigned long" },
		{ "vm_area_struct", VMA_FILE, "p", "file" }, { "vm_area_struct", VMA_PRIVATE, "b", "pointer" },
		{ "dentry", DENTRY_PARENT, "p", "dentry" }, { "dentry", DENTRY_NAME, "s", "qstr" },
		{ "dentry", DENTRY_HASH, "s", "hlist_bl_node" }, { "vfsmount", VFSMOUNT_ROOT, "p", "dentry" },
		{ "mount", MOUNT_MNT, "s", "vfsmount" }, { "mount", MOUNT_PARENT, "p", "mount" },
		{ "mount", MOUNT_MOUNTPOINT, "p", "dentry" },
	};
	static const char *const structs[] = { "vm_area_struct", "dentry", "vfsmount", "mount" };
	const struct offset_result *m = res->maps;

	for (size_t k = 0; k < sizeof(structs) / sizeof(structs[0]); k++) {
		uint64_t size = 0;
		bool any = false;
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			if (!strcmp(f[i].st, structs[k]) && m[f[i].m].found) {
				any = true;
				if ((uint64_t)m[f[i].m].offset + 16 > size)
					size = (uint64_t)m[f[i].m].offset + 16;
			}
		if (!any)
			continue;
		struct_begin(w, structs[k], size);
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			if (!strcmp(f[i].st, structs[k]) && m[f[i].m].found)
				field_typed(w, maps_member_names[f[i].m], f[i].kind[0] == 'b' ? f[i].type :
					    f[i].kind[0] == 's' ? "struct" : NULL, f[i].kind[0] == 'b' ? NULL : f[i].type,
					    m[f[i].m].offset);
		jsonw_end_object(w);
		jsonw_end_object(w);
	}
	if (m[FILE_DENTRY].found && m[FILE_MNT].found) {   /* struct path inside struct file */
		int64_t base = m[FILE_DENTRY].offset < m[FILE_MNT].offset ? m[FILE_DENTRY].offset : m[FILE_MNT].offset;
		struct_begin(w, "path", 16);
		field_typed(w, "mnt", NULL, "vfsmount", m[FILE_MNT].offset - base);
		field_typed(w, "dentry", NULL, "dentry", m[FILE_DENTRY].offset - base);
		jsonw_end_object(w);
		jsonw_end_object(w);
		struct_begin(w, "file", (uint64_t)base + 16);
		field_typed(w, "f_path", "struct", "path", base);
		jsonw_end_object(w);
		jsonw_end_object(w);
	}
	if (m[DENTRY_NAME].found) {   /* the kernel's qstr: hash, len, then the name pointer (fixed by the kernel) */
		struct_begin(w, "qstr", 16);
		field_typed(w, "hash", "unsigned int", NULL, 0);
		field_typed(w, "len", "unsigned int", NULL, 4);
		field_typed(w, "name", "pointer", NULL, 8);
		jsonw_end_object(w);
		jsonw_end_object(w);
	}
	if (m[DENTRY_HASH].found) {
		struct_begin(w, "hlist_bl_node", 16);
		field_typed(w, "next", "pointer", NULL, 0);
		field_typed(w, "pprev", "pointer", NULL, 8);
		jsonw_end_object(w);
		jsonw_end_object(w);
	}
}

int output_isf(FILE *f, const struct discovery_result *res, const struct output_opts *o)
{
	const char *version = o && o->version ? o->version : "0.0.0";
	uint64_t task_size = 0, mm_size;
	const unsigned psz = guest_ptr_size(res);
	json_writer_t *w;
	int err;

	if (!output_libvmi_ready(res))
		return -ENOENT;
	for (int i = 0; i < TF_NR; i++) {
		uint64_t end = (uint64_t)res->task[i].offset + isf_type_size(task_field_type[i], psz);

		if (offset_usable(&res->task[i]) && end > task_size)
			task_size = end;
	}
	mm_size = (uint64_t)res->mm_pgd.offset + psz;
	for (int k = 0; k < 4; k++)
		if (offset_usable(&res->mm_args[k]) && (uint64_t)res->mm_args[k].offset + psz > mm_size)
			mm_size = (uint64_t)res->mm_args[k].offset + psz;
	for (int k = MM_MAP_ROOT; k <= MM_START_STACK; k++)
		if (res->maps[k].found && (uint64_t)res->maps[k].offset + 16 > mm_size)
			mm_size = (uint64_t)res->maps[k].offset + 16;

	w = jsonw_new(f);
	if (!w)
		return -ENOMEM;
	jsonw_pretty(w, true);   /* a file people open */
	jsonw_start_object(w);

	jsonw_name(w, "metadata");
	jsonw_start_object(w);
	jsonw_string_field(w, "format", "6.2.0");
	jsonw_name(w, "producer");
	jsonw_start_object(w);
	jsonw_string_field(w, "name", "vmoffset-trace");
	jsonw_string_field(w, "version", version);
	jsonw_string_field(w, "addresses", "runtime");
	if (o && o->kaslr_known)
		jsonw_hex_field(w, "kaslr_shift", o->kaslr_shift);
	jsonw_bool_field(w, "validated", res->validated);
	jsonw_string_field(w, "notes",
			   "offsets discovered from guest memory without a profile; symbol addresses are "
			   "runtime (KASLR-relocated) VAs; struct sizes are lower bounds (end of the last "
			   "known member)");
	jsonw_end_object(w);
	jsonw_name(w, "linux");
	jsonw_start_object(w);
	jsonw_end_object(w);
	jsonw_end_object(w);

	jsonw_name(w, "base_types");
	jsonw_start_object(w);
	base_type(w, "char", 1, true, "char");
	base_type(w, "int", 4, true, "int");
	base_type(w, "pointer", psz, false, "int");
	base_type(w, "unsigned int", 4, false, "int");
	base_type(w, "unsigned long", psz, false, "int");
	base_type(w, "void", 0, false, "void");
	jsonw_end_object(w);

	jsonw_name(w, "user_types");
	jsonw_start_object(w);

	struct_begin(w, "list_head", 2 * psz);
	jsonw_name(w, "next");
	jsonw_start_object(w);
	jsonw_name(w, "type");
	pointer_to(w, "struct", "list_head");
	jsonw_int_field(w, "offset", 0);
	jsonw_end_object(w);
	jsonw_name(w, "prev");
	jsonw_start_object(w);
	jsonw_name(w, "type");
	pointer_to(w, "struct", "list_head");
	jsonw_int_field(w, "offset", (int)psz);
	jsonw_end_object(w);
	jsonw_end_object(w);
	jsonw_end_object(w);

	struct_begin(w, "mm_struct", mm_size);
	field(w, "pgd", T_PTR_VOID, res->mm_pgd.offset);
	for (int k = 0; k < 4; k++)   /* command-line members, when found (tied ones at the offset either reads) */
		if (offset_usable(&res->mm_args[k]))
			field(w, mm_args_names[k], T_ULONG, res->mm_args[k].offset);
	{   /* where the VMAs hang and the members naming maps: mmap (a list) or mm_mt (a maple tree) */
		const struct offset_result *m = res->maps;
		if (m[MM_MAP_ROOT].found)
			field_typed(w, res->maple ? "mm_mt" : "mmap", res->maple ? "struct" : NULL,
				    res->maple ? "maple_tree" : "vm_area_struct", m[MM_MAP_ROOT].offset);
		if (m[MM_MAP_COUNT].found)
			field_typed(w, "map_count", "int", NULL, m[MM_MAP_COUNT].offset);
		if (m[MM_EXE_FILE].found)
			field_typed(w, "exe_file", NULL, "file", m[MM_EXE_FILE].offset);
		for (int k = MM_START_BRK; k <= MM_START_STACK; k++)
			if (m[k].found)
				field_typed(w, maps_member_names[k], "unsigned long", NULL, m[k].offset);
	}
	jsonw_end_object(w);
	jsonw_end_object(w);
	if (res->maps[MM_MAP_ROOT].found && res->maple) {   /* the kernel's struct maple_tree: lock, flags, root */
		struct_begin(w, "maple_tree", res->maple_root + 8);
		field_typed(w, "ma_root", "pointer", NULL, res->maple_root);
		jsonw_end_object(w);
		jsonw_end_object(w);
	}
	maps_types(w, res);

	bool ids = true;
	uint64_t cred_size = 0;

	for (int k = 0; k < 4; k++) {
		ids &= res->cred_ids[k].found;
		if ((uint64_t)res->cred_ids[k].offset + 4 > cred_size)
			cred_size = (uint64_t)res->cred_ids[k].offset + 4;
	}
	if (ids) {   /* Volatility's names; kuid_t/kgid_t written as the u32 they hold */
		struct_begin(w, "cred", cred_size);
		for (int k = 0; k < 4; k++)
			field(w, cred_id_names[k], T_UINT, res->cred_ids[k].offset);
		jsonw_end_object(w);
		jsonw_end_object(w);
	}

	struct_begin(w, "task_struct", task_size);
	/* a member tied in an interchangeable pair is written at the offset that held its value on every task */
	for (int i = 0; i < TF_NR; i++)
		if (offset_usable(&res->task[i]))
			field(w, task_field_names[i], i == TF_CRED && ids ? T_PTR_CRED : task_field_type[i],
			      res->task[i].offset);
	jsonw_end_object(w);
	jsonw_end_object(w);

	jsonw_end_object(w);   /* user_types */

	jsonw_name(w, "enums");
	jsonw_start_object(w);
	jsonw_end_object(w);

	jsonw_name(w, "symbols");
	jsonw_start_object(w);
	jsonw_name(w, "init_task");
	jsonw_start_object(w);
	jsonw_u64_field(w, "address", res->init_task);
	jsonw_name(w, "type");
	type_ref(w, "struct", "task_struct");
	jsonw_end_object(w);
	jsonw_end_object(w);

	jsonw_end_object(w);
	err = jsonw_errors(w) ? -EINVAL : 0;
	jsonw_destroy(&w);
	return ferror(f) ? -EIO : err;
}
