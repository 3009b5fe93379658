/*
 * What ran where, as a picture's data (issue 18): the runs of every vCPU (a task on a vCPU from one switch to
 * the next, from the analysis' own attribution: an_event → on_run) and the process lifecycle events of a
 * session, cut to a window and to one VM if asked. timechart_svg.c draws it; trace_event.c writes the same
 * runs as Trace Event JSON for Perfetto and chrome://tracing.
 *
 * Feed events in time order (file order of a session); runs of pid 0 (the idle tasks) are not kept: idle is
 * what no run covers. Times are CLOCK_MONOTONIC ns as in the session; t0 is the session's start (its header's
 * t_start_ns, else the first event), and --from/--to are relative to it.
 */
#ifndef VMOT_OUTPUT_TIMELINE_H
#define VMOT_OUTPUT_TIMELINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "session/session.h"
#include "trace/analysis.h"

#define TL_MAX_VCPUS 64                          /* per VM (VMOT_MAX_VCPUS); runs on higher vCPUs are not kept */
#define TL_LANE(vm, vcpu) ((uint16_t)((vm) * TL_MAX_VCPUS + (vcpu)))

struct tl_thread {               /* one (vm, pid, tgid, comm) that ran: what a run's tooltip names */
	uint32_t vm;
	int32_t pid, tgid;
	char comm[16];
	uint32_t proc;           /* index into tl->procs */
};
struct tl_tkey {                 /* hash slot: a thread's key and its index in tl->thr_list */
	uint32_t vm;
	int32_t pid, tgid;
	char comm[16];
	uint32_t idx;
	bool used;
};
struct tl_pkey {                 /* hash slot: a process's key and its index in tl->procs */
	uint32_t vm;
	int32_t tgid;
	uint32_t idx;
	bool used;
};

struct tl_proc {                 /* one process, (vm, tgid): one colour */
	uint32_t vm;
	int32_t tgid;
	char comm[16];           /* its leader's (pid == tgid), else its first thread's */
	bool leader_named;
	uint64_t run_ns;         /* on a vCPU inside the window */
	uint64_t runs;
};

struct tl_run {                  /* one run, clipped to the window */
	uint64_t start, end;
	uint32_t thr;            /* index into thr_list */
	uint16_t lane;           /* TL_LANE(vm, vcpu) */
};

struct tl_mark {                 /* a lifecycle event (fork, exec, rename, exit, restart, lost) */
	uint64_t t;
	uint32_t vm;
	uint16_t type;           /* enum sess_ev_type */
	int32_t pid, tgid, ppid;
	int32_t last;            /* LOST: the range's last pid */
	char comm[16];
};

struct tl_vm {
	bool known;              /* a VM block (or JSON-lines vm) named it */
	bool seen;               /* events of it were read */
	bool selected;           /* shown (every VM without --vm) */
	char name[128];
	int32_t pid;             /* QEMU's */
	uint32_t nvcpus;         /* from its VM block; raised by the vCPUs seen */
};

struct tl_opts {
	const char *vm;          /* NULL: every VM; else a VM name or QEMU pid */
	bool have_from, have_to;
	uint64_t from_ns, to_ns; /* relative to t0 */
};

struct timeline {
	struct tl_opts o;
	struct analysis an;
	bool have_t0;
	uint64_t t0;             /* session start */
	uint64_t t_first, t_last;   /* first/last event read (every VM: runs end at the last, as in report) */
	uint64_t begin, end;     /* the window, absolute (set by tl_finish) */
	struct tl_vm vms[AN_MAX_VMS];
	struct tl_tkey *thr;     /* open addressing on (vm, pid, tgid, comm) */
	size_t thr_cap, thr_n;
	struct tl_thread *thr_list;   /* thr_n of them, by index */
	size_t thr_list_cap;
	struct tl_pkey *pk;      /* open addressing on (vm, tgid) */
	size_t pk_cap, pk_n;
	struct tl_proc *procs;
	size_t nprocs, procs_cap;
	struct tl_lane {         /* a lane's runs, in time order (the analysis attributes a vCPU's runs in order) */
		struct tl_run *runs;
		size_t n, cap;
	} *lanes;                /* AN_MAX_VMS * TL_MAX_VCPUS, by TL_LANE(vm, vcpu); NULL until a run is kept */
	size_t nruns;
	uint32_t tcache[1024];   /* thread index + 1 by a hash of (vm, pid): most runs skip the hash table */
	struct tl_mark *marks;   /* in time order */
	size_t nmarks, marks_cap;
	uint64_t events;         /* events read (selected VMs) */
	uint64_t runs_dropped;   /* runs on vCPUs past TL_MAX_VCPUS */
	int err;                 /* -ENOMEM once an allocation failed */
};

void tl_init(struct timeline *tl, const struct tl_opts *o);
void tl_free(struct timeline *tl);
void tl_set_t0(struct timeline *tl, uint64_t t0);
/* A VM block: index, name, QEMU pid, vCPUs. Selected when no --vm was given or it matches name or pid. */
void tl_vm(struct timeline *tl, uint32_t index, const char *name, int32_t pid, uint32_t nvcpus);
/* One event, in time order. */
void tl_event(struct timeline *tl, const struct sess_event *ev);
/* After the last event: close the runs at the last event, decide the window, sum the processes' time. 0, or
 * -ENOMEM. */
int tl_finish(struct timeline *tl);
/* True when the --vm given matched some VM (always true without --vm). */
bool tl_vm_matched(const struct timeline *tl);
/* Does --vm's value name this VM (its name, or its QEMU pid as a number)? */
bool tl_vm_matches(const char *want, const char *name, int32_t pid);

/* The runs of one lane (*n of them), in time order. */
const struct tl_run *tl_lane_runs(const struct timeline *tl, uint16_t lane, size_t *n);

#endif
