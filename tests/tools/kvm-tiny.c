/*
 * kvm-tiny: run the tiny guest of user/capture/tinyvm.h (N CR3 writes cycling through K page-table roots).
 * Output, one "key value" per line, parsed by tests/guest/test_kvm_tiny.sh and scripts/bench-capture.sh:
 *   pid P / sync_cr3 0x.. (one per sync unless -q) / root 0x.. (K lines) / writes N / syncs M /
 *   elapsed_ns T / final_cr3 0x.. / mem_hva 0x..
 * Exit 0 on a clean halt, 77 when /dev/kvm is missing or unusable, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture/tinyvm.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: kvm-tiny [-n WRITES] [-k ROOTS] [-s SYNC_EVERY] [-w] [-q]\n"
		   "  -n  CR3 writes the guest performs (default 2000)\n"
		   "  -k  distinct page-table roots, 2..%d (default 4)\n"
		   "  -s  PIO sync exit every S writes, 0 = none (default 0)\n"
		   "  -w  wait for a newline on stdin before running (lets a tracer attach to the pid)\n"
		   "  -q  do not list the CR3 read back at each sync\n", TINYVM_MAX_ROOTS);
}

static int quiet;

static void on_sync(void *ctx, uint64_t cr3)
{
	(void)ctx;
	if (!quiet)
		printf("sync_cr3 0x%llx\n", (unsigned long long)cr3);
}

static int wait_stdin(void *ctx)
{
	char line[16];

	(void)ctx;
	fflush(stdout);
	return fgets(line, sizeof(line), stdin) ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct tinyvm_opts o = { .writes = 2000, .nroots = 4, .on_sync = on_sync };
	struct tinyvm_result r;
	int c, err;

	while ((c = getopt(argc, argv, "n:k:s:wqh")) != -1) {
		switch (c) {
		case 'n': o.writes = strtoul(optarg, NULL, 0); break;
		case 'k': o.nroots = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 's': o.sync_every = strtoul(optarg, NULL, 0); break;
		case 'w': o.on_ready = wait_stdin; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (o.nroots < 2 || o.nroots > TINYVM_MAX_ROOTS) {
		usage(stderr);
		return 1;
	}
	printf("pid %d\n", getpid());
	fflush(stdout);
	err = tinyvm_run(&o, &r);
	if (err) {
		fprintf(stderr, "kvm-tiny: %s (exit reason %u)\n", strerror(-err), r.bad_exit);
		return err == -ENOENT || err == -EACCES || err == -ENODEV || err == -ENXIO || err == -EPERM ? 77 : 1;
	}
	for (unsigned int i = 0; i < r.nroots; i++)
		printf("root 0x%llx\n", (unsigned long long)r.roots[i]);
	printf("writes %lu\nsyncs %lu\nelapsed_ns %llu\nfinal_cr3 0x%llx\nmem_hva 0x%llx\n", r.writes, r.syncs,
	       (unsigned long long)r.elapsed_ns, (unsigned long long)r.final_cr3, (unsigned long long)r.mem_hva);
	return 0;
}
