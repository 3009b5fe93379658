/* `vmoffset-trace live`: the guests' process activity as it happens (switch, fork, exec, exit). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "common/units.h"
#include "trace/analysis.h"
#include "trace/fleet.h"
#include "trace/run.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace live (--pid PID [--pid PID...] | -a) [-d SEC] [--vcpu N] [--comm NAME]\n"
		"                           [--no-switch] [-I SEC] [--json] [--output FILE [--output-max-mb N]\n"
		"                           [--output-keep N]] [--metrics [ADDR:]PORT] [--metrics-file PATH]\n"
		"\n"
		"Stream what every guest is doing, seen from outside: a line per event — time, VM, vCPU, event\n"
		"(switch: the vCPU now runs this task; fork; exec; rename; exit; restart: the guest kernel restarted\n"
		"and is rediscovered; lost: pids the guest handed out that no task-list walk saw — processes that\n"
		"started and ended in between, counted, never silent), pid, tgid, ppid, comm. Offsets are\n"
		"discovered first (or taken from the offsets cache after this guest's own switches confirm them).\n"
		"Which event source is active is said on stderr. Exit status: 0 done, 2 offsets undetermined,\n"
		"1 error.\n"
		"\n"
		TRACE_USAGE
		"Filters and output:\n"
		"      --vcpu N           only switches on vCPU N (fork/exec/exit are not per vCPU: kept)\n"
		"      --comm NAME        only events of tasks named NAME\n"
		"      --no-switch        only fork/exec/rename/exit\n"
		"  -I, --interval SEC     instead of events, a summary every SEC s: switches/s and top processes\n"
		"                         per vCPU (like perf kvm stat live)\n"
		"  -j, --json             one JSON object per line (as does the global -j)\n"
		"  -h, --help             this text\n"
		"Fleet (log shippers and Prometheus; the event schema is in the README):\n"
		"      --output FILE      events as JSON lines to FILE (appended; stdout then carries none), flushed\n"
		"                         every poll; SIGHUP reopens FILE (logrotate)\n"
		"      --output-max-mb N  rotate FILE once it holds N MiB (FILE -> FILE.1 -> FILE.2 ...; default 0:\n"
		"                         never); lines never span two files\n"
		"      --output-keep N    rotated files kept (default 5)\n"
		"      --metrics [ADDR:]PORT  serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR default\n"
		"                         127.0.0.1)\n"
		"      --metrics-file PATH  the same text written to PATH every second, atomically (node_exporter's\n"
		"                         textfile collector: PATH ending in .prom in its directory)\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace live --pid $(pgrep -f 'qemu.*debian12')\n"
		"  vmoffset-trace live -a -d 10 --no-switch\n"
		"  vmoffset-trace -j live -p 4242 --comm nginx | jq .\n"
		"  vmoffset-trace live -a -I 1\n"
		"  vmoffset-trace live -a --output /var/log/vmoffset-trace/events.jsonl --output-max-mb 100 --metrics 9867\n");
}

struct live_ctx {
	struct trace_state *st;
	struct analysis an;
	struct fleet *fleet;      /* --output, --metrics: always there (it also numbers JSON events) */
	struct an_line_opts lo, lo_file;
	json_writer_t *w;
	bool json, no_switch, header_done;
	long vcpu;               /* -1 all */
	const char *comm;
	double interval_s;
	uint64_t next_iv;
	uint64_t printed;
};

static void live_vm_ready(void *ctx, struct vm_tracer *t)
{
	struct live_ctx *c = ctx;

	an_set_vm(&c->an, t->index, t->info.name, t->info.pid, t->nvcpu);
	an_set_sched_note(&c->an, t->index, vmt_sched_note(t));
	fleet_vm_ready(c->fleet, &c->an, t);
}

static void live_sched(void *ctx, const struct sess_sched_hdr *h, const struct sess_sched_rec *r)
{
	struct live_ctx *c = ctx;

	an_sched(&c->an, h, r);
}

static void live_event(void *ctx, const struct sess_event *ev)
{
	struct live_ctx *c = ctx;

	an_event(&c->an, ev);
	fleet_count(c->fleet, ev);   /* the metrics count every event; filters only choose what is written */
	if (c->interval_s > 0 && !fleet_has_output(c->fleet))
		return;
	if (ev->type == SEV_SWITCH && (c->no_switch || (c->vcpu >= 0 && ev->vcpu != (uint32_t)c->vcpu)))
		return;
	if (c->comm && strncmp(ev->comm, c->comm, 16))
		return;
	bool to_file = fleet_has_output(c->fleet);

	if (!to_file && !c->json && !c->header_done) {
		an_print_header(stdout, &c->lo);
		c->header_done = true;
	}
	struct an_exec x, *xp = NULL;
	const struct vmt_exec *d = ev->type == SEV_EXEC && ev->vm < c->st->nvms ? vmt_exec_details(&c->st->vms[ev->vm])
										   : NULL;
	if (d) {
		x = (struct an_exec){ .argv = d->argv_len ? d->argv : NULL, .argv_len = d->argv_len,
				      .argv_truncated = d->truncated, .have_ids = d->have_ids, .uid = d->ids[0],
				      .euid = d->ids[2] };
		xp = &x;
	}
	if (to_file) {
		an_print_event(NULL, fleet_event_writer(c->fleet), &c->an, ev, &c->lo_file, xp);
		fleet_event_done(c->fleet);
	} else {
		an_print_event(stdout, c->w, &c->an, ev, &c->lo, xp);
	}
	c->printed++;
}

static int live_tick(void *ctx, uint64_t now)
{
	struct live_ctx *c = ctx;

	if (c->interval_s > 0 && now >= c->next_iv) {
		if (!c->an.iv_start)
			c->an.iv_start = c->st->t_start;
		an_print_interval(stdout, c->w, &c->an, now, &c->lo, 5);
		c->next_iv += (uint64_t)(c->interval_s * 1e9);
	}
	bool reopen = trace_reopen;

	trace_reopen = 0;
	if (fleet_tick(c->fleet, c->st, now, reopen))
		return -EIO;
	fflush(stdout);
	return ferror(stdout) ? -EPIPE : 0;
}

int cmd_live(int argc, char **argv)
{
	static const struct option opts[] = {
		TRACE_LONG_OPTS,
		{ "vcpu",      required_argument, NULL, 0x300 },
		{ "comm",      required_argument, NULL, 0x301 },
		{ "no-switch", no_argument,       NULL, 0x302 },
		{ "interval",  required_argument, NULL, 'I' },
		{ "json",      no_argument,       NULL, 'j' },
		{ "help",      no_argument,       NULL, 'h' },
		{ "output",    required_argument, NULL, 0x303 },
		{ "output-max-mb", required_argument, NULL, 0x304 },
		{ "output-keep", required_argument, NULL, 0x305 },
		{ "metrics",   required_argument, NULL, 0x306 },
		{ "metrics-file", required_argument, NULL, 0x307 },
		{},
	};
	struct trace_opts to = { 0 };
	struct trace_state *st = calloc(1, sizeof(*st));
	struct live_ctx c = { .json = log_json, .vcpu = -1 };
	struct fleet_opts fo = { .output_keep = 5, .version = VMOT_VERSION };
	double keep;
	struct trace_sink sink = { .vm_ready = live_vm_ready, .event = live_event, .tick = live_tick, .sched = live_sched,
				  .ctx = &c };
	int ch, err, ret = EXIT_FAIL;
	char *end;

	if (!st) {
		p_err("out of memory");
		return EXIT_FAIL;
	}
	an_init(&c.an);
	while ((ch = cmd_getopt(argc, argv, TRACE_SHORT_OPTS "I:jh", opts, trace_opt, &to)) != -1) {
		switch (ch) {
		case CMD_OPT_BAD: goto usage_err;
		case 0x300:
			errno = 0;
			c.vcpu = strtol(optarg, &end, 10);
			if (errno || *end || c.vcpu < 0 || c.vcpu > 4095) {
				p_err("--vcpu: '%s' is not a vCPU number", optarg);
				goto usage_err;
			}
			break;
		case 0x301: c.comm = optarg; break;
		case 0x302: c.no_switch = true; break;
		case 'I':   /* perf stat's -I; -i is an input file (report) */
			if (parse_duration(optarg, 0.01, 86400, &c.interval_s)) {
				p_err("--interval: '%s' is not a duration in 0.01..86400 s (seconds, or with ms, s, m, h)",
				      optarg);
				goto usage_err;
			}
			break;
		case 'j': c.json = log_json = true; break;
		case 0x303: fo.output = optarg; break;
		case 0x304:
			if (parse_number(optarg, 0, 1048576, &fo.output_max_mb)) {
				p_err("--output-max-mb: '%s' is not a size in MiB (0..1048576; 0.5 is half a MiB)", optarg);
				goto usage_err;
			}
			break;
		case 0x305:
			if (parse_number(optarg, 0, 1000, &keep) || keep != (unsigned)keep) {
				p_err("--output-keep: '%s' is not a number of files in 0..1000", optarg);
				goto usage_err;
			}
			fo.output_keep = (unsigned)keep;
			break;
		case 0x306: fo.metrics = optarg; break;
		case 0x307: fo.metrics_file = optarg; break;
		case 'h': usage(stdout); ret = EXIT_OK; goto cleanup;
		default: cmd_bad_option(argv, usage); goto usage_err;
		}
	}
	if (cmd_no_operands(argc, argv))
		goto usage_err;
	to.vmt.progress = isatty(STDERR_FILENO);
	if (c.json) {
		c.w = jsonw_new(stdout);
		if (!c.w) {
			p_err("out of memory");
			goto cleanup;
		}
		jsonw_pretty(c.w, false);   /* one object per line, whatever -p says */
	}
	c.st = st;
	/* files and the port before tracing: bad ones fail here, in one line */
	if (fleet_open(&fo, &c.fleet))
		goto cleanup;
	to.hup_reopens = fo.output || fo.metrics_file;
	err = trace_setup(&to, st, &sink);
	if (err) {
		ret = err == -EINVAL ? EXIT_USAGE : err == -ENOENT ? EXIT_UNDETERMINED : EXIT_FAIL;
		goto cleanup;
	}
	c.lo = (struct an_line_opts){ .json = c.json, .t0 = st->t_start, .wall_offset_ns = st->wall_offset_ns,
				      .env = fleet_envelope(c.fleet) };
	c.lo_file = c.lo;
	c.lo_file.json = true;
	c.next_iv = st->t_start + (uint64_t)(c.interval_s * 1e9);
	c.an.iv_start = st->t_start;
	err = trace_loop(&to, st, &sink);
	fflush(stdout);
	if (trace_interrupted)
		p_info("interrupted: %llu event(s) printed", (unsigned long long)c.printed);
	ret = trace_exit_code(err);
cleanup:
	fleet_close(&c.fleet, st);
	trace_teardown(st);
	free(st);
	if (c.w)
		jsonw_destroy(&c.w);
	an_free(&c.an);
	return ret;
usage_err:
	ret = EXIT_USAGE;
	goto cleanup;
}
