/*
 * Lost processes (issue 11): pids the guest kernel handed out between two task-list walks that no walk
 * ever saw (a process or thread that started and ended in between). Pure accounting over what each walk
 * reports — the allocator value read just before the walk (discovery/pidalloc.h) and the pids the walk
 * found — so it is unit-tested without a guest.
 *
 * Rule: a pid p with upto <= p < D is decided once D is the allocator value read before a walk that is at
 * least LOST_LAG_WALKS walks and LOST_LAG_NS old (alloc_pid() runs before the task is linked into the task
 * list: a pid allocated just before a walk may only show up in the next one). It is lost unless some walk
 * since the one that read `upto` contained it (pids skipped by the allocator because in use after a pid
 * wrap are in those walks too). The allocator going down (pid_max wrap, ns_last_pid written lower) or
 * jumping by more than LOST_MAX_JUMP between two walks (ns_last_pid written higher: no pid was allocated)
 * re-baselines: nothing is counted for that window, never a guess.
 */
#ifndef VMOT_TRACE_LOST_H
#define VMOT_TRACE_LOST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOST_LAG_WALKS 2
#define LOST_LAG_NS    100000000ULL
#define LOST_RING      16
#define LOST_MAX_JUMP  32768u
#define LOST_PID_LIMIT 4194304u

struct lost_acct {
	bool based;                   /* a baseline was taken */
	uint32_t upto;                /* every pid in [start, upto) is decided */
	uint32_t start;               /* baseline (first pid accounted) */
	uint32_t prev;                /* the allocator at the previous walk */
	struct { uint32_t next; uint64_t t; } ring[LOST_RING];   /* recent walks, oldest first */
	size_t nring;
	int32_t *seen;                /* pids >= upto seen by a walk since, sorted, unique */
	size_t nseen, cap;
	uint64_t lost, decided;       /* pids counted lost / decided since the baseline */
	uint64_t rebaselines;
};

enum lost_note { LOST_OK, LOST_WRAP, LOST_JUMP, LOST_NOMEM };

/* One walk: next = the allocator's next pid read just before it, pids = every pid of the walk (any order).
 * Each lost range [first, last] goes to out(). Returns LOST_WRAP / LOST_JUMP when it re-baselined. */
enum lost_note lost_walk(struct lost_acct *a, uint64_t now_ns, uint32_t next, const int32_t *pids, size_t n,
			 void (*out)(void *ctx, int32_t first, int32_t last), void *ctx);
void lost_free(struct lost_acct *a);

#endif
