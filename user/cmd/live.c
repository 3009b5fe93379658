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
#include "trace/run.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace live (--pid PID [--pid PID...] | -a) [-d SEC] [--vcpu N] [--comm NAME]\n"
		"                           [--no-switch] [-I SEC] [--json]\n"
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
		"\n"
		"Examples:\n"
		"  vmoffset-trace live --pid $(pgrep -f 'qemu.*debian12')\n"
		"  vmoffset-trace live -a -d 10 --no-switch\n"
		"  vmoffset-trace -j live -p 4242 --comm nginx | jq .\n"
		"  vmoffset-trace live -a -I 1\n");
}

struct live_ctx {
	struct trace_state *st;
	struct analysis an;
	struct an_line_opts lo;
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
	if (c->interval_s > 0)
		return;
	if (ev->type == SEV_SWITCH && (c->no_switch || (c->vcpu >= 0 && ev->vcpu != (uint32_t)c->vcpu)))
		return;
	if (c->comm && strncmp(ev->comm, c->comm, 16))
		return;
	if (!c->json && !c->header_done) {
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
	an_print_event(stdout, c->w, &c->an, ev, &c->lo, xp);
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
		{},
	};
	struct trace_opts to = { 0 };
	struct trace_state *st = calloc(1, sizeof(*st));
	struct live_ctx c = { .json = log_json, .vcpu = -1 };
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
	err = trace_setup(&to, st, &sink);
	if (err) {
		ret = err == -EINVAL ? EXIT_USAGE : err == -ENOENT ? EXIT_UNDETERMINED : EXIT_FAIL;
		goto cleanup;
	}
	c.lo = (struct an_line_opts){ .json = c.json, .t0 = st->t_start, .wall_offset_ns = st->wall_offset_ns };
	c.next_iv = st->t_start + (uint64_t)(c.interval_s * 1e9);
	c.an.iv_start = st->t_start;
	err = trace_loop(&to, st, &sink);
	fflush(stdout);
	if (trace_interrupted)
		p_info("interrupted: %llu event(s) printed", (unsigned long long)c.printed);
	ret = trace_exit_code(err);
cleanup:
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
