/* cmocka: generic physmem (bounds, ranges, counters) and the raw-file source. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "mem/physmem.h"

static unsigned char *pattern(size_t len)
{
	unsigned char *b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 7 + (i >> 12));
	return b;
}

/* Reads inside one range return the bytes at that GPA; counters count successful reads only. */
static void test_buffer_reads_and_counters(void **state)
{
	unsigned char *mem = pattern(65536), out[256];
	struct physmem *pm;

	assert_int_equal(physmem_open_buffer(mem, 65536, NULL, 0, &pm), 0);
	assert_int_equal(physmem_total(pm), 65536);
	assert_int_equal(physmem_read(pm, 1000, out, sizeof(out)), 0);
	assert_memory_equal(out, mem + 1000, sizeof(out));
	assert_int_equal(pm->reads, 1);
	assert_int_equal(pm->bytes_read, 256);
	assert_int_equal(physmem_read(pm, 65536 - 8, out, 16), -EFAULT);
	assert_int_equal(pm->reads, 1);
	assert_int_equal(physmem_read(pm, 0, out, 0), 0);
	physmem_close(pm);
	free(mem);
}

/* A hole between ranges faults; contiguous ranges can be crossed; address wrap-around faults. */
static void test_ranges_holes_and_wrap(void **state)
{
	unsigned char *mem = pattern(0x10000), out[0x2000];
	struct phys_range r[] = { { 0x4000, 0x2000 }, { 0x0, 0x2000 }, { 0x6000, 0x2000 } };
	struct physmem *pm;
	uint64_t v;

	assert_int_equal(physmem_open_buffer(mem, 0x10000, r, 3, &pm), 0);
	assert_int_equal(pm->nranges, 3);
	assert_int_equal(pm->ranges[0].start, 0);   /* sorted */
	assert_int_equal(physmem_total(pm), 0x6000);
	assert_int_equal(physmem_end(pm), 0x8000);
	assert_true(physmem_contains(pm, 0x1ff8, 8));
	assert_false(physmem_contains(pm, 0x1ff8, 16));     /* into the hole at 0x2000 */
	assert_int_equal(physmem_read(pm, 0x1ff8, out, 16), -EFAULT);
	assert_int_equal(physmem_read(pm, 0x3000, out, 8), -EFAULT);
	/* 0x4000-0x6000 and 0x6000-0x8000 are contiguous: one read spans both */
	assert_int_equal(physmem_read(pm, 0x5f00, out, 0x200), 0);
	assert_memory_equal(out, mem + 0x5f00, 0x200);
	assert_int_equal(pm->reads, 2);   /* split into one read per range */
	assert_int_equal(physmem_read(pm, 0x7ff8, out, 16), -EFAULT);
	assert_int_equal(physmem_read(pm, UINT64_MAX - 4, out, 16), -EFAULT);
	assert_false(physmem_contains(pm, UINT64_MAX, 2));
	assert_int_equal(physmem_read_u64(pm, 0x4008, &v), 0);
	assert_memory_equal(&v, mem + 0x4008, 8);
	assert_int_equal(physmem_overlap(pm, 0x1000, 0x6000), 0x1000 + 0x2000 + 0x1000);
	assert_int_equal(physmem_overlap(pm, 0x2000, 0x2000), 0);
	assert_int_equal(physmem_overlap(pm, 0, UINT64_MAX), 0x6000);
	assert_int_equal(physmem_find_range(pm, 0x6000), 2);
	assert_int_equal(physmem_find_range(pm, 0x2000), -1);
	physmem_close(pm);
	free(mem);
}

/* Overlapping ranges are rejected, ranges beyond the buffer too. */
static void test_overlap_rejected(void **state)
{
	unsigned char mem[0x3000] = { 0 };
	struct phys_range bad[] = { { 0, 0x2000 }, { 0x1000, 0x1000 } };
	struct phys_range out_of_buf[] = { { 0x2000, 0x2000 } };
	struct physmem *pm = (void *)1;

	assert_int_equal(physmem_open_buffer(mem, sizeof(mem), bad, 2, &pm), -EINVAL);
	assert_null(pm);
	assert_int_equal(physmem_open_buffer(mem, sizeof(mem), out_of_buf, 1, &pm), -EINVAL);
	physmem_close(NULL);
}

static char *write_temp(const void *data, size_t len)
{
	char *path = strdup("/tmp/vmot-physmem-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Raw image: offset = GPA, one range [0, size) (or [base, base + size)), reads past the end fault, bytes match
 * the file. */
static void test_raw_file(void **state)
{
	size_t len = 3 * 4096 + 123;
	unsigned char *mem = pattern(len), out[4096];
	char *path = write_temp(mem, len);
	struct physmem *pm;

	assert_int_equal(physmem_open_raw(path, &pm), 0);
	assert_string_equal(pm->ops->kind, "raw");
	assert_int_equal(pm->nranges, 1);
	assert_int_equal(physmem_total(pm), len);
	assert_int_equal(physmem_read(pm, 4000, out, 4096), 0);
	assert_memory_equal(out, mem + 4000, 4096);
	assert_int_equal(physmem_read(pm, len - 1, out, 1), 0);
	assert_int_equal(out[0], mem[len - 1]);
	assert_int_equal(physmem_read(pm, len - 1, out, 2), -EFAULT);
	physmem_close(pm);
	/* the same file as RAM from 1 GiB on (an arm64 virt machine's): offset = GPA - base */
	assert_int_equal(physmem_open_raw_at(path, 0x40000000, &pm), 0);
	assert_int_equal(pm->ranges[0].start, 0x40000000);
	assert_int_equal(physmem_read(pm, 0x40000000 + 4000, out, 4096), 0);
	assert_memory_equal(out, mem + 4000, 4096);
	assert_int_equal(physmem_read(pm, 4000, out, 16), -EFAULT);
	assert_int_equal(physmem_read(pm, 0x40000000 + len - 1, out, 2), -EFAULT);
	physmem_close(pm);
	assert_int_equal(physmem_open_raw_at(path, UINT64_MAX & ~4095ULL, &pm), -EINVAL);   /* past 2^64 */
	unlink(path);
	free(path);
	free(mem);
}

/* Missing, empty and non-regular files give a clear error and no physmem. */
static void test_raw_errors(void **state)
{
	char *path = write_temp(NULL, 0);
	struct physmem *pm = (void *)1;

	assert_int_equal(physmem_open_raw("/nonexistent/vmot-raw", &pm), -ENOENT);
	assert_null(pm);
	assert_int_equal(physmem_open_raw(path, &pm), -EINVAL);
	assert_int_equal(physmem_open_raw("/tmp", &pm), -EINVAL);
	unlink(path);
	free(path);
}

/* A custom source sees only in-range reads (the generic layer checks first). */
static int strict_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	long i = physmem_find_range(pm, gpa);

	assert_true(i >= 0);
	assert_true(gpa + len <= pm->ranges[i].start + pm->ranges[i].len);
	memset(buf, 0xab, len);
	return 0;
}

static const struct physmem_ops strict_ops = { .kind = "strict", .read = strict_read };

static void test_source_sees_single_range_reads(void **state)
{
	struct physmem *pm = physmem_alloc(&strict_ops, NULL);
	unsigned char out[0x3000];

	assert_non_null(pm);
	assert_int_equal(physmem_add_range(pm, 0x1000, 0x1000), 0);
	assert_int_equal(physmem_add_range(pm, 0x2000, 0x1000), 0);
	assert_int_equal(physmem_add_range(pm, 0x3000, 0x1000), 0);
	assert_int_equal(physmem_add_range(pm, UINT64_MAX - 10, 100), -EINVAL);
	assert_int_equal(physmem_finalize_ranges(pm), 0);
	assert_int_equal(physmem_read(pm, 0x1800, out, 0x2000), 0);
	assert_int_equal(pm->reads, 3);
	assert_int_equal(out[0x1fff], 0xab);
	physmem_close(pm);
}

/* Live QEMU source: a pid that does not exist or is not QEMU is a clear error, not a crash. */
static void test_qemu_wrong_pid(void **state)
{
	struct physmem *pm = (void *)1;
	struct kvm_memslot_map slot = { 0, 0, 4096, 0x1000 };

	assert_int_equal(physmem_open_qemu(getpid(), NULL, &pm), -EINVAL);
	assert_null(pm);
	assert_int_equal(physmem_open_qemu(4194303, NULL, &pm), -ESRCH);
	assert_int_equal(physmem_open_qemu(0, NULL, &pm), -EINVAL);
	assert_int_equal(physmem_open_qemu_memslots(getpid(), &slot, 1, &pm), -EINVAL);
	assert_int_equal(physmem_qemu_set_memslots(NULL, &slot, 1), -EINVAL);
	assert_int_equal(physmem_qemu_hva(NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buffer_reads_and_counters),
		cmocka_unit_test(test_ranges_holes_and_wrap),
		cmocka_unit_test(test_overlap_rejected),
		cmocka_unit_test(test_raw_file),
		cmocka_unit_test(test_raw_errors),
		cmocka_unit_test(test_source_sees_single_range_reads),
		cmocka_unit_test(test_qemu_wrong_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
