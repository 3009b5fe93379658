/*
 * cmocka: the pure parts of user/trace: QEMU command-line parsers of `list` (-name, -m), and the analysis
 * path shared by `live` and `report` (switch time attribution per vCPU and process, counts, sorting), and the
 * choice among per-CPU current-task slot candidates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "trace/analysis.h"
#include "trace/slot.h"
#include "target/vms.h"

static void test_vm_name_forms(void **state)
{
	char n[64];

	assert_true(vm_parse_name("debian12", n, sizeof(n)));
	assert_string_equal(n, "debian12");
	assert_true(vm_parse_name("guest=web01,debug-threads=on", n, sizeof(n)));   /* libvirt */
	assert_string_equal(n, "web01");
	assert_true(vm_parse_name("debug-threads=on,guest=db", n, sizeof(n)));
	assert_string_equal(n, "db");
	assert_true(vm_parse_name("vm,,with,,commas,process=qemu-vm", n, sizeof(n)));
	assert_string_equal(n, "vm,with,commas");
	assert_false(vm_parse_name("process=x", n, sizeof(n)));
	assert_false(vm_parse_name("", n, sizeof(n)));
}

static void test_vm_mem_forms(void **state)
{
	uint64_t b;

	assert_true(vm_parse_mem("512", &b));
	assert_int_equal(b, 512ULL << 20);      /* MiB by default, as QEMU */
	assert_true(vm_parse_mem("512M", &b));
	assert_int_equal(b, 512ULL << 20);
	assert_true(vm_parse_mem("2G", &b));
	assert_int_equal(b, 2ULL << 30);
	assert_true(vm_parse_mem("size=1G,slots=2,maxmem=4G", &b));
	assert_int_equal(b, 1ULL << 30);
	assert_true(vm_parse_mem("1.5G", &b));
	assert_int_equal(b, 3ULL << 29);
	assert_false(vm_parse_mem("lots", &b));
}

static struct sess_event ev(uint64_t t_ms, uint16_t type, uint32_t vm, uint32_t vcpu, int32_t pid, const char *comm)
{
	struct sess_event e = { .time_ns = t_ms * 1000000ULL, .vm = vm, .vcpu = vcpu, .type = type, .pid = pid,
				.tgid = pid, .ppid = 1, .prev_pid = -1 };

	strncpy(e.comm, comm, sizeof(e.comm));
	return e;
}

static struct an_entry *find(struct an_entry **l, size_t n, uint32_t vm, int32_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (l[i]->vm == vm && l[i]->pid == pid)
			return l[i];
	return NULL;
}

/* Time on a vCPU runs from a switch to the next switch on the same vCPU; VMs never mix. */
static void test_switch_time_attribution(void **state)
{
	struct analysis a;
	struct an_entry **l;
	size_t n;
	struct sess_event e[] = {
		ev(0, SEV_SWITCH, 0, 0, 100, "web"),
		ev(0, SEV_SWITCH, 1, 0, 100, "other-vm"),    /* same pid, another VM */
		ev(10, SEV_SWITCH, 0, 1, 200, "db"),
		ev(30, SEV_SWITCH, 0, 0, 200, "db"),         /* web ran 30 ms on vCPU 0 */
		ev(35, SEV_FORK, 0, SESS_VCPU_NONE, 300, "child"),
		ev(36, SEV_EXEC, 0, SESS_VCPU_NONE, 300, "child2"),
		ev(37, SEV_EXIT, 0, SESS_VCPU_NONE, 300, "child2"),
		ev(50, SEV_SWITCH, 0, 1, 100, "web"),        /* db ran 40 ms on vCPU 1 */
		ev(60, SEV_SWITCH, 1, 0, 7, "x"),            /* other-vm's 100 ran 60 ms */
	};

	an_init(&a);
	an_set_vm(&a, 0, "a", 10, 2);
	an_set_vm(&a, 1, "b", 11, 1);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		an_event(&a, &e[i]);
	an_close_runs(&a, 100 * 1000000ULL);   /* db 70 ms more on vCPU 0, web 50 on vCPU 1, x 40 */
	assert_int_equal(a.count[SEV_SWITCH], 6);
	assert_int_equal(a.count[SEV_FORK], 1);

	l = an_entries(&a, false, AN_SORT_TIME, &n);
	assert_non_null(l);
	assert_int_equal(find(l, n, 0, 100)->time_ns, (30 + 50) * 1000000ULL);
	assert_int_equal(find(l, n, 0, 200)->time_ns, (40 + 70) * 1000000ULL);
	assert_int_equal(find(l, n, 1, 100)->time_ns, 60 * 1000000ULL);
	assert_string_equal(find(l, n, 1, 100)->comm, "other-vm");
	assert_int_equal(find(l, n, 0, 300)->forks, 1);
	assert_int_equal(find(l, n, 0, 300)->execs, 1);
	assert_int_equal(find(l, n, 0, 300)->exits, 1);
	assert_string_equal(find(l, n, 0, 300)->comm, "child2");
	/* sorted by time, descending: db (110) first */
	assert_int_equal(l[0]->pid, 200);
	free(l);
	l = an_entries(&a, false, AN_SORT_PID, &n);
	assert_int_equal(l[0]->vm, 0);
	assert_int_equal(l[0]->pid, 100);
	free(l);
	/* per vCPU */
	l = an_entries(&a, true, AN_SORT_TIME, &n);
	assert_int_equal(n, 6);   /* (0,0,100) (0,0,200) (0,1,200) (0,1,100) (1,0,100) (1,0,7) */
	free(l);
	an_free(&a);
}

static void moved_at(struct slot_cand *c, unsigned k) { c->moved[k / 64] |= 1ULL << (k % 64); }

/* The real current-task slot moves at every switch, so its user-space evidence is thinner than a "last user
 * task" cache's, which holds still across rounds; the fast samples show the cache moving only with it. */
static void test_slot_stale_copy(void **state)
{
	struct slot_cand c[4] = { 0 };
	struct slot_state s = { .c = c, .n = 4, .nfast = 40 };

	(void)state;
	c[0] = (struct slot_cand){ .off = 24216, .hit = 3, .changes = 1 };     /* the cache: more hits */
	c[1] = (struct slot_cand){ .off = 129984, .hit = 2, .changes = 5 };    /* current_task */
	c[2] = (struct slot_cand){ .off = 132624, .miss = 4 };                 /* refuted */
	c[3] = (struct slot_cand){ .off = 161408, .dead = true, .hit = 9 };    /* held a non-task */
	for (unsigned k = 1; k < 40; k += 4)
		moved_at(&c[1], k);
	moved_at(&c[0], 9);    /* the cache moves only where current_task does */
	moved_at(&c[0], 21);
	assert_int_equal(slot_best(&s, -1), 1);
	/* without the fast samples the stronger user-space evidence wins */
	memset(c[0].moved, 0, sizeof(c[0].moved));
	memset(c[1].moved, 0, sizeof(c[1].moved));
	assert_int_equal(slot_best(&s, -1), 0);
	/* two aliases (the runqueue's curr and current_task) move together: evidence decides, then the prior */
	for (unsigned k = 1; k < 40; k += 4) {
		moved_at(&c[0], k);
		moved_at(&c[1], k);
	}
	assert_int_equal(slot_best(&s, -1), 0);
	c[0].hit = 2;
	c[0].changes = 5;
	assert_int_equal(slot_best(&s, 129984), 1);
	assert_int_equal(slot_best(&s, 24216), 0);
	/* one that moves on its own as often as the other is no stale copy of it: evidence decides */
	c[0].hit = 3;
	for (unsigned k = 3; k < 40; k += 4)
		moved_at(&c[0], k);
	assert_int_equal(slot_best(&s, -1), 0);
	/* a slot with misses is never dropped in favour of another by this rule */
	c[0].miss = 2;
	assert_int_equal(slot_best(&s, -1), 1);
}

/* One vCPU, a busy process with two threads: a pointer stuck on one thread fits every sample that thread runs
 * in and never moves; the real slot moves at each switch and is never still across a round. Once a slot that
 * held running tasks moved, the static one is not chosen. */
static void test_slot_static_pointer(void **state)
{
	struct slot_cand c[3] = { 0 };
	struct slot_state s = { .c = c, .n = 3, .nfast = 40 };

	(void)state;
	c[0] = (struct slot_cand){ .off = -1729983224, .hit = 3, .fits = 7 };        /* stuck on one thread */
	c[1] = (struct slot_cand){ .off = -1730002920, .fits = 7, .changes = 8 };    /* current_task */
	c[2] = (struct slot_cand){ .off = -1730081888, .miss = 3, .fits = 2 };       /* another static pointer */
	for (unsigned k = 1; k < 40; k += 2)
		moved_at(&c[1], k);
	assert_int_equal(slot_best(&s, -1), 1);
	/* a guest that does not switch (nothing that held running tasks moved): evidence decides */
	memset(c[1].moved, 0, sizeof(c[1].moved));
	c[1].changes = 0;
	assert_int_equal(slot_best(&s, -1), 0);
	/* a slot that moved but never held a running task does not make the guest "switching" */
	c[2].changes = 4;
	c[2].fits = 0;
	assert_int_equal(slot_best(&s, -1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_name_forms),
		cmocka_unit_test(test_vm_mem_forms),
		cmocka_unit_test(test_switch_time_attribution),
		cmocka_unit_test(test_slot_stale_copy),
		cmocka_unit_test(test_slot_static_pointer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
