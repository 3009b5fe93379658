/* The live loop shared by `live` and `record`; see run.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "capture/capture.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "common/units.h"
#include "trace/run.h"

volatile sig_atomic_t trace_interrupted, trace_reopen;
static bool hup_reopens;

static void on_signal(int sig)
{
	if (sig == SIGHUP && hup_reopens)
		trace_reopen = 1;
	else
		trace_interrupted = sig;
}

/* From the start of setup to teardown, SIGINT/SIGTERM/SIGHUP only set trace_interrupted: an interrupt
 * during discovery ends setup early and one during tracing ends the loop, and either way the session file
 * is closed properly. With o->hup_reopens SIGHUP sets trace_reopen instead (logrotate moved a file). */
static struct sigaction old_int, old_term, old_hup;
static bool signals_installed;

static void signals_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	if (signals_installed)
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	signal(SIGPIPE, SIG_IGN);
	signals_installed = true;
}

static void signals_restore(void)
{
	if (!signals_installed)
		return;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	signals_installed = false;
}

static int parse_secs(const char *opt, const char *arg, double lo, double hi, double *out)
{
	if (parse_duration(arg, lo, hi, out)) {
		p_err("%s: '%s' is not a duration in %g..%g s (a number of seconds, or with ms, s, m, h)", opt, arg,
		      lo, hi);
		return -EINVAL;
	}
	return 1;
}

static int parse_num(const char *opt, const char *arg, double lo, double hi, double *out)
{
	if (parse_number(arg, lo, hi, out)) {
		p_err("%s: '%s' is not a number in %g..%g", opt, arg, lo, hi);
		return -EINVAL;
	}
	return 1;
}

int trace_opt(void *o, int c, const char *arg)
{
	return trace_parse_opt(o, c, arg);
}

int trace_parse_opt(struct trace_opts *o, int c, const char *arg)
{
	char *end;
	pid_t pid;

	switch (c) {
	case 'p':
		if (parse_pid(arg, &pid)) {
			p_err("--pid: '%s' is not a process id", arg);
			return -EINVAL;
		}
		if (o->npids >= TRACE_MAX_VMS) {
			p_err("--pid: at most %d VMs", TRACE_MAX_VMS);
			return -EINVAL;
		}
		o->pids[o->npids++] = pid;
		return 1;
	case 'a': o->all = true; return 1;
	case 0x20b: o->follow = true; return 1;
	case 'd': return parse_secs("--duration", arg, 0, 1e9, &o->duration_s);
	case 0x200: return parse_num("--rate", arg, 0.1, 10000, &o->rate_hz);
	case 0x201: return parse_num("--task-rate", arg, 0.01, 1000, &o->task_hz);
	case 0x202: o->vmt.qmp = arg; return 1;
	case 0x203: return parse_secs("--timeout", arg, 0.05, 3600, &o->vmt.sample_s);
	case 0x204: o->vmt.no_cache = true; return 1;
	case 0x205: o->no_bpf = true; return 1;
	case 0x20a:
		errno = 0;
		o->vmt.percpu_current = strtoll(arg, &end, 0);
		if (errno || *end || end == arg || (o->vmt.percpu_current & 7)) {
			p_err("--percpu-current: '%s' is not an 8-byte aligned offset (e.g. 0x1fb80, -1277018088)", arg);
			return -EINVAL;
		}
		o->vmt.percpu_current_set = true;
		return 1;
	case 0x207: return parse_num("--sched-rate", arg, 0.01, 1000, &o->sched_hz);
	case 0x208:
		if (parse_secs("--sched-window", arg, 0.2, 60, &o->vmt.sched_window_s) < 0)
			return -EINVAL;
		return 1;
	case 0x209: o->vmt.sched_window_s = -1; return 1;
	case 0x206:
		if (parse_size(arg, &o->vmt.max_bytes) || !o->vmt.max_bytes) {
			p_err("--max-bytes: '%s' is not a size (e.g. 64M)", arg);
			return -EINVAL;
		}
		return 1;
	}
	return 0;
}

static void set_defaults(struct trace_opts *o)
{
	if (o->rate_hz <= 0)
		o->rate_hz = 100;
	if (o->task_hz <= 0)
		o->task_hz = 20;
	if (o->task_hz > o->rate_hz)
		o->task_hz = o->rate_hz;
	if (o->sched_hz <= 0)
		o->sched_hz = 1;
}

/* The scheduler's counters of every task of the last walk, to the sink. */
static void sched_snapshot(struct vm_tracer *t, const struct trace_sink *s)
{
	/* stamped when read, not at the tick: a session window's edges must be the counters' own */
	struct sess_sched_hdr h = { .time_ns = t->counters_ns, .vm = t->index };
	struct sess_sched_rec *r;

	if (!s->sched || !t->sched.found || !t->walk_ns || !t->ntasks)
		return;
	r = calloc(t->ntasks, sizeof(*r));
	if (!r)
		return;
	for (size_t i = 0; i < t->ntasks; i++) {
		const struct vmt_task *k = &t->tasks[i];

		if (!k->sched_ok)
			continue;
		r[h.n++] = (struct sess_sched_rec){ .task = k->addr, .sum_exec_ns = k->sum_exec_ns, .nvcsw = k->nvcsw,
						    .nivcsw = k->nivcsw, .tid = k->pid, .tgid = k->tgid };
		memcpy(r[h.n - 1].comm, k->comm, 16);
	}
	if (h.n)   /* an empty snapshot would make every later task look born in the window */
		s->sched(s->ctx, &h, r);
	free(r);
}

/* Set up the VM of QEMU pid in slot index (its offsets discovered or taken from the cache). several: a
 * failure is a warning (the VM is skipped), not the command's result. 0 or -errno. */
static int open_vm(struct trace_state *st, size_t index, pid_t pid, const struct vmt_opts *vo, bool several)
{
	struct vm_tracer *t = &st->vms[index];
	/* with several VMs a failing one is skipped: its error is a diagnostic on stderr, not the command's JSON
	 * result on stdout */
	bool json = log_json;
	char where[48];
	int err;

	if (several)
		log_json = false;
	err = vmt_open(t, (uint32_t)index, pid, vo);
	log_json = json;
	if (err) {
		vmt_close(t);
		if (several)
			p_warn("skipping pid %d", (int)pid);
		return err;
	}
	if (t->res.paging32)   /* 32-bit: relative to the per-CPU copy of gdt_page, which the GDTR names */
		snprintf(where, sizeof(where), "per-CPU gdt_page %+" PRId64, t->res.percpu_current);
	else if (t->res.arm64)   /* the per-CPU offset plus a variable's link address */
		snprintf(where, sizeof(where), "TPIDR_EL1 + %#" PRIx64, (uint64_t)t->res.percpu_current);
	else if ((uint64_t)t->res.percpu_current >= 0xffff800000000000ULL)   /* not zero-based: an image address */
		snprintf(where, sizeof(where), "GS base + %#" PRIx64, (uint64_t)t->res.percpu_current);
	else
		snprintf(where, sizeof(where), "GS base %+" PRId64, t->res.percpu_current);
	p_info("%s (pid %d, %s, %u vCPU): %s; %u tasks, current task at %s", t->info.name[0] ?
	       t->info.name : "?", (int)t->info.pid, t->info.accel, t->nvcpu,
	       t->cached ? "offsets from the cache" : "offsets discovered", t->res.ntasks, where);
	return 0;
}

#define FOLLOW_SCAN_NS   2000000000ULL    /* -a --follow: the host's QEMU processes listed again */
#define FOLLOW_RETRY_NS  10000000000ULL   /* a VM that could not be set up (still booting) tried again */

/* A VM whose set-up failed: tried again FOLLOW_RETRY_NS later. */
static void follow_later(struct trace_state *st, pid_t pid, uint64_t now)
{
	for (size_t i = 0; i < st->nwaiting; i++)
		if (st->waiting[i].pid == pid) {
			st->waiting[i].retry_ns = now + FOLLOW_RETRY_NS;
			return;
		}
	if (st->nwaiting < TRACE_MAX_WAITING)
		st->waiting[st->nwaiting++] = (struct trace_waiting){ pid, now + FOLLOW_RETRY_NS };
}

/* -a --follow: VMs started since, set up in a free slot (or the slot of a VM that is gone). The other VMs
 * are not polled while one is discovered (~0.1-2 s). Returns the slots filled. */
static size_t follow_scan(const struct trace_opts *o, struct trace_state *st, const struct trace_sink *s,
			  uint64_t now)
{
	struct vm_info *v;
	size_t n, added = 0;

	if (vm_list(false, &v, &n))
		return 0;
	for (size_t i = 0; i < n && !trace_interrupted; i++) {
		pid_t pid = v[i].pid;
		size_t slot = st->nvms, w;
		bool known = false;

		for (size_t k = 0; k < st->nvms; k++) {
			known |= !st->vms[k].gone && st->vms[k].info.pid == pid;
			if (st->vms[k].gone && slot == st->nvms)
				slot = k;
		}
		for (w = 0; w < st->nwaiting && st->waiting[w].pid != pid; w++)
			;
		if (known || (w < st->nwaiting && now < st->waiting[w].retry_ns))
			continue;
		if (slot == TRACE_MAX_VMS) {
			p_dbg("--follow: pid %d not traced: %d VMs already", (int)pid, TRACE_MAX_VMS);
			continue;
		}
		if (slot < st->nvms)
			vmt_close(&st->vms[slot]);   /* a gone VM's slot: its counters end with it */
		if (open_vm(st, slot, pid, &o->vmt, true)) {
			follow_later(st, pid, vmt_now_ns());
			continue;
		}
		if (w < st->nwaiting)
			st->waiting[w] = st->waiting[--st->nwaiting];
		if (slot == st->nvms)
			st->nvms++;
		added++;
		if (s->vm_ready)
			s->vm_ready(s->ctx, &st->vms[slot]);
	}
	/* pids that are no longer QEMU processes are forgotten */
	for (size_t w = 0; w < st->nwaiting;) {
		bool there = false;

		for (size_t i = 0; i < n; i++)
			there |= v[i].pid == st->waiting[w].pid;
		if (there)
			w++;
		else
			st->waiting[w] = st->waiting[--st->nwaiting];
	}
	free(v);
	return added;
}

int trace_setup(const struct trace_opts *oin, struct trace_state *st, const struct trace_sink *s)
{
	struct trace_opts o = *oin;
	pid_t pids[TRACE_MAX_VMS];
	size_t npids = 0;
	struct timespec rt, mono;
	int err = 0;

	set_defaults(&o);
	memset(st, 0, sizeof(*st));
	hup_reopens = o.hup_reopens;
	signals_install();
	if (o.all == (o.npids > 0)) {
		p_err(o.all ? "give either -a or --pid, not both" : "which VM? give --pid PID (repeatable) or -a");
		return -EINVAL;
	}
	if (o.follow && !o.all) {
		p_err("--follow needs -a");
		return -EINVAL;
	}
	if (o.vmt.qmp && o.npids != 1) {
		p_err("--qmp needs exactly one --pid");
		return -EINVAL;
	}
	if (o.all) {
		struct vm_info *v;
		size_t n;

		err = vm_list(false, &v, &n);
		if (err) {
			p_err("listing VMs: %s", strerror(-err));
			return err;
		}
		for (size_t i = 0; i < n && npids < TRACE_MAX_VMS; i++)
			pids[npids++] = v[i].pid;
		if (n > TRACE_MAX_VMS)
			p_warn("%zu VMs on this host; tracing the first %d", n, TRACE_MAX_VMS);
		free(v);
		if (!npids && o.follow) {
			p_info("no QEMU VM runs on this host yet: waiting for one (--follow)");
		} else if (!npids) {
			p_err("no QEMU VM runs on this host");
			return -ESRCH;   /* an error (exit 1), not an undetermined answer */
		}
	} else {
		memcpy(pids, o.pids, o.npids * sizeof(pid_t));
		npids = o.npids;
	}
	for (size_t i = 0; i < npids && !trace_interrupted; i++) {
		err = open_vm(st, st->nvms, pids[i], &o.vmt, npids > 1 || o.follow);
		if (err && npids == 1 && !o.follow)
			return err;
		if (!err)
			st->nvms++;
		else
			follow_later(st, pids[i], vmt_now_ns());
	}
	if (!st->nvms && !(o.follow && !trace_interrupted)) {
		if (trace_interrupted) {
			p_err("interrupted before any VM was set up: nothing traced");
			return -EINTR;
		}
		p_err("no VM could be set up");
		return -ENOENT;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	st->wall_offset_ns = ((int64_t)rt.tv_sec - mono.tv_sec) * 1000000000LL + (rt.tv_nsec - mono.tv_nsec);
	st->t_start = vmt_now_ns();

	/* Event mode. Only a KVM guest can be seen by KVM's tracepoints; whether they show CR3 is the host's
	 * business (`vmoffset-trace probe`). Either way switches come from polling the per-CPU current task:
	 * the capture adds the timing hint (a CR3 change forces a poll of that VM at once) and exit stats. */
	bool any_kvm = false;
	for (size_t i = 0; i < st->nvms; i++)
		any_kvm |= !strcmp(st->vms[i].info.accel, "kvm");
	if (any_kvm && !o.no_bpf) {
		struct capture_opts co = { 0 };
		pid_t cp[TRACE_MAX_VMS];
		const char *missing = NULL;

		for (size_t i = 0; i < st->nvms; i++)
			cp[i] = st->vms[i].info.pid;
		co.pids = cp;
		co.npids = st->nvms;
		co.no_io = true;
		if (capture_check_privilege(&missing)) {
			p_dbg("BPF capture unavailable: missing %s", missing ? missing : "privilege");
		} else if ((err = capture_open(&co, &st->cap))) {
			p_dbg("BPF capture unavailable: %s", strerror(-err));
			st->cap = NULL;
		} else {
			st->bpf = true;
		}
		err = 0;
	}
	if (st->bpf)
		snprintf(st->mode, sizeof(st->mode), "mode: bpf+poll: KVM tracepoints (CR3-change hints, exit statistics); "
			 "current task per vCPU read at %.0f Hz, task list at %.0f Hz", o.rate_hz, o.task_hz);
	else
		snprintf(st->mode, sizeof(st->mode), "mode: poll: current task per vCPU read from guest memory at %.0f Hz, "
			 "task list walked at %.0f Hz (%s)", o.rate_hz, o.task_hz,
			 any_kvm ? "BPF capture not available" : "TCG guest: no KVM hook sees its CR3");
	p_info("%s", st->mode);
	p_info("switch events and per-vCPU times are samples of the current task (runs between two polls are missed); "
	       "exact CPU time and switch counts come from the guest scheduler's counters (live -I, report)");
	for (size_t i = 0; i < st->nvms; i++)
		if (s->vm_ready)
			s->vm_ready(s->ctx, &st->vms[i]);
	return 0;
}

struct cap_ctx {
	struct trace_state *st;
	bool hint[TRACE_MAX_VMS];
};

static int on_capture(void *ctx, const struct capture_event *ev, const struct observation *obs)
{
	struct cap_ctx *c = ctx;

	if (!obs)
		return 0;
	for (size_t i = 0; i < c->st->nvms; i++)
		if ((uint32_t)c->st->vms[i].info.pid == ev->tgid)
			c->hint[i] = true;
	return 0;
}

struct exit_ctx {
	json_writer_t *w;
	struct trace_state *st;
	size_t n;
};

/* A row's object opened with its VM (index, -1 when not one of ours) and QEMU pid. */
static void start_vm_row(struct exit_ctx *c, uint32_t tgid)
{
	int64_t vm = -1;

	for (size_t i = 0; i < c->st->nvms; i++)
		if ((uint32_t)c->st->vms[i].info.pid == tgid)
			vm = (int64_t)i;
	jsonw_start_object(c->w);
	jsonw_int_field(c->w, "vm", vm);
	jsonw_u64_field(c->w, "qemu_pid", tgid);
}

static int on_exit_count(void *ctx, const struct capture_exit_key *k, uint64_t n)
{
	struct exit_ctx *c = ctx;
	char buf[32];

	start_vm_row(c, k->tgid);
	if (k->vcpu_id == CAP_VCPU_UNKNOWN)
		jsonw_null_field(c->w, "vcpu");
	else
		jsonw_u64_field(c->w, "vcpu", k->vcpu_id);
	jsonw_string_field(c->w, "isa", k->isa == 1 ? "vmx" : k->isa == 2 ? "svm" : "?");
	jsonw_u64_field(c->w, "reason", k->reason);
	jsonw_string_field(c->w, "name", capture_exit_reason_name(k->isa, k->reason, buf, sizeof(buf)));
	jsonw_u64_field(c->w, "count", n);
	jsonw_end_object(c->w);
	c->n++;
	return 0;
}

static int on_latency(void *ctx, const struct capture_vcpu_key *k, const struct capture_vcpu_lat *l)
{
	struct exit_ctx *c = ctx;

	start_vm_row(c, k->tgid);
	jsonw_u64_field(c->w, "vcpu", k->vcpu_id);
	jsonw_u64_field(c->w, "exits", l->count);
	jsonw_u64_field(c->w, "total_ns", l->total_ns);
	jsonw_u64_field(c->w, "max_ns", l->max_ns);
	jsonw_end_object(c->w);
	c->n++;
	return 0;
}

/* {"available":..., "reason":..., "exits":[{isa,reason,count}], "latency":[{vm,vcpu,exits,total_ns,max_ns}]} */
static void exit_stats_fill(json_writer_t *w, void *arg)
{
	struct trace_state *st = arg;
	struct exit_ctx c = { .w = w, .st = st };
	size_t nexits = 0;

	jsonw_start_object(w);
	if (st->cap) {
		jsonw_name(w, "exits");
		jsonw_start_array(w);
		capture_foreach_exit(st->cap, on_exit_count, &c);
		nexits = c.n;
		jsonw_end_array(w);
		jsonw_name(w, "latency");
		jsonw_start_array(w);
		capture_foreach_latency(st->cap, on_latency, &c);
		jsonw_end_array(w);
	}
	if (st->cap) {   /* the BPF side's own counters: drops are reported, never silent */
		struct capture_counters ctr;

		if (!capture_counters_read(st->cap, &ctr)) {
			jsonw_name(w, "capture");
			jsonw_start_object(w);
			jsonw_u64_field(w, "seen", ctr.seen);
			jsonw_u64_field(w, "filtered", ctr.filtered);
			jsonw_u64_field(w, "deduped", ctr.deduped);
			jsonw_u64_field(w, "emitted", ctr.emitted);
			jsonw_u64_field(w, "dropped", ctr.dropped);
			jsonw_end_object(w);
			if (ctr.dropped)
				p_warn("%llu capture event(s) dropped: the ring buffer was full (%llu delivered)",
				       (unsigned long long)ctr.dropped, (unsigned long long)ctr.emitted);
		}
	}
	jsonw_bool_field(w, "available", st->cap && nexits > 0);
	jsonw_string_field(w, "reason", !st->cap ? "not available on this host: no KVM exit tracepoint sees these guests"
				       : nexits ? "kvm_exit / kvm_entry tracepoints"
				       : "not available on this host: kvm_exit did not fire (no VMX/SVM)");
	jsonw_end_object(w);
}

static void exit_stats(struct trace_state *st)
{
	free(st->exit_stats_json);
	st->exit_stats_json = jsonw_text(exit_stats_fill, st);
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000ULL), (long)(t % 1000000000ULL) };

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);   /* EINTR: a signal; the loop checks */
}

int trace_loop(const struct trace_opts *oin, struct trace_state *st, const struct trace_sink *s)
{
	struct trace_opts o = *oin;
	struct cap_ctx cc = { .st = st };
	uint64_t period, task_period, next, next_tasks, end, sched_period, next_sched[TRACE_MAX_VMS] = { 0 };
	uint64_t jitter = vmt_now_ns(), next_follow = vmt_now_ns() + FOLLOW_SCAN_NS;
	size_t alive = st->nvms;
	int err = 0;

	set_defaults(&o);
	period = (uint64_t)(1e9 / o.rate_hz);
	task_period = (uint64_t)(1e9 / o.task_hz);
	sched_period = (uint64_t)(1e9 / o.sched_hz);
	/* signals are caught since trace_setup. From here on a failing read (a QEMU exiting) is a diagnostic on
	 * stderr; stdout carries events */
	bool json = log_json;
	log_json = false;
	next = next_tasks = vmt_now_ns();
	end = o.duration_s > 0 ? st->t_start + (uint64_t)(o.duration_s * 1e9) : UINT64_MAX;

	while (!trace_interrupted && (alive || o.follow)) {
		uint64_t now = vmt_now_ns();
		bool tasks_due = now >= next_tasks;

		if (now >= end)
			break;
		if (o.follow && now >= next_follow) {
			size_t added = follow_scan(&o, st, s, now);

			alive += added;
			if (added)
				p_info("--follow: %zu VM(s) added; %zu traced", added, alive);
			next_follow = vmt_now_ns() + FOLLOW_SCAN_NS;
		}
		if (st->cap)
			capture_poll(st->cap, 0, on_capture, &cc);
		for (size_t i = 0; i < st->nvms; i++) {
			struct vm_tracer *t = &st->vms[i];

			if (t->gone)
				continue;
			/* tasks first: a switch to a new task then finds it in the fresh walk */
			bool walk = tasks_due || vmt_alloc_moved(t);

			if (walk && vmt_poll_tasks(t, now, s->event, s->ctx) == VMT_REDISCOVERED && s->vm_ready)
				s->vm_ready(s->ctx, t);   /* the guest restarted: its new identity and offsets */
			if (!t->gone && !vmt_poll_current(t, now, s->event, s->ctx) && vmt_sched_tick(t, now) && s->vm_ready)
				s->vm_ready(s->ctx, t);   /* its scheduler offsets: exact counters from now on */
			if (tasks_due && !t->gone && t->walk_ns >= next_sched[i] && t->walk_ns == now) {
				sched_snapshot(t, s);
				next_sched[i] = (next_sched[i] ? next_sched[i] : now) + sched_period;
				if (next_sched[i] < now)
					next_sched[i] = now + sched_period;
			}
			cc.hint[i] = false;
			if (t->gone) {
				alive--;
				p_info("%s (pid %d): QEMU is gone; %zu VM(s) left", t->info.name, (int)t->info.pid, alive);
				if (s->vm_gone)
					s->vm_gone(s->ctx, t);
			}
		}
		if (tasks_due)
			next_tasks += task_period;
		if (next_tasks < now)
			next_tasks = now + task_period;
		if (s->tick && (err = s->tick(s->ctx, now)))
			break;   /* -EPIPE (stdout closed) ends it normally, anything else is an error */
		/* the next poll after period ±25 %: a guest whose threads run on a fixed period (a 50 Hz
		 * duty cycle against 100 Hz polls) would otherwise be seen at the same phase every time */
		jitter = jitter * 6364136223846793005ULL + 1442695040888963407ULL;
		next += period - period / 4 + (period / 2) * (jitter >> 40) / (1ULL << 24);
		if (next < now)   /* fell behind (slow reads): do not burst to catch up */
			next = now + period;
		/* a tied mm/active_mm pair: a quarter of the gap watches for a kernel thread on a vCPU */
		for (size_t i = 0; i < st->nvms; i++) {
			uint64_t t_now = vmt_now_ns();
			if (st->vms[i].res.npairs && next > t_now)
				vmt_watch_pairs(&st->vms[i], (next - t_now) / 4 / st->nvms);
		}
		if (st->cap) {
			/* wait on the ring buffer up to the next tick: a CR3 change ends the wait early */
			int64_t wait_ms = (int64_t)(next - vmt_now_ns()) / 1000000;
			if (wait_ms > 0 && capture_poll(st->cap, (int)wait_ms, on_capture, &cc) > 0)
				for (size_t i = 0; i < st->nvms; i++)
					if (cc.hint[i] && !st->vms[i].gone)
						vmt_poll_current(&st->vms[i], vmt_now_ns(), s->event, s->ctx);
		}
		sleep_until(next < end ? next : end);
	}
	/* the window's end: a last walk, then its counters (a VM that is gone keeps its last snapshot) */
	for (size_t i = 0; i < st->nvms; i++) {
		struct vm_tracer *t = &st->vms[i];
		uint64_t now = vmt_now_ns();

		if (!t->gone && !t->restarting && t->sched.found && vmt_poll_tasks(t, now, s->event, s->ctx) == 0 &&
		    t->walk_ns == now)
			sched_snapshot(t, s);
	}
	log_json = json;
	exit_stats(st);
	return err;
}

void trace_teardown(struct trace_state *st)
{
	signals_restore();
	for (size_t i = 0; i < st->nvms; i++)
		vmt_close(&st->vms[i]);
	if (st->cap)
		capture_close(st->cap);
	st->cap = NULL;
	free(st->exit_stats_json);
	st->exit_stats_json = NULL;
	st->nvms = 0;
}
