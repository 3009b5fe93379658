/*
 * cmocka: the fleet outputs without a guest (issue 15) — the JSON-lines event file's rotation and reopen
 * (output/eventlog.h), the Prometheus text (output/metrics.h: families, escaping, per-VM labels), its HTTP
 * endpoint (a real socket on loopback: GET /metrics, 404, a port already taken) and the atomic textfile.
 * The guest-side checks (Prometheus and node_exporter on real traces) are tests/guest/test_fleet.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "output/eventlog.h"
#include "output/metrics.h"

static char *tmpdir(void)
{
	char *d = strdup("/tmp/vmot-fleet-unit.XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

/* Lines of a file: each must be "seq N ..." and end with '\n'; returns how many, first/last seq. */
static int read_lines(const char *path, long *first, long *last, size_t *size)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int n = 0;
	struct stat st;

	if (!f)
		return -1;
	assert_int_equal(fstat(fileno(f), &st), 0);
	*size = (size_t)st.st_size;
	while (fgets(line, sizeof(line), f)) {
		long s;

		assert_true(strlen(line) > 0 && line[strlen(line) - 1] == '\n');   /* no half line */
		assert_int_equal(sscanf(line, "{\"seq\":%ld", &s), 1);
		if (!n)
			*first = s;
		else
			assert_int_equal(s, *last + 1);   /* continuous within a file */
		*last = s;
		n++;
	}
	fclose(f);
	return n;
}

static void write_events(struct evlog *l, long from, long to)
{
	for (long s = from; s <= to; s++) {
		char line[600];
		int pad = (int)(s * 37 % 400);   /* lines of varied length */
		int n = snprintf(line, sizeof(line), "{\"seq\":%ld,\"pad\":\"%*s\"}", s, pad, "");

		assert_int_equal(evlog_write_line(l, line, (size_t)n), 0);
		if (s % 10 == 0)
			assert_int_equal(evlog_flush(l), 0);
	}
	assert_int_equal(evlog_flush(l), 0);
}

static void test_rotation_keeps_whole_lines(void **state)
{
	char *d = tmpdir(), path[300], p[320];
	struct evlog_opts o = { .path = path, .max_bytes = 8192, .keep = 3 };
	struct evlog *l;
	long first, last, expect_next = -1;
	size_t size;

	snprintf(path, sizeof(path), "%s/ev.jsonl", d);
	assert_int_equal(evlog_open(&o, &l), 0);
	write_events(l, 1, 2000);
	assert_true(evlog_rotations(l) > 10);
	assert_int_equal(evlog_lines(l), 2000);
	evlog_close(&l);
	/* FILE.3 (oldest) .. FILE.1, FILE: complete lines, each file within the limit, seq continuous across */
	for (int k = 3; k >= 0; k--) {
		if (k)
			snprintf(p, sizeof(p), "%s.%d", path, k);
		else
			snprintf(p, sizeof(p), "%s", path);
		int n = read_lines(p, &first, &last, &size);

		assert_true(n > 0);
		assert_true(size <= o.max_bytes);
		if (expect_next >= 0)
			assert_int_equal(first, expect_next);
		expect_next = last + 1;
	}
	assert_int_equal(last, 2000);
	snprintf(p, sizeof(p), "%s.4", path);
	assert_int_equal(access(p, F_OK), -1);   /* beyond keep: removed */
	rm_rf(d);
	free(d);
}

static void test_rotation_big_line_and_keep(void **state)
{
	char *d = tmpdir(), path[300], p[320], big[3000];

	struct evlog_opts o = { .path = path, .max_bytes = 1000, .keep = 1 };
	struct evlog *l;
	long first, last;
	size_t size;

	snprintf(path, sizeof(path), "%s/ev.jsonl", d);
	assert_int_equal(evlog_open(&o, &l), 0);
	write_events(l, 1, 50);
	/* a line longer than the limit goes whole into a file of its own */
	int n = snprintf(big, sizeof(big), "{\"seq\":51,\"pad\":\"%2500s\"}", "");
	assert_int_equal(evlog_write_line(l, big, (size_t)n), 0);
	write_events(l, 52, 52);
	evlog_close(&l);
	assert_int_equal(read_lines(path, &first, &last, &size), 1);
	assert_int_equal(first, 52);
	snprintf(p, sizeof(p), "%s.1", path);
	assert_int_equal(read_lines(p, &first, &last, &size), 1);   /* the big line, whole, alone */
	assert_int_equal(first, 51);
	snprintf(p, sizeof(p), "%s.2", path);
	assert_int_equal(access(p, F_OK), -1);   /* keep 1: one old file */
	/* keep 0: rotation only removes */
	o.keep = 0;
	assert_int_equal(evlog_open(&o, &l), 0);
	write_events(l, 53, 100);
	evlog_close(&l);
	snprintf(p, sizeof(p), "%s.1", path);
	assert_int_equal(read_lines(p, &first, &last, &size), 1);   /* untouched: .1 is not ours to shift */
	assert_true(read_lines(path, &first, &last, &size) > 0);
	assert_int_equal(last, 100);
	rm_rf(d);
	free(d);
}

static void test_reopen_after_move(void **state)
{
	char *d = tmpdir(), path[300], moved[320];
	struct evlog_opts o = { .path = path };
	struct evlog *l;
	long first, last;
	size_t size;

	snprintf(path, sizeof(path), "%s/ev.jsonl", d);
	snprintf(moved, sizeof(moved), "%s/moved.jsonl", d);
	assert_int_equal(evlog_open(&o, &l), 0);
	write_events(l, 1, 10);
	assert_int_equal(rename(path, moved), 0);
	write_events(l, 11, 12);          /* before the reopen: still into the moved file */
	assert_int_equal(evlog_reopen(l), 0);
	write_events(l, 13, 20);
	evlog_close(&l);
	assert_int_equal(read_lines(moved, &first, &last, &size), 12);
	assert_int_equal(read_lines(path, &first, &last, &size), 8);
	assert_int_equal(first, 13);
	/* appending: a second run continues the file */
	assert_int_equal(evlog_open(&o, &l), 0);
	write_events(l, 21, 21);
	evlog_close(&l);
	assert_int_equal(read_lines(path, &first, &last, &size), 9);
	rm_rf(d);
	free(d);
}

static void test_open_errors(void **state)
{
	struct evlog_opts o = { .path = "/nonexistent-dir/ev.jsonl" };
	struct evlog *l;

	assert_int_equal(evlog_open(&o, &l), -ENOENT);
	assert_null(l);
	assert_int_equal(metrics_file_write("/nonexistent-dir/m.prom", "x", 1), -ENOENT);
}

static struct metrics_snapshot *snap_two_vms(void)
{
	struct metrics_snapshot *s = calloc(1, sizeof(*s));

	s->version = "0.1.0";
	s->start_time_s = 1764925200.5;
	s->nvms = 2;
	snprintf(s->vm[0].name, sizeof(s->vm[0].name), "web \"prod\"\\1");   /* quotes and a backslash */
	s->vm[0].pid = 4242;
	snprintf(s->vm[0].uuid, sizeof(s->vm[0].uuid), "5a0c6f1e-8d2b-4c3a-9e7f-0123456789ab");
	snprintf(s->vm[0].boot_id, sizeof(s->vm[0].boot_id), "0123456789abcdef");
	s->vm[0].nvcpu = 2;
	s->vm[0].switches[0] = 10;
	s->vm[0].switches[1] = 11;
	s->vm[0].forks = 7;
	s->vm[0].validated = true;
	snprintf(s->vm[1].name, sizeof(s->vm[1].name), "db");
	s->vm[1].pid = 4343;
	s->vm[1].nvcpu = 1;
	s->vm[1].exits = 3;
	s->events_written = 31;
	return s;
}

static void test_metrics_text(void **state)
{
	struct metrics_snapshot *s = snap_two_vms();
	size_t len;
	char *t = metrics_render(s, &len);

	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	assert_non_null(strstr(t, "# TYPE vmoffset_trace_forks_total counter\n"));
	assert_non_null(strstr(t, "vmoffset_trace_forks_total{vm=\"web \\\"prod\\\"\\\\1\",qemu_pid=\"4242\"} 7\n"));
	assert_non_null(strstr(t, "vmoffset_trace_exits_total{vm=\"db\",qemu_pid=\"4343\"} 3\n"));
	assert_non_null(strstr(t, "vmoffset_trace_switches_total{vm=\"db\",qemu_pid=\"4343\",vcpu=\"0\"} 0\n"));
	assert_null(strstr(t, "qemu_pid=\"4343\",vcpu=\"1\""));   /* one series per existing vCPU */
	assert_non_null(strstr(t, ",vcpu=\"1\"} 11\n"));
	assert_non_null(strstr(t, "vm_uuid=\"5a0c6f1e-8d2b-4c3a-9e7f-0123456789ab\""));
	assert_non_null(strstr(t, "vmoffset_trace_vm_validated{vm=\"db\",qemu_pid=\"4343\"} 0\n"));
	assert_non_null(strstr(t, "vmoffset_trace_output_events_total 31\n"));
	assert_null(strstr(t, "kvm_exits_total"));               /* no exits: no family */
	assert_non_null(strstr(t, "vmoffset_trace_capture_attached 0\n"));
	/* every sample's family has HELP and TYPE before it; every counter ends in _total */
	char *save = NULL, *copy = strdup(t), *line;
	char family[128] = "";

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "# TYPE ", 7)) {
			char type[16];

			assert_int_equal(sscanf(line + 7, "%127s %15s", family, type), 2);
			if (!strcmp(type, "counter"))
				assert_non_null(strstr(family, "_total"));
		} else if (line[0] != '#') {
			assert_int_equal(strncmp(line, family, strlen(family)), 0);
		}
	}
	free(copy);
	free(t);
	free(s);
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static char *http(int port, const char *req)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char *buf = calloc(1, 65536);
	size_t got = 0;
	ssize_t r;

	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	while ((r = recv(fd, buf + got, 65535 - got, 0)) > 0)
		got += (size_t)r;
	close(fd);
	return buf;
}

static void test_metrics_http(void **state)
{
	struct metrics_snapshot *s = snap_two_vms();
	struct metrics_server *srv, *again;
	char spec[32];
	int port = free_port();
	size_t len;
	char *t = metrics_render(s, &len), *r;

	snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
	assert_int_equal(metrics_server_start(spec, &srv), 0);
	r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_non_null(strstr(r, "200 OK"));
	assert_int_equal(strlen(strstr(r, "\r\n\r\n") + 4), 0);   /* nothing published yet: empty */
	free(r);
	metrics_server_publish(srv, t, len);
	r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_string_equal(strstr(r, "\r\n\r\n") + 4, t);
	free(r);
	r = http(port, "GET /other HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "404"));
	free(r);
	r = http(port, "POST /metrics HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "405"));
	free(r);
	assert_true(metrics_server_start(spec, &again) < 0);   /* the port is ours already */
	assert_null(again);
	metrics_server_stop(&srv);
	assert_null(srv);
	assert_int_equal(metrics_server_start("127.0.0.1:0", &again), -EINVAL);
	assert_int_equal(metrics_server_start("not-a-port", &again), -EINVAL);
	free(t);
	free(s);
}

static void test_metrics_file_atomic(void **state)
{
	char *d = tmpdir(), path[300], buf[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vmot.prom", d);
	assert_int_equal(metrics_file_write(path, "a 1\n", 4), 0);
	assert_int_equal(metrics_file_write(path, "b 2\n", 4), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "b 2\n");
	fclose(f);
	snprintf(buf, sizeof(buf), "ls '%s' | wc -l | grep -qx 1", d);   /* no temporary left */
	assert_int_equal(system(buf), 0);
	rm_rf(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation_keeps_whole_lines),
		cmocka_unit_test(test_rotation_big_line_and_keep),
		cmocka_unit_test(test_reopen_after_move),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_metrics_text),
		cmocka_unit_test(test_metrics_http),
		cmocka_unit_test(test_metrics_file_atomic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
