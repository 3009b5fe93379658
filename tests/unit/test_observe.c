/* cmocka: observation sets (growth, distinct CR3 roots with PCID bits dropped, per-vCPU switches). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "mem/observe.h"

static void add(struct obs_set *s, uint32_t vcpu, uint64_t cr3)
{
	struct observation o = { .cr3 = cr3, .vcpu = vcpu, .source = OBS_CLI };

	assert_int_equal(obs_add(s, &o), 0);
}

/* The set grows past its first allocation and keeps every observation in order. */
static void test_add_grows_and_keeps_order(void **state)
{
	struct obs_set s = { 0 };

	for (uint32_t i = 0; i < 1000; i++)
		add(&s, i % 4, 0x1000ULL * (i + 1));
	assert_int_equal(s.n, 1000);
	assert_true(s.cap >= 1000);
	assert_int_equal(s.v[999].cr3, 0x1000ULL * 1000);
	assert_int_equal(s.v[999].vcpu, 3);
	obs_free(&s);
	assert_null(s.v);
	assert_int_equal(s.n, 0);
	obs_free(&s);   /* twice is harmless */
}

/* PCID (bits 0-11) and bit 63 do not make a new root; the PTI user half (bit 12) is a root of its own
 * (discovery matches both halves against mm->pgd); CR3 0 is no root; max is obeyed. */
static void test_distinct_roots_masks_pcid(void **state)
{
	struct obs_set s = { 0 };
	uint64_t roots[8];

	add(&s, 0, 0x10c2e000);
	add(&s, 0, 0x10c2f001);          /* PTI user half, PCID 1 */
	add(&s, 1, 0x8000000010c2e005);  /* NOFLUSH bit 63 and PCID: same as the first */
	add(&s, 1, 0);                   /* a GS-base-only sample */
	add(&s, 1, 0x2a4b6000);
	add(&s, 2, 0x3000);
	assert_int_equal(obs_distinct_roots(&s, roots, 8), 4);
	assert_int_equal(roots[0], 0x10c2e000);   /* order of first appearance */
	assert_int_equal(roots[1], 0x10c2f000);
	assert_int_equal(roots[2], 0x2a4b6000);
	assert_int_equal(roots[3], 0x3000);
	assert_int_equal(obs_distinct_roots(&s, roots, 2), 2);
	assert_int_equal(obs_distinct_roots(&s, roots, 0), 0);
	obs_free(&s);
}

/* Switches are counted per vCPU: its first root counts once, then each change of root. */
static void test_switches_per_vcpu(void **state)
{
	struct obs_set s = { 0 };

	assert_int_equal(obs_switches(&s), 0);
	add(&s, 0, 0x10000);   /* vCPU 0 starts: 1 */
	add(&s, 1, 0x20000);   /* vCPU 1 starts: 2 */
	add(&s, 0, 0x10001);   /* same root, other PCID: no switch */
	add(&s, 0, 0x30000);   /* 3 */
	add(&s, 1, 0x20000);   /* no switch */
	add(&s, 0, 0x10000);   /* 4: back to the first root */
	add(&s, 1, 0x10000);   /* 5: vCPU 1 interleaved with vCPU 0 does not count vCPU 0's value */
	add(&s, 7, 0);         /* no root, no switch */
	add(&s, 1, 0x11000);   /* 6: PTI user half of 0x10000 is another root */
	assert_int_equal(obs_switches(&s), 6);
	obs_free(&s);
}

/* vCPU ids counted once each, every one (not capped at the limit that is followed) */
static void test_count_vcpus(void **state)
{
	struct obs_set s = { 0 };

	(void)state;
	for (uint32_t v = 0; v < 100; v++)
		for (int k = 0; k < 3; k++) {
			struct observation o = { .cr3 = 0x1000, .vcpu = v };

			assert_int_equal(obs_add(&s, &o), 0);
		}
	assert_int_equal(obs_count_vcpus(&s), 100);
	assert_true(obs_count_vcpus(&s) > VMOT_MAX_VCPUS);
	obs_free(&s);
	assert_int_equal(obs_count_vcpus(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_vcpus),
		cmocka_unit_test(test_add_grows_and_keeps_order),
		cmocka_unit_test(test_distinct_roots_masks_pcid),
		cmocka_unit_test(test_switches_per_vcpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
