/*
 * The live loop shared by `live` and `record`: set up one source per VM (one --pid, several, or -a for
 * every QEMU on the host), pick the event mode (BPF capture where the host's KVM hooks see the guest, else
 * polling guest memory), then tick at the poll rate until the duration ends, Ctrl-C/SIGTERM, or every VM
 * is gone. Events and ticks go to a sink.
 */
#ifndef VMOT_TRACE_RUN_H
#define VMOT_TRACE_RUN_H
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "trace/tracer.h"

#define TRACE_MAX_VMS 16

struct trace_opts {
	pid_t pids[TRACE_MAX_VMS];
	size_t npids;
	bool all;                 /* -a */
	bool follow;              /* -a --follow: also VMs that start later (and none at first is no error) */
	double duration_s;        /* 0 = until interrupted */
	double rate_hz;           /* current-task polls per second (default 100) */
	double task_hz;           /* task-list walks per second (default 20) */
	bool no_bpf;              /* do not try the BPF capture */
	double sched_hz;          /* snapshots of the scheduler's counters per second (default 1) */
	bool hup_reopens;         /* SIGHUP sets trace_reopen (files to reopen) instead of ending the trace */
	struct vmt_opts vmt;
};

struct trace_sink {
	void (*vm_ready)(void *ctx, struct vm_tracer *t);
	void (*event)(void *ctx, const struct sess_event *ev);
	/* every tick (after the polls); a non-zero return stops the loop: -EPIPE (stdout closed) normally, any other
	 * -errno (an output file that cannot be written) as an error */
	int (*tick)(void *ctx, uint64_t now);
	void (*vm_gone)(void *ctx, struct vm_tracer *t);
	/* the scheduler's counters of every task at t->walk_ns (VMs whose counters were found), at --sched-rate
	 * and once more when tracing ends */
	void (*sched)(void *ctx, const struct sess_sched_hdr *h, const struct sess_sched_rec *r);
	/* exit statistics (BPF capture only): one call per (vm, vcpu?, reason); vcpu SESS_VCPU_NONE when the
	 * host counts them per VM only */
	void *ctx;
};

#define TRACE_MAX_WAITING 64
struct trace_state {
	struct vm_tracer vms[TRACE_MAX_VMS];
	size_t nvms;
	/* -a --follow: VMs whose set-up failed (still booting?), tried again at retry_ns */
	struct trace_waiting {
		pid_t pid;
		uint64_t retry_ns;
	} waiting[TRACE_MAX_WAITING];
	size_t nwaiting;
	uint64_t t_start;         /* CLOCK_MONOTONIC ns */
	int64_t wall_offset_ns;   /* CLOCK_REALTIME - CLOCK_MONOTONIC at start */
	char mode[200];           /* what produces the events, as printed on stderr */
	bool bpf;                 /* capture attached */
	struct capture *cap;
	char *exit_stats_json;    /* after trace_loop: {"available":bool,"reason":..,"exits":[..],"latency":[..]} */
};

extern volatile sig_atomic_t trace_interrupted, trace_reopen;

/* Parse the common options; 1 handled, 0 not ours, -EINVAL bad value (printed). */
int trace_parse_opt(struct trace_opts *o, int c, const char *arg);
/* The exit code of a traced run: trace_loop's error (a closed stdout, -EPIPE, ends it normally). */
#define trace_exit_code(err) ((err) && (err) != -EPIPE ? 1 : 0)
/* The same for cmd_getopt (ctx: struct trace_opts). */
int trace_opt(void *o, int c, const char *arg);
/* Set up every VM (errors printed; VMs that fail are skipped unless it was the only one). 0, -ESRCH (no VM
 * runs), -ENOENT (none could be set up: offsets undetermined), -EINVAL (bad options) or -errno. */
int trace_setup(const struct trace_opts *o, struct trace_state *st, const struct trace_sink *s);
/* Run until duration/interrupt/all gone. 0 or -errno. */
int trace_loop(const struct trace_opts *o, struct trace_state *st, const struct trace_sink *s);
void trace_teardown(struct trace_state *st);

#define TRACE_SHORT_OPTS "p:ad:"
#define TRACE_LONG_OPTS                                                  \
	{ "pid",      required_argument, NULL, 'p' },                    \
	{ "all",      no_argument,       NULL, 'a' },                    \
	{ "duration", required_argument, NULL, 'd' },                    \
	{ "rate",     required_argument, NULL, 0x200 },                  \
	{ "task-rate", required_argument, NULL, 0x201 },                 \
	{ "qmp",      required_argument, NULL, 0x202 },                  \
	{ "timeout",  required_argument, NULL, 0x203 },                  \
	{ "no-cache", no_argument,       NULL, 0x204 },                  \
	{ "no-bpf",   no_argument,       NULL, 0x205 },                  \
	{ "max-bytes", required_argument, NULL, 0x206 },                 \
	{ "percpu-current", required_argument, NULL, 0x20a },            \
	{ "sched-rate", required_argument, NULL, 0x207 },                \
	{ "sched-window", required_argument, NULL, 0x208 },              \
	{ "no-exact", no_argument,       NULL, 0x209 },                  \
	{ "follow",   no_argument,       NULL, 0x20b }

#define TRACE_USAGE                                                                                     \
	"VMs (one of):\n"                                                                              \
	"  -p, --pid PID          a QEMU process (repeatable: several VMs at once)\n"                   \
	"  -a, --all              every VM on this host (see `vmoffset-trace list`)\n"                  \
	"      --follow           with -a: also every VM that starts later (looked for every 2 s; a VM\n" \
	"                         still booting is retried every 10 s), and wait when none runs yet\n"  \
	"Tracing:\n"                                                                                   \
	"  -d, --duration SEC     stop after SEC seconds (default: until Ctrl-C); every duration takes a\n"   \
	"                         unit too: 500ms, 10s, 2m, 1h\n"                     \
	"      --rate HZ          per-vCPU current-task polls per second (default 100)\n"               \
	"      --task-rate HZ     task-list walks per second, for fork/exec/exit (default 20)\n"        \
	"      --qmp PATH         QMP socket (one --pid only; default: from QEMU's command line)\n"     \
	"      --timeout SEC      vCPU register sampling at setup: at most SEC (default 2), less as\n"   \
	"                         soon as the offsets validate\n"                                      \
	"      --max-bytes N      discovery read budget (default 64M)\n"                                \
	"      --no-cache         ignore the offsets cache ($VMOFFSET_CACHE/offsets)\n"                 \
	"      --no-bpf           do not try the BPF capture (KVM guests)\n"                           \
	"      --percpu-current OFF  start with this per-CPU current-task slot (from the GS base);\n"  \
	"                         it is checked against the vCPUs' CR3s and replaced when refuted\n"   \
	"Exact figures (the guest scheduler's own counters: CPU time, voluntary/involuntary switches):\n" \
	"      --sched-window SEC how long to watch the guest to find them (default 1)\n"              \
	"      --sched-rate HZ    snapshots of them per second (default 1)\n"                          \
	"      --no-exact         do not look for them (switches and times are then samples only)\n"

#endif
