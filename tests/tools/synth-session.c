/*
 * synth-session — a synthetic session file written through the session writer (user/session/), for timechart's
 * size test and benchmark (issue 18) and anything else that wants a long, busy session without a guest.
 *
 *   synth-session -o FILE [-d SECONDS] [--vms N] [--vcpus N] [--switch-ms MS] [--procs N] [--life-ms MS]
 *                 [--restart] [--hostile] [--seed N]
 *
 * Each vCPU switches every 1..2*MS ms (uniform; default 4: ~250 switches/s per vCPU) among --procs processes
 * (every 5th has 3 threads) picked with a skew (a few use most of the time, as on a real guest), or to the idle
 * task (pid 0) one time in six. Every --life-ms (default 100) a new process is forked by one of them, execs
 * 1 ms later (every 10th also renames itself) and exits 3 ms later; every 50th life
 * is a lost pid range instead. --restart puts one guest kernel restart in the middle of VM 0. --hostile names
 * processes with markup characters, quotes and bytes that are not UTF-8. Prints "events N" on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "session/session.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct proc { int32_t pid, tgid; char comm[16]; };

#define T0 1000000000000ULL   /* the session's start (CLOCK_MONOTONIC ns: any value) */

static void name(char comm[16], unsigned i, int hostile)
{
	static const char *const bad[] = { "<b>&amp;\"x'", "a&b<c>d", "\xff\xfe<svg>", "q\"uo'te\x01\x7f",
					   "\xc3\x28zz&", "]]>--&#0;", "\xe2\x82\xac-euro" };

	memset(comm, 0, 16);
	if (hostile && i % 3 == 0)
		snprintf(comm, 16, "%s%u", bad[i / 3 % (sizeof(bad) / sizeof(bad[0]))], i);
	else
		snprintf(comm, 16, "proc-%u", i);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' }, { "duration", required_argument, NULL, 'd' },
		{ "vms", required_argument, NULL, 1 },      { "vcpus", required_argument, NULL, 2 },
		{ "switch-ms", required_argument, NULL, 3 }, { "procs", required_argument, NULL, 4 },
		{ "life-ms", required_argument, NULL, 5 },  { "restart", no_argument, NULL, 6 },
		{ "hostile", no_argument, NULL, 7 },        { "seed", required_argument, NULL, 8 },
		{},
	};
	const char *out = NULL;
	double dur = 3600, sw_ms = 4, life_ms = 100;
	unsigned nvms = 1, nvcpus = 4, nprocs = 300;
	int restart = 0, hostile = 0, c;
	struct sess_writer *w;
	char hdr[512], vm[256];

	while ((c = getopt_long(argc, argv, "o:d:", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'd': dur = atof(optarg); break;
		case 1: nvms = (unsigned)atoi(optarg); break;
		case 2: nvcpus = (unsigned)atoi(optarg); break;
		case 3: sw_ms = atof(optarg); break;
		case 4: nprocs = (unsigned)atoi(optarg); break;
		case 5: life_ms = atof(optarg); break;
		case 6: restart = 1; break;
		case 7: hostile = 1; break;
		case 8: rng = strtoull(optarg, NULL, 0) | 1; break;
		default: fprintf(stderr, "usage: see the head of tests/tools/synth-session.c\n"); return 64;
		}
	}
	if (!out || dur <= 0 || !nvms || nvms > 64 || !nvcpus || nvcpus > 64 || sw_ms <= 0 || nprocs < 2 || life_ms <= 0) {
		fprintf(stderr, "synth-session: -o FILE and sane values needed (see the head of the file)\n");
		return 64;
	}
	snprintf(hdr, sizeof(hdr), "{\"format\":\"vmoffset-trace session\",\"version\":%d,\"producer\":\"synth-session\","
		 "\"host\":\"synth\",\"t_start_ns\":%llu,\"wall_offset_ns\":1700000000000000000,\"mode\":\"synthetic\"}",
		 SESS_VERSION, (unsigned long long)T0);
	if (sess_create(out, hdr, &w)) {
		fprintf(stderr, "synth-session: cannot create %s\n", out);
		return 1;
	}
	for (unsigned v = 0; v < nvms; v++) {
		snprintf(vm, sizeof(vm), "{\"index\":%u,\"name\":\"synth%u\",\"pid\":%u,\"vcpus\":%u}", v, v, 4242 + v, nvcpus);
		sess_write_json(w, SB_VM, vm);
	}

	/* the process pool (shared by the VMs: each VM's are its own tasks) */
	struct proc *pool = calloc(nprocs * 3, sizeof(*pool));
	unsigned npool = 0;
	for (unsigned i = 0; i < nprocs; i++) {
		int32_t pid = 300 + (int32_t)npool * 2;

		pool[npool] = (struct proc){ .pid = pid, .tgid = pid };
		name(pool[npool++].comm, i, hostile);
		if (i % 5 == 0)
			for (int t = 1; t <= 2; t++) {
				pool[npool] = (struct proc){ .pid = pid + 100000 + t, .tgid = pid };
				snprintf(pool[npool++].comm, 16, "worker-%u/%d", i % 100000, t);
			}
	}

	size_t nq = (size_t)nvms * nvcpus;
	uint64_t *next = calloc(nq, sizeof(*next)), end = T0 + (uint64_t)(dur * 1e9), next_life = T0 + 50000000;
	int32_t *cur = calloc(nq, sizeof(*cur));
	uint64_t n = 0, lives = 0, sw_ns = (uint64_t)(sw_ms * 1e6), life_ns = (uint64_t)(life_ms * 1e6);
	int32_t next_pid = 20000;
	int restarted = !restart;
	struct sess_event pend[8];
	size_t npend = 0;

	for (size_t q = 0; q < nq; q++)
		next[q] = T0 + 1000000 + rnd() % sw_ns;
	for (;;) {
		size_t q = 0;
		for (size_t i = 1; i < nq; i++)
			if (next[i] < next[q])
				q = i;
		uint64_t t = next[q];
		/* pending lifecycle events and new lives come first when earlier */
		if (npend && pend[0].time_ns <= t) {
			sess_add_event(w, &pend[0]);
			memmove(pend, pend + 1, --npend * sizeof(*pend));
			n++;
			continue;
		}
		if (next_life <= t && !npend) {
			uint32_t v = (uint32_t)(lives % nvms);
			const struct proc *par = &pool[rnd() % npool];
			struct sess_event e = { .time_ns = next_life, .vm = v, .vcpu = SESS_VCPU_NONE, .tgid = next_pid,
						.pid = next_pid, .ppid = par->tgid, .prev_pid = -1, .task = 0xffff888000000000ULL + lives * 0x2000 };

			lives++;
			next_life += life_ns;
			if (lives % 50 == 0) {   /* a lost range instead */
				e.type = SEV_LOST;
				e.tgid = e.ppid = -1;
				e.prev_pid = next_pid + 2;
				e.task = 0;
				next_pid += 3;
				sess_add_event(w, &e);
				n++;
				continue;
			}
			e.type = SEV_FORK;
			memcpy(e.comm, par->comm, 16);
			pend[npend++] = e;
			e.type = SEV_EXEC;
			e.time_ns += 1000000;
			e.ppid = par->tgid;
			memset(e.comm, 0, 16);
			name(e.comm, 100000 + (unsigned)lives, hostile);
			pend[npend++] = e;
			if (lives % 10 == 0) {
				e.type = SEV_RENAME;
				e.time_ns += 500000;
				snprintf(e.comm, 16, "renamed-%u", (unsigned)(lives % 1000000));
				pend[npend++] = e;
			}
			e.type = SEV_EXIT;
			e.time_ns = next_life - life_ns + 3000000;
			pend[npend++] = e;
			next_pid++;
			if (!restarted && next_life > T0 + (end - T0) / 2) {
				struct sess_event r = { .time_ns = next_life - life_ns + 3500000, .vm = 0, .vcpu = SESS_VCPU_NONE,
							.type = SEV_RESTART, .pid = -1, .tgid = -1, .ppid = -1, .prev_pid = -1 };
				pend[npend++] = r;
				restarted = 1;
			}
			continue;
		}
		if (t >= end)
			break;
		/* a switch on (vm, vcpu) q */
		struct sess_event e = { .time_ns = t, .vm = (uint32_t)(q / nvcpus), .vcpu = (uint32_t)(q % nvcpus),
					.type = SEV_SWITCH, .prev_pid = cur[q] };
		uint64_t r = rnd();
		if (r % 6 == 0) {
			e.pid = e.tgid = 0;
			snprintf(e.comm, 16, "swapper/%u", e.vcpu);
		} else {
			/* skewed: the square of a uniform draw favours the first processes */
			uint64_t u = (r >> 8) % 1000;
			const struct proc *p = &pool[u * u * npool / 1000000];

			e.pid = p->pid;
			e.tgid = p->tgid;
			memcpy(e.comm, p->comm, 16);
		}
		e.ppid = -1;
		e.task = 0xffff888100000000ULL + (uint64_t)(uint32_t)e.pid * 0x2000;
		cur[q] = e.pid;
		sess_add_event(w, &e);
		n++;
		next[q] = t + 100000 + rnd() % (2 * sw_ns);
	}
	if (sess_close(w, dur, "synthetic")) {
		fprintf(stderr, "synth-session: writing %s failed\n", out);
		return 1;
	}
	printf("events %" PRIu64 "\n", n);
	free(pool);
	free(next);
	free(cur);
	return 0;
}
