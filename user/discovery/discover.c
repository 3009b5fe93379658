/*
 * Offset discovery, end to end: kernel address space from observed CR3s → "swapper/0" in the kernel's
 * data → init_task and the task_struct members (fields.c) → validation against the observed switches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/log.h"
#include "discovery/internal.h"

const char *const task_field_names[TF_NR] = {
	[TF_TASKS] = "tasks", [TF_PID] = "pid", [TF_TGID] = "tgid", [TF_COMM] = "comm",
	[TF_MM] = "mm", [TF_ACTIVE_MM] = "active_mm", [TF_REAL_PARENT] = "real_parent",
	[TF_PARENT] = "parent", [TF_CHILDREN] = "children", [TF_SIBLING] = "sibling", [TF_CRED] = "cred",
};

#define DEFAULT_MAX_BYTES (64ULL << 20)
#define DEFAULT_MAX_TASKS 65536
#define MAX_COMM_HITS     8

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ctx_free(struct disc_ctx *c)
{
	for (size_t i = 0; i < c->nwin; i++)
		free(c->win[i].buf);
	free(c->win);
	free(c->roots);
	free(c->leaders);
	free(c->threads);
}

/* Tied pairs, once more with the tasks each vCPU runs: an idle vCPU runs its swapper/N (not on the task list)
 * with mm NULL and a borrowed active_mm, which splits that pair at once. */
static void settle_pairs(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	size_t n = c->nleaders + c->nthreads, k = 0;
	struct guest_task *t = calloc(n + r->ncurrent + 1, sizeof(*t));
	char what[256];

	if (!t)
		return;
	for (size_t i = 0; i < n; i++) {
		uint64_t addr = i < c->nleaders ? c->leaders[i] : c->threads[i - c->nleaders];
		uint32_t pid = 0;
		bool have = offset_usable(&r->task[TF_PID]) && !dctx_read(c, addr + r->task[TF_PID].offset, &pid, 4);

		t[k++] = (struct guest_task){ .addr = addr, .pid = have ? (int32_t)pid : -1 };
	}
	for (uint32_t v = 0; v < r->ncurrent && v < VMOT_MAX_VCPUS; v++)
		t[k++] = (struct guest_task){ .addr = r->current[v].task, .pid = r->current[v].pid };
	if (pairs_settle(c->pm, r, t, k, what, sizeof(what)) > 0)
		p_dbg("pairs settled by the running tasks: %s", what);
	free(t);
}

int discover_offsets(struct physmem *pm, const struct obs_set *obs, const struct discovery_opts *opts,
		     struct discovery_result *res)
{
	struct disc_ctx c = { .pm = pm, .obs = obs, .res = res, .thread_ring_off = -1, .psz = 8 };
	uint64_t hits[MAX_COMM_HITS];
	size_t nhits = 0;
	double t0 = now_s();
	int err;

	memset(res, 0, sizeof(*res));
	res->thread_ring = -1;
	res->percpu_current = -1;
	for (int f = 0; f < TF_NR; f++)
		set_undetermined(&res->task[f], "not reached");
	set_undetermined(&res->mm_pgd, "not reached");
	if (opts)
		c.opts = *opts;
	if (!c.opts.max_bytes)
		c.opts.max_bytes = DEFAULT_MAX_BYTES;
	if (!c.opts.max_tasks)
		c.opts.max_tasks = DEFAULT_MAX_TASKS;
	c.budget_start = pm->bytes_read;
	/* the budget holds for every read, page-table walks included (restored on return) */
	uint64_t saved_limit = pm->read_limit;
	pm->read_limit = pm->bytes_read + c.opts.max_bytes;
	pm->read_limit_hit = false;

#define STEP(name) do { if (c.opts.progress_fn) \
		c.opts.progress_fn(c.opts.progress_ctx, name, pm->bytes_read - c.budget_start); } while (0)
	STEP("kernel space");
	err = kspace_setup(&c);
	p_dbg("after kernel space setup: %llu bytes read", (unsigned long long)(pm->bytes_read - c.budget_start));
	/* The scan stops a little after its first hits (init_task opens .data); when none of them starts a task
	 * list (seen on arm64 right after boot: the freed init section's data still mapped before .data), it goes
	 * on after the last one. */
	for (int round = 0; !err && round < 4; round++) {
		uint64_t after = round ? hits[nhits - 1] : 0;

		STEP("init_task");
		err = kspace_find_init_comm(&c, after, hits, MAX_COMM_HITS, &nhits);
		p_dbg("after comm scan: %llu bytes read, %zu hits", (unsigned long long)(pm->bytes_read - c.budget_start), nhits);
		if (!err && !nhits) {
			if (!round)
				snprintf(res->reason, sizeof(res->reason), "no \"swapper/0\" task name in the kernel's writable data");
			err = -ENOENT;
		}
		if (err)
			break;
		STEP("task_struct fields");
		res->reason[0] = 0;
		err = fields_solve(&c, hits, nhits);
		if (!err || !c.no_task_list)
			break;
	}
	if (!err) {
		STEP("validation");
		validate_observations(&c);
		STEP("current task");
		find_current_tasks(&c);
		if (res->npairs)
			settle_pairs(&c);
	}
#undef STEP
	if (err && pm->read_limit_hit)   /* whatever failed, a read was refused by the budget first */
		err = -E2BIG;
	pm->read_limit = saved_limit;
	if (err == -E2BIG)
		snprintf(res->reason, sizeof(res->reason), "read budget of %llu MiB spent before the offsets were found",
			 (unsigned long long)(c.opts.max_bytes >> 20));

	if (pm->source_err) {   /* QEMU exited under us: no answer about the guest, whatever the steps said */
		snprintf(res->reason, sizeof(res->reason), "the memory source went away during discovery");
		err = pm->source_err;
	}
	res->bytes_read = pm->bytes_read - c.budget_start;
	res->elapsed_s = now_s() - t0;
	ctx_free(&c);
	if (err)
		return err == -E2BIG ? -ENOENT : err;
	for (int f = 0; f < TF_NR; f++)
		if (!offset_usable(&res->task[f]))
			return -ENOENT;
	return res->mm_pgd.found ? 0 : -ENOENT;
}
