/* `vmoffset-trace ps`: the guest's processes, read through offsets discovered on the spot. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd/cmd.h"
#include "cmd/target_opts.h"
#include "common/log.h"
#include "output/output.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace ps (--pid PID | --core FILE | --raw FILE --cr3 HEX[,HEX...])\n"
		"                         [--qmp PATH] [--timeout SEC] [--tree] [--threads] [--plain] [--json]\n"
		"\n"
		"List the guest's processes from outside the VM: offsets are discovered first (as `offsets`\n"
		"does), then init_task's list is walked. Kernel threads are shown in [brackets].\n"
		"Exit status: 0 listed, 2 offsets undetermined, 1 error.\n"
		"\n"
		TARGET_USAGE
		"Output:\n"
		"  -t, --tree             parent/child tree (like ps -ejH / pstree)\n"
		"  -T, --threads          one line per thread instead of per process\n"
		"  -P, --plain            without USER, EXE and CMD (no reads of creds, files or process memory)\n"
		"  -j, --json             JSON array (as does the global -j)\n"
		"  -h, --help             this text\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace ps --pid $(pgrep -f 'qemu.*debian12')\n"
		"  vmoffset-trace ps --core guest.core --tree\n"
		"  vmoffset-trace --pretty ps --raw guest.ram --cr3 0x10c2e000 --json\n");
}

/* Each task's uid, gid, euid, egid, once struct cred's ids are found on the listed processes (else USER -) */
static void add_ids(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t ntasks,
		    struct ps_row *rows, size_t nrows)
{
	if (discover_cred_ids(pm, res, tasks, ntasks)) {
		p_dbg("no user ids: %s", res->cred_ids[0].how);
		return;
	}
	for (size_t i = 0; i < nrows; i++)
		rows[i].have_ids = !guest_task_ids(pm, res, rows[i].t, rows[i].ids);
}

/* Each process's argv, once mm_struct's arg members are found on the listed processes (not found: no CMD) */
static void add_cmdlines(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks,
			 size_t ntasks, struct ps_row *rows, size_t nrows)
{
	enum { CMDLINE_MAX = 128 << 10 };
	char *buf;

	if (discover_mm_args(pm, res, tasks, ntasks)) {
		p_dbg("no command lines: %s", res->mm_args[0].how);
		return;
	}
	buf = malloc(CMDLINE_MAX);
	for (size_t i = 0; buf && i < nrows; i++) {
		size_t len;

		if (guest_task_cmdline(pm, res, rows[i].t, buf, CMDLINE_MAX, &len) || !len)
			continue;
		rows[i].cmdline = malloc(len + 1);
		if (rows[i].cmdline) {
			memcpy(rows[i].cmdline, buf, len + 1);
			rows[i].cmdline_len = len;
		}
	}
	free(buf);
}

/* Each process's executable (mm->exe_file's path), once the maps and path members are found */
static void add_exes(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t ntasks,
		     struct ps_row *rows, size_t nrows)
{
	char path[4200];

	if (discover_mm_maps(pm, res, tasks, ntasks) || !res->maps[MM_EXE_FILE].found) {
		p_dbg("no executables: %s", res->maps[MM_EXE_FILE].how);
		return;
	}
	for (size_t i = 0; i < nrows; i++) {
		uint64_t file;

		if (guest_task_exe_file(pm, res, rows[i].t, &file) || !file ||
		    guest_file_path(pm, res, file, path, sizeof(path)))
			continue;
		rows[i].exe = strdup(path);
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
		TARGET_LONG_OPTS,
		{ "tree",    no_argument, NULL, 't' },
		{ "threads", no_argument, NULL, 'T' },
		{ "plain",   no_argument, NULL, 'P' },
		{ "json",    no_argument, NULL, 'j' },
		{ "help",    no_argument, NULL, 'h' },
		{},
	};
	struct target_opts topts = { .timeout_s = -1 };
	struct discovery_result res;
	struct target tg = { 0 };
	struct guest_task *tasks = NULL;
	struct ps_row *rows = NULL;
	size_t ntasks = 0, nrows = 0;
	bool tree = false, threads = false, plain = false, json = log_json;
	int c, err, ret = EXIT_FAIL;

	while ((c = cmd_getopt(argc, argv, TARGET_SHORT_OPTS "tTPjh", opts, target_opt, &topts)) != -1) {
		switch (c) {
		case CMD_OPT_BAD: goto usage_err;
		case 't': tree = true; break;
		case 'T': threads = true; break;
		case 'P': plain = true; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); ret = EXIT_OK; goto cleanup;
		default: cmd_bad_option(argv, usage); goto usage_err;
		}
	}
	if (cmd_no_operands(argc, argv) || target_check(&topts))
		goto usage_err;

	if ((err = target_open_tasks(&topts, &tg, &res, &tasks, &ntasks))) {
		ret = err;
		goto cleanup;
	}
	rows = ps_rows(tasks, ntasks, threads, &nrows);
	if (!rows) {
		p_err("out of memory");
		goto cleanup;
	}
	if (!plain) {   /* what each costs (`make bench`) */
		double t1 = now_ms(), t2, t3, t4;
		add_cmdlines(tg.pm, &res, tasks, ntasks, rows, nrows);
		t2 = now_ms();
		add_ids(tg.pm, &res, tasks, ntasks, rows, nrows);
		t3 = now_ms();
		add_exes(tg.pm, &res, tasks, ntasks, rows, nrows);
		t4 = now_ms();
		p_dbg("ps: %zu tasks; command lines %.1f ms, users %.1f ms, executables %.1f ms", ntasks, t2 - t1, t3 - t2,
		      t4 - t3);
	}
	if (json)
		err = ps_print_json(stdout, rows, nrows);
	else if (tree)
		err = ps_print_tree(stdout, rows, nrows);
	else
		ps_print_table(stdout, rows, nrows);
	if (err) {
		p_err("printing: %s", strerror(-err));
		goto cleanup;
	}
	fflush(stdout);
	ret = ferror(stdout) ? EXIT_FAIL : EXIT_OK;
	goto cleanup;

usage_err:
	ret = EXIT_USAGE;
cleanup:
	for (size_t i = 0; rows && i < nrows; i++)
		free(rows[i].cmdline);
	for (size_t i = 0; rows && i < nrows; i++)
		free(rows[i].exe);
	free(rows);
	free(tasks);
	target_close(&tg);
	target_opts_free(&topts);
	return ret;
}
