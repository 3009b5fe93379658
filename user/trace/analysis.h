/*
 * The one analysis path shared by `live` and `report` (perf kvm stat's shape): every event, from the
 * live sources or from a session file, goes through an_event() → per-vCPU state (who runs since when) and
 * per-process counters → printers. Only the event source differs between the two commands.
 */
#ifndef VMOT_TRACE_ANALYSIS_H
#define VMOT_TRACE_ANALYSIS_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "common/json_writer.h"
#include "session/session.h"

#define AN_MAX_VMS 64

struct an_entry {                /* one (vm, vcpu, pid); vcpu = SESS_VCPU_NONE for the process totals */
	uint32_t vm, vcpu;
	int32_t pid, tgid, ppid;
	char comm[16];
	uint64_t switches_in, time_ns;         /* runs started on a vCPU, time attributed from switches */
	uint64_t iv_switches, iv_time_ns;      /* same, current interval (-i) */
	uint32_t forks, execs, renames, exits;
	uint64_t first_ns, last_ns;
	bool used;
};

struct an_vcpu {
	uint32_t vm, vcpu;
	bool running;                /* a switch was seen: pid runs since `since` */
	int32_t pid;
	int32_t tgid;                /* of pid, and its comm, as the switch to it said */
	char comm[16];
	uint64_t since;
	uint64_t switches, iv_switches;
};

struct an_vm {
	bool used;
	char name[128];
	int32_t pid;
	uint32_t nvcpus;
	/* the guest scheduler's own counters (SB_SCHED snapshots): exact where switch events are samples */
	uint32_t sched_snaps;        /* snapshots seen */
	uint64_t sched_first_ns, sched_last_ns, sched_iv_ns;   /* first, last, last before the interval */
	char sched_note[200];        /* why there are none ("undetermined: ...") */
	char uuid[37];               /* QEMU's -uuid, "" unknown (JSON events: "vm_uuid") */
	char boot_id[17];            /* the guest kernel's boot identity, "" unknown (JSON events: "boot_id") */
};

/* One task's scheduler counters: at first sight (0 for a task born after the first snapshot), latest, and at
 * the start of the current interval. */
enum { AN_SUM_EXEC, AN_NVCSW, AN_NIVCSW, AN_NCTR };
struct an_sched_task {
	uint32_t vm;
	int32_t tid, tgid;
	uint64_t task;
	char comm[16];
	uint64_t base[AN_NCTR], last[AN_NCTR], iv_base[AN_NCTR];
	bool used;
};

/* Exact figures of one process (a tgid's threads summed) over the window or the interval. */
struct an_exact {
	uint32_t vm;
	int32_t tgid;
	char comm[16];
	uint64_t cpu_ns, nvcsw, nivcsw;
	uint32_t threads;
};

struct analysis {
	struct an_entry *tab;        /* open addressing on (vm, vcpu, pid) */
	size_t cap, n;
	struct an_vcpu vcpu[256];
	size_t nvcpu;
	struct an_vm vms[AN_MAX_VMS];
	uint64_t t_first, t_last;    /* first/last event time */
	uint64_t count[SEV_NR];
	uint64_t lost_pids;          /* sum of the LOST events' ranges */
	uint64_t iv_start;
	struct an_sched_task *st;    /* open addressing on (vm, task, tid) */
	size_t st_cap, st_n;
	/* Optional: called with every run as it is attributed (s->pid, s->tgid, s->comm ran on s->vm/s->vcpu
	 * from `from` to `to`, to > from), before the vCPU state moves on. A run is cut where the next switch
	 * of that vCPU, a restart of its VM or an_close_runs() falls (timechart, report --format trace). */
	void (*on_run)(void *ctx, const struct an_vcpu *s, uint64_t from, uint64_t to);
	void *on_run_ctx;
};

void an_init(struct analysis *a);
void an_free(struct analysis *a);
void an_set_vm(struct analysis *a, uint32_t index, const char *name, int32_t pid, uint32_t nvcpus);
const char *an_vm_name(const struct analysis *a, uint32_t index);
void an_set_vm_identity(struct analysis *a, uint32_t index, const char *uuid, const char *boot_id);
void an_event(struct analysis *a, const struct sess_event *ev);
/* Attribute the running intervals up to t (end of recording / of an interval). */
void an_close_runs(struct analysis *a, uint64_t t);

/* A snapshot of one VM's scheduler counters (SB_SCHED). */
void an_sched(struct analysis *a, const struct sess_sched_hdr *h, const struct sess_sched_rec *r);
/* Why a VM has no exact figures (shown in their place). */
void an_set_sched_note(struct analysis *a, uint32_t vm, const char *note);
/* Per-process exact figures of one VM over the whole window (interval = false) or the current interval,
 * most CPU time first; caller frees. NULL with *n = 0 when the VM has fewer than two snapshots. */
struct an_exact *an_exact_list(const struct analysis *a, uint32_t vm, bool interval, size_t *n);
/* The window the exact figures cover, in seconds (0: none). */
double an_exact_window_s(const struct analysis *a, uint32_t vm, bool interval);

/* One event as a line: human columns or a JSON object (one line). t0 is the session start (monotonic),
 * wall_offset_ns maps monotonic to wall-clock time (realtime - monotonic at start). */
/* The envelope of JSON events that leave the process (live --json, --output): schema version, a sequence
 * number continuous over a run, UTC time, host, and the VM's UUID and guest boot identity. */
#define AN_EVENT_SCHEMA 1
struct an_envelope {
	const char *host;
	uint64_t seq;                /* of the last event written (the next one gets seq + 1) */
};
struct an_line_opts {
	bool json;
	uint64_t t0;
	int64_t wall_offset_ns;
	struct an_envelope *env;     /* NULL: JSON events without the envelope */
};
void an_print_header(FILE *f, const struct an_line_opts *o);
/* What an EXEC event ran: its argv (NUL-separated, as /proc/PID/cmdline) and ids, where they were read. */
struct an_exec {
	const char *argv;         /* NULL: not read */
	size_t argv_len;
	bool argv_truncated;      /* longer than the event carries */
	bool have_ids;
	uint32_t uid, euid;
};
/* One event line or JSON object; x: an EXEC event's details ("argv", "uid", "euid"), NULL when none. */
void an_print_event(FILE *f, json_writer_t *w, const struct analysis *a, const struct sess_event *ev,
		    const struct an_line_opts *o, const struct an_exec *x);

/* -i: per VM and vCPU, switches/s and the top processes of the interval [iv_start, now); resets it. */
void an_print_interval(FILE *f, json_writer_t *w, struct analysis *a, uint64_t now, const struct an_line_opts *o,
		       unsigned top);

enum an_sort { AN_SORT_TIME, AN_SORT_SWITCHES, AN_SORT_PID, AN_SORT_COMM, AN_SORT_VM };
int an_sort_parse(const char *s, enum an_sort *k);
/* Entries of one kind (process totals when per_vcpu is false), sorted; caller frees. */
struct an_entry **an_entries(const struct analysis *a, bool per_vcpu, enum an_sort key, size_t *n);

#endif
