/* One file per subcommand under user/cmd/; each exports cmd_<name>(argc, argv) returning an exit code. */
#ifndef VMOT_CMD_H
#define VMOT_CMD_H
#include <stdio.h>

int cmd_offsets(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_maps(int argc, char **argv);
int cmd_live(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_timechart(int argc, char **argv);

/* A getopt error (an unknown option, a missing value): one error line (JSON in JSON mode), the usage on
 * stderr otherwise. Returns EXIT_USAGE. */
int cmd_bad_option(char **argv, void (*usage)(FILE *f));
/* getopt_long with the options a shared parser takes (target or trace options: parse returns 1 handled, 0
 * not its, < 0 a bad value it printed) consumed here: the next option left to the command, -1 at the end,
 * CMD_OPT_BAD after a bad value. */
#define CMD_OPT_BAD (-2)
struct option;
int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       int (*parse)(void *ctx, int c, const char *arg), void *ctx);
/* After getopt: a command takes no operands. 0, or -EINVAL with one error line for the first one. */
int cmd_no_operands(int argc, char **argv);

/* The session file record writes and report reads when none is given (perf's perf.data). */
#define CMD_DEFAULT_SESSION "vmot.data"
#define VMOT_VERSION "0.1.0"      /* --version, build_info, the Debian package (debian/changelog) */

/* Exit codes shared by every subcommand. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,          /* error (bad input, missing privilege, source gone) */
	EXIT_UNDETERMINED = 2,  /* offsets: constraints left more than one answer; we abstain */
	EXIT_USAGE = 64,
};

#endif
