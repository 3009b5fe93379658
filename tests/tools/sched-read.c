/*
 * sched-read — the scheduler's counters as vmoffset-trace finds and reads them, for tests that hold them
 * against the guest's own /proc accounting.
 *
 *   sched-read [--qmp SOCK] [--window S] [--every MS] PID
 *
 * Sets the VM up as `live` does (offsets, per-CPU current task, the scheduler's counters found over a window
 * of S seconds), prints one line
 *   SCHED found=0|1 sum_exec_runtime=OFF|-1 nvcsw=OFF|-1 nivcsw=OFF|-1 pcount=OFF|-1 reason=...
 * then, for every line read on stdin (with --every, also every MS ms), a walk of the task list:
 * "SNAP <CLOCK_MONOTONIC ns> <CLOCK_REALTIME ns before> <after the reads>", one "tid tgid comm sum_exec_ns nvcsw nivcsw" line per task
 * whose counters were read, "END". EOF on stdin ends it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"
#include "trace/tracer.h"

static void on_event(void *ctx, const struct sess_event *ev) { (void)ctx; (void)ev; }

int main(int argc, char **argv)
{
	struct vmt_opts o = { .sample_s = 2 };
	static struct vm_tracer t;
	const char *pid_s = NULL;
	char line[256];
	int err, every_ms = -1;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--qmp") && a + 1 < argc)
			o.qmp = argv[++a];
		else if (!strcmp(argv[a], "--window") && a + 1 < argc)
			o.sched_window_s = strtod(argv[++a], NULL);
		else if (!strcmp(argv[a], "--every") && a + 1 < argc)
			every_ms = atoi(argv[++a]);
		else if (!strcmp(argv[a], "-v"))
			log_verbose = 1;
		else
			pid_s = argv[a];
	}
	if (!pid_s) {
		fprintf(stderr, "usage: sched-read [--qmp SOCK] [--window S] [-v] PID\n");
		return 64;
	}
	o.no_cache = true;
	err = vmt_open(&t, 0, (pid_t)strtol(pid_s, NULL, 10), &o);
	if (err) {
		vmt_close(&t);
		return 1;
	}
	/* the counters are looked for over windows fed by the polls, as live does: poll until they are found
	 * or given up (at most a minute) */
	for (uint64_t until = vmt_now_ns() + 60000000000ULL, n = 0; vmt_sched_pending(&t) && vmt_now_ns() < until; n++) {
		struct timespec ts = { 0, 10000000 };
		uint64_t now = vmt_now_ns();

		if (n % 5 == 0 && vmt_poll_tasks(&t, now, on_event, NULL) < 0)   /* also the slot's evidence rounds */
			break;
		if (vmt_poll_current(&t, now, on_event, NULL) < 0)
			break;
		vmt_sched_tick(&t, now);
		nanosleep(&ts, NULL);
	}
	printf("SCHED found=%d", t.sched.found);
	for (int f = 0; f < SF_NR; f++)
		printf(" %s=%" PRId64, sched_field_names[f], t.sched.f[f].found ? t.sched.f[f].offset : -1);
	printf(" window=%.2f tasks=%u rounds=%u current=%#" PRIx64 " reason=%s\n", t.sched.window_s, t.sched.ntasks,
	       t.sched.rounds, (uint64_t)t.res.percpu_current,
	       t.sched.reason[0] ? t.sched.reason : "-");
	fflush(stdout);
	for (;;) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		struct timespec rt;
		uint64_t now;

		/* a line (or, with --every, the period) asks for a snapshot; EOF ends */
		if (poll(&p, 1, every_ms) > 0) {
			ssize_t r = read(STDIN_FILENO, line, sizeof(line));

			if (r <= 0)
				break;
		}
		now = vmt_now_ns();
		clock_gettime(CLOCK_REALTIME, &rt);

		/* a baseline walk each time (no events needed); no QMP round of the slot (nor its reboot check), which can
		 * wait on a monitor another client holds and leave a gap between snapshots */
		t.have_walk = false;
		t.slot.next_check = UINT64_MAX;
		if (vmt_poll_tasks(&t, now, on_event, NULL)) {
			printf("ERROR walk failed\n");
			break;
		}
		struct timespec rt1;

		clock_gettime(CLOCK_REALTIME, &rt1);
		printf("SNAP %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", t.counters_ns, (uint64_t)(rt.tv_sec * 1000000000LL + rt.tv_nsec),
		       (uint64_t)(rt1.tv_sec * 1000000000LL + rt1.tv_nsec));
		for (size_t i = 0; i < t.ntasks; i++)
			if (t.tasks[i].sched_ok)
				printf("%d %d %.16s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", t.tasks[i].pid, t.tasks[i].tgid,
				       t.tasks[i].comm[0] ? t.tasks[i].comm : "?", t.tasks[i].sum_exec_ns, t.tasks[i].nvcsw,
				       t.tasks[i].nivcsw);
		printf("END\n");
		fflush(stdout);
	}
	vmt_close(&t);
	return 0;
}
