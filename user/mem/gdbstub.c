/*
 * QEMU's gdbstub as a register source for AArch64 vCPUs (see gdbstub.h). The GDB remote serial protocol:
 * packets "$payload#cs" (cs: the payload's byte sum mod 256 in hex), '+' acknowledges, ^C (0x03) stops a
 * running target. QEMU (system emulation) acknowledges our packets and does not wait for our acks.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"
#include "mem/gdbstub.h"
#include "mem/qmp.h"

#define GDB_TIMEOUT_MS  3000
#define GDB_MAX_PACKET  (256 << 10)   /* the largest reply we accept (a target description chunk is ~4 KiB) */
#define GDB_MAX_XML     (1 << 20)     /* all target description files together */
#define GDB_MAX_THREADS 64

enum { R_TTBR0, R_TTBR1, R_TCR, R_TPIDR, R_SP_EL0, R_PC, R_CPSR, R_NR };
static const char *const reg_names[R_NR] = { "TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "TPIDR_EL1", "SP_EL0", "pc", "cpsr" };

struct gdbstub {
	int fd;
	bool running;             /* the guest runs (we sent 'c'): a read must stop it first */
	bool was_paused;          /* paused before we came: left paused when we go */
	char dir[64], path[96];   /* the private socket */
	int regnum[R_NR];
	char threads[GDB_MAX_THREADS][20];
	size_t nthreads;
	char *pkt;                /* GDB_MAX_PACKET + 1 */
	char in[8192];            /* bytes read, not yet consumed */
	size_t inlen;
};

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int gdb_parse_packet(const char *buf, size_t len, char *payload, size_t cap, size_t *used)
{
	size_t i = 0, n = 0;
	unsigned sum = 0;

	while (i < len && buf[i] != '$')   /* acks and stray bytes before a packet */
		i++;
	if (i == len) {
		*used = i;
		return -EAGAIN;
	}
	for (size_t k = i + 1; k < len; k++) {
		if (buf[k] == '#') {
			int h, l;

			if (k + 2 >= len)
				break;
			h = hexval((unsigned char)buf[k + 1]);
			l = hexval((unsigned char)buf[k + 2]);
			*used = k + 3;
			if (h < 0 || l < 0 || (unsigned)(h << 4 | l) != (sum & 0xff))
				return -EPROTO;
			payload[n] = 0;
			return 0;
		}
		if (buf[k] == '$' || n + 1 >= cap) {
			*used = k;
			return -EPROTO;
		}
		sum += (unsigned char)buf[k];
		payload[n++] = buf[k];
	}
	*used = i;   /* keep the partial packet */
	return -EAGAIN;
}

static int send_all(struct gdbstub *g, const char *s, size_t len)
{
	while (len) {
		ssize_t w = send(g->fd, s, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EPIPE;
		s += w;
		len -= (size_t)w;
	}
	return 0;
}

static int send_packet(struct gdbstub *g, const char *payload)
{
	char buf[512];
	unsigned sum = 0;
	size_t n = strlen(payload);

	if (n + 5 > sizeof(buf))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		sum += (unsigned char)payload[i];
	snprintf(buf, sizeof(buf), "$%s#%02x", payload, sum & 0xff);
	return send_all(g, buf, n + 4);
}

/* The next packet's payload into g->pkt. */
static int recv_packet(struct gdbstub *g)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		size_t used = 0;
		int err = gdb_parse_packet(g->in, g->inlen, g->pkt, GDB_MAX_PACKET + 1, &used);

		if (err == -EAGAIN && g->inlen == sizeof(g->in) && !used) {
			/* a packet longer than the input buffer: take it in pieces */
			err = -EPROTO;
		}
		memmove(g->in, g->in + used, g->inlen - used);
		g->inlen -= used;
		if (err != -EAGAIN) {
			if (!err)
				send_all(g, "+", 1);
			return err;
		}
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = GDB_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = { .fd = g->fd, .events = POLLIN };
		int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (ready < 0 && errno == EINTR)
			continue;   /* a signal (live's ^C) is not the stub's silence: wait out the deadline */
		if (ready <= 0)
			return -ETIMEDOUT;
		ssize_t r = recv(g->fd, g->in + g->inlen, sizeof(g->in) - g->inlen, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			g->inlen += (size_t)r;
	}
}

/* A stop reply ("T05thread:01;", "S02"): QEMU sends one unasked when we connect. */
static bool is_stop_reply(const char *p)
{
	return (p[0] == 'T' || p[0] == 'S') && hexval((unsigned char)p[1]) >= 0 && hexval((unsigned char)p[2]) >= 0;
}

/* Send a packet and read its reply; a stop reply that arrives first (not asked for) is skipped. */
static int command(struct gdbstub *g, const char *payload)
{
	int err = send_packet(g, payload);

	for (int i = 0; !err && i < 4; i++) {
		err = recv_packet(g);
		if (err || !is_stop_reply(g->pkt) || !strcmp(payload, "?"))
			return err;
	}
	return err ? err : -EPROTO;
}

/* ---- the target description: register numbers ---- */

static const char *attr(const char *tag, const char *end, const char *name, char *val, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *p = tag; p + nl + 2 < end; p++)
		if (!strncmp(p, name, nl) && p[nl] == '=' && p[nl + 1] == '"' && (p == tag || p[-1] == ' ')) {
			const char *v = p + nl + 2, *q = memchr(v, '"', (size_t)(end - v));
			size_t n = q ? (size_t)(q - v) : 0;

			if (!q || n >= cap)
				return NULL;
			memcpy(val, v, n);
			val[n] = 0;
			return val;
		}
	return NULL;
}

void gdb_xml_regnums(const char *xml, const char *const *names, int *nums, size_t nnames, int *next)
{
	for (const char *p = xml; (p = strstr(p, "<reg ")); p++) {
		const char *end = strchr(p, '>');
		char name[64], num[16];

		if (!end)
			return;
		if (attr(p, end, "regnum", num, sizeof(num)))
			*next = atoi(num);
		if (attr(p, end, "name", name, sizeof(name)))
			for (size_t i = 0; i < nnames; i++)
				if (!strcmp(name, names[i]))
					nums[i] = *next;
		(*next)++;
	}
}

/* One description file (qXfer, in chunks), appended to *xml. */
static int read_xml(struct gdbstub *g, const char *file, char **xml, size_t *len)
{
	size_t off = 0;

	for (;;) {
		char req[160];
		int err;

		snprintf(req, sizeof(req), "qXfer:features:read:%s:%zx,%x", file, off, 0xf00);
		err = command(g, req);
		if (err)
			return err;
		if (g->pkt[0] != 'm' && g->pkt[0] != 'l')
			return -EPROTO;
		size_t n = strlen(g->pkt + 1);
		if (*len + n + 1 > GDB_MAX_XML)
			return -E2BIG;
		char *p = realloc(*xml, *len + n + 1);
		if (!p)
			return -ENOMEM;
		*xml = p;
		memcpy(*xml + *len, g->pkt + 1, n + 1);
		*len += n;
		off += n;
		if (g->pkt[0] == 'l' || !n)
			return 0;
	}
}

/* Register numbers from target.xml and the files it includes, in document order (GDB's numbering). */
static int read_regnums(struct gdbstub *g)
{
	char *top = NULL, *xml = NULL;
	size_t tlen = 0, len = 0;
	int next = 0, err;

	for (int i = 0; i < R_NR; i++)
		g->regnum[i] = -1;
	err = read_xml(g, "target.xml", &top, &tlen);
	for (const char *p = top; !err && (p = strstr(p, "<xi:include ")); p++) {
		const char *end = strchr(p, '>');
		char href[64];

		if (!end || !attr(p, end, "href", href, sizeof(href)) || strchr(href, ':'))
			continue;
		len = 0;
		err = read_xml(g, href, &xml, &len);
		if (!err)
			gdb_xml_regnums(xml, reg_names, g->regnum, R_NR, &next);
	}
	if (!err && top)
		gdb_xml_regnums(top, reg_names, g->regnum, R_NR, &next);   /* registers given inline */
	free(top);
	free(xml);
	for (int i = 0; !err && i < R_NR; i++)
		if (g->regnum[i] < 0) {
			p_err("QEMU's gdbstub: no register %s in its target description (not an AArch64 guest?)", reg_names[i]);
			err = -ENOENT;
		}
	return err;
}

static int read_threads(struct gdbstub *g)
{
	g->nthreads = 0;
	for (const char *q = "qfThreadInfo"; g->nthreads < GDB_MAX_THREADS; q = "qsThreadInfo") {
		int err = command(g, q);

		if (err)
			return err;
		if (g->pkt[0] != 'm')
			break;
		for (char *s = g->pkt + 1, *tok; (tok = strsep(&s, ",")) && g->nthreads < GDB_MAX_THREADS;)
			if (*tok && strlen(tok) < sizeof(g->threads[0]) && strspn(tok, "0123456789abcdefABCDEF.p-") == strlen(tok))
				snprintf(g->threads[g->nthreads++], sizeof(g->threads[0]), "%s", tok);
	}
	return g->nthreads ? 0 : -ENOENT;
}

/* ---- open, read, close ---- */

static int hmp_ok(struct qmp *q, const char *cmd)
{
	char *out = NULL;
	int err = qmp_hmp(q, cmd, -1, &out);

	if (!err && out && (strstr(out, "Could not") || strstr(out, "rror"))) {
		p_err("QEMU's monitor refused `%s`: %.*s", cmd, (int)strcspn(out, "\r\n"), out);
		err = -EREMOTEIO;
	}
	free(out);
	return err;
}

static bool vm_running(struct qmp *q)
{
	char *out = NULL;
	bool running = true;

	if (!qmp_hmp(q, "info status", -1, &out) && out)
		running = strstr(out, "running") != NULL;
	free(out);
	return running;
}

int gdbstub_open(struct qmp *q, struct gdbstub **out)
{
	struct gdbstub *g = calloc(1, sizeof(*g));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cmd[200];
	int err;

	*out = NULL;
	if (!g || !(g->pkt = malloc(GDB_MAX_PACKET + 1))) {
		free(g);
		return -ENOMEM;
	}
	g->fd = -1;
	snprintf(g->dir, sizeof(g->dir), "/tmp/vmot-gdb.XXXXXX");
	if (!mkdtemp(g->dir)) {
		err = -errno;
		p_err("cannot make a directory for the gdbstub socket: %s", strerror(errno));
		free(g->pkt);
		free(g);
		return err;
	}
	snprintf(g->path, sizeof(g->path), "%s/gdb.sock", g->dir);
	g->was_paused = !vm_running(q);
	snprintf(cmd, sizeof(cmd), "gdbserver unix:%s,server=on,wait=off", g->path);
	err = hmp_ok(q, cmd);
	if (err)
		goto fail;
	g->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g->path);
	err = -ECONNREFUSED;
	for (int i = 0; g->fd >= 0 && i < 50 && err; i++) {
		if (!connect(g->fd, (struct sockaddr *)&sa, sizeof(sa)))
			err = 0;
		else
			usleep(20000);
	}
	if (err) {
		p_err("cannot connect to QEMU's gdbstub at %s", g->path);
		goto fail;
	}
	/* connected: QEMU has stopped the guest */
	err = command(g, "qSupported:xmlRegisters=aarch64");
	if (!err)
		err = command(g, "?");
	if (!err)
		err = read_regnums(g);
	if (!err)
		err = read_threads(g);
	if (err) {
		if (err != -ENOENT)
			p_err("QEMU's gdbstub: %s", strerror(-err));
		goto fail;
	}
	*out = g;
	return 0;
fail:
	gdbstub_close(g, q);
	return err;
}

static int read_reg(struct gdbstub *g, int r, uint64_t *v)
{
	char req[16];
	int err;

	snprintf(req, sizeof(req), "p%x", g->regnum[r]);
	err = command(g, req);
	if (err)
		return err;
	*v = 0;
	size_t n = strlen(g->pkt);
	if (n < 2 || n > 16 || n % 2 || g->pkt[0] == 'E')
		return -EPROTO;
	for (size_t i = 0; i < n / 2; i++) {   /* target byte order: little-endian */
		int h = hexval((unsigned char)g->pkt[2 * i]), l = hexval((unsigned char)g->pkt[2 * i + 1]);

		if (h < 0 || l < 0)
			return -EPROTO;
		*v |= (uint64_t)(h << 4 | l) << (8 * i);
	}
	return 0;
}

static int stop_guest(struct gdbstub *g)
{
	if (!g->running)
		return 0;
	if (send_all(g, "\x03", 1))
		return -EPIPE;
	int err = recv_packet(g);   /* the stop reply */

	if (!err)
		g->running = false;
	return err;
}

int gdbstub_read_arm64_vcpus(struct gdbstub *g, struct vcpu_state **out, size_t *n)
{
	struct vcpu_state *v = calloc(g->nthreads, sizeof(*v));
	int err;

	*out = NULL;
	*n = 0;
	if (!v)
		return -ENOMEM;
	err = stop_guest(g);
	for (size_t i = 0; !err && i < g->nthreads; i++) {
		char req[32];
		uint64_t r[R_NR];

		snprintf(req, sizeof(req), "Hg%s", g->threads[i]);
		err = command(g, req);
		for (int k = 0; !err && k < R_NR; k++)
			err = read_reg(g, k, &r[k]);
		if (err)
			break;
		v[i] = (struct vcpu_state){
			.id = (uint32_t)i, .valid = true, .aarch64 = true, .el1 = ((r[R_CPSR] >> 2) & 3) == 1,
			.ttbr0 = r[R_TTBR0], .ttbr1 = r[R_TTBR1], .tcr = r[R_TCR], .tpidr_el1 = r[R_TPIDR],
			.sp_el0 = r[R_SP_EL0], .pc = r[R_PC], .cr3 = r[R_TTBR0], .gs_base = r[R_TPIDR],
		};
	}
	if (!err && !(err = send_packet(g, "c")))   /* the guest runs on; the reply comes at the next stop */
		g->running = true;
	if (err) {
		p_err("QEMU's gdbstub: reading registers: %s", strerror(-err));
		free(v);
		return err;
	}
	*out = v;
	*n = g->nthreads;
	return 0;
}

void gdbstub_close(struct gdbstub *g, struct qmp *q)
{
	char *out = NULL;

	if (!g)
		return;
	if (g->fd >= 0) {
		if (!stop_guest(g) && !command(g, "D"))   /* detach: QEMU lets the guest run */
			g->running = true;
		close(g->fd);
	}
	if (q && !qmp_hmp(q, "gdbserver none", -1, &out)) {
		free(out);
		out = NULL;
		if (g->was_paused)
			qmp_hmp(q, "stop", -1, &out);
		else if (!vm_running(q)) {
			/* the detach did not take (its reply late or lost on a loaded host): a guest we found running must
			 * not stay stopped — every later look would take it for paused by its owner and keep it so */
			p_warn("QEMU's gdbstub: the guest stayed stopped after the detach; resumed through the monitor");
			qmp_hmp(q, "cont", -1, &out);
		}
	}
	free(out);
	unlink(g->path);
	rmdir(g->dir);
	free(g->pkt);
	free(g);
}
