/*
 * cmocka: the user-side decoding of capture events — the mov-to-CR decoder the BPF program also runs
 * (bpf/capture.h), and which events become observations.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "capture/capture.h"

static int decode(const uint8_t *b, unsigned int len, int is64, int *gpr)
{
	*gpr = -1;
	return capture_decode_mov_cr(b, len, is64, gpr);
}

/* mov %rax,%cr3 (0F 22 D8) and the other GPRs through the r/m field. */
static void test_decode_mov_to_cr3_each_gpr(void **state)
{
	for (int r = 0; r < 8; r++) {
		uint8_t b[3] = { 0x0f, 0x22, (uint8_t)(0xd8 | r) };
		int gpr;

		assert_int_equal(decode(b, 3, 1, &gpr), 3);
		assert_int_equal(gpr, r);
	}
}

/* REX.B extends the GPR (mov %r8..%r15,%cr3); REX.R extends the CR number; REX.W changes nothing. */
static void test_decode_rex_bits(void **state)
{
	const uint8_t r8[] = { 0x41, 0x0f, 0x22, 0xd8 };
	const uint8_t r15[] = { 0x49, 0x0f, 0x22, 0xdf };
	const uint8_t cr11[] = { 0x44, 0x0f, 0x22, 0xd8 };
	const uint8_t w[] = { 0x48, 0x0f, 0x22, 0xdf };
	int gpr;

	assert_int_equal(decode(r8, sizeof(r8), 1, &gpr), 3);
	assert_int_equal(gpr, 8);
	assert_int_equal(decode(r15, sizeof(r15), 1, &gpr), 3);
	assert_int_equal(gpr, 15);
	assert_int_equal(decode(cr11, sizeof(cr11), 1, &gpr), 11);
	assert_int_equal(gpr, 0);
	assert_int_equal(decode(w, sizeof(w), 1, &gpr), 3);
	assert_int_equal(gpr, 7);
}

/* Outside 64-bit mode 0x41 is `inc %ecx`, a different instruction: not a mov to CR. */
static void test_decode_rex_only_in_64bit_mode(void **state)
{
	const uint8_t b[] = { 0x41, 0x0f, 0x22, 0xd8 };
	const uint8_t plain[] = { 0x0f, 0x22, 0xd8 };
	int gpr;

	assert_int_equal(decode(b, sizeof(b), 0, &gpr), -1);
	assert_int_equal(decode(plain, sizeof(plain), 0, &gpr), 3);
	assert_int_equal(gpr, 0);
}

/* Legacy prefixes are skipped; a REX followed by a legacy prefix is void (the CPU ignores it). */
static void test_decode_prefixes(void **state)
{
	const uint8_t p66[] = { 0x66, 0x0f, 0x22, 0xd8 };
	const uint8_t seg[] = { 0x2e, 0x3e, 0x0f, 0x22, 0xda };
	const uint8_t rex_then_66[] = { 0x41, 0x66, 0x0f, 0x22, 0xd8 };
	int gpr;

	assert_int_equal(decode(p66, sizeof(p66), 1, &gpr), 3);
	assert_int_equal(gpr, 0);
	assert_int_equal(decode(seg, sizeof(seg), 1, &gpr), 3);
	assert_int_equal(gpr, 2);
	assert_int_equal(decode(rex_then_66, sizeof(rex_then_66), 1, &gpr), 3);
	assert_int_equal(gpr, 0);
}

/* Other CRs keep their number; reads from CR3 and unrelated opcodes are not mov-to-CR. */
static void test_decode_other_instructions(void **state)
{
	const uint8_t cr0[] = { 0x0f, 0x22, 0xc0 };
	const uint8_t cr4[] = { 0x0f, 0x22, 0xe0 };
	const uint8_t read_cr3[] = { 0x0f, 0x20, 0xd8 };
	const uint8_t nop[] = { 0x90, 0x90, 0x90, 0x90 };
	const uint8_t hlt[] = { 0xf4 };
	int gpr;

	assert_int_equal(decode(cr0, sizeof(cr0), 1, &gpr), 0);
	assert_int_equal(decode(cr4, sizeof(cr4), 1, &gpr), 4);
	assert_int_equal(decode(read_cr3, sizeof(read_cr3), 1, &gpr), -1);
	assert_int_equal(decode(nop, sizeof(nop), 1, &gpr), -1);
	assert_int_equal(decode(hlt, sizeof(hlt), 1, &gpr), -1);
}

/* Truncated input and prefix runs past the 15-byte instruction limit never decode (nor read past len). */
static void test_decode_bounds(void **state)
{
	uint8_t b[CAP_INSN_MAX + 4];
	const uint8_t two[] = { 0x0f, 0x22 };
	int gpr;

	assert_int_equal(decode(two, sizeof(two), 1, &gpr), -1);
	assert_int_equal(decode(two, 0, 1, &gpr), -1);
	memset(b, 0x66, sizeof(b));
	b[14] = 0x0f, b[15] = 0x22, b[16] = 0xd8;
	assert_int_equal(decode(b, sizeof(b), 1, &gpr), -1);
	/* 12 prefixes + 3 opcode bytes = 15: still an instruction */
	memset(b, 0x66, sizeof(b));
	b[12] = 0x0f, b[13] = 0x22, b[14] = 0xd8;
	assert_int_equal(decode(b, 15, 1, &gpr), 3);
	/* the same bytes with len cut before the ModRM */
	assert_int_equal(decode(b, 14, 1, &gpr), -1);
}

static struct capture_event ev_of(unsigned int kind, unsigned int src, uint32_t flags, uint64_t cr3, uint64_t aux)
{
	struct capture_event e;

	memset(&e, 0, sizeof(e));
	e.time_ns = 123;
	e.kind = (uint16_t)kind;
	e.cr3_src = (uint16_t)src;
	e.flags = flags;
	e.cr3 = cr3;
	e.aux = aux;
	e.vcpu_id = 2;
	return e;
}

/* A decoded mov-to-CR3 is an observation of the value written only when the source register was read;
 * its cr3 field (the previous value) is never used for it. */
static void test_observation_cr3_write(void **state)
{
	struct capture_event e = ev_of(CAP_EV_CR3_WRITE, CR3_SRC_ARCH, CAP_F_CR3_VALID, 0x10000, 0x11000);
	struct observation o;

	assert_false(capture_event_observation(&e, &o));
	e.flags |= CAP_F_AUX_VALID;
	assert_true(capture_event_observation(&e, &o));
	assert_int_equal(o.cr3, 0x11000);
	assert_int_equal(o.vcpu, 2);
	assert_int_equal(o.time_ns, 123);
	assert_int_equal(o.source, OBS_BPF);
	assert_int_equal(o.gs_base, 0);
}

/* Other events give an observation exactly when they carry a valid CR3 from a known source. */
static void test_observation_other_kinds(void **state)
{
	struct capture_event e;
	struct observation o;

	e = ev_of(CAP_EV_CR, CR3_SRC_KVM_CR, CAP_F_CR3_VALID | CAP_F_WRITE, 0x1234000, 0);
	assert_true(capture_event_observation(&e, &o));
	assert_int_equal(o.cr3, 0x1234000);
	e = ev_of(CAP_EV_EXIT, CR3_SRC_SVM_VMCB, CAP_F_CR3_VALID, 0x5000, 0);
	assert_true(capture_event_observation(&e, &o));
	e = ev_of(CAP_EV_EXIT, CR3_SRC_NONE, 0, 0, 0);           /* VMX with EPT: no CR3 at this exit */
	assert_false(capture_event_observation(&e, &o));
	e = ev_of(CAP_EV_MMIO, CR3_SRC_ARCH, 0, 0x7000, 0);       /* cache said stale: flag not set */
	assert_false(capture_event_observation(&e, &o));
	e = ev_of(CAP_EV_PIO, CR3_SRC_NONE, CAP_F_CR3_VALID, 0x7000, 0);   /* inconsistent: no source */
	assert_false(capture_event_observation(&e, &o));
	e = ev_of(CAP_EV_PIO, CR3_SRC_NR, CAP_F_CR3_VALID, 0x7000, 0);     /* unknown source */
	assert_false(capture_event_observation(&e, &o));
}

static void test_names(void **state)
{
	assert_string_equal(capture_kind_name(CAP_EV_CR3_WRITE), "cr3_write");
	assert_string_equal(capture_kind_name(0), "?");
	assert_string_equal(capture_kind_name(999), "?");
	assert_string_equal(capture_cr3_src_name(CR3_SRC_SVM_VMCB), "svm_vmcb");
	assert_string_equal(capture_cr3_src_name(CR3_SRC_NR), "?");
	assert_string_equal(capture_hook_name(CAP_HOOK_EMULATE), "kvm_emulate_insn");
	assert_string_equal(capture_hook_name(CAP_HOOK_NR), "?");
}

/* Exit reasons named as Linux's VMX_EXIT_REASONS / SVM_EXIT_REASONS; VMX flag bits ignored; numbers otherwise. */
static void test_exit_reason_names(void **state)
{
	char b[32];

	assert_string_equal(capture_exit_reason_name(1, 48, b, sizeof(b)), "EPT_VIOLATION");
	assert_string_equal(capture_exit_reason_name(1, 0x80000021, b, sizeof(b)), "INVALID_STATE");   /* failed entry */
	assert_string_equal(capture_exit_reason_name(1, 30, b, sizeof(b)), "IO_INSTRUCTION");
	assert_string_equal(capture_exit_reason_name(1, 65, b, sizeof(b)), "65");
	assert_string_equal(capture_exit_reason_name(2, 0x400, b, sizeof(b)), "npf");
	assert_string_equal(capture_exit_reason_name(2, 0x013, b, sizeof(b)), "write_cr3");
	assert_string_equal(capture_exit_reason_name(2, 0x003, b, sizeof(b)), "read_cr3");
	assert_string_equal(capture_exit_reason_name(2, 0x04e, b, sizeof(b)), "excp_14");
	assert_string_equal(capture_exit_reason_name(2, 0xffffffff, b, sizeof(b)), "4294967295");
	assert_string_equal(capture_exit_reason_name(0, 7, b, sizeof(b)), "7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_mov_to_cr3_each_gpr),
		cmocka_unit_test(test_decode_rex_bits),
		cmocka_unit_test(test_decode_rex_only_in_64bit_mode),
		cmocka_unit_test(test_decode_prefixes),
		cmocka_unit_test(test_decode_other_instructions),
		cmocka_unit_test(test_decode_bounds),
		cmocka_unit_test(test_observation_cr3_write),
		cmocka_unit_test(test_observation_other_kinds),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_exit_reason_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
