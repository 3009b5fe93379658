/*
 * Which per-CPU slot holds the current-task pointer, chosen from evidence and kept under watch.
 *
 * Discovery picks the slot from one snapshot, where several per-CPU task pointers fit (the idle task,
 * ksoftirqd, the stopper thread, a "last task" cache, the runqueue's curr ...). Only one kind of sample
 * tells them apart for sure: a vCPU caught in user space (its RIP in the user half) runs a task whose
 * mm->pgd is that vCPU's CR3. So an evidence round reads every candidate slot, then every vCPU's
 * registers over QMP, then every slot again; for a vCPU in user space, each candidate whose value did not
 * move across the round scores a hit when its task's mm runs that CR3 and a miss when not — but only when
 * the candidates disagree (equal values say nothing about which slot is right). A slot is confirmed with
 * SLOT_MIN_HITS hits and at most a tenth as many misses. Samples taken while vCPUs idle or run kernel
 * threads count for nothing: a static pointer to the idle task fits an idle vCPU as well as the real slot.
 *
 * User-space samples favour a slot that rarely moves: the real one changes at every switch, so it is often
 * caught moving across a round (and then scores nothing), while a "last user task" cache holds still and
 * scores. Between rounds every slot is therefore also read every few ms (no QMP): the real pointer changes
 * whenever such a cache does (a switch between user tasks is a switch), and also without it (kernel threads,
 * idle). Of two slots with user-space evidence and no misses, one that the other's changes always include
 * is that other's stale copy, and is not chosen; and once a slot that held running tasks moved (the guest
 * switches), a slot that never moved is static and not chosen at all, whatever it scored.
 *
 * At set-up the rounds run until a slot is confirmed or the set-up time is spent; an unconfirmed choice is
 * provisional. While tracing, a round runs every second (ten times a second while unconfirmed): a chosen
 * slot that stops agreeing with the vCPUs' CR3s is replaced by one that agrees (stderr says so and the
 * offsets cache is updated), and when no candidate explains them the per-CPU areas are searched again.
 */
#ifndef VMOT_TRACE_SLOT_H
#define VMOT_TRACE_SLOT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "target/vms.h"

#define SLOT_MAX_CAND  512   /* candidates from one scan of the per-CPU areas */
#define SLOT_MIN_HITS  3
#define SLOT_FAST_MAX  512   /* fast samples (per vCPU each) kept at set-up for the change test */

struct slot_cand {
	int64_t off;                   /* from the GS base (or an image address when not zero-based) */
	uint32_t hit, miss;            /* user-space evidence (see above) */
	uint32_t fits, changes;        /* weak evidence: task's active_mm runs the CR3; value changed */
	uint64_t last[VM_MAX_VCPUS];
	uint64_t fast_last[VM_MAX_VCPUS];
	uint64_t moved[SLOT_FAST_MAX / 64]; /* fast sample k (set-up): the value had changed since sample k-1 */
	bool dead;                     /* once held a non-task: never the current-task pointer */
};

struct slot_state {
	struct slot_cand *c;
	size_t n;
	bool confirmed;                /* the chosen slot (res.percpu_current) has user-space evidence */
	uint32_t rounds, user_samples; /* evidence rounds, vCPU samples caught in user space */
	uint32_t unexplained;          /* user-space samples no candidate explained, since the last scan */
	uint64_t next_check, next_rescan;
	uint32_t replaced;             /* times the chosen slot was replaced while tracing */
	uint32_t nfast;                /* fast samples taken (bits used in slot_cand.moved) */
};

struct vm_tracer;
struct vcpu_state;

/* Set-up: scan the per-CPU areas for candidates and run evidence rounds over QMP (qmp_path) for at most
 * max_s seconds; sets t->res.percpu_current (-1 when no candidate) and t->slot.confirmed. */
void slot_setup(struct vm_tracer *t, const char *qmp_path, double max_s);
/* While tracing (call every task tick): one evidence round when due. Replaces a chosen slot that the
 * evidence refutes (returns true then: every vCPU's current task is to be read afresh). *vs and *nv get the
 * vCPU registers of the round (caller frees them; NULL and 0 when no round ran or QMP did not answer). */
bool slot_check(struct vm_tracer *t, uint64_t now, struct vcpu_state **vs, size_t *nv);
void slot_free(struct slot_state *s);
/* The candidate the evidence favours (index into s->c; -1 when none is alive); prior: the previous choice,
 * preferred on a tie. Exposed for tests. */
#include <sys/types.h>
ssize_t slot_best(const struct slot_state *s, int64_t prior);

#endif
