/*
 * capture-run: trace one command's VM with the capture BPF object and summarise what was seen.
 *
 *   capture-run [-o FILE] [-e] [-D] [-E] [-B] [-v] -- CMD [ARGS...]
 *   capture-run [-o FILE] [-e] [-D] [-E] [-v] -p PID -t SECONDS     (an already running VM)
 *     -o FILE  write the summary (and events with -e) to FILE instead of stderr
 *     -e       one line per event
 *     -D       no in-kernel dedupe
 *     -E       no plain EMULATE events (mov-to-CR3 still reported)
 *     -B       baseline: only an empty program on kvm_emulate_insn (benchmarks)
 *     -r KIB   ring buffer size in KiB (a power of two, at least a page)
 *     -S       stalled consumer: drain only after the command has exited (overflows a small ring)
 *     -v       libbpf chatter
 *     -p PID   trace that QEMU process for -t SECONDS (default 2) instead of running a command
 *
 * The command is forked stopped on a pipe, its pid is added to the VM filter, then it runs; events are
 * drained until it exits. Summary lines are "key value..." (parsed by tests/guest/test_kvm_tiny.sh and
 * scripts/bench-capture.sh). Exit: the command's exit code, 77 if capture cannot run here (no privilege, no
 * BTF), 1 on other errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "capture/capture.h"
#include "common/log.h"

#define MAX_VALUES 64

struct run {
	FILE *out;
	bool print_events;
	unsigned long long events, by_kind[CAP_EV_KIND_NR], obs;
	unsigned long long cr3_write_events, cr3_write_repeats, cr3_write_with_value;
	struct { unsigned long long cr3; uint32_t src; unsigned long long n; } values[MAX_VALUES];
	int nvalues;
	unsigned long long drain_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int on_event(void *ctx, const struct capture_event *ev, const struct observation *obs)
{
	struct run *r = ctx;
	uint32_t src = ev->kind == CAP_EV_CR3_WRITE ? CR3_SRC_INSN_GPR : ev->cr3_src;

	r->events++;
	if (ev->kind < CAP_EV_KIND_NR)
		r->by_kind[ev->kind]++;
	if (ev->kind == CAP_EV_CR3_WRITE) {
		r->cr3_write_events++;
		r->cr3_write_repeats += ev->repeat;
		if (ev->flags & CAP_F_AUX_VALID)
			r->cr3_write_with_value++;
	}
	if (r->print_events)
		fprintf(r->out, "event t=%llu vcpu=%u tid=%u kind=%s cr3=0x%llx src=%s flags=0x%x "
			"value=0x%llx aux=0x%llx repeat=%u insn_len=%u\n", ev->time_ns, ev->vcpu_id,
			ev->tid, capture_kind_name(ev->kind), ev->cr3, capture_cr3_src_name(ev->cr3_src), ev->flags,
			ev->value, ev->aux, ev->repeat, ev->insn_len);
	if (!obs)
		return 0;
	r->obs++;
	for (int i = 0; i < r->nvalues; i++) {
		if (r->values[i].cr3 == obs->cr3 && r->values[i].src == src) {
			r->values[i].n++;
			return 0;
		}
	}
	if (r->nvalues < MAX_VALUES)
		r->values[r->nvalues++] = (typeof(r->values[0])){ obs->cr3, src, 1 };
	return 0;
}

int main(int argc, char **argv)
{
	struct run r = { .out = stderr };
	struct capture_opts o = {};
	struct capture_counters sum;
	struct capture *cap;
	int c, go[2], status = 0, err;
	pid_t child, attach = 0;
	double seconds = 2;
	bool stall = false;
	uint64_t t;

	while ((c = getopt(argc, argv, "+o:eDEBvp:t:r:S")) != -1) {
		switch (c) {
		case 'o':
			r.out = fopen(optarg, "w");
			if (!r.out) {
				perror(optarg);
				return 1;
			}
			break;
		case 'e': r.print_events = true; break;
		case 'D': o.no_dedupe = true; break;
		case 'E': o.no_emulate = true; break;
		case 'B': o.baseline = true; break;
		case 'v': log_verbose++; break;
		case 'p': attach = (pid_t)atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'r': o.ringbuf_kib = (uint32_t)atoi(optarg); break;
		case 'S': stall = true; break;
		default: return 1;
		}
	}
	if (attach > 0) {
		uint64_t end;

		o.pids = &attach;
		o.npids = 1;
		err = capture_open(&o, &cap);
		if (err) {
			fprintf(stderr, "capture-run: capture_open: %s\n", strerror(-err));
			return err == -EPERM || err == -EOPNOTSUPP || err == -ENOENT ? 77 : 1;
		}
		end = now_ns() + (uint64_t)(seconds * 1e9);
		while (now_ns() < end) {
			t = now_ns();
			err = capture_poll(cap, 0, on_event, &r);
			r.drain_ns += now_ns() - t;
			if (err < 0)
				break;
			if (err == 0)
				usleep(1000);
		}
		goto summary;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: capture-run [-o FILE] [-e] [-D] [-E] [-B] [-v] -- CMD [ARGS...]\n");
		return 1;
	}
	if (pipe(go))
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		char b;

		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(126);
		close(go[0]);
		execvp(argv[optind], argv + optind);
		_exit(127);
	}
	close(go[0]);
	o.pids = &child;
	o.npids = 1;
	err = capture_open(&o, &cap);
	if (err) {
		const char *missing = NULL;

		if (err == -EPERM && capture_check_privilege(&missing) && missing)
			fprintf(stderr, "capture-run: no privilege: capture needs %s\n", missing);
		else
			fprintf(stderr, "capture-run: capture_open: %s\n", strerror(-err));
		close(go[1]);
		waitpid(child, NULL, 0);
		return err == -EPERM || err == -EOPNOTSUPP || err == -ENOENT ? 77 : 1;
	}
	if (write(go[1], "g", 1) != 1)
		return 1;
	close(go[1]);
	/* Non-blocking consume with a short sleep when empty, so drain_ns is the time spent draining only. */
	bool exited = stall && waitpid(child, &status, 0) == child;

	for (;;) {
		if (!exited && waitpid(child, &status, WNOHANG) == child)
			exited = true;
		t = now_ns();
		err = capture_poll(cap, 0, on_event, &r);
		r.drain_ns += now_ns() - t;
		if (err < 0) {
			fprintf(stderr, "capture-run: poll: %s\n", strerror(-err));
			break;
		}
		if (exited && err == 0)
			break;
		if (err == 0)
			usleep(1000);
	}
summary:
	capture_counters_read(cap, &sum);
	for (int h = 0; h < CAP_HOOK_NR; h++) {
		const struct capture_hook_info *hi = capture_hook(cap, h);
		uint64_t cnt = 0, ns = 0;

		capture_prog_stats(cap, h, &cnt, &ns);
		fprintf(r.out, "hook %s present=%d attached=%d variant=%s hits=%llu run_cnt=%llu"
			" run_time_ns=%llu\n", hi->name, hi->present, hi->attached,
			hi->variant ? hi->variant : "-", sum.hook_hits[h], (unsigned long long)cnt, (unsigned long long)ns);
	}
	fprintf(r.out, "seen %llu\nfiltered %llu\ndeduped %llu\nemitted %llu"
		"\ndropped %llu\ncr3_writes %llu\n", sum.seen, sum.filtered, sum.deduped, sum.emitted,
		sum.dropped, sum.cr3_writes);
	fprintf(r.out, "events %llu\ncr3_write_events %llu\ncr3_write_repeats %llu"
		"\ncr3_write_with_value %llu\nobservations %llu\ndrain_ns %llu\n", r.events,
		r.cr3_write_events, r.cr3_write_repeats, r.cr3_write_with_value, r.obs, r.drain_ns);
	for (int k = 1; k < CAP_EV_KIND_NR; k++)
		fprintf(r.out, "kind %s %llu\n", capture_kind_name(k), r.by_kind[k]);
	for (int i = 0; i < r.nvalues; i++)
		fprintf(r.out, "cr3 0x%llx %s %llu\n", r.values[i].cr3,
			capture_cr3_src_name(r.values[i].src), r.values[i].n);
	capture_close(cap);
	if (r.out != stderr)
		fclose(r.out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
