/* The scheduler's counters of one VM (exact CPU time and switches), looked for while tracing; see tracer.h. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arch/x86_64.h"
#include "common/log.h"
#include "trace/tracer.h"
#include "trace/tracer_internal.h"

#define SCHED_WINDOWS        4
#define SCHED_IDLE_WINDOWS   30
#define SCHED_RETRY_NS       2000000000ULL
#define SCHED_IDLE_RETRY_NS  10000000000ULL

/* The scheduler's counters, looked for over windows fed by the regular polls (the stream goes on). The
 * first window opens once the current-task slot is confirmed (samples of a wrong slot tell nothing), or
 * after SCHED_WAIT_NS without; an undetermined window is followed by another SCHED_RETRY_NS later, up
 * to SCHED_WINDOWS of them, each twice as long as the one before (a guest its host starves updates a running
 * task's counter late, by up to the stall: a longer window shrinks that error against what grew); windows
 * of an idle guest do not count, but wait longer. */
void vmt_sched_stop(struct vm_tracer *t)
{
	sched_window_close(t->schedw);
	t->schedw = NULL;
}

bool vmt_sched_pending(const struct vm_tracer *t)
{
	return t->opts.sched_window_s >= 0 && !t->sched.found && !t->gone &&
	       t->sched_windows < SCHED_WINDOWS && t->sched_idle_windows < SCHED_IDLE_WINDOWS;
}

bool vmt_sched_tick(struct vm_tracer *t, uint64_t now)
{
	const char *name = t->info.name;
	int err;

	if (t->restarting || !vmt_sched_pending(t))
		return false;
	if (!t->schedw) {
		if (now < t->sched_next || (!t->slot.confirmed && now < t->sched_first))
			return false;
		double window_s = t->opts.sched_window_s > 0 ? t->opts.sched_window_s : 1.0;

		window_s *= (double)(1u << (t->sched_windows < 3 ? t->sched_windows : 3));
		err = sched_window_open(t->tg.pm, &t->vm, &t->res, t->nvcpu, window_s, &t->sched, &t->schedw);
		if (err) {
			t->sched_windows++;
			t->sched_next = now + SCHED_RETRY_NS;
			p_dbg("%s (pid %d): sched: window not opened: %s", name, (int)t->info.pid, t->sched.reason);
			return false;
		}
		return false;   /* the first poll of the window comes next tick */
	}
	uint64_t cur[VM_MAX_VCPUS] = { 0 };

	for (uint32_t v = 0; v < t->nvcpu; v++)
		cur[v] = t->vcpu[v].known ? t->vcpu[v].task : 0;
	sched_window_sample(t->schedw, cur);
	err = sched_window_step(t->schedw, now, &t->sched);
	if (!err)
		return false;
	vmt_sched_stop(t);
	if (err < 0) {
		snprintf(t->sched.reason, sizeof(t->sched.reason), "guest memory unreadable (%s)", strerror(-err));
		t->sched_windows++;
		t->sched_next = now + SCHED_RETRY_NS;
		return false;
	}
	if (t->sched.found) {
		p_info("%s (pid %d): scheduler counters found (%.1f s window): sum_exec_runtime +%" PRId64 ", nvcsw +%"
		       PRId64 ", nivcsw +%" PRId64 "; exact CPU time and switch counts from now on", name,
		       (int)t->info.pid, t->sched.window_s, t->sched.f[SF_SUM_EXEC].offset, t->sched.f[SF_NVCSW].offset,
		       t->sched.f[SF_NIVCSW].offset);
		return true;
	}
	bool idle = strstr(t->sched.reason, "idle") != NULL;

	if (idle)
		t->sched_idle_windows++;
	else
		t->sched_windows++;
	t->sched_next = now + (idle ? SCHED_IDLE_RETRY_NS : SCHED_RETRY_NS);
	p_dbg("%s (pid %d): sched: window %u undetermined: %s", name, (int)t->info.pid,
	      t->sched_windows + t->sched_idle_windows, t->sched.reason);
	if (!vmt_sched_pending(t))
		p_info("%s (pid %d): exact CPU time and switch counts undetermined: %s", name, (int)t->info.pid,
		       t->sched.reason);
	return false;
}
