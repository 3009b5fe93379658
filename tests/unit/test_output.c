/*
 * cmocka: the JSON writer and the three output formats (json, libvmi, isf), against golden files in
 * tests/unit/data/ (regenerate with VMOT_UPDATE_GOLDEN=1 after a deliberate change, then review the diff).
 * The result is hand-made (Debian 6.1.0-47-amd64's real offsets), so these tests need no guest.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include "common/json_writer.h"
#include "output/output.h"

#ifndef DATA_DIR
#define DATA_DIR "tests/unit/data"
#endif

static const char *data_dir(void)
{
	const char *d = getenv("VMOT_TEST_DATA");

	return d ? d : DATA_DIR;
}

/* Run a writer into memory; returns the NUL-terminated text (caller frees) and its return code. */
typedef int (*writer_fn)(FILE *f, const struct discovery_result *res, const struct output_opts *o);

static char *render(writer_fn fn, const struct discovery_result *res, const struct output_opts *o, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = fn(f, res, o);
	fclose(f);
	return buf;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	if (fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void check_golden(const char *name, const char *text)
{
	char path[512];
	char *want;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
	if (getenv("VMOT_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(text, f);
		fclose(f);
		return;
	}
	want = read_file(path);
	if (!want)
		fail_msg("golden file %s missing (VMOT_UPDATE_GOLDEN=1 writes it)", path);
	if (strcmp(want, text)) {
		fprintf(stderr, "--- %s (golden)\n%s--- got\n%s", path, want, text);
		fail_msg("output differs from %s", path);
	}
	free(want);
}

/* Debian 6.1.0-47-amd64 (from ../shared/layouts), as discovery would report it. */
static void make_result(struct discovery_result *r)
{
	static const int64_t off[TF_NR] = {
		[TF_TASKS] = 2192, [TF_PID] = 2416, [TF_TGID] = 2420, [TF_COMM] = 2976, [TF_MM] = 2272,
		[TF_ACTIVE_MM] = 2280, [TF_REAL_PARENT] = 2432, [TF_PARENT] = 2440, [TF_CHILDREN] = 2448,
		[TF_SIBLING] = 2464, [TF_CRED] = 2960,
	};

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < TF_NR; i++) {
		r->task[i].offset = off[i];
		r->task[i].found = true;
		r->task[i].confidence = 1.0;
		snprintf(r->task[i].how, sizeof(r->task[i].how), "test: %s", task_field_names[i]);
	}
	r->mm_pgd = (struct offset_result){ .offset = 72, .found = true, .confidence = 0.975,
					    .how = "pgd = observed CR3 root for 39/40 tasks" };
	for (int k = 0; k < 4; k++)   /* cred ids of a 6.x layout: uid gid suid sgid euid egid from +8 */
		r->cred_ids[k] = (struct offset_result){ .offset = 8 + (int64_t[]){ 0, 4, 16, 20 }[k], .found = true,
							 .confidence = 1.0, .how = "test: ids block" };
	r->init_task = 0xffffffff9e80a940ULL;
	r->page_offset_base = 0xffff9a4f40000000ULL;
	r->kernel_cr3 = 0x10c2e000ULL | 0x1;   /* PCID bits must not reach kpgd */
	r->ntasks = 97;
	r->nthreads = 143;
	r->switches_observed = 812;
	r->switches_explained = 812;
	r->roots_observed = 31;
	r->roots_explained = 31;
	r->validated = true;
	r->percpu_current = 0x1fb80;
	r->ncurrent = 2;
	r->current[0] = (struct vcpu_current){ .vcpu = 0, .task = 0xffff9a4f41000000, .pid = 1, .comm = "init" };
	r->current[1] = (struct vcpu_current){ .vcpu = 1, .task = 0xffffffff9e80a940, .pid = 0, .comm = "swapper/1" };
	r->bytes_read = 5242880;
	r->elapsed_s = 0.25;
}

static const struct output_opts opts = {
	.name = "debian12", .version = "0.1.0", .kaslr_known = true, .kaslr_shift = 0x1d800000,
};

/* Nesting, separators, escaping of control bytes, invalid UTF-8 and u64 extremes; one value per line. */
static void test_jsonw_compact_and_escaping(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_writer_t *w = jsonw_new(f);
	const char hostile[] = { 'a', '"', '\\', '\n', 0x01, (char)0xc3, (char)0xa9, (char)0xff, 'z', 0 };

	jsonw_pretty(w, false);
	jsonw_start_object(w);
	jsonw_string_field(w, "s", hostile);
	jsonw_u64_field(w, "max", UINT64_MAX);
	jsonw_int_field(w, "neg", INT64_MIN);
	jsonw_hex_field(w, "h", 0xffffffff81000000ULL);
	jsonw_name(w, "a");
	jsonw_start_array(w);
	jsonw_bool(w, true);
	jsonw_null(w);
	jsonw_start_object(w);
	jsonw_end_object(w);
	jsonw_start_array(w);
	jsonw_end_array(w);
	jsonw_end_array(w);
	jsonw_float_field_fmt(w, "nan", "%.3f", 0.0 / 0.0);
	jsonw_end_object(w);
	jsonw_start_object(w);   /* a second top-level value streams on its own line */
	jsonw_u64_field(w, "n", 2);
	jsonw_end_object(w);
	assert_int_equal(jsonw_errors(w), 0);
	jsonw_destroy(&w);
	fclose(f);
	assert_string_equal(buf,
		"{\"s\":\"a\\\"\\\\\\n\\u0001\xc3\xa9\\u00ffz\",\"max\":18446744073709551615,"
		"\"neg\":-9223372036854775808,\"h\":\"0xffffffff81000000\",\"a\":[true,null,{},[]],"
		"\"nan\":null}\n{\"n\":2}\n");
	free(buf);
}

/* Pretty mode indents four spaces, one member per line, and closes empty containers inline. */
static void test_jsonw_pretty(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_writer_t *w = jsonw_new(f);

	jsonw_pretty(w, true);
	jsonw_start_object(w);
	jsonw_u64_field(w, "a", 1);
	jsonw_name(w, "b");
	jsonw_start_array(w);
	jsonw_u64(w, 2);
	jsonw_u64(w, 3);
	jsonw_end_array(w);
	jsonw_name(w, "c");
	jsonw_start_object(w);
	jsonw_end_object(w);
	jsonw_end_object(w);
	jsonw_destroy(&w);
	fclose(f);
	assert_string_equal(buf, "{\n    \"a\": 1,\n    \"b\": [\n        2,\n        3\n    ],\n    \"c\": {}\n}\n");
	free(buf);
}

/* Misuse is counted, not silently accepted: a value without a name in an object, unbalanced ends. */
static void test_jsonw_errors_counted(void **state)
{
	FILE *f = fopen("/dev/null", "w");
	json_writer_t *w = jsonw_new(f);

	jsonw_start_object(w);
	jsonw_u64(w, 1);
	jsonw_end_array(w);
	assert_true(jsonw_errors(w) > 0);
	jsonw_destroy(&w);
	fclose(f);
}

static void test_format_parse(void **state)
{
	enum output_format fmt;

	assert_int_equal(output_format_parse("libvmi", &fmt), 0);
	assert_int_equal(fmt, OUT_LIBVMI);
	assert_int_equal(output_format_parse("isf", &fmt), 0);
	assert_int_equal(fmt, OUT_ISF);
	assert_int_equal(output_format_parse("json", &fmt), 0);
	assert_int_equal(fmt, OUT_JSON);
	assert_int_equal(output_format_parse("yaml", &fmt), -EINVAL);
	assert_string_equal(output_format_name(OUT_ISF), "isf");
}

/* Our JSON for a validated result matches the golden file and parses back with exact u64 values. */
static void test_json_golden(void **state)
{
	struct discovery_result r;
	struct json_object *root, *ts, *v;
	int rc;
	char *text;

	make_result(&r);
	json_pretty = true;
	text = render(output_offsets_json, &r, &opts, &rc);
	json_pretty = false;
	assert_int_equal(rc, 0);
	check_golden("offsets.json", text);

	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "task_struct", &ts));
	assert_true(json_object_object_get_ex(ts, "comm", &v));
	assert_int_equal(json_object_get_int64(v), 2976);
	assert_true(json_object_object_get_ex(root, "init_task", &v));
	assert_string_equal(json_object_get_string(v), "0xffffffff9e80a940");
	assert_true(json_object_object_get_ex(root, "validated", &v));
	assert_true(json_object_get_boolean(v));
	json_object_put(root);
	free(text);
}

/* Undetermined members are null (not 0), and the reason is carried; compact mode is one line. */
static void test_json_undetermined_golden(void **state)
{
	struct discovery_result r;
	struct json_object *root, *ts, *v;
	int rc;
	char *text;

	make_result(&r);
	r.task[TF_CRED].found = false;
	r.task[TF_CRED].confidence = 0.5;
	snprintf(r.task[TF_CRED].how, sizeof(r.task[TF_CRED].how), "2 candidates: 2952, 2960");
	r.task[TF_CRED].offset = -1;
	r.mm_pgd.found = false;
	r.mm_pgd.confidence = 0;
	snprintf(r.mm_pgd.how, sizeof(r.mm_pgd.how), "no observed CR3 matched");
	r.validated = false;
	r.switches_explained = 0;
	r.roots_explained = 0;
	r.percpu_current = -1;
	r.ncurrent = 0;
	snprintf(r.reason, sizeof(r.reason), "mm_struct.pgd undetermined: no \"CR3\" observations");
	text = render(output_offsets_json, &r, &opts, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strchr(text, '\n'));
	assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);   /* a single line */
	check_golden("offsets-undetermined.json", text);

	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "task_struct", &ts));
	assert_true(json_object_object_get_ex(ts, "cred", &v));
	assert_null(v);                                  /* JSON null */
	assert_true(json_object_object_get_ex(root, "reason", &v));
	assert_non_null(strstr(json_object_get_string(v), "\"CR3\""));
	json_object_put(root);
	free(text);

	/* libvmi and isf refuse to write a config that cannot work */
	text = render(output_libvmi_conf, &r, &opts, &rc);
	assert_int_equal(rc, -ENOENT);
	assert_string_equal(text, "");
	free(text);
	text = render(output_isf, &r, &opts, &rc);
	assert_int_equal(rc, -ENOENT);
	assert_string_equal(text, "");
	free(text);
}

/* The libvmi.conf entry: hex offsets, runtime init_task, linux_kaslr, kpgd without PCID bits. */
static void test_libvmi_golden(void **state)
{
	struct discovery_result r;
	int rc;
	char *text;

	make_result(&r);
	text = render(output_libvmi_conf, &r, &opts, &rc);
	assert_int_equal(rc, 0);
	check_golden("libvmi.conf", text);
	assert_non_null(strstr(text, "    linux_name = 0xba0;\n"));
	assert_non_null(strstr(text, "    kpgd = 0x10c2e000;\n"));
	free(text);
}

/* KASLR shift 0: LibVMI needs the init_task symbol, so the entry references the ISF (or says to). */
static void test_libvmi_no_kaslr(void **state)
{
	struct discovery_result r;
	struct output_opts o = opts;
	int rc;
	char *text;

	make_result(&r);
	o.kaslr_shift = 0;
	text = render(output_libvmi_conf, &r, &o, &rc);
	assert_int_equal(rc, 0);
	assert_null(strstr(text, "linux_kaslr"));
	assert_non_null(strstr(text, "#   volatility_ist"));
	free(text);

	o.isf_path = "/var/lib/vmot/debian12.isf.json";
	text = render(output_libvmi_conf, &r, &o, &rc);
	assert_int_equal(rc, 0);
	check_golden("libvmi-isf.conf", text);
	free(text);

	o.name = "my guest";   /* the libvmi.conf lexer cannot read this name */
	text = render(output_libvmi_conf, &r, &o, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
	o.name = "g";          /* its WORD needs two characters */
	text = render(output_libvmi_conf, &r, &o, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
}

static struct json_object *get_path(struct json_object *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, k, &o))
			return NULL;
	return o;
}

/* The ISF matches the golden file and has what LibVMI's volatility_ist.c and Volatility's schema need. */
static void test_isf_golden_and_structure(void **state)
{
	static const char *const top[] = { "metadata", "base_types", "user_types", "enums", "symbols" };
	struct discovery_result r;
	struct json_object *root, *v;
	int rc;
	char *text;

	make_result(&r);
	text = render(output_isf, &r, &opts, &rc);
	assert_int_equal(rc, 0);
	check_golden("isf.json", text);

	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_int_equal(json_object_object_length(root), 5);   /* schema: no other top-level keys */
	for (size_t i = 0; i < 5; i++)
		assert_non_null(get_path(root, top[i]));
	/* LibVMI: "metadata" → Volatility IST; no "metadata.windows" → Linux */
	assert_null(get_path(root, "metadata.windows"));
	assert_non_null(get_path(root, "metadata.linux"));
	assert_string_equal(json_object_get_string(get_path(root, "metadata.format")), "6.2.0");
	/* the lookups linux_init() does through json_profile_lookup */
	assert_int_equal(json_object_get_uint64(get_path(root, "user_types.task_struct.fields.tasks.offset")), 2192);
	assert_int_equal(json_object_get_uint64(get_path(root, "user_types.task_struct.fields.mm.offset")), 2272);
	assert_int_equal(json_object_get_uint64(get_path(root, "user_types.task_struct.fields.pid.offset")), 2416);
	assert_int_equal(json_object_get_uint64(get_path(root, "user_types.task_struct.fields.comm.offset")), 2976);
	assert_int_equal(json_object_get_uint64(get_path(root, "user_types.mm_struct.fields.pgd.offset")), 72);
	v = get_path(root, "symbols.init_task.address");
	assert_non_null(v);
	assert_true(json_object_get_uint64(v) == 0xffffffff9e80a940ULL);   /* exact, above INT64_MAX */
	/* types are consistent: every referenced struct is defined, base types have the four keys */
	assert_non_null(get_path(root, "user_types.list_head.fields.next"));
	assert_string_equal(json_object_get_string(
		get_path(root, "user_types.task_struct.fields.comm.type.kind")), "array");
	assert_int_equal(json_object_get_int(get_path(root, "user_types.task_struct.fields.comm.type.count")), 16);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.task_struct.size")), 2976 + 16);
	assert_int_equal(json_object_get_int(get_path(root, "base_types.pointer.size")), 8);
	json_object_put(root);
	free(text);
}

/* A member that was not found is left out of the ISF (LibVMI then reports it missing) — not guessed. */
static void test_isf_omits_undetermined(void **state)
{
	struct discovery_result r;
	struct json_object *root;
	int rc;
	char *text;

	make_result(&r);
	r.task[TF_CRED].found = false;
	text = render(output_isf, &r, &opts, &rc);
	assert_int_equal(rc, 0);
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_null(get_path(root, "user_types.task_struct.fields.cred"));
	assert_non_null(get_path(root, "user_types.task_struct.fields.sibling"));
	json_object_put(root);
	free(text);
}

/* Memory-map and path members (6.12's offsets) go into the ISF under Volatility's names, every struct they
 * reference defined; the offsets JSON has them too. */
static void test_isf_maps_members(void **state)
{
	static const struct { int m; int64_t off; } offs[] = {
		{ MM_MAP_ROOT, 64 }, { MM_MAP_COUNT, 160 }, { MM_EXE_FILE, 1168 }, { MM_START_BRK, 352 }, { MM_BRK, 360 },
		{ MM_START_STACK, 368 }, { VMA_START, 0 }, { VMA_END, 8 }, { VMA_MM, 16 }, { VMA_FLAGS, 32 },
		{ VMA_PGOFF, 120 }, { VMA_FILE, 128 }, { VMA_PRIVATE, 136 }, { FILE_DENTRY, 72 }, { FILE_MNT, 64 },
		{ DENTRY_PARENT, 24 }, { DENTRY_NAME, 32 }, { DENTRY_HASH, 8 }, { VFSMOUNT_ROOT, 0 }, { MOUNT_MNT, 32 },
		{ MOUNT_PARENT, 16 }, { MOUNT_MOUNTPOINT, 24 },
	};
	struct discovery_result r;
	struct json_object *root;
	int rc;
	char *text;

	make_result(&r);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		r.maps[offs[i].m].found = true;
		r.maps[offs[i].m].offset = offs[i].off;
	}
	r.maple = true;
	r.maple_root = 8;
	text = render(output_isf, &r, &opts, &rc);
	assert_int_equal(rc, 0);
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.mm_struct.fields.mm_mt.offset")), 64);
	assert_string_equal(json_object_get_string(get_path(root, "user_types.mm_struct.fields.mm_mt.type.name")),
			    "maple_tree");
	assert_int_equal(json_object_get_int(get_path(root, "user_types.maple_tree.fields.ma_root.offset")), 8);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.mm_struct.fields.exe_file.offset")), 1168);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.vm_area_struct.fields.vm_pgoff.offset")), 120);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.file.fields.f_path.offset")), 64);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.path.fields.dentry.offset")), 8);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.dentry.fields.d_name.offset")), 32);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.qstr.fields.name.offset")), 8);
	assert_int_equal(json_object_get_int(get_path(root, "user_types.mount.fields.mnt_parent.offset")), 16);
	/* every struct a field names is defined */
	static const char *const defined[] = { "vm_area_struct", "file", "path", "dentry", "qstr", "hlist_bl_node",
					       "vfsmount", "mount", "maple_tree", "mm_struct" };
	for (size_t i = 0; i < sizeof(defined) / sizeof(defined[0]); i++) {
		char k[64];
		snprintf(k, sizeof(k), "user_types.%s.fields", defined[i]);
		assert_non_null(get_path(root, k));
	}
	json_object_put(root);
	free(text);
	text = render(output_offsets_json, &r, &opts, &rc);
	assert_int_equal(rc, 0);
	root = json_tokener_parse(text);
	assert_int_equal(json_object_get_int(get_path(root, "maps.vm_flags")), 32);
	assert_int_equal(json_object_get_int(get_path(root, "maps.mm_mt")), 64);
	json_object_put(root);
	free(text);
}

/* A small guest: idle task, init, a kernel thread tree, a threaded process, a group whose leader is
 * gone, a hostile comm, and a parent cycle (corrupt memory). */
static const struct guest_task ps_tasks[] = {
	{ .addr = 0xffffffff9e80a940, .pid = 0,   .tgid = 0,   .ppid = 0,   .comm = "swapper/0",   .kernel_thread = true },
	{ .addr = 0xffff9a4f41000000, .pid = 1,   .tgid = 1,   .ppid = 0,   .comm = "init", .mm = 0xffff9a4f42000000, .pgd_pa = 0x2a4b6000 },
	{ .addr = 0xffff9a4f41002000, .pid = 2,   .tgid = 2,   .ppid = 0,   .comm = "kthreadd",    .kernel_thread = true },
	{ .addr = 0xffff9a4f41004000, .pid = 3,   .tgid = 3,   .ppid = 2,   .comm = "kworker/0:0", .kernel_thread = true },
	{ .addr = 0xffff9a4f41008000, .pid = 201, .tgid = 200, .ppid = 1,   .comm = "worker-1", .mm = 0xffff9a4f42004000, .pgd_pa = 0x3000000 },
	{ .addr = 0xffff9a4f41006000, .pid = 200, .tgid = 200, .ppid = 1,   .comm = "mt", .mm = 0xffff9a4f42004000, .pgd_pa = 0x3000000 },
	{ .addr = 0xffff9a4f4100a000, .pid = 202, .tgid = 200, .ppid = 1,   .comm = "worker-2", .mm = 0xffff9a4f42004000, .pgd_pa = 0x3000000 },
	{ .addr = 0xffff9a4f4100c000, .pid = 100, .tgid = 100, .ppid = 1,   .comm = "sh", .mm = 0xffff9a4f42006000, .pgd_pa = 0x4000000 },
	{ .addr = 0xffff9a4f4100e000, .pid = 101, .tgid = 101, .ppid = 100, .comm = "ev\xffil\n\"x", .mm = 0xffff9a4f42008000, .pgd_pa = 0x5000000 },
	{ .addr = 0xffff9a4f41010000, .pid = 301, .tgid = 300, .ppid = 1,   .comm = "orphan-thr", .mm = 0xffff9a4f4200a000, .pgd_pa = 0x6000000 },
	{ .addr = 0xffff9a4f41012000, .pid = 500, .tgid = 500, .ppid = 501, .comm = "cyc-a", .mm = 0xffff9a4f4200c000, .pgd_pa = 0x7000000 },
	{ .addr = 0xffff9a4f41014000, .pid = 501, .tgid = 501, .ppid = 500, .comm = "cyc-b", .mm = 0xffff9a4f4200e000, .pgd_pa = 0x8000000 },
};
#define PS_NTASKS (sizeof(ps_tasks) / sizeof(ps_tasks[0]))

typedef int (*ps_printer)(FILE *f, const struct ps_row *rows, size_t n);

static char *render_ps(ps_printer fn, bool threads, int *rc)
{
	struct ps_row *rows;
	size_t nrows, len = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	rows = ps_rows(ps_tasks, PS_NTASKS, threads, &nrows);
	assert_non_null(rows);
	for (size_t i = 0; i < nrows; i++)   /* one process started as another user: real 1000/100, effective 1001/101 */
		if (rows[i].t->pid == 100) {
			rows[i].have_ids = true;
			memcpy(rows[i].ids, (uint32_t[4]){ 1000, 100, 1001, 101 }, sizeof(rows[i].ids));
		}
	*rc = fn(f, rows, nrows);
	fclose(f);
	free(rows);
	return buf;
}

static int table_printer(FILE *f, const struct ps_row *rows, size_t n)
{
	ps_print_table(f, rows, n);
	return 0;
}

/* Leaders only, by PID, with group sizes; a group without its leader shows its first thread; kernel
 * threads in brackets; control and non-ASCII bytes of a guest comm shown as '?'. */
static void test_ps_table_golden(void **state)
{
	int rc;
	char *text = render_ps(table_printer, false, &rc);

	check_golden("ps.txt", text);
	/* no command line known: CMD shows [comm], as ps does for a process without one */
	assert_non_null(strstr(text, "    200       1     200       3 -        mt               -                        [mt]\n"));
	assert_non_null(strstr(text, "    301       1     300       1 -        orphan-thr       -                        [orphan-thr]\n"));
	assert_non_null(strstr(text, "[kthreadd]"));
	assert_non_null(strstr(text, "ev?il?\"x         -                        [ev?il?\"x]\n"));
	/* USER: the effective uid; - where the ids are unknown */
	assert_non_null(strstr(text, "    100       1     100       1 1001     sh "));
	assert_null(strstr(text, "worker-1"));
	free(text);
	text = render_ps(table_printer, true, &rc);   /* --threads: every task */
	assert_non_null(strstr(text, "    201       1     200       3 -        worker-1         -                        [worker-1]\n"));
	free(text);
}

/* The tree nests by PPID, sorts children by PID, and still prints the rows on a parent cycle. */
static void test_ps_tree_golden(void **state)
{
	int rc;
	char *text = render_ps(ps_print_tree, false, &rc);

	assert_int_equal(rc, 0);
	check_golden("ps-tree.txt", text);
	assert_non_null(strstr(text, "0 [swapper/0]\n|-- 1 init\n"));
	assert_non_null(strstr(text, "|   |-- 100 sh\n|   |   `-- 101 ev?il?\"x\n"));
	assert_non_null(strstr(text, "500 cyc-a\n`-- 501 cyc-b\n"));
	free(text);
}

/* JSON rows parse back; a guest comm that is not UTF-8 is escaped byte by byte, not passed through. */
static void test_ps_json(void **state)
{
	struct json_object *root, *row, *v;
	int rc;
	char *text = render_ps(ps_print_json, true, &rc);

	assert_int_equal(rc, 0);
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_int_equal(json_object_array_length(root), PS_NTASKS);
	row = json_object_array_get_idx(root, 5);   /* sorted by PID: 0 1 2 3 100 101 ... */
	assert_true(json_object_object_get_ex(row, "pid", &v));
	assert_int_equal(json_object_get_int(v), 101);
	assert_non_null(strstr(text, "\"comm\":\"ev\\u00ffil\\n\\\"x\""));
	assert_true(json_object_object_get_ex(row, "uid", &v));   /* ids unknown: null */
	assert_null(v);
	row = json_object_array_get_idx(root, 4);   /* pid 100: started as another user */
	assert_true(json_object_object_get_ex(row, "uid", &v));
	assert_int_equal(json_object_get_int(v), 1000);
	assert_true(json_object_object_get_ex(row, "egid", &v));
	assert_int_equal(json_object_get_int(v), 101);
	row = json_object_array_get_idx(root, 0);
	assert_true(json_object_object_get_ex(row, "mm", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(row, "task", &v));
	assert_string_equal(json_object_get_string(v), "0xffffffff9e80a940");
	json_object_put(root);
	free(text);
}

/* A parent chain deeper than the recursion bound (hostile memory) prints every task exactly once. */
static void test_ps_tree_deep_chain(void **state)
{
	enum { N = 5000 };
	struct guest_task *t = calloc(N, sizeof(*t));
	struct ps_row *rows;
	size_t nrows, len = 0, lines = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	for (int i = 0; i < N; i++) {
		t[i].pid = t[i].tgid = i + 1;
		t[i].ppid = i;   /* 1 ← 2 ← 3 ... */
		snprintf(t[i].comm, sizeof(t[i].comm), "c%d", i + 1);
	}
	rows = ps_rows(t, N, false, &nrows);
	assert_non_null(rows);
	assert_int_equal(ps_print_tree(f, rows, nrows), 0);
	fclose(f);
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, N);
	free(buf);
	free(rows);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jsonw_compact_and_escaping),
		cmocka_unit_test(test_jsonw_pretty),
		cmocka_unit_test(test_jsonw_errors_counted),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_json_golden),
		cmocka_unit_test(test_json_undetermined_golden),
		cmocka_unit_test(test_libvmi_golden),
		cmocka_unit_test(test_libvmi_no_kaslr),
		cmocka_unit_test(test_isf_golden_and_structure),
		cmocka_unit_test(test_isf_omits_undetermined),
		cmocka_unit_test(test_isf_maps_members),
		cmocka_unit_test(test_ps_table_golden),
		cmocka_unit_test(test_ps_tree_golden),
		cmocka_unit_test(test_ps_json),
		cmocka_unit_test(test_ps_tree_deep_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
