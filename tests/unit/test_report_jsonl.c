/* cmocka: `report -i FILE` on the JSON-lines event file of `live --output` (issue 15) — a normal file of two
 * VMs (forks, execs with argv, exits, renames, switches, a lost range, a guest restart) gives the right VMs,
 * processes and timeline; damaged and hostile lines are skipped and counted with one line on stderr; the seq
 * numbers say what is not in the file (rotated out, gaps, files out of order); a newer schema's lines are
 * skipped; several -i read the rotated files of one trace in order; a session file still goes to the
 * session reader. */
#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>
#include "cmd/cmd.h"
#include "common/log.h"
#include "session/jsonl.h"
#include "session/session.h"
#include "trace/analysis.h"

/* ---- building files ---------------------------------------------------------------------------- */

struct text {
	char *p;
	size_t len;
	FILE *f;
};

static void text_open(struct text *t)
{
	t->p = NULL;
	t->len = 0;
	t->f = open_memstream(&t->p, &t->len);
	assert_non_null(t->f);
}

static char *text_close(struct text *t, size_t *len)
{
	fclose(t->f);
	if (len)
		*len = t->len;
	return t->p;
}

/* One schema-1 line as live writes it: ms milliseconds after the trace started at 09:01:00 UTC (so "t"
 * agrees with "ts"); vcpu < 0: null; rest: the event's own members from "pid" (or "count") on. */
static void line(struct text *t, int seq, int ms, const char *vm, int vm_pid, const char *boot, int vcpu,
		 const char *event, const char *rest)
{
	char vc[16], hms[16];
	int s = 9 * 3600 + 60 + ms / 1000;

	snprintf(vc, sizeof(vc), vcpu < 0 ? "null" : "%d", vcpu);
	snprintf(hms, sizeof(hms), "%02d:%02d:%02d", s / 3600 % 24, s / 60 % 60, s % 60);
	fprintf(t->f, "{\"schema\":1,\"seq\":%d,\"ts\":\"2026-12-05T%s.%03d000000Z\",\"host\":\"hv1\","
		"\"vm\":\"%s\",\"vm_pid\":%d,\"vm_uuid\":%s,\"boot_id\":\"%s\",\"time\":\"%s.%03d000\","
		"\"t\":%d.%03d000,\"vcpu\":%s,\"event\":\"%s\",%s}\n", seq, hms, ms % 1000, vm, vm_pid,
		!strcmp(vm, "web") ? "\"5a0c2b3a-1111-4222-8333-444455556666\"" : "null", boot, hms, ms % 1000,
		ms / 1000, ms % 1000, vc, event, rest);
}

#define WEB "web", 4242, "9f1c2b3a4d5e6f70"
#define DB "db", 5151, "0123456789abcdef"
#define DB2 "db", 5151, "fedcba9876543210"   /* db after its restart */

static void task(char *buf, size_t len, int pid, int tgid, int ppid, const char *comm, const char *more)
{
	snprintf(buf, len, "\"pid\":%d,\"tgid\":%d,\"ppid\":%d,\"comm\":\"%s\"%s%s,\"task\":\"0xffff888004%06x\"", pid,
		 tgid, ppid, comm, more[0] ? "," : "", more, pid & 0xffffff);
}

static void sw(struct text *t, int seq, int ms, const char *vm, int vm_pid, const char *boot, int vcpu, int pid,
	       const char *comm, int prev)
{
	char more[64], b[256];

	snprintf(more, sizeof(more), "\"prev_pid\":%d,\"sampled\":true", prev);
	task(b, sizeof(b), pid, pid, pid > 1 ? 1 : 0, comm, more);
	line(t, seq, ms, vm, vm_pid, boot, vcpu, "switch", b);
}

static void ev(struct text *t, int seq, int ms, const char *vm, int vm_pid, const char *boot, const char *event,
	       int pid, int ppid, const char *comm, const char *more)
{
	char b[512];

	task(b, sizeof(b), pid, pid, ppid, comm, more);
	line(t, seq, ms, vm, vm_pid, boot, -1, event, b);
}

/* Two VMs: web (2 vCPUs) runs init, forks bash, which execs sh (argv, uid), is renamed and exits; 3 pids
 * lost; db (1 vCPU) forks cron, restarts (a new boot_id) and runs init again. */
static char *normal_file(size_t *len)
{
	struct text t;

	text_open(&t);
	sw(&t, 1, 0, WEB, 0, 1, "init", -1);
	sw(&t, 2, 10, WEB, 1, 0, "swapper/1", -1);
	sw(&t, 3, 20, DB, 0, 1, "init", -1);
	ev(&t, 4, 100, WEB, "fork", 200, 1, "bash", "");
	ev(&t, 5, 150, WEB, "exec", 200, 1, "sh",
	   "\"uid\":1000,\"euid\":0,\"argv\":[\"/bin/sh\",\"-c\",\"echo hi\"],\"argv_truncated\":false");
	sw(&t, 6, 200, WEB, 0, 200, "sh", 1);
	ev(&t, 7, 300, WEB, "rename", 200, 1, "worker", "");
	ev(&t, 8, 400, WEB, "exit", 200, 1, "worker", "");
	sw(&t, 9, 500, WEB, 0, 1, "init", 200);
	line(&t, 10, 600, WEB, -1, "lost", "\"count\":3,\"pids\":[300,301,302],\"range\":[300,302]");
	ev(&t, 11, 700, DB, "fork", 50, 1, "cron", "");
	line(&t, 12, 800, DB, -1, "restart", "\"pid\":-1,\"tgid\":-1,\"ppid\":-1,\"comm\":\"\",\"task\":\"0x0\"");
	sw(&t, 13, 900, DB2, 0, 1, "init", -1);
	sw(&t, 14, 1000, WEB, 1, 7, "kworker", 0);
	return text_close(&t, len);
}

static char *write_temp(const char *data, size_t len)
{
	char *path = strdup("/tmp/vmot-jsonl.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static char *slurp(int fd)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *buf = calloc(1, (size_t)n + 1);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
	close(fd);
	return buf;
}

struct run {
	int rc;
	char *out, *err;
	struct json_object *j;   /* out parsed, when it is JSON */
};

/* `report ARGS...` (NULL-terminated), stdout and stderr captured. */
static struct run report(const char *arg, ...)
{
	char out[] = "/tmp/vmot-rj-out.XXXXXX", err[] = "/tmp/vmot-rj-err.XXXXXX", *argv[32] = { "report" };
	int ofd = mkstemp(out), efd = mkstemp(err), so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO), argc = 1;
	struct run r;
	va_list ap;

	assert_true(ofd >= 0 && efd >= 0 && so >= 0 && se >= 0);
	va_start(ap, arg);
	for (const char *a = arg; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	dup2(ofd, STDOUT_FILENO);
	dup2(efd, STDERR_FILENO);
	optind = 0;
	log_json = false;
	r.rc = cmd_report(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, STDOUT_FILENO);
	dup2(se, STDERR_FILENO);
	close(so);
	close(se);
	r.out = slurp(ofd);
	r.err = slurp(efd);
	unlink(out);
	unlink(err);
	r.j = json_tokener_parse(r.out);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	json_object_put(r->j);
}

/* o's member path "a.b.c" (array indexes as numbers), NULL when absent */
static struct json_object *at(struct json_object *o, const char *path)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(k));
		else if (!json_object_object_get_ex(o, k, &o))
			return NULL;
	}
	return o;
}

static int64_t iat(struct json_object *o, const char *path)
{
	struct json_object *x = at(o, path);

	assert_non_null(x);
	return json_object_get_int64(x);
}

static const char *sat(struct json_object *o, const char *path)
{
	struct json_object *x = at(o, path);

	assert_non_null(x);
	return json_object_get_string(x);
}

/* The process row of (vm, pid) in a JSON report. */
static struct json_object *process(struct json_object *j, const char *vm, int pid)
{
	struct json_object *p = at(j, "processes");

	for (size_t i = 0; p && i < json_object_array_length(p); i++) {
		struct json_object *e = json_object_array_get_idx(p, i);

		if (!strcmp(sat(e, "vm"), vm) && iat(e, "pid") == pid)
			return e;
	}
	fail_msg("no process %s/%d", vm, pid);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);   /* the text timeline's wall times */
	tzset();
	return 0;
}

/* ---- a normal file ------------------------------------------------------------------------------ */

static void test_normal_json(void **state)
{
	size_t len;
	char *data = normal_file(&len), *path = write_temp(data, len);
	struct run r = report("-i", path, "--json", NULL);
	struct json_object *j = r.j, *e, *x;

	(void)state;
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");   /* nothing skipped, nothing missing */
	assert_non_null(j);
	assert_string_equal(sat(j, "source"), "jsonl");
	assert_string_equal(sat(j, "input.files.0"), path);
	assert_string_equal(sat(j, "input.host"), "hv1");
	assert_true(json_object_get_boolean(at(j, "integrity.intact")));
	assert_int_equal(iat(j, "integrity.events_read"), 14);
	assert_int_equal(iat(j, "integrity.first_seq"), 1);
	assert_int_equal(iat(j, "integrity.last_seq"), 14);
	assert_int_equal(json_object_array_length(at(j, "integrity.notes")), 0);
	assert_non_null(strstr(sat(j, "not_carried"), "carries events only"));
	/* sections the file does not carry: there, null */
	assert_true(json_object_object_get_ex(j, "exact", &x) && !x);
	assert_true(json_object_object_get_ex(j, "exit_stats", &x) && !x);
	assert_true(json_object_object_get_ex(j, "counters", &x) && !x);
	assert_false(json_object_object_get_ex(j, "session", &x));

	/* one VM per vm_pid; vCPUs 1 + the largest seen; db's restart changed its boot_id */
	assert_int_equal(json_object_array_length(at(j, "vms")), 2);
	assert_string_equal(sat(j, "vms.0.name"), "web");
	assert_int_equal(iat(j, "vms.0.pid"), 4242);
	assert_int_equal(iat(j, "vms.0.vcpus"), 2);
	assert_int_equal(iat(j, "vms.0.events"), 10);
	assert_string_equal(sat(j, "vms.0.uuid"), "5a0c2b3a-1111-4222-8333-444455556666");
	assert_string_equal(sat(j, "vms.1.name"), "db");
	assert_int_equal(iat(j, "vms.1.vcpus"), 1);
	assert_true(json_object_object_get_ex(at(j, "vms.1"), "uuid", &x) && !x);
	assert_string_equal(sat(j, "vms.1.boot_id"), "fedcba9876543210");
	assert_int_equal(iat(j, "vms.1.boot_ids"), 2);

	/* lost */
	assert_int_equal(iat(j, "lost.processes"), 3);
	assert_int_equal(iat(j, "lost.events"), 1);
	assert_string_equal(sat(j, "lost.vms.0.vm"), "web");
	assert_int_equal(iat(j, "lost.vms.0.processes"), 3);

	/* processes: bash -> sh -> worker, one of each event; its sampled run from 0.2 s to 0.5 s */
	e = process(j, "web", 200);
	assert_int_equal(iat(e, "forks"), 1);
	assert_int_equal(iat(e, "execs"), 1);
	assert_int_equal(iat(e, "renames"), 1);
	assert_int_equal(iat(e, "exits"), 1);
	assert_int_equal(iat(e, "ppid"), 1);
	assert_string_equal(sat(e, "comm"), "worker");
	assert_int_equal(iat(e, "sampled_switches_in"), 1);
	assert_int_equal(iat(e, "sampled_vcpu_time_ns"), 300000000);
	e = process(j, "web", 1);   /* vCPU 0: 0 - 0.2 s and 0.5 s - the end (1.0 s) */
	assert_int_equal(iat(e, "sampled_switches_in"), 2);
	assert_int_equal(iat(e, "sampled_vcpu_time_ns"), 700000000);
	e = process(j, "db", 50);
	assert_int_equal(iat(e, "forks"), 1);
	e = process(j, "db", 1);    /* 0.02 s - the restart (0.8 s), then 0.9 s - 1.0 s */
	assert_int_equal(iat(e, "sampled_switches_in"), 2);
	assert_int_equal(iat(e, "sampled_vcpu_time_ns"), 880000000);

	/* vCPUs */
	assert_int_equal(json_object_array_length(at(j, "vcpus")), 3);

	/* the timeline: every event, in order, t as live printed it, exec with its argv and ids */
	assert_int_equal(json_object_array_length(at(j, "events")), 14);
	assert_string_equal(sat(j, "events.0.event"), "switch");
	assert_string_equal(sat(j, "events.0.t"), "0.000000");
	assert_string_equal(sat(j, "events.0.time"), "09:01:00.000");
	assert_string_equal(sat(j, "events.4.event"), "exec");
	assert_string_equal(sat(j, "events.4.t"), "0.150000");
	assert_int_equal(iat(j, "events.4.uid"), 1000);
	assert_int_equal(iat(j, "events.4.euid"), 0);
	assert_int_equal(json_object_array_length(at(j, "events.4.argv")), 3);
	assert_string_equal(sat(j, "events.4.argv.2"), "echo hi");
	assert_string_equal(sat(j, "events.4.task"), "0xffff8880040000c8");
	assert_string_equal(sat(j, "events.9.event"), "lost");
	assert_int_equal(iat(j, "events.9.count"), 3);
	assert_int_equal(iat(j, "events.9.range.0"), 300);
	assert_int_equal(iat(j, "events.9.range.1"), 302);
	assert_string_equal(sat(j, "events.11.event"), "restart");
	assert_int_equal(iat(j, "events.11.pid"), -1);
	assert_string_equal(sat(j, "events.13.comm"), "kworker");
	assert_int_equal(iat(j, "events.13.vcpu"), 1);
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

static void test_normal_text(void **state)
{
	size_t len;
	char *data = normal_file(&len), *path = write_temp(data, len);
	struct run r = report("-i", path, NULL);
	char *not;

	(void)state;
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_non_null(strstr(r.out, "JSON lines (schema 1) of live --output, host hv1"));
	/* said once, and the sections it names are not printed */
	not = strstr(r.out, "a JSON-lines event file carries events only");
	assert_non_null(not);
	assert_null(strstr(not + strlen("a JSON-lines event file carries"), "carries events only"));
	assert_null(strstr(r.out, "Exact ("));
	assert_null(strstr(r.out, "Exit statistics"));
	assert_non_null(strstr(r.out, "14 event(s) over 1.000 s: 7 switch, 2 fork, 1 exec, 1 rename, 1 exit; 3 lost"));
	assert_non_null(strstr(r.out, "5a0c2b3a-1111-4222-8333-444455556666, boot 9f1c2b3a4d5e6f70"));
	assert_non_null(strstr(r.out, "-, boot fedcba9876543210 (the last of 2)"));
	/* the exec line as live prints it: uid, then the command line */
	assert_non_null(strstr(r.out, "09:01:00.150   0.150000 web"));
	assert_non_null(strstr(r.out, "sh uid=1000 args: /bin/sh -c echo hi\n"));
	assert_non_null(strstr(r.out, "3 pid(s) 300-302 started and ended unseen"));
	run_free(&r);

	r = report("-i", path, "--csv", "--section", "timeline,exact", NULL);   /* CSV: the note on stderr */
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "0.150000,\"web\",,exec,200,200,1,\"sh\",-1\n"));
	assert_non_null(strstr(r.out, "vm,tgid,comm,threads,window_s,cpu_time_ns,nvcsw,nivcsw\n"));
	assert_non_null(strstr(r.err, "carries events only"));
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* Many processes, each exec'd then switched in: the analysis table grows several times while an event holds
 * entries (it once wrote to the old table), and every exec finds its own argv. */
static void test_many_processes(void **state)
{
	struct text t;
	size_t len;
	char *data, *path, more[128], key[64];
	struct run r;
	int seq = 0;

	(void)state;
	text_open(&t);
	for (int pid = 1000; pid < 2500; pid++) {
		snprintf(more, sizeof(more), "\"uid\":%d,\"euid\":%d,\"argv\":[\"prog\",\"%d\"],\"argv_truncated\":false",
			 pid, pid, pid);
		seq++;
		ev(&t, seq, seq, WEB, "exec", pid, 1, "prog", more);
		seq++;
		sw(&t, seq, seq, WEB, pid & 1, pid, "prog", -1);
	}
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_int_equal(json_object_array_length(at(r.j, "processes")), 1500);
	assert_int_equal(iat(process(r.j, "web", 1777), "sampled_switches_in"), 1);
	assert_int_equal(iat(process(r.j, "web", 2499), "execs"), 1);
	for (int i = 0; i < 3000; i += 2) {
		snprintf(key, sizeof(key), "events.%d.argv.1", i);
		assert_int_equal(atoi(sat(r.j, key)), 1000 + i / 2);
		snprintf(key, sizeof(key), "events.%d.uid", i);
		assert_int_equal(iat(r.j, key), 1000 + i / 2);
	}
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* The real writer: lines as `live --output` makes them (an_print_event with the envelope) read back give the
 * same event objects, less the envelope, as `live --json` printed. */
static void test_round_trip(void **state)
{
	static const char argv[] = "/usr/bin/env\0A=1\0tr\xff";
	struct sess_event evs[] = {
		{ .time_ns = 5000000000, .task = 0xffff888001000000, .vm = 0, .vcpu = 1, .type = SEV_SWITCH, .pid = 1,
		  .tgid = 1, .ppid = 0, .prev_pid = 0, .comm = "systemd" },
		{ .time_ns = 5000100000, .task = 0xffff888001000100, .vm = 1, .vcpu = SESS_VCPU_NONE, .type = SEV_FORK,
		  .pid = 300, .tgid = 300, .ppid = 1, .prev_pid = -1, .comm = "sixteen-chars-xx" },
		{ .time_ns = 5000200000, .task = 0xffff888001000100, .vm = 1, .vcpu = SESS_VCPU_NONE, .type = SEV_EXEC,
		  .pid = 300, .tgid = 300, .ppid = 1, .prev_pid = -1, .comm = "env" },
		{ .time_ns = 5000300000, .vm = 0, .vcpu = SESS_VCPU_NONE, .type = SEV_LOST, .pid = 40, .tgid = -1,
		  .ppid = -1, .prev_pid = 45 },
		{ .time_ns = 5000400000, .vm = 1, .vcpu = SESS_VCPU_NONE, .type = SEV_RESTART, .pid = -1, .tgid = -1,
		  .ppid = -1, .prev_pid = -1 },
		{ .time_ns = 5000500000, .task = 0xffff888001000200, .vm = 1, .vcpu = 0, .type = SEV_SWITCH, .pid = 1,
		  .tgid = 1, .ppid = 0, .prev_pid = -1, .comm = "init" },
	};
	const size_t n = sizeof(evs) / sizeof(evs[0]);
	struct an_exec x = { .argv = argv, .argv_len = sizeof(argv), .argv_truncated = true, .have_ids = true,
			     .uid = 1000, .euid = 0 };
	struct an_envelope env = { .host = "hv1" };
	struct an_line_opts lo = { .json = true, .t0 = 4000000000, .wall_offset_ns = 1796461200000000000, .env = &env };
	struct analysis a;
	struct text t, line;
	struct json_object *orig[8];
	size_t len;
	char *data, *path, *one;
	struct run r;

	(void)state;
	an_init(&a);
	an_set_vm(&a, 0, "web", 4242, 2);
	an_set_vm(&a, 1, "db", 5151, 1);
	an_set_vm_identity(&a, 0, "5a0c2b3a-1111-4222-8333-444455556666", "9f1c2b3a4d5e6f70");
	an_set_vm_identity(&a, 1, NULL, "0123456789abcdef");
	text_open(&t);
	for (size_t i = 0; i < n; i++) {
		json_writer_t *w;

		text_open(&line);
		w = jsonw_new(line.f);
		assert_non_null(w);
		jsonw_pretty(w, false);
		an_print_event(line.f, w, &a, &evs[i], &lo, evs[i].type == SEV_EXEC ? &x : NULL);
		jsonw_destroy(&w);
		one = text_close(&line, &len);
		assert_non_null(orig[i] = json_tokener_parse(one));
		fprintf(t.f, "%s\n", one);
		free(one);
	}
	an_free(&a);
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_int_equal(iat(r.j, "integrity.events_read"), (int64_t)n);
	assert_int_equal(iat(r.j, "vms.0.vcpus"), 2);   /* 1 + the largest vcpu seen */
	for (size_t i = 0; i < n; i++) {
		struct json_object *got = json_object_array_get_idx(at(r.j, "events"), i);
		static const char *const envelope[] = { "schema", "seq", "ts", "host", "vm_uuid", "boot_id" };

		for (size_t k = 0; k < sizeof(envelope) / sizeof(envelope[0]); k++)
			json_object_object_del(orig[i], envelope[k]);
		if (!json_object_equal(orig[i], got))
			fail_msg("event %zu: %s\nread back: %s", i, json_object_to_json_string(orig[i]),
				 json_object_to_json_string(got));
		json_object_put(orig[i]);
	}
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* ---- damaged and hostile lines ------------------------------------------------------------------- */

/* A file of a good line, bad (len bytes; 0: strlen), a good line: read, bad skipped with why on stderr. */
static void one_bad(const char *bad, size_t blen, const char *why)
{
	struct text t;
	size_t len;
	char *data, *path, expect[300];
	struct run r;

	text_open(&t);
	sw(&t, 1, 0, WEB, 0, 1, "init", -1);
	fwrite(bad, 1, blen ? blen : strlen(bad), t.f);
	fputc('\n', t.f);
	sw(&t, 3, 20, WEB, 0, 2, "kthreadd", 1);
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	print_message("%s -> %s", why, r.err);
	assert_int_equal(r.rc, 0);
	snprintf(expect, sizeof(expect), "1 line(s) skipped: line 2: %s", why);
	assert_non_null(strstr(r.err, expect));
	assert_non_null(r.j);
	assert_int_equal(iat(r.j, "integrity.events_read"), 2);
	assert_int_equal(iat(r.j, "integrity.lines_skipped"), 1);
	assert_false(json_object_get_boolean(at(r.j, "integrity.intact")));
	assert_non_null(strstr(sat(r.j, "integrity.lost"), expect));
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

#define GOOD_HEAD "{\"schema\":1,\"seq\":2,\"ts\":\"2026-12-05T09:01:00.010000000Z\",\"vm\":\"web\",\"vm_pid\":4242,"

static void test_bad_lines(void **state)
{
	static const char nul[] = GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"a\0b\"}";

	(void)state;
	one_bad("this is not JSON", 0, "not valid JSON");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":5", 0, "not valid JSON (incomplete)");
	one_bad("[1,2,3]", 0, "not a JSON object");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"} {", 0,
		"text after the JSON object");
	one_bad("{\"schema\":1,\"seq\":2,\"vm\":\"web\",\"vm_pid\":4242,\"event\":\"fork\"}", 0, "no \"ts\"");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0, "no \"pid\"");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":\"5\",\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"\"pid\" is not an integer");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":5.5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"\"pid\" is not an integer");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":7}", 0,
		"\"comm\" is not a string");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"teleport\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"unknown event \"teleport\"");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":99999999,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"\"pid\" 99999999 out of range");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":-7,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"\"pid\" -7 out of range");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":1e999,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"");   /* whatever json-c makes of it: skipped */
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":123456789012345678901234567890,\"tgid\":5,"
		"\"ppid\":1,\"comm\":\"x\"}", 0, "\"pid\" 9223372036854775807 out of range");   /* json-c clamps */
	one_bad(GOOD_HEAD "\"vcpu\":64,\"event\":\"switch\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\",\"prev_pid\":1}",
		0, "\"vcpu\" 64 out of range");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"switch\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\",\"prev_pid\":1}",
		0, "a switch without a vcpu");
	one_bad(GOOD_HEAD "\"vcpu\":0,\"event\":\"switch\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0,
		"no \"prev_pid\"");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"exec\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\","
		"\"argv\":[\"a\",7]}", 0, "\"argv\" holds a non-string");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"exec\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\",\"uid\":-1}", 0,
		"\"uid\" -1 out of range");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"exec\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\",\"argv\":\"a\"}",
		0, "\"argv\" is not an array or null");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"fork\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\",\"task\":\"0xzz\"}",
		0, "\"task\" is not a hex address");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"lost\",\"count\":4,\"range\":[10,12]}", 0,
		"\"count\" 4 does not match \"range\" [10, 12]");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"lost\",\"count\":1,\"range\":[12,10]}", 0,
		"\"range\" [12, 10] is not a range of pids");
	one_bad(GOOD_HEAD "\"vcpu\":null,\"event\":\"lost\",\"count\":1,\"range\":[12]}", 0, "\"range\" is not [first, last]");
	one_bad("{\"schema\":1,\"seq\":2,\"ts\":\"2026-13-05T09:01:00Z\",\"vm\":\"web\",\"vm_pid\":4242,\"vcpu\":null,"
		"\"event\":\"fork\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0, "\"ts\" is not an RFC 3339 time");
	one_bad("{\"schema\":1,\"seq\":2,\"ts\":\"2026-12\",\"vm\":\"web\",\"vm_pid\":4242,\"vcpu\":null,"
		"\"event\":\"fork\",\"pid\":5,\"tgid\":5,\"ppid\":1,\"comm\":\"x\"}", 0, "\"ts\" is not an RFC 3339 time");
	one_bad("{\"schema\":\"1\",\"seq\":2}", 0, "\"schema\" is not an integer");
	one_bad("{\"schema\":0,\"seq\":2}", 0, "schema 0 unknown");
	one_bad("{\"schema\":1,\"seq\":0}", 0, "\"seq\" 0 out of range");
	one_bad("{\"schema\":1,\"seq\":2,\"ts\":\"2026-12-05T09:01:00Z\",\"vm\":\"web\",\"vm_pid\":0,\"event\":\"exit\"}",
		0, "\"vm_pid\" 0 out of range");
	one_bad("{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", 0, "not valid JSON");
	one_bad(nul, sizeof(nul) - 1, "a NUL byte in the line");
	one_bad("{\"schema\":2,\"seq\":2,\"whatever\":{\"new\":true}}", 0, "schema 2 is newer than this reader (1)");
}

static void test_long_line(void **state)
{
	size_t n = JSONL_MAX_LINE + 1000;
	char *big = malloc(n + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', n);
	memcpy(big, "{\"schema\":1,\"pad\":\"", 19);
	memcpy(big + n - 2, "\"}", 2);
	big[n] = 0;
	one_bad(big, n, "longer than 1048576 bytes");
	free(big);
}

/* The last line cut short (live killed mid-write, or a copy taken while it wrote): skipped, the rest read. */
static void test_cut_last_line(void **state)
{
	size_t len;
	char *data = normal_file(&len), *path;
	struct run r;

	(void)state;
	len -= 40;   /* into the last line, its newline gone */
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "1 line(s) skipped: line 14: the last line is cut short (no newline at the end)"));
	assert_int_equal(iat(r.j, "integrity.events_read"), 13);
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* Bytes from a fixed generator, lines of noise among good ones: no crash, every good line read. */
static void test_noise(void **state)
{
	struct text t;
	size_t len;
	char *data, *path;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	struct run r;

	(void)state;
	text_open(&t);
	for (int i = 0; i < 200; i++) {
		int n = (int)(x >> 58);

		sw(&t, 2 * i + 1, i, WEB, i & 1, 100 + i, "p", -1);
		for (int k = 0; k < n; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			fputc(k == 0 ? '{' : (int)(x & 0xff), t.f);
		}
		fputc('\n', t.f);
	}
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(iat(r.j, "integrity.events_read"), 200);
	assert_non_null(strstr(r.err, "line(s) skipped: line 2: "));
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* More than 64 VMs: the events of the 65th on are skipped (said), the first 64 read. */
static void test_too_many_vms(void **state)
{
	struct text t;
	size_t len;
	char *data, *path;
	struct run r;

	(void)state;
	text_open(&t);
	for (int i = 0; i < 70; i++)
		sw(&t, i + 1, i, "vm", 1000 + i, "b", 0, 1, "init", -1);
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(json_object_array_length(at(r.j, "vms")), 64);
	assert_non_null(strstr(r.err, "6 line(s) skipped: line 65: vm_pid 1064: more than 64 VMs"));
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* ---- what the seq numbers say --------------------------------------------------------------------- */

static void test_rotated_and_gaps(void **state)
{
	struct text t;
	size_t len;
	char *data, *path;
	struct run r;

	(void)state;
	text_open(&t);   /* a rotated file: the first 1000 events are in events.jsonl.1 */
	sw(&t, 1001, 3600000, WEB, 0, 1, "init", -1);
	sw(&t, 1002, 3600100, WEB, 0, 2, "kthreadd", 1);
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "events before seq 1001 are not in this file (rotated out?)"));
	assert_null(strstr(r.err, "skipped"));
	assert_null(strstr(r.err, "missing"));
	assert_int_equal(iat(r.j, "integrity.first_seq"), 1001);
	assert_string_equal(sat(r.j, "events.0.t"), "3600.000000");   /* t from the trace start, not the file's */
	run_free(&r);
	unlink(path);
	free(path);
	free(data);

	text_open(&t);   /* gaps: 3, 4 and 6 not written (a full disk?) */
	sw(&t, 1, 0, WEB, 0, 1, "init", -1);
	sw(&t, 2, 10, WEB, 0, 2, "kthreadd", 1);
	sw(&t, 5, 20, WEB, 0, 1, "init", 2);
	sw(&t, 7, 30, WEB, 0, 2, "kthreadd", 1);
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "3 event(s) missing (gaps in seq)"));
	assert_null(strstr(r.err, "rotated"));
	run_free(&r);
	unlink(path);
	free(path);
	free(data);
}

/* A file with lines of a newer schema among schema-1 lines: those skipped and said, their seq not missing. */
static void test_newer_schema(void **state)
{
	struct text t;
	size_t len;
	char *data, *path;
	struct run r;

	(void)state;
	text_open(&t);
	sw(&t, 1, 0, WEB, 0, 1, "init", -1);
	fprintf(t.f, "{\"schema\":2,\"seq\":2,\"ts\":\"2026-12-05T09:01:00.010Z\",\"event\":\"migrate\",\"to\":\"hv2\"}\n");
	sw(&t, 3, 20, WEB, 0, 2, "kthreadd", 1);
	fprintf(t.f, "not json\n");
	fprintf(t.f, "{\"schema\":3,\"seq\":5}\n");
	sw(&t, 6, 40, WEB, 1, 1, "init", -1);
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "3 line(s) skipped: line 2: schema 2 is newer than this reader (1)"));
	/* the newer lines' seq are there (not missing); line 4's, not JSON, cannot be known */
	assert_non_null(strstr(r.err, "1 event(s) missing (gaps in seq)"));
	assert_int_equal(iat(r.j, "integrity.events_read"), 3);
	run_free(&r);
	free(data);
	unlink(path);
	free(path);

	text_open(&t);   /* the newer schema not first: its own line */
	sw(&t, 1, 0, WEB, 0, 1, "init", -1);
	fprintf(t.f, "{\"schema\":1,\"seq\":2,\"ts\":\"bad\"}\n");
	fprintf(t.f, "{\"schema\":2,\"seq\":3}\n");
	data = text_close(&t, &len);
	path = write_temp(data, len);
	r = report("-i", path, NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "2 line(s) skipped: line 2: \"ts\" is not an RFC 3339 time"));
	assert_non_null(strstr(r.err, "schema 2 is newer than this reader (1): 1 line(s) skipped"));
	run_free(&r);
	free(data);
	unlink(path);
	free(path);
}

/* The rotated files of one trace with -i repeated, oldest first: one stream; given out of order: said, and
 * the events taken in time order. */
static void test_several_files(void **state)
{
	struct text t;
	size_t len1, len2;
	char *d1, *d2, *p1, *p2;
	struct run r;

	(void)state;
	text_open(&t);
	sw(&t, 1, 0, WEB, 0, 1, "init", -1);
	ev(&t, 2, 100, WEB, "fork", 200, 1, "bash", "");
	d1 = text_close(&t, &len1);
	text_open(&t);
	ev(&t, 3, 200, WEB, "exit", 200, 1, "bash", "");
	sw(&t, 4, 300, WEB, 0, 2, "kthreadd", 1);
	d2 = text_close(&t, &len2);
	p1 = write_temp(d1, len1);
	p2 = write_temp(d2, len2);

	r = report("-i", p1, "-i", p2, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_int_equal(iat(r.j, "integrity.events_read"), 4);
	assert_int_equal(json_object_array_length(at(r.j, "input.files")), 2);
	assert_int_equal(iat(process(r.j, "web", 200), "exits"), 1);
	run_free(&r);

	r = report("-i", p2, "-i", p1, "--json", NULL);   /* newest first: wrong, but readable */
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "seq went back 1 time(s)"));
	assert_null(strstr(r.err, "rotated"));   /* seq 1 is there, read second */
	assert_int_equal(iat(r.j, "events.0.pid"), 1);        /* sorted by time */
	assert_string_equal(sat(r.j, "events.3.comm"), "kthreadd");
	assert_string_equal(sat(r.j, "events.0.t"), "0.000000");   /* t0 from the first line read: its ts - t */
	run_free(&r);

	r = report("-i", p1, "-i", p2, NULL);   /* text: the files named */
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, " .. "));
	assert_non_null(strstr(r.out, "(2 files): JSON lines"));
	run_free(&r);
	unlink(p1);
	unlink(p2);
	free(p1);
	free(p2);
	free(d1);
	free(d2);
}

/* ---- nothing readable, session files --------------------------------------------------------------- */

static void test_nothing_readable(void **state)
{
	char *empty = write_temp("", 0), *blank = write_temp(" \n\n\t\r\n", 6), *junk = write_temp("{oops\n{\n", 8);
	char *junk2 = write_temp("  [1,2,3]\n {", 12);
	struct run r;

	(void)state;
	r = report("-i", empty, NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "empty file: nothing readable"));
	run_free(&r);
	r = report("-i", blank, NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "nothing readable (no event lines)"));
	run_free(&r);
	r = report("-i", junk, NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "nothing readable: 2 line(s) skipped: line 1: not valid JSON"));
	run_free(&r);
	r = report("-i", junk2, NULL);   /* neither: said so */
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "nothing readable: no intact block in 12 bytes: neither a session file (no \"VMTB\" "
			       "at its start) nor JSON lines (its first non-blank byte is not '{')"));
	run_free(&r);
	r = report("-i", "/nonexistent/events.jsonl", NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "cannot read /nonexistent/events.jsonl: No such file or directory"));
	run_free(&r);
	unlink(empty);
	unlink(blank);
	unlink(junk);
	unlink(junk2);
	free(junk2);
	free(empty);
	free(blank);
	free(junk);
}

static void test_session_still_session(void **state)
{
	char path[] = "/tmp/vmot-rj-sess.XXXXXX", *jl;
	struct sess_writer *w;
	struct sess_event e = { .time_ns = 1000, .vm = 0, .vcpu = 0, .type = SEV_SWITCH, .pid = 1, .tgid = 1,
				.ppid = 0, .prev_pid = -1, .comm = "init" };
	int fd = mkstemp(path);
	struct run r;
	size_t len;
	char *data = normal_file(&len);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sess_create(path, "{\"format\":\"vmoffset-trace session\",\"version\":1}", &w), 0);
	assert_int_equal(sess_write_json(w, SB_VM, "{\"index\":0,\"name\":\"web\",\"pid\":4242,\"vcpus\":2}"), 0);
	assert_int_equal(sess_add_event(w, &e), 0);
	assert_int_equal(sess_close(w, -1, "duration reached"), 0);
	r = report("-i", path, "--json", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(at(r.j, "session"));
	assert_null(at(r.j, "source"));
	assert_int_equal(iat(r.j, "integrity.blocks_read"), 4);
	run_free(&r);

	jl = write_temp(data, len);   /* a session among JSON-lines files: refused, said why */
	r = report("-i", jl, "-i", path, NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "not a JSON-lines event file"));
	run_free(&r);
	unlink(jl);
	free(jl);
	unlink(path);
	free(data);
}

/* The reader alone: sniffing, and the sort that keeps equal times in order. */
static void test_reader_units(void **state)
{
	char *a = write_temp("\n  {", 4), *b = write_temp("VMTB", 4);
	struct sess_event ev[5] = { { .time_ns = 5, .pid = 1 }, { .time_ns = 3, .pid = 2 }, { .time_ns = 5, .pid = 3 },
				    { .time_ns = 1, .pid = 4 }, { .time_ns = 3, .pid = 5 } };

	(void)state;
	assert_int_equal(jsonl_sniff(a), JSONL_KIND_JSONL);
	assert_int_equal(jsonl_sniff(b), JSONL_KIND_SESSION);
	assert_int_equal(jsonl_sniff("/nonexistent"), -ENOENT);
	assert_int_equal(jsonl_sort_events(ev, 5), 0);
	assert_int_equal(ev[0].pid, 4);
	assert_int_equal(ev[1].pid, 2);
	assert_int_equal(ev[2].pid, 5);
	assert_int_equal(ev[3].pid, 1);
	assert_int_equal(ev[4].pid, 3);
	unlink(a);
	unlink(b);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_json),
		cmocka_unit_test(test_normal_text),
		cmocka_unit_test(test_many_processes),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_cut_last_line),
		cmocka_unit_test(test_noise),
		cmocka_unit_test(test_too_many_vms),
		cmocka_unit_test(test_rotated_and_gaps),
		cmocka_unit_test(test_newer_schema),
		cmocka_unit_test(test_several_files),
		cmocka_unit_test(test_nothing_readable),
		cmocka_unit_test(test_session_still_session),
		cmocka_unit_test(test_reader_units),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
