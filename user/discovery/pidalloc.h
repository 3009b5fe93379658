/*
 * The guest kernel's pid allocator, found without a profile (issue 11): the initial pid namespace's
 * "next pid to try" (init_pid_ns.idr.idr_next on 4.15+, idr_alloc_cyclic) or "last pid handed out"
 * (pid_namespace.last_pid before). With it, pids that were allocated between two task-list walks but never
 * seen in one are counted (trace/lost.h) instead of silently missed.
 *
 * How, by properties only (no version table):
 *   1. init_pid_ns: every task's struct pid (task_struct.thread_pid since 4.19, pids[PIDTYPE_PID].pid
 *      before) holds numbers[0] = { int nr; struct pid_namespace *ns } with nr = the task's pid and ns the
 *      same pointer for every task. The task_struct member and the upid's place in struct pid are those for
 *      which this holds over a sample of tasks (threads included; up to one in eight may dissent: a task
 *      that exited since the walk); when several fit (a list node pointing
 *      into struct pid), the one naming the lowest address is the struct's start.
 *   2. child_reaper: a member of that namespace pointing to pid 1's task (the anchor that it is one).
 *   3. the allocator: a u32 of the namespace that is above every live pid (or equal to the newest, for
 *      last_pid), at most PID_MAX_LIMIT, and then, watched across walks, never decreases, stays above every
 *      pid seen, steps when new pids appear (pid_max, constant, does not) and at some walk is the newest
 *      live pid or one above it (a fork counter running at an offset is not). Confirmed when one is left.
 * Every read goes through vmem (bounded, checked); every pointer is checked before it is followed.
 */
#ifndef VMOT_DISCOVERY_PIDALLOC_H
#define VMOT_DISCOVERY_PIDALLOC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "discovery/discover.h"

#define PIDA_NS_WINDOW   512      /* bytes of the namespace searched (the allocator is near its start) */
#define PIDA_MAX_CAND    64
#define PIDA_MAX_WATCH   600      /* walks with new pids before giving up on an ambiguous allocator */
#define PIDA_SEARCHES    3        /* walks whose search for init_pid_ns may fail before it is given up */

enum pida_state { PIDA_NONE, PIDA_WATCHING, PIDA_CONFIRMED, PIDA_FAILED };

struct pidalloc {
	enum pida_state state;
	uint64_t ns;                  /* &init_pid_ns */
	int64_t thread_pid;           /* task_struct member -> struct pid (-1: several fit) */
	int64_t upid_nr;              /* numbers[0].nr in struct pid (-1: several fit) */
	int64_t reaper;               /* child_reaper in pid_namespace */
	int64_t off;                  /* the allocator in pid_namespace (confirmed) */
	bool last_kind;               /* the value is the last pid handed out (last_pid), not the next to try */
	uint32_t value;               /* allocator as last read (raw) */
	uint32_t watched;             /* walks with new pids while watching */
	uint32_t searches;            /* failed searches for init_pid_ns so far */
	size_t ncand;
	struct pida_cand {
		int64_t off;
		uint32_t first, last;     /* value at the first and latest walk */
		bool dead, equal_seen;    /* equal_seen: a live pid equalled it (last_pid semantics) */
		bool tight;               /* once equal to the newest live pid or one above it */
	} cand[PIDA_MAX_CAND];
	char why[160];                /* why PIDA_FAILED, or what is being waited for */
};

/* A walk's pids: all of them (sorted or not), and which ones were not in the previous walk. */
struct pida_walk {
	const struct guest_task *tasks;
	size_t n;
	const int32_t *fresh;         /* pids new since the previous walk */
	size_t nfresh;
};

/* One step per task-list walk: finds init_pid_ns and the candidates on the first call (tried again on the
 * next walks, up to PIDA_SEARCHES, if a walk caught in churn fails it), then prunes them.
 * Returns the state. Never fails the caller: an undiscoverable allocator is PIDA_FAILED with a reason. */
enum pida_state pidalloc_step(struct pidalloc *pa, struct vmem *vm, const struct pida_walk *w);
/* Read the confirmed allocator; *next = the next pid the kernel will try. 0, -EFAULT, -ERANGE (hostile). */
int pidalloc_read(const struct pidalloc *pa, struct vmem *vm, uint32_t *next);

#endif
