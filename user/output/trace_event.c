/* Trace Event JSON for Perfetto and chrome://tracing; see trace_event.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "common/json_writer.h"
#include "output/trace_event.h"

struct te {
	json_writer_t *w;
	uint64_t base;                 /* ts 0 */
	int64_t tpid[AN_MAX_VMS];      /* each VM's trace pid */
};

static double us(const struct te *t, uint64_t ns)
{
	return ns >= t->base ? (ns - t->base) / 1e3 : 0;
}

static void meta(json_writer_t *w, const char *name, int64_t pid, int64_t tid, const char *key, const char *str,
		 int64_t num)
{
	jsonw_start_object(w);
	jsonw_string_field(w, "name", name);
	jsonw_string_field(w, "ph", "M");
	jsonw_int_field(w, "ts", 0);
	jsonw_int_field(w, "pid", pid);
	jsonw_int_field(w, "tid", tid);
	jsonw_name(w, "args");
	jsonw_start_object(w);
	if (str)
		jsonw_string_field(w, key, str);
	else
		jsonw_int_field(w, key, num);
	jsonw_end_object(w);
	jsonw_end_object(w);
}

/* The analysis' hook: one complete event per run (idle left out). */
static void on_run(void *ctx, const struct an_vcpu *s, uint64_t from, uint64_t to)
{
	struct te *t = ctx;
	json_writer_t *w = t->w;

	if (s->pid == 0 || s->vm >= AN_MAX_VMS)
		return;
	jsonw_start_object(w);
	jsonw_name(w, "name");
	jsonw_string_len(w, s->comm, 16);
	jsonw_string_field(w, "cat", "oncpu");
	jsonw_string_field(w, "ph", "X");
	jsonw_float_field_fmt(w, "ts", "%.3f", us(t, from));
	jsonw_float_field_fmt(w, "dur", "%.3f", (to - from) / 1e3);
	jsonw_int_field(w, "pid", t->tpid[s->vm]);
	jsonw_int_field(w, "tid", (int64_t)s->vcpu + 1);
	jsonw_name(w, "args");
	jsonw_start_object(w);
	jsonw_int_field(w, "pid", s->pid);
	jsonw_int_field(w, "tgid", s->tgid);
	jsonw_name(w, "comm");
	jsonw_string_len(w, s->comm, 16);
	jsonw_end_object(w);
	jsonw_end_object(w);
}

static void instant(struct te *t, const struct sess_event *ev)
{
	json_writer_t *w = t->w;

	jsonw_start_object(w);
	jsonw_string_field(w, "name", sess_event_name(ev->type));
	jsonw_string_field(w, "cat", "lifecycle");
	jsonw_string_field(w, "ph", "i");
	jsonw_string_field(w, "s", "t");
	jsonw_float_field_fmt(w, "ts", "%.3f", us(t, ev->time_ns));
	jsonw_int_field(w, "pid", t->tpid[ev->vm]);
	jsonw_int_field(w, "tid", TE_LIFE_TID);
	jsonw_name(w, "args");
	jsonw_start_object(w);
	if (ev->type == SEV_LOST) {   /* pids pid..prev_pid started and ended between two task-list walks */
		jsonw_int_field(w, "first_pid", ev->pid);
		jsonw_int_field(w, "last_pid", ev->prev_pid);
		jsonw_int_field(w, "count", ev->prev_pid >= ev->pid && ev->pid >= 0 ? (int64_t)ev->prev_pid - ev->pid + 1 : (int64_t)0);
	} else if (ev->type != SEV_RESTART) {
		jsonw_int_field(w, "pid", ev->pid);
		jsonw_int_field(w, "tgid", ev->tgid);
		if (ev->type == SEV_FORK)
			jsonw_int_field(w, "ppid", ev->ppid);
		jsonw_name(w, "comm");
		jsonw_string_len(w, ev->comm, 16);
	}
	jsonw_end_object(w);
	jsonw_end_object(w);
}

int trace_event_write(FILE *f, const struct analysis *vms, const struct sess_event *ev, size_t n, uint64_t t0)
{
	struct te t = { .base = t0 };
	struct analysis an;
	bool used[AN_MAX_VMS] = { false };
	uint32_t nvcpus[AN_MAX_VMS] = { 0 };
	char name[160];
	int err;

	for (size_t i = 0; i < n; i++) {   /* the VMs and vCPUs the events name */
		if (ev[i].vm >= AN_MAX_VMS)
			continue;
		used[ev[i].vm] = true;
		if (ev[i].type == SEV_SWITCH && ev[i].vcpu != SESS_VCPU_NONE && ev[i].vcpu + 1 > nvcpus[ev[i].vm])
			nvcpus[ev[i].vm] = ev[i].vcpu + 1;
		if (ev[i].time_ns < t.base)
			t.base = ev[i].time_ns;
	}
	for (uint32_t v = 0; v < AN_MAX_VMS; v++) {
		int32_t qpid = vms->vms[v].used ? vms->vms[v].pid : -1;

		used[v] = used[v] || vms->vms[v].used;
		if (vms->vms[v].used && vms->vms[v].nvcpus > nvcpus[v] && vms->vms[v].nvcpus <= 4096)
			nvcpus[v] = vms->vms[v].nvcpus;
		/* the QEMU pid names the trace process; past Linux's pid range when unknown or taken by another */
		t.tpid[v] = qpid > 0 ? (int64_t)qpid : 1000000000 + (int64_t)v;
		for (uint32_t u = 0; u < v; u++)
			if (used[u] && t.tpid[u] == t.tpid[v])
				t.tpid[v] = 1000000000 + (int64_t)v;
	}
	t.w = jsonw_new(f);
	if (!t.w)
		return -ENOMEM;
	jsonw_start_object(t.w);
	jsonw_name(t.w, "traceEvents");
	jsonw_start_array(t.w);
	for (uint32_t v = 0; v < AN_MAX_VMS; v++) {
		if (!used[v])
			continue;
		snprintf(name, sizeof(name), "%s", an_vm_name(vms, v));
		meta(t.w, "process_name", t.tpid[v], 0, "name", name, 0);
		meta(t.w, "process_sort_index", t.tpid[v], 0, "sort_index", NULL, v);
		meta(t.w, "thread_name", t.tpid[v], TE_LIFE_TID, "name", "guest processes (fork, exec, exit)", 0);
		meta(t.w, "thread_sort_index", t.tpid[v], TE_LIFE_TID, "sort_index", NULL, -1);
		for (uint32_t c = 0; c < nvcpus[v]; c++) {
			snprintf(name, sizeof(name), "vCPU %u", c);
			meta(t.w, "thread_name", t.tpid[v], (int64_t)c + 1, "name", name, 0);
			meta(t.w, "thread_sort_index", t.tpid[v], (int64_t)c + 1, "sort_index", NULL, c);
		}
	}
	an_init(&an);
	an.on_run = on_run;
	an.on_run_ctx = &t;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].vm >= AN_MAX_VMS || !ev[i].type || ev[i].type >= SEV_NR)
			continue;
		an_event(&an, &ev[i]);
		if (ev[i].type != SEV_SWITCH)
			instant(&t, &ev[i]);
	}
	an_close_runs(&an, an.t_last);   /* the runs still open end at the last event, as report's do */
	an_free(&an);
	jsonw_end_array(t.w);
	jsonw_string_field(t.w, "displayTimeUnit", "ms");
	jsonw_end_object(t.w);
	err = jsonw_errors(t.w) ? -EIO : 0;
	jsonw_destroy(&t.w);
	fflush(f);
	return err ? err : ferror(f) ? -EIO : 0;
}
