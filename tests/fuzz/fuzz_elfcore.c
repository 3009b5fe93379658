/*
 * libFuzzer target: the ELF core reader (physmem_open_elfcore) on arbitrary bytes.
 * The input is written to a memfd and opened through /proc/self/fd/N, exactly as a file given to
 * `--core`. A core that opens must keep physmem's invariants: sorted, non-overlapping ranges that
 * read back without error, at most 4096 vCPUs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "mem/physmem.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fd = memfd_create("fuzz-core", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct physmem *pm = NULL;
	unsigned char buf[4096];
	uint64_t sink = 0;

	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (physmem_open_elfcore(path, &pm))
		return 0;
	if (!pm || !pm->nranges || pm->nvcpus > 4096 || (pm->nvcpus && !pm->vcpus))
		abort();
	for (size_t i = 0; i < pm->nranges; i++) {
		const struct phys_range *r = &pm->ranges[i];
		size_t n = r->len < sizeof(buf) ? (size_t)r->len : sizeof(buf);

		if (!r->len || r->start + r->len < r->start)
			abort();
		if (i && pm->ranges[i - 1].start + pm->ranges[i - 1].len > r->start)
			abort();   /* overlapping ranges */
		if (i >= 64)
			continue;
		if (physmem_read(pm, r->start, buf, n) || physmem_read(pm, r->start + r->len - n, buf, n))
			abort();   /* a range the source advertises must be readable */
		sink += buf[0];
		/* just past the range: a hole or the next range, never a crash */
		physmem_read(pm, r->start + r->len, buf, 8);
	}
	for (size_t i = 0; i < pm->nvcpus; i++)
		sink += pm->vcpus[i].cr3 + pm->vcpus[i].gs_base + pm->vcpus[i].efer;
	physmem_read(pm, UINT64_MAX - 3, buf, 8);
	physmem_close(pm);
	return (int)(sink & 0);
}
