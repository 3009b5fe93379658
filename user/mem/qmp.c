/*
 * QMP client: the connection, commands and HMP passthrough; see qmp.h (the HMP parsers are in qmp_hmp.c).
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
#include "mem/gdbstub.h"
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
	int arch;              /* the guest's: 0 not asked yet, QMP_ARCH_* */
	struct gdbstub *gdb;   /* an arm64 guest's register source, opened at its first read */
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
	if (q->gdb)
		gdbstub_close(q->gdb, q);
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

int qmp_guest_arch(struct qmp *q)
{
	struct json_object *ret = NULL, *a;

	if (q->arch)
		return q->arch;
	q->arch = QMP_ARCH_OTHER;
	if (!qmp_command(q, "query-target", NULL, &ret) && json_object_object_get_ex(ret, "arch", &a)) {
		const char *s = json_object_get_string(a);

		q->arch = !s ? QMP_ARCH_OTHER : !strcmp(s, "aarch64") ? QMP_ARCH_AARCH64
			: !strcmp(s, "x86_64") || !strcmp(s, "i386") ? QMP_ARCH_X86 : QMP_ARCH_OTHER;
	}
	json_object_put(ret);
	return q->arch;
}

int qmp_read_arm64_vcpus(struct qmp *q, struct vcpu_state **out, size_t *n)
{
	int err = q->gdb ? 0 : gdbstub_open(q, &q->gdb);

	return err ? err : gdbstub_read_arm64_vcpus(q->gdb, out, n);
}
