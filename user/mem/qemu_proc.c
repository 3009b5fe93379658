/* The QEMU process: identity, option syntax, QMP socket; see qemu_proc.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mem/qemu_proc.h"

static bool qemu_name(const char *s) { return !strncmp(s, "qemu-system-", 12) || !strncmp(s, "qemu-kvm", 8); }

bool qemu_proc_is_qemu(pid_t pid)
{
	char path[64], buf[PATH_MAX];
	const char *base;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		base = strrchr(buf, '/');
		if (qemu_name(base ? base + 1 : buf))
			return true;
	}
	/* its comm (what ps shows): the executable can be unreadable (another user's) or a wrapper's */
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, 63);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return qemu_name(buf);
}

const char *qemu_opt_next(const char *s, char *out, size_t len, bool *whole)
{
	size_t n = 0;
	bool fit = true;

	if (!s || !*s)
		return NULL;
	for (; *s && !(*s == ',' && s[1] != ','); s++) {
		if (*s == ',')
			s++;   /* ",," → "," */
		if (n + 1 < len)
			out[n++] = *s;
		else
			fit = false;
	}
	if (len)
		out[n] = 0;
	if (whole)
		*whole = fit;
	return *s == ',' ? s + 1 : s;
}

bool qemu_opt(const char *s, const char *key, char *out, size_t len)
{
	char e[512];
	size_t klen = key ? strlen(key) : 0;
	bool whole;

	for (bool first = true; (s = qemu_opt_next(s, e, sizeof(e), &whole)); first = false) {
		const char *v = key ? (!strncmp(e, key, klen) && e[klen] == '=' ? e + klen + 1 : NULL) : first ? e : NULL;

		if (!v)
			continue;
		if (!whole || !*v || strlen(v) >= len)
			return false;
		strcpy(out, v);
		return true;
	}
	return false;
}

int qemu_proc_find_qmp(pid_t pid, char *path, size_t len)
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
	if (found && found[0] != '/')   /* relative to QEMU's cwd (at bind time: -daemonize moves to / later) */
		snprintf(path, len, "/proc/%d/cwd/%s", (int)pid, found);
	else if (found)
		snprintf(path, len, "%s", found);
	free(buf);
	return found ? 0 : -ENOENT;
}
