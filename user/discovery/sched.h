/*
 * The scheduler's own per-task counters, found without a profile (issue 11): the cumulative on-CPU time
 * (task_struct.se.sum_exec_runtime, ns), the voluntary and involuntary switch counts (nvcsw, nivcsw) and,
 * found along the way, sched_info.pcount (times the task was switched in).
 *
 * They are found from behaviour over a short window: every task's task_struct is read at the start, middle
 * and end while each vCPU's current task is sampled by the tracer's polls. A u64 is the runtime when it never
 * decreases, grows by about the time the samples saw the task on a vCPU (task by task), its values are not
 * tick-quantised (utime/stime), and among such fields it is the one whose values are small (vruntime and
 * clocks sit near a shared large value) and never below the others (prev_sum_exec_runtime lags it). The
 * switch counts are two counters that stay still for tasks that did not run and whose increments add up to a
 * third one's (pcount: every switch-out is followed by a switch-in, so they differ by at most one); of the
 * two, nvcsw is the one kernel threads mostly use (they block, they are rarely preempted). Anything short of
 * that is "undetermined" with the reason; no offset is ever assumed.
 */
#ifndef VMOT_DISCOVERY_SCHED_H
#define VMOT_DISCOVERY_SCHED_H
#include <stdbool.h>
#include <stdint.h>
#include "discovery/discover.h"

enum sched_field { SF_SUM_EXEC, SF_NVCSW, SF_NIVCSW, SF_PCOUNT, SF_NR };
extern const char *const sched_field_names[SF_NR];   /* "sum_exec_runtime", "nvcsw", "nivcsw", "pcount" */

struct sched_result {
	struct offset_result f[SF_NR];   /* task_struct offsets; found=false with the reason in how */
	bool found;                      /* sum_exec_runtime, nvcsw and nivcsw all found */
	char reason[200];                /* why not found (empty when found) */
	double window_s;                 /* length of the observation window */
	uint32_t ntasks, rounds;         /* tasks read at every snapshot; sampling rounds */
};

/* What one window showed: the pure input of sched_decide (unit-tested without guest memory). */
struct sched_obs {
	uint32_t nsnap, ntasks, span;    /* snapshots, tasks present in every one, bytes read per task (x8) */
	const uint64_t *t_ns;            /* [nsnap] host time of each snapshot */
	const uint8_t *bytes;            /* [nsnap * ntasks * span]: task i of snapshot k at (k * ntasks + i) * span */
	const uint32_t *samples;         /* [ntasks] sampling rounds that found the task current on some vCPU */
	const uint32_t *outs;            /* [ntasks] times a vCPU was seen to stop running it */
	const bool *kthread;             /* [ntasks] no mm */
	const bool *idle;                /* [ntasks] a per-CPU idle task (pid 0): never counted */
	uint32_t nvcpu, rounds;          /* rounds: sampling passes over every vCPU between first and last snapshot */
};

/* Decide the offsets from a window's observations. 0 when sum_exec_runtime, nvcsw and nivcsw were all found,
 * -ENOENT otherwise (res->reason says why; what was found is kept). */
int sched_decide(const struct sched_obs *o, struct sched_result *res);

/* A window of observation that the caller feeds from its own polls, so that looking for the counters never
 * stops a trace: open it (a task walk and the first snapshot), give it every vCPU's current task at each poll,
 * step it at each poll (the middle and last snapshots are taken when due, CLOCK_MONOTONIC), and it decides
 * once the window (window_s, 0: 1 s) is over. Reads are bounded: at most 512 tasks x 8 KiB per snapshot. */
struct sched_window;

/* 0 with *out open (res->reason says it is being looked for), -ENOENT (res->reason), -errno. The window
 * keeps pm and vm (not r): they must outlive it. */
int sched_window_open(struct physmem *pm, struct vmem *vm, const struct discovery_result *r, uint32_t nvcpu,
		      double window_s, struct sched_result *res, struct sched_window **out);
/* One poll: cur[v] is vCPU v's current task_struct (0: not read this time). Polls should be spread evenly:
 * each stands for the same share of the window. */
void sched_window_sample(struct sched_window *w, const uint64_t *cur);
/* 0 still watching; 1 decided (res->found, or res->reason says why not); -errno when guest memory is gone. */
int sched_window_step(struct sched_window *w, uint64_t now_ns, struct sched_result *res);
void sched_window_close(struct sched_window *w);

#endif
