/* `vmoffset-trace report`: a session file, or live's JSON-lines event file, through the same analysis as
 * `live`. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "cmd/cmd.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "session/jsonl.h"
#include "session/session.h"
#include "output/trace_event.h"
#include "trace/analysis.h"

enum { SEC_PROCESSES = 1, SEC_VCPUS = 2, SEC_TIMELINE = 4, SEC_EXITS = 8, SEC_LOST = 16, SEC_EXACT = 32,
       SEC_ALL = 63 };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace report [-i FILE]... [--json | --csv | --format trace] [-o OUT] [--sort KEY]\n"
		"                             [--section S[,S...]] [--no-switch]\n"
		"\n"
		"Read a session file written by `record`, or the JSON-lines event file of `live --output` (told apart\n"
		"by content: first non-blank byte '{'), and show: per process and per vCPU activity SAMPLED from the\n"
		"current task of each vCPU at the poll rate (switches in, time on a vCPU attributed from switch to\n"
		"switch: runs shorter than a poll are missed), EXACT per-process CPU time and voluntary/involuntary\n"
		"switches over the window from the guest scheduler's own counters (where they were found), the event\n"
		"timeline, KVM exit statistics by reason per vCPU with exit latency where the host gave them, and lost\n"
		"processes (pids the guest handed out between two task-list walks that no walk saw). A truncated or\n"
		"damaged session file is read as far as its blocks are intact and one line says what was lost. A\n"
		"JSON-lines file carries events only (no exact counters, exit statistics or capture counters; the\n"
		"report says so); its damaged lines are skipped and counted, and its seq numbers say what is not in\n"
		"the file (rotated out, gaps).\n"
		"Exit status: 0 read (even partly), 1 nothing readable, 64 usage.\n"
		"\n"
		"Options:\n"
		"  -i, --input FILE       session file (default " CMD_DEFAULT_SESSION ", what record writes without -o)\n"
		"                         or JSON-lines event file; -i again for the rotated files of one trace, the\n"
		"                         oldest first (-i ev.jsonl.2 -i ev.jsonl.1 -i ev.jsonl): JSON lines only\n"
		"  -j, --json             one JSON document (as does the global -j)\n"
		"      --csv              CSV of the chosen sections (default: processes), one header row each\n"
		"      --format FMT       text, json, csv, or trace: Trace Event JSON for Perfetto's UI and\n"
		"                         chrome://tracing (a track per vCPU with each run of a task, instant events for\n"
		"                         fork/exec/rename/exit/restart/lost; every section, sort and --no-switch aside)\n"
		"  -o, --output FILE      write to FILE instead of stdout\n"
		"  -s, --sort KEY         time (default), switches, pid, comm, vm\n"
		"      --section LIST     processes, vcpus, exact, timeline, exits, lost, all (default all)\n"
		"      --no-switch        timeline without switch events\n"
		"  -h, --help             this text\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace report -i web.vmot\n"
		"  vmoffset-trace report -i web.vmot --sort switches --section processes,vcpus\n"
		"  vmoffset-trace report -i web.vmot --csv --section timeline > events.csv\n"
		"  vmoffset-trace -j report -i web.vmot | jq '.events[] | select(.event == \"exec\")'\n"
		"  vmoffset-trace report -i events.jsonl.1 -i events.jsonl --section processes,lost\n"
		"  vmoffset-trace report -i web.vmot --format trace -o web.json   # open in ui.perfetto.dev\n");
}

struct rep_ctx {
	struct analysis an;
	struct sess_event *ev;
	size_t nev, cap;
	struct json_object *header;
	struct json_object *vms;       /* array */
	struct json_object *counters;  /* array */
	struct json_object *exit_stats;
	struct rep_exec {          /* SB_EXEC blocks: what EXEC events ran */
		uint32_t vm;
		int32_t pid;
		uint64_t time_ns;
		size_t order;          /* as read: sorted by (time_ns, order) once all are read */
		struct an_exec x;      /* x.argv malloc'd */
	} *execs;
	size_t nexecs;
	const struct jsonl_summary *js;   /* a JSON-lines file: events only (no header, counters, exits) */
	const char *const *files;
	size_t nfiles;
	int err;
};

#define REPORT_MAX_INPUTS 1024   /* -i FILE given again: the rotated JSON-lines files of one trace */

/* The notes of a JSON-lines read as one line ("" when it has none), like a session's damage line. */
static void jsonl_lost_line(const struct jsonl_summary *js, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < JSONL_NOTES && off + 1 < len; i++) {
		char note[400];

		if (jsonl_note(js, (enum jsonl_note)i, note, sizeof(note)))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "; " : "", note);
	}
}

#define JSONL_NOT_CARRIED "a JSON-lines event file carries events only: no exact scheduler counters, KVM exit " \
			  "statistics or capture counters"

/* An SB_EXEC block's JSON, or an exec line of a JSON-lines file (ev: its event, which says vm, pid and time),
 * as an an_exec (argv back to NUL-separated). */
static void add_exec(struct rep_ctx *c, struct json_object *j, const struct sess_event *ev)
{
	struct json_object *x, *argv;
	struct rep_exec *n = realloc(c->execs, (c->nexecs + 1) * sizeof(*n)), *e;

	if (!n)
		return;
	c->execs = n;
	e = &n[c->nexecs];
	memset(e, 0, sizeof(*e));
	e->order = c->nexecs;
	e->vm = json_object_object_get_ex(j, "vm", &x) ? (uint32_t)json_object_get_int64(x) : 0;
	e->pid = json_object_object_get_ex(j, "pid", &x) ? (int32_t)json_object_get_int64(x) : -1;
	e->time_ns = json_object_object_get_ex(j, "time_ns", &x) ? (uint64_t)json_object_get_uint64(x) : 0;
	if (ev) {
		e->vm = ev->vm;
		e->pid = ev->pid;
		e->time_ns = ev->time_ns;
	}
	if (json_object_object_get_ex(j, "uid", &x) && json_object_is_type(x, json_type_int)) {
		e->x.have_ids = true;
		e->x.uid = (uint32_t)json_object_get_int64(x);
		e->x.euid = json_object_object_get_ex(j, "euid", &x) ? (uint32_t)json_object_get_int64(x) : e->x.uid;
	}
	e->x.argv_truncated = json_object_object_get_ex(j, "argv_truncated", &x) && json_object_get_boolean(x);
	if (json_object_object_get_ex(j, "argv", &argv) && json_object_is_type(argv, json_type_array)) {
		size_t len = 0, na = json_object_array_length(argv);
		char *buf = NULL;

		for (size_t i = 0; i < na; i++) {
			const char *a = json_object_get_string(json_object_array_get_idx(argv, i));
			size_t l = a ? strlen(a) : 0;
			char *b = realloc(buf, len + l + 1);
			if (!b)
				break;
			buf = b;
			memcpy(buf + len, a ? a : "", l + 1);
			len += l + 1;
		}
		e->x.argv = buf;
		e->x.argv_len = buf ? len : 0;
	}
	c->nexecs++;
}

/* The details of an EXEC event (recorded right after it), NULL when the session has none. */
static const struct an_exec *exec_of(const struct rep_ctx *c, const struct sess_event *ev)
{
	size_t lo = 0, hi = c->nexecs;

	if (ev->type != SEV_EXEC)
		return NULL;
	while (lo < hi) {   /* the first of its time (execs_sort) */
		size_t mid = lo + (hi - lo) / 2;

		if (c->execs[mid].time_ns < ev->time_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < c->nexecs && c->execs[i].time_ns == ev->time_ns; i++)
		if (c->execs[i].vm == ev->vm && c->execs[i].pid == ev->pid)
			return &c->execs[i].x;
	return NULL;
}

static int cmp_exec(const void *x, const void *y)
{
	const struct rep_exec *a = x, *b = y;

	if (a->time_ns != b->time_ns)
		return a->time_ns < b->time_ns ? -1 : 1;
	return (a->order > b->order) - (a->order < b->order);
}

/* Once all are read: by time for exec_of (a long trace has as many execs as it has events to print). */
static void execs_sort(struct rep_ctx *c)
{
	if (c->nexecs > 1)
		qsort(c->execs, c->nexecs, sizeof(*c->execs), cmp_exec);
}

static const char *jstr(struct json_object *o, const char *k, const char *def);

static int push_events(struct rep_ctx *c, const struct sess_event *ev, size_t nrec)
{
	if (c->nev + nrec > c->cap) {
		size_t ncap = (c->nev + nrec) * 2;
		struct sess_event *n = realloc(c->ev, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->ev = n;
		c->cap = ncap;
	}
	memcpy(c->ev + c->nev, ev, nrec * sizeof(*c->ev));
	c->nev += nrec;
	return 0;
}

/* One event line of a JSON-lines file (checked by the reader). */
static int on_jsonl_event(void *ctx, const struct sess_event *ev, struct json_object *line)
{
	struct rep_ctx *c = ctx;

	if (push_events(c, ev, 1))
		return -ENOMEM;
	if (ev->type == SEV_EXEC)
		add_exec(c, line, ev);
	return 0;
}

/* The VMs a JSON-lines file named (one per vm_pid), as the analysis and the "vms" rows. */
static void jsonl_vms(struct rep_ctx *c)
{
	for (size_t i = 0; i < c->js->nvms; i++) {
		const struct jsonl_vm *v = &c->js->vms[i];
		struct json_object *o = json_object_new_object();

		an_set_vm(&c->an, (uint32_t)i, v->name, v->pid, v->nvcpus);
		an_set_sched_note(&c->an, (uint32_t)i, "not in a JSON-lines event file");
		if (!o)
			continue;
		json_object_object_add(o, "index", json_object_new_int64((int64_t)i));
		json_object_object_add(o, "name", json_object_new_string(v->name));
		json_object_object_add(o, "pid", json_object_new_int64(v->pid));
		json_object_object_add(o, "vcpus", json_object_new_int64(v->nvcpus));
		json_object_object_add(o, "uuid", v->uuid[0] ? json_object_new_string(v->uuid) : NULL);
		json_object_object_add(o, "boot_id", v->boot_id[0] ? json_object_new_string(v->boot_id) : NULL);
		json_object_object_add(o, "boot_ids", json_object_new_int64(v->boots));
		json_object_object_add(o, "events", json_object_new_int64((int64_t)v->events));
		json_object_array_add(c->vms, o);
	}
}

static int on_block(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len, uint32_t nrec)
{
	struct rep_ctx *c = ctx;
	struct json_object *j, *x;

	switch (type) {
	case SB_EVENTS:
		if (push_events(c, data, nrec))
			return -ENOMEM;
		break;
	case SB_HEADER:
		if ((j = json_tokener_parse(data))) {
			json_object_put(c->header);
			c->header = j;
		}
		break;
	case SB_VM:
		if ((j = json_tokener_parse(data))) {
			struct sess_vm_id id;
			bool dup = false;

			sess_vm_id_parse(j, &id);
			for (size_t i = 0; i < json_object_array_length(c->vms) && !dup; i++) {
				struct json_object *o = json_object_array_get_idx(c->vms, i), *y;
				dup = json_object_object_get_ex(o, "index", &y) && json_object_get_int64(y) == id.index;
			}
			if (id.index >= 0 && id.index < AN_MAX_VMS) {
				struct json_object *sc = NULL;
				uint32_t idx = (uint32_t)id.index;

				an_set_vm(&c->an, idx, id.name, id.pid, id.nvcpus);
				/* sessions from before the exact counters have no "sched" */
				an_set_sched_note(&c->an, idx, !json_object_object_get_ex(j, "sched", &sc) ?
						  "exact figures not recorded (a session from before they existed)" :
						  jstr(sc, "note", ""));
			}
			if (dup)
				json_object_put(j);   /* the copy record writes at the end */
			else
				json_object_array_add(c->vms, j);
		}
		break;
	case SB_EXEC:
		if ((j = json_tokener_parse(data))) {
			add_exec(c, j, NULL);
			json_object_put(j);
		}
		break;
	case SB_SCHED: {
		struct sess_sched_hdr h;
		const struct sess_sched_rec *r;

		if (!sess_sched_parse(data, len, &h, &r))
			an_sched(&c->an, &h, r);
		break;
	}
	case SB_COUNTERS:
		if ((j = json_tokener_parse(data))) {
			if (json_object_object_get_ex(j, "exit_stats", &x)) {
				json_object_put(c->exit_stats);
				c->exit_stats = json_object_get(x);
				json_object_put(j);
			} else {
				json_object_array_add(c->counters, j);
			}
		}
		break;
	default:
		break;
	}
	return 0;
}

static const char *jstr(struct json_object *o, const char *k, const char *def)
{
	struct json_object *x;

	return o && json_object_object_get_ex(o, k, &x) && x ? json_object_get_string(x) : def;
}

static int64_t jint(struct json_object *o, const char *k, int64_t def)
{
	struct json_object *x;

	return o && json_object_object_get_ex(o, k, &x) ? json_object_get_int64(x) : def;
}

static void csv_str(FILE *f, const char *s, size_t max)
{
	fputc('"', f);
	for (size_t i = 0; i < max && s[i]; i++) {
		if (s[i] == '"')
			fputc('"', f);
		fputc(s[i], f);
	}
	fputc('"', f);
}

static int parse_sections(const char *arg, int *out)
{
	char *copy = strdup(arg), *save = NULL;
	int s = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "processes")) s |= SEC_PROCESSES;
		else if (!strcmp(t, "vcpus")) s |= SEC_VCPUS;
		else if (!strcmp(t, "timeline")) s |= SEC_TIMELINE;
		else if (!strcmp(t, "exits")) s |= SEC_EXITS;
		else if (!strcmp(t, "lost")) s |= SEC_LOST;
		else if (!strcmp(t, "exact")) s |= SEC_EXACT;
		else if (!strcmp(t, "all")) s |= SEC_ALL;
		else {
			free(copy);
			return -EINVAL;
		}
	}
	free(copy);
	*out = s;
	return 0;
}

static double span_s(const struct analysis *a)
{
	return a->t_last > a->t_first ? (a->t_last - a->t_first) / 1e9 : 0;
}

static int cmp_exit_count(const void *a, const void *b)
{
	int64_t x = jint(*(struct json_object *const *)a, "count", 0), y = jint(*(struct json_object *const *)b, "count", 0);

	return (x < y) - (x > y);
}

/* The recorded exit counts, one per (VM, vCPU, reason), the most frequent first (like `perf kvm stat
 * report`); *n of them, free() the array. */
static struct json_object **exits_sorted(const struct rep_ctx *c, size_t *n)
{
	struct json_object *ex = NULL, **v;

	*n = 0;
	if (c->exit_stats && json_object_object_get_ex(c->exit_stats, "exits", &ex) &&
	    json_object_is_type(ex, json_type_array))
		*n = json_object_array_length(ex);
	v = calloc(*n ? *n : 1, sizeof(*v));
	if (!v) {
		*n = 0;
		return NULL;
	}
	for (size_t i = 0; i < *n; i++)
		v[i] = json_object_array_get_idx(ex, i);
	qsort(v, *n, sizeof(*v), cmp_exit_count);
	return v;
}

/* An exit row's VM name, and its vCPU into vc ("" when null: the exit came before the vCPU was known). */
static const char *exit_row(const struct rep_ctx *c, struct json_object *e, char vc[16])
{
	struct json_object *jv = NULL;
	int64_t vm = jint(e, "vm", -1);

	vc[0] = 0;
	if (json_object_object_get_ex(e, "vcpu", &jv) && jv)
		snprintf(vc, 16, "%" PRId64, json_object_get_int64(jv));
	return vm >= 0 ? an_vm_name(&c->an, (uint32_t)vm) : "?";
}

static void print_exits(const struct rep_ctx *c)
{
	size_t n;
	struct json_object **v = exits_sorted(c, &n);

	for (size_t i = 0; i < n; i++) {
		char vc[16], reason[48];
		const char *vm = exit_row(c, v[i], vc);

		snprintf(reason, sizeof(reason), "%s (%" PRId64 ")", jstr(v[i], "name", "?"), jint(v[i], "reason", -1));
		printf("  %-16.16s %4s %-4s %-26s %12" PRId64 "\n", vm, vc[0] ? vc : "-", jstr(v[i], "isa", "?"), reason,
		       jint(v[i], "count", 0));
	}
	free(v);
}

/* LOST events of one VM and the pids they cover. */
static uint64_t lost_of(const struct rep_ctx *c, uint32_t vm, uint64_t *pids)
{
	uint64_t n = 0;

	*pids = 0;
	for (size_t i = 0; i < c->nev; i++)
		if (c->ev[i].type == SEV_LOST && c->ev[i].vm == vm) {
			n++;
			if (c->ev[i].prev_pid >= c->ev[i].pid && c->ev[i].pid >= 0)
				*pids += (uint64_t)(c->ev[i].prev_pid - c->ev[i].pid) + 1;
		}
	return n;
}

/* Exact figures per VM: per process, the differences of the guest scheduler's counters between the first and
 * last snapshot (threads born since counted from zero; a thread that exited between snapshots loses its last
 * period). */
static void print_exact_plain(const struct rep_ctx *c)
{
	printf("\nExact (the guest scheduler's own counters, per process over the window)\n");
	for (uint32_t vm = 0; vm < AN_MAX_VMS; vm++) {
		const struct an_vm *v = &c->an.vms[vm];
		double secs = an_exact_window_s(&c->an, vm, false);
		size_t n = 0;
		struct an_exact *e;

		if (!v->used)
			continue;
		e = an_exact_list(&c->an, vm, false, &n);
		if (!e) {
			printf("  %-16.16s %s\n", v->name, v->sched_note[0] ? v->sched_note :
			       "fewer than two snapshots of the scheduler's counters");
			continue;
		}
		printf("  %-16.16s over %.3f s (%u snapshots)\n  %-16s %7s %-16s %7s %12s %6s %10s %10s\n", v->name,
		       secs, v->sched_snaps, "VM", "TGID", "COMM", "THREADS", "CPU_MS", "CPU%", "VCSW", "IVCSW");
		for (size_t i = 0; i < n; i++) {
			char comm[17];

			memcpy(comm, e[i].comm, 16);
			comm[16] = 0;
			printf("  %-16.16s %7d %-16s %7u %12.3f %6.1f %10" PRIu64 " %10" PRIu64 "\n", v->name, e[i].tgid,
			       comm, e[i].threads, e[i].cpu_ns / 1e6, secs > 0 ? e[i].cpu_ns / 1e9 / secs * 100 : 0,
			       e[i].nvcsw, e[i].nivcsw);
		}
		free(e);
	}
}

static void print_exact_json(const struct rep_ctx *c, json_writer_t *w)
{
	jsonw_name(w, "exact");
	jsonw_start_array(w);
	for (uint32_t vm = 0; vm < AN_MAX_VMS; vm++) {
		const struct an_vm *v = &c->an.vms[vm];
		size_t n = 0;
		struct an_exact *e;

		if (!v->used)
			continue;
		e = an_exact_list(&c->an, vm, false, &n);
		jsonw_start_object(w);
		jsonw_string_field(w, "vm", v->name);
		jsonw_u64_field(w, "snapshots", v->sched_snaps);
		if (!e) {
			jsonw_null_field(w, "window_s");
			jsonw_string_field(w, "note", v->sched_note[0] ? v->sched_note :
					   "fewer than two snapshots of the scheduler's counters");
		} else {
			jsonw_float_field_fmt(w, "window_s", "%.6f", an_exact_window_s(&c->an, vm, false));
			jsonw_u64_field(w, "first_ns", v->sched_first_ns);   /* CLOCK_MONOTONIC of the two snapshots */
			jsonw_u64_field(w, "last_ns", v->sched_last_ns);
		}
		jsonw_name(w, "processes");
		jsonw_start_array(w);
		for (size_t i = 0; i < n; i++) {
			jsonw_start_object(w);
			jsonw_int_field(w, "tgid", e[i].tgid);
			jsonw_name(w, "comm");
			jsonw_string_len(w, e[i].comm, 16);
			jsonw_u64_field(w, "threads", e[i].threads);
			jsonw_u64_field(w, "cpu_time_ns", e[i].cpu_ns);
			jsonw_u64_field(w, "nvcsw", e[i].nvcsw);
			jsonw_u64_field(w, "nivcsw", e[i].nivcsw);
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		jsonw_end_object(w);
		free(e);
	}
	jsonw_end_array(w);
}

static void print_plain(struct rep_ctx *c, int sections, enum an_sort key, bool no_switch, const char *file,
			const struct an_line_opts *lo)
{
	struct an_entry **list;
	size_t n;

	if (c->js) {
		printf("Events %s: JSON lines (schema %d) of live --output, host %s%s\n", file, JSONL_SCHEMA,
		       c->js->host[0] ? c->js->host : "?", c->js->hosts_differ ? " and others" : "");
		printf("  %s\n", JSONL_NOT_CARRIED);
	} else {
		printf("Session %s: %s, created %s on %s\n", file, jstr(c->header, "producer", "?"),
		       jstr(c->header, "created", "?"), jstr(c->header, "host", "?"));
		printf("  %s\n", jstr(c->header, "mode", "mode unknown"));
	}
	printf("  %zu event(s) over %.3f s: %" PRIu64 " switch, %" PRIu64 " fork, %" PRIu64 " exec, %" PRIu64
	       " rename, %" PRIu64 " exit; %" PRIu64 " lost process(es) in %" PRIu64 " lost event(s)\n\n", c->nev,
	       span_s(&c->an), c->an.count[SEV_SWITCH], c->an.count[SEV_FORK], c->an.count[SEV_EXEC],
	       c->an.count[SEV_RENAME], c->an.count[SEV_EXIT], c->an.lost_pids, c->an.count[SEV_LOST]);
	if (c->js)
		printf("VMs\n  %3s %8s %-24s %5s %7s  %s\n", "IDX", "PID", "NAME", "VCPUS", "EVENTS", "UUID / BOOT_ID");
	else
		printf("VMs\n  %3s %8s %-24s %-5s %5s  %s\n", "IDX", "PID", "NAME", "ACCEL", "VCPUS", "KERNEL / OFFSETS");
	for (size_t i = 0; c->js && i < json_object_array_length(c->vms); i++) {
		struct json_object *v = json_object_array_get_idx(c->vms, i);

		printf("  %3" PRId64 " %8" PRId64 " %-24.24s %5" PRId64 " %7" PRId64 "  %s, boot %s", jint(v, "index", -1),
		       jint(v, "pid", -1), jstr(v, "name", "?"), jint(v, "vcpus", 0), jint(v, "events", 0),
		       jstr(v, "uuid", "-"), jstr(v, "boot_id", "-"));
		if (jint(v, "boot_ids", 0) > 1)
			printf(" (the last of %" PRId64 ")", jint(v, "boot_ids", 0));
		putchar('\n');
	}
	for (size_t i = 0; !c->js && i < json_object_array_length(c->vms); i++) {
		struct json_object *v = json_object_array_get_idx(c->vms, i), *x;
		bool cached = json_object_object_get_ex(v, "offsets_cached", &x) && json_object_get_boolean(x);

		printf("  %3" PRId64 " %8" PRId64 " %-24.24s %-5s %5" PRId64 "  %.60s\n", jint(v, "index", -1),
		       jint(v, "pid", -1), jstr(v, "name", "?"), jstr(v, "accel", "?"), jint(v, "vcpus", 0),
		       jstr(v, "kernel", "?"));
		printf("  %3s %8s offsets %s, init_task %s, per-CPU current at %+" PRId64 "\n", "", "",
		       cached ? "from the cache (validated here)" : "discovered", jstr(v, "init_task", "?"),
		       jint(v, "percpu_current", -1));
	}
	if (sections & SEC_PROCESSES) {
		list = an_entries(&c->an, false, key, &n);
		printf("\nProcesses (sorted by %s; SAMPLED: switches and time seen by polling each vCPU's current "
		       "task)\n  %-16s %7s %7s %7s %-16s %10s %12s %5s %5s %5s\n",
		       key == AN_SORT_SWITCHES ? "switches" : key == AN_SORT_PID ? "pid" : key == AN_SORT_COMM ? "comm" :
		       key == AN_SORT_VM ? "vm" : "time on vCPU", "VM", "PID", "TGID", "PPID", "COMM", "SAMPLED_SW",
		       "SAMPLED_MS", "FORK", "EXEC", "EXIT");
		for (size_t i = 0; list && i < n; i++) {
			char comm[17];

			memcpy(comm, list[i]->comm, 16);
			comm[16] = 0;
			printf("  %-16.16s %7d %7d %7d %-16s %10" PRIu64 " %12.3f %5u %5u %5u\n", an_vm_name(&c->an, list[i]->vm),
			       list[i]->pid, list[i]->tgid, list[i]->ppid, comm, list[i]->switches_in, list[i]->time_ns / 1e6,
			       list[i]->forks, list[i]->execs, list[i]->exits);
		}
		free(list);
	}
	if (sections & SEC_LOST) {
		printf("\nLost processes (pids handed out between two task-list walks, never seen)\n  %-16s %9s %7s\n",
		       "VM", "LOST", "EVENTS");
		for (uint32_t vm = 0; vm < AN_MAX_VMS; vm++) {
			uint64_t pids, evs = lost_of(c, vm, &pids);

			if (evs || c->an.vms[vm].used)
				printf("  %-16.16s %9" PRIu64 " %7" PRIu64 "\n", an_vm_name(&c->an, vm), pids, evs);
		}
	}
	if (sections & SEC_VCPUS) {
		double s = span_s(&c->an);

		printf("\nvCPUs (SAMPLED)\n  %-16s %4s %10s %12s  %s\n", "VM", "VCPU", "SAMPLED_SW", "SAMPLED_SW/s",
		       "TOP (pid comm sampled share)");
		list = an_entries(&c->an, true, AN_SORT_TIME, &n);
		for (size_t v = 0; v < c->an.nvcpu; v++) {
			const struct an_vcpu *cv = &c->an.vcpu[v];
			unsigned shown = 0;

			printf("  %-16.16s %4u %10" PRIu64 " %12.1f ", an_vm_name(&c->an, cv->vm), cv->vcpu, cv->switches,
			       s > 0 ? cv->switches / s : 0);
			for (size_t i = 0; list && i < n && shown < 5; i++) {
				char comm[17];

				if (list[i]->vm != cv->vm || list[i]->vcpu != cv->vcpu)
					continue;
				memcpy(comm, list[i]->comm, 16);
				comm[16] = 0;
				printf(" %d %s %.0f%%", list[i]->pid, comm, s > 0 ? list[i]->time_ns / 1e9 / s * 100 : 0);
				shown++;
			}
			putchar('\n');
		}
		free(list);
	}
	if ((sections & SEC_EXACT) && !c->js)   /* a JSON-lines file: said once at the top */
		print_exact_plain(c);
	if (sections & SEC_TIMELINE) {
		printf("\nTimeline%s\n", no_switch ? " (without switches)" : "");
		an_print_header(stdout, lo);
		for (size_t i = 0; i < c->nev; i++)
			if (!(no_switch && c->ev[i].type == SEV_SWITCH))
				an_print_event(stdout, NULL, &c->an, &c->ev[i], lo, exec_of(c, &c->ev[i]));
	}
	if ((sections & SEC_EXITS) && !c->js) {
		struct json_object *x;
		bool avail = c->exit_stats && json_object_object_get_ex(c->exit_stats, "available", &x) &&
			     json_object_get_boolean(x);

		printf("\nExit statistics\n");
		if (c->exit_stats && json_object_object_get_ex(c->exit_stats, "capture", &x))
			printf("  BPF capture: %" PRId64 " events seen, %" PRId64 " emitted, %" PRId64 " deduplicated, %"
			       PRId64 " dropped (ring buffer full)\n", jint(x, "seen", 0), jint(x, "emitted", 0),
			       jint(x, "deduped", 0), jint(x, "dropped", 0));
		if (!avail) {
			printf("  %s\n", jstr(c->exit_stats, "reason", "not available on this host (none recorded)"));
		} else {
			struct json_object *lat = NULL;

			json_object_object_get_ex(c->exit_stats, "latency", &lat);
			printf("  %-16s %4s %-4s %-26s %12s   (exits by reason per vCPU, most first)\n", "VM", "VCPU", "ISA",
			       "REASON", "COUNT");
			print_exits(c);
			printf("  %-16s %4s %12s %12s %12s   (exit -> entry latency per vCPU)\n", "VM", "VCPU", "EXITS",
			       "AVG_NS", "MAX_NS");
			for (size_t i = 0; lat && i < json_object_array_length(lat); i++) {
				struct json_object *e = json_object_array_get_idx(lat, i);
				int64_t cnt = jint(e, "exits", 0), vm = jint(e, "vm", -1);
				printf("  %-16.16s %4" PRId64 " %12" PRId64 " %12" PRId64 " %12" PRId64 "\n",
				       vm >= 0 ? an_vm_name(&c->an, (uint32_t)vm) : "?", jint(e, "vcpu", -1), cnt,
				       cnt ? jint(e, "total_ns", 0) / cnt : 0, jint(e, "max_ns", 0));
			}
		}
	}
}

/* What a JSON-lines report says in place of a session's header and integrity: where the events come from,
 * what the reader skipped and what the seq numbers say is missing, and what such a file does not carry. */
static void print_jsonl_source(const struct rep_ctx *c, json_writer_t *w, const char *lost)
{
	const struct jsonl_summary *s = c->js;
	char note[400];

	jsonw_string_field(w, "source", "jsonl");
	jsonw_name(w, "input");
	jsonw_start_object(w);
	jsonw_string_field(w, "format", "vmoffset-trace events (JSON lines)");
	jsonw_int_field(w, "schema", JSONL_SCHEMA);
	jsonw_name(w, "files");
	jsonw_start_array(w);
	for (size_t i = 0; i < c->nfiles; i++)
		jsonw_string(w, c->files[i]);
	jsonw_end_array(w);
	if (s->host[0])
		jsonw_string_field(w, "host", s->host);
	else
		jsonw_null_field(w, "host");
	jsonw_end_object(w);
	jsonw_name(w, "integrity");
	jsonw_start_object(w);
	jsonw_bool_field(w, "intact", !lost[0]);
	jsonw_string_field(w, "lost", lost);
	jsonw_name(w, "notes");
	jsonw_start_array(w);
	for (int i = 0; i < JSONL_NOTES; i++)
		if (jsonl_note(s, (enum jsonl_note)i, note, sizeof(note)))
			jsonw_string(w, note);
	jsonw_end_array(w);
	jsonw_u64_field(w, "lines_read", s->lines);
	jsonw_u64_field(w, "events_read", s->events);
	jsonw_u64_field(w, "lines_skipped", s->skipped);
	jsonw_u64_field(w, "first_seq", s->first_seq);
	jsonw_u64_field(w, "last_seq", s->last_seq);
	jsonw_u64_field(w, "events_missing", s->missing);
	jsonw_u64_field(w, "seq_backwards", s->backwards);
	jsonw_end_object(w);
	jsonw_string_field(w, "not_carried", JSONL_NOT_CARRIED);
}

/* A session's header and what its reader found. */
static void print_session_source(const struct rep_ctx *c, json_writer_t *w, const struct sess_summary *sum,
				 const char *lost)
{
	jsonw_name(w, "session");
	jsonw_printf(w, "%s", c->header ? json_object_to_json_string_ext(c->header, JSON_C_TO_STRING_PLAIN) : "null");
	jsonw_name(w, "integrity");
	jsonw_start_object(w);
	jsonw_bool_field(w, "intact", sess_intact(sum));
	jsonw_string_field(w, "lost", lost);
	jsonw_u64_field(w, "blocks_read", sum->blocks_ok);
	jsonw_u64_field(w, "events_read", sum->events_ok);
	jsonw_u64_field(w, "bytes_damaged", sum->bytes_damaged);
	jsonw_bool_field(w, "trailer", sum->trailer);
	jsonw_end_object(w);
}

static void print_json(struct rep_ctx *c, int sections, enum an_sort key, bool no_switch,
		       const struct sess_summary *sum, const char *lost, const struct an_line_opts *lo)
{
	json_writer_t *w = jsonw_new(stdout);
	struct an_entry **list;
	size_t n;

	if (!w)
		return;
	jsonw_start_object(w);
	if (c->js)
		print_jsonl_source(c, w, lost);
	else
		print_session_source(c, w, sum, lost);
	jsonw_name(w, "vms");
	jsonw_printf(w, "%s", json_object_to_json_string_ext(c->vms, JSON_C_TO_STRING_PLAIN));
	jsonw_name(w, "counters");   /* null: a JSON-lines file carries none ("not_carried") */
	jsonw_printf(w, "%s", c->js ? "null" : json_object_to_json_string_ext(c->counters, JSON_C_TO_STRING_PLAIN));
	if (sections & SEC_LOST) {
		jsonw_name(w, "lost");
		jsonw_start_object(w);
		jsonw_u64_field(w, "processes", c->an.lost_pids);
		jsonw_u64_field(w, "events", c->an.count[SEV_LOST]);
		jsonw_name(w, "vms");
		jsonw_start_array(w);
		for (uint32_t vm = 0; vm < AN_MAX_VMS; vm++) {
			uint64_t pids, evs = lost_of(c, vm, &pids);

			if (!evs && !c->an.vms[vm].used)
				continue;
			jsonw_start_object(w);
			jsonw_string_field(w, "vm", an_vm_name(&c->an, vm));
			jsonw_u64_field(w, "processes", pids);
			jsonw_u64_field(w, "events", evs);
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		jsonw_end_object(w);
	}
	if (sections & SEC_PROCESSES) {
		list = an_entries(&c->an, false, key, &n);
		jsonw_name(w, "processes");
		jsonw_start_array(w);
		for (size_t i = 0; list && i < n; i++) {
			jsonw_start_object(w);
			jsonw_string_field(w, "vm", an_vm_name(&c->an, list[i]->vm));
			jsonw_int_field(w, "pid", list[i]->pid);
			jsonw_int_field(w, "tgid", list[i]->tgid);
			jsonw_int_field(w, "ppid", list[i]->ppid);
			jsonw_name(w, "comm");
			jsonw_string_len(w, list[i]->comm, 16);
			jsonw_u64_field(w, "sampled_switches_in", list[i]->switches_in);
			jsonw_u64_field(w, "sampled_vcpu_time_ns", list[i]->time_ns);
			jsonw_u64_field(w, "forks", list[i]->forks);
			jsonw_u64_field(w, "execs", list[i]->execs);
			jsonw_u64_field(w, "renames", list[i]->renames);
			jsonw_u64_field(w, "exits", list[i]->exits);
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		free(list);
	}
	if (sections & SEC_VCPUS) {
		double s = span_s(&c->an);

		jsonw_name(w, "vcpus");
		jsonw_start_array(w);
		list = an_entries(&c->an, true, AN_SORT_TIME, &n);
		for (size_t v = 0; v < c->an.nvcpu; v++) {
			const struct an_vcpu *cv = &c->an.vcpu[v];

			jsonw_start_object(w);
			jsonw_string_field(w, "vm", an_vm_name(&c->an, cv->vm));
			jsonw_u64_field(w, "vcpu", cv->vcpu);
			jsonw_u64_field(w, "sampled_switches", cv->switches);
			jsonw_float_field_fmt(w, "sampled_switches_per_s", "%.2f", s > 0 ? cv->switches / s : 0);
			jsonw_name(w, "processes");
			jsonw_start_array(w);
			for (size_t i = 0; list && i < n; i++) {
				if (list[i]->vm != cv->vm || list[i]->vcpu != cv->vcpu)
					continue;
				jsonw_start_object(w);
				jsonw_int_field(w, "pid", list[i]->pid);
				jsonw_name(w, "comm");
				jsonw_string_len(w, list[i]->comm, 16);
				jsonw_u64_field(w, "sampled_switches_in", list[i]->switches_in);
				jsonw_u64_field(w, "sampled_vcpu_time_ns", list[i]->time_ns);
				jsonw_end_object(w);
			}
			jsonw_end_array(w);
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		free(list);
	}
	if ((sections & SEC_EXACT) && c->js)
		jsonw_null_field(w, "exact");
	else if (sections & SEC_EXACT)
		print_exact_json(c, w);
	if (sections & SEC_TIMELINE) {
		jsonw_name(w, "events");
		jsonw_start_array(w);
		for (size_t i = 0; i < c->nev; i++)
			if (!(no_switch && c->ev[i].type == SEV_SWITCH))
				an_print_event(stdout, w, &c->an, &c->ev[i], lo, exec_of(c, &c->ev[i]));
		jsonw_end_array(w);
	}
	if (sections & SEC_EXITS) {
		jsonw_name(w, "exit_stats");
		jsonw_printf(w, "%s", c->js ? "null" :
			     c->exit_stats ? json_object_to_json_string_ext(c->exit_stats, JSON_C_TO_STRING_PLAIN) :
			     "{\"available\":false,\"reason\":\"not available on this host (none recorded)\"}");
	}
	jsonw_end_object(w);
	jsonw_destroy(&w);
}

static void print_csv(struct rep_ctx *c, int sections, enum an_sort key, bool no_switch, const struct an_line_opts *lo)
{
	struct an_entry **list;
	size_t n;
	bool first = true;

	if (sections & SEC_PROCESSES) {
		list = an_entries(&c->an, false, key, &n);
		printf("vm,pid,tgid,ppid,comm,sampled_switches_in,sampled_vcpu_time_ns,forks,execs,renames,exits\n");
		for (size_t i = 0; list && i < n; i++) {
			csv_str(stdout, an_vm_name(&c->an, list[i]->vm), 128);
			printf(",%d,%d,%d,", list[i]->pid, list[i]->tgid, list[i]->ppid);
			csv_str(stdout, list[i]->comm, 16);
			printf(",%" PRIu64 ",%" PRIu64 ",%u,%u,%u,%u\n", list[i]->switches_in, list[i]->time_ns,
			       list[i]->forks, list[i]->execs, list[i]->renames, list[i]->exits);
		}
		free(list);
		first = false;
	}
	if (sections & SEC_VCPUS) {
		list = an_entries(&c->an, true, key, &n);
		printf("%svm,vcpu,pid,comm,sampled_switches_in,sampled_vcpu_time_ns\n", first ? "" : "\n");
		for (size_t i = 0; list && i < n; i++) {
			csv_str(stdout, an_vm_name(&c->an, list[i]->vm), 128);
			printf(",%u,%d,", list[i]->vcpu, list[i]->pid);
			csv_str(stdout, list[i]->comm, 16);
			printf(",%" PRIu64 ",%" PRIu64 "\n", list[i]->switches_in, list[i]->time_ns);
		}
		free(list);
		first = false;
	}
	if (sections & SEC_EXACT) {   /* the guest scheduler's counters over the window, per process */
		printf("%svm,tgid,comm,threads,window_s,cpu_time_ns,nvcsw,nivcsw\n", first ? "" : "\n");
		for (uint32_t vm = 0; vm < AN_MAX_VMS; vm++) {
			size_t n = 0;
			struct an_exact *e = an_exact_list(&c->an, vm, false, &n);

			for (size_t i = 0; i < n; i++) {
				csv_str(stdout, an_vm_name(&c->an, vm), 128);
				printf(",%d,", e[i].tgid);
				csv_str(stdout, e[i].comm, 16);
				printf(",%u,%.3f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", e[i].threads,
				       an_exact_window_s(&c->an, vm, false), e[i].cpu_ns, e[i].nvcsw, e[i].nivcsw);
			}
			free(e);
		}
		first = false;
	}
	if (sections & SEC_TIMELINE) {
		printf("%st,vm,vcpu,event,pid,tgid,ppid,comm,prev_pid\n", first ? "" : "\n");
		for (size_t i = 0; i < c->nev; i++) {
			const struct sess_event *e = &c->ev[i];

			if (no_switch && e->type == SEV_SWITCH)
				continue;
			printf("%.6f,", e->time_ns >= lo->t0 ? (e->time_ns - lo->t0) / 1e9 : 0);
			csv_str(stdout, an_vm_name(&c->an, e->vm), 128);
			if (e->vcpu == SESS_VCPU_NONE)
				printf(",,");
			else
				printf(",%u,", e->vcpu);
			printf("%s,%d,%d,%d,", sess_event_name(e->type), e->pid, e->tgid, e->ppid);
			csv_str(stdout, e->comm, 16);
			printf(",%d\n", e->type == SEV_SWITCH || e->type == SEV_LOST ? e->prev_pid : -1);
		}
		first = false;
	}
	if (sections & SEC_LOST) {   /* one row per lost range, then nothing else: totals are a sum away */
		printf("%st,vm,first_pid,last_pid,count\n", first ? "" : "\n");
		for (size_t i = 0; i < c->nev; i++) {
			const struct sess_event *e = &c->ev[i];

			if (e->type != SEV_LOST || e->prev_pid < e->pid || e->pid < 0)
				continue;
			printf("%.6f,", e->time_ns >= lo->t0 ? (e->time_ns - lo->t0) / 1e9 : 0);
			csv_str(stdout, an_vm_name(&c->an, e->vm), 128);
			printf(",%d,%d,%d\n", e->pid, e->prev_pid, e->prev_pid - e->pid + 1);
		}
		first = false;
	}
	if (sections & SEC_EXITS) {   /* what the host recorded (nothing on hosts where kvm_exit never fires) */
		size_t n;
		struct json_object **v = exits_sorted(c, &n);

		printf("%svm,vcpu,isa,reason,name,count\n", first ? "" : "\n");
		for (size_t i = 0; i < n; i++) {
			char vc[16];

			csv_str(stdout, exit_row(c, v[i], vc), 128);
			printf(",%s,%s,%" PRId64 ",", vc, jstr(v[i], "isa", "?"), jint(v[i], "reason", -1));
			csv_str(stdout, jstr(v[i], "name", "?"), 64);
			printf(",%" PRId64 "\n", jint(v[i], "count", 0));
		}
		free(v);
	}
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input",     required_argument, NULL, 'i' },
		{ "json",      no_argument,       NULL, 'j' },
		{ "csv",       no_argument,       NULL, 0x100 },
		{ "sort",      required_argument, NULL, 's' },
		{ "section",   required_argument, NULL, 0x101 },
		{ "no-switch", no_argument,       NULL, 0x102 },
		{ "format",    required_argument, NULL, 0x103 },
		{ "output",    required_argument, NULL, 'o' },
		{ "help",      no_argument,       NULL, 'h' },
		{},
	};
	struct rep_ctx c = { 0 };
	struct sess_summary sum = { 0 };
	struct jsonl_summary js;
	struct an_line_opts lo = { 0 };
	enum an_sort key = AN_SORT_TIME;
	const char *file = NULL, *files[REPORT_MAX_INPUTS];
	size_t nfiles = 0;
	bool json = log_json, csv = false, no_switch = false, session = false, other = false, trace = false;
	const char *out = NULL;
	int sections = 0, ch, err, ret = EXIT_FAIL;
	char lost[1024], desc[600];

	while ((ch = getopt_long(argc, argv, "i:js:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			if (nfiles == REPORT_MAX_INPUTS) {
				p_err("-i: at most %d files", REPORT_MAX_INPUTS);
				return EXIT_USAGE;
			}
			files[nfiles++] = optarg;
			break;
		case 'j': json = log_json = true; break;
		case 0x100: csv = true; break;
		case 's':
			if (an_sort_parse(optarg, &key)) {
				p_err("--sort: '%s' is not time, switches, pid, comm or vm", optarg);
				return EXIT_USAGE;
			}
			break;
		case 0x101:
			if (parse_sections(optarg, &sections) || !sections) {
				p_err("--section: '%s' is not a list of processes, vcpus, timeline, exits, all", optarg);
				return EXIT_USAGE;
			}
			break;
		case 0x102: no_switch = true; break;
		case 0x103:
			if (!strcmp(optarg, "json")) json = log_json = true;
			else if (!strcmp(optarg, "csv")) csv = true;
			else if (!strcmp(optarg, "trace")) trace = true;
			else if (strcmp(optarg, "text")) {
				p_err("--format: '%s' is not text, json, csv or trace", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o': out = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: return cmd_bad_option(argv, usage);
		}
	}
	if (cmd_no_operands(argc, argv))
		return EXIT_USAGE;
	if (!nfiles)
		files[nfiles++] = CMD_DEFAULT_SESSION;   /* what record writes without -o */
	file = files[nfiles - 1];
	if (nfiles > 1)
		snprintf(desc, sizeof(desc), "%s .. %s (%zu files)", files[0], file, nfiles);
	else
		snprintf(desc, sizeof(desc), "%s", file);
	if (json + csv + trace > 1) {
		p_err("give one of --json, --csv, --format trace");
		return EXIT_USAGE;
	}
	if (!sections)
		sections = csv ? SEC_PROCESSES : SEC_ALL;

	an_init(&c.an);
	c.vms = json_object_new_array();
	c.counters = json_object_new_array();
	if (!c.vms || !c.counters) {
		p_err("out of memory");
		goto cleanup;
	}
	/* a session file or JSON lines, by content (several -i: JSON lines only) */
	for (size_t i = 0; i < nfiles; i++) {
		int kind = jsonl_sniff(files[i]);

		if (kind < 0) {
			p_err("cannot read %s: %s", files[i], strerror(-kind));
			goto cleanup;
		}
		if (kind == JSONL_KIND_JSONL || kind == JSONL_KIND_BLANK || (kind == JSONL_KIND_EMPTY && nfiles > 1))
			continue;
		if (nfiles > 1) {
			p_err("%s: not a JSON-lines event file (its first non-blank byte is not '{'): -i given more than "
			      "once takes the JSON-lines files of one trace, not session files", files[i]);
			goto cleanup;
		}
		session = true;   /* "VMTB", or damage the session reader will describe */
		other = kind == JSONL_KIND_OTHER;
	}
	if (session) {
		err = sess_read_file(file, on_block, &c, &sum);
		sess_damage_line(&sum, lost, sizeof(lost));
		if (err == -ENODATA && other)
			p_err("%s: %s: neither a session file (no \"" SESS_MAGIC "\" at its start) nor JSON lines (its first "
			      "non-blank byte is not '{')", file, lost);
		else if (err == -ENODATA)
			p_err("%s: %s", file, sum.file_size ? lost : "empty file: nothing readable");
		if (err == -ENODATA)
			goto cleanup;
		if (err) {
			p_err("cannot read %s: %s", file, strerror(-err));
			goto cleanup;
		}
		lo.t0 = (uint64_t)jint(c.header, "t_start_ns", c.nev ? (int64_t)c.ev[0].time_ns : 0);
		lo.wall_offset_ns = jint(c.header, "wall_offset_ns", 0);
		if (lost[0])
			p_warn("%s: damaged or incomplete: %s", file, lost);
	} else {
		size_t bad = 0;

		c.js = &js;
		c.files = files;
		c.nfiles = nfiles;
		err = jsonl_read_files(files, nfiles, on_jsonl_event, &c, &js, &bad);
		jsonl_lost_line(&js, lost, sizeof(lost));
		if (err == -ENODATA) {
			p_err("%s: nothing readable%s%s", desc, lost[0] ? ": " : " (no event lines)", lost);
			goto cleanup;
		}
		if (err) {
			p_err("cannot read %s: %s", files[bad], strerror(-err));
			goto cleanup;
		}
		jsonl_vms(&c);
		if (js.time_backwards && jsonl_sort_events(c.ev, c.nev))
			p_warn("%s: out of memory sorting the events by time: left in file order", desc);
		lo.t0 = js.t0_ns;   /* "ts" is wall-clock time already: the same wall times as live printed */
		for (int i = 0; i < JSONL_NOTES; i++) {
			char note[400];

			if (jsonl_note(&js, (enum jsonl_note)i, note, sizeof(note)))
				p_warn("%s: %s", desc, note);
		}
		if (csv && (sections & (SEC_EXACT | SEC_EXITS)))
			p_warn("%s: %s", desc, JSONL_NOT_CARRIED);
	}
	execs_sort(&c);
	/* file order is time order: every VM is polled in the same loop with the same clock */
	for (size_t i = 0; i < c.nev; i++)
		an_event(&c.an, &c.ev[i]);
	an_close_runs(&c.an, c.an.t_last);
	lo.json = json;

	if (out && !freopen(out, "w", stdout)) {
		p_err("cannot write %s: %s", out, strerror(errno));
		goto cleanup;
	}
	err = 0;
	if (trace)   /* output/trace_event.c */
		err = trace_event_write(stdout, &c.an, c.ev, c.nev, lo.t0);
	else if (json)
		print_json(&c, sections, key, no_switch, &sum, lost, &lo);
	else if (csv)
		print_csv(&c, sections, key, no_switch, &lo);
	else
		print_plain(&c, sections, key, no_switch, session ? file : desc, &lo);
	fflush(stdout);
	ret = err || ferror(stdout) ? EXIT_FAIL : EXIT_OK;
	if (err && out)
		p_err("writing %s: %s", out, strerror(-err));
cleanup:
	json_object_put(c.header);
	json_object_put(c.vms);
	json_object_put(c.counters);
	json_object_put(c.exit_stats);
	free(c.ev);
	for (size_t i = 0; i < c.nexecs; i++)
		free((char *)c.execs[i].x.argv);
	free(c.execs);
	an_free(&c.an);
	return ret;
}
