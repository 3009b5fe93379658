/*
 * A libvmi.conf entry, ready to paste, that lets LibVMI list a Linux guest's processes without a
 * System.map.
 *
 * What LibVMI reads (libvmi/os/linux/core.c, linux_read_config_ghashtable_entries): sysmap,
 * linux_tasks, linux_mm, linux_pid, linux_name, linux_pgd, linux_init_task, linux_kaslr, kpgd; plus
 * volatility_ist (the JSON profile path) and ostype. The file grammar (libvmi/config/lexicon.l,
 * grammar.y) has tokens for exactly these; it has no generic key = value, so an unknown key is a syntax
 * error for the whole file, and linux_kaslr / kpgd / volatility_ist exist only in LibVMI >= 0.14.
 * Numbers are 0x-hex or decimal; a domain name is [a-zA-Z0-9][a-zA-Z0-9._-]+ (at least two characters).
 *
 * How linux_init() uses them (same file):
 *   - offsets set in the config win; init_from_json_profile() fills only the ones still 0;
 *   - linux_init_task given → no System.map lookup for init_task;
 *   - kpgd given → used as the kernel page-table root; otherwise vCPU 0's CR3 & ~0x1fff (live) or
 *     System.map heuristics (file mode, which fail without a System.map) — so we always write kpgd;
 *   - if linux_kaslr is 0 (unset), init_kaslr() runs: it reads init_task as given and then looks the
 *     *symbol* init_task up (System.map or JSON profile) to compute the shift, failing without one.
 *     So: KASLR shift != 0 → we write linux_kaslr and the entry stands alone; shift == 0 → LibVMI needs
 *     an ISF with symbols.init_task, which `--format isf` writes (referenced with volatility_ist).
 * linux_init_task is the runtime (relocated) VA: with linux_kaslr set LibVMI uses it as is.
 *
 * pagemode (LibVMI >= 0.15, libvmi/libvmi#1070): on a memory dump LibVMI 0.15 lists processes only with
 * pagemode = "VMI_PM_IA32E" set (measured); older LibVMI has no such token and rejects the file, so the
 * line says so. 5-level paging has no LibVMI page mode: the entry says that instead of a wrong one.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "arch/x86_64.h"
#include "output/output.h"

/* The libvmi.conf lexer's WORD: [a-zA-Z0-9][a-zA-Z0-9._-]+ */
static bool libvmi_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 2)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

/* FILENAME in the lexer: [a-zA-Z0-9\/._-]+ — no spaces or quotes in a path. */
static bool libvmi_path_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '/' || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

int output_libvmi_conf(FILE *f, const struct discovery_result *res, const struct output_opts *o)
{
	const char *name = o && o->name ? o->name : "guest";
	const char *version = o && o->version ? o->version : "0.0.0";
	bool kaslr_known = o && o->kaslr_known;
	uint64_t shift = kaslr_known ? o->kaslr_shift : 0;
	const char *isf = o ? o->isf_path : NULL;

	/* LibVMI's page modes: IA-32e; 32-bit with PAE; 32-bit without (legacy) */
	const char *pagemode = res->arm64 ? "VMI_PM_AARCH64" : res->paging32 == 3 ? "VMI_PM_PAE"
			       : res->paging32 == 2 ? "VMI_PM_LEGACY" : "VMI_PM_IA32E";

	if (!libvmi_name_ok(name) || (isf && !libvmi_path_ok(isf)))
		return -EINVAL;
	if (!output_libvmi_ready(res))
		return -ENOENT;

	fprintf(f, "# libvmi.conf entry by vmoffset-trace %s: offsets discovered without a profile\n", version);
	fprintf(f, "# validated: %s (%" PRIu64 "/%" PRIu64 " CR3 switches, %u/%u roots explained)\n",
		res->validated ? "yes" : "NO", res->switches_explained, res->switches_observed,
		res->roots_explained, res->roots_observed);
	fprintf(f, "# paging: %s; LibVMI page mode %s\n", res->arm64 ? (res->lpa2 ? "AArch64, 52-bit VAs (LPA2)" : "AArch64, 4 KiB granule")
		: res->paging32 ? (res->paging32 == 3 ? "32-bit PAE" : "32-bit 2-level") :
		res->la57 ? "5-level (LA57)" : "4-level",
		res->la57 ? "for 5-level paging (check your LibVMI supports it)" : pagemode);
	if (!kaslr_known)
		fprintf(f, "# KASLR shift unknown: LibVMI computes it from init_task's symbol (System.map or ISF)\n");
	else if (!shift && !isf)
		fprintf(f, "# KASLR shift is 0: LibVMI then wants init_task's symbol address; add\n"
			   "#   volatility_ist = \"/path/guest.isf.json\";  (from: vmoffset-trace offsets --format isf)\n");
	if (!res->la57)
		fprintf(f, "# pagemode needs LibVMI >= 0.15 (older versions reject the key: drop that line there)\n");
	else
		fprintf(f, "# 5-level paging: LibVMI has no page mode for it (no pagemode line written)\n");
	for (uint32_t i = 0; i < res->npairs; i++)
		fprintf(f, "# %s and %s held the same value on every task: either offset (0x%" PRIx64 ", 0x%" PRIx64
			   ") reads it; the first is written\n", res->pairs[i].members[0], res->pairs[i].members[1],
			(uint64_t)res->pairs[i].offsets[0], (uint64_t)res->pairs[i].offsets[1]);
	fprintf(f, "%s {\n", name);
	fprintf(f, "    ostype = \"Linux\";\n");
	if (!res->la57)
		fprintf(f, "    pagemode = \"%s\";\n", pagemode);
	fprintf(f, "    linux_tasks = 0x%" PRIx64 ";\n", (uint64_t)res->task[TF_TASKS].offset);
	fprintf(f, "    linux_mm = 0x%" PRIx64 ";\n", (uint64_t)res->task[TF_MM].offset);
	fprintf(f, "    linux_pid = 0x%" PRIx64 ";\n", (uint64_t)res->task[TF_PID].offset);
	fprintf(f, "    linux_name = 0x%" PRIx64 ";\n", (uint64_t)res->task[TF_COMM].offset);
	fprintf(f, "    linux_pgd = 0x%" PRIx64 ";\n", (uint64_t)res->mm_pgd.offset);
	fprintf(f, "    linux_init_task = 0x%" PRIx64 ";\n", res->init_task);
	if (shift)
		fprintf(f, "    linux_kaslr = 0x%" PRIx64 ";\n", shift);
	if (res->kernel_cr3)   /* a 32-bit PAE root is 32-byte aligned */
		fprintf(f, "    kpgd = 0x%" PRIx64 ";\n", cr3_root_of(res, res->kernel_cr3));
	if (isf)
		fprintf(f, "    volatility_ist = \"%s\";\n", isf);
	fprintf(f, "}\n");
	return ferror(f) ? -EIO : 0;
}
