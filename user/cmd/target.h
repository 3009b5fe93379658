/*
 * The guest a subcommand looks at: one memory source (--pid, --core or --raw) plus the CR3/GS-base
 * observations gathered for it (--cr3, ELF core notes, QMP sampling; BPF capture later). Shared by
 * `offsets`, `ps` and whatever else runs discovery, so every command takes the same options.
 */
#ifndef VMOT_CMD_TARGET_H
#define VMOT_CMD_TARGET_H
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "discovery/discover.h"
#include "mem/observe.h"
#include "mem/physmem.h"

/* getopt codes of the long-only options (past any character) */
enum { TOPT_CR3 = 0x100, TOPT_QMP, TOPT_TIMEOUT, TOPT_MAX_BYTES };

/* Source options, for a subcommand's getopt_long table and short-option string. */
#define TARGET_SHORT_OPTS "p:c:r:"
#define TARGET_LONG_OPTS                                                   \
	{ "pid",       required_argument, NULL, 'p' },                     \
	{ "core",      required_argument, NULL, 'c' },                     \
	{ "raw",       required_argument, NULL, 'r' },                     \
	{ "cr3",       required_argument, NULL, TOPT_CR3 },                \
	{ "qmp",       required_argument, NULL, TOPT_QMP },                \
	{ "timeout",   required_argument, NULL, TOPT_TIMEOUT },            \
	{ "max-bytes", required_argument, NULL, TOPT_MAX_BYTES }

/* Usage lines for those options. */
#define TARGET_USAGE                                                                                   \
	"Source (exactly one):\n"                                                                       \
	"  -p, --pid PID          a running QEMU process (guest RAM read with process_vm_readv)\n"      \
	"  -c, --core FILE        an ELF core (virsh dump --memory-only, QEMU dump-guest-memory)\n"     \
	"  -r, --raw FILE         a raw physical-memory image (needs --cr3)\n"                          \
	"Observations:\n"                                                                               \
	"      --cr3 HEX[,HEX...] guest CR3 values seen (repeatable); PCID/PTI bits are dropped\n"      \
	"      --qmp PATH         QEMU monitor socket to sample vCPU CR3/GS base from (with --pid it\n"  \
	"                         is found from QEMU's command line when not given)\n"                  \
	"      --timeout SEC      sample observations for at most SEC (default 2): sampling stops as\n"   \
	"                         soon as the offsets validate\n"                        \
	"      --max-bytes N      budget of guest bytes discovery may read (default 64M; K/M/G)\n"

struct target_opts {
	pid_t pid;
	const char *core;
	const char *raw;
	const char *qmp;
	uint64_t *cr3s;           /* --cr3 values, in order */
	size_t ncr3;
	double timeout_s;         /* observation sampling time; < 0 = default */
	uint64_t max_bytes;       /* discovery budget; 0 = default */
};

struct target {
	struct physmem *pm;
	struct obs_set obs;
	char desc[128];           /* "QEMU pid 1234", "core FILE", ... for messages */
	double sampled_s;         /* QMP sampling time spent so far */
};

/* Sampling a live guest stops as soon as the evidence suffices: a first window of at least
 * TARGET_FIRST_SAMPLE_S (until every vCPU was seen with its per-CPU base and two CR3 roots were seen); then,
 * only while discovery is undetermined or not validated, slices of TARGET_RETRY_SAMPLE_S, each followed by
 * discovery again, until the whole sampling time (--timeout, default TARGET_DEFAULT_TIMEOUT_S) is spent. */
#define TARGET_DEFAULT_TIMEOUT_S 2.0
#define TARGET_FIRST_SAMPLE_S    0.2
#define TARGET_RETRY_SAMPLE_S    0.3

/* Handle one getopt result: 1 if it was a target option, 0 if not ours, -EINVAL (message printed)
 * for a bad value. */
int target_parse_opt(struct target_opts *t, int c, const char *arg);
/* Exactly one source; --raw needs --cr3. -EINVAL with a message otherwise. */
int target_check(const struct target_opts *t);
/* Open the source and gather observations (may take timeout_s for sampling). 0 or -errno (message
 * printed). target_close() is safe on a zeroed or failed target. */
int target_open(const struct target_opts *t, struct target *tg);
void target_close(struct target *tg);
void target_opts_free(struct target_opts *t);

/* open + discover_offsets in one: returns discover_offsets' result (0, -ENOENT undetermined, -errno).
 * If the target could not be opened tg->pm is NULL (and the error printed): test that before reading
 * -ENOENT as "undetermined" (a missing file is -ENOENT too). */
int target_discover(const struct target_opts *t, struct target *tg, struct discovery_result *res);
void target_discovery_opts(const struct target_opts *t, struct discovery_opts *o);
/* After a first discover_offsets() (err its result) on a live guest: while undetermined or not validated
 * and sampling time is left, sample a slice more and discover again. Roots left unexplained that the new
 * slice does not see again (their process exited between observation and reading) are dropped rather than
 * counted against the answer; res->retried says what was retried. Returns the last discovery's result. */
int target_discover_retry(const struct target_opts *t, struct target *tg, const struct discovery_opts *d,
			  struct discovery_result *res, int err);

/* KASLR shift as LibVMI computes it (get_kaslr_offset_ia32e): the first mapped 2 MiB page of the kernel
 * image at or above 0xffffffff81000000, minus that address. 0 or -ENOENT. */
int target_kaslr_shift(struct physmem *pm, const struct discovery_result *res, uint64_t *shift);

/* BPF observations of a live KVM guest (target_capture.c): begin before sampling, end drains into obs.
 * begin returns NULL when this host/guest offers none. */
struct capture;
struct capture *target_capture_begin(pid_t pid);
void target_capture_end(struct capture *cap, struct obs_set *obs);

/* Parse "123", "64K", "64M", "1G" → bytes. -EINVAL when malformed. */
int parse_size(const char *s, uint64_t *out);

#endif
