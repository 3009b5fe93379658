/* process_event → per-vCPU state → per-process counters → printers; see analysis.h. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/guest_text.h"
#include "common/oatab.h"
#include "trace/analysis.h"

void an_init(struct analysis *a)
{
	memset(a, 0, sizeof(*a));
}

void an_free(struct analysis *a)
{
	free(a->tab);
	a->tab = NULL;
	a->cap = a->n = 0;
	free(a->st);
	a->st = NULL;
	a->st_cap = a->st_n = 0;
}

void an_set_vm(struct analysis *a, uint32_t index, const char *name, int32_t pid, uint32_t nvcpus)
{
	if (index >= AN_MAX_VMS)
		return;
	a->vms[index].used = true;
	snprintf(a->vms[index].name, sizeof(a->vms[index].name), "%s", name && *name ? name : "?");
	a->vms[index].pid = pid;
	a->vms[index].nvcpus = nvcpus;
}

void an_set_vm_identity(struct analysis *a, uint32_t index, const char *uuid, const char *boot_id)
{
	if (index >= AN_MAX_VMS)
		return;
	snprintf(a->vms[index].uuid, sizeof(a->vms[index].uuid), "%s", uuid ? uuid : "");
	snprintf(a->vms[index].boot_id, sizeof(a->vms[index].boot_id), "%s", boot_id ? boot_id : "");
}

const char *an_vm_name(const struct analysis *a, uint32_t index)
{
	return index < AN_MAX_VMS && a->vms[index].used ? a->vms[index].name : "?";
}

static uint64_t hash3(uint32_t vm, uint32_t vcpu, int32_t pid)
{
	uint64_t h = ((uint64_t)vm << 48) ^ ((uint64_t)vcpu << 32) ^ (uint32_t)pid;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t entry_hash(const void *e)
{
	const struct an_entry *x = e;

	return hash3(x->vm, x->vcpu, x->pid);
}

static bool entry_same(const void *a, const void *b)
{
	const struct an_entry *x = a, *y = b;

	return x->vm == y->vm && x->vcpu == y->vcpu && x->pid == y->pid;
}

static const struct oatab_type entry_type = { sizeof(struct an_entry), offsetof(struct an_entry, used), 1024,
					      entry_hash, entry_same };

static struct an_entry *entry(struct analysis *a, uint32_t vm, uint32_t vcpu, int32_t pid)
{
	struct an_entry key = { .vm = vm, .vcpu = vcpu, .pid = pid, .tgid = pid, .ppid = -1 };
	bool fresh;

	return oatab_slot(&entry_type, (void **)&a->tab, &a->cap, &a->n, &key, &fresh);
}

static struct an_vcpu *vcpu_state(struct analysis *a, uint32_t vm, uint32_t vcpu)
{
	for (size_t i = 0; i < a->nvcpu; i++)
		if (a->vcpu[i].vm == vm && a->vcpu[i].vcpu == vcpu)
			return &a->vcpu[i];
	if (a->nvcpu >= sizeof(a->vcpu) / sizeof(a->vcpu[0]))
		return NULL;
	a->vcpu[a->nvcpu] = (struct an_vcpu){ .vm = vm, .vcpu = vcpu, .pid = -1 };
	return &a->vcpu[a->nvcpu++];
}

static void attribute(struct analysis *a, struct an_vcpu *s, uint64_t t)
{
	struct an_entry *e1, *e2;
	uint64_t d, div;

	if (!s->running || t <= s->since)
		return;
	d = t - s->since;
	div = t - (s->since > a->iv_start ? s->since : (a->iv_start < t ? a->iv_start : t));
	e1 = entry(a, s->vm, s->vcpu, s->pid);
	if (e1) {
		e1->time_ns += d;
		e1->iv_time_ns += div;
	}
	e2 = entry(a, s->vm, SESS_VCPU_NONE, s->pid);   /* after e1's update: a lookup may grow the table */
	if (e2) {
		e2->time_ns += d;
		e2->iv_time_ns += div;
	}
	if (a->on_run)
		a->on_run(a->on_run_ctx, s, s->since, t);
	s->since = t;
}

static void note(struct an_entry *e, const struct sess_event *ev)
{
	if (!e)
		return;
	e->tgid = ev->tgid;
	if (ev->ppid >= 0)
		e->ppid = ev->ppid;
	memcpy(e->comm, ev->comm, 16);
	if (!e->first_ns)
		e->first_ns = ev->time_ns;
	e->last_ns = ev->time_ns;
}

void an_event(struct analysis *a, const struct sess_event *ev)
{
	struct an_entry *p;

	if (ev->type >= SEV_NR)
		return;
	if (!a->t_first || ev->time_ns < a->t_first)
		a->t_first = ev->time_ns;
	if (ev->time_ns > a->t_last)
		a->t_last = ev->time_ns;
	if (!a->iv_start)
		a->iv_start = ev->time_ns;
	a->count[ev->type]++;
	if (ev->type == SEV_LOST) {   /* pids no walk saw: no task to attribute anything to */
		if (ev->prev_pid >= ev->pid && ev->pid >= 0)
			a->lost_pids += (uint64_t)(ev->prev_pid - ev->pid) + 1;
		return;
	}
	if (ev->type == SEV_RESTART) {   /* no task: the vCPUs run nothing known until the new kernel's switches */
		for (size_t i = 0; i < a->nvcpu; i++)
			if (a->vcpu[i].vm == ev->vm) {
				attribute(a, &a->vcpu[i], ev->time_ns);
				a->vcpu[i].running = false;
			}
		return;
	}
	p = entry(a, ev->vm, SESS_VCPU_NONE, ev->pid);
	note(p, ev);
	if (p && ev->pid == 0)   /* the idle tasks of all vCPUs share pid 0: one row (per vCPU they are apart) */
		memcpy(p->comm, "swapper/*\0\0\0\0\0\0", 16);
	switch (ev->type) {
	case SEV_SWITCH: {
		struct an_vcpu *s = vcpu_state(a, ev->vm, ev->vcpu);
		struct an_entry *e;

		if (!s)
			break;
		attribute(a, s, ev->time_ns);
		s->pid = ev->pid;
		s->tgid = ev->tgid;
		memcpy(s->comm, ev->comm, 16);
		s->since = ev->time_ns;
		s->running = true;
		s->switches++;
		s->iv_switches++;
		e = entry(a, ev->vm, ev->vcpu, ev->pid);
		note(e, ev);
		if (e) {
			e->switches_in++;
			e->iv_switches++;
		}
		p = entry(a, ev->vm, SESS_VCPU_NONE, ev->pid);   /* after e's update: the table may have grown */
		if (p) {
			p->switches_in++;
			p->iv_switches++;
		}
		break;
	}
	case SEV_FORK: if (p) p->forks++; break;
	case SEV_EXEC: if (p) p->execs++; break;
	case SEV_RENAME: if (p) p->renames++; break;
	case SEV_EXIT: if (p) p->exits++; break;
	}
}

/* ---- the guest scheduler's own counters --------------------------------------------------------- */

static uint64_t sched_hash(const void *e)
{
	const struct an_sched_task *x = e;

	return hash3(x->vm, (uint32_t)(x->task >> 4), x->tid);
}

static bool sched_same(const void *a, const void *b)
{
	const struct an_sched_task *x = a, *y = b;

	return x->vm == y->vm && x->task == y->task && x->tid == y->tid;
}

static const struct oatab_type sched_type = { sizeof(struct an_sched_task), offsetof(struct an_sched_task, used),
					      512, sched_hash, sched_same };

static struct an_sched_task *sched_task(struct analysis *a, uint32_t vm, uint64_t task, int32_t tid, bool *fresh)
{
	struct an_sched_task key = { .vm = vm, .task = task, .tid = tid };

	return oatab_slot(&sched_type, (void **)&a->st, &a->st_cap, &a->st_n, &key, fresh);
}

void an_sched(struct analysis *a, const struct sess_sched_hdr *h, const struct sess_sched_rec *r)
{
	struct an_vm *v;

	if (h->vm >= AN_MAX_VMS)
		return;
	v = &a->vms[h->vm];
	for (uint32_t k = 0; k < h->n; k++) {
		bool fresh;
		struct an_sched_task *t = sched_task(a, h->vm, r[k].task, r[k].tid, &fresh);
		uint64_t now[AN_NCTR] = { r[k].sum_exec_ns, r[k].nvcsw, r[k].nivcsw };

		if (!t)
			return;
		t->tgid = r[k].tgid;
		memcpy(t->comm, r[k].comm, 16);
		if (fresh) {
			/* there at the first snapshot: counted from there; born since: from zero (its counters
			 * started with it) */
			for (int c = 0; c < AN_NCTR; c++) {
				t->base[c] = v->sched_snaps ? 0 : now[c];
				t->iv_base[c] = v->sched_snaps ? 0 : now[c];
			}
		}
		for (int c = 0; c < AN_NCTR; c++)   /* a counter never goes back: a smaller value is a torn read */
			if (now[c] >= t->last[c])
				t->last[c] = now[c];
	}
	if (!v->sched_snaps++) {
		v->sched_first_ns = h->time_ns;
		v->sched_iv_ns = h->time_ns;
	}
	v->sched_last_ns = h->time_ns;
}

void an_set_sched_note(struct analysis *a, uint32_t vm, const char *note)
{
	if (vm < AN_MAX_VMS)
		snprintf(a->vms[vm].sched_note, sizeof(a->vms[vm].sched_note), "%s", note ? note : "");
}

double an_exact_window_s(const struct analysis *a, uint32_t vm, bool interval)
{
	const struct an_vm *v;

	if (vm >= AN_MAX_VMS || a->vms[vm].sched_snaps < 2)
		return 0;
	v = &a->vms[vm];
	return (v->sched_last_ns - (interval ? v->sched_iv_ns : v->sched_first_ns)) / 1e9;
}

static int cmp_exact(const void *x, const void *y)
{
	const struct an_exact *a = x, *b = y;

	if (a->cpu_ns != b->cpu_ns)
		return a->cpu_ns < b->cpu_ns ? 1 : -1;
	return (a->tgid > b->tgid) - (a->tgid < b->tgid);
}

static int cmp_task_tgid(const void *x, const void *y)
{
	const struct an_sched_task *a = *(const struct an_sched_task *const *)x, *b = *(const struct an_sched_task *const *)y;

	if (a->tgid != b->tgid)
		return (a->tgid > b->tgid) - (a->tgid < b->tgid);
	return (a->tid > b->tid) - (a->tid < b->tid);
}

struct an_exact *an_exact_list(const struct analysis *a, uint32_t vm, bool interval, size_t *n)
{
	const struct an_sched_task **t;
	struct an_exact *list;
	size_t nt = 0, cnt = 0;

	*n = 0;
	if (vm >= AN_MAX_VMS || a->vms[vm].sched_snaps < 2)
		return NULL;
	list = calloc(a->st_n ? a->st_n : 1, sizeof(*list));
	t = calloc(a->st_n ? a->st_n : 1, sizeof(*t));
	if (!list || !t) {
		free(list);
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < a->st_cap; i++)
		if (a->st[i].used && a->st[i].vm == vm)
			t[nt++] = &a->st[i];
	qsort(t, nt, sizeof(*t), cmp_task_tgid);   /* a process's threads next to each other */
	for (size_t i = 0; i < nt; i++) {
		const uint64_t *b = interval ? t[i]->iv_base : t[i]->base;
		struct an_exact *e = cnt && list[cnt - 1].tgid == t[i]->tgid ? &list[cnt - 1] : NULL;

		if (!e) {
			e = &list[cnt++];
			*e = (struct an_exact){ .vm = vm, .tgid = t[i]->tgid };
		}
		if (t[i]->tid == t[i]->tgid || !e->comm[0])   /* the process is named after its leader */
			memcpy(e->comm, t[i]->comm, 16);
		e->cpu_ns += t[i]->last[AN_SUM_EXEC] - b[AN_SUM_EXEC];
		e->nvcsw += t[i]->last[AN_NVCSW] - b[AN_NVCSW];
		e->nivcsw += t[i]->last[AN_NIVCSW] - b[AN_NIVCSW];
		e->threads++;
	}
	free(t);
	qsort(list, cnt, sizeof(*list), cmp_exact);
	*n = cnt;
	return list;
}

/* Start a new interval of the exact figures: what has been counted so far is its base. */
static void sched_iv_reset(struct analysis *a)
{
	for (size_t i = 0; i < a->st_cap; i++)
		if (a->st[i].used)
			memcpy(a->st[i].iv_base, a->st[i].last, sizeof(a->st[i].last));
	for (int v = 0; v < AN_MAX_VMS; v++)
		if (a->vms[v].sched_snaps)
			a->vms[v].sched_iv_ns = a->vms[v].sched_last_ns;
}

void an_close_runs(struct analysis *a, uint64_t t)
{
	for (size_t i = 0; i < a->nvcpu; i++)
		attribute(a, &a->vcpu[i], t);
	if (t > a->t_last)
		a->t_last = t;
}

/* ------------------------------------------------------------------------------------------------ */

static void comm_str(const char c[16], char out[17])
{
	memcpy(out, c, 16);
	out[16] = 0;
}

static void wall(uint64_t mono, int64_t off, char *buf, size_t len)
{
	int64_t ns = (int64_t)mono + off;
	time_t s = (time_t)(ns / 1000000000);
	struct tm tm;

	localtime_r(&s, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns / 1000000 % 1000));
}

void an_print_header(FILE *f, const struct an_line_opts *o)
{
	if (!o->json)
		fprintf(f, "%-12s %10s %-20s %4s %-7s %7s %7s %7s %s\n", "TIME", "T(s)", "VM", "VCPU", "EVENT", "PID",
			"TGID", "PPID", "COMM");
}

#define LOST_LIST_MAX 4096   /* pids listed one by one up to this; the range says the rest */

/* RFC 3339 UTC with nanoseconds, what log shippers parse: 2026-12-05T09:01:02.123456789Z */
static void utc(uint64_t mono, int64_t off, char *buf, size_t len)
{
	int64_t ns = (int64_t)mono + off;
	time_t s = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns % 1000000000));
}

/* An event's JSON object opened with when and where: the envelope (with o->env: schema, seq, ts, host, then
 * vm_uuid and boot_id after vm, vm_pid), time, t. */
static void json_event_head(json_writer_t *w, const struct analysis *a, const struct sess_event *ev, const char *tbuf,
			    double rel, const struct an_line_opts *o)
{
	const struct an_vm *v = ev->vm < AN_MAX_VMS && a->vms[ev->vm].used ? &a->vms[ev->vm] : NULL;

	jsonw_start_object(w);
	if (o->env) {
		char ts[48];

		utc(ev->time_ns, o->wall_offset_ns, ts, sizeof(ts));
		jsonw_int_field(w, "schema", AN_EVENT_SCHEMA);
		jsonw_u64_field(w, "seq", ++o->env->seq);
		jsonw_string_field(w, "ts", ts);
		jsonw_string_field(w, "host", o->env->host ? o->env->host : "");
	}
	jsonw_string_field(w, "vm", an_vm_name(a, ev->vm));
	jsonw_int_field(w, "vm_pid", ev->vm < AN_MAX_VMS ? a->vms[ev->vm].pid : -1);
	if (o->env) {
		if (v && v->uuid[0])
			jsonw_string_field(w, "vm_uuid", v->uuid);
		else
			jsonw_null_field(w, "vm_uuid");
		if (v && v->boot_id[0])
			jsonw_string_field(w, "boot_id", v->boot_id);
		else
			jsonw_null_field(w, "boot_id");
	}
	jsonw_string_field(w, "time", tbuf);
	jsonw_float_field_fmt(w, "t", "%.6f", rel);
}

/* {"event":"lost","count":N,"pids":[...],"range":[first,last]}, or one line: pids first-last (N). */
static void print_lost(FILE *f, json_writer_t *w, const struct analysis *a, const struct sess_event *ev,
		       const struct an_line_opts *o, const char *tbuf, double rel)
{
	int64_t n = ev->prev_pid >= ev->pid && ev->pid >= 0 ? (int64_t)ev->prev_pid - ev->pid + 1 : 0;

	if (o->json && w) {
		json_event_head(w, a, ev, tbuf, rel, o);
		jsonw_null_field(w, "vcpu");
		jsonw_string_field(w, "event", "lost");
		jsonw_int_field(w, "count", n);
		jsonw_name(w, "pids");
		jsonw_start_array(w);
		for (int64_t i = 0; i < n && i < LOST_LIST_MAX; i++)
			jsonw_int(w, ev->pid + i);
		jsonw_end_array(w);
		jsonw_name(w, "range");
		jsonw_start_array(w);
		jsonw_int(w, ev->pid);
		jsonw_int(w, ev->prev_pid);
		jsonw_end_array(w);
		jsonw_end_object(w);
		return;
	}
	fprintf(f, "%-12s %10.6f %-20.20s %4s %-7s %7d %7s %7s %" PRId64 " pid(s) %d-%d started and ended unseen\n",
		tbuf, rel, an_vm_name(a, ev->vm), "-", "lost", ev->pid, "-", "-", n, ev->pid, ev->prev_pid);
}

static void exec_json(json_writer_t *w, const struct an_exec *x)
{
	if (x && x->have_ids) {
		jsonw_u64_field(w, "uid", x->uid);
		jsonw_u64_field(w, "euid", x->euid);
	} else {
		jsonw_null_field(w, "uid");
		jsonw_null_field(w, "euid");
	}
	jsonw_name(w, "argv");
	if (x && x->argv) {
		jsonw_nul_strings(w, x->argv, x->argv_len);
		jsonw_bool_field(w, "argv_truncated", x->argv_truncated);
	} else {
		jsonw_null(w);
	}
}

void an_print_event(FILE *f, json_writer_t *w, const struct analysis *a, const struct sess_event *ev,
		    const struct an_line_opts *o, const struct an_exec *x)
{
	char comm[17], tbuf[32], vcpu[12];
	double rel = ev->time_ns >= o->t0 ? (ev->time_ns - o->t0) / 1e9 : -((o->t0 - ev->time_ns) / 1e9);

	comm_str(ev->comm, comm);
	wall(ev->time_ns, o->wall_offset_ns, tbuf, sizeof(tbuf));
	if (ev->type == SEV_LOST) {
		print_lost(f, w, a, ev, o, tbuf, rel);
		return;
	}
	if (o->json && w) {
		json_event_head(w, a, ev, tbuf, rel, o);
		if (ev->vcpu == SESS_VCPU_NONE)
			jsonw_null_field(w, "vcpu");
		else
			jsonw_u64_field(w, "vcpu", ev->vcpu);
		jsonw_string_field(w, "event", sess_event_name(ev->type));
		jsonw_int_field(w, "pid", ev->pid);
		jsonw_int_field(w, "tgid", ev->tgid);
		jsonw_int_field(w, "ppid", ev->ppid);
		jsonw_name(w, "comm");
		jsonw_string_len(w, comm, 16);
		if (ev->type == SEV_SWITCH) {
			jsonw_int_field(w, "prev_pid", ev->prev_pid);
			jsonw_bool_field(w, "sampled", true);   /* seen by a poll: runs between two polls are missed */
		}
		if (ev->type == SEV_EXEC)
			exec_json(w, x);
		jsonw_hex_field(w, "task", ev->task);
		jsonw_end_object(w);
		return;
	}
	if (ev->vcpu == SESS_VCPU_NONE)
		snprintf(vcpu, sizeof(vcpu), "-");
	else
		snprintf(vcpu, sizeof(vcpu), "%u", ev->vcpu);
	fprintf(f, "%-12s %10.6f %-20.20s %4s %-7s %7d %7d %7d %s", tbuf, rel, an_vm_name(a, ev->vm), vcpu,
		sess_event_name(ev->type), ev->pid, ev->tgid, ev->ppid, comm);
	if (ev->type == SEV_EXEC && x) {   /* uid=U, then the command line (perf's "exec" lines carry it too) */
		char args[1024];
		if (x->have_ids)
			fprintf(f, " uid=%u", x->uid);
		if (x->argv) {
			fprintf(f, " args: %s%s", guest_text(x->argv, x->argv_len, ' ', args, sizeof(args)),
				x->argv_truncated ? " ..." : "");
		}
	}
	fputc('\n', f);
}

static int cmp_time(const void *x, const void *y)
{
	const struct an_entry *const *a = x, *const *b = y;

	if ((*a)->iv_time_ns != (*b)->iv_time_ns)
		return (*a)->iv_time_ns < (*b)->iv_time_ns ? 1 : -1;
	return (*a)->pid - (*b)->pid;
}

/* -i: per VM, the top processes of the interval by the guest's own counters (CPU time, switches). */
static void print_exact_interval(FILE *f, json_writer_t *w, const struct analysis *a, unsigned top)
{
	for (uint32_t vm = 0; vm < AN_MAX_VMS; vm++) {
		const struct an_vm *v = &a->vms[vm];
		double secs = an_exact_window_s(a, vm, true);
		size_t n = 0;
		struct an_exact *e;

		if (!v->used)
			continue;
		e = secs > 0 ? an_exact_list(a, vm, true, &n) : NULL;
		if (w) {
			jsonw_start_object(w);
			jsonw_string_field(w, "vm", v->name);
			if (!e) {
				jsonw_null_field(w, "window_s");
				jsonw_string_field(w, "note", v->sched_note[0] ? v->sched_note : "no two snapshots of the "
						   "scheduler's counters in this interval");
			} else {
				jsonw_float_field_fmt(w, "window_s", "%.3f", secs);
			}
			jsonw_name(w, "top");
			jsonw_start_array(w);
		} else if (!e) {
			fprintf(f, "%-20.20s exact: %s\n", v->name, v->sched_note[0] ? v->sched_note :
				"no two snapshots of the scheduler's counters in this interval");
		} else {
			fprintf(f, "%-20.20s exact over %.2f s (guest counters; pid comm cpu%% vcsw/s ivcsw/s):", v->name, secs);
		}
		for (size_t i = 0; e && i < n && i < top; i++) {
			char comm[17];

			comm_str(e[i].comm, comm);
			if (w) {
				jsonw_start_object(w);
				jsonw_int_field(w, "pid", e[i].tgid);
				jsonw_name(w, "comm");
				jsonw_string_len(w, comm, 16);
				jsonw_u64_field(w, "cpu_ns", e[i].cpu_ns);
				jsonw_float_field_fmt(w, "cpu_pct", "%.1f", e[i].cpu_ns / 1e9 / secs * 100);
				jsonw_u64_field(w, "nvcsw", e[i].nvcsw);
				jsonw_u64_field(w, "nivcsw", e[i].nivcsw);
				jsonw_end_object(w);
			} else {
				fprintf(f, " %d %s %.0f%% %.0f %.0f", e[i].tgid, comm, e[i].cpu_ns / 1e9 / secs * 100,
					e[i].nvcsw / secs, e[i].nivcsw / secs);
			}
		}
		if (w) {
			jsonw_end_array(w);
			jsonw_end_object(w);
		} else if (e) {
			fputc('\n', f);
		}
		free(e);
	}
}

void an_print_interval(FILE *f, json_writer_t *w, struct analysis *a, uint64_t now, const struct an_line_opts *o,
		       unsigned top)
{
	double secs = now > a->iv_start ? (now - a->iv_start) / 1e9 : 0;
	struct an_entry **list = calloc(a->n ? a->n : 1, sizeof(*list));
	char tbuf[32];

	an_close_runs(a, now);
	wall(now, o->wall_offset_ns, tbuf, sizeof(tbuf));
	if (w) {
		jsonw_start_object(w);
		jsonw_string_field(w, "time", tbuf);
		jsonw_float_field_fmt(w, "interval_s", "%.3f", secs);
		jsonw_name(w, "vcpus");
		jsonw_start_array(w);
	} else {
		fprintf(f, "\n%s  interval %.2f s   sampled: the current task of each vCPU read at the poll rate\n"
			"%-20s %4s %12s  %s\n", tbuf, secs, "VM", "VCPU", "SAMPLED_SW/s", "TOP PROCESSES, SAMPLED (pid comm share)");
	}
	for (size_t v = 0; v < a->nvcpu; v++) {
		struct an_vcpu *s = &a->vcpu[v];
		size_t n = 0;

		for (size_t i = 0; list && i < a->cap; i++)
			if (a->tab[i].used && a->tab[i].vm == s->vm && a->tab[i].vcpu == s->vcpu && a->tab[i].iv_time_ns)
				list[n++] = &a->tab[i];
		if (list)
			qsort(list, n, sizeof(*list), cmp_time);
		if (w) {
			jsonw_start_object(w);
			jsonw_string_field(w, "vm", an_vm_name(a, s->vm));
			jsonw_u64_field(w, "vcpu", s->vcpu);
			jsonw_float_field_fmt(w, "sampled_switches_per_s", "%.1f", secs > 0 ? s->iv_switches / secs : 0);
			jsonw_name(w, "top");
			jsonw_start_array(w);
		} else {
			fprintf(f, "%-20.20s %4u %12.1f ", an_vm_name(a, s->vm), s->vcpu, secs > 0 ? s->iv_switches / secs : 0);
		}
		for (size_t i = 0; i < n && i < top; i++) {
			char comm[17];
			double share = secs > 0 ? list[i]->iv_time_ns / 1e9 / secs * 100 : 0;

			comm_str(list[i]->comm, comm);
			if (w) {
				jsonw_start_object(w);
				jsonw_int_field(w, "pid", list[i]->pid);
				jsonw_name(w, "comm");
				jsonw_string_len(w, comm, 16);
				jsonw_float_field_fmt(w, "sampled_share_pct", "%.1f", share);
				jsonw_u64_field(w, "sampled_switches_in", list[i]->iv_switches);
				jsonw_end_object(w);
			} else {
				fprintf(f, " %d %s %.0f%%", list[i]->pid, comm, share);
			}
		}
		if (w) {
			jsonw_end_array(w);
			jsonw_end_object(w);
		} else {
			fputc('\n', f);
		}
	}
	if (w) {
		jsonw_end_array(w);
		jsonw_name(w, "exact");
		jsonw_start_array(w);
	}
	print_exact_interval(f, w, a, top);
	if (w) {
		jsonw_end_array(w);
		jsonw_end_object(w);
	}
	sched_iv_reset(a);
	free(list);
	for (size_t i = 0; i < a->cap; i++)
		if (a->tab[i].used)
			a->tab[i].iv_time_ns = a->tab[i].iv_switches = 0;
	for (size_t v = 0; v < a->nvcpu; v++)
		a->vcpu[v].iv_switches = 0;
	a->iv_start = now;
	fflush(f);
}

int an_sort_parse(const char *s, enum an_sort *k)
{
	static const char *const names[] = { "time", "switches", "pid", "comm", "vm" };

	for (int i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*k = (enum an_sort)i;
			return 0;
		}
	return -EINVAL;
}

static enum an_sort sort_key;

static int cmp_entries(const void *x, const void *y)
{
	const struct an_entry *a = *(const struct an_entry *const *)x, *b = *(const struct an_entry *const *)y;
	int c = 0;

	switch (sort_key) {
	case AN_SORT_TIME: c = (a->time_ns < b->time_ns) - (a->time_ns > b->time_ns); break;
	case AN_SORT_SWITCHES: c = (a->switches_in < b->switches_in) - (a->switches_in > b->switches_in); break;
	case AN_SORT_PID: break;
	case AN_SORT_COMM: c = strncmp(a->comm, b->comm, 16); break;
	case AN_SORT_VM: c = (a->vm > b->vm) - (a->vm < b->vm); break;
	}
	if (!c)
		c = (a->vm > b->vm) - (a->vm < b->vm);
	if (!c)
		c = (a->pid > b->pid) - (a->pid < b->pid);
	if (!c)
		c = (a->vcpu > b->vcpu) - (a->vcpu < b->vcpu);
	return c;
}

struct an_entry **an_entries(const struct analysis *a, bool per_vcpu, enum an_sort key, size_t *n)
{
	struct an_entry **list = calloc(a->n ? a->n : 1, sizeof(*list));

	*n = 0;
	if (!list)
		return NULL;
	for (size_t i = 0; i < a->cap; i++)
		if (a->tab[i].used && (a->tab[i].vcpu != SESS_VCPU_NONE) == per_vcpu)
			list[(*n)++] = &a->tab[i];
	sort_key = key;
	qsort(list, *n, sizeof(*list), cmp_entries);
	return list;
}
