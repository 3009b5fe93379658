/* vmoffset-trace: profile-free introspection of KVM/QEMU guests. Subcommand dispatch in bpftool's style. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd/cmd.h"
#include "common/json_writer.h"
#include "common/log.h"


struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
	const char *help;
};

static const struct cmd cmds[] = {
	{ "offsets", cmd_offsets, "discover and validate task_struct/mm_struct offsets of a guest" },
	{ "probe",   cmd_probe,   "list KVM hooks and CR3 sources this host offers" },
	{ "ps",      cmd_ps,      "list the guest's processes (discovers offsets first)" },
	{ "maps",    cmd_maps,    "one guest process's memory maps, as /proc/PID/maps" },
	{ "list",    cmd_list,    "list the VMs (QEMU processes) on this host" },
	{ "live",    cmd_live,    "stream the guests' process activity (switch, fork, exec, exit)" },
	{ "record",  cmd_record,  "record that activity into a session file" },
	{ "report",  cmd_report,  "per-process/vCPU activity, timeline and exit statistics of a session file" },
	{ "timechart", cmd_timechart, "a session as one SVG picture: what ran on which vCPU when" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmoffset-trace [-v] [-j|--pretty] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\nOptions:\n  -v, --verbose   debug output (libbpf too); -vv also times each debug line\n"
		   "  -j, --json      JSON output where the command supports it\n"
		   "      --pretty    indented JSON (implies -j)\n"
		   "  -V, --version   print the version\n"
		   "  -h, --help      this text; `vmoffset-trace COMMAND --help` for a command\n");
}

/* Full name or a unique prefix (bpftool), so `p` is ambiguous between probe and ps. */
static const struct cmd *find_cmd(const char *name)
{
	const struct cmd *found = NULL;
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
		if (!strncmp(cmds[i].name, name, len)) {
			if (found) {
				p_err("'%s' is ambiguous (%s, %s, ...)", name, found->name, cmds[i].name);
				return NULL;
			}
			found = &cmds[i];
		}
	}
	if (!found)
		p_err("unknown command '%s' (see vmoffset-trace --help)", name);
	return found;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "json",    no_argument, NULL, 'j' },
		{ "pretty",  no_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "help",    no_argument, NULL, 'h' },
		{},
	};
	const struct cmd *cmd;
	int c;

	/* '+': stop at the first non-option so subcommand options stay with the subcommand. */
	/* -p is --pid, as in perf, and belongs to the command: `vmoffset-trace ps -p PID` */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vjVh", opts, NULL)) != -1) {
		switch (c) {
		case 'v': log_verbose++; break;
		case 'P': json_pretty = true; /* fall through */
		case 'j': log_json = true; break;
		case 'V': printf("vmoffset-trace %s\n", VMOT_VERSION); return EXIT_OK;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			if (optopt == 'p')
				p_err("-p is --pid and goes after the command (vmoffset-trace ps -p PID); indented JSON "
				      "is --pretty");
			else if (optopt)
				p_err("unknown option '-%c' (see vmoffset-trace --help)", optopt);
			else
				p_err("unknown option '%s' (see vmoffset-trace --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_cmd(argv[optind]);
	if (!cmd)
		return EXIT_USAGE;
	argc -= optind;
	argv += optind;
	optind = 0;  /* reset getopt for the subcommand */
	opterr = 0;  /* its errors are said by cmd_bad_option: one line, JSON in JSON mode */
	return cmd->func(argc, argv);
}
