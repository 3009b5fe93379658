/* The scheduler's per-task counters found from behaviour; see sched.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/log.h"
#include "discovery/sched.h"

const char *const sched_field_names[SF_NR] = { "sum_exec_runtime", "nvcsw", "nivcsw", "pcount" };

#define SCHED_MAX_TASKS  512
#define SCHED_MAX_SPAN   8192
#define SCHED_SNAPS      3
#define MAX_RUNTIME      (1ULL << 56)   /* ns: 2.3 years of one CPU; kernel pointers and clock seeds are above */
#define MAX_COUNT        (1ULL << 40)   /* a switch count */
#define MAX_CANDS        64

static uint64_t val(const struct sched_obs *o, uint32_t k, uint32_t i, uint32_t off)
{
	uint64_t v;

	memcpy(&v, o->bytes + ((size_t)k * o->ntasks + i) * o->span + off, sizeof(v));
	return v;
}

static uint64_t delta(const struct sched_obs *o, uint32_t i, uint32_t off, uint32_t k0, uint32_t k1)
{
	return val(o, k1, i, off) - val(o, k0, i, off);
}

/* Never decreasing on any task, every value at most max. */
static bool monotone(const struct sched_obs *o, uint32_t off, uint64_t max)
{
	for (uint32_t i = 0; i < o->ntasks; i++)
		for (uint32_t k = 0; k < o->nsnap; k++) {
			uint64_t v = val(o, k, i, off);

			if (v > max || (k && v < val(o, k - 1, i, off)))
				return false;
		}
	return true;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

struct runtime_cand {
	uint32_t off;
	uint64_t total;     /* sum of the values at the last snapshot */
	double err;         /* sum |delta - sampled| / (sum delta + sampled) */
};

/* Every task's value at off >= its value at other, at every snapshot, and greater somewhere. */
static bool dominates(const struct sched_obs *o, uint32_t off, uint32_t other)
{
	bool greater = false;

	for (uint32_t k = 0; k < o->nsnap; k++)
		for (uint32_t i = 0; i < o->ntasks; i++) {
			uint64_t a = val(o, k, i, off), b = val(o, k, i, other);

			if (a < b)
				return false;
			greater |= a > b;
		}
	return greater;
}

static void set_field(struct sched_result *res, enum sched_field f, int64_t off, double conf, const char *how)
{
	res->f[f].offset = off;
	res->f[f].found = off >= 0;
	res->f[f].confidence = conf;
	snprintf(res->f[f].how, sizeof(res->f[f].how), "%s", how);
}

/* No vCPU was ever seen to stop running its task. */
static bool rounds_without_change(const struct sched_obs *o)
{
	for (uint32_t i = 0; i < o->ntasks; i++)
		if (o->outs[i])
			return false;
	return true;
}

static int decide_runtime(const struct sched_obs *o, struct sched_result *res)
{
	uint64_t elapsed = o->t_ns[o->nsnap - 1] - o->t_ns[0];
	uint64_t period = o->rounds ? elapsed / o->rounds : elapsed, mass = 0, nsamples = 0;
	uint64_t per_task_max = elapsed + elapsed / 2 + 10000000, all_max = per_task_max * o->nvcpu;
	uint32_t nsampled = 0, ncand = 0, nbest = 0, best = 0;
	struct runtime_cand cand[MAX_CANDS];
	uint64_t mintotal = UINT64_MAX;

	for (uint32_t i = 0; i < o->ntasks; i++)
		if (!o->idle[i]) {
			mass += o->samples[i] * period;
			nsamples += o->samples[i];
			nsampled += o->samples[i] > 0;
		}
	if (!o->rounds || nsamples < 10 || mass < elapsed / 20) {
		snprintf(res->reason, sizeof(res->reason), "the guest was nearly idle during the %.1f s window (%.0f %% of "
			 "a vCPU busy in %u samples): no running task to tell the runtime counter by",
			 elapsed / 1e9, elapsed ? 100.0 * mass / elapsed : 0, o->rounds);
		set_field(res, SF_SUM_EXEC, -1, 0, "undetermined: guest idle during the window");
		return -ENOENT;
	}
	if (nsampled <= 1 && rounds_without_change(o)) {
		snprintf(res->reason, sizeof(res->reason), "the current task of every vCPU stayed the same over %u samples "
			 "of a busy guest: the per-CPU current-task slot looks stale, nothing to tell the runtime by",
			 o->rounds);
		set_field(res, SF_SUM_EXEC, -1, 0, "undetermined: current task never changed");
		return -ENOENT;
	}
	/* sampling error: a few periods per task seen running */
	uint64_t slack = 5000000 + 3 * period * nsampled;

	for (uint32_t off = 0; off + 8 <= o->span; off += 8) {
		uint64_t sum = 0, err = 0, g = 0, total = 0;
		uint32_t nonzero = 0, nreal = 0;
		bool ok = monotone(o, off, MAX_RUNTIME);

		for (uint32_t i = 0; ok && i < o->ntasks; i++) {
			uint64_t d = delta(o, i, off, 0, o->nsnap - 1), est = o->samples[i] * period;

			if (o->idle[i])
				continue;
			if (d > per_task_max) {   /* a task runs on one vCPU at a time */
				ok = false;
				break;
			}
			sum += d;
			err += absdiff(d, est);
			for (uint32_t k = 0; k < o->nsnap; k++)
				g = gcd64(g, val(o, k, i, off));
			total += val(o, o->nsnap - 1, i, off);
			nreal++;
			nonzero += val(o, o->nsnap - 1, i, off) > 0;
		}
		if (ok && sum * 2 > mass && sum < 2 * mass)
			p_dbg("sched: +%u grew %.1f ms (sampled %.1f), off %.1f ms (slack %.1f), g %" PRIu64 ", %u/%u nonzero",
			      off, sum / 1e6, mass / 1e6, err / 1e6, slack / 1e6, g, nonzero, nreal);
		if (!ok || !sum || sum > all_max)
			continue;
		/* every task has run at least once since it was created: kernel threads too (per-mm integrals
		 * like acct_vm_mem1 also follow the runtime, but stay zero on them) */
		if (nonzero * 10 < nreal * 9)
			continue;
		if (g >= 1000)    /* tick-quantised (utime/stime) or not a nanosecond count */
			continue;
		/* the runtime is what the samples saw, task by task (run_delay, the wait, is not) */
		if (sum * 10 + slack * 10 < mass * 7 || sum > mass + mass * 3 / 10 + slack)
			continue;
		if (err > (sum + mass) * 4 / 10 + slack)
			continue;
		if (ncand == MAX_CANDS)
			break;
		cand[ncand++] = (struct runtime_cand){ off, total, (double)err / (double)(sum + mass) };
		p_dbg("sched: runtime candidate +%u: grew %.1f ms (sampled %.1f ms), %.0f %% off, values sum %.1f s", off,
		      sum / 1e6, mass / 1e6, cand[ncand - 1].err * 100, total / 1e9);
		if (total < mintotal)
			mintotal = total;
	}
	if (!ncand) {
		snprintf(res->reason, sizeof(res->reason), "no u64 of task_struct grew with the on-CPU time the samples "
			 "saw (%.0f ms over %.1f s)", mass / 1e6, elapsed / 1e9);
		set_field(res, SF_SUM_EXEC, -1, 0, "undetermined: no field follows the sampled on-CPU time");
		return -ENOENT;
	}
	/* vruntime, deadlines and clocks sit near a large shared value: keep the small ones (a few x the
	 * smallest); drop those another never falls below (prev_sum_exec_runtime lags the runtime); of what is
	 * left the one that follows the samples clearly best (the wait, run_delay, follows them loosely) */
	uint32_t keep[MAX_CANDS], nkeep = 0, left[MAX_CANDS], nleft = 0;

	for (uint32_t c = 0; c < ncand; c++)
		if (cand[c].total <= 2 * mintotal + elapsed)
			keep[nkeep++] = c;
	for (uint32_t a = 0; a < nkeep; a++) {
		bool dominated = false;

		for (uint32_t b = 0; b < nkeep && !dominated; b++)
			dominated = a != b && dominates(o, cand[keep[b]].off, cand[keep[a]].off);
		if (!dominated)
			left[nleft++] = keep[a];
	}
	best = nleft ? left[0] : 0;
	nbest = nleft ? 1 : 0;
	for (uint32_t a = 1; a < nleft; a++) {
		uint32_t c = left[a];

		if (cand[c].err < cand[best].err)
			best = c;
	}
	for (uint32_t a = 0; a < nleft; a++)   /* a close second: no clear winner */
		if (left[a] != best && cand[left[a]].err < 2 * cand[best].err + 0.02)
			nbest++;
	if (nbest != 1) {
		snprintf(res->reason, sizeof(res->reason), "%u u64 fields follow the sampled on-CPU time about as well "
			 "and none is always the largest: runtime undetermined", nleft);
		set_field(res, SF_SUM_EXEC, -1, 0, "undetermined: several fields follow the on-CPU time");
		return -ENOENT;
	}
	char how[96];

	snprintf(how, sizeof(how), "grows with sampled on-CPU time (%.0f %% off), >= %u other such field(s)",
		 cand[best].err * 100, nkeep - 1);
	set_field(res, SF_SUM_EXEC, cand[best].off, 1.0 - cand[best].err, how);
	return 0;
}

static int decide_switches(const struct sched_obs *o, struct sched_result *res)
{
	uint64_t elapsed = o->t_ns[o->nsnap - 1] - o->t_ns[0];
	uint32_t rt = (uint32_t)res->f[SF_SUM_EXEC].offset, cand[MAX_CANDS], ncand = 0;
	uint32_t pa = 0, pb = 0, pc = 0, npairs = 0;

	for (uint32_t off = 0; off + 8 <= o->span; off += 8) {
		uint64_t sum = 0;
		bool ok = off != rt && monotone(o, off, MAX_COUNT);

		for (uint32_t i = 0; ok && i < o->ntasks; i++) {
			uint64_t d = delta(o, i, off, 0, o->nsnap - 1);

			if (o->idle[i])   /* the idle task counts switches but not arrivals: left out */
				continue;
			if (d > elapsed / 1000 + 2)   /* more than a switch a microsecond */
				ok = false;
			else if (d && !o->samples[i] && !delta(o, i, rt, 0, o->nsnap - 1))
				ok = false;                    /* a task that never ran cannot have switched */
			sum += d;
		}
		if (!ok || !sum)
			continue;
		if (ncand == MAX_CANDS) {
			snprintf(res->reason, sizeof(res->reason), "more than %d counters moved during the window: switch "
				 "counts undetermined", MAX_CANDS);
			return -ENOENT;
		}
		cand[ncand++] = off;
		p_dbg("sched: counter candidate +%u: grew %" PRIu64 " over the window", off, sum);
	}
	/* a pair (voluntary, involuntary) whose increments add up to a third counter's (switch-ins) within one,
	 * over every interval; both kinds seen; at least the switch-outs the samples saw */
	for (uint32_t a = 0; a < ncand; a++)
		for (uint32_t b = a + 1; b < ncand; b++) {
			uint64_t sa = 0, sb = 0, souts = 0, sab = 0;
			bool pair_ok = true;

			for (uint32_t i = 0; i < o->ntasks; i++) {
				uint64_t da = delta(o, i, cand[a], 0, o->nsnap - 1), db = delta(o, i, cand[b], 0, o->nsnap - 1);

				if (o->idle[i])
					continue;
				sa += da;
				sb += db;
				sab += da + db;
				souts += o->outs[i];
				pair_ok &= da + db >= o->outs[i];
			}
			if (!pair_ok || sa < 3 || sb < 3 || sab < souts)
				continue;
			for (uint32_t c = 0; c < ncand; c++) {
				uint64_t off_a = 0, off_b = 0;
				bool fits = c != a && c != b;

				for (uint32_t i = 0; fits && i < o->ntasks; i++) {
					if (o->idle[i])
						continue;
					for (uint32_t k = 0; fits && k < o->nsnap; k++)
						for (uint32_t k1 = k + 1; fits && k1 < o->nsnap; k1++) {
							uint64_t dc = delta(o, i, cand[c], k, k1);
							uint64_t dab = delta(o, i, cand[a], k, k1) + delta(o, i, cand[b], k, k1);

							/* one for a switch-out not yet followed by its switch-in, one
							 * for a switch between reading the two members (the guest
							 * runs while we read) */
							fits = absdiff(dc, dab) <= 2;
						}
					off_a += absdiff(delta(o, i, cand[c], 0, o->nsnap - 1), delta(o, i, cand[a], 0, o->nsnap - 1));
					off_b += absdiff(delta(o, i, cand[c], 0, o->nsnap - 1), delta(o, i, cand[b], 0, o->nsnap - 1));
				}
				if (fits && (off_a < 2 || off_b < 2))
					p_dbg("sched: +%u = +%u + +%u but it follows one of them", cand[c], cand[a], cand[b]);
				if (!fits || off_a < 2 || off_b < 2)   /* c is neither of the pair in disguise */
					continue;
				if (!npairs || pa != cand[a] || pb != cand[b])
					npairs++;
				pa = cand[a];
				pb = cand[b];
				pc = cand[c];
			}
		}
	if (npairs != 1) {
		snprintf(res->reason, sizeof(res->reason), npairs ? "%u pairs of counters add up to a switch-in count: "
			 "switch counts undetermined" : "no two counters added up to a switch-in count over the window "
			 "(%u counters moved; both voluntary and involuntary switches are needed)", npairs ? npairs : ncand);
		return -ENOENT;
	}
	/* kernel threads block; they are rarely preempted */
	uint64_t ka = 0, kb = 0;

	for (uint32_t i = 0; i < o->ntasks; i++)
		if (o->kthread[i] && !o->idle[i]) {
			ka += val(o, o->nsnap - 1, i, pa);
			kb += val(o, o->nsnap - 1, i, pb);
		}
	set_field(res, SF_PCOUNT, pc, 1, "increments = the pair's sum (+-1) on every task and interval");
	if (ka < 2 * kb && kb < 2 * ka) {
		snprintf(res->reason, sizeof(res->reason), "switch counters at +%u and +%u: kernel threads use both alike "
			 "(%" PRIu64 " vs %" PRIu64 "): which is voluntary is undetermined", pa, pb, ka, kb);
		return -ENOENT;
	}
	uint32_t nv = ka > kb ? pa : pb, niv = ka > kb ? pb : pa;
	char how[96];

	snprintf(how, sizeof(how), "adds up with the other to pcount; kernel threads' count %" PRIu64 " vs %" PRIu64,
		 ka > kb ? ka : kb, ka > kb ? kb : ka);
	set_field(res, SF_NVCSW, nv, 1, how);
	set_field(res, SF_NIVCSW, niv, 1, "adds up with nvcsw to pcount; rarely used by kernel threads");
	return 0;
}

int sched_decide(const struct sched_obs *o, struct sched_result *res)
{
	int err;

	for (int f = 0; f < SF_NR; f++)
		set_field(res, (enum sched_field)f, -1, 0, "undetermined");
	res->found = false;
	res->reason[0] = 0;
	if (o->nsnap < 2 || !o->ntasks || o->span < 8 || o->t_ns[o->nsnap - 1] <= o->t_ns[0]) {
		snprintf(res->reason, sizeof(res->reason), "no window observed");
		return -ENOENT;
	}
	res->window_s = (o->t_ns[o->nsnap - 1] - o->t_ns[0]) / 1e9;
	res->ntasks = o->ntasks;
	res->rounds = o->rounds;
	err = decide_runtime(o, res);
	if (err)
		return err;
	err = decide_switches(o, res);
	if (err) {
		set_field(res, SF_NVCSW, -1, 0, "undetermined");
		set_field(res, SF_NIVCSW, -1, 0, "undetermined");
		return err;
	}
	res->found = true;
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_addr(const void *a, const void *b)
{
	const struct guest_task *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

static long find_task(const struct guest_task *g, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (g[m].addr == addr)
			return (long)m;
		if (g[m].addr < addr)
			lo = m + 1;
		else
			hi = m;
	}
	return -1;
}

/* One window of observation, fed by the caller's polls (see sched.h). */
struct sched_window {
	struct vmem *vm;
	struct physmem *pm;
	struct guest_task *g;        /* the tasks read at every snapshot, sorted by address */
	size_t n;
	uint32_t span, pid_off, nvcpu, rounds, k;
	uint8_t *buf;                /* [SCHED_SNAPS][n][span] */
	uint32_t *samples, *outs;
	bool *valid;
	uint64_t t_ns[SCHED_SNAPS], start, step, prev[VMOT_MAX_VCPUS];
};

void sched_window_close(struct sched_window *w)
{
	if (!w)
		return;
	free(w->g);
	free(w->buf);
	free(w->samples);
	free(w->outs);
	free(w->valid);
	free(w);
}

/* Snapshot k of every task still valid. -errno only when the memory source is gone. */
static int snapshot(struct sched_window *w, uint32_t k)
{
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < w->n; i++) {
		uint8_t *p = w->buf + ((size_t)k * w->n + i) * w->span;
		int32_t pid;
		int err;

		if (!w->valid[i])
			continue;
		err = vmem_read(w->vm, w->g[i].addr, p, w->span);
		if (err && physmem_source_gone(w->pm))
			return err;
		/* unreadable, or freed and reused since the walk: left out */
		if (err || (w->pid_off + 4 <= w->span && (memcpy(&pid, p + w->pid_off, 4), pid != w->g[i].pid)))
			w->valid[i] = false;
	}
	w->t_ns[k] = t0 + (now_ns() - t0) / 2;
	return 0;
}

int sched_window_open(struct physmem *pm, struct vmem *vm, const struct discovery_result *r, uint32_t nvcpu,
		      double window_s, struct sched_result *res, struct sched_window **out)
{
	struct discovery_opts d = { 0 };
	struct sched_window *w;
	int err;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	if (r->paging32) {   /* 4-byte pointers and longs: not ported yet (issue 16) */
		snprintf(res->reason, sizeof(res->reason), "not searched on 32-bit guests yet");
		return -ENOTSUP;
	}
	for (int f = 0; f < SF_NR; f++)
		set_field(res, (enum sched_field)f, -1, 0, "undetermined");
	if (!nvcpu || nvcpu > VMOT_MAX_VCPUS || r->percpu_current == -1 || !offset_usable(&r->task[TF_PID])) {
		snprintf(res->reason, sizeof(res->reason), "no per-CPU current task to sample");
		return -ENOENT;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->vm = vm;
	w->pm = pm;
	w->nvcpu = nvcpu;
	err = guest_tasks_list(pm, r, &d, &w->g, &w->n);
	if (err || !w->n) {
		sched_window_close(w);
		snprintf(res->reason, sizeof(res->reason), "the task list could not be walked");
		return err ? err : -ENOENT;
	}
	qsort(w->g, w->n, sizeof(*w->g), cmp_addr);
	if (w->n > SCHED_MAX_TASKS)
		w->n = SCHED_MAX_TASKS;   /* the lowest addresses: enough tasks to decide, a bounded read */
	/* beyond the smallest distance between two task_structs lies the next object, not this task */
	w->span = r->task_stride >= 512 && r->task_stride < SCHED_MAX_SPAN ? r->task_stride & ~7u : SCHED_MAX_SPAN;
	w->pid_off = (uint32_t)r->task[TF_PID].offset;
	w->buf = calloc((size_t)SCHED_SNAPS * w->n, w->span);
	w->samples = calloc(w->n, sizeof(*w->samples));
	w->outs = calloc(w->n, sizeof(*w->outs));
	w->valid = calloc(w->n, sizeof(*w->valid));
	if (!w->buf || !w->samples || !w->outs || !w->valid) {
		sched_window_close(w);
		return -ENOMEM;
	}
	for (size_t i = 0; i < w->n; i++)
		w->valid[i] = true;
	w->start = now_ns();
	w->step = (uint64_t)((window_s > 0 ? window_s : 1.0) * 1e9) / (SCHED_SNAPS - 1);
	err = snapshot(w, 0);
	if (err) {
		sched_window_close(w);
		return err;
	}
	w->k = 1;
	snprintf(res->reason, sizeof(res->reason), "being looked for (a %.1f s window)", w->step * 2 / 1e9);
	*out = w;
	return 0;
}

void sched_window_sample(struct sched_window *w, const uint64_t *cur)
{
	for (uint32_t v = 0; v < w->nvcpu; v++) {
		long idx;

		if (!cur[v])
			continue;   /* not read this round */
		idx = find_task(w->g, w->n, cur[v]);
		if (idx >= 0)
			w->samples[idx]++;
		if (w->prev[v] && w->prev[v] != cur[v] && (idx = find_task(w->g, w->n, w->prev[v])) >= 0)
			w->outs[idx]++;
		w->prev[v] = cur[v];
	}
	w->rounds++;
}

/* The window's observations, packed to the tasks read at every snapshot, decided. */
static int decide_window(struct sched_window *w, struct sched_result *res)
{
	uint8_t *packed = malloc((size_t)SCHED_SNAPS * w->n * w->span);
	bool *kthread = calloc(w->n, sizeof(*kthread)), *idle = calloc(w->n, sizeof(*idle));
	uint32_t m = 0;
	int err = -ENOMEM;

	if (!packed || !kthread || !idle)
		goto out;
	for (size_t i = 0; i < w->n; i++)
		if (w->valid[i]) {
			w->samples[m] = w->samples[i];
			w->outs[m] = w->outs[i];
			kthread[m] = w->g[i].kernel_thread;
			idle[m] = w->g[i].pid == 0;
			m++;
		}
	for (uint32_t k = 0; k < SCHED_SNAPS; k++)
		for (size_t i = 0, j = 0; i < w->n; i++)
			if (w->valid[i])
				memcpy(packed + ((size_t)k * m + j++) * w->span, w->buf + ((size_t)k * w->n + i) * w->span,
				       w->span);
	struct sched_obs o = { .nsnap = SCHED_SNAPS, .ntasks = m, .span = w->span, .t_ns = w->t_ns, .bytes = packed,
			       .samples = w->samples, .outs = w->outs, .kthread = kthread, .idle = idle,
			       .nvcpu = w->nvcpu, .rounds = w->rounds };

	err = sched_decide(&o, res);
out:
	free(packed);
	free(kthread);
	free(idle);
	return err;
}

int sched_window_step(struct sched_window *w, uint64_t now, struct sched_result *res)
{
	int err;

	if (w->k >= SCHED_SNAPS || now < w->start + w->step * w->k)
		return 0;
	err = snapshot(w, w->k);
	if (err)
		return err;
	if (++w->k < SCHED_SNAPS)
		return 0;
	err = decide_window(w, res);
	return err == -ENOENT || !err ? 1 : err;
}
