/* cmocka: AArch64 stage-1 walker (4 KiB granule; 39-, 48- and 52-bit VAs; TTBR0/TTBR1), attributes, range walk,
 * TCR decoding and hostile tables — on real descriptors built in a memory buffer (tests/unit/arm64_pt.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "arch/arm64.h"
#include "arm64_pt.h"

#define MEM_SIZE (16ULL << 20)
#define TABLES   (8ULL << 20)

struct fx {
	unsigned char *mem;
	struct physmem *pm;
	struct a64_builder k, u;   /* TTBR1 (kernel) and TTBR0 (user) tables */
	struct arm64_mmu mmu;
};

static struct fx *fx_new(unsigned va_bits)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->mem = calloc(1, MEM_SIZE);
	assert_non_null(f->mem);
	for (uint64_t i = 0; i < TABLES; i += 8)
		*(uint64_t *)(f->mem + i) = 0x0102030405060708ULL ^ i;
	a64_init(&f->k, f->mem, MEM_SIZE, TABLES, va_bits);
	a64_init(&f->u, f->mem, MEM_SIZE, TABLES + (4ULL << 20), va_bits);
	f->mmu = (struct arm64_mmu){ .ttbr0 = f->u.root | (7ULL << 48), .ttbr1 = f->k.root | (0x1234ULL << 48) | 1,
				     .va_bits0 = va_bits, .va_bits1 = va_bits };   /* ASIDs and CnP set: dropped */
	assert_int_equal(physmem_open_buffer(f->mem, MEM_SIZE, NULL, 0, &f->pm), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	physmem_close(f->pm);
	free(f->mem);
	free(f);
}

static void check_pages(unsigned va_bits)
{
	struct fx *f = fx_new(va_bits);
	uint64_t kbase = 0 - (1ULL << va_bits);   /* the first TTBR1 VA */
	struct x86_map m;

	a64_map(&f->k, kbase + 0x10000000, 0x5000, A64_4K, A64_PXN | A64_UXN);
	a64_map(&f->k, kbase + 0x40200000, 0x200000, A64_2M, A64_RO);
	a64_map(&f->k, kbase + 0x80000000, 0x40000000, A64_1G, 0);
	a64_map(&f->u, 0x400000, 0x7000, A64_4K, A64_EL0 | A64_RO);

	assert_int_equal(arm64_translate(f->pm, &f->mmu, kbase + 0x10000123, &m), 0);
	assert_int_equal(m.pa, 0x5123);
	assert_int_equal(m.page_size, 4096);
	assert_true(m.writable && m.nx);
	assert_false(m.user);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, kbase + 0x403fff00, &m), 0);
	assert_int_equal(m.pa, 0x3fff00);
	assert_int_equal(m.page_size, 2ULL << 20);
	assert_false(m.writable);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, kbase + 0x80001000, &m), 0);
	assert_int_equal(m.pa, 0x40001000);
	assert_int_equal(m.page_size, 1ULL << 30);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, 0x400010, &m), 0);
	assert_int_equal(m.pa, 0x7010);
	assert_true(m.user);
	assert_false(m.writable);
	/* the same index bits in the other half, an unmapped page, a VA in neither half */
	assert_int_equal(arm64_translate(f->pm, &f->mmu, 0x10000123, &m), -EFAULT);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, kbase + 0x10001000, &m), -EFAULT);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, 1ULL << va_bits, &m), -EFAULT);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, kbase - 4096, &m), -EFAULT);
	fx_free(f);
}

static void test_pages_48(void **state) { (void)state; check_pages(48); }
static void test_pages_39(void **state) { (void)state; check_pages(39); }

/* 52-bit VAs with FEAT_LPA2: 5 levels, a 16-entry top table, output address bits 51:50 in descriptor bits 9:8 */
static void test_lpa2_52(void **state)
{
	struct fx *f = fx_new(52);
	struct x86_map m;
	uint64_t va = 0xfff0000012345000ULL, slot;

	(void)state;
	f->mmu.lpa2 = true;
	assert_int_equal(f->k.levels, 5);
	slot = a64_map(&f->k, va, 0x9000, A64_4K, 0);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, va + 8, &m), 0);
	assert_int_equal(m.pa, 0x9008);
	*(uint64_t *)(f->mem + slot) |= 3ULL << 8;   /* OA[51:50] */
	assert_int_equal(arm64_translate(f->pm, &f->mmu, va + 8, &m), 0);
	assert_int_equal(m.pa, (3ULL << 50) | 0x9008);
	f->mmu.lpa2 = false;                          /* without DS those bits are attributes (shareability) */
	assert_int_equal(arm64_translate(f->pm, &f->mmu, va + 8, &m), 0);
	assert_int_equal(m.pa, 0x9008);
	fx_free(f);
}

/* APTable/PXNTable of a table descriptor hold for everything below it; reserved encodings are faults. */
static void test_table_attributes_and_reserved(void **state)
{
	struct fx *f = fx_new(48);
	uint64_t va = 0x0000aaaa00001000ULL, l2, slot;
	struct x86_map m;

	(void)state;
	slot = a64_map(&f->u, va, 0x3000, A64_4K, A64_EL0);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, va, &m), 0);
	assert_true(m.user && m.writable && !m.nx);
	/* the level-2 table descriptor (pointing at the page table) gets APTable = no EL0, read-only, and PXNTable */
	uint64_t l4 = f->u.root, d4 = *a64_entry(&f->u, l4, a64_index(&f->u, va, 4));
	uint64_t l3 = d4 & A64_ADDR, d3 = *a64_entry(&f->u, l3, a64_index(&f->u, va, 3));

	l2 = d3 & A64_ADDR;
	uint64_t *d2 = a64_entry(&f->u, l2, a64_index(&f->u, va, 2)), saved = *d2;

	*d2 |= (1ULL << 61) | (1ULL << 62) | (1ULL << 59);
	assert_int_equal(arm64_translate(f->pm, &f->mmu, va, &m), 0);
	assert_false(m.user || m.writable);
	assert_true(m.nx);
	*d2 = saved;
	/* a page-level descriptor with bit 1 clear, a block at the top level of a 4-level walk */
	*(uint64_t *)(f->mem + slot) &= ~A64_TABLE;
	assert_int_equal(arm64_translate(f->pm, &f->mmu, va, &m), -EFAULT);
	*a64_entry(&f->u, l4, 5) = 0x8000000000ULL | A64_VALID;
	assert_int_equal(arm64_translate(f->pm, &f->mmu, 5ULL << 39, &m), -EFAULT);
	fx_free(f);
}

static void test_tcr(void **state)
{
	struct arm64_mmu m = { 0 };

	(void)state;
	/* Debian's 48-bit 4K configuration: T0SZ = T1SZ = 16, TG0 = 4K (0b00), TG1 = 4K (0b10), IPS 48 */
	arm64_mmu_from_tcr(&m, (16ULL) | (16ULL << 16) | (2ULL << 30) | (5ULL << 32));
	assert_int_equal(m.va_bits0, 48);
	assert_int_equal(m.va_bits1, 48);
	assert_false(m.lpa2);
	arm64_mmu_from_tcr(&m, 25 | (25ULL << 16) | (2ULL << 30) | (1ULL << 7));   /* 39-bit, EPD0: no TTBR0 walks */
	assert_int_equal(m.va_bits0, 0);
	assert_int_equal(m.va_bits1, 39);
	arm64_mmu_from_tcr(&m, 12 | (12ULL << 16) | (2ULL << 30) | (1ULL << 59));   /* 52-bit LPA2 */
	assert_int_equal(m.va_bits1, 52);
	assert_true(m.lpa2);
	arm64_mmu_from_tcr(&m, 16 | (16ULL << 16) | (1ULL << 14) | (3ULL << 30));   /* 64 KiB granule: not walked */
	assert_int_equal(m.va_bits0, 0);
	assert_int_equal(m.va_bits1, 0);
	assert_int_equal(arm64_ttbr_root(0xabcd000000401001ULL, 48, false), 0x401000);
	assert_int_equal(arm64_ttbr_root(0x00000000004000c0ULL, 52, false), 0x400080);   /* 16-entry top table: 128 B */
	assert_int_equal(arm64_ttbr_root(0x0000000000400040ULL, 40, false), 0x400040);   /* 2 entries: 64 B minimum */
}

struct leaves {
	uint64_t n, first, last;
	bool ordered;
};

static int count_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaves *l = arg;

	(void)m;
	if (!l->n)
		l->first = va;
	else if (va <= l->last)
		l->ordered = false;
	l->n++;
	l->last = va;
	return 0;
}

static void test_walk(void **state)
{
	struct fx *f = fx_new(48);
	struct leaves l = { .ordered = true };
	uint64_t kbase = 0xffff000000000000ULL;
	int n;

	(void)state;
	a64_map_range(&f->k, kbase + 0x40000000, 0, 8ULL << 20, A64_2M, 0);   /* a linear map in blocks */
	a64_map_range(&f->k, 0xffff800008000000ULL, 0x100000, 16 * 4096, A64_4K, A64_RO);
	a64_map_range(&f->u, 0x400000, 0x200000, 3 * 4096, A64_4K, A64_EL0);
	n = arm64_walk(f->pm, &f->mmu, 0, 0, 0, count_cb, &l);
	assert_int_equal(n, 4 + 16 + 3);
	assert_int_equal(l.n, 4 + 16 + 3);
	assert_true(l.ordered);
	assert_int_equal(l.first, 0x400000);
	assert_int_equal(l.last, 0xffff800008000000ULL + 15 * 4096);
	memset(&l, 0, sizeof(l));
	l.ordered = true;
	assert_int_equal(arm64_walk(f->pm, &f->mmu, kbase, 0xffff800000000000ULL, 0, count_cb, &l), 4);
	assert_int_equal(l.first, kbase + 0x40000000);
	memset(&l, 0, sizeof(l));
	assert_int_equal(arm64_walk(f->pm, &f->mmu, 0, 0, 5, count_cb, &l), 5);
	f->mmu.ttbr0 = f->mmu.ttbr1 = MEM_SIZE + 0x1000;
	assert_int_equal(arm64_walk(f->pm, &f->mmu, 0, 0, 0, count_cb, &l), -EFAULT);
	fx_free(f);
}

/* The linear map found where kernels before 5.4 put it: the TTBR1 half's upper part, walked after vmalloc, whose
 * pages (vmalloc'd stacks, scattered in RAM) each have their own VA - PA. More of them than the deltas tracked
 * must not crowd the linear map out; with no linear map, scattered pages alone are none. */
static void test_linear_map_after_vmalloc(void **state)
{
	struct fx *f = fx_new(48);
	uint64_t vmalloc = 0xffff000008000000ULL, lin = 0xffff800000000000ULL, base = 0, covered = 0;

	(void)state;
	for (uint64_t i = 0; i < 600; i++)   /* page i at PA (i * 37 mod 2048) pages: 600 distinct deltas */
		a64_map(&f->k, vmalloc + i * 0x2000, (i * 37 % 2048) * 4096, A64_4K, A64_PXN | A64_UXN);
	assert_int_equal(arm64_find_linear_map(f->pm, &f->mmu, &base, &covered), -ENOENT);
	a64_map_range(&f->k, lin, 0, MEM_SIZE, A64_2M, A64_PXN | A64_UXN);
	assert_int_equal(arm64_find_linear_map(f->pm, &f->mmu, &base, &covered), 0);
	assert_int_equal(base, lin);
	assert_int_equal(covered, MEM_SIZE);
	fx_free(f);
}

/* Hostile tables: every descriptor of the root points at the root (a 4-level walk reads it as each level), then
 * every descriptor of one table points at one page table whose 512 pages are valid (2^36 pages). Both end
 * within their bounds. */
static void test_hostile(void **state)
{
	struct fx *f = fx_new(48);
	struct leaves l = { .ordered = true };
	struct x86_map m;
	uint64_t root = f->k.root, pt;
	int n;

	(void)state;
	for (int i = 0; i < 512; i++)
		*a64_entry(&f->k, root, (uint64_t)i) = root | A64_VALID | A64_TABLE;
	n = arm64_walk(f->pm, &f->mmu, 1ULL << 63, 0, 0, count_cb, &l);
	assert_true(n >= 0 && n <= (1 << 24));
	arm64_translate(f->pm, &f->mmu, 0xffff123456789000ULL, &m);
	pt = a64_alloc(&f->k);
	for (int i = 0; i < 512; i++) {
		*a64_entry(&f->k, pt, (uint64_t)i) = ((uint64_t)i << 12) | A64_VALID | A64_TABLE | A64_AF;
		*a64_entry(&f->k, root, (uint64_t)i) = root | A64_VALID | A64_TABLE;
	}
	uint64_t l3 = a64_alloc(&f->k), l2 = a64_alloc(&f->k);

	for (int i = 0; i < 512; i++) {
		*a64_entry(&f->k, root, (uint64_t)i) = l3 | A64_VALID | A64_TABLE;
		*a64_entry(&f->k, l3, (uint64_t)i) = l2 | A64_VALID | A64_TABLE;
		*a64_entry(&f->k, l2, (uint64_t)i) = pt | A64_VALID | A64_TABLE;
	}
	memset(&l, 0, sizeof(l));
	n = arm64_walk(f->pm, &f->mmu, 1ULL << 63, 0, 0, count_cb, &l);
	assert_true(n > 0 && (uint64_t)n == l.n);
	assert_true(l.n <= 17ULL * 512 * 512 + 512);   /* 16 revisits of the shared tables, not 2^36 pages */
	fx_free(f);
}

/* The kernel's root from memory alone (an ELF core has no TTBR1): a 48-bit kernel table mapping a linear map of
 * RAM, vmalloc pages and, in its image, its own page is found among the pages of RAM, and the TCR it gives says
 * 48 bits; a process's table (no linear map) and an early table (a linear map and its own page, nothing else)
 * are not taken. The fixture's memory is fabricated: this checks the search's rules, the real evidence is the
 * zoo's cores (tests/guest/test_arm64_discovery.sh). */
static void test_find_kernel_root(void **state)
{
	struct fx *f = fx_new(48), *e;
	const uint64_t lin = 0xffff000000000000ULL, image = 0xffff800080000000ULL, vmalloc = 0xffff800000000000ULL;
	struct arm64_mmu m;
	uint64_t tcr;

	(void)state;
	a64_map(&f->u, 0x400000, 0x7000, A64_4K, A64_EL0 | A64_RO);
	a64_map(&f->u, 0x0000fffffffff000ULL, 0x8000, A64_4K, A64_EL0);
	a64_map_range(&f->k, lin, 0, MEM_SIZE, A64_2M, A64_PXN | A64_UXN);
	for (uint64_t i = 0; i < 64; i++)
		a64_map(&f->k, vmalloc + i * 0x1000, (i * 7 % 512) * 4096, A64_4K, A64_PXN | A64_UXN);
	assert_int_equal(arm64_find_kernel_root(f->pm, MEM_SIZE, &m, &tcr), -ENOENT);   /* not yet in its image */
	a64_map(&f->k, image + 0x100000, f->k.root, A64_4K, A64_PXN | A64_UXN);
	/* an early boot table: the same linear map and its own page, no vmalloc */
	struct a64_builder early;
	a64_init(&early, f->mem, MEM_SIZE, TABLES + (6ULL << 20), 48);
	a64_map_range(&early, lin, 0, MEM_SIZE, A64_2M, A64_PXN | A64_UXN);
	a64_map(&early, image + 0x100000, early.root, A64_4K, A64_PXN | A64_UXN);
	assert_int_equal(arm64_find_kernel_root(f->pm, MEM_SIZE, &m, &tcr), 0);
	assert_int_equal(m.ttbr1, f->k.root);
	assert_int_equal(m.va_bits1, 48);
	assert_false(m.lpa2);
	struct arm64_mmu back = { 0 };
	arm64_mmu_from_tcr(&back, tcr);
	assert_int_equal(back.va_bits0, 48);
	assert_int_equal(back.va_bits1, 48);
	fx_free(f);

	/* hostile: every page a table whose entries all name the next page: it ends, with nothing found, within
	 * the scan plus the walks' total budget */
	e = fx_new(48);
	for (uint64_t pa = 0; pa < MEM_SIZE; pa += 4096)
		for (int i = 0; i < 512; i++)
			*(uint64_t *)(e->mem + pa + i * 8) = ((pa + 4096) % MEM_SIZE) | A64_VALID | A64_TABLE;
	uint64_t before = e->pm->bytes_read;
	assert_int_equal(arm64_find_kernel_root(e->pm, MEM_SIZE, &m, &tcr), -ENOENT);
	assert_true(e->pm->bytes_read - before < 4 * MEM_SIZE + (256ULL << 20) + (32ULL << 20));
	fx_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages_48),
		cmocka_unit_test(test_pages_39),
		cmocka_unit_test(test_lpa2_52),
		cmocka_unit_test(test_table_attributes_and_reserved),
		cmocka_unit_test(test_tcr),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_linear_map_after_vmalloc),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_find_kernel_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
