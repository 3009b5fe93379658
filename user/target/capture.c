/*
 * The BPF observation source for `offsets`/`ps` on a live KVM guest: CR3 values from KVM tracepoints of
 * this QEMU's vCPUs, collected while QMP sampling runs (events wait in the ring buffer). Optional: a TCG
 * guest, a host without the hooks or without CAP_BPF/CAP_PERFMON simply contributes nothing (said with -v).
 */
#include <errno.h>
#include <string.h>
#include "capture/capture.h"
#include "common/log.h"
#include "target/target.h"

static int add_obs(void *ctx, const struct capture_event *ev, const struct observation *obs)
{
	(void)ev;
	return obs ? obs_add(ctx, obs) : 0;
}

struct capture *target_capture_begin(pid_t pid)
{
	struct capture_opts o = { .pids = &pid, .npids = 1, .no_io = false };
	struct capture *cap = NULL;
	int err;

	err = capture_open(&o, &cap);
	if (err) {
		p_dbg("BPF observations unavailable for pid %d: %s", (int)pid, strerror(-err));
		return NULL;
	}
	return cap;
}

void target_capture_end(struct capture *cap, struct obs_set *obs)
{
	size_t before = obs->n;
	int err;

	if (!cap)
		return;
	/* drain what accumulated; bounded: the ring buffer holds a finite number of events */
	for (int i = 0; i < 64; i++) {
		err = capture_poll(cap, 0, add_obs, obs);
		if (err <= 0)
			break;
	}
	p_dbg("BPF: %zu observation(s)", obs->n - before);
	capture_close(cap);
}
