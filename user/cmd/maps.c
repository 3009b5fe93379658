/* `vmoffset-trace maps`: one guest process's memory maps in /proc/PID/maps form, read through offsets
 * discovered on the spot (the VMA tree or list, vm_area_struct and the file/dentry/mount members). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd/cmd.h"
#include "cmd/target_opts.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "discovery/discover.h"

enum { OPT_TASK = 0x200 };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace maps (--pid PID | --core FILE | --raw FILE --cr3 HEX[,HEX...])\n"
		"                           --task TGID [--qmp PATH] [--timeout SEC] [--json]\n"
		"\n"
		"One guest process's memory mappings, as /proc/TGID/maps shows them inside the guest:\n"
		"start-end perms offset dev inode path, with [heap], [stack], [vdso] named and files by path\n"
		"(\" (deleted)\" once unlinked). Nothing about the guest kernel is needed: offsets are\n"
		"discovered first, then the process's VMA tree (6.1+) or list is walked, bounded.\n"
		"The dev and inode columns are not read (00:00 0).\n"
		"Exit status: 0 listed, 2 offsets undetermined, 1 error (no such process, a lying walk).\n"
		"\n"
		TARGET_USAGE
		"Output:\n"
		"      --task TGID        the guest process (its pid inside the guest)\n"
		"  -j, --json             JSON array of {start, end, perms, offset, flags, path}\n"
		"  -h, --help             this text\n"
		"\n"
		"Example:\n"
		"  vmoffset-trace maps --pid $(pgrep -f 'qemu.*debian12') --task 1\n");
}

static void perms(uint64_t flags, char p[5])
{
	p[0] = flags & 1 ? 'r' : '-';
	p[1] = flags & 2 ? 'w' : '-';
	p[2] = flags & 4 ? 'x' : '-';
	p[3] = flags & 0x80 ? 's' : 'p';   /* VM_MAYSHARE */
	p[4] = 0;
}

/* each mapping's path: its file's, or its name ([heap], ...), or "" */
static char **map_paths(struct physmem *pm, const struct discovery_result *res, const struct guest_vma *v, size_t n)
{
	char **paths = calloc(n ? n : 1, sizeof(*paths));
	char buf[4200];

	for (size_t i = 0; paths && i < n; i++) {
		buf[0] = 0;
		if (v[i].file) {
			int err = guest_file_path(pm, res, v[i].file, buf, sizeof(buf));
			if (err)
				snprintf(buf, sizeof(buf), "?");   /* a file whose path cannot be read */
		} else {
			snprintf(buf, sizeof(buf), "%s", v[i].name);
		}
		paths[i] = strdup(buf);
	}
	return paths;
}

int cmd_maps(int argc, char **argv)
{
	static const struct option opts[] = {
		TARGET_LONG_OPTS,
		{ "task", required_argument, NULL, OPT_TASK },
		{ "json", no_argument,       NULL, 'j' },
		{ "help", no_argument,       NULL, 'h' },
		{},
	};
	struct target_opts topts = { .timeout_s = -1 };
	struct discovery_result res;
	struct target tg = { 0 };
	struct guest_task *tasks = NULL;
	struct guest_vma *vmas = NULL;
	char **paths = NULL;
	size_t ntasks = 0, nvmas = 0;
	long task = -1;
	bool json = log_json;
	int c, err, ret = EXIT_FAIL;
	char *end;

	while ((c = cmd_getopt(argc, argv, TARGET_SHORT_OPTS "jh", opts, target_opt, &topts)) != -1) {
		switch (c) {
		case CMD_OPT_BAD: goto usage_err;
		case OPT_TASK:
			errno = 0;
			task = strtol(optarg, &end, 10);
			if (errno || *end || task < 0 || task > 0x7fffffff) {
				p_err("--task: not a process id: '%s'", optarg);
				goto usage_err;
			}
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout); ret = EXIT_OK; goto cleanup;
		default: cmd_bad_option(argv, usage); goto usage_err;
		}
	}
	if (cmd_no_operands(argc, argv) || target_check(&topts))
		goto usage_err;
	if (task < 0) {
		p_err("--task TGID is required: which process's maps");
		goto usage_err;
	}
	if ((err = target_open_tasks(&topts, &tg, &res, &tasks, &ntasks))) {
		ret = err;
		goto cleanup;
	}
	const struct guest_task *t = NULL;
	for (size_t i = 0; i < ntasks && !t; i++)
		if (tasks[i].pid == task && tasks[i].tgid == task)
			t = &tasks[i];
	if (!t) {
		p_err("no process %ld in %s", task, tg.desc);
		goto cleanup;
	}
	discover_mm_args(tg.pm, &res, tasks, ntasks);   /* start_stack is found through arg_start */
	if (discover_mm_maps(tg.pm, &res, tasks, ntasks)) {
		/* the first step that failed: where the VMAs hang, their bounds, their flags */
		static const enum maps_member steps[] = { MM_MAP_ROOT, VMA_START, VMA_END, VMA_FLAGS };
		size_t k = 0;

		while (k + 1 < sizeof(steps) / sizeof(steps[0]) && res.maps[steps[k]].found)
			k++;
		p_err("undetermined: memory maps: %s: %s", maps_member_names[steps[k]], res.maps[steps[k]].how);
		ret = EXIT_UNDETERMINED;
		goto cleanup;
	}
	const char *why;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	err = guest_task_maps(tg.pm, &res, t, &vmas, &nvmas, &why);
	if (err) {
		p_err("process %ld (%s): %s", task, t->comm, why);
		goto cleanup;
	}
	paths = map_paths(tg.pm, &res, vmas, nvmas);
	if (!paths) {
		p_err("out of memory");
		goto cleanup;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	p_dbg("maps: %zu mappings of process %ld read in %.2f ms (walk and paths)", nvmas, task,
	      (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	if (json) {
		json_writer_t *w = jsonw_new(stdout);
		if (!w)
			goto cleanup;
		jsonw_start_array(w);
		for (size_t i = 0; i < nvmas; i++) {
			char p[5];
			perms(vmas[i].flags, p);
			jsonw_start_object(w);
			jsonw_hex_field(w, "start", vmas[i].start);
			jsonw_hex_field(w, "end", vmas[i].end);
			jsonw_string_field(w, "perms", p);
			jsonw_hex_field(w, "offset", vmas[i].file ? vmas[i].pgoff << 12 : 0);
			jsonw_hex_field(w, "flags", vmas[i].flags);
			if (paths[i] && paths[i][0])
				jsonw_string_field(w, "path", paths[i]);
			else
				jsonw_null_field(w, "path");
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		jsonw_destroy(&w);
	} else {
		for (size_t i = 0; i < nvmas; i++) {
			char p[5], line[128];
			int len;
			perms(vmas[i].flags, p);
			len = snprintf(line, sizeof(line), "%08llx-%08llx %s %08llx 00:00 0 ", (unsigned long long)vmas[i].start,
				       (unsigned long long)vmas[i].end, p,
				       (unsigned long long)(vmas[i].file ? vmas[i].pgoff << 12 : 0));
			if (paths[i] && paths[i][0])
				printf("%s%*s%s\n", line, len < 73 ? 73 - len : 0, "", paths[i]);   /* /proc's column */
			else
				printf("%s\n", line);
		}
	}
	fflush(stdout);
	ret = ferror(stdout) ? EXIT_FAIL : EXIT_OK;
	goto cleanup;

usage_err:
	ret = EXIT_USAGE;
cleanup:
	for (size_t i = 0; paths && i < nvmas; i++)
		free(paths[i]);
	free(paths);
	free(vmas);
	free(tasks);
	target_close(&tg);
	target_opts_free(&topts);
	return ret;
}
