/* What every subcommand shares; see cmd.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include "cmd/cmd.h"
#include "common/log.h"

int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       int (*parse)(void *ctx, int c, const char *arg), void *ctx)
{
	int c, err;

	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		err = parse(ctx, c, optarg);
		if (err < 0)
			return CMD_OPT_BAD;
		if (!err)
			return c;
	}
	return -1;
}

int cmd_no_operands(int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	p_err("unexpected argument '%s'", argv[optind]);
	return -EINVAL;
}

int cmd_bad_option(char **argv, void (*usage)(FILE *f))
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	/* getopt's own message is off (opterr = 0, main.c): one line here, as JSON on stdout in JSON mode */
	if (optopt && optopt != '?')
		p_err("%s: option '-%c' is unknown or lacks its value (see vmoffset-trace %s --help)", argv[0],
		      optopt, argv[0]);
	else
		p_err("%s: option '%s' is unknown or lacks its value (see vmoffset-trace %s --help)", argv[0], arg,
		      argv[0]);
	if (!log_json)
		usage(stderr);
	return EXIT_USAGE;
}
