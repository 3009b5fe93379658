/*
 * The guest options every discovery subcommand takes (offsets, ps, and live/record through trace/), so that
 * every command names a guest the same way: a getopt table fragment, usage lines and their parser into
 * struct target_opts (target/target.h).
 */
#ifndef VMOT_CMD_TARGET_OPTS_H
#define VMOT_CMD_TARGET_OPTS_H
#include <getopt.h>
#include "target/target.h"

/* getopt codes of the long-only options (past any character) */
enum { TOPT_CR3 = 0x100, TOPT_QMP, TOPT_TIMEOUT, TOPT_MAX_BYTES, TOPT_RAW_BASE };

/* Source options, for a subcommand's getopt_long table and short-option string. */
#define TARGET_SHORT_OPTS "p:c:r:"
#define TARGET_LONG_OPTS                                                   \
	{ "pid",       required_argument, NULL, 'p' },                     \
	{ "core",      required_argument, NULL, 'c' },                     \
	{ "raw",       required_argument, NULL, 'r' },                     \
	{ "raw-base",  required_argument, NULL, TOPT_RAW_BASE },           \
	{ "cr3",       required_argument, NULL, TOPT_CR3 },                \
	{ "qmp",       required_argument, NULL, TOPT_QMP },                \
	{ "timeout",   required_argument, NULL, TOPT_TIMEOUT },            \
	{ "max-bytes", required_argument, NULL, TOPT_MAX_BYTES }

/* Usage lines for those options. */
#define TARGET_USAGE                                                                                   \
	"Source (exactly one):\n"                                                                       \
	"  -p, --pid PID          a running QEMU process (guest RAM read with process_vm_readv)\n"      \
	"  -c, --core FILE        an ELF core (virsh dump --memory-only, QEMU dump-guest-memory)\n"     \
	"  -r, --raw FILE         a raw physical-memory image (x86: needs --cr3; arm64: the kernel's\n"  \
	"                         root is found in it)\n"                                              \
	"      --raw-base PA      guest-physical address of its first byte (default 0; an arm64 virt\n" \
	"                         machine's RAM starts at 0x40000000)\n"                               \
	"Observations:\n"                                                                               \
	"      --cr3 HEX[,HEX...] guest CR3 values seen (repeatable); PCID/PTI bits are dropped\n"      \
	"      --qmp PATH         QEMU monitor socket to sample vCPU CR3/GS base from (with --pid it\n"  \
	"                         is found from QEMU's command line when not given)\n"                  \
	"      --timeout SEC      sample observations for at most SEC (default 2): sampling stops as\n"   \
	"                         soon as the offsets validate\n"                        \
	"      --max-bytes N      budget of guest bytes discovery may read (default 64M; K/M/G)\n"

/* Handle one getopt result: 1 if it was a target option, 0 if not ours, -EINVAL (message printed)
 * for a bad value. */
int target_parse_opt(struct target_opts *t, int c, const char *arg);
/* The same for cmd_getopt (ctx: struct target_opts). */
int target_opt(void *t, int c, const char *arg);
/* Exactly one source; --raw-base only with --raw. -EINVAL with a message otherwise. */
int target_check(const struct target_opts *t);
/* target_discover as a command runs it: every error but "undetermined" (-ENOENT, res->reason says why) is
 * reported here in one line (or was, by the source that failed). Returns what target_discover did. */
int target_discover_reported(const struct target_opts *t, struct target *tg, struct discovery_result *res);

/* For commands that read processes (ps, maps): target_discover_reported, a warning when not validated, then the
 * task list. 0 with *tasks (the caller frees), else the exit code (EXIT_UNDETERMINED, EXIT_FAIL), said in one
 * line. */
int target_open_tasks(const struct target_opts *t, struct target *tg, struct discovery_result *res,
		      struct guest_task **tasks, size_t *ntasks);

#endif
