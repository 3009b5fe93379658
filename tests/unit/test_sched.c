/* cmocka: the pure parts of the exact figures (issue 11) — the rules sched_decide applies to a window's
 * observations (each test names the rule it exercises; whether the rules find the real members is checked
 * against the kernels' BTF on live guests by tests/guest/test_sched.sh), the window arithmetic of the
 * analysis, and SB_SCHED blocks in session files (round trip, old files without them, bad lengths). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "discovery/sched.h"
#include "session/session.h"
#include "trace/analysis.h"

#define NT    8     /* tasks: 0 idle, 1-3 kernel threads, 4-7 user */
#define SPAN  96    /* 12 u64 fields */
#define NS    3

enum { F_STATIC, F_RUN, F_PREV, F_VRUN, F_CLOCK, F_UTIME, F_NV, F_NIV, F_PC, F_COPY, F_WAIT, F_ZERO };

struct win {
	uint64_t v[NS][NT][SPAN / 8];
	uint64_t t[NS];
	uint32_t samples[NT], outs[NT];
	bool kthread[NT], idle[NT];
};

/* A window of 1 s on one vCPU sampled 250 times (4 ms): task 4 runs 600 ms, task 5 300 ms, task 6 40 ms,
 * kernel thread 1 20 ms; the counters move as a kernel's do. */
static void make_window(struct win *w)
{
	static const uint64_t run_ms[NT] = { 0, 20, 0, 0, 600, 300, 40, 0 };
	static const uint64_t nv[NT] = { 0, 10, 0, 0, 5, 40, 200, 0 }, niv[NT] = { 0, 0, 0, 0, 60, 20, 3, 0 };

	memset(w, 0, sizeof(*w));
	w->idle[0] = true;
	w->kthread[0] = w->kthread[1] = w->kthread[2] = w->kthread[3] = true;
	for (int k = 0; k < NS; k++) {
		w->t[k] = 1000000000ULL + (uint64_t)k * 500000000ULL;
		for (int i = 0; i < NT; i++) {
			uint64_t *f = w->v[k][i];
			uint64_t base_run = 1000003ULL * (uint64_t)(i + 1) * 37 + 11;   /* runtime before the window */
			uint64_t run = base_run + run_ms[i] * 1000000ULL * (uint64_t)k / 2 + (uint64_t)k * (i & 1);

			f[F_STATIC] = 0xffff888000000000ULL + (uint64_t)i * 0x1000;
			f[F_RUN] = i ? run : 0;
			f[F_PREV] = i ? run - (run_ms[i] ? 1500000 : 0) : 0;     /* lags by the current slice */
			f[F_VRUN] = i ? 40000000000ULL + run : 0;               /* near a large shared value */
			f[F_CLOCK] = run_ms[i] ? w->t[k] + 5000000000ULL : 5000000000ULL + (uint64_t)i;
			f[F_UTIME] = i ? (run / 4000000ULL) * 4000000ULL : 0;  /* tick-quantised */
			f[F_NV] = (i ? 100 * (uint64_t)i : 0) + nv[i] * (uint64_t)k / 2;
			f[F_NIV] = (i ? 3 * (uint64_t)i : 0) + niv[i] * (uint64_t)k / 2;
			f[F_PC] = i ? f[F_NV] + f[F_NIV] + 1 : 0;
			f[F_COPY] = 7;
			f[F_WAIT] = i ? 777777ULL * (uint64_t)i + (run_ms[i] ? 450000000ULL * (uint64_t)k / 2 : 0) : 0;
			f[F_ZERO] = 0;
		}
	}
	for (int i = 0; i < NT; i++) {
		w->samples[i] = (uint32_t)(run_ms[i] / 4);
		w->outs[i] = (uint32_t)(nv[i] + niv[i] > 4 ? 4 : nv[i] + niv[i]);
	}
	w->samples[0] = 250 - 240;   /* the idle task the rest */
}

static struct sched_obs obs_of(struct win *w)
{
	return (struct sched_obs){ .nsnap = NS, .ntasks = NT, .span = SPAN, .t_ns = w->t, .bytes = (uint8_t *)w->v,
				   .samples = w->samples, .outs = w->outs, .kthread = w->kthread, .idle = w->idle,
				   .nvcpu = 1, .rounds = 250 };
}

/* The runtime is the field that grows as the samples saw; prev_sum (lags), vruntime (large shared base), a
 * clock, tick-quantised utime and the wait time are not taken; the switch pair adds up to pcount and the
 * voluntary one is what kernel threads use. */
static void test_rules_pick_runtime_and_switch_pair(void **state)
{
	static struct win w;
	struct sched_result r;
	struct sched_obs o;

	(void)state;
	make_window(&w);
	o = obs_of(&w);
	assert_int_equal(sched_decide(&o, &r), 0);
	assert_true(r.found);
	assert_int_equal(r.f[SF_SUM_EXEC].offset, F_RUN * 8);
	assert_int_equal(r.f[SF_NVCSW].offset, F_NV * 8);
	assert_int_equal(r.f[SF_NIVCSW].offset, F_NIV * 8);
	assert_int_equal(r.f[SF_PCOUNT].offset, F_PC * 8);
}

/* A nearly idle guest gives nothing to tell the runtime by: undetermined, with the reason. */
static void test_idle_window_is_undetermined(void **state)
{
	static struct win w;
	struct sched_result r;
	struct sched_obs o;

	(void)state;
	make_window(&w);
	memset(w.samples, 0, sizeof(w.samples));
	w.samples[0] = 250;
	o = obs_of(&w);
	assert_int_equal(sched_decide(&o, &r), -ENOENT);
	assert_false(r.found);
	assert_false(r.f[SF_SUM_EXEC].found);
	assert_non_null(strstr(r.reason, "idle"));
}

/* Two fields that follow the runtime and that nothing tells apart (an exact copy): undetermined, never a
 * guess. */
static void test_indistinguishable_copies_are_undetermined(void **state)
{
	static struct win w;
	struct sched_result r;
	struct sched_obs o;

	(void)state;
	make_window(&w);
	for (int k = 0; k < NS; k++)
		for (int i = 0; i < NT; i++)
			w.v[k][i][F_COPY] = w.v[k][i][F_RUN];
	o = obs_of(&w);
	assert_int_equal(sched_decide(&o, &r), -ENOENT);
	assert_false(r.f[SF_SUM_EXEC].found);
}

/* A field that goes back on one task is no cumulative counter: never taken for the runtime (what is taken
 * instead, here vruntime once the runtime and prev_sum are out, is why the offsets are also held against BTF
 * on live guests: these rules alone cannot tell vruntime from a runtime that is missing). */
static void test_decreasing_field_is_rejected(void **state)
{
	static struct win w;
	struct sched_result r;
	struct sched_obs o;

	(void)state;
	make_window(&w);
	w.v[2][5][F_RUN] = w.v[1][5][F_RUN] - 1;
	o = obs_of(&w);
	sched_decide(&o, &r);
	assert_true(!r.f[SF_SUM_EXEC].found || r.f[SF_SUM_EXEC].offset != F_RUN * 8);
}

/* Without involuntary switches in the window the pair cannot be told from pcount: undetermined. */
static void test_switch_pair_needs_both_kinds(void **state)
{
	static struct win w;
	struct sched_result r;
	struct sched_obs o;

	(void)state;
	make_window(&w);
	for (int k = 0; k < NS; k++)
		for (int i = 1; i < NT; i++) {
			w.v[k][i][F_NIV] = 3 * (uint64_t)i;
			w.v[k][i][F_PC] = w.v[k][i][F_NV] + w.v[k][i][F_NIV] + 1;
		}
	o = obs_of(&w);
	assert_int_equal(sched_decide(&o, &r), -ENOENT);
	assert_true(r.f[SF_SUM_EXEC].found);
	assert_false(r.f[SF_NVCSW].found);
	assert_false(r.f[SF_NIVCSW].found);
}

static struct sess_sched_rec rec(uint64_t task, int32_t tid, int32_t tgid, const char *comm, uint64_t run,
				 uint64_t nv, uint64_t niv)
{
	struct sess_sched_rec r = { .task = task, .sum_exec_ns = run, .nvcsw = nv, .nivcsw = niv, .tid = tid,
				    .tgid = tgid };

	strncpy(r.comm, comm, sizeof(r.comm));
	return r;
}

/* Per process over the window: threads summed; a thread born after the first snapshot counts from zero; a
 * reused tid (another task_struct) is another thread; -i intervals restart from the last snapshot. */
static void test_analysis_window_and_interval(void **state)
{
	struct analysis a;
	struct sess_sched_hdr h = { .vm = 0 };
	struct sess_sched_rec r[4];
	struct an_exact *e;
	size_t n;

	(void)state;
	an_init(&a);
	an_set_vm(&a, 0, "web", 42, 1);
	assert_null(an_exact_list(&a, 0, false, &n));
	h.time_ns = 1000000000;
	r[0] = rec(0x1000, 10, 10, "app", 5000, 7, 1);
	r[1] = rec(0x2000, 11, 10, "app-worker", 100, 1, 0);
	h.n = 2;
	an_sched(&a, &h, r);
	assert_null(an_exact_list(&a, 0, false, &n));   /* one snapshot: no window yet */
	h.time_ns = 3000000000;
	r[0] = rec(0x1000, 10, 10, "app", 905000, 17, 4);
	r[1] = rec(0x2000, 11, 10, "app-worker", 200100, 6, 2);
	r[2] = rec(0x3000, 12, 10, "app-new", 300, 2, 0);   /* born in the window */
	r[3] = rec(0x4000, 20, 20, "other", 50, 1, 0);      /* born too */
	h.n = 4;
	an_sched(&a, &h, r);
	e = an_exact_list(&a, 0, false, &n);
	assert_non_null(e);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].tgid, 10);
	assert_int_equal(e[0].threads, 3);
	assert_int_equal(e[0].cpu_ns, 900000 + 200000 + 300);
	assert_int_equal(e[0].nvcsw, 10 + 5 + 2);
	assert_int_equal(e[0].nivcsw, 3 + 2);
	assert_string_equal(e[0].comm, "app");
	assert_int_equal(e[1].tgid, 20);
	assert_int_equal(e[1].cpu_ns, 50);
	free(e);
	assert_true(an_exact_window_s(&a, 0, false) > 1.99 && an_exact_window_s(&a, 0, false) < 2.01);

	/* an interval printed at 3 s; the next snapshot only adds its growth */
	FILE *devnull = fopen("/dev/null", "w");
	an_print_interval(devnull, NULL, &a, 3000000000, &(struct an_line_opts){ 0 }, 5);
	fclose(devnull);
	h.time_ns = 4000000000;
	r[0] = rec(0x1000, 10, 10, "app", 1005000, 18, 4);
	r[1] = rec(0x5000, 11, 10, "app-worker", 10, 1, 0);   /* tid 11 reused by another task */
	h.n = 2;
	an_sched(&a, &h, r);
	e = an_exact_list(&a, 0, true, &n);
	assert_non_null(e);
	assert_int_equal(e[0].tgid, 10);
	assert_int_equal(e[0].cpu_ns, 100000 + 10);
	assert_int_equal(e[0].nvcsw, 1 + 1);
	free(e);
	assert_true(an_exact_window_s(&a, 0, true) > 0.99 && an_exact_window_s(&a, 0, true) < 1.01);
	an_free(&a);
}

struct blocks { int sched; struct sess_sched_hdr h; struct sess_sched_rec r[2]; };

static int on_block(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len, uint32_t nrec)
{
	struct blocks *b = ctx;
	const struct sess_sched_rec *r;

	(void)seq;
	(void)nrec;
	if (type != SB_SCHED)
		return 0;
	assert_int_equal(sess_sched_parse(data, len, &b->h, &r), 0);
	assert_true(b->h.n <= 2);
	memcpy(b->r, r, b->h.n * sizeof(*r));
	b->sched++;
	/* a length that is not the header plus whole records is refused */
	assert_int_equal(sess_sched_parse(data, len - 1, &b->h, &r), -EINVAL);
	assert_int_equal(sess_sched_parse(data, 8, &b->h, &r), -EINVAL);
	return 0;
}

static void test_session_sched_block_round_trip(void **state)
{
	char path[] = "/tmp/vmot-test-sched-XXXXXX";
	int fd = mkstemp(path);
	struct sess_writer *w;
	struct sess_sched_hdr h = { .time_ns = 123, .vm = 1, .n = 2 };
	struct sess_sched_rec r[2] = { rec(0xffff888000001000ULL, 5, 5, "a", 1, 2, 3), rec(0x2, 6, 5, "b", 4, 5, 6) };
	struct sess_summary sum;
	struct blocks b = { 0 };

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sess_create(path, "{\"format\":\"vmoffset-trace session\",\"version\":1}", &w), 0);
	assert_int_equal(sess_write_sched(w, &h, r), 0);
	assert_int_equal(sess_close(w, -1, NULL), 0);
	assert_int_equal(sess_read_file(path, on_block, &b, &sum), 0);
	assert_true(sess_intact(&sum));
	assert_int_equal(b.sched, 1);
	assert_int_equal(b.h.time_ns, 123);
	assert_int_equal(b.h.vm, 1);
	assert_memory_equal(b.r, r, sizeof(r));
	assert_string_equal(sess_block_name(SB_SCHED), "sched");
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_pick_runtime_and_switch_pair),
		cmocka_unit_test(test_idle_window_is_undetermined),
		cmocka_unit_test(test_indistinguishable_copies_are_undetermined),
		cmocka_unit_test(test_decreasing_field_is_rejected),
		cmocka_unit_test(test_switch_pair_needs_both_kinds),
		cmocka_unit_test(test_analysis_window_and_interval),
		cmocka_unit_test(test_session_sched_block_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
