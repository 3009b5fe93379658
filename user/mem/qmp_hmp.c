/*
 * What QEMU's human monitor (HMP) prints, read through QMP: `info registers` (vCPU state and observations),
 * `info mtree` / `info ramblock` and query-memory-size-summary (the RAM layout), `xp` / `x` dumps. The parsers
 * are pure and unit-tested on captured output; see qmp.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/log.h"
#include "mem/qmp.h"

/* Copy one line (without "\r\n", truncated to cap) into line; returns the next line or NULL. */
static const char *next_line(const char *p, char *line, size_t cap)
{
	const char *eol = strchr(p, '\n');
	size_t ll = eol ? (size_t)(eol - p) : strlen(p);

	if (ll && p[ll - 1] == '\r')
		ll--;
	if (ll >= cap)
		ll = cap - 1;
	memcpy(line, p, ll);
	line[ll] = 0;
	return eol ? eol + 1 : NULL;
}

/* ---- info registers ---- */

static bool parse_hex(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 16);
	return end != s && !errno;
}

/* Value of "KEY=hex" in line (KEY may be followed by spaces before '=', e.g. "R8 ="). */
static bool reg_value(const char *line, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);

	for (const char *p = line; (p = strstr(p, key)); p += kl) {
		const char *e = p + kl;

		if (p != line && p[-1] != ' ')
			continue;
		while (*e == ' ')
			e++;
		if (*e != '=')
			continue;
		return parse_hex(e + 1, v);
	}
	return false;
}

int qmp_parse_registers(const char *text, struct vcpu_state **out, size_t *n)
{
	struct vcpu_state *v = NULL, *cur = NULL;
	size_t cnt = 0;
	const char *p = text;

	*out = NULL;
	*n = 0;
	while (p && *p) {
		char line[512];
		uint64_t x;

		p = next_line(p, line, sizeof(line));

		if (!strncmp(line, "CPU#", 4)) {
			struct vcpu_state *nv = realloc(v, (cnt + 1) * sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cur = &v[cnt++];
			memset(cur, 0, sizeof(*cur));
			cur->id = (uint32_t)strtoul(line + 4, NULL, 10);
			continue;
		}
		if (!cur) {
			/* `info registers` without -a has no CPU# header */
			if (strncmp(line, "RAX=", 4) && strncmp(line, "EAX=", 4))
				continue;
			v = calloc(1, sizeof(*v));
			if (!v)
				return -ENOMEM;
			cur = &v[cnt++];
		}
		/* a vCPU outside long mode prints 32-bit names (EIP, ESP) */
		if (reg_value(line, "RIP", &x) || reg_value(line, "EIP", &x))
			cur->rip = x;
		if (reg_value(line, "RSP", &x) || reg_value(line, "ESP", &x))
			cur->rsp = x;
		if (reg_value(line, "CR0", &x))
			cur->cr0 = x;
		if (reg_value(line, "CR3", &x)) {
			cur->cr3 = x;
			cur->valid = true;
		}
		if (reg_value(line, "CR4", &x))
			cur->cr4 = x;
		if (reg_value(line, "EFER", &x))
			cur->efer = x;
		if (reg_value(line, "KernelGSbase", &x) || reg_value(line, "KernelGSBase", &x) ||
		    reg_value(line, "KERNELGSBASE", &x))
			cur->kernel_gs_base = x;
		if (!strncmp(line, "GDT=", 4)) {   /* "GDT=     base limit" */
			const char *b = line + 4;

			while (*b == ' ')
				b++;
			if (parse_hex(b, &x))
				cur->gdt_base = x;
		}
		if (!strncmp(line, "GS =", 4) || !strncmp(line, "FS =", 4)) {
			/* "GS =sel base limit flags" */
			const char *b = strchr(line + 4, ' ');

			if (b && parse_hex(b + 1, &x)) {
				if (line[0] == 'G')
					cur->gs_base = x;
				else
					cur->fs_base = x;
			}
		}
	}
	if (!cnt) {
		free(v);
		return -ENOENT;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int qmp_read_vcpus(struct qmp *q, struct vcpu_state **out, size_t *n)
{
	char *text;
	int err;

	*out = NULL;
	*n = 0;
	if (qmp_guest_arch(q) == QMP_ARCH_AARCH64)   /* `info registers` shows no system registers there */
		return qmp_read_arm64_vcpus(q, out, n);
	err = qmp_hmp(q, "info registers -a", -1, &text);
	if (err)
		return err;
	err = qmp_parse_registers(text, out, n);
	if (err == -ENOENT)
		p_err("QMP: `info registers -a` printed no CPU state");
	free(text);
	return err;
}

int qmp_sample_observations(struct qmp *q, struct obs_set *s, unsigned count, unsigned interval_ms)
{
	for (unsigned i = 0; i < count; i++) {
		struct vcpu_state *v;
		struct timespec ts;
		size_t n;
		int err;

		if (i && interval_ms) {
			struct timespec d = { interval_ms / 1000, (long)(interval_ms % 1000) * 1000000L };

			while (nanosleep(&d, &d) && errno == EINTR)
				;
		}
		err = qmp_read_vcpus(q, &v, &n);
		if (err)
			return err;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		for (size_t j = 0; j < n; j++) {
			struct observation o = {
				.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec,
				.cr3 = v[j].cr3,
				.vcpu = v[j].id,
				.source = OBS_QMP,
			};

			if (!v[j].valid)
				continue;
			if (v[j].aarch64)   /* TTBR0 is in cr3 */
				o.gs_base = v[j].tpidr_el1;
			else if (vcpu_paging32(&v[j]))
				o.gs_base = v[j].gdt_base;
			else if (v[j].gs_base >> 63)
				o.gs_base = v[j].gs_base;
			else if (v[j].kernel_gs_base >> 63)
				o.gs_base = v[j].kernel_gs_base;
			err = obs_add(s, &o);
			if (err) {
				free(v);
				return err;
			}
		}
		free(v);
	}
	return 0;
}

/* ---- memory description ---- */

int qmp_query_ram_size(struct qmp *q, uint64_t *base, uint64_t *plugged)
{
	struct json_object *ret, *v;
	int err = qmp_command(q, "query-memory-size-summary", NULL, &ret);

	if (err)
		return err;
	*base = json_object_object_get_ex(ret, "base-memory", &v) ? json_object_get_uint64(v) : 0;
	*plugged = json_object_object_get_ex(ret, "plugged-memory", &v) ? json_object_get_uint64(v) : 0;
	json_object_put(ret);
	if (!*base) {
		p_err("QMP query-memory-size-summary: no base-memory");
		return -EPROTO;
	}
	return 0;
}

/*
 * `info mtree -f` prints one FlatView per distinct view, each headed by the address spaces using it:
 *   FlatView #1
 *    AS "memory", root: system
 *    AS "cpu-memory-0", root: system
 *    Root memory region: system
 *     0000000000000000-000000000009ffff (prio 0, ram): pc.ram
 *     00000000000c0000-00000000000cafff (prio 0, rom): pc.ram @00000000000c0000
 *     0000000100000000-000000023fffffff (prio 0, ram): pc.ram @00000000c0000000
 * Only "ram" and "rom" entries are kept (i/o, romd and MMIO are not RAM); "@off" is the offset inside
 * the named region (0 when absent); aliases such as ram-above-4g appear already resolved to pc.ram.
 */
int qmp_parse_mtree(const char *text, const char *as_name, struct qemu_ram_range **out, size_t *n)
{
	char want[80];
	struct qemu_ram_range *r = NULL;
	size_t cnt = 0;
	bool in_view = false, headers = false, found = false;
	const char *p = text;

	*out = NULL;
	*n = 0;
	snprintf(want, sizeof(want), "AS \"%s\",", as_name ? as_name : "memory");
	while (p && *p) {
		char line[512], type[16], rest[256];
		unsigned long long s, e;
		int prio;

		p = next_line(p, line, sizeof(line));

		if (!strncmp(line, "FlatView #", 10)) {
			if (found)
				break;
			in_view = false;
			headers = true;
			continue;
		}
		if (headers && strstr(line, " AS \"")) {
			if (strstr(line, want))
				in_view = found = true;
			continue;
		}
		if (!in_view)
			continue;
		headers = false;
		if (sscanf(line, " %llx-%llx (prio %d, %15[^)]): %255[^\n]", &s, &e, &prio, type, rest) != 5)
			continue;
		if (strcmp(type, "ram") && strcmp(type, "rom"))
			continue;
		if (e < s || e == UINT64_MAX)
			continue;
		struct qemu_ram_range *nr = realloc(r, (cnt + 1) * sizeof(*nr));

		if (!nr) {
			free(r);
			return -ENOMEM;
		}
		r = nr;
		struct qemu_ram_range *c = &r[cnt++];
		char *at = strstr(rest, " @");

		memset(c, 0, sizeof(*c));
		c->gpa = s;
		c->len = e - s + 1;
		c->rom = !strcmp(type, "rom");
		if (at) {
			*at = 0;
			c->offset = strtoull(at + 2, NULL, 16);
		}
		/* trailing annotations such as " [disabled]" or " KVM" are not part of the name */
		char *sp = strchr(rest, ' ');
		if (sp)
			*sp = 0;
		size_t bl = strnlen(rest, sizeof(c->block) - 1);

		memcpy(c->block, rest, bl);
		c->block[bl] = 0;
	}
	if (!found) {
		free(r);
		return -ENOENT;
	}
	*out = r;
	*n = cnt;
	return 0;
}

int qmp_read_mtree(struct qmp *q, struct qemu_ram_range **out, size_t *n)
{
	char *text;
	int err = qmp_hmp(q, "info mtree -f", -1, &text);

	if (err)
		return err;
	err = qmp_parse_mtree(text, NULL, out, n);
	if (err == -ENOENT)
		p_err("QMP: `info mtree -f` has no flat view for address space \"memory\"");
	free(text);
	return err;
}

/*
 *               Block Name    PSize              Offset               Used              Total
 *                   pc.ram    4 KiB  0x0000000000000000 0x0000000020000000 0x0000000020000000
 */
int qmp_parse_ramblocks(const char *text, struct qemu_ramblock **out, size_t *n)
{
	struct qemu_ramblock *b = NULL;
	size_t cnt = 0;
	const char *p = text;

	*out = NULL;
	*n = 0;
	while (p && *p) {
		char line[512], name[128], unit[8];
		unsigned long long psz, off, used, total;

		p = next_line(p, line, sizeof(line));
		if (sscanf(line, " %127s %llu %7s 0x%llx 0x%llx 0x%llx", name, &psz, unit, &off, &used, &total) != 6)
			continue;
		struct qemu_ramblock *nb = realloc(b, (cnt + 1) * sizeof(*nb));

		if (!nb) {
			free(b);
			return -ENOMEM;
		}
		b = nb;
		struct qemu_ramblock *c = &b[cnt++];

		snprintf(c->name, sizeof(c->name), "%s", name);
		c->page_size = psz << (!strcmp(unit, "KiB") ? 10 : !strcmp(unit, "MiB") ? 20 :
				       !strcmp(unit, "GiB") ? 30 : 0);
		c->offset = off;
		c->used = used;
		c->total = total;
	}
	if (!cnt)
		return -ENOENT;
	*out = b;
	*n = cnt;
	return 0;
}

int qmp_read_ramblocks(struct qmp *q, struct qemu_ramblock **out, size_t *n)
{
	char *text;
	int err = qmp_hmp(q, "info ramblock", -1, &text);

	if (err)
		return err;
	err = qmp_parse_ramblocks(text, out, n);
	if (err == -ENOENT)
		p_err("QMP: `info ramblock` listed no RAM blocks");
	free(text);
	return err;
}

/* "0000000001000000: 0x00 0x01 ...\n", possibly "addr: Cannot access memory". */
int qmp_parse_memdump(const char *text, uint64_t addr, void *buf, size_t len)
{
	unsigned char *out = buf;
	size_t got = 0;
	const char *p = text;

	while (p && *p && got < len) {
		const char *eol = strchr(p, '\n');
		char *end;
		uint64_t a = strtoull(p, &end, 16);

		if (end == p || *end != ':')
			return -EPROTO;
		if (strstr(end, "Cannot access memory") && (!eol || strstr(end, "Cannot access memory") < eol))
			return -EFAULT;
		if (a != addr + got)
			return -EPROTO;
		end++;
		while (got < len && (!eol || end < eol)) {
			char *e2;
			unsigned long v;

			while (*end == ' ')
				end++;
			if ((eol && end >= eol) || !*end || *end == '\n' || *end == '\r')
				break;
			v = strtoul(end, &e2, 16);
			if (e2 == end || v > 0xff)
				return -EPROTO;
			out[got++] = (unsigned char)v;
			end = e2;
		}
		p = eol ? eol + 1 : NULL;
	}
	return got == len ? 0 : -EPROTO;
}

static int dump_mem(struct qmp *q, const char *cmd, int cpu, uint64_t addr, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		size_t chunk = len > 4096 ? 4096 : len;
		char line[96], *text;
		int err;

		snprintf(line, sizeof(line), "%s /%zuxb 0x%llx", cmd, chunk, (unsigned long long)addr);
		err = qmp_hmp(q, line, cpu, &text);
		if (err)
			return err;
		err = qmp_parse_memdump(text, addr, out, chunk);
		if (err == -EPROTO)
			p_err("QMP: cannot parse `%s` output: %.80s", line, text);
		free(text);
		if (err)
			return err;
		out += chunk;
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

int qmp_xp(struct qmp *q, uint64_t gpa, void *buf, size_t len)
{
	return dump_mem(q, "xp", -1, gpa, buf, len);
}

int qmp_x(struct qmp *q, int cpu_index, uint64_t va, void *buf, size_t len)
{
	return dump_mem(q, "x", cpu_index, va, buf, len);
}
