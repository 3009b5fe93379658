/* cmocka: `report` on a session that holds exit statistics (a VMX host: this one has none to record) — per
 * (VM, vCPU, reason) rows with Linux's reason names, the most frequent first, and the capture's drop count. */
#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "cmd/cmd.h"
#include "common/log.h"
#include "session/session.h"

static const char *const EXIT_STATS =
	"{\"exit_stats\":{\"available\":true,\"reason\":\"kvm_exit / kvm_entry tracepoints\","
	"\"capture\":{\"seen\":1000,\"filtered\":0,\"deduped\":900,\"emitted\":97,\"dropped\":3},"
	"\"exits\":[{\"vm\":0,\"qemu_pid\":4242,\"vcpu\":1,\"isa\":\"vmx\",\"reason\":30,\"name\":\"IO_INSTRUCTION\","
	"\"count\":5},{\"vm\":0,\"qemu_pid\":4242,\"vcpu\":0,\"isa\":\"vmx\",\"reason\":48,\"name\":\"EPT_VIOLATION\","
	"\"count\":900},{\"vm\":0,\"qemu_pid\":4242,\"vcpu\":null,\"isa\":\"vmx\",\"reason\":1,"
	"\"name\":\"EXTERNAL_INTERRUPT\",\"count\":40}],"
	"\"latency\":[{\"vm\":0,\"qemu_pid\":4242,\"vcpu\":0,\"exits\":900,\"total_ns\":1800000,\"max_ns\":9000}]}}";

static void write_session(const char *path)
{
	struct sess_writer *w;
	struct sess_event e = { .time_ns = 1000, .vm = 0, .vcpu = 0, .type = SEV_SWITCH, .pid = 1, .tgid = 1,
				.ppid = 0, .prev_pid = -1, .comm = "init" };

	assert_int_equal(sess_create(path, "{\"format\":\"vmoffset-trace session\",\"version\":1}", &w), 0);
	assert_int_equal(sess_write_json(w, SB_VM, "{\"index\":0,\"name\":\"web\",\"pid\":4242,\"vcpus\":2}"), 0);
	assert_int_equal(sess_add_event(w, &e), 0);
	assert_int_equal(sess_write_json(w, SB_COUNTERS, EXIT_STATS), 0);
	assert_int_equal(sess_close(w, -1, "duration reached"), 0);
}

/* `report -i SESSION ARGS...` on a fresh session from write_session(), stdout into a string */
static char *report(const char *const *args, int nargs, int *rc)
{
	char path[] = "/tmp/vmot-report.XXXXXX", out[] = "/tmp/vmot-report-out.XXXXXX";
	int pfd = mkstemp(path), fd = mkstemp(out), saved = dup(STDOUT_FILENO), argc = 0;
	char *argv[16] = { "report", "-i", path }, *buf = calloc(1, 1 << 16);
	FILE *f;

	assert_true(pfd >= 0 && fd >= 0 && saved >= 0 && buf && nargs <= 12);
	close(pfd);
	write_session(path);
	for (argc = 3; argc - 3 < nargs; argc++)
		argv[argc] = (char *)args[argc - 3];
	fflush(stdout);
	dup2(fd, STDOUT_FILENO);
	optind = 0;       /* a fresh getopt for the command */
	log_json = false; /* as a new process starts (--json sets it) */
	*rc = cmd_report(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	f = fdopen(fd, "r");
	rewind(f);
	fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	unlink(out);
	unlink(path);
	return buf;
}

static void test_exits_text(void **state)
{
	static const char *const args[] = { "--section", "exits" };
	char *text, *ept, *io, *ext;
	int rc;

	(void)state;
	text = report(args, 2, &rc);
	printf("%s", text);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "3 dropped"));
	ept = strstr(text, "EPT_VIOLATION (48)");
	ext = strstr(text, "EXTERNAL_INTERRUPT (1)");
	io = strstr(text, "IO_INSTRUCTION (30)");
	assert_true(ept && ext && io && ept < ext && ext < io);   /* the most frequent first */
	assert_non_null(strstr(text, "web                 0 vmx"));       /* VM name, vCPU 0 */
	assert_non_null(strstr(text, "web                 - vmx"));       /* vCPU not known */
	assert_non_null(strstr(text, "web                 1 vmx"));
	free(text);
}

static void test_exits_json(void **state)
{
	static const char *const args[] = { "--json" };
	char *text;
	int rc;

	(void)state;
	text = report(args, 1, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "\"name\":\"EPT_VIOLATION\""));
	assert_non_null(strstr(text, "\"dropped\":3"));
	free(text);
}

static void test_exits_csv(void **state)
{
	static const char *const args[] = { "--csv", "--section", "exits" };
	char *text, *ept, *ext;
	int rc;

	(void)state;
	text = report(args, 3, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "vm,vcpu,isa,reason,name,count\n"));
	ept = strstr(text, "\"web\",0,vmx,48,\"EPT_VIOLATION\",900\n");
	ext = strstr(text, "\"web\",,vmx,1,\"EXTERNAL_INTERRUPT\",40\n");
	assert_true(ept && ext && ept < ext);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exits_text),
		cmocka_unit_test(test_exits_json),
		cmocka_unit_test(test_exits_csv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
