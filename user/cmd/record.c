/* `vmoffset-trace record`: the live event stream into a session file (session/session.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "common/guest_text.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "session/session.h"
#include "trace/run.h"

#define FLUSH_NS 1000000000ULL   /* a block at least every second: a kill loses at most that */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace record (--pid PID [--pid PID...] | -a) [-d SEC] [-o FILE]\n"
		"\n"
		"Record the guests' process activity (what `live` shows) with the VM identities, the offsets used\n"
		"and counters into FILE: a versioned file of zlib-compressed blocks, each with a CRC-32, written at\n"
		"least once a second, so Ctrl-C, SIGTERM, a kill or QEMU exiting leaves a readable file (a clean\n"
		"stop adds a trailer with totals). Read it with `vmoffset-trace report -i FILE`. As perf does, an\n"
		"existing FILE is kept as FILE.old.\n"
		"\n"
		TRACE_USAGE
		"Output:\n"
		"  -o, --output FILE      session file to write (default " CMD_DEFAULT_SESSION ", which report reads)\n"
		"  -h, --help             this text\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace record --pid $(pgrep -f 'qemu.*debian12') -d 30 -o web.vmot\n"
		"  vmoffset-trace record -a -o host.vmot        # until Ctrl-C\n"
		"  vmoffset-trace report -i web.vmot --sort switches\n");
}

struct rec_ctx {
	struct trace_state *st;
	const char *path;
	struct sess_writer *w;
	int err;
	uint64_t last_flush;
	double rate, task_rate;
};

static void header_fill(json_writer_t *w, void *arg)
{
	struct rec_ctx *c = arg;
	char host[256] = "", when[64];
	struct timespec rt;
	struct tm tm;

	gethostname(host, sizeof(host) - 1);
	clock_gettime(CLOCK_REALTIME, &rt);
	gmtime_r(&rt.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	jsonw_start_object(w);
	jsonw_string_field(w, "format", "vmoffset-trace session");
	jsonw_u64_field(w, "version", SESS_VERSION);
	jsonw_string_field(w, "producer", "vmoffset-trace 0.1.0");
	jsonw_string_field(w, "created", when);
	jsonw_string_field(w, "host", host);
	jsonw_u64_field(w, "t_start_ns", c->st->t_start);
	jsonw_int_field(w, "wall_offset_ns", c->st->wall_offset_ns);
	jsonw_string_field(w, "mode", c->st->mode);
	jsonw_float_field_fmt(w, "rate_hz", "%.2f", c->rate);
	jsonw_float_field_fmt(w, "task_rate_hz", "%.2f", c->task_rate);
	jsonw_end_object(w);
}

/* {"exit_stats": <the trace's exit statistics, already JSON>} */
static void exit_stats_fill(json_writer_t *w, void *arg)
{
	jsonw_start_object(w);
	jsonw_name(w, "exit_stats");
	jsonw_printf(w, "%s", (const char *)arg);
	jsonw_end_object(w);
}

/* perf's habit: a previous session at path is kept as path.old, not overwritten (only once a new one is
 * about to be written: a record that fails to start leaves the old file where it was). */
static void keep_previous(const char *path)
{
	struct stat sb;
	char old[PATH_MAX];

	if (!stat(path, &sb) && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
	    snprintf(old, sizeof(old), "%s.old", path) < (int)sizeof(old) && rename(path, old))
		p_warn("cannot keep the previous %s as %s: %s", path, old, strerror(errno));
}

static void rec_vm_ready(void *ctx, struct vm_tracer *t)
{
	struct rec_ctx *c = ctx;
	char *j;

	if (c->err)
		return;
	if (!c->w) {
		char *h = jsonw_text(header_fill, c);

		keep_previous(c->path);
		c->err = h ? sess_create(c->path, h, &c->w) : -ENOMEM;
		free(h);
		if (c->err) {
			p_err("cannot write %s: %s", c->path, strerror(-c->err));
			return;
		}
		c->last_flush = vmt_now_ns();
	}
	j = vmt_identity_json(t);
	c->err = j ? sess_write_json(c->w, SB_VM, j) : -ENOMEM;
	free(j);
	if (c->err)
		p_err("writing %s: %s", c->path, strerror(-c->err));
}

/* An EXEC event's argv and ids as an SB_EXEC block (see session.h). */
static void exec_fill(json_writer_t *w, void *arg)
{
	const void *const *a = arg;
	const struct sess_event *ev = a[0];
	const struct vmt_exec *d = a[1];

	jsonw_start_object(w);
	jsonw_u64_field(w, "vm", ev->vm);
	jsonw_u64_field(w, "time_ns", ev->time_ns);
	jsonw_int_field(w, "pid", ev->pid);
	jsonw_hex_field(w, "task", ev->task);
	if (d->have_ids) {
		jsonw_u64_field(w, "uid", d->ids[0]);
		jsonw_u64_field(w, "euid", d->ids[2]);
	} else {
		jsonw_null_field(w, "uid");
		jsonw_null_field(w, "euid");
	}
	jsonw_name(w, "argv");
	if (d->argv_len)
		jsonw_nul_strings(w, d->argv, d->argv_len);
	else
		jsonw_null(w);
	jsonw_bool_field(w, "argv_truncated", d->truncated);
	jsonw_end_object(w);
}

static void rec_event(void *ctx, const struct sess_event *ev)
{
	struct rec_ctx *c = ctx;
	const struct vmt_exec *d;

	if (c->w && !c->err && (c->err = sess_add_event(c->w, ev)))
		p_err("writing %s: %s", c->path, strerror(-c->err));
	if (ev->type == SEV_EXEC && ev->vm < c->st->nvms && (d = vmt_exec_details(&c->st->vms[ev->vm])) &&
	    c->w && !c->err) {
		const void *arg[2] = { ev, d };
		char *j = jsonw_text(exec_fill, (void *)arg);

		c->err = j ? sess_write_json(c->w, SB_EXEC, j) : -ENOMEM;
		free(j);
		if (c->err)
			p_err("writing %s: %s", c->path, strerror(-c->err));
	}
}

static void rec_sched(void *ctx, const struct sess_sched_hdr *h, const struct sess_sched_rec *r)
{
	struct rec_ctx *c = ctx;

	if (c->w && !c->err && (c->err = sess_write_sched(c->w, h, r)))
		p_err("writing %s: %s", c->path, strerror(-c->err));
}

static void write_counters(struct rec_ctx *c, struct vm_tracer *t)
{
	char *j = vmt_counters_json(t);

	if (!c->err && c->w)
		c->err = j ? sess_write_json(c->w, SB_COUNTERS, j) : -ENOMEM;
	free(j);
}

static void rec_vm_gone(void *ctx, struct vm_tracer *t)
{
	write_counters(ctx, t);
}

static int rec_tick(void *ctx, uint64_t now)
{
	struct rec_ctx *c = ctx;

	if (!c->err && c->w && now - c->last_flush >= FLUSH_NS) {
		c->err = sess_flush(c->w);
		c->last_flush = now;
		if (c->err)
			p_err("writing %s: %s", c->path, strerror(-c->err));
	}
	return c->err;
}

int cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {
		TRACE_LONG_OPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "help",   no_argument,       NULL, 'h' },
		{},
	};
	struct trace_opts to = { 0 };
	struct trace_state *st = calloc(1, sizeof(*st));
	struct rec_ctx c = { 0 };
	struct trace_sink sink = { .vm_ready = rec_vm_ready, .event = rec_event, .tick = rec_tick,
				   .vm_gone = rec_vm_gone, .sched = rec_sched, .ctx = &c };
	int ch, err, ret = EXIT_FAIL;

	if (!st) {
		p_err("out of memory");
		return EXIT_FAIL;
	}
	while ((ch = cmd_getopt(argc, argv, TRACE_SHORT_OPTS "o:h", opts, trace_opt, &to)) != -1) {
		switch (ch) {
		case CMD_OPT_BAD: goto usage_err;
		case 'o': c.path = optarg; break;
		case 'h': usage(stdout); ret = EXIT_OK; goto cleanup;
		default: cmd_bad_option(argv, usage); goto usage_err;
		}
	}
	if (cmd_no_operands(argc, argv))
		goto usage_err;
	if (!c.path)
		c.path = CMD_DEFAULT_SESSION;
	to.vmt.progress = isatty(STDERR_FILENO);
	c.st = st;
	c.rate = to.rate_hz > 0 ? to.rate_hz : 100;
	c.task_rate = to.task_hz > 0 ? to.task_hz : 20;
	err = trace_setup(&to, st, &sink);
	if (err) {
		ret = err == -EINVAL ? EXIT_USAGE : err == -ENOENT ? EXIT_UNDETERMINED : EXIT_FAIL;
		goto cleanup;
	}
	if (c.err)
		goto cleanup;
	p_info("recording to %s%s", c.path, to.duration_s > 0 ? "" : " (Ctrl-C to stop)");
	err = trace_loop(&to, st, &sink);
	{
		uint64_t now = vmt_now_ns();
		size_t gone = 0;

		for (size_t i = 0; i < st->nvms; i++) {
			char *j = vmt_identity_json(&st->vms[i]);

			gone += st->vms[i].gone;
			if (!st->vms[i].gone)
				write_counters(&c, &st->vms[i]);
			/* the VM identity once more at the end: a damaged first copy does not leave the events
			 * without their VM (report keeps one per index) */
			if (!c.err && c.w && j)
				c.err = sess_write_json(c.w, SB_VM, j);
			free(j);
		}
		if (!c.err && st->exit_stats_json) {
			char *j = jsonw_text(exit_stats_fill, st->exit_stats_json);

			if (j)
				c.err = sess_write_json(c.w, SB_COUNTERS, j);
			free(j);
		}
		const char *stopped = trace_interrupted == SIGINT ? "SIGINT" : trace_interrupted == SIGTERM ? "SIGTERM" :
				      trace_interrupted ? "signal" : gone == st->nvms ? "every VM gone" :
				      c.err ? "write error" : "duration reached";

		if (c.w) {
			uint64_t n = sess_writer_events(c.w);
			int cerr = c.err ? (sess_abort(c.w), c.err) :
				   sess_close(c.w, (now - st->t_start) / 1e9, stopped);

			c.w = NULL;
			if (cerr) {
				p_err("writing %s: %s", c.path, strerror(-cerr));
				goto cleanup;
			}
			p_info("%" PRIu64 " event(s) from %zu VM(s) written to %s", n, st->nvms, c.path);
		}
	}
	ret = trace_exit_code(err);
	goto cleanup;
usage_err:
	ret = EXIT_USAGE;
cleanup:
	if (c.w)
		sess_abort(c.w);
	trace_teardown(st);
	free(st);
	return ret;
}
