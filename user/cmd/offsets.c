/* `vmoffset-trace offsets`: discover, validate and print task_struct/mm_struct offsets of a guest. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd/cmd.h"
#include "cmd/target_opts.h"
#include "common/log.h"
#include "output/output.h"

#define VMOT_PRODUCER_VERSION VMOT_VERSION

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace offsets (--pid PID | --core FILE | --raw FILE --cr3 HEX[,HEX...])\n"
		"                              [--qmp PATH] [--timeout SEC] [--format json|libvmi|isf]\n"
		"                              [--name NAME] [--isf-path PATH] [-o FILE]\n"
		"\n"
		"Find task_struct and mm_struct member offsets and init_task from guest memory alone (no\n"
		"System.map, BTF or kernel version), check them against observed CR3 switches, and print them.\n"
		"Exit status: 0 validated, 2 undetermined (we abstain rather than guess), 1 error.\n"
		"\n"
		TARGET_USAGE
		"Output:\n"
		"  -f, --format FMT       json (default), libvmi (a libvmi.conf entry), isf (Volatility-3-style\n"
		"                         symbol file LibVMI reads with volatility_ist)\n"
		"  -n, --name NAME        libvmi.conf entry name (default: guest)\n"
		"      --isf-path PATH    libvmi: reference this ISF file (needed by LibVMI when KASLR is off)\n"
		"  -o, --output FILE      write there instead of stdout\n"
		"  -h, --help             this text\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace offsets --pid $(pgrep -f 'qemu.*debian12')\n"
		"  vmoffset-trace offsets --pid 4242 --format libvmi --name debian12 >> /etc/libvmi.conf\n"
		"  vmoffset-trace offsets --core guest.core --format isf -o debian12.isf.json\n"
		"  vmoffset-trace offsets --raw guest.ram --cr3 0x10c2e000,0x2a4b6000\n");
}

int cmd_offsets(int argc, char **argv)
{
	static const struct option opts[] = {
		TARGET_LONG_OPTS,
		{ "format",   required_argument, NULL, 'f' },
		{ "name",     required_argument, NULL, 'n' },
		{ "isf-path", required_argument, NULL, 'I' },
		{ "output",   required_argument, NULL, 'o' },
		{ "help",     no_argument,       NULL, 'h' },
		{},
	};
	struct target_opts topts = { .timeout_s = -1 };
	struct output_opts oopts = { .version = VMOT_PRODUCER_VERSION };
	enum output_format fmt = OUT_JSON;
	struct discovery_result res;
	struct target tg = { 0 };
	const char *outpath = NULL;
	FILE *out = stdout;
	int c, err, ret = EXIT_FAIL;

	while ((c = cmd_getopt(argc, argv, TARGET_SHORT_OPTS "f:n:o:h", opts, target_opt, &topts)) != -1) {
		switch (c) {
		case CMD_OPT_BAD: goto usage_err;
		case 'f':
			if (output_format_parse(optarg, &fmt)) {
				p_err("--format: '%s' is not json, libvmi or isf", optarg);
				goto usage_err;
			}
			break;
		case 'n': oopts.name = optarg; break;
		case 'I': oopts.isf_path = optarg; break;
		case 'o': outpath = optarg; break;
		case 'h': usage(stdout); ret = EXIT_OK; goto cleanup;
		default: cmd_bad_option(argv, usage); goto usage_err;
		}
	}
	if (cmd_no_operands(argc, argv) || target_check(&topts))
		goto usage_err;

	err = target_discover_reported(&topts, &tg, &res);
	if (err && err != -ENOENT) {
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (!err && !res.validated && !res.reason[0])
		snprintf(res.reason, sizeof(res.reason), "offsets found but not validated by observations");
	/* x86-64 only: a 32-bit kernel's shift LibVMI computes from init_task's symbol (the ISF's) */
	oopts.kaslr_known = res.kernel_cr3 && !res.paging32 && !target_kaslr_shift(tg.pm, &res, &oopts.kaslr_shift);
	if (!err) {   /* mm_struct's command-line members, cred's ids and the maps/paths members, from the processes (optional: null if not found) */
		struct discovery_opts dopts;
		struct guest_task *tasks = NULL;
		size_t ntasks = 0;

		target_discovery_opts(&topts, &dopts);
		if (!guest_tasks_list(tg.pm, &res, &dopts, &tasks, &ntasks)) {
			discover_mm_args(tg.pm, &res, tasks, ntasks);
			discover_cred_ids(tg.pm, &res, tasks, ntasks);
			discover_mm_maps(tg.pm, &res, tasks, ntasks);
		}
		free(tasks);
	}

	if (!err && res.validated) {
		ret = EXIT_OK;
		if (res.retried[0])   /* validated only on a second look: say what was looked at again */
			p_info("validated after a retry: %s", res.retried);
	} else {
		/* we abstain: the reason on stderr; the partial result only as JSON (a libvmi/isf file that
		 * cannot work is worse than none) */
		fprintf(stderr, "undetermined: %s%s%s%s\n", res.reason[0] ? res.reason : "no unique answer",
			res.retried[0] ? " (retried: " : "", res.retried, res.retried[0] ? ")" : "");
		ret = EXIT_UNDETERMINED;
		if (fmt != OUT_JSON)
			goto cleanup;
	}

	if (outpath) {
		out = fopen(outpath, "w");
		if (!out) {
			p_err("cannot write %s: %s", outpath, strerror(errno));
			out = stdout;
			ret = EXIT_FAIL;
			goto cleanup;
		}
	}
	err = output_write(out, fmt, &res, &oopts);
	if (err == -EINVAL)
		p_err("--name '%s' or --isf-path cannot be written into libvmi.conf (letters, digits, . _ -)",
		      oopts.name ? oopts.name : "guest");
	else if (err == -ENOENT)
		p_err("cannot write %s: offsets LibVMI needs are missing", output_format_name(fmt));
	else if (err)
		p_err("writing %s output: %s", output_format_name(fmt), strerror(-err));
	if (out != stdout && fclose(out) && !err) {
		p_err("cannot write %s: %s", outpath, strerror(errno));
		err = -EIO;
	}
	out = stdout;
	if (err)
		ret = EXIT_FAIL;
	goto cleanup;

usage_err:
	ret = EXIT_USAGE;
cleanup:
	target_close(&tg);
	target_opts_free(&topts);
	return ret;
}
