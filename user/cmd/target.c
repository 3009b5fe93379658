/* Source + observations shared by the subcommands that run discovery; see target.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "arch/x86_64.h"
#include "cmd/target.h"
#include "common/caps.h"
#include "common/log.h"
#include "mem/qmp.h"

#define KERNEL_TEXT_START 0xffffffff81000000ULL   /* __START_KERNEL_map + 16 MiB (LibVMI's choice too) */
#define KERNEL_IMAGE_SPAN (1ULL << 30)            /* KASLR moves the image within 1 GiB */
#define QMP_SAMPLE_INTERVAL_MS 20

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int add_cr3_list(struct target_opts *t, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		uint64_t v, *n;

		errno = 0;
		v = strtoull(tok, &end, 16);   /* hex with or without 0x */
		if (errno || end == tok || *end || !x86_cr3_root(v)) {
			p_err("--cr3: '%s' is not a CR3 value (hex, page-table root above 0)", tok);
			err = -EINVAL;
			break;
		}
		n = realloc(t->cr3s, (t->ncr3 + 1) * sizeof(*n));
		if (!n) {
			err = -ENOMEM;
			break;
		}
		t->cr3s = n;
		t->cr3s[t->ncr3++] = v;
	}
	free(copy);
	return err;
}

int target_parse_opt(struct target_opts *t, int c, const char *arg)
{
	char *end;
	long pid;
	double d;

	switch (c) {
	case 'p':
		errno = 0;
		pid = strtol(arg, &end, 10);
		if (errno || *end || pid <= 0 || pid > INT_MAX) {
			p_err("--pid: '%s' is not a process id", arg);
			return -EINVAL;
		}
		t->pid = (pid_t)pid;
		return 1;
	case 'c':
		t->core = arg;
		return 1;
	case 'r':
		t->raw = arg;
		return 1;
	case TOPT_CR3:
		return add_cr3_list(t, arg) ? -EINVAL : 1;
	case TOPT_QMP:
		t->qmp = arg;
		return 1;
	case TOPT_TIMEOUT:
		errno = 0;
		d = strtod(arg, &end);
		if (errno || end == arg || *end || !(d >= 0) || d > 3600) {
			p_err("--timeout: '%s' is not a number of seconds (0..3600)", arg);
			return -EINVAL;
		}
		t->timeout_s = d;
		return 1;
	case TOPT_MAX_BYTES:
		if (parse_size(arg, &t->max_bytes) || !t->max_bytes) {
			p_err("--max-bytes: '%s' is not a size (e.g. 64M)", arg);
			return -EINVAL;
		}
		return 1;
	}
	return 0;
}

int target_check(const struct target_opts *t)
{
	int n = (t->pid > 0) + (t->core != NULL) + (t->raw != NULL);

	if (n != 1) {
		p_err(n ? "give only one of --pid, --core, --raw" : "no guest given: use --pid, --core or --raw");
		return -EINVAL;
	}
	if (t->raw && !t->ncr3) {
		p_err("--raw needs --cr3: a raw image carries no register state");
		return -EINVAL;
	}
	if (t->qmp && t->core) {
		p_err("--qmp samples a running guest; it cannot be used with --core");
		return -EINVAL;
	}
	return 0;
}

void target_opts_free(struct target_opts *t)
{
	free(t->cr3s);
	t->cr3s = NULL;
	t->ncr3 = 0;
}

static bool is_kernel_va(uint64_t va) { return va >> 63; }

/* Of GS_BASE and KERNEL_GS_BASE, the kernel's per-CPU base: the one in use when the vCPU was in the
 * kernel (RIP in the upper half), else the swapped-out one; 0 if neither is a kernel address. */
static uint64_t kernel_gs(const struct vcpu_state *v)
{
	uint64_t first = is_kernel_va(v->rip) ? v->gs_base : v->kernel_gs_base;
	uint64_t second = is_kernel_va(v->rip) ? v->kernel_gs_base : v->gs_base;

	if (is_kernel_va(first))
		return first;
	return is_kernel_va(second) ? second : 0;
}

/* Register state the source carries (ELF core notes; a live source's QMP snapshot). */
static int add_source_vcpus(struct target *tg)
{
	uint32_t source = !strcmp(tg->pm->ops->kind, "elfcore") ? OBS_ELF_NOTE : OBS_QMP;
	size_t added = 0;

	for (size_t i = 0; i < tg->pm->nvcpus; i++) {
		const struct vcpu_state *v = &tg->pm->vcpus[i];
		struct observation o = {
			.time_ns = 0, .cr3 = v->cr3, .gs_base = kernel_gs(v), .vcpu = v->id, .source = source,
		};
		int err;

		if (!v->valid)
			continue;
		err = obs_add(&tg->obs, &o);
		if (err)
			return err;
		added++;
	}
	p_dbg("%zu observation(s) from the %s source's vCPU state", added, tg->pm->ops->kind);
	return 0;
}

static int add_cli_cr3s(struct target *tg, const struct target_opts *t)
{
	for (size_t i = 0; i < t->ncr3; i++) {
		/* a set of values, not a time series: one pseudo-vCPU, in the order given */
		struct observation o = { .time_ns = i, .cr3 = t->cr3s[i], .vcpu = 0, .source = OBS_CLI };
		int err = obs_add(&tg->obs, &o);

		if (err)
			return err;
	}
	return 0;
}

/* One option value of QEMU's "a,b=c,d=e" syntax: the value of key (",," is an escaped comma), or, with
 * key NULL, the first element. Copies into out; false when absent or too long. */
static bool qemu_opt(const char *s, const char *key, char *out, size_t len)
{
	size_t klen = key ? strlen(key) : 0;
	bool first = true;

	while (*s) {
		bool match = key ? !strncmp(s, key, klen) && s[klen] == '=' : first;
		size_t n = 0;

		if (match && key)
			s += klen + 1;
		for (; *s && !(*s == ',' && s[1] != ','); s++) {
			if (*s == ',')
				s++;   /* ",," → "," */
			if (match) {
				if (n + 1 >= len)
					return false;
				out[n++] = *s;
			}
		}
		if (match) {
			out[n] = 0;
			return n > 0;
		}
		if (*s == ',')
			s++;
		first = false;
	}
	return false;
}

/* QMP socket of a QEMU process, from its command line: `-qmp unix:PATH[,...]` (or -qmp-pretty), or a
 * `-chardev socket,id=ID,path=PATH` that a `-mon chardev=ID,mode=control` uses. A relative path is
 * taken from QEMU's working directory. 0, or -ENOENT when there is none. */
int target_find_qmp(pid_t pid, char *path, size_t len)
{
	char file[64], *buf = NULL, *args[4096];
	char ids[16][64], paths[16][256], ctl[16][64], v[256];
	size_t nargs = 0, nch = 0, nctl = 0, blen = 0;
	const char *found = NULL;
	FILE *f;

	snprintf(file, sizeof(file), "/proc/%d/cmdline", (int)pid);
	f = fopen(file, "r");
	if (!f)
		return -errno;
	buf = calloc(1, 1 << 20);
	if (buf)
		blen = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < blen && nargs < 4096; i += strlen(buf + i) + 1)
		args[nargs++] = buf + i;

	for (size_t i = 0; i + 1 < nargs && !found; i++) {
		const char *a = args[i], *val = args[i + 1];

		if (a[0] == '-' && a[1] == '-')
			a++;
		if (!strcmp(a, "-qmp") || !strcmp(a, "-qmp-pretty")) {
			if (!strncmp(val, "unix:", 5) && qemu_opt(val + 5, NULL, v, sizeof(v)))
				found = strcpy(paths[0], v);
		} else if (!strcmp(a, "-chardev") && nch < 16) {
			if (qemu_opt(val, NULL, v, sizeof(v)) && !strcmp(v, "socket") &&
			    qemu_opt(val, "id", ids[nch], sizeof(ids[nch])) &&
			    qemu_opt(val, "path", paths[nch], sizeof(paths[nch])))
				nch++;
		} else if (!strcmp(a, "-mon") && nctl < 16) {
			if (qemu_opt(val, "mode", v, sizeof(v)) && !strcmp(v, "control") &&
			    qemu_opt(val, "chardev", ctl[nctl], sizeof(ctl[nctl])))
				nctl++;
		}
	}
	for (size_t m = 0; m < nctl && !found; m++)
		for (size_t c = 0; c < nch && !found; c++)
			if (!strcmp(ctl[m], ids[c]))
				found = paths[c];
	if (found && found[0] != '/')
		snprintf(path, len, "/proc/%d/cwd/%s", (int)pid, found);
	else if (found)
		snprintf(path, len, "%s", found);
	free(buf);
	return found ? 0 : -ENOENT;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Live sampling of every vCPU's CR3 and kernel GS base through QEMU's monitor for timeout_s (at least
 * once). A socket found on the command line that does not answer (libvirt holds its monitor) only
 * costs the live observations; one given with --qmp must work. */
static int sample_qmp(struct target *tg, const struct target_opts *t, double timeout_s)
{
	char found[PATH_MAX];
	const char *path = t->qmp;
	uint64_t deadline, samples = 0;
	size_t before = tg->obs.n;
	struct qmp *q;
	int err;

	if (!path) {
		if (target_find_qmp(t->pid, found, sizeof(found))) {
			p_warn("QEMU pid %d has no QMP socket on its command line: no live CR3 samples "
			       "(give --qmp PATH or --cr3)", (int)t->pid);
			return 0;
		}
		path = found;
	}
	if (t->qmp) {
		err = qmp_open(path, 0, &q);
		if (err)
			return err;
	} else {
		/* Not fatal (e.g. libvirt holds its monitor): keep qmp_open's error line off stdout in -j mode,
		 * where stdout carries the result. */
		bool json = log_json;

		log_json = false;
		err = qmp_open(path, 0, &q);
		log_json = json;
		if (err) {
			p_warn("QMP socket %s unusable (%s): no live CR3 samples", path, strerror(-err));
			return 0;
		}
	}
	deadline = now_ms() + (uint64_t)(timeout_s * 1000);
	qmp_defer_errors(q, true);   /* a socket that dies with QEMU: one line below, not one per layer */
	do {
		struct timespec d = { 0, QMP_SAMPLE_INTERVAL_MS * 1000000L };

		err = qmp_sample_observations(q, &tg->obs, 1, 0);
		if (err)
			break;
		samples++;
		while (nanosleep(&d, &d) && errno == EINTR)
			;
	} while (now_ms() < deadline);
	/* QEMU gone? Then reading its memory says so (once) and the target fails with -ESRCH. */
	if (err && samples && tg->pm && tg->pm->nranges &&
	    physmem_read(tg->pm, tg->pm->ranges[0].start, &(uint64_t){ 0 }, 8) == -ESRCH) {
		qmp_close(q);
		return -ESRCH;
	}
	if (err && qmp_last_error(q)) {   /* NULL: not a transport error, printed where it happened */
		if (samples)
			p_warn("%s; going on with the %" PRIu64 " sample(s) taken", qmp_last_error(q), samples);
		else
			p_err("%s", qmp_last_error(q));
	}
	qmp_close(q);
	if (err && !samples)
		return err;
	p_dbg("QMP %s: %" PRIu64 " samples, %zu observations", path, samples, tg->obs.n - before);
	return 0;
}

int target_open(const struct target_opts *t, struct target *tg)
{
	double timeout_s = t->timeout_s >= 0 ? t->timeout_s : TARGET_DEFAULT_TIMEOUT_S;
	int err;

	memset(tg, 0, sizeof(*tg));
	if (t->pid > 0) {
		snprintf(tg->desc, sizeof(tg->desc), "QEMU pid %d", (int)t->pid);
		err = caps_check_read_qemu(t->pid);   /* least privilege: say up front what is missing */
		if (!err)
			err = physmem_open_qemu(t->pid, t->qmp, &tg->pm);
	} else if (t->core) {
		snprintf(tg->desc, sizeof(tg->desc), "core %s", t->core);
		err = physmem_open_elfcore(t->core, &tg->pm);
	} else {
		snprintf(tg->desc, sizeof(tg->desc), "raw image %s", t->raw);
		err = physmem_open_raw(t->raw, &tg->pm);
	}
	if (err) {   /* the source printed why */
		p_dbg("cannot open %s: %s", tg->desc, strerror(-err));
		tg->pm = NULL;
		return err;
	}

	err = add_cli_cr3s(tg, t);
	if (!err)
		err = add_source_vcpus(tg);
	/* BPF (KVM tracepoints of this QEMU's vCPUs) runs while QMP samples; its events wait in the ring */
	struct capture *cap = !err && t->pid > 0 && timeout_s > 0 ? target_capture_begin(t->pid) : NULL;
	if (!err && (t->pid > 0 || t->qmp) && timeout_s > 0)
		err = sample_qmp(tg, t, timeout_s);
	target_capture_end(cap, &tg->obs);
	if (err) {   /* QMP printed why; only ENOMEM is ours */
		if (err == -ENOMEM)
			p_err("gathering observations from %s: %s", tg->desc, strerror(-err));
		target_close(tg);
		return err;
	}
	p_dbg("%s: %zu observation(s)", tg->desc, tg->obs.n);
	return 0;
}

void target_close(struct target *tg)
{
	if (tg->pm)
		physmem_close(tg->pm);
	tg->pm = NULL;
	obs_free(&tg->obs);
}

void target_discovery_opts(const struct target_opts *t, struct discovery_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_bytes = t->max_bytes;
	o->progress = log_verbose > 0;
}

int target_discover(const struct target_opts *t, struct target *tg, struct discovery_result *res)
{
	struct discovery_opts dopts;
	int err;

	memset(res, 0, sizeof(*res));
	err = target_open(t, tg);
	if (err)
		return err;
	target_discovery_opts(t, &dopts);
	return discover_offsets(tg->pm, &tg->obs, &dopts, res);
}

static int first_leaf(uint64_t va, const struct x86_map *map, void *arg)
{
	*(uint64_t *)arg = va;
	return 1;
}

int target_kaslr_shift(struct physmem *pm, const struct discovery_result *res, uint64_t *shift)
{
	uint64_t va = 0;
	int err;

	if (!res->kernel_cr3)
		return -ENOENT;
	err = x86_walk(pm, res->kernel_cr3, res->la57, KERNEL_TEXT_START, KERNEL_TEXT_START + KERNEL_IMAGE_SPAN,
		       1, first_leaf, &va);
	if (err < 0 || !va)
		return -ENOENT;
	*shift = (va & ~0x1fffffULL) - KERNEL_TEXT_START;
	return 0;
}
