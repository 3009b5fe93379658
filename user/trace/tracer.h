/*
 * Live event source for one VM (the "poll" source of `live` and `record`):
 *   - setup: open the QEMU process, sample vCPU registers over QMP (CR3 + per-CPU GS base per vCPU),
 *     take task_struct offsets from the cache (trace/cache.h, keyed by kernel fingerprint) after checking
 *     them against this guest's own observed switches, or discover them (and fill the cache);
 *   - switches: each tick reads every vCPU's current-task pointer (GS base + percpu_current) from guest
 *     memory; a change is a SWITCH event;
 *   - fork/exec/exit: every task tick the task list is walked and diffed against the previous walk: a new
 *     pid is a fork (with its ppid), a new mm for the same task an exec, a new comm alone a rename, a task
 *     whose mm went away (exit_mm) or that vanished an exit;
 *   - lost: the guest's pid allocator (discovery/pidalloc.h), found over the first walks, is read before
 *     every walk and at every current-task tick (a move triggers a walk at once); pids it handed out that no
 *     walk saw are LOST events (trace/lost.h).
 * Events go to a callback as struct sess_event (session/session.h), tagged with the VM index.
 */
#ifndef VMOT_TRACE_TRACER_H
#define VMOT_TRACE_TRACER_H
#include <stdbool.h>
#include <stdint.h>
#include "discovery/discover.h"
#include "discovery/pidalloc.h"
#include "discovery/sched.h"
#include "session/session.h"
#include "target/target.h"
#include "target/vms.h"
#include "trace/lost.h"
#include "trace/slot.h"

typedef void (*vmt_emit_fn)(void *ctx, const struct sess_event *ev);

struct vmt_opts {
	double sample_s;          /* QMP sampling time at setup (default 2) */
	uint64_t max_bytes;       /* discovery budget (0 default) */
	const char *qmp;          /* QMP socket (NULL: from the command line) */
	bool no_cache;            /* neither read nor write the offsets cache */
	bool progress;            /* progress lines on stderr */
	bool percpu_current_set;  /* --percpu-current: the slot to start with (still checked) */
	int64_t percpu_current;
	double sched_window_s;    /* window to find the scheduler's counters (0: 1 s; < 0: do not look) */
};

struct vmt_task {             /* what the previous walk saw of one task */
	uint64_t addr, mm;
	int32_t pid, tgid, ppid;
	char comm[16];
	bool kthread, exited;
	uint8_t exec_wait;        /* walks that saw its new mm before exec had set up its arguments */
	bool sched_ok;            /* the scheduler's counters below were read (struct vm_tracer.sched) */
	uint64_t sum_exec_ns, nvcsw, nivcsw;
};

#define VMT_EXEC_ARGV_MAX 4096   /* argv bytes an EXEC event carries (a longer one is marked truncated) */

struct vm_tracer {
	uint32_t index;           /* VM index in events */
	struct vm_info info;
	struct target tg;
	struct discovery_result res;
	struct vmem vm;
	/* kernel fingerprint (trace/cache.h) */
	uint64_t fingerprint;
	char banner[320];
	uint64_t text_base;       /* runtime _text (KASLR-shifted), 0 unknown */
	bool cached;              /* offsets came from the cache (and were validated here) */
	struct sched_result sched; /* the scheduler's per-task counters (exact CPU time and switches) */
	struct sched_window *schedw; /* the window looking for them, NULL none (vmt_sched_tick) */
	unsigned sched_windows, sched_idle_windows;   /* windows that left them undetermined */
	uint64_t sched_next, sched_first;             /* next window; first one even without a confirmed slot */
	uint64_t walk_ns;         /* the tick of the last task walk (its `now`) */
	uint64_t counters_ns;     /* when the scheduler counters in tasks[] were read: later than walk_ns by the
				   * tick's slot check (a QMP round, 100s of ms on a loaded host) and the walk */
	char cache_note[160];
	/* per vCPU */
	uint32_t nvcpu;
	struct vmt_vcpu {
		uint32_t id;
		uint64_t gs;          /* per-CPU area: the kernel GS base (x86-64), gdt_page's copy (32-bit) */
		uint64_t hint;        /* what the observation held: the GS base, or a 32-bit vCPU's GDT base */
		uint64_t task;        /* current task_struct */
		int32_t pid;
		bool known;
	} vcpu[VM_MAX_VCPUS];
	struct slot_state slot;   /* which per-CPU slot is the current-task pointer (trace/slot.h) */
	/* previous walk */
	struct vmt_task *tasks;
	size_t ntasks;
	bool have_walk;
	/* counters of the tracing (they survive a guest restart, unlike everything about the kernel) */
	struct vmt_counters {
		uint64_t polls, walks, walk_errors, read_errors, switches, forks, execs, exits, renames, restarts;
		uint64_t lost, lost_events, lost_rebaselines, alloc_walks;
	} ctr;
	/* pid allocator and lost accounting (reset with the kernel) */
	struct pidalloc pa;
	struct lost_acct lost;
	uint32_t alloc_seen;      /* allocator (next pid) read before the last walk */
	bool alloc_valid;
	bool wrap_said;
	bool gone;                /* QEMU went away */
	/* guest kernel restarts (reboot: a new KASLR base, init_task elsewhere) */
	struct vmt_opts opts;     /* as opened: rediscovery opens the VM again with them */
	unsigned suspect;         /* consecutive checks that found the kernel gone */
	char qmp_path[108];       /* QEMU's monitor socket, "" unknown */
	bool restarting;          /* the kernel is gone: rediscovering */
	uint64_t next_attempt;    /* when to try rediscovery again */
	unsigned attempts;
	uint64_t old_init_task;
	/* an EXEC event's argv and ids, read while it is emitted (vmt_exec_details); mm_struct's arg members and
	 * cred's ids are found on the processes at set-up */
	struct vmt_exec {
		bool valid, have_ids, truncated;
		uint32_t ids[4];      /* uid, gid, euid, egid */
		size_t argv_len;      /* 0: no argv read */
		char argv[VMT_EXEC_ARGV_MAX + 1];
	} exec;
};

/* The details of the EXEC event being emitted by t (from inside the event callback), NULL otherwise. */
const struct vmt_exec *vmt_exec_details(const struct vm_tracer *t);
/* Find mm_struct's command-line members and cred's ids on the guest's processes (for EXEC details). */
void vmt_exec_members(struct vm_tracer *t);

/* Open and set up the VM of QEMU pid (discovery or cache). 0, -ENOENT (offsets undetermined or no
 * per-CPU current task), -errno; the reason is printed. */
int vmt_open(struct vm_tracer *t, uint32_t index, pid_t pid, const struct vmt_opts *o);
void vmt_close(struct vm_tracer *t);
/* Read every vCPU's current task; SWITCH events for changes. -ESRCH when QEMU is gone. */
int vmt_poll_current(struct vm_tracer *t, uint64_t now_ns, vmt_emit_fn emit, void *ctx);
/* While mm/active_mm are an interchangeable pair: watch the vCPUs' current tasks for up to max_ns (between
 * polls) for a kernel thread running, which settles it (stderr says so, the offsets cache follows). */
void vmt_watch_pairs(struct vm_tracer *t, uint64_t max_ns);
/* Walk and diff the task list; FORK/EXEC/RENAME/EXIT events. The first walk is the baseline (no
 * events). -ESRCH when QEMU is gone; a torn walk (the guest changed the list under us) is skipped.
 * When init_task no longer holds "swapper" (the guest rebooted: a new KASLR base) every known task
 * EXITs, a RESTART follows, and the VM is rediscovered (at most once a second) until that succeeds:
 * returns VMT_REDISCOVERED then (the caller announces the new identity) and the new kernel's tasks
 * come as FORKs. */
#define VMT_REDISCOVERED 1
int vmt_poll_tasks(struct vm_tracer *t, uint64_t now_ns, vmt_emit_fn emit, void *ctx);
/* Read the pid allocator (one 4-byte read): true when it moved since the last walk, i.e. a walk is due
 * now (a process may live shorter than the task-walk period). */
bool vmt_alloc_moved(struct vm_tracer *t);
/* The VM block JSON of a session (identity, offsets, fingerprint); malloc'd. */
char *vmt_identity_json(const struct vm_tracer *t);
/* After the regular vmt_poll_current of a tick (evenly spread polls): feed the window that looks for the
 * scheduler's counters, open one when due. True when they were just found (the VM's identity changed). */
bool vmt_sched_tick(struct vm_tracer *t, uint64_t now_ns);
/* The counters are still being looked for (not found, windows left). */
bool vmt_sched_pending(const struct vm_tracer *t);
/* "" when the scheduler's counters were found, else "exact figures undetermined: <why>". */
const char *vmt_sched_note(const struct vm_tracer *t);
/* Counters JSON object for the COUNTERS block; malloc'd. */
char *vmt_counters_json(const struct vm_tracer *t);

uint64_t vmt_now_ns(void);
/* pid/tgid/ppid/comm/mm of the task at addr, read directly (a task the last walk did not see). -EFAULT
 * unreadable, -EINVAL when it does not read back like a task (empty name, ids out of range, mm not a kernel
 * pointer). */
#define PID_MAX_LIMIT 4194304   /* the kernel's own limit (4 Mi pids on 64-bit) */
int vmt_read_task(struct vm_tracer *t, uint64_t addr, struct vmt_task *k);
/* The per-CPU current-task slot changed (trace/slot.c): vCPUs' tasks are news again; cache updated. */
void vmt_slot_changed(struct vm_tracer *t);
#define SLOT_SETUP_S 0.6   /* set-up time for confirming the slot; the rest happens while tracing */
/* Progress line on stderr when it is a terminal ("\r" updated; done = finish the line). */
void vmt_progress(bool on, bool done, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
