/*
 * cmocka: lost-pid accounting (user/trace/lost.c) — the pure rule that turns "allocator before each walk"
 * + "pids each walk saw" into lost ranges: lag before deciding, pids seen late are not lost, wrap and
 * jumps re-baseline without counting, hostile values are ignored, memory stays bounded. And the allocator
 * search (discovery/pidalloc.c) on hostile memory: it ends with a reason, within a byte bound, never a
 * crash (its answers are checked on real kernels against BTF: tests/guest/test_lost.sh).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "arch/x86_64.h"
#include "discovery/pidalloc.h"
#include "mem/physmem.h"
#include "session/session.h"
#include "trace/analysis.h"
#include "trace/lost.h"

#define MS 1000000ULL

struct got { int32_t first[64], last[64]; size_t n; uint64_t pids; };

static void out(void *ctx, int32_t first, int32_t last)
{
	struct got *g = ctx;

	assert_true(first <= last);
	if (g->n < 64) {
		g->first[g->n] = first;
		g->last[g->n] = last;
	}
	g->n++;
	g->pids += (uint64_t)(last - first) + 1;
}

/* one walk at t ms: allocator next, the pids listed */
static enum lost_note walk(struct lost_acct *a, struct got *g, uint64_t t_ms, uint32_t next, const int32_t *pids,
			   size_t n)
{
	return lost_walk(a, t_ms * MS, next, pids, n, out, g);
}

static void test_short_lived_between_walks_are_lost(void **state)
{
	struct lost_acct a = { 0 };
	struct got g = { 0 };
	const int32_t base[] = { 0, 1, 2, 50 }, w1[] = { 0, 1, 2, 50, 101 }, w2[] = { 0, 1, 2, 50 };

	(void)state;
	walk(&a, &g, 0, 100, base, 4);               /* baseline: next pid 100 */
	walk(&a, &g, 50, 105, w1, 5);                /* 100..104 handed out; only 101 seen */
	walk(&a, &g, 100, 105, w2, 4);               /* 101 gone too */
	assert_int_equal(g.n, 0);                    /* not decided yet: 2 walks and 100 ms of lag */
	walk(&a, &g, 150, 105, w2, 4);
	walk(&a, &g, 200, 105, w2, 4);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.first[0], 100);
	assert_int_equal(g.last[0], 100);
	assert_int_equal(g.first[1], 102);
	assert_int_equal(g.last[1], 104);
	assert_int_equal(a.lost, 4);
	assert_int_equal(a.decided, 5);
	assert_int_equal(a.upto, 105);
	lost_free(&a);
}

/* alloc_pid() runs before the task is linked into the list: a pid below the allocator read before a walk
 * may show up only in the next walk. It is not lost. */
static void test_seen_one_walk_late_is_not_lost(void **state)
{
	struct lost_acct a = { 0 };
	struct got g = { 0 };
	const int32_t w0[] = { 1 }, w1[] = { 1 }, w2[] = { 1, 200 };

	(void)state;
	walk(&a, &g, 0, 200, w0, 1);
	walk(&a, &g, 10, 201, w1, 1);                /* 200 allocated, not on the list yet */
	walk(&a, &g, 20, 201, w2, 2);                /* there it is */
	for (uint64_t t = 30; t < 400; t += 10)
		walk(&a, &g, t, 201, w0, 1);
	assert_int_equal(g.n, 0);
	assert_int_equal(a.lost, 0);
	assert_int_equal(a.upto, 201);
	lost_free(&a);
}

/* the allocator going down (pid_max wrap) re-baselines: nothing counted for the window, counting resumes */
static void test_wrap_rebaselines_without_counting(void **state)
{
	struct lost_acct a = { 0 };
	struct got g = { 0 };
	const int32_t w[] = { 1, 32000 };

	(void)state;
	walk(&a, &g, 0, 32760, w, 2);
	walk(&a, &g, 50, 32768, w, 2);               /* 32760..32767 handed out, unseen, undecided */
	assert_int_equal(walk(&a, &g, 60, 305, w, 2), LOST_WRAP);
	for (uint64_t t = 70; t < 400; t += 50)
		walk(&a, &g, t, 305, w, 2);
	assert_int_equal(g.n, 0);                    /* the pids before the wrap are not guessed */
	assert_int_equal(a.rebaselines, 0);          /* (the caller counts them) */
	walk(&a, &g, 400, 307, w, 2);                /* 305, 306: unseen */
	for (uint64_t t = 450; t < 800; t += 50)
		walk(&a, &g, t, 307, w, 2);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.first[0], 305);
	assert_int_equal(g.last[0], 306);
	lost_free(&a);
}

/* after a wrap the allocator skips pids in use: they are in the walks, so not lost */
static void test_skipped_pids_in_use_are_not_lost(void **state)
{
	struct lost_acct a = { 0 };
	struct got g = { 0 };
	const int32_t w[] = { 1, 301, 303 }, w2[] = { 1, 301 };

	(void)state;
	walk(&a, &g, 0, 300, w, 3);
	walk(&a, &g, 50, 305, w, 3);                 /* 300, 302, 304 handed out; 301, 303 skipped (in use) */
	for (uint64_t t = 100; t < 500; t += 50)
		walk(&a, &g, t, 305, w2, 2);             /* 303 exits meanwhile: it was seen, not lost */
	assert_int_equal(g.n, 3);
	assert_int_equal(a.lost, 3);
	assert_int_equal(g.first[0], 300);
	assert_int_equal(g.first[1], 302);
	assert_int_equal(g.first[2], 304);
	lost_free(&a);
}

/* a jump forward larger than LOST_MAX_JUMP (ns_last_pid written: no pid was handed out) is not counted */
static void test_jump_is_not_counted(void **state)
{
	struct lost_acct a = { 0 };
	struct got g = { 0 };
	const int32_t w[] = { 1 };

	(void)state;
	walk(&a, &g, 0, 1000, w, 1);
	assert_int_equal(walk(&a, &g, 50, 1000 + LOST_MAX_JUMP + 1, w, 1), LOST_JUMP);
	for (uint64_t t = 100; t < 500; t += 50)
		walk(&a, &g, t, 1000 + LOST_MAX_JUMP + 1, w, 1);
	assert_int_equal(g.n, 0);
	assert_int_equal(a.lost, 0);
	lost_free(&a);
}

/* hostile values: above PID_MAX_LIMIT is ignored; negative pids in a walk are ignored; 100 Hz walks (more
 * than the ring holds inside the time lag) keep memory bounded and still decide everything */
static void test_hostile_and_bounded(void **state)
{
	struct lost_acct a = { 0 };
	struct got g = { 0 };
	const int32_t w[] = { -5, 1, -1 };

	(void)state;
	walk(&a, &g, 0, 500, w, 3);
	assert_int_equal(walk(&a, &g, 1, 0xffffffffu, w, 3), LOST_OK);
	assert_int_equal(walk(&a, &g, 2, LOST_PID_LIMIT + 1, w, 3), LOST_OK);
	for (uint32_t i = 1; i <= 100; i++)          /* one pid per 1 ms walk, none seen */
		walk(&a, &g, 2 + i, 500 + i, w, 3);
	assert_true(a.nring <= LOST_RING);
	for (uint64_t t = 200; t < 600; t += 50)
		walk(&a, &g, t, 600, w, 3);
	assert_int_equal(a.lost, 100);
	assert_int_equal(a.upto, 600);
	assert_int_equal(a.nseen, 0);
	lost_free(&a);
}

/* LOST events through the analysis path: count and pids summed, no process row invented */
static void test_analysis_counts_lost(void **state)
{
	struct analysis an;
	struct sess_event e = { .time_ns = 5, .vcpu = SESS_VCPU_NONE, .type = SEV_LOST, .pid = 300, .prev_pid = 309,
				.tgid = -1, .ppid = -1 };

	(void)state;
	an_init(&an);
	an_event(&an, &e);
	e.pid = e.prev_pid = 400;
	an_event(&an, &e);
	e.pid = 10;
	e.prev_pid = 5;                               /* hostile record: last < first counts nothing */
	an_event(&an, &e);
	assert_int_equal(an.count[SEV_LOST], 3);
	assert_int_equal(an.lost_pids, 11);
	assert_int_equal(an.n, 0);
	assert_string_equal(sess_event_name(SEV_LOST), "lost");
	an_free(&an);
}

#define HMEM (2u << 20)
#define DMAP 0xffff888000000000ULL

/* Every 8 bytes of guest memory a pointer to one place, where every 8 bytes say {nr = 1, ns = that place}:
 * each task_struct slot "points to a struct pid of pid 1" at every offset; plus random pids. */
static void test_pidalloc_hostile_memory(void **state)
{
	uint8_t *mem = malloc(HMEM);
	struct physmem *pm;
	struct vmem vm;
	struct pidalloc pa = { 0 };
	struct guest_task t[40];
	const uint64_t place = DMAP + 0x1000;

	(void)state;
	assert_non_null(mem);
	for (size_t o = 0; o < HMEM; o += 8)
		memcpy(mem + o, &place, 8);
	for (size_t o = 0x1000; o < 0x2000; o += 16) {   /* the place: {nr 1, ns place} all along */
		uint64_t nr = 1;
		memcpy(mem + o, &nr, 8);
		memcpy(mem + o + 8, &place, 8);
	}
	assert_int_equal(physmem_open_buffer(mem, HMEM, NULL, 0, &pm), 0);
	vmem_init(&vm, pm, 0, false);
	vmem_set_direct_map(&vm, DMAP, HMEM);
	for (int i = 0; i < 40; i++)
		t[i] = (struct guest_task){ .addr = DMAP + 0x10000 + (uint64_t)i * 0x8000, .pid = i == 0 ? 1 : 100 + i * 7 };
	struct pida_walk w = { t, 40, NULL, 0 };
	uint64_t before = pm->bytes_read;
	enum pida_state st = pidalloc_step(&pa, &vm, &w);

	/* pid 1 fits everywhere, the others nowhere: no struct pid member, said so; tried on PIDA_SEARCHES walks,
	 * each bounded, then given up */
	for (int k = 1; k < PIDA_SEARCHES; k++) {
		assert_int_equal(st, PIDA_NONE);
		st = pidalloc_step(&pa, &vm, &w);
	}
	assert_int_equal(st, PIDA_FAILED);
	assert_true(strlen(pa.why) > 10);
	assert_true(pm->bytes_read - before < PIDA_SEARCHES * (2u << 20));
	/* a failed search stays failed (no re-reading every walk) */
	before = pm->bytes_read;
	assert_int_equal(pidalloc_step(&pa, &vm, &w), PIDA_FAILED);
	assert_int_equal(pm->bytes_read, before);
	uint32_t next;
	assert_int_equal(pidalloc_read(&pa, &vm, &next), -ENOENT);
	/* random bytes, tasks near the end of RAM (their windows run out of it) */
	srand(7);
	for (size_t o = 0; o < HMEM; o++)
		mem[o] = (uint8_t)rand();
	memset(&pa, 0, sizeof(pa));
	for (int i = 0; i < 40; i++)
		t[i].addr = DMAP + HMEM - 0x1000 - (uint64_t)i * 0x100;
	for (int k = 0; k < PIDA_SEARCHES; k++)
		st = pidalloc_step(&pa, &vm, &w);
	assert_int_equal(st, PIDA_FAILED);
	physmem_close(pm);
	free(mem);
}

/* A guest caught in churn: twelve tasks whose struct pid (at +0x500) names their pid and init_pid_ns, and
 * `exited` of them whose struct pid was freed since the walk (nr 0). One in eight may dissent (a task that
 * exited between walk and search): one of twelve still finds the namespace, two do not (and the search is
 * tried again on the next walks before it is given up). */
static enum pida_state churn_search(unsigned exited, struct pidalloc *pa)
{
	enum { NT = 12, THREAD_PID = 0x500, UPID = 0x20, REAPER = 0x30, NEXT = 0x8 };
	const uint64_t ns = DMAP + 0x180000;
	uint8_t *mem = calloc(1, HMEM);
	struct physmem *pm;
	struct vmem vm;
	struct guest_task t[NT];
	enum pida_state st = PIDA_NONE;

	assert_non_null(mem);
	for (unsigned i = 0; i < NT; i++) {
		uint64_t task = DMAP + 0x10000 + (uint64_t)i * 0x8000, pid = DMAP + 0x100000 + (uint64_t)i * 0x100;
		uint32_t nr = i == 0 ? 1 : 300 + i, stored = i >= NT - exited ? 0 : nr;

		t[i] = (struct guest_task){ .addr = task, .pid = (int32_t)nr };
		memcpy(mem + (task - DMAP) + THREAD_PID, &pid, 8);
		memcpy(mem + (pid - DMAP) + UPID, &stored, 4);
		memcpy(mem + (pid - DMAP) + UPID + 8, &ns, 8);
	}
	uint32_t next = 300 + NT;
	memcpy(mem + (ns - DMAP) + REAPER, &t[0].addr, 8);
	memcpy(mem + (ns - DMAP) + NEXT, &next, 4);
	assert_int_equal(physmem_open_buffer(mem, HMEM, NULL, 0, &pm), 0);
	vmem_init(&vm, pm, 0, false);
	vmem_set_direct_map(&vm, DMAP, HMEM);
	struct pida_walk w = { t, NT, NULL, 0 };

	memset(pa, 0, sizeof(*pa));
	for (int k = 0; k < PIDA_SEARCHES && st != PIDA_WATCHING; k++)
		st = pidalloc_step(pa, &vm, &w);
	if (st == PIDA_WATCHING) {
		assert_int_equal(pa->ns, ns);
		assert_int_equal(pa->thread_pid, THREAD_PID);
		assert_int_equal(pa->upid_nr, UPID);
		assert_int_equal(pa->reaper, REAPER);
	}
	physmem_close(pm);
	free(mem);
	return st;
}

static void test_pidalloc_survives_an_exited_task(void **state)
{
	struct pidalloc pa;

	(void)state;
	assert_int_equal(churn_search(0, &pa), PIDA_WATCHING);
	assert_int_equal(churn_search(1, &pa), PIDA_WATCHING);
	assert_int_equal(churn_search(2, &pa), PIDA_FAILED);
	assert_int_equal(pa.searches, PIDA_SEARCHES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_lived_between_walks_are_lost),
		cmocka_unit_test(test_seen_one_walk_late_is_not_lost),
		cmocka_unit_test(test_wrap_rebaselines_without_counting),
		cmocka_unit_test(test_skipped_pids_in_use_are_not_lost),
		cmocka_unit_test(test_jump_is_not_counted),
		cmocka_unit_test(test_hostile_and_bounded),
		cmocka_unit_test(test_analysis_counts_lost),
		cmocka_unit_test(test_pidalloc_hostile_memory),
		cmocka_unit_test(test_pidalloc_survives_an_exited_task),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
