/* Capability checks without libcap; see caps.h. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "common/caps.h"
#include "common/log.h"

int caps_effective(uint64_t *eff)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = { 0 };

	*eff = 0;
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	*eff = data[0].effective | ((uint64_t)data[1].effective << 32);
	return 0;
}

uint64_t caps_missing(uint64_t eff, uint64_t need)
{
	if (eff & CAPS_MASK(VMOT_CAP_SYS_ADMIN))
		eff |= CAPS_CAPTURE;
	return need & ~eff;
}

const char *caps_names(uint64_t mask, char *buf, size_t len)
{
	static const struct { int cap; const char *name; } names[] = {
		{ VMOT_CAP_SYS_PTRACE, "CAP_SYS_PTRACE" }, { VMOT_CAP_BPF, "CAP_BPF" },
		{ VMOT_CAP_PERFMON, "CAP_PERFMON" }, { VMOT_CAP_SYS_ADMIN, "CAP_SYS_ADMIN" },
	};
	size_t n = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && n < len; i++)
		if (mask & CAPS_MASK(names[i].cap))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names[i].name);
	return buf;
}

/* Real, effective and saved uids of pid all equal to ours. */
static bool same_user(pid_t pid)
{
	char path[64], line[256];
	unsigned r, e, s;
	bool same = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %u %u %u", &r, &e, &s) == 3) {
			same = r == getuid() && e == getuid() && s == getuid() && geteuid() == getuid();
			break;
		}
	fclose(f);
	return same;
}

static int ptrace_scope(void)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
	int scope = 0;

	if (!f)
		return 0;   /* no Yama */
	if (fscanf(f, "%d", &scope) != 1)
		scope = 3;
	fclose(f);
	return scope;
}

int caps_check_read_qemu(pid_t pid)
{
	uint64_t eff = 0, miss;
	char need[96], also[96];

	if (caps_effective(&eff))
		return 0;   /* cannot tell: let the read itself report EPERM */
	miss = caps_missing(eff, CAPS_READ_QEMU);
	if (!miss)
		return 0;
	if (same_user(pid) && ptrace_scope() == 0) {
		p_dbg("no CAP_SYS_PTRACE, but QEMU pid %d runs as our user and Yama allows ptrace", (int)pid);
		return 0;
	}
	caps_names(miss, need, sizeof(need));
	caps_names(caps_missing(eff, CAPS_CAPTURE), also, sizeof(also));
	p_err("missing %s, needed to read QEMU pid %d's memory%s%s%s; run as root or grant them "
	      "(setcap cap_sys_ptrace,cap_bpf,cap_perfmon+ep vmoffset-trace)", need, (int)pid,
	      also[0] ? " (and " : "", also, also[0] ? " for BPF CR3 capture)" : "");
	return -EPERM;
}
