/*
 * QMP client and HMP-output parsers; see qmp.h.
 *
 * Wire protocol: QEMU sends one JSON object per line ("\r\n"). After connecting we read the greeting
 * {"QMP": ...}, send qmp_capabilities, and from then on every command carries an "id" that QEMU echoes
 * in its reply. Events ({"event": ...}) may arrive at any time, before or between replies, and are
 * skipped. Replies with a foreign id (a late answer to a command that timed out) are skipped too.
 */
#include <errno.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"
#include "mem/qmp.h"

#define QMP_MAX_MSG (64u << 20)

struct qmp {
	int fd;
	int timeout_ms;
	char *buf;
	size_t len, cap;
	uint64_t next_id;
	uint64_t events;
	bool greeting;      /* waiting for the greeting: qmp_open reports a timeout itself */
	bool defer_errors;  /* transport errors kept in error[] for the caller, not printed */
	char error[256];    /* the last transport error */
	char path[108];
};

/* A transport or framing error: printed, or kept for the caller (qmp_defer_errors). */
__attribute__((format(printf, 2, 3)))
static void qmp_error(struct qmp *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	if (!q->defer_errors)
		p_err("%s", q->error);
}

void qmp_defer_errors(struct qmp *q, bool defer)
{
	q->defer_errors = defer;
	q->error[0] = 0;   /* what qmp_last_error reports from now on */
}

const char *qmp_last_error(const struct qmp *q)
{
	return q->error[0] ? q->error : NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void qmp_set_timeout(struct qmp *q, int timeout_ms)
{
	q->timeout_ms = timeout_ms > 0 ? timeout_ms : QMP_DEFAULT_TIMEOUT_MS;
}

uint64_t qmp_events_seen(const struct qmp *q)
{
	return q->events;
}

static int send_all(struct qmp *q, const char *s, size_t len)
{
	int64_t deadline = now_ms() + q->timeout_ms;

	while (len) {
		struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
		int64_t left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0) {
			qmp_error(q, "QMP %s: timed out sending a command", q->path);
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		n = send(q->fd, s, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			int err = -errno;

			qmp_error(q, "QMP %s: send failed: %s (QEMU gone?)", q->path, strerror(errno));
			return err;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Next complete JSON message (one line), waiting until deadline. */
static int read_message(struct qmp *q, int64_t deadline, struct json_object **out)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;

		if (nl) {
			size_t linelen = (size_t)(nl - q->buf);
			struct json_tokener *tok;
			struct json_object *obj;
			bool blank = true;

			for (size_t i = 0; i < linelen; i++)
				if (q->buf[i] != '\r' && q->buf[i] != ' ' && q->buf[i] != '\t')
					blank = false;
			if (blank) {
				memmove(q->buf, nl + 1, q->len - linelen - 1);
				q->len -= linelen + 1;
				continue;
			}
			tok = json_tokener_new_ex(64);
			if (!tok)
				return -ENOMEM;
			obj = json_tokener_parse_ex(tok, q->buf, (int)linelen);
			json_tokener_free(tok);
			memmove(q->buf, nl + 1, q->len - linelen - 1);
			q->len -= linelen + 1;
			if (!obj || !json_object_is_type(obj, json_type_object)) {
				json_object_put(obj);
				qmp_error(q, "QMP %s: malformed message (not a JSON object)", q->path);
				return -EPROTO;
			}
			*out = obj;
			return 0;
		}
		if (q->len >= QMP_MAX_MSG) {
			qmp_error(q, "QMP %s: message larger than %u bytes", q->path, QMP_MAX_MSG);
			return -EPROTO;
		}
		if (q->cap - q->len < 65536) {
			size_t ncap = q->cap ? q->cap * 2 : 131072;
			char *nb = realloc(q->buf, ncap);

			if (!nb)
				return -ENOMEM;
			q->buf = nb;
			q->cap = ncap;
		}
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0) {
			if (!q->greeting)
				qmp_error(q, "QMP %s: no reply within %d ms", q->path, q->timeout_ms);
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			continue;
		n = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			int err = -errno;

			qmp_error(q, "QMP %s: read failed: %s", q->path, strerror(errno));
			return err;
		}
		if (n == 0) {
			qmp_error(q, "QMP %s: connection closed by QEMU", q->path);
			return -ECONNRESET;
		}
		q->len += (size_t)n;
	}
}

int qmp_command(struct qmp *q, const char *execute, struct json_object *args, struct json_object **ret)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *v;
	uint64_t id = ++q->next_id;
	int64_t deadline;
	const char *s;
	int err;

	if (ret)
		*ret = NULL;
	if (!req)
		return -ENOMEM;
	json_object_object_add(req, "execute", json_object_new_string(execute));
	if (args)
		json_object_object_add(req, "arguments", json_object_get(args));
	json_object_object_add(req, "id", json_object_new_uint64(id));
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	err = send_all(q, s, strlen(s));
	if (!err)
		err = send_all(q, "\n", 1);
	json_object_put(req);
	if (err)
		return err;

	deadline = now_ms() + q->timeout_ms;
	for (;;) {
		err = read_message(q, deadline, &resp);
		if (err)
			return err;
		if (json_object_object_get_ex(resp, "event", NULL)) {
			q->events++;
			json_object_put(resp);
			continue;
		}
		if (!json_object_object_get_ex(resp, "id", &v) || json_object_get_uint64(v) != id) {
			json_object_put(resp);   /* stale reply to an earlier, timed-out command */
			continue;
		}
		break;
	}
	if (json_object_object_get_ex(resp, "error", &v)) {
		struct json_object *d = NULL;

		json_object_object_get_ex(v, "desc", &d);
		p_err("QMP %s: %s", execute, d ? json_object_get_string(d) : "error");
		json_object_put(resp);
		return -EREMOTEIO;
	}
	if (!json_object_object_get_ex(resp, "return", &v)) {
		p_err("QMP %s: reply has neither return nor error", execute);
		json_object_put(resp);
		return -EPROTO;
	}
	if (ret)
		*ret = json_object_get(v);
	json_object_put(resp);
	return 0;
}

int qmp_open(const char *path, int timeout_ms, struct qmp **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_object *greet = NULL;
	struct qmp *q;
	int err;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		p_err("QMP socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	snprintf(q->path, sizeof(q->path), "%s", path);
	qmp_set_timeout(q, timeout_ms);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (q->fd < 0) {
		err = -errno;
		free(q);
		return err;
	}
	strcpy(sa.sun_path, path);
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		err = -errno;
		p_err("cannot connect to QMP socket %s: %s", path, strerror(errno));
		goto fail;
	}
	q->greeting = true;
	err = read_message(q, now_ms() + q->timeout_ms, &greet);
	q->greeting = false;
	if (err == -ETIMEDOUT)
		p_err("no QMP greeting on %s (another client connected? a QMP socket serves one client at a time)",
		      path);
	if (err)
		goto fail;
	if (!json_object_object_get_ex(greet, "QMP", NULL)) {
		json_object_put(greet);
		p_err("%s does not speak QMP (no greeting)", path);
		err = -EPROTO;
		goto fail;
	}
	json_object_put(greet);
	err = qmp_command(q, "qmp_capabilities", NULL, NULL);
	if (err)
		goto fail;
	*out = q;
	return 0;
fail:
	close(q->fd);
	free(q->buf);
	free(q);
	return err;
}

int qmp_open_fd(int fd, const char *name, int timeout_ms, struct qmp **out)
{
	struct json_object *greet = NULL;
	struct qmp *q;
	int err;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->fd = fd;
	snprintf(q->path, sizeof(q->path), "%s", name ? name : "fd");
	qmp_set_timeout(q, timeout_ms);
	err = read_message(q, now_ms() + q->timeout_ms, &greet);
	if (!err && !json_object_object_get_ex(greet, "QMP", NULL)) {
		p_err("%s does not speak QMP (no greeting)", q->path);
		err = -EPROTO;
	}
	json_object_put(greet);
	if (!err)
		err = qmp_command(q, "qmp_capabilities", NULL, NULL);
	if (err) {
		free(q->buf);
		free(q);
		return err;
	}
	*out = q;
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	free(q->buf);
	free(q);
}

int qmp_hmp(struct qmp *q, const char *cmdline, int cpu_index, char **out)
{
	struct json_object *args = json_object_new_object(), *ret = NULL;
	int err;

	*out = NULL;
	if (!args)
		return -ENOMEM;
	json_object_object_add(args, "command-line", json_object_new_string(cmdline));
	if (cpu_index >= 0)
		json_object_object_add(args, "cpu-index", json_object_new_int(cpu_index));
	err = qmp_command(q, "human-monitor-command", args, &ret);
	json_object_put(args);
	if (err)
		return err;
	if (!json_object_is_type(ret, json_type_string)) {
		json_object_put(ret);
		p_err("QMP human-monitor-command '%s': reply is not a string", cmdline);
		return -EPROTO;
	}
	*out = strdup(json_object_get_string(ret));
	json_object_put(ret);
	return *out ? 0 : -ENOMEM;
}

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
			if (strncmp(line, "RAX=", 4))
				continue;
			v = calloc(1, sizeof(*v));
			if (!v)
				return -ENOMEM;
			cur = &v[cnt++];
		}
		if (reg_value(line, "RIP", &x))
			cur->rip = x;
		if (reg_value(line, "RSP", &x))
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
			if (v[j].gs_base >> 63)
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
