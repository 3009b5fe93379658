/* QEMU processes on this host; see vms.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/log.h"
#include "mem/qemu_proc.h"
#include "mem/qmp.h"
#include "target/vms.h"

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)total + 1 < len && (n = read(fd, buf + total, len - 1 - total)) > 0)
		total += n;
	close(fd);
	buf[total] = 0;
	return total;
}

bool vm_parse_name(const char *arg, char *out, size_t len)
{
	char e[256];
	const char *s = arg;
	bool first = true;

	out[0] = 0;
	while ((s = qemu_opt_next(s, e, sizeof(e), NULL))) {
		if (!strncmp(e, "guest=", 6)) {
			snprintf(out, len, "%s", e + 6);
			return out[0] != 0;
		}
		if (first && !strchr(e, '='))
			snprintf(out, len, "%s", e);
		first = false;
	}
	return out[0] != 0;
}

bool vm_parse_uuid(const char *arg, char out[37])
{
	for (int i = 0; i < 36; i++) {
		char c = arg[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? c != '-' : !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')))
			return false;
		out[i] = dash ? '-' : (char)(c >= 'A' && c <= 'F' ? c | 0x20 : c);
	}
	if (arg[36] && arg[36] != ',')
		return false;
	out[36] = 0;
	return true;
}

static bool parse_size_mib(const char *s, uint64_t *bytes)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mul = 1ULL << 20;

	if (end == s || v < 0)
		return false;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	case 't': case 'T': mul = 1ULL << 40; end++; break;
	default: return false;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return false;
	*bytes = (uint64_t)(v * (double)mul);
	return true;
}

bool vm_parse_mem(const char *arg, uint64_t *bytes)
{
	char e[128];
	const char *s = arg;

	while ((s = qemu_opt_next(s, e, sizeof(e), NULL))) {
		if (!strncmp(e, "size=", 5))
			return parse_size_mib(e + 5, bytes);
		if (!strchr(e, '='))
			return parse_size_mib(e, bytes);
	}
	return false;
}

/* QEMU prints errors we do not want here (a libvirt-held monitor is normal): silence stderr briefly. */
static int quiet_begin(void)
{
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (saved >= 0 && null >= 0)
		dup2(null, STDERR_FILENO);
	if (null >= 0)
		close(null);
	return saved;
}

static void quiet_end(int saved)
{
	if (saved >= 0) {
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
}

static void read_cmdline(pid_t pid, struct vm_info *vi, uint32_t *smp)
{
	char path[64], *buf = malloc(1 << 20), *args[4096];
	size_t nargs = 0;
	ssize_t len;

	*smp = 0;
	if (!buf)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	len = read_file(path, buf, 1 << 20);
	for (ssize_t i = 0; i < len && nargs < 4096; i += strlen(buf + i) + 1)
		args[nargs++] = buf + i;
	for (size_t i = 0; i < nargs; i++) {
		const char *a = args[i], *v = i + 1 < nargs ? args[i + 1] : "";

		if (a[0] == '-' && a[1] == '-')
			a++;
		if (!strcmp(a, "-enable-kvm"))
			snprintf(vi->accel, sizeof(vi->accel), "kvm");
		else if ((!strcmp(a, "-accel") && !strncmp(v, "kvm", 3)) ||
			 ((!strcmp(a, "-machine") || !strcmp(a, "-M")) && strstr(v, "accel=kvm")))
			snprintf(vi->accel, sizeof(vi->accel), "kvm");
		else if ((!strcmp(a, "-accel") && !strncmp(v, "tcg", 3)) ||
			 ((!strcmp(a, "-machine") || !strcmp(a, "-M")) && strstr(v, "accel=tcg")))
			snprintf(vi->accel, sizeof(vi->accel), "tcg");
		else if (!strcmp(a, "-name"))
			vm_parse_name(v, vi->name, sizeof(vi->name));
		else if (!strcmp(a, "-uuid"))
			vm_parse_uuid(v, vi->uuid);
		else if (!strcmp(a, "-smbios") && !vi->uuid[0] && !strncmp(v, "type=1", 6) && strstr(v, "uuid="))
			vm_parse_uuid(strstr(v, "uuid=") + 5, vi->uuid);
		else if (!strcmp(a, "-m") && vm_parse_mem(v, &vi->mem_bytes))
			snprintf(vi->mem_source, sizeof(vi->mem_source), "cmdline");
		else if (!strcmp(a, "-smp")) {
			char e[64];
			const char *s = v;
			while ((s = qemu_opt_next(s, e, sizeof(e), NULL))) {
				if (!strncmp(e, "cpus=", 5))
					*smp = (uint32_t)atoi(e + 5);
				else if (!strchr(e, '='))
					*smp = (uint32_t)atoi(e);
			}
		}
	}
	free(buf);
}

static bool fd_is_kvm(pid_t pid)
{
	char path[64], link[64];
	struct dirent *d;
	bool kvm = false;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!kvm && (d = readdir(dir))) {
		char p[300 + 256];
		ssize_t n;

		snprintf(p, sizeof(p), "%s/%s", path, d->d_name);
		n = readlink(p, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			kvm = !strcmp(link, "/dev/kvm") || !strcmp(link, "anon_inode:kvm-vm");
		}
	}
	closedir(dir);
	return kvm;
}

/* Field 22 of /proc/PID/stat (after the comm's closing parenthesis: comm may hold spaces). 0 unknown. */
static uint64_t proc_start_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &v) != 1)
		return 0;
	return v;
}

int vm_info_read(pid_t pid, bool query_qmp, struct vm_info *vi)
{
	char path[300], comm[64], exe[PATH_MAX];
	struct dirent *d;
	bool kvm_threads = false, tcg_threads = false;
	uint32_t smp = 0;
	ssize_t n;
	DIR *dir;

	memset(vi, 0, sizeof(*vi));
	vi->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (access(path, F_OK))
		return -ESRCH;
	if (!qemu_proc_is_qemu(pid))
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(vi->exe, sizeof(vi->exe), "%.63s", strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe);
	}
	read_cmdline(pid, vi, &smp);
	vi->start_ticks = proc_start_ticks(pid);

	/* vCPU threads: "CPU 0/KVM", "CPU 1/TCG"; single-threaded TCG has one "ALL CPUs/TCG" */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while ((d = readdir(dir))) {
		char p[300 + 300];
		unsigned id;
		char kind[8];

		if (d->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/comm", path, d->d_name);
		if (read_file(p, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = 0;
		if (sscanf(comm, "CPU %u/%7s", &id, kind) == 2 && vi->nthreads < VM_MAX_VCPUS) {
			vi->vcpu_tid[vi->nthreads] = (pid_t)atoi(d->d_name);
			vi->vcpu_id[vi->nthreads++] = id;
			kvm_threads |= !strcmp(kind, "KVM");
			tcg_threads |= !strcmp(kind, "TCG");
		} else if (!strcmp(comm, "ALL CPUs/TCG")) {
			tcg_threads = true;
		}
	}
	closedir(dir);
	/* sort threads by vCPU id */
	for (uint32_t i = 1; i < vi->nthreads; i++)
		for (uint32_t j = i; j > 0 && vi->vcpu_id[j - 1] > vi->vcpu_id[j]; j--) {
			uint32_t t = vi->vcpu_id[j];
			pid_t tt = vi->vcpu_tid[j];
			vi->vcpu_id[j] = vi->vcpu_id[j - 1];
			vi->vcpu_tid[j] = vi->vcpu_tid[j - 1];
			vi->vcpu_id[j - 1] = t;
			vi->vcpu_tid[j - 1] = tt;
		}
	vi->nvcpus = vi->nthreads ? vi->nthreads : (smp ? smp : 1);
	if (kvm_threads || fd_is_kvm(pid))
		snprintf(vi->accel, sizeof(vi->accel), "kvm");
	else if (tcg_threads || !vi->accel[0])
		snprintf(vi->accel, sizeof(vi->accel), tcg_threads || vi->nthreads == 0 ? "tcg" : "?");

	if (!qemu_proc_find_qmp(pid, vi->qmp, sizeof(vi->qmp)) && query_qmp) {
		struct qmp *q;
		bool json = log_json;
		int saved = quiet_begin();
		uint64_t base = 0, plugged = 0;

		log_json = false;
		if (!qmp_open(vi->qmp, 1000, &q)) {
			if (!qmp_query_ram_size(q, &base, &plugged) && base) {
				vi->mem_bytes = base + plugged;
				snprintf(vi->mem_source, sizeof(vi->mem_source), "qmp");
			}
			qmp_close(q);
		}
		log_json = json;
		quiet_end(saved);
	} else if (vi->qmp[0] == 0) {
		vi->qmp[0] = 0;
	}
	if (!vi->mem_bytes && !vi->mem_source[0]) {
		vi->mem_bytes = 128ULL << 20;   /* QEMU's default -m */
		snprintf(vi->mem_source, sizeof(vi->mem_source), "default");
	}
	return 0;
}

static int cmp_vm(const void *a, const void *b)
{
	const struct vm_info *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int vm_list(bool query_qmp, struct vm_info **out, size_t *n)
{
	struct vm_info *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc");

	*out = NULL;
	*n = 0;
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		char *end;
		long pid = strtol(d->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid() || !qemu_proc_is_qemu((pid_t)pid))
			continue;
		if (cnt == cap) {
			struct vm_info *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(dir);
				return -ENOMEM;
			}
			v = nv;
		}
		if (!vm_info_read((pid_t)pid, query_qmp, &v[cnt]))
			cnt++;
	}
	closedir(dir);
	if (cnt)   /* no VM: v may be NULL, which qsort must not get */
		qsort(v, cnt, sizeof(*v), cmp_vm);
	*out = v;
	*n = cnt;
	return 0;
}
