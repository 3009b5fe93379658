/* `live`'s fleet outputs: the JSON-lines event file and the Prometheus metrics; see fleet.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "capture/capture.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "output/eventlog.h"
#include "output/metrics.h"
#include "trace/fleet.h"

#define METRICS_RENDER_NS   100000000ULL    /* the served text at most 10 times a second */
#define METRICS_FILE_NS     1000000000ULL   /* the textfile and the capture's maps once a second */

struct fleet {
	struct fleet_opts o;
	char host[256];
	struct an_envelope env;
	struct evlog *log;
	FILE *line;               /* one event's JSON, then appended to the log as a line */
	char *line_buf;
	size_t line_len;
	json_writer_t *w;
	struct metrics_server *srv;
	struct metrics_snapshot snap;
	uint64_t next_render, next_slow;
	struct boot_state {       /* per VM slot: the restart count its boot_id was computed at */
		bool have;
		uint64_t restarts;
	} boot[METRICS_MAX_VMS];
	bool failed;              /* a write to the file failed: said once */
};

static int check_metrics_file(const char *path)
{
	static const char empty[] = "";
	int err = metrics_file_write(path, empty, 0);   /* the directory is there and writable: tried now */

	if (err)
		p_err("--metrics-file %s: %s", path, strerror(-err));
	return err;
}

int fleet_open(const struct fleet_opts *o, struct fleet **out)
{
	struct fleet *f = calloc(1, sizeof(*f));
	struct timespec rt;
	int err = 0;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->o = *o;
	if (gethostname(f->host, sizeof(f->host) - 1))
		snprintf(f->host, sizeof(f->host), "?");
	f->env.host = f->host;
	clock_gettime(CLOCK_REALTIME, &rt);
	f->snap.version = o->version;
	f->snap.start_time_s = (double)rt.tv_sec + rt.tv_nsec / 1e9;
	if (o->output) {
		struct evlog_opts lo = { .path = o->output, .max_bytes = (uint64_t)(o->output_max_mb * 1048576.0),
					 .keep = o->output_keep };

		err = evlog_open(&lo, &f->log);
		if (!err && (!(f->line = open_memstream(&f->line_buf, &f->line_len)) || !(f->w = jsonw_new(f->line)))) {
			p_err("out of memory");
			err = -ENOMEM;
		}
		if (f->w)
			jsonw_pretty(f->w, false);   /* one object per line */
	}
	if (!err && o->metrics_file)
		err = check_metrics_file(o->metrics_file);
	if (!err && o->metrics && !(err = metrics_server_start(o->metrics, &f->srv)))
		p_info("metrics: http://%s/metrics", metrics_server_address(f->srv));
	if (err) {
		fleet_close(&f, NULL);
		return err;
	}
	*out = f;
	return 0;
}

struct an_envelope *fleet_envelope(struct fleet *f) { return &f->env; }
bool fleet_has_output(const struct fleet *f) { return f && f->log; }
json_writer_t *fleet_event_writer(struct fleet *f) { return f->w; }

/* FNV-1a, 64 bits: an identity, not a secret. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ULL;
	return h;
}

/* The guest kernel's boot identity: this QEMU run (its UUID, else pid and start time) and what a booting
 * kernel randomises — the KASLR text base and init_task's address — so it is the same for every trace of one
 * boot and changes when the kernel restarts. Computed once per boot seen (vm_ready also comes when the
 * scheduler's counters are found: same boot, same id); a restart seen while tracing always changes it, even
 * on a kernel without KASLR (the restart count is mixed in when the addresses came back the same). */
static void boot_id(const struct vm_tracer *t, struct boot_state *b, char id[17])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char buf[17];

	if (b->have && b->restarts == t->ctr.restarts)
		return;
	if (t->info.uuid[0])
		h = fnv(h, t->info.uuid, strlen(t->info.uuid));
	else {
		h = fnv(h, &t->info.pid, sizeof(t->info.pid));
		h = fnv(h, &t->info.start_ticks, sizeof(t->info.start_ticks));
	}
	h = fnv(h, &t->fingerprint, sizeof(t->fingerprint));
	h = fnv(h, &t->text_base, sizeof(t->text_base));
	h = fnv(h, &t->res.init_task, sizeof(t->res.init_task));
	snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)h);
	if (b->have && !strcmp(id, buf)) {
		h = fnv(h, &t->ctr.restarts, sizeof(t->ctr.restarts));
		snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)h);
	}
	memcpy(id, buf, 17);
	b->have = true;
	b->restarts = t->ctr.restarts;
}

void fleet_vm_ready(struct fleet *f, struct analysis *a, const struct vm_tracer *t)
{
	struct metrics_vm *v;

	if (t->index >= METRICS_MAX_VMS)
		return;
	v = &f->snap.vm[t->index];
	if (v->pid != t->info.pid) {   /* a slot --follow gave a new VM: its own counters */
		memset(v, 0, sizeof(*v));
		f->boot[t->index] = (struct boot_state){ 0 };
	}
	if (t->index >= f->snap.nvms)
		f->snap.nvms = t->index + 1;
	snprintf(v->name, sizeof(v->name), "%s", t->info.name[0] ? t->info.name : "?");
	v->pid = t->info.pid;
	snprintf(v->uuid, sizeof(v->uuid), "%s", t->info.uuid);
	snprintf(v->accel, sizeof(v->accel), "%s", t->info.accel);
	boot_id(t, &f->boot[t->index], v->boot_id);
	v->cache_hits += t->cached;
	an_set_vm_identity(a, t->index, t->info.uuid, v->boot_id);
}

void fleet_count(struct fleet *f, const struct sess_event *ev)
{
	struct metrics_vm *v;

	if (ev->vm >= METRICS_MAX_VMS)
		return;
	v = &f->snap.vm[ev->vm];
	switch (ev->type) {
	case SEV_SWITCH:
		if (ev->vcpu < METRICS_MAX_VCPUS)
			v->switches[ev->vcpu]++;
		break;
	case SEV_FORK:    v->forks++; break;
	case SEV_EXEC:    v->execs++; break;
	case SEV_EXIT:    v->exits++; break;
	case SEV_RENAME:  v->renames++; break;
	case SEV_RESTART: v->restarts++; break;
	case SEV_LOST:
		if (ev->prev_pid >= ev->pid && ev->pid >= 0)
			v->lost += (uint64_t)(ev->prev_pid - ev->pid) + 1;
		break;
	default: break;
	}
}

int fleet_event_done(struct fleet *f)
{
	int err;

	if (fflush(f->line))
		return -ENOMEM;
	err = evlog_write_line(f->log, f->line_buf, f->line_len);
	rewind(f->line);
	if (err && !f->failed) {
		p_err("--output %s: %s: events are not written", f->o.output, strerror(-err));
		f->failed = true;
	}
	return err;
}

static int on_exit_count(void *ctx, const struct capture_exit_key *k, uint64_t n)
{
	const struct trace_state *st = ((void **)ctx)[0];
	struct metrics_snapshot *s = ((void **)ctx)[1];
	char name[32];

	for (uint32_t i = 0; i < st->nvms && i < METRICS_MAX_VMS; i++) {
		if ((uint32_t)st->vms[i].info.pid != k->tgid)
			continue;
		capture_exit_reason_name(k->isa, k->reason, name, sizeof(name));
		for (size_t e = 0; e < s->nexits; e++)   /* summed over vCPUs: bounded labels */
			if (s->exits[e].vm == i && !strcmp(s->exits[e].reason, name)) {
				s->exits[e].count += n;
				return 0;
			}
		if (s->nexits < METRICS_MAX_EXITS) {
			s->exits[s->nexits] = (struct metrics_exit){ .vm = i, .count = n };
			snprintf(s->exits[s->nexits].reason, sizeof(s->exits[0].reason), "%s", name);
			s->nexits++;
		}
	}
	return 0;
}

/* What the tracers know now (gauges) and, every second, the capture's maps. */
static void snapshot(struct fleet *f, const struct trace_state *st, bool slow)
{
	struct metrics_snapshot *s = &f->snap;

	for (size_t i = 0; i < st->nvms && i < METRICS_MAX_VMS; i++) {
		const struct vm_tracer *t = &st->vms[i];
		struct metrics_vm *v = &s->vm[i];
		uint64_t procs = 0;

		v->up = !t->gone;
		v->validated = t->res.validated && !t->restarting;
		v->exact = t->sched.found;
		v->nvcpu = t->nvcpu;
		v->tasks = t->ntasks;
		for (size_t k = 0; k < t->ntasks; k++)
			procs += t->tasks[k].pid == t->tasks[k].tgid;
		v->processes = procs;
	}
	if (st->nvms > s->nvms)
		s->nvms = st->nvms < METRICS_MAX_VMS ? st->nvms : METRICS_MAX_VMS;
	s->capture = st->cap != NULL;
	if (slow && st->cap) {
		struct capture_counters c;
		void *ctx[2] = { (void *)st, s };

		if (!capture_counters_read(st->cap, &c)) {
			s->cap_seen = c.seen;
			s->cap_filtered = c.filtered;
			s->cap_deduped = c.deduped;
			s->cap_emitted = c.emitted;
			s->cap_dropped = c.dropped;
		}
		s->nexits = 0;
		capture_foreach_exit(st->cap, on_exit_count, ctx);
	}
	s->events_written = f->env.seq;
	s->rotations = f->log ? evlog_rotations(f->log) : 0;
}

static void publish(struct fleet *f, bool write_file)
{
	size_t len;
	char *text;

	if (!f->srv && !f->o.metrics_file)
		return;
	text = metrics_render(&f->snap, &len);
	if (!text)
		return;
	if (f->srv)
		metrics_server_publish(f->srv, text, len);
	if (write_file && f->o.metrics_file) {
		int err = metrics_file_write(f->o.metrics_file, text, len);

		if (err)
			p_warn("--metrics-file %s: %s", f->o.metrics_file, strerror(-err));
	}
	free(text);
}

int fleet_tick(struct fleet *f, const struct trace_state *st, uint64_t now, bool reopen)
{
	int err = 0;

	if (f->log) {
		err = evlog_flush(f->log);
		if (reopen) {
			int rerr = evlog_reopen(f->log);

			if (rerr)
				p_warn("--output %s: reopening: %s (retried at the next event)", f->o.output,
				       strerror(-rerr));
			else
				p_info("--output %s reopened", f->o.output);
		}
		if (err && !f->failed) {
			p_err("--output %s: %s: events are not written", f->o.output, strerror(-err));
			f->failed = true;
		}
	}
	/* after the flush: the counters served match the lines in the file up to events_written */
	if (now >= f->next_render) {
		bool slow = now >= f->next_slow;

		snapshot(f, st, slow);
		publish(f, slow);
		f->next_render = now + METRICS_RENDER_NS;
		if (slow)
			f->next_slow = now + METRICS_FILE_NS;
	}
	return f->failed ? -EIO : 0;
}

void fleet_close(struct fleet **fp, const struct trace_state *st)
{
	struct fleet *f = *fp;

	if (!f)
		return;
	if (f->log)
		evlog_flush(f->log);
	if (st) {   /* the final figures (a textfile keeps them after we are gone) */
		snapshot(f, st, true);
		publish(f, true);
	}
	metrics_server_stop(&f->srv);
	if (f->w)
		jsonw_destroy(&f->w);
	if (f->line)
		fclose(f->line);
	free(f->line_buf);
	evlog_close(&f->log);
	free(f);
	*fp = NULL;
}
