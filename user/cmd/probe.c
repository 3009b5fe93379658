/*
 * `vmoffset-trace probe`: what this host offers for capture, in bpftool `feature probe` style.
 *
 * Sections: privileges, kernel (BTF, KVM flavour), hooks (present in BTF / attached / fired during a short
 * sample), CR3 sources (usable or not, and why). The sample traces every VM on the host and, unless
 * --no-guest, runs the built-in tiny guest (user/capture/tinyvm.h: CR3 writes, one PIO, MMIO and MSR exit
 * each) so a hook that stays silent is silent for a reason, not for lack of a guest.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "capture/capture.h"
#include "capture/internal.h"
#include "capture/tinyvm.h"
#include "cmd/cmd.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "common/units.h"

struct probe {
	/* static facts */
	const char *missing_cap;
	bool btf;
	bool mod_btf[KVM_BTF_MODS];
	bool dev_kvm, cpu_vmx, cpu_svm, intel_loaded, amd_loaded;
	bool kvm_module_no_btf;         /* kvm.ko loaded but without BTF (CONFIG_DEBUG_INFO_BTF_MODULES off) */
	int ept, npt;                   /* module parameter: 1 Y, 0 N, -1 unknown */
	bool type_vmx, type_svm, field_arch_cr3, field_fetch, enum_exreg_cr3;
	const char *hook_btf[CAP_HOOK_NR];
	/* another kernel's BTF (--btf), or an arm64 host: its KVM described from BTF alone */
	const char *btf_file;
	bool arm64;                     /* arm64 KVM: struct kvm_cpu_context with sys_regs[] */
	int64_t ttbr0_index, sys_regs_off;
	struct kvm_tp tps[256];
	size_t ntp;
	/* the sample */
	bool sampled;
	int open_err;
	int duration_ms;
	int vms;                        /* processes with a kvm-vm file */
	int guest_err;                  /* tinyvm: 0 ran, -errno, 1 not run */
	struct tinyvm_result guest;
	struct capture_hook_info hooks[CAP_HOOK_NR];
	struct capture_counters ctr;
	uint64_t src_events[CR3_SRC_NR];    /* events with a valid CR3 per source */
	uint64_t cr3_write_values;          /* mov-to-CR3 events with the written value */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmoffset-trace [-j] probe [--json] [--duration TIME] [--no-guest] [--btf FILE]\n\n"
		   "List the KVM tracepoints and CR3 sources this host offers.\n"
		   "  --json          JSON output (same as the global -j)\n"
		   "  --duration TIME sample length while watching running VMs (default 1s; 500ms, 2s, ...)\n"
		   "  --no-guest      do not run the built-in tiny guest during the sample\n"
		   "  --btf FILE      describe another kernel's KVM from its BTF (raw .BTF or an ELF with one), e.g. an\n"
		   "                  arm64 host's, instead of this host's; nothing is sampled\n\n"
		   "Examples:\n  sudo vmoffset-trace probe\n  sudo vmoffset-trace -j probe --duration 200ms\n"
		   "  vmoffset-trace probe --btf /sys/kernel/btf/vmlinux\n");
}

static bool file_has(const char *path, const char *word)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = line;

		while ((p = strstr(p, word))) {
			size_t n = strlen(word);

			if ((p == line || p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || !p[n])) {
				found = true;
				break;
			}
			p += n;
		}
	}
	fclose(f);
	return found;
}

static int param_bool(const char *path)
{
	char buf[8] = "";
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1' ? 1 : buf[0] ? 0 : -1;
}

/* Processes holding a kvm-vm file (running VMs), by /proc/PID/fd links. */
static int count_vms(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[300], link[64];
		struct dirent *fe;
		DIR *fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
		fd = opendir(path);
		if (!fd)
			continue;
		while ((fe = readdir(fd))) {
			char fpath[600];
			ssize_t len;

			snprintf(fpath, sizeof(fpath), "%s/%s", path, fe->d_name);
			len = readlink(fpath, link, sizeof(link) - 1);
			if (len > 0) {
				link[len] = 0;
				if (!strcmp(link, "anon_inode:kvm-vm")) {
					n++;
					break;
				}
			}
		}
		closedir(fd);
	}
	closedir(d);
	return n;
}

static void probe_static(struct probe *p)
{
	struct kvm_btf kb;

	if (p->btf_file) {   /* another kernel: its BTF only, nothing of this host */
		int err = kvm_btf_load_file(&kb, p->btf_file);

		if (err) {
			p_err("%s: no BTF could be read (%s)", p->btf_file, strerror(-err));
			return;
		}
		p->btf = true;
		p->arm64 = !kvm_btf_arm64_ttbr0(&kb, &p->ttbr0_index, &p->sys_regs_off);
		p->ntp = kvm_btf_tracepoints(&kb, p->tps, sizeof(p->tps) / sizeof(p->tps[0]));
		kvm_btf_free(&kb);
		return;
	}
	capture_check_privilege(&p->missing_cap);
	p->dev_kvm = access("/dev/kvm", F_OK) == 0;
	p->cpu_vmx = file_has("/proc/cpuinfo", "vmx");
	p->cpu_svm = file_has("/proc/cpuinfo", "svm");
	p->intel_loaded = access("/sys/module/kvm_intel", F_OK) == 0;
	p->amd_loaded = access("/sys/module/kvm_amd", F_OK) == 0;
	p->kvm_module_no_btf = access("/sys/module/kvm/initstate", F_OK) == 0 && access("/sys/kernel/btf/kvm", F_OK);
	p->ept = param_bool("/sys/module/kvm_intel/parameters/ept");
	p->npt = param_bool("/sys/module/kvm_amd/parameters/npt");
	if (kvm_btf_load(&kb))
		return;
	p->btf = true;
	for (int i = 0; i < KVM_BTF_MODS; i++)
		p->mod_btf[i] = kb.mod[i] != NULL;
	p->type_vmx = kvm_btf_has(&kb, "vcpu_vmx", BTF_KIND_STRUCT, NULL);
	p->type_svm = kvm_btf_has(&kb, "vcpu_svm", BTF_KIND_STRUCT, NULL);
	p->field_arch_cr3 = kvm_btf_has(&kb, "kvm_vcpu_arch", BTF_KIND_STRUCT, NULL);
	p->field_fetch = kvm_btf_has(&kb, "fetch_cache", BTF_KIND_STRUCT, NULL);
	p->enum_exreg_cr3 = kvm_btf_has(&kb, "kvm_reg", BTF_KIND_ENUM, NULL);
	for (int h = 0; h < CAP_HOOK_NR; h++) {
		char name[64];

		snprintf(name, sizeof(name), "btf_trace_%s", capture_hook_name(h));
		if (!kvm_btf_has(&kb, name, BTF_KIND_TYPEDEF, &p->hook_btf[h]))
			p->hook_btf[h] = NULL;
	}
	p->arm64 = !kvm_btf_arm64_ttbr0(&kb, &p->ttbr0_index, &p->sys_regs_off);
	p->ntp = kvm_btf_tracepoints(&kb, p->tps, sizeof(p->tps) / sizeof(p->tps[0]));
	kvm_btf_free(&kb);
}

static int on_event(void *ctx, const struct capture_event *ev, const struct observation *obs)
{
	struct probe *p = ctx;

	if (ev->kind == CAP_EV_CR3_WRITE) {
		if (ev->flags & CAP_F_AUX_VALID)
			p->cr3_write_values++;
	} else if ((ev->flags & CAP_F_CR3_VALID) && ev->cr3_src < CR3_SRC_NR) {
		p->src_events[ev->cr3_src]++;
	}
	(void)obs;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void probe_sample(struct probe *p, bool guest)
{
	struct capture_opts o = { .no_exit_stats = false };
	struct capture *cap;
	uint64_t end;

	p->guest_err = 1;
	p->vms = count_vms();
	p->open_err = capture_open(&o, &cap);
	if (p->open_err)
		return;
	p->sampled = true;
	end = now_ms() + (uint64_t)p->duration_ms;
	if (guest && p->dev_kvm) {
		struct tinyvm_opts to = { .writes = 200, .nroots = 4, .sync_every = 50 };

		p->guest_err = tinyvm_run(&to, &p->guest);
	}
	while (now_ms() < end)
		capture_poll(cap, (int)(end - now_ms()) > 0 ? (int)(end - now_ms()) : 0, on_event, p);
	while (capture_poll(cap, 0, on_event, p) > 0)
		;
	capture_counters_read(cap, &p->ctr);
	for (int h = 0; h < CAP_HOOK_NR; h++)
		p->hooks[h] = *capture_hook(cap, h);
	capture_close(cap);
}

/* ---- verdicts ---- */

static bool hook_fired(const struct probe *p, int h)
{
	return p->sampled && p->ctr.hook_hits[h] > 0;
}

static const char *hook_state(const struct probe *p, int h, char *buf, size_t len)
{
	const struct capture_hook_info *hi = &p->hooks[h];

	if (!p->btf)
		return "unknown: no kernel BTF";
	if (!p->hook_btf[h] && p->kvm_module_no_btf)
		return "NOT present: kvm.ko has no BTF (kernel built without CONFIG_DEBUG_INFO_BTF_MODULES, e.g. 5.10)";
	if (!p->hook_btf[h])
		return "NOT present (no btf_trace_ type: tracepoint not in this kernel or kvm not loaded)";
	if (!p->sampled) {
		snprintf(buf, len, "present (%s), not attached: %s", p->hook_btf[h],
			 p->missing_cap ? "missing privilege" : strerror(-p->open_err));
		return buf;
	}
	if (!hi->attached) {
		snprintf(buf, len, "present (%s), NOT attachable: %s", p->hook_btf[h],
			 hi->err ? strerror(-hi->err) : "no program for its prototype");
		return buf;
	}
	if (hook_fired(p, h))
		snprintf(buf, len, "usable: attached (%s), fired %llu times", hi->variant,
			 (unsigned long long)p->ctr.hook_hits[h]);
	else
		snprintf(buf, len, "present and attached (%s) but silent: 0 events%s", hi->variant,
			 p->guest_err == 0 || p->vms ? " while a guest ran" : " (no guest ran)");
	return buf;
}

struct source_verdict {
	const char *name;
	const char *what;
	bool usable;
	char why[200];
};

static void cr3_sources(const struct probe *p, struct source_verdict v[5])
{
	bool ran = p->guest_err == 0 || p->vms > 0;
	bool emu = p->hooks[CAP_HOOK_EMULATE].attached;

	v[0] = (struct source_verdict){ .name = "kvm_cr", .what = "value written, from the kvm_cr tracepoint" };
	v[1] = (struct source_verdict){ .name = "svm_vmcb", .what = "AMD VMCB save.cr3 at every kvm_exit" };
	v[2] = (struct source_verdict){ .name = "vmx_cache", .what = "Intel vcpu->arch.cr3 when VCPU_EXREG_CR3 is available at kvm_exit" };
	v[3] = (struct source_verdict){ .name = "arch_cr3", .what = "vcpu->arch.cr3 at emulation and I/O events" };
	v[4] = (struct source_verdict){ .name = "insn_gpr", .what = "mov-to-CR3 decoded from the emulator's instruction bytes" };

	if (!p->sampled) {
		for (int i = 0; i < 5; i++)
			snprintf(v[i].why, sizeof(v[i].why), "%s", p->missing_cap ? "permission: needs privilege"
						    : !p->btf ? "no BTF" : "capture could not load");
		return;
	}
	/* kvm_cr */
	if (!p->hook_btf[CAP_HOOK_CR])
		snprintf(v[0].why, sizeof(v[0].why), "kvm_cr tracepoint missing from BTF");
	else if (p->src_events[CR3_SRC_KVM_CR])
		v[0].usable = true, snprintf(v[0].why, sizeof(v[0].why), "%llu CR3 writes seen",
					     (unsigned long long)p->src_events[CR3_SRC_KVM_CR]);
	else if (p->intel_loaded && p->ept == 1)
		snprintf(v[0].why, sizeof(v[0].why), "EPT hides CR3 loads (kvm_intel ept=Y: they do not exit)");
	else if (p->amd_loaded && p->npt == 1)
		snprintf(v[0].why, sizeof(v[0].why), "NPT hides CR3 loads (kvm_amd npt=1: they do not exit)");
	else
		snprintf(v[0].why, sizeof(v[0].why), "silent%s: CR3 writes here do not go through kvm_cr",
			 ran ? " while a guest wrote CR3" : " (no guest ran)");
	/* svm_vmcb */
	if (!p->cpu_svm && !p->amd_loaded)
		snprintf(v[1].why, sizeof(v[1].why), "not SVM: no svm CPU flag, kvm_amd not loaded");
	else if (!p->type_svm)
		snprintf(v[1].why, sizeof(v[1].why), "type missing: struct vcpu_svm not in BTF (kvm_amd without BTF?)");
	else if (!hook_fired(p, CAP_HOOK_EXIT))
		snprintf(v[1].why, sizeof(v[1].why), "kvm_exit did not fire%s", ran ? "" : " (no guest ran)");
	else
		v[1].usable = p->src_events[CR3_SRC_SVM_VMCB] > 0,
		snprintf(v[1].why, sizeof(v[1].why), "%llu exits with CR3", (unsigned long long)p->src_events[CR3_SRC_SVM_VMCB]);
	/* vmx_cache */
	if (!p->cpu_vmx && !p->intel_loaded)
		snprintf(v[2].why, sizeof(v[2].why), "not VMX: no vmx CPU flag, kvm_intel not loaded");
	else if (!p->type_vmx)
		snprintf(v[2].why, sizeof(v[2].why), "type missing: struct vcpu_vmx not in BTF (kvm_intel without BTF?)");
	else if (!p->enum_exreg_cr3)
		snprintf(v[2].why, sizeof(v[2].why), "type missing: enum kvm_reg (VCPU_EXREG_CR3) not in BTF");
	else if (!hook_fired(p, CAP_HOOK_EXIT))
		snprintf(v[2].why, sizeof(v[2].why), "kvm_exit did not fire%s", ran ? "" : " (no guest ran)");
	else if (!p->src_events[CR3_SRC_VMX_CACHE])
		snprintf(v[2].why, sizeof(v[2].why), "%s", p->ept == 1 ? "EPT hides CR3 loads: CR3 never cached at exit"
									: "CR3 never cached at exit");
	else
		v[2].usable = true, snprintf(v[2].why, sizeof(v[2].why), "%llu exits with CR3%s",
					     (unsigned long long)p->src_events[CR3_SRC_VMX_CACHE],
					     p->ept == 1 ? " (EPT: only when KVM had read CR3)" : "");
	/* arch_cr3 */
	if (!p->field_arch_cr3)
		snprintf(v[3].why, sizeof(v[3].why), "type missing: struct kvm_vcpu_arch not in BTF");
	else if (p->src_events[CR3_SRC_ARCH])
		v[3].usable = true, snprintf(v[3].why, sizeof(v[3].why), "%llu events with CR3 (current when KVM's register cache says so)",
					     (unsigned long long)p->src_events[CR3_SRC_ARCH]);
	else
		snprintf(v[3].why, sizeof(v[3].why), "no emulation/I-O event carried a current CR3%s",
			 ran ? "" : " (no guest ran)");
	/* insn_gpr */
	if (!p->field_fetch)
		snprintf(v[4].why, sizeof(v[4].why), "type missing: struct fetch_cache (x86_emulate_ctxt) not in BTF");
	else if (!emu)
		snprintf(v[4].why, sizeof(v[4].why), "kvm_emulate_insn not attached");
	else if (p->cr3_write_values)
		v[4].usable = true, snprintf(v[4].why, sizeof(v[4].why), "%llu of %llu decoded CR3 writes with their value",
					     (unsigned long long)p->cr3_write_values,
					     (unsigned long long)p->ctr.cr3_writes);
	else if (p->ctr.cr3_writes)
		snprintf(v[4].why, sizeof(v[4].why), "%llu CR3 writes decoded, value pending a sync (register not cached)",
			 (unsigned long long)p->ctr.cr3_writes);
	else
		snprintf(v[4].why, sizeof(v[4].why), "%s", p->cpu_vmx || p->cpu_svm
			 ? "no mov-to-CR3 emulated (hardware runs them: EPT/NPT or CR3 exits)"
			 : ran ? "no mov-to-CR3 emulated" : "no guest ran");
}

static const char *hw_name(const struct probe *p)
{
	return p->cpu_vmx ? "VMX" : p->cpu_svm ? "SVM" : "none (instruction emulation)";
}

/* ---- a kernel described from its BTF (--btf, or an arm64 host) ---- */

static size_t vcpu_hooks(const struct probe *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ntp; i++)
		n += p->tps[i].vcpu_arg >= 0;
	return n;
}

/* What an arm64 host offers for the guest's user root (TTBR0_EL1, the CR3 of arm64), and what is missing. */
static void ttbr0_verdict(const struct probe *p, char *buf, size_t len)
{
	if (p->ttbr0_index < 0 || p->sys_regs_off < 0)
		snprintf(buf, len, "type missing: enum vcpu_sysreg or struct kvm_cpu_context.sys_regs not in BTF");
	else
		snprintf(buf, len, "NOT usable yet: the BPF side for arm64 hosts is not written. TTBR0_EL1 is "
			 "vcpu->arch.ctxt.sys_regs[%" PRId64 "] (sys_regs at +%" PRId64 " of struct kvm_cpu_context), "
			 "reachable from the %zu KVM tracepoint(s) that carry the vCPU; on a VHE host the guest's EL1 "
			 "registers live in the CPU while the vCPU is loaded and reach sys_regs at vcpu_put",
			 p->ttbr0_index, p->sys_regs_off, vcpu_hooks(p));
}

static void describe_plain(const struct probe *p)
{
	char buf[512];

	printf("Kernel\n");
	printf("  BTF: %s\n", p->btf_file ? p->btf_file : "/sys/kernel/btf/vmlinux (this host)");
	printf("  KVM: %s\n", p->arm64 ? "arm64 (struct kvm_cpu_context with sys_regs[])" : "not arm64");
	printf("\nKVM tracepoints (%zu, %zu carrying the vCPU)\n", p->ntp, vcpu_hooks(p));
	for (size_t i = 0; i < p->ntp; i++) {
		if (p->tps[i].vcpu_arg >= 0)
			snprintf(buf, sizeof(buf), "vCPU: argument %d", p->tps[i].vcpu_arg);
		else
			snprintf(buf, sizeof(buf), "no vCPU");
		printf("  %-28s %u argument(s), %s%s%s\n", p->tps[i].name, p->tps[i].nargs, buf,
		       strcmp(p->tps[i].where, "vmlinux") ? ", in " : "",
		       strcmp(p->tps[i].where, "vmlinux") ? p->tps[i].where : "");
	}
	if (p->arm64) {
		ttbr0_verdict(p, buf, sizeof(buf));
		printf("\nTTBR0 sources (arm64)\n  %-10s %s\n", "sys_regs", buf);
	}
}

static void describe_json(const struct probe *p, json_writer_t *w)
{
	char buf[512];

	jsonw_name(w, "btf");
	jsonw_start_object(w);
	jsonw_string_field(w, "file", p->btf_file ? p->btf_file : "/sys/kernel/btf/vmlinux");
	jsonw_bool_field(w, "read", p->btf);
	jsonw_string_field(w, "kvm", p->arm64 ? "arm64" : "other");
	jsonw_name(w, "tracepoints");
	jsonw_start_array(w);
	for (size_t i = 0; i < p->ntp; i++) {
		jsonw_start_object(w);
		jsonw_string_field(w, "name", p->tps[i].name);
		jsonw_int_field(w, "args", (int)p->tps[i].nargs);
		if (p->tps[i].vcpu_arg >= 0)
			jsonw_int_field(w, "vcpu_arg", p->tps[i].vcpu_arg);
		else
			jsonw_null_field(w, "vcpu_arg");
		jsonw_string_field(w, "in", p->tps[i].where);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	if (p->arm64) {
		jsonw_name(w, "ttbr0");
		jsonw_start_object(w);
		jsonw_int_field(w, "sysreg_index", (int)p->ttbr0_index);
		jsonw_int_field(w, "sys_regs_offset", (int)p->sys_regs_off);
		jsonw_bool_field(w, "usable", false);
		ttbr0_verdict(p, buf, sizeof(buf));
		jsonw_string_field(w, "why", buf);
		jsonw_end_object(w);
	}
	jsonw_end_object(w);
}

static void print_plain(const struct probe *p)
{
	struct source_verdict v[5];
	char buf[256];

	printf("Privileges\n");
	if (p->missing_cap)
		printf("  capture is NOT available: missing %s\n", p->missing_cap);
	else
		printf("  capture privileges are available\n");
	printf("\nKernel\n");
	printf("  kernel BTF is %savailable\n", p->btf ? "" : "NOT ");
	if (p->hook_btf[CAP_HOOK_EMULATE] && !strcmp(p->hook_btf[CAP_HOOK_EMULATE], "vmlinux"))
		printf("  KVM types are in vmlinux BTF (KVM built in)\n");
	for (int i = 0; i < KVM_BTF_MODS; i++)
		printf("  module BTF %s is %savailable\n", kvm_btf_mod_names[i], p->mod_btf[i] ? "" : "NOT ");
	printf("  /dev/kvm is %savailable\n", p->dev_kvm ? "" : "NOT ");
	printf("  hardware virtualization: %s\n", hw_name(p));
	printf("  kvm_intel is %sloaded%s\n", p->intel_loaded ? "" : "NOT ",
	       p->ept == 1 ? " (ept=Y: CR3 loads do not exit)" : p->ept == 0 ? " (ept=N)" : "");
	printf("  kvm_amd is %sloaded%s\n", p->amd_loaded ? "" : "NOT ",
	       p->npt == 1 ? " (npt=1: CR3 loads do not exit)" : p->npt == 0 ? " (npt=0)" : "");
	printf("\nSample\n");
	if (!p->sampled)
		printf("  not run: %s\n", p->missing_cap ? "missing privilege" : strerror(-p->open_err));
	else
		printf("  %d ms, %d running VM(s), tiny guest %s\n", p->duration_ms, p->vms,
		       p->guest_err == 0 ? "ran (200 CR3 writes)" : p->guest_err == 1 ? "not run"
		       : strerror(-p->guest_err));
	printf("\nHooks\n");
	for (int h = 0; h < CAP_HOOK_NR; h++)
		printf("  %-17s %s\n", capture_hook_name(h), hook_state(p, h, buf, sizeof(buf)));
	printf("\nCR3 sources\n");
	cr3_sources(p, v);
	for (int i = 0; i < 5; i++)
		printf("  %-10s %s: %s (%s)\n", v[i].name, v[i].usable ? "usable" : "NOT usable", v[i].why, v[i].what);
	if (p->arm64) {   /* an arm64 host: the x86 hooks above are absent; what it has instead */
		printf("\n");
		describe_plain(p);
	}
}

static void print_json(const struct probe *p)
{
	json_writer_t *w = jsonw_new(stdout);
	struct source_verdict v[5];
	char buf[256];

	if (!w)
		return;
	jsonw_start_object(w);
	jsonw_name(w, "privileges");
	jsonw_start_object(w);
	jsonw_bool_field(w, "capture", !p->missing_cap);
	if (p->missing_cap)
		jsonw_string_field(w, "missing", p->missing_cap);
	else
		jsonw_null_field(w, "missing");
	jsonw_end_object(w);
	jsonw_name(w, "kernel");
	jsonw_start_object(w);
	jsonw_bool_field(w, "btf", p->btf);
	for (int i = 0; i < KVM_BTF_MODS; i++) {
		char n[32];

		snprintf(n, sizeof(n), "btf_%s", kvm_btf_mod_names[i]);
		jsonw_bool_field(w, n, p->mod_btf[i]);
	}
	jsonw_bool_field(w, "dev_kvm", p->dev_kvm);
	jsonw_string_field(w, "hardware", p->cpu_vmx ? "vmx" : p->cpu_svm ? "svm" : "none");
	jsonw_bool_field(w, "kvm_intel", p->intel_loaded);
	jsonw_bool_field(w, "kvm_amd", p->amd_loaded);
	if (p->ept >= 0)
		jsonw_bool_field(w, "ept", p->ept);
	if (p->npt >= 0)
		jsonw_bool_field(w, "npt", p->npt);
	jsonw_end_object(w);
	jsonw_name(w, "sample");
	jsonw_start_object(w);
	jsonw_bool_field(w, "ran", p->sampled);
	jsonw_int_field(w, "duration_ms", p->duration_ms);
	jsonw_int_field(w, "vms", p->vms);
	jsonw_bool_field(w, "tiny_guest", p->guest_err == 0);
	if (p->guest_err < 0)
		jsonw_string_field(w, "tiny_guest_error", strerror(-p->guest_err));
	jsonw_end_object(w);
	jsonw_name(w, "hooks");
	jsonw_start_array(w);
	for (int h = 0; h < CAP_HOOK_NR; h++) {
		jsonw_start_object(w);
		jsonw_string_field(w, "name", capture_hook_name(h));
		jsonw_bool_field(w, "present", p->hook_btf[h] != NULL);
		if (p->hook_btf[h])
			jsonw_string_field(w, "btf", p->hook_btf[h]);
		jsonw_bool_field(w, "attached", p->hooks[h].attached);
		if (p->hooks[h].variant)
			jsonw_string_field(w, "program", p->hooks[h].variant);
		if (p->hooks[h].err)
			jsonw_string_field(w, "error", strerror(-p->hooks[h].err));
		if (p->sampled)
			jsonw_u64_field(w, "fired", p->ctr.hook_hits[h]);
		else
			jsonw_null_field(w, "fired");
		jsonw_string_field(w, "state", hook_state(p, h, buf, sizeof(buf)));
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	jsonw_name(w, "cr3_sources");
	jsonw_start_array(w);
	cr3_sources(p, v);
	for (int i = 0; i < 5; i++) {
		jsonw_start_object(w);
		jsonw_string_field(w, "name", v[i].name);
		jsonw_string_field(w, "what", v[i].what);
		jsonw_bool_field(w, "usable", v[i].usable);
		jsonw_string_field(w, "why", v[i].why);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	if (p->arm64)
		describe_json(p, w);
	jsonw_end_object(w);
	jsonw_destroy(&w);
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",     no_argument,       NULL, 'j' },
		{ "duration", required_argument, NULL, 'd' },
		{ "no-guest", no_argument,       NULL, 'G' },
		{ "btf",      required_argument, NULL, 'B' },
		{ "help",     no_argument,       NULL, 'h' },
		{},
	};
	struct probe *p;
	const char *btf_file = NULL;
	bool guest = true;
	int c, duration = 1000, rc;

	while ((c = getopt_long(argc, argv, "jd:Gh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': log_json = true; break;
		case 'd': {
			double s;

			if (parse_duration(optarg, 0, 600, &s)) {
				p_err("--duration: '%s' is not a duration in 0..600 s (seconds, or with ms, s, m, h)",
				      optarg);
				return EXIT_USAGE;
			}
			duration = (int)(s * 1000 + 0.5);
			break;
		}
		case 'G': guest = false; break;
		case 'B': btf_file = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: return cmd_bad_option(argv, usage);
		}
	}
	if (optind < argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		p_err("out of memory");
		return EXIT_FAIL;
	}
	p->duration_ms = duration;
	p->guest_err = 1;
	p->btf_file = btf_file;
	probe_static(p);
	if (btf_file) {   /* another kernel's KVM, from its BTF alone */
		rc = p->btf ? EXIT_OK : EXIT_FAIL;
		if (p->btf && log_json) {
			json_writer_t *w = jsonw_new(stdout);

			if (w) {
				jsonw_start_object(w);
				describe_json(p, w);
				jsonw_end_object(w);
				jsonw_destroy(&w);
			}
		} else if (p->btf) {
			describe_plain(p);
		}
		free(p);
		return rc;
	}
	if (!p->missing_cap)
		probe_sample(p, guest);
	if (log_json)
		print_json(p);
	else
		print_plain(p);
	rc = EXIT_OK;
	if (p->missing_cap) {
		if (!log_json)
			p_err("probe needs %s to load and attach BPF programs (run as root or grant them)", p->missing_cap);
		rc = EXIT_FAIL;
	}
	free(p);
	return rc;
}
