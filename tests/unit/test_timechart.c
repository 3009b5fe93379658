/* cmocka: timechart's pure parts and the command on crafted sessions (issue 18) — colour stability, merging of
 * runs narrower than a pixel, XML escaping of hostile comm strings, --vm/--from/--to, damaged sessions — and
 * report --format trace. */
#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>
#include "cmd/cmd.h"
#include "common/log.h"
#include "output/timechart.h"
#include "output/timeline.h"
#include "session/session.h"

#define T0 5000000000ULL
#define MS 1000000ULL

static const char HDR[] = "{\"format\":\"vmoffset-trace session\",\"version\":1,\"t_start_ns\":5000000000}";

static struct sess_event sw(uint64_t t, uint32_t vm, uint32_t vcpu, int32_t pid, const char *comm)
{
	struct sess_event e = { .time_ns = t, .vm = vm, .vcpu = vcpu, .type = SEV_SWITCH, .pid = pid, .tgid = pid,
				.ppid = -1, .prev_pid = -1 };

	memcpy(e.comm, comm, strnlen(comm, 16));
	return e;
}

static struct sess_event life(uint64_t t, uint32_t vm, uint16_t type, int32_t pid, const char *comm)
{
	struct sess_event e = { .time_ns = t, .vm = vm, .vcpu = SESS_VCPU_NONE, .type = type, .pid = pid, .tgid = pid,
				.ppid = 1, .prev_pid = -1 };

	memcpy(e.comm, comm, strnlen(comm, 16));
	return e;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static int count(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* `vmoffset-trace NAME ARGS...` in this process (a fresh getopt, text mode) */
static int run(int (*fn)(int, char **), const char *name, const char *const *args)
{
	char *argv[32] = { (char *)name };
	int argc = 1;

	while (args[argc - 1])
		argv[argc] = (char *)args[argc - 1], argc++;
	optind = 0;
	log_json = false;
	return fn(argc, argv);
}

/* ---- pure parts ---------------------------------------------------------------------------------- */

static void test_colour_stable(void **state)
{
	uint32_t a = tc_colour("web", 4242), distinct = 0;

	(void)state;
	assert_int_equal(a, tc_colour("web", 4242));             /* stable */
	assert_int_not_equal(a, tc_colour("db", 4242));          /* the VM is part of the process */
	for (int32_t t = 1; t <= 64; t++) {
		uint32_t c = tc_colour("web", t), r = c >> 16, g = c >> 8 & 255, b = c & 255;

		distinct += c != tc_colour("web", t + 1);
		assert_true(r + g + b > 80 && r + g + b < 680);   /* neither black nor white: readable on the lane */
	}
	assert_true(distinct >= 62);                              /* neighbouring tgids apart */
}

static void test_xml_escape(void **state)
{
	/* markup, quotes, a backslash, a control byte, DEL, bytes that are not UTF-8, a valid é, a truncated
	 * sequence at the end of the 16 bytes */
	const char comm[16] = "<a&b>\"'\\\x01\x7f\xff\xc3\xa9\xe2\x82";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	tc_xml_text(f, comm, 16);
	fclose(f);
	assert_string_equal(buf, "&lt;a&amp;b&gt;&quot;&#39;\\\\\\x01\\x7f\\xff\xc3\xa9\\xe2\\x82");
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	tc_xml_text(f, "\xed\xa0\x80\xef\xbf\xbe\xc0\xaf", 16);   /* a surrogate, U+FFFE, an overlong '/' */
	fclose(f);
	assert_string_equal(buf, "\\xed\\xa0\\x80\\xef\\xbf\\xbe\\xc0\\xaf");
	free(buf);
}

/* A timeline of one VM with vCPU 0 running evs (switches), closed at t_end. */
static void build(struct timeline *tl, const struct sess_event *evs, size_t n, uint64_t t_end)
{
	struct sess_event last = sw(t_end, 0, 1, 0, "swapper/1");

	tl_init(tl, NULL);
	tl_set_t0(tl, T0);
	tl_vm(tl, 0, "web", 4242, 2);
	for (size_t i = 0; i < n; i++)
		tl_event(tl, &evs[i]);
	tl_event(tl, &last);
	assert_int_equal(tl_finish(tl), 0);
}

static void test_merge(void **state)
{
	struct sess_event ev[64];
	struct timeline tl;
	struct tc_box box[64];
	size_t n = 0, nruns, nb, sum = 0;
	const struct tl_run *runs;
	uint64_t t = T0;

	(void)state;
	/* 20 runs of 100 ns alternating a and b, a visible gap (idle 2 us), 10 more of 100 ns, one wide run of 5 us,
	 * then 3 of 100 ns; at 1 us a pixel */
	for (int i = 0; i < 20; i++, t += 100)
		ev[n++] = sw(t, 0, 0, i % 2 ? 11 : 10, i % 2 ? "b" : "a");
	ev[n++] = sw(t, 0, 0, 0, "swapper/0");
	t += 2000;
	for (int i = 0; i < 10; i++, t += 100)
		ev[n++] = sw(t, 0, 0, 10, "a");   /* the same task switched in again: 10 runs */
	ev[n++] = sw(t, 0, 0, 12, "wide");
	t += 5000;
	for (int i = 0; i < 3; i++, t += 100)
		ev[n++] = sw(t, 0, 0, 11, "b");
	build(&tl, ev, n, t);
	runs = tl_lane_runs(&tl, TL_LANE(0, 0), &nruns);
	assert_int_equal(nruns, 20 + 10 + 1 + 3);   /* the idle run is a gap, not a run */
	nb = tc_merge(&tl, runs, nruns, 1000.0, box);
	/* 20 runs of 0.1 px: two spans of 10 (a pixel each); gap; 10: one span; the wide run alone; 3: one span */
	assert_int_equal(nb, 5);
	assert_int_equal(box[0].merged, 10);
	assert_int_equal(box[0].start, T0);
	assert_int_equal(box[0].end, T0 + 1000);
	assert_int_equal(box[1].merged, 10);
	assert_int_equal(box[1].end, T0 + 2000);
	assert_int_equal(box[1].ntop, 2);         /* a and b, half each */
	assert_int_equal(box[1].busy_ns, 1000);
	assert_int_equal(box[2].merged, 10);
	assert_int_equal(box[2].start, T0 + 4000);   /* after the gap: not merged across it */
	assert_int_equal(box[2].top_ns[0], 1000);
	assert_int_equal(box[3].merged, 1);          /* the wide run alone, its own thread */
	assert_string_equal(tl.thr_list[box[3].thr].comm, "wide");
	assert_int_equal(box[3].end - box[3].start, 5000);
	assert_int_equal(box[4].merged, 3);
	for (size_t i = 0; i < nb; i++)
		sum += box[i].merged;
	assert_int_equal(sum, nruns);                /* every run in exactly one span */
	/* at 10 ns a pixel nothing is narrower than a pixel: one span per run */
	assert_int_equal(tc_merge(&tl, runs, nruns, 10.0, box), nruns);
	/* the process totals: a ran 10 x 100 + 10 x 100 ns */
	for (size_t i = 0; i < tl.nprocs; i++)
		if (tl.procs[i].tgid == 10)
			assert_int_equal(tl.procs[i].run_ns, 2000);
	tl_free(&tl);
}

/* ---- the command on session files ----------------------------------------------------------------- */

static char dir[] = "/tmp/vmot-tc-test.XXXXXX";

static void path(char *out, const char *name)
{
	snprintf(out, 256, "%s/%s", dir, name);
}

/* Two VMs, "web" (2 vCPUs) and "db" (1), 3 s: a switch every 10 ms on each vCPU between a hostile-named
 * process and others, a fork/exec/exit a second, one restart of db at 2.5 s. Blocks flushed every 100 ms. */
static void write_session(const char *file)
{
	static const char *const comms[] = { "<b>&x\"'", "\xff\xfe" "bad", "nginx", "swapper/0" };
	struct sess_writer *w;

	assert_int_equal(sess_create(file, HDR, &w), 0);
	assert_int_equal(sess_write_json(w, SB_VM, "{\"index\":0,\"name\":\"web\",\"pid\":4242,\"vcpus\":2}"), 0);
	assert_int_equal(sess_write_json(w, SB_VM, "{\"index\":1,\"name\":\"db\",\"pid\":4343,\"vcpus\":1}"), 0);
	for (int k = 0; k < 300; k++) {
		uint64_t t = T0 + (uint64_t)k * 10 * MS + MS;

		for (uint32_t vm = 0; vm < 2; vm++)
			for (uint32_t c = 0; c < (vm ? 1u : 2u); c++) {
				int which = (k + (int)c + (int)vm) % 4;
				struct sess_event e = sw(t + c * 100 + vm * 50, vm, c, which == 3 ? 0 : 100 + which, comms[which]);

				assert_int_equal(sess_add_event(w, &e), 0);
			}
		if (k % 100 == 50) {
			struct sess_event f = life(t + 300, 0, SEV_FORK, 500 + k, "<fork>"), x = life(t + 400, 0, SEV_EXEC, 500 + k, "x&y"),
					  q = life(t + 500, 0, SEV_EXIT, 500 + k, "x&y");

			assert_int_equal(sess_add_event(w, &f), 0);
			assert_int_equal(sess_add_event(w, &x), 0);
			assert_int_equal(sess_add_event(w, &q), 0);
		}
		if (k == 250) {
			struct sess_event r = life(t + 600, 1, SEV_RESTART, -1, "");

			assert_int_equal(sess_add_event(w, &r), 0);
		}
		if (k % 10 == 9)
			assert_int_equal(sess_flush(w), 0);
	}
	assert_int_equal(sess_close(w, 3.0, "duration reached"), 0);
}

static int setup(void **state)
{
	char s[256];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	path(s, "s.vmot");
	write_session(s);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* every data-start-ns / data-end-ns in svg within [lo, hi] */
static void spans_within(const char *svg, uint64_t lo, uint64_t hi)
{
	int n = 0;

	for (const char *p = svg; (p = strstr(p, "data-start-ns=\"")); p++, n++) {
		uint64_t s = strtoull(p + 15, NULL, 10), e = strtoull(strstr(p, "data-end-ns=\"") + 13, NULL, 10);

		assert_true(s >= lo && e <= hi && s <= e);
	}
	assert_true(n > 0);
}

static void test_hostile_and_whole(void **state)
{
	char in[256], out[256];
	const char *args[] = { "-i", in, "-o", out, NULL };
	char *svg;

	(void)state;
	path(in, "s.vmot");
	path(out, "all.svg");
	assert_int_equal(run(cmd_timechart, "timechart", args), EXIT_OK);
	svg = slurp(out);
	/* the hostile comm escaped, never raw: no "<b>", no byte 0xff, every title closed */
	assert_non_null(strstr(svg, "&lt;b&gt;&amp;x&quot;&#39;"));
	assert_non_null(strstr(svg, "\\xff\\xfebad"));
	assert_null(strstr(svg, "<b>"));
	assert_null(strchr(svg, '\xff'));
	assert_int_equal(count(svg, "<title>"), count(svg, "</title>"));
	assert_int_equal(count(svg, "data-vm-name=\"web\""), 1);
	assert_int_equal(count(svg, "data-vm-name=\"db\""), 1);
	assert_int_equal(count(svg, "class=\"lane\""), 3);
	assert_int_equal(count(svg, "data-kind=\"fork\""), 3);
	assert_int_equal(count(svg, "data-kind=\"restart\""), 1);
	assert_null(strstr(svg, "<script"));   /* self-contained, no scripts */
	assert_null(strstr(svg, "href"));      /* no external resources */
	spans_within(svg, 0, 3 * 1000 * MS);
	free(svg);
}

static void test_filters(void **state)
{
	char in[256], out[256];
	const char *args[] = { "-i", in, "-o", out, "--vm", "db", "--from", "1s", "--to", "1500ms", NULL };
	const char *by_pid[] = { "-i", in, "-o", out, "--vm", "4242", NULL };
	const char *no_vm[] = { "-i", in, "-o", out, "--vm", "nosuch", NULL };
	const char *back[] = { "-i", in, "-o", out, "--from", "2", "--to", "1", NULL };
	const char *narrow[] = { "-i", in, "-o", out, "-w", "10", NULL };
	const char *badtime[] = { "-i", in, "-o", out, "--from", "soon", NULL };
	char *svg;

	(void)state;
	path(in, "s.vmot");
	path(out, "f.svg");
	assert_int_equal(run(cmd_timechart, "timechart", args), EXIT_OK);
	svg = slurp(out);
	assert_null(strstr(svg, "data-vm-name=\"web\""));
	assert_non_null(strstr(svg, "data-vm-name=\"db\""));
	assert_int_equal(count(svg, "class=\"lane\""), 1);
	assert_null(strstr(svg, "data-kind=\"fork\""));   /* web's forks: not this VM */
	spans_within(svg, 1000 * MS, 1500 * MS);          /* runs cut to the window */
	assert_non_null(strstr(svg, "data-start-ns=\"1000000000\""));   /* the run across 1 s starts at the window */
	free(svg);
	assert_int_equal(run(cmd_timechart, "timechart", by_pid), EXIT_OK);
	svg = slurp(out);
	assert_non_null(strstr(svg, "data-vm-name=\"web\""));
	assert_null(strstr(svg, "data-vm-name=\"db\""));
	free(svg);
	assert_int_equal(run(cmd_timechart, "timechart", no_vm), EXIT_FAIL);
	assert_int_equal(run(cmd_timechart, "timechart", back), EXIT_USAGE);
	assert_int_equal(run(cmd_timechart, "timechart", narrow), EXIT_USAGE);
	assert_int_equal(run(cmd_timechart, "timechart", badtime), EXIT_USAGE);
}

static void test_damaged(void **state)
{
	char in[256], cut[256], junk[256], out[256], cmd[800];
	const char *args[] = { "-i", cut, "-o", out, NULL };
	const char *garbage[] = { "-i", junk, "-o", out, NULL };
	struct stat sb;
	char *svg;
	FILE *f;

	(void)state;
	path(in, "s.vmot");
	path(cut, "cut.vmot");
	path(junk, "junk.vmot");
	path(out, "d.svg");
	assert_int_equal(stat(in, &sb), 0);
	snprintf(cmd, sizeof(cmd), "head -c %lld %s > %s", (long long)sb.st_size * 2 / 3, in, cut);   /* cut mid-block */
	assert_int_equal(system(cmd), 0);
	assert_int_equal(run(cmd_timechart, "timechart", args), EXIT_OK);
	svg = slurp(out);
	assert_non_null(strstr(svg, "class=\"note\""));   /* what was lost, said in the picture too */
	assert_non_null(strstr(svg, "data-pid="));
	free(svg);
	f = fopen(junk, "w");
	assert_non_null(f);
	fputs("this is not a session", f);
	fclose(f);
	unlink(out);
	assert_int_equal(run(cmd_timechart, "timechart", garbage), EXIT_FAIL);
	assert_int_not_equal(access(out, F_OK), 0);   /* nothing written */
}

static void test_trace_format(void **state)
{
	char in[256], out[256];
	const char *args[] = { "-i", in, "--format", "trace", "-o", out, NULL };
	const char *bad[] = { "-i", in, "--format", "perfetto", NULL };
	struct json_object *doc, *evs, *x;
	size_t nx = 0, ni = 0, nm = 0;
	char *text;

	(void)state;
	path(in, "s.vmot");
	path(out, "t.json");
	assert_int_equal(run(cmd_report, "report", args), EXIT_OK);
	text = slurp(out);
	doc = json_tokener_parse(text);   /* valid JSON with the hostile comms in it */
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "traceEvents", &evs));
	assert_true(json_object_object_get_ex(doc, "displayTimeUnit", &x));
	assert_string_equal(json_object_get_string(x), "ms");
	for (size_t i = 0; i < json_object_array_length(evs); i++) {
		struct json_object *e = json_object_array_get_idx(evs, i), *ph, *v;
		const char *p;

		assert_true(json_object_object_get_ex(e, "ph", &ph));
		assert_true(json_object_object_get_ex(e, "ts", &v));
		assert_true(json_object_object_get_ex(e, "pid", &v) && json_object_is_type(v, json_type_int));
		assert_true(json_object_object_get_ex(e, "tid", &v) && json_object_is_type(v, json_type_int));
		p = json_object_get_string(ph);
		if (!strcmp(p, "X")) {
			nx++;
			assert_true(json_object_object_get_ex(e, "dur", &v) && json_object_get_double(v) >= 0);
		} else if (!strcmp(p, "i")) {
			ni++;
		} else {
			assert_string_equal(p, "M");
			nm++;
		}
	}
	/* 3 vCPUs x 300 switches, a quarter to idle (not runs) and the rest closed by the next switch or the end;
	 * db's restart closes its run early */
	assert_true(nx > 600 && nx < 900);
	assert_int_equal(ni, 3 * 3 + 1);   /* three fork/exec/exit lives, one restart */
	assert_int_equal(nm, 2 * 4 + 3 * 2);   /* per VM name, sort index and the lifecycle track's two; 2 per vCPU */
	assert_non_null(strstr(text, "\"name\":\"<b>&x\\\"'\""));
	assert_non_null(strstr(text, "\\u00ff\\u00febad"));
	json_object_put(doc);
	free(text);
	assert_int_equal(run(cmd_report, "report", bad), EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_colour_stable),
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_hostile_and_whole),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_trace_format),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
