// SPDX-License-Identifier: GPL-2.0
/*
 * workload — the guest side of the test harness (scripts/guest.sh builds it with gcc -static -pthread and puts
 * it in the guest's initramfs as /bin/workload). One multi-call binary; the mode is argv[1], or the name it was
 * started under:
 *
 *   vmot-sleep-*  (symlink name)   sleep forever; its comm is the symlink's name (the kernel takes comm from
 *                                  the executed path), truncated to 15 bytes for longer names
 *   workload threads N             comm "vmot-mt"; N extra threads named vmot-thr-1..N (PR_SET_NAME per thread)
 *   workload tree DEPTH            vmot-tree0 → vmot-tree1 → … (a chain of DEPTH processes, each the child of
 *                                  the one before)
 *   workload tracee                comm "vmot-tracee"; sleeps (started by init, so real_parent = init)
 *   workload tracer PID            comm "vmot-tracer"; PTRACE_SEIZEs PID, which is NOT its child: afterwards
 *                                  task->parent (tracer) != task->real_parent (init) for PID
 *   workload rename NAME           exec'd as "workload", then renames itself to NAME with prctl(PR_SET_NAME)
 *   workload churn N               forks N short-lived children (comm "vmot-churn", 0–190 ms each), reaps
 *                                  them and exits: leaves freed task_structs and pid gaps behind
 *   workload churnd MS             daemon "vmot-churnd": every MS ms forks a "vmot-churn" child that exits
 *                                  after a random 0.5–3.5 × MS ms (about two alive at any time: processes
 *                                  that come and go while the VM is read)
 *   workload busy COMM N DUTY [MS] a CPU-bound program: comm COMM, N threads (the main thread one of them),
 *                                  each busy DUTY % of every MS ms (default 20) and asleep the rest; for
 *                                  on-CPU shares held against the guest's own accounting
 *   workload paging                prints 5 if user space can map above 2^47 (5-level paging in use), else 4
 *   workload ids NAME RUID EUID SUID RGID EGID SGID
 *                                  comm NAME, running as those ids (setresgid, setresuid): a process started
 *                                  as another user, or a setuid-like one whose real, effective and saved ids
 *                                  differ
 *   workload life TAG [MS]         a known life cycle, each step printed on the console as
 *                                  "VMOT-LIFE TAG STEP pid=P ppid=Q comm=C": renames itself "vmot-lp-TAG"
 *                                  (start), after MS/2 ms forks a child (fork: comm inherited), the child
 *                                  after MS ms execs /tmp/vmot-lx-TAG, a symlink to workload (exec: comm
 *                                  "vmot-lx-TAG"), which exits after MS ms (exit); the parent reaps it and
 *                                  exits MS/2 ms later (end). TAG: up to 7 characters. Default MS 1000.
 *   workload maps NAME N          comm NAME, with memory maps of every kind a /proc/PID/maps line shows: N
 *                                  one-page anonymous mappings of alternating permissions (---p, r--p, rw-p:
 *                                  they never merge), two pages of its own executable mapped at file offset
 *                                  4096, a brk heap; first re-execs itself with three 2000-byte arguments
 *                                  appended, so that its argv is longer than 4 KiB (a page of the stack)
 *   workload spawn N MS [GAP]      N short-lived children (comm "vmot-spawn", each alive MS ms, then _exit),
 *                                  one every GAP ms (default 2), SIGCHLD ignored (auto-reaped); prints
 *                                  "VMOT-SPAWN begin pid=P", one "VMOT-SPAWN child pid=C" per child (from the
 *                                  parent: fork's own answer) and "VMOT-SPAWN end n=N" once all are gone
 *
 * Every long-lived mode creates /run/vmot/ready/<comm> once it is fully set up, so init can wait for the
 * whole workload before it announces VMOT-READY. Long-lived modes never exit (pause()).
 */
#define _GNU_SOURCE   /* setresuid, setresgid */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_DIR "/run/vmot/ready"

static void ready(const char *name)
{
	char path[256];
	int fd;

	mkdir("/run/vmot", 0755);
	mkdir(READY_DIR, 0755);
	snprintf(path, sizeof(path), READY_DIR "/%s", name);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd >= 0) {
		dprintf(fd, "%d\n", getpid());
		close(fd);
	}
}

static void setname(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

static void sleep_forever(void)
{
	for (;;)
		pause();
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static pthread_barrier_t barrier;

static void *thread_main(void *arg)
{
	char name[16];

	snprintf(name, sizeof(name), "vmot-thr-%ld", (long)arg);
	setname(name);
	pthread_barrier_wait(&barrier);
	/* Wake now and then, like any daemon: the vCPU then loads this process's CR3, which observers
	 * (QMP sampling, BPF) need to see; between wake-ups the idle task keeps it (lazy TLB). */
	for (;;)
		msleep(20 + 7 * (long)arg);
	return NULL;
}

static int mode_threads(int n)
{
	pthread_t t;

	if (n < 1 || n > 64)
		n = 4;
	setname("vmot-mt");
	pthread_barrier_init(&barrier, NULL, n + 1);
	for (long i = 1; i <= n; i++)
		if (pthread_create(&t, NULL, thread_main, (void *)i)) {
			perror("workload: pthread_create");
			return 1;
		}
	pthread_barrier_wait(&barrier);
	ready("vmot-mt");
	sleep_forever();
	return 0;
}

static int mode_tree(int depth)
{
	char name[16];

	if (depth < 1 || depth > 16)
		depth = 3;
	for (int level = 0;; level++) {
		snprintf(name, sizeof(name), "vmot-tree%d", level);
		setname(name);
		if (level == depth - 1)
			break;
		pid_t child = fork();
		if (child < 0) {
			perror("workload: fork");
			break;
		}
		if (child > 0)
			sleep_forever();   /* the parent stays; the child goes one level deeper */
	}
	ready("vmot-tree");        /* by the deepest process, so the whole chain exists */
	sleep_forever();
	return 0;
}

static int mode_tracer(pid_t pid)
{
	setname("vmot-tracer");
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL)) {
		fprintf(stderr, "workload: PTRACE_SEIZE %d: %s\n", pid, strerror(errno));
		return 1;
	}
	ready("vmot-tracer");
	/* never waitpid(): the tracee keeps sleeping, seized but not stopped */
	sleep_forever();
	return 0;
}

static void churn_child(long max_ms)
{
	setname("vmot-churn");
	msleep(max_ms > 0 ? rand() % max_ms : 0);
	_exit(0);
}

static int mode_churn(int n)
{
	setname("vmot-churner");
	srand(getpid());
	for (int i = 0; i < n; i++) {
		pid_t c = fork();
		if (c == 0) {
			srand(getpid());
			churn_child(200);
		}
		msleep(10);
	}
	while (wait(NULL) > 0)
		;
	return 0;
}

static int mode_churnd(long ms)
{
	if (ms < 10)
		ms = 500;
	setname("vmot-churnd");
	signal(SIGCHLD, SIG_IGN);   /* auto-reap */
	srand(getpid());
	ready("vmot-churnd");
	for (;;) {
		pid_t c = fork();
		if (c == 0) {
			srand(getpid());
			msleep(ms / 2);
			churn_child(3 * ms);   /* lives 0.5–3.5 periods: about two children at any time */
		}
		msleep(ms);
	}
	return 0;
}

static void life_say(const char *tag, const char *step, const char *comm)
{
	printf("VMOT-LIFE %s %s pid=%d ppid=%d comm=%s\n", tag, step, (int)getpid(), (int)getppid(), comm);
	fflush(stdout);
}

static int mode_life(const char *tag, long ms)
{
	char name[16], exe[64], arg[24];
	pid_t c;

	if (ms < 10)
		ms = 1000;
	snprintf(name, sizeof(name), "vmot-lp-%.7s", tag);
	setname(name);
	life_say(tag, "start", name);
	msleep(ms / 2);
	c = fork();
	if (c < 0)
		return 1;
	if (c == 0) {
		life_say(tag, "fork", name);
		msleep(ms);
		snprintf(exe, sizeof(exe), "/tmp/vmot-lx-%.7s", tag);
		unlink(exe);
		if (symlink("/bin/workload", exe))
			_exit(1);
		snprintf(arg, sizeof(arg), "%ld", ms);
		life_say(tag, "exec", exe + 5);
		execl(exe, exe + 5, "lifex", tag, arg, (char *)NULL);
		_exit(127);
	}
	waitpid(c, NULL, 0);
	msleep(ms / 2);
	life_say(tag, "end", name);
	return 0;
}

static int mode_spawn(int n, long ms, long gap)
{
	int made = 0;

	setname("vmot-spawner");
	signal(SIGCHLD, SIG_IGN);   /* auto-reap: a child leaves the task list when it exits (no zombie) */
	printf("VMOT-SPAWN begin pid=%d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		pid_t c = fork();

		if (c == 0) {
			setname("vmot-spawn");
			msleep(ms);
			_exit(0);
		}
		if (c < 0)
			continue;
		made++;
		printf("VMOT-SPAWN child pid=%d\n", (int)c);
		fflush(stdout);
		if (gap > 0)
			msleep(gap);
	}
	while (wait(NULL) > 0 || errno == EINTR)   /* with SIGCHLD ignored: returns -1 once all are gone */
		;
	printf("VMOT-SPAWN end n=%d\n", made);
	fflush(stdout);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct busy { int duty; long ms; };

/* Spin duty % of each period, sleep the rest. The spin is bounded by wall time, so under contention a
 * thread gets less CPU than asked: that is fine, the truth is the guest's accounting, not the duty. */
static void *busy_main(void *arg)
{
	const struct busy *b = arg;
	uint64_t period = (uint64_t)b->ms * 1000000ULL, on = period * (uint64_t)b->duty / 100;
	volatile uint64_t x = 0;

	for (;;) {
		uint64_t t0 = now_ns();

		/* the clock only every 20000 steps: without a TSC clocksource (the harness boots tsc=unstable)
		 * each reading is a system call, and a CPU-bound program should run in user space */
		while (now_ns() - t0 < on)
			for (int i = 0; i < 20000; i++)
				x++;
		if (b->duty < 100) {
			/* one reading of the clock: two could straddle the period and wrap `left` (a sleep of centuries) */
			uint64_t spent = now_ns() - t0, left = spent < period ? period - spent : 0;
			struct timespec ts = { (time_t)(left / 1000000000ULL), (long)(left % 1000000000ULL) };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static int mode_busy(const char *comm, int n, int duty, long ms)
{
	static struct busy b;
	pthread_t t;

	if (n < 1 || n > 16)
		n = 1;
	b.duty = duty < 1 || duty > 100 ? 100 : duty;
	b.ms = ms < 1 ? 20 : ms;
	setname(comm);
	for (int i = 1; i < n; i++)
		if (pthread_create(&t, NULL, busy_main, &b)) {
			perror("workload: pthread_create");
			return 1;
		}
	busy_main(&b);
	return 0;
}

static int mode_paging(void)
{
	/* A hint above the 47-bit user limit is honoured only with 5-level paging (the kernel then allows it). */
	void *hint = (void *)(1UL << 52);
	void *p = mmap(hint, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	printf("%d\n", p != MAP_FAILED && (unsigned long)p >= (1UL << 47) ? 5 : 4);
	return 0;
}

static int mode_maps(const char *name, int n, int argc, char **argv)
{
	static const int prots[3] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };
	char pad[2001];
	int fd;

	if (argc < 7) {   /* once: again with an argv past 4 KiB */
		memset(pad, 'x', sizeof(pad) - 1);
		pad[sizeof(pad) - 1] = 0;
		char *nargv[] = { argv[0], argv[1], argv[2], argv[3], pad, pad, pad, NULL };
		execv("/proc/self/exe", nargv);
		perror("workload maps: execv");
		return 1;
	}
	setname(name);
	fd = open("/proc/self/exe", O_RDONLY);
	if (fd < 0 || mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 4096) == MAP_FAILED) {
		perror("workload maps: file mapping");
		return 1;
	}
	close(fd);
	for (int i = 0; i < n; i++)
		if (mmap(NULL, 4096, prots[i % 3], MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
			perror("workload maps: mmap");
			return 1;
		}
	free(malloc(1000));   /* a [heap] (static glibc's malloc starts with brk) */
	if (sbrk(0) == (void *)-1 || sbrk(8192) == (void *)-1)
		return 1;
	ready(name);
	sleep_forever();
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	const char *mode;

	base = base ? base + 1 : argv[0];
	if (strncmp(base, "vmot-", 5) == 0 && argc < 2) {
		char name[16];

		snprintf(name, sizeof(name), "%s", base);   /* comm as the kernel truncates it */
		ready(name);
		sleep_forever();
	}
	if (argc < 2) {
		fprintf(stderr, "usage: workload threads N|tree DEPTH|tracee|tracer PID|rename NAME|churn N|"
				"churnd MS|paging|busy COMM N DUTY [MS]|ids NAME RUID EUID SUID RGID EGID SGID\n");
		return 64;
	}
	mode = argv[1];
	if (!strcmp(mode, "threads"))
		return mode_threads(argc > 2 ? atoi(argv[2]) : 4);
	if (!strcmp(mode, "tree"))
		return mode_tree(argc > 2 ? atoi(argv[2]) : 3);
	if (!strcmp(mode, "tracee")) {
		setname("vmot-tracee");
		ready("vmot-tracee");
		sleep_forever();
	}
	if (!strcmp(mode, "tracer") && argc > 2)
		return mode_tracer(atoi(argv[2]));
	if (!strcmp(mode, "rename") && argc > 2) {
		char name[16];

		snprintf(name, sizeof(name), "%s", argv[2]);
		setname(name);
		ready(name);
		sleep_forever();
	}
	if (!strcmp(mode, "churn"))
		return mode_churn(argc > 2 ? atoi(argv[2]) : 20);
	if (!strcmp(mode, "churnd"))
		return mode_churnd(argc > 2 ? atol(argv[2]) : 500);
	if (!strcmp(mode, "paging"))
		return mode_paging();
	if (!strcmp(mode, "ids") && argc > 8) {
		char name[16];

		snprintf(name, sizeof(name), "%s", argv[2]);
		setname(name);
		mkdir("/run/vmot", 0755);
		mkdir(READY_DIR, 0755);
		chmod(READY_DIR, 01777);   /* ready() runs after the ids are dropped */
		if (setresgid((gid_t)atol(argv[6]), (gid_t)atol(argv[7]), (gid_t)atol(argv[8])) ||
		    setresuid((uid_t)atol(argv[3]), (uid_t)atol(argv[4]), (uid_t)atol(argv[5]))) {
			perror("workload ids");
			return 1;
		}
		ready(name);
		sleep_forever();
	}
	if (!strcmp(mode, "busy") && argc > 4) {
		char name[16];

		snprintf(name, sizeof(name), "%s", argv[2]);
		return mode_busy(name, atoi(argv[3]), atoi(argv[4]), argc > 5 ? atol(argv[5]) : 20);
	}
	if (!strcmp(mode, "maps") && argc > 3) {
		char name[16];

		snprintf(name, sizeof(name), "%s", argv[2]);
		return mode_maps(name, atoi(argv[3]), argc, argv);
	}
	if (!strcmp(mode, "spawn") && argc > 3)
		return mode_spawn(atoi(argv[2]), atol(argv[3]), argc > 4 ? atol(argv[4]) : 2);
	if (!strcmp(mode, "life") && argc > 2)
		return mode_life(argv[2], argc > 3 ? atol(argv[3]) : 1000);
	if (!strcmp(mode, "lifex") && argc > 3) {   /* the exec'd half of life */
		char name[16];

		snprintf(name, sizeof(name), "vmot-lx-%.7s", argv[2]);
		msleep(atol(argv[3]));
		life_say(argv[2], "exit", name);
		return 0;
	}
	fprintf(stderr, "workload: unknown mode %s\n", mode);
	return 64;
}
