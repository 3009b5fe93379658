/* cmocka: the shared guest options of offsets and ps (user/cmd/target_opts.c), units (user/common/units.c), the
 * QEMU option parser and QMP-socket finder (user/mem/qemu_proc.c). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "cmd/target_opts.h"
#include "common/units.h"
#include "mem/qemu_proc.h"

/* Sizes: plain, hex, K/M/G suffixes; junk, negatives and overflow are refused. */
static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("0x1000", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("64M", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(parse_size("2g", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("12Q", &v), -EINVAL);
	{
		pid_t pid;
		double d;

		assert_int_equal(parse_pid("4242", &pid), 0);
		assert_int_equal(pid, 4242);
		assert_int_equal(parse_pid("0", &pid), -EINVAL);
		assert_int_equal(parse_pid("-3", &pid), -EINVAL);
		assert_int_equal(parse_pid("12x", &pid), -EINVAL);
		assert_int_equal(parse_pid("", &pid), -EINVAL);
		assert_int_equal(parse_pid("99999999999", &pid), -EINVAL);
		assert_int_equal(parse_number("1.5", 0, 2, &d), 0);
		assert_true(d == 1.5);
		assert_int_equal(parse_number("3", 0, 2, &d), -EINVAL);
		assert_int_equal(parse_number("nan", 0, 2, &d), -EINVAL);
		assert_int_equal(parse_number("1s", 0, 2, &d), -EINVAL);
		assert_int_equal(parse_duration("500ms", 0, 10, &d), 0);
		assert_true(d > 0.4999 && d < 0.5001);
		assert_int_equal(parse_duration("1.5", 0, 10, &d), 0);
		assert_true(d == 1.5);
		assert_int_equal(parse_duration("2m", 0, 600, &d), 0);
		assert_true(d == 120);
		assert_int_equal(parse_duration("10s", 0, 600, &d), 0);
		assert_true(d == 10);
		assert_int_equal(parse_duration("2m", 0, 60, &d), -EINVAL);    /* out of range */
		assert_int_equal(parse_duration("5 s", 0, 60, &d), -EINVAL);   /* no space */
		assert_int_equal(parse_duration("5sec", 0, 60, &d), -EINVAL);
		assert_int_equal(parse_duration("-1", 0, 60, &d), -EINVAL);
		assert_int_equal(parse_duration("inf", 0, 60, &d), -EINVAL);
		assert_int_equal(parse_duration("ms", 0, 60, &d), -EINVAL);
	}
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999G", &v), -EINVAL);
	assert_int_equal(parse_size("17179869184G", &v), -EINVAL);   /* 2^34 GiB overflows */
}

/* --cr3 lists accumulate across options, hex with or without 0x; a zero root is refused; --raw-base is a
 * page-aligned address and goes with --raw. */
static void test_cr3_lists_and_checks(void **state)
{
	struct target_opts t = { .timeout_s = -1 };

	assert_int_equal(target_check(&t), -EINVAL);   /* no source */
	assert_int_equal(target_parse_opt(&t, TOPT_RAW_BASE, "0x40000000"), 1);
	assert_int_equal(target_check(&t), -EINVAL);   /* --raw-base without --raw */
	assert_int_equal(target_parse_opt(&t, TOPT_RAW_BASE, "0x40000010"), -EINVAL);   /* not page-aligned */
	assert_int_equal(target_parse_opt(&t, 'r', "guest.ram"), 1);
	assert_int_equal(target_check(&t), 0);   /* --raw alone: an arm64 image's root is searched in it */
	assert_int_equal(t.raw_base, 0x40000000);
	assert_int_equal(target_parse_opt(&t, TOPT_CR3, "0x10c2e000,2a4b6000"), 1);
	assert_int_equal(target_parse_opt(&t, TOPT_CR3, "0x3000"), 1);
	assert_int_equal(t.ncr3, 3);
	assert_int_equal(t.cr3s[1], 0x2a4b6000);
	assert_int_equal(target_parse_opt(&t, TOPT_CR3, "0x0fff"), -EINVAL);   /* PCID bits only */
	assert_int_equal(target_parse_opt(&t, TOPT_CR3, "0x5000,zz"), -EINVAL);
	assert_int_equal(target_check(&t), 0);
	assert_int_equal(target_parse_opt(&t, 'p', "1234"), 1);
	assert_int_equal(target_check(&t), -EINVAL);   /* two sources */
	assert_int_equal(target_parse_opt(&t, 'p', "12x"), -EINVAL);
	assert_int_equal(target_parse_opt(&t, TOPT_TIMEOUT, "0.5"), 1);
	assert_true(t.timeout_s == 0.5);
	assert_int_equal(target_parse_opt(&t, TOPT_TIMEOUT, "-1"), -EINVAL);
	assert_int_equal(target_parse_opt(&t, TOPT_MAX_BYTES, "16M"), 1);
	assert_int_equal(t.max_bytes, 16ULL << 20);
	assert_int_equal(target_parse_opt(&t, 'f', "json"), 0);   /* not a target option */
	target_opts_free(&t);
	assert_null(t.cr3s);
}

/* Start `sh -c 'sleep 5' ARGS...` so /proc/PID/cmdline carries QEMU-looking arguments. */
static pid_t spawn_with_args(const char *const *args)
{
	const char *argv[16] = { "/bin/sh", "-c", "sleep 5" };
	size_t n = 3;
	pid_t pid;

	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		execv("/bin/sh", (char *const *)argv);
		_exit(127);
	}
	usleep(100000);   /* until exec replaced the cmdline */
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* QEMU's option syntax: one parser for the QMP socket, -name and -m */
static void test_qemu_opt(void **state)
{
	char v[16], e[8];
	bool whole;
	const char *rest;

	(void)state;
	assert_true(qemu_opt("socket,id=mon,,1,path=/q", "id", v, sizeof(v)));
	assert_string_equal(v, "mon,1");
	assert_true(qemu_opt("socket,id=mon", NULL, v, sizeof(v)));
	assert_string_equal(v, "socket");
	assert_false(qemu_opt("socket,id=mon", "path", v, sizeof(v)));              /* absent */
	assert_false(qemu_opt("id=", "id", v, sizeof(v)));                          /* empty */
	assert_false(qemu_opt("path=/a/very/long/path/name", "path", v, sizeof(v))); /* too long: not cut */
	assert_false(qemu_opt("xid=1", "id", v, sizeof(v)));                        /* a key, not a suffix */
	rest = qemu_opt_next("abcdefghij,b", e, sizeof(e), &whole);
	assert_false(whole);
	assert_string_equal(e, "abcdefg");
	assert_string_equal(rest, "b");
	assert_null(qemu_opt_next("", e, sizeof(e), NULL));
	assert_false(qemu_proc_is_qemu(getpid()));
	assert_false(qemu_proc_is_qemu(0));
}

/* The QMP socket is found from -qmp unix:PATH,opts and from -chardev socket + -mon mode=control (not
 * from a readline monitor); ",," is an escaped comma; a relative path goes through /proc/PID/cwd. */
static void test_find_qmp_socket(void **state)
{
	static const char *const qmp[] = { "-name", "g", "-qmp", "unix:/run/g,,1.sock,server=on,wait=off", NULL };
	static const char *const mon[] = { "-chardev", "socket,id=hmp,path=/run/hmp.sock,server=on",
					   "-mon", "chardev=hmp,mode=readline",
					   "-chardev", "socket,path=/run/qmp.sock,id=charmonitor,server=on",
					   "--mon", "chardev=charmonitor,id=monitor,mode=control", NULL };
	static const char *const rel[] = { "-qmp-pretty", "unix:qmp.sock", NULL };
	static const char *const none[] = { "-monitor", "stdio", NULL };
	char path[256], want[64];
	pid_t pid;

	pid = spawn_with_args(qmp);
	assert_int_equal(qemu_proc_find_qmp(pid, path, sizeof(path)), 0);
	assert_string_equal(path, "/run/g,1.sock");
	reap(pid);

	pid = spawn_with_args(mon);
	assert_int_equal(qemu_proc_find_qmp(pid, path, sizeof(path)), 0);
	assert_string_equal(path, "/run/qmp.sock");
	reap(pid);

	pid = spawn_with_args(rel);
	assert_int_equal(qemu_proc_find_qmp(pid, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "/proc/%d/cwd/qmp.sock", (int)pid);
	assert_string_equal(path, want);
	reap(pid);

	pid = spawn_with_args(none);
	assert_int_equal(qemu_proc_find_qmp(pid, path, sizeof(path)), -ENOENT);
	reap(pid);

	assert_true(qemu_proc_find_qmp(0x7ffffff0, path, sizeof(path)) < 0);   /* no such process */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_cr3_lists_and_checks),
		cmocka_unit_test(test_find_qmp_socket),
		cmocka_unit_test(test_qemu_opt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
